//! The cases: one function per rule of linux-drm-syncobj-v1, each on its own connection.
//!
//! - [`errors`]: every protocol error of the spec, asserted by code *and* by the interface
//!   and id of the object it is posted on; and the requests that must *not* be errors.
//! - [`timing`]: what the compositor does with the points: commits held until their acquire
//!   point signals (also when the fence is submitted late or never), order kept, release
//!   points signalled exactly when the buffer is no longer used, synchronized subsurfaces.
//! - [`release`]: release points follow their buffer whatever replaces it: a client that
//!   mixes explicit and implicit sync, syncobj surfaces destroyed and re-created around held
//!   or cached commits, wl_buffers destroyed while held or current, one buffer on two
//!   surfaces, buffer-less commits after held ones, a client gone with queued commits.
//!
//! # Implementation-defined behaviour
//!
//! Where the spec leaves a choice, a case accepts every allowed behaviour and passes with a
//! note that starts with [`IMPLEMENTATION_DEFINED`] and says which one the compositor chose
//! Only what the spec requires fails.

use std::sync::atomic::{AtomicU32, Ordering};

use wayland_client::protocol::wl_surface::WlSurface;
use wayland_protocols::wp::linux_drm_syncobj::v1::client::{
    wp_linux_drm_syncobj_surface_v1::WpLinuxDrmSyncobjSurfaceV1,
    wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1,
};

use crate::client::{color, Buffer, Client, FrameTag, SIZE};
use crate::env::{split, Acquire, Env, Timeline};
use crate::outcome::{CaseError, CaseResult};

mod errors;
mod release;
mod timing;

/// The start of a pass note that records an implementation-defined choice.
pub const IMPLEMENTATION_DEFINED: &str = "implementation-defined:";

/// One case.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Its name (stable; `--filter` matches it).
    pub name: &'static str,
    /// What it asserts.
    pub about: &'static str,
    /// The case.
    pub run: fn(&Env) -> CaseResult,
}

/// Every case, in report order.
pub fn all() -> Vec<Case> {
    let mut cases = errors::cases();
    cases.extend(timing::cases());
    cases.extend(release::cases());
    cases
}

/// A colour no other window of this run uses.
pub fn next_color() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    color(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Sets the acquire point.
pub fn set_acquire(sync: &WpLinuxDrmSyncobjSurfaceV1, tl: &WpLinuxDrmSyncobjTimelineV1, p: u64) {
    let (hi, lo) = split(p);
    sync.set_acquire_point(tl, hi, lo);
}

/// Sets the release point.
pub fn set_release(sync: &WpLinuxDrmSyncobjSurfaceV1, tl: &WpLinuxDrmSyncobjTimelineV1, p: u64) {
    let (hi, lo) = split(p);
    sync.set_release_point(tl, hi, lo);
}

/// How the acquire point of a [`Commit`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireMode {
    /// Signalled before the commit.
    Signalled,
    /// Submitted but not signalled (sw_sync), or unsubmitted without sw_sync.
    Pending,
    /// Not submitted at all (wait-before-signal).
    Unsubmitted,
}

/// One explicit-sync commit of a dmabuf: its own acquire timeline (point 1) and release
/// timeline (point 1), so points of different commits never interact.
pub struct Commit {
    /// The colour the buffer shows.
    pub color: u32,
    /// The buffer (kept alive: destroying it could change what the compositor does).
    pub buffer: std::rc::Rc<Buffer>,
    /// The acquire point.
    pub acquire: Acquire,
    /// The release timeline (point 1).
    pub release: Timeline,
    /// The frame callback requested with the commit.
    pub frame: FrameTag,
    _objects: [WpLinuxDrmSyncobjTimelineV1; 2],
}

impl Commit {
    /// A new `SIZE`² dmabuf of a fresh colour, attached and committed with points.
    pub fn new(
        c: &mut Client,
        surface: &WlSurface,
        sync: &WpLinuxDrmSyncobjSurfaceV1,
        mode: AcquireMode,
    ) -> Result<Commit, CaseError> {
        let color = next_color();
        let buffer = std::rc::Rc::new(c.dmabuf_buffer(color)?);
        Commit::with_buffer(c, surface, sync, buffer, color, mode)
    }

    /// Commits `buffer` (showing `color`) again with new points.
    pub fn with_buffer(
        c: &mut Client,
        surface: &WlSurface,
        sync: &WpLinuxDrmSyncobjSurfaceV1,
        buffer: std::rc::Rc<Buffer>,
        color: u32,
        mode: AcquireMode,
    ) -> Result<Commit, CaseError> {
        let (acquire_tl, acquire_obj) = c.timeline()?;
        let (release, release_obj) = c.timeline()?;
        let acquire = match mode {
            AcquireMode::Signalled => Acquire::signalled(&acquire_tl, 1)?,
            AcquireMode::Pending => Acquire::pending(&c.env, &acquire_tl, 1)?,
            AcquireMode::Unsubmitted => Acquire::unsubmitted(&acquire_tl, 1),
        };
        set_acquire(sync, &acquire_obj, 1);
        set_release(sync, &release_obj, 1);
        surface.attach(Some(&buffer.wl), 0, 0);
        surface.damage_buffer(0, 0, SIZE as i32, SIZE as i32);
        let frame = c.frame(surface);
        surface.commit();
        Ok(Commit {
            color,
            buffer,
            acquire,
            release,
            frame,
            _objects: [acquire_obj, release_obj],
        })
    }

    /// Whether the release point is signalled.
    pub fn released(&self) -> Result<bool, CaseError> {
        self.release.is_signalled(1)
    }
}
