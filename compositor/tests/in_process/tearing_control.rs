//! wp_tearing_control_v1: the hint is double-buffered surface state, reverts to vsync when
//! the object goes, and one object per surface.

use lockstep_protocols::wp_tearing_control::presentation_hint;
use wayland_protocols::wp::tearing_control::v1::client::{
    wp_tearing_control_manager_v1::{self, WpTearingControlManagerV1},
    wp_tearing_control_v1::{PresentationHint, WpTearingControlV1},
};

use crate::{
    client::ClientData,
    fixture::{ClientId, Fixture},
    RED,
};

wayland_client::delegate_noop!(ClientData: ignore WpTearingControlManagerV1);
wayland_client::delegate_noop!(ClientData: ignore WpTearingControlV1);

fn manager(f: &mut Fixture, c: ClientId) -> WpTearingControlManagerV1 {
    let (id, version) = f.client(c).data.globals["wp_tearing_control_manager_v1"];
    assert_eq!(version, 1);
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    registry.bind(id, 1, &cl.qh, ())
}

/// The hint in force on the server's side of the client's only window.
fn allows_tearing(f: &Fixture) -> bool {
    let core = &f.server.state.core;
    let window = core.windows.values().next().expect("a window");
    presentation_hint(window.toplevel().unwrap().wl_surface()).allow_tearing
}

#[test]
fn the_hint_applies_with_the_commit_and_reverts_when_the_object_goes() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let top = f.map_window(c, 64, 64, RED);
    let m = manager(&mut f, c);
    let cl = f.client(c);
    let control = m.get_tearing_control(&top.surface, &cl.qh, ());
    control.set_presentation_hint(PresentationHint::Async);
    f.roundtrip(c);
    assert!(!allows_tearing(&f), "pending until the commit");
    top.surface.commit();
    f.roundtrip(c);
    assert!(allows_tearing(&f));
    control.destroy();
    top.surface.commit();
    f.roundtrip(c);
    assert!(!allows_tearing(&f), "back to vsync once the object is gone");
    // A new object may be made once the old one is gone.
    let cl = f.client(c);
    let _again = m.get_tearing_control(&top.surface, &cl.qh, ());
    f.roundtrip(c);
    assert_eq!(f.client(c).protocol_error(), None);
}

#[test]
fn a_second_object_for_a_surface_is_an_error() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let top = f.map_window(c, 64, 64, RED);
    let m = manager(&mut f, c);
    let cl = f.client(c);
    let _one = m.get_tearing_control(&top.surface, &cl.qh, ());
    let _two = m.get_tearing_control(&top.surface, &cl.qh, ());
    assert_eq!(
        f.expect_protocol_error(c),
        (
            wp_tearing_control_manager_v1::Error::TearingControlExists as u32,
            "wp_tearing_control_manager_v1".to_string()
        )
    );
}
