//! An async ZooKeeper client on tokio.
//!
//! The protocol lives in [`zk_proto`]'s sans-IO session; this crate runs it on a tokio task
//! that owns the socket and the timers, and gives you typed `async fn`s, watches as futures
//! and streams, and the session's state as a stream.
//!
//! ```no_run
//! use zk_tokio::{Client, CreateOptions};
//!
//! # async fn demo() -> zk_tokio::Result<()> {
//! let client = Client::connect("127.0.0.1:2181").await?;
//! client.create("/demo", "hello", &CreateOptions::persistent()).await?;
//!
//! // Read and leave a one-shot watch.
//! let (data, stat, changed) = client.get_data_watch("/demo").await?;
//! println!("{} bytes, version {}", data.len(), stat.version);
//! client.set_data("/demo", "world", Some(stat.version)).await?;
//! println!("{:?}", changed.await.kind); // NodeDataChanged
//!
//! client.delete("/demo", None).await?;
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! Logging goes through `tracing`: connections, disconnections and state changes at info,
//! frames at trace.

#![deny(missing_docs)]

pub mod admin;
mod client;
mod connection;
mod os;
pub mod recipes;
mod watch;

pub use client::{Client, ClientBuilder, Transaction, retry_with};
/// A fresh 128-bit id in 32 hex digits, unique per recipe participant, from the operating
/// system's entropy: a recipe finds its own nodes by it after a lost reply.
pub fn unique_id() -> Result<String> {
    os::OS.unique_id()
}
pub use watch::{OneshotWatcher, PersistentWatcher, StateEvents, WatchHandle};
/// TLS settings (with the `tls` feature): see [`ClientBuilder::tls`].
#[cfg(feature = "tls")]
pub use zk_client::tls::{TlsBuilder, TlsOptions};
pub use zk_client::{
    CreateOptions, Error, ReadOp, ReadResult, Reconfig, Result, Undone, is_null_data, null_data,
};
/// SASL GSSAPI (Kerberos) logins (with the `gssapi` feature): see [`zk_gssapi`].
#[cfg(feature = "gssapi")]
pub use zk_gssapi::Gssapi;
pub use zk_proto::sasl::SaslLogin;

/// Node data and credentials, as the client takes and returns them.
pub use bytes::Bytes;
pub use zk_proto::consts::{AddWatchMode, CreateMode, EventType, KeeperState, WatcherType, perms};
/// Every request and reply record, as the session sends and reads them.
pub use zk_proto::records;
pub use zk_proto::records::{Acl, ClientInfo, Id, OpResult};
pub use zk_proto::retry::RetryPolicy;
pub use zk_proto::session::{
    AppState, Event, HostAddr, RequestId, SessionMetrics, SessionState, StateEvent, WatchedEvent,
};
pub use zk_proto::{ErrorCode, Stat};

/// The crate's README, compiled and run as a doc test so its example stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
