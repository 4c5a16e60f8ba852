//! Why a request failed, and why a connection was dropped.

use std::time::Duration;

use crate::codec::{DecodeError, FrameError};
use crate::error::ErrorCode;
use crate::path::PathError;

/// Why a request did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error code.
    #[error("{0}")]
    Server(ErrorCode),
    /// The connection dropped while the request was sent or being sent. The server may or may
    /// not have applied it: retry it if it is idempotent, or check first.
    #[error(
        "the connection was lost before the reply arrived; the request may or may not have \
         been applied (retry if it is idempotent)"
    )]
    ConnectionLoss,
    /// The session expired: its ephemeral nodes and watches are gone.
    #[error("the session expired; ephemeral nodes and watches of the session are gone")]
    SessionExpired,
    /// The session was closed by the application.
    #[error("the session is closed; open a new client to continue")]
    Closed,
    /// The server refused the session's credentials.
    #[error("authentication failed; the session is over, fix the credentials and reconnect")]
    AuthFailed,
    /// No connection could carry the request within the request timeout.
    #[error("no server could be reached within {0:?}; the request was never sent")]
    Timeout(Duration),
    /// Too many requests are waiting for a connection.
    #[error("{0} requests already wait for a connection; try again once connected")]
    QueueFull(usize),
    /// The path is not a valid node path.
    #[error(transparent)]
    InvalidPath(#[from] PathError),
    /// The request encodes to more bytes than the server accepts.
    #[error(
        "the request encodes to {size} bytes, more than the {max} a server accepts \
         (jute.maxbuffer); split the data"
    )]
    TooLarge {
        /// The frame size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The request cannot be submitted by the application (pings, auth and watch
    /// re-registration are the session's own business).
    #[error("{0}")]
    InvalidRequest(&'static str),
}

impl Error {
    /// The ZooKeeper error code this corresponds to, as other clients report it.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Server(code) => *code,
            Error::ConnectionLoss => ErrorCode::ConnectionLoss,
            Error::SessionExpired => ErrorCode::SessionExpired,
            Error::Closed => ErrorCode::SessionExpired,
            Error::AuthFailed => ErrorCode::AuthFailed,
            Error::Timeout(_) => ErrorCode::OperationTimeout,
            Error::QueueFull(_) | Error::InvalidRequest(_) | Error::TooLarge { .. } => {
                ErrorCode::BadArguments
            }
            Error::InvalidPath(_) => ErrorCode::BadArguments,
        }
    }

    /// Worth sending again, unchanged, once time has passed or the connection changed:
    /// the connection dropped, no server was reachable in time, or the session's queue was
    /// full. Nothing about the request itself was wrong. The one rule every retry follows
    /// (the client's policy, the recipe machines).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLoss
                | Error::Timeout(_)
                | Error::QueueFull(_)
                | Error::Server(ErrorCode::ConnectionLoss | ErrorCode::OperationTimeout)
        )
    }
}

/// Why the session dropped a connection (or asks the driver to).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Disconnect {
    /// The driver reported the connection closed or failed.
    #[error("the connection failed: {0}")]
    Io(String),
    /// TCP connect plus handshake took longer than the connect timeout.
    #[error("no handshake within the connect timeout of {0:?}")]
    ConnectTimeout(Duration),
    /// Nothing arrived within the read timeout (2/3 of the session timeout).
    #[error("the server sent nothing for {0:?} (read timeout)")]
    ReadTimeout(Duration),
    /// A request or ping waited this long without a word from the server: it is taken for
    /// dead (black-holed, frozen or gone) and the next server is tried, with most of the
    /// session timeout left to resume there.
    #[error(
        "the server answered nothing for {0:?} while a request or ping waited; trying the \
         next server"
    )]
    Unresponsive(Duration),
    /// A frame could not be split off the stream.
    #[error("bad frame from the server: {0}")]
    Frame(#[from] FrameError),
    /// A frame could not be decoded.
    #[error("undecodable reply from the server: {0}")]
    Decode(#[from] DecodeError),
    /// A reply's xid does not match the oldest request in flight.
    #[error("reply xid {got} does not match the oldest request in flight (xid {expected:?})")]
    UnexpectedXid {
        /// The xid expected, if any request was in flight.
        expected: Option<i32>,
        /// The xid received.
        got: i32,
    },
    /// The server answered the handshake with an error instead of a session, as a read-only
    /// server without local sessions does (`NotReadOnly`).
    #[error("the server refused the session: {0}")]
    Refused(ErrorCode),
    /// The server said the session expired.
    #[error("the server says the session expired")]
    SessionExpired,
    /// The server refused the credentials.
    #[error("the server refused the credentials")]
    AuthFailed,
    /// The SASL login failed: refused by the server, or the server could not prove it knows
    /// the password (the reason inside).
    #[error("the SASL login failed: {0}")]
    SaslFailed(String),
    /// The host list changed ([`Session::update_hosts`](super::Session::update_hosts)) and
    /// the session moves to another server to spread the load, or because its server left.
    #[error("moving to another server after the host list changed")]
    Rebalance,
    /// A read-write server was found while connected to a read-only one.
    #[error("moving from a read-only server to a read-write one")]
    ReadWriteServerFound,
    /// The session was closed.
    #[error("the session was closed")]
    Closed,
}
