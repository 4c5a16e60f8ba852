//! A blocking client: every operation is a blocking call with a timeout.
//!
//! One IO thread (a `mio::Poll`) carries the [`Connection`] of every blocking client of the
//! process, and one more thread runs the watch callbacks and state listeners of all of them,
//! in order; both start with the first client and stay for the life of the process. A slow
//! callback never holds up a connection (pings, reconnects and replies go on), but it does
//! delay the callbacks after it, of every client: callbacks must not block.
//!
//! On Linux, a call on a connected session does its own IO: the calling thread writes its
//! request and, unless another thread of the same client is already doing so, waits on the
//! session's socket and reads until its reply is in, handling whatever else arrives (other
//! threads' replies, watch events, pings) and any timer that falls due, as the IO thread
//! would. The IO thread is not woken for such a call, so a call costs about what a bare
//! blocking socket costs. The IO thread keeps everything else: connecting, handshakes,
//! reconnects, probes, pings of idle sessions, watch events between calls, and calls made
//! while the session is not connected.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Poll, Token, Waker};
use tracing::{debug, info, warn};
use zk_client::plan::{CreateAll, DeleteAll, Plan};
use zk_client::{ClientOptions, Error, MultiBuilder, Op, Result, op, reply};
use zk_proto::consts::{AddWatchMode, EventType};
use zk_proto::records::*;
use zk_proto::retry::RetryPolicy;
use zk_proto::session::{
    self, Event, RequestId, SessionMetrics, SessionState, StateEvent, WatchedEvent,
};
use zk_proto::{ErrorCode, Stat};

use crate::Connection;
use zk_client::driver::{Deliver, Hosted, Router, Snapshot};

/// The IO thread's waker; every other token is a session's key.
const WAKE: Token = Token(usize::MAX);

type Reply = std::result::Result<Response, session::Error>;
/// Where the outcome of a request the IO thread submitted goes.
pub(crate) type ReplyTo = Sender<(RequestId, Reply)>;

/// Who waits for a request's outcome.
enum Waiter {
    /// A channel: the request went through the IO thread.
    Channel(ReplyTo),
    /// A caller that submitted it itself and parks until the outcome is in
    /// [`SessionLoop::arrived`] (Linux only).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Parked(thread::Thread),
}

/// A persistent-watch callback.
pub(crate) type Callback = Box<dyn FnMut(WatchedEvent) + Send>;

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

/// A session state listener.
pub(crate) type Listener = Box<dyn FnMut(StateEvent) + Send>;

/// Jobs for the callback thread, each for the session of a key.
enum CallbackJob {
    Register(RequestId, Callback),
    Event(WatchedEvent, bool),
    Forget(RequestId),
    Listen(Listener),
    State(StateEvent),
    /// Runs a recipe's callback (a watch's value), in turn with the others.
    Run(Box<dyn FnOnce() + Send>),
    /// The session is over: drop its callbacks and listeners.
    End,
}

/// A session's loop state, shared by the IO thread and the client's callers.
type Cell = Mutex<SessionLoop>;

/// Locks a session; a panic that poisoned the lock left the state usable (every change
/// to it is a whole step of the session).
fn lock(cell: &Cell) -> std::sync::MutexGuard<'_, SessionLoop> {
    cell.lock().unwrap_or_else(|e| e.into_inner())
}

/// A client's link to its session on the IO thread.
struct Shared {
    key: usize,
    reactor: &'static Reactor,
    /// The session itself: a caller submits and reads its own reply through it while the
    /// link is healthy (see [`Client::submit`]; Linux only).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    cell: Arc<Cell>,
    snapshot: Arc<Mutex<Snapshot>>,
    /// How long dropping the last handle waits for the session to close.
    close_wait: Duration,
}

impl Shared {
    fn send(&self, cmd: Cmd) -> bool {
        self.reactor.send(self.key, IoOp::Cmd(cmd))
    }

    /// Releases watch `id` now, on the caller's thread, under the session's lock: the
    /// release is then ahead of whatever this thread asks next. Sent to the IO thread it
    /// could reach the session after a later request of this thread (written directly),
    /// and its `removeWatches` would remove that request's new watch on the same path.
    fn release(&self, id: RequestId) {
        let mut s = lock(&self.cell);
        if s.ended {
            return;
        }
        let now = s.tick(Instant::now());
        s.release(now, id);
        drop(s);
        // The IO thread writes the removal, unless a caller's direct write takes it first.
        self.send(Cmd::Poke);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle is gone: close the session and wait (bounded) until it is closed.
        let (done, closed) = mpsc::channel();
        if self.send(Cmd::Close(done)) {
            let _ = closed.recv_timeout(self.close_wait);
        }
    }
}

/// What the IO thread is asked to do for a session.
enum IoOp {
    /// Start driving a new session.
    Open(Box<NewSession>),
    Cmd(Cmd),
}

/// A session as a new client hands it to the IO thread.
struct NewSession {
    cell: Arc<Cell>,
}

/// The process's IO thread for blocking clients: one `mio::Poll` for every session.
struct Reactor {
    ops: Sender<(usize, IoOp)>,
    /// The IO thread's `Poll`, where a new client registers its connection.
    registry: mio::Registry,
    /// The callback thread, for new sessions.
    callbacks: Sender<(usize, CallbackJob)>,
    waker: Waker,
    /// A wake-up is on its way: later senders need not write the waker again.
    wake_pending: Arc<AtomicBool>,
    next_key: AtomicUsize,
}

impl Reactor {
    /// The IO thread and the callback thread, started on first use.
    fn get() -> Result<&'static Reactor> {
        static REACTOR: OnceLock<std::result::Result<Reactor, String>> = OnceLock::new();
        REACTOR
            .get_or_init(|| Reactor::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Error::Start(e.clone()))
    }

    fn start() -> std::io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let registry = poll.registry().try_clone()?;
        let (tx, rx) = mpsc::channel();
        let (cb_tx, cb_rx) = mpsc::channel();
        let wake_pending = Arc::new(AtomicBool::new(false));
        thread::Builder::new()
            .name("zk-callbacks".into())
            .spawn(move || run_callbacks(cb_rx))?;
        let io = IoThread::new(poll, rx, wake_pending.clone());
        thread::Builder::new()
            .name("zk-io".into())
            .spawn(move || io.run())?;
        Ok(Reactor {
            ops: tx,
            registry,
            callbacks: cb_tx,
            waker,
            wake_pending,
            next_key: AtomicUsize::new(0),
        })
    }

    fn send(&self, key: usize, op: IoOp) -> bool {
        if self.ops.send((key, op)).is_err() {
            return false;
        }
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            return self.waker.wake().is_ok();
        }
        true
    }
}

/// Configures and starts a blocking [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    options: ClientOptions,
}

impl ClientBuilder {
    zk_client::client_option_setters!();

    /// Starts the connection thread and waits until the session is connected.
    pub fn connect(self) -> Result<Client> {
        let wait = self.options.connect_wait();
        let client = self.spawn()?;
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            match client.state() {
                s if s.is_connected() => return Ok(client),
                SessionState::AuthFailed => return Err(Error::AuthFailed),
                SessionState::Closed => return Err(Error::Closed),
                _ => thread::sleep(Duration::from_millis(2)),
            }
        }
        // Say why each host failed, not only that none answered.
        let (tx, rx) = mpsc::channel();
        client.shared.send(Cmd::Diagnose(tx, wait));
        let error = rx
            .recv_timeout(Duration::from_secs(1))
            .unwrap_or(Error::ConnectTimeout {
                waited: wait,
                failures: Vec::new(),
            });
        client.close();
        Err(error)
    }

    /// Starts the session on the IO thread without waiting for it.
    pub fn spawn(self) -> Result<Client> {
        let seed = match self.options.seed {
            Some(seed) => seed,
            None => crate::entropy::random_u64()?,
        };
        let secret = crate::entropy::random_u128()?;
        let session = self.options.session(Instant::now(), seed, secret)?;
        let reactor = Reactor::get()?;
        let key = reactor.next_key.fetch_add(1, Ordering::Relaxed);
        let snapshot = Arc::new(Mutex::new(Snapshot::of(&session, None)));
        let token = Token(key);
        #[cfg(feature = "tls")]
        let conn = match self.options.tls.clone() {
            Some(tls) => Connection::from_session_with_tls(session, &reactor.registry, token, tls),
            None => Connection::from_session(session, &reactor.registry, token),
        };
        #[cfg(not(feature = "tls"))]
        let conn = Connection::from_session(session, &reactor.registry, token);
        let conn = conn.map_err(|e| Error::Start(format!("cannot start a session: {e}")))?;
        let cell = Arc::new(Mutex::new(SessionLoop::new(
            conn,
            snapshot.clone(),
            reactor.callbacks.clone(),
            key,
        )));
        let opened = reactor.send(key, IoOp::Open(Box::new(NewSession { cell: cell.clone() })));
        if !opened {
            return Err(Error::Start("the IO thread is gone".into()));
        }
        let timeout = self
            .options
            .call_timeout
            .unwrap_or(self.options.session_timeout * 2);
        Ok(Client {
            shared: Arc::new(Shared {
                key,
                reactor,
                cell,
                snapshot,
                close_wait: timeout,
            }),
            default_acl: self.options.default_acl.into(),
            call_timeout: timeout,
            retry: self.options.retry,
            seed,
        })
    }
}

/// A one-shot watch: wait for its event. Dropping it before the event releases the watch.
#[must_use = "dropping a watcher removes the watch"]
pub struct OneshotWatcher {
    rx: Receiver<WatchedEvent>,
    id: RequestId,
    shared: Arc<Shared>,
    done: bool,
}

impl std::fmt::Debug for OneshotWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneshotWatcher")
            .field("id", &self.id)
            .finish()
    }
}

impl OneshotWatcher {
    /// Waits for the event (a final `EventType::None` event if the session ends first).
    pub fn wait(mut self) -> WatchedEvent {
        self.done = true;
        self.rx.recv().unwrap_or_else(|_| ended(self.id))
    }

    /// Waits up to `timeout` for the event.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<WatchedEvent> {
        match self.rx.recv_timeout(timeout) {
            Ok(e) => {
                self.done = true;
                Some(e)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.done = true;
                Some(ended(self.id))
            }
        }
    }
}

impl Drop for OneshotWatcher {
    fn drop(&mut self) {
        if !self.done {
            self.shared.release(self.id);
        }
    }
}

/// A persistent watch as an iterator of events; it ends when the watch is removed or the
/// session ends. Dropping it releases the watch.
#[must_use = "dropping a watcher removes the watch"]
pub struct PersistentWatcher {
    rx: Option<Receiver<WatchedEvent>>,
    id: RequestId,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PersistentWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentWatcher")
            .field("id", &self.id)
            .finish()
    }
}

impl PersistentWatcher {
    /// The next event within `timeout`; `Ok(None)` once the watch ended.
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> std::result::Result<Option<WatchedEvent>, RecvTimeoutError> {
        let Some(rx) = &self.rx else {
            return Ok(None);
        };
        match rx.recv_timeout(timeout) {
            Ok(e) => Ok(Some(e)),
            Err(RecvTimeoutError::Disconnected) => {
                self.rx = None;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

impl Iterator for PersistentWatcher {
    type Item = WatchedEvent;

    fn next(&mut self) -> Option<WatchedEvent> {
        let e = self.rx.as_ref()?.recv().ok();
        if e.is_none() {
            self.rx = None;
        }
        e
    }
}

impl Drop for PersistentWatcher {
    fn drop(&mut self) {
        if self.rx.is_some() {
            self.shared.release(self.id);
        }
    }
}

/// Keeps a callback watch alive; dropping it releases the watch.
#[must_use = "dropping the handle removes the watch"]
pub struct WatchHandle {
    id: RequestId,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle").field("id", &self.id).finish()
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.shared.release(self.id);
    }
}

fn ended(watch: RequestId) -> WatchedEvent {
    WatchedEvent {
        watch,
        kind: EventType::None,
        state: zk_proto::consts::KeeperState::Closed,
        path: String::new(),
    }
}

/// A blocking ZooKeeper client. Cheap to clone; the session closes when the last clone is
/// dropped or at [`Client::close`].
///
/// ```no_run
/// use zk_mio::blocking::Client;
/// use zk_client::CreateOptions;
///
/// let client = Client::connect("127.0.0.1:2181")?;
/// client.create("/hello", "world", &CreateOptions::ephemeral())?;
/// let (data, _stat) = client.get_data("/hello")?;
/// assert_eq!(&data[..], b"world");
/// client.close();
/// # Ok::<(), zk_client::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    default_acl: Arc<[Acl]>,
    call_timeout: Duration,
    retry: RetryPolicy,
    seed: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state())
            .field("session_id", &self.session_id())
            .finish()
    }
}

impl Client {
    /// Connects with default settings and waits for the session.
    pub fn connect(hosts: &str) -> Result<Client> {
        Client::builder(hosts).connect()
    }

    /// A builder for other settings.
    pub fn builder(hosts: &str) -> ClientBuilder {
        ClientBuilder {
            options: ClientOptions::new(hosts),
        }
    }

    /// Reads the snapshot (a closed session's if the IO thread died holding its lock).
    fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        match self.shared.snapshot.lock() {
            Ok(s) => f(&s),
            Err(_) => f(&Snapshot::closed()),
        }
    }

    zk_client::snapshot_accessors!();

    /// Replaces the servers the session may use (`host:port,...`; a chroot in the string is
    /// ignored), as after a reconfiguration (the Java client's `updateServerList`).
    /// Sessions spread over the new list: this one moves when its server left, or, when
    /// servers were added, with the probability that evens the load. A move lets the
    /// requests in flight finish first and does not suspend the session. Returns whether
    /// it moves.
    ///
    /// Fails on a malformed list, or after the client is closed.
    pub fn update_hosts(&self, hosts: &str) -> Result<bool> {
        let list = zk_proto::session::HostList::parse(hosts)?;
        let (tx, rx) = mpsc::channel();
        if !self.shared.send(Cmd::UpdateHosts(list, tx)) {
            return Err(Error::Closed);
        }
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| Error::Closed)
    }

    /// A snapshot of the session's counters: requests in flight and queued, connections and
    /// their losses, round trips, the slowest reply, slow requests, watches held.
    ///
    /// Fails only after the client is closed.
    pub fn metrics(&self) -> Result<SessionMetrics> {
        let (tx, rx) = mpsc::channel();
        if !self.shared.send(Cmd::Metrics(tx)) {
            return Err(Error::Closed);
        }
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| Error::Closed)
    }

    /// Calls `f` with every state transition from now on (detailed states and the
    /// application view: Connected / Suspended / Lost), in order, on the callback thread
    /// that also runs watch callbacks, as Kazoo's `add_listener` does. `f` must not block:
    /// every callback waits for it. A listener that panics is logged and keeps listening.
    pub fn add_listener(&self, f: impl FnMut(StateEvent) + Send + 'static) {
        self.shared.send(Cmd::Listen(Box::new(f)));
    }

    /// Every state transition from now on.
    pub fn state_events(&self) -> Receiver<StateEvent> {
        let (tx, rx) = mpsc::channel();
        self.shared.send(Cmd::Subscribe(tx));
        rx
    }

    /// Hands the IO thread a command for this session; false when the session is over.
    pub(crate) fn command(&self, cmd: Cmd) -> bool {
        self.shared.send(cmd)
    }

    /// Runs `f` on the callback thread, after the callbacks handed over before it.
    pub(crate) fn post_callback(&self, f: Box<dyn FnOnce() + Send>) {
        let _ = self
            .shared
            .reactor
            .callbacks
            .send((self.shared.key, CallbackJob::Run(f)));
    }

    /// How long a call waits for its reply.
    pub(crate) fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Closes the session and waits until it is closed (at most the call timeout).
    pub fn close(&self) {
        let (tx, rx) = mpsc::channel();
        if self.shared.send(Cmd::Close(tx)) {
            let _ = rx.recv_timeout(self.call_timeout);
        }
    }

    /// Submits a request and waits for its outcome.
    ///
    /// While the session is connected over a healthy link, the caller does the IO itself:
    /// it writes its request and, if no other caller of the session is reading, reads the
    /// socket until its reply is in, acting on everything else that arrives (other
    /// callers' replies, watch events, pings) as the IO thread would. The IO thread then
    /// never wakes for the call, which is most of what a blocking call costs. Otherwise
    /// (connecting, TLS handshakes, read-only probes, hosted recipes, a closing session)
    /// the IO thread carries the request.
    fn submit(&self, request: Request, watch: Option<Sink>) -> Result<(RequestId, Reply)> {
        let deadline = Instant::now() + self.call_timeout;
        #[cfg(target_os = "linux")]
        let (request, watch) = {
            let mut s = lock(&self.shared.cell);
            if s.direct() {
                let now = s.tick(Instant::now());
                let id = match s.conn.submit(now, request) {
                    Ok(id) => id,
                    Err(e) => return Ok((RequestId(0), Err(e))),
                };
                s.router.wait(id, Waiter::Parked(thread::current()), watch);
                s.conn.flush(now);
                // What the write itself decided (a failed link, a frame too large) is
                // answered now, not at the IO thread's next turn.
                s.turn_here(now);
                return self.await_parked(s, id, deadline);
            }
            (request, watch)
        };
        let (tx, rx) = mpsc::channel();
        if !self.shared.send(Cmd::Submit {
            request,
            watch,
            reply: tx,
        }) {
            return Ok((RequestId(0), Err(session::Error::Closed)));
        }
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(r) => Ok(r),
            Err(RecvTimeoutError::Timeout) => Err(Error::CallTimeout(self.call_timeout)),
            Err(RecvTimeoutError::Disconnected) => Ok((RequestId(0), Err(session::Error::Closed))),
        }
    }

    /// Waits for the outcome of request `id`, submitted by this thread: reads the socket
    /// itself whenever it can (no one else reads and the link is healthy), and otherwise
    /// parks until whoever reads delivers it.
    #[cfg(target_os = "linux")]
    fn await_parked<'a>(
        &'a self,
        mut s: std::sync::MutexGuard<'a, SessionLoop>,
        id: RequestId,
        deadline: Instant,
    ) -> Result<(RequestId, Reply)> {
        loop {
            if let Some(r) = s.handles.arrived.remove(&id) {
                return Ok((id, r));
            }
            if s.ended || !s.router.waits_for(id) {
                return Ok((id, Err(session::Error::Closed)));
            }
            if Instant::now() >= deadline {
                s.router.abandon(id);
                return Err(Error::CallTimeout(self.call_timeout));
            }
            if !s.reading() && s.direct() {
                s = self.read_until(s, id, deadline);
                continue;
            }
            drop(s);
            thread::park_timeout(deadline.saturating_duration_since(Instant::now()));
            s = lock(&self.shared.cell);
        }
    }

    /// Reads the session's socket on this thread until the outcome of `id` is in, the
    /// link changes (the IO thread carries on then), or `deadline` passes. Timers due
    /// meanwhile run here too.
    #[cfg(target_os = "linux")]
    fn read_until<'a>(
        &'a self,
        mut s: std::sync::MutexGuard<'a, SessionLoop>,
        id: RequestId,
        deadline: Instant,
    ) -> std::sync::MutexGuard<'a, SessionLoop> {
        /// The longest sleep between looks at the session, should a wake-up go astray.
        const SLICE: Duration = Duration::from_millis(200);
        let Some((_, generation)) = s.conn.direct_fd() else {
            return s;
        };
        s.reading = Some(generation);
        s.conn.set_read_events(false);
        loop {
            let now = s.tick(Instant::now());
            let fd = match s.conn.direct_fd() {
                Some((fd, g))
                    if g == generation
                        && !s.ended
                        && !s.closing
                        && now < deadline
                        && !s.handles.arrived.contains_key(&id) =>
                {
                    fd
                }
                // Done, out of time, or the link changed: the IO thread carries on.
                _ => return self.stop_reading(s, generation),
            };
            let timer = s.conn.poll_timeout();
            if timer.is_some_and(|t| t <= now) {
                s.conn.handle_timeout(now);
                s.turn_here(now);
                continue;
            }
            let until = timer.unwrap_or(deadline).min(deadline).min(now + SLICE);
            drop(s);
            wait_readable(fd, until.saturating_duration_since(now));
            s = lock(&self.shared.cell);
            if s.conn.generation() == generation && !s.ended {
                let now = s.tick(Instant::now());
                s.conn.read_direct(now);
                s.turn_here(now);
            }
        }
    }

    /// Hands reading back to the IO thread, and gives it a turn when it has to act on
    /// something sooner than it planned (or the link changed while this thread read).
    #[cfg(target_os = "linux")]
    fn stop_reading<'a>(
        &'a self,
        mut s: std::sync::MutexGuard<'a, SessionLoop>,
        generation: u64,
    ) -> std::sync::MutexGuard<'a, SessionLoop> {
        // Another caller may read a newer socket already: only this one's mark goes.
        if s.reading == Some(generation) {
            s.reading = None;
        }
        let same_link = s.conn.generation() == generation;
        // With nothing that could arrive unasked (no watch, no reply owed, no one else
        // waiting), the socket stays out of the IO thread's sight until the next call or
        // the IO thread's next turn for the session; a server's close still wakes it.
        // Sequential calls then cost no `epoll_ctl` each.
        if same_link && !s.quiet() {
            s.conn.set_read_events(true);
        }
        let filed = s.deadline;
        let turn = !same_link
            || s.ended
            || s.conn.is_finished()
            || s.conn
                .poll_timeout()
                .is_some_and(|t| filed.is_none_or(|f| t < f));
        if turn {
            self.shared.send(Cmd::Poke);
        }
        s
    }

    pub(crate) fn call(&self, request: Request) -> Result<Reply> {
        Ok(self.submit(request, None)?.1)
    }

    fn call_watch(&self, request: Request) -> Result<(Reply, OneshotWatcher)> {
        let (tx, rx) = mpsc::channel();
        let (id, r) = self.submit(request, Some(Sink::Channel(tx)))?;
        let w = OneshotWatcher {
            rx,
            id,
            shared: self.shared.clone(),
            done: r.is_err() && !matches!(r, Err(session::Error::Server(ErrorCode::NoNode))),
        };
        Ok((r, w))
    }

    /// Adds credentials to the session (and to every later connection).
    pub fn add_auth(&self, scheme: &str, credentials: impl Into<Bytes>) -> Result<()> {
        let (tx, rx) = mpsc::channel();
        if !self.shared.send(Cmd::AddAuth {
            scheme: scheme.into(),
            credentials: credentials.into(),
            reply: tx,
        }) {
            return Err(Error::Closed);
        }
        match rx.recv_timeout(self.call_timeout) {
            Ok((_, r)) => reply::done(r),
            Err(RecvTimeoutError::Timeout) => Err(Error::CallTimeout(self.call_timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(Error::Closed),
        }
    }

    /// Submits an operation and decodes its reply.
    fn run<T>(&self, op: Op<T>) -> Result<T> {
        let (request, decode) = op.into_parts();
        decode(self.call(request)?)
    }

    /// Runs a multi-step operation to its end.
    fn run_plan<P: Plan>(&self, mut plan: P) -> Result<P::Output> {
        while let Some(request) = plan.next_request() {
            plan.complete(self.call(request)?)?;
        }
        plan.finish()
    }

    /// Creates `path` and any missing parents (persistent, default ACL); an existing node is
    /// not an error.
    #[doc(alias = "ensure_path")]
    pub fn create_all(&self, path: &str, data: impl Into<Bytes>) -> Result<()> {
        self.run_plan(CreateAll::new(path, data.into(), &self.default_acl))
    }

    /// Deletes `path` and everything under it, deepest first, and returns how many nodes
    /// went. A missing node is not an error. Not atomic: a failure (an ACL, a lost
    /// connection) leaves what was not deleted yet.
    #[doc(alias = "delete_recursive")]
    pub fn delete_all(&self, path: &str) -> Result<usize> {
        self.run_plan(DeleteAll::new(path))
    }

    /// Retries `op` with the client's retry policy while it fails with a connection problem,
    /// sleeping between attempts as the policy says.
    ///
    /// ```no_run
    /// # let client = zk_mio::blocking::Client::connect("127.0.0.1:2181")?;
    /// let (data, _) = client.retry(|| client.get_data("/config"))?;
    /// # Ok::<(), zk_mio::Error>(())
    /// ```
    pub fn retry<T>(&self, op: impl FnMut() -> Result<T>) -> Result<T> {
        retry_with(&self.retry, self.seed, op)
    }

    /// Like [`Client::exists`], and a one-shot watch.
    pub fn exists_watch(&self, path: &str) -> Result<(Option<Stat>, OneshotWatcher)> {
        let (request, decode) = op::exists(path, true).into_parts();
        let (r, w) = self.call_watch(request)?;
        Ok((decode(r)?, w))
    }

    /// Like [`Client::get_data`], and a one-shot watch.
    pub fn get_data_watch(&self, path: &str) -> Result<(Bytes, Stat, OneshotWatcher)> {
        let (request, decode) = op::get_data(path, true).into_parts();
        let (r, w) = self.call_watch(request)?;
        let (d, s) = decode(r)?;
        Ok((d, s, w))
    }

    /// Like [`Client::get_data`], calling `f` on the callback thread when the watch fires.
    pub fn get_data_watch_fn(
        &self,
        path: &str,
        f: impl FnOnce(WatchedEvent) + Send + 'static,
    ) -> Result<(Bytes, Stat)> {
        let mut f = Some(f);
        let cb: Callback = Box::new(move |e| {
            if let Some(f) = f.take() {
                f(e)
            }
        });
        let (request, decode) = op::get_data(path, true).into_parts();
        let (_, r) = self.submit(request, Some(Sink::Callback(cb)))?;
        decode(r)
    }

    /// Like [`Client::get_children2`], and a one-shot watch.
    pub fn get_children_watch(&self, path: &str) -> Result<(Vec<String>, Stat, OneshotWatcher)> {
        let (request, decode) = op::get_children2(path, true).into_parts();
        let (r, w) = self.call_watch(request)?;
        let (c, s) = decode(r)?;
        Ok((c, s, w))
    }

    /// Starts a transaction: operations applied all together or not at all (`multi`).
    ///
    /// ```no_run
    /// # let client = zk_mio::blocking::Client::connect("127.0.0.1:2181")?;
    /// use zk_mio::CreateOptions;
    /// let results = client
    ///     .transaction()
    ///     .check("/config", 3)
    ///     .create("/config/new", "v", &CreateOptions::persistent())
    ///     .set_data("/config", "updated", Some(3))
    ///     .commit()?;
    /// # Ok::<(), zk_mio::Error>(())
    /// ```
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction {
            client: self,
            default_acl: self.default_acl.clone(),
            ops: MultiBuilder::default(),
        }
    }

    /// A persistent (or recursive) watch as an iterator of events.
    pub fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<PersistentWatcher> {
        let (tx, rx) = mpsc::channel();
        let (request, decode) = op::add_watch(path, mode).into_parts();
        let (id, r) = self.submit(request, Some(Sink::Channel(tx)))?;
        decode(r)?;
        Ok(PersistentWatcher {
            rx: Some(rx),
            id,
            shared: self.shared.clone(),
        })
    }

    /// A persistent (or recursive) watch calling `f` for every event, in order, on the
    /// callback thread.
    pub fn add_watch_fn(
        &self,
        path: &str,
        mode: AddWatchMode,
        f: impl FnMut(WatchedEvent) + Send + 'static,
    ) -> Result<WatchHandle> {
        let (request, decode) = op::add_watch(path, mode).into_parts();
        let (id, r) = self.submit(request, Some(Sink::Callback(Box::new(f))))?;
        decode(r)?;
        Ok(WatchHandle {
            id,
            shared: self.shared.clone(),
        })
    }
}

/// Writes the operations every client has ([`zk_client::for_each_operation`]) as blocking
/// calls.
macro_rules! blocking_operations {
    ($( $(#[$doc:meta])* $name:ident ( $($arg:ident : $ty:ty),* ) -> $out:ty [$acl:ident] $op:expr ; )*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub fn $name(&self, $($arg: $ty),*) -> Result<$out> {
                    let $acl: &[Acl] = &self.default_acl;
                    let _ = $acl;
                    self.run($op)
                }
            )*
        }
    };
}

zk_client::for_each_operation!(blocking_operations);

/// A transaction: operations applied all together or not at all (`multi`).
#[derive(Debug)]
#[must_use = "a transaction does nothing until committed"]
pub struct Transaction<'c> {
    client: &'c Client,
    default_acl: Arc<[Acl]>,
    ops: MultiBuilder,
}

impl Transaction<'_> {
    zk_client::transaction_builder_methods!();

    /// Applies the operations. On failure nothing was applied and the error names the
    /// failing operation.
    pub fn commit(self) -> Result<Vec<OpResult>> {
        if self.ops.is_empty() {
            return Ok(Vec::new());
        }
        self.client.run(op::transaction(self.ops))
    }
}

/// Retries `op` under `policy` while it fails with a connection problem, sleeping between
/// attempts as the policy says; `seed` drives the jitter.
pub fn retry_with<T>(
    policy: &RetryPolicy,
    seed: u64,
    mut op: impl FnMut() -> Result<T>,
) -> Result<T> {
    let mut retrying = policy.start(Instant::now(), seed);
    loop {
        match op() {
            Err(e) => match e
                .to_session()
                .and_then(|e| retrying.next_delay(Instant::now(), &e))
            {
                Some(delay) => thread::sleep(delay),
                None => return Err(e),
            },
            ok => return ok,
        }
    }
}

/// The IO thread: every blocking session of the process, on one `Poll`.
struct IoThread {
    poll: Poll,
    ops: Receiver<(usize, IoOp)>,
    sessions: HashMap<usize, Arc<Cell>>,
    /// Each session's next deadline, earliest first.
    deadlines: BTreeSet<(Instant, usize)>,
    /// Sessions that had something happen this turn.
    touched: Vec<usize>,
    /// Shared with [`Reactor::send`]: cleared before the operations are read.
    wake_pending: Arc<AtomicBool>,
}

impl IoThread {
    fn new(poll: Poll, ops: Receiver<(usize, IoOp)>, wake_pending: Arc<AtomicBool>) -> Self {
        IoThread {
            poll,
            ops,
            sessions: HashMap::new(),
            deadlines: BTreeSet::new(),
            touched: Vec::new(),
            wake_pending,
        }
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let timeout = self
                .deadlines
                .first()
                .map(|(t, _)| t.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                warn!(error = %e, "poll failed; the IO thread of the blocking clients ends");
                return;
            }
            let now = Instant::now();
            for event in events.iter() {
                let key = event.token().0;
                if event.token() == WAKE {
                    continue;
                }
                if let Some(cell) = self.sessions.get(&key) {
                    let mut s = lock(cell);
                    let now = s.tick(now);
                    if s.reading() {
                        // A caller reads this socket itself; only writing is left here.
                        s.conn.flush(now);
                    } else {
                        s.conn.handle_event(event, now);
                    }
                    touch(&mut self.touched, &mut s, key);
                }
            }
            // New requests first: what they queue leaves in this turn's write.
            // A read-modify-write, so every send that saw a wake-up pending is visible below.
            self.wake_pending.swap(false, Ordering::AcqRel);
            loop {
                match self.ops.try_recv() {
                    Ok((key, op)) => self.op(now, key, op),
                    Err(mpsc::TryRecvError::Empty) => break,
                    // The reactor lives as long as the process.
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            }
            while let Some(&(t, key)) = self.deadlines.first() {
                if t > now {
                    break;
                }
                self.deadlines.pop_first();
                if let Some(cell) = self.sessions.get(&key) {
                    let mut s = lock(cell);
                    let now = s.tick(now);
                    s.deadline = None;
                    s.conn.handle_timeout(now);
                    s.router.handle_timeout(now);
                    touch(&mut self.touched, &mut s, key);
                }
            }
            for key in std::mem::take(&mut self.touched) {
                self.settle(now, key);
            }
        }
    }

    fn op(&mut self, now: Instant, key: usize, op: IoOp) {
        match op {
            IoOp::Open(new) => {
                {
                    let mut s = lock(&new.cell);
                    let now = s.tick(now);
                    // Readiness that came before the session was known here was dropped:
                    // look at the socket once now.
                    s.conn.kick(now);
                    touch(&mut self.touched, &mut s, key);
                }
                self.sessions.insert(key, new.cell);
            }
            IoOp::Cmd(cmd) => match self.sessions.get(&key) {
                Some(cell) => {
                    let mut s = lock(cell);
                    let now = s.tick(now);
                    s.command(now, cmd);
                    touch(&mut self.touched, &mut s, key);
                }
                // The session is over: dropping the command answers its caller (a closed
                // channel reads as a closed session), and a close is already done.
                None => {
                    if let Cmd::Close(done) = cmd {
                        let _ = done.send(());
                    }
                }
            },
        }
    }

    /// After a turn: deliver the session's events, publish its state, write what it queued
    /// and file its next deadline; or let it go if it is over.
    fn settle(&mut self, now: Instant, key: usize) {
        let Some(cell) = self.sessions.get(&key).cloned() else {
            return;
        };
        let mut s = lock(&cell);
        let now = s.tick(now);
        s.touched = false;
        // A socket that a finished call left out of sight is watched again: this turn may
        // have sent something whose answer nobody reads otherwise.
        #[cfg(target_os = "linux")]
        if !s.reading() && s.conn.reads_paused() {
            s.conn.set_read_events(true);
        }
        s.publish();
        s.deliver(now);
        let over = s.conn.is_finished();
        if let Some(d) = s.deadline.take() {
            self.deadlines.remove(&(d, key));
        }
        if over {
            s.end();
            drop(s);
            self.sessions.remove(&key);
            return;
        }
        let next = s.next_deadline(now);
        s.deadline = next;
        if let Some(d) = next {
            self.deadlines.insert((d, key));
        }
    }
}

fn touch(touched: &mut Vec<usize>, s: &mut SessionLoop, key: usize) {
    if !s.touched {
        s.touched = true;
        touched.push(key);
    }
}

/// One session, driven by the IO thread and, for a call at a time, by the caller waiting
/// for its reply.
struct SessionLoop {
    conn: Connection,
    snapshot: Arc<Mutex<Snapshot>>,
    key: usize,
    /// Waiters, watch sinks and recipe machines, fed the session's events in socket order.
    router: Router<Handles>,
    handles: Handles,
    close_waiters: Vec<Sender<()>>,
    closing: bool,
    /// The deadline filed with the IO thread.
    deadline: Option<Instant>,
    touched: bool,
    /// A caller reads the socket of this generation itself, and the IO thread leaves
    /// reading it to the caller. A socket of a later generation (the IO thread moved the
    /// session meanwhile) is the IO thread's again.
    reading: Option<u64>,
    /// The IO thread let the session go: calls fail as closed.
    ended: bool,
    /// The latest moment any thread gave the session: time never runs back for it.
    clock: Instant,
}

impl SessionLoop {
    fn new(
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
    fn tick(&mut self, now: Instant) -> Instant {
        self.clock = self.clock.max(now);
        self.clock
    }

    /// Publishes the session's state to the handles. It moves before events go out:
    /// whoever hears of a state change and then asks the client sees that state or a
    /// later one.
    fn publish(&self) {
        if let Ok(mut shared) = self.snapshot.lock() {
            *shared = Snapshot::of(self.conn.session(), Some(&shared));
        }
    }

    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    /// A turn on a caller's thread: publishes the session's state, delivers its events,
    /// and writes whatever that made the session or its machines send.
    fn turn_here(&mut self, now: Instant) {
        self.publish();
        self.deliver(now);
        self.conn.flush(now);
    }

    /// When the session (and its hosted machines) next has work; writes what is queued.
    fn next_deadline(&mut self, now: Instant) -> Option<Instant> {
        let hosted = self.router.poll_timeout();
        match (self.conn.timeout(now).map(|d| now + d), hosted) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A caller may submit and read its reply itself: the session is connected over a
    /// healthy link and nothing else needs the IO thread's attention.
    #[cfg(target_os = "linux")]
    fn direct(&self) -> bool {
        !self.ended
            && !self.closing
            && self.router.hosts_nothing()
            && self.conn.direct_fd().is_some()
    }

    /// A caller reads the current socket.
    fn reading(&self) -> bool {
        self.reading.is_some_and(|g| g == self.conn.generation())
    }

    /// Nothing can come from the server unasked but a close: no watch is set, no reply is
    /// owed, no caller waits.
    #[cfg(target_os = "linux")]
    fn quiet(&self) -> bool {
        self.router.is_quiet() && !self.conn.session().may_hear()
    }

    /// The session is over: everyone waiting hears it (dropped channels read as closed).
    fn end(&mut self) {
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
    fn release(&mut self, now: Instant, id: RequestId) {
        if let Some(Sink::Registered) = self.router.release(id) {
            self.handles.callback(CallbackJob::Forget(id));
        }
        self.conn.release_watch(now, id);
    }

    fn command(&mut self, now: Instant, cmd: Cmd) {
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
    fn deliver(&mut self, now: Instant) {
        self.router.turn(&mut self.conn, now, &mut self.handles);
    }
}

/// Where a session's results go: its callers' channels and parked threads, its state
/// subscribers, and the callback thread.
struct Handles {
    key: usize,
    callbacks: Sender<(usize, CallbackJob)>,
    /// Outcomes for parked callers, until they take them.
    arrived: HashMap<RequestId, Reply>,
    subscribers: Vec<Sender<StateEvent>>,
    /// Some listener runs on the callback thread: state events go there too.
    listening: bool,
}

impl Handles {
    fn callback(&self, job: CallbackJob) -> bool {
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

/// Sleeps until `fd` is readable (or hung up), at most `timeout`.
#[cfg(target_os = "linux")]
fn wait_readable(fd: std::os::fd::RawFd, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd for the length given. An fd closed meanwhile by another
    // thread only makes this return early or late; the caller checks the session after.
    unsafe {
        libc::poll(&mut pfd, 1, ms);
    }
}

/// What a panic said, when it said it with a string.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// The callback thread: runs the watch callbacks and state listeners of every blocking
/// client one at a time, in the order their events arrived. A callback that panics is
/// logged and dropped (it may be broken); the thread and every other callback go on.
fn run_callbacks(jobs: Receiver<(usize, CallbackJob)>) {
    let mut callbacks: HashMap<(usize, RequestId), Callback> = HashMap::new();
    let mut listeners: HashMap<usize, Vec<Listener>> = HashMap::new();
    for (key, job) in jobs {
        match job {
            CallbackJob::Listen(f) => listeners.entry(key).or_default().push(f),
            CallbackJob::State(state) => {
                for (i, l) in listeners.entry(key).or_default().iter_mut().enumerate() {
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l(state)));
                    if let Err(panic) = ran {
                        warn!(listener = i, ?state, panic = %panic_text(&*panic), "a state listener panicked");
                    }
                }
            }
            CallbackJob::Register(id, cb) => {
                callbacks.insert((key, id), cb);
            }
            CallbackJob::Event(ev, last) => {
                let id = ev.watch;
                let path = ev.path.clone();
                let mut drop_it = last;
                if let Some(cb) = callbacks.get_mut(&(key, id)) {
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(ev)));
                    if let Err(panic) = ran {
                        warn!(
                            watch = id.0,
                            %path,
                            panic = %panic_text(&*panic),
                            "a watch callback panicked; it is dropped, the others go on"
                        );
                        drop_it = true;
                    }
                }
                if drop_it {
                    callbacks.remove(&(key, id));
                }
            }
            CallbackJob::Forget(id) => {
                callbacks.remove(&(key, id));
            }
            CallbackJob::Run(f) => {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                if let Err(panic) = ran {
                    warn!(panic = %panic_text(&*panic), "a recipe callback panicked; the others go on");
                }
            }
            CallbackJob::End => {
                callbacks.retain(|(k, _), _| *k != key);
                listeners.remove(&key);
            }
        }
    }
}
