//! zwlr_screencopy_manager_v1 (lockstep-protocols) wired to the backends: `copy` is answered
//! from the output's current frame at once; `copy_with_damage` waits for the next frame that
//! has damage.
//!
//! Waiting requests are bounded, since each one holds the client's buffer (and its pool's
//! mapping) and costs a copy at the next damaged frame:
//! - at most [`MAX_PENDING_PER_CLIENT`] per client; one more fails at once (`failed`, which
//!   the protocol allows at any time; recorders keep one or two in flight);
//! - a request whose frame object was destroyed, whose client is gone or whose output was
//!   unplugged is dropped at the end of that loop iteration ([`State::prune_screencopies`]),
//!   which releases the buffer and its fd;
//! - the output is captured once per damaged frame, however many requests wait for it.

use lockstep_protocols::{
    delegate_wlr_screencopy,
    wlr_screencopy::{Screencopy, ScreencopyHandler, ScreencopyManagerState},
};
use smithay::{output::Output, reexports::wayland_server::Resource};
use tracing::{debug, warn};

use crate::state::State;

/// A `copy_with_damage` request waiting for its output's next damaged frame.
pub type PendingScreencopy = Screencopy;

/// How many `copy_with_damage` requests one client may have waiting.
pub const MAX_PENDING_PER_CLIENT: usize = 16;

impl ScreencopyHandler for State {
    fn screencopy_state(&mut self) -> &mut ScreencopyManagerState {
        &mut self.core.screencopy_state
    }

    fn frame(&mut self, frame: Screencopy) {
        if frame.with_damage() {
            self.prune_screencopies();
            let id = frame.frame().id();
            let waiting = self
                .core
                .pending_screencopies
                .iter()
                .filter(|f| f.frame().id().same_client_as(&id))
                .count();
            if waiting >= MAX_PENDING_PER_CLIENT {
                debug!(frame = ?id, waiting, "too many copy_with_damage requests waiting; failing this one");
                return; // dropping `frame` sends `failed`
            }
            self.core.pending_screencopies.push(frame);
            return;
        }
        let output = frame.output().clone();
        self.copy_frame(&output, frame);
    }
}

impl State {
    /// Answers the `copy_with_damage` requests for `output` after it drew a damaged frame.
    pub fn complete_screencopies(&mut self, output: &Output) {
        if self.core.pending_screencopies.is_empty() {
            return;
        }
        let (ready, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.core.pending_screencopies)
                .into_iter()
                .partition(|f| f.output() == output);
        self.core.pending_screencopies = waiting;
        let ready: Vec<_> = ready.into_iter().filter(|f| f.frame().is_alive()).collect();
        if ready.is_empty() {
            return;
        }
        let captured = match self.backend.capture(&mut self.core, output) {
            Ok(captured) => captured,
            Err(err) => {
                warn!(output = %output.name(), "screencopy capture failed: {err:#}");
                return; // dropping the frames sends `failed`
            }
        };
        for frame in ready {
            self.write_frame(output, &captured, frame);
        }
    }

    /// Drops waiting requests whose frame object or client is gone, or whose output is no
    /// longer in the space (unplugged). Cheap when nothing waits.
    pub fn prune_screencopies(&mut self) {
        if self.core.pending_screencopies.is_empty() {
            return;
        }
        let space = &self.core.space;
        self.core
            .pending_screencopies
            .retain(|f| f.frame().is_alive() && space.outputs().any(|o| o == f.output()));
    }

    fn copy_frame(&mut self, output: &Output, frame: Screencopy) {
        let captured = match self.backend.capture(&mut self.core, output) {
            Ok(captured) => captured,
            Err(err) => {
                warn!(output = %output.name(), "screencopy capture failed: {err:#}");
                return; // dropping `frame` sends `failed`
            }
        };
        self.write_frame(output, &captured, frame);
    }

    fn write_frame(
        &mut self,
        output: &Output,
        captured: &lockstep_render::Frame,
        frame: Screencopy,
    ) {
        let region = frame.region();
        let cropped = captured.crop(
            region.loc.x.max(0) as u32,
            region.loc.y.max(0) as u32,
            region.size.w.max(0) as u32,
            region.size.h.max(0) as u32,
        );
        match frame.write_pixels(cropped.data(), cropped.stride() as usize) {
            Ok(()) => {
                let now = self.core.now();
                frame.submit(now);
            }
            Err(err) => warn!(output = %output.name(), %err, "screencopy write failed"),
        }
    }
}

delegate_wlr_screencopy!(State);
