//! Desktop protocols, checked with the real Debian tools people use them with, against the
//! real `lockstep` binary on the headless backend: wayland-info (the globals), wl-clipboard
//! (data control, both selections), wtype + wev (virtual keyboard into the focused client),
//! swayidle (idle notification).

mod common;

use std::{
    process::Stdio,
    thread,
    time::{Duration, Instant},
};

use common::{require_programs, with_timeout, Lockstep, LockstepOptions};

const TEST_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs `program args` as a client of `lockstep` and returns its stdout (it must succeed).
fn run(lockstep: &Lockstep, program: &str, args: &[&str]) -> String {
    let output = lockstep
        .client_command(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program}: {err}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        lockstep.output()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `wl-copy args`: it forks a server that keeps the selection and keeps any pipe it
/// inherited open, so its output goes nowhere and only its exit status is waited for.
fn wl_copy(lockstep: &Lockstep, args: &[&str]) {
    let status = lockstep
        .client_command("wl-copy")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|err| panic!("cannot run wl-copy: {err}"));
    assert!(
        status.success(),
        "wl-copy {args:?}: {status}\n{}",
        lockstep.output()
    );
}

#[test]
fn wayland_info_lists_the_desktop_protocols() {
    const TEST: &str = "globals";
    if !require_programs(TEST, &["wayland-info"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let info = run(&lockstep, "wayland-info", &[]);
        let expected = [
            "zwp_primary_selection_device_manager_v1",
            "zwlr_data_control_manager_v1",
            "ext_data_control_manager_v1",
            "wp_security_context_manager_v1",
            "xdg_activation_v1",
            "wp_fractional_scale_manager_v1",
            "wp_cursor_shape_manager_v1",
            "wp_single_pixel_buffer_manager_v1",
            "wp_content_type_manager_v1",
            "wp_alpha_modifier_v1",
            "zwp_pointer_gestures_v1",
            "zwp_keyboard_shortcuts_inhibit_manager_v1",
            "zwp_text_input_manager_v3",
            "zwp_input_method_manager_v2",
            "zwp_virtual_keyboard_manager_v1",
            "xdg_wm_dialog_v1",
            "xdg_system_bell_v1",
            "ext_idle_notifier_v1",
            "zwp_idle_inhibit_manager_v1",
            "zwlr_layer_shell_v1",
            "ext_session_lock_manager_v1",
        ];
        let missing: Vec<_> = expected
            .iter()
            .filter(|name| !info.contains(&format!("'{name}'")))
            .collect();
        assert!(missing.is_empty(), "missing globals {missing:?}\n{info}");
    });
}

#[test]
fn wl_copy_and_wl_paste_work_for_both_selections() {
    const TEST: &str = "clipboard";
    if !require_programs(TEST, &["wl-copy", "wl-paste"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        // wl-copy forks a server that keeps the selection until another one replaces it.
        wl_copy(&lockstep, &["clipboard text from wl-copy"]);
        wl_copy(&lockstep, &["--primary", "primary text"]);
        assert_eq!(
            run(&lockstep, "wl-paste", &["--no-newline"]),
            "clipboard text from wl-copy"
        );
        assert_eq!(
            run(&lockstep, "wl-paste", &["--primary", "--no-newline"]),
            "primary text"
        );
        // Replacing the clipboard does not touch the primary selection.
        wl_copy(&lockstep, &["second"]);
        assert_eq!(run(&lockstep, "wl-paste", &["--no-newline"]), "second");
        assert_eq!(
            run(&lockstep, "wl-paste", &["--primary", "--no-newline"]),
            "primary text"
        );
        wl_copy(&lockstep, &["--clear"]);
        wl_copy(&lockstep, &["--primary", "--clear"]);
    });
}

#[test]
fn wtype_types_into_the_focused_client() {
    const TEST: &str = "wtype";
    if !require_programs(TEST, &["wtype", "wev", "stdbuf"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        // wev prints every event it gets; line-buffered so the log can be read while it runs.
        let mut wev = lockstep.spawn_client("stdbuf", &["-oL", "wev"]);
        lockstep.wait_for_window(Some(&mut wev));
        run(&lockstep, "wtype", &["lock"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let typed = loop {
            let typed: String = wev
                .stdout()
                .lines()
                .filter_map(|l| l.split("utf8: '").nth(1))
                .filter_map(|rest| rest.chars().next().filter(|c| *c != '\''))
                .collect();
            if typed.contains("lock") || Instant::now() > deadline {
                break typed;
            }
            thread::sleep(Duration::from_millis(50));
        };
        assert!(
            typed.contains("lock"),
            "wev saw {typed:?}\n{}\n{}",
            wev.output(),
            lockstep.output()
        );
    });
}

#[test]
fn swayidle_runs_its_timeout_command_when_idle() {
    const TEST: &str = "swayidle";
    if !require_programs(TEST, &["swayidle"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let marker = lockstep.runtime_dir().join("idled");
        let command = format!("touch {}", marker.display());
        let mut swayidle = lockstep.spawn_client("swayidle", &["-w", "timeout", "1", &command]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !marker.exists() && Instant::now() < deadline {
            if let Some(status) = swayidle.exited() {
                panic!("swayidle exited ({status})\n{}", swayidle.output());
            }
            thread::sleep(Duration::from_millis(50));
        }
        lockstep.assert_running();
        assert!(
            marker.exists(),
            "swayidle's 1 s timeout never ran its command\n{}\n{}",
            swayidle.output(),
            lockstep.output()
        );
    });
}
