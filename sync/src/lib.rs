//! lockstep-sync: fences, timelines, DRM syncobj and sync_file.
//!
//! This crate is the one place in lockstep that knows what a fence, a timeline point and a DRM
//! syncobj are. It has no Wayland or smithay dependency.
#![warn(missing_docs)]

pub mod context;
pub mod fence;
pub mod signalling;
pub mod sys;

pub use context::{ContextId, FenceContext, Seqno, SeqnoOrder};
pub use fence::{
    CallbackRegistration, Completion, Fence, FenceError, FenceSource, Timestamp, WaitTimedOut,
    WeakFence,
};
