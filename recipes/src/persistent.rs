//! A node that stays there (Curator's `PersistentNode`), as a sans-IO state machine: created
//! with its data, watched, and created again with its latest data whenever it goes (the
//! session that owned the ephemeral node expired, someone deleted it), until released.
//!
//! - **Creates are idempotent.** The node's path is fixed (sequential modes are refused),
//!   so a create whose reply was lost is sent again: `NodeExists` means it is there. An
//!   existing node is adopted and its data set to ours, as Curator does.
//! - **It comes back.** An `exists` watch on the node reports its deletion, and the node is
//!   created again at once; a new session (the old one expired) creates it again too.
//!   Each (re)creation is reported ([`Outcome::Created`]).
//! - **Data follows.** [`PersistentNode::set_data`] keeps the new data for every later
//!   creation and writes it to the node, again after a lost reply.
//! - **Release** deletes the node, again until the server confirms it (or the session that
//!   owned the ephemeral node is gone).
//! - No refusal is retried in the turn that brought it: a refusal only time can change
//!   (a full queue, a request never sent) waits [`crate::protected::BACKOFF`] or for the
//!   connection to come back.
//!
//! [`crate::handles::GroupMember`] is one ephemeral `PersistentNode` per member, in
//! Curator's `GroupMember` layout.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use zk_proto::ErrorCode;
use zk_proto::consts::{CreateMode, EventType};
use zk_proto::records::*;
use zk_proto::session::{AppState, Error as SessionError, WatchedEvent};

use crate::io::{again, parent_of};
use crate::protected::BACKOFF;
use crate::{Output, Recipe, Tag};

/// What a persistent node reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The node is there with our data: created, created again, or adopted.
    Created(String),
    /// The server refused the node for good (no permission, a bad ACL, a closed session);
    /// nothing more is tried.
    Failed(SessionError),
    /// After a release: the node is gone, confirmed by the server.
    Released,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    /// Creating a missing ancestor.
    Parent,
    Create,
    /// Setting our data on a node that existed already, or after `set_data`.
    SetData,
    Watch,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Running,
    Releasing,
    Done,
}

/// A node kept in place: see the [module](crate::persistent).
#[derive(Debug)]
pub struct PersistentNode {
    path: String,
    mode: CreateMode,
    ttl: i64,
    data: Bytes,
    acl: Vec<Acl>,
    phase: Phase,
    /// The node is there (created or adopted) as far as this machine knows.
    there: bool,
    /// The session the node was last made on.
    node_session: i64,
    session: i64,
    /// The data was changed since it was last written.
    dirty: bool,
    /// Release deletes the node (not for a TTL-kept container, which the server reaps).
    delete_on_release: bool,
    watching: Option<Tag>,
    /// Requests to send again at these times (refusals only time can change).
    retry: Vec<(Instant, Purpose)>,
    next_tag: u64,
    in_flight: HashMap<Tag, Purpose>,
    out: VecDeque<Output<Outcome>>,
}

impl PersistentNode {
    /// A node at `path` in `mode` (not sequential) holding `data`, with `acl`. For a TTL
    /// mode, `ttl` is its time to live in milliseconds.
    pub fn new(
        path: &str,
        mode: CreateMode,
        ttl: i64,
        data: Bytes,
        acl: Vec<Acl>,
    ) -> Result<PersistentNode, SessionError> {
        zk_proto::path::validate_path(path)?;
        if path == "/" {
            return Err(SessionError::InvalidRequest("the root cannot be kept"));
        }
        if mode.is_sequential() {
            return Err(SessionError::InvalidRequest(
                "a persistent node needs a fixed path: sequential modes are not kept",
            ));
        }
        Ok(PersistentNode {
            path: path.to_string(),
            mode,
            ttl,
            data,
            acl,
            phase: Phase::Idle,
            there: false,
            node_session: 0,
            session: 0,
            dirty: false,
            delete_on_release: true,
            watching: None,
            retry: Vec::new(),
            next_tag: 1,
            in_flight: HashMap::new(),
            out: VecDeque::new(),
        })
    }

    /// With `false`, a release leaves the node for the server to remove (a container kept
    /// by a [`Toucher`], as Curator's `PersistentTtlNode` leaves it).
    pub fn delete_on_release(mut self, delete: bool) -> PersistentNode {
        self.delete_on_release = delete;
        self
    }

    /// Creates the node (with its missing parents) on the session `session_id`.
    pub fn start(&mut self, session_id: i64) {
        if self.phase != Phase::Idle {
            return;
        }
        self.phase = Phase::Running;
        self.session = session_id;
        self.create();
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The data every later creation writes; written to the node now as well.
    pub fn set_data(&mut self, data: Bytes) {
        self.data = data;
        if self.phase != Phase::Running {
            return;
        }
        if self.there && !self.busy(&Purpose::SetData) {
            self.write_data();
        } else {
            // Written once the create in flight has answered.
            self.dirty = true;
        }
    }

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

    fn busy(&self, purpose: &Purpose) -> bool {
        self.in_flight.values().any(|p| p == purpose)
    }

    fn create_request(&self, path: &str, data: Bytes, mode: CreateMode) -> Request {
        let r = CreateRequest {
            path: path.to_string(),
            data,
            acl: self.acl.clone(),
            flags: mode.as_i32(),
        };
        match mode {
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl => {
                Request::CreateTtl(CreateTtlRequest {
                    path: r.path,
                    data: r.data,
                    acl: r.acl,
                    flags: r.flags,
                    ttl: self.ttl,
                })
            }
            CreateMode::Container => Request::CreateContainer(r),
            _ => Request::Create(r),
        }
    }

    fn create(&mut self) {
        if self.busy(&Purpose::Create) {
            return;
        }
        self.dirty = false;
        let request = self.create_request(&self.path, self.data.clone(), self.mode);
        self.node_session = self.session;
        self.submit(Purpose::Create, request);
    }

    /// Creates every missing ancestor, top down (one that exists is fine), then the node
    /// again, in one go: the server applies them in order.
    fn make_parents(&mut self) {
        let mut ancestors = Vec::new();
        let mut at = parent_of(&self.path);
        while let Some(p) = at {
            ancestors.push(p.to_string());
            at = parent_of(p);
        }
        for p in ancestors.into_iter().rev() {
            let request = self.create_request(&p, Bytes::new(), CreateMode::Persistent);
            self.submit(Purpose::Parent, request);
        }
        self.create();
    }

    fn write_data(&mut self) {
        self.dirty = false;
        let request = Request::SetData(SetDataRequest {
            path: self.path.clone(),
            data: self.data.clone(),
            version: -1,
        });
        self.submit(Purpose::SetData, request);
    }

    fn watch(&mut self) {
        if self.watching.is_some() {
            return;
        }
        let request = Request::Exists(ExistsRequest {
            path: self.path.clone(),
            watch: true,
        });
        self.watching = Some(self.submit(Purpose::Watch, request));
    }

    /// The node is there: watch it, and bring its data up to date.
    fn arrived(&mut self, adopted: bool) {
        self.there = true;
        self.watch();
        if adopted || self.dirty {
            self.write_data();
        }
        self.emit(Outcome::Created(self.path.clone()));
    }

    fn fail(&mut self, e: SessionError) {
        self.phase = Phase::Done;
        self.retry.clear();
        self.emit(Outcome::Failed(e));
    }

    /// A refusal: sent again at once after a lost connection (the session holds it for
    /// the next one), otherwise once a connection is back or after a pause.
    fn again_later(&mut self, now: Instant, purpose: Purpose, e: &SessionError) {
        match e {
            SessionError::ConnectionLoss => self.resend(purpose),
            _ => {
                if !self.retry.iter().any(|(_, p)| *p == purpose) {
                    self.retry.push((now + BACKOFF, purpose));
                }
            }
        }
    }

    fn resend(&mut self, purpose: Purpose) {
        match (self.phase, purpose) {
            (Phase::Running, Purpose::Create) => self.create(),
            (Phase::Running, Purpose::SetData) => self.write_data(),
            (Phase::Running, Purpose::Watch) => self.watch(),
            (Phase::Releasing, Purpose::Delete) => self.delete(),
            _ => {}
        }
    }

    fn delete(&mut self) {
        let request = Request::Delete(DeleteRequest {
            path: self.path.clone(),
            version: -1,
        });
        self.submit(Purpose::Delete, request);
    }

    /// In the Releasing phase: delete the node once no create is in flight.
    fn clean_up(&mut self) {
        if self.busy(&Purpose::Create) || self.busy(&Purpose::Delete) {
            return;
        }
        self.delete();
    }

    fn created(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        if self.phase == Phase::Releasing {
            return self.clean_up();
        }
        if self.phase != Phase::Running {
            return;
        }
        match reply {
            Ok(_) => self.arrived(false),
            Err(SessionError::Server(ErrorCode::NodeExists)) => self.arrived(true),
            Err(SessionError::Server(ErrorCode::NoNode)) => self.make_parents(),
            // Maybe applied: the create again says (NodeExists).
            Err(e) if again(&e) => self.again_later(now, Purpose::Create, &e),
            Err(e) => self.fail(e),
        }
    }

    fn data_set(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        if self.phase != Phase::Running {
            return;
        }
        match reply {
            Ok(_) => {
                if self.dirty {
                    self.write_data();
                }
            }
            // Gone meanwhile: make it again, with the data (a create in flight or one that
            // finds it back makes this a no-op).
            Err(SessionError::Server(ErrorCode::NoNode)) => {
                self.there = false;
                self.create();
            }
            Err(e) if again(&e) => self.again_later(now, Purpose::SetData, &e),
            Err(e) => self.fail(e),
        }
    }

    fn watch_set(&mut self, now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        if self.watching != Some(tag) || self.phase != Phase::Running {
            return;
        }
        match reply {
            Ok(_) => {}
            // It went before the watch was set: make it again.
            Err(SessionError::Server(ErrorCode::NoNode)) => {
                self.watching = None;
                self.there = false;
                self.create();
            }
            Err(e) if again(&e) => {
                self.watching = None;
                self.again_later(now, Purpose::Watch, &e);
            }
            Err(e) => self.fail(e),
        }
    }

    fn deleted(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NoNode)) => {
                // A create still in flight may land after: look once more for it.
                if self.busy(&Purpose::Create) {
                    return;
                }
                self.phase = Phase::Done;
                self.there = false;
                self.emit(Outcome::Released);
            }
            Err(e) if again(&e) => self.again_later(now, Purpose::Delete, &e),
            Err(e) => {
                self.phase = Phase::Done;
                self.emit(Outcome::Failed(e));
            }
        }
    }
}

impl Recipe for PersistentNode {
    type Outcome = Outcome;

    fn poll_output(&mut self) -> Option<Output<Outcome>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.retry.iter().map(|(at, _)| *at).min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        let (due, later): (Vec<_>, Vec<_>) = self.retry.drain(..).partition(|(at, _)| *at <= now);
        self.retry = later;
        for (_, purpose) in due {
            self.resend(purpose);
        }
    }

    fn handle_state(&mut self, now: Instant, state: AppState, session_id: i64) {
        if state != AppState::Connected {
            return;
        }
        self.session = session_id;
        // A connection is back: what waited for time may go now.
        for r in &mut self.retry {
            r.0 = now;
        }
        self.handle_timeout(now);
        // A new session: an ephemeral node went with the old one (or will). Make it again;
        // NodeExists adopts one that is still there.
        if self.phase == Phase::Running && session_id != self.node_session {
            self.there = false;
            self.create();
        }
    }

    fn handle_reply(&mut self, now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        let Some(purpose) = self.in_flight.remove(&tag) else {
            return;
        };
        match purpose {
            Purpose::Parent => {}
            Purpose::Create => self.created(now, reply),
            Purpose::SetData => self.data_set(now, reply),
            Purpose::Watch => self.watch_set(now, tag, reply),
            Purpose::Delete => self.deleted(now, reply),
        }
    }

    fn handle_watch(&mut self, _now: Instant, tag: Tag, event: &WatchedEvent) {
        if self.watching != Some(tag) {
            return;
        }
        self.watching = None;
        if self.phase != Phase::Running {
            return;
        }
        match event.kind {
            EventType::NodeDeleted => {
                self.there = false;
                self.create();
            }
            // Someone else's write is theirs to make (as in Curator); keep watching.
            _ => self.watch(),
        }
    }

    fn release(&mut self, _now: Instant) {
        match self.phase {
            Phase::Idle => self.phase = Phase::Done,
            Phase::Running if !self.delete_on_release => {
                self.phase = Phase::Done;
                self.retry.clear();
                self.watching = None;
                self.emit(Outcome::Released);
            }
            Phase::Running => {
                self.phase = Phase::Releasing;
                self.retry.clear();
                self.watching = None;
                self.clean_up();
            }
            Phase::Releasing | Phase::Done => {}
        }
    }

    fn is_done(&self) -> bool {
        self.phase == Phase::Done
            && self
                .in_flight
                .values()
                .all(|p| matches!(p, Purpose::Watch | Purpose::Parent | Purpose::SetData))
    }
}

/// The name of the child a TTL-kept node touches (Curator's `PersistentTtlNode`).
pub const TOUCH_NODE: &str = "touch";

/// What a [`Toucher`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// The touch node was written (or created) at least once.
    Touched,
    /// The server refused the touch node for good (no permission, TTL nodes disabled).
    Failed(SessionError),
}

/// Keeps a container alive the way Curator's `PersistentTtlNode` does: every half TTL it
/// writes the child [`TOUCH_NODE`], a persistent node with a time to live (created when
/// missing). While the touches go on the child stays, and so does the container it keeps
/// from being reaped; once they stop (the process went away, or released), the server
/// deletes the child after its TTL and then the empty container. Nothing is deleted on
/// release: that is the TTL's work, as in Curator.
#[derive(Debug)]
pub struct Toucher {
    path: String,
    ttl_ms: i64,
    every: std::time::Duration,
    acl: Vec<Acl>,
    next: Option<Instant>,
    touched: bool,
    ended: bool,
    next_tag: u64,
    in_flight: HashMap<Tag, bool>,
    out: VecDeque<Output<Touched>>,
}

impl Toucher {
    /// Touches `<container>/touch` with a TTL of `ttl` every half TTL (at least every
    /// millisecond).
    pub fn new(container: &str, ttl: std::time::Duration, acl: Vec<Acl>) -> Toucher {
        Toucher {
            path: format!("{}/{TOUCH_NODE}", container.trim_end_matches('/')),
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1),
            every: (ttl / 2).max(std::time::Duration::from_millis(1)),
            acl,
            next: None,
            touched: false,
            ended: false,
            next_tag: 1,
            in_flight: HashMap::new(),
            out: VecDeque::new(),
        }
    }

    /// Touches now, and from then on every half TTL.
    pub fn start(&mut self, now: Instant) {
        self.next = Some(now);
        self.handle_timeout(now);
    }

    fn submit(&mut self, creating: bool, request: Request) {
        let tag = Tag(self.next_tag);
        self.next_tag += 1;
        self.in_flight.insert(tag, creating);
        self.out.push_back(Output::Submit(tag, request));
    }
}

impl Recipe for Toucher {
    type Outcome = Touched;

    fn poll_output(&mut self) -> Option<Output<Touched>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.next
            .filter(|_| !self.ended && self.in_flight.is_empty())
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.ended || !self.in_flight.is_empty() || self.next.is_none_or(|t| now < t) {
            return;
        }
        self.next = Some(now + self.every);
        let touch = Request::SetData(SetDataRequest {
            path: self.path.clone(),
            data: Bytes::new(),
            version: -1,
        });
        self.submit(false, touch);
    }

    fn handle_reply(&mut self, _now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        let Some(creating) = self.in_flight.remove(&tag) else {
            return;
        };
        if self.ended {
            return;
        }
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NodeExists)) => {
                if !self.touched {
                    self.touched = true;
                    self.out.push_back(Output::Outcome(Touched::Touched));
                }
            }
            // Missing (first time, or expired between touches): create it with its TTL.
            Err(SessionError::Server(ErrorCode::NoNode)) if !creating => {
                let create = Request::CreateTtl(CreateTtlRequest {
                    path: self.path.clone(),
                    data: Bytes::new(),
                    acl: self.acl.clone(),
                    flags: CreateMode::PersistentWithTtl.as_i32(),
                    ttl: self.ttl_ms,
                });
                self.submit(true, create);
            }
            // The container is gone (reaped, deleted): the kept node makes it again, and
            // the next touch follows it.
            Err(SessionError::Server(ErrorCode::NoNode)) => {}
            // Lost or refused for now: the next touch is due in half a TTL anyway.
            Err(e) if again(&e) => {}
            Err(e) => {
                self.ended = true;
                self.out.push_back(Output::Outcome(Touched::Failed(e)));
            }
        }
    }

    fn release(&mut self, _now: Instant) {
        self.ended = true;
    }

    fn is_done(&self) -> bool {
        self.ended && self.in_flight.is_empty()
    }
}
