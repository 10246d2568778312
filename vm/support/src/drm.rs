//! DRM device nodes, found by driver name.
//!
//! In the guest `/dev/dri/card0` happens to be vgem and `card1` vkms, but that order is an
//! accident of link order; tests ask for a driver instead:
//!
//! ```no_run
//! use lockstep_vm_support::drm::{DrmNode, NodeKind};
//!
//! let vkms = DrmNode::find("vkms", NodeKind::Primary)?;
//! let vgem = DrmNode::find("vgem", NodeKind::Render)?;
//! assert!(vkms.supports_timeline_syncobj()? && vgem.supports_timeline_syncobj()?);
//! # Ok::<(), lockstep_vm_support::Error>(())
//! ```

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::sys;
use crate::{Error, Result};
use lockstep_sync::sys as kernel;

/// Where DRM nodes live.
pub const DRI_DIR: &str = "/dev/dri";

/// The two kinds of DRM node a test opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// `cardN`: modesetting, dumb buffers, DRM master.
    Primary,
    /// `renderDN`: rendering and syncobjs, no modesetting, no master.
    Render,
}

impl NodeKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Primary => "card",
            Self::Render => "renderD",
        }
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Primary => "primary (card)",
            Self::Render => "render",
        })
    }
}

/// A DRM capability queried with `DRM_IOCTL_GET_CAP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap(pub u64);

impl Cap {
    /// `DRM_CAP_SYNCOBJ`.
    pub const SYNCOBJ: Self = Self(kernel::DRM_CAP_SYNCOBJ);
    /// `DRM_CAP_SYNCOBJ_TIMELINE`.
    pub const SYNCOBJ_TIMELINE: Self = Self(kernel::DRM_CAP_SYNCOBJ_TIMELINE);
}

/// An open DRM node and the name of the driver behind it.
#[derive(Debug)]
pub struct DrmNode {
    fd: OwnedFd,
    path: PathBuf,
    driver: String,
}

impl DrmNode {
    /// Opens `path` read-write and asks the kernel for its driver name.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::file("open", path)(e.into()))?;
        let driver = driver_name(fd.as_fd())?;
        Ok(Self {
            fd,
            path: path.to_owned(),
            driver,
        })
    }

    /// Opens the first node of `kind` in [`DRI_DIR`] whose driver is `driver`.
    pub fn find(driver: &str, kind: NodeKind) -> Result<Self> {
        let mut found = Vec::new();
        for path in nodes(kind) {
            match Self::open(&path) {
                Ok(node) if node.driver == driver => return Ok(node),
                Ok(node) => found.push(format!("{}={}", path.display(), node.driver)),
                Err(err) => found.push(format!("{}: {err}", path.display())),
            }
        }
        Err(Error::NoDevice {
            driver: driver.to_owned(),
            kind,
            found: if found.is_empty() {
                "nothing".to_owned()
            } else {
                found.join(", ")
            },
        })
    }

    /// The driver name (`DRM_IOCTL_VERSION`), e.g. `vkms`.
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// The node's path, e.g. `/dev/dri/card1`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queries a capability.
    pub fn cap(&self, cap: Cap) -> Result<u64> {
        kernel::drm_get_cap(self.as_fd(), cap.0).map_err(sys::kernel_error("DRM_IOCTL_GET_CAP"))
    }

    /// Whether the node has binary and timeline syncobjs (our kernel patch turns them on for
    /// vgem and vkms).
    pub fn supports_timeline_syncobj(&self) -> Result<bool> {
        Ok(self.cap(Cap::SYNCOBJ)? != 0 && self.cap(Cap::SYNCOBJ_TIMELINE)? != 0)
    }

    /// Sets a client capability (`DRM_IOCTL_SET_CLIENT_CAP`).
    pub(crate) fn set_client_cap(&self, capability: u64, value: u64) -> Result<()> {
        kernel::drm_set_client_cap(self.as_fd(), capability, value)
            .map_err(sys::kernel_error("DRM_IOCTL_SET_CLIENT_CAP"))
    }
}

impl AsFd for DrmNode {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The nodes of `kind` in [`DRI_DIR`], in numeric order.
fn nodes(kind: NodeKind) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(DRI_DIR) else {
        return Vec::new();
    };
    let mut nodes: Vec<(u32, PathBuf)> = dir
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name();
            let number = name.to_str()?.strip_prefix(kind.prefix())?.parse().ok()?;
            Some((number, entry.path()))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, path)| path).collect()
}

/// Reads the driver name with `DRM_IOCTL_VERSION`.
fn driver_name(fd: BorrowedFd<'_>) -> Result<String> {
    kernel::drm_driver_name(fd).map_err(sys::kernel_error("DRM_IOCTL_VERSION"))
}
