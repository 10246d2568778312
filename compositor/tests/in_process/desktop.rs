//! The desktop: tiling, workspaces, fullscreen, key bindings through the real keyboard path,
//! and every action over IPC. These run with the default config (new windows tile), and the
//! test clients draw at the size each configure asks for, as real clients do.

use std::time::Duration;

use lockstep::ipc::{self, Request, Response, WindowInfo};
use wayland_client::Proxy;

use crate::{
    client::Toplevel,
    fixture::{rgb, ClientId, Fixture, DEFAULT_OUTPUT},
};

pub(crate) const OUT: &str = "HEADLESS-1";
pub(crate) const RED: u32 = 0xffd0_2020;
pub(crate) const GREEN: u32 = 0xff20_c040;
pub(crate) const BLUE: u32 = 0xff30_40e0;

// evdev key codes.
pub(crate) const KEY_LEFTMETA: u32 = 125;
const KEY_LEFTSHIFT: u32 = 42;
const KEY_A: u32 = 30;
const KEY_2: u32 = 3;
const KEY_Q: u32 = 16;

/// A toplevel that draws in one colour at whatever size it is configured to.
pub(crate) struct Painted {
    pub(crate) top: Toplevel,
    argb: u32,
    /// The size of the buffer it last attached.
    size: (i32, i32),
    /// The configure serial it last acked.
    acked: Option<u32>,
}

/// Creates a toplevel that follows its configures and waits until it is shown.
pub(crate) fn open(f: &mut Fixture, c: ClientId, argb: u32) -> Painted {
    let before = f.windows().len();
    let top = f.client(c).toplevel();
    top.surface.commit();
    f.roundtrip(c);
    let mut painted = Painted {
        top,
        argb,
        size: (0, 0),
        acked: None,
    };
    follow(f, c, &mut painted);
    assert!(
        f.wait_until(Duration::from_secs(2), |f| f.windows().len() > before),
        "window never mapped"
    );
    painted
}

/// Acks the last configure and draws a buffer of its size (200×100 when the compositor lets
/// the client choose), as a real client does.
fn follow(f: &mut Fixture, c: ClientId, w: &mut Painted) {
    f.roundtrip(c);
    let cl = f.client(c);
    let Some(serial) = cl.configure_serial(&w.top.xdg_surface) else {
        return;
    };
    if w.acked == Some(serial) {
        return;
    }
    let (cw, ch) = cl
        .data
        .toplevel_sizes
        .get(&w.top.toplevel.id().protocol_id())
        .copied()
        .unwrap_or((0, 0));
    let size = (if cw > 0 { cw } else { 200 }, if ch > 0 { ch } else { 100 });
    w.top.xdg_surface.ack_configure(serial);
    w.acked = Some(serial);
    if size != w.size {
        let buffer = f.client(c).shm_buffer(size.0, size.1, w.argb);
        w.top.surface.attach(Some(&buffer), 0, 0);
        w.top.surface.damage_buffer(0, 0, size.0, size.1);
        w.size = size;
    }
    w.top.surface.commit();
    f.roundtrip(c);
}

/// The size of the buffer `w` last attached.
pub(crate) fn drawn_size(w: &Painted) -> (i32, i32) {
    w.size
}

/// Lets every window catch up with its configures, then lets frames render.
pub(crate) fn settle(f: &mut Fixture, c: ClientId, windows: &mut [&mut Painted]) {
    for _ in 0..2 {
        for w in windows.iter_mut() {
            follow(f, c, w);
        }
    }
    f.settle();
}

pub(crate) fn action(f: &mut Fixture, words: &str) -> String {
    let words: Vec<String> = words.split_whitespace().map(str::to_owned).collect();
    match ipc::run_action(&mut f.server.state, &words) {
        Response::Done(message) => message,
        other => panic!("action {words:?}: {other:?}"),
    }
}

fn window_with_colour(windows: &[WindowInfo], f: &mut Fixture, argb: u32) -> WindowInfo {
    let shot = f.screenshot(OUT);
    windows
        .iter()
        .find(|w| {
            let (cx, cy) = (w.position.0 + w.size.0 / 2, w.position.1 + w.size.1 / 2);
            w.visible && rgb(&shot, cx, cy) == argb & 0xff_ffff
        })
        .cloned()
        .unwrap_or_else(|| panic!("no window shows {argb:#x}: {windows:#?}"))
}

/// A tiling fixture with a second 1280×720 output right of the first; its name.
fn two_outputs() -> (Fixture, String) {
    let mut f = Fixture::tiling();
    let second = f.add_output(lockstep::backend::headless::VirtualOutput {
        position: Some((1280, 0)),
        ..DEFAULT_OUTPUT
    });
    (f, second)
}

/// How many points of a 20 px grid over the output show colour `argb`.
fn samples_of(f: &mut Fixture, argb: u32) -> u32 {
    let shot = f.screenshot(OUT);
    let mut n = 0;
    for y in (0..720).step_by(20) {
        for x in (0..1280).step_by(20) {
            n += u32::from(rgb(&shot, x, y) == argb & 0xff_ffff);
        }
    }
    n
}

/// A tiling fixture whose client has a keyboard and two tiled windows: red, then green
/// (focused).
fn red_and_green() -> (Fixture, ClientId, Painted, Painted) {
    let mut f = Fixture::tiling();
    let c = f.add_client();
    {
        let cl = f.client(c);
        cl.seat.get_keyboard(&cl.qh, ());
    }
    let mut a = open(&mut f, c, RED);
    let mut b = open(&mut f, c, GREEN);
    settle(&mut f, c, &mut [&mut a, &mut b]);
    (f, c, a, b)
}

fn overlaps(a: &WindowInfo, b: &WindowInfo) -> bool {
    a.position.0 < b.position.0 + b.size.0
        && b.position.0 < a.position.0 + a.size.0
        && a.position.1 < b.position.1 + b.size.1
        && b.position.1 < a.position.1 + a.size.1
}

fn active_workspace(f: &Fixture) -> String {
    match ipc::answer(&f.server.state, Request::Outputs) {
        Response::Outputs(o) => o[0].workspace.clone().expect("a shown workspace"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn three_windows_tile_side_by_side_without_overlap() {
    let mut f = Fixture::tiling();
    let c = f.add_client();
    let mut a = open(&mut f, c, RED);
    let mut b = open(&mut f, c, GREEN);
    let mut d = open(&mut f, c, BLUE);
    settle(&mut f, c, &mut [&mut a, &mut b, &mut d]);
    let windows = f.windows();
    assert_eq!(windows.len(), 3);
    let shown: Vec<WindowInfo> = [RED, GREEN, BLUE]
        .into_iter()
        .map(|argb| window_with_colour(&windows, &mut f, argb))
        .collect();
    for (i, w) in shown.iter().enumerate() {
        assert_eq!(w.layout, "tiled");
        assert!(w.position.0 >= 0 && w.position.1 >= 0, "{w:?}");
        assert!(
            w.position.0 + w.size.0 <= 1280 && w.position.1 + w.size.1 <= 720,
            "{w:?}"
        );
        for other in &shown[i + 1..] {
            assert!(!overlaps(w, other), "{w:?} overlaps {other:?}");
        }
    }
    // Master–stack: the first window on the left, the other two stacked on the right.
    assert!(shown[0].position.0 < shown[1].position.0);
    assert_eq!(shown[1].position.0, shown[2].position.0);
    assert!(shown[1].position.1 < shown[2].position.1);
    // Together they cover most of the output: nothing is left at its own small size.
    let area: i32 = shown.iter().map(|w| w.size.0 * w.size.1).sum();
    assert!(area > 1280 * 720 * 9 / 10, "tiles cover {area} px");
}

#[test]
fn window_moved_to_workspace_2_disappears_and_comes_back() {
    let mut f = Fixture::tiling();
    let c = f.add_client();
    let mut a = open(&mut f, c, RED);
    let mut b = open(&mut f, c, GREEN);
    settle(&mut f, c, &mut [&mut a, &mut b]);
    let red = window_with_colour(&f.windows(), &mut f, RED);
    // Green has focus (newest); focus red and send it away.
    action(&mut f, "focus left");
    assert!(f.windows().iter().any(|w| w.focused && w.id == red.id));
    action(&mut f, "move-to-workspace 2");
    settle(&mut f, c, &mut [&mut a, &mut b]);
    assert_eq!(samples_of(&mut f, RED), 0, "red is on workspace 2");
    assert!(
        samples_of(&mut f, GREEN) > 2000,
        "green now fills the output"
    );
    let moved = f.windows().into_iter().find(|w| w.id == red.id).unwrap();
    assert_eq!(
        (moved.workspace.as_deref(), moved.visible),
        (Some("2"), false)
    );

    action(&mut f, "workspace 2");
    settle(&mut f, c, &mut [&mut a, &mut b]);
    assert_eq!(active_workspace(&f), "2");
    let shot = f.screenshot(OUT);
    assert_eq!(rgb(&shot, 640, 360), RED & 0xff_ffff);
    assert!(f.windows().iter().any(|w| w.focused && w.id == red.id));
    action(&mut f, "workspace 1");
    settle(&mut f, c, &mut [&mut a, &mut b]);
    assert_eq!(rgb(&f.screenshot(OUT), 640, 360), GREEN & 0xff_ffff);
}

#[test]
fn fullscreen_covers_the_output() {
    let mut f = Fixture::tiling();
    let c = f.add_client();
    let mut a = open(&mut f, c, RED);
    let mut b = open(&mut f, c, GREEN);
    settle(&mut f, c, &mut [&mut a, &mut b]);
    action(&mut f, "fullscreen");
    settle(&mut f, c, &mut [&mut a, &mut b]);
    assert_eq!(b.size, (1280, 720));
    let shot = f.screenshot(OUT);
    for (x, y) in [
        (0, 0),
        (1279, 0),
        (0, 719),
        (1279, 719),
        (640, 360),
        (100, 600),
    ] {
        assert_eq!(rgb(&shot, x, y), GREEN & 0xff_ffff, "({x}, {y})");
    }
    action(&mut f, "fullscreen");
    settle(&mut f, c, &mut [&mut a, &mut b]);
    assert!(b.size.0 < 1280, "back in its tile: {:?}", b.size);
}

#[test]
fn a_binding_runs_its_action_and_the_client_never_sees_the_key() {
    let mut f = Fixture::tiling();
    let c = f.add_client();
    {
        let cl = f.client(c);
        cl.seat.get_keyboard(&cl.qh, ());
    }
    let mut a = open(&mut f, c, RED);
    settle(&mut f, c, &mut [&mut a]);
    let key = |f: &mut Fixture, code: u32, pressed: bool| {
        f.server.state.keyboard_key(code, pressed, 0);
        f.roundtrip(c);
    };
    // A plain key reaches the focused client.
    key(&mut f, KEY_A, true);
    key(&mut f, KEY_A, false);
    assert_eq!(f.client(c).data.keys, vec![(KEY_A, true), (KEY_A, false)]);
    // Super+2 shows workspace 2; neither the press nor the release of 2 reaches the client.
    key(&mut f, KEY_LEFTMETA, true);
    key(&mut f, KEY_2, true);
    key(&mut f, KEY_2, false);
    key(&mut f, KEY_LEFTMETA, false);
    assert_eq!(active_workspace(&f), "2");
    let keys = &f.client(c).data.keys;
    assert!(
        !keys.iter().any(|(k, _)| *k == KEY_2),
        "the client saw {keys:?}"
    );

    // Back on workspace 1 (over IPC), Super+Shift+Q asks the focused window to close.
    action(&mut f, "workspace 1");
    settle(&mut f, c, &mut [&mut a]);
    f.client(c).data.keys.clear();
    key(&mut f, KEY_LEFTMETA, true);
    key(&mut f, KEY_LEFTSHIFT, true);
    key(&mut f, KEY_Q, true);
    key(&mut f, KEY_Q, false);
    key(&mut f, KEY_LEFTSHIFT, false);
    key(&mut f, KEY_LEFTMETA, false);
    let cl = f.client(c);
    assert_eq!(cl.data.closed, vec![a.top.toplevel.id().protocol_id()]);
    assert!(
        !cl.data.keys.iter().any(|(k, _)| *k == KEY_Q),
        "{:?}",
        cl.data.keys
    );
}

#[test]
fn every_action_runs_over_ipc() {
    let (mut f, second) = two_outputs();
    let c = f.add_client();
    let mut a = open(&mut f, c, RED);
    let mut b = open(&mut f, c, GREEN);
    settle(&mut f, c, &mut [&mut a, &mut b]);
    let focused = |f: &Fixture| f.windows().into_iter().find(|w| w.focused).map(|w| w.id);
    let (id_a, id_b) = (f.windows()[0].id, f.windows()[1].id);
    assert_eq!(focused(&f), Some(id_b));

    action(&mut f, "focus left");
    assert_eq!(focused(&f), Some(id_a));
    action(&mut f, "focus right");
    assert_eq!(focused(&f), Some(id_b));
    action(&mut f, "move left");
    settle(&mut f, c, &mut [&mut a, &mut b]);
    let b_info = f.windows().into_iter().find(|w| w.id == id_b).unwrap();
    assert!(
        b_info.position.0 < 100,
        "moved into the master slot: {b_info:?}"
    );
    action(&mut f, "focus up");
    action(&mut f, "focus down");
    action(&mut f, "move right");

    // resize.rs has the details; here: it runs, on the focused window.
    let width = |f: &Fixture, id| {
        let placed = f.server.state.core.layout.arrange();
        placed.iter().find(|p| p.id.0 == id).unwrap().frame.w
    };
    let before = width(&f, id_b);
    action(&mut f, "resize grow");
    assert!(width(&f, id_b) > before);
    action(&mut f, "resize shrink width 10 ppt");
    assert_eq!(width(&f, id_b), before);
    action(&mut f, "toggle-floating");
    let info = |f: &Fixture, id| f.windows().into_iter().find(|w| w.id == id).unwrap();
    assert_eq!(info(&f, id_b).layout, "floating");
    action(&mut f, "move down");
    action(&mut f, "toggle-floating");
    assert_eq!(info(&f, id_b).layout, "tiled");
    action(&mut f, "maximize");
    assert_eq!(info(&f, id_b).layout, "maximized");
    action(&mut f, "maximize");
    action(&mut f, "fullscreen");
    assert_eq!(info(&f, id_b).layout, "fullscreen");
    action(&mut f, "fullscreen");

    action(&mut f, "move-to-workspace 3");
    assert_eq!(info(&f, id_b).workspace.as_deref(), Some("3"));
    action(&mut f, "workspace 3");
    assert_eq!(active_workspace(&f), "3");
    action(&mut f, "workspace mail");
    assert_eq!(active_workspace(&f), "mail");
    action(&mut f, "workspace 3");
    action(&mut f, &format!("move-workspace-to-output {second}"));
    assert_eq!(info(&f, id_b).output.as_deref(), Some(second.as_str()));
    let words = vec!["move-workspace-to-output".to_owned(), "NOPE-1".to_owned()];
    assert!(matches!(
        ipc::run_action(&mut f.server.state, &words),
        Response::Error(e) if e.contains("NOPE-1")
    ));

    let dir = std::env::temp_dir().join(format!("lockstep-actions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("shot.png");
    action(&mut f, &format!("screenshot {}", png.display()));
    assert!(f.wait_until(Duration::from_secs(5), |_| png
        .metadata()
        .is_ok_and(|m| m.len() > 0)));

    // Reload: a broken file keeps the running config and says so; a fixed one applies.
    let config = dir.join("config.toml");
    f.server.state.core.config_path = Some(config.clone());
    std::fs::write(&config, "[layout]\ngaps = \"wide\"\n").unwrap();
    let words = vec!["reload-config".to_owned()];
    match ipc::run_action(&mut f.server.state, &words) {
        Response::Error(e) => assert!(e.contains("gaps"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.server.state.core.config.layout.gaps, 8);
    std::fs::write(&config, "[layout]\ngaps = 0\n").unwrap();
    action(&mut f, "reload-config");
    assert_eq!(f.server.state.core.layout.config().gaps, 0);

    action(&mut f, "spawn true");
    action(&mut f, "spawn-sh exit 0");
    action(&mut f, "none");
    action(&mut f, "close");
    f.roundtrip(c);
    assert_eq!(f.client(c).data.closed.len(), 1);
    // Not `terminal` / `launcher`: they would start real programs (real_clients.rs does).
    for bad in ["focus sideways", "workspase 2", ""] {
        let words: Vec<String> = bad.split_whitespace().map(str::to_owned).collect();
        assert!(matches!(
            ipc::run_action(&mut f.server.state, &words),
            Response::Error(_)
        ));
    }
    action(&mut f, "quit");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dialogs_float_centred_over_the_tiles() {
    let mut f = Fixture::tiling();
    let c = f.add_client();
    let mut a = open(&mut f, c, RED);
    settle(&mut f, c, &mut [&mut a]);
    // A transient: set_parent before the first commit.
    let top = f.client(c).toplevel();
    top.toplevel.set_parent(Some(&a.top.toplevel));
    top.surface.commit();
    f.roundtrip(c);
    let mut dialog = Painted {
        top,
        argb: BLUE,
        size: (0, 0),
        acked: None,
    };
    follow(&mut f, c, &mut dialog);
    settle(&mut f, c, &mut [&mut a, &mut dialog]);
    assert_eq!(dialog.size, (200, 100), "a dialog chooses its own size");
    let windows = f.windows();
    let d = windows
        .iter()
        .find(|w| w.layout == "floating")
        .expect("the dialog floats");
    assert_eq!(d.position, (540, 310));
    let shot = f.screenshot(OUT);
    assert_eq!(rgb(&shot, 640, 360), BLUE & 0xff_ffff);
    assert_eq!(rgb(&shot, 100, 100), RED & 0xff_ffff);
}

/// A tiling fixture with one red window, floated with `toggle-floating`.
pub(crate) fn one_floating() -> (Fixture, ClientId, Painted) {
    let mut f = Fixture::tiling();
    let c = f.add_client();
    let mut a = open(&mut f, c, RED);
    settle(&mut f, c, &mut [&mut a]);
    action(&mut f, "toggle-floating");
    settle(&mut f, c, &mut [&mut a]);
    (f, c, a)
}

#[test]
fn super_drag_moves_a_floating_window_and_leaves_tiled_ones() {
    let (mut f, c, mut a) = one_floating();
    let before = f.windows()[0].clone();
    assert_eq!(before.layout, "floating");
    let start = (
        f64::from(before.position.0 + 10),
        f64::from(before.position.1 + 10),
    );
    let state = &mut f.server.state;
    state.pointer_motion_to(start.into(), 0);
    state.keyboard_key(KEY_LEFTMETA, true, 0);
    state.pointer_button(lockstep::input::BTN_LEFT, true, 1);
    state.pointer_motion_to((start.0 + 50.0, start.1 + 30.0).into(), 2);
    state.pointer_button(lockstep::input::BTN_LEFT, false, 3);
    state.keyboard_key(KEY_LEFTMETA, false, 4);
    settle(&mut f, c, &mut [&mut a]);
    let after = f.windows()[0].clone();
    assert_eq!(
        after.position,
        (before.position.0 + 50, before.position.1 + 30)
    );
    // It stays there when the layout is applied again.
    action(&mut f, "workspace 2");
    action(&mut f, "workspace 1");
    assert_eq!(f.windows()[0].position, after.position);

    // A tiled window does not move.
    action(&mut f, "toggle-floating");
    settle(&mut f, c, &mut [&mut a]);
    let tiled = f.windows()[0].clone();
    let state = &mut f.server.state;
    state.pointer_motion_to((640.0, 360.0).into(), 5);
    state.keyboard_key(KEY_LEFTMETA, true, 5);
    state.pointer_button(lockstep::input::BTN_LEFT, true, 6);
    state.pointer_motion_to((500.0, 300.0).into(), 7);
    state.pointer_button(lockstep::input::BTN_LEFT, false, 8);
    state.keyboard_key(KEY_LEFTMETA, false, 9);
    f.settle();
    assert_eq!(f.windows()[0].position, tiled.position);
}

#[test]
fn borders_show_which_window_has_focus() {
    let mut f = Fixture::tiling();
    let c = f.add_client();
    let mut a = open(&mut f, c, RED);
    let mut b = open(&mut f, c, GREEN);
    settle(&mut f, c, &mut [&mut a, &mut b]);
    // Defaults: gaps 8, border 2, focused #4c7899, unfocused #333333. The master tile is
    // x 8..636, so its border is at x 8 and 9 and its contents start at 10.
    let shot = f.screenshot(OUT);
    let background = rgb(&shot, 2, 2);
    assert_eq!(
        rgb(&shot, 8, 300),
        0x333333,
        "unfocused border of the master"
    );
    assert_eq!(rgb(&shot, 10, 300), RED & 0xff_ffff);
    assert_eq!(rgb(&shot, 5, 300), background, "the gap");
    let green = window_with_colour(&f.windows(), &mut f, GREEN);
    assert_eq!(
        rgb(&shot, green.position.0 - 1, green.position.1 + 50),
        0x4c7899,
        "focused border of {green:?}"
    );
    action(&mut f, "focus left");
    f.settle();
    let shot = f.screenshot(OUT);
    assert_eq!(rgb(&shot, 8, 300), 0x4c7899);
    assert_eq!(
        rgb(&shot, green.position.0 - 1, green.position.1 + 50),
        0x333333
    );
}

#[test]
fn the_config_file_reloads_when_an_editor_replaces_it() {
    let dir = std::env::temp_dir().join(format!("lockstep-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(&config, "[layout]\ngaps = 8\n").unwrap();
    let mut f = Fixture::tiling();
    f.server.state.core.config_path = Some(config.clone());
    lockstep::config_watch::watch(&mut f.server.state).expect("watch");
    // Save like vim or a GUI editor: write a new file, rename it over the old one.
    let save = |text: &str| {
        let tmp = dir.join(".config.toml.swp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &config).unwrap();
    };
    let gaps = |f: &Fixture| f.server.state.core.layout.config().gaps;
    save("[layout]\ngaps = 20\n");
    assert!(
        f.wait_until(Duration::from_secs(3), |f| gaps(f) == 20),
        "the new file was not loaded"
    );
    // A broken file keeps the running config.
    save("[layout]\ngaps = \"wide\"\n");
    f.run_for(lockstep::config_watch::SETTLE * 4);
    assert_eq!(gaps(&f), 20);
    assert_eq!(f.server.state.core.config.layout.gaps, 20);
    // Fixed, in place this time.
    std::fs::write(&config, "[layout]\ngaps = 0\n").unwrap();
    assert!(f.wait_until(Duration::from_secs(3), |f| gaps(f) == 0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_event_stream_reports_windows_focus_workspaces_and_config() {
    use lockstep::events::Event;
    use std::io::{BufRead, BufReader};
    let mut f = Fixture::tiling();
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    lockstep::events::listen(&mut f.server.state.core, theirs);
    ours.set_nonblocking(true).unwrap();
    let mut reader = BufReader::new(ours);
    let mut events: Vec<Event> = Vec::new();
    // Events reach the socket through a writer thread: read until `done` holds (or 5 s, for
    // a loaded machine), then a little longer for anything that follows.
    let mut read = |f: &mut Fixture, events: &mut Vec<Event>, done: &dyn Fn(&[Event]) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut settled = 0;
        let mut line = String::new();
        while settled < 3 && std::time::Instant::now() < deadline {
            f.run_for(Duration::from_millis(10));
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                events.push(serde_json::from_str(line.trim()).expect("a JSON event"));
                line.clear();
            }
            if done(events) {
                settled += 1;
            }
        }
    };
    let c = f.add_client();
    let mut a = open(&mut f, c, RED);
    settle(&mut f, c, &mut [&mut a]);
    let focused = |e: &[Event]| e.iter().any(|e| matches!(e, Event::WindowFocused { .. }));
    read(&mut f, &mut events, &focused);
    let id = f.windows()[0].id;
    assert!(
        events.iter().any(|e| matches!(e, Event::WindowOpened(w)
            if w.id == id && w.workspace.as_deref() == Some("1"))),
        "{events:?}"
    );
    assert!(
        events.contains(&Event::WindowFocused { id: Some(id) }),
        "{events:?}"
    );

    events.clear();
    action(&mut f, "move-to-workspace 4");
    action(&mut f, "workspace 4");
    read(&mut f, &mut events, &|e| {
        e.iter()
            .any(|e| matches!(e, Event::WorkspaceShown { workspace, .. } if workspace == "4"))
    });
    assert!(
        events.iter().any(|e| matches!(e, Event::WindowChanged(w)
            if w.id == id && w.workspace.as_deref() == Some("4"))),
        "{events:?}"
    );
    assert!(events.contains(&Event::WorkspaceShown {
        output: OUT.into(),
        workspace: "4".into()
    }));

    events.clear();
    let config = std::env::temp_dir().join(format!("lockstep-events-{}.toml", std::process::id()));
    std::fs::write(&config, "[layout]\ngaps = -1\n").unwrap();
    f.server.state.core.config_path = Some(config.clone());
    let _ = ipc::run_action(&mut f.server.state, &["reload-config".to_owned()]);
    std::fs::write(&config, "").unwrap();
    action(&mut f, "reload-config");
    a.top.toplevel.destroy();
    a.top.surface.destroy();
    read(&mut f, &mut events, &|e| {
        e.iter().any(|e| matches!(e, Event::WindowClosed { .. }))
    });
    let _ = std::fs::remove_file(&config);
    assert!(matches!(&events[0], Event::ConfigRejected { error } if error.contains("gaps")));
    assert!(
        matches!(&events[1], Event::ConfigReloaded { .. }),
        "{events:?}"
    );
    assert!(events.contains(&Event::WindowClosed { id }), "{events:?}");
    assert!(
        events.contains(&Event::WindowFocused { id: None }),
        "{events:?}"
    );
}

#[test]
fn an_unplugged_outputs_windows_move_over_and_go_back_when_it_returns() {
    let (mut f, second) = two_outputs();
    let c = f.add_client();
    let mut a = open(&mut f, c, RED);
    // To the second output's workspace 3.
    action(&mut f, &format!("move-workspace-to-output {second}"));
    action(&mut f, "move-to-workspace 3");
    settle(&mut f, c, &mut [&mut a]);
    let info = |f: &Fixture| f.windows()[0].clone();
    assert_eq!(
        (info(&f).output.as_deref(), info(&f).workspace.as_deref()),
        (Some(second.as_str()), Some("3"))
    );
    let output = f.server.state.core.output_by_name(&second).unwrap();
    f.server.state.core.remove_output(&output);
    settle(&mut f, c, &mut [&mut a]);
    assert_eq!(
        (info(&f).output.as_deref(), info(&f).workspace.as_deref()),
        (Some(OUT), Some("3"))
    );
    // It is reachable there: show workspace 3 on the remaining output.
    action(&mut f, "workspace 3");
    settle(&mut f, c, &mut [&mut a]);
    assert!(info(&f).visible);
    assert!(info(&f).position.0 < 1280);
    // The output comes back, and so does the window.
    f.server.state.core.add_output(&output, (1280, 0).into());
    settle(&mut f, c, &mut [&mut a]);
    assert_eq!(
        (info(&f).output.as_deref(), info(&f).workspace.as_deref()),
        (Some(second.as_str()), Some("3"))
    );
}

#[test]
fn a_client_that_inhibits_shortcuts_gets_the_bound_keys() {
    use wayland_protocols::wp::keyboard_shortcuts_inhibit::zv1::client::{
        zwp_keyboard_shortcuts_inhibit_manager_v1::ZwpKeyboardShortcutsInhibitManagerV1,
        zwp_keyboard_shortcuts_inhibitor_v1::ZwpKeyboardShortcutsInhibitorV1,
    };
    let mut f = Fixture::tiling();
    let c = f.add_client();
    {
        let cl = f.client(c);
        cl.seat.get_keyboard(&cl.qh, ());
    }
    let mut a = open(&mut f, c, RED);
    settle(&mut f, c, &mut [&mut a]);
    let cl = f.client(c);
    let (name, _) = *cl
        .data
        .globals
        .get("zwp_keyboard_shortcuts_inhibit_manager_v1")
        .expect("the inhibit manager");
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager = registry.bind::<ZwpKeyboardShortcutsInhibitManagerV1, _, _>(name, 1, &cl.qh, ());
    let inhibitor: ZwpKeyboardShortcutsInhibitorV1 =
        manager.inhibit_shortcuts(&a.top.surface, &cl.seat, &cl.qh, ());
    f.roundtrip(c);
    let key = |f: &mut Fixture, code: u32, pressed: bool| {
        f.server.state.keyboard_key(code, pressed, 0);
        f.roundtrip(c);
    };
    // Super+2 goes to the client; the workspace stays.
    key(&mut f, KEY_LEFTMETA, true);
    key(&mut f, KEY_2, true);
    key(&mut f, KEY_2, false);
    key(&mut f, KEY_LEFTMETA, false);
    assert_eq!(active_workspace(&f), "1");
    assert!(f.client(c).data.keys.contains(&(KEY_2, true)));
    // Without the inhibitor the binding runs again.
    inhibitor.destroy();
    f.roundtrip(c);
    key(&mut f, KEY_LEFTMETA, true);
    key(&mut f, KEY_2, true);
    key(&mut f, KEY_2, false);
    key(&mut f, KEY_LEFTMETA, false);
    assert_eq!(active_workspace(&f), "2");
}

/// Asks, through xdg-activation (a fresh token of client `c`), that `surface` be activated.
fn activate(
    f: &mut Fixture,
    c: ClientId,
    surface: &wayland_client::protocol::wl_surface::WlSurface,
) {
    use wayland_protocols::xdg::activation::v1::client::xdg_activation_v1::XdgActivationV1;
    let cl = f.client(c);
    let (name, _) = *cl
        .data
        .globals
        .get("xdg_activation_v1")
        .expect("xdg_activation_v1");
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let activation = registry.bind::<XdgActivationV1, _, _>(name, 1, &cl.qh, ());
    let token = activation.get_activation_token(&cl.qh, ());
    token.commit();
    f.roundtrip(c);
    let token = f.client(c).data.activation_token.clone().expect("a token");
    activation.activate(token, surface);
    f.roundtrip(c);
    f.settle();
}

#[test]
fn activating_a_window_on_a_hidden_workspace_shows_it() {
    let (mut f, c, mut a, mut b) = red_and_green();
    action(&mut f, "focus left");
    action(&mut f, "move-to-workspace 2");
    settle(&mut f, c, &mut [&mut a, &mut b]);
    assert_eq!(active_workspace(&f), "1");
    activate(&mut f, c, &a.top.surface);
    assert_eq!(active_workspace(&f), "2");
    let red = f
        .windows()
        .into_iter()
        .find(|w| w.workspace.as_deref() == Some("2"))
        .unwrap();
    assert!(red.focused && red.visible, "{red:?}");
}

#[test]
fn the_output_under_the_pointer_gets_new_windows() {
    let (mut f, second) = two_outputs();
    let c = f.add_client();
    let mut a = open(&mut f, c, RED);
    settle(&mut f, c, &mut [&mut a]);
    assert_eq!(f.windows()[0].output.as_deref(), Some(OUT));
    f.server.state.pointer_motion_to((1900.0, 300.0).into(), 0);
    f.settle();
    let mut b = open(&mut f, c, GREEN);
    settle(&mut f, c, &mut [&mut a, &mut b]);
    let windows = f.windows();
    assert!(
        windows
            .iter()
            .any(|w| w.output.as_deref() == Some(second.as_str()) && w.focused),
        "the new window opens, focused, on the output under the pointer: {windows:#?}"
    );
    // Back on the first output, workspace keys act there.
    f.server.state.pointer_motion_to((300.0, 300.0).into(), 1);
    action(&mut f, "workspace 5");
    assert_eq!(active_workspace(&f), "5");
}

#[test]
fn a_rejected_config_shows_a_banner_until_a_valid_one_is_loaded() {
    let mut f = Fixture::tiling();
    let config = std::env::temp_dir().join(format!("lockstep-banner-{}.toml", std::process::id()));
    std::fs::write(&config, "[layout]\ngaps = -1\n").unwrap();
    f.server.state.core.config_path = Some(config.clone());
    let banner_red = 0x7f1d1d;
    let before = f.screenshot(crate::OUT);
    assert_ne!(rgb(&before, 2, 2), banner_red);

    let _ = ipc::run_action(&mut f.server.state, &["reload-config".to_owned()]);
    f.settle();
    let shown = f.screenshot(crate::OUT);
    assert_eq!(rgb(&shown, 2, 2), banner_red, "the banner's corner");
    let width = DEFAULT_OUTPUT.size.0;
    assert_eq!(
        rgb(&shown, width - 3, 2),
        banner_red,
        "the banner spans the output"
    );
    let white = (0..40)
        .flat_map(|y| (0..400).map(move |x| (x, y)))
        .filter(|&(x, y)| rgb(&shown, x, y) == 0xffffff)
        .count();
    assert!(white > 500, "the banner has text ({white} white pixels)");
    let lines = f.server.state.core.notice.lines().to_vec();
    assert!(lines.iter().any(|l| l.contains("gaps")), "{lines:?}");

    std::fs::write(&config, "").unwrap();
    action(&mut f, "reload-config");
    f.settle();
    let gone = f.screenshot(crate::OUT);
    let _ = std::fs::remove_file(&config);
    assert_eq!(rgb(&gone, 2, 2), rgb(&before, 2, 2), "the banner went away");
}

#[test]
fn keyboard_settings_reload_and_a_layout_that_does_not_compile_is_rejected() {
    let mut f = Fixture::new();
    let config = std::env::temp_dir().join(format!("lockstep-kb-{}.toml", std::process::id()));
    f.server.state.core.config_path = Some(config.clone());
    let c = f.add_client();
    let cl = f.client(c);
    cl.seat.get_keyboard(&cl.qh, ());
    f.roundtrip(c);
    // The key right of T (<AD06>) is y on a US keyboard and z on a German one.
    let ad06 = |f: &mut Fixture| {
        let keymap = f.client(c).data.keymaps.last().cloned().unwrap_or_default();
        keymap
            .lines()
            .find(|l| l.trim_start().starts_with("key <AD06>"))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(ad06(&mut f).contains(" y,"), "{}", ad06(&mut f));

    std::fs::write(&config, "[keyboard]\nlayout = \"de\"\n").unwrap();
    action(&mut f, "reload-config");
    f.roundtrip(c);
    assert!(
        ad06(&mut f).contains(" z,"),
        "the client got the German keymap: {}",
        ad06(&mut f)
    );

    std::fs::write(&config, "[keyboard]\nlayout = \"no-such-layout\"\n").unwrap();
    let before = f.client(c).data.keymaps.len();
    let answer = ipc::run_action(&mut f.server.state, &["reload-config".to_owned()]);
    f.roundtrip(c);
    let _ = std::fs::remove_file(&config);
    assert!(matches!(answer, Response::Error(_)), "{answer:?}");
    assert_eq!(f.client(c).data.keymaps.len(), before, "no keymap was sent");
    let lines = f.server.state.core.notice.lines().to_vec();
    assert!(lines.iter().any(|l| l.contains("[keyboard]")), "{lines:?}");
}

#[test]
fn a_minimized_window_leaves_the_tiling_and_activation_brings_it_back() {
    let (mut f, c, mut a, mut b) = red_and_green();
    let red = window_with_colour(&f.windows(), &mut f, RED);
    let green = window_with_colour(&f.windows(), &mut f, GREEN);
    let info = |f: &Fixture, id| f.windows().into_iter().find(|w| w.id == id).unwrap();
    let count = samples_of;

    // The client minimizes itself: it is not drawn, red takes the whole output and focus.
    b.top.toplevel.set_minimized();
    f.roundtrip(c);
    settle(&mut f, c, &mut [&mut a, &mut b]);
    let g = info(&f, green.id);
    assert!(g.minimized && !g.visible && !g.focused, "{g:?}");
    assert!(info(&f, red.id).focused);
    assert_eq!(count(&mut f, GREEN), 0, "green is hidden");
    assert!(count(&mut f, RED) > 2000, "red fills the output");

    // xdg-activation brings it back, focused and tiled again.
    activate(&mut f, c, &b.top.surface);
    settle(&mut f, c, &mut [&mut a, &mut b]);
    let g = info(&f, green.id);
    assert!(!g.minimized && g.visible && g.focused, "{g:?}");
    assert_eq!(g.layout, "tiled");
    assert!(count(&mut f, GREEN) > 500, "green is back in its tile");

    // The actions: `minimize` the focused window, `unminimize` the latest, `focus-window ID`.
    action(&mut f, "minimize");
    action(&mut f, "minimize");
    assert!(info(&f, red.id).minimized && info(&f, green.id).minimized);
    assert!(f.windows().iter().all(|w| !w.focused && !w.visible));
    settle(&mut f, c, &mut [&mut a, &mut b]);
    assert_eq!(count(&mut f, RED) + count(&mut f, GREEN), 0);
    assert!(action(&mut f, "unminimize").contains(&red.id.to_string()));
    assert!(info(&f, red.id).focused && info(&f, green.id).minimized);
    action(&mut f, &format!("focus-window {}", green.id));
    let g = info(&f, green.id);
    assert!(!g.minimized && g.focused, "{g:?}");
    assert!(action(&mut f, "unminimize").contains("no minimized window"));
    let words = vec!["focus-window".to_owned(), "999".to_owned()];
    assert!(matches!(
        ipc::run_action(&mut f.server.state, &words),
        Response::Error(e) if e.contains("999")
    ));
}
