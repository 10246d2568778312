//! Benchmark (not a test: it prints and asserts nothing about time): how many frames reach the
//! screen at the first vblank they could make, on the KMS backend on vkms (issue 17, item 2).
//!
//! ```sh
//! bench/kms-on-time.sh [FILTER]   # vm/test ... -- --ignored --nocapture kms_on_time_
//! ```
//!
//! Each client animates like a GPU client: on every frame callback it commits its next buffer
//! with an acquire point that is a sw_sync fence ("the GPU is still rendering"), and a signaller
//! thread signals that fence at a chosen time before the next vblank: early in the frame, just
//! before lockstep's composition deadline, or just after it. Every commit asks for
//! wp_presentation feedback, which on KMS carries the kernel's flip timestamp and vblank
//! sequence. A frame is "n vblanks late" when it was shown n vblanks after the first vblank
//! that followed its fence's signal (0: on time). The vblank grid comes from the flip
//! timestamps themselves (vkms flips exactly on its vblank timer).
//!
//! Cases: a fullscreen dmabuf client scanned out directly, and a composited 128×128 window (shm
//! buffers with acquire points: never on a plane), each with 1 and 10 animating clients. With 10, every
//! client has its own fences, all signalled at the same point of the frame; in the fullscreen
//! case the 9 others are windows behind the fullscreen one (hidden, so lockstep throttles their
//! frame callbacks), and only the fullscreen client's frames are counted.
//!
//! `kms_on_time_gles_window_*` are the composited cases with GLES composition (Mesa's
//! kms_swrast, llvmpipe, in the VM).
//!
//! `kms_on_time_crc` reads vkms's CRCs are read too (one per vblank, with its vblank
//! number) and each shown frame is checked against them: the CRC must change at the vblank
//! the feedback reported. vkms then composes every frame on the CPU, which under the VM's
//! emulation costs several milliseconds per vblank, so the other cases leave it off.
#![allow(clippy::disallowed_macros)]

use std::{
    sync::{mpsc, Arc, Mutex},
    time::Duration,
};

use lockstep_sync::{Point, SyncFile};
use lockstep_vm_support::{crc::CrcReader, sw_sync::SwTimeline};
use wayland_client::protocol::wl_buffer::WlBuffer;

use crate::{
    client::{FrameCallback, FrameTag, Presented},
    fixture::{ClientId, Fixture},
    kms::{dmabuf_client, quiesce, stats, sync_device, vkms, DmabufClient},
};

/// CLOCK_MONOTONIC in nanoseconds (the clock of the kernel's flip timestamps).
fn monotonic_ns() -> u128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u128 * 1_000_000_000 + t.tv_nsec as u128
}

/// Where in the frame the fences signal: this long before the vblank that follows the commit.
#[derive(Debug, Clone, Copy)]
struct Lead {
    name: &'static str,
    before_vblank: Duration,
}

const LEADS: [Lead; 3] = [
    Lead {
        name: "early (14 ms before the vblank)",
        before_vblank: Duration::from_millis(14),
    },
    Lead {
        name: "just before the deadline (3 ms before)",
        before_vblank: Duration::from_millis(3),
    },
    Lead {
        name: "just after the deadline (1 ms before)",
        before_vblank: Duration::from_millis(1),
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fullscreen,
    Window,
}

/// What composites the windows: pixman, or GLES on Mesa's kms_swrast (llvmpipe; packed by
/// `vm/test --mesa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Composer {
    Pixman,
    Gles,
}

/// A fence to signal at `at_ns` (CLOCK_MONOTONIC), for frame `tag`.
struct SignalAt {
    at_ns: u128,
    timeline: Arc<SwTimeline>,
    fence: SyncFile,
    tag: u64,
}

/// When each frame's fence signalled: (tag, CLOCK_MONOTONIC ns).
type SignalLog = Arc<Mutex<Vec<(u64, u128)>>>;

/// Signals fences at their times on its own thread, like a GPU finishing independently of the
/// compositor, and records when each was signalled: (tag, ns). The time is the fence's own
/// signal timestamp from the kernel: on the guest's one vCPU the compositor, woken by the
/// signal, may run before this thread could read a clock.
fn signaller() -> (mpsc::Sender<SignalAt>, SignalLog) {
    let (tx, rx) = mpsc::channel::<SignalAt>();
    let done = Arc::new(Mutex::new(Vec::new()));
    let log = done.clone();
    std::thread::spawn(move || {
        // A GPU signals without waiting for a CPU: on the guest's one vCPU this thread must
        // not queue behind the compositor's composition, so it runs real-time (root in the
        // VM; elsewhere it stays a normal thread and says so).
        let param = libc::sched_param { sched_priority: 10 };
        // SAFETY: sched_setscheduler(0, ...) changes this thread's policy; `param` is a
        // valid sched_param for the call's duration.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
            eprintln!(
                "kms_on_time: the signaller runs without SCHED_FIFO ({}): its signals may be late",
                std::io::Error::last_os_error()
            );
        }
        // The emulated guest wakes sleepers late (about 1-2 ms under load): aim earlier by
        // the median lateness of the last signals, so that they land where the case says.
        let mut lateness: std::collections::VecDeque<u128> = Default::default();
        for job in rx {
            let mut recent: Vec<u128> = lateness.iter().copied().collect();
            recent.sort_unstable();
            let early_by = recent.get(recent.len() / 2).copied().unwrap_or(0);
            let aim = job.at_ns.saturating_sub(early_by);
            let now = monotonic_ns();
            if aim > now {
                std::thread::sleep(Duration::from_nanos((aim - now) as u64));
            }
            job.timeline.advance(1).expect("signal the sw_sync fence");
            let (_, fences) = job.fence.fences().expect("sync_file info");
            let t = u128::from(fences[0].timestamp.0);
            if aim > now {
                if lateness.len() == 16 {
                    lateness.pop_front();
                }
                lateness.push_back(t.saturating_sub(aim));
            }
            log.lock().unwrap().push((job.tag, t));
        }
    });
    (tx, done)
}

/// One animating client.
struct Animator {
    id: ClientId,
    sync: DmabufClient,
    gpu: Arc<SwTimeline>,
    buffers: Vec<WlBuffer>,
    /// Frames committed so far (the last one's acquire point is `frames`).
    frames: u64,
    /// `frame_done` length when the last frame was committed.
    callbacks_seen: usize,
    counted: bool,
}

/// Frame tags: client index in the high bits, frame number in the low ones.
fn tag(client: usize, frame: u64) -> u64 {
    (client as u64) << 32 | frame
}

impl Animator {
    /// Commits the next frame with an unsignalled acquire fence; returns its tag and fence.
    fn commit_next(&mut self, f: &mut Fixture, index: usize) -> (u64, SyncFile) {
        self.frames += 1;
        let point = self.frames;
        let fence = self
            .gpu
            .fence(point as u32, "on-time frame")
            .expect("sw_sync fence");
        let fence = SyncFile::from_fd(fence.into_fd()).expect("sync_file");
        self.sync
            .acquire
            .import_sync_file(Point(point), &fence)
            .expect("import the fence");
        let frame_tag = tag(index, point);
        let cl = f.client(self.id);
        self.callbacks_seen = cl.data.frame_done.len();
        self.sync.top.surface.frame(&cl.qh, FrameCallback);
        cl.presentation
            .feedback(&self.sync.top.surface, &cl.qh, FrameTag(frame_tag));
        let buffer = &self.buffers[point as usize % self.buffers.len()];
        self.sync.commit(buffer, point, point);
        let _ = f.client(self.id).conn.flush();
        (frame_tag, fence)
    }

    fn frame_done(&self, f: &mut Fixture) -> bool {
        f.client(self.id).data.frame_done.len() > self.callbacks_seen
    }
}

/// How long before the first vblank after it a fence signalled, in buckets (the emulated
/// guest places signals only roughly where a case aims, so runs are compared by where the
/// signals actually landed): lower bounds in µs.
const LEAD_BUCKETS_US: [u128; 5] = [8000, 4000, 2000, 1000, 0];

/// The distribution of one case.
#[derive(Default, Debug)]
struct Tally {
    late: [usize; 4],
    /// Shown at or before the vblank its fence signalled in (must stay 0).
    early: usize,
    discarded: usize,
    unanswered: usize,
    /// How long before the vblank the fences actually signalled, µs (median).
    signal_lead_us: Vec<u128>,
    /// Per bucket of [`LEAD_BUCKETS_US`]: frames, and of them on time.
    by_lead: [(usize, usize); 5],
}

impl Tally {
    fn total(&self) -> usize {
        self.late.iter().sum::<usize>() + self.early + self.discarded + self.unanswered
    }
}

/// Frames each counted client animates per case (after `WARMUP` that are not counted).
const FRAMES_ONE: u64 = 90;
const FRAMES_TEN: u64 = 30;
const WARMUP: u64 = 5;
/// The windows' size: ten overlapping 256×256 windows take longer than a refresh to compose
/// under the VM's emulation, which would measure the emulation, not the scheduling.
const WINDOW: i32 = 128;

fn run_case(
    path: &std::path::Path,
    device: &lockstep_sync::DrmDevice,
    kind: Kind,
    clients: usize,
    lead: Lead,
    with_crc: bool,
    composer: Composer,
) {
    let mut f = match composer {
        Composer::Pixman => Fixture::kms(path),
        Composer::Gles => Fixture::kms_gles(path),
    };
    let (tx, signalled) = signaller();
    let mut animators = Vec::new();
    // Windows first, then (fullscreen case) the fullscreen client on top of them.
    let windows = if kind == Kind::Fullscreen {
        clients - 1
    } else {
        clients
    };
    for i in 0..clients {
        let id = f.add_client();
        let fullscreen = kind == Kind::Fullscreen && i == windows;
        let size = (!fullscreen).then_some((WINDOW, WINDOW));
        let sync = dmabuf_client(&mut f, id, device, size);
        let colours = [0xff30_a040u32, 0xff20_30d0, 0xffd0_6020];
        let buffers = colours
            .iter()
            .map(|&c| {
                if fullscreen {
                    let (heap, buffer) = sync.buffer(&mut f, id, c);
                    std::mem::forget(heap); // the dmabuf lives as long as the benchmark
                    buffer
                } else {
                    f.client(id)
                        .shm_buffer(WINDOW, WINDOW, c.wrapping_add(i as u32 * 0x0a0a))
                }
            })
            .collect();
        let mut animator = Animator {
            id,
            sync,
            gpu: Arc::new(SwTimeline::new().expect("sw_sync")),
            buffers,
            frames: 0,
            callbacks_seen: 0,
            counted: kind == Kind::Window || fullscreen,
        };
        // Mapped now, in this order (its fence signalled at once), so that the fullscreen
        // client, last, is the topmost window: a window mapped later would be raised above it.
        animator.commit_next(&mut f, i);
        animator.gpu.advance(1).expect("signal");
        let mapped = f.wait_until(Duration::from_secs(5), |f| animator.frame_done(f));
        assert!(mapped, "client {i} mapped");
        animators.push(animator);
    }
    quiesce(&mut f);
    let crcs = with_crc.then(|| {
        let mut reader = CrcReader::open_vkms(0).expect("crc");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(crc) = reader.next(Duration::from_millis(100)) {
                    sink.lock().unwrap().push(crc);
                }
            }
        });
        (log, stop)
    });
    let stats_before = stats(&mut f);
    let frames = if clients == 1 { FRAMES_ONE } else { FRAMES_TEN } + WARMUP;
    let refresh = f.server.state.core.outputs[crate::kms::OUTPUT].refresh;
    // Commits each client's next frame and has its fence signalled `lead` before the vblank
    // that follows (predicted from the last flip: vkms flips exactly on its vblank timer).
    let next_frame = |f: &mut Fixture, a: &mut Animator, i: usize| {
        let now = monotonic_ns();
        let data = &f.server.state.core.outputs[crate::kms::OUTPUT];
        let last = data.last_presentation.unwrap_or_default().as_nanos();
        let r = refresh.as_nanos();
        let vblank = if now < last {
            last
        } else {
            last + ((now - last) / r + 1) * r
        };
        let at = vblank.saturating_sub(lead.before_vblank.as_nanos());
        let (frame_tag, fence) = a.commit_next(f, i);
        tx.send(SignalAt {
            at_ns: at.max(now),
            timeline: a.gpu.clone(),
            fence,
            tag: frame_tag,
        })
        .expect("signaller");
    };
    for (i, a) in animators.iter_mut().enumerate() {
        next_frame(&mut f, a, i);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        f.dispatch();
        for (i, a) in animators.iter_mut().enumerate() {
            if a.frames < frames && a.frame_done(&mut f) {
                next_frame(&mut f, a, i);
            }
        }
        let all_done = animators.iter().filter(|a| a.counted).all(|a| {
            a.frames >= frames && f.clients[a.id.0].data.frame_done.len() > a.callbacks_seen
        });
        if all_done || std::time::Instant::now() > deadline {
            break;
        }
    }
    f.settle();
    let stats_after = stats(&mut f);

    // The vblank grid, from every flip any client saw.
    let mut shown: Vec<(u64, u128, u64)> = Vec::new();
    let mut answers = std::collections::HashMap::new();
    for a in &animators {
        for &(t, p) in &f.clients[a.id.0].data.presented_tagged {
            answers.insert(t, p);
            if let Presented::Shown { time_ns, seq, .. } = p {
                shown.push((t, time_ns, seq));
            }
        }
    }
    shown.sort_by_key(|s| s.2);
    let (first, last) = (shown.first().expect("flips"), shown.last().expect("flips"));
    let period = if last.2 > first.2 {
        (last.1 - first.1) / u128::from(last.2 - first.2)
    } else {
        refresh.as_nanos()
    };
    let vblank_after = |t: u128| -> (u64, u128) {
        // The first vblank strictly after `t`, as (sequence, time).
        let k = if t >= first.1 {
            ((t - first.1) / period + 1) as i128
        } else {
            -(((first.1 - t) / period) as i128)
        };
        let seq = (i128::from(first.2) + k) as u64;
        (seq, (first.1 as i128 + k * period as i128) as u128)
    };
    let signal_times: std::collections::HashMap<u64, u128> =
        signalled.lock().unwrap().iter().copied().collect();
    let mut tally = Tally::default();
    let mut crc_checked = (0usize, 0usize);
    let crc_log = crcs.map(|(log, stop)| {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(200));
        let log = log.lock().unwrap().clone();
        log
    });
    for (i, a) in animators.iter().enumerate() {
        if !a.counted {
            continue;
        }
        for frame in WARMUP + 1..=a.frames {
            let t = tag(i, frame);
            let Some(&signal) = signal_times.get(&t) else {
                tally.unanswered += 1;
                continue;
            };
            let (first_seq, first_time) = vblank_after(signal);
            let lead_us = (first_time - signal) / 1000;
            tally.signal_lead_us.push(lead_us);
            let bucket = LEAD_BUCKETS_US
                .iter()
                .position(|&b| lead_us >= b)
                .unwrap_or(LEAD_BUCKETS_US.len() - 1);
            tally.by_lead[bucket].0 += 1;
            match answers.get(&t) {
                Some(Presented::Shown { seq, .. }) => {
                    // At or before the vblank it signalled in: counted as on time (vkms's
                    // vblank timer ran late, so that vblank latched it).
                    if *seq <= first_seq {
                        tally.by_lead[bucket].1 += 1;
                    }
                    if *seq < first_seq {
                        tally.early += 1;
                    } else {
                        tally.late[((seq - first_seq) as usize).min(3)] += 1;
                    }
                    if let Some(log) = &crc_log {
                        // The CRC of vblank `seq` differs from the one before: the new
                        // pixels reached the screen at the vblank the feedback reported.
                        let at = |s: u64| {
                            log.iter()
                                .find(|c| c.frame == Some(s))
                                .map(|c| c.values.clone())
                        };
                        if let (Some(now), Some(before)) = (at(*seq), at(seq - 1)) {
                            crc_checked.0 += 1;
                            if now != before {
                                crc_checked.1 += 1;
                            }
                        }
                    }
                }
                Some(Presented::Discarded) => tally.discarded += 1,
                None => tally.unanswered += 1,
            }
        }
    }
    tally.signal_lead_us.sort();
    let median_lead = tally
        .signal_lead_us
        .get(tally.signal_lead_us.len() / 2)
        .copied()
        .unwrap_or(0);
    let n = tally.total().max(1) as f64;
    let pct = |x: usize| 100.0 * x as f64 / n;
    let kind_name = match (kind, composer) {
        (Kind::Fullscreen, Composer::Pixman) => "direct-scanout fullscreen",
        (Kind::Fullscreen, Composer::Gles) => "direct-scanout fullscreen (GLES renderer)",
        (Kind::Window, Composer::Pixman) => "composited window",
        (Kind::Window, Composer::Gles) => "composited window (GLES)",
    };
    eprintln!(
        "BENCH on-time | {kind_name} | N={clients} | {} | frames {} | on time {} ({:.0} %) | +1 {} ({:.0} %) | +2 {} | +3 or more {} | discarded {} | no feedback {} | before its fence {} | fences signalled a median {:.2} ms before their vblank | lockstep: {} composited, {} direct, {} commits | guest load {}",
        lead.name,
        tally.total(),
        tally.late[0],
        pct(tally.late[0]),
        tally.late[1],
        pct(tally.late[1]),
        tally.late[2],
        tally.late[3],
        tally.discarded,
        tally.unanswered,
        tally.early,
        median_lead as f64 / 1000.0,
        stats_after.composited - stats_before.composited,
        stats_after.direct - stats_before.direct,
        stats_after.commits - stats_before.commits,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    );
    let buckets: Vec<String> = LEAD_BUCKETS_US
        .iter()
        .zip(tally.by_lead)
        .filter(|(_, (n, _))| *n > 0)
        .map(|(b, (n, on))| format!("≥{} ms: {on}/{n} on time", *b as f64 / 1000.0))
        .collect();
    eprintln!(
        "BENCH on-time by lead | {kind_name} | N={clients} | {} | {}",
        lead.name,
        buckets.join(" | ")
    );
    if crc_log.is_some() {
        eprintln!(
            "BENCH on-time CRC | {kind_name} | N={clients} | {} | CRC changed at the reported vblank for {} of {} shown frames checked",
            lead.name, crc_checked.1, crc_checked.0
        );
    }
    drop(tx);
}

/// Runs the three signal points of one kind and client count; `with_crc` also reads vkms's
/// CRCs (slower: vkms composes every vblank).
fn run(test: &str, kind: Kind, clients: usize, with_crc: bool, composer: Composer) {
    let (Some(path), Some(device)) = (vkms(test), sync_device(test)) else {
        return;
    };
    for lead in LEADS {
        run_case(&path, &device, kind, clients, lead, with_crc, composer);
    }
}

/// One timing case: an ignored test named `$name` (so that a filter picks it).
macro_rules! timing_case {
    ($name:ident, $kind:expr, $clients:expr, $composer:expr) => {
        #[test]
        #[ignore = "benchmark: run in the VM with --ignored (bench/kms-on-time.sh)"]
        fn $name() {
            run(stringify!($name), $kind, $clients, false, $composer);
        }
    };
}

timing_case!(
    kms_on_time_fullscreen_1,
    Kind::Fullscreen,
    1,
    Composer::Pixman
);
timing_case!(
    kms_on_time_fullscreen_10,
    Kind::Fullscreen,
    10,
    Composer::Pixman
);
timing_case!(kms_on_time_window_1, Kind::Window, 1, Composer::Pixman);
timing_case!(kms_on_time_window_10, Kind::Window, 10, Composer::Pixman);
// The composited cases with GLES composition (issue 17: "measure the on-time rate with both
// renderers"). There is no fullscreen GLES case: in the VM, EGL on kms_swrast cannot import
// the client's dma-heap buffers, so lockstep refuses them (create_immed -> invalid_wl_buffer)
// before they could reach a plane.
timing_case!(kms_on_time_gles_window_1, Kind::Window, 1, Composer::Gles);
timing_case!(kms_on_time_gles_window_10, Kind::Window, 10, Composer::Gles);

/// The CRC cross-check: one client of each kind, with vkms's CRCs read.
#[test]
#[ignore = "benchmark: run in the VM with --ignored (bench/kms-on-time.sh crc)"]
fn kms_on_time_crc() {
    run(
        "kms_on_time_crc",
        Kind::Fullscreen,
        1,
        true,
        Composer::Pixman,
    );
    run("kms_on_time_crc", Kind::Window, 1, true, Composer::Pixman);
}
