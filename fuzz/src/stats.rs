//! Counters shared by all fuzz clients, and the per-client request history that a failure
//! report prints.
//!
//! Everything is updated with atomics or uncontended mutexes (one history per client thread)
//! so that counting costs the fuzz loop next to nothing.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
};

/// How many requests of each client a failure report shows.
pub const HISTORY: usize = 40;

/// A protocol error's kind: the interface of the object it was posted on, and the code.
pub type ErrorKind = (String, u32);

/// Counters of a run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests sent (garbage writes included).
    pub requests: AtomicU64,
    /// Of those, requests with a deliberately hostile value or shape.
    pub hostile: AtomicU64,
    /// Connections opened by fuzz clients.
    pub connections: AtomicU64,
    /// Connections the fuzz clients closed themselves after their planned number of requests.
    pub clean_closes: AtomicU64,
    /// Connections the server closed after a `wl_display.error`.
    pub killed_with_error: AtomicU64,
    /// Connections the server closed without an error first.
    pub closed_without_error: AtomicU64,
    /// Connections abandoned because the server did not answer a sync for 10 s although
    /// every message the session sent was well-formed (suspicious).
    pub stalled: AtomicU64,
    /// A sync unanswered for 1 s after a message with a lying size field, garbage, a
    /// missing fd or a request without its arguments (expected: the server waits for the
    /// rest of a message that never comes; the session then hangs up).
    pub stalled_after_desync: AtomicU64,
    /// Events for object ids the client did not know (bookkeeping drift; skipped).
    pub unknown_events: AtomicU64,
    /// shm pool files shrunk after the compositor mapped them.
    pub shrunk_pools: AtomicU64,
    /// Fds sent.
    pub fds_sent: AtomicU64,
    /// Probes (fresh client, wl_display.sync) answered.
    pub probes: AtomicU64,
    /// Protocol errors by kind, with the first message seen.
    pub errors: Mutex<BTreeMap<ErrorKind, (u64, String)>>,
    /// The first few stalled and closed-without-error sessions: their last requests.
    pub examples: Mutex<Vec<(String, Vec<String>)>>,
}

/// How many sessions of each odd ending the summary shows.
const EXAMPLES: usize = 3;

impl Stats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Records a `wl_display.error`.
    pub fn protocol_error(&self, interface: String, code: u32, message: &str) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        let entry = errors
            .entry((interface, code))
            .or_insert_with(|| (0, message.to_owned()));
        entry.0 += 1;
    }

    /// Keeps the last requests of a session that ended in `how` (up to [`EXAMPLES`] each).
    pub fn example(&self, how: &str, history: &History) {
        let mut examples = self.examples.lock().unwrap_or_else(|p| p.into_inner());
        if examples.iter().filter(|(h, _)| h == how).count() < EXAMPLES {
            let lines = history.lines();
            let tail = lines[lines.len().saturating_sub(12)..].to_vec();
            examples.push((how.to_owned(), tail));
        }
    }

    /// Total protocol errors.
    pub fn total_errors(&self) -> u64 {
        let errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        errors.values().map(|(n, _)| n).sum()
    }

    /// A copy of the error table.
    pub fn error_table(&self) -> BTreeMap<ErrorKind, (u64, String)> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The last requests one client thread sent, oldest first, for failure reports.
#[derive(Debug, Default)]
pub struct History {
    lines: Mutex<VecDeque<String>>,
}

impl History {
    /// Appends a line, forgetting the oldest beyond [`HISTORY`].
    pub fn push(&self, line: String) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == HISTORY {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.iter().cloned().collect()
    }
}
