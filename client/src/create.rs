//! How to create a node: [`CreateOptions`], and the create request it makes.

use std::time::Duration;

use bytes::Bytes;

use zk_proto::consts::CreateMode;
use zk_proto::records::*;

/// How to create a node: its mode, ACL and time to live.
///
/// ```
/// use std::time::Duration;
/// # use zk_client::CreateOptions;
/// let lock = CreateOptions::ephemeral_sequential();
/// let cache = CreateOptions::ttl(Duration::from_secs(60));
/// # let _ = (lock, cache);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    mode: CreateMode,
    acl: Option<Vec<Acl>>,
    ttl: Option<Duration>,
    parents: bool,
}

impl CreateOptions {
    /// A node of `mode`, with the client's default ACL.
    pub fn new(mode: CreateMode) -> Self {
        CreateOptions {
            mode,
            acl: None,
            ttl: None,
            parents: false,
        }
    }

    /// A persistent node.
    pub fn persistent() -> Self {
        Self::new(CreateMode::Persistent)
    }

    /// A node that goes away with the session.
    pub fn ephemeral() -> Self {
        Self::new(CreateMode::Ephemeral)
    }

    /// A persistent node with a sequence number appended to its name.
    pub fn persistent_sequential() -> Self {
        Self::new(CreateMode::PersistentSequential)
    }

    /// An ephemeral node with a sequence number appended to its name.
    pub fn ephemeral_sequential() -> Self {
        Self::new(CreateMode::EphemeralSequential)
    }

    /// A container: the server deletes it once its last child is gone.
    pub fn container() -> Self {
        Self::new(CreateMode::Container)
    }

    /// A persistent node the server deletes when it has not changed for `ttl` and has no
    /// children (needs `extendedTypesEnabled=true` on the server).
    pub fn ttl(ttl: Duration) -> Self {
        CreateOptions {
            mode: CreateMode::PersistentWithTtl,
            acl: None,
            ttl: Some(ttl),
            parents: false,
        }
    }

    /// A sequential node with a time to live.
    pub fn sequential_ttl(ttl: Duration) -> Self {
        CreateOptions {
            mode: CreateMode::PersistentSequentialWithTtl,
            acl: None,
            ttl: Some(ttl),
            parents: false,
        }
    }

    /// Uses `acl` instead of the client's default ACL.
    pub fn with_acl(mut self, acl: Vec<Acl>) -> Self {
        self.acl = Some(acl);
        self
    }

    /// Creates the missing parents too, as persistent nodes with the node's ACL, whatever
    /// the node's own mode (Kazoo's `create(..., makepath=True)`, Curator's
    /// `creatingParentsIfNeeded`). The create is tried first, so a node whose parent
    /// exists costs one round trip; a parent that appears meanwhile is fine.
    ///
    /// Not in a transaction, which cannot make what it depends on: there the commit fails
    /// with [`Error::InvalidRequest`](crate::Error::InvalidRequest) and sends nothing.
    ///
    /// ```
    /// # use zk_client::CreateOptions;
    /// let worker = CreateOptions::ephemeral_sequential().with_parents();
    /// assert!(worker.makes_parents());
    /// ```
    pub fn with_parents(mut self) -> Self {
        self.parents = true;
        self
    }

    /// Whether the create makes its missing parents ([`CreateOptions::with_parents`]).
    pub fn makes_parents(&self) -> bool {
        self.parents
    }

    /// The create request for `path`: createTTL or createContainer when the mode says so,
    /// otherwise create (or create2 when `create2` is set). `default_acl` applies when no
    /// ACL was given.
    pub(crate) fn request(
        &self,
        path: &str,
        data: Bytes,
        default_acl: &[Acl],
        create2: bool,
    ) -> Request {
        let acl = self.acl.clone().unwrap_or_else(|| default_acl.to_vec());
        let flags = self.mode.as_i32();
        if self.mode.is_ttl() {
            let ttl = self
                .ttl
                .unwrap_or_default()
                .as_millis()
                .min(i64::MAX as u128) as i64;
            return Request::CreateTtl(CreateTtlRequest {
                path: path.into(),
                data,
                acl,
                flags,
                ttl,
            });
        }
        let r = CreateRequest {
            path: path.into(),
            data,
            acl,
            flags,
        };
        if self.mode.is_container() {
            Request::CreateContainer(r)
        } else if create2 {
            Request::Create2(r)
        } else {
            Request::Create(r)
        }
    }

    /// The same create as an operation of a transaction.
    pub(crate) fn multi_op(&self, path: &str, data: Bytes, default_acl: &[Acl]) -> MultiOp {
        match self.request(path, data, default_acl, false) {
            Request::CreateTtl(r) => MultiOp::CreateTtl(r),
            Request::CreateContainer(r) => MultiOp::CreateContainer(r),
            Request::Create(r) | Request::Create2(r) => MultiOp::Create(r),
            other => unreachable!("request() only builds create requests, not {other:?}"),
        }
    }
}
