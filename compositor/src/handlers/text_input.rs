//! zwp_text_input_v3 and zwp_input_method_v2: input methods (fcitx5, ibus through its Wayland
//! frontend, on-screen keyboards) typing into the focused client.
//!
//! smithay routes text between the two by keyboard focus; lockstep only places the input
//! method's popup (candidate lists) next to the text cursor of the focused window, as an xdg
//! popup of that window's surface would be. The input-method global is privileged: an input
//! method sees and writes the focused client's text (`security_context.rs`).
//!
//! zwp_text_input_v3 requests pass a check before smithay sees them: smithay 0.7 unwraps the
//! `set_content_type` and `set_text_change_cause` enums while holding the seat's text-input
//! lock, so a value outside the enum (a client bug, or `lockstep-fuzz`) panicked, poisoned
//! the lock, and the next keyboard focus change panicked in the event loop, outside the
//! per-client `catch_unwind` (`dispatch.rs`): the compositor died. The protocol has no error
//! for it; lockstep ignores such a request, as it ignores the state of an unfocused client.

use smithay::{
    delegate_input_method_manager,
    desktop::PopupKind,
    reexports::{
        wayland_protocols::wp::text_input::zv3::server::{
            zwp_text_input_manager_v3::ZwpTextInputManagerV3,
            zwp_text_input_v3::{self, ZwpTextInputV3},
        },
        wayland_server::{
            backend::ClientId, delegate_dispatch, delegate_global_dispatch,
            protocol::wl_surface::WlSurface, Client, DataInit, Dispatch, DisplayHandle, WEnum,
        },
    },
    utils::{Logical, Rectangle},
    wayland::{
        input_method::{InputMethodHandler, PopupSurface},
        text_input::{TextInputManagerState, TextInputUserData},
    },
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

impl Dispatch<ZwpTextInputV3, TextInputUserData> for State {
    fn request(
        state: &mut Self,
        client: &Client,
        resource: &ZwpTextInputV3,
        request: zwp_text_input_v3::Request,
        data: &TextInputUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let Some(what) = unknown_enum(&request) {
            debug!(
                what,
                "ignoring a text-input request with a value outside its enum"
            );
            return;
        }
        <TextInputManagerState as Dispatch<ZwpTextInputV3, TextInputUserData, Self>>::request(
            state, client, resource, request, data, dh, data_init,
        );
    }

    fn destroyed(
        state: &mut Self,
        client: ClientId,
        resource: &ZwpTextInputV3,
        data: &TextInputUserData,
    ) {
        <TextInputManagerState as Dispatch<ZwpTextInputV3, TextInputUserData, Self>>::destroyed(
            state, client, resource, data,
        );
    }
}

/// The argument of `request` that is outside its enum, if any.
fn unknown_enum(request: &zwp_text_input_v3::Request) -> Option<&'static str> {
    let unknown = |e: bool| e.then_some(());
    match request {
        zwp_text_input_v3::Request::SetTextChangeCause { cause } => {
            unknown(matches!(cause, WEnum::Unknown(_))).map(|()| "text change cause")
        }
        zwp_text_input_v3::Request::SetContentType { hint, purpose } => {
            unknown(matches!(hint, WEnum::Unknown(_)) || matches!(purpose, WEnum::Unknown(_)))
                .map(|()| "content hint or purpose")
        }
        _ => None,
    }
}

// smithay's `delegate_text_input_manager!` minus the text-input objects, dispatched above.
delegate_global_dispatch!(State: [ZwpTextInputManagerV3: ()] => TextInputManagerState);
delegate_dispatch!(State: [ZwpTextInputManagerV3: ()] => TextInputManagerState);
delegate_input_method_manager!(State);
