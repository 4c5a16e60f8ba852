//! The counting semaphore: [`zk_recipes::semaphore::Semaphore`] driven on a task of its
//! own, like the lock.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use zk_recipes::semaphore::Semaphore as Machine;

use super::lock::{Flavor, Guard, acquire_with};
use super::unique_id;
use crate::{Acl, Client, Error, ErrorCode, Result};

/// A held semaphore lease.
pub type SemaphoreLease = Guard<Machine>;

/// A counting semaphore: at most `max_leases` holders at once, in Kazoo's `Semaphore`
/// layout (the default: `max_leases` is stored at `path`, and a semaphore that stores
/// another number is refused) or Curator's `InterProcessSemaphoreV2`
/// ([`Semaphore::with_flavor`]). Waiters take turns on a lock, so they are served in order
/// and only one at a time counts the leases.
///
/// It has the lock's guarantees: dropping an `acquire` future at any await point leaves
/// no node behind, a lease is deleted until the server confirms it, the deadline of
/// [`Semaphore::acquire_timeout`] holds during outages, and a lease reports suspension.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use std::time::Duration;
/// use zk_tokio::recipes::Semaphore;
/// let slots = Semaphore::new(&client, "/semaphores/db", 4);
/// if let Some(lease) = slots.acquire_timeout(Duration::from_secs(10)).await? {
///     // ... at most four of these at once ...
///     lease.release().await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    path: String,
    max_leases: u32,
    flavor: Flavor,
    identifier: Bytes,
    acl: Vec<Acl>,
}

impl Semaphore {
    /// A semaphore at `path` with `max_leases` leases (at least 1).
    pub fn new(client: &Client, path: &str, max_leases: u32) -> Semaphore {
        Semaphore {
            client: client.clone(),
            path: path.to_string(),
            max_leases: max_leases.max(1),
            flavor: Flavor::Kazoo,
            identifier: Bytes::new(),
            acl: Acl::open_unsafe(),
        }
    }

    /// Lays the semaphore out as `flavor`'s library does.
    pub fn with_flavor(mut self, flavor: Flavor) -> Semaphore {
        self.flavor = flavor;
        self
    }

    /// Data stored in this contender's nodes (Kazoo's identifier, listed by
    /// [`Semaphore::holders`]).
    pub fn with_identifier(mut self, identifier: impl Into<Bytes>) -> Semaphore {
        self.identifier = identifier.into();
        self
    }

    /// Waits for a lease as long as it takes.
    pub async fn acquire(&self) -> Result<SemaphoreLease> {
        self.acquire_until(None)
            .await?
            .ok_or(Error::UnexpectedResponse)
    }

    /// Waits for a lease at most `timeout`, connected or not; `None` when none came.
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<SemaphoreLease>> {
        self.acquire_until(Some(Instant::now() + timeout)).await
    }

    async fn acquire_until(&self, deadline: Option<Instant>) -> Result<Option<SemaphoreLease>> {
        zk_proto::path::validate_path(&self.path)?;
        if self.path == "/" {
            return Err(Error::InvalidRequest(
                "a semaphore needs a path of its own, not /",
            ));
        }
        let machine = Machine::new(
            &self.path,
            &unique_id()?,
            self.max_leases,
            self.flavor,
            self.identifier.clone(),
            self.acl.clone(),
        );
        acquire_with(&self.client, machine, deadline).await
    }

    /// The data (identifiers) of the leases held now.
    pub async fn holders(&self) -> Result<Vec<Bytes>> {
        let dir = match self.flavor {
            Flavor::Kazoo => self.path.clone(),
            _ => format!("{}/leases", self.path),
        };
        let children = match self.client.get_children(&dir).await {
            Ok(c) => c,
            Err(e) if e.server_code() == Some(ErrorCode::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::with_capacity(children.len());
        for c in children {
            match self.client.get_data(&format!("{dir}/{c}")).await {
                Ok((data, _)) => out.push(data),
                Err(e) if e.server_code() == Some(ErrorCode::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
