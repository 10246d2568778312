//! lockstep-protocols: Wayland protocols lockstep implements itself.
#![warn(missing_docs)]
