//! zwlr_output_manager_v1: heads and modes as clients see them, test/apply/cancel with
//! configuration serials, changes sent to every manager, and the protocol errors.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use wayland_client::{Connection, Dispatch, Proxy, QueueHandle};
use wayland_protocols_wlr::output_management::v1::client::{
    zwlr_output_configuration_head_v1::{self, ZwlrOutputConfigurationHeadV1},
    zwlr_output_configuration_v1::{self, ZwlrOutputConfigurationV1},
    zwlr_output_head_v1::{self, ZwlrOutputHeadV1},
    zwlr_output_manager_v1::{self, ZwlrOutputManagerV1},
    zwlr_output_mode_v1::{self, ZwlrOutputModeV1},
};

use crate::{
    client::ClientData,
    fixture::{ClientId, Fixture, DEFAULT_OUTPUT},
};
use lockstep::backend::headless::VirtualOutput;

/// What one manager learned.
#[derive(Default, Debug)]
pub struct Seen {
    serial: Option<u32>,
    dones: usize,
    /// Head name -> head object.
    heads: HashMap<String, ZwlrOutputHeadV1>,
    /// Head id -> (name, enabled, position, scale, current mode id).
    props: HashMap<u32, HeadProps>,
    /// Mode id -> (head id, size, refresh).
    modes: HashMap<u32, (u32, (i32, i32), i32, ZwlrOutputModeV1)>,
    finished_heads: usize,
}

#[derive(Default, Debug, Clone)]
struct HeadProps {
    name: String,
    enabled: bool,
    position: (i32, i32),
    scale: f64,
    current_mode: Option<u32>,
}

/// The result of one configuration.
#[derive(Clone, Default)]
struct Outcome(Arc<Mutex<Option<&'static str>>>);

impl Dispatch<ZwlrOutputManagerV1, ()> for ClientData {
    fn event(
        data: &mut Self,
        _: &ZwlrOutputManagerV1,
        event: zwlr_output_manager_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let s = &mut data.output_management;
        match event {
            zwlr_output_manager_v1::Event::Head { head } => {
                s.props
                    .insert(head.id().protocol_id(), HeadProps::default());
                s.heads
                    .insert(format!("#{}", head.id().protocol_id()), head);
            }
            zwlr_output_manager_v1::Event::Done { serial } => {
                s.serial = Some(serial);
                s.dones += 1;
                // Re-key heads by name now that names arrived.
                let heads: Vec<_> = s.heads.drain().map(|(_, h)| h).collect();
                for h in heads {
                    let name = s.props[&h.id().protocol_id()].name.clone();
                    s.heads.insert(name, h);
                }
            }
            _ => {}
        }
    }

    wayland_client::event_created_child!(ClientData, ZwlrOutputManagerV1, [
        zwlr_output_manager_v1::EVT_HEAD_OPCODE => (ZwlrOutputHeadV1, ()),
    ]);
}

impl Dispatch<ZwlrOutputHeadV1, ()> for ClientData {
    fn event(
        data: &mut Self,
        head: &ZwlrOutputHeadV1,
        event: zwlr_output_head_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let s = &mut data.output_management;
        let id = head.id().protocol_id();
        match event {
            zwlr_output_head_v1::Event::Mode { mode } => {
                s.modes
                    .insert(mode.id().protocol_id(), (id, (0, 0), 0, mode.clone()));
            }
            zwlr_output_head_v1::Event::Finished => s.finished_heads += 1,
            event => {
                let p = s.props.entry(id).or_default();
                match event {
                    zwlr_output_head_v1::Event::Name { name } => p.name = name,
                    zwlr_output_head_v1::Event::Enabled { enabled } => p.enabled = enabled != 0,
                    zwlr_output_head_v1::Event::Position { x, y } => p.position = (x, y),
                    zwlr_output_head_v1::Event::Scale { scale } => p.scale = scale,
                    zwlr_output_head_v1::Event::CurrentMode { mode } => {
                        p.current_mode = Some(mode.id().protocol_id())
                    }
                    _ => {}
                }
            }
        }
    }

    wayland_client::event_created_child!(ClientData, ZwlrOutputHeadV1, [
        zwlr_output_head_v1::EVT_MODE_OPCODE => (ZwlrOutputModeV1, ()),
    ]);
}

impl Dispatch<ZwlrOutputModeV1, ()> for ClientData {
    fn event(
        data: &mut Self,
        mode: &ZwlrOutputModeV1,
        event: zwlr_output_mode_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let s = &mut data.output_management;
        if let Some(entry) = s.modes.get_mut(&mode.id().protocol_id()) {
            match event {
                zwlr_output_mode_v1::Event::Size { width, height } => entry.1 = (width, height),
                zwlr_output_mode_v1::Event::Refresh { refresh } => entry.2 = refresh,
                _ => {}
            }
        }
    }
}

impl Dispatch<ZwlrOutputConfigurationV1, Outcome> for ClientData {
    fn event(
        _: &mut Self,
        _: &ZwlrOutputConfigurationV1,
        event: zwlr_output_configuration_v1::Event,
        outcome: &Outcome,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let what = match event {
            zwlr_output_configuration_v1::Event::Succeeded => "succeeded",
            zwlr_output_configuration_v1::Event::Failed => "failed",
            zwlr_output_configuration_v1::Event::Cancelled => "cancelled",
            _ => return,
        };
        *outcome.0.lock().unwrap() = Some(what);
    }
}

wayland_client::delegate_noop!(ClientData: ignore ZwlrOutputConfigurationHeadV1);

fn two_outputs() -> Fixture {
    Fixture::with_outputs(&[
        DEFAULT_OUTPUT,
        VirtualOutput {
            size: (800, 600),
            ..DEFAULT_OUTPUT
        },
    ])
}

/// Binds the manager for client `c` and waits for its first `done`.
fn bind(f: &mut Fixture, c: ClientId) -> ZwlrOutputManagerV1 {
    let (id, version) = f.client(c).data.globals["zwlr_output_manager_v1"];
    assert_eq!(version, 4, "zwlr_output_manager_v1 version");
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager: ZwlrOutputManagerV1 = registry.bind(id, 4, &cl.qh, ());
    f.roundtrip(c);
    f.roundtrip(c);
    assert!(seen(f, c).serial.is_some(), "no done after bind");
    manager
}

fn seen(f: &mut Fixture, c: ClientId) -> &Seen {
    &f.client(c).data.output_management
}

fn head(s: &Seen, name: &str) -> ZwlrOutputHeadV1 {
    s.heads[name].clone()
}

fn props(s: &Seen, name: &str) -> HeadProps {
    let id = s.heads[name].id().protocol_id();
    s.props[&id].clone()
}

/// The mode object of head `name` with `size`.
fn mode(s: &Seen, name: &str, size: (i32, i32)) -> ZwlrOutputModeV1 {
    let head = s.heads[name].id().protocol_id();
    s.modes
        .values()
        .find(|(h, sz, _, m)| *h == head && *sz == size && m.is_alive())
        .map(|(_, _, _, m)| m.clone())
        .unwrap_or_else(|| panic!("no {size:?} mode on {name}"))
}

fn serial(s: &Seen) -> u32 {
    s.serial.unwrap()
}

/// Sends `configure` on a new configuration, then test or apply; returns the outcome.
fn run_config(
    f: &mut Fixture,
    c: ClientId,
    manager: &ZwlrOutputManagerV1,
    serial: u32,
    apply: bool,
    configure: impl FnOnce(&ZwlrOutputConfigurationV1, &QueueHandle<ClientData>),
) -> Option<&'static str> {
    let outcome = Outcome::default();
    let qh = f.client(c).qh.clone();
    let config = manager.create_configuration(serial, &qh, outcome.clone());
    configure(&config, &qh);
    if apply {
        config.apply();
    } else {
        config.test();
    }
    f.roundtrip(c);
    let result = *outcome.0.lock().unwrap();
    config.destroy();
    result
}

fn output(f: &Fixture, name: &str) -> (f64, (i32, i32), (i32, i32)) {
    let core = &f.server.state.core;
    let o = core.output_by_name(name).expect("output");
    let g = core.space.output_geometry(&o).expect("mapped");
    let mode = o.current_mode().unwrap();
    (
        o.current_scale().fractional_scale(),
        (g.loc.x, g.loc.y),
        (mode.size.w, mode.size.h),
    )
}

#[test]
fn heads_and_modes_are_advertised() {
    let mut f = two_outputs();
    let c = f.add_client();
    let _m = bind(&mut f, c);
    let s = seen(&mut f, c);
    let one = props(s, "HEADLESS-1");
    let two = props(s, "HEADLESS-2");
    assert!(one.enabled && two.enabled);
    assert_eq!((one.position, two.position), ((0, 0), (1280, 0)));
    assert_eq!(one.scale, 1.0);
    let current = one.current_mode.expect("current_mode sent");
    assert_eq!(s.modes[&current].1, (1280, 720));
    assert_eq!(s.modes[&current].2, 60_000);
    assert!(
        s.modes
            .values()
            .filter(|m| m.0 == s.heads["HEADLESS-1"].id().protocol_id())
            .count()
            > 1,
        "several modes to choose from"
    );
}

#[test]
fn test_checks_without_changing_and_apply_changes_and_notifies_every_manager() {
    let mut f = two_outputs();
    let c = f.add_client();
    let manager = bind(&mut f, c);
    let other = f.add_client();
    let _other_manager = bind(&mut f, other);
    let other_dones = seen(&mut f, other).dones;
    let s0 = serial(seen(&mut f, c));
    let (h1, h2) = (
        head(seen(&mut f, c), "HEADLESS-1"),
        head(seen(&mut f, c), "HEADLESS-2"),
    );
    let configure = |config: &ZwlrOutputConfigurationV1, qh: &QueueHandle<ClientData>| {
        let ch = config.enable_head(&h1, qh, ());
        ch.set_scale(2.0);
        ch.set_position(100, 50);
        let ch2 = config.enable_head(&h2, qh, ());
        ch2.set_custom_mode(640, 480, 0);
    };
    assert_eq!(
        run_config(&mut f, c, &manager, s0, false, configure),
        Some("succeeded")
    );
    assert_eq!(
        output(&f, "HEADLESS-1"),
        (1.0, (0, 0), (1280, 720)),
        "test changed nothing"
    );
    assert_eq!(serial(seen(&mut f, c)), s0, "nothing changed: same serial");

    assert_eq!(
        run_config(&mut f, c, &manager, s0, true, configure),
        Some("succeeded")
    );
    assert_eq!(output(&f, "HEADLESS-1"), (2.0, (100, 50), (1280, 720)));
    assert_eq!(output(&f, "HEADLESS-2").2, (640, 480));
    let s1 = serial(seen(&mut f, c));
    assert_ne!(s1, s0, "a change gets a new serial");
    let p = props(seen(&mut f, c), "HEADLESS-1");
    assert_eq!((p.scale, p.position), (2.0, (100, 50)));
    // The other client learns it too, with the same serial.
    f.roundtrip(other);
    let o = seen(&mut f, other);
    assert!(o.dones > other_dones);
    assert_eq!(o.serial, Some(s1));
    assert_eq!(props(o, "HEADLESS-1").scale, 2.0);
    // The screen really has the new size.
    let shot = f.screenshot("HEADLESS-2");
    assert_eq!((shot.width(), shot.height()), (640, 480));
    // An old serial is cancelled and changes nothing.
    let stale = run_config(&mut f, c, &manager, s0, true, |config, qh| {
        config.enable_head(&h1, qh, ()).set_scale(1.0);
        config.enable_head(&h2, qh, ());
    });
    assert_eq!(stale, Some("cancelled"));
    assert_eq!(output(&f, "HEADLESS-1").0, 2.0);
}

#[test]
fn an_advertised_mode_and_turning_a_head_off_and_on() {
    let mut f = two_outputs();
    let c = f.add_client();
    let manager = bind(&mut f, c);
    let s = seen(&mut f, c);
    let (h1, h2) = (head(s, "HEADLESS-1"), head(s, "HEADLESS-2"));
    let m = mode(s, "HEADLESS-1", (1024, 768));
    let serial0 = serial(s);
    let r = run_config(&mut f, c, &manager, serial0, true, |config, qh| {
        config.enable_head(&h1, qh, ()).set_mode(&m);
        config.disable_head(&h2);
    });
    assert_eq!(r, Some("succeeded"));
    assert_eq!(output(&f, "HEADLESS-1").2, (1024, 768));
    assert!(
        f.server.state.core.output_by_name("HEADLESS-2").is_none(),
        "off: out of the space"
    );
    assert!(!props(seen(&mut f, c), "HEADLESS-2").enabled);
    let serial1 = serial(seen(&mut f, c));
    let r = run_config(&mut f, c, &manager, serial1, true, |config, qh| {
        config.enable_head(&h1, qh, ());
        config.enable_head(&h2, qh, ()).set_position(1024, 0);
    });
    assert_eq!(r, Some("succeeded"));
    assert_eq!(output(&f, "HEADLESS-2"), (1.0, (1024, 0), (800, 600)));
    assert!(props(seen(&mut f, c), "HEADLESS-2").enabled);
}

#[test]
fn refused_configurations_fail_and_change_nothing() {
    let mut f = two_outputs();
    let c = f.add_client();
    let manager = bind(&mut f, c);
    let (h1, h2) = (
        head(seen(&mut f, c), "HEADLESS-1"),
        head(seen(&mut f, c), "HEADLESS-2"),
    );
    let s = serial(seen(&mut f, c));
    // A scale past 4, in test and in apply.
    for apply in [false, true] {
        let r = run_config(&mut f, c, &manager, s, apply, |config, qh| {
            config.enable_head(&h1, qh, ()).set_scale(5.0);
            config.enable_head(&h2, qh, ());
        });
        assert_eq!(r, Some("failed"));
    }
    // Custom modes past the headless limits: a side over 16384, more than 4096x4096 pixels.
    for (w, h) in [(20000, 100), (5000, 5000)] {
        let r = run_config(&mut f, c, &manager, s, true, |config, qh| {
            config.enable_head(&h1, qh, ()).set_custom_mode(w, h, 0);
            config.enable_head(&h2, qh, ());
        });
        assert_eq!(r, Some("failed"), "{w}x{h}");
    }
    // Adaptive sync (lockstep has none).
    let r = run_config(&mut f, c, &manager, s, false, |config, qh| {
        config
            .enable_head(&h1, qh, ())
            .set_adaptive_sync(zwlr_output_head_v1::AdaptiveSyncState::Enabled);
        config.enable_head(&h2, qh, ());
    });
    assert_eq!(r, Some("failed"));
    assert_eq!(output(&f, "HEADLESS-1"), (1.0, (0, 0), (1280, 720)));
    assert_eq!(serial(seen(&mut f, c)), s);
    assert_eq!(f.client(c).protocol_error(), None);
}

/// Runs `configure` on a fresh client and returns the protocol error it got.
fn protocol_error(
    configure: impl FnOnce(&ZwlrOutputConfigurationV1, &QueueHandle<ClientData>, &Seen),
) -> (u32, String) {
    let mut f = two_outputs();
    let c = f.add_client();
    let manager = bind(&mut f, c);
    let qh = f.client(c).qh.clone();
    let s = seen(&mut f, c);
    let config = manager.create_configuration(serial(s), &qh, Outcome::default());
    configure(&config, &qh, s);
    let got = f.wait_until(std::time::Duration::from_secs(2), |f| {
        f.client(c).protocol_error().is_some()
    });
    assert!(got, "no protocol error");
    let (code, interface, _message) = f.client(c).protocol_error().unwrap();
    // The server goes on.
    let other = f.add_client();
    f.roundtrip(other);
    (code, interface)
}

#[test]
fn protocol_errors_on_the_configuration() {
    use zwlr_output_configuration_v1::Error;
    let (code, iface) = protocol_error(|config, qh, seen| {
        let h1 = head(seen, "HEADLESS-1");
        config.enable_head(&h1, qh, ());
        config.disable_head(&h1);
    });
    assert_eq!(
        (code, iface.as_str()),
        (
            Error::AlreadyConfiguredHead as u32,
            "zwlr_output_configuration_v1"
        )
    );
    let (code, _) = protocol_error(|config, qh, seen| {
        config.enable_head(&head(seen, "HEADLESS-1"), qh, ());
        config.apply();
    });
    assert_eq!(code, Error::UnconfiguredHead as u32);
    let (code, _) = protocol_error(|config, qh, seen| {
        config.enable_head(&head(seen, "HEADLESS-1"), qh, ());
        config.enable_head(&head(seen, "HEADLESS-2"), qh, ());
        config.test();
        config.apply();
    });
    assert_eq!(code, Error::AlreadyUsed as u32);
}

/// Requests on a configuration head that must end in a protocol error.
type HeadCase = Box<dyn FnOnce(&ZwlrOutputConfigurationHeadV1, &Seen)>;

#[test]
fn protocol_errors_on_the_configuration_head() {
    use zwlr_output_configuration_head_v1::Error;
    let cases: Vec<(Error, HeadCase)> = vec![
        (
            Error::AlreadySet,
            Box::new(|ch, _| {
                ch.set_scale(1.0);
                ch.set_scale(2.0);
            }),
        ),
        (
            Error::AlreadySet,
            Box::new(|ch, seen| {
                ch.set_mode(&mode(seen, "HEADLESS-1", (1024, 768)));
                ch.set_custom_mode(100, 100, 0);
            }),
        ),
        (
            Error::InvalidMode,
            Box::new(|ch, seen| ch.set_mode(&mode(seen, "HEADLESS-2", (800, 600)))),
        ),
        (
            Error::InvalidCustomMode,
            Box::new(|ch, _| ch.set_custom_mode(0, 100, 0)),
        ),
        (Error::InvalidScale, Box::new(|ch, _| ch.set_scale(0.0))),
        (
            Error::InvalidTransform,
            Box::new(|ch, _| {
                // 8 is past wl_output.transform; sent raw.
                crate::fixture::send_raw(
                    ch,
                    zwlr_output_configuration_head_v1::REQ_SET_TRANSFORM_OPCODE,
                    vec![wayland_client::backend::protocol::Argument::Int(8)],
                );
            }),
        ),
    ];
    for (error, case) in cases {
        let (code, iface) = protocol_error(|config, qh, seen| {
            let ch = config.enable_head(&head(seen, "HEADLESS-1"), qh, ());
            case(&ch, seen);
        });
        assert_eq!(
            (code, iface.as_str()),
            (error as u32, "zwlr_output_configuration_head_v1"),
            "{error:?}"
        );
    }
}

#[test]
fn a_stale_serial_after_a_hotplug_is_cancelled() {
    let mut f = two_outputs();
    let c = f.add_client();
    let manager = bind(&mut f, c);
    let s = serial(seen(&mut f, c));
    let (h1, h2) = (
        head(seen(&mut f, c), "HEADLESS-1"),
        head(seen(&mut f, c), "HEADLESS-2"),
    );
    f.add_output(DEFAULT_OUTPUT);
    f.dispatch();
    f.roundtrip(c);
    assert_ne!(serial(seen(&mut f, c)), s, "a new head changes the serial");
    assert!(seen(&mut f, c).heads.contains_key("HEADLESS-3"));
    let r = run_config(&mut f, c, &manager, s, true, |config, qh| {
        config.enable_head(&h1, qh, ()).set_scale(2.0);
        config.enable_head(&h2, qh, ());
    });
    assert_eq!(r, Some("cancelled"));
    assert_eq!(output(&f, "HEADLESS-1").0, 1.0);
}

/// Every head may go off, as sway allows: the windows wait (parked) and come back with the
/// first output turned on again; the client keeps running without an output.
#[test]
fn every_head_off_parks_the_windows_until_one_comes_back() {
    let mut f = two_outputs();
    let c = f.add_client();
    let manager = bind(&mut f, c);
    f.map_window(c, 200, 100, 0xff20_40c0);
    let s = seen(&mut f, c);
    let (h1, h2) = (head(s, "HEADLESS-1"), head(s, "HEADLESS-2"));
    let serial0 = serial(s);
    // `test` first: it succeeds and changes nothing.
    for apply in [false, true] {
        let r = run_config(&mut f, c, &manager, serial0, apply, |config, _| {
            config.disable_head(&h1);
            config.disable_head(&h2);
        });
        assert_eq!(r, Some("succeeded"), "apply: {apply}");
        assert_eq!(
            f.server.state.core.space.outputs().count(),
            if apply { 0 } else { 2 }
        );
    }
    f.settle();
    assert!(f.server.state.core.layout.outputs().is_empty());
    assert_eq!(f.server.state.core.windows.len(), 1, "the window is kept");
    let s = seen(&mut f, c);
    assert!(!props(s, "HEADLESS-1").enabled && !props(s, "HEADLESS-2").enabled);
    let serial1 = serial(s);
    let r = run_config(&mut f, c, &manager, serial1, true, |config, qh| {
        config.enable_head(&h2, qh, ()).set_position(0, 0);
        config.disable_head(&h1);
    });
    assert_eq!(r, Some("succeeded"));
    f.settle();
    let placed = f.server.state.core.layout.arrange();
    assert!(
        placed.len() == 1 && placed[0].visible && placed[0].output == "HEADLESS-2",
        "the parked window is on the output that came back: {placed:?}"
    );
    let window = f.server.state.core.windows.values().next().unwrap().clone();
    let at = f.server.state.core.space.element_location(&window).unwrap();
    let frame = f.screenshot("HEADLESS-2");
    assert_eq!(
        crate::fixture::rgb(&frame, at.x + 100, at.y + 50),
        0x2040c0,
        "and shown at {at:?}"
    );
    assert_eq!(f.client(c).protocol_error(), None);
}
