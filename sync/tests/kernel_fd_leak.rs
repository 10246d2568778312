//! fd-leak test on real kernel objects: 10,000 create/import/wait/cancel/export cycles leave
//! /proc/self/fd unchanged. One test in this binary so no other test opens fds meanwhile.
#![allow(clippy::disallowed_macros)]

mod common;

use std::os::fd::AsFd;

use lockstep_sync::sw_sync::SwSyncTimeline;
use lockstep_sync::{Point, PointEvent, SyncDevice, TimelineError};

#[test]
fn ten_thousand_kernel_cycles_leak_no_fd() {
    let Some(k) = common::kernel("ten_thousand_kernel_cycles_leak_no_fd") else {
        return;
    };
    let other = k.vkms.clone().unwrap_or_else(|| k.vgem.clone());
    let sw = SwSyncTimeline::open().expect("sw_sync");
    let cycle = |i: u32| -> Result<(), TimelineError> {
        let t = k.vgem.create_timeline()?;
        let fd = t.export_fd()?;
        let imported = other.import_timeline(fd.as_fd())?;
        drop(fd);
        // A wait registered and cancelled (its eventfd closed) before the point exists.
        let cancelled = imported.eventfd(Point(2), PointEvent::Signalled)?;
        drop(cancelled);
        let fence = sw.create_fence(i, "leak").map_err(|e| {
            TimelineError::Syncobj(lockstep_sync::SyncobjError::Eventfd(std::io::Error::other(
                e,
            )))
        })?;
        imported.import_sync_file(Point(1), &fence)?;
        let _ = imported.is_signalled(Point(1))?;
        let exported = t.export_sync_file(Point(1))?;
        drop(exported);
        t.signal(Point(2))?;
        Ok(())
    };
    // Warm up lazily opened things (none expected, but be fair).
    cycle(1).expect("cycle");
    let before = common::open_fds();
    for i in 2..10_002 {
        cycle(i).expect("cycle");
        if i % 100 == 0 {
            sw.inc(100).expect("inc");
        }
    }
    let after = common::open_fds();
    assert_eq!(before, after, "fds before {before}, after {after}");
}
