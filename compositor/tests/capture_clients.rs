//! Screen capture with the real Debian tools, against the real `lockstep` binary on the
//! headless backend: wf-recorder (a video through wlr-screencopy) and wayvnc (a VNC server on
//! wlr-screencopy, checked with a small RFB client written here).
//!
//! Both capture weston-simple-shm's window (concentric rings on a white frame, redrawn every
//! frame) and are checked by what they produce: the video has frames of the output's size
//! that show the window where lockstep put it and the background elsewhere; the VNC
//! framebuffer is pixel for pixel what lockstep's own screenshot shows outside the (animated)
//! window. A missing program skips, or fails with `LOCKSTEP_REQUIRE_CLIENTS=1`
//! (`scripts/deps` installs them).

mod common;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    thread,
    time::{Duration, Instant},
};

use common::{
    fraction_equal, read_png, require_programs, screenshot_dir, signal, stdout_of, window_region,
    with_timeout, Lockstep, LockstepOptions, Proc,
};
use lockstep::ipc::WindowInfo;
use lockstep_render::{Frame, PixelFormat};

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The headless output's size (`LockstepOptions::headless`).
const OUTPUT: (u32, u32) = (1280, 720);

/// Share of `frame`'s pixels within `tolerance` of `rgb` in every channel (lossy video
/// changes colours a little).
fn fraction_near(frame: &Frame, rgb: [u8; 3], tolerance: u8) -> f64 {
    let mut near = 0u64;
    let mut total = 0u64;
    for row in frame.rgba_rows() {
        for px in row.chunks_exact(4) {
            total += 1;
            if px[..3]
                .iter()
                .zip(rgb)
                .all(|(&a, b)| a.abs_diff(b) <= tolerance)
            {
                near += 1;
            }
        }
    }
    near as f64 / total.max(1) as f64
}

/// The part of the output right of `window` and below it: lockstep's background only
/// (the one window sits at the top left).
fn beside(frame: &Frame, window: &WindowInfo) -> Frame {
    let x = (window.position.0 + window.size.0 + 20).max(0) as u32;
    frame.crop(x, 0, frame.width().saturating_sub(x), frame.height())
}

/// Starts lockstep with weston-simple-shm on it; returns both, the window and lockstep's
/// background colour.
fn lockstep_with_rings(test: &str) -> (Lockstep, Proc, WindowInfo, [u8; 3]) {
    let mut lockstep = Lockstep::start(test, LockstepOptions::headless());
    let background = lockstep.background();
    let mut client = lockstep.spawn_client("weston-simple-shm", &[]);
    let window = lockstep.wait_for_window(Some(&mut client));
    assert!(
        window.position.0 + window.size.0 + 20 < OUTPUT.0 as i32,
        "the window leaves no background beside it: {window:?}"
    );
    (lockstep, client, window, background)
}

/// Runs ffprobe/ffmpeg on `args` and returns stdout (they must succeed).
fn ff(lockstep: &Lockstep, program: &str, args: &[&str]) -> String {
    let mut command = std::process::Command::new(program);
    command.args(["-v", "error"]).args(args);
    stdout_of(lockstep, command, &format!("{program} {args:?}"))
}

#[test]
fn wf_recorder_records_a_window_on_screen() {
    const TEST: &str = "wf-recorder";
    if !require_programs(
        TEST,
        &["wf-recorder", "ffprobe", "ffmpeg", "weston-simple-shm"],
    ) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let (mut lockstep, _client, window, background) = lockstep_with_rings(TEST);
        let video = lockstep.runtime_dir().join("recording.mkv");
        let video_arg = video.to_string_lossy().into_owned();
        let mut recorder = lockstep.spawn_client("wf-recorder", &["-f", &video_arg]);
        // Record until the file holds more than its header, then a second more.
        let deadline = Instant::now() + Duration::from_secs(20);
        while video.metadata().map_or(0, |m| m.len()) < 4096 {
            assert!(
                Instant::now() < deadline && recorder.exited().is_none(),
                "wf-recorder wrote nothing\n{}\n{}",
                recorder.output(),
                lockstep.output()
            );
            thread::sleep(Duration::from_millis(100));
        }
        thread::sleep(Duration::from_secs(1));
        // Ctrl+C is how a user stops it: it then finishes the file.
        signal(recorder.pid(), libc::SIGINT);
        let status = recorder.wait_timeout(Duration::from_secs(20));
        assert!(
            status.is_some_and(|s| s.success()),
            "wf-recorder did not end cleanly on SIGINT: {status:?}\n{}",
            recorder.output()
        );

        let probe = ff(
            &lockstep,
            "ffprobe",
            &[
                "-count_frames",
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=width,height,nb_read_frames",
                "-of",
                "default=noprint_wrappers=1",
                &video_arg,
            ],
        );
        let field = |name: &str| -> u64 {
            probe
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("ffprobe gave no {name}: {probe}"))
        };
        let frames = field("nb_read_frames");
        assert_eq!(
            (field("width"), field("height")),
            (u64::from(OUTPUT.0), u64::from(OUTPUT.1)),
            "{probe}"
        );
        assert!(frames >= 2, "only {frames} frames recorded: {probe}");

        // The last frame, as a PNG kept with the other test screenshots.
        let png = screenshot_dir().join("wf-recorder-last-frame.png");
        let png_arg = png.to_string_lossy().into_owned();
        ff(
            &lockstep,
            "ffmpeg",
            &[
                "-y", "-sseof", "-1", "-i", &video_arg, "-update", "1", &png_arg,
            ],
        );
        let frame = read_png(&png);
        let shown = window_region(&frame, &window);
        let on_window = 1.0 - fraction_near(&shown, background, 12);
        let elsewhere = fraction_near(&beside(&frame, &window), background, 12);
        report(TEST, frames, on_window, elsewhere);
        assert!(
            on_window > 0.9,
            "the recording does not show the window at {window:?}: only {on_window:.3} of it \
             differs from the background {background:?} ({})",
            png.display()
        );
        assert!(
            elsewhere > 0.98,
            "the recording does not show the background beside the window: {elsewhere:.3} ({})",
            png.display()
        );
        lockstep.assert_running();
    });
}

#[allow(clippy::disallowed_macros)] // test report for the person running the tests
fn report(test: &str, frames: u64, on_window: f64, elsewhere: f64) {
    eprintln!(
        "{test}: {frames} frames; last frame: {on_window:.3} of the window not background, \
         {elsewhere:.3} of the rest background"
    );
}

/// A local TCP port nobody listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    listener.local_addr().expect("its address").port()
}

/// The smallest RFB 3.8 client that gets one frame (RFC 6143): no security, 32-bit pixels
/// (B, G, R, X in memory), raw encoding, one full non-incremental update.
struct Rfb(TcpStream);

impl Rfb {
    fn read(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.0
            .read_exact(&mut buf)
            .expect("RFB: the server hung up");
        buf
    }

    fn u16(&mut self) -> u16 {
        let b = self.read(2);
        u16::from_be_bytes([b[0], b[1]])
    }

    fn u32(&mut self) -> u32 {
        let b = self.read(4);
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).expect("RFB: cannot write");
    }

    /// Handshake: the desktop's size and name. Asks for 32-bit pixels and raw encoding.
    fn start(&mut self) -> (u16, u16, String) {
        let version = self.read(12);
        assert_eq!(&version[..4], b"RFB ", "not an RFB server: {version:?}");
        self.write(b"RFB 003.008\n");
        let count = self.read(1)[0] as usize;
        assert!(count > 0, "RFB: the server refuses the connection");
        let security = self.read(count);
        assert!(
            security.contains(&1),
            "RFB: no 'None' security offered: {security:?}"
        );
        self.write(&[1]);
        assert_eq!(self.u32(), 0, "RFB: security handshake failed");
        // ClientInit: share the desktop.
        self.write(&[1]);
        let (width, height) = (self.u16(), self.u16());
        let _server_format = self.read(16);
        let name_len = self.u32() as usize;
        let name = String::from_utf8_lossy(&self.read(name_len)).into_owned();
        // SetPixelFormat: 32 bpp, depth 24, little endian, true colour, 8 bits per channel,
        // red at bit 16, green at 8, blue at 0.
        let mut set_format = vec![0u8, 0, 0, 0, 32, 24, 0, 1];
        for max in [255u16; 3] {
            set_format.extend(max.to_be_bytes());
        }
        set_format.extend([16, 8, 0, 0, 0, 0]);
        self.write(&set_format);
        // SetEncodings: raw only.
        self.write(&[2, 0, 0, 1, 0, 0, 0, 0]);
        (width, height, name)
    }

    /// Asks for an update of the whole `width`×`height` screen and applies the answer to
    /// `pixels` (B, G, R, X rows of `width`).
    fn update(&mut self, incremental: bool, width: u16, height: u16, pixels: &mut [u8]) {
        let mut request = vec![3u8, u8::from(incremental), 0, 0, 0, 0];
        request.extend(width.to_be_bytes());
        request.extend(height.to_be_bytes());
        self.write(&request);
        let kind = self.read(1)[0];
        assert_eq!(
            kind, 0,
            "RFB: expected a FramebufferUpdate, got message {kind}"
        );
        let _padding = self.read(1);
        let stride = usize::from(width) * 4;
        for _ in 0..self.u16() {
            let (x, y, w, h) = (self.u16(), self.u16(), self.u16(), self.u16());
            let encoding = self.u32();
            assert_eq!(encoding, 0, "RFB: asked for raw, got encoding {encoding}");
            assert!(
                x + w <= width && y + h <= height,
                "RFB: rectangle {x},{y} {w}x{h} outside {width}x{height}"
            );
            let data = self.read(usize::from(w) * usize::from(h) * 4);
            for (row, line) in data.chunks_exact(usize::from(w) * 4).enumerate() {
                let at = (usize::from(y) + row) * stride + usize::from(x) * 4;
                pixels[at..at + line.len()].copy_from_slice(line);
            }
        }
    }
}

#[test]
fn wayvnc_serves_the_screen_to_a_vnc_client() {
    const TEST: &str = "wayvnc";
    if !require_programs(TEST, &["wayvnc", "weston-simple-shm"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let (mut lockstep, _client, window, background) = lockstep_with_rings(TEST);
        let port = free_port();
        let port_arg = port.to_string();
        let mut server = lockstep.spawn_client("wayvnc", &["127.0.0.1", &port_arg]);
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => break stream,
                Err(err) => {
                    assert!(
                        Instant::now() < deadline && server.exited().is_none(),
                        "cannot connect to wayvnc on port {port}: {err}\n{}\n{}",
                        server.output(),
                        lockstep.output()
                    );
                    thread::sleep(Duration::from_millis(100));
                }
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("a read timeout");
        let mut rfb = Rfb(stream);
        let (width, height, name) = rfb.start();
        assert_eq!(
            (u32::from(width), u32::from(height)),
            OUTPUT,
            "desktop {name:?}"
        );
        let shot = lockstep.screenshot("wayvnc-lockstep.png", None);
        let mut pixels = vec![0u8; usize::from(width) * usize::from(height) * 4];
        // The first update may come before wayvnc's first capture: ask again (incremental
        // updates) until it shows the screen. The window redraws every frame; beside it the
        // two must agree exactly (raw is lossless), but for a cursor one of them may draw.
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut incremental = false;
        let (frame, same) = loop {
            rfb.update(incremental, width, height, &mut pixels);
            incremental = true;
            let frame = Frame::new(
                u32::from(width),
                u32::from(height),
                u32::from(width) * 4,
                PixelFormat::Xrgb8888,
                pixels.clone(),
            )
            .expect("a whole frame");
            let same = fraction_equal(&beside(&frame, &window), &beside(&shot, &window));
            if same > 0.99 || Instant::now() >= deadline {
                break (frame, same);
            }
        };
        let on_window = 1.0 - fraction_near(&window_region(&frame, &window), background, 0);
        report_vnc(&name, same, on_window);
        assert!(
            same > 0.99,
            "the VNC frame differs from lockstep's screenshot beside the window: only \
             {same:.3} of the pixels are equal\n{}",
            server.output()
        );
        assert!(
            on_window > 0.9,
            "the VNC frame does not show the window at {window:?}: {on_window:.3} of it is not \
             background\n{}",
            server.output()
        );
        assert!(
            server.exited().is_none(),
            "wayvnc exited\n{}",
            server.output()
        );
        lockstep.assert_running();
    });
}

#[allow(clippy::disallowed_macros)] // test report for the person running the tests
fn report_vnc(name: &str, same: f64, on_window: f64) {
    eprintln!(
        "wayvnc: desktop {name:?}; {same:.4} of the pixels beside the window equal lockstep's \
         screenshot, {on_window:.3} of the window not background"
    );
}
