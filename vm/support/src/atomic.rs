//! Atomic KMS requests with explicit fences: `IN_FENCE_FD` on planes, `OUT_FENCE_PTR` on CRTCs.
//!
//! The compositor's own KMS code is what lockstep tests; this builder exists so a guest test
//! can set up a display state or check kernel behaviour around it (a flip that waits for a
//! sw_sync fence, an out-fence that signals at vblank) in a few lines:
//!
//! ```no_run
//! use std::time::Duration;
//! use lockstep_vm_support::atomic::{AtomicFlags, AtomicRequest, ObjectKind};
//! use lockstep_vm_support::drm::{DrmNode, NodeKind};
//! use lockstep_vm_support::kms::ObjectId;
//! use lockstep_vm_support::sw_sync::SwTimeline;
//!
//! # fn f(vkms: &DrmNode, crtc: ObjectId, plane: ObjectId, fb: ObjectId) -> lockstep_vm_support::Result<()> {
//! let gpu = SwTimeline::new()?;
//! let acquire = gpu.fence(1, "client render")?;
//! let mut flip = AtomicRequest::new(vkms)?;
//! flip.set(plane, ObjectKind::Plane, "FB_ID", u64::from(fb.0))?;
//! flip.in_fence(plane, &acquire)?;
//! flip.out_fence(crtc)?;
//! let out = flip.commit(AtomicFlags::NONBLOCK)?.out_fence.expect("asked for an out-fence");
//! assert!(!out.wait(Duration::from_millis(100))?); // the flip waits for the client
//! gpu.advance(1)?;
//! assert!(out.wait(Duration::from_secs(1))?);
//! # Ok(()) }
//! ```

use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use crate::drm::DrmNode;
use crate::kms::{self, Mode, ObjectId};
use crate::sw_sync::SyncFile;
use crate::sys;
use crate::{Error, Result};

/// The kind of a KMS object, for property lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A CRTC.
    Crtc,
    /// A connector.
    Connector,
    /// A plane.
    Plane,
}

impl ObjectKind {
    fn raw(self) -> u32 {
        match self {
            Self::Crtc => sys::DRM_MODE_OBJECT_CRTC,
            Self::Connector => sys::DRM_MODE_OBJECT_CONNECTOR,
            Self::Plane => sys::DRM_MODE_OBJECT_PLANE,
        }
    }
}

/// `DRM_MODE_ATOMIC_*` / `DRM_MODE_PAGE_FLIP_*` flags of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AtomicFlags(pub u32);

impl AtomicFlags {
    /// Blocking commit without modeset.
    pub const NONE: Self = Self(0);
    /// `DRM_MODE_ATOMIC_TEST_ONLY`: check, change nothing.
    pub const TEST_ONLY: Self = Self(0x100);
    /// `DRM_MODE_ATOMIC_NONBLOCK`: return before the commit completes.
    pub const NONBLOCK: Self = Self(0x200);
    /// `DRM_MODE_ATOMIC_ALLOW_MODESET`.
    pub const ALLOW_MODESET: Self = Self(0x400);
}

impl std::ops::BitOr for AtomicFlags {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// A mode as a property blob (`MODE_ID`), destroyed on drop.
#[derive(Debug)]
pub struct ModeBlob<'d> {
    dev: &'d DrmNode,
    id: u32,
}

impl<'d> ModeBlob<'d> {
    /// Creates the blob for `mode` on `dev`.
    pub fn new(dev: &'d DrmNode, mode: &Mode) -> Result<Self> {
        let info = mode.raw();
        let mut arg = sys::DrmModeCreateBlob {
            data: std::ptr::from_ref(info) as u64,
            length: std::mem::size_of_val(info) as u32,
            blob_id: 0,
        };
        // SAFETY: dev is an open DRM node; DrmModeCreateBlob is struct drm_mode_create_blob;
        // `data` points at one drm_mode_modeinfo of `length` bytes, alive during the call.
        unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_MODE_CREATEPROPBLOB }, _>(
                dev.as_fd(),
                "DRM_IOCTL_MODE_CREATEPROPBLOB",
                &mut arg,
            )
        }?;
        Ok(Self {
            dev,
            id: arg.blob_id,
        })
    }

    /// The blob id, the value for a CRTC's `MODE_ID`.
    pub fn id(&self) -> u64 {
        u64::from(self.id)
    }
}

impl Drop for ModeBlob<'_> {
    fn drop(&mut self) {
        let mut id = self.id;
        // SAFETY: self.dev is an open DRM node and id a blob on it, destroyed only here;
        // DESTROYPROPBLOB takes the __u32 id. A failure only leaks it until close.
        let _ = unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_MODE_DESTROYPROPBLOB }, _>(
                self.dev.as_fd(),
                "DRM_IOCTL_MODE_DESTROYPROPBLOB",
                &mut id,
            )
        };
    }
}

/// An atomic request under construction. Property names are looked up on the object;
/// properties of one object are grouped as the ioctl requires, whatever the order of `set`.
/// `'a` ties the request to the fences it passes to the kernel.
#[derive(Debug)]
pub struct AtomicRequest<'d, 'a> {
    dev: &'d DrmNode,
    /// (object id, [(property id, value)]), in first-use order.
    objects: Vec<(u32, Vec<(u32, u64)>)>,
    /// Where the kernel writes the CRTC out-fence fd (boxed: its address is a property value).
    out_fence: Option<Box<i32>>,
    /// Where the kernel writes the writeback job's fence fd.
    writeback_fence: Option<Box<i32>>,
    fences: PhantomData<&'a SyncFile>,
}

impl<'d, 'a> AtomicRequest<'d, 'a> {
    /// An empty request on `dev`. Turns on the atomic client caps of the fd
    /// ([`kms::enable_atomic`]).
    pub fn new(dev: &'d DrmNode) -> Result<Self> {
        kms::enable_atomic(dev)?;
        Ok(Self {
            dev,
            objects: Vec::new(),
            out_fence: None,
            writeback_fence: None,
            fences: PhantomData,
        })
    }

    /// Sets property `name` of `obj` to `value`.
    pub fn set(
        &mut self,
        obj: ObjectId,
        kind: ObjectKind,
        name: &str,
        value: u64,
    ) -> Result<&mut Self> {
        let props = kms::properties(self.dev, obj, kind.raw())?;
        let prop = props.iter().find(|p| p.name == name).ok_or_else(|| {
            Error::Unsupported(format!("{kind:?} {} has no property {name:?}", obj.0))
        })?;
        let index = match self.objects.iter().position(|(o, _)| *o == obj.0) {
            Some(index) => index,
            None => {
                self.objects.push((obj.0, Vec::new()));
                self.objects.len() - 1
            }
        };
        let slot = &mut self.objects[index].1;
        slot.retain(|(id, _)| *id != prop.id.0);
        slot.push((prop.id.0, value));
        Ok(self)
    }

    /// Makes `plane` wait for `fence` before scanning out its new framebuffer (`IN_FENCE_FD`).
    pub fn in_fence(&mut self, plane: ObjectId, fence: &'a SyncFile) -> Result<&mut Self> {
        let fd = fence.as_fd().as_raw_fd();
        self.set(plane, ObjectKind::Plane, "IN_FENCE_FD", fd as u64)
    }

    /// Asks for an out-fence on `crtc` (`OUT_FENCE_PTR`): signalled when the commit is on
    /// screen. [`AtomicRequest::commit`] returns it.
    pub fn out_fence(&mut self, crtc: ObjectId) -> Result<&mut Self> {
        let slot = self.out_fence.insert(Box::new(-1));
        let ptr = std::ptr::from_mut::<i32>(slot) as u64;
        self.set(crtc, ObjectKind::Crtc, "OUT_FENCE_PTR", ptr)
    }

    /// Routes `crtc` to writeback `connector`, capturing the composed frame into `fb`
    /// (`CRTC_ID`, `WRITEBACK_FB_ID`, `WRITEBACK_OUT_FENCE_PTR`); [`Committed::writeback`]
    /// signals when `fb` holds the frame. In vkms 6.12 the CRTC cannot drive the Virtual
    /// connector at the same time: set that one's `CRTC_ID` to 0 in the same request.
    pub fn writeback(
        &mut self,
        connector: ObjectId,
        crtc: ObjectId,
        fb: ObjectId,
    ) -> Result<&mut Self> {
        let c = ObjectKind::Connector;
        self.set(connector, c, "CRTC_ID", u64::from(crtc.0))?;
        self.set(connector, c, "WRITEBACK_FB_ID", u64::from(fb.0))?;
        let slot = self.writeback_fence.insert(Box::new(-1));
        let ptr = std::ptr::from_mut::<i32>(slot) as u64;
        self.set(connector, c, "WRITEBACK_OUT_FENCE_PTR", ptr)
    }

    /// Shows `fb` full-screen-size on `plane` of `crtc`: FB_ID, CRTC_ID, SRC_* (16.16) and
    /// CRTC_* for a `width`×`height` framebuffer at (0, 0).
    pub fn show_fb(
        &mut self,
        plane: ObjectId,
        crtc: ObjectId,
        fb: ObjectId,
        (width, height): (u32, u32),
    ) -> Result<&mut Self> {
        let p = ObjectKind::Plane;
        self.set(plane, p, "FB_ID", u64::from(fb.0))?;
        self.set(plane, p, "CRTC_ID", u64::from(crtc.0))?;
        self.set(plane, p, "SRC_X", 0)?;
        self.set(plane, p, "SRC_Y", 0)?;
        self.set(plane, p, "SRC_W", u64::from(width) << 16)?;
        self.set(plane, p, "SRC_H", u64::from(height) << 16)?;
        self.set(plane, p, "CRTC_X", 0)?;
        self.set(plane, p, "CRTC_Y", 0)?;
        self.set(plane, p, "CRTC_W", u64::from(width))?;
        self.set(plane, p, "CRTC_H", u64::from(height))
    }

    /// Commits. Returns the fences asked for.
    pub fn commit(mut self, flags: AtomicFlags) -> Result<Committed> {
        let mut objs: Vec<u32> = Vec::new();
        let mut counts: Vec<u32> = Vec::new();
        let mut props: Vec<u32> = Vec::new();
        let mut values: Vec<u64> = Vec::new();
        for (obj, list) in &self.objects {
            objs.push(*obj);
            counts.push(list.len() as u32);
            props.extend(list.iter().map(|(p, _)| *p));
            values.extend(list.iter().map(|(_, v)| *v));
        }
        let mut arg = sys::DrmModeAtomic {
            flags: flags.0,
            count_objs: objs.len() as u32,
            objs_ptr: objs.as_mut_ptr() as u64,
            count_props_ptr: counts.as_mut_ptr() as u64,
            props_ptr: props.as_mut_ptr() as u64,
            prop_values_ptr: values.as_mut_ptr() as u64,
            ..Default::default()
        };
        // The ioctl's pointers: OUT_FENCE_PTR and WRITEBACK_OUT_FENCE_PTR values point at the
        // boxed i32s in self, alive as long as self; IN_FENCE_FD values are fds of SyncFiles
        // borrowed for 'a.
        // SAFETY: self.dev is an open DRM node with the atomic cap; `arg` is struct
        // drm_mode_atomic whose four arrays (objs, counts; props, values) outlive the call with
        // the counts it states; the fence pointers and fds are valid as said just above.
        unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_MODE_ATOMIC }, _>(
                self.dev.as_fd(),
                "DRM_IOCTL_MODE_ATOMIC",
                &mut arg,
            )
        }?;
        Ok(Committed {
            out_fence: take_fence(self.out_fence.take()),
            writeback: take_fence(self.writeback_fence.take()),
        })
    }
}

/// What a successful commit hands back.
#[derive(Debug)]
pub struct Committed {
    /// The CRTC out-fence ([`AtomicRequest::out_fence`]): signals when the commit is on
    /// screen.
    pub out_fence: Option<SyncFile>,
    /// The writeback fence ([`AtomicRequest::writeback`]): signals when the capture is done.
    pub writeback: Option<SyncFile>,
}

/// Takes ownership of an fd the kernel wrote into an `*_OUT_FENCE_PTR` slot.
fn take_fence(slot: Option<Box<i32>>) -> Option<SyncFile> {
    match slot {
        // SAFETY: after a successful commit the kernel stored a new sync_file fd in the slot
        // that nobody else owns; TEST_ONLY leaves it at -1.
        Some(fd) if *fd >= 0 => Some(SyncFile::from_fd(unsafe { OwnedFd::from_raw_fd(*fd) })),
        _ => None,
    }
}
