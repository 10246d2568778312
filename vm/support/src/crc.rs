//! vkms per-frame CRCs: what is on screen, without DRM master and without writeback.
//!
//! vkms computes a CRC of every composed frame and exposes it through the DRM CRC debugfs
//! interface, `/sys/kernel/debug/dri/N/crtc-0/crc/{control,data}`. Writing `auto` to `control`
//! starts capture; every frame then adds one `frame crc` line to `data`. A test that knows the
//! CRC of an expected image (or just that two images differ) can follow what a compositor
//! shows while the compositor owns the display.
//!
//! ```no_run
//! use std::time::Duration;
//! use lockstep_vm_support::crc::CrcReader;
//!
//! let mut crcs = CrcReader::open_vkms(0)?; // CRTC index 0
//! let frame = crcs.next(Duration::from_secs(2))?; // needs an active CRTC
//! assert_eq!(frame.values.len(), 1);
//! # Ok::<(), lockstep_vm_support::Error>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::guest::wait_readable;
use crate::{Error, Result};

/// Root of the DRM debugfs directories.
pub const DRI_DEBUGFS: &str = "/sys/kernel/debug/dri";

/// One CRC line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crc {
    /// Frame counter (`None` when the driver reports none, printed as `XXXXXXXXXX`).
    pub frame: Option<u64>,
    /// The CRC values (vkms has one).
    pub values: Vec<u32>,
}

impl Crc {
    /// Parses one line of `crc/data`, e.g. `0x0000002a 0x1a2b3c4d`.
    pub fn parse(line: &str) -> Result<Self> {
        let bad = || Error::Parse {
            what: "CRC line",
            text: line.to_owned(),
        };
        let hex = |word: &str| -> Option<u64> {
            u64::from_str_radix(word.strip_prefix("0x").unwrap_or(word), 16).ok()
        };
        let mut words = line
            .trim_matches(|c: char| c.is_whitespace() || c == '\0')
            .split_whitespace();
        let frame = match words.next().ok_or_else(bad)? {
            w if w.chars().all(|c| c == 'X') => None,
            w => Some(hex(w).ok_or_else(bad)?),
        };
        let values = words
            .map(|w| hex(w).and_then(|v| u32::try_from(v).ok()).ok_or_else(bad))
            .collect::<Result<Vec<_>>>()?;
        if values.is_empty() {
            return Err(bad());
        }
        Ok(Self { frame, values })
    }
}

/// Reads CRC lines of one vkms CRTC. Capture stops when the reader is dropped (the kernel
/// stops it when `data` is closed).
#[derive(Debug)]
pub struct CrcReader {
    data: File,
    path: PathBuf,
}

impl CrcReader {
    /// Starts CRC capture on CRTC `crtc_index` of the vkms device.
    pub fn open_vkms(crtc_index: u32) -> Result<Self> {
        let dir = debugfs_dir("vkms")?.join(format!("crtc-{crtc_index}/crc"));
        let control = dir.join("control");
        OpenOptions::new()
            .write(true)
            .open(&control)
            .and_then(|mut f| f.write_all(b"auto"))
            .map_err(Error::file("write auto to", &control))?;
        let path = dir.join("data");
        let data = File::open(&path).map_err(Error::file("open", &path))?;
        Ok(Self { data, path })
    }

    /// Waits up to `timeout` for the next frame's CRC. vkms produces one per vblank (60 Hz)
    /// while its CRTC is active; an inactive CRTC never produces one.
    pub fn next(&mut self, timeout: Duration) -> Result<Crc> {
        if !wait_readable(&self.data, timeout)? {
            return Err(Error::Timeout {
                what: "a vkms CRC line (is the CRTC active?)",
                after: timeout,
            });
        }
        // The kernel hands out whole lines only, and only to reads of at least one line.
        let mut buf = [0u8; 256];
        let n = self
            .data
            .read(&mut buf)
            .map_err(Error::file("read", &self.path))?;
        Crc::parse(&String::from_utf8_lossy(&buf[..n]))
    }

    /// The CRC of what is on screen now, without its frame number (so two frames with the
    /// same pixels compare equal): lines already buffered are stale and are dropped, the next
    /// frame may have been composed just before a flip, so the second fresh one is returned.
    pub fn current(&mut self, timeout: Duration) -> Result<Crc> {
        while self.next(Duration::ZERO).is_ok() {}
        self.next(timeout)?;
        let mut crc = self.next(timeout)?;
        crc.frame = None;
        Ok(crc)
    }

    /// The CRC of the first frame vkms composed at or after vblank `sequence` (the CRTC's
    /// vblank counter, which page-flip events carry), without its frame number. Unlike
    /// [`Self::current`] this does not depend on how far vkms's composer lags behind the
    /// vblanks: under emulation it can fall more than a frame behind, and lines read after
    /// a flip may still describe frames before it.
    pub fn from_vblank(&mut self, sequence: u64, timeout: Duration) -> Result<Crc> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut crc = self.next(left)?;
            if crc.frame.is_some_and(|frame| frame < sequence) {
                continue;
            }
            crc.frame = None;
            return Ok(crc);
        }
    }

    /// Skips CRCs until one differs from `previous` (or, with `None`, returns the next one),
    /// up to `timeout`: waits for a change to reach the screen.
    pub fn next_different(&mut self, previous: Option<&Crc>, timeout: Duration) -> Result<Crc> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let crc = self.next(left)?;
            if previous.is_none_or(|p| p.values != crc.values) {
                return Ok(crc);
            }
        }
    }
}

/// The debugfs directory of the DRM device whose `name` file starts with `driver`.
pub fn debugfs_dir(driver: &str) -> Result<PathBuf> {
    let root = Path::new(DRI_DEBUGFS);
    let entries = std::fs::read_dir(root).map_err(Error::file("read directory", root))?;
    for entry in entries.filter_map(|e| e.ok()) {
        let name = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
        if name.split_whitespace().next() == Some(driver) {
            return Ok(entry.path());
        }
    }
    Err(Error::Unsupported(format!(
        "no {DRI_DEBUGFS}/N/name for driver {driver} (is debugfs mounted?)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vkms_lines() {
        let crc = Crc::parse("0x0000002a 0x1a2b3c4d\n\0").expect("valid line");
        assert_eq!(crc.frame, Some(42));
        assert_eq!(crc.values, vec![0x1a2b_3c4d]);
    }

    #[test]
    fn parses_a_line_without_frame_counter() {
        let crc = Crc::parse("XXXXXXXXXX 0x00000001").expect("valid line");
        assert_eq!(crc.frame, None);
        assert_eq!(crc.values, vec![1]);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Crc::parse("").is_err());
        assert!(Crc::parse("0x1").is_err());
        assert!(Crc::parse("0x1 zz").is_err());
    }
}
