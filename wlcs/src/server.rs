//! lockstep's server in a thread of its own, driven by commands from WLCS's threads.
//!
//! [`ServerThread::start`] builds a [`Server`] on the headless backend inside a new thread (the
//! event loop and state are not `Send`, so they are born where they run), adds a calloop
//! channel to its loop and dispatches until told to stop. Every command carries a reply
//! channel; [`ServerHandle::run`] waits for the reply, so by the time a WLCS hook returns, the
//! server has done what the hook asked (clients connected, window moved, input delivered).

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    io,
    os::{fd::RawFd, unix::net::UnixStream},
    rc::Rc,
    sync::{mpsc, Arc},
    thread::JoinHandle,
    time::Duration,
};

use lockstep::{
    backend::headless::VirtualOutput,
    server::Server,
    state::{ClientState, State},
};
use smithay::{
    reexports::{
        calloop::channel::{self, Channel, Event},
        wayland_server::{backend::ClientId, Resource},
    },
    utils::{Logical, Point},
    wayland::seat::WaylandFocus,
};

/// How long a hook waits for the server thread before it gives up (the server is stuck).
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// The one output WLCS tests see: big enough for the tests' windows at their positions.
const OUTPUT: VirtualOutput = VirtualOutput {
    size: (1920, 1080),
    refresh_mhz: 60_000,
    scale: 1.0,
    position: Some((0, 0)),
};

/// What WLCS asks of the server.
#[derive(Debug)]
pub enum Command {
    /// Accept a client on `stream`; `client_fd` is the client's end, which names it later.
    NewClient {
        /// The server's end of the socket pair.
        stream: UnixStream,
        /// The client's end (its wl_display fd).
        client_fd: RawFd,
    },
    /// Put the window of the client's surface `surface_id` at `location`.
    PositionWindow {
        /// The client's wl_display fd.
        client_fd: RawFd,
        /// Protocol id of the toplevel's wl_surface.
        surface_id: u32,
        /// Where the window's top-left corner goes in the global space.
        location: Point<i32, Logical>,
    },
    /// Move the pointer to a point in the global space.
    PointerMoveTo(Point<f64, Logical>),
    /// Move the pointer by a delta.
    PointerMoveBy(Point<f64, Logical>),
    /// Press or release a button (evdev code).
    PointerButton {
        /// evdev button code (BTN_LEFT = 0x110).
        button: u32,
        /// Pressed or released.
        pressed: bool,
    },
    /// Touch point `slot` goes down.
    TouchDown {
        /// The touch point.
        slot: u32,
        /// Where, in the global space.
        location: Point<f64, Logical>,
    },
    /// Touch point `slot` moves.
    TouchMove {
        /// The touch point.
        slot: u32,
        /// Where to, in the global space.
        location: Point<f64, Logical>,
    },
    /// Touch point `slot` is lifted.
    TouchUp {
        /// The touch point.
        slot: u32,
    },
    /// Leave the loop.
    Stop,
}

struct Request {
    command: Command,
    done: mpsc::Sender<()>,
}

/// Sends commands to the server thread; cheap to clone (pointer and touch devices hold one).
#[derive(Clone)]
pub struct ServerHandle {
    sender: channel::Sender<Request>,
}

impl ServerHandle {
    /// Sends `command` and waits until the server thread has carried it out.
    pub fn run(&self, command: Command) -> io::Result<()> {
        let (done, wait) = mpsc::channel();
        self.sender
            .send(Request { command, done })
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the server thread is gone"))?;
        wait.recv_timeout(REPLY_TIMEOUT).map_err(|err| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the server thread did not answer: {err}"),
            )
        })
    }
}

/// The running server thread.
pub struct ServerThread {
    handle: ServerHandle,
    thread: JoinHandle<()>,
}

impl ServerThread {
    /// Starts lockstep in a new thread; returns once it is ready for clients.
    pub fn start() -> io::Result<Self> {
        let (sender, channel) = channel::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name("lockstep-wlcs".into())
            .spawn(move || {
                let server = match build(channel) {
                    Ok(server) => {
                        let _ = ready_tx.send(Ok(()));
                        server
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(format!("{err:#}")));
                        return;
                    }
                };
                run(server);
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                handle: ServerHandle { sender },
                thread,
            }),
            Ok(Err(err)) => Err(io::Error::other(err)),
            Err(_) => Err(io::Error::other("the server thread died while starting")),
        }
    }

    /// A handle to send commands with.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Sends `command` and waits until it is done.
    pub fn run(&self, command: Command) -> io::Result<()> {
        self.handle.run(command)
    }

    /// Stops the loop and waits for the thread, so nothing of this server outlives the case.
    pub fn stop(self) {
        if let Err(err) = self.handle.run(Command::Stop) {
            tracing::warn!(?err, "stopping the server");
        }
        if self.thread.join().is_err() {
            tracing::error!("the server thread panicked");
        }
    }
}

/// What the command handler needs besides `State`.
struct Plugin {
    /// Clients by the fd of their end of the socket pair.
    clients: HashMap<RawFd, ClientId>,
    running: Rc<Cell<bool>>,
}

struct Running {
    server: Server,
    running: Rc<Cell<bool>>,
}

fn build(channel: Channel<Request>) -> anyhow::Result<Running> {
    // WLCS places each window itself (`position_window_absolute`) and checks input at
    // coordinates relative to that place, at the size the test client chose: windows float.
    let mut config = lockstep_config::Config::default();
    config.layout.new_windows = lockstep_config::NewWindows::Floating;
    let mut server = Server::headless(config, &[OUTPUT])?;
    // WLCS clients look at the seat's capabilities when they bind it, and a case may connect
    // its client before it creates its touch device: offer touch from the start.
    server.state.add_touch();
    let running = Rc::new(Cell::new(true));
    let plugin = RefCell::new(Plugin {
        clients: HashMap::new(),
        running: running.clone(),
    });
    server
        .event_loop
        .handle()
        .insert_source(channel, move |event, _, state| match event {
            Event::Msg(Request { command, done }) => {
                handle(&mut plugin.borrow_mut(), state, command);
                let _ = done.send(());
            }
            Event::Closed => plugin.borrow().running.set(false),
        })
        .map_err(|err| anyhow::anyhow!("cannot watch the command channel: {err}"))?;
    Ok(Running { server, running })
}

fn run(mut running: Running) {
    while running.running.get() {
        if let Err(err) = running.server.dispatch(Some(Duration::from_millis(100))) {
            tracing::error!(?err, "lockstep's event loop failed");
            break;
        }
    }
}

fn handle(plugin: &mut Plugin, state: &mut State, command: Command) {
    let time = state.core.now().as_millis() as u32;
    match command {
        Command::NewClient { stream, client_fd } => {
            match state
                .core
                .display_handle
                .insert_client(stream, Arc::new(ClientState::default()))
            {
                Ok(client) => {
                    plugin.clients.insert(client_fd, client.id());
                }
                Err(err) => tracing::warn!(?err, "cannot add a WLCS client"),
            }
        }
        Command::PositionWindow {
            client_fd,
            surface_id,
            location,
        } => {
            let Some(client) = plugin.clients.get(&client_fd) else {
                tracing::warn!(client_fd, "position_window_absolute for an unknown client");
                return;
            };
            position_window(state, client, surface_id, location);
        }
        Command::PointerMoveTo(location) => state.pointer_motion_to(location, time),
        Command::PointerMoveBy(delta) => state.pointer_motion_by(delta, time),
        Command::PointerButton { button, pressed } => state.pointer_button(button, pressed, time),
        Command::TouchDown { slot, location } => state.touch_down(slot, location, time),
        Command::TouchMove { slot, location } => state.touch_motion(slot, location, time),
        Command::TouchUp { slot } => state.touch_up(slot, time),
        Command::Stop => plugin.running.set(false),
    }
}

/// Moves the toplevel whose wl_surface is `surface_id` of `client` to `location`.
fn position_window(
    state: &mut State,
    client: &ClientId,
    surface_id: u32,
    location: Point<i32, Logical>,
) {
    let window = state
        .core
        .space
        .elements()
        .find(|window| {
            window.wl_surface().is_some_and(|surface| {
                surface.id().protocol_id() == surface_id
                    && surface.client().is_some_and(|c| &c.id() == client)
            })
        })
        .cloned();
    match window {
        Some(window) => {
            // Through the layout, which owns where floating windows are.
            if let Some(id) = lockstep::shell::id_of(&window) {
                let size = window.geometry().size;
                state.core.layout.set_floating_rect(
                    id,
                    lockstep::layout::Rect::new(location.x, location.y, size.w, size.h),
                );
                lockstep::shell::apply_layout(&mut state.core);
            }
            state.core.space.map_element(window, location, false);
            state.refresh_pointer_focus();
            lockstep::frame_clock::queue_redraw_all(&mut state.core);
        }
        None => {
            // WLCS moves layer surfaces too, to test their stacking.
            let surface = state.core.space.outputs().find_map(|output| {
                let map = smithay::desktop::layer_map_for_output(output);
                let found = map.layers().map(|l| l.wl_surface().clone()).find(|s| {
                    s.id().protocol_id() == surface_id
                        && s.client().is_some_and(|c| &c.id() == client)
                });
                found
            });
            let placed = surface.is_some_and(|s| {
                lockstep::handlers::layer_shell::place_at(&mut state.core, &s, location)
            });
            if placed {
                state.refresh_pointer_focus();
            } else {
                tracing::warn!(
                    surface_id,
                    "position_window_absolute: no such mapped window or layer surface"
                );
            }
        }
    }
}
