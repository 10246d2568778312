//! Client buffers on planes: which surface's dmabuf may go on the primary or an overlay
//! plane as it is (`scanout_candidate`), how the pipeline sees it (`SurfaceScanout`
//! implements `ScanoutBuffer`), and how its release point follows it there (`SurfaceLease`:
//! the replacing commit's out-fence is imported into the release point, or the CPU signals
//! it at the flip; a buffer that is still the surface's current one gets its point back).
//!
//! Split out of `kms.rs`, which decides per frame what the pipeline shows.

use std::{
    hash::{Hash, Hasher},
    os::fd::{BorrowedFd, OwnedFd},
};

use anyhow::Result;
use lockstep_protocols::linux_drm_syncobj_v1::{ReleasePoint, SyncobjCachedState};
use lockstep_render::kms::{BufferKey, DmabufDesc, DmabufPlane, Lease, ScanoutBuffer};
use lockstep_sync::Timeline;
use smithay::{
    backend::{
        allocator::{dmabuf::Dmabuf, Buffer as _, Fourcc},
        renderer::{
            element::{Element, Id},
            utils::{with_renderer_surface_state, Buffer},
        },
    },
    output::Output,
    reexports::wayland_server::{protocol::wl_surface::WlSurface, Resource, Weak},
    utils::{Rectangle, Transform},
    wayland::{compositor::with_states, dmabuf::get_dmabuf},
};
use tracing::debug;

use crate::state::Core;

/// A client surface whose dmabuf can go on a plane as it is, with where it goes: the
/// topmost element, one surface without popups, unscaled and untransformed, opaque, inside
/// the output. Covering the whole output it can replace the composited frame (primary
/// plane); otherwise it can sit on an overlay plane above it.
pub(super) fn scanout_candidate<E: Element>(
    core: &Core,
    output: &Output,
    elements: &[E],
    fenced_releases: bool,
) -> Option<(SurfaceScanout, Rectangle<i32, smithay::utils::Physical>)> {
    let top = elements.first()?;
    let window = core.space.elements_for_output(output).next_back()?;
    let surface = window.toplevel()?.wl_surface().clone();
    if top.id() != &Id::from_wayland_resource(&surface) {
        return None;
    }
    if !smithay::wayland::compositor::get_children(&surface).is_empty()
        || smithay::desktop::PopupManager::popups_for_surface(&surface)
            .next()
            .is_some()
    {
        return None;
    }
    let mode = output.current_mode()?;
    let full = Rectangle::from_size(mode.size);
    let scale = smithay::utils::Scale::from(output.current_scale().fractional_scale());
    let geometry = top.geometry(scale);
    if !full.contains_rect(geometry) || top.transform() != Transform::Normal {
        return None;
    }
    let buffer = with_renderer_surface_state(&surface, |s| s.buffer().cloned()).flatten()?;
    let dmabuf = get_dmabuf(&buffer).ok()?.clone();
    let size = dmabuf.size();
    let src = top.src();
    let unscaled = (size.w, size.h) == (geometry.size.w, geometry.size.h)
        && src.loc == (0.0, 0.0).into()
        && (src.size.w, src.size.h) == (f64::from(size.w), f64::from(size.h));
    if !unscaled {
        return None;
    }
    let format = dmabuf.format();
    let local = Rectangle::from_size(geometry.size);
    let opaque = matches!(format.code, Fourcc::Xrgb8888 | Fourcc::Xbgr8888)
        || top
            .opaque_regions(scale)
            .iter()
            .any(|r| r.contains_rect(local));
    if !opaque {
        return None;
    }
    let (acquire, release) = with_states(&surface, |states| {
        let mut cached = states.cached_state.get::<SyncobjCachedState>();
        let current = cached.current();
        (
            current.acquire.as_ref().map(|a| a.point.clone()),
            current
                .release
                .as_ref()
                .and_then(|r| r.point())
                .map(|p| p.point.0),
        )
    });
    Some((
        SurfaceScanout {
            label: format!(
                "surface {} ({}x{} {:?})",
                surface.id().protocol_id(),
                size.w,
                size.h,
                format.code
            ),
            surface,
            buffer,
            dmabuf,
            acquire,
            release,
            fenced_releases,
        },
        geometry,
    ))
}

/// A client surface's current dmabuf, offered to a plane.
pub(super) struct SurfaceScanout {
    surface: WlSurface,
    buffer: Buffer,
    dmabuf: Dmabuf,
    acquire: Option<lockstep_sync::TimelinePoint>,
    release: Option<u64>,
    label: String,
    fenced_releases: bool,
}

fn hash_of(value: impl Hash) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

impl SurfaceScanout {
    /// Whether the client accepts tearing for this surface (wp_tearing_control_v1 `async`).
    pub(super) fn allows_tearing(&self) -> bool {
        lockstep_protocols::wp_tearing_control::presentation_hint(&self.surface).allow_tearing
    }

    /// The DRM fourcc code of the buffer.
    pub(super) fn fourcc(&self) -> u32 {
        self.dmabuf.format().code as u32
    }
}

impl ScanoutBuffer for SurfaceScanout {
    fn buffer_key(&self) -> BufferKey {
        BufferKey(hash_of(self.buffer.id()))
    }

    fn commit_key(&self) -> u64 {
        hash_of((self.buffer.id(), self.release))
    }

    fn liveness(&self) -> Box<dyn Fn() -> bool> {
        let weak: Weak<_> = self.buffer.downgrade();
        Box::new(move || weak.upgrade().is_ok())
    }

    fn dmabuf(&self) -> DmabufDesc<'_> {
        let size = self.dmabuf.size();
        let format = self.dmabuf.format();
        DmabufDesc {
            size: (size.w as u32, size.h as u32),
            format: format.code as u32,
            modifier: u64::from(format.modifier),
            planes: self
                .dmabuf
                .handles()
                .zip(self.dmabuf.offsets())
                .zip(self.dmabuf.strides())
                .map(|((fd, offset), stride)| DmabufPlane { fd, offset, stride })
                .collect(),
        }
    }

    fn export_acquire(&self) -> Result<Option<OwnedFd>, String> {
        match &self.acquire {
            Some(point) => match &point.timeline {
                Timeline::Drm(timeline) => timeline
                    .export_sync_file(point.point)
                    .map(|file| Some(file.into_fd()))
                    .map_err(|e| format!("exporting acquire point {}: {e}", point.point.0)),
                Timeline::Soft(_) => Ok(None),
            },
            None => Ok(None),
        }
    }

    fn lease(&self) -> Result<Box<dyn Lease>, String> {
        if !self.surface.is_alive() {
            return Err("the surface is gone".into());
        }
        let release = with_states(&self.surface, |states| {
            states
                .cached_state
                .get::<SyncobjCachedState>()
                .current()
                .release
                .take()
        });
        Ok(Box::new(SurfaceLease {
            surface: self.surface.downgrade(),
            buffer: Some(self.buffer.clone()),
            release,
            fenced: self.fenced_releases,
        }))
    }

    fn label(&self) -> String {
        self.label.clone()
    }
}

/// A buffer on a plane: holds its `wl_buffer.release` (the smithay buffer) and its release
/// point. When the lease ends and the buffer is still the surface's current one (it left the
/// plane for composition, or a prepare was rolled back), the release point goes back to the
/// surface; otherwise dropping it signals it.
pub(super) struct SurfaceLease {
    surface: Weak<WlSurface>,
    buffer: Option<Buffer>,
    release: Option<ReleasePoint>,
    /// Whether the out-fence may be imported into the release point.
    fenced: bool,
}

impl SurfaceLease {
    /// Whether the leased buffer is still its surface's current buffer.
    fn still_current(&self) -> bool {
        let (Ok(surface), Some(buffer)) = (self.surface.upgrade(), &self.buffer) else {
            return false;
        };
        with_renderer_surface_state(&surface, |s| {
            s.buffer().is_some_and(|b| b.id() == buffer.id())
        })
        .unwrap_or(false)
    }
}

impl Lease for SurfaceLease {
    /// The replacing commit's out-fence goes into the release point (a kernel timeline):
    /// the display engine signals it at the flip. Not when the buffer is still current (it
    /// left the plane for composition and may be read again).
    fn release_after(&mut self, out_fence: BorrowedFd<'_>) -> bool {
        if !self.fenced || self.still_current() {
            return false;
        }
        let Some(release) = &self.release else {
            return false;
        };
        let Some(point) = release.point() else {
            return false;
        };
        let Timeline::Drm(timeline) = &point.timeline else {
            return false;
        };
        let file = match out_fence
            .try_clone_to_owned()
            .map_err(|e| e.to_string())
            .and_then(|fd| lockstep_sync::SyncFile::from_fd(fd).map_err(|e| e.to_string()))
        {
            Ok(file) => file,
            Err(err) => {
                debug!(%err, "cannot use the out-fence; the release is signalled at the flip");
                return false;
            }
        };
        match timeline.import_sync_file(point.point, &file) {
            Ok(()) => {
                if let Some(release) = self.release.take() {
                    release.discard();
                }
                true
            }
            Err(err) => {
                debug!(%err, "cannot import the out-fence; the release is signalled at the flip");
                false
            }
        }
    }
}

impl Drop for SurfaceLease {
    fn drop(&mut self) {
        let Some(release) = self.release.take() else {
            return;
        };
        let buffer = self.buffer.take();
        if let (Ok(surface), Some(buffer)) = (self.surface.upgrade(), buffer) {
            let current = with_renderer_surface_state(&surface, |s| {
                s.buffer().is_some_and(|b| b.id() == buffer.id())
            })
            .unwrap_or(false);
            if current {
                let back = with_states(&surface, |states| {
                    let mut cached = states.cached_state.get::<SyncobjCachedState>();
                    let slot = &mut cached.current().release;
                    if slot.is_none() {
                        *slot = Some(release);
                        None
                    } else {
                        Some(release)
                    }
                });
                drop(back);
                return;
            }
        }
        drop(release);
    }
}
