//! xdg_wm_base and zxdg_decoration_manager_v1: toplevels, popups, decorations.
//!
//! New toplevels wait in `Core::unmapped` until their first buffer, then the shell places them
//! (see `shell.rs`). Popups are placed by their positioner, flipped/slid/resized to stay on
//! the output (the positioner's constraint adjustments); a popup that attached a buffer
//! before its first configure is shown where its acked configure puts it at the ack
//! ([`place_unconfigured_popup`]). lockstep prefers server-side
//! decorations and draws none: windows are borderless, as in niri's default.

use smithay::{
    backend::renderer::utils::with_renderer_surface_state,
    delegate_xdg_decoration, delegate_xdg_shell,
    desktop::{
        find_popup_root_surface, get_popup_toplevel_coords, PopupKeyboardGrab, PopupKind,
        PopupPointerGrab, PopupUngrabStrategy, Window,
    },
    input::{pointer::Focus, Seat},
    reexports::{
        wayland_protocols::xdg::{
            decoration::zv1::server::zxdg_toplevel_decoration_v1::Mode as DecorationMode,
            shell::server::xdg_toplevel,
        },
        wayland_server::protocol::{wl_output::WlOutput, wl_seat::WlSeat, wl_surface::WlSurface},
    },
    utils::Serial,
    wayland::{
        compositor::with_states,
        seat::WaylandFocus,
        shell::xdg::{
            decoration::XdgDecorationHandler, Configure, PopupConfigure, PopupSurface,
            PositionerState, ToplevelSurface, XdgPopupSurfaceData, XdgShellHandler, XdgShellState,
        },
    },
};
use tracing::{debug, warn};

use crate::{frame_clock::queue_redraw_all, state::State};

impl XdgShellHandler for State {
    fn xdg_shell_state(&mut self) -> &mut XdgShellState {
        &mut self.core.xdg_shell_state
    }

    fn new_toplevel(&mut self, surface: ToplevelSurface) {
        surface.with_pending_state(|state| {
            state.decoration_mode = Some(DecorationMode::ServerSide);
        });
        self.core.unmapped.push(Window::new_wayland_window(surface));
    }

    fn new_popup(&mut self, surface: PopupSurface, _positioner: PositionerState) {
        if popup_parent_loops(&surface) {
            // smithay 0.7 accepts a popup whose parent is itself (or one of its own popups),
            // and walking to the root of such a tree never ends. The protocol's error is
            // xdg_wm_base.invalid_popup_parent (3), but smithay keeps the client's xdg_wm_base
            // private, so it is posted on the popup with that code and name.
            smithay::reexports::wayland_server::Resource::post_error(
                surface.xdg_popup(),
                3u32,
                "xdg_wm_base.invalid_popup_parent: a popup cannot be its own parent or the \
                 parent of its own parent",
            );
            return;
        }
        self.unconstrain_popup(&surface);
        if let Err(err) = self.core.popups.track_popup(PopupKind::from(surface)) {
            warn!(?err, "cannot track popup");
        }
    }

    fn reposition_request(
        &mut self,
        surface: PopupSurface,
        positioner: PositionerState,
        token: u32,
    ) {
        surface.with_pending_state(|state| {
            state.geometry = positioner.get_geometry();
            state.positioner = positioner;
        });
        self.unconstrain_popup(&surface);
        surface.send_repositioned(token);
    }

    fn grab(&mut self, surface: PopupSurface, seat: WlSeat, serial: Serial) {
        let Some(seat) = Seat::<State>::from_resource(&seat) else {
            return;
        };
        let kind = PopupKind::Xdg(surface);
        let Ok(root) = find_popup_root_surface(&kind) else {
            return;
        };
        let grab = self
            .core
            .popups
            .grab_popup::<State>(root.clone(), kind, &seat, serial);
        let Ok(mut grab) = grab else {
            debug!("popup grab refused (stale serial or no focus)");
            return;
        };
        if let Some(keyboard) = seat.get_keyboard() {
            if keyboard.is_grabbed()
                && !(keyboard.has_grab(serial)
                    || keyboard.has_grab(grab.previous_serial().unwrap_or(serial)))
            {
                grab.ungrab(PopupUngrabStrategy::All);
                return;
            }
            keyboard.set_focus(self, grab.current_grab(), serial);
            keyboard.set_grab(self, PopupKeyboardGrab::new(&grab), serial);
        }
        if let Some(pointer) = seat.get_pointer() {
            if pointer.is_grabbed()
                && !(pointer.has_grab(serial)
                    || pointer.has_grab(grab.previous_serial().unwrap_or_else(|| grab.serial())))
            {
                grab.ungrab(PopupUngrabStrategy::All);
                return;
            }
            pointer.set_grab(self, PopupPointerGrab::new(&grab), serial, Focus::Keep);
        }
        crate::shell::remember_popup_grab(&seat, root, grab);
    }

    fn maximize_request(&mut self, surface: ToplevelSurface) {
        crate::shell::maximize(&mut self.core, &surface, true);
    }

    fn unmaximize_request(&mut self, surface: ToplevelSurface) {
        crate::shell::maximize(&mut self.core, &surface, false);
    }

    fn minimize_request(&mut self, surface: ToplevelSurface) {
        crate::shell::minimize(&mut self.core, &surface);
    }

    fn fullscreen_request(&mut self, surface: ToplevelSurface, output: Option<WlOutput>) {
        // The window goes fullscreen on the output it is on; `output` is a preference the
        // protocol lets us ignore.
        let _ = output;
        crate::shell::fullscreen(&mut self.core, &surface, true);
    }

    fn unfullscreen_request(&mut self, surface: ToplevelSurface) {
        crate::shell::fullscreen(&mut self.core, &surface, false);
    }

    fn move_request(&mut self, surface: ToplevelSurface, seat: WlSeat, serial: Serial) {
        crate::input::start_move(self, &surface, &seat, serial);
    }

    fn resize_request(
        &mut self,
        surface: ToplevelSurface,
        seat: WlSeat,
        serial: Serial,
        edges: xdg_toplevel::ResizeEdge,
    ) {
        crate::input::start_resize(self, &surface, &seat, serial, edges);
    }

    fn toplevel_destroyed(&mut self, surface: ToplevelSurface) {
        self.lift_touch_points_on(surface.wl_surface());
        crate::shell::unmap_toplevel(&mut self.core, surface.wl_surface(), true);
        crate::shell::focus_away_from(self, surface.wl_surface());
        queue_redraw_all(&mut self.core);
    }

    fn popup_destroyed(&mut self, _surface: PopupSurface) {
        // Now, while its wl_surface still exists: a client destroys a popup and its surface in
        // one go, and a wl_pointer.leave for a dead surface cannot be sent.
        self.refresh_pointer_focus();
        queue_redraw_all(&mut self.core);
    }

    fn title_changed(&mut self, _surface: ToplevelSurface) {}

    fn ack_configure(&mut self, surface: WlSurface, configure: Configure) {
        let Configure::Popup(configure) = configure else {
            return;
        };
        if place_unconfigured_popup(&surface, &configure) {
            self.refresh_pointer_focus();
            queue_redraw_all(&mut self.core);
        }
    }
}

/// A popup that committed a buffer before it was ever configured, and acks a configure: it
/// is shown where that configure puts it, at once. Returns whether it moved.
///
/// xdg-shell applies a configure with the client's next commit after the ack, and so does
/// smithay 0.7 (the acked state becomes the popup's current one on commit). A popup whose
/// very first commit already attached a buffer (xdg-shell's `unconfigured_buffer`, which
/// smithay 0.7 does not post) has no applied state at all, so smithay would show it at 0,0
/// of its parent until the client commits again, and WLCS's layer-surface popup cases never
/// do. The acked configure is the only position such a popup can have, so it is used now.
/// Every other popup keeps xdg-shell's rule: the override applies only while no commit has
/// followed an ack (`current_serial` is unset) and the surface has a buffer, which a client
/// that waits for its first configure before attaching (GTK, Qt, foot, every toolkit) never
/// shows; its own next commit sets the same state again.
fn place_unconfigured_popup(surface: &WlSurface, configure: &PopupConfigure) -> bool {
    let has_buffer =
        with_renderer_surface_state(surface, |s| s.buffer().is_some()).unwrap_or(false);
    if !has_buffer {
        return false;
    }
    with_states(surface, |states| {
        let Some(data) = states.data_map.get::<XdgPopupSurfaceData>() else {
            return false;
        };
        let Ok(mut attrs) = data.lock() else {
            return false;
        };
        if !attrs.committed || attrs.current_serial.is_some() || attrs.current == configure.state {
            return false;
        }
        attrs.current = configure.state;
        true
    })
}

impl State {
    /// Applies the positioner's constraint adjustments so the popup stays on its output.
    fn unconstrain_popup(&self, popup: &PopupSurface) {
        let kind = PopupKind::Xdg(popup.clone());
        let Ok(root) = find_popup_root_surface(&kind) else {
            return;
        };
        let Some(window) = self
            .core
            .space
            .elements()
            .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == &root))
        else {
            // Not a window's popup: perhaps a layer surface's.
            self.unconstrain_layer_popup(popup);
            return;
        };
        let Some(window_loc) = self.core.space.element_location(window) else {
            return;
        };
        // The output the window is mostly on, or the first one.
        let output = self
            .core
            .space
            .outputs_for_element(window)
            .into_iter()
            .next()
            .or_else(|| self.core.space.outputs().next().cloned());
        let Some(output_geo) = output.and_then(|o| self.core.space.output_geometry(&o)) else {
            return;
        };
        // The positioner works in the parent's window-geometry coordinates. The window's
        // geometry origin sits at `window_loc` in the space (the space maps geometry, not
        // the surface origin), and nested popups add their parents' offsets.
        let mut target = output_geo;
        target.loc -= window_loc;
        target.loc -= get_popup_toplevel_coords(&kind);
        popup.with_pending_state(|state| {
            state.geometry = state.positioner.get_unconstrained_geometry(target);
        });
    }
}

impl XdgDecorationHandler for State {
    fn new_decoration(&mut self, toplevel: ToplevelSurface) {
        toplevel.with_pending_state(|state| {
            state.decoration_mode = Some(DecorationMode::ServerSide);
        });
        if toplevel.is_initial_configure_sent() {
            toplevel.send_pending_configure();
        }
    }

    fn request_mode(&mut self, toplevel: ToplevelSurface, mode: DecorationMode) {
        // Honour what the client asks for: a client that insists on drawing its own
        // decorations gets them.
        toplevel.with_pending_state(|state| {
            state.decoration_mode = Some(mode);
        });
        if toplevel.is_initial_configure_sent() {
            toplevel.send_pending_configure();
        }
    }

    fn unset_mode(&mut self, toplevel: ToplevelSurface) {
        toplevel.with_pending_state(|state| {
            state.decoration_mode = Some(DecorationMode::ServerSide);
        });
        if toplevel.is_initial_configure_sent() {
            toplevel.send_pending_configure();
        }
    }
}

/// Whether `surface` is the wl_surface of `window`.
pub fn is_window_surface(window: &Window, surface: &WlSurface) -> bool {
    window.wl_surface().is_some_and(|s| &*s == surface)
}

delegate_xdg_shell!(State);
delegate_xdg_decoration!(State);

/// Whether following `surface`'s popup parents comes back to it (or goes absurdly deep).
fn popup_parent_loops(surface: &PopupSurface) -> bool {
    use smithay::wayland::{
        compositor::{get_role, with_states},
        shell::xdg::{XdgPopupSurfaceData, XDG_POPUP_ROLE},
    };
    let me = surface.wl_surface();
    let mut parent = surface.get_parent_surface();
    for _ in 0..MAX_POPUP_DEPTH {
        let Some(p) = parent else {
            return false;
        };
        if &p == me {
            return true;
        }
        if get_role(&p) != Some(XDG_POPUP_ROLE) {
            return false;
        }
        parent = with_states(&p, |states| {
            states
                .data_map
                .get::<XdgPopupSurfaceData>()
                .and_then(|d| d.lock().ok().and_then(|d| d.parent.clone()))
        });
    }
    true
}

/// Deeper popup trees than this are refused (menus nest a handful deep).
const MAX_POPUP_DEPTH: usize = 64;
