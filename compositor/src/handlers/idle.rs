//! ext_idle_notify_v1 and zwp_idle_inhibit_manager_v1: swayidle and friends learn when the
//! user is away (to lock, dim or power off), and a video player keeps that from happening.
//!
//! Every input event counts as activity ([`State::note_activity`], called from the input
//! paths). An inhibitor counts only while its surface is shown on an output: a video in a
//! window on another workspace, or minimised, does not keep the session awake. Whether any
//! inhibitor is in force is worked out again when inhibitors come and go and once per loop
//! iteration while there are some (a handful of surfaces: cheap).
//!
//! The notifier is lockstep's own (`lockstep_protocols::ext_idle_notify`: one timer for all
//! notifications; smithay 0.7's kept a timer per destroyed notification until it fired).

use lockstep_protocols::ext_idle_notify::{IdleNotifyHandler, IdleNotifyState};
use smithay::{
    delegate_idle_inhibit,
    reexports::wayland_server::{protocol::wl_surface::WlSurface, Resource},
    wayland::idle_inhibit::IdleInhibitHandler,
};
use tracing::debug;

use crate::state::State;

/// Idle notification and the surfaces that inhibit it.
pub struct Idle {
    /// ext_idle_notifier_v1.
    pub notifier: IdleNotifyState<State>,
    /// Surfaces with a live idle inhibitor.
    pub inhibitors: Vec<WlSurface>,
    /// Whether an inhibitor was in force at the last check.
    inhibited: bool,
}

impl Idle {
    /// Creates both globals.
    pub fn new(
        dh: &smithay::reexports::wayland_server::DisplayHandle,
        loop_handle: smithay::reexports::calloop::LoopHandle<'static, State>,
    ) -> Self {
        // The inhibit manager needs no state beyond the handler.
        smithay::wayland::idle_inhibit::IdleInhibitManagerState::new::<State>(dh);
        Self {
            notifier: IdleNotifyState::new(dh, loop_handle),
            inhibitors: Vec::new(),
            inhibited: false,
        }
    }
}

impl State {
    /// Input happened: idle timers start again.
    pub fn note_activity(&mut self) {
        self.core.protocols.idle.notifier.notify_activity();
    }

    /// Works out whether a shown surface inhibits idle, and tells the notifier on a change.
    pub fn update_idle_inhibit(&mut self) {
        let core = &mut self.core;
        if core.protocols.idle.inhibitors.is_empty() && !core.protocols.idle.inhibited {
            return;
        }
        core.protocols.idle.inhibitors.retain(|s| s.is_alive());
        let shown = |surface: &WlSurface| {
            core.space.elements().any(|w| {
                w.toplevel().is_some_and(|t| {
                    let root = t.wl_surface();
                    root == surface || is_descendant(surface, root)
                }) && !core.space.outputs_for_element(w).is_empty()
            })
        };
        let inhibited = core.protocols.idle.inhibitors.iter().any(shown);
        if inhibited != core.protocols.idle.inhibited {
            debug!(inhibited, "idle inhibition changed");
            core.protocols.idle.inhibited = inhibited;
            core.protocols.idle.notifier.set_inhibited(inhibited);
        }
    }
}

/// Whether `surface` is a subsurface (at any depth) of `root`.
fn is_descendant(surface: &WlSurface, root: &WlSurface) -> bool {
    let mut current = smithay::wayland::compositor::get_parent(surface);
    while let Some(parent) = current {
        if &parent == root {
            return true;
        }
        current = smithay::wayland::compositor::get_parent(&parent);
    }
    false
}

impl IdleNotifyHandler for State {
    fn idle_notify_state(&mut self) -> &mut IdleNotifyState<Self> {
        &mut self.core.protocols.idle.notifier
    }
}

impl IdleInhibitHandler for State {
    fn inhibit(&mut self, surface: WlSurface) {
        self.core.protocols.idle.inhibitors.push(surface);
        self.update_idle_inhibit();
    }

    fn uninhibit(&mut self, surface: WlSurface) {
        self.core
            .protocols
            .idle
            .inhibitors
            .retain(|s| s != &surface);
        self.update_idle_inhibit();
    }
}

lockstep_protocols::delegate_ext_idle_notify!(State);
delegate_idle_inhibit!(State);
