//! Queues in Kazoo's layouts: [`zk_recipes::queue::Queue`] and
//! [`zk_recipes::queue::LockingQueue`], each driven on the connection task.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use zk_recipes::queue::{
    DEFAULT_PRIORITY, ENTRIES, ENTRY_PREFIX, LockingQueue as LockingMachine, Outcome,
    Queue as Machine,
};

use super::runner::{self, Control, Steer};
use super::{no_node_is_none, unique_id};
use crate::{Acl, Client, Error, Result};

/// Maps the outcomes every queue call shares.
fn failure(outcome: Outcome) -> Error {
    match outcome {
        Outcome::Failed(e) => e.into(),
        // The reply was lost and the layout cannot tell whether it landed.
        Outcome::InDoubt => Error::ConnectionLoss,
        // The claim went with its session.
        Outcome::Lost => Error::SessionExpired,
        _ => Error::UnexpectedResponse,
    }
}

/// Kazoo's `Queue`: items are persistent sequential nodes `<path>/entry-PPP-<sequence>`,
/// taken by priority (0 to 999, lower first; Kazoo's default 100) and then in order of
/// arrival. Taking an item deletes it, conditional on the version read: each item goes to
/// at most one taker, in this process or in a Kazoo one.
///
/// **Delivery.** An item is gone from the server before it is processed, as with Kazoo:
/// use [`LockingQueue`] for work that must survive a crashed worker. A `put` or a take
/// whose reply was lost fails with [`Error::ConnectionLoss`] rather than risk a duplicate
/// or report an item that another taker may have: Kazoo's names carry no id to check.
///
/// **Cancel safety.** Dropping a future stops waiting; a take whose delete was already
/// sent may still remove its item (which is then lost to the caller).
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::Queue;
/// let jobs = Queue::new(&client, "/queues/jobs");
/// jobs.put("resize image 42").await?;
/// jobs.put_with_priority("page the on-call", 1).await?; // ahead of the default 100
/// if let Some(job) = jobs.get().await? {
///     println!("got {job:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    path: String,
}

impl Queue {
    /// A queue at `path`.
    pub fn new(client: &Client, path: &str) -> Queue {
        Queue {
            client: client.clone(),
            path: path.to_string(),
        }
    }

    async fn run(
        &self,
        start: impl FnOnce(&mut Machine, std::time::Instant) + Send + 'static,
    ) -> Result<Outcome> {
        zk_proto::path::validate_path(&self.path)?;
        let machine = Machine::new(&self.path, Acl::open_unsafe());
        let (_control, mut outcomes) =
            runner::spawn_outcomes(&self.client, machine, Box::new(start));
        outcomes.recv().await.ok_or(Error::Closed)
    }

    /// Appends an item with Kazoo's default priority (100).
    pub async fn put(&self, data: impl Into<Bytes>) -> Result<()> {
        self.put_with_priority(data, DEFAULT_PRIORITY).await
    }

    /// Appends an item with `priority` (0 to 999, lower first; larger values are 999).
    pub async fn put_with_priority(&self, data: impl Into<Bytes>, priority: u16) -> Result<()> {
        let data = data.into();
        match self.run(move |m, now| m.put(now, data, priority)).await? {
            Outcome::Put => Ok(()),
            other => Err(failure(other)),
        }
    }

    /// The number of items.
    pub async fn len(&self) -> Result<usize> {
        let children = no_node_is_none(self.client.get_children(&self.path).await)?;
        Ok(children.map_or(0, |c| {
            c.iter().filter(|n| n.starts_with(ENTRY_PREFIX)).count()
        }))
    }

    /// Whether the queue is empty.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// Takes the first item, if any.
    pub async fn get(&self) -> Result<Option<Bytes>> {
        match self.run(|m, now| m.get(now, false, None)).await? {
            Outcome::Taken(item) => Ok(Some(item)),
            Outcome::Empty => Ok(None),
            other => Err(failure(other)),
        }
    }

    /// Takes the first item, waiting for one at most `timeout` (connected or not).
    pub async fn get_wait(&self, timeout: Duration) -> Result<Option<Bytes>> {
        let deadline = (Instant::now() + timeout).into_std();
        match self
            .run(move |m, now| m.get(now, true, Some(deadline)))
            .await?
        {
            Outcome::Taken(item) => Ok(Some(item)),
            Outcome::TimedOut | Outcome::Empty => Ok(None),
            other => Err(failure(other)),
        }
    }
}

/// Kazoo's `LockingQueue`: items are `<path>/entries/entry-PPP-<sequence>`; a worker
/// claims one with an ephemeral `<path>/taken/<item>` and removes both in one transaction
/// once it processed the item ([`QueueItem::consume`]). An item whose worker puts it back,
/// drops it, or loses its session goes back to the queue. Kazoo workers share the queue.
///
/// **Cancel safety.** The claim belongs to a task, not to the caller's future: a `get`
/// dropped at any await point (or timed out) and a [`QueueItem`] dropped unconsumed have
/// their claim deleted, retried until the server confirms it, so no item is left stuck.
/// A claim whose create reply was lost is recognised by the worker's id in its data, and
/// a claim is only deleted or consumed after reading it back as this worker's: a worker
/// whose session expired never removes another worker's claim.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::LockingQueue;
/// let jobs = LockingQueue::new(&client, "/queues/reliable");
/// jobs.put("send invoice 9").await?;
/// if let Some(item) = jobs.get(std::time::Duration::from_secs(5)).await? {
///     // ... process item.data; on failure item.release() puts it back ...
///     item.consume().await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LockingQueue {
    client: Client,
    path: String,
}

/// An item claimed from a [`LockingQueue`]. Dropping it puts it back (in the background).
#[derive(Debug)]
pub struct QueueItem {
    control: Steer<LockingMachine>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    entry: String,
    /// The item's data.
    pub data: Bytes,
}

impl QueueItem {
    /// The item's node name under `<path>/entries`.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    async fn finish(mut self, step: Control<LockingMachine>, wanted: Outcome) -> Result<()> {
        let _ = self.control.send(step);
        loop {
            match self.outcomes.recv().await {
                Some(o) if o == wanted => return Ok(()),
                Some(Outcome::Failed(e)) => return Err(e.into()),
                Some(o @ (Outcome::Lost | Outcome::InDoubt)) => return Err(failure(o)),
                Some(_) => {}
                None => return Err(Error::Closed),
            }
        }
    }

    /// Removes the item from the queue for good, with its claim, in one transaction.
    /// Fails with [`Error::SessionExpired`] when the claim went with its session (the item
    /// is then back in the queue for others), and with [`Error::ConnectionLoss`] when the
    /// session ended just as the transaction was sent: it may have landed, or another
    /// worker may have taken the item since. Dropping this future before it returns
    /// leaves the item claimed until the transaction's fate is known, then put back if it
    /// did not land.
    pub async fn consume(self) -> Result<()> {
        self.finish(Box::new(|m, now| m.consume(now)), Outcome::Consumed)
            .await
    }

    /// Puts the item back for another worker, and waits until the server confirmed that
    /// the claim is gone.
    pub async fn release(self) -> Result<()> {
        self.finish(Box::new(|m, now| m.put_back(now)), Outcome::Released)
            .await
    }
}

impl LockingQueue {
    /// A locking queue at `path`.
    pub fn new(client: &Client, path: &str) -> LockingQueue {
        LockingQueue {
            client: client.clone(),
            path: path.to_string(),
        }
    }

    fn machine(&self) -> Result<LockingMachine> {
        zk_proto::path::validate_path(&self.path)?;
        Ok(LockingMachine::new(
            &self.path,
            &unique_id()?,
            Acl::open_unsafe(),
        ))
    }

    /// Appends an item with Kazoo's default priority (100).
    pub async fn put(&self, data: impl Into<Bytes>) -> Result<()> {
        self.put_with_priority(data, DEFAULT_PRIORITY).await
    }

    /// Appends an item with `priority` (0 to 999, lower first). A put whose reply was lost
    /// fails with [`Error::ConnectionLoss`]: it may have landed.
    pub async fn put_with_priority(&self, data: impl Into<Bytes>, priority: u16) -> Result<()> {
        let data = data.into();
        let start: Control<LockingMachine> = Box::new(move |m, now| m.put(now, data, priority));
        let (_control, mut outcomes) = runner::spawn_outcomes(&self.client, self.machine()?, start);
        match outcomes.recv().await.ok_or(Error::Closed)? {
            Outcome::Put => Ok(()),
            other => Err(failure(other)),
        }
    }

    /// Items not yet consumed (claimed or not).
    pub async fn len(&self) -> Result<usize> {
        let entries = format!("{}/{ENTRIES}", self.path);
        let children = no_node_is_none(self.client.get_children(&entries).await)?;
        Ok(children.map_or(0, |c| {
            c.iter().filter(|n| n.starts_with(ENTRY_PREFIX)).count()
        }))
    }

    /// Whether no item is left.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// Claims the first item nobody holds, waiting at most `timeout` (connected or not).
    pub async fn get(&self, timeout: Duration) -> Result<Option<QueueItem>> {
        let deadline = (Instant::now() + timeout).into_std();
        let session = self.client.session_id();
        let start: Control<LockingMachine> =
            Box::new(move |m, now| m.get(now, session, Some(deadline)));
        let (control, mut outcomes) = runner::spawn_outcomes(&self.client, self.machine()?, start);
        loop {
            match outcomes.recv().await.ok_or(Error::Closed)? {
                Outcome::Claimed { entry, data } => {
                    return Ok(Some(QueueItem {
                        control,
                        outcomes,
                        entry,
                        data,
                    }));
                }
                // A claim made meanwhile is removed in the background.
                Outcome::TimedOut => return Ok(None),
                other @ (Outcome::Failed(_) | Outcome::Lost | Outcome::InDoubt) => {
                    return Err(failure(other));
                }
                _ => {}
            }
        }
    }
}
