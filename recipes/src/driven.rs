//! A recipe machine beside a session: the request ids its requests got.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use zk_proto::records::{Request, Response};
use zk_proto::session::{Error as SessionError, Event, RequestId};
use zk_proto::watch::WatchKind;

use crate::{Output, Recipe, Tag};

/// A recipe machine with the bookkeeping a driver needs: which request id carries which
/// tag, for replies and for the events of watches.
///
/// In a loop around a session (a `zk_mio::Connection`, a simulated session), hand every
/// [`Event`] to [`Driven::handle_event`] first, then call [`Driven::flush`] to submit what
/// the machine asks for and collect its outcomes:
///
/// ```
/// use std::time::Instant;
/// use zk_proto::records::{Acl, Request};
/// use zk_proto::session::{Error, RequestId};
/// use zk_recipes::Driven;
/// use zk_recipes::lock::Lock;
///
/// let now = Instant::now();
/// let mut lock = Driven::new(Lock::new("/locks/job", "7f3a9c", Acl::open_unsafe()));
/// lock.machine_mut().acquire(now, 0x1234, None);
/// let mut sent: Vec<Request> = Vec::new();
/// let mut outcomes = Vec::new();
/// lock.flush(
///     now,
///     |request| { sent.push(request); Ok::<_, Error>(RequestId(7)) },
///     |outcome| outcomes.push(outcome),
/// );
/// assert!(matches!(sent[0], Request::Create2(_)));
/// assert!(outcomes.is_empty());
/// // ...then, in the loop: `if let Some(other) = lock.handle_event(now, event, id) { ... }`
/// ```
#[derive(Debug)]
pub struct Driven<R> {
    machine: R,
    replies: HashMap<RequestId, Tag>,
    /// Watches by request id, with whether they last until removed.
    watches: HashMap<RequestId, (Tag, bool)>,
    /// Requests the machine asked for after a refusal in the same turn: they go out at the
    /// next turn, so that a machine that asks again at once cannot spin its host.
    held: VecDeque<(Tag, Request)>,
}

impl<R: Recipe> Driven<R> {
    /// Wraps a machine.
    pub fn new(machine: R) -> Driven<R> {
        Driven {
            machine,
            replies: HashMap::new(),
            watches: HashMap::new(),
            held: VecDeque::new(),
        }
    }

    /// The machine.
    pub fn machine(&self) -> &R {
        &self.machine
    }

    /// The machine, to start or release it.
    pub fn machine_mut(&mut self) -> &mut R {
        &mut self.machine
    }

    /// Whether the request `id` is one of the machine's and still waits for its reply.
    pub fn owns(&self, id: RequestId) -> bool {
        self.replies.contains_key(&id)
    }

    /// The watches the machine's requests left that are still set, forgotten here: the
    /// driver releases them when the machine is done with them.
    pub fn take_watches(&mut self) -> Vec<RequestId> {
        self.watches.drain().map(|(id, _)| id).collect()
    }

    /// Hands the machine what is its own: the completion of one of its requests, an event
    /// of one of its watches, an application-view change (`session_id` is the session's
    /// id now). Returns the event when it is not the machine's alone, for the loop's other
    /// work: state changes are returned too.
    pub fn handle_event(&mut self, now: Instant, event: Event, session_id: i64) -> Option<Event> {
        match event {
            Event::Complete { id, result, watch } => match self.replies.remove(&id) {
                Some(tag) => {
                    if let Some(kind) = watch {
                        self.watches.insert(id, (tag, !kind.is_one_shot()));
                    }
                    self.machine.handle_reply(now, tag, result);
                    None
                }
                None => Some(Event::Complete { id, result, watch }),
            },
            Event::Watch(w) => match self.watches.get(&w.watch).copied() {
                Some((tag, lasting)) => {
                    if !lasting || w.is_final() {
                        self.watches.remove(&w.watch);
                    }
                    self.machine.handle_watch(now, tag, &w);
                    None
                }
                None => Some(Event::Watch(w)),
            },
            Event::App(state) => {
                self.machine.handle_state(now, state, session_id);
                Some(Event::App(state))
            }
            other => Some(other),
        }
    }

    /// Hands the machine a reply that arrived by other means than an [`Event`] (a driver
    /// with its own completion channels), with the watch the request left, if any.
    pub fn handle_completion(
        &mut self,
        now: Instant,
        id: RequestId,
        result: Result<Response, SessionError>,
        watch: Option<WatchKind>,
    ) {
        if let Some(tag) = self.replies.remove(&id) {
            if let Some(kind) = watch {
                self.watches.insert(id, (tag, !kind.is_one_shot()));
            }
            self.machine.handle_reply(now, tag, result);
        }
    }

    /// Time passed: the machine's deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.machine.poll_timeout().is_some_and(|t| t <= now) {
            self.machine.handle_timeout(now);
        }
    }

    /// Submits every request the machine asks for with `submit` (which returns the
    /// request's id, or the session's refusal) and passes every outcome to `outcome`.
    ///
    /// A refusal is handed back to the machine as the request's reply once the machine has
    /// nothing more to submit, and whatever it asks for after that waits for the next call:
    /// a session that refuses everything (expired, closed, a full queue) meets one request
    /// of the machine's per turn of the driver's loop, never a loop that cannot end.
    pub fn flush(
        &mut self,
        now: Instant,
        mut submit: impl FnMut(Request) -> Result<RequestId, SessionError>,
        mut outcome: impl FnMut(R::Outcome),
    ) {
        let mut refused = Vec::new();
        for (tag, request) in std::mem::take(&mut self.held) {
            match submit(request) {
                Ok(id) => {
                    self.replies.insert(id, tag);
                }
                Err(e) => refused.push((tag, e)),
            }
        }
        let mut answered = false;
        loop {
            while let Some(out) = self.machine.poll_output() {
                match out {
                    Output::Submit(tag, request) if answered => self.held.push_back((tag, request)),
                    Output::Submit(tag, request) => match submit(request) {
                        Ok(id) => {
                            self.replies.insert(id, tag);
                        }
                        Err(e) => refused.push((tag, e)),
                    },
                    Output::Outcome(o) => outcome(o),
                }
            }
            if answered || refused.is_empty() {
                return;
            }
            answered = true;
            for (tag, e) in refused.drain(..) {
                self.machine.handle_reply(now, tag, Err(e));
            }
        }
    }
}
