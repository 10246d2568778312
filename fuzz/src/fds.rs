//! The fd factory: every kind of file descriptor a client can hand the compositor.
//!
//! A compositor maps client fds (wl_shm pools, dmabuf planes), imports them into the kernel
//! (syncobj timelines) or writes into them (data transfers, keymaps go the other way). Each of
//! those paths must survive an fd that is not what it should be. The factory makes:
//! - memfds of any size, including 0, 1, a page minus one, and sparse files of hundreds of
//!   MiB (cheap: nothing is touched until the compositor reads);
//! - shm files kept by the fuzzer so that they can be shrunk after the compositor mapped
//!   them (its reads past the new end fault with SIGBUS, which it must handle);
//! - wrong kinds: pipe ends, a socket, `/dev/null`, an eventfd, a directory;
//! - dmabufs from lockstep-render's heap allocator (dma-heap, udmabuf, dumb buffers) when the
//!   machine has one (the VM), memfds pretending to be dmabufs otherwise;
//! - DRM timeline syncobj fds when a render node with timelines exists (the VM).

use std::{
    fs::File,
    io,
    os::fd::{AsFd, OwnedFd},
};

use lockstep_render::heap::{Fourcc, HeapAllocator};
use lockstep_sync::{DrmDevice, NodeKind, SyncDevice};
use rustix::fs::{ftruncate, memfd_create, MemfdFlags};

use crate::rng::Rng;

/// The kinds of wrong fd the factory makes, by name (for the run's summary).
pub const GARBAGE_KINDS: &[&str] = &[
    "memfd-0",
    "memfd-1",
    "memfd-page-1",
    "pipe-read",
    "pipe-write",
    "socket",
    "dev-null",
    "eventfd",
    "directory",
];

/// Makes fds. Shared by all client threads (it holds no mutable state).
#[derive(Debug)]
pub struct FdFactory {
    page: u64,
    sync_device: Option<DrmDevice>,
    heap: HeapAllocator,
    /// Whether `heap` produced a real dmabuf when probed.
    pub real_dmabufs: bool,
}

impl FdFactory {
    /// Probes the machine for a timeline-capable render node and a dmabuf allocator.
    pub fn new() -> FdFactory {
        let sync_device = DrmDevice::list(NodeKind::Render)
            .into_iter()
            .find(|d| d.create_timeline().is_ok());
        let heap = HeapAllocator::new();
        let real_dmabufs = heap.allocate(16, 16, Fourcc::XRGB8888).is_ok();
        FdFactory {
            page: page_size(),
            sync_device,
            heap,
            real_dmabufs,
        }
    }

    /// What the factory can make on this machine, for the run's header.
    pub fn describe(&self) -> String {
        format!(
            "syncobj timelines: {}; dmabufs: {}",
            self.sync_device
                .as_ref()
                .map_or_else(|| "none (garbage fds instead)".to_owned(), |d| d.name()),
            if self.real_dmabufs {
                "heap allocator"
            } else {
                "none (memfds instead)"
            }
        )
    }

    /// The page size.
    pub fn page(&self) -> u64 {
        self.page
    }

    /// A memfd of `size` bytes (sparse).
    pub fn memfd(&self, size: u64) -> io::Result<OwnedFd> {
        let fd = memfd_create(
            "lockstep-fuzz",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        ftruncate(&fd, size)?;
        Ok(fd)
    }

    /// A size for a shm pool file: mostly what was declared, sometimes one of the sizes that
    /// break naive code.
    pub fn shm_size(&self, rng: &mut Rng, declared: u64, hostile: bool) -> u64 {
        if !hostile {
            return declared;
        }
        match rng.below(5) {
            0 => 0,
            1 => 1,
            2 => self.page - 1,
            3 => declared / 2,
            _ => declared + self.page,
        }
    }

    /// A wrong-kind fd, and what it is.
    pub fn garbage(&self, rng: &mut Rng) -> io::Result<(OwnedFd, &'static str)> {
        let kind = *rng.pick(GARBAGE_KINDS);
        let fd = match kind {
            "memfd-0" => self.memfd(0)?,
            "memfd-1" => self.memfd(1)?,
            "memfd-page-1" => self.memfd(self.page - 1)?,
            "pipe-read" | "pipe-write" => {
                let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                if kind == "pipe-read" {
                    r
                } else {
                    w
                }
            }
            "socket" => {
                let (a, _b) = std::os::unix::net::UnixStream::pair()?;
                a.into()
            }
            "dev-null" => File::options()
                .read(true)
                .write(true)
                .open("/dev/null")?
                .into(),
            "eventfd" => rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)?,
            _ => File::open("/")?.into(),
        };
        Ok((fd, kind))
    }

    /// An fd for `zwp_linux_buffer_params_v1.add`: a real dmabuf of at least `size` bytes
    /// when the machine can make one (and `hostile` is false), else a memfd of `size`.
    pub fn dmabuf_plane(&self, rng: &mut Rng, size: u64, hostile: bool) -> io::Result<OwnedFd> {
        if self.real_dmabufs && !hostile {
            let width = 64u32;
            let height = (size / 256).clamp(1, 4096) as u32;
            if let Ok(buffer) = self.heap.allocate(width, height, Fourcc::XRGB8888) {
                return Ok(buffer.into_fd());
            }
        }
        if hostile && rng.chance(0.5) {
            return self.garbage(rng).map(|(fd, _)| fd);
        }
        self.memfd(size)
    }

    /// An fd for `wp_linux_drm_syncobj_manager_v1.import_timeline`: a real timeline when the
    /// machine has one (and `hostile` is false), else a garbage fd.
    pub fn timeline(&self, rng: &mut Rng, hostile: bool) -> io::Result<OwnedFd> {
        if let (Some(device), false) = (&self.sync_device, hostile) {
            let timeline = device.create_timeline().ok();
            if let Some(fd) = timeline.and_then(|t| t.export_fd().ok()) {
                return Ok(fd);
            }
        }
        self.garbage(rng).map(|(fd, _)| fd)
    }

    /// Any fd at all, for an `fd` argument with no better idea.
    pub fn any(&self, rng: &mut Rng) -> io::Result<OwnedFd> {
        if rng.chance(0.5) {
            let size = *rng.pick(&[0, 1, 64, self.page, 1 << 20]);
            return self.memfd(size);
        }
        self.garbage(rng).map(|(fd, _)| fd)
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf(3) has no preconditions; _SC_PAGESIZE is always supported on Linux.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096).max(4096)
}

/// Shrinks a file the fuzzer kept (a shm pool's) after the compositor mapped it.
pub fn shrink(fd: &OwnedFd, to: u64) -> io::Result<()> {
    ftruncate(fd.as_fd(), to)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_every_garbage_kind() {
        let factory = FdFactory::new();
        let mut rng = Rng::new(3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            let (_fd, kind) = factory.garbage(&mut rng).unwrap();
            seen.insert(kind);
        }
        assert_eq!(seen.len(), GARBAGE_KINDS.len());
    }

    #[test]
    fn memfds_have_their_size_and_shrink() {
        let factory = FdFactory::new();
        let fd = factory.memfd(3 << 20).unwrap();
        assert_eq!(rustix::fs::fstat(&fd).unwrap().st_size, 3 << 20);
        shrink(&fd, 1).unwrap();
        assert_eq!(rustix::fs::fstat(&fd).unwrap().st_size, 1);
    }
}
