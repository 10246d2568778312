//! `lockstep check-client`: one command for a client author's CI.
//!
//! It starts lockstep (headless by default, or in a window with `--backend winit`) with
//! explicit-sync validation on, runs the client with `WAYLAND_DISPLAY` pointing at it until
//! the client exits or `--seconds` pass, then prints the validation report and exits with a
//! status a CI step can use:
//!
//! | status | meaning |
//! |---|---|
//! | 0 | explicit sync was on, the client used it, and made no mistake |
//! | 1 | the client made explicit-sync mistakes (listed) |
//! | 2 | explicit sync was not available here, so nothing was checked (the reason is printed) |
//! | 3 | the client never committed a buffer with explicit-sync points |
//! | 4 | the client failed: it exited non-zero or was killed by a signal on its own |
//!
//! This is CLI output code: it prints for the user.
#![allow(clippy::disallowed_macros)]

use std::{
    ffi::OsString,
    process::{Command, ExitCode, ExitStatus},
    time::{Duration, Instant},
};

use anyhow::{anyhow, Context, Result};
use lockstep::{
    backend::headless::VirtualOutput, handlers::drm_syncobj::ExplicitSyncStatus, server::Server,
    sync_validation::ReportEntry,
};
use lockstep_config::Config;
use serde::Serialize;
use smithay::reexports::calloop::{
    channel::{channel, Event},
    timer::{TimeoutAction, Timer},
};

use crate::cli::CheckBackend;

/// How the client's run ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "ended", rename_all = "snake_case")]
enum ClientEnd {
    /// It exited (or was killed) on its own.
    Exited { status: String, success: bool },
    /// `--seconds` passed and lockstep stopped it.
    Stopped { after_s: f64 },
    /// lockstep was interrupted (Ctrl-C) while the client ran.
    Interrupted,
}

/// The report, also printed as JSON with `--json`.
#[derive(Debug, Serialize)]
struct Report {
    client: Vec<String>,
    client_end: ClientEnd,
    explicit_sync: ExplicitSyncStatus,
    commits_with_points: u64,
    mistakes: Vec<ReportEntry>,
    mistakes_dropped: u64,
    verdict: &'static str,
    exit_status: u8,
}

/// Runs `lockstep check-client`.
pub fn run(
    backend: CheckBackend,
    seconds: Option<u64>,
    json: bool,
    config_path: Option<&std::path::Path>,
    command: &[OsString],
) -> Result<ExitCode> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| anyhow!("no client to check: `lockstep check-client -- CLIENT ARGS`"))?;
    let loaded = Config::load(config_path).map_err(|err| anyhow!("{err}"))?;
    let mut config = loaded.config;
    config.explicit_sync.validation = true;
    super::block_signals()?;
    let mut server = match backend {
        CheckBackend::Headless => Server::headless(config, &[VirtualOutput::default()])?,
        CheckBackend::Winit => Server::winit(config)?,
    };
    let socket = server.state.core.listen(None)?;
    super::watch_signals(&mut server)?;

    let mut client = Command::new(program);
    client
        .args(args)
        .env("WAYLAND_DISPLAY", &socket)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_SOCKET");
    lockstep::socket::restore_fd_limit_in_child(&mut client);
    let mut child = client
        .spawn()
        .with_context(|| format!("cannot start {program:?}; is it installed and on PATH?"))?;
    let pid = child.id();
    let started = Instant::now();

    // The client's exit reaches the loop through a channel; a thread waits for it.
    let (exits, exited) = channel::<std::io::Result<ExitStatus>>();
    std::thread::Builder::new()
        .name("check-client-wait".into())
        .spawn(move || {
            let _ = exits.send(child.wait());
        })
        .context("cannot start a thread to wait for the client")?;
    let end: std::rc::Rc<std::cell::RefCell<Option<ClientEnd>>> = Default::default();
    let on_exit = end.clone();
    server
        .event_loop
        .handle()
        .insert_source(exited, move |event, _, state| {
            if let Event::Msg(status) = event {
                let (status, success) = match status {
                    Ok(status) => (status.to_string(), status.success()),
                    Err(err) => (format!("unknown ({err})"), false),
                };
                on_exit
                    .borrow_mut()
                    .get_or_insert(ClientEnd::Exited { status, success });
                state.core.loop_signal.stop();
            }
        })
        .map_err(|err| anyhow!("cannot watch the client: {err}"))?;
    if let Some(seconds) = seconds {
        let on_timeout = end.clone();
        server
            .event_loop
            .handle()
            .insert_source(
                Timer::from_duration(Duration::from_secs(seconds)),
                move |_, _, state| {
                    on_timeout.borrow_mut().get_or_insert(ClientEnd::Stopped {
                        after_s: started.elapsed().as_secs_f64(),
                    });
                    state.core.loop_signal.stop();
                    TimeoutAction::Drop
                },
            )
            .map_err(|err| anyhow!("cannot arm the --seconds timer: {err}"))?;
    }
    eprintln!(
        "lockstep check-client: running {} on {socket:?} with explicit-sync validation{}",
        shell_words(command),
        seconds
            .map(|s| format!(" for at most {s} s"))
            .unwrap_or_default()
    );
    server.run()?;
    let client_end = end.borrow_mut().take().unwrap_or(ClientEnd::Interrupted);
    if !matches!(client_end, ClientEnd::Exited { .. }) {
        stop_client(pid);
    }

    let core = &server.state.core;
    let (entries, dropped) = core.sync_validation.entries();
    let mut report = Report {
        client: command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        client_end,
        explicit_sync: core.explicit_sync.clone(),
        commits_with_points: core.sync_validation.commits_with_points(),
        mistakes: entries.to_vec(),
        mistakes_dropped: dropped,
        verdict: "",
        exit_status: 0,
    };
    let (verdict, status) = verdict(&report);
    report.verdict = verdict;
    report.exit_status = status;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::from(status))
}

/// The verdict and exit status (module docs).
fn verdict(report: &Report) -> (&'static str, u8) {
    if !report.explicit_sync.enabled {
        return ("explicit sync was not available, nothing was checked", 2);
    }
    if !report.mistakes.is_empty() || report.mistakes_dropped > 0 {
        return ("the client made explicit-sync mistakes", 1);
    }
    if let ClientEnd::Exited { success: false, .. } = report.client_end {
        return ("the client failed", 4);
    }
    if report.commits_with_points == 0 {
        return ("the client never used explicit sync", 3);
    }
    ("no explicit-sync mistakes", 0)
}

fn print_report(report: &Report) {
    println!("client: {}", report.client.join(" "));
    match &report.client_end {
        ClientEnd::Exited { status, .. } => println!("  ended: {status}"),
        ClientEnd::Stopped { after_s } => println!("  ended: stopped after {after_s:.1} s"),
        ClientEnd::Interrupted => println!("  ended: lockstep was interrupted"),
    }
    let sync = &report.explicit_sync;
    println!(
        "explicit sync: {} ({})",
        if sync.enabled { "on" } else { "OFF" },
        sync.reason
    );
    println!(
        "commits with explicit-sync points: {}",
        report.commits_with_points
    );
    if report.mistakes.is_empty() {
        println!("mistakes: none");
    } else {
        println!("mistakes: {}", report.mistakes.len());
        for e in &report.mistakes {
            println!(
                "  {:>7} ms  {:?}  {} {} points {}\n            {}\n            why: {}",
                e.time_ms, e.kind, e.surface, e.timeline, e.points, e.what, e.why
            );
        }
    }
    if report.mistakes_dropped > 0 {
        println!("  ... and {} more", report.mistakes_dropped);
    }
    println!(
        "verdict: {} (exit status {})",
        report.verdict, report.exit_status
    );
    if report.exit_status == 2 {
        println!(
            "  explicit sync needs a DRM render node with timeline syncobjs and \
             SYNCOBJ_EVENTFD (a GPU driver, or vgem); see README, \"Explicit sync\""
        );
    }
}

/// Asks the client to stop (SIGTERM), as lockstep's own time is up.
fn stop_client(pid: u32) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
}

fn shell_words(command: &[OsString]) -> String {
    command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
