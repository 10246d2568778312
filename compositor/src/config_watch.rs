//! Live config reload: lockstep watches its config file and reloads it when it changes.
//!
//! The watch is on the file's *directory* (inotify), not the file: editors that save by
//! writing a new file and renaming it over the old one (vim, most GUI editors) replace the
//! inode, and a watch on the old inode would never fire again. Any event that names the file
//! (written and closed, created, moved in) arms a short timer, so the burst of events one save
//! makes gives one reload, after the editor is done. The reload is the `reload-config` action:
//! an invalid file keeps the running config and the error goes to the log.
//!
//! When the directory does not exist (no config yet) nothing is watched, and the log says so;
//! `lockstep msg action reload-config` (Super+Shift+C) still reloads by hand. A config reached
//! through a symlink is watched where the link is, so edits to the link's target elsewhere need
//! the reload action too.

use std::{
    ffi::{OsStr, OsString},
    mem::MaybeUninit,
    os::{fd::OwnedFd, unix::ffi::OsStrExt},
    path::PathBuf,
    time::Duration,
};

use rustix::{fs::inotify, io::Errno};
use smithay::reexports::calloop::{
    generic::Generic,
    timer::{TimeoutAction, Timer},
    Interest, Mode, PostAction,
};
use tracing::{debug, info, warn};

use crate::state::State;

/// How long after the last change the file is read again.
pub const SETTLE: Duration = Duration::from_millis(150);

/// Why the config file is not watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// Neither `--config` nor a default path (no `XDG_CONFIG_HOME` or `HOME`).
    #[error("there is no config path to watch")]
    NoPath,
    /// inotify refused.
    #[error("cannot watch {dir}: {source}")]
    Inotify {
        /// The directory.
        dir: PathBuf,
        /// Why not.
        source: Errno,
    },
    /// The event loop refused the source.
    #[error("cannot add the config watch to the event loop: {0}")]
    EventLoop(String),
}

/// Starts watching the config file (`--config`, else the default path).
pub fn watch(state: &mut State) -> Result<PathBuf, WatchError> {
    let path = state
        .core
        .config_path
        .clone()
        .or_else(lockstep_config::default_path)
        .ok_or(WatchError::NoPath)?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_owned())
        .ok_or(WatchError::NoPath)?;
    let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
        .map_err(|source| WatchError::Inotify {
            dir: dir.clone(),
            source,
        })?;
    let flags = inotify::WatchFlags::CLOSE_WRITE
        | inotify::WatchFlags::CREATE
        | inotify::WatchFlags::MOVED_TO
        | inotify::WatchFlags::DELETE
        | inotify::WatchFlags::MOVED_FROM;
    inotify::add_watch(&fd, &dir, flags).map_err(|source| WatchError::Inotify {
        dir: dir.clone(),
        source,
    })?;
    let mut buffer = vec![MaybeUninit::<u8>::uninit(); 4096];
    state
        .core
        .loop_handle
        .insert_source(
            Generic::new(fd, Interest::READ, Mode::Level),
            move |_, fd, state| {
                if names_the_file(fd, &mut buffer, &name) {
                    schedule_reload(state);
                }
                Ok(PostAction::Continue)
            },
        )
        .map_err(|err| WatchError::EventLoop(err.to_string()))?;
    info!(path = %path.display(), "watching the config file for changes");
    Ok(path)
}

/// Drains the pending inotify events; whether one of them is about file `name`.
fn names_the_file(fd: &OwnedFd, buffer: &mut [MaybeUninit<u8>], name: &OsString) -> bool {
    let mut reader = inotify::Reader::new(fd, buffer);
    let mut hit = false;
    loop {
        match reader.next() {
            Ok(event) => {
                // File names from the kernel are bytes, as are unix OsStrs.
                let file = event.file_name().map(|n| OsStr::from_bytes(n.to_bytes()));
                if file.is_some_and(|f| f == name.as_os_str()) {
                    debug!(events = ?event.events(), "config file changed");
                    hit = true;
                }
            }
            Err(Errno::AGAIN) | Err(Errno::INTR) => break,
            Err(err) => {
                warn!(%err, "reading config file events failed");
                break;
            }
        }
    }
    hit
}

/// Reloads once the file has been quiet for [`SETTLE`] (one timer, however many events).
fn schedule_reload(state: &mut State) {
    if state.core.config_reload_pending {
        return;
    }
    state.core.config_reload_pending = true;
    let timer =
        state
            .core
            .loop_handle
            .insert_source(Timer::from_duration(SETTLE), |_, _, state| {
                state.core.config_reload_pending = false;
                // The outcome (reloaded, or kept with the error) is logged by the action.
                let _ = crate::action::reload_config(state);
                crate::shell::sync_keyboard_focus(state);
                TimeoutAction::Drop
            });
    if let Err(err) = timer {
        state.core.config_reload_pending = false;
        warn!(error = %err.error, "cannot time the config reload; use the reload-config action");
    }
}
