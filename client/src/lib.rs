//! The client layer every ZooKeeper driver shares: each operation defined once (request
//! construction, reply decoding, error mapping), the options a client is built from, and
//! the one error type a client's calls return. Pure data over [`zk_proto`]'s session: no IO,
//! no clock, no runtime, so the async client, the blocking client, a custom `mio` loop and
//! the recipes all use the same definitions.
//!
//! [`driver`] is the core every driver runs between its callers and the session: commands,
//! reply waiters, watch sinks, hosted recipe machines and the session's close. A driver
//! keeps its socket, clock and calling convention, and passes in what only the operating
//! system has ([`Os`]: random bits and the wall clock).
//!
//! Errors are flat: a caller matches `Error::SessionExpired` or `Error::Server { code: NoNode, .. }`
//! directly, whatever layer noticed it.

mod calls;
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
pub use error::{Error, Result, Undone};
pub use multi::{MultiBuilder, ReadOp, ReadResult, multi_read_request};
pub use op::{Op, Reply};
pub use options::ClientOptions;
pub use reconfig::Reconfig;
/// Null node data, as the Java client's `null` (the node reads back as null, not empty), and
/// how to tell it from empty data that was read.
pub use zk_proto::codec::jute::{is_null as is_null_data, null as null_data};

/// What a driver takes from the operating system for the pure layers: random bits (a
/// session's seed, a login's nonces, recipe node ids) and the wall clock (the lease). This
/// crate reads neither itself.
#[derive(Clone, Copy)]
pub struct Os {
    /// 64 random bits, or why none could be had.
    pub random: fn() -> std::result::Result<u64, String>,
    /// The wall clock, as time since the Unix epoch.
    pub wall_clock: fn() -> std::time::Duration,
}

impl std::fmt::Debug for Os {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Os")
    }
}

impl Os {
    /// 64 random bits, or the error that says none could be had (only on a broken system:
    /// no `getrandom(2)` and no `/dev/urandom`).
    pub fn u64(self) -> Result<u64> {
        (self.random)().map_err(|e| {
            Error::Start(format!(
                "the operating system gave no random bits ({e}); a session seed and recipe node ids need them"
            ))
        })
    }

    /// 128 random bits, for secrets (the nonces of a login).
    pub fn u128(self) -> Result<u128> {
        Ok(u128::from(self.u64()?) << 64 | u128::from(self.u64()?))
    }

    /// A fresh 128-bit id in 32 hex digits, unique per recipe participant: a recipe finds
    /// its own nodes by it after a lost reply.
    pub fn unique_id(self) -> Result<String> {
        Ok(format!("{:032x}", self.u128()?))
    }
}

#[doc(hidden)]
pub use bytes as __bytes;
#[doc(hidden)]
pub use zk_proto as __proto;

/// The crate's README, compiled and run as a doc test so its example stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
