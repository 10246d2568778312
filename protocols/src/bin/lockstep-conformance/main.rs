//! `lockstep-conformance`: a client-side conformance suite for linux-drm-syncobj-v1 that runs
//! against any Wayland compositor.
//!
//! It connects to `$WAYLAND_DISPLAY`, creates timelines on a DRM node of its own, allocates
//! dmabufs with lockstep-render's heap allocator (dma-heap, udmabuf or dumb buffers), imports
//! them with zwp_linux_dmabuf_v1, controls acquire fences with sw_sync when it can (else by
//! signalling timeline points from the CPU), and checks what is on screen with wlr-screencopy
//! when the compositor offers it. Each case runs on its own connection (in its own thread,
//! under a time limit) and ends in pass, fail or skip with a reason.
//!
//! See protocols/CONFORMANCE-SUITE.md for how to run it and what each case asserts.

mod cases;
mod client;
mod env;
mod outcome;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lockstep_render::heap::Fourcc;
use lockstep_sync::SyncDevice;

use crate::cases::Case;
use crate::client::{Client, SYNCOBJ_MANAGER};
use crate::env::Env;
use crate::outcome::{CaseError, Outcome};
use crate::output::CaseReport;

const USAGE: &str = "\
usage: lockstep-conformance [OPTIONS]

Runs the linux-drm-syncobj-v1 conformance cases against the compositor at $WAYLAND_DISPLAY.

  --list               list the cases and what each asserts, then exit
  --filter SUBSTR      only cases whose name contains SUBSTR (repeatable: any of them)
  --json               print one JSON document instead of TAP-like lines
  --device PATH        DRM node for the client's timelines (default: the first render,
                       then primary, node with timeline syncobjs)
  --timeout-ms N       how long to wait for something that must happen (default 5000)
  --settle-ms N        how long to watch for something that must not happen (default 500)
  --case-timeout-s N   limit per case; a case over it fails (default 60)
  --cpu-fences         signal acquire points from the CPU even when sw_sync is available
  --no-screencopy      judge \"shown\" by frame callbacks even when screencopy is offered
  -h, --help

Exit status: 0 when no case failed (skips included), 1 when a case failed, 2 on a usage or
setup error (no compositor to connect to).";

/// The command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Args {
    list: bool,
    json: bool,
    filters: Vec<String>,
    device: Option<PathBuf>,
    timeout: Duration,
    settle: Duration,
    case_timeout: Duration,
    cpu_fences: bool,
    no_screencopy: bool,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            list: false,
            json: false,
            filters: Vec::new(),
            device: None,
            timeout: Duration::from_millis(5000),
            settle: Duration::from_millis(500),
            case_timeout: Duration::from_secs(60),
            cpu_fences: false,
            no_screencopy: false,
        }
    }
}

/// `Ok(None)` for `--help`.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, text: String| {
            text.parse::<u64>()
                .map_err(|_| format!("{name} needs a number, not {text:?}"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--list" => parsed.list = true,
            "--json" => parsed.json = true,
            "--cpu-fences" => parsed.cpu_fences = true,
            "--no-screencopy" => parsed.no_screencopy = true,
            "--filter" => parsed.filters.push(value("--filter")?),
            "--device" => parsed.device = Some(value("--device")?.into()),
            "--timeout-ms" => {
                parsed.timeout = Duration::from_millis(number(&arg, value(&arg)?)?);
            }
            "--settle-ms" => parsed.settle = Duration::from_millis(number(&arg, value(&arg)?)?),
            "--case-timeout-s" => {
                parsed.case_timeout = Duration::from_secs(number(&arg, value(&arg)?)?);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(parsed))
}

/// The cases `filters` select (all when empty).
fn select(cases: Vec<Case>, filters: &[String]) -> Vec<Case> {
    cases
        .into_iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f.as_str())))
        .collect()
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            output::note(USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            output::note(&format!("{e}\n\n{USAGE}"));
            return ExitCode::from(2);
        }
    };
    let cases = select(cases::all(), &args.filters);
    if args.list {
        output::print_list(&cases);
        return ExitCode::SUCCESS;
    }
    if cases.is_empty() {
        output::note("no case matches the filter (see --list)");
        return ExitCode::from(2);
    }
    let mut env = Env::open(args.device.clone(), args.timeout, args.settle);
    env.sw_sync &= !args.cpu_fences;
    env.screencopy = !args.no_screencopy;
    let header = match describe_environment(&env) {
        Ok(header) => header,
        Err(CaseError::Fail(why) | CaseError::Skip(why)) => {
            output::note(&why);
            return ExitCode::from(2);
        }
    };
    if !args.json {
        output::tap_header(cases.len(), &header);
    }
    let mut reports = Vec::with_capacity(cases.len());
    for (i, case) in cases.iter().enumerate() {
        let started = Instant::now();
        let outcome = run_case(case, &env, args.case_timeout);
        let report = CaseReport {
            index: i + 1,
            name: case.name,
            about: case.about,
            outcome,
            duration: started.elapsed(),
        };
        if !args.json {
            output::tap_case(&report);
        }
        reports.push(report);
    }
    let totals = output::Totals::of(&reports);
    if args.json {
        output::print_json(&header, &reports);
    } else {
        output::tap_footer(totals);
    }
    if totals.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs `case` on a thread of its own; a case that hangs (a compositor that never answers)
/// fails after `limit` and its thread is left behind.
fn run_case(case: &Case, env: &Env, limit: Duration) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let env = env.clone();
    let run = case.run;
    let spawned = std::thread::Builder::new()
        .name(case.name.to_owned())
        .spawn(move || {
            let _ = tx.send(Outcome::from(run(&env)));
        });
    if let Err(e) = spawned {
        return Outcome::Fail(format!("cannot start the case's thread: {e}"));
    }
    match rx.recv_timeout(limit) {
        Ok(outcome) => outcome,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Outcome::Fail(format!("did not finish within {limit:?} (hung?)"))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Outcome::Fail("the case panicked (a bug in the suite; see stderr)".into())
        }
    }
}

/// Connects once to describe the compositor and the client's means; an error when there is
/// no compositor to test at all.
fn describe_environment(env: &Env) -> Result<Vec<String>, CaseError> {
    let client = Client::connect(env)?;
    let has = |iface: &str| {
        client
            .state
            .globals
            .iter()
            .find(|(_, i, _)| i == iface)
            .map(|(_, _, v)| format!("v{v}"))
    };
    let mut header = Vec::new();
    match has(SYNCOBJ_MANAGER) {
        Some(v) => header.push(format!("{SYNCOBJ_MANAGER} {v} advertised")),
        None => header.push(format!(
            "{SYNCOBJ_MANAGER} is NOT advertised by this compositor: every case is skipped \
             (if it should support explicit sync, check that it found a DRM device with \
             timeline syncobjs)"
        )),
    }
    header.push(format!(
        "pixels: {}",
        if client.can_capture() {
            "checked through zwlr_screencopy_manager_v1".to_owned()
        } else {
            "no zwlr_screencopy_manager_v1 (or wl_output/wl_shm): \"shown\" is judged by frame callbacks".to_owned()
        }
    ));
    header.push(format!(
        "dmabufs: {}",
        match has("zwp_linux_dmabuf_v1") {
            Some(v) => format!("zwp_linux_dmabuf_v1 {v}"),
            None => "no zwp_linux_dmabuf_v1".into(),
        }
    ));
    header.push(match &env.device {
        Ok(dev) => format!("timelines: {}", dev.name()),
        Err(why) => format!("timelines: none ({why})"),
    });
    header.push(format!("acquire fences: {}", env.fence_mode()));
    header.push(match env.allocator.allocate(16, 16, Fourcc::ARGB8888) {
        Ok(buffer) => format!("buffers: {}", buffer.source()),
        Err(e) => format!("buffers: none ({e})"),
    });
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        assert_eq!(parse(&[]).unwrap(), Some(Args::default()));
        assert_eq!(parse(&["--help"]).unwrap(), None);
        let args = parse(&[
            "--json",
            "--filter",
            "conflicting",
            "--filter",
            "release",
            "--timeout-ms",
            "100",
            "--device",
            "/dev/dri/renderD128",
        ])
        .unwrap()
        .unwrap();
        assert!(args.json && !args.list);
        assert_eq!(args.filters, ["conflicting", "release"]);
        assert_eq!(args.timeout, Duration::from_millis(100));
        assert_eq!(args.device, Some(PathBuf::from("/dev/dri/renderD128")));
        let args = parse(&["--cpu-fences", "--no-screencopy"])
            .unwrap()
            .unwrap();
        assert!(args.cpu_fences && args.no_screencopy);
        assert!(parse(&["--filter"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--settle-ms", "x"]).unwrap_err().contains("number"));
        assert!(parse(&["--bogus"]).unwrap_err().contains("unknown"));
    }

    #[test]
    fn case_names_are_unique_and_filters_select() {
        let all = cases::all();
        let mut names: Vec<_> = all.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert!(all.len() >= 35, "{} cases", all.len());
        let some = select(all.clone(), &["conflicting".into()]);
        assert_eq!(some.len(), 3);
        assert!(some.iter().all(|c| c.name.contains("conflicting")));
        assert_eq!(select(all.clone(), &[]).len(), all.len());
    }

    #[test]
    fn a_case_without_a_compositor_fails_with_a_reason() {
        // No compositor at all: a case fails to connect, with a reason, and never panics.
        let env = Env::open(None, Duration::from_millis(50), Duration::from_millis(10));
        std::env::set_var(
            "WAYLAND_DISPLAY",
            "lockstep-conformance-test-no-such-socket",
        );
        let case = cases::all()[0];
        match run_case(&case, &env, Duration::from_secs(10)) {
            Outcome::Fail(why) => assert!(why.contains("cannot connect"), "{why}"),
            other => panic!("expected a connect failure, got {other:?}"),
        }
    }
}
