//! ext_session_lock_v1: the lock screen (swaylock, gtklock, hyprlock).
//!
//! # What locked means here
//!
//! From the moment a client asks to lock, every output shows only its lock surface, or a
//! solid colour (`[lock] color`) where the locker has not drawn yet; windows, layer surfaces
//! and popups are neither drawn nor given input ([`crate::render`] and `input.rs` ask
//! [`Core::is_locked`]). Screenshots and screencopy see the same frame, so they show only the
//! lock. The keyboard goes to the lock surface of the focused output; key bindings do
//! nothing unless marked `allow_when_locked` (`bindings.rs`), and Ctrl+Alt+Backspace does
//! not quit lockstep (that would give the text console, and with it the user's shell, to
//! whoever is at the keyboard). VT switching still works: the other VTs have their own
//! logins.
//!
//! `locked` is sent once every output has rendered a frame of the locked state, as the
//! protocol requires (no unlocked content may still be visible). `unlock_and_destroy` from
//! the lock that holds the session unlocks; from any other lock object (one that got
//! `finished`, or one that is not confirmed yet) it is the protocol's `invalid_unlock`.
//!
//! # A second lock, and a dead locker
//!
//! A `lock` request while a living client holds the lock gets `finished` (smithay sends it
//! when the `SessionLocker` is dropped). When the client holding the lock dies (it crashed,
//! was killed, or broke the protocol) the session **stays locked** and every output shows
//! `[lock] abandoned_color`, like sway. A new `lock` request is then accepted and takes the
//! lock over, so a user recovers by starting a new locker, e.g. from another VT:
//! `WAYLAND_DISPLAY=wayland-1 swaylock`. Nothing else unlocks: not IPC, not a key binding.
//!
//! # The smithay glue
//!
//! smithay 0.7's `SessionLockHandler::unlock` does not say which lock object asked, and
//! smithay calls it even after posting `invalid_unlock` on a lock that was never confirmed.
//! lockstep therefore dispatches `ext_session_lock_v1` itself ([`Dispatch`] below) and only
//! forwards an `unlock_and_destroy` of the confirmed, current lock; everything else goes to
//! smithay unchanged. The same impl notices the lock object's destruction (client death).
//!
//! The global is privileged (`security_context.rs`): a sandboxed client cannot lock.

use std::collections::HashSet;

use smithay::{
    output::Output,
    reexports::{
        wayland_protocols::ext::session_lock::v1::server::ext_session_lock_v1::{
            self, ExtSessionLockV1,
        },
        wayland_server::{
            backend::ClientId, protocol::wl_output::WlOutput, protocol::wl_surface::WlSurface,
            Client, DataInit, Dispatch, DisplayHandle, Resource,
        },
    },
    utils::{Logical, Size, SERIAL_COUNTER},
    wayland::session_lock::{
        LockSurface, SessionLockHandler, SessionLockManagerState, SessionLockState, SessionLocker,
    },
};
use tracing::{info, warn};

use crate::{
    frame_clock::{queue_redraw, queue_redraw_all},
    state::{Core, State},
};

/// The session lock: the global and where the session stands.
pub struct SessionLock {
    /// The ext_session_lock_manager_v1 global.
    pub manager: SessionLockManagerState,
    /// Unlocked, locked by a client, or abandoned by one.
    pub status: LockStatus,
}

/// Where the session stands.
pub enum LockStatus {
    /// Normal desktop.
    Unlocked,
    /// A living client holds the lock.
    Locked(Box<ActiveLock>),
    /// The client that held the lock died: still locked, solid colour, a new lock may take
    /// over.
    Abandoned,
}

/// The lock a living client holds.
pub struct ActiveLock {
    /// Its ext_session_lock_v1.
    lock: ExtSessionLockV1,
    /// Until every output showed a locked frame: the confirmation to send, and the outputs
    /// still to render one.
    pending: Option<(SessionLocker, HashSet<String>)>,
    /// Its lock surfaces, by output name.
    surfaces: Vec<(String, LockSurface)>,
}

impl SessionLock {
    /// Creates the global (privileged: sandboxed clients do not see it).
    pub fn new(dh: &DisplayHandle) -> Self {
        Self {
            manager: SessionLockManagerState::new::<State, _>(
                dh,
                crate::handlers::security_context::may_use_privileged,
            ),
            status: LockStatus::Unlocked,
        }
    }

    /// The lock surface shown on output `name`, if the current locker made a live one.
    pub fn surface_on(&self, name: &str) -> Option<&LockSurface> {
        match &self.status {
            LockStatus::Locked(active) => active
                .surfaces
                .iter()
                .find(|(o, s)| o == name && s.alive())
                .map(|(_, s)| s),
            _ => None,
        }
    }

    /// Whether `lock` is the confirmed lock that holds the session.
    fn is_confirmed(&self, lock: &ExtSessionLockV1) -> bool {
        matches!(&self.status, LockStatus::Locked(a) if a.lock == *lock && a.pending.is_none())
    }

    /// A short word for IPC: `unlocked`, `locking`, `locked` or `abandoned`.
    pub fn describe(&self) -> &'static str {
        match &self.status {
            LockStatus::Unlocked => "unlocked",
            LockStatus::Locked(a) if a.pending.is_some() => "locking",
            LockStatus::Locked(_) => "locked",
            LockStatus::Abandoned => "abandoned",
        }
    }
}

impl Core {
    /// Whether the session is locked (also while the lock waits for its first frames, and
    /// after the locker died).
    pub fn is_locked(&self) -> bool {
        !matches!(self.protocols.session_lock.status, LockStatus::Unlocked)
    }

    /// The colour an output shows where no lock surface is drawn: `[lock] color`, or
    /// `abandoned_color` after the locker died. `None` when unlocked.
    pub fn lock_fill(&self) -> Option<(u8, u8, u8)> {
        let lock = &self.config.lock;
        let text = match self.protocols.session_lock.status {
            LockStatus::Unlocked => return None,
            LockStatus::Locked(_) => &lock.color,
            LockStatus::Abandoned => &lock.abandoned_color,
        };
        Some(lockstep_config::parse_color(text).unwrap_or((0, 0, 0)))
    }

    /// The lock surface that should have keyboard focus: the one on the focused output, else
    /// any.
    pub fn lock_focus(&self) -> Option<WlSurface> {
        let LockStatus::Locked(active) = &self.protocols.session_lock.status else {
            return None;
        };
        let focused_output = self.layout.active_output().map(|o| o.name.clone());
        active
            .surfaces
            .iter()
            .filter(|(_, s)| s.alive())
            .find(|(o, _)| Some(o) == focused_output.as_ref())
            .or_else(|| active.surfaces.iter().find(|(_, s)| s.alive()))
            .map(|(_, s)| s.wl_surface().clone())
    }
}

/// `output`'s logical size, as a lock surface is configured.
fn lock_size(output: &Output) -> Size<u32, Logical> {
    let size = output
        .current_mode()
        .map(|mode| {
            mode.size
                .to_f64()
                .to_logical(output.current_scale().fractional_scale())
                .to_i32_round::<i32>()
        })
        .unwrap_or_default();
    let size = output.current_transform().transform_size(size);
    Size::from((size.w.max(1) as u32, size.h.max(1) as u32))
}

/// After `output` rendered a frame: a pending lock is confirmed (`locked`) once every output
/// has shown one.
pub fn after_output_render(core: &mut Core, output: &Output) {
    let LockStatus::Locked(active) = &mut core.protocols.session_lock.status else {
        return;
    };
    let Some((_, waiting)) = active.pending.as_mut() else {
        return;
    };
    waiting.remove(&output.name());
    if waiting.is_empty() {
        confirm(active);
    }
}

fn confirm(active: &mut ActiveLock) {
    if let Some((locker, _)) = active.pending.take() {
        info!("session locked");
        locker.lock();
    }
}

/// Outputs changed (added, removed, new mode or scale): lock surfaces are configured to
/// their output's size again, those of removed outputs are dropped, and a pending lock no
/// longer waits for a removed output.
pub fn outputs_changed(core: &mut Core) {
    let outputs: Vec<Output> = core.space.outputs().cloned().collect();
    let LockStatus::Locked(active) = &mut core.protocols.session_lock.status else {
        return;
    };
    active
        .surfaces
        .retain(|(name, s)| s.alive() && outputs.iter().any(|o| o.name() == *name));
    for (name, surface) in &active.surfaces {
        if let Some(output) = outputs.iter().find(|o| o.name() == *name) {
            let size = lock_size(output);
            if surface.with_pending_state(|state| state.size.replace(size) != Some(size)) {
                surface.send_configure();
            }
        }
    }
    if let Some((_, waiting)) = active.pending.as_mut() {
        waiting.retain(|name| outputs.iter().any(|o| o.name() == *name));
        if waiting.is_empty() {
            confirm(active);
        }
    }
}

impl SessionLockHandler for State {
    fn lock_state(&mut self) -> &mut SessionLockManagerState {
        &mut self.core.protocols.session_lock.manager
    }

    fn lock(&mut self, confirmation: SessionLocker) {
        if let LockStatus::Locked(active) = &self.core.protocols.session_lock.status {
            if active.lock.is_alive() {
                info!("a second lock while the session is locked: finished");
                // Dropping the locker sends `finished`.
                drop(confirmation);
                return;
            }
        }
        let took_over = matches!(
            self.core.protocols.session_lock.status,
            LockStatus::Abandoned | LockStatus::Locked(_)
        );
        let outputs: HashSet<String> = self.core.space.outputs().map(|o| o.name()).collect();
        let no_outputs = outputs.is_empty();
        let mut active = ActiveLock {
            lock: confirmation.ext_session_lock().clone(),
            pending: Some((confirmation, outputs)),
            surfaces: Vec::new(),
        };
        if no_outputs {
            // Nothing can show unlocked content: locked at once.
            confirm(&mut active);
        }
        if took_over {
            info!("a new locker took over the abandoned lock");
        } else {
            info!("locking the session");
        }
        self.core.protocols.session_lock.status = LockStatus::Locked(Box::new(active));
        self.end_grabs();
        queue_redraw_all(&mut self.core);
    }

    fn unlock(&mut self) {
        info!("session unlocked");
        self.core.protocols.session_lock.status = LockStatus::Unlocked;
        // The keyboard goes back to the layout's window (after_dispatch sees the lock gone).
        crate::shell::queue_pointer_refresh(&mut self.core);
        queue_redraw_all(&mut self.core);
    }

    fn new_surface(&mut self, surface: LockSurface, output: WlOutput) {
        let Some(output) = Output::from_resource(&output) else {
            warn!("a lock surface for an output that is gone; it stays blank");
            return;
        };
        let LockStatus::Locked(active) = &mut self.core.protocols.session_lock.status else {
            return;
        };
        // Only the locker that holds the lock shows surfaces; one that got `finished` may
        // still make some before it notices.
        if surface.wl_surface().client().map(|c| c.id()) != active.lock.client().map(|c| c.id()) {
            return;
        }
        let size = lock_size(&output);
        surface.with_pending_state(|state| state.size = Some(size));
        let name = output.name();
        active.surfaces.retain(|(o, s)| *o != name && s.alive());
        active.surfaces.push((name, surface));
        queue_redraw(&mut self.core, &output);
        // smithay sends the configure after this returns.
    }
}

impl State {
    /// Ends pointer and keyboard grabs (a popup menu, a window drag): nothing behind the
    /// lock may keep getting input.
    fn end_grabs(&mut self) {
        let serial = SERIAL_COUNTER.next_serial();
        if let Some(pointer) = self.core.seat.get_pointer() {
            if pointer.is_grabbed() {
                let time = self.core.now().as_millis() as u32;
                pointer.unset_grab(self, serial, time);
            }
        }
        if let Some(keyboard) = self.core.seat.get_keyboard() {
            if keyboard.is_grabbed() {
                keyboard.unset_grab(self);
            }
            keyboard.set_focus(self, None, serial);
        }
        self.set_pointer_contact(None);
        crate::shell::queue_pointer_refresh(&mut self.core);
    }

    /// The lock object `lock` is gone. If it held the session, the session stays locked,
    /// abandoned.
    fn lock_object_destroyed(&mut self, lock: &ExtSessionLockV1) {
        let held = matches!(
            &self.core.protocols.session_lock.status,
            LockStatus::Locked(active) if active.lock == *lock
        );
        if held {
            warn!(
                "the lock client went away without unlocking: the session stays locked; \
                 start a new locker (e.g. `swaylock`) to unlock"
            );
            self.core.protocols.session_lock.status = LockStatus::Abandoned;
            queue_redraw_all(&mut self.core);
        }
    }
}

/// lockstep's own dispatch of ext_session_lock_v1: see the module docs.
impl Dispatch<ExtSessionLockV1, SessionLockState> for State {
    fn request(
        state: &mut Self,
        client: &Client,
        resource: &ExtSessionLockV1,
        request: ext_session_lock_v1::Request,
        data: &SessionLockState,
        dhandle: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if matches!(request, ext_session_lock_v1::Request::UnlockAndDestroy)
            && !state.core.protocols.session_lock.is_confirmed(resource)
        {
            resource.post_error(
                ext_session_lock_v1::Error::InvalidUnlock,
                "unlock_and_destroy on a lock that has not received `locked` (it was finished, \
                 or is not confirmed yet)",
            );
            return;
        }
        <SessionLockManagerState as Dispatch<ExtSessionLockV1, SessionLockState, Self>>::request(
            state, client, resource, request, data, dhandle, data_init,
        );
    }

    fn destroyed(
        state: &mut Self,
        client: ClientId,
        resource: &ExtSessionLockV1,
        data: &SessionLockState,
    ) {
        state.lock_object_destroyed(resource);
        <SessionLockManagerState as Dispatch<ExtSessionLockV1, SessionLockState, Self>>::destroyed(
            state, client, resource, data,
        );
    }
}

smithay::reexports::wayland_server::delegate_global_dispatch!(State: [
    smithay::reexports::wayland_protocols::ext::session_lock::v1::server::ext_session_lock_manager_v1::ExtSessionLockManagerV1: smithay::wayland::session_lock::SessionLockManagerGlobalData
] => SessionLockManagerState);
smithay::reexports::wayland_server::delegate_dispatch!(State: [
    smithay::reexports::wayland_protocols::ext::session_lock::v1::server::ext_session_lock_manager_v1::ExtSessionLockManagerV1: ()
] => SessionLockManagerState);
smithay::reexports::wayland_server::delegate_dispatch!(State: [
    smithay::reexports::wayland_protocols::ext::session_lock::v1::server::ext_session_lock_surface_v1::ExtSessionLockSurfaceV1: smithay::wayland::session_lock::ExtLockSurfaceUserData
] => SessionLockManagerState);
