//! Smoke tests of the VM bench: the kernel objects lockstep relies on exist and behave.
//!
//! They run for real under `vm/test` (the guest exports `LOCKSTEP_VM=1`, so a missing device
//! fails); on a host without `/dev/dri` each prints one `skipped` line and passes.

use std::time::Duration;

use lockstep_vm_support::atomic::{AtomicFlags, AtomicRequest, ModeBlob, ObjectKind};
use lockstep_vm_support::crc::CrcReader;
use lockstep_vm_support::dmabuf;
use lockstep_vm_support::guest::{self, wait_readable};
use lockstep_vm_support::kms::{self, DumbBuffer, Fourcc, PlaneKind};
use lockstep_vm_support::sw_sync::{FenceStatus, SwTimeline};
use lockstep_vm_support::syncobj::{Syncobj, TimelinePoint, WaitFor};

/// Generous: TCG is slow, but a kernel that takes this long is broken.
const SOON: Duration = Duration::from_secs(2);

#[test]
fn vkms_has_primary_cursor_and_eight_overlay_planes() {
    let Some(dev) = guest::devices_or_skip("vkms_has_primary_cursor_and_eight_overlay_planes")
    else {
        return;
    };
    let planes = kms::planes(&dev.vkms).expect("list vkms planes");
    let count = |kind| planes.iter().filter(|p| p.kind == kind).count();
    assert_eq!(
        (
            count(PlaneKind::Primary),
            count(PlaneKind::Cursor),
            count(PlaneKind::Overlay)
        ),
        (1, 1, 8),
        "(primary, cursor, overlay) planes; vkms.enable_cursor/enable_overlay on the kernel \
         command line? planes: {planes:#?}"
    );
    for plane in &planes {
        assert!(plane.in_fence_fd, "plane {:?} lacks IN_FENCE_FD", plane.id);
        assert!(
            plane.formats.contains(&Fourcc::XRGB8888),
            "plane {:?} lacks XRGB8888",
            plane.id
        );
    }
}

#[test]
fn vkms_and_vgem_have_timeline_syncobjs() {
    let Some(dev) = guest::devices_or_skip("vkms_and_vgem_have_timeline_syncobjs") else {
        return;
    };
    for node in [&dev.vkms, &dev.vgem] {
        assert!(
            node.supports_timeline_syncobj().expect("query caps"),
            "{} ({}) lacks DRM_CAP_SYNCOBJ_TIMELINE: is vm/patches/0001 applied?",
            node.path().display(),
            node.driver()
        );
    }
}

/// The smoke test: the explicit-sync path of linux-drm-syncobj-v1 across two devices.
#[test]
fn timeline_from_vgem_imported_on_vkms_fires_eventfd_when_sw_sync_signals() {
    let Some(dev) = guest::devices_or_skip("timeline_from_vgem_imported_on_vkms") else {
        return;
    };
    // Client: a timeline on its render node, sent to the compositor as an fd.
    let client = Syncobj::create(&dev.vgem).expect("create timeline on vgem");
    let server = Syncobj::import(&dev.vkms, &client.export().expect("export"))
        .expect("import the vgem timeline on vkms");

    // Compositor: wait for acquire point 1 with an eventfd (what goes on the event loop).
    let acquire = TimelinePoint(1);
    let signalled = server
        .eventfd(acquire, WaitFor::Signalled)
        .expect("eventfd");
    let available = server
        .eventfd(acquire, WaitFor::Available)
        .expect("eventfd");
    assert!(
        !wait_readable(&signalled, Duration::ZERO).expect("poll"),
        "fired before any fence"
    );

    // Client: "rendering" is a sw_sync fence the test signals, put at point 1.
    let gpu = SwTimeline::new().expect("sw_sync timeline");
    let render_done = gpu.fence(1, "render").expect("sw_sync fence");
    client
        .import_sync_file(acquire, &render_done)
        .expect("sync_file -> point 1");

    assert!(
        wait_readable(&available, SOON).expect("poll"),
        "WAIT_AVAILABLE did not fire"
    );
    assert!(
        !wait_readable(&signalled, Duration::from_millis(100)).expect("poll"),
        "eventfd fired before the fence signalled"
    );
    assert_eq!(server.query().expect("query"), TimelinePoint(0));
    assert_eq!(render_done.status().expect("status"), FenceStatus::Pending);

    gpu.advance(1).expect("sw_sync inc");
    assert!(
        wait_readable(&signalled, SOON).expect("poll"),
        "eventfd did not fire"
    );
    assert_eq!(
        client.query().expect("query"),
        acquire,
        "seen from the client device"
    );

    // Compositor: release point 2 from the CPU; the client sees it, also as a sync_file.
    let release = TimelinePoint(2);
    server.signal(release).expect("signal release point");
    assert!(client
        .wait(release, SOON, WaitFor::Signalled)
        .expect("wait"));
    let exported = client.export_sync_file(release).expect("export point 2");
    assert!(exported.is_signalled().expect("poll"));
}

#[test]
fn dmabufs_from_vgem_dma_heap_and_udmabuf_import_on_vkms() {
    let Some(dev) = guest::devices_or_skip("dmabufs_from_vgem_dma_heap_and_udmabuf") else {
        return;
    };
    let vgem_card = dev.vgem_card().expect("vgem primary node");
    let vgem = dmabuf::vgem_dumb(&vgem_card, 256, 256).expect("vgem dumb + PRIME export");
    assert!(vgem.pitch >= 256 * 4 && vgem.dmabuf.len() >= 256 * 256 * 4);

    let heap = dmabuf::dma_heap_system(1 << 20).expect("dma-heap alloc");
    let udma = dmabuf::udmabuf(1 << 20).expect("udmabuf");
    for (name, buf, byte) in [
        ("vgem", &vgem.dmabuf, 0x11),
        ("heap", &heap, 0x5a),
        ("udmabuf", &udma, 0xa5),
    ] {
        buf.fill(byte)
            .unwrap_or_else(|e| panic!("{name}: fill: {e}"));
        let read = buf.read().unwrap_or_else(|e| panic!("{name}: read: {e}"));
        assert!(read.iter().all(|&b| b == byte), "{name}: contents not kept");
        buf.import(&dev.vkms)
            .unwrap_or_else(|e| panic!("{name}: PRIME import on vkms: {e}"));
    }
}

/// vkms CRCs follow what is on screen: flip to another image, the CRC changes; flip back, it
/// is the first CRC again. Images are drawn off screen and flipped in: writing into the
/// scanout buffer would let vkms compose torn frames with CRCs of their own.
#[test]
fn vkms_crc_follows_the_scanout_buffer() {
    let Some(dev) = guest::devices_or_skip("vkms_crc_follows_the_scanout_buffer") else {
        return;
    };
    let (crtcs, connectors) = kms::resources(&dev.vkms).expect("resources");
    let connector = connectors
        .iter()
        .map(|&id| kms::connector(&dev.vkms, id).expect("connector"))
        .find(|c| !c.writeback && !c.modes.is_empty())
        .expect("a vkms connector with modes");
    let mode = connector.modes[0];
    let (w, h) = mode.size();
    let mut red = DumbBuffer::new(&dev.vkms, w, h, Fourcc::XRGB8888).expect("dumb buffer");
    let mut blue = DumbBuffer::new(&dev.vkms, w, h, Fourcc::XRGB8888).expect("dumb buffer");
    red.fill(0x00ff_0000);
    blue.fill(0x0000_00ff);

    red.show(crtcs[0], connector.id, &mode)
        .expect("modeset to red");
    let mut crcs = CrcReader::open_vkms(0).expect("start CRC capture");
    let red_crc = crcs.next(SOON).expect("CRC of the red frame");
    blue.show(crtcs[0], connector.id, &mode)
        .expect("flip to blue");
    let blue_crc = crcs
        .next_different(Some(&red_crc), SOON)
        .expect("CRC changes with the image");
    red.show(crtcs[0], connector.id, &mode)
        .expect("flip back to red");
    let red_again = crcs
        .next_different(Some(&blue_crc), SOON)
        .expect("CRC changes back");
    assert_eq!(red_again.values, red_crc.values, "same image, same CRC");
}

/// The KMS half of explicit sync: a nonblocking flip whose plane has an `IN_FENCE_FD` is not
/// on screen (its CRTC out-fence stays unsignalled) until the client's fence signals.
#[test]
fn vkms_flip_waits_for_its_in_fence() {
    let Some(dev) = guest::devices_or_skip("vkms_flip_waits_for_its_in_fence") else {
        return;
    };
    let (crtcs, connectors) = kms::resources(&dev.vkms).expect("resources");
    let connector = connectors
        .iter()
        .map(|&id| kms::connector(&dev.vkms, id).expect("connector"))
        .find(|c| !c.writeback && !c.modes.is_empty())
        .expect("a vkms connector with modes");
    let primary = kms::planes(&dev.vkms)
        .expect("planes")
        .into_iter()
        .find(|p| p.kind == PlaneKind::Primary)
        .expect("a primary plane");
    let (crtc, mode) = (crtcs[0], connector.modes[0]);
    let size = mode.size();
    let mut front = DumbBuffer::new(&dev.vkms, size.0, size.1, Fourcc::XRGB8888).expect("fb");
    let mut back = DumbBuffer::new(&dev.vkms, size.0, size.1, Fourcc::XRGB8888).expect("fb");
    front.fill(0x0000_ff00);
    back.fill(0x00ff_00ff);

    let blob = ModeBlob::new(&dev.vkms, &mode).expect("mode blob");
    let mut modeset = AtomicRequest::new(&dev.vkms).expect("atomic");
    modeset
        .set(crtc, ObjectKind::Crtc, "MODE_ID", blob.id())
        .and_then(|r| r.set(crtc, ObjectKind::Crtc, "ACTIVE", 1))
        .and_then(|r| {
            r.set(
                connector.id,
                ObjectKind::Connector,
                "CRTC_ID",
                u64::from(crtc.0),
            )
        })
        .and_then(|r| r.show_fb(primary.id, crtc, front.fb(), size))
        .expect("build the modeset");
    modeset
        .commit(AtomicFlags::ALLOW_MODESET)
        .expect("atomic modeset");

    let gpu = SwTimeline::new().expect("sw_sync timeline");
    let acquire = gpu.fence(1, "client render").expect("sw_sync fence");
    let mut flip = AtomicRequest::new(&dev.vkms).expect("atomic");
    flip.set(
        primary.id,
        ObjectKind::Plane,
        "FB_ID",
        u64::from(back.fb().0),
    )
    .and_then(|r| r.in_fence(primary.id, &acquire))
    .and_then(|r| r.out_fence(crtc))
    .expect("build the flip");
    let on_screen = flip
        .commit(AtomicFlags::NONBLOCK)
        .expect("nonblocking flip with IN_FENCE_FD")
        .out_fence
        .expect("an out-fence");

    assert!(
        !on_screen.wait(Duration::from_millis(300)).expect("poll"),
        "the flip completed before its in-fence signalled"
    );
    gpu.advance(1).expect("sw_sync inc");
    assert!(
        on_screen.wait(SOON).expect("poll"),
        "the flip did not complete after the in-fence"
    );
}

/// vkms's writeback connector captures the composed frame into a buffer we can read.
#[test]
fn vkms_writeback_captures_the_composed_frame() {
    let Some(dev) = guest::devices_or_skip("vkms_writeback_captures_the_composed_frame") else {
        return;
    };
    kms::enable_atomic(&dev.vkms).expect("client caps");
    let (crtcs, connector_ids) = kms::resources(&dev.vkms).expect("resources");
    let connectors: Vec<_> = connector_ids
        .iter()
        .map(|&id| kms::connector(&dev.vkms, id).expect("connector"))
        .collect();
    let virtual_ = connectors
        .iter()
        .find(|c| !c.writeback && !c.modes.is_empty());
    let virtual_ = virtual_.expect("the Virtual connector");
    let writeback = connectors.iter().find(|c| c.writeback);
    let writeback = writeback.expect("a writeback connector (vkms.enable_writeback=1?)");
    let primary = kms::planes(&dev.vkms)
        .expect("planes")
        .into_iter()
        .find(|p| p.kind == PlaneKind::Primary)
        .expect("a primary plane");
    let (crtc, mode) = (crtcs[0], virtual_.modes[0]);
    let (w, h) = mode.size();

    // Scene: blue with a red 64x64 square at (100, 100).
    let mut scene = DumbBuffer::new(&dev.vkms, w, h, Fourcc::XRGB8888).expect("scene fb");
    scene.fill(0x0000_00ff);
    let stride = (scene.pitch() / 4) as usize;
    for row in scene.pixels_mut().chunks_mut(stride).skip(100).take(64) {
        row[100..164].fill(0x00ff_0000);
    }
    let mut capture = DumbBuffer::new(&dev.vkms, w, h, Fourcc::XRGB8888).expect("capture fb");
    capture.fill(0xdead_beef);

    let blob = ModeBlob::new(&dev.vkms, &mode).expect("mode blob");
    let mut request = AtomicRequest::new(&dev.vkms).expect("atomic");
    request
        .set(crtc, ObjectKind::Crtc, "MODE_ID", blob.id())
        .and_then(|r| r.set(crtc, ObjectKind::Crtc, "ACTIVE", 1))
        .and_then(|r| r.set(virtual_.id, ObjectKind::Connector, "CRTC_ID", 0))
        .and_then(|r| r.writeback(writeback.id, crtc, capture.fb()))
        .and_then(|r| r.show_fb(primary.id, crtc, scene.fb(), (w, h)))
        .expect("build the request");
    let done = request
        .commit(AtomicFlags::ALLOW_MODESET)
        .expect("modeset with writeback")
        .writeback
        .expect("a writeback fence");
    assert!(done.wait(SOON).expect("poll"), "writeback did not complete");
    let at = |x, y| capture.pixel(x, y).map(|p| p & 0x00ff_ffff);
    assert_eq!(at(10, 10), Some(0x0000_00ff), "background");
    assert_eq!(at(130, 130), Some(0x00ff_0000), "the red square");
    assert_eq!(at(170, 130), Some(0x0000_00ff), "right of the square");
}
