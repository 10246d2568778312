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

fn notifier(f: &mut Fixture, c: ClientId) -> ExtIdleNotifierV1 {
    let (id, version) = f.client(c).data.globals["ext_idle_notifier_v1"];
    assert_eq!(version, 2);
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    registry.bind(id, 2, &cl.qh, ())
}

fn notification(f: &mut Fixture, c: ClientId, timeout_ms: u32) -> (ExtIdleNotificationV1, Events) {
    let notifier = notifier(f, c);
    let cl = f.client(c);
    let events = Events::default();
    let n = notifier.get_idle_notification(timeout_ms, &cl.seat, &cl.qh, events.clone());
    f.roundtrip(c);
    (n, events)
}

fn notifications(f: &Fixture) -> (usize, usize) {
    let n = &f.server.state.core.protocols.idle.notifier;
    (n.notification_count(), n.queued_deadlines())
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

#[test]
fn inhibited_notifications_wait_for_the_inhibitor_and_input_only_ones_do_not() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let top = f.map_window(c, 100, 80, GREEN);
    let (id, _) = f.client(c).data.globals["zwp_idle_inhibit_manager_v1"];
    let notifier = notifier(&mut f, c);
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager: ZwpIdleInhibitManagerV1 = registry.bind(id, 1, &cl.qh, ());
    let _inhibitor = manager.create_inhibitor(&top.surface, &cl.qh, ());
    // Three that respect the inhibitor, one (version 2) that looks at input only.
    let (seat, qh) = (cl.seat.clone(), cl.qh.clone());
    let held: Vec<Events> = (0..3).map(|_| Events::default()).collect();
    let _held: Vec<_> = [100, 200, 300]
        .iter()
        .zip(&held)
        .map(|(ms, ev)| notifier.get_idle_notification(*ms, &seat, &qh, ev.clone()))
        .collect();
    let input_only = Events::default();
    let _n = notifier.get_input_idle_notification(150, &seat, &qh, input_only.clone());
    f.roundtrip(c);
    assert!(
        f.wait_until(Duration::from_secs(3), |_| input_only.count("idled") == 1),
        "an input-only notification fires although an inhibitor is shown"
    );
    f.run_for(Duration::from_millis(400));
    assert!(
        held.iter().all(|e| e.count("idled") == 0),
        "inhibited ones stay"
    );
    // The inhibitor goes: each fires once.
    _inhibitor.destroy();
    f.roundtrip(c);
    let all_fired = f.wait_until(Duration::from_secs(3), |_| {
        held.iter().all(|e| e.count("idled") == 1)
    });
    assert!(all_fired, "notifications fire once the inhibitor is gone");
    // Input resumes all four.
    f.server.state.keyboard_key(30, true, 1);
    f.server.state.keyboard_key(30, false, 2);
    let resumed = f.wait_until(Duration::from_secs(2), |_| {
        held.iter()
            .chain([&input_only])
            .all(|e| e.count("resumed") == 1)
    });
    assert!(resumed, "input resumes every idle notification");
}

#[test]
fn destroyed_notifications_leave_no_timer_or_entry_behind() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let notifier = notifier(&mut f, c);
    let (seat, qh) = (f.client(c).seat.clone(), f.client(c).qh.clone());
    let (keep, kept) = notification(&mut f, c, 100);
    for round in 0..5 {
        // Timeouts of up to 49 days: smithay 0.7 kept each one's timer until it fired.
        let batch: Vec<_> = (0..500u32)
            .map(|i| notifier.get_idle_notification(u32::MAX - i, &seat, &qh, Events::default()))
            .collect();
        f.roundtrip(c);
        assert_eq!(notifications(&f).0, 501, "round {round}");
        for n in batch {
            n.destroy();
        }
        f.roundtrip(c);
        let (live, queued) = notifications(&f);
        assert_eq!(live, 1, "destroyed notifications are gone");
        assert!(queued <= 64, "stale deadlines are dropped: {queued} queued");
    }
    // The one left still works.
    assert!(
        f.wait_until(Duration::from_secs(3), |_| kept.count("idled") == 1),
        "the remaining notification still fires"
    );
    keep.destroy();
    f.roundtrip(c);
    assert_eq!(notifications(&f), (0, 0));
}
