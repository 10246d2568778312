//! zwlr_layer_shell_v1 and ext_session_lock_v1: panels shrink the tiling area, layers stack
//! in sway's order, an exclusive launcher takes the keyboard and gives it back; a locked
//! session shows and feeds only its lock surfaces, stays locked when the locker dies, and
//! lets a new locker take over.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lockstep::{
    backend::headless::VirtualOutput,
    ipc::{self, OutputInfo, Request, Response},
};
use wayland_client::{protocol::wl_surface::WlSurface, Connection, Dispatch, Proxy, QueueHandle};
use wayland_protocols::ext::session_lock::v1::client::{
    ext_session_lock_manager_v1::ExtSessionLockManagerV1,
    ext_session_lock_surface_v1::{self, ExtSessionLockSurfaceV1},
    ext_session_lock_v1::{self, ExtSessionLockV1},
};
use wayland_protocols_wlr::layer_shell::v1::client::{
    zwlr_layer_shell_v1::{Layer, ZwlrLayerShellV1},
    zwlr_layer_surface_v1::{self, Anchor, KeyboardInteractivity, ZwlrLayerSurfaceV1},
};

use crate::{
    client::ClientData,
    desktop::{open, settle},
    fixture::{rgb, ClientId, Fixture, DEFAULT_OUTPUT},
};

const OUT: &str = "HEADLESS-1";
const BAR: u32 = 0xff10_80f0;
const WALL: u32 = 0xffe0_c000;
const WINDOW: u32 = 0xffd0_2020;
const LOCK: u32 = 0xff20_c040;
const KEY_A: u32 = 30;
const KEY_2: u32 = 3;
const KEY_LEFTMETA: u32 = 125;
const BTN_LEFT: u32 = 0x110;

wayland_client::delegate_noop!(ClientData: ignore ZwlrLayerShellV1);
wayland_client::delegate_noop!(ClientData: ignore ExtSessionLockManagerV1);

/// What a layer surface or lock object was told, in order.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Event>>>);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Event {
    Configure { serial: u32, w: u32, h: u32 },
    Closed,
    Locked,
    Finished,
}

impl Seen {
    fn last_configure(&self) -> Option<(u32, u32, u32)> {
        self.0.lock().unwrap().iter().rev().find_map(|e| match e {
            Event::Configure { serial, w, h } => Some((*serial, *w, *h)),
            _ => None,
        })
    }
    fn has(&self, event: Event) -> bool {
        self.0.lock().unwrap().contains(&event)
    }
}

impl Dispatch<ZwlrLayerSurfaceV1, Seen> for ClientData {
    fn event(
        _: &mut Self,
        _: &ZwlrLayerSurfaceV1,
        event: zwlr_layer_surface_v1::Event,
        seen: &Seen,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let event = match event {
            zwlr_layer_surface_v1::Event::Configure {
                serial,
                width,
                height,
            } => Event::Configure {
                serial,
                w: width,
                h: height,
            },
            zwlr_layer_surface_v1::Event::Closed => Event::Closed,
            _ => return,
        };
        seen.0.lock().unwrap().push(event);
    }
}

impl Dispatch<ExtSessionLockV1, Seen> for ClientData {
    fn event(
        _: &mut Self,
        _: &ExtSessionLockV1,
        event: ext_session_lock_v1::Event,
        seen: &Seen,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let event = match event {
            ext_session_lock_v1::Event::Locked => Event::Locked,
            ext_session_lock_v1::Event::Finished => Event::Finished,
            _ => return,
        };
        seen.0.lock().unwrap().push(event);
    }
}

impl Dispatch<ExtSessionLockSurfaceV1, Seen> for ClientData {
    fn event(
        _: &mut Self,
        _: &ExtSessionLockSurfaceV1,
        event: ext_session_lock_surface_v1::Event,
        seen: &Seen,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let ext_session_lock_surface_v1::Event::Configure {
            serial,
            width,
            height,
        } = event
        {
            seen.0.lock().unwrap().push(Event::Configure {
                serial,
                w: width,
                h: height,
            });
        }
    }
}

/// A layer surface as a client like waybar makes one.
struct LayerSpec {
    layer: Layer,
    anchor: Anchor,
    size: (u32, u32),
    exclusive_zone: i32,
    keyboard: KeyboardInteractivity,
    argb: u32,
}

struct MappedLayer {
    surface: WlSurface,
    layer_surface: ZwlrLayerSurfaceV1,
}

/// Creates a layer surface, answers its configure with a buffer of the configured size and
/// waits until it is shown.
fn map_layer(f: &mut Fixture, c: ClientId, spec: LayerSpec, namespace: &str) -> MappedLayer {
    let (surface, layer_surface, seen) = bare_layer(f, c, spec.layer, namespace);
    layer_surface.set_anchor(spec.anchor);
    layer_surface.set_size(spec.size.0, spec.size.1);
    layer_surface.set_exclusive_zone(spec.exclusive_zone);
    layer_surface.set_keyboard_interactivity(spec.keyboard);
    surface.commit();
    f.roundtrip(c);
    let (serial, w, h) = seen.last_configure().expect("initial layer configure");
    assert!(w > 0 && h > 0, "configured to {w}x{h}");
    layer_surface.ack_configure(serial);
    let buffer = f.client(c).shm_buffer(w as i32, h as i32, spec.argb);
    surface.attach(Some(&buffer), 0, 0);
    surface.damage_buffer(0, 0, w as i32, h as i32);
    surface.commit();
    f.roundtrip(c);
    f.settle();
    MappedLayer {
        surface,
        layer_surface,
    }
}

fn bar() -> LayerSpec {
    LayerSpec {
        layer: Layer::Top,
        anchor: Anchor::Top | Anchor::Left | Anchor::Right,
        size: (0, 30),
        exclusive_zone: 30,
        keyboard: KeyboardInteractivity::None,
        argb: BAR,
    }
}

fn outputs(f: &Fixture) -> Vec<OutputInfo> {
    match ipc::answer(&f.server.state, Request::Outputs) {
        Response::Outputs(o) => o,
        other => panic!("{other:?}"),
    }
}

fn keyboard_focus(f: &Fixture) -> Option<smithay::reexports::wayland_server::backend::ObjectId> {
    use smithay::reexports::wayland_server::Resource;
    f.server
        .state
        .core
        .seat
        .get_keyboard()
        .and_then(|k| k.current_focus())
        .map(|s| s.id())
}

fn pointer_focus(f: &Fixture) -> Option<smithay::reexports::wayland_server::backend::ObjectId> {
    use smithay::reexports::wayland_server::Resource;
    f.server
        .state
        .core
        .seat
        .get_pointer()
        .and_then(|p| p.current_focus())
        .map(|s| s.id())
}

/// The server's object id of a client's surface (same protocol id, same client).
fn is_surface(
    id: &Option<smithay::reexports::wayland_server::backend::ObjectId>,
    surface: &WlSurface,
) -> bool {
    id.as_ref()
        .is_some_and(|id| id.protocol_id() == surface.id().protocol_id())
}

#[test]
fn a_panels_exclusive_zone_shrinks_the_tiling_area_and_layers_stack_in_order() {
    let mut f = Fixture::tiling();
    let c = f.add_client();
    let gaps = 8;
    let panel = map_layer(&mut f, c, bar(), "panel");
    assert_eq!(outputs(&f)[0].usable_area, (0, 30, 1280, 690));
    let layers = &outputs(&f)[0].layers;
    assert_eq!(layers.len(), 1, "{layers:?}");
    assert_eq!(
        (layers[0].namespace.as_str(), layers[0].layer.as_str()),
        ("panel", "top")
    );
    assert_eq!((layers[0].position, layers[0].size), ((0, 0), (1280, 30)));
    // A wallpaper on the background layer, ignoring exclusive zones (-1): the whole output.
    let wall = LayerSpec {
        layer: Layer::Background,
        anchor: Anchor::all(),
        size: (0, 0),
        exclusive_zone: -1,
        keyboard: KeyboardInteractivity::None,
        argb: WALL,
    };
    let _wall = map_layer(&mut f, c, wall, "wallpaper");
    let mut w = open(&mut f, c, WINDOW);
    settle(&mut f, c, &mut [&mut w]);
    let windows = f.windows();
    assert_eq!(windows.len(), 1);
    // The tile starts below the bar: its frame (with the 2 px border) at y = 30 + gaps.
    let (x, y) = windows[0].position;
    assert_eq!((x, y), (gaps + 2, 30 + gaps + 2), "{windows:?}");
    assert_eq!(windows[0].size.1, 720 - 30 - 2 * gaps - 4, "{windows:?}");
    let shot = f.screenshot(OUT);
    assert_eq!(rgb(&shot, 640, 10), BAR & 0xff_ffff, "the bar at the top");
    assert_eq!(rgb(&shot, 640, 300), WINDOW & 0xff_ffff, "the window");
    assert_eq!(
        rgb(&shot, 2, 300),
        WALL & 0xff_ffff,
        "the wallpaper in the gap"
    );
    // A fullscreen window covers the top layer (sway's order).
    let words = ["fullscreen".to_owned()];
    ipc::run_action(&mut f.server.state, &words);
    settle(&mut f, c, &mut [&mut w]);
    assert_eq!(rgb(&f.screenshot(OUT), 640, 10), WINDOW & 0xff_ffff);
    ipc::run_action(&mut f.server.state, &words);
    settle(&mut f, c, &mut [&mut w]);
    // The bar goes: the window takes the whole height again.
    panel.layer_surface.destroy();
    panel.surface.destroy();
    f.roundtrip(c);
    settle(&mut f, c, &mut [&mut w]);
    assert_eq!(outputs(&f)[0].usable_area, (0, 0, 1280, 720));
    let windows = f.windows();
    assert_eq!(windows[0].position, (gaps + 2, gaps + 2), "{windows:?}");
    assert_eq!(rgb(&f.screenshot(OUT), 640, 10), WINDOW & 0xff_ffff);
}

#[test]
fn a_sized_surface_between_opposite_edges_keeps_its_size_centred() {
    let mut f = Fixture::tiling();
    let c = f.add_client();
    // A dock: bottom, both sides, 400 px wide, reserving its height.
    let dock = LayerSpec {
        anchor: Anchor::Bottom | Anchor::Left | Anchor::Right,
        size: (400, 40),
        exclusive_zone: 40,
        ..bar()
    };
    let dock = map_layer(&mut f, c, dock, "dock");
    // A launcher anchored to all four edges with its own size.
    let launcher = LayerSpec {
        layer: Layer::Overlay,
        anchor: Anchor::all(),
        size: (300, 200),
        exclusive_zone: 0,
        argb: WALL,
        ..bar()
    };
    let _launcher = map_layer(&mut f, c, launcher, "launcher");
    let out = &outputs(&f)[0];
    let placed = |name: &str| {
        let l = out.layers.iter().find(|l| l.namespace == name).unwrap();
        (l.position, l.size)
    };
    assert_eq!(placed("dock"), ((440, 680), (400, 40)), "{out:?}");
    // Zone 0: centred in what the dock leaves, 1280×680.
    assert_eq!(placed("launcher"), ((490, 240), (300, 200)), "{out:?}");
    assert_eq!(out.usable_area, (0, 0, 1280, 680));
    let shot = f.screenshot(OUT);
    assert_eq!(rgb(&shot, 640, 700), BAR & 0xff_ffff, "the dock");
    assert_ne!(rgb(&shot, 100, 700), BAR & 0xff_ffff, "beside the dock");
    assert_eq!(rgb(&shot, 640, 360), WALL & 0xff_ffff, "the launcher");
    // The client's own anchors are kept: width 0 (which needs both side anchors) is valid
    // and stretches the dock.
    dock.layer_surface.set_size(0, 40);
    dock.surface.commit();
    f.roundtrip(c);
    f.settle();
    assert_eq!(f.client(c).protocol_error(), None);
    let out = &outputs(&f)[0];
    let stretched = out.layers.iter().find(|l| l.namespace == "dock").unwrap();
    assert_eq!(stretched.position.0, 0, "{out:?}");
}

#[test]
fn an_exclusive_launcher_takes_the_keyboard_and_gives_it_back() {
    let mut f = Fixture::tiling();
    let c = f.add_client();
    {
        let cl = f.client(c);
        cl.seat.get_keyboard(&cl.qh, ());
    }
    let mut w = open(&mut f, c, WINDOW);
    settle(&mut f, c, &mut [&mut w]);
    assert!(is_surface(&keyboard_focus(&f), &w.top.surface));
    let launcher = LayerSpec {
        layer: Layer::Overlay,
        anchor: Anchor::empty(),
        size: (400, 300),
        exclusive_zone: 0,
        keyboard: KeyboardInteractivity::Exclusive,
        argb: BAR,
    };
    let l = f.add_client();
    {
        let cl = f.client(l);
        cl.seat.get_keyboard(&cl.qh, ());
    }
    let launcher = map_layer(&mut f, l, launcher, "launcher");
    assert!(
        is_surface(&keyboard_focus(&f), &launcher.surface),
        "the launcher has the keyboard"
    );
    // Centred, above the window.
    let shot = f.screenshot(OUT);
    assert_eq!(rgb(&shot, 640, 360), BAR & 0xff_ffff);
    assert_eq!(rgb(&shot, 300, 360), WINDOW & 0xff_ffff);
    f.server.state.keyboard_key(KEY_A, true, 0);
    f.server.state.keyboard_key(KEY_A, false, 0);
    f.roundtrip(l);
    f.roundtrip(c);
    assert_eq!(f.client(l).data.keys, vec![(KEY_A, true), (KEY_A, false)]);
    assert!(f.client(c).data.keys.is_empty(), "the window got no key");
    // A click on the window does not take the keyboard from an exclusive launcher.
    f.server.state.pointer_motion_to((100.0, 100.0).into(), 0);
    f.server.state.pointer_button(BTN_LEFT, true, 0);
    f.server.state.pointer_button(BTN_LEFT, false, 0);
    f.roundtrip(c);
    assert!(is_surface(&keyboard_focus(&f), &launcher.surface));
    // It goes: the window has the keyboard again.
    launcher.layer_surface.destroy();
    launcher.surface.destroy();
    f.roundtrip(l);
    f.settle();
    assert!(
        is_surface(&keyboard_focus(&f), &w.top.surface),
        "focus went back to the window"
    );
    f.server.state.keyboard_key(KEY_A, true, 0);
    f.roundtrip(c);
    assert_eq!(f.client(c).data.keys, vec![(KEY_A, true)]);
}

#[test]
fn layer_surfaces_of_an_unplugged_output_are_closed() {
    let mut f = Fixture::with_outputs(&[DEFAULT_OUTPUT, DEFAULT_OUTPUT]);
    let c = f.add_client();
    // On the focused output (HEADLESS-1), then that output goes.
    let (surface, layer_surface, seen) = bare_layer(&mut f, c, Layer::Top, "panel");
    layer_surface.set_anchor(Anchor::Top | Anchor::Left | Anchor::Right);
    layer_surface.set_size(0, 20);
    surface.commit();
    f.roundtrip(c);
    assert!(seen.last_configure().is_some());
    let output = f.server.state.core.output_by_name(OUT).unwrap();
    f.server.state.core.remove_output(&output);
    f.roundtrip(c);
    assert!(seen.has(Event::Closed), "the layer surface got closed");
}

/// A session-lock client: the lock object and what it was told.
struct Locker {
    lock: ExtSessionLockV1,
    seen: Seen,
}

fn lock(f: &mut Fixture, c: ClientId) -> Locker {
    let (id, _) = f.client(c).data.globals["ext_session_lock_manager_v1"];
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager: ExtSessionLockManagerV1 = registry.bind(id, 1, &cl.qh, ());
    let seen = Seen::default();
    let lock = manager.lock(&cl.qh, seen.clone());
    f.roundtrip(c);
    Locker { lock, seen }
}

/// Makes the lock surface of the client's first output and draws `argb` at its size.
fn lock_surface(f: &mut Fixture, c: ClientId, locker: &Locker, argb: u32) -> WlSurface {
    let cl = f.client(c);
    let output = cl.output.clone().expect("an output");
    let surface = cl.compositor.create_surface(&cl.qh, ());
    let seen = Seen::default();
    let _lock_surface = locker
        .lock
        .get_lock_surface(&surface, &output, &cl.qh, seen.clone());
    f.roundtrip(c);
    let (serial, w, h) = seen.last_configure().expect("lock surface configure");
    assert_eq!((w, h), (1280, 720), "configured to the output's size");
    _lock_surface.ack_configure(serial);
    let buffer = f.client(c).shm_buffer(w as i32, h as i32, argb);
    surface.attach(Some(&buffer), 0, 0);
    surface.damage_buffer(0, 0, w as i32, h as i32);
    surface.commit();
    f.roundtrip(c);
    f.settle();
    surface
}

fn lock_state(f: &Fixture) -> String {
    outputs(f)[0].session_lock.clone()
}

/// Every pixel of the frame is `rgb` (0xRRGGBB), sampled on a grid.
fn all_pixels(f: &mut Fixture, output: &str, rgb_expected: u32) -> bool {
    let shot = f.screenshot(output);
    (0..shot.width() as i32).step_by(37).all(|x| {
        (0..shot.height() as i32)
            .step_by(23)
            .all(|y| rgb(&shot, x, y) == rgb_expected)
    })
}

#[test]
fn a_locked_session_shows_and_feeds_only_the_lock_surface() {
    let mut f = Fixture::tiling();
    let c = f.add_client();
    {
        let cl = f.client(c);
        cl.seat.get_keyboard(&cl.qh, ());
    }
    let _panel = map_layer(&mut f, c, bar(), "panel");
    let mut w = open(&mut f, c, WINDOW);
    settle(&mut f, c, &mut [&mut w]);
    let l = f.add_client();
    {
        let cl = f.client(l);
        cl.seat.get_keyboard(&cl.qh, ());
    }
    let locker = lock(&mut f, l);
    // Before the locker draws: the lock colour everywhere, and `locked` once it was shown.
    f.settle();
    f.roundtrip(l);
    assert!(locker.seen.has(Event::Locked), "locked was sent");
    assert_eq!(lock_state(&f), "locked");
    assert!(
        all_pixels(&mut f, OUT, 0x000000),
        "black before the lock surface"
    );
    let surface = lock_surface(&mut f, l, &locker, LOCK);
    assert!(
        all_pixels(&mut f, OUT, LOCK & 0xff_ffff),
        "only the lock is drawn"
    );
    // Keys go to the lock surface only, and bindings do nothing (Super+2 would switch).
    assert!(is_surface(&keyboard_focus(&f), &surface));
    for (key, pressed) in [
        (KEY_A, true),
        (KEY_A, false),
        (KEY_LEFTMETA, true),
        (KEY_2, true),
        (KEY_2, false),
        (KEY_LEFTMETA, false),
    ] {
        f.server.state.keyboard_key(key, pressed, 0);
    }
    f.roundtrip(l);
    f.roundtrip(c);
    assert!(f.client(c).data.keys.is_empty(), "the window got no key");
    let lock_keys = f.client(l).data.keys.clone();
    assert!(lock_keys.contains(&(KEY_A, true)), "{lock_keys:?}");
    assert!(
        lock_keys.contains(&(KEY_2, true)),
        "the binding did not take it: {lock_keys:?}"
    );
    assert_eq!(
        outputs(&f)[0].workspace.as_deref(),
        Some("1"),
        "no workspace switch"
    );
    // The pointer is over the lock surface wherever it goes (the window is under (300,300)).
    f.server.state.pointer_motion_to((300.0, 300.0).into(), 0);
    f.server.state.pointer_button(BTN_LEFT, true, 0);
    f.server.state.pointer_button(BTN_LEFT, false, 0);
    f.roundtrip(l);
    assert!(is_surface(&pointer_focus(&f), &surface));
    assert!(
        is_surface(&keyboard_focus(&f), &surface),
        "a click moves no focus"
    );
    // A second lock while locked is finished; unlocking through it is a protocol error.
    let other = f.add_client();
    let second = lock(&mut f, other);
    f.roundtrip(other);
    assert!(
        second.seen.has(Event::Finished),
        "the second lock got finished"
    );
    second.lock.unlock_and_destroy();
    let got = f.wait_until(Duration::from_secs(2), |f| {
        f.client(other).protocol_error().is_some()
    });
    assert!(got);
    // (unlock_and_destroy is a destructor, so the client library no longer names the
    // object or keeps the message; the code is the server's.)
    let (code, _, _) = f.client(other).protocol_error().unwrap();
    assert_eq!(code, ext_session_lock_v1::Error::InvalidUnlock as u32);
    assert_eq!(lock_state(&f), "locked", "still locked");
    // A new output while locked shows the lock colour.
    let second_output = f.add_output(VirtualOutput {
        size: (640, 480),
        ..DEFAULT_OUTPUT
    });
    f.settle();
    assert!(all_pixels(&mut f, &second_output, 0x000000));
    // The locker unlocks: the desktop is back, and the window has the keyboard again.
    locker.lock.unlock_and_destroy();
    f.roundtrip(l);
    settle(&mut f, c, &mut [&mut w]);
    assert_eq!(lock_state(&f), "unlocked");
    let shot = f.screenshot(OUT);
    assert_eq!(rgb(&shot, 640, 10), BAR & 0xff_ffff);
    assert_eq!(rgb(&shot, 640, 300), WINDOW & 0xff_ffff);
    assert!(is_surface(&keyboard_focus(&f), &w.top.surface));
}

#[test]
fn the_lock_survives_its_client_and_a_new_locker_takes_over() {
    let mut f = Fixture::tiling();
    let c = f.add_client();
    let mut w = open(&mut f, c, WINDOW);
    settle(&mut f, c, &mut [&mut w]);
    let l = f.add_client();
    let locker = lock(&mut f, l);
    lock_surface(&mut f, l, &locker, LOCK);
    f.roundtrip(l);
    assert!(locker.seen.has(Event::Locked));
    // The locker dies (crash, kill -9).
    let gone = f.clients.remove(l.0);
    drop((gone, locker));
    f.settle();
    assert_eq!(lock_state(&f), "abandoned");
    assert!(
        all_pixels(&mut f, OUT, 0x7f1010),
        "the abandoned colour, no window"
    );
    // Keys still reach nobody behind the lock.
    {
        let cl = f.client(c);
        cl.seat.get_keyboard(&cl.qh, ());
    }
    f.roundtrip(c);
    f.server.state.keyboard_key(KEY_A, true, 0);
    f.roundtrip(c);
    assert!(f.client(c).data.keys.is_empty());
    // A new locker takes over, draws, and unlocks.
    let n = f.add_client();
    let locker = lock(&mut f, n);
    f.settle();
    f.roundtrip(n);
    assert!(locker.seen.has(Event::Locked), "the new locker got locked");
    lock_surface(&mut f, n, &locker, 0xff30_40e0);
    assert!(all_pixels(&mut f, OUT, 0x3040e0));
    locker.lock.unlock_and_destroy();
    f.roundtrip(n);
    settle(&mut f, c, &mut [&mut w]);
    assert_eq!(lock_state(&f), "unlocked");
    assert_eq!(rgb(&f.screenshot(OUT), 640, 360), WINDOW & 0xff_ffff);
}

#[test]
fn the_lock_colours_come_from_the_config() {
    let mut config = lockstep_config::Config::default();
    config.lock.color = "#123456".into();
    config.lock.abandoned_color = "#654321".into();
    let mut f = Fixture::with_config(config, &[DEFAULT_OUTPUT]);
    let l = f.add_client();
    let locker = lock(&mut f, l);
    f.settle();
    assert!(all_pixels(&mut f, OUT, 0x123456));
    let gone = f.clients.remove(l.0);
    drop((gone, locker));
    f.settle();
    assert!(all_pixels(&mut f, OUT, 0x654321));
}

/// A layer surface of client `c` on `layer`, before any request or commit.
fn bare_layer(
    f: &mut Fixture,
    c: ClientId,
    layer: Layer,
    namespace: &str,
) -> (WlSurface, ZwlrLayerSurfaceV1, Seen) {
    let (id, _) = f.client(c).data.globals["zwlr_layer_shell_v1"];
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let shell: ZwlrLayerShellV1 = registry.bind(id, 4, &cl.qh, ());
    let surface = cl.compositor.create_surface(&cl.qh, ());
    let seen = Seen::default();
    let layer_surface = shell.get_layer_surface(
        &surface,
        None,
        layer,
        namespace.into(),
        &cl.qh,
        seen.clone(),
    );
    (surface, layer_surface, seen)
}

#[test]
fn absurd_sizes_margins_and_zones_neither_panic_nor_take_the_output() {
    let mut f = Fixture::tiling();
    let good = f.add_client();
    let mut w = open(&mut f, good, WINDOW);
    settle(&mut f, good, &mut [&mut w]);
    // A size beyond i32: invalid_size (smithay would panic on it).
    let c = f.add_client();
    let (surface, layer_surface, _) = bare_layer(&mut f, c, Layer::Top, "evil");
    layer_surface.set_anchor(Anchor::Top | Anchor::Left | Anchor::Right);
    layer_surface.set_size(0, u32::MAX);
    surface.commit();
    let got = f.wait_until(Duration::from_secs(2), |f| {
        f.client(c).protocol_error().is_some()
    });
    assert!(got, "no protocol error for set_size(0, u32::MAX)");
    let (code, interface, _) = f.client(c).protocol_error().unwrap();
    assert_eq!(interface, "zwlr_layer_surface_v1");
    assert_eq!(code, zwlr_layer_surface_v1::Error::InvalidSize as u32);
    // Margins and a zone at the ends of i32: clamped, the client stays, the output keeps room.
    let d = f.add_client();
    let (surface, layer_surface, seen) = bare_layer(&mut f, d, Layer::Top, "evil");
    layer_surface.set_anchor(Anchor::Top | Anchor::Left | Anchor::Right);
    layer_surface.set_size(0, 30);
    layer_surface.set_margin(i32::MIN, i32::MAX, i32::MIN, i32::MAX);
    layer_surface.set_exclusive_zone(i32::MAX);
    surface.commit();
    f.roundtrip(d);
    f.settle();
    assert!(seen.last_configure().is_some(), "configured");
    assert_eq!(f.client(d).protocol_error(), None);
    let (_, _, uw, uh) = outputs(&f)[0].usable_area;
    assert!(uw > 0 && uh > 0, "usable area {uw}x{uh}");
    // A zone on a corner-anchored surface counts as zero (the spec).
    let e = f.add_client();
    let corner = LayerSpec {
        layer: Layer::Top,
        anchor: Anchor::Top | Anchor::Left,
        size: (100, 100),
        exclusive_zone: 100,
        keyboard: KeyboardInteractivity::None,
        argb: BAR,
    };
    let _corner = map_layer(&mut f, e, corner, "corner");
    let layers = outputs(&f)[0].layers.clone();
    let corner = layers
        .iter()
        .find(|l| l.namespace == "corner")
        .expect("mapped");
    assert_eq!(corner.exclusive_zone, 0, "{layers:?}");
    // The other client's window is still shown and lockstep still answers.
    f.roundtrip(good);
    assert_eq!(f.windows().len(), 1);
}

/// Two requests smithay 0.7 panicked on while holding a surface's lock, which left a layer
/// surface that later frames walk poisoned (found by lockstep-fuzz, seed 777): a negative
/// `wl_surface.damage` (now ignored) and `wl_subsurface.place_above` relative to itself (now
/// `bad_surface`). lockstep keeps drawing, and the panel of another client stays.
#[test]
fn requests_that_made_smithay_panic_on_a_layer_surface_are_harmless() {
    let mut f = Fixture::tiling();
    let good = f.add_client();
    let _bar = map_layer(&mut f, good, bar(), "panel");
    let c = f.add_client();
    let wall = LayerSpec {
        layer: Layer::Background,
        anchor: Anchor::all(),
        size: (0, 0),
        exclusive_zone: -1,
        keyboard: KeyboardInteractivity::None,
        argb: WALL,
    };
    let wallpaper = map_layer(&mut f, c, wall, "wallpaper");
    wallpaper.surface.damage(7, 12, 245, i32::MIN);
    wallpaper.surface.commit();
    f.roundtrip(c);
    f.settle();
    assert_eq!(
        f.client(c).protocol_error(),
        None,
        "negative damage is ignored"
    );
    let shot = f.screenshot(OUT);
    assert_eq!(rgb(&shot, 640, 10), BAR & 0xff_ffff);
    assert_eq!(rgb(&shot, 640, 400), WALL & 0xff_ffff);
    // A subsurface of the wallpaper placed above itself.
    let (child, sub) = f.client(c).subsurface(&wallpaper.surface);
    sub.place_above(&child);
    let got = f.wait_until(Duration::from_secs(2), |f| {
        f.client(c).protocol_error().is_some()
    });
    assert!(got, "no protocol error for place_above(itself)");
    let (code, interface, _) = f.client(c).protocol_error().unwrap();
    assert_eq!(interface, "wl_subsurface");
    assert_eq!(
        code,
        wayland_client::protocol::wl_subsurface::Error::BadSurface as u32
    );
    // The wallpaper's client is gone; frames go on with the bar, without the wallpaper.
    f.settle();
    let shot = f.screenshot(OUT);
    assert_eq!(rgb(&shot, 640, 10), BAR & 0xff_ffff);
    assert_ne!(rgb(&shot, 640, 400), WALL & 0xff_ffff);
    let layers = outputs(&f)[0].layers.clone();
    assert_eq!(layers.len(), 1, "{layers:?}");
}
