//! wl_shm: shared-memory buffers, on smithay's implementation with one request guarded.
//!
//! smithay 0.7.0 (the newest release) posts an error for `wl_shm_pool.resize` with a size
//! of zero or less and then goes on to `unwrap()` that size as a `NonZeroUsize`, which panics
//! and takes the whole compositor down: any client could end the session with one request.
//! lockstep therefore dispatches `wl_shm_pool` itself: a resize that does not make the pool
//! bigger gets the protocol error here (`wl_shm.error.invalid_fd` on the pool, as libwayland
//! does, since `wl_shm_pool` has no error enum of its own), and every other request goes to
//! smithay unchanged. `wl_shm` and `wl_buffer` are delegated to smithay as usual.

use smithay::{
    reexports::wayland_server::{
        delegate_dispatch, delegate_global_dispatch,
        protocol::{
            wl_buffer::WlBuffer,
            wl_shm::{self, WlShm},
            wl_shm_pool::{self, WlShmPool},
        },
        Client, DataInit, Dispatch, DisplayHandle, Resource,
    },
    wayland::shm::{ShmBufferUserData, ShmHandler, ShmPoolUserData, ShmState},
};
use tracing::debug;

use crate::state::State;

impl ShmHandler for State {
    fn shm_state(&self) -> &ShmState {
        &self.core.shm_state
    }
}

impl Dispatch<WlShmPool, ShmPoolUserData> for State {
    fn request(
        state: &mut Self,
        client: &Client,
        pool: &WlShmPool,
        request: wl_shm_pool::Request,
        data: &ShmPoolUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let wl_shm_pool::Request::Resize { size } = request {
            if let Some(message) = invalid_resize(size, pool) {
                debug!(pool = ?pool.id(), size, "wl_shm_pool.resize rejected");
                pool.post_error(wl_shm::Error::InvalidFd, message);
                return;
            }
        }
        <ShmState as Dispatch<WlShmPool, ShmPoolUserData, State>>::request(
            state, client, pool, request, data, dh, data_init,
        );
    }
}

/// Why a resize to `size` is refused before smithay sees it, if it is.
fn invalid_resize(size: i32, pool: &WlShmPool) -> Option<String> {
    (size <= 0).then(|| {
        format!(
            "wl_shm_pool@{}.resize({size}): a pool can only grow, and its size must be positive",
            pool.id().protocol_id()
        )
    })
}

delegate_global_dispatch!(State: [WlShm: ()] => ShmState);
delegate_dispatch!(State: [WlShm: ()] => ShmState);
delegate_dispatch!(State: [WlBuffer: ShmBufferUserData] => ShmState);
