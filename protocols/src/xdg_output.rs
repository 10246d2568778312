//! xdg-output-unstable-v1 (`zxdg_output_manager_v1`, version 3): an output's place and size in
//! the compositor's logical space, and its name, for bars, screenshot tools and Xwayland.
//!
//! Why lockstep has its own: smithay 0.7 files every `zxdg_output_v1` under the first
//! xdg-output record an output ever had, but its destructor removes the object from the record
//! the object itself carries. The weak reference therefore stays behind, about 41 bytes per
//! `get_xdg_output`, for as long as the output exists: a client that creates and destroys
//! xdg-outputs in a loop (or a long-running desktop with bars that come and go) grows the
//! compositor without bound. This module keeps the objects in a map keyed by object id, so a
//! destroyed object is gone in O(1).
//!
//! How changes reach clients: nothing calls this module when an output changes (mode, scale,
//! transform or position may change in a backend, in output management or on a config
//! reload). Instead [`XdgOutputState::refresh`] runs once per loop iteration: it compares each
//! output's current logical geometry with what its objects were last told, and only when it
//! differs sends the new values followed by `wl_output.done` (and `zxdg_output_v1.done` below
//! version 3). The comparison costs a few field reads per output and allocates nothing,
//! independent of how many objects exist. Name and description are sent once, to a new
//! object: lockstep sets both when it creates an output and never changes them.

use std::collections::HashMap;

use smithay::{
    output::{Output, WeakOutput},
    reexports::{
        wayland_protocols::xdg::xdg_output::zv1::server::{
            zxdg_output_manager_v1::{self, ZxdgOutputManagerV1},
            zxdg_output_v1::ZxdgOutputV1,
        },
        wayland_server::{
            backend::{ClientId, GlobalId, ObjectId},
            protocol::wl_output::WlOutput,
            Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource,
        },
    },
    utils::Transform,
};

/// The version of `zxdg_output_manager_v1` lockstep implements.
pub const VERSION: u32 = 3;

/// An output's place and size in the logical space, as its xdg-outputs are told them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogicalGeometry {
    /// Top-left corner in the global logical space.
    pub position: (i32, i32),
    /// Size in logical pixels (the mode divided by the scale, rotated by the transform);
    /// `None` while the output has no mode.
    pub size: Option<(i32, i32)>,
}

impl LogicalGeometry {
    /// The current values of `output`.
    pub fn of(output: &Output) -> Self {
        let location = output.current_location();
        let scale = output.current_scale().fractional_scale();
        let size = output.current_mode().map(|mode| {
            let w = (f64::from(mode.size.w) / scale).round() as i32;
            let h = (f64::from(mode.size.h) / scale).round() as i32;
            match output.current_transform() {
                Transform::_90 | Transform::_270 | Transform::Flipped90 | Transform::Flipped270 => {
                    (h, w)
                }
                _ => (w, h),
            }
        });
        Self {
            position: (location.x, location.y),
            size,
        }
    }
}

/// Data of the global (the manager has nothing to configure).
#[derive(Debug, Default)]
pub struct XdgOutputGlobalData;

/// Data of a bound `zxdg_output_manager_v1`.
#[derive(Debug, Default)]
pub struct XdgOutputManagerData;

/// Data of a `zxdg_output_v1`: the output it describes and the `wl_output` it was made for
/// (whose `done` ends each batch of changes).
#[derive(Debug)]
pub struct XdgOutputData {
    output: Option<WeakOutput>,
    wl_output: WlOutput,
}

/// The objects of one output and what they were last told.
#[derive(Debug)]
struct Group {
    sent: LogicalGeometry,
    objects: HashMap<ObjectId, ZxdgOutputV1>,
}

/// Global state of the xdg-output manager.
#[derive(Debug)]
pub struct XdgOutputState {
    global: GlobalId,
    groups: HashMap<WeakOutput, Group>,
}

/// What the compositor implements: access to the state.
pub trait XdgOutputHandler {
    /// The protocol state.
    fn xdg_output_state(&mut self) -> &mut XdgOutputState;
}

/// Sends `geometry` to `object` as one batch ending in `done`; a new object (with `output`)
/// also gets the output's name and description (version 2 and up).
fn send(
    object: &ZxdgOutputV1,
    wl_output: &WlOutput,
    geometry: LogicalGeometry,
    new: Option<&Output>,
) {
    object.logical_position(geometry.position.0, geometry.position.1);
    if let Some((w, h)) = geometry.size {
        object.logical_size(w, h);
    }
    if let Some(output) = new.filter(|_| object.version() >= 2) {
        object.name(output.name());
        object.description(output.description());
    }
    if object.version() < 3 {
        object.done();
    }
    if wl_output.is_alive() && wl_output.version() >= 2 {
        wl_output.done();
    }
}

impl XdgOutputState {
    /// Creates the `zxdg_output_manager_v1` global.
    pub fn new<D>(display: &DisplayHandle) -> Self
    where
        D: GlobalDispatch<ZxdgOutputManagerV1, XdgOutputGlobalData>
            + Dispatch<ZxdgOutputManagerV1, XdgOutputManagerData>
            + Dispatch<ZxdgOutputV1, XdgOutputData>
            + XdgOutputHandler
            + 'static,
    {
        let global =
            display.create_global::<D, ZxdgOutputManagerV1, _>(VERSION, XdgOutputGlobalData);
        Self {
            global,
            groups: HashMap::new(),
        }
    }

    /// The global's id.
    pub fn global(&self) -> GlobalId {
        self.global.clone()
    }

    /// How many live `zxdg_output_v1` objects lockstep tracks (for tests and the census).
    pub fn object_count(&self) -> usize {
        self.groups.values().map(|g| g.objects.len()).sum()
    }

    /// Tells every object whose output's logical geometry changed its new values. Call once per
    /// loop iteration, before flushing clients. Objects of an output that is gone get nothing
    /// more (they are inert until the client destroys them).
    pub fn refresh(&mut self) {
        self.groups.retain(|weak, group| {
            let Some(output) = weak.upgrade() else {
                return false;
            };
            let now = LogicalGeometry::of(&output);
            if now != group.sent {
                for object in group.objects.values() {
                    if let Some(data) = object.data::<XdgOutputData>() {
                        send(object, &data.wl_output, now, None);
                    }
                }
                group.sent = now;
            }
            true
        });
    }
}

impl<D> GlobalDispatch<ZxdgOutputManagerV1, XdgOutputGlobalData, D> for XdgOutputState
where
    D: GlobalDispatch<ZxdgOutputManagerV1, XdgOutputGlobalData>
        + Dispatch<ZxdgOutputManagerV1, XdgOutputManagerData>
        + 'static,
{
    fn bind(
        _state: &mut D,
        _handle: &DisplayHandle,
        _client: &Client,
        resource: New<ZxdgOutputManagerV1>,
        _global_data: &XdgOutputGlobalData,
        data_init: &mut DataInit<'_, D>,
    ) {
        data_init.init(resource, XdgOutputManagerData);
    }
}

impl<D> Dispatch<ZxdgOutputManagerV1, XdgOutputManagerData, D> for XdgOutputState
where
    D: Dispatch<ZxdgOutputManagerV1, XdgOutputManagerData>
        + Dispatch<ZxdgOutputV1, XdgOutputData>
        + XdgOutputHandler
        + 'static,
{
    fn request(
        state: &mut D,
        _client: &Client,
        _manager: &ZxdgOutputManagerV1,
        request: zxdg_output_manager_v1::Request,
        _data: &XdgOutputManagerData,
        _dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        let zxdg_output_manager_v1::Request::GetXdgOutput {
            id,
            output: wl_output,
        } = request
        else {
            return;
        };
        let output = Output::from_resource(&wl_output);
        let object = data_init.init(
            id,
            XdgOutputData {
                output: output.as_ref().map(Output::downgrade),
                wl_output: wl_output.clone(),
            },
        );
        // A wl_output whose output is gone (unplugged while the request was in flight) gets an
        // inert object: there is nothing to describe.
        let Some(output) = output else {
            return;
        };
        let geometry = LogicalGeometry::of(&output);
        send(&object, &wl_output, geometry, Some(&output));
        let group = state
            .xdg_output_state()
            .groups
            .entry(output.downgrade())
            .or_insert_with(|| Group {
                sent: geometry,
                objects: HashMap::new(),
            });
        group.objects.insert(object.id(), object);
    }
}

impl<D> Dispatch<ZxdgOutputV1, XdgOutputData, D> for XdgOutputState
where
    D: Dispatch<ZxdgOutputV1, XdgOutputData> + XdgOutputHandler + 'static,
{
    fn request(
        _state: &mut D,
        _client: &Client,
        _object: &ZxdgOutputV1,
        _request: smithay::reexports::wayland_protocols::xdg::xdg_output::zv1::server::zxdg_output_v1::Request,
        _data: &XdgOutputData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        // `destroy` is the only request; the object is removed in `destroyed`.
    }

    fn destroyed(state: &mut D, _client: ClientId, object: &ZxdgOutputV1, data: &XdgOutputData) {
        let Some(output) = &data.output else {
            return;
        };
        let groups = &mut state.xdg_output_state().groups;
        if let Some(group) = groups.get_mut(output) {
            group.objects.remove(&object.id());
            if group.objects.is_empty() {
                groups.remove(output);
            }
        }
    }
}

/// Implements the xdg-output dispatch traits for `$ty` by delegating to this module.
#[macro_export]
macro_rules! delegate_xdg_output {
    ($ty:ty) => {
        smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            smithay::reexports::wayland_protocols::xdg::xdg_output::zv1::server::zxdg_output_manager_v1::ZxdgOutputManagerV1: $crate::xdg_output::XdgOutputGlobalData
        ] => $crate::xdg_output::XdgOutputState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::xdg::xdg_output::zv1::server::zxdg_output_manager_v1::ZxdgOutputManagerV1: $crate::xdg_output::XdgOutputManagerData
        ] => $crate::xdg_output::XdgOutputState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::xdg::xdg_output::zv1::server::zxdg_output_v1::ZxdgOutputV1: $crate::xdg_output::XdgOutputData
        ] => $crate::xdg_output::XdgOutputState);
    };
}
