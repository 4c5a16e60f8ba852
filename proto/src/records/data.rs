//! Records shared by many operations: `Stat`, `Id`, `ACL` and `ClientInfo`.

use crate::consts::perms;

record! {
    /// A node's metadata, returned by most operations (68 bytes on the wire).
    #[derive(Copy, Hash)]
    pub struct Stat {
        /// The zxid of the change that created the node.
        czxid: i64,
        /// The zxid of the change that last modified the node's data.
        mzxid: i64,
        /// Creation time, milliseconds since the epoch.
        ctime: i64,
        /// Last modification time, milliseconds since the epoch.
        mtime: i64,
        /// Number of changes to the data.
        version: i32,
        /// Number of changes to the children.
        cversion: i32,
        /// Number of changes to the ACL.
        aversion: i32,
        /// The session id of the owner if the node is ephemeral, otherwise 0.
        ephemeral_owner: i64,
        /// Length of the data.
        data_length: i32,
        /// Number of children.
        num_children: i32,
        /// The zxid of the change that last modified the children.
        pzxid: i64,
    }
}

record! {
    /// An identity: a scheme and an id within it (`world:anyone`, `digest:user:hash`, `ip:10.0.0.1`).
    #[derive(Hash)]
    pub struct Id {
        /// The authentication scheme.
        scheme: String,
        /// The identity within the scheme.
        id: String,
    }
}

record! {
    /// One ACL entry: permission bits granted to an identity.
    #[derive(Hash)]
    pub struct Acl {
        /// Permission bits, see [`crate::consts::perms`].
        perms: i32,
        /// Who they are granted to.
        id: Id,
    }
}

record! {
    /// One identity the server associates with the session (the `whoAmI` reply).
    pub struct ClientInfo {
        /// The authentication scheme.
        auth_scheme: String,
        /// The user name or other id (for example the client's IP address).
        user: String,
    }
}

impl Id {
    /// An identity from a scheme and an id.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Self {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    /// `world:anyone`, everybody.
    pub fn anyone() -> Self {
        Id::new("world", "anyone")
    }

    /// `auth:`, whoever the creating session authenticated as.
    pub fn authenticated() -> Self {
        Id::new("auth", "")
    }
}

impl Acl {
    /// An ACL entry granting `perms` to `id`.
    pub fn new(perms: i32, id: Id) -> Self {
        Acl { perms, id }
    }

    /// Everything for everybody (`OPEN_ACL_UNSAFE`).
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(perms::ALL, Id::anyone())]
    }

    /// Everything for the creator's authenticated identities (`CREATOR_ALL_ACL`); the
    /// session must have added credentials first.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(perms::ALL, Id::authenticated())]
    }

    /// Read-only for everybody (`READ_ACL_UNSAFE`).
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(perms::READ, Id::anyone())]
    }
}
