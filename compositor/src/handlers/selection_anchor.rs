//! The anchor: a connection lockstep makes to itself that owns one selection device of each
//! kind for as long as lockstep runs.
//!
//! Why: `selection_devices.rs` makes smithay forget the devices of clients that are gone by
//! replaying smithay's `release` handler, which needs the user data of a *live* device of the
//! same kind (for the seat in it). smithay's user data types cannot be built outside smithay,
//! and a client's own new device has no user data until its request has been dispatched, so a
//! device that is always there is the one lender that always works.
//!
//! How: a socket pair; the server end is inserted as a client like any other (trusted: no
//! security context). On the client end lockstep writes the requests a client would send:
//! `wl_display.get_registry`; then, once the `wl_registry.global` events have named wl_seat and
//! the four device managers, a `wl_registry.bind` for each and one `get_*device` per manager,
//! with fixed object ids ([`DATA_DEVICE`] and the others). Later events (selection offers to
//! the data-control devices) are read and dropped by the same event-loop source, which also
//! closes any fd that arrives with them, so the connection never fills up. The anchor never
//! has keyboard focus and has no surfaces, so nothing else sees it.

use std::{
    io::Write,
    mem::MaybeUninit,
    os::unix::{io::AsFd, net::UnixStream},
    sync::Arc,
};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use smithay::reexports::{
    calloop::{generic::Generic, Interest, LoopHandle, Mode, PostAction},
    wayland_server::{backend::ClientId, DisplayHandle, Resource},
};
use tracing::{debug, warn};

use crate::{
    handlers::selection_devices::DeviceKind,
    state::{ClientState, State},
};

const REGISTRY: u32 = 2;
const SEAT: u32 = 3;
const DATA_DEVICE_MANAGER: u32 = 4;
const PRIMARY_MANAGER: u32 = 5;
const WLR_MANAGER: u32 = 6;
const EXT_MANAGER: u32 = 7;
/// The anchor's wl_data_device.
pub const DATA_DEVICE: u32 = 8;
/// The anchor's zwp_primary_selection_device_v1.
pub const PRIMARY_DEVICE: u32 = 9;
/// The anchor's zwlr_data_control_device_v1.
pub const WLR_DEVICE: u32 = 10;
/// The anchor's ext_data_control_device_v1.
pub const EXT_DEVICE: u32 = 11;

/// The anchor connection (module docs); `None` inside if it could not be made.
#[derive(Debug, Default)]
pub struct SelectionAnchor {
    client: Option<ClientId>,
}

impl SelectionAnchor {
    /// Connects the anchor and asks for the globals; the rest follows from the event loop.
    /// On failure (no fds left) lockstep runs without it and logs why: devices of clients
    /// that hang up are then kept, as smithay alone would.
    pub fn connect(dh: &DisplayHandle, loop_handle: &LoopHandle<'static, State>) -> Self {
        match Self::try_connect(dh, loop_handle) {
            Ok(anchor) => anchor,
            Err(err) => {
                warn!(
                    %err,
                    "cannot make the selection anchor connection; data devices of clients \
                     that hang up will not be freed"
                );
                Self::default()
            }
        }
    }

    fn try_connect(
        dh: &DisplayHandle,
        loop_handle: &LoopHandle<'static, State>,
    ) -> std::io::Result<Self> {
        let (server_end, mut client_end) = UnixStream::pair()?;
        let client = dh
            .clone()
            .insert_client(server_end, Arc::new(ClientState::default()))?;
        let mut wire = Vec::new();
        request(&mut wire, 1, 1, &[Arg::Uint(REGISTRY)]); // wl_display.get_registry
        client_end.write_all(&wire)?;
        client_end.set_nonblocking(true)?;
        let mut conn = Connection {
            received: Vec::new(),
            names: Default::default(),
            bound: false,
        };
        loop_handle
            .insert_source(
                Generic::new(client_end, Interest::READ, Mode::Level),
                move |_, stream, _| Ok(conn.read(stream)),
            )
            .map_err(|err| std::io::Error::other(err.to_string()))?;
        debug!(client = ?client.id(), "selection anchor connected");
        Ok(Self {
            client: Some(client.id()),
        })
    }

    /// The anchor's device of kind `K`, once its request has been dispatched.
    pub fn device<K: DeviceKind>(&self, dh: &DisplayHandle) -> Option<K::Device> {
        let client = self.client.clone()?;
        let id = dh
            .backend_handle()
            .object_for_protocol_id(client, K::Device::interface(), K::ANCHOR_ID)
            .ok()?;
        K::Device::from_id(dh, id).ok()
    }
}

/// The globals the anchor binds, with the object id each gets, and the device each manager
/// makes (opcode 1 is get_data_device / get_device (new id, seat) on all four managers).
const BINDS: [(&str, u32, Option<u32>); 5] = [
    ("wl_seat", SEAT, None),
    (
        "wl_data_device_manager",
        DATA_DEVICE_MANAGER,
        Some(DATA_DEVICE),
    ),
    (
        "zwp_primary_selection_device_manager_v1",
        PRIMARY_MANAGER,
        Some(PRIMARY_DEVICE),
    ),
    (
        "zwlr_data_control_manager_v1",
        WLR_MANAGER,
        Some(WLR_DEVICE),
    ),
    ("ext_data_control_manager_v1", EXT_MANAGER, Some(EXT_DEVICE)),
];

/// The client end of the anchor connection.
struct Connection {
    /// Bytes of events not parsed yet (until the binds are sent).
    received: Vec<u8>,
    /// Global names per interface of [`BINDS`], from `wl_registry.global`.
    names: [Option<u32>; 5],
    bound: bool,
}

impl Connection {
    /// Reads what the server sent, closing any fds; binds once the globals are known; stops
    /// on hang-up.
    fn read(&mut self, stream: &UnixStream) -> PostAction {
        let mut bytes = [0u8; 4096];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(28))];
        loop {
            let mut ancillary = RecvAncillaryBuffer::new(&mut space);
            let mut iov = [std::io::IoSliceMut::new(&mut bytes)];
            let n = match rustix::net::recvmsg(
                stream.as_fd(),
                &mut iov,
                &mut ancillary,
                RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(msg) if msg.bytes == 0 => {
                    warn!("the selection anchor connection was closed by the server");
                    return PostAction::Remove;
                }
                Ok(msg) => msg.bytes,
                Err(rustix::io::Errno::AGAIN) => return PostAction::Continue,
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => {
                    warn!(%err, "reading the selection anchor connection failed");
                    return PostAction::Remove;
                }
            };
            for message in ancillary.drain() {
                if let RecvAncillaryMessage::ScmRights(fds) = message {
                    drop(fds.collect::<Vec<_>>()); // closes them
                }
            }
            if !self.bound {
                self.received.extend_from_slice(&bytes[..n]);
                self.parse_globals();
                if self.names.iter().all(Option::is_some) {
                    if let Err(err) = self.bind(stream) {
                        warn!(%err, "the selection anchor cannot bind its globals");
                        return PostAction::Remove;
                    }
                }
            }
        }
    }

    /// Takes the names of [`BINDS`]' interfaces from the complete messages received so far.
    fn parse_globals(&mut self) {
        let mut at = 0;
        while let Some(header) = self.received.get(at..at + 8) {
            let object = word(header, 0);
            let size_opcode = word(header, 4);
            let size = (size_opcode >> 16) as usize;
            if size < 8 {
                self.received.clear(); // not the wire format; give up on this data
                return;
            }
            let Some(message) = self.received.get(at..at + size) else {
                break; // the rest comes with the next read
            };
            if object == REGISTRY && size_opcode & 0xffff == 0 {
                if let Some((name, interface)) = global_event(message) {
                    if let Some(i) = BINDS.iter().position(|(i, _, _)| *i == interface) {
                        self.names[i].get_or_insert(name);
                    }
                }
            }
            at += size;
        }
        self.received.drain(..at);
    }

    /// Binds the globals and makes the devices.
    fn bind(&mut self, mut stream: &UnixStream) -> std::io::Result<()> {
        let mut wire = Vec::new();
        for ((interface, id, _), name) in BINDS.iter().zip(self.names) {
            let name = name.unwrap_or_default();
            let args = [
                Arg::Uint(name),
                Arg::Str(interface),
                Arg::Uint(1),
                Arg::Uint(*id),
            ];
            request(&mut wire, REGISTRY, 0, &args); // wl_registry.bind
        }
        for (_, manager, device) in BINDS {
            if let Some(device) = device {
                request(&mut wire, manager, 1, &[Arg::Uint(device), Arg::Uint(SEAT)]);
            }
        }
        // A few hundred bytes into an empty socket buffer: written at once.
        stream.write_all(&wire)?;
        self.bound = true;
        self.received = Vec::new();
        Ok(())
    }
}

/// The native-endian word at `at` of `bytes` (which has it).
fn word(bytes: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&bytes[at..at + 4]);
    u32::from_ne_bytes(w)
}

/// The name and interface of a `wl_registry.global` event (name, interface, version).
fn global_event(message: &[u8]) -> Option<(u32, &str)> {
    let name = word(message.get(8..12)?, 0);
    let len = word(message.get(12..16)?, 0) as usize;
    let interface = message.get(16..16 + len.checked_sub(1)?)?;
    Some((name, std::str::from_utf8(interface).ok()?))
}

/// One argument of a request on the wire.
enum Arg<'a> {
    Uint(u32),
    Str(&'a str),
}

/// Appends a request in the Wayland wire format (native-endian words; a string is its length
/// with the NUL, its bytes, the NUL and padding to a word).
fn request(wire: &mut Vec<u8>, object: u32, opcode: u16, args: &[Arg<'_>]) {
    let mut body = Vec::new();
    for arg in args {
        match arg {
            Arg::Uint(v) => body.extend_from_slice(&v.to_ne_bytes()),
            Arg::Str(s) => {
                let len = s.len() as u32 + 1;
                body.extend_from_slice(&len.to_ne_bytes());
                body.extend_from_slice(s.as_bytes());
                body.push(0);
                while body.len() % 4 != 0 {
                    body.push(0);
                }
            }
        }
    }
    let size = (8 + body.len()) as u32;
    wire.extend_from_slice(&object.to_ne_bytes());
    wire.extend_from_slice(&((size << 16) | u32::from(opcode)).to_ne_bytes());
    wire.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bind_request_is_encoded_as_the_wire_format_says() {
        let mut wire = Vec::new();
        request(
            &mut wire,
            2,
            0,
            &[Arg::Uint(7), Arg::Str("wl_seat"), Arg::Uint(1)],
        );
        // header (8) + name (4) + string length (4) + "wl_seat\0" (8) + version (4)
        assert_eq!(wire.len(), 28);
        assert_eq!(&wire[0..4], &2u32.to_ne_bytes());
        assert_eq!(&wire[4..8], &(28u32 << 16).to_ne_bytes());
        assert_eq!(&wire[12..16], &8u32.to_ne_bytes());
        assert_eq!(&wire[16..24], b"wl_seat\0");
        assert_eq!(&wire[24..28], &1u32.to_ne_bytes());
    }

    #[test]
    fn global_events_are_parsed_across_reads_and_the_binds_wait_for_all_five() {
        let mut events = Vec::new();
        for (i, (interface, _, _)) in BINDS.iter().enumerate() {
            // An event has the same layout as a request with these arguments.
            let args = [Arg::Uint(40 + i as u32), Arg::Str(interface), Arg::Uint(3)];
            request(&mut events, REGISTRY, 0, &args);
        }
        let mut conn = Connection {
            received: Vec::new(),
            names: Default::default(),
            bound: false,
        };
        let (first, rest) = events.split_at(37); // cut inside the second event
        conn.received.extend_from_slice(first);
        conn.parse_globals();
        assert_eq!(conn.names[0], Some(40));
        assert_eq!(conn.names[1], None);
        conn.received.extend_from_slice(rest);
        conn.parse_globals();
        assert_eq!(
            conn.names,
            [Some(40), Some(41), Some(42), Some(43), Some(44)]
        );
        assert!(conn.received.is_empty());
    }
}
