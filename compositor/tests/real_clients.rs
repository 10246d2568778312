//! Real third-party clients from Debian bookworm against the real `lockstep` binary on the
//! headless backend (DESIGN.md, testing layer 3).
//!
//! Each test starts its own lockstep (unique socket, private XDG_RUNTIME_DIR), runs one
//! client, waits for its window, and checks an IPC screenshot: the window's region must show
//! the client's content, not lockstep's background. Screenshots are kept in
//! `<target dir>/test-screenshots/` for people to look at.
//!
//! A missing client skips its test with a message, unless `LOCKSTEP_REQUIRE_CLIENTS=1` (CI),
//! where it fails: CI installs them all (`scripts/deps`).

mod common;

use std::{
    thread,
    time::{Duration, Instant},
};

use common::{
    fraction_equal, fraction_not, read_png, require_programs, screenshot_dir, window_region,
    with_timeout, Lockstep, LockstepOptions,
};
use lockstep_render::FrameStats;

/// Time limit of one test, lockstep start to teardown.
const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a mapped window may take to show what we expect (GTK draws a few frames first).
const CONTENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the window's region of the screenshot must look like.
#[derive(Debug, Clone, Copy)]
struct Expect {
    /// At least this many distinct colours inside the window.
    min_colors: usize,
    /// At least this share of the window's pixels differ from the background colour.
    min_not_background: f64,
}

/// Runs `program args` against a fresh lockstep and checks its window's pixels.
fn window_client(
    test: &'static str,
    program: &'static str,
    args: &'static [&'static str],
    expect: Expect,
) {
    if !require_programs(test, &[program]) {
        return;
    }
    with_timeout(test, TEST_TIMEOUT, move || {
        let mut lockstep = Lockstep::start(test, LockstepOptions::headless());
        let background = lockstep.background();
        let mut client = lockstep.spawn_client(program, args);
        lockstep.wait_for_window(Some(&mut client));

        let file = format!("{test}.png");
        let deadline = Instant::now() + CONTENT_TIMEOUT;
        loop {
            // Geometry may change after the first configure (GTK): ask again each time.
            let window = lockstep.windows().into_iter().next().unwrap_or_else(|| {
                panic!(
                    "{program}'s window went away\n{}\n{}",
                    client.output(),
                    lockstep.output()
                )
            });
            let frame = lockstep.screenshot(&file, None);
            let region = window_region(&frame, &window);
            let stats = region.stats();
            let not_background = fraction_not(&region, background);
            let good = region.width() > 0
                && region.height() > 0
                && stats.distinct_colors >= expect.min_colors
                && not_background >= expect.min_not_background;
            if good {
                report(test, &window, &stats, not_background);
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{program}'s window does not show its content after {CONTENT_TIMEOUT:?}: \
                     window {window:?}, region {}x{}, {stats:?}, {:.3} of it not background \
                     {background:?}; expected {expect:?}. Screenshot: {}\n{}\n{}",
                    region.width(),
                    region.height(),
                    not_background,
                    screenshot_dir().join(&file).display(),
                    client.output(),
                    lockstep.output()
                );
            }
            thread::sleep(Duration::from_millis(250));
        }

        if let Some(status) = client.exited() {
            panic!(
                "{program} exited ({status}) while shown\n{}",
                client.output()
            );
        }
        lockstep.assert_running();
    });
}

/// Prints what was measured, so thresholds can be judged from `cargo test -- --nocapture`.
#[allow(clippy::disallowed_macros)] // test report for the person running the tests
fn report(test: &str, window: &lockstep::ipc::WindowInfo, stats: &FrameStats, not_bg: f64) {
    eprintln!(
        "{test}: window {:?} at {:?}, {} colours, {:.3} not background",
        window.size, window.position, stats.distinct_colors, not_bg
    );
}

#[test]
fn weston_simple_shm() {
    // Concentric colour rings on a white frame: hundreds of colours.
    window_client(
        "weston-simple-shm",
        "weston-simple-shm",
        &[],
        Expect {
            min_colors: 100,
            min_not_background: 0.95,
        },
    );
}

#[test]
fn weston_simple_damage() {
    // A dark rectangle with a white border and a moving green ball.
    window_client(
        "weston-simple-damage",
        "weston-simple-damage",
        &[],
        Expect {
            min_colors: 3,
            min_not_background: 0.95,
        },
    );
}

#[test]
fn weston_simple_egl() {
    // Mesa llvmpipe renders a rotating RGB triangle and sends shm buffers.
    window_client(
        "weston-simple-egl",
        "weston-simple-egl",
        &[],
        Expect {
            min_colors: 100,
            min_not_background: 0.95,
        },
    );
}

#[test]
fn weston_terminal() {
    // Client-side decorations with a title and buttons, a black terminal with a prompt.
    window_client(
        "weston-terminal",
        "weston-terminal",
        &[],
        Expect {
            min_colors: 20,
            min_not_background: 0.95,
        },
    );
}

#[test]
fn gtk4_widget_factory() {
    window_client(
        "gtk4-widget-factory",
        "gtk4-widget-factory",
        &[],
        Expect {
            min_colors: 200,
            min_not_background: 0.95,
        },
    );
}

#[test]
fn gtk3_widget_factory() {
    window_client(
        "gtk3-widget-factory",
        "gtk3-widget-factory",
        &[],
        Expect {
            min_colors: 200,
            min_not_background: 0.95,
        },
    );
}

#[test]
fn foot() {
    // foot needs wl_seat (it refuses to start without one) and draws a shell prompt.
    window_client(
        "foot",
        "foot",
        &[],
        Expect {
            min_colors: 5,
            min_not_background: 0.95,
        },
    );
}

/// Globals real clients need; wayland-info must list every one.
const REQUIRED_GLOBALS: &[&str] = &[
    "wl_compositor",
    "xdg_wm_base",
    "wl_seat",
    "zwp_linux_dmabuf_v1",
    "wp_presentation",
    "wp_viewporter",
    "zwlr_screencopy_manager_v1",
    "zxdg_output_manager_v1",
    "wl_data_device_manager",
];

#[test]
fn wayland_info_lists_the_globals() {
    const TEST: &str = "wayland-info";
    if !require_programs(TEST, &["wayland-info"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let mut info = lockstep.spawn_client("wayland-info", &[]);
        let status = info
            .wait_timeout(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("wayland-info did not exit\n{}", info.output()));
        assert!(
            status.success(),
            "wayland-info failed: {status}\n{}",
            info.output()
        );
        let text = info.stdout();
        let missing: Vec<&str> = REQUIRED_GLOBALS
            .iter()
            .copied()
            .filter(|global| !text.contains(&format!("interface: '{global}'")))
            .collect();
        assert!(
            missing.is_empty(),
            "wayland-info does not list {missing:?}\n{text}"
        );
    });
}

#[test]
fn grim_captures_what_lockstep_shows() {
    // foot's screen is static (no cursor blink by default), so grim's capture through
    // wlr-screencopy and lockstep's own IPC screenshot can be compared pixel by pixel.
    const TEST: &str = "grim";
    if !require_programs(TEST, &["grim", "foot"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let background = lockstep.background();
        let mut foot = lockstep.spawn_client("foot", &[]);
        lockstep.wait_for_window(Some(&mut foot));
        // Let foot draw its prompt, then wait until two IPC screenshots agree.
        let ipc_file = "grim-ipc.png";
        let deadline = Instant::now() + CONTENT_TIMEOUT;
        let mut previous = lockstep.screenshot(ipc_file, None);
        loop {
            thread::sleep(Duration::from_millis(300));
            let current = lockstep.screenshot(ipc_file, None);
            let settled = current == previous;
            previous = current;
            if settled || Instant::now() >= deadline {
                break;
            }
        }

        let grim_path = screenshot_dir().join("grim-grim.png");
        let _ = std::fs::remove_file(&grim_path);
        let mut grim = lockstep.spawn_client("grim", &[grim_path.to_str().expect("utf-8 path")]);
        let status = grim
            .wait_timeout(Duration::from_secs(20))
            .unwrap_or_else(|| {
                panic!(
                    "grim did not exit\n{}\n{}",
                    grim.output(),
                    lockstep.output()
                )
            });
        assert!(
            status.success(),
            "grim failed: {status}\n{}\n{}",
            grim.output(),
            lockstep.output()
        );
        let grabbed = read_png(&grim_path);
        let shown = lockstep.screenshot(ipc_file, None);
        assert_eq!(
            (grabbed.width(), grabbed.height()),
            (shown.width(), shown.height()),
            "grim's image has the wrong size"
        );

        let window = lockstep
            .windows()
            .into_iter()
            .next()
            .expect("foot's window");
        let region = window_region(&grabbed, &window);
        let not_background = fraction_not(&region, background);
        assert!(
            not_background > 0.95,
            "grim's image does not show foot at {window:?}: {:.3} of the region is not \
             background; see {}",
            not_background,
            grim_path.display()
        );
        // The IPC screenshot also draws the pointer; grim's capture does not: allow that.
        let equal = fraction_equal(&grabbed, &shown).max(fraction_equal(&grabbed, &previous));
        assert!(
            equal > 0.995,
            "grim's image and the IPC screenshot differ in {:.2} % of pixels; compare {} and {}",
            (1.0 - equal) * 100.0,
            grim_path.display(),
            screenshot_dir().join(ipc_file).display()
        );
        if let Some(status) = foot.exited() {
            panic!("foot exited ({status})\n{}", foot.output());
        }
    });
}

/// Runs an action through `lockstep msg action`'s IPC request.
fn action(lockstep: &Lockstep, words: &[&str]) {
    let request = lockstep::ipc::Request::Action {
        action: words.iter().map(|w| (*w).to_owned()).collect(),
    };
    match lockstep.ipc(&request) {
        lockstep::ipc::Response::Done(_) => {}
        other => panic!("action {words:?}: {other:?}\n{}", lockstep.output()),
    }
}

/// Whether the middle row and middle column of `w`'s place on `frame` are all window, no
/// background: true only once the frame shows the window at its new place and size (a stale
/// frame of the previous tiling has a gap or another window's border there).
fn crosses_its_window(
    frame: &lockstep_render::Frame,
    w: &lockstep::ipc::WindowInfo,
    background: [u8; 3],
) -> bool {
    let (x0, y0, width, height) = (w.position.0, w.position.1, w.size.0, w.size.1);
    let is_background = |x: i32, y: i32| {
        frame
            .pixel(x as u32, y as u32)
            .is_none_or(|[r, g, b, _]| [r, g, b] == background)
    };
    let row = (x0..x0 + width).all(|x| !is_background(x, y0 + height / 2));
    let column = (y0..y0 + height).all(|y| !is_background(x0 + width / 2, y));
    row && column
}

/// Waits until `count` windows are shown and each shows its content (not background) in
/// its own region; returns them.
fn tiled_windows_shown(
    lockstep: &Lockstep,
    background: [u8; 3],
    count: usize,
    file: &str,
) -> Vec<lockstep::ipc::WindowInfo> {
    let deadline = Instant::now() + CONTENT_TIMEOUT * 2;
    loop {
        let windows: Vec<_> = lockstep
            .windows()
            .into_iter()
            .filter(|w| w.visible)
            .collect();
        let frame = lockstep.screenshot(file, None);
        // Tiles fill the output but for gaps and borders: until every window has its new
        // size, the windows cover less than that.
        let covered: i32 = windows.iter().map(|w| w.size.0 * w.size.1).sum();
        let shown = windows.len() == count
            && covered > 1264 * 704 * 95 / 100
            && windows.iter().all(|w| {
                w.layout == "tiled"
                    && fraction_not(&window_region(&frame, w), background) > 0.95
                    && crosses_its_window(&frame, w, background)
            });
        if shown {
            return windows;
        }
        if Instant::now() >= deadline {
            panic!(
                "expected {count} tiled windows showing their content: {windows:#?}; see {}\n{}",
                screenshot_dir().join(file).display(),
                lockstep.output()
            );
        }
        thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn three_foot_windows_tile_and_move_between_workspaces() {
    let test = "three_foot_windows_tile_and_move_between_workspaces";
    if !require_programs(test, &["foot"]) {
        return;
    }
    with_timeout(test, TEST_TIMEOUT, move || {
        // A short tag: the socket path must fit in a sockaddr_un.
        let mut lockstep = Lockstep::start("foot-tiled", LockstepOptions::headless());
        let background = lockstep.background();
        // The `terminal` action (Super+Return) starts foot.
        for _ in 0..3 {
            action(&lockstep, &["terminal"]);
        }
        let windows = tiled_windows_shown(&lockstep, background, 3, "foot-tiled.png");
        for (i, a) in windows.iter().enumerate() {
            assert!(
                a.position.0 >= 0
                    && a.position.1 >= 0
                    && a.position.0 + a.size.0 <= 1280
                    && a.position.1 + a.size.1 <= 720,
                "{a:?} leaves the output"
            );
            for b in &windows[i + 1..] {
                let apart = a.position.0 + a.size.0 <= b.position.0
                    || b.position.0 + b.size.0 <= a.position.0
                    || a.position.1 + a.size.1 <= b.position.1
                    || b.position.1 + b.size.1 <= a.position.1;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }

        // The focused one goes to workspace 2: its place shows the others or background.
        let focused = windows
            .iter()
            .find(|w| w.focused)
            .expect("a focused foot")
            .clone();
        action(&lockstep, &["move-to-workspace", "2"]);
        let remaining = tiled_windows_shown(&lockstep, background, 2, "foot-workspace-1.png");
        assert!(remaining.iter().all(|w| w.id != focused.id));
        action(&lockstep, &["workspace", "2"]);
        let back = tiled_windows_shown(&lockstep, background, 1, "foot-workspace-2.png");
        assert_eq!(back[0].id, focused.id);

        // Fullscreen covers the output.
        action(&lockstep, &["fullscreen"]);
        let deadline = Instant::now() + CONTENT_TIMEOUT;
        loop {
            let window = lockstep
                .windows()
                .into_iter()
                .find(|w| w.id == focused.id)
                .expect("the foot window");
            let frame = lockstep.screenshot("foot-fullscreen.png", None);
            if window.size == (1280, 720)
                && window.position == (0, 0)
                && fraction_not(&frame, background) > 0.99
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "foot did not go fullscreen: {window:?}\n{}",
                lockstep.output()
            );
            thread::sleep(Duration::from_millis(250));
        }
        lockstep.assert_running();
    });
}

/// `msg clients` while `pid` is connected: its entry, once it has at least one surface.
fn client_entry(lockstep: &Lockstep, pid: u32) -> Option<lockstep::client_memory::ClientInfo> {
    match lockstep.ipc(&lockstep::ipc::Request::Clients) {
        lockstep::ipc::Response::Clients(report) => report
            .clients
            .into_iter()
            .find(|c| c.pid == pid as i32 && c.figures.surfaces > 0),
        other => panic!("unexpected answer to clients: {other:?}"),
    }
}

#[test]
fn msg_clients_shows_what_real_clients_hold_and_drops_it_when_they_quit() {
    // Short: it names the Wayland socket, whose path has a length limit.
    let test = "msg_clients";
    if !require_programs(test, &["foot", "weston-simple-shm"]) {
        return;
    }
    with_timeout(test, TEST_TIMEOUT, move || {
        let lockstep = Lockstep::start(test, LockstepOptions::headless());
        let mut shm = lockstep.spawn_client("weston-simple-shm", &[]);
        let mut foot = lockstep.spawn_client("foot", &[]);
        let deadline = Instant::now() + CONTENT_TIMEOUT;
        let (shm_entry, foot_entry) = loop {
            let entries = (
                client_entry(&lockstep, shm.pid()),
                client_entry(&lockstep, foot.pid()),
            );
            if let (Some(s), Some(f)) = &entries {
                if s.figures.buffers > 0 && f.figures.shm_bytes > 0 && !f.app_ids.is_empty() {
                    break (s.clone(), f.clone());
                }
            }
            assert!(
                Instant::now() < deadline,
                "msg clients never listed both clients with buffers: {entries:?}\n{}",
                lockstep.output()
            );
            thread::sleep(Duration::from_millis(100));
        };
        // weston-simple-shm draws 250×250 ARGB buffers, each in a pool of its own.
        let s = &shm_entry.figures;
        assert_eq!(s.shm_pools, s.buffers, "{shm_entry:?}");
        assert_eq!(
            s.shm_bytes,
            u64::from(s.buffers) * 250 * 250 * 4,
            "{shm_entry:?}"
        );
        assert_eq!(shm_entry.command.as_deref(), Some("weston-simple-s"));
        assert_eq!(foot_entry.app_ids, ["foot"], "{foot_entry:?}");
        assert!(foot_entry.figures.surfaces >= 1, "{foot_entry:?}");
        #[allow(clippy::disallowed_macros)] // what was measured, for `--nocapture`
        {
            eprintln!("{test}: weston-simple-shm {shm_entry:?}\n{test}: foot {foot_entry:?}");
        }

        // Once they quit, nothing of theirs is left.
        shm.terminate();
        foot.terminate();
        let deadline = Instant::now() + CONTENT_TIMEOUT;
        loop {
            let report = match lockstep.ipc(&lockstep::ipc::Request::Clients) {
                lockstep::ipc::Response::Clients(report) => report,
                other => panic!("unexpected answer to clients: {other:?}"),
            };
            let gone = !report
                .clients
                .iter()
                .any(|c| c.pid == shm.pid() as i32 || c.pid == foot.pid() as i32);
            if gone && report.disconnected == lockstep::client_memory::Figures::default() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "memory of clients that quit is still held: {report:?}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    });
}
