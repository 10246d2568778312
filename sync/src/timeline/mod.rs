//! Timelines and their points, over two backends with one set of rules.
//!
//! # Why
//!
//! linux-drm-syncobj-v1 speaks in timeline points: "the buffer is ready at (T, a)", "tell me
//! at (T, r) when you are done with it". A timeline is a DRM timeline syncobj
//! ([`DrmTimeline`]) whenever a device exists, and a pure userspace [`SoftTimeline`] otherwise
//! (headless tests, nested backends without a render node). The soft one is also the
//! reference model of the kernel's behaviour: property tests check it against a small model
//! and a differential test in the VM checks it against a real syncobj.
//!
//! # The kernel's rules (drivers/gpu/drm/drm_syncobj.c, drivers/dma-buf/dma-fence-chain.c)
//!
//! A timeline syncobj holds a chain of nodes, newest first. Adding point `p` with fence `f`
//! (`TIMELINE_SIGNAL` adds an already signalled fence; `TRANSFER` adds the source's fence)
//! creates a node `{seqno, context, prev_seqno, f}`:
//!
//! * **Ordered point** (`p` later than the head's seqno): the node joins the head's context,
//!   `seqno = p`, `prev_seqno = head.seqno`.
//! * **Unordered point** (`p <= head.seqno`): the node gets a *new* context,
//!   `seqno = max(head.seqno, p)` (the head's seqno: it never goes down) and `prev_seqno = 0`.
//!   The kernel only logs "You are adding an unorder point to timeline!" at debug level.
//! * **Point 0** (found in the VM, see `tests/kernel_syncobj.rs`): `TIMELINE_SIGNAL` adds
//!   point 0 as a chain node like any other point. Being never later than the head, it is an
//!   unordered point (new context, the head's seqno), so it does *not* reset the timeline; on
//!   an empty syncobj it makes a chain whose head has seqno 0. `TRANSFER` to point 0 (and so
//!   importing a sync_file "at point 0") instead *replaces* the whole content with that one
//!   fence: a reset after which QUERY and LAST_SUBMITTED read 0 and points >= 1 are not
//!   submitted.
//!
//! **When a point is signalled.** A chain node signals when its own fence and every node before
//! it have signalled (signalling is cumulative). Waiting for point `p` walks from the head over
//! nodes whose own fence is still pending and stops at the first node of another context or
//! with `prev_seqno < p`; `p` is signalled when that node is. For an ordered timeline this is
//! "the first point >= p and everything before it have signalled". After an unordered point,
//! every `p >= 1` waits for the newest node, i.e. for the unordered fence *and* all older ones.
//!
//! **QUERY** walks the same way from the head (within the head's context only) to the oldest
//! pending node `n`; it returns `n.seqno` when `n` is signalled (only possible when `n` is the
//! head, i.e. everything is), else `n.prev_seqno`. So it is "the highest point below which
//! everything has signalled" on an ordered timeline, but **0 while an unordered point is
//! pending**, even when lower points did signal. `LAST_SUBMITTED` returns the head's seqno;
//! both return 0 when the content is not a chain (empty, or reset by point 0).
//!
//! **Points beyond the last submitted one.** Waiting without flags fails at once with `EINVAL`
//! ([`TimelineError::NotSubmitted`]); `WAIT_FOR_SUBMIT` waits for the point to be submitted and
//! then signalled; `WAIT_AVAILABLE` waits only until it is submitted. A wait that runs out of
//! time fails with `ETIME` ([`TimelineError::TimedOut`]). `SYNCOBJ_EVENTFD` always waits for
//! submission (flags 0 = then signalled, `WAIT_AVAILABLE` = submitted).
//!
//! # How
//!
//! ```
//! use lockstep_sync::{Point, SoftTimeline, Timeline, TimelinePoint};
//!
//! let timeline = Timeline::Soft(SoftTimeline::new());
//! let acquire = TimelinePoint::new(timeline.clone(), Point(1));
//! assert!(acquire.is_signalled().is_err()); // not submitted yet
//! timeline.signal(Point(1))?;
//! assert!(acquire.is_signalled()?);
//! assert_eq!(timeline.query()?, Point(1));
//! # Ok::<(), lockstep_sync::TimelineError>(())
//! ```

pub mod drm;
pub mod soft;

use crate::sync_file::SyncFileError;
use crate::syncobj::SyncobjError;

pub use drm::DrmTimeline;
pub use soft::SoftTimeline;

/// A point on a timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Point(pub u64);

/// Errors of timeline operations.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    /// The point has not been submitted (and the operation does not wait for submission).
    #[error("timeline point {} has not been submitted", .point.0)]
    NotSubmitted {
        /// The point.
        point: Point,
    },
    /// A wait ran out of time.
    #[error("timed out waiting for timeline point {}", .point.0)]
    TimedOut {
        /// The point.
        point: Point,
    },
    /// A kernel syncobj operation failed.
    #[error(transparent)]
    Syncobj(SyncobjError),
    /// A sync_file operation failed.
    #[error(transparent)]
    SyncFile(#[from] SyncFileError),
}

impl From<SyncobjError> for TimelineError {
    fn from(e: SyncobjError) -> TimelineError {
        match e {
            SyncobjError::NotSubmitted { point } => TimelineError::NotSubmitted {
                point: Point(point),
            },
            SyncobjError::TimedOut { point } => TimelineError::TimedOut {
                point: Point(point),
            },
            e => TimelineError::Syncobj(e),
        }
    }
}

/// A timeline on either backend.
#[derive(Debug, Clone)]
pub enum Timeline {
    /// Userspace timeline.
    Soft(SoftTimeline),
    /// Kernel timeline syncobj.
    Drm(DrmTimeline),
}

impl Timeline {
    /// Adds an already signalled point (`TIMELINE_SIGNAL`; point 0 does not reset).
    pub fn signal(&self, point: Point) -> Result<(), TimelineError> {
        match self {
            Timeline::Soft(t) => {
                t.signal(point);
                Ok(())
            }
            Timeline::Drm(t) => t.signal(point),
        }
    }

    /// QUERY: see the module docs.
    pub fn query(&self) -> Result<Point, TimelineError> {
        match self {
            Timeline::Soft(t) => Ok(t.query()),
            Timeline::Drm(t) => t.query(),
        }
    }

    /// QUERY with LAST_SUBMITTED.
    pub fn last_submitted(&self) -> Result<Point, TimelineError> {
        match self {
            Timeline::Soft(t) => Ok(t.last_submitted()),
            Timeline::Drm(t) => t.last_submitted(),
        }
    }

    /// Whether `point` is signalled; [`TimelineError::NotSubmitted`] beyond the last submitted.
    pub fn is_signalled(&self, point: Point) -> Result<bool, TimelineError> {
        match self {
            Timeline::Soft(t) => t.is_signalled(point),
            Timeline::Drm(t) => t.is_signalled(point),
        }
    }

    /// Whether `point` has been submitted (has a fence).
    pub fn is_available(&self, point: Point) -> Result<bool, TimelineError> {
        match self {
            Timeline::Soft(t) => Ok(t.is_available(point)),
            Timeline::Drm(t) => t.is_available(point),
        }
    }
}

/// One point on one timeline: what an acquire or release point is.
#[derive(Debug, Clone)]
pub struct TimelinePoint {
    /// The timeline.
    pub timeline: Timeline,
    /// The point.
    pub point: Point,
}

impl TimelinePoint {
    /// `point` on `timeline`.
    pub fn new(timeline: Timeline, point: Point) -> TimelinePoint {
        TimelinePoint { timeline, point }
    }

    /// Signals the point (a release point the compositor is done with).
    pub fn signal(&self) -> Result<(), TimelineError> {
        self.timeline.signal(self.point)
    }

    /// Whether the point is signalled (error when not submitted).
    pub fn is_signalled(&self) -> Result<bool, TimelineError> {
        self.timeline.is_signalled(self.point)
    }

    /// Whether the point is submitted.
    pub fn is_available(&self) -> Result<bool, TimelineError> {
        self.timeline.is_available(self.point)
    }
}
