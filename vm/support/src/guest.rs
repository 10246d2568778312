//! Am I in the VM? Skip loudly on a host, fail loudly in the guest.
//!
//! Guest tests are ordinary `#[test]`s, so `cargo test` on a host (no `/dev/dri`) runs them
//! too. There they print one `skipped` line and pass. Inside the VM the guest init exports
//! [`VM_ENV`]`=1`; a missing device there is a broken bench, and the test panics instead of
//! skipping (a skip in CI hides exactly the bugs the VM exists to find).
//!
//! ```no_run
//! #[test]
//! fn vkms_has_a_cursor_plane() {
//!     let Some(dev) = lockstep_vm_support::guest::devices_or_skip("vkms_has_a_cursor_plane")
//!     else {
//!         return;
//!     };
//!     // ... use dev.vkms, dev.vgem
//! }
//! ```

use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};

use crate::drm::{DrmNode, NodeKind};
use crate::{Error, Result};

/// Environment variable the guest init sets to `1`.
pub const VM_ENV: &str = "LOCKSTEP_VM";

/// Whether this process runs inside the lockstep VM guest.
pub fn in_vm() -> bool {
    std::env::var_os(VM_ENV).is_some_and(|v| v == "1")
}

/// The devices every guest test starts from.
#[derive(Debug)]
pub struct Devices {
    /// vkms primary node: KMS, the "display".
    pub vkms: DrmNode,
    /// vgem render node: the "client GPU".
    pub vgem: DrmNode,
}

impl Devices {
    /// Opens vkms (primary node) and vgem (render node).
    pub fn open() -> Result<Self> {
        Ok(Self {
            vkms: DrmNode::find("vkms", NodeKind::Primary)?,
            vgem: DrmNode::find("vgem", NodeKind::Render)?,
        })
    }

    /// Opens vgem's primary node, which (unlike the render node) can create dumb buffers.
    pub fn vgem_card(&self) -> Result<DrmNode> {
        DrmNode::find("vgem", NodeKind::Primary)
    }
}

/// Opens the guest [`Devices`]. On a host without them, prints why `test` is skipped and
/// returns `None`; inside the VM ([`in_vm`]) a failure panics with the reason.
pub fn devices_or_skip(test: &str) -> Option<Devices> {
    match Devices::open() {
        Ok(devices) => Some(devices),
        Err(err) if in_vm() => panic!("{test}: the VM guest lacks a device it must have: {err}"),
        Err(err) => {
            skip(test, &err.to_string());
            None
        }
    }
}

/// Prints the loud one-line skip notice the VM tests use. It goes straight to stderr, past
/// libtest's output capture, so a host `cargo test` shows every skip.
pub fn skip(test: &str, why: &str) {
    let line = format!("skipped {test}: {why} (not in the lockstep VM; `vm/test` runs it)\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Waits up to `timeout` for `fd` to become readable (an eventfd fired, a sync_file
/// signalled, a CRC line arrived). Returns whether it did.
pub fn wait_readable(fd: impl AsFd, timeout: Duration) -> Result<bool> {
    let timeout = Timespec::try_from(timeout).map_err(|_| Error::Timeout {
        what: "a representable poll timeout",
        after: timeout,
    })?;
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    loop {
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(n) => return Ok(n > 0 && fds[0].revents().contains(PollFlags::IN)),
            Err(rustix::io::Errno::INTR) => continue,
            Err(source) => {
                return Err(Error::Syscall {
                    what: "poll",
                    source,
                })
            }
        }
    }
}
