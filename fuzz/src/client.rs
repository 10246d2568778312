//! The fuzz client driver: one thread per client, one [`Session`] per connection.
//!
//! A session connects, reads the registry, binds every global at a random version the
//! server and the XML both support, then sends batches of random requests (made by
//! `gen.rs`), each batch followed by a `wl_display.sync`. The next batch goes out only when
//! the sync's callback is done, so a client never has more than one batch in flight: the
//! compositor stays responsive enough for the hang probe to mean something, and a protocol
//! error can be traced to the batch that caused it.
//!
//! The session tracks every object id: those it creates (with the interface and version they
//! get), those the server creates in events (`new_id` event arguments), destruction by
//! destructor requests and events, and `wl_display.delete_id`. Events are decoded with the
//! XML so that fds are taken off the socket in step and serials can be reused in requests.
//!
//! A session ends when the server closes it (after a `wl_display.error`, which is counted
//! by interface and code, or without one), when it has sent its planned number of requests
//! (a clean close), when the server does not answer a sync for 10 s (counted as stalled), or
//! when the run stops. The thread then connects again.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    os::fd::OwnedFd,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use rustix::event::{poll, PollFd, PollFlags};

use crate::{
    fds::FdFactory,
    protocol::{ArgType, Interface, Protocols},
    rng::Rng,
    stats::{History, Stats},
    wire::{decode, encode, Connection, EventValue, OutMessage, Received, Value},
};

/// How long a session waits for a sync before giving up on the connection.
const STALL: Duration = Duration::from_secs(10);
/// The same after the session sent a message with a lying size (see [`End`]).
const DESYNC_WAIT: Duration = Duration::from_secs(1);

/// What the whole run shares with every client thread.
#[derive(Debug)]
pub struct Shared {
    /// Every interface the fuzzer knows.
    pub protocols: Protocols,
    /// Where fds come from.
    pub fds: FdFactory,
    /// Counters.
    pub stats: Stats,
    /// The compositor's socket.
    pub socket: PathBuf,
    /// The share of requests that carry a hostile value (0.0..=1.0), before each session's
    /// own multiplier.
    pub hostile: f64,
    /// Never send `wl_shm_pool.resize` with a size of 0 (a known crash being fixed).
    pub avoid_resize0: bool,
    /// Never send a null string where the XML does not allow one (wayland-backend 0.3.17
    /// does not check, and the generated parser unwraps: a known crash).
    pub avoid_null_strings: bool,
    /// Never send a negative `width`/`height` (smithay's `Size::new` debug-asserts on them
    /// in several handlers: a known crash class in debug builds).
    pub avoid_negative_sizes: bool,
    /// Requests never to send, as `interface.request` (known crashes being fixed).
    pub avoid_requests: Vec<String>,
    /// Keep the last requests before the first protocol error of each kind (for the summary).
    pub error_examples: bool,
    /// Set to stop every client.
    pub stop: AtomicBool,
    /// One request history per client thread.
    pub histories: Vec<History>,
}

/// Fuzzer-side state of some objects.
#[derive(Debug, Default)]
pub enum Extra {
    /// Nothing.
    #[default]
    None,
    /// A wl_shm_pool: its declared size and, sometimes, our copy of its file (to shrink it).
    Pool {
        /// The size the compositor was told.
        size: i32,
        /// The file, when kept.
        file: Option<OwnedFd>,
    },
    /// A zwp_linux_buffer_params_v1: planes added so far.
    Params {
        /// How many `add` requests went out.
        planes: u32,
    },
}

/// One object id the session knows about.
#[derive(Debug)]
pub struct Object {
    /// Its interface.
    pub iface: Arc<Interface>,
    /// Its version.
    pub version: u32,
    /// `false` once a destructor went out (or came in); kept to parse late events.
    pub alive: bool,
    /// Fuzzer-side state.
    pub extra: Extra,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The planned number of requests was sent.
    Clean,
    /// The server sent `wl_display.error` and closed.
    Killed,
    /// The server closed without an error.
    Closed,
    /// A sync went unanswered for [`STALL`] on an intact stream.
    Stalled,
    /// A sync went unanswered after the session sent a message with a lying size.
    StalledAfterDesync,
    /// The run is over.
    Stopped,
}

/// One connection's state.
#[derive(Debug)]
pub struct Session<'s> {
    pub(crate) shared: &'s Shared,
    pub(crate) history: &'s History,
    pub(crate) rng: Rng,
    pub(crate) conn: Connection,
    pub(crate) objects: HashMap<u32, Object>,
    /// Live object ids by interface, in creation order (a BTreeMap so that choices made by
    /// iterating are the same in every run with the same seed).
    pub(crate) live: BTreeMap<String, Vec<u32>>,
    pub(crate) next_id: u32,
    /// Registry globals: name, interface, version.
    pub(crate) globals: Vec<(u32, String, u32)>,
    pub(crate) registry: Option<u32>,
    /// Recent serials from events, for `serial` arguments.
    pub(crate) serials: VecDeque<u32>,
    /// This session's share of hostile requests.
    pub(crate) hostility: f64,
    sync_pending: Option<(u32, Instant)>,
    /// A message with a lying size or garbage went out: the server may now be waiting for
    /// bytes that never come, so an unanswered sync is the fuzzer's doing.
    pub(crate) desynced: bool,
    got_error: bool,
    write_failed: bool,
}

/// Runs client thread `index` until the run stops.
pub fn run_client(shared: Arc<Shared>, index: usize, mut rng: Rng) {
    let history = &shared.histories[index];
    while !shared.stop.load(Ordering::Relaxed) {
        let conn = match Connection::connect(&shared.socket) {
            Ok(conn) => conn,
            Err(_) => {
                // The compositor is gone or refusing; the monitor decides what that means.
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        Stats::bump(&shared.stats.connections);
        let session_rng = rng.fork(index as u64);
        history.push(format!(
            "-- connection {}",
            Stats::get(&shared.stats.connections)
        ));
        let end = Session::new(&shared, history, session_rng, conn).run();
        let stats = &shared.stats;
        match end {
            End::Clean => Stats::bump(&stats.clean_closes),
            End::Killed => Stats::bump(&stats.killed_with_error),
            End::Closed => {
                Stats::bump(&stats.closed_without_error);
                stats.example("closed without an error", history);
            }
            End::Stalled => {
                Stats::bump(&stats.stalled);
                stats.example("stalled on an intact stream", history);
            }
            End::StalledAfterDesync => Stats::bump(&stats.stalled_after_desync),
            End::Stopped => {}
        }
    }
}

impl<'s> Session<'s> {
    fn new(shared: &'s Shared, history: &'s History, mut rng: Rng, conn: Connection) -> Self {
        let hostility = shared.hostile * *rng.pick(&[0.0, 0.25, 1.0, 1.0, 3.0]);
        let mut session = Session {
            shared,
            history,
            rng,
            conn,
            objects: HashMap::new(),
            live: BTreeMap::new(),
            next_id: 2,
            globals: Vec::new(),
            registry: None,
            serials: VecDeque::new(),
            hostility: hostility.min(1.0),
            sync_pending: None,
            desynced: false,
            got_error: false,
            write_failed: false,
        };
        if let Some(display) = shared.protocols.get("wl_display") {
            session.insert(1, display.clone(), 1);
        }
        session
    }

    /// Registers object `id`. Ids 0 (null) and 1 (wl_display, registered first) are never
    /// taken over, whatever a hostile request or a misparsed event claims.
    pub(crate) fn insert(&mut self, id: u32, iface: Arc<Interface>, version: u32) {
        if id == 0 || (id == 1 && self.objects.contains_key(&1)) {
            return;
        }
        self.kill(id);
        self.live.entry(iface.name.clone()).or_default().push(id);
        self.objects.insert(
            id,
            Object {
                iface,
                version,
                alive: true,
                extra: Extra::None,
            },
        );
    }

    /// Marks object `id` dead (a destructor went out or came in).
    pub(crate) fn kill(&mut self, id: u32) {
        if let Some(object) = self.objects.get_mut(&id) {
            if object.alive {
                object.alive = false;
                if let Some(ids) = self.live.get_mut(&object.iface.name) {
                    ids.retain(|&x| x != id);
                }
            }
        }
    }

    /// A fresh client id.
    pub(crate) fn alloc_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Queues a message and records it in the history.
    pub(crate) fn send(&mut self, msg: OutMessage, line: String, hostile: bool) {
        let stats = &self.shared.stats;
        Stats::bump(&stats.requests);
        if hostile {
            Stats::bump(&stats.hostile);
        }
        stats
            .fds_sent
            .fetch_add(msg.fds.len() as u64, Ordering::Relaxed);
        self.history.push(if hostile {
            format!("{line}  [hostile]")
        } else {
            line
        });
        self.conn.queue(msg);
    }

    fn queue_sync(&mut self) -> u32 {
        let id = self.alloc_id();
        if let Some(cb) = self.shared.protocols.get("wl_callback") {
            self.insert(id, cb.clone(), 1);
        }
        self.send(
            encode(1, 0, vec![Value::NewId(id)]),
            format!("wl_display#1.sync(new#{id})"),
            false,
        );
        id
    }

    fn run(mut self) -> End {
        // Registry first, then a roundtrip so that every global is known.
        let registry = self.alloc_id();
        if let Some(iface) = self.shared.protocols.get("wl_registry") {
            self.insert(registry, iface.clone(), 1);
        }
        self.registry = Some(registry);
        self.send(
            encode(1, 1, vec![Value::NewId(registry)]),
            format!("wl_display#1.get_registry(new#{registry})"),
            false,
        );
        let sync = self.queue_sync();
        self.sync_pending = Some((sync, Instant::now()));
        if let Some(end) = self.pump_until_synced() {
            return end;
        }
        self.bind_all();
        let mut budget = 20 + self.rng.below(2000);
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                return End::Stopped;
            }
            if budget == 0 {
                self.goodbye();
                return End::Clean;
            }
            let batch = 1 + self.rng.below(16).min(budget);
            for _ in 0..batch {
                self.random_request();
            }
            budget = budget.saturating_sub(batch);
            let sync = self.queue_sync();
            self.sync_pending = Some((sync, Instant::now()));
            if let Some(end) = self.pump_until_synced() {
                return end;
            }
            if self.objects.len() > 2000 {
                budget = 0;
            }
        }
    }

    /// Leaves: usually just closes; sometimes sends half a message first.
    fn goodbye(&mut self) {
        if self.rng.chance(0.1) {
            let partial = encode(1, 0, vec![Value::NewId(self.next_id)]);
            let cut = 1 + self.rng.index(partial.bytes.len() - 1);
            let bytes = partial.bytes[..cut].to_vec();
            self.send(
                OutMessage {
                    bytes,
                    fds: Vec::new(),
                },
                format!("(half a message: {cut} bytes, then close)"),
                true,
            );
            let _ = self.conn.flush();
        }
    }

    /// Writes, reads and handles events until the pending sync is done. `Some(end)` when the
    /// session is over.
    fn pump_until_synced(&mut self) -> Option<End> {
        loop {
            if !self.write_failed {
                if let Err(_err) = self.conn.flush() {
                    // EPIPE/ECONNRESET: the server is closing us; read what it said last.
                    self.write_failed = true;
                }
            }
            // Synced: the batch is done.
            let (_, since) = self.sync_pending?;
            // After a lying message the server may wait for bytes that never come; give it
            // a moment to close us, then move on rather than idling for the full limit.
            let limit = if self.desynced { DESYNC_WAIT } else { STALL };
            if since.elapsed() > limit {
                return Some(if self.desynced {
                    End::StalledAfterDesync
                } else {
                    End::Stalled
                });
            }
            if self.shared.stop.load(Ordering::Relaxed) {
                return Some(End::Stopped);
            }
            let mut flags = PollFlags::IN;
            if self.conn.pending_out() > 0 && !self.write_failed {
                flags |= PollFlags::OUT;
            }
            let mut fds = [PollFd::from_borrowed_fd(self.conn.fd(), flags)];
            let timeout = rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: 50_000_000,
            };
            if poll(&mut fds, Some(&timeout)).is_err() {
                continue;
            }
            loop {
                match self.conn.receive() {
                    Ok(Received::Data) => {}
                    Ok(Received::WouldBlock) => break,
                    Ok(Received::Closed) | Err(_) => {
                        self.drain_messages();
                        return Some(if self.got_error {
                            End::Killed
                        } else {
                            End::Closed
                        });
                    }
                }
                if self.drain_messages() {
                    break;
                }
            }
            if self.got_error {
                // The server closes right after an error; wait for that (or the stall limit).
                continue;
            }
        }
    }

    /// Handles every complete message received. Returns `true` when the stream is broken.
    fn drain_messages(&mut self) -> bool {
        loop {
            match self.conn.next_message() {
                Ok(Some((object, opcode, body))) => self.handle_event(object, opcode, &body),
                Ok(None) => return false,
                Err(err) => {
                    // A header we cannot cut at: nothing after it can be parsed either.
                    self.unparsed(format!("{err}"));
                    return true;
                }
            }
        }
    }

    fn handle_event(&mut self, object: u32, opcode: u16, body: &[u8]) {
        let Some(obj) = self.objects.get(&object) else {
            self.unparsed(format!("event {opcode} for unknown object {object}"));
            return;
        };
        let iface = obj.iface.clone();
        let version = obj.version;
        let Some(msg) = iface.events.get(usize::from(opcode)) else {
            self.unparsed(format!(
                "unknown event {opcode} for {}#{object}",
                iface.name
            ));
            return;
        };
        let Ok(args) = decode(body, msg, self.conn.fds()) else {
            self.unparsed(format!(
                "{}#{object}.{} does not decode",
                iface.name, msg.name
            ));
            return;
        };
        match (iface.name.as_str(), msg.name.as_str()) {
            ("wl_display", "error") => {
                let target = args[0].as_u32().unwrap_or(0);
                let code = args[1].as_u32().unwrap_or(0);
                let message = match &args[2] {
                    EventValue::Str(Some(s)) => s.as_str(),
                    _ => "",
                };
                let interface = self.objects.get(&target).map_or_else(
                    || format!("unknown object {target}"),
                    |o| o.iface.name.clone(),
                );
                self.history.push(format!(
                    "<- wl_display.error({interface}#{target}, {code}, {message:?})"
                ));
                let kind = format!("got {interface} error {code} ({message})");
                self.shared.stats.protocol_error(interface, code, message);
                if self.shared.error_examples {
                    self.shared.stats.example(&kind, self.history);
                }
                self.got_error = true;
            }
            ("wl_display", "delete_id") => {
                if let Some(id) = args[0].as_u32() {
                    self.kill(id);
                    self.objects.remove(&id);
                }
            }
            ("wl_registry", "global") => {
                if let (Some(name), EventValue::Str(Some(interface)), Some(v)) =
                    (args[0].as_u32(), &args[1], args[2].as_u32())
                {
                    self.globals.push((name, interface.clone(), v));
                }
            }
            ("wl_registry", "global_remove") => {
                let name = args[0].as_u32();
                self.globals.retain(|g| Some(g.0) != name);
            }
            ("wl_callback", "done") if self.sync_pending.is_some_and(|(id, _)| id == object) => {
                self.sync_pending = None;
            }
            _ => {}
        }
        for (arg, value) in msg.args.iter().zip(&args) {
            match (arg.ty, value) {
                (ArgType::NewId, EventValue::NewId(id)) => {
                    let child = arg
                        .interface
                        .as_deref()
                        .and_then(|name| self.shared.protocols.get(name))
                        .cloned();
                    if let Some(child) = child {
                        self.insert(*id, child, version);
                    }
                }
                (ArgType::Uint, EventValue::Uint(serial)) if arg.name == "serial" => {
                    if self.serials.len() == 16 {
                        self.serials.pop_front();
                    }
                    self.serials.push_back(*serial);
                }
                _ => {}
            }
        }
        if msg.destructor {
            self.kill(object);
        }
    }

    /// Counts an event the session could not parse and keeps the first few as examples.
    fn unparsed(&mut self, what: String) {
        Stats::bump(&self.shared.stats.unknown_events);
        self.history.push(format!("<- (unparsed: {what})"));
        self.shared
            .stats
            .example("received an unparsed event", self.history);
    }

    /// Binds every global at a random version both sides support.
    fn bind_all(&mut self) {
        let globals = self.globals.clone();
        for (name, interface, advertised) in globals {
            let Some(iface) = self.shared.protocols.get(&interface).cloned() else {
                continue;
            };
            let max = advertised.min(iface.version).max(1);
            let version = 1 + self.rng.below(u64::from(max)) as u32;
            self.bind(name, &iface, version, false);
        }
    }

    /// Sends `wl_registry.bind` for global `name` as `iface` at `version`.
    pub(crate) fn bind(&mut self, name: u32, iface: &Arc<Interface>, version: u32, hostile: bool) {
        let Some(registry) = self.registry else {
            return;
        };
        let id = self.alloc_id();
        self.insert(id, iface.clone(), version);
        let line = format!(
            "wl_registry#{registry}.bind({name}, {}, v{version}, new#{id})",
            iface.name
        );
        let msg = encode(
            registry,
            0,
            vec![
                Value::Uint(name),
                Value::NewIdDyn(iface.name.clone(), version, id),
            ],
        );
        self.send(msg, line, hostile);
    }
}

/// A fresh connection's `wl_display.sync` round trip, for the hang probe: `Ok(elapsed)` when
/// the callback came within `limit`.
pub fn probe(socket: &std::path::Path, limit: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let mut conn = Connection::connect(socket).map_err(|e| format!("cannot connect: {e}"))?;
    conn.queue(encode(1, 0, vec![Value::NewId(2)]));
    loop {
        let elapsed = start.elapsed();
        if elapsed > limit {
            return Err(format!("no wl_callback.done within {limit:?}"));
        }
        if let Err(e) = conn.flush() {
            return Err(format!("cannot write: {e}"));
        }
        let left = limit - elapsed;
        let timeout = rustix::time::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::from_borrowed_fd(conn.fd(), PollFlags::IN)];
        let _ = poll(&mut fds, Some(&timeout));
        match conn.receive() {
            Ok(Received::Data) => {}
            Ok(Received::WouldBlock) => continue,
            Ok(Received::Closed) => return Err("the compositor closed the connection".into()),
            Err(e) => return Err(format!("cannot read: {e}")),
        }
        while let Ok(Some((object, opcode, _))) = conn.next_message() {
            // wl_callback#2 event 0 is done.
            if object == 2 && opcode == 0 {
                return Ok(start.elapsed());
            }
        }
    }
}
