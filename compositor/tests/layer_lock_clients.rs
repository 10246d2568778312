//! Bars, wallpapers, launchers, notifications and lock screens: the real Debian clients
//! (waybar, swaybg, fuzzel, mako + notify-send, swaylock, grim) against the real `lockstep`
//! binary on the headless backend, checked by screenshots, IPC and what they print.
//! Screenshots are kept in `<target dir>/test-screenshots/` for people to look at.

mod common;

use std::{
    thread,
    time::{Duration, Instant},
};

use common::{fraction_not, require_programs, signal, with_timeout, Lockstep, LockstepOptions};
use lockstep::ipc::{LayerSurfaceInfo, OutputInfo};
use lockstep_render::Frame;

const TEST_TIMEOUT: Duration = Duration::from_secs(90);
const WAIT: Duration = Duration::from_secs(15);

/// Polls the outputs until `pred` holds; panics with `what` and the logs otherwise.
fn wait_outputs(lockstep: &mut Lockstep, what: &str, pred: impl Fn(&[OutputInfo]) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        lockstep.assert_running();
        let outputs = lockstep.outputs();
        if pred(&outputs) {
            return;
        }
        if Instant::now() > deadline {
            panic!("{what} within {WAIT:?}: {outputs:?}\n{}", lockstep.output());
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The layer surface with `namespace` on the first output, once it is there.
/// The layer surface `namespace` once it has a size: it is listed from its creation, but
/// sized only by the commit after its first configure (waiting for the listing alone raced
/// with that commit on a loaded machine: size 0×0).
fn wait_layer(lockstep: &mut Lockstep, namespace: &str) -> LayerSurfaceInfo {
    // A layer surface is listed from its first commit, before it has a buffer (size 0×0):
    // wait until it is shown.
    let shown = |l: &LayerSurfaceInfo| l.namespace == namespace && l.size.0 > 0 && l.size.1 > 0;
    wait_outputs(
        lockstep,
        &format!("no shown layer surface {namespace:?}"),
        |o| o[0].layers.iter().any(shown),
    );
    lockstep.outputs()[0]
        .layers
        .iter()
        .find(|l| shown(l))
        .cloned()
        .expect("just seen")
}

fn pixel(frame: &Frame, x: i32, y: i32) -> [u8; 3] {
    let [r, g, b, _] = frame
        .pixel(x as u32, y as u32)
        .unwrap_or_else(|| panic!("({x}, {y}) is outside the frame"));
    [r, g, b]
}

/// Takes screenshots until `pred` holds on one (clients draw a few frames first).
fn wait_screen(
    lockstep: &Lockstep,
    file: &str,
    what: &str,
    pred: impl Fn(&Frame) -> bool,
) -> Frame {
    let deadline = Instant::now() + WAIT;
    loop {
        let shot = lockstep.screenshot(file, None);
        if pred(&shot) {
            return shot;
        }
        if Instant::now() > deadline {
            panic!(
                "{what} (see test-screenshots/{file})\n{}",
                lockstep.output()
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// A headless lockstep whose config file is `config` (TOML).
fn start_with_config(tag: &str, config: &str) -> Lockstep {
    let dir = std::env::temp_dir().join(common::unique_name(tag));
    std::fs::create_dir_all(&dir).expect("config dir");
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("write config");
    let mut options = LockstepOptions::headless();
    options.args = vec!["--config".into(), path.display().to_string()];
    Lockstep::start(tag, options)
}

#[test]
fn waybar_draws_a_bar_and_tiled_windows_stay_below_it() {
    const TEST: &str = "waybar";
    if !require_programs(TEST, &["waybar", "weston-simple-shm"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let dir = lockstep.runtime_dir().to_owned();
        std::fs::write(
            dir.join("waybar.json"),
            r#"{"layer": "top", "position": "top", "height": 30,
                "modules-left": [], "modules-center": ["clock"], "modules-right": []}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("waybar.css"),
            "* { font-size: 12px; } window#waybar { background-color: #2040e0; }",
        )
        .unwrap();
        let config = dir.join("waybar.json").display().to_string();
        let style = dir.join("waybar.css").display().to_string();
        let mut waybar = lockstep.spawn_client("waybar", &["-c", &config, "-s", &style]);
        let bar = wait_layer(&mut lockstep, "waybar");
        assert_eq!(bar.layer, "top", "{bar:?}");
        assert_eq!((bar.position, bar.size), ((0, 0), (1280, 30)), "{bar:?}");
        assert_eq!(bar.exclusive_zone, 30);
        assert_eq!(lockstep.outputs()[0].usable_area, (0, 30, 1280, 690));
        wait_screen(&lockstep, "waybar-bar.png", "waybar's blue bar", |s| {
            pixel(s, 5, 15) == [0x20, 0x40, 0xe0] && pixel(s, 1275, 15) == [0x20, 0x40, 0xe0]
        });
        // A tiled window goes below the bar's exclusive zone.
        let mut client = lockstep.spawn_client("weston-simple-shm", &[]);
        let window = lockstep.wait_for_window(Some(&mut client));
        assert_eq!(window.layout, "tiled");
        assert!(
            window.position.1 >= 30,
            "the window starts below the bar: {window:?}"
        );
        let shot = lockstep.screenshot("waybar-window.png", None);
        assert_eq!(
            pixel(&shot, 5, 15),
            [0x20, 0x40, 0xe0],
            "the bar is still there"
        );
        assert!(
            waybar.exited().is_none(),
            "waybar exited\n{}",
            waybar.output()
        );
    });
}

#[test]
fn swaybg_fills_the_background_with_a_colour_or_an_image() {
    const TEST: &str = "swaybg";
    if !require_programs(TEST, &["swaybg", "convert", "weston-simple-shm"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let mut bg = lockstep.spawn_client("swaybg", &["-c", "#ff0000"]);
        let wall = wait_layer(&mut lockstep, "wallpaper");
        assert_eq!(wall.layer, "background");
        let shot = wait_screen(&lockstep, "swaybg-colour.png", "a red background", |s| {
            fraction_not(s, [0xff, 0, 0]) < 0.001
        });
        drop(shot);
        // Behind a window: the window covers its tile, red shows in the gaps.
        let mut client = lockstep.spawn_client("weston-simple-shm", &[]);
        let window = lockstep.wait_for_window(Some(&mut client));
        let shot = lockstep.screenshot("swaybg-window.png", None);
        assert_eq!(pixel(&shot, 2, 360), [0xff, 0, 0], "red in the gap");
        let (cx, cy) = (
            window.position.0 + window.size.0 / 2,
            window.position.1 + window.size.1 / 2,
        );
        assert_ne!(
            pixel(&shot, cx, cy),
            [0xff, 0, 0],
            "the window covers its tile"
        );
        client.terminate();
        bg.terminate();
        // An image: left half green, right half blue.
        let image = lockstep.runtime_dir().join("wallpaper.png");
        let status = std::process::Command::new("convert")
            .args([
                "-size",
                "640x720",
                "xc:#00ff00",
                "-size",
                "640x720",
                "xc:#0000ff",
            ])
            .args(["+append"])
            .arg(&image)
            .status()
            .expect("run convert");
        assert!(status.success());
        let image = image.display().to_string();
        let mut bg = lockstep.spawn_client("swaybg", &["-i", &image, "-m", "fill"]);
        wait_screen(&lockstep, "swaybg-image.png", "the two-colour image", |s| {
            pixel(s, 100, 400) == [0, 0xff, 0] && pixel(s, 1180, 400) == [0, 0, 0xff]
        });
        assert!(bg.exited().is_none(), "swaybg exited\n{}", bg.output());
    });
}

#[test]
fn fuzzel_gets_the_keyboard_and_prints_the_chosen_line() {
    const TEST: &str = "fuzzel";
    if !require_programs(TEST, &["fuzzel", "wtype", "sh"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let mut fuzzel = lockstep.spawn_client(
            "sh",
            &["-c", "printf 'alpha\\nbeta\\ngamma\\n' | fuzzel --dmenu"],
        );
        let launcher = wait_layer(&mut lockstep, "launcher");
        assert_eq!(launcher.keyboard, "exclusive", "{launcher:?}");
        // wtype types into whatever has the keyboard: fuzzel's prompt.
        for args in [&["gam"][..], &["-k", "Return"][..]] {
            let status = lockstep
                .client_command("wtype")
                .args(args)
                .status()
                .expect("run wtype");
            assert!(status.success());
        }
        let status = fuzzel.wait_timeout(WAIT);
        assert!(status.is_some(), "fuzzel did not exit\n{}", fuzzel.output());
        assert_eq!(fuzzel.stdout().trim(), "gamma", "{}", fuzzel.output());
        wait_outputs(&mut lockstep, "the launcher did not go", |o| {
            o[0].layers.is_empty()
        });
    });
}

#[test]
fn mako_shows_a_notify_send_notification() {
    const TEST: &str = "mako";
    if !require_programs(TEST, &["mako", "notify-send", "dbus-run-session"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        // A private session bus: mako owns org.freedesktop.Notifications on it.
        let script = "mako --background-color '#2040e0ff' --border-size 0 --padding 20 \
                      --default-timeout 0 & sleep 1; \
                      notify-send 'lockstep test' 'hello from notify-send'; wait";
        let mut session = lockstep.spawn_client("dbus-run-session", &["--", "sh", "-c", script]);
        let note = wait_layer(&mut lockstep, "notifications");
        assert!(note.size.0 > 100 && note.size.1 > 20, "{note:?}");
        let (x, y) = note.position;
        // mako draws its 10 px margin inside its surface: sample inside the box, away from
        // the text (20 px padding).
        let (bx, by) = (x + note.size.0 - 15, y + 15);
        let what = format!("mako's blue notification at {note:?}");
        let shot = wait_screen(&lockstep, "mako.png", &what, |s| {
            pixel(s, bx, by) == [0x20, 0x40, 0xe0]
        });
        // Text was drawn into it (white on blue).
        let mut region_colours = std::collections::HashSet::new();
        for dx in (0..note.size.0).step_by(2) {
            for dy in (0..note.size.1).step_by(2) {
                region_colours.insert(pixel(&shot, x + dx, y + dy));
            }
        }
        assert!(
            region_colours.len() > 4,
            "no text drawn: {region_colours:?}"
        );
        assert!(session.exited().is_none(), "{}", session.output());
    });
}

#[test]
fn swaylock_locks_survives_kill_9_and_a_new_swaylock_takes_over() {
    const TEST: &str = "swaylock";
    if !require_programs(TEST, &["swaylock", "grim", "weston-simple-shm"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = start_with_config(TEST, "[lock]\nabandoned_color = \"#7f1010\"\n");
        let mut client = lockstep.spawn_client("weston-simple-shm", &[]);
        lockstep.wait_for_window(Some(&mut client));
        let mut first = lockstep.spawn_client("swaylock", &["-c", "00ff00"]);
        wait_outputs(&mut lockstep, "not locked", |o| {
            o[0].session_lock == "locked"
        });
        let green = |s: &Frame| fraction_not(s, [0, 0xff, 0]) == 0.0;
        wait_screen(
            &lockstep,
            "swaylock-locked.png",
            "only swaylock's green",
            green,
        );
        // Screencopy (grim) of the locked output shows only the lock too.
        let grabbed = lockstep.runtime_dir().join("grim.png");
        let status = lockstep
            .client_command("grim")
            .arg(&grabbed)
            .status()
            .expect("run grim");
        assert!(status.success());
        let grim_frame = common::read_png(&grabbed);
        assert_eq!(
            fraction_not(&grim_frame, [0, 0xff, 0]),
            0.0,
            "grim saw more"
        );
        // kill -9: still locked, the abandoned colour, no window.
        signal(first.pid(), libc::SIGKILL);
        first.wait_timeout(Duration::from_secs(5));
        wait_outputs(&mut lockstep, "not abandoned", |o| {
            o[0].session_lock == "abandoned"
        });
        wait_screen(
            &lockstep,
            "swaylock-abandoned.png",
            "the abandoned colour",
            |s| fraction_not(s, [0x7f, 0x10, 0x10]) == 0.0,
        );
        // A new swaylock takes over; SIGUSR1 makes it unlock (swaylock's own way out).
        let mut second = lockstep.spawn_client("swaylock", &["-c", "0000ff"]);
        wait_outputs(&mut lockstep, "not locked again", |o| {
            o[0].session_lock == "locked"
        });
        wait_screen(
            &lockstep,
            "swaylock-second.png",
            "the new lock's blue",
            |s| fraction_not(s, [0, 0, 0xff]) == 0.0,
        );
        signal(second.pid(), libc::SIGUSR1);
        wait_outputs(&mut lockstep, "not unlocked", |o| {
            o[0].session_lock == "unlocked"
        });
        assert!(second.wait_timeout(WAIT).is_some(), "{}", second.output());
        let window = lockstep.windows()[0].clone();
        let (cx, cy) = (
            window.position.0 + window.size.0 / 2,
            window.position.1 + window.size.1 / 2,
        );
        wait_screen(&lockstep, "swaylock-unlocked.png", "the window back", |s| {
            pixel(s, cx, cy) != [0, 0, 0xff]
        });
    });
}
