//! A bound on how many protocol objects one client may hold.
//!
//! Every Wayland object a client creates (a region, a callback, a surface, a buffer) costs
//! lockstep memory for as long as the client keeps it, and neither the protocol nor
//! wayland-rs limits how many: one client looping on `wl_compositor.create_region` grows
//! lockstep by a few hundred bytes per request until the OOM killer ends the session. So a
//! client that holds more than [`MAX_OBJECTS_PER_CLIENT`] objects is disconnected with
//! `wl_display.error.no_memory`, the error the core protocol has for "the compositor ran out of
//! memory for this client".
//!
//! How: wayland-rs has no per-object hook, so lockstep counts a client's objects (a walk of
//! its object map) after it has sent enough requests to possibly have crossed the limit since
//! the last count: a quarter of the last count, and at least [`MIN_REQUESTS_BETWEEN`]. That
//! keeps the walk to a few object visits per request on average, and a client can overshoot
//! the limit by at most a quarter before it is caught.

use std::sync::atomic::{AtomicU64, Ordering};

use smithay::reexports::wayland_server::{
    backend::{ClientId, Handle},
    DisplayHandle,
};
use tracing::warn;

use crate::state::ClientState;

/// Objects one client may hold at once (the default of `Core::max_objects_per_client`).
///
/// Real clients hold from tens (a terminal) to a few thousand (a browser with many
/// subsurfaces and buffers); at a few hundred bytes each this bounds one client to about
/// 100 MiB of protocol objects.
pub const MAX_OBJECTS_PER_CLIENT: u64 = 250_000;

/// Requests between two counts, at least.
pub const MIN_REQUESTS_BETWEEN: u64 = 1024;

/// Per-client census state (in [`ClientState`]).
#[derive(Debug, Default)]
pub struct ObjectCensus {
    requests_since_count: AtomicU64,
    last_count: AtomicU64,
}

impl ObjectCensus {
    /// Objects at the last count (0 before the first).
    pub fn last_count(&self) -> u64 {
        self.last_count.load(Ordering::Relaxed)
    }
}

/// Notes that `client` had `requests` dispatched; counts its objects when it is due and
/// disconnects it if it holds more than `max`. Returns whether it was disconnected.
pub fn after_requests(dh: &DisplayHandle, client: &ClientId, requests: usize, max: u64) -> bool {
    let handle = dh.backend_handle();
    let Ok(data) = handle.get_client_data(client.clone()) else {
        return false;
    };
    let Some(data) = data.downcast_ref::<ClientState>() else {
        return false;
    };
    let census = &data.census;
    let since = census
        .requests_since_count
        .fetch_add(requests as u64, Ordering::Relaxed)
        + requests as u64;
    let due = (census.last_count() / 4).max(MIN_REQUESTS_BETWEEN);
    if since < due {
        return false;
    }
    census.requests_since_count.store(0, Ordering::Relaxed);
    let count = count_objects(&handle, client);
    census.last_count.store(count, Ordering::Relaxed);
    if count <= max {
        return false;
    }
    let pid = handle
        .get_client_credentials(client.clone())
        .map(|c| c.pid)
        .unwrap_or_default();
    warn!(
        client = ?client,
        pid,
        objects = count,
        limit = max,
        "disconnecting a client that holds too many Wayland objects"
    );
    let message =
        format!("this client holds {count} objects, more than lockstep allows one client ({max})");
    crate::dispatch::post_no_memory(&handle, client, &message);
    true
}

/// How many objects `client` holds.
fn count_objects(handle: &Handle, client: &ClientId) -> u64 {
    let mut count = 0u64;
    let _ = handle.with_all_objects_for(client.clone(), |_| count += 1);
    count
}
