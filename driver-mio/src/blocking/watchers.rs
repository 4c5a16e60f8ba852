//! Watchers: what a call that sets a watch hands back, and how dropping one releases it.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use zk_client::{Error, Result};
use zk_proto::session::{RequestId, StateEvent, WatchedEvent};

use super::reactor::*;

/// A one-shot watch: wait for its event ([`OneshotWatcher::wait`]): a node change, or a
/// final `EventType::None` event when the session ends first. Dropping it before the event
/// releases the watch.
///
/// ```no_run
/// # fn demo(client: zk_mio::blocking::Client) -> zk_mio::Result<()> {
/// use std::time::Duration;
/// let (data, _stat, mut watcher) = client.get_data_watch("/config")?;
/// match watcher.wait_timeout(Duration::from_secs(5)) {
///     Some(event) => println!("{:?} on {} (was {} bytes)", event.kind, event.path, data.len()),
///     None => println!("no change within 5 s; still watching"),
/// }
/// # Ok(()) }
/// ```
#[must_use = "dropping a watcher removes the watch"]
pub struct OneshotWatcher {
    pub(super) rx: Receiver<WatchedEvent>,
    pub(super) id: RequestId,
    pub(super) shared: Arc<Shared>,
    pub(super) done: bool,
}

impl std::fmt::Debug for OneshotWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneshotWatcher")
            .field("id", &self.id)
            .finish()
    }
}

impl OneshotWatcher {
    /// The id of the request that set the watch (it is also in every event).
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// Waits for the event (a final `EventType::None` event if the session ends first).
    pub fn wait(mut self) -> WatchedEvent {
        self.done = true;
        self.rx
            .recv()
            .unwrap_or_else(|_| WatchedEvent::ended(self.id))
    }

    /// Waits at most `timeout` for the event; `None` when the time ran out, and the watch
    /// is still set: wait again, or drop the watcher to release it.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<WatchedEvent> {
        match self.rx.recv_timeout(timeout) {
            Ok(e) => {
                self.done = true;
                Some(e)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.done = true;
                Some(WatchedEvent::ended(self.id))
            }
        }
    }
}

impl Drop for OneshotWatcher {
    fn drop(&mut self) {
        if !self.done {
            self.shared.release(self.id);
        }
    }
}

/// A persistent watch as an iterator of events; it ends when the watch is removed or the
/// session ends. Dropping it releases the watch.
#[must_use = "dropping a watcher removes the watch"]
pub struct PersistentWatcher {
    pub(super) rx: Option<Receiver<WatchedEvent>>,
    pub(super) id: RequestId,
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for PersistentWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentWatcher")
            .field("id", &self.id)
            .finish()
    }
}

impl PersistentWatcher {
    /// The id of the `addWatch` request (it is also in every event).
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The next event within `timeout`: `Ok(None)` when the time ran out, and
    /// [`Error::Closed`] once the watch ended (after its last event).
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<WatchedEvent>> {
        next_within(&mut self.rx, timeout)
    }
}

impl Iterator for PersistentWatcher {
    type Item = WatchedEvent;

    fn next(&mut self) -> Option<WatchedEvent> {
        next_of(&mut self.rx)
    }
}

impl Drop for PersistentWatcher {
    fn drop(&mut self) {
        if self.rx.is_some() {
            self.shared.release(self.id);
        }
    }
}

/// Keeps a callback watch ([`Client::add_watch_fn`](super::Client::add_watch_fn)) alive;
/// dropping it releases the watch, and its callback is not called again.
#[must_use = "dropping the handle removes the watch"]
pub struct WatchHandle {
    pub(super) id: RequestId,
    pub(super) shared: Arc<Shared>,
}

impl WatchHandle {
    /// The id of the request that set the watch (it is also in every event).
    pub fn id(&self) -> RequestId {
        self.id
    }
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle").field("id", &self.id).finish()
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.shared.release(self.id);
    }
}

/// The session's state transitions as an iterator, the Rust form of Kazoo's state
/// listeners ([`Client::add_listener`](super::Client::add_listener) is the callback form):
/// detailed states and the application view, in order. It ends once the client is gone.
#[derive(Debug)]
pub struct StateEvents {
    pub(super) rx: Option<Receiver<StateEvent>>,
}

impl StateEvents {
    /// The next transition within `timeout`: `Ok(None)` when the time ran out, and
    /// [`Error::Closed`] once the client is gone.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<StateEvent>> {
        next_within(&mut self.rx, timeout)
    }
}

impl Iterator for StateEvents {
    type Item = StateEvent;

    /// The next transition, or `None` once the client is gone.
    fn next(&mut self) -> Option<StateEvent> {
        next_of(&mut self.rx)
    }
}

/// The next item of a stream's channel, or `None` once it ended (the channel is then let
/// go, so later calls end at once).
fn next_of<T>(rx: &mut Option<Receiver<T>>) -> Option<T> {
    let item = rx.as_ref()?.recv().ok();
    if item.is_none() {
        *rx = None;
    }
    item
}

/// The next item within `timeout`: `Ok(None)` when the time ran out, [`Error::Closed`]
/// once the stream ended.
fn next_within<T>(rx: &mut Option<Receiver<T>>, timeout: Duration) -> Result<Option<T>> {
    let Some(r) = rx.as_ref() else {
        return Err(Error::Closed);
    };
    match r.recv_timeout(timeout) {
        Ok(item) => Ok(Some(item)),
        Err(RecvTimeoutError::Disconnected) => {
            *rx = None;
            Err(Error::Closed)
        }
        Err(RecvTimeoutError::Timeout) => Ok(None),
    }
}
