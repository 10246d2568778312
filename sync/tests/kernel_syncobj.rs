//! Kernel tests of every syncobj and sync_file operation, on vgem (and vkms across devices)
//! with sw_sync fences. They skip with a message where no capable device exists.
#![allow(clippy::disallowed_macros)]

mod common;

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use lockstep_sync::sw_sync::SwSyncTimeline;
use lockstep_sync::{
    Point, PointEvent, SyncDevice, SyncFile, SyncFileStatus, Syncobj, SyncobjError, TimelineError,
    WaitMode,
};

fn not_submitted<T: std::fmt::Debug>(r: Result<T, TimelineError>) -> bool {
    matches!(r, Err(TimelineError::NotSubmitted { .. }))
}

#[test]
fn probe_reports_everything_supported() {
    let Some(k) = common::kernel("probe_reports_everything_supported") else {
        return;
    };
    let caps = k.vgem.capabilities();
    assert!(caps.supports_explicit_sync(), "{caps:?}");
    assert_eq!(caps.driver, "vgem");
    if let Some(vkms) = &k.vkms {
        assert!(
            vkms.capabilities().supports_explicit_sync(),
            "{:?}",
            vkms.capabilities()
        );
    }
}

#[test]
fn signal_query_and_cross_device_import() {
    let Some(k) = common::kernel("signal_query_and_cross_device_import") else {
        return;
    };
    let t = k.vgem.create_timeline().expect("create");
    assert_eq!(t.query().expect("query"), Point(0));
    assert_eq!(t.last_submitted().expect("query"), Point(0));
    t.signal(Point(3)).expect("signal");
    assert_eq!(t.query().expect("query"), Point(3));
    assert_eq!(t.last_submitted().expect("query"), Point(3));
    assert!(t.is_signalled(Point(2)).expect("wait"));
    assert!(not_submitted(t.is_signalled(Point(4))));

    let fd = t.export_fd().expect("export");
    let other = k.vkms.as_ref().unwrap_or(&k.vgem);
    let imported = other.import_timeline(fd.as_fd()).expect("import");
    assert_eq!(imported.query().expect("query"), Point(3));
    imported.signal(Point(7)).expect("signal");
    assert_eq!(t.query().expect("query"), Point(7));
}

#[test]
fn bad_fds_are_errors() {
    let Some(k) = common::kernel("bad_fds_are_errors") else {
        return;
    };
    let efd = lockstep_sync::sys::eventfd().expect("eventfd");
    assert!(matches!(
        k.vgem.import_timeline(efd.as_fd()),
        Err(SyncobjError::ImportFd(_))
    ));
    let memfd = std::fs::File::open("/proc/self/stat").expect("file");
    assert!(matches!(
        k.vgem.import_timeline(memfd.as_fd()),
        Err(SyncobjError::ImportFd(_))
    ));
    let sw = SwSyncTimeline::open().expect("sw_sync");
    let sync_file = sw.create_fence(1, "bad-fd").expect("fence");
    assert!(matches!(
        k.vgem.import_timeline(sync_file.as_fd()),
        Err(SyncobjError::ImportFd(_))
    ));
    // A closed fd number.
    let closed = {
        let f = lockstep_sync::sys::eventfd().expect("eventfd");
        std::os::fd::AsRawFd::as_raw_fd(&f)
    };
    // SAFETY: the kernel only looks the number up in our fd table; a closed number is
    // looked up and rejected (EBADF/EINVAL), no memory is involved.
    let closed = unsafe { BorrowedFd::borrow_raw(closed) };
    assert!(matches!(
        k.vgem.import_timeline(closed),
        Err(SyncobjError::ImportFd(_))
    ));
    // A syncobj fd where a sync_file is expected.
    let t = k.vgem.create_timeline().expect("create");
    let syncobj_fd = t.export_fd().expect("export");
    assert!(SyncFile::from_fd(syncobj_fd).is_err());
}

#[test]
fn sync_file_point_import_eventfd_and_query() {
    let Some(k) = common::kernel("sync_file_point_import_eventfd_and_query") else {
        return;
    };
    let t = k.vgem.create_timeline().expect("create");
    let signalled = t.eventfd(Point(1), PointEvent::Signalled).expect("eventfd");
    let available = t.eventfd(Point(1), PointEvent::Available).expect("eventfd");
    let readable =
        |fd: BorrowedFd<'_>, ms| lockstep_sync::sys::poll_readable(fd, ms).expect("poll");
    assert!(!readable(available.as_fd(), 0));

    let sw = SwSyncTimeline::open().expect("sw_sync");
    let fence = sw.create_fence(1, "acquire").expect("fence");
    t.import_sync_file(Point(1), &fence).expect("import");
    assert!(readable(available.as_fd(), 1000));
    assert!(!readable(signalled.as_fd(), 50));
    assert_eq!(t.query().expect("query"), Point(0));
    assert_eq!(t.last_submitted().expect("query"), Point(1));
    assert!(!t.is_signalled(Point(1)).expect("wait"));
    assert!(t.is_available(Point(1)).expect("wait"));
    assert!(matches!(
        t.wait(Point(1), WaitMode::Signalled, Duration::from_millis(10)),
        Err(TimelineError::TimedOut { .. })
    ));

    sw.inc(1).expect("inc");
    assert!(readable(signalled.as_fd(), 1000));
    assert_eq!(t.query().expect("query"), Point(1));
    t.wait(Point(1), WaitMode::Signalled, Duration::from_secs(1))
        .expect("wait");
}

#[test]
fn export_point_as_sync_file() {
    let Some(k) = common::kernel("export_point_as_sync_file") else {
        return;
    };
    let t = k.vgem.create_timeline().expect("create");
    assert!(not_submitted(t.export_sync_file(Point(1))));
    let sw = SwSyncTimeline::open().expect("sw_sync");
    t.import_sync_file(Point(1), &sw.create_fence(1, "render").expect("fence"))
        .expect("import");
    let exported = t.export_sync_file(Point(1)).expect("export");
    assert_eq!(exported.status().expect("status"), SyncFileStatus::Pending);
    sw.inc(1).expect("inc");
    assert!(exported.wait(Some(Duration::from_secs(1))).expect("wait"));
    assert_eq!(
        exported.status().expect("status"),
        SyncFileStatus::Signalled
    );

    // The temporary binary syncobjs are destroyed: the kernel hands out the same lowest free
    // handle again afterwards.
    let node = k.vgem.node().clone();
    let before = Syncobj::create(&node, false).expect("create").handle();
    for _ in 0..50 {
        let _ = t.export_sync_file(Point(1)).expect("export");
        let _ = t.export_sync_file(Point(9));
        t.import_sync_file(Point(1), &exported).expect("import");
    }
    let after = Syncobj::create(&node, false).expect("create").handle();
    assert_eq!(before, after);
}

#[test]
fn waits_beyond_the_last_submitted_point() {
    let Some(k) = common::kernel("waits_beyond_the_last_submitted_point") else {
        return;
    };
    let t = k.vgem.create_timeline().expect("create");
    t.signal(Point(1)).expect("signal");
    let short = Duration::from_millis(20);
    assert!(not_submitted(t.wait(Point(2), WaitMode::Signalled, short)));
    assert!(matches!(
        t.wait(Point(2), WaitMode::SubmittedThenSignalled, short),
        Err(TimelineError::TimedOut { .. })
    ));
    assert!(matches!(
        t.wait(Point(2), WaitMode::Available, short),
        Err(TimelineError::TimedOut { .. })
    ));
    assert!(!t.is_available(Point(2)).expect("wait"));
    t.signal(Point(2)).expect("signal");
    t.wait(Point(2), WaitMode::SubmittedThenSignalled, short)
        .expect("wait");
}

#[test]
fn unordered_point_and_reset() {
    let Some(k) = common::kernel("unordered_point_and_reset") else {
        return;
    };
    let t = k.vgem.create_timeline().expect("create");
    t.signal(Point(5)).expect("signal");
    let sw = SwSyncTimeline::open().expect("sw_sync");
    t.import_sync_file(Point(3), &sw.create_fence(1, "late").expect("fence"))
        .expect("import");
    assert_eq!(t.last_submitted().expect("query"), Point(5));
    assert_eq!(t.query().expect("query"), Point(0));
    assert!(!t.is_signalled(Point(1)).expect("wait"));
    assert!(!t.is_signalled(Point(5)).expect("wait"));
    sw.inc(1).expect("inc");
    assert_eq!(t.query().expect("query"), Point(5));
    assert!(t.is_signalled(Point(5)).expect("wait"));

    // TIMELINE_SIGNAL of point 0 is an unordered point, not a reset.
    t.signal(Point(0)).expect("signal 0");
    assert_eq!(t.query().expect("query"), Point(5));
    assert_eq!(t.last_submitted().expect("query"), Point(5));
    assert!(t.is_signalled(Point(0)).expect("wait"));
    assert!(t.is_signalled(Point(5)).expect("wait"));

    // Importing a fence at point 0 (TRANSFER to point 0) replaces the content: a reset.
    let done = sw.create_fence(1, "done").expect("fence");
    t.import_sync_file(Point(0), &done).expect("import at 0");
    assert_eq!(t.query().expect("query"), Point(0));
    assert_eq!(t.last_submitted().expect("query"), Point(0));
    assert!(t.is_signalled(Point(0)).expect("wait"));
    assert!(not_submitted(t.is_signalled(Point(1))));
}

#[test]
fn sync_file_info_merge_and_deadline() {
    let Some(_k) = common::kernel("sync_file_info_merge_and_deadline") else {
        return;
    };
    let a = SwSyncTimeline::open().expect("sw_sync");
    let b = SwSyncTimeline::open().expect("sw_sync");
    let fa = a.create_fence(1, "a").expect("fence");
    let fb = b.create_fence(1, "b").expect("fence");
    let merged = fa.merge(&fb, "both").expect("merge");
    let (name, fences) = merged.fences().expect("info");
    assert_eq!(name, "both");
    assert_eq!(fences.len(), 2);
    assert!(fences.iter().all(|f| f.status == SyncFileStatus::Pending));
    let deadline = lockstep_sync::Timestamp::now().after(Duration::from_millis(5));
    let supported = merged.set_deadline(deadline).expect("deadline");
    eprintln!("SYNC_IOC_SET_DEADLINE supported: {supported}");
    a.inc(1).expect("inc");
    assert!(!merged.is_signalled().expect("poll"));
    b.inc(1).expect("inc");
    assert!(merged.is_signalled().expect("poll"));
    let (_, fences) = merged.fences().expect("info");
    assert!(fences
        .iter()
        .all(|f| f.status == SyncFileStatus::Signalled && f.timestamp.0 > 0));
}

#[cfg(feature = "calloop")]
#[test]
fn event_loop_waits_cost_one_fd_each() {
    use lockstep_sync::event_loop::{SyncFileWait, SyncobjWait};
    let Some(k) = common::kernel("event_loop_waits_cost_one_fd_each") else {
        return;
    };
    common::raise_fd_limit();
    let mut event_loop: calloop::EventLoop<'_, usize> =
        calloop::EventLoop::try_new().expect("loop");
    let t = k.vgem.create_timeline().expect("create");
    let before = common::open_fds();
    let mut tokens = Vec::new();
    for p in 1..=1000u64 {
        let wait = SyncobjWait::new(&t, Point(p), PointEvent::Signalled).expect("wait");
        tokens.push(
            event_loop
                .handle()
                .insert_source(wait, |(), _, n| *n += 1)
                .map_err(|e| e.error)
                .expect("insert"),
        );
    }
    let during = common::open_fds();
    assert!(
        during - before <= 1000,
        "{} fds for 1000 waits",
        during - before
    );
    let mut fired = 0;
    event_loop
        .dispatch(Duration::ZERO, &mut fired)
        .expect("dispatch");
    assert_eq!(fired, 0);
    t.signal(Point(500)).expect("signal");
    while fired < 500 {
        event_loop
            .dispatch(Duration::from_secs(1), &mut fired)
            .expect("dispatch");
    }
    assert_eq!(fired, 500);
    // Cancel the rest by removing them: their eventfds close.
    for token in tokens {
        event_loop.handle().remove(token);
    }
    assert!(common::open_fds() <= before + 1);

    let sw = SwSyncTimeline::open().expect("sw_sync");
    let file = sw.create_fence(1, "kms").expect("fence");
    event_loop
        .handle()
        .insert_source(SyncFileWait::new(file), |status, _, n| {
            assert_eq!(status, SyncFileStatus::Signalled);
            *n += 1;
        })
        .map_err(|e| e.error)
        .expect("insert");
    sw.inc(1).expect("inc");
    event_loop
        .dispatch(Duration::from_secs(1), &mut fired)
        .expect("dispatch");
    assert_eq!(fired, 501);
}
