//! Plain integer rectangles for the layout, in global logical pixels.
//!
//! The layout core uses these instead of smithay's `Rectangle<i32, Logical>` so it stays
//! plain data that tests build by hand; `shell.rs` converts at the edge. Arithmetic saturates:
//! a client cannot make a size or position overflow by asking for something absurd.

/// A width and a height in logical pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Size {
    /// Width.
    pub w: i32,
    /// Height.
    pub h: i32,
}

impl Size {
    /// `w`×`h`.
    pub const fn new(w: i32, h: i32) -> Self {
        Self { w, h }
    }

    /// Whether both sides are positive.
    pub fn is_positive(self) -> bool {
        self.w > 0 && self.h > 0
    }

    /// Each side at most `bound`'s and at least 1.
    pub fn fit_within(self, bound: Size) -> Size {
        Size::new(self.w.min(bound.w).max(1), self.h.min(bound.h).max(1))
    }
}

/// A rectangle: top-left corner and size, in logical pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Rect {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub w: i32,
    /// Height.
    pub h: i32,
}

impl Rect {
    /// The rectangle at `x`,`y` of `w`×`h`.
    pub const fn new(x: i32, y: i32, w: i32, h: i32) -> Self {
        Self { x, y, w, h }
    }

    /// Its size.
    pub fn size(self) -> Size {
        Size::new(self.w, self.h)
    }

    /// One past the right edge.
    pub fn right(self) -> i32 {
        self.x.saturating_add(self.w)
    }

    /// One past the bottom edge.
    pub fn bottom(self) -> i32 {
        self.y.saturating_add(self.h)
    }

    /// Its centre, rounded down.
    pub fn centre(self) -> (i32, i32) {
        (
            self.x.saturating_add(self.w / 2),
            self.y.saturating_add(self.h / 2),
        )
    }

    /// Whether `other` lies entirely inside this rectangle.
    pub fn contains_rect(self, other: Rect) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.right() <= self.right()
            && other.bottom() <= self.bottom()
    }

    /// Whether the two share at least one pixel.
    pub fn overlaps(self, other: Rect) -> bool {
        self.x < other.right()
            && other.x < self.right()
            && self.y < other.bottom()
            && other.y < self.bottom()
    }

    /// The part both share, `None` when they share no pixel.
    pub fn intersection(self, other: Rect) -> Option<Rect> {
        if !self.overlaps(other) {
            return None;
        }
        let x = self.x.max(other.x);
        let y = self.y.max(other.y);
        let right = self.right().min(other.right());
        let bottom = self.bottom().min(other.bottom());
        Some(Rect::new(x, y, right - x, bottom - y))
    }

    /// Shrunk by `by` on every side; sides never go below 1 (then the margin is dropped on
    /// that axis rather than producing an empty or negative rectangle).
    pub fn shrink(self, by: i32) -> Rect {
        let by = by.max(0);
        let (x, w) = if self.w > by.saturating_mul(2) {
            (self.x.saturating_add(by), self.w - 2 * by)
        } else {
            (self.x, self.w)
        };
        let (y, h) = if self.h > by.saturating_mul(2) {
            (self.y.saturating_add(by), self.h - 2 * by)
        } else {
            (self.y, self.h)
        };
        Rect::new(x, y, w, h)
    }

    /// A rectangle of `size` centred in this one (or at its corner when it does not fit).
    pub fn centred(self, size: Size) -> Rect {
        let x = self.x.saturating_add(((self.w - size.w) / 2).max(0));
        let y = self.y.saturating_add(((self.h - size.h) / 2).max(0));
        Rect::new(x, y, size.w, size.h)
    }

    /// `inner` moved (not resized, unless bigger) so that it lies inside this rectangle (at
    /// its corner when this one is empty: a minimised host window has a 0×0 output).
    pub fn clamp_inside(self, inner: Rect) -> Rect {
        let size = inner.size().fit_within(self.size());
        // Not `i32::clamp`: it panics when the range is empty.
        let x = inner.x.min(self.right() - size.w).max(self.x);
        let y = inner.y.min(self.bottom() - size.h).max(self.y);
        Rect::new(x, y, size.w, size.h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_never_empties() {
        assert_eq!(
            Rect::new(0, 0, 100, 50).shrink(10),
            Rect::new(10, 10, 80, 30)
        );
        assert_eq!(Rect::new(0, 0, 10, 50).shrink(10), Rect::new(0, 10, 10, 30));
        assert_eq!(
            Rect::new(0, 0, 1, 1).shrink(i32::MAX),
            Rect::new(0, 0, 1, 1)
        );
    }

    #[test]
    fn empty_areas_do_not_panic() {
        let empty = Rect::new(5, 5, 0, 0);
        assert_eq!(
            empty.clamp_inside(Rect::new(100, 100, 10, 10)),
            Rect::new(5, 5, 1, 1)
        );
        assert_eq!(empty.shrink(3), empty);
        assert_eq!(empty.centred(Size::new(1, 1)), Rect::new(5, 5, 1, 1));
    }

    #[test]
    fn clamp_inside_keeps_everything_on_the_area() {
        let area = Rect::new(100, 0, 800, 600);
        assert_eq!(
            area.clamp_inside(Rect::new(0, -50, 200, 100)),
            Rect::new(100, 0, 200, 100)
        );
        assert_eq!(
            area.clamp_inside(Rect::new(850, 550, 2000, 100)),
            Rect::new(100, 500, 800, 100)
        );
    }
}
