//! Watching the compositor under fuzz: is it alive, did it panic, does it answer, does it
//! leak.
//!
//! The fuzzer either starts lockstep itself ([`Target::spawn`]: its own XDG_RUNTIME_DIR and
//! socket, `--backend headless`, stderr read line by line) or attaches to a running
//! compositor by pid ([`Target::attach`]; then only death is seen, not a panic message that
//! a surviving process printed). [`Target::check`] reports death and "panicked" lines;
//! [`Target::sample`] reads the fd count (`/proc/PID/fd`) and RSS (`VmRSS` in
//! `/proc/PID/status`) that the leak check compares. The hang probe itself is
//! [`crate::client::probe`].

use std::{
    collections::VecDeque,
    fs,
    io::{BufRead, BufReader, Write},
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{mpsc, Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

/// How many of lockstep's last stderr lines a failure report shows.
const STDERR_TAIL: usize = 60;
/// lockstep's full stderr goes to the log up to this size (a 30-minute run of protocol-error
/// warnings is large); the tail is always kept in memory.
const LOG_LIMIT: u64 = 256 << 20;
/// How long lockstep may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One reading of the compositor's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Open fds.
    pub fds: u64,
    /// Resident set size in KiB.
    pub rss_kib: u64,
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} fds, RSS {:.1} MiB",
            self.fds,
            self.rss_kib as f64 / 1024.0
        )
    }
}

/// Reads `/proc/PID/{fd,status}`; `None` when the process is gone.
pub fn sample(pid: u32) -> Option<Sample> {
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(Sample { fds, rss_kib })
}

/// Scheduler state and CPU time (utime + stime, in clock ticks) from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: fields start after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((state, utime + stime))
}

/// What a process that does not answer is doing, watched for `window`: its scheduler state,
/// the share of one CPU it used and its kernel wait channel. Tells a busy loop ("R, 100 %")
/// from a blocked wait ("S, 0 %, in pipe_write").
pub fn diagnose(pid: u32, window: Duration) -> String {
    // SAFETY: sysconf(3) has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Some((_, before)) = stat(pid) else {
        return "process gone".into();
    };
    thread::sleep(window);
    let Some((state, after)) = stat(pid) else {
        return "process gone".into();
    };
    let cpu = (after - before) as f64 / ticks / window.as_secs_f64() * 100.0;
    let wchan = fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    let wchan = if wchan.is_empty() || wchan == "0" {
        String::new()
    } else {
        format!(", kernel wait channel {wchan}")
    };
    let what = match state {
        'R' if cpu > 50.0 => "busy: an endless or very long loop",
        'T' | 't' => "stopped (SIGSTOP or a debugger)",
        'D' => "in an uninterruptible kernel wait",
        _ if cpu < 5.0 => "blocked: waiting for something that does not come",
        _ => "working, but not answering",
    };
    format!("state {state}, {cpu:.0} % of a CPU over {window:?}{wchan}: {what}")
}

/// The stack of every thread of `pid`, from gdb if it is installed (the one way to see where
/// a busy or blocked compositor is). Saved next to the log; returns the interesting frames.
pub fn backtrace(pid: u32, save_to: &Path) -> Option<String> {
    let output = Command::new("gdb")
        .args(["-p", &pid.to_string(), "-batch", "-nx"])
        .args(["-ex", "set pagination off", "-ex", "thread apply all bt 40"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let _ = fs::write(save_to, &text);
    // Frames in lockstep's, smithay's and wayland-rs's code say where it is stuck.
    let frames: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('#') || l.starts_with("Thread"))
        .filter(|l| {
            l.starts_with("Thread")
                || ["lockstep", "smithay", "wayland_", "pixman", "calloop"]
                    .iter()
                    .any(|k| l.contains(k))
        })
        .take(40)
        .collect();
    Some(format!(
        "(all threads in {})\n{}",
        save_to.display(),
        frames.join("\n")
    ))
}

/// What lockstep printed on stderr: the tail, and the first line that says it panicked.
#[derive(Debug, Default)]
struct Stderr {
    tail: VecDeque<String>,
    panic: Option<String>,
}

/// The compositor under test.
#[derive(Debug)]
pub struct Target {
    pid: u32,
    socket: PathBuf,
    child: Option<Child>,
    stderr: Arc<Mutex<Stderr>>,
    runtime_dir: Option<PathBuf>,
    log: Option<PathBuf>,
}

impl Target {
    /// Starts `lockstep --backend headless` with a private runtime dir and waits until it
    /// is ready. Its stderr goes to `log` (and its tail into failure reports).
    pub fn spawn(lockstep: &Path, log: &Path) -> Result<Target> {
        let runtime = std::env::temp_dir().join(format!("lockstep-fuzz-{}", std::process::id()));
        let _ = fs::remove_dir_all(&runtime);
        fs::create_dir(&runtime).with_context(|| format!("cannot create {}", runtime.display()))?;
        fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700))?;
        let socket_name = "lockstep-fuzz";
        let mut command = Command::new(lockstep);
        command
            .args(["--backend", "headless", "--socket", socket_name])
            .args(["--output", "1280x720@60"])
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_CONFIG_HOME", runtime.join("config"))
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("WAYLAND_SOCKET")
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: runs in the forked child before exec and only calls prctl(2), which is
        // async-signal-safe; it makes the kernel kill lockstep if the fuzzer dies, so no
        // compositor is left behind by a killed run.
        unsafe {
            command.pre_exec(
                || match libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) {
                    -1 => Err(std::io::Error::last_os_error()),
                    _ => Ok(()),
                },
            );
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", lockstep.display()))?;
        let stderr = Arc::new(Mutex::new(Stderr::default()));
        let pipe = child.stderr.take().context("no stderr pipe")?;
        let sink =
            fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let shared = stderr.clone();
        thread::spawn(move || read_stderr(pipe, sink, &shared));
        // The ready line on stdout; stdout is then drained so lockstep never blocks on it.
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("lockstep is ready") {
                    let _ = ready_tx.send(());
                }
            }
        });
        let mut target = Target {
            pid: child.id(),
            socket: runtime.join(socket_name),
            child: Some(child),
            stderr,
            runtime_dir: Some(runtime),
            log: Some(log.to_owned()),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ready_rx.recv_timeout(Duration::from_millis(50)).is_ok() {
                return Ok(target);
            }
            if let Err(failure) = target.check() {
                bail!(
                    "lockstep did not start: {failure}\n{}",
                    target.stderr_tail().join("\n")
                );
            }
            if Instant::now() > deadline {
                bail!("lockstep did not print its ready line within {READY_TIMEOUT:?}");
            }
        }
    }

    /// A compositor started by someone else: `pid`, listening on `socket`.
    pub fn attach(pid: u32, socket: PathBuf) -> Result<Target> {
        if sample(pid).is_none() {
            bail!("no process {pid} (or /proc/{pid} is not readable)");
        }
        Ok(Target {
            pid,
            socket,
            child: None,
            stderr: Arc::default(),
            runtime_dir: None,
            log: None,
        })
    }

    /// The compositor's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its Wayland socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Where its stderr goes, when the fuzzer started it.
    pub fn log(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// `Err` with what happened when the compositor died or printed a panic.
    pub fn check(&mut self) -> Result<(), String> {
        if let Some(line) = self.lock_stderr().panic.clone() {
            return Err(format!("lockstep panicked: {line}"));
        }
        match &mut self.child {
            Some(child) => match child.try_wait() {
                Ok(Some(status)) => {
                    // The panic message may still be in the pipe; give the reader a moment.
                    thread::sleep(Duration::from_millis(200));
                    let panic = self.lock_stderr().panic.clone();
                    Err(match panic {
                        Some(line) => format!("lockstep panicked and exited ({status}): {line}"),
                        None => format!("lockstep exited ({status})"),
                    })
                }
                Ok(None) => Ok(()),
                Err(err) => Err(format!("cannot wait for lockstep: {err}")),
            },
            None => {
                let state = fs::read_to_string(format!("/proc/{}/status", self.pid))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("State:").map(|v| v.trim().to_owned()))
                    });
                match state {
                    None => Err(format!("process {} is gone", self.pid)),
                    Some(s) if s.starts_with('Z') || s.starts_with('X') => {
                        Err(format!("process {} died ({s})", self.pid))
                    }
                    Some(_) => Ok(()),
                }
            }
        }
    }

    /// The last lines of stderr (empty when attached).
    pub fn stderr_tail(&self) -> Vec<String> {
        self.lock_stderr().tail.iter().cloned().collect()
    }

    fn lock_stderr(&self) -> std::sync::MutexGuard<'_, Stderr> {
        self.stderr.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            if matches!(child.try_wait(), Ok(None)) {
                // SIGTERM first so lockstep can clean up its socket; SIGKILL after 2 s. Also
                // wakes a SIGSTOPped one (SIGCONT) so that it can act on the SIGTERM.
                if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                    // SAFETY: kill(2) with plain integers; our own child, not yet reaped, so
                    // the pid cannot have been reused.
                    unsafe {
                        libc::kill(pid, libc::SIGCONT);
                        libc::kill(pid, libc::SIGTERM);
                    }
                }
                let deadline = Instant::now() + Duration::from_secs(2);
                while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                    thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(dir) = &self.runtime_dir {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

fn read_stderr(pipe: impl std::io::Read, mut sink: fs::File, shared: &Mutex<Stderr>) {
    let mut written = 0u64;
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if written < LOG_LIMIT {
                    let _ = sink.write_all(&buf);
                    written += n as u64;
                }
                let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                let mut stderr = shared.lock().unwrap_or_else(|p| p.into_inner());
                if stderr.panic.is_none() && line.contains("panicked") {
                    stderr.panic = Some(line.clone());
                }
                if stderr.tail.len() == STDERR_TAIL {
                    stderr.tail.pop_front();
                }
                stderr.tail.push_back(line);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnoses_a_stopped_and_a_sleeping_process() {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let pid = child.id();
        assert!(diagnose(pid, Duration::from_millis(50)).contains("blocked"));
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
        thread::sleep(Duration::from_millis(50));
        assert!(diagnose(pid, Duration::from_millis(50)).contains("stopped"));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.fds >= 3);
        assert!(s.rss_kib > 0);
    }

    #[test]
    fn attach_sees_death() {
        let mut child = Command::new("sleep").arg("0.1").spawn().unwrap();
        let mut target = Target::attach(child.id(), PathBuf::from("/nonexistent")).unwrap();
        assert!(target.check().is_ok());
        thread::sleep(Duration::from_millis(300));
        // Not reaped yet: a zombie, which counts as dead.
        assert!(target.check().is_err());
        child.wait().unwrap();
        assert!(target.check().is_err());
    }
}
