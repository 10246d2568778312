//! Composition on KMS: GLES on the display's own device, or pixman on the CPU.
//!
//! # GLES
//!
//! [`KmsGles`] opens GBM on the KMS device, an EGL display on that GBM device, and smithay's
//! `GlesRenderer` on it. GBM gets an open file of its own (the device's render node, or its
//! primary node opened again on a display-only device such as vkms), never the pipeline's
//! fd or a `dup` of it: GEM handles belong to an open file, and Mesa closes the handles it
//! made whenever it is done with a buffer, which would free handles the pipeline holds for
//! the same buffers (a crash, found by the fault-injection test). Each output gets
//! [`FRAME_SLOTS`](lockstep_render::kms::FRAME_SLOTS) GBM buffer objects (XRGB8888,
//! `SCANOUT | RENDERING`, GBM's implicit layout), exported as dmabufs, imported into the
//! pipeline's file and added as framebuffers without modifiers ([`ClientFb::import`]), and
//! handed to the pipeline with
//! [`OutputPipeline::with_frames`](lockstep_render::kms::OutputPipeline::with_frames). From
//! there a composited frame goes through exactly the pipeline's prepare → commit → cleanup
//! that dumb buffers go through, fault injection included: the pipeline only ever sees
//! framebuffers.
//!
//! **Finished before the commit, or fenced.** A GLES frame is complete when the GPU says so,
//! not when the draw calls return. Where EGL has `EGL_ANDROID_native_fence_sync` and the
//! primary plane takes `IN_FENCE_FD`, the frame's fence is exported as a sync_file
//! (smithay's `SyncPoint::export`) and goes to the plane with the commit: the display waits
//! for the GPU, the CPU does not. Otherwise (Mesa's llvmpipe, the VM's kms_swrast, has only
//! `EGL_KHR_fence_sync`) lockstep waits for the frame's fence (`SyncPoint::wait`, an
//! `eglClientWaitSync`) right after rendering and before prepare; on llvmpipe that wait is
//! the rendering itself (the rasterizer threads run then); its cost is in BENCHMARKS.md ("KMS
//! composition: GLES vs pixman").
//!
//! **Client buffers.** Acquire points are waited for by the sync layer before a commit is
//! applied, so a buffer GLES samples was signalled before the frame that reads it was even
//! built (the GPU-side wait, `eglWaitSync` on an imported acquire fence, is not used: the
//! commit would have to be applied before its acquire point signalled, which breaks the sync
//! layer's rule that an unsignalled buffer's state is never applied). Release points of
//! composited buffers: with frames finished before the commit, they are signalled as with
//! pixman; with fenced frames, they wait in the release queue and get the last frame's fence
//! imported (`handlers/drm_syncobj.rs`, "Release"), so the kernel signals them when the GPU
//! has finished reading. **What ran where**: the fenced path's plane and release plumbing is
//! tested in the VM with sw_sync fences in place of the GPU's; no machine lockstep has been
//! tested on had native fences, so the export itself has not run.
//!
//! **kms_swrast.** Mesa's software driver for display-only devices (llvmpipe on vkms, or on
//! a virtual GPU without 3D) reads a dmabuf by mapping it as a dumb buffer of the device.
//! The kernel refuses that for buffers another device exported (a vgem or dma-heap
//! buffer), and Mesa 22.3 then crashes inside `eglCreateImage`. So on such a driver every
//! client dmabuf is first checked with
//! [`DeviceShared::dumb_mappable`](lockstep_render::kms::DeviceShared::dumb_mappable) and
//! refused (`zwp_linux_buffer_params_v1.failed`, or `invalid_wl_buffer` for `create_immed`)
//! when the driver could not read it; a hardware driver imports any dmabuf itself and needs
//! no such check. Measured in the VM: without the check, a client's dma-heap buffer killed
//! lockstep with a segfault in Mesa (`kms_gles_refuses_foreign_dmabufs...` in
//! `compositor/tests/in_process/kms_gles.rs`).
//!
//! # Which one
//!
//! `[render] renderer` picks: `pixman`, or `gles`/`auto`, which try GLES and fall back to
//! pixman with one log line that says why (no libEGL, no GBM driver for the device, no
//! context). `auto` also takes pixman when GL would run in software (llvmpipe, softpipe), as
//! wlroots does: measured in the VM, llvmpipe took about 90 times pixman's time to composite
//! a frame (BENCHMARKS.md, "KMS composition: GLES vs pixman"), and kms_swrast reads fewer
//! client buffers than pixman (see above). `lockstep msg outputs` shows the renderer in
//! use.

use std::{os::fd::OwnedFd, sync::Arc};

use anyhow::{anyhow, bail, Context, Result};
use lockstep_render::kms::{
    ClientFb, DmabufDesc, DmabufPlane, RenderTarget, SharedDevice, FRAME_SLOTS,
};
use smithay::{
    backend::{
        allocator::{
            dmabuf::{AsDmabuf, Dmabuf},
            format::FormatSet,
            gbm::{GbmBuffer, GbmBufferFlags, GbmDevice},
            Fourcc,
        },
        egl::{EGLContext, EGLDisplay},
        renderer::{
            damage::OutputDamageTracker,
            element::{RenderElement, RenderElementStates},
            gles::GlesRenderer,
            pixman::PixmanRenderer,
            Bind, ImportDma, ImportMemWl,
        },
    },
    reexports::{
        pixman::{FormatCode, Image},
        wayland_server::protocol::wl_shm,
    },
};
use tracing::{info, warn};

use crate::render::CLEAR_COLOR;

/// GLES on the KMS device through GBM and EGL.
pub struct KmsGles {
    renderer: GlesRenderer,
    /// Keeps the GBM device for new outputs' buffers (the EGL display holds a clone).
    gbm: GbmDevice<Arc<OwnedFd>>,
    /// What GL_RENDERER says (`llvmpipe (LLVM 15.0.6, 256 bits)`).
    name: String,
    /// Mesa's software driver: client dmabufs are checked before EGL sees them.
    swrast: bool,
    /// EGL has `EGL_ANDROID_native_fence_sync`: a frame's fence can leave as a sync_file.
    native_fences: bool,
}

impl KmsGles {
    /// GBM, EGL and a GLES renderer on `dev`.
    pub fn new(dev: &SharedDevice) -> Result<Self> {
        // Its own open file (module docs): the render node, else the primary node again.
        let node = dev
            .dev
            .render_node()
            .unwrap_or_else(|| dev.dev.path().to_owned());
        let fd = rustix::fs::open(
            &node,
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .with_context(|| format!("cannot open {}", node.display()))?;
        let gbm = GbmDevice::new(Arc::new(fd))
            .with_context(|| format!("no GBM driver for {}", node.display()))?;
        // SAFETY: lockstep creates no other EGLDisplay on this GBM device, so terminating
        // the display when the last handle drops cannot pull it from under other code.
        let display = unsafe { EGLDisplay::new(gbm.clone()) }
            .map_err(|e| anyhow!("cannot create an EGL display on GBM: {e}"))?;
        let context =
            EGLContext::new(&display).map_err(|e| anyhow!("cannot create an EGL context: {e}"))?;
        // SAFETY: the context is new and used by this renderer only, on this thread.
        let mut renderer = unsafe { GlesRenderer::new(context) }
            .map_err(|e| anyhow!("cannot create the GLES renderer: {e:?}"))?;
        let name = crate::render::gl_renderer_name(&mut renderer);
        let swrast = name.contains("llvmpipe") || name.contains("softpipe");
        let native_fences = renderer
            .egl_context()
            .display()
            .extensions()
            .iter()
            .any(|e| e == "EGL_ANDROID_native_fence_sync");
        info!(native_fences, "GLES on KMS: {name}");
        Ok(Self {
            renderer,
            gbm,
            name,
            swrast,
            native_fences,
        })
    }

    /// Buffers for one output of `size`: GBM buffer objects, their framebuffers for the
    /// pipeline, and the dmabufs GLES renders into.
    pub fn frames(
        &mut self,
        dev: &SharedDevice,
        (w, h): (u32, u32),
    ) -> Result<(Vec<ClientFb>, GlesFrames)> {
        let mut fbs = Vec::with_capacity(FRAME_SLOTS);
        let mut buffers = Vec::with_capacity(FRAME_SLOTS);
        for _ in 0..FRAME_SLOTS {
            let bo = self
                .gbm
                .create_buffer_object::<()>(
                    w,
                    h,
                    Fourcc::Xrgb8888,
                    GbmBufferFlags::SCANOUT | GbmBufferFlags::RENDERING,
                )
                .with_context(|| format!("cannot allocate a {w}x{h} GBM buffer"))?;
            let buffer = GbmBuffer::from_bo(bo, true);
            let dmabuf = buffer
                .export()
                .map_err(|e| anyhow!("cannot export a GBM buffer as a dmabuf: {e}"))?;
            let desc = DmabufDesc {
                size: (w, h),
                format: Fourcc::Xrgb8888 as u32,
                // "Invalid": ADDFB2 without modifiers, the layout GBM chose implicitly.
                modifier: u64::from(smithay::backend::allocator::Modifier::Invalid),
                planes: dmabuf
                    .handles()
                    .zip(dmabuf.offsets())
                    .zip(dmabuf.strides())
                    .map(|((fd, offset), stride)| DmabufPlane { fd, offset, stride })
                    .collect(),
            };
            let fb =
                ClientFb::import(dev, &desc).context("cannot add a GBM buffer as a framebuffer")?;
            fbs.push(fb);
            buffers.push((buffer, dmabuf));
        }
        Ok((fbs, GlesFrames { buffers }))
    }

    /// The renderer.
    pub fn renderer_mut(&mut self) -> &mut GlesRenderer {
        &mut self.renderer
    }

    /// Whether GLES can read `dmabuf` (see the module docs on kms_swrast).
    pub fn can_import(&mut self, dev: &SharedDevice, dmabuf: &Dmabuf) -> bool {
        if self.swrast {
            for fd in dmabuf.handles() {
                match dev.dumb_mappable(fd) {
                    Ok(true) => {}
                    Ok(false) => return false,
                    Err(err) => {
                        tracing::debug!(%err, "a dmabuf the device cannot import");
                        return false;
                    }
                }
            }
        }
        self.renderer.import_dmabuf(dmabuf, None).is_ok()
    }
}

/// One output's GBM buffers, by the pipeline's slot index. The framebuffers the pipeline
/// holds keep their own references to the same kernel objects.
pub struct GlesFrames {
    buffers: Vec<(GbmBuffer, Dmabuf)>,
}

impl GlesFrames {
    /// The pixels of frame slot `index` (XRGB8888, with its stride), read through a mapping
    /// of its dmabuf: what the display shows, for tests.
    pub fn read(&self, index: usize) -> Result<(Vec<u8>, u32)> {
        use smithay::backend::allocator::dmabuf::{DmabufMappingMode, DmabufSyncFlags};
        let (_, dmabuf) = self
            .buffers
            .get(index)
            .ok_or_else(|| anyhow!("no frame slot {index}"))?;
        let stride = dmabuf.strides().next().unwrap_or(0);
        let height = smithay::backend::allocator::Buffer::height(dmabuf) as usize;
        dmabuf
            .sync_plane(0, DmabufSyncFlags::START | DmabufSyncFlags::READ)
            .map_err(|e| anyhow!("DMA_BUF_IOCTL_SYNC: {e:?}"))?;
        let mapping = dmabuf
            .map_plane(0, DmabufMappingMode::READ)
            .map_err(|e| anyhow!("cannot map the frame: {e:?}"))?;
        let len = (stride as usize * height).min(mapping.length());
        // SAFETY: the mapping is `mapping.length()` bytes long and lives until the end of
        // this function; the copy reads at most that many.
        let bytes = unsafe { std::slice::from_raw_parts(mapping.ptr().cast::<u8>(), len) }.to_vec();
        let _ = dmabuf.sync_plane(0, DmabufSyncFlags::END | DmabufSyncFlags::READ);
        Ok((bytes, stride))
    }
}

/// What an output's composited frames are drawn into.
pub enum Frames {
    /// The pipeline's mapped dumb buffers (pixman).
    Dumb,
    /// GBM buffers (GLES).
    Gles(GlesFrames),
}

/// The renderer of the KMS backend.
pub enum KmsRenderer {
    /// pixman on the CPU.
    Pixman(PixmanRenderer),
    /// GLES on the display's device.
    Gles(Box<KmsGles>),
}

impl KmsRenderer {
    /// The renderer `[render] renderer` asks for on `dev`; GLES falls back to pixman with one
    /// log line that says why.
    pub fn choose(dev: &SharedDevice, wanted: lockstep_config::Renderer) -> Result<Self> {
        use lockstep_config::Renderer as Wanted;
        if wanted != Wanted::Pixman {
            match KmsGles::new(dev) {
                Ok(gles) if gles.swrast && wanted == Wanted::Auto => info!(
                    gl = %gles.name,
                    "GLES would run in software here; compositing with pixman, which is \
                     faster and reads more buffers ([render] renderer = \"gles\" forces GLES)"
                ),
                Ok(gles) => {
                    info!(gl = %gles.name, device = %dev.dev.path().display(), "KMS composition with GLES");
                    return Ok(KmsRenderer::Gles(Box::new(gles)));
                }
                Err(err) => warn!(
                    device = %dev.dev.path().display(),
                    "GLES is not available ({err:#}); compositing with pixman on the CPU"
                ),
            }
        } else {
            info!("KMS composition with pixman ([render] renderer = \"pixman\")");
        }
        Ok(KmsRenderer::Pixman(
            PixmanRenderer::new().context("cannot create the pixman renderer")?,
        ))
    }

    /// Whether composited frames can leave with a fence (GLES with
    /// `EGL_ANDROID_native_fence_sync`) instead of being finished before the commit.
    pub fn native_fences(&self) -> bool {
        match self {
            KmsRenderer::Gles(g) => g.native_fences,
            KmsRenderer::Pixman(_) => false,
        }
    }

    /// `pixman`, or `gles (GL_RENDERER)`, for `lockstep msg outputs`.
    pub fn name(&self) -> String {
        match self {
            KmsRenderer::Pixman(_) => "pixman".into(),
            KmsRenderer::Gles(g) => format!("gles ({})", g.name),
        }
    }

    /// The shm formats the renderer reads.
    pub fn shm_formats(&self) -> Vec<wl_shm::Format> {
        match self {
            KmsRenderer::Pixman(r) => r.shm_formats().collect(),
            KmsRenderer::Gles(g) => g.renderer.shm_formats().collect(),
        }
    }

    /// The dmabuf formats the renderer reads.
    pub fn dmabuf_formats(&self) -> FormatSet {
        match self {
            KmsRenderer::Pixman(r) => r.dmabuf_formats(),
            KmsRenderer::Gles(g) => g.renderer.dmabuf_formats(),
        }
    }

    /// Whether the renderer can read `dmabuf` (validation when a client creates one).
    pub fn import_dmabuf(&mut self, dev: &SharedDevice, dmabuf: &Dmabuf) -> bool {
        match self {
            KmsRenderer::Pixman(r) => r.import_dmabuf(dmabuf, None).is_ok(),
            KmsRenderer::Gles(g) => g.can_import(dev, dmabuf),
        }
    }
}

/// One composited frame, as [`Composite::composite`] left it.
pub struct Composited {
    /// Whether anything was drawn.
    pub damaged: bool,
    /// The elements' states (for presentation feedback).
    pub states: RenderElementStates,
    /// The renderer's fence of the frame as a sync_file, when the frame may still be in
    /// progress (native fences, and the caller allowed it); `None`: complete.
    pub render_fence: Option<OwnedFd>,
}

/// Drawing one composited frame into the pipeline's render target.
pub trait Composite: smithay::backend::renderer::Renderer + Sized {
    /// Renders the damage of `elements` into `target` (found in `frames`). With
    /// `fence_allowed` (the primary plane takes `IN_FENCE_FD`) a renderer with native fences
    /// returns the frame's fence instead of waiting for it; otherwise the frame is complete
    /// when this returns.
    fn composite<E: RenderElement<Self>>(
        &mut self,
        frames: &mut Frames,
        target: RenderTarget<'_>,
        tracker: &mut OutputDamageTracker,
        elements: &[E],
        fence_allowed: bool,
    ) -> Result<Composited>;
}

impl Composite for PixmanRenderer {
    fn composite<E: RenderElement<Self>>(
        &mut self,
        _frames: &mut Frames,
        target: RenderTarget<'_>,
        tracker: &mut OutputDamageTracker,
        elements: &[E],
        _fence_allowed: bool,
    ) -> Result<Composited> {
        let Some(slot) = target.dumb else {
            bail!("pixman needs the pipeline's dumb buffers");
        };
        let (w, h) = slot.size();
        let stride = slot.stride() as usize;
        // SAFETY: the slot's mapping holds `stride * h` bytes and outlives `image`, which is
        // dropped at the end of this function, before the slot is used for anything else.
        let mut image = unsafe {
            Image::from_raw_mut(
                FormatCode::X8R8G8B8,
                w as usize,
                h as usize,
                slot.as_mut_ptr().cast::<u32>(),
                stride,
                false,
            )
        }
        .map_err(|_| anyhow!("pixman cannot wrap the {w}x{h} dumb buffer"))?;
        let mut framebuffer = self
            .bind(&mut image)
            .context("cannot bind the dumb buffer")?;
        let result = tracker
            .render_output(self, &mut framebuffer, target.age, elements, CLEAR_COLOR)
            .map_err(|err| anyhow!("pixman rendering failed: {err:?}"))?;
        // pixman draws on the CPU: the frame is complete.
        Ok(Composited {
            damaged: result.damage.is_some(),
            states: result.states,
            render_fence: None,
        })
    }
}

impl Composite for GlesRenderer {
    fn composite<E: RenderElement<Self>>(
        &mut self,
        frames: &mut Frames,
        target: RenderTarget<'_>,
        tracker: &mut OutputDamageTracker,
        elements: &[E],
        fence_allowed: bool,
    ) -> Result<Composited> {
        let Frames::Gles(frames) = frames else {
            bail!("GLES needs the output's GBM buffers");
        };
        let (_, dmabuf) = frames
            .buffers
            .get_mut(target.index)
            .ok_or_else(|| anyhow!("no GBM buffer for frame slot {}", target.index))?;
        let mut framebuffer = self
            .bind(dmabuf)
            .map_err(|e| anyhow!("cannot bind the GBM buffer: {e:?}"))?;
        let result = tracker
            .render_output(self, &mut framebuffer, target.age, elements, CLEAR_COLOR)
            .map_err(|err| anyhow!("GLES rendering failed: {err:?}"))?;
        let damaged = result.damage.is_some();
        // The fence goes to the plane where it can (module docs); else the frame is finished
        // before the commit.
        let render_fence = if fence_allowed {
            result.sync.export()
        } else {
            None
        };
        if render_fence.is_none() {
            result
                .sync
                .wait()
                .map_err(|_| anyhow!("waiting for the GLES frame failed"))?;
        }
        Ok(Composited {
            damaged,
            states: result.states,
            render_fence,
        })
    }
}
