//! `lockstep-fuzz`: a wire-level fuzzer for lockstep (or any Wayland compositor).
//!
//! Why: a compositor is the one process every graphical program talks to, so no client may
//! be able to crash, stall or bloat it (issue 11). Unit and in-process tests check the paths
//! someone thought of; this sends what nobody thought of, at the wire level where a real
//! client library would refuse to produce it.
//!
//! How: many raw clients (`client.rs`, own socket code, no libwayland) bind every global the
//! compositor offers and send seeded random requests (`gen.rs`) built from the protocol XML
//! (`protocol.rs`), with fds of every kind (`fds.rs`). Meanwhile the monitor
//! (`monitor.rs`) watches the compositor: death or a "panicked" line on its stderr, a fresh
//! client's `wl_display.sync` not answered within the probe timeout, and fd count and RSS
//! growth measured after warm-up against the end of the run, both with no fuzz client
//! connected. Any of those fails the run with exit status 1, the seed, lockstep's last
//! stderr lines and each client's last requests. Setup errors exit with 2.
//!
//! Phases: start (or attach) → warm-up fuzzing (`--warmup` s) → all clients leave, settle,
//! baseline sample → fuzzing (`--seconds` s) → all clients leave, settle, final sample.
//! Comparing two quiet moments that both come after heavy fuzzing keeps one-time growth
//! (allocator arenas, caches) out of the leak check.

mod client;
mod fds;
mod gen;
mod monitor;
mod protocol;
mod rng;
mod stats;
mod wire;

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::{
    client::{probe, run_client, Shared},
    fds::FdFactory,
    monitor::{backtrace, diagnose, sample, Sample, Target},
    protocol::Protocols,
    rng::Rng,
    stats::{History, Stats},
};

/// Wire-level fuzzer for lockstep: raw Wayland clients send seeded random requests built
/// from the protocol XML; the run fails if the compositor dies, panics, stops answering or
/// leaks fds or memory.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Seed of the run (default: from the clock; printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds of fuzzing after the warm-up.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Concurrent fuzz clients (each reconnects when the compositor disconnects it).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Share of requests with a hostile value or shape (each connection scales it by 0, ¼,
    /// 1 or 3 so that some go deep and some go wild).
    #[arg(long, default_value_t = 0.05)]
    hostile: f64,
    /// Requests not to send while a crash they trigger is being fixed: `resize0`
    /// (wl_shm_pool.resize to 0, a known smithay panic), `null-strings` (null for a
    /// non-nullable string, a known wayland-backend panic), `negative-sizes` (negative
    /// width/height: smithay debug assertions) or any `interface.request`
    /// (e.g. `xdg_positioner.set_parent_size`). Repeatable.
    #[arg(long, value_name = "WHAT")]
    avoid: Vec<String>,
    /// The lockstep binary to start (default: `lockstep` next to this binary).
    #[arg(long)]
    lockstep: Option<PathBuf>,
    /// Attach to a running compositor with this pid (its socket from WAYLAND_DISPLAY and
    /// XDG_RUNTIME_DIR) instead of starting lockstep. Deaths are seen, panics only by death.
    #[arg(long)]
    pid: Option<u32>,
    /// Protocol XML files or directories (default: Debian's and the wayland crates' XML).
    #[arg(long)]
    xml: Vec<PathBuf>,
    /// The cargo workspace whose dependency tree has the wayland crates (default: the one
    /// this binary was built from).
    #[arg(long)]
    workspace: Option<PathBuf>,
    /// A fresh client's wl_display.sync must be answered within this many milliseconds.
    #[arg(long, default_value_t = 1000)]
    probe_timeout_ms: u64,
    /// Seconds of fuzzing before the baseline is measured.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Seconds to wait with no fuzz client before each measurement.
    #[arg(long, default_value_t = 3)]
    settle: u64,
    /// Fail if the final fd count exceeds the baseline by more than this.
    #[arg(long, default_value_t = 32)]
    fd_slack: u64,
    /// Fail if the final RSS exceeds the baseline by more than this many MiB plus half the
    /// baseline.
    #[arg(long, default_value_t = 64)]
    rss_slack_mib: u64,
    /// Show, for each protocol error kind, the requests that led to its first occurrence.
    #[arg(long)]
    error_examples: bool,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 10)]
    progress: u64,
    /// Where lockstep's stderr goes (default: $TMPDIR/lockstep-fuzz-SEED.log).
    #[arg(long)]
    log: Option<PathBuf>,
}

/// Why a run failed.
struct Failure(String);

/// Set by SIGINT/SIGTERM: the run stops at the next check, and the compositor the fuzzer
/// started is ended and its runtime dir removed (they would outlive a killed fuzzer).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

fn catch_interrupts() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; the
        // function pointer has the signature signal(2) expects.
        unsafe {
            libc::signal(
                signal,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

#[allow(clippy::disallowed_macros)] // CLI output
fn main() -> ExitCode {
    let args = Args::parse();
    catch_interrupts();
    match run(&args) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(Failure(_))) if INTERRUPTED.load(Ordering::Relaxed) => {
            println!("interrupted");
            ExitCode::from(130)
        }
        Ok(Err(Failure(why))) => {
            println!("FAIL: {why}");
            ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("lockstep-fuzz: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn default_seed() -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_secs() << 20) ^ u64::from(now.subsec_micros()) ^ u64::from(std::process::id())
}

#[allow(clippy::disallowed_macros)] // CLI output
fn run(args: &Args) -> Result<Result<(), Failure>> {
    let seed = args.seed.unwrap_or_else(default_seed);
    println!(
        "lockstep-fuzz: seed {seed} (reproduce: --seed {seed} --clients {} --seconds {})",
        args.clients, args.seconds
    );
    if args.clients == 0 || !(0.0..=1.0).contains(&args.hostile) {
        bail!("--clients must be at least 1 and --hostile within 0..=1");
    }
    let mut avoid_resize0 = false;
    let mut avoid_null_strings = false;
    let mut avoid_negative_sizes = false;
    let mut avoid_requests = Vec::new();
    for what in &args.avoid {
        match what.as_str() {
            "resize0" => avoid_resize0 = true,
            "null-strings" => avoid_null_strings = true,
            "negative-sizes" => avoid_negative_sizes = true,
            request if request.contains('.') => avoid_requests.push(request.to_owned()),
            other => bail!(
                "--avoid {other:?}: `resize0`, `null-strings`, `negative-sizes` or an \
                 `interface.request`"
            ),
        }
    }

    let protocols = load_protocols(args)?;
    let fds = FdFactory::new();
    println!("fds: {}", fds.describe());

    let mut target = match args.pid {
        Some(pid) => {
            let display = std::env::var("WAYLAND_DISPLAY")
                .context("--pid needs WAYLAND_DISPLAY (and XDG_RUNTIME_DIR) of that compositor")?;
            Target::attach(pid, wire::socket_path(&display)?)?
        }
        None => {
            let lockstep = match &args.lockstep {
                Some(path) => path.clone(),
                None => std::env::current_exe()?
                    .parent()
                    .context("no directory for this binary")?
                    .join("lockstep"),
            };
            let log = args
                .log
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join(format!("lockstep-fuzz-{seed}.log")));
            let target = Target::spawn(&lockstep, &log)?;
            println!(
                "started {} (pid {}), stderr in {}",
                lockstep.display(),
                target.pid(),
                log.display()
            );
            target
        }
    };
    println!(
        "compositor: pid {}, socket {}",
        target.pid(),
        target.socket().display()
    );

    let shared = Arc::new(Shared {
        protocols,
        fds,
        stats: Stats::default(),
        socket: target.socket().to_owned(),
        hostile: args.hostile,
        avoid_resize0,
        avoid_null_strings,
        avoid_negative_sizes,
        avoid_requests,
        error_examples: args.error_examples,
        stop: Default::default(),
        histories: (0..args.clients).map(|_| History::default()).collect(),
    });
    let outcome = fuzz(args, seed, &shared, &mut target);
    report(&shared, &target, outcome.as_ref().err(), seed, args);
    Ok(outcome)
}

#[allow(clippy::disallowed_macros)] // CLI output
fn load_protocols(args: &Args) -> Result<Protocols> {
    let files = if args.xml.is_empty() {
        let workspace = args.workspace.clone().unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .map(PathBuf::from)
                .unwrap_or_default()
        });
        let (files, notes) = protocol::discover(&workspace);
        for note in notes {
            println!("protocol XML: {note}");
        }
        files
    } else {
        protocol::expand(&args.xml)
    };
    let protocols = Protocols::load(&files)?;
    println!(
        "protocol XML: {} interfaces from {} files",
        protocols.len(),
        files.len()
    );
    Ok(protocols)
}

/// Runs `clients` fuzz threads until `stop` is set by the caller's loop; returns the handles.
fn start_clients(
    shared: &Arc<Shared>,
    rng: &mut Rng,
    clients: usize,
) -> Vec<thread::JoinHandle<()>> {
    shared.stop.store(false, Ordering::Relaxed);
    (0..clients)
        .map(|i| {
            let shared = shared.clone();
            let client_rng = rng.fork(i as u64);
            thread::Builder::new()
                .name(format!("fuzz-{i}"))
                .spawn(move || run_client(shared, i, client_rng))
                .expect("cannot spawn a fuzz client thread")
        })
        .collect()
}

fn stop_clients(shared: &Shared, handles: Vec<thread::JoinHandle<()>>) {
    shared.stop.store(true, Ordering::Relaxed);
    for handle in handles {
        let _ = handle.join();
    }
}

/// Checks liveness and answers once: `Err` on death, panic or a probe over the limit.
#[allow(clippy::disallowed_macros)] // CLI output
fn health(target: &mut Target, shared: &Shared, limit: Duration) -> Result<Duration, Failure> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        return Err(Failure("interrupted".into()));
    }
    target.check().map_err(Failure)?;
    match probe(target.socket(), limit) {
        Ok(took) => {
            Stats::bump(&shared.stats.probes);
            Ok(took)
        }
        Err(why) => {
            // A probe can also fail because the compositor died meanwhile: say that instead.
            target.check().map_err(Failure)?;
            // Slow or stuck? Watch it, then give it a last chance of 10 s.
            let doing = diagnose(target.pid(), Duration::from_secs(2));
            let stacks = target
                .log()
                .map(|log| log.with_extension("stacks.txt"))
                .and_then(|path| backtrace(target.pid(), &path));
            if let Some(stacks) = stacks {
                println!("where lockstep is {stacks}");
            }
            let later = match probe(target.socket(), Duration::from_secs(10)) {
                Ok(took) => format!("a second probe was answered after {took:?}"),
                Err(again) => format!("a second probe got {again}"),
            };
            Err(Failure(format!(
                "hang: a fresh client's wl_display.sync: {why}; lockstep is {doing}; {later}"
            )))
        }
    }
}

/// Fuzzes for `duration`, checking health every second and printing progress.
fn phase(
    args: &Args,
    shared: &Arc<Shared>,
    target: &mut Target,
    rng: &mut Rng,
    name: &str,
    duration: Duration,
    ceiling: Option<Sample>,
) -> Result<(), Failure> {
    let limit = Duration::from_millis(args.probe_timeout_ms);
    let handles = start_clients(shared, rng, args.clients);
    let start = Instant::now();
    let mut last_progress = Instant::now();
    let mut slowest = Duration::ZERO;
    let result = loop {
        thread::sleep(Duration::from_millis(1000));
        let took = match health(target, shared, limit) {
            Ok(took) => took,
            Err(failure) => break Err(failure),
        };
        slowest = slowest.max(took);
        let now = sample(target.pid());
        if let (Some(now), Some(ceiling)) = (now, ceiling) {
            if now.fds > ceiling.fds || now.rss_kib > ceiling.rss_kib {
                break Err(Failure(format!(
                    "unbounded growth during fuzzing: {now} (ceiling {ceiling})"
                )));
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(args.progress) {
            last_progress = Instant::now();
            progress(shared, name, start.elapsed(), now, slowest);
            slowest = Duration::ZERO;
        }
        if start.elapsed() >= duration {
            break Ok(());
        }
    };
    stop_clients(shared, handles);
    result
}

#[allow(clippy::disallowed_macros)] // CLI output
fn progress(shared: &Shared, name: &str, t: Duration, now: Option<Sample>, slowest: Duration) {
    let s = &shared.stats;
    println!(
        "[{name} {:>4}s] requests {} ({} hostile), connections {}, protocol errors {}, \
         compositor {}, slowest probe {} ms",
        t.as_secs(),
        Stats::get(&s.requests),
        Stats::get(&s.hostile),
        Stats::get(&s.connections),
        s.total_errors(),
        now.map_or_else(|| "?".to_owned(), |n| n.to_string()),
        slowest.as_millis()
    );
}

/// No client connected: wait, keep probing, then measure.
fn settle(args: &Args, shared: &Shared, target: &mut Target) -> Result<Sample, Failure> {
    let limit = Duration::from_millis(args.probe_timeout_ms);
    for _ in 0..args.settle.max(1) {
        thread::sleep(Duration::from_secs(1));
        health(target, shared, limit)?;
    }
    sample(target.pid()).ok_or_else(|| Failure("lockstep vanished while settling".into()))
}

#[allow(clippy::disallowed_macros)] // CLI output
fn fuzz(args: &Args, seed: u64, shared: &Arc<Shared>, target: &mut Target) -> Result<(), Failure> {
    let mut rng = Rng::new(seed);
    let start =
        sample(target.pid()).ok_or_else(|| Failure("cannot read /proc of lockstep".into()))?;
    println!("at start: {start}");
    phase(
        args,
        shared,
        target,
        &mut rng,
        "warm-up",
        Duration::from_secs(args.warmup),
        None,
    )?;
    let baseline = settle(args, shared, target)?;
    println!(
        "baseline after warm-up and {} s without clients: {baseline}",
        args.settle
    );
    // During fuzzing the compositor legitimately holds the clients' fds and buffers; only
    // growth far past anything plausible fails early. The real leak check is after settling.
    let ceiling = Sample {
        fds: baseline.fds + 256 * args.clients as u64 + 1024,
        rss_kib: baseline.rss_kib + (4 << 20),
    };
    let duration = Duration::from_secs(args.seconds);
    phase(
        args,
        shared,
        target,
        &mut rng,
        "fuzz",
        duration,
        Some(ceiling),
    )?;
    let end = settle(args, shared, target)?;
    println!("end after {} s without clients: {end}", args.settle);
    let rss_limit = baseline.rss_kib + baseline.rss_kib / 2 + args.rss_slack_mib * 1024;
    if end.fds > baseline.fds + args.fd_slack {
        return Err(Failure(format!(
            "fd leak: {} fds after the run, {} at the baseline (slack {})",
            end.fds, baseline.fds, args.fd_slack
        )));
    }
    if end.rss_kib > rss_limit {
        return Err(Failure(format!(
            "memory growth: RSS {} KiB after the run, {} KiB at the baseline (limit {} KiB = \
             baseline × 1.5 + {} MiB)",
            end.rss_kib, baseline.rss_kib, rss_limit, args.rss_slack_mib
        )));
    }
    Ok(())
}

#[allow(clippy::disallowed_macros)] // CLI output
fn report(shared: &Shared, target: &Target, failure: Option<&Failure>, seed: u64, args: &Args) {
    let s = &shared.stats;
    println!();
    println!("== lockstep-fuzz summary (seed {seed}) ==");
    println!(
        "requests sent      {} ({} hostile, {} fds)",
        Stats::get(&s.requests),
        Stats::get(&s.hostile),
        Stats::get(&s.fds_sent)
    );
    println!(
        "connections        {} (killed with a protocol error {}, closed without one {}, \
         closed by the fuzzer {}, stalled after a lying size {}, stalled otherwise {})",
        Stats::get(&s.connections),
        Stats::get(&s.killed_with_error),
        Stats::get(&s.closed_without_error),
        Stats::get(&s.clean_closes),
        Stats::get(&s.stalled_after_desync),
        Stats::get(&s.stalled)
    );
    println!(
        "probes answered    {}; pool files shrunk under mapping {}; unparsed events {}",
        Stats::get(&s.probes),
        Stats::get(&s.shrunk_pools),
        Stats::get(&s.unknown_events)
    );
    println!(
        "protocol errors    {} by interface and code:",
        s.total_errors()
    );
    for ((interface, code), (count, message)) in s.error_table() {
        let message: String = message.chars().take(90).collect();
        println!("  {count:>8}  {interface} {code}: {message}");
    }
    for (how, lines) in s.examples.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        println!("a session that {how} ended with:");
        for line in lines {
            println!("    {line}");
        }
    }
    if INTERRUPTED.load(Ordering::Relaxed) {
        return;
    }
    let Some(Failure(why)) = failure else {
        println!(
            "PASS: lockstep survived {} s of fuzzing (seed {seed})",
            args.seconds
        );
        return;
    };
    println!();
    println!("== FAILURE: {why} ==");
    println!(
        "reproduce: lockstep-fuzz --seed {seed} --clients {} --seconds {} --hostile {}{}",
        args.clients,
        args.seconds,
        args.hostile,
        args.avoid
            .iter()
            .map(|a| format!(" --avoid {a}"))
            .collect::<String>()
    );
    let tail = target.stderr_tail();
    if !tail.is_empty() {
        println!(
            "-- lockstep stderr (last {} lines; all in {}) --",
            tail.len(),
            target
                .log()
                .map_or_else(|| "?".into(), |p| p.display().to_string())
        );
        for line in tail {
            println!("{line}");
        }
    }
    for (i, history) in shared.histories.iter().enumerate() {
        let lines = history.lines();
        if lines.is_empty() {
            continue;
        }
        println!("-- client {i}: last {} requests --", lines.len());
        for line in lines {
            println!("  {line}");
        }
    }
}
