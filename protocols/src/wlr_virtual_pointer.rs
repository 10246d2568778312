//! wlr-virtual-pointer-unstable-v1 (v2): remote desktops (wayvnc), input tools and test
//! drivers move the pointer, click and scroll as if they were a mouse.
//!
//! Requests are collected until `frame` (the protocol groups them like wl_pointer's
//! frames: nothing happens before it), then each becomes a [`VirtualPointerEvent`] for
//! [`VirtualPointerHandler::virtual_pointer_event`], with the [`VirtualPointer`] it came
//! from (its output, for absolute motion). At most [`MAX_PENDING`] events wait for a frame;
//! more are dropped. Absolute positions arrive as fractions of the extent the client gave
//! (0.0..=1.0); a zero extent makes the event meaningless and it is dropped. An
//! `axis_source` applies to the scroll events of its frame.
//!
//! Protocol errors, on the virtual pointer: `invalid_axis` for an axis other than vertical
//! (0) and horizontal (1); `invalid_axis_source` for a source outside `wl_pointer.axis_source`.

use std::sync::Mutex;

use smithay::{
    backend::input::{Axis, AxisSource},
    output::Output,
    reexports::{
        wayland_protocols_wlr::virtual_pointer::v1::server::{
            zwlr_virtual_pointer_manager_v1::{self, ZwlrVirtualPointerManagerV1},
            zwlr_virtual_pointer_v1::{self, ZwlrVirtualPointerV1},
        },
        wayland_server::{
            backend::GlobalId, protocol::wl_pointer, Client, DataInit, Dispatch, DisplayHandle,
            GlobalDispatch, New, Resource, WEnum,
        },
    },
};

/// The version of `zwlr_virtual_pointer_manager_v1` lockstep implements.
pub const VERSION: u32 = 2;

/// How many events one virtual pointer may have waiting for its `frame`.
pub const MAX_PENDING: usize = 256;

/// What a virtual pointer does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VirtualPointerEvent {
    /// Relative motion, in logical pixels.
    Motion {
        /// Client timestamp (ms).
        time: u32,
        /// The displacement.
        delta: (f64, f64),
    },
    /// Absolute motion, as fractions (0..=1) of the output's (or the whole space's) size.
    MotionAbsolute {
        /// Client timestamp (ms).
        time: u32,
        /// Position as fractions of the width and height.
        position: (f64, f64),
    },
    /// A button (evdev code) pressed or released.
    Button {
        /// Client timestamp (ms).
        time: u32,
        /// evdev button code.
        button: u32,
        /// Pressed (true) or released.
        pressed: bool,
    },
    /// Scrolling on one axis.
    Axis {
        /// Client timestamp (ms).
        time: u32,
        /// Which axis.
        axis: Axis,
        /// The amount, in the same units as wl_pointer.axis.
        value: f64,
        /// Wheel steps, for `axis_discrete`.
        discrete: Option<i32>,
        /// The source set by the last `axis_source`.
        source: Option<AxisSource>,
    },
    /// Scrolling on `axis` stopped.
    AxisStop {
        /// Client timestamp (ms).
        time: u32,
        /// Which axis.
        axis: Axis,
    },
}

/// A virtual pointer: where its absolute motion maps to.
#[derive(Debug)]
pub struct VirtualPointer {
    output: Option<Output>,
    pending: Mutex<Pending>,
}

/// Events waiting for the frame, and the frame's axis source.
#[derive(Debug, Default)]
struct Pending {
    events: Vec<VirtualPointerEvent>,
    source: Option<AxisSource>,
}

impl VirtualPointer {
    /// The output absolute motion maps onto; `None`: the whole space.
    pub fn output(&self) -> Option<&Output> {
        self.output.as_ref()
    }
}

/// What the compositor implements.
pub trait VirtualPointerHandler {
    /// `pointer` did `event`.
    fn virtual_pointer_event(&mut self, pointer: &VirtualPointer, event: VirtualPointerEvent);
}

/// Data of the global: which clients may see it.
pub struct VirtualPointerGlobalData {
    filter: Box<dyn Fn(&Client) -> bool + Send + Sync>,
}

/// Global state of the virtual pointer manager.
#[derive(Debug)]
pub struct VirtualPointerManagerState {
    global: GlobalId,
}

impl VirtualPointerManagerState {
    /// Creates the `zwlr_virtual_pointer_manager_v1` global, visible to clients `filter`
    /// accepts.
    pub fn new<D, F>(display: &DisplayHandle, filter: F) -> Self
    where
        D: GlobalDispatch<ZwlrVirtualPointerManagerV1, VirtualPointerGlobalData>
            + Dispatch<ZwlrVirtualPointerManagerV1, ()>
            + Dispatch<ZwlrVirtualPointerV1, VirtualPointer>
            + VirtualPointerHandler
            + 'static,
        F: Fn(&Client) -> bool + Send + Sync + 'static,
    {
        let global = display.create_global::<D, ZwlrVirtualPointerManagerV1, _>(
            VERSION,
            VirtualPointerGlobalData {
                filter: Box::new(filter),
            },
        );
        Self { global }
    }

    /// The global's id.
    pub fn global(&self) -> GlobalId {
        self.global.clone()
    }
}

impl<D> GlobalDispatch<ZwlrVirtualPointerManagerV1, VirtualPointerGlobalData, D>
    for VirtualPointerManagerState
where
    D: GlobalDispatch<ZwlrVirtualPointerManagerV1, VirtualPointerGlobalData>
        + Dispatch<ZwlrVirtualPointerManagerV1, ()>
        + 'static,
{
    fn bind(
        _state: &mut D,
        _handle: &DisplayHandle,
        _client: &Client,
        resource: New<ZwlrVirtualPointerManagerV1>,
        _global_data: &VirtualPointerGlobalData,
        data_init: &mut DataInit<'_, D>,
    ) {
        data_init.init(resource, ());
    }

    fn can_view(client: Client, global_data: &VirtualPointerGlobalData) -> bool {
        (global_data.filter)(&client)
    }
}

impl<D> Dispatch<ZwlrVirtualPointerManagerV1, (), D> for VirtualPointerManagerState
where
    D: Dispatch<ZwlrVirtualPointerManagerV1, ()>
        + Dispatch<ZwlrVirtualPointerV1, VirtualPointer>
        + 'static,
{
    fn request(
        _state: &mut D,
        _client: &Client,
        _manager: &ZwlrVirtualPointerManagerV1,
        request: zwlr_virtual_pointer_manager_v1::Request,
        _data: &(),
        _dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        // lockstep has one seat: the seat argument can only name it.
        let (id, output) = match request {
            zwlr_virtual_pointer_manager_v1::Request::CreateVirtualPointer { id, .. } => (id, None),
            zwlr_virtual_pointer_manager_v1::Request::CreateVirtualPointerWithOutput {
                id,
                output,
                ..
            } => (id, output.as_ref().and_then(Output::from_resource)),
            _ => return,
        };
        data_init.init(
            id,
            VirtualPointer {
                output,
                pending: Mutex::new(Pending::default()),
            },
        );
    }
}

fn axis_of(object: &ZwlrVirtualPointerV1, axis: WEnum<wl_pointer::Axis>) -> Option<Axis> {
    match axis {
        WEnum::Value(wl_pointer::Axis::VerticalScroll) => Some(Axis::Vertical),
        WEnum::Value(wl_pointer::Axis::HorizontalScroll) => Some(Axis::Horizontal),
        other => {
            let value = crate::wenum_raw(other);
            object.post_error(
                zwlr_virtual_pointer_v1::Error::InvalidAxis,
                format!("axis {value} is not a wl_pointer.axis (0 vertical, 1 horizontal)"),
            );
            None
        }
    }
}

impl<D> Dispatch<ZwlrVirtualPointerV1, VirtualPointer, D> for VirtualPointerManagerState
where
    D: Dispatch<ZwlrVirtualPointerV1, VirtualPointer> + VirtualPointerHandler + 'static,
{
    fn request(
        state: &mut D,
        _client: &Client,
        object: &ZwlrVirtualPointerV1,
        request: zwlr_virtual_pointer_v1::Request,
        data: &VirtualPointer,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        use zwlr_virtual_pointer_v1::Request;
        let event = match request {
            Request::Motion { time, dx, dy } => VirtualPointerEvent::Motion {
                time,
                delta: (dx, dy),
            },
            Request::MotionAbsolute {
                time,
                x,
                y,
                x_extent,
                y_extent,
            } => {
                if x_extent == 0 || y_extent == 0 {
                    return;
                }
                VirtualPointerEvent::MotionAbsolute {
                    time,
                    position: (
                        (f64::from(x) / f64::from(x_extent)).min(1.0),
                        (f64::from(y) / f64::from(y_extent)).min(1.0),
                    ),
                }
            }
            Request::Button {
                time,
                button,
                state: button_state,
            } => VirtualPointerEvent::Button {
                time,
                button,
                pressed: button_state == WEnum::Value(wl_pointer::ButtonState::Pressed),
            },
            Request::Axis { time, axis, value } => {
                let Some(axis) = axis_of(object, axis) else {
                    return;
                };
                VirtualPointerEvent::Axis {
                    time,
                    axis,
                    value,
                    discrete: None,
                    source: None,
                }
            }
            Request::AxisDiscrete {
                time,
                axis,
                value,
                discrete,
            } => {
                let Some(axis) = axis_of(object, axis) else {
                    return;
                };
                VirtualPointerEvent::Axis {
                    time,
                    axis,
                    value,
                    discrete: Some(discrete),
                    source: None,
                }
            }
            Request::AxisStop { time, axis } => {
                let Some(axis) = axis_of(object, axis) else {
                    return;
                };
                VirtualPointerEvent::AxisStop { time, axis }
            }
            Request::AxisSource { axis_source } => {
                let source = match axis_source {
                    WEnum::Value(wl_pointer::AxisSource::Wheel) => AxisSource::Wheel,
                    WEnum::Value(wl_pointer::AxisSource::Finger) => AxisSource::Finger,
                    WEnum::Value(wl_pointer::AxisSource::Continuous) => AxisSource::Continuous,
                    WEnum::Value(wl_pointer::AxisSource::WheelTilt) => AxisSource::WheelTilt,
                    other => {
                        let value = crate::wenum_raw(other);
                        object.post_error(
                            zwlr_virtual_pointer_v1::Error::InvalidAxisSource,
                            format!("axis source {value} is not a wl_pointer.axis_source"),
                        );
                        return;
                    }
                };
                if let Ok(mut pending) = data.pending.lock() {
                    pending.source = Some(source);
                }
                return;
            }
            Request::Frame => {
                let Ok(mut pending) = data.pending.lock() else {
                    return;
                };
                let Pending { events, source } = std::mem::take(&mut *pending);
                drop(pending);
                for mut event in events {
                    if let VirtualPointerEvent::Axis { source: s, .. } = &mut event {
                        *s = source;
                    }
                    state.virtual_pointer_event(data, event);
                }
                return;
            }
            _ => return,
        };
        if let Ok(mut pending) = data.pending.lock() {
            if pending.events.len() < MAX_PENDING {
                pending.events.push(event);
            }
        }
    }
}

/// Implements the virtual-pointer dispatch traits for `$ty` by delegating to this module.
#[macro_export]
macro_rules! delegate_wlr_virtual_pointer {
    ($ty:ty) => {
        smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::virtual_pointer::v1::server::zwlr_virtual_pointer_manager_v1::ZwlrVirtualPointerManagerV1: $crate::wlr_virtual_pointer::VirtualPointerGlobalData
        ] => $crate::wlr_virtual_pointer::VirtualPointerManagerState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::virtual_pointer::v1::server::zwlr_virtual_pointer_manager_v1::ZwlrVirtualPointerManagerV1: ()
        ] => $crate::wlr_virtual_pointer::VirtualPointerManagerState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::virtual_pointer::v1::server::zwlr_virtual_pointer_v1::ZwlrVirtualPointerV1: $crate::wlr_virtual_pointer::VirtualPointer
        ] => $crate::wlr_virtual_pointer::VirtualPointerManagerState);
    };
}
