//! Heap buffers: linear dmabufs allocated without a GPU, with bracketed CPU access.
//!
//! # Why
//!
//! Explicit-sync clients hand the compositor dmabufs. lockstep's conformance suite, its tests
//! and the headless backend need such buffers on machines that have no GPU and no GBM: CI
//! hosts, the VM, a headless server. The kernel offers three ways to get a dmabuf of plain
//! system memory, and not every machine has all of them, so [`HeapAllocator`] tries them in
//! order and says, for each one that failed, why:
//!
//! 1. **dma-heap** (`/dev/dma_heap/system`, `DMA_HEAP_IOCTL_ALLOC`): the intended interface,
//!    needs `CONFIG_DMABUF_HEAPS_SYSTEM` and access to the node.
//! 2. **udmabuf** (`/dev/udmabuf`, `UDMABUF_CREATE`): wraps the pages of a memfd. The kernel
//!    insists that the memfd is sealed against shrinking (`F_SEAL_SHRINK`; the pages must not go
//!    away under the dmabuf) and refuses `F_SEAL_WRITE`; we also seal against growing and
//!    further seals, so the layout stays what we created.
//! 3. **dumb buffer** on a DRM node (`DRM_IOCTL_MODE_CREATE_DUMB` + PRIME export): works on
//!    any KMS or vgem *primary* node (render nodes cannot make dumb buffers). The kernel picks
//!    the pitch, so the [`Layout`] of the result may differ from the one asked for.
//!
//! CPU access goes through [`HeapBuffer::map`] and then a [`CpuAccess`] guard, which issues
//! `DMA_BUF_IOCTL_SYNC` `SYNC_START` when it is created and `SYNC_END` when it drops, so caches
//! are flushed/invalidated around every access as the dma-buf rules require
//! (Documentation/driver-api/dma-buf.rst, "CPU Access to DMA Buffer Objects"). The access mode
//! is a type parameter: only [`Write`] and [`ReadWrite`] guards hand out `&mut [u8]`.
//!
//! # How
//!
//! ```no_run
//! use lockstep_render::heap::{Fourcc, HeapAllocator, ReadWrite};
//!
//! let allocator = HeapAllocator::new();
//! let buffer = allocator.allocate(64, 64, Fourcc::XRGB8888)?;
//! println!("{:?} buffer, stride {}", buffer.source(), buffer.layout().stride);
//! buffer.fill(0xff20_4060)?; // one pixel value everywhere
//! let mut map = buffer.map()?;
//! {
//!     let mut pixels = map.access::<ReadWrite>()?; // SYNC_START(RW)
//!     pixels[0..4].copy_from_slice(&[1, 2, 3, 4]);
//! } // SYNC_END(RW)
//! # Ok::<(), lockstep_render::heap::HeapError>(())
//! ```
//!
//! Buffers are single-plane, linear ([`Modifier::LINEAR`]) and 32 bits per pixel today
//! ([`Fourcc::ARGB8888`], [`Fourcc::XRGB8888`] and their ABGR/XBGR twins).

use lockstep_sync::sys;

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

/// Where the system dma-heap lives.
pub const DMA_HEAP_SYSTEM: &str = "/dev/dma_heap/system";
/// Where udmabuf lives.
pub const UDMABUF: &str = "/dev/udmabuf";
/// Where DRM nodes live.
pub const DRI_DIR: &str = "/dev/dri";

/// Stride alignment of buffers whose layout we choose (dma-heap, udmabuf): 64 bytes, what
/// GPUs and pixman's SIMD paths like; every importer accepts it.
const STRIDE_ALIGN: u32 = 64;

/// A DRM fourcc pixel format code (`drm_fourcc.h`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fourcc(pub u32);

impl Fourcc {
    /// `DRM_FORMAT_ARGB8888` ("AR24"): 32-bit little-endian B, G, R, A bytes.
    pub const ARGB8888: Fourcc = Fourcc::from_code(*b"AR24");
    /// `DRM_FORMAT_XRGB8888` ("XR24"): as ARGB8888 with the alpha byte ignored.
    pub const XRGB8888: Fourcc = Fourcc::from_code(*b"XR24");
    /// `DRM_FORMAT_ABGR8888` ("AB24"): R, G, B, A bytes.
    pub const ABGR8888: Fourcc = Fourcc::from_code(*b"AB24");
    /// `DRM_FORMAT_XBGR8888` ("XB24").
    pub const XBGR8888: Fourcc = Fourcc::from_code(*b"XB24");

    /// The fourcc of four ASCII bytes.
    pub const fn from_code(code: [u8; 4]) -> Fourcc {
        Fourcc(u32::from_le_bytes(code))
    }

    /// Bytes per pixel of the formats this module can allocate.
    pub fn bytes_per_pixel(self) -> Option<u32> {
        match self {
            Fourcc::ARGB8888 | Fourcc::XRGB8888 | Fourcc::ABGR8888 | Fourcc::XBGR8888 => Some(4),
            _ => None,
        }
    }
}

impl fmt::Debug for Fourcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Fourcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.0.to_le_bytes();
        if code.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            write!(f, "{}", String::from_utf8_lossy(&code))
        } else {
            write!(f, "{:#010x}", self.0)
        }
    }
}

/// A DRM format modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Modifier(pub u64);

impl Modifier {
    /// `DRM_FORMAT_MOD_LINEAR`: what every heap buffer is.
    pub const LINEAR: Modifier = Modifier(0);
    /// `DRM_FORMAT_MOD_INVALID`: "implicit", the driver decides.
    pub const INVALID: Modifier = Modifier(0x00ff_ffff_ffff_ffff);
}

/// Which allocator made a buffer (or failed to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A dma-heap (`DMA_HEAP_IOCTL_ALLOC`).
    DmaHeap,
    /// udmabuf over a sealed memfd.
    Udmabuf,
    /// A dumb buffer on a DRM node, PRIME-exported.
    Dumb,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::DmaHeap => "dma-heap",
            Source::Udmabuf => "udmabuf",
            Source::Dumb => "dumb buffer",
        })
    }
}

/// The memory layout of a single-plane linear buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Pixel format.
    pub fourcc: Fourcc,
    /// Modifier (always [`Modifier::LINEAR`] here).
    pub modifier: Modifier,
    /// Bytes per row.
    pub stride: u32,
    /// Offset of the first pixel in the dmabuf (always 0 here).
    pub offset: u32,
    /// Size of the dmabuf in bytes (at least `stride * height`).
    pub size: usize,
}

impl Layout {
    /// The layout we choose for a linear `width`×`height` buffer: stride aligned to 64
    /// bytes, size rounded up to whole pages (udmabuf maps whole pages).
    pub fn linear(width: u32, height: u32, fourcc: Fourcc) -> Result<Layout, LayoutError> {
        let bpp = fourcc
            .bytes_per_pixel()
            .ok_or(LayoutError::UnsupportedFormat(fourcc))?;
        if width == 0 || height == 0 {
            return Err(LayoutError::Empty { width, height });
        }
        let too_big = LayoutError::TooBig { width, height };
        let stride = width
            .checked_mul(bpp)
            .and_then(|row| row.checked_next_multiple_of(STRIDE_ALIGN))
            .ok_or(too_big.clone())?;
        let page = page_size();
        let size = (stride as usize)
            .checked_mul(height as usize)
            .and_then(|s| s.checked_next_multiple_of(page))
            .filter(|s| i32::try_from(*s).is_ok())
            .ok_or(too_big)?;
        Ok(Layout {
            width,
            height,
            fourcc,
            modifier: Modifier::LINEAR,
            stride,
            offset: 0,
            size,
        })
    }

    /// Byte offset of pixel (`x`, `y`), if inside the buffer.
    pub fn pixel_offset(&self, x: u32, y: u32) -> Option<usize> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let bpp = self.fourcc.bytes_per_pixel()? as usize;
        Some(self.offset as usize + y as usize * self.stride as usize + x as usize * bpp)
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions; _SC_PAGESIZE is always supported on Linux.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(4096)
}

/// A layout that cannot be allocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// Only 32-bit single-plane formats are supported.
    #[error("format {0} is not supported by the heap allocator (32 bpp RGB formats only)")]
    UnsupportedFormat(Fourcc),
    /// A zero width or height.
    #[error("a {width}x{height} buffer is empty")]
    Empty {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
    /// Larger than 2 GiB (the Wayland and DRM interfaces use 32-bit sizes).
    #[error("a {width}x{height} buffer is too large")]
    TooBig {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
}

/// Why one allocator could not make a buffer.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A device node could not be opened (missing, no permission, no kernel support).
    #[error("cannot open {}", path.display())]
    Open {
        /// The node.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `DMA_HEAP_IOCTL_ALLOC` failed.
    #[error("DMA_HEAP_IOCTL_ALLOC of {len} bytes failed")]
    DmaHeapAlloc {
        /// Bytes asked for.
        len: usize,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// Creating, sizing or sealing the memfd failed.
    #[error("preparing the sealed memfd failed ({step})")]
    Memfd {
        /// `memfd_create`, `ftruncate` or `F_ADD_SEALS`.
        step: &'static str,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// `UDMABUF_CREATE` failed.
    #[error("UDMABUF_CREATE failed")]
    UdmabufCreate(#[source] io::Error),
    /// No DRM node could make dumb buffers (none given and none of /dev/dri/card* worked).
    #[error("no DRM primary node can create dumb buffers ({0})")]
    NoDumbNode(String),
    /// `DRM_IOCTL_MODE_CREATE_DUMB` failed on a node.
    #[error("DRM_IOCTL_MODE_CREATE_DUMB on {} failed", node.display())]
    CreateDumb {
        /// The node.
        node: PathBuf,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// `DRM_IOCTL_PRIME_HANDLE_TO_FD` failed.
    #[error("PRIME export of the dumb buffer on {} failed", node.display())]
    PrimeExport {
        /// The node.
        node: PathBuf,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// The kernel's dumb buffer is too small or has an odd pitch for the format.
    #[error("the dumb buffer on {} has an unusable layout: {what}", node.display())]
    DumbLayout {
        /// The node.
        node: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// One failed allocation attempt.
#[derive(Debug)]
pub struct Attempt {
    /// The allocator tried.
    pub source: Source,
    /// Why it failed.
    pub error: SourceError,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, error_chain(&self.error))
    }
}

/// `err: cause: cause` on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Errors of the heap allocator and of CPU access.
#[derive(Debug, thiserror::Error)]
pub enum HeapError {
    /// The requested layout is not allocatable.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Every configured allocator failed; each attempt says why.
    #[error("no allocator could make the buffer: {}", join(.attempts))]
    Exhausted {
        /// Every attempt, in the order tried.
        attempts: Vec<Attempt>,
    },
    /// `mmap` of the dmabuf failed.
    #[error("mapping the dmabuf failed")]
    Map(#[source] io::Error),
    /// `DMA_BUF_IOCTL_SYNC` failed.
    #[error("DMA_BUF_IOCTL_SYNC ({phase}) failed")]
    Sync {
        /// "start" or "end".
        phase: &'static str,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
}

fn join(attempts: &[Attempt]) -> String {
    if attempts.is_empty() {
        return "no allocator is configured".to_owned();
    }
    attempts
        .iter()
        .map(Attempt::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where dumb buffers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumbNode {
    /// The first `/dev/dri/cardN` (in name order) that can create one.
    Auto,
    /// This node.
    Path(PathBuf),
}

/// One allocator the [`HeapAllocator`] may try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceConfig {
    /// A dma-heap node (normally [`DMA_HEAP_SYSTEM`]).
    DmaHeap(PathBuf),
    /// The udmabuf node (normally [`UDMABUF`]).
    Udmabuf(PathBuf),
    /// Dumb buffers on a DRM node.
    Dumb(DumbNode),
}

impl SourceConfig {
    /// Which kind of allocator this is.
    pub fn source(&self) -> Source {
        match self {
            SourceConfig::DmaHeap(_) => Source::DmaHeap,
            SourceConfig::Udmabuf(_) => Source::Udmabuf,
            SourceConfig::Dumb(_) => Source::Dumb,
        }
    }

    /// The standard configuration of `source`.
    pub fn standard(source: Source) -> SourceConfig {
        match source {
            Source::DmaHeap => SourceConfig::DmaHeap(DMA_HEAP_SYSTEM.into()),
            Source::Udmabuf => SourceConfig::Udmabuf(UDMABUF.into()),
            Source::Dumb => SourceConfig::Dumb(DumbNode::Auto),
        }
    }
}

/// Allocates linear dmabufs from the first allocator that works. See the module docs.
///
/// Stateless apart from its configuration: every allocation opens the nodes it needs, so an
/// allocator is cheap, `Send + Sync`, and never holds a device open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapAllocator {
    sources: Vec<SourceConfig>,
}

impl Default for HeapAllocator {
    fn default() -> Self {
        HeapAllocator::new()
    }
}

impl HeapAllocator {
    /// dma-heap system, then udmabuf, then a dumb buffer on the first capable card node.
    pub fn new() -> HeapAllocator {
        HeapAllocator::with_sources(
            [Source::DmaHeap, Source::Udmabuf, Source::Dumb].map(SourceConfig::standard),
        )
    }

    /// Only `source`, in its standard configuration (tests, or a user's choice).
    pub fn only(source: Source) -> HeapAllocator {
        HeapAllocator::with_sources([SourceConfig::standard(source)])
    }

    /// Exactly these allocators, in this order.
    pub fn with_sources(sources: impl IntoIterator<Item = SourceConfig>) -> HeapAllocator {
        HeapAllocator {
            sources: sources.into_iter().collect(),
        }
    }

    /// The allocators tried, in order.
    pub fn sources(&self) -> &[SourceConfig] {
        &self.sources
    }

    /// A `width`×`height` linear buffer of `fourcc`, zero-filled (all three allocators hand
    /// out cleared memory).
    pub fn allocate(
        &self,
        width: u32,
        height: u32,
        fourcc: Fourcc,
    ) -> Result<HeapBuffer, HeapError> {
        let layout = Layout::linear(width, height, fourcc)?;
        let mut attempts = Vec::new();
        for config in &self.sources {
            let result = match config {
                SourceConfig::DmaHeap(path) => alloc_dma_heap(path, layout),
                SourceConfig::Udmabuf(path) => alloc_udmabuf(path, layout),
                SourceConfig::Dumb(node) => alloc_dumb(node, layout),
            };
            match result {
                Ok((fd, layout)) => {
                    return Ok(HeapBuffer {
                        fd,
                        layout,
                        source: config.source(),
                    })
                }
                Err(error) => attempts.push(Attempt {
                    source: config.source(),
                    error,
                }),
            }
        }
        Err(HeapError::Exhausted { attempts })
    }
}

fn open_node(path: &Path, write: bool) -> Result<OwnedFd, SourceError> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|source| SourceError::Open {
            path: path.to_owned(),
            source,
        })
}

fn alloc_dma_heap(path: &Path, layout: Layout) -> Result<(OwnedFd, Layout), SourceError> {
    let heap = open_node(path, false)?;
    let fd = sys::dma_heap_alloc(heap.as_fd(), layout.size as u64).map_err(|source| {
        SourceError::DmaHeapAlloc {
            len: layout.size,
            source,
        }
    })?;
    Ok((fd, layout))
}

fn alloc_udmabuf(path: &Path, layout: Layout) -> Result<(OwnedFd, Layout), SourceError> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let memfd_err = |step| {
        move |e: rustix::io::Errno| SourceError::Memfd {
            step,
            source: e.into(),
        }
    };
    // Open the device first: without it there is no point in making the memfd.
    let dev = open_node(path, true)?;
    let memfd = rustix::fs::memfd_create(
        "lockstep-heap",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(memfd_err("memfd_create"))?;
    rustix::fs::ftruncate(&memfd, layout.size as u64).map_err(memfd_err("ftruncate"))?;
    // udmabuf requires F_SEAL_SHRINK and rejects F_SEAL_WRITE (drivers/dma-buf/udmabuf.c).
    rustix::fs::fcntl_add_seals(
        &memfd,
        SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
    )
    .map_err(memfd_err("F_ADD_SEALS"))?;
    let fd = sys::udmabuf_create(dev.as_fd(), memfd.as_fd(), layout.size as u64)
        .map_err(SourceError::UdmabufCreate)?;
    // The dmabuf holds the memfd's pages; the memfd itself may close now.
    Ok((fd, layout))
}

fn alloc_dumb(node: &DumbNode, layout: Layout) -> Result<(OwnedFd, Layout), SourceError> {
    match node {
        DumbNode::Path(path) => alloc_dumb_on(path, layout),
        DumbNode::Auto => {
            let mut why = Vec::new();
            for path in card_nodes() {
                match alloc_dumb_on(&path, layout) {
                    Ok(done) => return Ok(done),
                    Err(e) => why.push(error_chain(&e)),
                }
            }
            if why.is_empty() {
                why.push(format!("no {DRI_DIR}/card* node"));
            }
            Err(SourceError::NoDumbNode(why.join("; ")))
        }
    }
}

/// `/dev/dri/cardN` in name order.
fn card_nodes() -> Vec<PathBuf> {
    let Ok(dir) = fs::read_dir(DRI_DIR) else {
        return Vec::new();
    };
    let mut nodes: Vec<PathBuf> = dir
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| {
                n.strip_prefix("card").is_some_and(|rest| {
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
                })
            })
        })
        .map(|e| e.path())
        .collect();
    nodes.sort();
    nodes
}

fn alloc_dumb_on(path: &Path, layout: Layout) -> Result<(OwnedFd, Layout), SourceError> {
    let drm = open_node(path, true)?;
    let bpp = layout.fourcc.bytes_per_pixel().unwrap_or(4);
    let (handle, pitch, size) =
        sys::mode_create_dumb(drm.as_fd(), layout.width, layout.height, bpp * 8).map_err(
            |source| SourceError::CreateDumb {
                node: path.to_owned(),
                source,
            },
        )?;
    let exported = sys::prime_handle_to_fd(drm.as_fd(), handle);
    // The dmabuf (if any) keeps the memory alive; the handle is not needed any more. A failed
    // close only leaks the handle until `drm` closes a few lines below.
    let _ = sys::gem_close(drm.as_fd(), handle);
    let fd = exported.map_err(|source| SourceError::PrimeExport {
        node: path.to_owned(),
        source,
    })?;
    let bad = |what: String| SourceError::DumbLayout {
        node: path.to_owned(),
        what,
    };
    let size = usize::try_from(size).map_err(|_| bad(format!("size {size}")))?;
    if pitch < layout.width * bpp || pitch % bpp != 0 {
        return Err(bad(format!("pitch {pitch} for width {}", layout.width)));
    }
    if size < pitch as usize * layout.height as usize {
        return Err(bad(format!(
            "size {size} < pitch {pitch} x {} rows",
            layout.height
        )));
    }
    Ok((
        fd,
        Layout {
            stride: pitch,
            size,
            ..layout
        },
    ))
}

/// A linear dmabuf from a [`HeapAllocator`]: the fd, its layout and where it came from.
#[derive(Debug)]
pub struct HeapBuffer {
    fd: OwnedFd,
    layout: Layout,
    source: Source,
}

impl HeapBuffer {
    /// The layout (stride and size as the allocator made them).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The allocator that made it.
    pub fn source(&self) -> Source {
        self.source
    }

    /// A new fd for the same dmabuf (to send to a compositor, which takes ownership).
    pub fn try_clone_fd(&self) -> io::Result<OwnedFd> {
        self.fd.try_clone()
    }

    /// The dmabuf fd.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Maps the whole buffer into memory (shared, read-write). Access it through
    /// [`Mapping::access`].
    pub fn map(&self) -> Result<Mapping<'_>, HeapError> {
        // SAFETY: a fresh shared mapping chosen by the kernel (null hint), so it overlaps no
        // Rust object; `Mapping` owns it and unmaps it exactly once in Drop.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                self.layout.size,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &self.fd,
                0,
            )
        }
        .map_err(|e| HeapError::Map(e.into()))?;
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| HeapError::Map(io::Error::other("mmap returned null")))?;
        Ok(Mapping {
            buffer: self,
            ptr,
            len: self.layout.size,
        })
    }

    /// Sets every pixel to `pixel` (a native 32-bit value, e.g. `0xAARRGGBB` for ARGB8888),
    /// in one bracketed write access.
    pub fn fill(&self, pixel: u32) -> Result<(), HeapError> {
        let layout = self.layout;
        let mut map = self.map()?;
        let mut bytes = map.access::<Write>()?;
        let value = pixel.to_le_bytes();
        let row_bytes = layout.width as usize * 4;
        for row in bytes
            .chunks_mut(layout.stride as usize)
            .take(layout.height as usize)
        {
            let used = row_bytes.min(row.len());
            for px in row[..used].chunks_exact_mut(4) {
                px.copy_from_slice(&value);
            }
        }
        bytes.end()
    }

    /// The native 32-bit value of pixel (`x`, `y`), read in one bracketed read access.
    pub fn pixel(&self, x: u32, y: u32) -> Result<Option<u32>, HeapError> {
        let Some(at) = self.layout.pixel_offset(x, y) else {
            return Ok(None);
        };
        let mut map = self.map()?;
        let bytes = map.access::<Read>()?;
        let value = bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes);
        bytes.end()?;
        Ok(value)
    }
}

impl AsFd for HeapBuffer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A CPU mapping of a [`HeapBuffer`]; unmapped on drop. The bytes are reachable only through
/// a [`CpuAccess`] guard, so every access is bracketed by `DMA_BUF_IOCTL_SYNC`.
#[derive(Debug)]
pub struct Mapping<'b> {
    buffer: &'b HeapBuffer,
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping<'_> {
    /// Begins a CPU access of mode `A` (`SYNC_START`); it ends (`SYNC_END`) when the guard
    /// drops, or with [`CpuAccess::end`] to see its error.
    pub fn access<A: AccessMode>(&mut self) -> Result<CpuAccess<'_, A>, HeapError> {
        sys::dma_buf_sync(
            self.buffer.fd.as_fd(),
            sys::DMA_BUF_SYNC_START | A::SYNC_FLAGS,
        )
        .map_err(|source| HeapError::Sync {
            phase: "start",
            source,
        })?;
        Ok(CpuAccess {
            fd: self.buffer.fd.as_fd(),
            ptr: self.ptr,
            len: self.len,
            ended: false,
            _borrow: PhantomData,
        })
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, for a successful allocation).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mapping<'_> {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly the mapping made in HeapBuffer::map, unmapped only here;
        // no CpuAccess (which borrows self mutably) can outlive this.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// How a [`CpuAccess`] uses the buffer: [`Read`], [`Write`] or [`ReadWrite`].
pub trait AccessMode: sealed::Sealed {
    /// The direction bits of `DMA_BUF_IOCTL_SYNC`.
    const SYNC_FLAGS: u64;
}

/// Modes that may write (their guards deref mutably).
pub trait Writable: AccessMode {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Read {}
    impl Sealed for super::Write {}
    impl Sealed for super::ReadWrite {}
}

/// The CPU only reads.
#[derive(Debug)]
pub enum Read {}
/// The CPU only writes.
#[derive(Debug)]
pub enum Write {}
/// The CPU reads and writes.
#[derive(Debug)]
pub enum ReadWrite {}

impl AccessMode for Read {
    const SYNC_FLAGS: u64 = sys::DMA_BUF_SYNC_READ;
}
impl AccessMode for Write {
    const SYNC_FLAGS: u64 = sys::DMA_BUF_SYNC_WRITE;
}
impl AccessMode for ReadWrite {
    const SYNC_FLAGS: u64 = sys::DMA_BUF_SYNC_READ | sys::DMA_BUF_SYNC_WRITE;
}
impl Writable for Write {}
impl Writable for ReadWrite {}

/// One bracketed CPU access: `SYNC_START` was issued when it was made, `SYNC_END` is issued
/// when it drops (errors ignored there; call [`end`](CpuAccess::end) to see them). Derefs to
/// the buffer's bytes; mutably only for [`Writable`] modes.
#[derive(Debug)]
pub struct CpuAccess<'m, A: AccessMode> {
    fd: BorrowedFd<'m>,
    ptr: NonNull<u8>,
    len: usize,
    ended: bool,
    /// The exclusive borrow of the [`Mapping`] (so at most one access at a time) and the mode.
    _borrow: PhantomData<(&'m mut (), A)>,
}

impl<A: AccessMode> CpuAccess<'_, A> {
    /// Ends the access (`SYNC_END`) and reports its error.
    pub fn end(mut self) -> Result<(), HeapError> {
        self.ended = true;
        self.sync_end()
    }

    fn sync_end(&self) -> Result<(), HeapError> {
        sys::dma_buf_sync(self.fd, sys::DMA_BUF_SYNC_END | A::SYNC_FLAGS).map_err(|source| {
            HeapError::Sync {
                phase: "end",
                source,
            }
        })
    }
}

impl<A: AccessMode> Drop for CpuAccess<'_, A> {
    fn drop(&mut self) {
        if !self.ended {
            // Nowhere to report it; `end()` exists for callers that care.
            let _ = self.sync_end();
        }
    }
}

impl<A: AccessMode> Deref for CpuAccess<'_, A> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: ptr/len describe the live mapping of the `Mapping` this guard borrows
        // exclusively for 'm (it cannot be unmapped meanwhile, and no other guard exists);
        // the mapping is readable.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<A: Writable> DerefMut for CpuAccess<'_, A> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and the mapping is writable (PROT_WRITE on an O_RDWR dmabuf);
        // `&mut self` makes this the only live slice.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

// SAFETY: a Mapping is a plain shared memory mapping plus a shared borrow of the buffer; the
// raw pointer is only dereferenced through CpuAccess, which needs `&mut Mapping`.
unsafe impl Send for Mapping<'_> {}

#[cfg(test)]
mod tests;
