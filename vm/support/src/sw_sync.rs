//! sw_sync: fences that signal exactly when a test says so.
//!
//! Each open of `/sys/kernel/debug/sync/sw_sync` is a new timeline at value 0. A fence made
//! for value `v` signals when the timeline is advanced to `v` or beyond. Tests use it to play
//! "the GPU finished rendering" at a moment of their choosing:
//!
//! ```no_run
//! use std::time::Duration;
//! use lockstep_vm_support::sw_sync::SwTimeline;
//!
//! let gpu = SwTimeline::new()?;
//! let done = gpu.fence(1, "frame 1")?;
//! assert!(!done.is_signalled()?);
//! gpu.advance(1)?;
//! assert!(done.wait(Duration::from_secs(1))?);
//! # Ok::<(), lockstep_vm_support::Error>(())
//! ```

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::fs::{Mode, OFlags};

use crate::guest::wait_readable;
use crate::sys;
use crate::{Error, Result};
use lockstep_sync::sys as kernel;

/// The debugfs file whose every open is a new timeline.
pub const SW_SYNC_PATH: &str = "/sys/kernel/debug/sync/sw_sync";

/// A sw_sync timeline.
#[derive(Debug)]
pub struct SwTimeline {
    fd: OwnedFd,
}

impl SwTimeline {
    /// Creates a new timeline at value 0.
    pub fn new() -> Result<Self> {
        let fd = rustix::fs::open(SW_SYNC_PATH, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::file("open", SW_SYNC_PATH)(e.into()))?;
        Ok(Self { fd })
    }

    /// A fence (as a sync_file) that signals when the timeline reaches `value`. `name` shows
    /// up in `/sys/kernel/debug/sync/info`; longer than 31 bytes is cut.
    pub fn fence(&self, value: u32, name: &str) -> Result<SyncFile> {
        kernel::sw_sync_create_fence(self.fd.as_fd(), value, name)
            .map(SyncFile)
            .map_err(sys::kernel_error("SW_SYNC_IOC_CREATE_FENCE"))
    }

    /// The earliest deadline (CLOCK_MONOTONIC nanoseconds) a waiter set on `fence`, one of
    /// this timeline's fences (`SW_SYNC_GET_DEADLINE`); `None` when nobody set one.
    pub fn deadline(&self, fence: &SyncFile) -> Result<Option<u64>> {
        match kernel::sw_sync_get_deadline(self.fd.as_fd(), fence.as_fd()) {
            Ok(ns) => Ok(Some(ns)),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOENT.raw_os_error()) => Ok(None),
            Err(e) => Err(sys::kernel_error("SW_SYNC_GET_DEADLINE")(e)),
        }
    }

    /// Advances the timeline by `by`, signalling every fence at or below the new value.
    pub fn advance(&self, by: u32) -> Result<()> {
        kernel::sw_sync_inc(self.fd.as_fd(), by).map_err(sys::kernel_error("SW_SYNC_IOC_INC"))
    }
}

/// A sync_file: one fence (or a merge of fences) as an fd. Readable once signalled.
#[derive(Debug)]
pub struct SyncFile(OwnedFd);

/// What `SYNC_IOC_FILE_INFO` says about a sync_file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceStatus {
    /// Not signalled yet.
    Pending,
    /// Signalled without error.
    Signalled,
    /// Signalled with an error (the errno, negative as the kernel reports it).
    Error(i32),
}

impl SyncFile {
    /// Takes ownership of a sync_file fd (e.g. one exported from a syncobj or a KMS
    /// out-fence).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self(fd)
    }

    /// Gives the fd back.
    pub fn into_fd(self) -> OwnedFd {
        self.0
    }

    /// Whether the fence has signalled, without waiting.
    pub fn is_signalled(&self) -> Result<bool> {
        wait_readable(&self.0, Duration::ZERO)
    }

    /// Waits up to `timeout`; returns whether the fence signalled.
    pub fn wait(&self, timeout: Duration) -> Result<bool> {
        wait_readable(&self.0, timeout)
    }

    /// The status the kernel reports (`SYNC_IOC_FILE_INFO`).
    pub fn status(&self) -> Result<FenceStatus> {
        let info = kernel::sync_file_info(self.0.as_fd())
            .map_err(sys::kernel_error("SYNC_IOC_FILE_INFO"))?;
        Ok(match info.status {
            0 => FenceStatus::Pending,
            1 => FenceStatus::Signalled,
            errno => FenceStatus::Error(errno),
        })
    }
}

impl AsFd for SyncFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
