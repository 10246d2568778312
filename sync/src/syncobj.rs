//! [`Syncobj`]: a DRM sync object handle on a device, released exactly once.
//!
//! # Why
//!
//! A syncobj is a kernel container for a fence. A *binary* syncobj holds one fence; a
//! *timeline* syncobj holds a chain of points (`dma_fence_chain`). Both live behind a per-file
//! handle on a DRM node; the same object can be shared between processes and devices as a
//! syncobj fd. This module turns the raw ioctls of [`sys`](crate::sys) into one owned type:
//! the handle is destroyed in `Drop`, so every handle is released exactly once, including the
//! temporary binary syncobjs used to move fences in and out of timeline points.
//!
//! Kernel rules (drivers/gpu/drm/drm_syncobj.c, Linux 6.12):
//! * `FD_TO_HANDLE` on something that is not a syncobj fd fails with `EINVAL` (a bad fd number
//!   with `EBADF`): reported as [`SyncobjError::ImportFd`]. Importing the same fd twice gives
//!   two handles to one object; each is destroyed on its own.
//! * `FD_TO_HANDLE` with `IMPORT_SYNC_FILE` puts the sync_file's fence into the *existing*
//!   binary syncobj named by `handle`. Handle 0 never exists, so passing 0 (as the drm crate's
//!   helper does) fails with `ENOENT`. We create a temporary binary syncobj, import into it,
//!   `TRANSFER` it to the timeline point and destroy the temporary.
//! * `HANDLE_TO_FD` with `EXPORT_SYNC_FILE` exports the fence of a binary syncobj; to export a
//!   timeline point we `TRANSFER` the point into a temporary binary syncobj first. A point that
//!   was never submitted fails `TRANSFER` with `EINVAL`: [`SyncobjError::NotSubmitted`]. We
//!   never pass `WAIT_FOR_SUBMIT` to `TRANSFER`: the kernel would block the caller.
//! * `SYNCOBJ_EVENTFD` with handle 0 fails with `ENOENT` when the ioctl exists (6.6+); older
//!   kernels fail with `EINVAL`, drivers without timeline support with `EOPNOTSUPP`.
//! * A registered eventfd cannot be unregistered: the kernel keeps the entry (and a reference
//!   to the eventfd context, not an fd) until the point arrives or the syncobj is destroyed.
//!
//! The timeline semantics themselves (what QUERY and WAIT return) are in
//! [`timeline`](crate::timeline).
//!
//! # How
//!
//! Callers use [`DrmTimeline`](crate::DrmTimeline); this type is its DRM implementation.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use crate::device::DrmNode;
use crate::sync_file::SyncFile;
use crate::sys;

/// A syncobj handle, valid on one DRM file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncobjHandle(pub u32);

/// Errors of syncobj operations. `NotSubmitted` and `TimedOut` are outcomes the kernel
/// reports with `EINVAL` and `ETIME`; everything else carries the kernel's errno.
#[derive(Debug, thiserror::Error)]
pub enum SyncobjError {
    /// The device cannot do this (no DRIVER_SYNCOBJ(_TIMELINE): `EOPNOTSUPP`).
    #[error("the device does not support {op}")]
    Unsupported {
        /// The operation.
        op: &'static str,
    },
    /// DRM_IOCTL_SYNCOBJ_CREATE failed.
    #[error("creating a syncobj failed")]
    Create(#[source] io::Error),
    /// The fd is not a syncobj fd (closed, a memfd, a sync_file ...).
    #[error("the file descriptor is not a DRM syncobj")]
    ImportFd(#[source] io::Error),
    /// Exporting the syncobj as an fd failed.
    #[error("exporting the syncobj as an fd failed")]
    ExportFd(#[source] io::Error),
    /// DRM_IOCTL_SYNCOBJ_QUERY failed.
    #[error("querying the timeline failed")]
    Query(#[source] io::Error),
    /// DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL failed.
    #[error("signalling timeline point {point} failed")]
    Signal {
        /// The point.
        point: u64,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT failed.
    #[error("waiting for timeline point {point} failed")]
    Wait {
        /// The point.
        point: u64,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// DRM_IOCTL_SYNCOBJ_TRANSFER failed.
    #[error("transferring a fence between syncobjs failed")]
    Transfer(#[source] io::Error),
    /// DRM_IOCTL_SYNCOBJ_EVENTFD failed.
    #[error("registering an eventfd for point {point} failed")]
    RegisterEventfd {
        /// The point.
        point: u64,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// Creating an eventfd failed (fd limit?).
    #[error("creating an eventfd failed")]
    Eventfd(#[source] io::Error),
    /// Importing a sync_file failed.
    #[error("importing a sync_file failed")]
    ImportSyncFile(#[source] io::Error),
    /// Exporting a sync_file failed.
    #[error("exporting a sync_file failed")]
    ExportSyncFile(#[source] io::Error),
    /// The point has not been submitted (no fence for it yet).
    #[error("timeline point {point} has not been submitted")]
    NotSubmitted {
        /// The point.
        point: u64,
    },
    /// The wait timed out.
    #[error("timed out waiting for timeline point {point}")]
    TimedOut {
        /// The point.
        point: u64,
    },
}

fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EOPNOTSUPP)
}

/// How a kernel wait on a point treats a point that has no fence yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitMode {
    /// No flags: a point beyond the last submitted one is an error (`EINVAL`) at once.
    Signalled,
    /// `WAIT_FOR_SUBMIT`: wait for the point to be submitted, then for it to signal.
    SubmittedThenSignalled,
    /// `WAIT_AVAILABLE`: wait only until the point has a fence (submitted).
    Available,
}

impl WaitMode {
    fn flags(self) -> u32 {
        match self {
            WaitMode::Signalled => 0,
            WaitMode::SubmittedThenSignalled => sys::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
            WaitMode::Available => sys::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE,
        }
    }
}

/// What an eventfd registered on a point waits for (the kernel allows only these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PointEvent {
    /// The point is submitted and signalled.
    Signalled,
    /// The point is submitted (has a fence), signalled or not.
    Available,
}

/// An owned syncobj handle on a DRM node; destroyed on drop.
#[derive(Debug)]
pub struct Syncobj {
    node: Arc<DrmNode>,
    handle: SyncobjHandle,
}

impl Syncobj {
    /// Creates a syncobj (`signalled`: with an already signalled fence, a binary use).
    pub fn create(node: &Arc<DrmNode>, signalled: bool) -> Result<Syncobj, SyncobjError> {
        let flags = if signalled {
            sys::DRM_SYNCOBJ_CREATE_SIGNALED
        } else {
            0
        };
        match sys::syncobj_create(node.as_fd(), flags) {
            Ok(h) => Ok(Syncobj {
                node: node.clone(),
                handle: SyncobjHandle(h),
            }),
            Err(e) if unsupported(&e) => Err(SyncobjError::Unsupported { op: "syncobjs" }),
            Err(e) => Err(SyncobjError::Create(e)),
        }
    }

    /// Imports a syncobj fd (the fd stays the caller's).
    pub fn import_fd(node: &Arc<DrmNode>, fd: BorrowedFd<'_>) -> Result<Syncobj, SyncobjError> {
        match sys::syncobj_fd_to_handle(node.as_fd(), fd, 0, 0) {
            Ok(h) => Ok(Syncobj {
                node: node.clone(),
                handle: SyncobjHandle(h),
            }),
            Err(e) if unsupported(&e) => Err(SyncobjError::Unsupported { op: "syncobjs" }),
            Err(e) => Err(SyncobjError::ImportFd(e)),
        }
    }

    /// The handle (valid while `self` lives).
    pub fn handle(&self) -> SyncobjHandle {
        self.handle
    }

    /// The node it lives on.
    pub fn node(&self) -> &Arc<DrmNode> {
        &self.node
    }

    /// A new syncobj fd for the same object (to send to another process or device).
    pub fn export_fd(&self) -> Result<OwnedFd, SyncobjError> {
        sys::syncobj_handle_to_fd(self.node.as_fd(), self.handle.0, 0)
            .map_err(SyncobjError::ExportFd)
    }

    /// DRM_IOCTL_SYNCOBJ_QUERY: the signalled point, or the last submitted one.
    pub fn query(&self, last_submitted: bool) -> Result<u64, SyncobjError> {
        let flags = if last_submitted {
            sys::DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED
        } else {
            0
        };
        sys::syncobj_query(self.node.as_fd(), self.handle.0, flags).map_err(|e| {
            if unsupported(&e) {
                SyncobjError::Unsupported {
                    op: "timeline syncobjs",
                }
            } else {
                SyncobjError::Query(e)
            }
        })
    }

    /// DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL: adds an already signalled fence at `point`
    /// (point 0 too, as an unordered point; it does not reset the timeline).
    pub fn signal(&self, point: u64) -> Result<(), SyncobjError> {
        sys::syncobj_timeline_signal(self.node.as_fd(), self.handle.0, point).map_err(|e| {
            if unsupported(&e) {
                SyncobjError::Unsupported {
                    op: "timeline syncobjs",
                }
            } else {
                SyncobjError::Signal { point, source: e }
            }
        })
    }

    /// DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT with a relative timeout in ns (0: just check).
    ///
    /// `Ok(())` when reached; [`SyncobjError::TimedOut`] (`ETIME`) or
    /// [`SyncobjError::NotSubmitted`] (`EINVAL` in [`WaitMode::Signalled`]) otherwise.
    pub fn wait(&self, point: u64, mode: WaitMode, timeout_ns: u64) -> Result<(), SyncobjError> {
        let abs = if timeout_ns == 0 {
            0
        } else {
            sys::abs_timeout(timeout_ns)
        };
        sys::syncobj_timeline_wait(self.node.as_fd(), self.handle.0, point, abs, mode.flags())
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ETIME) | Some(libc::ETIMEDOUT) => SyncobjError::TimedOut { point },
                Some(libc::EINVAL) if mode == WaitMode::Signalled => {
                    SyncobjError::NotSubmitted { point }
                }
                Some(libc::EOPNOTSUPP) => SyncobjError::Unsupported {
                    op: "timeline syncobjs",
                },
                _ => SyncobjError::Wait { point, source: e },
            })
    }

    /// DRM_IOCTL_SYNCOBJ_TRANSFER from `(src, src_point)` into `(self, dst_point)`
    /// (dst_point 0: replace the binary content). Never waits for submission.
    pub fn transfer_from(
        &self,
        src: &Syncobj,
        src_point: u64,
        dst_point: u64,
    ) -> Result<(), SyncobjError> {
        sys::syncobj_transfer(
            self.node.as_fd(),
            (src.handle.0, src_point),
            (self.handle.0, dst_point),
            0,
        )
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => SyncobjError::NotSubmitted { point: src_point },
            Some(libc::EOPNOTSUPP) => SyncobjError::Unsupported {
                op: "timeline syncobjs",
            },
            _ => SyncobjError::Transfer(e),
        })
    }

    /// DRM_IOCTL_SYNCOBJ_EVENTFD: the kernel signals `eventfd` on `event` for `point`.
    pub fn register_eventfd(
        &self,
        point: u64,
        event: PointEvent,
        eventfd: BorrowedFd<'_>,
    ) -> Result<(), SyncobjError> {
        let flags = match event {
            PointEvent::Signalled => 0,
            PointEvent::Available => sys::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE,
        };
        sys::syncobj_eventfd(self.node.as_fd(), self.handle.0, point, eventfd, flags).map_err(|e| {
            if unsupported(&e) {
                SyncobjError::Unsupported {
                    op: "SYNCOBJ_EVENTFD",
                }
            } else {
                SyncobjError::RegisterEventfd { point, source: e }
            }
        })
    }

    /// Replaces the binary content with the fence of `file`.
    pub fn import_sync_file_binary(&self, file: &SyncFile) -> Result<(), SyncobjError> {
        sys::syncobj_fd_to_handle(
            self.node.as_fd(),
            file.as_fd(),
            self.handle.0,
            sys::DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
        )
        .map(|_| ())
        .map_err(SyncobjError::ImportSyncFile)
    }

    /// Exports the binary content as a sync_file (`EINVAL` when empty: NotSubmitted).
    pub fn export_sync_file_binary(&self) -> Result<SyncFile, SyncobjError> {
        sys::syncobj_handle_to_fd(
            self.node.as_fd(),
            self.handle.0,
            sys::DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
        )
        .map(SyncFile::from_kernel)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => SyncobjError::NotSubmitted { point: 0 },
            _ => SyncobjError::ExportSyncFile(e),
        })
    }

    /// Puts the fence of `file` at timeline `point`: temporary binary syncobj + import +
    /// transfer; the temporary is destroyed on every path.
    pub fn import_sync_file(&self, point: u64, file: &SyncFile) -> Result<(), SyncobjError> {
        let tmp = Syncobj::create(&self.node, false)?;
        tmp.import_sync_file_binary(file)?;
        self.transfer_from(&tmp, 0, point)
    }

    /// A sync_file for timeline `point`: transfer into a temporary binary syncobj + export;
    /// the temporary is destroyed on every path.
    pub fn export_sync_file(&self, point: u64) -> Result<SyncFile, SyncobjError> {
        let tmp = Syncobj::create(&self.node, false)?;
        tmp.transfer_from(self, point, 0)?;
        tmp.export_sync_file_binary().map_err(|e| match e {
            SyncobjError::NotSubmitted { .. } => SyncobjError::NotSubmitted { point },
            e => e,
        })
    }

    /// A fresh eventfd registered for `event` on `point`.
    pub fn eventfd(&self, point: u64, event: PointEvent) -> Result<OwnedFd, SyncobjError> {
        let efd = sys::eventfd().map_err(SyncobjError::Eventfd)?;
        self.register_eventfd(point, event, efd.as_fd())?;
        Ok(efd)
    }
}

impl Drop for Syncobj {
    fn drop(&mut self) {
        if let Err(err) = sys::syncobj_destroy(self.node.as_fd(), self.handle.0) {
            tracing::warn!(
                ?err,
                handle = self.handle.0,
                "destroying a syncobj handle failed"
            );
        }
    }
}
