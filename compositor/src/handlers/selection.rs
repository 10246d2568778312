//! Selections beyond wl_data_device: primary selection (middle-click paste) and data control
//! (clipboard managers and `wl-copy`/`wl-paste`, wlr and ext flavours).
//!
//! Primary selection follows keyboard focus like the clipboard (see `seat.rs`). Data control
//! lets a client read and set both selections without having focus, so it is privileged
//! (`security_context.rs`).

use smithay::{
    delegate_data_control, delegate_ext_data_control, delegate_primary_selection,
    reexports::wayland_server::DisplayHandle,
    wayland::selection::{
        ext_data_control::{
            DataControlHandler as ExtDataControlHandler, DataControlState as ExtDataControlState,
        },
        primary_selection::{PrimarySelectionHandler, PrimarySelectionState},
        wlr_data_control::{DataControlHandler, DataControlState},
    },
};

use crate::{handlers::security_context::may_use_privileged, state::State};

/// The selection globals.
pub struct SelectionProtocols {
    /// zwp_primary_selection_device_manager_v1.
    pub primary: PrimarySelectionState,
    /// zwlr_data_control_manager_v1.
    pub wlr_data_control: DataControlState,
    /// ext_data_control_manager_v1.
    pub ext_data_control: ExtDataControlState,
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

delegate_primary_selection!(State);
delegate_data_control!(State);
delegate_ext_data_control!(State);
