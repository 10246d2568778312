//! The default pointer image.
//!
//! Shown when no client has set a cursor surface (or a client asked for the default):
//! [`load`] takes the `default` (or `left_ptr`) cursor of the configured XCursor theme at the
//! nearest size, and falls back to an arrow drawn in code ([`default_cursor`]) when the theme
//! is missing, so the minimal VM and CI images that ship no theme still have a pointer.

use std::path::PathBuf;

/// A cursor image: premultiplied ARGB8888 (`AR24`, bytes B, G, R, A), `width` × `height`
/// pixels.
#[derive(Debug, Clone)]
pub struct CursorImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The hotspot (the arrow's tip) in pixels from the top-left corner.
    pub hotspot: (u32, u32),
    /// Pixel data, `width * height * 4` bytes.
    pub pixels: Vec<u8>,
    /// Where it came from: the theme file, or `None` for the drawn arrow.
    pub source: Option<PathBuf>,
}

/// Why a theme cursor could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    /// The theme (or those it inherits) has no `default`/`left_ptr` cursor.
    #[error("XCursor theme {0:?} has no default or left_ptr cursor (is it installed?)")]
    NotFound(String),
    /// The cursor file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The cursor file is not a valid XCursor file.
    #[error("{0} is not a valid XCursor file")]
    Parse(PathBuf),
}

/// The `default` cursor of XCursor `theme`, at the image size nearest to `size`.
pub fn from_theme(theme: &str, size: u32) -> Result<CursorImage, CursorError> {
    let icons = xcursor::CursorTheme::load(theme);
    let path = icons
        .load_icon("default")
        .or_else(|| icons.load_icon("left_ptr"))
        .ok_or_else(|| CursorError::NotFound(theme.to_string()))?;
    let bytes = std::fs::read(&path).map_err(|source| CursorError::Read {
        path: path.clone(),
        source,
    })?;
    let images =
        xcursor::parser::parse_xcursor(&bytes).ok_or_else(|| CursorError::Parse(path.clone()))?;
    let image = images
        .iter()
        .filter(|i| i.pixels_rgba.len() as u64 == u64::from(i.width) * u64::from(i.height) * 4)
        .min_by_key(|i| (i.size.abs_diff(size), i.delay))
        .ok_or_else(|| CursorError::Parse(path.clone()))?;
    Ok(CursorImage {
        width: image.width,
        height: image.height,
        hotspot: (image.xhot.min(image.width), image.yhot.min(image.height)),
        // The file stores 32-bit ARGB words little-endian: bytes B, G, R, A, which is AR24.
        pixels: image.pixels_rgba.clone(),
        source: Some(path),
    })
}

/// The theme's cursor, or the drawn arrow (with the reason the theme was not used).
pub fn load(theme: &str, size: u32) -> (CursorImage, Option<CursorError>) {
    match from_theme(theme, size) {
        Ok(image) => (image, None),
        Err(err) => (default_cursor(size), Some(err)),
    }
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
        width: size,
        height: size,
        hotspot: (0, 0),
        pixels,
        source: None,
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
        assert_eq!((c.width, c.height, c.source.clone()), (24, 24, None));
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

#[cfg(test)]
mod theme_tests {
    use super::*;

    #[test]
    fn a_missing_theme_falls_back_to_the_drawn_arrow() {
        let (image, err) = load("no-such-theme-lockstep", 24);
        assert!(image.source.is_none());
        assert!(matches!(err, Some(CursorError::NotFound(_))), "{err:?}");
    }

    #[test]
    #[allow(clippy::disallowed_macros)]
    fn adwaita_is_loaded_when_installed() {
        if !std::path::Path::new("/usr/share/icons/Adwaita/cursors").exists() {
            eprintln!("SKIP: no Adwaita cursor theme on this machine");
            return;
        }
        let image = from_theme("Adwaita", 24).expect("Adwaita has a default cursor");
        assert_eq!(image.pixels.len() as u32, image.width * image.height * 4);
        assert!(image.width >= 16 && image.width <= 64, "{}", image.width);
        assert!(
            image.pixels.chunks_exact(4).any(|p| p[3] == 0xff),
            "some opaque pixels"
        );
    }
}
