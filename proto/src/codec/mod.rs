//! The wire format: jute primitives ([`jute`]) and length-prefixed framing ([`frame`]).

pub mod frame;
pub mod jute;

pub use frame::{DEFAULT_MAX_FRAME, DEFAULT_MAX_REQUEST, FrameDecoder, FrameError, write_frame};
pub use jute::{Jute, Origin, PResult, Writer};

/// Why bytes could not be decoded into a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ends before the record does; feed more bytes and try again.
    #[error("incomplete input: at least {needed} more byte(s) are needed")]
    Incomplete {
        /// A lower bound on the number of missing bytes.
        needed: usize,
    },
    /// A complete frame ended in the middle of a record: the peer sent a malformed frame.
    #[error("malformed frame: it ends inside {what}")]
    Truncated {
        /// The record being decoded.
        what: &'static str,
    },
    /// A length prefix is negative (and not the -1 that means null).
    #[error("malformed record: invalid {what} length {len}")]
    InvalidLength {
        /// The kind of field whose length is invalid.
        what: &'static str,
        /// The length read from the wire.
        len: i32,
    },
    /// A string field is not valid UTF-8.
    #[error("malformed record: a string field is not valid UTF-8")]
    InvalidUtf8,
    /// The opcode in a header is not one this crate knows how to decode.
    #[error("unknown opcode {0}")]
    UnknownOpcode(i32),
    /// A multi request or response holds an operation type that cannot appear there.
    #[error("malformed multi record: unexpected operation type {0}")]
    InvalidMultiOp(i32),
    /// A low-level parse failure.
    #[error("malformed record: {what}")]
    Malformed {
        /// What the parser was doing.
        what: &'static str,
    },
}

impl DecodeError {
    /// Within a complete frame there is no more input to wait for: "incomplete" means the
    /// frame itself is short.
    pub fn in_frame(self, what: &'static str) -> DecodeError {
        match self {
            DecodeError::Incomplete { .. } => DecodeError::Truncated { what },
            e => e,
        }
    }
}
