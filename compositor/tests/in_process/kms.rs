//! The KMS backend on vkms, through the fixture: real clients, lockstep's real server on the
//! KMS backend, and the screen read back as vkms's per-frame CRC. These need vkms and a
//! render node with timeline syncobjs (lockstep's VM): without them they skip with a message,
//! and with `LOCKSTEP_REQUIRE_KERNEL=1` (the VM harness sets it) a missing device fails them.
//!
//! A CRC only says "the same pixels" or "different pixels", so each screen is compared with a
//! reference: the same pixels put on screen afterwards by the VM bench's plain legacy modeset,
//! once lockstep has let go of the device.
#![allow(clippy::disallowed_macros)]

use std::{os::fd::AsFd, path::PathBuf, time::Duration};

use lockstep::backend::Backend;
use lockstep_render::{
    heap::{Fourcc as HeapFourcc, HeapAllocator, HeapBuffer},
    kms::{OutputPipeline, PipelineStats, Step},
    Frame,
};
use lockstep_sync::{DrmDevice, DrmTimeline, NodeKind, Point, SyncDevice, SyncFile};
use lockstep_vm_support::{
    crc::{Crc, CrcReader},
    drm::{DrmNode, NodeKind as VmNodeKind},
    kms as vmkms,
    sw_sync::SwTimeline,
};
use wayland_client::protocol::wl_buffer::WlBuffer;
use wayland_protocols::wp::{
    linux_dmabuf::zv1::client::{
        zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
    },
    linux_drm_syncobj::v1::client::{
        wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1,
        wp_linux_drm_syncobj_surface_v1::WpLinuxDrmSyncobjSurfaceV1,
        wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1,
    },
};

use crate::{
    client::{ClientData, Toplevel},
    fixture::{rgb, ClientId, Fixture},
};

wayland_client::delegate_noop!(ClientData: ignore ZwpLinuxDmabufV1);
wayland_client::delegate_noop!(ClientData: ignore ZwpLinuxBufferParamsV1);

pub(crate) const OUTPUT: &str = "Virtual-1";
pub(crate) const XRGB8888: u32 = u32::from_le_bytes(*b"XR24");

/// vkms's primary node (not kept open: lockstep must be the DRM master), or `None`.
pub(crate) fn vkms(test: &str) -> Option<PathBuf> {
    match DrmNode::find("vkms", VmNodeKind::Primary) {
        Ok(node) => Some(node.path().to_owned()),
        Err(err) => {
            assert!(
                std::env::var_os("LOCKSTEP_REQUIRE_KERNEL").is_none_or(|v| v != "1"),
                "{test}: LOCKSTEP_REQUIRE_KERNEL=1 but there is no vkms: {err}"
            );
            eprintln!("SKIP {test}: no vkms (run it in the VM: scripts/test runs it there)");
            None
        }
    }
}

pub(crate) fn pipeline(f: &mut Fixture) -> &mut OutputPipeline {
    match &mut f.server.state.backend {
        Backend::Kms(kms) => kms.pipeline_mut(OUTPUT).expect("the vkms output"),
        _ => unreachable!("a KMS fixture"),
    }
}

pub(crate) fn stats(f: &mut Fixture) -> PipelineStats {
    pipeline(f).stats()
}

/// What each plane shows, as `lockstep msg outputs --planes` reports it.
pub(crate) fn planes(f: &Fixture) -> Vec<String> {
    match lockstep::ipc::answer(&f.server.state, lockstep::ipc::Request::Outputs) {
        lockstep::ipc::Response::Outputs(outputs) => outputs[0]
            .planes
            .as_ref()
            .expect("the KMS backend reports planes")
            .iter()
            .map(|p| format!("{}: {}", p.kind, p.content))
            .collect(),
        other => panic!("unexpected answer {other:?}"),
    }
}

/// Runs the loop until no redraw or flip is outstanding.
pub(crate) fn quiesce(f: &mut Fixture) {
    f.settle();
    let idle = |f: &mut Fixture| {
        !pipeline(f).flip_pending()
            && matches!(
                f.server.state.core.outputs[OUTPUT].redraw,
                lockstep::frame_clock::RedrawState::Idle
            )
    };
    // Idle twice in a row: a flip event can queue one more redraw.
    let settled = f.wait_until(Duration::from_secs(3), |f| {
        if !idle(f) {
            return false;
        }
        f.dispatch();
        idle(f)
    });
    assert!(settled, "a redraw or page flip never completed");
}

/// The CRC of what is on screen now.
pub(crate) fn crc_now(crcs: &mut CrcReader) -> Crc {
    crcs.current(Duration::from_secs(2)).expect("crc")
}

/// Puts `frame` on screen with a plain legacy modeset (lockstep must be gone) and returns
/// its CRC.
pub(crate) fn reference_crc(path: &PathBuf, frame: &Frame) -> Crc {
    let dev = DrmNode::open(path).expect("open vkms");
    let (crtcs, connectors) = vmkms::resources(&dev).expect("resources");
    let connector = connectors
        .iter()
        .map(|&id| vmkms::connector(&dev, id).expect("connector"))
        .find(|c| !c.writeback)
        .expect("the virtual connector");
    let mode = connector.modes[0];
    let (w, h) = mode.size();
    assert_eq!((w, h), (frame.width(), frame.height()), "the same mode");
    let mut buffer = vmkms::DumbBuffer::new(&dev, w, h, vmkms::Fourcc(XRGB8888)).expect("dumb");
    let pitch = (buffer.pitch() / 4) as usize;
    let pixels = buffer.pixels_mut();
    for y in 0..h {
        for x in 0..w {
            let [r, g, b, _] = frame.pixel(x, y).expect("pixel");
            pixels[y as usize * pitch + x as usize] =
                0xff00_0000 | u32::from(r) << 16 | u32::from(g) << 8 | u32::from(b);
        }
    }
    buffer
        .show(crtcs[0], connector.id, &mode)
        .expect("legacy modeset");
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    crc_now(&mut crcs)
}

/// The primary plane shows a composited frame, and no frame was scanned out directly.
pub(crate) fn assert_composited(f: &mut Fixture) {
    let report = planes(f);
    assert!(
        report[0].starts_with("primary: composited frame"),
        "{report:?}"
    );
    let s = stats(f);
    assert!(s.composited >= 1 && s.direct == 0, "{s:?}");
}

/// lockstep on vkms with one shm window of `argb` mapped and the screen settled.
fn window_on_vkms(test: &str, argb: u32) -> Option<(PathBuf, Fixture, ClientId, Toplevel)> {
    let path = vkms(test)?;
    let mut f = Fixture::kms(&path);
    let c = f.add_client();
    let top = f.map_window(c, 300, 200, argb);
    quiesce(&mut f);
    Some((path, f, c, top))
}

#[test]
fn kms_composited_window_is_on_screen() {
    let Some((path, mut f, _, _)) =
        window_on_vkms("kms_composited_window_is_on_screen", 0xff20_c040)
    else {
        return;
    };
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let on_screen = crc_now(&mut crcs);
    let frame = f.screenshot(OUTPUT);
    let (w, h) = (frame.width() as i32, frame.height() as i32);
    assert_eq!(rgb(&frame, w / 2, h / 2), 0x20c040, "the window is centred");
    assert_composited(&mut f);
    // Frame callbacks come from page flips: the client's frame request is answered.
    drop(crcs);
    drop(f);
    assert_eq!(
        reference_crc(&path, &frame),
        on_screen,
        "what lockstep put on screen is the frame it composited"
    );
}

#[test]
fn kms_cursor_moves_only_touch_the_cursor_plane() {
    let Some((_, mut f, _, _)) =
        window_on_vkms("kms_cursor_moves_only_touch_the_cursor_plane", 0xff20_40c0)
    else {
        return;
    };
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let bare = crc_now(&mut crcs);

    f.server.state.pointer_motion_to((100.0, 100.0).into(), 1);
    quiesce(&mut f);
    // The window may still be settling (its activated configure); count from here.
    quiesce(&mut f);
    let composited = stats(&mut f).composited;
    let report = planes(&f);
    assert!(report[1].starts_with("cursor: cursor"), "{report:?}");
    let at_100 = crc_now(&mut crcs);
    assert_ne!(at_100, bare, "the cursor is on screen");

    f.server.state.pointer_motion_to((400.0, 300.0).into(), 2);
    quiesce(&mut f);
    assert_ne!(crc_now(&mut crcs), at_100, "the cursor moved");
    f.server.state.pointer_motion_to((100.0, 100.0).into(), 3);
    quiesce(&mut f);
    assert_eq!(
        crc_now(&mut crcs),
        at_100,
        "the same place, the same screen"
    );
    assert_eq!(
        stats(&mut f).composited,
        composited,
        "moving the cursor never recomposited the frame"
    );

    // A flood of moves: one commit per flip, never more, and the last position wins.
    let before = stats(&mut f);
    for i in 0..200u32 {
        let x = 50.0 + f64::from(i);
        f.server.state.pointer_motion_to((x, 60.0).into(), 10 + i);
        f.server.dispatch(Some(Duration::ZERO)).expect("dispatch");
    }
    quiesce(&mut f);
    let after = stats(&mut f);
    let commits = after.commits - before.commits;
    assert_eq!(
        commits,
        after.flips - before.flips,
        "every commit waited for its flip"
    );
    assert!(
        commits < 200,
        "{commits} commits for 200 moves: updates were not coalesced"
    );
    let report = planes(&f);
    let (cx, cy) = {
        let cursor = &report[1];
        let at = cursor.split(" at ").nth(1).expect("a position");
        let xy: Vec<i32> = at
            .split(' ')
            .next()
            .unwrap()
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        (xy[0], xy[1])
    };
    // The theme cursor's hotspot is within its image: the image is near (249, 60).
    assert!((249 - cx).abs() < 64 && (60 - cy).abs() < 64, "{report:?}");
    assert_eq!(after.composited, composited, "{after:?}");
}

/// A client with linux-dmabuf and linux-drm-syncobj.
pub(crate) struct DmabufClient {
    dmabuf: ZwpLinuxDmabufV1,
    syncobj: WpLinuxDrmSyncobjSurfaceV1,
    pub(crate) acquire: DrmTimeline,
    acquire_object: WpLinuxDrmSyncobjTimelineV1,
    pub(crate) release: DrmTimeline,
    release_object: WpLinuxDrmSyncobjTimelineV1,
    pub(crate) top: Toplevel,
    size: (i32, i32),
    /// Where its buffers come from (dma-heap first by default; a GLES test uses dumb
    /// buffers of vkms itself).
    pub(crate) alloc: HeapAllocator,
}

pub(crate) fn bind<I: wayland_client::Proxy + 'static>(
    f: &mut Fixture,
    c: ClientId,
    name: &str,
    version: u32,
) -> I
where
    ClientData: wayland_client::Dispatch<I, ()>,
{
    let cl = f.client(c);
    let (global, _) = *cl
        .data
        .globals
        .get(name)
        .unwrap_or_else(|| panic!("no {name} global"));
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    registry.bind::<I, _, _>(global, version, &cl.qh, ())
}

/// A fullscreen toplevel configured to the output's size, with explicit sync set up.
pub(crate) fn fullscreen_client(f: &mut Fixture, c: ClientId, device: &DrmDevice) -> DmabufClient {
    dmabuf_client(f, c, device, None)
}

/// A toplevel with explicit sync set up: fullscreen (`size` `None`: the output's size) or a
/// normal window of `size`.
pub(crate) fn dmabuf_client(
    f: &mut Fixture,
    c: ClientId,
    device: &DrmDevice,
    size: Option<(i32, i32)>,
) -> DmabufClient {
    let dmabuf: ZwpLinuxDmabufV1 = bind(f, c, "zwp_linux_dmabuf_v1", 3);
    let manager: WpLinuxDrmSyncobjManagerV1 = bind(f, c, "wp_linux_drm_syncobj_manager_v1", 1);
    let acquire = device.create_timeline().expect("timeline");
    let release = device.create_timeline().expect("timeline");
    let cl = f.client(c);
    let acquire_object =
        manager.import_timeline(acquire.export_fd().expect("export").as_fd(), &cl.qh, ());
    let release_object =
        manager.import_timeline(release.export_fd().expect("export").as_fd(), &cl.qh, ());
    let top = cl.toplevel();
    let syncobj = manager.get_surface(&top.surface, &cl.qh, ());
    if size.is_none() {
        top.toplevel.set_fullscreen(None);
    }
    top.surface.commit();
    f.roundtrip(c);
    let serial = f
        .client(c)
        .configure_serial(&top.xdg_surface)
        .expect("configure");
    let size = size.unwrap_or_else(|| {
        *f.client(c)
            .data
            .toplevel_sizes
            .get(&wayland_client::Proxy::id(&top.toplevel).protocol_id())
            .expect("a fullscreen size")
    });
    top.xdg_surface.ack_configure(serial);
    DmabufClient {
        dmabuf,
        syncobj,
        acquire,
        acquire_object,
        release,
        release_object,
        top,
        size,
        alloc: HeapAllocator::new(),
    }
}

impl DmabufClient {
    /// A heap dmabuf of the surface's size filled with `xrgb`, as a wl_buffer.
    pub(crate) fn buffer(&self, f: &mut Fixture, c: ClientId, xrgb: u32) -> (HeapBuffer, WlBuffer) {
        let (w, h) = self.size;
        let heap = self
            .alloc
            .allocate(w as u32, h as u32, HeapFourcc::XRGB8888)
            .expect("heap buffer");
        heap.fill(xrgb).expect("fill");
        let cl = f.client(c);
        let params = self.dmabuf.create_params(&cl.qh, ());
        let fd = heap.try_clone_fd().expect("dup");
        params.add(fd.as_fd(), 0, 0, heap.layout().stride, 0, 0);
        let buffer = params.create_immed(
            w,
            h,
            XRGB8888,
            wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_buffer_params_v1::Flags::empty(),
            &cl.qh,
            (),
        );
        params.destroy();
        (heap, buffer)
    }

    /// Signals acquire point `point` (the buffer is ready) and commits `buffer` with it as
    /// acquire and release point.
    pub(crate) fn commit_ready(&self, buffer: &WlBuffer, point: u64) {
        self.acquire.signal(Point(point)).expect("signal");
        self.commit(buffer, point, point);
    }

    /// Attaches `buffer` with acquire point `acquire` and release point `release`.
    pub(crate) fn commit(&self, buffer: &WlBuffer, acquire: u64, release: u64) {
        let (w, h) = self.size;
        self.top.surface.attach(Some(buffer), 0, 0);
        self.top.surface.damage_buffer(0, 0, w, h);
        self.syncobj.set_acquire_point(
            &self.acquire_object,
            (acquire >> 32) as u32,
            acquire as u32,
        );
        self.syncobj.set_release_point(
            &self.release_object,
            (release >> 32) as u32,
            release as u32,
        );
        self.top.surface.commit();
    }
}

pub(crate) fn sync_device(test: &str) -> Option<DrmDevice> {
    let found = DrmDevice::list(NodeKind::Render)
        .into_iter()
        .find(|d| d.capabilities().supports_explicit_sync());
    if found.is_none() {
        assert!(
            std::env::var_os("LOCKSTEP_REQUIRE_KERNEL").is_none_or(|v| v != "1"),
            "{test}: no render node with timeline syncobjs"
        );
        eprintln!("SKIP {test}: no render node with timeline syncobjs");
    }
    found
}

#[test]
fn kms_fullscreen_dmabuf_is_scanned_out_after_its_sw_sync_fence_and_released_after_the_flip() {
    let test = "kms_fullscreen_dmabuf_is_scanned_out";
    let (Some(path), Some(device)) = (vkms(test), sync_device(test)) else {
        return;
    };
    let mut f = Fixture::kms(&path);
    let c = f.add_client();
    let client = fullscreen_client(&mut f, c, &device);
    quiesce(&mut f);
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let empty = crc_now(&mut crcs);
    let empty_frame = f.screenshot(OUTPUT);

    // Frame 1: green, its acquire point is a sw_sync fence nobody has signalled yet.
    let green = 0xff30_a040;
    let (_heap1, buffer1) = client.buffer(&mut f, c, green);
    let gpu = SwTimeline::new().expect("sw_sync");
    let fence = SyncFile::from_fd(gpu.fence(1, "client render").expect("fence").into_fd())
        .expect("sync_file");
    client
        .acquire
        .import_sync_file(Point(1), &fence)
        .expect("import");
    client.commit(&buffer1, 1, 1);
    f.roundtrip(c);
    quiesce(&mut f);
    assert_eq!(
        crc_now(&mut crcs),
        empty,
        "not on screen before the fence signals"
    );
    assert_eq!(stats(&mut f).direct, 0);

    gpu.advance(1).expect("signal the fence");
    let shown = f.wait_until(Duration::from_secs(3), |f| {
        planes(f)[0].starts_with("primary: surface") && !pipeline(f).flip_pending()
    });
    assert!(shown, "scanned out after the fence: {:?}", planes(&f));
    let green_crc = crc_now(&mut crcs);
    assert_ne!(green_crc, empty);
    let s = stats(&mut f);
    assert_eq!(s.direct, 1, "{s:?}");
    let green_frame = f.screenshot(OUTPUT);
    assert!(
        !client.release.is_signalled(Point(1)).unwrap_or(false),
        "release 1 held while the buffer is on screen"
    );

    // Frame 2: blue (acquire already signalled). Buffer 1 is released at the flip that
    // replaces it, not when frame 2 is committed.
    let (_heap2, buffer2) = client.buffer(&mut f, c, 0xff20_30d0);
    client.commit_ready(&buffer2, 2);
    let committed = f.wait_until(Duration::from_secs(3), |f| {
        stats(f).direct == 2 && pipeline(f).flip_pending()
    });
    assert!(committed, "frame 2 committed: {:?}", stats(&mut f));
    let out_fence = SyncFile::from_fd(
        pipeline(&mut f)
            .out_fence()
            .expect("an out-fence")
            .try_clone()
            .expect("dup"),
    )
    .expect("sync_file");
    // The release waits for the flip in the kernel: it carries the replacing commit's
    // out-fence, so it can never be signalled before that fence.
    let released = client.release.is_signalled(Point(1)).unwrap_or(false);
    let flipped = out_fence.is_signalled().expect("fence status");
    assert!(!released || flipped, "release 1 before the flip");
    assert!(stats(&mut f).fenced_releases >= 1, "{:?}", stats(&mut f));
    let flipped = f.wait_until(Duration::from_secs(3), |f| !pipeline(f).flip_pending());
    assert!(flipped);
    assert!(
        client.release.is_signalled(Point(1)).unwrap(),
        "release 1 signalled by the flip that replaced buffer 1"
    );
    assert!(!client.release.is_signalled(Point(2)).unwrap_or(false));

    // Framebuffers are cached per buffer, and go when the buffer dies.
    assert_eq!(pipeline(&mut f).cached_framebuffers(), 2);
    buffer1.destroy();
    f.roundtrip(c);
    f.server.state.pointer_motion_to((10.0, 10.0).into(), 1); // any flip sweeps the cache
    quiesce(&mut f);
    assert_eq!(
        pipeline(&mut f).cached_framebuffers(),
        1,
        "the destroyed buffer's framebuffer was removed"
    );
    assert_eq!(f.client(c).protocol_error(), None);
    drop(crcs);
    drop(f);
    assert_eq!(
        reference_crc(&path, &green_frame),
        green_crc,
        "the client's pixels"
    );
    assert_eq!(reference_crc(&path, &empty_frame), empty);
}

/// Validation mode on KMS: a scanned-out buffer replaced by a newer commit is still read
/// until the page flip that takes it off the screen, so attaching it again before its
/// release point is signalled is reported (issue 12 item 5).
#[test]
fn kms_validation_reports_reuse_before_the_flip_that_releases_the_buffer() {
    use lockstep::sync_validation::MistakeKind;
    let test = "kms_validation_reports_reuse";
    let (Some(path), Some(device)) = (vkms(test), sync_device(test)) else {
        return;
    };
    let mut config = crate::fixture::floating_config();
    config.explicit_sync.validation = true;
    config.render.renderer = lockstep_config::Renderer::Pixman;
    let mut f = Fixture::kms_with_config(&path, config);
    let c = f.add_client();
    let client = fullscreen_client(&mut f, c, &device);
    quiesce(&mut f);
    let (_heap1, buffer1) = client.buffer(&mut f, c, 0xff30_a040);
    client.commit_ready(&buffer1, 1);
    let shown = f.wait_until(Duration::from_secs(3), |f| {
        planes(f)[0].starts_with("primary: surface") && !pipeline(f).flip_pending()
    });
    assert!(shown, "scanned out: {:?}", planes(&f));
    // Buffer 2 replaces buffer 1, and buffer 1 is attached again at once: before any page
    // flip, while the pipeline still holds its release point.
    let (_heap2, buffer2) = client.buffer(&mut f, c, 0xff20_30d0);
    client.acquire.signal(Point(3)).expect("signal");
    client.commit(&buffer2, 2, 2);
    client.commit(&buffer1, 3, 3);
    f.roundtrip(c);
    quiesce(&mut f);
    let kinds = f.server.state.core.sync_validation.kinds();
    assert!(
        kinds.contains(&MistakeKind::BufferReusedBeforeRelease),
        "{kinds:?}"
    );
    assert_eq!(f.client(c).protocol_error(), None);
}

#[test]
fn kms_topmost_dmabuf_window_goes_on_an_overlay_plane() {
    let test = "kms_topmost_dmabuf_window_goes_on_an_overlay_plane";
    let (Some(path), Some(device)) = (vkms(test), sync_device(test)) else {
        return;
    };
    let mut f = Fixture::kms(&path);
    let below = f.add_client();
    f.map_window(below, 500, 400, 0xff80_2020); // an shm window underneath
    let c = f.add_client();
    let client = dmabuf_client(&mut f, c, &device, Some((300, 200)));
    let (_heap1, buffer1) = client.buffer(&mut f, c, 0xff20_80c0);
    client.commit_ready(&buffer1, 1);
    f.roundtrip(c);
    let placed = f.wait_until(Duration::from_secs(3), |f| {
        planes(f)[2].starts_with("overlay: surface") && !pipeline(f).flip_pending()
    });
    assert!(placed, "on an overlay plane: {:?}", planes(&f));
    quiesce(&mut f);
    let report = planes(&f);
    assert!(
        report[0].starts_with("primary: composited frame"),
        "{report:?}"
    );
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let on_screen = crc_now(&mut crcs);
    let frame = f.screenshot(OUTPUT);
    let (w, h) = (frame.width() as i32, frame.height() as i32);
    assert_eq!(
        rgb(&frame, w / 2, h / 2),
        0x2080c0,
        "the dmabuf window is on top"
    );

    // A new buffer goes to the overlay without recompositing; the old one is released at
    // the flip.
    let composited = stats(&mut f).composited;
    let (_heap2, buffer2) = client.buffer(&mut f, c, 0xff40_c040);
    client.commit_ready(&buffer2, 2);
    f.roundtrip(c);
    let released = f.wait_until(Duration::from_secs(3), |_| {
        client.release.is_signalled(Point(1)).unwrap_or(false)
    });
    assert!(
        released,
        "buffer 1 released after the flip that replaced it"
    );
    quiesce(&mut f);
    assert_eq!(
        stats(&mut f).composited,
        composited,
        "the overlay update recomposited nothing"
    );
    assert!(!client.release.is_signalled(Point(2)).unwrap_or(false));
    assert_ne!(crc_now(&mut crcs), on_screen);
    drop(crcs);
    drop(f);
    assert_eq!(
        reference_crc(&path, &frame),
        on_screen,
        "overlay over the composited frame shows exactly the composed scene"
    );
}

pub(crate) fn kms_backend(f: &mut Fixture) -> &mut lockstep::backend::kms::Kms {
    match &mut f.server.state.backend {
        Backend::Kms(kms) => kms,
        _ => unreachable!("a KMS fixture"),
    }
}

/// Runs `op` with the KMS backend and the core, as the session and hotplug handlers do.
fn with_kms(
    f: &mut Fixture,
    op: impl FnOnce(&mut lockstep::backend::kms::Kms, &mut lockstep::state::Core),
) {
    let state = &mut f.server.state;
    match &mut state.backend {
        Backend::Kms(kms) => op(kms, &mut state.core),
        _ => unreachable!("a KMS fixture"),
    }
}

#[test]
fn kms_session_switch_away_and_back_commits_the_whole_state_again() {
    let Some((path, mut f, c, top)) =
        window_on_vkms("kms_session_switch_away_and_back", 0xff20_c040)
    else {
        return;
    };
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let before = crc_now(&mut crcs);

    // Away: lockstep stops committing and lets go of the display; another program (here
    // the VM bench's plain modeset) shows something else.
    kms_backend(&mut f).pause();
    lockstep_render::kms::drm::Device::release_master_lock(&pipeline(&mut f).device().dev)
        .expect("drop master");
    let other = DrmNode::open(&path).expect("a second opener becomes master");
    let (crtcs, connectors) = vmkms::resources(&other).expect("resources");
    let connector = vmkms::connector(&other, connectors[0]).expect("connector");
    let (w, h) = connector.modes[0].size();
    let mut red = vmkms::DumbBuffer::new(&other, w, h, vmkms::Fourcc(XRGB8888)).expect("dumb");
    red.fill(0xffff_0000);
    red.show(crtcs[0], connector.id, &connector.modes[0])
        .expect("modeset");
    let away = crc_now(&mut crcs);
    assert_ne!(away, before, "someone else's picture while away");

    // While away, the client draws: nothing reaches the display.
    let commits = stats(&mut f).commits;
    let blue = f.client(c).shm_buffer(300, 200, 0xff30_40e0);
    top.surface.attach(Some(&blue), 0, 0);
    top.surface.damage_buffer(0, 0, 300, 200);
    top.surface.commit();
    f.roundtrip(c);
    f.settle();
    assert_eq!(stats(&mut f).commits, commits, "no commit while paused");
    assert_eq!(crc_now(&mut crcs), away);
    drop(red);
    drop(other);

    // Back: master again, a full modeset with the current scene.
    with_kms(&mut f, |kms, core| kms.resume(core));
    quiesce(&mut f);
    assert!(stats(&mut f).commits > commits);
    let back = crc_now(&mut crcs);
    let frame = f.screenshot(OUTPUT);
    assert_eq!(
        rgb(&frame, frame.width() as i32 / 2, frame.height() as i32 / 2),
        0x3040e0
    );
    drop(crcs);
    drop(f);
    assert_eq!(
        reference_crc(&path, &frame),
        back,
        "the current scene, whole, after resume"
    );
}

#[test]
fn kms_presentation_feedback_carries_the_kernels_flip_times_and_sequence() {
    let Some(path) = vkms("kms_presentation_feedback_carries_the_kernels_flip_times") else {
        return;
    };
    let mut f = Fixture::kms(&path);
    let c = f.add_client();
    crate::animate(&mut f, c, 20);
    let shown = crate::shown_feedback(&mut f, c);
    assert!(
        shown.len() >= 19,
        "feedback for (almost) every frame: {shown:?}"
    );
    let mode_refresh_mhz = f
        .server
        .state
        .core
        .output_by_name(OUTPUT)
        .unwrap()
        .current_mode()
        .unwrap()
        .refresh;
    let refresh = 1_000_000_000_000u128 / mode_refresh_mhz as u128;
    for pair in shown.windows(2) {
        let (t0, r, s0) = pair[0];
        let (t1, _, s1) = pair[1];
        assert_eq!(u128::from(r), refresh, "the mode's refresh");
        assert!(t1 > t0 && s1 > s0, "monotonic: {pair:?}");
        // The kernel's vblank counter and timestamps agree: n vblanks apart is n refreshes.
        let vblanks = u128::from(s1 - s0);
        let expected = vblanks * refresh;
        let off = (t1 - t0).abs_diff(expected);
        assert!(
            off * 100 < refresh,
            "{vblanks} vblanks apart but {} ns apart (refresh {refresh} ns)",
            t1 - t0
        );
    }
    // The times are the flips' own, in the past, not when lockstep got around to it.
    let now = f.server.state.core.now();
    let last = shown.last().unwrap().0;
    assert!(last <= now.as_nanos());
}

/// Forces vkms's connector on, off, or back to its own detection (`unspecified`).
fn force_connector(state: &str) {
    let dir = lockstep_vm_support::crc::debugfs_dir("vkms").expect("vkms debugfs");
    let file = dir.join("Virtual-1").join("force");
    std::fs::write(&file, state).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
}

#[test]
fn kms_display_unplugged_and_plugged_back_removes_and_adds_the_output() {
    let Some((path, mut f, c, _top)) =
        window_on_vkms("kms_display_unplugged_and_plugged_back", 0xff20_c040)
    else {
        return;
    };
    let outputs =
        |f: &Fixture| match lockstep::ipc::answer(&f.server.state, lockstep::ipc::Request::Outputs)
        {
            lockstep::ipc::Response::Outputs(o) => {
                o.into_iter().map(|o| o.name).collect::<Vec<_>>()
            }
            other => panic!("unexpected answer {other:?}"),
        };
    assert_eq!(outputs(&f), [OUTPUT]);

    force_connector("off");
    with_kms(&mut f, |kms, core| kms.rescan(core));
    f.settle();
    let unplugged = outputs(&f);
    force_connector("on");
    assert!(
        unplugged.is_empty(),
        "the output went with its display: {unplugged:?}"
    );
    assert_eq!(f.client(c).protocol_error(), None);

    with_kms(&mut f, |kms, core| kms.rescan(core));
    quiesce(&mut f);
    force_connector("unspecified");
    assert_eq!(outputs(&f), [OUTPUT], "the output is back");
    let frame = f.screenshot(OUTPUT);
    assert_eq!(
        rgb(&frame, frame.width() as i32 / 2, frame.height() as i32 / 2),
        0x20c040,
        "the window is back on it"
    );
    let report = planes(&f);
    assert!(
        report[0].starts_with("primary: composited frame"),
        "{report:?}"
    );
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let on_screen = crc_now(&mut crcs);
    drop(crcs);
    drop(f);
    assert_eq!(reference_crc(&path, &frame), on_screen);
}

#[test]
fn kms_failed_prepare_steps_fall_back_to_composition() {
    let test = "kms_failed_prepare_steps_fall_back_to_composition";
    let (Some(path), Some(device)) = (vkms(test), sync_device(test)) else {
        return;
    };
    failed_prepare_steps_fall_back_to_composition(
        Fixture::kms(&path),
        &device,
        HeapAllocator::new(),
    );
}

/// Fault injection at each prepare step of a direct-scanout frame: the frame is composited
/// instead (by whichever renderer `f` has), releases stay right, and a buffer the kernel
/// refused is not offered again.
pub(crate) fn failed_prepare_steps_fall_back_to_composition(
    mut f: Fixture,
    device: &DrmDevice,
    alloc: HeapAllocator,
) {
    let c = f.add_client();
    let mut client = fullscreen_client(&mut f, c, device);
    client.alloc = alloc;
    let client = client;
    let mut point = 0u64;
    let mut buffers = Vec::new();
    let mut show = |f: &mut Fixture, colour: u32, arm: Option<Step>| {
        point += 1;
        let (heap, buffer) = client.buffer(f, c, colour);
        if let Some(step) = arm {
            pipeline(f).faults().arm(step);
        }
        client.commit_ready(&buffer, point);
        f.roundtrip(c);
        quiesce(f);
        buffers.push((heap, buffer));
        point
    };
    show(&mut f, 0xff10_1010, None);
    assert!(
        planes(&f)[0].starts_with("primary: surface"),
        "{:?}",
        planes(&f)
    );
    for (i, step) in [
        Step::FramebufferImport,
        Step::FenceExport,
        Step::Lease,
        Step::TestOnly,
    ]
    .into_iter()
    .enumerate()
    {
        let colour = 0xff00_0000 | (0x30 + 0x30 * i as u32) << 8;
        let failed_before = stats(&mut f).failed_prepares;
        let p = show(&mut f, colour, Some(step));
        assert!(
            !pipeline(&mut f).faults().any_armed(),
            "{step:?} was reached"
        );
        assert_eq!(stats(&mut f).failed_prepares, failed_before + 1);
        let report = planes(&f);
        assert!(
            report[0].starts_with("primary: composited frame"),
            "{step:?}: {report:?}"
        );
        let frame = f.screenshot(OUTPUT);
        assert_eq!(
            rgb(&frame, 10, 10),
            colour & 0xff_ffff,
            "{step:?}: the new frame is shown"
        );
        assert!(
            client.release.is_signalled(Point(p - 1)).unwrap(),
            "{step:?}: the buffer that left the plane was released"
        );
        assert!(
            !client.release.is_signalled(Point(p)).unwrap_or(false),
            "{step:?}: the composited buffer is held while current"
        );
        // A frame with the same buffer: one the kernel refused (framebuffer, TEST_ONLY) is
        // not offered again; one that failed for a passing reason goes on the plane now.
        let failed = stats(&mut f).failed_prepares;
        f.server
            .state
            .pointer_motion_to((20.0 + i as f64, 20.0).into(), 100 + i as u32);
        quiesce(&mut f);
        let report = planes(&f);
        if matches!(step, Step::FramebufferImport | Step::TestOnly) {
            assert!(
                report[0].starts_with("primary: composited frame"),
                "{step:?}: {report:?}"
            );
            assert_eq!(
                stats(&mut f).failed_prepares,
                failed,
                "{step:?}: not tried again"
            );
        } else {
            assert!(
                report[0].starts_with("primary: surface"),
                "{step:?}: {report:?}"
            );
        }
        // A new buffer goes back to direct scanout.
        let p = show(&mut f, 0xff10_1010, None);
        assert!(
            planes(&f)[0].starts_with("primary: surface"),
            "{step:?}: {:?}",
            planes(&f)
        );
        assert!(client.release.is_signalled(Point(p - 1)).unwrap());
    }
    assert_eq!(f.client(c).protocol_error(), None);
}

/// CPU time of this thread (the fixture runs server and clients on one thread).
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Runs the server until the flip in flight completes, counting only the server's CPU time.
fn server_until_flipped(f: &mut Fixture, cpu: &mut Duration) {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let start = thread_cpu();
        f.server
            .dispatch(Some(Duration::from_millis(1)))
            .expect("dispatch");
        *cpu += thread_cpu() - start;
        if !pipeline(f).flip_pending() {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no page flip");
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

/// Benchmark (in the VM: `vm/test --dynamic -p lockstep --test in_process ... -- --ignored
/// kms_frame_costs --nocapture`): server CPU per frame for cursor-only frames and for frames
/// of one damaged 300×200 window, and page flip → release signalled for direct scanout.
#[test]
#[ignore = "benchmark: run in the VM with --ignored"]
fn kms_frame_costs() {
    let test = "kms_frame_costs";
    let (Some(path), Some(device)) = (vkms(test), sync_device(test)) else {
        return;
    };
    const FRAMES: u32 = 200;
    let mut f = Fixture::kms(&path);
    let c = f.add_client();
    let top = f.map_window(c, 300, 200, 0xff20_40c0);
    quiesce(&mut f);
    quiesce(&mut f);

    // Cursor only.
    let before = stats(&mut f);
    let busy_before = kms_backend(&mut f).busy();
    let mut cpu = Duration::ZERO;
    for i in 0..FRAMES {
        let start = thread_cpu();
        f.server
            .state
            .pointer_motion_to((100.0 + f64::from(i), 100.0).into(), i);
        cpu += thread_cpu() - start;
        server_until_flipped(&mut f, &mut cpu);
    }
    let after = stats(&mut f);
    assert_eq!(
        after.composited, before.composited,
        "cursor frames never recomposite"
    );
    let frames = (after.commits - before.commits) as u32;
    let cursor = cpu / frames;
    let cursor_busy = (kms_backend(&mut f).busy() - busy_before) / frames;

    // One damaged window: a new buffer every frame.
    let before = stats(&mut f);
    let busy_before = kms_backend(&mut f).busy();
    let mut cpu = Duration::ZERO;
    let buffers: Vec<_> = (0..2)
        .map(|i| {
            f.client(c)
                .shm_buffer(300, 200, 0xff00_0000 | (0x40 + i * 0x80) << 8)
        })
        .collect();
    for i in 0..FRAMES {
        top.surface.attach(Some(&buffers[i as usize % 2]), 0, 0);
        top.surface.damage_buffer(0, 0, 300, 200);
        top.surface.commit();
        let _ = f.client(c).conn.flush();
        let target = before.composited + u64::from(i) + 1;
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            let start = thread_cpu();
            f.server
                .dispatch(Some(Duration::from_millis(1)))
                .expect("dispatch");
            cpu += thread_cpu() - start;
            if stats(&mut f).composited >= target && !pipeline(&mut f).flip_pending() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "frame {i} never shown"
            );
        }
        f.client(c).pump();
    }
    let after = stats(&mut f);
    let frames = (after.commits - before.commits) as u32;
    let window = cpu / frames;
    let window_busy = (kms_backend(&mut f).busy() - busy_before) / frames;
    let composited = after.composited - before.composited;
    drop(top);
    drop(f); // one DRM master at a time

    // Direct scanout: flip → release, on the CPU path (the kernel path signals at the flip
    // itself, through the out-fence).
    let mut f = Fixture::kms(&path);
    kms_backend(&mut f).set_fenced_releases(false);
    let c = f.add_client();
    let client = fullscreen_client(&mut f, c, &device);
    let colours = [0xff30_a040, 0xff20_30d0];
    let bufs: Vec<_> = colours
        .iter()
        .map(|&c2| client.buffer(&mut f, c, c2))
        .collect();
    for i in 0..FRAMES as u64 {
        let point = i + 1;
        client.commit_ready(&bufs[i as usize % 2].1, point);
        let _ = f.client(c).conn.flush();
        let release = &client.release;
        let done = f.wait_until(Duration::from_secs(3), |f| {
            !pipeline(f).flip_pending()
                && planes(f)[0].starts_with("primary: surface")
                && (point == 1 || release.is_signalled(Point(point - 1)).unwrap_or(false))
        });
        assert!(done, "frame {point} scanned out: {:?}", planes(&f));
    }
    let latency = match &f.server.state.backend {
        Backend::Kms(kms) => kms.flip_to_cleanup(OUTPUT),
        _ => unreachable!(),
    };
    assert!(client
        .release
        .is_signalled(Point(FRAMES as u64 - 1))
        .unwrap());
    let n = latency.len();
    let mut from_kernel: Vec<_> = latency.iter().map(|l| l.0).collect();
    let mut from_event: Vec<_> = latency.iter().map(|l| l.1).collect();
    let median = percentile(&mut from_kernel, 0.5);
    let p99 = percentile(&mut from_kernel, 0.99);
    let ev_median = percentile(&mut from_event, 0.5);
    let ev_p99 = percentile(&mut from_event, 0.99);
    eprintln!(
        "BENCH kms cursor-only: backend {cursor_busy:?} per frame, whole server {cursor:?} CPU per frame ({frames} frames, 0 recomposited)"
    );
    eprintln!("BENCH kms damaged window 300x200: backend {window_busy:?} per frame, whole server {window:?} CPU per frame ({composited} composited)");
    eprintln!("BENCH kms flip event read -> release signalled (direct scanout, {n} flips): median {ev_median:?}, p99 {ev_p99:?}");
    eprintln!(
        "BENCH kms kernel flip timestamp -> release signalled: median {median:?}, p99 {p99:?}"
    );
}

/// A fixed CPU workload (no system calls), to tell how much slower the VM's emulated CPU is
/// than the host: run it on both and divide (`kms_frame_costs` prints only VM times).
#[test]
#[ignore = "benchmark: run on the host and in the VM with --ignored"]
fn kms_cpu_calibration() {
    // Memory traffic like a compositor's (blending rows of pixels), where emulation costs most.
    let mut pixels = vec![0u32; 1024 * 768];
    let start = thread_cpu();
    let mut sum = 0u64;
    for round in 0..40u32 {
        for (i, p) in pixels.iter_mut().enumerate() {
            *p = p.wrapping_mul(31).wrapping_add(i as u32 ^ round);
        }
        sum = pixels
            .iter()
            .step_by(7)
            .fold(sum, |acc, &p| acc.wrapping_add(u64::from(p)));
    }
    let took = thread_cpu() - start;
    eprintln!("BENCH calibration: 40 passes over a 1024x768 frame in {took:?} (checksum {sum:x})");
    assert_ne!(sum, 0);
}

/// The serial of the latest wl_pointer.enter.
pub(crate) type EnterSerial = std::sync::Arc<std::sync::Mutex<Option<u32>>>;

impl wayland_client::Dispatch<wayland_client::protocol::wl_pointer::WlPointer, EnterSerial>
    for ClientData
{
    fn event(
        _: &mut Self,
        _: &wayland_client::protocol::wl_pointer::WlPointer,
        event: wayland_client::protocol::wl_pointer::Event,
        serial: &EnterSerial,
        _: &wayland_client::Connection,
        _: &wayland_client::QueueHandle<Self>,
    ) {
        if let wayland_client::protocol::wl_pointer::Event::Enter { serial: s, .. } = event {
            *serial.lock().unwrap() = Some(s);
        }
    }
}

#[test]
fn kms_client_cursor_surface_goes_on_the_cursor_plane() {
    let Some((_, mut f, c, _top)) = window_on_vkms(
        "kms_client_cursor_surface_goes_on_the_cursor_plane",
        0xff20_40c0,
    ) else {
        return;
    };
    let serial = EnterSerial::default();
    let cl = f.client(c);
    let pointer = cl.seat.get_pointer(&cl.qh, serial.clone());
    f.roundtrip(c);
    f.server.state.pointer_motion_to((512.0, 384.0).into(), 1); // over the window
    quiesce(&mut f);
    f.roundtrip(c);
    let enter = serial.lock().unwrap().expect("pointer entered the window");
    let composited = stats(&mut f).composited;

    let cl = f.client(c);
    let cursor = cl.compositor.create_surface(&cl.qh, ());
    let image = cl.shm_buffer(16, 16, 0xffff_ff00);
    cursor.attach(Some(&image), 0, 0);
    cursor.damage_buffer(0, 0, 16, 16);
    cursor.commit();
    pointer.set_cursor(enter, Some(&cursor), 2, 3);
    f.roundtrip(c);
    quiesce(&mut f);
    let report = planes(&f);
    assert!(
        report[1].starts_with("cursor: cursor 16x16 at 510,381"),
        "the client's image at the pointer minus its hotspot: {report:?}"
    );
    assert_eq!(
        stats(&mut f).composited,
        composited,
        "no recomposition for the cursor"
    );
    let frame = f.screenshot(OUTPUT);
    assert_eq!(
        rgb(&frame, 515, 386),
        0xffff00,
        "the client's cursor is in screenshots"
    );
    assert_eq!(f.client(c).protocol_error(), None);
}

#[test]
fn kms_page_flip_event_that_never_comes_does_not_freeze_the_output() {
    let test = "kms_page_flip_event_that_never_comes";
    let Some((_path, mut f, c, _top)) = window_on_vkms(test, 0xff20_c040) else {
        return;
    };
    let before = stats(&mut f);
    kms_backend(&mut f).lose_page_flip_events(1);
    // A second window: a commit whose flip event is lost.
    let lost_at = std::time::Instant::now();
    f.map_window(c, 120, 90, 0xffd0_2020);
    let committed = f.wait_until(Duration::from_secs(2), |f| {
        stats(f).commits > before.commits
    });
    assert!(committed, "the new window was never committed");
    // Without a watchdog the output would wait for that event forever; with it the flip is
    // given up after FLIP_TIMEOUT and the output commits again (and gets real flips).
    let recovered = f.wait_until(Duration::from_secs(5), |f| {
        let s = stats(f);
        s.flips >= before.flips + 2 && !pipeline(f).flip_pending()
    });
    let s = stats(&mut f);
    assert!(recovered, "the output stayed frozen: {before:?} -> {s:?}");
    assert!(
        lost_at.elapsed() >= lockstep::backend::kms::FLIP_TIMEOUT,
        "recovered before the timeout: the event was not lost"
    );
    // Frames go on as usual afterwards: a pointer move is committed and flipped.
    let after = stats(&mut f);
    f.map_window(c, 60, 40, 0xff30_40e0);
    let flipped = f.wait_until(Duration::from_secs(2), |f| {
        stats(f).flips > after.flips && !pipeline(f).flip_pending()
    });
    assert!(flipped, "no flip after recovery: {:?}", stats(&mut f));
}
