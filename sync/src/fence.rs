//! [`Fence`]: lockstep's own fence, a cheap handle to self-contained shared state.
//!
//! # Why
//!
//! The kernel learnt two lessons about fences the hard way (`drivers/dma-buf/dma-fence.c`):
//!
//! * **A fence carries its own lock.** A lock shared between the fences of one issuer ties that
//!   issuer's lifetime to every fence it ever made; per-fence ("inline") locks are the rule now.
//!   Every [`Fence`] here owns its mutex.
//! * **After signalling, a fence needs nothing from its issuer.** The issuer (a client, a
//!   device, a timeline) may go away while others hold the signalled fence. A fence keeps its
//!   [`FenceSource`] (the issuer's hook for deadline hints) only while pending and drops it the
//!   moment it signals.
//!
//! A fence completes once: [`Fence::signal`] or [`Fence::signal_with_error`] (a fence that does
//! not complete in reasonable time is force-completed with [`FenceError::TimedOut`]). The
//! completion records a CLOCK_MONOTONIC timestamp, the clock the kernel uses for sync_file
//! timestamps. [`Fence::is_signalled`] is one atomic load. Callbacks registered with
//! [`Fence::on_signal`] run on the signalling thread inside a
//! [signalling section](crate::signalling), so they must not wait; the returned
//! [`CallbackRegistration`] unregisters the callback when dropped.
//!
//! The shared state is at most 96 bytes including the `Arc` counters (a unit test checks).
//!
//! # How
//!
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//! use lockstep_sync::{FenceContext, SeqnoOrder};
//!
//! let ctx = FenceContext::new(SeqnoOrder::Linear64);
//! let fence = ctx.next_fence();
//! let fired = Arc::new(AtomicBool::new(false));
//! let flag = fired.clone();
//! let registration = fence.on_signal(move |completion| {
//!     assert!(completion.error.is_none());
//!     flag.store(true, Ordering::Relaxed);
//! });
//! assert!(!fence.is_signalled());
//! fence.signal();
//! assert!(fired.load(Ordering::Relaxed));
//! drop(registration); // nothing left to unregister
//! ```

use std::fmt;
use std::mem;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crate::context::{ContextId, Seqno};
use crate::signalling::{assert_may_block, signalling_section};

/// A point in time on CLOCK_MONOTONIC, in nanoseconds (the kernel's `ktime_get()` clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Now, on CLOCK_MONOTONIC.
    pub fn now() -> Timestamp {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call and
        // CLOCK_MONOTONIC is always available on Linux; the call cannot fail with these args.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    /// This timestamp plus a duration (saturating).
    pub fn after(self, d: Duration) -> Timestamp {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(ns))
    }
}

/// Why a fence completed without its work being done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FenceError {
    /// The fence did not signal in reasonable time and was force-completed.
    #[error("the fence did not signal in time and was force-completed")]
    TimedOut,
    /// The issuer cancelled the work the fence stood for.
    #[error("the work behind the fence was cancelled")]
    Cancelled,
    /// The issuer went away before signalling.
    #[error("the issuer of the fence went away before signalling it")]
    IssuerGone,
    /// A kernel fence completed with this errno (positive).
    #[error("the fence completed with kernel error {0}")]
    Errno(i32),
}

impl FenceError {
    /// The kernel-style negative code of this error (`fence->error`).
    pub fn code(self) -> i32 {
        match self {
            FenceError::TimedOut => -libc::ETIMEDOUT,
            FenceError::Cancelled => -libc::ECANCELED,
            FenceError::IssuerGone => -libc::ENODEV,
            // Clamp into the kernel's errno range so the code is never 0 or positive.
            FenceError::Errno(e) => -(e.unsigned_abs().clamp(1, 4095) as i32),
        }
    }

    /// The error for a kernel-style negative code; `None` for 0 and positive values.
    pub fn from_code(code: i32) -> Option<FenceError> {
        if code >= 0 {
            return None;
        }
        let errno = code.unsigned_abs().min(4095) as i32;
        Some(match errno {
            libc::ETIMEDOUT => FenceError::TimedOut,
            libc::ECANCELED => FenceError::Cancelled,
            libc::ENODEV => FenceError::IssuerGone,
            e => FenceError::Errno(e),
        })
    }
}

/// How and when a fence completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// When it completed (CLOCK_MONOTONIC).
    pub timestamp: Timestamp,
    /// `None` when the work was done; the reason otherwise.
    pub error: Option<FenceError>,
}

/// A blocking wait ran out of time before the fence signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timed out waiting for the fence")]
pub struct WaitTimedOut;

/// The issuer's side of a pending fence. Dropped as soon as the fence signals.
pub trait FenceSource: Send + Sync {
    /// A waiter would like the fence signalled by `deadline` (a hint, like
    /// `dma_fence_set_deadline`); the default ignores it.
    fn set_deadline(&self, deadline: Timestamp) {
        let _ = deadline;
    }
}

type Callback = Box<dyn FnOnce(Completion) + Send + 'static>;

struct Entry {
    id: u32,
    callback: Callback,
}

#[derive(Default)]
struct Locked {
    callbacks: Vec<Entry>,
    source: Option<Arc<dyn FenceSource>>,
}

const PENDING: i32 = 0;
const SIGNALLED: i32 = 1;

struct Inner {
    context: ContextId,
    seqno: Seqno,
    /// CLOCK_MONOTONIC ns of the completion; written before `status` (Release).
    timestamp: AtomicU64,
    /// `PENDING`, `SIGNALLED` or a negative error code.
    status: AtomicI32,
    /// Id of the next callback registration; only changed under `locked`.
    next_callback: AtomicU32,
    locked: Mutex<Locked>,
}

/// A fence: a cheap, cloneable handle to self-contained shared state. See the module docs.
#[derive(Clone)]
pub struct Fence(Arc<Inner>);

/// A fence handle that does not keep the fence alive.
#[derive(Clone)]
pub struct WeakFence(Weak<Inner>);

impl WeakFence {
    /// The fence, if someone still holds it.
    pub fn upgrade(&self) -> Option<Fence> {
        self.0.upgrade().map(Fence)
    }
}

impl fmt::Debug for WeakFence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakFence")
    }
}

/// A callback registered with [`Fence::on_signal`]; dropping it unregisters the callback.
#[must_use = "dropping the registration unregisters the callback at once"]
pub struct CallbackRegistration {
    fence: Option<Fence>,
    id: u32,
}

impl CallbackRegistration {
    /// Keeps the callback registered for good, without a handle to cancel it.
    pub fn detach(mut self) {
        self.fence = None;
    }

    /// Whether the callback is still registered (the fence has not signalled yet).
    pub fn is_armed(&self) -> bool {
        self.fence.as_ref().is_some_and(|f| !f.is_signalled())
    }
}

impl Drop for CallbackRegistration {
    fn drop(&mut self) {
        if let Some(fence) = self.fence.take() {
            let removed = {
                let mut locked = fence.lock();
                let id = self.id;
                locked
                    .callbacks
                    .iter()
                    .position(|e| e.id == id)
                    .map(|i| locked.callbacks.remove(i))
            };
            // Dropped outside the lock: the closure may own things that lock this fence.
            drop(removed);
        }
    }
}

impl fmt::Debug for CallbackRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackRegistration")
            .field("id", &self.id)
            .field("armed", &self.is_armed())
            .finish()
    }
}

impl Fence {
    /// A pending fence of `context` with `seqno` (usually made by a
    /// [`FenceContext`](crate::FenceContext)).
    pub fn new(context: ContextId, seqno: Seqno) -> Fence {
        Fence(Arc::new(Inner {
            context,
            seqno,
            timestamp: AtomicU64::new(0),
            status: AtomicI32::new(PENDING),
            next_callback: AtomicU32::new(1),
            locked: Mutex::new(Locked::default()),
        }))
    }

    /// A pending fence that forwards deadline hints to `source` until it signals.
    pub fn with_source(context: ContextId, seqno: Seqno, source: Arc<dyn FenceSource>) -> Fence {
        let fence = Fence::new(context, seqno);
        fence.lock().source = Some(source);
        fence
    }

    /// A fence that is already signalled (the kernel's "stub" fence).
    pub fn signalled() -> Fence {
        let fence = Fence::new(ContextId::STUB, Seqno(0));
        fence.signal();
        fence
    }

    /// A fence that signals once every fence in `fences` has completed (the first error, if
    /// any, is its error), like the kernel's `dma_fence_array`. An empty list is signalled.
    ///
    /// The result holds its inputs only while pending; the inputs do not keep it alive.
    pub fn all_of(fences: impl IntoIterator<Item = Fence>) -> Fence {
        let pending: Vec<Fence> = fences.into_iter().filter(|f| !f.is_signalled()).collect();
        match pending.len() {
            0 => return Fence::signalled(),
            1 => {
                if let Some(only) = pending.into_iter().next() {
                    return only;
                }
                return Fence::signalled();
            }
            _ => {}
        }
        let out = Fence::new(ContextId::STUB, Seqno(0));
        let state = Arc::new(AllOfState {
            remaining: AtomicUsize::new(pending.len()),
            first_error: AtomicI32::new(0),
        });
        let weak = out.downgrade();
        let mut registrations = Vec::with_capacity(pending.len());
        for dep in &pending {
            let state = state.clone();
            let weak = weak.clone();
            registrations.push(dep.on_signal(move |c| {
                if let Some(err) = c.error {
                    let _ = state.first_error.compare_exchange(
                        0,
                        err.code(),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                }
                if state.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    if let Some(out) = weak.upgrade() {
                        match FenceError::from_code(state.first_error.load(Ordering::Acquire)) {
                            Some(err) => out.signal_with_error(err),
                            None => out.signal(),
                        };
                    }
                }
            }));
        }
        out.set_source(Arc::new(AllOf {
            _registrations: registrations,
        }));
        out
    }

    fn lock(&self) -> MutexGuard<'_, Locked> {
        // A panicking callback never runs under this lock, but stay robust regardless.
        self.0.locked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the source of a pending fence (dropped at once if already signalled).
    pub(crate) fn set_source_internal(&self, source: Arc<dyn FenceSource>) {
        self.set_source(source);
    }

    fn set_source(&self, source: Arc<dyn FenceSource>) {
        let previous = {
            let mut locked = self.lock();
            if self.is_signalled() {
                Some(source)
            } else {
                locked.source.replace(source)
            }
        };
        drop(previous);
    }

    /// The context that issued this fence.
    pub fn context(&self) -> ContextId {
        self.0.context
    }

    /// The sequence number of this fence in its context.
    pub fn seqno(&self) -> Seqno {
        self.0.seqno
    }

    /// Whether `self` is later than `other`: `None` when they come from different contexts
    /// (fences of different issuers have no order).
    pub fn is_later(&self, other: &Fence) -> Option<bool> {
        (self.0.context == other.0.context)
            .then(|| self.0.context.order().is_later(self.0.seqno, other.0.seqno))
    }

    /// Whether the fence has completed (with or without error). One atomic load.
    #[inline]
    pub fn is_signalled(&self) -> bool {
        self.0.status.load(Ordering::Acquire) != PENDING
    }

    /// How the fence completed, or `None` while pending.
    pub fn completion(&self) -> Option<Completion> {
        let status = self.0.status.load(Ordering::Acquire);
        (status != PENDING).then(|| Completion {
            timestamp: Timestamp(self.0.timestamp.load(Ordering::Relaxed)),
            error: FenceError::from_code(status),
        })
    }

    /// Whether the fence still holds its source (only while pending).
    pub fn has_source(&self) -> bool {
        self.lock().source.is_some()
    }

    /// Signals the fence; returns `false` if it had already completed.
    pub fn signal(&self) -> bool {
        self.complete(SIGNALLED)
    }

    /// Completes the fence with an error; returns `false` if it had already completed.
    pub fn signal_with_error(&self, error: FenceError) -> bool {
        self.complete(error.code())
    }

    fn complete(&self, status: i32) -> bool {
        let (callbacks, source) = {
            let mut locked = self.lock();
            if self.0.status.load(Ordering::Relaxed) != PENDING {
                return false;
            }
            self.0
                .timestamp
                .store(Timestamp::now().0, Ordering::Relaxed);
            self.0.status.store(status, Ordering::Release);
            (mem::take(&mut locked.callbacks), locked.source.take())
        };
        // The issuer is no longer needed: drop our reference now (outside the lock).
        drop(source);
        if !callbacks.is_empty() {
            let completion = Completion {
                timestamp: Timestamp(self.0.timestamp.load(Ordering::Relaxed)),
                error: FenceError::from_code(status),
            };
            let _section = signalling_section();
            for entry in callbacks {
                (entry.callback)(completion);
            }
        }
        true
    }

    /// Registers `callback` to run once when the fence completes.
    ///
    /// If the fence has already completed, the callback runs at once on this thread and the
    /// registration is inert. Callbacks run inside a signalling section: they must not wait.
    pub fn on_signal<F>(&self, callback: F) -> CallbackRegistration
    where
        F: FnOnce(Completion) + Send + 'static,
    {
        match self.try_on_signal(callback) {
            Ok(registration) => registration,
            Err((callback, completion)) => {
                let _section = signalling_section();
                callback(completion);
                CallbackRegistration { fence: None, id: 0 }
            }
        }
    }

    /// Like [`Fence::on_signal`], but hands the callback back (with the completion) instead of
    /// running it when the fence has already completed, like the kernel's
    /// `dma_fence_add_callback` returning `-ENOENT`. Useful while holding a lock the callback
    /// would take.
    #[allow(clippy::type_complexity)]
    pub fn try_on_signal<F>(&self, callback: F) -> Result<CallbackRegistration, (F, Completion)>
    where
        F: FnOnce(Completion) + Send + 'static,
    {
        let mut locked = self.lock();
        if let Some(completion) = self.completion() {
            drop(locked);
            return Err((callback, completion));
        }
        let id = self.0.next_callback.fetch_add(1, Ordering::Relaxed);
        locked.callbacks.push(Entry {
            id,
            callback: Box::new(callback),
        });
        Ok(CallbackRegistration {
            fence: Some(self.clone()),
            id,
        })
    }

    /// Number of callbacks currently registered.
    pub fn callback_count(&self) -> usize {
        self.lock().callbacks.len()
    }

    /// Asks the issuer to signal by `deadline` (a hint; ignored once signalled).
    pub fn set_deadline(&self, deadline: Timestamp) {
        let source = {
            let locked = self.lock();
            locked.source.clone()
        };
        if let Some(source) = source {
            source.set_deadline(deadline);
        }
    }

    /// A handle that does not keep the fence alive.
    pub fn downgrade(&self) -> WeakFence {
        WeakFence(Arc::downgrade(&self.0))
    }

    /// Whether two handles refer to the same fence.
    pub fn ptr_eq(&self, other: &Fence) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Blocks the thread until the fence completes or `timeout` passes (`None`: forever).
    ///
    /// Panics in debug builds when called inside a [signalling section](crate::signalling).
    /// Never use this on the event loop; use the calloop sources instead.
    #[track_caller]
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Completion, WaitTimedOut> {
        assert_may_block();
        if let Some(c) = self.completion() {
            return Ok(c);
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let thread = thread::current();
        let _registration = self.on_signal(move |_| thread.unpark());
        loop {
            if let Some(c) = self.completion() {
                return Ok(c);
            }
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(WaitTimedOut);
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        }
    }
}

impl fmt::Debug for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fence")
            .field("context", &self.0.context.get())
            .field("seqno", &self.0.seqno.0)
            .field("completion", &self.completion())
            .finish()
    }
}

struct AllOfState {
    remaining: AtomicUsize,
    first_error: AtomicI32,
}

/// Source of an [`Fence::all_of`] fence: owns the registrations on its inputs, so dropping
/// the combined fence unregisters from them.
struct AllOf {
    _registrations: Vec<CallbackRegistration>,
}

impl FenceSource for AllOf {}

/// Size of a fence's shared allocation, `Arc` counters included (budget: 96 bytes).
pub const SHARED_STATE_SIZE: usize = mem::size_of::<Inner>() + 2 * mem::size_of::<usize>();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{FenceContext, SeqnoOrder};
    use std::sync::atomic::AtomicBool;

    fn ctx() -> FenceContext {
        FenceContext::new(SeqnoOrder::Linear64)
    }

    #[test]
    fn shared_state_fits_96_bytes() {
        let size = std::hint::black_box(SHARED_STATE_SIZE);
        assert!(size <= 96, "{size} bytes");
    }

    #[test]
    fn signal_once_with_timestamp() {
        let f = ctx().next_fence();
        assert!(!f.is_signalled());
        assert_eq!(f.completion(), None);
        let before = Timestamp::now();
        assert!(f.signal());
        assert!(!f.signal());
        assert!(!f.signal_with_error(FenceError::TimedOut));
        let c = f.completion().expect("signalled");
        assert!(c.timestamp >= before);
        assert_eq!(c.error, None);
    }

    #[test]
    fn signal_with_error_is_signalled_with_that_error() {
        for err in [
            FenceError::TimedOut,
            FenceError::Cancelled,
            FenceError::IssuerGone,
            FenceError::Errno(libc::EIO),
        ] {
            let f = ctx().next_fence();
            assert!(f.signal_with_error(err));
            assert!(f.is_signalled());
            assert_eq!(f.completion().and_then(|c| c.error), Some(err));
        }
        assert_eq!(FenceError::from_code(0), None);
        assert_eq!(FenceError::from_code(1), None);
        assert_eq!(FenceError::Errno(0).code(), -1);
        assert!(FenceError::Errno(i32::MIN).code() < 0);
    }

    #[test]
    fn callbacks_run_once_in_order_inside_a_section() {
        let f = ctx().next_fence();
        let log = Arc::new(Mutex::new(Vec::new()));
        let regs: Vec<_> = (0..3)
            .map(|i| {
                let log = log.clone();
                f.on_signal(move |_| {
                    assert!(crate::signalling::in_signalling_section());
                    log.lock().unwrap_or_else(PoisonError::into_inner).push(i);
                })
            })
            .collect();
        assert_eq!(f.callback_count(), 3);
        f.signal();
        f.signal();
        assert_eq!(
            *log.lock().unwrap_or_else(PoisonError::into_inner),
            vec![0, 1, 2]
        );
        drop(regs);
    }

    #[test]
    fn dropping_registration_unregisters() {
        let f = ctx().next_fence();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        let reg = f.on_signal(move |_| flag.store(true, Ordering::Relaxed));
        assert!(reg.is_armed());
        drop(reg);
        assert_eq!(f.callback_count(), 0);
        f.signal();
        assert!(!fired.load(Ordering::Relaxed));
    }

    #[test]
    fn detached_registration_still_fires() {
        let f = ctx().next_fence();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        f.on_signal(move |_| flag.store(true, Ordering::Relaxed))
            .detach();
        f.signal();
        assert!(fired.load(Ordering::Relaxed));
    }

    #[test]
    fn on_signal_after_signal_runs_at_once() {
        let f = Fence::signalled();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        let reg = f.on_signal(move |_| flag.store(true, Ordering::Relaxed));
        assert!(fired.load(Ordering::Relaxed));
        assert!(!reg.is_armed());
        assert!(f.try_on_signal(|_| {}).is_err());
    }

    #[test]
    fn callback_may_drop_its_own_registration_target() {
        // A callback that owns a registration on the same fence must not deadlock.
        let f = ctx().next_fence();
        let inner = f.on_signal(|_| {});
        let reg = f.on_signal(move |_| drop(inner));
        f.signal();
        drop(reg);
    }

    struct Issuer {
        deadline: AtomicU64,
    }
    impl FenceSource for Issuer {
        fn set_deadline(&self, deadline: Timestamp) {
            self.deadline.store(deadline.0, Ordering::Relaxed);
        }
    }

    #[test]
    fn source_gets_deadline_and_is_dropped_on_signal() {
        let issuer = Arc::new(Issuer {
            deadline: AtomicU64::new(0),
        });
        let f = Fence::with_source(ContextId::STUB, Seqno(1), issuer.clone());
        f.set_deadline(Timestamp(1234));
        assert_eq!(issuer.deadline.load(Ordering::Relaxed), 1234);
        assert!(f.has_source());
        assert_eq!(Arc::strong_count(&issuer), 2);
        f.signal();
        assert!(!f.has_source());
        assert_eq!(Arc::strong_count(&issuer), 1);
        f.set_deadline(Timestamp(99));
        assert_eq!(issuer.deadline.load(Ordering::Relaxed), 1234);
    }

    #[test]
    fn is_later_needs_same_context() {
        let c = ctx();
        let a = c.next_fence();
        let b = c.next_fence();
        assert_eq!(b.is_later(&a), Some(true));
        assert_eq!(a.is_later(&b), Some(false));
        assert_eq!(a.is_later(&ctx().next_fence()), None);
    }

    #[test]
    fn all_of_waits_for_every_input_and_keeps_first_error() {
        let c = ctx();
        let (a, b, d) = (c.next_fence(), c.next_fence(), c.next_fence());
        let all = Fence::all_of([a.clone(), b.clone(), d.clone(), Fence::signalled()]);
        a.signal();
        assert!(!all.is_signalled());
        b.signal_with_error(FenceError::Cancelled);
        assert!(!all.is_signalled());
        d.signal();
        assert_eq!(
            all.completion().and_then(|c| c.error),
            Some(FenceError::Cancelled)
        );
        assert!(Fence::all_of([]).is_signalled());
    }

    #[test]
    fn dropping_all_of_unregisters_from_inputs() {
        let c = ctx();
        let (a, b) = (c.next_fence(), c.next_fence());
        let all = Fence::all_of([a.clone(), b.clone()]);
        assert_eq!(a.callback_count(), 1);
        drop(all);
        assert_eq!(a.callback_count(), 0);
        assert_eq!(b.callback_count(), 0);
    }

    #[test]
    fn blocking_wait_times_out_and_wakes() {
        let f = ctx().next_fence();
        assert_eq!(f.wait(Some(Duration::from_millis(5))), Err(WaitTimedOut));
        assert_eq!(f.callback_count(), 0);
        let g = f.clone();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            g.signal();
        });
        assert!(f.wait(Some(Duration::from_secs(10))).is_ok());
        assert!(t.join().is_ok());
    }

    #[test]
    fn fence_outlives_its_context() {
        let f = {
            let c = ctx();
            c.next_fence()
        };
        f.signal();
        assert!(f.is_signalled());
    }
}
