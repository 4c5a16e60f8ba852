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

mod call;
mod data_watch;
mod runner;
mod tree_cache;

pub use call::Call;
pub use data_watch::{ChildrenWatch, DataWatch};
pub use tree_cache::{EVENT_BACKLOG, TreeCache, TreeEvent, TreeNode};
pub use zk_recipes::counter::Encoding as CounterEncoding;
pub use zk_recipes::lock::{Flavor, Kind as LockKind, LockState};

use crate::Client;

use zk_recipes::handles;

/// An integer counter at one node: see [`handles::Counter`].
pub type Counter = handles::Counter<Client>;
/// An exclusive lock: see [`handles::Lock`].
pub type Lock = handles::Lock<Client>;
/// A read/write lock: see [`handles::ReadWriteLock`].
pub type ReadWriteLock = handles::ReadWriteLock<Client>;
/// Something held (a lock, a lease, a membership, a leadership): see [`handles::Guard`].
pub type Guard<R> = handles::Guard<Client, R>;
/// A held lock.
pub type LockGuard = Guard<zk_recipes::lock::Lock>;
/// Leader election: see [`handles::Election`].
pub type Election = handles::Election<Client>;
/// Being the leader: a [`LockGuard`] from [`handles::Election::lead`].
pub type Leadership = LockGuard;
/// A counting semaphore: see [`handles::Semaphore`].
pub type Semaphore = handles::Semaphore<Client>;
/// A held semaphore lease.
pub type SemaphoreLease = Guard<zk_recipes::semaphore::Semaphore>;
/// Group membership: see [`handles::Party`].
pub type Party = handles::Party<Client>;
/// Being a member of a [`Party`].
pub type Membership = Guard<zk_recipes::party::Party>;
/// A barrier: see [`handles::Barrier`].
pub type Barrier = handles::Barrier<Client>;
/// A double barrier: see [`handles::DoubleBarrier`].
pub type DoubleBarrier = handles::DoubleBarrier<Client>;
/// A queue: see [`handles::Queue`].
pub type Queue = handles::Queue<Client>;
/// A queue whose items are claimed before they are consumed: see [`handles::LockingQueue`].
pub type LockingQueue = handles::LockingQueue<Client>;
/// An item claimed from a [`LockingQueue`].
pub type QueueItem = handles::QueueItem<Client>;
/// A lease that never waits: see [`handles::Lease`].
pub type Lease = handles::Lease<Client>;
