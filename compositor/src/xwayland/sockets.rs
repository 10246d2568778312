//! The X11 display lockstep owns: `/tmp/.X<n>-lock`, `/tmp/.X11-unix/X<n>` and the abstract
//! socket `@/tmp/.X11-unix/X<n>`, listening from start to exit.
//!
//! The display number is the first `n` whose lock file lockstep can create (or take over from
//! a process that no longer exists) and whose sockets it can bind. The sockets outlive any one
//! Xwayland: each Xwayland gets them with `-listenfd`, and a connection that arrives while none
//! runs waits in the kernel's backlog until the next one accepts it.

use std::{
    fs::OpenOptions,
    io::Write,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    path::PathBuf,
};

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use tracing::debug;

/// The directory X servers put their sockets in.
const SOCKET_DIR: &str = "/tmp/.X11-unix";

/// The display numbers tried: `:0` is usually the host's, so the search starts there and
/// skips taken ones.
const DISPLAYS: std::ops::Range<u32> = 0..64;

/// How many connections may wait to be accepted (while Xwayland starts).
const BACKLOG: i32 = 64;

/// An X11 display number (`DISPLAY=:n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplayNumber(pub u32);

impl std::fmt::Display for DisplayNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, ":{}", self.0)
    }
}

/// Why no X11 display could be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// `/tmp/.X11-unix` does not exist and cannot be made.
    #[error("cannot create {SOCKET_DIR}: {0}")]
    SocketDir(std::io::Error),
    /// Every display number in the range is taken.
    #[error("no free X11 display number from :{} to :{} (lock files in /tmp/.X*-lock)", DISPLAYS.start, DISPLAYS.end - 1)]
    NoFreeDisplay,
}

/// The lock file and listening sockets of one display; dropping it removes the files.
#[derive(Debug)]
pub struct X11Sockets {
    display: DisplayNumber,
    lock_path: PathBuf,
    socket_path: PathBuf,
    /// The filesystem socket, then the abstract one.
    listeners: Vec<OwnedFd>,
}

impl X11Sockets {
    /// Takes the first free display number and listens on its sockets.
    pub fn open() -> Result<Self, SocketError> {
        ensure_socket_dir()?;
        for n in DISPLAYS {
            let Some(lock_path) = take_lock(n) else {
                continue;
            };
            match listen(n) {
                Ok((socket_path, listeners)) => {
                    return Ok(Self {
                        display: DisplayNumber(n),
                        lock_path,
                        socket_path,
                        listeners,
                    })
                }
                Err(err) => {
                    debug!(display = n, %err, "X11 display socket taken; trying the next");
                    let _ = std::fs::remove_file(&lock_path);
                }
            }
        }
        Err(SocketError::NoFreeDisplay)
    }

    /// The display number.
    pub fn display(&self) -> DisplayNumber {
        self.display
    }

    /// The listening sockets (filesystem, abstract).
    pub fn listeners(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.listeners.iter().map(|fd| fd.as_fd())
    }
}

impl Drop for X11Sockets {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket_path);
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

fn ensure_socket_dir() -> Result<(), SocketError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o1777).create(SOCKET_DIR) {
        Ok(()) => {
            // The umask may have cleared bits: the directory is shared by every user.
            std::fs::set_permissions(SOCKET_DIR, std::fs::Permissions::from_mode(0o1777))
                .map_err(SocketError::SocketDir)
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(SocketError::SocketDir(err)),
    }
}

/// Creates `/tmp/.X<n>-lock` holding our pid as X servers write it (10 characters and a
/// newline). A lock whose pid no longer exists is stale and taken over.
fn take_lock(n: u32) -> Option<PathBuf> {
    let path = PathBuf::from(format!("/tmp/.X{n}-lock"));
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                let pid = std::process::id();
                if file.write_all(format!("{pid:>10}\n").as_bytes()).is_ok() {
                    return Some(path);
                }
                let _ = std::fs::remove_file(&path);
                return None;
            }
            Err(_) if lock_is_stale(&path) => {
                debug!(display = n, "removing a stale X11 lock file");
                if std::fs::remove_file(&path).is_err() {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
    None
}

/// Whether the lock file at `path` names a process that does not exist.
fn lock_is_stale(path: &std::path::Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return false;
    };
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
}

/// Binds and listens on the filesystem and abstract sockets of display `n`.
fn listen(n: u32) -> rustix::io::Result<(PathBuf, Vec<OwnedFd>)> {
    let path = format!("{SOCKET_DIR}/X{n}");
    // We hold the lock, so a socket file left at this path belongs to a dead server.
    let _ = std::fs::remove_file(&path);
    let mut listeners = Vec::with_capacity(2);
    let fs_addr = SocketAddrUnix::new(path.as_str())?;
    listeners.push(bound_socket(&fs_addr)?);
    let abstract_addr = SocketAddrUnix::new_abstract_name(path.as_bytes());
    match abstract_addr.and_then(|addr| bound_socket(&addr)) {
        Ok(fd) => listeners.push(fd),
        Err(err) => {
            let _ = std::fs::remove_file(&path);
            return Err(err);
        }
    }
    Ok((PathBuf::from(path), listeners))
}

fn bound_socket(addr: &SocketAddrUnix) -> rustix::io::Result<OwnedFd> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    rustix::net::bind(&fd, addr)?;
    rustix::net::listen(&fd, BACKLOG)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_displays_get_different_numbers_and_clean_up() {
        let a = X11Sockets::open().unwrap();
        let b = X11Sockets::open().unwrap();
        assert_ne!(a.display(), b.display());
        let socket = PathBuf::from(format!("{SOCKET_DIR}/X{}", a.display().0));
        let lock = PathBuf::from(format!("/tmp/.X{}-lock", a.display().0));
        assert!(socket.exists() && lock.exists());
        // A client can connect while nobody accepts: it waits in the backlog.
        std::os::unix::net::UnixStream::connect(&socket).unwrap();
        drop(a);
        assert!(!socket.exists() && !lock.exists());
    }
}
