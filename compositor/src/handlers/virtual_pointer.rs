//! zwlr_virtual_pointer_manager_v1 (lockstep-protocols' `wlr_virtual_pointer`): a client
//! that acts as a mouse (wayvnc, input scripts, WLCS). Its events take the same paths as a
//! real pointer's (`input.rs`): relative motion reaches relative-pointer clients and honours
//! pointer constraints, a press focuses the window under the pointer, and so on. Absolute
//! motion maps onto the pointer's output, or the bounding box of all outputs. The protocol
//! module holds events until the client's `frame`; each is then sent with its own
//! wl_pointer frame.
//!
//! Privileged (it drives every client's input): see `security_context.rs`.

use lockstep_protocols::{
    delegate_wlr_virtual_pointer,
    wlr_virtual_pointer::{VirtualPointer, VirtualPointerEvent, VirtualPointerHandler},
};
use smithay::{
    backend::input::AxisSource,
    input::pointer::AxisFrame,
    utils::{Logical, Rectangle},
};

use crate::state::State;

impl VirtualPointerHandler for State {
    fn virtual_pointer_event(&mut self, pointer: &VirtualPointer, event: VirtualPointerEvent) {
        match event {
            VirtualPointerEvent::Motion { time, delta } => {
                self.pointer_motion_by(delta.into(), time);
            }
            VirtualPointerEvent::MotionAbsolute { time, position } => {
                let area = pointer
                    .output()
                    .and_then(|o| self.core.space.output_geometry(o))
                    .or_else(|| self.space_bounds());
                if let Some(area) = area {
                    let location = (
                        f64::from(area.loc.x) + position.0 * f64::from(area.size.w),
                        f64::from(area.loc.y) + position.1 * f64::from(area.size.h),
                    );
                    self.pointer_motion_to(location.into(), time);
                }
            }
            VirtualPointerEvent::Button {
                time,
                button,
                pressed,
            } => self.pointer_button(button, pressed, time),
            VirtualPointerEvent::Axis {
                time,
                axis,
                value,
                discrete,
                source,
            } => {
                let mut frame = AxisFrame::new(time)
                    .source(source.unwrap_or(AxisSource::Wheel))
                    .value(axis, value);
                if let Some(steps) = discrete {
                    frame = frame.v120(axis, steps.saturating_mul(120));
                }
                self.pointer_axis_frame(frame);
            }
            VirtualPointerEvent::AxisStop { time, axis } => {
                self.pointer_axis_frame(AxisFrame::new(time).stop(axis));
            }
        }
    }
}

impl State {
    /// The bounding box of every output.
    fn space_bounds(&self) -> Option<Rectangle<i32, Logical>> {
        self.core
            .space
            .outputs()
            .filter_map(|o| self.core.space.output_geometry(o))
            .reduce(|a, b| a.merge(b))
    }
}

delegate_wlr_virtual_pointer!(State);
