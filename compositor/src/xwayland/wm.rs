//! The X11 window manager glue: smithay's `X11Wm` reports X windows, lockstep places them.
//!
//! **Managed windows** go into the same layout as Wayland toplevels, as smithay `Window`s
//! made with `Window::new_x11_window`: `shell.rs` tiles, floats (transient, dialog-type and
//! fixed-size windows) and fullscreens them by the same rules, and configures the X window to
//! its place with `X11Surface::configure` (X positions are global logical coordinates, so
//! override-redirect menus that X clients place in root coordinates land where they should).
//! **Override-redirect windows** (menus, tooltips, drag icons) are mapped in the space where
//! X put them, above every managed window, and follow their ConfigureNotify; they are not in
//! the layout.
//!
//! **Surfaces.** X11 windows are drawn from a wl_surface of the Xwayland client. Xwayland
//! 23.1 and later name it through xwayland-shell, and smithay then fills in
//! `X11Surface::wl_surface`. Xwayland 22.1 (Debian bookworm) only sends the surface's
//! protocol id (`WL_SURFACE_ID`), which smithay records without looking it up; lockstep
//! then pairs the window with the surface itself (`pair_surfaces`, after every dispatch,
//! since the id and the surface arrive on two connections in either order) and keeps it in
//! the X11Surface's user data. [`surface_of`] answers for both kinds; rendering, hit
//! testing, frame callbacks and keyboard focus all go through it (smithay's `Window` methods
//! see no surface for a 22.1 window).
//!
//! **Focus.** The keyboard focus is a wl_surface, as for Wayland windows. When it moves to an
//! X11 window, lockstep also applies the ICCCM rules through smithay's X11Surface keyboard
//! target (SetInputFocus for the input hint, WM_TAKE_FOCUS for windows that ask for it), sets
//! `_NET_WM_STATE_FOCUSED` and raises the window in X's stacking order. For an Xwayland 23.1+
//! window (smithay knows its surface) only the last two happen: smithay's keyboard target
//! would also send a second wl_keyboard.enter to a surface the seat already entered. That case
//! is not tested here (bookworm has 22.1).
//!
//! **Closing** sends WM_DELETE_WINDOW (smithay destroys windows that do not speak it); a
//! second close of the same window kills its client: the pid the X server knows from the
//! socket (X-Resource), never the `_NET_WM_PID` a client claims.

use std::sync::Mutex;

use smithay::{
    desktop::Window,
    input::{keyboard::KeyboardTarget, Seat},
    reexports::wayland_server::{protocol::wl_surface::WlSurface, Resource},
    utils::{Logical, Point, Rectangle, Size, SERIAL_COUNTER},
    wayland::{
        selection::SelectionTarget,
        xwayland_shell::{XWaylandShellHandler, XWaylandShellState},
    },
    xwayland::{
        xwm::{Reorder, ResizeEdge, WmWindowType, XwmId},
        X11Surface, X11Wm, XwmHandler,
    },
};
use tracing::{debug, info, warn};

use crate::{
    frame_clock::queue_redraw_all,
    layout::{Placement, PlacementKind, Rect as LRect, Size as LSize, WindowHints},
    state::{Core, State},
};

/// X11 windows lockstep tracks beyond the layout.
#[derive(Default)]
pub struct X11Windows {
    /// Mapped override-redirect windows, bottom to top.
    override_redirect: Vec<Window>,
    /// Mapped windows whose wl_surface is not known yet.
    unpaired: Vec<X11Surface>,
    /// The X11 window that has X's input focus (lockstep gave it).
    focused: Option<X11Surface>,
    /// WMs of Xwaylands that exited, kept so that smithay's late callbacks for them (selection
    /// transfers in flight) still find their WM; the oldest go first.
    retired: Vec<X11Wm>,
}

/// How many exited Xwaylands' WMs are kept.
const RETIRED_WMS: usize = 4;

/// The wl_surface lockstep paired with an X11 window (X11Surface user data).
#[derive(Default)]
struct PairedSurface(Mutex<Option<WlSurface>>);

/// A close was requested once (X11Surface user data): the next one kills.
struct CloseRequested;

/// The wl_surface an X11 window is drawn from: smithay's (Xwayland 23.1+) or the one lockstep
/// paired (older Xwayland).
pub fn surface_of(x11: &X11Surface) -> Option<WlSurface> {
    x11.wl_surface().or_else(|| paired(x11))
}

fn paired(x11: &X11Surface) -> Option<WlSurface> {
    let data = x11.user_data().get::<PairedSurface>()?;
    let surface = data.0.lock().ok()?.clone()?;
    surface.is_alive().then_some(surface)
}

fn set_paired(x11: &X11Surface, surface: Option<WlSurface>) {
    x11.user_data()
        .insert_if_missing_threadsafe(PairedSurface::default);
    if let Some(data) = x11.user_data().get::<PairedSurface>() {
        if let Ok(mut slot) = data.0.lock() {
            *slot = surface;
        }
    }
}

/// The wl_surface a window (Wayland or X11) is drawn from.
pub fn window_surface(window: &Window) -> Option<WlSurface> {
    match window.x11_surface() {
        Some(x11) => surface_of(x11),
        None => window.toplevel().map(|t| t.wl_surface().clone()),
    }
}

/// The surface lockstep must draw itself for `window`: an X11 window's paired surface, when
/// smithay's `Window` does not know it (its own rendering then shows nothing).
pub fn surface_to_draw(window: &Window) -> Option<WlSurface> {
    let x11 = window.x11_surface()?;
    if x11.wl_surface().is_some() {
        return None;
    }
    paired(x11)
}

/// Pairs mapped X11 windows with the wl_surfaces Xwayland named for them (`WL_SURFACE_ID`).
pub(crate) fn pair_surfaces(state: &mut State) {
    let core = &mut state.core;
    if core.xwayland.windows.unpaired.is_empty() {
        return;
    }
    let Some(client) = core
        .xwayland
        .xwayland
        .as_ref()
        .and_then(|x| x.client().cloned())
    else {
        return;
    };
    let dh = core.display_handle.clone();
    let mut paired_any = false;
    let unpaired = std::mem::take(&mut core.xwayland.windows.unpaired);
    for x11 in unpaired {
        if !x11.alive() {
            continue;
        }
        if surface_of(&x11).is_some() {
            paired_any = true;
            continue;
        }
        // Deprecated in smithay for Xwayland 23.1+, which is exactly why it is used here: the
        // only association Xwayland 22.1 offers.
        #[allow(deprecated)]
        let surface_id = x11.wl_surface_id();
        let surface = surface_id
            .and_then(|id| client.object_from_protocol_id::<WlSurface>(&dh, id).ok())
            .filter(|s| s.is_alive() && !surface_taken(core, s));
        match surface {
            Some(surface) => {
                debug!(window = x11.window_id(), surface = ?surface.id(), "paired X11 window with its wl_surface");
                set_paired(&x11, Some(surface));
                paired_any = true;
            }
            None => core.xwayland.windows.unpaired.push(x11),
        }
    }
    if paired_any {
        crate::shell::apply_layout(core);
        queue_redraw_all(core);
    }
}

/// Whether another X11 window already has `surface` (its id was reused).
fn surface_taken(core: &Core, surface: &WlSurface) -> bool {
    all_x11(core).any(|x| paired(&x).as_ref() == Some(surface))
}

/// Every X11 window lockstep knows (managed and override-redirect).
fn all_x11(core: &Core) -> impl Iterator<Item = X11Surface> + '_ {
    core.windows
        .values()
        .chain(core.xwayland.windows.override_redirect.iter())
        .filter_map(|w| w.x11_surface().cloned())
}

/// The managed window of `x11`, with its layout id.
fn managed(core: &Core, x11: &X11Surface) -> Option<(crate::layout::WindowId, Window)> {
    core.windows
        .iter()
        .find(|(_, w)| w.x11_surface() == Some(x11))
        .map(|(id, w)| (*id, w.clone()))
}

/// What the layout needs to know about an X11 window.
pub fn hints_of(x11: &X11Surface) -> WindowHints {
    let to_size =
        |s: Option<Size<i32, Logical>>| s.map(|s| LSize::new(s.w, s.h)).unwrap_or_default();
    let dialog_type = matches!(
        x11.window_type(),
        Some(
            WmWindowType::Dialog
                | WmWindowType::Utility
                | WmWindowType::Toolbar
                | WmWindowType::Splash
        )
    );
    let size = x11.geometry().size;
    WindowHints {
        min: to_size(x11.min_size()),
        max: to_size(x11.max_size()),
        has_parent: x11.is_transient_for().is_some() || dialog_type || x11.is_popup(),
        size: LSize::new(size.w, size.h),
    }
}

/// Configures the X window of a placed managed window: its rectangle and its
/// fullscreen/maximized states.
pub fn configure_placed(x11: &X11Surface, placement: &Placement) {
    let content = placement.content;
    let mut rect = Rectangle::new(
        Point::from((content.x, content.y)),
        Size::from((content.w, content.h)),
    );
    if placement.kind == PlacementKind::Floating {
        // Floating windows keep their own size (the layout clamps it to the output).
        let own = x11.geometry().size;
        if own.w > 0 && own.h > 0 && own.w <= content.w.max(1) && own.h <= content.h.max(1) {
            rect.size = own;
        }
    }
    let fullscreen = placement.kind == PlacementKind::Fullscreen;
    let maximized = placement.kind == PlacementKind::Maximized;
    if x11.is_fullscreen() != fullscreen {
        if let Err(err) = x11.set_fullscreen(fullscreen) {
            debug!(%err, "cannot set _NET_WM_STATE_FULLSCREEN");
        }
    }
    if x11.is_maximized() != maximized {
        if let Err(err) = x11.set_maximized(maximized) {
            debug!(%err, "cannot set _NET_WM_STATE_MAXIMIZED");
        }
    }
    if x11.geometry() != rect {
        if let Err(err) = x11.configure(rect) {
            debug!(%err, "cannot configure an X11 window");
        }
    }
}

/// An X11 window dragged with Super (input.rs): moved to `location`, and resized to `size` if
/// given; the layout, the space and X learn it at once.
pub fn place_dragged(
    core: &mut Core,
    x11: &X11Surface,
    location: Point<i32, Logical>,
    size: Option<Size<i32, Logical>>,
) {
    let size = size.unwrap_or(x11.geometry().size);
    let size = Size::from((size.w.max(1), size.h.max(1)));
    let Some((id, window)) = managed(core, x11) else {
        return;
    };
    core.layout
        .set_floating_rect(id, LRect::new(location.x, location.y, size.w, size.h));
    core.space.map_element(window, location, true);
    if let Err(err) = x11.configure(Rectangle::new(location, size)) {
        debug!(%err, "cannot configure an X11 window");
    }
    queue_redraw_all(core);
}

/// Raises the override-redirect windows above every managed one (after the layout restacked).
pub fn raise_override_redirect(core: &mut Core) {
    for window in core.xwayland.windows.override_redirect.clone() {
        if core.space.element_location(&window).is_some() {
            core.space.raise_element(&window, false);
        }
    }
}

/// Removes every X11 window (Xwayland went away).
pub fn remove_all(state: &mut State) {
    let core = &mut state.core;
    let managed: Vec<Window> = core
        .windows
        .values()
        .filter(|w| w.x11_surface().is_some())
        .cloned()
        .collect();
    let count = managed.len() + core.xwayland.windows.override_redirect.len();
    for window in managed {
        crate::shell::unmap_window(core, &window);
    }
    for window in std::mem::take(&mut core.xwayland.windows.override_redirect) {
        core.space.unmap_elem(&window);
    }
    core.xwayland.windows.unpaired.clear();
    core.xwayland.windows.focused = None;
    if count > 0 {
        info!(
            windows = count,
            "removed the windows of the Xwayland that went away"
        );
    }
    crate::shell::apply_layout(core);
}

/// Keyboard focus moved to `focused`: X's input focus follows (ICCCM), and the X11 window
/// that got it is raised in X's stacking order and gets `_NET_WM_STATE_FOCUSED`.
pub fn keyboard_focus_changed(state: &mut State, seat: &Seat<State>, focused: Option<&WlSurface>) {
    let target = focused
        .and_then(|surface| all_x11(&state.core).find(|x| surface_of(x).as_ref() == Some(surface)));
    let previous = state.core.xwayland.windows.focused.clone();
    if previous == target {
        return;
    }
    let serial = SERIAL_COUNTER.next_serial();
    if let Some(previous) = previous.filter(|p| p.alive()) {
        let _ = previous.set_activated(false);
        // Only X's side (smithay forwards to the wl_surface it knows, and the seat already
        // moved the Wayland focus): for Xwayland 23.1+ the seat's own leave is enough.
        if previous.wl_surface().is_none() {
            KeyboardTarget::leave(&previous, seat, state, serial);
        }
    }
    state.core.xwayland.windows.focused = target.clone();
    let Some(x11) = target else {
        return;
    };
    let _ = x11.set_activated(true);
    if x11.wl_surface().is_none() {
        KeyboardTarget::enter(&x11, seat, state, Vec::new(), serial);
    }
    if let Some(wm) = state.core.xwayland.xwayland.as_mut().and_then(|x| x.wm()) {
        if let Err(err) = wm.raise_window(&x11) {
            debug!(%err, "cannot raise an X11 window");
        }
    }
}

/// Asks an X11 window to close; a second request kills its client.
pub fn close(x11: &X11Surface) -> &'static str {
    if x11.user_data().get::<CloseRequested>().is_none() {
        x11.user_data()
            .insert_if_missing_threadsafe(|| CloseRequested);
        if let Err(err) = x11.close() {
            warn!(%err, "cannot ask an X11 window to close");
        }
        return "asked the focused window to close";
    }
    // The X server knows the client's pid from its socket; 0 means it does not.
    match x11.get_client_pid() {
        Ok(pid) if pid > 0 && pid != std::process::id() => {
            match rustix::process::Pid::from_raw(pid as i32) {
                Some(pid) => {
                    let result = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    info!(
                        pid = pid.as_raw_nonzero().get(),
                        ?result,
                        "killed an X11 client that did not close"
                    );
                    "killed the focused window's X11 client"
                }
                None => "the X11 client's pid is unknown",
            }
        }
        Ok(_) => "the X11 client's pid is unknown",
        Err(err) => {
            warn!(%err, "cannot ask the X server for a client's pid");
            "the X11 client's pid is unknown"
        }
    }
}

/// Removes an unmapped or destroyed X11 window from wherever lockstep has it.
fn forget(state: &mut State, x11: &X11Surface) {
    let core = &mut state.core;
    core.xwayland.windows.unpaired.retain(|x| x != x11);
    if let Some(index) = core
        .xwayland
        .windows
        .override_redirect
        .iter()
        .position(|w| w.x11_surface() == Some(x11))
    {
        let window = core.xwayland.windows.override_redirect.remove(index);
        core.space.unmap_elem(&window);
        queue_redraw_all(core);
    }
    if let Some((_, window)) = managed(core, x11) {
        crate::shell::unmap_window(core, &window);
        crate::shell::apply_layout(core);
    }
    if core.xwayland.windows.focused.as_ref() == Some(x11) {
        core.xwayland.windows.focused = None;
    }
    set_paired(x11, None);
    crate::shell::queue_pointer_refresh(core);
}

fn track_unpaired(core: &mut Core, x11: &X11Surface) {
    if surface_of(x11).is_none() && !core.xwayland.windows.unpaired.contains(x11) {
        core.xwayland.windows.unpaired.push(x11.clone());
    }
}

impl XwmHandler for State {
    fn xwm_state(&mut self, xwm: XwmId) -> &mut X11Wm {
        // smithay calls this only from the WM's own event sources. The current WM answers for
        // its id; a retired one for late callbacks of an Xwayland that exited.
        let windows = &mut self.core.xwayland.windows;
        let retired = windows.retired.iter().position(|wm| wm.id() == xwm);
        let current = self.core.xwayland.xwayland.as_mut().and_then(|x| x.wm());
        match (current, retired) {
            (Some(wm), _) if wm.id() == xwm => wm,
            (_, Some(index)) => &mut windows.retired[index],
            (Some(wm), None) => wm,
            // calloop delivers a WM's events before its `Closed`, and a WM is retired (not
            // dropped) when it closes, so some WM always exists when smithay asks.
            (None, None) => windows
                .retired
                .last_mut()
                .expect("an X11 event arrived for a WM that never existed"),
        }
    }

    fn new_window(&mut self, _xwm: XwmId, window: X11Surface) {
        debug!(window = window.window_id(), "new X11 window");
    }

    fn new_override_redirect_window(&mut self, _xwm: XwmId, window: X11Surface) {
        debug!(
            window = window.window_id(),
            "new override-redirect X11 window"
        );
    }

    fn map_window_request(&mut self, _xwm: XwmId, x11: X11Surface) {
        if let Err(err) = x11.set_mapped(true) {
            warn!(%err, "cannot map an X11 window");
            return;
        }
        if managed(&self.core, &x11).is_some() {
            return;
        }
        debug!(window = x11.window_id(), title = %x11.title(), class = %x11.class(), "mapping X11 window");
        let window = Window::new_x11_window(x11.clone());
        track_unpaired(&mut self.core, &x11);
        let fullscreen = x11.is_fullscreen();
        crate::shell::map_x11_window(&mut self.core, window, hints_of(&x11), fullscreen);
    }

    fn mapped_override_redirect_window(&mut self, _xwm: XwmId, x11: X11Surface) {
        let core = &mut self.core;
        if core
            .xwayland
            .windows
            .override_redirect
            .iter()
            .any(|w| w.x11_surface() == Some(&x11))
        {
            return;
        }
        let window = Window::new_x11_window(x11.clone());
        let location = x11.geometry().loc;
        core.space.map_element(window.clone(), location, true);
        core.xwayland.windows.override_redirect.push(window);
        track_unpaired(core, &x11);
        queue_redraw_all(core);
    }

    fn unmapped_window(&mut self, _xwm: XwmId, x11: X11Surface) {
        forget(self, &x11);
        if !x11.is_override_redirect() && x11.alive() {
            let _ = x11.set_mapped(false);
        }
    }

    fn destroyed_window(&mut self, _xwm: XwmId, x11: X11Surface) {
        forget(self, &x11);
    }

    fn configure_request(
        &mut self,
        _xwm: XwmId,
        x11: X11Surface,
        x: Option<i32>,
        y: Option<i32>,
        w: Option<u32>,
        h: Option<u32>,
        _reorder: Option<Reorder>,
    ) {
        let core = &mut self.core;
        let current = x11.geometry();
        let clamp = |v: u32| i32::try_from(v).unwrap_or(i32::MAX).clamp(1, 1 << 15);
        let asked = Rectangle::new(
            Point::from((x.unwrap_or(current.loc.x), y.unwrap_or(current.loc.y))),
            Size::from((
                w.map(clamp).unwrap_or(current.size.w),
                h.map(clamp).unwrap_or(current.size.h),
            )),
        );
        match managed(core, &x11) {
            None => {
                // Not mapped yet: it may be where and how big it likes.
                if let Err(err) = x11.configure(asked) {
                    debug!(%err, "cannot configure an X11 window");
                }
            }
            Some((id, _)) => {
                if core.layout.kind_of(id) == Some(PlacementKind::Floating) {
                    // A floating window chooses its size; it stays where the layout put it.
                    let loc = current.loc;
                    core.layout.set_floating_rect(
                        id,
                        LRect::new(loc.x, loc.y, asked.size.w, asked.size.h),
                    );
                    if let Err(err) = x11.configure(Rectangle::new(loc, asked.size)) {
                        debug!(%err, "cannot configure an X11 window");
                    }
                } else {
                    // Tiled, maximized, fullscreen: the layout decides; the client hears its
                    // geometry again (ICCCM: a synthetic ConfigureNotify).
                    if let Err(err) = x11.configure(current) {
                        debug!(%err, "cannot configure an X11 window");
                    }
                }
                crate::shell::apply_layout(core);
            }
        }
    }

    fn configure_notify(
        &mut self,
        _xwm: XwmId,
        x11: X11Surface,
        geometry: Rectangle<i32, Logical>,
        _above: Option<u32>,
    ) {
        let core = &mut self.core;
        let Some(window) = core
            .xwayland
            .windows
            .override_redirect
            .iter()
            .find(|w| w.x11_surface() == Some(&x11))
            .cloned()
        else {
            return;
        };
        core.space.map_element(window, geometry.loc, true);
        queue_redraw_all(core);
    }

    fn property_notify(
        &mut self,
        _xwm: XwmId,
        x11: X11Surface,
        _property: smithay::xwayland::xwm::WmWindowProperty,
    ) {
        // Size hints or the window type may change how the layout treats it.
        let core = &mut self.core;
        if let Some((id, _)) = managed(core, &x11) {
            let hints = hints_of(&x11);
            if core
                .layout
                .find(id)
                .is_some_and(|(_, _, e)| e.hints != hints)
            {
                core.layout.set_hints(id, hints);
                crate::shell::apply_layout(core);
            }
        }
    }

    fn maximize_request(&mut self, _xwm: XwmId, x11: X11Surface) {
        set_state(self, &x11, |core, id| {
            core.layout.set_maximized(id, Some(true))
        });
    }

    fn unmaximize_request(&mut self, _xwm: XwmId, x11: X11Surface) {
        set_state(self, &x11, |core, id| {
            core.layout.set_maximized(id, Some(false))
        });
    }

    fn minimize_request(&mut self, _xwm: XwmId, x11: X11Surface) {
        // Hidden like a window on another workspace (smithay 0.7 cannot set
        // _NET_WM_STATE_HIDDEN for it to see).
        set_state(self, &x11, |core, id| {
            core.layout.set_minimized(id, Some(true))
        });
    }

    fn unminimize_request(&mut self, _xwm: XwmId, x11: X11Surface) {
        set_state(self, &x11, |core, id| {
            core.layout.set_minimized(id, Some(false))
        });
    }

    fn fullscreen_request(&mut self, _xwm: XwmId, x11: X11Surface) {
        set_fullscreen(self, &x11, true);
    }

    fn unfullscreen_request(&mut self, _xwm: XwmId, x11: X11Surface) {
        set_fullscreen(self, &x11, false);
    }

    fn resize_request(&mut self, _xwm: XwmId, x11: X11Surface, _button: u32, _edge: ResizeEdge) {
        debug!(window = x11.window_id(), "X11 interactive resize requests are ignored (Super+right-drag resizes floating windows)");
    }

    fn move_request(&mut self, _xwm: XwmId, x11: X11Surface, _button: u32) {
        debug!(
            window = x11.window_id(),
            "X11 interactive move requests are ignored (Super+drag moves floating windows)"
        );
    }

    fn allow_selection_access(&mut self, _xwm: XwmId, _selection: SelectionTarget) -> bool {
        // X clients read the selections the way Wayland clients with focus do; Xwayland
        // only asks when one of its clients has X's input focus.
        true
    }

    fn send_selection(
        &mut self,
        _xwm: XwmId,
        selection: SelectionTarget,
        mime_type: String,
        fd: std::os::fd::OwnedFd,
    ) {
        crate::xwayland::selection::x11_reads(self, selection, mime_type, fd);
    }

    fn new_selection(&mut self, _xwm: XwmId, selection: SelectionTarget, mime_types: Vec<String>) {
        crate::xwayland::selection::x11_offers(self, selection, mime_types);
    }

    fn cleared_selection(&mut self, _xwm: XwmId, selection: SelectionTarget) {
        crate::xwayland::selection::x11_cleared(self, selection);
    }

    fn disconnected(&mut self, xwm: XwmId) {
        warn!(
            ?xwm,
            "the X11 connection to Xwayland closed (Xwayland exited or was killed)"
        );
        crate::xwayland::stopped(self);
    }
}

/// Keeps the current WM among the retired ones (see [`X11Windows::retired`]).
pub(crate) fn retire_wm(core: &mut Core) {
    if let Some(wm) = core.xwayland.xwayland.as_mut().and_then(|x| x.take_wm()) {
        let retired = &mut core.xwayland.windows.retired;
        retired.push(wm);
        if retired.len() > RETIRED_WMS {
            retired.remove(0);
        }
    }
}

/// Fullscreen on or off: through the layout once mapped; before that the window opens so.
fn set_fullscreen(state: &mut State, x11: &X11Surface, on: bool) {
    if managed(&state.core, x11).is_none() {
        let _ = x11.set_fullscreen(on);
        return;
    }
    set_state(state, x11, |core, id| {
        core.layout.set_fullscreen(id, Some(on))
    });
}

fn set_state(
    state: &mut State,
    x11: &X11Surface,
    change: impl FnOnce(&mut Core, crate::layout::WindowId),
) {
    let core = &mut state.core;
    if let Some((id, _)) = managed(core, x11) {
        change(core, id);
        crate::shell::apply_layout(core);
    }
}

impl XWaylandShellHandler for State {
    fn xwayland_shell_state(&mut self) -> &mut XWaylandShellState {
        &mut self.core.xwayland.shell
    }

    fn surface_associated(&mut self, _xwm: XwmId, _surface: WlSurface, window: X11Surface) {
        // Xwayland 23.1+: smithay knows the surface now.
        self.core.xwayland.windows.unpaired.retain(|x| x != &window);
        crate::shell::apply_layout(&mut self.core);
    }
}

smithay::delegate_xwayland_shell!(State);
