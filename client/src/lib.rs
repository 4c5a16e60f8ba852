//! The client layer every ZooKeeper driver shares: each operation defined once (request
//! construction, reply decoding, error mapping), the options a client is built from, and
//! the one error type a client's calls return. Pure data over [`zk_proto`]'s session: no IO,
//! no clock, no runtime, so the async client, the blocking client, a custom `mio` loop and
//! the recipes all use the same definitions.
//!
//! Errors are flat: a caller matches `Error::SessionExpired` or `Error::Server(NoNode)`
//! directly, whatever layer noticed it.

mod create;
pub mod driver;
mod error;
mod multi;
pub mod op;
mod options;
pub mod plan;
mod reconfig;
pub mod reply;
pub mod sasl;
#[cfg(feature = "tls")]
pub mod tls;

pub use create::CreateOptions;
pub use error::{Error, Result};
pub use multi::{MultiBuilder, ReadOp, ReadResult, multi_read_request};
pub use op::{Op, Reply};
pub use options::ClientOptions;
pub use reconfig::Reconfig;

/// A recipe's node id from 128 random bits (32 hex digits), by which it finds its own nodes
/// again after a lost reply. The bits come from the driver, from the OS: this crate draws
/// no randomness of its own.
pub fn unique_id_from(random: u128) -> String {
    format!("{random:032x}")
}

/// Random bits the driver drew from the OS, or the error that says none could be had (only
/// on a broken system: no `getrandom(2)` and no `/dev/urandom`).
pub fn entropy<E: std::fmt::Display>(drawn: std::result::Result<u64, E>) -> Result<u64> {
    drawn.map_err(|e| {
        Error::Start(format!(
            "the operating system gave no random bits ({e}); a session seed and recipe node ids need them"
        ))
    })
}

#[doc(hidden)]
pub use bytes as __bytes;
#[doc(hidden)]
pub use zk_proto as __proto;

/// The crate's README, compiled and run as a doc test so its example stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
