//! Raw kernel ABI of the heap allocators: uapi structs, ioctl numbers and one thin function per
//! ioctl.
//!
//! Every `unsafe` of [`heap`](super) lives here or next to the mapping it guards, one
//! `// SAFETY:` comment per block. The structs mirror `include/uapi/linux/dma-heap.h`,
//! `include/uapi/linux/udmabuf.h`, `include/uapi/linux/dma-buf.h` and
//! `include/uapi/drm/{drm,drm_mode}.h` as of Linux 6.12; a unit test pins every opcode to the
//! value the C headers produce on x86_64 (the same table as `vm/support/src/sys.rs`).
//!
//! DRM ioctls are retried on `EINTR` and `EAGAIN` (as libdrm's `drmIoctl` does), the others on
//! `EINTR` only. Errors come back as [`io::Error`] with the kernel's errno.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

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

/// `struct dma_heap_allocation_data`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DmaHeapAllocationData {
    pub len: u64,
    pub fd: u32,
    pub fd_flags: u32,
    pub heap_flags: u64,
}
pub(crate) const DMA_HEAP_IOCTL_ALLOC: u64 = iowr::<DmaHeapAllocationData>(b'H', 0);

/// `struct udmabuf_create`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct UdmabufCreate {
    pub memfd: u32,
    pub flags: u32,
    pub offset: u64,
    pub size: u64,
}
pub(crate) const UDMABUF_CREATE: u64 = iow::<UdmabufCreate>(b'u', 0x42);
const UDMABUF_FLAGS_CLOEXEC: u32 = 1;

/// `struct dma_buf_sync`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DmaBufSync {
    pub flags: u64,
}
pub(crate) const DMA_BUF_IOCTL_SYNC: u64 = iow::<DmaBufSync>(b'b', 0);
pub(crate) const DMA_BUF_SYNC_READ: u64 = 1 << 0;
pub(crate) const DMA_BUF_SYNC_WRITE: u64 = 1 << 1;
pub(crate) const DMA_BUF_SYNC_START: u64 = 0;
pub(crate) const DMA_BUF_SYNC_END: u64 = 1 << 2;

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
const DRM: u8 = b'd';
pub(crate) const DRM_IOCTL_MODE_CREATE_DUMB: u64 = iowr::<DrmModeCreateDumb>(DRM, 0xb2);

/// `struct drm_prime_handle`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmPrimeHandle {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
}
pub(crate) const DRM_IOCTL_PRIME_HANDLE_TO_FD: u64 = iowr::<DrmPrimeHandle>(DRM, 0x2d);
/// `DRM_CLOEXEC` (= `O_CLOEXEC`) | `DRM_RDWR` (= `O_RDWR`): a mappable, writable dmabuf.
const DRM_CLOEXEC_RDWR: u32 = libc::O_CLOEXEC as u32 | libc::O_RDWR as u32;

/// `struct drm_gem_close`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DrmGemClose {
    pub handle: u32,
    pub pad: u32,
}
pub(crate) const DRM_IOCTL_GEM_CLOSE: u64 = iow::<DrmGemClose>(DRM, 0x09);

/// Issues one ioctl, retrying on `EINTR` (and `EAGAIN` when `retry_again`); returns the
/// ioctl's non-negative return value.
///
/// # Safety
///
/// `T` must be the argument type the kernel expects for `request`, and `arg` must hold no
/// pointers (none of the structs above do).
unsafe fn ioctl<T>(
    fd: BorrowedFd<'_>,
    request: u64,
    arg: &mut T,
    retry_again: bool,
) -> io::Result<i32> {
    loop {
        // SAFETY: fd is open for the call (borrowed); the caller guarantees `T` matches
        // `request`; `arg` is a live exclusive borrow the kernel may write back into.
        let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg as *mut T) };
        if ret >= 0 {
            return Ok(ret);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) if retry_again => continue,
            _ => return Err(err),
        }
    }
}

/// Takes ownership of an fd the kernel just installed for us.
fn own(fd: i32) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the kernel returned fd {fd}"),
        ));
    }
    // SAFETY: `fd` was returned by a successful ioctl that installs a new fd in our table;
    // nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `DMA_HEAP_IOCTL_ALLOC`: a new dmabuf of `len` bytes from the heap `heap`.
pub(crate) fn dma_heap_alloc(heap: BorrowedFd<'_>, len: u64) -> io::Result<OwnedFd> {
    let mut arg = DmaHeapAllocationData {
        len,
        fd: 0,
        fd_flags: (libc::O_RDWR | libc::O_CLOEXEC) as u32,
        heap_flags: 0,
    };
    // SAFETY: DmaHeapAllocationData is struct dma_heap_allocation_data, the type
    // DMA_HEAP_IOCTL_ALLOC expects; it holds no pointers.
    unsafe { ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &mut arg, false) }?;
    own(arg.fd as i32)
}

/// `UDMABUF_CREATE`: a dmabuf over `size` bytes of `memfd` from offset 0.
pub(crate) fn udmabuf_create(
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
    // SAFETY: UdmabufCreate is struct udmabuf_create, the type UDMABUF_CREATE expects; the
    // memfd it names is borrowed, so it stays open during the call.
    let fd = unsafe { ioctl(dev, UDMABUF_CREATE, &mut arg, false) }?;
    own(fd)
}

/// `DMA_BUF_IOCTL_SYNC` with `flags` (START/END | READ/WRITE).
pub(crate) fn dma_buf_sync(dmabuf: BorrowedFd<'_>, flags: u64) -> io::Result<()> {
    let mut arg = DmaBufSync { flags };
    // SAFETY: DmaBufSync is struct dma_buf_sync, the type DMA_BUF_IOCTL_SYNC expects; no
    // pointers.
    unsafe { ioctl(dmabuf, DMA_BUF_IOCTL_SYNC, &mut arg, false) }.map(|_| ())
}

/// `DRM_IOCTL_MODE_CREATE_DUMB`: (handle, pitch, size).
pub(crate) fn create_dumb(
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
    // SAFETY: DrmModeCreateDumb is struct drm_mode_create_dumb, the type
    // DRM_IOCTL_MODE_CREATE_DUMB expects; no pointers.
    unsafe { ioctl(drm, DRM_IOCTL_MODE_CREATE_DUMB, &mut arg, true) }?;
    Ok((arg.handle, arg.pitch, arg.size))
}

/// `DRM_IOCTL_PRIME_HANDLE_TO_FD` (read-write, close-on-exec).
pub(crate) fn prime_handle_to_fd(drm: BorrowedFd<'_>, handle: u32) -> io::Result<OwnedFd> {
    let mut arg = DrmPrimeHandle {
        handle,
        flags: DRM_CLOEXEC_RDWR,
        fd: -1,
    };
    // SAFETY: DrmPrimeHandle is struct drm_prime_handle, the type
    // DRM_IOCTL_PRIME_HANDLE_TO_FD expects; no pointers.
    unsafe { ioctl(drm, DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut arg, true) }?;
    own(arg.fd)
}

/// `DRM_IOCTL_GEM_CLOSE`.
pub(crate) fn gem_close(drm: BorrowedFd<'_>, handle: u32) -> io::Result<()> {
    let mut arg = DrmGemClose { handle, pad: 0 };
    // SAFETY: DrmGemClose is struct drm_gem_close, the type DRM_IOCTL_GEM_CLOSE expects; no
    // pointers.
    unsafe { ioctl(drm, DRM_IOCTL_GEM_CLOSE, &mut arg, true) }.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by a C program including the kernel/libdrm headers on x86_64.
    #[test]
    fn opcodes_match_the_c_headers() {
        let expected: &[(&str, u64, u64)] = &[
            ("DMA_HEAP_IOCTL_ALLOC", DMA_HEAP_IOCTL_ALLOC, 0xc018_4800),
            ("UDMABUF_CREATE", UDMABUF_CREATE, 0x4018_7542),
            ("DMA_BUF_IOCTL_SYNC", DMA_BUF_IOCTL_SYNC, 0x4008_6200),
            ("MODE_CREATE_DUMB", DRM_IOCTL_MODE_CREATE_DUMB, 0xc020_64b2),
            (
                "PRIME_HANDLE_TO_FD",
                DRM_IOCTL_PRIME_HANDLE_TO_FD,
                0xc00c_642d,
            ),
            ("GEM_CLOSE", DRM_IOCTL_GEM_CLOSE, 0x4008_6409),
        ];
        for &(name, got, want) in expected {
            assert_eq!(got, want, "{name}: got {got:#x}, want {want:#x}");
        }
    }

    #[test]
    fn ioctls_on_the_wrong_fd_fail_cleanly() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let fd = std::os::fd::AsFd::as_fd(&a);
        assert!(dma_buf_sync(fd, DMA_BUF_SYNC_START).is_err());
        assert!(dma_heap_alloc(fd, 4096).is_err());
        assert!(create_dumb(fd, 4, 4, 32).is_err());
    }
}
