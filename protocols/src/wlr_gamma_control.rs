//! wlr-gamma-control-unstable-v1: night-light tools (gammastep, wlsunset) set an output's
//! gamma ramps.
//!
//! One client at a time controls an output: a second `get_gamma_control` for it gets
//! `failed`, as does one for an output whose gamma cannot be set
//! ([`GammaControlHandler::gamma_size`] returns `None`). The table is read from the client's
//! fd with `pread` at offset 0 after making the fd non-blocking, so a pipe or a FIFO (which
//! cannot be read that way) or a file that is too short is an `invalid_gamma` error and a
//! slow or hostile fd never blocks the compositor. When the control goes away (destroyed,
//! the client gone) the output's original gamma comes back
//! ([`GammaControlHandler::set_gamma`] with `None`); when the output goes away the control
//! gets `failed` ([`GammaControlState::output_removed`]).
//!
//! Protocol errors: `invalid_gamma` on the control when the fd does not hold exactly
//! 3 × size 16-bit values (red ramp, green ramp, blue ramp).

use std::os::fd::{AsFd, OwnedFd};

use smithay::{
    output::Output,
    reexports::{
        wayland_protocols_wlr::gamma_control::v1::server::{
            zwlr_gamma_control_manager_v1::{self, ZwlrGammaControlManagerV1},
            zwlr_gamma_control_v1::{self, ZwlrGammaControlV1},
        },
        wayland_server::{
            backend::{ClientId, GlobalId},
            Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource,
        },
    },
};

/// The version of `zwlr_gamma_control_manager_v1` lockstep implements.
pub const VERSION: u32 = 1;

/// Gamma ramps: `size` red values, then `size` green, then `size` blue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GammaRamps {
    /// All three ramps, one after the other.
    pub values: Vec<u16>,
}

impl GammaRamps {
    /// The number of entries in each ramp.
    pub fn size(&self) -> usize {
        self.values.len() / 3
    }
}

/// What the compositor implements.
pub trait GammaControlHandler {
    /// The protocol state.
    fn gamma_control_state(&mut self) -> &mut GammaControlState;
    /// The number of entries per ramp `output` takes; `None` when its gamma cannot be set.
    fn gamma_size(&mut self, output: &Output) -> Option<u32>;
    /// Sets `output`'s ramps, or restores the original ones (`None`); false when that failed
    /// (the control then gets `failed`).
    fn set_gamma(&mut self, output: &Output, ramps: Option<GammaRamps>) -> bool;
}

/// Data of the global: which clients may see it.
pub struct GammaControlGlobalData {
    filter: Box<dyn Fn(&Client) -> bool + Send + Sync>,
}

/// Data of a gamma control: its output (`None` once it failed) and the ramp size it was told.
#[derive(Debug)]
pub struct GammaControlData {
    output: crate::OutputSlot,
    size: u32,
}

/// Global state of the gamma control manager.
#[derive(Debug)]
pub struct GammaControlState {
    global: GlobalId,
    /// The controlling object of each output that has one.
    controls: Vec<(Output, ZwlrGammaControlV1)>,
}

/// Why a gamma table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GammaReadError {
    /// The fd cannot be read at an offset (a pipe, a socket) or reading failed.
    #[error("cannot read the gamma table from the fd: {0}")]
    Read(std::io::Error),
    /// Fewer bytes than the table needs.
    #[error("the fd holds {got} bytes; a gamma table of size {size} needs {need}")]
    TooShort {
        /// Bytes read.
        got: usize,
        /// Bytes needed.
        need: usize,
        /// The ramp size.
        size: u32,
    },
}

/// Reads 3 × `size` native-endian u16 values from the start of `fd`, without blocking.
pub fn read_gamma_table(fd: &OwnedFd, size: u32) -> Result<GammaRamps, GammaReadError> {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    let need = size as usize * 3 * 2;
    let flags = fcntl_getfl(fd.as_fd()).map_err(|e| GammaReadError::Read(e.into()))?;
    fcntl_setfl(fd.as_fd(), flags | OFlags::NONBLOCK)
        .map_err(|e| GammaReadError::Read(e.into()))?;
    let mut bytes = vec![0u8; need];
    let mut got = 0;
    while got < need {
        match rustix::io::pread(fd.as_fd(), &mut bytes[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(GammaReadError::Read(e.into())),
        }
    }
    if got < need {
        return Err(GammaReadError::TooShort { got, need, size });
    }
    let values = bytes
        .chunks_exact(2)
        .map(|c| u16::from_ne_bytes([c[0], c[1]]))
        .collect();
    Ok(GammaRamps { values })
}

fn output_of(control: &ZwlrGammaControlV1) -> Option<Output> {
    control
        .data::<GammaControlData>()
        .and_then(|d| d.output.get())
}

/// Sends `failed` and makes `control` inert.
fn fail(control: &ZwlrGammaControlV1) {
    if let Some(data) = control.data::<GammaControlData>() {
        data.output.clear();
    }
    control.failed();
}

impl GammaControlState {
    /// Creates the `zwlr_gamma_control_manager_v1` global, visible to clients `filter`
    /// accepts.
    pub fn new<D, F>(display: &DisplayHandle, filter: F) -> Self
    where
        D: GlobalDispatch<ZwlrGammaControlManagerV1, GammaControlGlobalData>
            + Dispatch<ZwlrGammaControlManagerV1, ()>
            + Dispatch<ZwlrGammaControlV1, GammaControlData>
            + GammaControlHandler
            + 'static,
        F: Fn(&Client) -> bool + Send + Sync + 'static,
    {
        let global = display.create_global::<D, ZwlrGammaControlManagerV1, _>(
            VERSION,
            GammaControlGlobalData {
                filter: Box::new(filter),
            },
        );
        Self {
            global,
            controls: Vec::new(),
        }
    }

    /// The global's id.
    pub fn global(&self) -> GlobalId {
        self.global.clone()
    }

    /// `output` went away: its control gets `failed` (there is nothing to restore).
    pub fn output_removed(&mut self, output: &Output) {
        self.controls.retain(|(o, control)| {
            if o == output {
                if control.is_alive() {
                    fail(control);
                }
                return false;
            }
            true
        });
    }
}

impl<D> GlobalDispatch<ZwlrGammaControlManagerV1, GammaControlGlobalData, D> for GammaControlState
where
    D: GlobalDispatch<ZwlrGammaControlManagerV1, GammaControlGlobalData>
        + Dispatch<ZwlrGammaControlManagerV1, ()>
        + 'static,
{
    fn bind(
        _state: &mut D,
        _handle: &DisplayHandle,
        _client: &Client,
        resource: New<ZwlrGammaControlManagerV1>,
        _global_data: &GammaControlGlobalData,
        data_init: &mut DataInit<'_, D>,
    ) {
        data_init.init(resource, ());
    }

    fn can_view(client: Client, global_data: &GammaControlGlobalData) -> bool {
        (global_data.filter)(&client)
    }
}

impl<D> Dispatch<ZwlrGammaControlManagerV1, (), D> for GammaControlState
where
    D: Dispatch<ZwlrGammaControlManagerV1, ()>
        + Dispatch<ZwlrGammaControlV1, GammaControlData>
        + GammaControlHandler
        + 'static,
{
    fn request(
        state: &mut D,
        _client: &Client,
        _manager: &ZwlrGammaControlManagerV1,
        request: zwlr_gamma_control_manager_v1::Request,
        _data: &(),
        _dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        let zwlr_gamma_control_manager_v1::Request::GetGammaControl { id, output } = request else {
            return;
        };
        let output = Output::from_resource(&output);
        let taken = |state: &mut D, o: &Output| {
            state
                .gamma_control_state()
                .controls
                .iter()
                .any(|(c, control)| c == o && control.is_alive())
        };
        let size = match &output {
            Some(o) if !taken(state, o) => state.gamma_size(o),
            _ => None,
        };
        let control = data_init.init(
            id,
            GammaControlData {
                output: crate::OutputSlot::new(size.and(output.clone())),
                size: size.unwrap_or(0),
            },
        );
        match (size, output) {
            (Some(size), Some(output)) => {
                control.gamma_size(size);
                state.gamma_control_state().controls.push((output, control));
            }
            _ => control.failed(),
        }
    }
}

impl<D> Dispatch<ZwlrGammaControlV1, GammaControlData, D> for GammaControlState
where
    D: Dispatch<ZwlrGammaControlV1, GammaControlData> + GammaControlHandler + 'static,
{
    fn request(
        state: &mut D,
        _client: &Client,
        control: &ZwlrGammaControlV1,
        request: zwlr_gamma_control_v1::Request,
        data: &GammaControlData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        let zwlr_gamma_control_v1::Request::SetGamma { fd } = request else {
            return;
        };
        let ramps = match read_gamma_table(&fd, data.size) {
            Ok(ramps) => ramps,
            Err(err) => {
                control.post_error(zwlr_gamma_control_v1::Error::InvalidGamma, err.to_string());
                return;
            }
        };
        // A control that failed is inert.
        let Some(output) = output_of(control) else {
            return;
        };
        if !state.set_gamma(&output, Some(ramps)) {
            fail(control);
            state.set_gamma(&output, None);
            state
                .gamma_control_state()
                .controls
                .retain(|(_, c)| c != control);
        }
    }

    fn destroyed(
        state: &mut D,
        _client: ClientId,
        control: &ZwlrGammaControlV1,
        data: &GammaControlData,
    ) {
        let was_in_control = state
            .gamma_control_state()
            .controls
            .iter()
            .any(|(_, c)| c == control);
        state
            .gamma_control_state()
            .controls
            .retain(|(_, c)| c != control);
        if let (true, Some(output)) = (was_in_control, data.output.get()) {
            // The original gamma comes back.
            state.set_gamma(&output, None);
        }
    }
}

/// Implements the gamma-control dispatch traits for `$ty` by delegating to this module.
#[macro_export]
macro_rules! delegate_wlr_gamma_control {
    ($ty:ty) => {
        smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::gamma_control::v1::server::zwlr_gamma_control_manager_v1::ZwlrGammaControlManagerV1: $crate::wlr_gamma_control::GammaControlGlobalData
        ] => $crate::wlr_gamma_control::GammaControlState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::gamma_control::v1::server::zwlr_gamma_control_manager_v1::ZwlrGammaControlManagerV1: ()
        ] => $crate::wlr_gamma_control::GammaControlState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::gamma_control::v1::server::zwlr_gamma_control_v1::ZwlrGammaControlV1: $crate::wlr_gamma_control::GammaControlData
        ] => $crate::wlr_gamma_control::GammaControlState);
    };
}
