//! Protocol errors (and non-errors) of linux-drm-syncobj-v1, as the staging XML defines them:
//! on the manager `surface_exists` (0) and `invalid_timeline` (1); on the syncobj surface
//! `no_surface` (1), `unsupported_buffer` (2), `no_buffer` (3), `no_acquire_point` (4),
//! `no_release_point` (5) and `conflicting_points` (6). Each case checks the code and the
//! interface and id of the object the error is posted on.
//!
//! Surfaces here have no role: the rules apply at every `wl_surface.commit`, and a role-less
//! surface keeps the cases independent of the shell.

use std::os::fd::AsFd;

use lockstep_sync::Point;
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::Proxy;
use wayland_protocols::wp::linux_drm_syncobj::v1::client::{
    wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1,
    wp_linux_drm_syncobj_surface_v1::WpLinuxDrmSyncobjSurfaceV1,
    wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1,
};

use super::{next_color, set_acquire, set_release, Case, IMPLEMENTATION_DEFINED};
use crate::client::{Buffer, Client, SIZE};
use crate::env::{Env, Timeline};
use crate::outcome::{fail, CaseError, CaseResult};

const SURFACE_EXISTS: u32 = 0;
const INVALID_TIMELINE: u32 = 1;
const NO_SURFACE: u32 = 1;
const UNSUPPORTED_BUFFER: u32 = 2;
const NO_BUFFER: u32 = 3;
const NO_ACQUIRE_POINT: u32 = 4;
const NO_RELEASE_POINT: u32 = 5;
const CONFLICTING_POINTS: u32 = 6;

pub(super) fn cases() -> Vec<Case> {
    macro_rules! case {
        ($name:ident, $about:literal) => {
            Case {
                name: stringify!($name),
                about: $about,
                run: $name,
            }
        };
    }
    vec![
        case!(get_surface_twice, "get_surface on a surface that has a syncobj surface -> surface_exists on the manager"),
        case!(get_surface_after_destroy, "get_surface again after destroying the syncobj surface works"),
        case!(get_surface_two_surfaces, "get_surface on two different surfaces works"),
        case!(import_timeline_memfd, "import_timeline of a memfd -> invalid_timeline on the manager"),
        case!(import_timeline_sync_file, "import_timeline of a sync_file (not a syncobj) -> invalid_timeline on the manager"),
        case!(import_timeline_valid, "import_timeline of a timeline syncobj fd is accepted"),
        case!(set_acquire_after_surface_destroyed, "set_acquire_point after the wl_surface was destroyed -> no_surface"),
        case!(set_release_after_surface_destroyed, "set_release_point after the wl_surface was destroyed -> no_surface"),
        case!(acquire_only_without_buffer, "commit with an acquire point and no buffer -> no_buffer"),
        case!(release_only_without_buffer, "commit with a release point and no buffer -> no_buffer"),
        case!(both_points_without_buffer, "commit with both points and no buffer attached -> no_buffer"),
        case!(both_points_with_null_buffer, "commit with both points and attach(NULL) -> no_buffer (points need a non-null buffer)"),
        case!(dmabuf_without_points, "commit of a dmabuf without points -> no_acquire_point or no_release_point (the note says which)"),
        case!(dmabuf_with_only_release, "commit of a dmabuf with only a release point -> no_acquire_point"),
        case!(dmabuf_with_only_acquire, "commit of a dmabuf with only an acquire point -> no_release_point"),
        case!(conflicting_points_equal, "same timeline, acquire == release -> conflicting_points"),
        case!(conflicting_points_acquire_greater, "same timeline, acquire > release -> conflicting_points"),
        case!(conflicting_points_uses_64_bits, "same timeline, acquire 2^32 > release 2^32-1: points are 64-bit (hi, lo) -> conflicting_points"),
        case!(same_timeline_acquire_below_release, "same timeline, acquire < release is accepted"),
        case!(different_timelines_equal_points, "different timelines with equal point values are accepted"),
        case!(commit_with_neither, "a commit with neither buffer nor points is accepted"),
        case!(commit_without_new_buffer, "a commit that attaches no new buffer needs no points"),
        case!(later_point_replaces_earlier, "a second set_acquire_point replaces the first (no conflicting_points from the first)"),
        case!(destroyed_timeline_keeps_points, "destroying the timeline objects does not unset points already set"),
        case!(destroyed_syncobj_surface_discards_points, "destroying the syncobj surface discards uncommitted points (no no_buffer)"),
        case!(no_points_needed_after_destroy, "after the syncobj surface is destroyed, a dmabuf commits without points"),
        case!(manager_destroy_keeps_objects, "destroying the manager does not affect syncobj surfaces and timelines"),
        case!(wl_shm_with_points, "wl_shm buffer with points -> accepted or unsupported_buffer (reports which)"),
    ]
}

/// A client with a role-less surface and its syncobj surface.
struct Setup {
    c: Client,
    manager: WpLinuxDrmSyncobjManagerV1,
    surface: WlSurface,
    sync: WpLinuxDrmSyncobjSurfaceV1,
}

impl Setup {
    fn new(env: &Env) -> Result<Setup, CaseError> {
        let c = Client::connect(env)?;
        let manager = c.manager()?;
        let surface = c.surface();
        let sync = c.syncobj_surface(&surface)?;
        Ok(Setup {
            c,
            manager,
            surface,
            sync,
        })
    }

    /// A timeline with `point` signalled, imported.
    fn timeline(
        &self,
        signalled: &[u64],
    ) -> Result<(Timeline, WpLinuxDrmSyncobjTimelineV1), CaseError> {
        let (tl, obj) = self.c.timeline()?;
        for &p in signalled {
            tl.signal(p)?;
        }
        Ok((tl, obj))
    }

    fn attach_dmabuf(&mut self) -> Result<Buffer, CaseError> {
        let buffer = self.c.dmabuf_buffer(next_color())?;
        self.surface.attach(Some(&buffer.wl), 0, 0);
        self.surface.damage_buffer(0, 0, SIZE as i32, SIZE as i32);
        Ok(buffer)
    }

    fn expect_sync_error(&mut self, what: &str, code: u32, name: &str) -> CaseResult {
        let sync = self.sync.clone();
        self.c.expect_error(what, &sync, code, name)?;
        Ok(None)
    }

    fn expect_ok(&mut self, what: &str) -> CaseResult {
        self.c.expect_ok(what)?;
        Ok(None)
    }
}

fn get_surface_twice(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let _second = s.c.syncobj_surface(&s.surface)?;
    let manager = s.manager.clone();
    s.c.expect_error(
        "second get_surface",
        &manager,
        SURFACE_EXISTS,
        "surface_exists",
    )?;
    Ok(None)
}

fn get_surface_after_destroy(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    s.sync.destroy();
    s.sync = s.c.syncobj_surface(&s.surface)?;
    s.surface.commit();
    s.expect_ok("get_surface after destroying the first syncobj surface")
}

fn get_surface_two_surfaces(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let other = s.c.surface();
    let _sync = s.c.syncobj_surface(&other)?;
    s.expect_ok("get_surface on a second surface")
}

fn import_timeline_memfd(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let memfd = rustix::fs::memfd_create("not-a-syncobj", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| CaseError::Fail(format!("memfd_create: {e}")))?;
    let _tl = s.manager.import_timeline(memfd.as_fd(), &s.c.qh, ());
    let manager = s.manager.clone();
    s.c.expect_error(
        "import_timeline(memfd)",
        &manager,
        INVALID_TIMELINE,
        "invalid_timeline",
    )?;
    Ok(None)
}

fn import_timeline_sync_file(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let tl = env.timeline()?;
    tl.signal(1)?;
    let file = tl
        .drm
        .export_sync_file(Point(1))
        .map_err(|e| CaseError::Skip(format!("cannot make a sync_file on our device: {e}")))?;
    let _tl = s.manager.import_timeline(file.as_fd(), &s.c.qh, ());
    let manager = s.manager.clone();
    s.c.expect_error(
        "import_timeline(sync_file)",
        &manager,
        INVALID_TIMELINE,
        "invalid_timeline",
    )?;
    Ok(None)
}

fn import_timeline_valid(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let _tl = s.timeline(&[])?;
    s.expect_ok("import_timeline of a timeline syncobj")
}

fn set_point_after_surface_destroyed(env: &Env, acquire: bool) -> CaseResult {
    let mut s = Setup::new(env)?;
    let (_tl, obj) = s.timeline(&[1])?;
    s.surface.destroy();
    if acquire {
        set_acquire(&s.sync, &obj, 1);
    } else {
        set_release(&s.sync, &obj, 1);
    }
    s.expect_sync_error(
        "set point after wl_surface.destroy",
        NO_SURFACE,
        "no_surface",
    )
}

fn set_acquire_after_surface_destroyed(env: &Env) -> CaseResult {
    set_point_after_surface_destroyed(env, true)
}

fn set_release_after_surface_destroyed(env: &Env) -> CaseResult {
    set_point_after_surface_destroyed(env, false)
}

fn acquire_only_without_buffer(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let (_tl, obj) = s.timeline(&[1])?;
    set_acquire(&s.sync, &obj, 1);
    s.surface.commit();
    s.expect_sync_error("commit with only an acquire point", NO_BUFFER, "no_buffer")
}

fn release_only_without_buffer(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let (_tl, obj) = s.timeline(&[])?;
    set_release(&s.sync, &obj, 1);
    s.surface.commit();
    s.expect_sync_error("commit with only a release point", NO_BUFFER, "no_buffer")
}

fn both_points_without_buffer(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let (_a, acq) = s.timeline(&[1])?;
    let (_r, rel) = s.timeline(&[])?;
    set_acquire(&s.sync, &acq, 1);
    set_release(&s.sync, &rel, 1);
    s.surface.commit();
    s.expect_sync_error("commit with both points, no buffer", NO_BUFFER, "no_buffer")
}

fn both_points_with_null_buffer(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let (_a, acq) = s.timeline(&[1])?;
    let (_r, rel) = s.timeline(&[])?;
    s.surface.attach(None, 0, 0);
    set_acquire(&s.sync, &acq, 1);
    set_release(&s.sync, &rel, 1);
    s.surface.commit();
    s.expect_sync_error("commit of attach(NULL) with points", NO_BUFFER, "no_buffer")
}

/// With neither point set, two rules of the spec apply at once: "If at surface commit time
/// there is a pending buffer attached but no pending acquire timeline point set, the
/// no_acquire_point protocol error is raised" (set_acquire_point), and the same for
/// no_release_point (set_release_point). Either code conforms; the note says which came.
fn dmabuf_without_points(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let _buffer = s.attach_dmabuf()?;
    s.surface.commit();
    let sync = s.sync.clone();
    let (_, name) = s.c.expect_one_error_of(
        "dmabuf without points",
        &sync,
        &[
            (NO_ACQUIRE_POINT, "no_acquire_point"),
            (NO_RELEASE_POINT, "no_release_point"),
        ],
    )?;
    Ok(Some(format!(
        "{IMPLEMENTATION_DEFINED} {name} (with neither point set the spec makes no_acquire_point \
         and no_release_point both apply)"
    )))
}

fn dmabuf_with_only_release(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let (_r, rel) = s.timeline(&[])?;
    let _buffer = s.attach_dmabuf()?;
    set_release(&s.sync, &rel, 1);
    s.surface.commit();
    s.expect_sync_error(
        "dmabuf with only a release point",
        NO_ACQUIRE_POINT,
        "no_acquire_point",
    )
}

fn dmabuf_with_only_acquire(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let (_a, acq) = s.timeline(&[1])?;
    let _buffer = s.attach_dmabuf()?;
    set_acquire(&s.sync, &acq, 1);
    s.surface.commit();
    s.expect_sync_error(
        "dmabuf with only an acquire point",
        NO_RELEASE_POINT,
        "no_release_point",
    )
}

/// A dmabuf commit with acquire `a` and release `r` on one timeline (acquire signalled).
fn same_timeline(env: &Env, a: u64, r: u64) -> Result<Setup, CaseError> {
    let mut s = Setup::new(env)?;
    let (_tl, obj) = s.timeline(&[a])?;
    let _buffer = s.attach_dmabuf()?;
    set_acquire(&s.sync, &obj, a);
    set_release(&s.sync, &obj, r);
    s.surface.commit();
    Ok(s)
}

fn conflicting_points_equal(env: &Env) -> CaseResult {
    same_timeline(env, 5, 5)?.expect_sync_error(
        "acquire == release on one timeline",
        CONFLICTING_POINTS,
        "conflicting_points",
    )
}

fn conflicting_points_acquire_greater(env: &Env) -> CaseResult {
    same_timeline(env, 6, 5)?.expect_sync_error(
        "acquire > release on one timeline",
        CONFLICTING_POINTS,
        "conflicting_points",
    )
}

fn conflicting_points_uses_64_bits(env: &Env) -> CaseResult {
    // lo(acquire) = 0 < lo(release) = 0xffff_ffff: only the 64-bit values conflict.
    same_timeline(env, 1 << 32, u32::MAX as u64)?.expect_sync_error(
        "acquire (hi 1, lo 0) > release (hi 0, lo 0xffffffff) on one timeline",
        CONFLICTING_POINTS,
        "conflicting_points",
    )
}

fn same_timeline_acquire_below_release(env: &Env) -> CaseResult {
    same_timeline(env, 1, 2)?.expect_ok("acquire 1 < release 2 on one timeline")
}

fn different_timelines_equal_points(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let (_a, acq) = s.timeline(&[3])?;
    let (_r, rel) = s.timeline(&[])?;
    let _buffer = s.attach_dmabuf()?;
    set_acquire(&s.sync, &acq, 3);
    set_release(&s.sync, &rel, 3);
    s.surface.commit();
    s.expect_ok("acquire 3 and release 3 on different timelines")
}

fn commit_with_neither(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    s.surface.commit();
    s.surface.commit();
    s.expect_ok("commits without buffer and points")
}

fn commit_without_new_buffer(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let (_a, acq) = s.timeline(&[1])?;
    let (_r, rel) = s.timeline(&[])?;
    let _buffer = s.attach_dmabuf()?;
    set_acquire(&s.sync, &acq, 1);
    set_release(&s.sync, &rel, 1);
    s.surface.commit();
    s.c.expect_ok("first commit with buffer and points")?;
    s.surface.damage_buffer(0, 0, 1, 1);
    s.surface.commit();
    s.expect_ok("second commit without attach and without points")
}

fn later_point_replaces_earlier(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let (_tl, obj) = s.timeline(&[1])?;
    let _buffer = s.attach_dmabuf()?;
    set_acquire(&s.sync, &obj, 10); // would conflict with release 5 ...
    set_release(&s.sync, &obj, 5);
    set_acquire(&s.sync, &obj, 1); // ... but is replaced
    s.surface.commit();
    s.expect_ok("acquire 10 replaced by acquire 1 before commit, release 5")
}

fn destroyed_timeline_keeps_points(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let (_a, acq) = s.timeline(&[1])?;
    let (_r, rel) = s.timeline(&[])?;
    let _buffer = s.attach_dmabuf()?;
    set_acquire(&s.sync, &acq, 1);
    set_release(&s.sync, &rel, 1);
    acq.destroy();
    rel.destroy();
    s.surface.commit();
    s.expect_ok("commit after destroying both timeline objects")
}

fn destroyed_syncobj_surface_discards_points(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let (_a, acq) = s.timeline(&[1])?;
    set_acquire(&s.sync, &acq, 1);
    s.sync.destroy();
    s.surface.commit();
    s.expect_ok("commit without buffer after the syncobj surface (with a point set) was destroyed")
}

fn no_points_needed_after_destroy(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    s.sync.destroy();
    let _buffer = s.attach_dmabuf()?;
    s.surface.commit();
    s.expect_ok("dmabuf without points after the syncobj surface was destroyed")
}

fn manager_destroy_keeps_objects(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let (_a, acq) = s.timeline(&[1])?;
    let (_r, rel) = s.timeline(&[])?;
    s.manager.destroy();
    let _buffer = s.attach_dmabuf()?;
    set_acquire(&s.sync, &acq, 1);
    set_release(&s.sync, &rel, 1);
    s.surface.commit();
    s.expect_ok("commit with points after wp_linux_drm_syncobj_manager_v1.destroy")
}

fn wl_shm_with_points(env: &Env) -> CaseResult {
    let mut s = Setup::new(env)?;
    let (_a, acq) = s.timeline(&[1])?;
    let (_r, rel) = s.timeline(&[])?;
    let buffer = s.c.shm_buffer(next_color())?;
    s.surface.attach(Some(&buffer.wl), 0, 0);
    set_acquire(&s.sync, &acq, 1);
    set_release(&s.sync, &rel, 1);
    s.surface.commit();
    if s.c.queue.roundtrip(&mut s.c.state).is_ok() {
        // Accepted. (Its release point may be signalled at once: a compositor that copies
        // shm buffers is done with them after the copy.)
        return Ok(Some(
            "accepted: the compositor supports explicit sync on wl_shm".into(),
        ));
    }
    let Some(err) = s.c.conn.protocol_error() else {
        fail!("the connection broke without a protocol error");
    };
    let sync_id = s.sync.id();
    if err.code == UNSUPPORTED_BUFFER
        && err.object_interface == sync_id.interface().name
        && err.object_id == sync_id.protocol_id()
    {
        return Ok(Some(
            "unsupported_buffer: explicit sync is dmabuf-only here".into(),
        ));
    }
    fail!(
        "expected acceptance or unsupported_buffer (2) on {}@{}, got code {} on {}@{} ({:?})",
        sync_id.interface().name,
        sync_id.protocol_id(),
        err.code,
        err.object_interface,
        err.object_id,
        err.message
    )
}
