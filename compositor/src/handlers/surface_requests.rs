//! wl_surface, wl_region and wl_subsurface: smithay's handling, with the requests that make
//! smithay 0.7.0 panic checked first.
//!
//! Why it matters beyond the one client: a panic is caught (clients are dispatched under
//! `catch_unwind`, see `dispatch.rs`) and disconnects only that client, but smithay panics in
//! these places while holding a surface's lock. The lock is then poisoned, smithay's cleanup
//! of the client's surfaces panics half-way, and the surfaces that were parent and child keep
//! each other alive, with their buffers and shm pools: one fd and a mapping each, for good.
//! `lockstep-fuzz` found it as an fd leak.
//!
//! - `wl_subsurface.place_above`/`place_below` relative to the sub-surface's own surface:
//!   smithay's index arithmetic inserts past the end of the parent's list. The protocol says
//!   the reference "must be one of the sibling surfaces, or the parent surface. Using any
//!   other surface, including this sub-surface, will cause a protocol error" (`bad_surface`).
//! - Requests on a sub-surface whose wl_surface is gone are ignored (the spec makes such a
//!   wl_subsurface inert; smithay would unwrap the dead surface's data).
//! - `wl_surface.damage`/`damage_buffer` and `wl_region.add`/`subtract` with a negative
//!   width or height: smithay's debug assertions panic on a negative size. The protocol has
//!   no error for it; like wlroots, lockstep ignores such a rectangle (it covers nothing).

use smithay::{
    reexports::wayland_server::{
        backend::ClientId,
        protocol::{
            wl_region::{self, WlRegion},
            wl_subsurface::{self, WlSubsurface},
            wl_surface::{self, WlSurface},
        },
        Client, DataInit, Dispatch, DisplayHandle, Resource,
    },
    wayland::compositor::{
        get_children, get_parent, CompositorState, RegionUserData, SubsurfaceUserData,
        SurfaceUserData,
    },
};
use tracing::debug;

use crate::state::State;

impl Dispatch<WlSubsurface, SubsurfaceUserData> for State {
    fn request(
        state: &mut Self,
        client: &Client,
        subsurface: &WlSubsurface,
        request: wl_subsurface::Request,
        data: &SubsurfaceUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        let surface = data.surface();
        if !surface.is_alive() {
            debug!(subsurface = ?subsurface.id(), "request on an inert wl_subsurface ignored");
            if matches!(request, wl_subsurface::Request::Destroy) {
                // Still smithay's to clean up after.
                forward(state, client, subsurface, request, data, dh, data_init);
            }
            return;
        }
        if let wl_subsurface::Request::PlaceAbove { sibling }
        | wl_subsurface::Request::PlaceBelow { sibling } = &request
        {
            if let Some(message) = bad_reference(surface, sibling) {
                subsurface.post_error(wl_subsurface::Error::BadSurface, message);
                return;
            }
        }
        forward(state, client, subsurface, request, data, dh, data_init);
    }

    fn destroyed(
        state: &mut Self,
        client: ClientId,
        subsurface: &WlSubsurface,
        data: &SubsurfaceUserData,
    ) {
        <CompositorState as Dispatch<WlSubsurface, SubsurfaceUserData, State>>::destroyed(
            state, client, subsurface, data,
        );
    }
}

fn forward(
    state: &mut State,
    client: &Client,
    subsurface: &WlSubsurface,
    request: wl_subsurface::Request,
    data: &SubsurfaceUserData,
    dh: &DisplayHandle,
    data_init: &mut DataInit<'_, State>,
) {
    <CompositorState as Dispatch<WlSubsurface, SubsurfaceUserData, State>>::request(
        state, client, subsurface, request, data, dh, data_init,
    );
}

/// Why `sibling` cannot be the reference for reordering `surface`, if it cannot: it is the
/// surface itself, or `surface` is not (any longer) in its parent's list, which smithay would
/// unwrap. Other surfaces that are not a sibling or the parent smithay refuses itself.
fn bad_reference(surface: &WlSurface, sibling: &WlSurface) -> Option<String> {
    if sibling == surface {
        return Some(format!(
            "wl_surface@{} is this sub-surface itself; place it relative to a sibling or the \
             parent",
            sibling.id().protocol_id()
        ));
    }
    let parent = get_parent(surface)?;
    (!get_children(&parent).contains(surface)).then(|| {
        format!(
            "wl_surface@{} is no longer a sub-surface of its parent",
            surface.id().protocol_id()
        )
    })
}

impl Dispatch<WlSurface, SurfaceUserData> for State {
    fn request(
        state: &mut Self,
        client: &Client,
        surface: &WlSurface,
        request: wl_surface::Request,
        data: &SurfaceUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let wl_surface::Request::Damage { width, height, .. }
        | wl_surface::Request::DamageBuffer { width, height, .. } = request
        {
            if width < 0 || height < 0 {
                debug!(surface = ?surface.id(), width, height, "negative damage ignored");
                return;
            }
        }
        <CompositorState as Dispatch<WlSurface, SurfaceUserData, State>>::request(
            state, client, surface, request, data, dh, data_init,
        );
    }

    fn destroyed(state: &mut Self, client: ClientId, surface: &WlSurface, data: &SurfaceUserData) {
        <CompositorState as Dispatch<WlSurface, SurfaceUserData, State>>::destroyed(
            state, client, surface, data,
        );
    }
}

impl Dispatch<WlRegion, RegionUserData> for State {
    fn request(
        state: &mut Self,
        client: &Client,
        region: &WlRegion,
        request: wl_region::Request,
        data: &RegionUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let wl_region::Request::Add { width, height, .. }
        | wl_region::Request::Subtract { width, height, .. } = request
        {
            if width < 0 || height < 0 {
                debug!(region = ?region.id(), width, height, "negative region rectangle ignored");
                return;
            }
        }
        <CompositorState as Dispatch<WlRegion, RegionUserData, State>>::request(
            state, client, region, request, data, dh, data_init,
        );
    }

    fn destroyed(state: &mut Self, client: ClientId, region: &WlRegion, data: &RegionUserData) {
        <CompositorState as Dispatch<WlRegion, RegionUserData, State>>::destroyed(
            state, client, region, data,
        );
    }
}
