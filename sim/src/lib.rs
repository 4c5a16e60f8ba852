//! zk-sim: ZooKeeper 3.8's server semantics as a pure model, for deterministic simulation
//! and for tests that need no Java.
//!
//! - [`Ensemble`]: one standalone server or a quorum of them around one linearizable tree,
//!   whose followers may lag behind the leader ([`Config::follower_lag`]).
//!   Sans-IO like `zk_proto`'s session: bytes and time go in, reply frames, notifications
//!   and closes come out, and faults (kills, pauses, stalls, expiries, lost replies) are
//!   inputs. No IO, no clock, no threads.
//! - [`harness::Simulation`]: real [`zk_proto::session::Session`]s against the model over a
//!   virtual network and clock, stepped one event at a time from a seed, with a history of
//!   everything that happened. A failing seed replays exactly.
//! - `SimServer` (feature `tcp`, on by default): the model on real sockets, for any client.
//!   `cargo run -p zk-sim` serves it on `127.0.0.1:2181`.
//!
//! Built from the 3.8.0 sources where a client can see the difference, and held to the real
//! server (Debian's 3.8.0) by differential tests: random scripts of raw requests over
//! several sessions run against both, and every reply and notification must agree field by
//! field (`tests/tests/sim_diff.rs`).
//!
//! # Testing code that uses a `Session`, without Java
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use zk_proto::records::{Acl, CreateRequest, GetDataRequest, Request, Response};
//! use zk_proto::session::{Error, SessionState};
//! use zk_sim::harness::{Fault, SimConfig, Simulation};
//!
//! let mut sim = Simulation::new(SimConfig::new(42), Instant::now()); // the seed fixes every random choice
//! let me = sim.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
//! let create = Request::Create(CreateRequest {
//!     path: "/job".into(),
//!     data: Bytes::from_static(b"pending"),
//!     acl: Acl::open_unsafe(),
//!     flags: 0,
//! });
//! // The reply is lost on the way back: the node exists, the client hears ConnectionLoss.
//! sim.run_until(Duration::from_secs(5), |s| s.session(me).state() == SessionState::Connected);
//! sim.fault(Fault::LoseNextReply(me));
//! assert_eq!(sim.call(me, create, Duration::from_secs(5)), Some(Err(Error::ConnectionLoss)));
//! assert!(sim.ensemble().node("/job").is_some());
//! // The session comes back on a new connection and finds it.
//! let read = Request::GetData(GetDataRequest { path: "/job".into(), watch: false });
//! let Some(Ok(Response::GetData(d))) = sim.call(me, read, Duration::from_secs(10)) else {
//!     panic!("{}", sim.render_history());
//! };
//! assert_eq!(&d.data[..], b"pending");
//! ```
//!
//! # What the model does not do as the real server does
//!
//! | Area | The real server | The model |
//! |---|---|---|
//! | Reads on ensemble members | A follower can answer from before a write another server committed, until it catches up (or a `sync`) | The same with [`Config::follower_lag`]: each follower applies committed transactions after a seeded delay and serves what it applied. Without it, one tree: every read sees every committed write |
//! | A session moving servers | The old connection on the other server stays open, serves reads, and is closed at its next write (SessionMoved) | The old connection is closed at once |
//! | Elections | Timing varies; the member with the highest zxid, then id, leads | A fixed delay ([`Config::election_time`]); the highest live id leads |
//! | Container and TTL reaping | Deletions spaced by `60000 / maxPerMinute` ms | All due deletions at the check |
//! | Read-only members | Serve their own, possibly stale copy of the tree | Serve the shared tree |
//! | Strings that are not UTF-8 | Decoded with replacement characters | Refused with MarshallingError |
//! | Quotas | Tracked under `/zookeeper/quota` and enforced when configured | Not tracked |
//! | SASL, reconfig, throttling | As configured | SASL DIGEST-MD5 against [`Config::sasl_digest_user`]s (no GSSAPI); without users SASL fails the connection (AuthFailed); reconfig is refused (ReconfigDisabled, as with `reconfigEnabled=false`); no throttling |
//! | TLS | PEM, JKS or PKCS#12 stores; X.509 certificates of versions 1 and 3; TLS 1.2 unless `ssl.protocol`/`ssl.enabledProtocols` say otherwise | The same stores ([`ServerTls::from_stores`]), certificates and versions ([`ServerTls::protocols`]), on the TCP front ([`SimServer::bind_tls`]); a version-1 client certificate is taken only when a trusted CA signed it directly; a PKCS#12 trust store's certificates count only when marked trusted, as `keytool` writes them and Java reads them; no x509 identities |
//! | The data directory | A transaction log and snapshots, fsynced | One snapshot of the whole model, written by the TCP front before a change's replies go out ([`Config::data_dir`]) |
//! | Node times | The machine's clock | [`Config::wall_clock`] plus the model's time: fixed unless set (the TCP front and the `zk-sim` binary set the machine's clock) |
//! | Java's ordering of children and ephemeral lists | `HashSet` order | The same order, except in a bin of more than eight colliding names in a table of 64 bins or more (Java makes it a tree) |
//! | Four-letter words | All | every word of 3.8 (`ruok`, `isro`, `srvr`, `stat`, `mntr`, `conf`, `cons`, `envi`, `dump`, `wchs`, `wchc`, `wchp`, `dirs`, `crst`, `srst`, `gtmk`, `stmk`, `hash`) in the real server's format, with the model's counters; `4lw.commands.whitelist` as [`Whitelist`] |
//!
//! The model also keeps the real server's oddities, because clients meet them: a passing
//! `check` sent outside a multi gets no reply (3.8.0 fails to serialise it; in an ensemble
//! the followers stop following), `checkWatches` answers for any connection of the same
//! server, the last watch registration on a path sets its mode (ZOOKEEPER-4466), a
//! `createTTL` with a plain mode and a negative TTL stops the server, and notifications
//! are withheld from connections that may not read the node (Debian's fix for
//! CVE-2024-23944).

#![deny(missing_docs)]

mod acl;
mod config;
pub mod harness;
mod history;
mod java;
#[cfg(feature = "tls")]
mod jks;
mod sasl;
mod server;
mod sessions;
#[cfg(feature = "tcp")]
mod tcp;
mod tree;
mod watch;
mod zoocfg;

pub use config::Config;
pub use history::{Txn, TxnOp};
pub use sasl::jaas_digest_users;
pub use server::{
    ConnId, Ensemble, NodeInfo, Output, Refused, ServerState, SnapshotError, Whitelist,
};
pub use sessions::password;
#[cfg(feature = "tcp")]
pub use tcp::{BlockingSimServer, SimServer};
#[cfg(feature = "tls")]
pub use tcp::{ClientAuth, ServerTls, TlsStore};
pub use zoocfg::{CfgTls, StoreType, TlsProtocol, ZooCfg, ZooCfgError};

/// The crate's README, compiled and run as a doc test so its example stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
