//! lockstep-protocols: Wayland protocols lockstep implements itself.
//!
//! Each protocol lives in a file named after it and follows smithay's shape: an `XxxState`
//! created with the display handle and a client filter, an `XxxHandler` trait the compositor
//! implements, `GlobalDispatch`/`Dispatch` impls generic over the compositor state `D`, and a
//! `delegate_xxx!` macro. Nothing here knows about a backend: where pixels come from is the
//! handler's business.
//!
//! - [`linux_drm_syncobj_v1`]: explicit synchronization with DRM syncobj timelines, on
//!   `lockstep-sync`.
//! - [`wlr_screencopy`]: `zwlr_screencopy_manager_v1` (what `grim` uses).
//! - [`wlr_output_management`]: `zwlr_output_manager_v1` (wlr-randr, kanshi).
//! - [`wlr_output_power_management`]: `zwlr_output_power_manager_v1` (displays off/on).
//! - [`wlr_foreign_toplevel`]: `zwlr_foreign_toplevel_manager_v1` (taskbars).
//! - [`wlr_virtual_pointer`]: `zwlr_virtual_pointer_manager_v1` (remote input).
//! - [`wlr_gamma_control`]: `zwlr_gamma_control_manager_v1` (night light).
//! - [`wp_tearing_control`]: `wp_tearing_control_manager_v1` (the async-flip hint).
//! - [`ext_idle_notify`]: `ext_idle_notifier_v1` (idle timers for swayidle; one timer for all).
//! - [`xdg_output`]: `zxdg_output_manager_v1` (logical output geometry; smithay's leaks).
#![warn(missing_docs)]

pub mod ext_idle_notify;
pub mod linux_drm_syncobj_v1;
pub mod wlr_foreign_toplevel;
pub mod wlr_gamma_control;
pub mod wlr_output_management;
pub mod wlr_output_power_management;
pub mod wlr_screencopy;
pub mod wlr_virtual_pointer;
pub mod wp_tearing_control;
pub mod xdg_output;

/// The number a client sent for an enum argument, known value or not (for error messages).
pub(crate) fn wenum_raw<T: Into<u32>>(value: smithay::reexports::wayland_server::WEnum<T>) -> u32 {
    match value {
        smithay::reexports::wayland_server::WEnum::Value(v) => v.into(),
        smithay::reexports::wayland_server::WEnum::Unknown(v) => v,
    }
}

/// The output a per-output object (power control, gamma control) acts on; emptied when the
/// object fails, which makes it inert (its requests are ignored from then on).
#[derive(Debug)]
pub struct OutputSlot(std::sync::Mutex<Option<smithay::output::Output>>);

impl OutputSlot {
    /// A slot holding `output` (`None`: inert from the start).
    pub fn new(output: Option<smithay::output::Output>) -> Self {
        Self(std::sync::Mutex::new(output))
    }

    /// The output, unless the object failed.
    pub fn get(&self) -> Option<smithay::output::Output> {
        self.0.lock().ok().and_then(|o| o.clone())
    }

    /// Makes the object inert.
    pub fn clear(&self) {
        if let Ok(mut output) = self.0.lock() {
            *output = None;
        }
    }
}
