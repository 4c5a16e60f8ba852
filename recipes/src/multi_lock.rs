//! Several locks held as one (Curator's `InterProcessMultiLock`), as a sans-IO state
//! machine over one [`Lock`] machine per path.
//!
//! The locks are taken one after another in the order given, each with the deadline of the
//! whole acquisition, so that processes asking for the same locks in the same order never
//! deadlock. It is all or nothing: when one lock cannot be had (the deadline passes, an
//! error no retry fixes, the session ends while some are held), every lock already taken
//! is released, newest first, and the acquisition reports why. Once all are held, the
//! multi-lock is suspended while any of them is, and lost when any is lost (the others
//! are then released).
//!
//! Each lock is a full [`Lock`]: its lost replies, cleanup and cancellation are handled
//! there, so a release of the multi-lock at any point leaves nothing on the server once
//! the server has confirmed it. Node names follow the flavor of each lock (Curator's
//! `InterProcessMutex` for a Curator multi-lock), so a Curator service with an
//! `InterProcessMultiLock` over the same paths excludes ours and is excluded by it.

use std::collections::VecDeque;
use std::time::Instant;

use zk_proto::records::{Acl, Response};
use zk_proto::session::{AppState, Error as SessionError, WatchedEvent};

use crate::lock::{Acquire, Lock, Options, Outcome};
use crate::{Output, Recipe, Tag};

/// How many bits of a tag belong to a lock's own machine; the bits above say which lock.
const SHIFT: u32 = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Acquiring,
    Held,
    Releasing,
    Done,
}

/// Several locks taken in order and held together: see the [module](crate::multi_lock).
#[derive(Debug)]
pub struct MultiLock {
    locks: Vec<Lock>,
    /// The lock being acquired now.
    next: usize,
    nodes: Vec<String>,
    fencing: i64,
    phase: Phase,
    session: i64,
    deadline: Option<Instant>,
    /// Which held locks are suspended now.
    suspended: Vec<bool>,
    out: VecDeque<Output<Outcome>>,
}

impl MultiLock {
    /// A multi-lock over `locks` (at least one; taken in this order), the machine of each
    /// named with `id` and its index.
    pub fn new(locks: &[Options], id: &str) -> Result<MultiLock, SessionError> {
        if locks.is_empty() {
            return Err(SessionError::InvalidRequest(
                "a multi-lock needs at least one lock",
            ));
        }
        let machines = locks
            .iter()
            .enumerate()
            .map(|(i, o)| o.machine(&format!("{id}-m{i}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MultiLock {
            suspended: vec![false; machines.len()],
            locks: machines,
            next: 0,
            nodes: Vec::new(),
            fencing: 0,
            phase: Phase::Idle,
            session: 0,
            deadline: None,
            out: VecDeque::new(),
        })
    }

    /// A multi-lock over `paths`, each a lock in Curator's layout open to everyone.
    pub fn curator(paths: &[&str], id: &str) -> Result<MultiLock, SessionError> {
        let options: Vec<Options> = paths
            .iter()
            .map(|p| {
                Options::new(p)
                    .with_flavor(crate::lock::Flavor::Curator)
                    .with_acl(Acl::open_unsafe())
            })
            .collect();
        MultiLock::new(&options, id)
    }

    /// Starts acquiring every lock, in order, on the session `session_id`, giving up at
    /// `deadline`.
    pub fn acquire(&mut self, now: Instant, session_id: i64, deadline: Option<Instant>) {
        if !matches!(self.phase, Phase::Idle | Phase::Done) {
            return;
        }
        self.phase = Phase::Acquiring;
        self.session = session_id;
        self.deadline = deadline;
        self.next = 0;
        self.nodes.clear();
        self.suspended.iter_mut().for_each(|s| *s = false);
        self.locks[0].acquire(now, session_id, deadline);
        self.pump(now);
    }

    /// The nodes held, one per lock in order, once all are held.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// Releases every lock, newest first (in any phase).
    fn release_all(&mut self, now: Instant) {
        self.phase = Phase::Releasing;
        for lock in self.locks.iter_mut().rev() {
            lock.release(now);
        }
        self.pump(now);
    }

    /// Takes every lock's outputs: requests go out under the multi-lock's tags, outcomes
    /// move the acquisition on. Again until no lock has anything left.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut any = false;
            for i in 0..self.locks.len() {
                while let Some(o) = self.locks[i].poll_output() {
                    any = true;
                    match o {
                        Output::Submit(tag, request) => self
                            .out
                            .push_back(Output::Submit(Tag(((i as u64) << SHIFT) | tag.0), request)),
                        Output::Outcome(outcome) => self.heard(now, i, outcome),
                    }
                }
            }
            if !any {
                break;
            }
        }
        if self.phase == Phase::Releasing && self.locks.iter().all(|l| l.is_done()) {
            self.phase = Phase::Done;
            self.out.push_back(Output::Outcome(Outcome::Released));
        }
    }

    fn emit(&mut self, outcome: Outcome) {
        self.out.push_back(Output::Outcome(outcome));
    }

    /// Gives up on the acquisition with `outcome`, releasing what is held.
    fn give_up(&mut self, now: Instant, outcome: Outcome) {
        if matches!(self.phase, Phase::Acquiring | Phase::Held) {
            self.emit(outcome);
            self.release_all(now);
        }
    }

    fn heard(&mut self, now: Instant, i: usize, outcome: Outcome) {
        match (self.phase, outcome) {
            (Phase::Acquiring, Outcome::Acquired { node, fencing }) if i == self.next => {
                if i == 0 {
                    self.fencing = fencing;
                }
                self.nodes.push(node.clone());
                self.next += 1;
                if self.next == self.locks.len() {
                    self.phase = Phase::Held;
                    self.emit(Outcome::Acquired {
                        node,
                        fencing: self.fencing,
                    });
                } else {
                    let (session, deadline) = (self.session, self.deadline);
                    self.locks[self.next].acquire(now, session, deadline);
                }
            }
            (Phase::Acquiring, Outcome::TimedOut) => self.give_up(now, Outcome::TimedOut),
            (Phase::Acquiring | Phase::Held, Outcome::Failed(e)) => {
                self.give_up(now, Outcome::Failed(e))
            }
            // A lock taken earlier went with its session before the others were had: the
            // acquisition fails as the session did (ask again on the new one).
            (Phase::Acquiring, Outcome::Lost) => {
                self.give_up(now, Outcome::Failed(SessionError::SessionExpired))
            }
            (Phase::Acquiring, Outcome::Suspended) => self.suspended[i] = true,
            (Phase::Acquiring, Outcome::Resumed) => self.suspended[i] = false,
            (Phase::Held, Outcome::Suspended) => {
                let first = !self.suspended.iter().any(|s| *s);
                self.suspended[i] = true;
                if first {
                    self.emit(Outcome::Suspended);
                }
            }
            (Phase::Held, Outcome::Resumed) => {
                self.suspended[i] = false;
                if !self.suspended.iter().any(|s| *s) {
                    self.emit(Outcome::Resumed);
                }
            }
            (Phase::Held, Outcome::Lost) => self.give_up(now, Outcome::Lost),
            // A lock's own `Released`, or what a released lock still says: the multi-lock
            // reports once every lock is done.
            _ => {}
        }
    }
}

impl Acquire for MultiLock {
    fn acquire(&mut self, now: Instant, session_id: i64, deadline: Option<Instant>) {
        MultiLock::acquire(self, now, session_id, deadline);
    }

    fn held(&self) -> Vec<String> {
        self.nodes.clone()
    }
}

impl Recipe for MultiLock {
    type Outcome = Outcome;

    fn poll_output(&mut self) -> Option<Output<Outcome>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.locks.iter().filter_map(|l| l.poll_timeout()).min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        for lock in &mut self.locks {
            if lock.poll_timeout().is_some_and(|t| t <= now) {
                lock.handle_timeout(now);
            }
        }
        self.pump(now);
    }

    fn handle_state(&mut self, now: Instant, state: AppState, session_id: i64) {
        for lock in &mut self.locks {
            lock.handle_state(now, state, session_id);
        }
        self.pump(now);
    }

    fn handle_reply(&mut self, now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        let i = (tag.0 >> SHIFT) as usize;
        if let Some(lock) = self.locks.get_mut(i) {
            lock.handle_reply(now, Tag(tag.0 & ((1 << SHIFT) - 1)), reply);
        }
        self.pump(now);
    }

    fn handle_watch(&mut self, now: Instant, tag: Tag, event: &WatchedEvent) {
        let i = (tag.0 >> SHIFT) as usize;
        if let Some(lock) = self.locks.get_mut(i) {
            lock.handle_watch(now, Tag(tag.0 & ((1 << SHIFT) - 1)), event);
        }
        self.pump(now);
    }

    fn release(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Acquiring | Phase::Held) {
            self.release_all(now);
        }
    }

    fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::Done) && self.locks.iter().all(|l| l.is_done())
    }
}
