//! Watchers: what a call that sets a watch hands back, and how dropping one releases it.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use zk_proto::consts::EventType;
use zk_proto::session::{RequestId, WatchedEvent};

use super::reactor::*;

/// A one-shot watch: wait for its event. Dropping it before the event releases the watch.
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
    /// Waits for the event (a final `EventType::None` event if the session ends first).
    pub fn wait(mut self) -> WatchedEvent {
        self.done = true;
        self.rx.recv().unwrap_or_else(|_| ended(self.id))
    }

    /// Waits up to `timeout` for the event.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<WatchedEvent> {
        match self.rx.recv_timeout(timeout) {
            Ok(e) => {
                self.done = true;
                Some(e)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.done = true;
                Some(ended(self.id))
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
    /// The next event within `timeout`; `Ok(None)` once the watch ended.
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> std::result::Result<Option<WatchedEvent>, RecvTimeoutError> {
        let Some(rx) = &self.rx else {
            return Ok(None);
        };
        match rx.recv_timeout(timeout) {
            Ok(e) => Ok(Some(e)),
            Err(RecvTimeoutError::Disconnected) => {
                self.rx = None;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

impl Iterator for PersistentWatcher {
    type Item = WatchedEvent;

    fn next(&mut self) -> Option<WatchedEvent> {
        let e = self.rx.as_ref()?.recv().ok();
        if e.is_none() {
            self.rx = None;
        }
        e
    }
}

impl Drop for PersistentWatcher {
    fn drop(&mut self) {
        if self.rx.is_some() {
            self.shared.release(self.id);
        }
    }
}

/// Keeps a callback watch alive; dropping it releases the watch.
#[must_use = "dropping the handle removes the watch"]
pub struct WatchHandle {
    pub(super) id: RequestId,
    pub(super) shared: Arc<Shared>,
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

pub(super) fn ended(watch: RequestId) -> WatchedEvent {
    WatchedEvent {
        watch,
        kind: EventType::None,
        state: zk_proto::consts::KeeperState::Closed,
        path: String::new(),
    }
}
