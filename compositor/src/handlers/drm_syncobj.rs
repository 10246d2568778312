//! linux-drm-syncobj-v1 in the compositor: when explicit sync is offered, holding commits
//! until their acquire point signals, and releasing buffers.
//!
//! The protocol rules live in `lockstep_protocols::linux_drm_syncobj_v1`. Here is what
//! depends on lockstep itself.
//!
//! # When the global exists
//!
//! Only when a sync device passes `lockstep_sync`'s capability probe: the render node named by
//! `[explicit_sync] device`, or the first render node whose driver has timeline syncobjs and
//! SYNCOBJ_EVENTFD. `LOCKSTEP_NO_EXPLICIT_SYNC=1` and `[explicit_sync] enabled = false` turn
//! it off. `lockstep msg explicit-sync` tells whether it is on and, if not, exactly why.
//!
//! # Acquire: a commit waits, nothing else does
//!
//! A pre-commit hook adds a smithay transaction blocker to every commit whose acquire point is
//! not yet signalled. It also registers a one-shot calloop source on the point's
//! SYNCOBJ_EVENTFD. The kernel's eventfd waits for the point to be *submitted* and then
//! signalled, so a client may commit before it submits its rendering (Xwayland does). When the
//! source fires, the blocker is released and smithay applies the commit, and every commit queued
//! behind it, in order. Other surfaces, clients and outputs never wait. The event loop never
//! blocks.
//!
//! # Acquire points that fail
//!
//! - **Never signals:** after `[explicit_sync] acquire_timeout_ms` the commit's transaction
//!   is cancelled. That surface keeps its previous content, later commits go on, and a
//!   warning (and a validation entry) names the surface and the point. One smithay 0.7
//!   detail: a cancelled transaction's state stays in the surface's cache and is merged
//!   with the next commit that applies. A next commit that attaches a buffer (the normal
//!   case, and what the tests do) replaces it, so the failed buffer is never shown and its
//!   release point is signalled at that moment. A next commit without a buffer would bring
//!   the failed buffer on screen; fixing that needs a cache-drop hook smithay 0.7 lacks.
//! - **Signals with an error** (the client's GPU job failed): the eventfd cannot tell an
//!   errored fence from a good one, so the commit is applied. The buffer shows whatever the
//!   failed job left. That is the client's content to get right, and lockstep neither stalls
//!   nor crashes.
//!
//! # Release
//!
//! The protocol's `ReleasePoint` signals itself when dropped. It is dropped when a newer
//! buffer is applied, when a cached or queued state is replaced, when the surface or the
//! client goes away, and here when a commit attaches a null buffer. The headless (pixman)
//! renderer has finished reading a buffer when a frame call returns, so dropping signals at
//! once. GLES reads asynchronously, so under winit dropped points wait in a queue until the
//! next frame is rendered and presented.

use std::sync::Arc;

use lockstep_protocols::{
    delegate_linux_drm_syncobj_v1,
    linux_drm_syncobj_v1::{
        signal_release, DrmSyncobjHandler, DrmSyncobjState, ReleaseQueue, SyncobjCachedState,
    },
};
use lockstep_sync::{event_loop::PointWait, DrmDevice, NodeKind, PointEvent, SyncDevice};
use serde::{Deserialize, Serialize};
use smithay::{
    reexports::{
        calloop::{
            timer::{TimeoutAction, Timer},
            RegistrationToken,
        },
        wayland_server::{protocol::wl_surface::WlSurface, Client, Resource, Weak},
    },
    wayland::compositor::{
        add_blocker, add_pre_commit_hook, with_states, Blocker, BlockerState, CompositorHandler,
    },
};
use tracing::{debug, info, warn};

use crate::state::{Core, State};

/// Whether explicit sync is offered, and why (not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExplicitSyncStatus {
    /// Whether the global is advertised.
    pub enabled: bool,
    /// The sync device, when enabled.
    pub device: Option<String>,
    /// Why it is on or off, for people.
    pub reason: String,
}

/// Commits waiting for their acquire point.
#[derive(Default)]
pub struct AcquireWaits {
    waits: std::collections::HashMap<u64, PendingAcquire>,
    next_id: u64,
    /// Clients with waits resolved since the last flush, and how many: their commit queues
    /// are re-checked once per loop iteration, not once per wait (smithay walks a client's
    /// whole queue on every check, so per-wait checks cost O(n²) with n held commits).
    resolved: Vec<(Client, usize)>,
    /// Sources of resolved waits, removed at the next flush.
    done_tokens: Vec<RegistrationToken>,
    /// When the last commits released by their acquire point were applied (at most
    /// [`APPLIED_LOG`] entries, oldest dropped): for the latency benchmark.
    applied_at: std::collections::VecDeque<std::time::Instant>,
}

/// How many apply times [`AcquireWaits`] remembers.
pub const APPLIED_LOG: usize = 4096;

struct PendingAcquire {
    surface: Weak<WlSurface>,
    blocker: AcquireBlocker,
    tokens: Vec<RegistrationToken>,
}

impl AcquireWaits {
    /// Number of commits currently held.
    pub fn len(&self) -> usize {
        self.waits.len()
    }

    /// Whether no commit is held.
    pub fn is_empty(&self) -> bool {
        self.waits.is_empty()
    }

    /// Takes the times at which commits released by their acquire point were applied.
    pub fn take_applied_times(&mut self) -> Vec<std::time::Instant> {
        self.applied_at.drain(..).collect()
    }
}

/// A transaction blocker shared between the commit queue and the wait sources.
#[derive(Clone, Default)]
struct AcquireBlocker(Arc<std::sync::atomic::AtomicU8>);

const PENDING: u8 = 0;
const RELEASED: u8 = 1;
const CANCELLED: u8 = 2;

impl AcquireBlocker {
    fn set(&self, to: u8) -> bool {
        self.0
            .compare_exchange(
                PENDING,
                to,
                std::sync::atomic::Ordering::AcqRel,
                std::sync::atomic::Ordering::Acquire,
            )
            .is_ok()
    }
}

impl Blocker for AcquireBlocker {
    fn state(&self) -> BlockerState {
        match self.0.load(std::sync::atomic::Ordering::Acquire) {
            PENDING => BlockerState::Pending,
            RELEASED => BlockerState::Released,
            _ => BlockerState::Cancelled,
        }
    }
}

/// Decides whether to offer explicit sync and creates the global if so.
pub fn init(core: &mut Core, deferred_release: bool) {
    let device = choose_device(core);
    init_with(core, device, deferred_release);
}

/// Offers explicit sync with timelines imported on `device` (tests and benchmarks use this to
/// run on a device of their own), or records why it is off.
pub fn init_with(
    core: &mut Core,
    device: Result<Arc<dyn SyncDevice>, String>,
    deferred_release: bool,
) {
    let status = match device {
        Ok(device) => {
            let name = device.name();
            let mut state =
                DrmSyncobjState::new::<State, _>(&core.display_handle, device, |_| true);
            if deferred_release {
                let queue: ReleaseQueue = Default::default();
                state.set_release_queue(Some(queue.clone()));
                core.release_queue = Some(queue);
            }
            core.drm_syncobj = Some(state);
            info!(device = %name, "explicit sync (linux-drm-syncobj-v1) is on");
            ExplicitSyncStatus {
                enabled: true,
                device: Some(name.clone()),
                reason: format!("timelines are imported on {name}"),
            }
        }
        Err(reason) => {
            info!(%reason, "explicit sync (linux-drm-syncobj-v1) is off");
            ExplicitSyncStatus {
                enabled: false,
                device: None,
                reason,
            }
        }
    };
    core.explicit_sync = status;
}

fn choose_device(core: &Core) -> Result<Arc<dyn SyncDevice>, String> {
    if std::env::var_os("LOCKSTEP_NO_EXPLICIT_SYNC").is_some_and(|v| v != "0" && !v.is_empty()) {
        return Err("turned off by LOCKSTEP_NO_EXPLICIT_SYNC".into());
    }
    let config = &core.config.explicit_sync;
    if !config.enabled {
        return Err("turned off by `[explicit_sync] enabled = false` in the config".into());
    }
    if let Some(path) = &config.device {
        let device = DrmDevice::open(path).map_err(|err| {
            format!(
                "the configured device {} cannot be opened: {err}",
                path.display()
            )
        })?;
        let caps = device.capabilities();
        if let Err(missing) = caps.require_explicit_sync() {
            return Err(format!(
                "the configured device {} cannot do explicit sync: {missing}",
                path.display()
            ));
        }
        return Ok(Arc::new(device));
    }
    let candidates = DrmDevice::list(NodeKind::Render);
    if candidates.is_empty() {
        return Err(
            "no DRM render node (/dev/dri/renderD*) on this machine; explicit sync needs one for \
             timeline syncobjs"
                .into(),
        );
    }
    let mut reasons = Vec::new();
    for device in candidates {
        match device.capabilities().require_explicit_sync() {
            Ok(()) => return Ok(Arc::new(device)),
            Err(missing) => reasons.push(format!("{}: {missing}", device.name())),
        }
    }
    Err(format!(
        "no render node supports timeline syncobjs with eventfd ({})",
        reasons.join("; ")
    ))
}

impl DrmSyncobjHandler for State {
    fn drm_syncobj_state(&mut self) -> Option<&mut DrmSyncobjState> {
        self.core.drm_syncobj.as_mut()
    }

    fn new_syncobj_surface(&mut self, surface: &WlSurface) {
        add_pre_commit_hook::<State, _>(surface, hold_until_acquired);
    }
}

/// Pre-commit hook: blocks the commit until its acquire point signals (or times out).
fn hold_until_acquired(
    state: &mut State,
    _dh: &smithay::reexports::wayland_server::DisplayHandle,
    surface: &WlSurface,
) {
    let acquire = with_states(surface, |states| {
        states
            .cached_state
            .get::<SyncobjCachedState>()
            .pending()
            .acquire
            .clone()
    });
    let Some(acquire) = acquire else {
        return;
    };
    state.core.sync_validation.check_commit(surface);
    if matches!(acquire.point.is_signalled(), Ok(true)) {
        return; // already signalled: nothing to wait for
    }
    let Ok(client) = state.core.display_handle.get_client(surface.id()) else {
        return;
    };
    let blocker = AcquireBlocker::default();
    let id = state.core.acquire_waits.next_id;
    state.core.acquire_waits.next_id += 1;
    let point = acquire.point.point.0;

    let wait = match PointWait::new(&acquire.point, PointEvent::Signalled) {
        Ok(wait) => wait,
        Err(err) => {
            // Cannot wait (eventfd failed, fd limit): fail this commit rather than show a
            // buffer that may still be written.
            warn!(surface = ?surface.id(), point, %err, "cannot wait for an acquire point; dropping the commit");
            blocker.set(CANCELLED);
            add_blocker(surface, blocker);
            return;
        }
    };
    let on_signal = {
        let blocker = blocker.clone();
        let client = client.clone();
        move |_: (), _: &mut (), state: &mut State| {
            if blocker.set(RELEASED) {
                debug!(point, "acquire point signalled; applying the commit");
            }
            state.core.acquire_waits.resolve(id, &client);
        }
    };
    let timeout = state.core.config.explicit_sync.acquire_timeout();
    let on_timeout = {
        let blocker = blocker.clone();
        let surface = surface.downgrade();
        let timeline = acquire.timeline_id();
        move |_, _: &mut (), state: &mut State| {
            if blocker.set(CANCELLED) {
                let timeout_ms = timeout.as_millis() as u64;
                warn!(surface = ?surface.id(), point, timeout_ms,
                    "acquire point not signalled in time; that commit is dropped, the surface keeps its old content");
                if let Ok(surface) = surface.upgrade() {
                    state
                        .core
                        .sync_validation
                        .acquire_timed_out(&surface, &timeline, point, timeout_ms);
                }
            }
            state.core.acquire_waits.resolve(id, &client);
            TimeoutAction::Drop
        }
    };
    let handle = state.core.loop_handle.clone();
    let wait_token = handle.insert_source(wait, on_signal);
    let timer_token = handle.insert_source(Timer::from_duration(timeout), on_timeout);
    let tokens = match (wait_token, timer_token) {
        (Ok(w), Ok(t)) => vec![w, t],
        (w, t) => {
            warn!(surface = ?surface.id(), point, "cannot register the acquire wait; dropping the commit");
            for token in [w.ok(), t.ok()].into_iter().flatten() {
                handle.remove(token);
            }
            blocker.set(CANCELLED);
            Vec::new()
        }
    };
    state.core.acquire_waits.waits.insert(
        id,
        PendingAcquire {
            surface: surface.downgrade(),
            blocker: blocker.clone(),
            tokens,
        },
    );
    add_blocker(surface, blocker);
}

impl AcquireWaits {
    /// A wait ended (signalled, timed out, or its surface died): forget it and remember its
    /// client for the next flush. Its sources are removed in the flush, outside their own
    /// callbacks.
    fn resolve(&mut self, id: u64, client: &Client) {
        let Some(wait) = self.waits.remove(&id) else {
            return;
        };
        self.done_tokens.extend(wait.tokens);
        match self
            .resolved
            .iter_mut()
            .find(|(c, _)| c.id() == client.id())
        {
            Some((_, n)) => *n += 1,
            None => self.resolved.push((client.clone(), 1)),
        }
    }
}

impl State {
    /// Once per loop iteration: applies the commits whose acquire waits ended (one queue
    /// check per client), removes the ended waits' sources, and drops waits whose surface is
    /// gone (closing their eventfds at once rather than at the timeout). Cheap when there is
    /// nothing to do.
    pub fn collect_sync_garbage(&mut self) {
        let waits = &mut self.core.acquire_waits;
        if !waits.waits.is_empty() {
            let dead: Vec<u64> = waits
                .waits
                .iter()
                .filter(|(_, w)| w.surface.upgrade().is_err())
                .map(|(id, _)| *id)
                .collect();
            for id in dead {
                if let Some(wait) = waits.waits.remove(&id) {
                    wait.blocker.set(CANCELLED);
                    waits.done_tokens.extend(wait.tokens);
                }
            }
        }
        for token in waits.done_tokens.drain(..) {
            self.core.loop_handle.remove(token);
        }
        // Re-check each affected client's commit queue once.
        let resolved = std::mem::take(&mut self.core.acquire_waits.resolved);
        for (client, count) in resolved {
            let dh = self.core.display_handle.clone();
            self.client_compositor_state(&client)
                .blocker_cleared(self, &dh);
            let now = std::time::Instant::now();
            let log = &mut self.core.acquire_waits.applied_at;
            for _ in 0..count {
                if log.len() == APPLIED_LOG {
                    log.pop_front();
                }
                log.push_back(now);
            }
        }
    }

    /// Signals the release points an asynchronous renderer queued, after a frame finished.
    pub fn signal_queued_releases(&mut self) {
        let Some(queue) = &self.core.release_queue else {
            return;
        };
        let points = match queue.lock() {
            Ok(mut queue) => std::mem::take(&mut *queue),
            Err(_) => return,
        };
        for point in &points {
            signal_release(point);
        }
    }
}

/// On commit: a null buffer ends the current buffer's use, so its release point goes now.
pub fn on_commit_buffer_removed(surface: &WlSurface) {
    with_states(surface, |states| {
        let removed = matches!(
            states
                .cached_state
                .get::<smithay::wayland::compositor::SurfaceAttributes>()
                .current()
                .buffer,
            Some(smithay::wayland::compositor::BufferAssignment::Removed)
        );
        if removed {
            let mut cached = states.cached_state.get::<SyncobjCachedState>();
            let current = cached.current();
            current.acquire = None;
            drop(current.release.take());
        }
    });
}

delegate_linux_drm_syncobj_v1!(State);
