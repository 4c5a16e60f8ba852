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
//!
//! Each handle here is an alias of a handle of `zk_recipes::handles` on this client, where
//! its methods are documented; a method written there as returning `D::Call<T>` returns
//! a [`Call<T>`] here: a future of `Result<T>`.
//!
//! ```no_run
//! # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
//! use zk_tokio::recipes::{Election, Lock, Party};
//! let name = format!("worker-{}", std::process::id());
//! let _member = Party::new(&client, "/app/workers", name.as_str()).join().await?;
//! let leadership = Election::new(&client, "/app/leader", name.as_str()).lead().await?;
//! let guard = Lock::new(&client, "/app/lock").acquire().await?;
//! assert!(leadership.is_leader() && guard.is_held());
//! guard.release().await?;
//! # Ok(()) }
//! ```

mod call;

pub use call::Call;

zk_recipes::handles_for!(crate::Client);
