//! lockstep-sync: fences, timelines, DRM syncobj and sync_file.
//!
//! This crate is the one place in lockstep that knows what a fence, a timeline point and a DRM
//! syncobj are. It has no Wayland or smithay dependency.
//!
//! # Layers
//!
//! * [`fence`], [`context`], [`signalling`]: lockstep's own fences (self-contained, inline
//!   lock, callbacks), issuer contexts with 64-bit or wrapping 32-bit order, and the rule that
//!   signalling paths never wait.
//! * [`sys`] (raw ioctls, every `unsafe` of the crate) → [`syncobj`], [`sync_file`],
//!   [`sw_sync`]: typed kernel objects, every handle released exactly once.
//! * [`device`] and [`probe`]: the [`SyncDevice`] trait, DRM nodes found by driver name, and
//!   what a device can do (with reasons for what it cannot).
//! * [`timeline`]: [`SoftTimeline`] (userspace, the reference model) and [`DrmTimeline`]
//!   (kernel) with one documented set of rules.
//! * `event_loop` (feature `calloop`): one-shot calloop sources that wait for a point, a
//!   sync_file or a [`Fence`] without blocking and without threads.
//!
//! # Example
//!
//! ```
//! use lockstep_sync::{Point, SoftTimeline, WaitMode};
//!
//! let timeline = SoftTimeline::new();
//! let acquire = timeline.wait(Point(1), WaitMode::SubmittedThenSignalled)?;
//! timeline.signal(Point(1));
//! assert!(acquire.is_signalled());
//! # Ok::<(), lockstep_sync::TimelineError>(())
//! ```
#![warn(missing_docs)]

pub mod context;
pub mod device;
#[cfg(feature = "calloop")]
pub mod event_loop;
pub mod fence;
pub mod probe;
pub mod signalling;
pub mod sw_sync;
pub mod sync_file;
pub mod syncobj;
pub mod sys;
pub mod timeline;

pub use context::{ContextId, FenceContext, Seqno, SeqnoOrder};
pub use device::{DeviceError, DrmDevice, DrmNode, NodeKind, SyncDevice};
pub use fence::{
    CallbackRegistration, Completion, Fence, FenceError, FenceSource, Timestamp, WaitTimedOut,
    WeakFence,
};
pub use probe::Capabilities;
pub use sync_file::{SyncFile, SyncFileError, SyncFileStatus};
pub use syncobj::{PointEvent, Syncobj, SyncobjError, SyncobjHandle, WaitMode};
pub use timeline::{DrmTimeline, Point, SoftTimeline, Timeline, TimelineError, TimelinePoint};
