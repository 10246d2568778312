//! lockstep-vm-support: helpers for tests that run inside lockstep's VM bench (`vm/test`).
//!
//! Our machines have no `/dev/dri`; the VM guest has real kernel objects: vkms (atomic KMS with
//! primary, cursor and 8 overlay planes), vgem (a render node), timeline syncobjs on both
//! (patched in, see `vm/patches/`), `sw_sync` fences that signal exactly when a test says so,
//! `/dev/dma_heap/system` and `/dev/udmabuf`. This crate gives tests typed access to them, so
//! a test reads like the scenario it checks instead of like a page of ioctls:
//!
//! - [`drm`]: find vkms and vgem by driver name (`DRM_IOCTL_VERSION`), never by node number.
//! - [`kms`]: planes, connectors, dumb framebuffers and a legacy modeset to light a CRTC up.
//! - [`atomic`]: atomic requests with `IN_FENCE_FD` / `OUT_FENCE_PTR`, writeback capture
//!   (pixels of the composed frame) and mode blobs.
//! - [`syncobj`]: timeline syncobjs shared across devices, `SYNCOBJ_EVENTFD`, sync_file
//!   import/export, query/signal/wait.
//! - [`sw_sync`]: sw_sync timelines and the sync_file fences they make.
//! - [`dmabuf`]: dmabufs from vgem (dumb + PRIME), the system dma-heap and udmabuf; mapping
//!   with `DMA_BUF_IOCTL_SYNC` brackets; import into another device.
//! - [`crc`]: vkms per-frame CRCs from debugfs, to check what is on screen without DRM master.
//! - [`guest`]: "am I in the VM?" and [`guest::devices_or_skip`], which skips loudly on a host
//!   and fails loudly in the guest when a device is missing.
//!
//! ```no_run
//! use std::time::Duration;
//! use lockstep_vm_support::{guest, sw_sync::SwTimeline, syncobj::{Syncobj, TimelinePoint}};
//!
//! let Some(dev) = guest::devices_or_skip("example") else { return Ok(()) };
//! let timeline = Syncobj::create(&dev.vgem)?;              // client side
//! let on_kms = Syncobj::import(&dev.vkms, &timeline.export()?)?; // compositor side
//! let fired = on_kms.eventfd(TimelinePoint(1), Default::default())?;
//! let gpu = SwTimeline::new()?;                            // "the GPU"
//! on_kms.import_sync_file(TimelinePoint(1), &gpu.fence(1, "render")?)?;
//! gpu.advance(1)?;
//! assert!(guest::wait_readable(&fired, Duration::from_secs(2))?);
//! # Ok::<(), lockstep_vm_support::Error>(())
//! ```
//!
//! Everything here is test support: errors are precise ([`Error`] names the ioctl or file), but
//! nothing is tuned for production use. The raw ABI lives in one private module, `sys`.
#![warn(missing_docs)]

pub mod atomic;
pub mod crc;
pub mod dmabuf;
pub mod drm;
pub mod guest;
pub mod kms;
pub mod sw_sync;
pub mod syncobj;
mod sys;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong talking to the guest's kernel objects.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An ioctl failed; `name` is the kernel's name for it.
    #[error("{name} failed: {source}")]
    Ioctl {
        /// The ioctl, e.g. `DRM_IOCTL_SYNCOBJ_EVENTFD`.
        name: &'static str,
        /// The errno the kernel returned.
        #[source]
        source: rustix::io::Errno,
    },
    /// A device node or pseudo file could not be opened, read or written.
    #[error("{what} {path}: {source}")]
    File {
        /// What we tried to do, e.g. "open" or "read".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A syscall on an fd that is not an ioctl (eventfd, mmap, memfd, poll) failed.
    #[error("{what} failed: {source}")]
    Syscall {
        /// The call, e.g. "mmap".
        what: &'static str,
        /// The errno.
        #[source]
        source: rustix::io::Errno,
    },
    /// No DRM node of the wanted kind has the wanted driver.
    #[error("no DRM {kind} node with driver {driver:?} in /dev/dri (found: {found})")]
    NoDevice {
        /// The driver name asked for, e.g. "vkms".
        driver: String,
        /// Which kind of node was searched.
        kind: drm::NodeKind,
        /// `path=driver` pairs of what was there, for the error message.
        found: String,
    },
    /// A kernel text interface returned something we could not parse.
    #[error("unexpected {what}: {text:?}")]
    Parse {
        /// What was parsed, e.g. "vkms crc line".
        what: &'static str,
        /// The text.
        text: String,
    },
    /// Something the kernel should have done did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What we waited for.
        what: &'static str,
        /// How long we waited.
        after: Duration,
    },
    /// The kernel object exists but lacks a feature the test needs.
    #[error("{0}")]
    Unsupported(String),
}

impl Error {
    pub(crate) fn syscall(what: &'static str) -> impl FnOnce(rustix::io::Errno) -> Self {
        move |source| Self::Syscall { what, source }
    }

    pub(crate) fn file(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::File { what, path, source }
    }
}

/// Result of this crate's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
