//! zwp_text_input_v3 and zwp_input_method_v2: input methods (fcitx5, ibus through its Wayland
//! frontend, on-screen keyboards) typing into the focused client.
//!
//! smithay routes text between the two by keyboard focus; lockstep only places the input
//! method's popup (candidate lists) next to the text cursor of the focused window, as an xdg
//! popup of that window's surface would be. The input-method global is privileged: an input
//! method sees and writes the focused client's text (`security_context.rs`).

use smithay::{
    delegate_input_method_manager, delegate_text_input_manager,
    desktop::PopupKind,
    reexports::wayland_server::protocol::wl_surface::WlSurface,
    utils::{Logical, Rectangle},
    wayland::input_method::{InputMethodHandler, PopupSurface},
};
use tracing::debug;

use crate::state::State;

impl InputMethodHandler for State {
    fn new_popup(&mut self, surface: PopupSurface) {
        if let Err(err) = self.core.popups.track_popup(PopupKind::from(surface)) {
            debug!(?err, "cannot track an input-method popup");
        }
    }

    fn dismiss_popup(&mut self, surface: PopupSurface) {
        if let Some(parent) = surface.get_parent().map(|p| p.surface.clone()) {
            let _ =
                smithay::desktop::PopupManager::dismiss_popup(&parent, &PopupKind::from(surface));
        }
    }

    fn popup_repositioned(&mut self, _surface: PopupSurface) {}

    fn parent_geometry(&self, parent: &WlSurface) -> Rectangle<i32, Logical> {
        self.core
            .space
            .elements()
            .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == parent))
            .map(|w| w.geometry())
            .unwrap_or_default()
    }
}

delegate_text_input_manager!(State);
delegate_input_method_manager!(State);
