//! The fuzzer must be able to fail: these run `lockstep-fuzz` in attach mode (`--pid`)
//! against a stand-in compositor and check its verdict for a target that stays healthy,
//! one that dies and one that stops answering.
//!
//! The stand-in is a thread of this test serving a Wayland socket: it answers every
//! `wl_display.sync` with `wl_callback.done` and ignores everything else (so the fuzz clients
//! see an empty registry and send core requests only). The "process" the fuzzer watches is a
//! `sleep` child: its death is the compositor's death. A switch makes the stand-in stop
//! answering, which is a hang.

use std::{
    io::{Read, Write},
    os::unix::net::{UnixListener, UnixStream},
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

/// Serves `path` until the test ends; answers syncs while `answer` is set.
fn stand_in_compositor(path: &Path, answer: Arc<AtomicBool>) {
    let listener = UnixListener::bind(path).expect("cannot bind the stand-in socket");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answer = answer.clone();
            thread::spawn(move || serve(stream, &answer));
        }
    });
}

fn serve(mut stream: UnixStream, answer: &AtomicBool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while buf.len() >= 8 {
            let word = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
            let (object, header) = (word(0), word(4));
            let size = (header >> 16) as usize;
            if size < 8 {
                return; // garbage: hang up, as a compositor would
            }
            if buf.len() < size {
                break;
            }
            // wl_display (1) request 0 is sync(new_id callback).
            if object == 1 && header & 0xffff == 0 && size >= 12 && answer.load(Ordering::Relaxed) {
                let callback = word(8);
                let mut done = Vec::new();
                done.extend_from_slice(&callback.to_ne_bytes());
                // wl_callback.done: size 12, opcode 0.
                done.extend_from_slice(&(12u32 << 16).to_ne_bytes());
                done.extend_from_slice(&0u32.to_ne_bytes());
                if stream.write_all(&done).is_err() {
                    return;
                }
            }
            buf.drain(..size);
        }
    }
}

fn runtime_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lockstep-fuzz-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the fuzzer against the stand-in watching `pid`, for `seconds` of fuzzing.
fn fuzz(dir: &Path, pid: u32, seconds: u64) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lockstep-fuzz"))
        .args(["--pid", &pid.to_string(), "--seed", "7", "--clients", "2"])
        .args([
            "--seconds",
            &seconds.to_string(),
            "--warmup",
            "1",
            "--settle",
            "1",
        ])
        .args(["--progress", "1"])
        // The core protocol is all the stand-in speaks; libwayland-dev is a build
        // dependency (scripts/deps), so this file is there wherever lockstep builds.
        .args(["--xml", "/usr/share/wayland/wayland.xml"])
        .env("XDG_RUNTIME_DIR", dir)
        .env("WAYLAND_DISPLAY", "stand-in")
        .output()
        .expect("cannot run lockstep-fuzz")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_healthy_target_passes() {
    let dir = runtime_dir("healthy");
    stand_in_compositor(&dir.join("stand-in"), Arc::new(AtomicBool::new(true)));
    let mut target = Command::new("sleep").arg("60").spawn().unwrap();
    let output = fuzz(&dir, target.id(), 2);
    let _ = target.kill();
    let _ = target.wait();
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("PASS"), "{out}");
    assert!(out.contains("seed 7"), "{out}");
}

#[test]
fn a_dying_target_fails_the_run() {
    let dir = runtime_dir("dying");
    stand_in_compositor(&dir.join("stand-in"), Arc::new(AtomicBool::new(true)));
    // Dies during the fuzz phase (warm-up 1 s + settle 1 s before it).
    let mut target = Command::new("sleep").arg("4").spawn().unwrap();
    let pid = target.id();
    let reaper = thread::spawn(move || target.wait());
    let output = fuzz(&dir, pid, 30);
    let _ = reaper.join();
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains("is gone") || out.contains("died"), "{out}");
    assert!(out.contains("reproduce: lockstep-fuzz --seed 7"), "{out}");
}

#[test]
fn a_target_that_stops_answering_fails_as_a_hang() {
    let dir = runtime_dir("hang");
    let answer = Arc::new(AtomicBool::new(true));
    stand_in_compositor(&dir.join("stand-in"), answer.clone());
    let mut target = Command::new("sleep").arg("60").spawn().unwrap();
    let stop = answer.clone();
    thread::spawn(move || {
        thread::sleep(Duration::from_secs(4));
        stop.store(false, Ordering::Relaxed);
    });
    let output = fuzz(&dir, target.id(), 30);
    let _ = target.kill();
    let _ = target.wait();
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL: hang"), "{out}");
}
