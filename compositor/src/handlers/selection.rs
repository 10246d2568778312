//! Selections beyond wl_data_device: primary selection (middle-click paste) and data control
//! (clipboard managers and `wl-copy`/`wl-paste`, wlr and ext flavours).
//!
//! Primary selection follows keyboard focus like the clipboard (see `seat.rs`). Data control
//! lets a client read and set both selections without having focus, so it is privileged
//! (`security_context.rs`).

use smithay::{
    reexports::{
        wayland_protocols::{
            ext::data_control::v1::server::{
                ext_data_control_manager_v1::ExtDataControlManagerV1,
                ext_data_control_source_v1::ExtDataControlSourceV1,
            },
            wp::primary_selection::zv1::server::{
                zwp_primary_selection_device_manager_v1::ZwpPrimarySelectionDeviceManagerV1,
                zwp_primary_selection_source_v1::ZwpPrimarySelectionSourceV1,
            },
        },
        wayland_protocols_wlr::data_control::v1::server::{
            zwlr_data_control_manager_v1::ZwlrDataControlManagerV1,
            zwlr_data_control_source_v1::ZwlrDataControlSourceV1,
        },
        wayland_server::{delegate_dispatch, delegate_global_dispatch, DisplayHandle},
    },
    wayland::selection::{
        ext_data_control::{
            DataControlHandler as ExtDataControlHandler, DataControlState as ExtDataControlState,
            ExtDataControlManagerGlobalData, ExtDataControlSourceUserData,
        },
        primary_selection::{
            PrimaryDeviceManagerGlobalData, PrimarySelectionHandler, PrimarySelectionState,
            PrimarySourceUserData,
        },
        wlr_data_control::{
            DataControlHandler, DataControlManagerGlobalData, DataControlSourceUserData,
            DataControlState,
        },
    },
};

use crate::{
    handlers::{
        security_context::may_use_privileged, selection_anchor::SelectionAnchor,
        selection_devices::SelectionDeviceReaper,
    },
    state::State,
};

/// The selection globals.
pub struct SelectionProtocols {
    /// zwp_primary_selection_device_manager_v1.
    pub primary: PrimarySelectionState,
    /// zwlr_data_control_manager_v1.
    pub wlr_data_control: DataControlState,
    /// ext_data_control_manager_v1.
    pub ext_data_control: ExtDataControlState,
    /// Devices of clients that are gone, for smithay to forget (`selection_devices.rs`).
    pub reaper: SelectionDeviceReaper,
    /// lockstep's own connection holding one device of each kind (`selection_anchor.rs`);
    /// connected by `Core::new` once the seat and the managers exist.
    pub anchor: SelectionAnchor,
}

impl SelectionProtocols {
    /// Creates the globals.
    pub fn new(dh: &DisplayHandle) -> Self {
        let primary = PrimarySelectionState::new::<State>(dh);
        let wlr_data_control =
            DataControlState::new::<State, _>(dh, Some(&primary), may_use_privileged);
        let ext_data_control =
            ExtDataControlState::new::<State, _>(dh, Some(&primary), may_use_privileged);
        Self {
            primary,
            wlr_data_control,
            ext_data_control,
            reaper: SelectionDeviceReaper::default(),
            anchor: SelectionAnchor::default(),
        }
    }
}

impl PrimarySelectionHandler for State {
    fn primary_selection_state(&self) -> &PrimarySelectionState {
        &self.core.protocols.selection.primary
    }
}

impl DataControlHandler for State {
    fn data_control_state(&self) -> &DataControlState {
        &self.core.protocols.selection.wlr_data_control
    }
}

impl ExtDataControlHandler for State {
    fn data_control_state(&self) -> &ExtDataControlState {
        &self.core.protocols.selection.ext_data_control
    }
}

// What `delegate_primary_selection!` and the two `delegate_*data_control!` macros would wire,
// except the managers and devices: `selection_devices.rs` dispatches those so that smithay
// forgets the devices of clients that are gone.
delegate_global_dispatch!(State: [
    ZwpPrimarySelectionDeviceManagerV1: PrimaryDeviceManagerGlobalData
] => PrimarySelectionState);
delegate_dispatch!(State: [ZwpPrimarySelectionSourceV1: PrimarySourceUserData] => PrimarySelectionState);
delegate_global_dispatch!(State: [
    ZwlrDataControlManagerV1: DataControlManagerGlobalData
] => DataControlState);
delegate_dispatch!(State: [ZwlrDataControlSourceV1: DataControlSourceUserData] => DataControlState);
delegate_global_dispatch!(State: [
    ExtDataControlManagerV1: ExtDataControlManagerGlobalData
] => ExtDataControlState);
delegate_dispatch!(State: [ExtDataControlSourceV1: ExtDataControlSourceUserData] => ExtDataControlState);
