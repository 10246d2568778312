//! One Wayland connection of a case: the globals it bound, the events it saw, and helpers for
//! what the cases do (windows, dmabuf and shm buffers, syncobj surfaces and timelines,
//! expected protocol errors, screen captures, waiting without blocking forever).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use lockstep_render::heap::{Fourcc, HeapBuffer, Modifier};
use wayland_client::backend::WaylandError;
use wayland_client::protocol::{
    wl_buffer::{self, WlBuffer},
    wl_callback::{self, WlCallback},
    wl_compositor::{self, WlCompositor},
    wl_output::{self, WlOutput},
    wl_registry::{self, WlRegistry},
    wl_shm::{self, WlShm},
    wl_shm_pool::{self, WlShmPool},
    wl_subcompositor::{self, WlSubcompositor},
    wl_subsurface::{self, WlSubsurface},
    wl_surface::{self, WlSurface},
};
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle, WEnum};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1::{self, ZwpLinuxBufferParamsV1},
    zwp_linux_dmabuf_v1::{self, ZwpLinuxDmabufV1},
};
use wayland_protocols::wp::linux_drm_syncobj::v1::client::{
    wp_linux_drm_syncobj_manager_v1::{self, WpLinuxDrmSyncobjManagerV1},
    wp_linux_drm_syncobj_surface_v1::{self, WpLinuxDrmSyncobjSurfaceV1},
    wp_linux_drm_syncobj_timeline_v1::{self, WpLinuxDrmSyncobjTimelineV1},
};
use wayland_protocols::xdg::shell::client::{
    xdg_surface::{self, XdgSurface},
    xdg_toplevel::{self, XdgToplevel},
    xdg_wm_base::{self, XdgWmBase},
};
use wayland_protocols_wlr::screencopy::v1::client::{
    zwlr_screencopy_frame_v1::{self, ZwlrScreencopyFrameV1},
    zwlr_screencopy_manager_v1::{self, ZwlrScreencopyManagerV1},
};

use crate::env::{Env, Timeline};
use crate::outcome::{fail, CaseError};

/// The interface name of the global everything here is about.
pub const SYNCOBJ_MANAGER: &str = "wp_linux_drm_syncobj_manager_v1";

/// Window and buffer size of the cases (small: the VM is slow).
pub const SIZE: u32 = 64;

/// Events the connection recorded.
#[derive(Debug, Default)]
pub struct State {
    /// Globals: (name, interface, version).
    pub globals: Vec<(u32, String, u32)>,
    /// Last configure serial per xdg_surface protocol id.
    pub configures: HashMap<u32, u32>,
    /// Tags of frame callbacks that fired.
    pub frames_done: HashSet<u64>,
    next_tag: u64,
    /// (format, modifier) pairs of zwp_linux_dmabuf_v1 (v3 `modifier` events).
    pub dmabuf_modifiers: Vec<(u32, u64)>,
    /// Formats of zwp_linux_dmabuf_v1 `format` events (v1/v2).
    pub dmabuf_formats: Vec<u32>,
    /// Screencopy frames in flight, by protocol id.
    captures: HashMap<u32, CaptureState>,
}

#[derive(Debug, Default, Clone)]
struct CaptureState {
    shm: Option<(WEnum<wl_shm::Format>, u32, u32, u32)>,
    buffer_done: bool,
    ready: bool,
    failed: bool,
    y_invert: bool,
}

/// A frame callback's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameTag(pub u64);

/// A connected client.
pub struct Client {
    /// The connection.
    pub conn: Connection,
    /// Its queue.
    pub queue: EventQueue<State>,
    /// Queue handle.
    pub qh: QueueHandle<State>,
    /// What it saw.
    pub state: State,
    /// Shared case environment.
    pub env: Env,
    /// wl_compositor (required).
    pub compositor: WlCompositor,
    /// wl_subcompositor.
    pub subcompositor: Option<WlSubcompositor>,
    /// wl_shm.
    pub shm: Option<WlShm>,
    /// xdg_wm_base.
    pub wm_base: Option<XdgWmBase>,
    /// zwp_linux_dmabuf_v1 (bound at most at version 3, for `modifier` events).
    pub dmabuf: Option<ZwpLinuxDmabufV1>,
    /// wp_linux_drm_syncobj_manager_v1.
    pub syncobj: Option<WpLinuxDrmSyncobjManagerV1>,
    /// zwlr_screencopy_manager_v1.
    pub screencopy: Option<ZwlrScreencopyManagerV1>,
    /// The first wl_output.
    pub output: Option<WlOutput>,
}

/// A mapped toplevel.
#[derive(Debug)]
pub struct Window {
    /// Its surface.
    pub surface: WlSurface,
    /// Its xdg_surface.
    pub xdg_surface: XdgSurface,
    /// Its toplevel.
    pub toplevel: XdgToplevel,
}

/// A buffer and the memory behind it.
#[derive(Debug)]
pub struct Buffer {
    /// The protocol object.
    pub wl: WlBuffer,
    /// The dmabuf, kept alive as long as the buffer (none for shm): the compositor may
    /// read it until the release point signals.
    _memory: Option<HeapBuffer>,
}

/// A screen capture (screencopy of the whole first output).
#[derive(Debug)]
pub struct Capture {
    width: u32,
    height: u32,
    stride: u32,
    bgr: bool,
    data: Vec<u8>,
}

impl Capture {
    /// Pixels whose colour is `argb`'s RGB (±2 per channel, alpha ignored).
    pub fn count(&self, argb: u32) -> usize {
        let [b, g, r, _] = argb.to_le_bytes();
        let want = if self.bgr { [r, g, b] } else { [b, g, r] };
        let close = |x: u8, y: u8| x.abs_diff(y) <= 2;
        let row_bytes = self.width as usize * 4;
        self.data
            .chunks(self.stride as usize)
            .take(self.height as usize)
            .flat_map(|row| row[..row_bytes.min(row.len())].chunks_exact(4))
            .filter(|px| close(px[0], want[0]) && close(px[1], want[1]) && close(px[2], want[2]))
            .count()
    }
}

/// Distinct opaque colours, never black, white or grey (cursor, background), unique among
/// the first 128 of a run so one case never sees another's window.
pub fn color(index: u32) -> u32 {
    let r = 0x40 + (index % 128);
    let g = 0x30 + (index.wrapping_mul(53) % 160);
    let b = 0xd0 - (index.wrapping_mul(97) % 160);
    0xff00_0000 | (r << 16) | (g << 8) | b
}

impl Client {
    /// Connects to `$WAYLAND_DISPLAY` and binds every global the cases may use.
    pub fn connect(env: &Env) -> Result<Client, CaseError> {
        let conn = Connection::connect_to_env()
            .map_err(|e| CaseError::Fail(format!("cannot connect to the compositor: {e}")))?;
        let mut queue = conn.new_event_queue();
        let qh = queue.handle();
        let registry = conn.display().get_registry(&qh, ());
        let mut state = State::default();
        queue
            .roundtrip(&mut state)
            .map_err(|e| CaseError::Fail(format!("registry roundtrip failed: {e}")))?;
        let find = |iface: &str, max: u32| {
            state
                .globals
                .iter()
                .find(|(_, i, _)| i == iface)
                .map(|&(name, _, v)| (name, v.min(max)))
        };
        macro_rules! bind {
            ($iface:literal, $max:expr) => {
                find($iface, $max).map(|(name, v)| registry.bind(name, v, &qh, ()))
            };
        }
        let Some(compositor) = bind!("wl_compositor", 4) else {
            fail!("the compositor has no wl_compositor global");
        };
        let subcompositor = bind!("wl_subcompositor", 1);
        let shm = bind!("wl_shm", 1);
        let wm_base = bind!("xdg_wm_base", 1);
        let dmabuf = bind!("zwp_linux_dmabuf_v1", 3);
        let syncobj = bind!("wp_linux_drm_syncobj_manager_v1", 1);
        let screencopy = bind!("zwlr_screencopy_manager_v1", 3).filter(|_| env.screencopy);
        let output = bind!("wl_output", 1);
        let mut client = Client {
            conn,
            queue,
            qh,
            state,
            env: env.clone(),
            compositor,
            subcompositor,
            shm,
            wm_base,
            dmabuf,
            syncobj,
            screencopy,
            output,
        };
        // Format events of the globals just bound.
        client.expect_ok("binding the globals")?;
        Ok(client)
    }

    /// The syncobj manager, or a skip when the compositor does not offer it.
    pub fn manager(&self) -> Result<WpLinuxDrmSyncobjManagerV1, CaseError> {
        self.syncobj.clone().ok_or_else(|| {
            CaseError::Skip(format!(
                "the compositor does not advertise {SYNCOBJ_MANAGER}"
            ))
        })
    }

    /// A new surface without a role (enough for the protocol-error cases).
    pub fn surface(&self) -> WlSurface {
        self.compositor.create_surface(&self.qh, ())
    }

    /// The syncobj surface of `surface`.
    pub fn syncobj_surface(
        &self,
        surface: &WlSurface,
    ) -> Result<WpLinuxDrmSyncobjSurfaceV1, CaseError> {
        Ok(self.manager()?.get_surface(surface, &self.qh, ()))
    }

    /// Imports `timeline` (a fresh syncobj fd of it) into the compositor.
    pub fn import(&self, timeline: &Timeline) -> Result<WpLinuxDrmSyncobjTimelineV1, CaseError> {
        let manager = self.manager()?;
        let fd = timeline
            .drm
            .export_fd()
            .map_err(|e| CaseError::Fail(format!("exporting our timeline as an fd: {e}")))?;
        Ok(manager.import_timeline(fd.as_fd(), &self.qh, ()))
    }

    /// A new timeline of ours, imported: (ours, the compositor's object).
    pub fn timeline(&self) -> Result<(Timeline, WpLinuxDrmSyncobjTimelineV1), CaseError> {
        let timeline = self.env.timeline()?;
        let object = self.import(&timeline)?;
        Ok((timeline, object))
    }

    /// A mapped toplevel (initial commit, configure, ack), no buffer yet. `sync` is the
    /// syncobj surface to create before the first commit, if wanted.
    pub fn window(&mut self, title: &str) -> Result<Window, CaseError> {
        let Some(wm_base) = self.wm_base.clone() else {
            return Err(CaseError::Skip("the compositor has no xdg_wm_base".into()));
        };
        let surface = self.surface();
        let xdg_surface = wm_base.get_xdg_surface(&surface, &self.qh, ());
        let toplevel = xdg_surface.get_toplevel(&self.qh, ());
        toplevel.set_title(format!("lockstep-conformance: {title}"));
        toplevel.set_app_id("lockstep-conformance".into());
        surface.commit();
        let id = xdg_surface.id().protocol_id();
        if !self.wait_until(self.env.timeout, |s| s.configures.contains_key(&id))? {
            fail!("no xdg_surface.configure within {:?}", self.env.timeout);
        }
        let serial = self.state.configures[&id];
        xdg_surface.ack_configure(serial);
        Ok(Window {
            surface,
            xdg_surface,
            toplevel,
        })
    }

    /// A synchronized subsurface of `parent` at (`x`, `y`).
    pub fn subsurface(
        &self,
        parent: &WlSurface,
        x: i32,
        y: i32,
    ) -> Result<(WlSurface, WlSubsurface), CaseError> {
        let Some(subcompositor) = &self.subcompositor else {
            return Err(CaseError::Skip(
                "the compositor has no wl_subcompositor".into(),
            ));
        };
        let surface = self.surface();
        let sub = subcompositor.get_subsurface(&surface, parent, &self.qh, ());
        sub.set_position(x, y);
        sub.set_sync();
        Ok((surface, sub))
    }

    /// The (fourcc, modifier) to use for dmabufs: ARGB8888, else XRGB8888; LINEAR when
    /// advertised, else the implicit modifier (a heap buffer is linear either way).
    fn dmabuf_format(&self) -> Option<(Fourcc, Modifier)> {
        let mods = &self.state.dmabuf_modifiers;
        for fourcc in [Fourcc::ARGB8888, Fourcc::XRGB8888] {
            for modifier in [Modifier::LINEAR, Modifier::INVALID] {
                if mods.contains(&(fourcc.0, modifier.0)) {
                    return Some((fourcc, modifier));
                }
            }
            if self.state.dmabuf_formats.contains(&fourcc.0) {
                return Some((fourcc, Modifier::INVALID));
            }
        }
        None
    }

    /// A `SIZE`×`SIZE` dmabuf filled with `argb`, imported with zwp_linux_dmabuf_v1.
    pub fn dmabuf_buffer(&mut self, argb: u32) -> Result<Buffer, CaseError> {
        let Some(dmabuf) = self.dmabuf.clone() else {
            return Err(CaseError::Skip(
                "the compositor has no zwp_linux_dmabuf_v1".into(),
            ));
        };
        let Some((fourcc, modifier)) = self.dmabuf_format() else {
            return Err(CaseError::Skip(
                "zwp_linux_dmabuf_v1 offers neither ARGB8888 nor XRGB8888 (linear)".into(),
            ));
        };
        let heap = self
            .env
            .allocator
            .allocate(SIZE, SIZE, fourcc)
            .map_err(|e| CaseError::Skip(format!("cannot allocate a dmabuf here: {e}")))?;
        heap.fill(argb)
            .map_err(|e| CaseError::Fail(format!("filling the dmabuf: {e}")))?;
        let layout = *heap.layout();
        let params = dmabuf.create_params(&self.qh, ());
        params.add(
            heap.as_fd(),
            0,
            layout.offset,
            layout.stride,
            (modifier.0 >> 32) as u32,
            modifier.0 as u32,
        );
        let wl = params.create_immed(
            layout.width as i32,
            layout.height as i32,
            fourcc.0,
            zwp_linux_buffer_params_v1::Flags::empty(),
            &self.qh,
            (),
        );
        params.destroy();
        Ok(Buffer {
            wl,
            _memory: Some(heap),
        })
    }

    /// A `SIZE`×`SIZE` ARGB8888 wl_shm buffer filled with `argb`.
    pub fn shm_buffer(&mut self, argb: u32) -> Result<Buffer, CaseError> {
        let Some(shm) = self.shm.clone() else {
            return Err(CaseError::Skip("the compositor has no wl_shm".into()));
        };
        let len = (SIZE * SIZE * 4) as usize;
        let bytes: Vec<u8> = argb.to_le_bytes().into_iter().cycle().take(len).collect();
        let file = memfd(len)?;
        file.write_all_at(&bytes, 0)
            .map_err(|e| CaseError::Fail(format!("writing the shm pool: {e}")))?;
        let pool = shm.create_pool(file.as_fd(), len as i32, &self.qh, ());
        let wl = pool.create_buffer(
            0,
            SIZE as i32,
            SIZE as i32,
            (SIZE * 4) as i32,
            wl_shm::Format::Argb8888,
            &self.qh,
            (),
        );
        pool.destroy();
        Ok(Buffer { wl, _memory: None })
    }

    /// Requests a frame callback on `surface` (sent with its next commit).
    pub fn frame(&mut self, surface: &WlSurface) -> FrameTag {
        self.state.next_tag += 1;
        let tag = FrameTag(self.state.next_tag);
        surface.frame(&self.qh, tag);
        tag
    }

    /// Whether frame callback `tag` has fired (events dispatched so far).
    pub fn frame_fired(&self, tag: FrameTag) -> bool {
        self.state.frames_done.contains(&tag.0)
    }

    /// Roundtrip that must not end in a protocol error.
    pub fn expect_ok(&mut self, what: &str) -> Result<(), CaseError> {
        match self.queue.roundtrip(&mut self.state) {
            Ok(_) => Ok(()),
            Err(e) => fail!("{what}: expected no error, got {}", self.describe_error(&e)),
        }
    }

    /// Roundtrip that must end in protocol error `code` (`name`) posted on `object`.
    pub fn expect_error(
        &mut self,
        what: &str,
        object: &impl Proxy,
        code: u32,
        name: &str,
    ) -> Result<(), CaseError> {
        self.expect_one_error_of(what, object, &[(code, name)])
            .map(|_| ())
    }

    /// Roundtrip that must end in one of the protocol errors `allowed` (code, name), posted on
    /// `object`; returns the one that came.
    pub fn expect_one_error_of<'a>(
        &mut self,
        what: &str,
        object: &impl Proxy,
        allowed: &[(u32, &'a str)],
    ) -> Result<(u32, &'a str), CaseError> {
        let names: Vec<String> = allowed
            .iter()
            .map(|(code, name)| format!("{name} ({code})"))
            .collect();
        let expected = format!(
            "{} on {}@{}",
            names.join(" or "),
            object.id().interface().name,
            object.id().protocol_id()
        );
        if self.queue.roundtrip(&mut self.state).is_ok() {
            fail!("{what}: expected protocol error {expected}, but the compositor accepted it");
        }
        let Some(err) = self.conn.protocol_error() else {
            fail!(
                "{what}: expected protocol error {expected}, but the connection broke without one"
            );
        };
        let right_object = err.object_interface == object.id().interface().name
            && err.object_id == object.id().protocol_id();
        match allowed.iter().find(|(code, _)| *code == err.code) {
            Some(&found) if right_object => Ok(found),
            _ => fail!(
                "{what}: expected protocol error {expected}, got code {} on {}@{} ({:?})",
                err.code,
                err.object_interface,
                err.object_id,
                err.message
            ),
        }
    }

    /// Why the connection failed, for a failure message.
    pub fn describe_error(&self, e: &dyn std::fmt::Display) -> String {
        match self.conn.protocol_error() {
            Some(err) => format!(
                "protocol error {} on {}@{}: {:?}",
                err.code, err.object_interface, err.object_id, err.message
            ),
            None => format!("connection error: {e}"),
        }
    }

    /// Dispatches events for `duration` (at least once).
    pub fn dispatch_for(&mut self, duration: Duration) -> Result<(), CaseError> {
        let deadline = Instant::now() + duration;
        self.wait_until_deadline(deadline, |_| false).map(|_| ())
    }

    /// Dispatches events until `done` holds (true) or `timeout` passes (false).
    pub fn wait_until(
        &mut self,
        timeout: Duration,
        done: impl Fn(&State) -> bool,
    ) -> Result<bool, CaseError> {
        self.wait_until_deadline(Instant::now() + timeout, done)
    }

    fn wait_until_deadline(
        &mut self,
        deadline: Instant,
        done: impl Fn(&State) -> bool,
    ) -> Result<bool, CaseError> {
        loop {
            let conn_err = |c: &Client, e: &dyn std::fmt::Display| {
                CaseError::Fail(format!("while waiting: {}", c.describe_error(e)))
            };
            self.queue.flush().map_err(|e| conn_err(self, &e))?;
            self.queue
                .dispatch_pending(&mut self.state)
                .map_err(|e| conn_err(self, &e))?;
            if done(&self.state) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let step = (deadline - now).min(Duration::from_millis(20));
            if let Some(guard) = self.queue.prepare_read() {
                let ready = {
                    let fd = guard.connection_fd();
                    let mut fds = [rustix::event::PollFd::new(
                        &fd,
                        rustix::event::PollFlags::IN,
                    )];
                    let timeout = rustix::event::Timespec {
                        tv_sec: 0,
                        tv_nsec: step.as_nanos() as _,
                    };
                    rustix::event::poll(&mut fds, Some(&timeout)).unwrap_or(0) > 0
                };
                if ready {
                    match guard.read() {
                        Ok(_) => {}
                        // Readable, but what arrived was not a whole message yet (or went to
                        // no queue): not an error, read again.
                        Err(WaylandError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(conn_err(self, &e)),
                    }
                }
            }
        }
    }

    /// Waits until `point` of `timeline` is signalled (true) or `timeout` passes (false),
    /// dispatching events meanwhile.
    pub fn wait_point(
        &mut self,
        timeline: &Timeline,
        point: u64,
        timeout: Duration,
    ) -> Result<bool, CaseError> {
        let deadline = Instant::now() + timeout;
        loop {
            if timeline.is_signalled(point)? {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            self.dispatch_for(Duration::from_millis(10))?;
        }
    }

    /// Whether pixel checks are possible (screencopy, an output and wl_shm).
    pub fn can_capture(&self) -> bool {
        self.screencopy.is_some() && self.output.is_some() && self.shm.is_some()
    }

    /// Captures the first output through wlr-screencopy into a wl_shm buffer.
    pub fn capture(&mut self) -> Result<Capture, CaseError> {
        let (Some(manager), Some(output), Some(shm)) = (
            self.screencopy.clone(),
            self.output.clone(),
            self.shm.clone(),
        ) else {
            return Err(CaseError::Skip(
                "no zwlr_screencopy_manager_v1 (or no wl_output / wl_shm) to check pixels".into(),
            ));
        };
        let v3 = manager.version() >= 3;
        let frame = manager.capture_output(0, &output, &self.qh, ());
        let id = frame.id().protocol_id();
        self.state.captures.insert(id, CaptureState::default());
        let described = self.wait_until(self.env.timeout, |s| {
            s.captures
                .get(&id)
                .is_some_and(|c| c.failed || (c.shm.is_some() && (c.buffer_done || !v3)))
        })?;
        let info = self.state.captures.get(&id).cloned().unwrap_or_default();
        let Some((format, width, height, stride)) = info.shm.filter(|_| described && !info.failed)
        else {
            self.state.captures.remove(&id);
            frame.destroy();
            fail!("screencopy offered no wl_shm buffer for the output");
        };
        let bgr = match format {
            WEnum::Value(wl_shm::Format::Argb8888 | wl_shm::Format::Xrgb8888) => false,
            WEnum::Value(wl_shm::Format::Abgr8888 | wl_shm::Format::Xbgr8888) => true,
            other => {
                frame.destroy();
                fail!("screencopy asks for shm format {other:?}, which this suite cannot read");
            }
        };
        let len = stride as usize * height as usize;
        let file = memfd(len)?;
        let pool = shm.create_pool(file.as_fd(), len as i32, &self.qh, ());
        let format = match format {
            WEnum::Value(f) => f,
            WEnum::Unknown(_) => wl_shm::Format::Xrgb8888,
        };
        let buffer = pool.create_buffer(
            0,
            width as i32,
            height as i32,
            stride as i32,
            format,
            &self.qh,
            (),
        );
        frame.copy(&buffer);
        let finished = self.wait_until(self.env.timeout, |s| {
            s.captures.get(&id).is_some_and(|c| c.ready || c.failed)
        })?;
        let info = self.state.captures.remove(&id).unwrap_or_default();
        frame.destroy();
        buffer.destroy();
        pool.destroy();
        if !finished || !info.ready {
            fail!(
                "screencopy failed or did not finish within {:?}",
                self.env.timeout
            );
        }
        let mut data = vec![0; len];
        file.read_exact_at(&mut data, 0)
            .map_err(|e| CaseError::Fail(format!("reading the capture: {e}")))?;
        let _ = info.y_invert; // a colour count does not care about orientation
        Ok(Capture {
            width,
            height,
            stride,
            bgr,
            data,
        })
    }

    /// Waits until `argb` is on screen (pixels) or, without screencopy, until frame callback
    /// `tag` (requested with the commit that shows it) fires.
    pub fn wait_shown(&mut self, argb: u32, tag: FrameTag) -> Result<bool, CaseError> {
        if !self.can_capture() {
            return self.wait_until(self.env.timeout, |s| s.frames_done.contains(&tag.0));
        }
        let deadline = Instant::now() + self.env.timeout;
        loop {
            if self.capture()?.count(argb) > 0 {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            self.dispatch_for(Duration::from_millis(20))?;
        }
    }

    /// Watches for `settle`: true when `argb` never appeared on screen (or, without
    /// screencopy, frame callback `tag` never fired).
    pub fn stays_hidden(&mut self, argb: u32, tag: FrameTag) -> Result<bool, CaseError> {
        let deadline = Instant::now() + self.env.settle;
        loop {
            if self.can_capture() {
                if self.capture()?.count(argb) > 0 {
                    return Ok(false);
                }
            } else if self.frame_fired(tag) {
                return Ok(false);
            }
            if Instant::now() >= deadline {
                return Ok(true);
            }
            self.dispatch_for(Duration::from_millis(30))?;
        }
    }

    /// Whether `argb` is on screen now (None without screencopy).
    pub fn on_screen(&mut self, argb: u32) -> Result<Option<bool>, CaseError> {
        if !self.can_capture() {
            return Ok(None);
        }
        Ok(Some(self.capture()?.count(argb) > 0))
    }
}

fn memfd(len: usize) -> Result<File, CaseError> {
    let fd = rustix::fs::memfd_create("lockstep-conformance", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| CaseError::Fail(format!("memfd_create: {e}")))?;
    rustix::fs::ftruncate(&fd, len as u64)
        .map_err(|e| CaseError::Fail(format!("ftruncate(memfd): {e}")))?;
    Ok(File::from(fd))
}

impl Dispatch<WlRegistry, ()> for State {
    fn event(
        state: &mut Self,
        _: &WlRegistry,
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
            state.globals.push((name, interface, version));
        }
    }
}

impl Dispatch<WlCallback, FrameTag> for State {
    fn event(
        state: &mut Self,
        _: &WlCallback,
        event: wl_callback::Event,
        tag: &FrameTag,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            state.frames_done.insert(tag.0);
        }
    }
}

impl Dispatch<XdgWmBase, ()> for State {
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

impl Dispatch<XdgSurface, ()> for State {
    fn event(
        state: &mut Self,
        surface: &XdgSurface,
        event: xdg_surface::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = event {
            // A later configure needs an ack too, or some compositors stop showing updates.
            if state.configures.contains_key(&surface.id().protocol_id()) {
                surface.ack_configure(serial);
            }
            state.configures.insert(surface.id().protocol_id(), serial);
        }
    }
}

impl Dispatch<ZwpLinuxDmabufV1, ()> for State {
    fn event(
        state: &mut Self,
        _: &ZwpLinuxDmabufV1,
        event: zwp_linux_dmabuf_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            zwp_linux_dmabuf_v1::Event::Modifier {
                format,
                modifier_hi,
                modifier_lo,
            } => state
                .dmabuf_modifiers
                .push((format, ((modifier_hi as u64) << 32) | modifier_lo as u64)),
            zwp_linux_dmabuf_v1::Event::Format { format } => state.dmabuf_formats.push(format),
            _ => {}
        }
    }
}

impl Dispatch<ZwlrScreencopyFrameV1, ()> for State {
    fn event(
        state: &mut Self,
        frame: &ZwlrScreencopyFrameV1,
        event: zwlr_screencopy_frame_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let Some(c) = state.captures.get_mut(&frame.id().protocol_id()) else {
            return;
        };
        match event {
            zwlr_screencopy_frame_v1::Event::Buffer {
                format,
                width,
                height,
                stride,
            } => c.shm = Some((format, width, height, stride)),
            zwlr_screencopy_frame_v1::Event::BufferDone => c.buffer_done = true,
            zwlr_screencopy_frame_v1::Event::Flags { flags } => {
                c.y_invert = matches!(flags, WEnum::Value(f)
                    if f.contains(zwlr_screencopy_frame_v1::Flags::YInvert));
            }
            zwlr_screencopy_frame_v1::Event::Ready { .. } => c.ready = true,
            zwlr_screencopy_frame_v1::Event::Failed => c.failed = true,
            _ => {}
        }
    }
}

/// Interfaces whose events the cases do not need.
macro_rules! ignore_events {
    ($($ty:ty => $module:ident),* $(,)?) => {$(
        impl Dispatch<$ty, ()> for State {
            fn event(
                _: &mut Self,
                _: &$ty,
                _: $module::Event,
                _: &(),
                _: &Connection,
                _: &QueueHandle<Self>,
            ) {
            }
        }
    )*};
}

ignore_events!(
    WlCompositor => wl_compositor,
    WlSubcompositor => wl_subcompositor,
    WlSubsurface => wl_subsurface,
    WlSurface => wl_surface,
    WlShm => wl_shm,
    WlShmPool => wl_shm_pool,
    WlBuffer => wl_buffer,
    WlOutput => wl_output,
    XdgToplevel => xdg_toplevel,
    ZwpLinuxBufferParamsV1 => zwp_linux_buffer_params_v1,
    WpLinuxDrmSyncobjManagerV1 => wp_linux_drm_syncobj_manager_v1,
    WpLinuxDrmSyncobjSurfaceV1 => wp_linux_drm_syncobj_surface_v1,
    WpLinuxDrmSyncobjTimelineV1 => wp_linux_drm_syncobj_timeline_v1,
    ZwlrScreencopyManagerV1 => zwlr_screencopy_manager_v1,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_are_distinct_and_not_grey() {
        let colors: HashSet<u32> = (0..128).map(color).collect();
        assert_eq!(colors.len(), 128);
        for c in colors {
            let [b, g, r, a] = c.to_le_bytes();
            assert_eq!(a, 0xff);
            assert!(!(r == g && g == b), "{c:#x} is grey");
        }
    }

    #[test]
    fn capture_counts_with_tolerance_and_channel_order() {
        // 2x1 XRGB: one pixel 0x102030 (bytes 30 20 10), one 0x112131; stride 12.
        let data = vec![0x30, 0x20, 0x10, 0, 0x31, 0x21, 0x11, 0, 9, 9, 9, 9];
        let cap = Capture {
            width: 2,
            height: 1,
            stride: 12,
            bgr: false,
            data: data.clone(),
        };
        assert_eq!(cap.count(0xff10_2030), 2);
        assert_eq!(cap.count(0xff10_2035), 0);
        let cap = Capture { bgr: true, ..cap };
        assert_eq!(cap.count(0xff30_2010), 2);
    }
}
