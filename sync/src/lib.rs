//! lockstep-sync: fences, timelines, DRM syncobj and sync_file.
//!
//! This crate is the one place in lockstep that knows what a fence, a timeline point and a DRM
//! syncobj are. It has no Wayland or smithay dependency.
#![warn(missing_docs)]
