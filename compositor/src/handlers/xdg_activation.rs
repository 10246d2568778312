//! xdg_activation_v1: a client asks for another surface to be focused (a launcher starting an
//! app, a link opening in a browser), with a token it got from the compositor.
//!
//! lockstep hands tokens to anyone and honours an activation when its token is fresh (made in
//! the last [`TOKEN_LIFETIME`]) and was made by a client that had keyboard focus or by the
//! activated surface's own client; anything else is ignored, so a background client cannot
//! steal focus.

use std::time::Duration;

use smithay::{
    delegate_xdg_activation,
    input::Seat,
    reexports::wayland_server::{protocol::wl_surface::WlSurface, Resource},
    wayland::xdg_activation::{
        XdgActivationHandler, XdgActivationState, XdgActivationToken, XdgActivationTokenData,
    },
};
use tracing::debug;

use crate::state::State;

/// How long a token may be used.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(10);

/// Tokens kept at once. smithay keeps every token it is allowed to until it is used; expired
/// ones are dropped whenever a new one is made, and past this many live ones new tokens are
/// refused (a client looping on `get_activation_token` would otherwise grow lockstep).
pub const MAX_TOKENS: usize = 1024;

impl XdgActivationHandler for State {
    fn activation_state(&mut self) -> &mut XdgActivationState {
        &mut self.core.protocols.xdg_activation
    }

    fn token_created(&mut self, _token: XdgActivationToken, data: XdgActivationTokenData) -> bool {
        let tokens = &mut self.core.protocols.xdg_activation;
        tokens.retain_tokens(|_, data| data.timestamp.elapsed() <= TOKEN_LIFETIME);
        if tokens.tokens().count() >= MAX_TOKENS {
            debug!("too many live activation tokens; this one is not kept");
            return false;
        }
        // A token is worth something only if its maker had focus when it made it (or says
        // nothing about a seat: launchers spawned by lockstep itself).
        let focused_client = self
            .core
            .seat
            .get_keyboard()
            .and_then(|k| k.current_focus())
            .and_then(|s| s.client())
            .map(|c| c.id());
        match (&data.serial, &data.client_id) {
            (Some((_, seat)), Some(client)) => {
                Seat::<State>::from_resource(seat).is_some()
                    && focused_client.as_ref() == Some(client)
            }
            _ => true,
        }
    }

    fn request_activation(
        &mut self,
        _token: XdgActivationToken,
        data: XdgActivationTokenData,
        surface: WlSurface,
    ) {
        if data.timestamp.elapsed() > TOKEN_LIFETIME {
            debug!(surface = ?surface.id(), "activation token expired; ignored");
            return;
        }
        // Any window of the layout: activating one on a hidden workspace shows that workspace.
        let window = crate::shell::window_for_surface(&self.core, &surface).map(|(_, w)| w);
        match window {
            Some(window) => crate::shell::focus_window(self, &window),
            None => debug!(surface = ?surface.id(), "activation of a surface that is no window"),
        }
    }
}

delegate_xdg_activation!(State);
