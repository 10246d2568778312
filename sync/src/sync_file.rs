//! [`SyncFile`]: a kernel fence as a file descriptor (`include/uapi/linux/sync_file.h`).
//!
//! # Why
//!
//! sync_file is how fences cross process and driver boundaries: KMS in-fences (`IN_FENCE_FD`)
//! and out-fences, the `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` of implicit sync, and the bridge into
//! and out of timeline syncobj points. A sync_file is signalled once every fence in it has
//! signalled; it then polls readable (`POLLIN`) forever.
//!
//! Kernel rules this type relies on (drivers/dma-buf/sync_file.c):
//! * `SYNC_IOC_FILE_INFO` status is 1 when signalled, 0 while active, and the first fence's
//!   negative error when one failed. Any fd that is not a sync_file fails that ioctl
//!   (`ENOTTY`/`EINVAL`), which [`SyncFile::from_fd`] turns into
//!   [`SyncFileError::NotASyncFile`]: a bad fd is an error value, never a panic.
//! * `SYNC_IOC_MERGE` makes a new sync_file holding the fences of both.
//! * `SYNC_IOC_SET_DEADLINE` exists from Linux 6.3; before that it fails with `ENOTTY`, which
//!   [`SyncFile::set_deadline`] reports as `Ok(false)` (a hint nobody listened to).
//!
//! # How
//!
//! ```no_run
//! use std::time::Duration;
//! use lockstep_sync::{SyncFile, SyncFileStatus};
//! # fn get_fd() -> std::os::fd::OwnedFd { unimplemented!() }
//! let fence = SyncFile::from_fd(get_fd())?;
//! if fence.status()? == SyncFileStatus::Pending {
//!     // On the event loop use `event_loop::SyncFileSource`; this blocks:
//!     fence.wait(Some(Duration::from_millis(16)))?;
//! }
//! # Ok::<(), lockstep_sync::SyncFileError>(())
//! ```

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::fence::{FenceError, Timestamp};
use crate::signalling::assert_may_block;
use crate::sys;

/// Errors of sync_file operations.
#[derive(Debug, thiserror::Error)]
pub enum SyncFileError {
    /// The fd is not a sync_file (closed, a memfd, a syncobj ...).
    #[error("the file descriptor is not a sync_file")]
    NotASyncFile(#[source] io::Error),
    /// SYNC_IOC_FILE_INFO failed.
    #[error("SYNC_IOC_FILE_INFO failed")]
    Info(#[source] io::Error),
    /// SYNC_IOC_MERGE failed.
    #[error("merging sync_files failed")]
    Merge(#[source] io::Error),
    /// poll(2) failed.
    #[error("polling the sync_file failed")]
    Poll(#[source] io::Error),
    /// Duplicating the fd failed (fd limit?).
    #[error("duplicating the sync_file fd failed")]
    Dup(#[source] io::Error),
    /// SYNC_IOC_SET_DEADLINE failed with something other than ENOTTY.
    #[error("SYNC_IOC_SET_DEADLINE failed")]
    Deadline(#[source] io::Error),
}

/// State of a sync_file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncFileStatus {
    /// Some fence in it has not signalled yet.
    Pending,
    /// Every fence in it has signalled without error.
    Signalled,
    /// It completed with this error.
    Failed(FenceError),
}

/// One fence inside a sync_file (from SYNC_IOC_FILE_INFO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFenceInfo {
    /// The timeline name of the fence.
    pub timeline: String,
    /// The driver that made it.
    pub driver: String,
    /// Its status.
    pub status: SyncFileStatus,
    /// When it signalled (0 while pending).
    pub timestamp: Timestamp,
}

fn status_from(raw: i32) -> SyncFileStatus {
    match raw {
        0 => SyncFileStatus::Pending,
        s if s > 0 => SyncFileStatus::Signalled,
        e => SyncFileStatus::Failed(FenceError::from_code(e).unwrap_or(FenceError::Errno(e))),
    }
}

fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or(&[])).into_owned()
}

/// An owned sync_file fd. Closing it (drop) drops our reference to its fences.
#[derive(Debug)]
pub struct SyncFile(OwnedFd);

impl SyncFile {
    /// Takes ownership of `fd` after checking that it is a sync_file.
    pub fn from_fd(fd: OwnedFd) -> Result<SyncFile, SyncFileError> {
        sys::sync_file_info(fd.as_fd()).map_err(SyncFileError::NotASyncFile)?;
        Ok(SyncFile(fd))
    }

    /// Wraps an fd the kernel just returned as a sync_file (no check).
    pub(crate) fn from_kernel(fd: OwnedFd) -> SyncFile {
        SyncFile(fd)
    }

    /// Status via SYNC_IOC_FILE_INFO.
    pub fn status(&self) -> Result<SyncFileStatus, SyncFileError> {
        let info = sys::sync_file_info(self.0.as_fd()).map_err(SyncFileError::Info)?;
        Ok(status_from(info.status))
    }

    /// Whether it is signalled (with or without error), by a zero-timeout poll.
    pub fn is_signalled(&self) -> Result<bool, SyncFileError> {
        sys::poll_readable(self.0.as_fd(), 0).map_err(SyncFileError::Poll)
    }

    /// The sync_file's name and the fences in it.
    pub fn fences(&self) -> Result<(String, Vec<SyncFenceInfo>), SyncFileError> {
        let info = sys::sync_file_info(self.0.as_fd()).map_err(SyncFileError::Info)?;
        let raw = sys::sync_file_fence_info(self.0.as_fd(), info.num_fences)
            .map_err(SyncFileError::Info)?;
        let fences = raw
            .iter()
            .map(|f| SyncFenceInfo {
                timeline: c_str(&f.obj_name),
                driver: c_str(&f.driver_name),
                status: status_from(f.status),
                timestamp: Timestamp(f.timestamp_ns),
            })
            .collect();
        Ok((c_str(&info.name), fences))
    }

    /// Blocks until signalled or `timeout` passes (`None`: forever); `Ok(false)` on timeout.
    ///
    /// Panics in debug builds inside a [signalling section](crate::signalling).
    #[track_caller]
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool, SyncFileError> {
        assert_may_block();
        let ms = match timeout {
            None => -1,
            Some(t) => i32::try_from(t.as_millis()).unwrap_or(i32::MAX),
        };
        sys::poll_readable(self.0.as_fd(), ms).map_err(SyncFileError::Poll)
    }

    /// A new sync_file that signals when both `self` and `other` have.
    pub fn merge(&self, other: &SyncFile, name: &str) -> Result<SyncFile, SyncFileError> {
        sys::sync_file_merge(self.0.as_fd(), other.0.as_fd(), name)
            .map(SyncFile)
            .map_err(SyncFileError::Merge)
    }

    /// Forwards a deadline hint to the fences' drivers; `Ok(false)` when the kernel has no
    /// SYNC_IOC_SET_DEADLINE (before 6.3).
    pub fn set_deadline(&self, deadline: Timestamp) -> Result<bool, SyncFileError> {
        match sys::sync_file_set_deadline(self.0.as_fd(), deadline.0) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOTTY) => Ok(false),
            Err(e) => Err(SyncFileError::Deadline(e)),
        }
    }

    /// Another fd for the same sync_file.
    pub fn try_clone(&self) -> Result<SyncFile, SyncFileError> {
        self.0.try_clone().map(SyncFile).map_err(SyncFileError::Dup)
    }

    /// The owned fd.
    pub fn into_fd(self) -> OwnedFd {
        self.0
    }
}

impl AsFd for SyncFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_sync_files_are_rejected() {
        let efd = sys::eventfd().expect("eventfd");
        assert!(matches!(
            SyncFile::from_fd(efd),
            Err(SyncFileError::NotASyncFile(_))
        ));
        let file = std::fs::File::open("/proc/self/stat").expect("open");
        assert!(matches!(
            SyncFile::from_fd(file.into()),
            Err(SyncFileError::NotASyncFile(_))
        ));
    }

    #[test]
    fn status_codes() {
        assert_eq!(status_from(0), SyncFileStatus::Pending);
        assert_eq!(status_from(1), SyncFileStatus::Signalled);
        assert_eq!(
            status_from(-libc::ETIMEDOUT),
            SyncFileStatus::Failed(FenceError::TimedOut)
        );
        assert_eq!(c_str(b"abc\0def"), "abc");
    }
}
