//! The client's error type.

use std::time::Duration;

use zk_proto::ErrorCode;
use zk_proto::records::OpResult;
use zk_proto::session::{self, HostError};

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request failed: a server error code, a lost connection, an expired or closed
    /// session, a bad path ... See [`zk_proto::session::Error`].
    #[error(transparent)]
    Request(#[from] session::Error),
    /// A transaction was rolled back because one of its operations failed.
    #[error("the transaction failed at operation {index}: {code}; nothing was applied")]
    Transaction {
        /// The failing operation (0-based).
        index: usize,
        /// Its error.
        code: ErrorCode,
        /// Every operation's result (the others read `RuntimeInconsistency` or `Ok`).
        results: Vec<OpResult>,
    },
    /// The connect string could not be parsed.
    #[error(transparent)]
    Hosts(#[from] HostError),
    /// No session could be established in time.
    #[error(
        "no ZooKeeper server answered within {0:?}; check the connect string and that the \
         servers are up"
    )]
    ConnectTimeout(Duration),
    /// The server's reply does not fit the request (a server bug or a protocol mismatch).
    #[error("the server's reply does not match the request")]
    UnexpectedResponse,
}

impl Error {
    /// The ZooKeeper error code, as other clients would report it.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Request(e) => Some(e.code()),
            Error::Transaction { code, .. } => Some(*code),
            Error::ConnectTimeout(_) => Some(ErrorCode::ConnectionLoss),
            Error::Hosts(_) | Error::UnexpectedResponse => None,
        }
    }

    /// Worth retrying: the connection dropped or no server was reachable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Request(e) => e.is_retryable(),
            Error::ConnectTimeout(_) => true,
            _ => false,
        }
    }

    /// Shorthand for `code() == Some(code)`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code() == Some(code)
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
