//! Request generation: what a session sends next.
//!
//! Most requests are plausible: a live object of the right interface for every `object`
//! argument, new ids in sequence, enum values from the XML's enums, recent serials for
//! `serial` arguments, sizes that fit (shm pools and buffers, dmabuf planes). A session's
//! share of hostile requests (`--hostile`, times a per-session multiplier so that some
//! sessions go deep and others go wild) carries one hostile element each: an argument out of
//! range or of the wrong kind (huge and negative ints, odd strings, odd-length arrays,
//! unknown, dead or wrong-interface object ids, reused or out-of-sequence new ids, wrong-kind
//! or missing fds), or a broken message (an unknown opcode, a request too new for the
//! object's version, a lying size field, a truncated body, surplus fds, garbage bytes).
//!
//! A few requests have generators of their own because random values would never make them
//! interesting: `wl_registry.bind`, `wl_shm.create_pool`, `wl_shm_pool.create_buffer` and
//! `.resize`, `zwp_linux_buffer_params_v1.add` and `.create(_immed)`, and
//! `wp_linux_drm_syncobj_manager_v1.import_timeline`. Pool files are sometimes kept so that
//! a later step can shrink them under the compositor's mapping.

use std::{os::fd::OwnedFd, sync::Arc};

use crate::{
    client::{Extra, Session},
    fds::shrink,
    protocol::{Arg, ArgType, Interface, Message},
    stats::Stats,
    wire::{encode, OutMessage, Value, MAX_MESSAGE, SERVER_ID_START},
};

/// `DRM_FORMAT_XRGB8888` and `DRM_FORMAT_ARGB8888`.
const DRM_FORMATS: [u32; 2] = [0x3432_5258, 0x3432_5241];
/// `DRM_FORMAT_MOD_INVALID`.
const MOD_INVALID: u64 = 0x00ff_ffff_ffff_ffff;
/// The stride and width of the dmabufs the fuzzer describes (64 XRGB8888 pixels).
const DMABUF_WIDTH: u32 = 64;
const DMABUF_STRIDE: u32 = DMABUF_WIDTH * 4;
const DMABUF_MAX_HEIGHT: u32 = 64;

/// A request being built: its argument values and their description.
struct Built {
    values: Vec<Value>,
    parts: Vec<String>,
    /// Objects the request creates: id and interface.
    created: Vec<(u32, Arc<Interface>)>,
    /// Fuzzer-side state for an object (the target or a new one) after sending.
    extra: Option<(u32, Extra)>,
}

impl Built {
    fn new() -> Built {
        Built {
            values: Vec::new(),
            parts: Vec::new(),
            created: Vec::new(),
            extra: None,
        }
    }

    fn push(&mut self, value: Value) {
        self.parts.push(describe(&value));
        self.values.push(value);
    }

    fn push_fd(&mut self, fd: std::io::Result<OwnedFd>, label: &str) {
        match fd {
            Ok(fd) => {
                self.values.push(Value::Fd(fd));
                self.parts.push(format!("fd:{label}"));
            }
            Err(err) => {
                self.values.push(Value::FdMissing);
                self.parts.push(format!("fd:none({err})"));
            }
        }
    }
}

/// A short description of a value for the request history.
fn describe(value: &Value) -> String {
    match value {
        Value::Int(v) => v.to_string(),
        Value::Uint(v) => v.to_string(),
        Value::Fixed(v) => format!("{}f", f64::from(*v) / 256.0),
        Value::Str(None) => "null".into(),
        Value::Str(Some(s)) if s.len() <= 32 && s.iter().all(|b| b.is_ascii_graphic()) => {
            format!("{:?}", String::from_utf8_lossy(s))
        }
        Value::Str(Some(s)) => format!("str[{}]", s.len()),
        Value::Object(0) => "null".into(),
        Value::Object(id) => format!("#{id}"),
        Value::NewId(id) => format!("new#{id}"),
        Value::NewIdDyn(i, v, id) => format!("new#{id}:{i}v{v}"),
        Value::Array(a) => format!("array[{}]", a.len()),
        Value::Fd(_) => "fd".into(),
        Value::FdMissing => "fd:missing".into(),
    }
}

/// Ways to break a whole message rather than one argument.
#[derive(Debug, Clone, Copy)]
enum Breakage {
    SurplusFds,
    SizeTooBig,
    SizeTooSmall,
    Truncated,
}

impl Session<'_> {
    /// Sends one random request (or a hostile non-request).
    pub(crate) fn random_request(&mut self) {
        let hostile = self.rng.chance(self.hostility);
        if hostile && self.rng.chance(0.1) {
            self.garbage();
            return;
        }
        if self.rng.chance(0.02) && self.shrink_a_pool() {
            return;
        }
        for _ in 0..8 {
            let Some((id, iface, version)) = self.pick_object() else {
                return;
            };
            if hostile && self.rng.chance(0.08) {
                // An opcode past the end, or a request newer than the object's version.
                let newer: Vec<usize> = (0..iface.requests.len())
                    .filter(|&i| iface.requests[i].since > version)
                    .collect();
                let opcode = if !newer.is_empty() && self.rng.chance(0.5) {
                    *self.rng.pick(&newer)
                } else {
                    iface.requests.len() + self.rng.index(3)
                };
                if let Some(msg) = iface.requests.get(opcode) {
                    let key = format!("{}.{}", iface.name, msg.name);
                    if self.shared.avoid_requests.contains(&key) {
                        continue;
                    }
                }
                // A known request without its arguments: wayland-backend waits for the rest
                // of the message forever (it never rejects a short message), so this
                // client's later syncs go unanswered.
                self.desynced = true;
                let line = format!("{}#{id}.<opcode {opcode}>()", iface.name);
                self.send(encode(id, opcode as u16, Vec::new()), line, true);
                return;
            }
            let Some(opcode) = self.pick_request(&iface, version) else {
                continue;
            };
            if self.build_and_send(id, &iface, version, opcode, hostile) {
                return;
            }
        }
    }

    /// A live object with at least one request: an interface first (so that a hundred
    /// wl_callbacks do not crowd out the one wl_shm), then one of its objects.
    fn pick_object(&mut self) -> Option<(u32, Arc<Interface>, u32)> {
        let names: Vec<&String> = self
            .live
            .iter()
            .filter(|(name, ids)| {
                !ids.is_empty()
                    && self
                        .shared
                        .protocols
                        .get(name)
                        .is_some_and(|i| !i.requests.is_empty())
            })
            .map(|(name, _)| name)
            .collect();
        if names.is_empty() {
            return None;
        }
        let name = names[self.rng.index(names.len())].clone();
        let ids = &self.live[&name];
        let id = ids[self.rng.index(ids.len())];
        let object = self.objects.get(&id)?;
        Some((id, object.iface.clone(), object.version))
    }

    /// A request the object's version has; destructors less often, so objects live a while.
    fn pick_request(&mut self, iface: &Interface, version: u32) -> Option<usize> {
        let candidates: Vec<usize> = (0..iface.requests.len())
            .filter(|&i| iface.requests[i].since <= version)
            .collect();
        if candidates.is_empty() {
            return None;
        }
        for _ in 0..4 {
            let opcode = *self.rng.pick(&candidates);
            if !iface.requests[opcode].destructor || self.rng.chance(0.25) {
                return Some(opcode);
            }
        }
        None
    }

    /// Builds request `opcode` on object `id` and queues it. `false` when it could not be
    /// built (an object argument with nothing to point at).
    fn build_and_send(
        &mut self,
        id: u32,
        iface: &Arc<Interface>,
        version: u32,
        opcode: usize,
        hostile: bool,
    ) -> bool {
        let msg = &iface.requests[opcode];
        let key = format!("{}.{}", iface.name, msg.name);
        if self.shared.avoid_requests.contains(&key) {
            return false;
        }
        if key == "wl_registry.bind" {
            return self.random_bind(hostile);
        }
        // Which argument is the hostile one, or a broken message instead.
        let (bad_arg, breakage) = if !hostile {
            (None, None)
        } else if msg.args.is_empty() || self.rng.chance(0.25) {
            let b = *self.rng.pick(&[
                Breakage::SurplusFds,
                Breakage::SizeTooBig,
                Breakage::SizeTooSmall,
                Breakage::Truncated,
            ]);
            (None, Some(b))
        } else {
            (Some(self.rng.index(msg.args.len())), None)
        };
        if key.starts_with("zwp_linux_buffer_params_v1.create") && !hostile {
            let planes = match self.objects.get(&id).map(|o| &o.extra) {
                Some(Extra::Params { planes }) => *planes,
                _ => 0,
            };
            if planes == 0 && self.rng.chance(0.9) {
                // Without a plane this is always the same error: add one first.
                return false;
            }
        }
        let first_id = self.next_id;
        let mut built = Built::new();
        let special = match key.as_str() {
            "wl_shm.create_pool" => self.create_pool(&mut built, iface, bad_arg.is_some()),
            "wl_shm_pool.resize" => self.resize_pool(&mut built, id, bad_arg.is_some()),
            "wl_shm_pool.create_buffer" => self.create_buffer(&mut built, id, bad_arg.is_some()),
            "zwp_linux_buffer_params_v1.add" => self.params_add(&mut built, id, bad_arg.is_some()),
            "zwp_linux_buffer_params_v1.create" | "zwp_linux_buffer_params_v1.create_immed" => {
                self.params_create(&mut built, msg, bad_arg.is_some())
            }
            "wp_linux_drm_syncobj_manager_v1.import_timeline" => {
                self.import_timeline(&mut built, bad_arg.is_some())
            }
            _ => None,
        };
        if special.is_none() {
            // Ids a failed special generator took are not sent: give them back, or the next
            // new id would be out of sequence.
            self.next_id = first_id;
            built = Built::new();
            for (i, arg) in msg.args.iter().enumerate() {
                if !self.push_arg(&mut built, iface, arg, bad_arg == Some(i)) {
                    self.next_id = first_id;
                    return false;
                }
            }
        }
        if self.shared.avoid_resize0
            && key == "wl_shm_pool.resize"
            && matches!(built.values.first(), Some(Value::Int(0)))
        {
            // Whatever produced it (half of a 1-byte pool, the generic generator).
            self.next_id = first_id;
            return false;
        }
        let line = format!(
            "{}#{id}.{}({})",
            iface.name,
            msg.name,
            built.parts.join(", ")
        );
        if built.values.iter().any(|v| matches!(v, Value::FdMissing)) {
            // The server waits for an fd that never comes.
            self.desynced = true;
        }
        let mut out = encode(id, opcode as u16, built.values);
        let line = match breakage {
            Some(b) => format!("{line}  {}", self.break_message(&mut out, b)),
            None => line,
        };
        for (child, child_iface) in built.created {
            self.insert(child, child_iface, version);
        }
        if let Some((target, extra)) = built.extra {
            if let Some(object) = self.objects.get_mut(&target) {
                object.extra = extra;
            }
        }
        if msg.destructor {
            self.kill(id);
        }
        self.send(out, line, hostile);
        true
    }

    /// Breaks an encoded message; returns what was done, for the history.
    fn break_message(&mut self, out: &mut OutMessage, how: Breakage) -> String {
        let header = u32::from_ne_bytes([out.bytes[4], out.bytes[5], out.bytes[6], out.bytes[7]]);
        let opcode = header & 0xffff;
        let set_size = |out: &mut OutMessage, size: u32| {
            out.bytes[4..8].copy_from_slice(&((size << 16) | opcode).to_ne_bytes());
        };
        let real = out.bytes.len() as u32;
        match how {
            Breakage::SurplusFds => {
                let n = 1 + self.rng.below(3);
                for _ in 0..n {
                    if let Ok(fd) = self.shared.fds.any(&mut self.rng) {
                        out.fds.push(fd);
                    }
                }
                format!("[+{n} surplus fds]")
            }
            Breakage::SizeTooBig => {
                // Padded to the size it claims: the server gets a complete message with
                // trailing bytes after the arguments (a stall otherwise, waiting for them).
                let size = real + 4 * (1 + self.rng.below(64) as u32);
                set_size(out, size);
                out.bytes.resize(size as usize, 0);
                format!("[size field {size}, {real} bytes of arguments, zero-padded]")
            }
            Breakage::SizeTooSmall => {
                self.desynced = true;
                let size = self.rng.below(u64::from(real)) as u32;
                set_size(out, size);
                format!("[size field {size}, real {real}]")
            }
            Breakage::Truncated => {
                self.desynced = true;
                let keep = 8 + self.rng.index(out.bytes.len() - 7);
                out.bytes.truncate(keep);
                set_size(out, keep as u32);
                format!("[body truncated to {keep} bytes]")
            }
        }
    }

    /// Random bytes addressed to a live object.
    fn garbage(&mut self) {
        let id = self
            .pick_object()
            .map_or_else(|| self.rng.next_u32(), |(id, _, _)| id);
        let len = 8 + 4 * self.rng.index(16);
        let mut bytes = self.rng.bytes(len);
        bytes[..4].copy_from_slice(&id.to_ne_bytes());
        self.desynced = true;
        let line = format!("(garbage: {len} bytes to #{id})");
        self.send(
            OutMessage {
                bytes,
                fds: Vec::new(),
            },
            line,
            true,
        );
    }

    /// Shrinks a kept pool file under the compositor's mapping. `false` if none is kept.
    fn shrink_a_pool(&mut self) -> bool {
        let pools: Vec<u32> = self.live.get("wl_shm_pool").cloned().unwrap_or_default();
        let page = self.shared.fds.page();
        for id in pools {
            let Some(object) = self.objects.get_mut(&id) else {
                continue;
            };
            let Extra::Pool {
                size,
                file: Some(file),
            } = &object.extra
            else {
                continue;
            };
            let to = *self.rng.pick(&[0, 1, page - 1, (*size as u64) / 2]);
            if shrink(file, to).is_ok() {
                Stats::bump(&self.shared.stats.shrunk_pools);
                self.history.push(format!(
                    "(pool #{id}: file shrunk to {to} bytes after mapping)"
                ));
                return true;
            }
        }
        false
    }

    fn random_bind(&mut self, hostile: bool) -> bool {
        let known: Vec<(u32, Arc<Interface>, u32)> = self
            .globals
            .iter()
            .filter_map(|(name, interface, v)| {
                let iface = self.shared.protocols.get(interface)?;
                Some((*name, iface.clone(), (*v).min(iface.version).max(1)))
            })
            .collect();
        if known.is_empty() {
            return false;
        }
        let (name, iface, max) = known[self.rng.index(known.len())].clone();
        if !hostile {
            let version = 1 + self.rng.below(u64::from(max)) as u32;
            self.bind(name, &iface, version, false);
            return true;
        }
        match self.rng.below(4) {
            0 => self.bind(name, &iface, 0, true),
            1 => {
                let version = max + 1 + self.rng.below(5) as u32;
                self.bind(name, &iface, version, true);
            }
            2 => self.bind(0xdead, &iface, 1, true),
            _ => {
                // The name of one global, the interface of another.
                let (_, other, _) = known[self.rng.index(known.len())].clone();
                self.bind(name, &other, 1, true);
            }
        }
        true
    }

    fn create_pool(&mut self, b: &mut Built, shm: &Interface, hostile: bool) -> Option<()> {
        let pool_iface = self.child_interface(shm, "create_pool")?;
        let id = self.alloc_id();
        b.push(Value::NewId(id));
        b.created.push((id, pool_iface));
        let page = self.shared.fds.page();
        let declared: i64 = if hostile && self.rng.chance(0.5) {
            *self.rng.pick(&[0, 1, -1, -4096, i64::from(i32::MAX)])
        } else {
            *self
                .rng
                .pick(&[page as i64, 65536, 1 << 20, 4 << 20, 16 << 20])
        };
        let real =
            self.shared
                .fds
                .shm_size(&mut self.rng, declared.clamp(0, 1 << 30) as u64, hostile);
        let file = self.shared.fds.memfd(real);
        let kept = match &file {
            Ok(fd) if self.rng.chance(0.3) => fd.try_clone().ok(),
            _ => None,
        };
        b.push_fd(file, &format!("memfd({real})"));
        b.push(Value::Int(declared as i32));
        b.extra = Some((
            id,
            Extra::Pool {
                size: declared as i32,
                file: kept,
            },
        ));
        Some(())
    }

    fn resize_pool(&mut self, b: &mut Built, id: u32, hostile: bool) -> Option<()> {
        let object = self.objects.get_mut(&id)?;
        let Extra::Pool { size, file } = &mut object.extra else {
            return None;
        };
        let new = if hostile {
            let mut choices = vec![-1, *size / 2, i32::MAX, i32::MIN];
            if !self.shared.avoid_resize0 {
                choices.push(0);
            }
            *self.rng.pick(&choices)
        } else {
            let grown = size.saturating_add(*self.rng.pick(&[0, 4096, 1 << 20]));
            if let Some(file) = file {
                let _ = rustix::fs::ftruncate(&*file, grown.max(0) as u64);
            }
            grown
        };
        if new >= *size {
            *size = new;
        }
        b.push(Value::Int(new));
        Some(())
    }

    fn create_buffer(&mut self, b: &mut Built, pool: u32, hostile: bool) -> Option<()> {
        let pool_size = match self.objects.get(&pool).map(|o| &o.extra) {
            Some(Extra::Pool { size, .. }) => (*size).max(0) as i64,
            _ => return None,
        };
        let buffer_iface = {
            let iface = self.objects.get(&pool)?.iface.clone();
            self.child_interface(&iface, "create_buffer")?
        };
        let id = self.alloc_id();
        b.push(Value::NewId(id));
        b.created.push((id, buffer_iface));
        let width = 1 + self.rng.range_i64(0, 255);
        let stride = width * 4 + 4 * self.rng.range_i64(0, 1) * self.rng.range_i64(0, 16);
        let max_height = (pool_size / stride.max(1)).clamp(1, 256);
        let height = 1 + self.rng.range_i64(0, max_height - 1);
        let room = (pool_size - stride * height).max(0);
        let offset = if self.rng.chance(0.7) {
            0
        } else {
            self.rng.range_i64(0, room) / 4 * 4
        };
        let format = *self.rng.pick(&[0i64, 1, 0, 1, 0x3432_5258]);
        let mut v = [offset, width, height, stride, format];
        if hostile {
            let i = self.rng.index(5);
            let negative_ok = !self.shared.avoid_negative_sizes || !(i == 1 || i == 2);
            v[i] = *self.rng.pick(&[
                -1,
                0,
                i64::from(i32::MAX),
                i64::from(i32::MIN),
                pool_size,
                pool_size - 4,
                0x4000,
                1,
            ]);
            if !negative_ok {
                v[i] = v[i].abs();
            }
        }
        for (k, value) in v.into_iter().enumerate() {
            b.push(if k == 4 {
                Value::Uint(value as u32)
            } else {
                Value::Int(value as i32)
            });
        }
        Some(())
    }

    fn params_add(&mut self, b: &mut Built, params: u32, hostile: bool) -> Option<()> {
        let planes = match self.objects.get_mut(&params).map(|o| &mut o.extra) {
            Some(Extra::Params { planes }) => {
                *planes += 1;
                *planes - 1
            }
            Some(extra) => {
                *extra = Extra::Params { planes: 1 };
                0
            }
            None => return None,
        };
        let size = u64::from(DMABUF_STRIDE * DMABUF_MAX_HEIGHT);
        let fd = self.shared.fds.dmabuf_plane(&mut self.rng, size, hostile);
        b.push_fd(fd, if hostile { "plane(odd)" } else { "plane" });
        let mut plane = planes;
        let mut offset = 0u32;
        let mut stride = DMABUF_STRIDE;
        let mut modifier = if self.rng.chance(0.7) { 0 } else { MOD_INVALID };
        if hostile {
            match self.rng.below(4) {
                0 => plane = *self.rng.pick(&[4, 7, u32::MAX]),
                1 => offset = *self.rng.pick(&[4096 * 1024, u32::MAX - 3, 4]),
                2 => stride = *self.rng.pick(&[0, 4, 1 << 30, u32::MAX]),
                _ => modifier = self.rng.next_u64(),
            }
        }
        b.push(Value::Uint(plane));
        b.push(Value::Uint(offset));
        b.push(Value::Uint(stride));
        b.push(Value::Uint((modifier >> 32) as u32));
        b.push(Value::Uint(modifier as u32));
        Some(())
    }

    fn params_create(&mut self, b: &mut Built, msg: &Message, hostile: bool) -> Option<()> {
        if msg.args.first().is_some_and(|a| a.ty == ArgType::NewId) {
            let iface = self
                .shared
                .protocols
                .get(msg.args[0].interface.as_deref()?)?
                .clone();
            let id = self.alloc_id();
            b.push(Value::NewId(id));
            b.created.push((id, iface));
        }
        let mut width = DMABUF_WIDTH as i32;
        let mut height = *self.rng.pick(&[1, 16, DMABUF_MAX_HEIGHT as i32]);
        let mut format = *self.rng.pick(&DRM_FORMATS);
        let mut flags = 0u32;
        if hostile {
            match self.rng.below(4) {
                // Wider than the stride says: the stride < width × bpp case.
                0 => (width, height) = (16384, 1),
                1 if self.shared.avoid_negative_sizes => {
                    (width, height) = (*self.rng.pick(&[0, i32::MAX]), 1)
                }
                1 => (width, height) = (*self.rng.pick(&[0, -1, i32::MAX]), 1),
                2 => format = self.rng.next_u32(),
                _ => flags = self.rng.next_u32(),
            }
        }
        b.push(Value::Int(width));
        b.push(Value::Int(height));
        b.push(Value::Uint(format));
        b.push(Value::Uint(flags));
        Some(())
    }

    fn import_timeline(&mut self, b: &mut Built, hostile: bool) -> Option<()> {
        let iface = self
            .shared
            .protocols
            .get("wp_linux_drm_syncobj_timeline_v1")?
            .clone();
        let id = self.alloc_id();
        b.push(Value::NewId(id));
        b.created.push((id, iface));
        let fd = self.shared.fds.timeline(&mut self.rng, hostile);
        b.push_fd(
            fd,
            if hostile {
                "timeline(garbage)"
            } else {
                "timeline"
            },
        );
        Some(())
    }

    /// The interface of the `new_id` argument of `iface.request`.
    fn child_interface(&self, iface: &Interface, request: &str) -> Option<Arc<Interface>> {
        let msg = iface.requests.iter().find(|m| m.name == request)?;
        let arg = msg.args.iter().find(|a| a.ty == ArgType::NewId)?;
        self.shared
            .protocols
            .get(arg.interface.as_deref()?)
            .cloned()
    }

    /// Generates one argument. `false` when it cannot be made (no object to point at).
    fn push_arg(&mut self, b: &mut Built, iface: &Interface, arg: &Arg, bad: bool) -> bool {
        let value = match arg.ty {
            ArgType::Int | ArgType::Uint => {
                let v = if bad {
                    let random = self.rng.next_u32();
                    *self.rng.pick(&[
                        i32::MIN as u32,
                        i32::MAX as u32,
                        u32::MAX,
                        0x8000_0001,
                        random,
                    ])
                } else {
                    self.plausible_number(iface, arg)
                };
                let size = arg.name.contains("width") || arg.name.contains("height");
                let v = if self.shared.avoid_negative_sizes && size && (v as i32) < 0 {
                    (v as i32).unsigned_abs() & 0x7fff_ffff
                } else {
                    v
                };
                if arg.ty == ArgType::Int {
                    Value::Int(v as i32)
                } else {
                    Value::Uint(v)
                }
            }
            ArgType::Fixed => Value::Fixed(if bad {
                *self.rng.pick(&[i32::MIN, i32::MAX, -1])
            } else {
                self.rng.range_i64(-256 * 100, 256 * 2000) as i32
            }),
            ArgType::String => Value::Str(self.string(arg, bad)),
            ArgType::Array => {
                let len = if bad {
                    *self.rng.pick(&[1, 2, 3, 5, MAX_MESSAGE])
                } else {
                    4 * self.rng.index(8)
                };
                Value::Array(self.rng.bytes(len))
            }
            ArgType::Fd => {
                if bad && self.rng.chance(0.3) {
                    Value::FdMissing
                } else {
                    let fd = if bad {
                        self.shared
                            .fds
                            .garbage(&mut self.rng)
                            .map(|(fd, k)| (fd, k.to_owned()))
                    } else {
                        self.shared
                            .fds
                            .any(&mut self.rng)
                            .map(|fd| (fd, "any".to_owned()))
                    };
                    match fd {
                        Ok((fd, label)) => {
                            b.values.push(Value::Fd(fd));
                            b.parts.push(format!("fd:{label}"));
                            return true;
                        }
                        Err(_) => Value::FdMissing,
                    }
                }
            }
            ArgType::Object => match self.object_arg(arg, bad, &b.values) {
                Some(id) => Value::Object(id),
                None => return false,
            },
            ArgType::NewId => {
                let Some(child) = arg
                    .interface
                    .as_deref()
                    .and_then(|n| self.shared.protocols.get(n))
                    .cloned()
                else {
                    // A generic new_id outside wl_registry.bind: nothing known uses it.
                    return false;
                };
                if bad {
                    let id = *self.rng.pick(&[
                        0,
                        self.next_id.saturating_sub(1),
                        self.next_id + 7,
                        SERVER_ID_START + 5,
                        u32::MAX,
                    ]);
                    // Reusing the id of an object that is gone is legal: track it then.
                    if self.objects.get(&id).is_none_or(|o| !o.alive) {
                        b.created.push((id, child));
                    }
                    Value::NewId(id)
                } else {
                    let id = self.alloc_id();
                    b.created.push((id, child));
                    Value::NewId(id)
                }
            }
        };
        b.push(value);
        true
    }

    fn plausible_number(&mut self, iface: &Interface, arg: &Arg) -> u32 {
        if let Some(en) = arg
            .enum_name
            .as_deref()
            .and_then(|e| self.shared.protocols.enum_of(iface, e))
        {
            if !en.values.is_empty() && self.rng.chance(0.9) {
                let mut v = *self.rng.pick(&en.values);
                if en.bitfield && self.rng.chance(0.3) {
                    v |= *self.rng.pick(&en.values);
                }
                return v;
            }
        }
        let name = arg.name.as_str();
        if name == "serial" && !self.serials.is_empty() && self.rng.chance(0.8) {
            let i = self.rng.index(self.serials.len());
            return self.serials[i];
        }
        if name.contains("width") || name.contains("height") {
            return self.rng.range_i64(0, 1024) as u32;
        }
        if name == "scale" {
            return self.rng.range_i64(1, 3) as u32;
        }
        match self.rng.below(4) {
            0 => 0,
            1 => self.rng.range_i64(0, 16) as u32,
            2 => self.rng.range_i64(-16, 2048) as u32,
            _ => *self.rng.pick(&[1, u32::MAX, 100, 4096]),
        }
    }

    fn string(&mut self, arg: &Arg, bad: bool) -> Option<Vec<u8>> {
        if bad {
            return match self.rng.below(5) {
                0 if !self.shared.avoid_null_strings => None,
                1 => Some(vec![b'x'; 3000]),
                2 => Some(vec![0xff, 0xfe, 0xc3, 0x28]),
                3 => Some(b"a\0b".to_vec()),
                _ => Some(Vec::new()),
            };
        }
        if arg.nullable && self.rng.chance(0.1) {
            return None;
        }
        if arg.name.contains("mime") {
            let mime = *self
                .rng
                .pick(&["text/plain", "text/plain;charset=utf-8", "image/png"]);
            return Some(mime.as_bytes().to_vec());
        }
        let len = self.rng.index(24);
        Some(
            (0..len)
                .map(|_| b"abcdefghijklmnopqrstuvwxyz -_."[self.rng.index(30)])
                .collect(),
        )
    }

    /// An object id for an `object` argument: a live one of the right interface (or null
    /// when allowed and there is none); a wrong one when `bad`.
    fn object_arg(&mut self, arg: &Arg, bad: bool, earlier: &[Value]) -> Option<u32> {
        if bad {
            let any_live: Vec<u32> = self.live.values().flatten().copied().collect();
            let dead: Vec<u32> = self
                .objects
                .iter()
                .filter(|(_, o)| !o.alive)
                .map(|(id, _)| *id)
                .collect();
            return Some(match self.rng.below(5) {
                0 => self.rng.next_u32(),
                1 => self.next_id + 3,
                2 if !any_live.is_empty() => *self.rng.pick(&any_live),
                3 if !dead.is_empty() => {
                    let mut dead = dead;
                    dead.sort_unstable();
                    *self.rng.pick(&dead)
                }
                _ => 0,
            });
        }
        let mut candidates: Vec<u32> = match arg.interface.as_deref() {
            Some(name) => self.live.get(name).cloned().unwrap_or_default(),
            None => self.live.values().flatten().copied().collect(),
        };
        // Mostly not an object this request already names (a subsurface of itself, a
        // popup parented to itself): those are errors; sometimes they are the point.
        let fresh: Vec<u32> = candidates
            .iter()
            .copied()
            .filter(|id| {
                !earlier
                    .iter()
                    .any(|v| matches!(v, Value::Object(o) if o == id))
            })
            .collect();
        if !fresh.is_empty() && self.rng.chance(0.9) {
            candidates = fresh;
        }
        if candidates.is_empty() || (arg.nullable && self.rng.chance(0.15)) {
            return arg.nullable.then_some(0);
        }
        Some(*self.rng.pick(&candidates))
    }
}
