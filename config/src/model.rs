//! The configuration model: what the compositor reads after a successful parse.
//!
//! Every struct rejects unknown keys (`deny_unknown_fields`) so that a typo is an error with
//! a location instead of a silently ignored setting, and every key has a default, so an
//! empty file, a missing file and a file with one key all give a complete [`Config`].

use std::time::Duration;

use serde::Deserialize;

use crate::Mode;

/// The whole configuration. `Config::default()` is what lockstep uses without a file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[[output]]` tables, in file order. Use [`Config::output`] to find the entry for a
    /// connector.
    #[serde(rename = "output")]
    pub outputs: Vec<OutputConfig>,
    /// The `[keyboard]` table.
    pub keyboard: KeyboardConfig,
    /// The `[explicit_sync]` table.
    pub explicit_sync: ExplicitSyncConfig,
    /// The `[cursor]` table.
    pub cursor: CursorConfig,
    /// The `[layout]` table.
    pub layout: LayoutConfig,
    /// The `[lock]` table.
    pub lock: LockConfig,
    /// The `[xwayland]` table.
    pub xwayland: XwaylandConfig,
    /// The `[render]` table.
    pub render: RenderConfig,
    /// The `[limits]` table: what one client may make lockstep hold.
    pub limits: LimitsConfig,
    /// The `[binds]` table as written: key combination -> action. Use
    /// [`Config::bindings`] for the bindings in force (defaults included).
    pub binds: std::collections::BTreeMap<String, crate::binds::BindSpec>,
}

/// Which renderer composites frames on KMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Renderer {
    /// GLES on the display's GPU when EGL can be set up on it and runs on hardware, else
    /// pixman (software GL such as llvmpipe is far slower than pixman).
    #[default]
    Auto,
    /// GLES; when EGL cannot be set up lockstep still falls back to pixman, and says why.
    Gles,
    /// pixman on the CPU, into dumb buffers.
    Pixman,
}

/// The `[render]` table: how frames are composited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RenderConfig {
    /// `"auto"`, `"gles"` or `"pixman"` (KMS backend only). Default `"auto"`.
    pub renderer: Renderer,
}

/// How new windows are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NewWindows {
    /// Tiled master–stack (dialogs float).
    #[default]
    Tiled,
    /// Floating: centred, then cascading.
    Floating,
}

/// The `[layout]` table: tiling, gaps, borders.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LayoutConfig {
    /// Pixels between tiles and around them, 0–200. Default 8.
    pub gaps: u32,
    /// Width of the border around each window, 0–50. Default 2.
    pub border_width: u32,
    /// Border colour of the focused window, `"#rrggbb"`. Default `"#4c7899"`.
    pub focused_color: String,
    /// Border colour of other windows, `"#rrggbb"`. Default `"#333333"`.
    pub unfocused_color: String,
    /// The master window's share of the width, 0.1–0.9. Default 0.5.
    pub master_ratio: f64,
    /// `"tiled"` or `"floating"`. Default `"tiled"`.
    pub new_windows: NewWindows,
}

impl Default for LayoutConfig {
    fn default() -> Self {
        LayoutConfig {
            gaps: 8,
            border_width: 2,
            focused_color: "#4c7899".to_owned(),
            unfocused_color: "#333333".to_owned(),
            master_ratio: 0.5,
            new_windows: NewWindows::Tiled,
        }
    }
}

/// The `[lock]` table: what a locked screen shows where no lock surface does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockConfig {
    /// Colour of an output while it is locked and its lock client has not drawn on it yet,
    /// `"#rrggbb"`. Default `"#000000"`.
    pub color: String,
    /// Colour of every output while the session stays locked after its lock client died,
    /// `"#rrggbb"`; start a new locker (e.g. `swaylock`) to unlock. Default `"#7f1010"`.
    pub abandoned_color: String,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            color: "#000000".to_owned(),
            abandoned_color: "#7f1010".to_owned(),
        }
    }
}

/// Parses `"#rrggbb"` into (r, g, b).
pub fn parse_color(text: &str) -> Option<(u8, u8, u8)> {
    let hex = text.strip_prefix('#')?;
    if hex.len() != 6 || !hex.is_ascii() {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some((byte(0)?, byte(2)?, byte(4)?))
}

/// One `[[output]]` table.
///
/// An entry with a `name` applies to the output of that name; the one entry without a
/// `name` (at most one is allowed) applies to every output no named entry matches.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Output (connector) name as the backend reports it: `"HEADLESS-1"`, `"winit"`,
    /// `"DP-1"`. Names are unique within the file.
    pub name: Option<String>,
    /// Mode to set; `None` lets the backend choose (the monitor's preferred mode, or the
    /// backend's default size for virtual outputs).
    pub mode: Option<Mode>,
    /// Scale factor, greater than 0 and at most 4. Default 1.
    pub scale: f64,
    /// Position of the top-left corner in the global space, in logical pixels; `None`
    /// lets the compositor place the output.
    pub position: Option<Position>,
    /// Whether to use the output at all. Default `true`.
    pub enabled: bool,
}

/// `position = { x = …, y = … }` of an output, in logical pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Horizontal position; grows to the right.
    pub x: i32,
    /// Vertical position; grows downwards.
    pub y: i32,
}

/// The `[keyboard]` table: the xkb keymap (RMLVO names, as in `setxkbmap`) and key repeat.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyboardConfig {
    /// xkb layout(s), comma-separated. Default `"us"`.
    pub layout: String,
    /// xkb variant(s), comma-separated, matching `layout`. Default empty.
    pub variant: String,
    /// xkb options, comma-separated, e.g. `"ctrl:nocaps,compose:ralt"`. Default empty.
    pub options: String,
    /// xkb model; empty means xkbcommon's default. Default empty.
    pub model: String,
    /// Repeats per second while a key is held; 0 disables repeat. Default 25.
    pub repeat_rate: u32,
    /// Milliseconds a key is held before it starts repeating. Default 600.
    pub repeat_delay: u32,
}

/// The `[explicit_sync]` table (linux-drm-syncobj-v1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExplicitSyncConfig {
    /// Whether to offer linux-drm-syncobj-v1 to clients. Default `true`.
    pub enabled: bool,
    /// After how many milliseconds an acquire point that has not signalled is reported (a
    /// warning, and an `acquire_timeout` entry in validation mode); at least 1. Default 2000.
    /// The commit keeps waiting: lockstep never shows a buffer before its acquire point
    /// signals, and only that surface waits.
    pub acquire_timeout_ms: u64,
    /// How many commits one client may have waiting for their acquire points at once (each
    /// costs lockstep an eventfd); at least 1. Default 64. A client that goes past it is
    /// disconnected with the `wl_display` error `no_memory`.
    pub max_held_commits_per_client: u32,
    /// The DRM node timelines are imported on (`/dev/dri/renderD128`). Default: the first
    /// render node whose driver supports timeline syncobjs.
    pub device: Option<std::path::PathBuf>,
    /// Client validation mode: record explicit-sync mistakes clients make (`lockstep msg
    /// sync-report`). Default `false`; `--sync-validation` turns it on too.
    pub validation: bool,
}

/// The `[limits]` table: how much one client may make lockstep hold for it.
///
/// A request that would go over a limit is refused with the protocol's error for it (see the
/// README's "Client memory" section); the compositor and other clients carry on. The
/// defaults are far above what real clients use (a browser with a dozen 4K windows holds a
/// few hundred MiB of buffers and a few hundred surfaces; foot maps 1 GiB of mostly empty
/// pool per window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Bytes of shared memory (`wl_shm` pools) lockstep maps for one client: address space,
    /// of which only the pages the client wrote hold memory (foot maps 512 MiB pools that
    /// are mostly holes). Default 64 GiB.
    pub shm_bytes_per_client: crate::ByteSize,
    /// Bytes of dmabufs lockstep holds imported for one client. Default 16 GiB.
    pub dmabuf_bytes_per_client: crate::ByteSize,
    /// `wl_buffer` objects (shm and dmabuf) one client may have at once. Default 16384.
    pub buffers_per_client: u32,
    /// `wl_surface` objects one client may have at once. Default 16384.
    pub surfaces_per_client: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            shm_bytes_per_client: crate::ByteSize(64 << 30),
            dmabuf_bytes_per_client: crate::ByteSize(16 << 30),
            buffers_per_client: 16384,
            surfaces_per_client: 16384,
        }
    }
}

/// The `[cursor]` table: the default cursor shown when a client sets none.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CursorConfig {
    /// XCursor theme name. Default `"default"`.
    pub theme: String,
    /// Cursor size in logical pixels. Default 24.
    pub size: u32,
}

/// The `[xwayland]` table: X11 programs through Xwayland.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XwaylandConfig {
    /// Whether lockstep offers an X11 display (`DISPLAY`) and starts Xwayland when the first
    /// X client connects. Default `true`; without the `Xwayland` binary it stays off (and the
    /// log says so).
    pub enabled: bool,
}

impl Default for XwaylandConfig {
    fn default() -> Self {
        XwaylandConfig { enabled: true }
    }
}

impl Config {
    /// The entry for the output called `name`: the `[[output]]` with that `name`, else the
    /// entry without a `name`, else `None` (use defaults).
    pub fn output(&self, name: &str) -> Option<&OutputConfig> {
        self.outputs
            .iter()
            .find(|o| o.name.as_deref() == Some(name))
            .or_else(|| self.outputs.iter().find(|o| o.name.is_none()))
    }
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            name: None,
            mode: None,
            scale: 1.0,
            position: None,
            enabled: true,
        }
    }
}

impl Default for KeyboardConfig {
    fn default() -> Self {
        KeyboardConfig {
            layout: "us".to_owned(),
            variant: String::new(),
            options: String::new(),
            model: String::new(),
            repeat_rate: 25,
            repeat_delay: 600,
        }
    }
}

impl Default for ExplicitSyncConfig {
    fn default() -> Self {
        ExplicitSyncConfig {
            enabled: true,
            acquire_timeout_ms: 2000,
            max_held_commits_per_client: 64,
            device: None,
            validation: false,
        }
    }
}

impl ExplicitSyncConfig {
    /// [`acquire_timeout_ms`](Self::acquire_timeout_ms) as a [`Duration`].
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

impl Default for CursorConfig {
    fn default() -> Self {
        CursorConfig {
            theme: "default".to_owned(),
            size: 24,
        }
    }
}
