//! Benchmark (not a test: it asserts nothing about time): latency from an acquire point being
//! signalled to the held commits being applied, with 1, 100 and 1,000 surfaces blocked on it at
//! once. Needs kernel timelines, so it runs in the VM:
//!
//! ```sh
//! vm/test --dynamic -p lockstep --test in_process -f … -- --ignored --nocapture acquire_latency
//! ```
#![allow(clippy::disallowed_macros)]

use std::{os::fd::AsFd, time::Instant};

use lockstep_sync::{DrmDevice, NodeKind, Point, SyncDevice};
use wayland_client::protocol::{wl_buffer::WlBuffer, wl_surface::WlSurface};
use wayland_protocols::wp::linux_drm_syncobj::v1::client::{
    wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1,
    wp_linux_drm_syncobj_surface_v1::WpLinuxDrmSyncobjSurfaceV1,
    wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1,
};

use crate::fixture::Fixture;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Commits `blocked` surfaces of client `c` on acquire point 1 of `acquire_obj`, waits until
/// lockstep holds them all, calls `signal`, and returns each commit's latency in µs from the
/// signal to its apply.
fn measure(
    f: &mut Fixture,
    c: crate::fixture::ClientId,
    manager: &WpLinuxDrmSyncobjManagerV1,
    timelines: (&WpLinuxDrmSyncobjTimelineV1, &WpLinuxDrmSyncobjTimelineV1),
    blocked: usize,
    signal: impl FnOnce(),
) -> Vec<f64> {
    let (acquire_obj, release_obj) = timelines;
    let mut keep = Vec::new();
    for i in 0..blocked {
        let cl = f.client(c);
        let surface = cl.compositor.create_surface(&cl.qh, ());
        let syncobj = manager.get_surface(&surface, &cl.qh, ());
        let buffer = f.client(c).shm_buffer(4, 4, 0xff00_00ff);
        surface.attach(Some(&buffer), 0, 0);
        syncobj.set_acquire_point(acquire_obj, 0, 1);
        syncobj.set_release_point(release_obj, 0, i as u32 + 1);
        surface.commit();
        keep.push((surface, syncobj, buffer));
    }
    let held = f.wait_until(std::time::Duration::from_secs(300), |f| {
        f.server.state.core.acquire_waits.len() == blocked
    });
    assert!(held, "not all {blocked} commits were held");
    f.server.state.core.acquire_waits.take_applied_times();
    let signalled = Instant::now();
    signal();
    while !f.server.state.core.acquire_waits.is_empty() {
        f.server
            .dispatch(Some(std::time::Duration::from_millis(1)))
            .expect("dispatch");
    }
    f.server
        .state
        .core
        .acquire_waits
        .take_applied_times()
        .into_iter()
        .map(|t| t.duration_since(signalled).as_secs_f64() * 1e6)
        .collect()
}

/// One held surface of [`measure_one_at_a_time`] and its client's timeline objects.
struct Held {
    surface: WlSurface,
    syncobj: WpLinuxDrmSyncobjSurfaceV1,
    buffer: WlBuffer,
    acquire: WpLinuxDrmSyncobjTimelineV1,
    release: WpLinuxDrmSyncobjTimelineV1,
}

impl Held {
    /// Commits the buffer again on acquire and release point `point`.
    fn commit(&self, point: u64) {
        self.surface.attach(Some(&self.buffer), 0, 0);
        let (hi, lo) = ((point >> 32) as u32, point as u32);
        self.syncobj.set_acquire_point(&self.acquire, hi, lo);
        self.syncobj.set_release_point(&self.release, hi, lo);
        self.surface.commit();
    }
}

/// Commits `blocked` surfaces spread over `clients` clients (surface `i` on acquire point
/// `i + 1` of the soft acquire timeline) and waits until lockstep holds them all. Then,
/// `samples` times, signals the lowest held point, which releases exactly one commit while
/// the other `blocked - 1` stay held, and returns each latency in µs from the signal to that
/// commit's apply. After each sample the released surface commits again on the next free
/// point, untimed, so `blocked` commits are held whenever a point is signalled.
fn measure_one_at_a_time(
    s: &mut SoftSetup,
    clients: usize,
    blocked: usize,
    samples: usize,
) -> Vec<f64> {
    let mut bound = vec![(
        s.c,
        s.manager.clone(),
        s.acquire_obj.clone(),
        s.release_obj.clone(),
    )];
    for _ in 1..clients {
        let c = s.f.add_client();
        let manager = manager(&mut s.f, c);
        let qh = s.f.client(c).qh.clone();
        let acquire = manager.import_timeline(s._fds.0.as_fd(), &qh, ());
        let release = manager.import_timeline(s._fds.1.as_fd(), &qh, ());
        bound.push((c, manager, acquire, release));
    }
    let f = &mut s.f;
    let mut surfaces = Vec::new();
    for i in 0..blocked {
        let (c, manager, acquire, release) = &bound[i % clients];
        let cl = f.client(*c);
        let surface = cl.compositor.create_surface(&cl.qh, ());
        let syncobj = manager.get_surface(&surface, &cl.qh, ());
        let buffer = f.client(*c).shm_buffer(4, 4, 0xff00_00ff);
        let held = Held {
            surface,
            syncobj,
            buffer,
            acquire: acquire.clone(),
            release: release.clone(),
        };
        held.commit(i as u64 + 1);
        surfaces.push(held);
    }
    let mut latencies = Vec::with_capacity(samples);
    for k in 0..samples {
        let held = f.wait_until(std::time::Duration::from_secs(300), |f| {
            f.server.state.core.acquire_waits.len() == blocked
        });
        assert!(held, "not all {blocked} commits were held");
        f.server.state.core.acquire_waits.take_applied_times();
        let signalled = Instant::now();
        s.acquire.signal(Point(k as u64 + 1));
        let applied = loop {
            f.server
                .dispatch(Some(std::time::Duration::from_millis(1)))
                .expect("dispatch");
            let times = f.server.state.core.acquire_waits.take_applied_times();
            if let Some(t) = times.first() {
                assert_eq!(times.len(), 1, "one signal released one commit");
                break *t;
            }
        };
        latencies.push(applied.duration_since(signalled).as_secs_f64() * 1e6);
        surfaces[k % blocked].commit((blocked + k) as u64 + 1);
    }
    latencies
}

fn print_row(name: &str, blocked: usize, mut samples: Vec<f64>, rounds: usize) {
    samples.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{name} blocked={blocked}: median {:.1} us, p99 {:.1} us, max {:.1} us ({} samples, {rounds} rounds)",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(0.0),
        samples.len()
    );
}

/// Binds the syncobj manager for client `c`.
/// Binds the linux-drm-syncobj-v1 manager for client `c`.
pub(crate) fn manager(f: &mut Fixture, c: crate::fixture::ClientId) -> WpLinuxDrmSyncobjManagerV1 {
    let cl = f.client(c);
    let (name, _) = cl.data.globals["wp_linux_drm_syncobj_manager_v1"];
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    registry.bind::<WpLinuxDrmSyncobjManagerV1, _, _>(name, 1, &cl.qh, ())
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture in the VM"]
fn acquire_latency() {
    let Some(device) = DrmDevice::list(NodeKind::Render)
        .into_iter()
        .find(|d| d.capabilities().supports_explicit_sync())
    else {
        eprintln!("acquire_latency: no render node with timeline syncobjs (run it in the VM)");
        return;
    };
    for blocked in [1usize, 100, 1000] {
        let mut config = crate::fixture::floating_config();
        config.explicit_sync.max_held_commits_per_client = 100_000;
        let mut f = Fixture::with_config(config, &[crate::fixture::DEFAULT_OUTPUT]);
        let c = f.add_client();
        let manager = manager(&mut f, c);
        let acquire = device.create_timeline().unwrap();
        let release = device.create_timeline().unwrap();
        let qh = f.client(c).qh.clone();
        let acquire_obj = manager.import_timeline(acquire.export_fd().unwrap().as_fd(), &qh, ());
        let release_obj = manager.import_timeline(release.export_fd().unwrap().as_fd(), &qh, ());
        let latencies = measure(
            &mut f,
            c,
            &manager,
            (&acquire_obj, &release_obj),
            blocked,
            || acquire.signal(Point(1)).unwrap(),
        );
        print_row("acquire_latency", blocked, latencies, 1);
    }
}

use crate::soft_device;

/// A fixture whose only explicit-sync global runs on [`soft_device`], a client bound to it,
/// and two soft timelines imported (acquire, release).
struct SoftSetup {
    f: Fixture,
    c: crate::fixture::ClientId,
    manager: WpLinuxDrmSyncobjManagerV1,
    acquire: lockstep_sync::SoftTimeline,
    acquire_obj: WpLinuxDrmSyncobjTimelineV1,
    release_obj: WpLinuxDrmSyncobjTimelineV1,
    _fds: (std::os::fd::OwnedFd, std::os::fd::OwnedFd),
}

impl Drop for SoftSetup {
    /// Ends every wait the round left pending: their fence callbacks hold eventfds, and the
    /// soft timeline outlives the round (the device's registry keeps it), so without this
    /// each round would leak one fd per held commit and later rows would run out of fds.
    fn drop(&mut self) {
        self.acquire.signal(Point(u64::MAX));
    }
}

fn soft_setup() -> SoftSetup {
    use lockstep::handlers::drm_syncobj::init_with;
    // Explicit sync off in the config, so a real render node (in the VM) does not add a
    // second global; the soft device is the only one.
    let mut config = crate::fixture::floating_config();
    config.explicit_sync.enabled = false;
    // The benchmark holds up to 1,000 commits of one client.
    config.explicit_sync.max_held_commits_per_client = 100_000;
    let mut f = Fixture::with_config(config, &[crate::fixture::DEFAULT_OUTPUT]);
    let device = soft_device::SoftDevice(lockstep_sync::Capabilities::unsupported(
        "a userspace benchmark device",
    ));
    init_with(
        &mut f.server.state.core,
        Ok(std::sync::Arc::new(device)),
        false,
    );
    let c = f.add_client();
    let manager = manager(&mut f, c);
    let (acquire, acquire_fd) = soft_device::new_timeline();
    let (_release, release_fd) = soft_device::new_timeline();
    let qh = f.client(c).qh.clone();
    let acquire_obj = manager.import_timeline(acquire_fd.as_fd(), &qh, ());
    let release_obj = manager.import_timeline(release_fd.as_fd(), &qh, ());
    SoftSetup {
        f,
        c,
        manager,
        acquire,
        acquire_obj,
        release_obj,
        _fds: (acquire_fd, release_fd),
    }
}

/// The in-process figures: run them on the host (`cargo test --release -p lockstep --test
/// in_process acquire_latency_soft -- --ignored --nocapture`); under the VM's emulation the
/// 1,000-surface round does not finish within the fixture's wait. Two ways to release N held
/// commits:
///
/// * `one-at-a-time`: N commits are held and one point signals, releasing one of them (the
///   issue's "with N surfaces blocked at once"): does holding many commits slow down the
///   release of one? With one client, smithay walks that client's whole commit queue on each
///   release (O(N)); the 10-client row spreads the same N commits over 10 queues.
/// * `all-at-once`: one point releases all N together. The latency then includes applying
///   the commits released before each one, so it grows with N whatever the per-commit cost.
#[test]
#[ignore = "benchmark: run with --ignored --nocapture on the host"]
fn acquire_latency_soft() {
    const ROUNDS: usize = 5;
    for (blocked, clients) in [(1usize, 1usize), (100, 1), (1000, 1), (1000, 10)] {
        let mut samples = Vec::new();
        for _round in 0..ROUNDS {
            let mut s = soft_setup();
            samples.extend(measure_one_at_a_time(&mut s, clients, blocked, 200));
        }
        let name = format!("acquire_latency_soft one-at-a-time clients={clients}");
        print_row(&name, blocked, samples, ROUNDS);
    }
    for blocked in [1usize, 100, 1000] {
        let mut samples = Vec::new();
        for _round in 0..ROUNDS {
            let mut s = soft_setup();
            let acquire = s.acquire.clone();
            samples.extend(measure(
                &mut s.f,
                s.c,
                &s.manager,
                (&s.acquire_obj, &s.release_obj),
                blocked,
                || acquire.signal(Point(1)),
            ));
        }
        print_row("acquire_latency_soft all-at-once", blocked, samples, ROUNDS);
    }
}
