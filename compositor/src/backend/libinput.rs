//! Input devices of the KMS backend through libinput, opened via the [`KmsSession`].
//!
//! On a TTY nobody hands us input events: libinput reads the evdev nodes, and the session
//! opens them (seatd/logind revoke them on VT switch; a direct session opens them as root).
//! [`init_input`] picks how libinput finds devices:
//! - **udev backend** when udevd runs (`/run/udev/control` exists): devices of the session's
//!   seat, with hotplug;
//! - **path backend** otherwise (the test VM has no udevd): every `/dev/input/event*` present
//!   at start, added by hand; devices plugged in later are not seen.
//!
//! Events end in [`process_libinput_event`], which calls the same `State` methods as every
//! other input source (input.rs), so the KMS backend exercises the code tests drive.
//!
//! Ctrl+Alt+F1…F12 switches VTs through the session, and Ctrl+Alt+Backspace quits lockstep.
//! The check sits in front of `State::keyboard_key` (evdev codes and the seat's modifier
//! state), so input.rs needs no hook; the key's press and its release never reach clients.
//!
//! On session pause the backend calls [`InputHandle::suspend`] (libinput closes its devices)
//! and on resume [`InputHandle::resume`] (libinput opens them again).
//!
//! ```no_run
//! # fn run(
//! #     loop_handle: &smithay::reexports::calloop::LoopHandle<'static, lockstep::state::State>,
//! #     session: &lockstep::backend::session::KmsSession,
//! # ) -> anyhow::Result<()> {
//! let mut input = lockstep::backend::libinput::init_input(loop_handle, session)?;
//! // on SessionChange::Paused:
//! input.suspend();
//! // on SessionChange::Resumed:
//! input.resume()?;
//! # Ok(()) }
//! ```

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use smithay::{
    backend::{
        input::{Device, DeviceCapability, InputEvent, KeyState, KeyboardKeyEvent},
        libinput::{LibinputInputBackend, LibinputSessionInterface},
        session::Session,
    },
    reexports::{
        calloop::{LoopHandle, RegistrationToken},
        input::Libinput,
    },
};
use tracing::{debug, info, warn};

use super::session::{udevd_running, KmsSession};
use crate::{
    input::{evdev_key_code, process_input_event},
    state::State,
};

/// The running libinput context; the backend suspends and resumes it with the session.
#[derive(Debug)]
pub struct InputHandle {
    libinput: Libinput,
    kind: &'static str,
    token: RegistrationToken,
}

impl InputHandle {
    /// Closes every input device (the session was paused; the fds are revoked anyway).
    pub fn suspend(&mut self) {
        debug!("suspending libinput");
        self.libinput.suspend();
    }

    /// Opens the input devices again after the session resumed.
    pub fn resume(&mut self) -> anyhow::Result<()> {
        debug!("resuming libinput");
        self.libinput
            .resume()
            .map_err(|()| anyhow::anyhow!("libinput could not reopen the input devices"))
    }

    /// `"udev"` or `"path"`: how libinput finds devices.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The event source's token, to remove it from the loop.
    pub fn token(&self) -> RegistrationToken {
        self.token
    }
}

/// Starts libinput on `session` and puts it on the event loop (see the module docs for which
/// libinput backend is used).
pub fn init_input(
    loop_handle: &LoopHandle<'static, State>,
    session: &KmsSession,
) -> anyhow::Result<InputHandle> {
    let interface = LibinputSessionInterface::from(session.clone());
    let (libinput, kind) = if udevd_running() {
        let mut libinput = Libinput::new_with_udev(interface);
        let seat = session.seat();
        libinput.udev_assign_seat(&seat).map_err(|()| {
            anyhow::anyhow!("libinput cannot use the input devices of seat {seat:?} via udev")
        })?;
        info!(%seat, "libinput: udev backend");
        (libinput, "udev")
    } else {
        let mut libinput = Libinput::new_from_path(interface);
        let nodes = input_event_nodes(Path::new("/dev/input"));
        let added = nodes
            .iter()
            .filter(|path| {
                // Nodes come from read_dir and have no NUL; non-UTF-8 names are not evdev's.
                let Some(path_str) = path.to_str() else {
                    return false;
                };
                let ok = libinput.path_add_device(path_str).is_some();
                if !ok {
                    debug!(path = %path.display(), "libinput did not take the device");
                }
                ok
            })
            .count();
        if added == 0 {
            warn!(
                nodes = nodes.len(),
                "libinput: path backend (no udevd) found no usable device in /dev/input"
            );
        } else {
            info!(
                devices = added,
                nodes = nodes.len(),
                "libinput: path backend (no udevd); devices plugged in later are not seen"
            );
        }
        (libinput, "path")
    };
    let backend = LibinputInputBackend::new(libinput.clone());
    let mut vt_session = session.clone();
    let mut vt_keys = VtSwitchKeys::default();
    let token = loop_handle
        .insert_source(backend, move |event, _, state| {
            if let InputEvent::Keyboard { event } = &event {
                let code = evdev_key_code(event);
                let pressed = event.state() == KeyState::Pressed;
                let ctrl_alt = state
                    .core
                    .seat
                    .get_keyboard()
                    .map(|kb| kb.modifier_state())
                    .is_some_and(|mods| mods.ctrl && mods.alt);
                match vt_keys.filter(code, pressed, ctrl_alt) {
                    VtKey::Switch(vt) => {
                        info!(vt, "switching VT");
                        if let Err(err) = vt_session.change_vt(vt) {
                            warn!(%err, vt, "cannot switch VT");
                        }
                        return;
                    }
                    VtKey::Quit if state.core.is_locked() => {
                        // Quitting would hand the console (the user's login shell) to
                        // whoever is at the keyboard.
                        info!("Ctrl+Alt+Backspace while the session is locked: ignored");
                        return;
                    }
                    VtKey::Quit => {
                        info!("Ctrl+Alt+Backspace: quitting");
                        state.core.loop_signal.stop();
                        return;
                    }
                    VtKey::Swallow => return,
                    VtKey::Pass => {}
                }
            }
            process_libinput_event(state, event);
        })
        .map_err(|err| anyhow::anyhow!("cannot watch libinput: {err}"))?;
    Ok(InputHandle {
        libinput,
        kind,
        token,
    })
}

/// The `eventN` nodes in `dir`, by number.
fn input_event_nodes(dir: &Path) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            warn!(%err, dir = %dir.display(), "cannot list input devices");
            return Vec::new();
        }
    };
    let mut nodes: Vec<(u32, PathBuf)> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name();
            let n = name.to_str()?.strip_prefix("event")?.parse().ok()?;
            Some((n, entry.path()))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, path)| path).collect()
}

/// What to do with a key event, as far as VT switching goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VtKey {
    /// Switch to this VT; the key does not reach clients.
    Switch(i32),
    /// Ctrl+Alt+Backspace: quit lockstep (the way out of a session without a terminal).
    Quit,
    /// The release of a key that switched VTs: clients never saw its press.
    Swallow,
    /// Not ours: to the seat.
    Pass,
}

/// Recognises Ctrl+Alt+F1…F12 and remembers which F-keys it took, so their releases are
/// taken too.
#[derive(Debug, Default)]
struct VtSwitchKeys {
    taken: HashSet<u32>,
}

impl VtSwitchKeys {
    /// `code` is an evdev key code; `ctrl_alt` whether Ctrl and Alt are held.
    fn filter(&mut self, code: u32, pressed: bool, ctrl_alt: bool) -> VtKey {
        if pressed {
            if ctrl_alt && code == KEY_BACKSPACE {
                self.taken.insert(code);
                return VtKey::Quit;
            }
            match vt_of_key(code).filter(|_| ctrl_alt) {
                Some(vt) => {
                    self.taken.insert(code);
                    VtKey::Switch(vt)
                }
                None => {
                    // A press we pass on: its release must pass too, even if an earlier
                    // release was lost while the session was paused.
                    self.taken.remove(&code);
                    VtKey::Pass
                }
            }
        } else if self.taken.remove(&code) {
            VtKey::Swallow
        } else {
            VtKey::Pass
        }
    }
}

/// evdev's KEY_BACKSPACE.
const KEY_BACKSPACE: u32 = 14;

/// The VT that Ctrl+Alt+`code` switches to: F1…F12 (evdev KEY_F1 = 59 … KEY_F10 = 68,
/// KEY_F11 = 87, KEY_F12 = 88).
fn vt_of_key(code: u32) -> Option<i32> {
    match code {
        59..=68 => Some(code as i32 - 58),
        87 | 88 => Some(code as i32 - 76),
        _ => None,
    }
}

/// Feeds one libinput event to the seat: device arrivals give the seat touch when a touch
/// device appears; everything else goes through [`crate::input::process_input_event`].
pub fn process_libinput_event(state: &mut State, event: InputEvent<LibinputInputBackend>) {
    match event {
        InputEvent::DeviceAdded { device } => {
            let touch = Device::has_capability(&device, DeviceCapability::Touch);
            info!(name = device.name(), touch, "input device added");
            if touch {
                state.add_touch();
            }
        }
        InputEvent::DeviceRemoved { device } => {
            info!(name = device.name(), "input device removed");
        }
        event => process_input_event(state, event),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_nodes_by_number_only() {
        let dir = std::env::temp_dir().join(format!("lockstep-input-nodes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("by-id")).unwrap();
        for name in [
            "event10", "event2", "mouse0", "mice", "event0", "eventX", "js0",
        ] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        let nodes = input_event_nodes(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            nodes,
            vec![dir.join("event0"), dir.join("event2"), dir.join("event10")]
        );
    }

    #[test]
    fn missing_input_dir_is_empty() {
        assert!(input_event_nodes(Path::new("/nonexistent/lockstep/input")).is_empty());
    }

    #[test]
    fn function_keys_map_to_vts() {
        assert_eq!(vt_of_key(59), Some(1));
        assert_eq!(vt_of_key(68), Some(10));
        assert_eq!(vt_of_key(87), Some(11));
        assert_eq!(vt_of_key(88), Some(12));
        assert_eq!(vt_of_key(58), None);
        assert_eq!(vt_of_key(69), None);
        assert_eq!(vt_of_key(30), None);
    }

    #[test]
    fn ctrl_alt_backspace_quits_and_plain_backspace_passes() {
        let mut keys = VtSwitchKeys::default();
        assert_eq!(keys.filter(KEY_BACKSPACE, true, false), VtKey::Pass);
        assert_eq!(keys.filter(KEY_BACKSPACE, false, false), VtKey::Pass);
        assert_eq!(keys.filter(KEY_BACKSPACE, true, true), VtKey::Quit);
        assert_eq!(keys.filter(KEY_BACKSPACE, false, true), VtKey::Swallow);
    }

    #[test]
    fn ctrl_alt_f_key_switches_and_its_release_is_swallowed() {
        let mut keys = VtSwitchKeys::default();
        // F2 without modifiers goes to clients.
        assert_eq!(keys.filter(60, true, false), VtKey::Pass);
        assert_eq!(keys.filter(60, false, false), VtKey::Pass);
        // Ctrl+Alt+F2 switches; the release is ours even if Ctrl/Alt were let go first.
        assert_eq!(keys.filter(60, true, true), VtKey::Switch(2));
        assert_eq!(keys.filter(60, false, false), VtKey::Swallow);
        // Other keys with Ctrl+Alt pass.
        assert_eq!(keys.filter(30, true, true), VtKey::Pass);
        assert_eq!(keys.filter(30, false, true), VtKey::Pass);
    }

    #[test]
    fn lost_release_does_not_swallow_a_later_plain_press() {
        let mut keys = VtSwitchKeys::default();
        assert_eq!(keys.filter(59, true, true), VtKey::Switch(1));
        // The session paused; the release never came. A later plain F1 goes to clients,
        // press and release.
        assert_eq!(keys.filter(59, true, false), VtKey::Pass);
        assert_eq!(keys.filter(59, false, false), VtKey::Pass);
    }
}
