//! Forgetting the selection devices of clients that are gone (a workaround for smithay 0.7.0).
//!
//! smithay keeps every `wl_data_device`, `zwp_primary_selection_device_v1`,
//! `zwlr_data_control_device_v1` and `ext_data_control_device_v1` in the seat's private
//! selection data and removes one only when its client sends `release`/`destroy`. A client
//! that just disconnects leaves its devices there for good: 175–184 bytes each, and every
//! selection change walks the whole list. Any local process could grow lockstep without bound
//! by connecting, creating a device and hanging up (`lockstep-fuzz` found it; smithay's main
//! branch removes devices in `destroyed`, no release has that yet).
//!
//! lockstep cannot reach that list, and smithay's own `release` handler is the only thing that
//! removes from it. That handler needs a live `wl_seat` (it finds the seat through the
//! device's user data), a `Client` and a `DataInit`, none of which exist any more when a
//! device is destroyed with its client. So lockstep:
//!
//! 1. connects to itself once at start (the *anchor*, [`SelectionAnchor`]: a socket pair
//!    whose client end lockstep writes a few requests to and drains) and makes one device of
//!    each kind there, which lives as long as lockstep;
//! 2. wraps each device's `Dispatch`: everything goes to smithay as before, and `destroyed`
//!    also remembers the dead device ([`DeadDevices`]);
//! 3. at the next request on a device or device manager of that kind, from any client,
//!    replays `release` to smithay for every remembered dead device, lending it the anchor
//!    device's user data (same seat) and that request's client and `DataInit` (which
//!    `release` does not use).
//!
//! So the dead list never holds more than the devices that died since the last device was
//! made or used, which is at most how many were alive at once. `destroyed` runs for devices
//! released by their client too; replaying `release` for those finds nothing to remove.

use smithay::{
    reexports::{
        wayland_protocols::{
            ext::data_control::v1::server::{
                ext_data_control_device_v1::{self, ExtDataControlDeviceV1},
                ext_data_control_manager_v1::{self, ExtDataControlManagerV1},
            },
            wp::primary_selection::zv1::server::{
                zwp_primary_selection_device_manager_v1::{
                    self, ZwpPrimarySelectionDeviceManagerV1,
                },
                zwp_primary_selection_device_v1::{self, ZwpPrimarySelectionDeviceV1},
            },
        },
        wayland_protocols_wlr::data_control::v1::server::{
            zwlr_data_control_device_v1::{self, ZwlrDataControlDeviceV1},
            zwlr_data_control_manager_v1::{self, ZwlrDataControlManagerV1},
        },
        wayland_server::{
            backend::ClientId,
            protocol::{
                wl_data_device::{self, WlDataDevice},
                wl_data_device_manager::{self, WlDataDeviceManager},
            },
            Client, DataInit, Dispatch, DisplayHandle, Resource,
        },
    },
    wayland::selection::{
        data_device::{DataDeviceState, DataDeviceUserData},
        ext_data_control::{
            DataControlState as ExtDataControlState, ExtDataControlDeviceUserData,
            ExtDataControlManagerUserData,
        },
        primary_selection::{PrimaryDeviceUserData, PrimarySelectionState},
        wlr_data_control::{
            DataControlDeviceUserData, DataControlManagerUserData, DataControlState,
        },
    },
};

use crate::{handlers::selection_anchor as anchor, state::State};

/// One kind of selection device: its protocol object, the user data smithay gives it, the
/// smithay state that dispatches it and the request that makes smithay forget it.
pub trait DeviceKind {
    /// The device object.
    type Device: Resource + Clone + 'static;
    /// smithay's user data of the device (holds the seat).
    type Data: Send + Sync + 'static;
    /// smithay's dispatcher of the device.
    type Smithay: Dispatch<Self::Device, Self::Data, State>;
    /// The request after which smithay no longer lists a device.
    fn forget_request() -> <Self::Device as Resource>::Request;
    /// The anchor's protocol id for its device of this kind.
    const ANCHOR_ID: u32;
    /// The dead devices of this kind.
    fn dead(state: &mut State) -> &mut DeadDevices<Self::Device>;
}

/// Devices of one kind that were destroyed while smithay may still list them.
#[derive(Debug)]
pub struct DeadDevices<D> {
    dead: Vec<D>,
    forgotten: u64,
}

impl<D> Default for DeadDevices<D> {
    fn default() -> Self {
        Self {
            dead: Vec::new(),
            forgotten: 0,
        }
    }
}

impl<D> DeadDevices<D> {
    /// How many dead devices wait to be forgotten.
    pub fn pending(&self) -> usize {
        self.dead.len()
    }

    /// How many dead devices smithay was made to forget so far.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }
}

/// The dead devices of all four kinds (kept in `SelectionProtocols`).
#[derive(Debug, Default)]
pub struct SelectionDeviceReaper {
    /// wl_data_device.
    pub data: DeadDevices<WlDataDevice>,
    /// zwp_primary_selection_device_v1.
    pub primary: DeadDevices<ZwpPrimarySelectionDeviceV1>,
    /// zwlr_data_control_device_v1.
    pub wlr: DeadDevices<ZwlrDataControlDeviceV1>,
    /// ext_data_control_device_v1.
    pub ext: DeadDevices<ExtDataControlDeviceV1>,
}

impl SelectionDeviceReaper {
    /// Dead devices of all kinds not forgotten yet (tests and the fuzzer's memory checks).
    pub fn pending(&self) -> usize {
        self.data.pending() + self.primary.pending() + self.wlr.pending() + self.ext.pending()
    }
}

/// Replays smithay's forget request for every dead device of kind `K`, lending the anchor's
/// device of that kind.
fn forget_dead<K: DeviceKind>(
    state: &mut State,
    client: &Client,
    dh: &DisplayHandle,
    data_init: &mut DataInit<'_, State>,
) {
    if K::dead(state).dead.is_empty() {
        return;
    }
    let Some(lender) = state.core.protocols.selection.anchor.device::<K>(dh) else {
        return; // the anchor's requests are not dispatched yet (the first loop round)
    };
    let Some(data) = lender.data::<K::Data>() else {
        return;
    };
    let dead = std::mem::take(&mut K::dead(state).dead);
    for device in &dead {
        K::Smithay::request(
            state,
            client,
            device,
            K::forget_request(),
            data,
            dh,
            data_init,
        );
    }
    K::dead(state).forgotten += dead.len() as u64;
}

/// Dispatches a device request to smithay, then forgets dead devices with this one's help.
fn device_request<K: DeviceKind>(
    state: &mut State,
    client: &Client,
    resource: &K::Device,
    request: <K::Device as Resource>::Request,
    data: &K::Data,
    dh: &DisplayHandle,
    data_init: &mut DataInit<'_, State>,
) {
    K::Smithay::request(state, client, resource, request, data, dh, data_init);
    forget_dead::<K>(state, client, dh, data_init);
}

/// Forwards `destroyed` to smithay and remembers the device.
fn device_destroyed<K: DeviceKind>(
    state: &mut State,
    client: ClientId,
    resource: &K::Device,
    data: &K::Data,
) {
    K::Smithay::destroyed(state, client, resource, data);
    K::dead(state).dead.push(resource.clone());
}

/// Implements `Dispatch` of a device kind and of its manager for `State` through the reaper.
macro_rules! reaped_device {
    ($kind:ident, $device:ty, $data:ty, $manager:ty, $manager_data:ty, $smithay:ty,
     $field:ident, $forget:expr, $anchor_id:expr, $creates:pat) => {
        /// The device kind (module docs).
        pub struct $kind;

        impl DeviceKind for $kind {
            type Device = $device;
            type Data = $data;
            type Smithay = $smithay;
            fn forget_request() -> <$device as Resource>::Request {
                $forget
            }
            const ANCHOR_ID: u32 = $anchor_id;
            fn dead(state: &mut State) -> &mut DeadDevices<$device> {
                &mut state.core.protocols.selection.reaper.$field
            }
        }

        impl Dispatch<$device, $data> for State {
            fn request(
                state: &mut Self,
                client: &Client,
                resource: &$device,
                request: <$device as Resource>::Request,
                data: &$data,
                dh: &DisplayHandle,
                data_init: &mut DataInit<'_, Self>,
            ) {
                device_request::<$kind>(state, client, resource, request, data, dh, data_init);
            }

            fn destroyed(state: &mut Self, client: ClientId, resource: &$device, data: &$data) {
                device_destroyed::<$kind>(state, client, resource, data);
            }
        }

        impl Dispatch<$manager, $manager_data> for State {
            fn request(
                state: &mut Self,
                client: &Client,
                resource: &$manager,
                request: <$manager as Resource>::Request,
                data: &$manager_data,
                dh: &DisplayHandle,
                data_init: &mut DataInit<'_, Self>,
            ) {
                let creates = matches!(request, $creates);
                <$smithay as Dispatch<$manager, $manager_data, State>>::request(
                    state, client, resource, request, data, dh, data_init,
                );
                if creates {
                    forget_dead::<$kind>(state, client, dh, data_init);
                }
            }

            fn destroyed(
                state: &mut Self,
                client: ClientId,
                resource: &$manager,
                data: &$manager_data,
            ) {
                <$smithay as Dispatch<$manager, $manager_data, State>>::destroyed(
                    state, client, resource, data,
                );
            }
        }
    };
}

reaped_device!(
    DataDeviceKind,
    WlDataDevice,
    DataDeviceUserData,
    WlDataDeviceManager,
    (),
    DataDeviceState,
    data,
    wl_data_device::Request::Release,
    anchor::DATA_DEVICE,
    wl_data_device_manager::Request::GetDataDevice { .. }
);

reaped_device!(
    PrimaryDeviceKind,
    ZwpPrimarySelectionDeviceV1,
    PrimaryDeviceUserData,
    ZwpPrimarySelectionDeviceManagerV1,
    (),
    PrimarySelectionState,
    primary,
    zwp_primary_selection_device_v1::Request::Destroy,
    anchor::PRIMARY_DEVICE,
    zwp_primary_selection_device_manager_v1::Request::GetDevice { .. }
);

reaped_device!(
    WlrDataControlKind,
    ZwlrDataControlDeviceV1,
    DataControlDeviceUserData,
    ZwlrDataControlManagerV1,
    DataControlManagerUserData,
    DataControlState,
    wlr,
    zwlr_data_control_device_v1::Request::Destroy,
    anchor::WLR_DEVICE,
    zwlr_data_control_manager_v1::Request::GetDataDevice { .. }
);

reaped_device!(
    ExtDataControlKind,
    ExtDataControlDeviceV1,
    ExtDataControlDeviceUserData,
    ExtDataControlManagerV1,
    ExtDataControlManagerUserData,
    ExtDataControlState,
    ext,
    ext_data_control_device_v1::Request::Destroy,
    anchor::EXT_DEVICE,
    ext_data_control_manager_v1::Request::GetDataDevice { .. }
);
