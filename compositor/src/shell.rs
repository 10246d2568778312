//! Window management: where windows go, what has focus.
//!
//! Deliberately simple floating placement: the first window is centred on the output, later
//! ones cascade down-right from the previous one and wrap back to the centre when they would
//! leave the output. New windows take keyboard focus; a click focuses and raises. Maximize and
//! fullscreen fill the output (respecting the client's max size for maximize).
//!
//! The focused toplevel has xdg's `activated` state (`update_activated`, called on every
//! keyboard focus change). Focusing another window ends a popup grab. A window that unmaps
//! itself with a null buffer comes back where it was. During an interactive resize
//! (input.rs starts it) the edges opposite the dragged ones stay put as the client commits.

use std::cell::{Cell, RefCell};

use smithay::{
    desktop::{PopupGrab, PopupUngrabStrategy, Window},
    input::Seat,
    output::Output,
    reexports::{
        wayland_protocols::xdg::shell::server::xdg_toplevel,
        wayland_server::protocol::{wl_output::WlOutput, wl_surface::WlSurface},
    },
    utils::{Logical, Point, Rectangle, Size, SERIAL_COUNTER},
    wayland::{
        compositor::with_states,
        shell::xdg::{SurfaceCachedState, ToplevelSurface},
    },
};
use tracing::debug;

use crate::{
    frame_clock::queue_redraw_all,
    state::{Core, State},
};

/// How far each new window is offset from the previous one.
const CASCADE_STEP: i32 = 32;

/// Handles a commit on a root (non-subsurface) surface: maps windows that got their first
/// buffer, unmaps windows whose buffer was removed, applies `wl_surface.offset`.
pub fn on_root_commit(core: &mut Core, root: &WlSurface) {
    // Whatever the commit changed (a new buffer size, an input region, a mapped window) may
    // change what is under the pointer.
    queue_pointer_refresh(core);
    if let Some(index) = core
        .unmapped
        .iter()
        .position(|w| w.toplevel().is_some_and(|t| t.wl_surface() == root))
    {
        if has_buffer(root) {
            let window = core.unmapped.remove(index);
            window.on_commit();
            // A window that unmapped itself (null buffer) comes back where it was.
            let location = take_last_location(&window).unwrap_or_else(|| place(core, &window));
            debug!(?location, "mapping window");
            core.space.map_element(window.clone(), location, true);
            core.focus_request = Some(window);
        }
        return;
    }
    let Some(window) = core
        .space
        .elements()
        .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == root))
        .cloned()
    else {
        return;
    };
    if !has_buffer(root) {
        // A null buffer unmaps the toplevel; it must be configured again before it maps.
        unmap_toplevel(core, root, false);
        return;
    }
    if let Some(delta) = crate::handlers::compositor::take_buffer_delta(root) {
        if let Some(loc) = core.space.element_location(&window) {
            core.space.map_element(window.clone(), loc + delta, false);
        }
    }
    keep_surface_origin(core, &window);
    keep_resize_anchor(core, &window);
}

/// The origin of a window's implicit geometry when it was last looked at (window user data).
struct ImplicitGeometryOrigin(Cell<Option<Point<i32, Logical>>>);

/// Keeps the toplevel's surface where it is when the window has no explicit geometry and its
/// subsurfaces grow or shrink to the left or top.
///
/// The space positions a window by its geometry, and without `xdg_surface.set_window_geometry`
/// smithay's geometry is the bounding box of the whole surface tree: a subsurface placed at a
/// negative offset would otherwise push the main surface right or down (WLCS
/// `subsurface_extends_parent_input_region`). With an explicit geometry the geometry stays put,
/// as the client asked.
fn keep_surface_origin(core: &mut Core, window: &Window) {
    let Some(toplevel) = window.toplevel() else {
        return;
    };
    let explicit = with_states(toplevel.wl_surface(), |states| {
        states
            .cached_state
            .get::<SurfaceCachedState>()
            .current()
            .geometry
            .is_some()
    });
    window
        .user_data()
        .insert_if_missing(|| ImplicitGeometryOrigin(Cell::new(None)));
    let Some(last) = window.user_data().get::<ImplicitGeometryOrigin>() else {
        return;
    };
    if explicit {
        last.0.set(None);
        return;
    }
    let origin = window.geometry().loc;
    if let (Some(previous), Some(location)) = (last.0.get(), core.space.element_location(window)) {
        if previous != origin {
            core.space
                .map_element(window.clone(), location + (origin - previous), false);
        }
    }
    last.0.set(Some(origin));
}

/// An interactive resize in progress (window user data): where the window and its size were
/// when it started, and which edges move.
struct ResizeAnchor(RefCell<Option<Anchor>>);

#[derive(Debug, Clone, Copy)]
struct Anchor {
    edges: u32,
    location: Point<i32, Logical>,
    size: Size<i32, Logical>,
    /// The grab is over; the anchor goes with the next commit (the client's last new size).
    ended: bool,
}

const EDGE_TOP: u32 = 1;
const EDGE_LEFT: u32 = 4;
const EDGE_RIGHT: u32 = 8;
const EDGE_BOTTOM: u32 = 2;

/// Starts an interactive resize of `window` by `edges`.
pub fn begin_resize(
    window: &Window,
    edges: xdg_toplevel::ResizeEdge,
    location: Point<i32, Logical>,
    size: Size<i32, Logical>,
) {
    window
        .user_data()
        .insert_if_missing(|| ResizeAnchor(RefCell::new(None)));
    if let Some(anchor) = window.user_data().get::<ResizeAnchor>() {
        *anchor.0.borrow_mut() = Some(Anchor {
            edges: u32::from(edges),
            location,
            size,
            ended: false,
        });
    }
}

/// The size a resize by `edges` from `size` asks for when the pointer moved by `delta`.
pub fn resized(
    size: Size<i32, Logical>,
    edges: xdg_toplevel::ResizeEdge,
    delta: Point<i32, Logical>,
) -> Size<i32, Logical> {
    let edges = u32::from(edges);
    let mut w = size.w;
    let mut h = size.h;
    if edges & EDGE_LEFT != 0 {
        w -= delta.x;
    } else if edges & EDGE_RIGHT != 0 {
        w += delta.x;
    }
    if edges & EDGE_TOP != 0 {
        h -= delta.y;
    } else if edges & EDGE_BOTTOM != 0 {
        h += delta.y;
    }
    (w.max(1), h.max(1)).into()
}

/// Configures the toplevel of `window` for an interactive resize: `Some(size)` while it goes
/// on (state `resizing`), `None` when it ends.
pub fn configure_resize(window: &Window, size: Option<Size<i32, Logical>>) {
    let Some(toplevel) = window.toplevel() else {
        return;
    };
    toplevel.with_pending_state(|state| match size {
        Some(size) => {
            state.states.set(xdg_toplevel::State::Resizing);
            state.size = Some(size);
        }
        None => {
            state.states.unset(xdg_toplevel::State::Resizing);
        }
    });
    if let Some(size) = size {
        let size = clamp_to_limits(toplevel, size);
        toplevel.with_pending_state(|state| state.size = Some(size));
    }
    if size.is_none() {
        if let Some(anchor) = window.user_data().get::<ResizeAnchor>() {
            if let Some(anchor) = anchor.0.borrow_mut().as_mut() {
                anchor.ended = true;
            }
        }
    }
    if toplevel.is_initial_configure_sent() {
        toplevel.send_pending_configure();
    }
}

/// Keeps the edges opposite the dragged ones in place as a resized window commits new sizes.
fn keep_resize_anchor(core: &mut Core, window: &Window) {
    let Some(data) = window.user_data().get::<ResizeAnchor>() else {
        return;
    };
    let Some(anchor) = *data.0.borrow() else {
        return;
    };
    let size = window.geometry().size;
    let mut location = core
        .space
        .element_location(window)
        .unwrap_or(anchor.location);
    if anchor.edges & EDGE_LEFT != 0 {
        location.x = anchor.location.x + anchor.size.w - size.w;
    }
    if anchor.edges & EDGE_TOP != 0 {
        location.y = anchor.location.y + anchor.size.h - size.h;
    }
    if core.space.element_location(window) != Some(location) {
        core.space.map_element(window.clone(), location, false);
        queue_redraw_all(core);
    }
    if anchor.ended {
        *data.0.borrow_mut() = None;
    }
}

fn has_buffer(surface: &WlSurface) -> bool {
    smithay::backend::renderer::utils::with_renderer_surface_state(surface, |s| {
        s.buffer().is_some()
    })
    .unwrap_or(false)
}

/// Removes the toplevel of `surface` from the space; `destroyed` drops it for good, else it
/// goes back to the unmapped list to be configured and mapped again.
pub fn unmap_toplevel(core: &mut Core, surface: &WlSurface, destroyed: bool) {
    let window = core
        .space
        .elements()
        .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == surface))
        .cloned();
    if let Some(window) = window {
        if !destroyed {
            if let Some(location) = core.space.element_location(&window) {
                window
                    .user_data()
                    .insert_if_missing(|| LastLocation(Cell::new(None)));
                if let Some(last) = window.user_data().get::<LastLocation>() {
                    last.0.set(Some(location));
                }
            }
        }
        core.space.unmap_elem(&window);
        if !destroyed {
            if let Some(toplevel) = window.toplevel() {
                // Reset so the next buffer-less commit gets a fresh initial configure.
                with_states(toplevel.wl_surface(), |states| {
                    if let Some(data) = states
                        .data_map
                        .get::<smithay::wayland::shell::xdg::XdgToplevelSurfaceData>(
                    ) {
                        if let Ok(mut data) = data.lock() {
                            data.initial_configure_sent = false;
                        }
                    }
                });
            }
            core.unmapped.push(window);
        }
    }
    if destroyed {
        core.unmapped
            .retain(|w| w.toplevel().is_some_and(|t| t.wl_surface() != surface));
    }
    queue_pointer_refresh(core);
    queue_redraw_all(core);
}

/// Re-checks what is under the pointer once the current dispatch has handled the clients'
/// requests (calloop runs idle callbacks at the end of the same dispatch), so a pointer that
/// stands still gets enter/leave/motion when the scene changes under it.
pub fn queue_pointer_refresh(core: &mut Core) {
    core.loop_handle
        .insert_idle(|state| state.refresh_pointer_focus());
}

/// Where a window was when it unmapped itself (window user data).
struct LastLocation(Cell<Option<Point<i32, Logical>>>);

fn take_last_location(window: &Window) -> Option<Point<i32, Logical>> {
    window.user_data().get::<LastLocation>()?.0.take()
}

/// The output under the pointer, or the first one.
pub fn active_output(core: &Core) -> Option<Output> {
    let pointer = core.seat.get_pointer().map(|p| p.current_location());
    pointer
        .and_then(|p| core.space.output_under(p).next().cloned())
        .or_else(|| core.space.outputs().next().cloned())
}

fn place(core: &mut Core, window: &Window) -> Point<i32, Logical> {
    let Some(output) = active_output(core) else {
        return (0, 0).into();
    };
    let Some(area) = core.space.output_geometry(&output) else {
        return (0, 0).into();
    };
    let size = window.geometry().size;
    let centred = area.loc + Point::from(((area.size.w - size.w) / 2, (area.size.h - size.h) / 2));
    let centred = Point::from((centred.x.max(area.loc.x), centred.y.max(area.loc.y)));
    let candidate = match core.next_cascade {
        Some(next) if core.space.elements().count() > 0 => next,
        _ => centred,
    };
    let fits = Rectangle::new(candidate, size).loc.x + size.w <= area.loc.x + area.size.w
        && candidate.y + size.h <= area.loc.y + area.size.h
        && area.contains(candidate);
    let location = if fits { candidate } else { centred };
    core.next_cascade = Some(location + Point::from((CASCADE_STEP, CASCADE_STEP)));
    location
}

/// Moves windows that ended up outside every output back onto the first one.
pub fn fixup_positions(core: &mut Core) {
    let Some(first) = core.space.outputs().next().cloned() else {
        return;
    };
    let Some(area) = core.space.output_geometry(&first) else {
        return;
    };
    let windows: Vec<Window> = core.space.elements().cloned().collect();
    for window in windows {
        let Some(loc) = core.space.element_location(&window) else {
            continue;
        };
        let visible = core
            .space
            .outputs()
            .filter_map(|o| core.space.output_geometry(o))
            .any(|g| g.overlaps(Rectangle::new(loc, window.geometry().size)));
        if !visible {
            core.space.map_element(window, area.loc, false);
        }
    }
}

/// Gives keyboard focus to the topmost window (after the focused one went away).
pub fn focus_topmost(state: &mut State) {
    let top = state.core.space.elements().last().cloned();
    let surface = top.and_then(|w| w.toplevel().map(|t| t.wl_surface().clone()));
    if let Some(keyboard) = state.core.seat.get_keyboard() {
        keyboard.set_focus(state, surface, SERIAL_COUNTER.next_serial());
    }
}

/// Gives the `activated` state to the toplevel that owns keyboard focus `focused` (a toplevel
/// surface, one of its subsurfaces, or a popup of it) and takes it from every other toplevel,
/// sending a configure to those that changed.
pub fn update_activated(core: &Core, focused: Option<&WlSurface>) {
    let root = focused.map(|surface| {
        let mut root = surface.clone();
        while let Some(parent) = smithay::wayland::compositor::get_parent(&root) {
            root = parent;
        }
        match core.popups.find_popup(&root) {
            Some(popup) => smithay::desktop::find_popup_root_surface(&popup).unwrap_or(root),
            None => root,
        }
    });
    for window in core.space.elements().chain(core.unmapped.iter()) {
        let Some(toplevel) = window.toplevel() else {
            continue;
        };
        let active = root.as_ref() == Some(toplevel.wl_surface());
        toplevel.with_pending_state(|state| {
            if active {
                state.states.set(xdg_toplevel::State::Activated);
            } else {
                state.states.unset(xdg_toplevel::State::Activated);
            }
        });
        if toplevel.is_initial_configure_sent() {
            // Sends nothing when the pending state equals the last one sent.
            toplevel.send_pending_configure();
        }
    }
}

/// The popup grab in force (seat user data): the toplevel it belongs to and the grab.
struct ActivePopupGrab(RefCell<Option<(WlSurface, PopupGrab<State>)>>);

/// Remembers the popup grab just started on `seat` for toplevel `root`, so that focusing
/// another window can end it (see [`focus_window`]).
pub fn remember_popup_grab(seat: &Seat<State>, root: WlSurface, grab: PopupGrab<State>) {
    let data = seat.user_data();
    data.insert_if_missing(|| ActivePopupGrab(RefCell::new(None)));
    if let Some(active) = data.get::<ActivePopupGrab>() {
        *active.0.borrow_mut() = Some((root, grab));
    }
}

/// Ends the popup grab of another toplevel than `root`: its popups get `popup_done`, and the
/// popup keyboard grab then lets focus go.
fn end_popup_grab_of_others(state: &State, root: Option<&WlSurface>) {
    let Some(active) = state.core.seat.user_data().get::<ActivePopupGrab>() else {
        return;
    };
    let mut active = active.0.borrow_mut();
    let Some((grab_root, grab)) = active.as_mut() else {
        return;
    };
    if grab.has_ended() {
        *active = None;
    } else if root != Some(&*grab_root) {
        grab.ungrab(PopupUngrabStrategy::All);
        *active = None;
    }
}

/// Focuses and raises `window`. A popup grab of another window ends (xdg-shell: a grabbing
/// popup is dismissed when the compositor gives focus elsewhere, e.g. to a new window).
pub fn focus_window(state: &mut State, window: &Window) {
    end_popup_grab_of_others(state, window.toplevel().map(|t| t.wl_surface()));
    state.core.space.raise_element(window, true);
    let surface = window.toplevel().map(|t| t.wl_surface().clone());
    if let Some(keyboard) = state.core.seat.get_keyboard() {
        keyboard.set_focus(state, surface, SERIAL_COUNTER.next_serial());
    }
    queue_redraw_all(&mut state.core);
}

fn window_of(core: &Core, surface: &ToplevelSurface) -> Option<Window> {
    core.space
        .elements()
        .chain(core.unmapped.iter())
        .find(|w| w.toplevel().is_some_and(|t| t == surface))
        .cloned()
}

fn clamp_to_limits(surface: &ToplevelSurface, size: Size<i32, Logical>) -> Size<i32, Logical> {
    let (min, max) = with_states(surface.wl_surface(), |states| {
        let mut cached = states.cached_state.get::<SurfaceCachedState>();
        let current = cached.current();
        (current.min_size, current.max_size)
    });
    let w = if max.w > 0 { size.w.min(max.w) } else { size.w };
    let h = if max.h > 0 { size.h.min(max.h) } else { size.h };
    (w.max(min.w), h.max(min.h)).into()
}

/// Maximizes (or restores) a toplevel on its output.
pub fn maximize(core: &mut Core, surface: &ToplevelSurface, on: bool) {
    let output = window_of(core, surface)
        .and_then(|w| core.space.outputs_for_element(&w).into_iter().next())
        .or_else(|| active_output(core));
    let area = output.and_then(|o| core.space.output_geometry(&o));
    surface.with_pending_state(|state| {
        if on {
            state.states.set(xdg_toplevel::State::Maximized);
            state.size = area.map(|a| a.size);
        } else {
            state.states.unset(xdg_toplevel::State::Maximized);
            state.size = None;
        }
    });
    if on {
        if let Some(size) = area.map(|a| clamp_to_limits(surface, a.size)) {
            surface.with_pending_state(|state| state.size = Some(size));
        }
        if let (Some(window), Some(area)) = (window_of(core, surface), area) {
            if core.space.element_location(&window).is_some() {
                core.space.map_element(window, area.loc, true);
            }
        }
    }
    if surface.is_initial_configure_sent() {
        surface.send_pending_configure();
    }
}

/// Makes a toplevel fullscreen on `output` (or its own), or leaves fullscreen.
pub fn fullscreen(core: &mut Core, surface: &ToplevelSurface, output: Option<WlOutput>, on: bool) {
    let wl_output = output.clone();
    let output = output
        .and_then(|o| Output::from_resource(&o))
        .or_else(|| {
            window_of(core, surface)
                .and_then(|w| core.space.outputs_for_element(&w).into_iter().next())
        })
        .or_else(|| active_output(core));
    let area = output.as_ref().and_then(|o| core.space.output_geometry(o));
    surface.with_pending_state(|state| {
        if on {
            state.states.set(xdg_toplevel::State::Fullscreen);
            state.size = area.map(|a| a.size);
            state.fullscreen_output = wl_output.clone();
        } else {
            state.states.unset(xdg_toplevel::State::Fullscreen);
            state.size = None;
            state.fullscreen_output = None;
        }
    });
    if on {
        if let (Some(window), Some(area)) = (window_of(core, surface), area) {
            if core.space.element_location(&window).is_some() {
                core.space.map_element(window, area.loc, true);
            }
        }
    }
    if surface.is_initial_configure_sent() {
        surface.send_pending_configure();
    }
}
