//! ext-idle-notify-v1 (`ext_idle_notifier_v1`, version 2): swayidle and friends learn when the
//! user has been away for a given time, and when they come back.
//!
//! Why lockstep has its own: smithay 0.7's notifier gives every notification its own calloop
//! timer, re-armed (removed and inserted) on every input event, and does not remove the timer
//! when the notification is destroyed. A client that creates and destroys notifications with
//! long timeouts (up to 49 days) leaves a timer and the object's data behind for each, about
//! 350 bytes, until the timeout passes; and every key press or pointer motion costs a timer
//! re-insertion per live notification.
//!
//! How this one works: there is one timer for all notifications. Activity only records the
//! time ([`IdleNotifyState::notify_activity`] is O(1) unless some notification is idle, which
//! then gets `resumed`). Every notification's deadline is computed from three times: when it
//! was made, the last activity, and (if it respects inhibitors) when the last inhibitor went
//! away. A heap keeps the deadlines as they were when queued; when the earliest one is due, the
//! timer checks the real deadline (activity may have moved it later) and either sends `idled`
//! or queues the entry again. A destroyed notification leaves the map at once; its stale heap
//! entries are dropped when they come up, and the heap is rebuilt when more than half of it is
//! stale, so memory follows the live notifications.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    time::{Duration, Instant},
};

use smithay::reexports::{
    calloop::{
        timer::{TimeoutAction, Timer},
        LoopHandle, RegistrationToken,
    },
    wayland_protocols::ext::idle_notify::v1::server::{
        ext_idle_notification_v1::{self, ExtIdleNotificationV1},
        ext_idle_notifier_v1::{self, ExtIdleNotifierV1},
    },
    wayland_server::{
        backend::{ClientId, GlobalId},
        Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New,
    },
};

/// The version of `ext_idle_notifier_v1` lockstep implements.
pub const VERSION: u32 = 2;

/// Identifies one notification (a counter: object ids are reused, these are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotificationKey(u64);

/// Data of a `ext_idle_notification_v1`.
#[derive(Debug)]
pub struct NotificationData {
    key: NotificationKey,
}

/// One live notification.
#[derive(Debug)]
struct Entry {
    object: ExtIdleNotificationV1,
    timeout: Duration,
    created: Instant,
    /// False for `get_input_idle_notification` (version 2), which only looks at input.
    respects_inhibitors: bool,
    idle: bool,
}

/// What the compositor implements: access to the state.
pub trait IdleNotifyHandler {
    /// The protocol state.
    fn idle_notify_state(&mut self) -> &mut IdleNotifyState<Self>
    where
        Self: Sized;
}

/// Everything the compositor's state type must implement (the dispatch traits come from
/// [`delegate_ext_idle_notify!`](crate::delegate_ext_idle_notify)).
pub trait IdleNotifyDispatch:
    GlobalDispatch<ExtIdleNotifierV1, ()>
    + Dispatch<ExtIdleNotifierV1, ()>
    + Dispatch<ExtIdleNotificationV1, NotificationData>
    + IdleNotifyHandler
    + Sized
    + 'static
{
}

impl<D> IdleNotifyDispatch for D where
    D: GlobalDispatch<ExtIdleNotifierV1, ()>
        + Dispatch<ExtIdleNotifierV1, ()>
        + Dispatch<ExtIdleNotificationV1, NotificationData>
        + IdleNotifyHandler
        + 'static
{
}

/// Global state of the idle notifier.
#[derive(Debug)]
pub struct IdleNotifyState<D: 'static> {
    global: GlobalId,
    loop_handle: LoopHandle<'static, D>,
    next_key: u64,
    entries: HashMap<NotificationKey, Entry>,
    /// Deadlines as they were when queued (earliest first); entries that are gone or whose
    /// deadline moved are sorted out when they come up.
    queue: BinaryHeap<Reverse<(Instant, NotificationKey)>>,
    /// Notifications that sent `idled` and wait for activity.
    idle: Vec<NotificationKey>,
    last_activity: Instant,
    inhibited: bool,
    /// When the last inhibitor went away (countdowns of notifications that respect
    /// inhibitors start again from there).
    uninhibited_at: Instant,
    /// The timer and the instant it is set for.
    timer: Option<(RegistrationToken, Instant)>,
}

impl<D> IdleNotifyState<D>
where
    D: IdleNotifyDispatch,
{
    /// Creates the `ext_idle_notifier_v1` global.
    pub fn new(display: &DisplayHandle, loop_handle: LoopHandle<'static, D>) -> Self {
        let now = Instant::now();
        Self {
            global: display.create_global::<D, ExtIdleNotifierV1, _>(VERSION, ()),
            loop_handle,
            next_key: 0,
            entries: HashMap::new(),
            queue: BinaryHeap::new(),
            idle: Vec::new(),
            last_activity: now,
            inhibited: false,
            uninhibited_at: now,
            timer: None,
        }
    }

    /// The global's id.
    pub fn global(&self) -> GlobalId {
        self.global.clone()
    }

    /// How many notifications are alive (for tests and the census).
    pub fn notification_count(&self) -> usize {
        self.entries.len()
    }

    /// How many deadlines are queued, stale ones included (for tests: bounded by the live
    /// notifications).
    pub fn queued_deadlines(&self) -> usize {
        self.queue.len()
    }

    /// Input happened on the seat: every countdown starts again, idle notifications resume.
    pub fn notify_activity(&mut self) {
        let now = Instant::now();
        self.last_activity = now;
        for key in std::mem::take(&mut self.idle) {
            if let Some(entry) = self.entries.get_mut(&key) {
                entry.idle = false;
                entry.object.resumed();
                let deadline = now + entry.timeout;
                self.queue.push(Reverse((deadline, key)));
            }
        }
        self.arm();
    }

    /// Whether an idle inhibitor is in force. While it is, notifications that respect
    /// inhibitors do not go idle (idle ones resume); when it ends, their countdowns start
    /// again.
    pub fn set_inhibited(&mut self, inhibited: bool) {
        if self.inhibited == inhibited {
            return;
        }
        self.inhibited = inhibited;
        if inhibited {
            let entries = &mut self.entries;
            self.idle.retain(|key| {
                let Some(entry) = entries.get_mut(key) else {
                    return false;
                };
                if entry.respects_inhibitors {
                    entry.idle = false;
                    entry.object.resumed();
                    false
                } else {
                    true
                }
            });
        } else {
            self.uninhibited_at = Instant::now();
            // Entries that came up while inhibited were dropped from the queue: queue every
            // counting one again (a rare event; O(n)).
            self.rebuild_queue();
        }
    }

    /// When `entry` goes idle, given the activity and inhibition so far.
    fn deadline(&self, entry: &Entry) -> Instant {
        let mut start = entry.created.max(self.last_activity);
        if entry.respects_inhibitors {
            start = start.max(self.uninhibited_at);
        }
        start + entry.timeout
    }

    /// Queues every notification that is counting down, dropping stale entries.
    fn rebuild_queue(&mut self) {
        let queue = self
            .entries
            .iter()
            .filter(|(_, e)| !e.idle)
            .map(|(key, e)| Reverse((self.deadline(e), *key)))
            .collect();
        self.queue = queue;
        self.arm();
    }

    /// Sends `idled` to every notification whose deadline has passed; returns the next
    /// instant the timer must fire at, if any.
    fn expire(&mut self, now: Instant) -> Option<Instant> {
        while let Some(&Reverse((queued, key))) = self.queue.peek() {
            if queued > now {
                return Some(queued);
            }
            self.queue.pop();
            let Some(entry) = self.entries.get(&key) else {
                continue; // destroyed
            };
            if entry.idle || (entry.respects_inhibitors && self.inhibited) {
                continue; // queued again on activity or when the inhibitor goes
            }
            let deadline = self.deadline(entry);
            if deadline > now {
                self.queue.push(Reverse((deadline, key)));
                continue;
            }
            entry.object.idled();
            if let Some(entry) = self.entries.get_mut(&key) {
                entry.idle = true;
            }
            self.idle.push(key);
        }
        None
    }

    /// Makes sure the timer fires no later than the earliest queued deadline.
    fn arm(&mut self) {
        let Some(&Reverse((first, _))) = self.queue.peek() else {
            return;
        };
        if let Some((token, at)) = self.timer {
            if at <= first {
                return; // fires early enough; it looks at the queue when it does
            }
            self.loop_handle.remove(token);
            self.timer = None;
        }
        let token =
            self.loop_handle
                .insert_source(Timer::from_deadline(first), |_, _, state: &mut D| {
                    let this = state.idle_notify_state();
                    match this.expire(Instant::now()) {
                        Some(next) => {
                            if let Some((_, at)) = &mut this.timer {
                                *at = next;
                            }
                            TimeoutAction::ToInstant(next)
                        }
                        None => {
                            this.timer = None;
                            TimeoutAction::Drop
                        }
                    }
                });
        match token {
            Ok(token) => self.timer = Some((token, first)),
            // Only fails if the loop is gone: nothing would fire anyway.
            Err(err) => tracing::warn!(%err, "could not arm the idle timer"),
        }
    }

    fn add(
        &mut self,
        object: ExtIdleNotificationV1,
        key: NotificationKey,
        timeout_ms: u32,
        respects_inhibitors: bool,
    ) {
        let entry = Entry {
            object,
            timeout: Duration::from_millis(u64::from(timeout_ms)),
            created: Instant::now(),
            respects_inhibitors,
            idle: false,
        };
        if !(respects_inhibitors && self.inhibited) {
            self.queue.push(Reverse((self.deadline(&entry), key)));
        }
        self.entries.insert(key, entry);
        self.arm();
    }

    fn remove(&mut self, key: NotificationKey) {
        if self.entries.remove(&key).is_none() {
            return;
        }
        if let Some(at) = self.idle.iter().position(|k| *k == key) {
            self.idle.swap_remove(at);
        }
        // Stale queue entries go when they come up; rebuild before they outnumber the live.
        if self.queue.len() > 64 && self.queue.len() > 2 * self.entries.len() {
            let entries = &self.entries;
            self.queue.retain(|Reverse((_, k))| entries.contains_key(k));
        }
        if self.entries.is_empty() {
            if let Some((token, _)) = self.timer.take() {
                self.loop_handle.remove(token);
            }
            self.queue.clear();
        }
    }

    fn new_key(&mut self) -> NotificationKey {
        self.next_key += 1;
        NotificationKey(self.next_key)
    }
}

impl<D> GlobalDispatch<ExtIdleNotifierV1, (), D> for IdleNotifyMarker
where
    D: GlobalDispatch<ExtIdleNotifierV1, ()> + Dispatch<ExtIdleNotifierV1, ()> + 'static,
{
    fn bind(
        _state: &mut D,
        _handle: &DisplayHandle,
        _client: &Client,
        resource: New<ExtIdleNotifierV1>,
        _global_data: &(),
        data_init: &mut DataInit<'_, D>,
    ) {
        data_init.init(resource, ());
    }
}

/// The type the dispatch implementations hang on (the state itself is generic over `D`).
#[derive(Debug)]
pub struct IdleNotifyMarker;

impl<D> Dispatch<ExtIdleNotifierV1, (), D> for IdleNotifyMarker
where
    D: IdleNotifyDispatch,
{
    fn request(
        state: &mut D,
        _client: &Client,
        _notifier: &ExtIdleNotifierV1,
        request: ext_idle_notifier_v1::Request,
        _data: &(),
        _dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        // lockstep has one seat: activity on it is all activity, so the seat argument only
        // names which one the client means.
        let (id, timeout, respects_inhibitors) = match request {
            ext_idle_notifier_v1::Request::GetIdleNotification { id, timeout, .. } => {
                (id, timeout, true)
            }
            ext_idle_notifier_v1::Request::GetInputIdleNotification { id, timeout, .. } => {
                (id, timeout, false)
            }
            _ => return, // destroy
        };
        let this = state.idle_notify_state();
        let key = this.new_key();
        let object = data_init.init(id, NotificationData { key });
        state
            .idle_notify_state()
            .add(object, key, timeout, respects_inhibitors);
    }
}

impl<D> Dispatch<ExtIdleNotificationV1, NotificationData, D> for IdleNotifyMarker
where
    D: IdleNotifyDispatch,
{
    fn request(
        _state: &mut D,
        _client: &Client,
        _notification: &ExtIdleNotificationV1,
        _request: ext_idle_notification_v1::Request,
        _data: &NotificationData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        // `destroy` is the only request; the entry goes in `destroyed`.
    }

    fn destroyed(
        state: &mut D,
        _client: ClientId,
        _notification: &ExtIdleNotificationV1,
        data: &NotificationData,
    ) {
        state.idle_notify_state().remove(data.key);
    }
}

/// Implements the ext-idle-notify dispatch traits for `$ty` by delegating to this module.
#[macro_export]
macro_rules! delegate_ext_idle_notify {
    ($ty:ty) => {
        smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            smithay::reexports::wayland_protocols::ext::idle_notify::v1::server::ext_idle_notifier_v1::ExtIdleNotifierV1: ()
        ] => $crate::ext_idle_notify::IdleNotifyMarker);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::ext::idle_notify::v1::server::ext_idle_notifier_v1::ExtIdleNotifierV1: ()
        ] => $crate::ext_idle_notify::IdleNotifyMarker);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::ext::idle_notify::v1::server::ext_idle_notification_v1::ExtIdleNotificationV1: $crate::ext_idle_notify::NotificationData
        ] => $crate::ext_idle_notify::IdleNotifyMarker);
    };
}
