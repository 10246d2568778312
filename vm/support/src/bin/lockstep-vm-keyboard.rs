//! A virtual keyboard for the VM's KMS session: key chords that reach `lockstep --backend kms`
//! the way a real keyboard's do, through the kernel's evdev and libinput.
//!
//! ```text
//! lockstep-vm-keyboard start FIFO    before the compositor: create the keyboard, then serve
//!                                    FIFO in the background and return
//! echo "125 20" > FIFO               press KEY_LEFTMETA then KEY_T, release in reverse
//! ```
//!
//! # Why it looks like this
//!
//! The guest has no udevd, so lockstep's libinput uses its path backend, which sees only the
//! `/dev/input/event*` nodes present when lockstep starts: the keyboard must exist first, and
//! the process that made it must stay alive to type on it (a uinput device lives as long as
//! its fd). `start` therefore runs a copy of itself (`serve`) that creates the device and
//! keeps it, and returns once the device is ready; the session then starts the compositor.
//!
//! libinput takes only devices that udev tagged as input devices (`ID_INPUT`,
//! `ID_INPUT_KEYBOARD`). Without udevd nobody tags them, so `serve` writes the device's udev
//! database entry (`/run/udev/data/c<major>:<minor>`) itself, as udevd would have; libudev
//! reads it when libinput asks for the properties.
//!
//! Each FIFO line is evdev key codes (`linux/input-event-codes.h`) separated by spaces.
//! Test support only: errors end the program with a message.
#![allow(clippy::disallowed_macros)]

use std::{
    fs::{self, File, OpenOptions},
    io::{BufRead, BufReader, Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use rustix::ioctl::{self, opcode, IntegerSetter, NoArg, Opcode, Setter};

/// The device's name (what `/sys/class/input/event*/device/name` says).
const NAME: &str = "lockstep-vm-keyboard";

// linux/uinput.h and linux/input.h.
const UINPUT: u8 = b'U';
const UI_DEV_CREATE: Opcode = opcode::none(UINPUT, 1);
const UI_DEV_SETUP: Opcode = opcode::write::<UinputSetup>(UINPUT, 3);
/// `_IOW('U', 100, int)`; the int is passed by value.
const UI_SET_EVBIT: Opcode = opcode::write::<i32>(UINPUT, 100);
const UI_SET_KEYBIT: Opcode = opcode::write::<i32>(UINPUT, 101);
const EV_SYN: u16 = 0;
const EV_KEY: u16 = 1;
const SYN_REPORT: u16 = 0;
const BUS_VIRTUAL: u16 = 0x06;
/// KEY_ESC (1) to KEY_MICMUTE (248): every key of a keyboard.
const KEYS: std::ops::RangeInclusive<u16> = 1..=248;

/// `struct input_id`.
#[repr(C)]
#[derive(Clone, Copy)]
struct InputId {
    bustype: u16,
    vendor: u16,
    product: u16,
    version: u16,
}

/// `struct uinput_setup`.
#[repr(C)]
#[derive(Clone, Copy)]
struct UinputSetup {
    id: InputId,
    name: [u8; 80],
    ff_effects_max: u32,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1..) {
        Some([cmd, fifo]) if cmd == "start" => start(Path::new(fifo)),
        Some([cmd, fifo]) if cmd == "serve" => serve(Path::new(fifo)),
        _ => Err("usage: lockstep-vm-keyboard start|serve FIFO".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lockstep-vm-keyboard: {err}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, String>;

/// Starts `serve` in the background and returns once it says the keyboard is ready.
fn start(fifo: &Path) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .arg("serve")
        .arg(fifo)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start serve: {e}"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("reading serve's answer: {e}"))?;
    if !line.starts_with("ready") {
        return Err(format!("serve did not get ready: {line:?}"));
    }
    println!("lockstep-vm-keyboard: {}", line.trim());
    Ok(())
}

/// Creates the keyboard, tags it for libinput, says `ready` on stdout, then types every chord
/// written to `fifo`, for as long as the VM runs.
fn serve(fifo: &Path) -> Result<()> {
    let mut uinput = OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open("/dev/uinput")
        .map_err(|e| format!("/dev/uinput: {e} (CONFIG_INPUT_UINPUT?)"))?;
    create_device(&uinput)?;
    let node = find_event_node(Duration::from_secs(5))?;
    tag_for_libinput(&node)?;
    make_fifo(fifo)?;
    // Read and write: opening never waits for a writer, and the reads never see EOF.
    let chords = OpenOptions::new()
        .read(true)
        .write(true)
        .open(fifo)
        .map_err(|e| format!("{}: {e}", fifo.display()))?;
    println!("ready {}", node.display());
    for line in BufReader::new(chords).lines() {
        let line = line.map_err(|e| format!("reading {}: {e}", fifo.display()))?;
        let codes: Vec<u16> = line
            .split_whitespace()
            .map(|w| {
                w.parse::<u16>()
                    .map_err(|_| format!("not a key code: {w:?}"))
            })
            .collect::<Result<_>>()?;
        chord(&mut uinput, &codes)?;
        eprintln!("lockstep-vm-keyboard: typed {codes:?}");
    }
    Ok(())
}

/// Sets the device up as a keyboard and creates it.
fn create_device(uinput: &File) -> Result<()> {
    let mut name = [0u8; 80];
    name[..NAME.len()].copy_from_slice(NAME.as_bytes());
    let setup = UinputSetup {
        id: InputId {
            bustype: BUS_VIRTUAL,
            vendor: 0x1209,
            product: 0x0001,
            version: 1,
        },
        name,
        ff_effects_max: 0,
    };
    // SAFETY: each opcode is the one linux/uinput.h defines for its argument: UI_SET_EVBIT
    // and UI_SET_KEYBIT take an int by value, UI_DEV_SETUP a `struct uinput_setup` (mirrored
    // field for field above), UI_DEV_CREATE nothing. The fd is /dev/uinput.
    unsafe {
        ioctl::ioctl(
            uinput,
            IntegerSetter::<UI_SET_EVBIT>::new_usize(EV_KEY.into()),
        )
        .map_err(|e| format!("UI_SET_EVBIT: {e}"))?;
        for key in KEYS {
            ioctl::ioctl(
                uinput,
                IntegerSetter::<UI_SET_KEYBIT>::new_usize(key.into()),
            )
            .map_err(|e| format!("UI_SET_KEYBIT {key}: {e}"))?;
        }
        ioctl::ioctl(uinput, Setter::<UI_DEV_SETUP, UinputSetup>::new(setup))
            .map_err(|e| format!("UI_DEV_SETUP: {e}"))?;
        ioctl::ioctl(uinput, NoArg::<UI_DEV_CREATE>::new())
            .map_err(|e| format!("UI_DEV_CREATE: {e}"))?;
    }
    Ok(())
}

/// The `/sys/class/input/eventN` of our device, once it and its `/dev/input` node exist.
fn find_event_node(within: Duration) -> Result<PathBuf> {
    let deadline = Instant::now() + within;
    loop {
        let found = fs::read_dir("/sys/class/input").ok().and_then(|dir| {
            dir.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("event"))
                })
                .find(|p| fs::read_to_string(p.join("device/name")).is_ok_and(|n| n.trim() == NAME))
        });
        if let Some(sys) = found {
            let dev = Path::new("/dev/input").join(sys.file_name().unwrap_or_default());
            if dev.exists() {
                return Ok(sys);
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no event node for {NAME} after {within:?}"));
        }
        sleep(Duration::from_millis(20));
    }
}

/// Writes the udev database entry udevd would have written for a keyboard.
fn tag_for_libinput(sys: &Path) -> Result<()> {
    let mut numbers = String::new();
    File::open(sys.join("dev"))
        .and_then(|mut f| f.read_to_string(&mut numbers))
        .map_err(|e| format!("{}/dev: {e}", sys.display()))?;
    let db = Path::new("/run/udev/data").join(format!("c{}", numbers.trim()));
    fs::create_dir_all("/run/udev/data").map_err(|e| format!("/run/udev/data: {e}"))?;
    let mut f = File::create(&db).map_err(|e| format!("{}: {e}", db.display()))?;
    f.write_all(b"I:1\nE:ID_INPUT=1\nE:ID_INPUT_KEY=1\nE:ID_INPUT_KEYBOARD=1\n")
        .map_err(|e| format!("{}: {e}", db.display()))
}

fn make_fifo(path: &Path) -> Result<()> {
    let _ = fs::remove_file(path);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .map_err(|e| format!("mkfifo {}: {e}", path.display()))
}

/// Presses `codes` in order and releases them in reverse, a report after each change.
fn chord(uinput: &mut File, codes: &[u16]) -> Result<()> {
    let mut events = Vec::new();
    for &code in codes {
        events.push((EV_KEY, code, 1));
        events.push((EV_SYN, SYN_REPORT, 0));
    }
    for &code in codes.iter().rev() {
        events.push((EV_KEY, code, 0));
        events.push((EV_SYN, SYN_REPORT, 0));
    }
    for (kind, code, value) in events {
        // `struct input_event` on 64-bit: a 16-byte timeval (the kernel stamps uinput
        // events itself), type, code, value.
        let mut raw = [0u8; 24];
        raw[16..18].copy_from_slice(&kind.to_ne_bytes());
        raw[18..20].copy_from_slice(&code.to_ne_bytes());
        raw[20..24].copy_from_slice(&i32::to_ne_bytes(value));
        uinput
            .write_all(&raw)
            .map_err(|e| format!("writing a key event: {e}"))?;
        sleep(Duration::from_millis(10));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values the C macros of linux/uinput.h produce.
    #[test]
    fn opcodes_match_the_kernel_header() {
        assert_eq!(std::mem::size_of::<UinputSetup>(), 92);
        assert_eq!(UI_DEV_CREATE, 0x5501);
        assert_eq!(UI_DEV_SETUP, 0x405c_5503);
        assert_eq!(UI_SET_EVBIT, 0x4004_5564);
        assert_eq!(UI_SET_KEYBIT, 0x4004_5565);
    }
}
