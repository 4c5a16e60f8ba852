//! Queues: a simple one whose items are taken by deleting them, and one whose items are
//! locked while processed and only removed once consumed.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{delete_quietly, no_node_is_none, reconnected};
use crate::{Client, CreateOptions, ErrorCode, Result};

/// A distributed FIFO queue: items are persistent sequential nodes; taking one deletes it,
/// so each item goes to exactly one taker.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::Queue;
/// let jobs = Queue::new(&client, "/queues/jobs");
/// jobs.put("resize image 42").await?;
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

    /// Appends an item.
    pub async fn put(&self, data: impl Into<Bytes>) -> Result<()> {
        let data = data.into();
        loop {
            match self
                .client
                .create(
                    &format!("{}/entry-", self.path),
                    data.clone(),
                    &CreateOptions::persistent_sequential(),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.server_code() == Some(ErrorCode::NoNode) => {
                    self.client.create_all(&self.path, Bytes::new()).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The number of items.
    pub async fn len(&self) -> Result<usize> {
        Ok(no_node_is_none(self.client.get_children(&self.path).await)?.map_or(0, |c| c.len()))
    }

    /// Whether the queue is empty.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// Takes the oldest item, if any.
    pub async fn get(&self) -> Result<Option<Bytes>> {
        let Some(mut entries) = no_node_is_none(self.client.get_children(&self.path).await)? else {
            return Ok(None);
        };
        entries.sort();
        for entry in entries {
            let path = format!("{}/{entry}", self.path);
            let Some((data, stat)) = no_node_is_none(self.client.get_data(&path).await)? else {
                continue;
            };
            // Whoever deletes it owns it.
            match self.client.delete(&path, Some(stat.version)).await {
                Ok(()) => return Ok(Some(data)),
                Err(e) if e.server_code() == Some(ErrorCode::NoNode) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Takes the oldest item, waiting for one at most `timeout`.
    pub async fn get_wait(&self, timeout: Duration) -> Result<Option<Bytes>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(item) = self.get().await? {
                return Ok(Some(item));
            }
            self.client.create_all(&self.path, Bytes::new()).await?;
            let (entries, _, watcher) = self.client.get_children_watch(&self.path).await?;
            if !entries.is_empty() {
                continue;
            }
            if tokio::time::timeout_at(deadline, watcher).await.is_err() {
                return Ok(None);
            }
        }
    }
}

/// A queue whose items are locked while a worker processes them: [`QueueItem::consume`]
/// removes the item, [`QueueItem::release`] (or the worker's session ending) puts it back.
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

/// An item taken from a [`LockingQueue`].
#[derive(Debug)]
pub struct QueueItem {
    client: Client,
    entry: String,
    taken: String,
    /// The item's data.
    pub data: Bytes,
}

impl QueueItem {
    /// Removes the item from the queue for good.
    pub async fn consume(self) -> Result<()> {
        delete_quietly(&self.client, &self.entry).await?;
        delete_quietly(&self.client, &self.taken).await
    }

    /// Puts the item back for another worker.
    pub async fn release(self) -> Result<()> {
        delete_quietly(&self.client, &self.taken).await
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

    fn entries(&self) -> String {
        format!("{}/entries", self.path)
    }

    fn taken(&self) -> String {
        format!("{}/taken", self.path)
    }

    /// Appends an item.
    pub async fn put(&self, data: impl Into<Bytes>) -> Result<()> {
        Queue::new(&self.client, &self.entries()).put(data).await
    }

    /// Items not yet consumed (taken or not).
    pub async fn len(&self) -> Result<usize> {
        Queue::new(&self.client, &self.entries()).len().await
    }

    /// Whether no item is left.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// Takes the oldest item nobody holds, waiting at most `timeout`.
    pub async fn get(&self, timeout: Duration) -> Result<Option<QueueItem>> {
        let deadline = Instant::now() + timeout;
        self.client
            .create_all(&self.entries(), Bytes::new())
            .await?;
        self.client.create_all(&self.taken(), Bytes::new()).await?;
        loop {
            let (mut entries, _, entries_changed) =
                match self.client.get_children_watch(&self.entries()).await {
                    Ok(v) => v,
                    Err(e) if e.is_retryable() => {
                        reconnected(&self.client).await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
            let (_, _, taken_changed) = self.client.get_children_watch(&self.taken()).await?;
            entries.sort();
            for entry in entries {
                let taken = format!("{}/{entry}", self.taken());
                match self
                    .client
                    .create(&taken, Bytes::new(), &CreateOptions::ephemeral())
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.server_code() == Some(ErrorCode::NodeExists) => continue,
                    Err(e) => return Err(e),
                }
                let path = format!("{}/{entry}", self.entries());
                match no_node_is_none(self.client.get_data(&path).await)? {
                    Some((data, _)) => {
                        return Ok(Some(QueueItem {
                            client: self.client.clone(),
                            entry: path,
                            taken,
                            data,
                        }));
                    }
                    // Consumed meanwhile.
                    None => delete_quietly(&self.client, &taken).await?,
                }
            }
            let changed = async {
                tokio::select! {
                    _ = entries_changed => {},
                    _ = taken_changed => {},
                }
            };
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Ok(None);
            }
        }
    }
}
