//! A counting semaphore, as a sans-IO state machine: at most `max` holders at once.
//!
//! Contenders take turns on a lock, and the one whose turn it is takes a lease node when
//! fewer than `max` exist, then gives the turn up; so only one contender at a time counts
//! the leases, and no two can both see room for one. Two layouts, one per library:
//!
//! - **Kazoo's `Semaphore`** ([`Flavor::Kazoo`]): the turn is a Kazoo lock at
//!   `<path>-__lock__`, the leases are ephemeral nodes `<path>/<32 hex digits>`, and
//!   `<path>` stores `max` as text. A semaphore whose stored `max` differs is refused, as
//!   Kazoo refuses it.
//! - **Curator's `InterProcessSemaphoreV2`** ([`Flavor::Curator`]): the turn is an
//!   `InterProcessMutex` at `<path>/locks`, the leases are ephemeral sequential nodes
//!   `<path>/leases/_c_<uuid>-lease-<sequence>`, and a lease counts once there are at
//!   most `max` of them (its own included).
//!
//! The faults are handled as in [`crate::lock`]: lease names carry the machine's id, so a
//! create whose reply was lost is found again (after a `sync`: the server the session
//! moved to may lag the one that took the create), and a lease of an earlier create that
//! shows up late is deleted; [`Recipe::release`] works in any phase and
//! removes the lease and the turn node, retried until the server confirms; a held lease
//! reports [`Outcome::Suspended`], [`Outcome::Resumed`] and [`Outcome::Lost`]; the deadline
//! holds during outages.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use zk_proto::ErrorCode;
use zk_proto::consts::CreateMode;
use zk_proto::records::*;
use zk_proto::session::{AppState, Error as SessionError, WatchedEvent};

use crate::lock::{self, Flavor, uuid_of};
use crate::{Recipe, Tag};

/// What happened to the lease, for the application.
pub type Outcome = lock::Outcome;

/// Something the semaphore machine has for its driver.
pub type Output = crate::Output<Outcome>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Waiting for the turn.
    Turn,
    /// Holding the turn: counting leases, taking one.
    Leasing,
    Held,
    Releasing,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    /// Kazoo: creating `<path>` with `max` in it.
    MakePath,
    /// Kazoo: reading the `max` an existing `<path>` stores.
    ReadMax,
    /// Curator: creating `<path>/leases`.
    MakeLeases,
    Create,
    /// Catching the server up with the leader before a `Find` or `Sweep`: its reply only
    /// orders the listing after it.
    Sync,
    /// Looking for our lease after a create whose reply was lost.
    Find,
    /// Looking, before the release is done, for leases of earlier creates that landed late.
    Sweep,
    List,
    Delete(String),
}

/// A counting semaphore on `path`, one lease at a time per machine.
#[derive(Debug)]
pub struct Semaphore {
    path: String,
    flavor: Flavor,
    max: u32,
    id: String,
    data: Bytes,
    acl: Vec<Acl>,
    turn: lock::Lock,
    turn_held: bool,
    phase: Phase,
    creates: u64,
    /// A create's reply was lost since the last look for strays (see [`crate::lock`]).
    doubt: bool,
    /// Our lease node's name (Kazoo) or name prefix (Curator) for this create.
    name: String,
    lease: Option<String>,
    lease_session: i64,
    session: i64,
    suspended: bool,
    deadline: Option<Instant>,
    next_tag: u64,
    in_flight: HashMap<Tag, Purpose>,
    watching: Option<Tag>,
    out: VecDeque<Output>,
}

impl Semaphore {
    /// A semaphore at `path` with `max` leases, in `flavor`'s layout, storing `data` in
    /// its nodes (Kazoo's identifier). `id` must be unique among every contender, as for
    /// [`lock::Lock::new`]. `max` below 1 counts as 1.
    pub fn new(path: &str, id: &str, max: u32, flavor: Flavor, data: Bytes, acl: Vec<Acl>) -> Self {
        let path = path.trim_end_matches('/').to_string();
        let (turn_dir, flavor) = match flavor {
            Flavor::Curator | Flavor::CuratorLatch => (format!("{path}/locks"), Flavor::Curator),
            Flavor::Kazoo => (format!("{path}-{}", lock::MARKER), Flavor::Kazoo),
        };
        let turn = lock::Lock::new(&turn_dir, &format!("{id}-turn"), acl.clone())
            .with_flavor(flavor)
            .with_data(data.clone());
        Semaphore {
            path,
            flavor,
            max: max.max(1),
            id: id.to_string(),
            data,
            acl,
            turn,
            turn_held: false,
            phase: Phase::Idle,
            creates: 0,
            doubt: false,
            name: String::new(),
            lease: None,
            lease_session: 0,
            session: 0,
            suspended: false,
            deadline: None,
            next_tag: 0,
            in_flight: HashMap::new(),
            watching: None,
            out: VecDeque::new(),
        }
    }

    /// The lease node's path, once created.
    pub fn lease(&self) -> Option<&str> {
        self.lease.as_deref()
    }

    /// Whether a lease is held now (and not suspended).
    pub fn is_held(&self) -> bool {
        self.phase == Phase::Held && !self.suspended
    }

    /// Starts acquiring a lease on the session `session_id`, giving up at `deadline`.
    /// Ignored while an acquisition or release is under way.
    pub fn acquire(&mut self, now: Instant, session_id: i64, deadline: Option<Instant>) {
        if !matches!(self.phase, Phase::Idle | Phase::Done) || !self.turn.is_done() {
            return;
        }
        self.session = session_id;
        self.suspended = false;
        self.deadline = deadline;
        self.lease = None;
        self.phase = Phase::Turn;
        self.turn.acquire(now, session_id, None);
        self.pump_turn(now);
    }

    fn leases_dir(&self) -> String {
        match self.flavor {
            Flavor::Kazoo => self.path.clone(),
            _ => format!("{}/leases", self.path),
        }
    }

    // ----- requests -----

    /// Own tags are odd, the turn lock's even: one tag space for the driver.
    fn submit(&mut self, purpose: Purpose, request: Request) -> Tag {
        let tag = Tag(self.next_tag * 2 + 1);
        self.next_tag += 1;
        self.in_flight.insert(tag, purpose);
        self.out.push_back(Output::Submit(tag, request));
        tag
    }

    fn emit(&mut self, outcome: Outcome) {
        self.out.push_back(Output::Outcome(outcome));
    }

    /// Takes the turn lock's outputs, with its tags moved to the even ones.
    fn pump_turn(&mut self, now: Instant) {
        while let Some(out) = self.turn.poll_output() {
            match out {
                crate::Output::Submit(tag, request) => {
                    self.out.push_back(Output::Submit(Tag(tag.0 * 2), request))
                }
                crate::Output::Outcome(o) => self.turn_outcome(now, o),
            }
        }
    }

    fn turn_outcome(&mut self, now: Instant, outcome: Outcome) {
        match outcome {
            Outcome::Acquired { .. } => {
                self.turn_held = true;
                match self.phase {
                    Phase::Turn => {
                        self.phase = Phase::Leasing;
                        self.start_leasing();
                    }
                    _ => self.turn.release(now),
                }
            }
            // Our turn's session is gone mid-acquisition: so is any lease it took.
            Outcome::Lost => {
                self.turn_held = false;
                if matches!(self.phase, Phase::Leasing | Phase::Turn) {
                    self.discard_lease();
                    self.watching = None;
                    self.phase = Phase::Turn;
                    self.turn.acquire(now, self.session, None);
                }
            }
            Outcome::Released => {
                self.turn_held = false;
                self.settle();
            }
            Outcome::Failed(e) => {
                self.turn_held = false;
                if matches!(self.phase, Phase::Turn | Phase::Leasing) {
                    self.fail(now, e);
                } else {
                    self.settle();
                }
            }
            Outcome::Suspended
            | Outcome::Resumed
            | Outcome::TimedOut
            | Outcome::RevocationRequested => {}
        }
    }

    fn start_leasing(&mut self) {
        match self.flavor {
            Flavor::Kazoo => self.make_path(),
            _ => self.create(),
        }
    }

    fn make_path(&mut self) {
        let request = Request::Create(CreateRequest {
            path: self.path.clone(),
            data: Bytes::from(self.max.to_string()),
            acl: self.acl.clone(),
            flags: CreateMode::Persistent.as_i32(),
        });
        self.submit(Purpose::MakePath, request);
    }

    fn read_max(&mut self) {
        let request = Request::GetData(GetDataRequest {
            path: self.path.clone(),
            watch: false,
        });
        self.submit(Purpose::ReadMax, request);
    }

    fn make_leases(&mut self) {
        let request = Request::Create(CreateRequest {
            path: self.leases_dir(),
            data: Bytes::new(),
            acl: self.acl.clone(),
            flags: CreateMode::Persistent.as_i32(),
        });
        self.submit(Purpose::MakeLeases, request);
    }

    /// The lease name (Kazoo) or name prefix (Curator) of this machine's `create`th create.
    fn name_of(&self, create: u64) -> String {
        let uuid = uuid_of(&self.id, create);
        match self.flavor {
            Flavor::Kazoo => uuid.replace('-', ""),
            _ => format!("_c_{uuid}-lease-"),
        }
    }

    /// Whether `child` is a lease of an earlier create of this machine: one whose reply was
    /// lost and that a lagging server did not show when it was looked for.
    fn earlier_own(&self, child: &str) -> bool {
        (1..self.creates).any(|k| child.starts_with(&self.name_of(k)))
    }

    /// Deletes the leases of earlier creates of ours among `children`, unless a delete of
    /// them is under way.
    fn discard_strays(&mut self, children: &[String]) {
        let dir = self.leases_dir();
        let strays: Vec<String> = children
            .iter()
            .filter(|c| self.earlier_own(c))
            .map(|c| format!("{dir}/{c}"))
            .filter(|n| {
                !self
                    .in_flight
                    .values()
                    .any(|p| matches!(p, Purpose::Delete(d) if d == n))
            })
            .collect();
        for stray in strays {
            self.discard(stray);
        }
    }

    fn create(&mut self) {
        self.creates += 1;
        self.name = self.name_of(self.creates);
        let (path, mode) = match self.flavor {
            Flavor::Kazoo => (
                format!("{}/{}", self.path, self.name),
                CreateMode::Ephemeral,
            ),
            _ => (
                format!("{}/{}", self.leases_dir(), self.name),
                CreateMode::EphemeralSequential,
            ),
        };
        let request = Request::Create2(CreateRequest {
            path,
            data: self.data.clone(),
            acl: self.acl.clone(),
            flags: mode.as_i32(),
        });
        self.submit(Purpose::Create, request);
    }

    fn list_for(&mut self, purpose: Purpose, watch: bool) -> Tag {
        let request = Request::GetChildren(GetChildrenRequest {
            path: self.leases_dir(),
            watch,
        });
        self.submit(purpose, request)
    }

    fn list(&mut self) {
        let tag = self.list_for(Purpose::List, true);
        self.watching = Some(tag);
    }

    fn discard(&mut self, node: String) {
        let request = Request::Delete(DeleteRequest {
            path: node.clone(),
            version: -1,
        });
        self.submit(Purpose::Delete(node), request);
    }

    fn discard_lease(&mut self) {
        if let Some(node) = self.lease.take() {
            self.discard(node);
        }
    }

    fn deciding(&self) -> bool {
        self.in_flight
            .values()
            .any(|p| matches!(p, Purpose::Create | Purpose::Find | Purpose::Sweep))
    }

    /// Syncs the server with the leader, then lists the leases for `purpose`.
    fn sync_then_list(&mut self, purpose: Purpose) {
        let sync = Request::Sync(SyncRequest {
            path: self.leases_dir(),
        });
        self.submit(Purpose::Sync, sync);
        self.list_for(purpose, false);
    }

    /// In the Releasing phase: once every create's fate is known, the lease deleted and
    /// the turn given back, report `Released`.
    fn settle(&mut self) {
        if self.phase != Phase::Releasing || self.deciding() {
            return;
        }
        self.discard_lease();
        // A create whose reply was lost may have landed after a lagging server hid it: a
        // lease of ours that would take a slot for the rest of the session. Look once
        // more, after a sync, before the release is done.
        if self.doubt {
            self.doubt = false;
            return self.sync_then_list(Purpose::Sweep);
        }
        let deleting = self
            .in_flight
            .values()
            .any(|p| matches!(p, Purpose::Delete(_)));
        if !deleting && self.turn.is_done() {
            self.phase = Phase::Done;
            self.emit(Outcome::Released);
        }
    }

    fn fail(&mut self, now: Instant, e: SessionError) {
        self.discard_lease();
        self.turn.release(now);
        self.watching = None;
        self.phase = Phase::Done;
        self.emit(Outcome::Failed(e));
    }

    /// The session that held the lease is gone: so is the lease (deleted again in case the
    /// server has not let it go yet).
    fn lost(&mut self) {
        self.discard_lease();
        self.suspended = false;
        self.phase = Phase::Done;
        self.emit(Outcome::Lost);
    }

    /// The lease is ours: give the turn back to the next contender.
    fn got_it(&mut self, now: Instant, node: String) {
        self.watching = None;
        self.phase = Phase::Held;
        self.suspended = false;
        let fencing = crate::sequence_of(&node, "lease-").unwrap_or(0);
        self.emit(Outcome::Acquired { node, fencing });
        self.turn.release(now);
    }

    // ----- replies -----

    fn made_path(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) => self.list(),
            Err(SessionError::Server(ErrorCode::NodeExists)) => self.read_max(),
            Err(e) if e.is_retryable() => self.make_path(),
            Err(e) => self.in_doubt(now, e),
        }
    }

    fn read_max_reply(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetData(r)) => {
                let stored = std::str::from_utf8(&r.data)
                    .ok()
                    .and_then(|t| t.trim().parse::<u32>().ok());
                match stored {
                    Some(m) if m != self.max => self.fail(
                        now,
                        SessionError::InvalidRequest(
                            "the semaphore stores another maximum of leases",
                        ),
                    ),
                    _ => self.list(),
                }
            }
            Ok(_) => self.fail(
                now,
                SessionError::InvalidRequest("unexpected reply to getData"),
            ),
            Err(SessionError::Server(ErrorCode::NoNode)) => self.make_path(),
            Err(e) if e.is_retryable() => self.read_max(),
            Err(e) => self.in_doubt(now, e),
        }
    }

    fn made_leases(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NodeExists)) => self.create(),
            Err(e) if e.is_retryable() => self.make_leases(),
            Err(e) => self.in_doubt(now, e),
        }
    }

    fn created(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        if self.phase == Phase::Releasing {
            // Given up meanwhile: find out what was made, then delete it.
            return match reply {
                Ok(Response::Create2(r)) => {
                    self.lease = Some(r.path);
                    self.settle();
                }
                Err(SessionError::ConnectionLoss) => self.find(),
                Err(SessionError::Server(ErrorCode::NodeExists)) => {
                    self.lease = Some(format!("{}/{}", self.leases_dir(), self.name));
                    self.settle();
                }
                _ => self.settle(),
            };
        }
        match reply {
            Ok(Response::Create2(r)) => {
                self.lease = Some(r.path);
                self.lease_session = self.session;
                self.list();
            }
            Ok(_) => self.fail(
                now,
                SessionError::InvalidRequest("unexpected reply to create2"),
            ),
            // Kazoo's names are ours alone: it exists, so an earlier try made it.
            Err(SessionError::Server(ErrorCode::NodeExists)) => {
                self.lease = Some(format!("{}/{}", self.leases_dir(), self.name));
                self.lease_session = self.session;
                self.list();
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => match self.flavor {
                Flavor::Kazoo => self.make_path(),
                _ => self.make_leases(),
            },
            Err(SessionError::ConnectionLoss) => self.find(),
            Err(e) if e.is_retryable() => self.create(),
            Err(e) => self.in_doubt(now, e),
        }
    }

    /// Looks for our lease after a lost create reply, after a `sync`: the server we are
    /// connected to now may lag the one that took the create.
    fn find(&mut self) {
        self.doubt = true;
        self.sync_then_list(Purpose::Find);
    }

    fn swept(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetChildren(r)) => self.discard_strays(&r.children),
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => self.doubt = true,
            // No directory (nothing of ours), or nothing more can be asked.
            _ => {}
        }
        self.settle();
    }

    fn found(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetChildren(r)) => {
                self.discard_strays(&r.children);
                if let Some(name) = r.children.iter().find(|c| c.starts_with(&self.name)) {
                    self.lease = Some(format!("{}/{name}", self.leases_dir()));
                    self.lease_session = self.session;
                }
                match (self.phase, self.lease.is_some()) {
                    (Phase::Releasing, _) => self.settle(),
                    (_, true) => self.list(),
                    (_, false) => self.create(),
                }
            }
            Ok(_) => self.fail(now, SessionError::InvalidRequest("unexpected reply")),
            Err(e) if e.is_retryable() => self.find(),
            Err(SessionError::Server(ErrorCode::NoNode)) if self.phase == Phase::Releasing => {
                self.settle()
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => self.create(),
            Err(e) => self.in_doubt(now, e),
        }
    }

    fn listed(&mut self, now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        if self.phase != Phase::Leasing || self.watching != Some(tag) {
            return;
        }
        match reply {
            Ok(Response::GetChildren(r)) => {
                // Leases of earlier creates of ours that landed late: not contenders, and
                // not ours to keep. They count until they are gone (their deletion wakes
                // the watch set by this listing).
                self.discard_strays(&r.children);
                let ours = self
                    .lease
                    .as_deref()
                    .and_then(|l| l.rsplit('/').next())
                    .filter(|n| r.children.iter().any(|c| c == n))
                    .map(str::to_string);
                let count = r.children.len() as u64;
                let max = u64::from(self.max);
                match (self.flavor, ours) {
                    // Kazoo: a lease of ours is there already; or there is room for one.
                    (Flavor::Kazoo, Some(name)) => {
                        self.got_it(now, format!("{}/{name}", self.path))
                    }
                    (Flavor::Kazoo, None) if count < max => {
                        self.watching = None;
                        self.create();
                    }
                    // Curator: ours counts once at most `max` leases exist.
                    (Flavor::Kazoo, None) => {}
                    (_, Some(name)) if count <= max => {
                        self.got_it(now, format!("{}/{name}", self.leases_dir()))
                    }
                    (_, Some(_)) => {}
                    // Our lease is gone (its session ended): take a new one.
                    (_, None) => {
                        self.watching = None;
                        self.lease = None;
                        self.create();
                    }
                }
            }
            Ok(_) => self.fail(now, SessionError::InvalidRequest("unexpected reply")),
            Err(SessionError::Server(ErrorCode::NoNode)) => {
                self.watching = None;
                self.start_leasing();
            }
            Err(e) if e.is_retryable() => self.list(),
            Err(e) => self.in_doubt(now, e),
        }
    }

    fn deleted(&mut self, node: String, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NoNode)) => {}
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => {
                return self.discard(node);
            }
            Err(e) => self.emit(Outcome::Failed(e)),
        }
        self.settle();
    }

    /// A reply to a request of an earlier turn: delete a lease it made.
    fn stale(&mut self, purpose: Purpose, reply: Result<Response, SessionError>) {
        match (purpose, reply) {
            (Purpose::Create, Ok(Response::Create2(r))) => self.discard(r.path),
            (Purpose::Find, Ok(Response::GetChildren(r))) => {
                if let Some(name) = r.children.iter().find(|c| c.starts_with(&self.name)) {
                    let node = format!("{}/{name}", self.leases_dir());
                    self.discard(node);
                }
            }
            (Purpose::Create | Purpose::Find, Err(SessionError::ConnectionLoss)) => {
                // In doubt: look once more.
                self.find();
            }
            _ => {}
        }
    }

    /// A request failed for a reason no retry fixes, or the session expired: an expiry
    /// mid-acquisition means starting over with a new turn; anything else ends it.
    fn in_doubt(&mut self, now: Instant, e: SessionError) {
        if e == SessionError::SessionExpired && matches!(self.phase, Phase::Turn | Phase::Leasing) {
            // The turn went with the session; the turn lock hears of it and starts over.
            return;
        }
        let now_phase = self.phase;
        if now_phase == Phase::Releasing {
            return self.settle();
        }
        self.fail(now, e);
    }
}

impl lock::Acquire for Semaphore {
    fn acquire(&mut self, now: Instant, session_id: i64, deadline: Option<Instant>) {
        Semaphore::acquire(self, now, session_id, deadline);
    }
}

impl Recipe for Semaphore {
    type Outcome = Outcome;

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Turn | Phase::Leasing => self.deadline,
            _ => None,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Turn | Phase::Leasing)
            && self.deadline.is_some_and(|d| now >= d)
        {
            self.emit(Outcome::TimedOut);
            self.release(now);
        }
    }

    fn handle_state(&mut self, now: Instant, state: AppState, session_id: i64) {
        self.turn.handle_state(now, state, session_id);
        match state {
            AppState::Suspended if self.phase == Phase::Held && !self.suspended => {
                self.suspended = true;
                self.emit(Outcome::Suspended);
            }
            AppState::Connected => {
                self.session = session_id;
                if self.phase == Phase::Held && self.suspended {
                    self.suspended = false;
                    if session_id == self.lease_session {
                        self.emit(Outcome::Resumed);
                    } else {
                        self.lost();
                    }
                }
            }
            AppState::Lost if self.phase == Phase::Held => self.lost(),
            _ => {}
        }
        self.pump_turn(now);
    }

    fn handle_reply(&mut self, now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        if tag.0.is_multiple_of(2) {
            self.turn.handle_reply(now, Tag(tag.0 / 2), reply);
            self.pump_turn(now);
            // A release waits for the turn to have nothing in flight: this reply may have
            // been its last.
            return self.settle();
        } else if let Some(purpose) = self.in_flight.remove(&tag) {
            if self.phase == Phase::Turn && !matches!(purpose, Purpose::Delete(_)) {
                // From a turn that ended with its session: only what it made matters.
                self.stale(purpose, reply);
                return self.pump_turn(now);
            }
            match purpose {
                Purpose::MakePath => self.made_path(now, reply),
                Purpose::ReadMax => self.read_max_reply(now, reply),
                Purpose::MakeLeases => self.made_leases(now, reply),
                Purpose::Create => self.created(now, reply),
                // What counts is the listing it orders: its own outcome changes nothing.
                Purpose::Sync => {}
                Purpose::Find => self.found(now, reply),
                Purpose::Sweep => self.swept(reply),
                Purpose::List => self.listed(now, tag, reply),
                Purpose::Delete(node) => self.deleted(node, reply),
            }
        }
        self.pump_turn(now);
    }

    fn handle_watch(&mut self, now: Instant, tag: Tag, event: &WatchedEvent) {
        if tag.0.is_multiple_of(2) {
            self.turn.handle_watch(now, Tag(tag.0 / 2), event);
        } else if self.watching == Some(tag) && self.phase == Phase::Leasing {
            self.list();
        }
        self.pump_turn(now);
    }

    fn release(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Turn | Phase::Leasing | Phase::Held) {
            self.phase = Phase::Releasing;
            self.watching = None;
            self.suspended = false;
            self.turn.release(now);
            self.pump_turn(now);
            self.settle();
        }
    }

    fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::Done)
            && self.in_flight.is_empty()
            && self.turn.is_done()
    }
}
