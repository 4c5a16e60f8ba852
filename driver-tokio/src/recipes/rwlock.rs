//! The read/write lock and the counting semaphore, on ephemeral sequential nodes.
//!
//! Each contender creates `<path>/<unique id><marker><sequence>` and waits for the one
//! node that blocks it (the previous node, or for a reader the previous writer) to go, so a
//! release wakes exactly one waiter. A create whose reply was lost is found again by its
//! unique id; a waiter that gives up, times out or is cancelled removes its node.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{delete_quietly, reconnected, sequence, unique_id};
use crate::{AppState, Client, CreateOptions, Error, ErrorCode, Result, StateEvent};

/// What a lock node asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockKind {
    /// Alone ([`super::Lock`]); excludes everything, like a writer.
    Exclusive,
    /// Shared with other readers ([`ReadWriteLock::read`]).
    Read,
    /// Alone ([`ReadWriteLock::write`]).
    Write,
}

impl LockKind {
    fn marker(self) -> &'static str {
        match self {
            LockKind::Exclusive => "__lock__",
            LockKind::Read => "__read__",
            LockKind::Write => "__write__",
        }
    }

    fn of(name: &str) -> Option<LockKind> {
        [LockKind::Exclusive, LockKind::Read, LockKind::Write]
            .into_iter()
            .find(|k| name.contains(k.marker()))
    }

    fn excludes(self, other: LockKind) -> bool {
        self != LockKind::Read || other != LockKind::Read
    }
}

/// A held lock. Dropping it releases the lock (in the background); [`ReadWriteGuard::release`]
/// releases it and waits. If the session is lost the lock is gone:
/// [`ReadWriteGuard::is_held`] turns false and [`ReadWriteGuard::lost`] completes.
#[derive(Debug)]
#[must_use = "dropping the guard releases the lock"]
pub struct ReadWriteGuard {
    client: Client,
    node: String,
    session: i64,
    lost: watch::Receiver<bool>,
    monitor: JoinHandle<()>,
    released: bool,
}

impl ReadWriteGuard {
    async fn new(client: &Client, node: String) -> ReadWriteGuard {
        let session = client.session_id();
        let (tx, rx) = watch::channel(false);
        let mut states = client.state_events();
        let probe = client.clone();
        let monitor = tokio::spawn(async move {
            // Lost (expired, closed, auth failed): the ephemeral node, and the lock, are gone.
            loop {
                let gone = probe.app_state() == AppState::Lost || probe.session_id() != session;
                if gone {
                    let _ = tx.send(true);
                    return;
                }
                match states.next().await {
                    Some(StateEvent::App(AppState::Lost)) | None => {
                        let _ = tx.send(true);
                        return;
                    }
                    Some(_) => {}
                }
            }
        });
        ReadWriteGuard {
            client: client.clone(),
            node,
            session,
            lost: rx,
            monitor,
            released: false,
        }
    }

    /// The lock node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The session that holds the lock is still the client's and has not been lost. While
    /// the connection is merely suspended the answer is still true, but it may turn false.
    pub fn is_held(&self) -> bool {
        !*self.lost.borrow() && self.client.session_id() == self.session
    }

    /// Completes when the lock is lost with its session.
    pub async fn lost(&self) {
        let mut rx = self.lost.clone();
        let _ = rx.wait_for(|lost| *lost).await;
    }

    /// Releases the lock and waits until its node is gone.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        self.monitor.abort();
        if self.client.session_id() == self.session {
            delete_quietly(&self.client, &self.node).await
        } else {
            Ok(())
        }
    }
}

impl Drop for ReadWriteGuard {
    fn drop(&mut self) {
        self.monitor.abort();
        if !self.released && self.client.session_id() == self.session {
            remove_in_background(&self.client, &self.node);
        }
    }
}

fn remove_in_background(client: &Client, node: &str) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let (client, node) = (client.clone(), node.to_string());
        rt.spawn(async move {
            let _ = delete_quietly(&client, &node).await;
        });
    }
    // Without a runtime the node goes when the session ends (it is ephemeral).
}

/// Removes a waiter's node if the acquisition is abandoned (timeout, error, cancellation).
struct Abandon {
    client: Client,
    node: Option<String>,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            remove_in_background(&self.client, &node);
        }
    }
}

/// Creates our ephemeral sequential node, finding it by `id` when the reply was lost.
async fn create_node(
    client: &Client,
    dir: &str,
    id: &str,
    kind: LockKind,
    data: &Bytes,
) -> Result<String> {
    let stem = format!("{id}{}", kind.marker());
    let prefix = format!("{dir}/{stem}");
    loop {
        match client
            .create(
                &prefix,
                data.clone(),
                &CreateOptions::ephemeral_sequential(),
            )
            .await
        {
            Ok(path) => return Ok(path),
            Err(e) if e.server_code() == Some(ErrorCode::NoNode) => {
                client.create_all(dir, Bytes::new()).await?;
            }
            Err(e) if e.is_retryable() => {
                reconnected(client).await?;
                // The create may have been applied before the connection dropped.
                if let Ok(children) = client.get_children(dir).await
                    && let Some(name) = children.iter().find(|c| c.starts_with(&stem))
                {
                    return Ok(format!("{dir}/{name}"));
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Takes a lock of `kind` on `dir`, waiting until `deadline` (forever without one).
async fn acquire(
    client: &Client,
    dir: &str,
    kind: LockKind,
    data: &Bytes,
    deadline: Option<Instant>,
) -> Result<Option<ReadWriteGuard>> {
    let id = unique_id();
    let node = create_node(client, dir, &id, kind, data).await?;
    let name = node[dir.len() + 1..].to_string();
    let mut abandon = Abandon {
        client: client.clone(),
        node: Some(node.clone()),
    };
    loop {
        let children = match client.get_children(dir).await {
            Ok(c) => c,
            Err(e) if e.is_retryable() => {
                reconnected(client).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut contenders: Vec<(u64, &str, LockKind)> = children
            .iter()
            .filter_map(|c| Some((sequence(c)?, c.as_str(), LockKind::of(c)?)))
            .collect();
        contenders.sort_by_key(|c| c.0);
        let Some(me) = contenders.iter().position(|c| c.1 == name) else {
            // Our ephemeral node is gone: the session that made it expired.
            abandon.node = None;
            return Err(Error::SessionExpired);
        };
        // The nearest earlier contender we cannot share with: the previous node for
        // exclusive and write locks, the previous writer for a reader.
        let blocker = contenders[..me].iter().rev().find(|c| kind.excludes(c.2));
        let Some(&(_, blocker, _)) = blocker else {
            abandon.node = None;
            return Ok(Some(ReadWriteGuard::new(client, node).await));
        };
        let watched = client.exists_watch(&format!("{dir}/{blocker}")).await;
        let watcher = match watched {
            Ok((None, _)) => continue,
            Ok((Some(_), w)) => w,
            Err(e) if e.is_retryable() => {
                reconnected(client).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        match deadline {
            Some(d) => {
                if tokio::time::timeout_at(d, watcher).await.is_err() {
                    // Gave up: `abandon` removes our node.
                    return Ok(None);
                }
            }
            None => {
                let _ = watcher.await;
            }
        }
    }
}

/// A read/write lock: any number of readers, or one writer. Writers are not starved: a
/// reader waits for every writer that asked before it.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::ReadWriteLock;
/// let rw = ReadWriteLock::new(&client, "/locks/catalog");
/// let reading = rw.read(None).await?.expect("no timeout given");
/// // ... read; writers wait ...
/// reading.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ReadWriteLock {
    client: Client,
    path: String,
}

impl ReadWriteLock {
    /// A read/write lock at `path`.
    pub fn new(client: &Client, path: &str) -> ReadWriteLock {
        ReadWriteLock {
            client: client.clone(),
            path: path.to_string(),
        }
    }

    /// Waits for a read lock (at most `timeout`, when given).
    pub async fn read(&self, timeout: Option<Duration>) -> Result<Option<ReadWriteGuard>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        acquire(
            &self.client,
            &self.path,
            LockKind::Read,
            &Bytes::new(),
            deadline,
        )
        .await
    }

    /// Waits for the write lock (at most `timeout`, when given).
    pub async fn write(&self, timeout: Option<Duration>) -> Result<Option<ReadWriteGuard>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        acquire(
            &self.client,
            &self.path,
            LockKind::Write,
            &Bytes::new(),
            deadline,
        )
        .await
    }
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
