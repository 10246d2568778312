//! wlr-output-power-management-unstable-v1: swayidle-style tools turn displays off and on
//! (`wlopm`, or a `timeout 600 'wlopm --off \*'` line).
//!
//! A client gets a `zwlr_output_power_v1` per wl_output; it is told the output's mode at
//! once and whenever it changes, by this client, another one or the compositor
//! ([`OutputPowerState::mode_changed`]). `set_mode` goes to
//! [`OutputPowerHandler::set_output_power`]; when the compositor cannot do it, or the
//! output is gone, the object gets `failed` and is inert from then on (the protocol's
//! rule; the client should destroy it). [`OutputPowerState::output_removed`] fails the
//! objects of an unplugged output.
//!
//! Protocol errors: `invalid_mode` on the power object for a mode other than off (0) and on (1).

use smithay::{
    output::Output,
    reexports::{
        wayland_protocols_wlr::output_power_management::v1::server::{
            zwlr_output_power_manager_v1::{self, ZwlrOutputPowerManagerV1},
            zwlr_output_power_v1::{self, Mode, ZwlrOutputPowerV1},
        },
        wayland_server::{
            backend::{ClientId, GlobalId},
            Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource, WEnum,
        },
    },
};

/// The version of `zwlr_output_power_manager_v1` lockstep implements.
pub const VERSION: u32 = 1;

/// What the compositor implements.
pub trait OutputPowerHandler {
    /// The protocol state.
    fn output_power_state(&mut self) -> &mut OutputPowerState;
    /// Whether `output` is powered now; `None` when it is not (any longer) an output that
    /// can be powered (the object then gets `failed`).
    fn output_powered(&mut self, output: &Output) -> Option<bool>;
    /// Turns `output` on or off; false when that cannot be done (the object gets `failed`).
    /// On success the compositor calls [`OutputPowerState::mode_changed`] (which it does for
    /// any change, whoever asked).
    fn set_output_power(&mut self, output: &Output, on: bool) -> bool;
}

/// Data of the global: which clients may see it.
pub struct OutputPowerGlobalData {
    filter: Box<dyn Fn(&Client) -> bool + Send + Sync>,
}

/// Data of a power object: its output (`None` once it failed).
#[derive(Debug)]
pub struct OutputPowerData {
    output: crate::OutputSlot,
}

/// Global state of the power manager.
#[derive(Debug)]
pub struct OutputPowerState {
    global: GlobalId,
    objects: Vec<ZwlrOutputPowerV1>,
}

fn mode_of(on: bool) -> Mode {
    if on {
        Mode::On
    } else {
        Mode::Off
    }
}

fn output_of(object: &ZwlrOutputPowerV1) -> Option<Output> {
    object
        .data::<OutputPowerData>()
        .and_then(|d| d.output.get())
}

/// Sends `failed` and makes `object` inert.
fn fail(object: &ZwlrOutputPowerV1) {
    if let Some(data) = object.data::<OutputPowerData>() {
        data.output.clear();
    }
    object.failed();
}

impl OutputPowerState {
    /// Creates the `zwlr_output_power_manager_v1` global, visible to clients `filter` accepts.
    pub fn new<D, F>(display: &DisplayHandle, filter: F) -> Self
    where
        D: GlobalDispatch<ZwlrOutputPowerManagerV1, OutputPowerGlobalData>
            + Dispatch<ZwlrOutputPowerManagerV1, ()>
            + Dispatch<ZwlrOutputPowerV1, OutputPowerData>
            + OutputPowerHandler
            + 'static,
        F: Fn(&Client) -> bool + Send + Sync + 'static,
    {
        let global = display.create_global::<D, ZwlrOutputPowerManagerV1, _>(
            VERSION,
            OutputPowerGlobalData {
                filter: Box::new(filter),
            },
        );
        Self {
            global,
            objects: Vec::new(),
        }
    }

    /// The global's id.
    pub fn global(&self) -> GlobalId {
        self.global.clone()
    }

    /// Tells every power object of `output` its new mode.
    pub fn mode_changed(&mut self, output: &Output, on: bool) {
        self.objects.retain(|o| o.is_alive());
        for object in &self.objects {
            if output_of(object).as_ref() == Some(output) {
                object.mode(mode_of(on));
            }
        }
    }

    /// `output` went away: its power objects get `failed`.
    pub fn output_removed(&mut self, output: &Output) {
        self.objects.retain(|object| {
            if !object.is_alive() {
                return false;
            }
            if output_of(object).as_ref() == Some(output) {
                fail(object);
                return false;
            }
            true
        });
    }
}

impl<D> GlobalDispatch<ZwlrOutputPowerManagerV1, OutputPowerGlobalData, D> for OutputPowerState
where
    D: GlobalDispatch<ZwlrOutputPowerManagerV1, OutputPowerGlobalData>
        + Dispatch<ZwlrOutputPowerManagerV1, ()>
        + OutputPowerHandler
        + 'static,
{
    fn bind(
        _state: &mut D,
        _handle: &DisplayHandle,
        _client: &Client,
        resource: New<ZwlrOutputPowerManagerV1>,
        _global_data: &OutputPowerGlobalData,
        data_init: &mut DataInit<'_, D>,
    ) {
        data_init.init(resource, ());
    }

    fn can_view(client: Client, global_data: &OutputPowerGlobalData) -> bool {
        (global_data.filter)(&client)
    }
}

impl<D> Dispatch<ZwlrOutputPowerManagerV1, (), D> for OutputPowerState
where
    D: Dispatch<ZwlrOutputPowerManagerV1, ()>
        + Dispatch<ZwlrOutputPowerV1, OutputPowerData>
        + OutputPowerHandler
        + 'static,
{
    fn request(
        state: &mut D,
        _client: &Client,
        _manager: &ZwlrOutputPowerManagerV1,
        request: zwlr_output_power_manager_v1::Request,
        _data: &(),
        _dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        let zwlr_output_power_manager_v1::Request::GetOutputPower { id, output } = request else {
            return;
        };
        let output = Output::from_resource(&output);
        let powered = output.as_ref().and_then(|o| state.output_powered(o));
        let object = data_init.init(
            id,
            OutputPowerData {
                output: crate::OutputSlot::new(powered.and(output)),
            },
        );
        match powered {
            Some(on) => {
                object.mode(mode_of(on));
                state.output_power_state().objects.push(object);
            }
            None => object.failed(),
        }
    }
}

impl<D> Dispatch<ZwlrOutputPowerV1, OutputPowerData, D> for OutputPowerState
where
    D: Dispatch<ZwlrOutputPowerV1, OutputPowerData> + OutputPowerHandler + 'static,
{
    fn request(
        state: &mut D,
        _client: &Client,
        object: &ZwlrOutputPowerV1,
        request: zwlr_output_power_v1::Request,
        _data: &OutputPowerData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        let zwlr_output_power_v1::Request::SetMode { mode } = request else {
            return;
        };
        let on = match mode {
            WEnum::Value(Mode::On) => true,
            WEnum::Value(Mode::Off) => false,
            other => {
                let value = crate::wenum_raw(other);
                object.post_error(
                    zwlr_output_power_v1::Error::InvalidMode,
                    format!("power mode {value} does not exist (0 off, 1 on)"),
                );
                return;
            }
        };
        // An object that failed is inert.
        let Some(output) = output_of(object) else {
            return;
        };
        if !state.set_output_power(&output, on) {
            fail(object);
        }
    }

    fn destroyed(
        state: &mut D,
        _client: ClientId,
        object: &ZwlrOutputPowerV1,
        _: &OutputPowerData,
    ) {
        state.output_power_state().objects.retain(|o| o != object);
    }
}

/// Implements the output-power dispatch traits for `$ty` by delegating to this module.
#[macro_export]
macro_rules! delegate_wlr_output_power_management {
    ($ty:ty) => {
        smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::output_power_management::v1::server::zwlr_output_power_manager_v1::ZwlrOutputPowerManagerV1: $crate::wlr_output_power_management::OutputPowerGlobalData
        ] => $crate::wlr_output_power_management::OutputPowerState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::output_power_management::v1::server::zwlr_output_power_manager_v1::ZwlrOutputPowerManagerV1: ()
        ] => $crate::wlr_output_power_management::OutputPowerState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::output_power_management::v1::server::zwlr_output_power_v1::ZwlrOutputPowerV1: $crate::wlr_output_power_management::OutputPowerData
        ] => $crate::wlr_output_power_management::OutputPowerState);
    };
}
