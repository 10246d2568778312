//! Protocol handlers, one file per protocol; the small ones that only need a getter are here.

pub mod compositor;
pub mod dmabuf;
pub mod drm_syncobj;
pub mod screencopy;
pub mod seat;
pub mod shm;
pub mod xdg_shell;

use smithay::{
    delegate_output, delegate_presentation, delegate_viewporter, wayland::output::OutputHandler,
};

use crate::state::State;

impl OutputHandler for State {}
delegate_output!(State);
delegate_presentation!(State);
delegate_viewporter!(State);
