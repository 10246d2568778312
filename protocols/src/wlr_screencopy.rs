//! wlr-screencopy-unstable-v1: clients (grim, wf-recorder) copy an output into their buffer.
//!
//! The flow: `capture_output[_region]` creates a frame; lockstep answers with the buffer it
//! wants (`buffer` for wl_shm XRGB8888, then `buffer_done` on v3). The client attaches a
//! matching shm buffer with `copy` (now) or `copy_with_damage` (on the next frame that has
//! damage); the handler receives a [`Screencopy`], writes the pixels with
//! [`Screencopy::write_pixels`] and calls [`Screencopy::submit`]. A `Screencopy` dropped
//! without `submit` sends `failed`, so a frame can never hang.
//!
//! Protocol errors, on the frame object: `already_used` when a frame is copied twice,
//! `invalid_buffer` when the buffer is not shm, has the wrong format, size or stride.

use std::{sync::Mutex, time::Duration};

use smithay::{
    output::Output,
    reexports::{
        wayland_protocols_wlr::screencopy::v1::server::{
            zwlr_screencopy_frame_v1::{self, Flags, ZwlrScreencopyFrameV1},
            zwlr_screencopy_manager_v1::{self, ZwlrScreencopyManagerV1},
        },
        wayland_server::{
            backend::GlobalId,
            protocol::{wl_buffer::WlBuffer, wl_shm},
            Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource,
        },
    },
    utils::{Physical, Rectangle},
    wayland::shm::{with_buffer_contents, with_buffer_contents_mut},
};

/// The version of `zwlr_screencopy_manager_v1` lockstep implements.
pub const VERSION: u32 = 3;

/// Global state of the screencopy manager.
#[derive(Debug)]
pub struct ScreencopyManagerState {
    global: GlobalId,
}

/// Data of the global: which clients may see it.
pub struct ScreencopyGlobalData {
    filter: Box<dyn Fn(&Client) -> bool + Send + Sync>,
}

/// Per-frame data: what the frame captures and whether it was used.
#[derive(Debug)]
pub struct FrameData {
    inner: Mutex<FrameInner>,
}

#[derive(Debug, Clone)]
struct FrameInner {
    output: Option<Output>,
    /// Region of the output in physical pixels (buffer coordinates of the output image).
    region: Rectangle<i32, Physical>,
    overlay_cursor: bool,
    used: bool,
}

/// What the compositor implements.
pub trait ScreencopyHandler {
    /// The manager state.
    fn screencopy_state(&mut self) -> &mut ScreencopyManagerState;
    /// A client wants `frame`'s region copied into its buffer.
    fn frame(&mut self, frame: Screencopy);
}

/// A copy request waiting for pixels. Drop it to fail the request.
#[derive(Debug)]
pub struct Screencopy {
    frame: ZwlrScreencopyFrameV1,
    buffer: WlBuffer,
    output: Output,
    region: Rectangle<i32, Physical>,
    overlay_cursor: bool,
    with_damage: bool,
    done: bool,
}

/// Errors writing pixels into the client's buffer.
#[derive(Debug, thiserror::Error)]
pub enum ScreencopyError {
    /// The source pixels do not cover the region.
    #[error("source is {got} bytes, need {need} for {width}x{height} (stride {stride})")]
    SourceTooSmall {
        /// Bytes given.
        got: usize,
        /// Bytes needed.
        need: usize,
        /// Region width.
        width: i32,
        /// Region height.
        height: i32,
        /// Source stride.
        stride: usize,
    },
    /// The client's shm pool is gone or too small (it was shrunk or truncated).
    #[error("the client's shm buffer cannot be accessed: {0}")]
    Buffer(String),
}

impl Screencopy {
    /// The client's frame object.
    pub fn frame(&self) -> &ZwlrScreencopyFrameV1 {
        &self.frame
    }
    /// The output to copy.
    pub fn output(&self) -> &Output {
        &self.output
    }
    /// The region of the output to copy, in the output's physical pixels.
    pub fn region(&self) -> Rectangle<i32, Physical> {
        self.region
    }
    /// Whether the client wants the cursor drawn into the copy.
    pub fn overlay_cursor(&self) -> bool {
        self.overlay_cursor
    }
    /// Whether the client asked to wait for the next frame with damage.
    pub fn with_damage(&self) -> bool {
        self.with_damage
    }

    /// Writes `rows` of XRGB8888 pixels (`src_stride` bytes apart, region-sized) into the
    /// client's buffer.
    pub fn write_pixels(&self, src: &[u8], src_stride: usize) -> Result<(), ScreencopyError> {
        let (w, h) = (self.region.size.w, self.region.size.h);
        let row = w as usize * 4;
        let need = if h > 0 {
            src_stride * (h as usize - 1) + row
        } else {
            0
        };
        if src.len() < need || src_stride < row {
            return Err(ScreencopyError::SourceTooSmall {
                got: src.len(),
                need,
                width: w,
                height: h,
                stride: src_stride,
            });
        }
        with_buffer_contents_mut(&self.buffer, |ptr, len, data| {
            let dst_stride = data.stride as usize;
            let offset = data.offset as usize;
            let end = offset + dst_stride * (h as usize).saturating_sub(1) + row;
            if end > len {
                return Err(ScreencopyError::Buffer(format!(
                    "pool is {len} bytes, the buffer needs {end}"
                )));
            }
            // SAFETY: smithay hands us the mapped pool of `len` bytes, valid for this closure;
            // we checked above that every byte we write lies within it.
            let pool = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
            for y in 0..h as usize {
                let d = offset + y * dst_stride;
                let s = y * src_stride;
                pool[d..d + row].copy_from_slice(&src[s..s + row]);
            }
            Ok(())
        })
        .map_err(|err| ScreencopyError::Buffer(err.to_string()))?
    }

    /// Tells the client the copy is complete, presented at `time` (monotonic clock).
    pub fn submit(mut self, time: Duration) {
        self.done = true;
        self.frame.flags(Flags::empty());
        if self.with_damage && self.frame.version() >= 2 {
            self.frame
                .damage(0, 0, self.region.size.w as u32, self.region.size.h as u32);
        }
        let secs = time.as_secs();
        self.frame
            .ready((secs >> 32) as u32, secs as u32, time.subsec_nanos());
    }
}

impl Drop for Screencopy {
    fn drop(&mut self) {
        if !self.done {
            self.frame.failed();
        }
    }
}

impl ScreencopyManagerState {
    /// Creates the `zwlr_screencopy_manager_v1` global, visible to clients `filter` accepts.
    pub fn new<D, F>(display: &DisplayHandle, filter: F) -> Self
    where
        D: GlobalDispatch<ZwlrScreencopyManagerV1, ScreencopyGlobalData>
            + Dispatch<ZwlrScreencopyManagerV1, ()>
            + Dispatch<ZwlrScreencopyFrameV1, FrameData>
            + ScreencopyHandler
            + 'static,
        F: Fn(&Client) -> bool + Send + Sync + 'static,
    {
        let global = display.create_global::<D, ZwlrScreencopyManagerV1, _>(
            VERSION,
            ScreencopyGlobalData {
                filter: Box::new(filter),
            },
        );
        Self { global }
    }

    /// The global's id.
    pub fn global(&self) -> GlobalId {
        self.global.clone()
    }
}

impl<D> GlobalDispatch<ZwlrScreencopyManagerV1, ScreencopyGlobalData, D> for ScreencopyManagerState
where
    D: GlobalDispatch<ZwlrScreencopyManagerV1, ScreencopyGlobalData>
        + Dispatch<ZwlrScreencopyManagerV1, ()>
        + Dispatch<ZwlrScreencopyFrameV1, FrameData>
        + ScreencopyHandler
        + 'static,
{
    fn bind(
        _state: &mut D,
        _handle: &DisplayHandle,
        _client: &Client,
        resource: New<ZwlrScreencopyManagerV1>,
        _global_data: &ScreencopyGlobalData,
        data_init: &mut DataInit<'_, D>,
    ) {
        data_init.init(resource, ());
    }

    fn can_view(client: Client, global_data: &ScreencopyGlobalData) -> bool {
        (global_data.filter)(&client)
    }
}

/// The region of `output` (physical pixels) for a capture of the logical rectangle `logical`
/// (relative to the output), clipped to the output; `None` captures it whole.
fn capture_region(
    output: &Output,
    logical: Option<(i32, i32, i32, i32)>,
) -> Option<Rectangle<i32, Physical>> {
    let mode = output.current_mode()?;
    let full = Rectangle::<i32, Physical>::from_size(mode.size);
    let Some((x, y, w, h)) = logical else {
        return Some(full);
    };
    if w <= 0 || h <= 0 {
        return None;
    }
    let scale = output.current_scale().fractional_scale();
    let to_px = |v: i32| (v as f64 * scale).round() as i32;
    let rect =
        Rectangle::<i32, Physical>::new((to_px(x), to_px(y)).into(), (to_px(w), to_px(h)).into());
    let clipped = rect.intersection(full)?;
    (clipped.size.w > 0 && clipped.size.h > 0).then_some(clipped)
}

impl<D> Dispatch<ZwlrScreencopyManagerV1, (), D> for ScreencopyManagerState
where
    D: Dispatch<ZwlrScreencopyManagerV1, ()>
        + Dispatch<ZwlrScreencopyFrameV1, FrameData>
        + ScreencopyHandler
        + 'static,
{
    fn request(
        _state: &mut D,
        _client: &Client,
        _manager: &ZwlrScreencopyManagerV1,
        request: zwlr_screencopy_manager_v1::Request,
        _data: &(),
        _dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        let (frame, overlay_cursor, wl_output, logical) = match request {
            zwlr_screencopy_manager_v1::Request::CaptureOutput {
                frame,
                overlay_cursor,
                output,
            } => (frame, overlay_cursor, output, None),
            zwlr_screencopy_manager_v1::Request::CaptureOutputRegion {
                frame,
                overlay_cursor,
                output,
                x,
                y,
                width,
                height,
            } => (frame, overlay_cursor, output, Some((x, y, width, height))),
            zwlr_screencopy_manager_v1::Request::Destroy => return,
            _ => return,
        };
        let output = Output::from_resource(&wl_output);
        let region = output
            .as_ref()
            .and_then(|o| capture_region(o, logical))
            .unwrap_or_default();
        let frame = data_init.init(
            frame,
            FrameData {
                inner: Mutex::new(FrameInner {
                    output: output.clone(),
                    region,
                    overlay_cursor: overlay_cursor != 0,
                    used: false,
                }),
            },
        );
        if output.is_none() || region.size.w <= 0 {
            // The output is gone, or the region misses it: nothing can be copied.
            frame.failed();
            return;
        }
        frame.buffer(
            wl_shm::Format::Xrgb8888,
            region.size.w as u32,
            region.size.h as u32,
            region.size.w as u32 * 4,
        );
        if frame.version() >= 3 {
            frame.buffer_done();
        }
    }
}

/// Checks the client's buffer against what the frame announced.
fn check_buffer(buffer: &WlBuffer, region: Rectangle<i32, Physical>) -> Result<(), String> {
    with_buffer_contents(buffer, |_, _, data| {
        if data.format != wl_shm::Format::Xrgb8888 && data.format != wl_shm::Format::Argb8888 {
            return Err(format!(
                "buffer format is {:?}, the frame announced Xrgb8888",
                data.format
            ));
        }
        if data.width != region.size.w || data.height != region.size.h {
            return Err(format!(
                "buffer is {}x{}, the frame announced {}x{}",
                data.width, data.height, region.size.w, region.size.h
            ));
        }
        if data.stride < region.size.w * 4 {
            return Err(format!(
                "buffer stride {} is less than the announced {}",
                data.stride,
                region.size.w * 4
            ));
        }
        Ok(())
    })
    .map_err(|_| "the buffer is not a wl_shm buffer (lockstep copies into shm only)".to_string())?
}

impl<D> Dispatch<ZwlrScreencopyFrameV1, FrameData, D> for ScreencopyManagerState
where
    D: Dispatch<ZwlrScreencopyFrameV1, FrameData> + ScreencopyHandler + 'static,
{
    fn request(
        state: &mut D,
        _client: &Client,
        frame: &ZwlrScreencopyFrameV1,
        request: zwlr_screencopy_frame_v1::Request,
        data: &FrameData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        let (buffer, with_damage) = match request {
            zwlr_screencopy_frame_v1::Request::Copy { buffer } => (buffer, false),
            zwlr_screencopy_frame_v1::Request::CopyWithDamage { buffer } => (buffer, true),
            zwlr_screencopy_frame_v1::Request::Destroy => return,
            _ => return,
        };
        let inner = {
            let Ok(mut inner) = data.inner.lock() else {
                return;
            };
            if inner.used {
                frame.post_error(
                    zwlr_screencopy_frame_v1::Error::AlreadyUsed,
                    "this frame was already copied; create a new frame for each copy",
                );
                return;
            }
            inner.used = true;
            inner.clone()
        };
        let Some(output) = inner.output else {
            frame.failed();
            return;
        };
        if let Err(why) = check_buffer(&buffer, inner.region) {
            frame.post_error(zwlr_screencopy_frame_v1::Error::InvalidBuffer, why);
            return;
        }
        state.frame(Screencopy {
            frame: frame.clone(),
            buffer,
            output,
            region: inner.region,
            overlay_cursor: inner.overlay_cursor,
            with_damage,
            done: false,
        });
    }
}

/// Implements the screencopy dispatch traits for `$ty` by delegating to this module.
#[macro_export]
macro_rules! delegate_wlr_screencopy {
    ($ty:ty) => {
        smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::screencopy::v1::server::zwlr_screencopy_manager_v1::ZwlrScreencopyManagerV1: $crate::wlr_screencopy::ScreencopyGlobalData
        ] => $crate::wlr_screencopy::ScreencopyManagerState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::screencopy::v1::server::zwlr_screencopy_manager_v1::ZwlrScreencopyManagerV1: ()
        ] => $crate::wlr_screencopy::ScreencopyManagerState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::screencopy::v1::server::zwlr_screencopy_frame_v1::ZwlrScreencopyFrameV1: $crate::wlr_screencopy::FrameData
        ] => $crate::wlr_screencopy::ScreencopyManagerState);
    };
}
