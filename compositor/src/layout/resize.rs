//! Keyboard resizing: `resize grow|shrink width|height [N [px|ppt]]` on the focused window.
//!
//! What a resize changes depends on how the window is shown, because the master–stack model
//! has only two knobs per workspace:
//!
//! - **floating**: its own size (the shell then configures the client to it); the top-left
//!   corner stays, and the size stays within the client's min/max and the working area;
//! - **tiled, width**: the workspace's master ratio. Growing the master widens the master
//!   column; growing a stack window widens the stack column (the ratio goes down). Alone on
//!   its workspace a window has no neighbour to take width from, and nothing changes;
//! - **tiled, height**: the stack windows' weights, the focused one's share of the column
//!   growing or shrinking and the others scaled to fill the rest. The master is alone in its
//!   column, and so is a single stack window: nothing changes for them;
//! - **maximized or fullscreen**: nothing (their size is the output's).
//!
//! Without a unit, floating windows change by pixels and tiled ones by percentage points
//! (sway's rule); a ppt is a hundredth of the working area's width or height.

use super::{Layout, Rect, Size, WindowId};
pub use lockstep_config::{ResizeAxis, ResizeUnit};

/// The master ratio's range (the config's `master_ratio` has the same).
pub const MASTER_RATIO_RANGE: (f64, f64) = (0.1, 0.9);

/// The smallest share of the stack column a resize leaves any one window with.
const MIN_STACK_SHARE: f64 = 0.05;

/// What a resize did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResizeOutcome {
    /// Nothing to resize (no focus, nothing to take room from, already at the limit).
    Unchanged,
    /// The master column is now this share of the width.
    MasterRatio(f64),
    /// The focused stack window now has this share of its column's height.
    StackShare(f64),
    /// Floating window `id` should now be `size`; the shell asks its client for it.
    Floating(WindowId, Size),
}

impl Layout {
    /// Grows (`delta > 0`) or shrinks the focused window's `axis` by `delta` in `unit` (`None`:
    /// px when floating, ppt when tiled). See the module docs for what that changes.
    pub fn resize_focused(
        &mut self,
        axis: ResizeAxis,
        delta: i32,
        unit: Option<ResizeUnit>,
    ) -> ResizeOutcome {
        let Some(focused) = self.focused() else {
            return ResizeOutcome::Unchanged;
        };
        let Some(output) = self.active_output() else {
            return ResizeOutcome::Unchanged;
        };
        let working = output.working;
        let border = self.config.border_width.max(0);
        let gaps = self.config.gaps.max(0);
        let default_ratio = self.config.master_ratio;
        let Some(ws) = self.active_workspace_mut() else {
            return ResizeOutcome::Unchanged;
        };
        let Some(entry) = ws.get(focused) else {
            return ResizeOutcome::Unchanged;
        };
        if entry.fullscreen || entry.maximized {
            return ResizeOutcome::Unchanged;
        }
        let along = match axis {
            ResizeAxis::Width => working.w,
            ResizeAxis::Height => working.h,
        };
        if entry.floating {
            let px = match unit.unwrap_or(ResizeUnit::Px) {
                ResizeUnit::Px => i64::from(delta),
                ResizeUnit::Ppt => i64::from(delta) * i64::from(along) / 100,
            };
            let hints = entry.hints;
            let current = hints.size;
            let room = working.shrink(border).size();
            let limit = |value: i32, min: i32, max: i32, room: i32| {
                // Not `clamp` on a range that may be empty (a 0×0 output).
                let room = room.max(1);
                let grown = (i64::from(value) + px).clamp(1, i64::from(room));
                let mut v = i32::try_from(grown).unwrap_or(room);
                if max > 0 {
                    v = v.min(max);
                }
                v.max(min.min(room)).max(1)
            };
            let size = match axis {
                ResizeAxis::Width => Size::new(
                    limit(current.w, hints.min.w, hints.max.w, room.w),
                    current.h.clamp(1, room.h.max(1)),
                ),
                ResizeAxis::Height => Size::new(
                    current.w.clamp(1, room.w.max(1)),
                    limit(current.h, hints.min.h, hints.max.h, room.h),
                ),
            };
            if size == current {
                return ResizeOutcome::Unchanged;
            }
            if let Some(entry) = ws.get_mut(focused) {
                entry.hints.size = size;
                if let Some(r) = entry.float_rect.as_mut() {
                    *r = Rect::new(r.x, r.y, size.w, size.h);
                }
            }
            return ResizeOutcome::Floating(focused, size);
        }
        // A tiled window: the fraction of the working area this resize is worth.
        let fraction = match unit.unwrap_or(ResizeUnit::Ppt) {
            ResizeUnit::Ppt => f64::from(delta) / 100.0,
            ResizeUnit::Px => f64::from(delta) / f64::from((along - 2 * gaps).max(1)),
        };
        let tiled: Vec<WindowId> = ws
            .windows
            .iter()
            .filter(|w| w.is_tiled())
            .map(|w| w.id)
            .collect();
        let Some(index) = tiled.iter().position(|id| *id == focused) else {
            return ResizeOutcome::Unchanged;
        };
        if tiled.len() < 2 {
            return ResizeOutcome::Unchanged;
        }
        match axis {
            ResizeAxis::Width => {
                let (lo, hi) = MASTER_RATIO_RANGE;
                let ratio = ws.master_ratio.unwrap_or(default_ratio);
                let ratio = if ratio.is_finite() { ratio } else { 0.5 };
                let signed = if index == 0 { fraction } else { -fraction };
                let new = (ratio + signed).clamp(lo, hi);
                if new == ratio {
                    return ResizeOutcome::Unchanged;
                }
                ws.master_ratio = Some(new);
                ResizeOutcome::MasterRatio(new)
            }
            ResizeAxis::Height => {
                let stack = &tiled[1..];
                if index == 0 || stack.len() < 2 {
                    return ResizeOutcome::Unchanged;
                }
                let weights: Vec<f64> = stack
                    .iter()
                    .map(|id| ws.get(*id).map_or(1.0, |e| e.weight))
                    .collect();
                let Some(shares) = reshare(&weights, index - 1, fraction) else {
                    return ResizeOutcome::Unchanged;
                };
                let n = shares.len() as f64;
                for (id, share) in stack.iter().zip(&shares) {
                    if let Some(e) = ws.get_mut(*id) {
                        // Weights sum to the stack's length: equal shares are all 1 again.
                        e.weight = share * n;
                    }
                }
                ResizeOutcome::StackShare(shares[index - 1])
            }
        }
    }
}

/// The stack's shares (summing to 1) after window `at` gains `by` of the column (loses, when
/// negative), the others scaled to fill the rest; `None` when nothing changes. No window ends
/// below [`MIN_STACK_SHARE`] (or an even split, with very many windows) through this resize.
fn reshare(weights: &[f64], at: usize, by: f64) -> Option<Vec<f64>> {
    let clean: Vec<f64> = weights
        .iter()
        .map(|w| if w.is_finite() && *w > 0.0 { *w } else { 1.0 })
        .collect();
    let sum: f64 = clean.iter().sum();
    let shares: Vec<f64> = clean.iter().map(|w| w / sum).collect();
    let n = shares.len() as f64;
    let floor = MIN_STACK_SHARE.min(0.5 / n);
    let old = *shares.get(at)?;
    let new = (old + by).clamp(floor, 1.0 - floor * (n - 1.0));
    if !new.is_finite() || (new - old).abs() < 1e-9 {
        return None;
    }
    let rest = 1.0 - old;
    let out = shares
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i == at {
                new
            } else if rest > 0.0 {
                s * (1.0 - new) / rest
            } else {
                (1.0 - new) / (n - 1.0)
            }
        })
        .map(|s| s.max(f64::MIN_POSITIVE))
        .collect();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{LayoutConfig, PlacementKind, WindowHints};

    fn layout(windows: u64) -> Layout {
        let mut l = Layout::new(LayoutConfig {
            gaps: 0,
            border_width: 0,
            ..Default::default()
        });
        l.add_output("A", Rect::new(0, 0, 1000, 800));
        for i in 1..=windows {
            l.add_window(
                WindowId(i),
                WindowHints {
                    size: Size::new(300, 200),
                    ..Default::default()
                },
            );
        }
        l
    }

    fn frame(l: &Layout, id: u64) -> Rect {
        l.arrange()
            .into_iter()
            .find(|p| p.id == WindowId(id))
            .unwrap()
            .frame
    }

    #[test]
    fn width_moves_the_master_edge_towards_the_other_column() {
        let mut l = layout(3);
        l.focus_window(WindowId(1));
        let out = l.resize_focused(ResizeAxis::Width, 10, None);
        assert_eq!(out, ResizeOutcome::MasterRatio(0.6));
        assert_eq!(frame(&l, 1).w, 600);
        // Growing a stack window's width narrows the master.
        l.focus_window(WindowId(3));
        l.resize_focused(ResizeAxis::Width, 100, Some(ResizeUnit::Px));
        assert_eq!(frame(&l, 1).w, 500);
        assert_eq!(frame(&l, 3).w, 500);
        // Clamped at 0.1–0.9.
        l.resize_focused(ResizeAxis::Width, 100, Some(ResizeUnit::Ppt));
        assert_eq!(frame(&l, 1).w, 100);
        assert_eq!(
            l.resize_focused(ResizeAxis::Width, 10, None),
            ResizeOutcome::Unchanged
        );
        // Per workspace: workspace 2 keeps the config's ratio.
        l.move_to_workspace(crate::layout::WorkspaceId::Number(2));
        l.switch_workspace(&crate::layout::WorkspaceId::Number(2));
        l.add_window(WindowId(9), WindowHints::default());
        assert_eq!(frame(&l, 3).w, 500);
        l.verify_invariants().unwrap();
    }

    #[test]
    fn height_changes_a_stack_windows_share() {
        let mut l = layout(4);
        // 2, 3, 4 stacked, 800 px high: 267, 267, 266. Window 3 gets 80 px (a tenth) more,
        // taken from the other two in proportion; the rounding pixels go to the first tiles.
        l.focus_window(WindowId(3));
        let out = l.resize_focused(ResizeAxis::Height, 80, Some(ResizeUnit::Px));
        assert!(matches!(out, ResizeOutcome::StackShare(s) if (s - 0.4333).abs() < 0.001));
        assert_eq!(frame(&l, 3).h, 347);
        assert_eq!(frame(&l, 2).h, 227);
        assert_eq!(frame(&l, 4).h, 226);
        // The master and a lone window have nothing to share height with.
        l.focus_window(WindowId(1));
        assert_eq!(
            l.resize_focused(ResizeAxis::Height, 10, None),
            ResizeOutcome::Unchanged
        );
        // Shrinking far stops at the minimum share.
        l.focus_window(WindowId(4));
        l.resize_focused(ResizeAxis::Height, -100, None);
        assert_eq!(frame(&l, 4).h, 40);
        l.verify_invariants().unwrap();
    }

    #[test]
    fn floating_windows_change_their_own_size_within_limits() {
        let mut l = layout(1);
        l.toggle_floating();
        assert_eq!(l.kind_of(WindowId(1)), Some(PlacementKind::Floating));
        let before = frame(&l, 1);
        let out = l.resize_focused(ResizeAxis::Width, 50, None);
        assert_eq!(
            out,
            ResizeOutcome::Floating(WindowId(1), Size::new(350, 200))
        );
        let after = frame(&l, 1);
        assert_eq!((after.x, after.y, after.w), (before.x, before.y, 350));
        // 10 ppt of 800 px.
        l.resize_focused(ResizeAxis::Height, -10, Some(ResizeUnit::Ppt));
        assert_eq!(frame(&l, 1).h, 120);
        // Never larger than the working area, never below 1 px or its min size.
        l.resize_focused(ResizeAxis::Width, 100_000, None);
        assert_eq!(frame(&l, 1).w, 1000);
        l.resize_focused(ResizeAxis::Height, -100_000, None);
        assert_eq!(frame(&l, 1).h, 1);
        l.verify_invariants().unwrap();
    }

    #[test]
    fn reshare_keeps_the_sum_and_the_floor() {
        let s = reshare(&[1.0, 1.0, 1.0, 1.0], 2, 0.9).unwrap();
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!((s[2] - 0.85).abs() < 1e-9, "{s:?}");
        assert_eq!(reshare(&[1.0, 1.0], 0, 0.0), None);
        let many = vec![1.0; 40];
        let s = reshare(&many, 0, -1.0).unwrap();
        assert!(s[0] > 0.0 && s[0] <= 1.0 / 40.0);
    }
}
