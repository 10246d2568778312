//! lockstep: a Wayland compositor that gets explicit sync exactly right.
//!
//! The binary (`main.rs`) is a thin CLI over this library; the library is also what the
//! in-process test fixture drives. Start at [`server::Server`], which builds the event loop,
//! the [`state::State`] (backend + core) and the Wayland display.

pub mod action;
pub mod backend;
pub mod bindings;
pub mod census;
pub mod client_memory;
pub mod config_watch;
pub mod dispatch;
pub mod events;
pub mod frame_clock;
pub mod handlers;
pub mod input;
pub mod ipc;
pub mod layout;
pub mod logging;
pub mod notice;
pub mod output_config;
pub mod render;
pub mod server;
pub mod session;
pub mod shell;
pub mod socket;
pub mod state;
pub mod sync_validation;
pub mod xwayland;
