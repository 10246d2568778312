//! In-process client–server tests: lockstep's real server on the headless backend, real
//! wayland-client clients, one loop. Pixels are checked on what the output really shows.

mod acquire_latency;
mod client;
mod client_memory;
mod data_device;
mod desktop;
mod desktop_resize;
mod fixture;
mod foreign_toplevel;
mod gamma_control;
mod idle;
mod kms;
mod kms_gles;
mod kms_on_time;
mod kms_outputs;
mod kms_tearing;
mod layer_lock;
mod output_management;
mod output_power;
mod output_reload;
mod robustness;
mod security_context;
mod single_pixel;
mod soft_device;
mod syncobj;
mod syncobj_rules;
mod tearing_control;
mod text_input;
mod toplevel_icon;
mod virtual_pointer;
mod xdg_output;

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    sync::Arc,
    time::Duration,
};

use client::{FrameCallback, Presented, Toplevel};
use fixture::{rgb, ClientId, Fixture, DEFAULT_OUTPUT};
use lockstep::{backend::headless::VirtualOutput, frame_clock::RedrawState, state::ClientState};
use wayland_client::{
    protocol::{wl_shm, wl_surface::WlSurface},
    Proxy,
};
use wayland_protocols::xdg::shell::client::{
    xdg_popup::XdgPopup,
    xdg_positioner::{Anchor, ConstraintAdjustment, Gravity, XdgPositioner},
    xdg_surface::XdgSurface,
};

const OUT: &str = "HEADLESS-1";
const RED: u32 = 0xffd0_2020;
const GREEN: u32 = 0xff20_c040;
const BLUE: u32 = 0xff30_40e0;

#[test]
fn shm_window_shows_its_exact_pixels_centred() {
    let mut f = Fixture::new();
    let c = f.add_client();
    f.map_window(c, 100, 80, RED);
    let windows = f.windows();
    assert_eq!(windows.len(), 1);
    // Centred on the 1280×720 output.
    assert_eq!(windows[0].position, (590, 320));
    assert_eq!(windows[0].size, (100, 80));
    assert!(windows[0].focused, "a new window takes keyboard focus");
    let shot = f.screenshot(OUT);
    let background = rgb(&shot, 0, 0);
    assert_ne!(background, 0xd02020);
    for (x, y) in [(590, 320), (689, 320), (590, 399), (689, 399), (640, 360)] {
        assert_eq!(rgb(&shot, x, y), 0xd02020, "window pixel at ({x}, {y})");
    }
    for (x, y) in [(589, 320), (690, 360), (640, 319), (640, 400)] {
        assert_eq!(rgb(&shot, x, y), background, "background at ({x}, {y})");
    }
}

#[test]
fn second_window_cascades_from_the_first() {
    let mut f = Fixture::new();
    let c = f.add_client();
    f.map_window(c, 100, 80, RED);
    f.map_window(c, 100, 80, GREEN);
    let windows = f.windows();
    let positions: Vec<_> = windows.iter().map(|w| w.position).collect();
    assert!(
        positions.contains(&(590, 320)) && positions.contains(&(622, 352)),
        "{positions:?}"
    );
    let shot = f.screenshot(OUT);
    assert_eq!(rgb(&shot, 700, 420), 0x20c040, "the newer window is on top");
}

/// A 50x40 popup of `top` (not committed yet) whose positioner puts it at (30, 30) of the
/// window: anchored to the bottom-right corner of (10, 10, 20, 20), growing down and right.
fn popup_at_30_30(
    f: &mut Fixture,
    c: ClientId,
    top: &Toplevel,
) -> (WlSurface, XdgSurface, XdgPopup, XdgPositioner) {
    let cl = f.client(c);
    let positioner = cl.wm_base.create_positioner(&cl.qh, ());
    positioner.set_size(50, 40);
    positioner.set_anchor_rect(10, 10, 20, 20);
    positioner.set_anchor(Anchor::BottomRight);
    positioner.set_gravity(Gravity::BottomRight);
    let surface = cl.compositor.create_surface(&cl.qh, ());
    let xdg_surface = cl.wm_base.get_xdg_surface(&surface, &cl.qh, ());
    let popup = xdg_surface.get_popup(Some(&top.xdg_surface), &positioner, &cl.qh, ());
    (surface, xdg_surface, popup, positioner)
}

/// Acks the popup's configure, then commits a 50x40 blue buffer, as a client does.
fn ack_and_draw_popup(f: &mut Fixture, c: ClientId, surface: &WlSurface, xdg: &XdgSurface) {
    let serial = f.client(c).configure_serial(xdg).expect("popup configure");
    xdg.ack_configure(serial);
    let buffer = f.client(c).shm_buffer(50, 40, BLUE);
    surface.attach(Some(&buffer), 0, 0);
    surface.commit();
    f.roundtrip(c);
    f.settle();
}

#[test]
fn popup_is_placed_by_its_positioner() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let top = f.map_window(c, 200, 200, RED); // at (540, 260)
    let (surface, xdg_surface, popup, _) = popup_at_30_30(&mut f, c, &top);
    surface.commit();
    f.roundtrip(c);
    let geometry = f
        .client(c)
        .data
        .popup_geometry
        .get(&popup.id().protocol_id())
        .copied();
    assert_eq!(
        geometry,
        Some((30, 30, 50, 40)),
        "anchor (30,30) with gravity bottom-right"
    );
    ack_and_draw_popup(&mut f, c, &surface, &xdg_surface);
    let shot = f.screenshot(OUT);
    assert_eq!(rgb(&shot, 570, 290), 0x3040e0, "popup top-left");
    assert_eq!(rgb(&shot, 619, 329), 0x3040e0, "popup bottom-right");
    assert_eq!(
        rgb(&shot, 569, 289),
        0xd02020,
        "parent just outside the popup"
    );
}

/// A popup whose first commit already carries a buffer (before any configure, as WLCS's
/// layer-surface popup cases do) and that never commits after acking is shown where its
/// acked configure puts it, not at 0,0 of its parent.
#[test]
fn popup_with_a_buffer_before_its_first_configure_is_placed_by_the_acked_configure() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let top = f.map_window(c, 200, 200, RED); // at (540, 260)
    let (surface, xdg_surface, _popup, _) = popup_at_30_30(&mut f, c, &top);
    let buffer = f.client(c).shm_buffer(50, 40, BLUE);
    surface.attach(Some(&buffer), 0, 0);
    surface.commit();
    f.roundtrip(c);
    f.settle();
    let serial = f
        .client(c)
        .configure_serial(&xdg_surface)
        .expect("popup configure");
    xdg_surface.ack_configure(serial);
    f.roundtrip(c);
    f.settle();
    let shot = f.screenshot(OUT);
    assert_eq!(rgb(&shot, 570, 290), 0x3040e0, "popup top-left");
    assert_eq!(rgb(&shot, 619, 329), 0x3040e0, "popup bottom-right");
    assert_eq!(rgb(&shot, 545, 265), 0xd02020, "not at 0,0 of its parent");
    assert_eq!(f.client(c).protocol_error(), None);
}

/// xdg-shell's rule for a popup that was configured and mapped the normal way: a new
/// position (a reposition) applies with the client's commit after the ack, not at the ack.
#[test]
fn repositioned_popup_moves_with_its_commit_after_the_ack() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let top = f.map_window(c, 200, 200, RED); // at (540, 260)
    let (surface, xdg_surface, popup, positioner) = popup_at_30_30(&mut f, c, &top);
    surface.commit();
    f.roundtrip(c);
    ack_and_draw_popup(&mut f, c, &surface, &xdg_surface);
    assert_eq!(
        rgb(&f.screenshot(OUT), 570, 290),
        0x3040e0,
        "mapped at (30, 30)"
    );

    positioner.set_anchor_rect(100, 100, 20, 20);
    popup.reposition(&positioner, 7);
    f.roundtrip(c);
    let serial = f
        .client(c)
        .configure_serial(&xdg_surface)
        .expect("configure");
    xdg_surface.ack_configure(serial);
    f.roundtrip(c);
    f.settle();
    let shot = f.screenshot(OUT);
    assert_eq!(
        rgb(&shot, 570, 290),
        0x3040e0,
        "still where it was after the ack"
    );
    assert_eq!(rgb(&shot, 665, 385), 0xd02020, "not at the new place yet");
    surface.commit();
    f.roundtrip(c);
    f.settle();
    let shot = f.screenshot(OUT);
    assert_eq!(
        rgb(&shot, 665, 385),
        0x3040e0,
        "at (120, 120) after the commit"
    );
    assert_eq!(rgb(&shot, 570, 290), 0xd02020, "gone from the old place");
}

#[test]
fn popup_that_would_leave_the_output_is_flipped() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let top = f.map_window(c, 200, 200, RED); // x 540..740 on a 1280-wide output
    let cl = f.client(c);
    let positioner = cl.wm_base.create_positioner(&cl.qh, ());
    positioner.set_size(700, 40);
    positioner.set_anchor_rect(190, 10, 10, 10);
    positioner.set_anchor(Anchor::Right);
    positioner.set_gravity(Gravity::Right);
    positioner.set_constraint_adjustment(ConstraintAdjustment::FlipX);
    let surface = cl.compositor.create_surface(&cl.qh, ());
    let xdg_surface = cl.wm_base.get_xdg_surface(&surface, &cl.qh, ());
    let popup = xdg_surface.get_popup(Some(&top.xdg_surface), &positioner, &cl.qh, ());
    surface.commit();
    f.roundtrip(c);
    let geometry = f
        .client(c)
        .data
        .popup_geometry
        .get(&popup.id().protocol_id())
        .copied();
    // Unflipped it would span x 740..1440; flipped (anchor and gravity left) it ends at the
    // anchor rect's left edge. Vertically it is centred on the anchor point (y 15).
    assert_eq!(geometry, Some((190 - 700, 15 - 20, 700, 40)));
}

#[test]
fn synchronized_subsurface_applies_only_with_the_parent_commit() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let top = f.map_window(c, 200, 200, RED); // at (540, 260)
    let (sub_surface, sub) = f.client(c).subsurface(&top.surface);
    sub.set_position(10, 10);
    let buffer = f.client(c).shm_buffer(50, 50, GREEN);
    sub_surface.attach(Some(&buffer), 0, 0);
    sub_surface.commit();
    f.roundtrip(c);
    f.settle();
    assert_eq!(
        rgb(&f.screenshot(OUT), 560, 280),
        0xd02020,
        "not before the parent commits"
    );
    top.surface.commit();
    f.roundtrip(c);
    f.settle();
    assert_eq!(
        rgb(&f.screenshot(OUT), 560, 280),
        0x20c040,
        "applied with the parent commit"
    );
    // A new buffer on the synchronized child waits for the parent again.
    let blue = f.client(c).shm_buffer(50, 50, BLUE);
    sub_surface.attach(Some(&blue), 0, 0);
    sub_surface.damage_buffer(0, 0, 50, 50);
    sub_surface.commit();
    f.roundtrip(c);
    f.settle();
    assert_eq!(rgb(&f.screenshot(OUT), 560, 280), 0x20c040);
    top.surface.commit();
    f.roundtrip(c);
    f.settle();
    assert_eq!(rgb(&f.screenshot(OUT), 560, 280), 0x3040e0);
}

#[test]
fn desynchronized_subsurface_applies_at_once() {
    let mut f = Fixture::new();
    let c = f.add_client();
    let top = f.map_window(c, 200, 200, RED);
    let (sub_surface, sub) = f.client(c).subsurface(&top.surface);
    sub.set_position(10, 10);
    sub.set_desync();
    top.surface.commit(); // applies the position
    let buffer = f.client(c).shm_buffer(50, 50, GREEN);
    sub_surface.attach(Some(&buffer), 0, 0);
    sub_surface.commit();
    f.roundtrip(c);
    f.settle();
    assert_eq!(
        rgb(&f.screenshot(OUT), 560, 280),
        0x20c040,
        "shown without a parent commit"
    );
}

/// Animates a surface for `frames` frame callbacks, asking for presentation feedback too.
pub(crate) fn animate(f: &mut Fixture, c: fixture::ClientId, frames: usize) {
    let top = f.map_window(c, 64, 64, RED);
    let buffers = [
        f.client(c).shm_buffer(64, 64, GREEN),
        f.client(c).shm_buffer(64, 64, BLUE),
    ];
    f.client(c).data.frame_done.clear();
    f.client(c).data.presented.clear();
    for i in 0..frames {
        let cl = f.client(c);
        let done_before = cl.data.frame_done.len();
        top.surface.frame(&cl.qh, FrameCallback);
        cl.presentation.feedback(&top.surface, &cl.qh, ());
        top.surface.attach(Some(&buffers[i % 2]), 0, 0);
        top.surface.damage_buffer(0, 0, 64, 64);
        top.surface.commit();
        let ok = f.wait_until(Duration::from_secs(2), |f| {
            f.client(c).data.frame_done.len() > done_before
        });
        assert!(ok, "frame callback {i} never came");
    }
    f.settle();
}

/// The `presented` feedback client `c` got: (time in ns, refresh in ns, sequence).
pub(crate) fn shown_feedback(f: &mut Fixture, c: fixture::ClientId) -> Vec<(u128, u32, u64)> {
    f.client(c)
        .data
        .presented
        .iter()
        .filter_map(|p| match p {
            Presented::Shown {
                time_ns,
                refresh_ns,
                seq,
            } => Some((*time_ns, *refresh_ns, *seq)),
            Presented::Discarded => None,
        })
        .collect()
}

#[test]
fn frame_callbacks_fire_at_most_once_per_refresh() {
    let mut f = Fixture::new();
    let c = f.add_client();
    animate(&mut f, c, 20);
    let done = f.client(c).data.frame_done.clone();
    assert_eq!(done.len(), 20);
    for pair in done.windows(2) {
        let delta = pair[1].wrapping_sub(pair[0]);
        assert!(delta >= 16, "frame callbacks {delta} ms apart: {done:?}");
    }
    // A burst of commits inside one refresh gets its callbacks in one frame slot.
    let top = f.map_window(c, 32, 32, GREEN);
    f.client(c).data.frame_done.clear();
    for _ in 0..5 {
        let cl = f.client(c);
        top.surface.frame(&cl.qh, FrameCallback);
        top.surface.commit();
    }
    f.roundtrip(c);
    f.wait_until(Duration::from_secs(1), |f| {
        f.client(c).data.frame_done.len() == 5
    });
    f.settle();
    let burst = f.client(c).data.frame_done.clone();
    assert_eq!(burst.len(), 5, "every requested callback fires");
    assert!(
        burst.iter().all(|t| *t == burst[0]),
        "all in one slot: {burst:?}"
    );
}

#[test]
fn presentation_times_are_monotonic_and_one_refresh_apart() {
    let mut f = Fixture::new();
    let c = f.add_client();
    animate(&mut f, c, 20);
    let shown = shown_feedback(&mut f, c);
    assert!(
        shown.len() >= 19,
        "feedback for (almost) every frame: {shown:?}"
    );
    let refresh = 1_000_000_000_000u128 / 60_000;
    let mut exact = 0;
    for pair in shown.windows(2) {
        let (t0, r, s0) = pair[0];
        let (t1, _, s1) = pair[1];
        assert_eq!(r as u128, refresh, "refresh reported");
        assert!(t1 > t0 && s1 > s0, "monotonic: {pair:?}");
        let delta = t1 - t0;
        assert_eq!(
            delta % refresh,
            0,
            "a whole number of refreshes apart: {delta} ns"
        );
        if delta == refresh {
            exact += 1;
        }
    }
    assert!(
        exact * 10 >= (shown.len() - 1) * 8,
        "most frames exactly one refresh apart"
    );
}

#[test]
fn idle_screen_renders_nothing_and_arms_no_timer() {
    let mut f = Fixture::new();
    let c = f.add_client();
    f.map_window(c, 100, 100, RED);
    f.settle();
    let rendered = |f: &Fixture| f.server.state.core.outputs[OUT].frames_rendered;
    let before = rendered(&f);
    f.run_for(Duration::from_millis(200));
    assert_eq!(rendered(&f), before, "nothing rendered while idle");
    assert!(matches!(
        f.server.state.core.outputs[OUT].redraw,
        RedrawState::Idle
    ));
}

#[test]
fn outputs_are_laid_out_left_to_right() {
    let mut f = Fixture::with_outputs(&[
        DEFAULT_OUTPUT,
        VirtualOutput {
            size: (800, 600),
            refresh_mhz: 30_000,
            scale: 1.0,
            position: None,
        },
    ]);
    let name = f.add_output(VirtualOutput {
        size: (640, 480),
        refresh_mhz: 60_000,
        scale: 2.0,
        position: None,
    });
    assert_eq!(name, "HEADLESS-3");
    let geometry: Vec<_> = ["HEADLESS-1", "HEADLESS-2", "HEADLESS-3"]
        .iter()
        .map(|n| {
            let o = f.server.state.core.output_by_name(n).unwrap();
            f.server.state.core.space.output_geometry(&o).unwrap()
        })
        .map(|g| (g.loc.x, g.loc.y, g.size.w, g.size.h))
        .collect();
    assert_eq!(
        geometry,
        vec![(0, 0, 1280, 720), (1280, 0, 800, 600), (2080, 0, 320, 240)]
    );
    let shot = f.screenshot("HEADLESS-3");
    assert_eq!((shot.width(), shot.height()), (640, 480));
}

#[test]
fn bad_shm_pool_gets_a_protocol_error_and_others_keep_working() {
    let mut f = Fixture::new();
    let good = f.add_client();
    f.map_window(good, 100, 80, GREEN);
    let bad = f.add_client();
    let cl = f.client(bad);
    let fd = rustix::fs::memfd_create("bad", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, 4096).unwrap();
    let pool = cl
        .shm
        .create_pool(std::os::fd::AsFd::as_fd(&fd), 4096, &cl.qh, ());
    // 100×100 at offset 4000 does not fit in a 4096-byte pool.
    let _buffer = pool.create_buffer(4000, 100, 100, 400, wl_shm::Format::Argb8888, &cl.qh, ());
    let got_error = f.wait_until(Duration::from_secs(2), |f| {
        f.client(bad).protocol_error().is_some()
    });
    assert!(got_error, "no protocol error for an out-of-bounds buffer");
    let (code, interface, message) = f.client(bad).protocol_error().unwrap();
    assert_eq!(interface, "wl_shm_pool");
    assert_eq!(code, wl_shm::Error::InvalidStride as u32, "{message}");
    // The well-behaved client is untouched.
    f.roundtrip(good);
    f.settle();
    assert_eq!(rgb(&f.screenshot(OUT), 640, 360), 0x20c040);
    assert_eq!(f.windows().len(), 1);
}

#[test]
fn a_client_writing_garbage_is_disconnected_and_others_keep_working() {
    let mut f = Fixture::new();
    let good = f.add_client();
    f.map_window(good, 100, 80, GREEN);
    let (server_end, mut garbage) = UnixStream::pair().unwrap();
    f.server
        .state
        .core
        .display_handle
        .insert_client(server_end, Arc::new(ClientState::default()))
        .unwrap();
    // A message header claiming object 1, opcode 0x7777 and a bogus size, then junk.
    let mut junk = vec![1u8, 0, 0, 0, 0x77, 0x77, 0xff, 0xff];
    junk.extend(std::iter::repeat_n(0xa5u8, 120));
    garbage.write_all(&junk).unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let mut closed = false;
    let mut buf = [0u8; 4096];
    for _ in 0..500 {
        f.dispatch();
        match garbage.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {} // e.g. the wl_display.error event
            Err(_) => {}
        }
    }
    assert!(
        closed,
        "the compositor did not disconnect the garbage client"
    );
    f.roundtrip(good);
    f.settle();
    assert_eq!(rgb(&f.screenshot(OUT), 640, 360), 0x20c040);
}
