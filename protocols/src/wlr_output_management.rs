//! wlr-output-management-unstable-v1 (v4): wlr-randr, kanshi and display settings read and
//! change the outputs ("heads"): mode, position, scale, transform, on or off.
//!
//! # How to use it
//!
//! The compositor owns the truth about its outputs. It describes them as a list of
//! [`HeadState`]s and hands the whole list to [`OutputManagementState::update`] whenever
//! something may have changed (lockstep does it once per loop iteration): this module works
//! out what changed for each bound manager, sends only that, and ends with `done` and a new
//! configuration serial. Nothing is sent, and the serial stays, when nothing changed.
//!
//! A client builds a configuration (`create_configuration` with the serial it saw last),
//! names every head once (`enable_head` with settings, or `disable_head`), then sends `test`
//! or `apply`. This module checks everything the protocol checks and hands a complete
//! [`OutputConfiguration`] to [`OutputManagementHandler::test_configuration`] or
//! [`OutputManagementHandler::apply_configuration`]; the answer becomes `succeeded` or
//! `failed`. A configuration made from an old serial (an output changed since the client
//! looked) gets `cancelled` without reaching the handler.
//!
//! # Protocol errors
//!
//! | request | error (object) |
//! |---|---|
//! | `enable_head`/`disable_head` of a head already named in this configuration | `already_configured_head` (configuration) |
//! | `apply`/`test` of a configuration that leaves out a head | `unconfigured_head` (configuration) |
//! | any request but `destroy` after `apply`/`test` | `already_used` (configuration) |
//! | a property set twice, or both `set_mode` and `set_custom_mode` | `already_set` (configuration head) |
//! | `set_mode` with a mode of another head | `invalid_mode` (configuration head) |
//! | `set_custom_mode` with a size ≤ 0 or a negative refresh | `invalid_custom_mode` (configuration head) |
//! | `set_transform` outside `wl_output.transform` | `invalid_transform` (configuration head) |
//! | `set_scale` ≤ 0 (or not a number) | `invalid_scale` (configuration head) |
//! | `set_adaptive_sync` outside the enum | `invalid_adaptive_sync_state` (configuration head) |
//!
//! A configuration head whose configuration was already applied or tested is inert: its
//! requests are ignored (the protocol names no error for them).

use std::sync::{Arc, Mutex};

use smithay::reexports::{
    wayland_protocols_wlr::output_management::v1::server::{
        zwlr_output_configuration_head_v1::{self, ZwlrOutputConfigurationHeadV1},
        zwlr_output_configuration_v1::{self, ZwlrOutputConfigurationV1},
        zwlr_output_head_v1::{self, AdaptiveSyncState, ZwlrOutputHeadV1},
        zwlr_output_manager_v1::{self, ZwlrOutputManagerV1},
        zwlr_output_mode_v1::{self, ZwlrOutputModeV1},
    },
    wayland_server::{
        backend::{ClientId, GlobalId},
        protocol::wl_output::Transform,
        Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource, WEnum,
    },
};
use tracing::debug;

/// The version of `zwlr_output_manager_v1` lockstep implements.
pub const VERSION: u32 = 4;

/// The highest version of `zwlr_output_mode_v1` (it stopped at 3 when the others went on).
const MODE_VERSION: u32 = 3;

/// One mode a head can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeState {
    /// Width and height in hardware pixels.
    pub size: (i32, i32),
    /// Refresh rate in millihertz (0: not fixed).
    pub refresh_mhz: i32,
    /// Whether this is the head's preferred mode.
    pub preferred: bool,
}

/// Everything a client can learn about one head.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadState {
    /// Unique name (`HDMI-A-1`, `HEADLESS-1`), the wl_output's name.
    pub name: String,
    /// Human-readable description.
    pub description: String,
    /// Manufacturer, when known.
    pub make: Option<String>,
    /// Model, when known.
    pub model: Option<String>,
    /// Serial number, when known.
    pub serial_number: Option<String>,
    /// Physical size in millimetres, when known.
    pub physical_size: Option<(i32, i32)>,
    /// The modes the head offers.
    pub modes: Vec<ModeState>,
    /// Whether the head shows part of the compositor space.
    pub enabled: bool,
    /// Index into `modes` of the mode in use (when enabled).
    pub current_mode: Option<usize>,
    /// Top-left corner in the compositor space (logical).
    pub position: (i32, i32),
    /// The transform.
    pub transform: Transform,
    /// The scale.
    pub scale: f64,
    /// Whether adaptive sync (VRR) is on.
    pub adaptive_sync: bool,
}

/// The mode a configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ModeRequest {
    /// One of the head's advertised modes.
    Advertised(ModeState),
    /// A custom mode: size in hardware pixels, refresh in mHz (0: any).
    Custom {
        /// Width and height.
        size: (i32, i32),
        /// Refresh rate in millihertz, 0 for "any".
        refresh_mhz: i32,
    },
}

/// What a configuration asks of one head. `None` fields keep their current value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeadSettings {
    /// The mode.
    pub mode: Option<ModeRequest>,
    /// The position (logical).
    pub position: Option<(i32, i32)>,
    /// The transform.
    pub transform: Option<Transform>,
    /// The scale.
    pub scale: Option<f64>,
    /// Adaptive sync on or off.
    pub adaptive_sync: Option<bool>,
}

/// A complete configuration: every head, on (with settings) or off.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutputConfiguration {
    /// By head name: `Some(settings)` enables the head, `None` disables it.
    pub heads: Vec<(String, Option<HeadSettings>)>,
}

/// What the compositor implements.
pub trait OutputManagementHandler {
    /// The protocol state.
    fn output_management_state(&mut self) -> &mut OutputManagementState;
    /// The heads as they are now (asked when a client binds, so it starts from the truth).
    fn current_heads(&mut self) -> Vec<HeadState>;
    /// Whether `config` could be applied; `Err` says why not (logged; the client gets
    /// `failed`).
    fn test_configuration(&mut self, config: &OutputConfiguration) -> Result<(), String>;
    /// Applies `config` (all or nothing); `Err` says why not, and nothing changed.
    fn apply_configuration(&mut self, config: &OutputConfiguration) -> Result<(), String>;
}

/// Data of the global: which clients may see it.
pub struct OutputManagementGlobalData {
    filter: Box<dyn Fn(&Client) -> bool + Send + Sync>,
}

/// One client's manager and the head and mode objects it was sent.
#[derive(Debug)]
struct ManagerInstance {
    manager: ZwlrOutputManagerV1,
    heads: Vec<HeadInstance>,
}

#[derive(Debug)]
struct HeadInstance {
    name: String,
    head: ZwlrOutputHeadV1,
    modes: Vec<ZwlrOutputModeV1>,
}

/// Global state of the output manager.
#[derive(Debug)]
pub struct OutputManagementState {
    global: GlobalId,
    dh: DisplayHandle,
    serial: u32,
    heads: Vec<HeadState>,
    managers: Vec<ManagerInstance>,
}

/// Data of a head object: which head it stands for.
#[derive(Debug)]
pub struct HeadData {
    name: String,
}

/// Data of a mode object: its head and what it is.
#[derive(Debug)]
pub struct ModeData {
    head: String,
    mode: ModeState,
}

/// Data of a manager object (nothing: the instance lives in the state).
#[derive(Debug, Default)]
pub struct ManagerData;

/// Data of a configuration object.
#[derive(Debug)]
pub struct ConfigurationData {
    serial: u32,
    inner: Mutex<ConfigurationInner>,
}

#[derive(Debug, Default)]
struct ConfigurationInner {
    used: bool,
    /// Head name -> its settings (enabled) or `None` (disabled), in request order.
    heads: Vec<(String, Option<Arc<ConfigHeadData>>)>,
}

/// Data of a configuration head object.
#[derive(Debug)]
pub struct ConfigHeadData {
    head: String,
    inner: Mutex<ConfigHeadInner>,
}

#[derive(Debug, Default)]
struct ConfigHeadInner {
    /// The configuration was applied or tested: requests are ignored.
    inert: bool,
    settings: HeadSettings,
}

impl OutputManagementState {
    /// Creates the `zwlr_output_manager_v1` global, visible to clients `filter` accepts.
    pub fn new<D, F>(display: &DisplayHandle, filter: F) -> Self
    where
        D: GlobalDispatch<ZwlrOutputManagerV1, OutputManagementGlobalData>
            + Dispatch<ZwlrOutputManagerV1, ManagerData>
            + Dispatch<ZwlrOutputHeadV1, HeadData>
            + Dispatch<ZwlrOutputModeV1, ModeData>
            + Dispatch<ZwlrOutputConfigurationV1, ConfigurationData>
            + Dispatch<ZwlrOutputConfigurationHeadV1, Arc<ConfigHeadData>>
            + OutputManagementHandler
            + 'static,
        F: Fn(&Client) -> bool + Send + Sync + 'static,
    {
        let global = display.create_global::<D, ZwlrOutputManagerV1, _>(
            VERSION,
            OutputManagementGlobalData {
                filter: Box::new(filter),
            },
        );
        Self {
            global,
            dh: display.clone(),
            serial: 1,
            heads: Vec::new(),
            managers: Vec::new(),
        }
    }

    /// The global's id.
    pub fn global(&self) -> GlobalId {
        self.global.clone()
    }

    /// The current configuration serial.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Whether any client has a manager bound (updates are needed only then).
    pub fn has_clients(&self) -> bool {
        self.managers.iter().any(|m| m.manager.is_alive())
    }

    /// The heads as clients last saw them.
    pub fn heads(&self) -> &[HeadState] {
        &self.heads
    }

    /// Tells every bound manager what changed since the last update (`heads` is the whole
    /// current list), then `done` with a new serial. Does nothing when nothing changed.
    pub fn update<D>(&mut self, heads: Vec<HeadState>)
    where
        D: Dispatch<ZwlrOutputHeadV1, HeadData> + Dispatch<ZwlrOutputModeV1, ModeData> + 'static,
    {
        if heads == self.heads {
            return;
        }
        let old = std::mem::replace(&mut self.heads, heads);
        self.serial = self.serial.wrapping_add(1).max(1);
        debug!(
            serial = self.serial,
            heads = self.heads.len(),
            "output configuration changed"
        );
        let dh = self.dh.clone();
        self.managers.retain(|m| m.manager.is_alive());
        for instance in &mut self.managers {
            let Some(client) = instance.manager.client() else {
                continue;
            };
            // Heads that are gone.
            instance.heads.retain(|h| {
                let keep = self.heads.iter().any(|s| s.name == h.name);
                if !keep {
                    finish_head(h);
                }
                keep
            });
            for state in &self.heads {
                let prev = old.iter().find(|o| o.name == state.name);
                match instance.heads.iter_mut().find(|h| h.name == state.name) {
                    Some(head) => {
                        if let Some(prev) = prev {
                            send_changes::<D>(&dh, &client, head, prev, state);
                        }
                    }
                    None => {
                        if let Some(head) =
                            introduce_head::<D>(&dh, &client, &instance.manager, state)
                        {
                            instance.heads.push(head);
                        }
                    }
                }
            }
            instance.manager.done(self.serial);
        }
    }

    fn head_names_of(&self, client: &ClientId) -> Vec<String> {
        self.managers
            .iter()
            .filter(|m| {
                m.manager.is_alive() && m.manager.client().is_some_and(|c| c.id() == *client)
            })
            .flat_map(|m| m.heads.iter().map(|h| h.name.clone()))
            .collect()
    }
}

fn finish_head(head: &HeadInstance) {
    for mode in &head.modes {
        if mode.is_alive() {
            mode.finished();
        }
    }
    if head.head.is_alive() {
        head.head.finished();
    }
}

/// Creates the head object of `state` for `manager` and sends everything about it.
fn introduce_head<D>(
    dh: &DisplayHandle,
    client: &Client,
    manager: &ZwlrOutputManagerV1,
    state: &HeadState,
) -> Option<HeadInstance>
where
    D: Dispatch<ZwlrOutputHeadV1, HeadData> + Dispatch<ZwlrOutputModeV1, ModeData> + 'static,
{
    let head = client
        .create_resource::<ZwlrOutputHeadV1, _, D>(
            dh,
            manager.version(),
            HeadData {
                name: state.name.clone(),
            },
        )
        .ok()?;
    manager.head(&head);
    head.name(state.name.clone());
    head.description(state.description.clone());
    if let Some((w, h)) = state.physical_size.filter(|(w, h)| *w > 0 && *h > 0) {
        head.physical_size(w, h);
    }
    if head.version() >= 2 {
        if let Some(make) = &state.make {
            head.make(make.clone());
        }
        if let Some(model) = &state.model {
            head.model(model.clone());
        }
        if let Some(serial) = &state.serial_number {
            head.serial_number(serial.clone());
        }
    }
    let mut instance = HeadInstance {
        name: state.name.clone(),
        head,
        modes: Vec::new(),
    };
    send_modes::<D>(dh, client, &mut instance, state);
    instance.head.enabled(i32::from(state.enabled));
    if state.enabled {
        send_enabled_properties(&instance, state);
    }
    if instance.head.version() >= 4 {
        instance.head.adaptive_sync(adaptive(state.adaptive_sync));
    }
    Some(instance)
}

fn adaptive(on: bool) -> AdaptiveSyncState {
    if on {
        AdaptiveSyncState::Enabled
    } else {
        AdaptiveSyncState::Disabled
    }
}

/// Creates a mode object per mode of `state` (after finishing the old ones).
fn send_modes<D>(
    dh: &DisplayHandle,
    client: &Client,
    instance: &mut HeadInstance,
    state: &HeadState,
) where
    D: Dispatch<ZwlrOutputModeV1, ModeData> + 'static,
{
    for mode in instance.modes.drain(..) {
        if mode.is_alive() {
            mode.finished();
        }
    }
    let version = instance.head.version().min(MODE_VERSION);
    for mode in &state.modes {
        let Ok(object) = client.create_resource::<ZwlrOutputModeV1, _, D>(
            dh,
            version,
            ModeData {
                head: state.name.clone(),
                mode: *mode,
            },
        ) else {
            continue;
        };
        instance.head.mode(&object);
        object.size(mode.size.0, mode.size.1);
        if mode.refresh_mhz > 0 {
            object.refresh(mode.refresh_mhz);
        }
        if mode.preferred {
            object.preferred();
        }
        instance.modes.push(object);
    }
}

/// current_mode, position, transform and scale: sent only for an enabled head.
fn send_enabled_properties(instance: &HeadInstance, state: &HeadState) {
    if let Some(mode) = current_mode_object(instance, state) {
        instance.head.current_mode(mode);
    }
    instance.head.position(state.position.0, state.position.1);
    instance.head.transform(state.transform);
    instance.head.scale(state.scale);
}

/// The client's live mode object of the head's current mode.
fn current_mode_object<'a>(
    instance: &'a HeadInstance,
    state: &HeadState,
) -> Option<&'a ZwlrOutputModeV1> {
    state
        .current_mode
        .and_then(|i| instance.modes.get(i))
        .filter(|m| m.is_alive())
}

fn send_changes<D>(
    dh: &DisplayHandle,
    client: &Client,
    instance: &mut HeadInstance,
    prev: &HeadState,
    state: &HeadState,
) where
    D: Dispatch<ZwlrOutputModeV1, ModeData> + 'static,
{
    if !instance.head.is_alive() {
        return;
    }
    let modes_changed = prev.modes != state.modes;
    if modes_changed {
        send_modes::<D>(dh, client, instance, state);
    }
    if prev.enabled != state.enabled {
        instance.head.enabled(i32::from(state.enabled));
    }
    if state.enabled {
        if prev.enabled == state.enabled && !modes_changed {
            // Only what changed.
            if prev.current_mode != state.current_mode {
                if let Some(mode) = current_mode_object(instance, state) {
                    instance.head.current_mode(mode);
                }
            }
            if prev.position != state.position {
                instance.head.position(state.position.0, state.position.1);
            }
            if prev.transform != state.transform {
                instance.head.transform(state.transform);
            }
            if prev.scale != state.scale {
                instance.head.scale(state.scale);
            }
        } else {
            send_enabled_properties(instance, state);
        }
    }
    if prev.adaptive_sync != state.adaptive_sync && instance.head.version() >= 4 {
        instance.head.adaptive_sync(adaptive(state.adaptive_sync));
    }
}

impl<D> GlobalDispatch<ZwlrOutputManagerV1, OutputManagementGlobalData, D> for OutputManagementState
where
    D: GlobalDispatch<ZwlrOutputManagerV1, OutputManagementGlobalData>
        + Dispatch<ZwlrOutputManagerV1, ManagerData>
        + Dispatch<ZwlrOutputHeadV1, HeadData>
        + Dispatch<ZwlrOutputModeV1, ModeData>
        + OutputManagementHandler
        + 'static,
{
    fn bind(
        state: &mut D,
        dh: &DisplayHandle,
        client: &Client,
        resource: New<ZwlrOutputManagerV1>,
        _global_data: &OutputManagementGlobalData,
        data_init: &mut DataInit<'_, D>,
    ) {
        let manager = data_init.init(resource, ManagerData);
        let heads = state.current_heads();
        let this = state.output_management_state();
        this.update::<D>(heads);
        let mut instance = ManagerInstance {
            manager: manager.clone(),
            heads: Vec::new(),
        };
        for head in &this.heads {
            if let Some(h) = introduce_head::<D>(dh, client, &manager, head) {
                instance.heads.push(h);
            }
        }
        manager.done(this.serial);
        this.managers.push(instance);
    }

    fn can_view(client: Client, global_data: &OutputManagementGlobalData) -> bool {
        (global_data.filter)(&client)
    }
}

impl<D> Dispatch<ZwlrOutputManagerV1, ManagerData, D> for OutputManagementState
where
    D: Dispatch<ZwlrOutputManagerV1, ManagerData>
        + Dispatch<ZwlrOutputConfigurationV1, ConfigurationData>
        + OutputManagementHandler
        + 'static,
{
    fn request(
        state: &mut D,
        _client: &Client,
        manager: &ZwlrOutputManagerV1,
        request: zwlr_output_manager_v1::Request,
        _data: &ManagerData,
        _dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        match request {
            zwlr_output_manager_v1::Request::CreateConfiguration { id, serial } => {
                data_init.init(
                    id,
                    ConfigurationData {
                        serial,
                        inner: Mutex::new(ConfigurationInner::default()),
                    },
                );
            }
            zwlr_output_manager_v1::Request::Stop => {
                let this = state.output_management_state();
                if let Some(pos) = this.managers.iter().position(|m| &m.manager == manager) {
                    let instance = this.managers.remove(pos);
                    for head in &instance.heads {
                        finish_head(head);
                    }
                }
                manager.finished();
            }
            _ => {}
        }
    }

    fn destroyed(state: &mut D, _client: ClientId, manager: &ZwlrOutputManagerV1, _: &ManagerData) {
        state
            .output_management_state()
            .managers
            .retain(|m| &m.manager != manager);
    }
}

impl<D> Dispatch<ZwlrOutputHeadV1, HeadData, D> for OutputManagementState
where
    D: Dispatch<ZwlrOutputHeadV1, HeadData> + OutputManagementHandler + 'static,
{
    fn request(
        state: &mut D,
        _client: &Client,
        head: &ZwlrOutputHeadV1,
        request: zwlr_output_head_v1::Request,
        _data: &HeadData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        // `release` is the destructor: the object is dead from now on, and updates skip
        // dead objects. It stays in the manager's list so it is not introduced again.
        let _ = (state, head, request);
    }
}

impl<D> Dispatch<ZwlrOutputModeV1, ModeData, D> for OutputManagementState
where
    D: Dispatch<ZwlrOutputModeV1, ModeData> + OutputManagementHandler + 'static,
{
    fn request(
        state: &mut D,
        _client: &Client,
        mode: &ZwlrOutputModeV1,
        request: zwlr_output_mode_v1::Request,
        _data: &ModeData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        // `release` is the destructor; updates skip dead mode objects.
        let _ = (state, mode, request);
    }
}

impl<D> Dispatch<ZwlrOutputConfigurationV1, ConfigurationData, D> for OutputManagementState
where
    D: Dispatch<ZwlrOutputConfigurationV1, ConfigurationData>
        + Dispatch<ZwlrOutputConfigurationHeadV1, Arc<ConfigHeadData>>
        + OutputManagementHandler
        + 'static,
{
    fn request(
        state: &mut D,
        client: &Client,
        config: &ZwlrOutputConfigurationV1,
        request: zwlr_output_configuration_v1::Request,
        data: &ConfigurationData,
        _dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        use zwlr_output_configuration_v1::{Error, Request};
        let Ok(mut inner) = data.inner.lock() else {
            return;
        };
        if matches!(request, Request::Destroy) {
            return;
        }
        if inner.used {
            config.post_error(
                Error::AlreadyUsed,
                "this configuration was already applied or tested; create a new one",
            );
            return;
        }
        match request {
            Request::EnableHead { id, head } => {
                let name = head_name(&head);
                if inner.heads.iter().any(|(n, _)| *n == name) {
                    config.post_error(
                        Error::AlreadyConfiguredHead,
                        format!(
                            "head {name:?} is already enabled or disabled in this configuration"
                        ),
                    );
                    return;
                }
                let data = Arc::new(ConfigHeadData {
                    head: name.clone(),
                    inner: Mutex::new(ConfigHeadInner::default()),
                });
                data_init.init(id, data.clone());
                inner.heads.push((name, Some(data)));
            }
            Request::DisableHead { head } => {
                let name = head_name(&head);
                if inner.heads.iter().any(|(n, _)| *n == name) {
                    config.post_error(
                        Error::AlreadyConfiguredHead,
                        format!(
                            "head {name:?} is already enabled or disabled in this configuration"
                        ),
                    );
                    return;
                }
                inner.heads.push((name, None));
            }
            Request::Apply | Request::Test => {
                let apply = matches!(request, Request::Apply);
                inner.used = true;
                for (_, head) in &inner.heads {
                    if let Some(head) = head {
                        if let Ok(mut h) = head.inner.lock() {
                            h.inert = true;
                        }
                    }
                }
                let this = state.output_management_state();
                if data.serial != this.serial {
                    debug!(client = ?client.id(), serial = data.serial, current = this.serial, "output configuration cancelled: outputs changed since");
                    config.cancelled();
                    return;
                }
                let known = this.head_names_of(&client.id());
                let current: Vec<String> = this.heads.iter().map(|h| h.name.clone()).collect();
                if let Some(missing) = current
                    .iter()
                    .find(|n| known.contains(n) && !inner.heads.iter().any(|(c, _)| c == *n))
                {
                    config.post_error(
                        Error::UnconfiguredHead,
                        format!("head {missing:?} is neither enabled nor disabled in this configuration; name every head"),
                    );
                    return;
                }
                let mut configuration = OutputConfiguration::default();
                for (name, head) in &inner.heads {
                    if !current.contains(name) {
                        // A head that went away: the serial would have changed.
                        config.cancelled();
                        return;
                    }
                    let settings = head.as_ref().map(|h| {
                        h.inner
                            .lock()
                            .map(|i| i.settings.clone())
                            .unwrap_or_default()
                    });
                    configuration.heads.push((name.clone(), settings));
                }
                drop(inner);
                let result = if apply {
                    state.apply_configuration(&configuration)
                } else {
                    state.test_configuration(&configuration)
                };
                match result {
                    Ok(()) => config.succeeded(),
                    Err(why) => {
                        debug!(client = ?client.id(), apply, %why, "output configuration failed");
                        config.failed();
                    }
                }
            }
            _ => {}
        }
    }
}

fn head_name(head: &ZwlrOutputHeadV1) -> String {
    head.data::<HeadData>()
        .map(|d| d.name.clone())
        .unwrap_or_default()
}

impl<D> Dispatch<ZwlrOutputConfigurationHeadV1, Arc<ConfigHeadData>, D> for OutputManagementState
where
    D: Dispatch<ZwlrOutputConfigurationHeadV1, Arc<ConfigHeadData>> + 'static,
{
    fn request(
        _state: &mut D,
        _client: &Client,
        object: &ZwlrOutputConfigurationHeadV1,
        request: zwlr_output_configuration_head_v1::Request,
        data: &Arc<ConfigHeadData>,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        use zwlr_output_configuration_head_v1::{Error, Request};
        let Ok(mut inner) = data.inner.lock() else {
            return;
        };
        if inner.inert {
            return;
        }
        let s = &mut inner.settings;
        let already = |what: &str| {
            object.post_error(
                Error::AlreadySet,
                format!(
                    "the {what} of head {:?} is already set in this configuration",
                    data.head
                ),
            )
        };
        match request {
            Request::SetMode { mode } => {
                if s.mode.is_some() {
                    return already("mode");
                }
                match mode.data::<ModeData>() {
                    Some(m) if m.head == data.head => {
                        s.mode = Some(ModeRequest::Advertised(m.mode))
                    }
                    Some(m) => object.post_error(
                        Error::InvalidMode,
                        format!(
                            "that mode belongs to head {:?}, not {:?}",
                            m.head, data.head
                        ),
                    ),
                    None => object.post_error(Error::InvalidMode, "not a mode object of this head"),
                }
            }
            Request::SetCustomMode {
                width,
                height,
                refresh,
            } => {
                if s.mode.is_some() {
                    return already("mode");
                }
                if width <= 0 || height <= 0 || refresh < 0 {
                    object.post_error(
                        Error::InvalidCustomMode,
                        format!("custom mode {width}x{height}@{refresh} mHz: the size must be positive and the refresh not negative"),
                    );
                    return;
                }
                s.mode = Some(ModeRequest::Custom {
                    size: (width, height),
                    refresh_mhz: refresh,
                });
            }
            Request::SetPosition { x, y } => {
                if s.position.is_some() {
                    return already("position");
                }
                s.position = Some((x, y));
            }
            Request::SetTransform { transform } => {
                if s.transform.is_some() {
                    return already("transform");
                }
                match transform {
                    WEnum::Value(t) => s.transform = Some(t),
                    WEnum::Unknown(v) => object.post_error(
                        Error::InvalidTransform,
                        format!("transform {v} is not a wl_output.transform value (0..=7)"),
                    ),
                }
            }
            Request::SetScale { scale } => {
                if s.scale.is_some() {
                    return already("scale");
                }
                if !(scale > 0.0 && scale.is_finite()) {
                    object.post_error(
                        Error::InvalidScale,
                        format!("scale {scale} must be positive"),
                    );
                    return;
                }
                s.scale = Some(scale);
            }
            Request::SetAdaptiveSync { state } => {
                if s.adaptive_sync.is_some() {
                    return already("adaptive sync state");
                }
                match state {
                    WEnum::Value(AdaptiveSyncState::Enabled) => s.adaptive_sync = Some(true),
                    WEnum::Value(AdaptiveSyncState::Disabled) => s.adaptive_sync = Some(false),
                    _ => object.post_error(
                        Error::InvalidAdaptiveSyncState,
                        "adaptive sync state must be 0 (disabled) or 1 (enabled)",
                    ),
                }
            }
            _ => {}
        }
    }
}

/// Implements the output-management dispatch traits for `$ty` by delegating to this module.
#[macro_export]
macro_rules! delegate_wlr_output_management {
    ($ty:ty) => {
        smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::output_management::v1::server::zwlr_output_manager_v1::ZwlrOutputManagerV1: $crate::wlr_output_management::OutputManagementGlobalData
        ] => $crate::wlr_output_management::OutputManagementState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::output_management::v1::server::zwlr_output_manager_v1::ZwlrOutputManagerV1: $crate::wlr_output_management::ManagerData
        ] => $crate::wlr_output_management::OutputManagementState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::output_management::v1::server::zwlr_output_head_v1::ZwlrOutputHeadV1: $crate::wlr_output_management::HeadData
        ] => $crate::wlr_output_management::OutputManagementState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::output_management::v1::server::zwlr_output_mode_v1::ZwlrOutputModeV1: $crate::wlr_output_management::ModeData
        ] => $crate::wlr_output_management::OutputManagementState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::output_management::v1::server::zwlr_output_configuration_v1::ZwlrOutputConfigurationV1: $crate::wlr_output_management::ConfigurationData
        ] => $crate::wlr_output_management::OutputManagementState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols_wlr::output_management::v1::server::zwlr_output_configuration_head_v1::ZwlrOutputConfigurationHeadV1: std::sync::Arc<$crate::wlr_output_management::ConfigHeadData>
        ] => $crate::wlr_output_management::OutputManagementState);
    };
}
