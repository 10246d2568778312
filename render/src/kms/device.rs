//! A KMS device and what it offers: connectors, CRTCs, planes and their property ids.
//!
//! Property ids differ between drivers and boots, so every object's properties are looked up
//! by name once ([`Props`]) and the atomic requests of the pipeline use the cached ids.

use std::{
    collections::HashMap,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    path::{Path, PathBuf},
};

use drm::control::{
    connector, crtc, plane, property, Device as ControlDevice, Mode, ResourceHandle,
};
use drm::{ClientCapability, Device as DrmDeviceTrait, DriverCapability};

use super::KmsError;

/// An open KMS (primary) node with atomic modesetting and universal planes enabled.
#[derive(Debug)]
pub struct KmsDevice {
    fd: OwnedFd,
    path: PathBuf,
}

impl AsFd for KmsDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl DrmDeviceTrait for KmsDevice {}
impl ControlDevice for KmsDevice {}

impl KmsDevice {
    /// Opens `path` (as root, or with an fd from a session use [`KmsDevice::from_fd`]).
    pub fn open(path: &Path) -> Result<Self, KmsError> {
        use rustix::fs::{Mode as FsMode, OFlags};
        let fd = rustix::fs::open(
            path,
            OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            FsMode::empty(),
        )
        .map_err(|e| KmsError::io(format!("opening {}", path.display()), e.into()))?;
        Self::from_fd(fd, path)
    }

    /// Wraps an fd to a primary node and turns on the client capabilities the pipeline needs.
    pub fn from_fd(fd: OwnedFd, path: &Path) -> Result<Self, KmsError> {
        let dev = Self {
            fd,
            path: path.to_owned(),
        };
        dev.set_client_capability(ClientCapability::UniversalPlanes, true)
            .map_err(|e| KmsError::io("enabling universal planes", e))?;
        dev.set_client_capability(ClientCapability::Atomic, true)
            .map_err(|_| KmsError::NoAtomic(dev.path.clone()))?;
        // Writeback connectors are invisible without this; one left bound to a CRTC by a
        // previous program must be seen to be unbound (an older kernel without them is fine).
        let _ = dev.set_client_capability(ClientCapability::WritebackConnectors, true);
        Ok(dev)
    }

    /// Where the device was opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The render node of the same device (`/dev/dri/renderD128`), from sysfs; `None` for a
    /// display-only device (vkms) or when sysfs cannot tell.
    pub fn render_node(&self) -> Option<PathBuf> {
        let stat = rustix::fs::fstat(&self.fd).ok()?;
        let (major, minor) = (
            rustix::fs::major(stat.st_rdev),
            rustix::fs::minor(stat.st_rdev),
        );
        let dir = format!("/sys/dev/char/{major}:{minor}/device/drm");
        let mut nodes: Vec<String> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with("renderD"))
            .collect();
        nodes.sort();
        nodes.first().map(|n| Path::new("/dev/dri").join(n))
    }

    /// The kernel driver's name (`vkms`, `i915`, `amdgpu`, ...).
    pub fn driver_name(&self) -> String {
        self.get_driver()
            .map(|d| d.name().to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".into())
    }

    /// The largest cursor the hardware takes (DRM_CAP_CURSOR_WIDTH/HEIGHT, 64×64 if unsaid).
    pub fn cursor_size(&self) -> (u32, u32) {
        let w = self
            .get_driver_capability(DriverCapability::CursorWidth)
            .unwrap_or(64);
        let h = self
            .get_driver_capability(DriverCapability::CursorHeight)
            .unwrap_or(64);
        (w.clamp(1, 512) as u32, h.clamp(1, 512) as u32)
    }

    /// Property ids of `handle`, by name.
    pub fn props<H: ResourceHandle>(&self, handle: H) -> Result<Props, KmsError> {
        let set = self
            .get_properties(handle)
            .map_err(|e| KmsError::io("reading object properties", e))?;
        let mut ids = HashMap::new();
        let mut values = HashMap::new();
        for (&prop, &value) in set.iter() {
            if let Ok(info) = self.get_property(prop) {
                let name = info.name().to_string_lossy().into_owned();
                ids.insert(name.clone(), prop);
                values.insert(name, value);
            }
        }
        Ok(Props { ids, values })
    }

    /// Connected connectors with at least one mode.
    pub fn connected(&self) -> Result<Vec<ConnectorInfo>, KmsError> {
        let res = self
            .resource_handles()
            .map_err(|e| KmsError::io("reading KMS resources", e))?;
        let mut out = Vec::new();
        for &handle in res.connectors() {
            let Ok(info) = self.get_connector(handle, true) else {
                continue;
            };
            if info.interface() == connector::Interface::Writeback
                || info.state() != connector::State::Connected
                || info.modes().is_empty()
            {
                continue;
            }
            let name = format!(
                "{}-{}",
                interface_name(info.interface()),
                info.interface_id()
            );
            // CRTCs any of the connector's encoders can drive.
            let mut crtcs = Vec::new();
            for &enc in info.encoders() {
                if let Ok(enc) = self.get_encoder(enc) {
                    for crtc in res.filter_crtcs(enc.possible_crtcs()) {
                        if !crtcs.contains(&crtc) {
                            crtcs.push(crtc);
                        }
                    }
                }
            }
            out.push(ConnectorInfo {
                handle,
                name,
                modes: info.modes().to_vec(),
                size_mm: info.size().unwrap_or((0, 0)),
                crtcs,
            });
        }
        Ok(out)
    }

    /// Connectors other than `keep` that are bound to `crtc` now (left by the previous
    /// master: another compositor, a test, a writeback capture), with their CRTC_ID property:
    /// a modeset must unbind them or the kernel rejects it.
    pub fn other_connectors_on(
        &self,
        crtc: crtc::Handle,
        keep: connector::Handle,
    ) -> Result<Vec<(connector::Handle, property::Handle)>, KmsError> {
        let res = self
            .resource_handles()
            .map_err(|e| KmsError::io("reading KMS resources", e))?;
        let mut out = Vec::new();
        for &handle in res.connectors() {
            if handle == keep {
                continue;
            }
            let props = self.props(handle)?;
            if props.value("CRTC_ID") == Some(u64::from(u32::from(crtc))) {
                out.push((handle, props.id("CRTC_ID")?));
            }
        }
        Ok(out)
    }

    /// The planes `crtc` (at `index` in the resource list) can use, by kind.
    pub fn planes_for(&self, crtc: crtc::Handle) -> Result<CrtcPlanes, KmsError> {
        let res = self
            .resource_handles()
            .map_err(|e| KmsError::io("reading KMS resources", e))?;
        let planes = self
            .plane_handles()
            .map_err(|e| KmsError::io("listing planes", e))?;
        let mut primary = None;
        let mut cursor = None;
        let mut overlays = Vec::new();
        for handle in planes {
            let Ok(info) = self.get_plane(handle) else {
                continue;
            };
            if !res.filter_crtcs(info.possible_crtcs()).contains(&crtc) {
                continue;
            }
            let props = self.props(handle)?;
            let kind = match props.value("type") {
                Some(1) => PlaneKind::Primary,
                Some(2) => PlaneKind::Cursor,
                _ => PlaneKind::Overlay,
            };
            let plane = PlaneInfo {
                handle,
                kind,
                formats: info.formats().to_vec(),
                props,
            };
            match kind {
                PlaneKind::Primary if primary.is_none() => primary = Some(plane),
                PlaneKind::Cursor if cursor.is_none() => cursor = Some(plane),
                PlaneKind::Overlay => overlays.push(plane),
                _ => {}
            }
        }
        let primary = primary.ok_or(KmsError::NoPrimaryPlane)?;
        Ok(CrtcPlanes {
            primary,
            cursor,
            overlays,
        })
    }
}

/// A connector that shows something.
#[derive(Debug, Clone)]
pub struct ConnectorInfo {
    /// The kernel object.
    pub handle: connector::Handle,
    /// `Virtual-1`, `HDMI-A-1`, ...: the output's name.
    pub name: String,
    /// Modes, the preferred one first (the kernel's order).
    pub modes: Vec<Mode>,
    /// Physical size in millimetres.
    pub size_mm: (u32, u32),
    /// CRTCs that can drive it.
    pub crtcs: Vec<crtc::Handle>,
}

impl ConnectorInfo {
    /// The preferred mode, else the first.
    pub fn preferred_mode(&self) -> Mode {
        self.modes
            .iter()
            .find(|m| {
                m.mode_type()
                    .contains(drm::control::ModeTypeFlags::PREFERRED)
            })
            .copied()
            .unwrap_or(self.modes[0])
    }
}

/// What a plane is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlaneKind {
    /// Under everything, covers the CRTC.
    Primary,
    /// Small, on top.
    Cursor,
    /// In between.
    Overlay,
}

impl PlaneKind {
    /// A lower-case name for logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            PlaneKind::Primary => "primary",
            PlaneKind::Cursor => "cursor",
            PlaneKind::Overlay => "overlay",
        }
    }
}

/// A plane with its formats and property ids.
#[derive(Debug, Clone)]
pub struct PlaneInfo {
    /// The kernel object.
    pub handle: plane::Handle,
    /// Primary, cursor or overlay.
    pub kind: PlaneKind,
    /// DRM fourcc codes it scans out.
    pub formats: Vec<u32>,
    /// Property ids by name.
    pub props: Props,
}

/// The planes one CRTC can use.
#[derive(Debug, Clone)]
pub struct CrtcPlanes {
    /// Shows the composited frame (or a direct-scanout buffer).
    pub primary: PlaneInfo,
    /// The cursor plane, when the hardware has one.
    pub cursor: Option<PlaneInfo>,
    /// Overlay planes.
    pub overlays: Vec<PlaneInfo>,
}

/// Property ids (and the values read with them) of one KMS object, by name.
#[derive(Debug, Clone, Default)]
pub struct Props {
    ids: HashMap<String, property::Handle>,
    values: HashMap<String, u64>,
}

impl Props {
    /// The id of property `name`.
    pub fn id(&self, name: &str) -> Result<property::Handle, KmsError> {
        self.ids
            .get(name)
            .copied()
            .ok_or_else(|| KmsError::MissingProperty(name.to_owned()))
    }

    /// Whether the object has property `name`.
    pub fn has(&self, name: &str) -> bool {
        self.ids.contains_key(name)
    }

    /// The value property `name` had when it was read.
    pub fn value(&self, name: &str) -> Option<u64> {
        self.values.get(name).copied()
    }
}

fn interface_name(i: connector::Interface) -> &'static str {
    use connector::Interface as I;
    match i {
        I::VGA => "VGA",
        I::DVII => "DVI-I",
        I::DVID => "DVI-D",
        I::DVIA => "DVI-A",
        I::Composite => "Composite",
        I::SVideo => "SVIDEO",
        I::LVDS => "LVDS",
        I::Component => "Component",
        I::NinePinDIN => "DIN",
        I::DisplayPort => "DP",
        I::HDMIA => "HDMI-A",
        I::HDMIB => "HDMI-B",
        I::TV => "TV",
        I::EmbeddedDisplayPort => "eDP",
        I::Virtual => "Virtual",
        I::DSI => "DSI",
        I::DPI => "DPI",
        I::Writeback => "Writeback",
        I::SPI => "SPI",
        I::USB => "USB",
        _ => "Unknown",
    }
}
