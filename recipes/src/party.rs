//! Party membership, as a sans-IO state machine: an ephemeral node per member, in Kazoo's
//! layouts. [`Style::Party`] names a member `<32 hex digits>__party__` and keeps its
//! identifier in the node's data; [`Style::Shallow`] (Kazoo's `ShallowParty`) names it
//! `<32 hex digits>-<identifier>` with no data, so one listing gives every identifier.
//!
//! A member's name is fixed before its first create and is its alone, so a create whose
//! reply was lost is simply sent again: NodeExists means it landed. One machine is one
//! member at most: joining twice, or after a lost reply, never leaves a duplicate.
//! Leaving deletes the node, again until the server confirms it. Membership reports the
//! lock's outcomes: `Acquired` once a member, `Suspended`/`Resumed` with the connection,
//! `Lost` with the session (the node went with it), `Released` once left.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use zk_proto::ErrorCode;
use zk_proto::consts::CreateMode;
use zk_proto::records::*;
use zk_proto::session::{AppState, Error as SessionError};

use crate::lock::{self, Outcome, uuid_of};
use crate::{Recipe, Tag};

/// The marker of a Kazoo `Party` member's node name.
pub const PARTY_MARKER: &str = "__party__";

/// Which of Kazoo's party layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// Kazoo's `Party`: `<hex>__party__`, the identifier in the data.
    #[default]
    Party,
    /// Kazoo's `ShallowParty`: `<hex>-<identifier>`, no data.
    Shallow,
}

impl Style {
    /// The identifiers of the members, from the party node's children (and, for
    /// [`Style::Party`], the data of each, which the caller reads): `None` for a child that
    /// is no member in this style.
    pub fn member_of(self, child: &str) -> Option<&str> {
        match self {
            Style::Party => child.contains(PARTY_MARKER).then_some(child),
            Style::Shallow => child.split_once('-').map(|(_, id)| id),
        }
    }
}

/// Something the party machine has for its driver.
pub type Output = crate::Output<Outcome>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Joining,
    Member,
    Leaving,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    /// Creating the party node, or one of its missing ancestors: the length of the path.
    MakeDir(usize),
    Create,
    Delete,
    /// Reading whose our node is, after a create found it there.
    Verify,
    /// Deleting our node left by an earlier session, to create it again on this one.
    Replace,
}

/// One member of the party at `path`.
#[derive(Debug)]
pub struct Party {
    path: String,
    node: String,
    data: Bytes,
    acl: Vec<Acl>,
    phase: Phase,
    session: i64,
    node_session: i64,
    suspended: bool,
    deadline: Option<Instant>,
    next_tag: u64,
    in_flight: HashMap<Tag, Purpose>,
    /// Whether the node may exist on the server (created, or a create in doubt).
    maybe_there: bool,
    out: VecDeque<Output>,
}

impl Party {
    /// A member of the party at `path` known as `identifier`, with the unique `id` its
    /// node's name is made from (as for [`lock::Lock::new`]).
    pub fn new(path: &str, id: &str, identifier: &str, style: Style, acl: Vec<Acl>) -> Party {
        let path = path.trim_end_matches('/').to_string();
        let hex = uuid_of(id, 1).replace('-', "");
        let (name, data) = match style {
            Style::Party => (
                format!("{hex}{PARTY_MARKER}"),
                Bytes::from(identifier.to_string()),
            ),
            Style::Shallow => (format!("{hex}-{identifier}"), Bytes::new()),
        };
        Party {
            node: format!("{path}/{name}"),
            path,
            data,
            acl,
            phase: Phase::Idle,
            session: 0,
            node_session: 0,
            suspended: false,
            deadline: None,
            next_tag: 1,
            in_flight: HashMap::new(),
            maybe_there: false,
            out: VecDeque::new(),
        }
    }

    /// The member's node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Joins on the session `session_id`, giving up at `deadline`. Ignored unless idle or
    /// done.
    pub fn join(&mut self, _now: Instant, session_id: i64, deadline: Option<Instant>) {
        if !matches!(self.phase, Phase::Idle | Phase::Done) || !self.in_flight.is_empty() {
            return;
        }
        self.session = session_id;
        self.deadline = deadline;
        self.suspended = false;
        self.phase = Phase::Joining;
        self.create();
    }

    fn submit(&mut self, purpose: Purpose, request: Request) {
        let tag = Tag(self.next_tag);
        self.next_tag += 1;
        self.in_flight.insert(tag, purpose);
        self.out.push_back(Output::Submit(tag, request));
    }

    fn emit(&mut self, outcome: Outcome) {
        self.out.push_back(Output::Outcome(outcome));
    }

    fn create(&mut self) {
        self.maybe_there = true;
        let request = Request::Create(CreateRequest {
            path: self.node.clone(),
            data: self.data.clone(),
            acl: self.acl.clone(),
            flags: CreateMode::Ephemeral.as_i32(),
        });
        self.submit(Purpose::Create, request);
    }

    fn make_dir(&mut self, len: usize) {
        let request = Request::Create(CreateRequest {
            path: self.path[..len].to_string(),
            data: Bytes::new(),
            acl: self.acl.clone(),
            flags: CreateMode::Persistent.as_i32(),
        });
        self.submit(Purpose::MakeDir(len), request);
    }

    fn delete(&mut self) {
        let request = Request::Delete(DeleteRequest {
            path: self.node.clone(),
            version: -1,
        });
        self.submit(Purpose::Delete, request);
    }

    /// Leaving: once no create is in doubt, delete the node (if it may be there), and
    /// report `Released` when the server confirmed it.
    fn settle(&mut self) {
        if self.phase != Phase::Leaving || !self.in_flight.is_empty() {
            return;
        }
        if self.maybe_there {
            self.delete();
        } else {
            self.phase = Phase::Done;
            self.emit(Outcome::Released);
        }
    }

    fn joined(&mut self) {
        self.node_session = self.session;
        match self.phase {
            Phase::Joining => {
                self.phase = Phase::Member;
                let node = self.node.clone();
                self.emit(Outcome::Acquired { node, fencing: 0 });
            }
            _ => self.settle(),
        }
    }

    fn fail(&mut self, e: SessionError) {
        self.phase = Phase::Leaving;
        self.emit(Outcome::Failed(e));
        self.settle();
    }

    fn lost(&mut self) {
        self.suspended = false;
        self.phase = Phase::Leaving;
        self.emit(Outcome::Lost);
        // The node went with the session, unless the server has not let it go yet.
        self.settle();
    }

    fn created(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) => self.joined(),
            // Ours by name, but maybe left by a session that expired (and about to go with
            // it): see whose it is before counting on it.
            Err(SessionError::Server(ErrorCode::NodeExists)) if self.phase == Phase::Joining => {
                let verify = Request::Exists(ExistsRequest {
                    path: self.node.clone(),
                    watch: false,
                });
                self.submit(Purpose::Verify, verify);
            }
            Err(SessionError::Server(ErrorCode::NodeExists)) => self.joined(),
            Err(SessionError::Server(ErrorCode::NoNode)) if self.phase == Phase::Joining => {
                self.maybe_there = false;
                self.make_dir(self.path.len());
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => {
                self.maybe_there = false;
                self.settle();
            }
            // In doubt, or never sent: the name is ours alone, so simply send it again.
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => {
                if self.phase == Phase::Joining {
                    self.create();
                } else {
                    self.settle();
                }
            }
            Err(e) => {
                self.maybe_there = false;
                self.fail(e);
            }
        }
    }

    fn verified(&mut self, reply: Result<Response, SessionError>) {
        if self.phase != Phase::Joining {
            return self.settle();
        }
        match reply {
            Ok(Response::Stat(stat)) if stat.ephemeral_owner == self.session => self.joined(),
            // An earlier session's: delete it and make ours.
            Ok(Response::Stat(_)) => {
                let delete = Request::Delete(DeleteRequest {
                    path: self.node.clone(),
                    version: -1,
                });
                self.submit(Purpose::Replace, delete);
            }
            // Gone meanwhile, or in doubt: create again (NodeExists brings us back here).
            Ok(_) | Err(SessionError::Server(ErrorCode::NoNode)) => self.create(),
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => self.create(),
            Err(e) => self.fail(e),
        }
    }

    fn replaced(&mut self, reply: Result<Response, SessionError>) {
        if self.phase != Phase::Joining {
            return self.settle();
        }
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NoNode)) => self.create(),
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => self.create(),
            Err(e) => self.fail(e),
        }
    }

    fn made_dir(&mut self, len: usize, reply: Result<Response, SessionError>) {
        if self.phase != Phase::Joining {
            return self.settle();
        }
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NodeExists)) if len == self.path.len() => {
                self.create()
            }
            Ok(_) | Err(SessionError::Server(ErrorCode::NodeExists)) => {
                let next = self.path[len + 1..]
                    .find('/')
                    .map_or(self.path.len(), |i| len + 1 + i);
                self.make_dir(next);
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => match self.path[..len].rfind('/') {
                Some(i) if i > 0 => self.make_dir(i),
                _ => self.fail(SessionError::Server(ErrorCode::NoNode)),
            },
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => self.make_dir(len),
            Err(e) => self.fail(e),
        }
    }

    fn deleted(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NoNode)) => self.maybe_there = false,
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => {}
            Err(e) => {
                self.maybe_there = false;
                self.emit(Outcome::Failed(e));
            }
        }
        self.settle();
    }
}

impl lock::Acquire for Party {
    fn acquire(&mut self, now: Instant, session_id: i64, deadline: Option<Instant>) {
        self.join(now, session_id, deadline);
    }
}

impl Recipe for Party {
    type Outcome = Outcome;

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        (self.phase == Phase::Joining)
            .then_some(self.deadline)
            .flatten()
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Joining && self.deadline.is_some_and(|d| now >= d) {
            self.emit(Outcome::TimedOut);
            self.release(now);
        }
    }

    fn handle_state(&mut self, _now: Instant, state: AppState, session_id: i64) {
        match state {
            AppState::Suspended if self.phase == Phase::Member && !self.suspended => {
                self.suspended = true;
                self.emit(Outcome::Suspended);
            }
            AppState::Connected => {
                self.session = session_id;
                if self.phase == Phase::Member && self.suspended {
                    self.suspended = false;
                    if session_id == self.node_session {
                        self.emit(Outcome::Resumed);
                    } else {
                        self.lost();
                    }
                }
            }
            AppState::Lost if self.phase == Phase::Member => self.lost(),
            _ => {}
        }
    }

    fn handle_reply(&mut self, _now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        match self.in_flight.remove(&tag) {
            Some(Purpose::Create) => self.created(reply),
            Some(Purpose::MakeDir(len)) => self.made_dir(len, reply),
            Some(Purpose::Delete) => self.deleted(reply),
            Some(Purpose::Verify) => self.verified(reply),
            Some(Purpose::Replace) => self.replaced(reply),
            None => {}
        }
    }

    fn release(&mut self, _now: Instant) {
        if matches!(self.phase, Phase::Joining | Phase::Member) {
            self.phase = Phase::Leaving;
            self.suspended = false;
            self.settle();
        }
    }

    fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::Done) && self.in_flight.is_empty()
    }
}
