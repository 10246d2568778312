//! DRM timeline syncobjs: the kernel object behind linux-drm-syncobj-v1.
//!
//! A client creates a timeline on its render node and sends it to the compositor as an fd; the
//! compositor imports it on its KMS node. Both handles name one kernel object, so a point
//! signalled through one is seen through the other. The helpers here cover the whole
//! explicit-sync flow a compositor runs:
//!
//! ```no_run
//! use std::time::Duration;
//! use lockstep_vm_support::guest::{wait_readable, Devices};
//! use lockstep_vm_support::sw_sync::SwTimeline;
//! use lockstep_vm_support::syncobj::{Syncobj, TimelinePoint, WaitFor};
//!
//! let dev = Devices::open()?;
//! let client = Syncobj::create(&dev.vgem)?;
//! let server = Syncobj::import(&dev.vkms, &client.export()?)?;
//! // Acquire point 1: "render done" is a sw_sync fence the test signals.
//! let render = SwTimeline::new()?;
//! client.import_sync_file(TimelinePoint(1), &render.fence(1, "render")?)?;
//! let ready = server.eventfd(TimelinePoint(1), WaitFor::Signalled)?;
//! render.advance(1)?;
//! assert!(wait_readable(&ready, Duration::from_secs(2))?);
//! // Release point 2: the compositor signals from the CPU, the client sees it.
//! server.signal(TimelinePoint(2))?;
//! assert!(client.wait(TimelinePoint(2), Duration::ZERO, WaitFor::Signalled)?);
//! # Ok::<(), lockstep_vm_support::Error>(())
//! ```

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::EventfdFlags;
use rustix::io::Errno;

use crate::drm::DrmNode;
use crate::sw_sync::SyncFile;
use crate::sys;
use crate::{Error, Result};
use lockstep_sync::sys as kernel;

/// A syncobj handle, valid on the device it came from only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncobjHandle(pub u32);

/// A point on a timeline syncobj.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimelinePoint(pub u64);

/// What a wait or an eventfd waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitFor {
    /// The point's fence has signalled.
    #[default]
    Signalled,
    /// The point has a fence at all (it was submitted), signalled or not
    /// (`DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE`).
    Available,
}

impl WaitFor {
    fn eventfd_flags(self) -> u32 {
        match self {
            Self::Signalled => 0,
            Self::Available => kernel::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE,
        }
    }

    fn wait_flags(self) -> u32 {
        // Without WAIT_FOR_SUBMIT, waiting on a point that has no fence yet fails with EINVAL
        // instead of waiting; a test wants to wait.
        kernel::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT | self.eventfd_flags()
    }
}

/// A syncobj exported as an fd (`DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD`), what a client sends to
/// the compositor. Not a sync_file.
#[derive(Debug)]
pub struct SyncobjFd(OwnedFd);

impl SyncobjFd {
    /// Wraps an fd that is known to be a syncobj fd.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self(fd)
    }
}

impl AsFd for SyncobjFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// A syncobj handle on one device, destroyed (the handle, not necessarily the object) on drop.
/// Borrowing the device makes "device closed before its handles" a compile error.
#[derive(Debug)]
pub struct Syncobj<'d> {
    dev: &'d DrmNode,
    handle: SyncobjHandle,
}

impl<'d> Syncobj<'d> {
    /// Creates a new syncobj (usable as a timeline) on `dev`.
    pub fn create(dev: &'d DrmNode) -> Result<Self> {
        let handle = kernel::syncobj_create(dev.as_fd(), 0)
            .map_err(sys::kernel_error("DRM_IOCTL_SYNCOBJ_CREATE"))?;
        Ok(Self {
            dev,
            handle: SyncobjHandle(handle),
        })
    }

    /// Imports a syncobj fd (from [`Syncobj::export`], possibly of another device) on `dev`.
    pub fn import(dev: &'d DrmNode, fd: &SyncobjFd) -> Result<Self> {
        let handle = kernel::syncobj_fd_to_handle(dev.as_fd(), fd.0.as_fd(), 0, 0)
            .map_err(sys::kernel_error("DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE"))?;
        Ok(Self {
            dev,
            handle: SyncobjHandle(handle),
        })
    }

    /// The handle on [`Syncobj::device`].
    pub fn handle(&self) -> SyncobjHandle {
        self.handle
    }

    /// The device the handle belongs to.
    pub fn device(&self) -> &'d DrmNode {
        self.dev
    }

    /// Exports the syncobj as an fd, to import on another device or send to a compositor.
    pub fn export(&self) -> Result<SyncobjFd> {
        kernel::syncobj_handle_to_fd(self.dev.as_fd(), self.handle.0, 0)
            .map(SyncobjFd)
            .map_err(sys::kernel_error("DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD"))
    }

    /// Makes an eventfd that fires when `point` is signalled (or, with
    /// [`WaitFor::Available`], has a fence): what a compositor registers on its event loop.
    pub fn eventfd(&self, point: TimelinePoint, wait: WaitFor) -> Result<OwnedFd> {
        let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(Error::syscall("eventfd"))?;
        self.register_eventfd(point, wait, fd.as_fd())?;
        Ok(fd)
    }

    /// Registers an existing eventfd for `point` (`DRM_IOCTL_SYNCOBJ_EVENTFD`, Linux 6.6+).
    pub fn register_eventfd(
        &self,
        point: TimelinePoint,
        wait: WaitFor,
        eventfd: BorrowedFd<'_>,
    ) -> Result<()> {
        kernel::syncobj_eventfd(
            self.dev.as_fd(),
            self.handle.0,
            point.0,
            eventfd,
            wait.eventfd_flags(),
        )
        .map_err(sys::kernel_error("DRM_IOCTL_SYNCOBJ_EVENTFD"))
    }

    /// Puts the fence of `sync_file` at `point`: imported into a temporary binary syncobj,
    /// then transferred (`DRM_IOCTL_SYNCOBJ_TRANSFER`). This is how "the GPU will be done
    /// when this fence signals" becomes an acquire point.
    pub fn import_sync_file(&self, point: TimelinePoint, sync_file: &SyncFile) -> Result<()> {
        let binary = Self::create(self.dev)?;
        kernel::syncobj_fd_to_handle(
            self.dev.as_fd(),
            sync_file.as_fd(),
            binary.handle.0,
            kernel::DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
        )
        .map_err(sys::kernel_error(
            "DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE(IMPORT_SYNC_FILE)",
        ))?;
        binary.transfer_to(TimelinePoint(0), self, point)
    }

    /// Exports the fence at `point` as a sync_file (transferred into a temporary binary
    /// syncobj first). Fails with `EINVAL` if the point has no fence yet.
    pub fn export_sync_file(&self, point: TimelinePoint) -> Result<SyncFile> {
        let binary = Self::create(self.dev)?;
        self.transfer_to(point, &binary, TimelinePoint(0))?;
        kernel::syncobj_handle_to_fd(
            self.dev.as_fd(),
            binary.handle.0,
            kernel::DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
        )
        .map(SyncFile::from_fd)
        .map_err(sys::kernel_error(
            "DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD(EXPORT_SYNC_FILE)",
        ))
    }

    /// Moves the fence at `src_point` of `self` to `dst_point` of `dst` (same device).
    /// Point 0 means "the binary syncobj's fence".
    pub fn transfer_to(
        &self,
        src_point: TimelinePoint,
        dst: &Syncobj<'_>,
        dst_point: TimelinePoint,
    ) -> Result<()> {
        kernel::syncobj_transfer(
            self.dev.as_fd(),
            (self.handle.0, src_point.0),
            (dst.handle.0, dst_point.0),
            0,
        )
        .map_err(sys::kernel_error("DRM_IOCTL_SYNCOBJ_TRANSFER"))
    }

    /// The highest signalled point (`DRM_IOCTL_SYNCOBJ_QUERY`).
    pub fn query(&self) -> Result<TimelinePoint> {
        kernel::syncobj_query(self.dev.as_fd(), self.handle.0, 0)
            .map(TimelinePoint)
            .map_err(sys::kernel_error("DRM_IOCTL_SYNCOBJ_QUERY"))
    }

    /// Signals `point` from the CPU (`DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL`): a release point.
    pub fn signal(&self, point: TimelinePoint) -> Result<()> {
        kernel::syncobj_timeline_signal(self.dev.as_fd(), self.handle.0, point.0)
            .map_err(sys::kernel_error("DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL"))
    }

    /// Blocks up to `timeout` for `point` (`DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT`, waiting for
    /// submission too). Returns whether it got there. Tests only: a compositor never blocks.
    pub fn wait(&self, point: TimelinePoint, timeout: Duration, wait: WaitFor) -> Result<bool> {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let deadline = i128::from(now.tv_sec) * 1_000_000_000
            + i128::from(now.tv_nsec)
            + i128::try_from(timeout.as_nanos()).unwrap_or(i128::MAX);
        let deadline = i64::try_from(deadline).unwrap_or(i64::MAX);
        match kernel::syncobj_timeline_wait(
            self.dev.as_fd(),
            self.handle.0,
            point.0,
            deadline,
            wait.wait_flags(),
        ) {
            Ok(()) => Ok(true),
            Err(err) if err.raw_os_error() == Some(Errno::TIME.raw_os_error()) => Ok(false),
            Err(err) => Err(sys::kernel_error("DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT")(err)),
        }
    }
}

impl Drop for Syncobj<'_> {
    fn drop(&mut self) {
        // Destroyed only here; a failure only leaks a handle until the device closes.
        let _ = kernel::syncobj_destroy(self.dev.as_fd(), self.handle.0);
    }
}
