//! lockstep-config: the configuration file model, parsing with precise errors, defaults and
//! validation.
//!
//! # Why a crate of its own
//!
//! The compositor, `lockstep validate-config` and tests all need the same parse with the
//! same errors, and none of them should pull in smithay to get it. A mistake in the file
//! must be found before it matters and be easy to fix, so every error carries the file,
//! line and column, shows the offending line with a caret and, when we can tell, a hint
//! (the valid keys, "did you mean", the expected form of a value). Parsing has no side
//! effects, so a reload can keep the old [`Config`] when the new text is invalid and show
//! the error instead.
//!
//! # How to use it
//!
//! ```no_run
//! use lockstep_config::{Config, ConfigSource};
//!
//! // `None`: the default path; a missing default file means defaults.
//! // `Some(path)` (from `--config`) must exist.
//! match Config::load(None) {
//!     Ok(loaded) => {
//!         if let ConfigSource::Defaults { .. } = &loaded.source {
//!             // tell the user no file was found
//!         }
//!         let timeout = loaded.config.explicit_sync.acquire_timeout();
//!         # let _ = timeout;
//!     }
//!     // Display renders `path:line:col: error: …` with the line, a caret and a hint.
//!     Err(err) => panic!("{err}"),
//! }
//! ```
//!
//! [`Config::parse`] does the same for text already in memory:
//!
//! ```
//! use std::path::Path;
//! use lockstep_config::{Config, ErrorKind};
//!
//! let config = Config::parse("[keyboard]\nlayout = \"de\"\n", Path::new("inline")).unwrap();
//! assert_eq!(config.keyboard.layout, "de");
//! assert_eq!(config.keyboard.repeat_rate, 25); // everything else is the default
//!
//! let err = Config::parse("[keyboard]\nlayuot = \"de\"\n", Path::new("inline")).unwrap_err();
//! let diag = err.diagnostic().unwrap();
//! assert_eq!((diag.kind, diag.line, diag.column), (ErrorKind::UnknownKey, 2, 1));
//! assert_eq!(
//!     err.to_string(),
//!     "inline:2:1: error: unknown key `layuot` in [keyboard]
//!   |
//! 2 | layuot = \"de\"
//!   | ^^^^^^
//!   = hint: did you mean `layout`? valid keys in [keyboard]: `layout`, `variant`, \
//! `options`, `model`, `repeat_rate`, `repeat_delay`"
//! );
//! ```
//!
//! # The file
//!
//! TOML with four tables, all optional; every key has a default, and unknown keys are
//! errors. A small file, two outputs side by side and a German keymap without Caps Lock:
//!
//! ```toml
//! [[output]]
//! name = "HEADLESS-1"
//! mode = "2560x1440@59.951"
//! scale = 1.5
//!
//! [[output]]
//! name = "HEADLESS-2"
//! mode = "1920x1080"
//! position = { x = 1707, y = 0 }
//!
//! [keyboard]
//! layout = "de"
//! options = "ctrl:nocaps"
//! ```
//!
//! Reporting acquire points only after 5 s without a signal (`enabled = false` would turn
//! explicit sync off):
//!
//! ```toml
//! [explicit_sync]
//! enabled = true
//! acquire_timeout_ms = 5000
//! ```
//!
//! One entry without a `name` applies to every output no named entry matches:
//!
//! ```toml
//! [[output]]
//! scale = 2
//!
//! [[output]]
//! name = "winit"
//! scale = 1
//! ```
//!
//! The reference, `config/example-config.toml` in the repository, has every key with its
//! default:
//!
#![doc = concat!("```toml\n", include_str!("../example-config.toml"), "```")]
#![warn(missing_docs)]

mod binds;
mod bytes;
mod error;
mod mode;
mod model;
mod schema;
mod validate;

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use binds::{
    Action, ActionParseError, BindSpec, Binding, Direction, KeyCombo, Modifiers, Resize,
    ResizeAxis, ResizeUnit, ACTION_NAMES, DEFAULT_BINDS, DEFAULT_RESIZE_AMOUNT, MAX_AMOUNT,
};
pub use bytes::{ByteSize, BYTE_SIZE_HINT};
pub use error::{ConfigError, Diagnostic, ErrorKind};
pub use mode::{Mode, ModeParseError, MAX_MODE_SIZE, MAX_REFRESH_MHZ};
pub use model::{
    parse_color, Config, CursorConfig, ExplicitSyncConfig, KeyboardConfig, LayoutConfig,
    LimitsConfig, LockConfig, NewWindows, OutputConfig, Position, RenderConfig, Renderer,
    XwaylandConfig,
};

/// Largest accepted output position coordinate, either sign, in logical pixels: far beyond
/// any real layout (64 side-by-side 16K displays), and small enough that adding any output
/// size to it stays far from `i32::MAX`.
pub const MAX_POSITION: u32 = 1 << 20;

/// A loaded configuration and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The file it was read from, or why defaults apply.
    pub source: ConfigSource,
}

/// Where a [`Loaded`] configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// Read from this file.
    File(PathBuf),
    /// No file: built-in defaults.
    Defaults {
        /// The default path that was looked at and does not exist; `None` when neither
        /// `XDG_CONFIG_HOME` nor `HOME` is set, so there is no default path.
        missing: Option<PathBuf>,
    },
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::Defaults {
                missing: Some(path),
            } => {
                write!(f, "built-in defaults ({} does not exist)", path.display())
            }
            ConfigSource::Defaults { missing: None } => {
                f.write_str("built-in defaults (neither XDG_CONFIG_HOME nor HOME is set)")
            }
        }
    }
}

impl Config {
    /// Loads the configuration from `path`, or from [`default_path()`] when `path` is `None`.
    ///
    /// A missing default file gives [`Config::default()`] with
    /// [`ConfigSource::Defaults`]; an explicit `path` must exist. Errors: the file cannot be
    /// read ([`ConfigError::Read`]), or its contents are invalid
    /// ([`ConfigError::Invalid`], see [`Config::parse`]).
    pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
        let (path, explicit) = match path {
            Some(path) => (path.to_owned(), true),
            None => match default_path() {
                Some(path) => (path, false),
                None => return Ok(defaults(None)),
            },
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Loaded {
                config: Config::parse(&text, &path)?,
                source: ConfigSource::File(path),
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound && !explicit => {
                Ok(defaults(Some(path)))
            }
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// Parses and validates configuration text. `path` is only used in error messages.
    ///
    /// Errors are [`ConfigError::Invalid`] with a [`Diagnostic`] at the first problem:
    /// TOML syntax, unknown keys, wrong types, bad modes, then the checks types cannot
    /// express (scale in (0, 4], `acquire_timeout_ms` ≥ 1, unique output names).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |d| ConfigError::Invalid(Box::new(d));
        let config: Config = toml::from_str(text)
            .map_err(|err| invalid(error::from_toml(&err, text, path.to_owned())))?;
        validate::validate(&config, text, path.to_owned())?;
        Ok(config)
    }
}

fn defaults(missing: Option<PathBuf>) -> Loaded {
    Loaded {
        config: Config::default(),
        source: ConfigSource::Defaults { missing },
    }
}

/// `$XDG_CONFIG_HOME/lockstep/config.toml`, else `$HOME/.config/lockstep/config.toml`;
/// `None` when neither variable is set. As the XDG base directory spec says, an empty or
/// relative `XDG_CONFIG_HOME` is ignored.
pub fn default_path() -> Option<PathBuf> {
    default_path_from(
        std::env::var_os("XDG_CONFIG_HOME").as_deref(),
        std::env::var_os("HOME").as_deref(),
    )
}

fn default_path_from(xdg_config_home: Option<&OsStr>, home: Option<&OsStr>) -> Option<PathBuf> {
    let config_dir = match xdg_config_home.map(Path::new) {
        Some(dir) if dir.is_absolute() => dir.to_owned(),
        _ => Path::new(home.filter(|h| !h.is_empty())?).join(".config"),
    };
    Some(config_dir.join("lockstep").join("config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_follows_xdg() {
        let os = |s: &'static str| Some(OsStr::new(s));
        let path = |s: &str| Some(PathBuf::from(s));
        assert_eq!(
            default_path_from(os("/xdg"), os("/home/me")),
            path("/xdg/lockstep/config.toml")
        );
        assert_eq!(
            default_path_from(None, os("/home/me")),
            path("/home/me/.config/lockstep/config.toml")
        );
        // Empty or relative XDG_CONFIG_HOME is ignored, as the spec says.
        for ignored in ["", "relative/dir"] {
            assert_eq!(
                default_path_from(os(ignored), os("/home/me")),
                path("/home/me/.config/lockstep/config.toml")
            );
        }
        assert_eq!(default_path_from(None, None), None);
        assert_eq!(default_path_from(os(""), os("")), None);
    }

    #[test]
    fn source_display() {
        assert_eq!(ConfigSource::File("/c.toml".into()).to_string(), "/c.toml");
        let missing = ConfigSource::Defaults {
            missing: Some("/c.toml".into()),
        };
        assert_eq!(
            missing.to_string(),
            "built-in defaults (/c.toml does not exist)"
        );
    }
}
