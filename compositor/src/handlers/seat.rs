//! wl_seat and wl_data_device_manager: input focus, cursors, copy/paste, drag and drop.
//!
//! Keyboard and pointer focus are plain wl_surfaces. The data device and the primary selection
//! follow keyboard focus, so the focused client receives the current selections (copy/paste
//! and middle-click paste between clients), and so does
//! xdg_toplevel's `activated` state (the toplevel of the focused surface, or of its popup).

use smithay::{
    delegate_seat,
    input::{pointer::CursorImageStatus, Seat, SeatHandler, SeatState},
    reexports::wayland_server::{protocol::wl_surface::WlSurface, Resource},
    wayland::selection::{
        data_device::{
            set_data_device_focus, ClientDndGrabHandler, DataDeviceHandler, DataDeviceState,
            ServerDndGrabHandler,
        },
        primary_selection::set_primary_focus,
        SelectionHandler, SelectionSource, SelectionTarget,
    },
};

use crate::{frame_clock::queue_redraw_all, state::State};

impl SeatHandler for State {
    type KeyboardFocus = WlSurface;
    type PointerFocus = WlSurface;
    type TouchFocus = WlSurface;

    fn seat_state(&mut self) -> &mut SeatState<State> {
        &mut self.core.seat_state
    }

    fn focus_changed(&mut self, seat: &Seat<Self>, focused: Option<&WlSurface>) {
        let dh = &self.core.display_handle;
        let client = focused.and_then(|s| dh.get_client(s.id()).ok());
        set_data_device_focus(dh, seat, client.clone());
        set_primary_focus(dh, seat, client);
        crate::shell::update_activated(&self.core, focused);
        crate::xwayland::wm::keyboard_focus_changed(self, seat, focused);
    }

    fn cursor_image(&mut self, _seat: &Seat<Self>, image: CursorImageStatus) {
        self.core.cursor_status = image;
        queue_redraw_all(&mut self.core);
    }
}

/// Selections lockstep sets itself are X11 clients' (`xwayland/selection.rs`); those Wayland
/// clients set are mirrored to Xwayland.
impl SelectionHandler for State {
    type SelectionUserData = crate::xwayland::selection::SelectionOwner;

    fn new_selection(
        &mut self,
        target: SelectionTarget,
        source: Option<SelectionSource>,
        _seat: Seat<Self>,
    ) {
        crate::xwayland::selection::wayland_offers(self, target, source);
    }

    fn send_selection(
        &mut self,
        target: SelectionTarget,
        mime_type: String,
        fd: std::os::fd::OwnedFd,
        _seat: Seat<Self>,
        owner: &Self::SelectionUserData,
    ) {
        crate::xwayland::selection::wayland_reads(self, target, mime_type, fd, *owner);
    }
}

impl DataDeviceHandler for State {
    fn data_device_state(&self) -> &DataDeviceState {
        &self.core.data_device_state
    }
}

impl ClientDndGrabHandler for State {}
impl ServerDndGrabHandler for State {}

delegate_seat!(State);
// The manager and device are dispatched through `selection_devices.rs`, which makes smithay
// forget the devices of clients that are gone; the rest is smithay's as `delegate_data_device!`
// would wire it.
smithay::reexports::wayland_server::delegate_global_dispatch!(State: [
    smithay::reexports::wayland_server::protocol::wl_data_device_manager::WlDataDeviceManager: ()
] => DataDeviceState);
smithay::reexports::wayland_server::delegate_dispatch!(State: [
    smithay::reexports::wayland_server::protocol::wl_data_source::WlDataSource:
        smithay::wayland::selection::data_device::DataSourceUserData
] => DataDeviceState);
