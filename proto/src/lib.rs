//! A sans-IO ZooKeeper client protocol core.
//!
//! This crate turns ZooKeeper operations into bytes and bytes into results, with no sockets,
//! clocks, threads or async runtime of its own. Drivers (`zk-tokio`, `zk-mio`) own the IO.
//!
//! - [`session`]: the session state machine (hosts, handshake, pings, timeouts, reconnects,
//!   read-only mode, SASL), with time as an argument.
//! - [`codec`]: jute primitives and length-prefixed framing.
//! - [`records`]: every request, response and event record of the protocol.
//! - [`consts`] and [`error`]: opcodes, create modes, permissions, event types, error codes.
//! - [`watch`]: the client's watch registry, re-registered after a reconnect.
//! - [`path`]: node path validation with the server's rules.
//! - [`digest`]: the digest authentication scheme.
//! - [`sasl`]: SASL framing and turn-taking; the mechanisms are other crates' (DIGEST-MD5 in
//!   `zk-client`, GSSAPI in `zk-gssapi`).
//! - [`retry`]: Kazoo-shaped retry policies.
//! - [`ensemble`]: the ensemble configuration (`/zookeeper/config`) and host rebalancing.
//! - [`admin`]: the four-letter words and how their answers read.
//!
//! ```
//! use bytes::BytesMut;
//! use zk_proto::records::{GetDataRequest, Request};
//!
//! let mut buf = BytesMut::new();
//! let req = Request::GetData(GetDataRequest { path: "/config".into(), watch: false });
//! req.encode_frame(1, "/app", &mut buf);
//! // length, xid 1, opcode 4 (getData), "/app/config", watch=false
//! assert_eq!(buf.len(), 4 + 8 + 4 + "/app/config".len() + 1);
//! ```

#![deny(missing_docs)]

pub mod admin;
pub mod codec;
pub mod consts;
pub mod digest;
pub mod ensemble;
pub mod error;
mod hosts;
mod request_id;

pub mod path;
pub mod records;
pub mod retry;
pub mod sasl;
pub mod session;
pub mod watch;

pub use codec::{DecodeError, FrameDecoder, FrameError, Jute};
pub use consts::{AddWatchMode, CreateMode, EventType, KeeperState, OpCode, WatcherType};
pub use error::ErrorCode;
pub use records::{Acl, Id, Request, Response, Stat};

/// The crate's README, compiled and run as a doc test so its example stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
