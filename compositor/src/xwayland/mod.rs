//! Xwayland on demand: X11 programs as windows of lockstep.
//!
//! **Why on demand.** A session without X programs should pay nothing for X. lockstep takes
//! an X11 display at start ([`sockets::X11Sockets`]: the lock file and both listening
//! sockets), exports `DISPLAY` to what it starts, and watches the sockets. The first
//! connection starts Xwayland on those sockets; the X client waits in the socket's backlog
//! meanwhile and is accepted by Xwayland once it runs.
//!
//! **How Xwayland is started.** smithay 0.7's `XWayland::spawn` opens listening sockets of
//! its own (it has no parameter for existing ones), and its `X11Wm` only works with the
//! Wayland client that `spawn` creates (its `XWaylandClientData` cannot be made outside
//! smithay). So lockstep lets smithay spawn, but through a launcher: `PATH` (which smithay
//! lets us set for the child) names a private directory whose `Xwayland` is a small shell
//! script (`LAUNCHER`). It drops the `-listenfd`s smithay passes (and closes those
//! sockets), puts in lockstep's own sockets and display number, and execs the real
//! Xwayland. smithay's throwaway display stays reserved (its lock file exists) while
//! that Xwayland runs, but nothing listens on it.
//!
//! **Lifecycle.** `Idle` (sockets watched) → first connection → `Starting` (smithay's
//! `XWayland` source waits for `-displayfd`) → `Running` (`X11Wm` started on the `-wm`
//! connection; `wm.rs` handles its windows) → Xwayland exits, crashes or is killed: the WM's
//! connection closes, its windows are removed (`wm.rs`), and lockstep is `Idle` again with
//! the same sockets, so the next X client starts a new Xwayland. An Xwayland that dies before
//! it is ready (smithay then only drops its Wayland connection, which [`after_dispatch`]
//! notices) or is not ready within `START_TIMEOUT` is stopped too; the X clients waiting
//! for it are turned away rather than left hanging, and the sockets are watched again a
//! second later (`RETRY_DELAY`), so a broken Xwayland is never restarted in a loop.
//!
//! **No waiting on the event loop**, except in smithay's `X11Wm::start_wm`, which makes a few
//! round trips to the Xwayland that just reported ready, and in the WM's property reads,
//! which also go to Xwayland: X clients never get a round trip from the WM (the X server
//! answers for them), so a stuck X client cannot stall lockstep. A stopped (SIGSTOP)
//! Xwayland could, as with any compositor that runs an X11 window manager in-process.
//!
//! **Explicit sync.** Xwayland 24.1 and later use linux-drm-syncobj-v1 when the compositor
//! offers it. lockstep does not hide the global from the Xwayland client (its global filter
//! is the security-context one, and Xwayland is not sandboxed), so a newer Xwayland finds it
//! like any client; Debian bookworm's 22.1 predates the protocol and uses implicit sync.

pub mod selection;
pub mod sockets;
pub mod wm;

use std::{ffi::OsString, os::fd::OwnedFd, path::PathBuf, process::Stdio, time::Duration};

use smithay::{
    reexports::{
        calloop::{
            generic::Generic,
            timer::{TimeoutAction, Timer},
            Interest, Mode, PostAction, RegistrationToken,
        },
        wayland_server::Client,
    },
    wayland::xwayland_shell::XWaylandShellState,
    xwayland::{X11Wm, XWayland, XWaylandEvent},
};
use tracing::{info, warn};

use crate::state::{Core, State};
use sockets::{DisplayNumber, X11Sockets};

/// The launcher smithay runs as `Xwayland` (see the module docs): lockstep's sockets and
/// display number instead of smithay's, then the real binary. bash (essential on Debian),
/// because dash cannot close file descriptors above 9.
const LAUNCHER: &str = r#"#!/bin/bash
# Written by lockstep (compositor/src/xwayland/mod.rs): run Xwayland on lockstep's X11
# sockets instead of the ones smithay opened for it.
for arg do
    shift
    if [ -n "$skip" ]; then
        skip=
        # Close smithay's socket so nobody connects to a display without a server.
        eval "exec $arg>&-"
        continue
    fi
    case "$arg" in
        -listenfd) skip=1; continue ;;
        :*) arg="$LOCKSTEP_X11_DISPLAY" ;;
    esac
    set -- "$@" "$arg"
done
for fd in $LOCKSTEP_X11_LISTENFDS; do
    set -- "$@" -listenfd "$fd"
done
PATH="$LOCKSTEP_X11_PATH"
export PATH
unset LOCKSTEP_X11_DISPLAY LOCKSTEP_X11_LISTENFDS LOCKSTEP_X11_PATH
exec "$LOCKSTEP_XWAYLAND" "$@"
"#;

/// Xwayland's state: where lockstep is between X clients.
pub struct Xwayland {
    sockets: X11Sockets,
    /// The real Xwayland binary.
    binary: PathBuf,
    /// The directory holding the launcher (removed on drop).
    launcher_dir: PathBuf,
    /// The socket watches (disabled while an Xwayland runs).
    watches: Vec<RegistrationToken>,
    /// The running (or starting) Xwayland.
    instance: Option<Instance>,
    /// How many Xwaylands were started (for logs and tests).
    pub starts: u64,
}

/// One Xwayland process.
struct Instance {
    /// smithay's source for the process (dropping it disconnects the client).
    source: RegistrationToken,
    /// Xwayland's Wayland client.
    client: Client,
    /// The window manager, once Xwayland is ready.
    wm: Option<X11Wm>,
    /// Whether it got ready (the WM may be retired since).
    was_ready: bool,
}

impl Xwayland {
    /// The display clients use (`:n`).
    pub fn display(&self) -> DisplayNumber {
        self.sockets.display()
    }

    /// The window manager of the running Xwayland.
    pub fn wm(&mut self) -> Option<&mut X11Wm> {
        self.instance.as_mut()?.wm.as_mut()
    }

    /// Takes the WM out (its connection closed).
    pub fn take_wm(&mut self) -> Option<X11Wm> {
        self.instance.as_mut()?.wm.take()
    }

    /// The running Xwayland's Wayland client.
    pub fn client(&self) -> Option<&Client> {
        self.instance.as_ref().map(|i| &i.client)
    }
}

impl Drop for Xwayland {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.launcher_dir);
    }
}

/// The state Xwayland needs in `Core`: the manager and xwayland-shell (Xwayland 23.1+
/// associates its surfaces through it; only the Xwayland client sees the global).
pub struct XwaylandState {
    /// `None` when Xwayland is off (config, not installed, or no free display).
    pub xwayland: Option<Xwayland>,
    /// xwayland_shell_v1.
    pub shell: XWaylandShellState,
    /// X11 windows (managed and override-redirect) and their wl_surfaces.
    pub windows: wm::X11Windows,
    /// What Wayland clients hold in the selections, for an Xwayland that starts later.
    pub wayland_selections: selection::WaylandSelections,
}

impl XwaylandState {
    /// Creates the xwayland-shell global; Xwayland itself is set up by [`enable`].
    pub fn new(dh: &smithay::reexports::wayland_server::DisplayHandle) -> Self {
        Self {
            xwayland: None,
            shell: XWaylandShellState::new::<State>(dh),
            windows: Default::default(),
            wayland_selections: Default::default(),
        }
    }
}

/// Sets up the X11 display when the config allows it and Xwayland is installed; logs why not
/// otherwise. Returns the display (`:n`) for `DISPLAY`.
pub fn enable(core: &mut Core) -> Option<DisplayNumber> {
    if !core.config.xwayland.enabled {
        info!("Xwayland is off ([xwayland] enabled = false): X11 programs cannot start");
        return None;
    }
    let Some(binary) = crate::action::find_in_path("Xwayland") else {
        info!(
            "Xwayland is not installed (no `Xwayland` on PATH): X11 programs cannot start; \
             install it with `apt-get install xwayland`"
        );
        return None;
    };
    match setup(core, binary) {
        Ok(xwayland) => {
            let number = xwayland.display();
            info!(display = %number, "X11 display ready; Xwayland starts with the first X client");
            core.xwayland.xwayland = Some(xwayland);
            Some(number)
        }
        Err(err) => {
            warn!("Xwayland is off: {err:#}");
            None
        }
    }
}

fn setup(core: &mut Core, binary: PathBuf) -> anyhow::Result<Xwayland> {
    use anyhow::Context;
    let sockets = X11Sockets::open()?;
    let launcher_dir = write_launcher(sockets.display())?;
    let mut watches = Vec::new();
    for fd in sockets.listeners() {
        let fd = fd
            .try_clone_to_owned()
            .context("cannot duplicate an X11 socket")?;
        let token = core
            .loop_handle
            .insert_source(
                Generic::new(fd, Interest::READ, Mode::Level),
                |_, _, state| {
                    start(state);
                    Ok(PostAction::Continue)
                },
            )
            .map_err(|err| anyhow::anyhow!("cannot watch the X11 socket: {err}"))?;
        watches.push(token);
    }
    Ok(Xwayland {
        sockets,
        binary,
        launcher_dir,
        watches,
        instance: None,
        starts: 0,
    })
}

/// Writes the launcher into a private directory under `$XDG_RUNTIME_DIR`.
fn write_launcher(display: DisplayNumber) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    remove_stale_launchers(&runtime);
    let dir = runtime.join(format!(
        "{LAUNCHER_PREFIX}{}-{}",
        std::process::id(),
        display.0
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("Xwayland");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut file, LAUNCHER.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(dir)
}

/// The launcher directories are `<prefix><pid>-<display>` in `$XDG_RUNTIME_DIR`.
const LAUNCHER_PREFIX: &str = "lockstep-xwayland-";

/// Removes launcher directories of lockstep processes that no longer exist (killed before
/// they could clean up).
fn remove_stale_launchers(runtime: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(runtime) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(LAUNCHER_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        if rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Starts Xwayland for a waiting X client (a socket became readable).
fn start(state: &mut State) {
    let core = &mut state.core;
    let Some(xwayland) = core.xwayland.xwayland.as_mut() else {
        return;
    };
    if xwayland.instance.is_some() {
        return;
    }
    for token in &xwayland.watches {
        core.loop_handle.disable(token).ok();
    }
    match spawn(core) {
        Ok(()) => {}
        Err(err) => {
            warn!("cannot start Xwayland: {err:#}; the X client is turned away");
            // Turn the waiting clients away so the watch does not spin, then keep listening.
            if let Some(xwayland) = core.xwayland.xwayland.as_ref() {
                refuse_waiting(xwayland);
                for token in &xwayland.watches {
                    core.loop_handle.enable(token).ok();
                }
            }
        }
    }
}

/// Accepts and closes the connections waiting on the sockets.
fn refuse_waiting(xwayland: &Xwayland) {
    for fd in xwayland.sockets.listeners() {
        while let Ok(conn) = rustix::net::accept(fd) {
            drop::<OwnedFd>(conn);
        }
    }
}

fn spawn(core: &mut Core) -> anyhow::Result<()> {
    use anyhow::Context;
    let Some(xwayland) = core.xwayland.xwayland.as_mut() else {
        return Ok(());
    };
    // Inheritable copies of the sockets for this one spawn (the originals are close-on-exec;
    // only the event loop thread starts processes, so no other child gets these).
    let inheritable: Vec<OwnedFd> = xwayland
        .sockets
        .listeners()
        .map(|fd| rustix::io::dup(fd).context("cannot duplicate an X11 socket"))
        .collect::<anyhow::Result<_>>()?;
    let listen_fds = inheritable
        .iter()
        .map(|fd| std::os::fd::AsRawFd::as_raw_fd(fd).to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let host_path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    let envs: Vec<(&str, OsString)> = vec![
        ("PATH", xwayland.launcher_dir.clone().into_os_string()),
        ("LOCKSTEP_X11_PATH", host_path),
        (
            "LOCKSTEP_X11_DISPLAY",
            xwayland.display().to_string().into(),
        ),
        ("LOCKSTEP_X11_LISTENFDS", listen_fds.into()),
        (
            "LOCKSTEP_XWAYLAND",
            xwayland.binary.clone().into_os_string(),
        ),
    ];
    let (process, client) = XWayland::spawn(
        &core.display_handle,
        None,
        envs,
        true,
        Stdio::null(),
        xwayland_stderr(),
        |_| {},
    )
    .context("cannot run Xwayland")?;
    drop(inheritable);
    xwayland.starts += 1;
    let number = xwayland.display();
    info!(display = %number, start = xwayland.starts, "an X client connected: starting Xwayland");
    let source = core
        .loop_handle
        .insert_source(process, move |event, _, state| on_event(state, event))
        .map_err(|err| anyhow::anyhow!("cannot watch Xwayland: {err}"))?;
    xwayland.instance = Some(Instance {
        source,
        client,
        wm: None,
        was_ready: false,
    });
    let start = xwayland.starts;
    let timer = core.loop_handle.insert_source(
        Timer::from_duration(START_TIMEOUT),
        move |_, _, state| {
            let stuck = state.core.xwayland.xwayland.as_ref().is_some_and(|x| {
                x.starts == start && x.instance.as_ref().is_some_and(|i| i.wm.is_none())
            });
            if stuck {
                warn!(timeout = ?START_TIMEOUT, "Xwayland did not get ready in time; stopping it");
                stopped(state);
            }
            TimeoutAction::Drop
        },
    );
    if let Err(err) = timer {
        warn!(%err, "cannot time Xwayland's start; a hung Xwayland is not stopped");
    }
    Ok(())
}

/// Xwayland's stderr: lockstep's own when `LOCKSTEP_XWAYLAND_LOG` is set (for debugging),
/// else nothing (it is verbose and rarely useful).
fn xwayland_stderr() -> Stdio {
    if std::env::var_os("LOCKSTEP_XWAYLAND_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

fn on_event(state: &mut State, event: XWaylandEvent) {
    match event {
        XWaylandEvent::Ready { x11_socket, .. } => {
            let core = &mut state.core;
            let Some(xwayland) = core.xwayland.xwayland.as_mut() else {
                return;
            };
            let Some(instance) = xwayland.instance.as_mut() else {
                return;
            };
            match X11Wm::start_wm(
                core.loop_handle.clone(),
                x11_socket,
                instance.client.clone(),
            ) {
                Ok(wm) => {
                    info!(display = %xwayland.sockets.display(), "Xwayland is ready");
                    instance.wm = Some(wm);
                    instance.was_ready = true;
                    crate::xwayland::selection::offer_current(state);
                }
                Err(err) => {
                    warn!(%err, "cannot start the X11 window manager; stopping Xwayland");
                    // Not from inside the source's own callback.
                    core.loop_handle.insert_idle(stopped);
                }
            }
        }
        XWaylandEvent::Error => {
            warn!("Xwayland exited while starting (LOCKSTEP_XWAYLAND_LOG=1 shows its output)");
            state.core.loop_handle.insert_idle(stopped);
        }
    }
}

/// How long Xwayland may take to report that it is ready before lockstep gives up on it.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// After every dispatch: pairs X11 windows with their surfaces, and notices an Xwayland
/// whose Wayland connection is gone (smithay reports a process that dies while starting only
/// by closing that connection: it exited, crashed, or could not run at all).
pub fn after_dispatch(state: &mut State) {
    wm::pair_surfaces(state);
    let core = &state.core;
    let gone = core
        .xwayland
        .xwayland
        .as_ref()
        .and_then(|x| x.instance.as_ref())
        .is_some_and(|i| {
            core.display_handle
                .backend_handle()
                .get_client_data(i.client.id())
                .is_err()
        });
    if gone {
        warn!("Xwayland exited (LOCKSTEP_XWAYLAND_LOG=1 shows its output)");
        stopped(state);
    }
}

/// Xwayland is gone (or must go): its windows are removed, its process source dropped
/// (which disconnects its Wayland client), and the sockets are watched again.
/// Does nothing when no Xwayland runs (its X11 connection and its Wayland connection both
/// report the end).
pub fn stopped(state: &mut State) {
    let running = state
        .core
        .xwayland
        .xwayland
        .as_ref()
        .is_some_and(|x| x.instance.is_some());
    if !running {
        return;
    }
    wm::retire_wm(&mut state.core);
    wm::remove_all(state);
    let core = &mut state.core;
    let Some(xwayland) = core.xwayland.xwayland.as_mut() else {
        return;
    };
    let mut never_ready = false;
    if let Some(instance) = xwayland.instance.take() {
        never_ready = instance.wm.is_none() && !instance.was_ready;
        // Dropping smithay's source disconnects Xwayland's Wayland client (if it is not
        // gone already), which ends the process.
        core.loop_handle.remove(instance.source);
    }
    let number = xwayland.display();
    if !never_ready {
        for token in &xwayland.watches {
            core.loop_handle.enable(token).ok();
        }
        info!(display = %number, "Xwayland stopped; the next X client starts a new one");
        return;
    }
    // It could not start: the X clients waiting for it are turned away (they fail with
    // "cannot open display" instead of hanging), and the next try is a second away, so a
    // broken Xwayland is not restarted in a loop.
    refuse_waiting(xwayland);
    warn!(display = %number, "Xwayland could not start; X clients are turned away (LOCKSTEP_XWAYLAND_LOG=1 shows why)");
    let watches = xwayland.watches.clone();
    let retry =
        core.loop_handle
            .insert_source(Timer::from_duration(RETRY_DELAY), move |_, _, state| {
                for token in &watches {
                    state.core.loop_handle.enable(token).ok();
                }
                TimeoutAction::Drop
            });
    if let Err(err) = retry {
        warn!(%err, "cannot time the next Xwayland start; X11 stays off");
    }
}

/// How long after a failed start the next X client may start Xwayland again.
const RETRY_DELAY: Duration = Duration::from_secs(1);
