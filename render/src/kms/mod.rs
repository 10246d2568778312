//! lockstep's own atomic KMS plane pipeline (the drm crate's atomic API, not smithay's
//! DrmCompositor).
//!
//! # Why it looks like this
//!
//! A virtio-gpu cursor bug, found by fault injection, taught the kernel that the atomic
//! *update* step must not fail: everything that can fail (allocation, import, locking, fence
//! slots) belongs in a *prepare* step that can be rolled back, and what prepare locked must not
//! be locked again in the same commit. lockstep applies that here, and the types enforce it:
//! [`OutputPipeline::prepare`] → [`Prepared::commit`] → [`OutputPipeline::on_page_flip`]
//! (see [`pipeline`] for what each phase does and how dropping rolls back).
//!
//! # Plane rules: what goes where, and why
//!
//! - **Primary plane**: the composited frame, drawn by the compositor into one of three
//!   buffers: dumb buffers the pipeline maps (pixman), or buffers the compositor allocated
//!   with GBM and renders into with GLES, added here as framebuffers
//!   ([`OutputPipeline::with_frames`]). Both are committed the same way. Or, when one
//!   client buffer covers the whole output and nothing else is visible on it (a fullscreen
//!   window with a single dmabuf surface, no scaling), that buffer itself ("direct scanout"): no composition, no
//!   copy, and the client's acquire fence goes to the plane as `IN_FENCE_FD`.
//! - **A composited frame comes complete, or with its render fence.** pixman draws
//!   synchronously. A GPU renderer with native fences (`EGL_ANDROID_native_fence_sync`) may
//!   hand its frame's fence as a sync_file ([`PrimaryPlan::Composited`]'s `render_fence`):
//!   prepare duplicates it (a fallible step, [`Step::FenceExport`]) and the primary plane
//!   waits for it as `IN_FENCE_FD`, so neither the commit nor the CPU waits for the GPU. Only
//!   where the plane has `IN_FENCE_FD` ([`OutputPipeline::primary_takes_in_fences`]); otherwise
//!   the renderer must finish the frame first. Mesa's llvmpipe (all the VM has) has no native
//!   fences, so there the GLES path waits for the frame's EGL fence right after rendering;
//!   the plumbing is tested on vkms with a sw_sync fence standing in for the GPU.
//! - **Cursor plane**: the cursor image (the theme's, or a client's cursor surface copied
//!   in), written into one of two small ARGB dumb buffers only when the image changes. A
//!   pointer move is then a commit of two plane properties and never recomposites the frame.
//!   When an image does not fit the plane, the cursor is composited instead.
//! - **Overlay plane**: a client dmabuf directly, unscaled, when it is the topmost thing on
//!   the output and nothing needs to be composited over it.
//! - Anything the kernel's `TEST_ONLY` rejects falls back to composition: the compositor
//!   prepares again with a plan that composites everything.
//! - A buffer on a plane is *leased*: its release point is not signalled while it is on
//!   screen or in flight. The commit that replaces it hands the CRTC's out-fence to the lease
//!   ([`Lease::release_after`]), so the kernel signals the release at the flip itself; where
//!   that cannot be done, the page-flip event ends the lease and the CPU signals it. A buffer
//!   that was only composited is released by the compositor as soon as the composition has
//!   read it.
//! - Flips are vsynced and one per vblank: prepare refuses while a commit is in flight
//!   ([`Step::Busy`]), and the compositor coalesces updates until the page-flip event. There
//!   are no async (tearing) flips, so no flip ever goes without its fences.
//! - Framebuffers of client buffers are cached per buffer and removed once the buffer dies
//!   and no plane shows it.
//! - The CRTC's `GAMMA_LUT` (gamma control) changes with a frame like any plane property:
//!   its blob is created in prepare, checked by `TEST_ONLY`, and the old one destroyed after
//!   the commit (`gamma.rs`). Turning a display off (`power_off`) commits `ACTIVE = 0`; the
//!   next frame is a modeset that turns it on again.
//! - Turning an output off for good (output management) unbinds everything: `prepare_disable`
//!   checks `ACTIVE = 0`, no mode, the connector's and every plane's `CRTC_ID = 0` with
//!   `TEST_ONLY`, `commit_disable` commits it with an event and the out-fence for the leases
//!   of what was on the planes. An output turned on gets a new pipeline, whose
//!   `test_modeset` checks its first modeset before anything changes.

mod buffers;
mod device;
mod gamma;
pub mod pipeline;

use std::path::PathBuf;

/// The drm crate this module is written on (for callers' handle and event types).
pub use drm;

pub use buffers::{ClientFb, DeviceShared, DmabufDesc, DmabufPlane, DumbSlot, SharedDevice};
pub use device::{ConnectorInfo, CrtcPlanes, KmsDevice, PlaneInfo, PlaneKind, Props};
pub use pipeline::{
    BufferKey, CommitRefused, CursorImage, CursorPlan, DisableRequest, Faults, Flip, Lease,
    OutputPipeline, OverlayPlan, PipelineStats, Plan, PlaneReport, PrepareError, Prepared,
    PrimaryPlan, RenderTarget, ScanoutBuffer, Step, FRAME_SLOTS,
};

/// What can go wrong in the KMS pipeline.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// A kernel call failed.
    #[error("{what}: {source}")]
    Io {
        /// What lockstep was doing.
        what: String,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// The device cannot do atomic modesetting.
    #[error(
        "{0} does not support atomic modesetting; lockstep needs an atomic KMS driver \
         (every current driver is; very old or simple framebuffer drivers are not)"
    )]
    NoAtomic(PathBuf),
    /// A CRTC without a primary plane.
    #[error("the CRTC has no primary plane")]
    NoPrimaryPlane,
    /// A KMS object lacks a standard property.
    #[error("the driver does not expose the {0} property")]
    MissingProperty(String),
    /// A buffer or plan that cannot be shown.
    #[error("{0}")]
    BadBuffer(String),
    /// The cursor image is larger than the cursor plane.
    #[error("a {image:?} cursor does not fit the {plane:?} cursor plane")]
    CursorTooBig {
        /// The image's size.
        image: (u32, u32),
        /// The plane's size.
        plane: (u32, u32),
    },
    /// The compositor could not provide a fence or lease.
    #[error("{0}")]
    Client(String),
    /// `TEST_ONLY` said no.
    #[error("the kernel rejected the plane configuration (TEST_ONLY): {0}")]
    Rejected(std::io::Error),
    /// A commit waits for its page flip.
    #[error("a page flip is still pending")]
    FlipPending,
    /// Fault injection made this step fail.
    #[error("fault injected")]
    Injected,
    /// This frame cannot be an async (tearing) page flip; it goes as a normal flip.
    #[error("no async page flip: {0}")]
    NoAsyncFlip(String),
}

impl KmsError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        KmsError::Io {
            what: what.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests;
