//! Watchers: a one-shot watch is a future, a persistent watch is a stream. Dropping either
//! releases the watch, and the server's copy when nothing else needs it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::{mpsc, oneshot};
use zk_proto::consts::{EventType, KeeperState};
use zk_proto::session::{RequestId, WatchedEvent};

use crate::connection::Command;
use zk_proto::session::StateEvent;

fn ended(watch: RequestId) -> WatchedEvent {
    WatchedEvent {
        watch,
        kind: EventType::None,
        state: KeeperState::Closed,
        path: String::new(),
    }
}

/// A one-shot watch: `.await` it for the one event (a node change, or a final
/// `EventType::None` event when the session ends first).
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// let (data, _stat, watcher) = client.get_data_watch("/config").await?;
/// let event = watcher.await;
/// println!("{:?} on {} (was {} bytes)", event.kind, event.path, data.len());
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "dropping a watcher removes the watch"]
pub struct OneshotWatcher {
    rx: oneshot::Receiver<WatchedEvent>,
    id: RequestId,
    commands: mpsc::UnboundedSender<Command>,
    done: bool,
}

impl OneshotWatcher {
    pub(crate) fn new(
        rx: oneshot::Receiver<WatchedEvent>,
        id: RequestId,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Self {
        OneshotWatcher {
            rx,
            id,
            commands,
            done: false,
        }
    }

    /// The id of the request that set the watch (it is also in every event).
    pub fn id(&self) -> RequestId {
        self.id
    }
}

impl Future for OneshotWatcher {
    type Output = WatchedEvent;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WatchedEvent> {
        let id = self.id;
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(r) => {
                self.done = true;
                Poll::Ready(r.unwrap_or_else(|_| ended(id)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for OneshotWatcher {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.commands.send(Command::ReleaseWatch(self.id));
        }
    }
}

/// A persistent (or persistent recursive) watch: a stream of every event until the watch is
/// removed or the session ends, which the last item says (`EventType::None` or
/// `PersistentWatchRemoved`).
#[derive(Debug)]
#[must_use = "dropping a watcher removes the watch"]
pub struct PersistentWatcher {
    rx: mpsc::UnboundedReceiver<WatchedEvent>,
    id: RequestId,
    commands: mpsc::UnboundedSender<Command>,
    done: bool,
}

impl PersistentWatcher {
    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<WatchedEvent>,
        id: RequestId,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Self {
        PersistentWatcher {
            rx,
            id,
            commands,
            done: false,
        }
    }

    /// The id of the `addWatch` request (it is also in every event).
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The next event, or `None` once the watch ended.
    pub async fn next(&mut self) -> Option<WatchedEvent> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for PersistentWatcher {
    type Item = WatchedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(None) = polled {
            self.done = true;
        }
        polled
    }
}

impl Drop for PersistentWatcher {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.commands.send(Command::ReleaseWatch(self.id));
        }
    }
}

/// A stream of session state transitions, the Rust form of Kazoo's state listeners.
#[derive(Debug)]
pub struct StateEvents {
    pub(crate) rx: mpsc::UnboundedReceiver<StateEvent>,
}

impl StateEvents {
    /// The next transition, or `None` once the client is gone.
    pub async fn next(&mut self) -> Option<StateEvent> {
        self.rx.recv().await
    }
}

impl Stream for StateEvents {
    type Item = StateEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StateEvent>> {
        self.rx.poll_recv(cx)
    }
}
