//! Notices lockstep draws on screen itself: today, that the config file has an error.
//!
//! Why: an invalid config is kept out (the running one stays), and the log and the IPC event
//! stream say so, but someone who just saved the file in an editor looks at the screen, not
//! at a log. Like niri, lockstep then shows a banner at the top of every output until a valid
//! file is loaded: a dark red bar with the first lines of the error in white.
//!
//! How: the text is drawn with an 8x8 bitmap font (the `font8x8` crate, Basic Latin; other
//! characters show as `?`) at twice its size into an ARGB8888 image as wide as the output,
//! uploaded as a memory buffer once per output width and text. It is the frontmost element
//! after the pointer, so no window hides it.

use std::{cell::RefCell, collections::HashMap};

use smithay::{
    backend::{allocator::Fourcc, renderer::element::memory::MemoryRenderBuffer},
    utils::Transform,
};

/// Pixels per font pixel.
const GLYPH_SCALE: usize = 2;
/// Glyph size on screen.
const GLYPH: usize = 8 * GLYPH_SCALE;
/// Space around the text.
const PADDING: usize = 8;
/// Lines shown at most, after wrapping (the rest is in the log).
const MAX_LINES: usize = 8;
/// Banner colour (ARGB): a dark red.
const BACKGROUND: u32 = 0xff7f_1d1d;
/// Text colour (ARGB).
const TEXT: u32 = 0xffff_ffff;

/// The notice of the moment, if any, and its images per output width.
#[derive(Debug, Default)]
pub struct Notice {
    lines: Vec<String>,
    images: RefCell<HashMap<i32, MemoryRenderBuffer>>,
}

impl Notice {
    /// Shows that the config file was rejected with `error`.
    pub fn config_rejected(&mut self, error: &str) {
        let mut lines =
            vec!["lockstep: the config file has an error, so the running config is kept. Fix it and save: it is reloaded.".to_owned()];
        lines.extend(
            error
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned),
        );
        self.lines = lines;
        self.images.borrow_mut().clear();
    }

    /// Hides the notice (a valid config was loaded).
    pub fn clear(&mut self) {
        self.lines.clear();
        self.images.borrow_mut().clear();
    }

    /// The text shown, one entry per line (empty: no notice).
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The banner for an output `width` pixels wide, or `None` without a notice.
    pub fn image(&self, width: i32) -> Option<MemoryRenderBuffer> {
        if self.lines.is_empty() || width <= 0 {
            return None;
        }
        let mut images = self.images.borrow_mut();
        let image = images.entry(width).or_insert_with(|| {
            let (pixels, height) = draw(&self.lines, width as usize);
            MemoryRenderBuffer::from_slice(
                &pixels,
                Fourcc::Argb8888,
                (width, height as i32),
                1,
                Transform::Normal,
                None,
            )
        });
        Some(image.clone())
    }
}

/// Draws `lines` on the banner colour into a `width`-pixel-wide ARGB8888 image (little-endian
/// bytes); returns it and its height. Lines longer than the width wrap; past [`MAX_LINES`]
/// the rest is left out.
fn draw(lines: &[String], width: usize) -> (Vec<u8>, usize) {
    let columns = (width.saturating_sub(2 * PADDING) / GLYPH).max(1);
    let rows: Vec<Vec<char>> = lines
        .iter()
        .flat_map(|line| wrap(line, columns))
        .take(MAX_LINES)
        .collect();
    let height = 2 * PADDING + rows.len() * (GLYPH + 4);
    let mut argb = vec![BACKGROUND; width * height];
    for (row, chars) in rows.iter().enumerate() {
        let top = PADDING + row * (GLYPH + 4);
        for (column, &c) in chars.iter().enumerate() {
            let glyph = font8x8::legacy::BASIC_LEGACY
                .get(c as usize)
                .unwrap_or(&font8x8::legacy::BASIC_LEGACY[usize::from(b'?')]);
            let left = PADDING + column * GLYPH;
            if left + GLYPH > width {
                break; // an output narrower than one glyph
            }
            for (gy, bits) in glyph.iter().enumerate() {
                for gx in 0..8 {
                    // font8x8: bit 0 is the leftmost pixel of the row.
                    if bits & (1 << gx) == 0 {
                        continue;
                    }
                    for dy in 0..GLYPH_SCALE {
                        let y = top + gy * GLYPH_SCALE + dy;
                        let x = left + gx * GLYPH_SCALE;
                        argb[y * width + x..y * width + x + GLYPH_SCALE].fill(TEXT);
                    }
                }
            }
        }
    }
    let bytes = argb.iter().flat_map(|p| p.to_le_bytes()).collect();
    (bytes, height)
}

/// `line` cut into rows of at most `columns` characters, at a space where there is one.
fn wrap(line: &str, columns: usize) -> Vec<Vec<char>> {
    let mut rest: Vec<char> = line.chars().collect();
    let mut rows = Vec::new();
    while rest.len() > columns {
        let cut = match rest[..=columns].iter().rposition(|c| *c == ' ') {
            Some(space) if space > 0 => space,
            _ => columns,
        };
        rows.push(rest[..cut].to_vec());
        let skip = usize::from(rest.get(cut) == Some(&' '));
        rest.drain(..cut + skip);
    }
    rows.push(rest);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_has_the_text_in_white_on_red_and_wraps_long_lines() {
        // 100 px: 5 glyphs a row. "A", then 12 x's wrap into 3 rows.
        let lines = vec!["A".to_owned(), "x".repeat(12)];
        let (bytes, height) = draw(&lines, 100);
        assert_eq!(height, 2 * PADDING + 4 * (GLYPH + 4));
        let (_, capped) = draw(&["y".repeat(1000)], 100);
        assert_eq!(
            capped,
            2 * PADDING + MAX_LINES * (GLYPH + 4),
            "at most MAX_LINES rows"
        );
        let px = |x: usize, y: usize| {
            let i = (y * 100 + x) * 4;
            u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]])
        };
        assert_eq!(px(0, 0), BACKGROUND);
        let white_in_a = (0..GLYPH)
            .flat_map(|y| (0..GLYPH).map(move |x| (x, y)))
            .filter(|&(x, y)| px(PADDING + x, PADDING + y) == TEXT)
            .count();
        assert!(white_in_a > 20, "the A has {white_in_a} white pixels");
        // The right padding stays red: rows hold whole glyphs only.
        for y in 0..height {
            assert_eq!(px(99, y), BACKGROUND);
        }
    }

    #[test]
    fn lines_wrap_at_spaces_and_long_words_are_cut() {
        let rows = |line: &str, n| -> Vec<String> {
            wrap(line, n)
                .into_iter()
                .map(|r| r.into_iter().collect())
                .collect()
        };
        assert_eq!(
            rows("gaps takes a whole number", 10),
            ["gaps takes", "a whole", "number"]
        );
        assert_eq!(rows("abcdefghijkl", 5), ["abcde", "fghij", "kl"]);
        assert_eq!(rows("", 5), [""]);
    }

    #[test]
    fn a_notice_comes_and_goes() {
        let mut notice = Notice::default();
        assert!(notice.image(800).is_none());
        notice.config_rejected("config.toml:2:8: error: gaps must not be negative\n\n  hint");
        assert_eq!(notice.lines().len(), 3, "blank lines are left out");
        assert!(notice.image(800).is_some());
        notice.clear();
        assert!(notice.image(800).is_none());
    }
}
