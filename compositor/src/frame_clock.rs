//! When outputs redraw: damage-driven, paced by each output's refresh.
//!
//! Nothing redraws on its own. A client commit, an output change or pointer motion calls
//! [`queue_redraw`], which arms a one-shot timer for the output's next frame slot (at once when
//! the output has been idle for a refresh or more, else one refresh after the last frame). When
//! it fires the backend renders whatever has damage, wp_presentation feedback reports the slot's
//! time, and frame callbacks are sent. A static screen therefore arms no timer and wakes nothing;
//! an animating client gets exactly one frame callback per refresh, one refresh apart.
//!
//! Outputs paced by page flips (KMS) redraw as late as they can: the timer is armed for the
//! next vblank (predicted from the kernel's last flip time and the refresh) minus the time the
//! output's last redraws took, from their timer's due time to the commit (the longest of the
//! last [`RenderTimes::KEPT`]), minus [`RENDER_SLACK`]. A buffer whose acquire fence signals
//! anywhere before that point still makes the vblank, and all the clients that are ready by
//! then share one composition ([`render_start`]). A redraw asked for after that point starts
//! at once: it may still make the vblank.

use std::time::Duration;

use smithay::{
    backend::renderer::element::{default_primary_scanout_output_compare, RenderElementStates},
    desktop::utils::{
        surface_presentation_feedback_flags_from_states, surface_primary_scanout_output,
        take_presentation_feedback_surface_tree, update_surface_primary_scanout_output,
        OutputPresentationFeedback,
    },
    output::Output,
    reexports::{
        calloop::{
            timer::{TimeoutAction, Timer},
            RegistrationToken,
        },
        wayland_protocols::wp::presentation_time::server::wp_presentation_feedback,
        wayland_server::protocol::wl_surface::WlSurface,
    },
    wayland::{
        compositor::{with_surface_tree_downward, SurfaceData, TraversalAction},
        presentation::Refresh,
    },
};
use tracing::{trace, warn};

use crate::state::{Core, State};

/// Where an output's redraw cycle stands.
#[derive(Debug)]
pub enum RedrawState {
    /// Nothing to do; no timer armed.
    Idle,
    /// A redraw is due at `deadline` (monotonic time); `token` is the armed timer.
    Scheduled {
        /// The frame slot.
        deadline: Duration,
        /// The calloop timer that fires at the slot.
        token: RegistrationToken,
    },
}

/// What a backend reports after rendering one output.
pub struct RenderOutcome {
    /// Whether anything changed on screen.
    pub damaged: bool,
    /// Which elements were visible, for frame callbacks and presentation feedback.
    pub states: RenderElementStates,
    /// When the frame counts as presented.
    pub presented: Presented,
}

/// When a rendered frame counts as presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// At its frame slot, now (headless, winit): feedback and frame callbacks follow at once.
    AtSlot,
    /// At the page flip (KMS): the backend calls [`Core::after_render`] with the kernel's
    /// time and sequence when the flip event arrives.
    AtPageFlip,
    /// Not rendered yet: a page flip is pending, and the backend redraws after it.
    Deferred,
}

/// Asks for `output` to be redrawn at its next frame slot. Cheap and idempotent.
pub fn queue_redraw(core: &mut Core, output: &Output) {
    let name = output.name();
    let now = core.now();
    let Some(data) = core.outputs.get_mut(&name) else {
        return;
    };
    if matches!(data.redraw, RedrawState::Scheduled { .. }) || !data.powered {
        return;
    }
    // Page flips pace KMS outputs: render as late as the measured render time allows (the
    // backend also holds frames while a flip is pending: one commit per vblank).
    let deadline = if data.flip_paced {
        render_start(
            data.last_presentation,
            data.refresh,
            now,
            data.render_times.predicted(),
        )
    } else {
        next_slot(data.last_presentation, data.refresh, now)
    };
    let timer = Timer::from_duration(deadline.saturating_sub(now));
    let output_name = name.clone();
    let token = core
        .loop_handle
        .insert_source(timer, move |_, _, state: &mut State| {
            state.redraw(&output_name);
            TimeoutAction::Drop
        });
    match token {
        Ok(token) => data.redraw = RedrawState::Scheduled { deadline, token },
        Err(err) => warn!(?err, output = %name, "cannot arm the frame timer"),
    }
}

/// The next frame slot at or after `now`: slots are `last + k * refresh`, like vblanks, so
/// an animating client sees presentation times exactly a multiple of the refresh apart.
/// Before the first frame there is no phase yet and the slot is `now`.
pub fn next_slot(last: Option<Duration>, refresh: Duration, now: Duration) -> Duration {
    let Some(last) = last else {
        return now;
    };
    if refresh.is_zero() {
        return now.max(last);
    }
    let next = last + refresh;
    if next >= now {
        return next;
    }
    let behind = (now - last).as_nanos();
    let periods = behind.div_ceil(refresh.as_nanos());
    let periods = u32::try_from(periods).unwrap_or(u32::MAX);
    last + refresh * periods
}

/// What is added to the measured render time of a flip-paced output when its redraw is
/// scheduled: the timer's wake-up latency and the kernel's own work between the atomic commit
/// and the vblank that latches it.
pub const RENDER_SLACK: Duration = Duration::from_micros(1500);

/// After this long without a frame, the vblank phase of a flip-paced output is not trusted
/// (the kernel may have stopped and restarted its vblank timer): redraw at once.
const PHASE_TRUSTED: Duration = Duration::from_millis(500);

/// The longest of the last [`RenderTimes::KEPT`] redraw times of an output: from the redraw
/// timer's due time to the end of the commit, so it includes the timer's lateness.
#[derive(Debug, Default, Clone)]
pub struct RenderTimes {
    recent: [Duration; RenderTimes::KEPT],
    next: usize,
}

impl RenderTimes {
    /// How many redraws the prediction looks back on.
    pub const KEPT: usize = 16;

    /// Records one redraw's time.
    pub fn record(&mut self, took: Duration) {
        self.recent[self.next] = took;
        self.next = (self.next + 1) % Self::KEPT;
    }

    /// The time the next redraw is predicted to need (zero before the first): the longest
    /// recent one.
    pub fn predicted(&self) -> Duration {
        self.recent.iter().copied().max().unwrap_or_default()
    }
}

/// When a flip-paced output should start rendering, asked at `now`, to make the first vblank
/// after `now` (vblanks at `last + k * refresh`) with a redraw that takes `render`: that
/// vblank minus `render` and [`RENDER_SLACK`], or at once when that point has passed (the
/// frame may still make the vblank; waiting for the next one would make it late for sure).
/// At once before the first frame, after a long idle (the phase may have moved), or when the
/// budget does not fit in a refresh.
pub fn render_start(
    last: Option<Duration>,
    refresh: Duration,
    now: Duration,
    render: Duration,
) -> Duration {
    let Some(last) = last else {
        return now;
    };
    let budget = render + RENDER_SLACK;
    if refresh.is_zero() || budget >= refresh || now.saturating_sub(last) > PHASE_TRUSTED {
        return now;
    }
    let mut vblank = next_slot(Some(last), refresh, now);
    if vblank <= now {
        vblank += refresh;
    }
    (vblank - budget).max(now)
}

/// How long before a vblank lockstep wants a client's buffer finished: composing the frame
/// and committing it must fit in between. A fixed budget rather than a measured one: the
/// deadline is a hint to the client's GPU driver (clock up now rather than after a missed
/// frame), and being a little early costs nothing.
pub const COMPOSITION_MARGIN: Duration = Duration::from_millis(2);

/// The deadline for a buffer committed at `now` to make a frame of an output whose frames
/// come at `last + k * refresh`: the first frame slot whose `margin` has not passed yet,
/// minus the margin (capped at half a refresh).
pub fn acquire_deadline(
    last: Option<Duration>,
    refresh: Duration,
    now: Duration,
    margin: Duration,
) -> Duration {
    let margin = margin.min(refresh / 2);
    let mut slot = next_slot(last, refresh, now);
    if slot == now || slot.saturating_sub(margin) <= now {
        // Before the first frame, or too close to this slot: the one after.
        slot += refresh;
    }
    slot.saturating_sub(margin)
}

impl Core {
    /// When a buffer committed now on `surface` should be finished to make its output's next
    /// frame ([`acquire_deadline`]): the output it was last shown on, else the first one;
    /// `None` without outputs.
    pub fn acquire_deadline(&self, surface: &WlSurface) -> Option<Duration> {
        let output = smithay::wayland::compositor::with_states(surface, |states| {
            surface_primary_scanout_output(surface, states)
        })
        .or_else(|| self.space.outputs().next().cloned())?;
        let data = self.outputs.get(&output.name())?;
        // A flip-paced output composes as late as its render time allows: that is the
        // deadline, when it is further ahead of the vblank than the fixed margin.
        let margin = if data.flip_paced {
            COMPOSITION_MARGIN.max(data.render_times.predicted() + RENDER_SLACK)
        } else {
            COMPOSITION_MARGIN
        };
        Some(acquire_deadline(
            data.last_presentation,
            data.refresh,
            self.now(),
            margin,
        ))
    }
}

/// Queues a redraw on every output.
pub fn queue_redraw_all(core: &mut Core) {
    let outputs: Vec<Output> = core.space.outputs().cloned().collect();
    for output in outputs {
        queue_redraw(core, &output);
    }
}

impl State {
    /// Renders the output named `name` for its due frame slot and sends feedback.
    pub fn redraw(&mut self, name: &str) {
        let Some(output) = self.core.output_by_name(name) else {
            return;
        };
        let deadline = match self.core.outputs.get_mut(name) {
            Some(data) => match std::mem::replace(&mut data.redraw, RedrawState::Idle) {
                // The timer fired: the slot is due.
                RedrawState::Scheduled { deadline, .. } => deadline,
                RedrawState::Idle => self.core.now(),
            },
            None => return,
        };
        let outcome = match self.backend.render(&mut self.core, &output) {
            Ok(outcome) => outcome,
            Err(err) => {
                warn!(output = %name, "rendering failed: {err:#}");
                return;
            }
        };
        if outcome.presented == Presented::AtPageFlip {
            // From the due time (the timer may fire late) to the commit.
            let took = self.core.now().saturating_sub(deadline);
            if let Some(data) = self.core.outputs.get_mut(name) {
                data.render_times.record(took);
            }
        }
        self.signal_queued_releases();
        match outcome.presented {
            Presented::AtSlot => self.core.after_render(&output, deadline, None, &outcome),
            Presented::AtPageFlip | Presented::Deferred => {}
        }
        if outcome.damaged {
            self.complete_screencopies(&output);
        }
    }
}

impl Core {
    /// Presentation feedback and frame callbacks after `output` was drawn for slot `time`
    /// (with the display's own frame `sequence` when it has one).
    pub fn after_render(
        &mut self,
        output: &Output,
        time: Duration,
        sequence: Option<u64>,
        outcome: &RenderOutcome,
    ) {
        let name = output.name();
        let refresh = match self.outputs.get_mut(&name) {
            Some(data) => {
                data.last_presentation = Some(time);
                data.sequence = sequence.unwrap_or(data.sequence + 1);
                if outcome.damaged {
                    data.frames_rendered += 1;
                }
                data.refresh
            }
            None => return,
        };
        let update_primary = |surface: &_, states: &_| {
            update_surface_primary_scanout_output(
                surface,
                output,
                states,
                &outcome.states,
                default_primary_scanout_output_compare,
            );
        };
        for window in self.space.elements() {
            window.with_surfaces(update_primary);
            // X11 windows of an older Xwayland: smithay's Window does not know their surface.
            if let Some(surface) = crate::xwayland::wm::surface_to_draw(window) {
                with_surface_tree_downward(
                    &surface,
                    (),
                    |_, _, _| TraversalAction::DoChildren(()),
                    |surface, states, _| update_primary(surface, states),
                    |_, _, _| true,
                );
            }
        }
        let layers: Vec<smithay::desktop::LayerSurface> =
            smithay::desktop::layer_map_for_output(output)
                .layers()
                .filter(|l| smithay::utils::IsAlive::alive(*l))
                .cloned()
                .collect();
        for layer in &layers {
            layer.with_surfaces(update_primary);
        }
        if outcome.damaged {
            let mut feedback = OutputPresentationFeedback::new(output);
            // `elements_for_output`, not `outputs_for_element` per window: that one searches
            // the space and allocates for each window, every frame.
            for window in self.space.elements_for_output(output) {
                let flags = |surface: &WlSurface, _: &SurfaceData| {
                    surface_presentation_feedback_flags_from_states(surface, &outcome.states)
                };
                window.take_presentation_feedback(
                    &mut feedback,
                    surface_primary_scanout_output,
                    flags,
                );
                if let Some(surface) = crate::xwayland::wm::surface_to_draw(window) {
                    take_presentation_feedback_surface_tree(
                        &surface,
                        &mut feedback,
                        surface_primary_scanout_output,
                        flags,
                    );
                }
            }
            let seq = self.outputs.get(&name).map(|d| d.sequence).unwrap_or(0);
            feedback.presented::<_, smithay::utils::Monotonic>(
                time,
                Refresh::fixed(refresh),
                seq,
                wp_presentation_feedback::Kind::Vsync,
            );
        }
        // Frame callbacks: visible surfaces get one per frame slot; hidden ones at most once a
        // second so they do not spin.
        let throttle = Some(Duration::from_secs(1));
        for window in self.space.elements_for_output(output) {
            window.send_frame(output, time, throttle, surface_primary_scanout_output);
            if let Some(surface) = crate::xwayland::wm::surface_to_draw(window) {
                smithay::desktop::utils::send_frames_surface_tree(
                    &surface,
                    output,
                    time,
                    throttle,
                    surface_primary_scanout_output,
                );
            }
        }
        for layer in &layers {
            layer.send_frame(output, time, throttle, surface_primary_scanout_output);
        }
        if let Some(lock) = self.protocols.session_lock.surface_on(&name) {
            let out = output.clone();
            smithay::desktop::utils::send_frames_surface_tree(
                lock.wl_surface(),
                output,
                time,
                throttle,
                move |_, _| Some(out.clone()),
            );
        }
        if let smithay::input::pointer::CursorImageStatus::Surface(surface) = &self.cursor_status {
            smithay::desktop::utils::send_frames_surface_tree(
                surface,
                output,
                time,
                Some(Duration::ZERO),
                |_, _| None,
            );
        }
        crate::handlers::session_lock::after_output_render(self, output);
        trace!(output = %name, damaged = outcome.damaged, "frame done");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Duration = Duration::from_micros(16_667);

    #[test]
    fn first_frame_is_now() {
        let now = Duration::from_secs(5);
        assert_eq!(next_slot(None, R, now), now);
    }

    #[test]
    fn next_slot_keeps_phase() {
        let last = Duration::from_secs(1);
        // Within one refresh: exactly one refresh later.
        assert_eq!(next_slot(Some(last), R, last + R / 2), last + R);
        // Exactly at the slot.
        assert_eq!(next_slot(Some(last), R, last + R), last + R);
        // Late by 2.5 refreshes: the third slot.
        assert_eq!(next_slot(Some(last), R, last + R * 5 / 2), last + R * 3);
    }

    #[test]
    fn acquire_deadlines_are_the_next_slot_that_can_be_made_minus_the_margin() {
        let ms = Duration::from_millis;
        let refresh = ms(16);
        // Slots at 100, 116, 132...: at 105 the next slot is 116, needed by 114.
        let m = COMPOSITION_MARGIN;
        assert_eq!(
            acquire_deadline(Some(ms(100)), refresh, ms(105), m),
            ms(114)
        );
        // At 115 the 116 slot is out of reach (margin 2 ms): 132's, needed by 130.
        assert_eq!(
            acquire_deadline(Some(ms(100)), refresh, ms(115), m),
            ms(130)
        );
        // Long idle: the first slot after now, still on the phase of the last frame.
        assert_eq!(
            acquire_deadline(Some(ms(100)), refresh, ms(1005), m),
            ms(1010)
        );
        // No frame yet: one refresh from now.
        assert_eq!(acquire_deadline(None, refresh, ms(50), m), ms(64));
        // A 2 ms refresh: the margin is half of it.
        assert_eq!(acquire_deadline(Some(ms(10)), ms(2), ms(10), m), ms(11));
        // A larger margin (a slow output's render time) moves the deadline earlier.
        assert_eq!(
            acquire_deadline(Some(ms(100)), refresh, ms(105), ms(5)),
            ms(111)
        );
    }

    #[test]
    fn flip_paced_redraws_start_the_render_time_before_the_next_vblank() {
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        let refresh = ms(16);
        let slack = RENDER_SLACK;
        // Vblanks at 100, 116, 132...; a 3 ms render: start 3 ms + slack before 116.
        assert_eq!(
            render_start(Some(ms(100)), refresh, ms(101), ms(3)),
            ms(113) - slack
        );
        // Past that point: at once (it may still make 116).
        assert_eq!(
            render_start(Some(ms(100)), refresh, ms(114), ms(3)),
            ms(114)
        );
        // Exactly on a vblank: the next one.
        assert_eq!(
            render_start(Some(ms(100)), refresh, ms(116), us(500)),
            ms(132) - us(500) - slack
        );
        // No frame yet, a long idle, or a render longer than a refresh: at once.
        assert_eq!(render_start(None, refresh, ms(50), ms(1)), ms(50));
        assert_eq!(
            render_start(Some(ms(100)), refresh, ms(900), ms(1)),
            ms(900)
        );
        assert_eq!(
            render_start(Some(ms(100)), refresh, ms(101), ms(20)),
            ms(101)
        );
    }

    #[test]
    fn render_times_predict_the_longest_recent_redraw() {
        let mut times = RenderTimes::default();
        assert_eq!(times.predicted(), Duration::ZERO);
        times.record(Duration::from_millis(3));
        for _ in 0..RenderTimes::KEPT - 1 {
            times.record(Duration::from_millis(1));
        }
        assert_eq!(times.predicted(), Duration::from_millis(3));
        // Sixteen redraws later the slow one is forgotten.
        times.record(Duration::from_millis(1));
        assert_eq!(times.predicted(), Duration::from_millis(1));
    }

    #[test]
    fn zero_refresh_does_not_divide_by_zero() {
        let last = Duration::from_secs(1);
        assert_eq!(next_slot(Some(last), Duration::ZERO, last * 2), last * 2);
    }
}
