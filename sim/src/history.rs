//! The server's side of a run: every transaction the model applied, with its zxid, session
//! and time, so safety can be checked on what the server did rather than on what clients
//! believe.

use std::time::Instant;

use zk_proto::ErrorCode;

/// One applied transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// Its zxid.
    pub zxid: i64,
    /// When it was applied.
    pub time: Instant,
    /// The session it ran for (0 for the server's own container and TTL deletions).
    pub session: i64,
    /// What it did.
    pub op: TxnOp,
}

/// What a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// A session was created with this negotiated timeout (ms).
    CreateSession {
        /// The negotiated timeout.
        timeout: i32,
    },
    /// A session ended: closed by its client or expired by the server; its ephemeral
    /// nodes were deleted in this order.
    CloseSession {
        /// True when the server expired it.
        expired: bool,
        /// The ephemeral nodes deleted.
        deleted: Vec<String>,
    },
    /// A node was created.
    Create {
        /// Its path (with the sequence number).
        path: String,
        /// The owning session for an ephemeral node, 0 otherwise.
        ephemeral_owner: i64,
    },
    /// A node was deleted (by a client, or as an empty container or expired TTL node).
    Delete {
        /// Its path.
        path: String,
    },
    /// A node's data was set; `version` is the new version.
    SetData {
        /// Its path.
        path: String,
        /// The version after the write.
        version: i32,
    },
    /// A node's ACL was set.
    SetAcl {
        /// Its path.
        path: String,
    },
    /// A version check passed.
    Check {
        /// Its path.
        path: String,
    },
    /// A transaction applied atomically.
    Multi(Vec<TxnOp>),
    /// A write that failed: it still took a zxid, as on the real server.
    Error(ErrorCode),
}
