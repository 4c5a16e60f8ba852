//! A shared 64-bit integer (Curator's `DistributedAtomicLong`), as a sans-IO state machine:
//! optimistic writes on the version read, then, if those keep losing, the same under a
//! lock.
//!
//! The node holds the value as 8 bytes, big-endian (Curator's encoding); a missing or
//! empty node reads as 0, and one holding anything else fails the change without writing.
//! One change:
//!
//! - **Optimistic.** Read the value and its version, compute the new value, write it on
//!   that version (or create the node); another writer in between makes the write fail,
//!   and it is tried again, up to the optimistic tries.
//! - **Promoted.** With a lock path, when the optimistic tries ran out the change takes
//!   Curator's `InterProcessMutex` at that path (this crate's lock, Curator's layout) and
//!   does the same under it, then releases it (until the server confirms).
//! - **A lost reply** to a write is looked into after a `sync`, not repeated blindly: the
//!   version still unchanged means the write did not land (it goes again); a later
//!   version holding another value means another writer won (a lost try); the value
//!   written at the next version can be ours or another writer's that wrote the same
//!   (nothing tells them apart), and is reported in doubt. Curator repeats such a write,
//!   which can apply a change twice.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use zk_proto::ErrorCode;
use zk_proto::consts::CreateMode;
use zk_proto::records::*;
use zk_proto::session::{AppState, Error as SessionError, WatchedEvent};

use crate::io::{again, parent_of};
use crate::lock::{Lock, Options as LockOptions, Outcome as LockOutcome};
use crate::{Output, Recipe, Tag};

/// A change to the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Read it.
    Get,
    /// Add this (wrapping, as Java's `long` does).
    Add(i64),
    /// Set it to this if it is unchanged since read (Curator's `trySet`).
    Set(i64),
    /// Set it to `new` if it is `expected` (Curator's `compareAndSet`); fails on a missing
    /// node, as Curator's does.
    CompareAndSet {
        /// The value it must hold.
        expected: i64,
        /// The value to write.
        new: i64,
    },
}

/// What a change did (Curator's `AtomicValue` and its `AtomicStats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtomicValue {
    /// Whether the change was made (a `Get` always succeeds).
    pub succeeded: bool,
    /// The value read before the change (0 for a missing node).
    pub pre: i64,
    /// The value after it: the new value when it succeeded, `pre` otherwise.
    pub post: i64,
    /// Optimistic writes tried.
    pub optimistic_tries: u32,
    /// Writes tried under the lock.
    pub promoted_tries: u32,
}

/// What the machine reports, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The change is decided.
    Done(AtomicValue),
    /// A write's reply was lost and the value written then is the one the node holds at
    /// the next version, which another writer could have written as well: the change may
    /// or may not have been made, and is not repeated.
    InDoubt {
        /// The value read before the write.
        pre: i64,
    },
    /// The node holds something that is not an 8-byte value: this many bytes. Nothing
    /// was written.
    Unreadable(usize),
    /// An error no retry fixes (no permission, a closed session).
    Failed(SessionError),
}

/// How the node's value is written: 8 bytes, big-endian.
pub fn encode(value: i64) -> Bytes {
    Bytes::copy_from_slice(&value.to_be_bytes())
}

/// The node's value: 0 for empty data, `None` for anything but 8 bytes (Curator reads the
/// first 8 and fails on fewer; more than 8 is read as Curator reads it).
pub fn decode(data: &[u8]) -> Option<i64> {
    match data.len() {
        0 => Some(0),
        n if n >= 8 => Some(i64::from_be_bytes(data[..8].try_into().ok()?)),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    Read,
    Write,
    Parent,
    Sync,
    /// Reading back after a write whose reply was lost.
    Check,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Optimistic,
    Locking,
    Promoted,
    /// The outcome is out; the lock (if taken) is being released.
    Finishing,
    Done,
}

/// The write under way: the value read, its version (`None`: the node was missing), the
/// value written.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    pre: i64,
    version: Option<i32>,
    new: i64,
}

/// One change to a shared 64-bit integer: see the [module](crate::atomic).
#[derive(Debug)]
pub struct AtomicLong {
    path: String,
    change: Change,
    acl: Vec<Acl>,
    max_optimistic: u32,
    max_promoted: u32,
    lock: Option<Lock>,
    phase: Phase,
    session: i64,
    attempt: Option<Attempt>,
    stats: AtomicValue,
    next_tag: u64,
    in_flight: HashMap<Tag, Purpose>,
    out: VecDeque<Output<Outcome>>,
}

/// Tags of the lock's own requests have this bit set.
const LOCK_BIT: u64 = 1 << 62;

impl AtomicLong {
    /// A change to the value at `path` (created with `acl` when missing), tried
    /// optimistically up to `tries` times (at least once).
    pub fn new(
        path: &str,
        change: Change,
        tries: u32,
        acl: Vec<Acl>,
    ) -> Result<AtomicLong, SessionError> {
        zk_proto::path::validate_path(path)?;
        if path == "/" {
            return Err(SessionError::InvalidRequest("the root cannot hold a value"));
        }
        Ok(AtomicLong {
            path: path.to_string(),
            change,
            acl,
            max_optimistic: tries.max(1),
            max_promoted: 1,
            lock: None,
            phase: Phase::Idle,
            session: 0,
            attempt: None,
            stats: AtomicValue {
                succeeded: false,
                pre: 0,
                post: 0,
                optimistic_tries: 0,
                promoted_tries: 0,
            },
            next_tag: 1,
            in_flight: HashMap::new(),
            out: VecDeque::new(),
        })
    }

    /// Promotes the change to a lock once the optimistic tries ran out (Curator's
    /// `PromotedToLock`): the lock `lock` makes (named with `id`), and up to `tries` writes
    /// under it (at least one).
    pub fn promoted(
        mut self,
        lock: &LockOptions,
        id: &str,
        tries: u32,
    ) -> Result<AtomicLong, SessionError> {
        self.lock = Some(lock.machine(id)?);
        self.max_promoted = tries.max(1);
        Ok(self)
    }

    /// Starts the change on the session `session_id`.
    pub fn start(&mut self, session_id: i64) {
        if self.phase != Phase::Idle {
            return;
        }
        self.session = session_id;
        self.phase = Phase::Optimistic;
        self.read();
    }

    fn submit(&mut self, purpose: Purpose, request: Request) {
        let tag = Tag(self.next_tag);
        self.next_tag += 1;
        self.in_flight.insert(tag, purpose);
        self.out.push_back(Output::Submit(tag, request));
    }

    fn read(&mut self) {
        self.submit(
            Purpose::Read,
            Request::GetData(GetDataRequest {
                path: self.path.clone(),
                watch: false,
            }),
        );
    }

    fn write(&mut self, a: Attempt) {
        self.attempt = Some(a);
        match self.phase {
            Phase::Promoted => self.stats.promoted_tries += 1,
            _ => self.stats.optimistic_tries += 1,
        }
        let request = match a.version {
            Some(version) => Request::SetData(SetDataRequest {
                path: self.path.clone(),
                data: encode(a.new),
                version,
            }),
            None => Request::Create(CreateRequest {
                path: self.path.clone(),
                data: encode(a.new),
                acl: self.acl.clone(),
                flags: CreateMode::Persistent.as_i32(),
            }),
        };
        self.submit(Purpose::Write, request);
    }

    /// The outcome: reported once, then the lock (if taken) is released.
    fn finish(&mut self, now: Instant, outcome: Outcome) {
        if matches!(self.phase, Phase::Finishing | Phase::Done) {
            return;
        }
        self.out.push_back(Output::Outcome(outcome));
        self.phase = Phase::Finishing;
        if let Some(lock) = self.lock.as_mut() {
            lock.release(now);
        }
        self.pump_lock(now);
    }

    fn done(&mut self, now: Instant, succeeded: bool, pre: i64, post: i64) {
        self.stats.succeeded = succeeded;
        self.stats.pre = pre;
        self.stats.post = post;
        let stats = self.stats;
        self.finish(now, Outcome::Done(stats));
    }

    /// A try lost to another writer: again, promoted, or given up.
    fn lost_try(&mut self, now: Instant, pre: i64) {
        let promoted_tries = self.stats.promoted_tries;
        match self.phase {
            Phase::Optimistic if self.stats.optimistic_tries < self.max_optimistic => self.read(),
            Phase::Optimistic if self.lock.is_some() => {
                self.phase = Phase::Locking;
                let session = self.session;
                if let Some(lock) = self.lock.as_mut() {
                    lock.acquire(now, session, None);
                }
                self.pump_lock(now);
            }
            Phase::Promoted if promoted_tries < self.max_promoted => self.read(),
            _ => self.done(now, false, pre, pre),
        }
    }

    fn compute(&self, pre: i64, missing: bool) -> Result<Option<i64>, ()> {
        Ok(match self.change {
            Change::Get => None,
            Change::Add(d) => Some(pre.wrapping_add(d)),
            Change::Set(v) => Some(v),
            Change::CompareAndSet { expected, new } => {
                if missing || pre != expected {
                    return Err(());
                }
                Some(new)
            }
        })
    }

    fn read_reply(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        if !matches!(self.phase, Phase::Optimistic | Phase::Promoted) {
            return;
        }
        let (pre, version) = match reply {
            Ok(Response::GetData(r)) => match decode(&r.data) {
                Some(v) => (v, Some(r.stat.version)),
                None => return self.finish(now, Outcome::Unreadable(r.data.len())),
            },
            Ok(_) => {
                return self.finish(
                    now,
                    Outcome::Failed(SessionError::InvalidRequest("unexpected reply to getData")),
                );
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => (0, None),
            Err(e) if again(&e) => return self.read(),
            Err(e) => return self.finish(now, Outcome::Failed(e)),
        };
        match self.compute(pre, version.is_none()) {
            Ok(None) => self.done(now, true, pre, pre),
            Ok(Some(new)) => self.write(Attempt { pre, version, new }),
            Err(()) => self.done(now, false, pre, pre),
        }
    }

    /// A write that did not land is sent again: it does not count as another try.
    fn untry(&mut self) {
        match self.phase {
            Phase::Promoted => {
                self.stats.promoted_tries = self.stats.promoted_tries.saturating_sub(1)
            }
            _ => self.stats.optimistic_tries = self.stats.optimistic_tries.saturating_sub(1),
        }
    }

    fn write_reply(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        // Released meanwhile: the write landed or not, nobody waits for it.
        if !matches!(self.phase, Phase::Optimistic | Phase::Promoted) {
            return;
        }
        let Some(a) = self.attempt else {
            return;
        };
        match reply {
            Ok(_) => self.done(now, true, a.pre, a.new),
            // Another writer first, or the node went: a lost try.
            Err(SessionError::Server(ErrorCode::BadVersion | ErrorCode::NodeExists)) => {
                self.lost_try(now, a.pre)
            }
            Err(SessionError::Server(ErrorCode::NoNode)) if a.version.is_some() => {
                self.lost_try(now, a.pre)
            }
            // The parent is missing: make it, then the create again, in one go.
            Err(SessionError::Server(ErrorCode::NoNode)) => {
                let mut ancestors = Vec::new();
                let mut at = parent_of(&self.path);
                while let Some(p) = at {
                    ancestors.push(p.to_string());
                    at = parent_of(p);
                }
                for p in ancestors.into_iter().rev() {
                    let create =
                        crate::io::create(&p, Bytes::new(), &self.acl, CreateMode::Persistent);
                    self.submit(Purpose::Parent, create);
                }
                self.untry();
                self.write(a);
            }
            // Maybe applied: read back after a sync.
            Err(e) if again(&e) => {
                self.submit(Purpose::Sync, crate::io::sync(&self.path));
                self.submit(
                    Purpose::Check,
                    Request::GetData(GetDataRequest {
                        path: self.path.clone(),
                        watch: false,
                    }),
                );
            }
            Err(e) => self.finish(now, Outcome::Failed(e)),
        }
    }

    fn check_reply(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        if !matches!(self.phase, Phase::Optimistic | Phase::Promoted) {
            return;
        }
        let Some(a) = self.attempt else {
            return;
        };
        let next = a.version.map_or(0, |v| v + 1);
        match reply {
            Ok(Response::GetData(r)) => {
                let held = decode(&r.data);
                match a.version {
                    // Unchanged: the write did not land; again, on the same version.
                    Some(v) if r.stat.version == v => {
                        self.untry();
                        self.write(a)
                    }
                    _ if r.stat.version == next && held == Some(a.new) => {
                        self.finish(now, Outcome::InDoubt { pre: a.pre })
                    }
                    // Another writer won this version: ours did not land.
                    _ if r.stat.version == next => self.lost_try(now, a.pre),
                    // Later versions: ours may be among them.
                    _ => self.finish(now, Outcome::InDoubt { pre: a.pre }),
                }
            }
            // Still missing: the create did not land.
            Err(SessionError::Server(ErrorCode::NoNode)) if a.version.is_none() => {
                self.untry();
                self.write(a)
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => {
                self.finish(now, Outcome::InDoubt { pre: a.pre })
            }
            Err(e) if again(&e) => {
                self.submit(Purpose::Sync, crate::io::sync(&self.path));
                self.submit(
                    Purpose::Check,
                    Request::GetData(GetDataRequest {
                        path: self.path.clone(),
                        watch: false,
                    }),
                );
            }
            Ok(_) | Err(_) => self.finish(now, Outcome::InDoubt { pre: a.pre }),
        }
    }

    /// Takes the lock's outputs: its requests go out under tags with [`LOCK_BIT`], its
    /// outcomes move the promoted change on.
    fn pump_lock(&mut self, now: Instant) {
        loop {
            let Some(lock) = self.lock.as_mut() else {
                return;
            };
            let Some(o) = lock.poll_output() else {
                break;
            };
            match o {
                Output::Submit(tag, request) => self
                    .out
                    .push_back(Output::Submit(Tag(tag.0 | LOCK_BIT), request)),
                Output::Outcome(LockOutcome::Acquired { .. }) if self.phase == Phase::Locking => {
                    self.phase = Phase::Promoted;
                    self.read();
                }
                Output::Outcome(LockOutcome::Failed(e)) if self.phase == Phase::Locking => {
                    self.finish(now, Outcome::Failed(e));
                    return;
                }
                Output::Outcome(LockOutcome::Lost) if self.phase == Phase::Promoted => {
                    // The lock went with the session: the write under way is the same
                    // versioned write, safe without it; its reply decides.
                }
                Output::Outcome(_) => {}
            }
        }
        self.settle();
    }

    fn settle(&mut self) {
        if self.phase == Phase::Finishing
            && self.in_flight.is_empty()
            && self.lock.as_ref().is_none_or(|l| l.is_done())
        {
            self.phase = Phase::Done;
        }
    }
}

impl Recipe for AtomicLong {
    type Outcome = Outcome;

    fn poll_output(&mut self) -> Option<Output<Outcome>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.lock.as_ref().and_then(|l| l.poll_timeout())
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some(lock) = self.lock.as_mut() {
            lock.handle_timeout(now);
        }
        self.pump_lock(now);
    }

    fn handle_state(&mut self, now: Instant, state: AppState, session_id: i64) {
        if state == AppState::Connected {
            self.session = session_id;
        }
        if let Some(lock) = self.lock.as_mut() {
            lock.handle_state(now, state, session_id);
        }
        self.pump_lock(now);
    }

    fn handle_reply(&mut self, now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        if tag.0 & LOCK_BIT != 0 {
            if let Some(lock) = self.lock.as_mut() {
                lock.handle_reply(now, Tag(tag.0 & !LOCK_BIT), reply);
            }
            return self.pump_lock(now);
        }
        let Some(purpose) = self.in_flight.remove(&tag) else {
            return;
        };
        match purpose {
            Purpose::Read => self.read_reply(now, reply),
            Purpose::Write => self.write_reply(now, reply),
            Purpose::Check => self.check_reply(now, reply),
            Purpose::Parent | Purpose::Sync => {}
        }
        self.settle();
    }

    fn handle_watch(&mut self, now: Instant, tag: Tag, event: &WatchedEvent) {
        if tag.0 & LOCK_BIT != 0 {
            if let Some(lock) = self.lock.as_mut() {
                lock.handle_watch(now, Tag(tag.0 & !LOCK_BIT), event);
            }
            self.pump_lock(now);
        }
    }

    /// The caller gave up: a write in flight still lands or not (its outcome is not
    /// reported); the lock, if taken or being taken, is released until confirmed.
    fn release(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Finishing | Phase::Done) {
            return;
        }
        self.phase = Phase::Finishing;
        if let Some(lock) = self.lock.as_mut() {
            lock.release(now);
        }
        self.pump_lock(now);
    }

    fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::Done)
    }
}
