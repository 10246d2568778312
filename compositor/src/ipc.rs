//! IPC: `lockstep msg` talks to a running compositor over a unix socket.
//!
//! The socket is `$XDG_RUNTIME_DIR/lockstep-<wayland socket>.sock`, so several lockstep
//! instances can run side by side and `lockstep msg` finds the one its `WAYLAND_DISPLAY` names.
//! The protocol is one JSON [`Request`] line from the client and one JSON [`Response`] line
//! back. Requests are read on the event loop without blocking; replies are written (and
//! screenshots encoded) on one writer thread so a slow client or a big PNG never stalls the
//! compositor.
//!
//! Any local process of the user can connect, so everything a connection can make lockstep
//! hold is bounded:
//! - at most [`MAX_CONNECTIONS`] connections are open at once (more are closed at accept);
//! - a connection must send its request line within [`REQUEST_TIMEOUT`] and in at most
//!   [`MAX_REQUEST`] bytes, or it is closed;
//! - replies wait in a queue of [`MAX_QUEUED_REPLIES`] for the writer thread (one thread for
//!   the compositor's life, created on first use); when the queue is full the reply is
//!   dropped and the connection closed. Each write gives up after [`WRITE_TIMEOUT`];
//! - a screenshot is written only to a regular file (opened without blocking, so a FIFO or
//!   a device cannot hold the writer thread and a whole frame forever).

use std::{
    cell::Cell,
    io::{ErrorKind, Read, Write},
    os::unix::net::{UnixListener, UnixStream},
    path::{Path, PathBuf},
    rc::Rc,
    sync::{
        mpsc::{sync_channel, SyncSender, TrySendError},
        Mutex, OnceLock,
    },
    time::Duration,
};

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use smithay::reexports::calloop::{
    generic::Generic,
    timer::{TimeoutAction, Timer},
    Interest, Mode, PostAction, RegistrationToken,
};
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
    /// The connected clients and the memory lockstep holds for each (`client_memory.rs`).
    Clients,
    /// Keep the connection open and send events as JSON lines (see `events.rs`).
    Events,
    /// Run an action, given as its words (`["workspace", "2"]`; see `action.rs`).
    Action {
        /// The action's words.
        action: Vec<String>,
    },
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
    /// The transform (`normal`, `90`, `flipped-180`, ... as wlr-randr names them).
    #[serde(default)]
    pub transform: String,
    /// Whether the display is powered (wlr-output-power-management or the
    /// `power-outputs` action turn it off without taking it out of the layout).
    #[serde(default = "powered_default")]
    pub powered: bool,
    /// Whether a client's gamma ramps are in force (wlr-gamma-control).
    #[serde(default)]
    pub gamma: bool,
    /// Position in the global space (logical).
    pub position: (i32, i32),
    /// Frames presented so far.
    pub frames_presented: u64,
    /// Frames that had damage and were rendered.
    pub frames_rendered: u64,
    /// The workspace it shows.
    #[serde(default)]
    pub workspace: Option<String>,
    /// Its workspaces that have windows, plus the shown one.
    #[serde(default)]
    pub workspaces: Vec<String>,
    /// Whether it has focus (new windows and workspace actions go to it).
    #[serde(default)]
    pub active: bool,
    /// What composites its frames: `pixman`, or `gles (GL_RENDERER)`.
    #[serde(default)]
    pub renderer: String,
    /// What each display plane shows (KMS backend only; the others composite everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planes: Option<Vec<PlaneInfo>>,
    /// The part windows tile in, x, y, width, height (logical, global): the output minus
    /// the exclusive zones of panels.
    #[serde(default)]
    pub usable_area: (i32, i32, i32, i32),
    /// Its layer surfaces (panels, wallpapers, launchers), bottom layer first.
    #[serde(default)]
    pub layers: Vec<LayerSurfaceInfo>,
    /// `unlocked`, `locking` (waiting for the first locked frames), `locked`, or
    /// `abandoned` (the locker died; still locked). The same on every output.
    #[serde(default)]
    pub session_lock: String,
}

/// One layer surface (zwlr_layer_shell_v1), as IPC reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerSurfaceInfo {
    /// The namespace the client gave (`waybar`, `wallpaper`, `launcher`).
    pub namespace: String,
    /// `background`, `bottom`, `top` or `overlay`.
    pub layer: String,
    /// Position (logical, global).
    pub position: (i32, i32),
    /// Size (logical).
    pub size: (i32, i32),
    /// The exclusive zone it asked for: 0 none, -1 ignores others' zones.
    pub exclusive_zone: i32,
    /// Keyboard interactivity: `none`, `exclusive` or `on_demand`.
    pub keyboard: String,
}

fn powered_default() -> bool {
    true
}

/// A transform's name as wlr-randr spells it.
pub fn transform_name(t: smithay::utils::Transform) -> &'static str {
    use smithay::utils::Transform as T;
    match t {
        T::Normal => "normal",
        T::_90 => "90",
        T::_180 => "180",
        T::_270 => "270",
        T::Flipped => "flipped",
        T::Flipped90 => "flipped-90",
        T::Flipped180 => "flipped-180",
        T::Flipped270 => "flipped-270",
    }
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
    /// xdg_toplevel title (an X11 window's `_NET_WM_NAME` or `WM_NAME`).
    pub title: Option<String>,
    /// xdg_toplevel app_id (an X11 window's `WM_CLASS` class).
    pub app_id: Option<String>,
    /// Position of the window geometry (logical).
    pub position: (i32, i32),
    /// Size of the window geometry (logical).
    pub size: (i32, i32),
    /// Whether it has keyboard focus.
    pub focused: bool,
    /// Its id in the layout (what actions on a given window will name).
    #[serde(default)]
    pub id: u64,
    /// The output its workspace is on.
    #[serde(default)]
    pub output: Option<String>,
    /// Its workspace (`1`–`10`, or a name).
    #[serde(default)]
    pub workspace: Option<String>,
    /// Whether its workspace is shown (and so is it, unless a fullscreen window covers it).
    #[serde(default)]
    pub visible: bool,
    /// `tiled`, `floating`, `maximized` or `fullscreen` (for a minimized window: how it
    /// comes back).
    #[serde(default)]
    pub layout: String,
    /// Whether it is minimized (hidden until something focuses it; `visible` is false).
    #[serde(default)]
    pub minimized: bool,
    /// Whether it is an X11 window (through Xwayland).
    #[serde(default)]
    pub xwayland: bool,
    /// The icon it gave (xdg_toplevel_icon_v1), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<crate::handlers::toplevel_icon::IconInfo>,
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
    /// Answer to `clients`.
    Clients(crate::client_memory::ClientsReport),
    /// Answer to `action`: what it did.
    Done(String),
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
        let open = Rc::new(Cell::new(0usize));
        // The listener's own token, for pausing it after a failed accept.
        let token: Rc<OnceLock<RegistrationToken>> = Rc::default();
        let own_token = token.clone();
        let registered = state
            .core
            .loop_handle
            .insert_source(
                Generic::new(listener, Interest::READ, Mode::Level),
                move |_, listener, state| {
                    loop {
                        match listener.accept() {
                            Ok((stream, _)) => accept(state, stream, &open),
                            Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                            Err(err) => {
                                // Out of fds: the connection waits in the backlog.
                                debug!(?err, "IPC accept failed");
                                if let Some(token) = own_token.get() {
                                    crate::socket::back_off(state, *token);
                                }
                                break;
                            }
                        }
                    }
                    Ok(PostAction::Continue)
                },
            )
            .map_err(|err| anyhow!("cannot watch the IPC socket: {err}"))?;
        let _ = token.set(registered);
        info!(path = %path.display(), "IPC listening");
        Ok(Self { path })
    }
}

/// Most a request may be; anything longer is not a `lockstep msg` request.
pub const MAX_REQUEST: usize = 64 * 1024;

/// Most IPC connections open at once.
pub const MAX_CONNECTIONS: usize = 32;

/// How long a connection may take to send its request line.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Most replies waiting for the writer thread.
pub const MAX_QUEUED_REPLIES: usize = 16;

/// How long writing one reply may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// One open connection's event sources: the stream and its request timeout.
#[derive(Default)]
struct Connection {
    stream: Cell<Option<RegistrationToken>>,
    timeout: Cell<Option<RegistrationToken>>,
}

impl Connection {
    /// Removes both sources (closing the stream unless a reply holds a clone of it).
    fn close(&self, state: &mut State, open: &Cell<usize>) {
        let handle = &state.core.loop_handle;
        let mut closed = false;
        if let Some(token) = self.stream.take() {
            handle.remove(token);
            closed = true;
        }
        if let Some(token) = self.timeout.take() {
            handle.remove(token);
        }
        if closed {
            open.set(open.get().saturating_sub(1));
        }
    }
}

fn accept(state: &mut State, stream: UnixStream, open: &Rc<Cell<usize>>) {
    if open.get() >= MAX_CONNECTIONS {
        debug!(
            open = open.get(),
            "too many IPC connections; closing the new one"
        );
        return;
    }
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let conn = Rc::new(Connection::default());
    let mut buffer = Vec::new();
    let (reader, reader_open) = (conn.clone(), open.clone());
    let result = state.core.loop_handle.insert_source(
        Generic::new(stream, Interest::READ, Mode::Level),
        move |_, stream, state| {
            let mut chunk = [0u8; 4096];
            // SAFETY: calloop gives us the stream only for this callback; we do not drop or
            // replace it, we only read and clone it.
            let stream_ref = unsafe { stream.get_mut() };
            let done = loop {
                match stream_ref.read(&mut chunk) {
                    Ok(0) => break true,
                    Ok(n) => {
                        buffer.extend_from_slice(&chunk[..n]);
                        if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                            let line = buffer[..end].to_vec();
                            if let Ok(reply) = stream_ref.try_clone() {
                                handle_line(state, &line, reply);
                            }
                            break true;
                        }
                        if buffer.len() > MAX_REQUEST {
                            break true;
                        }
                    }
                    Err(err) if err.kind() == ErrorKind::WouldBlock => break false,
                    Err(_) => break true,
                }
            };
            if !done {
                return Ok(PostAction::Continue);
            }
            // The source is removed by returning Remove: forget its token first.
            reader.stream.set(None);
            reader_open.set(reader_open.get().saturating_sub(1));
            if let Some(token) = reader.timeout.take() {
                state.core.loop_handle.remove(token);
            }
            Ok(PostAction::Remove)
        },
    );
    let token = match result {
        Ok(token) => token,
        Err(err) => {
            warn!(?err, "cannot watch an IPC connection");
            return;
        }
    };
    conn.stream.set(Some(token));
    open.set(open.get() + 1);
    let (timed, timed_open) = (conn.clone(), open.clone());
    let timer = state.core.loop_handle.insert_source(
        Timer::from_duration(REQUEST_TIMEOUT),
        move |_, _, state| {
            timed.timeout.set(None);
            if timed.stream.get().is_some() {
                debug!("IPC connection sent no request in time; closing it");
            }
            timed.close(state, &timed_open);
            TimeoutAction::Drop
        },
    );
    match timer {
        Ok(token) => conn.timeout.set(Some(token)),
        Err(err) => {
            warn!(error = %err.error, "cannot time an IPC connection; closing it");
            conn.close(state, open);
        }
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
        Request::Action { action } => {
            let response = run_action(state, &action);
            send(reply, response);
        }
        Request::Events => crate::events::listen(&mut state.core, reply),
        Request::Clients => {
            let response = Response::Clients(crate::client_memory::report(state));
            send(reply, response);
        }
        other => {
            let response = answer(state, other);
            send(reply, response);
        }
    }
}

/// The title and app id of a window: xdg_toplevel's, or an X11 window's title and WM_CLASS
/// class.
pub fn window_title_and_app_id(
    window: &smithay::desktop::Window,
) -> (Option<String>, Option<String>) {
    if let Some(x11) = window.x11_surface() {
        let nonempty = |s: String| (!s.is_empty()).then_some(s);
        return (nonempty(x11.title()), nonempty(x11.class()));
    }
    window
        .toplevel()
        .map(|t| title_and_app_id(t.wl_surface()))
        .unwrap_or_default()
}

/// The xdg_toplevel title and app id of `surface`.
pub fn title_and_app_id(
    surface: &smithay::reexports::wayland_server::protocol::wl_surface::WlSurface,
) -> (Option<String>, Option<String>) {
    smithay::wayland::compositor::with_states(surface, |states| {
        states
            .data_map
            .get::<smithay::wayland::shell::xdg::XdgToplevelSurfaceData>()
            .and_then(|d| d.lock().ok().map(|d| (d.title.clone(), d.app_id.clone())))
            .unwrap_or_default()
    })
}

/// Whether the toplevel `surface` has this title and app id (an unset one counts as
/// empty), compared in place without copying either.
pub fn title_and_app_id_are(
    surface: &smithay::reexports::wayland_server::protocol::wl_surface::WlSurface,
    title: &str,
    app_id: &str,
) -> bool {
    smithay::wayland::compositor::with_states(surface, |states| {
        match states
            .data_map
            .get::<smithay::wayland::shell::xdg::XdgToplevelSurfaceData>()
            .and_then(|d| d.lock().ok())
        {
            Some(d) => {
                d.title.as_deref().unwrap_or_default() == title
                    && d.app_id.as_deref().unwrap_or_default() == app_id
            }
            None => title.is_empty() && app_id.is_empty(),
        }
    })
}

/// Streams events from the compositor on `wayland_socket` to `line` until it closes.
pub fn stream_events(wayland_socket: &str, mut line: impl FnMut(&str)) -> Result<()> {
    use std::io::BufRead;
    let path = socket_path(wayland_socket)?;
    let mut stream = UnixStream::connect(&path)
        .with_context(|| format!("no lockstep answers at {}", path.display()))?;
    let mut text = serde_json::to_vec(&Request::Events)?;
    text.push(b'\n');
    stream.write_all(&text).context("cannot send the request")?;
    for next in std::io::BufReader::new(stream).lines() {
        line(&next.context("reading events failed")?);
    }
    Ok(())
}

/// Parses and runs an action given as words; the answer says what happened.
pub fn run_action(state: &mut State, words: &[String]) -> Response {
    match crate::action::Action::from_words(words) {
        Ok(action) => match crate::action::run(state, &action) {
            Ok(message) => Response::Done(message),
            Err(err) => Response::Error(err.to_string()),
        },
        Err(err) => Response::Error(err.to_string()),
    }
}

/// Work for the writer thread.
enum Job {
    /// Write this response.
    Reply(UnixStream, Response),
    /// Encode this frame as PNG, write it to `path`, then reply (when asked over IPC).
    Screenshot {
        stream: Option<UnixStream>,
        frame: lockstep_render::Frame,
        path: PathBuf,
        output: String,
    },
}

/// The writer thread's queue, created on first use (`None` if the thread cannot be made).
fn writer() -> Option<&'static Mutex<SyncSender<Job>>> {
    static WRITER: OnceLock<Option<Mutex<SyncSender<Job>>>> = OnceLock::new();
    WRITER
        .get_or_init(|| {
            let (sender, receiver) = sync_channel::<Job>(MAX_QUEUED_REPLIES);
            let spawned = std::thread::Builder::new()
                .name("lockstep-ipc".into())
                .spawn(move || {
                    for job in receiver {
                        run_job(job);
                    }
                });
            match spawned {
                Ok(_) => Some(Mutex::new(sender)),
                Err(err) => {
                    warn!(%err, "cannot start the IPC writer thread; IPC replies are dropped");
                    None
                }
            }
        })
        .as_ref()
}

/// Queues `job` for the writer thread; drops it (closing its connection) when the queue is
/// full or there is no thread.
fn queue(job: Job) {
    let Some(writer) = writer() else {
        return;
    };
    let Ok(sender) = writer.lock() else {
        return;
    };
    match sender.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            debug!("IPC reply queue full; dropping a reply");
        }
        Err(TrySendError::Disconnected(_)) => warn!("the IPC writer thread is gone"),
    }
}

fn run_job(job: Job) {
    match job {
        Job::Reply(stream, response) => write_reply(stream, &response),
        Job::Screenshot {
            stream,
            frame,
            path,
            output,
        } => {
            let path_for_log = path.clone();
            let response = match frame.encode_png() {
                Ok(png) => match write_regular_file(&path, &png) {
                    Ok(()) => Response::Screenshot {
                        path,
                        output,
                        size: (frame.width(), frame.height()),
                    },
                    Err(err) => Response::Error(format!("cannot write {}: {err}", path.display())),
                },
                Err(err) => Response::Error(format!("PNG encoding failed: {err}")),
            };
            drop(frame);
            match stream {
                Some(stream) => write_reply(stream, &response),
                None => match response {
                    Response::Error(err) => warn!("screenshot: {err}"),
                    _ => info!(path = %path_for_log.display(), "screenshot saved"),
                },
            }
        }
    }
}

fn write_reply(mut stream: UnixStream, response: &Response) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    if let Ok(mut text) = serde_json::to_vec(response) {
        text.push(b'\n');
        let _ = stream.write_all(&text);
    }
}

/// Writes `bytes` to `path`, which must be (or become) a regular file: the open never blocks
/// (O_NONBLOCK), so a FIFO without a reader fails at once, and anything that is not a regular
/// file is refused before a byte is written.
pub fn write_regular_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            "not a regular file (screenshots are written to files only)",
        ));
    }
    file.set_len(0)?;
    file.write_all(bytes)
}

fn send(stream: UnixStream, response: Response) {
    queue(Job::Reply(stream, response));
}

/// Answers the requests that need only a look at the state.
pub fn answer(state: &State, request: Request) -> Response {
    let core = &state.core;
    let planes = match &state.backend {
        crate::backend::Backend::Kms(kms) => kms.plane_reports(),
        _ => Vec::new(),
    };
    let layout_output =
        |o: &smithay::output::Output| core.layout.outputs().iter().find(|l| l.name == o.name());
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
                        transform: transform_name(o.current_transform()).into(),
                        powered: data.is_none_or(|d| d.powered),
                        gamma: data.is_some_and(|d| d.gamma.is_some()),
                        position: (pos.x, pos.y),
                        frames_presented: data.map(|d| d.sequence).unwrap_or_default(),
                        frames_rendered: data.map(|d| d.frames_rendered).unwrap_or_default(),
                        workspace: layout_output(o)
                            .and_then(|l| l.active_workspace().map(|w| w.id.to_string())),
                        workspaces: layout_output(o)
                            .map(|l| {
                                l.workspaces
                                    .iter()
                                    .enumerate()
                                    .filter(|(i, w)| *i == l.active || !w.windows.is_empty())
                                    .map(|(_, w)| w.id.to_string())
                                    .collect()
                            })
                            .unwrap_or_default(),
                        active: core.layout.active_output().map(|l| l.name.as_str())
                            == Some(o.name().as_str()),
                        usable_area: layout_output(o)
                            .map(|l| (l.working.x, l.working.y, l.working.w, l.working.h))
                            .unwrap_or_default(),
                        layers: crate::handlers::layer_shell::layer_infos(core, o)
                            .into_iter()
                            .map(|l| LayerSurfaceInfo {
                                namespace: l.namespace,
                                layer: l.layer.into(),
                                position: (l.geometry.loc.x, l.geometry.loc.y),
                                size: (l.geometry.size.w, l.geometry.size.h),
                                exclusive_zone: l.exclusive_zone,
                                keyboard: l.keyboard.into(),
                            })
                            .collect(),
                        session_lock: core.protocols.session_lock.describe().into(),
                        renderer: state.backend.renderer_name(),
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
                .layout
                .arrange()
                .into_iter()
                .filter_map(|p| {
                    let w = core.windows.get(&p.id)?;
                    let surface = crate::xwayland::wm::window_surface(w);
                    let (title, app_id) = window_title_and_app_id(w);
                    let loc = core
                        .space
                        .element_location(w)
                        .unwrap_or((p.content.x, p.content.y).into());
                    let size = w.geometry().size;
                    Some(WindowInfo {
                        title,
                        app_id,
                        position: (loc.x, loc.y),
                        size: (size.w, size.h),
                        focused: focus.is_some() && focus == surface,
                        id: p.id.0,
                        output: Some(p.output.clone()),
                        workspace: Some(p.workspace.to_string()),
                        visible: p.visible,
                        layout: match p.kind {
                            crate::layout::PlacementKind::Tiled => "tiled",
                            crate::layout::PlacementKind::Floating => "floating",
                            crate::layout::PlacementKind::Maximized => "maximized",
                            crate::layout::PlacementKind::Fullscreen => "fullscreen",
                        }
                        .into(),
                        minimized: p.minimized,
                        xwayland: w.x11_surface().is_some(),
                        icon: w
                            .toplevel()
                            .and_then(|t| crate::handlers::toplevel_icon::icon_of(t.wl_surface())),
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
        Request::Screenshot { .. }
        | Request::Action { .. }
        | Request::Events
        | Request::Clients => Response::Error("this request is answered elsewhere".into()),
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
    // Encoding a large PNG takes tens of milliseconds: do it off the event loop.
    queue(Job::Screenshot {
        stream: Some(reply),
        frame,
        path,
        output: output.name(),
    });
}

/// Encodes `frame` as PNG and writes it to `path` on the writer thread (the screenshot
/// action); the outcome is logged.
pub fn save_png(frame: lockstep_render::Frame, path: PathBuf) {
    queue(Job::Screenshot {
        stream: None,
        frame,
        path,
        output: String::new(),
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
