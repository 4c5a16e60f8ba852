//! Server error codes (`KeeperException.Code`), each a typed variant that keeps its number.

macro_rules! error_codes {
    ( $( $(#[$vm:meta])* $v:ident = $n:expr => $msg:expr ),* $(,)? ) => {
        /// An error code from a server reply (`KeeperException.Code`).
        ///
        /// Every code the ZooKeeper sources define has a variant; a code this crate does not
        /// know survives as [`ErrorCode::Unknown`] with its number.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$vm])* $v, )*
            /// A code this crate does not know.
            Unknown(i32),
        }

        impl ErrorCode {
            /// Every known code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$v),*];

            /// The code for a wire number.
            pub fn from_i32(n: i32) -> Self {
                match n {
                    $( $n => ErrorCode::$v, )*
                    n => ErrorCode::Unknown(n),
                }
            }

            /// The wire number.
            pub fn as_i32(self) -> i32 {
                match self {
                    $( ErrorCode::$v => $n, )*
                    ErrorCode::Unknown(n) => n,
                }
            }

            fn message(self) -> &'static str {
                match self {
                    $( ErrorCode::$v => $msg, )*
                    ErrorCode::Unknown(_) => "the server answered with an error code this client does not know",
                }
            }
        }
    };
}

error_codes! {
    /// No error.
    Ok = 0 => "ok",
    /// Marks the start of the system error range; never sent.
    SystemError = -1 => "system error",
    /// In a failed multi: this operation was not applied because another one failed.
    RuntimeInconsistency = -2 => "not applied because another operation of the transaction failed",
    /// The server found inconsistent data.
    DataInconsistency = -3 => "the server found a data inconsistency",
    /// The connection to the server was lost.
    ConnectionLoss = -4 => "the connection to the server was lost; the operation may or may not have been applied",
    /// The server could not (un)marshal a record.
    MarshallingError = -5 => "the server could not decode the request",
    /// The server does not implement the operation (or the feature is disabled).
    Unimplemented = -6 => "the server does not support this operation (too old, or the feature is disabled in its configuration)",
    /// The operation timed out.
    OperationTimeout = -7 => "the operation timed out; retry it",
    /// Invalid arguments.
    BadArguments = -8 => "the server refused the request's arguments",
    /// Unknown session (server-internal).
    UnknownSession = -12 => "the server does not know this session",
    /// A reconfiguration cannot reach a quorum of the new configuration.
    NewConfigNoQuorum = -13 => "no quorum of the new configuration is connected and in sync; try again once the new servers are up",
    /// Another reconfiguration is in progress.
    ReconfigInProgress = -14 => "another reconfiguration is in progress; try again later",
    /// Marks the start of the API error range; never sent.
    ApiError = -100 => "API error",
    /// The node does not exist.
    NoNode = -101 => "the node does not exist",
    /// The session lacks the permission the node's ACL requires.
    NoAuth = -102 => "not authorized: the node's ACL denies this operation to the session's identities",
    /// The expected version does not match the node's version.
    BadVersion = -103 => "version mismatch: the node changed since the version given was read",
    /// Ephemeral nodes cannot have children.
    NoChildrenForEphemerals = -108 => "ephemeral nodes cannot have children",
    /// The node already exists.
    NodeExists = -110 => "the node already exists",
    /// The node has children and cannot be deleted.
    NotEmpty = -111 => "the node has children; delete them first",
    /// The session expired.
    SessionExpired = -112 => "the session expired; its ephemeral nodes and watches are gone, start a new session",
    /// Invalid callback (unused by servers).
    InvalidCallback = -113 => "invalid callback",
    /// The ACL is invalid (empty, unknown scheme, or `auth` with no credentials).
    InvalidAcl = -114 => "invalid ACL: it is empty, uses an unknown scheme, or uses the auth scheme on a session without credentials",
    /// Authentication failed.
    AuthFailed = -115 => "authentication failed: the server rejected the credentials",
    /// The session moved to another server.
    SessionMoved = -118 => "the session moved to another server; this connection is stale",
    /// A write reached a read-only server.
    NotReadOnly = -119 => "the server is read-only (cut off from its quorum) and refuses writes; retry once connected to a read-write server",
    /// An ephemeral node cannot be created on a local session.
    EphemeralOnLocalSession = -120 => "ephemeral nodes cannot be created by a local session",
    /// The watch to remove does not exist.
    NoWatcher = -121 => "no such watch is set",
    /// The request did not complete in time.
    RequestTimeout = -122 => "the request did not complete within the allowed time",
    /// Reconfiguration is disabled on the server.
    ReconfigDisabled = -123 => "reconfiguration is disabled on the server (reconfigEnabled=false)",
    /// The server requires SASL authentication before anything else.
    SessionClosedRequireSaslAuth = -124 => "the server requires SASL authentication and closed the session",
    /// A quota on the path was exceeded.
    QuotaExceeded = -125 => "a quota on this path was exceeded",
    /// The server is overloaded and did not run the request.
    ThrottledOp = -127 => "the server is overloaded and did not run the request; retry with backoff",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message(), self.as_i32())
    }
}

impl std::error::Error for ErrorCode {}

impl ErrorCode {
    /// True for [`ErrorCode::Ok`].
    pub fn is_ok(self) -> bool {
        self == ErrorCode::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_their_numbers() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_i32(c.as_i32()), *c);
        }
        assert_eq!(ErrorCode::from_i32(-101), ErrorCode::NoNode);
        assert_eq!(ErrorCode::from_i32(-9999), ErrorCode::Unknown(-9999));
        assert_eq!(ErrorCode::Unknown(-9999).as_i32(), -9999);
        assert!(ErrorCode::NoNode.to_string().contains("-101"));
    }
}
