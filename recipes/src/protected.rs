//! Protected creates and guaranteed deletes, as sans-IO machines: the two write calls whose
//! fate must not be left in doubt by a lost reply.
//!
//! **A protected create** (Curator's `withProtection()`) puts a unique id in the node's
//! name, `<parent>/_c_<uuid>-<name>`, before the first create is sent. When the reply is
//! lost, the machine lists the parent (after a `sync`, so a lagging server cannot hide a
//! create that landed) and adopts the node carrying its id instead of creating a second
//! one; only a listing without it leads to another create. A sequential node keeps its
//! sequence number after the name, as the server appends it. A call given up before its
//! result reached the caller deletes the node it made, retried until the server confirms
//! it, so nothing is left behind that nobody knows of.
//!
//! **A guaranteed delete** (Curator's `guaranteed()`) sends its delete again after every
//! lost reply, connection loss and expired session (on the session that follows), until
//! the server answers it; the
//! caller may stop waiting (a dropped call, a timeout) and the delete goes on in the
//! background. A node already gone when a retry arrives counts as deleted.
//!
//! Both are offered on the clients as `create_protected` and `delete_guaranteed`
//! ([`crate::handles_for`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use zk_proto::error::ErrorCode;
use zk_proto::records::{Request, Response};
use zk_proto::session::{AppState, Error as SessionError};

use crate::io::{Io, again, parent_of};
use crate::{Output, Recipe, Tag};

/// How long a refusal that no connection event will change (the session's queue is full,
/// the request timed out unsent) waits before the request is sent again.
pub const BACKOFF: Duration = Duration::from_millis(100);

/// How many times a protected create makes its missing parents before giving up (another
/// client deleting them as fast).
const PARENT_ROUNDS: u32 = 5;

/// How long a refusal waits before its request goes again, unless a connection comes back
/// first: an expired session waits for the new one (a second at most), anything else
/// [`BACKOFF`].
fn wait_after(e: &SessionError) -> Duration {
    match e {
        SessionError::SessionExpired => Duration::from_secs(1),
        _ => BACKOFF,
    }
}

/// The name prefix Curator's protected mode gives a node: `_c_<uuid>-`.
pub fn protected_prefix(uuid: &str) -> String {
    format!("_c_{uuid}-")
}

/// The protected form of `path` with `uuid`: its last name prefixed, `/a/b` becoming
/// `/a/_c_<uuid>-b`.
pub fn protected_path(path: &str, uuid: &str) -> String {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    format!("{dir}/{}{name}", protected_prefix(uuid))
}

/// What a protected create reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The node exists, created by this machine: its path (with its sequence number, for
    /// a sequential mode). Found again after a lost reply, or the create's own answer.
    Created(String),
    /// The server refused the create with an error no retry fixes (the parent is missing,
    /// no permission, ...), or the session is closed.
    Failed(SessionError),
    /// After a release: nothing this machine created is left on the server.
    Released,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    Create,
    Parent,
    Sync,
    Find,
    Delete(String),
}

/// A create whose lost reply is looked up instead of repeated: see the
/// [module](crate::protected).
#[derive(Debug)]
pub struct ProtectedCreate {
    /// The create request, its path already protected.
    request: Request,
    parent: String,
    /// The name the node starts with (before any sequence number).
    name: String,
    parents: bool,
    parent_rounds: u32,
    node: Option<String>,
    /// Set by the driver once the created path reached the caller: the node is theirs.
    handed: Arc<AtomicBool>,
    /// The caller gave up: delete whatever was made.
    releasing: bool,
    /// The create or its lookup failed for good, or the node was handed over or deleted.
    ended: bool,
    /// A request to send again at this time (a refusal only time can change).
    retry: Option<(Instant, Purpose)>,
    io: Io<Purpose, CreateOutcome>,
}

impl ProtectedCreate {
    /// A protected create: `request` is the create (any create request: plain, create2,
    /// container, TTL) of the node as the caller named it; its last name gets
    /// `uuid`'s prefix. With `parents`, missing parents are made (persistent, with the
    /// node's ACL). `handed` is set by the driver once the path reached the caller, after
    /// which a release leaves the node alone.
    pub fn new(
        mut request: Request,
        uuid: &str,
        parents: bool,
        handed: Arc<AtomicBool>,
    ) -> Result<ProtectedCreate, SessionError> {
        let path = match &mut request {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => &mut r.path,
            Request::CreateTtl(r) => &mut r.path,
            _ => {
                return Err(SessionError::InvalidRequest(
                    "a protected create takes a create request",
                ));
            }
        };
        zk_proto::path::validate_path(path)?;
        if path == "/" {
            return Err(SessionError::InvalidRequest("the root cannot be created"));
        }
        *path = protected_path(path, uuid);
        let parent = parent_of(path).unwrap_or("/").to_string();
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        Ok(ProtectedCreate {
            request,
            parent,
            name,
            parents,
            parent_rounds: 0,
            node: None,
            handed,
            releasing: false,
            ended: false,
            retry: None,
            io: Io::new(),
        })
    }

    /// Sends the create.
    pub fn start(&mut self) {
        self.send(Purpose::Create);
    }

    /// The protected path asked for (before any sequence number).
    pub fn path(&self) -> Option<&str> {
        self.request.path()
    }

    fn send(&mut self, purpose: Purpose) {
        let request = match &purpose {
            Purpose::Create => self.request.clone(),
            Purpose::Sync => crate::io::sync(&self.parent),
            Purpose::Find => crate::io::list(&self.parent, false),
            Purpose::Delete(node) => crate::io::delete(node, -1),
            // Parents are made in `make_parents`.
            Purpose::Parent => return,
        };
        self.io.submit(purpose, request);
    }

    /// Looks for the node after a reply was lost: a `sync` first, so the listing is not
    /// older than the create.
    fn find(&mut self) {
        self.send(Purpose::Sync);
        self.send(Purpose::Find);
    }

    /// Sends every ancestor's create, top down (one that exists is fine), then the create
    /// again, all in one go: the server applies them in order.
    fn make_parents(&mut self) {
        self.parent_rounds += 1;
        let acl = match &self.request {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => r.acl.clone(),
            Request::CreateTtl(r) => r.acl.clone(),
            _ => Vec::new(),
        };
        let mut ancestors = Vec::new();
        let mut at = Some(self.parent.as_str());
        while let Some(p) = at.filter(|p| *p != "/") {
            ancestors.push(p.to_string());
            at = parent_of(p);
        }
        for p in ancestors.into_iter().rev() {
            let create = crate::io::create(
                &p,
                bytes::Bytes::new(),
                &acl,
                zk_proto::consts::CreateMode::Persistent,
            );
            self.io.submit(Purpose::Parent, create);
        }
        self.send(Purpose::Create);
    }

    fn made(&mut self, node: String) {
        if self.releasing {
            self.send(Purpose::Delete(node));
        } else {
            self.node = Some(node.clone());
            self.io.emit(CreateOutcome::Created(node));
        }
    }

    fn fail(&mut self, e: SessionError) {
        self.ended = true;
        if self.releasing {
            self.io.emit(CreateOutcome::Released);
        } else {
            self.io.emit(CreateOutcome::Failed(e));
        }
    }

    /// A refusal: sent again at once after a lost connection (the session holds it for
    /// the next one), otherwise once a connection is back or after a pause, so that no
    /// refusal is retried in the turn that brought it.
    fn again_later(&mut self, now: Instant, purpose: Purpose, e: &SessionError) {
        match (e, purpose) {
            (SessionError::ConnectionLoss, Purpose::Find) => self.find(),
            (SessionError::ConnectionLoss, other) => self.send(other),
            (_, other) => self.retry = Some((now + wait_after(e), other)),
        }
    }

    fn created(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::Create(r)) => self.made(r.path),
            Ok(Response::Create2(r)) => self.made(r.path),
            Ok(_) => self.fail(SessionError::Server(ErrorCode::MarshallingError)),
            Err(SessionError::Server(ErrorCode::NoNode))
                if self.parents && self.parent_rounds < PARENT_ROUNDS && !self.releasing =>
            {
                self.make_parents()
            }
            // The create may have landed: look for it before anything else.
            Err(e) if again(&e) => self.again_later(now, Purpose::Find, &e),
            Err(e) => self.fail(e),
        }
    }

    fn found(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetChildren(r)) => {
                let mine = r.children.iter().find(|c| c.starts_with(&self.name));
                match mine {
                    Some(child) => {
                        let node = match self.parent.as_str() {
                            "/" => format!("/{child}"),
                            p => format!("{p}/{child}"),
                        };
                        self.made(node)
                    }
                    None if self.releasing => self.fail(SessionError::Closed),
                    // It never landed: create it now.
                    None => self.send(Purpose::Create),
                }
            }
            Ok(_) => self.fail(SessionError::Server(ErrorCode::MarshallingError)),
            // No parent: no node either. The create says what to do.
            Err(SessionError::Server(ErrorCode::NoNode)) if !self.releasing => {
                self.send(Purpose::Create)
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => self.fail(SessionError::Closed),
            Err(e) if again(&e) => self.again_later(now, Purpose::Find, &e),
            Err(e) => self.fail(e),
        }
    }

    fn deleted(&mut self, now: Instant, node: String, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NoNode)) => {
                self.ended = true;
                self.io.emit(CreateOutcome::Released);
            }
            Err(e) if again(&e) => self.again_later(now, Purpose::Delete(node), &e),
            // No retry can fix it (no permission, a closed session): report it.
            Err(e) => {
                self.ended = true;
                self.io.emit(CreateOutcome::Failed(e));
            }
        }
    }
}

impl Recipe for ProtectedCreate {
    type Outcome = CreateOutcome;

    fn poll_output(&mut self) -> Option<Output<CreateOutcome>> {
        self.io.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.retry.as_ref().map(|(at, _)| *at)
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some((at, purpose)) = self.retry.take() {
            if now < at {
                self.retry = Some((at, purpose));
            } else if purpose == Purpose::Find {
                self.find();
            } else {
                self.send(purpose);
            }
        }
    }

    fn handle_state(&mut self, now: Instant, state: AppState, _session_id: i64) {
        // A connection is back: what waited for time may go now.
        if state == AppState::Connected
            && let Some((_, purpose)) = self.retry.take()
        {
            self.retry = Some((now, purpose));
            self.handle_timeout(now);
        }
    }

    fn handle_reply(&mut self, now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        let Some(purpose) = self.io.in_flight.remove(&tag) else {
            return;
        };
        match purpose {
            Purpose::Create => self.created(now, reply),
            Purpose::Find => self.found(now, reply),
            Purpose::Delete(node) => self.deleted(now, node, reply),
            // Only the create's answer that follows them counts.
            Purpose::Sync | Purpose::Parent => {}
        }
    }

    fn release(&mut self, _now: Instant) {
        if self.releasing || self.ended {
            return;
        }
        self.releasing = true;
        if let Some(node) = self.node.take() {
            if self.handed.load(Ordering::Acquire) {
                // The caller has it: it is theirs now.
                self.ended = true;
            } else {
                self.send(Purpose::Delete(node));
            }
        } else if self.io.in_flight.is_empty() && self.retry.is_none() {
            self.ended = true;
        } else if matches!(self.retry, Some((_, Purpose::Create))) {
            // Never sent again: nothing of it can land.
            self.retry = None;
            if !self
                .io
                .in_flight
                .values()
                .any(|p| matches!(p, Purpose::Create | Purpose::Find))
            {
                self.ended = true;
            }
        }
        // Otherwise a create or a lookup is under way: its answer says what to delete.
    }

    fn is_done(&self) -> bool {
        (self.ended || (self.node.is_some() && self.handed.load(Ordering::Acquire)))
            && self
                .io
                .in_flight
                .values()
                .all(|p| matches!(p, Purpose::Sync | Purpose::Parent))
            && self.retry.is_none()
    }
}

/// What a guaranteed delete reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The server deleted the node, or it was gone when a retry arrived.
    Deleted,
    /// The server refused the delete with an error no retry fixes: `NoNode` on the first
    /// attempt, `BadVersion`, `NotEmpty`, no permission; or the session is closed.
    Failed(SessionError),
}

/// A delete sent again until the server answers it: see the [module](crate::protected).
#[derive(Debug)]
pub struct GuaranteedDelete {
    path: String,
    version: i32,
    /// A reply was lost: a `NoNode` now may be this delete's own doing.
    in_doubt: bool,
    ended: bool,
    retry: Option<Instant>,
    io: Io<(), DeleteOutcome>,
}

impl GuaranteedDelete {
    /// A delete of `path` at `version` (`-1`: any).
    pub fn new(path: &str, version: i32) -> Result<GuaranteedDelete, SessionError> {
        zk_proto::path::validate_path(path)?;
        Ok(GuaranteedDelete {
            path: path.to_string(),
            version,
            in_doubt: false,
            ended: false,
            retry: None,
            io: Io::new(),
        })
    }

    /// Sends the delete.
    pub fn start(&mut self) {
        self.io
            .submit((), crate::io::delete(&self.path, self.version));
    }

    fn end(&mut self, outcome: DeleteOutcome) {
        self.ended = true;
        self.io.emit(outcome);
    }
}

impl Recipe for GuaranteedDelete {
    type Outcome = DeleteOutcome;

    fn poll_output(&mut self) -> Option<Output<DeleteOutcome>> {
        self.io.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.retry
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.retry.is_some_and(|at| now >= at) {
            self.retry = None;
            self.start();
        }
    }

    fn handle_state(&mut self, now: Instant, state: AppState, _session_id: i64) {
        if state == AppState::Connected && self.retry.is_some() {
            self.retry = Some(now);
            self.handle_timeout(now);
        }
    }

    fn handle_reply(&mut self, now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        if self.io.in_flight.remove(&tag).is_none() {
            return;
        }
        match reply {
            Ok(_) => self.end(DeleteOutcome::Deleted),
            Err(SessionError::Server(ErrorCode::NoNode)) if self.in_doubt => {
                self.end(DeleteOutcome::Deleted)
            }
            // The session holds it for the next connection.
            Err(SessionError::ConnectionLoss) => {
                self.in_doubt = true;
                self.start();
            }
            Err(e) if again(&e) => {
                self.in_doubt = true;
                self.retry = Some(now + wait_after(&e));
            }
            Err(e) => self.end(DeleteOutcome::Failed(e)),
        }
    }

    /// The caller stopped waiting: the delete goes on until the server answers it.
    fn release(&mut self, _now: Instant) {}

    fn is_done(&self) -> bool {
        self.ended
    }
}
