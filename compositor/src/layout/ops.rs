//! What changes the layout: windows opening and closing, focus, workspaces, outputs coming
//! and going. Every operation keeps [`Layout::verify_invariants`] true and ignores requests
//! that make no sense (an unknown window, a direction with nothing there) instead of failing:
//! these come from key presses and clients, and doing nothing is the right answer to both.

use super::{
    geometry::{Rect, Size},
    Direction, Layout, OutputState, PlacementKind, WindowEntry, WindowHints, WindowId, Workspace,
    WorkspaceId,
};

/// How far a floating window moves per "move" action without an amount.
pub const FLOAT_STEP: i32 = 64;

/// How far each new floating window is offset from the previous one when it would cover it.
const CASCADE_STEP: i32 = 32;

impl Layout {
    // ---- outputs ----

    /// Adds output `name` covering `area`. The first output takes the parked workspaces
    /// (windows that had no output); windows whose home is `name` come back to it.
    pub fn add_output(&mut self, name: &str, area: Rect) {
        if self.outputs.iter().any(|o| o.name == name) {
            self.set_output_area(name, area);
            return;
        }
        let mut output = OutputState::new(name, area);
        for parked in std::mem::take(&mut self.parked) {
            let index = output.ensure_workspace(&parked.id);
            merge_into(&mut output.workspaces[index], parked);
        }
        self.outputs.push(output);
        let target = self.outputs.len() - 1;
        // Windows that lived here before the output was unplugged.
        let mut returning: Vec<(WorkspaceId, WindowEntry)> = Vec::new();
        for (oi, output) in self.outputs.iter_mut().enumerate() {
            for ws in &mut output.workspaces {
                let ids: Vec<WindowId> = ws
                    .windows
                    .iter()
                    .filter(|w| w.home.as_deref() == Some(name))
                    .map(|w| w.id)
                    .collect();
                for id in ids {
                    if let Some(mut entry) = ws.take(id) {
                        entry.home = None;
                        if oi == target {
                            ws.adopt(entry);
                        } else {
                            returning.push((ws.id.clone(), entry));
                        }
                    }
                }
            }
            output.drop_empty_extras();
        }
        let output = &mut self.outputs[target];
        for (ws_id, entry) in returning {
            let index = output.ensure_workspace(&ws_id);
            output.workspaces[index].adopt(entry);
        }
        if self.outputs.len() == 1 {
            self.active_output = 0;
        }
    }

    /// Output `name` now covers `area` (mode, scale or position changed).
    pub fn set_output_area(&mut self, name: &str, area: Rect) {
        if let Some(output) = self.outputs.iter_mut().find(|o| o.name == name) {
            output.area = area;
            output.working = area;
        }
    }

    /// The part of output `name` that windows tile in (its area minus the exclusive zones
    /// of panels). Kept inside the output's area; an empty rectangle means the whole area
    /// (panels asked for more than there is).
    pub fn set_working_area(&mut self, name: &str, working: Rect) {
        if let Some(output) = self.outputs.iter_mut().find(|o| o.name == name) {
            output.working = output
                .area
                .intersection(working)
                .filter(|r| r.w > 0 && r.h > 0)
                .unwrap_or(output.area);
        }
    }

    /// Removes output `name`: its windows go to the same-named workspaces of the first other
    /// output (remembering `name` as their home), or are parked when it was the last one.
    pub fn remove_output(&mut self, name: &str) {
        let Some(index) = self.outputs.iter().position(|o| o.name == name) else {
            return;
        };
        let removed = self.outputs.remove(index);
        if self.active_output > index || self.active_output >= self.outputs.len() {
            self.active_output = self.active_output.saturating_sub(1);
        }
        let active_id = removed.active_workspace().map(|w| w.id.clone());
        for mut ws in removed.workspaces {
            for w in &mut ws.windows {
                w.home.get_or_insert_with(|| name.to_owned());
            }
            match self.outputs.first_mut() {
                Some(target) => {
                    if ws.windows.is_empty() {
                        continue;
                    }
                    let index = target.ensure_workspace(&ws.id);
                    merge_into(&mut target.workspaces[index], ws);
                }
                None => {
                    if !ws.windows.is_empty() || Some(&ws.id) == active_id.as_ref() {
                        self.parked.push(ws);
                    }
                }
            }
        }
        for output in &mut self.outputs {
            output.drop_empty_extras();
        }
    }

    /// Makes output `name` the active one (the pointer moved there, or a window on it got
    /// focus).
    pub fn focus_output(&mut self, name: &str) {
        if let Some(index) = self.outputs.iter().position(|o| o.name == name) {
            self.active_output = index;
        }
    }

    // ---- windows ----

    /// Opens window `id` on the active output's shown workspace, after the focused window,
    /// and focuses it. Dialogs and (with `new_windows_float`) every window float, centred and
    /// cascading. Without outputs it waits parked. Known ids are ignored.
    pub fn add_window(&mut self, id: WindowId, hints: WindowHints) {
        if self.contains(id) {
            return;
        }
        let mut entry = WindowEntry::new(id, hints, self.config.new_windows_float);
        let Some(output) = self.outputs.get_mut(self.active_output) else {
            if self.parked.is_empty() {
                self.parked.push(Workspace::new(WorkspaceId::Number(1)));
            }
            self.parked[0].insert_focused(entry);
            return;
        };
        if entry.floating {
            entry.float_rect = Some(cascade(output, hints.size));
        }
        if let Some(ws) = output.workspaces.get_mut(output.active) {
            ws.insert_focused(entry);
        }
    }

    /// Closes window `id`; focus goes to its neighbour.
    pub fn remove_window(&mut self, id: WindowId) {
        for ws in self.workspaces_mut() {
            if ws.take(id).is_some() {
                break;
            }
        }
        for output in &mut self.outputs {
            output.drop_empty_extras();
        }
    }

    /// Updates what the client said about `id` (size, limits, parent). A window that becomes
    /// a dialog starts floating.
    pub fn set_hints(&mut self, id: WindowId, hints: WindowHints) {
        if let Some(entry) = self.entry_mut(id) {
            if hints.is_dialog() && !entry.hints.is_dialog() {
                entry.floating = true;
            }
            entry.hints = hints;
        }
    }

    /// Focuses `id`, showing its workspace and making its output active (a click, an
    /// activation request).
    pub fn focus_window(&mut self, id: WindowId) {
        let Some((oi, wi)) = self.locate(id) else {
            return;
        };
        self.active_output = oi;
        let output = &mut self.outputs[oi];
        output.active = wi;
        output.workspaces[wi].focus_window(id);
        output.drop_empty_extras();
    }

    /// Focuses the nearest shown window in `direction` from the focused one, or the next
    /// output that way when there is none.
    pub fn focus_direction(&mut self, direction: Direction) {
        match self.neighbour(direction) {
            Some(id) => self.focus_window(id),
            None => self.focus_output_direction(direction),
        }
    }

    /// Moves the focused window in `direction`: a tiled one swaps places with its neighbour
    /// there (or goes to the next output that way), a floating one moves by a step.
    pub fn move_direction(&mut self, direction: Direction) {
        self.move_direction_by(direction, FLOAT_STEP);
    }

    /// [`move_direction`](Self::move_direction) with a floating window moving by `px`
    /// pixels (it stays inside the working area).
    pub fn move_direction_by(&mut self, direction: Direction, px: i32) {
        let Some(focused) = self.focused() else {
            return;
        };
        let floating = self.entry_mut(focused).is_some_and(|e| !e.is_tiled());
        if floating {
            let (dx, dy) = step(direction, px.max(0));
            let Some(output) = self.outputs.get_mut(self.active_output) else {
                return;
            };
            let working = output.working;
            let Some(ws) = output.workspaces.get_mut(output.active) else {
                return;
            };
            if let Some(entry) = ws.get_mut(focused) {
                if entry.floating && !entry.fullscreen && !entry.maximized {
                    let r = entry.float_rect.unwrap_or_default();
                    let moved = Rect::new(
                        r.x.saturating_add(working.x).saturating_add(dx),
                        r.y.saturating_add(working.y).saturating_add(dy),
                        r.w,
                        r.h,
                    );
                    let kept = working.clamp_inside(moved);
                    entry.float_rect = Some(Rect::new(
                        kept.x - working.x,
                        kept.y - working.y,
                        kept.w,
                        kept.h,
                    ));
                }
            }
            return;
        }
        match self.neighbour(direction) {
            Some(other) if self.entry_is_tiled(other) => {
                let Some(ws) = self.active_workspace_mut() else {
                    return;
                };
                let a = ws.windows.iter().position(|w| w.id == focused);
                let b = ws.windows.iter().position(|w| w.id == other);
                if let (Some(a), Some(b)) = (a, b) {
                    ws.windows.swap(a, b);
                }
            }
            _ => {
                if let Some(target) = self.output_towards(direction) {
                    let name = self.outputs[target].name.clone();
                    self.move_window_to_output(focused, &name);
                }
            }
        }
    }

    /// Shows workspace `id` on the active output (created when missing).
    pub fn switch_workspace(&mut self, id: &WorkspaceId) {
        let Some(output) = self.outputs.get_mut(self.active_output) else {
            return;
        };
        output.active = output.ensure_workspace(id);
        output.drop_empty_extras();
    }

    /// Moves the focused window to workspace `id` of the active output; focus stays on the
    /// shown workspace.
    pub fn move_to_workspace(&mut self, id: WorkspaceId) {
        let Some(focused) = self.focused() else {
            return;
        };
        let Some(output) = self.outputs.get_mut(self.active_output) else {
            return;
        };
        let target = output.ensure_workspace(&id);
        if target == output.active {
            return;
        }
        let Some(mut entry) = output.workspaces[output.active].take(focused) else {
            return;
        };
        entry.fullscreen = false;
        output.workspaces[target].insert_focused(entry);
        output.drop_empty_extras();
    }

    /// Moves the shown workspace's windows of the active output to output `name`'s workspace
    /// of the same name, shows it there and makes that output active.
    pub fn move_workspace_to_output(&mut self, name: &str) {
        let Some(target) = self.outputs.iter().position(|o| o.name == name) else {
            return;
        };
        let source = self.active_output;
        if target == source || source >= self.outputs.len() {
            return;
        }
        let output = &mut self.outputs[source];
        let Some(ws) = output.workspaces.get_mut(output.active) else {
            return;
        };
        let moved = Workspace {
            id: ws.id.clone(),
            windows: std::mem::take(&mut ws.windows),
            focus: ws.focus.take(),
            master_ratio: ws.master_ratio,
        };
        output.drop_empty_extras();
        let output = &mut self.outputs[target];
        let index = output.ensure_workspace(&moved.id);
        merge_into(&mut output.workspaces[index], moved);
        output.active = index;
        output.drop_empty_extras();
        self.active_output = target;
    }

    /// Floats the focused window, or tiles it again.
    pub fn toggle_floating(&mut self) {
        let Some(focused) = self.focused() else {
            return;
        };
        let Some(output) = self.outputs.get_mut(self.active_output) else {
            return;
        };
        let working = output.working;
        let Some(ws) = output.workspaces.get_mut(output.active) else {
            return;
        };
        let Some(entry) = ws.get_mut(focused) else {
            return;
        };
        entry.floating = !entry.floating;
        if entry.floating && entry.float_rect.is_none() {
            let size = entry.hints.size.fit_within(working.size());
            let r = Rect::new(0, 0, working.w, working.h).centred(size);
            entry.float_rect = Some(r);
        }
        ws.focus_window(focused);
    }

    /// Sets or ends fullscreen for `id`; `None` toggles it.
    pub fn set_fullscreen(&mut self, id: WindowId, on: Option<bool>) {
        let Some((oi, wi)) = self.locate(id) else {
            return;
        };
        let ws = &mut self.outputs[oi].workspaces[wi];
        let Some(entry) = ws.get_mut(id) else {
            return;
        };
        let on = on.unwrap_or(!entry.fullscreen);
        entry.fullscreen = on;
        if on {
            // Ends the fullscreen of any other window and gives this one focus.
            ws.focus_window(id);
        }
    }

    /// Sets or ends maximize for `id`; `None` toggles it. Maximizing a minimized window
    /// brings it back (and focuses it).
    pub fn set_maximized(&mut self, id: WindowId, on: Option<bool>) {
        let Some(entry) = self.entry_mut(id) else {
            return;
        };
        entry.maximized = on.unwrap_or(!entry.maximized);
        if entry.maximized && entry.is_minimized() {
            self.focus_window(id);
        }
    }

    /// Puts floating window `id` at `rect` (global coordinates; an interactive move or
    /// resize, or a test placing it). Tiled windows are left alone.
    pub fn set_floating_rect(&mut self, id: WindowId, rect: Rect) {
        let Some((oi, wi)) = self.locate(id) else {
            return;
        };
        let output = &mut self.outputs[oi];
        let working = output.working;
        if let Some(entry) = output.workspaces[wi].get_mut(id) {
            if entry.floating {
                entry.float_rect = Some(Rect::new(
                    rect.x.saturating_sub(working.x),
                    rect.y.saturating_sub(working.y),
                    rect.w,
                    rect.h,
                ));
            }
        }
    }

    /// Whether output `output` shows a fullscreen window (on its shown workspace).
    pub fn shows_fullscreen(&self, output: &str) -> bool {
        self.outputs
            .iter()
            .find(|o| o.name == output)
            .and_then(|o| o.active_workspace())
            .is_some_and(|ws| ws.fullscreen().is_some())
    }

    /// The current placement kind of `id` (what an interactive move may do with it); for a
    /// minimized window, the kind it comes back as.
    pub fn kind_of(&self, id: WindowId) -> Option<PlacementKind> {
        let (_, _, e) = self.find(id)?;
        Some(super::kind_of_entry(e))
    }

    /// Whether window `id` is minimized.
    pub fn is_minimized(&self, id: WindowId) -> bool {
        self.find(id).is_some_and(|(_, _, e)| e.is_minimized())
    }

    /// Minimizes window `id` (`Some(true)`), brings it back and focuses it (`Some(false)`,
    /// like [`focus_window`](Self::focus_window)), or toggles (`None`). A minimized window
    /// leaves the tiling and is not shown; focus moves on as if it had closed.
    pub fn set_minimized(&mut self, id: WindowId, on: Option<bool>) {
        let Some(minimized) = self.find(id).map(|(_, _, e)| e.is_minimized()) else {
            return;
        };
        if !on.unwrap_or(!minimized) {
            if minimized {
                self.focus_window(id);
            }
            return;
        }
        self.minimize_count += 1;
        let stamp = self.minimize_count;
        if let Some(ws) = self.workspaces_mut().find(|ws| ws.get(id).is_some()) {
            ws.minimize(id, stamp);
        }
    }

    /// Brings back the window minimized last on the shown workspace of the active output
    /// and focuses it; `None` when it has no minimized window.
    pub fn unminimize_last(&mut self) -> Option<WindowId> {
        let id = self.active_workspace()?.last_minimized()?;
        self.focus_window(id);
        Some(id)
    }

    // ---- helpers ----

    fn workspaces_mut(&mut self) -> impl Iterator<Item = &mut Workspace> {
        self.outputs
            .iter_mut()
            .flat_map(|o| o.workspaces.iter_mut())
            .chain(self.parked.iter_mut())
    }

    pub(super) fn entry_mut(&mut self, id: WindowId) -> Option<&mut WindowEntry> {
        self.workspaces_mut().find_map(|ws| ws.get_mut(id))
    }

    fn entry_is_tiled(&self, id: WindowId) -> bool {
        self.find(id).is_some_and(|(_, _, e)| e.is_tiled())
    }

    /// The (output, workspace) indices of window `id` (not parked ones).
    fn locate(&self, id: WindowId) -> Option<(usize, usize)> {
        self.outputs.iter().enumerate().find_map(|(oi, o)| {
            o.workspaces
                .iter()
                .position(|ws| ws.get(id).is_some())
                .map(|wi| (oi, wi))
        })
    }

    pub(super) fn active_workspace_mut(&mut self) -> Option<&mut Workspace> {
        let output = self.outputs.get_mut(self.active_output)?;
        output.workspaces.get_mut(output.active)
    }

    /// The shown window nearest the focused one in `direction`, by frame centres: distance
    /// along the direction plus twice the sideways distance, so a window straight across
    /// wins over one diagonally closer.
    fn neighbour(&self, direction: Direction) -> Option<WindowId> {
        let focused = self.focused()?;
        let output = self.active_output()?.name.clone();
        let placements: Vec<_> = self
            .arrange()
            .into_iter()
            .filter(|p| p.visible && p.output == output)
            .collect();
        let from = placements.iter().find(|p| p.id == focused)?.frame.centre();
        placements
            .iter()
            .filter(|p| p.id != focused)
            .filter_map(|p| {
                let (x, y) = p.frame.centre();
                let (ahead, side) = split(direction, x - from.0, y - from.1);
                (ahead > 0).then(|| (i64::from(ahead) + 2 * i64::from(side.abs()), p.id))
            })
            .min()
            .map(|(_, id)| id)
    }

    /// The output nearest the active one in `direction`.
    fn output_towards(&self, direction: Direction) -> Option<usize> {
        let from = self.active_output()?.area.centre();
        self.outputs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.active_output)
            .filter_map(|(i, o)| {
                let (x, y) = o.area.centre();
                let (ahead, side) = split(direction, x - from.0, y - from.1);
                (ahead > 0).then(|| (i64::from(ahead) + 2 * i64::from(side.abs()), i))
            })
            .min()
            .map(|(_, i)| i)
    }

    fn focus_output_direction(&mut self, direction: Direction) {
        if let Some(index) = self.output_towards(direction) {
            self.active_output = index;
        }
    }

    /// Moves `id` to output `name`'s shown workspace and focuses it there.
    fn move_window_to_output(&mut self, id: WindowId, name: &str) {
        let Some(target) = self.outputs.iter().position(|o| o.name == name) else {
            return;
        };
        let Some((oi, wi)) = self.locate(id) else {
            return;
        };
        let Some(mut entry) = self.outputs[oi].workspaces[wi].take(id) else {
            return;
        };
        entry.fullscreen = false;
        entry.float_rect = None;
        let output = &mut self.outputs[target];
        if entry.floating {
            entry.float_rect = Some(cascade(output, entry.hints.size));
        }
        let active = output.active;
        output.workspaces[active].insert_focused(entry);
        self.active_output = target;
    }
}

/// (distance ahead, distance sideways) of a vector, looking towards `direction`.
fn split(direction: Direction, dx: i32, dy: i32) -> (i32, i32) {
    match direction {
        Direction::Left => (-dx, dy),
        Direction::Right => (dx, dy),
        Direction::Up => (-dy, dx),
        Direction::Down => (dy, dx),
    }
}

/// A step of `by` pixels towards `direction`.
fn step(direction: Direction, by: i32) -> (i32, i32) {
    match direction {
        Direction::Left => (-by, 0),
        Direction::Right => (by, 0),
        Direction::Up => (0, -by),
        Direction::Down => (0, by),
    }
}

/// Adds `from`'s windows to `into` (keeping `into`'s focus when it has one).
fn merge_into(into: &mut Workspace, from: Workspace) {
    if into.focus.is_none() {
        into.focus = from.focus;
    }
    if into.windows.is_empty() {
        into.master_ratio = into.master_ratio.or(from.master_ratio);
    }
    into.windows.extend(from.windows);
    into.normalize();
}

/// Where a new floating window of `size` goes on `output`, relative to its working area:
/// centred, or cascading down-right from the previous one while that stays on the output.
fn cascade(output: &mut OutputState, size: Size) -> Rect {
    let area = output.working;
    let size = size.fit_within(area.size());
    let centred = Rect::new(0, 0, area.w, area.h).centred(size);
    let has_floating = output
        .active_workspace()
        .is_some_and(|ws| ws.windows.iter().any(|w| w.floating));
    let candidate = match output.cascade {
        Some((x, y)) if has_floating => Rect::new(x, y, size.w, size.h),
        _ => centred,
    };
    let fits = candidate.x >= 0
        && candidate.y >= 0
        && candidate.right() <= area.w
        && candidate.bottom() <= area.h;
    let rect = if fits { candidate } else { centred };
    output.cascade = Some((rect.x + CASCADE_STEP, rect.y + CASCADE_STEP));
    rect
}
