//! Output modes written as `WIDTHxHEIGHT` or `WIDTHxHEIGHT@REFRESH`.
//!
//! The same syntax is used by the `mode` key of an `[[output]]` table and by the
//! compositor's `--output WxH@HZ` option, so both go through [`Mode::from_str`] and report
//! the same errors.
//!
//! ```
//! use std::str::FromStr;
//! use lockstep_config::Mode;
//!
//! let mode = Mode::from_str("2560x1440@59.951").unwrap();
//! assert_eq!((mode.width, mode.height, mode.refresh_mhz), (2560, 1440, Some(59_951)));
//! assert_eq!(mode.to_string(), "2560x1440@59.951");
//!
//! let err = Mode::from_str("1920*1080").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "invalid mode \"1920*1080\": missing `x` between width and height \
//!      (expected WIDTHxHEIGHT or WIDTHxHEIGHT@HZ, e.g. 1920x1080@60)"
//! );
//! ```

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The accepted forms, for error messages and hints.
pub(crate) const MODE_SYNTAX: &str = "WIDTHxHEIGHT or WIDTHxHEIGHT@HZ, e.g. 1920x1080@60";

/// Prefix of the serde error a bad `mode` string produces; `error.rs` recognises it to
/// attach [`MODE_SYNTAX`] as a hint instead of repeating it in the message.
pub(crate) const MODE_ERROR_PREFIX: &str = "invalid mode ";

/// Largest accepted width or height, in pixels (the usual maximum texture and
/// framebuffer size; larger values are typos, not monitors).
pub const MAX_MODE_SIZE: u32 = 16384;

/// Largest accepted refresh rate, in millihertz (1000 Hz).
pub const MAX_REFRESH_MHZ: u32 = 1_000_000;

/// An output mode: size in physical pixels and an optional refresh rate.
///
/// Parse it with [`FromStr`] (`"1920x1080"`, `"1920x1080@60"`, `"2560x1440@59.951"`; a
/// trailing `Hz` is accepted). [`Display`](fmt::Display) writes the same form back.
/// Without a refresh rate the backend picks one (the monitor's preferred rate for that size,
/// 60 Hz for virtual outputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mode {
    /// Width in physical pixels, 1 to [`MAX_MODE_SIZE`].
    pub width: u32,
    /// Height in physical pixels, 1 to [`MAX_MODE_SIZE`].
    pub height: u32,
    /// Refresh rate in millihertz (60 Hz is `60_000`), 1 to [`MAX_REFRESH_MHZ`], or `None`
    /// to let the backend choose.
    pub refresh_mhz: Option<u32>,
}

/// Why a mode string was rejected; its [`Display`](fmt::Display) names the input, the
/// problem and the expected form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeParseError {
    input: String,
    reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reason {
    Empty,
    MissingX,
    NotANumber {
        what: &'static str,
        text: String,
    },
    OutOfRange {
        what: &'static str,
        text: String,
        max: &'static str,
    },
}

impl ModeParseError {
    /// The string that failed to parse.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The message without the expected form: `invalid mode "…": <reason>`.
    pub(crate) fn short(&self) -> String {
        format!("{MODE_ERROR_PREFIX}{:?}: {}", self.input, self.reason)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Empty => f.write_str("the mode is empty"),
            Reason::MissingX => f.write_str("missing `x` between width and height"),
            Reason::NotANumber { what, text } => write!(f, "{what} `{text}` is not a number"),
            Reason::OutOfRange { what, text, max } => {
                write!(
                    f,
                    "{what} `{text}` is out of range (must be above 0 and at most {max})"
                )
            }
        }
    }
}

impl fmt::Display for ModeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (expected {MODE_SYNTAX})", self.short())
    }
}

impl std::error::Error for ModeParseError {}

impl FromStr for Mode {
    type Err = ModeParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| ModeParseError {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        if text.is_empty() {
            return Err(err(Reason::Empty));
        }
        let (size, refresh) = match text.split_once('@') {
            Some((size, refresh)) => (size, Some(refresh)),
            None => (text, None),
        };
        let (width, height) = size.split_once('x').ok_or_else(|| err(Reason::MissingX))?;
        let width = parse_size("width", width).map_err(err)?;
        let height = parse_size("height", height).map_err(err)?;
        let refresh_mhz = refresh.map(parse_refresh).transpose().map_err(err)?;
        Ok(Mode {
            width,
            height,
            refresh_mhz,
        })
    }
}

fn parse_size(what: &'static str, text: &str) -> Result<u32, Reason> {
    let text = text.trim();
    let out_of_range = || Reason::OutOfRange {
        what,
        text: text.to_owned(),
        max: "16384",
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reason::NotANumber {
            what,
            text: text.to_owned(),
        });
    }
    // All digits: the only parse failure left is overflow.
    let value: u32 = text.parse().map_err(|_| out_of_range())?;
    if value == 0 || value > MAX_MODE_SIZE {
        return Err(out_of_range());
    }
    Ok(value)
}

fn parse_refresh(text: &str) -> Result<u32, Reason> {
    let what = "refresh rate";
    let text = text.trim();
    let number = text
        .strip_suffix("Hz")
        .or_else(|| text.strip_suffix("hz"))
        .unwrap_or(text)
        .trim_end();
    // Only plain decimals: f64's parser would also take "inf", "NaN" and "6e1".
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) {
        return Err(Reason::NotANumber {
            what,
            text: text.to_owned(),
        });
    }
    let hz: f64 = number.parse().map_err(|_| Reason::NotANumber {
        what,
        text: text.to_owned(),
    })?;
    let mhz = (hz * 1000.0).round();
    if mhz < 1.0 || mhz > f64::from(MAX_REFRESH_MHZ) {
        return Err(Reason::OutOfRange {
            what,
            text: text.to_owned(),
            max: "1000 Hz",
        });
    }
    // In range 1..=1_000_000 and integral after round(): the cast is exact.
    Ok(mhz as u32)
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)?;
        if let Some(mhz) = self.refresh_mhz {
            let (hz, frac) = (mhz / 1000, mhz % 1000);
            if frac == 0 {
                write!(f, "@{hz}")?;
            } else {
                let frac = format!("{frac:03}");
                write!(f, "@{hz}.{}", frac.trim_end_matches('0'))?;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ModeVisitor;

        impl Visitor<'_> for ModeVisitor {
            type Value = Mode;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mode string such as \"1920x1080@60\"")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Mode, E> {
                Mode::from_str(value).map_err(|err| E::custom(err.short()))
            }
        }

        deserializer.deserialize_str(ModeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(width: u32, height: u32, refresh_mhz: Option<u32>) -> Mode {
        Mode {
            width,
            height,
            refresh_mhz,
        }
    }

    #[test]
    fn parses_accepted_forms() {
        let ok = |s: &str| Mode::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("1920x1080"), mode(1920, 1080, None));
        assert_eq!(ok("1920x1080@60"), mode(1920, 1080, Some(60_000)));
        assert_eq!(ok("1920x1080@60Hz"), mode(1920, 1080, Some(60_000)));
        assert_eq!(ok("2560x1440@59.951"), mode(2560, 1440, Some(59_951)));
        assert_eq!(ok("800x600@59.94"), mode(800, 600, Some(59_940)));
        assert_eq!(ok(" 640x480@144 "), mode(640, 480, Some(144_000)));
        assert_eq!(ok("16384x1@1000"), mode(16384, 1, Some(1_000_000)));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "1920x1080",
            "1920x1080@60",
            "2560x1440@59.951",
            "800x600@59.94",
        ] {
            assert_eq!(Mode::from_str(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_with_reason() {
        let reason = |s: &str| Mode::from_str(s).unwrap_err().reason.to_string();
        assert_eq!(reason(""), "the mode is empty");
        assert_eq!(reason("1920"), "missing `x` between width and height");
        assert_eq!(reason("1920,1080"), "missing `x` between width and height");
        assert_eq!(reason("axb"), "width `a` is not a number");
        assert_eq!(reason("1920x"), "height `` is not a number");
        assert_eq!(reason("1920x-1"), "height `-1` is not a number");
        assert_eq!(
            reason("0x1080"),
            "width `0` is out of range (must be above 0 and at most 16384)"
        );
        assert_eq!(
            reason("99999999999x1"),
            "width `99999999999` is out of range (must be above 0 and at most 16384)"
        );
        assert_eq!(reason("1x1@fast"), "refresh rate `fast` is not a number");
        assert_eq!(reason("1x1@inf"), "refresh rate `inf` is not a number");
        assert_eq!(reason("1x1@6e1"), "refresh rate `6e1` is not a number");
        assert_eq!(
            reason("1x1@0"),
            "refresh rate `0` is out of range (must be above 0 and at most 1000 Hz)"
        );
        assert_eq!(
            reason("1x1@1001"),
            "refresh rate `1001` is out of range (must be above 0 and at most 1000 Hz)"
        );
    }

    #[test]
    fn error_display_names_the_expected_form() {
        let err = Mode::from_str("big").unwrap_err();
        assert_eq!(err.input(), "big");
        assert_eq!(
            err.to_string(),
            "invalid mode \"big\": missing `x` between width and height \
             (expected WIDTHxHEIGHT or WIDTHxHEIGHT@HZ, e.g. 1920x1080@60)"
        );
    }
}
