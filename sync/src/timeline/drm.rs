//! [`DrmTimeline`]: a kernel timeline syncobj imported on a [`SyncDevice`](crate::SyncDevice).
//!
//! # Why
//!
//! Clients hand lockstep their timelines as syncobj fds; the compositor imports them on its
//! device and, per commit, waits for acquire points (without blocking: an eventfd on the event
//! loop) and signals release points, directly or by attaching a render or KMS fence
//! (sync_file import). [`DrmTimeline`] is that handle. Its kernel object is a
//! [`TimelineObject`] trait object so a device-independent `/dev/syncobj` backend can be added
//! later without touching callers. The rules the kernel applies are in
//! [`timeline`](crate::timeline).
//!
//! # How
//!
//! ```no_run
//! use lockstep_sync::{DrmDevice, NodeKind, Point, PointEvent, SyncDevice};
//! # fn client_fd() -> std::os::fd::OwnedFd { unimplemented!() }
//! let device = DrmDevice::find_driver("vgem", NodeKind::Render)?;
//! let fd = client_fd();
//! let timeline = device.import_timeline(std::os::fd::AsFd::as_fd(&fd))?;
//! // Register this eventfd on the event loop (see `event_loop`); never block on it.
//! let _eventfd = timeline.eventfd(Point(1), PointEvent::Signalled)?;
//! // Later, release point 2 once the buffer is off screen:
//! timeline.signal(Point(2))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use crate::signalling::assert_may_block;
use crate::sync_file::SyncFile;
use crate::syncobj::{PointEvent, Syncobj, SyncobjError, WaitMode};
use crate::timeline::{Point, TimelineError};

/// The kernel object behind a [`DrmTimeline`]. Implemented by [`Syncobj`] (a handle on a DRM
/// node); a future fd-based `/dev/syncobj` implements it too.
pub trait TimelineObject: Send + Sync + fmt::Debug {
    /// QUERY (optionally LAST_SUBMITTED).
    fn query(&self, last_submitted: bool) -> Result<u64, SyncobjError>;
    /// TIMELINE_SIGNAL.
    fn signal(&self, point: u64) -> Result<(), SyncobjError>;
    /// TIMELINE_WAIT with a relative timeout (0: just check).
    fn wait(&self, point: u64, mode: WaitMode, timeout_ns: u64) -> Result<(), SyncobjError>;
    /// A new eventfd the kernel signals on `event` for `point`.
    fn eventfd(&self, point: u64, event: PointEvent) -> Result<OwnedFd, SyncobjError>;
    /// Puts the fence of a sync_file at `point`.
    fn import_sync_file(&self, point: u64, file: &SyncFile) -> Result<(), SyncobjError>;
    /// The fence of `point` as a sync_file.
    fn export_sync_file(&self, point: u64) -> Result<SyncFile, SyncobjError>;
    /// A syncobj fd for the same object.
    fn export_fd(&self) -> Result<OwnedFd, SyncobjError>;
}

impl TimelineObject for Syncobj {
    fn query(&self, last_submitted: bool) -> Result<u64, SyncobjError> {
        Syncobj::query(self, last_submitted)
    }
    fn signal(&self, point: u64) -> Result<(), SyncobjError> {
        Syncobj::signal(self, point)
    }
    fn wait(&self, point: u64, mode: WaitMode, timeout_ns: u64) -> Result<(), SyncobjError> {
        Syncobj::wait(self, point, mode, timeout_ns)
    }
    fn eventfd(&self, point: u64, event: PointEvent) -> Result<OwnedFd, SyncobjError> {
        Syncobj::eventfd(self, point, event)
    }
    fn import_sync_file(&self, point: u64, file: &SyncFile) -> Result<(), SyncobjError> {
        Syncobj::import_sync_file(self, point, file)
    }
    fn export_sync_file(&self, point: u64) -> Result<SyncFile, SyncobjError> {
        Syncobj::export_sync_file(self, point)
    }
    fn export_fd(&self) -> Result<OwnedFd, SyncobjError> {
        Syncobj::export_fd(self)
    }
}

/// A kernel timeline syncobj. Cheap to clone; the handle is released when the last clone is
/// dropped.
#[derive(Debug, Clone)]
pub struct DrmTimeline(Arc<dyn TimelineObject>);

impl DrmTimeline {
    /// Wraps a kernel object.
    pub fn new(object: Arc<dyn TimelineObject>) -> DrmTimeline {
        DrmTimeline(object)
    }

    /// QUERY: see [`timeline`](crate::timeline).
    pub fn query(&self) -> Result<Point, TimelineError> {
        Ok(Point(self.0.query(false)?))
    }

    /// QUERY with LAST_SUBMITTED.
    pub fn last_submitted(&self) -> Result<Point, TimelineError> {
        Ok(Point(self.0.query(true)?))
    }

    /// TIMELINE_SIGNAL: adds an already signalled fence at `point` (point 0 is an unordered
    /// point, not a reset; see [`timeline`](crate::timeline)).
    pub fn signal(&self, point: Point) -> Result<(), TimelineError> {
        Ok(self.0.signal(point.0)?)
    }

    /// Whether `point` is signalled (a zero-timeout wait); NotSubmitted beyond the last point.
    pub fn is_signalled(&self, point: Point) -> Result<bool, TimelineError> {
        match self.0.wait(point.0, WaitMode::Signalled, 0) {
            Ok(()) => Ok(true),
            Err(SyncobjError::TimedOut { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `point` is submitted (a zero-timeout WAIT_AVAILABLE).
    pub fn is_available(&self, point: Point) -> Result<bool, TimelineError> {
        match self.0.wait(point.0, WaitMode::Available, 0) {
            Ok(()) => Ok(true),
            Err(SyncobjError::TimedOut { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Blocks until `point` is reached under `mode` or `timeout` passes.
    ///
    /// Never on the event loop (use [`DrmTimeline::eventfd`] there); panics in debug builds
    /// inside a [signalling section](crate::signalling).
    #[track_caller]
    pub fn wait(
        &self,
        point: Point,
        mode: WaitMode,
        timeout: Duration,
    ) -> Result<(), TimelineError> {
        assert_may_block();
        let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX).max(1);
        Ok(self.0.wait(point.0, mode, ns)?)
    }

    /// A new eventfd the kernel signals when `point` is signalled or available.
    pub fn eventfd(&self, point: Point, event: PointEvent) -> Result<OwnedFd, TimelineError> {
        Ok(self.0.eventfd(point.0, event)?)
    }

    /// Puts the fence of `file` at `point` (a render or KMS fence becomes a release point).
    /// Point 0 replaces the whole content with the fence (a reset).
    pub fn import_sync_file(&self, point: Point, file: &SyncFile) -> Result<(), TimelineError> {
        Ok(self.0.import_sync_file(point.0, file)?)
    }

    /// The fence of `point` as a sync_file (e.g. an acquire point as a KMS IN_FENCE_FD).
    /// NotSubmitted if the point has no fence yet; never blocks.
    pub fn export_sync_file(&self, point: Point) -> Result<SyncFile, TimelineError> {
        Ok(self.0.export_sync_file(point.0)?)
    }

    /// TRANSFER `(self, src)` to `(dst, dst_point)`, through a sync_file so it also works
    /// across devices (the same kernel fence object ends up at the destination point).
    pub fn transfer(
        &self,
        src: Point,
        dst: &DrmTimeline,
        dst_point: Point,
    ) -> Result<(), TimelineError> {
        let file = self.export_sync_file(src)?;
        dst.import_sync_file(dst_point, &file)
    }

    /// A syncobj fd for the same object.
    pub fn export_fd(&self) -> Result<OwnedFd, TimelineError> {
        Ok(self.0.export_fd()?)
    }
}
