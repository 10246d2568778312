//! The release rules of `lockstep_protocols::linux_drm_syncobj_v1` (one test per row of the
//! table in its module docs), "an unsignalled buffer is never shown", the per-client cap on
//! held commits and the bounds of validation mode. They run on [`soft_device`] timelines, so
//! they need no kernel and run on the host as well as in the VM.
//!
//! Every explicit commit here has its own acquire and release timeline (point 1 on each), so
//! "released" means exactly "this commit's release point was signalled".
#![allow(clippy::disallowed_macros)]

use std::{os::fd::OwnedFd, time::Duration};

use lockstep_sync::{Point, SoftTimeline};
use wayland_client::protocol::{wl_buffer::WlBuffer, wl_surface::WlSurface};
use wayland_protocols::wp::linux_drm_syncobj::v1::client::{
    wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1,
    wp_linux_drm_syncobj_surface_v1::WpLinuxDrmSyncobjSurfaceV1,
    wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1,
};

use crate::{
    client::Toplevel,
    fixture::{rgb, ClientId, Fixture, DEFAULT_OUTPUT},
    soft_device,
};

/// The window of [`Rules::new`] is 100×80 at (590, 320); this pixel is inside it.
const IN_WINDOW: (i32, i32) = (640, 360);
/// Inside the 20×20 subsurface at the window's origin.
const IN_CHILD: (i32, i32) = (600, 330);

const RED: u32 = 0xffd0_2020;
const GREEN: u32 = 0xff20_c040;
const BLUE: u32 = 0xff30_40e0;
const YELLOW: u32 = 0xffe0_d020;

/// A soft timeline imported by the client.
struct Tl {
    soft: SoftTimeline,
    obj: WpLinuxDrmSyncobjTimelineV1,
    _fd: OwnedFd,
}

/// The points of one explicit commit.
struct Points {
    acquire: Tl,
    release: Tl,
}

impl Points {
    fn released(&self) -> bool {
        matches!(self.release.soft.is_signalled(Point(1)), Ok(true))
    }

    fn signal_acquire(&self) {
        self.acquire.soft.signal(Point(1));
    }
}

/// A fixture whose explicit-sync global runs on the soft device, one client with a mapped
/// red 100×80 window.
struct Rules {
    f: Fixture,
    c: ClientId,
    manager: WpLinuxDrmSyncobjManagerV1,
    top: Toplevel,
}

impl Rules {
    fn new() -> Self {
        Self::with_config(crate::fixture::floating_config())
    }

    fn with_config(config: lockstep_config::Config) -> Self {
        Self::with_release(config, false)
    }

    /// With `deferred`, release points wait in a queue until the next frame is rendered, as
    /// with an asynchronous renderer; on KMS they wait for the page flip the same way.
    fn with_release(mut config: lockstep_config::Config, deferred: bool) -> Self {
        use lockstep::handlers::drm_syncobj::init_with;
        // Off in the config so that a real render node (in the VM) adds no second global.
        config.explicit_sync.enabled = false;
        let mut f = Fixture::with_config(config, &[DEFAULT_OUTPUT]);
        let device = soft_device::SoftDevice(lockstep_sync::Capabilities::unsupported(
            "a userspace test device",
        ));
        init_with(
            &mut f.server.state.core,
            Ok(std::sync::Arc::new(device)),
            deferred,
        );
        let c = f.add_client();
        let manager = crate::acquire_latency::manager(&mut f, c);
        f.roundtrip(c);
        let top = f.map_window(c, 100, 80, RED);
        Rules { f, c, manager, top }
    }

    fn timeline(&mut self) -> Tl {
        let (soft, fd) = soft_device::new_timeline();
        let qh = self.f.client(self.c).qh.clone();
        let obj = self
            .manager
            .import_timeline(std::os::fd::AsFd::as_fd(&fd), &qh, ());
        Tl { soft, obj, _fd: fd }
    }

    fn surface(&mut self) -> WlSurface {
        let cl = self.f.client(self.c);
        cl.compositor.create_surface(&cl.qh, ())
    }

    fn syncobj(&mut self, surface: &WlSurface) -> WpLinuxDrmSyncobjSurfaceV1 {
        let qh = self.f.client(self.c).qh.clone();
        self.manager.get_surface(surface, &qh, ())
    }

    fn buffer(&mut self, w: i32, h: i32, argb: u32) -> WlBuffer {
        self.f.client(self.c).shm_buffer(w, h, argb)
    }

    /// Attaches `buffer` with fresh points (acquire signalled or not) and commits.
    fn explicit(
        &mut self,
        surface: &WlSurface,
        sync: &WpLinuxDrmSyncobjSurfaceV1,
        buffer: &WlBuffer,
        signalled: bool,
    ) -> Points {
        let points = Points {
            acquire: self.timeline(),
            release: self.timeline(),
        };
        if signalled {
            points.signal_acquire();
        }
        sync.set_acquire_point(&points.acquire.obj, 0, 1);
        sync.set_release_point(&points.release.obj, 0, 1);
        surface.attach(Some(buffer), 0, 0);
        surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
        surface.commit();
        self.f.roundtrip(self.c);
        points
    }

    /// Attaches `buffer` (or NULL) without points and commits.
    fn implicit(&mut self, surface: &WlSurface, buffer: Option<&WlBuffer>) {
        surface.attach(buffer, 0, 0);
        surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
        surface.commit();
        self.f.roundtrip(self.c);
    }

    /// A commit that assigns no buffer.
    fn damage_only(&mut self, surface: &WlSurface) {
        surface.damage_buffer(0, 0, 1, 1);
        surface.commit();
        self.f.roundtrip(self.c);
    }

    fn pixel(&mut self, (x, y): (i32, i32)) -> u32 {
        self.f.settle();
        rgb(&self.f.screenshot("HEADLESS-1"), x, y)
    }

    /// Waits until `(x, y)` shows `argb` (its RGB part).
    fn shows(&mut self, at: (i32, i32), argb: u32) -> bool {
        let want = argb & 0xff_ffff;
        self.f.wait_until(Duration::from_secs(2), |f| {
            f.settle();
            rgb(&f.screenshot("HEADLESS-1"), at.0, at.1) == want
        })
    }

    /// A fresh fixture, its window's surface with a syncobj surface, and a 100×80 buffer of
    /// `argb` committed with a signalled acquire point and shown.
    fn showing(
        argb: u32,
    ) -> (
        Self,
        WlSurface,
        WpLinuxDrmSyncobjSurfaceV1,
        WlBuffer,
        Points,
    ) {
        let mut r = Rules::new();
        let surface = r.top.surface.clone();
        let sync = r.syncobj(&surface);
        let buffer = r.buffer(100, 80, argb);
        let points = r.explicit(&surface, &sync, &buffer, true);
        assert!(
            r.shows(IN_WINDOW, argb),
            "the first explicit buffer is shown"
        );
        (r, surface, sync, buffer, points)
    }

    fn no_error(&mut self) {
        assert_eq!(self.f.client(self.c).protocol_error(), None);
    }
}

// Row: a new buffer with points replaces the old one.
#[test]
fn syncobj_rule_new_buffer_with_points_releases_the_old_one() {
    let (mut r, surface, sync, _green, first) = Rules::showing(GREEN);
    let blue = r.buffer(100, 80, BLUE);
    assert!(
        !first.released(),
        "the current buffer's release point is kept"
    );
    let second = r.explicit(&surface, &sync, &blue, true);
    assert!(r.shows(IN_WINDOW, BLUE));
    assert!(first.released(), "replaced: released");
    assert!(!second.released());
    r.no_error();
}

// Row: a new buffer without points (the syncobj surface was destroyed). The bug of issue 12.
#[test]
fn syncobj_rule_new_buffer_without_points_releases_the_old_one() {
    let (mut r, surface, sync, _green, first) = Rules::showing(GREEN);
    let blue = r.buffer(100, 80, BLUE);
    sync.destroy();
    r.implicit(&surface, Some(&blue));
    assert!(r.shows(IN_WINDOW, BLUE));
    assert!(
        first.released(),
        "the buffer replaced by an implicitly synced one must be released"
    );
    r.no_error();
}

// Row: a client that mixes explicit and implicit sync on one surface, back and forth.
#[test]
fn syncobj_rule_mixing_explicit_and_implicit_commits() {
    let mut r = Rules::new();
    let surface = r.top.surface.clone();
    let colours = [GREEN, BLUE, YELLOW, GREEN, BLUE];
    let buffers: Vec<WlBuffer> = colours.iter().map(|c| r.buffer(100, 80, *c)).collect();
    let mut last: Option<Points> = None;
    for (i, buffer) in buffers.iter().enumerate() {
        if i % 2 == 0 {
            let sync = r.syncobj(&surface);
            let points = r.explicit(&surface, &sync, buffer, true);
            assert!(r.shows(IN_WINDOW, colours[i]), "explicit commit {i} shown");
            if let Some(previous) = &last {
                assert!(
                    previous.released(),
                    "commit {i}: the previous release point"
                );
            }
            // Implicit from here on.
            sync.destroy();
            last = Some(points);
        } else {
            r.implicit(&surface, Some(buffer));
            assert!(r.shows(IN_WINDOW, colours[i]), "implicit commit {i} shown");
            assert!(
                last.as_ref().is_some_and(Points::released),
                "commit {i}: the explicit buffer it replaced was not released"
            );
        }
    }
    r.no_error();
}

// Row: attach(NULL).
#[test]
fn syncobj_rule_null_attach_releases_the_buffer() {
    let (mut r, surface, _sync, _green, first) = Rules::showing(GREEN);
    r.implicit(&surface, None);
    assert!(first.released(), "detached: released");
    r.no_error();
}

// Row: a commit without a buffer assignment keeps the buffer and its points.
#[test]
fn syncobj_rule_commit_without_buffer_keeps_the_points() {
    let (mut r, surface, sync, _green, first) = Rules::showing(GREEN);
    r.damage_only(&surface);
    sync.destroy();
    r.damage_only(&surface);
    assert_eq!(r.pixel(IN_WINDOW), GREEN & 0xff_ffff);
    assert!(!first.released(), "still current: not released");
    r.no_error();
}

// Row: synchronized subsurface, a cached commit followed by a newer cached one without
// points (its syncobj surface destroyed in between).
#[test]
fn syncobj_rule_cached_subsurface_commit_replaced_without_points() {
    let mut r = Rules::new();
    let parent = r.top.surface.clone();
    let (child, _sub) = r.f.client(r.c).subsurface(&parent);
    let sync = r.syncobj(&child);
    let (green, blue, yellow) = (
        r.buffer(20, 20, GREEN),
        r.buffer(20, 20, BLUE),
        r.buffer(20, 20, YELLOW),
    );
    let shown = r.explicit(&child, &sync, &green, true);
    r.damage_only(&parent);
    assert!(r.shows(IN_CHILD, GREEN), "the child's first buffer");
    let cached = r.explicit(&child, &sync, &blue, true);
    sync.destroy();
    r.implicit(&child, Some(&yellow));
    assert_eq!(
        r.pixel(IN_CHILD),
        GREEN & 0xff_ffff,
        "cached until the parent commits"
    );
    assert!(!shown.released() && !cached.released());
    r.damage_only(&parent);
    assert!(r.shows(IN_CHILD, YELLOW));
    assert!(shown.released(), "the shown buffer was replaced");
    assert!(
        cached.released(),
        "the cached buffer replaced before it was used must be released"
    );
    r.no_error();
}

// Row: the same wl_buffer committed again with new points.
#[test]
fn syncobj_rule_recommitted_buffer_releases_the_superseded_point() {
    let (mut r, surface, sync, green, first) = Rules::showing(GREEN);
    let again = r.explicit(&surface, &sync, &green, true);
    r.f.settle();
    assert!(first.released(), "superseded: released");
    assert!(!again.released(), "current: kept");
    r.no_error();
}

// Row: the wl_buffer destroyed while current.
#[test]
fn syncobj_rule_buffer_destroyed_while_current() {
    let (mut r, surface, sync, green, first) = Rules::showing(GREEN);
    let blue = r.buffer(100, 80, BLUE);
    green.destroy();
    r.f.roundtrip(r.c);
    r.damage_only(&surface);
    r.f.settle();
    assert!(
        !first.released(),
        "lockstep keeps the last content and its release point until the surface stops using it"
    );
    let second = r.explicit(&surface, &sync, &blue, true);
    assert!(r.shows(IN_WINDOW, BLUE));
    assert!(first.released(), "replaced: released");
    assert!(!second.released());
    r.no_error();
}

// Row: the wl_buffer destroyed while its commit is held.
#[test]
fn syncobj_rule_buffer_destroyed_while_its_commit_is_held() {
    let mut r = Rules::new();
    let surface = r.top.surface.clone();
    let sync = r.syncobj(&surface);
    let (green, blue, yellow) = (
        r.buffer(100, 80, GREEN),
        r.buffer(100, 80, BLUE),
        r.buffer(100, 80, YELLOW),
    );
    let shown = r.explicit(&surface, &sync, &green, true);
    assert!(r.shows(IN_WINDOW, GREEN));
    let held = r.explicit(&surface, &sync, &blue, false);
    blue.destroy();
    r.f.roundtrip(r.c);
    assert_eq!(r.f.server.state.core.acquire_waits.len(), 1);
    held.signal_acquire();
    r.f.wait_until(Duration::from_secs(2), |f| {
        f.server.state.core.acquire_waits.is_empty()
    });
    r.f.settle();
    assert!(shown.released(), "replaced by the held commit: released");
    let last = r.explicit(&surface, &sync, &yellow, true);
    assert!(r.shows(IN_WINDOW, YELLOW));
    assert!(
        held.released(),
        "the destroyed buffer's commit was replaced: released"
    );
    assert!(!last.released());
    r.no_error();
}

// Rows: the syncobj surface destroyed with a held commit, then re-created; commits queued
// behind the held one apply in order once it signals.
#[test]
fn syncobj_rule_syncobj_surface_destroyed_with_a_held_commit_and_recreated() {
    let mut r = Rules::new();
    let surface = r.top.surface.clone();
    let sync = r.syncobj(&surface);
    let (green, blue, yellow) = (
        r.buffer(100, 80, GREEN),
        r.buffer(100, 80, BLUE),
        r.buffer(100, 80, YELLOW),
    );
    let held = r.explicit(&surface, &sync, &green, false);
    sync.destroy();
    r.implicit(&surface, Some(&blue));
    assert_eq!(
        r.pixel(IN_WINDOW),
        RED & 0xff_ffff,
        "both wait for the acquire point"
    );
    held.signal_acquire();
    assert!(r.shows(IN_WINDOW, BLUE), "then both apply, in order");
    assert!(
        held.released(),
        "the held buffer, replaced by an implicit one, must be released"
    );
    let sync = r.syncobj(&surface);
    let last = r.explicit(&surface, &sync, &yellow, true);
    assert!(
        r.shows(IN_WINDOW, YELLOW),
        "a re-created syncobj surface works"
    );
    assert!(!last.released());
    r.no_error();
}

// Row: wl_surface destroyed, or the client gone, with commits queued behind a held one.
#[test]
fn syncobj_rule_client_gone_with_commits_queued_behind_a_held_one() {
    let mut r = Rules::new();
    let surface = r.top.surface.clone();
    let sync = r.syncobj(&surface);
    let buffers: Vec<WlBuffer> = (0..4).map(|i| r.buffer(100, 80, GREEN + i)).collect();
    let shown = r.explicit(&surface, &sync, &buffers[0], true);
    assert!(r.shows(IN_WINDOW, GREEN));
    let held = r.explicit(&surface, &sync, &buffers[1], false);
    let queued: Vec<Points> = buffers[2..]
        .iter()
        .map(|b| r.explicit(&surface, &sync, b, true))
        .collect();
    assert_eq!(r.f.server.state.core.acquire_waits.len(), 1);
    let client = r.f.clients.remove(r.c.0);
    drop(client);
    let drained = r.f.wait_until(Duration::from_secs(2), |f| {
        f.server.state.core.acquire_waits.is_empty()
    });
    assert!(drained, "the held commit's wait ended with its client");
    r.f.settle();
    assert!(shown.released(), "the shown buffer");
    assert!(held.released(), "the held buffer");
    for (i, q) in queued.iter().enumerate() {
        assert!(q.released(), "queued buffer {i}");
    }
}

// "An unsignalled buffer is never shown": a buffer-less commit after a held one, also long
// after `acquire_timeout_ms` (with the old timeout, the cancelled commit's state stayed in
// smithay's cache and this commit brought its buffer on screen).
#[test]
fn syncobj_a_bufferless_commit_after_a_late_acquire_never_shows_the_buffer() {
    let mut config = crate::fixture::floating_config();
    config.explicit_sync.acquire_timeout_ms = 50;
    config.explicit_sync.validation = true;
    let mut r = Rules::with_config(config);
    let surface = r.top.surface.clone();
    let sync = r.syncobj(&surface);
    let green = r.buffer(100, 80, GREEN);
    let held = r.explicit(&surface, &sync, &green, false);
    r.f.run_for(Duration::from_millis(200));
    r.damage_only(&surface);
    r.f.run_for(Duration::from_millis(100));
    assert_eq!(
        r.pixel(IN_WINDOW),
        RED & 0xff_ffff,
        "a buffer whose acquire point never signalled was shown"
    );
    assert!(
        !held.released(),
        "not used, but not given up either: it still waits"
    );
    assert_eq!(r.f.server.state.core.acquire_waits.len(), 1, "still held");
    let kinds = r.f.server.state.core.sync_validation.kinds();
    assert_eq!(
        kinds,
        vec![lockstep::sync_validation::MistakeKind::AcquireTimeout],
        "validation mode reports the late acquire point once"
    );
    held.signal_acquire();
    assert!(r.shows(IN_WINDOW, GREEN), "shown once signalled");
    r.no_error();
}

/// The per-client cap: the commit past it disconnects that client with `no_memory` on
/// `wl_display`; another client is not affected and every wait of the first one ends.
#[test]
fn syncobj_held_commits_are_capped_per_client() {
    let mut config = crate::fixture::floating_config();
    config.explicit_sync.max_held_commits_per_client = 4;
    let mut r = Rules::with_config(config);
    let other = r.f.add_client();
    let other_top = r.f.map_window(other, 50, 50, BLUE);
    let mut surfaces = Vec::new();
    let mut held = Vec::new();
    for _ in 0..4 {
        let surface = r.surface();
        let sync = r.syncobj(&surface);
        let buffer = r.buffer(8, 8, GREEN);
        held.push(r.explicit(&surface, &sync, &buffer, false));
        surfaces.push((surface, sync, buffer));
    }
    assert_eq!(r.f.server.state.core.acquire_waits.len(), 4);
    r.no_error();
    // The fifth.
    let surface = r.surface();
    let sync = r.syncobj(&surface);
    let buffer = r.buffer(8, 8, GREEN);
    let c = r.c;
    let points = Points {
        acquire: r.timeline(),
        release: r.timeline(),
    };
    sync.set_acquire_point(&points.acquire.obj, 0, 1);
    sync.set_release_point(&points.release.obj, 0, 1);
    surface.attach(Some(&buffer), 0, 0);
    surface.commit();
    // A wl_display error `no_memory` reaches a client as ENOMEM (libwayland-client and
    // wayland-client alike turn errors on wl_display into errno values).
    let refused = |f: &mut Fixture| match f.client(c).conn.flush() {
        Err(wayland_client::backend::WaylandError::Io(e)) => e.raw_os_error() == Some(12),
        _ => false,
    };
    let got = r.f.wait_until(Duration::from_secs(2), refused);
    assert!(
        got,
        "the commit past the cap must disconnect the client with no_memory"
    );
    let drained = r.f.wait_until(Duration::from_secs(2), |f| {
        f.server.state.core.acquire_waits.is_empty()
    });
    assert!(drained, "the disconnected client's waits end");
    for (i, h) in held.iter().enumerate() {
        assert!(h.released(), "held commit {i} released with its client");
    }
    // The other client goes on.
    let yellow = r.f.client(other).shm_buffer(50, 50, YELLOW);
    other_top.surface.attach(Some(&yellow), 0, 0);
    other_top.surface.damage_buffer(0, 0, 50, 50);
    other_top.surface.commit();
    r.f.roundtrip(other);
    assert_eq!(r.f.client(other).protocol_error(), None);
}

/// Validation mode forgets the timelines a client destroyed, so its memory stays bounded.
#[test]
fn syncobj_validation_forgets_destroyed_timelines() {
    let mut config = crate::fixture::floating_config();
    config.explicit_sync.validation = true;
    let mut r = Rules::with_config(config);
    let surface = r.top.surface.clone();
    let sync = r.syncobj(&surface);
    let green = r.buffer(100, 80, GREEN);
    for _ in 0..300 {
        let points = r.explicit(&surface, &sync, &green, true);
        points.acquire.obj.destroy();
        points.release.obj.destroy();
        // (Re-committing one buffer makes `buffer_reused_before_release` entries; they are
        // not what this tests.)
        drop(points);
    }
    r.f.roundtrip(r.c);
    let (tracked, untracked) = r.f.server.state.core.sync_validation.tracked_timelines();
    assert!(
        tracked <= 130,
        "600 timelines used and destroyed, {tracked} still tracked"
    );
    assert_eq!(untracked, 0);
    r.no_error();
}

// smithay 0.7 commits a synchronized child's *pending* state (not committed by the child)
// when its parent commits (`commit_sync_surface_tree`). A buffer with an unsignalled
// acquire point that the child never committed must still not be shown.
#[test]
fn syncobj_uncommitted_subsurface_state_is_not_shown_with_the_parents_commit() {
    let mut r = Rules::new();
    let parent = r.top.surface.clone();
    let (child, _sub) = r.f.client(r.c).subsurface(&parent);
    let sync = r.syncobj(&child);
    let (green, blue) = (r.buffer(20, 20, GREEN), r.buffer(20, 20, BLUE));
    let _shown = r.explicit(&child, &sync, &green, true);
    r.damage_only(&parent);
    assert!(r.shows(IN_CHILD, GREEN));
    let points = Points {
        acquire: r.timeline(),
        release: r.timeline(),
    };
    sync.set_acquire_point(&points.acquire.obj, 0, 1);
    sync.set_release_point(&points.release.obj, 0, 1);
    child.attach(Some(&blue), 0, 0);
    child.damage_buffer(0, 0, 20, 20);
    // No child commit.
    r.damage_only(&parent);
    r.f.run_for(Duration::from_millis(100));
    assert_eq!(
        r.pixel(IN_CHILD),
        GREEN & 0xff_ffff,
        "a buffer with an unsignalled acquire point was shown"
    );
}

/// Validation mode reports a buffer reused after a newer commit replaced it but before
/// lockstep signalled its release point (issue 12 item 5: on KMS, the window up to the page
/// flip; here the deferred release of an asynchronous renderer, the same mechanism), and
/// does not when the release point was signalled at once.
#[test]
fn syncobj_validation_reports_reuse_before_the_release_point_is_signalled() {
    use lockstep::sync_validation::MistakeKind;
    for deferred in [true, false] {
        let mut config = crate::fixture::floating_config();
        config.explicit_sync.validation = true;
        let mut r = Rules::with_release(config, deferred);
        let surface = r.top.surface.clone();
        let sync = r.syncobj(&surface);
        let (green, blue) = (r.buffer(100, 80, GREEN), r.buffer(100, 80, BLUE));
        let first = r.explicit(&surface, &sync, &green, true);
        assert!(r.shows(IN_WINDOW, GREEN));
        r.f.settle();
        // Blue replaces green and, in the same batch (before the frame that would release
        // green when releases are deferred), green is attached again.
        let mut keep = Vec::new();
        for buffer in [&blue, &green] {
            let points = Points {
                acquire: r.timeline(),
                release: r.timeline(),
            };
            points.signal_acquire();
            sync.set_acquire_point(&points.acquire.obj, 0, 1);
            sync.set_release_point(&points.release.obj, 0, 1);
            surface.attach(Some(buffer), 0, 0);
            surface.damage_buffer(0, 0, 100, 80);
            surface.commit();
            keep.push(points);
        }
        r.f.roundtrip(r.c);
        r.f.settle();
        let kinds = r.f.server.state.core.sync_validation.kinds();
        let reused = kinds
            .iter()
            .filter(|k| **k == MistakeKind::BufferReusedBeforeRelease)
            .count();
        assert_eq!(
            reused,
            usize::from(deferred),
            "deferred release: {deferred}; the first release point was signalled: {}",
            first.released()
        );
        assert!(first.released(), "released after the frame in any case");
        r.no_error();
    }
}

// Row: syncobj surface destroyed: points set but not committed are discarded (not
// signalled), committed ones stay with their buffer.
#[test]
fn syncobj_rule_destroying_the_syncobj_surface_discards_uncommitted_points() {
    let (mut r, surface, sync, _green, first) = Rules::showing(GREEN);
    let uncommitted = Points {
        acquire: r.timeline(),
        release: r.timeline(),
    };
    sync.set_acquire_point(&uncommitted.acquire.obj, 0, 1);
    sync.set_release_point(&uncommitted.release.obj, 0, 1);
    sync.destroy();
    r.damage_only(&surface);
    r.f.settle();
    assert!(!uncommitted.released(), "discarded, not signalled");
    assert!(!first.released(), "committed: kept with its buffer");
    r.no_error();
}

// Rows: wl_surface destroyed with a held commit (the commit is dropped before it applied):
// the current buffer's and the held buffer's release points are signalled.
#[test]
fn syncobj_rule_surface_destroyed_with_a_held_commit() {
    let (mut r, surface, sync, _green, first) = Rules::showing(GREEN);
    let blue = r.buffer(100, 80, BLUE);
    let held = r.explicit(&surface, &sync, &blue, false);
    assert_eq!(r.f.server.state.core.acquire_waits.len(), 1);
    sync.destroy();
    r.top.toplevel.destroy();
    r.top.xdg_surface.destroy();
    surface.destroy();
    r.f.roundtrip(r.c);
    let drained = r.f.wait_until(Duration::from_secs(2), |f| {
        f.server.state.core.acquire_waits.is_empty()
    });
    assert!(drained, "the wait ends with its surface");
    r.f.settle();
    assert!(first.released(), "the current buffer");
    assert!(held.released(), "the held buffer, never read");
    r.no_error();
}
