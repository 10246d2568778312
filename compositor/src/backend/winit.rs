//! The nested backend: one output shown in a window of the host (X11 or Wayland) through
//! smithay's winit backend and the GLES renderer.
//!
//! Redraws follow the same damage-driven frame clock as the headless backend (winit's own
//! `Redraw` events only force a full repaint, e.g. after an expose), so an idle nested session
//! costs no CPU. Closing the window quits; resizing it resizes the output.

use anyhow::{anyhow, Context, Result};
use lockstep_render::Frame;
use smithay::{
    backend::{
        renderer::{damage::OutputDamageTracker, gles::GlesRenderbuffer, gles::GlesRenderer},
        winit::{self, WinitEvent, WinitGraphicsBackend},
    },
    output::{Mode, Output, PhysicalProperties, Subpixel},
    reexports::winit::window::WindowAttributes,
    utils::Transform,
};
use tracing::info;

use crate::{
    frame_clock::{queue_redraw, Presented, RenderOutcome},
    input::process_winit_input,
    render::{render_offscreen, render_output, DefaultCursor},
    state::{Core, State},
};

/// The output's name under the winit backend.
pub const OUTPUT_NAME: &str = "winit";

/// The winit backend.
pub struct Winit {
    backend: WinitGraphicsBackend<GlesRenderer>,
    damage_tracker: OutputDamageTracker,
    cursor: DefaultCursor,
    /// Forces the next frames to repaint everything (after resize or expose).
    full_redraw: bool,
    /// What GL_RENDERER says.
    gl_name: String,
    /// The last frame's fence as a sync_file (only where EGL has native fences).
    last_render_fence: Option<std::os::fd::OwnedFd>,
}

impl Winit {
    /// Opens the host window, creates the output and hooks winit's events into the loop.
    pub fn new(core: &mut Core, title: &str) -> Result<Self> {
        let attributes = WindowAttributes::default()
            .with_title(title)
            .with_inner_size(smithay::reexports::winit::dpi::LogicalSize::new(
                1280.0, 800.0,
            ))
            .with_visible(true);
        let (mut backend, event_loop) = winit::init_from_attributes::<GlesRenderer>(attributes)
            .map_err(|err| {
                anyhow!(
                    "cannot open a window on the host display ({err}). Is DISPLAY or \
                     WAYLAND_DISPLAY right, and does EGL work (try `eglinfo`)? Use \
                     `--backend headless` to run without a display."
                )
            })?;
        let size = backend.window_size();
        let mode = Mode {
            size,
            refresh: 60_000,
        };
        let output = Output::new(
            OUTPUT_NAME.to_string(),
            PhysicalProperties {
                size: (0, 0).into(),
                subpixel: Subpixel::Unknown,
                make: "lockstep".into(),
                model: "winit".into(),
            },
        );
        output.create_global::<State>(&core.display_handle);
        // GL renders upside down relative to the window's origin.
        let scale = core
            .config
            .output(OUTPUT_NAME)
            .map(|o| smithay::output::Scale::Fractional(o.scale));
        output.change_current_state(
            Some(mode),
            Some(Transform::Flipped180),
            scale,
            Some((0, 0).into()),
        );
        output.set_preferred(mode);
        core.add_output(&output, (0, 0).into());

        let shm_formats = {
            use smithay::backend::renderer::ImportMemWl;
            backend.renderer().shm_formats().collect::<Vec<_>>()
        };
        core.shm_state.update_formats(shm_formats);
        let dmabuf_formats = {
            use smithay::backend::renderer::ImportDma;
            backend.renderer().dmabuf_formats()
        };
        crate::handlers::dmabuf::create_dmabuf_global(core, dmabuf_formats, None);

        core.loop_handle
            .insert_source(event_loop, move |event, _, state: &mut State| {
                state.handle_winit_event(event)
            })
            .map_err(|err| anyhow!("cannot watch winit events: {err}"))?;

        info!(size = ?(size.w, size.h), "nested output opened in a host window");
        let damage_tracker = OutputDamageTracker::from_output(&output);
        let cursor = DefaultCursor::new(&core.config.cursor.theme, core.config.cursor.size);
        queue_redraw(core, &output);
        let gl_name = crate::render::gl_renderer_name(backend.renderer());
        Ok(Self {
            backend,
            damage_tracker,
            cursor,
            full_redraw: true,
            last_render_fence: None,
            gl_name,
        })
    }

    /// Makes the next frame a full redraw.
    pub fn full_redraw(&mut self) {
        self.full_redraw = true;
    }

    /// The renderer (for dmabuf validation).
    pub fn renderer_mut(&mut self) -> &mut GlesRenderer {
        self.backend.renderer()
    }

    /// The fence of the last frame, where EGL has native fences.
    pub fn release_fence(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.last_render_fence.as_ref().map(|f| f.as_fd())
    }

    /// `gles (GL_RENDERER)`.
    pub fn renderer_name(&self) -> String {
        format!("gles ({})", self.gl_name)
    }

    /// Renders the damaged part of the output and presents it.
    pub fn render(&mut self, core: &mut Core, output: &Output) -> Result<RenderOutcome> {
        let age = if self.full_redraw {
            0
        } else {
            self.backend.buffer_age().unwrap_or(0)
        };
        let (renderer, mut framebuffer) = self.backend.bind().context("cannot bind the window")?;
        let result = render_output(
            renderer,
            &mut framebuffer,
            &mut self.damage_tracker,
            age,
            core,
            &self.cursor,
            output,
        )
        .map_err(|err| anyhow!("GLES rendering failed: {err:?}"))?;
        let damaged = result.damage.is_some();
        // With native fences the frame's fence covers the buffers it read (and, one GL
        // context, every frame before); without, releases wait for the next frame as before.
        self.last_render_fence = result.sync.export();
        let states = result.states;
        let damage = result.damage.cloned();
        drop(framebuffer);
        if let Some(damage) = damage {
            self.backend
                .submit(Some(&damage))
                .context("cannot present to the window")?;
            self.full_redraw = false;
        }
        // Show the host's cursor only when we do not draw one ourselves.
        self.backend.window().set_cursor_visible(false);
        Ok(RenderOutcome {
            damaged,
            states,
            presented: Presented::AtSlot,
        })
    }

    /// Renders the output offscreen and reads it back.
    pub fn capture(&mut self, core: &mut Core, output: &Output) -> Result<Frame> {
        let renderer = self.backend.renderer();
        render_offscreen::<_, GlesRenderbuffer>(
            renderer,
            core,
            &self.cursor,
            output,
            smithay::backend::allocator::Fourcc::Abgr8888,
        )
        .map_err(|e| anyhow!(e))
    }
}

impl State {
    fn handle_winit_event(&mut self, event: WinitEvent) {
        match event {
            WinitEvent::Resized { size, .. } => {
                let Some(output) = self.core.output_by_name(OUTPUT_NAME) else {
                    return;
                };
                let mode = Mode {
                    size,
                    refresh: 60_000,
                };
                output.change_current_state(Some(mode), None, None, None);
                output.set_preferred(mode);
                self.core.space.map_output(&output, (0, 0));
                if let crate::backend::Backend::Winit(w) = &mut self.backend {
                    w.full_redraw = true;
                }
                info!(size = ?(size.w, size.h), "host window resized");
                crate::shell::sync_outputs(&mut self.core);
                queue_redraw(&mut self.core, &output);
            }
            WinitEvent::Input(event) => process_winit_input(self, event),
            WinitEvent::Redraw => {
                if let crate::backend::Backend::Winit(w) = &mut self.backend {
                    w.full_redraw = true;
                }
                crate::frame_clock::queue_redraw_all(&mut self.core);
            }
            WinitEvent::CloseRequested => {
                info!("host window closed; shutting down");
                self.core.loop_signal.stop();
            }
            WinitEvent::Focus(_) => {}
        }
    }
}
