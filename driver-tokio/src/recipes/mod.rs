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

pub use call::Call;

zk_recipes::handles_for!(crate::Client);
