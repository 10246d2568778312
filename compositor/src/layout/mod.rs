//! The desktop layout: outputs, their workspaces, and where each window goes.
//!
//! # Why plain data
//!
//! Window management is a state machine with many corners (a window closes while
//! fullscreen, an output is unplugged while its workspace has focus, a dialog opens on a
//! hidden workspace). Keeping it free of smithay types makes every corner testable by
//! hand and by random operation sequences with [`Layout::verify_invariants`] after each step
//! (`tests.rs`), the approach niri's `src/layout/` takes. `shell.rs` is the only bridge: it
//! turns protocol events into calls here and applies [`Layout::arrange`]'s placements to
//! smithay's `Space` and to the toplevels' configures.
//!
//! # The model
//!
//! - Every output has workspaces 1–10 (more numbers and named ones appear on demand and go
//!   away when empty and hidden); one of them is shown. Workspaces belong to their output.
//! - A workspace holds windows in order. Tiled ones are laid out master–stack (`tiling.rs`
//!   has the picture; keyboard resizes change the workspace's master ratio and the stack
//!   windows' weights, `resize.rs`); floating ones (dialogs: transients and fixed-size windows; any window
//!   on request; every window when `new_windows_float` is set) sit above the tiles where
//!   they were put, kept inside the output. A maximized window covers the working area; a
//!   fullscreen one covers the whole output and is the only one shown on its workspace. A
//!   minimized window stays on its workspace, out of the tiling and not shown, keeping its
//!   other states; focusing it (activation, a taskbar) brings it back.
//! - Focus: each workspace remembers its focused window; the focused window of the layout is
//!   the one of the active output's shown workspace.
//! - When an output is unplugged its windows move to the same-named workspaces of the first
//!   remaining output and remember where they came from; they go back when it returns. With
//!   no output left, the workspaces wait (parked) for the next one.
//!
//! # Use
//!
//! ```
//! use lockstep::layout::{Layout, LayoutConfig, Rect, WindowHints, WindowId, WorkspaceId};
//!
//! let mut layout = Layout::new(LayoutConfig::default());
//! layout.add_output("HEADLESS-1", Rect::new(0, 0, 1280, 720));
//! layout.add_window(WindowId(1), WindowHints::default());
//! layout.add_window(WindowId(2), WindowHints::default());
//! let placed = layout.arrange();
//! assert!(placed.iter().all(|p| p.visible));
//! assert!(!placed[0].frame.overlaps(placed[1].frame));
//! layout.move_to_workspace(WorkspaceId::Number(2));
//! assert_eq!(layout.arrange().iter().filter(|p| p.visible).count(), 1);
//! layout.verify_invariants().unwrap();
//! ```

mod geometry;
mod ops;
mod resize;
#[cfg(test)]
mod tests;
mod tiling;
mod workspace;

pub use geometry::{Rect, Size};
pub use ops::FLOAT_STEP;
pub use resize::{ResizeAxis, ResizeOutcome, ResizeUnit, MASTER_RATIO_RANGE};
pub use tiling::{master_stack, master_stack_weighted};
pub use workspace::{WindowEntry, WindowHints, WindowId, Workspace, WorkspaceId};

/// How many numbered workspaces every output has.
pub const NUMBERED_WORKSPACES: u32 = 10;

/// The layout settings from the config's `[layout]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct LayoutConfig {
    /// Pixels between tiles and around them.
    pub gaps: i32,
    /// Width of the border drawn around each window (inside its tile).
    pub border_width: i32,
    /// The master's share of the width, 0.1–0.9.
    pub master_ratio: f64,
    /// New windows float (placed centred, then cascading) instead of tiling.
    pub new_windows_float: bool,
}

impl Default for LayoutConfig {
    fn default() -> Self {
        Self {
            gaps: 8,
            border_width: 2,
            master_ratio: 0.5,
            new_windows_float: false,
        }
    }
}

/// A direction for focus and move actions: the config's, which the action grammar parses
/// (plain data, like everything here).
pub use lockstep_config::Direction;

/// How a window is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementKind {
    /// In a tile.
    Tiled,
    /// Free, above the tiles.
    Floating,
    /// Over the working area.
    Maximized,
    /// Over the whole output.
    Fullscreen,
}

/// Where one window goes, from [`Layout::arrange`].
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// Which window.
    pub id: WindowId,
    /// Its output's name.
    pub output: String,
    /// Its workspace.
    pub workspace: WorkspaceId,
    /// Whether it is shown (its workspace is the one shown on its output).
    pub visible: bool,
    /// How.
    pub kind: PlacementKind,
    /// The area it gets including its border.
    pub frame: Rect,
    /// The area of its contents: `frame` inside the border. Its size is what the toplevel is
    /// configured to (floating windows keep their own size).
    pub content: Rect,
    /// Whether it has keyboard focus.
    pub focused: bool,
    /// Whether it is minimized (then `visible` is false and `kind` is how it comes back).
    pub minimized: bool,
}

/// One output: its area and its workspaces.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputState {
    /// Connector-like name.
    pub name: String,
    /// The whole output in global logical coordinates.
    pub area: Rect,
    /// The part windows tile in (the output minus panels; equal to `area` until layer-shell
    /// surfaces reserve space).
    pub working: Rect,
    /// Its workspaces, numbered ones first in number order.
    pub workspaces: Vec<Workspace>,
    /// Index of the shown workspace.
    pub active: usize,
    /// Where the next floating window goes when it would land exactly on another's spot.
    cascade: Option<(i32, i32)>,
}

impl OutputState {
    fn new(name: &str, area: Rect) -> Self {
        Self {
            name: name.to_owned(),
            area,
            working: area,
            workspaces: (1..=NUMBERED_WORKSPACES)
                .map(|n| Workspace::new(WorkspaceId::Number(n)))
                .collect(),
            active: 0,
            cascade: None,
        }
    }

    /// The shown workspace.
    pub fn active_workspace(&self) -> Option<&Workspace> {
        self.workspaces.get(self.active)
    }

    fn workspace_index(&self, id: &WorkspaceId) -> Option<usize> {
        self.workspaces.iter().position(|w| &w.id == id)
    }

    /// The index of workspace `id`, created when missing.
    fn ensure_workspace(&mut self, id: &WorkspaceId) -> usize {
        if let Some(index) = self.workspace_index(id) {
            return index;
        }
        self.workspaces.push(Workspace::new(id.clone()));
        self.workspaces.len() - 1
    }

    /// Drops extra workspaces (named, or numbered past 10) that are empty and not shown.
    fn drop_empty_extras(&mut self) {
        let active = self.workspaces.get(self.active).map(|w| w.id.clone());
        self.workspaces.retain(|w| {
            let numbered =
                matches!(w.id, WorkspaceId::Number(n) if (1..=NUMBERED_WORKSPACES).contains(&n));
            numbered || !w.windows.is_empty() || Some(&w.id) == active.as_ref()
        });
        self.active = active.and_then(|id| self.workspace_index(&id)).unwrap_or(0);
    }
}

/// The whole layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    config: LayoutConfig,
    outputs: Vec<OutputState>,
    /// Index of the output that new windows and workspace actions go to.
    active_output: usize,
    /// Workspaces waiting for an output (all outputs are gone).
    parked: Vec<Workspace>,
    /// How many windows were minimized so far: orders them for `unminimize`.
    minimize_count: u64,
}

impl Layout {
    /// An empty layout with `config`.
    pub fn new(config: LayoutConfig) -> Self {
        Self {
            config,
            outputs: Vec::new(),
            active_output: 0,
            parked: Vec::new(),
            minimize_count: 0,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &LayoutConfig {
        &self.config
    }

    /// Replaces the settings (config reload); the next [`arrange`](Self::arrange) uses them.
    pub fn set_config(&mut self, config: LayoutConfig) {
        self.config = config;
    }

    /// The outputs, in the order they were added.
    pub fn outputs(&self) -> &[OutputState] {
        &self.outputs
    }

    /// The output that has focus.
    pub fn active_output(&self) -> Option<&OutputState> {
        self.outputs.get(self.active_output)
    }

    /// The shown workspace of the active output.
    pub fn active_workspace(&self) -> Option<&Workspace> {
        self.active_output()?.active_workspace()
    }

    /// The window with keyboard focus.
    pub fn focused(&self) -> Option<WindowId> {
        self.active_workspace()?.focus
    }

    /// Every workspace with its output's name (`None` for parked ones).
    pub fn workspaces(&self) -> impl Iterator<Item = (Option<&str>, &Workspace)> {
        self.outputs
            .iter()
            .flat_map(|o| o.workspaces.iter().map(|w| (Some(o.name.as_str()), w)))
            .chain(self.parked.iter().map(|w| (None, w)))
    }

    /// Where `id` is: its output (`None` when parked) and workspace.
    pub fn find(&self, id: WindowId) -> Option<(Option<&str>, &Workspace, &WindowEntry)> {
        self.workspaces()
            .find_map(|(o, ws)| ws.get(id).map(|e| (o, ws, e)))
    }

    /// Whether the layout knows window `id`.
    pub fn contains(&self, id: WindowId) -> bool {
        self.find(id).is_some()
    }

    /// Where every window goes, bottom of the stack first: per output, tiled windows, then
    /// maximized ones, then floating ones in stacking order, then the fullscreen one, then
    /// the minimized ones (`visible: false`); windows of workspaces not shown last, with
    /// `visible: false`.
    pub fn arrange(&self) -> Vec<Placement> {
        let mut shown = Vec::new();
        let mut hidden = Vec::new();
        let focused = self.focused();
        for output in &self.outputs {
            for (index, ws) in output.workspaces.iter().enumerate() {
                let visible = index == output.active;
                let placements = self.arrange_workspace(output, ws, visible, focused);
                if visible {
                    shown.extend(placements);
                } else {
                    hidden.extend(placements);
                }
            }
        }
        shown.extend(hidden);
        shown
    }

    fn arrange_workspace(
        &self,
        output: &OutputState,
        ws: &Workspace,
        visible: bool,
        focused: Option<WindowId>,
    ) -> Vec<Placement> {
        let border = self.config.border_width.max(0);
        let fullscreen = ws.fullscreen();
        let tiled: Vec<&WindowEntry> = ws.windows.iter().filter(|w| w.is_tiled()).collect();
        let weights: Vec<f64> = tiled.iter().map(|w| w.weight).collect();
        let tiles = master_stack_weighted(
            output.working,
            &weights,
            self.config.gaps,
            ws.master_ratio.unwrap_or(self.config.master_ratio),
        );
        let place = |entry: &WindowEntry, kind: PlacementKind, frame: Rect, content: Rect| {
            Placement {
                id: entry.id,
                output: output.name.clone(),
                workspace: ws.id.clone(),
                // A fullscreen window hides the rest of its workspace.
                visible: visible
                    && !entry.is_minimized()
                    && fullscreen.is_none_or(|f| f == entry.id),
                kind,
                frame,
                content,
                focused: focused == Some(entry.id),
                minimized: entry.is_minimized(),
            }
        };
        let shown = || ws.windows.iter().filter(|w| !w.is_minimized());
        let mut out = Vec::with_capacity(ws.windows.len());
        for (entry, tile) in tiled.iter().zip(tiles) {
            let inner = tile.shrink(border);
            // A window with a smaller max size sits centred in its tile.
            let content = inner.centred(
                entry
                    .hints
                    .within_max(inner.size())
                    .fit_within(inner.size()),
            );
            out.push(place(entry, PlacementKind::Tiled, tile, content));
        }
        for entry in shown().filter(|w| w.maximized && !w.fullscreen) {
            let content = output.working.shrink(border);
            out.push(place(
                entry,
                PlacementKind::Maximized,
                output.working,
                content,
            ));
        }
        let floating_frame = |entry: &WindowEntry| {
            let content = self.float_rect(output, entry);
            let frame = Rect::new(
                content.x - border,
                content.y - border,
                content.w + 2 * border,
                content.h + 2 * border,
            );
            (frame, content)
        };
        for entry in shown().filter(|w| w.floating && !w.maximized && !w.fullscreen) {
            let (frame, content) = floating_frame(entry);
            out.push(place(entry, PlacementKind::Floating, frame, content));
        }
        for entry in shown().filter(|w| w.fullscreen) {
            out.push(place(
                entry,
                PlacementKind::Fullscreen,
                output.area,
                output.area,
            ));
        }
        // Minimized windows are not shown; their rectangle is where a floating one would be
        // (nothing uses it), their kind the one they come back as.
        for entry in ws.windows.iter().filter(|w| w.is_minimized()) {
            let (frame, content) = floating_frame(entry);
            out.push(place(entry, kind_of_entry(entry), frame, content));
        }
        out
    }

    /// The global rectangle of floating `entry`'s contents on `output`: its stored place (moved
    /// back inside when it is entirely off the working area), no larger than the working area
    /// less the border.
    fn float_rect(&self, output: &OutputState, entry: &WindowEntry) -> Rect {
        // Room for the border around it, too.
        let working = output.working;
        let area = working.shrink(self.config.border_width.max(0));
        // The position is the layout's, the size the client's own.
        let size = entry.hints.size.fit_within(area.size());
        let rect = match entry.float_rect {
            Some(r) => Rect::new(
                working.x.saturating_add(r.x),
                working.y.saturating_add(r.y),
                size.w,
                size.h,
            ),
            None => working.centred(size),
        };
        // A window dragged partly off its output stays there; one entirely off it (its
        // output shrank or moved) comes back inside.
        if rect.overlaps(working) {
            rect
        } else {
            area.clamp_inside(rect)
        }
    }

    /// The size a new window with `hints` would get if it opened now: what its first
    /// configure should ask for. `None` means "choose your own size" (floating windows).
    pub fn new_window_size(&self, hints: WindowHints) -> Option<Size> {
        let mut probe = self.clone();
        let id = WindowId(u64::MAX);
        if probe.contains(id) {
            return None;
        }
        probe.add_window(id, hints);
        let placement = probe.arrange().into_iter().find(|p| p.id == id)?;
        (placement.kind != PlacementKind::Floating).then_some(placement.content.size())
    }

    /// Checks the layout's invariants; the error says which one broke.
    ///
    /// - every window is in exactly one workspace;
    /// - a workspace's focus is one of its windows and not a minimized one, and is set when
    ///   it has windows that are not minimized;
    /// - a shown (not minimized) fullscreen window has its workspace's focus, and there is at
    ///   most one;
    /// - minimized windows are neither shown nor tiled, nor have focus;
    /// - shown tiled windows lie inside the working area and do not overlap (while every tile
    ///   can have a pixel per side);
    /// - no placement is larger than its output, and floating ones are at least partly on it;
    /// - the focused window, when there is one, is on the active output's shown workspace;
    /// - indices (active output, shown workspace) are in range; numbered workspaces 1–10
    ///   exist on every output; parked workspaces exist only without outputs;
    /// - a workspace's own master ratio is within 0.1–0.9, and stack weights are positive.
    pub fn verify_invariants(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for (_, ws) in self.workspaces() {
            for w in &ws.windows {
                if !seen.insert(w.id) {
                    return Err(format!("window {} is in more than one workspace", w.id));
                }
                if !(w.weight.is_finite() && w.weight > 0.0) {
                    return Err(format!("window {} has weight {}", w.id, w.weight));
                }
            }
            let (lo, hi) = MASTER_RATIO_RANGE;
            if ws.master_ratio.is_some_and(|r| !(lo..=hi).contains(&r)) {
                return Err(format!(
                    "workspace {} has master ratio {:?}",
                    ws.id, ws.master_ratio
                ));
            }
            match ws.focus {
                Some(f) if ws.get(f).is_none() => {
                    return Err(format!(
                        "workspace {} focuses {f}, not one of its windows",
                        ws.id
                    ));
                }
                Some(f) if ws.get(f).is_some_and(WindowEntry::is_minimized) => {
                    return Err(format!("workspace {} focuses minimized {f}", ws.id));
                }
                None if ws.windows.iter().any(|w| !w.is_minimized()) => {
                    return Err(format!("workspace {} has windows but no focus", ws.id));
                }
                _ => {}
            }
            let fullscreen: Vec<_> = ws.windows.iter().filter(|w| w.shows_fullscreen()).collect();
            if fullscreen.len() > 1 {
                return Err(format!(
                    "workspace {} has {} fullscreen windows",
                    ws.id,
                    fullscreen.len()
                ));
            }
            if let Some(f) = fullscreen.first() {
                if ws.focus != Some(f.id) {
                    return Err(format!(
                        "workspace {}: fullscreen {} has no focus",
                        ws.id, f.id
                    ));
                }
            }
        }
        if !self.outputs.is_empty() && !self.parked.is_empty() {
            return Err("parked workspaces while an output exists".into());
        }
        if !self.outputs.is_empty() && self.active_output >= self.outputs.len() {
            return Err(format!("active output {} out of range", self.active_output));
        }
        for output in &self.outputs {
            if output.active >= output.workspaces.len() {
                return Err(format!("{}: shown workspace out of range", output.name));
            }
            for n in 1..=NUMBERED_WORKSPACES {
                if output.workspace_index(&WorkspaceId::Number(n)).is_none() {
                    return Err(format!("{}: workspace {n} is missing", output.name));
                }
            }
        }
        let placements = self.arrange();
        if placements.len()
            != seen.len() - self.parked.iter().map(|w| w.windows.len()).sum::<usize>()
        {
            return Err("arrange() does not place every window exactly once".into());
        }
        for p in &placements {
            let Some(output) = self.outputs.iter().find(|o| o.name == p.output) else {
                return Err(format!(
                    "window {} placed on unknown output {}",
                    p.id, p.output
                ));
            };
            if p.content.w > output.area.w
                || p.content.h > output.area.h
                || p.frame.w > output.area.w
                || p.frame.h > output.area.h
            {
                return Err(format!(
                    "window {} ({:?}) is larger than output {} ({:?})",
                    p.id, p.frame, output.name, output.area
                ));
            }
            if p.kind == PlacementKind::Floating && !p.content.overlaps(output.working) {
                return Err(format!(
                    "floating window {} {:?} is off its output",
                    p.id, p.content
                ));
            }
            if !p.content.size().is_positive() {
                return Err(format!("window {} has an empty size {:?}", p.id, p.content));
            }
            let minimized = self.find(p.id).is_some_and(|(_, _, e)| e.is_minimized());
            if p.minimized != minimized || (minimized && (p.visible || p.focused)) {
                return Err(format!(
                    "window {} (minimized: {minimized}) is placed {p:?}",
                    p.id
                ));
            }
        }
        for output in &self.outputs {
            let tiles: Vec<&Placement> = placements
                .iter()
                .filter(|p| p.output == output.name && p.visible && p.kind == PlacementKind::Tiled)
                .collect();
            let roomy = i32::try_from(tiles.len()).is_ok_and(|n| n <= output.working.h / 2);
            for (i, a) in tiles.iter().enumerate() {
                if !output.working.contains_rect(a.frame) {
                    return Err(format!(
                        "tiled window {} {:?} leaves the working area {:?}",
                        a.id, a.frame, output.working
                    ));
                }
                if !a.frame.contains_rect(a.content) {
                    return Err(format!(
                        "window {} content {:?} leaves its tile {:?}",
                        a.id, a.content, a.frame
                    ));
                }
                for b in &tiles[i + 1..] {
                    if roomy && a.frame.overlaps(b.frame) {
                        return Err(format!(
                            "tiled windows {} {:?} and {} {:?} overlap",
                            a.id, a.frame, b.id, b.frame
                        ));
                    }
                }
            }
        }
        if let Some(focused) = self.focused() {
            let Some(ws) = self.active_workspace() else {
                return Err("focus without an active workspace".into());
            };
            if ws.get(focused).is_none() {
                return Err(format!(
                    "focused window {focused} is not on the shown workspace"
                ));
            }
        }
        Ok(())
    }
}

/// How `entry` is shown, or shows when it comes back from minimized.
fn kind_of_entry(entry: &WindowEntry) -> PlacementKind {
    if entry.fullscreen {
        PlacementKind::Fullscreen
    } else if entry.maximized {
        PlacementKind::Maximized
    } else if entry.floating {
        PlacementKind::Floating
    } else {
        PlacementKind::Tiled
    }
}
