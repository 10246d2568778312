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
    wayland::dmabuf::{
        DmabufFeedbackBuilder, DmabufGlobal, DmabufHandler, DmabufState, ImportNotifier,
    },
};
use tracing::{debug, info, warn};

use crate::state::{Core, State};

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
        if self.backend.import_dmabuf(&dmabuf) {
            let _ = notifier.successful::<State>();
        } else {
            notifier.failed();
        }
    }
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
