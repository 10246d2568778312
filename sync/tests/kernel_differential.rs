//! Differential test: the same random operation sequences applied to a SoftTimeline and to a
//! kernel timeline syncobj (sw_sync fences imported at points) give the same QUERY,
//! LAST_SUBMITTED, wait and availability answers after every step, unordered points and
//! point-0 resets included. Where they differ, the kernel is right.
#![allow(clippy::disallowed_macros)]

mod common;

#[path = "common/model.rs"]
mod model;

use lockstep_sync::sw_sync::SwSyncTimeline;
use lockstep_sync::{
    DrmTimeline, Fence, FenceContext, Point, SeqnoOrder, SoftTimeline, SyncDevice, TimelineError,
};
use model::Rng;

#[derive(Debug, Clone, Copy)]
enum Op {
    Signal(u64),
    AddPending(u64),
    Complete(u64),
}

fn answer(r: Result<bool, TimelineError>) -> Result<bool, String> {
    match r {
        Ok(b) => Ok(b),
        Err(TimelineError::NotSubmitted { .. }) => Err("not submitted".to_owned()),
        Err(e) => Err(format!("error: {e}")),
    }
}

fn compare(soft: &SoftTimeline, kernel: &DrmTimeline, history: &[Op]) {
    let ctx = || format!("after {history:?}");
    assert_eq!(
        kernel.query().expect("query").0,
        soft.query().0,
        "QUERY {}",
        ctx()
    );
    assert_eq!(
        kernel.last_submitted().expect("query").0,
        soft.last_submitted().0,
        "LAST_SUBMITTED {}",
        ctx()
    );
    for p in 0..=11 {
        assert_eq!(
            answer(kernel.is_signalled(Point(p))),
            answer(soft.is_signalled(Point(p))),
            "wait point {p} {}",
            ctx()
        );
        assert_eq!(
            kernel.is_available(Point(p)).expect("available"),
            soft.is_available(Point(p)),
            "available point {p} {}",
            ctx()
        );
    }
}

#[test]
fn soft_timeline_matches_kernel_syncobj() {
    let Some(k) = common::kernel("soft_timeline_matches_kernel_syncobj") else {
        return;
    };
    let ctx = FenceContext::new(SeqnoOrder::Linear64);
    let sequences = 60;
    for seed in 1..=sequences {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        let soft = SoftTimeline::new();
        let kernel = k.vgem.create_timeline().expect("create");
        let mut pending: Vec<(SwSyncTimeline, Fence)> = Vec::new();
        let mut history = Vec::new();
        for _ in 0..25 {
            let op = match rng.below(10) {
                0..=2 => Op::Signal(if rng.below(12) == 0 {
                    0
                } else {
                    1 + rng.below(9)
                }),
                3..=6 => Op::AddPending(if rng.below(15) == 0 {
                    0
                } else {
                    1 + rng.below(9)
                }),
                _ => Op::Complete(rng.below(8)),
            };
            history.push(op);
            match op {
                Op::Signal(p) => {
                    kernel.signal(Point(p)).expect("signal");
                    soft.signal(Point(p));
                }
                Op::AddPending(p) => {
                    let sw = SwSyncTimeline::open().expect("sw_sync");
                    let file = sw.create_fence(1, "diff").expect("fence");
                    kernel.import_sync_file(Point(p), &file).expect("import");
                    let fence = ctx.next_fence();
                    soft.add_point(Point(p), fence.clone());
                    pending.push((sw, fence));
                }
                Op::Complete(n) => {
                    let open: Vec<usize> = (0..pending.len())
                        .filter(|&i| pending.get(i).is_some_and(|(_, f)| !f.is_signalled()))
                        .collect();
                    let len = u64::try_from(open.len()).unwrap_or(1).max(1);
                    let pick = usize::try_from(n % len).unwrap_or(0);
                    if let Some((sw, fence)) = open.get(pick).and_then(|&i| pending.get(i)) {
                        sw.inc(1).expect("inc");
                        fence.signal();
                    }
                }
            }
            compare(&soft, &kernel, &history);
        }
    }
    eprintln!("{sequences} sequences of 25 operations agree with the kernel");
}
