//! The per-client ledger and the book of all of them.
//!
//! Totals are kept as objects come and go, so reading them and checking a limit cost
//! O(1) whatever a client holds: a protocol object counts while it exists. When the last
//! protocol object of some memory is destroyed (a pool and all its buffers, or a dmabuf
//! buffer), the memory may still be held a little longer (the buffer is on screen until the
//! next frame replaces it), so the entry moves to a short *lingering* list with a [`Held`]
//! reference to smithay's data, and leaves the totals when that data is gone. Each access
//! to a ledger sweeps its lingering list; it holds only what the renderer or a capture still
//! holds, a few entries per surface.

use std::collections::HashMap;

use smithay::reexports::wayland_server::{
    backend::{ClientId, ObjectId},
    DisplayHandle,
};

use super::{check, DmabufIdentity, DmabufMemory, Figures, Held, Limit, OverLimit, PoolKey};

/// One mapped pool.
struct PoolEntry {
    bytes: u64,
    /// The pool object and those of its buffers that exist.
    live_objects: u32,
    /// Once the pool object is destroyed: its smithay data, which maps the pool.
    pool_data: Option<Held>,
    /// The smithay data of the pool's destroyed buffers, each of which maps the pool while
    /// it lives.
    lingering_buffers: Vec<Held>,
    /// `lingering_buffers.len()` after the last sweep.
    swept_len: usize,
}

impl PoolEntry {
    fn mapped(&self) -> bool {
        self.live_objects > 0
            || self.pool_data.as_ref().is_some_and(Held::alive)
            || self.lingering_buffers.iter().any(Held::alive)
    }

    fn add_lingering_buffer(&mut self, data: Held) {
        self.lingering_buffers.push(data);
        if self.lingering_buffers.len() >= 2 * self.swept_len.max(8) {
            self.lingering_buffers.retain(Held::alive);
            self.swept_len = self.lingering_buffers.len();
        }
    }
}

/// What a counted object is, for its destructor.
#[derive(Debug, Clone, Copy)]
enum Owned {
    Surface,
    ShmBuffer(PoolKey),
    DmabufBuffer,
}

/// One client's ledger.
#[derive(Default)]
struct Ledger {
    pools: HashMap<PoolKey, PoolEntry>,
    /// Pools none of whose objects exist any more.
    lingering_pools: Vec<PoolKey>,
    /// The bytes of every pool in `pools`.
    shm_bytes: u64,
    /// dmabuf buffers that exist, with their dmabufs.
    live_dmabufs: HashMap<ObjectId, DmabufMemory>,
    /// Destroyed dmabuf buffers whose smithay data (holding the dmabufs) may still live.
    lingering_dmabufs: Vec<(DmabufMemory, Held)>,
    /// Each dmabuf counted: its size and how many buffers (live or lingering) use it.
    dmabufs: HashMap<DmabufIdentity, (u64, u32)>,
    /// The size of every dmabuf in `dmabufs`.
    dmabuf_bytes: u64,
    buffers: u32,
    surfaces: u32,
}

impl Ledger {
    /// Lets go of lingering memory smithay has freed.
    fn sweep(&mut self) {
        let pools = &mut self.pools;
        let shm_bytes = &mut self.shm_bytes;
        self.lingering_pools.retain(|key| match pools.get(key) {
            Some(pool) if pool.mapped() => true,
            Some(_) => {
                if let Some(pool) = pools.remove(key) {
                    *shm_bytes -= pool.bytes;
                }
                false
            }
            None => false,
        });
        let mut released = Vec::new();
        self.lingering_dmabufs.retain(|(memory, data)| {
            let alive = data.alive();
            if !alive {
                released.push(memory.clone());
            }
            alive
        });
        for memory in released {
            self.release_dmabufs(&memory);
        }
    }

    fn count_dmabufs(&mut self, memory: &DmabufMemory) {
        for &(identity, bytes) in &memory.0 {
            let entry = self.dmabufs.entry(identity).or_insert((bytes, 0));
            if entry.1 == 0 {
                self.dmabuf_bytes += bytes;
            }
            entry.1 += 1;
        }
    }

    fn release_dmabufs(&mut self, memory: &DmabufMemory) {
        for (identity, _) in &memory.0 {
            if let Some(entry) = self.dmabufs.get_mut(identity) {
                entry.1 -= 1;
                if entry.1 == 0 {
                    self.dmabuf_bytes -= entry.0;
                    self.dmabufs.remove(identity);
                }
            }
        }
    }

    /// Bytes of `memory` this client does not hold yet.
    fn new_dmabuf_bytes(&self, memory: &DmabufMemory) -> u64 {
        memory
            .0
            .iter()
            .filter(|(identity, _)| !self.dmabufs.contains_key(identity))
            .map(|&(_, bytes)| bytes)
            .sum()
    }

    /// The figures (exact after a [`Ledger::sweep`]).
    fn figures(&self) -> Figures {
        Figures {
            shm_pools: self.pools.len() as u32,
            shm_bytes: self.shm_bytes,
            dmabufs: (self.live_dmabufs.len() + self.lingering_dmabufs.len()) as u32,
            dmabuf_bytes: self.dmabuf_bytes,
            buffers: self.buffers,
            surfaces: self.surfaces,
        }
    }

    fn holds_nothing(&self) -> bool {
        self.figures() == Figures::default()
    }
}

/// Every client's ledger, in `Core`.
#[derive(Default)]
pub struct MemoryBook {
    clients: HashMap<ClientId, Ledger>,
    /// The client of each counted `wl_buffer` and `wl_surface`, and what it is, for their
    /// destructors (a destroyed object no longer knows its client).
    owners: HashMap<ObjectId, (ClientId, Owned)>,
    next_pool: u64,
    /// `clients.len()` after the last sweep of disconnected clients.
    clients_swept_len: usize,
}

impl std::fmt::Debug for MemoryBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBook")
            .field("clients", &self.clients.len())
            .field("owned_objects", &self.owners.len())
            .finish()
    }
}

impl MemoryBook {
    fn ledger(&mut self, dh: &DisplayHandle, client: &ClientId) -> &mut Ledger {
        if !self.clients.contains_key(client)
            && self.clients.len() >= 2 * self.clients_swept_len.max(16)
        {
            self.sweep_disconnected(dh);
        }
        let ledger = self.clients.entry(client.clone()).or_default();
        ledger.sweep();
        ledger
    }

    /// Drops the ledgers of disconnected clients that no longer hold anything.
    pub fn sweep_disconnected(&mut self, dh: &DisplayHandle) {
        let handle = dh.backend_handle();
        self.clients.retain(|id, ledger| {
            ledger.sweep();
            handle.get_client_data(id.clone()).is_ok() || !ledger.holds_nothing()
        });
        self.clients_swept_len = self.clients.len();
    }

    /// What `client` holds now.
    pub fn figures(&mut self, client: &ClientId) -> Figures {
        self.clients
            .get_mut(client)
            .map_or_else(Figures::default, |ledger| {
                ledger.sweep();
                ledger.figures()
            })
    }

    /// What clients that have disconnected still make lockstep hold (normally nothing a frame
    /// after they left); forgets those that hold nothing.
    pub fn disconnected_figures(&mut self, dh: &DisplayHandle) -> Figures {
        self.sweep_disconnected(dh);
        let handle = dh.backend_handle();
        let mut total = Figures::default();
        for (id, ledger) in &self.clients {
            if handle.get_client_data(id.clone()).is_err() {
                let f = ledger.figures();
                total.shm_pools += f.shm_pools;
                total.shm_bytes += f.shm_bytes;
                total.dmabufs += f.dmabufs;
                total.dmabuf_bytes += f.dmabuf_bytes;
                total.buffers += f.buffers;
                total.surfaces += f.surfaces;
            }
        }
        total
    }

    /// Checks that `client` may map `bytes` more of shm (a new pool, or a pool growing by
    /// that much) under `max` bytes.
    pub fn check_shm(
        &mut self,
        dh: &DisplayHandle,
        client: &ClientId,
        bytes: u64,
        max: u64,
    ) -> Result<(), OverLimit> {
        let held = self.ledger(dh, client).shm_bytes;
        check(Limit::ShmBytes, held, bytes, max)
    }

    /// Records a new mapped pool of `bytes` (its `wl_shm_pool` exists).
    pub fn add_pool(&mut self, dh: &DisplayHandle, client: &ClientId, bytes: u64) -> PoolKey {
        let key = PoolKey(self.next_pool);
        self.next_pool += 1;
        let ledger = self.ledger(dh, client);
        ledger.shm_bytes += bytes;
        ledger.pools.insert(
            key,
            PoolEntry {
                bytes,
                live_objects: 1,
                pool_data: None,
                lingering_buffers: Vec::new(),
                swept_len: 0,
            },
        );
        key
    }

    /// The mapping of pool `key` is now `bytes` long.
    pub fn resize_pool(&mut self, client: &ClientId, key: PoolKey, bytes: u64) {
        if let Some(ledger) = self.clients.get_mut(client) {
            if let Some(pool) = ledger.pools.get_mut(&key) {
                ledger.shm_bytes = ledger.shm_bytes - pool.bytes + bytes;
                pool.bytes = bytes;
            }
        }
    }

    /// How many bytes pool `key` maps now.
    pub fn pool_bytes(&self, client: &ClientId, key: PoolKey) -> u64 {
        self.clients
            .get(client)
            .and_then(|l| l.pools.get(&key))
            .map_or(0, |p| p.bytes)
    }

    /// The `wl_shm_pool` of pool `key` was destroyed; `data` is its smithay data, which maps
    /// the pool as long as it lives.
    pub fn pool_destroyed(&mut self, client: &ClientId, key: PoolKey, data: Held) {
        let Some(ledger) = self.clients.get_mut(client) else {
            return;
        };
        if let Some(pool) = ledger.pools.get_mut(&key) {
            pool.pool_data = Some(data);
            pool.live_objects -= 1;
            if pool.live_objects == 0 {
                ledger.lingering_pools.push(key);
            }
        }
    }

    /// Checks that `client` may have one more buffer under `max`.
    pub fn check_buffer(
        &mut self,
        dh: &DisplayHandle,
        client: &ClientId,
        max: u64,
    ) -> Result<(), OverLimit> {
        let held = u64::from(self.ledger(dh, client).buffers);
        check(Limit::Buffers, held, 1, max)
    }

    /// Records shm buffer `id` made from pool `key`.
    pub fn add_shm_buffer(
        &mut self,
        dh: &DisplayHandle,
        client: &ClientId,
        key: PoolKey,
        id: ObjectId,
    ) {
        let ledger = self.ledger(dh, client);
        ledger.buffers += 1;
        if let Some(pool) = ledger.pools.get_mut(&key) {
            pool.live_objects += 1;
        }
        self.owners
            .insert(id, (client.clone(), Owned::ShmBuffer(key)));
    }

    /// Checks that `client` may import a buffer of dmabufs `memory` under `max` bytes (the
    /// dmabufs it holds already do not count again).
    pub fn check_dmabuf(
        &mut self,
        dh: &DisplayHandle,
        client: &ClientId,
        memory: &DmabufMemory,
        max: u64,
    ) -> Result<(), OverLimit> {
        let ledger = self.ledger(dh, client);
        let held = ledger.dmabuf_bytes;
        check(
            Limit::DmabufBytes,
            held,
            ledger.new_dmabuf_bytes(memory),
            max,
        )
    }

    /// Records dmabuf buffer `id` made of `memory`.
    pub fn add_dmabuf_buffer(
        &mut self,
        dh: &DisplayHandle,
        client: &ClientId,
        id: ObjectId,
        memory: DmabufMemory,
    ) {
        let ledger = self.ledger(dh, client);
        ledger.buffers += 1;
        ledger.count_dmabufs(&memory);
        ledger.live_dmabufs.insert(id.clone(), memory);
        self.owners
            .insert(id, (client.clone(), Owned::DmabufBuffer));
    }

    /// A `wl_buffer` was destroyed (any kind; ones not counted here are ignored); `data` is
    /// its smithay data, which holds its memory as long as it lives.
    pub fn buffer_destroyed(&mut self, id: &ObjectId, data: Option<Held>) {
        let Some((client, owned)) = self.owners.remove(id) else {
            return;
        };
        let Some(ledger) = self.clients.get_mut(&client) else {
            return;
        };
        ledger.buffers = ledger.buffers.saturating_sub(1);
        match owned {
            Owned::ShmBuffer(key) => {
                if let Some(pool) = ledger.pools.get_mut(&key) {
                    if let Some(data) = data {
                        pool.add_lingering_buffer(data);
                    }
                    pool.live_objects -= 1;
                    if pool.live_objects == 0 {
                        ledger.lingering_pools.push(key);
                    }
                }
            }
            Owned::DmabufBuffer => {
                if let Some(memory) = ledger.live_dmabufs.remove(id) {
                    match data {
                        Some(data) => ledger.lingering_dmabufs.push((memory, data)),
                        None => ledger.release_dmabufs(&memory),
                    }
                }
            }
            Owned::Surface => {}
        }
    }

    /// Checks that `client` may have one more surface under `max`, and counts it if so.
    pub fn add_surface(
        &mut self,
        dh: &DisplayHandle,
        client: &ClientId,
        id: ObjectId,
        max: u64,
    ) -> Result<(), OverLimit> {
        let ledger = self.ledger(dh, client);
        check(Limit::Surfaces, u64::from(ledger.surfaces), 1, max)?;
        ledger.surfaces += 1;
        self.owners.insert(id, (client.clone(), Owned::Surface));
        Ok(())
    }

    /// A `wl_surface` was destroyed.
    pub fn surface_destroyed(&mut self, id: &ObjectId) {
        if let Some((client, Owned::Surface)) = self.owners.remove(id) {
            if let Some(ledger) = self.clients.get_mut(&client) {
                ledger.surfaces = ledger.surfaces.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn data() -> Arc<u8> {
        Arc::new(0)
    }

    fn pool(bytes: u64) -> PoolEntry {
        PoolEntry {
            bytes,
            live_objects: 1,
            pool_data: None,
            lingering_buffers: Vec::new(),
            swept_len: 0,
        }
    }

    #[test]
    fn a_pool_counts_until_its_objects_are_gone_and_smithay_lets_go() {
        let mut ledger = Ledger::default();
        ledger.pools.insert(PoolKey(0), pool(4096));
        ledger.shm_bytes = 4096;
        let buffer = data();
        let entry = ledger.pools.get_mut(&PoolKey(0)).unwrap();
        entry.live_objects = 0;
        entry.add_lingering_buffer(Held::of(&buffer));
        ledger.lingering_pools.push(PoolKey(0));
        ledger.sweep();
        assert_eq!(ledger.figures().shm_bytes, 4096, "the buffer is still held");
        drop(buffer);
        ledger.sweep();
        assert_eq!(ledger.figures(), Figures::default());
        assert!(ledger.lingering_pools.is_empty() && ledger.pools.is_empty());
    }

    #[test]
    fn a_dmabuf_imported_twice_counts_once_until_both_buffers_are_gone() {
        let mut ledger = Ledger::default();
        let a = DmabufIdentity { dev: 1, ino: 10 };
        let b = DmabufIdentity { dev: 1, ino: 11 };
        let one = DmabufMemory(vec![(a, 4096)]);
        let two = DmabufMemory(vec![(a, 4096), (b, 100)]);
        ledger.count_dmabufs(&one);
        assert_eq!(ledger.new_dmabuf_bytes(&one), 0);
        assert_eq!(ledger.new_dmabuf_bytes(&two), 100);
        ledger.count_dmabufs(&two);
        assert_eq!(ledger.dmabuf_bytes, 4196);
        let held = data();
        ledger.lingering_dmabufs.push((one, Held::of(&held)));
        ledger.release_dmabufs(&two);
        ledger.sweep();
        assert_eq!(ledger.dmabuf_bytes, 4096, "the first buffer still holds a");
        drop(held);
        ledger.sweep();
        assert_eq!(ledger.dmabuf_bytes, 0);
        assert!(ledger.dmabufs.is_empty());
    }

    #[test]
    fn long_lived_pools_do_not_keep_dead_buffer_entries() {
        let mut entry = pool(1);
        for _ in 0..10_000 {
            let buffer = data();
            entry.add_lingering_buffer(Held::of(&buffer));
        }
        assert!(entry.lingering_buffers.len() <= 16);
        assert!(entry.mapped());
    }
}
