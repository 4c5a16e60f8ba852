//! zk-sim: ZooKeeper 3.8's semantics as a pure model server.

#![deny(missing_docs)]

mod acl;
mod config;
pub mod harness;
mod history;
mod java;
mod server;
mod sessions;
#[cfg(feature = "tcp")]
mod tcp;
mod tree;
mod watch;

pub use config::Config;
pub use history::{Txn, TxnOp};
pub use server::{ConnId, Ensemble, NodeInfo, Output, Refused, ServerState};
pub use sessions::password;
#[cfg(feature = "tcp")]
pub use tcp::SimServer;
