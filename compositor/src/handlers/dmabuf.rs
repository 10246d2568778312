//! zwp_linux_dmabuf_v1: client buffers shared as dmabufs.
//!
//! Version 4 (with feedback) needs a DRM device the client can allocate on; when lockstep has
//! one (a render node) it advertises v4 with that device as the main device. Without any DRM
//! device (headless CI machines, llvmpipe under Xvfb) it advertises version 3 with the
//! renderer's formats, which is what clients can use there.

use smithay::{
    backend::{
        allocator::{dmabuf::Dmabuf, format::FormatSet},
        renderer::ImportDma,
    },
    delegate_dmabuf,
    reexports::wayland_server::Resource,
    wayland::dmabuf::{
        DmabufFeedbackBuilder, DmabufGlobal, DmabufHandler, DmabufState, ImportNotifier,
    },
};
use tracing::{debug, info, warn};

use crate::{
    client_memory::{DmabufIdentity, DmabufMemory},
    state::{Core, State},
};

/// Creates the dmabuf global for `formats`; v4 with feedback when `main_device` is known.
pub fn create_dmabuf_global(core: &mut Core, formats: FormatSet, main_device: Option<libc::dev_t>) {
    let mut state = DmabufState::new();
    let global = match main_device {
        Some(dev) => match DmabufFeedbackBuilder::new(dev, formats.clone()).build() {
            Ok(feedback) => {
                info!(device = dev, "linux-dmabuf v4 with feedback");
                state.create_global_with_default_feedback::<State>(&core.display_handle, &feedback)
            }
            Err(err) => {
                warn!(
                    ?err,
                    "cannot build dmabuf feedback; falling back to linux-dmabuf v3"
                );
                state.create_global::<State>(&core.display_handle, formats)
            }
        },
        None => {
            info!("no DRM device: linux-dmabuf v3 with the renderer's formats");
            state.create_global::<State>(&core.display_handle, formats)
        }
    };
    core.dmabuf = Some((state, global));
}

/// Creates the dmabuf global (v4+) with `feedback` as the default feedback (the KMS backend
/// builds it: `backend/kms_feedback.rs`).
pub fn create_dmabuf_global_with_feedback(
    core: &mut Core,
    feedback: &smithay::wayland::dmabuf::DmabufFeedback,
) {
    let mut state = DmabufState::new();
    let global = state.create_global_with_default_feedback::<State>(&core.display_handle, feedback);
    info!("linux-dmabuf v4 with feedback");
    core.dmabuf = Some((state, global));
}

impl DmabufHandler for State {
    fn dmabuf_state(&mut self) -> &mut DmabufState {
        match &mut self.core.dmabuf {
            Some((state, _)) => state,
            // The global exists only once `core.dmabuf` is set, so requests cannot arrive before.
            None => unreachable_dmabuf(),
        }
    }

    fn dmabuf_imported(
        &mut self,
        _global: &DmabufGlobal,
        dmabuf: Dmabuf,
        notifier: ImportNotifier,
    ) {
        if let Err(reason) = check_layout(&dmabuf) {
            debug!(client = ?notifier.client().map(|c| c.id()), %reason, "dmabuf refused");
            notifier.failed();
            return;
        }
        let Some(client) = notifier.client() else {
            notifier.failed();
            return;
        };
        let memory = dmabuf_memory(&dmabuf);
        if let Err((over, request)) = self.check_dmabuf_limits(&client.id(), &memory) {
            // `failed` for `create` (the client may try something smaller);
            // `invalid_wl_buffer` for `create_immed`, which has no other way to fail.
            let handle = self.core.display_handle.backend_handle();
            crate::client_memory::note_refusal(
                &mut self.core,
                &handle,
                &client.id(),
                &over,
                request,
            );
            notifier.failed();
            return;
        }
        if !self.backend.import_dmabuf(&dmabuf) {
            notifier.failed();
            return;
        }
        if let Ok(buffer) = notifier.successful::<State>() {
            let dh = self.core.display_handle.clone();
            self.core
                .memory
                .add_dmabuf_buffer(&dh, &client.id(), buffer.id(), memory);
        }
    }
}

impl State {
    /// Checks a dmabuf import of `memory` against the client's limits; the refused request's
    /// name comes with the error.
    fn check_dmabuf_limits(
        &mut self,
        client: &smithay::reexports::wayland_server::backend::ClientId,
        memory: &DmabufMemory,
    ) -> Result<(), (crate::client_memory::OverLimit, &'static str)> {
        const REQUEST: &str = "zwp_linux_buffer_params_v1.create/create_immed";
        let limits = self.core.config.limits;
        let dh = self.core.display_handle.clone();
        let book = &mut self.core.memory;
        book.check_buffer(&dh, client, u64::from(limits.buffers_per_client))
            .and_then(|()| {
                book.check_dmabuf(&dh, client, memory, limits.dmabuf_bytes_per_client.bytes())
            })
            .map_err(|over| (over, REQUEST))
    }
}

/// The distinct dmabufs behind `dmabuf`'s planes (planes often share one) and their sizes,
/// from `lseek(SEEK_END)`, which dma-buf answers with the buffer's size without blocking.
pub fn dmabuf_memory(dmabuf: &Dmabuf) -> DmabufMemory {
    use std::os::fd::AsRawFd;
    let mut memory = DmabufMemory::default();
    for fd in dmabuf.handles() {
        let Ok(stat) = rustix::fs::fstat(fd) else {
            continue;
        };
        let identity = DmabufIdentity {
            dev: stat.st_dev,
            ino: stat.st_ino,
        };
        if memory.0.iter().any(|(seen, _)| *seen == identity) {
            continue;
        }
        // SAFETY: lseek on a borrowed, open fd; it changes only the file offset, which
        // nothing else of lockstep's uses for a dmabuf (mapping and importing ignore it).
        let end = unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_END) };
        memory.0.push((identity, end.max(0) as u64));
    }
    memory
}

/// Checks what smithay 0.7 does not: that each row fits in the stride. smithay checks that
/// `offset + stride × height` fits in the dmabuf, but not that `stride` holds a row, so a
/// 16384×1 buffer with stride 4 in a 4 KiB dmabuf passes, and a CPU renderer (pixman) then
/// reads `width × bytes per pixel` bytes per row, past the mapping: a crash, or compositor
/// memory shown on screen and in screen captures. For formats whose bits per pixel smithay
/// knows (the single-plane RGB formats), every plane's stride must hold a row; smithay has
/// already checked that `stride × height` rows fit in the fd. Multi-planar (YUV) formats go
/// to the renderer's own checks (pixman refuses them; EGL checks their layout).
pub fn check_layout(dmabuf: &Dmabuf) -> Result<(), String> {
    use smithay::backend::allocator::{format::get_bpp, Buffer};
    let Some(bpp) = get_bpp(dmabuf.format().code) else {
        return Ok(());
    };
    let size = dmabuf.size();
    let width = size.w.max(0) as u64;
    let row = (width * bpp as u64).div_ceil(8);
    for (index, stride) in dmabuf.strides().enumerate() {
        let stride = u64::from(stride);
        if stride < row {
            return Err(format!(
                "plane {index}: stride {stride} is smaller than a row of {width} pixels \
                 ({row} bytes)"
            ));
        }
    }
    Ok(())
}

fn unreachable_dmabuf() -> &'static mut DmabufState {
    // A leaked, empty state: only reachable if smithay dispatched a dmabuf request without a
    // global, which it does not do. Leaking one small struct beats panicking the compositor.
    Box::leak(Box::new(DmabufState::new()))
}

impl crate::backend::Backend {
    /// Tries to import `dmabuf` with the backend's renderer (validates it for the client).
    pub fn import_dmabuf(&mut self, dmabuf: &Dmabuf) -> bool {
        match self {
            crate::backend::Backend::Headless(b) => {
                b.renderer_mut().import_dmabuf(dmabuf, None).is_ok()
            }
            crate::backend::Backend::Winit(b) => {
                b.renderer_mut().import_dmabuf(dmabuf, None).is_ok()
            }
            crate::backend::Backend::Kms(b) => b.import_dmabuf(dmabuf),
        }
    }
}

delegate_dmabuf!(State);
