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
use wayland_protocols::wp::linux_drm_syncobj::v1::client::wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1;

use crate::fixture::Fixture;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
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
        let mut f = Fixture::new();
        let c = f.add_client();
        let cl = f.client(c);
        let (name, _) = cl.data.globals["wp_linux_drm_syncobj_manager_v1"];
        let registry = cl.conn.display().get_registry(&cl.qh, ());
        let manager = registry.bind::<WpLinuxDrmSyncobjManagerV1, _, _>(name, 1, &cl.qh, ());
        let acquire = device.create_timeline().unwrap();
        let release = device.create_timeline().unwrap();
        let acquire_obj = manager.import_timeline(acquire.export_fd().unwrap().as_fd(), &cl.qh, ());
        let release_obj = manager.import_timeline(release.export_fd().unwrap().as_fd(), &cl.qh, ());
        let mut keep = Vec::new();
        for i in 0..blocked {
            let cl = f.client(c);
            let surface = cl.compositor.create_surface(&cl.qh, ());
            let syncobj = manager.get_surface(&surface, &cl.qh, ());
            let buffer = f.client(c).shm_buffer(4, 4, 0xff00_00ff);
            surface.attach(Some(&buffer), 0, 0);
            syncobj.set_acquire_point(&acquire_obj, 0, 1);
            syncobj.set_release_point(&release_obj, 0, i as u32 + 1);
            surface.commit();
            keep.push((surface, syncobj, buffer));
        }
        let held = f.wait_until(std::time::Duration::from_secs(300), |f| {
            f.server.state.core.acquire_waits.len() == blocked
        });
        assert!(held, "not all {blocked} commits were held");
        f.server.state.core.acquire_waits.take_applied_times();
        let signalled = Instant::now();
        acquire.signal(Point(1)).unwrap();
        while !f.server.state.core.acquire_waits.is_empty() {
            f.dispatch();
        }
        let mut latencies: Vec<f64> = f
            .server
            .state
            .core
            .acquire_waits
            .take_applied_times()
            .into_iter()
            .map(|t| t.duration_since(signalled).as_secs_f64() * 1e6)
            .collect();
        latencies.sort_by(|a, b| a.total_cmp(b));
        println!(
            "acquire_latency blocked={blocked}: median {:.0} us, p99 {:.0} us, max {:.0} us ({} applied)",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(0.0),
            latencies.len()
        );
    }
}
