//! `lockstep --session`: the session environment goes to systemd and D-Bus, then lockstep
//! tells systemd it is ready (the unit in `session/lockstep.service` is `Type=notify`).
//!
//! systemd is not needed: fake `systemctl` and `dbus-update-activation-environment` on
//! `PATH` record how they were called, and the test listens on `NOTIFY_SOCKET` itself.

mod common;

use std::{os::unix::fs::PermissionsExt, os::unix::net::UnixDatagram, time::Duration};

use common::{with_timeout, Lockstep, LockstepOptions, RuntimeDir};

#[test]
fn session_mode_exports_the_environment_and_notifies_systemd() {
    with_timeout("session", Duration::from_secs(60), || {
        let dir = RuntimeDir::new("session-bin");
        let log = dir.path().join("calls");
        for program in ["systemctl", "dbus-update-activation-environment"] {
            let script = dir.path().join(program);
            std::fs::write(
                &script,
                format!(
                    "#!/bin/sh\necho \"{program} $* WAYLAND_DISPLAY=$WAYLAND_DISPLAY \
                     XDG_CURRENT_DESKTOP=$XDG_CURRENT_DESKTOP DISPLAY=$DISPLAY\" >> {}\n",
                    log.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let notify_path = dir.path().join("notify");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut options = LockstepOptions::headless();
        options.args.push("--session".into());
        options.env.push(("PATH".into(), path));
        options
            .env
            .push(("NOTIFY_SOCKET".into(), notify_path.display().to_string()));
        let mut lockstep = Lockstep::start("session", options);

        let mut message = [0u8; 64];
        let n = notify.recv(&mut message).expect("READY=1 on NOTIFY_SOCKET");
        assert_eq!(&message[..n], b"READY=1");
        // READY comes after both exports.
        let calls = std::fs::read_to_string(&log).unwrap_or_default();
        let socket = lockstep.socket().to_owned();
        // With Xwayland on (it is installed where the tests run), lockstep's own X11 display
        // is exported as DISPLAY too.
        let ready = lockstep.output();
        let display = ready
            .lines()
            .find(|l| l.starts_with("lockstep is ready:"))
            .and_then(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("DISPLAY="))
            })
            .map(str::to_owned);
        let expected = match &display {
            Some(display) => format!(
                "systemctl --user import-environment WAYLAND_DISPLAY XDG_CURRENT_DESKTOP \
                 XDG_SESSION_TYPE DISPLAY WAYLAND_DISPLAY={socket} XDG_CURRENT_DESKTOP=lockstep \
                 DISPLAY={display}"
            ),
            None => format!(
                "systemctl --user import-environment WAYLAND_DISPLAY XDG_CURRENT_DESKTOP \
                 XDG_SESSION_TYPE WAYLAND_DISPLAY={socket} XDG_CURRENT_DESKTOP=lockstep"
            ),
        };
        assert!(calls.contains(&expected), "{calls}");
        assert!(
            calls.contains("dbus-update-activation-environment --systemd WAYLAND_DISPLAY"),
            "{calls}"
        );
        lockstep.assert_running();
    });
}
