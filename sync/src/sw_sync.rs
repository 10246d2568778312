//! sw_sync: kernel fences that signal exactly when a test says so.
//!
//! # Why
//!
//! Tests (ours and the compositor's VM tests) need a real kernel fence that plays "the GPU
//! finished rendering" on demand. The kernel's debugfs sw_sync interface
//! (`drivers/dma-buf/sw_sync.c`, `CONFIG_SW_SYNC`) gives exactly that: every `open()` of
//! `/sys/kernel/debug/sync/sw_sync` is a new timeline whose value starts at 0;
//! `SW_SYNC_IOC_CREATE_FENCE` makes a sync_file that signals when the timeline reaches a value;
//! `SW_SYNC_IOC_INC` advances it. Fences of one timeline signal in value order, so a test that
//! needs fences signalled in an arbitrary order uses one timeline per fence.
//!
//! Not for production: debugfs is root-only and absent on most desktops.
//!
//! # How
//!
//! ```no_run
//! use lockstep_sync::sw_sync::SwSyncTimeline;
//! let timeline = SwSyncTimeline::open()?;
//! let fence = timeline.create_fence(1, "render")?;
//! assert!(!fence.is_signalled()?);
//! timeline.inc(1)?;
//! assert!(fence.is_signalled()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use crate::sync_file::SyncFile;
use crate::sys;

/// Where the kernel exposes sw_sync.
pub const SW_SYNC_PATH: &str = "/sys/kernel/debug/sync/sw_sync";

/// Errors of sw_sync.
#[derive(Debug, thiserror::Error)]
pub enum SwSyncError {
    /// The debugfs file could not be opened (no debugfs, no CONFIG_SW_SYNC, not root).
    #[error("sw_sync is not available at {SW_SYNC_PATH}")]
    Unavailable(#[source] io::Error),
    /// SW_SYNC_IOC_CREATE_FENCE failed.
    #[error("SW_SYNC_IOC_CREATE_FENCE failed")]
    CreateFence(#[source] io::Error),
    /// SW_SYNC_IOC_INC failed.
    #[error("SW_SYNC_IOC_INC failed")]
    Inc(#[source] io::Error),
}

/// One sw_sync timeline (value starts at 0).
#[derive(Debug)]
pub struct SwSyncTimeline {
    fd: OwnedFd,
}

impl SwSyncTimeline {
    /// Opens a new sw_sync timeline.
    pub fn open() -> Result<SwSyncTimeline, SwSyncError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(SW_SYNC_PATH)
            .map_err(SwSyncError::Unavailable)?;
        Ok(SwSyncTimeline { fd: file.into() })
    }

    /// Whether sw_sync can be opened on this machine.
    pub fn available() -> bool {
        SwSyncTimeline::open().is_ok()
    }

    /// A sync_file that signals when this timeline reaches `value`.
    pub fn create_fence(&self, value: u32, name: &str) -> Result<SyncFile, SwSyncError> {
        sys::sw_sync_create_fence(self.fd.as_fd(), value, name)
            .map(SyncFile::from_kernel)
            .map_err(SwSyncError::CreateFence)
    }

    /// Advances the timeline by `count`, signalling every fence it passes.
    pub fn inc(&self, count: u32) -> Result<(), SwSyncError> {
        sys::sw_sync_inc(self.fd.as_fd(), count).map_err(SwSyncError::Inc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_macros)]
    fn open_reports_unavailable_as_error() {
        match SwSyncTimeline::open() {
            Ok(_) => eprintln!("sw_sync available here; kernel tests cover it"),
            Err(e) => assert!(matches!(e, SwSyncError::Unavailable(_))),
        }
    }
}
