//! wp_fractional_scale_v1: clients on an output with a scale of 1.5 draw at 1.5× (with
//! wp_viewporter) instead of at 2× scaled down, so text stays crisp.
//!
//! A surface gets the scale of the output it is shown on: the one its window is on when it
//! asks, else the output under the pointer; it is sent again when the surface enters an
//! output (smithay's output-enter tracking calls back into `send_scale_for`).

use smithay::{
    delegate_fractional_scale,
    reexports::wayland_server::protocol::wl_surface::WlSurface,
    wayland::{
        compositor::with_states,
        fractional_scale::{with_fractional_scale, FractionalScaleHandler},
    },
};

use crate::state::{Core, State};

impl FractionalScaleHandler for State {
    fn new_fractional_scale(&mut self, surface: WlSurface) {
        send_scale_for(&self.core, &surface);
    }
}

/// Sends `surface` the preferred scale of the output it is on.
pub fn send_scale_for(core: &Core, surface: &WlSurface) {
    let on = core
        .space
        .elements()
        .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == surface))
        .and_then(|w| core.space.outputs_for_element(w).into_iter().next());
    let output = on.or_else(|| crate::shell::active_output(core));
    let Some(output) = output else {
        return;
    };
    let scale = output.current_scale().fractional_scale();
    with_states(surface, |states| {
        with_fractional_scale(states, |fractional| {
            fractional.set_preferred_scale(scale);
        });
    });
}

delegate_fractional_scale!(State);
