//! Command line and the text it prints for the user.
//!
//! This is the one module allowed to print (`println!`); everything else logs with `tracing`.
#![allow(clippy::disallowed_macros)]

use std::{ffi::OsString, path::PathBuf, process::ExitCode};

use anyhow::{anyhow, Result};
use clap::{Parser, ValueEnum};
use lockstep::ipc::{self, Request, Response};
use lockstep_config::{Config, Mode};

/// lockstep: a Wayland compositor that gets explicit sync exactly right.
#[derive(Debug, Clone, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Where frames go: `winit` (a window on the host X11/Wayland session), `headless`
    /// (memory only), `kms` (the display hardware, from a text console). `auto` picks winit
    /// when DISPLAY or WAYLAND_DISPLAY is set, kms on a text console (/dev/ttyN), else
    /// headless.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Wayland socket name (in XDG_RUNTIME_DIR); default: the first free wayland-N.
    #[arg(long)]
    pub socket: Option<String>,
    /// Config file; default: $XDG_CONFIG_HOME/lockstep/config.toml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A headless output, WIDTHxHEIGHT[@HZ]; repeat for several outputs.
    #[arg(long = "output", value_name = "WxH@HZ")]
    pub outputs: Vec<Mode>,
    /// Record explicit-sync mistakes of clients (see `lockstep msg sync-report`).
    #[arg(long)]
    pub sync_validation: bool,
    /// Run as the user's session: set XDG_CURRENT_DESKTOP=lockstep, export the session
    /// environment to systemd and D-Bus, and notify systemd when ready (lockstep.service).
    #[arg(long)]
    pub session: bool,
    /// A command to run once lockstep is ready, with WAYLAND_DISPLAY set.
    #[arg(last = true, value_name = "COMMAND")]
    pub command_args: Vec<OsString>,
    #[command(subcommand)]
    pub command: Option<Subcommand>,
}

/// Backends to choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// winit with a display, else headless.
    Auto,
    /// Virtual outputs in memory.
    Headless,
    /// A window on the host display.
    Winit,
    /// DRM/KMS on a TTY.
    Kms,
}

/// Subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Subcommand {
    /// Ask a running lockstep: outputs, windows, version, screenshot FILE.png [--output NAME].
    Msg {
        #[command(subcommand)]
        request: MsgRequest,
        /// Print the answer as JSON.
        #[arg(long, global = true)]
        json: bool,
        /// Wayland socket of the lockstep to ask; default: $WAYLAND_DISPLAY.
        #[arg(long, global = true)]
        socket: Option<String>,
    },
    /// Run a client under lockstep with explicit-sync validation and report its mistakes
    /// (exit status 0: none; 1: mistakes; 2: no explicit sync here; 3: the client never used
    /// it; 4: the client failed).
    CheckClient {
        /// Where lockstep runs while the client is checked.
        #[arg(long, value_enum, default_value_t = CheckBackend::Headless)]
        backend: CheckBackend,
        /// Stop the client after this many seconds (default: wait until it exits).
        #[arg(long, value_name = "N")]
        seconds: Option<u64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Config file; default: $XDG_CONFIG_HOME/lockstep/config.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The client and its arguments.
        #[arg(last = true, required = true, value_name = "CLIENT")]
        command: Vec<OsString>,
    },
    /// Check a config file (default: the one lockstep would load) and explain any error.
    ValidateConfig {
        /// The file to check.
        path: Option<PathBuf>,
    },
}

/// Backends `lockstep check-client` can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckBackend {
    /// Virtual outputs in memory (CI machines).
    Headless,
    /// A window on the host display, to watch the client.
    Winit,
}

/// What `lockstep msg` can ask.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum MsgRequest {
    /// List outputs.
    Outputs {
        /// Also show which display plane shows what (KMS backend).
        #[arg(long)]
        planes: bool,
    },
    /// List windows.
    Windows,
    /// Show version and backend.
    Version,
    /// Whether explicit sync (linux-drm-syncobj-v1) is on, and why (not).
    ExplicitSync,
    /// The explicit-sync mistakes clients made (needs --sync-validation).
    SyncReport,
    /// The connected clients: pid, app ids, surfaces, and the memory lockstep holds for
    /// each (shm pools, dmabufs, buffers) against its [limits].
    Clients,
    /// Print events as JSON lines as they happen (windows, focus, workspaces, outputs,
    /// config reloads) until lockstep exits.
    Events,
    /// Run an action, e.g. `workspace 2`, `focus left`, `spawn foot` (the README lists them).
    Action {
        /// The action and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        words: Vec<String>,
    },
    /// Save a PNG of an output.
    Screenshot {
        /// Where to write the PNG.
        file: PathBuf,
        /// Which output (default: the first).
        #[arg(long)]
        output: Option<String>,
    },
}

/// Prints the socket name (and the X11 display when Xwayland is on) once lockstep is ready
/// (scripts wait for this line).
pub fn announce(socket: &str, x_display: Option<&str>, backend: &str) {
    match x_display {
        Some(display) => println!(
            "lockstep is ready: WAYLAND_DISPLAY={socket} DISPLAY={display} (backend {backend})"
        ),
        None => println!("lockstep is ready: WAYLAND_DISPLAY={socket} (backend {backend})"),
    }
}

/// Prints an error for the user.
pub fn print_error(err: &anyhow::Error) {
    eprintln!("lockstep: {err:#}");
}

/// `lockstep validate-config [PATH]`.
pub fn validate_config(path: Option<PathBuf>) -> Result<ExitCode> {
    match Config::load(path.as_deref()) {
        Ok(loaded) => {
            println!("ok: {}", loaded.source);
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("{err}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `lockstep msg ...`.
pub fn msg(request: MsgRequest, json: bool, socket: Option<String>) -> Result<ExitCode> {
    let show_planes = matches!(request, MsgRequest::Outputs { planes: true });
    let socket = socket
        .or_else(|| std::env::var("WAYLAND_DISPLAY").ok())
        .ok_or_else(|| anyhow!("which lockstep? set WAYLAND_DISPLAY or pass --socket NAME"))?;
    if let MsgRequest::Events = request {
        ipc::stream_events(&socket, |line| println!("{line}"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let request = match request {
        MsgRequest::Outputs { .. } => Request::Outputs,
        MsgRequest::Windows => Request::Windows,
        MsgRequest::Version => Request::Version,
        MsgRequest::ExplicitSync => Request::ExplicitSync,
        MsgRequest::SyncReport => Request::SyncReport,
        MsgRequest::Clients => Request::Clients,
        MsgRequest::Action { words } => Request::Action { action: words },
        MsgRequest::Events => Request::Events,
        MsgRequest::Screenshot { file, output } => {
            let path = if file.is_absolute() {
                file
            } else {
                std::env::current_dir()?.join(file)
            };
            Request::Screenshot { path, output }
        }
    };
    let response = ipc::request(&socket, &request)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&response)?);
        return Ok(match response {
            Response::Error(_) => ExitCode::FAILURE,
            _ => ExitCode::SUCCESS,
        });
    }
    match response {
        Response::Clients(report) => print!("{}", lockstep::client_memory::format_report(&report)),
        Response::Outputs(outputs) => {
            for o in outputs {
                println!(
                    "{}: {}x{} @ {:.3} Hz, scale {}, at {},{} ({} frames presented, {} rendered)",
                    o.name,
                    o.size.0,
                    o.size.1,
                    o.refresh_mhz as f64 / 1000.0,
                    o.scale,
                    o.position.0,
                    o.position.1,
                    o.frames_presented,
                    o.frames_rendered
                );
                if o.transform != "normal" && !o.transform.is_empty() {
                    println!("  transform {}", o.transform);
                }
                if !o.powered {
                    println!("  powered off");
                }
                println!(
                    "  {}workspace {} shown; with windows: {}",
                    if o.active { "focused, " } else { "" },
                    o.workspace.as_deref().unwrap_or("?"),
                    o.workspaces.join(", ")
                );
                let (x, y, w, h) = o.usable_area;
                println!(
                    "  usable area {w}x{h} at {x},{y}; session {}",
                    o.session_lock
                );
                for l in &o.layers {
                    println!(
                        "  layer {} ({}): {}x{} at {},{}, exclusive zone {}, keyboard {}",
                        l.namespace,
                        l.layer,
                        l.size.0,
                        l.size.1,
                        l.position.0,
                        l.position.1,
                        l.exclusive_zone,
                        l.keyboard
                    );
                }
                if !o.renderer.is_empty() {
                    println!("  renderer: {}", o.renderer);
                }
                if show_planes {
                    match &o.planes {
                        Some(planes) => {
                            for p in planes {
                                println!("  plane {} ({}): {}", p.id, p.kind, p.content);
                            }
                        }
                        None => println!("  no display planes: this backend composites everything"),
                    }
                }
            }
        }
        Response::Windows(windows) => {
            if windows.is_empty() {
                println!("no windows");
            }
            for w in windows {
                println!(
                    "{}{} ({}): {}x{} at {},{}, {} on workspace {} of {}{}",
                    if w.focused { "* " } else { "  " },
                    w.title.as_deref().unwrap_or("(untitled)"),
                    w.app_id.as_deref().unwrap_or("no app id"),
                    w.size.0,
                    w.size.1,
                    w.position.0,
                    w.position.1,
                    w.layout,
                    w.workspace.as_deref().unwrap_or("?"),
                    w.output.as_deref().unwrap_or("no output"),
                    if w.minimized {
                        " (minimized)"
                    } else if w.visible {
                        ""
                    } else {
                        " (hidden)"
                    }
                );
            }
        }
        Response::Version {
            version,
            backend,
            socket,
        } => {
            println!(
                "lockstep {version}, backend {backend}, socket {}",
                socket.unwrap_or_else(|| "(none)".into())
            );
        }
        Response::Screenshot { path, output, size } => {
            println!(
                "wrote {} ({}x{}, output {output})",
                path.display(),
                size.0,
                size.1
            );
        }
        Response::SyncReport {
            enabled,
            entries,
            dropped,
        } => {
            if !enabled {
                println!("validation mode is off: start lockstep with --sync-validation");
            } else if entries.is_empty() {
                println!("no explicit-sync mistakes recorded");
            }
            for e in &entries {
                println!(
                    "[{:>8} ms] {:?} pid {} app {} {} {} ({})\n    {}\n    why: {}",
                    e.time_ms,
                    e.kind,
                    e.client_pid
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "?".into()),
                    e.app_id.as_deref().unwrap_or("?"),
                    e.surface,
                    e.timeline,
                    e.points,
                    e.what,
                    e.why
                );
            }
            if dropped > 0 {
                println!("... and {dropped} more (the report keeps the first entries only)");
            }
        }
        Response::ExplicitSync(status) => {
            if status.enabled {
                println!("explicit sync: on ({})", status.reason);
            } else {
                println!("explicit sync: off: {}", status.reason);
            }
        }
        Response::Done(message) => println!("{message}"),
        Response::Error(message) => {
            eprintln!("lockstep: {message}");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
