//! One session as the IO thread and the callers drive it: its connection, the driver
//! core that routes its events, and where results go.

use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info};
use zk_client::Error;
use zk_proto::records::*;
use zk_proto::session::{self, Event, RequestId, SessionMetrics, StateEvent, WatchedEvent};

use super::callbacks::*;
use crate::Connection;
use zk_client::driver::{Deliver, Hosted, Router, Snapshot};

pub(super) type Reply = std::result::Result<Response, session::Error>;
/// Where the outcome of a request the IO thread submitted goes.
pub(crate) type ReplyTo = Sender<(RequestId, Reply)>;

/// Who waits for a request's outcome.
pub(super) enum Waiter {
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

pub(crate) enum Cmd {
    Submit {
        request: Request,
        watch: Option<Sink>,
        reply: ReplyTo,
    },
    AddAuth {
        scheme: String,
        credentials: Bytes,
        reply: ReplyTo,
    },
    Subscribe(Sender<StateEvent>),
    Listen(Listener),
    Diagnose(Sender<Error>, Duration),
    Metrics(Sender<SessionMetrics>),
    UpdateHosts(zk_proto::session::HostList, Sender<bool>),
    Close(Sender<()>),
    /// Run a recipe machine beside the session.
    Host(Box<dyn Hosted>),
    /// Nothing but a turn: a hosted machine has steps waiting.
    Poke,
}

/// One session, driven by the IO thread and, for a call at a time, by the caller waiting
/// for its reply.
pub(super) struct SessionLoop {
    pub(super) conn: Connection,
    pub(super) snapshot: Arc<Mutex<Snapshot>>,
    pub(super) key: usize,
    /// Waiters, watch sinks and recipe machines, fed the session's events in socket order.
    pub(super) router: Router<Handles>,
    pub(super) handles: Handles,
    pub(super) close_waiters: Vec<Sender<()>>,
    pub(super) closing: bool,
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
            router: Router::default(),
            handles: Handles {
                key,
                callbacks,
                arrived: HashMap::new(),
                subscribers: Vec::new(),
                listening: false,
            },
            close_waiters: Vec::new(),
            closing: false,
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
    pub(super) fn publish(&self) {
        if let Ok(mut shared) = self.snapshot.lock() {
            *shared = Snapshot::of(self.conn.session(), Some(&shared));
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
        let hosted = self.router.poll_timeout();
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
            && !self.closing
            && self.router.hosts_nothing()
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
        self.router.is_quiet() && !self.conn.session().may_hear()
    }

    /// The session is over: everyone waiting hears it (dropped channels read as closed).
    pub(super) fn end(&mut self) {
        self.ended = true;
        for waiter in self.router.end() {
            if let Waiter::Parked(thread) = waiter {
                thread.unpark();
            }
        }
        self.handles.arrived.clear();
        self.handles.subscribers.clear();
        for w in self.close_waiters.drain(..) {
            let _ = w.send(());
        }
        self.handles.callback(CallbackJob::End);
        debug!(key = self.key, "session ends");
    }

    /// Lets watch `id` go: its sink here, and on the server.
    pub(super) fn release(&mut self, now: Instant, id: RequestId) {
        if let Some(Sink::Registered) = self.router.release(id) {
            self.handles.callback(CallbackJob::Forget(id));
        }
        self.conn.release_watch(now, id);
    }

    pub(super) fn command(&mut self, now: Instant, cmd: Cmd) {
        match cmd {
            Cmd::Submit {
                request,
                watch,
                reply,
            } => {
                let (conn, handles) = (&mut self.conn, &mut self.handles);
                self.router
                    .submit(conn, now, request, Waiter::Channel(reply), watch, handles);
            }
            Cmd::AddAuth {
                scheme,
                credentials,
                reply,
            } => match self.conn.add_auth(now, &scheme, credentials) {
                Ok(id) => self.router.wait(id, Waiter::Channel(reply), None),
                Err(e) => {
                    let _ = reply.send((RequestId(0), Err(e)));
                }
            },
            Cmd::Subscribe(tx) => self.handles.subscribers.push(tx),
            Cmd::UpdateHosts(hosts, tx) => {
                let _ = tx.send(self.conn.update_hosts(now, hosts));
            }
            Cmd::Metrics(tx) => {
                let _ = tx.send(self.conn.session().metrics());
            }
            Cmd::Diagnose(tx, waited) => {
                let _ = tx.send(Error::connect_timeout(waited, self.conn.session()));
            }
            Cmd::Listen(f) => {
                self.handles.listening = true;
                self.handles.callback(CallbackJob::Listen(f));
            }
            Cmd::Close(done) => {
                self.close_waiters.push(done);
                if !self.closing {
                    self.closing = true;
                    self.conn.close(now);
                }
            }
            Cmd::Host(machine) => self.router.host(machine),
            Cmd::Poke => {}
        }
    }

    /// Hands the session's events to the hosted machines first and the rest to the
    /// client's callers, then lets each machine submit and report, until nothing more
    /// happens.
    pub(super) fn deliver(&mut self, now: Instant) {
        self.router.turn(&mut self.conn, now, &mut self.handles);
    }
}

/// Where a session's results go: its callers' channels and parked threads, its state
/// subscribers, and the callback thread.
pub(super) struct Handles {
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
