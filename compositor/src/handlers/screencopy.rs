//! zwlr_screencopy_manager_v1 (lockstep-protocols) wired to the backends: `copy` is answered
//! from the output's current frame at once; `copy_with_damage` waits for the next frame that
//! has damage.

use lockstep_protocols::{
    delegate_wlr_screencopy,
    wlr_screencopy::{Screencopy, ScreencopyHandler, ScreencopyManagerState},
};
use smithay::output::Output;
use tracing::warn;

use crate::state::State;

/// A `copy_with_damage` request waiting for its output's next damaged frame.
pub type PendingScreencopy = Screencopy;

impl ScreencopyHandler for State {
    fn screencopy_state(&mut self) -> &mut ScreencopyManagerState {
        &mut self.core.screencopy_state
    }

    fn frame(&mut self, frame: Screencopy) {
        if frame.with_damage() {
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
        for frame in ready {
            self.copy_frame(output, frame);
        }
    }

    fn copy_frame(&mut self, output: &Output, frame: Screencopy) {
        let captured = match self.backend.capture(&mut self.core, output) {
            Ok(captured) => captured,
            Err(err) => {
                warn!(output = %output.name(), "screencopy capture failed: {err:#}");
                return; // dropping `frame` sends `failed`
            }
        };
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
