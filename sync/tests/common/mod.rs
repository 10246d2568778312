//! Shared helpers of the kernel tests: find capable devices or skip loudly.
//!
//! Kernel tests need a DRM node with timeline syncobjs (vgem/vkms with the VM's patch) and
//! sw_sync. Where those are missing (a developer machine) each test prints why to stderr and
//! passes as skipped; with `LOCKSTEP_REQUIRE_KERNEL=1` (set by the VM harness) a missing piece
//! fails the test instead, so a skip in CI cannot hide.
#![allow(dead_code, clippy::disallowed_macros)]

use lockstep_sync::sw_sync::SwSyncTimeline;
use lockstep_sync::{DrmDevice, NodeKind, SyncDevice};

/// The devices the kernel tests use.
pub struct Kernel {
    /// vgem render node (client side).
    pub vgem: DrmDevice,
    /// vkms primary node (compositor side), when present.
    pub vkms: Option<DrmDevice>,
}

fn required() -> bool {
    std::env::var_os("LOCKSTEP_REQUIRE_KERNEL").is_some_and(|v| v == "1")
}

/// The devices, or `None` after printing why the test is skipped.
pub fn kernel(test: &str) -> Option<Kernel> {
    let reason = match DrmDevice::find_driver("vgem", NodeKind::Render) {
        Err(e) => format!("no vgem render node ({e})"),
        Ok(vgem) => match vgem.capabilities().require_explicit_sync() {
            Err(missing) => format!("vgem lacks explicit sync: {missing}"),
            Ok(()) => {
                if SwSyncTimeline::available() {
                    let vkms = DrmDevice::find_driver("vkms", NodeKind::Primary).ok();
                    return Some(Kernel { vgem, vkms });
                }
                format!("no sw_sync at {}", lockstep_sync::sw_sync::SW_SYNC_PATH)
            }
        },
    };
    assert!(
        !required(),
        "{test}: LOCKSTEP_REQUIRE_KERNEL=1 but {reason}"
    );
    eprintln!("SKIP {test}: {reason} (run in the VM: vm/test -p lockstep-sync)");
    None
}

/// Number of open fds of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Raises the soft fd limit to the hard limit (the VM's default soft limit is 1024, and the
/// 1,000-waits test needs a little more than that).
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit; raising the soft limit up to the hard limit is
        // always permitted.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    }
}
