//! The counting semaphore: waiters queue on a [`super::Lock`] and, each in turn, take a
//! lease node when fewer than the maximum exist.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{delete_quietly, reconnected, unique_id};
use crate::{Client, CreateOptions, ErrorCode, Result};

fn remove_in_background(client: &Client, node: &str) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let (client, node) = (client.clone(), node.to_string());
        rt.spawn(async move {
            let _ = delete_quietly(&client, &node).await;
        });
    }
    // Without a runtime the node goes when the session ends (it is ephemeral).
}

/// A counting semaphore: at most `max_leases` holders at once. Waiters queue on an inner
/// lock, so they are served in order.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::Semaphore;
/// let slots = Semaphore::new(&client, "/semaphores/db", 4);
/// if let Some(lease) = slots.acquire(Some(std::time::Duration::from_secs(10))).await? {
///     // ... at most four of these at once ...
///     lease.release().await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    path: String,
    max_leases: usize,
}

/// A semaphore lease; dropping it gives the lease back (in the background).
#[derive(Debug)]
#[must_use = "dropping the lease gives it back"]
pub struct SemaphoreLease {
    node: String,
    client: Client,
    released: bool,
}

impl SemaphoreLease {
    /// The lease node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Gives the lease back and waits until it is gone.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        delete_quietly(&self.client, &self.node).await
    }
}

impl Drop for SemaphoreLease {
    fn drop(&mut self) {
        if !self.released {
            remove_in_background(&self.client, &self.node);
        }
    }
}

impl Semaphore {
    /// A semaphore at `path` with `max_leases` leases.
    pub fn new(client: &Client, path: &str, max_leases: usize) -> Semaphore {
        Semaphore {
            client: client.clone(),
            path: path.to_string(),
            max_leases: max_leases.max(1),
        }
    }

    /// The current lease holders' nodes.
    pub async fn holders(&self) -> Result<Vec<String>> {
        match self
            .client
            .get_children(&format!("{}/leases", self.path))
            .await
        {
            Ok(c) => Ok(c),
            Err(e) if e.server_code() == Some(ErrorCode::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Waits for a lease (at most `timeout`, when given).
    pub async fn acquire(&self, timeout: Option<Duration>) -> Result<Option<SemaphoreLease>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let lock_dir = format!("{}/lock", self.path);
        let leases = format!("{}/leases", self.path);
        let turn = super::Lock::new(&self.client, &lock_dir);
        let Some(turn) = turn.acquire_until(deadline).await? else {
            return Ok(None);
        };
        self.client.create_all(&leases, Bytes::new()).await?;
        loop {
            let (children, _, watcher) = match self.client.get_children_watch(&leases).await {
                Ok(v) => v,
                Err(e) if e.is_retryable() => {
                    reconnected(&self.client).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if children.len() < self.max_leases {
                drop(watcher);
                let node = self
                    .client
                    .create(
                        &format!("{leases}/{}", unique_id()),
                        Bytes::new(),
                        &CreateOptions::ephemeral(),
                    )
                    .await?;
                // Our turn is over: the next waiter may look for a free lease.
                turn.release().await?;
                return Ok(Some(SemaphoreLease {
                    node,
                    client: self.client.clone(),
                    released: false,
                }));
            }
            match deadline {
                Some(d) => {
                    if tokio::time::timeout_at(d, watcher).await.is_err() {
                        return Ok(None);
                    }
                }
                None => {
                    let _ = watcher.await;
                }
            }
        }
    }
}
