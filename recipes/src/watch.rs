//! Following one node, as a sans-IO state machine: its data ([`Target::Data`], Kazoo's
//! `DataWatch`) or its children ([`Target::Children`], Kazoo's `ChildrenWatch`), first as
//! they are and then after every change, through the node's absence, reconnects and a new
//! session.
//!
//! Reads follow a `sync` until one is answered, so what was written before the machine
//! started is seen even from a follower that has not applied it yet (once a sync is
//! answered, the session never connects to a server further behind). The machine reads with a watch,
//! or, while the node is missing, sets a watch for its creation; every event of that watch (a change, or the end of an expired session's
//! watches) means: read again. It reports a value only when it differs from the last one
//! reported: for data, the node's version and presence; for children, the list and the
//! parent's child version, so a child that left and came back between two reads still
//! shows as a change. A bad path, a missing permission or a closed session is reported as
//! [`Outcome::Failed`], and the machine stops.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use zk_proto::ErrorCode;
use zk_proto::Stat;
use zk_proto::consts::EventType;
use zk_proto::records::*;
use zk_proto::session::{Error as SessionError, WatchedEvent};

use crate::{Recipe, Tag};

/// What of the node is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Its data and Stat.
    Data,
    /// Its children's names, with its Stat.
    Children,
}

/// What the machine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The node's data now; `None` while the node does not exist.
    Data(Option<(Bytes, Stat)>),
    /// The node's children now, with its Stat (`cversion` counts every child created or
    /// deleted); `None` while the node does not exist.
    Children(Option<(Vec<String>, Stat)>),
    /// Following stopped: the path is invalid, the node may not be read, or the session
    /// is closed.
    Failed(SessionError),
}

/// Something the watch machine has for its driver.
pub type Output = crate::Output<Outcome>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Following,
    Done,
}

/// A machine following one node.
#[derive(Debug)]
pub struct NodeWatch {
    path: String,
    target: Target,
    phase: Phase,
    /// The request whose reply or watch matters now.
    current: Option<Tag>,
    /// Whether `current` is the read (true) or the wait for creation (false).
    reading: bool,
    next_tag: u64,
    /// What was last reported, to report changes only.
    last: Option<Outcome>,
    /// The sync before the first reads: in flight, and whether one was answered.
    sync: Option<Tag>,
    synced: bool,
    out: VecDeque<Output>,
}

impl NodeWatch {
    /// Follows `target` of the node at `path`.
    pub fn new(path: &str, target: Target) -> NodeWatch {
        NodeWatch {
            path: path.to_string(),
            target,
            phase: Phase::Idle,
            current: None,
            reading: false,
            next_tag: 1,
            last: None,
            sync: None,
            synced: false,
            out: VecDeque::new(),
        }
    }

    /// Starts following: the first outcome is the node as it is.
    pub fn start(&mut self, _now: Instant) {
        if self.phase != Phase::Idle {
            return;
        }
        if let Err(e) = zk_proto::path::validate_path(&self.path) {
            return self.fail(SessionError::InvalidPath(e));
        }
        self.phase = Phase::Following;
        self.read();
    }

    fn submit(&mut self, request: Request, reading: bool) {
        if !self.synced && self.sync.is_none() {
            let tag = Tag(self.next_tag);
            self.next_tag += 1;
            self.sync = Some(tag);
            let sync = Request::Sync(SyncRequest {
                path: self.path.clone(),
            });
            self.out.push_back(Output::Submit(tag, sync));
        }
        let tag = Tag(self.next_tag);
        self.next_tag += 1;
        self.current = Some(tag);
        self.reading = reading;
        self.out.push_back(Output::Submit(tag, request));
    }

    fn read(&mut self) {
        let path = self.path.clone();
        let request = match self.target {
            Target::Data => Request::GetData(GetDataRequest { path, watch: true }),
            Target::Children => Request::GetChildren2(GetChildrenRequest { path, watch: true }),
        };
        self.submit(request, true);
    }

    fn wait_for_creation(&mut self) {
        let request = Request::Exists(ExistsRequest {
            path: self.path.clone(),
            watch: true,
        });
        self.submit(request, false);
    }

    fn report(&mut self, outcome: Outcome) {
        let same = match (&self.last, &outcome) {
            (Some(Outcome::Data(Some((_, a)))), Outcome::Data(Some((_, b)))) => {
                a.czxid == b.czxid && a.version == b.version
            }
            (Some(Outcome::Children(Some((x, a)))), Outcome::Children(Some((y, b)))) => {
                x == y && a.czxid == b.czxid && a.cversion == b.cversion
            }
            (Some(last), now) => last == now,
            (None, _) => false,
        };
        if !same {
            self.last = Some(outcome.clone());
            self.out.push_back(Output::Outcome(outcome));
        }
    }

    fn absent(&self) -> Outcome {
        match self.target {
            Target::Data => Outcome::Data(None),
            Target::Children => Outcome::Children(None),
        }
    }

    fn fail(&mut self, e: SessionError) {
        self.phase = Phase::Done;
        self.current = None;
        self.out.push_back(Output::Outcome(Outcome::Failed(e)));
    }

    fn read_reply(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetData(r)) => self.report(Outcome::Data(Some((r.data, r.stat)))),
            Ok(Response::GetChildren2(r)) => {
                let mut names = r.children;
                names.sort();
                self.report(Outcome::Children(Some((names, r.stat))))
            }
            Ok(_) => self.fail(SessionError::InvalidRequest("unexpected reply to a read")),
            Err(SessionError::Server(ErrorCode::NoNode)) => self.wait_for_creation(),
            // The watch may not be set: read again (the session holds the request until it
            // is connected).
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => self.read(),
            Err(e) => self.fail(e),
        }
    }

    fn exists_reply(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            // Created meanwhile.
            Ok(Response::Stat(_)) => self.read(),
            Ok(_) => self.fail(SessionError::InvalidRequest("unexpected reply to exists")),
            Err(SessionError::Server(ErrorCode::NoNode)) => {
                let absent = self.absent();
                self.report(absent);
            }
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => self.read(),
            Err(e) => self.fail(e),
        }
    }
}

impl Recipe for NodeWatch {
    type Outcome = Outcome;

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn handle_reply(&mut self, _now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        if self.sync == Some(tag) {
            self.sync = None;
            self.synced |= reply.is_ok();
            return;
        }
        if self.phase != Phase::Following || self.current != Some(tag) {
            return;
        }
        if self.reading {
            self.read_reply(reply);
        } else {
            self.exists_reply(reply);
        }
    }

    fn handle_watch(&mut self, _now: Instant, tag: Tag, event: &WatchedEvent) {
        if self.phase != Phase::Following || self.current != Some(tag) {
            return;
        }
        if event.kind == EventType::None && event.state == zk_proto::consts::KeeperState::Closed {
            return self.fail(SessionError::Closed);
        }
        // A change, or the end of an expired session's watches: read again.
        self.read();
    }

    fn release(&mut self, _now: Instant) {
        self.phase = Phase::Done;
        self.current = None;
    }

    fn is_done(&self) -> bool {
        self.phase != Phase::Following
    }
}
