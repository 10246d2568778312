//! The seat session of the KMS backend: who may open DRM and input devices, and when.
//!
//! On a TTY a compositor does not open `/dev/dri/card0` or `/dev/input/event*` itself: a seat
//! manager (seatd or systemd-logind, both reached through libseat) opens them for the active
//! session, revokes them when the user switches to another VT and hands them back on return.
//! [`KmsSession`] wraps that, and adds the case the issue requires for the test VM: no seatd, no
//! logind, running as root. Then lockstep opens devices itself with open(2) (a **direct
//! session**): there is nobody to tell us about VT switches, so VT switching is off, the
//! session is always active, and one log line says so.
//!
//! The order of attempts in [`KmsSession::new`]:
//! 1. libseat, when seatd or logind runs (or `LIBSEAT_BACKEND` is set, which also chooses the
//!    libseat backend as usual); its notifier goes on the event loop and reports
//!    [`SessionChange`]s;
//! 2. when there is no seat manager or libseat fails: a direct session if the process is root
//!    or can open the first KMS device read-write;
//! 3. otherwise an error that says how to get a seat.
//!
//! libseat is not asked when no seat manager runs, because Debian's libseat would then start
//! its built-in seatd as root: a forked helper holding our devices, where a direct session
//! needs nothing in between. `LOCKSTEP_SESSION=direct` skips libseat always;
//! `LOCKSTEP_SESSION=libseat` requires it (no fallback).
//!
//! [`kms_device_candidates`] lists the DRM primary nodes that can drive displays, best first;
//! `LOCKSTEP_DRM_DEVICE=/dev/dri/cardN` picks one by hand. [`KmsSession::watch_drm_hotplug`]
//! reports DRM nodes that come, go or change (connectors), when udevd runs.
//!
//! ```no_run
//! # fn run(loop_handle: &smithay::reexports::calloop::LoopHandle<'static, lockstep::state::State>)
//! # -> anyhow::Result<()> {
//! use lockstep::backend::session::{kms_device_candidates, KmsSession, SessionChange};
//!
//! let mut session = KmsSession::new(loop_handle, |_state, change| match change {
//!     SessionChange::Paused => { /* drop DRM master, suspend libinput */ }
//!     SessionChange::Resumed => { /* take master back, re-commit everything */ }
//! })?;
//! let path = kms_device_candidates().into_iter().next().expect("no KMS device");
//! let fd = session.open(&path)?;
//! # drop(fd); Ok(()) }
//! ```

use std::{
    collections::HashMap,
    ffi::OsStr,
    os::unix::io::{AsFd, OwnedFd},
    path::{Path, PathBuf},
};

use anyhow::Context;
use smithay::{
    backend::{
        session::{
            libseat::{self, LibSeatSession},
            AsErrno, Event as SeatEvent, Session,
        },
        udev::{UdevBackend, UdevEvent},
    },
    reexports::{
        calloop::{LoopHandle, RegistrationToken},
        rustix::{
            self,
            fs::{Mode, OFlags},
            io::Errno,
        },
    },
};
use tracing::{debug, info, warn};

use crate::state::State;

/// Environment variable naming the DRM device to use instead of discovering one.
pub const DRM_DEVICE_ENV: &str = "LOCKSTEP_DRM_DEVICE";

/// Environment variable forcing the session kind: `direct` or `libseat`.
pub const SESSION_ENV: &str = "LOCKSTEP_SESSION";

/// What happened to the session, as the seat manager reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionChange {
    /// Another session took the seat (VT switch away, suspend): devices are revoked; DRM
    /// master is gone and libinput must be suspended.
    Paused,
    /// The seat is ours again: take DRM master back and commit the full state.
    Resumed,
}

/// A DRM primary node that appeared, went away, or changed (a monitor plugged in or out:
/// the kernel reports a change of the card, and the connectors must be read again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrmHotplug {
    /// A new card, e.g. `/dev/dri/card1`.
    Added(PathBuf),
    /// A card that went away.
    Removed(PathBuf),
    /// Something about the card's connectors changed.
    Changed(PathBuf),
}

impl DrmHotplug {
    /// The device node.
    pub fn path(&self) -> &Path {
        match self {
            DrmHotplug::Added(p) | DrmHotplug::Removed(p) | DrmHotplug::Changed(p) => p,
        }
    }
}

/// Errors of [`Session`] calls (libinput sees their errno).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The seat manager refused or failed.
    #[error(transparent)]
    LibSeat(#[from] libseat::Error),
    /// open(2) failed in a direct session.
    #[error("cannot open {path}: {errno}")]
    Open {
        /// The device.
        path: PathBuf,
        /// Why.
        errno: Errno,
    },
    /// A direct session has no seat manager to switch VTs with.
    #[error("VT switching is off in a direct session (no seatd or logind)")]
    NoVtSwitching,
}

impl AsErrno for SessionError {
    fn as_errno(&self) -> Option<i32> {
        match self {
            SessionError::LibSeat(err) => err.as_errno(),
            SessionError::Open { errno, .. } => Some(errno.raw_os_error()),
            SessionError::NoVtSwitching => Some(Errno::NOSYS.raw_os_error()),
        }
    }
}

/// The seat session: libseat's, or a direct one as root. Cheap to clone; clones share the
/// session (libinput gets one).
#[derive(Debug, Clone)]
pub struct KmsSession {
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    /// Valid while its notifier is on the event loop (smithay keeps only a weak reference).
    LibSeat(LibSeatSession),
    Direct {
        seat: String,
    },
}

/// Flags every device is opened with: DRM and evdev fds are polled, never block, must not
/// leak into clients we spawn, and must never become our controlling terminal.
fn device_flags() -> OFlags {
    OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK
}

impl KmsSession {
    /// Opens a session: libseat, else a direct session when allowed (see the module docs).
    /// `on_change` runs on the event loop when the session is paused or resumed; a direct
    /// session never calls it.
    pub fn new(
        loop_handle: &LoopHandle<'static, State>,
        mut on_change: impl FnMut(&mut State, SessionChange) + 'static,
    ) -> anyhow::Result<Self> {
        let forced = std::env::var(SESSION_ENV).ok();
        let plan = plan_session(
            forced.as_deref(),
            std::env::var_os("LIBSEAT_BACKEND").is_some(),
            seat_manager_present(),
        )?;
        let why_direct = match plan {
            Plan::Direct(why) => why,
            Plan::LibSeat { fallback } => match LibSeatSession::new() {
                Ok((session, notifier)) => {
                    loop_handle
                        .insert_source(notifier, move |event, _, state| {
                            let change = match event {
                                SeatEvent::PauseSession => SessionChange::Paused,
                                SeatEvent::ActivateSession => SessionChange::Resumed,
                            };
                            info!(?change, "session changed");
                            on_change(state, change);
                        })
                        .map_err(|err| {
                            anyhow::anyhow!("cannot watch the libseat session: {err}")
                        })?;
                    info!(seat = %session.seat(), active = session.is_active(), "libseat session");
                    return Ok(Self {
                        inner: Inner::LibSeat(session),
                    });
                }
                Err(err) if fallback => format!("libseat could not open a seat: {err}"),
                Err(err) => anyhow::bail!(
                    "{SESSION_ENV}=libseat but libseat could not open a seat: {err}. Is seatd \
                     running and are you in its group, or is this a logind session?"
                ),
            },
        };
        let is_root = rustix::process::geteuid().is_root();
        if is_root {
            warn!(reason = %why_direct, "no seatd or logind: direct session as root; VT switching is off");
        } else if first_device_opens() {
            warn!(
                reason = %why_direct,
                "no seatd or logind: direct session (the devices are open to this user); \
                 VT switching is off"
            );
        } else {
            anyhow::bail!(
                "cannot get a seat ({why_direct}), and lockstep is not root. Either start seatd \
                 (`seatd -g video`) and add yourself to the video group, or run lockstep from a \
                 logind session (log in on a text console of a systemd system)"
            );
        }
        Ok(Self {
            inner: Inner::Direct {
                seat: "seat0".into(),
            },
        })
    }

    /// `"libseat"` or `"direct"`, for logs and IPC.
    pub fn kind(&self) -> &'static str {
        match self.inner {
            Inner::LibSeat(_) => "libseat",
            Inner::Direct { .. } => "direct",
        }
    }

    /// Opens the device at `path` read-write and non-blocking through the session.
    pub fn open(&mut self, path: &Path) -> anyhow::Result<OwnedFd> {
        let kind = self.kind();
        Session::open(self, path, device_flags())
            .with_context(|| format!("cannot open {} ({kind} session)", path.display()))
    }

    /// Watches udev for DRM primary nodes (`/dev/dri/card*`) that appear or go away and calls
    /// `on_hotplug` for each. Returns `None` without udevd (no events would ever come).
    /// Connector changes on a known card (monitor plugged in) are not reported here.
    pub fn watch_drm_hotplug(
        &self,
        loop_handle: &LoopHandle<'static, State>,
        mut on_hotplug: impl FnMut(&mut State, DrmHotplug) + 'static,
    ) -> anyhow::Result<Option<RegistrationToken>> {
        if !udevd_running() {
            debug!("udevd is not running: no DRM hotplug");
            return Ok(None);
        }
        let backend = UdevBackend::new(self.seat()).context("cannot start the udev monitor")?;
        let mut known: HashMap<_, PathBuf> = backend
            .device_list()
            .map(|(id, path)| (id, path.to_path_buf()))
            .collect();
        let token = loop_handle
            .insert_source(backend, move |event, _, state| {
                let hotplug = match event {
                    UdevEvent::Added { device_id, path } if is_card_node(&path) => {
                        known.insert(device_id, path.clone());
                        DrmHotplug::Added(path)
                    }
                    UdevEvent::Removed { device_id } => match known.remove(&device_id) {
                        Some(path) => DrmHotplug::Removed(path),
                        None => return,
                    },
                    UdevEvent::Changed { device_id } => match known.get(&device_id) {
                        Some(path) => DrmHotplug::Changed(path.clone()),
                        None => return,
                    },
                    _ => return,
                };
                info!(?hotplug, "DRM device hotplug");
                on_hotplug(state, hotplug);
            })
            .map_err(|err| anyhow::anyhow!("cannot watch udev for DRM devices: {err}"))?;
        Ok(Some(token))
    }
}

impl Session for KmsSession {
    type Error = SessionError;

    fn open(&mut self, path: &Path, flags: OFlags) -> Result<OwnedFd, SessionError> {
        match &mut self.inner {
            Inner::LibSeat(session) => Ok(session.open(path, flags)?),
            Inner::Direct { .. } => {
                let flags = flags | OFlags::CLOEXEC | OFlags::NOCTTY;
                let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|errno| {
                    SessionError::Open {
                        path: path.to_path_buf(),
                        errno,
                    }
                })?;
                debug!(path = %path.display(), fd = ?fd.as_fd(), "opened device directly");
                Ok(fd)
            }
        }
    }

    fn close(&mut self, fd: OwnedFd) -> Result<(), SessionError> {
        match &mut self.inner {
            Inner::LibSeat(session) => Ok(session.close(fd)?),
            Inner::Direct { .. } => {
                drop(fd);
                Ok(())
            }
        }
    }

    fn change_vt(&mut self, vt: i32) -> Result<(), SessionError> {
        match &mut self.inner {
            Inner::LibSeat(session) => Ok(session.change_vt(vt)?),
            Inner::Direct { .. } => Err(SessionError::NoVtSwitching),
        }
    }

    fn is_active(&self) -> bool {
        match &self.inner {
            Inner::LibSeat(session) => session.is_active(),
            // Nobody can take the devices away from us.
            Inner::Direct { .. } => true,
        }
    }

    fn seat(&self) -> String {
        match &self.inner {
            Inner::LibSeat(session) => session.seat(),
            Inner::Direct { seat } => seat.clone(),
        }
    }
}

/// How [`KmsSession::new`] gets a seat.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Ask libseat; on failure fall back to a direct session when `fallback`.
    LibSeat { fallback: bool },
    /// Open devices ourselves, for this reason.
    Direct(String),
}

/// Decides from `$LOCKSTEP_SESSION`, whether `$LIBSEAT_BACKEND` is set and whether seatd or
/// logind runs. Without a seat manager libseat is not asked at all: Debian's libseat would
/// start its built-in seatd as root, a second process holding our devices, where a direct
/// session does the same with nothing in between.
fn plan_session(
    forced: Option<&str>,
    libseat_backend_set: bool,
    manager_present: bool,
) -> anyhow::Result<Plan> {
    Ok(match forced {
        Some("direct") => Plan::Direct(format!("{SESSION_ENV}=direct")),
        Some("libseat") => Plan::LibSeat { fallback: false },
        Some(other) if !other.is_empty() => {
            anyhow::bail!("{SESSION_ENV}={other:?}: expected `direct` or `libseat`")
        }
        _ if libseat_backend_set || manager_present => Plan::LibSeat { fallback: true },
        _ => Plan::Direct(
            "neither /run/seatd.sock nor /run/systemd/seats/seat0 exists (set \
             LIBSEAT_BACKEND to ask libseat anyway)"
                .into(),
        ),
    })
}

/// Whether seatd (its socket, `$SEATD_SOCK` or the default) or systemd-logind (which always
/// has seat0) runs.
fn seat_manager_present() -> bool {
    let seatd_sock = std::env::var_os("SEATD_SOCK")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/run/seatd.sock".into());
    seatd_sock.exists() || Path::new("/run/systemd/seats/seat0").exists()
}

/// Whether udevd runs (its control socket exists). Without it, udev enumeration still works
/// (it reads sysfs) but no events arrive and properties such as `ID_SEAT` may be missing.
pub fn udevd_running() -> bool {
    Path::new("/run/udev/control").exists()
}

/// Whether a non-root process may open the first KMS device itself (a permissive udev rule
/// or ACL): then a direct session works too.
fn first_device_opens() -> bool {
    kms_device_candidates()
        .first()
        .is_some_and(|path| rustix::fs::open(path.as_path(), device_flags(), Mode::empty()).is_ok())
}

/// DRM primary nodes that can do KMS on seat0, best first: `$LOCKSTEP_DRM_DEVICE` alone when
/// set; otherwise the boot VGA device first, then the others by card number. Render-only
/// devices (no connectors in sysfs, as vgem) are left out.
///
/// udev enumeration is used when it works (it reads sysfs, so it works without udevd, only
/// `ID_SEAT` may then be missing and seat0 is assumed); otherwise `/dev/dri/card*` is scanned
/// and sysfs consulted directly.
pub fn kms_device_candidates() -> Vec<PathBuf> {
    if let Some(path) = std::env::var_os(DRM_DEVICE_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        info!(path = %path.display(), "DRM device chosen by {DRM_DEVICE_ENV}");
        return vec![path];
    }
    let cards = match udev_cards("seat0") {
        Ok(cards) if !cards.is_empty() => cards,
        Ok(_) => {
            debug!("udev lists no DRM cards; scanning /dev/dri");
            scan_cards(Path::new("/dev/dri"), Path::new("/sys/class/drm"))
        }
        Err(err) => {
            debug!(%err, "udev enumeration failed; scanning /dev/dri");
            scan_cards(Path::new("/dev/dri"), Path::new("/sys/class/drm"))
        }
    };
    let ordered = order_candidates(cards);
    debug!(candidates = ?ordered, "KMS device candidates");
    ordered
}

/// What discovery learnt about one DRM primary node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Card {
    /// The device node.
    path: PathBuf,
    /// The PCI device is the one the firmware used for the boot console.
    boot_vga: bool,
    /// Whether it has connectors; `None` when sysfs could not tell.
    has_connectors: Option<bool>,
}

/// Orders cards as [`kms_device_candidates`] documents; leaves out those known to have no
/// connectors.
fn order_candidates(mut cards: Vec<Card>) -> Vec<PathBuf> {
    cards.retain(|card| {
        let keep = card.has_connectors != Some(false);
        if !keep {
            debug!(path = %card.path.display(), "no connectors (render-only device); skipped");
        }
        keep
    });
    cards.sort_by_key(|card| (!card.boot_vga, card_number(&card.path), card.path.clone()));
    cards.into_iter().map(|card| card.path).collect()
}

/// `N` of `.../cardN`, so that card10 sorts after card2.
fn card_number(path: &Path) -> Option<u32> {
    path.file_name()?
        .to_str()?
        .strip_prefix("card")?
        .parse()
        .ok()
}

/// Whether `path` names a DRM primary node (`cardN`).
fn is_card_node(path: &Path) -> bool {
    card_number(path).is_some()
}

/// The `cardN` nodes in `dev_dri`, with what `sys_class_drm` says about each.
fn scan_cards(dev_dri: &Path, sys_class_drm: &Path) -> Vec<Card> {
    let entries = match std::fs::read_dir(dev_dri) {
        Ok(entries) => entries,
        Err(err) => {
            debug!(%err, dir = %dev_dri.display(), "cannot list DRM nodes");
            return Vec::new();
        }
    };
    entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| is_card_node(path))
        .map(|path| {
            let name = path.file_name().unwrap_or(OsStr::new(""));
            let sys = sys_class_drm.join(name);
            Card {
                boot_vga: read_boot_vga(&sys.join("device")),
                has_connectors: has_connectors(&sys, name),
                path,
            }
        })
        .collect()
}

/// Whether the PCI device at `device` (sysfs) was the boot VGA device.
fn read_boot_vga(device: &Path) -> bool {
    std::fs::read_to_string(device.join("boot_vga")).is_ok_and(|v| v.trim() == "1")
}

/// Whether the card at `syspath` (named `name`) has connector children (`cardN-HDMI-A-1`).
/// `None` when sysfs cannot be read.
fn has_connectors(syspath: &Path, name: &OsStr) -> Option<bool> {
    let mut prefix = name.to_os_string();
    prefix.push("-");
    let prefix = prefix.to_str()?.to_owned();
    let entries = std::fs::read_dir(syspath).ok()?;
    Some(entries.filter_map(|e| e.ok()).any(|entry| {
        entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix))
    }))
}

/// DRM cards on `seat` as udev enumerates them.
fn udev_cards(seat: &str) -> std::io::Result<Vec<Card>> {
    use smithay::reexports::udev::Enumerator;
    let mut enumerator = Enumerator::new()?;
    enumerator.match_subsystem("drm")?;
    enumerator.match_sysname("card[0-9]*")?;
    let cards = enumerator
        .scan_devices()?
        .filter(|device| {
            let on_seat = device
                .property_value("ID_SEAT")
                .is_none_or(|s| s == OsStr::new(seat));
            on_seat && device.devnode().is_some_and(is_card_node)
        })
        .filter_map(|device| {
            let path = device.devnode()?.to_path_buf();
            let boot_vga = device
                .parent_with_subsystem("pci")
                .ok()
                .flatten()
                .and_then(|pci| pci.attribute_value("boot_vga").map(|v| v == "1"))
                .unwrap_or(false);
            Some(Card {
                boot_vga,
                has_connectors: has_connectors(device.syspath(), device.sysname()),
                path,
            })
        })
        .collect();
    Ok(cards)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("lockstep-session-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn card(path: &str, boot_vga: bool, has_connectors: Option<bool>) -> Card {
        Card {
            path: path.into(),
            boot_vga,
            has_connectors,
        }
    }

    #[test]
    fn boot_vga_first_then_by_number_render_only_dropped() {
        let cards = vec![
            card("/dev/dri/card10", false, Some(true)),
            card("/dev/dri/card2", false, None),
            card("/dev/dri/card3", false, Some(false)),
            card("/dev/dri/card11", true, Some(true)),
            card("/dev/dri/card0", false, Some(true)),
        ];
        let ordered = order_candidates(cards);
        let expected: Vec<PathBuf> = ["card11", "card0", "card2", "card10"]
            .iter()
            .map(|n| Path::new("/dev/dri").join(n))
            .collect();
        assert_eq!(ordered, expected);
    }

    #[test]
    fn card_nodes_only() {
        assert!(is_card_node(Path::new("/dev/dri/card0")));
        assert!(is_card_node(Path::new("/dev/dri/card12")));
        assert!(!is_card_node(Path::new("/dev/dri/renderD128")));
        assert!(!is_card_node(Path::new("/dev/dri/card0-HDMI-A-1")));
        assert!(!is_card_node(Path::new("/dev/dri/card")));
        assert!(!is_card_node(Path::new("/dev/dri/by-path")));
    }

    #[test]
    fn scan_reads_dev_and_sysfs() {
        let root = TempDir::new("scan");
        let dev = root.0.join("dev/dri");
        let sys = root.0.join("sys/class/drm");
        fs::create_dir_all(&dev).unwrap();
        for node in ["card0", "card1", "card2", "renderD128", "by-path"] {
            fs::write(dev.join(node), "").unwrap();
        }
        // card0: vkms-like, connectors, not PCI.
        fs::create_dir_all(sys.join("card0/card0-Virtual-1")).unwrap();
        fs::create_dir_all(sys.join("card0/card0-Writeback-1")).unwrap();
        // card1: vgem-like, render only.
        fs::create_dir_all(sys.join("card1/device")).unwrap();
        // card2: the boot VGA device with a connector.
        fs::create_dir_all(sys.join("card2/device")).unwrap();
        fs::create_dir_all(sys.join("card2/card2-DP-1")).unwrap();
        fs::write(sys.join("card2/device/boot_vga"), "1\n").unwrap();

        let mut cards = scan_cards(&dev, &sys);
        cards.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(
            cards,
            vec![
                card(dev.join("card0").to_str().unwrap(), false, Some(true)),
                card(dev.join("card1").to_str().unwrap(), false, Some(false)),
                card(dev.join("card2").to_str().unwrap(), true, Some(true)),
            ]
        );
        assert_eq!(
            order_candidates(cards),
            vec![dev.join("card2"), dev.join("card0")]
        );
    }

    #[test]
    fn scan_without_sysfs_keeps_every_card() {
        let root = TempDir::new("nosys");
        let dev = root.0.join("dri");
        fs::create_dir_all(&dev).unwrap();
        fs::write(dev.join("card1"), "").unwrap();
        fs::write(dev.join("card0"), "").unwrap();
        let cards = scan_cards(&dev, &root.0.join("no-sysfs"));
        assert!(cards
            .iter()
            .all(|c| c.has_connectors.is_none() && !c.boot_vga));
        assert_eq!(
            order_candidates(cards),
            vec![dev.join("card0"), dev.join("card1")]
        );
    }

    #[test]
    fn missing_dev_dri_is_empty() {
        let root = TempDir::new("nodev");
        assert!(scan_cards(&root.0.join("absent"), &root.0).is_empty());
    }

    #[test]
    fn session_plan() {
        let libseat = Plan::LibSeat { fallback: true };
        assert_eq!(plan_session(None, false, true).unwrap(), libseat);
        assert_eq!(plan_session(Some(""), false, true).unwrap(), libseat);
        assert_eq!(plan_session(None, true, false).unwrap(), libseat);
        assert!(matches!(
            plan_session(None, false, false).unwrap(),
            Plan::Direct(_)
        ));
        assert!(matches!(
            plan_session(Some("direct"), true, true).unwrap(),
            Plan::Direct(_)
        ));
        assert_eq!(
            plan_session(Some("libseat"), false, false).unwrap(),
            Plan::LibSeat { fallback: false }
        );
        let err = plan_session(Some("logind"), false, true).unwrap_err();
        assert!(err.to_string().contains("expected `direct` or `libseat`"));
    }

    #[test]
    fn direct_session_errors_carry_errno() {
        assert_eq!(
            SessionError::NoVtSwitching.as_errno(),
            Some(Errno::NOSYS.raw_os_error())
        );
        let err = SessionError::Open {
            path: "/dev/dri/card0".into(),
            errno: Errno::ACCESS,
        };
        assert_eq!(err.as_errno(), Some(Errno::ACCESS.raw_os_error()));
    }

    #[test]
    fn direct_session_opens_with_given_flags() {
        let root = TempDir::new("open");
        let file = root.0.join("fake-device");
        fs::write(&file, "x").unwrap();
        let mut session = KmsSession {
            inner: Inner::Direct {
                seat: "seat0".into(),
            },
        };
        let fd = session.open(&file).unwrap();
        let flags = rustix::fs::fcntl_getfl(&fd).unwrap();
        assert!(flags.contains(OFlags::RDWR | OFlags::NONBLOCK));
        assert!(rustix::io::fcntl_getfd(&fd)
            .unwrap()
            .contains(rustix::io::FdFlags::CLOEXEC));
        Session::close(&mut session, fd).unwrap();
        assert!(session.is_active());
        assert_eq!(session.kind(), "direct");
        assert!(matches!(
            session.change_vt(2),
            Err(SessionError::NoVtSwitching)
        ));
        assert!(session.open(&root.0.join("absent")).is_err());
    }
}
