//! The driver core: what every driver does with a session's events, written once.
//!
//! A driver owns the socket, the clock and its calling convention (a future, a parked
//! thread, a callback). Everything between the session and the caller is here: the reply
//! waiters, the watch sinks and their release, the recipe machines hosted beside the
//! session ([`Hosted`]), the routing of each event in the order the socket delivered it,
//! and slow-request accounting. The driver hands results out through [`Deliver`], the
//! only part it writes.
//!
//! ```
//! use std::time::Instant;
//! use zk_client::driver::{Deliver, Router};
//! use zk_proto::session::{Event, RequestId, Session, WatchedEvent};
//!
//! /// A driver that collects what it is handed.
//! #[derive(Default)]
//! struct Collect(Vec<String>);
//!
//! impl Deliver for Collect {
//!     type Reply = &'static str;
//!     type Watch = ();
//!     fn reply(&mut self, to: &'static str, _: RequestId, result: zk_client::Reply) -> bool {
//!         self.0.push(format!("{to}: {}", result.is_ok()));
//!         true
//!     }
//!     fn watch_event(&mut self, _: &mut (), _: WatchedEvent, _: bool) -> bool {
//!         true
//!     }
//!     fn state(&mut self, _: Event, _: &Session) {}
//! }
//!
//! let now = Instant::now();
//! let mut session = Session::new(zk_proto::session::Config::new("127.0.0.1:2181")?, now);
//! let mut router = Router::<Collect>::default();
//! let mut out = Collect::default();
//! // Closed before it connected: the request is refused at once, and told.
//! session.close(now);
//! router.submit(&mut session, now, zk_client::op::sync("/").into_parts().0, "sync", None, &mut out);
//! router.turn(&mut session, now, &mut out);
//! assert_eq!(out.0, ["sync: false"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use zk_proto::consts::OpCode;
use zk_proto::records::Request;
use zk_proto::session::{Error as SessionError, Event, RequestId, Session, WatchedEvent};

use crate::Reply;

/// How a host submits a hosted machine's request on its session.
pub type Submit<'a> = dyn FnMut(Request) -> Result<RequestId, SessionError> + 'a;

/// A recipe machine as a driver hosts it, whatever its type (`zk_recipes::host::Host`).
pub trait Hosted: Send {
    /// Offers a session event; the event comes back when it is not the machine's alone.
    fn handle_event(&mut self, now: Instant, event: Event, session_id: i64) -> Option<Event>;
    /// Time passed.
    fn handle_timeout(&mut self, now: Instant);
    /// When the machine next has work.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Takes the handle's steps, submits what the machine asks for and reports its
    /// outcomes. False once the machine can be forgotten: its handle is gone and nothing of
    /// it is left on the server.
    fn step(&mut self, now: Instant, submit: &mut Submit<'_>) -> bool;
    /// The watches the machine's requests left that are still set: when the machine is
    /// forgotten, nobody can hear them any more, and the host releases them.
    fn take_watches(&mut self) -> Vec<RequestId>;
}

/// Every machine a session hosts, in the order they came.
#[derive(Default)]
pub struct Machines {
    hosted: Vec<Box<dyn Hosted>>,
}

impl std::fmt::Debug for Machines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machines")
            .field("hosted", &self.hosted.len())
            .finish()
    }
}

impl Machines {
    /// Hosts one more machine.
    pub fn add(&mut self, machine: Box<dyn Hosted>) {
        self.hosted.push(machine);
    }

    /// No machine is hosted.
    pub fn is_empty(&self) -> bool {
        self.hosted.is_empty()
    }

    /// Lets every machine go (the session is over): each report hears `None`.
    pub fn clear(&mut self) {
        self.hosted.clear();
    }

    /// Offers a session event to each machine in turn; what none took comes back, for the
    /// driver's own callers (state changes always come back).
    pub fn offer(&mut self, now: Instant, event: Event, session_id: i64) -> Option<Event> {
        let mut event = Some(event);
        for h in &mut self.hosted {
            event = event.and_then(|e| h.handle_event(now, e, session_id));
        }
        event
    }

    /// Time passed for every machine.
    pub fn handle_timeout(&mut self, now: Instant) {
        for h in &mut self.hosted {
            h.handle_timeout(now);
        }
    }

    /// The earliest deadline of any machine.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.hosted.iter().filter_map(|h| h.poll_timeout()).min()
    }

    /// Lets every machine take its steps, submit and report; forgets the ones that are
    /// done, and `release`s the watches they leave.
    pub fn step(
        &mut self,
        now: Instant,
        submit: &mut Submit<'_>,
        release: &mut dyn FnMut(RequestId),
    ) {
        self.hosted.retain_mut(|h| {
            let keep = h.step(now, submit);
            if !keep {
                h.take_watches().into_iter().for_each(&mut *release);
            }
            keep
        });
    }
}

/// The session as the core uses it: a bare [`Session`], or a driver's connection around
/// one that also moves bytes when asked to submit.
pub trait Link {
    /// The session.
    fn session(&self) -> &Session;
    /// The next event of the session.
    fn poll_event(&mut self) -> Option<Event>;
    /// Submits a request.
    fn submit(&mut self, now: Instant, request: Request) -> Result<RequestId, SessionError>;
    /// Lets watch `id` go (on the server too, when it was the last on its path).
    fn release_watch(&mut self, now: Instant, id: RequestId);
}

impl Link for Session {
    fn session(&self) -> &Session {
        self
    }
    fn poll_event(&mut self) -> Option<Event> {
        Session::poll_event(self)
    }
    fn submit(&mut self, now: Instant, request: Request) -> Result<RequestId, SessionError> {
        Session::submit(self, now, request)
    }
    fn release_watch(&mut self, now: Instant, id: RequestId) {
        Session::release_watch(self, now, id);
    }
}

/// How a driver hands results to its callers, in its calling convention.
pub trait Deliver {
    /// Where a request's outcome goes: a one-shot channel, a parked thread.
    type Reply;
    /// Where a watch's events go: a channel, a callback.
    type Watch;

    /// A request's outcome (`RequestId(0)` for one the session refused at once); false
    /// when its caller is gone (a call that timed out or was dropped).
    fn reply(&mut self, to: Self::Reply, id: RequestId, result: Reply) -> bool;

    /// The server set the watch request `id` asked for: where its events go from now on
    /// (a driver may move a callback elsewhere). The sink itself by default.
    fn watch_set(&mut self, id: RequestId, sink: Self::Watch) -> Self::Watch {
        let _ = id;
        sink
    }

    /// One event of a watch (`last`: the watch ends with it); false when nobody listens
    /// any more, and the watch is forgotten.
    fn watch_event(&mut self, sink: &mut Self::Watch, event: WatchedEvent, last: bool) -> bool;

    /// A change of state ([`Event::State`] or [`Event::App`]), for whoever listens.
    fn state(&mut self, event: Event, session: &Session);
}

/// The waiters, watch sinks and hosted machines of one session, and the routing of its
/// events between them.
pub struct Router<D: Deliver> {
    waiters: HashMap<RequestId, (D::Reply, Option<D::Watch>)>,
    watchers: HashMap<RequestId, (D::Watch, bool)>,
    hosted: Machines,
    slow_told: u64,
}

impl<D: Deliver> Default for Router<D> {
    fn default() -> Self {
        Router {
            waiters: HashMap::new(),
            watchers: HashMap::new(),
            hosted: Machines::default(),
            slow_told: 0,
        }
    }
}

impl<D: Deliver> std::fmt::Debug for Router<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("waiters", &self.waiters.len())
            .field("watchers", &self.watchers.len())
            .field("hosted", &self.hosted)
            .finish()
    }
}

impl<D: Deliver> Router<D> {
    /// Submits `request` for a caller: its outcome goes to `reply`, its watch's events (if
    /// it leaves one) to `watch`. A request the session refuses is answered at once.
    pub fn submit<L: Link>(
        &mut self,
        link: &mut L,
        now: Instant,
        request: Request,
        reply: D::Reply,
        watch: Option<D::Watch>,
        out: &mut D,
    ) -> Option<RequestId> {
        match link.submit(now, request) {
            Ok(id) => {
                self.wait(id, reply, watch);
                Some(id)
            }
            Err(e) => {
                out.reply(reply, RequestId(0), Err(e));
                None
            }
        }
    }

    /// Files a caller for request `id`, submitted by other means (a login, a caller that
    /// wrote its own request).
    pub fn wait(&mut self, id: RequestId, reply: D::Reply, watch: Option<D::Watch>) {
        self.waiters.insert(id, (reply, watch));
    }

    /// Whether a caller still waits for request `id`.
    pub fn waits_for(&self, id: RequestId) -> bool {
        self.waiters.contains_key(&id)
    }

    /// Stops waiting for request `id` (its caller gave up); its reply, should it come, is
    /// dropped.
    pub fn abandon(&mut self, id: RequestId) -> Option<D::Reply> {
        self.waiters.remove(&id).map(|(reply, _)| reply)
    }

    /// Forgets watch `id`'s sink (its holder let it go); the driver then asks the session
    /// to release the watch on the server. The sink comes back, if there was one.
    pub fn release(&mut self, id: RequestId) -> Option<D::Watch> {
        self.watchers.remove(&id).map(|(sink, _)| sink)
    }

    /// Hosts a recipe machine beside the session.
    pub fn host(&mut self, machine: Box<dyn Hosted>) {
        self.hosted.add(machine);
    }

    /// No machine is hosted.
    pub fn hosts_nothing(&self) -> bool {
        self.hosted.is_empty()
    }

    /// No caller waits and no watch has a sink: nothing the server sends unasked has
    /// anywhere to go.
    pub fn is_quiet(&self) -> bool {
        self.waiters.is_empty() && self.watchers.is_empty()
    }

    /// When a hosted machine next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.hosted.poll_timeout()
    }

    /// Time passed for the hosted machines.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.hosted.handle_timeout(now);
    }

    /// Hands every event the session has to the hosted machines first, in order, and the
    /// rest to the callers through `out`; then lets the machines submit, and again, until
    /// nothing more happens. True when anything happened.
    pub fn turn<L: Link>(&mut self, link: &mut L, now: Instant, out: &mut D) -> bool {
        let mut any = false;
        loop {
            let session_id = link.session().session_id();
            let mut more = false;
            while let Some(event) = link.poll_event() {
                more = true;
                if let Some(event) = self.hosted.offer(now, event, session_id) {
                    self.dispatch(now, event, link, out);
                }
            }
            let mut released = Vec::new();
            self.hosted
                .step(now, &mut |request| link.submit(now, request), &mut |id| {
                    released.push(id)
                });
            for id in released {
                link.release_watch(now, id);
            }
            if !more {
                return any;
            }
            any = true;
        }
    }

    fn dispatch<L: Link>(&mut self, now: Instant, event: Event, link: &mut L, out: &mut D) {
        match event {
            Event::Complete { id, result, watch } => match self.waiters.remove(&id) {
                Some((reply, sink)) => {
                    let heard = out.reply(reply, id, result);
                    match (sink, watch) {
                        (Some(sink), Some(kind)) if heard => {
                            let sink = out.watch_set(id, sink);
                            self.watchers.insert(id, (sink, kind.is_one_shot()));
                        }
                        // The caller gave up before the reply (a call that timed out or
                        // was dropped): nobody will hear the watch it set, or release it.
                        (_, Some(_)) => link.release_watch(now, id),
                        _ => {}
                    }
                }
                None if watch.is_some() => link.release_watch(now, id),
                None => {}
            },
            Event::Watch(ev) => {
                let id = ev.watch;
                let Some((sink, one_shot)) = self.watchers.get_mut(&id) else {
                    return;
                };
                let last = *one_shot || ev.is_final();
                let heard = out.watch_event(sink, ev, last);
                if heard && !last {
                    return;
                }
                self.watchers.remove(&id);
                if !heard && !last {
                    // Its listener is gone without releasing it: release it for them.
                    link.release_watch(now, id);
                }
            }
            state @ (Event::State { .. } | Event::App(_)) => out.state(state, link.session()),
        }
    }

    /// Lets everything go (the session is over): each waiting caller's reply comes back
    /// for the driver to wake, and every hosted machine's report hears `None`.
    pub fn end(&mut self) -> impl Iterator<Item = D::Reply> + '_ {
        self.watchers.clear();
        self.hosted.clear();
        self.waiters.drain().map(|(_, (reply, _))| reply)
    }

    /// The newest slow request (its operation and round trip) and how many there were so
    /// far, once per new one.
    pub fn slow(&mut self, session: &Session) -> Option<(u64, OpCode, Duration)> {
        match session.slow_requests() {
            (count, Some((op, latency))) if count > self.slow_told => {
                self.slow_told = count;
                Some((count, op, latency))
            }
            _ => None,
        }
    }
}

/// The session as a client's handles see it, published by the driver after every turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The session state.
    pub state: zk_proto::session::SessionState,
    /// The application view (Connected / Suspended / Lost).
    pub app: zk_proto::session::AppState,
    /// The session id (0 before the first connection).
    pub session_id: i64,
    /// The index into `hosts` of the server carrying the session, while connected.
    pub server: Option<usize>,
    /// The negotiated session timeout, once connected.
    pub timeout: Option<Duration>,
    /// The session's host list, replaced only when its version changes.
    pub hosts: std::sync::Arc<[zk_proto::session::HostAddr]>,
    /// The version of `hosts`.
    pub hosts_version: u64,
}

impl Snapshot {
    /// `session` now, sharing `previous`'s host list when it did not change.
    pub fn of(session: &Session, previous: Option<&Snapshot>) -> Snapshot {
        let hosts = match previous {
            Some(p) if p.hosts_version == session.hosts_version() => p.hosts.clone(),
            _ => session.hosts().to_vec().into(),
        };
        Snapshot {
            state: session.state(),
            app: session.app_state(),
            session_id: session.session_id(),
            server: session
                .current_host()
                .filter(|_| session.state().is_connected()),
            timeout: session.negotiated_timeout(),
            hosts,
            hosts_version: session.hosts_version(),
        }
    }

    /// A session that is over, for a handle whose driver is gone.
    pub fn closed() -> Snapshot {
        Snapshot {
            state: zk_proto::session::SessionState::Closed,
            app: zk_proto::session::AppState::Lost,
            session_id: 0,
            server: None,
            timeout: None,
            hosts: std::sync::Arc::new([]),
            hosts_version: 0,
        }
    }

    /// The server carrying the session now, as written in the connect string.
    pub fn server_addr(&self) -> Option<zk_proto::session::HostAddr> {
        self.hosts.get(self.server?).cloned()
    }
}

/// Writes a client's accessors of the session's [`Snapshot`]: the driver's client type
/// has `fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T`.
#[doc(hidden)]
#[macro_export]
macro_rules! snapshot_accessors {
    () => {
        /// The session state now.
        pub fn state(&self) -> $crate::__proto::session::SessionState {
            self.read(|s| s.state)
        }

        /// The application view now (Connected / Suspended / Lost).
        pub fn app_state(&self) -> $crate::__proto::session::AppState {
            self.read(|s| s.app)
        }

        /// The session id (0 before the first connection).
        pub fn session_id(&self) -> i64 {
            self.read(|s| s.session_id)
        }

        /// The server the session is connected to now, as written in the connect string.
        pub fn server(&self) -> Option<$crate::__proto::session::HostAddr> {
            self.read(|s| s.server_addr())
        }

        /// The servers the session may use now: the connect string's, shuffled, or the
        /// list a reconfiguration or `update_hosts` left.
        pub fn hosts(&self) -> Vec<$crate::__proto::session::HostAddr> {
            self.read(|s| s.hosts.to_vec())
        }

        /// The negotiated session timeout, once connected.
        pub fn session_timeout(&self) -> Option<std::time::Duration> {
            self.read(|s| s.timeout)
        }
    };
}
