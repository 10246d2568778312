//! Putting it together: event loop, display, state, backend.
//!
//! ```no_run
//! use lockstep::{backend::headless::VirtualOutput, server::Server};
//! let mut server = Server::headless(Default::default(), &[VirtualOutput::default()]).unwrap();
//! server.state.core.listen(Some("wayland-test")).unwrap();
//! loop {
//!     server.dispatch(None).unwrap();
//! }
//! ```

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use lockstep_config::Config;
use smithay::reexports::{calloop::EventLoop, wayland_server::Display};
use tracing::{error, info, warn};

use crate::{
    backend::{
        headless::{Headless, VirtualOutput},
        kms::Kms,
        libinput::init_input,
        session::{kms_device_candidates, DrmHotplug, KmsSession, SessionChange},
        winit::Winit,
        Backend,
    },
    state::{insert_display, Core, State},
};

/// A running compositor: its event loop and state.
pub struct Server {
    /// The one event loop.
    pub event_loop: EventLoop<'static, State>,
    /// Backend and core.
    pub state: State,
}

impl Server {
    fn core(config: Config) -> Result<(EventLoop<'static, State>, Display<State>, Core)> {
        crate::socket::raise_fd_limit();
        let event_loop: EventLoop<'static, State> =
            EventLoop::try_new().context("cannot create the event loop")?;
        let display: Display<State> =
            Display::new().context("cannot create the Wayland display")?;
        let core = Core::new(
            &display,
            event_loop.handle(),
            event_loop.get_signal(),
            config,
        )?;
        Ok((event_loop, display, core))
    }

    /// A compositor on the headless backend with `outputs` (at least one is added).
    pub fn headless(config: Config, outputs: &[VirtualOutput]) -> Result<Self> {
        let (event_loop, display, mut core) = Self::core(config)?;
        let mut headless = Headless::new(&core.config.cursor.theme, core.config.cursor.size)?;
        core.shm_state.update_formats(headless.shm_formats());
        crate::handlers::dmabuf::create_dmabuf_global(&mut core, headless.dmabuf_formats(), None);
        let default = [VirtualOutput::default()];
        let outputs = if outputs.is_empty() {
            &default[..]
        } else {
            outputs
        };
        for spec in outputs {
            headless.add_output(&mut core, *spec)?;
        }
        // pixman has finished reading client buffers when a frame call returns.
        crate::handlers::drm_syncobj::init(&mut core, false);
        insert_display(&event_loop.handle(), display)?;
        Ok(Self {
            event_loop,
            state: State {
                backend: Backend::Headless(headless),
                core,
            },
        })
    }

    /// A compositor in a window of the host display (X11 or Wayland).
    pub fn winit(config: Config) -> Result<Self> {
        let (event_loop, display, mut core) = Self::core(config)?;
        let winit = Winit::new(&mut core, "lockstep")?;
        // GLES reads buffers asynchronously: release after the next frame.
        crate::handlers::drm_syncobj::init(&mut core, true);
        insert_display(&event_loop.handle(), display)?;
        Ok(Self {
            event_loop,
            state: State {
                backend: Backend::Winit(Box::new(winit)),
                core,
            },
        })
    }

    /// A compositor on a TTY: a session (seatd/logind, else direct as root), the first KMS
    /// device that has a connected display, and libinput.
    pub fn kms(config: Config) -> Result<Self> {
        let (event_loop, display, mut core) = Self::core(config)?;
        let mut session = KmsSession::new(&core.loop_handle, |state, change| {
            if let Backend::Kms(kms) = &mut state.backend {
                match change {
                    SessionChange::Paused => kms.pause(),
                    SessionChange::Resumed => kms.resume(&mut state.core),
                }
            }
        })?;
        let candidates = kms_device_candidates();
        if candidates.is_empty() {
            return Err(anyhow!(
                "no KMS device: /dev/dri has no card with connectors. On a machine without a \
                 display use --backend headless; in a desktop session use --backend winit"
            ));
        }
        let mut errors = Vec::new();
        let mut kms = None;
        for path in candidates {
            let opened = session
                .open(&path)
                .and_then(|fd| Ok(lockstep_render::kms::KmsDevice::from_fd(fd, &path)?))
                .and_then(|dev| Kms::new(&mut core, dev));
            match opened {
                Ok(k) => {
                    kms = Some(k);
                    break;
                }
                Err(err) => errors.push(format!("{}: {err:#}", path.display())),
            }
        }
        let Some(mut kms) = kms else {
            return Err(anyhow!(
                "no usable KMS device ({}). Another compositor or X server may hold the \
                 display: run lockstep from a text console (Ctrl+Alt+F3)",
                errors.join("; ")
            ));
        };
        info!(session = session.kind(), device = %kms.device_path().display(), "KMS session");
        match init_input(&core.loop_handle, &session) {
            Ok(input) => kms.set_input(input),
            Err(err) => warn!("no input devices: {err:#}"),
        }
        let device = kms.device_path().to_owned();
        let hotplug = session.watch_drm_hotplug(&core.loop_handle, move |state, hotplug| {
            let Backend::Kms(kms) = &mut state.backend else {
                return;
            };
            match hotplug {
                DrmHotplug::Changed(path) if path == device => kms.rescan(&mut state.core),
                DrmHotplug::Removed(path) if path == device => {
                    error!(device = %path.display(), "the display device went away");
                }
                _ => {}
            }
        });
        if let Err(err) = hotplug {
            warn!("no display hotplug: {err:#}");
        }
        kms.set_session(session);
        Self::finish_kms(event_loop, display, core, kms)
    }

    /// A compositor on the KMS device `dev`, opened directly (tests in the VM, as root),
    /// without a session or input.
    pub fn kms_on(config: Config, dev: lockstep_render::kms::KmsDevice) -> Result<Self> {
        let (event_loop, display, mut core) = Self::core(config)?;
        let kms = Kms::new(&mut core, dev)?;
        Self::finish_kms(event_loop, display, core, kms)
    }

    fn finish_kms(
        event_loop: EventLoop<'static, State>,
        display: Display<State>,
        mut core: Core,
        mut kms: Kms,
    ) -> Result<Self> {
        core.shm_state.update_formats(kms.shm_formats());
        match kms.dmabuf_feedback() {
            Some(feedback) => {
                crate::handlers::dmabuf::create_dmabuf_global_with_feedback(&mut core, &feedback)
            }
            None => {
                crate::handlers::dmabuf::create_dmabuf_global(&mut core, kms.dmabuf_formats(), None)
            }
        }
        // The renderer has read composited buffers when a frame call returns (pixman draws
        // synchronously; a GLES frame's fence is waited for before its commit, see
        // backend/kms_gles.rs), unless EGL has native fences: then frames leave with their
        // fence and releases follow it (handlers/drm_syncobj.rs, "Release"). Buffers on
        // planes are leased until their page flip.
        let native_fences = kms.native_fences();
        crate::handlers::drm_syncobj::init(&mut core, native_fences);
        insert_display(&event_loop.handle(), display)?;
        Ok(Self {
            event_loop,
            state: State {
                backend: Backend::Kms(Box::new(kms)),
                core,
            },
        })
    }

    /// Runs one iteration of the loop (waiting at most `timeout`), then flushes clients.
    pub fn dispatch(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.event_loop
            .dispatch(timeout, &mut self.state)
            .map_err(|err| anyhow!("event loop failed: {err}"))?;
        self.state.after_dispatch();
        Ok(())
    }

    /// Runs until something stops the loop (signal, closed window).
    pub fn run(&mut self) -> Result<()> {
        self.event_loop
            .run(None, &mut self.state, |state| state.after_dispatch())
            .map_err(|err| anyhow!("event loop failed: {err}"))
    }
}

impl State {
    /// Housekeeping after each loop iteration.
    pub fn after_dispatch(&mut self) {
        crate::handlers::layer_shell::cleanup(&mut self.core);
        self.collect_sync_garbage();
        self.prune_screencopies();
        self.update_idle_inhibit();
        crate::xwayland::after_dispatch(self);
        if let Some(window) = self.core.focus_request.take() {
            crate::shell::focus_window(self, &window);
        }
        if std::mem::take(&mut self.core.focus_dirty) {
            crate::shell::sync_keyboard_focus(self);
        }
        if let Some(surface) = self.core.layer_focus_request.take() {
            crate::shell::focus_layer_surface(self, surface);
        }
        crate::shell::sync_forced_focus(self);
        crate::events::after_dispatch(&mut self.core);
        self.update_output_management();
        self.core.xdg_output.refresh();
        if self.backend.releases_follow_fences() {
            self.signal_queued_releases();
        }
        self.update_pointer_constraint();
        self.update_foreign_toplevels();
        self.core.space.refresh();
        self.core.popups.cleanup();
        if let Err(err) = self.core.display_handle.flush_clients() {
            tracing::debug!(?err, "flushing clients failed");
        }
    }
}
