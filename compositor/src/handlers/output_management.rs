//! zwlr_output_manager_v1 (lockstep-protocols' `wlr_output_management`) wired to the
//! backends: wlr-randr and kanshi list the outputs and change their mode, position, scale,
//! transform, and turn them on or off.
//!
//! The heads clients see are worked out from the backend's outputs (on or off) once per loop
//! iteration while a manager is bound ([`State::update_output_management`]); the protocol
//! module sends only what changed, so a change made any other way (a hotplug, a config
//! reload, another client's apply) reaches every client with a new serial.
//!
//! A configuration is checked completely before anything changes ([`plan`]): every head
//! exists, the scale is in (0, 4], adaptive sync stays off (lockstep has none), and the mode
//! is one the backend can show:
//!
//! | backend | modes | on/off | transform |
//! |---|---|---|---|
//! | headless | any size up to 4096×4096 pixels (custom modes too) | yes | any |
//! | kms | only the connector's modes | yes (a CRTC must be free to turn one on) | any |
//! | winit | the window's size only | no | as is |
//!
//! Every output may be turned off, as sway allows: windows then wait (parked by the layout)
//! for the next output that comes on, and wlr-randr from another terminal (or ssh), a config
//! reload or a monitor plugged in brings one back.
//!
//! Then [`prepare`] does the fallible backend work for every head (image or pipeline
//! allocation for a new mode or an output turned on; on KMS the `TEST_ONLY` commits of the
//! CRTCs turned off and of the modesets of those turned on). `test` stops there and drops
//! what was prepared, so it refuses what apply would and touches nothing. `apply` then, and
//! only then, turns heads off, switches modes, turns heads on and moves, scales and rotates
//! them, so a failure leaves every output as it was (`failed`). A config reload's
//! `[[output]]` changes take the same way (`output_config.rs`).

use lockstep_protocols::{
    delegate_wlr_output_management,
    wlr_output_management::{
        HeadSettings, HeadState, ModeRequest, ModeState, OutputConfiguration,
        OutputManagementHandler, OutputManagementState,
    },
};
use smithay::{
    output::{Mode, Output, Scale},
    utils::{Logical, Point, Transform},
};
use tracing::info;

use crate::{backend::Backend, state::State};

/// The largest scale an output can get.
const MAX_SCALE: f64 = 4.0;

/// One head's checked target state.
pub(crate) struct HeadPlan {
    output: Output,
    on: bool,
    was_on: bool,
    /// A new mode, when it differs from the current one.
    mode: Option<Mode>,
    position: Point<i32, Logical>,
    transform: Transform,
    scale: f64,
}

/// Backend work a head's change needs, done before anything changes.
pub(crate) enum Prepared {
    /// Nothing to prepare (scale, position, transform; headless on/off without a mode).
    Nothing,
    /// A new headless mode (for an output on, or being turned on).
    Headless(crate::backend::headless::PreparedMode),
    /// A new KMS mode for an output that stays on.
    KmsMode(Box<crate::backend::kms::PreparedKmsMode>),
    /// A KMS output being turned on: its new pipeline.
    KmsOn(Box<crate::backend::kms::PreparedKmsMode>),
    /// A KMS output being turned off: its CRTC's disabling commit.
    KmsOff(crate::backend::kms::PreparedOff),
}

impl OutputManagementHandler for State {
    fn output_management_state(&mut self) -> &mut OutputManagementState {
        &mut self.core.protocols.output_management
    }

    fn current_heads(&mut self) -> Vec<HeadState> {
        heads(self)
    }

    fn test_configuration(&mut self, config: &OutputConfiguration) -> Result<(), String> {
        let plans = plan(self, config)?;
        // Everything apply would prepare, then dropped: nothing changed.
        prepare(self, &plans).map(|_| ())
    }

    fn apply_configuration(&mut self, config: &OutputConfiguration) -> Result<(), String> {
        let plans = plan(self, config)?;
        apply(self, plans)?;
        // Clients see the new state (and a new serial) at once, after `succeeded`.
        self.update_output_management();
        Ok(())
    }
}

impl State {
    /// Sends output changes to output-management clients (nothing when none is bound or
    /// nothing changed).
    pub fn update_output_management(&mut self) {
        if !self.core.protocols.output_management.has_clients() {
            return;
        }
        let heads = heads(self);
        self.core.protocols.output_management.update::<State>(heads);
    }
}

/// Every output, on or off, as the backend knows it.
pub(crate) fn backend_heads(state: &State) -> Vec<(Output, bool)> {
    match &state.backend {
        Backend::Headless(b) => b.heads(),
        Backend::Kms(b) => b.heads(),
        Backend::Winit(_) => state
            .core
            .space
            .outputs()
            .map(|o| (o.clone(), true))
            .collect(),
    }
}

/// The heads as output-management clients see them.
pub fn heads(state: &State) -> Vec<HeadState> {
    backend_heads(state)
        .into_iter()
        .map(|(output, on)| head_state(state, &output, on))
        .collect()
}

fn head_state(state: &State, output: &Output, on: bool) -> HeadState {
    let props = output.physical_properties();
    let preferred = output.preferred_mode();
    let current = output.current_mode();
    let modes: Vec<ModeState> = output
        .modes()
        .into_iter()
        .map(|m| ModeState {
            size: (m.size.w, m.size.h),
            refresh_mhz: m.refresh,
            preferred: Some(m) == preferred,
        })
        .collect();
    let current_mode = current.and_then(|c| output.modes().iter().position(|m| *m == c));
    let position = state
        .core
        .space
        .output_geometry(output)
        .map(|g| (g.loc.x, g.loc.y))
        .unwrap_or_else(|| {
            let p = output.current_location();
            (p.x, p.y)
        });
    HeadState {
        name: output.name(),
        description: output.description(),
        make: Some(props.make.clone()),
        model: Some(props.model.clone()),
        serial_number: None,
        physical_size: Some((props.size.w, props.size.h)),
        modes,
        enabled: on,
        current_mode,
        position,
        transform: output.current_transform().into(),
        scale: output.current_scale().fractional_scale(),
        adaptive_sync: false,
    }
}

/// Checks `config` against the backend and works out each head's target state.
pub(crate) fn plan(state: &State, config: &OutputConfiguration) -> Result<Vec<HeadPlan>, String> {
    let known = backend_heads(state);
    let mut plans = Vec::new();
    for (name, settings) in &config.heads {
        let (output, was_on) = known
            .iter()
            .find(|(o, _)| o.name() == *name)
            .cloned()
            .ok_or_else(|| format!("no output named {name:?}"))?;
        let plan = match settings {
            None => {
                if was_on && matches!(state.backend, Backend::Winit(_)) {
                    return Err("the winit backend cannot turn its output off".into());
                }
                HeadPlan {
                    mode: None,
                    position: output.current_location(),
                    transform: output.current_transform(),
                    scale: output.current_scale().fractional_scale(),
                    output,
                    on: false,
                    was_on,
                }
            }
            Some(settings) => head_plan(state, output, was_on, settings)?,
        };
        plans.push(plan);
    }
    Ok(plans)
}

fn head_plan(
    state: &State,
    output: Output,
    was_on: bool,
    settings: &HeadSettings,
) -> Result<HeadPlan, String> {
    let name = output.name();
    if settings.adaptive_sync == Some(true) {
        return Err(format!("{name}: lockstep has no adaptive sync"));
    }
    if !was_on && matches!(state.backend, Backend::Winit(_)) {
        return Err(format!("{name}: the winit backend cannot turn outputs on"));
    }
    let scale = settings
        .scale
        .unwrap_or_else(|| output.current_scale().fractional_scale());
    if !(scale > 0.0 && scale <= MAX_SCALE) {
        return Err(format!(
            "{name}: scale {scale} is out of range (0, {MAX_SCALE}]"
        ));
    }
    let current = output.current_mode();
    let wanted = match settings.mode {
        None => None,
        Some(ModeRequest::Advertised(m)) => Some(Mode {
            size: m.size.into(),
            refresh: m.refresh_mhz,
        }),
        Some(ModeRequest::Custom { size, refresh_mhz }) => Some(Mode {
            size: size.into(),
            refresh: if refresh_mhz == 0 {
                current.map(|c| c.refresh).unwrap_or(60_000)
            } else {
                refresh_mhz
            },
        }),
    };
    let mode = wanted.filter(|m| Some(*m) != current);
    if let Some(mode) = mode {
        match &state.backend {
            Backend::Headless(b) => b.check_mode(mode),
            Backend::Kms(b) => b.check_mode(&output, mode),
            Backend::Winit(_) => Err("the winit output's mode follows its window".into()),
        }
        .map_err(|why| format!("{name}: {why}"))?;
    }
    let transform = settings
        .transform
        .map(Transform::from)
        .unwrap_or_else(|| output.current_transform());
    if matches!(state.backend, Backend::Winit(_)) && transform != output.current_transform() {
        return Err(format!("{name}: the winit output cannot be rotated"));
    }
    let position = settings.position.map(Point::from).unwrap_or_else(|| {
        match state.core.space.output_geometry(&output) {
            Some(g) => g.loc,
            None => (state.core.outputs_right_edge(), 0).into(),
        }
    });
    Ok(HeadPlan {
        output,
        on: true,
        was_on,
        mode,
        position,
        transform,
        scale,
    })
}

/// The fallible backend work of checked plans, for every head, changing nothing.
pub(crate) fn prepare(state: &mut State, plans: &[HeadPlan]) -> Result<Vec<Prepared>, String> {
    let mut prepared = Vec::new();
    for plan in plans {
        let p = match (&mut state.backend, plan.was_on, plan.on, plan.mode) {
            (Backend::Headless(b), _, true, Some(mode)) => {
                b.prepare_mode(mode).map(Prepared::Headless)
            }
            (Backend::Kms(b), true, true, Some(mode)) => b
                .prepare_mode(&plan.output, mode)
                .map(|p| Prepared::KmsMode(Box::new(p))),
            (Backend::Kms(b), false, true, mode) => b
                .prepare_on(&plan.output, mode)
                .map(|p| Prepared::KmsOn(Box::new(p))),
            (Backend::Kms(b), true, false, _) => b.prepare_off(&plan.output).map(Prepared::KmsOff),
            (Backend::Winit(_), _, true, Some(_)) => {
                Err(anyhow::anyhow!("winit modes follow the window"))
            }
            _ => Ok(Prepared::Nothing),
        }
        .map_err(|err| format!("{}: {err:#}", plan.output.name()))?;
        prepared.push(p);
    }
    Ok(prepared)
}

/// Applies checked plans: all fallible backend work first ([`prepare`]), then the changes.
pub(crate) fn apply(state: &mut State, plans: Vec<HeadPlan>) -> Result<(), String> {
    // Prepare (fallible): nothing on screen has changed if this fails.
    let prepared = prepare(state, &plans)?;
    // Update (cannot fail): off first, so outputs turned on can take their place.
    let core = &mut state.core;
    let mut prepared: Vec<Option<Prepared>> = prepared.into_iter().map(Some).collect();
    for (plan, prepared) in plans.iter().zip(&mut prepared) {
        if plan.on || !plan.was_on {
            continue;
        }
        match (&mut state.backend, prepared.take()) {
            (Backend::Headless(b), _) => b.set_enabled(core, &plan.output, false, plan.position),
            (Backend::Kms(b), Some(Prepared::KmsOff(p))) => b.turn_off(core, &plan.output, p),
            _ => {}
        }
        info!(output = %plan.output.name(), "output turned off (output management)");
    }
    for (plan, prepared) in plans.iter().zip(prepared) {
        if !plan.on {
            continue;
        }
        match (prepared, &mut state.backend) {
            (Some(Prepared::Headless(p)), Backend::Headless(b)) => {
                b.set_mode(core, &plan.output, p)
            }
            (Some(Prepared::KmsMode(p)), Backend::Kms(b)) => b.set_mode(core, &plan.output, *p),
            (Some(Prepared::KmsOn(p)), Backend::Kms(b)) => {
                plan.output.change_current_state(
                    None,
                    Some(plan.transform),
                    Some(Scale::Fractional(plan.scale)),
                    None,
                );
                b.turn_on(core, &plan.output, *p, plan.position);
            }
            _ => {}
        }
        plan.output.change_current_state(
            None,
            Some(plan.transform),
            Some(Scale::Fractional(plan.scale)),
            Some(plan.position),
        );
        if !plan.was_on {
            if let Backend::Headless(b) = &mut state.backend {
                b.set_enabled(core, &plan.output, true, plan.position);
            }
        } else {
            core.space.map_output(&plan.output, plan.position);
        }
        let mode = plan.output.current_mode();
        info!(
            output = %plan.output.name(),
            mode = ?mode.map(|m| (m.size.w, m.size.h, m.refresh)),
            position = ?(plan.position.x, plan.position.y),
            scale = plan.scale,
            transform = ?plan.transform,
            "output configured (output management)"
        );
    }
    crate::shell::sync_outputs(core);
    crate::frame_clock::queue_redraw_all(core);
    Ok(())
}

delegate_wlr_output_management!(State);
