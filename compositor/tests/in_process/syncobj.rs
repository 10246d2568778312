//! linux-drm-syncobj-v1 through the fixture. These need a DRM render node with timeline
//! syncobjs (vgem in lockstep's VM): without one they skip with a message, and with
//! `LOCKSTEP_REQUIRE_KERNEL=1` (the VM harness sets it) a missing device fails them.
#![allow(clippy::disallowed_macros)]

use std::{os::fd::AsFd, time::Duration};

use lockstep_sync::{DrmDevice, DrmTimeline, NodeKind, Point, SyncDevice};
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_protocols::wp::linux_drm_syncobj::v1::client::{
    wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1,
    wp_linux_drm_syncobj_surface_v1::WpLinuxDrmSyncobjSurfaceV1,
    wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1,
};

use crate::{
    client::ClientData,
    fixture::{rgb, ClientId, Fixture, DEFAULT_OUTPUT},
};

wayland_client::delegate_noop!(ClientData: ignore WpLinuxDrmSyncobjManagerV1);
wayland_client::delegate_noop!(ClientData: ignore WpLinuxDrmSyncobjSurfaceV1);
wayland_client::delegate_noop!(ClientData: ignore WpLinuxDrmSyncobjTimelineV1);

/// The client-side device, or `None` (test skipped) where the kernel cannot do it.
fn device(test: &str) -> Option<DrmDevice> {
    let reason = match DrmDevice::list(NodeKind::Render)
        .into_iter()
        .find(|d| d.capabilities().supports_explicit_sync())
    {
        Some(device) => return Some(device),
        None => "no DRM render node with timeline syncobjs (run it in the VM: vm/test -p lockstep)",
    };
    assert!(
        std::env::var_os("LOCKSTEP_REQUIRE_KERNEL").is_none_or(|v| v != "1"),
        "{test}: LOCKSTEP_REQUIRE_KERNEL=1 but {reason}"
    );
    eprintln!("SKIP {test}: {reason}");
    None
}

struct Sync {
    manager: WpLinuxDrmSyncobjManagerV1,
    /// Client-side handle of the (acquire) timeline, to signal and query points.
    timeline: DrmTimeline,
    /// The protocol object for it.
    object: WpLinuxDrmSyncobjTimelineV1,
    /// A second timeline for release points (as Mesa does: never one timeline for both).
    release: DrmTimeline,
    /// The protocol object for it.
    release_object: WpLinuxDrmSyncobjTimelineV1,
}

fn setup(f: &mut Fixture, c: ClientId, device: &DrmDevice) -> Sync {
    let cl = f.client(c);
    let (name, _) = *cl
        .data
        .globals
        .get("wp_linux_drm_syncobj_manager_v1")
        .expect("a capable render node exists, so lockstep must offer the global");
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager = registry.bind::<WpLinuxDrmSyncobjManagerV1, _, _>(name, 1, &cl.qh, ());
    let timeline = device.create_timeline().expect("create timeline");
    let fd = timeline.export_fd().expect("export timeline");
    let object = manager.import_timeline(fd.as_fd(), &cl.qh, ());
    let release = device.create_timeline().expect("create timeline");
    let fd = release.export_fd().expect("export timeline");
    let release_object = manager.import_timeline(fd.as_fd(), &cl.qh, ());
    f.roundtrip(c);
    Sync {
        manager,
        timeline,
        object,
        release,
        release_object,
    }
}

fn protocol_error(f: &mut Fixture, c: ClientId) -> (u32, String) {
    let got = f.wait_until(Duration::from_secs(2), |f| {
        f.client(c).protocol_error().is_some()
    });
    assert!(got, "expected a protocol error");
    let (code, interface, message) = f.client(c).protocol_error().unwrap();
    eprintln!("protocol error {code} on {interface}: {message}");
    (code, interface)
}

const SURFACE_IF: &str = "wp_linux_drm_syncobj_surface_v1";

/// Runs `body` on a fresh client with a syncobj surface and returns the error it provoked.
fn error_case(
    device: &DrmDevice,
    body: impl FnOnce(&mut Fixture, ClientId, &Sync, &WlSurface, &WpLinuxDrmSyncobjSurfaceV1),
) -> (u32, String) {
    let mut f = Fixture::new();
    let c = f.add_client();
    let sync = setup(&mut f, c, device);
    let cl = f.client(c);
    let surface = cl.compositor.create_surface(&cl.qh, ());
    let syncobj = sync.manager.get_surface(&surface, &cl.qh, ());
    body(&mut f, c, &sync, &surface, &syncobj);
    protocol_error(&mut f, c)
}

fn point(p: u64) -> (u32, u32) {
    ((p >> 32) as u32, p as u32)
}

#[test]
fn syncobj_protocol_errors_are_posted_on_the_right_object() {
    let Some(device) = device("syncobj_protocol_errors") else {
        return;
    };
    // surface_exists, on the manager.
    let (code, iface) = error_case(&device, |f, c, sync, surface, _| {
        let cl = f.client(c);
        sync.manager.get_surface(surface, &cl.qh, ());
    });
    assert_eq!(
        (code, iface.as_str()),
        (0, "wp_linux_drm_syncobj_manager_v1")
    );
    // invalid_timeline, on the manager: a memfd is not a syncobj.
    let (code, iface) = error_case(&device, |f, c, sync, _, _| {
        let memfd =
            rustix::fs::memfd_create("not-a-syncobj", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let cl = f.client(c);
        sync.manager.import_timeline(memfd.as_fd(), &cl.qh, ());
    });
    assert_eq!(
        (code, iface.as_str()),
        (1, "wp_linux_drm_syncobj_manager_v1")
    );
    // no_buffer: an acquire point without a buffer.
    let (code, iface) = error_case(&device, |_, _, sync, surface, syncobj| {
        let (hi, lo) = point(1);
        syncobj.set_acquire_point(&sync.object, hi, lo);
        surface.commit();
    });
    assert_eq!((code, iface.as_str()), (3, SURFACE_IF));
    // no_acquire_point: a buffer with only a release point.
    let (code, iface) = error_case(&device, |f, c, sync, surface, syncobj| {
        let buffer = f.client(c).shm_buffer(8, 8, 0xff00_0000);
        surface.attach(Some(&buffer), 0, 0);
        let (hi, lo) = point(2);
        syncobj.set_release_point(&sync.object, hi, lo);
        surface.commit();
    });
    assert_eq!((code, iface.as_str()), (4, SURFACE_IF));
    // no_release_point: a buffer with only an acquire point.
    let (code, iface) = error_case(&device, |f, c, sync, surface, syncobj| {
        let buffer = f.client(c).shm_buffer(8, 8, 0xff00_0000);
        surface.attach(Some(&buffer), 0, 0);
        let (hi, lo) = point(1);
        syncobj.set_acquire_point(&sync.object, hi, lo);
        surface.commit();
    });
    assert_eq!((code, iface.as_str()), (5, SURFACE_IF));
    // conflicting_points: same timeline, acquire == release.
    let (code, iface) = error_case(&device, |f, c, sync, surface, syncobj| {
        let buffer = f.client(c).shm_buffer(8, 8, 0xff00_0000);
        surface.attach(Some(&buffer), 0, 0);
        let (hi, lo) = point(5);
        syncobj.set_acquire_point(&sync.object, hi, lo);
        syncobj.set_release_point(&sync.object, hi, lo);
        surface.commit();
    });
    assert_eq!((code, iface.as_str()), (6, SURFACE_IF));
    // no_surface: a point set after the wl_surface is gone.
    let (code, iface) = error_case(&device, |_, _, sync, surface, syncobj| {
        surface.destroy();
        let (hi, lo) = point(1);
        syncobj.set_acquire_point(&sync.object, hi, lo);
    });
    assert_eq!((code, iface.as_str()), (1, SURFACE_IF));
}

#[test]
fn get_surface_works_again_after_the_syncobj_surface_is_destroyed() {
    let Some(device) = device("get_surface_again") else {
        return;
    };
    let mut f = Fixture::new();
    let c = f.add_client();
    let sync = setup(&mut f, c, &device);
    let cl = f.client(c);
    let surface = cl.compositor.create_surface(&cl.qh, ());
    let first = sync.manager.get_surface(&surface, &cl.qh, ());
    first.destroy();
    let _second = sync.manager.get_surface(&surface, &cl.qh, ());
    f.roundtrip(c);
    assert_eq!(f.client(c).protocol_error(), None);
}

#[test]
fn a_commit_waits_for_its_acquire_point_and_the_old_buffer_is_released() {
    let Some(device) = device("acquire_then_release") else {
        return;
    };
    let mut f = Fixture::new();
    let c = f.add_client();
    let sync = setup(&mut f, c, &device);
    let top = f.map_window(c, 100, 80, 0xffd0_2020); // red, implicit sync, centred at (590, 320)
    let cl = f.client(c);
    let syncobj = sync.manager.get_surface(&top.surface, &cl.qh, ());
    // Frame 1: green, acquire 1 (not yet submitted: wait-before-signal), release 2 on the
    // release timeline.
    let green = f.client(c).shm_buffer(100, 80, 0xff20_c040);
    top.surface.attach(Some(&green), 0, 0);
    top.surface.damage_buffer(0, 0, 100, 80);
    syncobj.set_acquire_point(&sync.object, 0, 1);
    syncobj.set_release_point(&sync.release_object, 0, 2);
    top.surface.commit();
    f.roundtrip(c);
    f.settle();
    assert_eq!(
        rgb(&f.screenshot("HEADLESS-1"), 640, 360),
        0xd02020,
        "not shown before acquire"
    );
    assert_eq!(
        f.server.state.core.acquire_waits.len(),
        1,
        "one commit held"
    );
    sync.timeline.signal(Point(1)).unwrap();
    let shown = f.wait_until(Duration::from_secs(2), |f| {
        f.settle();
        rgb(&f.screenshot("HEADLESS-1"), 640, 360) == 0x20c040
    });
    assert!(shown, "shown after the acquire point signalled");
    assert!(f.server.state.core.acquire_waits.is_empty());
    assert!(
        !sync.release.is_signalled(Point(2)).unwrap_or(false),
        "release 2 held while current"
    );
    // Frame 2: blue with acquire 3 (already signalled), release 4: buffer 1 is released.
    sync.timeline.signal(Point(3)).unwrap();
    let blue = f.client(c).shm_buffer(100, 80, 0xff30_40e0);
    top.surface.attach(Some(&blue), 0, 0);
    top.surface.damage_buffer(0, 0, 100, 80);
    syncobj.set_acquire_point(&sync.object, 0, 3);
    syncobj.set_release_point(&sync.release_object, 0, 4);
    top.surface.commit();
    f.roundtrip(c);
    f.settle();
    assert_eq!(rgb(&f.screenshot("HEADLESS-1"), 640, 360), 0x3040e0);
    assert!(
        sync.release.is_signalled(Point(2)).unwrap(),
        "release 2 signalled after a newer buffer"
    );
    // Destroying the surface releases the current buffer.
    syncobj.destroy();
    top.toplevel.destroy();
    top.xdg_surface.destroy();
    top.surface.destroy();
    f.roundtrip(c);
    assert!(
        sync.release.is_signalled(Point(4)).unwrap(),
        "release 4 signalled when the surface died"
    );
    assert_eq!(f.client(c).protocol_error(), None);
}

#[test]
fn an_acquire_point_that_never_signals_stalls_only_that_surface() {
    let Some(device) = device("acquire_never_signals") else {
        return;
    };
    let mut config = crate::fixture::floating_config();
    config.explicit_sync.acquire_timeout_ms = 200;
    let mut f = Fixture::with_config(config, &[DEFAULT_OUTPUT]);
    let c = f.add_client();
    let sync = setup(&mut f, c, &device);
    let top = f.map_window(c, 100, 80, 0xffd0_2020);
    let other = f.add_client();
    f.map_window(other, 50, 50, 0xff20_c040);
    let cl = f.client(c);
    let syncobj = sync.manager.get_surface(&top.surface, &cl.qh, ());
    let blue = f.client(c).shm_buffer(100, 80, 0xff30_40e0);
    top.surface.attach(Some(&blue), 0, 0);
    top.surface.damage_buffer(0, 0, 100, 80);
    syncobj.set_acquire_point(&sync.object, 0, 10);
    syncobj.set_release_point(&sync.release_object, 0, 11);
    top.surface.commit();
    f.roundtrip(c);
    // Meanwhile another client keeps updating.
    f.map_window(other, 60, 60, 0xff30_40e0);
    f.run_for(Duration::from_millis(400));
    assert_eq!(
        f.server.state.core.acquire_waits.len(),
        1,
        "past acquire_timeout_ms the commit still waits: no timeout drops or shows it"
    );
    assert_eq!(
        rgb(&f.screenshot("HEADLESS-1"), 600, 330),
        0xd02020,
        "old content kept"
    );
    assert_eq!(f.windows().len(), 3);
    // The next frame (acquire already signalled, on a timeline of its own) queues behind the
    // held one: a surface's commits apply in order, and the held buffer is never skipped.
    let ready = device.create_timeline().expect("create timeline");
    ready.signal(Point(1)).unwrap();
    let cl = f.client(c);
    let ready_object = sync
        .manager
        .import_timeline(ready.export_fd().unwrap().as_fd(), &cl.qh, ());
    let green = f.client(c).shm_buffer(100, 80, 0xff20_c040);
    top.surface.attach(Some(&green), 0, 0);
    top.surface.damage_buffer(0, 0, 100, 80);
    syncobj.set_acquire_point(&ready_object, 0, 1);
    syncobj.set_release_point(&sync.release_object, 0, 21);
    top.surface.commit();
    f.roundtrip(c);
    f.settle();
    assert_eq!(
        rgb(&f.screenshot("HEADLESS-1"), 600, 330),
        0xd02020,
        "queued behind the held commit"
    );
    assert!(!sync.release.is_signalled(Point(11)).unwrap_or(false));
    // The late point signals: both commits apply, in order.
    sync.timeline.signal(Point(10)).unwrap();
    let shown = f.wait_until(Duration::from_secs(2), |f| {
        f.settle();
        rgb(&f.screenshot("HEADLESS-1"), 600, 330) == 0x20c040
    });
    assert!(shown, "both applied once the late point signalled");
    assert!(
        sync.release.is_signalled(Point(11)).unwrap(),
        "the held frame's release point is signalled once it is replaced"
    );
    assert_eq!(f.client(c).protocol_error(), None);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn thousand_blocked_clients_disconnecting_leave_no_fds_behind() {
    let Some(device) = device("stress_disconnect") else {
        return;
    };
    let mut f = Fixture::new();
    // Warm up: one cycle so lazily opened fds (device, caches) exist before the baseline.
    let cycle = |f: &mut Fixture| {
        let c = f.add_client();
        let sync = setup(f, c, &device);
        let cl = f.client(c);
        let surface = cl.compositor.create_surface(&cl.qh, ());
        let syncobj = sync.manager.get_surface(&surface, &cl.qh, ());
        let buffer = f.client(c).shm_buffer(4, 4, 0xff00_00ff);
        surface.attach(Some(&buffer), 0, 0);
        syncobj.set_acquire_point(&sync.object, 0, 1);
        syncobj.set_release_point(&sync.release_object, 0, 1);
        surface.commit();
        f.roundtrip(c);
        assert_eq!(f.server.state.core.acquire_waits.len(), 1);
        // Disconnect: drop the client's connection.
        let client = f.clients.remove(c.0);
        drop(client);
        drop(sync);
        f.wait_until(Duration::from_secs(2), |f| {
            f.server.state.core.acquire_waits.is_empty()
        });
    };
    cycle(&mut f);
    // Let closes the loop defers (sources removed in a flush, disconnected sockets) happen
    // before each count.
    f.settle();
    let baseline = open_fds();
    for _ in 0..1000 {
        cycle(&mut f);
    }
    assert!(f.server.state.core.acquire_waits.is_empty());
    f.settle();
    assert_eq!(open_fds(), baseline, "fds leaked over 1,000 cycles");
}

#[test]
fn validation_mode_records_each_kind_of_mistake() {
    use lockstep::sync_validation::MistakeKind;
    let Some(device) = device("validation_mode") else {
        return;
    };
    let mut config = crate::fixture::floating_config();
    config.explicit_sync.validation = true;
    config.explicit_sync.acquire_timeout_ms = 200;
    let mut f = Fixture::with_config(config, &[DEFAULT_OUTPUT]);
    let kinds = |f: &Fixture| -> Vec<MistakeKind> { f.server.state.core.sync_validation.kinds() };
    let c = f.add_client();
    let sync = setup(&mut f, c, &device);
    let top = f.map_window(c, 40, 40, 0xffd0_2020);
    let cl = f.client(c);
    let syncobj = sync.manager.get_surface(&top.surface, &cl.qh, ());
    let buffer = f.client(c).shm_buffer(40, 40, 0xff20_c040);
    let commit = |f: &mut Fixture,
                  acquire: (&WpLinuxDrmSyncobjTimelineV1, u64),
                  release: (&WpLinuxDrmSyncobjTimelineV1, u64)| {
        top.surface.attach(Some(&buffer), 0, 0);
        top.surface.damage_buffer(0, 0, 40, 40);
        syncobj.set_acquire_point(acquire.0, 0, acquire.1 as u32);
        syncobj.set_release_point(release.0, 0, release.1 as u32);
        top.surface.commit();
        f.roundtrip(c);
        f.settle();
    };
    // A clean frame: separate timelines, increasing points, acquire signalled.
    sync.timeline.signal(Point(1)).unwrap();
    commit(&mut f, (&sync.object, 1), (&sync.release_object, 1));
    assert_eq!(kinds(&f), vec![], "a correct client gets no entries");

    // 1. The same wl_buffer again while its release point 1 is still held.
    sync.timeline.signal(Point(2)).unwrap();
    commit(&mut f, (&sync.object, 2), (&sync.release_object, 2));
    assert!(
        kinds(&f).contains(&MistakeKind::BufferReusedBeforeRelease),
        "{:?}",
        kinds(&f)
    );

    // 2. A release point lower than one set before on that timeline.
    sync.timeline.signal(Point(3)).unwrap();
    commit(&mut f, (&sync.object, 3), (&sync.release_object, 1));
    assert!(
        kinds(&f).contains(&MistakeKind::PointsNotIncreasing),
        "{:?}",
        kinds(&f)
    );

    // 3. The client signals lockstep's release point itself, then commits.
    sync.release.signal(Point(10)).unwrap();
    sync.timeline.signal(Point(4)).unwrap();
    commit(&mut f, (&sync.object, 4), (&sync.release_object, 11));
    assert!(
        kinds(&f).contains(&MistakeKind::ReleaseSignalledByClient),
        "{:?}",
        kinds(&f)
    );

    // 4. An acquire point above a release point lockstep holds on the same timeline.
    sync.timeline.signal(Point(5)).unwrap();
    commit(&mut f, (&sync.object, 5), (&sync.object, 6));
    // The client commits acquire 7 before its GPU work is done (as it should), but 7 is
    // above the release point 6 that lockstep holds on that timeline.
    commit(&mut f, (&sync.object, 7), (&sync.release_object, 12));
    assert!(
        kinds(&f).contains(&MistakeKind::AcquireSignalsHeldRelease),
        "{:?}",
        kinds(&f)
    );

    sync.timeline.signal(Point(7)).unwrap();
    f.settle();

    // 5. An acquire point that never signals.
    commit(&mut f, (&sync.object, 100), (&sync.release_object, 13));
    f.run_for(Duration::from_millis(400));
    assert!(
        kinds(&f).contains(&MistakeKind::AcquireTimeout),
        "{:?}",
        kinds(&f)
    );
    let entry = &f.server.state.core.sync_validation.entries().0[0];
    assert!(entry.surface.starts_with("wl_surface@") && entry.timeline.contains("timeline"));
    assert_eq!(
        entry.client_pid,
        Some(std::process::id() as i32),
        "in-process client pid"
    );
}

/// The native-fence release path (`handlers/drm_syncobj.rs`, "Release"), with a sw_sync fence
/// standing in for the GPU's render fence (the VM's Mesa has no native fences): a kernel
/// timeline point gets the fence imported and is signalled by the kernel when the fence
/// signals, with no loop iteration in between; a soft timeline point is signalled from the
/// event loop then; neither before.
#[test]
fn syncobj_release_points_follow_the_render_fence() {
    use lockstep_sync::{SoftTimeline, Timeline, TimelinePoint};
    let Some(device) = device("syncobj_release_points_follow_the_render_fence") else {
        return;
    };
    let gpu = match lockstep_vm_support::sw_sync::SwTimeline::new() {
        Ok(gpu) => gpu,
        Err(err) => {
            assert!(
                std::env::var_os("LOCKSTEP_REQUIRE_KERNEL").is_none_or(|v| v != "1"),
                "LOCKSTEP_REQUIRE_KERNEL=1 but no sw_sync: {err}"
            );
            eprintln!("SKIP: no sw_sync ({err})");
            return;
        }
    };
    let mut f = Fixture::new();
    let kernel = device.create_timeline().expect("create timeline");
    let soft = SoftTimeline::new();
    let points = vec![
        TimelinePoint::new(Timeline::Drm(kernel.clone()), Point(3)),
        TimelinePoint::new(Timeline::Soft(soft.clone()), Point(1)),
    ];
    let fence = gpu.fence(1, "render").expect("fence").into_fd();
    let handle = f.server.state.core.loop_handle.clone();
    lockstep::handlers::drm_syncobj::release_after_fence(&handle, points, fence);
    f.run_for(Duration::from_millis(100));
    assert!(
        !kernel.is_signalled(Point(3)).unwrap_or(false),
        "not before the fence"
    );
    assert!(
        !soft.is_signalled(Point(1)).unwrap_or(false),
        "not before the fence"
    );
    gpu.advance(1).expect("signal the render fence");
    // The kernel signals the imported point itself.
    assert!(
        kernel.is_signalled(Point(3)).expect("query"),
        "signalled by the kernel"
    );
    let soft_done = f.wait_until(Duration::from_secs(2), |_| {
        soft.is_signalled(Point(1)).unwrap_or(false)
    });
    assert!(soft_done, "the soft point is signalled from the loop");
}

/// A held commit's acquire fence gets a deadline (issue: vblank deadlines on acquire fences):
/// the client's GPU fence is a sw_sync fence, imported into its acquire point; sw_sync's
/// `SW_SYNC_GET_DEADLINE` reads back what lockstep set. It must be the margin before a frame
/// slot of the window's output (on the phase of its last frame) that is still ahead of the
/// commit, and no later than one refresh after the commit.
#[test]
fn syncobj_held_acquire_fence_gets_the_next_vblank_as_deadline() {
    use lockstep::frame_clock::COMPOSITION_MARGIN;
    let Some(device) = device("syncobj_acquire_deadline") else {
        return;
    };
    let gpu = lockstep_vm_support::sw_sync::SwTimeline::new().expect("sw_sync in the VM");
    let mut f = Fixture::new();
    let c = f.add_client();
    let sync = setup(&mut f, c, &device);
    let top = f.map_window(c, 100, 80, 0xffd0_2020);
    f.settle();
    let cl = f.client(c);
    let syncobj = sync.manager.get_surface(&top.surface, &cl.qh, ());
    let fence = gpu.fence(1, "client render").expect("fence");
    let file = lockstep_sync::SyncFile::from_fd(fence.as_fd().try_clone_to_owned().unwrap())
        .expect("sync_file");
    sync.timeline
        .import_sync_file(Point(1), &file)
        .expect("import the GPU fence as acquire point 1");
    assert_eq!(
        gpu.deadline(&fence).expect("get deadline"),
        None,
        "none yet"
    );
    let buffer = f.client(c).shm_buffer(100, 80, 0xff20_c040);
    top.surface.attach(Some(&buffer), 0, 0);
    top.surface.damage_buffer(0, 0, 100, 80);
    syncobj.set_acquire_point(&sync.object, 0, 1);
    syncobj.set_release_point(&sync.release_object, 0, 2);
    let committed = f.server.state.core.now();
    top.surface.commit();
    f.roundtrip(c);
    let after = f.server.state.core.now().as_nanos() as u64;
    assert_eq!(
        f.server.state.core.acquire_waits.len(),
        1,
        "the commit is held"
    );
    let deadline = gpu
        .deadline(&fence)
        .expect("get deadline")
        .expect("lockstep set a deadline on the acquire fence");
    let data = &f.server.state.core.outputs["HEADLESS-1"];
    let (refresh, last) = (
        data.refresh.as_nanos() as u64,
        data.last_presentation
            .expect("the window was shown")
            .as_nanos() as u64,
    );
    let margin = COMPOSITION_MARGIN.as_nanos() as u64;
    let committed = committed.as_nanos() as u64;
    assert!(deadline > committed, "ahead of the commit");
    assert!(
        deadline <= after + refresh,
        "within a refresh of the commit: deadline {deadline}, committed {committed}, \
         after {after}, last frame {last}, refresh {refresh}"
    );
    assert_eq!(
        (deadline + margin - last) % refresh,
        0,
        "the margin before a frame slot (last frame at {last} ns, refresh {refresh} ns)"
    );
    gpu.advance(1).expect("signal");
    let applied = f.wait_until(Duration::from_secs(2), |f| {
        f.server.state.core.acquire_waits.is_empty()
    });
    assert!(applied, "applied once the fence signalled");
}
