//! A lock, exclusive or either side of a read/write lock, as a sans-IO state machine.
//!
//! Each contender creates an ephemeral sequential node `<dir>/<id>__lock__<sequence>` (Kazoo's
//! layout; `__rlock__` for a reader) or `<dir>/_c_<uuid>-lock-<sequence>` (Curator's
//! `InterProcessMutex`; `__READ__` and `__WRIT__` for its read/write lock), see
//! [`Flavor`] and [`Kind`]. A writer or exclusive contender holds the lock while its node
//! has the lowest sequence number; a reader while no writer's node is lower. Otherwise it
//! watches the one node it waits for (the node just before its own; for a reader, the
//! last writer before it), so a release wakes only those it concerns. Contenders are
//! ordered by their sequence number alone, as both libraries order them.
//!
//! The faults a lock must survive are handled here, once:
//!
//! - **A lost create reply.** The node's name carries this machine's unique id, fixed
//!   before the first create is sent. After a ConnectionLoss the machine lists the
//!   directory and adopts the node with its id; it creates again only after a listing that
//!   succeeded and did not show one, so it never waits behind a node of its own.
//! - **Cancellation at any point.** [`Lock::release`] works in every phase: a create in
//!   flight is followed to its end and its node deleted; a lost one is looked up first.
//! - **Cleanup.** The delete of the lock node is sent again after every ConnectionLoss or
//!   timeout, until the server answers OK or NoNode, or the session that owned the
//!   ephemeral node is gone. [`Outcome::Released`] means the server confirmed it.
//! - **Suspension.** A holder whose connection is lost hears [`Outcome::Suspended`]: the
//!   server may expire the session, and promote the next contender, before this client
//!   learns it. Stop using the protected resource until [`Outcome::Resumed`] (same session,
//!   the node is still there) or give the lock up. That is the default
//!   [`ConnectionPolicy`]; the others end the lock at once, or only with the session. [`Outcome::Acquired`] carries a fencing
//!   token (the node's sequence number, larger for every later holder of the same lock) for
//!   a resource that can refuse stale holders.
//! - **Deadlines** are checked against the time passed to [`Lock::handle_timeout`], whether
//!   or not a server is reachable.
//!
//! A driver submits each [`Output::Submit`] on its session, remembers the request id with
//! the tag, and hands back the completion ([`Lock::handle_reply`]), the events of a watch
//! that request left ([`Lock::handle_watch`]), every application-view change
//! ([`Lock::handle_state`]) and the time ([`Lock::handle_timeout`] at
//! [`Lock::poll_timeout`]). Here the replies are written by hand:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use zk_proto::records::{Acl, Create2Response, GetChildrenResponse, Request, Response};
//! use zk_proto::Stat;
//! use zk_recipes::Recipe;
//! use zk_recipes::lock::{Lock, Outcome, Output};
//!
//! let now = Instant::now();
//! let mut lock = Lock::new("/locks/report", "7f3a9c", Acl::open_unsafe());
//! lock.acquire(now, 0x1234, Some(now + Duration::from_secs(5)));
//!
//! let Some(Output::Submit(create, Request::Create2(r))) = lock.poll_output() else { panic!() };
//! assert_eq!(r.path, "/locks/report/7f3a9c-1__lock__");
//! let path = "/locks/report/7f3a9c-1__lock__0000000000".to_string();
//! let reply = Response::Create2(Create2Response { path, stat: Stat::default() });
//! lock.handle_reply(now, create, Ok(reply));
//!
//! let Some(Output::Submit(list, Request::GetChildren(_))) = lock.poll_output() else { panic!() };
//! let children = vec!["7f3a9c-1__lock__0000000000".to_string()];
//! lock.handle_reply(now, list, Ok(Response::GetChildren(GetChildrenResponse { children })));
//!
//! let Some(Output::Outcome(Outcome::Acquired { fencing, .. })) = lock.poll_output() else {
//!     panic!()
//! };
//! assert_eq!(fencing, 0);
//! assert!(lock.is_held());
//! ```

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use zk_proto::ErrorCode;
use zk_proto::consts::CreateMode;
use zk_proto::records::*;
use zk_proto::session::{AppState, Error as SessionError, WatchedEvent};

use crate::{Recipe, Tag, sequence_of};

/// What separates a Kazoo lock node's id from its sequence number (`Lock`, `WriteLock`).
pub const MARKER: &str = "__lock__";
/// What precedes the sequence number in a Curator `InterProcessMutex` node.
pub const CURATOR_MARKER: &str = "lock-";
/// Curator's `LeaderLatch` nodes.
pub const CURATOR_LATCH_MARKER: &str = "latch-";
/// Kazoo's `ReadLock` nodes.
pub const READ_MARKER: &str = "__rlock__";
/// Curator's `InterProcessReadWriteLock` read nodes.
pub const CURATOR_READ_MARKER: &str = "__READ__";
/// Curator's `InterProcessReadWriteLock` write nodes.
pub const CURATOR_WRITE_MARKER: &str = "__WRIT__";

/// Every marker a contender's name may carry before its sequence number, readers first.
const MARKERS: [&str; 6] = [
    READ_MARKER,
    CURATOR_READ_MARKER,
    MARKER,
    CURATOR_MARKER,
    CURATOR_WRITE_MARKER,
    CURATOR_LATCH_MARKER,
];

/// What a contender asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Kind {
    /// The lock alone (Kazoo's `Lock`, Curator's `InterProcessMutex`).
    #[default]
    Exclusive,
    /// Shared with other readers, after every writer that asked before (Kazoo's
    /// `ReadLock`, the read side of Curator's `InterProcessReadWriteLock`).
    Read,
    /// Alone, after everyone who asked before (Kazoo's `WriteLock`, the write side of
    /// Curator's `InterProcessReadWriteLock`).
    Write,
}

/// [`Kind`] under the name the clients export it by (`zk_tokio::recipes::LockKind`), so that
/// the handles' signatures read as a client's user names it.
pub type LockKind = Kind;

impl Kind {
    /// The marker of this kind's nodes in `flavor`'s layout.
    pub fn marker(self, flavor: Flavor) -> &'static str {
        match (flavor, self) {
            (Flavor::Kazoo, Kind::Read) => READ_MARKER,
            (Flavor::Kazoo, Kind::Exclusive | Kind::Write) => MARKER,
            (Flavor::Curator, Kind::Read) => CURATOR_READ_MARKER,
            (Flavor::Curator, Kind::Write) => CURATOR_WRITE_MARKER,
            (Flavor::Curator, Kind::Exclusive) => CURATOR_MARKER,
            (Flavor::CuratorLatch, _) => CURATOR_LATCH_MARKER,
        }
    }
}

/// Whether a contender's node is a reader's, in either layout.
pub fn is_reader(name: &str) -> bool {
    [READ_MARKER, CURATOR_READ_MARKER]
        .iter()
        .any(|m| sequence_of(name, m).is_some())
}

/// Something the lock machine has for its driver.
pub type Output = crate::Output<Outcome>;

/// Whose node names a lock uses. Contenders of both layouts are ordered alike, but each
/// library only recognises its own names, so every contender of one lock path must use the
/// layout of the library the others run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// Kazoo's `Lock` (and `WriteLock`): `<id>__lock__<sequence>`.
    #[default]
    Kazoo,
    /// Curator's `InterProcessMutex` (and so `LeaderSelector`) with its protected names:
    /// `_c_<uuid>-lock-<sequence>`, the uuid derived from the id and the create; for
    /// [`Kind::Read`] and [`Kind::Write`], `InterProcessReadWriteLock`'s `__READ__` and
    /// `__WRIT__`.
    Curator,
    /// Curator's `LeaderLatch`: `_c_<uuid>-latch-<sequence>`, for an election beside
    /// latches. Exclusive only.
    CuratorLatch,
}

/// What happened to the lock, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The lock is held.
    Acquired {
        /// The lock node's path.
        node: String,
        /// A number larger for every later holder of this lock (the node's sequence).
        fencing: i64,
    },
    /// The connection was lost while the lock was held: the session may expire and the
    /// lock pass to another client before this one hears of it. Stop relying on it.
    Suspended,
    /// The connection is back on the same session and the node is still there.
    Resumed,
    /// The session that held the lock is gone, and the lock with it.
    Lost,
    /// The deadline passed before the lock was acquired; the node is being removed and
    /// [`Outcome::Released`] follows once it is.
    TimedOut,
    /// After a release, a cancellation or a timeout: the server confirmed the node is gone
    /// (or it went with its session). Nothing of this machine is left on the server.
    Released,
    /// An error no retry can fix (no permission, a bad path, a closed session).
    Failed(SessionError),
    /// Another process asked this contender to let go (Curator's revocation: it wrote
    /// [`REVOKE_MESSAGE`] into this contender's node). Heard only by a lock made
    /// [revocable](Lock::revocable); nothing is released by itself: the holder decides.
    RevocationRequested,
}

/// What a process writes into a holder's lock node to ask it to let go: Curator's
/// `Revoker.attemptRevoke` writes these bytes, and its revocable locks listen for them.
pub const REVOKE_MESSAGE: &[u8] = b"__REVOKE__";

/// What a lost connection does to a held lock or leadership: Curator's
/// `ConnectionStateErrorPolicy`, with a third choice. While the connection is lost, the
/// server may expire the session and hand the lock to the next contender before this
/// client can know; each policy trades that risk against giving the lock up for nothing.
///
/// | Policy | While suspended | Same session back | Risk |
/// |---|---|---|---|
/// | [`SuspendedIsLost`](ConnectionPolicy::SuspendedIsLost) (default) | not held ([`Outcome::Suspended`]) | held again ([`Outcome::Resumed`]) | none in server time; work pauses for every blip |
/// | [`SuspendedEnds`](ConnectionPolicy::SuspendedEnds) | gone for good ([`Outcome::Lost`]), the node deleted once connected | still gone: acquire again | none; every blip costs the lock and a new acquisition |
/// | [`LostOnly`](ConnectionPolicy::LostOnly) | still held (no outcome) | still held | for up to a session timeout, this client and the next holder both believe they hold it |
///
/// The risk of [`LostOnly`](ConnectionPolicy::LostOnly) is the one guarded writes remove
/// for writes to ZooKeeper itself ([`crate::guarded`]): the server refuses them once the
/// node is gone, so a holder that keeps working through a blip cannot write over the next
/// holder. Work outside ZooKeeper needs the fencing token, or one of the other policies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ConnectionPolicy {
    /// A lost connection counts as a lost lock for as long as it lasts: not held while
    /// suspended, held again if the same session comes back (its node never left, so no
    /// one else held the lock meanwhile). Safe, and no lock is given up for a blip.
    #[default]
    SuspendedIsLost,
    /// A lost connection ends the lock, as Curator's standard policy does for a
    /// `LeaderSelector`: [`Outcome::Lost`] at once, and the node is deleted once the
    /// connection is back (retried until the server confirms it).
    SuspendedEnds,
    /// Only the end of the session ends the lock (Curator's
    /// `SessionConnectionStateErrorPolicy`): no [`Outcome::Suspended`], fewer false
    /// releases, and the risk in the table above.
    LostOnly,
}

/// What a lock is, before any machine runs it: its directory, whose node names it uses,
/// its ACL and the data each contender stores. Driver handles keep one and make a machine
/// of it per acquisition.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    dir: String,
    flavor: Flavor,
    kind: Kind,
    acl: Vec<Acl>,
    data: Bytes,
    policy: ConnectionPolicy,
    revocable: bool,
}

impl Options {
    /// A lock on `dir` with Kazoo's names, open to everyone, storing nothing.
    pub fn new(dir: &str) -> Options {
        Options {
            dir: dir.to_string(),
            flavor: Flavor::Kazoo,
            kind: Kind::Exclusive,
            acl: Acl::open_unsafe(),
            data: Bytes::new(),
            policy: ConnectionPolicy::default(),
            revocable: false,
        }
    }

    /// Names nodes as `flavor`'s library does.
    pub fn with_flavor(self, flavor: Flavor) -> Options {
        Options { flavor, ..self }
    }

    /// Asks for `kind`.
    pub fn with_kind(self, kind: Kind) -> Options {
        Options { kind, ..self }
    }

    /// The ACL of the directory and the nodes.
    pub fn with_acl(self, acl: Vec<Acl>) -> Options {
        Options { acl, ..self }
    }

    /// Data stored in each node (Kazoo's identifier).
    pub fn with_data(self, data: Bytes) -> Options {
        Options { data, ..self }
    }

    /// What a lost connection does to the lock once held.
    pub fn with_connection_policy(self, policy: ConnectionPolicy) -> Options {
        Options { policy, ..self }
    }

    /// Listens for revocation requests ([`Outcome::RevocationRequested`]).
    pub fn with_revocable(self, revocable: bool) -> Options {
        Options { revocable, ..self }
    }

    /// The lock's directory.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// A machine for one acquisition, with the unique `id` its nodes carry; an error for
    /// a directory that is not a valid path or is the root.
    pub fn machine(&self, id: &str) -> Result<Lock, SessionError> {
        zk_proto::path::validate_path(&self.dir)?;
        if self.dir == "/" {
            return Err(SessionError::InvalidRequest(
                "a lock needs a directory of its own, not /",
            ));
        }
        if self.flavor == Flavor::CuratorLatch && self.kind != Kind::Exclusive {
            return Err(SessionError::InvalidRequest(
                "Curator's latch names are for exclusive contenders only",
            ));
        }
        Ok(Lock::new(&self.dir, id, self.acl.clone())
            .with_flavor(self.flavor)
            .with_kind(self.kind)
            .with_data(self.data.clone())
            .with_connection_policy(self.policy)
            .revocable(self.revocable))
    }
}

/// Writes a driver's lock handle's builder methods (`with_flavor`, `with_identifier`,
/// `with_kind`, `with_acl`) over its `options: Options` field, so every driver offers the same ones.
#[macro_export]
macro_rules! lock_option_setters {
    () => {
        /// Names the lock's nodes as `flavor`'s library does: every contender of one path
        /// must use the same library's layout.
        pub fn with_flavor(mut self, flavor: $crate::lock::Flavor) -> Self {
            self.options = self.options.with_flavor(flavor);
            self
        }

        /// Data stored in this contender's node, as Kazoo's `identifier`.
        pub fn with_identifier(mut self, identifier: impl AsRef<[u8]>) -> Self {
            self.options = self
                .options
                .with_data($crate::__bytes::Bytes::copy_from_slice(identifier.as_ref()));
            self
        }

        /// Asks for `kind`: exclusive (the default), or one side of a read/write lock.
        pub fn with_kind(mut self, kind: $crate::lock::LockKind) -> Self {
            self.options = self.options.with_kind(kind);
            self
        }

        /// The ACL of the lock's directory and nodes.
        pub fn with_acl(mut self, acl: Vec<$crate::__proto::records::Acl>) -> Self {
            self.options = self.options.with_acl(acl);
            self
        }

        /// Listens for requests from other processes to let go (Curator's `makeRevocable`):
        /// a guard then reports [`Guard::revocation_requested`]($crate::handles::Guard::revocation_requested)
        /// once someone wrote Curator's revoke message into its node (Curator's `Revoker`, or
        /// [`revoke`](Self::revoke) here). Releasing is up to the holder.
        pub fn revocable(mut self) -> Self {
            self.options = self.options.with_revocable(true);
            self
        }

        /// What a lost connection does to the lock once held: see
        /// [`ConnectionPolicy`]($crate::lock::ConnectionPolicy) for what each policy risks.
        pub fn with_connection_policy(mut self, policy: $crate::lock::ConnectionPolicy) -> Self {
            self.options = self.options.with_connection_policy(policy);
            self
        }
    };
}

/// A machine that acquires something and reports it with the lock's [`Outcome`]s: the lock
/// itself and the semaphore's lease. Driver handles are written once over it.
pub trait Acquire: Recipe<Outcome = Outcome> {
    /// Starts acquiring on the session `session_id`, giving up at `deadline`.
    fn acquire(&mut self, now: Instant, session_id: i64, deadline: Option<Instant>);

    /// Every node held, when there is more than the one [`Outcome::Acquired`] names (a
    /// multi-lock's): the nodes a guarded write checks. Empty by default.
    fn held(&self) -> Vec<String> {
        Vec::new()
    }
}

impl Acquire for Lock {
    fn acquire(&mut self, now: Instant, session_id: i64, deadline: Option<Instant>) {
        Lock::acquire(self, now, session_id, deadline);
    }
}

/// Where a lock stands for its holder: what a driver's guard reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockState {
    /// Held: the node is the first contender on the server.
    Held,
    /// The connection is lost: the session may expire, and the lock pass to another
    /// client, before this one hears of it. Stop acting on the protected resource until it
    /// is [`LockState::Held`] again.
    Suspended,
    /// Gone: lost with its session, released, or ended by an error.
    Gone,
}

/// Where one acquisition stands, folded from its outcomes: what a driver's handle keeps
/// to answer its caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    /// Not decided yet.
    Acquiring,
    /// Held.
    Held,
    /// Held, but the connection is lost.
    Suspended,
    /// Lost with its session.
    Lost,
    /// The deadline passed first.
    TimedOut,
    /// Given up, and the node confirmed gone.
    Released,
    /// Ended by an error no retry fixes.
    Failed(SessionError),
}

/// One acquisition as a handle sees it: [`Progress::apply`] each outcome, and
/// [`Progress::observe`] the machine after each step.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Where it stands.
    pub standing: Standing,
    /// The lock node, once acquired.
    pub node: Option<String>,
    /// The fencing token, once acquired.
    pub fencing: i64,
    /// Nothing of the acquisition is left on the server or under way.
    pub done: bool,
    /// Every node held once acquired: the lock node, or one per lock of a multi-lock.
    pub nodes: Vec<String>,
    /// Another process asked the holder to let go ([`Outcome::RevocationRequested`]).
    pub revocation_requested: bool,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress {
            standing: Standing::Acquiring,
            node: None,
            fencing: 0,
            done: false,
            nodes: Vec::new(),
            revocation_requested: false,
        }
    }
}

impl Progress {
    /// Takes in an outcome.
    pub fn apply(&mut self, outcome: Outcome) {
        self.standing = match outcome {
            Outcome::Acquired { node, fencing } => {
                self.nodes = vec![node.clone()];
                self.node = Some(node);
                self.fencing = fencing;
                Standing::Held
            }
            Outcome::Suspended => Standing::Suspended,
            Outcome::Resumed => Standing::Held,
            Outcome::Lost => Standing::Lost,
            Outcome::TimedOut => Standing::TimedOut,
            // After a timeout, a loss or a failure, that stays the answer: `Released` only
            // says the node is gone.
            Outcome::Released
                if matches!(
                    self.standing,
                    Standing::TimedOut | Standing::Lost | Standing::Failed(_)
                ) =>
            {
                return;
            }
            Outcome::Released => Standing::Released,
            Outcome::Failed(e) => Standing::Failed(e),
            Outcome::RevocationRequested => {
                self.revocation_requested = true;
                return;
            }
        }
    }

    /// Takes in the machine's state after a step.
    pub fn observe(&mut self, machine: &impl Acquire) {
        self.done = machine.is_done();
        let held = machine.held();
        if !held.is_empty() && self.standing != Standing::Acquiring {
            self.nodes = held;
        }
    }

    /// Whether the acquisition is decided: held (maybe suspended), timed out, or ended.
    pub fn decided(&self) -> bool {
        self.standing != Standing::Acquiring
    }

    /// Whether a release asked for is complete: the lock is no longer held and nothing
    /// of it is left on the server.
    pub fn settled(&self) -> bool {
        self.done && !matches!(self.standing, Standing::Held | Standing::Suspended)
    }

    /// The holder's view.
    pub fn state(&self) -> LockState {
        match self.standing {
            Standing::Held => LockState::Held,
            Standing::Suspended => LockState::Suspended,
            _ => LockState::Gone,
        }
    }
}

/// What a request in flight was for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    /// Creating the directory, or one of its missing ancestors.
    MakeDir(String),
    Create,
    /// Catching the server up with the leader before a `Find`: its reply only orders the
    /// search after it.
    Sync,
    /// Looking for our node after a create whose reply was lost.
    Find,
    /// Looking, before the release is done, for nodes of earlier creates that landed late.
    Sweep,
    List,
    /// Watching the node before ours.
    Watch,
    /// Deleting a node of ours, until the server confirms it is gone.
    Delete(String),
    /// Reading our node's data, with a watch, for a revocation request.
    Revocation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not asked to acquire.
    Idle,
    /// Acquiring: a create, find, list or watch is under way.
    Acquiring,
    /// The lock is held.
    Held,
    /// Removing the node; `Released` follows.
    Releasing,
    /// Released, failed or lost; `acquire` may start again.
    Done,
}

/// An exclusive lock on `dir`, one acquisition at a time.
#[derive(Debug)]
pub struct Lock {
    dir: String,
    id: String,
    /// Creates so far: each create's node name starts with `<id>-<creates>`, so a node
    /// found by name is that create's and no other's.
    creates: u64,
    /// A create's reply was lost since the last look for strays: a node of it may show up
    /// late, after a lagging server hid it, and a release looks again first.
    doubt: bool,
    prefix: String,
    flavor: Flavor,
    kind: Kind,
    data: Bytes,
    acl: Vec<Acl>,
    phase: Phase,
    /// Our node's full path, once known.
    node: Option<String>,
    /// The session our node belongs to.
    node_session: i64,
    session: i64,
    suspended: bool,
    policy: ConnectionPolicy,
    revocable: bool,
    /// The read of our node's data that watches it for a revocation request.
    revoke_watch: Option<Tag>,
    revocation_heard: bool,
    deadline: Option<Instant>,
    next_tag: u64,
    in_flight: HashMap<Tag, Purpose>,
    /// The tag of the watch on the node before ours, while one is set.
    watching: Option<Tag>,
    out: VecDeque<Output>,
}

impl Lock {
    /// A lock on `dir` (created if missing, with `acl` for the directory and the node).
    /// `id` must be unique among every contender of this lock, across processes and
    /// restarts: a random 128-bit hex string is a good one.
    pub fn new(dir: &str, id: &str, acl: Vec<Acl>) -> Lock {
        Lock {
            dir: dir.trim_end_matches('/').to_string(),
            id: id.to_string(),
            creates: 0,
            doubt: false,
            prefix: String::new(),
            flavor: Flavor::Kazoo,
            kind: Kind::Exclusive,
            data: Bytes::new(),
            acl,
            phase: Phase::Idle,
            node: None,
            node_session: 0,
            session: 0,
            suspended: false,
            policy: ConnectionPolicy::default(),
            revocable: false,
            revoke_watch: None,
            revocation_heard: false,
            deadline: None,
            next_tag: 1,
            in_flight: HashMap::new(),
            watching: None,
            out: VecDeque::new(),
        }
    }

    /// Names nodes as `flavor`'s library does, to share the lock with it.
    pub fn with_flavor(mut self, flavor: Flavor) -> Lock {
        self.flavor = flavor;
        self
    }

    /// Asks for `kind`: exclusive (the default), or one side of a read/write lock.
    pub fn with_kind(mut self, kind: Kind) -> Lock {
        self.kind = kind;
        self
    }

    /// What a lost connection does once the lock is held ([`ConnectionPolicy`]).
    pub fn with_connection_policy(mut self, policy: ConnectionPolicy) -> Lock {
        self.policy = policy;
        self
    }

    /// With `true`, watches this contender's own node for a revocation request (Curator's
    /// `makeRevocable`): [`Outcome::RevocationRequested`] once someone wrote
    /// [`REVOKE_MESSAGE`] into it, whether the lock is held yet or still awaited.
    pub fn revocable(mut self, revocable: bool) -> Lock {
        self.revocable = revocable;
        self
    }

    /// Stores `data` in every node this machine creates: Kazoo keeps a contender's
    /// identifier there, for `contenders()` to list.
    pub fn with_data(mut self, data: Bytes) -> Lock {
        self.data = data;
        self
    }

    /// Whether the lock is held now (and not suspended).
    pub fn is_held(&self) -> bool {
        self.phase == Phase::Held && !self.suspended
    }

    /// The lock node's path, once created.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// Starts acquiring, on the session `session_id`, giving up at `deadline` (`None`:
    /// wait as long as it takes). Ignored while an acquisition or release is under way.
    pub fn acquire(&mut self, now: Instant, session_id: i64, deadline: Option<Instant>) {
        let _ = now;
        if !matches!(self.phase, Phase::Idle | Phase::Done) {
            return;
        }
        self.session = session_id;
        self.suspended = false;
        self.deadline = deadline;
        self.node = None;
        self.revoke_watch = None;
        self.revocation_heard = false;
        self.phase = Phase::Acquiring;
        self.create();
    }

    // ----- requests -----

    fn submit(&mut self, purpose: Purpose, request: Request) -> Tag {
        let tag = Tag(self.next_tag);
        self.next_tag += 1;
        self.in_flight.insert(tag, purpose);
        self.out.push_back(Output::Submit(tag, request));
        tag
    }

    fn emit(&mut self, outcome: Outcome) {
        self.out.push_back(Output::Outcome(outcome));
    }

    /// The name prefix of this machine's `create`th create.
    fn prefix_of(&self, create: u64) -> String {
        match self.flavor {
            Flavor::Kazoo => format!("{}-{}{}", self.id, create, self.kind.marker(self.flavor)),
            Flavor::Curator | Flavor::CuratorLatch => format!(
                "_c_{}-{}",
                uuid_of(&self.id, create),
                self.kind.marker(self.flavor)
            ),
        }
    }

    /// Whether `child` is a node of an earlier create of this machine: one whose reply was
    /// lost and that a lagging server did not show when it was looked for.
    fn earlier_own(&self, child: &str) -> bool {
        (1..self.creates).any(|k| child.starts_with(&self.prefix_of(k)))
    }

    /// Creates our node, and lists the directory in the same breath: the server applies a
    /// session's requests in order, so the listing already holds the node, and an
    /// uncontended acquire takes one round trip instead of two. A listing that follows a
    /// failed create is let go; the create's failure decides what comes next.
    fn create(&mut self) {
        self.creates += 1;
        self.prefix = self.prefix_of(self.creates);
        let request = Request::Create2(CreateRequest {
            path: format!("{}/{}", self.dir, self.prefix),
            data: self.data.clone(),
            acl: self.acl.clone(),
            flags: CreateMode::EphemeralSequential.as_i32(),
        });
        self.submit(Purpose::Create, request);
        self.list();
    }

    fn make_dir(&mut self) {
        self.make_dir_at(self.dir.clone());
    }

    fn make_dir_at(&mut self, path: String) {
        let request = Request::Create(CreateRequest {
            path: path.clone(),
            data: Bytes::new(),
            acl: self.acl.clone(),
            flags: CreateMode::Persistent.as_i32(),
        });
        self.submit(Purpose::MakeDir(path), request);
    }

    /// Lists the directory: to look for our node (`Find`) or to see where it stands
    /// (`List`).
    fn list_for(&mut self, purpose: Purpose) {
        let request = Request::GetChildren(GetChildrenRequest {
            path: self.dir.clone(),
            watch: false,
        });
        self.submit(purpose, request);
    }

    /// Looks for our node after a lost create reply. A `sync` goes first: the server we
    /// are connected to now may lag the one that took the create, and would not show the
    /// node yet.
    fn find(&mut self) {
        self.doubt = true;
        let sync = Request::Sync(SyncRequest {
            path: self.dir.clone(),
        });
        self.submit(Purpose::Sync, sync);
        self.list_for(Purpose::Find);
    }

    fn list(&mut self) {
        self.list_for(Purpose::List);
    }

    /// Deletes `node`, and again after every failure that leaves it in doubt, until the
    /// server says it is gone. A session the client counts as expired may still live on
    /// the server (its clock restarts with a restarted server), so an expiry proves nothing.
    fn discard(&mut self, node: String) {
        let request = Request::Delete(DeleteRequest {
            path: node.clone(),
            version: -1,
        });
        self.submit(Purpose::Delete(node), request);
    }

    /// In the Releasing phase: delete our node once its create's fate is known, and report
    /// `Released` when no delete is left unconfirmed.
    fn clean_up(&mut self) {
        // The listing sent with a create counts too: the release is done once nothing of
        // the acquisition is left in flight.
        let deciding = self.in_flight.values().any(|p| {
            matches!(
                p,
                Purpose::Create
                    | Purpose::Find
                    | Purpose::Sweep
                    | Purpose::MakeDir(_)
                    | Purpose::List
            )
        });
        if deciding {
            return;
        }
        if let Some(node) = self.node.take() {
            self.discard(node);
        }
        // A create whose reply was lost may have landed after a lagging server hid it: a
        // node of ours that would hold the lock for the rest of the session. Look once
        // more, after a sync, before the release is done. Once the session moved to the
        // server we sync with, no request of its old connection can land any more.
        if self.doubt {
            self.doubt = false;
            let sync = Request::Sync(SyncRequest {
                path: self.dir.clone(),
            });
            self.submit(Purpose::Sync, sync);
            return self.list_for(Purpose::Sweep);
        }
        let deleting = self
            .in_flight
            .values()
            .any(|p| matches!(p, Purpose::Delete(_)));
        if !deleting {
            self.phase = Phase::Done;
            self.emit(Outcome::Released);
        }
    }

    fn swept(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetChildren(r)) => {
                let strays: Vec<String> = r
                    .children
                    .iter()
                    .filter(|c| self.earlier_own(c))
                    .map(|c| format!("{}/{c}", self.dir))
                    .collect();
                for stray in strays {
                    self.discard(stray);
                }
            }
            // Looked for again, on whatever session there is.
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => {
                self.doubt = true;
            }
            // No directory (nothing of ours), or nothing more can be asked.
            _ => {}
        }
        if self.phase == Phase::Releasing {
            self.clean_up();
        }
    }

    fn lost(&mut self) {
        // The server may not have let the node go yet: it is ours to delete.
        if let Some(node) = self.node.take() {
            self.discard(node);
        }
        self.suspended = false;
        self.watching = None;
        self.phase = Phase::Done;
        self.emit(Outcome::Lost);
    }

    fn fail(&mut self, e: SessionError) {
        if let Some(node) = self.node.take() {
            self.discard(node);
        }
        self.watching = None;
        self.phase = Phase::Done;
        self.emit(Outcome::Failed(e));
    }

    /// Our node is gone, or in doubt after an expiry: discard it (if it is there) and start
    /// over with a new node.
    fn start_over(&mut self) {
        if let Some(node) = self.node.take() {
            self.discard(node);
        }
        self.watching = None;
        match self.phase {
            Phase::Acquiring => self.create(),
            Phase::Releasing => self.clean_up(),
            _ => {}
        }
    }

    // ----- replies -----

    fn made_dir(&mut self, path: String, reply: Result<Response, SessionError>) {
        match reply {
            // Made, or there already: on to the next level down, or to the lock node.
            Ok(_) | Err(SessionError::Server(ErrorCode::NodeExists)) => match self.phase {
                Phase::Acquiring if path == self.dir => self.create(),
                Phase::Acquiring => {
                    let rest = &self.dir[path.len() + 1..];
                    let next = rest
                        .find('/')
                        .map_or(self.dir.len(), |i| path.len() + 1 + i);
                    self.make_dir_at(self.dir[..next].to_string());
                }
                Phase::Releasing => self.clean_up(),
                _ => {}
            },
            // A parent is missing: make it first.
            Err(SessionError::Server(ErrorCode::NoNode)) if self.phase == Phase::Acquiring => {
                match path.rfind('/').filter(|&i| i > 0) {
                    Some(i) => self.make_dir_at(path[..i].to_string()),
                    None => self.fail(SessionError::Server(ErrorCode::NoNode)),
                }
            }
            Err(e) if e.is_retryable() => self.make_dir_at(path),
            Err(SessionError::SessionExpired) => self.start_over(),
            Err(SessionError::Server(ErrorCode::NoNode)) => self.clean_up(),
            Err(e) => self.fail(e),
        }
    }

    fn created(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::Create2(r)) => {
                self.node = Some(r.path);
                self.node_session = self.session;
                self.after_node();
            }
            Ok(_) => self.fail(SessionError::InvalidRequest("unexpected reply to create2")),
            Err(SessionError::Server(ErrorCode::NoNode)) => match self.phase {
                Phase::Acquiring => self.make_dir(),
                _ => self.clean_up(),
            },
            // Maybe applied: look for our id before anything else.
            Err(SessionError::ConnectionLoss) => self.find(),
            // Never sent.
            Err(SessionError::Timeout(_) | SessionError::QueueFull(_)) => self.start_over(),
            Err(SessionError::SessionExpired) => self.start_over(),
            Err(e) => self.fail(e),
        }
    }

    fn found(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetChildren(r)) => {
                match r.children.iter().find(|c| c.starts_with(&self.prefix)) {
                    Some(name) => {
                        self.node = Some(format!("{}/{name}", self.dir));
                        self.node_session = self.session;
                        self.after_node();
                    }
                    None => self.start_over(),
                }
            }
            Ok(_) => self.fail(SessionError::InvalidRequest(
                "unexpected reply to getChildren",
            )),
            Err(SessionError::Server(ErrorCode::NoNode)) => self.start_over(),
            Err(e) if e.is_retryable() => self.find(),
            Err(SessionError::SessionExpired) => self.start_over(),
            Err(e) => self.fail(e),
        }
    }

    /// Our node is known: go on acquiring, or delete it if the caller gave up meanwhile.
    fn after_node(&mut self) {
        if self.phase == Phase::Acquiring && self.revocable {
            self.watch_for_revocation();
        }
        let listing = self.in_flight.values().any(|p| matches!(p, Purpose::List));
        match self.phase {
            // The listing sent with the create answers next.
            Phase::Acquiring if listing => {}
            Phase::Acquiring => self.list(),
            Phase::Releasing => self.clean_up(),
            _ => {}
        }
    }

    fn listed(&mut self, reply: Result<Response, SessionError>) {
        if self.phase == Phase::Releasing {
            return self.clean_up();
        }
        // Not acquiring, or the listing sent with a create that failed: the create's
        // failure has decided what comes next.
        if self.phase != Phase::Acquiring || self.node.is_none() {
            return;
        }
        match reply {
            Ok(Response::GetChildren(r)) => self.decide(&r.children),
            Ok(_) => self.fail(SessionError::InvalidRequest(
                "unexpected reply to getChildren",
            )),
            Err(SessionError::Server(ErrorCode::NoNode)) => self.start_over(),
            Err(e) if e.is_retryable() => self.list(),
            Err(SessionError::SessionExpired) => self.start_over(),
            Err(e) => self.fail(e),
        }
    }

    fn decide(&mut self, children: &[String]) {
        let Some(node) = self.node.clone() else {
            return self.start_over();
        };
        let ours = node.rsplit('/').next().unwrap_or_default().to_string();
        // A node of an earlier create of ours that shows up only now (its create landed
        // late, after a lagging server hid it): ours, not a contender; it goes.
        let strays: Vec<String> = children
            .iter()
            .filter(|c| **c != ours && self.earlier_own(c))
            .map(|c| format!("{}/{c}", self.dir))
            .collect();
        for stray in strays {
            let deleting = self
                .in_flight
                .values()
                .any(|p| matches!(p, Purpose::Delete(n) if *n == stray));
            if !deleting {
                self.discard(stray);
            }
        }
        let mut contenders: Vec<(i64, &String)> = children
            .iter()
            .filter(|c| **c == ours || !self.earlier_own(c))
            .filter_map(|c| order_of(c).map(|s| (s, c)))
            .collect();
        contenders.sort();
        let Some(at) = contenders.iter().position(|(_, c)| **c == ours) else {
            // Our node is gone (its session ended, or someone deleted it): try again.
            return self.start_over();
        };
        // What we wait for: the contender just before us, or for a reader the last writer
        // before it (readers share).
        let blocker = match self.kind {
            Kind::Read => contenders[..at].iter().rev().find(|(_, c)| !is_reader(c)),
            Kind::Exclusive | Kind::Write => at.checked_sub(1).map(|b| &contenders[b]),
        };
        let Some((_, blocker)) = blocker else {
            self.phase = Phase::Held;
            self.suspended = false;
            let fencing = contenders[at].0;
            self.emit(Outcome::Acquired { node, fencing });
            return;
        };
        let before = format!("{}/{blocker}", self.dir);
        let request = Request::Exists(ExistsRequest {
            path: before,
            watch: true,
        });
        let tag = self.submit(Purpose::Watch, request);
        self.watching = Some(tag);
    }

    /// Reads our node's data and watches it: a revocation request is a write of
    /// [`REVOKE_MESSAGE`] into it.
    fn watch_for_revocation(&mut self) {
        let Some(node) = self.node.clone() else {
            return;
        };
        let request = Request::GetData(GetDataRequest {
            path: node,
            watch: true,
        });
        let tag = self.submit(Purpose::Revocation, request);
        self.revoke_watch = Some(tag);
    }

    fn revocation_read(&mut self, tag: Tag, reply: Result<Response, SessionError>) {
        if self.revoke_watch != Some(tag) || !matches!(self.phase, Phase::Acquiring | Phase::Held) {
            return;
        }
        match reply {
            Ok(Response::GetData(r)) => {
                if &r.data[..] == REVOKE_MESSAGE && !self.revocation_heard {
                    self.revocation_heard = true;
                    self.emit(Outcome::RevocationRequested);
                }
            }
            // The read did not arrive, so neither did its watch: read again on the
            // connection that follows (the session holds the request until then).
            Err(SessionError::ConnectionLoss) => {
                self.revoke_watch = None;
                self.watch_for_revocation();
            }
            // The node is gone, or the session: the lock's own steps deal with that.
            _ => self.revoke_watch = None,
        }
    }

    fn watch_set(&mut self, tag: Tag, reply: Result<Response, SessionError>) {
        if self.phase != Phase::Acquiring || self.watching != Some(tag) {
            return;
        }
        match reply {
            // The node before ours exists: wait for its watch.
            Ok(Response::Stat(_)) => {}
            // Gone already, or the watch may not be set: look again.
            Ok(_) | Err(SessionError::Server(ErrorCode::NoNode)) => {
                self.watching = None;
                self.list();
            }
            Err(e) if e.is_retryable() => {
                self.watching = None;
                self.list();
            }
            Err(SessionError::SessionExpired) => self.start_over(),
            Err(e) => self.fail(e),
        }
    }

    fn deleted(&mut self, node: String, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NoNode)) => {}
            // In doubt: the delete may not have happened, the node may outlive the session
            // the client gave up on. Again, on the session there is now.
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => {
                return self.discard(node);
            }
            // The session is over (closed, refused): nothing can be sent any more.
            Err(e) => {
                self.emit(Outcome::Failed(e));
            }
        }
        if self.phase == Phase::Releasing {
            self.clean_up();
        }
    }
}

impl Recipe for Lock {
    type Outcome = Outcome;

    /// The next output for the driver.
    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Lock::handle_timeout`] has work: the acquisition's deadline.
    fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Acquiring => self.deadline,
            _ => None,
        }
    }

    /// Gives the lock up, or stops acquiring it, in any phase: the node is deleted (once
    /// its create's fate is known) and [`Outcome::Released`] follows when the server
    /// confirms it. Dropping the machine instead leaves the node to its session.
    fn release(&mut self, _now: Instant) {
        match self.phase {
            Phase::Acquiring | Phase::Held => {
                self.phase = Phase::Releasing;
                self.watching = None;
                self.clean_up();
            }
            Phase::Idle | Phase::Releasing | Phase::Done => {}
        }
    }

    /// Time passed: a deadline that ran out ends the acquisition.
    fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Acquiring && self.deadline.is_some_and(|d| now >= d) {
            self.emit(Outcome::TimedOut);
            self.release(now);
        }
    }

    /// The session's application view changed; `session_id` is the session's id now.
    fn handle_state(&mut self, _now: Instant, state: AppState, session_id: i64) {
        let same = session_id == self.node_session;
        match state {
            AppState::Suspended => {
                if self.phase == Phase::Held && !self.suspended {
                    self.suspended = true;
                    match self.policy {
                        ConnectionPolicy::SuspendedIsLost => self.emit(Outcome::Suspended),
                        // The node is deleted once the connection is back.
                        ConnectionPolicy::SuspendedEnds => self.lost(),
                        ConnectionPolicy::LostOnly => {}
                    }
                }
            }
            AppState::Connected => {
                self.session = session_id;
                if self.phase == Phase::Held && self.suspended {
                    self.suspended = false;
                    if !same {
                        self.lost();
                    } else if self.policy == ConnectionPolicy::SuspendedIsLost {
                        self.emit(Outcome::Resumed);
                    }
                }
            }
            AppState::Lost => {
                if self.phase == Phase::Held {
                    self.lost();
                }
            }
        }
    }

    /// The reply to the request submitted under `tag`.
    fn handle_reply(&mut self, _now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        let Some(purpose) = self.in_flight.remove(&tag) else {
            return;
        };
        match purpose {
            Purpose::MakeDir(path) => self.made_dir(path, reply),
            Purpose::Create => self.created(reply),
            // What counts is the search it orders: its own outcome changes nothing.
            Purpose::Sync => {}
            Purpose::Find => self.found(reply),
            Purpose::Sweep => self.swept(reply),
            Purpose::List => self.listed(reply),
            Purpose::Watch => self.watch_set(tag, reply),
            Purpose::Delete(node) => self.deleted(node, reply),
            Purpose::Revocation => self.revocation_read(tag, reply),
        }
    }

    /// An event of the watch the request under `tag` left.
    fn handle_watch(&mut self, _now: Instant, tag: Tag, event: &WatchedEvent) {
        if self.revoke_watch == Some(tag) {
            self.revoke_watch = None;
            if event.kind == zk_proto::consts::EventType::NodeDataChanged
                && matches!(self.phase, Phase::Acquiring | Phase::Held)
            {
                self.watch_for_revocation();
            }
            return;
        }
        if self.watching == Some(tag) {
            self.watching = None;
            if self.phase == Phase::Acquiring {
                self.list();
            }
        }
    }

    /// Whether nothing of this machine is on the server or under way: it was never started,
    /// or its last acquisition ended with `Released`, `Lost` or `Failed` and every node it
    /// left was confirmed deleted.
    fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::Done) && self.in_flight.is_empty()
    }
}

/// The order of a contender from its node name, in either library's layout; `None` for a
/// name that is not a lock node's.
pub fn order_of(name: &str) -> Option<i64> {
    MARKERS.iter().find_map(|m| sequence_of(name, m))
}

/// A UUID name (`8-4-4-4-12` hex digits, as Curator's protected names carry) for the
/// `create`th create of the machine `id`: a name-based (v5) UUID of both, so the same
/// create is always named the same.
pub(crate) fn uuid_of(id: &str, create: u64) -> String {
    let name = [id.as_bytes(), &create.to_le_bytes()].concat();
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, &name).to_string()
}
