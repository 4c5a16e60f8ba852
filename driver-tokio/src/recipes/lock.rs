//! The lock ([`zk_recipes::lock::Lock`]) and what else acquires the same way, driven on the
//! connection task.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;
use zk_recipes::lock::{Acquire, Lock as Machine, Options, Progress, Standing};

pub use zk_recipes::lock::{Flavor, Kind as LockKind, LockState};

use super::runner::{self, Control, Steer};
use super::unique_id;
use crate::{Client, Error, ErrorCode, Result};

/// An exclusive, non-reentrant lock on `path`, with the node layout of Kazoo's `Lock`
/// (the default) or of Curator's `InterProcessMutex` ([`Lock::with_flavor`]), so it can
/// share a path with services that use either library.
///
/// The lock is [`zk_recipes::lock::Lock`], run on the connection task. The task, not the
/// caller's future, owns the lock node: every node it creates is deleted again (retried
/// across lost replies and reconnects until the server confirms it) unless it is handed
/// to the caller in a [`LockGuard`].
///
/// **Cancel safety.** Dropping a future of this type at any await point is correct: an
/// `acquire` dropped while its create is in flight, or while it waits behind other
/// contenders, leaves nothing behind once the server has answered. Wrap it in
/// `tokio::time::timeout` freely, or use [`Lock::acquire_timeout`], whose deadline holds
/// even while no server is reachable.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use std::time::Duration;
/// use zk_tokio::recipes::{Lock, LockState};
/// let lock = Lock::new(&client, "/locks/billing");
/// if let Some(guard) = lock.acquire_timeout(Duration::from_secs(5)).await? {
///     // Act only while held; the fencing token grows with every later holder.
///     if guard.state() == LockState::Held {
///         println!("holding {} (token {})", guard.node(), guard.fencing_token());
///     }
///     guard.release().await?; // returns once the server confirmed the node is gone
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Lock {
    client: Client,
    options: Options,
}

impl Lock {
    /// A lock at `path` (created when needed, open to everyone).
    pub fn new(client: &Client, path: &str) -> Lock {
        Lock {
            client: client.clone(),
            options: Options::new(path),
        }
    }

    zk_recipes::lock_option_setters!();

    /// Waits for the lock as long as it takes. Fails on an error no retry can fix (no
    /// permission, a closed client); connection loss and session expiry are retried.
    pub async fn acquire(&self) -> Result<LockGuard> {
        match self.acquire_until(None).await? {
            Some(guard) => Ok(guard),
            None => Err(Error::UnexpectedResponse),
        }
    }

    /// Waits for the lock at most `timeout`, connected or not; `None` when it was not
    /// acquired in time (the waiter's node is then removed in the background).
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<LockGuard>> {
        self.acquire_until(Some(Instant::now() + timeout)).await
    }

    /// The identifiers of the holder and the waiters, in order (Kazoo's `contenders()`).
    pub async fn contenders(&self) -> Result<Vec<Bytes>> {
        let mut children = match self.client.get_children(self.options.dir()).await {
            Ok(c) => c,
            Err(e) if e.server_code() == Some(ErrorCode::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        children.sort_by_key(|c| zk_recipes::lock::order_of(c));
        let mut out = Vec::with_capacity(children.len());
        for c in children {
            if zk_recipes::lock::order_of(&c).is_none() {
                continue;
            }
            match self
                .client
                .get_data(&format!("{}/{c}", self.options.dir()))
                .await
            {
                Ok((data, _)) => out.push(data),
                // Left meanwhile.
                Err(e) if e.server_code() == Some(ErrorCode::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    pub(crate) async fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<LockGuard>> {
        let machine = self.options.machine(&unique_id()?)?;
        acquire_with(&self.client, machine, deadline).await
    }
}

/// Runs `machine` on the connection task until it acquires (a guard), times out (`None`) or
/// fails. Dropping this future drops the guard-to-be's steering: the task then
/// releases whatever exists.
pub(crate) async fn acquire_with<R>(
    client: &Client,
    machine: R,
    deadline: Option<Instant>,
) -> Result<Option<Guard<R>>>
where
    R: Acquire + Send + 'static,
{
    let (status_tx, mut status) = watch::channel(Progress::default());
    let session_id = client.session_id();
    let deadline = deadline.map(Instant::into_std);
    let start: Control<R> = Box::new(move |m: &mut R, now| m.acquire(now, session_id, deadline));
    let control = runner::spawn(client, machine, start, move |m: &R, outcome| {
        status_tx.send_modify(|s| {
            if let Some(o) = outcome {
                s.apply(o);
            }
            s.observe(m);
        })
    });
    let now = status
        .wait_for(Progress::decided)
        .await
        .map_err(|_| Error::Closed)?
        .clone();
    match now.standing {
        Standing::Held | Standing::Suspended => Ok(Some(Guard {
            control,
            status,
            node: now.node.unwrap_or_default(),
            fencing: now.fencing,
        })),
        Standing::TimedOut => Ok(None),
        Standing::Failed(e) => Err(e.into()),
        Standing::Acquiring | Standing::Lost | Standing::Released => Err(Error::UnexpectedResponse),
    }
}

/// A held lock ([`Lock`]) or semaphore lease ([`super::Semaphore`]).
pub type LockGuard = Guard<Machine>;

/// Something held: a lock ([`LockGuard`]) or a semaphore lease
/// ([`super::SemaphoreLease`]). Dropping it releases it in the background (the node is
/// deleted, retried until the server confirms it); [`Guard::release`] releases it and
/// waits for that confirmation.
#[must_use = "dropping the guard releases what it holds"]
pub struct Guard<R: Acquire> {
    control: Steer<R>,
    status: watch::Receiver<Progress>,
    node: String,
    fencing: i64,
}

impl<R: Acquire> std::fmt::Debug for Guard<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("node", &self.node)
            .field("fencing", &self.fencing)
            .field("state", &self.state())
            .finish()
    }
}

impl<R: Acquire> Guard<R> {
    /// The node held: the lock node, or the lease node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// A number that grows with every later holder of this lock (the node's sequence
    /// number), for a resource that can refuse writes from a stale holder.
    pub fn fencing_token(&self) -> i64 {
        self.fencing
    }

    /// Where the lock stands now.
    pub fn state(&self) -> LockState {
        self.status.borrow().state()
    }

    /// Whether the lock is held now: not suspended, not lost.
    pub fn is_held(&self) -> bool {
        self.state() == LockState::Held
    }

    /// Waits until the state differs from `seen`, and returns the new one.
    pub async fn changed(&self, seen: LockState) -> LockState {
        let mut status = self.status.clone();
        match status.wait_for(|s| s.state() != seen).await {
            Ok(s) => s.state(),
            Err(_) => LockState::Gone,
        }
    }

    /// Completes when the lock is gone (lost with its session, or ended by an error).
    pub async fn lost(&self) {
        let mut seen = self.state();
        while seen != LockState::Gone {
            seen = self.changed(seen).await;
        }
    }

    /// Releases the lock and waits until the server confirmed its node is gone. If this
    /// future is dropped first, the release still completes in the background.
    pub async fn release(mut self) -> Result<()> {
        let _ = self.control.send(Box::new(|m: &mut R, now| m.release(now)));
        let status = self
            .status
            .wait_for(Progress::settled)
            .await
            .map_err(|_| Error::Closed)?
            .clone();
        match status.standing {
            Standing::Failed(e) => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// A read/write lock: any number of readers, or one writer. A reader waits for every
/// writer that asked before it, so writers are not starved. Kazoo's `ReadLock` and
/// `WriteLock` layout by default, Curator's `InterProcessReadWriteLock` with
/// [`Flavor::Curator`]; both sides are a [`Lock`] of their kind, with the same cancel
/// safety and cleanup.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::ReadWriteLock;
/// let rw = ReadWriteLock::new(&client, "/locks/catalog");
/// let reading = rw.read_lock().acquire().await?;
/// // ... read; writers wait, other readers do not ...
/// reading.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ReadWriteLock {
    read: Lock,
    write: Lock,
}

impl ReadWriteLock {
    /// A read/write lock at `path`, with Kazoo's names.
    pub fn new(client: &Client, path: &str) -> ReadWriteLock {
        ReadWriteLock::with_flavor(client, path, Flavor::Kazoo)
    }

    /// A read/write lock at `path`, with `flavor`'s names.
    pub fn with_flavor(client: &Client, path: &str, flavor: Flavor) -> ReadWriteLock {
        let side = |kind| Lock::new(client, path).with_flavor(flavor).with_kind(kind);
        ReadWriteLock {
            read: side(LockKind::Read),
            write: side(LockKind::Write),
        }
    }

    /// The read side: shared with other readers.
    pub fn read_lock(&self) -> &Lock {
        &self.read
    }

    /// The write side: alone.
    pub fn write_lock(&self) -> &Lock {
        &self.write
    }
}
