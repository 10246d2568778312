//! A small wayland-client test client: binds the globals tests need and records events.

use std::{
    collections::HashMap,
    os::{
        fd::{AsFd, OwnedFd},
        unix::net::UnixStream,
    },
};

use wayland_client::{
    protocol::{
        wl_buffer::{self, WlBuffer},
        wl_callback::{self, WlCallback},
        wl_compositor::WlCompositor,
        wl_output::{self, WlOutput},
        wl_registry::{self, WlRegistry},
        wl_seat::{self, WlSeat},
        wl_shm::{self, WlShm},
        wl_shm_pool::WlShmPool,
        wl_subcompositor::WlSubcompositor,
        wl_subsurface::WlSubsurface,
        wl_surface::WlSurface,
    },
    Connection, Dispatch, EventQueue, Proxy, QueueHandle,
};
use wayland_protocols::{
    wp::presentation_time::client::{
        wp_presentation::{self, WpPresentation},
        wp_presentation_feedback::{self, WpPresentationFeedback},
    },
    xdg::shell::client::{
        xdg_popup::{self, XdgPopup},
        xdg_positioner::XdgPositioner,
        xdg_surface::{self, XdgSurface},
        xdg_toplevel::{self, XdgToplevel},
        xdg_wm_base::{self, XdgWmBase},
    },
};

/// A presentation feedback as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// `presented`: time in ns, refresh in ns, sequence.
    Shown {
        time_ns: u128,
        refresh_ns: u32,
        seq: u64,
    },
    /// `discarded`.
    Discarded,
}

/// Everything the client records.
#[derive(Default)]
pub struct ClientData {
    /// Configure events per xdg_surface id: the last serial.
    pub configures: HashMap<u32, u32>,
    /// Toplevel configure sizes per toplevel id.
    pub toplevel_sizes: HashMap<u32, (i32, i32)>,
    /// Popup configure (x, y, w, h) per popup id.
    pub popup_geometry: HashMap<u32, (i32, i32, i32, i32)>,
    /// Frame callback `done` times (ms), in order received.
    pub frame_done: Vec<u32>,
    /// Ids of sync callbacks that fired (ids are reused once a callback is done, so a waiter
    /// removes its id before waiting).
    pub callbacks_done: Vec<u32>,
    /// Presentation feedback, in order received.
    pub presented: Vec<Presented>,
    /// Presentation feedback of feedback objects created with a [`FrameTag`]: (tag, event).
    pub presented_tagged: Vec<(u64, Presented)>,
    /// Buffers the compositor released.
    pub released: Vec<u32>,
    /// Output names seen.
    pub output_names: Vec<String>,
    /// The last wl_output.scale, geometry position and mode size received.
    pub output_scale: Option<i32>,
    pub output_position: Option<(i32, i32)>,
    pub output_mode: Option<(i32, i32)>,
    /// The last xdg_output logical position and size received.
    pub xdg_output_position: Option<(i32, i32)>,
    pub xdg_output_size: Option<(i32, i32)>,
    /// Globals: interface -> (name, version).
    pub globals: HashMap<String, (u32, u32)>,
    /// Data device state (copy/paste tests).
    pub clipboard: crate::data_device::Clipboard,
    /// wl_keyboard.key events: (evdev key code, pressed).
    pub keys: Vec<(u32, bool)>,
    /// The text of each wl_keyboard.keymap received.
    pub keymaps: Vec<String>,
    /// Toplevels that got xdg_toplevel.close, by id.
    pub closed: Vec<u32>,
    /// What the output manager told this client (output-management tests).
    pub output_management: crate::output_management::Seen,
    /// The last xdg_activation token the compositor handed out.
    pub activation_token: Option<String>,
}

/// A connected test client.
pub struct TestClient {
    pub conn: Connection,
    pub queue: EventQueue<ClientData>,
    pub qh: QueueHandle<ClientData>,
    pub data: ClientData,
    pub compositor: WlCompositor,
    pub subcompositor: WlSubcompositor,
    pub shm: WlShm,
    pub wm_base: XdgWmBase,
    pub presentation: WpPresentation,
    /// The seat.
    pub seat: WlSeat,
    /// The first output, when there is one.
    pub output: Option<WlOutput>,
}

impl TestClient {
    /// Connects over `stream` and binds the globals (blocks on the initial roundtrip, so the
    /// caller must keep the server dispatching: see `Fixture::add_client`).
    pub fn connect(stream: UnixStream, mut pump: impl FnMut()) -> Self {
        let conn = Connection::from_socket(stream).expect("connect");
        let display = conn.display();
        let mut queue = conn.new_event_queue::<ClientData>();
        let qh = queue.handle();
        let mut data = ClientData::default();
        // The registry roundtrip, by hand so the server can run in between.
        let registry = display.get_registry(&qh, ());
        let done = display.sync(&qh, ());
        let done_id = done.id().protocol_id();
        data.callbacks_done.retain(|id| *id != done_id);
        let mut tries = 0;
        while !data.callbacks_done.contains(&done_id) {
            pump();
            let _ = conn.flush();
            if let Some(guard) = queue.prepare_read() {
                let _ = guard.read();
            }
            queue.dispatch_pending(&mut data).expect("dispatch");
            tries += 1;
            assert!(tries < 10_000, "initial roundtrip never completed");
        }
        let globals = data.globals.clone();
        let bind = |name: &str, version: u32| -> (u32, u32) {
            let (id, v) = globals
                .get(name)
                .copied()
                .unwrap_or_else(|| panic!("global {name} missing"));
            (id, v.min(version))
        };
        let (id, v) = bind("wl_compositor", 6);
        let compositor = registry.bind::<WlCompositor, _, _>(id, v, &qh, ());
        let (id, v) = bind("wl_subcompositor", 1);
        let subcompositor = registry.bind::<WlSubcompositor, _, _>(id, v, &qh, ());
        let (id, v) = bind("wl_shm", 1);
        let shm = registry.bind::<WlShm, _, _>(id, v, &qh, ());
        let (id, v) = bind("xdg_wm_base", 6);
        let wm_base = registry.bind::<XdgWmBase, _, _>(id, v, &qh, ());
        let (id, v) = bind("wp_presentation", 1);
        let presentation = registry.bind::<WpPresentation, _, _>(id, v, &qh, ());
        let (id, v) = bind("wl_seat", 7);
        let seat = registry.bind::<WlSeat, _, _>(id, v, &qh, ());
        let output = globals
            .get("wl_output")
            .copied()
            .map(|(id, v)| registry.bind::<WlOutput, _, _>(id, v.min(4), &qh, ()));
        Self {
            conn,
            queue,
            qh,
            data,
            compositor,
            subcompositor,
            shm,
            wm_base,
            presentation,
            seat,
            output,
        }
    }

    /// Flushes requests and reads/dispatches whatever events are available, without blocking.
    pub fn pump(&mut self) {
        let _ = self.conn.flush();
        if let Some(guard) = self.queue.prepare_read() {
            let _ = guard.read();
        }
        let _ = self.queue.dispatch_pending(&mut self.data);
    }

    /// The protocol error the compositor sent, if any: (code, interface, message).
    pub fn protocol_error(&self) -> Option<(u32, String, String)> {
        self.conn
            .protocol_error()
            .map(|e| (e.code, e.object_interface, e.message))
    }

    /// Creates an ARGB8888 shm buffer of `w`×`h` filled with `argb`.
    pub fn shm_buffer(&mut self, w: i32, h: i32, argb: u32) -> WlBuffer {
        let fd = memfd(w as usize * h as usize * 4);
        let bytes: Vec<u8> = argb
            .to_le_bytes()
            .iter()
            .copied()
            .cycle()
            .take(w as usize * h as usize * 4)
            .collect();
        rustix::io::write(&fd, &bytes).expect("fill memfd");
        let pool = self.shm.create_pool(fd.as_fd(), w * h * 4, &self.qh, ());
        let buffer = pool.create_buffer(0, w, h, w * 4, wl_shm::Format::Argb8888, &self.qh, ());
        pool.destroy();
        buffer
    }

    /// A toplevel: surface, xdg_surface, xdg_toplevel.
    pub fn toplevel(&mut self) -> Toplevel {
        let surface = self.compositor.create_surface(&self.qh, ());
        let xdg_surface = self.wm_base.get_xdg_surface(&surface, &self.qh, ());
        let toplevel = xdg_surface.get_toplevel(&self.qh, ());
        Toplevel {
            surface,
            xdg_surface,
            toplevel,
        }
    }

    /// A subsurface of `parent`.
    pub fn subsurface(&mut self, parent: &WlSurface) -> (WlSurface, WlSubsurface) {
        let surface = self.compositor.create_surface(&self.qh, ());
        let sub = self
            .subcompositor
            .get_subsurface(&surface, parent, &self.qh, ());
        (surface, sub)
    }

    /// Last configure serial of an xdg_surface.
    pub fn configure_serial(&self, xdg_surface: &XdgSurface) -> Option<u32> {
        self.data
            .configures
            .get(&xdg_surface.id().protocol_id())
            .copied()
    }
}

/// A toplevel's objects.
pub struct Toplevel {
    pub surface: WlSurface,
    pub xdg_surface: XdgSurface,
    #[allow(dead_code)]
    pub toplevel: XdgToplevel,
}

fn memfd(size: usize) -> OwnedFd {
    let fd = rustix::fs::memfd_create("lockstep-test", rustix::fs::MemfdFlags::CLOEXEC)
        .expect("memfd_create");
    rustix::fs::ftruncate(&fd, size as u64).expect("ftruncate");
    fd
}

impl Dispatch<WlRegistry, ()> for ClientData {
    fn event(
        state: &mut Self,
        _registry: &WlRegistry,
        event: wl_registry::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_registry::Event::Global {
            name,
            interface,
            version,
        } = event
        {
            state.globals.entry(interface).or_insert((name, version));
        }
    }
}

impl Dispatch<WlCallback, ()> for ClientData {
    fn event(
        state: &mut Self,
        callback: &WlCallback,
        event: wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            state.callbacks_done.push(callback.id().protocol_id());
        }
    }
}

/// Marks frame callbacks (as opposed to sync callbacks).
pub struct FrameCallback;

impl Dispatch<WlCallback, FrameCallback> for ClientData {
    fn event(
        state: &mut Self,
        _: &WlCallback,
        event: wl_callback::Event,
        _: &FrameCallback,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { callback_data } = event {
            state.frame_done.push(callback_data);
        }
    }
}

impl Dispatch<XdgWmBase, ()> for ClientData {
    fn event(
        _: &mut Self,
        wm_base: &XdgWmBase,
        event: xdg_wm_base::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_wm_base::Event::Ping { serial } = event {
            wm_base.pong(serial);
        }
    }
}

impl Dispatch<XdgSurface, ()> for ClientData {
    fn event(
        state: &mut Self,
        surface: &XdgSurface,
        event: xdg_surface::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = event {
            state.configures.insert(surface.id().protocol_id(), serial);
        }
    }
}

impl Dispatch<XdgToplevel, ()> for ClientData {
    fn event(
        state: &mut Self,
        toplevel: &XdgToplevel,
        event: xdg_toplevel::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            xdg_toplevel::Event::Configure { width, height, .. } => {
                state
                    .toplevel_sizes
                    .insert(toplevel.id().protocol_id(), (width, height));
            }
            xdg_toplevel::Event::Close => state.closed.push(toplevel.id().protocol_id()),
            _ => {}
        }
    }
}

impl Dispatch<XdgPopup, ()> for ClientData {
    fn event(
        state: &mut Self,
        popup: &XdgPopup,
        event: xdg_popup::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_popup::Event::Configure {
            x,
            y,
            width,
            height,
        } = event
        {
            state
                .popup_geometry
                .insert(popup.id().protocol_id(), (x, y, width, height));
        }
    }
}

impl Dispatch<WpPresentation, ()> for ClientData {
    fn event(
        _: &mut Self,
        _: &WpPresentation,
        _: wp_presentation::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<WpPresentationFeedback, ()> for ClientData {
    fn event(
        state: &mut Self,
        _: &WpPresentationFeedback,
        event: wp_presentation_feedback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let Some(presented) = Presented::from_event(event) {
            state.presented.push(presented);
        }
    }
}

impl Presented {
    /// The `presented` or `discarded` event as a value (`None` for `sync_output`).
    pub fn from_event(event: wp_presentation_feedback::Event) -> Option<Self> {
        match event {
            wp_presentation_feedback::Event::Presented {
                tv_sec_hi,
                tv_sec_lo,
                tv_nsec,
                refresh,
                seq_hi,
                seq_lo,
                ..
            } => {
                let secs = ((tv_sec_hi as u64) << 32) | tv_sec_lo as u64;
                Some(Presented::Shown {
                    time_ns: secs as u128 * 1_000_000_000 + tv_nsec as u128,
                    refresh_ns: refresh,
                    seq: ((seq_hi as u64) << 32) | seq_lo as u64,
                })
            }
            wp_presentation_feedback::Event::Discarded => Some(Presented::Discarded),
            _ => None,
        }
    }
}

impl Dispatch<WlBuffer, ()> for ClientData {
    fn event(
        state: &mut Self,
        buffer: &WlBuffer,
        event: wl_buffer::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_buffer::Event::Release = event {
            state.released.push(buffer.id().protocol_id());
        }
    }
}

impl Dispatch<WlOutput, ()> for ClientData {
    fn event(
        state: &mut Self,
        _: &WlOutput,
        event: wl_output::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            wl_output::Event::Name { name } => state.output_names.push(name),
            wl_output::Event::Scale { factor } => state.output_scale = Some(factor),
            wl_output::Event::Geometry { x, y, .. } => state.output_position = Some((x, y)),
            wl_output::Event::Mode { width, height, .. } => {
                state.output_mode = Some((width, height))
            }
            _ => {}
        }
    }
}

impl Dispatch<WlSeat, ()> for ClientData {
    fn event(
        _: &mut Self,
        _: &WlSeat,
        _: wl_seat::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

wayland_client::delegate_noop!(ClientData: ignore WlCompositor);
wayland_client::delegate_noop!(ClientData: ignore WlSubcompositor);
wayland_client::delegate_noop!(ClientData: ignore WlShm);
wayland_client::delegate_noop!(ClientData: ignore WlShmPool);
wayland_client::delegate_noop!(ClientData: ignore WlSurface);
wayland_client::delegate_noop!(ClientData: ignore WlSubsurface);
wayland_client::delegate_noop!(ClientData: ignore XdgPositioner);
wayland_client::delegate_noop!(ClientData: ignore wayland_protocols::wp::keyboard_shortcuts_inhibit::zv1::client::zwp_keyboard_shortcuts_inhibit_manager_v1::ZwpKeyboardShortcutsInhibitManagerV1);
wayland_client::delegate_noop!(ClientData: ignore wayland_protocols::wp::keyboard_shortcuts_inhibit::zv1::client::zwp_keyboard_shortcuts_inhibitor_v1::ZwpKeyboardShortcutsInhibitorV1);
wayland_client::delegate_noop!(ClientData: ignore wayland_protocols::xdg::activation::v1::client::xdg_activation_v1::XdgActivationV1);

impl Dispatch<wayland_protocols::xdg::activation::v1::client::xdg_activation_token_v1::XdgActivationTokenV1, ()> for ClientData {
    fn event(
        state: &mut Self,
        _: &wayland_protocols::xdg::activation::v1::client::xdg_activation_token_v1::XdgActivationTokenV1,
        event: wayland_protocols::xdg::activation::v1::client::xdg_activation_token_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wayland_protocols::xdg::activation::v1::client::xdg_activation_token_v1::Event::Done { token } = event {
            state.activation_token = Some(token);
        }
    }
}

/// User data of a presentation feedback whose event goes to `presented_tagged` with this tag
/// (a benchmark's frame number), so that each commit's feedback is found again.
pub struct FrameTag(pub u64);

impl Dispatch<WpPresentationFeedback, FrameTag> for ClientData {
    fn event(
        state: &mut Self,
        _: &WpPresentationFeedback,
        event: wp_presentation_feedback::Event,
        tag: &FrameTag,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let Some(presented) = Presented::from_event(event) {
            state.presented_tagged.push((tag.0, presented));
        }
    }
}
