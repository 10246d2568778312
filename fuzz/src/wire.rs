//! The Wayland wire format, written by hand so that it can be written wrong on purpose.
//!
//! A message is a header of two 32-bit words in native byte order: the object id, then
//! `size << 16 | opcode` (size in bytes, header included). Arguments follow, each padded to 4
//! bytes: `int`/`uint`/`fixed`/`object`/`new_id` are one word; a `string` is its length with
//! the NUL (0 for a null string) then the bytes and the NUL; an `array` is its length then
//! the bytes; a `new_id` without an interface in the XML (`wl_registry.bind`) is a string
//! (the interface), a uint (the version) and the id. `fd` arguments take no bytes: the fds
//! travel as SCM_RIGHTS ancillary data, in order, and the receiver takes one off its queue
//! per `fd` argument it parses.
//!
//! [`Connection`] is a non-blocking client socket with an outgoing queue (one `sendmsg` per
//! message, so each message's fds go with its first byte) and an incoming buffer that
//! [`Connection::next_message`] cuts at message boundaries.

use std::{
    collections::VecDeque,
    io::{self, IoSlice, IoSliceMut},
    mem::MaybeUninit,
    os::{
        fd::{AsFd, OwnedFd},
        unix::net::UnixStream,
    },
    path::Path,
};

use anyhow::{bail, Context, Result};
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use crate::protocol::{ArgType, Message};

/// The largest message libwayland (and wayland-backend) accepts.
pub const MAX_MESSAGE: usize = 4096;
/// At most this many fds go with one `sendmsg` (libwayland's limit for one message batch).
pub const MAX_FDS: usize = 28;
/// The first id the server allocates from (`wl_data_offer` and friends).
pub const SERVER_ID_START: u32 = 0xff00_0000;

/// One argument value to send.
#[derive(Debug)]
pub enum Value {
    /// `int`.
    Int(i32),
    /// `uint`.
    Uint(u32),
    /// `fixed` (raw 24.8 bits).
    Fixed(i32),
    /// `string`: `None` for null; the bytes without the terminating NUL.
    Str(Option<Vec<u8>>),
    /// `object` (0 = null).
    Object(u32),
    /// `new_id` of an interface the XML names.
    NewId(u32),
    /// `new_id` without an interface in the XML: interface name, version, id.
    NewIdDyn(String, u32, u32),
    /// `array`.
    Array(Vec<u8>),
    /// `fd`: sent as ancillary data.
    Fd(OwnedFd),
    /// An `fd` argument whose fd is deliberately not sent.
    FdMissing,
}

/// A message ready to send: bytes and the fds that go with it.
#[derive(Debug, Default)]
pub struct OutMessage {
    /// The encoded message (or garbage).
    pub bytes: Vec<u8>,
    /// Fds in argument order (plus any surplus ones).
    pub fds: Vec<OwnedFd>,
}

fn push_word(out: &mut Vec<u8>, word: u32) {
    out.extend_from_slice(&word.to_ne_bytes());
}

fn push_padded(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

fn push_string(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        None => push_word(out, 0),
        Some(s) => {
            push_word(out, (s.len() + 1) as u32);
            out.extend_from_slice(s);
            out.push(0);
            push_padded(out, &[]);
        }
    }
}

/// Encodes a request. The size field is the real size truncated to 16 bits, so an oversized
/// message is sent as the lie the server has to cope with.
pub fn encode(object: u32, opcode: u16, args: Vec<Value>) -> OutMessage {
    let mut bytes = Vec::with_capacity(64);
    push_word(&mut bytes, object);
    push_word(&mut bytes, 0); // size and opcode, filled in below
    let mut fds = Vec::new();
    for arg in args {
        match arg {
            Value::Int(v) | Value::Fixed(v) => push_word(&mut bytes, v as u32),
            Value::Uint(v) | Value::Object(v) | Value::NewId(v) => push_word(&mut bytes, v),
            Value::Str(s) => push_string(&mut bytes, s.as_deref()),
            Value::NewIdDyn(interface, version, id) => {
                push_string(&mut bytes, Some(interface.as_bytes()));
                push_word(&mut bytes, version);
                push_word(&mut bytes, id);
            }
            Value::Array(a) => {
                push_word(&mut bytes, a.len() as u32);
                push_padded(&mut bytes, &a);
            }
            Value::Fd(fd) => fds.push(fd),
            Value::FdMissing => {}
        }
    }
    let size = (bytes.len() as u32) & 0xffff;
    bytes[4..8].copy_from_slice(&((size << 16) | u32::from(opcode)).to_ne_bytes());
    OutMessage { bytes, fds }
}

/// One decoded event argument.
#[derive(Debug)]
pub enum EventValue {
    /// `int` or `fixed`.
    Int(i32),
    /// `uint`.
    Uint(u32),
    /// `string` (lossy UTF-8; `None` for null).
    Str(Option<String>),
    /// `object`.
    Object(u32),
    /// `new_id`: the object the server just created.
    NewId(u32),
    /// `array`.
    Array(#[allow(dead_code)] Vec<u8>),
    /// `fd`, if one was there to take (held so that it closes when the event is dropped).
    Fd(#[allow(dead_code)] Option<OwnedFd>),
}

impl EventValue {
    /// The value as a u32 (int, uint, object or new_id), else `None`.
    pub fn as_u32(&self) -> Option<u32> {
        match self {
            EventValue::Int(v) => Some(*v as u32),
            EventValue::Uint(v) | EventValue::Object(v) | EventValue::NewId(v) => Some(*v),
            _ => None,
        }
    }
}

struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn word(&mut self) -> Result<u32> {
        let Some(w) = self.body.get(self.at..self.at + 4) else {
            bail!("message ends early at byte {}", self.at);
        };
        self.at += 4;
        Ok(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
    }

    fn bytes(&mut self, len: usize) -> Result<&[u8]> {
        let padded = len.div_ceil(4) * 4;
        let Some(b) = self.body.get(self.at..self.at + padded) else {
            bail!("a {len}-byte argument runs past the message end");
        };
        self.at += padded;
        Ok(&b[..len])
    }
}

/// Decodes the body (after the header) of an event described by `msg`, taking its fds off
/// `fds`.
pub fn decode(body: &[u8], msg: &Message, fds: &mut VecDeque<OwnedFd>) -> Result<Vec<EventValue>> {
    let mut r = Reader { body, at: 0 };
    let mut out = Vec::with_capacity(msg.args.len());
    for arg in &msg.args {
        out.push(match arg.ty {
            ArgType::Int | ArgType::Fixed => EventValue::Int(r.word()? as i32),
            ArgType::Uint => EventValue::Uint(r.word()?),
            ArgType::Object => EventValue::Object(r.word()?),
            ArgType::NewId => EventValue::NewId(r.word()?),
            ArgType::String => {
                let len = r.word()? as usize;
                if len == 0 {
                    EventValue::Str(None)
                } else {
                    let b = r.bytes(len)?;
                    let s = b.strip_suffix(&[0]).unwrap_or(b);
                    EventValue::Str(Some(String::from_utf8_lossy(s).into_owned()))
                }
            }
            ArgType::Array => {
                let len = r.word()? as usize;
                EventValue::Array(r.bytes(len)?.to_vec())
            }
            ArgType::Fd => EventValue::Fd(fds.pop_front()),
        });
    }
    Ok(out)
}

/// What [`Connection::receive`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Some bytes (and maybe fds) arrived.
    Data,
    /// Nothing to read right now.
    WouldBlock,
    /// The server closed the connection.
    Closed,
}

/// A raw client connection to a Wayland socket.
#[derive(Debug)]
pub struct Connection {
    socket: UnixStream,
    inbuf: Vec<u8>,
    infds: VecDeque<OwnedFd>,
    out: VecDeque<OutMessage>,
    /// How much of the front message has been written.
    out_written: usize,
}

/// The path of the socket `display` names (`$XDG_RUNTIME_DIR/$display` unless absolute).
pub fn socket_path(display: &str) -> Result<std::path::PathBuf> {
    if display.starts_with('/') {
        return Ok(display.into());
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").context("XDG_RUNTIME_DIR is not set")?;
    Ok(Path::new(&runtime).join(display))
}

impl Connection {
    /// Connects (non-blocking afterwards).
    pub fn connect(path: &Path) -> io::Result<Connection> {
        let socket = UnixStream::connect(path)?;
        socket.set_nonblocking(true)?;
        Ok(Connection {
            socket,
            inbuf: Vec::with_capacity(8192),
            infds: VecDeque::new(),
            out: VecDeque::new(),
            out_written: 0,
        })
    }

    /// The socket, to poll on.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Queues a message.
    pub fn queue(&mut self, msg: OutMessage) {
        self.out.push_back(msg);
    }

    /// Bytes queued and not yet written.
    pub fn pending_out(&self) -> usize {
        self.out.iter().map(|m| m.bytes.len()).sum::<usize>() - self.out_written
    }

    /// Writes as much of the queue as the socket takes. `Ok(true)` when all is written.
    pub fn flush(&mut self) -> io::Result<bool> {
        while let Some(front) = self.out.front() {
            let rest = &front.bytes[self.out_written..];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            // The fds go with the first byte of their message, never again after a short write.
            let borrowed: Vec<_> = if self.out_written == 0 {
                front.fds.iter().take(MAX_FDS).map(|f| f.as_fd()).collect()
            } else {
                Vec::new()
            };
            if !borrowed.is_empty() {
                control.push(SendAncillaryMessage::ScmRights(&borrowed));
            }
            let flags = SendFlags::NOSIGNAL | SendFlags::DONTWAIT;
            let empty = rest.is_empty();
            let written = if empty {
                0 // a message of zero bytes (a deliberately empty garbage write)
            } else {
                match sendmsg(&self.socket, &[IoSlice::new(rest)], &mut control, flags) {
                    Ok(n) => n,
                    Err(rustix::io::Errno::AGAIN) => return Ok(false),
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(err) => return Err(err.into()),
                }
            };
            self.out_written += written;
            if self.out_written >= front.bytes.len() {
                self.out.pop_front();
                self.out_written = 0;
            } else if written > 0 {
                // Partially written: the fds went out; forget our copies of them.
                if let Some(front) = self.out.front_mut() {
                    front.fds.clear();
                }
            }
        }
        Ok(true)
    }

    /// Reads what is there (bytes and fds) without blocking.
    pub fn receive(&mut self) -> io::Result<Received> {
        let mut buf = [0u8; 16384];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let flags = RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC;
        let got = loop {
            match recvmsg(
                &self.socket,
                &mut [IoSliceMut::new(&mut buf)],
                &mut control,
                flags,
            ) {
                Ok(got) => break got,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => return Ok(Received::WouldBlock),
                Err(err) => return Err(err.into()),
            }
        };
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = msg {
                self.infds.extend(fds);
            }
        }
        if got.bytes == 0 {
            return Ok(Received::Closed);
        }
        self.inbuf.extend_from_slice(&buf[..got.bytes]);
        Ok(Received::Data)
    }

    /// The next complete message in the incoming buffer: object, opcode, body.
    /// `Err` when the server sent a header that cannot be right (size < 8).
    pub fn next_message(&mut self) -> Result<Option<(u32, u16, Vec<u8>)>> {
        if self.inbuf.len() < 8 {
            return Ok(None);
        }
        let word = |i: usize| {
            u32::from_ne_bytes([
                self.inbuf[i],
                self.inbuf[i + 1],
                self.inbuf[i + 2],
                self.inbuf[i + 3],
            ])
        };
        let object = word(0);
        let size_opcode = word(4);
        let size = (size_opcode >> 16) as usize;
        if size < 8 || size % 4 != 0 {
            bail!("the server sent a message header with size {size}");
        }
        if self.inbuf.len() < size {
            return Ok(None);
        }
        let body = self.inbuf[8..size].to_vec();
        self.inbuf.drain(..size);
        Ok(Some((object, (size_opcode & 0xffff) as u16, body)))
    }

    /// Fds received and not yet taken by a decoded event.
    pub fn fds(&mut self) -> &mut VecDeque<OwnedFd> {
        &mut self.infds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Arg;

    fn arg(ty: ArgType) -> Arg {
        Arg {
            name: String::new(),
            ty,
            interface: None,
            nullable: false,
            enum_name: None,
        }
    }

    #[test]
    fn encodes_header_strings_and_arrays() {
        let m = encode(
            3,
            1,
            vec![
                Value::Str(Some(b"abc".to_vec())),
                Value::Array(vec![1, 2, 3, 4, 5]),
                Value::Str(None),
                Value::Int(-1),
            ],
        );
        let words: Vec<u32> = m
            .bytes
            .chunks(4)
            .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        // header(2) + string(1 + 1) + array(1 + 2) + null string(1) + int(1)
        assert_eq!(m.bytes.len(), 9 * 4);
        assert_eq!(words[0], 3);
        assert_eq!(words[1], (36 << 16) | 1);
        assert_eq!(words[2], 4); // "abc\0"
        assert_eq!(&m.bytes[12..16], b"abc\0");
        assert_eq!(words[4], 5);
        assert_eq!(words[7], 0);
        assert_eq!(words[8], u32::MAX);
    }

    #[test]
    fn decodes_what_it_encodes() {
        let m = encode(
            1,
            0,
            vec![
                Value::Uint(7),
                Value::Str(Some(b"wl_shm".to_vec())),
                Value::Array(vec![9; 6]),
                Value::NewId(0xff00_0001),
            ],
        );
        let msg = Message {
            name: "e".into(),
            since: 1,
            destructor: false,
            args: vec![
                arg(ArgType::Uint),
                arg(ArgType::String),
                arg(ArgType::Array),
                arg(ArgType::NewId),
                arg(ArgType::Fd),
            ],
        };
        let v = decode(&m.bytes[8..], &msg, &mut VecDeque::new()).unwrap();
        assert_eq!(v[0].as_u32(), Some(7));
        assert!(matches!(&v[1], EventValue::Str(Some(s)) if s == "wl_shm"));
        assert!(matches!(&v[2], EventValue::Array(a) if a == &[9; 6]));
        assert_eq!(v[3].as_u32(), Some(0xff00_0001));
        assert!(matches!(v[4], EventValue::Fd(None)));
        // Truncated bodies are errors, not panics.
        assert!(decode(&m.bytes[8..14], &msg, &mut VecDeque::new()).is_err());
    }

    #[test]
    fn bind_new_id_has_interface_and_version() {
        let m = encode(
            2,
            0,
            vec![Value::Uint(1), Value::NewIdDyn("wl_shm".into(), 1, 5)],
        );
        // header 2 + name 1 + string (len + "wl_shm\0" padded to 8) 3 + version + id
        assert_eq!(m.bytes.len(), 8 * 4);
        assert_eq!(&m.bytes[16..23], b"wl_shm\0");
    }
}
