//! A sync device whose timelines are `SoftTimeline`s, for measuring lockstep's own share of the
//! latency in-process and for the explicit-sync rule tests that need no kernel (they run on
//! the host as well as in the VM). A "timeline fd" is a memfd the benchmark registered; the
//! device finds its timeline by the memfd's inode. Waits are eventfds written from the soft
//! fence's callback, the same shape as SYNCOBJ_EVENTFD.

use std::{
    collections::HashMap,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    sync::{Arc, Mutex, OnceLock},
};

use lockstep_sync::{
    fence::CallbackRegistration, timeline::drm::TimelineObject, Capabilities, DrmTimeline, Point,
    PointEvent, SoftTimeline, SyncDevice, SyncFile, SyncobjError, WaitMode,
};

fn registry() -> &'static Mutex<HashMap<u64, SoftTimeline>> {
    static REGISTRY: OnceLock<Mutex<HashMap<u64, SoftTimeline>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// A new soft timeline and the fd that names it for `import_timeline`.
pub fn new_timeline() -> (SoftTimeline, OwnedFd) {
    let fd = rustix::fs::memfd_create("soft-timeline", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let inode = rustix::fs::fstat(&fd).unwrap().st_ino;
    let timeline = SoftTimeline::new();
    registry().lock().unwrap().insert(inode, timeline.clone());
    (timeline, fd)
}

#[derive(Debug)]
struct SoftObject {
    timeline: SoftTimeline,
    registrations: Mutex<Vec<CallbackRegistration>>,
}

impl TimelineObject for SoftObject {
    fn query(&self, last_submitted: bool) -> Result<u64, SyncobjError> {
        Ok(if last_submitted {
            self.timeline.last_submitted().0
        } else {
            self.timeline.query().0
        })
    }
    fn signal(&self, point: u64) -> Result<(), SyncobjError> {
        self.timeline.signal(Point(point));
        Ok(())
    }
    fn wait(&self, point: u64, _mode: WaitMode, _timeout_ns: u64) -> Result<(), SyncobjError> {
        match self.timeline.is_signalled(Point(point)) {
            Ok(true) => Ok(()),
            _ => Err(SyncobjError::TimedOut { point }),
        }
    }
    fn eventfd(&self, point: u64, event: PointEvent) -> Result<OwnedFd, SyncobjError> {
        let mode = match event {
            PointEvent::Signalled => WaitMode::SubmittedThenSignalled,
            PointEvent::Available => WaitMode::Available,
        };
        let fence = self
            .timeline
            .wait(Point(point), mode)
            .map_err(|_| SyncobjError::Unsupported { op: "soft wait" })?;
        let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)
            .map_err(|e| SyncobjError::Eventfd(e.into()))?;
        let writer = efd.try_clone().map_err(SyncobjError::Eventfd)?;
        let registration = fence.on_signal(move |_| {
            let _ = rustix::io::write(&writer, &1u64.to_ne_bytes());
        });
        self.registrations.lock().unwrap().push(registration);
        Ok(efd)
    }
    fn import_sync_file(&self, _: u64, _: &SyncFile) -> Result<(), SyncobjError> {
        Err(SyncobjError::Unsupported {
            op: "import_sync_file",
        })
    }
    fn export_sync_file(&self, _: u64) -> Result<SyncFile, SyncobjError> {
        Err(SyncobjError::Unsupported {
            op: "export_sync_file",
        })
    }
    fn export_fd(&self) -> Result<OwnedFd, SyncobjError> {
        Err(SyncobjError::Unsupported { op: "export_fd" })
    }
}

/// The device.
#[derive(Debug)]
pub struct SoftDevice(pub Capabilities);

impl SyncDevice for SoftDevice {
    fn name(&self) -> String {
        "soft benchmark device".into()
    }
    fn capabilities(&self) -> &Capabilities {
        &self.0
    }
    fn create_timeline(&self) -> Result<DrmTimeline, SyncobjError> {
        Err(SyncobjError::Unsupported {
            op: "create_timeline",
        })
    }
    fn import_timeline(&self, fd: BorrowedFd<'_>) -> Result<DrmTimeline, SyncobjError> {
        let inode = rustix::fs::fstat(fd.as_fd())
            .map_err(|e| SyncobjError::ImportFd(e.into()))?
            .st_ino;
        let timeline =
            registry()
                .lock()
                .unwrap()
                .get(&inode)
                .cloned()
                .ok_or(SyncobjError::Unsupported {
                    op: "unknown soft timeline",
                })?;
        Ok(DrmTimeline::new(Arc::new(SoftObject {
            timeline,
            registrations: Mutex::new(Vec::new()),
        })))
    }
}
