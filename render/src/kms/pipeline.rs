//! One output's plane pipeline: plan → **prepare** (fallible) → **commit** (the kernel call
//! and nothing else) → **cleanup** (on the page flip).
//!
//! See the [module docs](super) for the plane rules. The types carry the phases:
//!
//! - [`OutputPipeline::prepare`] takes a [`Plan`] and does every step that can fail, in this
//!   order: framebuffer import of new client buffers, acquire-fence export (and the render
//!   fence of a composited frame, duplicated), buffer lease,
//!   cursor image write, mode blob, then a `TEST_ONLY` commit of exactly the request it built.
//!   It returns a [`Prepared`] frame that borrows the pipeline.
//! - [`Prepared::commit`] hands that request to the kernel (nonblocking, with a page-flip
//!   event and `OUT_FENCE_PTR`) and moves the frame into flight. It allocates nothing and
//!   takes no lock; the kernel can still refuse (the session lost DRM master between test
//!   and commit), which is reported and rolled back like a failed prepare.
//! - Dropping a [`Prepared`] without committing rolls back: the framebuffers it imported are
//!   removed, its GEM handles closed, its fences closed, its leases ended (the compositor's
//!   lease type puts the release point back), and the cursor buffer or render slot it
//!   scribbled on is marked as holding nothing. The screen keeps the previous frame.
//! - [`OutputPipeline::on_page_flip`] makes the frame in flight the shown one. The previous
//!   frame is dropped, and with it the leases of the buffers that left the screen: their
//!   release points are signalled then, never before.
//!
//! A lease taken in prepare is carried (shared, not taken again) by later frames that keep
//! the same buffer commit on a plane, so one frame never asks twice for what it holds.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
    rc::Rc,
    time::Duration,
};

use drm::control::{
    atomic::AtomicModeReq, crtc, property, AtomicCommitFlags, Device as ControlDevice, Mode,
    RawResourceHandle,
};

mod async_flip;

use super::{
    buffers::{ClientFb, DmabufDesc, DumbSlot, SharedDevice},
    device::{ConnectorInfo, CrtcPlanes, PlaneInfo, PlaneKind, Props},
    KmsError,
};

/// Identifies a client buffer (the same `wl_buffer` gives the same key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BufferKey(pub u64);

/// A client buffer offered for a plane. The compositor implements this for its surfaces;
/// every method that can fail is called from [`OutputPipeline::prepare`] only.
pub trait ScanoutBuffer {
    /// Which buffer (framebuffers are cached by this).
    fn buffer_key(&self) -> BufferKey;
    /// Which commit of that buffer (a re-committed buffer needs a new lease).
    fn commit_key(&self) -> u64;
    /// Whether the buffer still exists; a cached framebuffer is removed once it says no.
    fn liveness(&self) -> Box<dyn Fn() -> bool>;
    /// The dmabuf behind it.
    fn dmabuf(&self) -> DmabufDesc<'_>;
    /// The acquire fence as a sync_file, for `IN_FENCE_FD` (`None`: nothing to wait for).
    fn export_acquire(&self) -> Result<Option<OwnedFd>, String>;
    /// A lease: while it lives the buffer is on screen (or about to be) and its release must
    /// not be signalled; dropping it ends that.
    fn lease(&self) -> Result<Box<dyn Lease>, String>;
    /// A short description for the plane report (`surface 12: 1920x1080 XR24`).
    fn label(&self) -> String;
}

/// A buffer's hold on a plane, from prepare until the page flip that takes it off the screen.
/// Dropping it ends the lease: the compositor then signals the buffer's release point (or
/// keeps it, when the buffer is still in use elsewhere).
pub trait Lease {
    /// The commit that takes this buffer off the screen was queued, and `out_fence` (a
    /// sync_file, the CRTC's `OUT_FENCE_PTR` fence) signals when that commit is on screen. A
    /// lease that can make its release wait for that fence in the kernel (importing it into
    /// the release point) does so and returns `true`: the release is then signalled by the
    /// display engine at the flip, with no CPU in between, and dropping the lease signals
    /// nothing more. The default keeps the CPU path (signal on drop, at the page-flip event).
    fn release_after(&mut self, out_fence: BorrowedFd<'_>) -> bool {
        let _ = out_fence;
        false
    }
}

/// A cursor image: premultiplied ARGB8888 pixels, `width * height` of them.
#[derive(Debug, Clone, Copy)]
pub struct CursorImage<'a> {
    /// Identifies the image; the same key means the same pixels (no rewrite).
    pub key: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The pixels, row by row.
    pub pixels: &'a [u32],
}

/// What the primary plane shows in the next frame.
pub enum PrimaryPlan<'a> {
    /// What it shows now (a cursor-only update).
    Keep,
    /// The slot last returned by [`OutputPipeline::render_target`], with the renderer's
    /// fence for it when the renderer has one as a sync_file (a GPU that has not finished
    /// drawing: the plane waits for it as `IN_FENCE_FD`, the CPU does not). `None`: the frame
    /// is complete already (pixman, or a GLES frame that was waited for).
    Composited {
        /// The render fence (prepare duplicates it; the caller keeps its own).
        render_fence: Option<BorrowedFd<'a>>,
    },
    /// A client buffer of exactly the mode's size, scanned out directly.
    Direct(&'a dyn ScanoutBuffer),
}

/// What the cursor plane shows in the next frame.
#[derive(Debug, Clone, Copy)]
pub enum CursorPlan<'a> {
    /// Nothing.
    Hidden,
    /// `image` with its top-left corner at `position` (CRTC pixels, hotspot applied).
    Show {
        /// The image.
        image: CursorImage<'a>,
        /// Top-left corner on the CRTC.
        position: (i32, i32),
    },
}

/// A client buffer on the first overlay plane at `position`, unscaled.
pub struct OverlayPlan<'a> {
    /// The buffer.
    pub buffer: &'a dyn ScanoutBuffer,
    /// Top-left corner on the CRTC.
    pub position: (i32, i32),
}

/// Everything one frame puts on the planes.
pub struct Plan<'a> {
    /// The primary plane.
    pub primary: PrimaryPlan<'a>,
    /// The cursor plane (must be `Hidden` when [`OutputPipeline::has_cursor_plane`] is false).
    pub cursor: CursorPlan<'a>,
    /// The first overlay plane.
    pub overlay: Option<OverlayPlan<'a>>,
}

/// The steps of prepare, in order; each can be made to fail on purpose ([`Faults`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Looking up or importing a client buffer's framebuffer.
    FramebufferImport,
    /// Exporting a client's acquire point as a sync_file, or taking the renderer's fence of
    /// a composited frame.
    FenceExport,
    /// Leasing a client buffer.
    Lease,
    /// Writing the cursor image.
    CursorWrite,
    /// Creating the mode blob of a modeset.
    Modeset,
    /// The `TEST_ONLY` commit.
    TestOnly,
    /// A flip is still in flight (prepare was called too early).
    Busy,
    /// The plan asks for something impossible (no composited slot, cursor too big).
    Plan,
}

impl Step {
    const INJECTABLE: [Step; 5] = [
        Step::FramebufferImport,
        Step::FenceExport,
        Step::Lease,
        Step::CursorWrite,
        Step::TestOnly,
    ];

    fn bit(self) -> u8 {
        match self {
            Step::FramebufferImport => 1,
            Step::FenceExport => 2,
            Step::Lease => 4,
            Step::CursorWrite => 8,
            Step::TestOnly => 16,
            _ => 0,
        }
    }

    /// The steps [`Faults::arm`] can fail.
    pub fn injectable() -> &'static [Step] {
        &Self::INJECTABLE
    }
}

/// A failed prepare: which step, and why.
#[derive(Debug, thiserror::Error)]
#[error("preparing a KMS frame failed at {step:?}: {error}")]
pub struct PrepareError {
    /// The step that failed.
    pub step: Step,
    /// Why.
    pub error: KmsError,
}

fn fail(step: Step, error: KmsError) -> PrepareError {
    PrepareError { step, error }
}

/// Fault injection: an armed step fails the next time prepare reaches it (once).
#[derive(Debug, Default)]
pub struct Faults(Cell<u8>);

impl Faults {
    /// Makes the next `step` fail.
    pub fn arm(&self, step: Step) {
        self.0.set(self.0.get() | step.bit());
    }

    /// Whether `step` is armed, disarming it.
    fn take(&self, step: Step) -> bool {
        let bits = self.0.get();
        if bits & step.bit() != 0 {
            self.0.set(bits & !step.bit());
            true
        } else {
            false
        }
    }

    /// Whether any step is still armed.
    pub fn any_armed(&self) -> bool {
        self.0.get() != 0
    }
}

/// What one plane shows (or will show).
#[derive(Clone, Default)]
struct PlaneContent {
    fb: FbRef,
    /// Which buffer commit is on the plane, for carrying leases over.
    commit_key: Option<u64>,
    lease: Option<SharedLease>,
    label: String,
    /// Top-left on the CRTC and size (SRC and CRTC rectangles are the same size: no scaling).
    rect: (i32, i32, u32, u32),
}

/// A lease shared by the frames that show the same buffer commit.
type SharedLease = Rc<RefCell<Box<dyn Lease>>>;

#[derive(Clone, Default)]
enum FbRef {
    #[default]
    Off,
    Slot(usize),
    Cursor(usize),
    Client(Rc<ClientFb>),
}

#[derive(Clone, Default)]
struct Scene {
    primary: PlaneContent,
    cursor: PlaneContent,
    overlay: PlaneContent,
}

struct Slot {
    buffer: SlotBuffer,
    /// The composited-frame number this slot holds (`None`: nothing usable).
    holds: Option<u64>,
}

/// What a composited frame is drawn into.
enum SlotBuffer {
    /// A dumb buffer the pipeline allocated and mapped (pixman draws into it).
    Dumb(DumbSlot),
    /// The framebuffer of a buffer the compositor allocated and draws into itself (GBM +
    /// GLES, imported as a dmabuf), found by the slot's index.
    Foreign(ClientFb),
}

impl SlotBuffer {
    fn fb(&self) -> drm::control::framebuffer::Handle {
        match self {
            SlotBuffer::Dumb(d) => d.fb(),
            SlotBuffer::Foreign(f) => f.fb(),
        }
    }
}

struct CursorBuffer {
    dumb: DumbSlot,
    /// The image key it holds.
    holds: Option<u64>,
}

/// Says whether a client buffer still exists.
type Liveness = Box<dyn Fn() -> bool>;

struct CachedFb {
    fb: Rc<ClientFb>,
    alive: Liveness,
}

struct InFlight {
    scene: Scene,
    /// Signals when the flip completed (the CRTC's OUT_FENCE_PTR fence).
    out_fence: Option<OwnedFd>,
}

/// Counters for tests, benchmarks and the plane report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Commits handed to the kernel.
    pub commits: u64,
    /// Of those, with a newly composited primary frame.
    pub composited: u64,
    /// Of those, with a client buffer scanned out on the primary plane.
    pub direct: u64,
    /// Page flips completed.
    pub flips: u64,
    /// Prepares that failed (any step).
    pub failed_prepares: u64,
    /// Leases whose release was handed the out-fence of the commit that replaced them.
    pub fenced_releases: u64,
    /// Commits that were async (tearing) page flips.
    pub async_flips: u64,
}

/// A completed page flip.
#[derive(Debug, Clone, Copy)]
pub struct Flip {
    /// The kernel's vblank sequence number.
    pub sequence: u32,
    /// When the flip happened (CLOCK_MONOTONIC).
    pub time: Duration,
}

/// A plane and what it shows, for `lockstep msg outputs --planes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaneReport {
    /// The KMS plane object id.
    pub id: u32,
    /// Primary, cursor or overlay.
    pub kind: PlaneKind,
    /// What is on it (`composited frame`, `cursor 24x24`, `surface ...`, `off`).
    pub content: String,
}

/// Where the compositor draws the next composited frame.
pub struct RenderTarget<'a> {
    /// Which of the pipeline's [`FRAME_SLOTS`] buffers it is.
    pub index: usize,
    /// The mapped dumb buffer, when the pipeline's frames are dumb buffers
    /// ([`OutputPipeline::new`]); `None` when they are the compositor's own buffers
    /// ([`OutputPipeline::with_frames`]), which it finds by `index`.
    pub dumb: Option<&'a mut DumbSlot>,
    /// Buffer age: how many composited frames ago this slot was drawn (0: never or lost).
    pub age: usize,
}

/// The plane pipeline of one CRTC driving one connector.
pub struct OutputPipeline {
    dev: SharedDevice,
    connector: ConnectorInfo,
    connector_props: Props,
    crtc: crtc::Handle,
    crtc_props: Props,
    /// Connectors the previous master left on this CRTC, unbound by the first modeset.
    stale_connectors: Vec<(drm::control::connector::Handle, property::Handle)>,
    mode: Mode,
    mode_blob: Option<u64>,
    planes: CrtcPlanes,
    slots: Vec<Slot>,
    target: Option<usize>,
    composited_frames: u64,
    cursor_buffers: Vec<CursorBuffer>,
    cursor_size: (u32, u32),
    shown: Scene,
    in_flight: Option<InFlight>,
    needs_modeset: bool,
    /// The CRTC's GAMMA_LUT (`gamma.rs`).
    gamma: super::gamma::Gamma,
    fb_cache: HashMap<BufferKey, CachedFb>,
    faults: Faults,
    stats: PipelineStats,
    failed_prepares: Rc<Cell<u64>>,
    /// Whether the driver takes async page flips in atomic commits
    /// (`DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP`).
    async_flips: bool,
}

/// Composited frames rotate through this many buffers: one on screen, one in flight, one
/// to draw into.
pub const FRAME_SLOTS: usize = 3;

impl OutputPipeline {
    /// Sets up `connector` on `crtc` in `mode`: its planes, three dumb buffers for composited
    /// frames and two for the cursor. Nothing is shown until the first commit (a modeset).
    pub fn new(
        dev: &SharedDevice,
        connector: ConnectorInfo,
        crtc: crtc::Handle,
        mode: Mode,
    ) -> Result<Self, KmsError> {
        Self::build(dev, connector, crtc, mode, None)
    }

    /// Like [`OutputPipeline::new`], but composited frames are drawn by the compositor into
    /// buffers of its own (GBM buffers that GLES renders into), given here as their
    /// framebuffers ([`ClientFb::import`] of their dmabufs, without modifiers: the layout they
    /// were allocated with): [`FRAME_SLOTS`] of them, XRGB8888, each of the mode's size.
    /// [`OutputPipeline::render_target`] then says which one to draw into by its index in
    /// `frames`. Everything else (prepare, commit, cleanup, fault injection) is the same.
    pub fn with_frames(
        dev: &SharedDevice,
        connector: ConnectorInfo,
        crtc: crtc::Handle,
        mode: Mode,
        frames: Vec<ClientFb>,
    ) -> Result<Self, KmsError> {
        let (w, h) = mode.size();
        if frames.len() != FRAME_SLOTS || frames.iter().any(|f| f.size() != (w.into(), h.into())) {
            return Err(KmsError::BadBuffer(format!(
                "the pipeline needs {FRAME_SLOTS} frame buffers of {w}x{h}, got {:?}",
                frames.iter().map(|f| f.size()).collect::<Vec<_>>()
            )));
        }
        Self::build(dev, connector, crtc, mode, Some(frames))
    }

    fn build(
        dev: &SharedDevice,
        connector: ConnectorInfo,
        crtc: crtc::Handle,
        mode: Mode,
        frames: Option<Vec<ClientFb>>,
    ) -> Result<Self, KmsError> {
        let planes = dev.dev.planes_for(crtc)?;
        let xrgb = drm::buffer::DrmFourcc::Xrgb8888;
        if !planes.primary.formats.contains(&(xrgb as u32)) {
            return Err(KmsError::BadBuffer(
                "the primary plane cannot show XRGB8888, the format lockstep composites in".into(),
            ));
        }
        let (w, h) = mode.size();
        let slots = match frames {
            Some(frames) => frames
                .into_iter()
                .map(|fb| Slot {
                    buffer: SlotBuffer::Foreign(fb),
                    holds: None,
                })
                .collect(),
            None => (0..FRAME_SLOTS)
                .map(|_| {
                    Ok(Slot {
                        buffer: SlotBuffer::Dumb(DumbSlot::new(dev, w.into(), h.into(), xrgb)?),
                        holds: None,
                    })
                })
                .collect::<Result<Vec<_>, KmsError>>()?,
        };
        let cursor_size = dev.dev.cursor_size();
        let cursor_buffers = if planes.cursor.is_some() {
            (0..2)
                .map(|_| {
                    Ok(CursorBuffer {
                        dumb: DumbSlot::new(
                            dev,
                            cursor_size.0,
                            cursor_size.1,
                            drm::buffer::DrmFourcc::Argb8888,
                        )?,
                        holds: None,
                    })
                })
                .collect::<Result<Vec<_>, KmsError>>()?
        } else {
            Vec::new()
        };
        let crtc_props = dev.dev.props(crtc)?;
        let gamma = super::gamma::Gamma::new(&crtc_props);
        Ok(Self {
            stale_connectors: dev.dev.other_connectors_on(crtc, connector.handle)?,
            connector_props: dev.dev.props(connector.handle)?,
            crtc_props,
            dev: dev.clone(),
            connector,
            crtc,
            mode,
            mode_blob: None,
            planes,
            slots,
            target: None,
            composited_frames: 0,
            cursor_buffers,
            cursor_size,
            shown: Scene::default(),
            in_flight: None,
            needs_modeset: true,
            gamma,
            fb_cache: HashMap::new(),
            faults: Faults::default(),
            stats: PipelineStats::default(),
            failed_prepares: Rc::default(),
            async_flips: async_flip::driver_allows(dev),
        })
    }

    /// The device the pipeline commits to.
    pub fn device(&self) -> &SharedDevice {
        &self.dev
    }

    /// The connector's name (`Virtual-1`).
    pub fn name(&self) -> &str {
        &self.connector.name
    }

    /// The connector.
    pub fn connector(&self) -> &ConnectorInfo {
        &self.connector
    }

    /// The CRTC.
    pub fn crtc(&self) -> crtc::Handle {
        self.crtc
    }

    /// The mode in use.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether the CRTC has a cursor plane.
    pub fn has_cursor_plane(&self) -> bool {
        self.planes.cursor.is_some()
    }

    /// The largest cursor image the cursor plane takes.
    pub fn cursor_size(&self) -> (u32, u32) {
        self.cursor_size
    }

    /// Whether there is an overlay plane for a client buffer.
    pub fn has_overlay_plane(&self) -> bool {
        !self.planes.overlays.is_empty()
    }

    /// Formats the primary plane can scan out directly.
    pub fn primary_formats(&self) -> &[u32] {
        &self.planes.primary.formats
    }

    /// Formats the first overlay plane can scan out.
    pub fn overlay_formats(&self) -> &[u32] {
        self.planes
            .overlays
            .first()
            .map(|p| p.formats.as_slice())
            .unwrap_or(&[])
    }

    /// Fault injection for this pipeline.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Counters.
    pub fn stats(&self) -> PipelineStats {
        PipelineStats {
            failed_prepares: self.failed_prepares.get(),
            ..self.stats
        }
    }

    /// Whether a commit waits for its page flip (then prepare must wait too).
    pub fn flip_pending(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The out-fence of the commit in flight (signals when it reaches the screen).
    pub fn out_fence(&self) -> Option<&OwnedFd> {
        self.in_flight.as_ref().and_then(|f| f.out_fence.as_ref())
    }

    /// Client framebuffers cached now (for leak checks).
    pub fn cached_framebuffers(&self) -> usize {
        self.fb_cache.len()
    }

    /// After the session comes back (VT switch): the next commit sets the whole state again.
    pub fn reset_after_resume(&mut self) {
        self.needs_modeset = true;
        self.gamma.reapply();
        // Whoever had the display may have bound other connectors to this CRTC.
        match self
            .dev
            .dev
            .other_connectors_on(self.crtc, self.connector.handle)
        {
            Ok(stale) => self.stale_connectors = stale,
            Err(err) => tracing::warn!(%err, "cannot read which connectors use the CRTC"),
        }
        for slot in &mut self.slots {
            slot.holds = None;
        }
    }

    /// Entries per gamma ramp of this CRTC; `None` when it has no `GAMMA_LUT`.
    pub fn gamma_size(&self) -> Option<u32> {
        self.gamma.size()
    }

    /// Sets the gamma ramps (3 × [`gamma_size`](Self::gamma_size) values: red, green, blue)
    /// or the driver's default (`None`) with the next frame.
    pub fn set_gamma(&mut self, ramps: Option<Vec<u16>>) -> Result<(), KmsError> {
        self.gamma.set(ramps)
    }

    /// Turns the display off (DPMS off): the CRTC goes inactive, the planes keep their state
    /// and nothing is scanned out. Checked with `TEST_ONLY`, then committed nonblocking;
    /// refused while a flip is pending ([`KmsError::FlipPending`]: call again after it).
    /// The next [`prepare`](Self::prepare) is a modeset that turns it back on.
    pub fn power_off(&mut self) -> Result<(), KmsError> {
        if self.in_flight.is_some() {
            return Err(KmsError::FlipPending);
        }
        let entries = vec![entry(self.crtc, self.crtc_props.id("ACTIVE")?, 0)];
        let flags = AtomicCommitFlags::ALLOW_MODESET;
        self.dev
            .dev
            .atomic_commit(
                flags | AtomicCommitFlags::TEST_ONLY,
                request(&entries, None),
            )
            .map_err(KmsError::Rejected)?;
        self.dev
            .dev
            .atomic_commit(flags | AtomicCommitFlags::NONBLOCK, request(&entries, None))
            .map_err(|e| KmsError::io("turning the CRTC off", e))?;
        self.needs_modeset = true;
        Ok(())
    }

    /// Checks that the CRTC can be switched off for good (the output turned off, not just
    /// powered down): `ACTIVE = 0`, no mode, the connector and every plane of the CRTC
    /// unbound, the default gamma. A `TEST_ONLY` commit of exactly that request; nothing on
    /// screen changes. Works while a flip is pending; [`commit_disable`](Self::commit_disable)
    /// does not.
    pub fn prepare_disable(&self) -> Result<DisableRequest, KmsError> {
        let mut e = vec![
            entry(
                self.connector.handle,
                self.connector_props.id("CRTC_ID")?,
                0,
            ),
            entry(self.crtc, self.crtc_props.id("ACTIVE")?, 0),
            entry(self.crtc, self.crtc_props.id("MODE_ID")?, 0),
        ];
        if self.crtc_props.has("GAMMA_LUT") {
            e.push(entry(self.crtc, self.crtc_props.id("GAMMA_LUT")?, 0));
        }
        for &(connector, prop) in &self.stale_connectors {
            e.push(entry(connector, prop, 0));
        }
        plane_off(&mut e, &self.planes.primary)?;
        if let Some(cursor) = &self.planes.cursor {
            plane_off(&mut e, cursor)?;
        }
        for overlay in &self.planes.overlays {
            plane_off(&mut e, overlay)?;
        }
        // The kernel sends no event for a CRTC that is off and stays off (DPMS off before):
        // then the commit asks for none.
        let active = self.dev.dev.props(self.crtc)?.value("ACTIVE") == Some(1);
        self.dev
            .dev
            .atomic_commit(
                AtomicCommitFlags::TEST_ONLY | AtomicCommitFlags::ALLOW_MODESET,
                request(&e, None),
            )
            .map_err(KmsError::Rejected)?;
        Ok(DisableRequest { entries: e, active })
    }

    /// Commits a [`DisableRequest`]: nonblocking; when the CRTC was active, with a page-flip
    /// event and the CRTC's out-fence, which the leases of client buffers on the planes get
    /// ([`Lease::release_after`]) so their releases wait for the CRTC to stop reading them.
    /// Then [`flip_pending`](Self::flip_pending) is true until the event
    /// ([`on_page_flip`](Self::on_page_flip) ends the leases, as after any frame). Refused
    /// while a flip is pending (`EBUSY`: commit after its event). A later
    /// [`prepare`](Self::prepare) is a modeset that lights the CRTC up again.
    pub fn commit_disable(&mut self, req: DisableRequest) -> Result<(), CommitRefused> {
        if self.in_flight.is_some() {
            return Err(CommitRefused(std::io::Error::from_raw_os_error(
                libc::EBUSY,
            )));
        }
        let mut out_fence: Box<i32> = Box::new(-1);
        let out_prop = self
            .crtc_props
            .id("OUT_FENCE_PTR")
            .ok()
            .filter(|_| req.active);
        let ptr = &mut *out_fence as *mut i32 as u64;
        let mut flags = AtomicCommitFlags::NONBLOCK | AtomicCommitFlags::ALLOW_MODESET;
        if req.active {
            flags |= AtomicCommitFlags::PAGE_FLIP_EVENT;
        }
        self.dev
            .dev
            .atomic_commit(
                flags,
                request(&req.entries, out_prop.map(|prop| (self.crtc, prop, ptr))),
            )
            .map_err(CommitRefused)?;
        let out_fence = (*out_fence >= 0).then(|| {
            // SAFETY: the kernel wrote a new sync_file fd into `out_fence` for this commit;
            // nothing else owns it.
            unsafe { OwnedFd::from_raw_fd(*out_fence) }
        });
        if let Some(fence) = &out_fence {
            for lease in [&self.shown.primary, &self.shown.overlay]
                .into_iter()
                .filter_map(|c| c.lease.as_ref())
            {
                if lease.borrow_mut().release_after(fence.as_fd()) {
                    self.stats.fenced_releases += 1;
                }
            }
        }
        if req.active {
            self.in_flight = Some(InFlight {
                scene: Scene::default(),
                out_fence,
            });
        } else {
            // Nothing was scanned out: the leases end now.
            self.shown = Scene::default();
        }
        self.needs_modeset = true;
        self.gamma.reapply();
        for slot in &mut self.slots {
            slot.holds = None;
        }
        self.stats.commits += 1;
        Ok(())
    }

    /// Checks that the first frame's modeset would light the CRTC up: a `TEST_ONLY` commit of
    /// the mode with a composited frame on the primary plane (the cursor and overlay planes
    /// off), after creating the mode blob that frame will use. For an output being turned
    /// on, before anything changes. Nothing on screen changes.
    pub fn test_modeset(&mut self) -> Result<(), KmsError> {
        self.needs_modeset = true;
        self.ensure_mode_blob()?;
        let (w, h) = self.mode.size();
        let scene = Scene {
            primary: PlaneContent {
                fb: FbRef::Slot(0),
                rect: (0, 0, u32::from(w), u32::from(h)),
                ..PlaneContent::default()
            },
            ..Scene::default()
        };
        let entries = self.entries(&scene, &Work::default())?;
        self.dev
            .dev
            .atomic_commit(
                AtomicCommitFlags::TEST_ONLY | AtomicCommitFlags::ALLOW_MODESET,
                request(&entries, None),
            )
            .map_err(KmsError::Rejected)
    }

    /// Creates the mode blob of the next modeset, unless there is one.
    fn ensure_mode_blob(&mut self) -> Result<(), KmsError> {
        if self.mode_blob.is_some() {
            return Ok(());
        }
        match self.dev.dev.create_property_blob(&self.mode) {
            Ok(property::Value::Blob(id)) => {
                self.mode_blob = Some(id);
                Ok(())
            }
            Ok(_) => Err(KmsError::BadBuffer(
                "the kernel returned no mode blob".into(),
            )),
            Err(e) => Err(KmsError::io("creating a mode blob", e)),
        }
    }

    /// The buffer to composite the next frame into, with its age for damage tracking. Of
    /// the three, at most two are in use (shown, in flight), so one is always free.
    pub fn render_target(&mut self) -> Result<RenderTarget<'_>, KmsError> {
        let busy = |scene: &Scene, i: usize| matches!(scene.primary.fb, FbRef::Slot(s) if s == i);
        let index = (0..self.slots.len())
            .find(|&i| {
                !busy(&self.shown, i) && !self.in_flight.as_ref().is_some_and(|f| busy(&f.scene, i))
            })
            .ok_or(KmsError::FlipPending)?;
        self.target = Some(index);
        let slot = &mut self.slots[index];
        let next = self.composited_frames + 1;
        let age = slot.holds.map(|n| (next - n) as usize).unwrap_or(0);
        Ok(RenderTarget {
            index,
            dumb: match &mut slot.buffer {
                SlotBuffer::Dumb(d) => Some(d),
                SlotBuffer::Foreign(_) => None,
            },
            age,
        })
    }

    /// Which frame slot the primary plane shows now, when it shows a composited frame.
    pub fn shown_slot(&self) -> Option<usize> {
        match self.shown.primary.fb {
            FbRef::Slot(i) => Some(i),
            _ => None,
        }
    }

    /// The pixels of the dumb buffer in frame slot `index` (`None` for the compositor's own
    /// buffers): what is on screen, for tests.
    pub fn dumb_frame(&self, index: usize) -> Option<&DumbSlot> {
        match &self.slots.get(index)?.buffer {
            SlotBuffer::Dumb(d) => Some(d),
            SlotBuffer::Foreign(_) => None,
        }
    }

    /// What each plane shows now.
    pub fn plane_report(&self) -> Vec<PlaneReport> {
        let mut out = vec![PlaneReport {
            id: self.planes.primary.handle.into(),
            kind: PlaneKind::Primary,
            content: describe(&self.shown.primary),
        }];
        if let Some(cursor) = &self.planes.cursor {
            out.push(PlaneReport {
                id: cursor.handle.into(),
                kind: PlaneKind::Cursor,
                content: describe(&self.shown.cursor),
            });
        }
        for (i, overlay) in self.planes.overlays.iter().enumerate() {
            out.push(PlaneReport {
                id: overlay.handle.into(),
                kind: PlaneKind::Overlay,
                content: if i == 0 {
                    describe(&self.shown.overlay)
                } else {
                    "off".into()
                },
            });
        }
        out
    }

    /// Whether the primary plane waits for fences (`IN_FENCE_FD`): only then may a composited
    /// frame come with a render fence instead of being finished first.
    pub fn primary_takes_in_fences(&self) -> bool {
        self.planes.primary.props.has("IN_FENCE_FD")
    }

    /// Prepares the frame `plan` describes: every fallible step, ending with `TEST_ONLY`.
    pub fn prepare<'p>(&'p mut self, plan: &Plan<'_>) -> Result<Prepared<'p>, PrepareError> {
        let failed = self.failed_prepares.clone();
        let result = self.prepare_inner(plan);
        if result.is_err() {
            failed.set(failed.get() + 1);
        }
        result
    }

    fn prepare_inner<'p>(&'p mut self, plan: &Plan<'_>) -> Result<Prepared<'p>, PrepareError> {
        if self.in_flight.is_some() {
            return Err(fail(Step::Busy, KmsError::FlipPending));
        }
        let mut work = Work::default();
        let (mw, mh) = self.mode.size();
        let full = (0, 0, u32::from(mw), u32::from(mh));

        // 1. Framebuffers of client buffers, then 2. fences, then 3. leases.
        let primary = match &plan.primary {
            PrimaryPlan::Keep => self.shown.primary.clone(),
            PrimaryPlan::Composited { render_fence } => {
                let index = self.target.ok_or_else(|| {
                    fail(
                        Step::Plan,
                        KmsError::BadBuffer("no composited frame was rendered".into()),
                    )
                })?;
                if let Some(fence) = render_fence {
                    if !self.primary_takes_in_fences() {
                        return Err(fail(
                            Step::Plan,
                            KmsError::BadBuffer(
                                "the primary plane has no IN_FENCE_FD: finish the frame first"
                                    .into(),
                            ),
                        ));
                    }
                    if self.faults.take(Step::FenceExport) {
                        return Err(fail(Step::FenceExport, KmsError::Injected));
                    }
                    let fence = fence.try_clone_to_owned().map_err(|e| {
                        fail(
                            Step::FenceExport,
                            KmsError::Client(format!("cannot duplicate the render fence: {e}")),
                        )
                    })?;
                    work.render_fence = Some(fence);
                }
                work.slot = Some(index);
                PlaneContent {
                    fb: FbRef::Slot(index),
                    commit_key: None,
                    lease: None,
                    label: "composited frame".into(),
                    rect: full,
                }
            }
            PrimaryPlan::Direct(buffer) => {
                let content = self.client_content(&mut work, *buffer, Some(&self.shown.primary))?;
                if (content.rect.2, content.rect.3) != (full.2, full.3) {
                    return Err(fail(
                        Step::Plan,
                        KmsError::BadBuffer(format!(
                            "a direct-scanout buffer must be {}x{}, not {}x{}",
                            full.2, full.3, content.rect.2, content.rect.3
                        )),
                    ));
                }
                content
            }
        };
        let overlay = match &plan.overlay {
            None => PlaneContent::default(),
            Some(o) => {
                if self.planes.overlays.is_empty() {
                    return Err(fail(
                        Step::Plan,
                        KmsError::BadBuffer("this CRTC has no overlay plane".into()),
                    ));
                }
                let mut content =
                    self.client_content(&mut work, o.buffer, Some(&self.shown.overlay))?;
                content.rect.0 = o.position.0;
                content.rect.1 = o.position.1;
                content
            }
        };

        // 4. The cursor image.
        let cursor = match plan.cursor {
            CursorPlan::Hidden => PlaneContent::default(),
            CursorPlan::Show { image, position } => {
                if self.planes.cursor.is_none() {
                    return Err(fail(
                        Step::Plan,
                        KmsError::BadBuffer("this CRTC has no cursor plane".into()),
                    ));
                }
                let (cw, ch) = self.cursor_size;
                let shown_index = match self.shown.cursor.fb {
                    FbRef::Cursor(i) => Some(i),
                    _ => None,
                };
                let index = match shown_index {
                    Some(i) if self.cursor_buffers[i].holds == Some(image.key) => i,
                    _ => {
                        if self.faults.take(Step::CursorWrite) {
                            return Err(fail(Step::CursorWrite, KmsError::Injected));
                        }
                        let index = if shown_index == Some(0) { 1 } else { 0 };
                        work.cursor_written = Some(index);
                        write_cursor(&mut self.cursor_buffers[index].dumb, image, (cw, ch))
                            .map_err(|e| fail(Step::CursorWrite, e))?;
                        index
                    }
                };
                work.cursor_key = Some((index, image.key));
                PlaneContent {
                    fb: FbRef::Cursor(index),
                    commit_key: Some(image.key),
                    lease: None,
                    label: format!("cursor {}x{}", image.width, image.height),
                    rect: (position.0, position.1, cw, ch),
                }
            }
        };

        // 5. The mode blob.
        if self.needs_modeset {
            self.ensure_mode_blob()
                .map_err(|e| fail(Step::Modeset, e))?;
        }

        // 6. The gamma LUT blob, when it changes with this frame.
        // A gamma change that cannot be made is given up, so the retry (and every later
        // frame) goes ahead without it instead of failing forever.
        work.gamma = match self.gamma.prepare(&self.dev) {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(%e, "gamma LUT change given up");
                self.gamma.discard_pending();
                return Err(fail(Step::Plan, e));
            }
        };

        let scene = Scene {
            primary,
            cursor,
            overlay,
        };
        let entries = self
            .entries(&scene, &work)
            .map_err(|e| fail(Step::Plan, e))?;

        // 7. TEST_ONLY with exactly this request.
        if self.faults.take(Step::TestOnly) {
            return Err(fail(Step::TestOnly, KmsError::Injected));
        }
        let mut flags = AtomicCommitFlags::TEST_ONLY;
        if self.needs_modeset {
            flags |= AtomicCommitFlags::ALLOW_MODESET;
        }
        if let Err(e) = self.dev.dev.atomic_commit(flags, request(&entries, None)) {
            if work.gamma.is_some() {
                tracing::warn!(%e, "the kernel refused the gamma LUT; change given up");
                self.gamma.discard_pending();
            }
            return Err(fail(Step::TestOnly, KmsError::Rejected(e)));
        }

        Ok(Prepared {
            modeset: self.needs_modeset,
            pipeline: self,
            scene,
            entries,
            work,
            async_flip: false,
        })
    }

    /// Framebuffer, fence and lease for a client buffer, carried over from `shown` when the
    /// same commit of the same buffer is already on that plane.
    fn client_content(
        &self,
        work: &mut Work,
        buffer: &dyn ScanoutBuffer,
        shown: Option<&PlaneContent>,
    ) -> Result<PlaneContent, PrepareError> {
        let key = buffer.buffer_key();
        let commit = buffer.commit_key();
        if let Some(shown) = shown.filter(|s| s.commit_key == Some(commit) && s.lease.is_some()) {
            if let FbRef::Client(fb) = &shown.fb {
                if self
                    .fb_cache
                    .get(&key)
                    .is_some_and(|c| Rc::ptr_eq(&c.fb, fb))
                {
                    return Ok(shown.clone());
                }
            }
        }
        let fb = match self.fb_cache.get(&key) {
            Some(cached) => cached.fb.clone(),
            None => {
                if self.faults.take(Step::FramebufferImport) {
                    return Err(fail(Step::FramebufferImport, KmsError::Injected));
                }
                let fb = Rc::new(
                    ClientFb::import(&self.dev, &buffer.dmabuf())
                        .map_err(|e| fail(Step::FramebufferImport, e))?,
                );
                work.fresh_fbs.push((key, fb.clone(), buffer.liveness()));
                fb
            }
        };
        if self.faults.take(Step::FenceExport) {
            return Err(fail(Step::FenceExport, KmsError::Injected));
        }
        let fence = buffer
            .export_acquire()
            .map_err(|e| fail(Step::FenceExport, KmsError::Client(e)))?;
        if self.faults.take(Step::Lease) {
            return Err(fail(Step::Lease, KmsError::Injected));
        }
        let lease = buffer
            .lease()
            .map_err(|e| fail(Step::Lease, KmsError::Client(e)))?;
        let (w, h) = fb.size();
        let fence_index = fence.map(|f| {
            work.in_fences.push(f);
            work.in_fences.len() - 1
        });
        work.fence_for.push((buffer.commit_key(), fence_index));
        Ok(PlaneContent {
            fb: FbRef::Client(fb),
            commit_key: Some(commit),
            lease: Some(Rc::new(RefCell::new(lease))),
            label: buffer.label(),
            rect: (0, 0, w, h),
        })
    }

    /// The property writes of `scene` (without `OUT_FENCE_PTR`).
    fn entries(&self, scene: &Scene, work: &Work) -> Result<Vec<Entry>, KmsError> {
        let mut e = Vec::new();
        let crtc_id = u64::from(u32::from(self.crtc));
        if self.needs_modeset {
            let blob = self.mode_blob.unwrap_or(0);
            e.push(entry(
                self.connector.handle,
                self.connector_props.id("CRTC_ID")?,
                crtc_id,
            ));
            e.push(entry(self.crtc, self.crtc_props.id("MODE_ID")?, blob));
            e.push(entry(self.crtc, self.crtc_props.id("ACTIVE")?, 1));
            for &(connector, prop) in &self.stale_connectors {
                e.push(entry(connector, prop, 0));
            }
            // Overlays lockstep does not use start from a known (off) state.
            for overlay in self.planes.overlays.iter().skip(1) {
                plane_off(&mut e, overlay)?;
            }
        }
        if let Some(gamma) = &work.gamma {
            e.push(entry(
                self.crtc,
                self.crtc_props.id("GAMMA_LUT")?,
                gamma.blob(),
            ));
        }
        self.plane_entries(&mut e, &self.planes.primary, &scene.primary, work, crtc_id)?;
        if let Some(cursor) = &self.planes.cursor {
            self.plane_entries(&mut e, cursor, &scene.cursor, work, crtc_id)?;
        }
        if let Some(overlay) = self.planes.overlays.first() {
            self.plane_entries(&mut e, overlay, &scene.overlay, work, crtc_id)?;
        }
        Ok(e)
    }

    fn plane_entries(
        &self,
        e: &mut Vec<Entry>,
        plane: &PlaneInfo,
        content: &PlaneContent,
        work: &Work,
        crtc_id: u64,
    ) -> Result<(), KmsError> {
        let fb = match &content.fb {
            FbRef::Off => return plane_off(e, plane),
            FbRef::Slot(i) => self.slots[*i].buffer.fb(),
            FbRef::Cursor(i) => self.cursor_buffers[*i].dumb.fb(),
            FbRef::Client(fb) => fb.fb(),
        };
        let p = &plane.props;
        let h = plane.handle;
        let (x, y, w, hh) = content.rect;
        e.push(entry(h, p.id("FB_ID")?, u64::from(u32::from(fb))));
        e.push(entry(h, p.id("CRTC_ID")?, crtc_id));
        e.push(entry(h, p.id("SRC_X")?, 0));
        e.push(entry(h, p.id("SRC_Y")?, 0));
        e.push(entry(h, p.id("SRC_W")?, u64::from(w) << 16));
        e.push(entry(h, p.id("SRC_H")?, u64::from(hh) << 16));
        e.push(entry(h, p.id("CRTC_X")?, x as i64 as u64));
        e.push(entry(h, p.id("CRTC_Y")?, y as i64 as u64));
        e.push(entry(h, p.id("CRTC_W")?, u64::from(w)));
        e.push(entry(h, p.id("CRTC_H")?, u64::from(hh)));
        // The render fence only with the slot this frame newly composited.
        if let (FbRef::Slot(index), Some(fence)) = (&content.fb, &work.render_fence) {
            if work.slot == Some(*index) && p.has("IN_FENCE_FD") {
                e.push(entry(
                    h,
                    p.id("IN_FENCE_FD")?,
                    fence.as_raw_fd() as i64 as u64,
                ));
            }
        }
        // A fence only for a buffer this frame newly puts there (a carried one already waited).
        if let Some(commit) = content.commit_key {
            if let Some((_, Some(index))) = work.fence_for.iter().find(|(c, _)| *c == commit) {
                if p.has("IN_FENCE_FD") {
                    let fd = work.in_fences[*index].as_raw_fd();
                    e.push(entry(h, p.id("IN_FENCE_FD")?, fd as i64 as u64));
                }
            }
        }
        Ok(())
    }

    /// Cleanup after the page flip of the frame in flight: it becomes the shown frame; the
    /// previous one is dropped, ending the leases of buffers that left the screen, and
    /// framebuffers of buffers that died are removed.
    pub fn on_page_flip(&mut self, sequence: u32, time: Duration) -> Option<Flip> {
        let flight = self.in_flight.take()?;
        let previous = std::mem::replace(&mut self.shown, flight.scene);
        drop(previous);
        drop(flight.out_fence);
        self.stats.flips += 1;
        self.sweep_framebuffers();
        Some(Flip { sequence, time })
    }

    /// Removes cached framebuffers of buffers that died and are on no plane.
    pub fn sweep_framebuffers(&mut self) {
        self.fb_cache
            .retain(|_, cached| Rc::strong_count(&cached.fb) > 1 || (cached.alive)());
    }
}

impl Drop for OutputPipeline {
    fn drop(&mut self) {
        if let Some(blob) = self.mode_blob.take() {
            let _ = self.dev.dev.destroy_property_blob(blob);
        }
        if let Some(blob) = self.gamma.blob_in_force() {
            let _ = self.dev.dev.destroy_property_blob(u64::from(blob));
        }
    }
}

fn describe(content: &PlaneContent) -> String {
    match content.fb {
        FbRef::Off => "off".into(),
        _ => {
            let (x, y, w, h) = content.rect;
            format!("{} at {x},{y} ({w}x{h})", content.label)
        }
    }
}

/// What prepare acquired, for commit to keep or drop to roll back.
#[derive(Default)]
struct Work {
    fresh_fbs: Vec<(BufferKey, Rc<ClientFb>, Liveness)>,
    in_fences: Vec<OwnedFd>,
    /// Which commit gets which fence (index into `in_fences`).
    fence_for: Vec<(u64, Option<usize>)>,
    cursor_written: Option<usize>,
    cursor_key: Option<(usize, u64)>,
    slot: Option<usize>,
    /// The renderer's fence of the newly composited slot, for the primary plane's
    /// `IN_FENCE_FD`.
    render_fence: Option<OwnedFd>,
    gamma: Option<super::gamma::PreparedGamma>,
}

type Entry = (RawResourceHandle, property::Handle, u64);

fn entry(object: impl Into<RawResourceHandle>, prop: property::Handle, value: u64) -> Entry {
    (object.into(), prop, value)
}

fn plane_off(e: &mut Vec<Entry>, plane: &PlaneInfo) -> Result<(), KmsError> {
    e.push(entry(plane.handle, plane.props.id("FB_ID")?, 0));
    e.push(entry(plane.handle, plane.props.id("CRTC_ID")?, 0));
    Ok(())
}

fn request(
    entries: &[Entry],
    out_fence: Option<(crtc::Handle, property::Handle, u64)>,
) -> AtomicModeReq {
    let mut req = AtomicModeReq::new();
    for &(object, prop, value) in entries {
        req.add_raw_property(object, prop, value);
    }
    if let Some((crtc, prop, ptr)) = out_fence {
        req.add_raw_property(crtc.into(), prop, ptr);
    }
    req
}

fn write_cursor(
    buffer: &mut DumbSlot,
    image: CursorImage<'_>,
    (cw, ch): (u32, u32),
) -> Result<(), KmsError> {
    if image.width > cw || image.height > ch {
        return Err(KmsError::CursorTooBig {
            image: (image.width, image.height),
            plane: (cw, ch),
        });
    }
    if image.pixels.len() < (image.width * image.height) as usize {
        return Err(KmsError::BadBuffer(format!(
            "a {}x{} cursor image needs {} pixels, it has {}",
            image.width,
            image.height,
            image.width * image.height,
            image.pixels.len()
        )));
    }
    let stride = buffer.stride() as usize;
    let bytes = buffer.bytes_mut();
    bytes.fill(0);
    for row in 0..image.height as usize {
        let src = &image.pixels[row * image.width as usize..][..image.width as usize];
        let dst = &mut bytes[row * stride..][..image.width as usize * 4];
        for (d, s) in dst.chunks_exact_mut(4).zip(src) {
            d.copy_from_slice(&s.to_le_bytes());
        }
    }
    Ok(())
}

/// A frame whose every fallible step succeeded. [`Prepared::commit`] shows it; dropping it
/// rolls back.
pub struct Prepared<'p> {
    pipeline: &'p mut OutputPipeline,
    scene: Scene,
    entries: Vec<Entry>,
    work: Work,
    modeset: bool,
    /// An async (tearing) flip: no fences, `DRM_MODE_PAGE_FLIP_ASYNC`.
    async_flip: bool,
}

/// Turning a CRTC off, checked with `TEST_ONLY` ([`OutputPipeline::prepare_disable`]);
/// [`OutputPipeline::commit_disable`] commits exactly this request.
pub struct DisableRequest {
    entries: Vec<Entry>,
    /// Whether the CRTC was active when checked (then the commit has an event to wait for).
    active: bool,
}

/// The kernel refused a commit that passed `TEST_ONLY` (typically: DRM master was lost).
#[derive(Debug, thiserror::Error)]
#[error("the kernel refused an atomic commit that passed TEST_ONLY: {0}")]
pub struct CommitRefused(pub std::io::Error);

impl Prepared<'_> {
    /// Whether this frame is a modeset.
    pub fn is_modeset(&self) -> bool {
        self.modeset
    }

    /// Hands the prepared request to the kernel: nonblocking, page-flip event, out-fence
    /// (an async flip: no out-fence, which the kernel refuses with it).
    pub fn commit(mut self) -> Result<(), CommitRefused> {
        let mut out_fence: Box<i32> = Box::new(-1);
        let out_prop = (!self.async_flip)
            .then(|| self.pipeline.crtc_props.id("OUT_FENCE_PTR").ok())
            .flatten();
        let ptr = &mut *out_fence as *mut i32 as u64;
        let req = request(
            &self.entries,
            out_prop.map(|prop| (self.pipeline.crtc, prop, ptr)),
        );
        let mut flags = AtomicCommitFlags::NONBLOCK | AtomicCommitFlags::PAGE_FLIP_EVENT;
        if self.modeset {
            flags |= AtomicCommitFlags::ALLOW_MODESET;
        }
        if self.async_flip {
            flags |= AtomicCommitFlags::PAGE_FLIP_ASYNC;
        }
        self.pipeline
            .dev
            .dev
            .atomic_commit(flags, req)
            .map_err(CommitRefused)?;
        // The kernel owns what it was given; from here on nothing can fail.
        let p = &mut *self.pipeline;
        let out_fence = (*out_fence >= 0).then(|| {
            // SAFETY: the kernel wrote a new sync_file fd into `out_fence` for this commit;
            // nothing else owns it.
            unsafe { OwnedFd::from_raw_fd(*out_fence) }
        });
        for (key, fb, alive) in self.work.fresh_fbs.drain(..) {
            p.fb_cache.insert(key, CachedFb { fb, alive });
        }
        if let Some(slot) = self.work.slot.take() {
            p.composited_frames += 1;
            p.slots[slot].holds = Some(p.composited_frames);
            p.stats.composited += 1;
            p.target = None;
        }
        if let Some((index, key)) = self.work.cursor_key.take() {
            p.cursor_buffers[index].holds = Some(key);
        }
        if let Some(gamma) = self.work.gamma.take() {
            p.gamma.committed(gamma);
        }
        self.work.cursor_written = None;
        let scene = std::mem::take(&mut self.scene);
        if matches!(scene.primary.fb, FbRef::Client(_)) {
            p.stats.direct += 1;
        }
        // Buffers this commit takes off the screen: their releases can wait for the
        // out-fence in the kernel instead of for the page-flip event.
        if let Some(fence) = &out_fence {
            for leaving in [&p.shown.primary, &p.shown.overlay] {
                let Some(lease) = &leaving.lease else {
                    continue;
                };
                let stays = [&scene.primary, &scene.overlay]
                    .iter()
                    .any(|c| c.lease.as_ref().is_some_and(|l| Rc::ptr_eq(l, lease)));
                if !stays && lease.borrow_mut().release_after(fence.as_fd()) {
                    p.stats.fenced_releases += 1;
                }
            }
        }
        p.in_flight = Some(InFlight { scene, out_fence });
        p.needs_modeset = false;
        p.stats.commits += 1;
        if self.async_flip {
            p.stats.async_flips += 1;
        }
        Ok(())
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        // Roll back what commit did not take over. Fresh framebuffers, fences and leases
        // go with `work` and `scene`; the buffers prepare scribbled on hold nothing usable.
        if let Some(i) = self.work.cursor_written {
            self.pipeline.cursor_buffers[i].holds = None;
        }
        if let Some(i) = self.work.slot {
            self.pipeline.slots[i].holds = None;
        }
    }
}
