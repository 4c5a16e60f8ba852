//! Leader election on the lock recipe: the lock holder leads.

use std::future::Future;

use bytes::Bytes;

use super::lock::{Lock, LockGuard};
use crate::{Client, Result};

/// Leader election among contenders for one path.
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
/// session is lost ([`Leadership::lost`] completes, [`Leadership::is_leader`] turns false).
#[derive(Debug)]
#[must_use = "dropping leadership relinquishes it"]
pub struct Leadership {
    guard: LockGuard,
}

impl Leadership {
    /// Still the leader (the session that won has not been lost).
    pub fn is_leader(&self) -> bool {
        self.guard.is_held()
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

    /// Waits until this contender leads.
    pub async fn lead(&self) -> Result<Leadership> {
        Ok(Leadership {
            guard: self.lock.acquire().await?,
        })
    }

    /// Waits for leadership, runs `work` while leading, and steps down when it finishes or
    /// when leadership is lost (then `work` is dropped and `None` returned), as Kazoo's
    /// `Election.run`.
    pub async fn run<F: Future>(&self, work: F) -> Result<Option<F::Output>> {
        let leadership = self.lead().await?;
        let outcome = tokio::select! {
            out = work => Some(out),
            _ = leadership.lost() => None,
        };
        leadership.relinquish().await?;
        Ok(outcome)
    }

    /// The contenders' identifiers; the first one leads.
    pub async fn contenders(&self) -> Result<Vec<Bytes>> {
        self.lock.contenders().await
    }
}
