//! Coordination recipes as Kazoo and Curator offer them: watches that re-arm themselves
//! ([`DataWatch`], [`ChildrenWatch`], [`TreeCache`]), locks ([`Lock`], [`ReadWriteLock`],
//! [`Semaphore`]), [`Election`], barriers ([`Barrier`], [`DoubleBarrier`]), [`Counter`],
//! queues ([`Queue`], [`LockingQueue`]), [`Party`] and [`Lease`].
//!
//! Each is a sans-IO machine of the `zk-recipes` crate run on the client's connection task
//! beside the session, by the same hosting code the blocking client and the simulations
//! use, so replies, watch events and state changes reach it in socket order. The task, not
//! the caller's future, owns what the recipe created on the server, so dropping a future at any await
//! point is correct, and every cleanup is retried until the server confirms it. Node
//! layouts follow Kazoo's, or Curator's where a `Flavor` says so.

mod barrier;
mod call;
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
pub use call::Call;
pub use data_watch::{ChildrenWatch, DataWatch};
pub use election::{Election, Leadership};
pub use lease::Lease;
pub use lock::{Flavor, Guard, Lock, LockGuard, LockKind, LockState, ReadWriteLock};
pub use party::{Membership, Party};
pub use queue::{LockingQueue, Queue, QueueItem};
pub use semaphore::{Semaphore, SemaphoreLease};
pub use tree_cache::{EVENT_BACKLOG, TreeCache, TreeEvent, TreeNode};
pub use zk_recipes::counter::Encoding as CounterEncoding;

use crate::{Client, ErrorCode, Result};

/// An integer counter at one node: see [`zk_recipes::handles::Counter`].
pub type Counter = zk_recipes::handles::Counter<Client>;

pub(crate) use crate::entropy::unique_id;

/// `Ok(None)` for NoNode, the value otherwise.
pub(crate) fn no_node_is_none<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.server_code() == Some(ErrorCode::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}
