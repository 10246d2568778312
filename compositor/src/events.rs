//! The IPC event stream: `lockstep msg events` prints one JSON object per line as things
//! happen, for bars and scripts.
//!
//! Most events are found by comparing a small snapshot of the desktop (windows with their
//! title, app id and workspace; the focused window; each output's shown workspace, mode,
//! scale and position) after
//! every loop iteration with the previous one, so no code path that changes the desktop can
//! forget to report it; config reloads report themselves ([`EventStream::emit`]). Nothing is
//! computed while nobody listens.
//!
//! A listener is a connection that sent `{"request":"events"}`. Each has a writer thread fed
//! through a bounded queue, so a slow or stuck reader never stalls lockstep: when its queue
//! is full it is dropped (closed). At most [`MAX_LISTENERS`] listen at once.
//!
//! The schema (`"event"` names the kind):
//!
//! ```text
//! {"event":"window_opened","id":3,"title":"foot","app_id":"foot","output":"HEADLESS-1","workspace":"1"}
//! {"event":"window_closed","id":3}
//! {"event":"window_focused","id":3}            (id null: no window has focus)
//! {"event":"window_changed","id":3,"title":"vim","app_id":"foot","output":"HEADLESS-1","workspace":"2"}
//! {"event":"workspace_shown","output":"HEADLESS-1","workspace":"2"}
//! {"event":"output_added","name":"HDMI-A-1"}
//! {"event":"output_removed","name":"HDMI-A-1"}
//! {"event":"output_changed","name":"HDMI-A-1","size":[1920,1080],"refresh_mhz":60000,"scale":1.5,"position":[0,0]}
//! {"event":"config_reloaded","source":"/home/me/.config/lockstep/config.toml"}
//! {"event":"config_rejected","error":"config.toml:3:8: error: ..."}
//! {"event":"client_limit","client":"pid 4242 (greedy)","request":"wl_shm.create_pool","limit":"shm_bytes_per_client","held":4294963200,"requested":1048576,"max":4294967296}
//! ```

use std::{
    collections::BTreeMap,
    io::Write,
    os::unix::net::UnixStream,
    sync::{
        mpsc::{sync_channel, SyncSender, TrySendError},
        Arc,
    },
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::state::Core;

/// Most listeners at once.
pub const MAX_LISTENERS: usize = 16;

/// Most lines waiting for one listener before it is dropped.
pub const MAX_QUEUED: usize = 256;

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A window was mapped.
    WindowOpened(WindowEvent),
    /// A window's title, app id, output or workspace changed.
    WindowChanged(WindowEvent),
    /// A window went away (closed or unmapped itself).
    WindowClosed {
        /// Its id (as in `msg windows`).
        id: u64,
    },
    /// Keyboard focus moved to another window, or to none.
    WindowFocused {
        /// The focused window's id, `null` for none.
        id: Option<u64>,
    },
    /// An output shows another workspace.
    WorkspaceShown {
        /// The output.
        output: String,
        /// The workspace now shown.
        workspace: String,
    },
    /// An output appeared.
    OutputAdded {
        /// Its name.
        name: String,
    },
    /// An output went away.
    OutputRemoved {
        /// Its name.
        name: String,
    },
    /// An output's mode, scale or position changed (a config reload, output management).
    OutputChanged {
        /// Its name.
        name: String,
        /// Its mode's size in pixels.
        size: (i32, i32),
        /// Its mode's refresh rate in mHz.
        refresh_mhz: i32,
        /// Its scale.
        scale: f64,
        /// Its top-left corner in the global space (logical pixels).
        position: (i32, i32),
    },
    /// The config file was loaded again.
    ConfigReloaded {
        /// Where it came from.
        source: String,
    },
    /// The config file has an error; the running config stays.
    ConfigRejected {
        /// The error, with file, line and column.
        error: String,
    },
    /// A client's request was refused because it would go over one of its `[limits]`.
    ClientLimit {
        /// `pid 1234 (foot)`.
        client: String,
        /// The refused request (`wl_shm.create_pool`).
        request: String,
        /// The `[limits]` key.
        limit: String,
        /// What the client held (bytes or objects).
        held: u64,
        /// What the request asked for more.
        requested: u64,
        /// The limit.
        max: u64,
    },
}

/// A window in an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowEvent {
    /// Its id (as in `msg windows`).
    pub id: u64,
    /// xdg_toplevel title.
    pub title: Option<String>,
    /// xdg_toplevel app id.
    pub app_id: Option<String>,
    /// Its output.
    pub output: Option<String>,
    /// Its workspace.
    pub workspace: Option<String>,
}

/// What the event stream compares between loop iterations.
#[derive(Debug, Clone, Default, PartialEq)]
struct Snapshot {
    windows: BTreeMap<u64, WindowEvent>,
    focused: Option<u64>,
    /// Output -> shown workspace.
    outputs: BTreeMap<String, String>,
    /// Output -> its `output_changed` event (mode, scale, position).
    output_states: BTreeMap<String, Event>,
}

/// The listeners and the last snapshot.
#[derive(Debug, Default)]
pub struct EventStream {
    listeners: Vec<SyncSender<Arc<str>>>,
    last: Snapshot,
}

impl EventStream {
    /// Starts sending events to `stream` (a connection that asked for them).
    fn add_listener(&mut self, stream: UnixStream) {
        if self.listeners.len() >= MAX_LISTENERS {
            debug!("too many event listeners; closing the new one");
            return;
        }
        let (sender, receiver) = sync_channel::<Arc<str>>(MAX_QUEUED);
        let spawned = std::thread::Builder::new()
            .name("lockstep-events".into())
            .spawn(move || {
                let mut stream = stream;
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                for line in receiver {
                    if stream.write_all(line.as_bytes()).is_err() {
                        break;
                    }
                }
            });
        match spawned {
            Ok(_) => self.listeners.push(sender),
            Err(err) => warn!(%err, "cannot start an event listener thread"),
        }
    }

    /// Whether anybody listens.
    pub fn has_listeners(&self) -> bool {
        !self.listeners.is_empty()
    }

    /// Sends `event` to every listener; drops those that are gone or too slow.
    pub fn emit(&mut self, event: &Event) {
        if self.listeners.is_empty() {
            return;
        }
        let Ok(mut text) = serde_json::to_string(event) else {
            return;
        };
        text.push('\n');
        let line: Arc<str> = text.into();
        self.listeners
            .retain(|listener| match listener.try_send(line.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    debug!("an event listener is too slow; dropping it");
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
    }
}

/// After each loop iteration: reports what changed since the last one.
pub fn after_dispatch(core: &mut Core) {
    if !core.events.has_listeners() {
        return;
    }
    let now = snapshot(core);
    let last = std::mem::replace(&mut core.events.last, now.clone());
    for (name, workspace) in &now.outputs {
        match last.outputs.get(name) {
            None => {
                core.events.emit(&Event::OutputAdded { name: name.clone() });
                core.events.emit(&Event::WorkspaceShown {
                    output: name.clone(),
                    workspace: workspace.clone(),
                });
            }
            Some(previous) if previous != workspace => core.events.emit(&Event::WorkspaceShown {
                output: name.clone(),
                workspace: workspace.clone(),
            }),
            Some(_) => {}
        }
    }
    for (name, state) in &now.output_states {
        if last.output_states.get(name).is_some_and(|l| l != state) {
            core.events.emit(state);
        }
    }
    for name in last
        .outputs
        .keys()
        .filter(|n| !now.outputs.contains_key(*n))
    {
        core.events
            .emit(&Event::OutputRemoved { name: name.clone() });
    }
    for (id, window) in &now.windows {
        match last.windows.get(id) {
            None => core.events.emit(&Event::WindowOpened(window.clone())),
            Some(previous) if previous != window => {
                core.events.emit(&Event::WindowChanged(window.clone()))
            }
            Some(_) => {}
        }
    }
    for id in last
        .windows
        .keys()
        .filter(|id| !now.windows.contains_key(*id))
    {
        core.events.emit(&Event::WindowClosed { id: *id });
    }
    if now.focused != last.focused {
        core.events.emit(&Event::WindowFocused { id: now.focused });
    }
}

/// Starts `stream` listening, with the current state as the baseline (a first listener sees
/// only what changes from now on).
pub fn listen(core: &mut Core, stream: UnixStream) {
    if !core.events.has_listeners() {
        core.events.last = snapshot(core);
    }
    core.events.add_listener(stream);
}

fn snapshot(core: &Core) -> Snapshot {
    let mut windows = BTreeMap::new();
    for (output, ws) in core.layout.workspaces() {
        for entry in &ws.windows {
            let (title, app_id) = core
                .windows
                .get(&entry.id)
                .map(crate::ipc::window_title_and_app_id)
                .unwrap_or_default();
            windows.insert(
                entry.id.0,
                WindowEvent {
                    id: entry.id.0,
                    title,
                    app_id,
                    output: output.map(str::to_owned),
                    workspace: Some(ws.id.to_string()),
                },
            );
        }
    }
    Snapshot {
        windows,
        focused: core.layout.focused().map(|id| id.0),
        outputs: core
            .layout
            .outputs()
            .iter()
            .filter_map(|o| Some((o.name.clone(), o.active_workspace()?.id.to_string())))
            .collect(),
        output_states: core
            .space
            .outputs()
            .map(|o| {
                let mode = o.current_mode();
                let position = core
                    .space
                    .output_geometry(o)
                    .map_or((0, 0), |g| (g.loc.x, g.loc.y));
                let state = Event::OutputChanged {
                    name: o.name(),
                    size: mode.map_or((0, 0), |m| (m.size.w, m.size.h)),
                    refresh_mhz: mode.map_or(0, |m| m.refresh),
                    scale: o.current_scale().fractional_scale(),
                    position,
                };
                (o.name(), state)
            })
            .collect(),
    }
}
