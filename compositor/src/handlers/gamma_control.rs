//! zwlr_gamma_control_manager_v1 (lockstep-protocols' `wlr_gamma_control`) wired to the
//! backends: gammastep and wlsunset tint the outputs at night.
//!
//! - headless: the ramps are accepted and kept with the output (there is no display to
//!   tint; the frames are not changed), with a fixed ramp size of [`HEADLESS_GAMMA_SIZE`];
//!   `lockstep msg outputs` reports whether a client's table is in force (`gamma`);
//! - kms: the CRTC's `GAMMA_LUT` (size `GAMMA_LUT_SIZE`), set with the next frame through
//!   the plane pipeline (`render/src/kms/gamma.rs`); a CRTC without it gets `failed`;
//! - winit: `failed` (the host owns the display's gamma).
//!
//! When the client's control goes away the default ramps come back. Privileged: see
//! `security_context.rs`.

use lockstep_protocols::{
    delegate_wlr_gamma_control,
    wlr_gamma_control::{GammaControlHandler, GammaControlState, GammaRamps},
};
use smithay::output::Output;
use tracing::{info, warn};

use crate::{backend::Backend, state::State};

/// The ramp size headless outputs take (256 entries per channel, like most displays).
pub const HEADLESS_GAMMA_SIZE: u32 = 256;

impl GammaControlHandler for State {
    fn gamma_control_state(&mut self) -> &mut GammaControlState {
        &mut self.core.protocols.gamma_control
    }

    fn gamma_size(&mut self, output: &Output) -> Option<u32> {
        self.core.outputs.get(&output.name())?;
        match &mut self.backend {
            Backend::Headless(_) => Some(HEADLESS_GAMMA_SIZE),
            Backend::Kms(kms) => kms.gamma_size(output),
            Backend::Winit(_) => None,
        }
    }

    fn set_gamma(&mut self, output: &Output, ramps: Option<GammaRamps>) -> bool {
        let values = ramps.map(|r| r.values);
        if let Backend::Kms(kms) = &mut self.backend {
            if let Err(err) = kms.set_gamma(output, values.clone()) {
                warn!(output = %output.name(), "cannot set the gamma ramps: {err:#}");
                return false;
            }
        }
        let Some(data) = self.core.outputs.get_mut(&output.name()) else {
            return false;
        };
        info!(output = %output.name(), custom = values.is_some(), "gamma ramps set");
        data.gamma = values;
        crate::frame_clock::queue_redraw(&mut self.core, output);
        true
    }
}

delegate_wlr_gamma_control!(State);
