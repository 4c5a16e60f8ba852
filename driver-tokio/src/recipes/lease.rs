//! Kazoo's `NonBlockingLease` and `MultiNonBlockingLease`: [`zk_recipes::lease::Lease`]
//! driven on the connection task.

use std::time::Duration;

use zk_recipes::lease::{Lease as Machine, Options, Outcome, live_holder};

use super::runner::{self, Control};
use super::{no_node_is_none, unique_id};
use crate::{Acl, Client, Error, Result};

/// A time-limited lease that never waits (Kazoo's `NonBlockingLease`, or with
/// [`Lease::multi`] its `MultiNonBlockingLease`): obtaining succeeds when the lease is
/// free, ended, or already held by the same identifier (a renewal), and returns `false`
/// otherwise. The lease lives at `<path>/lease_holder` in Kazoo's JSON and is only read
/// and written under Kazoo's lock on `<path>`, so Python services using Kazoo's lease and
/// this one share it safely. Ends are wall-clock times (UTC, to the second): the holders'
/// clocks must roughly agree.
///
/// **Cancel safety.** Dropping an `obtain` future is correct at any await point: the lock
/// it took is released in the background (retried until the server confirms it). A write
/// of the lease node already sent may still land, as the lease's own data.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use std::time::Duration;
/// use zk_tokio::recipes::Lease;
/// let lease = Lease::new(&client, "/leases/report", "host-a");
/// if lease.obtain(Duration::from_secs(60)).await? {
///     // ... this host produces the report for the next minute ...
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Lease {
    client: Client,
    options: Options,
}

impl Lease {
    /// The lease at `path`, obtained as `identifier` (unique among the contenders; reuse
    /// it to renew).
    pub fn new(client: &Client, path: &str, identifier: &str) -> Lease {
        Lease {
            client: client.clone(),
            options: Options::new(path, identifier),
        }
    }

    /// Kazoo's `MultiNonBlockingLease`: one of `count` leases at `<path>/0` to
    /// `<path>/<count - 1>`, the first free one taken.
    pub fn multi(client: &Client, path: &str, count: u32, identifier: &str) -> Lease {
        Lease {
            client: client.clone(),
            options: Options::multi(path, count, identifier),
        }
    }

    /// Takes or renews the lease for `duration`; `false` while another identifier holds
    /// it (every one of them, for a multi-lease).
    pub async fn obtain(&self, duration: Duration) -> Result<bool> {
        Ok(self.obtain_path(duration).await?.is_some())
    }

    /// Like [`Lease::obtain`], with the path of the lease taken.
    pub async fn obtain_path(&self, duration: Duration) -> Result<Option<String>> {
        let machine = self.options.machine(&unique_id()?, Acl::open_unsafe())?;
        let session = self.client.session_id();
        let start: Control<Machine> =
            Box::new(move |m, now| m.obtain(now, session, wall_clock(), duration));
        let (_control, mut outcomes) = runner::spawn_outcomes(&self.client, machine, start);
        match outcomes.recv().await.ok_or(Error::Closed)? {
            Outcome::Obtained { path } => Ok(Some(path)),
            Outcome::Refused => Ok(None),
            Outcome::Failed(e) => Err(e.into()),
        }
    }

    /// The holder of each lease whose end has not passed, by the local clock: one entry
    /// for a lease, `count` for a multi-lease.
    pub async fn holders(&self) -> Result<Vec<Option<String>>> {
        let mut out = Vec::new();
        for node in self.options.holder_paths() {
            let read = no_node_is_none(self.client.get_data(&node).await)?;
            out.push(read.and_then(|(data, _)| live_holder(&data, wall_clock())));
        }
        Ok(out)
    }

    /// The holder of the lease (the first one, for a multi-lease), if its end has not
    /// passed.
    pub async fn holder(&self) -> Result<Option<String>> {
        Ok(self.holders().await?.into_iter().next().flatten())
    }
}

/// The wall clock, as the time since the Unix epoch (zero for a clock set before it).
fn wall_clock() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}
