//! lockstep nested under X: the winit backend in an Xvfb screen (Mesa llvmpipe for GL), as a
//! developer runs it and as CI does (DESIGN.md, testing layer 3).
//!
//! Xvfb is started per test on a free display number. A missing Xvfb, xwd, ImageMagick or
//! weston-simple-shm skips the test with a message, unless `LOCKSTEP_REQUIRE_CLIENTS=1` (CI),
//! where it fails.

mod common;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use common::{
    cpu_seconds, fraction_not, read_png, require_programs, screenshot_dir, window_region,
    with_timeout, Lockstep, LockstepOptions, Proc, RuntimeDir,
};
use lockstep_render::Frame;

const TEST_TIMEOUT: Duration = Duration::from_secs(90);
const CONTENT_TIMEOUT: Duration = Duration::from_secs(10);

/// An Xvfb server on its own display; killed on drop.
struct Xvfb {
    display: String,
    // Field order: the server goes before the directory holding its logs.
    _proc: Proc,
    logs: RuntimeDir,
}

impl Xvfb {
    /// Starts `Xvfb :N -screen 0 1280x800x24 +extension GLX` on the first free N from a
    /// pid-derived start (so parallel test binaries rarely collide) and waits for its socket.
    fn start(tag: &str) -> Self {
        let logs = RuntimeDir::new(tag);
        let first = 200 + std::process::id() % 500 * 4;
        let mut failures = Vec::new();
        for n in (first..first + 200).filter(|n| display_free(*n)) {
            let mut command = Command::new("Xvfb");
            command.args([
                &format!(":{n}"),
                "-screen",
                "0",
                "1280x800x24",
                "+extension",
                "GLX",
                "-nolisten",
                "tcp",
            ]);
            let mut proc = Proc::spawn(&format!("Xvfb-{n}"), command, logs.path());
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            // The display is ours only if the lock file names our Xvfb: when parallel tests
            // race for one number, the socket of the winner appears while the loser has not
            // exited yet, and a lockstep on the loser's side would lose its X connection (and
            // be ended by Xlib) when the winner's test ends.
            let ours = |proc: &Proc| {
                fs::read_to_string(format!("/tmp/.X{n}-lock"))
                    .is_ok_and(|pid| pid.trim().parse::<u32>() == Ok(proc.pid()))
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline
                && proc.exited().is_none()
                && !(socket.exists() && ours(&proc))
            {
                thread::sleep(Duration::from_millis(20));
            }
            if socket.exists() && ours(&proc) && proc.exited().is_none() {
                return Self {
                    display: format!(":{n}"),
                    _proc: proc,
                    logs,
                };
            }
            // Lost a race for this display, or Xvfb is broken: give up after a few tries.
            failures.push(proc.output());
            if failures.len() >= 5 {
                break;
            }
        }
        panic!("Xvfb did not start\n{}", failures.join("\n"));
    }

    /// Screenshot of the whole X screen: `xwd -root`, converted to PNG by ImageMagick.
    fn screenshot(&self, png: &Path) -> Frame {
        let xwd = self.logs.path().join("root.xwd");
        let status = Command::new("xwd")
            .args(["-root", "-silent", "-display", &self.display, "-out"])
            .arg(&xwd)
            .status()
            .expect("cannot run xwd");
        assert!(status.success(), "xwd failed: {status}");
        let status = Command::new("convert")
            .arg(&xwd)
            .arg(png)
            .status()
            .expect("cannot run convert");
        assert!(status.success(), "convert failed: {status}");
        read_png(png)
    }
}

fn display_free(n: u32) -> bool {
    !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        && !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
}

fn winit_options(xvfb: &Xvfb, command: &[&str]) -> LockstepOptions {
    LockstepOptions {
        backend: "winit",
        outputs: Vec::new(),
        env: vec![("DISPLAY".into(), xvfb.display.clone())],
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        fd_limit: None,
        args: Vec::new(),
    }
}

const NESTED_PROGRAMS: &[&str] = &["Xvfb", "xwd", "convert", "weston-simple-shm"];

#[test]
fn winit_under_xvfb_shows_the_client_in_the_x_screen() {
    const TEST: &str = "nested-x";
    if !require_programs(TEST, NESTED_PROGRAMS) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let xvfb = Xvfb::start(TEST);
        let mut lockstep = Lockstep::start(TEST, winit_options(&xvfb, &["weston-simple-shm"]));
        lockstep.wait_for_window(None);
        let outputs = lockstep.outputs();
        let output = outputs.first().expect("the winit output");

        let png = screenshot_dir().join("nested-x-screen.png");
        let deadline = Instant::now() + CONTENT_TIMEOUT;
        loop {
            let window = lockstep.windows().into_iter().next().expect("the window");
            let screen = xvfb.screenshot(&png);
            // Without a window manager the winit window sits at the X screen's origin, and
            // its output maps 1:1 onto it, so the client is at its logical position.
            let whole = screen.stats();
            let region = window_region(&screen, &window);
            let stats = region.stats();
            let not_background = fraction_not(&region, whole.dominant_color);
            let good = stats.distinct_colors >= 100 && not_background > 0.95;
            if good {
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the X screen does not show weston-simple-shm at {window:?} (output \
                     {output:?}): {stats:?}, {not_background:.3} of the region differs from \
                     the screen's dominant colour {:?}; see {}\n{}",
                    whole.dominant_color,
                    png.display(),
                    lockstep.output()
                );
            }
            thread::sleep(Duration::from_millis(250));
        }
        lockstep.assert_running();
    });
}

#[test]
fn ipc_screenshot_of_the_winit_output() {
    const TEST: &str = "nested-ipc";
    if !require_programs(TEST, NESTED_PROGRAMS) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let xvfb = Xvfb::start(TEST);
        let mut lockstep = Lockstep::start(TEST, winit_options(&xvfb, &["weston-simple-shm"]));
        lockstep.wait_for_window(None);
        let outputs = lockstep.outputs();
        let output = outputs.first().expect("the winit output");
        let shot = lockstep.screenshot("nested-ipc.png", Some(&output.name));
        assert_eq!(
            (shot.width() as i32, shot.height() as i32),
            output.size,
            "the screenshot has the output's size"
        );
        let window = lockstep.windows().into_iter().next().expect("the window");
        let background = shot.stats().dominant_color;
        let region = window_region(&shot, &window);
        let stats = region.stats();
        assert!(
            stats.distinct_colors >= 100 && fraction_not(&region, background) > 0.95,
            "the IPC screenshot of {} does not show weston-simple-shm at {window:?}: {stats:?}",
            output.name
        );
    });
}

#[test]
#[allow(clippy::disallowed_macros)] // the measurement is reported, never asserted
fn idle_cpu_of_nested_lockstep_is_reported() {
    const TEST: &str = "nested-idle";
    if !require_programs(TEST, &["Xvfb"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let xvfb = Xvfb::start(TEST);
        let mut lockstep = Lockstep::start(TEST, winit_options(&xvfb, &[]));
        // Let start-up settle (first frames, EGL set-up), then measure a quiet 5 s.
        thread::sleep(Duration::from_secs(1));
        let rendered = |l: &Lockstep| l.outputs().iter().map(|o| o.frames_rendered).sum::<u64>();
        let frames_before = rendered(&lockstep);
        let cpu_before = cpu_seconds(lockstep.pid());
        let start = Instant::now();
        thread::sleep(Duration::from_secs(5));
        let cpu = cpu_seconds(lockstep.pid()) - cpu_before;
        let wall = start.elapsed().as_secs_f64();
        let frames = rendered(&lockstep) - frames_before;
        lockstep.assert_running();
        eprintln!(
            "nested lockstep idle (winit under Xvfb, no client): {cpu:.2} s CPU in {wall:.1} s \
             ({:.1} % of a core), {frames} frames rendered",
            cpu / wall * 100.0
        );
    });
}

/// The X11 smoke test of the nested backend: lockstep's own Xwayland inside a lockstep that is
/// itself an X client of Xvfb. xterm is started by lockstep (so it gets lockstep's DISPLAY,
/// not Xvfb's); a double click made on the Xvfb screen (xdotool) goes through winit,
/// lockstep's seat and Xwayland to xterm, which selects the word under it: PRIMARY, which a
/// Wayland client then reads.
#[test]
fn xterm_in_nested_lockstep_selects_a_word_with_the_pointer() {
    const TEST: &str = "nested-xterm";
    if !require_programs(TEST, &["Xvfb", "xterm", "xdotool", "wl-paste", "Xwayland"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let xvfb = Xvfb::start(TEST);
        let mut lockstep = Lockstep::start(
            TEST,
            winit_options(
                &xvfb,
                &["xterm", "-e", "sh", "-c", "echo clickme; sleep 600"],
            ),
        );
        let window = lockstep.wait_for_window(None);
        assert!(window.xwayland, "{window:?}");
        // The winit window is at the X screen's origin with a 1:1 output, so screen
        // coordinates are lockstep's: the word is on xterm's first line.
        let (x, y) = (window.position.0 + 20, window.position.1 + 8);
        let deadline = Instant::now() + CONTENT_TIMEOUT;
        let pasted = loop {
            let status = Command::new("xdotool")
                .env("DISPLAY", &xvfb.display)
                .args(["mousemove", &x.to_string(), &y.to_string()])
                .args(["click", "--repeat", "2", "--delay", "80", "1"])
                .status()
                .expect("cannot run xdotool");
            assert!(status.success(), "xdotool: {status}");
            thread::sleep(Duration::from_millis(300));
            let output = lockstep
                .client_command("wl-paste")
                .args(["--primary", "--no-newline"])
                .output()
                .expect("cannot run wl-paste");
            let pasted = String::from_utf8_lossy(&output.stdout).into_owned();
            if pasted == "clickme" || Instant::now() > deadline {
                break pasted;
            }
        };
        assert_eq!(pasted, "clickme", "{}", lockstep.output());
        lockstep.assert_running();
    });
}

/// The root window's children on X display `display` as (id, x, y, width, height).
fn x_root_children(display: &str) -> Vec<(String, i32, i32, i32, i32)> {
    let output = Command::new("xwininfo")
        .args(["-root", "-children", "-display", display])
        .output()
        .expect("cannot run xwininfo");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let id = line
                .split_whitespace()
                .next()?
                .strip_prefix("0x")?
                .to_owned();
            // The first `WxH+X+Y` of the line is the geometry relative to the root.
            let geometry = line.split_whitespace().find(|w| {
                w.contains('x') && w.contains('+') && w.starts_with(|c: char| c.is_ascii_digit())
            })?;
            let (size, position) = geometry.split_once('+')?;
            let (w, h) = size.split_once('x')?;
            let (x, y) = position.split_once('+')?;
            Some((
                id,
                x.parse().ok()?,
                y.parse().ok()?,
                w.parse().ok()?,
                h.parse().ok()?,
            ))
        })
        .collect()
}

/// xterm's Ctrl+click menu (an override-redirect window, opened by a real pointer button with
/// a real modifier through the nested backend) shows exactly where X put it.
#[test]
fn xterm_menu_in_nested_lockstep_shows_where_x_put_it() {
    const TEST: &str = "nested-xmenu";
    if !require_programs(TEST, &["Xvfb", "xterm", "xdotool", "xwininfo", "Xwayland"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let xvfb = Xvfb::start(TEST);
        let mut lockstep = Lockstep::start(
            TEST,
            winit_options(
                &xvfb,
                &[
                    "xterm", "-bg", "black", "-fg", "white", "-e", "sleep", "600",
                ],
            ),
        );
        lockstep.wait_for_window(None);
        let out = lockstep.output();
        let display = out
            .lines()
            .find(|l| l.starts_with("lockstep is ready:"))
            .and_then(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("DISPLAY="))
            })
            .expect("lockstep's DISPLAY")
            .to_owned();
        let xdotool = |args: &[&str]| {
            let status = Command::new("xdotool")
                .env("DISPLAY", &xvfb.display)
                .args(args)
                .status()
                .expect("cannot run xdotool");
            assert!(status.success(), "xdotool {args:?}: {status}");
        };
        // Without a window manager on Xvfb, winit hears keys only once its window has focus.
        let search = Command::new("xdotool")
            .env("DISPLAY", &xvfb.display)
            .args(["search", "--onlyvisible", "--name", "^lockstep$"])
            .output()
            .expect("cannot run xdotool");
        let winit_window = String::from_utf8_lossy(&search.stdout)
            .lines()
            .next()
            .expect("the winit window on Xvfb")
            .to_owned();
        xdotool(&["windowfocus", "--sync", &winit_window]);
        let before = x_root_children(&display);
        xdotool(&[
            "mousemove",
            "400",
            "300",
            "keydown",
            "ctrl",
            "mousedown",
            "1",
        ]);
        let deadline = Instant::now() + CONTENT_TIMEOUT;
        let menu = loop {
            let new: Vec<_> = x_root_children(&display)
                .into_iter()
                .filter(|c| !before.iter().any(|b| b.0 == c.0) && c.3 > 50 && c.4 > 50)
                .collect();
            if let Some(menu) = new.into_iter().next() {
                break menu;
            }
            assert!(
                Instant::now() < deadline,
                "no menu window\n{}",
                lockstep.output()
            );
            thread::sleep(Duration::from_millis(100));
        };
        let (_, x, y, w, h) = menu;
        // Give the menu a moment to draw, then compare lockstep's picture with X's geometry.
        let deadline = Instant::now() + CONTENT_TIMEOUT;
        let frame = loop {
            let frame = lockstep.screenshot("nested-xmenu.png", None);
            let inside = frame.crop(x as u32, y as u32, w as u32, h as u32);
            if fraction_not(&inside, [0, 0, 0]) > 0.02 || Instant::now() > deadline {
                break frame;
            }
            thread::sleep(Duration::from_millis(200));
        };
        xdotool(&["mouseup", "1", "keyup", "ctrl"]);
        let inside = frame.crop(x as u32, y as u32, w as u32, h as u32);
        assert!(
            fraction_not(&inside, [0, 0, 0]) > 0.02,
            "the menu at {w}x{h}+{x}+{y} shows nothing: see {}",
            screenshot_dir().join("nested-xmenu.png").display()
        );
        // Around it, 12 pixels wide, only xterm's black background: nothing of the menu is
        // drawn anywhere but where X has it.
        let ring = 12;
        for (rx, ry, rw, rh) in [
            (x - ring, y - ring, w + 2 * ring, ring),
            (x - ring, y + h, w + 2 * ring, ring),
            (x - ring, y, ring, h),
            (x + w, y, ring, h),
        ] {
            let strip = frame.crop(rx as u32, ry as u32, rw as u32, rh as u32);
            assert_eq!(
                fraction_not(&strip, [0, 0, 0]),
                0.0,
                "menu pixels outside {w}x{h}+{x}+{y} (strip {rw}x{rh}+{rx}+{ry}): see {}",
                screenshot_dir().join("nested-xmenu.png").display()
            );
        }
        lockstep.assert_running();
    });
}

/// Super+drag moves a floating X11 window, and X learns where it went (its menus open there).
#[test]
fn super_drag_moves_a_floating_x11_window_in_x_too() {
    const TEST: &str = "nested-xdrag";
    let python = "/usr/bin/python3";
    if !require_programs(TEST, &["Xvfb", "xdotool", "xwininfo", "Xwayland", python]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let xvfb = Xvfb::start(TEST);
        let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/xwayland_client.py");
        let client = client.to_string_lossy().into_owned();
        let mut lockstep = Lockstep::start(
            TEST,
            winit_options(&xvfb, &[python, &client, "fixed", "200", "150"]),
        );
        let before = lockstep.wait_for_window(None);
        assert_eq!(before.layout, "floating", "{before:?}");
        let xdotool = |args: &[&str]| {
            let status = Command::new("xdotool")
                .env("DISPLAY", &xvfb.display)
                .args(args)
                .status()
                .expect("cannot run xdotool");
            assert!(status.success(), "xdotool {args:?}: {status}");
        };
        let search = Command::new("xdotool")
            .env("DISPLAY", &xvfb.display)
            .args(["search", "--onlyvisible", "--name", "^lockstep$"])
            .output()
            .expect("cannot run xdotool");
        let winit_window = String::from_utf8_lossy(&search.stdout)
            .lines()
            .next()
            .expect("the winit window on Xvfb")
            .to_owned();
        xdotool(&["windowfocus", "--sync", &winit_window]);
        let (x, y) = (before.position.0 + 100, before.position.1 + 75);
        xdotool(&["mousemove", &x.to_string(), &y.to_string()]);
        xdotool(&["keydown", "super", "mousedown", "1"]);
        for step in 1..=5 {
            let (dx, dy) = (step * 20, step * 10);
            xdotool(&["mousemove", &(x + dx).to_string(), &(y + dy).to_string()]);
            thread::sleep(Duration::from_millis(50));
        }
        xdotool(&["mouseup", "1", "keyup", "super"]);
        let deadline = Instant::now() + CONTENT_TIMEOUT;
        let after = loop {
            let window = lockstep.windows().into_iter().next().expect("the window");
            if window.position != before.position || Instant::now() > deadline {
                break window;
            }
            thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(
            after.position,
            (before.position.0 + 100, before.position.1 + 50),
            "{after:?}\n{}",
            lockstep.output()
        );
        // X has the window there too.
        let display = lockstep
            .output()
            .lines()
            .find(|l| l.starts_with("lockstep is ready:"))
            .and_then(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("DISPLAY="))
            })
            .expect("lockstep's DISPLAY")
            .to_owned();
        let info = Command::new("xwininfo")
            .args(["-display", &display, "-name", "lockstep-test-fixed"])
            .output()
            .expect("cannot run xwininfo");
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.contains(&format!("Absolute upper-left X:  {}", after.position.0))
                && info.contains(&format!("Absolute upper-left Y:  {}", after.position.1)),
            "X has it elsewhere: {info}"
        );
    });
}
