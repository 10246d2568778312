//! Tests of the plane pipeline on vkms, in the VM (`vm/test -p lockstep-render`).
//!
//! What is on screen is read back as vkms's per-frame CRC: two frames with the same pixels
//! have the same CRC, so a composited reference frame tells whether a direct-scanout buffer
//! (or a cursor position) really is what the display shows. On a host without vkms every test
//! prints a skip line and passes; in the VM a missing device fails.

use std::{
    cell::Cell,
    os::fd::{AsFd, OwnedFd},
    rc::Rc,
    time::{Duration, Instant},
};

use drm::control::Device as _;
use lockstep_vm_support::{
    crc::{Crc, CrcReader},
    drm::{DrmNode, NodeKind},
    guest,
    sw_sync::SwTimeline,
};

use super::*;
use crate::heap::{Fourcc as HeapFourcc, HeapAllocator, HeapBuffer};

const XRGB: u32 = u32::from_le_bytes(*b"XR24");

/// An output pipeline on vkms's first connector, or `None` (skipped) on a host.
fn vkms_pipeline(test: &str) -> Option<OutputPipeline> {
    let node = match DrmNode::find("vkms", NodeKind::Primary) {
        Ok(node) => node,
        Err(e) if !guest::in_vm() => {
            guest::skip(test, &format!("no vkms here: {e}"));
            return None;
        }
        Err(e) => panic!("{test}: vkms must exist in the VM: {e}"),
    };
    // Only the first opener is DRM master (and may probe connectors and commit).
    let path = node.path().to_owned();
    drop(node);
    let dev = DeviceShared::new(KmsDevice::open(&path).expect("open vkms"));
    let connector = dev.dev.connected().expect("connectors").remove(0);
    let crtc = connector.crtcs[0];
    let mode = connector.preferred_mode();
    Some(OutputPipeline::new(&dev, connector, crtc, mode).expect("pipeline"))
}

fn device(p: &OutputPipeline) -> SharedDevice {
    p.device().clone()
}

thread_local! {
    // The vblank sequence of the last page flip `wait_flip` saw (each test runs on its own
    // thread): `crc_now` reads CRCs from the vblank after it.
    static LAST_FLIP: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Waits for the page flip of the commit in flight and runs cleanup.
fn wait_flip(p: &mut OutputPipeline, timeout: Duration) -> Option<Flip> {
    let dev = device(p);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        if !guest::wait_readable(dev.dev.as_fd(), left).expect("poll") {
            return None;
        }
        for event in dev.dev.receive_events().expect("events") {
            if let drm::control::Event::PageFlip(flip) = event {
                if flip.crtc == p.crtc() {
                    LAST_FLIP.set(Some(flip.frame));
                    return p.on_page_flip(flip.frame, flip.duration);
                }
            }
        }
    }
    None
}

fn composite(p: &mut OutputPipeline, pixel: u32) {
    let target = p.render_target().expect("a free slot");
    let dumb = target.dumb.expect("dumb frames");
    for px in dumb.bytes_mut().chunks_exact_mut(4) {
        px.copy_from_slice(&pixel.to_le_bytes());
    }
}

fn show(p: &mut OutputPipeline, plan: &Plan<'_>) {
    p.prepare(plan).expect("prepare").commit().expect("commit");
    wait_flip(p, Duration::from_secs(2)).expect("page flip");
}

fn show_color(p: &mut OutputPipeline, pixel: u32) {
    composite(p, pixel);
    show(
        p,
        &Plan {
            primary: PrimaryPlan::Composited { render_fence: None },
            cursor: CursorPlan::Hidden,
            overlay: None,
        },
    );
}

/// The CRC of what is on screen now: of a frame composed after the last page flip latched
/// (vkms's composer may lag more than a frame behind the flips under emulation).
fn crc_now(crcs: &mut CrcReader) -> Crc {
    let timeout = Duration::from_secs(2);
    match LAST_FLIP.get() {
        Some(sequence) => crcs.from_vblank(u64::from(sequence) + 1, timeout),
        None => crcs.current(timeout),
    }
    .expect("crc")
}

/// Shows a frame of `pixel`, then a black one; returns the CRC reader and both CRCs (the
/// reference for the frame a test is about to show, and what is on screen before it).
fn reference_then_black(p: &mut OutputPipeline, pixel: u32) -> (CrcReader, Crc, Crc) {
    show_color(p, pixel);
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let reference = crc_now(&mut crcs);
    show_color(p, 0xff00_0000);
    let black = crc_now(&mut crcs);
    (crcs, reference, black)
}

/// A client buffer for the tests: a heap dmabuf, an optional sw_sync acquire fence and a
/// lease that counts itself.
struct TestBuffer {
    buffer: HeapBuffer,
    fd: OwnedFd,
    key: u64,
    fence: Option<OwnedFd>,
    leases: Rc<Cell<i32>>,
    /// How many of its leases were handed an out-fence.
    fenced: Rc<Cell<i32>>,
}

struct TestLease(Rc<Cell<i32>>, Rc<Cell<i32>>);
impl Lease for TestLease {
    fn release_after(&mut self, out_fence: std::os::fd::BorrowedFd<'_>) -> bool {
        // A real sync_file: its status can be read.
        assert!(out_fence.try_clone_to_owned().is_ok());
        self.1.set(self.1.get() + 1);
        true
    }
}
impl Drop for TestLease {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl TestBuffer {
    fn new(size: (u16, u16), pixel: u32, key: u64) -> Self {
        let buffer = HeapAllocator::new()
            .allocate(size.0.into(), size.1.into(), HeapFourcc::XRGB8888)
            .expect("heap buffer");
        buffer.fill(pixel).expect("fill");
        let fd = buffer.try_clone_fd().expect("dup");
        Self {
            buffer,
            fd,
            key,
            fence: None,
            leases: Rc::default(),
            fenced: Rc::default(),
        }
    }
}

impl ScanoutBuffer for TestBuffer {
    fn buffer_key(&self) -> BufferKey {
        BufferKey(self.key)
    }
    fn commit_key(&self) -> u64 {
        self.key
    }
    fn liveness(&self) -> Box<dyn Fn() -> bool> {
        Box::new(|| true)
    }
    fn dmabuf(&self) -> DmabufDesc<'_> {
        let layout = self.buffer.layout();
        DmabufDesc {
            size: (layout.width, layout.height),
            format: XRGB,
            modifier: 0,
            planes: vec![DmabufPlane {
                fd: self.fd.as_fd(),
                offset: 0,
                stride: layout.stride,
            }],
        }
    }
    fn export_acquire(&self) -> Result<Option<OwnedFd>, String> {
        self.fence
            .as_ref()
            .map(|f| f.try_clone().map_err(|e| e.to_string()))
            .transpose()
    }
    fn lease(&self) -> Result<Box<dyn Lease>, String> {
        self.leases.set(self.leases.get() + 1);
        Ok(Box::new(TestLease(
            self.leases.clone(),
            self.fenced.clone(),
        )))
    }
    fn label(&self) -> String {
        format!("test buffer {}", self.key)
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("fds").count()
}

fn framebuffers(p: &OutputPipeline) -> usize {
    device(p)
        .dev
        .resource_handles()
        .expect("resources")
        .framebuffers()
        .len()
}

#[test]
fn composited_frames_reach_the_screen() {
    let Some(mut p) = vkms_pipeline("composited_frames_reach_the_screen") else {
        return;
    };
    show_color(&mut p, 0xff20_4080);
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let blue = crc_now(&mut crcs);
    show_color(&mut p, 0xffc0_3010);
    let red = crc_now(&mut crcs);
    assert_ne!(blue, red, "a different frame must give a different CRC");
    show_color(&mut p, 0xff20_4080);
    assert_eq!(
        crc_now(&mut crcs),
        blue,
        "the same pixels again: the same CRC"
    );
    let stats = p.stats();
    assert_eq!((stats.commits, stats.composited, stats.flips), (3, 3, 3));
    let report = p.plane_report();
    assert!(
        report[0].content.starts_with("composited frame"),
        "{report:?}"
    );
}

#[test]
fn cursor_moves_do_not_recomposite() {
    let Some(mut p) = vkms_pipeline("cursor_moves_do_not_recomposite") else {
        return;
    };
    assert!(p.has_cursor_plane(), "vkms has a cursor plane");
    show_color(&mut p, 0xff10_1010);
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let bare = crc_now(&mut crcs);
    let pixels = vec![0xffff_ffffu32; 16 * 16];
    let image = CursorImage {
        key: 7,
        width: 16,
        height: 16,
        pixels: &pixels,
    };
    let at = |x, y| Plan {
        primary: PrimaryPlan::Keep,
        cursor: CursorPlan::Show {
            image,
            position: (x, y),
        },
        overlay: None,
    };
    show(&mut p, &at(10, 10));
    let first = crc_now(&mut crcs);
    assert_ne!(first, bare, "the cursor is on screen");
    show(&mut p, &at(200, 100));
    let moved = crc_now(&mut crcs);
    assert_ne!(moved, first, "the cursor moved");
    show(&mut p, &at(10, 10));
    assert_eq!(crc_now(&mut crcs), first, "back where it was");
    let stats = p.stats();
    assert_eq!(stats.composited, 1, "only the first frame was composited");
    assert_eq!(stats.commits, 4);
    assert!(p.plane_report()[1]
        .content
        .starts_with("cursor 16x16 at 10,10"));

    // One commit per vblank: nothing can be prepared while a flip is in flight.
    p.prepare(&at(20, 20)).unwrap().commit().unwrap();
    let err = p.prepare(&at(30, 30)).err().expect("busy");
    assert_eq!(err.step, Step::Busy);
    wait_flip(&mut p, Duration::from_secs(2)).expect("flip");

    // Too big for the plane: a typed error, nothing shown changes.
    let side = p.cursor_size().0 + 1;
    let big = vec![0u32; (side * side) as usize];
    let too_big = Plan {
        primary: PrimaryPlan::Keep,
        cursor: CursorPlan::Show {
            image: CursorImage {
                key: 9,
                width: side,
                height: side,
                pixels: &big,
            },
            position: (0, 0),
        },
        overlay: None,
    };
    let err = p.prepare(&too_big).err().expect("too big");
    assert!(matches!(err.error, KmsError::CursorTooBig { .. }), "{err}");
}

#[test]
fn direct_scanout_waits_for_the_in_fence_and_leases_until_replaced() {
    let Some(mut p) = vkms_pipeline("direct_scanout_waits_for_the_in_fence") else {
        return;
    };
    let (w, h) = p.mode().size();
    let green = 0xff30_a040;
    let (mut crcs, green_crc, black_crc) = reference_then_black(&mut p, green);

    // A client buffer with the same green, behind an unsignalled sw_sync fence.
    let gpu = SwTimeline::new().expect("sw_sync");
    let mut client = TestBuffer::new((w, h), green, 1);
    client.fence = Some(gpu.fence(1, "client render").expect("fence").into_fd());
    let plan = Plan {
        primary: PrimaryPlan::Direct(&client),
        cursor: CursorPlan::Hidden,
        overlay: None,
    };
    p.prepare(&plan).expect("prepare").commit().expect("commit");
    assert_eq!(client.leases.get(), 1, "leased while in flight");
    assert!(
        wait_flip(&mut p, Duration::from_millis(300)).is_none(),
        "the flip must wait for the client's fence"
    );
    assert_eq!(
        crc_now(&mut crcs),
        black_crc,
        "not on screen before the fence"
    );
    gpu.advance(1).expect("signal");
    wait_flip(&mut p, Duration::from_secs(2)).expect("flip after the fence");
    assert_eq!(
        crc_now(&mut crcs),
        green_crc,
        "the client's pixels, not composited"
    );
    assert_eq!(p.stats().direct, 1);
    assert!(p.plane_report()[0].content.starts_with("test buffer 1"));

    // Replaced by a composited frame: the lease lasts until that flip, not until commit.
    composite(&mut p, 0xff00_0000);
    let back = Plan {
        primary: PrimaryPlan::Composited { render_fence: None },
        cursor: CursorPlan::Hidden,
        overlay: None,
    };
    p.prepare(&back).expect("prepare").commit().expect("commit");
    let out_fence = p.out_fence().expect("out-fence").try_clone().expect("dup");
    assert_eq!(
        client.leases.get(),
        1,
        "still leased: the flip has not happened"
    );
    wait_flip(&mut p, Duration::from_secs(2)).expect("flip");
    assert_eq!(
        client.leases.get(),
        0,
        "lease ended by the flip that replaced it"
    );
    let out = lockstep_vm_support::sw_sync::SyncFile::from_fd(out_fence);
    assert!(
        out.is_signalled().expect("status"),
        "the out-fence signalled at the flip"
    );
    assert_eq!(crc_now(&mut crcs), black_crc);
    // The buffer is alive (liveness says so): its framebuffer stays cached for reuse.
    assert_eq!(p.cached_framebuffers(), 1);
}

/// The plan of a composited frame that comes with `fence`.
fn fenced_frame(fence: &OwnedFd) -> Plan<'_> {
    Plan {
        primary: PrimaryPlan::Composited {
            render_fence: Some(fence.as_fd()),
        },
        cursor: CursorPlan::Hidden,
        overlay: None,
    }
}

/// The native-fence path of a GPU renderer, with a sw_sync fence standing in for the GPU
/// (the VM's Mesa has no `EGL_ANDROID_native_fence_sync`): the composited frame goes to the
/// primary plane with the fence as `IN_FENCE_FD`, the commit returns at once, and the display
/// shows the frame only after the fence signals.
#[test]
fn a_composited_frame_with_a_render_fence_waits_for_it_on_the_plane() {
    let Some(mut p) = vkms_pipeline("composited_frame_render_fence") else {
        return;
    };
    assert!(p.primary_takes_in_fences(), "vkms planes take IN_FENCE_FD");
    let red = 0xffc0_2020;
    let (mut crcs, red_crc, black_crc) = reference_then_black(&mut p, red);

    let gpu = SwTimeline::new().expect("sw_sync");
    let fence = gpu.fence(1, "render").expect("fence").into_fd();
    composite(&mut p, red);
    let fds = open_fds();
    let plan = fenced_frame(&fence);
    let started = Instant::now();
    p.prepare(&plan).expect("prepare").commit().expect("commit");
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "the commit does not wait for the fence"
    );
    assert!(
        wait_flip(&mut p, Duration::from_millis(300)).is_none(),
        "the flip waits for the render fence"
    );
    // Compared with the frame that waits (not with black, whose CRC a loaded host can
    // catch mid-change: seen once with vblank timer overruns).
    let pending_crc = crc_now(&mut crcs);
    assert_ne!(
        pending_crc, red_crc,
        "the fenced frame is not shown before the fence (black {black_crc:?})"
    );
    gpu.advance(1).expect("signal");
    wait_flip(&mut p, Duration::from_secs(2)).expect("flip after the fence");
    assert_eq!(crc_now(&mut crcs), red_crc, "the composited frame is shown");
    assert!(
        open_fds() <= fds,
        "the pipeline's copy of the fence is closed"
    );

    // A failed prepare with a render fence leaves no fd behind and the old frame shown.
    let fence = gpu.fence(2, "render").expect("fence").into_fd();
    composite(&mut p, 0xff00_0000);
    let fds = open_fds();
    let plan = fenced_frame(&fence);
    for step in [Step::FenceExport, Step::TestOnly] {
        p.faults().arm(step);
        let err = p.prepare(&plan).err().expect("the armed step fails");
        assert_eq!(err.step, step, "{err}");
        assert_eq!(open_fds(), fds, "{step:?}: no fd left behind");
        assert!(!p.flip_pending());
        assert_eq!(crc_now(&mut crcs), red_crc, "{step:?}: the old frame stays");
    }
}

#[test]
fn the_same_buffer_commit_is_carried_not_leased_again() {
    let Some(mut p) = vkms_pipeline("the_same_buffer_commit_is_carried") else {
        return;
    };
    let (w, h) = p.mode().size();
    let client = TestBuffer::new((w, h), 0xff80_8080, 3);
    let pixels = vec![0xffff_0000u32; 8 * 8];
    for x in [0, 50, 100] {
        let plan = Plan {
            primary: PrimaryPlan::Direct(&client),
            cursor: CursorPlan::Show {
                image: CursorImage {
                    key: 1,
                    width: 8,
                    height: 8,
                    pixels: &pixels,
                },
                position: (x, 0),
            },
            overlay: None,
        };
        show(&mut p, &plan);
        assert_eq!(client.leases.get(), 1, "one lease for one buffer commit");
    }
    assert_eq!(
        client.fenced.get(),
        0,
        "a buffer that stays needs no out-fence"
    );
}

#[test]
fn every_failing_prepare_step_rolls_back() {
    let Some(mut p) = vkms_pipeline("every_failing_prepare_step_rolls_back") else {
        return;
    };
    let (w, h) = p.mode().size();
    show_color(&mut p, 0xff40_4040);
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let before_crc = crc_now(&mut crcs);
    let pixels = vec![0xff00_ff00u32; 8 * 8];
    let gpu = SwTimeline::new().expect("sw_sync");
    let dev = device(&p);
    for (n, &step) in Step::injectable().iter().enumerate() {
        let mut client = TestBuffer::new((w, h), 0xff00_80ff, 100 + n as u64);
        client.fence = Some(gpu.fence(n as u32 + 1, "render").expect("fence").into_fd());
        let fbs = framebuffers(&p);
        let fds = open_fds();
        let gems = dev.imported_gem_handles();
        let cached = p.cached_framebuffers();
        let plan = Plan {
            primary: PrimaryPlan::Direct(&client),
            cursor: CursorPlan::Show {
                image: CursorImage {
                    key: 1000 + n as u64,
                    width: 8,
                    height: 8,
                    pixels: &pixels,
                },
                position: (5, 5),
            },
            overlay: None,
        };
        p.faults().arm(step);
        let err = p.prepare(&plan).err().expect("the armed step fails");
        assert_eq!(err.step, step, "{err}");
        assert!(!p.faults().any_armed());
        assert_eq!(
            framebuffers(&p),
            fbs,
            "{step:?}: no framebuffer left behind"
        );
        assert_eq!(open_fds(), fds, "{step:?}: no fd left behind");
        assert_eq!(
            dev.imported_gem_handles(),
            gems,
            "{step:?}: no GEM handle left"
        );
        assert_eq!(p.cached_framebuffers(), cached, "{step:?}: nothing cached");
        assert_eq!(client.leases.get(), 0, "{step:?}: the lease was given back");
        assert!(!p.flip_pending());
        assert_eq!(
            crc_now(&mut crcs),
            before_crc,
            "{step:?}: the old frame stays"
        );

        // The next frame works.
        gpu.advance(1).expect("signal");
        composite(&mut p, 0xff40_4040);
        show(
            &mut p,
            &Plan {
                primary: PrimaryPlan::Composited { render_fence: None },
                cursor: CursorPlan::Hidden,
                overlay: None,
            },
        );
        assert_eq!(crc_now(&mut crcs), before_crc);
    }
    assert_eq!(p.stats().failed_prepares, Step::injectable().len() as u64);
    drop(p);
    assert_eq!(
        dev.imported_gem_handles(),
        0,
        "the pipeline's drop frees its imports"
    );
}

/// The CRTC's `ACTIVE` and `MODE_ID` as the kernel has them now.
fn crtc_state(p: &OutputPipeline) -> (Option<u64>, Option<u64>) {
    let props = device(p).dev.props(p.crtc()).expect("CRTC properties");
    (props.value("ACTIVE"), props.value("MODE_ID"))
}

#[test]
fn disabling_the_crtc_waits_for_the_pending_flip_and_ends_leases_at_its_event() {
    let Some(mut p) = vkms_pipeline("disabling_the_crtc_waits_for_the_pending_flip") else {
        return;
    };
    let (w, h) = p.mode().size();
    let green = 0xff30_a040;
    let (crcs, green_crc, _) = reference_then_black(&mut p, green);
    drop(crcs);

    // A client buffer on screen, and a second one in flight behind an unsignalled fence.
    let shown = TestBuffer::new((w, h), 0xff20_30d0, 1);
    show(
        &mut p,
        &Plan {
            primary: PrimaryPlan::Direct(&shown),
            cursor: CursorPlan::Hidden,
            overlay: None,
        },
    );
    let gpu = SwTimeline::new().expect("sw_sync");
    let mut next = TestBuffer::new((w, h), 0xffc0_4020, 2);
    next.fence = Some(gpu.fence(1, "client render").expect("fence").into_fd());
    let plan = Plan {
        primary: PrimaryPlan::Direct(&next),
        cursor: CursorPlan::Hidden,
        overlay: None,
    };
    p.prepare(&plan).expect("prepare").commit().expect("commit");
    assert!(p.flip_pending());

    // TEST_ONLY works with the flip pending; the commit itself must wait for it.
    let request = p.prepare_disable().expect("TEST_ONLY of the disable");
    assert_eq!(crtc_state(&p).0, Some(1), "the check changed nothing");
    assert!(
        p.commit_disable(request).is_err(),
        "refused while a flip is pending"
    );
    gpu.advance(1).expect("signal");
    wait_flip(&mut p, Duration::from_secs(2)).expect("the pending flip");
    assert_eq!((shown.leases.get(), next.leases.get()), (0, 1));

    let request = p.prepare_disable().expect("TEST_ONLY of the disable");
    p.commit_disable(request).expect("disable");
    assert_eq!(crtc_state(&p), (Some(0), Some(0)), "CRTC off, no mode");
    assert!(p.flip_pending(), "the disabling commit has an event");
    assert_eq!(next.fenced.get(), 1, "the lease got the out-fence");
    assert_eq!(next.leases.get(), 1, "leased until the CRTC stopped");
    wait_flip(&mut p, Duration::from_secs(2)).expect("the disabling commit's event");
    assert_eq!(next.leases.get(), 0, "lease ended at the event");
    assert_eq!(p.plane_report()[0].content, "off");

    // Off and staying off: no event to wait for.
    let request = p.prepare_disable().expect("TEST_ONLY of the disable");
    p.commit_disable(request).expect("disable again");
    assert!(!p.flip_pending());

    // The first modeset is checked, then lights the CRTC up again.
    p.test_modeset().expect("TEST_ONLY of the modeset");
    assert_eq!(crtc_state(&p).0, Some(0), "the check changed nothing");
    show_color(&mut p, green);
    assert_eq!(crtc_state(&p).0, Some(1));
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    assert_eq!(crc_now(&mut crcs), green_crc, "the frame is on screen");
}
