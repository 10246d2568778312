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
//! A held commit's acquire fence, when the client has submitted it, also gets a deadline
//! hint: the next frame of its output the buffer can still make (`hint_acquire_deadline`).
//!
//! # An unsignalled buffer is never read: no timeout
//!
//! A held commit is applied when its acquire point signals, and only then (or dropped, with
//! its surface). Nothing else releases the blocker: lockstep has no acquire timeout that
//! drops or applies a commit. That is what makes the rule hold by construction. smithay 0.7
//! keeps the state of a *cancelled* transaction in the surface's cache and merges it into
//! the next commit that applies, so a cancelled commit's buffer could still reach the
//! screen with a later buffer-less commit; lockstep therefore never cancels.
//!
//! This is what the anchors do: wlroots locks the surface's pending state until the
//! waiter on the point fires, or the surface is destroyed, with no timeout; KWin's
//! transactions stay locked until every lock is released; Mutter waits on a GSource for the
//! eventfd. A client whose acquire point never signals stalls only that surface (its
//! previous content stays on screen, its other surfaces, other clients and the outputs go
//! on), and it can destroy the surface or disconnect to get out.
//!
//! - **Not signalled after `[explicit_sync] acquire_timeout_ms`:** a warning (rate-limited
//!   per client, like validation mode's) names the surface and the point, and validation
//!   mode records an `acquire_timeout` entry. The commit keeps waiting.
//! - **Signals with an error** (the client's GPU job failed): the eventfd cannot tell an
//!   errored fence from a good one, so the commit is applied. The buffer shows whatever the
//!   failed job left. That is the client's content to get right, and lockstep neither stalls
//!   nor crashes.
//! - **A synchronized subsurface's state that it never committed:** smithay 0.7 commits the
//!   *pending* state of a synchronized subtree whenever its desynchronized parent commits,
//!   without the subsurfaces' pre-commit hooks. A pre-commit hook on every surface
//!   ([`hold_tree_committed_children`]) holds such a state for its acquire point too, so a
//!   buffer attached with an unsignalled point is not shown through the parent's commit.
//! - **The surface dies while a commit is held:** the wait ends (its eventfd is closed in
//!   the next loop iteration) and its blocker is *released*: the dead surface's state is
//!   never applied, and the rest of the transaction (a parent of a synchronized subsurface)
//!   is not held for it. Its release point is signalled (see the protocol module's rules).
//!
//! # Held commits are capped per client
//!
//! Every held commit costs an eventfd and a calloop source. A client may hold at most
//! `[explicit_sync] max_held_commits_per_client` (default 64) at once; a real client holds
//! about one per swapchain image and surface. A client that asks for more, or a commit
//! whose wait cannot be set up (no eventfd: the fd limit), gets the `wl_display` error
//! `no_memory` and is disconnected, as wlroots does when it cannot wait for an acquire
//! point. (Clients see ENOMEM: libwayland-client turns errors on wl_display into errno
//! values and logs the message; lockstep logs it too, with the client.) The spec has no error for it, and the commit can neither be shown (its point is
//! unsignalled) nor dropped exactly, so disconnecting that client, and only that client,
//! is the one outcome that keeps every rule. The error message names the limit.
//!
//! # Release
//!
//! The protocol's `ReleasePoint` signals itself when dropped, and the protocol module's
//! release rules (a table there) say when that is: whenever a commit with a buffer
//! assignment (new buffer with or without points, null attach) applies, when a cached or
//! queued state is replaced, when the surface or the client goes away. The headless (pixman)
//! renderer has finished reading a buffer when a frame call returns, so dropping signals at
//! once. GLES reads asynchronously, so under winit dropped points wait in a queue until the
//! next frame is rendered and presented. On KMS a GLES frame is finished before its commit
//! unless EGL has native fences; with them the frame leaves with its fence (the primary
//! plane's `IN_FENCE_FD`), dropped points wait in the same queue, and the queue is emptied
//! once per loop iteration into [`release_after_fence`]: the last frame's fence is imported
//! into each kernel timeline point, so the kernel signals the release when the GPU is done
//! reading; no CPU wait. Why the last frame's fence covers every buffer read before it: all
//! frames come from one GL context, whose work completes in order.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    sync::Arc,
    time::Instant,
};

use lockstep_protocols::{
    delegate_linux_drm_syncobj_v1,
    linux_drm_syncobj_v1::{
        signal_release, DrmSyncobjHandler, DrmSyncobjState, ReleaseQueue, SyncobjCachedState,
    },
};
use lockstep_sync::{
    event_loop::PointWait, DrmDevice, NodeKind, PointEvent, SyncDevice, SyncFile, Timeline,
    TimelinePoint,
};
use serde::{Deserialize, Serialize};
use smithay::{
    reexports::{
        calloop::{
            timer::{TimeoutAction, Timer},
            RegistrationToken,
        },
        wayland_server::{
            backend::{ClientId, ObjectId},
            protocol::wl_surface::WlSurface,
            Client, Resource, Weak,
        },
    },
    wayland::compositor::{
        add_blocker, add_destruction_hook, add_pre_commit_hook, get_children, is_sync_subsurface,
        with_states, Blocker, BlockerState, CompositorHandler,
    },
};
use tracing::{debug, info, trace, warn};

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
///
/// Every operation here is O(log n) or better in the number of held commits, so one more
/// held commit does not slow down the release of the others: the timeouts share one calloop
/// timer (a per-wait timer costs an O(n) heap rebuild in calloop whenever one is cancelled
/// out of order), and waits of dead surfaces are looked for only after a syncobj surface was
/// destroyed, not on every loop iteration.
#[derive(Default)]
pub struct AcquireWaits {
    waits: HashMap<u64, PendingAcquire>,
    next_id: u64,
    /// How many commits each client has held (for the per-client cap).
    per_client: HashMap<ClientId, usize>,
    /// When each held commit is to be reported as late, earliest first (reported ones are
    /// removed from here; the commit keeps waiting).
    deadlines: BTreeSet<(Instant, u64)>,
    /// The one timeout timer, and the deadline it is armed for.
    timer: Option<(RegistrationToken, Instant)>,
    /// Clients with waits resolved since the last apply: their commit queues are re-checked
    /// once per loop iteration (or per [`APPLY_CHUNK`] resolved waits), not once per wait.
    /// smithay walks a client's whole queue on every check, so per-wait checks cost O(n²)
    /// with n held commits.
    resolved: Vec<Client>,
    /// How many waits were resolved since the last apply.
    resolved_count: usize,
    /// Sources of waits that ended without firing, removed at the next flush.
    done_tokens: Vec<RegistrationToken>,
    /// A syncobj surface was destroyed since the last flush: its waits are to be dropped.
    surface_died: bool,
    /// Per-client rate limit of the "acquire point late" warning (a client can trigger it).
    late_warnings: crate::sync_validation::WarnLimiter,
    /// True while resolved commits are being applied: their apply times are logged.
    applying: bool,
    /// When the last commits released by their acquire point were applied (at most
    /// [`APPLIED_LOG`] entries, oldest dropped): for the latency benchmark.
    applied_at: VecDeque<Instant>,
}

/// How many apply times [`AcquireWaits`] remembers.
pub const APPLIED_LOG: usize = 4096;

/// After this many resolved waits within one loop iteration, their commits are applied at
/// once instead of after the iteration: when many points signal together, the first
/// surfaces are not held until every wait has been processed. Each apply walks the client's
/// whole commit queue (smithay), so a chunk must be large enough for that walk to stay a
/// small share of applying it.
pub const APPLY_CHUNK: usize = 64;

struct PendingAcquire {
    surface: Weak<WlSurface>,
    client: Client,
    blocker: AcquireBlocker,
    /// The wait source; it removes itself when it fires.
    token: RegistrationToken,
    deadline: Instant,
    timeline: ObjectId,
    point: u64,
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

    /// Number of commits `client` has held.
    pub fn held_by(&self, client: &ClientId) -> usize {
        self.per_client.get(client).copied().unwrap_or(0)
    }

    /// Takes the times at which commits released by their acquire point were applied.
    pub fn take_applied_times(&mut self) -> Vec<Instant> {
        self.applied_at.drain(..).collect()
    }

    /// Called by the commit handler after a commit was applied: logs the time when the commit
    /// was released by an acquire wait (each commit gets the time it was itself applied at).
    pub fn note_applied(&mut self) {
        if !self.applying {
            return;
        }
        if self.applied_at.len() == APPLIED_LOG {
            self.applied_at.pop_front();
        }
        self.applied_at.push_back(Instant::now());
    }
}

/// A transaction blocker shared between the commit queue and the wait sources.
#[derive(Clone, Default)]
struct AcquireBlocker(Arc<std::sync::atomic::AtomicU8>);

// There is no "cancelled": see the module docs (a cancelled transaction's state would stay
// in smithay's cache and could reach the screen with a later commit).
const PENDING: u8 = 0;
const RELEASED: u8 = 1;

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
            RELEASED => BlockerState::Released,
            _ => BlockerState::Pending,
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
        add_destruction_hook::<State, _>(surface, |state, _| {
            state.core.acquire_waits.surface_died = true;
        });
    }
}

/// Disconnects `client` with `wl_display.error(no_memory)`: a commit of `surface` can neither
/// wait (cap reached, no eventfd) nor be shown. The commit gets a blocker nobody releases, so
/// it is never applied; it goes with the client's surfaces.
fn refuse_commit(state: &mut State, client: &Client, surface: &WlSurface, message: String) {
    warn!(surface = ?surface.id(), client = ?client.id(), %message, "disconnecting a client whose commit cannot wait for its acquire point");
    let handle = state.core.display_handle.backend_handle();
    crate::dispatch::post_no_memory(&handle, &client.id(), &message);
    add_blocker(surface, AcquireBlocker::default());
}

/// Pre-commit hook of every surface: before a desynchronized surface commits, smithay 0.7
/// also commits the *pending* state of each synchronized child subtree (its
/// `commit_sync_surface_tree`), without running those surfaces' own pre-commit hooks. A
/// buffer and acquire point a child attached but never committed would then be applied
/// with the parent's commit, unsignalled. So the child's hold runs here too; its blocker
/// joins the parent's transaction. (No protocol errors: the client did not commit it.)
pub fn hold_tree_committed_children(
    state: &mut State,
    dh: &smithay::reexports::wayland_server::DisplayHandle,
    surface: &WlSurface,
) {
    if is_sync_subsurface(surface) {
        return; // a synchronized surface's commit does not commit its children's state
    }
    let mut stack: Vec<WlSurface> = get_children(surface)
        .into_iter()
        .filter(is_sync_subsurface)
        .collect();
    while let Some(child) = stack.pop() {
        stack.extend(get_children(&child));
        if lockstep_protocols::linux_drm_syncobj_v1::before_tree_commit(&child) {
            hold_until_acquired(state, dh, &child);
        }
    }
}

/// Pre-commit hook: blocks the commit until its acquire point signals.
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
    let cap = state.core.config.explicit_sync.max_held_commits_per_client as usize;
    if state.core.acquire_waits.held_by(&client.id()) >= cap {
        let message = format!(
            "too many commits waiting for acquire points: this client already has {cap} \
             (lockstep's [explicit_sync] max_held_commits_per_client); each costs lockstep an \
             eventfd. Commit with an acquire point only what the GPU will finish"
        );
        refuse_commit(state, &client, surface, message);
        return;
    }
    let blocker = AcquireBlocker::default();
    let id = state.core.acquire_waits.next_id;
    state.core.acquire_waits.next_id += 1;
    let point = acquire.point.point.0;

    let wait = match PointWait::new(&acquire.point, PointEvent::Signalled) {
        Ok(wait) => wait,
        Err(err) => {
            // Cannot wait (eventfd failed, fd limit): never show a buffer that may still be
            // written, and never hold a commit nothing will release.
            let message = format!(
                "lockstep cannot wait for acquire point {point} of wl_surface@{}: {err}",
                surface.id().protocol_id()
            );
            refuse_commit(state, &client, surface, message);
            return;
        }
    };
    let on_signal = move |_: (), _: &mut (), state: &mut State| {
        let Some(wait) = state.core.acquire_waits.remove(id) else {
            return;
        };
        if wait.blocker.set(RELEASED) {
            debug!(point, "acquire point signalled; applying the commit");
        }
        // The source removes itself after this callback: its token is not kept.
        let waits = &mut state.core.acquire_waits;
        waits.mark_resolved(wait.client);
        if waits.resolved_count >= APPLY_CHUNK {
            state.apply_resolved();
        }
    };
    let token = match state.core.loop_handle.insert_source(wait, on_signal) {
        Ok(token) => token,
        Err(err) => {
            let message = format!(
                "lockstep cannot wait for acquire point {point} of wl_surface@{}: {}",
                surface.id().protocol_id(),
                err.error
            );
            refuse_commit(state, &client, surface, message);
            return;
        }
    };
    let deadline = Instant::now() + state.core.config.explicit_sync.acquire_timeout();
    state.core.acquire_waits.insert(
        id,
        PendingAcquire {
            surface: surface.downgrade(),
            client,
            blocker: blocker.clone(),
            token,
            deadline,
            timeline: acquire.timeline_id(),
            point,
        },
    );
    state.arm_acquire_timer(deadline);
    add_blocker(surface, blocker);
    hint_acquire_deadline(&state.core, surface, &acquire.point);
}

/// Tells the driver of a held commit's acquire fence when lockstep needs it: its output's
/// next frame it can still make, minus the composition margin (`frame_clock.rs`,
/// [`acquire_deadline`](crate::frame_clock::acquire_deadline)). The point's fence is
/// exported as a sync_file and given `SYNC_IOC_SET_DEADLINE` (Linux 6.4+), so a GPU can clock
/// up before the frame is missed. A hint: nothing waits, and failures only log. A point the
/// client has not submitted yet has no fence to tell (the eventfd waits for submission);
/// soft timelines have no driver.
fn hint_acquire_deadline(core: &Core, surface: &WlSurface, point: &TimelinePoint) {
    let Timeline::Drm(timeline) = &point.timeline else {
        return;
    };
    let Some(deadline) = core.acquire_deadline(surface) else {
        return;
    };
    let ns = u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX);
    let result = timeline
        .export_sync_file(point.point)
        .map_err(|e| e.to_string())
        .and_then(|file| {
            file.set_deadline(lockstep_sync::Timestamp(ns))
                .map_err(|e| e.to_string())
        });
    match result {
        Ok(true) => trace!(
            point = point.point.0,
            deadline_ns = ns,
            "acquire deadline set"
        ),
        Ok(false) => trace!("the kernel has no fence deadlines"),
        Err(err) => trace!(point = point.point.0, %err, "no acquire deadline"),
    }
}

impl AcquireWaits {
    fn insert(&mut self, id: u64, wait: PendingAcquire) {
        self.deadlines.insert((wait.deadline, id));
        *self.per_client.entry(wait.client.id()).or_default() += 1;
        self.waits.insert(id, wait);
    }

    /// Forgets a wait that ended (signalled, or its surface died).
    fn remove(&mut self, id: u64) -> Option<PendingAcquire> {
        let wait = self.waits.remove(&id)?;
        self.deadlines.remove(&(wait.deadline, id));
        let client = wait.client.id();
        if let Some(n) = self.per_client.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&client);
            }
        }
        Some(wait)
    }

    /// Remembers `client` for the next apply.
    fn mark_resolved(&mut self, client: Client) {
        self.resolved_count += 1;
        if !self.resolved.iter().any(|c| c.id() == client.id()) {
            self.resolved.push(client);
        }
    }
}

impl State {
    /// Makes sure the shared timeout timer fires no later than `deadline`.
    fn arm_acquire_timer(&mut self, deadline: Instant) {
        let waits = &mut self.core.acquire_waits;
        if let Some((token, armed)) = waits.timer {
            if armed <= deadline {
                return;
            }
            self.core.loop_handle.remove(token);
            waits.timer = None;
        }
        let timer = Timer::from_deadline(deadline);
        match self
            .core
            .loop_handle
            .insert_source(timer, |now, _, state: &mut State| {
                state.acquire_deadline(now)
            }) {
            Ok(token) => waits.timer = Some((token, deadline)),
            // Without a timer the waits still end when their points signal or their surfaces
            // die; only the timeout is lost, until the next held commit arms it again.
            Err(err) => warn!(error = %err.error, "cannot arm the acquire timeout"),
        }
    }

    /// The shared timer fired: reports every held commit whose acquire point is late (the
    /// commit keeps waiting), and re-arms the timer for the next one.
    fn acquire_deadline(&mut self, now: Instant) -> TimeoutAction {
        let timeout_ms = self.core.config.explicit_sync.acquire_timeout().as_millis() as u64;
        loop {
            let waits = &mut self.core.acquire_waits;
            let Some(&(deadline, id)) = waits.deadlines.first() else {
                waits.timer = None;
                return TimeoutAction::Drop;
            };
            if deadline > now {
                waits.timer = waits.timer.map(|(token, _)| (token, deadline));
                return TimeoutAction::ToInstant(deadline);
            }
            waits.deadlines.remove(&(deadline, id));
            let Some(wait) = waits.waits.get(&id) else {
                continue;
            };
            let (surface, timeline, point) =
                (wait.surface.clone(), wait.timeline.clone(), wait.point);
            let (log, suppressed) = waits.late_warnings.allow(Some(wait.client.id()), now);
            if suppressed > 0 {
                warn!(client = ?wait.client.id(), suppressed, "late acquire point warnings of this client were suppressed (rate limit)");
            }
            if log {
                warn!(surface = ?surface.id(), point, timeout_ms,
                    "acquire point not signalled in time; the commit keeps waiting, the surface keeps its old content");
            }
            if let Ok(surface) = surface.upgrade() {
                self.core
                    .sync_validation
                    .acquire_timed_out(&surface, &timeline, point, timeout_ms);
            }
        }
    }

    /// Applies the commits of resolved waits: one queue check per client.
    fn apply_resolved(&mut self) {
        let resolved = std::mem::take(&mut self.core.acquire_waits.resolved);
        self.core.acquire_waits.resolved_count = 0;
        if resolved.is_empty() {
            return;
        }
        let dh = self.core.display_handle.clone();
        self.core.acquire_waits.applying = true;
        for client in resolved {
            self.client_compositor_state(&client)
                .blocker_cleared(self, &dh);
        }
        self.core.acquire_waits.applying = false;
    }

    /// Once per loop iteration: applies the commits whose acquire waits ended (one queue
    /// check per client), removes the sources of waits that ended without firing, and, after
    /// a syncobj surface was destroyed, drops the waits of dead surfaces (closing their
    /// eventfds at once rather than at the timeout). Cheap when there is nothing to do.
    pub fn collect_sync_garbage(&mut self) {
        let waits = &mut self.core.acquire_waits;
        if std::mem::take(&mut waits.surface_died) {
            let dead: Vec<u64> = waits
                .waits
                .iter()
                .filter(|(_, w)| w.surface.upgrade().is_err())
                .map(|(id, _)| *id)
                .collect();
            for id in dead {
                if let Some(wait) = waits.remove(id) {
                    // Released, not cancelled: the dead surface's state is never applied
                    // (smithay skips dead surfaces), and the rest of its transaction is not
                    // held for it.
                    wait.blocker.set(RELEASED);
                    waits.done_tokens.push(wait.token);
                    waits.mark_resolved(wait.client);
                }
            }
        }
        for token in self.core.acquire_waits.done_tokens.drain(..) {
            self.core.loop_handle.remove(token);
        }
        self.apply_resolved();
    }

    /// Signals the release points an asynchronous renderer queued, after the frames that may
    /// have read their buffers: at once when the backend has no render fence pending (the
    /// renderer is done with everything it was given), else when that fence signals
    /// ([`release_after_fence`]). Called after each rendered frame and, where frames leave
    /// with fences (KMS with native fences), once per loop iteration.
    pub fn signal_queued_releases(&mut self) {
        let Some(queue) = &self.core.release_queue else {
            return;
        };
        let points = match queue.lock() {
            Ok(mut queue) => std::mem::take(&mut *queue),
            Err(_) => return,
        };
        if points.is_empty() {
            return;
        }
        let fence = match self.backend.release_fence().map(|f| f.try_clone_to_owned()) {
            None => {
                for point in &points {
                    signal_release(point);
                }
                return;
            }
            Some(Ok(fence)) => fence,
            Some(Err(err)) => {
                // No fd for the fence (the fd limit): try again next time, never early.
                debug!(%err, "cannot duplicate the render fence; releases wait");
                if let Ok(mut queue) = queue.lock() {
                    queue.extend(points);
                }
                return;
            }
        };
        release_after_fence(&self.core.loop_handle, points, fence);
    }
}

/// Makes `points` signal when `fence` (a sync_file: the GPU's fence of the last frame that
/// may have read their buffers) does: imported into each kernel timeline point, so the kernel
/// signals it and the CPU does nothing; points on soft timelines, or whose import fails, are
/// signalled from the event loop when the sync_file polls readable.
pub fn release_after_fence(
    loop_handle: &smithay::reexports::calloop::LoopHandle<'static, State>,
    points: Vec<TimelinePoint>,
    fence: std::os::fd::OwnedFd,
) {
    let file = match SyncFile::from_fd(fence) {
        Ok(file) => file,
        Err(err) => {
            // Not a sync_file: nothing to wait for that the kernel would tell us about.
            warn!(%err, "the render fence is not a sync_file; releasing now");
            for point in &points {
                signal_release(point);
            }
            return;
        }
    };
    let on_cpu: Vec<TimelinePoint> = points
        .into_iter()
        .filter(|point| match &point.timeline {
            Timeline::Drm(timeline) => match timeline.import_sync_file(point.point, &file) {
                Ok(()) => false,
                Err(err) => {
                    debug!(%err, "cannot import the render fence; waiting on the loop");
                    true
                }
            },
            Timeline::Soft(_) => true,
        })
        .collect();
    if on_cpu.is_empty() {
        return;
    }
    let wait = lockstep_sync::event_loop::SyncFileWait::new(file);
    let inserted = loop_handle.insert_source(wait, move |_, _, _| {
        for point in &on_cpu {
            signal_release(point);
        }
    });
    if let Err(err) = inserted {
        // Only when the loop is gone: nobody waits for these any more.
        warn!(error = %err.error, "cannot wait for the render fence");
    }
}

delegate_linux_drm_syncobj_v1!(State);
