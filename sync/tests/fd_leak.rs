//! fd-leak test without a kernel device: 10,000 create/import/wait/cancel/complete cycles on
//! SoftTimeline with calloop wait sources leave /proc/self/fd unchanged. (The kernel variant
//! is kernel_fd_leak.rs.) One test in this binary so no other test opens fds meanwhile.
#![cfg(feature = "calloop")]

use std::time::Duration;

use lockstep_sync::event_loop::{FenceWait, PointWait};
use lockstep_sync::{
    FenceContext, Point, PointEvent, SeqnoOrder, SoftTimeline, Timeline, TimelinePoint,
};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[test]
fn ten_thousand_soft_cycles_leak_no_fd() {
    let mut event_loop: calloop::EventLoop<'_, u32> = calloop::EventLoop::try_new().expect("loop");
    let ctx = FenceContext::new(SeqnoOrder::Linear64);
    let mut fired = 0;
    let mut cycle = |event_loop: &mut calloop::EventLoop<'_, u32>| {
        let timeline = SoftTimeline::new();
        let render = ctx.next_fence();
        timeline.add_point(Point(1), render.clone());
        let acquire = TimelinePoint::new(Timeline::Soft(timeline.clone()), Point(1));
        // A wait that is cancelled before anything happens.
        let cancelled = PointWait::new(&acquire, PointEvent::Signalled).expect("wait");
        let token = event_loop
            .handle()
            .insert_source(cancelled, |(), _, n| *n += 100)
            .map_err(|e| e.error)
            .expect("insert");
        event_loop.handle().remove(token);
        // A wait that completes.
        let release = TimelinePoint::new(Timeline::Soft(timeline.clone()), Point(2));
        let wait = PointWait::new(&release, PointEvent::Signalled).expect("wait");
        event_loop
            .handle()
            .insert_source(wait, |(), _, n| *n += 1)
            .map_err(|e| e.error)
            .expect("insert");
        let fence_wait = FenceWait::new(render.clone()).expect("ping");
        drop(fence_wait);
        render.signal();
        timeline.signal(Point(2));
        event_loop
            .dispatch(Duration::from_secs(1), &mut fired)
            .expect("dispatch");
    };
    cycle(&mut event_loop);
    let before = open_fds();
    for _ in 0..10_000 {
        cycle(&mut event_loop);
    }
    let after = open_fds();
    assert_eq!(fired, 10_001);
    assert_eq!(before, after, "fds before {before}, after {after}");
}
