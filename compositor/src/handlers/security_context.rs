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
//! | `zwlr_virtual_pointer_manager_v1` | moves the pointer and clicks into any client |
//! | `zwp_input_method_manager_v2` | sees and writes text of the focused client |
//! | `wp_security_context_manager_v1` | a sandboxed client must not nest contexts (the protocol says so) |
//! | `zwlr_output_manager_v1` | changes every output (mode, position, on/off) |
//! | `zwlr_output_power_manager_v1` | turns every display off |
//! | `zwlr_foreign_toplevel_manager_v1` | lists, focuses, closes and resizes every window |
//! | `ext_foreign_toplevel_list_v1` | lists every window's title |
//! | `zwlr_gamma_control_manager_v1` | changes the colours of every output |
//! | `zwlr_layer_shell_v1` | a layer surface can cover every window (a fake lock screen or password prompt) and take the keyboard |
//! | `ext_session_lock_manager_v1` | locks everyone out of the session |

use std::{cell::Cell, rc::Rc, sync::Arc};

use std::os::fd::AsFd;

use smithay::{
    reexports::{
        calloop::{EventSource, Poll, PostAction, Readiness, Token, TokenFactory},
        wayland_protocols::wp::security_context::v1::server::{
            wp_security_context_manager_v1::{self, WpSecurityContextManagerV1},
            wp_security_context_v1::WpSecurityContextV1,
        },
        wayland_server::{
            delegate_dispatch, delegate_global_dispatch, Client, DataInit, Dispatch, DisplayHandle,
            Resource,
        },
    },
    wayland::security_context::{
        SecurityContext, SecurityContextGlobalData, SecurityContextHandler,
        SecurityContextListenerSource, SecurityContextState, SecurityContextUserData,
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

/// At most this many security-context listeners are open at once.
///
/// A listener lives until the fd its creator passed as `close_fd` hangs up, which the
/// protocol leaves entirely to the creator: one that passes an fd that never hangs up (an
/// eventfd, or a pipe it keeps) makes lockstep hold two fds for good, and it can do that in a
/// loop. A Flatpak session has one listener per running sandboxed app; 256 leaves room for
/// that many apps and bounds the fds to 512. The protocol has no error for "too many": a
/// listener over the limit is closed at once (its clients cannot connect) and logged.
pub const MAX_LISTENERS: usize = 256;

/// The number of open listeners, shared with each listener's event source (which counts itself
/// out when it is dropped).
#[derive(Debug, Default, Clone)]
pub struct ListenerCount(Rc<Cell<usize>>);

impl ListenerCount {
    /// Open listeners.
    pub fn get(&self) -> usize {
        self.0.get()
    }
}

impl SecurityContextHandler for State {
    fn context_created(&mut self, source: SecurityContextListenerSource, context: SecurityContext) {
        let count = self.core.protocols.security_context_listeners.clone();
        if count.get() >= MAX_LISTENERS {
            warn!(
                sandbox = ?context.sandbox_engine,
                app_id = ?context.app_id,
                limit = MAX_LISTENERS,
                "too many security contexts are open; closing the new one (its clients cannot \
                 connect). Is a sandbox manager leaking them?"
            );
            return; // dropping `source` closes its fds
        }
        info!(
            sandbox = ?context.sandbox_engine,
            app_id = ?context.app_id,
            "security context created: its clients get no privileged globals"
        );
        let inserted = self.core.loop_handle.insert_source(
            Guarded::new(source, count),
            move |stream, _, state| {
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
            },
        );
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
///
/// It also counts itself in [`ListenerCount`] while it exists.
struct Guarded(SecurityContextListenerSource, ListenerCount);

impl Guarded {
    fn new(source: SecurityContextListenerSource, count: ListenerCount) -> Self {
        count.0.set(count.0.get() + 1);
        Self(source, count)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.1 .0.set(self.1 .0.get().saturating_sub(1));
    }
}

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

/// `create_listener` goes to smithay, then the listening fd is checked: it must be a listening
/// Unix socket (the spec's `invalid_listen_fd` otherwise). smithay 0.7 takes any fd; one that
/// is never readable (an eventfd) would keep its listener, and its fds, for good.
impl Dispatch<WpSecurityContextManagerV1, ()> for State {
    fn request(
        state: &mut Self,
        client: &Client,
        manager: &WpSecurityContextManagerV1,
        request: wp_security_context_manager_v1::Request,
        data: &(),
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        let problem = match &request {
            wp_security_context_manager_v1::Request::CreateListener { listen_fd, .. } => {
                listen_fd_problem(listen_fd.as_fd())
            }
            _ => None,
        };
        // smithay initialises the new object either way (an uninitialised one would panic).
        <SecurityContextState as Dispatch<WpSecurityContextManagerV1, (), State>>::request(
            state, client, manager, request, data, dh, data_init,
        );
        if let Some(problem) = problem {
            manager.post_error(
                wp_security_context_manager_v1::Error::InvalidListenFd,
                format!("listen_fd is not a listening Unix socket: {problem}"),
            );
        }
    }
}

/// Why `fd` is not a listening Unix socket, if it is not.
fn listen_fd_problem(fd: std::os::fd::BorrowedFd<'_>) -> Option<String> {
    match rustix::net::sockopt::socket_domain(fd) {
        Ok(rustix::net::AddressFamily::UNIX) => {}
        Ok(other) => return Some(format!("address family {other:?}")),
        Err(err) => return Some(format!("not a socket ({err})")),
    }
    match rustix::net::sockopt::socket_acceptconn(fd) {
        Ok(true) => None,
        Ok(false) => Some("the socket is not listening".into()),
        Err(err) => Some(format!("cannot query the socket ({err})")),
    }
}

// What `delegate_security_context!` wires, except the manager's requests (above).
delegate_global_dispatch!(State: [WpSecurityContextManagerV1: SecurityContextGlobalData] => SecurityContextState);
delegate_dispatch!(State: [WpSecurityContextV1: SecurityContextUserData] => SecurityContextState);
