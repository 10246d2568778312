//! Property tests: random operation sequences on SoftTimeline, checked after every step against
//! the reference model in `common/model.rs` (and a few invariants).

#[path = "common/model.rs"]
mod model;

use lockstep_sync::{
    Fence, FenceContext, Point, SeqnoOrder, SoftTimeline, TimelineError, WaitMode,
};
use model::{Answer, Model};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// TIMELINE_SIGNAL(point).
    Signal(u64),
    /// Import a pending fence at point (point 0: replace the content).
    AddPending(u64),
    /// Signal the n-th pending fence (modulo the count).
    Complete(usize),
    /// Register a wait fence for a point (checked against the model from then on).
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..10).prop_map(Op::Signal),
        3 => (0u64..10).prop_map(Op::AddPending),
        3 => any::<usize>().prop_map(Op::Complete),
        2 => (0u64..11).prop_map(Op::Wait),
    ]
}

struct Harness {
    timeline: SoftTimeline,
    model: Model,
    fences: Vec<(Fence, usize)>,
    waits: Vec<(u64, Fence)>,
    ctx: FenceContext,
}

impl Harness {
    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Signal(p) => {
                let f = self.model.new_fence(true);
                self.model.add(p, f);
                self.timeline.signal(Point(p));
            }
            Op::AddPending(p) => {
                let f = self.model.new_fence(false);
                if p == 0 {
                    self.model.replace(f);
                } else {
                    self.model.add(p, f);
                }
                let fence = self.ctx.next_fence();
                self.timeline.add_point(Point(p), fence.clone());
                self.fences.push((fence, f));
            }
            Op::Complete(n) => {
                let pending: Vec<usize> = (0..self.fences.len())
                    .filter(|&i| self.fences.get(i).is_some_and(|(f, _)| !f.is_signalled()))
                    .collect();
                if let Some(&i) = pending.get(n % pending.len().max(1)) {
                    if let Some((fence, m)) = self.fences.get(i) {
                        fence.signal();
                        if let Some(s) = self.model.signalled.get_mut(*m) {
                            *s = true;
                        }
                    }
                }
            }
            Op::Wait(p) => {
                if let Ok(f) = self.timeline.wait(Point(p), WaitMode::Signalled) {
                    self.waits.push((p, f));
                }
            }
        }
    }

    fn verify_invariants(&self) -> Result<(), TestCaseError> {
        prop_assert_eq!(self.timeline.query().0, self.model.query());
        prop_assert_eq!(
            self.timeline.last_submitted().0,
            self.model.last_submitted()
        );
        prop_assert!(self.timeline.query() <= self.timeline.last_submitted());
        for p in 0..=11 {
            let got = match self.timeline.is_signalled(Point(p)) {
                Ok(true) => Answer::Signalled,
                Ok(false) => Answer::Pending,
                Err(TimelineError::NotSubmitted { .. }) => Answer::NotSubmitted,
                Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
            };
            prop_assert_eq!(got, self.model.check(p), "point {}", p);
            prop_assert_eq!(
                self.timeline.is_available(Point(p)),
                self.model.available(p)
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn soft_timeline_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut h = Harness {
            timeline: SoftTimeline::new(),
            model: Model::default(),
            fences: Vec::new(),
            waits: Vec::new(),
            ctx: FenceContext::new(SeqnoOrder::Linear64),
        };
        for op in &ops {
            h.apply(op);
            h.verify_invariants()?;
        }
        // Once every fence is signalled, every wait made along the way has signalled too.
        for (fence, m) in &h.fences {
            fence.signal();
            if let Some(s) = h.model.signalled.get_mut(*m) { *s = true; }
        }
        h.verify_invariants()?;
        for (p, f) in &h.waits {
            prop_assert!(f.is_signalled(), "wait for point {} still pending", p);
        }
    }
}
