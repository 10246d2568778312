//! Devices that own syncobjs: the [`SyncDevice`] trait and DRM nodes ([`DrmDevice`]).
//!
//! # Why
//!
//! A client's timeline arrives as a syncobj fd; to use it, lockstep imports it on a device and
//! gets a [`DrmTimeline`]. Today that device is a DRM node (render node preferred; a primary
//! node works too, syncobjs do not need DRM master). Upstream has proposed a
//! device-independent `/dev/syncobj` that works on fds without per-file handles. Callers
//! therefore only see the [`SyncDevice`] trait and [`DrmTimeline`], whose kernel object is a
//! [`TimelineObject`](crate::timeline::drm::TimelineObject) trait object: a new device kind
//! adds one implementation of each and no caller changes.
//!
//! Devices are found by driver name (`DRM_IOCTL_VERSION`), never by node number: numbering
//! depends on probe order.
//!
//! # How
//!
//! ```no_run
//! use lockstep_sync::{DrmDevice, NodeKind, SyncDevice};
//! let device = DrmDevice::find_driver("vgem", NodeKind::Render)?;
//! if let Err(missing) = device.capabilities().require_explicit_sync() {
//!     eprintln!("no explicit sync: {missing}");
//! }
//! let timeline = device.create_timeline()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::probe::Capabilities;
use crate::syncobj::{Syncobj, SyncobjError};
use crate::sys;
use crate::timeline::drm::DrmTimeline;

/// Errors opening or finding a device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The node could not be opened.
    #[error("cannot open {path}")]
    Open {
        /// The node.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The fd is not a DRM node (DRM_IOCTL_VERSION failed).
    #[error("not a DRM device")]
    NotDrm(#[source] io::Error),
    /// No node of that driver and kind exists.
    #[error("no DRM {kind:?} node with driver {driver:?}")]
    NotFound {
        /// The driver asked for.
        driver: String,
        /// The kind asked for.
        kind: NodeKind,
    },
}

/// Which kind of DRM node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// `/dev/dri/cardN`: KMS, needs DRM master for modesetting (not for syncobjs).
    Primary,
    /// `/dev/dri/renderDN`: rendering and syncobjs, no KMS.
    Render,
}

/// A device on which syncobj timelines live. See the module docs.
pub trait SyncDevice: Send + Sync + fmt::Debug {
    /// A human-readable name ("vgem at /dev/dri/renderD128").
    fn name(&self) -> String;
    /// What the device can do, probed when it was opened.
    fn capabilities(&self) -> &Capabilities;
    /// A new, empty timeline owned by this device.
    fn create_timeline(&self) -> Result<DrmTimeline, SyncobjError>;
    /// Imports a client's syncobj fd. A bad fd (closed, a memfd, a sync_file) is
    /// [`SyncobjError::ImportFd`].
    fn import_timeline(&self, fd: BorrowedFd<'_>) -> Result<DrmTimeline, SyncobjError>;
}

/// An open DRM node: the fd and its driver name.
#[derive(Debug)]
pub struct DrmNode {
    fd: OwnedFd,
    driver: String,
    path: Option<PathBuf>,
}

impl DrmNode {
    /// The driver name from DRM_IOCTL_VERSION.
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// The path it was opened from, if known.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl AsFd for DrmNode {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A DRM node used as a [`SyncDevice`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DrmDevice {
    node: Arc<DrmNode>,
    caps: Arc<Capabilities>,
}

impl DrmDevice {
    /// Wraps an open fd after checking that it is a DRM node; probes its capabilities.
    pub fn from_fd(fd: OwnedFd) -> Result<DrmDevice, DeviceError> {
        DrmDevice::from_fd_and_path(fd, None)
    }

    fn from_fd_and_path(fd: OwnedFd, path: Option<PathBuf>) -> Result<DrmDevice, DeviceError> {
        let driver = sys::drm_driver_name(fd.as_fd()).map_err(DeviceError::NotDrm)?;
        let node = Arc::new(DrmNode { fd, driver, path });
        let caps = Arc::new(Capabilities::probe(&node));
        Ok(DrmDevice { node, caps })
    }

    /// Opens a node by path.
    pub fn open(path: impl AsRef<Path>) -> Result<DrmDevice, DeviceError> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|source| DeviceError::Open {
                path: path.to_owned(),
                source,
            })?;
        DrmDevice::from_fd_and_path(file.into(), Some(path.to_owned()))
    }

    /// The first node of `kind` under /dev/dri whose driver is `driver`.
    pub fn find_driver(driver: &str, kind: NodeKind) -> Result<DrmDevice, DeviceError> {
        for path in nodes(kind) {
            let Ok(file) = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
            else {
                continue;
            };
            let fd: OwnedFd = file.into();
            if sys::drm_driver_name(fd.as_fd()).is_ok_and(|name| name == driver) {
                return DrmDevice::from_fd_and_path(fd, Some(path));
            }
        }
        Err(DeviceError::NotFound {
            driver: driver.to_owned(),
            kind,
        })
    }

    /// Every openable DRM node of `kind`, with its driver name.
    pub fn list(kind: NodeKind) -> Vec<DrmDevice> {
        nodes(kind)
            .into_iter()
            .filter_map(|p| DrmDevice::open(p).ok())
            .collect()
    }

    /// The node.
    pub fn node(&self) -> &Arc<DrmNode> {
        &self.node
    }
}

fn nodes(kind: NodeKind) -> Vec<PathBuf> {
    let prefix = match kind {
        NodeKind::Primary => "card",
        NodeKind::Render => "renderD",
    };
    let Ok(dir) = fs::read_dir("/dev/dri") else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = dir
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| {
                n.strip_prefix(prefix).is_some_and(|rest| {
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
                })
            })
        })
        .map(|e| e.path())
        .collect();
    paths.sort();
    paths
}

impl SyncDevice for DrmDevice {
    fn name(&self) -> String {
        match &self.node.path {
            Some(p) => format!("{} at {}", self.node.driver, p.display()),
            None => self.node.driver.clone(),
        }
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn create_timeline(&self) -> Result<DrmTimeline, SyncobjError> {
        let obj = Syncobj::create(&self.node, false)?;
        Ok(DrmTimeline::new(Arc::new(obj)))
    }

    fn import_timeline(&self, fd: BorrowedFd<'_>) -> Result<DrmTimeline, SyncobjError> {
        let obj = Syncobj::import_fd(&self.node, fd)?;
        Ok(DrmTimeline::new(Arc::new(obj)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_drm_fds_are_rejected() {
        let efd = sys::eventfd().expect("eventfd");
        assert!(matches!(
            DrmDevice::from_fd(efd),
            Err(DeviceError::NotDrm(_))
        ));
        assert!(matches!(
            DrmDevice::open("/nonexistent/card0"),
            Err(DeviceError::Open { .. })
        ));
    }

    #[test]
    fn missing_driver_is_not_found() {
        assert!(matches!(
            DrmDevice::find_driver("no-such-driver", NodeKind::Render),
            Err(DeviceError::NotFound { .. })
        ));
    }
}
