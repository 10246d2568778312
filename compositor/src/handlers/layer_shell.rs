//! zwlr_layer_shell_v1 (v4): panels, wallpapers, launchers, notifications, on-screen
//! keyboards (waybar, swaybg, fuzzel, mako).
//!
//! # Where layer surfaces go
//!
//! Each layer surface belongs to one output: the one it asked for, else the focused one. It
//! lives in smithay's per-output [`LayerMap`](smithay::desktop::LayerMap), which places it by
//! its anchors, size and margins and keeps the output's *non-exclusive zone*: the output
//! minus the exclusive zones of panels. That zone is the layout's working area
//! ([`update_working_areas`]), so tiled and maximized windows stay clear of a bar. The maps
//! are arranged again whenever an output changes (`shell::sync_outputs` calls
//! [`arrange_all`]), and an output that goes away sends `closed` to its layer surfaces.
//!
//! A surface anchored to two opposite edges that gives its own size in that direction keeps
//! that size and is centred between the edges (the spec's anchor rule; wlroots does the
//! same, without margins on that axis). smithay 0.7 would stretch it to the full span, so
//! each commit drops such opposite pairs from the committed state that smithay arranges by
//! ([`centre_sized`]); the client's own pending state keeps them.
//!
//! # Stacking (like sway)
//!
//! Front to back: overlay, then (when the output shows a fullscreen window) that window
//! above the top layer, else the top layer above the windows; then bottom, then background.
//! `render.rs` draws that order and `input.rs` looks for the surface under the pointer in
//! the same order ([`layer_surface_under`]). Popups of layer surfaces (xdg_popup with a
//! layer-surface parent, `get_popup`) are drawn with their parent and placed inside its
//! output.
//!
//! # Keyboard
//!
//! `keyboard_interactivity`: `none` never gets keys; `exclusive` on the top or overlay layer
//! takes the keyboard while it is mapped, and the keyboard goes back to the layout's window
//! when it goes ([`exclusive_focus`], applied after each dispatch by
//! `shell::sync_forced_focus`); `on_demand` (and `exclusive` on lower layers) gets the
//! keyboard when clicked.
//!
//! # Defensive limits
//!
//! smithay's arrangement adds and subtracts margins and exclusive zones in `i32`; absurd
//! values from a client could overflow. A pre-commit hook clamps margins, sizes and
//! exclusive zones to [`MAX_EXTENT`] pixels, far beyond any real output.
//!
//! The global is privileged (`security_context.rs`): a layer surface can cover every
//! window, so sandboxed clients do not get it.

use smithay::{
    desktop::{layer_map_for_output, LayerSurface, PopupKind, WindowSurfaceType},
    output::Output,
    reexports::{
        wayland_protocols_wlr::layer_shell::v1::server::zwlr_layer_surface_v1::{
            self, ZwlrLayerSurfaceV1,
        },
        wayland_server::{
            backend::ClientId,
            protocol::{wl_output::WlOutput, wl_surface::WlSurface},
            Client, DataInit, Dispatch, DisplayHandle, Resource,
        },
    },
    utils::{IsAlive, Logical, Point, Rectangle},
    wayland::{
        compositor::{add_pre_commit_hook, with_states},
        shell::{
            wlr_layer::{
                Anchor, ExclusiveZone, KeyboardInteractivity, Layer,
                LayerSurface as WlrLayerSurface, LayerSurfaceCachedState, LayerSurfaceData,
                WlrLayerShellHandler, WlrLayerShellState, WlrLayerSurfaceUserData,
            },
            xdg::PopupSurface,
        },
    },
};
use tracing::{debug, warn};

use crate::{
    frame_clock::queue_redraw,
    layout::Rect as LRect,
    state::{Core, State},
};

/// The largest margin, size or exclusive zone taken from a client, in logical pixels.
pub const MAX_EXTENT: i32 = 1 << 16;

/// The layer-shell global.
pub fn new_state(dh: &smithay::reexports::wayland_server::DisplayHandle) -> WlrLayerShellState {
    WlrLayerShellState::new_with_filter::<State, _>(
        dh,
        crate::handlers::security_context::may_use_privileged,
    )
}

impl WlrLayerShellHandler for State {
    fn shell_state(&mut self) -> &mut WlrLayerShellState {
        &mut self.core.protocols.layer_shell
    }

    fn new_layer_surface(
        &mut self,
        surface: WlrLayerSurface,
        output: Option<WlOutput>,
        layer: Layer,
        namespace: String,
    ) {
        let output = output
            .as_ref()
            .and_then(Output::from_resource)
            .or_else(|| focused_output(&self.core));
        let Some(output) = output else {
            debug!(namespace, "a layer surface without any output: closed");
            surface.send_close();
            return;
        };
        debug!(namespace, ?layer, output = %output.name(), "new layer surface");
        add_pre_commit_hook::<State, _>(surface.wl_surface(), |_, _, surface| {
            clamp_pending(surface)
        });
        let layer = LayerSurface::new(surface, namespace);
        let mapped = layer_map_for_output(&output).map_layer(&layer);
        if let Err(err) = mapped {
            warn!(?err, "cannot map a layer surface");
        }
    }

    fn new_popup(&mut self, parent: WlrLayerSurface, popup: PopupSurface) {
        let _ = parent;
        // xdg_shell's new_popup already tracks it (as waiting for a parent); the popup
        // manager puts it under this layer surface at its first commit.
        self.unconstrain_layer_popup(&popup);
    }

    fn layer_destroyed(&mut self, surface: WlrLayerSurface) {
        let outputs: Vec<Output> = self.core.space.outputs().cloned().collect();
        for output in outputs {
            let mut map = layer_map_for_output(&output);
            if map.layers().any(|l| l.layer_surface() == &surface) {
                // `cleanup` drops the layers whose role object is gone without walking their
                // surface trees (`unmap_layer` would, and a surface whose lock a caught
                // panic poisoned would then poison the whole map).
                map.cleanup();
                drop(map);
                queue_redraw(&mut self.core, &output);
            }
        }
        if update_working_areas(&mut self.core) {
            crate::shell::apply_layout(&mut self.core);
        }
        crate::shell::queue_pointer_refresh(&mut self.core);
        crate::shell::focus_away_from(self, surface.wl_surface());
    }
}

// zwlr_layer_shell_v1 and its global go to smithay as they are; zwlr_layer_surface_v1 goes
// through lockstep's own dispatch first (below).
smithay::reexports::wayland_server::delegate_dispatch!(State: [
    smithay::reexports::wayland_protocols_wlr::layer_shell::v1::server::zwlr_layer_shell_v1::ZwlrLayerShellV1: ()
] => WlrLayerShellState);
smithay::reexports::wayland_server::delegate_global_dispatch!(State: [
    smithay::reexports::wayland_protocols_wlr::layer_shell::v1::server::zwlr_layer_shell_v1::ZwlrLayerShellV1: smithay::wayland::shell::wlr_layer::WlrLayerShellGlobalData
] => WlrLayerShellState);

/// zwlr_layer_surface_v1, checked before smithay sees it: smithay 0.7 turns `set_size`'s
/// unsigned width and height into a signed `Size` and panics on one above `i32::MAX` (in
/// debug builds; release builds keep a negative size), which poisons the surface's state
/// lock for good. Such a size is `invalid_size` here.
impl Dispatch<ZwlrLayerSurfaceV1, WlrLayerSurfaceUserData> for State {
    fn request(
        state: &mut Self,
        client: &Client,
        resource: &ZwlrLayerSurfaceV1,
        request: zwlr_layer_surface_v1::Request,
        data: &WlrLayerSurfaceUserData,
        dhandle: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let zwlr_layer_surface_v1::Request::SetSize { width, height } = &request {
            let limit = MAX_EXTENT as u32;
            if *width > limit || *height > limit {
                resource.post_error(
                    zwlr_layer_surface_v1::Error::InvalidSize,
                    format!(
                        "set_size({width}, {height}): lockstep takes sizes up to {limit} pixels"
                    ),
                );
                return;
            }
        }
        <WlrLayerShellState as Dispatch<ZwlrLayerSurfaceV1, WlrLayerSurfaceUserData, Self>>::request(
            state, client, resource, request, data, dhandle, data_init,
        );
    }

    fn destroyed(
        state: &mut Self,
        client: ClientId,
        resource: &ZwlrLayerSurfaceV1,
        data: &WlrLayerSurfaceUserData,
    ) {
        <WlrLayerShellState as Dispatch<ZwlrLayerSurfaceV1, WlrLayerSurfaceUserData, Self>>::destroyed(
            state, client, resource, data,
        );
    }
}

/// Clamps what a client asked for in its pending layer state to sane extents.
fn clamp_pending(surface: &WlSurface) {
    with_states(surface, |states| {
        let mut cached = states.cached_state.get::<LayerSurfaceCachedState>();
        let pending = cached.pending();
        let clamp = |v: i32| v.clamp(-MAX_EXTENT, MAX_EXTENT);
        pending.margin.top = clamp(pending.margin.top);
        pending.margin.bottom = clamp(pending.margin.bottom);
        pending.margin.left = clamp(pending.margin.left);
        pending.margin.right = clamp(pending.margin.right);
        pending.size.w = pending.size.w.clamp(0, MAX_EXTENT);
        pending.size.h = pending.size.h.clamp(0, MAX_EXTENT);
        if let ExclusiveZone::Exclusive(amount) = &mut pending.exclusive_zone {
            *amount = (*amount).min(MAX_EXTENT as u32);
        }
        // The spec: a positive zone means something only for a surface anchored to one edge,
        // or to one edge and both perpendicular ones; otherwise it is the same as zero.
        // (smithay's arrangement would shrink the output for a corner or a centred surface.)
        let edges = [Anchor::TOP, Anchor::BOTTOM, Anchor::LEFT, Anchor::RIGHT]
            .into_iter()
            .filter(|edge| pending.anchor.contains(*edge))
            .count();
        if matches!(pending.exclusive_zone, ExclusiveZone::Exclusive(_)) && edges != 1 && edges != 3
        {
            pending.exclusive_zone = ExclusiveZone::Neutral;
        }
    });
}

/// Drops from `surface`'s committed layer state the pair of opposite anchors in each
/// direction where the client gave a size, so that smithay's arrangement centres the surface
/// at that size between the edges instead of stretching it (see the module docs). Runs after
/// the commit (the committed state is replaced by the client's at every commit) and before
/// arranging; the exclusive zone was already judged by the client's own anchors
/// ([`clamp_pending`]), and an edge-pair removal leaves the edge it is reserved on.
fn centre_sized(surface: &WlSurface) {
    with_states(surface, |states| {
        let mut cached = states.cached_state.get::<LayerSurfaceCachedState>();
        let current = cached.current();
        let horizontal = Anchor::LEFT | Anchor::RIGHT;
        let vertical = Anchor::TOP | Anchor::BOTTOM;
        if current.size.w > 0 && current.anchor.contains(horizontal) {
            current.anchor.remove(horizontal);
        }
        if current.size.h > 0 && current.anchor.contains(vertical) {
            current.anchor.remove(vertical);
        }
    });
}

/// Puts the layer surfaces with an exclusive zone first in `map`, keeping their order.
///
/// smithay arranges a map in its order, each surface inside the zone the ones before it left;
/// a panel added after a centred launcher would not push the launcher aside. The surfaces
/// that come too early are taken out and put back at the end (they get `leave`/`enter` for
/// the output, which is rare: only when a panel appears after them).
fn exclusive_first(map: &mut smithay::desktop::LayerMap) {
    let exclusive =
        |l: &LayerSurface| matches!(l.cached_state().exclusive_zone, ExclusiveZone::Exclusive(_));
    let layers: Vec<LayerSurface> = map.layers().cloned().collect();
    let Some(last) = layers.iter().rposition(exclusive) else {
        return;
    };
    let movers: Vec<LayerSurface> = layers[..last]
        .iter()
        .filter(|l| !exclusive(l))
        .cloned()
        .collect();
    for layer in &movers {
        map.unmap_layer(layer);
    }
    for layer in &movers {
        if let Err(err) = map.map_layer(layer) {
            warn!(?err, "cannot map a layer surface again");
        }
    }
}

/// Where a test harness put a layer surface's origin (WLCS `position_window_absolute`),
/// global coordinates; layer surface user data. Real layer surfaces go where their anchors
/// say.
struct PlacedAt(std::cell::Cell<Option<Point<i32, Logical>>>);

/// Puts the layer surface `surface` with its origin at `location` (global), overriding its
/// anchors: WLCS moves surfaces of every kind to test stacking. Returns whether `surface` is
/// a layer surface.
pub fn place_at(core: &mut Core, surface: &WlSurface, location: Point<i32, Logical>) -> bool {
    let Some((output, layer)) = layer_for_surface(core, surface) else {
        return false;
    };
    layer
        .user_data()
        .insert_if_missing(|| PlacedAt(std::cell::Cell::new(None)));
    if let Some(placed) = layer.user_data().get::<PlacedAt>() {
        placed.0.set(Some(location));
    }
    queue_redraw(core, &output);
    true
}

fn placed_at(layer: &LayerSurface) -> Option<Point<i32, Logical>> {
    layer.user_data().get::<PlacedAt>().and_then(|p| p.0.get())
}

/// Whether the layer surface had a buffer at its last commit (layer surface user data).
struct WasMapped(std::cell::Cell<bool>);

/// Notes whether `layer` has a buffer now; true when it just got its first one.
fn just_mapped(layer: &LayerSurface) -> bool {
    layer
        .user_data()
        .insert_if_missing(|| WasMapped(std::cell::Cell::new(false)));
    let mapped = has_buffer(layer);
    layer
        .user_data()
        .get::<WasMapped>()
        .is_some_and(|was| !was.0.replace(mapped) && mapped)
}

/// The output with keyboard focus (the layout's), else the first.
fn focused_output(core: &Core) -> Option<Output> {
    core.layout
        .active_output()
        .and_then(|o| core.output_by_name(&o.name))
        .or_else(|| core.space.outputs().next().cloned())
}

/// The output whose layer map holds the layer surface `surface`, and that layer.
pub fn layer_for_surface(core: &Core, surface: &WlSurface) -> Option<(Output, LayerSurface)> {
    core.space.outputs().find_map(|output| {
        let map = layer_map_for_output(output);
        map.layer_for_surface(surface, WindowSurfaceType::TOPLEVEL)
            .cloned()
            .map(|layer| (output.clone(), layer))
    })
}

/// Handles a commit of a root surface that may be a layer surface: sends the initial
/// configure, re-arranges its output (new size, anchors, margins or exclusive zone) and
/// updates the working areas. Returns whether `surface` is a layer surface.
pub fn on_commit(core: &mut Core, surface: &WlSurface) -> bool {
    let Some((output, layer)) = layer_for_surface(core, surface) else {
        return false;
    };
    let initial_configure_sent = with_states(surface, |states| {
        states
            .data_map
            .get::<LayerSurfaceData>()
            .and_then(|data| data.lock().ok().map(|d| d.initial_configure_sent))
            .unwrap_or(true)
    });
    centre_sized(surface);
    {
        let mut map = layer_map_for_output(&output);
        exclusive_first(&mut map);
        map.arrange();
    }
    // Like sway: an on-demand surface on the top or overlay layer gets the keyboard when it
    // maps (a click elsewhere takes it away again).
    let cached = layer.cached_state();
    if just_mapped(&layer)
        && cached.keyboard_interactivity == KeyboardInteractivity::OnDemand
        && matches!(cached.layer, Layer::Top | Layer::Overlay)
    {
        core.layer_focus_request = Some(surface.clone());
    }
    if !initial_configure_sent {
        // The arrangement set the size it gets; the spec wants this configure now.
        layer.layer_surface().send_configure();
    }
    if update_working_areas(core) {
        crate::shell::apply_layout(core);
    }
    crate::shell::queue_pointer_refresh(core);
    queue_redraw(core, &output);
    true
}

/// Arranges every output's layer map again (an output changed mode, scale or transform)
/// and updates the working areas. Does not apply the layout: the caller does.
pub fn arrange_all(core: &mut Core) {
    for output in core.space.outputs() {
        layer_map_for_output(output).arrange();
    }
    update_working_areas(core);
}

/// Sets each output's working area in the layout to its layer map's non-exclusive zone.
/// Returns whether any changed.
pub fn update_working_areas(core: &mut Core) -> bool {
    let mut changed = false;
    let outputs: Vec<Output> = core.space.outputs().cloned().collect();
    for output in outputs {
        let Some(geometry) = core.space.output_geometry(&output) else {
            continue;
        };
        let zone = layer_map_for_output(&output).non_exclusive_zone();
        let working = LRect::new(
            geometry.loc.x.saturating_add(zone.loc.x),
            geometry.loc.y.saturating_add(zone.loc.y),
            zone.size.w,
            zone.size.h,
        );
        let name = output.name();
        let before = working_area(core, &name);
        core.layout.set_working_area(&name, working);
        changed |= before != working_area(core, &name);
    }
    changed
}

fn working_area(core: &Core, name: &str) -> Option<LRect> {
    core.layout
        .outputs()
        .iter()
        .find(|o| o.name == name)
        .map(|o| o.working)
}

/// Forgets layer surfaces whose client is gone (after each dispatch; a client that was
/// disconnected for a protocol error or a caught panic may not have been through
/// [`WlrLayerShellHandler::layer_destroyed`]).
pub fn cleanup(core: &mut Core) {
    let outputs: Vec<Output> = core.space.outputs().cloned().collect();
    let mut changed = false;
    for output in outputs {
        let removed = {
            let mut map = layer_map_for_output(&output);
            let before = map.len();
            map.cleanup();
            map.len() != before
        };
        if removed {
            queue_redraw(core, &output);
            changed = true;
        }
    }
    if changed && update_working_areas(core) {
        crate::shell::apply_layout(core);
    }
}

/// Sends `closed` to the layer surfaces of `output` (it is going away) and forgets them.
pub fn close_layers_of(output: &Output) {
    let mut map = layer_map_for_output(output);
    let layers: Vec<LayerSurface> = map.layers().cloned().collect();
    for layer in layers {
        layer.layer_surface().send_close();
        map.unmap_layer(&layer);
    }
}

/// Whether the layer surface has a buffer (is mapped).
fn has_buffer(layer: &LayerSurface) -> bool {
    smithay::backend::renderer::utils::with_renderer_surface_state(layer.wl_surface(), |s| {
        s.buffer().is_some()
    })
    .unwrap_or(false)
}

/// The layer surfaces of `map` on `layer` whose client is still there, bottom first.
///
/// Dead ones are skipped before their state is read: a client disconnected for a caught
/// panic may have left a surface whose lock is poisoned until the next [`cleanup`].
fn live_layers_on(
    map: &smithay::desktop::LayerMap,
    layer: Layer,
) -> impl DoubleEndedIterator<Item = &LayerSurface> {
    map.layers()
        .filter(move |l| l.alive() && l.layer() == layer)
}

/// The layer surface that takes the keyboard: the topmost mapped one on the overlay, then
/// the top layer with `exclusive` interactivity, on the focused output first.
pub fn exclusive_focus(core: &Core) -> Option<WlSurface> {
    let focused = focused_output(core);
    let others = core
        .space
        .outputs()
        .filter(|o| Some(*o) != focused.as_ref());
    for output in focused.iter().chain(others) {
        let map = layer_map_for_output(output);
        for layer in [Layer::Overlay, Layer::Top] {
            let found = live_layers_on(&map, layer).rev().find(|l| {
                l.cached_state().keyboard_interactivity == KeyboardInteractivity::Exclusive
                    && has_buffer(l)
            });
            if let Some(found) = found {
                return Some(found.wl_surface().clone());
            }
        }
    }
    None
}

/// The layer surfaces of `output` on `layer` with their place in global coordinates,
/// topmost first.
pub fn layers_on(
    core: &Core,
    output: &Output,
    layer: Layer,
) -> Vec<(LayerSurface, Rectangle<i32, Logical>)> {
    let Some(output_geo) = core.space.output_geometry(output) else {
        return Vec::new();
    };
    let map = layer_map_for_output(output);
    live_layers_on(&map, layer)
        .rev()
        .filter_map(|l| {
            let mut geo = map.layer_geometry(l)?;
            match placed_at(l) {
                Some(origin) => geo.loc = origin + l.bbox().loc,
                None => geo.loc += output_geo.loc,
            }
            Some((l.clone(), geo))
        })
        .collect()
}

/// Whether `output` shows a fullscreen window now (the top layer then goes below it).
pub fn shows_fullscreen(core: &Core, output: &Output) -> bool {
    core.layout.shows_fullscreen(&output.name())
}

/// The layer surface (or popup or subsurface of one) under `location` on `layers` of the
/// output there, topmost first, with the surface's origin in global coordinates.
pub fn layer_surface_under(
    core: &Core,
    location: Point<f64, Logical>,
    layers: &[Layer],
) -> Option<(WlSurface, Point<f64, Logical>, LayerSurface)> {
    let output = core.space.output_under(location).next()?;
    for layer in layers {
        for (surface, geo) in layers_on(core, output, *layer) {
            // The surface origin: the geometry's corner minus the tree's own offset.
            let origin = geo.loc - surface.bbox().loc;
            let relative = location - origin.to_f64();
            if let Some((under, at)) = surface.surface_under(relative, WindowSurfaceType::ALL) {
                return Some((under, (at + origin).to_f64(), surface));
            }
        }
    }
    None
}

impl State {
    /// Places a popup of a layer surface so that it stays on that surface's output.
    pub fn unconstrain_layer_popup(&self, popup: &PopupSurface) {
        let kind = PopupKind::Xdg(popup.clone());
        let Ok(root) = smithay::desktop::find_popup_root_surface(&kind) else {
            return;
        };
        let Some((output, layer)) = layer_for_surface(&self.core, &root) else {
            return;
        };
        let Some(layer_geo) = layer_map_for_output(&output).layer_geometry(&layer) else {
            return;
        };
        let Some(output_geo) = self.core.space.output_geometry(&output) else {
            return;
        };
        // Positioner coordinates are relative to the parent surface's origin.
        let origin = output_geo.loc + layer_geo.loc - layer.bbox().loc;
        let mut target = output_geo;
        target.loc -= origin;
        target.loc -= smithay::desktop::get_popup_toplevel_coords(&kind);
        popup.with_pending_state(|state| {
            state.geometry = state.positioner.get_unconstrained_geometry(target);
        });
    }
}

/// A layer surface as IPC lists it.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    /// The client's namespace (`waybar`, `wallpaper`, `launcher`).
    pub namespace: String,
    /// `background`, `bottom`, `top` or `overlay`.
    pub layer: &'static str,
    /// Where it is, global logical coordinates.
    pub geometry: Rectangle<i32, Logical>,
    /// Its exclusive zone (0 when none).
    pub exclusive_zone: i32,
    /// `none`, `exclusive` or `on_demand`.
    pub keyboard: &'static str,
}

/// The layer surfaces of `output`, bottom layer first.
pub fn layer_infos(core: &Core, output: &Output) -> Vec<LayerInfo> {
    let mut infos = Vec::new();
    for layer in [Layer::Background, Layer::Bottom, Layer::Top, Layer::Overlay] {
        for (surface, geometry) in layers_on(core, output, layer).into_iter().rev() {
            let cached = surface.cached_state();
            infos.push(LayerInfo {
                namespace: surface.namespace().to_owned(),
                layer: match layer {
                    Layer::Background => "background",
                    Layer::Bottom => "bottom",
                    Layer::Top => "top",
                    Layer::Overlay => "overlay",
                },
                geometry,
                exclusive_zone: match cached.exclusive_zone {
                    ExclusiveZone::Exclusive(n) => i32::try_from(n).unwrap_or(i32::MAX),
                    ExclusiveZone::Neutral => 0,
                    ExclusiveZone::DontCare => -1,
                },
                keyboard: match cached.keyboard_interactivity {
                    KeyboardInteractivity::None => "none",
                    KeyboardInteractivity::Exclusive => "exclusive",
                    KeyboardInteractivity::OnDemand => "on_demand",
                },
            });
        }
    }
    infos
}
