//! wp_single_pixel_buffer_v1 with wp_viewporter: a 1×1 buffer of one colour scaled to a
//! window (what swaybg and GTK use for solid colours) is drawn as that colour.

use std::time::Duration;

use wayland_protocols::wp::{
    single_pixel_buffer::v1::client::wp_single_pixel_buffer_manager_v1::WpSinglePixelBufferManagerV1,
    viewporter::client::{wp_viewport::WpViewport, wp_viewporter::WpViewporter},
};

use crate::{
    client::ClientData,
    fixture::{rgb, Fixture},
    OUT,
};

wayland_client::delegate_noop!(ClientData: ignore WpSinglePixelBufferManagerV1);
wayland_client::delegate_noop!(ClientData: ignore WpViewporter);
wayland_client::delegate_noop!(ClientData: ignore WpViewport);

#[test]
fn single_pixel_buffer_scaled_by_a_viewport_shows_its_colour() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let globals = f.client(c).data.globals.clone();
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let (id, _) = globals["wp_single_pixel_buffer_manager_v1"];
    let pixels: WpSinglePixelBufferManagerV1 = registry.bind(id, 1, &cl.qh, ());
    let (id, _) = globals["wp_viewporter"];
    let viewporter: WpViewporter = registry.bind(id, 1, &cl.qh, ());
    let top = cl.toplevel();
    let viewport = viewporter.get_viewport(&top.surface, &cl.qh, ());
    top.surface.commit();
    f.roundtrip(c);
    let serial = f
        .client(c)
        .configure_serial(&top.xdg_surface)
        .expect("initial configure");
    let cl = f.client(c);
    top.xdg_surface.ack_configure(serial);
    // Opaque orange: each channel is a u32 fraction of u32::MAX.
    let channel = |v: u8| (u64::from(v) * u64::from(u32::MAX) / 255) as u32;
    let buffer = pixels.create_u32_rgba_buffer(
        channel(0xe0),
        channel(0x80),
        channel(0x10),
        u32::MAX,
        &cl.qh,
        (),
    );
    viewport.set_destination(120, 90);
    top.surface.attach(Some(&buffer), 0, 0);
    top.surface.damage_buffer(0, 0, 1, 1);
    top.surface.commit();
    f.roundtrip(c);
    assert!(
        f.wait_until(Duration::from_secs(2), |f| !f.windows().is_empty()),
        "the window never mapped"
    );
    f.settle();
    let windows = f.windows();
    assert_eq!(windows[0].size, (120, 90));
    let (x, y) = windows[0].position;
    let shot = f.screenshot(OUT);
    for (dx, dy) in [(0, 0), (119, 0), (60, 45), (0, 89), (119, 89)] {
        assert_eq!(
            rgb(&shot, x + dx, y + dy),
            0xe08010,
            "pixel ({dx}, {dy}) of the window"
        );
    }
    assert_eq!(f.client(c).protocol_error(), None);
}
