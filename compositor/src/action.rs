//! Actions: everything a user can ask lockstep to do, and the one place that does it.
//!
//! Key bindings (`bindings.rs`) and IPC (`lockstep msg action ...`, `ipc.rs`) both end in
//! [`run`], so every binding can be tested over IPC and the list is documented once (the
//! README's action table). The [`Action`] type and its word grammar (`"workspace 3"`) live
//! in the config crate, so that a misspelt action in `[binds]` is a load-time error with a
//! line and column; this module re-exports it and executes it.
//!
//! Window actions act on the focused window through the layout, then apply the layout
//! (`shell::apply_layout`), which configures the toplevels and lets keyboard focus follow.
//! Programs are started with the Wayland socket in `WAYLAND_DISPLAY` and lockstep's own X11
//! display in `DISPLAY` when Xwayland is on (never the host's `DISPLAY`), with the open-file limit and signal mask lockstep itself started with, and are
//! reaped on a thread of their own so the event loop never waits for them.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

pub use lockstep_config::{Action, Direction};
use tracing::{info, warn};

use crate::{layout, shell, state::State};

/// Why an action could not run.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The program could not be started.
    #[error("cannot start {program:?}: {source}; is it installed and on PATH?")]
    Spawn {
        /// What was started.
        program: String,
        /// Why not.
        source: std::io::Error,
    },
    /// `terminal` found none of the terminals it looks for.
    #[error("no terminal found: install foot or weston-terminal, or set $TERMINAL")]
    NoTerminal,
    /// `launcher` found no launcher.
    #[error("no launcher found: install fuzzel, or bind Super+D to `spawn <your launcher>`")]
    NoLauncher,
    /// A window id that does not exist.
    #[error("no window {0}; `lockstep msg windows` lists their ids")]
    NoSuchWindow(u64),
    /// An output name that does not exist.
    #[error("no output named {0:?}")]
    NoSuchOutput(String),
    /// An empty workspace name.
    #[error("a workspace needs a number or a name")]
    BadWorkspace,
    /// The config file could not be loaded; the running config stays.
    #[error("the config was not reloaded (the running config stays): {0}")]
    Config(String),
    /// No output to take a screenshot of.
    #[error("no output to take a screenshot of")]
    NoOutput,
    /// An output could not be turned on or off.
    #[error("output power: {0}")]
    Power(String),
    /// Capturing the output failed.
    #[error("screenshot failed: {0}")]
    Capture(String),
}

/// Runs `action`; `Ok` carries a short description of what happened (for IPC and logs).
pub fn run(state: &mut State, action: &Action) -> Result<String, ActionError> {
    info!(?action, "action");
    let core = &mut state.core;
    let done = |what: &str| Ok(what.to_owned());
    let result = match action {
        Action::Spawn(args) => spawn_program(args, &ChildDisplays::of(core)),
        Action::SpawnSh(command) => spawn_program(
            &["sh".to_owned(), "-c".to_owned(), command.clone()],
            &ChildDisplays::of(core),
        ),
        Action::Terminal => {
            let terminal = find_terminal().ok_or(ActionError::NoTerminal)?;
            spawn_program(&terminal, &ChildDisplays::of(core))
        }
        Action::Launcher => {
            let launcher = find_in_path("fuzzel").ok_or(ActionError::NoLauncher)?;
            spawn_program(
                &[launcher.to_string_lossy().into_owned()],
                &ChildDisplays::of(core),
            )
        }
        Action::Close => {
            return match core.layout.focused() {
                Some(id) => run_on_window(state, id, WindowAction::Close),
                None => done("no window has focus"),
            };
        }
        Action::Focus(direction) => {
            core.layout.focus_direction(*direction);
            done("focus moved")
        }
        Action::Move(direction, px) => {
            let px = px.map_or(layout::FLOAT_STEP, |px| {
                i32::try_from(px).unwrap_or(layout::FLOAT_STEP)
            });
            core.layout.move_direction_by(*direction, px);
            done("window moved")
        }
        Action::Workspace(name) => {
            let id = layout::WorkspaceId::parse(name).ok_or(ActionError::BadWorkspace)?;
            core.layout.switch_workspace(&id);
            Ok(format!("workspace {id} shown"))
        }
        Action::MoveToWorkspace(name) => {
            let id = layout::WorkspaceId::parse(name).ok_or(ActionError::BadWorkspace)?;
            core.layout.move_to_workspace(id.clone());
            Ok(format!("moved to workspace {id}"))
        }
        Action::MoveWorkspaceToOutput(name) => {
            if !core.layout.outputs().iter().any(|o| &o.name == name) {
                return Err(ActionError::NoSuchOutput(name.clone()));
            }
            core.layout.move_workspace_to_output(name);
            Ok(format!("workspace moved to {name}"))
        }
        Action::Resize(resize) => {
            let amount = i32::try_from(resize.amount).unwrap_or(i32::MAX);
            let delta = if resize.grow { amount } else { -amount };
            match core.layout.resize_focused(resize.axis, delta, resize.unit) {
                layout::ResizeOutcome::Unchanged => done("nothing to resize that way"),
                layout::ResizeOutcome::MasterRatio(ratio) => {
                    Ok(format!("master column at {:.0} %", ratio * 100.0))
                }
                layout::ResizeOutcome::StackShare(share) => Ok(format!(
                    "window at {:.0} % of the stack column",
                    share * 100.0
                )),
                layout::ResizeOutcome::Floating(id, size) => {
                    if let Some(window) = core.windows.get(&id) {
                        shell::request_size(window, size);
                    }
                    Ok(format!("window {id} resized to {}x{}", size.w, size.h))
                }
            }
        }
        Action::ToggleFloating => {
            core.layout.toggle_floating();
            done("floating toggled")
        }
        Action::Fullscreen => {
            return match core.layout.focused() {
                Some(id) => run_on_window(state, id, WindowAction::Fullscreen(None)),
                None => done("no window has focus"),
            };
        }
        Action::Maximize => {
            return match core.layout.focused() {
                Some(id) => run_on_window(state, id, WindowAction::Maximize(None)),
                None => done("no window has focus"),
            };
        }
        Action::Minimize => {
            return match core.layout.focused() {
                Some(id) => run_on_window(state, id, WindowAction::Minimize(Some(true))),
                None => done("no window has focus"),
            };
        }
        Action::Unminimize => match core.layout.unminimize_last() {
            Some(id) => Ok(format!("window {id} back")),
            None => done("no minimized window on this workspace"),
        },
        Action::FocusWindow(id) => {
            let id = layout::WindowId(*id);
            if !core.layout.contains(id) {
                return Err(ActionError::NoSuchWindow(id.0));
            }
            return run_on_window(state, id, WindowAction::Activate);
        }
        Action::ReloadConfig => return reload_config(state),
        Action::Quit => {
            info!("quitting (quit action)");
            core.loop_signal.stop();
            return done("quitting");
        }
        Action::Screenshot(path) => return screenshot(state, path.clone()),
        Action::PowerOutputs(on) => {
            let what = if *on { "on" } else { "off" };
            return match state.set_all_outputs_power(*on) {
                Ok(n) => Ok(format!("{n} outputs powered {what}")),
                Err(err) => Err(ActionError::Power(err)),
            };
        }
        Action::None => return done("nothing to do"),
    };
    shell::apply_layout(&mut state.core);
    state.core.focus_dirty = false;
    shell::sync_keyboard_focus(state);
    result
}

/// What can be done to one window: the window actions of key bindings act on the focused
/// one; taskbars (foreign-toplevel management) name the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowAction {
    /// Focus it, showing its workspace on its output (a click on it), bringing it back
    /// when minimized.
    Activate,
    /// Ask it to close.
    Close,
    /// Fullscreen on (`Some(true)`), off, or toggled (`None`).
    Fullscreen(Option<bool>),
    /// Maximize on, off, or toggled (`None`).
    Maximize(Option<bool>),
    /// Minimize (`Some(true)`), bring back and focus (`Some(false)`), or toggle (`None`).
    Minimize(Option<bool>),
}

/// Runs `action` on window `id` through the layout, like the key bindings do for the
/// focused window.
pub fn run_on_window(
    state: &mut State,
    id: layout::WindowId,
    action: WindowAction,
) -> Result<String, ActionError> {
    let core = &mut state.core;
    let Some(window) = core.windows.get(&id).cloned() else {
        return Ok(format!("no window {id}"));
    };
    let what = match action {
        WindowAction::Activate => {
            shell::focus_window(state, &window);
            return Ok(format!("window {id} focused"));
        }
        WindowAction::Close => {
            if let Some(toplevel) = window.toplevel() {
                toplevel.send_close();
            } else if let Some(x11) = window.x11_surface() {
                // WM_DELETE_WINDOW, and a kill only on a second request.
                return Ok(crate::xwayland::wm::close(x11).to_string());
            }
            return Ok(format!("asked window {id} to close"));
        }
        WindowAction::Fullscreen(on) => {
            core.layout.set_fullscreen(id, on);
            "fullscreen"
        }
        WindowAction::Maximize(on) => {
            core.layout.set_maximized(id, on);
            "maximize"
        }
        WindowAction::Minimize(on) => {
            core.layout.set_minimized(id, on);
            "minimize"
        }
    };
    shell::apply_layout(&mut state.core);
    state.core.focus_dirty = false;
    shell::sync_keyboard_focus(state);
    Ok(format!("{what} of window {id} changed"))
}

/// Reads the config file again; an invalid file keeps the running config and says why.
pub fn reload_config(state: &mut State) -> Result<String, ActionError> {
    let path = state.core.config_path.clone();
    // Everything that can fail is checked before anything changes: a new keymap must compile,
    // the outputs must be able to take their new settings (and their backend work, such as a
    // new KMS pipeline for a new mode, is done before the first output changes).
    let loaded = lockstep_config::Config::load(path.as_deref())
        .map_err(|err| err.to_string())
        .and_then(|loaded| {
            let keyboard = &loaded.config.keyboard;
            if *keyboard != state.core.config.keyboard {
                crate::state::check_keymap(keyboard)
                    .map_err(|err| format!("[keyboard]: {err:#}"))?;
            }
            let outputs =
                crate::output_config::check_reload(state, &state.core.config, &loaded.config)?;
            Ok((loaded, outputs))
        })
        .and_then(|(loaded, outputs)| {
            if let Some(outputs) = outputs {
                crate::output_config::apply_reload(state, outputs)?;
            }
            Ok(loaded)
        });
    match loaded {
        Ok(loaded) => {
            let config = loaded.config;
            if config.keyboard != state.core.config.keyboard {
                apply_keyboard(state, &config.keyboard);
            }
            state
                .core
                .layout
                .set_config(crate::state::layout_config(&config));
            state.core.bindings = crate::bindings::Bindings::new(&config);
            state.core.config = config;
            state.core.notice.clear();
            shell::apply_layout(&mut state.core);
            crate::frame_clock::queue_redraw_all(&mut state.core);
            info!(source = %loaded.source, "config reloaded");
            state
                .core
                .events
                .emit(&crate::events::Event::ConfigReloaded {
                    source: loaded.source.to_string(),
                });
            Ok(format!("config reloaded from {}", loaded.source))
        }
        Err(err) => {
            warn!("config not reloaded, keeping the running one:\n{err}");
            state.core.notice.config_rejected(&err);
            crate::frame_clock::queue_redraw_all(&mut state.core);
            state
                .core
                .events
                .emit(&crate::events::Event::ConfigRejected { error: err.clone() });
            Err(ActionError::Config(err))
        }
    }
}

/// Switches the keyboard to `kb`'s keymap and repeat rate (the keymap was checked to compile).
fn apply_keyboard(state: &mut State, kb: &lockstep_config::KeyboardConfig) {
    let Some(keyboard) = state.core.seat.get_keyboard() else {
        return;
    };
    if let Err(err) = keyboard.set_xkb_config(state, crate::state::xkb_config(kb)) {
        warn!(?err, "the new keymap did not load; the old one stays");
    }
    use crate::state::clamp_i32;
    keyboard.change_repeat_info(clamp_i32(kb.repeat_rate), clamp_i32(kb.repeat_delay));
    info!(layout = %kb.layout, variant = %kb.variant, "keyboard settings applied");
}

fn screenshot(state: &mut State, path: Option<PathBuf>) -> Result<String, ActionError> {
    let output = state
        .core
        .layout
        .active_output()
        .and_then(|o| state.core.output_by_name(&o.name))
        .ok_or(ActionError::NoOutput)?;
    let path = path.unwrap_or_else(default_screenshot_path);
    let frame = state
        .backend
        .capture(&mut state.core, &output)
        .map_err(|err| ActionError::Capture(format!("{err:#}")))?;
    crate::ipc::save_png(frame, path.clone());
    Ok(format!("saving {}", path.display()))
}

/// `$XDG_PICTURES_DIR`, else `$HOME`, else `/tmp`, with a name from the time.
fn default_screenshot_path() -> PathBuf {
    let dir = std::env::var_os("XDG_PICTURES_DIR")
        .or_else(|| std::env::var_os("HOME"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    dir.join(format!("lockstep-{secs}.png"))
}

/// The terminal `terminal` starts: foot, else weston-terminal, else `$TERMINAL`.
pub fn find_terminal() -> Option<Vec<String>> {
    for program in ["foot", "weston-terminal"] {
        if let Some(path) = find_in_path(program) {
            return Some(vec![path.to_string_lossy().into_owned()]);
        }
    }
    let terminal = std::env::var("TERMINAL").ok()?;
    let words: Vec<String> = terminal.split_whitespace().map(str::to_owned).collect();
    (!words.is_empty()).then_some(words)
}

/// `program` on `$PATH`, if it is there and executable.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The displays a program lockstep starts connects to.
#[derive(Debug, Clone, Default)]
pub struct ChildDisplays {
    /// `WAYLAND_DISPLAY`: lockstep's Wayland socket name.
    pub wayland: Option<std::ffi::OsString>,
    /// `DISPLAY`: lockstep's X11 display (`:n`) when Xwayland is on; never the host's.
    pub x11: Option<String>,
}

impl ChildDisplays {
    /// lockstep's own displays.
    pub fn of(core: &crate::state::Core) -> Self {
        Self {
            wayland: core.socket_name.clone(),
            x11: core
                .xwayland
                .xwayland
                .as_ref()
                .map(|x| x.display().to_string()),
        }
    }
}

/// Starts `args` (program and arguments) for the session on `displays`.
pub fn spawn_program(args: &[String], displays: &ChildDisplays) -> Result<String, ActionError> {
    let Some((program, rest)) = args.split_first() else {
        return Err(ActionError::Spawn {
            program: String::new(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
        });
    };
    let mut command = Command::new(program);
    command.args(rest).env_remove("DISPLAY");
    if let Some(socket) = &displays.wayland {
        command.env("WAYLAND_DISPLAY", socket);
    }
    if let Some(display) = &displays.x11 {
        command.env("DISPLAY", display);
    }
    prepare_child(&mut command);
    let mut child = command.spawn().map_err(|source| ActionError::Spawn {
        program: program.clone(),
        source,
    })?;
    let pid = child.id();
    info!(pid, command = ?args, "started program");
    // Reap it off the event loop so it never becomes a zombie.
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let reaper = std::thread::Builder::new()
        .name("lockstep-reap".into())
        .spawn(move || match child.wait() {
            Ok(status) => info!(pid, %status, program = %name, "program exited"),
            Err(err) => warn!(pid, ?err, "waiting for a program failed"),
        });
    if let Err(err) = reaper {
        warn!(pid, %err, "cannot start a thread to reap the program; it stays a zombie when it exits");
    }
    Ok(format!("started {program} (pid {pid})"))
}

/// What every program lockstep starts gets: the open-file limit lockstep started with, and
/// no blocked signals (lockstep blocks SIGINT and SIGTERM to read them from a signalfd, and a
/// blocked mask survives exec: a shell in a terminal started from a binding would otherwise
/// ignore Ctrl+C for everything it runs).
pub fn prepare_child(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    crate::socket::restore_fd_limit_in_child(command);
    // SAFETY: the closure runs in the forked child before exec; sigemptyset and
    // pthread_sigmask are async-signal-safe and it allocates nothing. `set` is a valid,
    // initialised sigset_t on the child's stack.
    unsafe {
        command.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            if libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
