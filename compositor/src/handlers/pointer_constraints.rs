//! zwp_pointer_constraints_v1 and zwp_relative_pointer_manager_v1 (smithay's modules): games,
//! VM viewers and 3D tools lock the pointer in place or confine it to a region, and read raw
//! relative motion.
//!
//! The policy (smithay leaves it to the compositor; this is sway's, and what WLCS checks):
//! - A constraint is active while its surface has keyboard focus and the pointer is over it,
//!   inside its region (the whole surface when it has none). It is activated when it is
//!   created that way, when the pointer moves in or the surface gets focus; it ends when the
//!   surface loses either (`unlocked` / `unconfined`; a oneshot constraint is then gone, a
//!   persistent one waits to be activated again). [`State::update_pointer_constraint`]
//!   checks this after every pointer motion and once per loop iteration.
//! - Every relative motion (libinput, winit, tests) is sent to relative-pointer objects first,
//!   constrained or not ([`State::pointer_motion_by`] in `input.rs`).
//! - A locked pointer does not move: relative motion only. An absolute motion does not move
//!   it either.
//! - A confined pointer is clamped to the surface (and to the bounding box of its region);
//!   a position outside a region of several rectangles is not moved to at all.
//! - A locked pointer's cursor-position hint moves the cursor there (without motion events),
//!   so that it reappears where the client drew it when the lock ends.

use smithay::{
    delegate_pointer_constraints, delegate_relative_pointer,
    input::pointer::PointerHandle,
    reexports::wayland_server::{protocol::wl_surface::WlSurface, Resource},
    utils::{Logical, Point},
    wayland::{
        pointer_constraints::{
            with_pointer_constraint, PointerConstraint, PointerConstraintsHandler,
        },
        seat::WaylandFocus,
    },
};
use tracing::debug;

use crate::state::State;

/// What an active constraint allows the pointer to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constrained {
    /// No active constraint: move freely.
    Free,
    /// Locked: do not move.
    Locked,
    /// Confined to the focused surface's region.
    Confined,
}

impl PointerConstraintsHandler for State {
    fn new_constraint(&mut self, surface: &WlSurface, pointer: &PointerHandle<Self>) {
        debug!(?surface, "pointer constraint created");
        self.maybe_activate_constraint(surface, pointer);
    }

    fn cursor_position_hint(
        &mut self,
        surface: &WlSurface,
        pointer: &PointerHandle<Self>,
        location: Point<f64, Logical>,
    ) {
        let active_lock = with_pointer_constraint(surface, pointer, |c| {
            c.is_some_and(|c| c.is_active() && matches!(&*c, PointerConstraint::Locked(_)))
        });
        if !active_lock {
            return;
        }
        if let Some((_, origin)) = self.pointer_focus_with_origin(pointer) {
            pointer.set_location(origin + location);
        }
    }
}

impl State {
    /// The pointer's focused surface and its origin (global), when it has one.
    fn pointer_focus_with_origin(
        &self,
        pointer: &PointerHandle<Self>,
    ) -> Option<(WlSurface, Point<f64, Logical>)> {
        let focus = pointer.current_focus()?.wl_surface()?.into_owned();
        let (under, origin) = self.surface_under(pointer.current_location())?;
        (under == focus).then_some((focus, origin))
    }

    /// Activates `surface`'s constraint when the surface has keyboard focus and the pointer
    /// is over it, inside the constraint's region; deactivates the active one that lost either.
    fn maybe_activate_constraint(&mut self, surface: &WlSurface, pointer: &PointerHandle<Self>) {
        let keyboard_focus = self
            .core
            .seat
            .get_keyboard()
            .and_then(|k| k.current_focus())
            .and_then(|f| f.wl_surface().map(|s| s.into_owned()));
        let under = self
            .pointer_focus_with_origin(pointer)
            .filter(|(focus, _)| Some(focus) == keyboard_focus.as_ref());
        // The constraint that was active elsewhere ends.
        if let Some(active) = self.core.active_constraint.take() {
            let keep = under.as_ref().is_some_and(|(s, _)| *s == active);
            if keep {
                self.core.active_constraint = Some(active);
            } else if active.is_alive() {
                with_pointer_constraint(&active, pointer, |c| {
                    if let Some(c) = c.filter(|c| c.is_active()) {
                        debug!(surface = ?active, "pointer constraint deactivated");
                        c.deactivate();
                    }
                });
            }
        }
        let Some((focus, origin)) = under else {
            return;
        };
        if &focus != surface {
            return;
        }
        let local = pointer.current_location() - origin;
        let activated = with_pointer_constraint(surface, pointer, |constraint| {
            let Some(constraint) = constraint else {
                return false;
            };
            if constraint.is_active() {
                return true;
            }
            let inside = constraint
                .region()
                .is_none_or(|r| r.contains(local.to_i32_round()));
            if inside {
                debug!(?surface, "pointer constraint activated");
                constraint.activate();
            }
            inside
        });
        if activated {
            self.core.active_constraint = Some(surface.clone());
        }
    }

    /// After the pointer moved or keyboard focus changed: activates the constraint of the
    /// focused surface under the pointer, and ends one that no longer applies.
    pub fn update_pointer_constraint(&mut self) {
        // Runs every loop iteration: a pointer that never moved has no focus, so nothing to
        // activate (and asking the seat costs a handle clone and smithay's tracing span).
        if !self.core.pointer_seen && self.core.active_constraint.is_none() {
            return;
        }
        let Some(pointer) = self.core.seat.get_pointer() else {
            return;
        };
        match self.pointer_focus_with_origin(&pointer) {
            Some((surface, _)) => self.maybe_activate_constraint(&surface, &pointer),
            None => {
                if let Some(active) = self.core.active_constraint.clone() {
                    self.maybe_activate_constraint(&active, &pointer);
                }
            }
        }
    }

    /// The active constraint on the pointer's focused surface.
    pub fn pointer_constraint(&self) -> Constrained {
        let Some(pointer) = self.core.seat.get_pointer() else {
            return Constrained::Free;
        };
        let Some(surface) = pointer
            .current_focus()
            .and_then(|f| f.wl_surface().map(|s| s.into_owned()))
        else {
            return Constrained::Free;
        };
        with_pointer_constraint(&surface, &pointer, |c| match c {
            Some(c) if c.is_active() => match &*c {
                PointerConstraint::Locked(_) => Constrained::Locked,
                PointerConstraint::Confined(_) => Constrained::Confined,
            },
            _ => Constrained::Free,
        })
    }

    /// Where a confined pointer goes when asked to go to `location`: clamped to the focused
    /// surface (and its region's bounding box); `None` when that point is still outside the
    /// region (a region of several rectangles) or on another surface.
    pub fn confine(&self, location: Point<f64, Logical>) -> Option<Point<f64, Logical>> {
        let pointer = self.core.seat.get_pointer()?;
        let Some((focus, origin)) = self.pointer_focus_with_origin(&pointer) else {
            return Some(location);
        };
        let size = smithay::backend::renderer::utils::with_renderer_surface_state(&focus, |s| {
            s.surface_size()
        })
        .flatten()?;
        let region =
            with_pointer_constraint(&focus, &pointer, |c| c.and_then(|c| c.region().cloned()));
        // The box to clamp to: the surface, narrowed to the region's added rectangles.
        let mut bounds = smithay::utils::Rectangle::<i32, Logical>::from_size(size);
        if let Some(region) = &region {
            let added = region
                .rects
                .iter()
                .filter(|(kind, _)| {
                    matches!(kind, smithay::wayland::compositor::RectangleKind::Add)
                })
                .map(|(_, r)| *r)
                .reduce(|a, b| a.merge(b));
            bounds = added.and_then(|a| a.intersection(bounds))?;
        }
        if bounds.size.w <= 0 || bounds.size.h <= 0 {
            return None;
        }
        let local = location - origin;
        let clamp = |v: f64, start: i32, len: i32| {
            v.clamp(f64::from(start), f64::from(start) + f64::from(len - 1))
        };
        let local: Point<f64, Logical> = (
            clamp(local.x, bounds.loc.x, bounds.size.w),
            clamp(local.y, bounds.loc.y, bounds.size.h),
        )
            .into();
        let inside = region
            .as_ref()
            .is_none_or(|r| r.contains(local.to_i32_round()));
        let target = origin + local;
        let on_surface = self
            .surface_under(target)
            .is_some_and(|(under, _)| under == focus);
        (inside && on_surface).then_some(target)
    }
}

delegate_pointer_constraints!(State);
delegate_relative_pointer!(State);
