//! X11 programs through Xwayland (`compositor/src/xwayland/`), against the real `lockstep`
//! binary on the headless backend: Debian's xlogo, xeyes, xterm and xclip, plus small
//! python3-xlib clients (`xwayland_client.py`) for what those cannot show on their own
//! (an override-redirect window at a known place, a window that ignores WM_DELETE_WINDOW,
//! a fullscreen request, a fixed-size window).
//!
//! Each test checks pixels of an IPC screenshot or what a client printed, never only that a
//! window is listed. Screenshots stay in `<target dir>/test-screenshots/`.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use common::{
    fraction_not, require_programs, screenshot_dir, window_region, with_timeout, Lockstep,
    LockstepOptions, Proc,
};
use lockstep::ipc::WindowInfo;
use lockstep_render::Frame;

const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// Xwayland starts on the first X client: allow for that.
const WAIT: Duration = Duration::from_secs(15);

/// lockstep's X11 display from its ready line (`DISPLAY=:N`), if it has one.
fn x_display(lockstep: &Lockstep) -> Option<String> {
    let out = lockstep.output();
    let line = out.lines().find(|l| l.starts_with("lockstep is ready:"))?;
    let display = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("DISPLAY="))?;
    Some(display.to_owned())
}

fn require_display(lockstep: &Lockstep) -> String {
    x_display(lockstep).unwrap_or_else(|| {
        panic!(
            "lockstep offers no X11 display (is xwayland installed?)\n{}",
            lockstep.output()
        )
    })
}

/// A command for an X client of `lockstep`.
fn x_client(lockstep: &Lockstep, program: &str, args: &[&str]) -> Command {
    let display = require_display(lockstep);
    let mut command = lockstep.client_command(program);
    command.args(args).env("DISPLAY", display);
    command
}

fn spawn_x(lockstep: &Lockstep, program: &str, args: &[&str]) -> Proc {
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Proc::spawn(
        &name,
        x_client(lockstep, program, args),
        lockstep.runtime_dir(),
    )
}

fn test_client() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/xwayland_client.py")
        .to_string_lossy()
        .into_owned()
}

/// Debian's python3 (python3-xlib is a Debian package; another python3 first on PATH, such as
/// pyenv's, would not have it).
const PYTHON: &str = "/usr/bin/python3";

/// Whether python3-xlib is there; like `require_programs`, a missing one fails the test when
/// `LOCKSTEP_REQUIRE_CLIENTS=1`.
fn require_python_xlib(test: &str) -> bool {
    let present = Command::new(PYTHON)
        .args(["-c", "import Xlib"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        assert!(
            !common::clients_required(),
            "{test}: python3-xlib is missing (scripts/deps installs it)"
        );
        #[allow(clippy::disallowed_macros)] // the skip message for the person running tests
        {
            eprintln!("{test}: skipped: python3-xlib is not installed");
        }
    }
    present
}

fn spawn_py(lockstep: &Lockstep, args: &[&str]) -> Proc {
    let client = test_client();
    let mut all = vec![client.as_str()];
    all.extend_from_slice(args);
    spawn_x(lockstep, PYTHON, &all)
}

/// Waits until `pred` holds for the window list; panics with the logs after [`WAIT`].
fn wait_windows(
    lockstep: &mut Lockstep,
    what: &str,
    pred: impl Fn(&[WindowInfo]) -> bool,
) -> Vec<WindowInfo> {
    let deadline = Instant::now() + WAIT;
    loop {
        lockstep.assert_running();
        let windows = lockstep.windows();
        if pred(&windows) {
            return windows;
        }
        if Instant::now() > deadline {
            panic!("{what}: windows {windows:?}\n{}", lockstep.output());
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn window_with_class(lockstep: &mut Lockstep, class: &str) -> WindowInfo {
    let windows = wait_windows(lockstep, &format!("a window of class {class}"), |w| {
        w.iter().any(|w| w.app_id.as_deref() == Some(class))
    });
    windows
        .into_iter()
        .find(|w| w.app_id.as_deref() == Some(class))
        .unwrap_or_else(|| unreachable!())
}

/// Takes screenshots until `good` accepts one; panics with the file name after [`WAIT`].
fn screenshot_until(
    lockstep: &Lockstep,
    file: &str,
    what: &str,
    good: impl Fn(&Frame) -> bool,
) -> Frame {
    let deadline = Instant::now() + WAIT;
    loop {
        let frame = lockstep.screenshot(file, None);
        if good(&frame) {
            return frame;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: see {}\n{}",
                screenshot_dir().join(file).display(),
                lockstep.output()
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// The RGB colour at `(x, y)`.
fn pixel(frame: &Frame, x: u32, y: u32) -> [u8; 3] {
    let row = frame
        .rgba_rows()
        .nth(y as usize)
        .expect("row inside the frame");
    let px = &row[x as usize * 4..x as usize * 4 + 3];
    [px[0], px[1], px[2]]
}

/// Share of the pixels of `frame` that are exactly `rgb`.
fn fraction_of(frame: &Frame, rgb: [u8; 3]) -> f64 {
    1.0 - fraction_not(frame, rgb)
}

fn run_ipc_action(lockstep: &Lockstep, action: &[&str]) {
    let response = lockstep.ipc(&lockstep::ipc::Request::Action {
        action: action.iter().map(|s| s.to_string()).collect(),
    });
    assert!(
        !matches!(response, lockstep::ipc::Response::Error { .. }),
        "action {action:?}: {response:?}"
    );
}

/// The Xwayland process lockstep started (a child of lockstep).
fn xwayland_pid(lockstep: &Lockstep) -> Option<u32> {
    let parent = lockstep.pid().to_string();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (name, rest) = stat.split_once(") ")?;
            let ppid = rest.split_whitespace().nth(1)?;
            (name.ends_with("(Xwayland") && ppid == parent).then_some(pid)
        })
}

/// Runs the command `make` builds until it prints exactly `expected` (or [`WAIT`] passed);
/// returns what it printed last.
fn poll_output(expected: &str, mut make: impl FnMut() -> Command) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let output = make()
            .stdin(Stdio::null())
            .output()
            .expect("cannot run a client");
        let printed = String::from_utf8_lossy(&output.stdout).into_owned();
        if printed == expected || Instant::now() > deadline {
            return printed;
        }
        thread::sleep(Duration::from_millis(200));
    }
}

fn wait_file(path: &Path, lockstep: &Lockstep) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        if Instant::now() > deadline {
            panic!("{} was not written\n{}", path.display(), lockstep.output());
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn xlogo_and_xeyes_draw_their_content_and_are_listed() {
    const TEST: &str = "xw-xlogo";
    if !require_programs(TEST, &["xlogo", "xeyes", "Xwayland"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let background = lockstep.background();
        // Started by lockstep itself: it must get DISPLAY.
        run_ipc_action(&lockstep, &["spawn", "xlogo"]);
        let logo = window_with_class(&mut lockstep, "XLogo");
        assert_eq!(logo.title.as_deref(), Some("xlogo"), "{logo:?}");
        assert!(logo.xwayland, "{logo:?}");
        assert_eq!(logo.layout, "tiled", "{logo:?}");
        // xlogo: a black X on white, filling the tile.
        screenshot_until(
            &lockstep,
            "xwayland-xlogo.png",
            "xlogo's content",
            |frame| {
                let region = window_region(frame, &logo);
                fraction_of(&region, [0xff, 0xff, 0xff]) > 0.4
                    && fraction_of(&region, [0, 0, 0]) > 0.1
                    && fraction_not(&region, background) > 0.95
            },
        );

        let mut eyes = spawn_x(&lockstep, "xeyes", &[]);
        let eyes_window = window_with_class(&mut lockstep, "XEyes");
        assert_eq!(eyes_window.title.as_deref(), Some("xeyes"));
        screenshot_until(&lockstep, "xwayland-xeyes.png", "xeyes' content", |frame| {
            let windows = lockstep.windows();
            let Some(eyes_window) = windows
                .iter()
                .find(|w| w.app_id.as_deref() == Some("XEyes"))
            else {
                return false;
            };
            let region = window_region(frame, eyes_window);
            // White eyeballs with black outlines and pupils.
            fraction_of(&region, [0xff, 0xff, 0xff]) > 0.1 && fraction_of(&region, [0, 0, 0]) > 0.01
        });
        assert!(eyes.exited().is_none(), "{}", eyes.output());
        lockstep.assert_running();
    });
}

#[test]
fn xterm_gets_the_keys_typed_into_lockstep() {
    const TEST: &str = "xw-xterm";
    if !require_programs(TEST, &["xterm", "wtype", "xdotool", "Xwayland"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let _xterm = line_reader(&lockstep, "typed");
        // A new X11 window takes keyboard focus, in lockstep and in X.
        wait_windows(&mut lockstep, "the xterm focused", |w| {
            w.iter()
                .any(|w| w.app_id.as_deref() == Some("XTerm") && w.focused)
        });
        wait_x_focus(&lockstep, "typed");
        // Typed through lockstep's keyboard path (a virtual keyboard, like a real one goes
        // through the seat), into the focused X11 window.
        type_line(&lockstep, "lockstep-x11");
        let out = lockstep.runtime_dir().join("typed.txt");
        assert_eq!(wait_file(&out, &lockstep), "lockstep-x11\n");
    });
}

#[test]
fn override_redirect_window_shows_where_x_put_it_above_the_others() {
    const TEST: &str = "xw-override-redirect";
    if !require_programs(TEST, &["xlogo", "Xwayland"]) || !require_python_xlib(TEST) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let _logo = spawn_x(&lockstep, "xlogo", &[]);
        let logo = window_with_class(&mut lockstep, "XLogo");
        // A menu-like window over the tiled xlogo, at root coordinates (200, 150).
        let mut menu = spawn_py(&lockstep, &["override-redirect", "200", "150", "120", "80"]);
        let red = [0xff, 0, 0];
        let frame = screenshot_until(
            &lockstep,
            "xwayland-override-redirect.png",
            "the red override-redirect window",
            |frame| pixel(frame, 200, 150) == red && pixel(frame, 319, 229) == red,
        );
        let inside = frame.crop(200, 150, 120, 80);
        assert!(fraction_of(&inside, red) > 0.99, "not all red inside");
        // Just outside it is xlogo, not red: it is exactly where X put it.
        for (x, y) in [(199, 150), (200, 149), (320, 229), (319, 230)] {
            assert_ne!(pixel(&frame, x, y), red, "red at {x},{y}: misplaced");
        }
        // It is not a window of the layout.
        let windows = lockstep.windows();
        assert_eq!(windows.len(), 1, "{windows:?}");
        assert_eq!(windows[0].id, logo.id);
        assert!(menu.exited().is_none(), "{}", menu.output());
    });
}

#[test]
fn clipboard_and_primary_selection_cross_between_x11_and_wayland() {
    const TEST: &str = "xw-clipboard";
    if !require_programs(TEST, &["xclip", "wl-copy", "wl-paste", "Xwayland"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        for (wayland_flag, x_selection) in [(None, "clipboard"), (Some("--primary"), "primary")] {
            // Wayland -> X: wl-copy holds it (in the foreground, so the test owns it), xclip
            // reads it (this first X client also starts Xwayland).
            let text = format!("from-wayland-{x_selection}");
            let mut args = vec!["--foreground"];
            args.extend(wayland_flag);
            args.push(&text);
            let mut copy = lockstep.spawn_client("wl-copy", &args);
            let pasted = poll_output(&text, || {
                x_client(&lockstep, "xclip", &["-o", "-selection", x_selection])
            });
            assert_eq!(
                pasted,
                text,
                "xclip -o read the wrong {x_selection}\n{}",
                lockstep.output()
            );
            copy.terminate();

            // X -> Wayland: xclip holds it, wl-paste reads it.
            let text = format!("from-x11-{x_selection}");
            // xclip reads the text from a file; -quiet keeps it in the foreground, serving.
            let file = lockstep.runtime_dir().join("x11-text");
            std::fs::write(&file, &text).unwrap();
            let mut xclip = spawn_x(
                &lockstep,
                "xclip",
                &[
                    "-i",
                    "-quiet",
                    "-selection",
                    x_selection,
                    file.to_str().unwrap(),
                ],
            );
            let pasted = poll_output(&text, || {
                let mut paste = lockstep.client_command("wl-paste");
                paste.arg("--no-newline").args(wayland_flag);
                paste
            });
            assert_eq!(
                pasted,
                text,
                "wl-paste read the wrong {x_selection}\n{}",
                lockstep.output()
            );
            xclip.terminate();
        }
    });
}

#[test]
fn killing_xwayland_removes_its_windows_and_the_next_x_client_starts_another() {
    const TEST: &str = "xw-kill";
    if !require_programs(TEST, &["xlogo", "Xwayland"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let background = lockstep.background();
        assert_eq!(
            xwayland_pid(&lockstep),
            None,
            "Xwayland runs before any X client"
        );
        let _first = spawn_x(&lockstep, "xlogo", &[]);
        window_with_class(&mut lockstep, "XLogo");
        let pid = xwayland_pid(&lockstep).expect("no Xwayland child of lockstep");
        common::signal(pid, libc::SIGKILL);
        wait_windows(&mut lockstep, "the X11 window goes with Xwayland", |w| {
            w.is_empty()
        });
        screenshot_until(
            &lockstep,
            "xwayland-killed.png",
            "an empty screen",
            |frame| fraction_not(frame, background) < 0.001,
        );
        lockstep.assert_running();

        let _second = spawn_x(&lockstep, "xlogo", &[]);
        let logo = window_with_class(&mut lockstep, "XLogo");
        screenshot_until(
            &lockstep,
            "xwayland-restarted.png",
            "xlogo after the restart",
            |frame| {
                let region = window_region(frame, &logo);
                fraction_of(&region, [0, 0, 0]) > 0.1
            },
        );
        let new_pid = xwayland_pid(&lockstep).expect("no new Xwayland");
        assert_ne!(new_pid, pid);
    });
}

#[test]
fn close_sends_wm_delete_window_and_a_second_close_kills() {
    const TEST: &str = "xw-close";
    if !require_programs(TEST, &["xlogo", "Xwayland"]) || !require_python_xlib(TEST) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        // xlogo speaks WM_DELETE_WINDOW: one close ends it (once it is up and drawn, as a
        // user would close it).
        let mut logo = spawn_x(&lockstep, "xlogo", &[]);
        let window = window_with_class(&mut lockstep, "XLogo");
        screenshot_until(&lockstep, "xwayland-close.png", "xlogo drawn", |frame| {
            fraction_of(&window_region(frame, &window), [0, 0, 0]) > 0.1
        });
        run_ipc_action(&lockstep, &["close"]);
        let status = logo.wait_timeout(WAIT);
        assert!(
            status.is_some_and(|s| s.success()),
            "xlogo did not exit cleanly: {status:?}\n{}",
            logo.output()
        );
        wait_windows(&mut lockstep, "xlogo's window gone", |w| w.is_empty());

        // A client that ignores WM_DELETE_WINDOW stays after one close, dies after two.
        let mut stubborn = spawn_py(&lockstep, &["stubborn"]);
        window_with_class(&mut lockstep, "LockstepTest");
        run_ipc_action(&lockstep, &["close"]);
        thread::sleep(Duration::from_secs(1));
        assert!(stubborn.exited().is_none(), "one close killed it");
        assert_eq!(lockstep.windows().len(), 1);
        run_ipc_action(&lockstep, &["close"]);
        let status = stubborn.wait_timeout(WAIT);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.and_then(|s| s.signal()),
            Some(libc::SIGKILL),
            "{status:?}"
        );
        wait_windows(&mut lockstep, "its window gone", |w| w.is_empty());
        lockstep.assert_running();
    });
}

#[test]
fn fullscreen_requests_and_fixed_size_windows_follow_the_layout_rules() {
    const TEST: &str = "xw-states";
    if !require_programs(TEST, &["Xwayland"]) || !require_python_xlib(TEST) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let _fixed = spawn_py(&lockstep, &["fixed", "200", "150"]);
        let fixed = window_with_class(&mut lockstep, "LockstepTest");
        assert_eq!(
            fixed.layout, "floating",
            "min == max size floats: {fixed:?}"
        );
        assert_eq!(fixed.size, (200, 150), "{fixed:?}");
        let yellow = [0xff, 0xff, 0];
        screenshot_until(
            &lockstep,
            "xwayland-fixed.png",
            "the yellow fixed-size window",
            |f| fraction_of(&window_region(f, &fixed), yellow) > 0.99,
        );
        run_ipc_action(&lockstep, &["close"]);
        run_ipc_action(&lockstep, &["close"]);
        wait_windows(&mut lockstep, "the fixed window gone", |w| w.is_empty());

        let _full = spawn_py(&lockstep, &["fullscreen"]);
        let windows = wait_windows(&mut lockstep, "the window fullscreen", |w| {
            w.iter().any(|w| w.layout == "fullscreen")
        });
        let full = &windows[0];
        assert_eq!(
            (full.position, full.size),
            ((0, 0), (1280, 720)),
            "{full:?}"
        );
        let blue = [0, 0, 0xff];
        screenshot_until(
            &lockstep,
            "xwayland-fullscreen.png",
            "the whole output blue",
            |f| fraction_of(f, blue) > 0.99,
        );
    });
}

#[test]
fn display_is_exported_when_on_and_unset_when_off() {
    const TEST: &str = "xw-display";
    if !require_programs(TEST, &["Xwayland"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let show = |lockstep: &Lockstep| -> String {
            let out = lockstep.runtime_dir().join("display.txt");
            let command = format!("echo \"[${{DISPLAY-unset}}]\" > {}", out.display());
            run_ipc_action(lockstep, &["spawn-sh", &command]);
            wait_file(&out, lockstep).trim().to_owned()
        };
        let on = Lockstep::start(TEST, LockstepOptions::headless());
        let display = require_display(&on);
        assert!(display.starts_with(':'), "{display}");
        assert_eq!(show(&on), format!("[{display}]"));
        let number = &display[1..];
        assert!(PathBuf::from(format!("/tmp/.X11-unix/X{number}")).exists());
        // No Xwayland until an X client comes.
        assert_eq!(xwayland_pid(&on), None);
        drop(on);

        let config =
            std::env::temp_dir().join(format!("lockstep-xwayland-off-{}.toml", std::process::id()));
        std::fs::write(&config, "[xwayland]\nenabled = false\n").unwrap();
        let mut options = LockstepOptions::headless();
        options.args = vec!["--config".into(), config.to_string_lossy().into_owned()];
        // A host DISPLAY must not leak through either.
        options.env.push(("DISPLAY".into(), ":4242".into()));
        let off = Lockstep::start(TEST, options);
        assert_eq!(x_display(&off), None, "{}", off.output());
        assert_eq!(show(&off), "[unset]");
        let _ = std::fs::remove_file(&config);
    });
}

#[test]
fn x11_windows_get_logical_sizes_on_a_scaled_output() {
    const TEST: &str = "xw-scale";
    if !require_programs(TEST, &["xlogo", "xwininfo", "Xwayland"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let config =
            std::env::temp_dir().join(format!("lockstep-xw-scale-{}.toml", std::process::id()));
        std::fs::write(
            &config,
            "[[output]]\nname = \"HEADLESS-1\"\nmode = \"1280x720\"\nscale = 2.0\n",
        )
        .unwrap();
        let mut options = LockstepOptions::headless();
        options.outputs.clear();
        options.args = vec!["--config".into(), config.to_string_lossy().into_owned()];
        let mut lockstep = Lockstep::start(TEST, options);
        let background = lockstep.background();
        let _logo = spawn_x(&lockstep, "xlogo", &[]);
        let logo = window_with_class(&mut lockstep, "XLogo");
        // The tile is 640x360 logical minus gaps: the X window is that many X pixels.
        assert_eq!(logo.size, (620, 340), "{logo:?}");
        let info = x_client(&lockstep, "xwininfo", &["-name", "xlogo"])
            .output()
            .expect("cannot run xwininfo");
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.contains("Width: 620") && info.contains("Height: 340"),
            "{info}"
        );
        // ... and is shown scaled up to cover the tile's physical pixels.
        screenshot_until(
            &lockstep,
            "xwayland-scale.png",
            "xlogo scaled up",
            |frame| {
                let tile = frame.crop(20, 20, 1240, 680);
                fraction_not(&tile, background) > 0.99 && fraction_of(&tile, [0, 0, 0]) > 0.1
            },
        );
        let _ = std::fs::remove_file(&config);
    });
}

#[test]
fn malformed_properties_and_unmapped_windows_do_not_stall_lockstep() {
    const TEST: &str = "xw-hostile";
    if !require_programs(TEST, &["xlogo", "Xwayland"]) || !require_python_xlib(TEST) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let mut hostile = spawn_py(&lockstep, &["hostile"]);
        let deadline = Instant::now() + WAIT;
        while !hostile.stdout().contains("mapped") {
            assert!(hostile.exited().is_none(), "{}", hostile.output());
            assert!(Instant::now() < deadline, "{}", hostile.output());
            thread::sleep(Duration::from_millis(100));
        }
        // Its window shows (magenta), whatever it claims to be.
        let magenta = [0xff, 0, 0xff];
        screenshot_until(
            &lockstep,
            "xwayland-hostile.png",
            "the hostile window",
            |f| fraction_of(f, magenta) > 0.01,
        );
        // lockstep still answers, and the next X client works as usual.
        let _logo = spawn_x(&lockstep, "xlogo", &[]);
        let logo = window_with_class(&mut lockstep, "XLogo");
        screenshot_until(
            &lockstep,
            "xwayland-after-hostile.png",
            "xlogo drawn",
            |f| fraction_of(&window_region(f, &logo), [0, 0, 0]) > 0.05,
        );
        lockstep.assert_running();
    });
}

#[test]
fn gtk3_widget_factory_on_x11_draws_its_widgets() {
    const TEST: &str = "xw-gtk3";
    if !require_programs(TEST, &["gtk3-widget-factory", "Xwayland"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let background = lockstep.background();
        let mut command = x_client(&lockstep, "gtk3-widget-factory", &[]);
        command.env("GDK_BACKEND", "x11");
        let _gtk = Proc::spawn("gtk3-widget-factory", command, lockstep.runtime_dir());
        let window = window_with_class(&mut lockstep, "Gtk3-widget-factory");
        assert!(
            window.xwayland,
            "GDK_BACKEND=x11 makes it an X11 window: {window:?}"
        );
        assert_eq!(window.layout, "tiled", "{window:?}");
        // Widgets, text, the blue accents of GTK's default theme: many colours over the tile.
        screenshot_until(&lockstep, "xwayland-gtk3.png", "GTK's widgets", |frame| {
            let region = window_region(frame, &window);
            region.stats().distinct_colors >= 100 && fraction_not(&region, background) > 0.95
        });
    });
}

#[test]
fn an_xwayland_that_cannot_start_turns_x_clients_away_once_each() {
    const TEST: &str = "xw-broken";
    if !require_programs(TEST, &["xdpyinfo"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        // An `Xwayland` first on lockstep's PATH that exits at once.
        let bin = common::RuntimeDir::new("xw-broken-bin");
        let fake = bin.path().join("Xwayland");
        std::fs::write(&fake, "#!/bin/sh\nexit 1\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut options = LockstepOptions::headless();
        let path = std::env::var("PATH").unwrap_or_default();
        options
            .env
            .push(("PATH".into(), format!("{}:{path}", bin.path().display())));
        let mut lockstep = Lockstep::start(TEST, options);
        for attempt in 1..=2 {
            // The client is refused (it does not hang), and lockstep does not retry in a loop.
            let mut client = spawn_x(&lockstep, "xdpyinfo", &[]);
            let status = client.wait_timeout(WAIT);
            assert!(
                status.is_some_and(|s| !s.success()),
                "attempt {attempt}: xdpyinfo {status:?}\n{}",
                lockstep.output()
            );
            // The next start is allowed a second after a failed one.
            thread::sleep(Duration::from_millis(1200));
        }
        lockstep.assert_running();
        let out = lockstep.output();
        let starts = out.matches("starting Xwayland").count();
        assert!(
            (1..=2).contains(&starts),
            "{starts} Xwayland starts for two X clients\n{out}"
        );
        assert!(out.contains("Xwayland could not start"), "{out}");
    });
}

/// An xterm titled `name` that writes the first line typed into it to `<runtime>/<name>.txt`.
fn line_reader(lockstep: &Lockstep, name: &str) -> Proc {
    let file = lockstep.runtime_dir().join(format!("{name}.txt"));
    let script = format!("read line; echo \"$line\" > {}", file.display());
    spawn_x(
        lockstep,
        "xterm",
        &["-title", name, "-e", "sh", "-c", &script],
    )
}

/// Waits until X's input focus is on the window titled `title` (lockstep sets it on the WM's
/// connection, the keys come on the Wayland one: Xwayland may read the two in either order,
/// so a key sent in the same instant as a focus change can still go to the old window).
fn wait_x_focus(lockstep: &Lockstep, title: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let id = |args: &[&str]| {
            let out = x_client(lockstep, "xdotool", args)
                .output()
                .expect("cannot run xdotool");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let focus = id(&["getwindowfocus", "-f"]);
        let named = id(&["search", "--name", &format!("^{title}$")]);
        if !focus.is_empty() && named.lines().any(|l| l == focus) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "X focus is on {focus:?}, not {title} ({named:?})\n{}",
            lockstep.output()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Types `text` and Return through lockstep's keyboard path (a virtual keyboard).
fn type_line(lockstep: &Lockstep, text: &str) {
    let status = lockstep
        .client_command("wtype")
        .args([text, "-k", "Return"])
        .status()
        .expect("cannot run wtype");
    assert!(status.success(), "wtype: {status}");
}

#[test]
fn keyboard_focus_moves_between_x11_windows_by_the_icccm_rules() {
    const TEST: &str = "xw-focus";
    if !require_programs(TEST, &["xterm", "wtype", "xdotool", "Xwayland"])
        || !require_python_xlib(TEST)
    {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let dir = lockstep.runtime_dir().to_owned();
        let _left = line_reader(&lockstep, "left");
        wait_windows(&mut lockstep, "the left xterm", |w| w.len() == 1);
        let _right = line_reader(&lockstep, "right");
        wait_windows(&mut lockstep, "the right xterm focused", |w| {
            w.iter()
                .any(|w| w.title.as_deref() == Some("right") && w.focused)
        });
        // Focus moves with lockstep's focus action, and X's input focus with it.
        run_ipc_action(&lockstep, &["focus", "left"]);
        wait_windows(&mut lockstep, "the left xterm focused", |w| {
            w.iter()
                .any(|w| w.title.as_deref() == Some("left") && w.focused)
        });
        wait_x_focus(&lockstep, "left");
        type_line(&lockstep, "for-left");
        assert_eq!(wait_file(&dir.join("left.txt"), &lockstep), "for-left\n");
        run_ipc_action(&lockstep, &["focus", "right"]);
        wait_x_focus(&lockstep, "right");
        type_line(&lockstep, "for-right");
        assert_eq!(wait_file(&dir.join("right.txt"), &lockstep), "for-right\n");

        // A window without the input hint is offered focus with WM_TAKE_FOCUS instead.
        let take = spawn_py(&lockstep, &["take-focus"]);
        let deadline = Instant::now() + WAIT;
        while !take.stdout().contains("take-focus") {
            assert!(
                Instant::now() < deadline,
                "no WM_TAKE_FOCUS\n{}\n{}",
                take.output(),
                lockstep.output()
            );
            thread::sleep(Duration::from_millis(100));
        }
    });
}
