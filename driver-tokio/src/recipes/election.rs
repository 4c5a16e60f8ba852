//! Leader election on the lock recipe: the lock holder leads.

use std::future::Future;

use bytes::Bytes;

use super::lock::{Flavor, Lock, LockGuard, LockState};
use crate::{Client, Result};

/// Leader election among contenders for one path: the holder of a [`Lock`] leads, so it
/// has the lock's cancel safety and cleanup. Kazoo's `Election` layout by default; with
/// [`Election::with_flavor`], Curator's `LeaderSelector` ([`Flavor::Curator`]) or
/// `LeaderLatch` ([`Flavor::CuratorLatch`]).
///
/// A leader whose connection is lost is **suspended**: the server may expire its session
/// and let the next contender lead before this client can know. [`Leadership::is_leader`]
/// is false from that moment, and [`Election::run`] stops the work, as Curator does on
/// SUSPENDED: two leaders in server time are worse than a pause.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::Election;
/// let election = Election::new(&client, "/election/scheduler", "node-a");
/// let leadership = election.lead().await?;
/// tokio::select! {
///     _ = leadership.lost() => println!("session lost: no longer leader"),
///     _ = async { /* lead */ } => {}
/// }
/// leadership.relinquish().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Election {
    lock: Lock,
}

/// Being the leader. It ends with [`Leadership::relinquish`], when dropped, or when the
/// session is lost ([`Leadership::lost`] completes). While the connection is lost it is
/// suspended: [`Leadership::is_leader`] is false until it is back on the same session.
#[derive(Debug)]
#[must_use = "dropping leadership relinquishes it"]
pub struct Leadership {
    guard: LockGuard,
}

impl Leadership {
    /// Leading now: the session that won is connected and has not been lost.
    pub fn is_leader(&self) -> bool {
        self.guard.is_held()
    }

    /// Where leadership stands: held, suspended or gone.
    pub fn state(&self) -> LockState {
        self.guard.state()
    }

    /// Waits until the state differs from `seen`, and returns the new one.
    pub async fn changed(&self, seen: LockState) -> LockState {
        self.guard.changed(seen).await
    }

    /// A number that grows with every later leader, for a resource that can refuse a
    /// stale leader's writes.
    pub fn fencing_token(&self) -> i64 {
        self.guard.fencing_token()
    }

    /// Completes when leadership is lost with the session.
    pub async fn lost(&self) {
        self.guard.lost().await
    }

    /// Steps down and lets the next contender lead.
    pub async fn relinquish(self) -> Result<()> {
        self.guard.release().await
    }
}

impl Election {
    /// An election at `path`; `identifier` tells contenders apart in [`Election::contenders`].
    pub fn new(client: &Client, path: &str, identifier: impl Into<Bytes>) -> Election {
        Election {
            lock: Lock::new(client, path).with_identifier(identifier),
        }
    }

    /// Names the election's nodes as `flavor`'s library does.
    pub fn with_flavor(self, flavor: Flavor) -> Election {
        Election {
            lock: self.lock.with_flavor(flavor),
        }
    }

    /// Waits until this contender leads. Cancel-safe: dropping the future at any await
    /// point removes this contender's node.
    pub async fn lead(&self) -> Result<Leadership> {
        Ok(Leadership {
            guard: self.lock.acquire().await?,
        })
    }

    /// Waits for leadership, runs `work` while leading, and steps down when it finishes or
    /// when leadership is suspended or lost (then `work` is dropped and `None` returned),
    /// as Kazoo's `Election.run`.
    pub async fn run<F: Future>(&self, work: F) -> Result<Option<F::Output>> {
        let leadership = self.lead().await?;
        // Suspended already (the connection dropped as it won): no work.
        if leadership.is_leader() {
            tokio::select! {
                out = work => {
                    leadership.relinquish().await?;
                    return Ok(Some(out));
                }
                _ = leadership.changed(LockState::Held) => {}
            }
        }
        // Suspended or lost: the release finishes in the background once the server
        // answers again; waiting for it here would hold the caller for the outage.
        drop(leadership);
        Ok(None)
    }

    /// The contenders' identifiers; the first one leads.
    pub async fn contenders(&self) -> Result<Vec<Bytes>> {
        self.lock.contenders().await
    }
}
