//! The Wayland listening socket, and the open-file limit: running out of fds never ends the
//! session.
//!
//! Every client, shm pool, dmabuf plane and held acquire wait costs lockstep an fd, and any
//! local process can open connections until the limit is reached. smithay 0.7's
//! `ListeningSocketSource` returns the error of a failed `accept` from the event source, and
//! calloop then stops the whole loop: the compositor exits ("Too many open files"). So lockstep
//! watches the socket itself:
//!
//! - a failed `accept` (EMFILE, ENFILE, ENOBUFS, ...) is logged at most once per second, and
//!   the socket is not watched for [`ACCEPT_BACKOFF`]: the connection waits in the kernel's
//!   backlog (the socket stays readable, so watching it would spin the loop) and is accepted
//!   when fds are free again;
//! - at start the soft `RLIMIT_NOFILE` is raised to the hard limit ([`raise_fd_limit`]), as
//!   sway and niri do; programs lockstep starts get the limit it started with back
//!   ([`restore_fd_limit_in_child`]), since many programs (select() users) break above 1,024.

use std::{
    ffi::OsString,
    os::unix::process::CommandExt,
    process::Command,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use smithay::reexports::{
    calloop::{
        generic::Generic,
        timer::{TimeoutAction, Timer},
        Interest, LoopHandle, Mode, PostAction, RegistrationToken,
    },
    wayland_server::ListeningSocket,
};
use tracing::{debug, info, warn};

use crate::state::{ClientState, State};

/// How long the socket is not watched after a failed accept.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Logs of failed accepts are at most this frequent.
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Failed accepts since the last log line, and when that line was written.
#[derive(Default)]
struct AcceptFailures {
    last_log: Option<Instant>,
    unlogged: u64,
}

impl AcceptFailures {
    /// Logs `err` unless a line was written less than a second ago.
    fn note(&mut self, err: &std::io::Error) {
        self.unlogged += 1;
        let now = Instant::now();
        if self
            .last_log
            .is_some_and(|last| now.duration_since(last) < ACCEPT_LOG_INTERVAL)
        {
            return;
        }
        warn!(
            %err,
            failures = self.unlogged,
            "cannot accept a Wayland client; it waits until fds are free (is a program opening \
             many connections? `ls /proc/{}/fd | wc -l` counts lockstep's fds)",
            std::process::id()
        );
        self.unlogged = 0;
        self.last_log = Some(now);
    }
}

/// Binds the Wayland socket (`name`, or the first free `wayland-N`) and accepts clients on
/// the loop. Returns the socket's name.
pub fn listen(
    loop_handle: &LoopHandle<'static, State>,
    name: Option<&str>,
) -> anyhow::Result<OsString> {
    let socket = match name {
        Some(name) => ListeningSocket::bind(name),
        None => ListeningSocket::bind_auto("wayland", 1..33),
    }
    .map_err(|err| {
        anyhow::anyhow!(
            "cannot create the Wayland socket {}: {err}. Is XDG_RUNTIME_DIR set and writable, \
             and is another compositor already using that name?",
            name.unwrap_or("wayland-N")
        )
    })?;
    let socket_name = socket
        .socket_name()
        .map(|n| n.to_os_string())
        .ok_or_else(|| anyhow::anyhow!("the Wayland socket has no name"))?;
    // The token of the socket's own source, for the backoff timer to re-enable it.
    let token: Arc<OnceLock<RegistrationToken>> = Arc::default();
    let own_token = token.clone();
    let mut failures = AcceptFailures::default();
    let registered = loop_handle
        .insert_source(
            Generic::new(socket, Interest::READ, Mode::Level),
            move |_, socket, state| {
                loop {
                    match socket.accept() {
                        Ok(Some(stream)) => {
                            if let Err(err) = state
                                .core
                                .display_handle
                                .insert_client(stream, Arc::new(ClientState::default()))
                            {
                                warn!(?err, "failed to add a new client");
                            }
                        }
                        Ok(None) => break,
                        Err(err) => {
                            failures.note(&err);
                            if let Some(token) = own_token.get() {
                                back_off(state, *token);
                            }
                            break;
                        }
                    }
                }
                Ok(PostAction::Continue)
            },
        )
        .map_err(|err| anyhow::anyhow!("cannot watch the Wayland socket: {err}"))?;
    let _ = token.set(registered);
    info!(socket = ?socket_name, "listening for Wayland clients");
    Ok(socket_name)
}

/// Stops watching a listening socket (the event source `token`) for [`ACCEPT_BACKOFF`], then
/// watches it again: after a failed accept the pending connection keeps the socket readable,
/// so watching it at once would spin the loop.
pub fn back_off(state: &mut State, token: RegistrationToken) {
    let handle = state.core.loop_handle.clone();
    if let Err(err) = handle.disable(&token) {
        debug!(%err, "cannot pause a listening socket");
        return;
    }
    let timer = Timer::from_duration(ACCEPT_BACKOFF);
    let again = handle.clone();
    let armed = handle.insert_source(timer, move |_, _, _| {
        if let Err(err) = again.enable(&token) {
            warn!(%err, "cannot watch a listening socket again; new connections wait");
        }
        TimeoutAction::Drop
    });
    if let Err(err) = armed {
        // Without a timer the socket would stay paused: watch it now instead (the loop may
        // spin while fds are short, but clients can still connect afterwards).
        warn!(error = %err.error, "cannot arm the accept backoff timer");
        let _ = handle.enable(&token);
    }
}

/// The soft open-file limit lockstep started with, for its children.
static ORIGINAL_FD_LIMIT: OnceLock<rustix::process::Rlimit> = OnceLock::new();

/// Raises the soft limit on open files to the hard limit (once; later calls do nothing).
/// The usual soft limit of 1,024 is reached by a few hundred blocked explicit-sync surfaces.
pub fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if ORIGINAL_FD_LIMIT.set(limit).is_err() {
        return;
    }
    if limit.current < limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                debug!(from = ?limit.current, to = ?limit.maximum, "raised the open-file limit")
            }
            Err(err) => warn!(%err, "cannot raise the open-file limit"),
        }
    }
}

/// Makes `command`'s process start with the open-file limit lockstep started with.
pub fn restore_fd_limit_in_child(command: &mut Command) {
    let Some(original) = ORIGINAL_FD_LIMIT.get().copied() else {
        return;
    };
    let soft = original.current;
    // SAFETY: the closure runs in the forked child before exec; it only calls getrlimit and
    // setrlimit, which are async-signal-safe system calls, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
            let now = getrlimit(Resource::Nofile);
            let restored = Rlimit {
                current: soft,
                maximum: now.maximum,
            };
            setrlimit(Resource::Nofile, restored).map_err(std::io::Error::from)
        });
    }
}
