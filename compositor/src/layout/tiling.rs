//! The tiling rule: master–stack, a pure function from (area, count) to tiles.
//!
//! ```text
//!  one window        two windows          four windows
//! +------------+   +------+------+      +------+------+
//! |            |   |      |      |      |      |  2   |
//! |     1      |   |  1   |  2   |      |  1   +------+
//! |            |   |      |      |      |      |  3   |
//! |            |   |      |      |      |      +------+
//! |            |   |      |      |      |      |  4   |
//! +------------+   +------+------+      +------+------+
//! ```
//!
//! The first tiled window of a workspace is the master and takes `master_ratio` of the
//! width; the others share the right column from top to bottom in their order. Gaps are
//! between tiles and around them. Sizes are whole pixels; the remainder of a division goes to
//! the first tiles so that the tiles exactly fill the area.

use super::geometry::Rect;

/// The tiles for `count` windows in `area`, in window order. Tiles never overlap and lie
/// inside `area` as long as every tile can get at least one pixel per side (an area at least
/// `count` pixels high after gaps); past that, tiles are one pixel and may overlap.
pub fn master_stack(area: Rect, count: usize, gaps: i32, master_ratio: f64) -> Vec<Rect> {
    if count == 0 {
        return Vec::new();
    }
    let gaps = gaps.max(0);
    let inner = area.shrink(gaps);
    if count == 1 {
        return vec![inner];
    }
    let stack = count - 1;
    // The gap between master and stack, unless the area is too narrow for it.
    let mid_gap = if inner.w > gaps.saturating_mul(2) + 2 {
        gaps
    } else {
        0
    };
    let ratio = if master_ratio.is_finite() {
        master_ratio.clamp(0.1, 0.9)
    } else {
        0.5
    };
    let usable = (inner.w - mid_gap).max(2);
    let master_w = ((f64::from(usable) * ratio).round() as i32).clamp(1, usable - 1);
    let stack_w = usable - master_w;
    let mut tiles = Vec::with_capacity(count);
    tiles.push(Rect::new(inner.x, inner.y, master_w, inner.h));
    let stack_x = inner.x + master_w + mid_gap;
    let stack_count = i32::try_from(stack).unwrap_or(i32::MAX);
    let row_gap = if inner.h - gaps.saturating_mul(stack_count - 1) >= stack_count {
        gaps
    } else {
        0
    };
    let free = (inner.h - row_gap * (stack_count - 1)).max(0);
    let base = free / stack_count;
    let extra = free % stack_count;
    let mut y = inner.y;
    for i in 0..stack_count {
        let h = (base + i32::from(i < extra)).max(1);
        tiles.push(Rect::new(stack_x, y, stack_w, h));
        y = y.saturating_add(h + row_gap);
    }
    tiles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_window_fills_the_area_inside_the_gaps() {
        let area = Rect::new(0, 0, 1280, 720);
        assert_eq!(
            master_stack(area, 1, 8, 0.5),
            vec![Rect::new(8, 8, 1264, 704)]
        );
    }

    #[test]
    fn three_windows_master_left_stack_right() {
        let area = Rect::new(0, 0, 1280, 720);
        let tiles = master_stack(area, 3, 10, 0.5);
        assert_eq!(
            tiles,
            vec![
                Rect::new(10, 10, 625, 700),
                Rect::new(645, 10, 625, 345),
                Rect::new(645, 365, 625, 345),
            ]
        );
    }

    #[test]
    fn tiles_fill_without_overlap_for_many_counts() {
        let area = Rect::new(-300, 40, 1000, 777);
        for count in 1..60 {
            let tiles = master_stack(area, count, 6, 0.55);
            assert_eq!(tiles.len(), count);
            for (i, a) in tiles.iter().enumerate() {
                assert!(area.contains_rect(*a), "{count}: {a:?}");
                assert!(a.w > 0 && a.h > 0);
                for b in &tiles[i + 1..] {
                    assert!(!a.overlaps(*b), "{count}: {a:?} {b:?}");
                }
            }
        }
    }
}
