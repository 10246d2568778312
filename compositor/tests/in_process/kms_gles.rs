//! The KMS backend compositing with GLES on vkms (Mesa's kms_swrast: llvmpipe on GBM), in
//! the VM with `vm/test --dynamic --mesa` (scripts/test's vm-sync stage). What is on screen
//! is read back as vkms CRCs and compared with the same pixels put on screen by a plain
//! legacy modeset, as in `kms.rs`, and the GLES frame is compared with pixman's.
#![allow(clippy::disallowed_macros)]

use std::{os::fd::AsFd, path::Path, time::Duration};

use lockstep_render::heap::{DumbNode, HeapAllocator, SourceConfig};
use lockstep_render::Frame;
use lockstep_vm_support::crc::{Crc, CrcReader};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1::Flags,
    zwp_linux_dmabuf_feedback_v1::{self, ZwpLinuxDmabufFeedbackV1},
    zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
};

use crate::{
    fixture::{rgb, Fixture},
    kms::{
        crc_now, failed_prepare_steps_fall_back_to_composition, planes, quiesce, reference_crc,
        stats, sync_device, vkms, OUTPUT, XRGB8888,
    },
};

/// lockstep on vkms with GLES, which must be in use (Mesa is packed in the VM: a fallback to
/// pixman there is a failure).
fn gles_on_vkms(path: &Path) -> Fixture {
    let f = Fixture::kms_gles(path);
    let renderer = f.server.state.backend.renderer_name();
    assert!(
        renderer.starts_with("gles (llvmpipe"),
        "GLES did not start on vkms (renderer {renderer}); is Mesa packed (vm/test --mesa)?"
    );
    f
}

/// Dumb buffers of vkms itself: dmabufs from the display's device, which kms_swrast reads.
fn vkms_dumb(path: &Path) -> HeapAllocator {
    HeapAllocator::with_sources([SourceConfig::Dumb(DumbNode::Path(path.to_path_buf()))])
}

/// Largest difference of one colour channel between two pixels.
fn channel_diff(a: u32, b: u32) -> u32 {
    (0..3)
        .map(|i| ((a >> (8 * i)) & 0xff).abs_diff((b >> (8 * i)) & 0xff))
        .max()
        .unwrap_or(0)
}

/// The composited frame the display scans out now, read from its buffer.
fn scanned_out(f: &mut Fixture) -> Frame {
    crate::kms::kms_backend(f)
        .scanned_out_frame(OUTPUT)
        .expect("read the frame")
        .expect("a composited frame on the primary plane")
}

/// The largest per-channel difference between two frames of the same size.
fn worst_difference(a: &Frame, b: &Frame) -> u32 {
    assert_eq!((a.width(), a.height()), (b.width(), b.height()));
    let mut worst = 0;
    for y in 0..a.height() as i32 {
        for x in 0..a.width() as i32 {
            worst = worst.max(channel_diff(rgb(a, x, y), rgb(b, x, y)));
        }
    }
    worst
}

/// One 300x200 window on vkms with `f`'s renderer: the frame the display scans out, and
/// its CRC.
fn window_frame(mut f: Fixture) -> (Frame, Crc) {
    let c = f.add_client();
    let _top = f.map_window(c, 300, 200, 0xff20_c040);
    quiesce(&mut f);
    crate::kms::assert_composited(&mut f);
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let on_screen = crc_now(&mut crcs);
    drop(crcs);
    let frame = scanned_out(&mut f);
    let (w, h) = (frame.width() as i32, frame.height() as i32);
    assert_eq!(rgb(&frame, w / 2, h / 2), 0x20c040, "the window is centred");
    (frame, on_screen)
}

/// GLES composites a window into the GBM buffer the display shows (its vkms CRC is that of
/// the buffer's pixels), and the picture is pixman's, within llvmpipe's rounding (GL allows
/// one unit: a clear rounds 0.12 × 255 up, a blended quad may truncate it).
#[test]
fn kms_gles_composited_window_is_on_screen_and_matches_pixman() {
    let Some(path) = vkms("kms_gles_composited_window_is_on_screen") else {
        return;
    };
    let (gles, gles_crc) = window_frame(gles_on_vkms(&path));
    assert_eq!(
        reference_crc(&path, &gles),
        gles_crc,
        "what is on screen is the GBM buffer GLES drew"
    );
    let (pixman, pixman_crc) = window_frame(Fixture::kms(&path));
    assert_eq!(reference_crc(&path, &pixman), pixman_crc);
    let worst = worst_difference(&gles, &pixman);
    assert!(worst <= 1, "GLES and pixman frames differ by up to {worst}");
}

/// `renderer = "auto"` declines GLES that runs in software (llvmpipe here): pixman is far
/// faster and reads more client buffers.
#[test]
fn kms_auto_renderer_prefers_pixman_to_software_gles() {
    let Some(path) = vkms("kms_auto_renderer_prefers_pixman_to_software_gles") else {
        return;
    };
    drop(gles_on_vkms(&path)); // GLES works here, and is llvmpipe:
    let f = Fixture::kms_with_config(&path, crate::fixture::floating_config());
    assert_eq!(f.server.state.backend.renderer_name(), "pixman");
}

#[test]
fn kms_gles_failed_prepare_steps_fall_back_to_composition() {
    let test = "kms_gles_failed_prepare_steps_fall_back_to_composition";
    let (Some(path), Some(device)) = (vkms(test), sync_device(test)) else {
        return;
    };
    let f = gles_on_vkms(&path);
    failed_prepare_steps_fall_back_to_composition(f, &device, vkms_dumb(&path));
}

/// A dmabuf kms_swrast cannot read (dma-heap: another exporter than vkms) is refused when
/// the client creates its wl_buffer (without the check lockstep died of a segfault in Mesa
/// 22.3 here, measured), and lockstep goes on: a same-device dmabuf window under an shm window is composited by GLES and on screen.
#[test]
fn kms_gles_refuses_foreign_dmabufs_and_composites_same_device_ones() {
    let test = "kms_gles_refuses_foreign_dmabufs";
    let (Some(path), Some(device)) = (vkms(test), sync_device(test)) else {
        return;
    };
    let mut f = gles_on_vkms(&path);

    // A dma-heap buffer: refused with invalid_wl_buffer (create_immed), only this client.
    let bad = f.add_client();
    let dmabuf: ZwpLinuxDmabufV1 = crate::kms::bind(&mut f, bad, "zwp_linux_dmabuf_v1", 3);
    let heap = HeapAllocator::only(lockstep_render::heap::Source::DmaHeap)
        .allocate(64, 64, lockstep_render::heap::Fourcc::XRGB8888)
        .expect("dma-heap buffer");
    {
        let cl = f.client(bad);
        let params = dmabuf.create_params(&cl.qh, ());
        let fd = heap.try_clone_fd().expect("dup");
        params.add(fd.as_fd(), 0, 0, heap.layout().stride, 0, 0);
        let _buffer = params.create_immed(64, 64, XRGB8888, Flags::empty(), &cl.qh, ());
    }
    let _ = f.client(bad).conn.flush();
    f.wait_until(Duration::from_secs(3), |f| {
        f.client(bad).protocol_error().is_some()
    });
    let error = f.client(bad).protocol_error();
    assert!(
        matches!(&error, Some((_, interface, _)) if interface == "zwp_linux_buffer_params_v1"),
        "{error:?}"
    );

    // A vkms dumb buffer in a 400x300 window, then an shm window over part of it (so the
    // dmabuf is composited, not put on the overlay plane).
    let c = f.add_client();
    let mut client = crate::kms::dmabuf_client(&mut f, c, &device, Some((400, 300)));
    client.alloc = vkms_dumb(&path);
    let (_dumb, buffer) = client.buffer(&mut f, c, 0xff30_60c0);
    client.commit_ready(&buffer, 1);
    f.roundtrip(c);
    assert!(
        f.wait_until(Duration::from_secs(3), |f| !f.windows().is_empty()),
        "the dmabuf window never mapped"
    );
    let other = f.add_client();
    let _top = f.map_window(other, 120, 90, 0xffc0_4020);
    quiesce(&mut f);
    assert_eq!(f.client(c).protocol_error(), None);
    let report = planes(&f);
    assert!(
        report[0].starts_with("primary: composited frame")
            && report.iter().all(|p| !p.starts_with("overlay: surface")),
        "{report:?}"
    );
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let on_screen = crc_now(&mut crcs);
    drop(crcs);
    let frame = scanned_out(&mut f);
    let windows = f.windows();
    let dmabuf_window = windows
        .iter()
        .find(|w| w.size == (400, 300))
        .expect("the dmabuf window");
    let (x, y) = dmabuf_window.position;
    assert_eq!(rgb(&frame, x + 5, y + 5), 0x3060c0, "{windows:?}");
    assert!(
        !client
            .release
            .is_signalled(lockstep_sync::Point(1))
            .unwrap_or(false),
        "the current buffer is not released"
    );
    drop(f);
    assert_eq!(reference_crc(&path, &frame), on_screen);
}

/// The three kinds of client buffer on one GLES output, as a desktop has them: a same-device
/// dmabuf window composited under an shm window, then a fullscreen dmabuf client scanned out
/// directly over both, then gone again. Release points: a composited buffer's is signalled
/// only once it is no longer current (its frame was complete before its commit: the VM's
/// Mesa has no native fences), a scanned-out buffer's not before the flip that replaces it.
#[test]
fn kms_gles_shm_dmabuf_and_direct_scanout_clients_together() {
    use lockstep_sync::Point;
    let test = "kms_gles_shm_dmabuf_and_direct_scanout";
    let (Some(path), Some(device)) = (vkms(test), sync_device(test)) else {
        return;
    };
    let mut f = gles_on_vkms(&path);
    let c = f.add_client();
    let mut window = crate::kms::dmabuf_client(&mut f, c, &device, Some((400, 300)));
    window.alloc = vkms_dumb(&path);
    let (_b1, buffer1) = window.buffer(&mut f, c, 0xff30_60c0);
    window.commit_ready(&buffer1, 1);
    f.roundtrip(c);
    assert!(
        f.wait_until(Duration::from_secs(3), |f| !f.windows().is_empty()),
        "the dmabuf window never mapped"
    );
    let s = f.add_client();
    let _shm = f.map_window(s, 120, 90, 0xffc0_4020);
    quiesce(&mut f);
    let frame = scanned_out(&mut f);
    let windows = f.windows();
    let at = |size: (i32, i32)| {
        windows
            .iter()
            .find(|w| w.size == size)
            .map(|w| w.position)
            .unwrap_or_else(|| panic!("no {size:?} window in {windows:?}"))
    };
    let ((dx, dy), (sx, sy)) = (at((400, 300)), at((120, 90)));
    assert_eq!(rgb(&frame, dx + 395, dy + 295), 0x3060c0, "dmabuf window");
    assert_eq!(rgb(&frame, sx + 5, sy + 5), 0xc04020, "shm window");
    assert!(planes(&f)[0].starts_with("primary: composited frame"));

    // A new buffer for the dmabuf window: the old one is released once it is replaced.
    let (_b2, buffer2) = window.buffer(&mut f, c, 0xff20_a020);
    assert!(
        !window.release.is_signalled(Point(1)).unwrap_or(false),
        "not released while current"
    );
    window.commit_ready(&buffer2, 2);
    f.roundtrip(c);
    quiesce(&mut f);
    assert!(
        window.release.is_signalled(Point(1)).expect("query"),
        "buffer 1 released after it was replaced"
    );
    assert!(!window.release.is_signalled(Point(2)).unwrap_or(false));
    assert_eq!(rgb(&scanned_out(&mut f), dx + 395, dy + 295), 0x20a020);

    // A fullscreen client over both: scanned out directly, not composited.
    let direct_before = stats(&mut f).direct;
    let g = f.add_client();
    let mut game = crate::kms::fullscreen_client(&mut f, g, &device);
    game.alloc = vkms_dumb(&path);
    let (_g1, game1) = game.buffer(&mut f, g, 0xff80_8000);
    game.commit_ready(&game1, 1);
    f.roundtrip(g);
    let direct = f.wait_until(Duration::from_secs(5), |f| {
        planes(f)[0].starts_with("primary: surface")
    });
    assert!(
        direct,
        "the fullscreen dmabuf is scanned out: {:?}",
        planes(&f)
    );
    quiesce(&mut f);
    assert!(stats(&mut f).direct > direct_before);
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let on_screen = crc_now(&mut crcs);
    drop(crcs);
    assert!(
        !game.release.is_signalled(Point(1)).unwrap_or(false),
        "held while on screen"
    );
    // It goes: its buffer is released by the flip that replaces it, and the windows are
    // composited again.
    game.top.toplevel.destroy();
    game.top.surface.destroy();
    f.roundtrip(g);
    let back = f.wait_until(Duration::from_secs(5), |f| {
        planes(f)[0].starts_with("primary: composited frame") && !pipeline_busy(f)
    });
    assert!(back, "composited again: {:?}", planes(&f));
    assert!(
        game.release.is_signalled(Point(1)).expect("query"),
        "released after the replacing flip"
    );
    let frame = scanned_out(&mut f);
    assert_eq!(rgb(&frame, dx + 395, dy + 295), 0x20a020);
    assert_eq!(rgb(&frame, sx + 5, sy + 5), 0xc04020);
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let composited = crc_now(&mut crcs);
    drop(crcs);
    assert_ne!(
        on_screen, composited,
        "the fullscreen client is gone from the screen"
    );
    assert_eq!(f.client(c).protocol_error(), None);
    assert_eq!(f.client(g).protocol_error(), None);
    drop(f);
    // The GLES frame is what the screen showed, pixel for pixel (lockstep must be gone).
    assert_eq!(reference_crc(&path, &frame), composited);
}

fn pipeline_busy(f: &mut Fixture) -> bool {
    crate::kms::pipeline(f).flip_pending()
}

/// Benchmark (in the VM: `vm/test --dynamic --mesa -p lockstep --test in_process -t 600
/// --test-timeout 600 -- --ignored kms_composition_costs --nocapture`): time to composite a
/// frame (rendering until the frame is complete, as the backend measures it) with pixman and
/// with GLES, for one and for ten 250x250 windows (weston-simple-shm's size) that all draw a
/// new shm buffer every frame.
#[test]
#[ignore = "benchmark: run in the VM with --ignored"]
fn kms_composition_costs() {
    let Some(path) = vkms("kms_composition_costs") else {
        return;
    };
    const FRAMES: u32 = 60;
    for gles in [false, true] {
        for count in [1, 10] {
            let mut f = if gles {
                gles_on_vkms(&path)
            } else {
                Fixture::kms(&path)
            };
            let name = f.server.state.backend.renderer_name();
            let c = f.add_client();
            let tops: Vec<_> = (0..count)
                .map(|i| f.map_window(c, 250, 250, 0xff10_2030 + i * 0x0010_1010))
                .collect();
            quiesce(&mut f);
            let buffers: Vec<_> = (0..2u32)
                .map(|i| {
                    f.client(c)
                        .shm_buffer(250, 250, 0xff00_0000 | (0x40 + i * 0x80) << 8)
                })
                .collect();
            let before = stats(&mut f).composited;
            let time_before = crate::kms::kms_backend(&mut f).composite_time();
            for i in 0..FRAMES {
                for top in &tops {
                    top.surface.attach(Some(&buffers[i as usize % 2]), 0, 0);
                    top.surface.damage_buffer(0, 0, 250, 250);
                    top.surface.commit();
                }
                let _ = f.client(c).conn.flush();
                let target = before + u64::from(i) + 1;
                let shown = f.wait_until(Duration::from_secs(10), |f| {
                    stats(f).composited >= target && !crate::kms::pipeline(f).flip_pending()
                });
                assert!(shown, "frame {i} never shown");
                f.client(c).pump();
            }
            let frames = stats(&mut f).composited - before;
            let time = crate::kms::kms_backend(&mut f).composite_time() - time_before;
            eprintln!(
                "BENCH kms composition {name}, {count} x 250x250 windows, all damaged: {:?} per frame ({frames} frames)",
                time / frames as u32
            );
            drop(tops);
            drop(f);
        }
    }
}

/// What a surface's zwp_linux_dmabuf_feedback_v1 said: the main device, and per `done` the
/// tranches as (target device, flags).
#[derive(Debug, Default)]
struct FeedbackLog {
    main_device: Option<libc::dev_t>,
    tranches: Vec<(libc::dev_t, u32)>,
    current: (libc::dev_t, u32),
    done: Vec<Vec<(libc::dev_t, u32)>>,
}

type SharedLog = std::sync::Arc<std::sync::Mutex<FeedbackLog>>;

fn dev_from(bytes: &[u8]) -> libc::dev_t {
    let mut raw = [0u8; 8];
    raw[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
    libc::dev_t::from_ne_bytes(raw)
}

impl wayland_client::Dispatch<ZwpLinuxDmabufFeedbackV1, SharedLog> for crate::client::ClientData {
    fn event(
        _: &mut Self,
        _: &ZwpLinuxDmabufFeedbackV1,
        event: zwp_linux_dmabuf_feedback_v1::Event,
        log: &SharedLog,
        _: &wayland_client::Connection,
        _: &wayland_client::QueueHandle<Self>,
    ) {
        use zwp_linux_dmabuf_feedback_v1::Event;
        let mut log = log.lock().unwrap();
        match event {
            Event::MainDevice { device } => log.main_device = Some(dev_from(&device)),
            Event::TrancheTargetDevice { device } => log.current.0 = dev_from(&device),
            Event::TrancheFlags { flags } => {
                log.current.1 = match flags {
                    wayland_client::WEnum::Value(f) => f.bits(),
                    wayland_client::WEnum::Unknown(v) => v,
                }
            }
            Event::TrancheDone => {
                let tranche = std::mem::take(&mut log.current);
                log.tranches.push(tranche);
            }
            Event::Done => {
                let tranches = std::mem::take(&mut log.tranches);
                log.done.push(tranches);
            }
            _ => {}
        }
    }
}

/// Per-surface dmabuf feedback on KMS: the main device is the display's own node (vkms has
/// no render node, and kms_swrast reads only its buffers); the topmost window gets a scanout
/// tranche (the display device, flag scanout) first, for the overlay plane while it is a
/// window inside the output and for the primary plane while it is fullscreen; a window with
/// another one above it gets the default feedback only.
#[test]
fn kms_gles_dmabuf_feedback_adds_a_scanout_tranche_while_fullscreen() {
    let Some(path) = vkms("kms_gles_dmabuf_feedback") else {
        return;
    };
    let vkms_dev = lockstep::backend::kms_feedback::node_dev(&path).expect("vkms dev_t");
    let mut f = gles_on_vkms(&path);
    let c = f.add_client();
    let dmabuf: ZwpLinuxDmabufV1 = crate::kms::bind(&mut f, c, "zwp_linux_dmabuf_v1", 4);
    let top = f.map_window(c, 300, 200, 0xff20_c040);
    let log = SharedLog::default();
    {
        let cl = f.client(c);
        let _feedback = dmabuf.get_surface_feedback(&top.surface, &cl.qh, log.clone());
    }
    f.roundtrip(c);
    // Per-surface feedback is worked out after each frame of the output, and only for
    // surfaces that asked for it: a new frame (as a real client's next commit makes).
    let buffer = f.client(c).shm_buffer(300, 200, 0xff20_c040);
    top.surface.attach(Some(&buffer), 0, 0);
    top.surface.damage_buffer(0, 0, 300, 200);
    top.surface.commit();
    f.roundtrip(c);
    quiesce(&mut f);
    f.roundtrip(c);
    let last = |log: &SharedLog| log.lock().unwrap().done.last().cloned();
    assert_eq!(log.lock().unwrap().main_device, Some(vkms_dev));
    assert!(
        crate::kms::pipeline(&mut f).has_overlay_plane(),
        "the VM's vkms has an overlay"
    );
    let scanout = zwp_linux_dmabuf_feedback_v1::TrancheFlags::Scanout.bits();
    let with_scanout = Some(vec![(vkms_dev, scanout), (vkms_dev, 0)]);
    assert_eq!(
        last(&log),
        with_scanout,
        "topmost window: overlay tranche {log:?}"
    );
    // Another window above it: the default feedback only.
    let other = f.add_client();
    let above = f.map_window(other, 200, 150, 0xff80_2020);
    quiesce(&mut f);
    f.roundtrip(c);
    assert_eq!(last(&log), Some(vec![(vkms_dev, 0)]), "covered: {log:?}");
    above.toplevel.destroy();
    above.surface.destroy();
    f.roundtrip(other);
    quiesce(&mut f);
    f.roundtrip(c);
    assert_eq!(last(&log), with_scanout, "topmost again: {log:?}");

    // Fullscreen: a scanout tranche first.
    let resize = |f: &mut Fixture, fullscreen: bool| {
        if fullscreen {
            top.toplevel.set_fullscreen(None);
        } else {
            top.toplevel.unset_fullscreen();
        }
        f.commit_and_ack(c, &top);
        let (w, h) = if fullscreen { (1024, 768) } else { (300, 200) };
        let buffer = f.client(c).shm_buffer(w, h, 0xff20_c040);
        top.surface.attach(Some(&buffer), 0, 0);
        top.surface.damage_buffer(0, 0, w, h);
        top.surface.commit();
        f.roundtrip(c);
        quiesce(f);
        f.roundtrip(c);
    };
    resize(&mut f, true);
    assert_eq!(
        last(&log),
        with_scanout,
        "fullscreen: primary tranche {log:?}"
    );
    resize(&mut f, false);
    assert_eq!(
        last(&log),
        with_scanout,
        "a window again: overlay tranche {log:?}"
    );
    assert_eq!(f.client(c).protocol_error(), None);
}

/// With GLES, a mode change (output management) and an output turned off and on get frame
/// buffers of the new size that the display scans out: composited frames in 800x600 reach
/// the screen, also after the output was off.
#[test]
fn kms_gles_new_mode_and_output_off_and_on_scan_out_the_window() {
    use lockstep_protocols::wlr_output_management::{
        HeadSettings, ModeRequest, ModeState, OutputConfiguration, OutputManagementHandler,
    };
    let Some(path) = vkms("kms_gles_new_mode_and_output_off_and_on") else {
        return;
    };
    let mut f = gles_on_vkms(&path);
    let c = f.add_client();
    let _top = f.map_window(c, 300, 200, 0xff20_c040);
    quiesce(&mut f);
    let refresh = f
        .server
        .state
        .core
        .output_by_name(OUTPUT)
        .expect("output")
        .modes()
        .into_iter()
        .find(|m| (m.size.w, m.size.h) == (800, 600))
        .expect("vkms offers 800x600")
        .refresh;
    let head = |settings: Option<HeadSettings>| OutputConfiguration {
        heads: vec![(OUTPUT.to_string(), settings)],
    };
    let mode = HeadSettings {
        mode: Some(ModeRequest::Advertised(ModeState {
            size: (800, 600),
            refresh_mhz: refresh,
            preferred: false,
        })),
        ..Default::default()
    };
    // What the renderer drew must be what the display scans out: the CRC changes when a new
    // window appears (buffers the display does not scan out would leave it unchanged).
    let check = |f: &mut Fixture, when: &str, argb: u32| {
        let frame = scanned_out(f);
        assert_eq!((frame.width(), frame.height()), (800, 600), "{when}");
        let mut crcs = CrcReader::open_vkms(0).expect("crc");
        let before = crc_now(&mut crcs);
        let _top = f.map_window(c, 200, 150, argb);
        quiesce(f);
        assert_ne!(
            crc_now(&mut crcs),
            before,
            "{when}: the new window reached the screen"
        );
    };
    let state = &mut f.server.state;
    state
        .apply_configuration(&head(Some(mode)))
        .expect("800x600");
    quiesce(&mut f);
    check(&mut f, "new mode", 0xff30_40e0);
    let state = &mut f.server.state;
    state.apply_configuration(&head(None)).expect("off");
    state
        .apply_configuration(&head(Some(HeadSettings::default())))
        .expect("on");
    quiesce(&mut f);
    check(&mut f, "off and on", 0xffe0_4030);
}
