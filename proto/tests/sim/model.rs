//! A reference model of what an application using a Session sees, computed from the inputs
//! of a [`World`] alone: which calls are accepted and with which ids, which requests are
//! waiting or in flight, every completion and its result, every watch registration, every
//! watch event, every state transition and the application view, and when time makes
//! something happen (read timeout, client-side expiry, the close deadline, queued requests
//! giving up).
//!
//! The model is deliberately simple (lists and a clock) and written from the documented
//! behaviour, not from the Session's code. The Session must agree with it after every step.
//! It covers the steps a well-behaved server and network produce; a step it does not model
//! (garbage bytes, a read-only server) ends the comparison, see [`models`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use zk_proto::ErrorCode;
use zk_proto::consts::{EventType, KeeperState};
use zk_proto::records::{RemoveWatchesRequest, Request, Response};
use zk_proto::session::{AppState, Error, Event, RequestId, SessionState, WatchedEvent};
use zk_proto::watch::WatchKind;

use super::ok_body;
use super::world::{QUEUE_LIMIT, SESSION_TIMEOUT_MS, Step, World, request};

/// The chroot of the world's sessions.
const CHROOT: &str = "/root";

/// Requests waiting for a connection give up after the session timeout.
fn request_timeout() -> Duration {
    Duration::from_millis(SESSION_TIMEOUT_MS)
}

/// A connection that hears nothing for 2/3 of the session timeout is dropped.
fn read_timeout() -> Duration {
    Duration::from_millis(SESSION_TIMEOUT_MS * 2 / 3)
}

/// While a request or ping awaits an answer, a server silent for a fifth of the session
/// timeout (or 600 ms plus four smoothed ping round trips, if longer; never more than the
/// read timeout) is taken for dead.
fn unresponsive_after(srtt: Option<Duration>) -> Duration {
    (Duration::from_millis(SESSION_TIMEOUT_MS) / 5)
        .max(Duration::from_millis(600) + srtt.unwrap_or_default() * 4)
        .min(read_timeout())
}

/// Without a connection, the session is given up 4/3 of the session timeout after the last
/// word from a server.
fn expiry_after() -> Duration {
    Duration::from_millis(SESSION_TIMEOUT_MS * 4 / 3)
}

fn server_path(client: &str) -> String {
    if client == "/" {
        CHROOT.to_string()
    } else {
        format!("{CHROOT}{client}")
    }
}

fn client_path(server: &str) -> String {
    match server.strip_prefix(CHROOT) {
        Some("") => "/".to_string(),
        Some(rest) => rest.to_string(),
        None => panic!("{server} is outside the chroot"),
    }
}

/// Whether the model covers this step. Garbage from the server, read-only servers and host
/// list changes are left to the invariant checks.
pub fn models(step: &Step) -> bool {
    !matches!(
        step,
        Step::Garbage(_) | Step::ConnectOk { read_only: true } | Step::UpdateHosts(_)
    )
}

#[derive(Debug)]
struct Auth {
    good: bool,
    waiter: Option<RequestId>,
}

/// Something time makes happen, in the order the session looks at them when several are due
/// at the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    CloseDeadline,
    Expiry,
    QueuedGivesUp,
    ReadTimeout,
    Unresponsive,
}

/// The world as it stood before a step: what the model needs to replay the step's timeline.
#[derive(Debug, Clone, Copy)]
pub struct Before {
    /// The session had asked for a connection.
    pub want_connect: bool,
    /// A connection was up.
    pub tcp_up: bool,
    /// When the oldest frame the server has not answered arrived.
    pub oldest_unanswered: Option<Instant>,
    /// How many frames the server had received in all.
    pub sends: usize,
}

impl Before {
    pub fn of(w: &World) -> Before {
        Before {
            want_connect: w.want_connect.is_some(),
            tcp_up: w.tcp_up,
            oldest_unanswered: w.unanswered.front().map(|(_, _, t)| *t),
            sends: w.sends.len(),
        }
    }
}

#[derive(Debug)]
pub struct Model {
    now: Instant,
    next_id: u64,
    state: SessionState,
    /// The application view (Kazoo's).
    app: AppState,
    /// A connection carries the session.
    open: bool,
    /// A server granted a session that has not expired since.
    has_session: bool,
    last_recv: Instant,
    last_heard: Option<Instant>,
    /// close() was called on an open connection; the session ends at this instant at the
    /// latest.
    closing: Option<Instant>,
    /// Application requests written to the current connection, as submitted.
    sent: VecDeque<(RequestId, Request)>,
    /// Application requests waiting for a connection, with the instant they give up.
    queued: VecDeque<(RequestId, Request, Instant)>,
    auths: Vec<Auth>,
    /// Auth packets on the current connection, oldest first (indices into `auths`).
    auth_in_flight: VecDeque<usize>,
    /// Registrations: the registering request, the server's path, the kind.
    watches: Vec<(RequestId, String, WatchKind)>,
    /// Every id handed out, in order.
    issued: Vec<RequestId>,
    /// The smoothed ping round trip, once measured.
    srtt: Option<Duration>,
    /// When the first ping since the last ping answer went out on this connection.
    ping_sent: Option<Instant>,
    /// Since when an answer has been awaited, during a step in which time passes.
    waiting_since: Option<Instant>,

    // What the last step must have produced.
    completions: Vec<(RequestId, Result<Response, Error>)>,
    watch_events: Vec<WatchedEvent>,
    states: Vec<SessionState>,
    apps: Vec<AppState>,
}

impl Model {
    pub fn new(w: &World) -> Model {
        Model {
            now: w.now,
            next_id: 1,
            state: SessionState::Connecting,
            app: AppState::Lost,
            open: false,
            has_session: false,
            last_recv: w.now,
            last_heard: None,
            closing: None,
            sent: VecDeque::new(),
            queued: VecDeque::new(),
            auths: Vec::new(),
            auth_in_flight: VecDeque::new(),
            watches: Vec::new(),
            issued: Vec::new(),
            srtt: None,
            ping_sent: None,
            waiting_since: None,
            completions: Vec::new(),
            watch_events: Vec::new(),
            states: Vec::new(),
            apps: Vec::new(),
        }
    }

    fn over(&self) -> bool {
        matches!(self.state, SessionState::Closed | SessionState::AuthFailed)
    }

    /// Calls are accepted until close() or the end of the session.
    fn accepts(&self) -> bool {
        !self.over() && self.closing.is_none()
    }

    fn new_id(&mut self) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        id
    }

    fn complete(&mut self, id: RequestId, result: Result<Response, Error>) {
        self.completions.push((id, result));
    }

    fn set_state(&mut self, state: SessionState) {
        if self.state == state {
            return;
        }
        self.state = state;
        self.states.push(state);
        // Connected while connected; suspended while looking for a server after a
        // connection carried the session; lost once the session is gone, until connected.
        let app = match state {
            SessionState::Connected | SessionState::ConnectedReadOnly => AppState::Connected,
            SessionState::Connecting if self.app == AppState::Lost => AppState::Lost,
            SessionState::Connecting => AppState::Suspended,
            _ => AppState::Lost,
        };
        if app != self.app {
            self.app = app;
            self.apps.push(app);
        }
    }

    fn heard(&mut self) {
        if self.open {
            self.last_recv = self.now;
            self.last_heard = Some(self.now);
        }
    }

    // ----- calls -----

    fn submit(&mut self, req: Request) {
        if !self.accepts() {
            return;
        }
        // The id is taken before the queue is found full.
        let id = self.new_id();
        if self.open {
            self.sent.push_back((id, req));
        } else if self.queued.len() < QUEUE_LIMIT {
            self.queued
                .push_back((id, req, self.now + request_timeout()));
        } else {
            return;
        }
        self.issued.push(id);
    }

    fn add_auth(&mut self, good: bool) {
        if !self.accepts() {
            return;
        }
        let id = self.new_id();
        self.issued.push(id);
        self.auths.push(Auth {
            good,
            waiter: Some(id),
        });
        if self.open {
            self.auth_in_flight.push_back(self.auths.len() - 1);
        }
    }

    fn release(&mut self, k: u8, forget: bool) {
        let mut ids: Vec<RequestId> = self.watches.iter().map(|w| w.0).collect();
        if ids.is_empty() {
            return;
        }
        ids.sort();
        let id = ids[k as usize % ids.len()];
        let at = self.watches.iter().position(|w| w.0 == id).unwrap();
        let (_, path, _) = self.watches.remove(at);
        // Releasing the last registration on a node asks the server to drop its watches
        // there.
        if forget || self.watches.iter().any(|w| w.1 == path) || !self.accepts() {
            return;
        }
        self.submit(Request::RemoveWatches(RemoveWatchesRequest {
            path: client_path(&path),
            kind: 3, // Any
        }));
    }

    fn close(&mut self) {
        if self.closing.is_some() || self.over() {
            return;
        }
        while let Some((id, _, _)) = self.queued.pop_front() {
            self.complete(id, Err(Error::Closed));
        }
        if self.open {
            self.closing = Some(self.now + read_timeout());
        } else {
            self.finish_close();
        }
    }

    // ----- the server and the network -----

    fn connected(&mut self) {
        self.open = true;
        self.ping_sent = None;
        self.has_session = true;
        self.last_recv = self.now;
        self.last_heard = Some(self.now);
        self.set_state(SessionState::Connected);
        // Credentials go again, then whatever waited.
        self.auth_in_flight = (0..self.auths.len()).collect();
        while let Some((id, req, _)) = self.queued.pop_front() {
            self.sent.push_back((id, req));
        }
    }

    fn fail_sent(&mut self, error: Error) {
        self.auth_in_flight.clear();
        while let Some((id, _)) = self.sent.pop_front() {
            self.complete(id, Err(error.clone()));
        }
    }

    fn lose_connection(&mut self) {
        let was_open = self.open;
        self.open = false;
        self.ping_sent = None;
        self.fail_sent(Error::ConnectionLoss);
        if self.closing.is_some() {
            self.finish_close();
        } else if was_open {
            self.set_state(SessionState::Connecting);
        }
    }

    /// The final state: waiting requests and credentials fail, every watch gets a last event.
    fn end_session(&mut self, state: SessionState, error: Error, keeper: KeeperState) {
        while let Some((id, _, _)) = self.queued.pop_front() {
            self.complete(id, Err(error.clone()));
        }
        let waiters: Vec<RequestId> = self
            .auths
            .iter_mut()
            .filter_map(|a| a.waiter.take())
            .collect();
        for id in waiters {
            self.complete(id, Err(error.clone()));
        }
        for (id, path, _) in std::mem::take(&mut self.watches) {
            self.watch_events.push(WatchedEvent {
                watch: id,
                kind: EventType::None,
                state: keeper,
                path: client_path(&path),
            });
        }
        self.set_state(state);
    }

    fn finish_close(&mut self) {
        self.closing = None;
        self.open = false;
        self.ping_sent = None;
        self.fail_sent(Error::Closed);
        self.end_session(SessionState::Closed, Error::Closed, KeeperState::Closed);
    }

    fn expire(&mut self) {
        self.open = false;
        self.ping_sent = None;
        self.closing = None;
        self.fail_sent(Error::SessionExpired);
        self.end_session(
            SessionState::Expired,
            Error::SessionExpired,
            KeeperState::Expired,
        );
        // The world's sessions renew: a new session, the same credentials.
        self.has_session = false;
        self.last_heard = None;
        self.set_state(SessionState::Connecting);
    }

    fn auth_failed(&mut self) {
        self.open = false;
        self.ping_sent = None;
        self.closing = None;
        self.fail_sent(Error::AuthFailed);
        while let Some((id, _, _)) = self.queued.pop_front() {
            self.complete(id, Err(Error::AuthFailed));
        }
        for a in std::mem::take(&mut self.auths) {
            if let Some(id) = a.waiter {
                self.complete(id, Err(Error::AuthFailed));
            }
        }
        self.end_session(
            SessionState::AuthFailed,
            Error::AuthFailed,
            KeeperState::AuthFailed,
        );
    }

    fn register(&mut self, id: RequestId, req: &Request, no_node: bool) {
        let (path, kind) = match req {
            Request::GetData(r) if r.watch && !no_node => (&r.path, WatchKind::Data),
            Request::Exists(r) if r.watch && no_node => (&r.path, WatchKind::Exist),
            Request::Exists(r) if r.watch => (&r.path, WatchKind::Data),
            Request::GetChildren(r) if r.watch && !no_node => (&r.path, WatchKind::Child),
            Request::AddWatch(r) if !no_node && r.mode == 1 => {
                (&r.path, WatchKind::PersistentRecursive)
            }
            Request::AddWatch(r) if !no_node => (&r.path, WatchKind::Persistent),
            _ => return,
        };
        self.watches.push((id, server_path(path), kind));
    }

    /// A successful removeWatches of type Any: every registration on the node goes, each with
    /// its removal event.
    fn remove_watches(&mut self, client: &str) {
        let path = server_path(client);
        let mut removed = Vec::new();
        self.watches.retain(|(id, p, kind)| {
            if *p != path {
                return true;
            }
            let event = match kind {
                WatchKind::Data | WatchKind::Exist => EventType::DataWatchRemoved,
                WatchKind::Child => EventType::ChildWatchRemoved,
                WatchKind::Persistent | WatchKind::PersistentRecursive => {
                    EventType::PersistentWatchRemoved
                }
            };
            removed.push(WatchedEvent {
                watch: *id,
                kind: event,
                state: KeeperState::SyncConnected,
                path: client.to_string(),
            });
            false
        });
        self.watch_events.extend(removed);
    }

    fn answered(&mut self, wire: &Request, err: i32) -> Result<(), String> {
        match wire {
            Request::Ping => {
                // The first ping since the last answer measures the round trip.
                if let Some(at) = self.ping_sent.take() {
                    let sample = self.now.saturating_duration_since(at);
                    self.srtt = Some(match self.srtt {
                        Some(s) => (s * 7 + sample) / 8,
                        None => sample,
                    });
                }
            }
            Request::SetWatches(_) | Request::SetWatches2(_) => {}
            Request::Auth(a) => {
                let index = self
                    .auth_in_flight
                    .pop_front()
                    .ok_or("an answer to credentials the model did not send")?;
                let good = &a.auth[..] != b"bad";
                if self.auths[index].good != good {
                    return Err(format!("credentials sent out of order: {a:?}"));
                }
                let waiter = self.auths[index].waiter.take();
                if err == ErrorCode::AuthFailed.as_i32() {
                    if let Some(id) = waiter {
                        self.complete(id, Err(Error::AuthFailed));
                    }
                    self.auth_failed();
                } else if let Some(id) = waiter {
                    let result = match err {
                        0 => Ok(Response::Empty),
                        e => Err(Error::Server(ErrorCode::from_i32(e))),
                    };
                    self.complete(id, result);
                }
            }
            Request::CloseSession => self.finish_close(),
            _ => {
                let (id, mine) = self
                    .sent
                    .pop_front()
                    .ok_or_else(|| format!("the server answered {wire:?}, never sent"))?;
                let path = mine.path().map(server_path);
                if wire.opcode() != mine.opcode() || wire.path() != path.as_deref() {
                    return Err(format!("sent {wire:?} where {mine:?} was next"));
                }
                if err == 0 {
                    self.register(id, &mine, false);
                    if let Request::RemoveWatches(r) = &mine {
                        self.remove_watches(&r.path);
                    }
                    // Paths in results are the application's again.
                    self.complete(id, Ok(ok_body(&mine)));
                } else {
                    let code = ErrorCode::from_i32(err);
                    if code == ErrorCode::NoNode {
                        self.register(id, &mine, true);
                    }
                    if let (Request::RemoveWatches(r), ErrorCode::NoWatcher) = (&mine, code) {
                        self.remove_watches(&r.path);
                    }
                    self.complete(id, Err(Error::Server(code)));
                }
            }
        }
        Ok(())
    }

    /// A node event on `path` (the server's): one-shot registrations it reaches fire and go,
    /// persistent ones fire and stay.
    fn notified(&mut self, kind: EventType, path: &str) {
        use EventType::*;
        let client = client_path(path);
        let mut fired = Vec::new();
        self.watches.retain(|(id, p, k)| {
            let here = p == path;
            let below = here || p == "/" || path.starts_with(&format!("{p}/"));
            let node_event = matches!(kind, NodeCreated | NodeDeleted | NodeDataChanged);
            let (hears, one_shot) = match k {
                WatchKind::Data | WatchKind::Exist => (here && node_event, true),
                WatchKind::Child => (
                    here && matches!(kind, NodeChildrenChanged | NodeDeleted),
                    true,
                ),
                WatchKind::Persistent => {
                    (here && (node_event || kind == NodeChildrenChanged), false)
                }
                // Recursive watches hear node events below them, never child-list changes.
                WatchKind::PersistentRecursive => (below && node_event, false),
            };
            if hears {
                fired.push(WatchedEvent {
                    watch: *id,
                    kind,
                    state: KeeperState::SyncConnected,
                    path: client.clone(),
                });
            }
            !(hears && one_shot)
        });
        self.watch_events.extend(fired);
    }

    // ----- time -----

    fn next_due(&self) -> Option<(Instant, Due)> {
        let mut due = Vec::new();
        if let Some(t) = self.closing {
            due.push((t, Due::CloseDeadline));
        }
        if !self.open
            && self.has_session
            && !self.over()
            && let Some(h) = self.last_heard
        {
            due.push((h + expiry_after(), Due::Expiry));
        }
        if let Some((_, _, t)) = self.queued.front() {
            due.push((*t, Due::QueuedGivesUp));
        }
        if self.open {
            due.push((self.last_recv + read_timeout(), Due::ReadTimeout));
            if let Some(w) = self.waiting_since {
                due.push((
                    self.last_recv.max(w) + unresponsive_after(self.srtt),
                    Due::Unresponsive,
                ));
            }
        }
        due.into_iter().min()
    }

    fn advance(&mut self, to: Instant) {
        while let Some((t, due)) = self.next_due() {
            if t > to {
                break;
            }
            self.now = self.now.max(t);
            match due {
                Due::CloseDeadline => self.finish_close(),
                Due::Expiry => self.expire(),
                Due::QueuedGivesUp => {
                    let (id, _, _) = self.queued.pop_front().unwrap();
                    self.complete(id, Err(Error::Timeout(request_timeout())));
                }
                Due::ReadTimeout | Due::Unresponsive => self.lose_connection(),
            }
        }
        self.now = to;
    }

    // ----- steps -----

    /// Applies a step the world just ran. `want_connect` and `tcp_up` are the driver's view
    /// before the step: whether the session had asked for a connection, whether one was up.
    pub fn apply(&mut self, step: &Step, before: Before, w: &World) -> Result<(), String> {
        assert!(models(step));
        let (want_connect, tcp_up) = (before.want_connect, before.tcp_up);
        // Pings the session sent during the step: the first since the last answer is the
        // one the next ping answer measures. (Only time passing sends them, and nothing is
        // answered meanwhile.)
        let new_sends = &w.sends[before.sends..];
        if self.open
            && let Some((t, _)) = new_sends.iter().find(|(_, ping)| *ping)
        {
            self.ping_sent.get_or_insert(*t);
        }
        // Nothing is answered while time passes, so what is awaited then is the oldest
        // frame already unanswered, else the first one sent during the step.
        self.waiting_since = before
            .oldest_unanswered
            .or_else(|| new_sends.first().map(|(t, _)| *t));
        self.completions.clear();
        self.watch_events.clear();
        self.states.clear();
        self.apps.clear();
        match step {
            Step::Submit(kind, watch) => self.submit(request(*kind, *watch)),
            Step::AddAuth(good) => self.add_auth(*good),
            Step::Answer { .. } => {
                if !w.answered.is_empty() {
                    self.heard();
                }
                for (req, err, _) in &w.answered {
                    self.answered(req, *err)?;
                }
            }
            Step::Notify(_) => {
                if !w.notified.is_empty() {
                    self.heard();
                }
                for (kind, path) in &w.notified {
                    self.notified(*kind, path);
                }
            }
            Step::ConnectOk { .. } if want_connect => self.connected(),
            Step::ConnectExpired if want_connect => self.expire(),
            Step::ConnectOk { .. } | Step::ConnectExpired | Step::ConnectFail => {}
            Step::Drop if tcp_up => {
                if !self.open {
                    return Err("a connection was up that carried no session".into());
                }
                self.lose_connection();
            }
            Step::Drop => {}
            Step::Advance(ms) => self.advance(self.now + Duration::from_millis(*ms as u64)),
            Step::Close => self.close(),
            Step::Release(k, forget) => self.release(*k, *forget),
            Step::Garbage(_) | Step::UpdateHosts(_) => unreachable!(),
        }
        Ok(())
    }

    /// Compares the session with the model after a step.
    pub fn check(&self, w: &World) -> Result<(), String> {
        if w.now != self.now {
            return Err("the clocks differ".into());
        }
        if w.issued != self.issued {
            return Err(format!(
                "ids handed out: session {:?}, model {:?}",
                w.issued, self.issued
            ));
        }
        let mut completions: Vec<_> = w
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Complete { id, result, .. } => Some((*id, result.clone())),
                _ => None,
            })
            .collect();
        completions.sort_by_key(|c| c.0);
        let mut expected = self.completions.clone();
        expected.sort_by_key(|c| c.0);
        if completions != expected {
            return Err(format!(
                "completions: session {completions:?}, model {expected:?}"
            ));
        }
        let key = |e: &WatchedEvent| (e.watch, e.kind.as_i32(), e.path.clone());
        let mut watched: Vec<WatchedEvent> = w
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Watch(we) => Some(we.clone()),
                _ => None,
            })
            .collect();
        watched.sort_by_key(key);
        let mut expected = self.watch_events.clone();
        expected.sort_by_key(key);
        if watched != expected {
            return Err(format!(
                "watch events: session {watched:?}, model {expected:?}"
            ));
        }
        let states: Vec<SessionState> = w
            .events
            .iter()
            .filter_map(|e| match e {
                Event::State { state, .. } => Some(*state),
                _ => None,
            })
            .collect();
        if states != self.states || w.s.state() != self.state {
            return Err(format!(
                "states: session {states:?} ending {:?}, model {:?} ending {:?}",
                w.s.state(),
                self.states,
                self.state
            ));
        }
        let apps: Vec<AppState> = w
            .events
            .iter()
            .filter_map(|e| match e {
                Event::App(app) => Some(*app),
                _ => None,
            })
            .collect();
        if apps != self.apps || w.s.app_state() != self.app {
            return Err(format!(
                "application view: session {apps:?} ending {:?}, model {:?} ending {:?}",
                w.s.app_state(),
                self.apps,
                self.app
            ));
        }
        if w.s.in_flight() != self.sent.len() || w.s.queued() != self.queued.len() {
            return Err(format!(
                "session: {} in flight, {} queued; model: {:?} in flight, {:?} queued",
                w.s.in_flight(),
                w.s.queued(),
                self.sent,
                self.queued
            ));
        }
        let registry = w.s.watches();
        let same = registry.len() == self.watches.len()
            && self
                .watches
                .iter()
                .all(|(id, p, k)| registry.get(*id) == Some((p.as_str(), *k)));
        if !same {
            let session: Vec<_> = w
                .registered()
                .into_iter()
                .map(|id| (id, registry.get(id)))
                .collect();
            return Err(format!(
                "watches: session {session:?}, model {:?}",
                self.watches
            ));
        }
        Ok(())
    }
}

/// Runs `steps` on a fresh world, comparing it with the model after every step up to the
/// first step the model does not cover; the world's own invariants hold throughout.
pub fn run_checked(seed: u64, steps: &[Step]) -> Result<World, String> {
    let mut w = World::new(seed);
    let mut model = Some(Model::new(&w));
    for (i, step) in steps.iter().enumerate() {
        if !models(step) {
            model = None;
        }
        let before = Before::of(&w);
        w.run(step);
        if let Some(m) = model.as_mut() {
            m.apply(step, before, &w)
                .and_then(|()| m.check(&w))
                .map_err(|e| format!("step {i}, {step:?}: {e}"))?;
        }
    }
    Ok(w)
}
