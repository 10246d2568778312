//! Frames captured into memory.

use std::io::Write;

/// Layout of one pixel in a [`Frame`]: DRM fourcc names, so 32-bit little-endian words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// `XR24`: bytes B, G, R, X in memory; alpha ignored.
    Xrgb8888,
    /// `AR24`: bytes B, G, R, A in memory.
    Argb8888,
    /// `XB24`: bytes R, G, B, X in memory (what GL read-back gives).
    Xbgr8888,
    /// `AB24`: bytes R, G, B, A in memory.
    Abgr8888,
}

impl PixelFormat {
    /// Converts one pixel's four bytes in memory to `[r, g, b, a]`.
    fn to_rgba(self, px: [u8; 4]) -> [u8; 4] {
        match self {
            PixelFormat::Xrgb8888 => [px[2], px[1], px[0], 0xff],
            PixelFormat::Argb8888 => [px[2], px[1], px[0], px[3]],
            PixelFormat::Xbgr8888 => [px[0], px[1], px[2], 0xff],
            PixelFormat::Abgr8888 => [px[0], px[1], px[2], px[3]],
        }
    }
}

/// Errors turning a frame into a file.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The pixel data is shorter than `stride * height`.
    #[error("frame data is {len} bytes, but {width}x{height} with stride {stride} needs {needed}")]
    TooShort {
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        needed: usize,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Bytes per row.
        stride: u32,
    },
    /// PNG encoding failed.
    #[error("PNG encoding failed: {0}")]
    Png(#[from] png::EncodingError),
}

/// A frame in memory: what an output showed, or a region of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    width: u32,
    height: u32,
    stride: u32,
    format: PixelFormat,
    data: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("stride", &self.stride)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// What a frame's pixels look like in numbers: enough to tell a blank or background-only frame
/// from one that shows a client.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameStats {
    /// Number of distinct colours (alpha ignored), capped at 65,536.
    pub distinct_colors: usize,
    /// The most common colour, `[r, g, b]`.
    pub dominant_color: [u8; 3],
    /// Share of pixels that are not the dominant colour, 0.0 ..= 1.0.
    pub non_dominant_fraction: f64,
}

impl Frame {
    /// Wraps pixel data with `stride` bytes per row. Fails when `data` is too short.
    pub fn new(
        width: u32,
        height: u32,
        stride: u32,
        format: PixelFormat,
        data: Vec<u8>,
    ) -> Result<Self, FrameError> {
        let needed = stride as usize * height as usize;
        if data.len() < needed || (stride as usize) < width as usize * 4 {
            return Err(FrameError::TooShort {
                len: data.len(),
                needed: needed.max(width as usize * 4 * height as usize),
                width,
                height,
                stride,
            });
        }
        Ok(Self {
            width,
            height,
            stride,
            format,
            data,
        })
    }

    /// A frame of one colour given as a 32-bit word in `format` (handy in tests).
    pub fn filled(width: u32, height: u32, format: PixelFormat, word: u32) -> Self {
        let data = word
            .to_le_bytes()
            .iter()
            .copied()
            .cycle()
            .take(width as usize * height as usize * 4)
            .collect();
        Self {
            width,
            height,
            stride: width * 4,
            format,
            data,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Bytes per row.
    pub fn stride(&self) -> u32 {
        self.stride
    }
    /// Memory layout of a pixel.
    pub fn format(&self) -> PixelFormat {
        self.format
    }
    /// Raw pixel data, `stride * height` bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The pixel at `(x, y)` as `[r, g, b, a]`, or `None` outside the frame.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = y as usize * self.stride as usize + x as usize * 4;
        let px = self.data.get(at..at + 4)?;
        Some(self.format.to_rgba([px[0], px[1], px[2], px[3]]))
    }

    /// Copies the rectangle `(x, y, w, h)`, clipped to the frame, into a new tightly packed frame.
    pub fn crop(&self, x: u32, y: u32, w: u32, h: u32) -> Frame {
        let x0 = x.min(self.width);
        let y0 = y.min(self.height);
        let w = w.min(self.width - x0);
        let h = h.min(self.height - y0);
        let mut data = Vec::with_capacity(w as usize * h as usize * 4);
        for row in y0..y0 + h {
            let start = row as usize * self.stride as usize + x0 as usize * 4;
            data.extend_from_slice(&self.data[start..start + w as usize * 4]);
        }
        Frame {
            width: w,
            height: h,
            stride: w * 4,
            format: self.format,
            data,
        }
    }

    /// Rows of `[r, g, b, a]` pixels, top to bottom.
    pub fn rgba_rows(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        (0..self.height).map(move |y| {
            let start = y as usize * self.stride as usize;
            self.data[start..start + self.width as usize * 4]
                .chunks_exact(4)
                .flat_map(|px| self.format.to_rgba([px[0], px[1], px[2], px[3]]))
                .collect()
        })
    }

    /// Encodes the frame as an 8-bit RGBA PNG (alpha forced opaque for X formats).
    pub fn encode_png(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, self.width.max(1), self.height.max(1));
            encoder.set_color(png::ColorType::Rgba);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_compression(png::Compression::Fast);
            let mut writer = encoder.write_header()?;
            let mut stream = writer.stream_writer()?;
            for row in self.rgba_rows() {
                stream.write_all(&row).map_err(png::EncodingError::from)?;
            }
            stream.finish()?;
        }
        Ok(out)
    }

    /// Pixel statistics (see [`FrameStats`]).
    pub fn stats(&self) -> FrameStats {
        let mut counts: std::collections::HashMap<[u8; 3], u64> = Default::default();
        for row in self.rgba_rows() {
            for px in row.chunks_exact(4) {
                if counts.len() < 65_536 || counts.contains_key(&[px[0], px[1], px[2]]) {
                    *counts.entry([px[0], px[1], px[2]]).or_default() += 1;
                }
            }
        }
        let total = (self.width as u64 * self.height as u64).max(1);
        let (dominant_color, dominant) = counts
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(c, n)| (*c, *n))
            .unwrap_or(([0, 0, 0], 0));
        FrameStats {
            distinct_colors: counts.len(),
            dominant_color,
            non_dominant_fraction: 1.0 - dominant as f64 / total as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_order_per_format() {
        let f = Frame::filled(1, 1, PixelFormat::Xrgb8888, 0x00_11_22_33);
        assert_eq!(f.pixel(0, 0), Some([0x11, 0x22, 0x33, 0xff]));
        let f = Frame::filled(1, 1, PixelFormat::Abgr8888, 0x44_11_22_33);
        assert_eq!(f.pixel(0, 0), Some([0x33, 0x22, 0x11, 0x44]));
        assert_eq!(f.pixel(1, 0), None);
    }

    #[test]
    fn short_data_is_an_error() {
        let err = Frame::new(2, 2, 8, PixelFormat::Xrgb8888, vec![0; 15]).unwrap_err();
        assert!(
            matches!(err, FrameError::TooShort { needed: 16, .. }),
            "{err}"
        );
    }

    #[test]
    fn crop_and_stats() {
        let mut data = vec![0u8; 4 * 4 * 4];
        // pixel (1,1) red
        data[(4 + 1) * 4..(4 + 1) * 4 + 4].copy_from_slice(&[0, 0, 0xff, 0xff]);
        let f = Frame::new(4, 4, 16, PixelFormat::Xrgb8888, data).unwrap();
        let c = f.crop(1, 1, 10, 10);
        assert_eq!((c.width(), c.height()), (3, 3));
        assert_eq!(c.pixel(0, 0), Some([0xff, 0, 0, 0xff]));
        let s = f.stats();
        assert_eq!(s.distinct_colors, 2);
        assert_eq!(s.dominant_color, [0, 0, 0]);
        assert!((s.non_dominant_fraction - 1.0 / 16.0).abs() < 1e-9);
    }

    #[test]
    fn png_roundtrip_header() {
        let f = Frame::filled(3, 2, PixelFormat::Xrgb8888, 0x00ff_0000);
        let png = f.encode_png().unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(&buf[0..4], &[0xff, 0, 0, 0xff]);
    }
}
