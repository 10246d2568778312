//! linux-drm-syncobj-v1: explicit synchronization with DRM syncobj timelines, written on
//! `lockstep-sync`.
//!
//! A client imports DRM syncobj timelines (`import_timeline`), gets a
//! `wp_linux_drm_syncobj_surface_v1` for a wl_surface, and with every commit that attaches a
//! buffer sets an *acquire point* (lockstep must not read the buffer before it is signalled)
//! and a *release point* (lockstep signals it when it no longer reads the buffer).
//!
//! # What this module does, and what the compositor does
//!
//! This module owns the protocol objects and every protocol rule. It validates each commit in a
//! pre-commit hook and posts the error the spec names, on the syncobj surface object:
//!
//! | error | when |
//! |---|---|
//! | `no_surface` (1) | a point is set after the wl_surface was destroyed |
//! | `unsupported_buffer` (2) | the attached buffer is neither a dmabuf nor wl_shm |
//! | `no_buffer` (3) | a point is set but no buffer is attached in this commit |
//! | `no_acquire_point` (4) / `no_release_point` (5) | a buffer is attached without it |
//! | `conflicting_points` (6) | both points on the same timeline and acquire ≥ release |
//!
//! and on the manager `surface_exists` (0) and `invalid_timeline` (1).
//!
//! The points travel with the surface's double-buffered state as [`SyncobjCachedState`]
//! (smithay's cached state, so synchronized subsurfaces carry them until the parent commits).
//! The compositor (through [`DrmSyncobjHandler::new_syncobj_surface`]) holds commits until the
//! acquire point is signalled.
//!
//! # Release points are values that signal themselves
//!
//! A [`ReleasePoint`] signals its timeline point when it is dropped. It lives in the surface's
//! *current* state for as long as its buffer is current, so every way a buffer stops being used
//! releases it with no extra bookkeeping. Renderers that read asynchronously (GLES) do not
//! signal on drop: they pass a [`ReleaseQueue`] to [`DrmSyncobjState::set_release_queue`].
//! Dropped points then wait in the queue until the renderer has finished the frame that last
//! read the buffer.
//!
//! # The release rules: points follow the buffer
//!
//! The points of a commit belong to the buffer that commit attaches, never to the surface.
//! Every commit records whether it carries a *buffer assignment* (a new buffer, or a null
//! attach; [`SyncobjCachedState`] keeps that flag, set by this module's validation hook, which
//! stays on the wl_surface for its lifetime once it ever had a syncobj surface). When such a
//! commit is merged into the next state (the current one, or an older cached one of a
//! synchronized subsurface), both points are *replaced*, by the new ones or by nothing; the
//! replaced release point is dropped and so signalled. A commit without a buffer assignment
//! leaves the points alone. So, event by event:
//!
//! | event | acquire point held for the old buffer | release point held for the old buffer | the commit's own points |
//! |---|---|---|---|
//! | commit of a new buffer with points | replaced | signalled when the commit applies | become current |
//! | commit of a new buffer without points (syncobj surface destroyed, or a client mixing explicit and implicit sync) | dropped | signalled when the commit applies | — (implicit sync) |
//! | commit with `attach(NULL)` | dropped | signalled when the commit applies | — |
//! | commit without a buffer assignment (damage, frame, role state) | kept | kept | — |
//! | synchronized subsurface: a cached commit followed by a newer cached commit with a buffer assignment | — | — | the older cached commit's release point is signalled when the parent's commit applies both (its buffer was never read) |
//! | commit held for its acquire point, with commits queued behind it | kept (the old buffer stays on screen) | kept | held; applied in order once the acquire point signals |
//! | the same wl_buffer committed again with new points | replaced | the superseded point is signalled when the new commit applies | become current |
//! | wl_buffer destroyed while current | kept | kept: lockstep may keep showing the last content it has (the spec leaves the surface content undefined; wlroots, too, signals only when the surface stops using the buffer); signalled when replaced, detached or the surface goes | — |
//! | wl_buffer destroyed while its commit is held | — | — | the commit still applies when its acquire point signals (with nothing to show); its release point follows the rows above |
//! | syncobj surface destroyed | kept (committed points stay with their buffer) | kept | points set but not yet committed are discarded, not signalled (the spec makes them invalid) |
//! | wl_surface destroyed, or its client gone | dropped | signalled at once | release points of cached and held commits are signalled when smithay frees the surface's state (their buffers were never read) |
//! | a synchronized subsurface's state that it never committed, committed by smithay 0.7 with its parent's commit ([`before_tree_commit`]) | as for a commit of its own | as for a commit of its own | held for its acquire point like any commit (the compositor's hook on the parent); not validated, since the client did not commit it |
//! | a commit dropped before it applied (its surface died while it was held) | — | — | release point signalled (the buffer was never read) |
//!
//! Each row has a test named after it in lockstep's
//! `compositor/tests/in_process/syncobj_rules.rs` (`syncobj_rule_*`), and the conformance
//! suite checks the client-visible ones against any compositor (`cases/release.rs`).
//!
//! "Signalled" means dropped: with a [`ReleaseQueue`] the point is signalled after the
//! renderer's next frame. On KMS a buffer on a plane is leased by the pipeline, which takes
//! the release point out of the surface state and signals it (or hands it the out-fence) at
//! the page flip that takes the buffer off the screen.
//!
//! # wl_shm buffers
//!
//! The spec leaves other buffer types to the compositor. lockstep accepts points on wl_shm
//! buffers: a software renderer may commit before its rendering threads finish. lockstep waits
//! for the acquire point before reading the buffer, and signals the release point once it no
//! longer reads the buffer.
//!
//! # Identical timelines
//!
//! `conflicting_points` compares the two points' timeline *objects*. The kernel gives no way to
//! tell whether two separately imported fds name the same syncobj, so one syncobj imported
//! twice counts as two timelines.

use std::{
    fmt,
    sync::{Arc, Mutex},
};

use lockstep_sync::{Point, SyncDevice, Timeline, TimelinePoint};
use smithay::{
    reexports::{
        wayland_protocols::wp::linux_drm_syncobj::v1::server::{
            wp_linux_drm_syncobj_manager_v1::{self, WpLinuxDrmSyncobjManagerV1},
            wp_linux_drm_syncobj_surface_v1::{self, WpLinuxDrmSyncobjSurfaceV1},
            wp_linux_drm_syncobj_timeline_v1::{self, WpLinuxDrmSyncobjTimelineV1},
        },
        wayland_server::{
            backend::GlobalId, protocol::wl_surface::WlSurface, Client, DataInit, Dispatch,
            DisplayHandle, GlobalDispatch, New, Resource, Weak,
        },
    },
    wayland::{
        compositor::{
            add_destruction_hook, add_pre_commit_hook, with_states, BufferAssignment, Cacheable,
            SurfaceAttributes,
        },
        shm::with_buffer_contents,
    },
};
use tracing::{debug, warn};

/// The version lockstep implements.
pub const VERSION: u32 = 1;

/// Where dropped release points wait when the renderer reads buffers asynchronously.
pub type ReleaseQueue = Arc<Mutex<Vec<TimelinePoint>>>;

/// Global state of `wp_linux_drm_syncobj_manager_v1`.
pub struct DrmSyncobjState {
    global: GlobalId,
    device: Arc<dyn SyncDevice>,
    release_queue: Option<ReleaseQueue>,
}

impl fmt::Debug for DrmSyncobjState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrmSyncobjState")
            .field("device", &self.device.name())
            .finish_non_exhaustive()
    }
}

/// Data of the global: which clients may see it.
pub struct DrmSyncobjGlobalData {
    filter: Box<dyn Fn(&Client) -> bool + Send + Sync>,
}

/// What the compositor implements.
pub trait DrmSyncobjHandler {
    /// The protocol state (`None` while explicit sync is off; the global does not exist then,
    /// but a client may still hold a manager bound before it was turned off).
    fn drm_syncobj_state(&mut self) -> Option<&mut DrmSyncobjState>;

    /// `surface` got its syncobj surface: install what holds commits until acquire points
    /// signal. Called once per wl_surface lifetime, after this module's validation hook, so
    /// invalid commits never reach it.
    fn new_syncobj_surface(&mut self, surface: &WlSurface);
}

/// A timeline point the compositor must wait for before reading the buffer.
#[derive(Debug, Clone)]
pub struct AcquirePoint {
    /// The point.
    pub point: TimelinePoint,
    timeline_object: Weak<WpLinuxDrmSyncobjTimelineV1>,
}

/// A timeline point lockstep signals when it no longer reads the buffer: on drop.
pub struct ReleasePoint {
    point: Option<TimelinePoint>,
    queue: Option<ReleaseQueue>,
    timeline_object: Weak<WpLinuxDrmSyncobjTimelineV1>,
}

impl fmt::Debug for ReleasePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReleasePoint")
            .field("point", &self.point.as_ref().map(|p| p.point))
            .field("deferred", &self.queue.is_some())
            .finish()
    }
}

impl AcquirePoint {
    /// Identifies the timeline object (for reports: which timeline a point is on).
    pub fn timeline_id(&self) -> smithay::reexports::wayland_server::backend::ObjectId {
        self.timeline_object.id()
    }
}

impl ReleasePoint {
    /// The point this will signal.
    pub fn point(&self) -> Option<&TimelinePoint> {
        self.point.as_ref()
    }

    /// Identifies the timeline object (for reports: which timeline a point is on).
    pub fn timeline_id(&self) -> smithay::reexports::wayland_server::backend::ObjectId {
        self.timeline_object.id()
    }

    /// Forgets the point without signalling it (points discarded before they were committed).
    pub fn discard(mut self) {
        self.point = None;
    }
}

impl Drop for ReleasePoint {
    fn drop(&mut self) {
        let Some(point) = self.point.take() else {
            return;
        };
        if let Some(queue) = &self.queue {
            if let Ok(mut queue) = queue.lock() {
                queue.push(point);
                return;
            }
        }
        signal_release(&point);
    }
}

/// Signals a release point now (an ioctl that never waits), logging failures.
pub fn signal_release(point: &TimelinePoint) {
    if let Err(err) = point.signal() {
        warn!(point = point.point.0, %err, "signalling a release point failed");
    } else {
        debug!(point = point.point.0, "release point signalled");
    }
}

/// The points of one commit, double-buffered with the wl_surface state.
#[derive(Debug, Default)]
pub struct SyncobjCachedState {
    /// Wait for this before reading the buffer.
    pub acquire: Option<AcquirePoint>,
    /// Signal this when the buffer is no longer read.
    pub release: Option<ReleasePoint>,
    /// Whether this commit assigns a buffer (a new one or a null attach): then its points
    /// (or the absence of points) replace the ones of the buffer it replaces.
    buffer_assigned: bool,
}

impl SyncobjCachedState {
    /// Whether this state assigns a buffer (see the module docs' release rules).
    pub fn buffer_assigned(&self) -> bool {
        self.buffer_assigned
    }
}

impl Cacheable for SyncobjCachedState {
    fn commit(&mut self, _dh: &DisplayHandle) -> Self {
        Self {
            acquire: self.acquire.take(),
            release: self.release.take(),
            buffer_assigned: std::mem::take(&mut self.buffer_assigned),
        }
    }

    fn merge_into(self, into: &mut Self, _dh: &DisplayHandle) {
        // Points belong to the buffer of their commit. A buffer assignment (new buffer with or
        // without points, or a null attach) replaces the old buffer, so it replaces its points
        // too: the old release point drops here and signals (or queues). Points without the
        // flag cannot pass validation, but if some path skipped it they still come with a
        // buffer. A commit without a buffer assignment keeps the buffer and its points.
        if self.buffer_assigned || self.acquire.is_some() || self.release.is_some() {
            into.acquire = self.acquire;
            into.release = self.release;
            // `into` may be an older cached state (a synchronized subsurface): it now carries
            // this buffer assignment.
            into.buffer_assigned = true;
        }
    }
}

/// User data of `wp_linux_drm_syncobj_timeline_v1`.
#[derive(Debug)]
pub struct SyncobjTimelineData {
    timeline: Timeline,
}

/// User data of `wp_linux_drm_syncobj_surface_v1`.
#[derive(Debug)]
pub struct SyncobjSurfaceData {
    surface: Weak<WlSurface>,
}

/// Kept in the wl_surface's data map: the live syncobj surface, if any.
#[derive(Debug, Default)]
struct SurfaceSyncobj {
    object: Mutex<Option<Weak<WpLinuxDrmSyncobjSurfaceV1>>>,
    hooked: Mutex<bool>,
}

impl DrmSyncobjState {
    /// Creates the global. Timelines are imported on `device`; `filter` says which clients
    /// see the global.
    pub fn new<D, F>(display: &DisplayHandle, device: Arc<dyn SyncDevice>, filter: F) -> Self
    where
        D: GlobalDispatch<WpLinuxDrmSyncobjManagerV1, DrmSyncobjGlobalData>
            + Dispatch<WpLinuxDrmSyncobjManagerV1, ()>
            + Dispatch<WpLinuxDrmSyncobjTimelineV1, SyncobjTimelineData>
            + Dispatch<WpLinuxDrmSyncobjSurfaceV1, SyncobjSurfaceData>
            + DrmSyncobjHandler
            + 'static,
        F: Fn(&Client) -> bool + Send + Sync + 'static,
    {
        let global = display.create_global::<D, WpLinuxDrmSyncobjManagerV1, _>(
            VERSION,
            DrmSyncobjGlobalData {
                filter: Box::new(filter),
            },
        );
        Self {
            global,
            device,
            release_queue: None,
        }
    }

    /// The global's id.
    pub fn global(&self) -> GlobalId {
        self.global.clone()
    }

    /// The device timelines are imported on.
    pub fn device(&self) -> &Arc<dyn SyncDevice> {
        &self.device
    }

    /// Makes release points set from now on queue themselves in `queue` instead of
    /// signalling on drop (for renderers that read buffers asynchronously).
    pub fn set_release_queue(&mut self, queue: Option<ReleaseQueue>) {
        self.release_queue = queue;
    }
}

impl<D> GlobalDispatch<WpLinuxDrmSyncobjManagerV1, DrmSyncobjGlobalData, D> for DrmSyncobjState
where
    D: GlobalDispatch<WpLinuxDrmSyncobjManagerV1, DrmSyncobjGlobalData>
        + Dispatch<WpLinuxDrmSyncobjManagerV1, ()>
        + 'static,
{
    fn bind(
        _state: &mut D,
        _handle: &DisplayHandle,
        _client: &Client,
        resource: New<WpLinuxDrmSyncobjManagerV1>,
        _global_data: &DrmSyncobjGlobalData,
        data_init: &mut DataInit<'_, D>,
    ) {
        data_init.init(resource, ());
    }

    fn can_view(client: Client, global_data: &DrmSyncobjGlobalData) -> bool {
        (global_data.filter)(&client)
    }
}

impl<D> Dispatch<WpLinuxDrmSyncobjManagerV1, (), D> for DrmSyncobjState
where
    D: Dispatch<WpLinuxDrmSyncobjManagerV1, ()>
        + Dispatch<WpLinuxDrmSyncobjTimelineV1, SyncobjTimelineData>
        + Dispatch<WpLinuxDrmSyncobjSurfaceV1, SyncobjSurfaceData>
        + DrmSyncobjHandler
        + 'static,
{
    fn request(
        state: &mut D,
        _client: &Client,
        manager: &WpLinuxDrmSyncobjManagerV1,
        request: wp_linux_drm_syncobj_manager_v1::Request,
        _data: &(),
        _dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        match request {
            wp_linux_drm_syncobj_manager_v1::Request::GetSurface { id, surface } => {
                let marker = with_states(&surface, |states| {
                    states
                        .data_map
                        .insert_if_missing_threadsafe(SurfaceSyncobj::default);
                    states
                        .data_map
                        .get::<SurfaceSyncobj>()
                        .map(|m| {
                            let live = m
                                .object
                                .lock()
                                .ok()
                                .and_then(|o| o.as_ref().and_then(|w| w.upgrade().ok()))
                                .is_some();
                            let hooked = m.hooked.lock().map(|h| *h).unwrap_or(true);
                            (live, hooked)
                        })
                        .unwrap_or((true, true))
                });
                let (exists, hooked) = marker;
                if exists {
                    manager.post_error(
                        wp_linux_drm_syncobj_manager_v1::Error::SurfaceExists,
                        format!(
                            "wl_surface@{} already has a wp_linux_drm_syncobj_surface_v1; destroy \
                             it before calling get_surface again (EGL/Vulkan may have created one \
                             for this surface)",
                            surface.id().protocol_id()
                        ),
                    );
                    return;
                }
                let object = data_init.init(
                    id,
                    SyncobjSurfaceData {
                        surface: surface.downgrade(),
                    },
                );
                with_states(&surface, |states| {
                    if let Some(m) = states.data_map.get::<SurfaceSyncobj>() {
                        if let Ok(mut o) = m.object.lock() {
                            *o = Some(object.downgrade());
                        }
                        if let Ok(mut h) = m.hooked.lock() {
                            *h = true;
                        }
                    }
                });
                if !hooked {
                    add_pre_commit_hook::<D, _>(&surface, validate_commit);
                    add_destruction_hook::<D, _>(&surface, release_on_destruction);
                    state.new_syncobj_surface(&surface);
                }
            }
            wp_linux_drm_syncobj_manager_v1::Request::ImportTimeline { id, fd } => {
                let device = state.drm_syncobj_state().map(|s| s.device.clone());
                let imported = match &device {
                    Some(device) => device
                        .import_timeline(std::os::fd::AsFd::as_fd(&fd))
                        .map_err(|err| format!("on {}: {err}", device.name())),
                    None => Err("explicit sync is turned off in this lockstep".to_string()),
                };
                match imported {
                    Ok(timeline) => {
                        data_init.init(
                            id,
                            SyncobjTimelineData {
                                timeline: Timeline::Drm(timeline),
                            },
                        );
                    }
                    Err(err) => {
                        // The object must exist to be a valid id, even though it is dead.
                        data_init.init(
                            id,
                            SyncobjTimelineData {
                                timeline: Timeline::Soft(lockstep_sync::SoftTimeline::new()),
                            },
                        );
                        manager.post_error(
                            wp_linux_drm_syncobj_manager_v1::Error::InvalidTimeline,
                            format!(
                                "import_timeline: the fd is not a DRM syncobj lockstep can \
                                 import ({err}); pass the fd from drmSyncobjHandleToFD / \
                                 DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD"
                            ),
                        );
                    }
                }
            }
            wp_linux_drm_syncobj_manager_v1::Request::Destroy => {}
            _ => {}
        }
    }
}

impl<D> Dispatch<WpLinuxDrmSyncobjTimelineV1, SyncobjTimelineData, D> for DrmSyncobjState
where
    D: Dispatch<WpLinuxDrmSyncobjTimelineV1, SyncobjTimelineData> + 'static,
{
    fn request(
        _state: &mut D,
        _client: &Client,
        _timeline: &WpLinuxDrmSyncobjTimelineV1,
        _request: wp_linux_drm_syncobj_timeline_v1::Request,
        _data: &SyncobjTimelineData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        // Only `destroy`: points already set keep their own reference to the timeline.
    }
}

impl<D> Dispatch<WpLinuxDrmSyncobjSurfaceV1, SyncobjSurfaceData, D> for DrmSyncobjState
where
    D: Dispatch<WpLinuxDrmSyncobjSurfaceV1, SyncobjSurfaceData> + DrmSyncobjHandler + 'static,
{
    fn request(
        state: &mut D,
        _client: &Client,
        object: &WpLinuxDrmSyncobjSurfaceV1,
        request: wp_linux_drm_syncobj_surface_v1::Request,
        data: &SyncobjSurfaceData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        let (timeline_object, hi, lo, is_acquire) = match request {
            wp_linux_drm_syncobj_surface_v1::Request::SetAcquirePoint {
                timeline,
                point_hi,
                point_lo,
            } => (timeline, point_hi, point_lo, true),
            wp_linux_drm_syncobj_surface_v1::Request::SetReleasePoint {
                timeline,
                point_hi,
                point_lo,
            } => (timeline, point_hi, point_lo, false),
            wp_linux_drm_syncobj_surface_v1::Request::Destroy => {
                destroyed(object, data);
                return;
            }
            _ => return,
        };
        let what = if is_acquire {
            "set_acquire_point"
        } else {
            "set_release_point"
        };
        let Ok(surface) = data.surface.upgrade() else {
            object.post_error(
                wp_linux_drm_syncobj_surface_v1::Error::NoSurface,
                format!("{what}: the wl_surface of this syncobj surface was destroyed"),
            );
            return;
        };
        let Some(timeline) = timeline_object
            .data::<SyncobjTimelineData>()
            .map(|d| d.timeline.clone())
        else {
            return;
        };
        let point = TimelinePoint::new(timeline, Point((u64::from(hi) << 32) | u64::from(lo)));
        let weak = timeline_object.downgrade();
        let queue = state
            .drm_syncobj_state()
            .and_then(|s| s.release_queue.clone());
        with_states(&surface, |states| {
            let mut cached = states.cached_state.get::<SyncobjCachedState>();
            let pending = cached.pending();
            if is_acquire {
                pending.acquire = Some(AcquirePoint {
                    point,
                    timeline_object: weak,
                });
            } else if let Some(old) = pending.release.replace(ReleasePoint {
                point: Some(point),
                queue,
                timeline_object: weak,
            }) {
                // A later set replaces an earlier one within one commit.
                old.discard();
            }
        });
    }

    fn destroyed(
        _state: &mut D,
        _client: smithay::reexports::wayland_server::backend::ClientId,
        object: &WpLinuxDrmSyncobjSurfaceV1,
        data: &SyncobjSurfaceData,
    ) {
        destroyed(object, data);
    }
}

/// The syncobj surface is gone: forget uncommitted points and free the wl_surface for a new
/// get_surface.
fn destroyed(object: &WpLinuxDrmSyncobjSurfaceV1, data: &SyncobjSurfaceData) {
    let Ok(surface) = data.surface.upgrade() else {
        return;
    };
    with_states(&surface, |states| {
        if let Some(m) = states.data_map.get::<SurfaceSyncobj>() {
            if let Ok(mut o) = m.object.lock() {
                if o.as_ref().is_some_and(|w| w.id() == object.id()) {
                    *o = None;
                }
            }
        }
        let mut cached = states.cached_state.get::<SyncobjCachedState>();
        let pending = cached.pending();
        pending.acquire = None;
        if let Some(release) = pending.release.take() {
            release.discard();
        }
    });
}

/// The wl_surface is being destroyed: its current buffer is no longer used, so its release
/// point is signalled now rather than whenever the last reference to the surface's state goes
/// (a seat's focus or a damage tracker may hold one for a while). Points set but never
/// committed are discarded.
fn release_on_destruction<D>(_state: &mut D, surface: &WlSurface) {
    with_states(surface, |states| {
        let mut cached = states.cached_state.get::<SyncobjCachedState>();
        let current = cached.current();
        current.acquire = None;
        drop(current.release.take());
        let pending = cached.pending();
        pending.acquire = None;
        if let Some(release) = pending.release.take() {
            release.discard();
        }
    });
}

/// The live syncobj surface of `surface`, if any.
fn syncobj_object(surface: &WlSurface) -> Option<WpLinuxDrmSyncobjSurfaceV1> {
    with_states(surface, |states| {
        states
            .data_map
            .get::<SurfaceSyncobj>()
            .and_then(|m| m.object.lock().ok().and_then(|o| o.clone()))
            .and_then(|w| w.upgrade().ok())
    })
}

/// Whether a buffer supports explicit sync with lockstep: dmabufs (the spec's guarantee) and
/// wl_shm (lockstep's choice, see the module docs).
fn supports_explicit_sync(
    buffer: &smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer,
) -> bool {
    smithay::wayland::dmabuf::get_dmabuf(buffer).is_ok()
        || with_buffer_contents(buffer, |_, _, _| ()).is_ok()
}

/// For a surface whose pending state smithay commits without a `wl_surface.commit` of its
/// own: smithay 0.7 commits the *pending* state of a synchronized subsurface tree whenever
/// the (desynchronized) parent commits, without running the subsurface's pre-commit hooks.
/// The compositor calls this from the parent's pre-commit hook, for each such surface,
/// before it holds the commit for the subsurface's acquire point. Returns whether the
/// surface ever had a syncobj surface (otherwise there is nothing to do).
pub fn before_tree_commit(surface: &WlSurface) -> bool {
    let hooked = with_states(surface, |states| {
        states
            .data_map
            .get::<SurfaceSyncobj>()
            .is_some_and(|m| m.hooked.lock().map(|h| *h).unwrap_or(true))
    });
    if hooked {
        record_buffer_assignment(surface);
    }
    hooked
}

/// Records whether the pending commit assigns a buffer (new or null), for the release rules.
/// Runs for every commit of a surface that ever had a syncobj surface, with or without one
/// now.
fn record_buffer_assignment(surface: &WlSurface) {
    with_states(surface, |states| {
        let assigned = states
            .cached_state
            .get::<SurfaceAttributes>()
            .pending()
            .buffer
            .is_some();
        states
            .cached_state
            .get::<SyncobjCachedState>()
            .pending()
            .buffer_assigned = assigned;
    });
}

/// Checks the pending state of a commit against every rule of the protocol.
fn validate_commit<D: 'static>(_state: &mut D, _dh: &DisplayHandle, surface: &WlSurface) {
    record_buffer_assignment(surface);
    let Some(object) = syncobj_object(surface) else {
        return; // no syncobj surface now: implicit sync
    };
    use wp_linux_drm_syncobj_surface_v1::Error;
    let error = with_states(surface, |states| {
        let mut cached = states.cached_state.get::<SyncobjCachedState>();
        let points = cached.pending();
        let mut attrs = states.cached_state.get::<SurfaceAttributes>();
        let buffer = match &attrs.pending().buffer {
            Some(BufferAssignment::NewBuffer(buffer)) => Some(buffer.clone()),
            _ => None,
        };
        let has_acquire = points.acquire.is_some();
        let has_release = points.release.is_some();
        match buffer {
            None if has_acquire || has_release => Some((
                Error::NoBuffer,
                format!(
                    "commit has {} but no buffer attached in this commit; set points only \
                     in commits that attach a non-null buffer",
                    match (has_acquire, has_release) {
                        (true, true) => "acquire and release points",
                        (true, false) => "an acquire point",
                        _ => "a release point",
                    }
                ),
            )),
            None => None,
            Some(buffer) => {
                if !supports_explicit_sync(&buffer) {
                    Some((
                        Error::UnsupportedBuffer,
                        format!(
                            "wl_buffer@{} is neither a linux-dmabuf nor a wl_shm buffer; lockstep \
                             supports explicit sync only for those",
                            buffer.id().protocol_id()
                        ),
                    ))
                } else if !has_acquire {
                    Some((
                        Error::NoAcquirePoint,
                        "a buffer is attached but no acquire point was set for this commit"
                            .to_string(),
                    ))
                } else if !has_release {
                    Some((
                        Error::NoReleasePoint,
                        "a buffer is attached but no release point was set for this commit"
                            .to_string(),
                    ))
                } else {
                    match (&points.acquire, &points.release) {
                        (Some(acquire), Some(release))
                            if acquire.timeline_object == release.timeline_object
                                && release
                                    .point
                                    .as_ref()
                                    .is_some_and(|r| acquire.point.point >= r.point) =>
                        {
                            let release_point =
                                release.point.as_ref().map(|r| r.point.0).unwrap_or(0);
                            Some((
                                Error::ConflictingPoints,
                                format!(
                                    "acquire point {} and release point {} are on the same \
                                     timeline; the acquire point must be strictly less than \
                                     the release point",
                                    acquire.point.point.0, release_point
                                ),
                            ))
                        }
                        _ => None,
                    }
                }
            }
        }
    });
    if let Some((code, message)) = error {
        debug!(?code, %message, "linux-drm-syncobj-v1 protocol error");
        object.post_error(code, message);
    }
}

/// Implements the dispatch traits for `$ty` by delegating to this module.
#[macro_export]
macro_rules! delegate_linux_drm_syncobj_v1 {
    ($ty:ty) => {
        smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::linux_drm_syncobj::v1::server::wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1: $crate::linux_drm_syncobj_v1::DrmSyncobjGlobalData
        ] => $crate::linux_drm_syncobj_v1::DrmSyncobjState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::linux_drm_syncobj::v1::server::wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1: ()
        ] => $crate::linux_drm_syncobj_v1::DrmSyncobjState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::linux_drm_syncobj::v1::server::wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1: $crate::linux_drm_syncobj_v1::SyncobjTimelineData
        ] => $crate::linux_drm_syncobj_v1::DrmSyncobjState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::linux_drm_syncobj::v1::server::wp_linux_drm_syncobj_surface_v1::WpLinuxDrmSyncobjSurfaceV1: $crate::linux_drm_syncobj_v1::SyncobjSurfaceData
        ] => $crate::linux_drm_syncobj_v1::DrmSyncobjState);
    };
}
