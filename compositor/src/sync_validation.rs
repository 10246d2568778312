//! Client validation mode for explicit sync (`--sync-validation` or
//! `[explicit_sync] validation = true`): a report of what a client did that the protocol
//! allows but that breaks explicit sync.
//!
//! The protocol module rejects everything the spec forbids, with a protocol error. This module
//! records mistakes that are legal on the wire but wrong in effect. It checks at every commit
//! that carries points (before the commit is held for its acquire point), when an acquire
//! wait is still pending after `acquire_timeout_ms`, and when lockstep signals a release point:
//!
//! | kind | what the client did | why it matters |
//! |---|---|---|
//! | `buffer_reused_before_release` | attached a wl_buffer with new points while lockstep still held that buffer's previous release point (also after a newer commit replaced it, until the release point is signalled: on KMS at the page flip that takes it off the screen) | the client may already be drawing into a buffer lockstep still reads: tearing, garbage |
//! | `points_not_increasing` | set a point not greater than one it set before on the same timeline | a timeline point counts as signalled once any later one is, so a lower point is signalled already or never means what the client thinks |
//! | `acquire_timeout` | its acquire point did not signal within `acquire_timeout_ms` | the surface is stuck on its old content until the point signals (lockstep never shows an unsignalled buffer); the client's GPU work never finished or was never submitted |
//! | `release_signalled_by_client` | a release point lockstep still held was already signalled | someone other than lockstep signalled it, so the client cannot know when lockstep is done |
//! | `acquire_signals_held_release` | set an acquire point above a release point lockstep still holds on the same timeline | signalling the acquire also marks that release point signalled, early |
//!
//! `lockstep msg sync-report [--json]` prints the entries, and a summary is logged when
//! lockstep exits.
//!
//! # Bounded, whatever the client does
//!
//! - The report keeps at most [`MAX_ENTRIES`] entries and counts the ones it drops.
//! - The highest point per timeline is kept only for live timeline objects: entries of
//!   destroyed timelines (and so of dead clients) are removed whenever the map has doubled
//!   since the last sweep (amortised O(1) per commit), and at most [`MAX_TIMELINES`] are
//!   tracked; past that, new timelines go unchecked for `points_not_increasing` and are
//!   counted.
//! - Held release points are forgotten once signalled (replaced buffers) or when their
//!   surfaces die.
//! - Each mistake is logged as a warning at most [`WARN_BURST`] times per client per
//!   [`WARN_WINDOW`]; the rest are counted and one line says how many were suppressed. The
//!   report itself still gets every entry (up to [`MAX_ENTRIES`]).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use lockstep_protocols::linux_drm_syncobj_v1::SyncobjCachedState;
use lockstep_sync::TimelinePoint;
use serde::{Deserialize, Serialize};
use smithay::{
    reexports::wayland_server::{
        backend::{ClientId, ObjectId},
        protocol::wl_surface::WlSurface,
        Resource, Weak,
    },
    wayland::compositor::{with_states, BufferAssignment, SurfaceAttributes},
};
use tracing::warn;

/// Most entries kept; later ones are counted in `dropped`.
pub const MAX_ENTRIES: usize = 1000;

/// Most timelines whose highest point is tracked at once.
pub const MAX_TIMELINES: usize = 4096;

/// Warnings logged per client per [`WARN_WINDOW`]; more are counted, not logged.
pub const WARN_BURST: u32 = 5;

/// The window [`WARN_BURST`] counts in.
pub const WARN_WINDOW: Duration = Duration::from_secs(1);

/// Per-client rate limit of validation warnings.
#[derive(Debug, Default)]
pub struct WarnLimiter {
    clients: HashMap<Option<ClientId>, WarnWindow>,
}

#[derive(Debug)]
struct WarnWindow {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

impl WarnLimiter {
    /// Whether a warning of `client` at `now` may be logged. When a new window starts after
    /// suppressed warnings, returns how many were suppressed too (to be said once).
    pub fn allow(&mut self, client: Option<ClientId>, now: Instant) -> (bool, u64) {
        if self.clients.len() > 256 {
            // Forget clients quiet for a whole window (dead ones among them).
            self.clients
                .retain(|_, w| now.duration_since(w.start) < WARN_WINDOW || w.suppressed > 0);
        }
        let w = self.clients.entry(client).or_insert(WarnWindow {
            start: now,
            logged: 0,
            suppressed: 0,
        });
        let mut reported = 0;
        if now.duration_since(w.start) >= WARN_WINDOW {
            reported = std::mem::take(&mut w.suppressed);
            w.start = now;
            w.logged = 0;
        }
        if w.logged < WARN_BURST {
            w.logged += 1;
            (true, reported)
        } else {
            w.suppressed += 1;
            (false, reported)
        }
    }

    /// Number of clients remembered.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

/// What kind of mistake an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MistakeKind {
    /// A buffer was attached again while lockstep still held its previous release point.
    BufferReusedBeforeRelease,
    /// A point not greater than an earlier one on the same timeline.
    PointsNotIncreasing,
    /// An acquire point did not signal in time.
    AcquireTimeout,
    /// A release point lockstep held was signalled by someone else.
    ReleaseSignalledByClient,
    /// An acquire point above a release point lockstep holds on the same timeline.
    AcquireSignalsHeldRelease,
}

/// One recorded mistake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportEntry {
    /// Milliseconds since lockstep started.
    pub time_ms: u64,
    /// The client's process id, when known.
    pub client_pid: Option<i32>,
    /// The app_id of the surface's toplevel, when it has one.
    pub app_id: Option<String>,
    /// The surface, as `wl_surface@ID`.
    pub surface: String,
    /// The timeline object, as `wp_linux_drm_syncobj_timeline_v1@ID`.
    pub timeline: String,
    /// The points involved.
    pub points: String,
    /// The kind of mistake.
    pub kind: MistakeKind,
    /// What happened.
    pub what: String,
    /// Why it matters.
    pub why: String,
}

/// A release point lockstep holds for a buffer that is current on a surface.
#[derive(Debug, Clone)]
struct Held {
    surface: Weak<WlSurface>,
    timeline: ObjectId,
    point: TimelinePoint,
    /// Whether the buffer is its surface's current one. A replaced buffer stays here until
    /// its release point is signalled: on KMS that is the page flip that takes it off the
    /// screen, with an asynchronous renderer the end of the next frame, so a client that
    /// reuses it in between is reported too.
    current: bool,
}

/// The validation state and report.
#[derive(Debug, Default)]
pub struct SyncValidation {
    enabled: bool,
    entries: Vec<ReportEntry>,
    dropped: u64,
    /// Highest point set so far per live timeline object.
    highest: HashMap<ObjectId, u64>,
    /// `highest` is swept of dead timelines when it grows past this.
    sweep_at: usize,
    /// Timelines not tracked because [`MAX_TIMELINES`] were.
    untracked_timelines: u64,
    warnings: WarnLimiter,
    /// Release points held, by wl_buffer.
    held: HashMap<ObjectId, Held>,
    started: Option<Instant>,
    display: Option<smithay::reexports::wayland_server::DisplayHandle>,
    /// Commits that carried explicit-sync points (counted with validation on): whether a
    /// client used explicit sync at all (`lockstep check-client`).
    commits_with_points: u64,
}

impl SyncValidation {
    /// Validation on or off; `display` is used to look up client pids.
    pub fn new(enabled: bool, display: smithay::reexports::wayland_server::DisplayHandle) -> Self {
        Self {
            enabled,
            started: Some(Instant::now()),
            display: Some(display),
            ..Default::default()
        }
    }

    /// Whether validation is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The entries so far, and how many were dropped past [`MAX_ENTRIES`].
    pub fn entries(&self) -> (&[ReportEntry], u64) {
        (&self.entries, self.dropped)
    }

    /// The kind of each entry, in order.
    pub fn kinds(&self) -> Vec<MistakeKind> {
        self.entries.iter().map(|e| e.kind).collect()
    }

    /// How many timelines have their highest point tracked, and how many went untracked
    /// past [`MAX_TIMELINES`] (for tests and the report).
    pub fn tracked_timelines(&self) -> (usize, u64) {
        (self.highest.len(), self.untracked_timelines)
    }

    /// How many release points are remembered as held.
    pub fn held_releases(&self) -> usize {
        self.held.len()
    }

    /// The per-client warning limiter (for tests).
    pub fn warn_limiter(&self) -> &WarnLimiter {
        &self.warnings
    }

    /// Logs a validation warning unless `client` has used up its share of this window.
    fn warn_limited(&mut self, client: Option<ClientId>, entry: &ReportEntry) {
        let (allowed, suppressed) = self.warnings.allow(client.clone(), Instant::now());
        if suppressed > 0 {
            warn!(client = ?client, suppressed, "explicit-sync validation: warnings of this client were suppressed (rate limit); the report has them");
        }
        if allowed {
            warn!(
                kind = ?entry.kind,
                surface = %entry.surface,
                client_pid = ?entry.client_pid,
                "explicit-sync validation: {}",
                entry.what
            );
        }
    }

    /// Records the highest point of `timeline`; returns the previous one when tracked.
    fn note_point(&mut self, timeline: &ObjectId, point: u64) -> Option<u64> {
        if let Some(highest) = self.highest.get_mut(timeline) {
            let before = *highest;
            *highest = before.max(point);
            return Some(before);
        }
        if self.highest.len() >= self.sweep_at.max(64) {
            if let Some(dh) = &self.display {
                self.highest
                    .retain(|id, _| dh.object_info(id.clone()).is_ok());
            }
            self.sweep_at = self.highest.len() * 2;
        }
        if self.highest.len() >= MAX_TIMELINES {
            self.untracked_timelines += 1;
            return None;
        }
        self.highest.insert(timeline.clone(), point);
        None
    }

    /// Counts per kind, for the summary at exit.
    pub fn summary(&self) -> Vec<(MistakeKind, usize)> {
        let mut counts: HashMap<MistakeKind, usize> = HashMap::new();
        for e in &self.entries {
            *counts.entry(e.kind).or_default() += 1;
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort_by_key(|(k, _)| format!("{k:?}"));
        counts
    }

    fn record(
        &mut self,
        surface: &WlSurface,
        timeline: &ObjectId,
        points: String,
        kind: MistakeKind,
        what: String,
        why: &str,
    ) {
        let client_pid = surface
            .client()
            .zip(self.display.as_ref())
            .and_then(|(c, dh)| c.get_credentials(dh).ok())
            .map(|c| c.pid);
        let entry = ReportEntry {
            time_ms: self
                .started
                .map(|s| s.elapsed().as_millis() as u64)
                .unwrap_or(0),
            client_pid,
            app_id: app_id(surface),
            surface: format!("wl_surface@{}", surface.id().protocol_id()),
            timeline: format!(
                "wp_linux_drm_syncobj_timeline_v1@{}",
                timeline.protocol_id()
            ),
            points,
            kind,
            what,
            why: why.to_string(),
        };
        self.warn_limited(surface.client().map(|c| c.id()), &entry);
        if self.entries.len() < MAX_ENTRIES {
            self.entries.push(entry);
        } else {
            self.dropped += 1;
        }
    }

    /// How many commits carried explicit-sync points while validation was on.
    pub fn commits_with_points(&self) -> u64 {
        self.commits_with_points
    }

    /// Checks a commit's pending points (called before the commit is held).
    pub fn check_commit(&mut self, surface: &WlSurface) {
        if !self.enabled {
            return;
        }
        self.commits_with_points += 1;
        let pending = with_states(surface, |states| {
            let mut cached = states.cached_state.get::<SyncobjCachedState>();
            let pending = cached.pending();
            let acquire = pending
                .acquire
                .as_ref()
                .map(|a| (a.timeline_id(), a.point.clone()));
            let release = pending
                .release
                .as_ref()
                .and_then(|r| r.point().map(|p| (r.timeline_id(), p.clone())));
            let mut attrs = states.cached_state.get::<SurfaceAttributes>();
            let buffer = match &attrs.pending().buffer {
                Some(BufferAssignment::NewBuffer(b)) => Some(b.id()),
                _ => None,
            };
            (acquire, release, buffer)
        });
        let (Some((acq_tl, acquire)), Some((rel_tl, release)), Some(buffer)) = pending else {
            return;
        };

        // This surface's current release point: lockstep signals it only when this commit
        // applies, so if it is signalled now, someone else did it.
        self.check_held_releases(surface);

        if let Some(held) = self.held.get(&buffer).cloned() {
            if !matches!(held.point.is_signalled(), Ok(true)) {
                self.record(
                    surface,
                    &held.timeline,
                    format!(
                        "held release {}, new acquire {}",
                        held.point.point.0, acquire.point.0
                    ),
                    MistakeKind::BufferReusedBeforeRelease,
                    format!(
                        "wl_buffer@{} attached again while lockstep still holds its release \
                         point {}",
                        buffer.protocol_id(),
                        held.point.point.0
                    ),
                    "the client may already be drawing into a buffer lockstep still reads; wait \
                     for the release point before reusing the buffer",
                );
            }
        }

        for (timeline, point, role) in [
            (&acq_tl, acquire.point.0, "acquire"),
            (&rel_tl, release.point.0, "release"),
        ] {
            let highest = self.note_point(timeline, point);
            if let Some(highest) = highest.filter(|h| point <= *h) {
                self.record(
                    surface,
                    timeline,
                    format!("{role} {point} after {highest}"),
                    MistakeKind::PointsNotIncreasing,
                    format!(
                        "{role} point {point} is not above {highest}, set earlier on this timeline"
                    ),
                    "a timeline point counts as signalled once any later point is, so a point \
                     below an earlier one may already count as signalled",
                );
            }
        }

        let conflicts: Vec<Held> = self
            .held
            .values()
            .filter(|h| {
                h.timeline == acq_tl
                    && h.point.point.0 < acquire.point.0
                    && !matches!(h.point.is_signalled(), Ok(true))
            })
            .cloned()
            .collect();
        for held in conflicts {
            self.record(
                surface,
                &acq_tl,
                format!(
                    "acquire {} above held release {}",
                    acquire.point.0, held.point.point.0
                ),
                MistakeKind::AcquireSignalsHeldRelease,
                format!(
                    "acquire point {} is above release point {} that lockstep still holds on \
                     the same timeline (for wl_surface@{})",
                    acquire.point.0,
                    held.point.point.0,
                    held.surface.id().protocol_id()
                ),
                "signalling the acquire point also marks the release point signalled, so the \
                 client will reuse that buffer while lockstep still reads it; use separate \
                 timelines for acquire and release",
            );
        }
    }

    fn check_held_releases(&mut self, surface: &WlSurface) {
        let id = surface.id();
        let signalled: Vec<(ObjectId, Held)> = self
            .held
            .iter()
            .filter(|(_, h)| h.current && h.surface.id() == id)
            .filter(|(_, h)| matches!(h.point.is_signalled(), Ok(true)))
            .map(|(b, h)| (b.clone(), h.clone()))
            .collect();
        for (buffer, held) in signalled {
            self.held.remove(&buffer);
            let what = format!(
                "release point {} of wl_buffer@{} (wl_surface@{}) was signalled while lockstep \
                 still used the buffer",
                held.point.point.0,
                buffer.protocol_id(),
                id.protocol_id()
            );
            self.entries_for_foreign(held, what);
        }
    }

    fn entries_for_foreign(&mut self, held: Held, what: String) {
        let entry = ReportEntry {
            time_ms: self
                .started
                .map(|s| s.elapsed().as_millis() as u64)
                .unwrap_or(0),
            client_pid: None,
            app_id: None,
            surface: format!("wl_surface@{}", held.surface.id().protocol_id()),
            timeline: format!(
                "wp_linux_drm_syncobj_timeline_v1@{}",
                held.timeline.protocol_id()
            ),
            points: format!("release {}", held.point.point.0),
            kind: MistakeKind::ReleaseSignalledByClient,
            what,
            why: "only lockstep may signal a release point; signalled early, the client \
                  cannot tell when lockstep is done with the buffer"
                .into(),
        };
        let client = held
            .surface
            .upgrade()
            .ok()
            .and_then(|s| s.client())
            .map(|c| c.id());
        self.warn_limited(client, &entry);
        if self.entries.len() < MAX_ENTRIES {
            self.entries.push(entry);
        } else {
            self.dropped += 1;
        }
    }

    /// After a commit was applied: remember the release point of the current buffer.
    pub fn after_apply(&mut self, surface: &WlSurface) {
        if !self.enabled {
            return;
        }
        // The buffers this surface held before are released now or soon (after the renderer's
        // frame, or the page flip): they stay, no longer current, until their release point
        // is signalled. Entries of surfaces that are gone are forgotten.
        let id = surface.id();
        self.held.retain(|_, h| {
            if h.surface.id() == id {
                h.current = false;
            }
            h.surface.upgrade().is_ok()
                && (h.current || !matches!(h.point.is_signalled(), Ok(true)))
        });
        let release = with_states(surface, |states| {
            let mut cached = states.cached_state.get::<SyncobjCachedState>();
            cached
                .current()
                .release
                .as_ref()
                .and_then(|r| r.point().map(|p| (r.timeline_id(), p.clone())))
        });
        // Not inside the closure above: this takes the surface's state lock itself.
        let buffer = smithay::backend::renderer::utils::with_renderer_surface_state(surface, |s| {
            s.buffer().map(|b| b.id())
        })
        .flatten();
        let current = (release, buffer);
        if let (Some((timeline, point)), Some(buffer)) = current {
            self.held.insert(
                buffer,
                Held {
                    surface: surface.downgrade(),
                    timeline,
                    point,
                    current: true,
                },
            );
        }
    }

    /// An acquire point did not signal in time.
    pub fn acquire_timed_out(
        &mut self,
        surface: &WlSurface,
        timeline: &ObjectId,
        point: u64,
        timeout_ms: u64,
    ) {
        if !self.enabled {
            return;
        }
        self.record(
            surface,
            timeline,
            format!("acquire {point}"),
            MistakeKind::AcquireTimeout,
            format!("acquire point {point} was not signalled within {timeout_ms} ms; the commit still waits"),
            "the client's rendering never finished or was never submitted; the surface keeps \
             its old content until the point signals (nothing else waits for it)",
        );
    }
}

fn app_id(surface: &WlSurface) -> Option<String> {
    let mut root = surface.clone();
    while let Some(parent) = smithay::wayland::compositor::get_parent(&root) {
        root = parent;
    }
    with_states(&root, |states| {
        states
            .data_map
            .get::<smithay::wayland::shell::xdg::XdgToplevelSurfaceData>()
            .and_then(|d| d.lock().ok().and_then(|d| d.app_id.clone()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_rate_limited_per_client_and_the_suppressed_ones_counted() {
        let mut limiter = WarnLimiter::default();
        let t0 = Instant::now();
        let allowed = (0..100).filter(|_| limiter.allow(None, t0).0).count();
        assert_eq!(allowed, WARN_BURST as usize, "a burst per window");
        // The next window logs again and says how many were suppressed.
        let (allowed, suppressed) = limiter.allow(None, t0 + WARN_WINDOW);
        assert!(allowed);
        assert_eq!(suppressed, 100 - u64::from(WARN_BURST));
        let (_, suppressed) = limiter.allow(None, t0 + WARN_WINDOW);
        assert_eq!(suppressed, 0, "said once");
    }
}
