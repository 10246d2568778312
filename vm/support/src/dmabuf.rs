//! dmabufs from the three allocators the guest has: vgem (dumb buffer + PRIME export), the
//! system dma-heap and udmabuf (memfd pages as a dmabuf).
//!
//! A client of lockstep hands it dmabufs; these are the ones a test can make without a GPU.
//!
//! ```no_run
//! use lockstep_vm_support::dmabuf::{self, Dmabuf};
//! use lockstep_vm_support::guest::Devices;
//!
//! let dev = Devices::open()?;
//! let heap: Dmabuf = dmabuf::dma_heap_system(1 << 20)?;
//! heap.fill(0x5a)?;
//! assert!(heap.read()?.iter().all(|&b| b == 0x5a));
//! let on_vkms = heap.import(&dev.vkms)?; // PRIME import: a GEM handle on vkms
//! # let _ = on_vkms;
//! # Ok::<(), lockstep_vm_support::Error>(())
//! ```

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

use crate::drm::DrmNode;
use crate::kms::GemHandle;
use crate::sys;
use crate::{Error, Result};
use lockstep_sync::sys as kernel;

/// The system dma-heap.
pub const DMA_HEAP_SYSTEM: &str = "/dev/dma_heap/system";
/// The udmabuf device.
pub const UDMABUF: &str = "/dev/udmabuf";

/// A dmabuf fd and its size in bytes.
#[derive(Debug)]
pub struct Dmabuf {
    fd: OwnedFd,
    len: usize,
}

/// A vgem dumb buffer exported as a dmabuf, with its layout.
#[derive(Debug)]
pub struct VgemBuffer {
    /// The buffer.
    pub dmabuf: Dmabuf,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row.
    pub pitch: u32,
}

/// Allocates a `width`×`height` 32 bpp dumb buffer on vgem's primary node (`vgem_card`; the
/// render node cannot make dumb buffers) and exports it with PRIME. The GEM handle is closed
/// again: the dmabuf keeps the memory alive.
pub fn vgem_dumb(vgem_card: &DrmNode, width: u32, height: u32) -> Result<VgemBuffer> {
    let (handle, pitch, size) = kernel::mode_create_dumb(vgem_card.as_fd(), width, height, 32)
        .map_err(sys::kernel_error("DRM_IOCTL_MODE_CREATE_DUMB"))?;
    let handle = GemHandle(handle);
    let exported = kernel::prime_handle_to_fd(vgem_card.as_fd(), handle.0)
        .map_err(sys::kernel_error("DRM_IOCTL_PRIME_HANDLE_TO_FD"));
    gem_close(vgem_card, handle);
    let fd = exported?;
    let len = usize::try_from(size).map_err(|_| Error::Parse {
        what: "dumb buffer size",
        text: size.to_string(),
    })?;
    Ok(VgemBuffer {
        dmabuf: Dmabuf { fd, len },
        width,
        height,
        pitch,
    })
}

/// Allocates `len` bytes from the system dma-heap.
pub fn dma_heap_system(len: usize) -> Result<Dmabuf> {
    let heap = rustix::fs::open(
        DMA_HEAP_SYSTEM,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::file("open", DMA_HEAP_SYSTEM)(e.into()))?;
    let fd = kernel::dma_heap_alloc(heap.as_fd(), len as u64)
        .map_err(sys::kernel_error("DMA_HEAP_IOCTL_ALLOC"))?;
    Ok(Dmabuf { fd, len })
}

/// Makes a `len`-byte dmabuf from the pages of a fresh memfd with udmabuf. `len` must be a
/// multiple of the page size.
pub fn udmabuf(len: usize) -> Result<Dmabuf> {
    let memfd = rustix::fs::memfd_create(
        "lockstep-udmabuf",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(Error::syscall("memfd_create"))?;
    rustix::fs::ftruncate(&memfd, len as u64).map_err(Error::syscall("ftruncate(memfd)"))?;
    // udmabuf insists on F_SEAL_SHRINK: the pages must not go away under the dmabuf.
    rustix::fs::fcntl_add_seals(&memfd, SealFlags::SHRINK)
        .map_err(Error::syscall("fcntl(F_ADD_SEALS)"))?;
    let dev = rustix::fs::open(UDMABUF, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::file("open", UDMABUF)(e.into()))?;
    let fd = kernel::udmabuf_create(dev.as_fd(), memfd.as_fd(), len as u64)
        .map_err(sys::kernel_error("UDMABUF_CREATE"))?;
    Ok(Dmabuf { fd, len })
}

impl Dmabuf {
    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty (never true for a successful allocation).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets every byte to `value` through a CPU mapping.
    pub fn fill(&self, value: u8) -> Result<()> {
        self.with_map(
            kernel::DMA_BUF_SYNC_READ | kernel::DMA_BUF_SYNC_WRITE,
            |bytes| bytes.fill(value),
        )
    }

    /// Reads the whole buffer through a CPU mapping.
    pub fn read(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.with_map(
            kernel::DMA_BUF_SYNC_READ | kernel::DMA_BUF_SYNC_WRITE,
            |bytes| out.extend_from_slice(bytes),
        )?;
        Ok(out)
    }

    /// PRIME-imports the buffer on `dev`; the GEM handle is closed when the result drops.
    pub fn import<'d>(&self, dev: &'d DrmNode) -> Result<Imported<'d>> {
        let handle = kernel::prime_fd_to_handle(dev.as_fd(), self.fd.as_fd())
            .map_err(sys::kernel_error("DRM_IOCTL_PRIME_FD_TO_HANDLE"))?;
        Ok(Imported {
            dev,
            handle: GemHandle(handle),
        })
    }

    /// Maps the buffer, brackets `f` with `DMA_BUF_IOCTL_SYNC` start/end, unmaps.
    fn with_map(&self, direction: u64, f: impl FnOnce(&mut [u8])) -> Result<()> {
        // SAFETY: a fresh shared mapping of the whole dmabuf; it overlaps no Rust object and
        // is unmapped below before returning.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                self.len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &self.fd,
                0,
            )
        }
        .map_err(Error::syscall("mmap(dmabuf)"))?;
        let result = self.sync(kernel::DMA_BUF_SYNC_START | direction).map(|()| {
            // SAFETY: ptr is a live mapping of self.len bytes made above, referenced by
            // nothing else until munmap below.
            f(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), self.len) });
        });
        let end = self.sync(kernel::DMA_BUF_SYNC_END | direction);
        // SAFETY: ptr/len are the mapping made above; the slice given to `f` is gone.
        let unmapped = unsafe { rustix::mm::munmap(ptr, self.len) };
        result?;
        end?;
        unmapped.map_err(Error::syscall("munmap(dmabuf)"))
    }

    fn sync(&self, flags: u64) -> Result<()> {
        kernel::dma_buf_sync(self.fd.as_fd(), flags)
            .map_err(sys::kernel_error("DMA_BUF_IOCTL_SYNC"))
    }
}

impl AsFd for Dmabuf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A dmabuf imported on a device: a GEM handle, closed on drop.
#[derive(Debug)]
pub struct Imported<'d> {
    dev: &'d DrmNode,
    handle: GemHandle,
}

impl Imported<'_> {
    /// The GEM handle on the importing device.
    pub fn handle(&self) -> GemHandle {
        self.handle
    }
}

impl Drop for Imported<'_> {
    fn drop(&mut self) {
        gem_close(self.dev, self.handle);
    }
}

/// Closes a GEM handle; a failure only leaks it until the device closes, so it is ignored.
pub(crate) fn gem_close(dev: &DrmNode, handle: GemHandle) {
    let _ = kernel::gem_close(dev.as_fd(), handle.0);
}
