//! zwlr_output_power_manager_v1 (lockstep-protocols' `wlr_output_power_management`) and
//! the `power-outputs on|off` action: both end in [`State::set_output_power`].
//!
//! An output that is off keeps its place in the space and the layout (windows stay where
//! they are; this is DPMS, not output management's "disabled"), but draws and commits
//! nothing: [`crate::frame_clock::queue_redraw`] arms no timer for it, so frame callbacks
//! and presentation feedback for surfaces only on it stop too, as on wlroots compositors.
//!
//! - headless: its frames stop (its image keeps the last frame; a screenshot still works);
//! - kms: the CRTC goes inactive (`ACTIVE = 0`, the pipeline's `power_off`); when a flip is
//!   pending, right after it. Turning it on again is a full modeset on its next frame;
//! - winit: its frames stop (the host window keeps the last one).
//!
//! Turning an output on redraws it whole.

use lockstep_protocols::{
    delegate_wlr_output_power_management,
    wlr_output_power_management::{OutputPowerHandler, OutputPowerState},
};
use smithay::output::Output;
use tracing::info;

use crate::{backend::Backend, state::State};

impl OutputPowerHandler for State {
    fn output_power_state(&mut self) -> &mut OutputPowerState {
        &mut self.core.protocols.output_power
    }

    fn output_powered(&mut self, output: &Output) -> Option<bool> {
        self.core.outputs.get(&output.name()).map(|d| d.powered)
    }

    fn set_output_power(&mut self, output: &Output, on: bool) -> bool {
        match self.set_output_power(&output.name(), on) {
            Ok(()) => true,
            Err(why) => {
                info!(output = %output.name(), on, %why, "output power change refused");
                false
            }
        }
    }
}

impl State {
    /// Turns the output named `name` on or off and tells power-management clients.
    pub fn set_output_power(&mut self, name: &str, on: bool) -> Result<(), String> {
        let output = self
            .core
            .output_by_name(name)
            .ok_or_else(|| format!("no output named {name:?}"))?;
        let Some(data) = self.core.outputs.get_mut(name) else {
            return Err(format!("no output named {name:?}"));
        };
        if data.powered == on {
            // Nothing to do, but the asker still learns the mode.
            self.core.protocols.output_power.mode_changed(&output, on);
            return Ok(());
        }
        if let Backend::Kms(kms) = &mut self.backend {
            kms.set_power(&output, on)
                .map_err(|err| format!("{err:#}"))?;
        }
        let Some(data) = self.core.outputs.get_mut(name) else {
            return Ok(());
        };
        data.powered = on;
        if !on {
            // A frame slot already armed is dropped.
            if let crate::frame_clock::RedrawState::Scheduled { token, .. } =
                std::mem::replace(&mut data.redraw, crate::frame_clock::RedrawState::Idle)
            {
                self.core.loop_handle.remove(token);
            }
        }
        info!(output = %name, on, "output power");
        self.core.protocols.output_power.mode_changed(&output, on);
        if on {
            self.backend.full_redraw(&output);
            crate::frame_clock::queue_redraw(&mut self.core, &output);
        }
        Ok(())
    }

    /// Turns every output on or off (the `power-outputs` action); the first refusal is the
    /// error, the others still change.
    pub fn set_all_outputs_power(&mut self, on: bool) -> Result<usize, String> {
        let names: Vec<String> = self.core.space.outputs().map(|o| o.name()).collect();
        let mut first_error = None;
        for name in &names {
            if let Err(err) = self.set_output_power(name, on) {
                first_error.get_or_insert(err);
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(names.len()),
        }
    }
}

delegate_wlr_output_power_management!(State);
