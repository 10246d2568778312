//! IPC: `lockstep msg` talks to a running compositor over a unix socket.
//!
//! The socket is `$XDG_RUNTIME_DIR/lockstep-<wayland socket>.sock`, so several lockstep
//! instances can run side by side and `lockstep msg` finds the one its `WAYLAND_DISPLAY` names.
//! The protocol is one JSON [`Request`] line from the client and one JSON [`Response`] line
//! back. Requests are read on the event loop without blocking; replies are written (and
//! screenshots encoded) on a short-lived thread so a slow client or a big PNG never stalls the
//! compositor.

use std::{
    io::{ErrorKind, Read, Write},
    os::unix::net::{UnixListener, UnixStream},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use smithay::reexports::calloop::{generic::Generic, Interest, Mode, PostAction};
use tracing::{debug, info, warn};

use crate::state::State;

/// A request from `lockstep msg`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// The outputs and their modes.
    Outputs,
    /// The mapped windows.
    Windows,
    /// Compositor version and backend.
    Version,
    /// Whether explicit sync is on, and why (not).
    ExplicitSync,
    /// The client validation report.
    SyncReport,
    /// Write a PNG of an output to `path` (absolute).
    Screenshot {
        /// Where to write the PNG.
        path: PathBuf,
        /// Which output; the first one when `None`.
        output: Option<String>,
    },
}

/// One output, as IPC reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputInfo {
    /// Connector-like name (`HEADLESS-1`, `winit`).
    pub name: String,
    /// Width and height in physical pixels.
    pub size: (i32, i32),
    /// Refresh rate in millihertz.
    pub refresh_mhz: i32,
    /// Scale factor.
    pub scale: f64,
    /// Position in the global space (logical).
    pub position: (i32, i32),
    /// Frames presented so far.
    pub frames_presented: u64,
    /// Frames that had damage and were rendered.
    pub frames_rendered: u64,
    /// What each display plane shows (KMS backend only; the others composite everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planes: Option<Vec<PlaneInfo>>,
}

/// One KMS plane of an output, as IPC reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlaneInfo {
    /// The kernel's plane object id.
    pub id: u32,
    /// `primary`, `cursor` or `overlay`.
    pub kind: String,
    /// What it shows: `composited frame at 0,0 (1024x768)`, `cursor 24x24 at 10,20 (64x64)`,
    /// `surface 12 (1024x768 Xrgb8888) at 0,0 (1024x768)`, `off`.
    pub content: String,
}

/// One window, as IPC reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WindowInfo {
    /// xdg_toplevel title.
    pub title: Option<String>,
    /// xdg_toplevel app_id.
    pub app_id: Option<String>,
    /// Position of the window geometry (logical).
    pub position: (i32, i32),
    /// Size of the window geometry (logical).
    pub size: (i32, i32),
    /// Whether it has keyboard focus.
    pub focused: bool,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Answer to `outputs`.
    Outputs(Vec<OutputInfo>),
    /// Answer to `windows`.
    Windows(Vec<WindowInfo>),
    /// Answer to `version`.
    Version {
        /// Package version.
        version: String,
        /// Backend in use.
        backend: String,
        /// Wayland socket name.
        socket: Option<String>,
    },
    /// Answer to `screenshot`.
    Screenshot {
        /// Where the PNG is.
        path: PathBuf,
        /// Which output it shows.
        output: String,
        /// Width and height in pixels.
        size: (u32, u32),
    },
    /// Answer to `sync_report`.
    SyncReport {
        /// Whether validation mode is on.
        enabled: bool,
        /// The entries.
        entries: Vec<crate::sync_validation::ReportEntry>,
        /// Entries dropped past the limit.
        dropped: u64,
    },
    /// Answer to `explicit_sync`.
    ExplicitSync(crate::handlers::drm_syncobj::ExplicitSyncStatus),
    /// The request failed.
    Error(String),
}

/// The IPC socket path for Wayland socket `wayland_socket`.
pub fn socket_path(wayland_socket: &str) -> Result<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").ok_or_else(|| {
        anyhow!(
            "XDG_RUNTIME_DIR is not set; set it to a private directory such as /run/user/$(id -u)"
        )
    })?;
    Ok(Path::new(&runtime).join(format!("lockstep-{wayland_socket}.sock")))
}

/// The listening IPC socket; removes its file when dropped.
pub struct IpcServer {
    path: PathBuf,
}

impl Drop for IpcServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl IpcServer {
    /// Listens on the IPC socket for `wayland_socket` and serves requests on the event loop.
    pub fn start(state: &mut State, wayland_socket: &str) -> Result<Self> {
        let path = socket_path(wayland_socket)?;
        if path.exists() {
            if UnixStream::connect(&path).is_ok() {
                return Err(anyhow!(
                    "another lockstep is already serving IPC at {}; pick another --socket name",
                    path.display()
                ));
            }
            // Left behind by a lockstep that crashed.
            std::fs::remove_file(&path).with_context(|| {
                format!("cannot remove the stale IPC socket {}", path.display())
            })?;
        }
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("cannot create the IPC socket {}", path.display()))?;
        listener.set_nonblocking(true)?;
        state
            .core
            .loop_handle
            .insert_source(
                Generic::new(listener, Interest::READ, Mode::Level),
                |_, listener, state| {
                    loop {
                        match listener.accept() {
                            Ok((stream, _)) => accept(state, stream),
                            Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                            Err(err) => {
                                warn!(?err, "IPC accept failed");
                                break;
                            }
                        }
                    }
                    Ok(PostAction::Continue)
                },
            )
            .map_err(|err| anyhow!("cannot watch the IPC socket: {err}"))?;
        info!(path = %path.display(), "IPC listening");
        Ok(Self { path })
    }
}

/// Most a request may be; anything longer is not a `lockstep msg` request.
const MAX_REQUEST: usize = 64 * 1024;

fn accept(state: &mut State, stream: UnixStream) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut buffer = Vec::new();
    let result = state.core.loop_handle.insert_source(
        Generic::new(stream, Interest::READ, Mode::Level),
        move |_, stream, state| {
            let mut chunk = [0u8; 4096];
            // SAFETY: calloop gives us the stream only for this callback; we do not drop or
            // replace it, we only read and (after removing the source) clone it.
            let stream_ref = unsafe { stream.get_mut() };
            loop {
                match stream_ref.read(&mut chunk) {
                    Ok(0) => return Ok(PostAction::Remove),
                    Ok(n) => {
                        buffer.extend_from_slice(&chunk[..n]);
                        if buffer.len() > MAX_REQUEST {
                            return Ok(PostAction::Remove);
                        }
                        if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                            let line = buffer[..end].to_vec();
                            if let Ok(reply) = stream_ref.try_clone() {
                                handle_line(state, &line, reply);
                            }
                            return Ok(PostAction::Remove);
                        }
                    }
                    Err(err) if err.kind() == ErrorKind::WouldBlock => {
                        return Ok(PostAction::Continue)
                    }
                    Err(_) => return Ok(PostAction::Remove),
                }
            }
        },
    );
    if let Err(err) = result {
        warn!(?err, "cannot watch an IPC connection");
    }
}

fn handle_line(state: &mut State, line: &[u8], reply: UnixStream) {
    let request: Request = match serde_json::from_slice(line) {
        Ok(request) => request,
        Err(err) => {
            send(reply, Response::Error(format!("bad request: {err}")));
            return;
        }
    };
    debug!(?request, "IPC request");
    match request {
        Request::Screenshot { path, output } => screenshot(state, path, output, reply),
        other => {
            let response = answer(state, other);
            send(reply, response);
        }
    }
}

fn send(mut stream: UnixStream, response: Response) {
    std::thread::spawn(move || {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        if let Ok(mut text) = serde_json::to_vec(&response) {
            text.push(b'\n');
            let _ = stream.write_all(&text);
        }
    });
}

/// Answers the requests that need only a look at the state.
pub fn answer(state: &State, request: Request) -> Response {
    let core = &state.core;
    let planes = match &state.backend {
        crate::backend::Backend::Kms(kms) => kms.plane_reports(),
        _ => Vec::new(),
    };
    match request {
        Request::Outputs => {
            let mut outputs: Vec<OutputInfo> = core
                .space
                .outputs()
                .map(|o| {
                    let mode = o.current_mode();
                    let data = core.outputs.get(&o.name());
                    let pos = core
                        .space
                        .output_geometry(o)
                        .map(|g| g.loc)
                        .unwrap_or_default();
                    OutputInfo {
                        name: o.name(),
                        size: mode.map(|m| (m.size.w, m.size.h)).unwrap_or_default(),
                        refresh_mhz: mode.map(|m| m.refresh).unwrap_or_default(),
                        scale: o.current_scale().fractional_scale(),
                        position: (pos.x, pos.y),
                        frames_presented: data.map(|d| d.sequence).unwrap_or_default(),
                        frames_rendered: data.map(|d| d.frames_rendered).unwrap_or_default(),
                        planes: planes.iter().find(|(n, _)| *n == o.name()).map(|(_, p)| {
                            p.iter()
                                .map(|p| PlaneInfo {
                                    id: p.id,
                                    kind: p.kind.name().into(),
                                    content: p.content.clone(),
                                })
                                .collect()
                        }),
                    }
                })
                .collect();
            outputs.sort_by(|a, b| a.name.cmp(&b.name));
            Response::Outputs(outputs)
        }
        Request::Windows => {
            let focus = core.seat.get_keyboard().and_then(|k| k.current_focus());
            let windows = core
                .space
                .elements()
                .filter_map(|w| {
                    let toplevel = w.toplevel()?;
                    let (title, app_id) = smithay::wayland::compositor::with_states(
                        toplevel.wl_surface(),
                        |states| {
                            states
                                .data_map
                                .get::<smithay::wayland::shell::xdg::XdgToplevelSurfaceData>()
                                .and_then(|d| {
                                    d.lock().ok().map(|d| (d.title.clone(), d.app_id.clone()))
                                })
                                .unwrap_or_default()
                        },
                    );
                    let loc = core.space.element_location(w).unwrap_or_default();
                    let size = w.geometry().size;
                    Some(WindowInfo {
                        title,
                        app_id,
                        position: (loc.x, loc.y),
                        size: (size.w, size.h),
                        focused: focus.as_ref() == Some(toplevel.wl_surface()),
                    })
                })
                .collect();
            Response::Windows(windows)
        }
        Request::Version => Response::Version {
            version: env!("CARGO_PKG_VERSION").to_string(),
            backend: state.backend.name().to_string(),
            socket: core
                .socket_name
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned()),
        },
        Request::ExplicitSync => Response::ExplicitSync(core.explicit_sync.clone()),
        Request::SyncReport => {
            let (entries, dropped) = core.sync_validation.entries();
            Response::SyncReport {
                enabled: core.sync_validation.enabled(),
                entries: entries.to_vec(),
                dropped,
            }
        }
        Request::Screenshot { .. } => Response::Error("screenshot is answered elsewhere".into()),
    }
}

fn screenshot(state: &mut State, path: PathBuf, output: Option<String>, reply: UnixStream) {
    let output = match &output {
        Some(name) => state.core.output_by_name(name),
        None => {
            let mut outputs: Vec<_> = state.core.space.outputs().cloned().collect();
            outputs.sort_by_key(|o| o.name());
            outputs.into_iter().next()
        }
    };
    let Some(output) = output else {
        let names: Vec<String> = state.core.space.outputs().map(|o| o.name()).collect();
        send(
            reply,
            Response::Error(format!("no such output; outputs are: {}", names.join(", "))),
        );
        return;
    };
    if !path.is_absolute() {
        send(
            reply,
            Response::Error(format!("{} is not an absolute path", path.display())),
        );
        return;
    }
    let frame = match state.backend.capture(&mut state.core, &output) {
        Ok(frame) => frame,
        Err(err) => {
            send(reply, Response::Error(format!("capture failed: {err:#}")));
            return;
        }
    };
    let name = output.name();
    // Encoding a large PNG takes tens of milliseconds: do it off the event loop.
    std::thread::spawn(move || {
        let response = match frame.encode_png() {
            Ok(png) => match std::fs::write(&path, png) {
                Ok(()) => Response::Screenshot {
                    path,
                    output: name,
                    size: (frame.width(), frame.height()),
                },
                Err(err) => Response::Error(format!("cannot write {}: {err}", path.display())),
            },
            Err(err) => Response::Error(format!("PNG encoding failed: {err}")),
        };
        send(reply, response);
    });
}

/// Client side: sends `request` to the compositor on `wayland_socket`, returns its answer.
pub fn request(wayland_socket: &str, request: &Request) -> Result<Response> {
    let path = socket_path(wayland_socket)?;
    let mut stream = UnixStream::connect(&path).map_err(|err| {
        if path.exists() {
            anyhow!(
                "the IPC socket {} exists but nobody answers ({err}); lockstep probably \
                 crashed. Remove the file and start lockstep again.",
                path.display()
            )
        } else {
            anyhow!(
                "no lockstep is running on Wayland socket {wayland_socket:?} (no {}). Start \
                 lockstep, or set WAYLAND_DISPLAY / --socket to the right name.",
                path.display()
            )
        }
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut text = serde_json::to_vec(request)?;
    text.push(b'\n');
    stream.write_all(&text).context("cannot send the request")?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .context("no answer from lockstep within 30 s")?;
    serde_json::from_str(answer.trim())
        .with_context(|| format!("lockstep sent a bad answer: {answer:?}"))
}
