//! Toplevel lists for taskbars and docks: ext_foreign_toplevel_list_v1 (smithay's module;
//! read-only: title, app id) and zwlr_foreign_toplevel_manager_v1 (lockstep-protocols'
//! `wlr_foreign_toplevel`; also state, outputs, and requests).
//!
//! Both are fed from one snapshot of the windows the layout knows (every workspace), taken
//! after a loop iteration in which something they show changed (checked in place first,
//! without copying titles: [`State::update_foreign_toplevels`]); the protocol code sends
//! only what changed. A window's states: `activated` while it has keyboard focus;
//! `maximized`, `fullscreen` and `minimized` from the layout (a minimized window keeps its
//! maximized or fullscreen state for when it comes back, and taskbars see both).
//!
//! Requests go through the action executor ([`crate::action::run_on_window`]), so a
//! taskbar does exactly what a key binding does: `activate` focuses the window (showing its
//! workspace, bringing it back when minimized), `close` asks it to close,
//! `set/unset_maximized` and `set/unset_fullscreen` change it in the layout (fullscreen stays
//! on the window's own output; turning either on brings a minimized window back),
//! `set_minimized` hides it and `unset_minimized` brings it back focused.
//!
//! Both globals are privileged (they list every window's title, and the wlr one controls
//! them): see `security_context.rs`.

use std::collections::BTreeMap;

use lockstep_protocols::{
    delegate_wlr_foreign_toplevel,
    wlr_foreign_toplevel::{
        ForeignToplevelHandler, ForeignToplevelState, ToplevelId, ToplevelInfo, ToplevelRequest,
    },
};
use smithay::{
    delegate_foreign_toplevel_list,
    desktop::Window,
    reexports::wayland_server::protocol::wl_surface::WlSurface,
    wayland::{
        foreign_toplevel_list::{
            ForeignToplevelHandle, ForeignToplevelListHandler, ForeignToplevelListState,
        },
        seat::WaylandFocus,
        shell::xdg::ToplevelSurface,
    },
};
use tracing::debug;

use crate::{
    action::{run_on_window, WindowAction},
    layout::{PlacementKind, WindowId},
    state::State,
};

/// The two toplevel-list globals and the ext list's handles.
pub struct ForeignToplevels {
    /// ext_foreign_toplevel_list_v1.
    pub list: ForeignToplevelListState,
    /// zwlr_foreign_toplevel_manager_v1.
    pub wlr: ForeignToplevelState,
    /// The ext list's handle of each window, with the title and app id it was sent.
    handles: BTreeMap<WindowId, (ForeignToplevelHandle, String, String)>,
    /// The snapshot both lists were last brought up to (see
    /// [`State::update_foreign_toplevels`]).
    last: Vec<(ToplevelId, ToplevelInfo)>,
}

impl ForeignToplevels {
    /// Creates both globals on `dh`, for clients `filter` accepts.
    pub fn new(
        dh: &smithay::reexports::wayland_server::DisplayHandle,
        filter: fn(&smithay::reexports::wayland_server::Client) -> bool,
    ) -> Self {
        Self {
            list: ForeignToplevelListState::new_with_filter::<State>(dh, filter),
            wlr: ForeignToplevelState::new::<State, _>(dh, filter),
            handles: BTreeMap::new(),
            last: Vec::new(),
        }
    }
}

impl State {
    /// Every window the layout knows, as toplevel lists describe it.
    fn toplevel_snapshot(&self) -> Vec<(ToplevelId, ToplevelInfo)> {
        let focus = self.keyboard_focus();
        self.listed_windows()
            .map(|(id, window, toplevel)| {
                let (title, app_id) = crate::ipc::title_and_app_id(toplevel.wl_surface());
                let mut info = self.toplevel_info(id, window, toplevel, focus.as_ref());
                info.title = title.unwrap_or_default();
                info.app_id = app_id.unwrap_or_default();
                (ToplevelId(id.0), info)
            })
            .collect()
    }

    /// The windows both lists show, in list order: those the layout knows that are xdg
    /// toplevels.
    fn listed_windows(&self) -> impl Iterator<Item = (WindowId, &Window, &ToplevelSurface)> + '_ {
        let core = &self.core;
        core.windows
            .iter()
            .filter(|(id, _)| core.layout.contains(**id))
            .filter_map(|(id, window)| Some((*id, window, window.toplevel()?)))
    }

    /// The surface with keyboard focus.
    fn keyboard_focus(&self) -> Option<WlSurface> {
        self.core
            .seat
            .get_keyboard()
            .and_then(|k| k.current_focus())
            .and_then(|f| f.wl_surface().map(|s| s.into_owned()))
    }

    /// What the lists show of window `id` apart from its title and app id (left empty, which
    /// allocates nothing): its states, outputs and parent. `focus`: the keyboard's surface.
    fn toplevel_info(
        &self,
        id: WindowId,
        window: &Window,
        toplevel: &ToplevelSurface,
        focus: Option<&WlSurface>,
    ) -> ToplevelInfo {
        let core = &self.core;
        let kind = core.layout.kind_of(id);
        ToplevelInfo {
            title: String::new(),
            app_id: String::new(),
            maximized: kind == Some(PlacementKind::Maximized),
            minimized: core.layout.is_minimized(id),
            activated: focus == Some(toplevel.wl_surface()),
            fullscreen: kind == Some(PlacementKind::Fullscreen),
            outputs: core.space.outputs_for_element(window),
            parent: toplevel
                .parent()
                .as_ref()
                .and_then(|p| self.toplevel_id_of(p)),
        }
    }

    /// Sends window changes to toplevel-list clients (nothing when none is bound).
    ///
    /// Runs after every loop iteration, which with animating clients is several times per
    /// frame: the windows are first compared in place with the last snapshot (titles and app
    /// ids read under their lock, not copied) and the snapshot is taken and diffed only when
    /// something differs.
    pub fn update_foreign_toplevels(&mut self) {
        if self.toplevels_unchanged() {
            return;
        }
        let snapshot = self.toplevel_snapshot();
        self.update_ext_list(&snapshot);
        // The ext list keeps a handle per window whether or not a client is bound (smithay
        // sends the existing ones to a client that binds later); the wlr manager brings
        // itself up to date when a client binds (`current_toplevels`).
        let ft = &mut self.core.protocols.foreign_toplevels;
        if ft.wlr.has_clients() {
            ft.wlr.update::<State>(snapshot.clone());
        }
        ft.last = snapshot;
    }

    /// Whether [`Self::toplevel_snapshot`] would return exactly the last snapshot. Every
    /// field is derived as the snapshot derives it ([`Self::toplevel_info`]); titles and app
    /// ids are compared under their lock instead of copied.
    fn toplevels_unchanged(&self) -> bool {
        let mut last = self.core.protocols.foreign_toplevels.last.iter();
        let focus = self.keyboard_focus();
        for (id, window, toplevel) in self.listed_windows() {
            let Some((last_id, last_info)) = last.next() else {
                return false;
            };
            let now = self.toplevel_info(id, window, toplevel, focus.as_ref());
            // Destructured in full: a field added to ToplevelInfo must be compared here.
            let ToplevelInfo {
                title,
                app_id,
                maximized,
                minimized,
                activated,
                fullscreen,
                outputs,
                parent,
            } = last_info;
            let same = last_id.0 == id.0
                && *maximized == now.maximized
                && *minimized == now.minimized
                && *activated == now.activated
                && *fullscreen == now.fullscreen
                && *outputs == now.outputs
                && *parent == now.parent
                && crate::ipc::title_and_app_id_are(toplevel.wl_surface(), title, app_id);
            if !same {
                return false;
            }
        }
        last.next().is_none()
    }

    /// The toplevel id of the window whose root surface is `surface`.
    fn toplevel_id_of(&self, surface: &WlSurface) -> Option<ToplevelId> {
        self.core
            .windows
            .iter()
            .find(|(_, w)| w.toplevel().is_some_and(|t| t.wl_surface() == surface))
            .map(|(id, _)| ToplevelId(id.0))
    }

    fn update_ext_list(&mut self, snapshot: &[(ToplevelId, ToplevelInfo)]) {
        let ft = &mut self.core.protocols.foreign_toplevels;
        let gone: Vec<WindowId> = ft
            .handles
            .keys()
            .filter(|id| !snapshot.iter().any(|(t, _)| t.0 == id.0))
            .copied()
            .collect();
        for id in gone {
            if let Some((handle, _, _)) = ft.handles.remove(&id) {
                ft.list.remove_toplevel(&handle);
            }
        }
        for (id, info) in snapshot {
            let id = WindowId(id.0);
            match ft.handles.get_mut(&id) {
                Some((handle, title, app_id)) => {
                    let mut changed = false;
                    if *title != info.title {
                        handle.send_title(&info.title);
                        title.clone_from(&info.title);
                        changed = true;
                    }
                    if *app_id != info.app_id {
                        handle.send_app_id(&info.app_id);
                        app_id.clone_from(&info.app_id);
                        changed = true;
                    }
                    if changed {
                        handle.send_done();
                    }
                }
                None => {
                    let handle = ft
                        .list
                        .new_toplevel::<State>(info.title.clone(), info.app_id.clone());
                    ft.handles
                        .insert(id, (handle, info.title.clone(), info.app_id.clone()));
                }
            }
        }
    }
}

impl ForeignToplevelListHandler for State {
    fn foreign_toplevel_list_state(&mut self) -> &mut ForeignToplevelListState {
        &mut self.core.protocols.foreign_toplevels.list
    }
}

impl ForeignToplevelHandler for State {
    fn foreign_toplevel_state(&mut self) -> &mut ForeignToplevelState {
        &mut self.core.protocols.foreign_toplevels.wlr
    }

    fn current_toplevels(&mut self) -> Vec<(ToplevelId, ToplevelInfo)> {
        self.toplevel_snapshot()
    }

    fn toplevel_request(&mut self, id: ToplevelId, request: ToplevelRequest) {
        let action = match request {
            ToplevelRequest::Activate => WindowAction::Activate,
            ToplevelRequest::Close => WindowAction::Close,
            ToplevelRequest::SetMaximized(on) => WindowAction::Maximize(Some(on)),
            ToplevelRequest::SetFullscreen(_) => WindowAction::Fullscreen(Some(true)),
            ToplevelRequest::UnsetFullscreen => WindowAction::Fullscreen(Some(false)),
            ToplevelRequest::SetMinimized(on) => WindowAction::Minimize(Some(on)),
        };
        match run_on_window(self, WindowId(id.0), action) {
            Ok(what) => debug!(window = id.0, ?action, %what, "foreign-toplevel request"),
            Err(err) => debug!(window = id.0, ?action, %err, "foreign-toplevel request failed"),
        }
    }
}

delegate_foreign_toplevel_list!(State);
delegate_wlr_foreign_toplevel!(State);
