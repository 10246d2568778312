//! Shared helpers for the tests that run the real `lockstep` binary (real clients, nested).
//!
//! Everything here spawns processes and owns them through guards whose `Drop` ends them, so a
//! failing assertion never leaves a compositor or a client behind. Children also get
//! `PR_SET_PDEATHSIG(SIGKILL)`, so a test thread that hangs past its timeout (see
//! [`with_timeout`]) still takes its processes with it when the test binary exits.
//!
//! This module only starts and talks to processes; the in-process fixture lives elsewhere
//! (`tests/in_process/`).
#![allow(dead_code)] // each test binary uses a different subset

use std::{
    ffi::OsStr,
    fs,
    io::BufReader,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use lockstep::ipc::{request, OutputInfo, Request, Response, WindowInfo};
use lockstep_render::{Frame, PixelFormat};

/// How long lockstep may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a client may take to map its first window.
pub const MAP_TIMEOUT: Duration = Duration::from_secs(20);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique in this machine for the lifetime of the test process.
pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("lockstep-test-{}-{n}-{tag}", std::process::id())
}

/// Whether CI asked for every external program to be present (`LOCKSTEP_REQUIRE_CLIENTS=1`).
pub fn clients_required() -> bool {
    std::env::var("LOCKSTEP_REQUIRE_CLIENTS").is_ok_and(|v| v == "1")
}

/// Finds `program` on `PATH` (as lockstep's own actions do).
pub fn find_program(program: &str) -> Option<PathBuf> {
    lockstep::action::find_in_path(program)
}

/// `true` when every program in `programs` is installed. Otherwise prints a skip message and
/// returns `false` — or panics when [`clients_required`], because CI installs them all and a
/// skip there would hide a broken set-up.
#[allow(clippy::disallowed_macros)] // the skip message is for the person running the tests
pub fn require_programs(test: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| find_program(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{test}: {} not installed (on Debian: scripts/deps, or apt-get install weston foot \
         gtk-3-examples gtk-4-examples grim wayland-utils xvfb x11-apps imagemagick)",
        missing.join(", ")
    );
    if clients_required() {
        panic!("{message}; LOCKSTEP_REQUIRE_CLIENTS=1, so this is a failure");
    }
    eprintln!("SKIPPED {message}");
    false
}

/// Runs `body` on its own thread and fails the test if it takes longer than `limit`.
///
/// The body's guards still run when it panics; when it hangs, its processes die with the
/// test binary (`PR_SET_PDEATHSIG`).
pub fn with_timeout<F>(name: &str, limit: Duration, body: F)
where
    F: FnOnce() + Send + 'static,
{
    let (done_tx, done_rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
            let _ = done_tx.send(());
            if let Err(panic) = result {
                std::panic::resume_unwind(panic);
            }
        })
        .expect("cannot spawn the test thread");
    match done_rx.recv_timeout(limit) {
        Ok(()) => {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(_) => panic!("{name} did not finish within {limit:?}"),
    }
}

/// Where screenshots go for people to look at: `<cargo target dir>/test-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("test-screenshots");
    fs::create_dir_all(&dir).expect("cannot create the screenshot directory");
    dir
}

/// A private `XDG_RUNTIME_DIR` (mode 0700) under /tmp, removed on drop.
#[derive(Debug)]
pub struct RuntimeDir {
    path: PathBuf,
}

impl RuntimeDir {
    /// Creates a fresh directory.
    pub fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(unique_name(tag));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).expect("cannot create the runtime dir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o700))
            .expect("cannot chmod the runtime dir");
        Self { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Asks the kernel to SIGKILL the child when the thread that spawned it ends.
pub fn kill_with_parent(command: &mut Command) -> &mut Command {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which
    // is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers; a pid that already exited gets ESRCH, no UB.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// A child process that is terminated (SIGTERM, then SIGKILL after 2 s) when dropped.
/// Its stdout and stderr go to files, read by [`Proc::output`] for failure messages.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Proc {
    /// Spawns `command`, sending its output to `<log_dir>/<name>.{out,err}`.
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> Self {
        let stdout = log_dir.join(format!("{name}.out"));
        let stderr = log_dir.join(format!("{name}.err"));
        command
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).expect("cannot create a log file"))
            .stderr(fs::File::create(&stderr).expect("cannot create a log file"));
        kill_with_parent(&mut command);
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name}: {err}"));
        Self {
            name: name.to_owned(),
            child,
            stdout,
            stderr,
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` when the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `limit` for the process to exit on its own.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// What it printed so far on stdout.
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Both logs, for failure messages (stderr cut to its last 60 lines).
    pub fn output(&self) -> String {
        let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        format!(
            "--- {} stdout ---\n{}\n--- {} stderr (tail) ---\n{tail}\n",
            self.name,
            self.stdout(),
            self.name
        )
    }

    /// Terminates the process: SIGTERM, then SIGKILL if it is still there after 2 s.
    pub fn terminate(&mut self) {
        if self.exited().is_some() {
            return;
        }
        signal(self.pid(), libc::SIGTERM);
        if self.wait_timeout(Duration::from_secs(2)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A running `lockstep` binary with its own runtime dir and socket. Dropping it terminates
/// lockstep (and with it the `-- COMMAND` it started), then removes the runtime dir.
#[derive(Debug)]
pub struct Lockstep {
    // Field order matters: the process goes before the directory its sockets live in.
    proc: Proc,
    socket: String,
    runtime: RuntimeDir,
}

/// How to start lockstep.
#[derive(Debug, Clone)]
pub struct LockstepOptions {
    /// `--backend` value.
    pub backend: &'static str,
    /// `--output` values (headless only).
    pub outputs: Vec<String>,
    /// Extra environment (e.g. `DISPLAY` for winit).
    pub env: Vec<(String, String)>,
    /// `-- COMMAND ARGS...`, if any.
    pub command: Vec<String>,
    /// Start lockstep with this soft and hard RLIMIT_NOFILE (fd exhaustion tests).
    pub fd_limit: Option<u64>,
    /// More options before `--` (e.g. `--session`).
    pub args: Vec<String>,
}

impl LockstepOptions {
    /// Headless with one 1280x720@60 output.
    pub fn headless() -> Self {
        Self {
            backend: "headless",
            outputs: vec!["1280x720@60".into()],
            env: Vec::new(),
            command: Vec::new(),
            fd_limit: None,
            args: Vec::new(),
        }
    }
}

impl Lockstep {
    /// Starts lockstep and waits for its ready line.
    pub fn start(tag: &str, options: LockstepOptions) -> Self {
        let runtime = RuntimeDir::new(tag);
        let socket = unique_name(tag);
        let mut command = Command::new(env!("CARGO_BIN_EXE_lockstep"));
        command
            .args(["--backend", options.backend, "--socket", &socket])
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("WAYLAND_SOCKET")
            .env_remove("DISPLAY")
            // No user config: tests see documented defaults.
            .env("XDG_CONFIG_HOME", runtime.path().join("config"));
        for output in &options.outputs {
            command.args(["--output", output]);
        }
        command.args(&options.args);
        for (key, value) in &options.env {
            command.env(key, value);
        }
        if !options.command.is_empty() {
            command.arg("--").args(&options.command);
        }
        if let Some(limit) = options.fd_limit {
            // SAFETY: the closure runs in the forked child before exec and only calls
            // setrlimit(2), which is async-signal-safe and touches no memory of the parent.
            unsafe {
                command.pre_exec(move || {
                    let rlimit = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let proc = Proc::spawn("lockstep", command, runtime.path());
        let mut lockstep = Self {
            proc,
            socket,
            runtime,
        };
        lockstep.wait_ready();
        lockstep
    }

    fn wait_ready(&mut self) {
        let expected = format!("lockstep is ready: WAYLAND_DISPLAY={}", self.socket);
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if self.proc.stdout().lines().any(|l| l.starts_with(&expected)) {
                return;
            }
            if let Some(status) = self.proc.exited() {
                panic!(
                    "lockstep exited ({status}) before it was ready\n{}",
                    self.proc.output()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "lockstep did not print {expected:?} within {READY_TIMEOUT:?}\n{}",
            self.proc.output()
        );
    }

    /// The Wayland socket name.
    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// The runtime dir (also where logs go).
    pub fn runtime_dir(&self) -> &Path {
        self.runtime.path()
    }

    /// lockstep's pid.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// lockstep's logs, for failure messages.
    pub fn output(&self) -> String {
        self.proc.output()
    }

    /// Panics with lockstep's log if it is no longer running.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.proc.exited() {
            panic!("lockstep exited ({status})\n{}", self.proc.output());
        }
    }

    /// A command for a client of this lockstep: `WAYLAND_DISPLAY` and `XDG_RUNTIME_DIR` set,
    /// `DISPLAY` removed, GTK forced onto Wayland and kept quiet about D-Bus/a11y, Mesa on
    /// llvmpipe.
    pub fn client_command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .env("WAYLAND_DISPLAY", &self.socket)
            .env("XDG_RUNTIME_DIR", self.runtime.path())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_SOCKET")
            .env("GDK_BACKEND", "wayland")
            .env("NO_AT_BRIDGE", "1")
            .env("GTK_A11Y", "none")
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .current_dir(self.runtime.path());
        command
    }

    /// Spawns a client (see [`Lockstep::client_command`]) with `args`.
    pub fn spawn_client(&self, program: &str, args: &[&str]) -> Proc {
        let mut command = self.client_command(program);
        command.args(args);
        let log_name = Path::new(program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.to_owned());
        Proc::spawn(&log_name, command, self.runtime.path())
    }

    /// Sends one IPC request through the library's client, [`lockstep::ipc::request`].
    pub fn ipc(&self, req: &Request) -> Response {
        // `request` finds the socket through our own XDG_RUNTIME_DIR, and tests run on
        // parallel threads with one runtime dir per lockstep: point the variable at ours while
        // holding a lock. (std's `Command::spawn` reads the environment under std's own lock,
        // so clients spawned meanwhile are unaffected; they get XDG_RUNTIME_DIR explicitly.)
        static IPC_ENV: Mutex<()> = Mutex::new(());
        let answer = {
            let _env = IPC_ENV.lock().unwrap_or_else(|e| e.into_inner());
            std::env::set_var("XDG_RUNTIME_DIR", self.runtime.path());
            request(&self.socket, req)
        };
        answer.unwrap_or_else(|err| panic!("IPC {req:?} failed: {err:#}\n{}", self.proc.output()))
    }

    /// The mapped windows.
    pub fn windows(&self) -> Vec<WindowInfo> {
        match self.ipc(&Request::Windows) {
            Response::Windows(windows) => windows,
            other => panic!("unexpected answer to windows: {other:?}"),
        }
    }

    /// The outputs.
    pub fn outputs(&self) -> Vec<OutputInfo> {
        match self.ipc(&Request::Outputs) {
            Response::Outputs(outputs) => outputs,
            other => panic!("unexpected answer to outputs: {other:?}"),
        }
    }

    /// Waits until at least one window is mapped; panics with both logs otherwise, or as soon
    /// as `client` exits without mapping one.
    pub fn wait_for_window(&mut self, mut client: Option<&mut Proc>) -> WindowInfo {
        let deadline = Instant::now() + MAP_TIMEOUT;
        loop {
            self.assert_running();
            if let Some(window) = self.windows().into_iter().next() {
                return window;
            }
            let client_log = client.as_ref().map(|c| c.output()).unwrap_or_default();
            if let Some(client) = client.as_deref_mut() {
                if let Some(status) = client.exited() {
                    panic!(
                        "the client exited ({status}) without mapping a window\n{}\n{}",
                        client.output(),
                        self.output()
                    );
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "no window mapped within {MAP_TIMEOUT:?}\n{client_log}\n{}",
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Takes an IPC screenshot of `output` (the first one when `None`) into
    /// `<screenshot dir>/<file_name>`, for people to look at, and decodes it.
    pub fn screenshot(&self, file_name: &str, output: Option<&str>) -> Frame {
        self.screenshot_at(&screenshot_dir().join(file_name), output)
    }

    /// Takes an IPC screenshot of `output` into `path` (absolute) and decodes it.
    pub fn screenshot_at(&self, path: &Path, output: Option<&str>) -> Frame {
        let _ = fs::remove_file(path);
        let response = self.ipc(&Request::Screenshot {
            path: path.to_owned(),
            output: output.map(str::to_owned),
        });
        match response {
            Response::Screenshot { .. } => read_png(path),
            other => panic!("IPC screenshot failed: {other:?}\n{}", self.proc.output()),
        }
    }

    /// The background colour: the dominant colour of a screenshot taken while no window is
    /// mapped.
    pub fn background(&self) -> [u8; 3] {
        assert!(
            self.windows().is_empty(),
            "background() needs an empty screen"
        );
        let path = self.runtime.path().join("background.png");
        self.screenshot_at(&path, None).stats().dominant_color
    }
}

/// Runs `command` (named `what` in messages) to its end with no input and returns its
/// stdout; fails the test with its stderr and `lockstep`'s log when it does not succeed.
pub fn stdout_of(lockstep: &Lockstep, mut command: Command, what: &str) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {what}: {err}"));
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        lockstep.output()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Decodes an 8-bit RGB or RGBA PNG into a [`Frame`] (RGBA in memory).
pub fn read_png(path: &Path) -> Frame {
    let file = fs::File::open(path).unwrap_or_else(|err| panic!("cannot open {path:?}: {err}"));
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|err| panic!("{path:?} is not a PNG: {err}"));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .unwrap_or_else(|err| panic!("cannot decode {path:?}: {err}"));
    buf.truncate(info.buffer_size());
    let rgba: Vec<u8> = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 0xff])
            .collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 0xff]).collect(),
        png::ColorType::GrayscaleAlpha => buf
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Indexed => panic!("{path:?}: indexed PNG not expanded"),
    };
    Frame::new(
        info.width,
        info.height,
        info.width * 4,
        PixelFormat::Abgr8888,
        rgba,
    )
    .unwrap_or_else(|err| panic!("{path:?}: {err}"))
}

/// The part of `frame` covered by `window` (logical = physical: scale 1), clipped to the frame.
pub fn window_region(frame: &Frame, window: &WindowInfo) -> Frame {
    let x = window.position.0.max(0) as u32;
    let y = window.position.1.max(0) as u32;
    let right = (window.position.0 + window.size.0).max(0) as u32;
    let bottom = (window.position.1 + window.size.1).max(0) as u32;
    frame.crop(x, y, right.saturating_sub(x), bottom.saturating_sub(y))
}

/// Share of the pixels of `frame` whose colour differs from `rgb`.
pub fn fraction_not(frame: &Frame, rgb: [u8; 3]) -> f64 {
    let mut other = 0u64;
    let mut total = 0u64;
    for row in frame.rgba_rows() {
        for px in row.chunks_exact(4) {
            total += 1;
            if px[..3] != rgb {
                other += 1;
            }
        }
    }
    other as f64 / total.max(1) as f64
}

/// Share of pixels that are equal in `a` and `b` (which must have the same size).
pub fn fraction_equal(a: &Frame, b: &Frame) -> f64 {
    assert_eq!(
        (a.width(), a.height()),
        (b.width(), b.height()),
        "frames differ in size"
    );
    let mut equal = 0u64;
    let mut total = 0u64;
    for (ra, rb) in a.rgba_rows().zip(b.rgba_rows()) {
        for (pa, pb) in ra.chunks_exact(4).zip(rb.chunks_exact(4)) {
            total += 1;
            if pa[..3] == pb[..3] {
                equal += 1;
            }
        }
    }
    equal as f64 / total.max(1) as f64
}

/// Reads CPU time (user + system) of `pid` from /proc, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("cannot read /proc stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    // SAFETY: sysconf takes an integer name and returns an integer; no memory is involved.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    ticks as f64 / hz as f64
}
