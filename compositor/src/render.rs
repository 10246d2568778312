//! What an output shows: the elements of one frame, for any renderer.
//!
//! Both backends and screenshots build their frames here so that what tests capture is what
//! users see. Elements go front to back: the pointer, then windows and popups from the space.

use smithay::{
    backend::{
        allocator::Fourcc,
        renderer::{
            damage::{Error as DamageError, OutputDamageTracker, RenderOutputResult},
            element::{
                memory::{MemoryRenderBuffer, MemoryRenderBufferRenderElement},
                render_elements,
                surface::{render_elements_from_surface_tree, WaylandSurfaceRenderElement},
                Kind,
            },
            Bind, Color32F, ExportMem, ImportAll, ImportDmaWl, ImportMem, ImportMemWl, Offscreen,
            Renderer, Texture,
        },
    },
    desktop::space::{space_render_elements, SpaceRenderElements},
    input::pointer::{CursorImageStatus, CursorImageSurfaceData},
    output::Output,
    reexports::wayland_server::protocol::wl_surface::WlSurface,
    utils::{Buffer as BufferCoord, Logical, Physical, Point, Rectangle, Scale, Size, Transform},
    wayland::compositor::with_states,
};

use lockstep_render::{Frame, PixelFormat};

use crate::state::Core;

/// The background colour behind all windows (a dark slate, so blank frames are recognisable).
pub const CLEAR_COLOR: Color32F = Color32F::new(0.12, 0.13, 0.16, 1.0);

render_elements! {
    /// Everything an output frame can contain.
    pub OutputElements<R, E> where R: ImportAll + ImportMem;
    /// Windows, popups and their subsurfaces.
    Space=SpaceRenderElements<R, E>,
    /// A client-provided cursor surface.
    Surface=WaylandSurfaceRenderElement<R>,
    /// The built-in cursor image.
    Memory=MemoryRenderBufferRenderElement<R>,
}

/// The elements of an output frame for renderer `R`.
pub type OutputElement<R> = OutputElements<R, WaylandSurfaceRenderElement<R>>;

/// The default cursor image uploaded once per renderer as needed.
pub struct DefaultCursor {
    buffer: MemoryRenderBuffer,
    hotspot: Point<i32, Physical>,
}

impl DefaultCursor {
    /// The `default` cursor of XCursor `theme` near `size` pixels, or the built-in arrow when
    /// the theme has none (logged once, with the reason).
    pub fn new(theme: &str, size: u32) -> Self {
        Self::with_image(theme, size).0
    }

    /// As [`DefaultCursor::new`], also returning the image as loaded (ARGB8888 bytes), for a
    /// cursor plane: the theme is read once and both show the same picture.
    pub fn with_image(theme: &str, size: u32) -> (Self, lockstep_render::cursor::CursorImage) {
        let (image, err) = lockstep_render::cursor::load(theme, size);
        match (&image.source, err) {
            (Some(path), _) => tracing::info!(theme, path = %path.display(), "cursor theme loaded"),
            (None, Some(err)) => tracing::info!(%err, "using the built-in arrow cursor"),
            (None, None) => {}
        }
        let buffer = MemoryRenderBuffer::from_slice(
            &image.pixels,
            Fourcc::Argb8888,
            (image.width as i32, image.height as i32),
            1,
            Transform::Normal,
            None,
        );
        let cursor = Self {
            buffer,
            hotspot: (image.hotspot.0 as i32, image.hotspot.1 as i32).into(),
        };
        (cursor, image)
    }
}

/// Where the pointer is on `output`, in physical pixels from its top-left corner, when it is
/// on that output (and has moved at all: headless outputs show no cursor before that).
pub fn pointer_on_output(core: &Core, output: &Output) -> Option<Point<f64, Physical>> {
    let geometry = core.space.output_geometry(output)?;
    let location = core
        .seat
        .get_pointer()
        .map(|p| p.current_location())
        .filter(|_| core.pointer_seen)?;
    if !geometry.to_f64().contains(location) {
        return None;
    }
    let scale = Scale::from(output.current_scale().fractional_scale());
    Some((location - geometry.loc.to_f64()).to_physical(scale))
}

/// The hotspot a client gave its cursor surface (wl_pointer.set_cursor), in logical pixels.
pub fn cursor_surface_hotspot(surface: &WlSurface) -> Point<i32, Logical> {
    with_states(surface, |states| {
        states
            .data_map
            .get::<CursorImageSurfaceData>()
            .and_then(|attrs| attrs.lock().ok().map(|a| a.hotspot))
            .unwrap_or_default()
    })
}

/// Collects the elements `output` shows now, front to back; without the pointer when
/// `cursor` is `None` (the KMS backend shows it on the cursor plane).
pub fn output_elements<R>(
    renderer: &mut R,
    core: &Core,
    cursor: Option<&DefaultCursor>,
    output: &Output,
) -> Vec<OutputElement<R>>
where
    R: Renderer + ImportAll + ImportMem + ImportMemWl + ImportDmaWl,
    R::TextureId: Clone + Send + Texture + 'static,
{
    let mut elements = Vec::new();
    let scale = Scale::from(output.current_scale().fractional_scale());
    if let (Some(relative), Some(cursor)) = (pointer_on_output(core, output), cursor) {
        match &core.cursor_status {
            CursorImageStatus::Hidden => {}
            CursorImageStatus::Named(_) => {
                let at = relative.to_i32_round() - cursor.hotspot;
                if let Ok(element) = MemoryRenderBufferRenderElement::from_buffer(
                    renderer,
                    at.to_f64(),
                    &cursor.buffer,
                    None,
                    None,
                    None,
                    Kind::Cursor,
                ) {
                    elements.push(OutputElement::Memory(element));
                }
            }
            CursorImageStatus::Surface(surface) => {
                let hotspot = cursor_surface_hotspot(surface);
                let at = (relative - hotspot.to_f64().to_physical(scale)).to_i32_round();
                elements.extend(
                    render_elements_from_surface_tree(
                        renderer,
                        surface,
                        at,
                        scale,
                        1.0,
                        Kind::Cursor,
                    )
                    .into_iter()
                    .map(OutputElement::Surface),
                );
            }
        }
    }
    if let Ok(space) = space_render_elements(renderer, [&core.space], output, 1.0) {
        elements.extend(space.into_iter().map(OutputElement::Space));
    }
    elements
}

/// Renders `output` into `framebuffer` with damage tracking; `age` is the buffer age.
pub fn render_output<'d, R>(
    renderer: &mut R,
    framebuffer: &mut R::Framebuffer<'_>,
    damage_tracker: &'d mut OutputDamageTracker,
    age: usize,
    core: &Core,
    cursor: &DefaultCursor,
    output: &Output,
) -> Result<RenderOutputResult<'d>, DamageError<R::Error>>
where
    R: Renderer + ImportAll + ImportMem + ImportMemWl + ImportDmaWl,
    R::TextureId: Clone + Send + Texture + 'static,
{
    let elements = output_elements(renderer, core, Some(cursor), output);
    damage_tracker.render_output(renderer, framebuffer, age, &elements, CLEAR_COLOR)
}

/// Reads a bound framebuffer of `size` physical pixels into memory as `format`
/// (`Xrgb8888` or `Abgr8888`: pixman reads the former, GLES the latter).
pub fn read_framebuffer<R>(
    renderer: &mut R,
    framebuffer: &R::Framebuffer<'_>,
    size: Size<i32, Physical>,
    format: Fourcc,
) -> Result<Frame, String>
where
    R: ExportMem,
{
    let pixel_format = match format {
        Fourcc::Xrgb8888 => PixelFormat::Xrgb8888,
        Fourcc::Argb8888 => PixelFormat::Argb8888,
        Fourcc::Xbgr8888 => PixelFormat::Xbgr8888,
        Fourcc::Abgr8888 => PixelFormat::Abgr8888,
        other => return Err(format!("cannot read back {other:?}")),
    };
    let region = Rectangle::<i32, BufferCoord>::from_size((size.w, size.h).into());
    let mapping = renderer
        .copy_framebuffer(framebuffer, region, format)
        .map_err(|err| format!("reading the framebuffer failed: {err}"))?;
    let bytes = renderer
        .map_texture(&mapping)
        .map_err(|err| format!("mapping the read-back failed: {err}"))?;
    Frame::new(
        size.w as u32,
        size.h as u32,
        size.w as u32 * 4,
        pixel_format,
        bytes.to_vec(),
    )
    .map_err(|err| err.to_string())
}

/// Renders `output` afresh into an offscreen buffer of `format` and reads it back:
/// screenshots on backends whose on-screen buffer cannot be read after presenting (winit;
/// GLES renderbuffers need `Abgr8888`, llvmpipe rejects BGRA storage).
pub fn render_offscreen<R, T>(
    renderer: &mut R,
    core: &Core,
    cursor: &DefaultCursor,
    output: &Output,
    format: Fourcc,
) -> Result<Frame, String>
where
    R: Renderer
        + ImportAll
        + ImportMem
        + ImportMemWl
        + ImportDmaWl
        + ExportMem
        + Offscreen<T>
        + Bind<T>,
    R::TextureId: Clone + Send + Texture + 'static,
{
    let mode = output.current_mode().ok_or("the output has no mode")?;
    let size = mode.size;
    let buffer_size = Size::<i32, BufferCoord>::from((size.w, size.h));
    let mut target: T = renderer
        .create_buffer(format, buffer_size)
        .map_err(|err| format!("cannot allocate an offscreen buffer: {err}"))?;
    let mut framebuffer = renderer
        .bind(&mut target)
        .map_err(|err| format!("cannot bind the offscreen buffer: {err}"))?;
    let mut tracker = OutputDamageTracker::new(
        size,
        output.current_scale().fractional_scale(),
        Transform::Normal,
    );
    let elements = output_elements(renderer, core, Some(cursor), output);
    tracker
        .render_output(renderer, &mut framebuffer, 0, &elements, CLEAR_COLOR)
        .map_err(|err| format!("offscreen rendering failed: {err:?}"))?;
    read_framebuffer(renderer, &framebuffer, size, format)
}
