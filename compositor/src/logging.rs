//! Logs that no client can turn against the compositor.
//!
//! Many warnings are triggered by clients (protocol errors, refused buffers, acquire points
//! that time out), and any local process can connect as many clients as it likes. Two things
//! keep that from stalling or flooding the session:
//!
//! - **Rate limits** ([`RateLimitLayer`]): each call site may log at most [`BURST`] events per
//!   [`WINDOW`] *per client* (the `client` field of the event, when it has one), so one noisy
//!   client neither floods the log nor hides another client's warnings, and at most
//!   [`SITE_BURST`] for all clients together (against a process that reconnects as ever new
//!   clients). What is held back is
//!   counted and reported in one line when the call site may log again. At most [`MAX_KEYS`]
//!   call-site/client pairs are tracked; past that, events share one budget per call site.
//! - **No blocking on stderr** ([`NonBlockingStderr`]): formatted lines go through a bounded
//!   queue ([`QUEUE_LINES`]) to one writer thread. When stderr is slow (a terminal scrolled
//!   back, a full pipe) and the queue is full, lines are dropped and counted instead of
//!   blocking the event loop; the writer reports how many were lost. [`LogGuard`] drains the
//!   queue at exit so the last lines (often the error that ended lockstep) are not lost.
//!
//! ```no_run
//! let _guard = lockstep::logging::init("info");
//! tracing::warn!(client = ?42, "a client did something wrong");
//! ```

use std::{
    collections::HashMap,
    io::Write,
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc::{sync_channel, Receiver, SyncSender, TrySendError},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use tracing::{
    callsite::Identifier,
    field::{Field, Visit},
    Event, Subscriber,
};
use tracing_subscriber::{
    fmt::MakeWriter,
    layer::{Context, Filter},
};

/// Events one call site may log per client within [`WINDOW`].
pub const BURST: u32 = 10;

/// Events one call site may log within [`WINDOW`], all clients together: a process that
/// reconnects as new clients again and again cannot flood the log either.
pub const SITE_BURST: u32 = 100;

/// The rate-limit window.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Most call-site/client pairs tracked at once.
pub const MAX_KEYS: usize = 4096;

/// Most formatted lines waiting for the writer thread.
pub const QUEUE_LINES: usize = 4096;

/// Sets up logging to stderr with `default_filter` (overridden by `LOCKSTEP_LOG` or
/// `RUST_LOG`). Keep the guard until exit.
pub fn init(default_filter: &str) -> LogGuard {
    use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, Layer};
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOCKSTEP_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let (writer, guard) = NonBlockingStderr::new();
    let limiter = RateLimitLayer {
        notes: Some(writer.clone()),
        ..Default::default()
    };
    // Colours only on a terminal: a log file or journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(writer)
        .with_filter(limiter);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init();
    guard
}

/// Which budget an event counts against.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    callsite: Identifier,
    client: Option<String>,
}

#[derive(Default)]
struct Budget {
    window_start: Option<Instant>,
    used: u32,
    held_back: u64,
}

/// A per-layer filter that rate-limits events per call site and client (module docs).
#[derive(Default)]
pub struct RateLimitLayer {
    budgets: Mutex<HashMap<Key, Budget>>,
    /// Where the "held back" notes go (straight to the log queue: logging an event from
    /// inside a filter would re-enter the subscriber).
    notes: Option<NonBlockingStderr>,
}

/// Finds the `client` field of an event.
#[derive(Default)]
struct ClientField(Option<String>);

impl Visit for ClientField {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "client" {
            self.0 = Some(format!("{value:?}"));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "client" {
            self.0 = Some(value.to_owned());
        }
    }
}

impl RateLimitLayer {
    /// Whether an event at `callsite` for `client` may be logged now; returns how many were
    /// held back before it when a new window starts.
    fn admit(&self, callsite: Identifier, client: Option<String>, now: Instant) -> (bool, u64) {
        let Ok(mut budgets) = self.budgets.lock() else {
            return (true, 0);
        };
        if client.is_some() {
            // The client's own budget first, so that events it may not log do not use up
            // the call site's budget for everyone else; then the call site's.
            let key = Self::bounded_key(&mut budgets, callsite.clone(), client, now);
            let (admitted, held_back) = Self::spend(&mut budgets, key, BURST, now);
            if !admitted {
                return (false, held_back);
            }
            let site = Key {
                callsite,
                client: None,
            };
            let (admitted, more) = Self::spend(&mut budgets, site, SITE_BURST, now);
            return (admitted, held_back + more);
        }
        let key = Key {
            callsite,
            client: None,
        };
        Self::spend(&mut budgets, key, SITE_BURST, now)
    }

    /// The key of a client's budget, or the site-wide one when too many keys are tracked.
    fn bounded_key(
        budgets: &mut HashMap<Key, Budget>,
        callsite: Identifier,
        client: Option<String>,
        now: Instant,
    ) -> Key {
        let mut key = Key { callsite, client };
        if !budgets.contains_key(&key) && budgets.len() >= MAX_KEYS {
            budgets.retain(|_, b| b.window_start.is_some_and(|t| now - t < WINDOW));
            if budgets.len() >= MAX_KEYS {
                key.client = None;
            }
        }
        key
    }

    /// Spends one event of `key`'s budget of `burst` per window.
    fn spend(
        budgets: &mut HashMap<Key, Budget>,
        key: Key,
        burst: u32,
        now: Instant,
    ) -> (bool, u64) {
        let budget = budgets.entry(key).or_default();
        let mut reported = 0;
        if budget.window_start.is_none_or(|t| now - t >= WINDOW) {
            budget.window_start = Some(now);
            budget.used = 0;
            reported = std::mem::take(&mut budget.held_back);
        }
        if budget.used < burst {
            budget.used += 1;
            (true, reported)
        } else {
            budget.held_back += 1;
            (false, reported)
        }
    }
}

impl<S: Subscriber> Filter<S> for RateLimitLayer {
    fn enabled(&self, _meta: &tracing::Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _cx: &Context<'_, S>) -> bool {
        let meta = event.metadata();
        let mut client = ClientField::default();
        event.record(&mut client);
        let (admitted, held_back) = self.admit(meta.callsite(), client.0, Instant::now());
        if held_back > 0 {
            if let Some(notes) = &self.notes {
                let mut line = notes.make_writer();
                let _ = writeln!(
                    line,
                    "lockstep: {held_back} log lines from {}:{} were held back by the rate limit",
                    meta.file().unwrap_or("?"),
                    meta.line().unwrap_or(0)
                );
            }
        }
        admitted
    }
}

/// What the writer thread is sent.
enum Message {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// A [`MakeWriter`] whose lines go to stderr through a bounded queue and one thread.
#[derive(Clone)]
pub struct NonBlockingStderr {
    sender: Option<SyncSender<Message>>,
    dropped: Arc<AtomicU64>,
}

/// Drains the log queue when dropped (at most a second), so the last lines reach stderr.
pub struct LogGuard {
    sender: Option<SyncSender<Message>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let Some(sender) = &self.sender else {
            return;
        };
        let (done, wait) = sync_channel(1);
        if sender.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(1));
        }
    }
}

impl NonBlockingStderr {
    /// Starts the writer thread (or, if no thread can be made, writes directly).
    pub fn new() -> (Self, LogGuard) {
        let (sender, receiver) = sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        let spawned = std::thread::Builder::new()
            .name("lockstep-log".into())
            .spawn(move || write_lines(receiver, counter));
        let sender = spawned.ok().map(|_| sender);
        (
            Self {
                sender: sender.clone(),
                dropped,
            },
            LogGuard { sender },
        )
    }
}

fn write_lines(receiver: Receiver<Message>, dropped: Arc<AtomicU64>) {
    let stderr = std::io::stderr();
    for message in receiver {
        let mut out = stderr.lock();
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let _ = writeln!(
                out,
                "lockstep: {lost} log lines were dropped because stderr was too slow"
            );
        }
        match message {
            Message::Line(line) => {
                let _ = out.write_all(&line);
            }
            Message::Flush(done) => {
                let _ = out.flush();
                let _ = done.send(());
            }
        }
    }
}

/// One formatted event, sent to the queue when dropped.
pub struct QueuedLine {
    buffer: Vec<u8>,
    target: NonBlockingStderr,
}

impl Write for QueuedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for QueuedLine {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.buffer);
        match &self.target.sender {
            Some(sender) => match sender.try_send(Message::Line(line)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.target.dropped.fetch_add(1, Ordering::Relaxed);
                }
            },
            None => {
                let _ = std::io::stderr().write_all(&line);
            }
        }
    }
}

impl<'a> MakeWriter<'a> for NonBlockingStderr {
    type Writer = QueuedLine;

    fn make_writer(&'a self) -> Self::Writer {
        QueuedLine {
            buffer: Vec::new(),
            target: self.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callsite() -> Identifier {
        struct Site;
        static SITE: Site = Site;
        impl tracing::Callsite for Site {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                unimplemented!("not used by the rate limiter")
            }
        }
        Identifier(&SITE)
    }

    #[test]
    fn each_client_has_its_own_budget_and_held_back_lines_are_counted() {
        let limiter = RateLimitLayer::default();
        let site = callsite();
        let t0 = Instant::now();
        let admitted = (0..100)
            .filter(|_| limiter.admit(site.clone(), Some("a".into()), t0).0)
            .count();
        assert_eq!(admitted, BURST as usize);
        // Another client at the same call site is not silenced by the first.
        assert!(limiter.admit(site.clone(), Some("b".into()), t0).0);
        // The next window admits again and reports what was held back.
        let (admitted, held_back) = limiter.admit(site.clone(), Some("a".into()), t0 + WINDOW);
        assert!(admitted);
        assert_eq!(held_back, 100 - u64::from(BURST));
    }

    #[test]
    fn tracked_keys_are_bounded() {
        let limiter = RateLimitLayer::default();
        let site = callsite();
        let t0 = Instant::now();
        for client in 0..(MAX_KEYS * 3) {
            limiter.admit(site.clone(), Some(client.to_string()), t0);
        }
        assert!(limiter.budgets.lock().unwrap().len() <= MAX_KEYS + 1);
    }

    #[test]
    fn ever_new_clients_share_one_budget_per_call_site() {
        let limiter = RateLimitLayer::default();
        let site = callsite();
        let t0 = Instant::now();
        let admitted = (0..1000)
            .filter(|client| limiter.admit(site.clone(), Some(client.to_string()), t0).0)
            .count();
        assert_eq!(admitted, SITE_BURST as usize);
    }

    #[test]
    fn a_full_queue_drops_lines_instead_of_blocking() {
        // A writer with no thread behind its queue: nothing drains it.
        let (sender, _receiver) = sync_channel(2);
        let writer = NonBlockingStderr {
            sender: Some(sender),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        for _ in 0..10 {
            let mut line = writer.make_writer();
            line.write_all(b"x\n").unwrap();
        }
        assert_eq!(writer.dropped.load(Ordering::Relaxed), 8);
    }
}
