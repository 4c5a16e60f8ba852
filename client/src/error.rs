//! The one error type every client call returns, flat whichever layer noticed the failure,
//! and its result type.

use std::time::Duration;

use zk_proto::error::ErrorCode;
use zk_proto::path::PathError;
use zk_proto::records::*;
use zk_proto::session::{self, HostError, Session};

/// Why a client call failed: one flat list, whichever layer noticed it.
///
/// The variants the session reports read exactly as [`session::Error`] words them (and
/// [`Error::to_session`] gives that error back); the rest are the client's own.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An error code from the server: `NoNode`, `NodeExists`, `BadVersion`, `NoAuth`, ...
    Server(ErrorCode),
    /// Lost with the connection; applied or not, nobody knows. Retry if idempotent.
    ConnectionLoss,
    /// The session is gone, with its ephemeral nodes and watches.
    SessionExpired,
    /// The application closed the client.
    Closed,
    /// The credentials were refused; the session is over.
    AuthFailed,
    /// Never sent: no connection came within the request timeout.
    Timeout(Duration),
    /// Refused: this many requests already wait for a connection.
    QueueFull(usize),
    /// A path the server would refuse (the reason inside).
    InvalidPath(PathError),
    /// Encodes to more bytes than `jute.maxbuffer` lets a server take.
    TooLarge {
        /// The frame size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A request only the session itself may send (pings, auth, watch re-registration).
    InvalidRequest(&'static str),
    /// A transaction was rolled back because one of its operations failed.
    Transaction {
        /// The failing operation (0-based).
        index: usize,
        /// Its error.
        code: ErrorCode,
        /// Every operation's result (the others read `Ok` or `RuntimeInconsistency`).
        results: Vec<OpResult>,
    },
    /// The connect string could not be parsed.
    Hosts(HostError),
    /// No session could be established in time.
    ConnectTimeout {
        /// How long the caller waited.
        waited: Duration,
        /// Why the last attempt on each host failed (host, cause), where one did.
        failures: Vec<(String, String)>,
    },
    /// A call got no answer within its call timeout. The request may still complete later.
    CallTimeout(Duration),
    /// The server's reply does not fit the request (a server bug or a protocol mismatch).
    UnexpectedResponse,
    /// The client could not start (a thread or poller could not be created).
    Start(String),
    /// TLS settings that cannot be used (the reason inside): a PEM without certificates, a
    /// key that does not fit its certificate, a name no certificate can carry.
    Tls(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(e) = self.to_session() {
            return e.fmt(f);
        }
        match self {
            Error::Transaction { index, code, .. } => write!(
                f,
                "the transaction failed at operation {index}: {code}; nothing was applied"
            ),
            Error::Hosts(e) => e.fmt(f),
            Error::ConnectTimeout { waited, failures } => write!(
                f,
                "no ZooKeeper server gave a session within {waited:?}{}; check the connect \
                 string and that the servers are up",
                describe_failures(failures)
            ),
            Error::CallTimeout(d) => {
                write!(
                    f,
                    "no answer within {d:?}; the request may still be applied"
                )
            }
            Error::UnexpectedResponse => {
                f.write_str("the server's reply does not match the request")
            }
            Error::Start(why) => write!(f, "the client could not start: {why}"),
            Error::Tls(why) => write!(f, "unusable TLS settings: {why}"),
            // Every other variant has a session form, written above.
            _ => f.write_str("unknown client error"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::InvalidPath(e) => e.source(),
            Error::Hosts(e) => e.source(),
            _ => None,
        }
    }
}

impl From<PathError> for Error {
    fn from(e: PathError) -> Error {
        Error::InvalidPath(e)
    }
}

impl From<HostError> for Error {
    fn from(e: HostError) -> Error {
        Error::Hosts(e)
    }
}

impl From<session::Error> for Error {
    fn from(e: session::Error) -> Error {
        match e {
            session::Error::Server(code) => Error::Server(code),
            session::Error::ConnectionLoss => Error::ConnectionLoss,
            session::Error::SessionExpired => Error::SessionExpired,
            session::Error::Closed => Error::Closed,
            session::Error::AuthFailed => Error::AuthFailed,
            session::Error::Timeout(d) => Error::Timeout(d),
            session::Error::QueueFull(n) => Error::QueueFull(n),
            session::Error::InvalidPath(p) => Error::InvalidPath(p),
            session::Error::TooLarge { size, max } => Error::TooLarge { size, max },
            session::Error::InvalidRequest(why) => Error::InvalidRequest(why),
            // The session's error is non-exhaustive: a kind added there reads as its code.
            other => Error::Server(other.code()),
        }
    }
}

impl Error {
    /// The ZooKeeper error code, as other clients would report it.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server(code) => Some(*code),
            Error::ConnectionLoss | Error::ConnectTimeout { .. } => Some(ErrorCode::ConnectionLoss),
            Error::SessionExpired | Error::Closed => Some(ErrorCode::SessionExpired),
            Error::AuthFailed => Some(ErrorCode::AuthFailed),
            Error::Timeout(_) | Error::CallTimeout(_) => Some(ErrorCode::OperationTimeout),
            Error::QueueFull(_)
            | Error::InvalidPath(_)
            | Error::TooLarge { .. }
            | Error::InvalidRequest(_) => Some(ErrorCode::BadArguments),
            Error::Transaction { code, .. } => Some(*code),
            Error::Hosts(_) | Error::UnexpectedResponse | Error::Start(_) | Error::Tls(_) => None,
        }
    }

    /// Worth retrying: what the session's rule says ([`session::Error::is_retryable`]),
    /// and the client's own timeouts (connecting, waiting for an answer).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::ConnectTimeout { .. } | Error::CallTimeout(_))
            || self.to_session().is_some_and(|e| e.is_retryable())
    }

    /// Shorthand for `code() == Some(code)`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code() == Some(code)
    }

    /// The session-layer error this one is, for the errors a request can get from the
    /// session (what [`zk_proto::retry::RetryPolicy`] judges); `None` for the client's own
    /// (transactions, connect and call timeouts, bad hosts, start failures).
    pub fn to_session(&self) -> Option<session::Error> {
        Some(match self {
            Error::Server(code) => session::Error::Server(*code),
            Error::ConnectionLoss => session::Error::ConnectionLoss,
            Error::SessionExpired => session::Error::SessionExpired,
            Error::Closed => session::Error::Closed,
            Error::AuthFailed => session::Error::AuthFailed,
            Error::Timeout(d) => session::Error::Timeout(*d),
            Error::QueueFull(n) => session::Error::QueueFull(*n),
            Error::InvalidPath(p) => session::Error::InvalidPath(p.clone()),
            Error::TooLarge { size, max } => session::Error::TooLarge {
                size: *size,
                max: *max,
            },
            Error::InvalidRequest(why) => session::Error::InvalidRequest(why),
            Error::Transaction { .. }
            | Error::Hosts(_)
            | Error::ConnectTimeout { .. }
            | Error::CallTimeout(_)
            | Error::UnexpectedResponse
            | Error::Start(_)
            | Error::Tls(_) => return None,
        })
    }

    /// The server's error code, when the server answered with one.
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server(code) => Some(*code),
            _ => None,
        }
    }
}

fn describe_failures(failures: &[(String, String)]) -> String {
    failures
        .iter()
        .map(|(host, why)| format!("; {host}: {why}"))
        .collect()
}

impl Error {
    /// A connect timeout after `waited`, with the last failure on each host the session
    /// tried.
    pub fn connect_timeout(waited: Duration, session: &Session) -> Error {
        Error::ConnectTimeout {
            waited,
            failures: session
                .host_failures()
                .into_iter()
                .map(|(h, why)| (h.to_string(), why.to_string()))
                .collect(),
        }
    }
}

/// The result type of client operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
