//! Capability probe: can this device do explicit sync, and if not, why not.
//!
//! # Why
//!
//! The linux-drm-syncobj-v1 global must only be advertised when every piece it needs works:
//! timeline syncobjs (`DRM_CAP_SYNCOBJ_TIMELINE`), `DRM_IOCTL_SYNCOBJ_EVENTFD` (Linux 6.6+, so
//! the compositor never blocks waiting for an acquire point), and sync_file export/import
//! (KMS in-fences, render fences). Drivers differ: upstream vgem/vkms have no syncobjs at all
//! (`EOPNOTSUPP`), and older kernels lack the eventfd ioctl (`EINVAL` from the DRM core for an
//! unknown ioctl). The probe tries each piece for real and keeps a human-readable reason for
//! each missing one, for logs and for `lockstep --check`.
//!
//! The eventfd probe registers on handle 0, which never exists: a kernel that has the ioctl
//! answers `ENOENT` after validating the arguments, without side effects.
//!
//! # How
//!
//! ```
//! use lockstep_sync::probe::{Capabilities, Feature};
//!
//! // Without a device nothing is supported, and every reason says so.
//! let caps = Capabilities::unsupported("no DRM device");
//! assert!(!caps.supports_explicit_sync());
//! assert_eq!(caps.missing().len(), 4);
//! assert!(caps.missing().iter().any(|m| m.feature == Feature::SyncobjEventfd));
//! ```

use std::fmt;
use std::os::fd::AsFd;
use std::sync::Arc;

use crate::device::DrmNode;
use crate::syncobj::{Syncobj, SyncobjError};
use crate::sys;

/// One capability the explicit-sync protocol needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// Timeline syncobjs (DRM_CAP_SYNCOBJ_TIMELINE, QUERY, TIMELINE_SIGNAL).
    TimelineSyncobj,
    /// DRM_IOCTL_SYNCOBJ_EVENTFD.
    SyncobjEventfd,
    /// Exporting a syncobj's fence as a sync_file.
    SyncFileExport,
    /// Importing a sync_file into a syncobj.
    SyncFileImport,
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Feature::TimelineSyncobj => "timeline syncobjs",
            Feature::SyncobjEventfd => "DRM_IOCTL_SYNCOBJ_EVENTFD",
            Feature::SyncFileExport => "sync_file export",
            Feature::SyncFileImport => "sync_file import",
        })
    }
}

/// A missing capability and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// What is missing.
    pub feature: Feature,
    /// Why, for a person.
    pub reason: String,
}

/// Every missing capability (the error of [`Capabilities::require_explicit_sync`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct MissingCapabilities(pub Vec<Missing>);

fn describe(missing: &[Missing]) -> String {
    missing
        .iter()
        .map(|m| format!("{}: {}", m.feature, m.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a device can do. `Ok(())` per feature, or the reason it cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Driver name the probe ran on ("" when none).
    pub driver: String,
    /// Timeline syncobjs.
    pub timeline: Result<(), String>,
    /// SYNCOBJ_EVENTFD.
    pub eventfd: Result<(), String>,
    /// sync_file export.
    pub sync_file_export: Result<(), String>,
    /// sync_file import.
    pub sync_file_import: Result<(), String>,
}

impl Capabilities {
    /// Nothing supported, every reason `reason`.
    pub fn unsupported(reason: &str) -> Capabilities {
        Capabilities {
            driver: String::new(),
            timeline: Err(reason.to_owned()),
            eventfd: Err(reason.to_owned()),
            sync_file_export: Err(reason.to_owned()),
            sync_file_import: Err(reason.to_owned()),
        }
    }

    /// Probes `node` by trying each operation for real (all objects are released again).
    pub fn probe(node: &Arc<DrmNode>) -> Capabilities {
        let driver = node.driver().to_owned();
        let timeline = match sys::drm_get_cap(node.as_fd(), sys::DRM_CAP_SYNCOBJ_TIMELINE) {
            Ok(0) => Err(format!(
                "driver {driver} does not report DRM_CAP_SYNCOBJ_TIMELINE"
            )),
            Ok(_) => probe_timeline(node),
            Err(e) => Err(format!("DRM_IOCTL_GET_CAP failed: {e}")),
        };
        let eventfd = probe_eventfd(node, &driver);
        let (sync_file_export, sync_file_import) = probe_sync_file(node);
        Capabilities {
            driver,
            timeline,
            eventfd,
            sync_file_export,
            sync_file_import,
        }
    }

    /// Every missing capability.
    pub fn missing(&self) -> Vec<Missing> {
        [
            (Feature::TimelineSyncobj, &self.timeline),
            (Feature::SyncobjEventfd, &self.eventfd),
            (Feature::SyncFileExport, &self.sync_file_export),
            (Feature::SyncFileImport, &self.sync_file_import),
        ]
        .into_iter()
        .filter_map(|(feature, r)| {
            r.as_ref().err().map(|reason| Missing {
                feature,
                reason: reason.clone(),
            })
        })
        .collect()
    }

    /// Whether linux-drm-syncobj-v1 can be advertised.
    pub fn supports_explicit_sync(&self) -> bool {
        self.missing().is_empty()
    }

    /// `Ok` when explicit sync is fully supported, else every missing piece.
    pub fn require_explicit_sync(&self) -> Result<(), MissingCapabilities> {
        let missing = self.missing();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(MissingCapabilities(missing))
        }
    }
}

fn probe_timeline(node: &Arc<DrmNode>) -> Result<(), String> {
    let obj = Syncobj::create(node, false).map_err(|e| reason(&e))?;
    obj.signal(1).map_err(|e| reason(&e))?;
    match obj.query(false) {
        Ok(1) => Ok(()),
        Ok(other) => Err(format!("QUERY after signalling point 1 returned {other}")),
        Err(e) => Err(reason(&e)),
    }
}

fn probe_eventfd(node: &Arc<DrmNode>, driver: &str) -> Result<(), String> {
    let efd = sys::eventfd().map_err(|e| format!("cannot create an eventfd: {e}"))?;
    match sys::syncobj_eventfd(node.as_fd(), 0, 0, efd.as_fd(), 0) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Err(format!(
            "driver {driver} has no timeline syncobjs (EOPNOTSUPP)"
        )),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOTTY)) => Err(
            format!("the kernel has no DRM_IOCTL_SYNCOBJ_EVENTFD (needs Linux 6.6+): {e}"),
        ),
        Err(e) => Err(format!("unexpected error probing on handle 0: {e}")),
        Ok(()) => Err("probe on handle 0 unexpectedly succeeded".to_owned()),
    }
}

fn probe_sync_file(node: &Arc<DrmNode>) -> (Result<(), String>, Result<(), String>) {
    let exported = Syncobj::create(node, true)
        .and_then(|obj| obj.export_sync_file_binary())
        .map_err(|e| reason(&e));
    let export = exported.as_ref().map(|_| ()).map_err(Clone::clone);
    let import = match exported {
        Ok(file) => Syncobj::create(node, false)
            .and_then(|obj| obj.import_sync_file_binary(&file))
            .map_err(|e| reason(&e)),
        Err(e) => Err(format!("not probed, export failed: {e}")),
    };
    (export, import)
}

fn reason(e: &SyncobjError) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_lists_reasons() {
        let mut caps = Capabilities::unsupported("no device");
        caps.timeline = Ok(());
        let err = caps.require_explicit_sync().expect_err("missing");
        assert_eq!(err.0.len(), 3);
        assert!(err
            .to_string()
            .contains("DRM_IOCTL_SYNCOBJ_EVENTFD: no device"));
        caps.eventfd = Ok(());
        caps.sync_file_export = Ok(());
        caps.sync_file_import = Ok(());
        assert!(caps.supports_explicit_sync());
    }
}
