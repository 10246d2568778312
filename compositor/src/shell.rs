//! Window management: the bridge between smithay's toplevels and the layout.
//!
//! `layout/` decides where windows go (workspaces, tiling, floating, fullscreen) as plain
//! data; this module feeds it (a window mapped, unmapped, resized, asking for fullscreen) and
//! applies its answer: [`apply_layout`] maps each shown window in the `Space` at its place,
//! unmaps the hidden ones (other workspaces), stacks them in the layout's order and configures
//! each toplevel to the size and states (`tiled_*`, `maximized`, `fullscreen`) it got.
//! Floating windows keep the size they choose, clamped to their output.
//!
//! Every toplevel the layout knows is in `Core::windows` under its [`WindowId`]; the `Space`
//! holds only the shown ones. New windows take keyboard focus; a click focuses (and raises a
//! floating window). After every change the keyboard focus follows the layout's focused
//! window (`Core::focus_dirty`, handled after each dispatch by [`sync_keyboard_focus`]).
//!
//! The focused toplevel has xdg's `activated` state (`update_activated`, called on every
//! keyboard focus change). Focusing another window ends a popup grab. A minimized window
//! (`xdg_toplevel.set_minimized`, a taskbar, the `minimize` action) is hidden like one on
//! another workspace until something focuses it. A floating window that
//! unmaps itself with a null buffer comes back where it was. During an interactive resize
//! (input.rs starts it) the edges opposite the dragged ones stay put as the client commits.

use std::cell::{Cell, RefCell};

use smithay::{
    desktop::{PopupGrab, PopupUngrabStrategy, Window},
    input::Seat,
    reexports::{
        wayland_protocols::xdg::shell::server::xdg_toplevel,
        wayland_server::protocol::wl_surface::WlSurface,
    },
    utils::{Logical, Point, Size, SERIAL_COUNTER},
    wayland::{
        compositor::with_states,
        shell::xdg::{SurfaceCachedState, ToplevelSurface},
    },
};
use tracing::debug;

use crate::{
    frame_clock::queue_redraw_all,
    layout::{Placement, PlacementKind, Rect as LRect, Size as LSize, WindowHints, WindowId},
    state::{Core, State},
};

/// The layout's id for a window (window user data).
struct LayoutId(WindowId);

/// The layout id of `window`, if it has one.
pub fn id_of(window: &Window) -> Option<WindowId> {
    window.user_data().get::<LayoutId>().map(|id| id.0)
}

/// The layout id of `window`, given now if it has none.
fn assign_id(core: &mut Core, window: &Window) -> WindowId {
    if let Some(id) = id_of(window) {
        return id;
    }
    core.next_window_id += 1;
    let id = WindowId(core.next_window_id);
    window.user_data().insert_if_missing(|| LayoutId(id));
    id
}

/// The window (of any workspace) whose toplevel surface is `root`.
pub fn window_for_surface(core: &Core, root: &WlSurface) -> Option<(WindowId, Window)> {
    core.windows
        .iter()
        .find(|(_, w)| w.toplevel().is_some_and(|t| t.wl_surface() == root))
        .map(|(id, w)| (*id, w.clone()))
}

/// The size limits a toplevel has committed.
fn limits_of(toplevel: &ToplevelSurface) -> (LSize, LSize) {
    let (min, max) = with_states(toplevel.wl_surface(), |states| {
        let mut cached = states.cached_state.get::<SurfaceCachedState>();
        let current = cached.current();
        (current.min_size, current.max_size)
    });
    (LSize::new(min.w, min.h), LSize::new(max.w, max.h))
}

/// What the layout needs to know about a toplevel: limits, parent, current size.
pub fn hints_of(window: &Window) -> WindowHints {
    let size = window.geometry().size;
    let Some(toplevel) = window.toplevel() else {
        return WindowHints::default();
    };
    let (min, max) = limits_of(toplevel);
    WindowHints {
        min,
        max,
        has_parent: toplevel.parent().is_some(),
        size: LSize::new(size.w, size.h),
    }
}

/// Adds a toplevel that got its first buffer to the layout and shows it.
fn map_window(core: &mut Core, window: Window) {
    let id = assign_id(core, &window);
    core.windows.insert(id, window.clone());
    core.layout.add_window(id, hints_of(&window));
    // A window that unmapped itself (null buffer) comes back where it was.
    if let Some(location) = take_last_location(&window) {
        let size = window.geometry().size;
        core.layout
            .set_floating_rect(id, LRect::new(location.x, location.y, size.w, size.h));
    }
    // States asked for before the first buffer.
    if let Some(toplevel) = window.toplevel() {
        let (fullscreen, maximized) = toplevel.with_pending_state(|state| {
            (
                state.states.contains(xdg_toplevel::State::Fullscreen),
                state.states.contains(xdg_toplevel::State::Maximized),
            )
        });
        if fullscreen {
            core.layout.set_fullscreen(id, Some(true));
        }
        if maximized {
            core.layout.set_maximized(id, Some(true));
        }
    }
    debug!(window = %id, "mapping window");
    apply_layout(core);
    core.focus_request = Some(window);
}

/// Adds a mapped X11 window to the layout (`xwayland/wm.rs` decides when and with which
/// hints); `fullscreen` when it asked for it before mapping.
pub fn map_x11_window(core: &mut Core, window: Window, hints: WindowHints, fullscreen: bool) {
    let id = assign_id(core, &window);
    core.windows.insert(id, window.clone());
    core.layout.add_window(id, hints);
    if fullscreen {
        core.layout.set_fullscreen(id, Some(true));
    }
    debug!(window = %id, "mapping X11 window");
    apply_layout(core);
    core.focus_request = Some(window);
}

/// Removes `window` from the layout, the window list and the space (not applied yet).
pub fn unmap_window(core: &mut Core, window: &Window) {
    if let Some(id) = id_of(window) {
        core.windows.remove(&id);
        core.layout.remove_window(id);
    }
    core.space.unmap_elem(window);
    core.focus_dirty = true;
}

/// Applies the layout: shown windows mapped at their place in stacking order and configured
/// to their size and states, hidden ones unmapped. Queues redraws and a pointer refresh, and
/// lets the keyboard focus follow the layout's.
pub fn apply_layout(core: &mut Core) {
    let placements = core.layout.arrange();
    for placement in &placements {
        let Some(window) = core.windows.get(&placement.id).cloned() else {
            continue;
        };
        if !placement.visible {
            if core.space.element_location(&window).is_some() {
                core.space.unmap_elem(&window);
            }
            continue;
        }
        configure_placed(core, &window, placement);
        let location = Point::from((placement.content.x, placement.content.y));
        if core.space.element_location(&window) != Some(location) {
            core.space.map_element(window.clone(), location, false);
        }
        // Bottom first: raising each in turn leaves them in the layout's stacking order.
        core.space.raise_element(&window, false);
    }
    crate::xwayland::wm::raise_override_redirect(core);
    core.focus_dirty = true;
    queue_pointer_refresh(core);
    queue_redraw_all(core);
}

/// Sets the toplevel's size and states for `placement` and sends a configure if they changed.
fn configure_placed(core: &Core, window: &Window, placement: &Placement) {
    use xdg_toplevel::State as S;
    if let Some(x11) = window.x11_surface() {
        crate::xwayland::wm::configure_placed(x11, placement);
        return;
    }
    let Some(toplevel) = window.toplevel() else {
        return;
    };
    let size = Size::from((placement.content.w, placement.content.h));
    let output_size = core
        .layout
        .outputs()
        .iter()
        .find(|o| o.name == placement.output)
        .map(|o| o.working.size());
    let current = window.geometry().size;
    let tiled = [S::TiledLeft, S::TiledRight, S::TiledTop, S::TiledBottom];
    toplevel.with_pending_state(|state| {
        let was_managed =
            state.states.contains(S::Fullscreen) || state.states.contains(S::Maximized);
        for s in [S::Fullscreen, S::Maximized].into_iter().chain(tiled) {
            state.states.unset(s);
        }
        match placement.kind {
            PlacementKind::Tiled => {
                for s in tiled {
                    state.states.set(s);
                }
                state.size = Some(size);
            }
            PlacementKind::Maximized => {
                state.states.set(S::Maximized);
                state.size = Some(size);
            }
            PlacementKind::Fullscreen => {
                state.states.set(S::Fullscreen);
                state.size = Some(size);
            }
            PlacementKind::Floating => {
                // Floating windows choose their size, but never larger than their output.
                let too_big = output_size.is_some_and(|o| current.w > o.w || current.h > o.h);
                if too_big {
                    state.size = Some(size);
                } else if was_managed {
                    state.size = None;
                }
            }
        }
    });
    if matches!(
        placement.kind,
        PlacementKind::Tiled | PlacementKind::Maximized
    ) {
        // A max size smaller than the tile is honoured (the layout centres the window).
        let clamped = clamp_to_limits(toplevel, size);
        if clamped.w <= size.w && clamped.h <= size.h {
            toplevel.with_pending_state(|state| state.size = Some(clamped));
        }
    }
    if toplevel.is_initial_configure_sent() {
        // Sends nothing when the pending state equals the last one sent.
        toplevel.send_pending_configure();
    }
}

/// Before the initial configure of a new toplevel: the size the layout will give it (when
/// tiled), so that the client draws its first buffer at the right size.
pub fn prepare_initial_configure(core: &Core, toplevel: &ToplevelSurface) {
    let (min, max) = limits_of(toplevel);
    let hints = WindowHints {
        min,
        max,
        has_parent: toplevel.parent().is_some(),
        size: LSize::default(),
    };
    let Some(size) = core.layout.new_window_size(hints) else {
        return;
    };
    toplevel.with_pending_state(|state| {
        if state.size.is_none() {
            state.size = Some(Size::from((size.w, size.h)));
        }
    });
}

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
            map_window(core, window);
        }
        return;
    }
    let Some((id, window)) = window_for_surface(core, root) else {
        return;
    };
    if !has_buffer(root) {
        // A null buffer unmaps the toplevel; it must be configured again before it maps.
        unmap_toplevel(core, root, false);
        return;
    }
    let delta = crate::handlers::compositor::take_buffer_delta(root);
    if core.layout.kind_of(id) == Some(PlacementKind::Floating)
        && core.space.element_location(&window).is_some()
    {
        // Floating windows move as the client asks (buffer offsets, growing subsurfaces,
        // resizing from the left or top); the layout learns where they ended up.
        if let Some(delta) = delta {
            if let Some(loc) = core.space.element_location(&window) {
                core.space.map_element(window.clone(), loc + delta, false);
            }
        }
        keep_surface_origin(core, &window);
        keep_resize_anchor(core, &window);
        if let Some(loc) = core.space.element_location(&window) {
            let size = window.geometry().size;
            core.layout
                .set_floating_rect(id, LRect::new(loc.x, loc.y, size.w, size.h));
        }
    }
    let hints = hints_of(&window);
    if core
        .layout
        .find(id)
        .is_some_and(|(_, _, e)| e.hints != hints)
    {
        core.layout.set_hints(id, hints);
        apply_layout(core);
    }
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

/// Where a window resized by `edges` from `start`/`size_start` to `size` has its origin: the
/// edges opposite the dragged ones stay put.
pub fn resize_origin(
    start: Point<i32, Logical>,
    size_start: Size<i32, Logical>,
    edges: xdg_toplevel::ResizeEdge,
    size: Size<i32, Logical>,
) -> Point<i32, Logical> {
    let edges = u32::from(edges);
    let mut origin = start;
    if edges & EDGE_LEFT != 0 {
        origin.x = start.x + size_start.w - size.w;
    }
    if edges & EDGE_TOP != 0 {
        origin.y = start.y + size_start.h - size.h;
    }
    origin
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

/// Removes the toplevel of `surface` from the layout and the space; `destroyed` drops it for
/// good, else it goes back to the unmapped list to be configured and mapped again.
pub fn unmap_toplevel(core: &mut Core, surface: &WlSurface, destroyed: bool) {
    if let Some((id, window)) = window_for_surface(core, surface) {
        let floating = core.layout.kind_of(id) == Some(PlacementKind::Floating);
        if let (false, true, Some(location)) =
            (destroyed, floating, core.space.element_location(&window))
        {
            window
                .user_data()
                .insert_if_missing(|| LastLocation(Cell::new(None)));
            if let Some(last) = window.user_data().get::<LastLocation>() {
                last.0.set(Some(location));
            }
        }
        core.space.unmap_elem(&window);
        core.windows.remove(&id);
        core.layout.remove_window(id);
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
        apply_layout(core);
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
pub fn active_output(core: &Core) -> Option<smithay::output::Output> {
    let pointer = core.seat.get_pointer().map(|p| p.current_location());
    pointer
        .and_then(|p| core.space.output_under(p).next().cloned())
        .or_else(|| core.space.outputs().next().cloned())
}

/// Tells the layout about every output in the space (added, moved, resized) and forgets
/// those that left, then applies it. Backends call this after changing outputs.
pub fn sync_outputs(core: &mut Core) {
    let present: Vec<(String, LRect)> = core
        .space
        .outputs()
        .filter_map(|o| {
            let g = core.space.output_geometry(o)?;
            Some((o.name(), LRect::new(g.loc.x, g.loc.y, g.size.w, g.size.h)))
        })
        .collect();
    let gone: Vec<String> = core
        .layout
        .outputs()
        .iter()
        .map(|o| o.name.clone())
        .filter(|name| !present.iter().any(|(n, _)| n == name))
        .collect();
    for name in gone {
        core.layout.remove_output(&name);
    }
    for (name, area) in present {
        core.layout.add_output(&name, area);
    }
    // New sizes for panels and lock surfaces; the working areas follow the panels.
    crate::handlers::layer_shell::arrange_all(core);
    crate::handlers::session_lock::outputs_changed(core);
    apply_layout(core);
}

/// Who must have the keyboard whatever the layout says: while the session is locked, the
/// lock surface of the focused output (or nobody until there is one); else the topmost
/// layer surface with exclusive keyboard interactivity. `None`: the layout decides.
pub fn forced_focus(core: &Core) -> Option<Option<WlSurface>> {
    if core.is_locked() {
        return Some(core.lock_focus());
    }
    crate::handlers::layer_shell::exclusive_focus(core).map(Some)
}

/// Gives the keyboard to a layer surface (an on-demand one that mapped or was clicked),
/// unless the lock or an exclusive layer surface holds it.
pub fn focus_layer_surface(state: &mut State, surface: WlSurface) {
    use smithay::reexports::wayland_server::Resource;
    if !surface.is_alive() || forced_focus(&state.core).is_some() {
        return;
    }
    if let Some(keyboard) = state.core.seat.get_keyboard() {
        keyboard.set_focus(state, Some(surface), SERIAL_COUNTER.next_serial());
    }
}

/// Gives the keyboard to [`forced_focus`]'s surface, and back to the layout's focused window
/// once nothing forces it any more (the lock ended, the launcher closed). Runs after every
/// dispatch.
pub fn sync_forced_focus(state: &mut State) {
    let Some(keyboard) = state.core.seat.get_keyboard() else {
        return;
    };
    match forced_focus(&state.core) {
        Some(target) => {
            state.core.focus_forced = true;
            let current = keyboard
                .current_focus()
                .map(|s| toplevel_root(&state.core, &s));
            if current != target {
                keyboard.set_focus(state, target, SERIAL_COUNTER.next_serial());
            }
        }
        None if state.core.focus_forced => {
            state.core.focus_forced = false;
            let wanted = layout_focus_surface(&state.core);
            keyboard.set_focus(state, wanted, SERIAL_COUNTER.next_serial());
        }
        None => {}
    }
}

/// The surface of the layout's focused window.
fn layout_focus_surface(core: &Core) -> Option<WlSurface> {
    core.layout
        .focused()
        .and_then(|id| core.windows.get(&id))
        .and_then(crate::xwayland::wm::window_surface)
}

/// Gives keyboard focus to the layout's focused window when it does not have it (the
/// focused window closed, moved to another workspace, or an action focused another one).
/// Focus on a popup of the focused window stays; so does focus on something that is not a
/// window while the layout has nothing to focus.
pub fn sync_keyboard_focus(state: &mut State) {
    if forced_focus(&state.core).is_some() {
        sync_forced_focus(state);
        return;
    }
    let Some(keyboard) = state.core.seat.get_keyboard() else {
        return;
    };
    let wanted = layout_focus_surface(&state.core);
    let current = keyboard
        .current_focus()
        .map(|s| toplevel_root(&state.core, &s));
    if current == wanted {
        return;
    }
    if wanted.is_none() {
        // Keep focus that is on no window of the layout, or on a window still shown; never on
        // a destroyed surface (the keyboard would keep it, and its buffers, alive).
        let keep = current.as_ref().is_some_and(|s| {
            use smithay::reexports::wayland_server::Resource;
            s.is_alive() && window_for_surface(&state.core, s).is_none()
                || state
                    .core
                    .space
                    .elements()
                    .any(|w| crate::xwayland::wm::window_surface(w).as_ref() == Some(s))
        });
        if keep {
            return;
        }
    }
    end_popup_grab_of_others(state, wanted.as_ref());
    keyboard.set_focus(state, wanted, SERIAL_COUNTER.next_serial());
}

/// Takes keyboard focus from the toplevel of `surface` (it is going away), then lets it
/// follow the layout (to the window the layout focuses next).
pub fn focus_away_from(state: &mut State, surface: &WlSurface) {
    if let Some(keyboard) = state.core.seat.get_keyboard() {
        let on_it = keyboard
            .current_focus()
            .is_some_and(|s| toplevel_root(&state.core, &s) == *surface);
        if on_it {
            keyboard.set_focus(state, None, SERIAL_COUNTER.next_serial());
        }
    }
    sync_keyboard_focus(state);
}

/// The toplevel surface that `surface` (a subsurface or popup of it, or itself) belongs to.
pub fn toplevel_root(core: &Core, surface: &WlSurface) -> WlSurface {
    let mut root = surface.clone();
    while let Some(parent) = smithay::wayland::compositor::get_parent(&root) {
        root = parent;
    }
    match core.popups.find_popup(&root) {
        Some(popup) => smithay::desktop::find_popup_root_surface(&popup).unwrap_or(root),
        None => root,
    }
}

/// Gives the `activated` state to the toplevel that owns keyboard focus `focused` (a toplevel
/// surface, one of its subsurfaces, or a popup of it) and takes it from every other toplevel,
/// sending a configure to those that changed.
pub fn update_activated(core: &Core, focused: Option<&WlSurface>) {
    let root = focused.map(|surface| toplevel_root(core, surface));
    for window in core.windows.values().chain(core.unmapped.iter()) {
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

/// Focuses `window` (showing its workspace, raising it when floating). A popup grab of
/// another window ends (xdg-shell: a grabbing popup is dismissed when the compositor gives
/// focus elsewhere, e.g. to a new window).
pub fn focus_window(state: &mut State, window: &Window) {
    let surface = crate::xwayland::wm::window_surface(window);
    end_popup_grab_of_others(state, surface.as_ref());
    if let Some(id) = id_of(window).filter(|id| state.core.layout.contains(*id)) {
        state.core.layout.focus_window(id);
        apply_layout(&mut state.core);
    }
    state.core.focus_dirty = false;
    if forced_focus(&state.core).is_some() {
        // The lock screen or an exclusive launcher keeps the keyboard; the window gets it
        // when that ends (it is the layout's focused window now).
        return;
    }
    if let Some(keyboard) = state.core.seat.get_keyboard() {
        keyboard.set_focus(state, surface, SERIAL_COUNTER.next_serial());
    }
    queue_redraw_all(&mut state.core);
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

/// Asks floating `window`'s client to take `size` (a keyboard resize; the layout already
/// moved its idea of the window to that size). The client's next commit tells the layout what
/// it really took.
pub fn request_size(window: &Window, size: LSize) {
    if let Some(x11) = window.x11_surface() {
        let mut rect = x11.geometry();
        rect.size = Size::from((size.w, size.h));
        if let Err(err) = x11.configure(rect) {
            debug!(%err, "cannot resize an X11 window");
        }
        return;
    }
    let Some(toplevel) = window.toplevel() else {
        return;
    };
    let size = clamp_to_limits(toplevel, Size::from((size.w, size.h)));
    toplevel.with_pending_state(|state| state.size = Some(size));
    if toplevel.is_initial_configure_sent() {
        toplevel.send_pending_configure();
    }
}

/// Maximizes (or restores) a toplevel: through the layout once it is mapped, else as the
/// state its initial configure carries.
pub fn maximize(core: &mut Core, surface: &ToplevelSurface, on: bool) {
    match window_for_surface(core, surface.wl_surface()) {
        Some((id, _)) => {
            core.layout.set_maximized(id, Some(on));
            apply_layout(core);
        }
        None => {
            set_unmapped_size(core, surface, on, true);
            set_unmapped_state(surface, xdg_toplevel::State::Maximized, on);
        }
    }
}

/// Minimizes a toplevel (`xdg_toplevel.set_minimized`): it leaves the layout's tiling and
/// the space, and keyboard focus moves on; activating it brings it back. A toplevel that is
/// not mapped yet has nothing to hide, and xdg-shell has no unminimize request: the request
/// is then ignored, as the protocol allows.
pub fn minimize(core: &mut Core, surface: &ToplevelSurface) {
    match window_for_surface(core, surface.wl_surface()) {
        Some((id, _)) => {
            core.layout.set_minimized(id, Some(true));
            apply_layout(core);
        }
        None => debug!("minimize of an unmapped toplevel ignored"),
    }
}

/// Makes a toplevel fullscreen (on its own output), or leaves fullscreen: through the layout
/// once it is mapped, else as the state its initial configure carries.
pub fn fullscreen(core: &mut Core, surface: &ToplevelSurface, on: bool) {
    match window_for_surface(core, surface.wl_surface()) {
        Some((id, _)) => {
            core.layout.set_fullscreen(id, Some(on));
            apply_layout(core);
        }
        None => {
            set_unmapped_size(core, surface, on, false);
            set_unmapped_state(surface, xdg_toplevel::State::Fullscreen, on);
        }
    }
}

/// A toplevel that asks to be fullscreen or maximized before it is mapped is configured to
/// the size it will get on the output it will open on: fullscreen the whole output, maximized
/// the working area (without panels) inside the border. Its first buffer then already fits
/// (a game or video player that starts fullscreen); the layout confirms the size at map time.
fn set_unmapped_size(core: &Core, surface: &ToplevelSurface, on: bool, maximized: bool) {
    if !on {
        return;
    }
    let Some(output) = active_output(core) else {
        return;
    };
    let Some(full) = core.space.output_geometry(&output).map(|g| g.size) else {
        return;
    };
    // Maximized: the output's working area (panels excluded) inside the border, as the
    // layout will place it.
    let size = match core
        .layout
        .outputs()
        .iter()
        .find(|o| o.name == output.name())
    {
        Some(o) if maximized => {
            let area = o.working.shrink(core.layout.config().border_width.max(0));
            Size::from((area.w, area.h))
        }
        _ => full,
    };
    surface.with_pending_state(|state| state.size = Some(size));
}

/// Sets `state` on a toplevel that is not mapped yet; the layout takes it over at map time.
fn set_unmapped_state(surface: &ToplevelSurface, state: xdg_toplevel::State, on: bool) {
    surface.with_pending_state(|pending| {
        if on {
            pending.states.set(state);
        } else {
            pending.states.unset(state);
        }
    });
    if surface.is_initial_configure_sent() {
        surface.send_pending_configure();
    }
}
