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
//! width; the others share the right column from top to bottom in their order, each in
//! proportion to its weight (all 1 until `resize ... height` changes them). Gaps are between
//! tiles and around them. Sizes are whole pixels; the remainder of a division goes to the
//! first tiles so that the tiles exactly fill the area.

use super::geometry::Rect;

/// The tiles for `count` windows in `area`, in window order. Tiles never overlap and lie
/// inside `area` as long as every tile can get at least one pixel per side (an area at least
/// `count` pixels high after gaps); past that, tiles are one pixel and may overlap.
pub fn master_stack(area: Rect, count: usize, gaps: i32, master_ratio: f64) -> Vec<Rect> {
    master_stack_weighted(area, &vec![1.0; count], gaps, master_ratio)
}

/// [`master_stack`] for `weights.len()` windows, the stack ones (all but the first) sharing
/// the column's height in proportion to their weights. A weight that is not a positive
/// number counts as 1.
pub fn master_stack_weighted(
    area: Rect,
    weights: &[f64],
    gaps: i32,
    master_ratio: f64,
) -> Vec<Rect> {
    let count = weights.len();
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
    let heights = share(free, &weights[1..]);
    let mut y = inner.y;
    for h in heights {
        tiles.push(Rect::new(stack_x, y, stack_w, h));
        y = y.saturating_add(h + row_gap);
    }
    tiles
}

/// Splits `total` pixels into one height per weight: every one gets a pixel (when there are
/// enough), the rest goes by weight, rounded down, and what rounding leaves goes one pixel
/// each to the first ones. The heights sum to `total` when `total >= weights.len()`; past
/// that, every height is 1.
fn share(total: i32, weights: &[f64]) -> Vec<i32> {
    let count = i32::try_from(weights.len()).unwrap_or(i32::MAX);
    if total < count {
        return vec![1; weights.len()];
    }
    let weight = |w: f64| if w.is_finite() && w > 0.0 { w } else { 1.0 };
    let sum: f64 = weights.iter().map(|w| weight(*w)).sum();
    let spare = total - count;
    let mut heights: Vec<i32> = weights
        .iter()
        .map(|w| {
            // Within 0..=spare: the float maths cannot push the sum past `total`.
            let part = (f64::from(spare) * weight(*w) / sum).floor() as i32;
            1 + part.clamp(0, spare)
        })
        .collect();
    let mut left = total - heights.iter().sum::<i32>();
    // Rounding down leaves at most one pixel per tile; float error could in theory overshoot,
    // so take back from the tallest then.
    for h in heights.iter_mut() {
        if left <= 0 {
            break;
        }
        *h += 1;
        left -= 1;
    }
    while left < 0 {
        let Some(tallest) = heights.iter_mut().max() else {
            break;
        };
        if *tallest <= 1 {
            break;
        }
        *tallest -= 1;
        left += 1;
    }
    heights
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
    fn weights_share_the_stack_column() {
        let area = Rect::new(0, 0, 1000, 700);
        let tiles = master_stack_weighted(area, &[1.0, 3.0, 1.0], 0, 0.5);
        assert_eq!(tiles[1], Rect::new(500, 0, 500, 525));
        assert_eq!(tiles[2], Rect::new(500, 525, 500, 175));
        // Bad weights count as 1.
        let tiles = master_stack_weighted(area, &[1.0, f64::NAN, -2.0], 0, 0.5);
        assert_eq!(tiles[1].h, 350);
        assert_eq!(tiles[2].h, 350);
    }

    #[test]
    fn shares_always_sum_to_the_total() {
        for total in [3, 10, 99, 1000, 2161] {
            for weights in [
                vec![1.0, 1.0, 1.0],
                vec![0.001, 5.0, 1e-9],
                vec![1e300, 1.0, 1.0],
                vec![0.3; 7],
            ] {
                let h = share(total, &weights);
                let expected = total.max(weights.len() as i32);
                assert_eq!(h.iter().sum::<i32>(), expected, "{total} {weights:?}");
                assert!(h.iter().all(|h| *h >= 1), "{h:?}");
            }
        }
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
