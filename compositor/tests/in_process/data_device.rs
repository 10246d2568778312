//! Copy and paste between two clients through wl_data_device.

use std::{
    io::{Read, Write},
    os::fd::{AsFd, OwnedFd},
    time::Duration,
};

use wayland_client::{
    event_created_child,
    protocol::{
        wl_data_device::{self, WlDataDevice},
        wl_data_device_manager::WlDataDeviceManager,
        wl_data_offer::{self, WlDataOffer},
        wl_data_source::{self, WlDataSource},
        wl_keyboard::{self, WlKeyboard},
    },
    Connection, Dispatch, Proxy, QueueHandle,
};

use crate::{
    client::ClientData,
    fixture::{ClientId, Fixture},
};

/// What a client saw of the data device.
#[derive(Default)]
pub struct Clipboard {
    /// Serial of the last wl_keyboard.enter.
    pub enter_serial: Option<u32>,
    /// The current selection offer and its mime types.
    pub selection: Option<WlDataOffer>,
    /// Mime types offered, per offer id.
    pub mime_types: Vec<(u32, String)>,
    /// Text the source was asked to send, written on `send`.
    pub text_to_send: Option<String>,
}

impl Dispatch<WlDataDeviceManager, ()> for ClientData {
    fn event(
        _: &mut Self,
        _: &WlDataDeviceManager,
        _: <WlDataDeviceManager as Proxy>::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<WlDataDevice, ()> for ClientData {
    fn event(
        state: &mut Self,
        _: &WlDataDevice,
        event: wl_data_device::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_data_device::Event::Selection { id } = event {
            state.clipboard.selection = id;
        }
    }

    event_created_child!(ClientData, WlDataDevice, [
        wl_data_device::EVT_DATA_OFFER_OPCODE => (WlDataOffer, ()),
    ]);
}

impl Dispatch<WlDataOffer, ()> for ClientData {
    fn event(
        state: &mut Self,
        offer: &WlDataOffer,
        event: wl_data_offer::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_data_offer::Event::Offer { mime_type } = event {
            state
                .clipboard
                .mime_types
                .push((offer.id().protocol_id(), mime_type));
        }
    }
}

impl Dispatch<WlDataSource, ()> for ClientData {
    fn event(
        state: &mut Self,
        _: &WlDataSource,
        event: wl_data_source::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_data_source::Event::Send { fd, .. } = event {
            let text = state.clipboard.text_to_send.clone().unwrap_or_default();
            let mut file = std::fs::File::from(fd);
            let _ = file.write_all(text.as_bytes());
        }
    }
}

impl Dispatch<WlKeyboard, ()> for ClientData {
    fn event(
        state: &mut Self,
        _: &WlKeyboard,
        event: wl_keyboard::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            wl_keyboard::Event::Enter { serial, .. } => {
                state.clipboard.enter_serial = Some(serial);
            }
            wl_keyboard::Event::Keymap { fd, size, .. } => {
                let mut text = vec![0u8; size as usize];
                let _ = rustix::io::pread(&fd, &mut text, 0);
                state
                    .keymaps
                    .push(String::from_utf8_lossy(&text).into_owned());
            }
            wl_keyboard::Event::Key {
                key,
                state: key_state,
                ..
            } => {
                let pressed =
                    key_state == wayland_client::WEnum::Value(wl_keyboard::KeyState::Pressed);
                state.keys.push((key, pressed));
            }
            _ => {}
        }
    }
}

fn data_device(f: &mut Fixture, c: ClientId) -> (WlDataDeviceManager, WlDataDevice) {
    let cl = f.client(c);
    let (name, _) = *cl
        .data
        .globals
        .get("wl_data_device_manager")
        .expect("wl_data_device_manager");
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager = registry.bind::<WlDataDeviceManager, _, _>(name, 3, &cl.qh, ());
    let device = manager.get_data_device(&cl.seat, &cl.qh, ());
    cl.seat.get_keyboard(&cl.qh, ());
    f.roundtrip(c);
    (manager, device)
}

/// Client `a` offers a selection of `mime` through its data device.
fn copy(
    f: &mut Fixture,
    a: ClientId,
    (manager, device): (&WlDataDeviceManager, &WlDataDevice),
    serial: u32,
    mime: &str,
) -> WlDataSource {
    let cl = f.client(a);
    let source = manager.create_data_source(&cl.qh, ());
    source.offer(mime.into());
    device.set_selection(Some(&source), serial);
    source
}

/// A new client with a data device and a window, which takes focus and must be offered the
/// current selection.
fn focused_client_with_selection(f: &mut Fixture) -> (ClientId, WlDataDeviceManager, WlDataDevice) {
    let b = f.add_client();
    let (manager, device) = data_device(f, b);
    f.map_window(b, 100, 100, 0xff20_c040);
    let got = f.wait_until(Duration::from_secs(2), |f| {
        f.client(b).data.clipboard.selection.is_some()
    });
    assert!(got, "the focused client receives the selection");
    (b, manager, device)
}

#[test]
fn text_copied_in_one_client_pastes_in_another() {
    let mut f = Fixture::new();
    let a = f.add_client();
    let (manager_a, device_a) = data_device(&mut f, a);
    f.map_window(a, 100, 100, 0xffd0_2020);
    f.roundtrip(a);
    let serial = f
        .client(a)
        .data
        .clipboard
        .enter_serial
        .expect("A has keyboard focus");

    // A copies.
    copy(
        &mut f,
        a,
        (&manager_a, &device_a),
        serial,
        "text/plain;charset=utf-8",
    );
    f.client(a).data.clipboard.text_to_send = Some("hello from A".into());
    f.roundtrip(a);

    // B takes focus and sees the selection.
    let (b, _manager_b, _device_b) = focused_client_with_selection(&mut f);
    let offer = f.client(b).data.clipboard.selection.clone().unwrap();
    let mimes: Vec<String> = f
        .client(b)
        .data
        .clipboard
        .mime_types
        .iter()
        .filter(|(id, _)| *id == offer.id().protocol_id())
        .map(|(_, m)| m.clone())
        .collect();
    assert_eq!(mimes, vec!["text/plain;charset=utf-8".to_string()]);

    // B pastes.
    let (read_end, write_end): (OwnedFd, OwnedFd) = rustix::pipe::pipe().unwrap();
    offer.receive("text/plain;charset=utf-8".into(), write_end.as_fd());
    drop(write_end);
    f.roundtrip(b);
    f.roundtrip(a); // A answers `send` by writing into the pipe and closing it
    f.roundtrip(b);
    let mut text = String::new();
    std::fs::File::from(read_end)
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "hello from A");
}

/// smithay 0.7 keeps a data device in its seat data until the client releases it; lockstep
/// makes it forget the devices of clients that hung up (`handlers/selection_devices.rs`).
#[test]
fn data_devices_of_clients_that_hang_up_are_forgotten_and_live_ones_keep_working() {
    let mut f = Fixture::new();
    let gone: Vec<ClientId> = (0..50)
        .map(|_| {
            let c = f.add_client();
            let _ = data_device(&mut f, c);
            c
        })
        .collect();
    // Drop them, newest first so the indices stay valid.
    for c in gone.iter().rev() {
        drop(f.clients.remove(c.0));
    }
    let reaper = |f: &Fixture| {
        let r = &f.server.state.core.protocols.selection.reaper;
        (r.data.pending(), r.data.forgotten())
    };
    let hung_up = f.wait_until(Duration::from_secs(5), |f| reaper(f).0 == 50);
    assert!(hung_up, "50 dead devices are waiting, got {:?}", reaper(&f));

    // The next data device lends its seat to forget them.
    let a = f.add_client();
    let (manager_a, device_a) = data_device(&mut f, a);
    assert_eq!(
        reaper(&f),
        (0, 50),
        "(pending, forgotten) after a new device"
    );

    // Forgetting the dead ones did not forget the live ones: copy and paste still works.
    f.map_window(a, 100, 100, 0xffd0_2020);
    f.roundtrip(a);
    let serial = f.client(a).data.clipboard.enter_serial.expect("A focused");
    copy(&mut f, a, (&manager_a, &device_a), serial, "text/plain");
    f.roundtrip(a);
    let _b = focused_client_with_selection(&mut f);

    // A device released by its client (smithay forgot it already) is replayed harmlessly.
    device_a.release();
    f.roundtrip(a);
    let (_manager_c, _device_c) = data_device(&mut f, a);
    assert_eq!(reaper(&f).0, 0);
}
