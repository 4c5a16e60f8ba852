//! Barriers: one that holds everybody until it is removed, and one that holds everybody
//! until enough participants arrive and again until they all leave.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{delete_quietly, reconnected, unique_id};
use crate::{Client, CreateOptions, ErrorCode, EventType, Result};

/// A barrier: while its node exists, [`Barrier::wait`] blocks.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::Barrier;
/// let gate = Barrier::new(&client, "/gates/deploy");
/// gate.create().await?;        // the coordinator raises it
/// // workers: gate.wait(None).await? returns once it is removed
/// gate.remove().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    /// A barrier at `path`.
    pub fn new(client: &Client, path: &str) -> Barrier {
        Barrier {
            client: client.clone(),
            path: path.to_string(),
        }
    }

    /// Raises the barrier (creates its node; already raised is fine).
    pub async fn create(&self) -> Result<()> {
        self.client.create_all(&self.path, Bytes::new()).await
    }

    /// Lowers the barrier, releasing the waiters.
    pub async fn remove(&self) -> Result<()> {
        delete_quietly(&self.client, &self.path).await
    }

    /// Waits until the barrier is down; `false` if `timeout` passed first.
    pub async fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let (stat, watcher) = match self.client.exists_watch(&self.path).await {
                Ok(v) => v,
                Err(e) if e.is_retryable() => {
                    reconnected(&self.client).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if stat.is_none() {
                return Ok(true);
            }
            if !wait_until(deadline, watcher).await {
                return Ok(false);
            }
        }
    }
}

/// Waits for `fut` until `deadline`; false on timeout.
async fn wait_until<F: std::future::Future>(deadline: Option<Instant>, fut: F) -> bool {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, fut).await.is_ok(),
        None => {
            fut.await;
            true
        }
    }
}

/// A double barrier: [`DoubleBarrier::enter`] returns once `count` participants entered,
/// [`DoubleBarrier::leave`] once all of them left.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::DoubleBarrier;
/// let mut round = DoubleBarrier::new(&client, "/rounds/7", 3);
/// round.enter(None).await?; // all three are in
/// // ... compute ...
/// round.leave(None).await?; // all three are out
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DoubleBarrier {
    client: Client,
    path: String,
    count: usize,
    node: Option<String>,
}

impl DoubleBarrier {
    /// A double barrier at `path` for `count` participants.
    pub fn new(client: &Client, path: &str, count: usize) -> DoubleBarrier {
        DoubleBarrier {
            client: client.clone(),
            path: path.to_string(),
            count: count.max(1),
            node: None,
        }
    }

    fn ready(&self) -> String {
        format!("{}-ready", self.path)
    }

    /// Enters and waits until `count` participants are in; `false` on timeout (then this
    /// participant has left again). Only the ready node's creation counts as ready: the end
    /// of a session's watches is not, and after a new session this participant's node
    /// (which went with the old one) is created again.
    pub async fn enter(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        // One name per participant: a create whose reply was lost is sent again, and
        // NodeExists means it landed.
        let node = self
            .node
            .clone()
            .unwrap_or_else(|| format!("{}/{}", self.path, unique_id()));
        self.node = Some(node.clone());
        loop {
            let step = async {
                self.client.create_all(&self.path, Bytes::new()).await?;
                // Watch for the ready node before joining, so its creation cannot be missed.
                let (ready, watcher) = self.client.exists_watch(&self.ready()).await?;
                match self
                    .client
                    .create(&node, Bytes::new(), &CreateOptions::ephemeral())
                    .await
                {
                    Err(e) if e.server_code() != Some(ErrorCode::NodeExists) => return Err(e),
                    _ => {}
                }
                if ready.is_some() {
                    return Ok(None);
                }
                let members = self.client.get_children(&self.path).await?;
                if members.len() >= self.count {
                    match self
                        .client
                        .create(&self.ready(), Bytes::new(), &CreateOptions::persistent())
                        .await
                    {
                        Err(e) if e.server_code() != Some(ErrorCode::NodeExists) => {
                            return Err(e);
                        }
                        _ => return Ok(None),
                    }
                }
                Ok(Some(watcher))
            };
            let watcher = match step.await {
                Ok(None) => return Ok(true),
                Ok(Some(w)) => w,
                Err(e) if e.is_retryable() || e.is(ErrorCode::SessionExpired) => {
                    reconnected(&self.client).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let event = match deadline {
                Some(d) => tokio::time::timeout_at(d, watcher).await.ok(),
                None => Some(watcher.await),
            };
            match event {
                None => {
                    self.leave_now().await?;
                    return Ok(false);
                }
                Some(e) if e.kind == EventType::NodeCreated => return Ok(true),
                // The session's watches ended (expiry, close) or something else happened:
                // look again, on whatever session there is now.
                Some(_) => {
                    if self.client.state() == crate::SessionState::Closed {
                        return Err(crate::Error::Closed);
                    }
                    reconnected(&self.client).await?;
                }
            }
        }
    }

    async fn leave_now(&mut self) -> Result<()> {
        if let Some(node) = self.node.take() {
            delete_quietly(&self.client, &node).await?;
        }
        Ok(())
    }

    /// Leaves and waits until every participant left; `false` on timeout.
    pub async fn leave(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        self.leave_now().await?;
        loop {
            let (members, _, watcher) = match self.client.get_children_watch(&self.path).await {
                Ok(v) => v,
                Err(e) if e.server_code() == Some(ErrorCode::NoNode) => return Ok(true),
                Err(e) => return Err(e),
            };
            if members.is_empty() {
                // The last one out takes the ready flag down for the next round.
                delete_quietly(&self.client, &self.ready()).await?;
                return Ok(true);
            }
            if !wait_until(deadline, watcher).await {
                return Ok(false);
            }
        }
    }
}
