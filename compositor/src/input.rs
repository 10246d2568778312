//! Input: from the host window (winit) or injected (tests), to the seat.
//!
//! All sources end in the same few methods on `State` (`pointer_motion_to`, `pointer_button`,
//! `pointer_axis`, `keyboard_key`), so tests exercise exactly the code real input takes;
//! backends hand their smithay events to `process_input_event`, which maps them there.
//! Pointer focus follows the scene too: when a window maps, moves, resizes or goes away under a
//! pointer that stands still, `refresh_pointer_focus` sends the enter/leave/motion events a
//! moving pointer would have caused (shell.rs queues it after each root commit).
//! Focus follows clicks: pressing a button on a window focuses and raises it, and so does
//! putting a finger down on it (`touch_down`). Touch exists only once a touch device does
//! (`add_touch`): the seat advertises no touch capability it cannot deliver.
//! The output the pointer crosses to becomes the layout's focused output (new windows and
//! workspace keys go there). Keys go through the key bindings first (`bindings.rs`). Super+left-drag moves and
//! Super+right-drag resizes a floating window, with the same pointer grab that serves a
//! client's own move and resize requests (which only floating windows get).

use smithay::{
    backend::input::{
        AbsolutePositionEvent, Axis, AxisSource, ButtonState, Event, InputBackend, InputEvent,
        KeyState, KeyboardKeyEvent, PointerAxisEvent, PointerButtonEvent, PointerMotionEvent,
        TouchEvent,
    },
    backend::winit::WinitInput,
    desktop::Window,
    input::{
        keyboard::FilterResult,
        pointer::{
            AxisFrame, ButtonEvent, Focus, GestureHoldBeginEvent, GestureHoldEndEvent,
            GesturePinchBeginEvent, GesturePinchEndEvent, GesturePinchUpdateEvent,
            GestureSwipeBeginEvent, GestureSwipeEndEvent, GestureSwipeUpdateEvent, GrabStartData,
            MotionEvent, PointerGrab, PointerInnerHandle, RelativeMotionEvent,
        },
        touch::{DownEvent, MotionEvent as TouchMotionEvent, UpEvent},
        Seat,
    },
    reexports::{
        wayland_protocols::xdg::shell::server::xdg_toplevel,
        wayland_server::protocol::{wl_seat::WlSeat, wl_surface::WlSurface},
    },
    utils::{Logical, Point, Serial, Size, SERIAL_COUNTER},
    wayland::{compositor::get_parent, shell::xdg::ToplevelSurface},
};
use tracing::debug;

use crate::{
    frame_clock::queue_redraw_all, handlers::pointer_constraints::Constrained, state::State,
};

/// Linux evdev code of the left mouse button.
pub const BTN_LEFT: u32 = 0x110;

impl State {
    /// The surface under `location` and the surface's origin in global coordinates: while
    /// locked only the output's lock surface; else layer surfaces and windows in the order
    /// they are drawn (overlay, top, windows, bottom, background; a fullscreen window above
    /// the top layer).
    pub fn surface_under(
        &self,
        location: Point<f64, Logical>,
    ) -> Option<(WlSurface, Point<f64, Logical>)> {
        use crate::handlers::layer_shell::{layer_surface_under, shows_fullscreen};
        use smithay::wayland::shell::wlr_layer::Layer;
        if self.core.is_locked() {
            return self.lock_surface_under(location);
        }
        let fullscreen = self
            .core
            .space
            .output_under(location)
            .next()
            .is_some_and(|o| shows_fullscreen(&self.core, o));
        let above: &[Layer] = if fullscreen {
            &[Layer::Overlay]
        } else {
            &[Layer::Overlay, Layer::Top]
        };
        if let Some((surface, at, _)) = layer_surface_under(&self.core, location, above) {
            return Some((surface, at));
        }
        if let Some(under) = self.window_surface_under(location) {
            return Some(under);
        }
        let below: &[Layer] = if fullscreen {
            &[Layer::Top, Layer::Bottom, Layer::Background]
        } else {
            &[Layer::Bottom, Layer::Background]
        };
        layer_surface_under(&self.core, location, below).map(|(surface, at, _)| (surface, at))
    }

    fn window_surface_under(
        &self,
        location: Point<f64, Logical>,
    ) -> Option<(WlSurface, Point<f64, Logical>)> {
        let (window, window_loc) = self.window_under(location)?;
        let relative = location - window_loc.to_f64();
        let (surface, surface_loc) = match crate::xwayland::wm::surface_to_draw(&window) {
            Some(surface) => smithay::desktop::utils::under_from_surface_tree(
                &surface,
                relative,
                (0, 0),
                smithay::desktop::WindowSurfaceType::ALL,
            )?,
            None => window.surface_under(relative, smithay::desktop::WindowSurfaceType::ALL)?,
        };
        Some((surface, (surface_loc + window_loc).to_f64()))
    }

    /// The lock surface (or a subsurface of it) of the output under `location`.
    fn lock_surface_under(
        &self,
        location: Point<f64, Logical>,
    ) -> Option<(WlSurface, Point<f64, Logical>)> {
        let output = self.core.space.output_under(location).next()?;
        let lock = self
            .core
            .protocols
            .session_lock
            .surface_on(&output.name())?;
        let origin = self.core.space.output_geometry(output)?.loc;
        smithay::desktop::utils::under_from_surface_tree(
            lock.wl_surface(),
            location,
            origin,
            smithay::desktop::WindowSurfaceType::ALL,
        )
        .map(|(surface, at)| (surface, at.to_f64()))
    }

    /// The topmost window under `location` and where it is drawn (its render location, as
    /// `Space::element_under` answers): the space's own rule, except that X11 windows of an
    /// older Xwayland (whose surface smithay's `Window` does not know, see
    /// `xwayland/wm.rs`) are hit-tested on their paired surface.
    pub fn window_under(
        &self,
        location: Point<f64, Logical>,
    ) -> Option<(Window, Point<i32, Logical>)> {
        use smithay::desktop::space::SpaceElement;
        let space = &self.core.space;
        space.elements().rev().find_map(|window| {
            let render_location =
                space.element_location(window)? - SpaceElement::geometry(window).loc;
            let relative = location - render_location.to_f64();
            let hit = match crate::xwayland::wm::surface_to_draw(window) {
                Some(surface) => smithay::desktop::utils::under_from_surface_tree(
                    &surface,
                    relative,
                    (0, 0),
                    smithay::desktop::WindowSurfaceType::ALL,
                )
                .is_some(),
                None => {
                    SpaceElement::bbox(window).to_f64().contains(relative)
                        && SpaceElement::is_in_input_region(window, &relative)
                }
            };
            hit.then(|| (window.clone(), render_location))
        })
    }

    /// Moves the pointer to `location` (global logical coordinates).
    pub fn pointer_motion_to(&mut self, location: Point<f64, Logical>, time_msec: u32) {
        self.note_activity();
        let Some(pointer) = self.core.seat.get_pointer() else {
            return;
        };
        self.core.pointer_seen = true;
        let location = self.clamp_to_outputs(location);
        // Pointer constraints (handlers/pointer_constraints.rs): a locked pointer stays, a
        // confined one moves only within its region.
        let location = if location == pointer.current_location() {
            location
        } else {
            let allowed = match self.pointer_constraint() {
                Constrained::Free => Some(location),
                Constrained::Locked => None,
                Constrained::Confined => self.confine(location),
            };
            match allowed {
                Some(location) => location,
                None => {
                    pointer.frame(self);
                    return;
                }
            }
        };
        if !pointer.is_grabbed() {
            self.follow_pointer_to_output(location);
        }
        let under = self.surface_under(location);
        self.set_pointer_contact(under.clone());
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
        self.update_pointer_constraint();
        queue_redraw_all(&mut self.core);
    }

    /// The output the pointer crosses to becomes the focused one (sway's focus follows the
    /// mouse across outputs): new windows and workspace actions go there, and the keyboard
    /// follows to its focused window.
    fn follow_pointer_to_output(&mut self, location: Point<f64, Logical>) {
        let Some(name) = self
            .core
            .space
            .output_under(location)
            .next()
            .map(|o| o.name())
        else {
            return;
        };
        if self
            .core
            .layout
            .active_output()
            .is_none_or(|o| o.name == name)
        {
            return;
        }
        self.core.layout.focus_output(&name);
        crate::shell::apply_layout(&mut self.core);
    }

    /// Records what the pointer's events were last about: the surface and its origin.
    pub(crate) fn set_pointer_contact(&self, under: Option<(WlSurface, Point<f64, Logical>)>) {
        let data = self.core.seat.user_data();
        data.insert_if_missing_threadsafe(PointerContact::default);
        if let Some(contact) = data.get::<PointerContact>() {
            *contact.lock().unwrap_or_else(|e| e.into_inner()) = under;
        }
    }

    /// Whether `under` is what the pointer's events were last about.
    fn is_pointer_contact(&self, under: &Option<(WlSurface, Point<f64, Logical>)>) -> bool {
        self.core
            .seat
            .user_data()
            .get::<PointerContact>()
            .is_some_and(|contact| *contact.lock().unwrap_or_else(|e| e.into_inner()) == *under)
    }

    /// Re-evaluates what is under a pointer that did not move, after the scene changed
    /// (a window mapped, moved, resized, unmapped). Sends enter/leave, or motion with the new
    /// surface-local position, only when the surface under the pointer or its origin changed:
    /// a commit that changes nothing under the pointer sends nothing.
    pub fn refresh_pointer_focus(&mut self) {
        if !self.core.pointer_seen {
            return;
        }
        let Some(pointer) = self.core.seat.get_pointer() else {
            return;
        };
        let location = pointer.current_location();
        let under = self.surface_under(location);
        if !self.is_pointer_contact(&under) {
            let time = self.core.now().as_millis() as u32;
            self.pointer_motion_to(location, time);
        }
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
        let x = clamp_axis(location.x, geo.loc.x, geo.size.w);
        let y = clamp_axis(location.y, geo.loc.y, geo.size.h);
        (x, y).into()
    }

    /// Moves the pointer by `delta` from where it is; relative-pointer clients get the
    /// delta first, whether or not a constraint lets the pointer move.
    pub fn pointer_motion_by(&mut self, delta: Point<f64, Logical>, time_msec: u32) {
        let Some(pointer) = self.core.seat.get_pointer() else {
            return;
        };
        let current = pointer.current_location();
        let under = self.surface_under(current);
        pointer.relative_motion(
            self,
            under,
            &RelativeMotionEvent {
                delta,
                delta_unaccel: delta,
                utime: u64::from(time_msec) * 1000,
            },
        );
        self.pointer_motion_to(current + delta, time_msec);
    }

    /// Focuses and raises the window under `location`, or clears keyboard focus over the
    /// background: what a click or a touch does.
    fn focus_at(&mut self, location: Point<f64, Logical>, serial: Serial) {
        if self.core.is_locked() {
            // The lock surface has the keyboard and keeps it.
            return;
        }
        if let Some((surface, _)) = self.surface_under(location) {
            let root = crate::shell::toplevel_root(&self.core, &surface);
            if let Some((_, layer)) =
                crate::handlers::layer_shell::layer_for_surface(&self.core, &root)
            {
                // A click on an on-demand (or lower-layer exclusive) layer surface gives it
                // the keyboard; a panel without keyboard interactivity leaves focus alone.
                let _ = serial;
                if layer.can_receive_keyboard_focus() {
                    crate::shell::focus_layer_surface(self, root);
                }
                return;
            }
        }
        match self.window_under(location).map(|(w, _)| w) {
            // Menus and tooltips of X11 clients are not windows of the layout.
            Some(window) if crate::shell::id_of(&window).is_none() => {}
            Some(window) => crate::shell::focus_window(self, &window),
            None => {
                if let Some(keyboard) = self.core.seat.get_keyboard() {
                    keyboard.set_focus(self, None, serial);
                }
            }
        }
    }

    /// Presses or releases pointer `button` (evdev code); a press focuses the window under it.
    pub fn pointer_button(&mut self, button: u32, pressed: bool, time_msec: u32) {
        self.note_activity();
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
            self.focus_at(pointer.current_location(), serial);
            if self.super_held() {
                // A Super+drag grab takes this press: the window's client does not see it.
                self.start_super_drag(button, serial);
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
        self.note_activity();
        let Some(pointer) = self.core.seat.get_pointer() else {
            return;
        };
        let frame = AxisFrame::new(time_msec).source(source).value(axis, amount);
        pointer.axis(self, frame);
        pointer.frame(self);
    }

    /// Sends one axis frame (a virtual pointer's scroll, discrete steps or stop).
    pub fn pointer_axis_frame(&mut self, frame: AxisFrame) {
        self.note_activity();
        let Some(pointer) = self.core.seat.get_pointer() else {
            return;
        };
        pointer.axis(self, frame);
        pointer.frame(self);
    }

    /// Scrolls as a backend's axis event says, on each axis it moves: in pixels when the
    /// device gives them, else in wheel notches (120ths) at 15 px a notch.
    pub fn pointer_axis_event<B: InputBackend>(&mut self, event: &impl PointerAxisEvent<B>) {
        let source = event.source();
        for axis in [Axis::Horizontal, Axis::Vertical] {
            let amount = event
                .amount(axis)
                .or_else(|| event.amount_v120(axis).map(|v| v * 15.0 / 120.0));
            if let Some(amount) = amount.filter(|a| *a != 0.0) {
                self.pointer_axis(axis, amount, source, event.time_msec());
            }
        }
    }

    /// Presses or releases the key of a backend's key event.
    pub fn keyboard_key_event<B: InputBackend>(&mut self, event: &impl KeyboardKeyEvent<B>) {
        let pressed = event.state() == KeyState::Pressed;
        self.keyboard_key(evdev_key_code(event), pressed, event.time_msec());
    }

    /// Where an absolute event (host window, tablet, touchscreen) points on the first
    /// output, in global logical coordinates; `None` without outputs.
    pub fn position_on_first_output<B: InputBackend>(
        &self,
        event: &impl AbsolutePositionEvent<B>,
    ) -> Option<Point<f64, Logical>> {
        let output = self.core.space.outputs().next()?;
        let geo = self.core.space.output_geometry(output)?;
        Some(event.position_transformed(geo.size) + geo.loc.to_f64())
    }

    /// Presses or releases key `keycode` (evdev code, without the +8 xkb offset). Key
    /// bindings see it first (`bindings.rs`): a bound press and its release never reach the
    /// focused client.
    pub fn keyboard_key(&mut self, keycode: u32, pressed: bool, time_msec: u32) {
        self.note_activity();
        let Some(keyboard) = self.core.seat.get_keyboard() else {
            return;
        };
        let state = if pressed {
            KeyState::Pressed
        } else {
            KeyState::Released
        };
        let action = keyboard.input::<Option<crate::action::Action>, _>(
            self,
            (keycode + 8).into(),
            state,
            SERIAL_COUNTER.next_serial(),
            time_msec,
            |state, modifiers, handle| {
                use smithay::wayland::keyboard_shortcuts_inhibit::KeyboardShortcutsInhibitorSeat;
                let locked = state.core.is_locked();
                let inhibited = state.core.seat.keyboard_shortcuts_inhibited();
                let keysym = handle.raw_latin_sym_or_raw_current_sym();
                match state.core.bindings.on_key(
                    keycode,
                    pressed,
                    modifiers,
                    keysym,
                    (locked, inhibited),
                ) {
                    Some(action) => FilterResult::Intercept(action),
                    None => FilterResult::Forward,
                }
            },
        );
        // Run after the keyboard is done with the event: an action may change focus.
        if let Some(Some(action)) = action {
            if let Err(err) = crate::action::run(self, &action) {
                tracing::warn!(?action, "{err}");
            }
        }
    }
}

/// The evdev code of a backend's key event (smithay's key codes carry xkb's +8 offset).
pub fn evdev_key_code<B: InputBackend>(event: &impl KeyboardKeyEvent<B>) -> u32 {
    event.key_code().raw().saturating_sub(8)
}

/// The surface each touch point went down on (seat user data), so touch points on a window
/// that goes away can be lifted.
type TouchPoints = std::sync::Mutex<std::collections::HashMap<u32, WlSurface>>;

/// The surface last under the pointer and its origin in global coordinates (seat user data).
type PointerContact = std::sync::Mutex<Option<(WlSurface, Point<f64, Logical>)>>;

impl State {
    /// Gives the seat the touch capability (a touch device appeared); idempotent.
    pub fn add_touch(&mut self) {
        if self.core.seat.get_touch().is_none() {
            self.core.seat.add_touch();
        }
    }

    fn with_touch_points<R>(
        &self,
        f: impl FnOnce(&mut std::collections::HashMap<u32, WlSurface>) -> R,
    ) -> Option<R> {
        let data = self.core.seat.user_data();
        data.insert_if_missing_threadsafe(TouchPoints::default);
        let points = data.get::<TouchPoints>()?;
        let mut points = points.lock().unwrap_or_else(|e| e.into_inner());
        Some(f(&mut points))
    }

    /// Lifts the touch points that went down on `root` or a surface of its tree, since it is
    /// going away: its client must not think a finger still rests on it.
    pub fn lift_touch_points_on(&mut self, root: &WlSurface) {
        let slots: Vec<u32> = self
            .with_touch_points(|points| {
                points
                    .iter()
                    .filter(|(_, surface)| *surface == root || root_surface(surface) == *root)
                    .map(|(slot, _)| *slot)
                    .collect()
            })
            .unwrap_or_default();
        let time = self.core.now().as_millis() as u32;
        for slot in slots {
            self.touch_up(slot, time);
        }
    }

    /// Puts touch point `slot` down at `location` (global logical coordinates). The surface
    /// under it gets the whole touch sequence; its window is focused and raised, as by a click.
    pub fn touch_down(&mut self, slot: u32, location: Point<f64, Logical>, time_msec: u32) {
        self.note_activity();
        let Some(touch) = self.core.seat.get_touch() else {
            return;
        };
        let serial = SERIAL_COUNTER.next_serial();
        if !touch.is_grabbed() {
            self.focus_at(location, serial);
        }
        let under = self.surface_under(location);
        if let Some((surface, _)) = &under {
            self.with_touch_points(|points| points.insert(slot, surface.clone()));
        }
        touch.down(
            self,
            under,
            &DownEvent {
                slot: Some(slot).into(),
                location,
                serial,
                time: time_msec,
            },
        );
        touch.frame(self);
    }

    /// Moves touch point `slot` to `location`; it stays with the surface it went down on.
    pub fn touch_motion(&mut self, slot: u32, location: Point<f64, Logical>, time_msec: u32) {
        let Some(touch) = self.core.seat.get_touch() else {
            return;
        };
        let under = self.surface_under(location);
        touch.motion(
            self,
            under,
            &TouchMotionEvent {
                slot: Some(slot).into(),
                location,
                time: time_msec,
            },
        );
        touch.frame(self);
    }

    /// Lifts touch point `slot`.
    pub fn touch_up(&mut self, slot: u32, time_msec: u32) {
        let Some(touch) = self.core.seat.get_touch() else {
            return;
        };
        self.with_touch_points(|points| points.remove(&slot));
        touch.up(
            self,
            &UpEvent {
                slot: Some(slot).into(),
                serial: SERIAL_COUNTER.next_serial(),
                time: time_msec,
            },
        );
        touch.frame(self);
    }
}

/// Feeds one input event from the host window to the seat.
pub fn process_winit_input(state: &mut State, event: InputEvent<WinitInput>) {
    process_input_event(state, event);
}

/// Feeds one input event of any backend to the seat: keys, pointer motion (relative and
/// absolute), buttons, scrolling and touch. Absolute positions map onto the first output. A
/// touch cancel lifts that touch point (clients see `up`, not `cancel`). Device events,
/// gestures, tablets and switches are the caller's business or ignored.
pub fn process_input_event<B: InputBackend>(state: &mut State, event: InputEvent<B>) {
    match event {
        InputEvent::Keyboard { event } => state.keyboard_key_event(&event),
        InputEvent::PointerMotion { event } => {
            state.pointer_motion_by(event.delta(), event.time_msec());
        }
        InputEvent::PointerMotionAbsolute { event } => {
            if let Some(location) = state.position_on_first_output(&event) {
                state.pointer_motion_to(location, event.time_msec());
            }
        }
        InputEvent::PointerButton { event } => {
            let pressed = event.state() == ButtonState::Pressed;
            state.pointer_button(event.button_code(), pressed, event.time_msec());
        }
        InputEvent::PointerAxis { event } => state.pointer_axis_event(&event),
        InputEvent::TouchDown { event } => {
            if let Some(location) = state.position_on_first_output(&event) {
                state.touch_down(touch_slot(&event), location, event.time_msec());
            }
        }
        InputEvent::TouchMotion { event } => {
            if let Some(location) = state.position_on_first_output(&event) {
                state.touch_motion(touch_slot(&event), location, event.time_msec());
            }
        }
        InputEvent::TouchUp { event } => state.touch_up(touch_slot(&event), event.time_msec()),
        InputEvent::TouchCancel { event } => state.touch_up(touch_slot(&event), event.time_msec()),
        // Every touch_* call above already ends with a frame.
        _ => {}
    }
}

/// The slot of a touch event; single-touch devices (no slot, -1) use slot 0.
fn touch_slot<B: InputBackend>(event: &impl TouchEvent<B>) -> u32 {
    u32::try_from(i32::from(event.slot())).unwrap_or(0)
}

/// Linux evdev code of the right mouse button.
pub const BTN_RIGHT: u32 = 0x111;

impl State {
    /// Whether the Super (logo) key is held.
    fn super_held(&self) -> bool {
        self.core
            .seat
            .get_keyboard()
            .is_some_and(|k| k.modifier_state().logo)
    }

    /// Super+left button moves, Super+right button resizes the floating window under the
    /// pointer (by the corner nearest the pointer). Returns whether a grab started.
    fn start_super_drag(&mut self, button: u32, serial: Serial) -> bool {
        let Some(pointer) = self.core.seat.get_pointer() else {
            return false;
        };
        let location = pointer.current_location();
        let Some((window, window_start)) = self.window_under(location) else {
            return false;
        };
        let floating = crate::shell::id_of(&window).and_then(|id| self.core.layout.kind_of(id))
            == Some(crate::layout::PlacementKind::Floating);
        if !floating {
            return false;
        }
        let size_start = window.geometry().size;
        let kind = match button {
            BTN_LEFT => GrabKind::Move,
            BTN_RIGHT => {
                let right = location.x >= f64::from(window_start.x) + f64::from(size_start.w) / 2.0;
                let bottom =
                    location.y >= f64::from(window_start.y) + f64::from(size_start.h) / 2.0;
                let edges = match (right, bottom) {
                    (true, true) => xdg_toplevel::ResizeEdge::BottomRight,
                    (true, false) => xdg_toplevel::ResizeEdge::TopRight,
                    (false, true) => xdg_toplevel::ResizeEdge::BottomLeft,
                    (false, false) => xdg_toplevel::ResizeEdge::TopLeft,
                };
                crate::shell::begin_resize(&window, edges, window_start, size_start);
                GrabKind::Resize(edges)
            }
            _ => return false,
        };
        let grab = WindowGrab {
            start_data: GrabStartData {
                focus: None,
                button,
                location,
            },
            window,
            window_start,
            size_start,
            kind,
        };
        pointer.set_grab(self, grab, serial, Focus::Clear);
        true
    }
}

/// Interactive move requested by a client (dragging its title bar): while the button that
/// started it stays pressed, the window follows the pointer and no surface has pointer focus.
///
/// Honoured only for a floating window and a button press on that very window that is still
/// held (the serial of the press, as xdg_toplevel.move requires); anything else is ignored,
/// which the protocol allows (tiled windows stay in their tile).
pub fn start_move(state: &mut State, surface: &ToplevelSurface, seat: &WlSeat, serial: Serial) {
    start_window_grab(state, surface, seat, serial, GrabKind::Move);
}

/// Interactive resize requested by a client (dragging a border): while the button stays
/// pressed, the toplevel is configured with the `resizing` state and the size the pointer
/// asks for; the edges opposite the dragged ones stay where they are (shell.rs keeps them put
/// as the client commits new sizes). Same conditions as [`start_move`].
pub fn start_resize(
    state: &mut State,
    surface: &ToplevelSurface,
    seat: &WlSeat,
    serial: Serial,
    edges: xdg_toplevel::ResizeEdge,
) {
    start_window_grab(state, surface, seat, serial, GrabKind::Resize(edges));
}

fn start_window_grab(
    state: &mut State,
    surface: &ToplevelSurface,
    seat: &WlSeat,
    serial: Serial,
    kind: GrabKind,
) {
    let Some(seat) = Seat::<State>::from_resource(seat) else {
        return;
    };
    let Some(pointer) = seat.get_pointer() else {
        return;
    };
    let Some(start_data) = pointer
        .has_grab(serial)
        .then(|| pointer.grab_start_data())
        .flatten()
    else {
        debug!(
            ?serial,
            ?kind,
            "interactive grab without a matching held button; ignored"
        );
        return;
    };
    let on_this_window = start_data
        .focus
        .as_ref()
        .is_some_and(|(focus, _)| root_surface(focus) == *surface.wl_surface());
    let window = state
        .core
        .space
        .elements()
        .find(|w| w.toplevel().is_some_and(|t| t == surface))
        .cloned();
    // Tiled, maximized and fullscreen windows stay where the layout puts them.
    let floating = window
        .as_ref()
        .and_then(crate::shell::id_of)
        .and_then(|id| state.core.layout.kind_of(id))
        == Some(crate::layout::PlacementKind::Floating);
    let (true, true, Some(window)) = (on_this_window, floating, window) else {
        debug!(
            ?serial,
            ?kind,
            "interactive grab of a window that was not clicked; ignored"
        );
        return;
    };
    let Some(window_start) = state.core.space.element_location(&window) else {
        return;
    };
    let size_start = window.geometry().size;
    if let GrabKind::Resize(edges) = kind {
        crate::shell::begin_resize(&window, edges, window_start, size_start);
    }
    let grab = WindowGrab {
        start_data,
        window,
        window_start,
        size_start,
        kind,
    };
    pointer.set_grab(state, grab, serial, Focus::Clear);
}

/// The root of `surface`'s subsurface tree.
fn root_surface(surface: &WlSurface) -> WlSurface {
    let mut root = surface.clone();
    while let Some(parent) = get_parent(&root) {
        root = parent;
    }
    root
}

/// What an interactive grab does with the window.
#[derive(Debug, Clone, Copy)]
enum GrabKind {
    Move,
    Resize(xdg_toplevel::ResizeEdge),
}

/// The pointer grab of an interactive move or resize.
struct WindowGrab {
    start_data: GrabStartData<State>,
    window: Window,
    window_start: Point<i32, Logical>,
    size_start: Size<i32, Logical>,
    kind: GrabKind,
}

impl PointerGrab<State> for WindowGrab {
    fn motion(
        &mut self,
        data: &mut State,
        handle: &mut PointerInnerHandle<'_, State>,
        _focus: Option<(WlSurface, Point<f64, Logical>)>,
        event: &MotionEvent,
    ) {
        // No client sees the pointer while it drags a window.
        handle.motion(data, None, event);
        let delta = (event.location - self.start_data.location).to_i32_round::<i32>();
        match self.kind {
            GrabKind::Move => {
                let location = self.window_start + delta;
                if let Some(id) = crate::shell::id_of(&self.window) {
                    let size = self.window.geometry().size;
                    data.core.layout.set_floating_rect(
                        id,
                        crate::layout::Rect::new(location.x, location.y, size.w, size.h),
                    );
                }
                data.core
                    .space
                    .map_element(self.window.clone(), location, true);
                if let Some(x11) = self.window.x11_surface() {
                    // X must know where its window is (menus open relative to it).
                    crate::xwayland::wm::place_dragged(&mut data.core, x11, location, None);
                }
                queue_redraw_all(&mut data.core);
            }
            GrabKind::Resize(edges) => {
                let size = crate::shell::resized(self.size_start, edges, delta);
                match self.window.x11_surface() {
                    // X windows take the size at once (no configure/commit round).
                    Some(x11) => {
                        let location = crate::shell::resize_origin(
                            self.window_start,
                            self.size_start,
                            edges,
                            size,
                        );
                        crate::xwayland::wm::place_dragged(
                            &mut data.core,
                            x11,
                            location,
                            Some(size),
                        );
                    }
                    None => crate::shell::configure_resize(&self.window, Some(size)),
                }
            }
        }
    }

    fn relative_motion(
        &mut self,
        data: &mut State,
        handle: &mut PointerInnerHandle<'_, State>,
        _focus: Option<(WlSurface, Point<f64, Logical>)>,
        event: &RelativeMotionEvent,
    ) {
        handle.relative_motion(data, None, event);
    }

    fn button(
        &mut self,
        data: &mut State,
        handle: &mut PointerInnerHandle<'_, State>,
        event: &ButtonEvent,
    ) {
        handle.button(data, event);
        if handle.current_pressed().is_empty() {
            handle.unset_grab(self, data, event.serial, event.time, true);
            if let GrabKind::Resize(_) = self.kind {
                crate::shell::configure_resize(&self.window, None);
            }
            // The pointer is over whatever is there now: let the next refresh tell its client.
            data.set_pointer_contact(None);
            crate::shell::queue_pointer_refresh(&mut data.core);
        }
    }

    fn axis(
        &mut self,
        data: &mut State,
        handle: &mut PointerInnerHandle<'_, State>,
        details: AxisFrame,
    ) {
        handle.axis(data, details);
    }

    fn frame(&mut self, data: &mut State, handle: &mut PointerInnerHandle<'_, State>) {
        handle.frame(data);
    }

    fn gesture_swipe_begin(
        &mut self,
        data: &mut State,
        handle: &mut PointerInnerHandle<'_, State>,
        event: &GestureSwipeBeginEvent,
    ) {
        handle.gesture_swipe_begin(data, event);
    }

    fn gesture_swipe_update(
        &mut self,
        data: &mut State,
        handle: &mut PointerInnerHandle<'_, State>,
        event: &GestureSwipeUpdateEvent,
    ) {
        handle.gesture_swipe_update(data, event);
    }

    fn gesture_swipe_end(
        &mut self,
        data: &mut State,
        handle: &mut PointerInnerHandle<'_, State>,
        event: &GestureSwipeEndEvent,
    ) {
        handle.gesture_swipe_end(data, event);
    }

    fn gesture_pinch_begin(
        &mut self,
        data: &mut State,
        handle: &mut PointerInnerHandle<'_, State>,
        event: &GesturePinchBeginEvent,
    ) {
        handle.gesture_pinch_begin(data, event);
    }

    fn gesture_pinch_update(
        &mut self,
        data: &mut State,
        handle: &mut PointerInnerHandle<'_, State>,
        event: &GesturePinchUpdateEvent,
    ) {
        handle.gesture_pinch_update(data, event);
    }

    fn gesture_pinch_end(
        &mut self,
        data: &mut State,
        handle: &mut PointerInnerHandle<'_, State>,
        event: &GesturePinchEndEvent,
    ) {
        handle.gesture_pinch_end(data, event);
    }

    fn gesture_hold_begin(
        &mut self,
        data: &mut State,
        handle: &mut PointerInnerHandle<'_, State>,
        event: &GestureHoldBeginEvent,
    ) {
        handle.gesture_hold_begin(data, event);
    }

    fn gesture_hold_end(
        &mut self,
        data: &mut State,
        handle: &mut PointerInnerHandle<'_, State>,
        event: &GestureHoldEndEvent,
    ) {
        handle.gesture_hold_end(data, event);
    }

    fn start_data(&self) -> &GrabStartData<State> {
        &self.start_data
    }

    fn unset(&mut self, _data: &mut State) {}
}

/// Clamps `v` into `[start, start + len - 1]`, in f64 so that no position or size can
/// overflow, and without `f64::clamp`'s panics (an empty range, a NaN coordinate).
fn clamp_axis(v: f64, start: i32, len: i32) -> f64 {
    let min = f64::from(start);
    let max = (min + f64::from(len) - 1.0).max(min);
    if v.is_nan() {
        min
    } else {
        v.max(min).min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::clamp_axis;

    #[test]
    fn clamp_axis_never_overflows_or_panics() {
        assert_eq!(clamp_axis(-5.0, 0, 100), 0.0);
        assert_eq!(clamp_axis(500.0, 0, 100), 99.0);
        assert_eq!(clamp_axis(50.5, 0, 100), 50.5);
        // An output at the very end of the i32 range: start + len wraps in i32.
        let max = clamp_axis(f64::MAX, i32::MAX - 10, 1920);
        assert_eq!(max, f64::from(i32::MAX - 10) + 1919.0);
        assert_eq!(clamp_axis(0.0, i32::MIN, 10), f64::from(i32::MIN) + 9.0);
        assert_eq!(clamp_axis(f64::NAN, 7, 10), 7.0);
        assert_eq!(clamp_axis(3.0, 7, 0), 7.0);
    }
}
