//! What output management, output power and gamma control ask of KMS outputs: the
//! connector's modes (a new mode is a new pipeline, built before anything changes), the
//! CRTC turned off and on, the CRTC's gamma ramps. A child module of `kms.rs`, so the
//! backend file stays readable.

use anyhow::{anyhow, Context, Result};
use lockstep_render::kms::OutputPipeline;
use smithay::{
    backend::renderer::damage::OutputDamageTracker,
    output::{Mode, Output},
};

use super::{refresh_mhz, Kms};
use crate::state::Core;

/// A mode change whose pipeline is built: [`Kms::set_mode`] swaps it in.
pub struct PreparedKmsMode {
    pipeline: OutputPipeline,
    mode: Mode,
}

impl Kms {
    /// Every output (all on: KMS outputs are turned off by the config only, for now).
    pub fn heads(&self) -> Vec<(Output, bool)> {
        let mut heads: Vec<_> = self
            .outputs
            .values()
            .map(|o| (o.output.clone(), true))
            .collect();
        heads.sort_by_key(|(o, _)| o.name());
        heads
    }

    /// The connector's mode equal to `mode` (size and refresh), if it has one.
    fn connector_mode(
        &self,
        output: &Output,
        mode: Mode,
    ) -> Result<lockstep_render::kms::drm::control::Mode, String> {
        let out = self
            .outputs
            .get(&output.name())
            .ok_or_else(|| format!("{} is not a KMS output", output.name()))?;
        out.pipeline
            .connector()
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

    /// Builds a pipeline for `output` in `mode` (the fallible part of a mode change: dumb
    /// buffers, plane properties). Nothing on screen changes yet.
    pub fn prepare_mode(&mut self, output: &Output, mode: Mode) -> Result<PreparedKmsMode> {
        let drm_mode = self.connector_mode(output, mode).map_err(|e| anyhow!(e))?;
        let out = self
            .outputs
            .get(&output.name())
            .ok_or_else(|| anyhow!("{} is not a KMS output", output.name()))?;
        let pipeline = OutputPipeline::new(
            &self.dev,
            out.pipeline.connector().clone(),
            out.pipeline.crtc(),
            drm_mode,
        )
        .with_context(|| format!("cannot set up {} in the new mode", output.name()))?;
        let (w, h) = drm_mode.size();
        Ok(PreparedKmsMode {
            pipeline,
            mode: Mode {
                size: (i32::from(w), i32::from(h)).into(),
                refresh: refresh_mhz(&drm_mode),
            },
        })
    }

    /// Switches `output` to a prepared mode: its next frame is a modeset (cannot fail here;
    /// a modeset the kernel refuses keeps the old frame, like any refused commit).
    pub fn set_mode(&mut self, core: &mut Core, output: &Output, prepared: PreparedKmsMode) {
        let Some(out) = self.outputs.get_mut(&output.name()) else {
            return;
        };
        out.pipeline = prepared.pipeline;
        out.composited_current = false;
        out.in_flight = None;
        out.committed_at = None;
        out.unscannable.clear();
        output.change_current_state(Some(prepared.mode), None, None, None);
        if let Some(data) = core.outputs.get_mut(&output.name()) {
            data.refresh = crate::state::refresh_interval(prepared.mode.refresh);
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
