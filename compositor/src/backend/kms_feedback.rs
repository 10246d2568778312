//! linux-dmabuf v4 feedback for the KMS session: which device clients should allocate on, and
//! which formats let a buffer go straight to a display plane.
//!
//! # The main device
//!
//! - The render node of the display's GPU when it has one (any GPU with a Mesa driver): the
//!   device GLES composites on, and where clients' buffers are cheapest for it to read.
//! - A display-only device (vkms in the VM, or a GPU Mesa drives only through kms_swrast)
//!   has no render node. While GLES composites there (kms_swrast), the only buffers it can
//!   read are the display device's own (see `kms_gles.rs`), so the main device is the
//!   display's primary node: clients that follow the feedback allocate dumb buffers there.
//!   vgem's render node is deliberately not advertised: kms_swrast cannot read its buffers
//!   (Mesa crashes importing them, which lockstep refuses), and no client driver renders on
//!   vgem anyway.
//! - pixman on a display-only device: no feedback at all (linux-dmabuf v3 with pixman's
//!   formats), as on machines without a GPU; pixman reads any linear dmabuf.
//!
//! # Tranches
//!
//! The default feedback has one tranche: the formats and modifiers the renderer imports, on
//! the main device. A surface gets per-surface feedback with a scanout tranche first
//! (target: the display device, flag `scanout`) when it could go on a plane as it is:
//!
//! - the primary plane's formats when it could replace the composited frame: it is the
//!   topmost window on its output and covers all of it (fullscreen);
//! - the overlay plane's formats when it could sit on the overlay plane instead: it is the
//!   topmost window, lies inside the output, the output has an overlay plane and is not
//!   scaled (the overlay path takes unscaled buffers only).
//!
//! Other surfaces get the default feedback again. A scanout tranche uses the plane's fourcc
//! list (intersected with the renderer's formats, so a buffer that misses the plane can still
//! be composited), not its `IN_FORMATS` modifier list: a modifier the plane refuses costs
//! one failed `TEST_ONLY`, after which the buffer is composited (the pipeline's rule).
//! Feedback is re-evaluated after every frame of an output; smithay sends it only when it
//! changed.

use anyhow::{Context, Result};
use smithay::{
    backend::allocator::format::FormatSet,
    output::Output,
    wayland::{
        compositor::with_states,
        dmabuf::{DmabufFeedback, DmabufFeedbackBuilder, SurfaceDmabufFeedbackState},
    },
};
use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_feedback_v1::TrancheFlags;

use crate::state::Core;

/// The feedbacks a KMS surface can get.
pub struct KmsFeedback {
    /// The main device and the renderer's formats: the default feedback.
    pub render: DmabufFeedback,
    /// A scanout tranche of the primary plane's formats first, then the default one.
    scanout: DmabufFeedback,
    /// The same with the overlay plane's formats (`None`: no overlay plane).
    overlay: Option<DmabufFeedback>,
}

/// Feedback with a scanout tranche on `display` for the formats of `formats` whose fourcc is
/// in `plane_formats`, then the default tranche.
fn with_scanout_tranche(
    main: libc::dev_t,
    display: libc::dev_t,
    formats: &FormatSet,
    plane_formats: &[u32],
) -> Result<DmabufFeedback> {
    let scanout_formats: Vec<_> = formats
        .iter()
        .copied()
        .filter(|f| plane_formats.contains(&(f.code as u32)))
        .collect();
    DmabufFeedbackBuilder::new(main, formats.clone())
        .add_preference_tranche(display, Some(TrancheFlags::Scanout), scanout_formats)
        .build()
        .context("cannot build the scanout dmabuf feedback")
}

/// The device number of a DRM node (what linux-dmabuf's `main_device` carries).
pub fn node_dev(path: &std::path::Path) -> Option<libc::dev_t> {
    rustix::fs::stat(path)
        .ok()
        .map(|s| s.st_rdev as libc::dev_t)
}

impl KmsFeedback {
    /// Feedback with `main` as main device and `formats` (the renderer's), and scanout
    /// tranches on `display` for the primary plane's formats and, when there is an overlay
    /// plane, the overlay plane's.
    pub fn new(
        main: libc::dev_t,
        display: libc::dev_t,
        formats: FormatSet,
        primary_formats: &[u32],
        overlay_formats: Option<&[u32]>,
    ) -> Result<Self> {
        let render = DmabufFeedbackBuilder::new(main, formats.clone())
            .build()
            .context("cannot build the dmabuf feedback")?;
        let scanout = with_scanout_tranche(main, display, &formats, primary_formats)?;
        let overlay = overlay_formats
            .map(|planes| with_scanout_tranche(main, display, &formats, planes))
            .transpose()?;
        Ok(Self {
            render,
            scanout,
            overlay,
        })
    }

    /// Gives every window on `output` the feedback it should have now (module docs).
    pub fn update(&self, core: &Core, output: &Output) {
        let Some(output_area) = core.space.output_geometry(output) else {
            return;
        };
        let on_output: Vec<_> = core.space.elements_for_output(output).collect();
        let topmost = on_output.last();
        let unscaled = output.current_scale().fractional_scale() == 1.0;
        for window in &on_output {
            let Some(toplevel) = window.toplevel() else {
                continue;
            };
            let geometry = core.space.element_geometry(window);
            let is_top = Some(window) == topmost;
            let covers = is_top && geometry.is_some_and(|g| g.contains_rect(output_area));
            let inside =
                is_top && unscaled && geometry.is_some_and(|g| output_area.contains_rect(g));
            let feedback = match (&self.overlay, covers, inside) {
                (_, true, _) => &self.scanout,
                (Some(overlay), false, true) => overlay,
                _ => &self.render,
            };
            with_states(toplevel.wl_surface(), |states| {
                if let Some(state) = SurfaceDmabufFeedbackState::from_states(states) {
                    state.set_feedback(feedback);
                }
            });
        }
    }
}
