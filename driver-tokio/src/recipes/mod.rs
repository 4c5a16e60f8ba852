//! Coordination recipes on the public [`Client`] API, as Kazoo and Curator offer them:
//! watches that re-arm themselves ([`DataWatch`], [`ChildrenWatch`], [`TreeCache`]), locks
//! ([`Lock`], [`ReadWriteLock`], [`Semaphore`]), [`Election`], barriers ([`Barrier`],
//! [`DoubleBarrier`]), [`Counter`], queues ([`Queue`], [`LockingQueue`]), [`Party`] and
//! [`Lease`].
//!
//! They are written against the session's failure modes: a create whose reply was lost to a
//! connection drop is found again by a unique id in the node name, a waiter watches only its
//! predecessor (no herd effect), and a lock guard can tell when its session is gone.

mod barrier;
mod counter;
mod data_watch;
mod election;
mod lease;
mod lock;
mod party;
mod queue;
mod runner;
mod semaphore;
mod tree_cache;

pub use barrier::{Barrier, DoubleBarrier};
pub use counter::{Counter, CounterEncoding};
pub use data_watch::{ChildrenWatch, DataWatch};
pub use election::{Election, Leadership};
pub use lease::Lease;
pub use lock::{Flavor, Guard, Lock, LockGuard, LockKind, LockState, ReadWriteLock};
pub use party::{Membership, Party};
pub use queue::{LockingQueue, Queue, QueueItem};
pub use semaphore::{Semaphore, SemaphoreLease};
pub use tree_cache::{EVENT_BACKLOG, TreeCache, TreeEvent, TreeNode};

use std::time::Duration;

use crate::{Client, Error, ErrorCode, Result, SessionState};

pub(crate) use zk_client::unique_id;

/// Waits until the session is connected again after a connection problem, so a loop can
/// retry without spinning. Gives up when the client is closed.
pub(crate) async fn reconnected(client: &Client) -> Result<()> {
    client
        .wait_for(|s| s.is_connected() || s == SessionState::Closed)
        .await?;
    if client.state() == SessionState::Closed {
        return Err(Error::Closed);
    }
    // Let a flapping connection settle a little before the next attempt.
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

/// `Ok(None)` for NoNode, the value otherwise.
pub(crate) fn no_node_is_none<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.server_code() == Some(ErrorCode::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}
