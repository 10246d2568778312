//! zwlr_virtual_pointer_manager_v1: a virtual mouse moves the real pointer only at its
//! `frame`, clicks focus like a real click, and bad axes are protocol errors.

use wayland_client::protocol::wl_pointer;
use wayland_protocols_wlr::virtual_pointer::v1::client::{
    zwlr_virtual_pointer_manager_v1::ZwlrVirtualPointerManagerV1,
    zwlr_virtual_pointer_v1::{self, ZwlrVirtualPointerV1},
};

use crate::{
    client::ClientData,
    fixture::{ClientId, Fixture},
    GREEN, RED,
};

wayland_client::delegate_noop!(ClientData: ignore ZwlrVirtualPointerManagerV1);
wayland_client::delegate_noop!(ClientData: ignore ZwlrVirtualPointerV1);

fn virtual_pointer(f: &mut Fixture, c: ClientId) -> ZwlrVirtualPointerV1 {
    let (id, version) = f.client(c).data.globals["zwlr_virtual_pointer_manager_v1"];
    assert_eq!(version, 2);
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager: ZwlrVirtualPointerManagerV1 = registry.bind(id, 2, &cl.qh, ());
    let output = cl.output.clone();
    let pointer = manager.create_virtual_pointer_with_output(None, output.as_ref(), &cl.qh, ());
    f.roundtrip(c);
    pointer
}

fn pointer_location(f: &Fixture) -> (f64, f64) {
    let p = f
        .server
        .state
        .core
        .seat
        .get_pointer()
        .unwrap()
        .current_location();
    (p.x, p.y)
}

#[test]
fn motion_waits_for_the_frame_and_a_click_focuses() {
    let mut f = Fixture::new();
    let app = f.add_client();
    f.map_window(app, 100, 80, RED); // at (590, 320)
    f.map_window(app, 100, 80, GREEN); // at (622, 352), focused
    let tool = f.add_client();
    let vp = virtual_pointer(&mut f, tool);
    // Absolute, onto the 1280x720 output: (600, 330) is on the red window only.
    vp.motion_absolute(1, 600, 330, 1280, 720);
    f.roundtrip(tool);
    assert_ne!(
        pointer_location(&f),
        (600.0, 330.0),
        "moved before the frame"
    );
    vp.frame();
    f.roundtrip(tool);
    assert_eq!(pointer_location(&f), (600.0, 330.0));
    vp.motion(2, 5.0, 5.0);
    vp.frame();
    f.roundtrip(tool);
    assert_eq!(pointer_location(&f), (605.0, 335.0));
    // A click focuses the window under it, as a real one does.
    vp.button(3, 0x110, wl_pointer::ButtonState::Pressed);
    vp.button(4, 0x110, wl_pointer::ButtonState::Released);
    vp.frame();
    f.roundtrip(tool);
    f.dispatch();
    let focused = f.windows().into_iter().find(|w| w.focused).unwrap();
    assert_eq!(focused.position, (590, 320), "the red window got focus");
}

#[test]
fn a_bad_axis_is_a_protocol_error() {
    let mut f = Fixture::new();
    let tool = f.add_client();
    let vp = virtual_pointer(&mut f, tool);
    crate::fixture::send_raw(
        &vp,
        zwlr_virtual_pointer_v1::REQ_AXIS_OPCODE,
        vec![
            wayland_client::backend::protocol::Argument::Uint(1),
            wayland_client::backend::protocol::Argument::Uint(9),
            wayland_client::backend::protocol::Argument::Fixed(256),
        ],
    );
    assert_eq!(
        f.expect_protocol_error(tool),
        (
            zwlr_virtual_pointer_v1::Error::InvalidAxis as u32,
            "zwlr_virtual_pointer_v1".to_string()
        )
    );
}
