//! zxdg_output_manager_v1 (lockstep's own, `lockstep_protocols::xdg_output`): what a client
//! is told, changes reaching every object followed by `wl_output.done`, and destroyed objects
//! leaving nothing behind (smithay 0.7's manager kept ~41 bytes per `get_xdg_output`).

use std::sync::{Arc, Mutex};

use smithay::output::Scale;
use wayland_client::{
    protocol::wl_output::{self, WlOutput},
    Connection, Dispatch, QueueHandle,
};
use wayland_protocols::xdg::xdg_output::zv1::client::{
    zxdg_output_manager_v1::ZxdgOutputManagerV1,
    zxdg_output_v1::{self, ZxdgOutputV1},
};

use crate::{
    client::ClientData,
    fixture::{ClientId, Fixture},
    OUT,
};

wayland_client::delegate_noop!(ClientData: ignore ZxdgOutputManagerV1);

/// Events as the client saw them, in order, as short strings.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Dispatch<ZxdgOutputV1, Log> for ClientData {
    fn event(
        _: &mut Self,
        _: &ZxdgOutputV1,
        event: zxdg_output_v1::Event,
        log: &Log,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let line = match event {
            zxdg_output_v1::Event::LogicalPosition { x, y } => format!("position {x},{y}"),
            zxdg_output_v1::Event::LogicalSize { width, height } => {
                format!("size {width}x{height}")
            }
            zxdg_output_v1::Event::Name { name } => format!("name {name}"),
            zxdg_output_v1::Event::Description { .. } => "description".into(),
            zxdg_output_v1::Event::Done => "xdg done".into(),
            _ => return,
        };
        log.0.lock().unwrap().push(line);
    }
}

impl Dispatch<WlOutput, Log> for ClientData {
    fn event(
        _: &mut Self,
        _: &WlOutput,
        event: wl_output::Event,
        log: &Log,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_output::Event::Done = event {
            log.0.lock().unwrap().push("done".into());
        }
    }
}

/// Binds the manager (at `version`) and a wl_output (v4) whose events go to the same log.
fn bind(f: &mut Fixture, c: ClientId, version: u32) -> (ZxdgOutputManagerV1, WlOutput, Log) {
    let (manager_id, _) = f.client(c).data.globals["zxdg_output_manager_v1"];
    let (output_id, _) = f.client(c).data.globals["wl_output"];
    let log = Log::default();
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager: ZxdgOutputManagerV1 = registry.bind(manager_id, version, &cl.qh, ());
    let output: WlOutput = registry.bind(output_id, 4, &cl.qh, log.clone());
    f.roundtrip(c);
    log.take();
    (manager, output, log)
}

fn object_count(f: &Fixture) -> usize {
    f.server.state.core.xdg_output.object_count()
}

#[test]
fn a_new_object_is_told_the_geometry_and_name() {
    let mut f = Fixture::new();
    let c = f.add_client();
    assert_eq!(f.client(c).data.globals["zxdg_output_manager_v1"].1, 3);
    let (manager, output, log) = bind(&mut f, c, 3);
    let qh = f.client(c).qh.clone();
    let _xdg = manager.get_xdg_output(&output, &qh, log.clone());
    f.roundtrip(c);
    assert_eq!(
        log.take(),
        [
            "position 0,0",
            "size 1280x720",
            &format!("name {OUT}"),
            "description",
            "done"
        ]
    );
    // Version 1 has no names, and ends its batch with its own done.
    let (manager, output, log) = bind(&mut f, c, 1);
    let _xdg = manager.get_xdg_output(&output, &qh, log.clone());
    f.roundtrip(c);
    assert_eq!(
        log.take(),
        ["position 0,0", "size 1280x720", "xdg done", "done"]
    );
}

#[test]
fn a_scale_change_reaches_every_object_once_then_nothing_more() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let (manager, output, log) = bind(&mut f, c, 3);
    let qh = f.client(c).qh.clone();
    let _a = manager.get_xdg_output(&output, &qh, log.clone());
    let _b = manager.get_xdg_output(&output, &qh, log.clone());
    f.roundtrip(c);
    log.take();
    let o = f.server.state.core.output_by_name(OUT).expect("output");
    o.change_current_state(None, None, Some(Scale::Fractional(2.0)), None);
    f.roundtrip(c);
    let seen = log.take();
    let sizes = seen.iter().filter(|l| *l == "size 640x360").count();
    assert_eq!(
        sizes, 2,
        "both objects get the logical size at scale 2: {seen:?}"
    );
    assert_eq!(seen.last().map(String::as_str), Some("done"), "{seen:?}");
    assert!(
        !seen.iter().any(|l| l.starts_with("name")),
        "names never repeat"
    );
    // Nothing changed since: nothing is sent.
    f.run_for(std::time::Duration::from_millis(50));
    f.roundtrip(c);
    assert!(
        !log.take().iter().any(|l| l.starts_with("size")),
        "no repeats"
    );
}

#[test]
fn destroyed_objects_leave_nothing_behind() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let (manager, output, log) = bind(&mut f, c, 3);
    let qh = f.client(c).qh.clone();
    let keep = manager.get_xdg_output(&output, &qh, log.clone());
    for _ in 0..5 {
        let objects: Vec<_> = (0..200)
            .map(|_| manager.get_xdg_output(&output, &qh, log.clone()))
            .collect();
        f.roundtrip(c);
        assert_eq!(object_count(&f), 201);
        for o in objects {
            o.destroy();
        }
        f.roundtrip(c);
        assert_eq!(object_count(&f), 1, "destroyed objects are gone");
    }
    keep.destroy();
    f.roundtrip(c);
    assert_eq!(object_count(&f), 0);
    // A client that goes away with objects alive leaves nothing either.
    let _left = manager.get_xdg_output(&output, &qh, log.clone());
    f.roundtrip(c);
    assert_eq!(object_count(&f), 1);
    let other = f.add_client();
    drop(f.clients.remove(c.0));
    let gone = f.wait_until(std::time::Duration::from_secs(2), |f| object_count(f) == 0);
    let _ = other;
    assert!(gone, "a disconnected client's objects are dropped");
}
