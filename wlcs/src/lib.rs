//! lockstep as a WLCS plugin: Canonical's Wayland Conformance Test Suite run against
//! lockstep's real server.
//!
//! WLCS (Debian's runner is `/usr/lib/x86_64-linux-gnu/wlcs/wlcs`) `dlopen()`s this library,
//! looks up the `wlcs_server_integration` symbol and, for each test case, creates a display
//! server, starts it, connects clients to it and injects pointer and touch input through the
//! hooks here. The cases are real Wayland clients written by people who are not us, so they
//! tell us where lockstep departs from the protocols.
//!
//! How it is put together:
//! - The FFI surface (C structs, `extern "C"` trampolines that catch panics so none crosses
//!   into the C++ runner) comes from the `wlcs` crate; this crate implements its [`Wlcs`],
//!   [`wlcs::Pointer`] and [`wlcs::Touch`] traits.
//! - [`server`] runs lockstep's own [`lockstep::server::Server`] on the headless (pixman)
//!   backend in a thread of its own: the same event loop, protocol handlers, frame clock and
//!   input paths (`State::pointer_motion_to`, `pointer_button`, `touch_down`, …) as the
//!   binary. WLCS calls the hooks from its own threads, so every hook becomes a
//!   [`server::Command`] sent over a calloop channel; the hook then waits until the server
//!   thread has carried it out, so a test's next request never overtakes its input.
//!
//! Run it with `wlcs/run` (the pass-list) or `wlcs/run --full` (every case, for
//! CONFORMANCE.md). Set `LOCKSTEP_WLCS_LOG=debug` to see the server's log on stderr.

#![warn(missing_docs)]

pub mod server;

use std::{
    io,
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::net::UnixStream,
    },
    sync::atomic::{AtomicU32, Ordering},
};

use smithay::utils::{Logical, Point};
use wayland_sys::{
    client::{wl_display, wl_proxy},
    common::{wl_fixed_t, wl_fixed_to_double},
    ffi_dispatch,
};
use wlcs::{
    extension_list,
    ffi_display_server_api::{
        WlcsExtensionDescriptor, WlcsIntegrationDescriptor, WlcsServerIntegration,
    },
    ffi_wrappers::wlcs_server,
    wlcs_server_integration, Wlcs,
};

use crate::server::{Command, ServerHandle, ServerThread};

wlcs_server_integration!(LockstepWlcs);

/// The globals lockstep offers, at the versions it offers them. WLCS skips the cases that need
/// a protocol missing here (zxdg_shell_v6, wl_shell, layer-shell, …), so this must list exactly
/// what `Core::new` and the headless backend create.
static EXTENSIONS: &[WlcsExtensionDescriptor] = extension_list!(
    ("wl_compositor", 5),
    ("wl_subcompositor", 1),
    ("wl_shm", 2),
    ("wl_data_device_manager", 3),
    ("wl_seat", 9),
    ("wl_output", 4),
    ("xdg_wm_base", 6),
    ("zxdg_decoration_manager_v1", 1),
    ("zxdg_output_manager_v1", 3),
    ("wp_viewporter", 1),
    ("wp_presentation", 2),
    ("zwp_linux_dmabuf_v1", 3),
    ("zwlr_screencopy_manager_v1", 3),
    ("zwp_pointer_constraints_v1", 1),
    ("zwp_relative_pointer_manager_v1", 1),
    ("zwlr_foreign_toplevel_manager_v1", 3),
    ("ext_foreign_toplevel_list_v1", 1),
    ("zwlr_virtual_pointer_manager_v1", 2),
    ("zwlr_layer_shell_v1", 4),
    ("ext_session_lock_manager_v1", 1),
);

static DESCRIPTOR: WlcsIntegrationDescriptor = WlcsIntegrationDescriptor {
    version: 1,
    num_extensions: EXTENSIONS.len(),
    supported_extensions: EXTENSIONS.as_ptr(),
};

/// Touch devices each drive one touch point; its slot is the device's number.
static NEXT_DEVICE: AtomicU32 = AtomicU32::new(0);

/// One WLCS display server: lockstep running in its thread between `start` and `stop`.
pub struct LockstepWlcs {
    server: Option<ServerThread>,
}

impl LockstepWlcs {
    /// Sends `command` to the running server and waits until it has been carried out.
    fn run(&self, command: Command) -> io::Result<()> {
        match &self.server {
            Some(server) => server.run(command),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the WLCS display server was not started",
            )),
        }
    }
}

impl Wlcs for LockstepWlcs {
    type Pointer = PointerDevice;
    type Touch = TouchDevice;

    fn new() -> Self {
        init_logging();
        Self { server: None }
    }

    fn start(&mut self) {
        match ServerThread::start() {
            Ok(server) => self.server = Some(server),
            Err(err) => tracing::error!(?err, "lockstep did not start"),
        }
    }

    fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    fn create_client_socket(&self) -> io::Result<OwnedFd> {
        let (client, server) = UnixStream::pair()?;
        let client = OwnedFd::from(client);
        // The client's wl_display will use exactly this fd, so `position_window_absolute` can
        // tell the client by `wl_display_get_fd`.
        self.run(Command::NewClient {
            stream: server,
            client_fd: client.as_raw_fd(),
        })?;
        Ok(client)
    }

    fn position_window_absolute(
        &self,
        display: *mut wl_display,
        surface: *mut wl_proxy,
        x: i32,
        y: i32,
    ) {
        if display.is_null() || surface.is_null() {
            return;
        }
        // SAFETY: WLCS passes the live client-side wl_display and wl_surface proxy of one of
        // its clients (checked non-null above); both functions only read them. libwayland-client
        // is the runner's own (wayland-sys dlopen()s the already loaded library, or links it).
        let (client_fd, surface_id) = unsafe {
            (
                ffi_dispatch!(
                    wayland_sys::client::wayland_client_handle(),
                    wl_display_get_fd,
                    display
                ),
                ffi_dispatch!(
                    wayland_sys::client::wayland_client_handle(),
                    wl_proxy_get_id,
                    surface
                ),
            )
        };
        let result = self.run(Command::PositionWindow {
            client_fd,
            surface_id,
            location: (x, y).into(),
        });
        if let Err(err) = result {
            tracing::warn!(?err, "position_window_absolute failed");
        }
    }

    fn create_pointer(&mut self) -> Option<PointerDevice> {
        let server = self.server.as_ref()?.handle();
        Some(PointerDevice { server })
    }

    fn create_touch(&mut self) -> Option<TouchDevice> {
        // The seat has offered touch since the server started (see `server::build`).
        let server = self.server.as_ref()?.handle();
        Some(TouchDevice {
            server,
            slot: NEXT_DEVICE.fetch_add(1, Ordering::Relaxed),
        })
    }

    fn get_descriptor(&self) -> &WlcsIntegrationDescriptor {
        &DESCRIPTOR
    }
}

fn point(x: wl_fixed_t, y: wl_fixed_t) -> Point<f64, Logical> {
    (wl_fixed_to_double(x), wl_fixed_to_double(y)).into()
}

/// Touch coordinates. WlcsTouch's header declares them `wl_fixed_t`, but the runner
/// (`TouchDevice::down_at(int x, int y)` in WLCS's in_process_server.cpp, 1.5.0 and later)
/// passes whole pixels unconverted, so they are taken as integers.
fn touch_point(x: wl_fixed_t, y: wl_fixed_t) -> Point<f64, Logical> {
    (f64::from(x), f64::from(y)).into()
}

fn log_failure(what: &str, result: io::Result<()>) {
    if let Err(err) = result {
        tracing::warn!(?err, "{what} failed");
    }
}

/// A fake pointer: moves the seat's one pointer.
pub struct PointerDevice {
    server: ServerHandle,
}

impl wlcs::Pointer for PointerDevice {
    fn move_absolute(&mut self, x: wl_fixed_t, y: wl_fixed_t) {
        log_failure(
            "pointer move",
            self.server.run(Command::PointerMoveTo(point(x, y))),
        );
    }

    fn move_relative(&mut self, dx: wl_fixed_t, dy: wl_fixed_t) {
        log_failure(
            "pointer move",
            self.server.run(Command::PointerMoveBy(point(dx, dy))),
        );
    }

    fn button_up(&mut self, button: i32) {
        log_failure(
            "button up",
            self.server.run(Command::PointerButton {
                button: button as u32,
                pressed: false,
            }),
        );
    }

    fn button_down(&mut self, button: i32) {
        log_failure(
            "button down",
            self.server.run(Command::PointerButton {
                button: button as u32,
                pressed: true,
            }),
        );
    }
}

/// A fake touchscreen with one touch point.
pub struct TouchDevice {
    server: ServerHandle,
    slot: u32,
}

impl wlcs::Touch for TouchDevice {
    fn touch_down(&mut self, x: wl_fixed_t, y: wl_fixed_t) {
        log_failure(
            "touch down",
            self.server.run(Command::TouchDown {
                slot: self.slot,
                location: touch_point(x, y),
            }),
        );
    }

    fn touch_move(&mut self, x: wl_fixed_t, y: wl_fixed_t) {
        log_failure(
            "touch move",
            self.server.run(Command::TouchMove {
                slot: self.slot,
                location: touch_point(x, y),
            }),
        );
    }

    fn touch_up(&mut self) {
        log_failure(
            "touch up",
            self.server.run(Command::TouchUp { slot: self.slot }),
        );
    }
}

/// Logs to stderr when `LOCKSTEP_WLCS_LOG` is set (an env-filter such as `debug`); silent
/// otherwise, since WLCS's own output is what the runner reads.
fn init_logging() {
    let Ok(filter) = std::env::var("LOCKSTEP_WLCS_LOG") else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}
