//! Every operation of the client API, defined once for every driver: the request it
//! submits and how its completion becomes the typed result. A driver only moves the request
//! to a session and the completion back ([`Op::decode`]).

use std::marker::PhantomData;

use bytes::Bytes;

use super::{CreateOptions, MultiBuilder, ReadOp, ReadResult, Result, multi_read_request, reply};
use zk_proto::consts::{AddWatchMode, WatcherType};
use zk_proto::records::*;
use zk_proto::session;

/// What a request completed with in the session.
pub type Reply = std::result::Result<Response, session::Error>;

/// One client operation: the request to submit, and how its reply becomes a `T`.
///
/// ```
/// use zk_client::op;
/// use zk_proto::records::{Request, Response};
///
/// let get = op::get_data("/config", false);
/// assert!(matches!(get.request(), Request::GetData(r) if r.path == "/config"));
/// // What the session completed the request with becomes the typed result:
/// # let reply = Err(zk_proto::session::Error::Server(zk_proto::ErrorCode::NoNode));
/// let typed: zk_client::Result<(bytes::Bytes, zk_proto::Stat)> = get.decode(reply);
/// assert!(typed.is_err());
/// ```
#[must_use = "an operation does nothing until a driver submits its request"]
pub struct Op<T> {
    request: Request,
    decode: fn(Reply) -> Result<T>,
    /// A create that makes its missing parents: run as [`Op::into_plan`].
    parents: bool,
    _out: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Op<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op")
            .field("request", &self.request)
            .finish()
    }
}

impl<T> Op<T> {
    /// An operation from its request and its reply decoder.
    pub fn new(request: Request, decode: fn(Reply) -> Result<T>) -> Self {
        Op {
            request,
            decode,
            parents: false,
            _out: PhantomData,
        }
    }

    /// A create made with [`CreateOptions::with_parents`]: it takes more than one request
    /// when parents are missing, so a driver runs it as [`Op::into_plan`].
    pub fn makes_parents(&self) -> bool {
        self.parents
    }

    /// The operation as a [`Plan`](crate::plan::Plan): its one request, or, for a create
    /// that makes its parents, the create and each missing parent
    /// ([`CreateParents`](crate::plan::CreateParents)).
    pub fn into_plan(self) -> crate::plan::CreateParents<T> {
        crate::plan::CreateParents::new(self.request, self.decode, self.parents)
    }

    /// The request to submit.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The request to submit, and the decoder of its reply.
    pub fn into_parts(self) -> (Request, fn(Reply) -> Result<T>) {
        (self.request, self.decode)
    }

    /// The typed result of a reply; a server's error names the request's path.
    pub fn decode(&self, reply: Reply) -> Result<T> {
        (self.decode)(reply).map_err(|e| match self.request.path() {
            Some(path) => e.at_path(path),
            None => e,
        })
    }
}

/// Creates a node (createTTL or createContainer when the mode says so) and returns its path.
/// `default_acl` is the ACL used when `options` names none (the clients pass their own
/// default, `Acl::open_unsafe()` unless configured).
pub fn create(path: &str, data: Bytes, options: &CreateOptions, default_acl: &[Acl]) -> Op<String> {
    let mut op = Op::new(
        options.request(path, data, default_acl, false),
        reply::created,
    );
    op.parents = options.makes_parents();
    op
}

/// Creates a node and returns its path and Stat (`create2`); `default_acl` as for
/// [`create`].
pub fn create2(
    path: &str,
    data: Bytes,
    options: &CreateOptions,
    default_acl: &[Acl],
) -> Op<(String, Stat)> {
    let mut op = Op::new(
        options.request(path, data, default_acl, true),
        reply::created2,
    );
    op.parents = options.makes_parents();
    op
}

/// Deletes a node at `version` (`None`: any).
pub fn delete(path: &str, version: Option<i32>) -> Op<()> {
    Op::new(
        Request::Delete(DeleteRequest {
            path: path.into(),
            version: version.unwrap_or(-1),
        }),
        reply::done,
    )
}

/// The node's Stat, `None` when it does not exist; with `watch`, a watch for its creation,
/// change or deletion.
pub fn exists(path: &str, watch: bool) -> Op<Option<Stat>> {
    Op::new(
        Request::Exists(ExistsRequest {
            path: path.into(),
            watch,
        }),
        reply::stat_or_none,
    )
}

/// The node's data and Stat; with `watch`, a watch for its change or deletion.
pub fn get_data(path: &str, watch: bool) -> Op<(Bytes, Stat)> {
    Op::new(
        Request::GetData(GetDataRequest {
            path: path.into(),
            watch,
        }),
        reply::data,
    )
}

/// Writes the node's data at `version` (`None`: any).
pub fn set_data(path: &str, data: Bytes, version: Option<i32>) -> Op<Stat> {
    Op::new(
        Request::SetData(SetDataRequest {
            path: path.into(),
            data,
            version: version.unwrap_or(-1),
        }),
        reply::stat,
    )
}

/// The node's children's names.
pub fn get_children(path: &str) -> Op<Vec<String>> {
    Op::new(
        Request::GetChildren(GetChildrenRequest {
            path: path.into(),
            watch: false,
        }),
        reply::children,
    )
}

/// The node's children's names and Stat; with `watch`, a watch for a change of its
/// children or its deletion.
pub fn get_children2(path: &str, watch: bool) -> Op<(Vec<String>, Stat)> {
    Op::new(
        Request::GetChildren2(GetChildrenRequest {
            path: path.into(),
            watch,
        }),
        reply::children2,
    )
}

/// How many descendants the node has.
pub fn get_all_children_number(path: &str) -> Op<i32> {
    Op::new(
        Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: path.into() }),
        reply::count,
    )
}

/// The paths of the session's ephemeral nodes under `prefix`.
pub fn get_ephemerals(prefix: &str) -> Op<Vec<String>> {
    Op::new(
        Request::GetEphemerals(GetEphemeralsRequest {
            prefix_path: prefix.into(),
        }),
        reply::ephemerals,
    )
}

/// The node's ACL and Stat.
pub fn get_acl(path: &str) -> Op<(Vec<Acl>, Stat)> {
    Op::new(
        Request::GetAcl(GetAclRequest { path: path.into() }),
        reply::acl,
    )
}

/// Replaces the node's ACL at ACL version `version` (`None`: any).
pub fn set_acl(path: &str, acl: Vec<Acl>, version: Option<i32>) -> Op<Stat> {
    Op::new(
        Request::SetAcl(SetAclRequest {
            path: path.into(),
            acl,
            version: version.unwrap_or(-1),
        }),
        reply::stat,
    )
}

/// Waits until the server has caught up with the leader for `path`.
pub fn sync(path: &str) -> Op<String> {
    Op::new(
        Request::Sync(SyncRequest { path: path.into() }),
        reply::synced,
    )
}

/// Applies the operations all together or not at all (`multi`).
pub fn transaction(ops: MultiBuilder) -> Op<Vec<OpResult>> {
    Op::new(ops.request(), reply::transaction)
}

/// Several reads in one round trip (`multiRead`), each succeeding or failing on its own.
pub fn multi_read(ops: &[ReadOp]) -> Op<Vec<ReadResult>> {
    Op::new(multi_read_request(ops), reply::reads)
}

/// The identities the server holds for the session (`whoAmI`).
pub fn whoami() -> Op<Vec<ClientInfo>> {
    Op::new(Request::WhoAmI, reply::who)
}

/// The ensemble's configuration (`/zookeeper/config`, outside any chroot); with `watch`, a
/// watch for its change.
pub fn get_config(watch: bool) -> Op<(Bytes, Stat)> {
    Op::new(Request::GetConfig { watch }, reply::data)
}

/// Changes the ensemble's membership (needs `reconfigEnabled=true` on the servers and an
/// authorized session); returns the new configuration and its Stat.
pub fn reconfig(change: &super::Reconfig) -> Op<(Bytes, Stat)> {
    Op::new(Request::Reconfig(change.request()), reply::data)
}

/// A persistent (or persistent recursive) watch on `path`.
pub fn add_watch(path: &str, mode: AddWatchMode) -> Op<()> {
    Op::new(
        Request::AddWatch(AddWatchRequest {
            path: path.into(),
            mode: mode.as_i32(),
        }),
        reply::done,
    )
}

/// Removes the session's watches of `kind` on `path`.
pub fn remove_watches(path: &str, kind: WatcherType) -> Op<()> {
    Op::new(
        Request::RemoveWatches(RemoveWatchesRequest {
            path: path.into(),
            kind: kind.as_i32(),
        }),
        reply::done,
    )
}

/// Checks that the server holds a watch of `kind` on `path` for the session.
pub fn check_watches(path: &str, kind: WatcherType) -> Op<()> {
    Op::new(
        Request::CheckWatches(CheckWatchesRequest {
            path: path.into(),
            kind: kind.as_i32(),
        }),
        reply::done,
    )
}

/// The paths `create_all` creates, parents first: every proper prefix of `path` that is a
/// node path, then `path` itself.
///
/// ```
/// let steps: Vec<&str> = zk_client::op::create_all_steps("/a/b/c").collect();
/// assert_eq!(steps, ["/a", "/a/b", "/a/b/c"]);
/// ```
pub fn create_all_steps(path: &str) -> impl Iterator<Item = &str> {
    path.char_indices()
        .skip(1)
        .filter(|(_, c)| *c == '/')
        .map(|(i, _)| &path[..i])
        .chain(std::iter::once(path))
}

/// Lists, once, every operation a client offers without a watch: its docs, its name and
/// arguments, its result, and how it is built ([`Op`] builders of this module).
/// `for_each_operation!([path::of::a_macro] [tokens])` calls that macro with the tokens and
/// then the list; [`client_calls!`](crate::client_calls) writes the methods from it in a
/// driver's calling convention (async, blocking). `[acl, at]` names the binding of the
/// client's default ACL and gives the path the call is on (an `Option<&str>`), which its
/// errors name ([`Error::at_path`](crate::Error::at_path)).
#[doc(hidden)]
#[macro_export]
macro_rules! for_each_operation {
    ([$($emit:tt)*] [$($pre:tt)*]) => {
        $($emit)*! {
            $($pre)*
            /// Creates a node and returns its path (with the sequence number for sequential
            /// nodes).
            create(
                path: &str,
                data: impl Into<$crate::__bytes::Bytes>,
                options: &$crate::CreateOptions
            ) -> String [acl, Some(path)] $crate::op::create(path, data.into(), options, acl);
            /// Creates a node and returns its path and Stat (`create2`).
            create2(
                path: &str,
                data: impl Into<$crate::__bytes::Bytes>,
                options: &$crate::CreateOptions
            ) -> (String, $crate::__proto::Stat) [acl, Some(path)] $crate::op::create2(path, data.into(), options, acl);
            /// Deletes a node if its version matches (`None`: any version).
            delete(path: &str, version: Option<i32>) -> () [acl, Some(path)] $crate::op::delete(path, version);
            /// The node's Stat, or `None` when it does not exist.
            exists(path: &str) -> Option<$crate::__proto::Stat> [acl, Some(path)] $crate::op::exists(path, false);
            /// The node's data and Stat.
            get_data(path: &str) -> ($crate::__bytes::Bytes, $crate::__proto::Stat) [acl, Some(path)] $crate::op::get_data(path, false);
            /// Writes the node's data if its version matches (`None`: any version).
            set_data(
                path: &str,
                data: impl Into<$crate::__bytes::Bytes>,
                version: Option<i32>
            ) -> $crate::__proto::Stat [acl, Some(path)] $crate::op::set_data(path, data.into(), version);
            /// The names of the node's children.
            get_children(path: &str) -> Vec<String> [acl, Some(path)] $crate::op::get_children(path);
            /// The names of the node's children and its Stat (`getChildren2`).
            get_children2(path: &str) -> (Vec<String>, $crate::__proto::Stat) [acl, Some(path)] $crate::op::get_children2(path, false);
            /// The number of descendants of the node.
            get_all_children_number(path: &str) -> i32 [acl, Some(path)] $crate::op::get_all_children_number(path);
            /// The paths of this session's ephemeral nodes under `prefix` (`"/"` for all).
            get_ephemerals(prefix: &str) -> Vec<String> [acl, None] $crate::op::get_ephemerals(prefix);
            /// The node's ACL and Stat.
            get_acl(path: &str) -> (Vec<$crate::__proto::records::Acl>, $crate::__proto::Stat) [acl, Some(path)] $crate::op::get_acl(path);
            /// Replaces the node's ACL if its ACL version matches (`None`: any version).
            set_acl(
                path: &str,
                new_acl: Vec<$crate::__proto::records::Acl>,
                version: Option<i32>
            ) -> $crate::__proto::Stat [acl, Some(path)] $crate::op::set_acl(path, new_acl, version);
            /// Waits until the server this client reads from has caught up with the leader
            /// for `path`.
            sync(path: &str) -> String [acl, Some(path)] $crate::op::sync(path);
            /// Reads several nodes in one round trip (`multiRead`); each read succeeds or
            /// fails on its own.
            multi_read(ops: &[$crate::ReadOp]) -> Vec<$crate::ReadResult> [acl, None] $crate::op::multi_read(ops);
            /// Who the server thinks this session is (`whoAmI`).
            whoami() -> Vec<$crate::__proto::records::ClientInfo> [acl, None] $crate::op::whoami();
            /// The ensemble's configuration (`/zookeeper/config`, outside any chroot).
            get_config() -> ($crate::__bytes::Bytes, $crate::__proto::Stat) [acl, None] $crate::op::get_config(false);
            /// Changes the ensemble's membership, incrementally or as a whole
            /// ([`Reconfig`](zk_client::Reconfig)); returns the new configuration
            /// (readable with `zk_proto::ensemble::EnsembleConfig`) and its Stat. The servers
            /// need `reconfigEnabled=true`, and the session the right to change
            /// `/zookeeper/config` (a super user, or `skipACL`).
            reconfig(change: &$crate::Reconfig) -> ($crate::__bytes::Bytes, $crate::__proto::Stat) [acl, None] $crate::op::reconfig(change);
            /// Removes this session's watches of `kind` on `path`, on the server and here;
            /// their watchers get a final "removed" event. Servers before 3.9 know only
            /// `Children`, `Data` and `Any`.
            remove_watches(path: &str, kind: $crate::__proto::consts::WatcherType) -> () [acl, Some(path)] $crate::op::remove_watches(path, kind);
            /// Checks that the server holds a watch of `kind` on `path` for this session
            /// (`NoWatcher` otherwise).
            check_watches(path: &str, kind: $crate::__proto::consts::WatcherType) -> () [acl, Some(path)] $crate::op::check_watches(path, kind);
        }
    };
}
