//! ZooKeeper on `mio`: a [`Connection`] for your own event loop, and a [`blocking::Client`]
//! for plain blocking calls.
//!
//! Both drive the same sans-IO session as every other driver ([`zk_proto::session`]), with
//! the operations of [`zk_client`] and the recipe machines of [`zk_recipes`]. Besides moving
//! bytes and time, this crate routes replies and watch events to their callers, hosts the
//! recipe machines on the blocking client's IO thread and, on Linux, lets a blocking call
//! read its own reply. Host names are resolved with the blocking system resolver when a connection attempt
//! starts, unless you supply a resolver ([`Connection::with_resolver`]).
//!
//! A custom loop, in brief (the README's loop; see `examples/event_loop.rs` for a complete
//! one). Every operation of the clients is a typed call in [`op`]; [`Calls`] keeps a token of
//! yours per call and hands it back with the reply:
//!
//! ```no_run
//! use std::time::Instant;
//! use mio::{Events, Poll, Token};
//! use zk_mio::{Bytes, Calls, Config, Connection, Event, Pending, Routed, Stat, op};
//!
//! enum Job { Config(Pending<(Bytes, Stat)>) } // your token per call, holding its typed reply
//!
//! let mut poll = Poll::new()?;
//! let mut zk = Connection::new(Config::new("127.0.0.1:2181")?, poll.registry(), Token(0), Instant::now())?;
//! let mut calls = Calls::new();
//! calls.start(&mut zk, Instant::now(), op::get_data("/", true), Job::Config)?;
//! let mut events = Events::with_capacity(64);
//! loop {
//!     poll.poll(&mut events, zk.timeout(Instant::now()))?; // sleeps until IO or the next deadline
//!     let now = Instant::now();
//!     for event in &events {
//!         if event.token() == Token(0) { zk.handle_event(event, now); } // else: your other sources
//!     }
//!     zk.handle_timeout(now);
//!     while let Some(event) = zk.poll_event() {
//!         match calls.route(event) {
//!             Routed::Done(Job::Config(call), reply) => match call.finish(reply) {
//!                 Ok((data, stat)) => println!("{} bytes, version {}", data.len(), stat.version),
//!                 Err(e) => println!("failed: {e}"),
//!             },
//!             Routed::Event(Event::Watch(w)) => println!("{:?} on {}", w.kind, w.path),
//!             Routed::Event(Event::State { state, .. }) => println!("session {state:?}"),
//!             Routed::Event(other) => println!("{other:?}"), // application view, raw submits
//!         }
//!     }
//! #   break;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod admin;
pub mod blocking;
pub mod calls;
mod connection;
mod jobs;
mod os;
pub mod recipes;

pub use calls::{Calls, Pending, Routed};
pub use connection::{Connection, Resolver, blocking_resolver};
/// A fresh 128-bit id in 32 hex digits, unique per recipe participant, from the operating
/// system's entropy: a recipe finds its own nodes by it after a lost reply.
pub fn unique_id() -> Result<String> {
    os::OS.unique_id()
}
/// TLS settings (with the `tls` feature): see [`Connection::with_tls`] and
/// [`blocking::ClientBuilder::tls`].
#[cfg(feature = "tls")]
pub use zk_client::tls::{TlsBuilder, TlsOptions};
pub use zk_client::{
    CreateOptions, Error, MultiBuilder, ReadOp, ReadResult, Reconfig, Result, Undone, is_null_data,
    null_data, op,
};
/// SASL GSSAPI (Kerberos) logins (with the `gssapi` feature): see [`zk_gssapi`].
#[cfg(feature = "gssapi")]
pub use zk_gssapi::Gssapi;
pub use zk_proto::sasl::SaslLogin;

// Everything a user of this crate names, so that it is enough on its own.
pub use bytes::Bytes;
pub use zk_proto::consts::{AddWatchMode, CreateMode, EventType, KeeperState, WatcherType, perms};
/// Every request and reply record, for requests built by hand on a [`Connection`].
pub use zk_proto::records;
pub use zk_proto::records::{Acl, ClientInfo, Id, OpResult, Request, Response};
pub use zk_proto::retry::RetryPolicy;
pub use zk_proto::session::{
    AppState, Config, Disconnect, Event, HostAddr, RequestId, SessionMetrics, SessionState,
    StateEvent, WatchedEvent,
};
pub use zk_proto::{ErrorCode, Stat};

/// The crate's README, compiled and run as a doc test so its example stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
