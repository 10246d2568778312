//! `[[output]]` on a live config reload: the entries that changed become an output-management
//! configuration, checked and applied the way a wlr-randr `apply` is.
//!
//! # Why through output management
//!
//! `handlers/output_management.rs` already knows how to change an output safely on every
//! backend: [`plan`] checks every head against the backend (the mode is one the connector
//! offers on KMS, the scale is in range, one output stays on) without changing anything, and
//! [`apply`] does the fallible backend work (a new KMS pipeline for a new mode) for every head
//! before the first change. A reload uses both, so a mode the monitor cannot show, or an
//! output the backend cannot turn off or on (winit; a KMS output with no free CRTC), rejects
//! the whole reload with nothing changed, and the reason reaches the banner, the log and the
//! `config_rejected` event like a syntax error.
//!
//! # What changes
//!
//! Only outputs whose entry (the one named like them, else the unnamed one) differs between
//! the running and the new config: a reload for a `[layout]` change leaves alone an output
//! someone arranged with wlr-randr. For a changed entry: `enabled`, `scale`, `position` (when
//! given; a removed position keeps the output where it is) and `mode` (the output's mode of
//! that size, the closest refresh when one is given, else the highest; a removed mode goes
//! back to the output's preferred one; the winit output's mode stays its window's size). A
//! new entry does not create an output: headless outputs are made at start, KMS ones by
//! plugging a monitor in (a KMS connector the config turned off at start is an output that
//! is off: `enabled = true` on a reload turns it on).

use lockstep_config::{Config, OutputConfig};
use lockstep_protocols::wlr_output_management::{
    HeadSettings, ModeRequest, ModeState, OutputConfiguration,
};
use smithay::output::Output;

use crate::{
    backend::Backend,
    handlers::output_management::{apply, backend_heads, plan, HeadPlan},
    state::State,
};

/// Checked output changes, ready to [`apply_reload`].
pub struct OutputReload {
    plans: Vec<HeadPlan>,
    /// The outputs whose entry changed, for the log.
    changed: Vec<String>,
}

/// Works out and checks the output changes from `old` to `new` (changes nothing). `Ok(None)`:
/// no output's entry changed.
pub fn check_reload(
    state: &State,
    old: &Config,
    new: &Config,
) -> Result<Option<OutputReload>, String> {
    let mut changed = Vec::new();
    let mut heads = Vec::new();
    for (output, on) in backend_heads(state) {
        let name = output.name();
        let before = old.output(&name);
        let after = new.output(&name);
        if before == after {
            // Keep it as it is (on with every setting unchanged, or off).
            heads.push((name, on.then(HeadSettings::default)));
            continue;
        }
        let entry = after.cloned().unwrap_or_default();
        // The winit output's mode is its window's size, whatever the entry says (as at start).
        let had_mode = before.is_some_and(|b| b.mode.is_some());
        let mode = if matches!(state.backend, Backend::Winit(_)) {
            ModeChange::Keep
        } else {
            match entry.mode {
                Some(wanted) => ModeChange::To(wanted),
                None if had_mode => ModeChange::Preferred,
                None => ModeChange::Keep,
            }
        };
        heads.push((name.clone(), head_settings(&output, &entry, mode)));
        changed.push(name);
    }
    if changed.is_empty() {
        return Ok(None);
    }
    let plans =
        plan(state, &OutputConfiguration { heads }).map_err(|why| format!("[[output]]: {why}"))?;
    Ok(Some(OutputReload { plans, changed }))
}

/// Applies checked output changes. The backend's fallible work (new KMS pipelines) happens
/// before the first change: on `Err` nothing changed.
pub fn apply_reload(state: &mut State, reload: OutputReload) -> Result<(), String> {
    apply(state, reload.plans).map_err(|why| format!("[[output]]: {why}"))?;
    tracing::info!(outputs = ?reload.changed, "[[output]] changes applied");
    state.update_output_management();
    Ok(())
}

/// What a changed entry does to an output's mode.
enum ModeChange {
    /// Leave it (no mode in the entry, nor before; or the winit backend).
    Keep,
    /// Back to the preferred mode (the entry's mode was removed).
    Preferred,
    /// This one.
    To(lockstep_config::Mode),
}

/// What `entry` asks of `output`: `None` turns it off.
fn head_settings(output: &Output, entry: &OutputConfig, mode: ModeChange) -> Option<HeadSettings> {
    if !entry.enabled {
        return None;
    }
    let mode = match mode {
        ModeChange::Keep => None,
        ModeChange::To(wanted) => mode_request(output, wanted),
        ModeChange::Preferred => output.preferred_mode().map(|m| {
            ModeRequest::Advertised(ModeState {
                size: (m.size.w, m.size.h),
                refresh_mhz: m.refresh,
                preferred: true,
            })
        }),
    };
    Some(HeadSettings {
        mode,
        position: entry.position.map(|p| (p.x, p.y)),
        transform: None,
        scale: Some(entry.scale),
        adaptive_sync: None,
    })
}

/// The output's own mode of `wanted`'s size (closest refresh, else the highest), or a custom
/// mode when it has none of that size (the backend decides whether it can show it).
fn mode_request(output: &Output, wanted: lockstep_config::Mode) -> Option<ModeRequest> {
    let size = (
        i32::try_from(wanted.width).ok()?,
        i32::try_from(wanted.height).ok()?,
    );
    let refresh = wanted.refresh_mhz.and_then(|r| i32::try_from(r).ok());
    let modes = output.modes();
    let same_size = modes.iter().filter(|m| (m.size.w, m.size.h) == size);
    let best = match refresh {
        Some(r) => same_size.min_by_key(|m| (i64::from(m.refresh) - i64::from(r)).abs()),
        None => same_size.max_by_key(|m| m.refresh),
    };
    Some(match best {
        Some(m) => ModeRequest::Advertised(ModeState {
            size,
            refresh_mhz: m.refresh,
            preferred: output.preferred_mode() == Some(*m),
        }),
        None => ModeRequest::Custom {
            size,
            refresh_mhz: refresh.unwrap_or(0),
        },
    })
}
