//! wp_tearing_control_v1: a client (a game) says that its surface may be shown with
//! asynchronous page flips (tearing) for lower latency.
//!
//! The hint is double-buffered surface state ([`TearingHint`], a smithay cached state):
//! `set_presentation_hint` changes the pending state, the surface's commit applies it, and
//! [`presentation_hint`] reads what is in force. Destroying the object sets the pending
//! hint back to `vsync`; a destroyed surface makes the object inert.
//!
//! What a compositor does with the hint is its own business. lockstep stores it; KMS async
//! flips for a fullscreen, directly scanned-out surface are not built yet (every flip is
//! vsynced, so none goes without its fences).
//!
//! Protocol errors: `tearing_control_exists` on the manager for a second tearing-control
//! object of one surface.

use std::sync::Mutex;

use smithay::{
    reexports::{
        wayland_protocols::wp::tearing_control::v1::server::{
            wp_tearing_control_manager_v1::{self, WpTearingControlManagerV1},
            wp_tearing_control_v1::{self, PresentationHint, WpTearingControlV1},
        },
        wayland_server::{
            backend::{ClientId, GlobalId},
            protocol::wl_surface::WlSurface,
            Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource, WEnum, Weak,
        },
    },
    wayland::compositor::{with_states, Cacheable},
};
use tracing::debug;

/// The version of `wp_tearing_control_manager_v1` lockstep implements.
pub const VERSION: u32 = 1;

/// The surface's presentation hint, double-buffered with its commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TearingHint {
    /// Whether the client accepts tearing (async flips).
    pub allow_tearing: bool,
}

impl Cacheable for TearingHint {
    fn commit(&mut self, _dh: &DisplayHandle) -> Self {
        *self
    }

    fn merge_into(self, into: &mut Self, _dh: &DisplayHandle) {
        *into = self;
    }
}

/// Marks a surface that has a tearing-control object (one per surface).
#[derive(Debug, Default)]
struct HasTearingControl(Mutex<bool>);

/// The hint in force on `surface` (`allow_tearing: false` when the client never set one).
pub fn presentation_hint(surface: &WlSurface) -> TearingHint {
    with_states(surface, |states| {
        *states.cached_state.get::<TearingHint>().current()
    })
}

/// Global state of the tearing-control manager.
#[derive(Debug)]
pub struct TearingControlState {
    global: GlobalId,
}

/// Data of a tearing-control object: its surface.
#[derive(Debug)]
pub struct TearingControlData {
    surface: Weak<WlSurface>,
}

impl TearingControlState {
    /// Creates the `wp_tearing_control_manager_v1` global.
    pub fn new<D>(display: &DisplayHandle) -> Self
    where
        D: GlobalDispatch<WpTearingControlManagerV1, ()>
            + Dispatch<WpTearingControlManagerV1, ()>
            + Dispatch<WpTearingControlV1, TearingControlData>
            + 'static,
    {
        let global = display.create_global::<D, WpTearingControlManagerV1, _>(VERSION, ());
        Self { global }
    }

    /// The global's id.
    pub fn global(&self) -> GlobalId {
        self.global.clone()
    }
}

fn set_pending(surface: &WlSurface, allow_tearing: bool) {
    with_states(surface, |states| {
        states
            .cached_state
            .get::<TearingHint>()
            .pending()
            .allow_tearing = allow_tearing;
    });
}

impl<D> GlobalDispatch<WpTearingControlManagerV1, (), D> for TearingControlState
where
    D: GlobalDispatch<WpTearingControlManagerV1, ()>
        + Dispatch<WpTearingControlManagerV1, ()>
        + 'static,
{
    fn bind(
        _state: &mut D,
        _handle: &DisplayHandle,
        _client: &Client,
        resource: New<WpTearingControlManagerV1>,
        _global_data: &(),
        data_init: &mut DataInit<'_, D>,
    ) {
        data_init.init(resource, ());
    }
}

impl<D> Dispatch<WpTearingControlManagerV1, (), D> for TearingControlState
where
    D: Dispatch<WpTearingControlManagerV1, ()>
        + Dispatch<WpTearingControlV1, TearingControlData>
        + 'static,
{
    fn request(
        _state: &mut D,
        _client: &Client,
        manager: &WpTearingControlManagerV1,
        request: wp_tearing_control_manager_v1::Request,
        _data: &(),
        _dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        let wp_tearing_control_manager_v1::Request::GetTearingControl { id, surface } = request
        else {
            return;
        };
        let exists = with_states(&surface, |states| {
            states
                .data_map
                .insert_if_missing_threadsafe(HasTearingControl::default);
            states
                .data_map
                .get::<HasTearingControl>()
                .and_then(|m| {
                    m.0.lock()
                        .ok()
                        .map(|mut has| std::mem::replace(&mut *has, true))
                })
                .unwrap_or(false)
        });
        if exists {
            manager.post_error(
                wp_tearing_control_manager_v1::Error::TearingControlExists,
                format!(
                    "{} already has a wp_tearing_control_v1 object",
                    surface.id()
                ),
            );
            return;
        }
        data_init.init(
            id,
            TearingControlData {
                surface: surface.downgrade(),
            },
        );
    }
}

impl<D> Dispatch<WpTearingControlV1, TearingControlData, D> for TearingControlState
where
    D: Dispatch<WpTearingControlV1, TearingControlData> + 'static,
{
    fn request(
        _state: &mut D,
        _client: &Client,
        _object: &WpTearingControlV1,
        request: wp_tearing_control_v1::Request,
        data: &TearingControlData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        let wp_tearing_control_v1::Request::SetPresentationHint { hint } = request else {
            return;
        };
        // The surface is gone: inert.
        let Ok(surface) = data.surface.upgrade() else {
            return;
        };
        let allow = match hint {
            WEnum::Value(PresentationHint::Async) => true,
            WEnum::Value(PresentationHint::Vsync) => false,
            other => {
                // The protocol names no error for it: treat it as vsync.
                debug!(
                    hint = crate::wenum_raw(other),
                    "unknown presentation hint; vsync"
                );
                false
            }
        };
        set_pending(&surface, allow);
    }

    fn destroyed(
        _state: &mut D,
        _client: ClientId,
        _object: &WpTearingControlV1,
        data: &TearingControlData,
    ) {
        if let Ok(surface) = data.surface.upgrade() {
            set_pending(&surface, false);
            with_states(&surface, |states| {
                if let Some(m) = states.data_map.get::<HasTearingControl>() {
                    if let Ok(mut has) = m.0.lock() {
                        *has = false;
                    }
                }
            });
        }
    }
}

/// Implements the tearing-control dispatch traits for `$ty` by delegating to this module.
#[macro_export]
macro_rules! delegate_wp_tearing_control {
    ($ty:ty) => {
        smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::tearing_control::v1::server::wp_tearing_control_manager_v1::WpTearingControlManagerV1: ()
        ] => $crate::wp_tearing_control::TearingControlState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::tearing_control::v1::server::wp_tearing_control_manager_v1::WpTearingControlManagerV1: ()
        ] => $crate::wp_tearing_control::TearingControlState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::tearing_control::v1::server::wp_tearing_control_v1::WpTearingControlV1: $crate::wp_tearing_control::TearingControlData
        ] => $crate::wp_tearing_control::TearingControlState);
    };
}
