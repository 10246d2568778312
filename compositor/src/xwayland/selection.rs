//! The clipboard and the primary selection between X11 and Wayland clients, both ways.
//!
//! - **X → Wayland**: an X client takes a selection; smithay's WM reports its types
//!   (`XwmHandler::new_selection`) and lockstep makes it the seat's selection with itself as
//!   the source. A Wayland client (or `wl-paste` through data control) that reads it reaches
//!   `SelectionHandler::send_selection` (`handlers/seat.rs`), which hands the fd to the WM;
//!   the WM converts the X selection into it on the event loop, without waiting.
//! - **Wayland → X**: a Wayland client sets a selection (`SelectionHandler::new_selection`);
//!   the WM takes ownership of the X selection with the same types. An X client that pastes
//!   reaches `XwmHandler::send_selection`, which asks the Wayland source to write into the
//!   WM's pipe.
//!
//! When Xwayland starts, the current Wayland selections are offered to it at once
//! ([`offer_current`]), so an X client started after a copy can paste it.

use std::os::fd::OwnedFd;

use smithay::wayland::selection::{
    data_device::{
        clear_data_device_selection, current_data_device_selection_userdata,
        request_data_device_client_selection, set_data_device_selection,
    },
    primary_selection::{
        clear_primary_selection, current_primary_selection_userdata,
        request_primary_client_selection, set_primary_selection,
    },
    SelectionSource, SelectionTarget,
};
use tracing::{debug, warn};

use crate::state::State;

/// Who provides a selection lockstep itself set (the seat's selection user data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SelectionOwner {
    /// Nobody: lockstep sets no selection of its own except for X.
    #[default]
    None,
    /// An X11 client, through Xwayland's WM.
    X11,
}

/// An X client took `selection`, offering `mime_types`.
pub fn x11_offers(state: &mut State, selection: SelectionTarget, mime_types: Vec<String>) {
    debug!(?selection, ?mime_types, "an X11 client set a selection");
    *state.core.xwayland.wayland_selections.slot(selection) = None;
    let dh = state.core.display_handle.clone();
    let seat = state.core.seat.clone();
    match selection {
        SelectionTarget::Clipboard => {
            set_data_device_selection::<State>(&dh, &seat, mime_types, SelectionOwner::X11)
        }
        SelectionTarget::Primary => {
            set_primary_selection::<State>(&dh, &seat, mime_types, SelectionOwner::X11)
        }
    }
}

/// The X client that held `selection` let it go: clear it if it is still X's.
pub fn x11_cleared(state: &mut State, selection: SelectionTarget) {
    let dh = state.core.display_handle.clone();
    let seat = state.core.seat.clone();
    match selection {
        SelectionTarget::Clipboard => {
            let ours = current_data_device_selection_userdata(&seat)
                .is_some_and(|owner| *owner == SelectionOwner::X11);
            if ours {
                clear_data_device_selection(&dh, &seat);
            }
        }
        SelectionTarget::Primary => {
            let ours = current_primary_selection_userdata(&seat)
                .is_some_and(|owner| *owner == SelectionOwner::X11);
            if ours {
                clear_primary_selection(&dh, &seat);
            }
        }
    }
}

/// An X client pastes a Wayland client's `selection` as `mime_type` into `fd`.
pub fn x11_reads(state: &mut State, selection: SelectionTarget, mime_type: String, fd: OwnedFd) {
    debug!(?selection, %mime_type, "an X11 client reads a Wayland selection");
    let seat = &state.core.seat;
    let result = match selection {
        SelectionTarget::Clipboard => {
            request_data_device_client_selection(seat, mime_type, fd).map_err(|e| e.to_string())
        }
        SelectionTarget::Primary => {
            request_primary_client_selection(seat, mime_type, fd).map_err(|e| e.to_string())
        }
    };
    if let Err(err) = result {
        debug!(%err, ?selection, "an X11 client asked for a selection no Wayland client holds");
    }
}

/// A Wayland client set (or cleared) `selection`: X clients see it too.
pub fn wayland_offers(
    state: &mut State,
    selection: SelectionTarget,
    source: Option<SelectionSource>,
) {
    let mime_types = source.map(|s| s.mime_types());
    debug!(?selection, ?mime_types, "a Wayland client set a selection");
    *state.core.xwayland.wayland_selections.slot(selection) = mime_types.clone();
    if let Some(wm) = state.core.xwayland.xwayland.as_mut().and_then(|x| x.wm()) {
        if let Err(err) = wm.new_selection(selection, mime_types) {
            warn!(%err, ?selection, "cannot hand a selection to Xwayland");
        }
    }
}

/// A Wayland client reads a selection an X client holds.
pub fn wayland_reads(
    state: &mut State,
    selection: SelectionTarget,
    mime_type: String,
    fd: OwnedFd,
    owner: SelectionOwner,
) {
    if owner != SelectionOwner::X11 {
        return;
    }
    let loop_handle = state.core.loop_handle.clone();
    if let Some(wm) = state.core.xwayland.xwayland.as_mut().and_then(|x| x.wm()) {
        if let Err(err) = wm.send_selection(selection, mime_type, fd, loop_handle) {
            warn!(%err, ?selection, "cannot read a selection from Xwayland");
        }
    }
}

/// Offers the Wayland clients' current selections to a freshly started Xwayland.
pub fn offer_current(state: &mut State) {
    let offers = state.core.xwayland.wayland_selections.clone();
    let Some(wm) = state.core.xwayland.xwayland.as_mut().and_then(|x| x.wm()) else {
        return;
    };
    for (target, mime_types) in [
        (SelectionTarget::Clipboard, offers.clipboard),
        (SelectionTarget::Primary, offers.primary),
    ] {
        if let Some(mime_types) = mime_types {
            if let Err(err) = wm.new_selection(target, Some(mime_types)) {
                warn!(%err, "cannot hand a selection to Xwayland");
            }
        }
    }
}

/// The types of the selections Wayland clients hold (smithay 0.7 has no getter for them), to
/// offer to an Xwayland that starts later.
#[derive(Debug, Clone, Default)]
pub struct WaylandSelections {
    clipboard: Option<Vec<String>>,
    primary: Option<Vec<String>>,
}

impl WaylandSelections {
    fn slot(&mut self, target: SelectionTarget) -> &mut Option<Vec<String>> {
        match target {
            SelectionTarget::Clipboard => &mut self.clipboard,
            SelectionTarget::Primary => &mut self.primary,
        }
    }
}
