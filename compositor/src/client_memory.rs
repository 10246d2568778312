//! Client memory: what lockstep holds on behalf of each client, and the limits on it.
//!
//! # Why
//!
//! A compositor holds memory for its clients: it maps their shared-memory pools, keeps
//! their dmabufs imported, makes textures from them. Without a ledger nobody can say which
//! client the memory belongs to, and one client can make lockstep hold gigabytes (many large
//! `wl_shm` pools, thousands of dmabufs) until the OOM killer ends the whole session. So
//! lockstep keeps, per client, the bytes of shm pools it has mapped and of dmabufs it holds,
//! the number of `wl_buffer`s and `wl_surface`s, and refuses the request that would take a
//! client past its `[limits]`, with that request's protocol error; the compositor and the
//! other clients are unaffected. `lockstep msg clients` shows the ledger.
//!
//! # How the figures stay exact
//!
//! The bytes are held as long as smithay's objects that own them live, which is not the
//! same moment the client destroys its protocol object: a pool's mapping stays until the
//! pool *and* every buffer made from it are gone, and a buffer the renderer still shows
//! stays until the next frame replaces it. So the ledger (`client_memory/ledger.rs`) keeps
//! totals that change as protocol objects are created and destroyed, and when the last
//! object of some memory is destroyed the entry waits on a short lingering list with a
//! [`Held`] reference (a `Weak`) to smithay's data, leaving the totals when smithay drops
//! it. The figures are exact when read, and checking a limit costs the same however much a
//! client holds. Object counts (buffers, surfaces) follow the protocol objects: +1 when one
//! is created, −1 in its destructor callback.
//!
//! Memory of a client that has disconnected stays listed (as `disconnected`) until
//! lockstep has really let go of it, so `msg clients` shows it reaching zero.
//!
//! lockstep allocates no buffer memory of its own for clients today (screencopy writes into
//! the client's buffer, output images are lockstep's own). Should it ever allocate from a
//! dma-heap for a client, the allocation is charged to that client's ledger here, and this
//! is also where the kernel's dma-heap memcg charging (charging the allocation to the
//! client's cgroup; not in Linux 6.12) would be asked for, with the client's pid.

mod ledger;

use std::{
    ffi::CString,
    sync::{Arc, Weak},
};

use serde::{Deserialize, Serialize};
use smithay::reexports::wayland_server::{
    backend::{ClientId, Handle, ObjectId},
    DisplayHandle,
};
use tracing::warn;

use crate::state::Core;

pub use ledger::MemoryBook;

/// A pool's key in its client's ledger (pools have no stable id of their own once
/// destroyed: the mapping outlives the protocol object).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolKey(u64);

/// What a client has made lockstep hold, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    /// `wl_shm` pools mapped (a destroyed pool stays mapped while its buffers live).
    pub shm_pools: u32,
    /// Bytes of those mappings.
    pub shm_bytes: u64,
    /// dmabuf-backed `wl_buffer`s held (imported).
    pub dmabufs: u32,
    /// Bytes of those dmabufs (the size of each plane's dmabuf, each dmabuf counted once).
    pub dmabuf_bytes: u64,
    /// Live `wl_buffer` objects made from shm pools and dmabufs.
    pub buffers: u32,
    /// Live `wl_surface` objects.
    pub surfaces: u32,
}

/// Which `[limits]` entry a request would go over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `shm_bytes_per_client`.
    ShmBytes,
    /// `dmabuf_bytes_per_client`.
    DmabufBytes,
    /// `buffers_per_client`.
    Buffers,
    /// `surfaces_per_client`.
    Surfaces,
}

impl Limit {
    /// The config key.
    pub fn key(self) -> &'static str {
        match self {
            Limit::ShmBytes => "shm_bytes_per_client",
            Limit::DmabufBytes => "dmabuf_bytes_per_client",
            Limit::Buffers => "buffers_per_client",
            Limit::Surfaces => "surfaces_per_client",
        }
    }
}

/// A refused request: which limit, what the client holds, what it asked for more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    /// The limit.
    pub limit: Limit,
    /// What the client holds now (bytes or objects).
    pub held: u64,
    /// What the request would add.
    pub requested: u64,
    /// The limit's value.
    pub max: u64,
}

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.limit {
            Limit::ShmBytes | Limit::DmabufBytes => " bytes",
            Limit::Buffers => " buffers",
            Limit::Surfaces => " surfaces",
        };
        write!(
            f,
            "holds {held}{unit}, asked for {requested} more, limit {max} ([limits] {key} in \
             lockstep's config)",
            held = self.held,
            requested = self.requested,
            max = self.max,
            key = self.limit.key()
        )
    }
}

/// A reference to object data that holds memory, which does not keep it alive: the memory
/// is held while [`Held::alive`].
pub struct Held(Box<dyn Alive>);

trait Alive {
    fn alive(&self) -> bool;
}

impl<T: ?Sized> Alive for Weak<T> {
    fn alive(&self) -> bool {
        self.strong_count() > 0
    }
}

impl Held {
    /// Follows `data` (any object data: smithay's pool, buffer or dmabuf data).
    pub fn of<T: ?Sized + 'static>(data: &Arc<T>) -> Held {
        Held(Box::new(Arc::downgrade(data)))
    }

    /// Whether the object data still exists.
    pub fn alive(&self) -> bool {
        self.0.alive()
    }
}

/// Which dmabuf a plane's fd refers to: the device and inode of the dma-buf file, the same
/// for every fd of one buffer (so a buffer imported twice is counted once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DmabufIdentity {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

/// The distinct dmabufs behind one `wl_buffer`'s planes, with their sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmabufMemory(pub Vec<(DmabufIdentity, u64)>);

/// How a request over a limit is refused.
pub enum Refusal {
    /// A protocol error of the request's own object: the object and the error code.
    OnObject(ObjectId, u32),
    /// `wl_display.error.no_memory` (requests whose interface has no fitting error).
    NoMemory,
}

/// Refuses `request` of `client`, which would go over a limit: the protocol error, a log
/// line naming the client, and a `client_limit` event.
pub fn refuse(
    core: &mut Core,
    handle: &Handle,
    client: &ClientId,
    over: &OverLimit,
    refusal: Refusal,
    request: &str,
) {
    note_refusal(core, handle, client, over, request);
    let message = format!("{request} refused: this client {over}");
    match refusal {
        Refusal::OnObject(object, code) => {
            handle.post_error(object, code, CString::new(message).unwrap_or_default())
        }
        Refusal::NoMemory => crate::dispatch::post_no_memory(handle, client, &message),
    }
}

/// The log line and the `client_limit` event for a refused request; the caller refuses it
/// (a protocol error, or a `failed` event where the protocol has one).
pub fn note_refusal(
    core: &mut Core,
    handle: &Handle,
    client: &ClientId,
    over: &OverLimit,
    request: &str,
) {
    let who = describe_client(handle, client);
    warn!(client = %who, "{request} refused: the client {over}");
    core.events.emit(&crate::events::Event::ClientLimit {
        client: who,
        request: request.to_owned(),
        limit: over.limit.key().to_owned(),
        held: over.held,
        requested: over.requested,
        max: over.max,
    });
}

/// One client in `lockstep msg clients`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// Its connection number, counted from 1 since lockstep started (a process may hold
    /// several connections).
    pub connection: u64,
    /// Its process id (0 when the socket does not say).
    pub pid: i32,
    /// Its command name (`/proc/PID/comm`).
    pub command: Option<String>,
    /// The app ids of its windows (X11 windows: their class).
    pub app_ids: Vec<String>,
    /// What lockstep holds for it.
    #[serde(flatten)]
    pub figures: Figures,
    /// Bytes of textures lockstep made by copying its shm buffers (GLES uploads them; pixman
    /// reads the pool in place, so 0 there). dmabufs are imported without a copy.
    pub texture_bytes: u64,
    /// Its screencopy frames waiting for a frame, each holding one of its buffers (whose
    /// memory is in the shm or dmabuf figures already).
    pub captures_pending: u32,
}

/// The answer to `msg clients`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientsReport {
    /// Connected clients, in the order they connected.
    pub clients: Vec<ClientInfo>,
    /// What clients that have gone still make lockstep hold.
    pub disconnected: Figures,
    /// The limits in force (`[limits]`).
    pub limits: Limits,
}

/// `[limits]` as `msg clients` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// `shm_bytes_per_client`.
    pub shm_bytes: u64,
    /// `dmabuf_bytes_per_client`.
    pub dmabuf_bytes: u64,
    /// `buffers_per_client`.
    pub buffers: u32,
    /// `surfaces_per_client`.
    pub surfaces: u32,
}

/// Gathers `msg clients`.
pub fn report(state: &mut crate::state::State) -> ClientsReport {
    let renderer = state.backend.renderer_name();
    let core = &mut state.core;
    let dh = &core.display_handle;
    let handle = dh.backend_handle();
    let copies_shm = renderer.starts_with("gles");
    let mut ids = Vec::new();
    handle.with_all_clients(|id| ids.push(id));
    let mut clients: Vec<ClientInfo> = ids
        .into_iter()
        .map(|id| {
            let pid = handle
                .get_client_credentials(id.clone())
                .map_or(0, |c| c.pid);
            let mut app_ids: Vec<String> = core
                .windows
                .values()
                .filter(|w| window_client(w).as_ref() == Some(&id))
                .filter_map(|w| crate::ipc::window_title_and_app_id(w).1)
                .collect();
            app_ids.sort();
            app_ids.dedup();
            let captures_pending = core
                .pending_screencopies
                .iter()
                .filter(|f| {
                    smithay::reexports::wayland_server::Resource::client(f.frame())
                        .is_some_and(|c| c.id() == id)
                })
                .count() as u32;
            let connection = handle
                .get_client_data(id.clone())
                .ok()
                .and_then(|d| {
                    d.downcast_ref::<crate::state::ClientState>()
                        .map(|s| s.connection.0)
                })
                .unwrap_or(0);
            ClientInfo {
                connection,
                pid,
                command: if pid as u32 == std::process::id() {
                    // The connection lockstep makes to itself (selection devices).
                    Some("lockstep itself".to_owned())
                } else {
                    (pid > 0).then(|| command_name(pid)).flatten()
                },
                app_ids,
                figures: core.memory.figures(&id),
                texture_bytes: if copies_shm {
                    shm_texture_bytes(dh, &id)
                } else {
                    0
                },
                captures_pending,
            }
        })
        .collect();
    clients.sort_by_key(|c| c.connection);
    let limits = core.config.limits;
    ClientsReport {
        clients,
        disconnected: core.memory.disconnected_figures(dh),
        limits: Limits {
            shm_bytes: limits.shm_bytes_per_client.bytes(),
            dmabuf_bytes: limits.dmabuf_bytes_per_client.bytes(),
            buffers: limits.buffers_per_client,
            surfaces: limits.surfaces_per_client,
        },
    }
}

/// The client of a window's surface.
fn window_client(window: &smithay::desktop::Window) -> Option<ClientId> {
    let surface = crate::xwayland::wm::window_surface(window)?;
    smithay::reexports::wayland_server::Resource::client(&surface).map(|c| c.id())
}

/// Bytes of the textures a copying renderer holds for `client`'s surfaces: each surface
/// showing an shm buffer has one texture of its size (4 bytes a pixel).
fn shm_texture_bytes(dh: &DisplayHandle, client: &ClientId) -> u64 {
    use smithay::reexports::wayland_server::{protocol::wl_surface::WlSurface, Resource};
    let mut surfaces = Vec::new();
    let _ = dh
        .backend_handle()
        .with_all_objects_for(client.clone(), |id| {
            if id.interface().name == "wl_surface" {
                surfaces.push(id);
            }
        });
    surfaces
        .into_iter()
        .filter_map(|id| WlSurface::from_id(dh, id).ok())
        .map(|surface| {
            smithay::backend::renderer::utils::with_renderer_surface_state(&surface, |state| {
                state
                    .buffer()
                    .and_then(|buffer| {
                        smithay::wayland::shm::with_buffer_contents(buffer, |_, _, data| {
                            data.width.max(0) as u64 * data.height.max(0) as u64 * 4
                        })
                        .ok()
                    })
                    .unwrap_or(0)
            })
            .unwrap_or(0)
        })
        .sum()
}

/// `msg clients` as text.
pub fn format_report(report: &ClientsReport) -> String {
    use std::fmt::Write;
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    let mut out = String::new();
    if report.clients.is_empty() {
        out.push_str("no clients\n");
    }
    for c in &report.clients {
        let f = &c.figures;
        let _ = writeln!(
            out,
            "#{} pid {} ({}){}: {} surfaces, {} buffers; shm {:.1} MiB in {} pools; dmabuf {:.1} \
             MiB in {}; textures {:.1} MiB; {} captures pending",
            c.connection,
            c.pid,
            c.command.as_deref().unwrap_or("?"),
            if c.app_ids.is_empty() {
                String::new()
            } else {
                format!(" [{}]", c.app_ids.join(", "))
            },
            f.surfaces,
            f.buffers,
            mib(f.shm_bytes),
            f.shm_pools,
            mib(f.dmabuf_bytes),
            f.dmabufs,
            mib(c.texture_bytes),
            c.captures_pending,
        );
    }
    let d = &report.disconnected;
    if *d != Figures::default() {
        let _ = writeln!(
            out,
            "disconnected clients, still held: shm {:.1} MiB in {} pools, dmabuf {:.1} MiB in {}",
            mib(d.shm_bytes),
            d.shm_pools,
            mib(d.dmabuf_bytes),
            d.dmabufs
        );
    }
    let l = &report.limits;
    let _ = writeln!(
        out,
        "limits per client: shm {}, dmabuf {}, {} buffers, {} surfaces",
        lockstep_config::ByteSize(l.shm_bytes),
        lockstep_config::ByteSize(l.dmabuf_bytes),
        l.buffers,
        l.surfaces
    );
    out
}

/// `pid 1234 (foot)` for logs and events: the client's pid and command name.
pub fn describe_client(handle: &Handle, client: &ClientId) -> String {
    match handle.get_client_credentials(client.clone()) {
        Ok(credentials) => match command_name(credentials.pid) {
            Some(name) => format!("pid {} ({name})", credentials.pid),
            None => format!("pid {}", credentials.pid),
        },
        Err(_) => "a client that has gone".to_owned(),
    }
}

/// `/proc/PID/comm`: a few bytes from procfs, which never blocks.
pub fn command_name(pid: i32) -> Option<String> {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(name.trim_end().to_owned())
}

fn check(limit: Limit, held: u64, requested: u64, max: u64) -> Result<(), OverLimit> {
    if held.checked_add(requested).is_none_or(|total| total > max) {
        Err(OverLimit {
            limit,
            held,
            requested,
            max,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_what_would_go_over_and_no_less() {
        assert!(check(Limit::ShmBytes, 10, 5, 15).is_ok());
        let over = check(Limit::ShmBytes, 10, 6, 15).unwrap_err();
        assert_eq!((over.held, over.requested, over.max), (10, 6, 15));
        assert!(over.to_string().contains("shm_bytes_per_client"));
        assert!(check(Limit::Buffers, u64::MAX, 1, u64::MAX).is_err());
    }
}
