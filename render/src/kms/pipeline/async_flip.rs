//! Async (tearing) page flips: a new client buffer on the primary plane right away, not at
//! the next vblank.
//!
//! A fullscreen game that asks for it (wp_tearing_control_v1 `async`) trades tearing for
//! latency. The kernel takes an async flip in an atomic commit (`DRM_MODE_PAGE_FLIP_ASYNC`)
//! only when the driver says so (`DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP`, Linux 6.8+), only as a
//! change of the primary plane's `FB_ID`, and never with fences: `IN_FENCE_FD` and
//! `OUT_FENCE_PTR` make it refuse the commit. So [`OutputPipeline::prepare_async`] builds a
//! request of that one property, for a buffer whose acquire point has signalled, while the
//! plane already scans out a client buffer of the same size (the first frame of direct
//! scanout goes through a normal flip), and checks it with `TEST_ONLY`. Every way it can
//! say no is a [`PrepareError`] before anything changes, and the caller then prepares the
//! normal, vsynced frame: an async flip is a wish, never a requirement.

use drm::{
    control::{AtomicCommitFlags, Device as _},
    Device as _, DriverCapability,
};

use super::{
    entry, fail, request, FbRef, KmsError, OutputPipeline, PrepareError, Prepared, ScanoutBuffer,
    Scene, Step, Work,
};
use crate::kms::buffers::SharedDevice;

/// Whether `dev`'s driver takes async flips in atomic commits.
pub(super) fn driver_allows(dev: &SharedDevice) -> bool {
    dev.dev
        .get_driver_capability(DriverCapability::AtomicASyncPageFlip)
        .is_ok_and(|v| v == 1)
}

fn refuse(reason: &str) -> PrepareError {
    fail(Step::Plan, KmsError::NoAsyncFlip(reason.to_owned()))
}

impl OutputPipeline {
    /// Whether the driver takes async page flips at all.
    pub fn async_flips_supported(&self) -> bool {
        self.async_flips
    }

    /// Prepares `buffer` as an async flip of the primary plane, leaving the cursor and
    /// overlay planes as they are shown; see the module docs for when that is possible.
    /// An error says why not, and nothing changed.
    pub fn prepare_async<'p>(
        &'p mut self,
        buffer: &dyn ScanoutBuffer,
    ) -> Result<Prepared<'p>, PrepareError> {
        if self.in_flight.is_some() {
            return Err(fail(Step::Busy, KmsError::FlipPending));
        }
        if !self.async_flips {
            return Err(refuse(
                "the driver does not take async page flips in atomic commits \
                 (DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP)",
            ));
        }
        if self.needs_modeset || self.gamma.has_pending() {
            return Err(refuse("a modeset or gamma change needs a normal flip"));
        }
        if !matches!(self.shown.primary.fb, FbRef::Client(_)) {
            return Err(refuse(
                "the primary plane does not scan out a client buffer yet",
            ));
        }
        let mut work = Work::default();
        let shown = self.shown.primary.clone();
        let content = self.client_content(&mut work, buffer, Some(&shown))?;
        if !work.in_fences.is_empty() {
            return Err(refuse(
                "the buffer's acquire point has not signalled (async flips carry no fences)",
            ));
        }
        if content.rect != shown.rect {
            return Err(refuse("the buffer's size differs from the one shown"));
        }
        let FbRef::Client(fb) = &content.fb else {
            return Err(refuse("not a client buffer"));
        };
        let plane = &self.planes.primary;
        let fb_id = plane.props.id("FB_ID").map_err(|e| fail(Step::Plan, e))?;
        let entries = vec![entry(plane.handle, fb_id, u64::from(u32::from(fb.fb())))];

        if self.faults.take(Step::TestOnly) {
            return Err(fail(Step::TestOnly, KmsError::Injected));
        }
        let flags = AtomicCommitFlags::TEST_ONLY | AtomicCommitFlags::PAGE_FLIP_ASYNC;
        self.dev
            .dev
            .atomic_commit(flags, request(&entries, None))
            .map_err(|e| fail(Step::TestOnly, KmsError::Rejected(e)))?;

        let scene = Scene {
            primary: content,
            cursor: self.shown.cursor.clone(),
            overlay: self.shown.overlay.clone(),
        };
        Ok(Prepared {
            modeset: false,
            pipeline: self,
            scene,
            entries,
            work,
            async_flip: true,
        })
    }
}
