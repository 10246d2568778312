//! The headless backend: virtual outputs rendered with pixman into memory.
//!
//! Used by CI, the test fixture and anyone who wants a compositor without a screen. Each output
//! has a pixman image that always holds its latest frame; rendering is damage-tracked into
//! that same image (buffer age 1), so screenshots and screencopy read exactly what the output
//! shows, and a static screen costs nothing.

use std::collections::HashMap;

use anyhow::{anyhow, Context, Result};
use lockstep_render::Frame;
use smithay::{
    backend::{
        allocator::Fourcc,
        renderer::{damage::OutputDamageTracker, pixman::PixmanRenderer, Bind, Offscreen},
    },
    output::{Mode, Output, PhysicalProperties, Scale, Subpixel},
    reexports::{pixman::Image, wayland_server::backend::GlobalId},
    utils::{Logical, Point, Size, Transform},
};

use crate::{
    frame_clock::{queue_redraw, Presented, RenderOutcome},
    render::{read_framebuffer, render_output, DefaultCursor},
    state::{Core, State},
};

/// The largest headless output side.
const MAX_SIZE: i32 = 16384;

/// The most pixels a mode chosen through output management may have (64 MiB of image):
/// a privileged client must not make lockstep allocate gigabytes with one request.
const MAX_MANAGED_PIXELS: i64 = 4096 * 4096;

/// Modes every headless output offers besides its own (60 Hz).
const COMMON_MODES: &[(i32, i32)] = &[(1920, 1080), (1280, 720), (1024, 768), (800, 600)];

/// A mode change whose allocation is done: [`Headless::set_mode`] cannot fail.
pub struct PreparedMode {
    mode: Mode,
    image: Image<'static, 'static>,
}

/// Size, refresh and scale of a virtual output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VirtualOutput {
    /// Size in physical pixels.
    pub size: (i32, i32),
    /// Refresh rate in millihertz.
    pub refresh_mhz: i32,
    /// Output scale.
    pub scale: f64,
    /// Top-left corner in the global space; `None` puts it right of the existing outputs.
    pub position: Option<(i32, i32)>,
}

impl Default for VirtualOutput {
    fn default() -> Self {
        Self {
            size: (1280, 720),
            refresh_mhz: 60_000,
            scale: 1.0,
            position: None,
        }
    }
}

struct HeadlessOutput {
    output: Output,
    /// The wl_output global while the output is on (output management can turn it off).
    global: Option<GlobalId>,
    image: Image<'static, 'static>,
    damage_tracker: OutputDamageTracker,
    /// Whether `image` holds a frame yet (age 0 forces a full redraw).
    rendered: bool,
}

/// The headless backend.
pub struct Headless {
    renderer: PixmanRenderer,
    outputs: HashMap<String, HeadlessOutput>,
    cursor: DefaultCursor,
    next_index: u32,
}

impl Headless {
    /// Creates the backend (no outputs yet).
    pub fn new(cursor_theme: &str, cursor_size: u32) -> Result<Self> {
        let renderer = PixmanRenderer::new().context("cannot create the pixman renderer")?;
        Ok(Self {
            renderer,
            outputs: HashMap::new(),
            cursor: DefaultCursor::new(cursor_theme, cursor_size),
            next_index: 1,
        })
    }

    /// The shm formats the renderer can show.
    pub fn shm_formats(&self) -> Vec<smithay::reexports::wayland_server::protocol::wl_shm::Format> {
        use smithay::backend::renderer::ImportMemWl;
        self.renderer.shm_formats().collect()
    }

    /// The dmabuf formats the renderer can import.
    pub fn dmabuf_formats(&self) -> smithay::backend::allocator::format::FormatSet {
        use smithay::backend::renderer::ImportDma;
        self.renderer.dmabuf_formats()
    }

    /// The renderer (for dmabuf validation).
    pub fn renderer_mut(&mut self) -> &mut PixmanRenderer {
        &mut self.renderer
    }

    /// Adds a virtual output named `HEADLESS-N` right of the existing ones.
    pub fn add_output(&mut self, core: &mut Core, spec: VirtualOutput) -> Result<Output> {
        let name = format!("HEADLESS-{}", self.next_index);
        self.next_index += 1;
        let (w, h) = spec.size;
        if w <= 0 || h <= 0 || w > MAX_SIZE || h > MAX_SIZE {
            return Err(anyhow!("output size {w}x{h} is out of range (1..=16384)"));
        }
        let output = Output::new(
            name.clone(),
            PhysicalProperties {
                size: (0, 0).into(),
                subpixel: Subpixel::Unknown,
                make: "lockstep".into(),
                model: "headless".into(),
            },
        );
        let mode = Mode {
            size: (w, h).into(),
            refresh: spec.refresh_mhz,
        };
        let x = core.outputs_right_edge();
        let position: Point<i32, Logical> = spec.position.unwrap_or((x, 0)).into();
        if !(spec.scale > 0.0 && spec.scale <= 4.0) {
            return Err(anyhow!(
                "output scale {} is out of range (0, 4]",
                spec.scale
            ));
        }
        let global = output.create_global::<State>(&core.display_handle);
        // A few common modes besides the one asked for, so output-management clients have
        // something to choose from (headless takes any size anyway, as a custom mode).
        for (cw, ch) in COMMON_MODES {
            if (*cw, *ch) != (w, h) {
                output.add_mode(Mode {
                    size: (*cw, *ch).into(),
                    refresh: 60_000,
                });
            }
        }
        output.change_current_state(
            Some(mode),
            Some(Transform::Normal),
            Some(Scale::Fractional(spec.scale)),
            Some(position),
        );
        output.set_preferred(mode);
        let image = self
            .renderer
            .create_buffer(Fourcc::Xrgb8888, Size::from((w, h)))
            .context("cannot allocate the output image")?;
        self.outputs.insert(
            name.clone(),
            HeadlessOutput {
                output: output.clone(),
                global: Some(global),
                image,
                damage_tracker: OutputDamageTracker::from_output(&output),
                rendered: false,
            },
        );
        core.add_output(&output, position);
        queue_redraw(core, &output);
        tracing::info!(output = %name, size = ?(w, h), refresh_mhz = spec.refresh_mhz, scale = spec.scale, "headless output added");
        Ok(output)
    }

    /// Every output, on or off (for output management).
    pub fn heads(&self) -> Vec<(Output, bool)> {
        let mut heads: Vec<_> = self
            .outputs
            .values()
            .map(|o| (o.output.clone(), o.global.is_some()))
            .collect();
        heads.sort_by_key(|(o, _)| o.name());
        heads
    }

    /// Whether `mode` could be shown: sides in 1..=16384, at most 4096×4096 pixels.
    pub fn check_mode(&self, mode: Mode) -> Result<(), String> {
        let (w, h) = (mode.size.w, mode.size.h);
        if w <= 0 || h <= 0 || w > MAX_SIZE || h > MAX_SIZE {
            return Err(format!("{w}x{h} is out of range (1..={MAX_SIZE})"));
        }
        if i64::from(w) * i64::from(h) > MAX_MANAGED_PIXELS {
            return Err(format!(
                "{w}x{h} has more than {MAX_MANAGED_PIXELS} pixels (4096x4096)"
            ));
        }
        if mode.refresh <= 0 || mode.refresh > 1_000_000 {
            return Err(format!("refresh {} mHz is out of range", mode.refresh));
        }
        Ok(())
    }

    /// Allocates what a new mode needs (the fallible part of a mode change).
    pub fn prepare_mode(&mut self, mode: Mode) -> Result<PreparedMode> {
        self.check_mode(mode).map_err(|e| anyhow!(e))?;
        let image = self
            .renderer
            .create_buffer(Fourcc::Xrgb8888, Size::from((mode.size.w, mode.size.h)))
            .context("cannot allocate the output image")?;
        Ok(PreparedMode { mode, image })
    }

    /// Switches `output` to a prepared mode (cannot fail).
    pub fn set_mode(&mut self, core: &mut Core, output: &Output, prepared: PreparedMode) {
        let Some(out) = self.outputs.get_mut(&output.name()) else {
            return;
        };
        out.image = prepared.image;
        out.rendered = false;
        output.change_current_state(Some(prepared.mode), None, None, None);
        if let Some(data) = core.outputs.get_mut(&output.name()) {
            data.refresh = crate::state::refresh_interval(prepared.mode.refresh);
        }
    }

    /// Turns `output` on (its wl_output global back, mapped at `position`) or off (global
    /// removed, taken out of the space; the layout moves its windows to another output).
    pub fn set_enabled(
        &mut self,
        core: &mut Core,
        output: &Output,
        on: bool,
        position: Point<i32, Logical>,
    ) {
        let Some(out) = self.outputs.get_mut(&output.name()) else {
            return;
        };
        match (on, out.global.take()) {
            (true, None) => {
                out.global = Some(output.create_global::<State>(&core.display_handle));
                out.rendered = false;
                core.add_output(output, position);
            }
            (false, Some(global)) => {
                core.remove_output(output);
                core.display_handle.remove_global::<State>(global);
            }
            (_, global) => out.global = global,
        }
    }

    /// Makes `output`'s next frame a full redraw.
    pub fn full_redraw(&mut self, output: &Output) {
        if let Some(out) = self.outputs.get_mut(&output.name()) {
            out.rendered = false;
        }
    }

    /// Renders what is damaged on `output` into its image.
    pub fn render(&mut self, core: &mut Core, output: &Output) -> Result<RenderOutcome> {
        let out = self
            .outputs
            .get_mut(&output.name())
            .ok_or_else(|| anyhow!("unknown headless output {}", output.name()))?;
        let age = if out.rendered { 1 } else { 0 };
        let mut framebuffer = self
            .renderer
            .bind(&mut out.image)
            .context("cannot bind the output image")?;
        let result = render_output(
            &mut self.renderer,
            &mut framebuffer,
            &mut out.damage_tracker,
            age,
            core,
            &self.cursor,
            output,
        )
        .map_err(|err| anyhow!("pixman rendering failed: {err:?}"))?;
        out.rendered = true;
        Ok(RenderOutcome {
            damaged: result.damage.is_some(),
            states: result.states,
            presented: Presented::AtSlot,
        })
    }

    /// Copies the latest frame of `output`.
    pub fn capture(&mut self, core: &mut Core, output: &Output) -> Result<Frame> {
        if !self.outputs.get(&output.name()).is_some_and(|o| o.rendered) {
            // Nothing drawn yet (the first frame slot has not come): draw now.
            let outcome = self.render(core, output)?;
            let now = core.now();
            core.after_render(output, now, None, &outcome);
        }
        let out = self
            .outputs
            .get_mut(&output.name())
            .ok_or_else(|| anyhow!("unknown headless output {}", output.name()))?;
        let size = (out.image.width() as i32, out.image.height() as i32);
        let framebuffer = self
            .renderer
            .bind(&mut out.image)
            .context("cannot bind the output image")?;
        read_framebuffer(
            &mut self.renderer,
            &framebuffer,
            size.into(),
            Fourcc::Xrgb8888,
        )
        .map_err(|e| anyhow!(e))
    }
}
