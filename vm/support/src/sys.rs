//! Raw kernel ABI: the uapi structs and ioctl numbers this crate uses, and one checked `ioctl`
//! call.
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

/// `struct drm_version`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmVersion {
    pub version_major: i32,
    pub version_minor: i32,
    pub version_patchlevel: i32,
    pub name_len: usize,
    pub name: u64,
    pub date_len: usize,
    pub date: u64,
    pub desc_len: usize,
    pub desc: u64,
}
pub(crate) const DRM_IOCTL_VERSION: Opcode = opcode::read_write::<DrmVersion>(DRM, 0x00);

/// `struct drm_get_cap` and `struct drm_set_client_cap` (same layout).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmCap {
    pub capability: u64,
    pub value: u64,
}
pub(crate) const DRM_IOCTL_GET_CAP: Opcode = opcode::read_write::<DrmCap>(DRM, 0x0c);
pub(crate) const DRM_IOCTL_SET_CLIENT_CAP: Opcode = opcode::write::<DrmCap>(DRM, 0x0d);
pub(crate) const DRM_CAP_SYNCOBJ: u64 = 0x13;
pub(crate) const DRM_CAP_SYNCOBJ_TIMELINE: u64 = 0x14;
pub(crate) const DRM_CLIENT_CAP_UNIVERSAL_PLANES: u64 = 2;
pub(crate) const DRM_CLIENT_CAP_ATOMIC: u64 = 3;
pub(crate) const DRM_CLIENT_CAP_WRITEBACK_CONNECTORS: u64 = 5;

/// `struct drm_gem_close`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmGemClose {
    pub handle: u32,
    pub pad: u32,
}
pub(crate) const DRM_IOCTL_GEM_CLOSE: Opcode = opcode::write::<DrmGemClose>(DRM, 0x09);

/// `struct drm_prime_handle`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmPrimeHandle {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
}
pub(crate) const DRM_IOCTL_PRIME_HANDLE_TO_FD: Opcode =
    opcode::read_write::<DrmPrimeHandle>(DRM, 0x2d);
pub(crate) const DRM_IOCTL_PRIME_FD_TO_HANDLE: Opcode =
    opcode::read_write::<DrmPrimeHandle>(DRM, 0x2e);
/// `DRM_CLOEXEC` (= `O_CLOEXEC`) | `DRM_RDWR` (= `O_RDWR`).
pub(crate) const DRM_CLOEXEC_RDWR: u32 = 0o2_000_000 | 0o2;

/// `struct drm_syncobj_create`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmSyncobjCreate {
    pub handle: u32,
    pub flags: u32,
}
pub(crate) const DRM_IOCTL_SYNCOBJ_CREATE: Opcode =
    opcode::read_write::<DrmSyncobjCreate>(DRM, 0xbf);

/// `struct drm_syncobj_destroy`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmSyncobjDestroy {
    pub handle: u32,
    pub pad: u32,
}
pub(crate) const DRM_IOCTL_SYNCOBJ_DESTROY: Opcode =
    opcode::read_write::<DrmSyncobjDestroy>(DRM, 0xc0);

/// `struct drm_syncobj_handle`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmSyncobjHandle {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
    pub pad: u32,
}
pub(crate) const DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD: Opcode =
    opcode::read_write::<DrmSyncobjHandle>(DRM, 0xc1);
pub(crate) const DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE: Opcode =
    opcode::read_write::<DrmSyncobjHandle>(DRM, 0xc2);
pub(crate) const DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE: u32 = 1;
pub(crate) const DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE: u32 = 1;

/// `struct drm_syncobj_timeline_wait` without the 6.5 `deadline_nsec` tail: the kernel
/// zero-fills what an older, shorter struct leaves out (drm_ioctl copies `min(size)`).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmSyncobjTimelineWait {
    pub handles: u64,
    pub points: u64,
    pub timeout_nsec: i64,
    pub count_handles: u32,
    pub flags: u32,
    pub first_signaled: u32,
    pub pad: u32,
}
pub(crate) const DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT: Opcode =
    opcode::read_write::<DrmSyncobjTimelineWait>(DRM, 0xca);
pub(crate) const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT: u32 = 1 << 1;
pub(crate) const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE: u32 = 1 << 2;

/// `struct drm_syncobj_timeline_array`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmSyncobjTimelineArray {
    pub handles: u64,
    pub points: u64,
    pub count_handles: u32,
    pub flags: u32,
}
pub(crate) const DRM_IOCTL_SYNCOBJ_QUERY: Opcode =
    opcode::read_write::<DrmSyncobjTimelineArray>(DRM, 0xcb);
pub(crate) const DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL: Opcode =
    opcode::read_write::<DrmSyncobjTimelineArray>(DRM, 0xcd);

/// `struct drm_syncobj_transfer`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmSyncobjTransfer {
    pub src_handle: u32,
    pub dst_handle: u32,
    pub src_point: u64,
    pub dst_point: u64,
    pub flags: u32,
    pub pad: u32,
}
pub(crate) const DRM_IOCTL_SYNCOBJ_TRANSFER: Opcode =
    opcode::read_write::<DrmSyncobjTransfer>(DRM, 0xcc);

/// `struct drm_syncobj_eventfd` (Linux 6.6+).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmSyncobjEventfd {
    pub handle: u32,
    pub flags: u32,
    pub point: u64,
    pub fd: i32,
    pub pad: u32,
}
pub(crate) const DRM_IOCTL_SYNCOBJ_EVENTFD: Opcode =
    opcode::read_write::<DrmSyncobjEventfd>(DRM, 0xcf);

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

/// `struct drm_mode_create_dumb`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmModeCreateDumb {
    pub height: u32,
    pub width: u32,
    pub bpp: u32,
    pub flags: u32,
    pub handle: u32,
    pub pitch: u32,
    pub size: u64,
}
pub(crate) const DRM_IOCTL_MODE_CREATE_DUMB: Opcode =
    opcode::read_write::<DrmModeCreateDumb>(DRM, 0xb2);

/// `struct drm_mode_map_dumb`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmModeMapDumb {
    pub handle: u32,
    pub pad: u32,
    pub offset: u64,
}
pub(crate) const DRM_IOCTL_MODE_MAP_DUMB: Opcode = opcode::read_write::<DrmModeMapDumb>(DRM, 0xb3);

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

// ------------------------------------------------------------------------------ dma-buf & co

/// `struct sw_sync_create_fence_data` (drivers/dma-buf/sw_sync.c; not in the uapi headers).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct SwSyncCreateFenceData {
    pub value: u32,
    pub name: [u8; 32],
    pub fence: i32,
}
pub(crate) const SW_SYNC_IOC_CREATE_FENCE: Opcode =
    opcode::read_write::<SwSyncCreateFenceData>(b'W', 0);
pub(crate) const SW_SYNC_IOC_INC: Opcode = opcode::write::<u32>(b'W', 1);

/// `struct sync_file_info` (linux/sync_file.h).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct SyncFileInfo {
    pub name: [u8; 32],
    pub status: i32,
    pub flags: u32,
    pub num_fences: u32,
    pub pad: u32,
    pub sync_fence_info: u64,
}
pub(crate) const SYNC_IOC_FILE_INFO: Opcode = opcode::read_write::<SyncFileInfo>(b'>', 4);

/// `struct dma_heap_allocation_data` (linux/dma-heap.h).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DmaHeapAllocationData {
    pub len: u64,
    pub fd: u32,
    pub fd_flags: u32,
    pub heap_flags: u64,
}
pub(crate) const DMA_HEAP_IOCTL_ALLOC: Opcode =
    opcode::read_write::<DmaHeapAllocationData>(b'H', 0);

/// `struct udmabuf_create` (linux/udmabuf.h).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct UdmabufCreate {
    pub memfd: u32,
    pub flags: u32,
    pub offset: u64,
    pub size: u64,
}
pub(crate) const UDMABUF_CREATE: Opcode = opcode::write::<UdmabufCreate>(b'u', 0x42);
pub(crate) const UDMABUF_FLAGS_CLOEXEC: u32 = 1;

/// `struct dma_buf_sync` (linux/dma-buf.h).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DmaBufSync {
    pub flags: u64,
}
pub(crate) const DMA_BUF_IOCTL_SYNC: Opcode = opcode::write::<DmaBufSync>(b'b', 0);
pub(crate) const DMA_BUF_SYNC_RW: u64 = 3;
pub(crate) const DMA_BUF_SYNC_START: u64 = 0;
pub(crate) const DMA_BUF_SYNC_END: u64 = 1 << 2;

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
            ("VERSION", DRM_IOCTL_VERSION, 0xc040_6400),
            ("GET_CAP", DRM_IOCTL_GET_CAP, 0xc010_640c),
            ("SET_CLIENT_CAP", DRM_IOCTL_SET_CLIENT_CAP, 0x4010_640d),
            ("GEM_CLOSE", DRM_IOCTL_GEM_CLOSE, 0x4008_6409),
            (
                "PRIME_HANDLE_TO_FD",
                DRM_IOCTL_PRIME_HANDLE_TO_FD,
                0xc00c_642d,
            ),
            (
                "PRIME_FD_TO_HANDLE",
                DRM_IOCTL_PRIME_FD_TO_HANDLE,
                0xc00c_642e,
            ),
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
            ("MODE_CREATE_DUMB", DRM_IOCTL_MODE_CREATE_DUMB, 0xc020_64b2),
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
            ("MODE_MAP_DUMB", DRM_IOCTL_MODE_MAP_DUMB, 0xc010_64b3),
            ("MODE_ADDFB2", DRM_IOCTL_MODE_ADDFB2, 0xc068_64b8),
            ("MODE_RMFB", DRM_IOCTL_MODE_RMFB, 0xc004_64af),
            ("SYNCOBJ_CREATE", DRM_IOCTL_SYNCOBJ_CREATE, 0xc008_64bf),
            ("SYNCOBJ_DESTROY", DRM_IOCTL_SYNCOBJ_DESTROY, 0xc008_64c0),
            (
                "SYNCOBJ_HANDLE_TO_FD",
                DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD,
                0xc010_64c1,
            ),
            (
                "SYNCOBJ_FD_TO_HANDLE",
                DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE,
                0xc010_64c2,
            ),
            (
                "SYNCOBJ_TIMELINE_WAIT",
                DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT,
                0xc028_64ca,
            ),
            ("SYNCOBJ_QUERY", DRM_IOCTL_SYNCOBJ_QUERY, 0xc018_64cb),
            ("SYNCOBJ_TRANSFER", DRM_IOCTL_SYNCOBJ_TRANSFER, 0xc020_64cc),
            (
                "SYNCOBJ_TIMELINE_SIGNAL",
                DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL,
                0xc018_64cd,
            ),
            ("SYNCOBJ_EVENTFD", DRM_IOCTL_SYNCOBJ_EVENTFD, 0xc018_64cf),
            ("DMA_HEAP_IOCTL_ALLOC", DMA_HEAP_IOCTL_ALLOC, 0xc018_4800),
            ("UDMABUF_CREATE", UDMABUF_CREATE, 0x4018_7542),
            ("SYNC_IOC_FILE_INFO", SYNC_IOC_FILE_INFO, 0xc038_3e04),
            ("DMA_BUF_IOCTL_SYNC", DMA_BUF_IOCTL_SYNC, 0x4008_6200),
            (
                "SW_SYNC_IOC_CREATE_FENCE",
                SW_SYNC_IOC_CREATE_FENCE,
                0xc028_5700,
            ),
            ("SW_SYNC_IOC_INC", SW_SYNC_IOC_INC, 0x4004_5701),
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
