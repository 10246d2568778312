//! Raw kernel ABI of the KMS mode-setting ioctls this crate uses, and one checked `ioctl` call.
//!
//! Every other ioctl (DRM version and capabilities, syncobjs, sync_file, sw_sync, dma-heap,
//! udmabuf, dma-buf sync, dumb buffers, PRIME, GEM) is declared once in the project, in
//! `lockstep_sync::sys`, and used from there ([`kernel_error`] maps its errors). The KMS ones
//! stay here because only this harness issues them raw: lockstep's own KMS code goes through
//! the `drm` crate, and a harness that checks what the compositor put on screen should not
//! share the compositor's KMS layer.
//!
//! Everything here mirrors a kernel header (named on each item) field for field; the unit tests
//! at the bottom pin every opcode to the value the C headers produce, so a wrong size or
//! direction fails on the host, long before a guest sees `ENOTTY`. The typed wrappers in the
//! other modules are the only callers.

use std::os::fd::BorrowedFd;

use rustix::io::Errno;
use rustix::ioctl::{self, opcode, Ioctl, IoctlOutput, Opcode};

use crate::Error;

// ------------------------------------------------------------------------------ drm.h

/// `DRM_IOCTL_BASE`.
const DRM: u8 = b'd';

/// Client capabilities (`DRM_CLIENT_CAP_*`) for `lockstep_sync::sys::drm_set_client_cap`.
pub(crate) const DRM_CLIENT_CAP_UNIVERSAL_PLANES: u64 = 2;
pub(crate) const DRM_CLIENT_CAP_ATOMIC: u64 = 3;
pub(crate) const DRM_CLIENT_CAP_WRITEBACK_CONNECTORS: u64 = 5;

// ------------------------------------------------------------------------------ drm_mode.h

/// `struct drm_mode_card_res`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmModeCardRes {
    pub fb_id_ptr: u64,
    pub crtc_id_ptr: u64,
    pub connector_id_ptr: u64,
    pub encoder_id_ptr: u64,
    pub count_fbs: u32,
    pub count_crtcs: u32,
    pub count_connectors: u32,
    pub count_encoders: u32,
    pub min_width: u32,
    pub max_width: u32,
    pub min_height: u32,
    pub max_height: u32,
}
pub(crate) const DRM_IOCTL_MODE_GETRESOURCES: Opcode =
    opcode::read_write::<DrmModeCardRes>(DRM, 0xa0);

/// `struct drm_mode_modeinfo`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DrmModeModeinfo {
    pub clock: u32,
    pub hdisplay: u16,
    pub hsync_start: u16,
    pub hsync_end: u16,
    pub htotal: u16,
    pub hskew: u16,
    pub vdisplay: u16,
    pub vsync_start: u16,
    pub vsync_end: u16,
    pub vtotal: u16,
    pub vscan: u16,
    pub vrefresh: u32,
    pub flags: u32,
    pub type_: u32,
    pub name: [u8; 32],
}
/// `DRM_MODE_TYPE_PREFERRED`.
pub(crate) const DRM_MODE_TYPE_PREFERRED: u32 = 1 << 3;

/// `struct drm_mode_get_connector`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmModeGetConnector {
    pub encoders_ptr: u64,
    pub modes_ptr: u64,
    pub props_ptr: u64,
    pub prop_values_ptr: u64,
    pub count_modes: u32,
    pub count_props: u32,
    pub count_encoders: u32,
    pub encoder_id: u32,
    pub connector_id: u32,
    pub connector_type: u32,
    pub connector_type_id: u32,
    pub connection: u32,
    pub mm_width: u32,
    pub mm_height: u32,
    pub subpixel: u32,
    pub pad: u32,
}
pub(crate) const DRM_IOCTL_MODE_GETCONNECTOR: Opcode =
    opcode::read_write::<DrmModeGetConnector>(DRM, 0xa7);
/// `DRM_MODE_CONNECTOR_WRITEBACK`.
pub(crate) const DRM_MODE_CONNECTOR_WRITEBACK: u32 = 18;

/// `struct drm_mode_crtc`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmModeCrtc {
    pub set_connectors_ptr: u64,
    pub count_connectors: u32,
    pub crtc_id: u32,
    pub fb_id: u32,
    pub x: u32,
    pub y: u32,
    pub gamma_size: u32,
    pub mode_valid: u32,
    pub mode: DrmModeModeinfo,
}
pub(crate) const DRM_IOCTL_MODE_SETCRTC: Opcode = opcode::read_write::<DrmModeCrtc>(DRM, 0xa2);

/// `struct drm_mode_get_plane_res`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmModeGetPlaneRes {
    pub plane_id_ptr: u64,
    pub count_planes: u32,
}
pub(crate) const DRM_IOCTL_MODE_GETPLANERESOURCES: Opcode =
    opcode::read_write::<DrmModeGetPlaneRes>(DRM, 0xb5);

/// `struct drm_mode_get_plane`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmModeGetPlane {
    pub plane_id: u32,
    pub crtc_id: u32,
    pub fb_id: u32,
    pub possible_crtcs: u32,
    pub gamma_size: u32,
    pub count_format_types: u32,
    pub format_type_ptr: u64,
}
pub(crate) const DRM_IOCTL_MODE_GETPLANE: Opcode = opcode::read_write::<DrmModeGetPlane>(DRM, 0xb6);

/// `struct drm_mode_obj_get_properties`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmModeObjGetProperties {
    pub props_ptr: u64,
    pub prop_values_ptr: u64,
    pub count_props: u32,
    pub obj_id: u32,
    pub obj_type: u32,
}
pub(crate) const DRM_IOCTL_MODE_OBJ_GETPROPERTIES: Opcode =
    opcode::read_write::<DrmModeObjGetProperties>(DRM, 0xb9);
/// `DRM_MODE_OBJECT_PLANE`.
pub(crate) const DRM_MODE_OBJECT_PLANE: u32 = 0xeeee_eeee;
/// `DRM_MODE_OBJECT_CRTC`.
pub(crate) const DRM_MODE_OBJECT_CRTC: u32 = 0xcccc_cccc;
/// `DRM_MODE_OBJECT_CONNECTOR`.
pub(crate) const DRM_MODE_OBJECT_CONNECTOR: u32 = 0xc0c0_c0c0;

/// `struct drm_mode_atomic`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmModeAtomic {
    pub flags: u32,
    pub count_objs: u32,
    pub objs_ptr: u64,
    pub count_props_ptr: u64,
    pub props_ptr: u64,
    pub prop_values_ptr: u64,
    pub reserved: u64,
    pub user_data: u64,
}
pub(crate) const DRM_IOCTL_MODE_ATOMIC: Opcode = opcode::read_write::<DrmModeAtomic>(DRM, 0xbc);

/// `struct drm_mode_create_blob`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmModeCreateBlob {
    pub data: u64,
    pub length: u32,
    pub blob_id: u32,
}
pub(crate) const DRM_IOCTL_MODE_CREATEPROPBLOB: Opcode =
    opcode::read_write::<DrmModeCreateBlob>(DRM, 0xbd);
/// `struct drm_mode_destroy_blob` is a single `__u32 blob_id`.
pub(crate) const DRM_IOCTL_MODE_DESTROYPROPBLOB: Opcode = opcode::read_write::<u32>(DRM, 0xbe);

/// `struct drm_mode_get_property`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmModeGetProperty {
    pub values_ptr: u64,
    pub enum_blob_ptr: u64,
    pub prop_id: u32,
    pub flags: u32,
    pub name: [u8; 32],
    pub count_values: u32,
    pub count_enum_blobs: u32,
}
pub(crate) const DRM_IOCTL_MODE_GETPROPERTY: Opcode =
    opcode::read_write::<DrmModeGetProperty>(DRM, 0xaa);

/// `struct drm_mode_fb_cmd2`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmModeFbCmd2 {
    pub fb_id: u32,
    pub width: u32,
    pub height: u32,
    pub pixel_format: u32,
    pub flags: u32,
    pub handles: [u32; 4],
    pub pitches: [u32; 4],
    pub offsets: [u32; 4],
    pub modifier: [u64; 4],
}
pub(crate) const DRM_IOCTL_MODE_ADDFB2: Opcode = opcode::read_write::<DrmModeFbCmd2>(DRM, 0xb8);
/// `DRM_IOCTL_MODE_RMFB` takes a bare `unsigned int` fb id.
pub(crate) const DRM_IOCTL_MODE_RMFB: Opcode = opcode::read_write::<u32>(DRM, 0xaf);

// ------------------------------------------------------------------------------ the call

/// One ioctl whose argument is a `T` the kernel reads and may write back, and whose return
/// value (an fd for `UDMABUF_CREATE`, else 0) is the output.
struct Call<'a, const OPCODE: Opcode, T> {
    arg: &'a mut T,
}

// SAFETY: `as_ptr` points at a live, exclusively borrowed `T`, and `ioctl` below is only
// instantiated with the (OPCODE, T) pairs declared in this file, each the pair its kernel
// header defines (pinned by the tests below). The output is the plain return value.
unsafe impl<const OPCODE: Opcode, T> Ioctl for Call<'_, OPCODE, T> {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        OPCODE
    }

    fn as_ptr(&mut self) -> *mut core::ffi::c_void {
        (self.arg as *mut T).cast()
    }

    unsafe fn output_from_ptr(
        out: IoctlOutput,
        _: *mut core::ffi::c_void,
    ) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// Calls ioctl `OPCODE` (named `name` in errors) on `fd` with `arg`, retrying on
/// `EINTR`/`EAGAIN` as libdrm's `drmIoctl` does.
///
/// # Safety
///
/// `T` must be the argument type the kernel expects for `OPCODE`, and every pointer stored in
/// `arg` (the `*_ptr` fields) must point at memory valid for the sizes given next to it, for
/// the duration of the call.
pub(crate) unsafe fn ioctl<const OPCODE: Opcode, T>(
    fd: BorrowedFd<'_>,
    name: &'static str,
    arg: &mut T,
) -> Result<IoctlOutput, Error> {
    loop {
        // SAFETY: the caller guarantees that `T` matches `OPCODE` and that the pointers inside
        // `arg` are valid; `Call` hands the kernel exactly `arg`.
        match unsafe { ioctl::ioctl(fd, Call::<OPCODE, T> { arg: &mut *arg }) } {
            Err(Errno::INTR | Errno::AGAIN) => continue,
            Err(source) => return Err(Error::Ioctl { name, source }),
            Ok(out) => return Ok(out),
        }
    }
}

/// Maps an error of `lockstep_sync::sys` (the project's one declaration of the syncobj,
/// sync_file, sw_sync, dmabuf and GEM ioctls) to this crate's error, naming the ioctl.
pub(crate) fn kernel_error(name: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |err| Error::Ioctl {
        name,
        source: Errno::from_io_error(&err).unwrap_or(Errno::IO),
    }
}

/// The NUL-terminated prefix of a fixed-size C string field, lossily as UTF-8.
pub(crate) fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by a C program including the kernel/libdrm headers on x86_64.
    #[test]
    fn opcodes_match_the_c_headers() {
        let expected: &[(&str, Opcode, Opcode)] = &[
            (
                "MODE_GETRESOURCES",
                DRM_IOCTL_MODE_GETRESOURCES,
                0xc040_64a0,
            ),
            (
                "MODE_GETCONNECTOR",
                DRM_IOCTL_MODE_GETCONNECTOR,
                0xc050_64a7,
            ),
            ("MODE_SETCRTC", DRM_IOCTL_MODE_SETCRTC, 0xc068_64a2),
            (
                "MODE_GETPLANERESOURCES",
                DRM_IOCTL_MODE_GETPLANERESOURCES,
                0xc010_64b5,
            ),
            ("MODE_GETPLANE", DRM_IOCTL_MODE_GETPLANE, 0xc020_64b6),
            (
                "MODE_OBJ_GETPROPERTIES",
                DRM_IOCTL_MODE_OBJ_GETPROPERTIES,
                0xc020_64b9,
            ),
            ("MODE_GETPROPERTY", DRM_IOCTL_MODE_GETPROPERTY, 0xc040_64aa),
            ("MODE_ATOMIC", DRM_IOCTL_MODE_ATOMIC, 0xc038_64bc),
            (
                "MODE_CREATEPROPBLOB",
                DRM_IOCTL_MODE_CREATEPROPBLOB,
                0xc010_64bd,
            ),
            (
                "MODE_DESTROYPROPBLOB",
                DRM_IOCTL_MODE_DESTROYPROPBLOB,
                0xc004_64be,
            ),
            ("MODE_ADDFB2", DRM_IOCTL_MODE_ADDFB2, 0xc068_64b8),
            ("MODE_RMFB", DRM_IOCTL_MODE_RMFB, 0xc004_64af),
        ];
        for &(name, got, want) in expected {
            assert_eq!(got, want, "{name}: got {got:#x}, want {want:#x}");
        }
    }

    #[test]
    fn c_str_stops_at_nul() {
        assert_eq!(c_str(b"vkms\0\0\0"), "vkms");
        assert_eq!(c_str(b"full"), "full");
    }
}
