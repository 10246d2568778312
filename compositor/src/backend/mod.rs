//! Backends: how frames reach a screen.
//!
//! `Backend` is an enum whose methods match and forward; each backend takes `&mut Core` so
//! borrows of backend and core stay split.

pub mod headless;
pub mod kms;
pub mod kms_feedback;
pub mod kms_gles;
pub mod kms_scanout;
pub mod libinput;
pub mod session;
pub mod winit;

use anyhow::Result;
use lockstep_render::Frame;
use smithay::output::Output;

use crate::{frame_clock::RenderOutcome, state::Core};

/// The backend in use.
pub enum Backend {
    /// Virtual outputs rendered with pixman into memory.
    Headless(headless::Headless),
    /// One output shown in a window of the host's display server.
    Winit(Box<winit::Winit>),
    /// DRM/KMS outputs: a session on a TTY.
    Kms(Box<kms::Kms>),
}

impl Backend {
    /// A short name for logs and IPC.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Headless(_) => "headless",
            Backend::Winit(_) => "winit",
            Backend::Kms(_) => "kms",
        }
    }

    /// What composites frames: `pixman`, or `gles (GL_RENDERER)`.
    pub fn renderer_name(&self) -> String {
        match self {
            Backend::Headless(_) => "pixman".into(),
            Backend::Winit(b) => b.renderer_name(),
            Backend::Kms(b) => b.renderer_name(),
        }
    }

    /// Renders `output` (only what is damaged).
    pub fn render(&mut self, core: &mut Core, output: &Output) -> Result<RenderOutcome> {
        match self {
            Backend::Headless(b) => b.render(core, output),
            Backend::Winit(b) => b.render(core, output),
            Backend::Kms(b) => b.render(core, output),
        }
    }

    /// The fence of the last frame that may still be reading client buffers (see
    /// `handlers/drm_syncobj.rs`, "Release"); `None` when the renderer is done with them.
    pub fn release_fence(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        match self {
            Backend::Headless(_) => None,
            Backend::Winit(b) => b.release_fence(),
            Backend::Kms(b) => b.release_fence(),
        }
    }

    /// Whether release points follow render fences, so the release queue is emptied every
    /// loop iteration rather than after frames.
    pub fn releases_follow_fences(&self) -> bool {
        match self {
            Backend::Kms(b) => b.native_fences(),
            _ => false,
        }
    }

    /// Makes `output`'s next frame a full redraw (it was off).
    pub fn full_redraw(&mut self, output: &Output) {
        match self {
            Backend::Headless(b) => b.full_redraw(output),
            Backend::Winit(b) => b.full_redraw(),
            Backend::Kms(b) => b.full_redraw(output),
        }
    }

    /// What `output` shows, in memory.
    pub fn capture(&mut self, core: &mut Core, output: &Output) -> Result<Frame> {
        match self {
            Backend::Headless(b) => b.capture(core, output),
            Backend::Winit(b) => b.capture(core, output),
            Backend::Kms(b) => b.capture(core, output),
        }
    }
}
