//! ext_idle_notify_v1 and zwp_idle_inhibit_manager_v1: a notification fires after its timeout
//! without input, resumes on input, and does not fire while a shown surface inhibits idle.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols::{
    ext::idle_notify::v1::client::{
        ext_idle_notification_v1::{self, ExtIdleNotificationV1},
        ext_idle_notifier_v1::ExtIdleNotifierV1,
    },
    wp::idle_inhibit::zv1::client::{
        zwp_idle_inhibit_manager_v1::ZwpIdleInhibitManagerV1,
        zwp_idle_inhibitor_v1::ZwpIdleInhibitorV1,
    },
};

use crate::{
    client::ClientData,
    fixture::{ClientId, Fixture},
    GREEN,
};

wayland_client::delegate_noop!(ClientData: ignore ExtIdleNotifierV1);
wayland_client::delegate_noop!(ClientData: ignore ZwpIdleInhibitManagerV1);
wayland_client::delegate_noop!(ClientData: ignore ZwpIdleInhibitorV1);

/// The events one notification got, in order.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<&'static str>>>);

impl Events {
    fn count(&self, name: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| **e == name)
            .count()
    }
}

impl Dispatch<ExtIdleNotificationV1, Events> for ClientData {
    fn event(
        _: &mut Self,
        _: &ExtIdleNotificationV1,
        event: ext_idle_notification_v1::Event,
        events: &Events,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let name = match event {
            ext_idle_notification_v1::Event::Idled => "idled",
            ext_idle_notification_v1::Event::Resumed => "resumed",
            _ => return,
        };
        events.0.lock().unwrap().push(name);
    }
}

fn notification(f: &mut Fixture, c: ClientId, timeout_ms: u32) -> (ExtIdleNotificationV1, Events) {
    let (id, _) = f.client(c).data.globals["ext_idle_notifier_v1"];
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let notifier: ExtIdleNotifierV1 = registry.bind(id, 1, &cl.qh, ());
    let events = Events::default();
    let n = notifier.get_idle_notification(timeout_ms, &cl.seat, &cl.qh, events.clone());
    f.roundtrip(c);
    (n, events)
}

#[test]
fn idle_notification_fires_without_input_and_resumes_on_input() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let (_n, events) = notification(&mut f, c, 200);
    assert!(
        f.wait_until(Duration::from_secs(3), |_| events.count("idled") == 1),
        "no idled event after 200 ms without input"
    );
    f.server.state.keyboard_key(30, true, 1);
    f.server.state.keyboard_key(30, false, 2);
    assert!(
        f.wait_until(Duration::from_secs(2), |_| events.count("resumed") == 1),
        "no resumed event on input"
    );
    // Input keeps it from firing again while it keeps coming.
    for t in 0..8 {
        f.server
            .state
            .pointer_motion_to((100.0 + t as f64, 100.0).into(), 10 + t);
        f.run_for(Duration::from_millis(50));
    }
    assert_eq!(events.count("idled"), 1, "idled although input kept coming");
}

#[test]
fn a_shown_inhibitor_stops_idle_and_its_end_lets_it_fire() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let top = f.map_window(c, 100, 80, GREEN);
    let (id, _) = f.client(c).data.globals["zwp_idle_inhibit_manager_v1"];
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager: ZwpIdleInhibitManagerV1 = registry.bind(id, 1, &cl.qh, ());
    let inhibitor = manager.create_inhibitor(&top.surface, &cl.qh, ());
    f.roundtrip(c);
    let (_n, events) = notification(&mut f, c, 150);
    f.run_for(Duration::from_millis(700));
    assert_eq!(
        events.count("idled"),
        0,
        "idled while a shown window inhibits it"
    );
    inhibitor.destroy();
    f.roundtrip(c);
    assert!(
        f.wait_until(Duration::from_secs(3), |_| events.count("idled") == 1),
        "no idled event after the inhibitor went away"
    );
}
