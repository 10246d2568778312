//! No client can take the session down: each test does exactly what a hostile or buggy
//! client did to crash or stall lockstep, and checks that the client gets the protocol's
//! answer while lockstep and its other clients carry on.

use std::{
    os::fd::AsFd,
    sync::{Arc, Mutex},
    time::Duration,
};

use wayland_client::{
    protocol::{wl_region::WlRegion, wl_shm},
    Connection, Dispatch, QueueHandle,
};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1::{self, ZwpLinuxBufferParamsV1},
    zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
};
use wayland_protocols_wlr::screencopy::v1::client::{
    zwlr_screencopy_frame_v1::{self, ZwlrScreencopyFrameV1},
    zwlr_screencopy_manager_v1::ZwlrScreencopyManagerV1,
};

use crate::{
    client::ClientData,
    fixture::{rgb, ClientId, Fixture},
    GREEN, OUT,
};

pub(crate) fn memfd(len: u64) -> std::os::fd::OwnedFd {
    let fd = rustix::fs::memfd_create("robustness", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, len).unwrap();
    fd
}

/// A client whose one window is green, to check that it keeps working.
pub(crate) fn good_client(f: &mut Fixture) -> ClientId {
    let good = f.add_client();
    f.map_window(good, 100, 80, GREEN);
    good
}

pub(crate) fn assert_good_client_unharmed(f: &mut Fixture, good: ClientId) {
    f.roundtrip(good);
    f.settle();
    assert_eq!(rgb(&f.screenshot(OUT), 640, 360), 0x20c040);
    assert_eq!(f.client(good).protocol_error(), None);
}

#[test]
fn shm_pool_resize_to_zero_or_less_is_a_protocol_error_not_a_crash() {
    // smithay 0.7.0 posts an error and then unwraps the size as NonZeroUsize: one request
    // used to panic the whole compositor.
    for size in [0, -4096, i32::MIN] {
        let mut f = Fixture::new();
        let good = good_client(&mut f);
        let bad = f.add_client();
        let cl = f.client(bad);
        let fd = memfd(4096);
        let pool = cl.shm.create_pool(fd.as_fd(), 4096, &cl.qh, ());
        pool.resize(size);
        let got_error = f.wait_until(Duration::from_secs(2), |f| {
            f.client(bad).protocol_error().is_some()
        });
        assert!(got_error, "no protocol error for resize({size})");
        let (code, interface, message) = f.client(bad).protocol_error().unwrap();
        assert_eq!(interface, "wl_shm_pool", "{message}");
        assert_eq!(code, wl_shm::Error::InvalidFd as u32, "{message}");
        assert_good_client_unharmed(&mut f, good);
    }
}

#[test]
fn shm_pool_shrink_is_a_protocol_error_and_growing_works() {
    let mut f = Fixture::new();
    let good = good_client(&mut f);
    let c = f.add_client();
    let cl = f.client(c);
    let fd = memfd(8192);
    let pool = cl.shm.create_pool(fd.as_fd(), 4096, &cl.qh, ());
    pool.resize(8192);
    f.roundtrip(c);
    assert_eq!(
        f.client(c).protocol_error(),
        None,
        "growing a pool is allowed"
    );
    pool.resize(4096);
    let got_error = f.wait_until(Duration::from_secs(2), |f| {
        f.client(c).protocol_error().is_some()
    });
    assert!(got_error, "no protocol error for shrinking a pool");
    let (code, interface, _) = f.client(c).protocol_error().unwrap();
    assert_eq!(
        (code, interface.as_str()),
        (wl_shm::Error::InvalidFd as u32, "wl_shm_pool")
    );
    assert_good_client_unharmed(&mut f, good);
}

/// What a `zwp_linux_buffer_params_v1.create` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Created {
    Created,
    Failed,
}

#[derive(Clone, Default)]
pub(crate) struct ParamsAnswer(pub(crate) Arc<Mutex<Option<Created>>>);

impl Dispatch<ZwpLinuxBufferParamsV1, ParamsAnswer> for ClientData {
    fn event(
        _: &mut Self,
        _: &ZwpLinuxBufferParamsV1,
        event: zwp_linux_buffer_params_v1::Event,
        answer: &ParamsAnswer,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let created = match event {
            zwp_linux_buffer_params_v1::Event::Created { .. } => Created::Created,
            zwp_linux_buffer_params_v1::Event::Failed => Created::Failed,
            _ => return,
        };
        *answer.0.lock().unwrap() = Some(created);
    }

    wayland_client::event_created_child!(ClientData, ZwpLinuxBufferParamsV1, [
        zwp_linux_buffer_params_v1::EVT_CREATED_OPCODE => (wayland_client::protocol::wl_buffer::WlBuffer, ()),
    ]);
}

pub(crate) const ARGB8888: u32 = u32::from_le_bytes(*b"AR24");

/// Client `c`'s zwp_linux_dmabuf_v1 (version 3).
pub(crate) fn bind_dmabuf(f: &mut Fixture, c: ClientId) -> ZwpLinuxDmabufV1 {
    let (global, _) = *f
        .client(c)
        .data
        .globals
        .get("zwp_linux_dmabuf_v1")
        .expect("linux-dmabuf is offered");
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    registry.bind(global, 3, &cl.qh, ())
}

/// Creates a dmabuf from `fd` as one plane with `stride`, and returns what the compositor
/// answered.
fn create_dmabuf(
    f: &mut Fixture,
    c: ClientId,
    fd: std::os::fd::BorrowedFd<'_>,
    stride: u32,
    (w, h): (i32, i32),
) -> Created {
    let dmabuf = bind_dmabuf(f, c);
    let cl = f.client(c);
    let answer = ParamsAnswer::default();
    let params = dmabuf.create_params(&cl.qh, answer.clone());
    params.add(fd, 0, 0, stride, 0, 0);
    params.create(w, h, ARGB8888, zwp_linux_buffer_params_v1::Flags::empty());
    let answered = f.wait_until(Duration::from_secs(2), |_| {
        answer.0.lock().unwrap().is_some()
    });
    assert!(answered, "no created/failed event");
    let got = answer.0.lock().unwrap().unwrap();
    got
}

/// A real dmabuf (dma-heap or udmabuf: the VM has them, the host has not). A skip is
/// printed for people to see.
#[allow(clippy::disallowed_macros)]
pub(crate) fn heap_dmabuf(test: &str) -> Option<lockstep_render::heap::HeapBuffer> {
    use lockstep_render::heap::{Fourcc as HeapFourcc, HeapAllocator};
    match HeapAllocator::new().allocate(64, 16, HeapFourcc::ARGB8888) {
        Ok(buffer) => Some(buffer),
        Err(err) => {
            assert!(
                std::env::var_os("LOCKSTEP_REQUIRE_KERNEL").is_none_or(|v| v != "1"),
                "{test}: no dmabuf allocator: {err}"
            );
            eprintln!("SKIP {test}: no dmabuf allocator (dma-heap, udmabuf): {err}");
            None
        }
    }
}

#[test]
fn dmabuf_whose_stride_is_smaller_than_a_row_is_refused() {
    let test = "dmabuf_whose_stride_is_smaller_than_a_row_is_refused";
    let Some(heap) = heap_dmabuf(test) else {
        return;
    };
    let stride = heap.layout().stride;
    let fd = heap.try_clone_fd().expect("dup");
    let mut f = Fixture::new();
    let good = good_client(&mut f);
    let c = f.add_client();
    // The buffer with its real layout is accepted: the refusals below are about the stride.
    assert_eq!(
        create_dmabuf(&mut f, c, fd.as_fd(), stride, (64, 16)),
        Created::Created
    );
    // smithay 0.7 accepts these (offset + stride × height fits in the dmabuf), and pixman
    // then reads 64 KiB per row from a 4 KiB buffer.
    assert_eq!(
        create_dmabuf(&mut f, c, fd.as_fd(), 4, (16384, 1)),
        Created::Failed,
        "stride 4 for a 16384-pixel row"
    );
    assert_eq!(
        create_dmabuf(&mut f, c, fd.as_fd(), 4, (64, 16)),
        Created::Failed,
        "stride 4 for 64-pixel rows"
    );
    assert_eq!(
        create_dmabuf(&mut f, c, fd.as_fd(), stride - 4, (64, 16)),
        Created::Failed,
        "stride one pixel short of a row"
    );
    assert_eq!(f.client(c).protocol_error(), None);
    assert_good_client_unharmed(&mut f, good);
}

/// What a screencopy frame answered.
#[derive(Clone, Default)]
struct FrameEvents(Arc<Mutex<Vec<&'static str>>>);

impl Dispatch<ZwlrScreencopyFrameV1, FrameEvents> for ClientData {
    fn event(
        _: &mut Self,
        _: &ZwlrScreencopyFrameV1,
        event: zwlr_screencopy_frame_v1::Event,
        events: &FrameEvents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let name = match event {
            zwlr_screencopy_frame_v1::Event::Ready { .. } => "ready",
            zwlr_screencopy_frame_v1::Event::Failed => "failed",
            zwlr_screencopy_frame_v1::Event::BufferDone => "buffer_done",
            _ => return,
        };
        events.0.lock().unwrap().push(name);
    }
}

wayland_client::delegate_noop!(ClientData: ignore ZwlrScreencopyManagerV1);

/// The client's screencopy manager (v3) and its first output.
fn screencopy_manager(
    f: &mut Fixture,
    c: ClientId,
) -> (
    ZwlrScreencopyManagerV1,
    wayland_client::protocol::wl_output::WlOutput,
) {
    let (global, _) = f.client(c).data.globals["zwlr_screencopy_manager_v1"];
    let cl = f.client(c);
    let output = cl.output.clone().expect("an output");
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    (registry.bind(global, 3, &cl.qh, ()), output)
}

/// An XRGB8888 shm buffer the size of the default 1280×720 output (a screencopy target).
fn output_sized_buffer(
    cl: &mut crate::client::TestClient,
) -> wayland_client::protocol::wl_buffer::WlBuffer {
    let fd = memfd(1280 * 720 * 4);
    let pool = cl.shm.create_pool(fd.as_fd(), 1280 * 720 * 4, &cl.qh, ());
    pool.create_buffer(0, 1280, 720, 1280 * 4, wl_shm::Format::Xrgb8888, &cl.qh, ())
}

#[test]
fn waiting_screencopies_are_bounded_per_client_and_dropped_with_their_frames() {
    use lockstep::handlers::screencopy::MAX_PENDING_PER_CLIENT;
    let mut f = Fixture::new();
    let good = good_client(&mut f);
    let c = f.add_client();
    let (manager, output) = screencopy_manager(&mut f, c);
    let requests = MAX_PENDING_PER_CLIENT + 4;
    let mut frames = Vec::new();
    for _ in 0..requests {
        let cl = f.client(c);
        let events = FrameEvents::default();
        let frame = manager.capture_output(0, &output, &cl.qh, events.clone());
        frames.push((frame, events));
    }
    f.roundtrip(c);
    // One 1280×720 XRGB8888 shm buffer is enough for all of them (each only waits).
    let cl = f.client(c);
    let buffer = output_sized_buffer(cl);
    for (frame, _) in &frames {
        frame.copy_with_damage(&buffer);
    }
    f.roundtrip(c);
    let failed = |frames: &[(ZwlrScreencopyFrameV1, FrameEvents)]| {
        frames
            .iter()
            .filter(|(_, e)| e.0.lock().unwrap().contains(&"failed"))
            .count()
    };
    assert_eq!(failed(&frames), requests - MAX_PENDING_PER_CLIENT);
    assert_eq!(
        f.server.state.core.pending_screencopies.len(),
        MAX_PENDING_PER_CLIENT
    );
    // Frames the client destroys stop waiting (and let go of the buffer).
    for (frame, _) in frames.iter().take(6) {
        frame.destroy();
    }
    f.roundtrip(c);
    assert_eq!(
        f.server.state.core.pending_screencopies.len(),
        MAX_PENDING_PER_CLIENT - 6
    );
    // The rest are answered at the next damaged frame, from one capture.
    f.map_window(good, 50, 50, GREEN);
    f.settle();
    f.roundtrip(c);
    let ready = frames
        .iter()
        .filter(|(_, e)| e.0.lock().unwrap().contains(&"ready"))
        .count();
    assert_eq!(ready, MAX_PENDING_PER_CLIENT - 6);
    assert!(f.server.state.core.pending_screencopies.is_empty());
    assert_eq!(f.client(c).protocol_error(), None);
}

#[test]
fn waiting_screencopies_of_a_client_that_disconnects_are_dropped() {
    let mut f = Fixture::new();
    let good = good_client(&mut f);
    let c = f.add_client();
    let (manager, output) = screencopy_manager(&mut f, c);
    let cl = f.client(c);
    let frame = manager.capture_output(0, &output, &cl.qh, FrameEvents::default());
    f.roundtrip(c);
    let cl = f.client(c);
    let buffer = output_sized_buffer(cl);
    frame.copy_with_damage(&buffer);
    f.roundtrip(c);
    assert_eq!(f.server.state.core.pending_screencopies.len(), 1);
    // The client goes away.
    let gone = f.clients.remove(c.0);
    drop(gone);
    let pruned = f.wait_until(Duration::from_secs(2), |f| {
        f.server.state.core.pending_screencopies.is_empty()
    });
    assert!(pruned, "the request of a gone client kept waiting");
    assert_good_client_unharmed(&mut f, good);
}

/// One wire message: object, opcode, arguments already encoded.
fn wire(object: u32, opcode: u16, args: &[u8]) -> Vec<u8> {
    let size = (8 + args.len()) as u32;
    let mut m = object.to_le_bytes().to_vec();
    m.extend_from_slice(&((size << 16) | u32::from(opcode)).to_le_bytes());
    m.extend_from_slice(args);
    m
}

/// A wire string: length with the NUL, bytes, NUL, padding to 4.
fn wire_str(s: &str) -> Vec<u8> {
    let mut b = ((s.len() + 1) as u32).to_le_bytes().to_vec();
    b.extend_from_slice(s.as_bytes());
    b.push(0);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    b
}

#[test]
fn a_null_string_where_the_protocol_forbids_one_disconnects_only_that_client() {
    use std::io::{Read, Write};
    // wayland-rs's generated parser unwraps non-nullable strings: one `offer(null)` used to
    // panic the whole compositor (found by lockstep-fuzz).
    let mut f = Fixture::new();
    let good = good_client(&mut f);
    let (name, _) = f.client(good).data.globals["wl_data_device_manager"];
    let (server_end, mut raw) = std::os::unix::net::UnixStream::pair().unwrap();
    f.server
        .state
        .core
        .display_handle
        .insert_client(
            server_end,
            std::sync::Arc::new(lockstep::state::ClientState::default()),
        )
        .unwrap();
    let mut msg = wire(1, 1, &2u32.to_le_bytes()); // wl_display.get_registry -> 2
    let mut bind = name.to_le_bytes().to_vec(); // wl_registry.bind(name, iface, 3, new 3)
    bind.extend(wire_str("wl_data_device_manager"));
    bind.extend(3u32.to_le_bytes());
    bind.extend(3u32.to_le_bytes());
    msg.extend(wire(2, 0, &bind));
    msg.extend(wire(3, 0, &4u32.to_le_bytes())); // create_data_source -> 4
    msg.extend(wire(4, 0, &0u32.to_le_bytes())); // wl_data_source.offer(null)
    raw.write_all(&msg).unwrap();
    raw.set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let mut closed = false;
    let mut buf = [0u8; 4096];
    for _ in 0..500 {
        f.dispatch();
        if let Ok(0) = raw.read(&mut buf) {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "the client that sent a null string was not disconnected"
    );
    assert_good_client_unharmed(&mut f, good);
}

#[test]
fn a_popup_parented_to_itself_is_a_protocol_error_not_a_hang() {
    // smithay 0.7 accepts it and walking to the popup tree's root never ended (100 % CPU
    // forever; found by lockstep-fuzz).
    let mut f = Fixture::new();
    let good = good_client(&mut f);
    let c = f.add_client();
    let cl = f.client(c);
    let surface = cl.compositor.create_surface(&cl.qh, ());
    let xdg = cl.wm_base.get_xdg_surface(&surface, &cl.qh, ());
    let positioner = cl.wm_base.create_positioner(&cl.qh, ());
    positioner.set_size(10, 10);
    positioner.set_anchor_rect(0, 0, 1, 1);
    let _popup = xdg.get_popup(Some(&xdg), &positioner, &cl.qh, ());
    let got_error = f.wait_until(Duration::from_secs(2), |f| {
        f.client(c).protocol_error().is_some()
    });
    assert!(
        got_error,
        "no protocol error for a popup parented to itself"
    );
    let (code, interface, _) = f.client(c).protocol_error().unwrap();
    assert_eq!((code, interface.as_str()), (3, "xdg_popup"));
    assert_good_client_unharmed(&mut f, good);
}

wayland_client::delegate_noop!(ClientData: ignore wayland_protocols_misc::zwp_virtual_keyboard_v1::client::zwp_virtual_keyboard_manager_v1::ZwpVirtualKeyboardManagerV1);
wayland_client::delegate_noop!(ClientData: ignore wayland_protocols_misc::zwp_virtual_keyboard_v1::client::zwp_virtual_keyboard_v1::ZwpVirtualKeyboardV1);

#[test]
fn a_virtual_keyboard_keymap_smaller_than_announced_is_an_error_not_a_sigbus() {
    use wayland_protocols_misc::zwp_virtual_keyboard_v1::client::zwp_virtual_keyboard_manager_v1::ZwpVirtualKeyboardManagerV1;
    // smithay 0.7 let xkbcommon map and read the announced size: a 16-byte memfd announced as
    // 64 KiB killed the compositor with SIGBUS (found by lockstep-fuzz).
    let mut f = Fixture::new();
    let good = good_client(&mut f);
    let c = f.add_client();
    let (name, _) = f.client(c).data.globals["zwp_virtual_keyboard_manager_v1"];
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager: ZwpVirtualKeyboardManagerV1 = registry.bind(name, 1, &cl.qh, ());
    let keyboard = manager.create_virtual_keyboard(&cl.seat, &cl.qh, ());
    let fd = memfd(16);
    keyboard.keymap(1, fd.as_fd(), 64 * 1024);
    let got_error = f.wait_until(Duration::from_secs(2), |f| {
        f.client(c).protocol_error().is_some()
    });
    assert!(got_error, "no protocol error for a short keymap");
    let (code, interface, _) = f.client(c).protocol_error().unwrap();
    assert_eq!((code, interface.as_str()), (0, "zwp_virtual_keyboard_v1"));
    assert_good_client_unharmed(&mut f, good);
}

wayland_client::delegate_noop!(ClientData: ignore WlRegion);

/// How many fds of this process are memfds named `name` (unique per test: tests share the
/// process).
fn open_memfds(name: &str) -> usize {
    let wanted = format!("/memfd:{name} ");
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| format!("{} ", target.display()).starts_with(&wanted))
        .count()
}

/// A `w`×`h` shm buffer from a memfd named `name`.
fn named_shm_buffer(
    f: &mut Fixture,
    c: ClientId,
    name: &str,
    w: i32,
    h: i32,
) -> wayland_client::protocol::wl_buffer::WlBuffer {
    let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, (w * h * 4) as u64).unwrap();
    let cl = f.client(c);
    let pool = cl.shm.create_pool(fd.as_fd(), w * h * 4, &cl.qh, ());
    let buffer = pool.create_buffer(0, w, h, w * 4, wl_shm::Format::Argb8888, &cl.qh, ());
    pool.destroy();
    buffer
}

/// Drops client `c` (the last one added) and waits until lockstep has closed every memfd
/// named `name` it received from it.
fn assert_memfds_released(f: &mut Fixture, c: ClientId, name: &str) {
    assert_eq!(c.0, f.clients.len() - 1, "drop the newest client only");
    drop(f.clients.pop());
    let released = f.wait_until(Duration::from_secs(5), |_| open_memfds(name) == 0);
    assert!(
        released,
        "lockstep still holds {} shm pool(s) of a client that is gone",
        open_memfds(name)
    );
}

#[test]
fn a_subsurface_placed_relative_to_itself_is_a_protocol_error_and_frees_its_buffers() {
    // smithay 0.7 panicked inside the parent's surface lock; the poisoned lock made the
    // client's surfaces, buffers and pools leak when it was disconnected (found by
    // lockstep-fuzz as an fd leak).
    let name = "robustness-subsurface-self";
    for place_above in [true, false] {
        let mut f = Fixture::new();
        let good = good_client(&mut f);
        let c = f.add_client();
        let parent_buffer = named_shm_buffer(&mut f, c, name, 20, 20);
        let child_buffer = named_shm_buffer(&mut f, c, name, 10, 10);
        let cl = f.client(c);
        let parent = cl.compositor.create_surface(&cl.qh, ());
        let (child, sub) = cl.subsurface(&parent);
        child.attach(Some(&child_buffer), 0, 0);
        child.commit();
        parent.attach(Some(&parent_buffer), 0, 0);
        parent.commit();
        f.roundtrip(c);
        assert!(open_memfds(name) >= 2, "the test's pools reached lockstep");

        if place_above {
            sub.place_above(&child);
        } else {
            sub.place_below(&child);
        }
        let got_error = f.wait_until(Duration::from_secs(2), |f| {
            f.client(c).protocol_error().is_some()
        });
        assert!(
            got_error,
            "no protocol error for a sub-surface placed next to itself"
        );
        let (code, interface, message) = f.client(c).protocol_error().unwrap();
        assert_eq!(
            (code, interface.as_str()),
            (0, "wl_subsurface"),
            "{message}"
        );
        assert_memfds_released(&mut f, c, name);
        assert_good_client_unharmed(&mut f, good);
    }
}

#[test]
fn negative_damage_and_region_rectangles_are_ignored_and_the_window_still_shows() {
    // smithay 0.7's debug assertions panicked on them inside the surface's lock (the same leak
    // as above); the protocol has no error for them, and wlroots ignores them too.
    let name = "robustness-negative-damage";
    let mut f = Fixture::new();
    let good = good_client(&mut f);
    let c = f.add_client();
    let buffer = named_shm_buffer(&mut f, c, name, 20, 20);
    let cl = f.client(c);
    let surface = cl.compositor.create_surface(&cl.qh, ());
    let region = cl.compositor.create_region(&cl.qh, ());
    region.add(0, 0, -5, 10);
    region.subtract(0, 0, 10, i32::MIN);
    region.add(0, 0, 10, 10);
    surface.set_opaque_region(Some(&region));
    surface.set_input_region(Some(&region));
    surface.attach(Some(&buffer), 0, 0);
    surface.damage(0, 0, -1, 20);
    surface.damage_buffer(0, 0, 20, -2_147_483_647);
    surface.damage_buffer(0, 0, 20, 20);
    surface.commit();
    f.roundtrip(c);
    assert_eq!(f.client(c).protocol_error(), None);
    assert!(open_memfds(name) >= 1, "the test's pool reached lockstep");
    assert_memfds_released(&mut f, c, name);
    assert_good_client_unharmed(&mut f, good);
}

#[test]
fn a_client_holding_too_many_objects_is_disconnected_with_no_memory() {
    // Neither the protocol nor wayland-rs bounds how many objects a client makes; each costs
    // lockstep memory (compositor/src/census.rs).
    let mut f = Fixture::new();
    f.server.state.core.max_objects_per_client = 3000;
    let good = good_client(&mut f);

    // Under the limit: many requests, few objects, no error.
    let busy = f.add_client();
    let cl = f.client(busy);
    let regions: Vec<WlRegion> = (0..2000)
        .map(|_| cl.compositor.create_region(&cl.qh, ()))
        .collect();
    f.roundtrip(busy);
    for round in 0..8 {
        for (i, region) in regions.iter().enumerate().take(1000) {
            region.add(round, i as i32, 1, 1);
        }
        f.roundtrip(busy);
    }
    assert_eq!(f.client(busy).protocol_error(), None);

    // Over it.
    let hoarder = f.add_client();
    for _ in 0..10 {
        let cl = f.client(hoarder);
        for _ in 0..500 {
            cl.compositor.create_region(&cl.qh, ());
        }
        f.dispatch();
    }
    // wl_display.error.no_memory reaches a client as ENOMEM on its connection (libwayland
    // and wayland-rs turn that one error into an I/O error).
    let enomem = |f: &mut Fixture| match f.client(hoarder).conn.flush() {
        Err(wayland_client::backend::WaylandError::Io(e)) => {
            e.raw_os_error() == Some(rustix::io::Errno::NOMEM.raw_os_error())
        }
        _ => false,
    };
    let got_error = f.wait_until(Duration::from_secs(5), enomem);
    assert!(
        got_error,
        "a client with 5,000 objects was not disconnected with no_memory"
    );
    assert_eq!(f.client(busy).protocol_error(), None);
    assert_good_client_unharmed(&mut f, good);
}

#[test]
fn activation_tokens_are_bounded() {
    // smithay keeps every token it is allowed to until it is used; a client looping on
    // get_activation_token grew lockstep without bound (found by lockstep-fuzz).
    use wayland_protocols::xdg::activation::v1::client::xdg_activation_v1::XdgActivationV1;
    let max = lockstep::handlers::xdg_activation::MAX_TOKENS;
    let mut f = Fixture::new();
    let c = f.add_client();
    let (name, _) = f.client(c).data.globals["xdg_activation_v1"];
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let activation: XdgActivationV1 = registry.bind(name, 1, &cl.qh, ());
    for batch in 0..(max / 256 + 2) {
        let cl = f.client(c);
        for _ in 0..256 {
            activation.get_activation_token(&cl.qh, ()).commit();
        }
        f.roundtrip(c);
        let live = f
            .server
            .state
            .core
            .protocols
            .xdg_activation
            .tokens()
            .count();
        assert!(live <= max, "batch {batch}: {live} tokens kept");
    }
    assert_eq!(
        f.server
            .state
            .core
            .protocols
            .xdg_activation
            .tokens()
            .count(),
        max
    );
    assert_eq!(f.client(c).protocol_error(), None);
}
