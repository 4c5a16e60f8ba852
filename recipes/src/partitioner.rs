//! A set of items split among the members of a party (Kazoo's `SetPartitioner`), as a
//! sans-IO state machine over a party member, a patient children watch and one lock per
//! item, in Kazoo's layout so Python services using Kazoo's partitioner share the work:
//!
//! - members join `<path>/party` as Kazoo's `ShallowParty` (`<hex>-<identifier>`);
//! - each item is a Kazoo lock at `<path>/locks/<item>`;
//! - once the party has not changed for the quiet period (Kazoo's `time_boundary`), each
//!   member takes the items Kazoo's default partitioner gives it: the items sorted, every
//!   n-th one from the member's place among the sorted identifiers
//!   ([`partition_of`]), acquiring their locks one after another ([`State::Allocating`]),
//!   then [`State::Acquired`] with them;
//! - a later change to the party, or a lost connection (the session may expire and the
//!   items pass on), asks the member to let go ([`State::Release`]); it works on until it
//!   calls [`Partitioner::release_set`], which releases its locks and allocates again. A
//!   change while still allocating releases and starts over at once;
//! - the session's end is [`State::Failure`]: the member's node and locks went with it.
//!
//! Every lock keeps the lock machine's guarantees (lost replies adopted, cleanup until
//! confirmed), so no item is ever held by two members in server time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use zk_proto::records::{Acl, Response};
use zk_proto::session::{AppState, Error as SessionError, WatchedEvent};

use crate::lock::{Flavor, Lock, Outcome as LockOutcome};
use crate::party::{Party, Style};
use crate::patient::{Outcome as Patient, PatientWatch};
use crate::{Output, Recipe, Tag};

/// Where a partitioner stands (Kazoo's `PartitionState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Waiting for the party to settle, or taking its items' locks.
    Allocating,
    /// Holding these items (sorted).
    Acquired(Vec<String>),
    /// The party changed: finish the work in hand, then call `release_set`.
    Release,
    /// The session ended (or an error no retry fixes): start a new partitioner.
    Failure,
}

/// The items `identifier` gets among `members` (Kazoo's default partitioner): the items
/// sorted, then every `members.len()`-th one starting at `identifier`'s place among the
/// sorted identifiers; nothing when it is not a member.
pub fn partition_of(identifier: &str, members: &[String], items: &[String]) -> Vec<String> {
    let mut workers: Vec<&String> = members.iter().collect();
    workers.sort();
    workers.dedup();
    let Some(i) = workers.iter().position(|w| *w == identifier) else {
        return Vec::new();
    };
    let mut all: Vec<&String> = items.iter().collect();
    all.sort();
    all.into_iter()
        .skip(i)
        .step_by(workers.len())
        .cloned()
        .collect()
}

/// How many bits of a tag are a part's own; the bits above say which part.
const SHIFT: u32 = 40;
const PARTY: u64 = 0;
const WATCH: u64 = 1;
const LOCKS: u64 = 2;

/// A member of a set partitioner: see the [module](crate::partitioner).
#[derive(Debug)]
pub struct Partitioner {
    path: String,
    id: String,
    identifier: String,
    items: Vec<String>,
    party: Party,
    watch: PatientWatch,
    /// The locks of the items being taken or held, in order, each with its part number
    /// (fixed for the lock's life, so replies find it after it is retired).
    locks: Vec<(u64, String, Lock)>,
    /// How many of `locks` are held.
    held: usize,
    /// The party's members the allocation is for.
    members: Option<Vec<String>>,
    /// The members the party last settled on.
    settled: Option<Vec<String>>,
    state: State,
    joined: bool,
    session: i64,
    /// Locks released and not yet confirmed gone (from earlier allocations).
    retired: Vec<(u64, Lock)>,
    /// The part number the next lock gets.
    next_part: u64,
    releasing: bool,
    creates: u64,
    out: VecDeque<Output<State>>,
}

impl Partitioner {
    /// A member `identifier` (unique among the members; no `/`) of the partitioner at
    /// `path` over `items`, the party settling after `quiet` without change; `id` is unique
    /// among all contenders (node names carry it).
    pub fn new(
        path: &str,
        id: &str,
        identifier: &str,
        items: &[String],
        quiet: Duration,
    ) -> Result<Partitioner, SessionError> {
        zk_proto::path::validate_path(path)?;
        if identifier.is_empty() || identifier.contains('/') {
            return Err(SessionError::InvalidRequest(
                "a partitioner's identifier is part of a node name: not empty, no '/'",
            ));
        }
        if items.iter().any(|i| i.is_empty() || i.contains('/')) {
            return Err(SessionError::InvalidRequest(
                "a partitioner's items name lock nodes: not empty, no '/'",
            ));
        }
        let party_path = format!("{}/party", path.trim_end_matches('/'));
        Ok(Partitioner {
            path: path.trim_end_matches('/').to_string(),
            id: id.to_string(),
            identifier: identifier.to_string(),
            items: items.to_vec(),
            party: Party::new(
                &party_path,
                id,
                identifier,
                Style::Shallow,
                Acl::open_unsafe(),
            ),
            watch: PatientWatch::new(&party_path, quiet),
            locks: Vec::new(),
            held: 0,
            members: None,
            settled: None,
            state: State::Allocating,
            joined: false,
            session: 0,
            retired: Vec::new(),
            next_part: LOCKS,
            releasing: false,
            creates: 0,
            out: VecDeque::new(),
        })
    }

    /// Joins the party on the session `session_id` and starts following it.
    pub fn start(&mut self, now: Instant, session_id: i64) {
        self.session = session_id;
        self.party.join(now, session_id, None);
        self.watch.start(now);
        self.emit(State::Allocating);
        self.pump(now);
    }

    /// Where it stands now.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// After [`State::Release`]: lets go of the items and allocates again on the party as
    /// it is now (Kazoo's `release_set`).
    pub fn release_set(&mut self, now: Instant) {
        if self.state != State::Release {
            return;
        }
        self.drop_locks(now);
        self.emit(State::Allocating);
        self.allocate(now);
        self.pump(now);
    }

    fn emit(&mut self, state: State) {
        if self.state != state || state == State::Allocating {
            self.state = state.clone();
            self.out.push_back(Output::Outcome(state));
        }
    }

    /// Releases every lock taken for the last allocation; they finish in the background.
    fn drop_locks(&mut self, now: Instant) {
        for (part, _, mut lock) in self.locks.drain(..) {
            lock.release(now);
            self.retired.push((part, lock));
        }
        self.held = 0;
        self.members = None;
    }

    /// Allocates for the latest settled party, if this member is in it.
    fn allocate(&mut self, now: Instant) {
        if self.releasing || !self.joined || !matches!(self.state, State::Allocating) {
            return;
        }
        let Some(members) = self.settled.clone() else {
            return;
        };
        if !members.contains(&self.identifier) {
            // Our own node is not in the listing yet: the next settled one has it.
            return;
        }
        let mine = partition_of(&self.identifier, &members, &self.items);
        self.members = Some(members);
        for item in mine {
            self.creates += 1;
            let lock = Lock::new(
                &format!("{}/locks/{item}", self.path),
                &format!("{}-p{}", self.id, self.creates),
                Acl::open_unsafe(),
            )
            .with_flavor(Flavor::Kazoo);
            self.locks.push((self.next_part, item, lock));
            self.next_part += 1;
        }
        self.next_lock(now);
    }

    /// Takes the next lock, or reports the items once all are held.
    fn next_lock(&mut self, now: Instant) {
        if self.held < self.locks.len() {
            let session = self.session;
            self.locks[self.held].2.acquire(now, session, None);
        } else if self.members.is_some() {
            let mut items: Vec<String> = self.locks.iter().map(|(_, i, _)| i.clone()).collect();
            items.sort();
            self.emit(State::Acquired(items));
        }
    }

    /// The party settled on `members`.
    fn settled_on(&mut self, now: Instant, members: Vec<String>) {
        // Kept whatever comes next: a change and its undoing both count.
        self.settled = Some(members.clone());
        if self.members.as_ref() == Some(&members) {
            return;
        }
        match self.state {
            State::Acquired(_) => self.emit(State::Release),
            State::Allocating => {
                // A change while taking locks: let go and start over at once.
                if self.members.is_some() {
                    self.drop_locks(now);
                }
                self.allocate(now);
            }
            State::Release | State::Failure => {}
        }
    }

    fn fail(&mut self, now: Instant) {
        if self.state == State::Failure {
            return;
        }
        self.drop_locks(now);
        self.emit(State::Failure);
    }

    /// Moves every part's outputs out, under tags that name the part, and acts on their
    /// outcomes; again until none has anything left.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut any = false;
            while let Some(o) = self.party.poll_output() {
                any = true;
                match o {
                    Output::Submit(t, r) => self.submit(PARTY, t, r),
                    Output::Outcome(LockOutcome::Acquired { .. }) => {
                        self.joined = true;
                        self.allocate(now);
                    }
                    Output::Outcome(LockOutcome::Lost | LockOutcome::Failed(_)) => self.fail(now),
                    // The connection is lost: the session may expire and the items pass on
                    // before this member can know. Let go, as Kazoo does.
                    Output::Outcome(LockOutcome::Suspended)
                        if matches!(self.state, State::Acquired(_)) =>
                    {
                        self.emit(State::Release)
                    }
                    Output::Outcome(_) => {}
                }
            }
            while let Some(o) = self.watch.poll_output() {
                any = true;
                match o {
                    Output::Submit(t, r) => self.submit(WATCH, t, r),
                    Output::Outcome(Patient::Stable(listing)) => {
                        let mut members: Vec<String> = listing
                            .map(|(children, _)| {
                                children
                                    .iter()
                                    .filter_map(|c| Style::Shallow.member_of(c))
                                    .map(str::to_string)
                                    .collect()
                            })
                            .unwrap_or_default();
                        members.sort();
                        members.dedup();
                        self.settled_on(now, members);
                    }
                    Output::Outcome(Patient::Failed(_)) => self.fail(now),
                }
            }
            let mut i = 0;
            while i < self.locks.len() {
                while let Some((part, o)) = self
                    .locks
                    .get_mut(i)
                    .and_then(|(part, _, l)| Some((*part, l.poll_output()?)))
                {
                    any = true;
                    match o {
                        Output::Submit(t, r) => self.submit(part, t, r),
                        Output::Outcome(LockOutcome::Acquired { .. }) if i == self.held => {
                            self.held += 1;
                            self.next_lock(now);
                        }
                        Output::Outcome(LockOutcome::Lost | LockOutcome::Failed(_)) => {
                            self.fail(now)
                        }
                        Output::Outcome(_) => {}
                    }
                }
                i += 1;
            }
            for (part, lock) in self.retired.iter_mut() {
                while let Some(o) = lock.poll_output() {
                    any = true;
                    if let Output::Submit(t, r) = o {
                        let tag = Tag(*part << SHIFT | t.0);
                        self.out.push_back(Output::Submit(tag, r));
                    }
                }
            }
            if !any {
                break;
            }
        }
        self.retired.retain(|(_, l)| !l.is_done());
    }

    fn submit(&mut self, part: u64, tag: Tag, request: zk_proto::records::Request) {
        self.out
            .push_back(Output::Submit(Tag(part << SHIFT | tag.0), request));
    }

    /// The part a tag belongs to, and the part's own tag.
    fn route(tag: Tag) -> (u64, Tag) {
        (tag.0 >> SHIFT, Tag(tag.0 & ((1 << SHIFT) - 1)))
    }

    fn with_part(&mut self, part: u64, f: impl FnOnce(&mut dyn PartMachine)) {
        match part {
            PARTY => f(&mut self.party),
            WATCH => f(&mut self.watch),
            p => {
                if let Some((_, _, l)) = self.locks.iter_mut().find(|(q, _, _)| *q == p) {
                    f(l)
                } else if let Some((_, l)) = self.retired.iter_mut().find(|(q, _)| *q == p) {
                    f(l)
                }
            }
        }
    }
}

/// What the partitioner asks of each of its parts.
trait PartMachine {
    fn reply(&mut self, now: Instant, tag: Tag, reply: Result<Response, SessionError>);
    fn watch(&mut self, now: Instant, tag: Tag, event: &WatchedEvent);
}

impl<R: Recipe> PartMachine for R {
    fn reply(&mut self, now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        self.handle_reply(now, tag, reply);
    }
    fn watch(&mut self, now: Instant, tag: Tag, event: &WatchedEvent) {
        self.handle_watch(now, tag, event);
    }
}

impl Recipe for Partitioner {
    type Outcome = State;

    fn poll_output(&mut self) -> Option<Output<State>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let parts = [self.party.poll_timeout(), self.watch.poll_timeout()];
        parts
            .into_iter()
            .chain(self.locks.iter().map(|(_, _, l)| l.poll_timeout()))
            .chain(self.retired.iter().map(|(_, l)| l.poll_timeout()))
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.party.handle_timeout(now);
        self.watch.handle_timeout(now);
        for (_, _, l) in &mut self.locks {
            l.handle_timeout(now);
        }
        for (_, l) in &mut self.retired {
            l.handle_timeout(now);
        }
        self.pump(now);
    }

    fn handle_state(&mut self, now: Instant, state: AppState, session_id: i64) {
        if state == AppState::Connected {
            self.session = session_id;
        }
        self.party.handle_state(now, state, session_id);
        self.watch.handle_state(now, state, session_id);
        for (_, _, l) in &mut self.locks {
            l.handle_state(now, state, session_id);
        }
        for (_, l) in &mut self.retired {
            l.handle_state(now, state, session_id);
        }
        self.pump(now);
    }

    fn handle_reply(&mut self, now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        let (part, own) = Self::route(tag);
        self.with_part(part, |m| m.reply(now, own, reply));
        self.pump(now);
    }

    fn handle_watch(&mut self, now: Instant, tag: Tag, event: &WatchedEvent) {
        let (part, own) = Self::route(tag);
        self.with_part(part, |m| m.watch(now, own, event));
        self.pump(now);
    }

    /// Leaves: releases every lock and the party node (Kazoo's `finish`).
    fn release(&mut self, now: Instant) {
        self.releasing = true;
        self.drop_locks(now);
        self.party.release(now);
        self.watch.release(now);
        self.pump(now);
    }

    fn is_done(&self) -> bool {
        self.releasing
            && self.party.is_done()
            && self.watch.is_done()
            && self.locks.is_empty()
            && self.retired.iter().all(|(_, l)| l.is_done())
    }
}
