//! [`SoftTimeline`]: a userspace timeline with exactly the kernel's semantics.
//!
//! # Why
//!
//! Where no DRM device exists (headless tests, some nested setups) lockstep still runs the
//! explicit-sync protocol on timelines it keeps itself; and everywhere it serves as the
//! executable statement of the kernel rules listed in [`timeline`](crate::timeline). It models
//! the `dma_fence_chain` literally (nodes with seqno, context and prev_seqno) rather than an
//! idealised timeline, because clients see the kernel's answers, quirks included.
//!
//! Fully signalled old nodes are dropped as the kernel's chain walk does, so a timeline that a
//! client signals forever keeps O(pending points) memory.
//!
//! # How
//!
//! ```
//! use lockstep_sync::{FenceContext, Point, SeqnoOrder, SoftTimeline, WaitMode};
//!
//! let timeline = SoftTimeline::new();
//! let gpu = FenceContext::new(SeqnoOrder::Linear64);
//! let render = gpu.next_fence();
//! timeline.add_point(Point(1), render.clone()); // like importing a sync_file at point 1
//! let acquire = timeline.wait(Point(1), WaitMode::Signalled)?;
//! assert!(!acquire.is_signalled());
//! render.signal();
//! assert!(acquire.is_signalled());
//! // A point nobody submitted yet:
//! assert!(timeline.wait(Point(2), WaitMode::Signalled).is_err());
//! let later = timeline.wait(Point(2), WaitMode::SubmittedThenSignalled)?;
//! timeline.signal(Point(2));
//! assert!(later.is_signalled());
//! # Ok::<(), lockstep_sync::TimelineError>(())
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::fence::{CallbackRegistration, Fence, FenceSource, WeakFence};
use crate::syncobj::{PointEvent, WaitMode};
use crate::timeline::{Point, TimelineError};

#[derive(Debug)]
struct Node {
    seqno: u64,
    context: u64,
    prev_seqno: u64,
    fence: Fence,
}

#[derive(Debug)]
struct PendingWait {
    point: u64,
    event: PointEvent,
    out: WeakFence,
}

#[derive(Debug, Default)]
struct Inner {
    /// A non-chain fence below the chain: what point 0 (reset) leaves. `None`: no fence.
    base: Option<Fence>,
    /// Chain nodes, oldest first; the head is the last.
    nodes: VecDeque<Node>,
    next_context: u64,
    /// Waits for points not submitted yet (WAIT_FOR_SUBMIT / WAIT_AVAILABLE / eventfd), by
    /// point: a signal resolves only the waits at or below the new head, without visiting
    /// the others (a compositor may hold a thousand commits on later points).
    waits: BTreeMap<u64, Vec<PendingWait>>,
    /// Entries in `waits`, dropped waiters included (they are forgotten lazily).
    wait_entries: usize,
    /// When `wait_entries` reaches this, waits whose waiter was dropped are removed: twice
    /// the live count after the last sweep, so the sweeps cost O(1) per wait on average and
    /// dropped waits never make up more than half of the map.
    sweep_at: usize,
}

/// The smallest [`Inner::sweep_at`].
const MIN_SWEEP: usize = 64;

/// What a wait for a point resolves to.
enum Target {
    Signalled,
    Pending(Vec<Fence>),
}

impl Target {
    fn into_fence(self) -> Fence {
        match self {
            Target::Signalled => Fence::signalled(),
            Target::Pending(deps) => Fence::all_of(deps),
        }
    }
}

impl Inner {
    fn base_pending(&self) -> bool {
        self.base.as_ref().is_some_and(|b| !b.is_signalled())
    }

    /// Drops the fully signalled prefix of the chain (never the head), like the chain walk.
    fn prune(&mut self) {
        if self.nodes.is_empty() || self.base_pending() {
            return;
        }
        self.base = None;
        while self.nodes.len() > 1 && self.nodes.front().is_some_and(|n| n.fence.is_signalled()) {
            self.nodes.pop_front();
        }
    }

    /// Index of the newest node below `i` whose own fence is pending.
    fn next_pending_below(&self, i: usize) -> Option<usize> {
        (0..i)
            .rev()
            .find(|&k| self.nodes.get(k).is_some_and(|n| !n.fence.is_signalled()))
    }

    /// The pending fences a node's signalling depends on (itself and everything older).
    fn deps_up_to(&self, i: usize) -> Target {
        let mut deps: Vec<Fence> = self
            .nodes
            .iter()
            .take(i + 1)
            .filter(|n| !n.fence.is_signalled())
            .map(|n| n.fence.clone())
            .collect();
        if let Some(base) = self.base.as_ref().filter(|b| !b.is_signalled()) {
            deps.push(base.clone());
        }
        if deps.is_empty() {
            Target::Signalled
        } else {
            Target::Pending(deps)
        }
    }

    fn chain_signalled(&self, i: usize) -> bool {
        matches!(self.deps_up_to(i), Target::Signalled)
    }

    /// `dma_fence_chain_find_seqno` + `drm_syncobj_find_fence`: `None` = not submitted.
    fn find(&self, point: u64) -> Option<Target> {
        let Some(head_index) = self.nodes.len().checked_sub(1) else {
            // Not a chain: point 0 waits for the plain fence, if any; other points fail.
            return match (&self.base, point) {
                (Some(base), 0) if !base.is_signalled() => {
                    Some(Target::Pending(vec![base.clone()]))
                }
                (Some(_), 0) => Some(Target::Signalled),
                _ => None,
            };
        };
        let head = self.nodes.get(head_index)?;
        if point == 0 {
            return Some(self.deps_up_to(head_index));
        }
        if head.seqno < point {
            return None;
        }
        let head_context = head.context;
        let mut i = head_index;
        loop {
            let node = self.nodes.get(i)?;
            if node.context != head_context || node.prev_seqno < point {
                return Some(self.deps_up_to(i));
            }
            match self.next_pending_below(i) {
                Some(k) => i = k,
                None => {
                    // The walk ends at the plain base fence (another context) or runs out.
                    return Some(match self.base.as_ref().filter(|b| !b.is_signalled()) {
                        Some(base) => Target::Pending(vec![base.clone()]),
                        None => Target::Signalled,
                    });
                }
            }
        }
    }

    fn query(&self) -> u64 {
        let Some(head_index) = self.nodes.len().checked_sub(1) else {
            return 0;
        };
        let Some(head_context) = self.nodes.get(head_index).map(|n| n.context) else {
            return 0;
        };
        let mut last = head_index;
        while let Some(k) = self.next_pending_below(last) {
            if !matches!(self.nodes.get(k), Some(n) if n.context == head_context) {
                break;
            }
            last = k;
        }
        let Some(node) = self.nodes.get(last) else {
            return 0;
        };
        if self.chain_signalled(last) {
            node.seqno
        } else {
            node.prev_seqno
        }
    }

    fn last_submitted(&self) -> u64 {
        self.nodes.back().map_or(0, |n| n.seqno)
    }

    /// `drm_syncobj_replace_fence`: the chain is dropped, `fence` becomes the content.
    fn replace(&mut self, fence: Fence) {
        self.nodes.clear();
        self.base = Some(fence);
    }

    /// `drm_syncobj_add_point`: a new chain node (point 0 included: it is never later than
    /// the head, so it is an unordered point).
    fn add(&mut self, point: u64, fence: Fence) {
        let context = self.next_context;
        let node = match self.nodes.back() {
            Some(head) if point > head.seqno => Node {
                seqno: point,
                context: head.context,
                prev_seqno: head.seqno,
                fence,
            },
            Some(head) => {
                self.next_context += 1;
                Node {
                    seqno: head.seqno.max(point),
                    context,
                    prev_seqno: 0,
                    fence,
                }
            }
            None => {
                self.next_context += 1;
                Node {
                    seqno: point,
                    context,
                    prev_seqno: 0,
                    fence,
                }
            }
        };
        self.nodes.push_back(node);
    }

    /// Resolves waits whose point is now submitted; returns what to complete after unlocking.
    /// Whether a point is submitted is monotonic in the point (a point is submitted when the
    /// head's seqno reaches it), so the walk goes up from the lowest point and stops at the
    /// first one still unsubmitted.
    fn resolve_waits(&mut self) -> Vec<(Fence, Option<Fence>)> {
        let mut ready = Vec::new();
        while let Some((&point, _)) = self.waits.first_key_value() {
            if self.find(point).is_none() {
                break;
            }
            let waits = self.waits.remove(&point).unwrap_or_default();
            self.wait_entries -= waits.len();
            for wait in waits {
                let Some(out) = wait.out.upgrade() else {
                    continue; // the waiter was dropped: forget the wait
                };
                // `find` again per wait: each gets its own fence of the target.
                if let Some(target) = self.find(wait.point) {
                    match wait.event {
                        PointEvent::Available => ready.push((out, None)),
                        PointEvent::Signalled => ready.push((out, Some(target.into_fence()))),
                    }
                }
            }
        }
        ready
    }

    /// Adds a wait for an unsubmitted point, sweeping dropped ones when they may be many.
    fn add_wait(&mut self, wait: PendingWait) {
        if self.wait_entries + 1 >= self.sweep_at.max(MIN_SWEEP) {
            self.sweep_waits();
            self.sweep_at = 2 * self.wait_entries;
        }
        self.waits.entry(wait.point).or_default().push(wait);
        self.wait_entries += 1;
    }

    /// Forgets waits whose waiter was dropped.
    fn sweep_waits(&mut self) {
        self.waits.retain(|_, waits| {
            waits.retain(|w| w.out.upgrade().is_some());
            !waits.is_empty()
        });
        self.wait_entries = self.waits.values().map(Vec::len).sum();
    }
}

/// Forwards the completion of `from` to the fence that owns this source.
struct Forward {
    _from: Fence,
    _registration: CallbackRegistration,
}

impl FenceSource for Forward {}

fn forward(from: Fence, to: &Fence) {
    let weak = to.downgrade();
    let registration = from.on_signal(move |c| {
        if let Some(to) = weak.upgrade() {
            match c.error {
                Some(e) => to.signal_with_error(e),
                None => to.signal(),
            };
        }
    });
    to.set_source_internal(Arc::new(Forward {
        _from: from,
        _registration: registration,
    }));
}

/// A userspace timeline with the kernel's semantics. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct SoftTimeline(Arc<Mutex<Inner>>);

impl fmt::Debug for SoftTimeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("SoftTimeline")
            .field("nodes", &inner.nodes.len())
            .field("last_submitted", &inner.last_submitted())
            .finish()
    }
}

impl SoftTimeline {
    /// An empty timeline (like a freshly created syncobj: no fence at all).
    pub fn new() -> SoftTimeline {
        SoftTimeline::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `fence` at `point`, like importing a sync_file at a point (binary syncobj +
    /// `TRANSFER`). `TRANSFER` to point 0 *replaces* the whole content with `fence` (a reset).
    pub fn add_point(&self, point: Point, fence: Fence) {
        self.update(|inner| {
            if point.0 == 0 {
                inner.replace(fence);
            } else {
                inner.add(point.0, fence);
            }
        });
    }

    /// Adds an already signalled point (`TIMELINE_SIGNAL`). Point 0 is added as a chain node
    /// like any other point (an unordered one once the timeline has points): it does not reset.
    pub fn signal(&self, point: Point) {
        self.update(|inner| inner.add(point.0, Fence::signalled()));
    }

    fn update(&self, change: impl FnOnce(&mut Inner)) {
        let ready = {
            let mut inner = self.lock();
            inner.prune();
            change(&mut inner);
            inner.resolve_waits()
        };
        // Completed outside the lock: callbacks may use this timeline again.
        for (out, target) in ready {
            match target {
                None => {
                    out.signal();
                }
                Some(target) => forward(target, &out),
            }
        }
    }

    /// QUERY (see the rules in [`timeline`](crate::timeline)).
    pub fn query(&self) -> Point {
        let mut inner = self.lock();
        inner.prune();
        Point(inner.query())
    }

    /// QUERY with LAST_SUBMITTED.
    pub fn last_submitted(&self) -> Point {
        Point(self.lock().last_submitted())
    }

    /// Whether `point` is signalled; [`TimelineError::NotSubmitted`] if it is not submitted.
    pub fn is_signalled(&self, point: Point) -> Result<bool, TimelineError> {
        let mut inner = self.lock();
        inner.prune();
        match inner.find(point.0) {
            None => Err(TimelineError::NotSubmitted { point }),
            Some(Target::Signalled) => Ok(true),
            Some(Target::Pending(_)) => Ok(false),
        }
    }

    /// Whether `point` is submitted.
    pub fn is_available(&self, point: Point) -> bool {
        self.lock().find(point.0).is_some()
    }

    /// A fence for `point` under `mode` (the userspace TIMELINE_WAIT):
    ///
    /// * [`WaitMode::Signalled`]: signals with the point; error if not submitted.
    /// * [`WaitMode::SubmittedThenSignalled`]: waits for submission too.
    /// * [`WaitMode::Available`]: signals once the point is submitted.
    ///
    /// Dropping the returned fence cancels the wait.
    pub fn wait(&self, point: Point, mode: WaitMode) -> Result<Fence, TimelineError> {
        let mut inner = self.lock();
        inner.prune();
        match (inner.find(point.0), mode) {
            (Some(_), WaitMode::Available) => Ok(Fence::signalled()),
            (Some(target), _) => {
                drop(inner);
                Ok(target.into_fence())
            }
            (None, WaitMode::Signalled) => Err(TimelineError::NotSubmitted { point }),
            (None, mode) => {
                let out = Fence::new(crate::ContextId::STUB, crate::Seqno(point.0));
                inner.add_wait(PendingWait {
                    point: point.0,
                    event: if mode == WaitMode::Available {
                        PointEvent::Available
                    } else {
                        PointEvent::Signalled
                    },
                    out: out.downgrade(),
                });
                Ok(out)
            }
        }
    }

    /// The fence of `point` to put on another timeline (`TRANSFER`): error if not submitted.
    pub fn point_fence(&self, point: Point) -> Result<Fence, TimelineError> {
        self.wait(point, WaitMode::Signalled)
    }

    /// `TRANSFER` from `(self, src)` to `(dst, dst_point)`.
    pub fn transfer(
        &self,
        src: Point,
        dst: &SoftTimeline,
        dst_point: Point,
    ) -> Result<(), TimelineError> {
        let fence = self.point_fence(src)?;
        dst.add_point(dst_point, fence);
        Ok(())
    }

    /// Number of chain nodes currently kept (for tests and memory checks).
    pub fn node_count(&self) -> usize {
        self.lock().nodes.len()
    }

    /// Number of waits for unsubmitted points currently registered.
    pub fn pending_wait_count(&self) -> usize {
        let mut inner = self.lock();
        inner.sweep_waits();
        inner.wait_entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{FenceContext, SeqnoOrder};

    fn pending() -> Fence {
        FenceContext::new(SeqnoOrder::Linear64).next_fence()
    }

    #[test]
    fn empty_timeline() {
        let t = SoftTimeline::new();
        assert_eq!(t.query(), Point(0));
        assert_eq!(t.last_submitted(), Point(0));
        assert!(matches!(
            t.is_signalled(Point(0)),
            Err(TimelineError::NotSubmitted { .. })
        ));
        assert!(t.is_signalled(Point(1)).is_err());
    }

    #[test]
    fn signalling_is_cumulative() {
        let t = SoftTimeline::new();
        let f1 = pending();
        t.add_point(Point(1), f1.clone());
        t.signal(Point(3));
        assert_eq!(t.last_submitted(), Point(3));
        assert_eq!(t.query(), Point(0));
        assert_eq!(t.is_signalled(Point(2)).ok(), Some(false));
        assert_eq!(t.is_signalled(Point(3)).ok(), Some(false));
        let w = t.wait(Point(3), WaitMode::Signalled).expect("submitted");
        f1.signal();
        assert!(w.is_signalled());
        assert_eq!(t.query(), Point(3));
        assert_eq!(t.is_signalled(Point(2)).ok(), Some(true));
        assert!(t.is_signalled(Point(4)).is_err());
    }

    #[test]
    fn unordered_point_keeps_seqno_and_hides_query() {
        let t = SoftTimeline::new();
        t.signal(Point(5));
        let late = pending();
        t.add_point(Point(3), late.clone());
        assert_eq!(t.last_submitted(), Point(5));
        assert_eq!(t.query(), Point(0));
        // Every point up to the head now waits for the unordered fence.
        assert_eq!(t.is_signalled(Point(1)).ok(), Some(false));
        assert_eq!(t.is_signalled(Point(5)).ok(), Some(false));
        late.signal();
        assert_eq!(t.query(), Point(5));
        assert_eq!(t.is_signalled(Point(5)).ok(), Some(true));
    }

    #[test]
    fn point_zero_signal_is_an_unordered_point_and_import_at_zero_resets() {
        let t = SoftTimeline::new();
        t.signal(Point(0));
        assert_eq!(t.last_submitted(), Point(0));
        assert_eq!(t.is_signalled(Point(0)).ok(), Some(true));
        assert!(t.is_signalled(Point(1)).is_err());
        t.signal(Point(7));
        t.signal(Point(0));
        assert_eq!(t.query(), Point(7));
        assert_eq!(t.last_submitted(), Point(7));
        t.add_point(Point(0), Fence::signalled());
        assert_eq!(t.query(), Point(0));
        assert_eq!(t.last_submitted(), Point(0));
        assert_eq!(t.is_signalled(Point(0)).ok(), Some(true));
        assert!(t.is_signalled(Point(1)).is_err());
        t.signal(Point(2));
        assert_eq!(t.query(), Point(2));
    }

    #[test]
    fn waits_for_submission() {
        let t = SoftTimeline::new();
        let avail = t.wait(Point(2), WaitMode::Available).expect("wait");
        let sig = t
            .wait(Point(2), WaitMode::SubmittedThenSignalled)
            .expect("wait");
        assert_eq!(t.pending_wait_count(), 2);
        let f = pending();
        t.add_point(Point(2), f.clone());
        assert!(avail.is_signalled());
        assert!(!sig.is_signalled());
        f.signal();
        assert!(sig.is_signalled());
        assert_eq!(t.pending_wait_count(), 0);
    }

    #[test]
    fn a_signal_resolves_the_waits_up_to_its_point_only() {
        let t = SoftTimeline::new();
        let waits: Vec<Fence> = (1..=100)
            .map(|p| {
                t.wait(Point(p), WaitMode::SubmittedThenSignalled)
                    .expect("wait")
            })
            .collect();
        // Two waits on one point resolve together.
        let twin = t
            .wait(Point(40), WaitMode::SubmittedThenSignalled)
            .expect("wait");
        t.signal(Point(40));
        for (p, w) in (1..=100).zip(&waits) {
            assert_eq!(w.is_signalled(), p <= 40, "point {p}");
        }
        assert!(twin.is_signalled());
        assert_eq!(t.pending_wait_count(), 60);
        t.signal(Point(100));
        assert!(waits.iter().all(Fence::is_signalled));
        assert_eq!(t.pending_wait_count(), 0);
    }

    #[test]
    fn dropped_waits_do_not_pile_up() {
        let t = SoftTimeline::new();
        let kept = t
            .wait(Point(1_000_000), WaitMode::SubmittedThenSignalled)
            .expect("wait");
        for p in 1..=10_000 {
            drop(
                t.wait(Point(p), WaitMode::SubmittedThenSignalled)
                    .expect("wait"),
            );
        }
        // Swept as they come: never more than twice the live waits (or the minimum).
        let entries = t.lock().wait_entries;
        assert!(entries <= MIN_SWEEP, "{entries} entries");
        assert_eq!(t.pending_wait_count(), 1);
        t.signal(Point(1_000_000));
        assert!(kept.is_signalled());
    }

    #[test]
    fn dropping_a_wait_cancels_it() {
        let t = SoftTimeline::new();
        let w = t
            .wait(Point(9), WaitMode::SubmittedThenSignalled)
            .expect("wait");
        drop(w);
        assert_eq!(t.pending_wait_count(), 0);
        let f = pending();
        t.add_point(Point(1), f.clone());
        t.add_point(Point(2), pending());
        let w = t.wait(Point(2), WaitMode::Signalled).expect("wait");
        assert_eq!(f.callback_count(), 1);
        drop(w);
        assert_eq!(f.callback_count(), 0);
    }

    #[test]
    fn signalled_prefix_is_pruned() {
        let t = SoftTimeline::new();
        for p in 1..=1000 {
            t.signal(Point(p));
        }
        assert_eq!(t.query(), Point(1000));
        assert!(t.node_count() <= 2, "{}", t.node_count());
    }

    #[test]
    fn transfer_between_timelines() {
        let a = SoftTimeline::new();
        let b = SoftTimeline::new();
        let f = pending();
        a.add_point(Point(4), f.clone());
        a.transfer(Point(4), &b, Point(1)).expect("transfer");
        assert!(a.transfer(Point(5), &b, Point(2)).is_err());
        assert_eq!(b.is_signalled(Point(1)).ok(), Some(false));
        f.signal();
        assert_eq!(b.is_signalled(Point(1)).ok(), Some(true));
        assert_eq!(b.query(), Point(1));
    }

    #[test]
    fn error_completion_is_forwarded() {
        let t = SoftTimeline::new();
        let w = t
            .wait(Point(1), WaitMode::SubmittedThenSignalled)
            .expect("wait");
        let f = pending();
        t.add_point(Point(1), f.clone());
        f.signal_with_error(crate::FenceError::TimedOut);
        assert_eq!(
            w.completion().and_then(|c| c.error),
            Some(crate::FenceError::TimedOut)
        );
    }
}
