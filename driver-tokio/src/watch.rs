//! Watchers: a one-shot watch is a future, a persistent watch is a stream, a callback
//! watch is a handle. Dropping any of them releases the watch, and the server's copy when
//! nothing else needs it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::{mpsc, oneshot};
use zk_proto::session::{RequestId, WatchedEvent};

use crate::connection::Command;
use crate::{Error, Result};
use zk_proto::session::StateEvent;

/// A one-shot watch: `.await` it (or [`OneshotWatcher::wait`]) for the one event: a node
/// change, or a final `EventType::None` event when the session ends first.
///
/// **Cancel safety.** Awaiting it, or [`OneshotWatcher::wait_timeout`], and dropping that
/// future at any await point loses nothing: the event stays for the next wait. Dropping the
/// watcher itself before its event releases the watch.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use std::time::Duration;
/// let (data, _stat, mut watcher) = client.get_data_watch("/config").await?;
/// match watcher.wait_timeout(Duration::from_secs(5)).await {
///     Some(event) => println!("{:?} on {} (was {} bytes)", event.kind, event.path, data.len()),
///     None => println!("no change within 5 s; still watching"),
/// }
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

    /// Waits for the event (a final `EventType::None` event if the session ends first);
    /// the same as awaiting the watcher.
    pub async fn wait(self) -> WatchedEvent {
        self.await
    }

    /// Waits at most `timeout` for the event; `None` when the time ran out, and the watch
    /// is still set: wait again, or drop the watcher to release it.
    pub async fn wait_timeout(&mut self, timeout: Duration) -> Option<WatchedEvent> {
        tokio::time::timeout(timeout, &mut *self).await.ok()
    }
}

impl Future for OneshotWatcher {
    type Output = WatchedEvent;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WatchedEvent> {
        let id = self.id;
        if self.done {
            // The event was taken: the watch is spent, as if its session ended.
            return Poll::Ready(WatchedEvent::ended(id));
        }
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(r) => {
                self.done = true;
                Poll::Ready(r.unwrap_or_else(|_| WatchedEvent::ended(id)))
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
///
/// **Cancel safety.** Dropping a [`PersistentWatcher::next`] or
/// [`PersistentWatcher::next_timeout`] future at any await point loses no event.
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

    /// The next event within `timeout`: `Ok(None)` when the time ran out, and
    /// [`Error::Closed`] once the watch ended (after its last event).
    pub async fn next_timeout(&mut self, timeout: Duration) -> Result<Option<WatchedEvent>> {
        match tokio::time::timeout(timeout, self.next()).await {
            Ok(Some(event)) => Ok(Some(event)),
            Ok(None) => Err(Error::Closed),
            Err(_) => Ok(None),
        }
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

/// A stream of session state transitions, the Rust form of Kazoo's state listeners
/// ([`Client::add_listener`](crate::Client::add_listener) is the callback form).
///
/// **Cancel safety.** Dropping a [`StateEvents::next`] or [`StateEvents::next_timeout`]
/// future at any await point loses no transition.
#[derive(Debug)]
pub struct StateEvents {
    pub(crate) rx: mpsc::UnboundedReceiver<StateEvent>,
}

impl StateEvents {
    /// The next transition, or `None` once the client is gone.
    pub async fn next(&mut self) -> Option<StateEvent> {
        self.rx.recv().await
    }

    /// The next transition within `timeout`: `Ok(None)` when the time ran out, and
    /// [`Error::Closed`] once the client is gone.
    pub async fn next_timeout(&mut self, timeout: Duration) -> Result<Option<StateEvent>> {
        match tokio::time::timeout(timeout, self.rx.recv()).await {
            Ok(Some(event)) => Ok(Some(event)),
            Ok(None) => Err(Error::Closed),
            Err(_) => Ok(None),
        }
    }
}

impl Stream for StateEvents {
    type Item = StateEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StateEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// Keeps a callback watch ([`Client::add_watch_fn`](crate::Client::add_watch_fn)) alive;
/// dropping it releases the watch, and its callback is not called again.
#[derive(Debug)]
#[must_use = "dropping the handle removes the watch"]
pub struct WatchHandle {
    id: RequestId,
    commands: mpsc::UnboundedSender<Command>,
}

impl WatchHandle {
    pub(crate) fn new(id: RequestId, commands: mpsc::UnboundedSender<Command>) -> Self {
        WatchHandle { id, commands }
    }

    /// The id of the request that set the watch (it is also in every event).
    pub fn id(&self) -> RequestId {
        self.id
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::ReleaseWatch(self.id));
    }
}
