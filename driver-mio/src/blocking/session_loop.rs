//! One session as the IO thread and the callers drive it: its connection, the driver
//! core that routes its events, and where results go.

use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use tracing::{debug, info};
use zk_proto::records::*;
use zk_proto::session::{self, Event, RequestId, StateEvent, WatchedEvent};

use super::callbacks::*;
use crate::Connection;
use zk_client::driver::{Core, Deliver, Snapshot};

pub(crate) type Reply = std::result::Result<Response, session::Error>;
/// Where the outcome of a request the IO thread submitted goes.
pub(crate) type ReplyTo = Sender<(RequestId, Reply)>;

/// Who waits for a request's outcome.
pub(crate) enum Waiter {
    /// A channel: the request went through the IO thread.
    Channel(ReplyTo),
    /// A caller that submitted it itself and parks until the outcome is in
    /// [`SessionLoop::arrived`] (Linux only).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Parked(thread::Thread),
}

/// Where a watch's events go.
pub(crate) enum Sink {
    Channel(Sender<WatchedEvent>),
    Callback(Callback),
    /// A callback handed to the callback thread, which routes the watch's events to it.
    Registered,
}

/// What a client's handles ask of its session.
pub(crate) type Cmd = zk_client::driver::Command<Handles>;

/// Who hears a session's state changes.
pub(crate) enum Subscriber {
    Channel(Sender<StateEvent>),
    /// A listener, run on the callback thread.
    Listener(Listener),
}

/// One session, driven by the IO thread and, for a call at a time, by the caller waiting
/// for its reply.
pub(super) struct SessionLoop {
    pub(super) conn: Connection,
    pub(super) snapshot: Arc<Mutex<Snapshot>>,
    pub(super) key: usize,
    /// Waiters, watch sinks and recipe machines, fed the session's events in socket order.
    pub(super) core: Core<Handles>,
    /// The deadline filed with the IO thread.
    pub(super) deadline: Option<Instant>,
    pub(super) touched: bool,
    /// A caller reads the socket of this generation itself, and the IO thread leaves
    /// reading it to the caller. A socket of a later generation (the IO thread moved the
    /// session meanwhile) is the IO thread's again.
    pub(super) reading: Option<u64>,
    /// The IO thread let the session go: calls fail as closed.
    pub(super) ended: bool,
    /// The latest moment any thread gave the session: time never runs back for it.
    pub(super) clock: Instant,
}

impl SessionLoop {
    pub(super) fn new(
        conn: Connection,
        snapshot: Arc<Mutex<Snapshot>>,
        callbacks: Sender<(usize, CallbackJob)>,
        key: usize,
    ) -> Self {
        SessionLoop {
            conn,
            snapshot,
            key,
            core: Core::new(Handles {
                key,
                callbacks,
                arrived: HashMap::new(),
                subscribers: Vec::new(),
                listening: false,
            }),
            deadline: None,
            touched: false,
            reading: None,
            ended: false,
            clock: Instant::now(),
        }
    }

    /// `now`, or the latest moment the session already saw if that is later (another
    /// thread may have read the clock after this one).
    pub(super) fn tick(&mut self, now: Instant) -> Instant {
        self.clock = self.clock.max(now);
        self.clock
    }

    /// Publishes the session's state to the handles. It moves before events go out:
    /// whoever hears of a state change and then asks the client sees that state or a
    /// later one.
    pub(super) fn publish(&mut self) {
        if let Some(snap) = self.core.snapshot(self.conn.session())
            && let Ok(mut shared) = self.snapshot.lock()
        {
            *shared = snap;
        }
    }

    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    /// A turn on a caller's thread: publishes the session's state, delivers its events,
    /// and writes whatever that made the session or its machines send.
    pub(super) fn turn_here(&mut self, now: Instant) {
        self.publish();
        self.deliver(now);
        self.conn.flush(now);
    }

    /// When the session (and its hosted machines) next has work; writes what is queued.
    pub(super) fn next_deadline(&mut self, now: Instant) -> Option<Instant> {
        let hosted = self.core.poll_timeout();
        match (self.conn.timeout(now).map(|d| now + d), hosted) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A caller may submit and read its reply itself: the session is connected over a
    /// healthy link and nothing else needs the IO thread's attention.
    #[cfg(target_os = "linux")]
    pub(super) fn direct(&self) -> bool {
        !self.ended
            && !self.core.is_closing()
            && self.core.router.hosts_nothing()
            && self.conn.direct_fd().is_some()
    }

    /// A caller reads the current socket.
    pub(super) fn reading(&self) -> bool {
        self.reading.is_some_and(|g| g == self.conn.generation())
    }

    /// Nothing can come from the server unasked but a close: no watch is set, no reply is
    /// owed, no caller waits.
    #[cfg(target_os = "linux")]
    pub(super) fn quiet(&self) -> bool {
        self.core.router.is_quiet() && !self.conn.session().may_hear()
    }

    /// The session is over: everyone waiting hears it (dropped channels read as closed).
    pub(super) fn end(&mut self) {
        self.ended = true;
        for waiter in self.core.end() {
            if let Waiter::Parked(thread) = waiter {
                thread.unpark();
            }
        }
        debug!(key = self.key, "session ends");
    }

    /// Lets watch `id` go: its sink here, and on the server.
    pub(super) fn release(&mut self, now: Instant, id: RequestId) {
        self.core.release(&mut self.conn, now, id);
    }

    pub(super) fn command(&mut self, now: Instant, cmd: Cmd) {
        self.core.command(&mut self.conn, now, cmd);
    }

    /// Hands the session's events to the hosted machines first and the rest to the
    /// client's callers, then lets each machine submit and report, until nothing more
    /// happens.
    pub(super) fn deliver(&mut self, now: Instant) {
        self.core.turn(&mut self.conn, now);
    }
}

/// Where a session's results go: its callers' channels and parked threads, its state
/// subscribers, and the callback thread.
pub(crate) struct Handles {
    pub(super) key: usize,
    pub(super) callbacks: Sender<(usize, CallbackJob)>,
    /// Outcomes for parked callers, until they take them.
    pub(super) arrived: HashMap<RequestId, Reply>,
    pub(super) subscribers: Vec<Sender<StateEvent>>,
    /// Some listener runs on the callback thread: state events go there too.
    pub(super) listening: bool,
}

impl Handles {
    pub(super) fn callback(&self, job: CallbackJob) -> bool {
        self.callbacks.send((self.key, job)).is_ok()
    }
}

impl Deliver for Handles {
    type Reply = Waiter;
    type Watch = Sink;
    type Answer<T> = Sender<T>;
    type Subscriber = Subscriber;

    fn answer<T>(to: Sender<T>, value: T) {
        let _ = to.send(value);
    }

    fn subscribe(&mut self, subscriber: Subscriber) {
        match subscriber {
            Subscriber::Channel(tx) => self.subscribers.push(tx),
            Subscriber::Listener(f) => {
                self.listening = true;
                self.callback(CallbackJob::Listen(f));
            }
        }
    }

    fn watch_released(&mut self, id: RequestId, sink: Sink) {
        if let Sink::Registered = sink {
            self.callback(CallbackJob::Forget(id));
        }
    }

    fn end(&mut self) {
        self.arrived.clear();
        self.subscribers.clear();
        self.callback(CallbackJob::End);
    }

    fn reply(&mut self, to: Waiter, id: RequestId, result: Reply) -> bool {
        match to {
            Waiter::Channel(tx) => tx.send((id, result)).is_ok(),
            Waiter::Parked(thread) => {
                self.arrived.insert(id, result);
                thread.unpark();
                true
            }
        }
    }

    fn watch_set(&mut self, id: RequestId, sink: Sink) -> Sink {
        match sink {
            Sink::Callback(cb) => {
                self.callback(CallbackJob::Register(id, cb));
                Sink::Registered
            }
            other => other,
        }
    }

    fn watch_event(&mut self, sink: &mut Sink, event: WatchedEvent, last: bool) -> bool {
        match sink {
            Sink::Channel(tx) => tx.send(event).is_ok(),
            Sink::Registered => self.callback(CallbackJob::Event(event, last)),
            Sink::Callback(_) => false,
        }
    }

    fn state(&mut self, event: Event, _session: &zk_proto::session::Session) {
        if let Some(state) = StateEvent::of(&event) {
            info!(?state, "session state");
            self.subscribers.retain(|s| s.send(state).is_ok());
            if self.listening {
                self.callback(CallbackJob::State(state));
            }
        }
    }
}
