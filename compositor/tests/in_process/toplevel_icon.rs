//! xdg_toplevel_icon_v1: a window's icon shows in `msg windows` after the next commit, and
//! changing an icon a toplevel already uses is the protocol's `immutable` error, not a crash.

use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols::xdg::toplevel_icon::v1::client::{
    xdg_toplevel_icon_manager_v1::{self, XdgToplevelIconManagerV1},
    xdg_toplevel_icon_v1::{self, XdgToplevelIconV1},
};

use crate::{
    client::ClientData,
    fixture::{ClientId, Fixture},
    GREEN,
};

impl Dispatch<XdgToplevelIconManagerV1, ()> for ClientData {
    fn event(
        _: &mut Self,
        _: &XdgToplevelIconManagerV1,
        _: xdg_toplevel_icon_manager_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

wayland_client::delegate_noop!(ClientData: ignore XdgToplevelIconV1);

fn manager(f: &mut Fixture, c: ClientId) -> XdgToplevelIconManagerV1 {
    let (global, _) = *f
        .client(c)
        .data
        .globals
        .get("xdg_toplevel_icon_manager_v1")
        .expect("xdg_toplevel_icon_manager_v1 is offered");
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    registry.bind(global, 1, &cl.qh, ())
}

#[test]
fn a_toplevel_icon_shows_in_msg_windows_after_the_next_commit() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let top = f.map_window(c, 100, 80, GREEN);
    assert_eq!(f.windows()[0].icon, None);
    let manager = manager(&mut f, c);
    let cl = f.client(c);
    let icon = manager.create_icon(&cl.qh, ());
    icon.set_name("utilities-terminal".into());
    let pixels = f.client(c).shm_buffer(32, 32, GREEN);
    icon.add_buffer(&pixels, 1);
    manager.set_icon(&top.toplevel, Some(&icon));
    f.roundtrip(c);
    assert_eq!(
        f.windows()[0].icon,
        None,
        "the icon applies with the next commit"
    );
    top.surface.commit();
    f.roundtrip(c);
    let shown = f.windows()[0].icon.clone().expect("an icon");
    assert_eq!(shown.name.as_deref(), Some("utilities-terminal"));
    assert_eq!(shown.buffers, vec![(32, 1)]);

    // Unsetting it takes it away, again with a commit.
    manager.set_icon(&top.toplevel, None);
    top.surface.commit();
    f.roundtrip(c);
    assert_eq!(f.windows()[0].icon, None);
    assert_eq!(f.client(c).protocol_error(), None);
}

#[test]
fn changing_an_icon_a_toplevel_uses_is_the_immutable_error() {
    for change in ["set_name", "add_buffer"] {
        let mut f = Fixture::new();
        let c = f.add_client();
        let top = f.map_window(c, 100, 80, GREEN);
        let manager = manager(&mut f, c);
        let cl = f.client(c);
        let icon = manager.create_icon(&cl.qh, ());
        icon.set_name("first".into());
        manager.set_icon(&top.toplevel, Some(&icon));
        match change {
            "set_name" => icon.set_name("second".into()),
            _ => {
                let pixels = f.client(c).shm_buffer(16, 16, GREEN);
                icon.add_buffer(&pixels, 1);
            }
        }
        let (code, interface) = f.expect_protocol_error(c);
        assert_eq!(
            (code, interface.as_str()),
            (
                xdg_toplevel_icon_v1::Error::Immutable as u32,
                "xdg_toplevel_icon_v1"
            ),
            "{change}"
        );
        // lockstep carries on: a new client maps a window.
        let other = f.add_client();
        f.map_window(other, 50, 50, GREEN);
    }
}
