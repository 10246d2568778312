//! The compositor's state: `State { backend, core }`.
//!
//! `Core` holds everything that does not depend on how pixels reach a screen: the Wayland
//! display, protocol states, the window space, the seat, per-output redraw bookkeeping. The
//! `Backend` (headless or winit) owns renderers and output targets. Keeping the two apart lets
//! backend methods take `&mut Core` while the backend itself is borrowed mutably (the split
//! niri uses), and keeps protocol handlers free of backend details.
//!
//! Everything runs on one calloop event loop whose shared data is `State`.

use std::{
    collections::HashMap,
    ffi::OsString,
    time::{Duration, Instant},
};

use smithay::{
    desktop::{PopupManager, Space, Window},
    input::{pointer::CursorImageStatus, Seat, SeatState},
    output::Output,
    reexports::{
        calloop::{generic::Generic, Interest, LoopHandle, LoopSignal, Mode, PostAction},
        wayland_server::{
            backend::{ClientData, ClientId, DisconnectReason},
            Display, DisplayHandle,
        },
    },
    utils::{Clock, Logical, Monotonic, Point},
    wayland::{
        compositor::{CompositorClientState, CompositorState},
        dmabuf::{DmabufGlobal, DmabufState},
        output::OutputManagerState,
        presentation::PresentationState,
        selection::data_device::DataDeviceState,
        shell::xdg::{decoration::XdgDecorationState, XdgShellState},
        shm::ShmState,
        viewporter::ViewporterState,
    },
};
use tracing::warn;

use lockstep_config::Config;
use lockstep_protocols::wlr_screencopy::ScreencopyManagerState;

use crate::{backend::Backend, frame_clock::RedrawState, handlers::screencopy::PendingScreencopy};

/// The calloop shared data: backend and core, split so both can be borrowed at once.
pub struct State {
    /// How frames reach a screen (or memory).
    pub backend: Backend,
    /// Everything else.
    pub core: Core,
}

/// Per-client data smithay needs, plus a name for logs.
#[derive(Default)]
pub struct ClientState {
    /// smithay's per-client compositor state (commit queues).
    pub compositor_state: CompositorClientState,
    /// The security context the client connected through (a sandbox), if any: such clients
    /// do not see privileged globals (`handlers/security_context.rs`).
    pub security_context: Option<smithay::wayland::security_context::SecurityContext>,
    /// How many objects it holds, counted now and then (`census.rs`).
    pub census: crate::census::ObjectCensus,
    /// Which connection it is, in the order clients connected (`msg clients`: one process
    /// may hold several connections).
    pub connection: Connection,
}

/// The number of a client connection, counted from 1 since lockstep started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Connection(pub u64);

impl Default for Connection {
    /// The next number.
    fn default() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Connection(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

impl ClientData for ClientState {
    fn initialized(&self, client_id: ClientId) {
        tracing::debug!(?client_id, "client connected");
    }
    fn disconnected(&self, client_id: ClientId, reason: DisconnectReason) {
        match reason {
            DisconnectReason::ConnectionClosed => {
                tracing::debug!(?client_id, "client disconnected")
            }
            DisconnectReason::ProtocolError(err) => {
                warn!(client = ?client_id, code = err.code, object = %err.object_interface, message = %err.message, "client disconnected after a protocol error")
            }
        }
    }
}

/// Bookkeeping lockstep keeps for each output.
#[derive(Debug)]
pub struct OutputData {
    /// Where the output's redraw cycle stands.
    pub redraw: RedrawState,
    /// Refresh interval from the output's mode.
    pub refresh: Duration,
    /// Presentation time of the last frame shown (monotonic clock).
    pub last_presentation: Option<Duration>,
    /// Number of frames presented so far (wp_presentation's `seq`).
    pub sequence: u64,
    /// Frames that were rendered (had damage); for IPC and tests.
    pub frames_rendered: u64,
    /// Whether page flips pace this output (KMS) rather than the frame-slot timer.
    pub flip_paced: bool,
    /// How long the last redraws of a flip-paced output took from their timer's due time
    /// to the commit: where its next redraw starts before the vblank (`frame_clock.rs`).
    pub render_times: crate::frame_clock::RenderTimes,
    /// Whether the display is powered (wlr-output-power-management, the `power-outputs`
    /// action): an output that is off draws and commits nothing, but keeps its place.
    pub powered: bool,
    /// The gamma ramps a client set (wlr-gamma-control), `None` for the default.
    pub gamma: Option<Vec<u16>>,
}

/// Everything but the backend.
pub struct Core {
    /// Handle to the Wayland display.
    pub display_handle: DisplayHandle,
    /// Handle to the event loop, to add sources.
    pub loop_handle: LoopHandle<'static, State>,
    /// Stops the event loop.
    pub loop_signal: LoopSignal,
    /// The configuration in force.
    pub config: Config,
    /// The file the config came from (`--config`), `None` for the default path; what the
    /// reload action reads.
    pub config_path: Option<std::path::PathBuf>,
    /// Key bindings compiled from the config.
    pub bindings: crate::bindings::Bindings,
    /// The keyboard focus was last set by [`crate::shell::sync_forced_focus`] (a lock
    /// surface or an exclusive layer surface): when that ends, it goes back to the layout's.
    pub focus_forced: bool,
    /// A config reload is scheduled (the file changed; `config_watch.rs`).
    pub config_reload_pending: bool,
    /// `lockstep msg events` listeners.
    pub events: crate::events::EventStream,
    /// The Wayland socket name clients connect to (empty when only socket pairs are used).
    pub socket_name: Option<OsString>,
    /// When the compositor started.
    pub start_time: Instant,
    /// Monotonic clock used for frame callbacks and presentation times.
    pub clock: Clock<Monotonic>,

    /// Windows and outputs laid out in one logical space.
    pub space: Space<Window>,
    /// xdg popups.
    pub popups: PopupManager,
    /// Per-output bookkeeping, keyed by output name.
    pub outputs: HashMap<String, OutputData>,

    /// wl_compositor / wl_subcompositor.
    pub compositor_state: CompositorState,
    /// xdg_wm_base.
    pub xdg_shell_state: XdgShellState,
    /// zxdg_decoration_manager_v1.
    pub xdg_decoration_state: XdgDecorationState,
    /// wl_shm.
    pub shm_state: ShmState,
    /// zwp_linux_dmabuf_v1 (absent until the backend knows its formats).
    pub dmabuf: Option<(DmabufState, DmabufGlobal)>,
    /// wl_output (smithay creates one global per output).
    pub output_manager_state: OutputManagerState,
    /// zxdg_output_manager_v1 (lockstep's own: smithay 0.7's leaks, see the module).
    pub xdg_output: lockstep_protocols::xdg_output::XdgOutputState,
    /// wl_seat.
    pub seat_state: SeatState<State>,
    /// The one seat.
    pub seat: Seat<State>,
    /// wl_data_device_manager.
    pub data_device_state: DataDeviceState,
    /// wp_presentation.
    pub presentation_state: PresentationState,
    /// wp_viewporter.
    pub viewporter_state: ViewporterState,
    /// zwlr_screencopy_manager_v1.
    pub screencopy_state: ScreencopyManagerState,
    /// Screencopy requests waiting for the next frame with damage.
    pub pending_screencopies: Vec<PendingScreencopy>,

    /// What the pointer should look like.
    pub cursor_status: CursorImageStatus,
    /// Whether any pointer input has happened (headless outputs show no cursor before that).
    pub pointer_seen: bool,
    /// Workspaces, tiling, floating: where every window goes (see `layout/`).
    pub layout: crate::layout::Layout,
    /// Every toplevel the layout knows (on any workspace), by its layout id. The space holds
    /// only the shown ones.
    pub windows: std::collections::BTreeMap<crate::layout::WindowId, Window>,
    /// The last window id handed out.
    pub next_window_id: u64,
    /// The layout changed: the keyboard focus should follow its focused window after this
    /// dispatch.
    pub focus_dirty: bool,
    /// linux-drm-syncobj-v1, when explicit sync is on.
    pub drm_syncobj: Option<lockstep_protocols::linux_drm_syncobj_v1::DrmSyncobjState>,
    /// Whether explicit sync is on, and why (not).
    pub explicit_sync: crate::handlers::drm_syncobj::ExplicitSyncStatus,
    /// Commits held until their acquire point signals.
    pub acquire_waits: crate::handlers::drm_syncobj::AcquireWaits,
    /// Client validation mode's report.
    pub sync_validation: crate::sync_validation::SyncValidation,
    /// Release points waiting for an asynchronous renderer to finish a frame.
    pub release_queue: Option<lockstep_protocols::linux_drm_syncobj_v1::ReleaseQueue>,
    /// Toplevels that have no buffer yet (or unmapped themselves).
    pub unmapped: Vec<Window>,
    /// A window that should get focus once the current dispatch is over.
    pub focus_request: Option<Window>,
    /// A layer surface that should get the keyboard once the current dispatch is over (an
    /// on-demand one that just mapped).
    pub layer_focus_request:
        Option<smithay::reexports::wayland_server::protocol::wl_surface::WlSurface>,
    /// Desktop protocol globals (selections, activation, input methods, ...).
    pub protocols: crate::handlers::Protocols,
    /// Objects one client may hold before it is disconnected (`census.rs`).
    pub max_objects_per_client: u64,
    /// What each client makes lockstep hold, for `[limits]` and `msg clients`
    /// (`client_memory.rs`).
    pub memory: crate::client_memory::MemoryBook,
    /// What lockstep shows on screen itself (the config error banner, `notice.rs`).
    pub notice: crate::notice::Notice,
    /// The surface whose pointer constraint is active (`handlers/pointer_constraints.rs`).
    pub active_constraint:
        Option<smithay::reexports::wayland_server::protocol::wl_surface::WlSurface>,
    /// Xwayland on demand and its X11 windows (`xwayland/`).
    pub xwayland: crate::xwayland::XwaylandState,
}

impl Core {
    /// Creates the core state and its globals on `display`.
    pub fn new(
        display: &Display<State>,
        loop_handle: LoopHandle<'static, State>,
        loop_signal: LoopSignal,
        config: Config,
    ) -> anyhow::Result<Self> {
        let dh = display.handle();
        let clock = Clock::<Monotonic>::new();
        let compositor_state = CompositorState::new::<State>(&dh);
        let xdg_shell_state = XdgShellState::new::<State>(&dh);
        let xdg_decoration_state = XdgDecorationState::new::<State>(&dh);
        let shm_state = ShmState::new::<State>(&dh, vec![]);
        crate::handlers::shm::account_shm_global(&dh, &shm_state);
        let output_manager_state = OutputManagerState::new();
        let xdg_output = lockstep_protocols::xdg_output::XdgOutputState::new::<State>(&dh);
        let mut seat_state = SeatState::new();
        let data_device_state = DataDeviceState::new::<State>(&dh);
        let presentation_state = PresentationState::new::<State>(&dh, clock.id() as u32);
        let viewporter_state = ViewporterState::new::<State>(&dh);
        let screencopy_state = ScreencopyManagerState::new::<State, _>(
            &dh,
            crate::handlers::security_context::may_use_privileged,
        );

        let mut seat: Seat<State> = seat_state.new_wl_seat(&dh, "seat0");
        let kb = &config.keyboard;
        check_keymap(kb)?;
        seat.add_keyboard(
            xkb_config(kb),
            clamp_i32(kb.repeat_delay),
            clamp_i32(kb.repeat_rate),
        )
        .map_err(|err| {
            anyhow::anyhow!(
                "the keyboard layout in the config (layout {:?}, variant {:?}, options {:?}) \
                     does not compile with xkbcommon: {err:?}; check the names against \
                     /usr/share/X11/xkb/rules/evdev.lst",
                kb.layout,
                kb.variant,
                kb.options
            )
        })?;
        seat.add_pointer();

        let validation = config.explicit_sync.validation;
        let mut protocols = crate::handlers::Protocols::new(&dh, loop_handle.clone());
        protocols.selection.anchor =
            crate::handlers::selection_anchor::SelectionAnchor::connect(&dh, &loop_handle);
        let layout = crate::layout::Layout::new(layout_config(&config));
        let bindings = crate::bindings::Bindings::new(&config);
        Ok(Self {
            display_handle: dh.clone(),
            loop_handle,
            loop_signal,
            config,
            config_path: None,
            bindings,
            focus_forced: false,
            config_reload_pending: false,
            events: Default::default(),
            socket_name: None,
            start_time: Instant::now(),
            clock,
            space: Space::default(),
            popups: PopupManager::default(),
            outputs: HashMap::new(),
            compositor_state,
            xdg_shell_state,
            xdg_decoration_state,
            shm_state,
            dmabuf: None,
            output_manager_state,
            xdg_output,
            seat_state,
            seat,
            data_device_state,
            presentation_state,
            viewporter_state,
            screencopy_state,
            pending_screencopies: Vec::new(),
            cursor_status: CursorImageStatus::default_named(),
            pointer_seen: false,
            layout,
            windows: Default::default(),
            next_window_id: 0,
            focus_dirty: false,
            drm_syncobj: None,
            explicit_sync: crate::handlers::drm_syncobj::ExplicitSyncStatus {
                enabled: false,
                device: None,
                reason: "not initialised yet".into(),
            },
            acquire_waits: Default::default(),
            sync_validation: crate::sync_validation::SyncValidation::new(validation, dh.clone()),
            release_queue: None,
            unmapped: Vec::new(),
            focus_request: None,
            layer_focus_request: None,
            protocols,
            max_objects_per_client: crate::census::MAX_OBJECTS_PER_CLIENT,
            memory: Default::default(),
            notice: Default::default(),
            active_constraint: None,
            xwayland: crate::xwayland::XwaylandState::new(&dh),
        })
    }

    /// Listens on a Wayland socket (`name`, or the first free `wayland-N`) and accepts clients
    /// on the event loop.
    pub fn listen(&mut self, name: Option<&str>) -> anyhow::Result<OsString> {
        let socket_name = crate::socket::listen(&self.loop_handle, name)?;
        self.socket_name = Some(socket_name.clone());
        Ok(socket_name)
    }

    /// Adds `output` to the space at `position` with bookkeeping for its frame clock, and to
    /// the layout.
    pub fn add_output(&mut self, output: &Output, position: Point<i32, Logical>) {
        let refresh = output
            .current_mode()
            .map(|mode| refresh_interval(mode.refresh))
            .unwrap_or(Duration::from_millis(16));
        self.space.map_output(output, position);
        self.outputs.insert(
            output.name(),
            OutputData {
                redraw: RedrawState::Idle,
                refresh,
                last_presentation: None,
                sequence: 0,
                frames_rendered: 0,
                flip_paced: false,
                render_times: Default::default(),
                powered: true,
                gamma: None,
            },
        );
        crate::shell::sync_outputs(self);
    }

    /// Removes `output` from the space and the layout (its windows move to another output).
    pub fn remove_output(&mut self, output: &Output) {
        self.protocols.output_power.output_removed(output);
        self.protocols.gamma_control.output_removed(output);
        crate::handlers::layer_shell::close_layers_of(output);
        self.space.unmap_output(output);
        self.outputs.remove(&output.name());
        crate::shell::sync_outputs(self);
    }

    /// Where a new output goes by default: right of all others (0 when there is none).
    pub fn outputs_right_edge(&self) -> i32 {
        self.space
            .outputs()
            .filter_map(|o| self.space.output_geometry(o))
            .map(|g| g.loc.x + g.size.w)
            .max()
            .unwrap_or(0)
    }

    /// The output with `name`.
    pub fn output_by_name(&self, name: &str) -> Option<Output> {
        self.space.outputs().find(|o| o.name() == name).cloned()
    }

    /// The current monotonic time, as wp_presentation and frame callbacks use it.
    pub fn now(&self) -> Duration {
        self.clock.now().into()
    }
}

/// The layout settings of `config`.
pub fn layout_config(config: &Config) -> crate::layout::LayoutConfig {
    let layout = &config.layout;
    crate::layout::LayoutConfig {
        gaps: i32::try_from(layout.gaps).unwrap_or(0),
        border_width: i32::try_from(layout.border_width).unwrap_or(0),
        master_ratio: layout.master_ratio,
        new_windows_float: layout.new_windows == lockstep_config::NewWindows::Floating,
    }
}

/// The refresh interval of a mode given in millihertz; a zero or absurd rate means 60 Hz.
pub fn refresh_interval(millihertz: i32) -> Duration {
    if millihertz <= 0 {
        return Duration::from_nanos(1_000_000_000_000 / 60_000);
    }
    Duration::from_nanos(1_000_000_000_000 / millihertz as u64)
}

/// Inserts the display into the event loop so client requests are dispatched.
pub fn insert_display(
    loop_handle: &LoopHandle<'static, State>,
    display: Display<State>,
) -> anyhow::Result<()> {
    loop_handle
        .insert_source(
            Generic::new(display, Interest::READ, Mode::Level),
            |_, display, state| {
                // SAFETY: the display is not dropped while the source exists; calloop only hands
                // us a mutable reference for the duration of this callback.
                let display = unsafe { display.get_mut() };
                crate::dispatch::dispatch_clients_guarded(display, state);
                Ok(PostAction::Continue)
            },
        )
        .map_err(|err| anyhow::anyhow!("cannot watch the Wayland display: {err}"))?;
    Ok(())
}

/// The xkb settings of the `[keyboard]` section (at start and on reload).
pub(crate) fn xkb_config(
    kb: &lockstep_config::KeyboardConfig,
) -> smithay::input::keyboard::XkbConfig<'_> {
    smithay::input::keyboard::XkbConfig {
        rules: "",
        model: &kb.model,
        layout: &kb.layout,
        variant: &kb.variant,
        options: (!kb.options.is_empty()).then(|| kb.options.clone()),
    }
}

pub(crate) fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Compiles the configured keymap once before smithay does, so a bad layout name or a machine
/// without xkb data gives an error that says what to do (smithay crashes on a keymap that
/// does not compile when the xkb data is missing).
pub(crate) fn check_keymap(kb: &lockstep_config::KeyboardConfig) -> anyhow::Result<()> {
    use smithay::input::keyboard::xkb;
    for (key, value) in [
        ("layout", &kb.layout),
        ("variant", &kb.variant),
        ("options", &kb.options),
        ("model", &kb.model),
    ] {
        if value.contains('\0') {
            anyhow::bail!("[keyboard] {key} contains a NUL character");
        }
    }
    // libxkbcommon crashes (rather than failing) when it has no data to include from.
    let root = std::env::var_os("XKB_CONFIG_ROOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/share/X11/xkb".into());
    if !root.join("rules").is_dir() {
        anyhow::bail!(
            "no xkb keyboard data at {} (no rules/ directory). Install it with \
             `apt-get install xkb-data`, or point XKB_CONFIG_ROOT at a copy",
            root.display()
        );
    }
    let context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
    let options = (!kb.options.is_empty()).then(|| kb.options.clone());
    let keymap = xkb::Keymap::new_from_names(
        &context,
        "",
        &kb.model,
        &kb.layout,
        &kb.variant,
        options,
        xkb::KEYMAP_COMPILE_NO_FLAGS,
    );
    if keymap.is_none() {
        anyhow::bail!(
            "the keymap (layout {:?}, variant {:?}, options {:?}, model {:?}) does not compile. \
             Is xkb-data installed (apt-get install xkb-data; XKB_CONFIG_ROOT overrides \
             /usr/share/X11/xkb)? Are the names in [keyboard] right (see \
             /usr/share/X11/xkb/rules/evdev.lst)?",
            kb.layout,
            kb.variant,
            kb.options,
            kb.model
        );
    }
    Ok(())
}
