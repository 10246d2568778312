//! The KMS backend: lockstep on a DRM device, as a session on a TTY (or on vkms in the VM).
//!
//! Each connected connector gets a CRTC, a mode (the configured one, else the preferred one)
//! and an [`OutputPipeline`] from `lockstep_render::kms`, which owns the plane rules and the
//! prepare → commit → page-flip phases. This file decides, per frame, what the pipeline is
//! asked to show:
//!
//! - the pointer goes on the cursor plane when it has one and the image fits (the theme's
//!   cursor, or a client's single-surface shm cursor); otherwise it is composited;
//! - a topmost opaque client dmabuf that covers the whole output 1:1 (a fullscreen game or
//!   video) is scanned out directly on the primary plane; its acquire fence is exported as
//!   a sync_file for `IN_FENCE_FD`, and its buffer is leased until the flip that replaces it;
//! - a topmost opaque unscaled client dmabuf that covers part of the output goes on the first
//!   overlay plane, the same way, and the rest is composited beneath it;
//! - everything else is composited: with GLES into GBM buffers of the display's device, or
//!   with pixman into the pipeline's dumb buffers when EGL cannot be set up there or the
//!   config asks for pixman (`kms_gles.rs` has the renderers and the rules of the GPU path);
//! - when prepare fails (`TEST_ONLY` rejects a plane, an import fails), the frame is
//!   prepared again with everything composited; if that fails too, the old frame stays. A
//!   buffer whose framebuffer or plane the kernel refused is remembered and composited from
//!   then on, so a client with unscannable buffers does not cost a failed ioctl per frame.
//!
//! Page flips pace the outputs: a redraw is scheduled as late before the predicted vblank as
//! the output's measured redraw time allows (`frame_clock.rs`), so that every client ready by
//! then shares the frame; a redraw that finds a flip pending waits for the flip event (one
//! commit per vblank, however many cursor moves arrive). Frame callbacks and wp_presentation feedback use the kernel's flip timestamp and
//! sequence. A redraw with nothing new still commits (the same state) so that clients asking
//! for frame callbacks are paced by the display, not by a busy loop.
//!
//! Buffers that were only composited are released as soon as the frame that read them is
//! complete (the compositor's normal path); with native fences, when the GPU's fence of the
//! last frame signals (`kms_gles.rs`). Leased buffers are released by the kernel at the flip that
//! takes them off the screen: the commit's out-fence is imported into their release point
//! (`SurfaceLease` below); when that cannot be done (a buffer still current, a soft timeline),
//! the CPU signals them at the page-flip event.
//!
//! A page-flip event that never comes (a driver bug, a GPU hang) would freeze that output
//! forever, since its next frame waits for the flip. A watchdog (one calloop timer, armed only
//! while a flip is pending, so an idle screen has no wakeups) notices a flip pending for
//! longer than [`FLIP_TIMEOUT`], logs an error naming the output and CRTC, treats the flip as
//! done (the leases of the frame before end, feedback is sent) and asks for a new frame. If
//! the kernel still holds the commit, the next commit fails with EBUSY and the old frame
//! stays, logged; the output tries again at its next redraw.
//!
//! Around the frames: [`Kms::pause`] / [`Kms::resume`] follow the session (VT switches:
//! nothing is committed while away, the whole state is committed again on return), and
//! [`Kms::rescan`] follows udev's change events (displays plugged in or out).

use std::{
    collections::HashMap,
    hash::{Hash, Hasher},
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    path::Path,
};

use anyhow::{anyhow, bail, Context, Result};
use lockstep_render::{
    kms::{
        BufferKey, CursorImage, CursorPlan, DeviceShared, KmsDevice, OutputPipeline, OverlayPlan,
        Plan, PlaneReport, PrimaryPlan, ScanoutBuffer, SharedDevice,
    },
    Frame,
};
use smithay::{
    backend::{
        allocator::{dmabuf::Dmabuf, Fourcc},
        renderer::{
            damage::OutputDamageTracker,
            element::{Element, RenderElementStates},
            gles::GlesRenderbuffer,
            utils::with_renderer_surface_state,
            ImportAll, ImportDmaWl, ImportMem, ImportMemWl, Texture,
        },
    },
    input::pointer::CursorImageStatus,
    output::Output,
    reexports::{
        calloop::{generic::Generic, Interest, LoopHandle, Mode as LoopMode, PostAction},
        pixman::Image,
        wayland_server::protocol::wl_surface::WlSurface,
    },
    utils::{Logical, Point, Rectangle},
};
use tracing::{debug, info, warn};

use super::kms_scanout::scanout_candidate;

mod control;
pub use control::{PreparedKmsMode, PreparedOff};

use super::kms_gles::{Composite, Frames, KmsRenderer};
use crate::{
    frame_clock::{queue_redraw, Presented, RenderOutcome},
    render::{
        cursor_surface_hotspot, output_elements, pointer_on_output, render_offscreen, DefaultCursor,
    },
    state::{Core, State},
};

/// One output on a CRTC.
struct KmsOutput {
    pipeline: OutputPipeline,
    /// What the renderer draws composited frames into (GBM buffers for GLES).
    frames: Frames,
    output: Output,
    /// Damage of the dumb buffer being drawn into (by its age).
    damage_tracker: OutputDamageTracker,
    /// Whether anything changed since the last frame, whatever buffer is drawn into next: a
    /// buffer whose age needs a repaint must not turn a cursor-only frame into a composited
    /// one.
    change_probe: OutputDamageTracker,
    /// Whether the primary plane shows the composited frame of the elements the probe saw
    /// last (not a direct-scanout buffer, not a fallback frame with the cursor drawn in).
    composited_current: bool,
    /// Feedback for the frame in flight, sent at its page flip.
    in_flight: Option<RenderOutcome>,
    /// A redraw was asked for while a flip was pending.
    redraw_after_flip: bool,
    /// When the commit in flight was made (for the flip watchdog).
    committed_at: Option<std::time::Instant>,
    /// The wl_output global, removed with the output.
    global: smithay::reexports::wayland_server::backend::GlobalId,
    /// Client buffers the kernel would not scan out here (their framebuffer import or the
    /// plane's `TEST_ONLY` failed): composited from then on, without asking again every
    /// frame. A few recent ones are kept.
    unscannable: std::collections::VecDeque<BufferKey>,
    /// For the last flips: (kernel flip timestamp → cleanup done, flip event read → cleanup
    /// done). Cleanup ends the leases, so release points are signalled by then.
    flip_to_cleanup: std::collections::VecDeque<(std::time::Duration, std::time::Duration)>,
    /// The output was powered off while a flip was pending: the CRTC goes off after it.
    power_off_after_flip: bool,
    /// Why the last async (tearing) flip a client asked for went as a normal flip, logged
    /// once per reason.
    async_refused: Option<String>,
}

/// How many flip-to-cleanup times each output keeps (for benchmarks and logs).
const FLIP_LOG: usize = 256;

/// How long a page flip may be pending before the watchdog gives up on its event: many
/// frames at any refresh rate a display has (1 Hz panels in self-refresh excepted).
pub const FLIP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// The cursor image as pixels for the cursor plane.
struct CursorPixels {
    key: u64,
    width: u32,
    height: u32,
    hotspot: (i32, i32),
    pixels: Vec<u32>,
}

/// The KMS backend.
pub struct Kms {
    dev: SharedDevice,
    /// Declared before the renderer: the outputs' GBM buffers go first, then the EGL display
    /// (both hold the GBM device, which goes last).
    outputs: HashMap<String, KmsOutput>,
    /// Connected connectors turned off (output management, the config): `control.rs`.
    off: HashMap<String, control::OffOutput>,
    /// Pipelines of outputs being turned off, until the kernel is done with their buffers.
    retiring: Vec<control::Retiring>,
    renderer: KmsRenderer,
    cursor: DefaultCursor,
    theme_cursor: CursorPixels,
    client_cursor: Option<CursorPixels>,
    active: bool,
    session: Option<super::session::KmsSession>,
    input: Option<super::libinput::InputHandle>,
    /// Whether leases hand the out-fence to release points (off only to measure the CPU
    /// path in benchmarks).
    fenced_releases: bool,
    /// Time spent in `render` and page-flip handling.
    busy: std::time::Duration,
    /// Of that, time spent compositing (rendering until the frame is complete).
    composite_time: std::time::Duration,
    /// The flip watchdog's timer, while one is armed.
    watchdog: Option<smithay::reexports::calloop::RegistrationToken>,
    /// Page-flip events to ignore (tests: an event the kernel never sends).
    lose_flip_events: usize,
    /// linux-dmabuf feedback, when there is a main device to advertise.
    feedback: Option<super::kms_feedback::KmsFeedback>,
    /// The fence of the last composited frame that left unfinished (native fences), for the
    /// release points of the buffers it may have read; `None` once a frame was finished on
    /// the CPU (one GL context: its work completes in order, so that covers all before it).
    last_render_fence: Option<OwnedFd>,
}

impl Kms {
    /// Opens outputs on `dev` for every connected connector and starts listening for page
    /// flips. `dev` comes from the session (or is opened directly as root).
    pub fn new(core: &mut Core, dev: KmsDevice) -> Result<Self> {
        let path = dev.path().to_owned();
        let driver = dev.driver_name();
        // Only the DRM master may change what is on screen (a session's fd already is).
        lockstep_render::kms::drm::Device::acquire_master_lock(&dev).map_err(|err| {
            anyhow!(
                "cannot become DRM master of {} ({err}): another compositor or X server holds \
                 the display. Quit it, or start lockstep from a free text console",
                path.display()
            )
        })?;
        let dev = DeviceShared::new(dev);
        let renderer = KmsRenderer::choose(&dev, core.config.render.renderer)?;
        // The theme is loaded once: composited (fallback) and cursor-plane images agree.
        let (cursor, image) =
            DefaultCursor::with_image(&core.config.cursor.theme, core.config.cursor.size);
        let theme_cursor = CursorPixels {
            key: 1,
            width: image.width,
            height: image.height,
            hotspot: (image.hotspot.0 as i32, image.hotspot.1 as i32),
            pixels: image
                .pixels
                .chunks_exact(4)
                .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]))
                .collect(),
        };
        let mut kms = Self {
            dev: dev.clone(),
            renderer,
            outputs: HashMap::new(),
            off: HashMap::new(),
            retiring: Vec::new(),
            cursor,
            theme_cursor,
            client_cursor: None,
            active: true,
            session: None,
            input: None,
            fenced_releases: true,
            busy: std::time::Duration::ZERO,
            composite_time: std::time::Duration::ZERO,
            watchdog: None,
            lose_flip_events: 0,
            feedback: None,
            last_render_fence: None,
        };
        let connectors = dev
            .dev
            .connected()
            .with_context(|| format!("cannot read the connectors of {}", path.display()))?;
        if connectors.is_empty() {
            bail!(
                "{} ({driver}) has no connected display. Plug a monitor in, or pick another \
                 device with LOCKSTEP_DRM_DEVICE",
                path.display()
            );
        }
        for connector in connectors {
            let name = connector.name.clone();
            if let Err(err) = kms.add_connector(core, connector) {
                warn!(output = %name, "cannot use this output: {err:#}");
            }
        }
        if kms.outputs.is_empty() && kms.off.is_empty() {
            bail!("no usable output on {}", path.display());
        }
        if kms.outputs.is_empty() {
            // As sway does: nothing is shown until an output is turned on (wlr-randr, a
            // config reload).
            warn!("every output is turned off (config); nothing is shown until one is turned on");
        }
        watch_page_flips(&core.loop_handle, &dev)?;
        Ok(kms)
    }

    /// Sets up an output for `connector` (mode, CRTC, pipeline, wl_output), or keeps it as an
    /// output that is off when the config turns it off. Without a free CRTC it stays dark and
    /// unlisted; the next rescan (a display plugged in or out) tries again.
    fn add_connector(
        &mut self,
        core: &mut Core,
        connector: lockstep_render::kms::ConnectorInfo,
    ) -> Result<()> {
        let name = connector.name.clone();
        let config = core.config.output(&name).cloned();
        let mode = choose_mode(&connector, config.as_ref().and_then(|c| c.mode));
        let driver = self.dev.dev.driver_name();
        let scale = config.as_ref().map(|c| c.scale).unwrap_or(1.0);
        let x = core.outputs_right_edge();
        let position: Point<i32, Logical> = config
            .as_ref()
            .and_then(|c| c.position)
            .map(|p| (p.x, p.y))
            .unwrap_or((x, 0))
            .into();
        let output = control::new_output(&connector, driver.clone(), &mode, scale, position);
        if config.as_ref().is_some_and(|c| !c.enabled) {
            info!(output = %name, "disabled in the config");
            self.off
                .insert(name, control::OffOutput { output, connector });
            return Ok(());
        }
        let Some(crtc) = self.free_crtc(&connector) else {
            warn!(output = %name, "no free CRTC for this connector; it stays dark");
            return Ok(());
        };
        let (pipeline, frames) = self
            .build_pipeline(&connector, crtc, mode)
            .with_context(|| format!("cannot set up {name}"))?;
        let (w, h) = mode.size();
        info!(
            output = %name, device = %self.dev.dev.path().display(), driver = %driver,
            mode = %format!("{w}x{h}@{:.3}", f64::from(refresh_mhz(&mode)) / 1000.0),
            cursor_plane = pipeline.has_cursor_plane(),
            overlay_plane = pipeline.has_overlay_plane(),
            "KMS output"
        );
        self.install(core, output, pipeline, frames, position);
        Ok(())
    }

    /// Reads the connectors again (udev reported a change of the card: a monitor plugged in
    /// or out): outputs of connectors that went away are removed, new ones are added.
    pub fn rescan(&mut self, core: &mut Core) {
        let connected = match self.dev.dev.connected() {
            Ok(c) => c,
            Err(err) => {
                warn!("cannot read the connectors again: {err}");
                return;
            }
        };
        let gone: Vec<String> = self
            .outputs
            .keys()
            .filter(|name| !connected.iter().any(|c| &c.name == *name))
            .cloned()
            .collect();
        self.off
            .retain(|name, _| connected.iter().any(|c| &c.name == name));
        for name in gone {
            if let Some(out) = self.outputs.remove(&name) {
                info!(output = %name, "display disconnected; output removed");
                core.remove_output(&out.output);
                core.display_handle.remove_global::<State>(out.global);
                // Dropping the pipeline removes its framebuffers; the kernel turns off the
                // planes and the CRTC that showed them.
            }
        }
        for connector in connected {
            if self.outputs.contains_key(&connector.name) || self.off.contains_key(&connector.name)
            {
                continue;
            }
            let name = connector.name.clone();
            match self.add_connector(core, connector) {
                Ok(()) => info!(output = %name, "display connected"),
                Err(err) => warn!(output = %name, "cannot use the new display: {err:#}"),
            }
        }
        // The layout moved the windows of unplugged outputs to the remaining ones (and
        // brings them back to a returning one).
        crate::shell::sync_outputs(core);
        crate::frame_clock::queue_redraw_all(core);
    }

    /// The shm formats the renderer composites.
    pub fn shm_formats(&self) -> Vec<smithay::reexports::wayland_server::protocol::wl_shm::Format> {
        self.renderer.shm_formats()
    }

    /// The dmabuf formats the renderer can read.
    pub fn dmabuf_formats(&self) -> smithay::backend::allocator::format::FormatSet {
        self.renderer.dmabuf_formats()
    }

    /// Whether the renderer can read `dmabuf` (validation when a client creates one).
    pub fn import_dmabuf(&mut self, dmabuf: &Dmabuf) -> bool {
        self.renderer.import_dmabuf(&self.dev, dmabuf)
    }

    /// The renderer in use: `pixman` or `gles (GL_RENDERER)`.
    pub fn renderer_name(&self) -> String {
        self.renderer.name()
    }

    /// The composited frame the primary plane of output `name` shows now, read from the
    /// buffer the display scans out (not composited again, unlike [`Kms::capture`]); `None`
    /// when it shows a client buffer. For tests.
    pub fn scanned_out_frame(&self, name: &str) -> Result<Option<Frame>> {
        let out = self
            .outputs
            .get(name)
            .ok_or_else(|| anyhow!("no output {name}"))?;
        let Some(index) = out.pipeline.shown_slot() else {
            return Ok(None);
        };
        let (w, h) = out.pipeline.mode().size();
        let (bytes, stride) = match (&out.frames, out.pipeline.dumb_frame(index)) {
            (Frames::Gles(frames), _) => frames.read(index)?,
            (Frames::Dumb, Some(dumb)) => (dumb.bytes().to_vec(), dumb.stride()),
            (Frames::Dumb, None) => bail!("no dumb buffer in slot {index}"),
        };
        Ok(Some(Frame::new(
            w.into(),
            h.into(),
            stride,
            lockstep_render::PixelFormat::Xrgb8888,
            bytes,
        )?))
    }

    /// Time spent compositing frames (rendering until each frame was complete), since the
    /// start: for benchmarks.
    pub fn composite_time(&self) -> std::time::Duration {
        self.composite_time
    }

    /// The device's path.
    pub fn device_path(&self) -> &Path {
        self.dev.dev.path()
    }

    /// The pipeline of output `name` (fault injection and counters in tests).
    pub fn pipeline_mut(&mut self, name: &str) -> Option<&mut OutputPipeline> {
        self.outputs.get_mut(name).map(|o| &mut o.pipeline)
    }

    /// Why the last async flip a client asked for on output `name` went as a normal flip.
    pub fn async_refused(&self, name: &str) -> Option<&str> {
        self.outputs.get(name)?.async_refused.as_deref()
    }

    /// For the last page flips of output `name`: time from the kernel's flip timestamp, and
    /// from reading the flip event, to the end of cleanup (leases ended, release points
    /// signalled).
    pub fn flip_to_cleanup(&self, name: &str) -> Vec<(std::time::Duration, std::time::Duration)> {
        self.outputs
            .get(name)
            .map(|o| o.flip_to_cleanup.iter().copied().collect())
            .unwrap_or_default()
    }

    /// What each plane of each output shows (`lockstep msg outputs --planes`).
    pub fn plane_reports(&self) -> Vec<(String, Vec<PlaneReport>)> {
        let mut out: Vec<_> = self
            .outputs
            .iter()
            .map(|(name, o)| (name.clone(), o.pipeline.plane_report()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Whether releases of buffers leaving a plane wait for the out-fence in the kernel
    /// (default) or are signalled by the CPU at the page-flip event (for benchmarks).
    pub fn set_fenced_releases(&mut self, on: bool) {
        self.fenced_releases = on;
    }

    /// Keeps the session (its devices stay open as long as it lives).
    pub fn set_session(&mut self, session: super::session::KmsSession) {
        self.session = Some(session);
    }

    /// Keeps libinput, suspended and resumed with the session.
    pub fn set_input(&mut self, input: super::libinput::InputHandle) {
        self.input = Some(input);
    }

    /// The session went away (VT switch): commit nothing and read no input until it is back.
    pub fn pause(&mut self) {
        self.active = false;
        if let Some(input) = &mut self.input {
            input.suspend();
        }
        info!("session paused: KMS commits stop");
    }

    /// The session is back: set the whole display state again on the next frame.
    pub fn resume(&mut self, core: &mut Core) {
        self.active = true;
        // libseat hands master back before it says so; a direct session takes it here.
        if let Err(err) = lockstep_render::kms::drm::Device::acquire_master_lock(&self.dev.dev) {
            warn!(%err, "cannot take DRM master back; commits will fail until it is free");
        }
        if let Some(input) = &mut self.input {
            if let Err(err) = input.resume() {
                warn!("cannot resume input: {err:#}");
            }
        }
        for out in self.outputs.values_mut() {
            // A frame still in flight keeps its feedback: its page flip still comes.
            out.pipeline.reset_after_resume();
            out.committed_at = None;
            out.damage_tracker = OutputDamageTracker::from_output(&out.output);
            out.change_probe = OutputDamageTracker::from_output(&out.output);
            out.composited_current = false;
            queue_redraw(core, &out.output);
        }
        info!("session resumed: the display state is committed again");
    }

    /// The dmabuf feedback to advertise (`kms_feedback.rs` says which main device and why),
    /// or `None` for linux-dmabuf v3 with the renderer's formats. Kept for per-surface
    /// feedback after each frame.
    pub fn dmabuf_feedback(&mut self) -> Option<smithay::wayland::dmabuf::DmabufFeedback> {
        use super::kms_feedback::{node_dev, KmsFeedback};
        let display = node_dev(self.dev.dev.path())?;
        let main = match (self.dev.dev.render_node(), &self.renderer) {
            (Some(node), _) => node_dev(&node)?,
            (None, KmsRenderer::Gles(_)) => display,
            (None, KmsRenderer::Pixman(_)) => return None,
        };
        let first = self.outputs.values().next().map(|o| &o.pipeline);
        let primary_formats = first
            .map(|p| p.primary_formats().to_vec())
            .unwrap_or_default();
        let overlay_formats = first
            .filter(|p| p.has_overlay_plane())
            .map(|p| p.overlay_formats().to_vec());
        match KmsFeedback::new(
            main,
            display,
            self.dmabuf_formats(),
            &primary_formats,
            overlay_formats.as_deref(),
        ) {
            Ok(feedback) => {
                let render = feedback.render.clone();
                self.feedback = Some(feedback);
                Some(render)
            }
            Err(err) => {
                warn!("no dmabuf feedback: {err:#}");
                None
            }
        }
    }

    /// Renders and commits `output`'s next frame (or defers it until the pending flip).
    pub fn render(&mut self, core: &mut Core, output: &Output) -> Result<RenderOutcome> {
        let start = std::time::Instant::now();
        let outcome = self.render_frame(core, output);
        if let Some(feedback) = &self.feedback {
            feedback.update(core, output);
        }
        if let Some(out) = self.outputs.get_mut(&output.name()) {
            if out.pipeline.flip_pending() && out.committed_at.is_none() {
                out.committed_at = Some(start);
                self.arm_watchdog(core, start + FLIP_TIMEOUT);
            }
        }
        self.busy += start.elapsed();
        outcome
    }

    /// Makes the flip watchdog fire at `deadline`, unless it is armed already (it re-arms
    /// itself for the next pending flip when it fires).
    fn arm_watchdog(&mut self, core: &Core, deadline: std::time::Instant) {
        if self.watchdog.is_some() {
            return;
        }
        let timer = smithay::reexports::calloop::timer::Timer::from_deadline(deadline);
        let armed = core
            .loop_handle
            .insert_source(timer, |now, _, state: &mut State| {
                let crate::backend::Backend::Kms(kms) = &mut state.backend else {
                    return smithay::reexports::calloop::timer::TimeoutAction::Drop;
                };
                kms.flip_watchdog(&mut state.core, now)
            });
        match armed {
            Ok(token) => self.watchdog = Some(token),
            Err(err) => warn!(error = %err.error, "cannot arm the page-flip watchdog"),
        }
    }

    /// The watchdog fired: completes flips pending for longer than [`FLIP_TIMEOUT`], and
    /// re-arms for the next pending one.
    fn flip_watchdog(
        &mut self,
        core: &mut Core,
        now: std::time::Instant,
    ) -> smithay::reexports::calloop::timer::TimeoutAction {
        use smithay::reexports::calloop::timer::TimeoutAction;
        if !self.active {
            // Away from the VT no flips are expected; resume commits everything again.
            self.watchdog = None;
            return TimeoutAction::Drop;
        }
        let stalled: Vec<String> = self
            .outputs
            .iter()
            .filter(|(_, o)| {
                o.pipeline.flip_pending() && o.committed_at.is_some_and(|t| now >= t + FLIP_TIMEOUT)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stalled {
            let Some(out) = self.outputs.get_mut(&name) else {
                continue;
            };
            let waited = out.committed_at.map(|t| now - t).unwrap_or_default();
            tracing::error!(
                output = %name,
                crtc = ?out.pipeline.crtc(),
                waited_ms = waited.as_millis() as u64,
                "page flip never completed (a driver or GPU problem); treating it as done so the \
                 output is not frozen"
            );
            let time = core.now();
            Self::complete_flip(out, core, 0, time, time);
            out.redraw_after_flip = false;
            queue_redraw(core, &out.output);
        }
        let retiring = self.expire_retiring(core, now);
        let next = self
            .outputs
            .values()
            .filter(|o| o.pipeline.flip_pending())
            .filter_map(|o| o.committed_at)
            .map(|t| t + FLIP_TIMEOUT)
            .chain(retiring)
            .min();
        match next {
            Some(t) => TimeoutAction::ToInstant(t),
            _ => {
                self.watchdog = None;
                TimeoutAction::Drop
            }
        }
    }

    /// Makes the next `n` page-flip events be ignored, as if the kernel never sent them
    /// (tests of the flip watchdog).
    #[doc(hidden)]
    pub fn lose_page_flip_events(&mut self, n: usize) {
        self.lose_flip_events = n;
    }

    /// The fence release points of composited buffers must wait for (see the field).
    pub fn release_fence(&self) -> Option<BorrowedFd<'_>> {
        self.last_render_fence.as_ref().map(|f| f.as_fd())
    }

    /// Whether composited frames may leave unfinished (their release points then follow
    /// [`Kms::release_fence`]).
    pub fn native_fences(&self) -> bool {
        self.renderer.native_fences()
    }

    /// Time spent rendering, committing and cleaning up after flips, since the start: the
    /// backend's own CPU work (it never blocks), for benchmarks.
    pub fn busy(&self) -> std::time::Duration {
        self.busy
    }

    fn render_frame(&mut self, core: &mut Core, output: &Output) -> Result<RenderOutcome> {
        let deferred = || RenderOutcome {
            damaged: false,
            states: RenderElementStates::default(),
            presented: Presented::Deferred,
        };
        if !self.active {
            return Ok(deferred());
        }
        let Self {
            renderer,
            outputs,
            cursor,
            theme_cursor,
            client_cursor,
            fenced_releases,
            composite_time,
            last_render_fence,
            retiring,
            ..
        } = self;
        let out = outputs
            .get_mut(&output.name())
            .ok_or_else(|| anyhow!("unknown KMS output {}", output.name()))?;
        if out.pipeline.flip_pending() || Self::retiring_on(retiring, out.pipeline.crtc()) {
            out.redraw_after_flip = true;
            return Ok(deferred());
        }
        let frame = FrameInputs {
            cursor,
            theme_cursor,
            client_cursor,
            fenced_releases: *fenced_releases,
            composite_time,
            fences: renderer.native_fences() && out.pipeline.primary_takes_in_fences(),
            last_render_fence,
        };
        match renderer {
            KmsRenderer::Pixman(r) => render_with(r, out, core, output, frame),
            KmsRenderer::Gles(g) => render_with(g.renderer_mut(), out, core, output, frame),
        }
    }

    /// Copies what `output` shows (composited afresh, so direct scanout and the cursor plane
    /// are included).
    pub fn capture(&mut self, core: &mut Core, output: &Output) -> Result<Frame> {
        match &mut self.renderer {
            KmsRenderer::Pixman(r) => render_offscreen::<_, Image<'static, 'static>>(
                r,
                core,
                &self.cursor,
                output,
                Fourcc::Xrgb8888,
            ),
            // GLES renderbuffers need Abgr8888 (llvmpipe rejects BGRA storage).
            KmsRenderer::Gles(g) => render_offscreen::<_, GlesRenderbuffer>(
                g.renderer_mut(),
                core,
                &self.cursor,
                output,
                Fourcc::Abgr8888,
            ),
        }
        .map_err(|e| anyhow!(e))
    }
    /// Page-flip events of the device: cleanup, feedback, and the redraw that waited.
    fn page_flips(&mut self, core: &mut Core) {
        let start = std::time::Instant::now();
        self.handle_page_flips(core);
        self.busy += start.elapsed();
    }

    fn handle_page_flips(&mut self, core: &mut Core) {
        let woke = core.now();
        let events = match lockstep_render::kms::drm::control::Device::receive_events(&self.dev.dev)
        {
            Ok(events) => events,
            Err(err) => {
                warn!(%err, "reading DRM events failed");
                return;
            }
        };
        for event in events {
            let lockstep_render::kms::drm::control::Event::PageFlip(flip) = event else {
                continue;
            };
            if self.lose_flip_events > 0 {
                self.lose_flip_events -= 1;
                debug!(crtc = ?flip.crtc, "page-flip event ignored (test)");
                continue;
            }
            // An output turning off first: a new output on the same CRTC waits for it.
            if self.retiring_flip(core, flip.crtc) {
                continue;
            }
            let Some(out) = self
                .outputs
                .values_mut()
                .find(|o| o.pipeline.crtc() == flip.crtc)
            else {
                continue;
            };
            if !Self::complete_flip(out, core, flip.frame, flip.duration, woke) {
                continue;
            }
            if std::mem::take(&mut out.power_off_after_flip) {
                if let Err(err) = out.pipeline.power_off() {
                    warn!(output = %out.output.name(), %err, "cannot turn the output off");
                }
                continue;
            }
            if std::mem::take(&mut out.redraw_after_flip) {
                queue_redraw(core, &out.output);
            }
        }
    }

    /// The flip of `out`'s commit in flight happened at `time` (sequence `sequence`): cleanup
    /// and feedback. False when no flip was pending (a late event after the watchdog).
    fn complete_flip(
        out: &mut KmsOutput,
        core: &mut Core,
        sequence: u32,
        time: std::time::Duration,
        woke: std::time::Duration,
    ) -> bool {
        let Some(done) = out.pipeline.on_page_flip(sequence, time) else {
            return false;
        };
        out.committed_at = None;
        if out.flip_to_cleanup.len() == FLIP_LOG {
            out.flip_to_cleanup.pop_front();
        }
        let now = core.now();
        out.flip_to_cleanup
            .push_back((now.saturating_sub(done.time), now.saturating_sub(woke)));
        if let Some(outcome) = out.in_flight.take() {
            core.after_render(
                &out.output,
                done.time,
                Some(u64::from(done.sequence)),
                &outcome,
            );
        }
        true
    }
}

/// What one frame of an output needs from the backend besides the renderer.
struct FrameInputs<'a> {
    cursor: &'a DefaultCursor,
    theme_cursor: &'a CursorPixels,
    client_cursor: &'a mut Option<CursorPixels>,
    fenced_releases: bool,
    composite_time: &'a mut std::time::Duration,
    /// Whether the composited frame may go to the plane with its render fence.
    fences: bool,
    last_render_fence: &'a mut Option<OwnedFd>,
}

/// One frame of `out` with `renderer`: the plane plan, and composition when it needs one.
fn render_with<R>(
    renderer: &mut R,
    out: &mut KmsOutput,
    core: &mut Core,
    output: &Output,
    frame: FrameInputs<'_>,
) -> Result<RenderOutcome>
where
    R: Composite + ImportAll + ImportMem + ImportMemWl + ImportDmaWl,
    R::TextureId: Clone + Send + Texture + 'static,
{
    let FrameInputs {
        cursor,
        theme_cursor,
        client_cursor,
        fenced_releases,
        composite_time,
        fences,
        last_render_fence,
    } = frame;
    {
        // The pointer: on the cursor plane when possible.
        let (cursor_plan, cursor_on_plane) =
            plan_cursor(core, output, &out.pipeline, theme_cursor, client_cursor);
        let elements =
            output_elements(renderer, core, (!cursor_on_plane).then_some(cursor), output);

        // A client buffer that can go on a plane as it is: the whole output (primary plane)
        // or a part of it (overlay plane).
        let candidate = scanout_candidate(core, output, &elements, fenced_releases)
            .filter(|(scanout, _)| !out.unscannable.contains(&scanout.buffer_key()));
        let full = output
            .current_mode()
            .map(|m| Rectangle::from_size(m.size))
            .unwrap_or_default();
        if let Some((scanout, geometry)) = &candidate {
            if *geometry == full && out.pipeline.primary_formats().contains(&scanout.fourcc()) {
                // A client that accepts tearing gets an async flip when the driver and the
                // frame allow one (no cursor on its plane, acquire signalled, ...).
                if scanout.allows_tearing() && matches!(cursor_plan, CursorPlan::Hidden) {
                    match out.pipeline.prepare_async(scanout).map(|p| p.commit()) {
                        Ok(committed) => {
                            out.damage_tracker = OutputDamageTracker::from_output(output);
                            out.composited_current = false;
                            let states = element_states(&elements);
                            return Ok(finish(out, committed, true, states));
                        }
                        Err(err) => note_async_refused(out, &err),
                    }
                }
                let plan = Plan {
                    primary: PrimaryPlan::Direct(scanout),
                    cursor: cursor_plan,
                    overlay: None,
                };
                let outcome = prepare_and_commit(&mut out.pipeline, &plan);
                match outcome {
                    Ok(committed) => {
                        // Composition resumes from scratch after direct scanout.
                        out.damage_tracker = OutputDamageTracker::from_output(output);
                        out.composited_current = false;
                        let states = element_states(&elements);
                        return Ok(finish(out, committed, true, states));
                    }
                    Err(err) => {
                        debug!(output = %output.name(), %err, "direct scanout rejected; compositing");
                        remember_unscannable(out, &err, scanout.buffer_key());
                    }
                }
            }
        }
        let overlay = candidate.as_ref().filter(|(scanout, geometry)| {
            *geometry != full
                && out.pipeline.has_overlay_plane()
                && out.pipeline.overlay_formats().contains(&scanout.fourcc())
        });
        let overlay_plan = || {
            overlay.map(|(scanout, geometry)| OverlayPlan {
                buffer: scanout,
                position: (geometry.loc.x, geometry.loc.y),
            })
        };
        // The overlay's buffer is topmost: everything else is composited beneath it.
        let composited: &[_] = if overlay.is_some() {
            &elements[1..]
        } else {
            &elements
        };

        // Nothing changed and the screen shows the composited frame: only the cursor and
        // overlay planes (or nothing: a commit that paces frame callbacks) go to the kernel.
        let changed = out
            .change_probe
            .damage_output(1, composited)
            .map(|(damage, _)| damage.is_some())
            .unwrap_or(true);
        if !changed && out.composited_current {
            let plan = Plan {
                primary: PrimaryPlan::Keep,
                cursor: cursor_plan,
                overlay: overlay_plan(),
            };
            let outcome = prepare_and_commit(&mut out.pipeline, &plan);
            match outcome {
                Ok(committed) => {
                    let states = element_states(&elements);
                    return Ok(finish(out, committed, overlay.is_some(), states));
                }
                Err(err) => {
                    debug!(output = %output.name(), %err, "plane update rejected; compositing")
                }
            }
        }

        // Composition into the pipeline's next dumb buffer.
        let mut attempt = 0;
        loop {
            let elements_now;
            let (elements, cursor_plan, overlay) = if attempt == 0 {
                (composited, cursor_plan, overlay_plan())
            } else {
                // Fallback: everything composited, the cursor too.
                elements_now = output_elements(renderer, core, Some(cursor), output);
                out.damage_tracker = OutputDamageTracker::from_output(output);
                (&elements_now[..], CursorPlan::Hidden, None)
            };
            let target = out.pipeline.render_target()?;
            let started = std::time::Instant::now();
            let composited = renderer.composite(
                &mut out.frames,
                target,
                &mut out.damage_tracker,
                elements,
                fences,
            )?;
            *composite_time += started.elapsed();
            let (damaged, states) = (composited.damaged, composited.states);
            // Kept for the release points whatever happens to the commit: the GPU has the
            // work either way.
            *last_render_fence = composited.render_fence;
            let plan_had_overlay = overlay.is_some();
            let plan = Plan {
                primary: if damaged {
                    PrimaryPlan::Composited {
                        render_fence: last_render_fence.as_ref().map(|f| f.as_fd()),
                    }
                } else {
                    PrimaryPlan::Keep
                },
                cursor: cursor_plan,
                overlay,
            };
            let outcome = prepare_and_commit(&mut out.pipeline, &plan);
            match outcome {
                Ok(committed) => {
                    // A fallback frame has the cursor drawn in: the next one repaints.
                    out.composited_current = attempt == 0;
                    return Ok(finish(out, committed, damaged, states));
                }
                Err(err) if attempt == 0 && (cursor_on_plane || plan_had_overlay) => {
                    debug!(output = %output.name(), %err, "plane setup rejected; compositing everything");
                    if let Some((scanout, _)) = candidate.as_ref().filter(|_| plan_had_overlay) {
                        remember_unscannable(out, &err, scanout.buffer_key());
                    }
                    attempt += 1;
                }
                Err(err) => {
                    // The previous frame stays; the next redraw starts from a full repaint.
                    out.damage_tracker = OutputDamageTracker::from_output(output);
                    out.composited_current = false;
                    warn!(output = %output.name(), %err, "cannot show a new frame; the previous one stays");
                    return Ok(RenderOutcome {
                        damaged: false,
                        states,
                        presented: Presented::AtSlot,
                    });
                }
            }
        }
    }
}

/// How many buffers the kernel refused to scan out are remembered per output.
const UNSCANNABLE_KEPT: usize = 16;

/// Remembers `key` as not scannable when the kernel refused its framebuffer or the plane
/// configuration; other failures (fence export, lease) may not happen again.
fn remember_unscannable(
    out: &mut KmsOutput,
    err: &lockstep_render::kms::PrepareError,
    key: BufferKey,
) {
    use lockstep_render::kms::Step;
    if matches!(err.step, Step::FramebufferImport | Step::TestOnly)
        && !out.unscannable.contains(&key)
    {
        if out.unscannable.len() == UNSCANNABLE_KEPT {
            out.unscannable.pop_front();
        }
        out.unscannable.push_back(key);
    }
}

/// Prepares `plan` and, when every step succeeded, commits it.
fn prepare_and_commit(
    pipeline: &mut OutputPipeline,
    plan: &Plan<'_>,
) -> std::result::Result<
    std::result::Result<(), lockstep_render::kms::CommitRefused>,
    lockstep_render::kms::PrepareError,
> {
    pipeline.prepare(plan).map(|prepared| prepared.commit())
}

/// Logs why a tearing flip went as a normal one, once per reason and output.
fn note_async_refused(out: &mut KmsOutput, err: &lockstep_render::kms::PrepareError) {
    let reason = err.to_string();
    if out.async_refused.as_deref() != Some(reason.as_str()) {
        info!(output = %out.output.name(), %reason, "tearing asked for; vsynced flip instead");
        out.async_refused = Some(reason);
    }
}

/// After a commit: keep the feedback for the flip, or report the kernel's refusal.
fn finish(
    out: &mut KmsOutput,
    committed: Result<(), lockstep_render::kms::CommitRefused>,
    damaged: bool,
    states: RenderElementStates,
) -> RenderOutcome {
    match committed {
        Ok(()) => {
            out.in_flight = Some(RenderOutcome {
                damaged,
                states,
                presented: Presented::AtPageFlip,
            });
            RenderOutcome {
                damaged,
                states: RenderElementStates::default(),
                presented: Presented::AtPageFlip,
            }
        }
        Err(err) => {
            out.damage_tracker = OutputDamageTracker::from_output(&out.output);
            out.composited_current = false;
            warn!(output = %out.output.name(), %err, "the previous frame stays");
            RenderOutcome {
                damaged: false,
                states,
                presented: Presented::AtSlot,
            }
        }
    }
}

fn element_states<E: Element>(elements: &[E]) -> RenderElementStates {
    let mut states = RenderElementStates::default();
    for element in elements {
        states.states.insert(
            element.id().clone(),
            smithay::backend::renderer::element::RenderElementState {
                visible_area: 0,
                presentation_state:
                    smithay::backend::renderer::element::RenderElementPresentationState::ZeroCopy,
            },
        );
    }
    states
}

/// The mode from the config when the connector has it, else the preferred one.
fn choose_mode(
    connector: &lockstep_render::kms::ConnectorInfo,
    wanted: Option<lockstep_config::Mode>,
) -> lockstep_render::kms::drm::control::Mode {
    let preferred = connector.preferred_mode();
    let Some(wanted) = wanted else {
        return preferred;
    };
    let matches = connector.modes.iter().filter(|m| {
        let (w, h) = m.size();
        u32::from(w) == wanted.width && u32::from(h) == wanted.height
    });
    let best = match wanted.refresh_mhz {
        Some(r) => matches.min_by_key(|m| (refresh_mhz(m) as i64 - i64::from(r)).abs()),
        None => matches.max_by_key(|m| refresh_mhz(m)),
    };
    match best {
        Some(mode) => *mode,
        None => {
            warn!(
                output = %connector.name,
                wanted = %format!("{}x{}", wanted.width, wanted.height),
                "the connector has no such mode; using its preferred mode"
            );
            preferred
        }
    }
}

/// A mode's refresh rate in millihertz, from its pixel clock and totals.
fn refresh_mhz(mode: &lockstep_render::kms::drm::control::Mode) -> i32 {
    let (_, _, htotal) = mode.hsync();
    let (_, _, vtotal) = mode.vsync();
    let pixels = u64::from(htotal) * u64::from(vtotal);
    if pixels == 0 {
        return (mode.vrefresh() * 1000) as i32;
    }
    (u64::from(mode.clock()) * 1_000_000 / pixels) as i32
}

/// The device fd as a calloop source.
struct DeviceFd(SharedDevice);

impl AsFd for DeviceFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.dev.as_fd()
    }
}

fn watch_page_flips(loop_handle: &LoopHandle<'static, State>, dev: &SharedDevice) -> Result<()> {
    loop_handle
        .insert_source(
            Generic::new(DeviceFd(dev.clone()), Interest::READ, LoopMode::Level),
            |_, _, state: &mut State| {
                if let crate::backend::Backend::Kms(kms) = &mut state.backend {
                    kms.page_flips(&mut state.core);
                }
                Ok(PostAction::Continue)
            },
        )
        .map_err(|e| anyhow!("cannot watch the DRM device for page flips: {e}"))?;
    Ok(())
}

/// The cursor plan for `output`, and whether the pointer is on the cursor plane (else it
/// must be composited).
fn plan_cursor<'a>(
    core: &Core,
    output: &Output,
    pipeline: &OutputPipeline,
    theme: &'a CursorPixels,
    client: &'a mut Option<CursorPixels>,
) -> (CursorPlan<'a>, bool) {
    if !pipeline.has_cursor_plane() {
        return (CursorPlan::Hidden, false);
    }
    let Some(relative) = pointer_on_output(core, output) else {
        return (CursorPlan::Hidden, true);
    };
    let relative = relative.to_i32_round::<i32>();
    let scale = output.current_scale().fractional_scale();
    let pixels: &CursorPixels = match &core.cursor_status {
        CursorImageStatus::Hidden => return (CursorPlan::Hidden, true),
        CursorImageStatus::Named(_) => theme,
        CursorImageStatus::Surface(surface) => {
            if scale != 1.0 {
                return (CursorPlan::Hidden, false);
            }
            match client_cursor_pixels(surface, pipeline.cursor_size()) {
                Some(p) => &*client.insert(p),
                None => return (CursorPlan::Hidden, false),
            }
        }
    };
    let (cw, ch) = pipeline.cursor_size();
    if pixels.width > cw || pixels.height > ch || pixels.width == 0 {
        return (CursorPlan::Hidden, false);
    }
    (
        CursorPlan::Show {
            image: CursorImage {
                key: pixels.key,
                width: pixels.width,
                height: pixels.height,
                pixels: &pixels.pixels,
            },
            position: (relative.x - pixels.hotspot.0, relative.y - pixels.hotspot.1),
        },
        true,
    )
}

/// A client's cursor surface as pixels, when it is one shm buffer at scale 1 without
/// subsurfaces that fits the cursor plane (`max`); `None` means: composite it.
fn client_cursor_pixels(surface: &WlSurface, max: (u32, u32)) -> Option<CursorPixels> {
    if !smithay::wayland::compositor::get_children(surface).is_empty() {
        return None;
    }
    let hotspot = cursor_surface_hotspot(surface);
    let buffer = with_renderer_surface_state(surface, |s| {
        (s.buffer_scale() == 1)
            .then(|| s.buffer().cloned())
            .flatten()
    })
    .flatten()?;
    smithay::wayland::shm::with_buffer_contents(&buffer, |ptr, len, data| {
        use smithay::reexports::wayland_server::protocol::wl_shm::Format;
        if !matches!(data.format, Format::Argb8888 | Format::Xrgb8888) {
            return None;
        }
        let (w, h, stride, offset) = (
            data.width as usize,
            data.height as usize,
            data.stride as usize,
            data.offset as usize,
        );
        // Checked before copying anything: a client cannot make lockstep copy a huge image
        // every frame.
        if w == 0 || w > max.0 as usize || h > max.1 as usize {
            return None;
        }
        if offset + stride * h > len || stride < w * 4 {
            return None;
        }
        // SAFETY: smithay hands out the pool's mapping of `len` bytes for this call; the
        // bounds were checked above.
        let bytes = unsafe { std::slice::from_raw_parts(ptr.add(offset), stride * h) };
        let opaque = data.format == Format::Xrgb8888;
        let mut pixels = Vec::with_capacity(w * h);
        for row in 0..h {
            for px in bytes[row * stride..][..w * 4].chunks_exact(4) {
                let v = u32::from_le_bytes([px[0], px[1], px[2], px[3]]);
                pixels.push(if opaque { v | 0xff00_0000 } else { v });
            }
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (w, h).hash(&mut hasher);
        pixels.hash(&mut hasher);
        // Key 1 is the theme cursor; client images get keys with the top bit set.
        let key = hasher.finish() | 1 << 63;
        Some(CursorPixels {
            key,
            width: w as u32,
            height: h as u32,
            hotspot: (hotspot.x, hotspot.y),
            pixels,
        })
    })
    .ok()
    .flatten()
}
