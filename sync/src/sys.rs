//! Raw kernel interfaces: ioctl numbers, argument structs and one thin function per ioctl.
//!
//! # Why
//!
//! Everything unsafe in this crate lives here, one `// SAFETY:` comment per ioctl, so the
//! typed layers above ([`syncobj`](crate::syncobj), [`sync_file`](crate::sync_file),
//! [`sw_sync`](crate::sw_sync)) are safe code. The structs mirror `include/uapi/drm/drm.h`,
//! `include/uapi/linux/sync_file.h` and `drivers/dma-buf/sw_sync.c` as of Linux 6.12.
//!
//! Layout notes (kernel facts):
//! * `drm_syncobj_handle` grew a `point` field after 6.12; we send the original 16-byte struct.
//!   `drm_ioctl()` zero-fills the part of a newer kernel struct that userspace did not send, so
//!   the old layout keeps working everywhere.
//! * `drm_syncobj_timeline_wait` grew `deadline_nsec` in 6.4 (used only with a flag); we send
//!   the original 40 bytes for the same reason.
//! * DRM ioctls are retried on `EINTR` and `EAGAIN` (as libdrm's `drmIoctl` does); the others on
//!   `EINTR` only.
//!
//! These functions take [`BorrowedFd`]s, so an fd can never be closed under them; errors come
//! back as [`io::Error`] with the kernel's errno.
//!
//! # The project's one kernel-interface layer
//!
//! Every ioctl lockstep issues itself is declared once, here: DRM version and capabilities,
//! the syncobj ioctls, sync_file, sw_sync, and the buffer ioctls (dma-heap, udmabuf, dma-buf
//! sync, dumb buffers, PRIME, GEM close) that `lockstep-render`'s heap allocator and the VM
//! test support use. The only others are the KMS mode-setting ioctls: lockstep's KMS pipeline
//! issues them through the `drm` crate, and `lockstep-vm-support` declares the few it issues
//! raw, so that the harness checking the screen does not share the compositor's KMS layer.
//!
//! The `drm-ffi` crate (0.9, already in the tree through `drm`) wraps all the syncobj ioctls
//! too, `SYNCOBJ_EVENTFD` included. lockstep keeps its own for these reasons:
//! * **retries**: `drm-ffi` issues each ioctl once; libdrm's `drmIoctl` and this module retry
//!   on `EINTR` (and `EAGAIN` for DRM ioctls), which a timeline wait interrupted by a signal
//!   needs (it is retried with the same absolute deadline);
//! * **struct sizes**: the layout notes above (the original 16-byte `drm_syncobj_handle`,
//!   the 40-byte timeline wait) are choices made here, not whatever a bindgen snapshot of the
//!   headers has;
//! * **dependencies**: `lockstep-sync` stays free of the KMS stack, so the explicit-sync core
//!   builds and is tested without it;
//! * **one audited file**: every `unsafe` of the sync stack is in this file, each with its
//!   `// SAFETY:` argument, and the opcodes are pinned by the tests below.

#![allow(missing_docs)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

const fn ioc(dir: u64, ty: u8, nr: u8, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((ty as u64) << 8) | nr as u64
}
const fn iowr<T>(ty: u8, nr: u8) -> u64 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, std::mem::size_of::<T>())
}
const fn iow<T>(ty: u8, nr: u8) -> u64 {
    ioc(IOC_WRITE, ty, nr, std::mem::size_of::<T>())
}

// ------------------------------------------------------------------------------------ DRM

#[repr(C)]
#[derive(Debug)]
pub struct DrmVersion {
    pub version_major: i32,
    pub version_minor: i32,
    pub version_patchlevel: i32,
    pub name_len: usize,
    pub name: *mut u8,
    pub date_len: usize,
    pub date: *mut u8,
    pub desc_len: usize,
    pub desc: *mut u8,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmGetCap {
    pub capability: u64,
    pub value: u64,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct SyncobjCreate {
    pub handle: u32,
    pub flags: u32,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct SyncobjDestroy {
    pub handle: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct SyncobjHandleArgs {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct SyncobjTimelineWait {
    pub handles: u64,
    pub points: u64,
    pub timeout_nsec: i64,
    pub count_handles: u32,
    pub flags: u32,
    pub first_signaled: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct SyncobjTimelineArray {
    pub handles: u64,
    pub points: u64,
    pub count_handles: u32,
    pub flags: u32,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct SyncobjTransfer {
    pub src_handle: u32,
    pub dst_handle: u32,
    pub src_point: u64,
    pub dst_point: u64,
    pub flags: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct SyncobjEventfd {
    pub handle: u32,
    pub flags: u32,
    pub point: u64,
    pub fd: i32,
    pub pad: u32,
}

const DRM: u8 = b'd';
pub const DRM_IOCTL_VERSION: u64 = iowr::<DrmVersion>(DRM, 0x00);
pub const DRM_IOCTL_GET_CAP: u64 = iowr::<DrmGetCap>(DRM, 0x0c);
pub const DRM_IOCTL_SYNCOBJ_CREATE: u64 = iowr::<SyncobjCreate>(DRM, 0xbf);
pub const DRM_IOCTL_SYNCOBJ_DESTROY: u64 = iowr::<SyncobjDestroy>(DRM, 0xc0);
pub const DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD: u64 = iowr::<SyncobjHandleArgs>(DRM, 0xc1);
pub const DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE: u64 = iowr::<SyncobjHandleArgs>(DRM, 0xc2);
pub const DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT: u64 = iowr::<SyncobjTimelineWait>(DRM, 0xca);
pub const DRM_IOCTL_SYNCOBJ_QUERY: u64 = iowr::<SyncobjTimelineArray>(DRM, 0xcb);
pub const DRM_IOCTL_SYNCOBJ_TRANSFER: u64 = iowr::<SyncobjTransfer>(DRM, 0xcc);
pub const DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL: u64 = iowr::<SyncobjTimelineArray>(DRM, 0xcd);
pub const DRM_IOCTL_SYNCOBJ_EVENTFD: u64 = iowr::<SyncobjEventfd>(DRM, 0xcf);

pub const DRM_CAP_SYNCOBJ: u64 = 0x13;
pub const DRM_CAP_SYNCOBJ_TIMELINE: u64 = 0x14;

pub const DRM_SYNCOBJ_CREATE_SIGNALED: u32 = 1 << 0;
pub const DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE: u32 = 1 << 0;
pub const DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE: u32 = 1 << 0;
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL: u32 = 1 << 0;
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT: u32 = 1 << 1;
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE: u32 = 1 << 2;
pub const DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED: u32 = 1 << 0;

// ------------------------------------------------------------------------------ sync_file

#[repr(C)]
#[derive(Debug, Default)]
pub struct SyncMergeData {
    pub name: [u8; 32],
    pub fd2: i32,
    pub fence: i32,
    pub flags: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct SyncFenceInfo {
    pub obj_name: [u8; 32],
    pub driver_name: [u8; 32],
    pub status: i32,
    pub flags: u32,
    pub timestamp_ns: u64,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct SyncFileInfo {
    pub name: [u8; 32],
    pub status: i32,
    pub flags: u32,
    pub num_fences: u32,
    pub pad: u32,
    pub sync_fence_info: u64,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct SyncSetDeadline {
    pub deadline_ns: u64,
    pub pad: u64,
}

const SYNC: u8 = b'>';
pub const SYNC_IOC_MERGE: u64 = iowr::<SyncMergeData>(SYNC, 3);
pub const SYNC_IOC_FILE_INFO: u64 = iowr::<SyncFileInfo>(SYNC, 4);
pub const SYNC_IOC_SET_DEADLINE: u64 = iow::<SyncSetDeadline>(SYNC, 5);

// -------------------------------------------------------------------------------- sw_sync

#[repr(C)]
#[derive(Debug, Default)]
pub struct SwSyncCreateFence {
    pub value: u32,
    pub name: [u8; 32],
    pub fence: i32,
}

/// `struct sw_sync_get_deadline` (a test interface of sw_sync, Linux 6.5+).
#[repr(C)]
#[derive(Debug, Default)]
pub struct SwSyncGetDeadline {
    pub deadline_ns: u64,
    pub pad: u32,
    pub fence_fd: i32,
}

const SW_SYNC: u8 = b'W';
pub const SW_SYNC_IOC_CREATE_FENCE: u64 = iowr::<SwSyncCreateFence>(SW_SYNC, 0);
pub const SW_SYNC_IOC_INC: u64 = iow::<u32>(SW_SYNC, 1);
pub const SW_SYNC_GET_DEADLINE: u64 = iowr::<SwSyncGetDeadline>(SW_SYNC, 2);

// ---------------------------------------------------------------------- buffers (GEM, dmabuf)

/// `struct drm_set_client_cap` (the same layout as `drm_get_cap`).
pub const DRM_IOCTL_SET_CLIENT_CAP: u64 = iow::<DrmGetCap>(DRM, 0x0d);

/// `struct drm_gem_close`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmGemClose {
    pub handle: u32,
    pub pad: u32,
}
pub const DRM_IOCTL_GEM_CLOSE: u64 = iow::<DrmGemClose>(DRM, 0x09);

/// `struct drm_prime_handle`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmPrimeHandle {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
}
pub const DRM_IOCTL_PRIME_HANDLE_TO_FD: u64 = iowr::<DrmPrimeHandle>(DRM, 0x2d);
pub const DRM_IOCTL_PRIME_FD_TO_HANDLE: u64 = iowr::<DrmPrimeHandle>(DRM, 0x2e);
/// `DRM_CLOEXEC` (= `O_CLOEXEC`) | `DRM_RDWR` (= `O_RDWR`): a mappable, writable dmabuf.
const DRM_CLOEXEC_RDWR: u32 = libc::O_CLOEXEC as u32 | libc::O_RDWR as u32;

/// `struct drm_mode_create_dumb`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmModeCreateDumb {
    pub height: u32,
    pub width: u32,
    pub bpp: u32,
    pub flags: u32,
    pub handle: u32,
    pub pitch: u32,
    pub size: u64,
}
pub const DRM_IOCTL_MODE_CREATE_DUMB: u64 = iowr::<DrmModeCreateDumb>(DRM, 0xb2);

/// `struct drm_mode_map_dumb`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmModeMapDumb {
    pub handle: u32,
    pub pad: u32,
    pub offset: u64,
}
pub const DRM_IOCTL_MODE_MAP_DUMB: u64 = iowr::<DrmModeMapDumb>(DRM, 0xb3);

/// `struct dma_heap_allocation_data`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DmaHeapAllocationData {
    pub len: u64,
    pub fd: u32,
    pub fd_flags: u32,
    pub heap_flags: u64,
}
pub const DMA_HEAP_IOCTL_ALLOC: u64 = iowr::<DmaHeapAllocationData>(b'H', 0);

/// `struct udmabuf_create`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct UdmabufCreate {
    pub memfd: u32,
    pub flags: u32,
    pub offset: u64,
    pub size: u64,
}
pub const UDMABUF_CREATE: u64 = iow::<UdmabufCreate>(b'u', 0x42);
const UDMABUF_FLAGS_CLOEXEC: u32 = 1;

/// `struct dma_buf_sync`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DmaBufSync {
    pub flags: u64,
}
pub const DMA_BUF_IOCTL_SYNC: u64 = iow::<DmaBufSync>(b'b', 0);
pub const DMA_BUF_SYNC_READ: u64 = 1 << 0;
pub const DMA_BUF_SYNC_WRITE: u64 = 1 << 1;
pub const DMA_BUF_SYNC_START: u64 = 0;
pub const DMA_BUF_SYNC_END: u64 = 1 << 2;

// ---------------------------------------------------------------------------- the calls

/// Issues one ioctl, retrying on `EINTR` (and `EAGAIN` when `retry_again`).
///
/// # Safety
///
/// `arg` must point to a live, properly initialised value of the type that `request`
/// encodes, and every pointer inside it must be valid for the kernel to read or write as
/// that ioctl documents.
unsafe fn ioctl<T>(
    fd: BorrowedFd<'_>,
    request: u64,
    arg: *mut T,
    retry_again: bool,
) -> io::Result<()> {
    // SAFETY: the caller's guarantees are those of `ioctl_value`.
    unsafe { ioctl_value(fd, request, arg, retry_again) }.map(drop)
}

/// As [`ioctl`], returning the ioctl's non-negative return value (an fd for some).
///
/// # Safety
///
/// As for [`ioctl`].
unsafe fn ioctl_value<T>(
    fd: BorrowedFd<'_>,
    request: u64,
    arg: *mut T,
    retry_again: bool,
) -> io::Result<i32> {
    loop {
        // SAFETY: the caller guarantees `arg` matches `request`; `fd` is a live borrowed fd.
        // The `as _` adapts the request to the libc flavour's type (c_ulong or c_int); every
        // request number here fits in 32 bits.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
        if r >= 0 {
            return Ok(r);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) if retry_again => continue,
            _ => return Err(err),
        }
    }
}

fn owned(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the kernel just returned `fd` to us as a new descriptor we own; nobody else
    // holds it, so OwnedFd may close it exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// DRM_IOCTL_VERSION: the driver name of a DRM node ("vgem", "vkms", "amdgpu" ...).
pub fn drm_driver_name(fd: BorrowedFd<'_>) -> io::Result<String> {
    let mut name = [0u8; 64];
    let mut v = DrmVersion {
        version_major: 0,
        version_minor: 0,
        version_patchlevel: 0,
        name_len: name.len() - 1,
        name: name.as_mut_ptr(),
        date_len: 0,
        date: std::ptr::null_mut(),
        desc_len: 0,
        desc: std::ptr::null_mut(),
    };
    // SAFETY: `v` is a drm_version; `name` is writable for `name_len` bytes and outlives the
    // call; date/desc have length 0 so the kernel writes nothing through their null pointers.
    unsafe { ioctl(fd, DRM_IOCTL_VERSION, &mut v, true) }?;
    let len = v.name_len.min(name.len() - 1);
    let bytes = name.get(..len).unwrap_or(&[]);
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(String::from_utf8_lossy(bytes.get(..end).unwrap_or(&[])).into_owned())
}

/// DRM_IOCTL_GET_CAP.
pub fn drm_get_cap(fd: BorrowedFd<'_>, capability: u64) -> io::Result<u64> {
    let mut c = DrmGetCap {
        capability,
        value: 0,
    };
    // SAFETY: `c` is a drm_get_cap, the struct DRM_IOCTL_GET_CAP reads and writes.
    unsafe { ioctl(fd, DRM_IOCTL_GET_CAP, &mut c, true) }?;
    Ok(c.value)
}

/// DRM_IOCTL_SYNCOBJ_CREATE: returns the new handle.
pub fn syncobj_create(fd: BorrowedFd<'_>, flags: u32) -> io::Result<u32> {
    let mut c = SyncobjCreate { handle: 0, flags };
    // SAFETY: `c` is a drm_syncobj_create, the struct this ioctl reads and writes.
    unsafe { ioctl(fd, DRM_IOCTL_SYNCOBJ_CREATE, &mut c, true) }?;
    Ok(c.handle)
}

/// DRM_IOCTL_SYNCOBJ_DESTROY.
pub fn syncobj_destroy(fd: BorrowedFd<'_>, handle: u32) -> io::Result<()> {
    let mut d = SyncobjDestroy { handle, pad: 0 };
    // SAFETY: `d` is a drm_syncobj_destroy with pad 0, the struct this ioctl reads.
    unsafe { ioctl(fd, DRM_IOCTL_SYNCOBJ_DESTROY, &mut d, true) }
}

/// DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD: a syncobj fd (flags 0) or a sync_file
/// (EXPORT_SYNC_FILE) for `handle`.
pub fn syncobj_handle_to_fd(fd: BorrowedFd<'_>, handle: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut h = SyncobjHandleArgs {
        handle,
        flags,
        fd: -1,
        pad: 0,
    };
    // SAFETY: `h` is the original 16-byte drm_syncobj_handle (see module docs); the kernel
    // writes the new fd into it.
    unsafe { ioctl(fd, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &mut h, true) }?;
    owned(h.fd)
}

/// DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE: imports a syncobj fd (flags 0, returns a new handle) or
/// a sync_file into the existing binary syncobj `handle` (IMPORT_SYNC_FILE, returns `handle`).
pub fn syncobj_fd_to_handle(
    fd: BorrowedFd<'_>,
    object: BorrowedFd<'_>,
    handle: u32,
    flags: u32,
) -> io::Result<u32> {
    let mut h = SyncobjHandleArgs {
        handle,
        flags,
        fd: object.as_raw_fd(),
        pad: 0,
    };
    // SAFETY: `h` is the original 16-byte drm_syncobj_handle; `object` is a live borrowed fd
    // for the duration of the call, the kernel only takes its own reference to the file.
    unsafe { ioctl(fd, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &mut h, true) }?;
    Ok(h.handle)
}

/// DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT on one (handle, point) with an absolute
/// CLOCK_MONOTONIC timeout in ns.
pub fn syncobj_timeline_wait(
    fd: BorrowedFd<'_>,
    handle: u32,
    point: u64,
    abs_timeout_ns: i64,
    flags: u32,
) -> io::Result<()> {
    let mut handle = handle;
    let mut point = point;
    let mut w = SyncobjTimelineWait {
        handles: std::ptr::addr_of_mut!(handle) as u64,
        points: std::ptr::addr_of_mut!(point) as u64,
        timeout_nsec: abs_timeout_ns,
        count_handles: 1,
        flags,
        first_signaled: 0,
        pad: 0,
    };
    // SAFETY: `w` is the 40-byte drm_syncobj_timeline_wait; `handles`/`points` point at one
    // u32 and one u64 on this stack frame that outlive the call (count_handles = 1).
    unsafe { ioctl(fd, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &mut w, false) }
}

/// DRM_IOCTL_SYNCOBJ_QUERY on one handle.
pub fn syncobj_query(fd: BorrowedFd<'_>, handle: u32, flags: u32) -> io::Result<u64> {
    let mut handle = handle;
    let mut point = 0u64;
    let mut q = SyncobjTimelineArray {
        handles: std::ptr::addr_of_mut!(handle) as u64,
        points: std::ptr::addr_of_mut!(point) as u64,
        count_handles: 1,
        flags,
    };
    // SAFETY: `q` is a drm_syncobj_timeline_array whose arrays are one u32 and one writable
    // u64 on this stack frame, alive for the call (count_handles = 1).
    unsafe { ioctl(fd, DRM_IOCTL_SYNCOBJ_QUERY, &mut q, true) }?;
    Ok(point)
}

/// DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL on one (handle, point).
pub fn syncobj_timeline_signal(fd: BorrowedFd<'_>, handle: u32, point: u64) -> io::Result<()> {
    let mut handle = handle;
    let mut point = point;
    let mut s = SyncobjTimelineArray {
        handles: std::ptr::addr_of_mut!(handle) as u64,
        points: std::ptr::addr_of_mut!(point) as u64,
        count_handles: 1,
        flags: 0,
    };
    // SAFETY: `s` is a drm_syncobj_timeline_array whose arrays are one u32 and one u64 on
    // this stack frame, alive for the call (count_handles = 1).
    unsafe { ioctl(fd, DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &mut s, true) }
}

/// DRM_IOCTL_SYNCOBJ_TRANSFER.
pub fn syncobj_transfer(
    fd: BorrowedFd<'_>,
    src: (u32, u64),
    dst: (u32, u64),
    flags: u32,
) -> io::Result<()> {
    let mut t = SyncobjTransfer {
        src_handle: src.0,
        dst_handle: dst.0,
        src_point: src.1,
        dst_point: dst.1,
        flags,
        pad: 0,
    };
    // SAFETY: `t` is a drm_syncobj_transfer with pad 0, the struct this ioctl reads.
    unsafe { ioctl(fd, DRM_IOCTL_SYNCOBJ_TRANSFER, &mut t, true) }
}

/// DRM_IOCTL_SYNCOBJ_EVENTFD: the kernel signals `eventfd` when (handle, point) is
/// signalled (flags 0) or available (WAIT_AVAILABLE).
pub fn syncobj_eventfd(
    fd: BorrowedFd<'_>,
    handle: u32,
    point: u64,
    eventfd: BorrowedFd<'_>,
    flags: u32,
) -> io::Result<()> {
    let mut e = SyncobjEventfd {
        handle,
        flags,
        point,
        fd: eventfd.as_raw_fd(),
        pad: 0,
    };
    // SAFETY: `e` is a drm_syncobj_eventfd with pad 0; `eventfd` is a live borrowed fd for
    // the call (the kernel takes its own reference to the eventfd context).
    unsafe { ioctl(fd, DRM_IOCTL_SYNCOBJ_EVENTFD, &mut e, true) }
}

/// SYNC_IOC_FILE_INFO without the per-fence array: name, status, number of fences.
pub fn sync_file_info(fd: BorrowedFd<'_>) -> io::Result<SyncFileInfo> {
    let mut info = SyncFileInfo::default();
    // SAFETY: `info` is a sync_file_info with num_fences = 0 and a null array pointer, so the
    // kernel only fills the header.
    unsafe { ioctl(fd, SYNC_IOC_FILE_INFO, &mut info, false) }?;
    Ok(info)
}

/// SYNC_IOC_FILE_INFO with the per-fence array.
pub fn sync_file_fence_info(fd: BorrowedFd<'_>, count: u32) -> io::Result<Vec<SyncFenceInfo>> {
    let mut fences: Vec<SyncFenceInfo> = (0..count).map(|_| SyncFenceInfo::default()).collect();
    let mut info = SyncFileInfo {
        num_fences: count,
        sync_fence_info: fences.as_mut_ptr() as u64,
        ..SyncFileInfo::default()
    };
    // SAFETY: `info.sync_fence_info` points at `count` writable sync_fence_info structs that
    // outlive the call; the kernel fails with EINVAL rather than write more than num_fences.
    unsafe { ioctl(fd, SYNC_IOC_FILE_INFO, &mut info, false) }?;
    let n = (info.num_fences as usize).min(fences.len());
    fences.truncate(n);
    Ok(fences)
}

/// SYNC_IOC_MERGE: a new sync_file that signals when both have.
pub fn sync_file_merge(
    fd: BorrowedFd<'_>,
    other: BorrowedFd<'_>,
    name: &str,
) -> io::Result<OwnedFd> {
    let mut m = SyncMergeData {
        fd2: other.as_raw_fd(),
        fence: -1,
        ..SyncMergeData::default()
    };
    copy_name(&mut m.name, name);
    // SAFETY: `m` is a sync_merge_data with flags and pad 0; `other` is live for the call.
    unsafe { ioctl(fd, SYNC_IOC_MERGE, &mut m, false) }?;
    owned(m.fence)
}

/// SYNC_IOC_SET_DEADLINE (Linux 6.3+; ENOTTY before).
pub fn sync_file_set_deadline(fd: BorrowedFd<'_>, deadline_ns: u64) -> io::Result<()> {
    let mut d = SyncSetDeadline {
        deadline_ns,
        pad: 0,
    };
    // SAFETY: `d` is a sync_set_deadline with pad 0, the struct this ioctl reads.
    unsafe { ioctl(fd, SYNC_IOC_SET_DEADLINE, &mut d, false) }
}

/// SW_SYNC_IOC_CREATE_FENCE: a sync_file that signals when the sw_sync timeline reaches `value`.
pub fn sw_sync_create_fence(fd: BorrowedFd<'_>, value: u32, name: &str) -> io::Result<OwnedFd> {
    let mut c = SwSyncCreateFence {
        value,
        fence: -1,
        ..SwSyncCreateFence::default()
    };
    copy_name(&mut c.name, name);
    // SAFETY: `c` is a sw_sync_create_fence_data; the kernel writes the new fd into it.
    unsafe { ioctl(fd, SW_SYNC_IOC_CREATE_FENCE, &mut c, false) }?;
    owned(c.fence)
}

/// SW_SYNC_GET_DEADLINE: the earliest deadline (CLOCK_MONOTONIC ns) set on `fence`, a fence
/// of the sw_sync timeline `fd`; `ENOENT` when none was set.
pub fn sw_sync_get_deadline(fd: BorrowedFd<'_>, fence: BorrowedFd<'_>) -> io::Result<u64> {
    let mut d = SwSyncGetDeadline {
        fence_fd: fence.as_raw_fd(),
        ..SwSyncGetDeadline::default()
    };
    // SAFETY: `d` is a sw_sync_get_deadline with pad 0 and the fence's fd; the kernel writes
    // the deadline into it.
    unsafe { ioctl(fd, SW_SYNC_GET_DEADLINE, &mut d, false) }?;
    Ok(d.deadline_ns)
}

/// SW_SYNC_IOC_INC: advances the sw_sync timeline by `count`.
pub fn sw_sync_inc(fd: BorrowedFd<'_>, count: u32) -> io::Result<()> {
    let mut n = count;
    // SAFETY: SW_SYNC_IOC_INC reads one u32, which `n` is.
    unsafe { ioctl(fd, SW_SYNC_IOC_INC, &mut n, false) }
}

fn copy_name(dst: &mut [u8; 32], name: &str) {
    for (d, s) in dst.iter_mut().zip(name.bytes().take(31)) {
        *d = s;
    }
}

/// A new non-blocking, close-on-exec eventfd.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd(2) takes no pointers; a non-negative result is a new fd we own.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    owned(fd)
}

/// Reads (and so resets) an eventfd counter; `Ok(None)` when it was 0 (EAGAIN).
pub fn eventfd_read(fd: BorrowedFd<'_>) -> io::Result<Option<u64>> {
    let mut value = 0u64;
    loop {
        // SAFETY: `value` is 8 writable bytes, exactly what read(2) of an eventfd writes.
        let r = unsafe { libc::read(fd.as_raw_fd(), std::ptr::addr_of_mut!(value).cast(), 8) };
        if r == 8 {
            return Ok(Some(value));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(None),
            _ => return Err(err),
        }
    }
}

/// poll(2) one fd for readability; `timeout_ms` -1 waits forever.
pub fn poll_readable(fd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `p` is one valid pollfd and nfds is 1.
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if r >= 0 {
            if p.revents & libc::POLLNVAL != 0 {
                return Err(io::Error::from_raw_os_error(libc::EBADF));
            }
            return Ok(r > 0 && p.revents & (libc::POLLIN | libc::POLLERR) != 0);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// CLOCK_MONOTONIC now plus `timeout_ns`, as the absolute i64 that syncobj waits take.
pub fn abs_timeout(timeout_ns: u64) -> i64 {
    let now = crate::fence::Timestamp::now().0;
    i64::try_from(now.saturating_add(timeout_ns)).unwrap_or(i64::MAX)
}

/// DRM_IOCTL_SET_CLIENT_CAP (e.g. atomic, universal planes).
pub fn drm_set_client_cap(fd: BorrowedFd<'_>, capability: u64, value: u64) -> io::Result<()> {
    let mut c = DrmGetCap { capability, value };
    // SAFETY: `c` is a drm_set_client_cap (the layout of drm_get_cap), the struct this ioctl
    // reads; no pointers.
    unsafe { ioctl(fd, DRM_IOCTL_SET_CLIENT_CAP, &mut c, true) }
}

/// DRM_IOCTL_GEM_CLOSE.
pub fn gem_close(drm: BorrowedFd<'_>, handle: u32) -> io::Result<()> {
    let mut arg = DrmGemClose { handle, pad: 0 };
    // SAFETY: `arg` is a drm_gem_close, the struct this ioctl reads; no pointers.
    unsafe { ioctl(drm, DRM_IOCTL_GEM_CLOSE, &mut arg, true) }
}

/// DRM_IOCTL_PRIME_HANDLE_TO_FD: a dmabuf for GEM `handle` (read-write, close-on-exec).
pub fn prime_handle_to_fd(drm: BorrowedFd<'_>, handle: u32) -> io::Result<OwnedFd> {
    let mut arg = DrmPrimeHandle {
        handle,
        flags: DRM_CLOEXEC_RDWR,
        fd: -1,
    };
    // SAFETY: `arg` is a drm_prime_handle, the struct this ioctl reads and writes; no
    // pointers.
    unsafe { ioctl(drm, DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut arg, true) }?;
    owned(arg.fd)
}

/// DRM_IOCTL_PRIME_FD_TO_HANDLE: the GEM handle of `dmabuf` on `drm`.
pub fn prime_fd_to_handle(drm: BorrowedFd<'_>, dmabuf: BorrowedFd<'_>) -> io::Result<u32> {
    let mut arg = DrmPrimeHandle {
        handle: 0,
        flags: 0,
        fd: dmabuf.as_raw_fd(),
    };
    // SAFETY: `arg` is a drm_prime_handle; `dmabuf` is borrowed, so it stays open during
    // the call; no pointers.
    unsafe { ioctl(drm, DRM_IOCTL_PRIME_FD_TO_HANDLE, &mut arg, true) }?;
    Ok(arg.handle)
}

/// DRM_IOCTL_MODE_CREATE_DUMB: (handle, pitch, size) of a new dumb buffer.
pub fn mode_create_dumb(
    drm: BorrowedFd<'_>,
    width: u32,
    height: u32,
    bpp: u32,
) -> io::Result<(u32, u32, u64)> {
    let mut arg = DrmModeCreateDumb {
        width,
        height,
        bpp,
        ..Default::default()
    };
    // SAFETY: `arg` is a drm_mode_create_dumb, the struct this ioctl reads and writes; no
    // pointers.
    unsafe { ioctl(drm, DRM_IOCTL_MODE_CREATE_DUMB, &mut arg, true) }?;
    Ok((arg.handle, arg.pitch, arg.size))
}

/// DRM_IOCTL_MODE_MAP_DUMB: the offset to mmap the dumb buffer `handle` at.
pub fn mode_map_dumb(drm: BorrowedFd<'_>, handle: u32) -> io::Result<u64> {
    let mut arg = DrmModeMapDumb {
        handle,
        ..Default::default()
    };
    // SAFETY: `arg` is a drm_mode_map_dumb, the struct this ioctl reads and writes; no
    // pointers.
    unsafe { ioctl(drm, DRM_IOCTL_MODE_MAP_DUMB, &mut arg, true) }?;
    Ok(arg.offset)
}

/// DMA_HEAP_IOCTL_ALLOC: a new dmabuf of `len` bytes from the heap `heap`.
pub fn dma_heap_alloc(heap: BorrowedFd<'_>, len: u64) -> io::Result<OwnedFd> {
    let mut arg = DmaHeapAllocationData {
        len,
        fd: 0,
        fd_flags: (libc::O_RDWR | libc::O_CLOEXEC) as u32,
        heap_flags: 0,
    };
    // SAFETY: `arg` is a dma_heap_allocation_data, the struct this ioctl reads and writes;
    // no pointers.
    unsafe { ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &mut arg, false) }?;
    owned(arg.fd as RawFd)
}

/// UDMABUF_CREATE: a dmabuf over `size` bytes of `memfd` from offset 0.
pub fn udmabuf_create(
    dev: BorrowedFd<'_>,
    memfd: BorrowedFd<'_>,
    size: u64,
) -> io::Result<OwnedFd> {
    let mut arg = UdmabufCreate {
        memfd: memfd.as_raw_fd() as u32,
        flags: UDMABUF_FLAGS_CLOEXEC,
        offset: 0,
        size,
    };
    // SAFETY: `arg` is a udmabuf_create, the struct this ioctl reads; the memfd it names is
    // borrowed, so it stays open during the call. The new dmabuf fd is the return value.
    let fd = unsafe { ioctl_value(dev, UDMABUF_CREATE, &mut arg, false) }?;
    owned(fd)
}

/// DMA_BUF_IOCTL_SYNC with `flags` (START/END | READ/WRITE): brackets CPU access.
pub fn dma_buf_sync(dmabuf: BorrowedFd<'_>, flags: u64) -> io::Result<()> {
    let mut arg = DmaBufSync { flags };
    // SAFETY: `arg` is a dma_buf_sync, the struct this ioctl reads; no pointers.
    unsafe { ioctl(dmabuf, DMA_BUF_IOCTL_SYNC, &mut arg, false) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_match_the_uapi() {
        use std::mem::size_of;
        assert_eq!(size_of::<DrmVersion>(), 64);
        assert_eq!(size_of::<SyncobjHandleArgs>(), 16);
        assert_eq!(size_of::<SyncobjTimelineWait>(), 40);
        assert_eq!(size_of::<SyncobjTimelineArray>(), 24);
        assert_eq!(size_of::<SyncobjTransfer>(), 32);
        assert_eq!(size_of::<SyncobjEventfd>(), 24);
        assert_eq!(size_of::<SyncMergeData>(), 48);
        assert_eq!(size_of::<SyncFileInfo>(), 56);
        assert_eq!(size_of::<SyncFenceInfo>(), 80);
        assert_eq!(size_of::<SwSyncCreateFence>(), 40);
    }

    #[test]
    fn ioctl_numbers_match_the_uapi() {
        // Values from the C headers (printed with gcc against Linux 6.12 uapi).
        assert_eq!(DRM_IOCTL_VERSION, 0xc040_6400);
        assert_eq!(DRM_IOCTL_SYNCOBJ_CREATE, 0xc008_64bf);
        assert_eq!(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, 0xc010_64c1);
        assert_eq!(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, 0xc028_64ca);
        assert_eq!(DRM_IOCTL_SYNCOBJ_EVENTFD, 0xc018_64cf);
        assert_eq!(SYNC_IOC_FILE_INFO, 0xc038_3e04);
        assert_eq!(SYNC_IOC_MERGE, 0xc030_3e03);
        assert_eq!(SW_SYNC_IOC_INC, 0x4004_5701);
        assert_eq!(SW_SYNC_GET_DEADLINE, 0xc010_5702);
        assert_eq!(DRM_IOCTL_SET_CLIENT_CAP, 0x4010_640d);
        assert_eq!(DMA_HEAP_IOCTL_ALLOC, 0xc018_4800);
        assert_eq!(UDMABUF_CREATE, 0x4018_7542);
        assert_eq!(DMA_BUF_IOCTL_SYNC, 0x4008_6200);
        assert_eq!(DRM_IOCTL_MODE_CREATE_DUMB, 0xc020_64b2);
        assert_eq!(DRM_IOCTL_MODE_MAP_DUMB, 0xc010_64b3);
        assert_eq!(DRM_IOCTL_PRIME_HANDLE_TO_FD, 0xc00c_642d);
        assert_eq!(DRM_IOCTL_PRIME_FD_TO_HANDLE, 0xc00c_642e);
        assert_eq!(DRM_IOCTL_GEM_CLOSE, 0x4008_6409);
    }

    #[test]
    fn bad_fds_are_errors() {
        let efd = eventfd().expect("eventfd");
        // An eventfd is neither a DRM node nor a sync_file.
        assert!(drm_driver_name(std::os::fd::AsFd::as_fd(&efd)).is_err());
        assert!(sync_file_info(std::os::fd::AsFd::as_fd(&efd)).is_err());
        assert!(dma_buf_sync(std::os::fd::AsFd::as_fd(&efd), DMA_BUF_SYNC_START).is_err());
        assert!(dma_heap_alloc(std::os::fd::AsFd::as_fd(&efd), 4096).is_err());
        assert!(mode_create_dumb(std::os::fd::AsFd::as_fd(&efd), 4, 4, 32).is_err());
        assert_eq!(
            eventfd_read(std::os::fd::AsFd::as_fd(&efd)).ok(),
            Some(None)
        );
    }
}
