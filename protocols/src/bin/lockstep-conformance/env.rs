//! What every case shares: the DRM node its timelines live on, how acquire fences are
//! controlled (sw_sync or CPU signalling), the buffer allocator and the time limits.
//!
//! Timelines are created here, in the client, on a DRM node of our own and sent to the
//! compositor as syncobj fds (`import_timeline`): syncobj fds work across devices, so the
//! compositor may use any node it likes.

use std::path::PathBuf;
use std::time::Duration;

use lockstep_render::heap::HeapAllocator;
use lockstep_sync::sw_sync::SwSyncTimeline;
use lockstep_sync::{DrmDevice, DrmTimeline, NodeKind, Point, SyncDevice, TimelineError};

use crate::outcome::CaseError;

/// Shared by all cases (cloned into each case's thread).
#[derive(Debug, Clone)]
pub struct Env {
    /// The node timelines are created on, or why there is none.
    pub device: Result<DrmDevice, String>,
    /// Whether sw_sync fences can be made (else acquire points are signalled by the CPU).
    pub sw_sync: bool,
    /// Allocates the dmabufs the cases attach.
    pub allocator: HeapAllocator,
    /// How long to wait for something that must happen.
    pub timeout: Duration,
    /// How long to watch for something that must not happen.
    pub settle: Duration,
    /// Whether to check pixels through wlr-screencopy when offered (else frame callbacks).
    pub screencopy: bool,
}

impl Env {
    /// Opens `device`, or the first render (then primary) node with timeline syncobjs.
    pub fn open(device: Option<PathBuf>, timeout: Duration, settle: Duration) -> Env {
        Env {
            device: pick_device(device),
            sw_sync: SwSyncTimeline::available(),
            allocator: HeapAllocator::new(),
            timeout,
            settle,
            screencopy: true,
        }
    }

    /// The timeline device, or a skip saying why there is none.
    pub fn device(&self) -> Result<&DrmDevice, CaseError> {
        self.device
            .as_ref()
            .map_err(|why| CaseError::Skip(format!("no DRM node for timelines: {why}")))
    }

    /// A new timeline on our device.
    pub fn timeline(&self) -> Result<Timeline, CaseError> {
        let drm = self
            .device()?
            .create_timeline()
            .map_err(|e| CaseError::Fail(format!("creating a timeline syncobj failed: {e}")))?;
        Ok(Timeline { drm })
    }

    /// How acquire fences are controlled, for the report header.
    pub fn fence_mode(&self) -> &'static str {
        if self.sw_sync {
            "sw_sync fences imported into timeline points"
        } else {
            "CPU signalling (DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL; no sw_sync, or --cpu-fences)"
        }
    }
}

fn pick_device(path: Option<PathBuf>) -> Result<DrmDevice, String> {
    if let Some(path) = path {
        let dev = DrmDevice::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        return match dev.capabilities().timeline.clone() {
            Ok(()) => Ok(dev),
            Err(why) => Err(format!("{}: {why}", dev.name())),
        };
    }
    let mut why = Vec::new();
    for kind in [NodeKind::Render, NodeKind::Primary] {
        for dev in DrmDevice::list(kind) {
            match &dev.capabilities().timeline {
                Ok(()) => return Ok(dev),
                Err(reason) => why.push(format!("{}: {reason}", dev.name())),
            }
        }
    }
    if why.is_empty() {
        why.push("no openable node under /dev/dri".to_owned());
    }
    Err(why.join("; "))
}

/// A timeline syncobj of ours.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The kernel object.
    pub drm: DrmTimeline,
}

impl Timeline {
    /// Adds a signalled fence at `point` (TIMELINE_SIGNAL).
    pub fn signal(&self, point: u64) -> Result<(), CaseError> {
        self.drm
            .signal(Point(point))
            .map_err(|e| CaseError::Fail(format!("signalling point {point} failed: {e}")))
    }

    /// Whether `point` is signalled; a point nobody submitted yet is not.
    pub fn is_signalled(&self, point: u64) -> Result<bool, CaseError> {
        match self.drm.is_signalled(Point(point)) {
            Ok(done) => Ok(done),
            Err(TimelineError::NotSubmitted { .. }) => Ok(false),
            Err(e) => Err(CaseError::Fail(format!("querying point {point}: {e}"))),
        }
    }
}

/// An acquire point under the case's control.
#[derive(Debug)]
pub struct Acquire {
    /// Its timeline.
    pub timeline: Timeline,
    /// Its point.
    pub point: u64,
    sw: Option<SwSyncTimeline>,
}

impl Acquire {
    /// A point that is signalled already.
    pub fn signalled(timeline: &Timeline, point: u64) -> Result<Acquire, CaseError> {
        timeline.signal(point)?;
        Ok(Acquire {
            timeline: timeline.clone(),
            point,
            sw: None,
        })
    }

    /// A point nobody has submitted a fence for yet (wait-before-signal: the compositor must
    /// wait for submission, then for the signal, without blocking).
    pub fn unsubmitted(timeline: &Timeline, point: u64) -> Acquire {
        Acquire {
            timeline: timeline.clone(),
            point,
            sw: None,
        }
    }

    /// A pending point: with sw_sync, a submitted but unsignalled fence (what a GPU job looks
    /// like); without it, an unsubmitted point.
    pub fn pending(env: &Env, timeline: &Timeline, point: u64) -> Result<Acquire, CaseError> {
        let mut acquire = Acquire::unsubmitted(timeline, point);
        acquire.submit(env)?;
        Ok(acquire)
    }

    /// Submits an unsignalled sw_sync fence at the point (no-op without sw_sync or when
    /// already submitted). Returns whether a fence is now submitted and pending.
    pub fn submit(&mut self, env: &Env) -> Result<bool, CaseError> {
        if self.sw.is_some() {
            return Ok(true);
        }
        if !env.sw_sync {
            return Ok(false);
        }
        let fail = |what: &str, e: &dyn std::fmt::Display| CaseError::Fail(format!("{what}: {e}"));
        let sw = SwSyncTimeline::open().map_err(|e| fail("opening sw_sync", &e))?;
        let fence = sw
            .create_fence(1, "lockstep-conformance")
            .map_err(|e| fail("creating a sw_sync fence", &e))?;
        self.timeline
            .drm
            .import_sync_file(Point(self.point), &fence)
            .map_err(|e| fail("importing the sw_sync fence into the timeline", &e))?;
        self.sw = Some(sw);
        Ok(true)
    }

    /// Signals the point: the sw_sync fence, or TIMELINE_SIGNAL from the CPU.
    pub fn signal(&mut self) -> Result<(), CaseError> {
        match &self.sw {
            Some(sw) => sw
                .inc(1)
                .map_err(|e| CaseError::Fail(format!("SW_SYNC_IOC_INC failed: {e}"))),
            None => self.timeline.signal(self.point),
        }
    }

    /// Fails the fence: closing a sw_sync timeline signals its pending fences with `-ENOENT`
    /// (drivers/dma-buf/sw_sync.c). `false` when there is no sw_sync fence.
    pub fn fail_fence(&mut self) -> bool {
        self.sw.take().is_some()
    }
}

/// A 64-bit point as the protocol's (hi, lo).
pub fn split(point: u64) -> (u32, u32) {
    ((point >> 32) as u32, point as u32)
}
