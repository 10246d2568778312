//! Input: from the host window (winit) or injected (tests), to the seat.
//!
//! All sources end in the same few methods on `State` (`pointer_motion_to`, `pointer_button`,
//! `pointer_axis`, `keyboard_key`), so tests exercise exactly the code real input takes.
//! Focus follows clicks: pressing a button on a window focuses and raises it.

use smithay::{
    backend::input::{
        AbsolutePositionEvent, Axis, AxisSource, ButtonState, Event, InputEvent, KeyState,
        KeyboardKeyEvent, PointerAxisEvent, PointerButtonEvent,
    },
    backend::winit::WinitInput,
    input::{
        keyboard::FilterResult,
        pointer::{AxisFrame, ButtonEvent, MotionEvent},
    },
    reexports::{
        wayland_protocols::xdg::shell::server::xdg_toplevel,
        wayland_server::protocol::{wl_seat::WlSeat, wl_surface::WlSurface},
    },
    utils::{Logical, Point, Serial, SERIAL_COUNTER},
    wayland::shell::xdg::ToplevelSurface,
};
use tracing::debug;

use crate::{frame_clock::queue_redraw_all, state::State};

/// Linux evdev code of the left mouse button.
pub const BTN_LEFT: u32 = 0x110;

impl State {
    /// The surface under `location` and the surface's origin in global coordinates.
    pub fn surface_under(
        &self,
        location: Point<f64, Logical>,
    ) -> Option<(WlSurface, Point<f64, Logical>)> {
        let (window, window_loc) = self.core.space.element_under(location)?;
        let relative = location - window_loc.to_f64();
        let (surface, surface_loc) =
            window.surface_under(relative, smithay::desktop::WindowSurfaceType::ALL)?;
        Some((surface, (surface_loc + window_loc).to_f64()))
    }

    /// Moves the pointer to `location` (global logical coordinates).
    pub fn pointer_motion_to(&mut self, location: Point<f64, Logical>, time_msec: u32) {
        let Some(pointer) = self.core.seat.get_pointer() else {
            return;
        };
        self.core.pointer_seen = true;
        let location = self.clamp_to_outputs(location);
        let under = self.surface_under(location);
        pointer.motion(
            self,
            under,
            &MotionEvent {
                location,
                serial: SERIAL_COUNTER.next_serial(),
                time: time_msec,
            },
        );
        pointer.frame(self);
        queue_redraw_all(&mut self.core);
    }

    fn clamp_to_outputs(&self, location: Point<f64, Logical>) -> Point<f64, Logical> {
        if self.core.space.output_under(location).next().is_some() {
            return location;
        }
        let Some(geo) = self
            .core
            .space
            .outputs()
            .next()
            .and_then(|o| self.core.space.output_geometry(o))
        else {
            return location;
        };
        let x = location
            .x
            .clamp(geo.loc.x as f64, (geo.loc.x + geo.size.w - 1) as f64);
        let y = location
            .y
            .clamp(geo.loc.y as f64, (geo.loc.y + geo.size.h - 1) as f64);
        (x, y).into()
    }

    /// Presses or releases pointer `button` (evdev code); a press focuses the window under it.
    pub fn pointer_button(&mut self, button: u32, pressed: bool, time_msec: u32) {
        let Some(pointer) = self.core.seat.get_pointer() else {
            return;
        };
        let serial = SERIAL_COUNTER.next_serial();
        let state = if pressed {
            ButtonState::Pressed
        } else {
            ButtonState::Released
        };
        if pressed && !pointer.is_grabbed() {
            let location = pointer.current_location();
            match self
                .core
                .space
                .element_under(location)
                .map(|(w, _)| w.clone())
            {
                Some(window) => crate::shell::focus_window(self, &window),
                None => {
                    if let Some(keyboard) = self.core.seat.get_keyboard() {
                        keyboard.set_focus(self, None, serial);
                    }
                }
            }
        }
        pointer.button(
            self,
            &ButtonEvent {
                button,
                state,
                serial,
                time: time_msec,
            },
        );
        pointer.frame(self);
    }

    /// Scrolls by `amount` on `axis` (continuous, as from a touchpad or a wheel in pixels).
    pub fn pointer_axis(&mut self, axis: Axis, amount: f64, source: AxisSource, time_msec: u32) {
        let Some(pointer) = self.core.seat.get_pointer() else {
            return;
        };
        let frame = AxisFrame::new(time_msec).source(source).value(axis, amount);
        pointer.axis(self, frame);
        pointer.frame(self);
    }

    /// Presses or releases key `keycode` (evdev code, without the +8 xkb offset).
    pub fn keyboard_key(&mut self, keycode: u32, pressed: bool, time_msec: u32) {
        let Some(keyboard) = self.core.seat.get_keyboard() else {
            return;
        };
        let state = if pressed {
            KeyState::Pressed
        } else {
            KeyState::Released
        };
        keyboard.input::<(), _>(
            self,
            (keycode + 8).into(),
            state,
            SERIAL_COUNTER.next_serial(),
            time_msec,
            |_, _, _| FilterResult::Forward,
        );
    }
}

/// Feeds one input event from the host window to the seat.
pub fn process_winit_input(state: &mut State, event: InputEvent<WinitInput>) {
    match event {
        InputEvent::Keyboard { event } => {
            let pressed = event.state() == KeyState::Pressed;
            state.keyboard_key(
                event.key_code().raw().saturating_sub(8),
                pressed,
                event.time_msec(),
            );
        }
        InputEvent::PointerMotionAbsolute { event } => {
            let Some(output) = state.core.space.outputs().next().cloned() else {
                return;
            };
            let Some(geo) = state.core.space.output_geometry(&output) else {
                return;
            };
            let location = event.position_transformed(geo.size) + geo.loc.to_f64();
            state.pointer_motion_to(location, event.time_msec());
        }
        InputEvent::PointerButton { event } => {
            let pressed = event.state() == ButtonState::Pressed;
            state.pointer_button(event.button_code(), pressed, event.time_msec());
        }
        InputEvent::PointerAxis { event } => {
            let source = event.source();
            for axis in [Axis::Horizontal, Axis::Vertical] {
                let amount = event
                    .amount(axis)
                    .or_else(|| event.amount_v120(axis).map(|v| v * 15.0 / 120.0));
                if let Some(amount) = amount.filter(|a| *a != 0.0) {
                    state.pointer_axis(axis, amount, source, event.time_msec());
                }
            }
        }
        _ => {}
    }
}

/// Interactive move requested by a client (dragging its title bar).
///
/// Not implemented yet: lockstep places windows itself; the request is logged and ignored,
/// which the protocol allows (the compositor may ignore move requests).
pub fn start_move(_state: &mut State, surface: &ToplevelSurface, _seat: &WlSeat, serial: Serial) {
    debug!(surface = ?surface.wl_surface(), ?serial, "interactive move requested; not supported yet");
}

/// Interactive resize requested by a client; ignored like [`start_move`].
pub fn start_resize(
    _state: &mut State,
    surface: &ToplevelSurface,
    _seat: &WlSeat,
    serial: Serial,
    edges: xdg_toplevel::ResizeEdge,
) {
    debug!(surface = ?surface.wl_surface(), ?serial, ?edges, "interactive resize requested; not supported yet");
}
