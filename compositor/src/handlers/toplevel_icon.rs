//! xdg_toplevel_icon_v1: windows give their icon, by XDG icon name or as square shm buffers.
//!
//! smithay 0.7 implements the protocol and keeps the icon in the toplevel surface's cached
//! state (it applies with the surface's next commit); lockstep shows it in `lockstep msg
//! windows` (`icon`: the name and the buffer sizes), where a taskbar or a script can read
//! it. lockstep advertises no preferred icon sizes (it draws no icons itself).
//!
//! One guard: an icon becomes immutable once a toplevel uses it (`set_icon`), and smithay
//! posts `immutable` for a later `set_name` or `add_buffer` but then goes on to change the
//! icon anyway, through a `debug_assert!` that panics in debug builds (the ones the tests
//! run). lockstep remembers which icons were assigned and refuses those requests with the
//! same error before smithay sees them.

use std::collections::HashSet;

use smithay::{
    reexports::{
        wayland_protocols::xdg::toplevel_icon::v1::server::{
            xdg_toplevel_icon_manager_v1::{self, XdgToplevelIconManagerV1},
            xdg_toplevel_icon_v1::{self, XdgToplevelIconV1},
        },
        wayland_server::{
            backend::{ClientId, ObjectId},
            delegate_global_dispatch, Client, DataInit, Dispatch, DisplayHandle, Resource,
        },
    },
    wayland::{
        compositor::with_states,
        xdg_toplevel_icon::{
            ToplevelIconCachedState, XdgToplevelIconHandler, XdgToplevelIconManager,
            XdgToplevelIconManagerUserData, XdgToplevelIconUserData,
        },
    },
};
use tracing::debug;

use crate::state::State;

/// The global and the icons assigned to a toplevel (immutable from then on).
pub struct ToplevelIcons {
    _manager: XdgToplevelIconManager,
    assigned: HashSet<ObjectId>,
}

impl ToplevelIcons {
    /// Creates the global.
    pub fn new(dh: &DisplayHandle) -> Self {
        ToplevelIcons {
            _manager: XdgToplevelIconManager::new::<State>(dh),
            assigned: HashSet::new(),
        }
    }
}

/// A window's icon as `lockstep msg windows` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IconInfo {
    /// The XDG icon name, if the client gave one.
    pub name: Option<String>,
    /// The pixel sizes of the icon's buffers (square: one number each) with their scale.
    pub buffers: Vec<(i32, i32)>,
}

/// The icon the toplevel of `surface` has in force (after its last commit).
pub fn icon_of(
    surface: &smithay::reexports::wayland_server::protocol::wl_surface::WlSurface,
) -> Option<IconInfo> {
    with_states(surface, |states| {
        let mut cached = states.cached_state.get::<ToplevelIconCachedState>();
        let current = cached.current();
        let name = current.icon_name().map(str::to_owned);
        let buffers: Vec<(i32, i32)> = current
            .buffers()
            .iter()
            .map(|(buffer, scale)| {
                let size =
                    smithay::wayland::shm::with_buffer_contents(buffer, |_, _, data| data.width)
                        .unwrap_or(0);
                (size, *scale)
            })
            .collect();
        (name.is_some() || !buffers.is_empty()).then_some(IconInfo { name, buffers })
    })
}

impl XdgToplevelIconHandler for State {
    fn set_icon(
        &mut self,
        _toplevel: smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel::XdgToplevel,
        wl_surface: smithay::reexports::wayland_server::protocol::wl_surface::WlSurface,
    ) {
        debug!(surface = ?wl_surface.id(), "toplevel icon set (applies with the next commit)");
    }
}

impl Dispatch<XdgToplevelIconManagerV1, ()> for State {
    fn request(
        state: &mut Self,
        client: &Client,
        manager: &XdgToplevelIconManagerV1,
        request: xdg_toplevel_icon_manager_v1::Request,
        data: &(),
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let xdg_toplevel_icon_manager_v1::Request::SetIcon {
            icon: Some(icon), ..
        } = &request
        {
            state
                .core
                .protocols
                .toplevel_icons
                .assigned
                .insert(icon.id());
        }
        <XdgToplevelIconManager as Dispatch<XdgToplevelIconManagerV1, (), State>>::request(
            state, client, manager, request, data, dh, data_init,
        );
    }
}

impl Dispatch<XdgToplevelIconV1, XdgToplevelIconUserData> for State {
    fn request(
        state: &mut Self,
        client: &Client,
        icon: &XdgToplevelIconV1,
        request: xdg_toplevel_icon_v1::Request,
        data: &XdgToplevelIconUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        let changes = matches!(
            request,
            xdg_toplevel_icon_v1::Request::SetName { .. }
                | xdg_toplevel_icon_v1::Request::AddBuffer { .. }
        );
        if changes
            && state
                .core
                .protocols
                .toplevel_icons
                .assigned
                .contains(&icon.id())
        {
            icon.post_error(
                xdg_toplevel_icon_v1::Error::Immutable,
                format!(
                    "xdg_toplevel_icon_v1@{} was given to a toplevel with set_icon and can no \
                     longer change",
                    icon.id().protocol_id()
                ),
            );
            return;
        }
        <XdgToplevelIconManager as Dispatch<XdgToplevelIconV1, XdgToplevelIconUserData, State>>::request(
            state, client, icon, request, data, dh, data_init,
        );
    }

    fn destroyed(
        state: &mut Self,
        client: ClientId,
        icon: &XdgToplevelIconV1,
        data: &XdgToplevelIconUserData,
    ) {
        state
            .core
            .protocols
            .toplevel_icons
            .assigned
            .remove(&icon.id());
        <XdgToplevelIconManager as Dispatch<XdgToplevelIconV1, XdgToplevelIconUserData, State>>::destroyed(
            state, client, icon, data,
        );
    }
}

delegate_global_dispatch!(State: [XdgToplevelIconManagerV1: XdgToplevelIconManagerUserData] => XdgToplevelIconManager);
