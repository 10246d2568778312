//! Buffers the pipeline puts on planes: dumb buffers lockstep draws into (the composited
//! frame, the cursor image) and framebuffers imported from client dmabufs.
//!
//! Every kernel object here is owned by a value whose `Drop` gives it back (munmap, RMFB,
//! GEM close), so a prepared frame that is dropped, or a buffer that dies, leaks nothing.
//! GEM handles are reference-counted per device: importing the same dmabuf twice gives the
//! same handle, and closing it once would free it under the other user.

use std::{
    cell::RefCell,
    collections::HashMap,
    fmt,
    os::fd::{AsFd, BorrowedFd},
    ptr::NonNull,
    rc::Rc,
};

use drm::{
    buffer::{self, DrmFourcc, DrmModifier, PlanarBuffer},
    control::{dumbbuffer::DumbBuffer, framebuffer, Device as ControlDevice, FbCmd2Flags},
};

use super::{KmsDevice, KmsError};

/// Reference counts of the GEM handles a device's imports hold.
#[derive(Debug, Default)]
pub(crate) struct GemRefs(RefCell<HashMap<u32, u32>>);

impl GemRefs {
    fn import(&self, dev: &KmsDevice, fd: BorrowedFd<'_>) -> Result<buffer::Handle, KmsError> {
        let handle = dev
            .prime_fd_to_buffer(fd)
            .map_err(|e| KmsError::io("importing a dmabuf (PRIME fd to handle)", e))?;
        *self.0.borrow_mut().entry(u32::from(handle)).or_insert(0) += 1;
        Ok(handle)
    }

    fn release(&self, dev: &KmsDevice, handle: buffer::Handle) {
        let mut refs = self.0.borrow_mut();
        let key = u32::from(handle);
        let Some(count) = refs.get_mut(&key) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            refs.remove(&key);
            if let Err(err) = dev.close_buffer(handle) {
                tracing::warn!(%err, handle = key, "closing a GEM handle failed");
            }
        }
    }

    /// How many distinct GEM handles imports hold now.
    pub(crate) fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

/// A device shared by the buffers made on it.
pub type SharedDevice = Rc<DeviceShared>;

/// A [`KmsDevice`] and the GEM reference counts of its imports.
#[derive(Debug)]
pub struct DeviceShared {
    /// The device.
    pub dev: KmsDevice,
    pub(crate) gem: GemRefs,
}

impl DeviceShared {
    /// Shares `dev`.
    pub fn new(dev: KmsDevice) -> SharedDevice {
        Rc::new(Self {
            dev,
            gem: GemRefs::default(),
        })
    }

    /// GEM handles held by client-buffer imports (for leak checks).
    pub fn imported_gem_handles(&self) -> usize {
        self.gem.len()
    }
}

/// A CPU-mapped dumb buffer with a framebuffer: a composited frame or a cursor image.
pub struct DumbSlot {
    dev: SharedDevice,
    buffer: Option<DumbBuffer>,
    fb: framebuffer::Handle,
    map: NonNull<u8>,
    len: usize,
    size: (u32, u32),
    stride: u32,
}

impl fmt::Debug for DumbSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DumbSlot")
            .field("fb", &self.fb)
            .field("size", &self.size)
            .finish()
    }
}

impl DumbSlot {
    /// A `width`×`height` buffer of `format` (XRGB8888 or ARGB8888), mapped, with a framebuffer.
    pub fn new(
        dev: &SharedDevice,
        width: u32,
        height: u32,
        format: DrmFourcc,
    ) -> Result<Self, KmsError> {
        let buffer = dev
            .dev
            .create_dumb_buffer((width, height), format, 32)
            .map_err(|e| KmsError::io(format!("allocating a {width}x{height} dumb buffer"), e))?;
        let stride = buffer::Buffer::pitch(&buffer);
        let handle = buffer::Buffer::handle(&buffer);
        // From here on `guard` destroys what exists if a later step fails.
        let mut guard = DumbGuard {
            dev: dev.clone(),
            buffer: Some(buffer),
            fb: None,
        };
        let fb = dev
            .dev
            .add_planar_framebuffer(
                &DumbPlanes {
                    size: (width, height),
                    format,
                    stride,
                    handle,
                },
                FbCmd2Flags::empty(),
            )
            .map_err(|e| KmsError::io("creating a framebuffer for a dumb buffer", e))?;
        guard.fb = Some(fb);
        let len = stride as usize * height as usize;
        let map = drm_ffi::mode::dumbbuffer::map(dev.dev.as_fd(), u32::from(handle), 0, 0)
            .map_err(|e| KmsError::io("preparing a dumb buffer mapping", e))?;
        // SAFETY: a fresh shared mapping of the dumb buffer's `len` bytes at the offset the
        // kernel gave for it; nothing else in this process maps that range. It is unmapped in
        // Drop before the buffer is destroyed.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                dev.dev.as_fd(),
                map.offset,
            )
        }
        .map_err(|e| KmsError::io("mapping a dumb buffer", e.into()))?;
        let map = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| {
            KmsError::io(
                "mapping a dumb buffer",
                std::io::Error::other("null mapping"),
            )
        })?;
        let buffer = guard.buffer.take();
        guard.fb = None;
        Ok(Self {
            dev: dev.clone(),
            buffer,
            fb,
            map,
            len,
            size: (width, height),
            stride,
        })
    }

    /// The framebuffer to put on a plane.
    pub fn fb(&self) -> framebuffer::Handle {
        self.fb
    }

    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// Bytes per row.
    pub fn stride(&self) -> u32 {
        self.stride
    }

    /// The pixels, row by row (`stride` bytes each).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `map` points at `len` bytes mapped read-write for as long as `self` lives,
        // and `&mut self` makes this the only access from Rust.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_ptr(), self.len) }
    }

    /// The pixels, read-only.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: as in `bytes_mut`, shared.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.len) }
    }

    /// The start of the mapping, for a renderer that draws into it (pixman).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.map.as_ptr()
    }
}

impl Drop for DumbSlot {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `new` with this length and is not used after this.
        if let Err(err) = unsafe { rustix::mm::munmap(self.map.as_ptr().cast(), self.len) } {
            tracing::warn!(%err, "unmapping a dumb buffer failed");
        }
        drop(DumbGuard {
            dev: self.dev.clone(),
            buffer: self.buffer.take(),
            fb: Some(self.fb),
        });
    }
}

/// Destroys a half-made dumb buffer.
struct DumbGuard {
    dev: SharedDevice,
    buffer: Option<DumbBuffer>,
    fb: Option<framebuffer::Handle>,
}

impl Drop for DumbGuard {
    fn drop(&mut self) {
        if let Some(fb) = self.fb.take() {
            if let Err(err) = self.dev.dev.destroy_framebuffer(fb) {
                tracing::warn!(%err, "removing a framebuffer failed");
            }
        }
        if let Some(buffer) = self.buffer.take() {
            if let Err(err) = self.dev.dev.destroy_dumb_buffer(buffer) {
                tracing::warn!(%err, "destroying a dumb buffer failed");
            }
        }
    }
}

struct DumbPlanes {
    size: (u32, u32),
    format: DrmFourcc,
    stride: u32,
    handle: buffer::Handle,
}

impl PlanarBuffer for DumbPlanes {
    fn size(&self) -> (u32, u32) {
        self.size
    }
    fn format(&self) -> DrmFourcc {
        self.format
    }
    fn modifier(&self) -> Option<DrmModifier> {
        None
    }
    fn pitches(&self) -> [u32; 4] {
        [self.stride, 0, 0, 0]
    }
    fn handles(&self) -> [Option<buffer::Handle>; 4] {
        [Some(self.handle), None, None, None]
    }
    fn offsets(&self) -> [u32; 4] {
        [0; 4]
    }
}

impl DeviceShared {
    /// Whether `dmabuf` can be mapped as a dumb buffer of this device (`MODE_MAP_DUMB` on its
    /// GEM handle here). Mesa's software KMS driver (kms_swrast, llvmpipe on a display-only
    /// device such as vkms) reads imported dmabufs that way and crashes when the kernel
    /// refuses, which it does for buffers another device exported (the kernel maps no
    /// imported object as dumb). A GLES renderer on such a driver asks this before it lets
    /// EGL import a client buffer.
    pub fn dumb_mappable(&self, dmabuf: BorrowedFd<'_>) -> Result<bool, KmsError> {
        // Through the reference counts: the client's buffer may be on a plane with this very
        // handle, which closing it here must not free.
        let handle = self.gem.import(&self.dev, dmabuf)?;
        let mapped = drm_ffi::mode::dumbbuffer::map(self.dev.as_fd(), u32::from(handle), 0, 0);
        self.gem.release(&self.dev, handle);
        Ok(mapped.is_ok())
    }
}

/// One plane of a client dmabuf.
#[derive(Debug, Clone, Copy)]
pub struct DmabufPlane<'a> {
    /// The dmabuf fd.
    pub fd: BorrowedFd<'a>,
    /// Byte offset of the plane.
    pub offset: u32,
    /// Bytes per row.
    pub stride: u32,
}

/// A client dmabuf as KMS needs to see it.
#[derive(Debug, Clone)]
pub struct DmabufDesc<'a> {
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// DRM fourcc code.
    pub format: u32,
    /// Format modifier (`DRM_FORMAT_MOD_INVALID` for "implicit").
    pub modifier: u64,
    /// Up to four planes.
    pub planes: Vec<DmabufPlane<'a>>,
}

/// A framebuffer made from a client dmabuf; removed (and its GEM handles closed) on drop.
#[derive(Debug)]
pub struct ClientFb {
    dev: SharedDevice,
    fb: framebuffer::Handle,
    handles: Vec<buffer::Handle>,
    size: (u32, u32),
    format: u32,
}

impl ClientFb {
    /// Imports `desc` (GEM handles from its fds, then ADDFB2).
    pub fn import(dev: &SharedDevice, desc: &DmabufDesc<'_>) -> Result<Self, KmsError> {
        if desc.planes.is_empty() || desc.planes.len() > 4 {
            return Err(KmsError::BadBuffer(format!(
                "a dmabuf needs 1 to 4 planes, this one has {}",
                desc.planes.len()
            )));
        }
        let format = DrmFourcc::try_from(desc.format)
            .map_err(|_| KmsError::BadBuffer(format!("unknown fourcc code {:#x}", desc.format)))?;
        let mut planes = ClientPlanes {
            size: desc.size,
            format,
            modifier: desc.modifier,
            handles: [None; 4],
            pitches: [0; 4],
            offsets: [0; 4],
        };
        // Closes the handles imported so far if a later step fails.
        let mut guard = HandleGuard {
            dev,
            handles: Vec::new(),
        };
        for (i, plane) in desc.planes.iter().enumerate() {
            let handle = dev.gem.import(&dev.dev, plane.fd)?;
            guard.handles.push(handle);
            planes.handles[i] = Some(handle);
            planes.pitches[i] = plane.stride;
            planes.offsets[i] = plane.offset;
        }
        let flags = if planes.modifier().is_some() {
            FbCmd2Flags::MODIFIERS
        } else {
            FbCmd2Flags::empty()
        };
        let fb = dev
            .dev
            .add_planar_framebuffer(&planes, flags)
            .map_err(|e| {
                KmsError::io(
                    format!(
                        "creating a framebuffer for a {}x{} {:?} dmabuf",
                        desc.size.0, desc.size.1, format
                    ),
                    e,
                )
            })?;
        Ok(ClientFb {
            dev: dev.clone(),
            fb,
            handles: std::mem::take(&mut guard.handles),
            size: desc.size,
            format: desc.format,
        })
    }

    /// The framebuffer.
    pub fn fb(&self) -> framebuffer::Handle {
        self.fb
    }

    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// DRM fourcc code.
    pub fn format(&self) -> u32 {
        self.format
    }
}

impl Drop for ClientFb {
    fn drop(&mut self) {
        if let Err(err) = self.dev.dev.destroy_framebuffer(self.fb) {
            tracing::warn!(%err, "removing a client framebuffer failed");
        }
        for handle in std::mem::take(&mut self.handles) {
            self.dev.gem.release(&self.dev.dev, handle);
        }
    }
}

struct HandleGuard<'a> {
    dev: &'a SharedDevice,
    handles: Vec<buffer::Handle>,
}

impl Drop for HandleGuard<'_> {
    fn drop(&mut self) {
        for handle in self.handles.drain(..) {
            self.dev.gem.release(&self.dev.dev, handle);
        }
    }
}

struct ClientPlanes {
    size: (u32, u32),
    format: DrmFourcc,
    modifier: u64,
    handles: [Option<buffer::Handle>; 4],
    pitches: [u32; 4],
    offsets: [u32; 4],
}

impl PlanarBuffer for ClientPlanes {
    fn size(&self) -> (u32, u32) {
        self.size
    }
    fn format(&self) -> DrmFourcc {
        self.format
    }
    fn modifier(&self) -> Option<DrmModifier> {
        // "Invalid" means the producer left the layout implicit: ADDFB2 without modifiers.
        let m = DrmModifier::from(self.modifier);
        (!matches!(m, DrmModifier::Invalid)).then_some(m)
    }
    fn pitches(&self) -> [u32; 4] {
        self.pitches
    }
    fn handles(&self) -> [Option<buffer::Handle>; 4] {
        self.handles
    }
    fn offsets(&self) -> [u32; 4] {
        self.offsets
    }
}
