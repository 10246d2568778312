//! wlr-foreign-toplevel-management-unstable-v1 (v3): taskbars and docks (waybar's
//! wlr/taskbar, sfwbar) list the windows and activate, close, maximize or fullscreen them.
//!
//! # How to use it
//!
//! The compositor describes its windows as a list of ([`ToplevelId`], [`ToplevelInfo`]) and
//! hands the whole list to [`ForeignToplevelState::update`] whenever something may have
//! changed (lockstep does it once per loop iteration while a manager is bound). This module
//! sends each manager a handle per new window, only the properties that changed for the
//! others (each followed by `done`), and `closed` for windows that went away. Requests on a
//! handle reach [`ForeignToplevelHandler::toplevel_request`] as a [`ToplevelRequest`] with
//! the window's id; requests on a handle whose window is gone are ignored.
//!
//! Protocol errors: `invalid_rectangle` on the handle for a `set_rectangle` with a negative
//! width or height.

use smithay::{
    output::Output,
    reexports::{
        wayland_protocols_wlr::foreign_toplevel::v1::server::{
            zwlr_foreign_toplevel_handle_v1::{
                self, State as WlrState, ZwlrForeignToplevelHandleV1,
            },
            zwlr_foreign_toplevel_manager_v1::{self, ZwlrForeignToplevelManagerV1},
        },
        wayland_server::{
            backend::{ClientId, GlobalId},
            Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource,
        },
    },
};

/// The version of `zwlr_foreign_toplevel_manager_v1` lockstep implements.
pub const VERSION: u32 = 3;

/// The compositor's id of a window (stable while it lives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ToplevelId(pub u64);

/// What clients learn about one window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToplevelInfo {
    /// Its title.
    pub title: String,
    /// Its app id.
    pub app_id: String,
    /// Maximized.
    pub maximized: bool,
    /// Minimized (hidden).
    pub minimized: bool,
    /// It has keyboard focus.
    pub activated: bool,
    /// Fullscreen.
    pub fullscreen: bool,
    /// The outputs it is shown on.
    pub outputs: Vec<Output>,
    /// The window it is a dialog of.
    pub parent: Option<ToplevelId>,
}

/// What a taskbar asks of a window.
#[derive(Debug, Clone, PartialEq)]
pub enum ToplevelRequest {
    /// Focus it (show its workspace).
    Activate,
    /// Ask it to close.
    Close,
    /// Maximize (true) or restore (false).
    SetMaximized(bool),
    /// Minimize (true) or restore (false).
    SetMinimized(bool),
    /// Fullscreen, on this output if given.
    SetFullscreen(Option<Output>),
    /// Leave fullscreen.
    UnsetFullscreen,
}

/// What the compositor implements.
pub trait ForeignToplevelHandler {
    /// The protocol state.
    fn foreign_toplevel_state(&mut self) -> &mut ForeignToplevelState;
    /// The windows as they are now (asked when a client binds).
    fn current_toplevels(&mut self) -> Vec<(ToplevelId, ToplevelInfo)>;
    /// A client asked something of window `id`.
    fn toplevel_request(&mut self, id: ToplevelId, request: ToplevelRequest);
}

/// Data of the global: which clients may see it.
pub struct ForeignToplevelGlobalData {
    filter: Box<dyn Fn(&Client) -> bool + Send + Sync>,
}

/// Data of a handle: its window.
#[derive(Debug)]
pub struct HandleData {
    id: ToplevelId,
}

#[derive(Debug)]
struct Entry {
    id: ToplevelId,
    info: ToplevelInfo,
    /// One handle per manager that was told about it.
    handles: Vec<ZwlrForeignToplevelHandleV1>,
}

/// Global state of the toplevel manager.
#[derive(Debug)]
pub struct ForeignToplevelState {
    global: GlobalId,
    dh: DisplayHandle,
    managers: Vec<ZwlrForeignToplevelManagerV1>,
    toplevels: Vec<Entry>,
}

impl ForeignToplevelState {
    /// Creates the `zwlr_foreign_toplevel_manager_v1` global, visible to clients `filter`
    /// accepts.
    pub fn new<D, F>(display: &DisplayHandle, filter: F) -> Self
    where
        D: GlobalDispatch<ZwlrForeignToplevelManagerV1, ForeignToplevelGlobalData>
            + Dispatch<ZwlrForeignToplevelManagerV1, ()>
            + Dispatch<ZwlrForeignToplevelHandleV1, HandleData>
            + ForeignToplevelHandler
            + 'static,
        F: Fn(&Client) -> bool + Send + Sync + 'static,
    {
        let global = display.create_global::<D, ZwlrForeignToplevelManagerV1, _>(
            VERSION,
            ForeignToplevelGlobalData {
                filter: Box::new(filter),
            },
        );
        Self {
            global,
            dh: display.clone(),
            managers: Vec::new(),
            toplevels: Vec::new(),
        }
    }

    /// The global's id.
    pub fn global(&self) -> GlobalId {
        self.global.clone()
    }

    /// Whether any client has a manager bound.
    pub fn has_clients(&self) -> bool {
        self.managers.iter().any(|m| m.is_alive())
    }

    /// Tells every manager what changed (`toplevels` is the whole current list).
    pub fn update<D>(&mut self, toplevels: Vec<(ToplevelId, ToplevelInfo)>)
    where
        D: Dispatch<ZwlrForeignToplevelHandleV1, HandleData> + 'static,
    {
        self.managers.retain(|m| m.is_alive());
        // Gone windows.
        self.toplevels.retain(|entry| {
            let keep = toplevels.iter().any(|(id, _)| *id == entry.id);
            if !keep {
                for handle in entry.handles.iter().filter(|h| h.is_alive()) {
                    handle.closed();
                }
            }
            keep
        });
        let mut fresh = Vec::new();
        for (id, info) in toplevels {
            match self.toplevels.iter_mut().find(|e| e.id == id) {
                Some(entry) => {
                    if entry.info != info {
                        entry.handles.retain(|h| h.is_alive());
                        for handle in &entry.handles {
                            send_changes(handle, &entry.info, &info);
                        }
                        entry.info = info;
                    }
                }
                None => fresh.push((id, info)),
            }
        }
        let mut introduced = Vec::new();
        for (id, info) in fresh {
            let mut entry = Entry {
                id,
                info,
                handles: Vec::new(),
            };
            for manager in &self.managers {
                if let Some(handle) = introduce::<D>(&self.dh, manager, &entry) {
                    introduced.push((handle.clone(), entry.info.parent));
                    entry.handles.push(handle);
                }
            }
            self.toplevels.push(entry);
        }
        self.send_parents(&introduced);
    }

    /// Sends `parent` to new handles of dialogs, once every handle exists (a dialog may
    /// come before its parent in the list).
    fn send_parents(&self, introduced: &[(ZwlrForeignToplevelHandleV1, Option<ToplevelId>)]) {
        for (handle, parent) in introduced {
            let Some(parent) = parent else {
                continue;
            };
            if handle.version() < 3 {
                continue;
            }
            let parent_handle = self
                .toplevels
                .iter()
                .find(|e| e.id == *parent)
                .and_then(|e| {
                    e.handles
                        .iter()
                        .find(|p| p.is_alive() && p.id().same_client_as(&handle.id()))
                });
            if let Some(parent_handle) = parent_handle {
                handle.parent(Some(parent_handle));
                handle.done();
            }
        }
    }
}

/// The state array: u32s in native byte order.
fn states(info: &ToplevelInfo, version: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |s: WlrState| out.extend_from_slice(&(s as u32).to_ne_bytes());
    if info.maximized {
        push(WlrState::Maximized);
    }
    if info.minimized {
        push(WlrState::Minimized);
    }
    if info.activated {
        push(WlrState::Activated);
    }
    if info.fullscreen && version >= 2 {
        push(WlrState::Fullscreen);
    }
    out
}

fn send_outputs(handle: &ZwlrForeignToplevelHandleV1, outputs: &[Output], enter: bool) {
    let Some(client) = handle.client() else {
        return;
    };
    for output in outputs {
        for wl_output in output.client_outputs(&client) {
            if enter {
                handle.output_enter(&wl_output);
            } else {
                handle.output_leave(&wl_output);
            }
        }
    }
}

fn introduce<D>(
    dh: &DisplayHandle,
    manager: &ZwlrForeignToplevelManagerV1,
    entry: &Entry,
) -> Option<ZwlrForeignToplevelHandleV1>
where
    D: Dispatch<ZwlrForeignToplevelHandleV1, HandleData> + 'static,
{
    let client = manager.client()?;
    let handle = client
        .create_resource::<ZwlrForeignToplevelHandleV1, _, D>(
            dh,
            manager.version(),
            HandleData { id: entry.id },
        )
        .ok()?;
    manager.toplevel(&handle);
    handle.title(entry.info.title.clone());
    handle.app_id(entry.info.app_id.clone());
    send_outputs(&handle, &entry.info.outputs, true);
    handle.state(states(&entry.info, handle.version()));
    handle.done();
    Some(handle)
}

fn send_changes(handle: &ZwlrForeignToplevelHandleV1, old: &ToplevelInfo, new: &ToplevelInfo) {
    if old.title != new.title {
        handle.title(new.title.clone());
    }
    if old.app_id != new.app_id {
        handle.app_id(new.app_id.clone());
    }
    let left: Vec<Output> = old
        .outputs
        .iter()
        .filter(|o| !new.outputs.contains(o))
        .cloned()
        .collect();
    let entered: Vec<Output> = new
        .outputs
        .iter()
        .filter(|o| !old.outputs.contains(o))
        .cloned()
        .collect();
    send_outputs(handle, &left, false);
    send_outputs(handle, &entered, true);
    let version = handle.version();
    if states(old, version) != states(new, version) {
        handle.state(states(new, version));
    }
    if old.parent != new.parent && new.parent.is_none() && version >= 3 {
        handle.parent(None);
    }
    handle.done();
}

impl<D> GlobalDispatch<ZwlrForeignToplevelManagerV1, ForeignToplevelGlobalData, D>
    for ForeignToplevelState
where
    D: GlobalDispatch<ZwlrForeignToplevelManagerV1, ForeignToplevelGlobalData>
        + Dispatch<ZwlrForeignToplevelManagerV1, ()>
        + Dispatch<ZwlrForeignToplevelHandleV1, HandleData>
        + ForeignToplevelHandler
        + 'static,
{
    fn bind(
        state: &mut D,
        _dh: &DisplayHandle,
        _client: &Client,
        resource: New<ZwlrForeignToplevelManagerV1>,
        _global_data: &ForeignToplevelGlobalData,
        data_init: &mut DataInit<'_, D>,
    ) {
        let manager = data_init.init(resource, ());
        let current = state.current_toplevels();
        let this = state.foreign_toplevel_state();
        this.update::<D>(current);
        let mut introduced = Vec::new();
        for entry in &mut this.toplevels {
            if let Some(handle) = introduce::<D>(&this.dh, &manager, entry) {
                introduced.push((handle.clone(), entry.info.parent));
                entry.handles.push(handle);
            }
        }
        this.managers.push(manager);
        this.send_parents(&introduced);
    }

    fn can_view(client: Client, global_data: &ForeignToplevelGlobalData) -> bool {
        (global_data.filter)(&client)
    }
}

impl<D> Dispatch<ZwlrForeignToplevelManagerV1, (), D> for ForeignToplevelState
where
    D: Dispatch<ZwlrForeignToplevelManagerV1, ()> + ForeignToplevelHandler + 'static,
{
    fn request(
        state: &mut D,
        _client: &Client,
        manager: &ZwlrForeignToplevelManagerV1,
        request: zwlr_foreign_toplevel_manager_v1::Request,
        _data: &(),
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        if let zwlr_foreign_toplevel_manager_v1::Request::Stop = request {
            state
                .foreign_toplevel_state()
                .managers
                .retain(|m| m != manager);
            manager.finished();
        }
    }

    fn destroyed(state: &mut D, _client: ClientId, manager: &ZwlrForeignToplevelManagerV1, _: &()) {
        state
            .foreign_toplevel_state()
            .managers
            .retain(|m| m != manager);
    }
}

impl<D> Dispatch<ZwlrForeignToplevelHandleV1, HandleData, D> for ForeignToplevelState
where
    D: Dispatch<ZwlrForeignToplevelHandleV1, HandleData> + ForeignToplevelHandler + 'static,
{
    fn request(
        state: &mut D,
        _client: &Client,
        handle: &ZwlrForeignToplevelHandleV1,
        request: zwlr_foreign_toplevel_handle_v1::Request,
        data: &HandleData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        use zwlr_foreign_toplevel_handle_v1::Request;
        let request = match request {
            Request::Activate { .. } => ToplevelRequest::Activate,
            Request::Close => ToplevelRequest::Close,
            Request::SetMaximized => ToplevelRequest::SetMaximized(true),
            Request::UnsetMaximized => ToplevelRequest::SetMaximized(false),
            Request::SetMinimized => ToplevelRequest::SetMinimized(true),
            Request::UnsetMinimized => ToplevelRequest::SetMinimized(false),
            Request::SetFullscreen { output } => {
                ToplevelRequest::SetFullscreen(output.as_ref().and_then(Output::from_resource))
            }
            Request::UnsetFullscreen => ToplevelRequest::UnsetFullscreen,
            Request::SetRectangle { width, height, .. } => {
                if width < 0 || height < 0 {
                    handle.post_error(
                        zwlr_foreign_toplevel_handle_v1::Error::InvalidRectangle,
                        format!("set_rectangle with a negative size {width}x{height}"),
                    );
                }
                // Where a taskbar shows the window (for minimize animations): unused.
                return;
            }
            _ => return,
        };
        // A handle whose window closed is inert.
        let live = state
            .foreign_toplevel_state()
            .toplevels
            .iter()
            .any(|e| e.id == data.id);
        if live {
            state.toplevel_request(data.id, request);
        }
    }

    fn destroyed(
        state: &mut D,
        _client: ClientId,
        handle: &ZwlrForeignToplevelHandleV1,
        _: &HandleData,
    ) {
        for entry in &mut state.foreign_toplevel_state().toplevels {
            entry.handles.retain(|h| h != handle);
        }
    }
}

/// Implements the foreign-toplevel dispatch traits for `$ty` by delegating to this module.
#[macro_export]
macro_rules! delegate_wlr_foreign_toplevel {
    ($ty:ty) => {
        smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::foreign_toplevel::v1::server::zwlr_foreign_toplevel_manager_v1::ZwlrForeignToplevelManagerV1: $crate::wlr_foreign_toplevel::ForeignToplevelGlobalData
        ] => $crate::wlr_foreign_toplevel::ForeignToplevelState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::foreign_toplevel::v1::server::zwlr_foreign_toplevel_manager_v1::ZwlrForeignToplevelManagerV1: ()
        ] => $crate::wlr_foreign_toplevel::ForeignToplevelState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::foreign_toplevel::v1::server::zwlr_foreign_toplevel_handle_v1::ZwlrForeignToplevelHandleV1: $crate::wlr_foreign_toplevel::HandleData
        ] => $crate::wlr_foreign_toplevel::ForeignToplevelState);
    };
}
