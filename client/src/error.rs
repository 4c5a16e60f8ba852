//! The one error type every client call returns, flat whichever layer noticed the failure,
//! and its result type.

use std::time::Duration;

use zk_proto::error::ErrorCode;
use zk_proto::path::PathError;
use zk_proto::session::{self, HostError, Session};

/// Why a client call failed: one flat list, whichever layer noticed it.
///
/// The variants the session reports read exactly as [`session::Error`] words them (and
/// [`Error::to_session`] gives that error back); the rest are the client's own.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An error code from the server: `NoNode`, `NodeExists`, `BadVersion`, `NoAuth`, ...
    /// Match it as `Error::Server { code: ErrorCode::NoNode, .. }`, or ask
    /// [`Error::is`].
    Server {
        /// The server's code.
        code: ErrorCode,
        /// The node the failed call was on, as the caller named it, when the call was on
        /// one node (what Java's `KeeperException.getPath()` gives): see [`Error::path`].
        path: Option<String>,
    },
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
    /// A request that cannot be sent as asked (the reason inside): one only the session
    /// itself may send (pings, auth, watch re-registration), or options that do not go
    /// together.
    InvalidRequest(&'static str),
    /// A transaction was rolled back because one of its operations failed: nothing of it
    /// was applied.
    Transaction {
        /// The failing operation (0-based).
        index: usize,
        /// Its error.
        code: ErrorCode,
        /// The failing operation's node, as the caller named it.
        path: Option<String>,
        /// What became of every operation, in order: [`Undone::RolledBack`] before the
        /// failing one, [`Undone::Failed`] for it, [`Undone::Skipped`] after it.
        outcomes: Vec<Undone>,
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
    /// A guarded write (a write tied to a lock, lease, leadership or membership) was
    /// refused because the guard's node is gone: the guard was lost (its session expired,
    /// or the node was deleted), and the server applied nothing of the write.
    NotHeld {
        /// The guard's node, whose absence refused the write.
        node: String,
    },
    /// A node holds data a recipe cannot read in the format it expects (another program
    /// wrote something else there); nothing was changed.
    BadData {
        /// The node.
        path: String,
        /// What is wrong with its data.
        why: String,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Error::Server {
            code,
            path: Some(path),
        } = self
        {
            return write!(f, "{path}: {}", session::Error::Server(*code));
        }
        if let Some(e) = self.to_session() {
            return e.fmt(f);
        }
        match self {
            Error::Transaction {
                index, code, path, ..
            } => {
                write!(f, "the transaction failed at operation {index}")?;
                if let Some(path) = path {
                    write!(f, " ({path})")?;
                }
                write!(f, ": {code}; nothing was applied")
            }
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
            Error::BadData { path, why } => write!(
                f,
                "{path} holds data this recipe cannot read ({why}); check what else writes there"
            ),
            Error::NotHeld { node } => write!(
                f,
                "{node} is gone: what it guarded is lost, and nothing of the write was \
                 applied; acquire it again before writing"
            ),
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
            session::Error::Server(code) => Error::Server { code, path: None },
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
            other => Error::Server {
                code: other.code(),
                path: None,
            },
        }
    }
}

impl Error {
    /// The ZooKeeper error code, as other clients would report it.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => Some(*code),
            Error::ConnectionLoss | Error::ConnectTimeout { .. } => Some(ErrorCode::ConnectionLoss),
            Error::SessionExpired | Error::Closed => Some(ErrorCode::SessionExpired),
            Error::AuthFailed => Some(ErrorCode::AuthFailed),
            Error::Timeout(_) | Error::CallTimeout(_) => Some(ErrorCode::OperationTimeout),
            Error::QueueFull(_)
            | Error::InvalidPath(_)
            | Error::TooLarge { .. }
            | Error::InvalidRequest(_) => Some(ErrorCode::BadArguments),
            Error::Transaction { code, .. } => Some(*code),
            Error::Hosts(_)
            | Error::UnexpectedResponse
            | Error::Start(_)
            | Error::Tls(_)
            | Error::NotHeld { .. }
            | Error::BadData { .. } => None,
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
            Error::Server { code, .. } => session::Error::Server(*code),
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
            | Error::Tls(_)
            | Error::NotHeld { .. }
            | Error::BadData { .. } => return None,
        })
    }

    /// The server's error code, when the server answered with one.
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// A server error with `code`, naming no path.
    pub fn server(code: ErrorCode) -> Error {
        Error::Server { code, path: None }
    }

    /// The node the failed call was on, as the caller named it: a server error on a call
    /// on one path, or a transaction's failing operation.
    ///
    /// ```
    /// # use zk_client::Error;
    /// # use zk_proto::ErrorCode;
    /// let e = Error::server(ErrorCode::NoNode).at_path("/app/config");
    /// assert_eq!(e.path(), Some("/app/config"));
    /// assert!(e.is(ErrorCode::NoNode));
    /// assert_eq!(e.to_string(), "/app/config: the node does not exist (code -101)");
    /// ```
    pub fn path(&self) -> Option<&str> {
        match self {
            Error::Server { path, .. } | Error::Transaction { path, .. } => path.as_deref(),
            Error::NotHeld { node } => Some(node),
            Error::BadData { path, .. } => Some(path),
            _ => None,
        }
    }

    /// This error, naming `path` as the node of the failed call if it is a server error
    /// that names none yet. Every call of the clients on one path does this.
    pub fn at_path(self, path: &str) -> Error {
        match self {
            Error::Server { code, path: None } => Error::Server {
                code,
                path: Some(path.to_owned()),
            },
            other => other,
        }
    }

    /// [`Error::at_path`] when the call was on a path, this error unchanged otherwise.
    pub fn at(self, path: Option<&str>) -> Error {
        match path {
            Some(path) => self.at_path(path),
            None => self,
        }
    }
}

impl Error {
    /// This error, naming the failing operation's node if it is a transaction's failure;
    /// `paths` are the transaction's operations' paths, in order
    /// ([`MultiBuilder::paths`](crate::MultiBuilder::paths)).
    pub fn in_transaction(self, paths: &[String]) -> Error {
        match self {
            Error::Transaction {
                index,
                code,
                path: None,
                outcomes,
            } => Error::Transaction {
                index,
                code,
                path: paths.get(index).cloned(),
                outcomes,
            },
            other => other,
        }
    }
}

/// What became of one operation of a transaction that failed ([`Error::Transaction`]):
/// none of them was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undone {
    /// It would have succeeded, and was rolled back with the rest.
    RolledBack,
    /// It failed, with this code, and failed the transaction.
    Failed(ErrorCode),
    /// It came after the failing one and was not tried.
    Skipped,
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
