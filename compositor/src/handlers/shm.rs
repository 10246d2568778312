//! wl_shm: shared-memory buffers, on smithay's implementation with one request guarded.
//!
//! smithay 0.7.0 (the newest release) posts an error for `wl_shm_pool.resize` with a size
//! of zero or less and then goes on to `unwrap()` that size as a `NonZeroUsize`, which panics
//! and takes the whole compositor down: any client could end the session with one request.
//! lockstep therefore dispatches `wl_shm_pool` itself: a resize that does not make the pool
//! bigger gets the protocol error here (`wl_shm.error.invalid_fd` on the pool, as libwayland
//! does, since `wl_shm_pool` has no error enum of its own), and every other request goes to
//! smithay unchanged. `wl_shm` and `wl_buffer` are delegated to smithay as usual.
//!
//! # Accounting (`client_memory.rs`)
//!
//! smithay keeps a pool's mapping in private fields and gives no hook when one is made or
//! freed, so lockstep puts a thin layer of its own under smithay's objects: the `wl_shm`
//! global is re-created with a [`GlobalHandler`] that wraps smithay's, and the object data of
//! each `wl_shm` and `wl_shm_pool` is a wrapper (`ShmObject`, `PoolObject`) around
//! smithay's. A wrapper sees each request as the raw message, before smithay parses it:
//! it checks `[limits]` (refusing the request with its protocol error), hands the message
//! to smithay's data, and records what smithay made: the new pool's or buffer's object data,
//! of which the ledger keeps a `Weak` (the mapping lives exactly as long as the pool's and
//! its buffers' smithay data). smithay's generated code finds an object's user data by
//! downcasting the object data the backend holds, so while smithay handles a request the
//! wrapper puts smithay's data back in its place and restores itself afterwards; buffers
//! keep smithay's data untouched, so the renderers and `with_buffer_contents` see plain
//! smithay buffers.

use std::{os::fd::OwnedFd, sync::Arc};

use smithay::{
    reexports::wayland_server::{
        backend::{
            protocol::{Argument, Message},
            ClientData, ClientId, GlobalHandler, GlobalId, Handle, ObjectData, ObjectId,
        },
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
use tracing::{debug, warn};

use crate::{
    client_memory::{refuse, PoolKey, Refusal},
    state::State,
};

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

/// `wl_shm.create_pool`, `wl_shm_pool.create_buffer` and `wl_shm_pool.resize` opcodes.
const CREATE_POOL: u16 = 0;
const CREATE_BUFFER: u16 = 0;
const RESIZE: u16 = 2;

/// Replaces smithay's `wl_shm` global (made by `ShmState::new`) with one whose objects are
/// accounted; smithay still handles every request. Call once, before clients connect.
pub fn account_shm_global(dh: &DisplayHandle, shm_state: &ShmState) -> GlobalId {
    let handle = dh.backend_handle();
    let smithay_global = shm_state.global();
    let global = match handle.get_global_handler::<State>(smithay_global.clone()) {
        Ok(inner) => handle.create_global::<State>(
            WlShm::interface(),
            SHM_VERSION,
            Arc::new(ShmGlobal { inner }),
        ),
        // Cannot happen (the global was just made); keep smithay's unaccounted one then.
        Err(_) => {
            warn!("wl_shm global not found: shm pools are not accounted");
            return smithay_global;
        }
    };
    dh.remove_global::<State>(smithay_global);
    global
}

/// The `wl_shm` version smithay 0.7 implements (2: `release`).
const SHM_VERSION: u32 = 2;

/// The accounted `wl_shm` global: smithay's handler, with each bound object wrapped.
struct ShmGlobal {
    inner: Arc<dyn GlobalHandler<State>>,
}

impl GlobalHandler<State> for ShmGlobal {
    fn can_view(
        &self,
        client_id: ClientId,
        client_data: &Arc<dyn ClientData>,
        global_id: GlobalId,
    ) -> bool {
        self.inner.can_view(client_id, client_data, global_id)
    }

    fn bind(
        self: Arc<Self>,
        handle: &Handle,
        data: &mut State,
        client_id: ClientId,
        global_id: GlobalId,
        object_id: ObjectId,
    ) -> Arc<dyn ObjectData<State>> {
        let inner = self
            .inner
            .clone()
            .bind(handle, data, client_id, global_id, object_id);
        Arc::new(ShmObject { inner })
    }
}

/// Hands `msg` to smithay's object data `inner` for an object whose object data is
/// `wrapper`: smithay's generated code looks its user data up in the backend, so `inner`
/// stands in while it runs.
fn forward(
    inner: &Arc<dyn ObjectData<State>>,
    wrapper: Arc<dyn ObjectData<State>>,
    handle: &Handle,
    state: &mut State,
    client_id: ClientId,
    msg: Message<ObjectId, OwnedFd>,
) -> Option<Arc<dyn ObjectData<State>>> {
    let id = msg.sender_id.clone();
    // Fails only for a dead object, which then needs no data.
    let _ = handle.set_object_data::<State>(id.clone(), inner.clone());
    let created = inner.clone().request(handle, state, client_id, msg);
    let _ = handle.set_object_data::<State>(id, wrapper);
    created
}

/// Object data of a `wl_shm`: accounts `create_pool`.
struct ShmObject {
    inner: Arc<dyn ObjectData<State>>,
}

impl ObjectData<State> for ShmObject {
    fn request(
        self: Arc<Self>,
        handle: &Handle,
        state: &mut State,
        client_id: ClientId,
        msg: Message<ObjectId, OwnedFd>,
    ) -> Option<Arc<dyn ObjectData<State>>> {
        let create = match (msg.opcode, msg.args.as_slice()) {
            (CREATE_POOL, [Argument::NewId(_), Argument::Fd(_), Argument::Int(size)])
                if *size > 0 =>
            {
                Some(*size as u64)
            }
            _ => None,
        };
        let dh = DisplayHandle::from(handle.clone());
        if let Some(bytes) = create {
            let max = state.core.config.limits.shm_bytes_per_client.bytes();
            if let Err(over) = state.core.memory.check_shm(&dh, &client_id, bytes, max) {
                refuse(
                    &mut state.core,
                    handle,
                    &client_id,
                    &over,
                    Refusal::OnObject(msg.sender_id.clone(), wl_shm::Error::InvalidFd as u32),
                    "wl_shm.create_pool",
                );
                return None;
            }
        }
        let shm = self.clone() as Arc<dyn ObjectData<State>>;
        let created = forward(&self.inner, shm, handle, state, client_id.clone(), msg)?;
        let Some(bytes) = create else {
            return Some(created);
        };
        let key = state.core.memory.add_pool(&dh, &client_id, bytes);
        Some(Arc::new(PoolObject {
            inner: created,
            key,
        }))
    }

    fn destroyed(
        self: Arc<Self>,
        handle: &Handle,
        state: &mut State,
        client_id: ClientId,
        object_id: ObjectId,
    ) {
        self.inner
            .clone()
            .destroyed(handle, state, client_id, object_id)
    }
}

/// Object data of a `wl_shm_pool`: accounts `create_buffer` and `resize`.
struct PoolObject {
    inner: Arc<dyn ObjectData<State>>,
    key: PoolKey,
}

impl ObjectData<State> for PoolObject {
    fn request(
        self: Arc<Self>,
        handle: &Handle,
        state: &mut State,
        client_id: ClientId,
        msg: Message<ObjectId, OwnedFd>,
    ) -> Option<Arc<dyn ObjectData<State>>> {
        let dh = DisplayHandle::from(handle.clone());
        let limits = state.core.config.limits;
        let mut new_buffer = None;
        let mut grown_to = None;
        match (msg.opcode, msg.args.as_slice()) {
            (CREATE_BUFFER, [Argument::NewId(id), ..]) => {
                let max = u64::from(limits.buffers_per_client);
                if let Err(over) = state.core.memory.check_buffer(&dh, &client_id, max) {
                    refuse(
                        &mut state.core,
                        handle,
                        &client_id,
                        &over,
                        Refusal::NoMemory,
                        "wl_shm_pool.create_buffer",
                    );
                    return None;
                }
                new_buffer = Some(id.clone());
            }
            (RESIZE, [Argument::Int(size)]) if *size > 0 => {
                let size = *size as u64;
                let old = state.core.memory.pool_bytes(&client_id, self.key);
                if size > old {
                    let max = limits.shm_bytes_per_client.bytes();
                    let check = state
                        .core
                        .memory
                        .check_shm(&dh, &client_id, size - old, max);
                    if let Err(over) = check {
                        refuse(
                            &mut state.core,
                            handle,
                            &client_id,
                            &over,
                            Refusal::OnObject(
                                msg.sender_id.clone(),
                                wl_shm::Error::InvalidFd as u32,
                            ),
                            "wl_shm_pool.resize",
                        );
                        return None;
                    }
                    grown_to = Some(size);
                }
            }
            _ => {}
        }
        let pool = self.clone() as Arc<dyn ObjectData<State>>;
        let created = forward(&self.inner, pool, handle, state, client_id.clone(), msg);
        if let Some(size) = grown_to {
            state.core.memory.resize_pool(&client_id, self.key, size);
        }
        if let (Some(id), Some(_)) = (new_buffer, &created) {
            state
                .core
                .memory
                .add_shm_buffer(&dh, &client_id, self.key, id);
        }
        created
    }

    fn destroyed(
        self: Arc<Self>,
        handle: &Handle,
        state: &mut State,
        client_id: ClientId,
        object_id: ObjectId,
    ) {
        self.inner
            .clone()
            .destroyed(handle, state, client_id.clone(), object_id);
        // smithay's pool data maps the pool until it (and the pool's buffers) are dropped.
        let data = crate::client_memory::Held::of(&self.inner);
        state.core.memory.pool_destroyed(&client_id, self.key, data);
    }
}
