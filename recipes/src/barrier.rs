//! Barriers, as sans-IO state machines, in the node layout Kazoo and Curator share.
//!
//! - [`Barrier`] (Kazoo's `Barrier`, Curator's `DistributedBarrier`): the barrier is up
//!   while its node exists. [`Barrier::wait`] returns once the node is gone, whatever
//!   happens to the connection meanwhile: a watch lost with a session is set again. Its
//!   looks follow a `sync` until one is answered, so a barrier raised before the wait
//!   began is seen even from a follower that has not applied it yet (Kazoo and Curator
//!   look without one).
//! - [`DoubleBarrier`] (Kazoo's `DoubleBarrier`, Curator's `DistributedDoubleBarrier`):
//!   each participant is an ephemeral child `<path>/<unique name>`, and the `<path>/ready`
//!   child says that enough of them entered. Entering creates the participant's node,
//!   watches for `ready`, and counts the children (the `ready` node included, as both
//!   libraries count them); whoever sees enough creates `ready`. Leaving follows both
//!   libraries' order: the participant first in name order waits for the last one to go,
//!   every other one deletes its node and waits for the first to go; whoever leaves last
//!   takes `ready` down again for the next round.
//!
//! A participant's name is fixed before its first create and is its alone (32 hex digits
//! for Kazoo, a UUID for Curator), so a create whose reply was lost is sent again and
//! NodeExists means it landed. Only the `ready` node's creation lets a participant in: the
//! end of a session's watches is not, and after a new session the participant's node
//! (gone with the old session) is created again. Every delete the machine owes (its node
//! after a cancelled or timed-out enter or leave) is sent again until the server confirms
//! it.

use std::time::Instant;

use bytes::Bytes;
use zk_proto::ErrorCode;
use zk_proto::consts::CreateMode;
use zk_proto::records::*;
use zk_proto::session::{AppState, Error as SessionError, WatchedEvent};

use crate::io::{Io, again, create, delete, exists, list, sync};
use crate::lock::{Flavor, uuid_of};
use crate::{Recipe, Tag};

/// The child of a double barrier's node that says enough participants entered.
pub const READY: &str = "ready";

/// What a barrier machine tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// [`Barrier::raise`]: the barrier node exists.
    Raised,
    /// [`Barrier::remove`]: the barrier node is gone. `existed` is false when it was
    /// already gone before (as far as can be told after a lost reply).
    Removed {
        /// Whether this removal took the node down.
        existed: bool,
    },
    /// [`Barrier::wait`]: the barrier node is gone.
    Cleared,
    /// [`DoubleBarrier::enter`]: enough participants entered.
    Entered,
    /// [`DoubleBarrier::leave`]: every participant left.
    Left,
    /// The deadline passed first. A participant's node is then being removed, and
    /// [`Outcome::Released`] follows once it is.
    TimedOut,
    /// The session that held the participant's node is gone, and the node with it: the
    /// others no longer count or wait for this participant.
    Lost,
    /// After a cancellation or a timeout: the server confirmed the participant's node is
    /// gone. Nothing of this machine is left on the server.
    Released,
    /// An error no retry can fix (no permission, a bad path, a closed session).
    Failed(SessionError),
}

/// Something a barrier machine has for its driver.
pub type Output = crate::Output<Outcome>;

/// The next directory to create on the way down to `path`, after `len` bytes of it
/// exist.
fn next_dir(path: &str, len: usize) -> usize {
    path[len + 1..]
        .find('/')
        .map_or(path.len(), |i| len + 1 + i)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Idle,
    Raise,
    Remove,
    Wait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Creating the barrier node (the whole path) or, after NoNode, one of its ancestors.
    MakeDir(usize),
    Delete,
    /// Only orders the first look after every write committed before the wait.
    Sync,
    Exists,
}

/// A barrier at one path: [`Barrier::raise`], [`Barrier::remove`] and [`Barrier::wait`],
/// one at a time.
#[derive(Debug)]
pub struct Barrier {
    path: String,
    acl: Vec<Acl>,
    op: Op,
    deadline: Option<Instant>,
    /// The request whose reply or watch the current operation waits for.
    current: Option<Tag>,
    /// A delete of the barrier node may have landed.
    maybe_removed: bool,
    /// A sync was answered during this wait: later looks see what was written before it.
    synced: bool,
    q: Io<Step, Outcome>,
}

impl Barrier {
    /// The barrier at `path`, created with `acl` (with its ancestors) when raised.
    pub fn new(path: &str, acl: Vec<Acl>) -> Barrier {
        Barrier {
            path: path.trim_end_matches('/').to_string(),
            acl,
            op: Op::Idle,
            deadline: None,
            current: None,
            maybe_removed: false,
            synced: false,
            q: Io::new(),
        }
    }

    /// The barrier node.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn busy(&self) -> bool {
        self.op != Op::Idle
    }

    /// Raises the barrier: creates its node and any missing ancestor (already up is
    /// fine). Ignored while another operation runs.
    pub fn raise(&mut self, _now: Instant) {
        if self.busy() {
            return;
        }
        self.op = Op::Raise;
        self.make_dir(self.path.len());
    }

    /// Removes the barrier, letting the waiters through; the delete is sent again until
    /// the server confirms it. Ignored while another operation runs.
    pub fn remove(&mut self, _now: Instant) {
        if self.busy() {
            return;
        }
        self.op = Op::Remove;
        self.maybe_removed = false;
        self.current = Some(self.q.submit(Step::Delete, delete(&self.path, -1)));
    }

    /// Waits until the barrier node is gone, at most until `deadline`, connected or not.
    /// Ignored while another operation runs.
    pub fn wait(&mut self, _now: Instant, deadline: Option<Instant>) {
        if self.busy() {
            return;
        }
        self.op = Op::Wait;
        self.deadline = deadline;
        self.synced = false;
        self.look();
    }

    fn look(&mut self) {
        let syncing = self.q.in_flight.values().any(|s| *s == Step::Sync);
        if !self.synced && !syncing {
            self.q.submit(Step::Sync, sync(&self.path));
        }
        self.current = Some(self.q.submit(Step::Exists, exists(&self.path, true)));
    }

    fn make_dir(&mut self, len: usize) {
        let request = create(
            &self.path[..len],
            Bytes::new(),
            &self.acl,
            CreateMode::Persistent,
        );
        self.current = Some(self.q.submit(Step::MakeDir(len), request));
    }

    fn finish(&mut self, outcome: Outcome) {
        self.op = Op::Idle;
        self.current = None;
        self.deadline = None;
        self.q.emit(outcome);
    }

    fn made_dir(&mut self, len: usize, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NodeExists)) if len == self.path.len() => {
                self.finish(Outcome::Raised)
            }
            Ok(_) | Err(SessionError::Server(ErrorCode::NodeExists)) => {
                self.make_dir(next_dir(&self.path, len))
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => match self.path[..len].rfind('/') {
                Some(i) if i > 0 => self.make_dir(i),
                _ => self.finish(Outcome::Failed(SessionError::Server(ErrorCode::NoNode))),
            },
            Err(e) if again(&e) => self.make_dir(len),
            Err(e) => self.finish(Outcome::Failed(e)),
        }
    }

    fn deleted(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) => self.finish(Outcome::Removed { existed: true }),
            Err(SessionError::Server(ErrorCode::NoNode)) => {
                let existed = self.maybe_removed;
                self.finish(Outcome::Removed { existed })
            }
            Err(e) if again(&e) => {
                self.maybe_removed |= e.is_retryable();
                self.current = Some(self.q.submit(Step::Delete, delete(&self.path, -1)));
            }
            Err(e) => self.finish(Outcome::Failed(e)),
        }
    }

    fn looked(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            // Up: wait for the watch.
            Ok(Response::Stat(_)) => {}
            Ok(_) => self.finish(Outcome::Failed(SessionError::InvalidRequest(
                "unexpected reply to exists",
            ))),
            Err(SessionError::Server(ErrorCode::NoNode)) => self.finish(Outcome::Cleared),
            Err(e) if again(&e) => self.look(),
            Err(e) => self.finish(Outcome::Failed(e)),
        }
    }
}

impl Recipe for Barrier {
    type Outcome = Outcome;

    fn poll_output(&mut self) -> Option<Output> {
        self.q.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        (self.op == Op::Wait).then_some(self.deadline).flatten()
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.op == Op::Wait && self.deadline.is_some_and(|d| now >= d) {
            self.finish(Outcome::TimedOut);
        }
    }

    fn handle_reply(&mut self, _now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        let Some(step) = self.q.in_flight.remove(&tag) else {
            return;
        };
        if step == Step::Sync {
            self.synced |= reply.is_ok();
            return;
        }
        if self.current != Some(tag) {
            return;
        }
        match step {
            Step::MakeDir(len) => self.made_dir(len, reply),
            Step::Delete => self.deleted(reply),
            // Answered above.
            Step::Sync => {}
            Step::Exists => self.looked(reply),
        }
    }

    fn handle_watch(&mut self, _now: Instant, tag: Tag, event: &WatchedEvent) {
        if self.op != Op::Wait || self.current != Some(tag) {
            return;
        }
        match event.kind {
            zk_proto::consts::EventType::NodeDeleted => self.finish(Outcome::Cleared),
            _ if event.state == zk_proto::consts::KeeperState::Closed => {
                self.finish(Outcome::Failed(SessionError::Closed))
            }
            // Changed, or the session's watches ended: look again.
            _ => self.look(),
        }
    }

    fn release(&mut self, _now: Instant) {
        // Nothing of a barrier is owed to the server: stop waiting.
        self.op = Op::Idle;
        self.current = None;
        self.deadline = None;
    }

    fn is_done(&self) -> bool {
        self.op == Op::Idle && self.q.in_flight.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Entering,
    Inside,
    Leaving,
    /// Removing the participant's node after a cancellation or a timeout.
    Releasing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    MakeDir(usize),
    Create,
    ReadyExists,
    Count,
    MakeReady,
    List,
    DeleteOwn,
    WatchOther,
    DeleteReady,
    /// Released after entering: looking whether this participant was the last one.
    TidyList,
    /// ... and it was: taking `ready` down for the next round.
    TidyReady,
}

/// One participant of the double barrier at a path.
#[derive(Debug)]
pub struct DoubleBarrier {
    path: String,
    name: String,
    node: String,
    ready: String,
    count: usize,
    data: Bytes,
    acl: Vec<Acl>,
    phase: Phase,
    session: i64,
    node_session: i64,
    deadline: Option<Instant>,
    /// The request whose reply or watch the machine waits for (older ones are stale).
    current: Option<Tag>,
    /// The participant's node may exist on the server (created, or a create in doubt).
    maybe_there: bool,
    /// Released after entering: once its node is gone, a participant that was the last
    /// one takes `ready` down, as a leave would.
    tidy: bool,
    q: Io<Purpose, Outcome>,
}

impl DoubleBarrier {
    /// A participant of the double barrier at `path` that lets `count` participants in,
    /// its node named after the unique `id` (as for [`crate::lock::Lock::new`]) in
    /// `flavor`'s style (only Kazoo's and Curator's differ) and holding `data`.
    pub fn new(
        path: &str,
        id: &str,
        count: usize,
        flavor: Flavor,
        data: Bytes,
        acl: Vec<Acl>,
    ) -> DoubleBarrier {
        let path = path.trim_end_matches('/').to_string();
        let uuid = uuid_of(id, 1);
        let name = match flavor {
            Flavor::Kazoo => uuid.replace('-', ""),
            Flavor::Curator | Flavor::CuratorLatch => uuid,
        };
        DoubleBarrier {
            node: format!("{path}/{name}"),
            ready: format!("{path}/{READY}"),
            name,
            path,
            count: count.max(1),
            data,
            acl,
            phase: Phase::Idle,
            session: 0,
            node_session: 0,
            deadline: None,
            current: None,
            maybe_there: false,
            tidy: false,
            q: Io::new(),
        }
    }

    /// The participant's node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether the participant is between [`Outcome::Entered`] and a leave.
    pub fn is_inside(&self) -> bool {
        self.phase == Phase::Inside
    }

    /// Enters on the session `session_id`, giving up at `deadline`. Ignored unless idle.
    pub fn enter(&mut self, _now: Instant, session_id: i64, deadline: Option<Instant>) {
        if self.phase != Phase::Idle {
            return;
        }
        self.session = session_id;
        self.deadline = deadline;
        self.phase = Phase::Entering;
        self.create_own();
    }

    /// Leaves, giving up at `deadline`. Ignored unless inside.
    pub fn leave(&mut self, _now: Instant, deadline: Option<Instant>) {
        if self.phase != Phase::Inside {
            return;
        }
        self.deadline = deadline;
        self.phase = Phase::Leaving;
        self.list();
    }

    fn send(&mut self, purpose: Purpose, request: Request) {
        self.current = Some(self.q.submit(purpose, request));
    }

    fn create_own(&mut self) {
        self.maybe_there = true;
        let request = create(
            &self.node,
            self.data.clone(),
            &self.acl,
            CreateMode::Ephemeral,
        );
        self.send(Purpose::Create, request);
    }

    fn make_dir(&mut self, len: usize) {
        let request = create(
            &self.path[..len],
            Bytes::new(),
            &self.acl,
            CreateMode::Persistent,
        );
        self.send(Purpose::MakeDir(len), request);
    }

    fn list(&mut self) {
        let request = list(&self.path, false);
        self.send(Purpose::List, request);
    }

    fn fail(&mut self, e: SessionError) {
        self.q.emit(Outcome::Failed(e));
        self.phase = Phase::Releasing;
        self.settle();
    }

    /// Releasing: once no create is in doubt, delete the node (if it may be there), and
    /// report `Released` once the server confirmed it.
    fn settle(&mut self) {
        if self.phase != Phase::Releasing
            || self.q.in_flight.values().any(|p| *p == Purpose::Create)
        {
            return;
        }
        let busy = |p: &Purpose| {
            matches!(
                p,
                Purpose::DeleteOwn | Purpose::TidyList | Purpose::TidyReady
            )
        };
        if self.q.in_flight.values().any(busy) {
            return;
        }
        if self.maybe_there {
            let request = delete(&self.node, -1);
            self.send(Purpose::DeleteOwn, request);
        } else if self.tidy {
            let request = list(&self.path, false);
            self.send(Purpose::TidyList, request);
        } else {
            self.phase = Phase::Idle;
            self.current = None;
            self.q.emit(Outcome::Released);
        }
    }

    fn entered(&mut self) {
        self.phase = Phase::Inside;
        self.current = None;
        self.deadline = None;
        self.q.emit(Outcome::Entered);
    }

    fn left(&mut self) {
        self.phase = Phase::Idle;
        self.current = None;
        self.deadline = None;
        self.q.emit(Outcome::Left);
    }

    fn on_create(&mut self, reply: Result<Response, SessionError>) {
        if self.phase != Phase::Entering {
            if let Err(SessionError::Server(ErrorCode::NoNode)) = reply {
                self.maybe_there = false;
            }
            return self.settle();
        }
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NodeExists)) => {
                self.node_session = self.session;
                let request = exists(&self.ready, true);
                self.send(Purpose::ReadyExists, request);
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => {
                self.maybe_there = false;
                self.make_dir(self.path.len());
            }
            Err(e) if again(&e) => self.create_own(),
            Err(e) => {
                self.maybe_there = false;
                self.fail(e);
            }
        }
    }

    fn on_make_dir(&mut self, len: usize, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NodeExists)) if len == self.path.len() => {
                self.create_own()
            }
            Ok(_) | Err(SessionError::Server(ErrorCode::NodeExists)) => {
                self.make_dir(next_dir(&self.path, len))
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => match self.path[..len].rfind('/') {
                Some(i) if i > 0 => self.make_dir(i),
                _ => self.fail(SessionError::Server(ErrorCode::NoNode)),
            },
            Err(e) if again(&e) => self.make_dir(len),
            Err(e) => self.fail(e),
        }
    }

    fn on_ready_exists(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::Stat(_)) => self.entered(),
            Ok(_) => self.fail(SessionError::InvalidRequest("unexpected reply to exists")),
            // Not yet: the watch is set; count who is here.
            Err(SessionError::Server(ErrorCode::NoNode)) => {
                let request = list(&self.path, false);
                // The watch is the one to wait for; the count's reply is tagged apart.
                let watch = self.current;
                self.q.submit(Purpose::Count, request);
                self.current = watch;
            }
            // From the top: the node may have gone with a session.
            Err(e) if again(&e) => self.create_own(),
            Err(e) => self.fail(e),
        }
    }

    fn on_count(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetChildren(r)) if r.children.len() >= self.count => {
                let request = create(&self.ready, Bytes::new(), &self.acl, CreateMode::Persistent);
                self.send(Purpose::MakeReady, request);
            }
            // Too few: the `ready` watch lets us in.
            Ok(Response::GetChildren(_)) => {}
            Ok(_) => self.fail(SessionError::InvalidRequest(
                "unexpected reply to a listing",
            )),
            Err(e) if again(&e) => self.create_own(),
            Err(e) => self.fail(e),
        }
    }

    fn on_make_ready(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NodeExists)) => self.entered(),
            Err(e) if again(&e) => self.create_own(),
            Err(e) => self.fail(e),
        }
    }

    fn on_list(&mut self, reply: Result<Response, SessionError>) {
        let mut names = match reply {
            Ok(Response::GetChildren(r)) => r.children,
            Ok(_) => {
                return self.fail(SessionError::InvalidRequest(
                    "unexpected reply to a listing",
                ));
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => Vec::new(),
            Err(e) if again(&e) => return self.list(),
            Err(e) => return self.fail(e),
        };
        names.retain(|n| n != READY);
        names.sort();
        let ours = names.contains(&self.name);
        if !ours {
            self.maybe_there = false;
        }
        match (names.first(), names.last()) {
            (None, _) | (_, None) => {
                let request = delete(&self.ready, -1);
                self.send(Purpose::DeleteReady, request);
            }
            // The last one, or not first: go, then wait for the first to go.
            (Some(first), _) if ours && (names.len() == 1 || *first != self.name) => {
                let request = delete(&self.node, -1);
                self.send(Purpose::DeleteOwn, request);
            }
            // First: wait for the last one to go.
            (Some(_), Some(last)) if ours => {
                let request = exists(&format!("{}/{last}", self.path), true);
                self.send(Purpose::WatchOther, request);
            }
            (Some(first), _) => {
                let request = exists(&format!("{}/{first}", self.path), true);
                self.send(Purpose::WatchOther, request);
            }
        }
    }

    fn on_delete_own(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NoNode)) => self.maybe_there = false,
            // In doubt: again, on the session there is now.
            Err(e) if again(&e) => {}
            Err(e) => {
                self.maybe_there = false;
                self.q.emit(Outcome::Failed(e));
                if self.phase == Phase::Leaving {
                    self.phase = Phase::Releasing;
                }
            }
        }
        match self.phase {
            Phase::Leaving if self.maybe_there => {
                let request = delete(&self.node, -1);
                self.send(Purpose::DeleteOwn, request);
            }
            Phase::Leaving => self.list(),
            _ => self.settle(),
        }
    }

    fn on_watch_other(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            // There: wait for its watch.
            Ok(Response::Stat(_)) => {}
            Ok(_) => self.fail(SessionError::InvalidRequest("unexpected reply to exists")),
            Err(SessionError::Server(ErrorCode::NoNode)) => self.list(),
            Err(e) if again(&e) => self.list(),
            Err(e) => self.fail(e),
        }
    }

    fn on_delete_ready(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NoNode)) => self.left(),
            // A new round already has members under it: not ours to take down.
            Err(SessionError::Server(ErrorCode::NotEmpty)) => self.left(),
            Err(e) if again(&e) => {
                let request = delete(&self.ready, -1);
                self.send(Purpose::DeleteReady, request);
            }
            Err(e) => self.fail(e),
        }
    }

    fn on_tidy_list(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetChildren(r)) if r.children.iter().all(|n| n == READY) => {
                if r.children.is_empty() {
                    self.tidy = false;
                } else {
                    let request = delete(&self.ready, -1);
                    self.q.submit(Purpose::TidyReady, request);
                    return;
                }
            }
            Err(e) if e.is_retryable() => {}
            // Others are still inside (or the path is gone): `ready` is theirs.
            _ => self.tidy = false,
        }
        self.settle();
    }

    fn on_tidy_ready(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Err(e) if e.is_retryable() => {}
            _ => self.tidy = false,
        }
        self.settle();
    }

    fn lost(&mut self) {
        self.maybe_there = false;
        self.q.emit(Outcome::Lost);
    }
}

impl Recipe for DoubleBarrier {
    type Outcome = Outcome;

    fn poll_output(&mut self) -> Option<Output> {
        self.q.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        matches!(self.phase, Phase::Entering | Phase::Leaving)
            .then_some(self.deadline)
            .flatten()
    }

    fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Entering | Phase::Leaving)
            && self.deadline.is_some_and(|d| now >= d)
        {
            self.q.emit(Outcome::TimedOut);
            self.tidy = self.phase == Phase::Leaving;
            self.phase = Phase::Releasing;
            self.current = None;
            self.settle();
        }
    }

    fn handle_state(&mut self, _now: Instant, state: AppState, session_id: i64) {
        match state {
            AppState::Connected => {
                let renewed = session_id != self.session;
                self.session = session_id;
                if !renewed || self.node_session == 0 {
                    return;
                }
                match self.phase {
                    // Waiting for `ready` with a node that went with the old session:
                    // join again.
                    Phase::Entering
                        if self
                            .current
                            .is_some_and(|t| !self.q.in_flight.contains_key(&t)) =>
                    {
                        self.create_own()
                    }
                    Phase::Inside if self.node_session != session_id => {
                        self.node_session = 0;
                        self.lost();
                    }
                    _ => {}
                }
            }
            AppState::Lost if self.phase == Phase::Inside && self.node_session != 0 => {
                self.node_session = 0;
                self.lost();
            }
            _ => {}
        }
    }

    fn handle_reply(&mut self, _now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        let Some(purpose) = self.q.in_flight.remove(&tag) else {
            return;
        };
        if self.phase == Phase::Releasing || self.phase == Phase::Idle {
            match (purpose, reply) {
                (Purpose::Create, Err(SessionError::Server(ErrorCode::NoNode))) => {
                    self.maybe_there = false;
                }
                (Purpose::Create, _) => {}
                (Purpose::DeleteOwn, reply) => return self.on_delete_own(reply),
                (Purpose::TidyList, reply) => return self.on_tidy_list(reply),
                (Purpose::TidyReady, reply) => return self.on_tidy_ready(reply),
                _ => {}
            }
            return self.settle();
        }
        // Replies a newer request overtook are stale, except a count, which the watch's
        // tag does not cover.
        if self.current != Some(tag) && purpose != Purpose::Count {
            return;
        }
        match purpose {
            Purpose::MakeDir(len) => self.on_make_dir(len, reply),
            Purpose::Create => self.on_create(reply),
            Purpose::ReadyExists => self.on_ready_exists(reply),
            Purpose::Count if self.phase == Phase::Entering => self.on_count(reply),
            Purpose::Count => {}
            Purpose::MakeReady => self.on_make_ready(reply),
            Purpose::List => self.on_list(reply),
            Purpose::DeleteOwn => self.on_delete_own(reply),
            Purpose::WatchOther => self.on_watch_other(reply),
            Purpose::DeleteReady => self.on_delete_ready(reply),
            Purpose::TidyList | Purpose::TidyReady => {}
        }
    }

    fn handle_watch(&mut self, _now: Instant, tag: Tag, event: &WatchedEvent) {
        if self.current != Some(tag) {
            return;
        }
        if event.state == zk_proto::consts::KeeperState::Closed {
            return self.fail(SessionError::Closed);
        }
        match self.phase {
            Phase::Entering if event.kind == zk_proto::consts::EventType::NodeCreated => {
                self.entered()
            }
            // The session's watches ended: join again (the node may have gone with it).
            Phase::Entering => self.create_own(),
            Phase::Leaving => self.list(),
            _ => {}
        }
    }

    fn release(&mut self, _now: Instant) {
        match self.phase {
            Phase::Entering | Phase::Inside | Phase::Leaving => {
                self.tidy = self.phase != Phase::Entering;
                self.phase = Phase::Releasing;
                self.current = None;
                self.settle();
            }
            _ => {}
        }
    }

    fn is_done(&self) -> bool {
        self.phase == Phase::Idle && self.q.in_flight.is_empty()
    }
}
