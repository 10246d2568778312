//! Layout tests: a few by hand, then random operation sequences with the invariants checked
//! after every step.
//!
//! The random tests use a small seeded generator (splitmix64) rather than a property-testing
//! crate: the operations are few and simple to generate, and a failing run prints its seed
//! and step so it can be replayed with `LOCKSTEP_LAYOUT_SEED=<seed>`.

use std::collections::BTreeSet;

use super::*;

fn area(w: i32, h: i32) -> Rect {
    Rect::new(0, 0, w, h)
}

fn hints(w: i32, h: i32) -> WindowHints {
    WindowHints {
        size: Size::new(w, h),
        ..Default::default()
    }
}

fn visible(layout: &Layout) -> Vec<Placement> {
    layout.arrange().into_iter().filter(|p| p.visible).collect()
}

#[test]
fn three_windows_tile_master_stack_without_overlap() {
    let mut l = Layout::new(LayoutConfig {
        gaps: 10,
        border_width: 0,
        ..Default::default()
    });
    l.add_output("A", area(1280, 720));
    for i in 1..=3 {
        l.add_window(WindowId(i), hints(100, 100));
    }
    let p = visible(&l);
    let frames: Vec<Rect> = p.iter().map(|p| p.frame).collect();
    assert_eq!(
        frames,
        vec![
            Rect::new(10, 10, 625, 700),
            Rect::new(645, 10, 625, 345),
            Rect::new(645, 365, 625, 345),
        ]
    );
    assert_eq!(l.focused(), Some(WindowId(3)));
    l.verify_invariants().unwrap();
}

#[test]
fn tiles_stay_in_the_working_area_a_panel_leaves() {
    let mut l = Layout::new(LayoutConfig {
        gaps: 0,
        border_width: 0,
        ..Default::default()
    });
    l.add_output("A", area(1280, 720));
    l.add_window(WindowId(1), hints(100, 100));
    l.add_window(WindowId(2), hints(100, 100));
    // A 30 px bar at the top.
    l.set_working_area("A", Rect::new(0, 30, 1280, 690));
    for p in visible(&l) {
        assert!(p.frame.y >= 30 && p.frame.bottom() <= 720, "{p:?}");
    }
    l.verify_invariants().unwrap();
    // A zone outside the output, or empty, leaves the whole output.
    l.set_working_area("A", Rect::new(5000, 0, 10, 10));
    assert_eq!(l.outputs()[0].working, area(1280, 720));
    l.set_working_area("A", Rect::new(0, 0, 1280, 0));
    assert_eq!(l.outputs()[0].working, area(1280, 720));
    // Part outside: clipped to the output.
    l.set_working_area("A", Rect::new(-10, 30, 2000, 690));
    assert_eq!(l.outputs()[0].working, Rect::new(0, 30, 1280, 690));
}

#[test]
fn borders_are_inside_the_tile() {
    let mut l = Layout::new(LayoutConfig {
        gaps: 0,
        border_width: 3,
        ..Default::default()
    });
    l.add_output("A", area(800, 600));
    l.add_window(WindowId(1), hints(10, 10));
    let p = &visible(&l)[0];
    assert_eq!(p.frame, Rect::new(0, 0, 800, 600));
    assert_eq!(p.content, Rect::new(3, 3, 794, 594));
}

#[test]
fn dialogs_float_centred_and_keep_their_size() {
    let mut l = Layout::new(LayoutConfig::default());
    l.add_output("A", area(1000, 800));
    l.add_window(WindowId(1), hints(10, 10));
    let dialog = WindowHints {
        has_parent: true,
        ..hints(200, 100)
    };
    l.add_window(WindowId(2), dialog);
    let p = visible(&l);
    let d = p.iter().find(|p| p.id == WindowId(2)).unwrap();
    assert_eq!(d.kind, PlacementKind::Floating);
    assert_eq!(d.content, Rect::new(400, 350, 200, 100));
    // The tiled one now has the whole area to itself.
    let t = p.iter().find(|p| p.id == WindowId(1)).unwrap();
    assert_eq!(t.frame, Rect::new(8, 8, 984, 784));
    // Fixed-size windows float too.
    let fixed = WindowHints {
        min: Size::new(300, 300),
        max: Size::new(300, 300),
        ..hints(300, 300)
    };
    assert!(fixed.is_dialog());
    assert_eq!(l.new_window_size(fixed), None);
    assert_eq!(l.new_window_size(hints(1, 1)), Some(Size::new(484, 780)));
}

#[test]
fn floating_mode_centres_then_cascades() {
    let mut l = Layout::new(LayoutConfig {
        new_windows_float: true,
        border_width: 0,
        ..Default::default()
    });
    l.add_output("A", area(1280, 720));
    l.add_window(WindowId(1), hints(100, 80));
    l.add_window(WindowId(2), hints(100, 80));
    let p = visible(&l);
    assert_eq!(p[0].content, Rect::new(590, 320, 100, 80));
    assert_eq!(p[1].content, Rect::new(622, 352, 100, 80));
}

#[test]
fn a_window_larger_than_the_output_is_made_to_fit() {
    let mut l = Layout::new(LayoutConfig {
        new_windows_float: true,
        ..Default::default()
    });
    l.add_output("A", area(1600, 900));
    l.add_window(WindowId(1), hints(1666, 881));
    let p = &visible(&l)[0];
    assert!(p.content.w <= 1600 && p.content.h <= 900, "{p:?}");
    assert!(area(1600, 900).contains_rect(p.content));
}

#[test]
fn workspaces_hide_and_show_windows() {
    let mut l = Layout::new(LayoutConfig::default());
    l.add_output("A", area(1280, 720));
    l.add_window(WindowId(1), hints(10, 10));
    l.add_window(WindowId(2), hints(10, 10));
    l.move_to_workspace(WorkspaceId::Number(2));
    assert_eq!(visible(&l).len(), 1);
    assert_eq!(l.focused(), Some(WindowId(1)));
    l.switch_workspace(&WorkspaceId::Number(2));
    let p = visible(&l);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].id, WindowId(2));
    assert_eq!(l.focused(), Some(WindowId(2)));
    // Named workspaces appear on demand and go when empty and hidden.
    l.switch_workspace(&WorkspaceId::parse("mail").unwrap());
    assert!(l.active_workspace().unwrap().windows.is_empty());
    l.switch_workspace(&WorkspaceId::Number(1));
    assert!(l
        .workspaces()
        .all(|(_, ws)| ws.id != WorkspaceId::Named("mail".into())));
    l.verify_invariants().unwrap();
}

#[test]
fn fullscreen_covers_the_output_and_hides_the_rest() {
    let mut l = Layout::new(LayoutConfig::default());
    l.add_output("A", Rect::new(100, 0, 1280, 720));
    l.add_window(WindowId(1), hints(10, 10));
    l.add_window(WindowId(2), hints(10, 10));
    l.set_fullscreen(WindowId(1), Some(true));
    assert_eq!(l.focused(), Some(WindowId(1)));
    let p = visible(&l);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].content, Rect::new(100, 0, 1280, 720));
    // Focusing the other ends fullscreen.
    l.focus_window(WindowId(2));
    assert_eq!(visible(&l).len(), 2);
    l.verify_invariants().unwrap();
}

#[test]
fn directional_focus_and_move() {
    let mut l = Layout::new(LayoutConfig::default());
    l.add_output("A", area(1280, 720));
    for i in 1..=3 {
        l.add_window(WindowId(i), hints(10, 10));
    }
    // Order: 1 master, 2 and 3 stacked; 3 focused (bottom right).
    l.focus_direction(Direction::Up);
    assert_eq!(l.focused(), Some(WindowId(2)));
    l.focus_direction(Direction::Left);
    assert_eq!(l.focused(), Some(WindowId(1)));
    l.focus_direction(Direction::Left);
    assert_eq!(l.focused(), Some(WindowId(1)), "nothing further left");
    // Moving the master right swaps it with the nearest stack window.
    l.move_direction(Direction::Right);
    let order: Vec<WindowId> = l
        .active_workspace()
        .unwrap()
        .windows
        .iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(order[0], WindowId(2));
    l.verify_invariants().unwrap();
}

#[test]
fn unplugged_output_windows_move_over_and_come_back() {
    let mut l = Layout::new(LayoutConfig::default());
    l.add_output("A", area(1280, 720));
    l.add_output("B", Rect::new(1280, 0, 1920, 1080));
    l.focus_output("B");
    l.switch_workspace(&WorkspaceId::Number(3));
    l.add_window(WindowId(7), hints(10, 10));
    l.remove_output("B");
    let (output, ws, _) = l.find(WindowId(7)).unwrap();
    assert_eq!((output, &ws.id), (Some("A"), &WorkspaceId::Number(3)));
    l.verify_invariants().unwrap();
    l.remove_output("A");
    assert_eq!(l.find(WindowId(7)).unwrap().0, None, "parked");
    l.verify_invariants().unwrap();
    l.add_output("A", area(1280, 720));
    l.add_output("B", Rect::new(1280, 0, 1920, 1080));
    let (output, ws, _) = l.find(WindowId(7)).unwrap();
    assert_eq!((output, &ws.id), (Some("B"), &WorkspaceId::Number(3)));
    l.verify_invariants().unwrap();
}

#[test]
fn minimized_windows_leave_the_tiling_and_come_back_focused() {
    let mut l = Layout::new(LayoutConfig {
        gaps: 0,
        border_width: 0,
        ..Default::default()
    });
    l.add_output("A", area(1000, 500));
    for i in 1..=3 {
        l.add_window(WindowId(i), hints(10, 10));
    }
    l.set_maximized(WindowId(2), Some(true));
    l.focus_window(WindowId(3));
    // Minimizing the focused window: it is hidden, focus goes to the one before it.
    l.set_minimized(WindowId(3), Some(true));
    assert!(l.is_minimized(WindowId(3)));
    assert_eq!(l.focused(), Some(WindowId(2)));
    let p = visible(&l);
    assert_eq!(
        p.iter().map(|p| p.id).collect::<Vec<_>>(),
        [1, 2].map(WindowId)
    );
    // The only tiled window left has the whole output.
    assert_eq!(p[0].frame, area(1000, 500));
    l.verify_invariants().unwrap();
    // A maximized window keeps its state while minimized.
    l.set_minimized(WindowId(2), Some(true));
    assert_eq!(l.kind_of(WindowId(2)), Some(PlacementKind::Maximized));
    assert_eq!(l.focused(), Some(WindowId(1)));
    l.set_minimized(WindowId(1), None);
    assert_eq!(l.focused(), None, "every window is minimized");
    assert!(visible(&l).is_empty());
    l.verify_invariants().unwrap();
    // `unminimize` brings the latest back first; focusing one brings it back too.
    assert_eq!(l.unminimize_last(), Some(WindowId(1)));
    assert_eq!(l.focused(), Some(WindowId(1)));
    l.focus_window(WindowId(3));
    assert!(!l.is_minimized(WindowId(3)));
    assert_eq!(l.focused(), Some(WindowId(3)));
    // Maximizing a minimized window brings it back as well.
    l.set_maximized(WindowId(2), Some(true));
    assert!(!l.is_minimized(WindowId(2)));
    assert_eq!(l.kind_of(WindowId(2)), Some(PlacementKind::Maximized));
    assert_eq!(l.unminimize_last(), None);
    l.verify_invariants().unwrap();
}

#[test]
fn a_minimized_fullscreen_window_hides_nothing_until_it_returns() {
    let mut l = Layout::new(LayoutConfig::default());
    l.add_output("A", area(1280, 720));
    l.add_window(WindowId(1), hints(10, 10));
    l.add_window(WindowId(2), hints(10, 10));
    l.set_fullscreen(WindowId(2), Some(true));
    l.set_minimized(WindowId(2), Some(true));
    assert!(!l.shows_fullscreen("A"));
    assert_eq!(visible(&l).len(), 1);
    assert_eq!(l.focused(), Some(WindowId(1)));
    l.verify_invariants().unwrap();
    l.set_minimized(WindowId(2), Some(false));
    assert!(l.shows_fullscreen("A"));
    assert_eq!(l.focused(), Some(WindowId(2)));
    assert_eq!(visible(&l).len(), 1);
    l.verify_invariants().unwrap();
}

// ---- random operation sequences ----

/// splitmix64: tiny, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + self.below((hi - lo + 1) as u64) as i32
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len() as u64) as usize].clone())
    }
}

#[derive(Debug, Clone)]
enum Op {
    AddOutput(String, Rect),
    RemoveOutput(String),
    ResizeOutput(String, Rect),
    FocusOutput(String),
    Open(WindowId, WindowHints),
    Close(WindowId),
    Focus(WindowId),
    FocusDirection(Direction),
    MoveDirection(Direction),
    SwitchWorkspace(WorkspaceId),
    MoveToWorkspace(WorkspaceId),
    MoveWorkspaceToOutput(String),
    ToggleFloating,
    Fullscreen(WindowId, Option<bool>),
    Maximize(WindowId, Option<bool>),
    Resize(WindowId, WindowHints),
    PlaceFloating(WindowId, Rect),
    ResizeFocused(ResizeAxis, i32, Option<ResizeUnit>),
    MoveBy(Direction, i32),
    Minimize(WindowId, Option<bool>),
    UnminimizeLast,
}

const OUTPUTS: [&str; 3] = ["A", "B", "C"];

fn random_op(rng: &mut Rng, alive: &[WindowId], next_id: &mut u64) -> Op {
    let dirs = [
        Direction::Left,
        Direction::Right,
        Direction::Up,
        Direction::Down,
    ];
    let output = OUTPUTS[rng.below(3) as usize].to_owned();
    let rect = Rect::new(
        rng.range(-2000, 4000),
        rng.range(-2000, 4000),
        rng.range(200, 3840),
        rng.range(200, 2160),
    );
    let window = rng.pick(alive).unwrap_or(WindowId(0));
    let workspace = match rng.below(6) {
        0 => WorkspaceId::Named(["web", "mail"][rng.below(2) as usize].into()),
        1 => WorkspaceId::Number(rng.range(11, 13) as u32),
        _ => WorkspaceId::Number(rng.range(1, 10) as u32),
    };
    let random_hints = |rng: &mut Rng| {
        let size = Size::new(rng.range(1, 5000), rng.range(1, 5000));
        let fixed = rng.below(8) == 0;
        WindowHints {
            size,
            min: if fixed { size } else { Size::default() },
            max: if fixed {
                size
            } else if rng.below(4) == 0 {
                Size::new(rng.range(0, 800), rng.range(0, 800))
            } else {
                Size::default()
            },
            has_parent: rng.below(8) == 0,
        }
    };
    let toggle = [None, Some(true), Some(false)][rng.below(3) as usize];
    let axis = [ResizeAxis::Width, ResizeAxis::Height][rng.below(2) as usize];
    let unit = [None, Some(ResizeUnit::Px), Some(ResizeUnit::Ppt)][rng.below(3) as usize];
    let amount = match rng.below(4) {
        0 => rng.range(-100_000, 100_000),
        _ => rng.range(-120, 120),
    };
    match rng.below(26) {
        0 => Op::AddOutput(output, rect),
        1 => Op::RemoveOutput(output),
        2 => Op::ResizeOutput(output, rect),
        3 => Op::FocusOutput(output),
        4..=6 => {
            *next_id += 1;
            Op::Open(WindowId(*next_id), random_hints(rng))
        }
        7 => Op::Close(window),
        8 => Op::Focus(window),
        9 => Op::FocusDirection(dirs[rng.below(4) as usize]),
        10 => Op::MoveDirection(dirs[rng.below(4) as usize]),
        11 => Op::SwitchWorkspace(workspace),
        12 => Op::MoveToWorkspace(workspace),
        13 => Op::MoveWorkspaceToOutput(output),
        14 => Op::ToggleFloating,
        15 => Op::Fullscreen(window, toggle),
        16 => Op::Maximize(window, toggle),
        17 => Op::Resize(window, random_hints(rng)),
        18 => Op::PlaceFloating(window, rect),
        19 | 20 => Op::ResizeFocused(axis, amount, unit),
        21 => Op::MoveBy(dirs[rng.below(4) as usize], amount.abs()),
        22 | 23 => Op::Minimize(window, toggle),
        24 => Op::UnminimizeLast,
        _ => Op::Close(window),
    }
}

/// Applies `op`; for a resize, returns what it did (so the test can tell that every kind
/// of resize happened).
fn apply(l: &mut Layout, op: &Op, alive: &mut BTreeSet<WindowId>) -> Option<&'static str> {
    match op.clone() {
        Op::AddOutput(name, rect) => l.add_output(&name, rect),
        Op::RemoveOutput(name) => l.remove_output(&name),
        Op::ResizeOutput(name, rect) => l.set_output_area(&name, rect),
        Op::FocusOutput(name) => l.focus_output(&name),
        Op::Open(id, h) => {
            l.add_window(id, h);
            alive.insert(id);
        }
        Op::Close(id) => {
            l.remove_window(id);
            alive.remove(&id);
        }
        Op::Focus(id) => l.focus_window(id),
        Op::FocusDirection(d) => l.focus_direction(d),
        Op::MoveDirection(d) => l.move_direction(d),
        Op::SwitchWorkspace(ws) => l.switch_workspace(&ws),
        Op::MoveToWorkspace(ws) => l.move_to_workspace(ws),
        Op::MoveWorkspaceToOutput(name) => l.move_workspace_to_output(&name),
        Op::ToggleFloating => l.toggle_floating(),
        Op::Fullscreen(id, on) => l.set_fullscreen(id, on),
        Op::Maximize(id, on) => l.set_maximized(id, on),
        Op::Resize(id, h) => l.set_hints(id, h),
        Op::PlaceFloating(id, rect) => l.set_floating_rect(id, rect),
        Op::ResizeFocused(axis, delta, unit) => {
            let before = l.focused();
            let outcome = l.resize_focused(axis, delta, unit);
            assert_eq!(l.focused(), before, "a resize keeps focus");
            return Some(match outcome {
                ResizeOutcome::Unchanged => "unchanged",
                ResizeOutcome::MasterRatio(_) => "master ratio",
                ResizeOutcome::StackShare(_) => "stack share",
                ResizeOutcome::Floating(id, size) => {
                    assert_eq!(Some(id), before, "a resize acts on the focused window");
                    assert!(size.is_positive(), "{size:?}");
                    "floating"
                }
            });
        }
        Op::MoveBy(direction, px) => l.move_direction_by(direction, px),
        Op::Minimize(id, on) => l.set_minimized(id, on),
        Op::UnminimizeLast => {
            l.unminimize_last();
        }
    }
    None
}

/// Runs `steps` random operations from `seed`, checking everything after each one; returns
/// what the resizes did.
fn run(seed: u64, steps: usize) -> BTreeSet<&'static str> {
    let mut resized = BTreeSet::new();
    let mut rng = Rng(seed);
    let mut l = Layout::new(LayoutConfig {
        gaps: rng.range(0, 20),
        border_width: rng.range(0, 6),
        master_ratio: 0.1 + rng.below(9) as f64 / 10.0,
        new_windows_float: rng.below(4) == 0,
    });
    let mut alive = BTreeSet::new();
    let mut next_id = 0;
    let mut history = Vec::new();
    for step in 0..steps {
        let ids: Vec<WindowId> = alive.iter().copied().collect();
        let op = random_op(&mut rng, &ids, &mut next_id);
        resized.extend(apply(&mut l, &op, &mut alive));
        history.push(op);
        let fail = |why: String| -> ! {
            panic!(
                "seed {seed} step {step}: {why}\nops: {history:?}\nlayout: {l:?}",
                history = &history[history.len().saturating_sub(12)..],
            )
        };
        if let Err(why) = l.verify_invariants() {
            fail(why);
        }
        let known: BTreeSet<WindowId> = l
            .workspaces()
            .flat_map(|(_, ws)| ws.windows.iter().map(|w| w.id))
            .collect();
        if known != alive {
            fail(format!("layout has {known:?}, expected {alive:?}"));
        }
        if l.outputs().is_empty() != l.arrange().is_empty() && !alive.is_empty() {
            fail("windows are placed without outputs, or not placed with them".into());
        }
    }
    resized
}

/// Outputs of 0–3 pixels (a minimised host window reports 0×0): nothing can be laid out
/// sensibly, but nothing may panic either.
#[test]
fn degenerate_outputs_never_panic() {
    for seed in 0..100 {
        let mut rng = Rng(seed);
        let mut l = Layout::new(LayoutConfig {
            gaps: rng.range(0, 20),
            border_width: rng.range(0, 6),
            ..Default::default()
        });
        let mut alive = BTreeSet::new();
        let mut next_id = 0;
        for _ in 0..200 {
            let ids: Vec<WindowId> = alive.iter().copied().collect();
            let op = match random_op(&mut rng, &ids, &mut next_id) {
                Op::AddOutput(name, r) => {
                    Op::AddOutput(name, Rect::new(r.x, r.y, r.w % 4, r.h % 4))
                }
                Op::ResizeOutput(name, r) => {
                    Op::ResizeOutput(name, Rect::new(r.x, r.y, r.w % 4, r.h % 4))
                }
                other => other,
            };
            let _ = apply(&mut l, &op, &mut alive);
            let _ = l.arrange();
            let _ = l.new_window_size(WindowHints::default());
        }
    }
}

#[test]
fn random_operation_sequences_keep_the_invariants() {
    if let Some(seed) = std::env::var("LOCKSTEP_LAYOUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run(seed, 2000);
        return;
    }
    let mut resized = BTreeSet::new();
    for seed in 0..300 {
        resized.extend(run(seed, 300));
    }
    // The sequences reach every kind of resize, not only the ones that change nothing.
    assert_eq!(
        resized,
        BTreeSet::from(["floating", "master ratio", "stack share", "unchanged"])
    );
}
