//! The in-process client–server fixture: lockstep's real server on the headless backend and
//! real wayland-client clients over socket pairs, all driven from this one thread.

use std::{
    os::unix::net::UnixStream,
    sync::Arc,
    time::{Duration, Instant},
};

use lockstep::{
    backend::{headless::VirtualOutput, Backend},
    ipc::{self, Request, Response, WindowInfo},
    server::Server,
    state::ClientState,
};
use lockstep_render::Frame;
use wayland_client::Proxy;

use crate::client::{TestClient, Toplevel};

/// Index of a client in the fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientId(pub usize);

pub struct Fixture {
    pub server: Server,
    pub clients: Vec<TestClient>,
}

/// 1280×720 at 60 Hz, scale 1.
pub const DEFAULT_OUTPUT: VirtualOutput = VirtualOutput {
    size: (1280, 720),
    refresh_mhz: 60_000,
    scale: 1.0,
    position: None,
};

/// The config most tests run with: the defaults, but new windows float (centred, then
/// cascading) instead of tiling, and without borders.
///
/// Why: these tests check exact pixels (the background right next to a window, too), popup
/// positions, input coordinates and frame pacing of windows whose size the test client
/// picks; they were written against (and are clearer with) bare windows that keep that size
/// at a predictable place. Tiling and borders are what `desktop.rs` tests, with
/// [`Fixture::tiling`].
pub fn floating_config() -> lockstep_config::Config {
    let mut config = lockstep_config::Config::default();
    config.layout.new_windows = lockstep_config::NewWindows::Floating;
    config.layout.border_width = 0;
    config
}

impl Fixture {
    /// A server with one 1280×720@60 output; new windows float (see [`floating_config`]).
    pub fn new() -> Self {
        Self::with_outputs(&[DEFAULT_OUTPUT])
    }

    /// A server with `outputs`; new windows float (see [`floating_config`]).
    pub fn with_outputs(outputs: &[VirtualOutput]) -> Self {
        Self::with_config(floating_config(), outputs)
    }

    /// A server with one 1280×720@60 output and the default config: new windows tile.
    pub fn tiling() -> Self {
        Self::with_config(Default::default(), &[DEFAULT_OUTPUT])
    }

    pub fn with_config(config: lockstep_config::Config, outputs: &[VirtualOutput]) -> Self {
        let server = Server::headless(config, outputs).expect("start server");
        Self {
            server,
            clients: Vec::new(),
        }
    }

    /// A server on the KMS device at `path` (vkms in the VM), opened directly as root,
    /// compositing with pixman.
    pub fn kms(path: &std::path::Path) -> Self {
        let mut config = floating_config();
        config.render.renderer = lockstep_config::Renderer::Pixman;
        Self::kms_with_config(path, config)
    }

    /// [`Fixture::kms`] compositing with GLES (EGL on GBM on the KMS device; in the VM Mesa's
    /// kms_swrast, packed by `vm/test --mesa`).
    pub fn kms_gles(path: &std::path::Path) -> Self {
        let mut config = floating_config();
        config.render.renderer = lockstep_config::Renderer::Gles;
        Self::kms_with_config(path, config)
    }

    /// [`Fixture::kms`] with a config.
    pub fn kms_with_config(path: &std::path::Path, config: lockstep_config::Config) -> Self {
        let dev = lockstep_render::kms::KmsDevice::open(path).expect("open the KMS device");
        let server = Server::kms_on(config, dev).expect("start the KMS server");
        Self {
            server,
            clients: Vec::new(),
        }
    }

    /// Adds an output; returns its name.
    pub fn add_output(&mut self, spec: VirtualOutput) -> String {
        let state = &mut self.server.state;
        match &mut state.backend {
            Backend::Headless(headless) => headless
                .add_output(&mut state.core, spec)
                .expect("add output")
                .name(),
            _ => unreachable!("the fixture runs headless"),
        }
    }

    /// Connects a new client.
    pub fn add_client(&mut self) -> ClientId {
        let (server_end, client_end) = UnixStream::pair().expect("socketpair");
        self.server
            .state
            .core
            .display_handle
            .insert_client(server_end, Arc::new(ClientState::default()))
            .expect("insert client");
        let server = &mut self.server;
        let client = TestClient::connect(client_end, || {
            server.dispatch(Some(Duration::ZERO)).expect("dispatch");
        });
        self.clients.push(client);
        ClientId(self.clients.len() - 1)
    }

    /// Connects a client over `stream`, a connection the server accepts itself (e.g. on a
    /// security context's socket), pumping the server meanwhile.
    pub fn connect_client(&mut self, stream: UnixStream) -> ClientId {
        let server = &mut self.server;
        let client = TestClient::connect(stream, || {
            server.dispatch(Some(Duration::ZERO)).expect("dispatch");
        });
        self.clients.push(client);
        ClientId(self.clients.len() - 1)
    }

    pub fn client(&mut self, id: ClientId) -> &mut TestClient {
        &mut self.clients[id.0]
    }

    /// One round: server (waiting up to 1 ms), then every client.
    pub fn dispatch(&mut self) {
        for c in &mut self.clients {
            let _ = c.conn.flush();
        }
        self.server
            .dispatch(Some(Duration::from_millis(1)))
            .expect("server dispatch");
        for c in &mut self.clients {
            c.pump();
        }
    }

    /// Until the server has processed everything `id` sent and `id` has the answers.
    pub fn roundtrip(&mut self, id: ClientId) {
        let c = &mut self.clients[id.0];
        let cb = c.conn.display().sync(&c.qh, ());
        let cb_id = cb.id().protocol_id();
        c.data.callbacks_done.retain(|id| *id != cb_id);
        let ok = self.wait_until(Duration::from_secs(5), |f| {
            f.clients[id.0].data.callbacks_done.contains(&cb_id)
        });
        assert!(ok, "roundtrip with client {id:?} timed out");
    }

    /// Runs the loop until `pred` holds (true) or `timeout` passes (false).
    pub fn wait_until(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&mut Self) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(self) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            self.dispatch();
        }
    }

    /// Waits for the protocol error client `id` gets; its (code, interface).
    pub fn expect_protocol_error(&mut self, id: ClientId) -> (u32, String) {
        let got = self.wait_until(Duration::from_secs(2), |f| {
            f.clients[id.0].protocol_error().is_some()
        });
        assert!(got, "client {id:?} got no protocol error");
        let (code, interface, _) = self.clients[id.0].protocol_error().unwrap_or_default();
        (code, interface)
    }

    /// Runs the loop for `duration`.
    pub fn run_for(&mut self, duration: Duration) {
        let end = Instant::now() + duration;
        while Instant::now() < end {
            self.dispatch();
        }
    }

    /// Lets pending redraws happen (three refreshes).
    pub fn settle(&mut self) {
        self.run_for(Duration::from_millis(60));
    }

    /// What output `name` shows now.
    pub fn screenshot(&mut self, name: &str) -> Frame {
        let state = &mut self.server.state;
        let output = state.core.output_by_name(name).expect("output exists");
        state
            .backend
            .capture(&mut state.core, &output)
            .expect("capture")
    }

    /// The mapped windows, as IPC reports them.
    pub fn windows(&self) -> Vec<WindowInfo> {
        match ipc::answer(&self.server.state, Request::Windows) {
            Response::Windows(w) => w,
            other => panic!("unexpected answer {other:?}"),
        }
    }

    /// Commits `top`'s surface, waits for the configure that answers it and acks it.
    pub fn commit_and_ack(&mut self, id: ClientId, top: &Toplevel) {
        top.surface.commit();
        self.roundtrip(id);
        let serial = self
            .client(id)
            .configure_serial(&top.xdg_surface)
            .expect("a configure");
        top.xdg_surface.ack_configure(serial);
    }

    /// Creates a toplevel with a `w`×`h` buffer of colour `argb` and waits until it is shown.
    pub fn map_window(&mut self, id: ClientId, w: i32, h: i32, argb: u32) -> Toplevel {
        let before = self.windows().len();
        let top = self.client(id).toplevel();
        self.commit_and_ack(id, &top);
        let buffer = self.client(id).shm_buffer(w, h, argb);
        top.surface.attach(Some(&buffer), 0, 0);
        top.surface.damage_buffer(0, 0, w, h);
        top.surface.commit();
        self.roundtrip(id);
        assert!(
            self.wait_until(Duration::from_secs(2), |f| f.windows().len() > before),
            "window never mapped"
        );
        self.settle();
        top
    }
}

/// The colour of pixel `(x, y)` as 0xRRGGBB.
pub fn rgb(frame: &Frame, x: i32, y: i32) -> u32 {
    let [r, g, b, _] = frame
        .pixel(x as u32, y as u32)
        .unwrap_or_else(|| panic!("({x}, {y}) is outside the frame"));
    (r as u32) << 16 | (g as u32) << 8 | b as u32
}

/// Sends request `opcode` of `proxy` with raw `args`: values a typed request cannot carry
/// (an enum value outside its enum), for protocol-error tests.
pub fn send_raw(
    proxy: &impl Proxy,
    opcode: u16,
    args: Vec<
        wayland_client::backend::protocol::Argument<
            wayland_client::backend::ObjectId,
            std::os::fd::RawFd,
        >,
    >,
) {
    let msg = wayland_client::backend::protocol::Message {
        sender_id: proxy.id(),
        opcode,
        args: args.into_iter().collect(),
    };
    proxy
        .backend()
        .upgrade()
        .expect("connection alive")
        .send_request(msg, None, None)
        .expect("send the raw request");
}
