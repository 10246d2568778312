//! wl_compositor and wl_subcompositor: surface commits.
//!
//! smithay applies double-buffered state (including synchronized subsurfaces' cached state,
//! which it applies with the parent's commit). Here lockstep reacts to a commit: import
//! buffers, send the initial xdg configure, map new windows, and queue a redraw on the outputs
//! the surface is on.

use smithay::{
    backend::renderer::utils::on_commit_buffer_handler,
    desktop::PopupKind,
    input::pointer::CursorImageStatus,
    reexports::wayland_server::{
        delegate_dispatch, delegate_global_dispatch,
        protocol::{
            wl_buffer, wl_callback::WlCallback, wl_compositor::WlCompositor,
            wl_subcompositor::WlSubcompositor, wl_surface::WlSurface,
        },
        Client, Resource,
    },
    wayland::{
        buffer::BufferHandler,
        compositor::{
            get_parent, is_sync_subsurface, with_states, CompositorClientState, CompositorHandler,
            CompositorState, SurfaceAttributes,
        },
        shell::xdg::{XdgPopupSurfaceData, XdgToplevelSurfaceData},
    },
};

use crate::{
    frame_clock::{queue_redraw, queue_redraw_all},
    state::{ClientState, State},
};

impl CompositorHandler for State {
    fn compositor_state(&mut self) -> &mut CompositorState {
        &mut self.core.compositor_state
    }

    fn client_compositor_state<'a>(&self, client: &'a Client) -> &'a CompositorClientState {
        if let Some(data) = client.get_data::<ClientState>() {
            return &data.compositor_state;
        }
        // Xwayland's connection is made by smithay with data of its own.
        match client.get_data::<smithay::xwayland::XWaylandClientData>() {
            Some(data) => &data.compositor_state,
            // Every other client is inserted with ClientState.
            None => fallback_client_state(),
        }
    }

    fn new_surface(&mut self, surface: &WlSurface) {
        self.count_surface(surface);
        smithay::wayland::compositor::add_pre_commit_hook::<Self, _>(
            surface,
            crate::handlers::drm_syncobj::hold_tree_committed_children,
        );
    }

    fn commit(&mut self, surface: &WlSurface) {
        self.apply_commit(surface);
        // After the whole commit is handled, so the logged acquire→apply latency includes it.
        self.core.acquire_waits.note_applied();
    }

    fn destroyed(&mut self, surface: &WlSurface) {
        self.core.memory.surface_destroyed(&surface.id());
        // Touch points on a destroyed surface (a subsurface, too) are lifted for the client.
        self.lift_touch_points_on(surface);
    }
}

impl State {
    /// What lockstep does with a commit smithay has applied.
    fn apply_commit(&mut self, surface: &WlSurface) {
        on_commit_buffer_handler::<Self>(surface);
        self.core.sync_validation.after_apply(surface);

        if !is_sync_subsurface(surface) {
            let mut root = surface.clone();
            while let Some(parent) = get_parent(&root) {
                root = parent;
            }
            if let Some((_, window)) = crate::shell::window_for_surface(&self.core, &root) {
                window.on_commit();
            }
            crate::shell::on_root_commit(&mut self.core, &root);
            crate::handlers::layer_shell::on_commit(&mut self.core, &root);
        }

        self.core.popups.commit(surface);
        ensure_initial_configure(self, surface);

        if let CursorImageStatus::Surface(cursor) = &self.core.cursor_status {
            if cursor == surface {
                queue_redraw_all(&mut self.core);
                return;
            }
        }
        self.queue_redraw_for_surface(surface);
    }
}

fn fallback_client_state() -> &'static CompositorClientState {
    static STATE: std::sync::OnceLock<CompositorClientState> = std::sync::OnceLock::new();
    STATE.get_or_init(CompositorClientState::default)
}

impl State {
    /// Queues a redraw on every output that shows `surface` (or its root window).
    pub fn queue_redraw_for_surface(&mut self, surface: &WlSurface) {
        let mut root = surface.clone();
        while let Some(parent) = get_parent(&root) {
            root = parent;
        }
        // Popups: redraw where their toplevel is.
        if let Some(popup) = self.core.popups.find_popup(&root) {
            if let Ok(toplevel) = smithay::desktop::find_popup_root_surface(&popup) {
                root = toplevel;
            }
        }
        let window = self
            .core
            .space
            .elements()
            .find(|w| crate::xwayland::wm::window_surface(w).as_ref() == Some(&root))
            .cloned();
        if let Some(window) = window {
            let outputs = self.core.space.outputs_for_element(&window);
            for output in outputs {
                queue_redraw(&mut self.core, &output);
            }
        } else if let Some((output, _)) =
            crate::handlers::layer_shell::layer_for_surface(&self.core, &root)
        {
            queue_redraw(&mut self.core, &output);
        } else if self.core.is_locked() {
            // A lock surface (only they are drawn while locked).
            queue_redraw_all(&mut self.core);
        }
    }
}

/// Sends the first configure of xdg toplevels and popups on their initial commit.
fn ensure_initial_configure(state: &mut State, surface: &WlSurface) {
    if let Some(toplevel) = state
        .core
        .windows
        .values()
        .find_map(|w| w.toplevel().filter(|t| t.wl_surface() == surface).cloned())
        .or_else(|| {
            state
                .core
                .unmapped
                .iter()
                .find_map(|w| w.toplevel().filter(|t| t.wl_surface() == surface).cloned())
        })
    {
        let sent = with_states(surface, |states| {
            states
                .data_map
                .get::<XdgToplevelSurfaceData>()
                .and_then(|d| d.lock().ok().map(|d| d.initial_configure_sent))
                .unwrap_or(true)
        });
        if !sent {
            crate::shell::prepare_initial_configure(&state.core, &toplevel);
            toplevel.send_configure();
        }
        return;
    }
    if let Some(PopupKind::Xdg(popup)) = state.core.popups.find_popup(surface) {
        let sent = with_states(surface, |states| {
            states
                .data_map
                .get::<XdgPopupSurfaceData>()
                .and_then(|d| d.lock().ok().map(|d| d.initial_configure_sent))
                .unwrap_or(true)
        });
        if !sent {
            if let Err(err) = popup.send_configure() {
                tracing::warn!(?err, "initial popup configure failed");
            }
        }
    }
}

/// The buffer offset a commit carries (wl_surface.offset / attach x,y), taken once.
pub fn take_buffer_delta(
    surface: &WlSurface,
) -> Option<smithay::utils::Point<i32, smithay::utils::Logical>> {
    with_states(surface, |states| {
        states
            .cached_state
            .get::<SurfaceAttributes>()
            .current()
            .buffer_delta
            .take()
    })
}

impl BufferHandler for State {
    fn buffer_destroyed(&mut self, buffer: &wl_buffer::WlBuffer) {
        // smithay's buffer data holds the buffer's memory until the renderer lets go of it.
        let data = buffer.object_data().map(crate::client_memory::Held::of);
        self.core.memory.buffer_destroyed(&buffer.id(), data);
    }
}

impl State {
    /// Counts a new surface against its client's `surfaces_per_client`; the one that goes
    /// over disconnects the client with `wl_display.error.no_memory` (`wl_compositor` has no
    /// error of its own).
    fn count_surface(&mut self, surface: &WlSurface) {
        let Some(client) = surface.client() else {
            return;
        };
        let dh = self.core.display_handle.clone();
        let max = u64::from(self.core.config.limits.surfaces_per_client);
        let counted = self
            .core
            .memory
            .add_surface(&dh, &client.id(), surface.id(), max);
        if let Err(over) = counted {
            crate::client_memory::refuse(
                &mut self.core,
                &dh.backend_handle(),
                &client.id(),
                &over,
                crate::client_memory::Refusal::NoMemory,
                "wl_compositor.create_surface",
            );
        }
    }
}

// What `delegate_compositor!` wires, except wl_surface, wl_region and wl_subsurface:
// `surface_requests.rs` checks some of their requests before smithay sees them.
delegate_global_dispatch!(State: [WlCompositor: ()] => CompositorState);
delegate_global_dispatch!(State: [WlSubcompositor: ()] => CompositorState);
delegate_dispatch!(State: [WlCompositor: ()] => CompositorState);
delegate_dispatch!(State: [WlCallback: ()] => CompositorState);
delegate_dispatch!(State: [WlSubcompositor: ()] => CompositorState);
