//! What an output shows: the elements of one frame, for any renderer.
//!
//! Both backends and screenshots build their frames here so that what tests capture is what
//! users see. Elements go front to back: the pointer; the overlay layer; the top layer and
//! the windows (a fullscreen window above the top layer, other windows below it, as in
//! sway); the bottom layer; the background layer. Each window of the space goes from the top
//! down (its popups, its surfaces, then its border). While the session is locked an output
//! shows only the pointer, its lock surface and below that a solid colour (`[lock] color`,
//! or `abandoned_color` after the locker died): nothing else is even collected, so no
//! screenshot or screencopy can show it. Borders are solid rectangles around
//! the window geometry, `[layout] border_width` wide, in `focused_color` for the focused
//! window and `unfocused_color` for the others; fullscreen windows have none. Their element
//! ids live with the window, so the damage tracker redraws a border only when it changes.
//! X11 windows are drawn from the wl_surface `xwayland/wm.rs` paired them with; X11
//! override-redirect windows (menus, tooltips) have no border.

use smithay::{
    backend::{
        allocator::Fourcc,
        renderer::{
            damage::{Error as DamageError, OutputDamageTracker, RenderOutputResult},
            element::{
                memory::{MemoryRenderBuffer, MemoryRenderBufferRenderElement},
                render_elements,
                solid::{SolidColorBuffer, SolidColorRenderElement},
                surface::{render_elements_from_surface_tree, WaylandSurfaceRenderElement},
                AsRenderElements, Kind,
            },
            Bind, Color32F, ExportMem, ImportAll, ImportDmaWl, ImportMem, ImportMemWl, Offscreen,
            Renderer, Texture,
        },
    },
    desktop::{space::SpaceRenderElements, Window},
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
    Solid=SolidColorRenderElement,
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
    // Checked first: it is every frame's question, and asking the seat for its pointer
    // costs a handle clone and smithay's tracing span.
    if !core.pointer_seen {
        return None;
    }
    let geometry = core.space.output_geometry(output)?;
    let location = core.seat.get_pointer().map(|p| p.current_location())?;
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
    if let Some(fill) = core.lock_fill() {
        lock_elements(renderer, core, output, fill, &mut elements);
        return elements;
    }
    // The config-error banner (not while locked: then only the lock is shown).
    if let Some(banner) = core
        .space
        .output_geometry(output)
        .and_then(|geo| core.notice.image(geo.size.w))
    {
        if let Ok(element) = MemoryRenderBufferRenderElement::from_buffer(
            renderer,
            (0.0, 0.0),
            &banner,
            None,
            None,
            None,
            Kind::Unspecified,
        ) {
            elements.push(OutputElement::Memory(element));
        }
    }
    use smithay::wayland::shell::wlr_layer::Layer;
    layer_elements(renderer, core, output, Layer::Overlay, &mut elements);
    if crate::handlers::layer_shell::shows_fullscreen(core, output) {
        window_elements(renderer, core, output, &mut elements);
        layer_elements(renderer, core, output, Layer::Top, &mut elements);
    } else {
        layer_elements(renderer, core, output, Layer::Top, &mut elements);
        window_elements(renderer, core, output, &mut elements);
    }
    layer_elements(renderer, core, output, Layer::Bottom, &mut elements);
    layer_elements(renderer, core, output, Layer::Background, &mut elements);

    elements
}

/// Adds the layer surfaces of `output` on `layer` (with their popups), topmost first.
fn layer_elements<R>(
    renderer: &mut R,
    core: &Core,
    output: &Output,
    layer: smithay::wayland::shell::wlr_layer::Layer,
    elements: &mut Vec<OutputElement<R>>,
) where
    R: Renderer + ImportAll + ImportMem,
    R::TextureId: Clone + Send + Texture + 'static,
{
    let Some((output_geo, scale)) = geometry_and_scale(core, output) else {
        return;
    };
    for (surface, geometry) in crate::handlers::layer_shell::layers_on(core, output, layer) {
        let origin = geometry.loc - surface.bbox().loc - output_geo.loc;
        elements.extend(
            AsRenderElements::<R>::render_elements::<WaylandSurfaceRenderElement<R>>(
                &surface,
                renderer,
                origin.to_physical_precise_round(scale),
                scale,
                1.0,
            )
            .into_iter()
            .map(OutputElement::Surface),
        );
    }
}

/// Where `output` is in the space, and its scale.
fn geometry_and_scale(
    core: &Core,
    output: &Output,
) -> Option<(Rectangle<i32, Logical>, Scale<f64>)> {
    let geometry = core.space.output_geometry(output)?;
    Some((
        geometry,
        Scale::from(output.current_scale().fractional_scale()),
    ))
}

/// The solid colour behind a lock surface (output user data), kept so its damage is tracked.
struct LockFill(std::cell::RefCell<SolidColorBuffer>);

/// What a locked output shows: its lock surface over a solid colour.
fn lock_elements<R>(
    renderer: &mut R,
    core: &Core,
    output: &Output,
    rgb: (u8, u8, u8),
    elements: &mut Vec<OutputElement<R>>,
) where
    R: Renderer + ImportAll + ImportMem,
    R::TextureId: Clone + Send + Texture + 'static,
{
    let Some((output_geo, scale)) = geometry_and_scale(core, output) else {
        return;
    };
    if let Some(lock) = core.protocols.session_lock.surface_on(&output.name()) {
        elements.extend(
            render_elements_from_surface_tree(
                renderer,
                lock.wl_surface(),
                Point::<i32, Physical>::from((0, 0)),
                scale,
                1.0,
                Kind::Unspecified,
            )
            .into_iter()
            .map(OutputElement::Surface),
        );
    }
    output
        .user_data()
        .insert_if_missing(|| LockFill(std::cell::RefCell::new(SolidColorBuffer::default())));
    let Some(fill) = output.user_data().get::<LockFill>() else {
        return;
    };
    let mut buffer = fill.0.borrow_mut();
    buffer.update(output_geo.size, rgb_colour(rgb));
    elements.push(OutputElement::Solid(SolidColorRenderElement::from_buffer(
        &buffer,
        Point::<i32, Physical>::from((0, 0)),
        scale,
        1.0,
        Kind::Unspecified,
    )));
}

/// The four border pieces of a window (window user data): top, bottom, left, right.
struct Border(std::cell::RefCell<[SolidColorBuffer; 4]>);

/// `"#rrggbb"` as a colour (grey if the text is not one; the config validates it).
fn colour(text: &str) -> Color32F {
    rgb_colour(lockstep_config::parse_color(text).unwrap_or((0x55, 0x55, 0x55)))
}

/// An opaque colour from 8-bit red, green and blue.
fn rgb_colour((r, g, b): (u8, u8, u8)) -> Color32F {
    Color32F::new(
        f32::from(r) / 255.0,
        f32::from(g) / 255.0,
        f32::from(b) / 255.0,
        1.0,
    )
}

/// Adds the windows shown on `output`, top first, each followed by its border.
fn window_elements<R>(
    renderer: &mut R,
    core: &Core,
    output: &Output,
    elements: &mut Vec<OutputElement<R>>,
) where
    R: Renderer + ImportAll + ImportMem,
    R::TextureId: Clone + Send + Texture + 'static,
{
    let Some((output_geo, scale)) = geometry_and_scale(core, output) else {
        return;
    };
    let width = core.layout.config().border_width.max(0);
    let focused = core.layout.focused();
    let (focused_colour, unfocused_colour) = (
        colour(&core.config.layout.focused_color),
        colour(&core.config.layout.unfocused_color),
    );
    for window in core.space.elements().rev() {
        let Some(location) = core.space.element_location(window) else {
            continue;
        };
        let geometry = window.geometry();
        let mut bbox = window.bbox_with_popups();
        bbox.loc += location - geometry.loc;
        let framed = Rectangle::new(location, geometry.size);
        let with_border = Rectangle::new(
            framed.loc - Point::from((width, width)),
            framed.size + Size::from((2 * width, 2 * width)),
        );
        if !bbox.overlaps(output_geo) && !with_border.overlaps(output_geo) {
            continue;
        }
        let render_location =
            (location - geometry.loc - output_geo.loc).to_physical_precise_round(scale);
        elements.extend(
            AsRenderElements::<R>::render_elements::<WaylandSurfaceRenderElement<R>>(
                window,
                renderer,
                render_location,
                scale,
                1.0,
            )
            .into_iter()
            .map(OutputElement::Surface),
        );
        if let Some(surface) = crate::xwayland::wm::surface_to_draw(window) {
            // An X11 window of an Xwayland older than 23.1 (see `xwayland/wm.rs`).
            elements.extend(
                render_elements_from_surface_tree(
                    renderer,
                    &surface,
                    render_location,
                    scale,
                    1.0,
                    Kind::Unspecified,
                )
                .into_iter()
                .map(OutputElement::Surface),
            );
        }
        let id = crate::shell::id_of(window);
        let fullscreen = id.and_then(|id| core.layout.kind_of(id))
            == Some(crate::layout::PlacementKind::Fullscreen);
        // Windows outside the layout (X11 menus and tooltips) have no border.
        if width == 0 || fullscreen || id.is_none() {
            continue;
        }
        let colour = if id.is_some() && id == focused {
            focused_colour
        } else {
            unfocused_colour
        };
        border_elements(
            window,
            framed,
            width,
            colour,
            output_geo.loc,
            scale,
            elements,
        );
    }
}

/// The four solid rectangles around `framed` (global logical coordinates).
fn border_elements<R>(
    window: &Window,
    framed: Rectangle<i32, Logical>,
    width: i32,
    colour: Color32F,
    origin: Point<i32, Logical>,
    scale: Scale<f64>,
    elements: &mut Vec<OutputElement<R>>,
) where
    R: Renderer + ImportAll + ImportMem,
    R::TextureId: Clone + Send + Texture + 'static,
{
    let (x, y, w, h) = (framed.loc.x, framed.loc.y, framed.size.w, framed.size.h);
    let pieces: [Rectangle<i32, Logical>; 4] = [
        Rectangle::new((x - width, y - width).into(), (w + 2 * width, width).into()),
        Rectangle::new((x - width, y + h).into(), (w + 2 * width, width).into()),
        Rectangle::new((x - width, y).into(), (width, h).into()),
        Rectangle::new((x + w, y).into(), (width, h).into()),
    ];
    window
        .user_data()
        .insert_if_missing(|| Border(std::cell::RefCell::new(Default::default())));
    let Some(border) = window.user_data().get::<Border>() else {
        return;
    };
    let mut buffers = border.0.borrow_mut();
    for (buffer, piece) in buffers.iter_mut().zip(pieces) {
        buffer.update(piece.size, colour);
        let at = (piece.loc - origin).to_physical_precise_round(scale);
        elements.push(OutputElement::Solid(SolidColorRenderElement::from_buffer(
            buffer,
            at,
            scale,
            1.0,
            Kind::Unspecified,
        )));
    }
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

/// What GL_RENDERER says for `renderer` (`llvmpipe (LLVM 15.0.6, 256 bits)`), for logs and
/// `lockstep msg outputs`.
pub fn gl_renderer_name(renderer: &mut smithay::backend::renderer::gles::GlesRenderer) -> String {
    renderer
        .with_context(|gl| {
            // SAFETY: `with_context` makes the context current; GetString returns a static
            // NUL-terminated string, or null on error.
            unsafe {
                let ptr = gl.GetString(smithay::backend::renderer::gles::ffi::RENDERER);
                (!ptr.is_null()).then(|| {
                    std::ffi::CStr::from_ptr(ptr.cast())
                        .to_string_lossy()
                        .into_owned()
                })
            }
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| "unknown".into())
}
