//! The default pointer image.
//!
//! Shown when no client has set a cursor surface (or a client asked for the default). Drawn in
//! code rather than loaded from an XCursor theme so that lockstep looks the same on every
//! machine, including the minimal VM and CI images that ship no theme.

/// A cursor image: premultiplied ARGB8888 (`AR24`, bytes B, G, R, A), `size` × `size` pixels.
#[derive(Debug, Clone)]
pub struct CursorImage {
    /// Width and height in pixels.
    pub size: u32,
    /// The hotspot (the arrow's tip) in pixels from the top-left corner.
    pub hotspot: (u32, u32),
    /// Pixel data, `size * size * 4` bytes.
    pub pixels: Vec<u8>,
}

/// Draws the default arrow at `size` pixels (clamped to 8 ..= 256): a black-outlined white
/// arrow with its tip at the top-left corner.
pub fn default_cursor(size: u32) -> CursorImage {
    let size = size.clamp(8, 256);
    let s = size as f64;
    let mut pixels = vec![0u8; (size * size * 4) as usize];
    // The arrow is the triangle (0,0) (0, 0.85s) (0.6s, 0.6s); inside is white, a band of about
    // s/16 along its edges is black.
    let tip = (0.0, 0.0);
    let bottom = (0.0, 0.85 * s);
    let right = (0.6 * s, 0.6 * s);
    let border = (s / 16.0).max(1.0);
    for y in 0..size {
        for x in 0..size {
            let p = (x as f64 + 0.5, y as f64 + 0.5);
            let d = [
                edge_distance(tip, bottom, p),
                edge_distance(bottom, right, p),
                edge_distance(right, tip, p),
            ];
            let inside = d.iter().all(|d| *d >= 0.0) || d.iter().all(|d| *d <= 0.0);
            if inside {
                let inner = d.iter().map(|d| d.abs()).fold(f64::MAX, f64::min);
                let v = if inner < border { 0x00 } else { 0xff };
                let at = ((y * size + x) * 4) as usize;
                pixels[at..at + 4].copy_from_slice(&[v, v, v, 0xff]);
            }
        }
    }
    CursorImage {
        size,
        hotspot: (0, 0),
        pixels,
    }
}

/// Signed distance of `p` from the line through a→b (the sign tells the side).
fn edge_distance(a: (f64, f64), b: (f64, f64), p: (f64, f64)) -> f64 {
    let (ex, ey) = (b.0 - a.0, b.1 - a.1);
    let len = (ex * ex + ey * ey).sqrt();
    ((p.0 - a.0) * ey - (p.1 - a.1) * ex) / len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_has_white_inside_black_edge_and_transparent_outside() {
        let c = default_cursor(24);
        assert_eq!(c.pixels.len(), 24 * 24 * 4);
        let px = |x: u32, y: u32| {
            let at = ((y * 24 + x) * 4) as usize;
            [
                c.pixels[at],
                c.pixels[at + 1],
                c.pixels[at + 2],
                c.pixels[at + 3],
            ]
        };
        assert_eq!(px(4, 10), [0xff, 0xff, 0xff, 0xff], "inside is white");
        assert_eq!(px(0, 10), [0, 0, 0, 0xff], "left edge is black");
        assert_eq!(px(23, 2), [0, 0, 0, 0], "outside is transparent");
    }
}
