//! KMS on vkms: planes, connectors, dumb framebuffers and a legacy modeset.
//!
//! Enough to check what the guest's display offers and to put a known image on screen for
//! [`crate::crc`] checks. The compositor's own KMS code is what is under test elsewhere; this
//! module stays deliberately simple (legacy `SETCRTC`, no atomic builder).
//!
//! ```no_run
//! use lockstep_vm_support::drm::{DrmNode, NodeKind};
//! use lockstep_vm_support::kms::{self, PlaneKind};
//!
//! let vkms = DrmNode::find("vkms", NodeKind::Primary)?;
//! let planes = kms::planes(&vkms)?;
//! let cursors = planes.iter().filter(|p| p.kind == PlaneKind::Cursor).count();
//! assert_eq!(cursors, 1);
//! # Ok::<(), lockstep_vm_support::Error>(())
//! ```

use std::os::fd::AsFd;
use std::ptr::NonNull;

use rustix::mm::{MapFlags, ProtFlags};

use crate::drm::DrmNode;
use crate::sys;
use crate::{Error, Result};
use lockstep_sync::sys as kernel;

/// A KMS object id (plane, CRTC, connector, property, framebuffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub u32);

/// A DRM fourcc pixel format code (`DRM_FORMAT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fourcc(pub u32);

impl Fourcc {
    /// `DRM_FORMAT_XRGB8888`: 32 bpp, no alpha.
    pub const XRGB8888: Self = Self(u32::from_le_bytes(*b"XR24"));
    /// `DRM_FORMAT_ARGB8888`: 32 bpp with alpha.
    pub const ARGB8888: Self = Self(u32::from_le_bytes(*b"AR24"));
}

/// A GEM buffer handle on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GemHandle(pub u32);

/// The plane "type" property (kernel `enum drm_plane_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaneKind {
    /// `DRM_PLANE_TYPE_OVERLAY`.
    Overlay,
    /// `DRM_PLANE_TYPE_PRIMARY`.
    Primary,
    /// `DRM_PLANE_TYPE_CURSOR`.
    Cursor,
}

/// One plane as `GETPLANE` and its properties describe it.
#[derive(Debug, Clone)]
pub struct Plane {
    /// Plane id.
    pub id: ObjectId,
    /// Primary, cursor or overlay.
    pub kind: PlaneKind,
    /// Supported pixel formats.
    pub formats: Vec<Fourcc>,
    /// Bit mask of CRTC indices the plane can be used with.
    pub possible_crtcs: u32,
    /// Whether the plane has the `IN_FENCE_FD` property (explicit-sync scanout).
    pub in_fence_fd: bool,
}

/// One connector with its modes.
#[derive(Debug, Clone)]
pub struct Connector {
    /// Connector id.
    pub id: ObjectId,
    /// Whether this is a writeback connector (`DRM_MODE_CONNECTOR_WRITEBACK`).
    pub writeback: bool,
    /// Its modes, preferred first.
    pub modes: Vec<Mode>,
}

/// A display mode (`struct drm_mode_modeinfo`).
#[derive(Debug, Clone, Copy)]
pub struct Mode(sys::DrmModeModeinfo);

impl Mode {
    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        (u32::from(self.0.hdisplay), u32::from(self.0.vdisplay))
    }

    /// Refresh rate in Hz.
    pub fn refresh(&self) -> u32 {
        self.0.vrefresh
    }

    /// The kernel's name for it, e.g. "1024x768".
    pub fn name(&self) -> String {
        sys::c_str(&self.0.name)
    }

    pub(crate) fn raw(&self) -> &sys::DrmModeModeinfo {
        &self.0
    }
}

/// Turns on the client caps of atomic KMS for `dev`'s fd: universal planes (else primary and
/// cursor planes are hidden), atomic, and writeback connectors (else [`resources`] does not
/// list them).
pub fn enable_atomic(dev: &DrmNode) -> Result<()> {
    dev.set_client_cap(sys::DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1)?;
    dev.set_client_cap(sys::DRM_CLIENT_CAP_ATOMIC, 1)?;
    dev.set_client_cap(sys::DRM_CLIENT_CAP_WRITEBACK_CONNECTORS, 1)
}

/// Lists every plane of `dev` (after [`enable_atomic`], without which primary and cursor
/// planes are hidden).
pub fn planes(dev: &DrmNode) -> Result<Vec<Plane>> {
    enable_atomic(dev)?;
    let mut ids: Vec<u32> = Vec::new();
    loop {
        let mut arg = sys::DrmModeGetPlaneRes {
            plane_id_ptr: ids.as_mut_ptr() as u64,
            count_planes: ids.len() as u32,
        };
        // SAFETY: dev is an open DRM node; DrmModeGetPlaneRes is struct
        // drm_mode_get_plane_res; plane_id_ptr points at count_planes u32s.
        unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_MODE_GETPLANERESOURCES }, _>(
                dev.as_fd(),
                "DRM_IOCTL_MODE_GETPLANERESOURCES",
                &mut arg,
            )
        }?;
        if arg.count_planes as usize <= ids.len() {
            ids.truncate(arg.count_planes as usize);
            break;
        }
        ids = vec![0; arg.count_planes as usize];
    }
    ids.into_iter().map(|id| plane(dev, ObjectId(id))).collect()
}

fn plane(dev: &DrmNode, id: ObjectId) -> Result<Plane> {
    let mut formats = Vec::new();
    let mut arg = sys::DrmModeGetPlane {
        plane_id: id.0,
        ..Default::default()
    };
    // Ask for the count, then for the formats (retry if the count grew in between).
    loop {
        arg.format_type_ptr = formats.as_mut_ptr() as u64;
        let asked = arg.count_format_types;
        // SAFETY: dev is an open DRM node; DrmModeGetPlane is struct drm_mode_get_plane, the
        // type DRM_IOCTL_MODE_GETPLANE expects; format_type_ptr points at `asked` u32s (or
        // asked is 0 and the kernel writes none).
        unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_MODE_GETPLANE }, _>(
                dev.as_fd(),
                "DRM_IOCTL_MODE_GETPLANE",
                &mut arg,
            )
        }?;
        if arg.count_format_types <= asked {
            formats.truncate(arg.count_format_types as usize);
            break;
        }
        formats = vec![0u32; arg.count_format_types as usize];
        arg.count_format_types = formats.len() as u32;
    }
    let props = properties(dev, id, sys::DRM_MODE_OBJECT_PLANE)?;
    let kind = match props.iter().find(|p| p.name == "type").map(|p| p.value) {
        Some(0) => PlaneKind::Overlay,
        Some(1) => PlaneKind::Primary,
        Some(2) => PlaneKind::Cursor,
        other => {
            return Err(Error::Parse {
                what: "plane type property",
                text: format!("{other:?}"),
            })
        }
    };
    Ok(Plane {
        id,
        kind,
        formats: formats.into_iter().map(Fourcc).collect(),
        possible_crtcs: arg.possible_crtcs,
        in_fence_fd: props.iter().any(|p| p.name == "IN_FENCE_FD"),
    })
}

/// A property of a KMS object with its current value.
#[derive(Debug, Clone)]
pub struct Property {
    /// Property id.
    pub id: ObjectId,
    /// Property name, e.g. "IN_FENCE_FD".
    pub name: String,
    /// Current value.
    pub value: u64,
}

/// Every property of object `obj` of type `obj_type` (a `DRM_MODE_OBJECT_*` value).
pub(crate) fn properties(dev: &DrmNode, obj: ObjectId, obj_type: u32) -> Result<Vec<Property>> {
    let mut ids: Vec<u32> = Vec::new();
    let mut values: Vec<u64> = Vec::new();
    let mut arg = sys::DrmModeObjGetProperties {
        obj_id: obj.0,
        obj_type,
        ..Default::default()
    };
    loop {
        arg.props_ptr = ids.as_mut_ptr() as u64;
        arg.prop_values_ptr = values.as_mut_ptr() as u64;
        let asked = arg.count_props;
        // SAFETY: dev is an open DRM node; DrmModeObjGetProperties is struct
        // drm_mode_obj_get_properties; props_ptr/prop_values_ptr point at `asked` u32s/u64s.
        unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_MODE_OBJ_GETPROPERTIES }, _>(
                dev.as_fd(),
                "DRM_IOCTL_MODE_OBJ_GETPROPERTIES",
                &mut arg,
            )
        }?;
        if arg.count_props <= asked {
            break;
        }
        ids = vec![0; arg.count_props as usize];
        values = vec![0; arg.count_props as usize];
    }
    ids.truncate(arg.count_props as usize);
    ids.iter()
        .zip(&values)
        .map(|(&id, &value)| {
            let mut p = sys::DrmModeGetProperty {
                prop_id: id,
                ..Default::default()
            };
            // SAFETY: dev is an open DRM node; DrmModeGetProperty is struct
            // drm_mode_get_property; count_values/count_enum_blobs are 0 with null pointers,
            // so the kernel only fills in the name and counts.
            unsafe {
                sys::ioctl::<{ sys::DRM_IOCTL_MODE_GETPROPERTY }, _>(
                    dev.as_fd(),
                    "DRM_IOCTL_MODE_GETPROPERTY",
                    &mut p,
                )
            }?;
            Ok(Property {
                id: ObjectId(id),
                name: sys::c_str(&p.name),
                value,
            })
        })
        .collect()
}

/// CRTC and connector ids of `dev` (`DRM_IOCTL_MODE_GETRESOURCES`).
pub fn resources(dev: &DrmNode) -> Result<(Vec<ObjectId>, Vec<ObjectId>)> {
    let mut crtcs: Vec<u32> = Vec::new();
    let mut connectors: Vec<u32> = Vec::new();
    loop {
        let mut arg = sys::DrmModeCardRes {
            crtc_id_ptr: crtcs.as_mut_ptr() as u64,
            connector_id_ptr: connectors.as_mut_ptr() as u64,
            count_crtcs: crtcs.len() as u32,
            count_connectors: connectors.len() as u32,
            ..Default::default()
        };
        // SAFETY: dev is an open DRM node; DrmModeCardRes is struct drm_mode_card_res;
        // crtc/connector pointers point at as many u32s as their counts say, and fbs/encoders
        // have count 0, so the kernel writes nothing there.
        unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_MODE_GETRESOURCES }, _>(
                dev.as_fd(),
                "DRM_IOCTL_MODE_GETRESOURCES",
                &mut arg,
            )
        }?;
        let (nc, nn) = (arg.count_crtcs as usize, arg.count_connectors as usize);
        if nc <= crtcs.len() && nn <= connectors.len() {
            crtcs.truncate(nc);
            connectors.truncate(nn);
            let ids = |v: Vec<u32>| v.into_iter().map(ObjectId).collect();
            return Ok((ids(crtcs), ids(connectors)));
        }
        crtcs = vec![0; nc];
        connectors = vec![0; nn];
    }
}

/// Describes connector `id` with its modes, preferred mode first.
pub fn connector(dev: &DrmNode, id: ObjectId) -> Result<Connector> {
    let mut modes: Vec<sys::DrmModeModeinfo> = Vec::new();
    loop {
        let mut arg = sys::DrmModeGetConnector {
            connector_id: id.0,
            modes_ptr: modes.as_mut_ptr() as u64,
            count_modes: modes.len() as u32,
            ..Default::default()
        };
        // SAFETY: dev is an open DRM node; DrmModeGetConnector is struct
        // drm_mode_get_connector; modes_ptr points at count_modes modeinfos, and props and
        // encoders have count 0, so the kernel writes nothing there.
        unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_MODE_GETCONNECTOR }, _>(
                dev.as_fd(),
                "DRM_IOCTL_MODE_GETCONNECTOR",
                &mut arg,
            )
        }?;
        if arg.count_modes as usize <= modes.len() {
            modes.truncate(arg.count_modes as usize);
            modes.sort_by_key(|m| m.type_ & sys::DRM_MODE_TYPE_PREFERRED == 0);
            return Ok(Connector {
                id,
                writeback: arg.connector_type == sys::DRM_MODE_CONNECTOR_WRITEBACK,
                modes: modes.into_iter().map(Mode).collect(),
            });
        }
        modes = vec![sys::DrmModeModeinfo::default(); arg.count_modes as usize];
    }
}

/// A 32 bpp dumb buffer, mapped, with a framebuffer (`ADDFB2`). Freed on drop.
#[derive(Debug)]
pub struct DumbBuffer<'d> {
    dev: &'d DrmNode,
    handle: GemHandle,
    fb: ObjectId,
    width: u32,
    height: u32,
    pitch: u32,
    map: NonNull<u8>,
    len: usize,
}

impl<'d> DumbBuffer<'d> {
    /// Creates a `width`×`height` buffer of a 32 bpp `format` (e.g. [`Fourcc::XRGB8888`]) on
    /// `dev`, maps it and adds a framebuffer for it.
    pub fn new(dev: &'d DrmNode, width: u32, height: u32, format: Fourcc) -> Result<Self> {
        let (handle, pitch, size) = kernel::mode_create_dumb(dev.as_fd(), width, height, 32)
            .map_err(sys::kernel_error("DRM_IOCTL_MODE_CREATE_DUMB"))?;
        let handle = GemHandle(handle);
        // From here on, errors must free the handle: build the value first, fill in later.
        let mut buf = Self {
            dev,
            handle,
            fb: ObjectId(0),
            width,
            height,
            pitch,
            map: NonNull::dangling(),
            len: 0,
        };
        let offset = kernel::mode_map_dumb(dev.as_fd(), handle.0)
            .map_err(sys::kernel_error("DRM_IOCTL_MODE_MAP_DUMB"))?;
        let len = usize::try_from(size).map_err(|_| Error::Parse {
            what: "dumb buffer size",
            text: size.to_string(),
        })?;
        // SAFETY: a fresh shared mapping of `len` bytes at the fake offset MAP_DUMB returned
        // for this buffer; it overlaps no Rust object and is unmapped only in Drop.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                dev.as_fd(),
                offset,
            )
        }
        .map_err(Error::syscall("mmap(dumb buffer)"))?;
        buf.map =
            NonNull::new(ptr.cast()).ok_or(Error::Unsupported("mmap returned null".into()))?;
        buf.len = len;
        let mut fb = sys::DrmModeFbCmd2 {
            width,
            height,
            pixel_format: format.0,
            handles: [handle.0, 0, 0, 0],
            pitches: [pitch, 0, 0, 0],
            ..Default::default()
        };
        // SAFETY: dev is an open DRM node and handle a dumb buffer on it; DrmModeFbCmd2 is
        // struct drm_mode_fb_cmd2, no pointers.
        unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_MODE_ADDFB2 }, _>(
                dev.as_fd(),
                "DRM_IOCTL_MODE_ADDFB2",
                &mut fb,
            )
        }?;
        buf.fb = ObjectId(fb.fb_id);
        Ok(buf)
    }

    /// The framebuffer id.
    pub fn fb(&self) -> ObjectId {
        self.fb
    }

    /// Width and height.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The pixel at (`x`, `y`), or `None` outside the buffer.
    pub fn pixel(&self, x: u32, y: u32) -> Option<u32> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let index = y as usize * (self.pitch / 4) as usize + x as usize;
        // SAFETY: `map` is a live, page-aligned mapping of `len` bytes owned by self; no
        // &mut slice into it exists while &self is borrowed.
        let pixels: &[u32] =
            unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast(), self.len / 4) };
        pixels.get(index).copied()
    }

    /// Bytes per row.
    pub fn pitch(&self) -> u32 {
        self.pitch
    }

    /// The pixels, row by row, `pitch / 4` pixels per row.
    pub fn pixels_mut(&mut self) -> &mut [u32] {
        // SAFETY: `map` is a live, page-aligned (so u32-aligned) mapping of `len` bytes owned
        // by self; &mut self makes this the only reference into it.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_ptr().cast(), self.len / 4) }
    }

    /// Fills the visible area with one 32-bit pixel value.
    pub fn fill(&mut self, pixel: u32) {
        let stride = (self.pitch / 4) as usize;
        let (w, h) = (self.width as usize, self.height as usize);
        for row in self.pixels_mut().chunks_mut(stride).take(h) {
            let visible = w.min(row.len());
            row[..visible].fill(pixel);
        }
    }

    /// Shows this buffer on `crtc` driving `connector` in `mode` (legacy `SETCRTC`, which
    /// vkms implements with atomic helpers). The buffer must be at least the mode's size.
    pub fn show(&self, crtc: ObjectId, connector: ObjectId, mode: &Mode) -> Result<()> {
        let mut connectors = [connector.0];
        let mut arg = sys::DrmModeCrtc {
            set_connectors_ptr: connectors.as_mut_ptr() as u64,
            count_connectors: 1,
            crtc_id: crtc.0,
            fb_id: self.fb.0,
            mode_valid: 1,
            mode: mode.0,
            ..Default::default()
        };
        // SAFETY: self.dev is an open DRM node; DrmModeCrtc is struct drm_mode_crtc;
        // set_connectors_ptr points at one u32 matching count_connectors = 1.
        unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_MODE_SETCRTC }, _>(
                self.dev.as_fd(),
                "DRM_IOCTL_MODE_SETCRTC",
                &mut arg,
            )
        }?;
        Ok(())
    }
}

impl Drop for DumbBuffer<'_> {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: map/len are the mapping made in new(), unmapped only here; no slice
            // into it outlives &mut self.
            let _ = unsafe { rustix::mm::munmap(self.map.as_ptr().cast(), self.len) };
        }
        if self.fb.0 != 0 {
            let mut fb = self.fb.0;
            // SAFETY: self.dev is an open DRM node and fb a framebuffer on it;
            // DRM_IOCTL_MODE_RMFB takes the fb id as an unsigned int. Failure only leaks the
            // fb until the device closes.
            let _ = unsafe {
                sys::ioctl::<{ sys::DRM_IOCTL_MODE_RMFB }, _>(
                    self.dev.as_fd(),
                    "DRM_IOCTL_MODE_RMFB",
                    &mut fb,
                )
            };
        }
        crate::dmabuf::gem_close(self.dev, self.handle);
    }
}
