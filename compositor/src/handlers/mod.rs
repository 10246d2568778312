//! Protocol handlers, one file per protocol; the small ones that only need a getter are here.
//!
//! [`Protocols`] holds the states of the globals that have no other home in `Core`. Each
//! privileged one takes [`security_context::may_use_privileged`] as its filter.

pub mod compositor;
pub mod dmabuf;
pub mod drm_syncobj;
pub mod foreign_toplevel;
pub mod fractional_scale;
pub mod gamma_control;
pub mod idle;
pub mod layer_shell;
pub mod output_management;
pub mod output_power;
pub mod pointer_constraints;
pub mod screencopy;
pub mod seat;
pub mod security_context;
pub mod selection;
pub mod selection_anchor;
pub mod selection_devices;
pub mod session_lock;
pub mod shm;
pub mod surface_requests;
pub mod text_input;
pub mod toplevel_icon;
pub mod virtual_keyboard;
pub mod virtual_pointer;
pub mod xdg_activation;
pub mod xdg_shell;

use smithay::{
    delegate_alpha_modifier, delegate_content_type, delegate_cursor_shape,
    delegate_keyboard_shortcuts_inhibit, delegate_output, delegate_pointer_gestures,
    delegate_presentation, delegate_single_pixel_buffer, delegate_viewporter, delegate_xdg_dialog,
    delegate_xdg_system_bell,
    reexports::wayland_server::{protocol::wl_surface::WlSurface, DisplayHandle},
    wayland::{
        alpha_modifier::AlphaModifierState,
        content_type::ContentTypeState,
        cursor_shape::CursorShapeManagerState,
        fractional_scale::FractionalScaleManagerState,
        input_method::InputMethodManagerState,
        keyboard_shortcuts_inhibit::{
            KeyboardShortcutsInhibitHandler, KeyboardShortcutsInhibitState,
            KeyboardShortcutsInhibitor,
        },
        output::OutputHandler,
        pointer_constraints::PointerConstraintsState,
        pointer_gestures::PointerGesturesState,
        relative_pointer::RelativePointerManagerState,
        security_context::SecurityContextState,
        shell::xdg::{dialog::XdgDialogHandler, dialog::XdgDialogState, ToplevelSurface},
        single_pixel_buffer::SinglePixelBufferState,
        tablet_manager::TabletSeatHandler,
        text_input::TextInputManagerState,
        virtual_keyboard::VirtualKeyboardManagerState,
        xdg_activation::XdgActivationState,
        xdg_system_bell::{XdgSystemBellHandler, XdgSystemBellState},
    },
};
use tracing::debug;

use crate::state::State;
use security_context::may_use_privileged;

/// Globals beyond the core ones (desktop protocols).
pub struct Protocols {
    /// Primary selection and data control.
    pub selection: selection::SelectionProtocols,
    /// wp_security_context_manager_v1.
    pub security_context: SecurityContextState,
    /// How many security-context listeners are open (capped, `security_context.rs`).
    pub security_context_listeners: security_context::ListenerCount,
    /// xdg_activation_v1.
    pub xdg_activation: XdgActivationState,
    /// zwp_keyboard_shortcuts_inhibit_manager_v1.
    pub keyboard_shortcuts_inhibit: KeyboardShortcutsInhibitState,
    /// ext_idle_notifier_v1 and zwp_idle_inhibit_manager_v1.
    pub idle: idle::Idle,
    /// ext_foreign_toplevel_list_v1 and zwlr_foreign_toplevel_manager_v1 (privileged).
    pub foreign_toplevels: foreign_toplevel::ForeignToplevels,
    /// zwlr_gamma_control_manager_v1 (privileged).
    pub gamma_control: lockstep_protocols::wlr_gamma_control::GammaControlState,
    /// zwlr_output_power_manager_v1 (privileged).
    pub output_power: lockstep_protocols::wlr_output_power_management::OutputPowerState,
    /// zwlr_output_manager_v1 (privileged).
    pub output_management: lockstep_protocols::wlr_output_management::OutputManagementState,
    /// zwlr_layer_shell_v1 (privileged).
    pub layer_shell: smithay::wayland::shell::wlr_layer::WlrLayerShellState,
    /// ext_session_lock_manager_v1 (privileged) and whether the session is locked.
    pub session_lock: session_lock::SessionLock,
    /// xdg_toplevel_icon_manager_v1.
    pub toplevel_icons: toplevel_icon::ToplevelIcons,
    /// Globals that need no state after creation: kept so they live as long as the display.
    _stateless: Stateless,
}

/// Globals whose state is only their existence.
struct Stateless {
    _single_pixel_buffer: SinglePixelBufferState,
    _cursor_shape: CursorShapeManagerState,
    _fractional_scale: FractionalScaleManagerState,
    _content_type: ContentTypeState,
    _alpha_modifier: AlphaModifierState,
    _pointer_gestures: PointerGesturesState,
    _pointer_constraints: PointerConstraintsState,
    _relative_pointer: RelativePointerManagerState,
    _virtual_keyboard: VirtualKeyboardManagerState,
    _virtual_pointer: lockstep_protocols::wlr_virtual_pointer::VirtualPointerManagerState,
    _text_input: TextInputManagerState,
    _input_method: InputMethodManagerState,
    _xdg_dialog: XdgDialogState,
    _system_bell: XdgSystemBellState,
    /// The hint is per-surface state (`lockstep_protocols::wp_tearing_control::presentation_hint`);
    /// lockstep stores it and does not tear yet.
    _tearing_control: lockstep_protocols::wp_tearing_control::TearingControlState,
}

impl Protocols {
    /// Creates the globals on `dh`; `loop_handle` runs the idle timers.
    pub fn new(
        dh: &DisplayHandle,
        loop_handle: smithay::reexports::calloop::LoopHandle<'static, State>,
    ) -> Self {
        Self {
            idle: idle::Idle::new(dh, loop_handle),
            foreign_toplevels: foreign_toplevel::ForeignToplevels::new(dh, may_use_privileged),
            gamma_control: lockstep_protocols::wlr_gamma_control::GammaControlState::new::<State, _>(
                dh,
                may_use_privileged,
            ),
            output_power: lockstep_protocols::wlr_output_power_management::OutputPowerState::new::<
                State,
                _,
            >(dh, may_use_privileged),
            output_management:
                lockstep_protocols::wlr_output_management::OutputManagementState::new::<State, _>(
                    dh,
                    may_use_privileged,
                ),
            layer_shell: layer_shell::new_state(dh),
            session_lock: session_lock::SessionLock::new(dh),
            toplevel_icons: toplevel_icon::ToplevelIcons::new(dh),
            selection: selection::SelectionProtocols::new(dh),
            // Sandboxed clients must not create nested contexts (the protocol's rule).
            security_context: SecurityContextState::new::<State, _>(dh, may_use_privileged),
            security_context_listeners: Default::default(),
            xdg_activation: XdgActivationState::new::<State>(dh),
            keyboard_shortcuts_inhibit: KeyboardShortcutsInhibitState::new::<State>(dh),
            _stateless: Stateless {
                _single_pixel_buffer: SinglePixelBufferState::new::<State>(dh),
                _cursor_shape: CursorShapeManagerState::new::<State>(dh),
                _fractional_scale: FractionalScaleManagerState::new::<State>(dh),
                _content_type: ContentTypeState::new::<State>(dh),
                _alpha_modifier: AlphaModifierState::new::<State>(dh),
                _pointer_gestures: PointerGesturesState::new::<State>(dh),
                _pointer_constraints: PointerConstraintsState::new::<State>(dh),
                _relative_pointer: RelativePointerManagerState::new::<State>(dh),
                _virtual_keyboard: VirtualKeyboardManagerState::new::<State, _>(
                    dh,
                    may_use_privileged,
                ),
                _virtual_pointer:
                    lockstep_protocols::wlr_virtual_pointer::VirtualPointerManagerState::new::<
                        State,
                        _,
                    >(dh, may_use_privileged),
                _text_input: TextInputManagerState::new::<State>(dh),
                _input_method: InputMethodManagerState::new::<State, _>(dh, may_use_privileged),
                _xdg_dialog: XdgDialogState::new::<State>(dh),
                _system_bell: XdgSystemBellState::new::<State>(dh),
                _tearing_control: lockstep_protocols::wp_tearing_control::TearingControlState::new::<
                    State,
                >(dh),
            },
        }
    }
}

impl OutputHandler for State {}

/// Cursor-shape requests come from pointers and tablet tools; lockstep has no tablets yet,
/// so the defaults (no tablet cursor) do.
impl TabletSeatHandler for State {}

impl KeyboardShortcutsInhibitHandler for State {
    fn keyboard_shortcuts_inhibit_state(&mut self) -> &mut KeyboardShortcutsInhibitState {
        &mut self.core.protocols.keyboard_shortcuts_inhibit
    }

    /// Granted at once: a remote desktop or VM viewer in focus gets the keys, except those
    /// lockstep never passes on (VT switching).
    fn new_inhibitor(&mut self, inhibitor: KeyboardShortcutsInhibitor) {
        inhibitor.activate();
    }
}

impl XdgDialogHandler for State {
    fn modal_changed(&mut self, toplevel: ToplevelSurface, is_modal: bool) {
        debug!(surface = ?toplevel.wl_surface(), is_modal, "xdg_dialog modal changed");
    }
}

impl XdgSystemBellHandler for State {
    fn ring(&mut self, surface: Option<WlSurface>) {
        debug!(?surface, "system bell");
    }
}

delegate_output!(State);
lockstep_protocols::delegate_xdg_output!(State);

impl lockstep_protocols::xdg_output::XdgOutputHandler for State {
    fn xdg_output_state(&mut self) -> &mut lockstep_protocols::xdg_output::XdgOutputState {
        &mut self.core.xdg_output
    }
}
delegate_presentation!(State);
delegate_viewporter!(State);
delegate_single_pixel_buffer!(State);
delegate_cursor_shape!(State);
delegate_content_type!(State);
delegate_alpha_modifier!(State);
delegate_pointer_gestures!(State);
delegate_keyboard_shortcuts_inhibit!(State);
delegate_xdg_dialog!(State);
delegate_xdg_system_bell!(State);
lockstep_protocols::delegate_wp_tearing_control!(State);
