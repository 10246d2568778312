//! wp_security_context_v1, and the one rule for privileged globals.
//!
//! A sandbox (Flatpak) asks for a listening socket of its own through the security-context
//! global; clients that connect through it carry that [`SecurityContext`] in their
//! [`ClientState`]. Such clients must not see the globals that reach beyond their own windows:
//! reading the screen, reading or setting the clipboard of others, typing into other clients,
//! changing outputs. [`may_use_privileged`] is the one place that says who may; every
//! privileged global is created with it as its filter:
//!
//! | global | why privileged |
//! |---|---|
//! | `zwlr_screencopy_manager_v1` | reads every window on screen |
//! | `zwlr_data_control_manager_v1`, `ext_data_control_manager_v1` | reads and sets the selection without focus |
//! | `zwp_virtual_keyboard_manager_v1` | types into the focused client |
//! | `zwp_input_method_manager_v2` | sees and writes text of the focused client |
//! | `wp_security_context_manager_v1` | a sandboxed client must not nest contexts (the protocol says so) |
//! | `zwlr_layer_shell_v1` | a layer surface can cover every window (a fake lock screen or password prompt) and take the keyboard |
//! | `ext_session_lock_manager_v1` | locks everyone out of the session |
//!
//! (Output management, gamma control and foreign-toplevel management join this table when
//! they are offered.)

use std::sync::Arc;

use smithay::{
    delegate_security_context,
    reexports::{
        calloop::{EventSource, Poll, PostAction, Readiness, Token, TokenFactory},
        wayland_server::Client,
    },
    wayland::security_context::{
        SecurityContext, SecurityContextHandler, SecurityContextListenerSource,
    },
};
use tracing::{info, warn};

use crate::state::{ClientState, State};

/// Whether `client` may see privileged globals: only clients that did not come through a
/// security context.
pub fn may_use_privileged(client: &Client) -> bool {
    client
        .get_data::<ClientState>()
        .is_none_or(|data| data.security_context.is_none())
}

impl SecurityContextHandler for State {
    fn context_created(&mut self, source: SecurityContextListenerSource, context: SecurityContext) {
        info!(
            sandbox = ?context.sandbox_engine,
            app_id = ?context.app_id,
            "security context created: its clients get no privileged globals"
        );
        let inserted =
            self.core
                .loop_handle
                .insert_source(Guarded(source), move |stream, _, state| {
                    let data = ClientState {
                        security_context: Some(context.clone()),
                        ..Default::default()
                    };
                    if let Err(err) = state
                        .core
                        .display_handle
                        .insert_client(stream, Arc::new(data))
                    {
                        warn!(?err, "cannot add a client of a security context");
                    }
                });
        if let Err(err) = inserted {
            warn!(error = %err.error, "cannot listen on a security context's socket");
        }
    }
}

/// A security context's listener whose failures end only that listener.
///
/// smithay 0.7's `SecurityContextListenerSource` returns the error of a failed `accept`, and
/// calloop then stops the whole event loop. A sandbox (or any client of the privileged global)
/// hands lockstep whatever fd it likes as the "listening socket": a pipe or a memfd makes
/// `accept` fail with EINVAL/ENOTSOCK (found by lockstep-fuzz). Here such a listener is
/// dropped with a log line; running out of fds only skips this round.
struct Guarded(SecurityContextListenerSource);

impl EventSource for Guarded {
    type Event = <SecurityContextListenerSource as EventSource>::Event;
    type Metadata = <SecurityContextListenerSource as EventSource>::Metadata;
    type Ret = <SecurityContextListenerSource as EventSource>::Ret;
    type Error = std::io::Error;

    fn process_events<F>(
        &mut self,
        readiness: Readiness,
        token: Token,
        callback: F,
    ) -> Result<PostAction, Self::Error>
    where
        F: FnMut(Self::Event, &mut Self::Metadata) -> Self::Ret,
    {
        match self.0.process_events(readiness, token, callback) {
            Ok(action) => Ok(action),
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                ) =>
            {
                warn!(%err, "cannot accept on a security context's socket now");
                Ok(PostAction::Continue)
            }
            Err(err) => {
                warn!(%err, "a security context's listening fd is not a listening socket; dropping that context");
                Ok(PostAction::Remove)
            }
        }
    }

    fn register(
        &mut self,
        poll: &mut Poll,
        token_factory: &mut TokenFactory,
    ) -> smithay::reexports::calloop::Result<()> {
        self.0.register(poll, token_factory)
    }

    fn reregister(
        &mut self,
        poll: &mut Poll,
        token_factory: &mut TokenFactory,
    ) -> smithay::reexports::calloop::Result<()> {
        self.0.reregister(poll, token_factory)
    }

    fn unregister(&mut self, poll: &mut Poll) -> smithay::reexports::calloop::Result<()> {
        self.0.unregister(poll)
    }
}

delegate_security_context!(State);
