//! Request and response records of the single-node operations.

use bytes::Bytes;

use super::ClientInfo;
use super::data::{Acl, Stat};

record! {
    /// Creates a node (opcodes create, create2, createContainer).
    pub struct CreateRequest {
        /// The node path (for sequential nodes, the prefix of the name).
        path: String [path],
        /// The initial data.
        data: Bytes,
        /// The node's ACL.
        acl: Vec<Acl>,
        /// The create mode, see [`crate::consts::CreateMode`].
        flags: i32,
    }
}

record! {
    /// Creates a node with a time to live (opcode createTTL).
    pub struct CreateTtlRequest {
        /// The node path.
        path: String [path],
        /// The initial data.
        data: Bytes,
        /// The node's ACL.
        acl: Vec<Acl>,
        /// The create mode, see [`crate::consts::CreateMode`].
        flags: i32,
        /// Time to live in milliseconds.
        ttl: i64,
    }
}

record! {
    /// The path of the created node (with the sequence number if sequential).
    pub struct CreateResponse {
        /// The created path.
        path: String,
    }
}

record! {
    /// The path and Stat of the created node.
    pub struct Create2Response {
        /// The created path.
        path: String,
        /// The new node's Stat.
        stat: Stat,
    }
}

record! {
    /// Deletes a node.
    pub struct DeleteRequest {
        /// The node path.
        path: String [path],
        /// The expected version, -1 for any.
        version: i32,
    }
}

record! {
    /// Stats a node, optionally leaving a watch.
    pub struct ExistsRequest {
        /// The node path.
        path: String [path],
        /// Leave a data watch (or an exist watch if the node is missing).
        watch: bool,
    }
}

record! {
    /// Reads a node's data, optionally leaving a data watch.
    pub struct GetDataRequest {
        /// The node path.
        path: String [path],
        /// Leave a data watch.
        watch: bool,
    }
}

record! {
    /// A node's data and Stat.
    pub struct GetDataResponse {
        /// The data.
        data: Bytes,
        /// The Stat.
        stat: Stat,
    }
}

record! {
    /// Writes a node's data.
    pub struct SetDataRequest {
        /// The node path.
        path: String [path],
        /// The new data.
        data: Bytes,
        /// The expected version, -1 for any.
        version: i32,
    }
}

record! {
    /// Reads a node's ACL.
    pub struct GetAclRequest {
        /// The node path.
        path: String [path],
    }
}

record! {
    /// A node's ACL and Stat.
    pub struct GetAclResponse {
        /// The ACL.
        acl: Vec<Acl>,
        /// The Stat.
        stat: Stat,
    }
}

record! {
    /// Replaces a node's ACL.
    pub struct SetAclRequest {
        /// The node path.
        path: String [path],
        /// The new ACL.
        acl: Vec<Acl>,
        /// The expected ACL version (aversion), -1 for any.
        version: i32,
    }
}

record! {
    /// Lists a node's children, optionally leaving a child watch (getChildren and getChildren2).
    pub struct GetChildrenRequest {
        /// The node path.
        path: String [path],
        /// Leave a child watch.
        watch: bool,
    }
}

record! {
    /// The names of a node's children.
    pub struct GetChildrenResponse {
        /// Child names (not full paths).
        children: Vec<String>,
    }
}

record! {
    /// The names of a node's children and the node's Stat.
    pub struct GetChildren2Response {
        /// Child names.
        children: Vec<String>,
        /// The parent's Stat.
        stat: Stat,
    }
}

record! {
    /// Counts every descendant of a node.
    pub struct GetAllChildrenNumberRequest {
        /// The node path.
        path: String [path],
    }
}

record! {
    /// The number of descendants.
    pub struct GetAllChildrenNumberResponse {
        /// The count.
        total_number: i32,
    }
}

record! {
    /// Lists the session's ephemeral nodes under a path.
    pub struct GetEphemeralsRequest {
        /// Only nodes whose path starts with this ("/" for all).
        prefix_path: String [path],
    }
}

record! {
    /// The session's ephemeral nodes.
    pub struct GetEphemeralsResponse {
        /// Full paths.
        ephemerals: Vec<String>,
    }
}

record! {
    /// Makes the server catch up with the leader before answering.
    pub struct SyncRequest {
        /// The node path.
        path: String [path],
    }
}

record! {
    /// The synced path.
    pub struct SyncResponse {
        /// The path.
        path: String,
    }
}

record! {
    /// Fails the enclosing multi unless the node has this version.
    pub struct CheckVersionRequest {
        /// The node path.
        path: String [path],
        /// The expected version, -1 for any (then it only checks existence).
        version: i32,
    }
}

record! {
    /// Changes the ensemble membership (needs `reconfigEnabled=true` on the servers).
    pub struct ReconfigRequest {
        /// Servers to add, comma separated (`server.4=host:2888:3888;2181`), or null.
        joining_servers: Option<String>,
        /// Server ids to remove, comma separated, or null.
        leaving_servers: Option<String>,
        /// A whole new membership, or null for an incremental change.
        new_members: Option<String>,
        /// The configuration version this change expects, -1 for any.
        cur_config_id: i64,
    }
}

record! {
    /// The identities the server associates with the session.
    pub struct WhoAmIResponse {
        /// One entry per identity.
        client_info: Vec<ClientInfo>,
    }
}

record! {
    /// A status code: an error result inside a multi response, or the body of an addWatch
    /// reply.
    pub struct ErrorResponse {
        /// The code.
        err: i32,
    }
}

/// The path `getConfig` reads, outside any chroot.
pub const CONFIG_NODE: &str = "/zookeeper/config";
