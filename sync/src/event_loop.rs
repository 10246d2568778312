//! One-shot calloop sources: wait for a timeline point, a sync_file or a [`Fence`] on the
//! event loop, never blocking it (feature `calloop`).
//!
//! # Why
//!
//! The compositor holds a client's commit until its acquire point signals, while every other
//! surface and output keeps going. So a wait must be an fd on the event loop, not a blocking
//! call and not a thread:
//!
//! * [`SyncobjWait`]: an eventfd registered with `DRM_IOCTL_SYNCOBJ_EVENTFD` for "point
//!   signalled" (the kernel waits for submission first) or "point available".
//! * [`SyncFileWait`]: a sync_file polls readable once signalled.
//! * [`FenceWait`]: a [`Fence`] (e.g. from a [`SoftTimeline`](crate::SoftTimeline)) pings an
//!   eventfd from its callback.
//! * [`PointWait`]: whichever of these fits a [`TimelinePoint`].
//!
//! Each source fires its callback once and then removes itself. Each costs exactly one fd
//! and no thread, so 1,000 concurrent waits cost 1,000 fds. Dropping a source (or removing it
//! from the loop) cancels the wait and closes its fd. The kernel keeps its own eventfd
//! registration until the point arrives or the syncobj is destroyed (there is no unregister
//! ioctl); that entry holds the eventfd *context*, not one of our fds, so nothing leaks here.
//!
//! # How
//!
//! ```
//! use calloop::EventLoop;
//! use lockstep_sync::event_loop::PointWait;
//! use lockstep_sync::{Point, PointEvent, SoftTimeline, Timeline, TimelinePoint};
//!
//! let mut event_loop: EventLoop<'_, bool> = EventLoop::try_new()?;
//! let timeline = SoftTimeline::new();
//! let acquire = TimelinePoint::new(Timeline::Soft(timeline.clone()), Point(1));
//! let wait = PointWait::new(&acquire, PointEvent::Signalled)?;
//! event_loop
//!     .handle()
//!     .insert_source(wait, |(), _, ready: &mut bool| *ready = true)
//!     .map_err(|e| e.error)?;
//! timeline.signal(Point(1));
//! let mut ready = false;
//! event_loop.dispatch(std::time::Duration::from_secs(1), &mut ready)?;
//! assert!(ready);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use calloop::generic::Generic;
use calloop::ping::{make_ping, PingSource};
use calloop::{EventSource, Interest, Mode, Poll, PostAction, Readiness, Token, TokenFactory};

use crate::fence::{CallbackRegistration, Completion, Fence};
use crate::sync_file::{SyncFile, SyncFileStatus};
use crate::syncobj::{PointEvent, WaitMode};
use crate::sys;
use crate::timeline::{DrmTimeline, Point, Timeline, TimelineError, TimelinePoint};

/// Waits for a DRM timeline point through an eventfd (`DRM_IOCTL_SYNCOBJ_EVENTFD`).
#[derive(Debug)]
pub struct SyncobjWait {
    source: Generic<OwnedFd>,
    done: bool,
}

impl SyncobjWait {
    /// Registers an eventfd for `event` on `point`. Fires at once (on the next dispatch) when
    /// the point is already there.
    pub fn new(
        timeline: &DrmTimeline,
        point: Point,
        event: PointEvent,
    ) -> Result<SyncobjWait, TimelineError> {
        let fd = timeline.eventfd(point, event)?;
        Ok(SyncobjWait {
            source: Generic::new(fd, Interest::READ, Mode::Level),
            done: false,
        })
    }
}

impl EventSource for SyncobjWait {
    type Event = ();
    type Metadata = ();
    type Ret = ();
    type Error = io::Error;

    fn process_events<F>(
        &mut self,
        readiness: Readiness,
        token: Token,
        mut callback: F,
    ) -> io::Result<PostAction>
    where
        F: FnMut((), &mut ()),
    {
        let mut fired = false;
        self.source.process_events(readiness, token, |_, fd| {
            fired = sys::eventfd_read(fd.as_fd())?.is_some();
            Ok(PostAction::Continue)
        })?;
        if fired && !self.done {
            self.done = true;
            callback((), &mut ());
            return Ok(PostAction::Remove);
        }
        Ok(PostAction::Continue)
    }

    fn register(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        self.source.register(poll, factory)
    }

    fn reregister(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        self.source.reregister(poll, factory)
    }

    fn unregister(&mut self, poll: &mut Poll) -> calloop::Result<()> {
        self.source.unregister(poll)
    }
}

/// Waits for a sync_file to signal; the event is its final status.
#[derive(Debug)]
pub struct SyncFileWait {
    source: Generic<SyncFile>,
    done: bool,
}

impl SyncFileWait {
    /// Waits for `file` (owned by the source; closed when the source is dropped).
    pub fn new(file: SyncFile) -> SyncFileWait {
        SyncFileWait {
            source: Generic::new(file, Interest::READ, Mode::Level),
            done: false,
        }
    }
}

impl EventSource for SyncFileWait {
    type Event = SyncFileStatus;
    type Metadata = ();
    type Ret = ();
    type Error = io::Error;

    fn process_events<F>(
        &mut self,
        readiness: Readiness,
        token: Token,
        mut callback: F,
    ) -> io::Result<PostAction>
    where
        F: FnMut(SyncFileStatus, &mut ()),
    {
        let mut status = None;
        self.source.process_events(readiness, token, |r, file| {
            if r.readable || r.error {
                status = Some(file.status().map_err(io::Error::other)?);
            }
            Ok(PostAction::Continue)
        })?;
        match status {
            Some(s) if s != SyncFileStatus::Pending && !self.done => {
                self.done = true;
                callback(s, &mut ());
                Ok(PostAction::Remove)
            }
            _ => Ok(PostAction::Continue),
        }
    }

    fn register(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        self.source.register(poll, factory)
    }

    fn reregister(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        self.source.reregister(poll, factory)
    }

    fn unregister(&mut self, poll: &mut Poll) -> calloop::Result<()> {
        self.source.unregister(poll)
    }
}

/// Waits for a [`Fence`]: its callback pings an eventfd the loop polls.
#[derive(Debug)]
pub struct FenceWait {
    fence: Fence,
    ping: PingSource,
    _registration: CallbackRegistration,
    done: bool,
}

impl FenceWait {
    /// Waits for `fence`; dropping the source unregisters the callback and closes the eventfd.
    pub fn new(fence: Fence) -> io::Result<FenceWait> {
        let (ping, source) = make_ping()?;
        let registration = fence.on_signal(move |_| ping.ping());
        Ok(FenceWait {
            fence,
            ping: source,
            _registration: registration,
            done: false,
        })
    }
}

impl EventSource for FenceWait {
    type Event = Completion;
    type Metadata = ();
    type Ret = ();
    type Error = io::Error;

    fn process_events<F>(
        &mut self,
        readiness: Readiness,
        token: Token,
        mut callback: F,
    ) -> io::Result<PostAction>
    where
        F: FnMut(Completion, &mut ()),
    {
        self.ping
            .process_events(readiness, token, |(), ()| {})
            .map_err(io::Error::other)?;
        match self.fence.completion() {
            Some(c) if !self.done => {
                self.done = true;
                callback(c, &mut ());
                Ok(PostAction::Remove)
            }
            _ => Ok(PostAction::Continue),
        }
    }

    fn register(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        self.ping.register(poll, factory)
    }

    fn reregister(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        self.ping.reregister(poll, factory)
    }

    fn unregister(&mut self, poll: &mut Poll) -> calloop::Result<()> {
        self.ping.unregister(poll)
    }
}

/// Waits for a [`TimelinePoint`] on either backend; fires `()` once.
#[derive(Debug)]
pub enum PointWait {
    /// Kernel timeline: eventfd.
    Drm(SyncobjWait),
    /// Userspace timeline: fence + ping.
    Soft(FenceWait),
}

impl PointWait {
    /// Waits for `event` on `point`. Like the kernel's eventfd, both events wait for the point
    /// to be submitted first.
    pub fn new(point: &TimelinePoint, event: PointEvent) -> Result<PointWait, TimelineError> {
        match &point.timeline {
            Timeline::Drm(t) => Ok(PointWait::Drm(SyncobjWait::new(t, point.point, event)?)),
            Timeline::Soft(t) => {
                let mode = match event {
                    PointEvent::Signalled => WaitMode::SubmittedThenSignalled,
                    PointEvent::Available => WaitMode::Available,
                };
                let fence = t.wait(point.point, mode)?;
                let wait = FenceWait::new(fence).map_err(|e| {
                    TimelineError::Syncobj(crate::syncobj::SyncobjError::Eventfd(e))
                })?;
                Ok(PointWait::Soft(wait))
            }
        }
    }
}

impl EventSource for PointWait {
    type Event = ();
    type Metadata = ();
    type Ret = ();
    type Error = io::Error;

    fn process_events<F>(
        &mut self,
        readiness: Readiness,
        token: Token,
        mut callback: F,
    ) -> io::Result<PostAction>
    where
        F: FnMut((), &mut ()),
    {
        match self {
            PointWait::Drm(w) => w.process_events(readiness, token, callback),
            PointWait::Soft(w) => w.process_events(readiness, token, |_, m| callback((), m)),
        }
    }

    fn register(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        match self {
            PointWait::Drm(w) => w.register(poll, factory),
            PointWait::Soft(w) => w.register(poll, factory),
        }
    }

    fn reregister(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        match self {
            PointWait::Drm(w) => w.reregister(poll, factory),
            PointWait::Soft(w) => w.reregister(poll, factory),
        }
    }

    fn unregister(&mut self, poll: &mut Poll) -> calloop::Result<()> {
        match self {
            PointWait::Drm(w) => w.unregister(poll),
            PointWait::Soft(w) => w.unregister(poll),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::SoftTimeline;
    use std::time::Duration;

    #[test]
    fn fence_wait_fires_once_and_removes_itself() {
        let mut event_loop: calloop::EventLoop<'_, u32> =
            calloop::EventLoop::try_new().expect("loop");
        let fence = crate::FenceContext::new(crate::SeqnoOrder::Linear64).next_fence();
        event_loop
            .handle()
            .insert_source(FenceWait::new(fence.clone()).expect("ping"), |_, _, n| {
                *n += 1
            })
            .map_err(|e| e.error)
            .expect("insert");
        let mut count = 0;
        event_loop
            .dispatch(Duration::ZERO, &mut count)
            .expect("dispatch");
        assert_eq!(count, 0);
        fence.signal();
        event_loop
            .dispatch(Duration::from_secs(1), &mut count)
            .expect("dispatch");
        event_loop
            .dispatch(Duration::ZERO, &mut count)
            .expect("dispatch");
        assert_eq!(count, 1);
    }

    #[test]
    fn dropping_a_point_wait_cancels_it() {
        let timeline = SoftTimeline::new();
        let point = TimelinePoint::new(Timeline::Soft(timeline.clone()), Point(3));
        let wait = PointWait::new(&point, PointEvent::Signalled).expect("wait");
        assert_eq!(timeline.pending_wait_count(), 1);
        drop(wait);
        assert_eq!(timeline.pending_wait_count(), 0);
    }

    #[test]
    fn many_soft_waits_on_one_loop() {
        let mut event_loop: calloop::EventLoop<'_, u32> =
            calloop::EventLoop::try_new().expect("loop");
        let timeline = SoftTimeline::new();
        for p in 1..=100 {
            let point = TimelinePoint::new(Timeline::Soft(timeline.clone()), Point(p));
            let wait = PointWait::new(&point, PointEvent::Signalled).expect("wait");
            event_loop
                .handle()
                .insert_source(wait, |(), _, n| *n += 1)
                .map_err(|e| e.error)
                .expect("insert");
        }
        timeline.signal(Point(50));
        let mut count = 0;
        event_loop
            .dispatch(Duration::from_secs(1), &mut count)
            .expect("dispatch");
        assert_eq!(count, 50);
        timeline.signal(Point(100));
        event_loop
            .dispatch(Duration::from_secs(1), &mut count)
            .expect("dispatch");
        assert_eq!(count, 100);
    }
}
