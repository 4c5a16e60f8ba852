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
    /// Fills the buffer with random bytes, or says why it could not.
    pub random: fn(&mut [u8]) -> std::result::Result<(), String>,
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
        let mut bytes = [0; 8];
        self.fill(&mut bytes)?;
        Ok(u64::from_be_bytes(bytes))
    }

    /// 128 random bits, for secrets (the nonces of a login) and ids, in one draw.
    pub fn u128(self) -> Result<u128> {
        let mut bytes = [0; 16];
        self.fill(&mut bytes)?;
        Ok(u128::from_be_bytes(bytes))
    }

    fn fill(self, bytes: &mut [u8]) -> Result<()> {
        (self.random)(bytes).map_err(|e| {
            Error::Start(format!(
                "the operating system gave no random bits ({e}); a session seed and recipe node ids need them"
            ))
        })
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

#[cfg(test)]
mod os_tests {
    use super::{Error, Os};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DRAWS: AtomicUsize = AtomicUsize::new(0);

    fn counting(bytes: &mut [u8]) -> std::result::Result<(), String> {
        DRAWS.fetch_add(1, Ordering::SeqCst);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        Ok(())
    }

    fn broken(_: &mut [u8]) -> std::result::Result<(), String> {
        Err("no entropy source".into())
    }

    #[test]
    fn an_id_is_one_draw_of_128_bits() {
        let os = Os {
            random: counting,
            wall_clock: Default::default,
        };
        let before = DRAWS.load(Ordering::SeqCst);
        let id = os.unique_id().expect("an id");
        assert_eq!(id, "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(DRAWS.load(Ordering::SeqCst) - before, 1);
        assert_eq!(os.u64().expect("64 bits"), 0x0102_0304_0506_0708);
    }

    #[test]
    fn no_random_bits_is_a_typed_error_that_says_why() {
        let os = Os {
            random: broken,
            wall_clock: Default::default,
        };
        match os.u128() {
            Err(Error::Start(why)) => assert!(why.contains("no entropy source"), "{why}"),
            other => panic!("expected a start error, got {other:?}"),
        }
    }
}
