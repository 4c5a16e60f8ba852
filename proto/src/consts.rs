//! The protocol's numbers: opcodes, special xids, create modes, permissions, watch kinds,
//! event types and keeper states, with the values of the ZooKeeper sources (`ZooDefs`,
//! `CreateMode`, `Watcher`).

macro_rules! int_enum {
    (
        $(#[$m:meta])*
        pub enum $name:ident { $( $(#[$vm:meta])* $v:ident = $n:expr ),* $(,)? }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum $name { $( $(#[$vm])* $v = $n ),* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),*];

            /// The value with this wire number, if there is one.
            pub fn from_i32(n: i32) -> Option<Self> {
                match n {
                    $( $n => Some($name::$v), )*
                    _ => None,
                }
            }

            /// The wire number.
            pub fn as_i32(self) -> i32 {
                self as i32
            }
        }
    };
}

int_enum! {
    /// Operation codes (`ZooDefs.OpCode`), the `type` of a request header.
    pub enum OpCode {
        /// Watch notification (never sent by a client).
        Notification = 0,
        /// Create a node, reply with its path.
        Create = 1,
        /// Delete a node.
        Delete = 2,
        /// Stat a node.
        Exists = 3,
        /// Read a node's data.
        GetData = 4,
        /// Write a node's data.
        SetData = 5,
        /// Read a node's ACL.
        GetAcl = 6,
        /// Write a node's ACL.
        SetAcl = 7,
        /// List a node's children.
        GetChildren = 8,
        /// Sync the server with the leader.
        Sync = 9,
        /// Keep the session alive.
        Ping = 11,
        /// List children with the parent's Stat.
        GetChildren2 = 12,
        /// Version check (in multi).
        Check = 13,
        /// Atomic transaction.
        Multi = 14,
        /// Create a node, reply with its path and Stat.
        Create2 = 15,
        /// Change the ensemble membership.
        Reconfig = 16,
        /// Ask whether a watch is set.
        CheckWatches = 17,
        /// Remove watches.
        RemoveWatches = 18,
        /// Create a container node.
        CreateContainer = 19,
        /// Delete a container node (server-internal).
        DeleteContainer = 20,
        /// Create a node with a time to live.
        CreateTtl = 21,
        /// Several reads in one request.
        MultiRead = 22,
        /// Add authentication credentials.
        Auth = 100,
        /// Re-register watches after a reconnect.
        SetWatches = 101,
        /// SASL token exchange.
        Sasl = 102,
        /// List the session's ephemeral nodes.
        GetEphemerals = 103,
        /// Count all descendants of a node.
        GetAllChildrenNumber = 104,
        /// Re-register watches, persistent ones included.
        SetWatches2 = 105,
        /// Add a persistent or persistent recursive watch.
        AddWatch = 106,
        /// Ask the server which identities the session has.
        WhoAmI = 107,
        /// Session creation (server-internal).
        CreateSession = -10,
        /// Close the session.
        CloseSession = -11,
        /// Error marker in multi results.
        Error = -1,
    }
}

/// Special xids: replies carrying them are not matched against the pending queue in order.
pub mod xid {
    /// A watch notification.
    pub const NOTIFICATION: i32 = -1;
    /// A ping and its reply.
    pub const PING: i32 = -2;
    /// An auth packet and its reply.
    pub const AUTH: i32 = -4;
    /// SetWatches / SetWatches2 and their replies.
    pub const SET_WATCHES: i32 = -8;
}

int_enum! {
    /// How a node is created (`CreateMode`); the value is the `flags` field of a create request.
    pub enum CreateMode {
        /// A node that stays until deleted.
        Persistent = 0,
        /// A node deleted when the session that created it ends.
        Ephemeral = 1,
        /// A persistent node whose name gets a 10-digit increasing suffix.
        PersistentSequential = 2,
        /// An ephemeral node whose name gets a 10-digit increasing suffix.
        EphemeralSequential = 3,
        /// A node the server deletes once its last child is gone.
        Container = 4,
        /// A persistent node the server deletes when it has had no children and no changes
        /// for its time to live (needs `zookeeper.extendedTypesEnabled=true` on the server).
        PersistentWithTtl = 5,
        /// A sequential node with a time to live.
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    /// The node is deleted when its session ends.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// The server appends a sequence number to the name.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// A container node.
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }

    /// A node with a time to live.
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

/// ACL permission bits (`ZooDefs.Perms`).
pub mod perms {
    /// Read data and list children.
    pub const READ: i32 = 1;
    /// Write data.
    pub const WRITE: i32 = 2;
    /// Create children.
    pub const CREATE: i32 = 4;
    /// Delete children.
    pub const DELETE: i32 = 8;
    /// Change the ACL.
    pub const ADMIN: i32 = 16;
    /// Every permission.
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

int_enum! {
    /// The kind of watch `addWatch` sets (`AddWatchMode`).
    pub enum AddWatchMode {
        /// Fires on every change to the node itself (data, children, creation, deletion)
        /// and stays set.
        Persistent = 0,
        /// Fires on every change to the node and every descendant (not child-list changes)
        /// and stays set.
        PersistentRecursive = 1,
    }
}

int_enum! {
    /// Which watches `checkWatches` / `removeWatches` address (`Watcher.WatcherType`).
    pub enum WatcherType {
        /// Child watches.
        Children = 1,
        /// Data and exist watches.
        Data = 2,
        /// Every kind.
        Any = 3,
        /// Persistent watches.
        Persistent = 4,
        /// Persistent recursive watches.
        PersistentRecursive = 5,
    }
}

int_enum! {
    /// What a watch notification reports (`Watcher.Event.EventType`).
    pub enum EventType {
        /// A session state change, not a node change.
        None = -1,
        /// The node was created.
        NodeCreated = 1,
        /// The node was deleted.
        NodeDeleted = 2,
        /// The node's data changed.
        NodeDataChanged = 3,
        /// The node's list of children changed.
        NodeChildrenChanged = 4,
        /// A data watch was removed.
        DataWatchRemoved = 5,
        /// A child watch was removed.
        ChildWatchRemoved = 6,
        /// A persistent watch was removed.
        PersistentWatchRemoved = 7,
    }
}

int_enum! {
    /// The session state carried by a watch notification (`Watcher.Event.KeeperState`).
    pub enum KeeperState {
        /// Deprecated, unused.
        Unknown = -1,
        /// Disconnected from the server.
        Disconnected = 0,
        /// Deprecated, unused.
        NoSyncConnected = 1,
        /// Connected to a server that is part of a quorum.
        SyncConnected = 3,
        /// Authentication failed.
        AuthFailed = 4,
        /// Connected to a read-only server.
        ConnectedReadOnly = 5,
        /// SASL authentication succeeded.
        SaslAuthenticated = 6,
        /// The client closed the session.
        Closed = 7,
        /// The session expired.
        Expired = -112,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for op in OpCode::ALL {
            assert_eq!(OpCode::from_i32(op.as_i32()), Some(*op));
        }
        for m in CreateMode::ALL {
            assert_eq!(CreateMode::from_i32(m.as_i32()), Some(*m));
        }
        assert_eq!(OpCode::from_i32(10), None);
        assert_eq!(KeeperState::from_i32(-112), Some(KeeperState::Expired));
        assert_eq!(perms::ALL, 31);
    }
}
