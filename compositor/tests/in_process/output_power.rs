//! zwlr_output_power_manager_v1 and the `power-outputs` action: an output that is off draws
//! nothing (no frames, no frame callbacks), every power object hears about a change whoever
//! made it, and the protocol's error and `failed` paths.

use std::time::Duration;

use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols_wlr::output_power_management::v1::client::{
    zwlr_output_power_manager_v1::ZwlrOutputPowerManagerV1,
    zwlr_output_power_v1::{self, Mode, ZwlrOutputPowerV1},
};

use crate::{
    client::{ClientData, FrameCallback},
    fixture::{ClientId, Fixture},
    GREEN, OUT, RED,
};
use lockstep::action::{self, Action};

wayland_client::delegate_noop!(ClientData: ignore ZwlrOutputPowerManagerV1);

/// What one power object was told, in order: "on", "off", "failed".
#[derive(Clone, Default)]
struct Events(std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>);

impl Events {
    fn all(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().clone()
    }
    fn last(&self) -> Option<&'static str> {
        self.0.lock().unwrap().last().copied()
    }
}

impl Dispatch<ZwlrOutputPowerV1, Events> for ClientData {
    fn event(
        _: &mut Self,
        _: &ZwlrOutputPowerV1,
        event: zwlr_output_power_v1::Event,
        events: &Events,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let what = match event {
            zwlr_output_power_v1::Event::Mode {
                mode: wayland_client::WEnum::Value(Mode::On),
            } => "on",
            zwlr_output_power_v1::Event::Mode { .. } => "off",
            zwlr_output_power_v1::Event::Failed => "failed",
            _ => return,
        };
        events.0.lock().unwrap().push(what);
    }
}

fn power_object(f: &mut Fixture, c: ClientId) -> (ZwlrOutputPowerV1, Events) {
    let (id, version) = f.client(c).data.globals["zwlr_output_power_manager_v1"];
    assert_eq!(version, 1);
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager: ZwlrOutputPowerManagerV1 = registry.bind(id, 1, &cl.qh, ());
    let output = cl.output.clone().expect("an output");
    let events = Events::default();
    let power = manager.get_output_power(&output, &cl.qh, events.clone());
    f.roundtrip(c);
    (power, events)
}

fn powered(f: &Fixture) -> bool {
    f.server.state.core.outputs[OUT].powered
}

#[test]
fn off_stops_frames_and_every_client_hears_it() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let top = f.map_window(c, 100, 80, RED);
    let (power, events) = power_object(&mut f, c);
    assert_eq!(events.all(), ["on"], "the current mode at once");
    let other = f.add_client();
    let (_other_power, other_events) = power_object(&mut f, other);

    power.set_mode(Mode::Off);
    f.roundtrip(c);
    assert_eq!(events.last(), Some("off"));
    f.roundtrip(other);
    assert_eq!(other_events.last(), Some("off"), "another client hears it");
    assert!(!powered(&f));
    assert!(matches!(
        f.server.state.core.outputs[OUT].redraw,
        lockstep::frame_clock::RedrawState::Idle
    ));

    // A new buffer with a frame callback: nothing is drawn, no callback comes.
    let rendered = f.server.state.core.outputs[OUT].frames_rendered;
    let buffer = f.client(c).shm_buffer(100, 80, GREEN);
    let cl = f.client(c);
    top.surface.frame(&cl.qh, FrameCallback);
    top.surface.attach(Some(&buffer), 0, 0);
    top.surface.damage_buffer(0, 0, 100, 80);
    top.surface.commit();
    f.client(c).data.frame_done.clear();
    f.run_for(Duration::from_millis(150));
    assert_eq!(
        f.server.state.core.outputs[OUT].frames_rendered, rendered,
        "frames stopped"
    );
    assert!(
        f.client(c).data.frame_done.is_empty(),
        "no frame callback while off"
    );

    // On again: the waiting frame is drawn and its callback comes.
    power.set_mode(Mode::On);
    f.roundtrip(c);
    assert_eq!(events.last(), Some("on"));
    assert!(
        f.wait_until(Duration::from_secs(2), |f| !f
            .client(c)
            .data
            .frame_done
            .is_empty()),
        "no frame callback after power on"
    );
    assert!(f.server.state.core.outputs[OUT].frames_rendered > rendered);
    assert_eq!(crate::fixture::rgb(&f.screenshot(OUT), 640, 360), 0x20c040);
}

#[test]
fn the_power_outputs_action_is_the_same_switch() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let (_power, events) = power_object(&mut f, c);
    action::run(&mut f.server.state, &Action::PowerOutputs(false)).expect("power off");
    f.roundtrip(c);
    assert!(!powered(&f));
    assert_eq!(
        events.all(),
        ["on", "off"],
        "the protocol client hears the action"
    );
    let outputs = match lockstep::ipc::answer(&f.server.state, lockstep::ipc::Request::Outputs) {
        lockstep::ipc::Response::Outputs(o) => o,
        other => panic!("{other:?}"),
    };
    assert!(!outputs[0].powered, "msg outputs says it is off");
    action::run(&mut f.server.state, &Action::PowerOutputs(true)).expect("power on");
    f.roundtrip(c);
    assert!(powered(&f));
    assert_eq!(events.last(), Some("on"));
}

#[test]
fn an_unknown_mode_is_a_protocol_error() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let (power, _events) = power_object(&mut f, c);
    crate::fixture::send_raw(
        &power,
        zwlr_output_power_v1::REQ_SET_MODE_OPCODE,
        vec![wayland_client::backend::protocol::Argument::Uint(7)],
    );
    assert_eq!(
        f.expect_protocol_error(c),
        (
            zwlr_output_power_v1::Error::InvalidMode as u32,
            "zwlr_output_power_v1".to_string()
        )
    );
    assert!(powered(&f));
}

#[test]
fn an_output_that_goes_away_fails_its_power_objects() {
    let mut f = Fixture::with_outputs(&[
        crate::fixture::DEFAULT_OUTPUT,
        crate::fixture::DEFAULT_OUTPUT,
    ]);
    let c = f.add_client();
    let (power, events) = power_object(&mut f, c);
    let first = f.server.state.core.output_by_name(OUT).unwrap();
    f.server.state.core.remove_output(&first);
    f.dispatch();
    f.roundtrip(c);
    assert_eq!(events.last(), Some("failed"));
    // Inert from then on: no error, no change.
    power.set_mode(Mode::Off);
    f.roundtrip(c);
    assert_eq!(f.client(c).protocol_error(), None);
    assert!(f.server.state.core.outputs["HEADLESS-2"].powered);
}
