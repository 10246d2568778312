//! What output management, output power and gamma control ask of KMS outputs: the
//! connector's modes (a new mode is a new pipeline, built before anything changes), outputs
//! turned off and on, the CRTC powered down and up (DPMS), the CRTC's gamma ramps. A child
//! module of `kms.rs`, so the backend file stays readable.
//!
//! # Turning an output off and on
//!
//! An output turned off (wlr-randr `--off`, `[[output]] enabled = false`) gives everything
//! back, as an unplugged one does: it leaves the layout (its windows move to the remaining
//! outputs) and the wl_output globals, and its CRTC is switched off for good (`ACTIVE = 0`, no
//! mode, the connector and every plane unbound), so the CRTC and the frame buffers are free
//! for other connectors. What can fail is done first ([`Kms::prepare_off`]: the disabling
//! request checked with `TEST_ONLY`); [`Kms::turn_off`] then commits it and cannot fail. A
//! flip still pending then delays the commit to its page flip (the kernel takes one commit
//! per CRTC at a time); the pipeline lives on as [`Retiring`] until the disabling commit's own
//! event, so the buffers on the planes stay leased until the CRTC stopped reading them. Should
//! the kernel still refuse the commit (DRM master lost in between), dropping the pipeline
//! removes its framebuffers, and the kernel turns off what showed them.
//!
//! The connector stays known as an [`OffOutput`] with its `Output` (modes, the current mode,
//! scale, transform, position), listed by output management as a head that is off; a
//! connector the config turns off at start is one from the beginning. [`Kms::prepare_on`]
//! builds a new pipeline on a free CRTC in the output's mode (or the one asked for) and checks
//! its first modeset with `TEST_ONLY`; [`Kms::turn_on`] puts the output back (wl_output global,
//! layout) and its next frame is that modeset. While the session is away (another VT) the
//! display is not lockstep's to test or change: both are refused.

use anyhow::{anyhow, bail, Context, Result};
use lockstep_render::kms::{ConnectorInfo, DisableRequest, OutputPipeline};
use smithay::{
    backend::renderer::damage::OutputDamageTracker,
    output::{Mode, Output, PhysicalProperties, Scale, Subpixel},
    utils::{Logical, Point, Transform},
};
use tracing::{info, warn};

use super::{refresh_mhz, Kms, KmsOutput, FLIP_TIMEOUT};
use crate::{
    backend::kms_gles::{Frames, KmsRenderer},
    frame_clock::queue_redraw,
    state::{Core, State},
};

/// A mode change, or an output being turned on, whose pipeline is built (and, for turning on,
/// its first modeset checked): [`Kms::set_mode`] or [`Kms::turn_on`] takes it.
pub struct PreparedKmsMode {
    pipeline: OutputPipeline,
    frames: Frames,
    mode: Mode,
}

/// Turning an output off, checked: [`Kms::turn_off`] takes it.
pub struct PreparedOff {
    request: DisableRequest,
}

/// A connected connector lockstep does not drive (turned off), with the `Output` it comes
/// back as.
pub(super) struct OffOutput {
    pub(super) output: Output,
    pub(super) connector: ConnectorInfo,
}

/// The pipeline of an output turned off, kept until the kernel is done with its buffers.
pub(super) struct Retiring {
    pub(super) name: String,
    pipeline: OutputPipeline,
    /// Declared after the pipeline: its framebuffers go before the GBM buffers.
    _frames: Frames,
    /// The disabling commit, while it waits for the flip that was pending.
    disable: Option<DisableRequest>,
    /// Since when its event is awaited (for the flip watchdog).
    pub(super) since: std::time::Instant,
}

impl Retiring {
    pub(super) fn crtc(&self) -> lockstep_render::kms::drm::control::crtc::Handle {
        self.pipeline.crtc()
    }
}

impl Kms {
    /// Every output: those on, then those off, by name.
    pub fn heads(&self) -> Vec<(Output, bool)> {
        let mut heads: Vec<_> = self
            .outputs
            .values()
            .map(|o| (o.output.clone(), true))
            .chain(self.off.values().map(|o| (o.output.clone(), false)))
            .collect();
        heads.sort_by_key(|(o, _)| o.name());
        heads
    }

    /// The connector of `output`, on or off.
    fn connector_of(&self, output: &Output) -> Result<&ConnectorInfo, String> {
        let name = output.name();
        self.outputs
            .get(&name)
            .map(|o| o.pipeline.connector())
            .or_else(|| self.off.get(&name).map(|o| &o.connector))
            .ok_or_else(|| format!("{name} is not a KMS output"))
    }

    /// The connector's mode equal to `mode` (size and refresh), if it has one.
    fn connector_mode(
        &self,
        output: &Output,
        mode: Mode,
    ) -> Result<lockstep_render::kms::drm::control::Mode, String> {
        self.connector_of(output)?
            .modes
            .iter()
            .find(|m| {
                let (w, h) = m.size();
                (i32::from(w), i32::from(h)) == (mode.size.w, mode.size.h)
                    && (mode.refresh == 0 || refresh_mhz(m) == mode.refresh)
            })
            .copied()
            .ok_or_else(|| {
                format!(
                    "{} does not offer {}x{}@{} mHz",
                    output.name(),
                    mode.size.w,
                    mode.size.h,
                    mode.refresh
                )
            })
    }

    /// Whether `output` can show `mode`: only modes its connector offers.
    pub fn check_mode(&self, output: &Output, mode: Mode) -> Result<(), String> {
        self.connector_mode(output, mode).map(|_| ())
    }

    /// Builds a pipeline for `output` in `mode` (the fallible part of a mode change: frame
    /// buffers, plane properties). Nothing on screen changes yet.
    pub fn prepare_mode(&mut self, output: &Output, mode: Mode) -> Result<PreparedKmsMode> {
        let drm_mode = self.connector_mode(output, mode).map_err(|e| anyhow!(e))?;
        let out = self
            .outputs
            .get(&output.name())
            .ok_or_else(|| anyhow!("{} is not on", output.name()))?;
        let (connector, crtc) = (out.pipeline.connector().clone(), out.pipeline.crtc());
        let (pipeline, frames) = self
            .build_pipeline(&connector, crtc, drm_mode)
            .with_context(|| format!("cannot set up {} in the new mode", output.name()))?;
        Ok(PreparedKmsMode {
            pipeline,
            frames,
            mode: smithay_mode(&drm_mode),
        })
    }

    /// Switches `output` to a prepared mode: its next frame is a modeset (cannot fail here;
    /// a modeset the kernel refuses keeps the old frame, like any refused commit).
    pub fn set_mode(&mut self, core: &mut Core, output: &Output, prepared: PreparedKmsMode) {
        let Some(out) = self.outputs.get_mut(&output.name()) else {
            return;
        };
        // The old pipeline's framebuffers go before the old frames' GBM buffers.
        out.pipeline = prepared.pipeline;
        out.frames = prepared.frames;
        out.composited_current = false;
        out.in_flight = None;
        out.committed_at = None;
        out.unscannable.clear();
        output.change_current_state(Some(prepared.mode), None, None, None);
        out.damage_tracker = OutputDamageTracker::from_output(output);
        out.change_probe = OutputDamageTracker::from_output(output);
        if let Some(data) = core.outputs.get_mut(&output.name()) {
            data.refresh = crate::state::refresh_interval(prepared.mode.refresh);
        }
    }

    /// A pipeline for `connector` on `crtc` in `mode`, with the renderer's frame buffers.
    pub(super) fn build_pipeline(
        &mut self,
        connector: &ConnectorInfo,
        crtc: lockstep_render::kms::drm::control::crtc::Handle,
        mode: lockstep_render::kms::drm::control::Mode,
    ) -> Result<(OutputPipeline, Frames)> {
        let (pipeline, frames) = match &mut self.renderer {
            KmsRenderer::Pixman(_) => (
                OutputPipeline::new(&self.dev, connector.clone(), crtc, mode),
                Frames::Dumb,
            ),
            KmsRenderer::Gles(gles) => {
                let (w, h) = mode.size();
                let (fbs, frames) = gles
                    .frames(&self.dev, (w.into(), h.into()))
                    .context("cannot allocate the frame buffers")?;
                (
                    OutputPipeline::with_frames(&self.dev, connector.clone(), crtc, mode, fbs),
                    Frames::Gles(frames),
                )
            }
        };
        Ok((pipeline?, frames))
    }

    /// A CRTC `connector` can use that no output on holds. One still turning off counts as
    /// free: the new output's first frame waits for its event ([`Kms::retiring_on`]), so
    /// `--off` right before `--on` works.
    pub(super) fn free_crtc(
        &self,
        connector: &ConnectorInfo,
    ) -> Option<lockstep_render::kms::drm::control::crtc::Handle> {
        let used: Vec<_> = self.outputs.values().map(|o| o.pipeline.crtc()).collect();
        connector.crtcs.iter().copied().find(|c| !used.contains(c))
    }

    /// Whether an output turning off still has a commit pending on `crtc` (then a new
    /// output's frame on it must wait: the kernel takes one commit per CRTC at a time).
    pub(super) fn retiring_on(
        retiring: &[Retiring],
        crtc: lockstep_render::kms::drm::control::crtc::Handle,
    ) -> bool {
        retiring.iter().any(|r| r.crtc() == crtc)
    }

    /// Puts an output whose pipeline is built on screen: its wl_output global, its place in
    /// the layout at `position`, and a first frame (the modeset). Cannot fail.
    pub(super) fn install(
        &mut self,
        core: &mut Core,
        output: Output,
        pipeline: OutputPipeline,
        frames: Frames,
        position: Point<i32, Logical>,
    ) {
        let name = output.name();
        let global = output.create_global::<State>(&core.display_handle);
        core.add_output(&output, position);
        if let Some(data) = core.outputs.get_mut(&name) {
            data.flip_paced = true;
        }
        self.outputs.insert(
            name,
            KmsOutput {
                frames,
                damage_tracker: OutputDamageTracker::from_output(&output),
                change_probe: OutputDamageTracker::from_output(&output),
                composited_current: false,
                pipeline,
                output: output.clone(),
                in_flight: None,
                redraw_after_flip: false,
                committed_at: None,
                global,
                unscannable: Default::default(),
                async_refused: None,
                flip_to_cleanup: Default::default(),
                power_off_after_flip: false,
            },
        );
        queue_redraw(core, &output);
    }

    /// Checks that `output` (on) can be turned off: its CRTC's disabling commit passes
    /// `TEST_ONLY`. Changes nothing.
    pub fn prepare_off(&self, output: &Output) -> Result<PreparedOff> {
        if !self.active {
            bail!("the session is on another VT; outputs cannot be changed until it is back");
        }
        let out = self
            .outputs
            .get(&output.name())
            .ok_or_else(|| anyhow!("{} is not on", output.name()))?;
        let request = out
            .pipeline
            .prepare_disable()
            .with_context(|| format!("cannot turn {} off", output.name()))?;
        Ok(PreparedOff { request })
    }

    /// Turns `output` off (see the module docs): out of the layout and the globals, its CRTC
    /// disabled now or after the pending flip. Cannot fail.
    pub fn turn_off(&mut self, core: &mut Core, output: &Output, prepared: PreparedOff) {
        let name = output.name();
        let Some(out) = self.outputs.remove(&name) else {
            return;
        };
        core.remove_output(output);
        core.display_handle.remove_global::<State>(out.global);
        let KmsOutput {
            mut pipeline,
            frames,
            ..
        } = out;
        self.off.insert(
            name.clone(),
            OffOutput {
                output: output.clone(),
                connector: pipeline.connector().clone(),
            },
        );
        let mut disable = Some(prepared.request);
        if !pipeline.flip_pending() {
            commit_disable(&name, &mut pipeline, &mut disable);
        }
        if pipeline.flip_pending() {
            let since = std::time::Instant::now();
            self.retiring.push(Retiring {
                name,
                pipeline,
                _frames: frames,
                disable,
                since,
            });
            self.arm_watchdog(core, since + FLIP_TIMEOUT);
        }
    }

    /// Builds `output`'s (off) pipeline on a free CRTC, in `mode` or the output's current
    /// mode, and checks its first modeset with `TEST_ONLY`. Nothing on screen changes.
    pub fn prepare_on(&mut self, output: &Output, mode: Option<Mode>) -> Result<PreparedKmsMode> {
        if !self.active {
            bail!("the session is on another VT; outputs cannot be changed until it is back");
        }
        let name = output.name();
        let off = self
            .off
            .get(&name)
            .ok_or_else(|| anyhow!("{name} is not off"))?;
        let connector = off.connector.clone();
        let wanted = mode
            .or_else(|| output.current_mode())
            .ok_or_else(|| anyhow!("{name} has no mode"))?;
        let drm_mode = self
            .connector_mode(output, wanted)
            .map_err(|e| anyhow!(e))?;
        let crtc = self.free_crtc(&connector).ok_or_else(|| {
            anyhow!("no free CRTC for {name} (every one it can use drives another output)")
        })?;
        let (mut pipeline, frames) = self
            .build_pipeline(&connector, crtc, drm_mode)
            .with_context(|| format!("cannot set up {name}"))?;
        pipeline
            .test_modeset()
            .with_context(|| format!("cannot turn {name} on"))?;
        Ok(PreparedKmsMode {
            pipeline,
            frames,
            mode: smithay_mode(&drm_mode),
        })
    }

    /// Turns `output` (off) on with its prepared pipeline, at `position` (its transform and
    /// scale are set on the `Output` already). Cannot fail; the next frame is the modeset.
    pub fn turn_on(
        &mut self,
        core: &mut Core,
        output: &Output,
        prepared: PreparedKmsMode,
        position: Point<i32, Logical>,
    ) {
        if self.off.remove(&output.name()).is_none() {
            return;
        }
        output.change_current_state(Some(prepared.mode), None, None, Some(position));
        info!(output = %output.name(), crtc = ?prepared.pipeline.crtc(), "output turned on");
        self.install(
            core,
            output.clone(),
            prepared.pipeline,
            prepared.frames,
            position,
        );
    }

    /// A page-flip event for `crtc` that belongs to an output being turned off: the flip
    /// that was pending is done (the disabling commit goes now), or the disabling commit is
    /// (the pipeline goes). False when no output is turning off on `crtc`.
    pub(super) fn retiring_flip(
        &mut self,
        core: &mut Core,
        crtc: lockstep_render::kms::drm::control::crtc::Handle,
    ) -> bool {
        let Some(index) = self.retiring.iter().position(|r| r.crtc() == crtc) else {
            return false;
        };
        let r = &mut self.retiring[index];
        r.pipeline.on_page_flip(0, std::time::Duration::ZERO);
        if r.disable.is_some() {
            commit_disable(&r.name, &mut r.pipeline, &mut r.disable);
            r.since = std::time::Instant::now();
        }
        if !r.pipeline.flip_pending() {
            let r = self.retiring.swap_remove(index);
            info!(output = %r.name, "CRTC off; its buffers are free");
            self.crtc_freed(core, crtc);
        }
        true
    }

    /// Retiring pipelines whose event never came within [`FLIP_TIMEOUT`] are dropped (their
    /// framebuffers removed: the kernel turns off what still showed them). The earliest
    /// deadline of the others.
    pub(super) fn expire_retiring(
        &mut self,
        core: &mut Core,
        now: std::time::Instant,
    ) -> Option<std::time::Instant> {
        let mut freed = Vec::new();
        self.retiring.retain(|r| {
            let stale = now >= r.since + FLIP_TIMEOUT;
            if stale {
                warn!(
                    output = %r.name,
                    "no page-flip event while turning the output off; dropping its buffers"
                );
                freed.push(r.crtc());
            }
            !stale
        });
        for crtc in freed {
            self.crtc_freed(core, crtc);
        }
        self.retiring.iter().map(|r| r.since + FLIP_TIMEOUT).min()
    }

    /// An output on `crtc` whose frame waited for the CRTC to be turned off draws it now.
    fn crtc_freed(
        &mut self,
        core: &mut Core,
        crtc: lockstep_render::kms::drm::control::crtc::Handle,
    ) {
        if let Some(out) = self
            .outputs
            .values_mut()
            .find(|o| o.pipeline.crtc() == crtc)
        {
            if std::mem::take(&mut out.redraw_after_flip) {
                queue_redraw(core, &out.output);
            }
        }
    }

    /// Turns `output`'s CRTC off (inactive; after the pending flip if there is one), or
    /// lets its next frame turn it on again (a modeset).
    pub fn set_power(&mut self, output: &Output, on: bool) -> Result<()> {
        let out = self
            .outputs
            .get_mut(&output.name())
            .ok_or_else(|| anyhow!("{} is not a KMS output", output.name()))?;
        out.power_off_after_flip = false;
        if on {
            // `power_off` left the pipeline needing a modeset; the next frame is one.
            return Ok(());
        }
        if !self.active {
            // Away on another VT: the CRTC is not ours now; it stays off when we come back.
            return Ok(());
        }
        match out.pipeline.power_off() {
            Ok(()) => Ok(()),
            Err(lockstep_render::kms::KmsError::FlipPending) => {
                out.power_off_after_flip = true;
                Ok(())
            }
            Err(err) => Err(anyhow!("cannot turn {} off: {err}", output.name())),
        }
    }

    /// Entries per gamma ramp of `output`'s CRTC; `None` without `GAMMA_LUT`.
    pub fn gamma_size(&self, output: &Output) -> Option<u32> {
        self.outputs.get(&output.name())?.pipeline.gamma_size()
    }

    /// Sets `output`'s gamma ramps (or the default) with its next frame.
    pub fn set_gamma(&mut self, output: &Output, ramps: Option<Vec<u16>>) -> Result<()> {
        let out = self
            .outputs
            .get_mut(&output.name())
            .ok_or_else(|| anyhow!("{} is not a KMS output", output.name()))?;
        out.pipeline
            .set_gamma(ramps)
            .map_err(|err| anyhow!("{}: {err}", output.name()))
    }

    /// Makes `output`'s next frame a full redraw.
    pub fn full_redraw(&mut self, output: &Output) {
        if let Some(out) = self.outputs.get_mut(&output.name()) {
            out.damage_tracker = OutputDamageTracker::from_output(&out.output);
            out.change_probe = OutputDamageTracker::from_output(&out.output);
            out.composited_current = false;
        }
    }
}

/// Commits `name`'s disabling request (taken out of `disable`). A refusal is logged: the
/// caller then drops the pipeline, whose framebuffers' removal makes the kernel turn off
/// what showed them.
fn commit_disable(name: &str, pipeline: &mut OutputPipeline, disable: &mut Option<DisableRequest>) {
    let Some(request) = disable.take() else {
        return;
    };
    match pipeline.commit_disable(request) {
        Ok(()) => {
            info!(output = %name, crtc = ?pipeline.crtc(), "output turned off: CRTC disabled")
        }
        Err(err) => {
            warn!(output = %name, %err, "the kernel refused to disable the CRTC; removing its buffers instead")
        }
    }
}

/// The `Output` mode of a connector mode.
pub(super) fn smithay_mode(mode: &lockstep_render::kms::drm::control::Mode) -> Mode {
    let (w, h) = mode.size();
    Mode {
        size: (i32::from(w), i32::from(h)).into(),
        refresh: refresh_mhz(mode),
    }
}

/// A new `Output` for `connector` (no global yet): every mode it offers, `mode` current, the
/// connector's preferred one preferred, `scale` and `position`.
pub(super) fn new_output(
    connector: &ConnectorInfo,
    make: String,
    mode: &lockstep_render::kms::drm::control::Mode,
    scale: f64,
    position: Point<i32, Logical>,
) -> Output {
    let output = Output::new(
        connector.name.clone(),
        PhysicalProperties {
            size: (connector.size_mm.0 as i32, connector.size_mm.1 as i32).into(),
            subpixel: Subpixel::Unknown,
            make,
            model: connector.name.clone(),
        },
    );
    // Every mode the connector offers, for output management (wlr-randr lists them).
    for m in &connector.modes {
        output.add_mode(smithay_mode(m));
    }
    output.change_current_state(
        Some(smithay_mode(mode)),
        Some(Transform::Normal),
        Some(Scale::Fractional(scale)),
        Some(position),
    );
    output.set_preferred(smithay_mode(&connector.preferred_mode()));
    output
}
