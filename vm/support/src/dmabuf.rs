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

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

use crate::drm::DrmNode;
use crate::kms::GemHandle;
use crate::sys;
use crate::{Error, Result};

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
    let mut create = sys::DrmModeCreateDumb {
        width,
        height,
        bpp: 32,
        ..Default::default()
    };
    // SAFETY: vgem_card is an open DRM node; DrmModeCreateDumb is struct drm_mode_create_dumb,
    // the type DRM_IOCTL_MODE_CREATE_DUMB expects; no pointers.
    unsafe {
        sys::ioctl::<{ sys::DRM_IOCTL_MODE_CREATE_DUMB }, _>(
            vgem_card.as_fd(),
            "DRM_IOCTL_MODE_CREATE_DUMB",
            &mut create,
        )
    }?;
    let handle = GemHandle(create.handle);
    let mut prime = sys::DrmPrimeHandle {
        handle: handle.0,
        flags: sys::DRM_CLOEXEC_RDWR,
        fd: -1,
    };
    // SAFETY: vgem_card is an open DRM node and `handle` a GEM object on it; DrmPrimeHandle
    // is struct drm_prime_handle, the type DRM_IOCTL_PRIME_HANDLE_TO_FD expects.
    let exported = unsafe {
        sys::ioctl::<{ sys::DRM_IOCTL_PRIME_HANDLE_TO_FD }, _>(
            vgem_card.as_fd(),
            "DRM_IOCTL_PRIME_HANDLE_TO_FD",
            &mut prime,
        )
    };
    gem_close(vgem_card, handle);
    exported?;
    let len = usize::try_from(create.size).map_err(|_| Error::Parse {
        what: "dumb buffer size",
        text: create.size.to_string(),
    })?;
    // SAFETY: on success the kernel installed a new dmabuf fd that nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(prime.fd) };
    Ok(VgemBuffer {
        dmabuf: Dmabuf { fd, len },
        width,
        height,
        pitch: create.pitch,
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
    let mut arg = sys::DmaHeapAllocationData {
        len: len as u64,
        fd: 0,
        fd_flags: (OFlags::RDWR | OFlags::CLOEXEC).bits(),
        heap_flags: 0,
    };
    // SAFETY: heap is an open dma-heap; DmaHeapAllocationData is struct
    // dma_heap_allocation_data, the type DMA_HEAP_IOCTL_ALLOC expects; no pointers.
    unsafe {
        sys::ioctl::<{ sys::DMA_HEAP_IOCTL_ALLOC }, _>(
            heap.as_fd(),
            "DMA_HEAP_IOCTL_ALLOC",
            &mut arg,
        )
    }?;
    // SAFETY: on success the kernel installed a new dmabuf fd that nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(arg.fd as i32) };
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
    let mut arg = sys::UdmabufCreate {
        memfd: memfd.as_raw_fd() as u32,
        flags: sys::UDMABUF_FLAGS_CLOEXEC,
        offset: 0,
        size: len as u64,
    };
    // SAFETY: dev is /dev/udmabuf; UdmabufCreate is struct udmabuf_create, the type
    // UDMABUF_CREATE expects; `memfd` stays open during the call. The return value is the
    // new dmabuf fd.
    let fd = unsafe {
        sys::ioctl::<{ sys::UDMABUF_CREATE }, _>(dev.as_fd(), "UDMABUF_CREATE", &mut arg)
    }?;
    // SAFETY: UDMABUF_CREATE returned a new fd that nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
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
        self.with_map(sys::DMA_BUF_SYNC_RW, |bytes| bytes.fill(value))
    }

    /// Reads the whole buffer through a CPU mapping.
    pub fn read(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.with_map(sys::DMA_BUF_SYNC_RW, |bytes| out.extend_from_slice(bytes))?;
        Ok(out)
    }

    /// PRIME-imports the buffer on `dev`; the GEM handle is closed when the result drops.
    pub fn import<'d>(&self, dev: &'d DrmNode) -> Result<Imported<'d>> {
        let mut arg = sys::DrmPrimeHandle {
            fd: self.fd.as_raw_fd(),
            ..Default::default()
        };
        // SAFETY: dev is an open DRM node; DrmPrimeHandle is struct drm_prime_handle, the type
        // DRM_IOCTL_PRIME_FD_TO_HANDLE expects; self.fd is an open dmabuf.
        unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_PRIME_FD_TO_HANDLE }, _>(
                dev.as_fd(),
                "DRM_IOCTL_PRIME_FD_TO_HANDLE",
                &mut arg,
            )
        }?;
        Ok(Imported {
            dev,
            handle: GemHandle(arg.handle),
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
        let result = self.sync(sys::DMA_BUF_SYNC_START | direction).map(|()| {
            // SAFETY: ptr is a live mapping of self.len bytes made above, referenced by
            // nothing else until munmap below.
            f(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), self.len) });
        });
        let end = self.sync(sys::DMA_BUF_SYNC_END | direction);
        // SAFETY: ptr/len are the mapping made above; the slice given to `f` is gone.
        let unmapped = unsafe { rustix::mm::munmap(ptr, self.len) };
        result?;
        end?;
        unmapped.map_err(Error::syscall("munmap(dmabuf)"))
    }

    fn sync(&self, flags: u64) -> Result<()> {
        let mut arg = sys::DmaBufSync { flags };
        // SAFETY: self.fd is an open dmabuf; DmaBufSync is struct dma_buf_sync, the type
        // DMA_BUF_IOCTL_SYNC expects; no pointers.
        unsafe {
            sys::ioctl::<{ sys::DMA_BUF_IOCTL_SYNC }, _>(
                self.fd.as_fd(),
                "DMA_BUF_IOCTL_SYNC",
                &mut arg,
            )
        }?;
        Ok(())
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
    let mut arg = sys::DrmGemClose {
        handle: handle.0,
        pad: 0,
    };
    // SAFETY: dev is an open DRM node; DrmGemClose is struct drm_gem_close, the type
    // DRM_IOCTL_GEM_CLOSE expects; no pointers.
    let _ = unsafe {
        sys::ioctl::<{ sys::DRM_IOCTL_GEM_CLOSE }, _>(dev.as_fd(), "DRM_IOCTL_GEM_CLOSE", &mut arg)
    };
}
