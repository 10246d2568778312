//! The `lockstep` command: run the compositor, talk to a running one, check a config file.

mod check_client;
mod cli;

use std::{ffi::OsString, process::ExitCode};

use anyhow::{anyhow, bail, Result};
use clap::Parser;
use lockstep::{backend::headless::VirtualOutput, ipc::IpcServer, server::Server};
use lockstep_config::{Config, Mode};
use smithay::reexports::calloop::{generic::Generic, Interest, PostAction};
use tracing::{info, warn};

use cli::{BackendChoice, Cli, Subcommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // check-client prints a report; its log shows only what went wrong.
    let default_log = match cli.command {
        Some(Subcommand::CheckClient { .. }) => "warn",
        _ => "info",
    };
    let log_guard = lockstep::logging::init(default_log);
    let result = match cli.command.clone() {
        Some(Subcommand::Msg {
            request,
            json,
            socket,
        }) => cli::msg(request, json, socket),
        Some(Subcommand::ValidateConfig { path }) => cli::validate_config(path),
        Some(Subcommand::CheckClient {
            backend,
            seconds,
            json,
            config,
            command,
        }) => check_client::run(backend, seconds, json, config.as_deref(), &command),
        None => run(cli),
    };
    // The last log lines reach stderr before the error is printed and lockstep exits.
    drop(log_guard);
    match result {
        Ok(code) => code,
        Err(err) => {
            cli::print_error(&err);
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let loaded = Config::load(cli.config.as_deref()).map_err(|err| anyhow!("{err}"))?;
    info!(source = %loaded.source, "configuration loaded");
    let mut config = loaded.config;
    if cli.sync_validation {
        config.explicit_sync.validation = true;
    }

    let backend = match cli.backend {
        BackendChoice::Auto => {
            if std::env::var_os("WAYLAND_DISPLAY").is_some()
                || std::env::var_os("DISPLAY").is_some()
            {
                BackendChoice::Winit
            } else if on_a_vt() {
                BackendChoice::Kms
            } else {
                BackendChoice::Headless
            }
        }
        other => other,
    };
    if cli.session {
        // Children and the environment exported to systemd see these.
        lockstep::session::set_environment();
    }
    block_signals()?;
    let mut server = match backend {
        BackendChoice::Headless => {
            let outputs = virtual_outputs(&cli.outputs, &config)?;
            Server::headless(config, &outputs)?
        }
        BackendChoice::Winit => {
            if !cli.outputs.is_empty() {
                warn!("--output is ignored by the winit backend: resize the window instead");
            }
            Server::winit(config)?
        }
        BackendChoice::Kms => {
            if !cli.outputs.is_empty() {
                warn!("--output is ignored by the KMS backend: set modes with [[output]] in the config");
            }
            Server::kms(config)?
        }
        BackendChoice::Auto => unreachable_auto(),
    };

    server.state.core.config_path = cli.config.clone();
    let socket = server.state.core.listen(cli.socket.as_deref())?;
    let socket_str = socket.to_string_lossy().into_owned();
    let _ipc = IpcServer::start(&mut server.state, &socket_str)?;
    if let Err(err) = lockstep::config_watch::watch(&mut server.state) {
        warn!("the config file is not watched ({err}); Super+Shift+C or `lockstep msg action reload-config` reloads it");
    }
    watch_signals(&mut server)?;

    let x_display = lockstep::xwayland::enable(&mut server.state.core).map(|d| d.to_string());

    // Children and clients started from this process find us through WAYLAND_DISPLAY, and
    // DISPLAY names our X11 display when Xwayland is on; the host's DISPLAY must not leak to
    // them (they would open on the host instead).
    std::env::set_var("WAYLAND_DISPLAY", &socket);
    if cli.session {
        lockstep::session::announce(x_display.clone());
    }
    cli::announce(
        &socket_str,
        x_display.as_deref(),
        server.state.backend.name(),
    );
    if !cli.command_args.is_empty() {
        spawn_command(
            &cli.command_args,
            &lockstep::action::ChildDisplays::of(&server.state.core),
        )?;
    }

    server.run()?;
    let validation = &server.state.core.sync_validation;
    if validation.enabled() {
        let summary = validation.summary();
        if summary.is_empty() {
            info!("explicit-sync validation: no mistakes recorded");
        }
        for (kind, count) in summary {
            warn!(?kind, count, "explicit-sync validation summary");
        }
    }
    info!("shutting down");
    Ok(ExitCode::SUCCESS)
}

/// Whether lockstep was started on a virtual terminal (a text console, /dev/ttyN), where
/// `auto` means KMS.
fn on_a_vt() -> bool {
    let Ok(tty) = std::fs::read_link("/proc/self/fd/0") else {
        return false;
    };
    let name = tty.to_string_lossy();
    name.strip_prefix("/dev/tty")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn unreachable_auto() -> ! {
    // `auto` is resolved to a concrete backend above.
    std::process::abort()
}

/// The headless outputs: from `--output` if given, else from the config's `[[output]]`
/// entries that have a mode, else one default output. Outputs are named HEADLESS-1, -2, … in
/// that order; a config entry of that name (or the unnamed entry) gives scale and position.
fn virtual_outputs(cli_outputs: &[Mode], config: &Config) -> Result<Vec<VirtualOutput>> {
    let modes: Vec<Mode> = if !cli_outputs.is_empty() {
        cli_outputs.to_vec()
    } else {
        config
            .outputs
            .iter()
            .filter(|o| o.enabled)
            .filter_map(|o| o.mode)
            .collect()
    };
    let modes = if modes.is_empty() {
        vec![Mode {
            width: 1280,
            height: 720,
            refresh_mhz: None,
        }]
    } else {
        modes
    };
    Ok(modes
        .iter()
        .enumerate()
        .map(|(i, mode)| {
            let entry = config.output(&format!("HEADLESS-{}", i + 1));
            VirtualOutput {
                size: (mode.width as i32, mode.height as i32),
                refresh_mhz: mode.refresh_mhz.map(|r| r as i32).unwrap_or(60_000),
                scale: entry.map(|e| e.scale).unwrap_or(1.0),
                position: entry.and_then(|e| e.position.as_ref()).map(|p| (p.x, p.y)),
            }
        })
        .collect())
}

fn spawn_command(args: &[OsString], displays: &lockstep::action::ChildDisplays) -> Result<()> {
    if args.is_empty() {
        return Err(anyhow!("empty command after --"));
    }
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    lockstep::action::spawn_program(&args, displays)?;
    Ok(())
}

/// Blocks SIGINT and SIGTERM in every thread so they arrive only through the signalfd.
fn block_signals() -> Result<()> {
    // SAFETY: sigset_t is plain data that sigemptyset initialises before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; the calls only modify it and the calling thread's
    // mask. This runs before any other thread exists, so all later threads inherit the mask.
    let rc = unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
    };
    if rc != 0 {
        bail!("cannot block SIGINT/SIGTERM: error {rc}");
    }
    Ok(())
}

/// Stops the event loop cleanly on SIGINT or SIGTERM (the socket files are then removed).
fn watch_signals(server: &mut Server) -> Result<()> {
    // SAFETY: as in block_signals, `set` is initialised by sigemptyset before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; signalfd returns a new fd we own or -1.
    let fd = unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)
    };
    if fd < 0 {
        bail!("signalfd failed: {}", std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by signalfd and is owned by nobody else.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    server
        .event_loop
        .handle()
        .insert_source(
            Generic::new(fd, Interest::READ, smithay::reexports::calloop::Mode::Level),
            |_, fd, state| {
                let mut info = [0u8; 128];
                // SAFETY: reading into a 128-byte buffer, the size of signalfd_siginfo.
                let n = unsafe {
                    libc::read(
                        std::os::fd::AsRawFd::as_raw_fd(&**fd),
                        info.as_mut_ptr().cast(),
                        info.len(),
                    )
                };
                if n > 0 {
                    info!("signal received; shutting down");
                    state.core.loop_signal.stop();
                }
                Ok(PostAction::Continue)
            },
        )
        .map_err(|err| anyhow!("cannot watch signals: {err}"))?;
    Ok(())
}
