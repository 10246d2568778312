//! `lockstep --session`: lockstep as the user's graphical session.
//!
//! A display manager starts `lockstep-session` (from `lockstep.desktop`), which starts
//! `lockstep.service` in the systemd user manager; the unit runs `lockstep --session`.
//! Once the Wayland socket exists, [`announce`] makes the session environment
//! (`WAYLAND_DISPLAY`, `XDG_CURRENT_DESKTOP=lockstep`, `XDG_SESSION_TYPE=wayland`, and
//! `DISPLAY` when Xwayland is on) known to
//! systemd and D-Bus activation, so services and D-Bus-activated programs (portals,
//! notification daemons) find the compositor, and then tells systemd it is ready
//! (`sd_notify` `READY=1`; the unit is `Type=notify`), which starts `graphical-session.target`
//! and what hangs off it. All of this runs on a thread of its own: `systemctl` and
//! `dbus-update-activation-environment` may take a while and the event loop must not wait.
//! Without systemd (or without those programs) the steps are skipped with a log line.

use std::{os::unix::net::UnixDatagram, process::Command};

use tracing::{info, warn};

/// The variables the session exports (and `DISPLAY` when Xwayland is on).
pub const SESSION_VARIABLES: &[&str] =
    &["WAYLAND_DISPLAY", "XDG_CURRENT_DESKTOP", "XDG_SESSION_TYPE"];

/// Sets the session's variables in lockstep's own environment (children inherit them). Call
/// early, before the event loop and the programs it starts.
pub fn set_environment() {
    std::env::set_var("XDG_CURRENT_DESKTOP", "lockstep");
    std::env::set_var("XDG_SESSION_TYPE", "wayland");
}

/// Exports the session variables to systemd and D-Bus, then notifies systemd, on a thread.
/// `x_display` is lockstep's X11 display (`:n`) when Xwayland is on: it is exported as
/// `DISPLAY`; without it, `DISPLAY` is unset in the session (a stale one from an earlier
/// session would send X programs elsewhere).
pub fn announce(x_display: Option<String>) {
    let mut variables = SESSION_VARIABLES.to_vec();
    match &x_display {
        Some(display) => {
            std::env::set_var("DISPLAY", display);
            variables.push("DISPLAY");
        }
        None => std::env::remove_var("DISPLAY"),
    }
    let unset_display = x_display.is_none();
    let spawned = std::thread::Builder::new()
        .name("lockstep-session".into())
        .spawn(move || {
            run_quietly(
                "systemctl",
                &[&["--user", "import-environment"], variables.as_slice()].concat(),
            );
            if unset_display {
                run_quietly("systemctl", &["--user", "unset-environment", "DISPLAY"]);
            }
            run_quietly(
                "dbus-update-activation-environment",
                &[&["--systemd"], variables.as_slice()].concat(),
            );
            notify_ready();
        });
    if let Err(err) = spawned {
        warn!(%err, "cannot start the session thread; the session environment is not exported");
    }
}

/// Runs `program args` to completion, logging (not failing) when it is missing or fails.
fn run_quietly(program: &str, args: &[&str]) {
    if crate::action::find_in_path(program).is_none() {
        info!(program, "not installed; skipping");
        return;
    }
    let mut command = Command::new(program);
    command.args(args);
    crate::action::prepare_child(&mut command);
    match command.status() {
        Ok(status) if status.success() => info!(program, ?args, "session environment exported"),
        Ok(status) => warn!(program, ?args, %status, "exporting the session environment failed"),
        Err(err) => warn!(program, %err, "cannot run it"),
    }
}

/// Sends `READY=1` to `$NOTIFY_SOCKET` when systemd gave one (a path, or `@abstract`).
fn notify_ready() {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let result = UnixDatagram::unbound().and_then(|datagram| {
        let bytes = socket.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                datagram.send_to_addr(b"READY=1", &addr)
            }
            None => datagram.send_to(b"READY=1", &socket),
        }
    });
    match result {
        Ok(_) => info!("told systemd the session is ready"),
        Err(err) => warn!(%err, "cannot notify systemd (NOTIFY_SOCKET)"),
    }
}
