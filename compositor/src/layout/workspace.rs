//! One workspace: its windows in order, which of them has focus, and how each is shown.

use std::fmt;

use super::geometry::{Rect, Size};

/// A window as the layout knows it: an id the shell hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowId(pub u64);

impl fmt::Display for WindowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A workspace's name: a number (the default 1–10, what Super+1..0 reach) or a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkspaceId {
    /// Workspace N; the keyboard reaches 1–10.
    Number(u32),
    /// A workspace created by name (`lockstep msg action workspace mail`).
    Named(String),
}

impl WorkspaceId {
    /// Parses `"3"` as a number and anything else as a name; `None` for an empty string.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        Some(match text.parse::<u32>() {
            Ok(n) => WorkspaceId::Number(n),
            Err(_) => WorkspaceId::Named(text.to_owned()),
        })
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkspaceId::Number(n) => write!(f, "{n}"),
            WorkspaceId::Named(name) => f.write_str(name),
        }
    }
}

/// What the client told us about a window that matters for placing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowHints {
    /// Its minimum size (0 = none).
    pub min: Size,
    /// Its maximum size (0 = none).
    pub max: Size,
    /// Whether it is a transient (has a parent toplevel), i.e. a dialog.
    pub has_parent: bool,
    /// The size it has (or wants) when floating.
    pub size: Size,
}

impl WindowHints {
    /// Dialogs float: transients, and fixed-size windows (min == max, both set).
    pub fn is_dialog(&self) -> bool {
        self.has_parent || (self.min.is_positive() && self.min == self.max)
    }

    /// `size` within the window's max size (where it has one).
    pub fn within_max(&self, size: Size) -> Size {
        Size::new(
            if self.max.w > 0 {
                size.w.min(self.max.w)
            } else {
                size.w
            },
            if self.max.h > 0 {
                size.h.min(self.max.h)
            } else {
                size.h
            },
        )
    }
}

/// One window on a workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowEntry {
    /// Which window.
    pub id: WindowId,
    /// Floating (placed freely, above the tiles) rather than tiled.
    pub floating: bool,
    /// Covers its whole output, above everything.
    pub fullscreen: bool,
    /// Covers the working area, above the tiles.
    pub maximized: bool,
    /// Where it floats: the top-left corner relative to its output's working area (the size
    /// is the client's, `hints.size`); `None` until placed.
    pub float_rect: Option<Rect>,
    /// What the client said.
    pub hints: WindowHints,
    /// The output it was on before that output was unplugged: it goes back there when the
    /// output returns.
    pub home: Option<String>,
    /// Its share of the stack column's height relative to the other stack windows (1 until
    /// a `resize ... height` changes it); always a positive number.
    pub weight: f64,
    /// Minimized (hidden until something activates it): when, in the layout's count of
    /// minimize operations, so that `unminimize` restores the latest one first. It keeps
    /// its other states (a maximized window comes back maximized) but is neither tiled nor
    /// shown, and never has focus.
    pub minimized: Option<u64>,
}

impl WindowEntry {
    /// A new tiled (or, for dialogs and when `float` is set, floating) window.
    pub fn new(id: WindowId, hints: WindowHints, float: bool) -> Self {
        Self {
            id,
            floating: float || hints.is_dialog(),
            fullscreen: false,
            maximized: false,
            float_rect: None,
            hints,
            home: None,
            weight: 1.0,
            minimized: None,
        }
    }

    /// Whether the tiling takes it into account.
    pub fn is_tiled(&self) -> bool {
        !self.floating && !self.fullscreen && !self.maximized && !self.is_minimized()
    }

    /// Whether it is minimized (hidden, out of the tiling).
    pub fn is_minimized(&self) -> bool {
        self.minimized.is_some()
    }

    /// Whether it is fullscreen and shown (a minimized fullscreen window keeps the state for
    /// when it comes back, but hides nothing).
    pub fn shows_fullscreen(&self) -> bool {
        self.fullscreen && !self.is_minimized()
    }
}

/// A workspace: windows in tiling order (floating ones in stacking order, bottom first).
#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    /// Its name.
    pub id: WorkspaceId,
    /// Its windows.
    pub windows: Vec<WindowEntry>,
    /// The window that has (or gets, when the workspace is shown) keyboard focus: never a
    /// minimized one; `None` when every window is minimized.
    pub focus: Option<WindowId>,
    /// The master column's share of the width on this workspace once a `resize ... width`
    /// changed it (0.1–0.9); `None` follows the config's `master_ratio`.
    pub master_ratio: Option<f64>,
}

impl Workspace {
    /// An empty workspace.
    pub fn new(id: WorkspaceId) -> Self {
        Self {
            id,
            windows: Vec::new(),
            focus: None,
            master_ratio: None,
        }
    }

    /// The entry of `id`.
    pub fn get(&self, id: WindowId) -> Option<&WindowEntry> {
        self.windows.iter().find(|w| w.id == id)
    }

    /// The entry of `id`, mutably.
    pub fn get_mut(&mut self, id: WindowId) -> Option<&mut WindowEntry> {
        self.windows.iter_mut().find(|w| w.id == id)
    }

    /// The shown fullscreen window, if any (at most one: making another fullscreen ends it).
    pub fn fullscreen(&self) -> Option<WindowId> {
        self.windows
            .iter()
            .find(|w| w.shows_fullscreen())
            .map(|w| w.id)
    }

    /// Takes `id` out; fixes focus (see [`refocus_from`](Self::refocus_from)).
    pub fn take(&mut self, id: WindowId) -> Option<WindowEntry> {
        let index = self.windows.iter().position(|w| w.id == id)?;
        let entry = self.windows.remove(index);
        self.refocus_from(id, index);
        Some(entry)
    }

    /// Hides `id` (minimize); focus moves on as if it had closed. `stamp` orders minimized
    /// windows for [`last_minimized`](Self::last_minimized).
    pub fn minimize(&mut self, id: WindowId, stamp: u64) {
        let Some(index) = self.windows.iter().position(|w| w.id == id) else {
            return;
        };
        if self.windows[index].is_minimized() {
            return;
        }
        self.windows[index].minimized = Some(stamp);
        self.refocus_from(id, index);
    }

    /// The window minimized last, if any.
    pub fn last_minimized(&self) -> Option<WindowId> {
        self.windows
            .iter()
            .filter_map(|w| w.minimized.map(|at| (at, w.id)))
            .max()
            .map(|(_, id)| id)
    }

    /// Fixes focus after window `gone` (at `index`) closed or was minimized: to the shown
    /// fullscreen window, else (when `gone` had focus) the nearest shown window before
    /// `index`, else the last shown one, else nobody.
    fn refocus_from(&mut self, gone: WindowId, index: usize) {
        if let Some(fullscreen) = self.fullscreen() {
            self.focus = Some(fullscreen);
        } else if self.focus == Some(gone) {
            let shown = |w: &&WindowEntry| !w.is_minimized() && w.id != gone;
            let before = self.windows[..index.min(self.windows.len())]
                .iter()
                .rev()
                .find(shown);
            self.focus = before
                .or_else(|| self.windows.iter().rev().find(shown))
                .map(|w| w.id);
        }
    }

    /// Adds `entry` after the focused window (at the end when nothing has focus) and
    /// focuses it. A window that appears ends the fullscreen of another (focus must be on
    /// what is shown).
    pub fn insert_focused(&mut self, entry: WindowEntry) {
        let id = entry.id;
        let at = self
            .focus
            .and_then(|f| self.windows.iter().position(|w| w.id == f))
            .map_or(self.windows.len(), |i| i + 1);
        self.windows.insert(at, entry);
        self.focus_window(id);
    }

    /// Adds `entry` at the end without taking focus from a window that has it (a window
    /// coming back with its output, or merged from another workspace).
    pub fn adopt(&mut self, entry: WindowEntry) {
        self.windows.push(entry);
        self.normalize();
    }

    /// Restores the workspace rules after windows were added wholesale: focus is one of the
    /// shown (not minimized) windows when there are any, and only the focused window may
    /// stay fullscreen among them.
    pub fn normalize(&mut self) {
        let focusable = |ws: &Self, f: WindowId| ws.get(f).is_some_and(|w| !w.is_minimized());
        if self.focus.is_none_or(|f| !focusable(self, f)) {
            self.focus = self
                .windows
                .iter()
                .rev()
                .find(|w| !w.is_minimized())
                .map(|w| w.id);
        }
        let focus = self.focus;
        for w in &mut self.windows {
            if Some(w.id) != focus && !w.is_minimized() {
                w.fullscreen = false;
            }
        }
    }

    /// Focuses `id` (and raises it when floating), bringing it back when minimized.
    /// Focusing another window ends the fullscreen of the shown fullscreen one.
    pub fn focus_window(&mut self, id: WindowId) {
        let Some(index) = self.windows.iter().position(|w| w.id == id) else {
            return;
        };
        for w in &mut self.windows {
            if w.id != id && !w.is_minimized() {
                w.fullscreen = false;
            }
        }
        self.windows[index].minimized = None;
        if self.windows[index].floating {
            let entry = self.windows.remove(index);
            self.windows.push(entry);
        }
        self.focus = Some(id);
    }
}
