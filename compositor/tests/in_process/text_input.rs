//! zwp_text_input_v3 with values outside its enums: ignored, and the compositor lives on.
//!
//! smithay 0.7 unwraps these enums while holding the seat's text-input lock; the panic
//! poisoned it and the next keyboard focus change killed the compositor (`lockstep-fuzz`
//! found it). `handlers/text_input.rs` checks them first.

use wayland_client::{Connection, Dispatch, Proxy, QueueHandle};
use wayland_protocols::wp::text_input::zv3::client::{
    zwp_text_input_manager_v3::ZwpTextInputManagerV3,
    zwp_text_input_v3::{self, ZwpTextInputV3},
};
use wayland_protocols_misc::zwp_input_method_v2::client::{
    zwp_input_method_manager_v2::ZwpInputMethodManagerV2, zwp_input_method_v2::ZwpInputMethodV2,
};

use crate::{
    client::ClientData,
    desktop::{action, open, settle, GREEN, RED},
    fixture::{send_raw, ClientId, Fixture},
};

macro_rules! ignore_events {
    ($($iface:ty),*) => {$(
        impl Dispatch<$iface, ()> for ClientData {
            fn event(
                _: &mut Self,
                _: &$iface,
                _: <$iface as Proxy>::Event,
                _: &(),
                _: &Connection,
                _: &QueueHandle<Self>,
            ) {
            }
        }
    )*};
}
ignore_events!(
    ZwpTextInputManagerV3,
    ZwpTextInputV3,
    ZwpInputMethodManagerV2,
    ZwpInputMethodV2
);

fn bind<I: Proxy + 'static>(f: &mut Fixture, c: ClientId, name: &str) -> I
where
    ClientData: Dispatch<I, ()>,
{
    let cl = f.client(c);
    let (id, version) = *cl
        .data
        .globals
        .get(name)
        .unwrap_or_else(|| panic!("{name}"));
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    registry.bind::<I, _, _>(id, version.min(1), &cl.qh, ())
}

#[test]
fn a_content_type_outside_its_enum_is_ignored_and_focus_changes_go_on() {
    let mut f = Fixture::tiling();
    // An input method, so that smithay handles text-input requests at all.
    let ime = f.add_client();
    let manager: ZwpInputMethodManagerV2 = bind(&mut f, ime, "zwp_input_method_manager_v2");
    let cl = f.client(ime);
    let _method = manager.get_input_method(&cl.seat, &cl.qh, ());
    f.roundtrip(ime);

    let c = f.add_client();
    let mut a = open(&mut f, c, RED);
    settle(&mut f, c, &mut [&mut a]);
    let manager: ZwpTextInputManagerV3 = bind(&mut f, c, "zwp_text_input_manager_v3");
    let cl = f.client(c);
    let text_input = manager.get_text_input(&cl.seat, &cl.qh, ());
    text_input.enable();
    send_raw(
        &text_input,
        zwp_text_input_v3::REQ_SET_CONTENT_TYPE_OPCODE,
        vec![
            wayland_client::backend::protocol::Argument::Uint(0),
            wayland_client::backend::protocol::Argument::Uint(4096),
        ],
    );
    send_raw(
        &text_input,
        zwp_text_input_v3::REQ_SET_TEXT_CHANGE_CAUSE_OPCODE,
        vec![wayland_client::backend::protocol::Argument::Uint(77)],
    );
    text_input.commit();
    f.roundtrip(c);
    assert_eq!(f.client(c).protocol_error(), None);

    // Keyboard focus moves (a new window, then back): this is where the poisoned lock
    // used to take the compositor down.
    let mut b = open(&mut f, c, GREEN);
    settle(&mut f, c, &mut [&mut a, &mut b]);
    action(&mut f, "focus left");
    f.roundtrip(c);
    assert_eq!(f.client(c).protocol_error(), None);
    assert_eq!(f.windows().len(), 2);
}
