//! Queues, as sans-IO state machines, in Kazoo's layouts.
//!
//! - [`Queue`] (Kazoo's `Queue`): items are persistent sequential nodes
//!   `<path>/entry-<priority, 3 digits>-<sequence>`, taken in name order (lower priority
//!   numbers first, then oldest first). Taking an item deletes it (conditional on the
//!   version read): the item goes to at most one taker, and is gone before it is
//!   processed.
//! - [`LockingQueue`] (Kazoo's `LockingQueue`): items are `<path>/entries/entry-PPP-<seq>`;
//!   a worker claims one with an ephemeral `<path>/taken/<item name>` holding the worker's
//!   id, and removes the item and its claim in one transaction once processed. An item
//!   whose worker gives up, is dropped, or loses its session goes back to the queue.
//!
//! What the machines add to Kazoo's logic, for the faults a worker meets:
//!
//! - A claim carries the machine's unique id, so a claim whose create reply was lost is
//!   recognised (NodeExists with our id) instead of abandoning the item, and a claim is
//!   only ever deleted or consumed after reading it back as ours: a worker whose session
//!   expired never removes another worker's claim.
//! - Every claim the machine may have made (a get that was cancelled or timed out, an
//!   item found consumed meanwhile, an item put back or dropped) is deleted again until
//!   the server confirms it.
//! - A get lists after a `sync` until one is answered: an item put before the get began
//!   is seen even from a follower that has not applied it yet, so `Empty` means empty.
//! - A put or a take whose reply was lost cannot be told apart from one that never
//!   happened (Kazoo's names carry no id): the machine says so ([`Outcome::InDoubt`])
//!   rather than put twice or report an item it may not have taken.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use zk_proto::ErrorCode;
use zk_proto::consts::{CreateMode, EventType, KeeperState};
use zk_proto::records::*;
use zk_proto::session::{AppState, Error as SessionError, WatchedEvent};

use crate::io::{Io, again, list, parent_of, read, sync};
use crate::lock::uuid_of;
use crate::{Recipe, Tag};

/// The prefix of an item's node name.
pub const ENTRY_PREFIX: &str = "entry-";
/// A locking queue's items, under its path.
pub const ENTRIES: &str = "entries";
/// A locking queue's claims, under its path.
pub const TAKEN: &str = "taken";
/// The priority Kazoo gives an item by default.
pub const DEFAULT_PRIORITY: u16 = 100;

/// What a queue machine tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The item is in the queue.
    Put,
    /// [`Queue::get`]: the item, taken out of the queue.
    Taken(Bytes),
    /// [`Queue::get`] without waiting: nothing to take.
    Empty,
    /// [`LockingQueue::get`]: the item is claimed by this worker until consumed or put
    /// back.
    Claimed {
        /// The item's node name under `<path>/entries`.
        entry: String,
        /// The item.
        data: Bytes,
    },
    /// [`LockingQueue::consume`]: the item and its claim are gone.
    Consumed,
    /// The claim is gone (put back, given up, or an item found consumed by another):
    /// nothing of this machine is left on the server.
    Released,
    /// The claim went with its session: the item is back in the queue for others.
    Lost,
    /// The deadline passed first (a claim made meanwhile is being removed).
    TimedOut,
    /// A put or a take whose reply was lost: it may or may not have happened, and the
    /// layout cannot tell. Nothing is sent again.
    InDoubt,
    /// An error no retry can fix (no permission, a bad path, a closed session).
    Failed(SessionError),
}

/// Something a queue machine has for its driver.
pub type Output = crate::Output<Outcome>;

/// An item's node name prefix for `priority` (0 to 999, lower first): `entry-PPP-`.
pub fn entry_prefix(priority: u16) -> String {
    format!("{ENTRY_PREFIX}{:03}-", priority.min(999))
}

/// The create of an item with `priority` under `dir`.
fn put_request(dir: &str, priority: u16, item: &Bytes, acl: &[Acl]) -> Request {
    Request::Create(CreateRequest {
        path: format!("{dir}/{}", entry_prefix(priority)),
        data: item.clone(),
        acl: acl.to_vec(),
        flags: CreateMode::PersistentSequential.as_i32(),
    })
}

/// Directories to create before an operation goes on, innermost last: after the reply to
/// the create of `dir`, what is left (an error when none can be).
fn dir_made(
    dirs: &mut Vec<String>,
    dir: &str,
    reply: Result<Response, SessionError>,
) -> Result<(), SessionError> {
    match reply {
        Ok(_) | Err(SessionError::Server(ErrorCode::NodeExists)) => {
            dirs.pop();
        }
        Err(SessionError::Server(ErrorCode::NoNode)) => match parent_of(dir) {
            Some(parent) => dirs.push(parent.to_string()),
            None => return Err(SessionError::Server(ErrorCode::NoNode)),
        },
        Err(e) if again(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

fn make_dir(path: &str, acl: &[Acl]) -> Request {
    Request::Create(CreateRequest {
        path: path.to_string(),
        data: Bytes::new(),
        acl: acl.to_vec(),
        flags: CreateMode::Persistent.as_i32(),
    })
}

fn entries_of(mut names: Vec<String>) -> Vec<String> {
    names.retain(|n| n.starts_with(ENTRY_PREFIX));
    names.sort();
    names
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Creating a directory the operation needs (and, after NoNode, its ancestors).
    MakeDir(String),
    Put,
    /// Orders a get's listings after every write committed before the get began.
    Sync,
    List,
    Read(String),
    Take {
        name: String,
        version: i32,
        retried: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Idle,
    Put,
    Get { wait: bool },
}

/// Kazoo's `Queue` at one path: [`Queue::put`] and [`Queue::get`], one at a time.
#[derive(Debug)]
pub struct Queue {
    path: String,
    acl: Vec<Acl>,
    op: Op,
    deadline: Option<Instant>,
    item: Bytes,
    priority: u16,
    /// Directories still to create before the operation goes on, innermost last.
    dirs: Vec<String>,
    candidates: VecDeque<String>,
    current: Option<Tag>,
    /// The listing whose watch a waiting get waits for, and whether it fired.
    watching: Option<Tag>,
    changed: bool,
    /// A sync was answered during this get.
    synced: bool,
    io: Io<Step, Outcome>,
}

impl Queue {
    /// The queue at `path`, its nodes created with `acl`.
    pub fn new(path: &str, acl: Vec<Acl>) -> Queue {
        Queue {
            path: path.trim_end_matches('/').to_string(),
            acl,
            op: Op::Idle,
            deadline: None,
            item: Bytes::new(),
            priority: DEFAULT_PRIORITY,
            dirs: Vec::new(),
            candidates: VecDeque::new(),
            current: None,
            watching: None,
            changed: false,
            synced: false,
            io: Io::new(),
        }
    }

    /// Puts `item` with `priority` (0 to 999, lower first). Ignored while another
    /// operation runs.
    pub fn put(&mut self, _now: Instant, item: Bytes, priority: u16) {
        if self.op != Op::Idle {
            return;
        }
        self.op = Op::Put;
        self.item = item;
        self.priority = priority.min(999);
        self.send_put();
    }

    /// Takes the first item. With `wait`, waits for one until `deadline`; without, reports
    /// [`Outcome::Empty`] when there is none. Ignored while another operation runs.
    pub fn get(&mut self, _now: Instant, wait: bool, deadline: Option<Instant>) {
        if self.op != Op::Idle {
            return;
        }
        self.op = Op::Get { wait };
        self.deadline = deadline;
        self.synced = false;
        self.send_list();
    }

    fn send(&mut self, step: Step, request: Request) {
        self.current = Some(self.io.submit(step, request));
    }

    fn send_put(&mut self) {
        let request = put_request(&self.path, self.priority, &self.item, &self.acl);
        self.send(Step::Put, request);
    }

    fn send_list(&mut self) {
        let syncing = self.io.in_flight.values().any(|s| *s == Step::Sync);
        if !self.synced && !syncing {
            self.io.submit(Step::Sync, sync(&self.path));
        }
        let wait = matches!(self.op, Op::Get { wait: true });
        let request = list(&self.path, wait);
        self.send(Step::List, request);
        self.changed = false;
        self.watching = wait.then_some(self.current).flatten();
    }

    fn finish(&mut self, outcome: Outcome) {
        self.op = Op::Idle;
        self.current = None;
        self.watching = None;
        self.deadline = None;
        self.candidates.clear();
        self.io.emit(outcome);
    }

    /// Creates the queue's directory, then goes on with the operation.
    fn make_dirs(&mut self) {
        self.dirs = vec![self.path.clone()];
        self.next_dir();
    }

    fn next_dir(&mut self) {
        match self.dirs.last().cloned() {
            Some(dir) => {
                let request = make_dir(&dir, &self.acl);
                self.send(Step::MakeDir(dir), request);
            }
            None => match self.op {
                Op::Put => self.send_put(),
                _ => self.send_list(),
            },
        }
    }

    fn on_make_dir(&mut self, dir: String, reply: Result<Response, SessionError>) {
        match dir_made(&mut self.dirs, &dir, reply) {
            Ok(()) => self.next_dir(),
            Err(e) => self.finish(Outcome::Failed(e)),
        }
    }

    fn next_candidate(&mut self) {
        match self.candidates.pop_front() {
            Some(name) => {
                let request = read(&format!("{}/{name}", self.path));
                self.send(Step::Read(name), request);
            }
            // Wait for the listing's watch, unless it fired meanwhile.
            None if matches!(self.op, Op::Get { wait: true }) => {
                if self.changed {
                    self.send_list();
                }
            }
            None => self.finish(Outcome::Empty),
        }
    }

    fn on_list(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetChildren(r)) => {
                self.candidates = entries_of(r.children).into();
                self.next_candidate();
            }
            Ok(_) => self.finish(Outcome::Failed(SessionError::InvalidRequest(
                "unexpected reply to a listing",
            ))),
            // No queue yet: waiting needs the directory for its watch.
            Err(SessionError::Server(ErrorCode::NoNode)) if self.op == (Op::Get { wait: true }) => {
                self.make_dirs()
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => self.finish(Outcome::Empty),
            Err(e) if again(&e) => self.send_list(),
            Err(e) => self.finish(Outcome::Failed(e)),
        }
    }

    fn on_read(&mut self, name: String, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetData(r)) => {
                let request = Request::Delete(DeleteRequest {
                    path: format!("{}/{name}", self.path),
                    version: r.stat.version,
                });
                self.item = r.data;
                let step = Step::Take {
                    name,
                    version: r.stat.version,
                    retried: false,
                };
                self.send(step, request);
            }
            Ok(_) => self.finish(Outcome::Failed(SessionError::InvalidRequest(
                "unexpected reply to a read",
            ))),
            // Taken by another meanwhile.
            Err(SessionError::Server(ErrorCode::NoNode)) => self.next_candidate(),
            Err(e) if again(&e) => self.send_list(),
            Err(e) => self.finish(Outcome::Failed(e)),
        }
    }

    fn on_take(
        &mut self,
        name: String,
        retried: bool,
        version: i32,
        reply: Result<Response, SessionError>,
    ) {
        match reply {
            Ok(_) => {
                let item = std::mem::take(&mut self.item);
                self.finish(Outcome::Taken(item))
            }
            // Our first delete may have landed: whose was it?
            Err(SessionError::Server(ErrorCode::NoNode)) if retried => {
                self.finish(Outcome::InDoubt)
            }
            Err(SessionError::Server(ErrorCode::NoNode | ErrorCode::BadVersion)) => {
                self.next_candidate()
            }
            Err(e) if again(&e) => {
                let request = Request::Delete(DeleteRequest {
                    path: format!("{}/{name}", self.path),
                    version,
                });
                let step = Step::Take {
                    name,
                    version,
                    retried: retried || e.is_retryable(),
                };
                self.send(step, request);
            }
            Err(e) => self.finish(Outcome::Failed(e)),
        }
    }

    fn on_put(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) => self.finish(Outcome::Put),
            Err(SessionError::Server(ErrorCode::NoNode)) => self.make_dirs(),
            // Never sent: send it.
            Err(SessionError::QueueFull(_)) => self.send_put(),
            // Lost on the way back: a second put could be a duplicate.
            Err(e) if again(&e) => self.finish(Outcome::InDoubt),
            Err(e) => self.finish(Outcome::Failed(e)),
        }
    }
}

impl Recipe for Queue {
    type Outcome = Outcome;

    fn poll_output(&mut self) -> Option<Output> {
        self.io.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        matches!(self.op, Op::Get { .. })
            .then_some(self.deadline)
            .flatten()
    }

    fn handle_timeout(&mut self, now: Instant) {
        // Not while a take is under way: its delete decides.
        let taking = matches!(
            self.current.and_then(|t| self.io.in_flight.get(&t)),
            Some(Step::Take { .. })
        );
        if matches!(self.op, Op::Get { .. }) && !taking && self.deadline.is_some_and(|d| now >= d) {
            self.finish(Outcome::TimedOut);
        }
    }

    fn handle_reply(&mut self, _now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        let Some(step) = self.io.in_flight.remove(&tag) else {
            return;
        };
        if step == Step::Sync {
            self.synced |= reply.is_ok();
            return;
        }
        if self.current != Some(tag) || self.op == Op::Idle {
            return;
        }
        match step {
            Step::MakeDir(dir) => self.on_make_dir(dir, reply),
            Step::Put => self.on_put(reply),
            // Answered above.
            Step::Sync => {}
            Step::List => self.on_list(reply),
            Step::Read(name) => self.on_read(name, reply),
            Step::Take {
                name,
                version,
                retried,
            } => self.on_take(name, retried, version, reply),
        }
    }

    fn handle_watch(&mut self, _now: Instant, tag: Tag, event: &WatchedEvent) {
        if self.watching != Some(tag) || !matches!(self.op, Op::Get { wait: true }) {
            return;
        }
        if event.state == KeeperState::Closed {
            return self.finish(Outcome::Failed(SessionError::Closed));
        }
        self.watching = None;
        self.changed = true;
        // Waiting (nothing under way): look again now.
        if self
            .current
            .is_none_or(|t| !self.io.in_flight.contains_key(&t))
        {
            self.send_list();
        }
    }

    fn release(&mut self, _now: Instant) {
        // A take under way finishes on its own (its item is then lost to the caller, as
        // an item taken just before a cancellation always is); nothing else is owed.
        if !matches!(
            self.current.and_then(|t| self.io.in_flight.get(&t)),
            Some(Step::Take { .. })
        ) {
            self.op = Op::Idle;
            self.current = None;
            self.deadline = None;
        }
    }

    fn is_done(&self) -> bool {
        self.op == Op::Idle && self.io.in_flight.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// NodeExists on our claim's create: a create whose reply was lost, or another's?
    Adopt,
    /// Before consuming: still ours?
    Consume,
    /// Before deleting the claim: still ours?
    Unclaim,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Job {
    MakeDir(String),
    Put,
    /// Orders a get's listings after every write committed before the get began.
    Sync,
    ListEntries,
    ListTaken,
    Claim(String),
    ReadClaim(String, Why),
    ReadEntry(String),
    Consume(String),
    /// After a consume whose reply was lost and a claim found gone: is the item gone too?
    EntryGone(String),
    Unclaim(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Putting,
    Getting,
    Holding,
    Consuming,
    /// Deleting a claim this machine may hold (put back, given up, cancelled).
    Returning,
}

/// A worker of Kazoo's `LockingQueue` at one path: [`LockingQueue::put`],
/// [`LockingQueue::get`] (claims an item), then [`LockingQueue::consume`] or
/// [`LockingQueue::put_back`], one at a time. [`Recipe::release`] puts a claimed item back.
#[derive(Debug)]
pub struct LockingQueue {
    entries: String,
    taken: String,
    id: Bytes,
    acl: Vec<Acl>,
    phase: Phase,
    deadline: Option<Instant>,
    session: i64,
    claim_session: i64,
    item: Bytes,
    priority: u16,
    dirs: Vec<String>,
    candidates: VecDeque<String>,
    listed: (Option<Vec<String>>, Option<Vec<String>>),
    watching: Vec<Tag>,
    changed: bool,
    /// The item this machine claimed, or may have claimed (a create in doubt).
    claim: Option<String>,
    /// A consume was sent: a claim found gone may mean it landed.
    consume_sent: bool,
    /// The claim's session ended while consuming: a claim found gone may have gone with
    /// it, and the item to another worker.
    claim_session_ended: bool,
    /// A sync was answered during this get.
    synced: bool,
    current: Option<Tag>,
    io: Io<Job, Outcome>,
}

impl LockingQueue {
    /// A worker of the locking queue at `path` with the unique `id` (as for
    /// [`crate::lock::Lock::new`]) its claims carry, its nodes created with `acl`.
    pub fn new(path: &str, id: &str, acl: Vec<Acl>) -> LockingQueue {
        let path = path.trim_end_matches('/');
        LockingQueue {
            entries: format!("{path}/{ENTRIES}"),
            taken: format!("{path}/{TAKEN}"),
            id: Bytes::from(uuid_of(id, 1).replace('-', "")),
            acl,
            phase: Phase::Idle,
            deadline: None,
            session: 0,
            claim_session: 0,
            item: Bytes::new(),
            priority: DEFAULT_PRIORITY,
            dirs: Vec::new(),
            candidates: VecDeque::new(),
            listed: (None, None),
            watching: Vec::new(),
            changed: false,
            claim: None,
            consume_sent: false,
            claim_session_ended: false,
            synced: false,
            current: None,
            io: Io::new(),
        }
    }

    /// What this worker's claims hold.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// The claimed item's node name, while one is held.
    pub fn claimed(&self) -> Option<&str> {
        (self.phase == Phase::Holding)
            .then_some(self.claim.as_deref())
            .flatten()
    }

    /// Puts `item` with `priority` (0 to 999, lower first). Ignored unless idle.
    pub fn put(&mut self, _now: Instant, item: Bytes, priority: u16) {
        if self.phase != Phase::Idle {
            return;
        }
        self.phase = Phase::Putting;
        self.item = item;
        self.priority = priority.min(999);
        self.send_put();
    }

    /// Claims the first item nobody holds, waiting until `deadline`, on the session
    /// `session_id`. Ignored unless idle.
    pub fn get(&mut self, _now: Instant, session_id: i64, deadline: Option<Instant>) {
        if self.phase != Phase::Idle {
            return;
        }
        self.session = session_id;
        self.phase = Phase::Getting;
        self.deadline = deadline;
        self.synced = false;
        self.send_lists();
    }

    /// Removes the claimed item and its claim, in one transaction, after reading the
    /// claim back as ours. Ignored unless holding an item.
    pub fn consume(&mut self, _now: Instant) {
        let Some(name) = self.claimed().map(str::to_string) else {
            return;
        };
        self.phase = Phase::Consuming;
        self.consume_sent = false;
        self.claim_session_ended = false;
        self.read_claim(name, Why::Consume);
    }

    /// Puts the claimed item back for others: deletes the claim, after reading it back as
    /// ours. Ignored unless holding an item.
    pub fn put_back(&mut self, _now: Instant) {
        if self.phase == Phase::Holding {
            self.phase = Phase::Returning;
            self.current = None;
            self.settle();
        }
    }

    fn send(&mut self, job: Job, request: Request) {
        self.current = Some(self.io.submit(job, request));
    }

    fn send_put(&mut self) {
        let request = put_request(&self.entries, self.priority, &self.item, &self.acl);
        self.send(Job::Put, request);
    }

    fn send_lists(&mut self) {
        let syncing = self.io.in_flight.values().any(|j| *j == Job::Sync);
        if !self.synced && !syncing {
            self.io.submit(Job::Sync, sync(&self.entries));
        }
        self.listed = (None, None);
        self.changed = false;
        let a = self.io.submit(Job::ListEntries, list(&self.entries, true));
        let b = self.io.submit(Job::ListTaken, list(&self.taken, true));
        self.watching = vec![a, b];
        self.current = Some(b);
    }

    /// After a consume whose reply was lost: reads the claim again after a `sync`, since
    /// the server the session moved to may not have applied the consume yet, and a claim
    /// it still shows would be consumed again, and fail, as if another worker had it.
    fn recheck_claim(&mut self, name: String) {
        self.io.submit(Job::Sync, sync(&self.taken));
        self.read_claim(name, Why::Consume);
    }

    fn read_claim(&mut self, name: String, why: Why) {
        let request = read(&format!("{}/{name}", self.taken));
        self.send(Job::ReadClaim(name, why), request);
    }

    fn finish(&mut self, outcome: Outcome) {
        self.phase = Phase::Idle;
        self.current = None;
        self.deadline = None;
        self.watching.clear();
        self.candidates.clear();
        self.io.emit(outcome);
    }

    fn fail(&mut self, e: SessionError) {
        self.io.emit(Outcome::Failed(e));
        self.give_up();
    }

    /// Stops what it was doing and removes any claim it may hold.
    fn give_up(&mut self) {
        self.phase = Phase::Returning;
        self.current = None;
        self.deadline = None;
        self.watching.clear();
        self.settle();
    }

    /// Returning: once nothing about the claim is under way, delete it if it may be
    /// there (after reading it back as ours), and report `Released` when it is gone.
    fn settle(&mut self) {
        if self.phase != Phase::Returning {
            return;
        }
        let busy = self.io.in_flight.values().any(|j| {
            matches!(
                j,
                Job::Claim(_) | Job::ReadClaim(..) | Job::Unclaim(_) | Job::Consume(_)
            )
        });
        if busy {
            return;
        }
        match self.claim.clone() {
            Some(name) => self.read_claim(name, Why::Unclaim),
            None => self.finish(Outcome::Released),
        }
    }

    fn make_dirs(&mut self) {
        self.dirs = vec![self.taken.clone(), self.entries.clone()];
        self.next_dir();
    }

    fn next_dir(&mut self) {
        match self.dirs.last().cloned() {
            Some(dir) => {
                let request = make_dir(&dir, &self.acl);
                self.send(Job::MakeDir(dir), request);
            }
            None if self.phase == Phase::Putting => self.send_put(),
            None => self.send_lists(),
        }
    }

    fn on_make_dir(&mut self, dir: String, reply: Result<Response, SessionError>) {
        match dir_made(&mut self.dirs, &dir, reply) {
            Ok(()) => self.next_dir(),
            Err(e) => self.fail(e),
        }
    }

    fn on_put(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) => self.finish(Outcome::Put),
            Err(SessionError::Server(ErrorCode::NoNode)) => self.make_dirs(),
            Err(SessionError::QueueFull(_)) => self.send_put(),
            Err(e) if again(&e) => self.finish(Outcome::InDoubt),
            Err(e) => self.finish(Outcome::Failed(e)),
        }
    }

    fn on_list(&mut self, taken: bool, reply: Result<Response, SessionError>) {
        let names = match reply {
            Ok(Response::GetChildren(r)) => r.children,
            Ok(_) => {
                return self.fail(SessionError::InvalidRequest(
                    "unexpected reply to a listing",
                ));
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => {
                // Once: the other listing's reply is then stale.
                if self.dirs.is_empty() && self.current.is_some_and(|t| self.watching.contains(&t))
                {
                    self.watching.clear();
                    self.make_dirs();
                }
                return;
            }
            Err(e) if again(&e) => {
                if self.current.is_some_and(|t| self.watching.contains(&t)) {
                    self.send_lists();
                }
                return;
            }
            Err(e) => return self.fail(e),
        };
        if taken {
            self.listed.1 = Some(names);
        } else {
            self.listed.0 = Some(names);
        }
        if let (Some(entries), Some(taken)) = (&self.listed.0, &self.listed.1) {
            let candidates: VecDeque<String> = entries_of(entries.clone())
                .into_iter()
                .filter(|e| !taken.contains(e))
                .collect();
            self.candidates = candidates;
            self.listed = (None, None);
            self.next_candidate();
        }
    }

    fn next_candidate(&mut self) {
        match self.candidates.pop_front() {
            Some(name) => {
                self.claim = Some(name.clone());
                self.send_claim(name);
            }
            None if self.changed => self.send_lists(),
            // Wait for a listing's watch.
            None => {}
        }
    }

    fn send_claim(&mut self, name: String) {
        let request = Request::Create(CreateRequest {
            path: format!("{}/{name}", self.taken),
            data: self.id.clone(),
            acl: self.acl.clone(),
            flags: CreateMode::Ephemeral.as_i32(),
        });
        self.send(Job::Claim(name), request);
    }

    fn read_entry(&mut self, name: String) {
        self.claim_session = self.session;
        let request = read(&format!("{}/{name}", self.entries));
        self.send(Job::ReadEntry(name), request);
    }

    fn on_claim(&mut self, name: String, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) => self.read_entry(name),
            Err(SessionError::Server(ErrorCode::NodeExists)) => self.read_claim(name, Why::Adopt),
            Err(SessionError::Server(ErrorCode::NoNode)) => {
                self.claim = None;
                self.make_dirs();
            }
            // Sent again: NodeExists then tells whose it is.
            Err(e) if again(&e) => self.send_claim(name),
            Err(e) => {
                self.claim = None;
                self.fail(e)
            }
        }
    }

    fn on_read_claim(&mut self, name: String, why: Why, reply: Result<Response, SessionError>) {
        let ours = match reply {
            Ok(Response::GetData(r)) => (r.data == self.id).then_some(r.stat.version),
            Ok(_) => return self.fail(SessionError::InvalidRequest("unexpected reply to a read")),
            Err(SessionError::Server(ErrorCode::NoNode)) => None,
            Err(e) if again(&e) && why == Why::Consume && self.consume_sent => {
                return self.recheck_claim(name);
            }
            Err(e) if again(&e) => return self.read_claim(name, why),
            Err(e) => return self.fail(e),
        };
        match (why, ours) {
            (Why::Adopt, Some(_)) => self.read_entry(name),
            (Why::Adopt, None) => {
                self.claim = None;
                self.changed = true;
                self.next_candidate();
            }
            (Why::Consume, Some(version)) => {
                let request = Request::Multi(MultiRequest {
                    ops: vec![
                        MultiOp::Check(CheckVersionRequest {
                            path: format!("{}/{name}", self.taken),
                            version,
                        }),
                        MultiOp::Delete(DeleteRequest {
                            path: format!("{}/{name}", self.entries),
                            version: -1,
                        }),
                        MultiOp::Delete(DeleteRequest {
                            path: format!("{}/{name}", self.taken),
                            version: -1,
                        }),
                    ],
                });
                self.consume_sent = true;
                self.send(Job::Consume(name), request);
            }
            // Gone after a consume was sent: did it land?
            (Why::Consume, None) if self.consume_sent => {
                let request = Request::Exists(ExistsRequest {
                    path: format!("{}/{name}", self.entries),
                    watch: false,
                });
                self.send(Job::EntryGone(name), request);
            }
            (Why::Consume, None) => {
                self.claim = None;
                self.finish(Outcome::Lost);
            }
            (Why::Unclaim, Some(version)) => {
                let request = Request::Delete(DeleteRequest {
                    path: format!("{}/{name}", self.taken),
                    version,
                });
                self.send(Job::Unclaim(name), request);
            }
            (Why::Unclaim, None) => {
                self.claim = None;
                self.settle();
            }
        }
    }

    fn on_read_entry(&mut self, name: String, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetData(r)) => {
                self.phase = Phase::Holding;
                self.current = None;
                self.deadline = None;
                self.watching.clear();
                self.candidates.clear();
                self.io.emit(Outcome::Claimed {
                    entry: name,
                    data: r.data,
                });
            }
            Ok(_) => self.fail(SessionError::InvalidRequest("unexpected reply to a read")),
            // Consumed by another meanwhile: let our claim go, and go on.
            Err(SessionError::Server(ErrorCode::NoNode)) => {
                self.changed = true;
                self.read_claim(name, Why::Unclaim)
            }
            Err(e) if again(&e) => self.read_entry(name),
            Err(e) => self.fail(e),
        }
    }

    fn on_consume(&mut self, name: String, reply: Result<Response, SessionError>) {
        let failed = match &reply {
            Ok(Response::Multi(r)) => r.results.iter().any(|x| matches!(x, OpResult::Error(_))),
            Ok(_) => true,
            Err(_) => true,
        };
        match reply {
            _ if !failed => {
                self.claim = None;
                self.finish(Outcome::Consumed)
            }
            // In doubt: read the claim again.
            Err(e) if again(&e) => self.recheck_claim(name),
            // The claim changed hands or the item went: not ours to consume.
            Ok(_) | Err(SessionError::Server(_)) => {
                self.claim = None;
                self.finish(Outcome::Lost)
            }
            Err(e) => self.fail(e),
        }
    }

    fn on_entry_gone(&mut self, name: String, reply: Result<Response, SessionError>) {
        match reply {
            // Our claim and the item went together: our transaction landed, unless the
            // claim's session ended meanwhile, when another worker may have claimed and
            // consumed the item after it.
            Err(SessionError::Server(ErrorCode::NoNode)) => {
                self.claim = None;
                self.finish(if self.claim_session_ended {
                    Outcome::InDoubt
                } else {
                    Outcome::Consumed
                })
            }
            // The claim went with the session, the item stayed for others.
            Ok(_) => {
                self.claim = None;
                self.finish(Outcome::Lost)
            }
            Err(e) if again(&e) => {
                let request = Request::Exists(ExistsRequest {
                    path: format!("{}/{name}", self.entries),
                    watch: false,
                });
                self.send(Job::EntryGone(name), request);
            }
            Err(e) => {
                self.claim = None;
                self.fail(e)
            }
        }
    }

    fn on_unclaim(&mut self, name: String, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NoNode | ErrorCode::BadVersion)) => {
                self.claim = None;
            }
            Err(e) if again(&e) => {}
            Err(e) => {
                self.claim = None;
                self.io.emit(Outcome::Failed(e));
            }
        }
        match self.phase {
            // An item consumed by another: on to the next one.
            Phase::Getting if self.claim.is_none() => self.next_candidate(),
            Phase::Getting => self.read_claim(name, Why::Unclaim),
            _ => self.settle(),
        }
    }

    fn lost(&mut self) {
        if matches!(self.phase, Phase::Holding) {
            self.claim = None;
            self.finish(Outcome::Lost);
        }
    }
}

impl Recipe for LockingQueue {
    type Outcome = Outcome;

    fn poll_output(&mut self) -> Option<Output> {
        self.io.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        (self.phase == Phase::Getting)
            .then_some(self.deadline)
            .flatten()
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Getting && self.deadline.is_some_and(|d| now >= d) {
            self.io.emit(Outcome::TimedOut);
            self.give_up();
        }
    }

    fn handle_state(&mut self, _now: Instant, state: AppState, session_id: i64) {
        match state {
            AppState::Connected => {
                self.session = session_id;
                if self.claim_session != 0 && session_id != self.claim_session {
                    self.claim_session_ended |= self.phase == Phase::Consuming;
                    self.lost();
                }
            }
            AppState::Lost => {
                self.claim_session_ended |= self.phase == Phase::Consuming;
                self.lost();
            }
            _ => {}
        }
    }

    fn handle_reply(&mut self, _now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        let Some(job) = self.io.in_flight.remove(&tag) else {
            return;
        };
        if job == Job::Sync {
            self.synced |= reply.is_ok();
            return;
        }
        if self.phase == Phase::Returning {
            match (job, reply) {
                (Job::Claim(name), Ok(_))
                | (Job::Claim(name), Err(SessionError::Server(ErrorCode::NodeExists))) => {
                    self.claim = Some(name)
                }
                (Job::Claim(name), Err(e)) if again(&e) => self.claim = Some(name),
                (Job::Claim(_), _) => self.claim = None,
                (Job::ReadClaim(name, Why::Unclaim), reply) => {
                    return self.on_read_claim(name, Why::Unclaim, reply);
                }
                (Job::Unclaim(name), reply) => return self.on_unclaim(name, reply),
                _ => {}
            }
            return self.settle();
        }
        let is_list = matches!(job, Job::ListEntries | Job::ListTaken);
        if self.current != Some(tag) && !(is_list && self.watching.contains(&tag)) {
            return;
        }
        match job {
            Job::MakeDir(dir) => self.on_make_dir(dir, reply),
            Job::Put => self.on_put(reply),
            // Answered above.
            Job::Sync => {}
            Job::ListEntries => self.on_list(false, reply),
            Job::ListTaken => self.on_list(true, reply),
            Job::Claim(name) => self.on_claim(name, reply),
            Job::ReadClaim(name, why) => self.on_read_claim(name, why, reply),
            Job::ReadEntry(name) => self.on_read_entry(name, reply),
            Job::Consume(name) => self.on_consume(name, reply),
            Job::EntryGone(name) => self.on_entry_gone(name, reply),
            Job::Unclaim(name) => self.on_unclaim(name, reply),
        }
    }

    fn handle_watch(&mut self, _now: Instant, tag: Tag, event: &WatchedEvent) {
        if self.phase != Phase::Getting || !self.watching.contains(&tag) {
            return;
        }
        if event.state == KeeperState::Closed {
            return self.fail(SessionError::Closed);
        }
        if event.kind == EventType::None && event.state == KeeperState::SyncConnected {
            return;
        }
        self.watching.clear();
        self.changed = true;
        // Waiting (nothing under way): look again now.
        if self.candidates.is_empty()
            && self
                .current
                .is_none_or(|t| !self.io.in_flight.contains_key(&t))
        {
            self.send_lists();
        }
    }

    fn release(&mut self, _now: Instant) {
        match self.phase {
            Phase::Getting | Phase::Holding => self.give_up(),
            // A put or a consume under way finishes on its own.
            _ => {}
        }
    }

    fn is_done(&self) -> bool {
        self.phase == Phase::Idle && self.io.in_flight.is_empty()
    }
}
