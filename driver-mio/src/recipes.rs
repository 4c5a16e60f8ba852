//! Recipes on the blocking client: [`zk_recipes`]' machines, run on the IO thread beside
//! their session.
//!
//! Each handle here is an alias of a handle of `zk_recipes::handles` on the blocking
//! client, where its methods are documented; a method written there as returning
//! `D::Call<T>` returns `Result<T>` here.
//!
//! ```no_run
//! # fn demo(client: zk_mio::blocking::Client) -> zk_mio::Result<()> {
//! use zk_mio::recipes::{Election, Lock, Party};
//! let name = format!("worker-{}", std::process::id());
//! let _member = Party::new(&client, "/app/workers", name.as_str()).join()?;
//! let leadership = Election::new(&client, "/app/leader", name.as_str()).lead()?;
//! let guard = Lock::new(&client, "/app/lock").acquire()?;
//! assert!(leadership.is_leader() && guard.is_held());
//! guard.release()?;
//! # Ok(()) }
//! ```
//!
//! A recipe handle hands its machine to the IO thread, which feeds it the session's
//! events as they are read (no thread or channel per request) and submits what it asks
//! for. The IO thread, not the caller, owns what the machine created: a dropped handle
//! makes the machine release, and the IO thread drives it until the server confirmed
//! that nothing is left.
//!
//! In a `mio` loop of your own around a [`crate::Connection`], run the machine itself
//! ([`machines`], the `zk-recipes` crate) with [`machines::Driven`], which keeps its request
//! ids: hand it every session event first, then let it submit. The lock below is held
//! once `Outcome::Acquired` comes out, and released (the server confirmed) at
//! `Outcome::Released`:
//!
//! ```no_run
//! use std::time::Instant;
//! use mio::{Events, Poll, Token};
//! use zk_mio::recipes::machines::lock::{Lock, Outcome};
//! use zk_mio::recipes::machines::{Driven, Recipe};
//! use zk_mio::{Acl, Config, Connection};
//!
//! let mut poll = Poll::new()?;
//! let mut zk = Connection::new(Config::new("127.0.0.1:2181")?, poll.registry(), Token(0), Instant::now())?;
//! let id = zk_mio::unique_id()?; // unique per contender: finds our node after a lost reply
//! let mut lock = Driven::new(Lock::new("/locks/job", &id, Acl::open_unsafe()));
//! let mut started = false;
//! let mut events = Events::with_capacity(64);
//! loop {
//!     poll.poll(&mut events, zk.timeout(Instant::now()))?;
//!     let now = Instant::now();
//!     for event in &events {
//!         zk.handle_event(event, now);
//!     }
//!     zk.handle_timeout(now);
//!     lock.handle_timeout(now);
//!     if !started && zk.session().state().is_connected() {
//!         lock.machine_mut().acquire(now, zk.session().session_id(), None);
//!         started = true;
//!     }
//!     while let Some(event) = zk.poll_event() {
//!         let session_id = zk.session().session_id();
//!         if let Some(other) = lock.handle_event(now, event, session_id) {
//!             // not the lock's: your own calls' replies, state changes, ...
//!             let _ = other;
//!         }
//!     }
//!     let mut outcomes = Vec::new();
//!     lock.flush(now, |request| zk.submit(now, request), |o| outcomes.push(o));
//!     for outcome in outcomes {
//!         match outcome {
//!             Outcome::Acquired { fencing, .. } => {
//!                 println!("held, token {fencing}");
//!                 lock.machine_mut().release(now); // ... after the work
//!             }
//!             Outcome::Released => return Ok(()),
//!             other => println!("{other:?}"),
//!         }
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use zk_recipes as machines;

zk_recipes::handles_for!(crate::blocking::Client);
