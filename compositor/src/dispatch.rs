//! Dispatching client requests so that one client's malformed message ends only that client.
//!
//! wayland-rs (wayland-backend 0.3.17 with wayland-scanner 0.31.11, the newest releases) does
//! not check that a string argument the protocol declares non-nullable is not null: the
//! generated request parser `unwrap()`s it, and the panic would unwind out of the event loop,
//! ending the session. Any client could do that with one 16-byte message (found by
//! `lockstep-fuzz`: `zwlr_data_control_source_v1.offer(null)`; every request with a string
//! argument is affected).
//!
//! So lockstep dispatches clients one at a time ([`dispatch_clients_guarded`]), each under
//! `catch_unwind`. A panic while one client's requests are parsed or handled disconnects that
//! client with a protocol error and is logged (as an error: a panic in lockstep's own handler
//! would be a bug to report); the others go on. The backend releases its internal lock while a
//! request is parsed and handled, so a panic there leaves it consistent. While a client is
//! dispatched, the panic hook logs through tracing instead of printing "panicked" to stderr.
//!
//! Dispatching per client costs one `recvmsg` per connected client per wake-up (a few
//! microseconds each), instead of the backend's own epoll round.

use std::{
    cell::Cell,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::Once,
};

use std::ffi::CString;

use smithay::reexports::wayland_server::{
    backend::{protocol::ProtocolError, ClientId, DisconnectReason, Handle},
    protocol::__interfaces::WL_DISPLAY_INTERFACE,
    Display,
};
use tracing::{error, warn};

use crate::state::State;

thread_local! {
    /// Set while a client's requests are dispatched: its panics are caught and logged.
    static DISPATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Dispatches the pending requests of every client, each under `catch_unwind` (module docs).
pub fn dispatch_clients_guarded(display: &mut Display<State>, state: &mut State) {
    install_panic_hook();
    let mut clients: Vec<ClientId> = Vec::new();
    display
        .backend()
        .handle()
        .with_all_clients(|id| clients.push(id));
    for id in clients {
        DISPATCHING.with(|d| d.set(true));
        let result = catch_unwind(AssertUnwindSafe(|| {
            display.backend().dispatch_single_client(state, id.clone())
        }));
        DISPATCHING.with(|d| d.set(false));
        match result {
            Ok(Ok(requests)) => {
                let dh = &state.core.display_handle;
                let max = state.core.max_objects_per_client;
                if crate::census::after_requests(dh, &id, requests, max) {
                    // As below: drop the disconnected client now.
                    DISPATCHING.with(|d| d.set(true));
                    let _ = catch_unwind(AssertUnwindSafe(|| {
                        display.backend().dispatch_single_client(state, id.clone())
                    }));
                    DISPATCHING.with(|d| d.set(false));
                }
            }
            // WouldBlock: nothing to read; other errors: the client is gone.
            Ok(Err(_)) => {}
            Err(_) => {
                error!(
                    client = ?id,
                    "a request of this client made the protocol layer panic (a malformed \
                     message, or a lockstep bug worth reporting); disconnecting that client"
                );
                // wl_display.error.invalid_method: a malformed request.
                post_display_error(&display.backend().handle(), &id, 1, "malformed request");
                // The backend drops a killed client (and closes its socket) at the end of a
                // dispatch: do one now rather than at the next wake-up, which may never come.
                DISPATCHING.with(|d| d.set(true));
                let _ = catch_unwind(AssertUnwindSafe(|| {
                    display.backend().dispatch_single_client(state, id)
                }));
                DISPATCHING.with(|d| d.set(false));
            }
        }
    }
}

/// `wl_display.error.no_memory` (wayland.xml; the server side has no generated wl_display).
pub const WL_DISPLAY_NO_MEMORY: u32 = 2;

/// Disconnects `client` with `wl_display.error.no_memory`, as libwayland's
/// `wl_client_post_no_memory` does: for requests whose own interface has no error that fits
/// "lockstep will not hold more for this client". Clients see it as ENOMEM.
pub fn post_no_memory(handle: &Handle, client: &ClientId, message: &str) {
    post_display_error(handle, client, WL_DISPLAY_NO_MEMORY, message);
}

/// Sends `client` a `wl_display.error` with `code` and disconnects it (the error reaches the
/// client, which `Handle::kill_client` alone does not send).
pub fn post_display_error(handle: &Handle, client: &ClientId, code: u32, message: &str) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    let display = handle.object_for_protocol_id(client.clone(), &WL_DISPLAY_INTERFACE, 1);
    match display {
        Ok(display) => handle.post_error(display, code, message),
        // No display object (the client is going away already): just disconnect it.
        Err(_) => handle.kill_client(
            client.clone(),
            DisconnectReason::ProtocolError(ProtocolError {
                code,
                object_id: 1,
                object_interface: "wl_display".into(),
                message: message.to_string_lossy().into_owned(),
            }),
        ),
    }
}

/// Makes panics during client dispatch a log line instead of the default "panicked at" on
/// stderr; other panics keep the default hook.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DISPATCHING.with(|d| d.get()) {
                // Not Display of the hook info: its "panicked at" would read as a crash to
                // anyone (or any tool, like lockstep-fuzz) watching the log for real ones.
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let payload = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                warn!(%at, %payload, "caught a client request that unwound the protocol layer");
                // Where it came from, when asked for (LOCKSTEP_LOG=debug): resolving a
                // backtrace costs milliseconds and tens of MiB of symbol tables, too much
                // for every malformed request of a hostile client.
                if tracing::enabled!(tracing::Level::DEBUG) {
                    let backtrace = std::backtrace::Backtrace::force_capture();
                    tracing::debug!(%backtrace, "backtrace of the caught panic");
                }
            } else {
                default(info);
            }
        }));
    });
}
