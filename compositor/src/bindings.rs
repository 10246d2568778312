//! Key bindings: config `[binds]` (and the defaults) -> Actions, matched before any client
//! sees the key.
//!
//! `input.rs` hands every key event to smithay's keyboard filter; the filter asks
//! [`Bindings::on_key`] first. A press that matches a binding is intercepted (the focused
//! client never sees it) and its action runs once the filter returns; the release of that key
//! is intercepted too, so the client never sees half a key press. Everything else is
//! forwarded as before.
//!
//! Matching is by keysym and exact modifiers (Super, Ctrl, Alt, Shift; Caps Lock and Num
//! Lock do not count). The keysym is the key's unshifted one, and for keys whose unshifted
//! symbol is not ASCII (a Cyrillic or Greek layout) the one it has in a Latin layout of the
//! keymap, like sway's `bindsym`: `Super+Shift+Q` works as `Super+Shift+q` and on `ru,us`.
//! Binding key names are resolved with xkb when the config is loaded; an unknown name is
//! logged and that binding left out.
//!
//! `Super+Shift+E` (quit) asks for a second press within [`QUIT_CONFIRM`]; bindings are
//! skipped while the session is locked (ext-session-lock, `handlers/session_lock.rs`) unless
//! marked `allow_when_locked`, and while the focused client inhibits shortcuts (it asked with
//! keyboard-shortcuts-inhibit, which lockstep grants: a VM viewer gets Super+1 itself).

use std::time::{Duration, Instant};

use smithay::input::keyboard::{keysyms, xkb, Keysym, ModifiersState};
use tracing::{info, warn};

use crate::action::Action;

/// How long after a first quit press a second one quits.
pub const QUIT_CONFIRM: Duration = Duration::from_secs(3);

/// One binding, compiled for matching.
#[derive(Debug, Clone)]
struct Compiled {
    keysym: Keysym,
    super_: bool,
    ctrl: bool,
    alt: bool,
    shift: bool,
    action: Action,
    allow_when_locked: bool,
    /// As written, for logs.
    name: String,
}

/// The bindings in force and the state of key presses they took.
#[derive(Debug, Default)]
pub struct Bindings {
    binds: Vec<Compiled>,
    /// Key codes whose press a binding took: their release is not sent to clients either.
    held: Vec<u32>,
    /// Until when a second quit press quits.
    quit_armed_until: Option<Instant>,
}

impl Bindings {
    /// Compiles the bindings of `config` (defaults plus `[binds]`).
    pub fn new(config: &lockstep_config::Config) -> Self {
        let mut binds = Vec::new();
        for binding in config.bindings() {
            let keysym = xkb::keysym_from_name(&binding.combo.key, xkb::KEYSYM_CASE_INSENSITIVE);
            if keysym.raw() == keysyms::KEY_NoSymbol {
                warn!(
                    binding = %binding.combo,
                    "unknown key name in a binding (see xkbcommon's keysym names, e.g. Return, \
                     q, 1, Left, space, XF86AudioMute); the binding is left out"
                );
                continue;
            }
            let m = binding.combo.modifiers;
            binds.push(Compiled {
                keysym,
                super_: m.super_,
                ctrl: m.ctrl,
                alt: m.alt,
                shift: m.shift,
                action: binding.action,
                allow_when_locked: binding.allow_when_locked,
                name: binding.combo.to_string(),
            });
        }
        Self {
            binds,
            held: Vec::new(),
            quit_armed_until: None,
        }
    }

    /// How many bindings are in force.
    pub fn len(&self) -> usize {
        self.binds.len()
    }

    /// Whether no binding is in force.
    pub fn is_empty(&self) -> bool {
        self.binds.is_empty()
    }

    /// Decides what to do with a key event: `None` forwards it to the focused client;
    /// `Some(action)` intercepts it, and the action (if any) should run.
    ///
    /// `keysym` is the key's layout-independent symbol (see the module docs); `locked` says
    /// whether the session is locked; `inhibited` whether the focused client inhibits
    /// shortcuts (keyboard-shortcuts-inhibit: VM viewers, remote desktops), which then gets
    /// every key.
    pub fn on_key(
        &mut self,
        keycode: u32,
        pressed: bool,
        modifiers: &ModifiersState,
        keysym: Option<Keysym>,
        (locked, inhibited): (bool, bool),
    ) -> Option<Option<Action>> {
        if !pressed {
            let index = self.held.iter().position(|k| *k == keycode)?;
            self.held.swap_remove(index);
            return Some(None);
        }
        if inhibited {
            return None;
        }
        let keysym = keysym?;
        let found = self.binds.iter().find(|b| {
            b.keysym == keysym
                && b.super_ == modifiers.logo
                && b.ctrl == modifiers.ctrl
                && b.alt == modifiers.alt
                && b.shift == modifiers.shift
                && (!locked || b.allow_when_locked)
        })?;
        let (name, mut action) = (found.name.clone(), found.action.clone());
        if !self.held.contains(&keycode) {
            self.held.push(keycode);
        }
        if action == Action::Quit && !self.confirm_quit(Instant::now()) {
            action = Action::None;
        }
        info!(binding = %name, ?action, "key binding");
        Some(Some(action))
    }

    /// A quit press: true when it is the second within [`QUIT_CONFIRM`], else arms.
    fn confirm_quit(&mut self, now: Instant) -> bool {
        if self.quit_armed_until.is_some_and(|until| now <= until) {
            self.quit_armed_until = None;
            return true;
        }
        self.quit_armed_until = Some(now + QUIT_CONFIRM);
        warn!(
            "press the quit binding again within {} s to end the session",
            QUIT_CONFIRM.as_secs()
        );
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mods(logo: bool, shift: bool) -> ModifiersState {
        ModifiersState {
            logo,
            shift,
            ..Default::default()
        }
    }

    fn sym(name: &str) -> Option<Keysym> {
        Some(xkb::keysym_from_name(name, xkb::KEYSYM_NO_FLAGS))
    }

    #[test]
    fn defaults_match_exact_modifiers_and_take_the_release() {
        let mut b = Bindings::new(&Default::default());
        assert_eq!(b.len(), lockstep_config::DEFAULT_BINDS.len());
        // Super+Shift+q is close; Super+q alone is nothing; q alone goes to the client.
        assert_eq!(
            b.on_key(16, true, &mods(true, true), sym("q"), (false, false)),
            Some(Some(Action::Close))
        );
        assert_eq!(
            b.on_key(16, false, &mods(true, true), sym("q"), (false, false)),
            Some(None)
        );
        assert_eq!(
            b.on_key(16, false, &mods(false, false), sym("q"), (false, false)),
            None
        );
        assert_eq!(
            b.on_key(16, true, &mods(true, false), sym("q"), (false, false)),
            None
        );
        assert_eq!(
            b.on_key(16, true, &mods(false, false), sym("q"), (false, false)),
            None
        );
        // Digits: Super+0 is workspace 10.
        assert_eq!(
            b.on_key(11, true, &mods(true, false), sym("0"), (false, false)),
            Some(Some(Action::Workspace("10".into())))
        );
        // Inhibited: the client gets the key.
        assert_eq!(
            b.on_key(28, true, &mods(true, false), sym("Return"), (false, true)),
            None
        );
        // Locked: only allow_when_locked bindings run.
        assert_eq!(
            b.on_key(28, true, &mods(true, false), sym("Return"), (true, false)),
            None
        );
    }

    #[test]
    fn quit_needs_a_second_press() {
        let mut b = Bindings::new(&Default::default());
        let e = sym("e");
        assert_eq!(
            b.on_key(18, true, &mods(true, true), e, (false, false)),
            Some(Some(Action::None))
        );
        b.on_key(18, false, &mods(true, true), e, (false, false));
        assert_eq!(
            b.on_key(18, true, &mods(true, true), e, (false, false)),
            Some(Some(Action::Quit))
        );
        let t = Instant::now();
        assert!(!b.confirm_quit(t));
        assert!(!b.confirm_quit(t + QUIT_CONFIRM + Duration::from_millis(1)));
    }
}
