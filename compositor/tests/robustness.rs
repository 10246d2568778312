//! No local process can take the session down through lockstep's sockets: the real
//! `lockstep` binary on the headless backend, attacked the way any process of the user could.
//!
//! - fd exhaustion: opening connections until lockstep runs out of fds used to end the event
//!   loop ("Too many open files");
//! - IPC: idle connections were kept forever, every reply had its own thread, and a
//!   screenshot to a FIFO blocked a thread with a whole frame in memory forever.

mod common;

use std::{
    io::Read,
    os::{fd::OwnedFd, unix::net::UnixStream},
    path::Path,
    thread,
    time::{Duration, Instant},
};

use common::{require_programs, with_timeout, Lockstep, LockstepOptions};
use lockstep::ipc::{Request, Response, MAX_CONNECTIONS, REQUEST_TIMEOUT};

const TEST_TIMEOUT: Duration = Duration::from_secs(90);

/// Connects to the unix socket at `path` without blocking; `None` once the listener's
/// backlog is full (EAGAIN) or on any other error.
fn connect_nonblocking(path: &Path) -> Option<OwnedFd> {
    use rustix::net::{
        connect, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType,
    };
    let fd = socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .ok()?;
    let addr = SocketAddrUnix::new(path).ok()?;
    connect(&fd, &addr).ok()?;
    Some(fd)
}

fn count_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn running_out_of_fds_does_not_end_the_session() {
    const TEST: &str = "fd-exhaustion";
    if !require_programs(TEST, &["wayland-info"]) {
        return;
    }
    with_timeout(TEST, TEST_TIMEOUT, || {
        let mut options = LockstepOptions::headless();
        // A small hard limit, so that a few hundred connections exhaust it (lockstep raises
        // its soft limit only up to the hard one).
        options.fd_limit = Some(128);
        let mut lockstep = Lockstep::start(TEST, options);
        let path = lockstep.runtime_dir().join(lockstep.socket());
        let mut connections = Vec::new();
        let start = Instant::now();
        while connections.len() < 1000 {
            match connect_nonblocking(&path) {
                Some(fd) => connections.push(fd),
                None => break,
            }
        }
        assert!(
            connections.len() > 128,
            "only {} connections: the limit was never reached",
            connections.len()
        );
        // Let lockstep accept what it can and hit EMFILE repeatedly for a while.
        thread::sleep(Duration::from_millis(2500));
        lockstep.assert_running();
        let log = lockstep.output();
        let failures = count_lines(&log, "cannot accept a Wayland client");
        assert!(failures >= 1, "lockstep never ran out of fds\n{log}");
        let seconds = start.elapsed().as_secs() as usize + 1;
        assert!(
            failures <= seconds + 1,
            "{failures} accept warnings in {seconds} s: not rate-limited\n{log}"
        );
        // Fds are free again: new clients connect and work.
        drop(connections);
        thread::sleep(Duration::from_millis(500));
        lockstep.assert_running();
        let mut info = lockstep.spawn_client("wayland-info", &[]);
        let status = info
            .wait_timeout(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("wayland-info hung\n{}", lockstep.output()));
        assert!(
            status.success(),
            "wayland-info failed after fds were freed: {status}\n{}\n{}",
            info.output(),
            lockstep.output()
        );
        assert!(info.stdout().contains("wl_compositor"), "{}", info.output());
        assert!(matches!(
            lockstep.ipc(&Request::Version),
            Response::Version { .. }
        ));
        lockstep.assert_running();
    });
}

/// Whether the peer closed `stream` (read returns 0) within `limit`.
fn closed_within(mut stream: &UnixStream, limit: Duration) -> bool {
    stream
        .set_read_timeout(Some(limit))
        .expect("set_read_timeout");
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf), Ok(0))
}

#[test]
fn idle_ipc_connections_are_bounded_and_time_out() {
    const TEST: &str = "ipc-idle";
    with_timeout(TEST, TEST_TIMEOUT, || {
        let lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let path = lockstep
            .runtime_dir()
            .join(format!("lockstep-{}.sock", lockstep.socket()));
        // Connections that never send a line.
        let idle: Vec<UnixStream> = (0..MAX_CONNECTIONS + 8)
            .map(|_| UnixStream::connect(&path).expect("connect to IPC"))
            .collect();
        // The ones past the limit are closed at once.
        let refused = idle
            .iter()
            .skip(MAX_CONNECTIONS)
            .filter(|s| closed_within(s, Duration::from_secs(2)))
            .count();
        assert_eq!(refused, 8, "connections past the limit were kept");
        // The others are closed after the request timeout.
        let deadline = REQUEST_TIMEOUT + Duration::from_secs(3);
        let timed_out = idle
            .iter()
            .take(MAX_CONNECTIONS)
            .filter(|s| closed_within(s, deadline))
            .count();
        assert_eq!(
            timed_out, MAX_CONNECTIONS,
            "idle connections were kept past {REQUEST_TIMEOUT:?}"
        );
        // And IPC works again.
        assert!(matches!(
            lockstep.ipc(&Request::Version),
            Response::Version { .. }
        ));
    });
}

#[test]
fn screenshot_to_a_fifo_fails_at_once_and_ipc_keeps_working() {
    const TEST: &str = "ipc-fifo";
    with_timeout(TEST, TEST_TIMEOUT, || {
        let lockstep = Lockstep::start(TEST, LockstepOptions::headless());
        let fifo = lockstep.runtime_dir().join("shot.fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        for _ in 0..3 {
            let answer = lockstep.ipc(&Request::Screenshot {
                path: fifo.clone(),
                output: None,
            });
            match answer {
                Response::Error(message) => {
                    assert!(message.contains("shot.fifo"), "{message}")
                }
                other => panic!("a screenshot to a FIFO succeeded: {other:?}"),
            }
        }
        // The writer is free: a real screenshot still works.
        let png = lockstep.runtime_dir().join("shot.png");
        let answer = lockstep.ipc(&Request::Screenshot {
            path: png.clone(),
            output: None,
        });
        assert!(
            matches!(answer, Response::Screenshot { .. }),
            "{answer:?}\n{}",
            lockstep.output()
        );
        assert!(std::fs::metadata(&png).expect("png written").len() > 0);
    });
}
