//! zwlr_gamma_control_manager_v1 on the headless backend: the table is read and kept, one
//! client controls an output at a time, the default comes back when it lets go, and bad
//! tables are protocol errors that never block the compositor.

use std::{
    os::fd::{AsFd, OwnedFd},
    sync::{Arc, Mutex},
    time::Duration,
};

use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols_wlr::gamma_control::v1::client::{
    zwlr_gamma_control_manager_v1::ZwlrGammaControlManagerV1,
    zwlr_gamma_control_v1::{self, ZwlrGammaControlV1},
};

use crate::{
    client::ClientData,
    fixture::{ClientId, Fixture},
    OUT,
};

wayland_client::delegate_noop!(ClientData: ignore ZwlrGammaControlManagerV1);

/// What a control was told: `Some(size)` or failed.
#[derive(Clone, Default)]
struct Told(Arc<Mutex<Vec<Option<u32>>>>);

impl Dispatch<ZwlrGammaControlV1, Told> for ClientData {
    fn event(
        _: &mut Self,
        _: &ZwlrGammaControlV1,
        event: zwlr_gamma_control_v1::Event,
        told: &Told,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let what = match event {
            zwlr_gamma_control_v1::Event::GammaSize { size } => Some(size),
            zwlr_gamma_control_v1::Event::Failed => None,
            _ => return,
        };
        told.0.lock().unwrap().push(what);
    }
}

fn control(f: &mut Fixture, c: ClientId) -> (ZwlrGammaControlV1, Told) {
    let (id, _) = f.client(c).data.globals["zwlr_gamma_control_manager_v1"];
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager: ZwlrGammaControlManagerV1 = registry.bind(id, 1, &cl.qh, ());
    let told = Told::default();
    let output = cl.output.clone().expect("an output");
    let control = manager.get_gamma_control(&output, &cl.qh, told.clone());
    f.roundtrip(c);
    (control, told)
}

/// A memfd holding `values` as native-endian u16.
fn table(values: &[u16]) -> OwnedFd {
    let fd = rustix::fs::memfd_create("gamma", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
    rustix::io::write(&fd, &bytes).unwrap();
    fd
}

fn gamma(f: &Fixture) -> Option<Vec<u16>> {
    f.server.state.core.outputs[OUT].gamma.clone()
}

#[test]
fn a_table_is_kept_until_the_client_lets_go_and_only_one_client_controls() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let (ctl, told) = control(&mut f, c);
    assert_eq!(*told.0.lock().unwrap(), vec![Some(256)]);
    let values: Vec<u16> = (0..768u32).map(|i| (i * 85) as u16).collect();
    ctl.set_gamma(table(&values).as_fd());
    f.roundtrip(c);
    assert_eq!(gamma(&f), Some(values.clone()));
    let outputs = match lockstep::ipc::answer(&f.server.state, lockstep::ipc::Request::Outputs) {
        lockstep::ipc::Response::Outputs(o) => o,
        other => panic!("{other:?}"),
    };
    assert!(outputs[0].gamma, "msg outputs reports the table");

    // A second client cannot take the output.
    let other = f.add_client();
    let (_ctl2, told2) = control(&mut f, other);
    assert_eq!(
        *told2.0.lock().unwrap(),
        vec![None],
        "failed: already controlled"
    );

    // Letting go restores the default; then another client may take it.
    ctl.destroy();
    f.roundtrip(c);
    assert_eq!(gamma(&f), None);
    let (_ctl3, told3) = control(&mut f, other);
    assert_eq!(*told3.0.lock().unwrap(), vec![Some(256)]);
}

#[test]
fn a_client_that_disconnects_gets_its_gamma_undone() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let (ctl, _) = control(&mut f, c);
    ctl.set_gamma(table(&[7u16; 768]).as_fd());
    f.roundtrip(c);
    assert!(gamma(&f).is_some());
    drop(f.clients.remove(c.0));
    f.run_for(Duration::from_millis(50));
    assert_eq!(gamma(&f), None);
}

#[test]
fn short_tables_and_pipes_are_invalid_gamma() {
    for kind in ["short", "pipe"] {
        let mut f = Fixture::new();
        let c = f.add_client();
        let (ctl, _) = control(&mut f, c);
        let _keep;
        let fd = if kind == "short" {
            _keep = None;
            table(&[1u16; 100])
        } else {
            // A pipe with nothing in it: reading it would block; pread refuses it.
            let (read, write) = rustix::pipe::pipe().unwrap();
            _keep = Some(write);
            read
        };
        ctl.set_gamma(fd.as_fd());
        assert!(
            f.wait_until(Duration::from_secs(2), |f| f
                .client(c)
                .protocol_error()
                .is_some()),
            "{kind}: no protocol error"
        );
        let (code, interface, _) = f.client(c).protocol_error().unwrap();
        assert_eq!(
            (code, interface.as_str()),
            (
                zwlr_gamma_control_v1::Error::InvalidGamma as u32,
                "zwlr_gamma_control_v1"
            ),
            "{kind}"
        );
        assert_eq!(gamma(&f), None);
        let other = f.add_client();
        f.roundtrip(other);
    }
}
