//! Desktop protocols, checked with the real Debian tools people use them with, against the
//! real `lockstep` binary on the headless backend: wayland-info (the globals), wl-clipboard
//! (data control, both selections), wtype + wev (virtual keyboard into the focused client),
//! swayidle (idle notification), wlr-randr and kanshi (output management), wlsunset (gamma).

mod common;

use std::{
    process::Stdio,
    thread,
    time::{Duration, Instant},
};

use common::{require_programs, stdout_of, with_timeout, Lockstep, LockstepOptions};

const TEST_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs `program args` as a client of `lockstep` and returns its stdout (it must succeed).
fn run(lockstep: &Lockstep, program: &str, args: &[&str]) -> String {
    let mut command = lockstep.client_command(program);
    command.args(args);
    stdout_of(lockstep, command, &format!("{program} {args:?}"))
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
            "zwlr_output_manager_v1",
            "zwlr_output_power_manager_v1",
            "zwlr_foreign_toplevel_manager_v1",
            "ext_foreign_toplevel_list_v1",
            "zwlr_virtual_pointer_manager_v1",
            "zwlr_gamma_control_manager_v1",
            "zwp_pointer_constraints_v1",
            "zwp_relative_pointer_manager_v1",
            "wp_tearing_control_manager_v1",
            "zwlr_layer_shell_v1",
            "ext_session_lock_manager_v1",
        ];
        let missing: Vec<_> = expected
            .iter()
            .filter(|name| !info.contains(&format!("'{name}'")))
            .collect();
        assert!(missing.is_empty(), "missing globals {missing:?}\n{info}");
        // The versions the README's protocol list documents.
        for (name, version) in [
            ("zwlr_output_manager_v1", 4),
            ("zwlr_output_power_manager_v1", 1),
            ("zwlr_foreign_toplevel_manager_v1", 3),
            ("ext_foreign_toplevel_list_v1", 1),
            ("zwlr_virtual_pointer_manager_v1", 2),
            ("zwlr_gamma_control_manager_v1", 1),
            ("zwp_pointer_constraints_v1", 1),
            ("zwp_relative_pointer_manager_v1", 1),
            ("wp_tearing_control_manager_v1", 1),
        ] {
            let line = info
                .lines()
                .find(|l| l.contains(&format!("'{name}'")))
                .unwrap_or_default();
            let offered: Option<u32> = line
                .split("version:")
                .nth(1)
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok());
            assert_eq!(offered, Some(version), "{name}: {line}");
        }
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

/// Headless with two outputs side by side (1280x720 and 800x600).
fn two_outputs() -> LockstepOptions {
    let mut options = LockstepOptions::headless();
    options.outputs.push("800x600@60".into());
    options
}

/// (scale, position, size) of output `name` as `lockstep msg outputs` reports it.
fn output_state(lockstep: &Lockstep, name: &str) -> (f64, (i32, i32), (i32, i32)) {
    let outputs = lockstep.outputs();
    let o = outputs
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("no output {name} in {outputs:?}"));
    (o.scale, o.position, o.size)
}

#[test]
fn wlr_randr_lists_outputs_and_changes_scale_and_position() {
    const TEST: &str = "wlr-randr";
    if !require_programs(TEST, &["wlr-randr"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let lockstep = Lockstep::start(TEST, two_outputs());
        let listing = run(&lockstep, "wlr-randr", &[]);
        for line in [
            "HEADLESS-1 ",
            "HEADLESS-2 ",
            "1280x720 px, 60.000000 Hz (preferred, current)",
            "800x600 px, 60.000000 Hz (preferred, current)",
            "Position: 1280,0",
        ] {
            assert!(listing.contains(line), "{line:?} missing in:\n{listing}");
        }
        run(
            &lockstep,
            "wlr-randr",
            &["--output", "HEADLESS-1", "--scale", "2", "--pos", "100,0"],
        );
        assert_eq!(
            output_state(&lockstep, "HEADLESS-1"),
            (2.0, (100, 0), (1280, 720))
        );
        run(
            &lockstep,
            "wlr-randr",
            &["--output", "HEADLESS-2", "--mode", "1024x768"],
        );
        assert_eq!(
            output_state(&lockstep, "HEADLESS-2"),
            (1.0, (1280, 0), (1024, 768))
        );
        // What it lists afterwards is the new state (sent to every output-manager client).
        let listing = run(&lockstep, "wlr-randr", &[]);
        assert!(listing.contains("Scale: 2.000000"), "{listing}");
        assert!(listing.contains("Position: 100,0"), "{listing}");
        assert!(
            listing.contains("1024x768 px, 60.000000 Hz (current)"),
            "{listing}"
        );
        // Turning one off takes it out of the outputs; on again brings it back.
        run(&lockstep, "wlr-randr", &["--output", "HEADLESS-2", "--off"]);
        let names: Vec<String> = lockstep.outputs().into_iter().map(|o| o.name).collect();
        assert_eq!(names, ["HEADLESS-1"]);
        assert!(run(&lockstep, "wlr-randr", &[]).contains("Enabled: no"));
        run(
            &lockstep,
            "wlr-randr",
            &["--output", "HEADLESS-2", "--on", "--pos", "2000,0"],
        );
        assert_eq!(output_state(&lockstep, "HEADLESS-2").1, (2000, 0));
        // A scale lockstep refuses: wlr-randr reports the failure, nothing changes.
        let refused = lockstep
            .client_command("wlr-randr")
            .args(["--output", "HEADLESS-1", "--scale", "9"])
            .output()
            .expect("run wlr-randr");
        assert!(!refused.status.success(), "scale 9 was accepted");
        assert_eq!(output_state(&lockstep, "HEADLESS-1").0, 2.0);
    });
}

#[test]
fn kanshi_applies_a_profile() {
    const TEST: &str = "kanshi";
    if !require_programs(TEST, &["kanshi"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let lockstep = Lockstep::start(TEST, two_outputs());
        let config = lockstep.runtime_dir().join("kanshi.conf");
        std::fs::write(
            &config,
            "profile docked {\n  output HEADLESS-1 mode 1024x768 position 0,0 scale 1\n  \
             output HEADLESS-2 position 1024,0 scale 1.5\n}\n",
        )
        .expect("write the kanshi config");
        let mut kanshi =
            lockstep.spawn_client("kanshi", &["-c", config.to_str().expect("utf-8 path")]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let want = [(1.0, (0, 0), (1024, 768)), (1.5, (1024, 0), (800, 600))];
        let got = loop {
            let got = [
                output_state(&lockstep, "HEADLESS-1"),
                output_state(&lockstep, "HEADLESS-2"),
            ];
            if got == want || Instant::now() > deadline {
                break got;
            }
            if let Some(status) = kanshi.exited() {
                panic!("kanshi exited ({status})\n{}", kanshi.output());
            }
            thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(got, want, "{}\n{}", kanshi.output(), lockstep.output());
        assert!(
            kanshi.output().contains("applied"),
            "kanshi did not say it applied the profile:\n{}",
            kanshi.output()
        );
    });
}

#[test]
fn wlsunset_sets_gamma_and_its_exit_restores_it() {
    const TEST: &str = "wlsunset";
    if !require_programs(TEST, &["wlsunset"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let gamma = || lockstep.outputs()[0].gamma;
        assert!(!gamma(), "no client table before wlsunset");
        // A fixed schedule, so it sets a temperature whatever the time of day.
        let mut wlsunset = lockstep.spawn_client(
            "wlsunset",
            &["-t", "4000", "-T", "4500", "-S", "06:00", "-s", "18:00"],
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !gamma() && Instant::now() < deadline {
            if let Some(status) = wlsunset.exited() {
                panic!("wlsunset exited ({status})\n{}", wlsunset.output());
            }
            thread::sleep(Duration::from_millis(50));
        }
        assert!(
            gamma(),
            "wlsunset set no gamma table\n{}",
            wlsunset.output()
        );
        wlsunset.terminate();
        let deadline = Instant::now() + Duration::from_secs(10);
        while gamma() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !gamma(),
            "the default gamma did not come back after wlsunset exited"
        );
    });
}
