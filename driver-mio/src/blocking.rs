//! A blocking client: a [`Connection`] runs on a thread of its own with a `mio::Waker`, and
//! every operation is a blocking call with a timeout.
//!
//! Watch events go to channels, or to callbacks that run on one dedicated thread in order, so
//! a slow callback never holds up the connection (pings, reconnects and replies go on).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Poll, Token, Waker};
use tracing::{debug, info, warn};
use zk_proto::consts::{AddWatchMode, EventType};
use zk_proto::ops::plan::{CreateAll, DeleteAll, Plan};
use zk_proto::ops::{ClientOptions, Error, MultiBuilder, Op, Result, op, reply};
use zk_proto::records::*;
use zk_proto::retry::RetryPolicy;
use zk_proto::session::{
    self, AppState, Event, RequestId, SessionMetrics, SessionState, StateEvent, WatchedEvent,
};
use zk_proto::{ErrorCode, Stat};

use crate::Connection;

const CONN: Token = Token(0);
const WAKE: Token = Token(1);

type Reply = std::result::Result<Response, session::Error>;
/// Where a request's outcome goes.
type ReplyTo = Sender<(RequestId, Reply)>;

/// A persistent-watch callback.
type Callback = Box<dyn FnMut(WatchedEvent) + Send>;

/// Where a watch's events go.
enum Sink {
    Channel(Sender<WatchedEvent>),
    Callback(Callback),
}

enum Cmd {
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
    Release(RequestId),
    Subscribe(Sender<StateEvent>),
    Listen(Listener),
    Diagnose(Sender<Error>, Duration),
    Metrics(Sender<SessionMetrics>),
    UpdateHosts(zk_proto::session::HostList, Sender<bool>),
    Close(Sender<()>),
}

/// A session state listener.
type Listener = Box<dyn FnMut(StateEvent) + Send>;

/// Jobs for the callback thread.
enum CallbackJob {
    Register(RequestId, Callback),
    Event(WatchedEvent, bool),
    Forget(RequestId),
    Listen(Listener),
    State(StateEvent),
}

#[derive(Debug, Clone, Copy)]
struct Snapshot {
    state: SessionState,
    app: AppState,
    session_id: i64,
}

struct Shared {
    commands: Mutex<Sender<Cmd>>,
    waker: Waker,
    snapshot: Mutex<Snapshot>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    fn send(&self, cmd: Cmd) -> bool {
        let sent = self
            .commands
            .lock()
            .map(|tx| tx.send(cmd).is_ok())
            .unwrap_or(false);
        sent && self.waker.wake().is_ok()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle is gone: the connection thread sees its command channel close,
        // closes the session and ends.
        if let Ok(mut t) = self.thread.lock()
            && let Some(t) = t.take()
        {
            if let Ok(tx) = self.commands.lock() {
                let (done, _) = mpsc::channel();
                let _ = tx.send(Cmd::Close(done));
            }
            let _ = self.waker.wake();
            let _ = t.join();
        }
    }
}

/// Configures and starts a blocking [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    options: ClientOptions,
}

impl ClientBuilder {
    zk_proto::client_option_setters!();

    /// Starts the connection thread and waits until the session is connected.
    pub fn connect(self) -> Result<Client> {
        let wait = self.options.connect_wait();
        let client = self.spawn()?;
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            match client.state() {
                s if s.is_connected() => return Ok(client),
                SessionState::AuthFailed => return Err(session::Error::AuthFailed.into()),
                SessionState::Closed => return Err(session::Error::Closed.into()),
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

    /// Starts the connection thread without waiting for the session.
    pub fn spawn(self) -> Result<Client> {
        let seed = self.options.seed.unwrap_or_else(random_seed);
        let session = self.options.session(Instant::now(), seed)?;
        let poll = Poll::new().map_err(io_error)?;
        let waker = Waker::new(poll.registry(), WAKE).map_err(io_error)?;
        let conn = Connection::from_session(session, poll.registry(), CONN).map_err(io_error)?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            commands: Mutex::new(tx),
            waker,
            snapshot: Mutex::new(Snapshot {
                state: SessionState::Connecting,
                app: AppState::Lost,
                session_id: 0,
            }),
            thread: Mutex::new(None),
        });
        let (cb_tx, cb_rx) = mpsc::channel();
        thread::Builder::new()
            .name("zk-watch-callbacks".into())
            .spawn(move || run_callbacks(cb_rx))
            .map_err(io_error)?;
        let worker = {
            let shared = Arc::downgrade(&shared);
            let snapshot_of = move |s: Snapshot| {
                if let Some(sh) = shared.upgrade()
                    && let Ok(mut snap) = sh.snapshot.lock()
                {
                    *snap = s;
                }
            };
            thread::Builder::new()
                .name("zk-connection".into())
                .spawn(move || Loop::new(conn, poll, rx, cb_tx).run(snapshot_of))
                .map_err(io_error)?
        };
        if let Ok(mut t) = shared.thread.lock() {
            *t = Some(worker);
        }
        let timeout = self
            .options
            .call_timeout
            .unwrap_or(self.options.session_timeout * 2);
        Ok(Client {
            shared,
            default_acl: self.options.default_acl.into(),
            call_timeout: timeout,
            retry: self.options.retry,
            seed,
        })
    }
}

fn io_error(e: std::io::Error) -> Error {
    Error::Start(e.to_string())
}

fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
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
            self.shared.send(Cmd::Release(self.id));
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
            self.shared.send(Cmd::Release(self.id));
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
        self.shared.send(Cmd::Release(self.id));
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
/// use zk_proto::ops::CreateOptions;
///
/// let client = Client::connect("127.0.0.1:2181")?;
/// client.create("/hello", "world", &CreateOptions::ephemeral())?;
/// let (data, _stat) = client.get_data("/hello")?;
/// assert_eq!(&data[..], b"world");
/// client.close();
/// # Ok::<(), zk_proto::ops::Error>(())
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

    fn snapshot(&self) -> Snapshot {
        self.shared.snapshot.lock().map(|s| *s).unwrap_or(Snapshot {
            state: SessionState::Closed,
            app: AppState::Lost,
            session_id: 0,
        })
    }

    /// The session state now.
    pub fn state(&self) -> SessionState {
        self.snapshot().state
    }

    /// The application view now.
    pub fn app_state(&self) -> AppState {
        self.snapshot().app
    }

    /// The session id (0 before the first connection).
    pub fn session_id(&self) -> i64 {
        self.snapshot().session_id
    }

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
            return Err(session::Error::Closed.into());
        }
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| session::Error::Closed.into())
    }

    /// A snapshot of the session's counters: requests in flight and queued, connections and
    /// their losses, round trips, the slowest reply, slow requests, watches held.
    ///
    /// Fails only after the client is closed.
    pub fn metrics(&self) -> Result<SessionMetrics> {
        let (tx, rx) = mpsc::channel();
        if !self.shared.send(Cmd::Metrics(tx)) {
            return Err(session::Error::Closed.into());
        }
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| session::Error::Closed.into())
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

    /// Closes the session and waits until it is closed (at most the call timeout).
    pub fn close(&self) {
        let (tx, rx) = mpsc::channel();
        if self.shared.send(Cmd::Close(tx)) {
            let _ = rx.recv_timeout(self.call_timeout);
        }
    }

    fn submit(&self, request: Request, watch: Option<Sink>) -> Result<(RequestId, Reply)> {
        let (tx, rx) = mpsc::channel();
        if !self.shared.send(Cmd::Submit {
            request,
            watch,
            reply: tx,
        }) {
            return Ok((RequestId(0), Err(session::Error::Closed)));
        }
        match rx.recv_timeout(self.call_timeout) {
            Ok(r) => Ok(r),
            Err(RecvTimeoutError::Timeout) => Err(Error::CallTimeout(self.call_timeout)),
            Err(RecvTimeoutError::Disconnected) => Ok((RequestId(0), Err(session::Error::Closed))),
        }
    }

    fn call(&self, request: Request) -> Result<Reply> {
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
            return Err(session::Error::Closed.into());
        }
        match rx.recv_timeout(self.call_timeout) {
            Ok((_, r)) => reply::done(r),
            Err(RecvTimeoutError::Timeout) => Err(Error::CallTimeout(self.call_timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(session::Error::Closed.into()),
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

/// Writes the operations every client has ([`zk_proto::for_each_operation`]) as blocking
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

zk_proto::for_each_operation!(blocking_operations);

/// A transaction: operations applied all together or not at all (`multi`).
#[derive(Debug)]
#[must_use = "a transaction does nothing until committed"]
pub struct Transaction<'c> {
    client: &'c Client,
    default_acl: Arc<[Acl]>,
    ops: MultiBuilder,
}

impl Transaction<'_> {
    zk_proto::transaction_builder_methods!();

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
            Err(Error::Request(e)) => match retrying.next_delay(Instant::now(), &e) {
                Some(delay) => thread::sleep(delay),
                None => return Err(Error::Request(e)),
            },
            other => return other,
        }
    }
}

/// The connection thread.
struct Loop {
    conn: Connection,
    poll: Poll,
    commands: Receiver<Cmd>,
    callbacks: Sender<CallbackJob>,
    waiters: HashMap<RequestId, (ReplyTo, Option<Sink>)>,
    /// Channel sinks (`None` for callbacks, which live on the callback thread) and whether
    /// the watch is one-shot.
    watchers: HashMap<RequestId, (Option<Sender<WatchedEvent>>, bool)>,
    subscribers: Vec<Sender<StateEvent>>,
    /// Some listener runs on the callback thread: state events go there too.
    listening: bool,
    close_waiters: Vec<Sender<()>>,
    closing: bool,
}

impl Loop {
    fn new(
        conn: Connection,
        poll: Poll,
        commands: Receiver<Cmd>,
        callbacks: Sender<CallbackJob>,
    ) -> Self {
        Loop {
            conn,
            poll,
            commands,
            callbacks,
            waiters: HashMap::new(),
            watchers: HashMap::new(),
            subscribers: Vec::new(),
            listening: false,
            close_waiters: Vec::new(),
            closing: false,
        }
    }

    fn run(mut self, publish: impl Fn(Snapshot)) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.conn.timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                warn!(error = %e, "poll failed; the connection thread ends");
                break;
            }
            let now = Instant::now();
            for event in events.iter() {
                if event.token() == CONN {
                    self.conn.handle_event(event, now);
                }
            }
            self.commands(now);
            // Everything the commands queued leaves in one write.
            self.conn.flush(now);
            self.conn.handle_timeout(now);
            while let Some(event) = self.conn.poll_event() {
                self.dispatch(event);
            }
            let s = self.conn.session();
            publish(Snapshot {
                state: s.state(),
                app: s.app_state(),
                session_id: s.session_id(),
            });
            let over = match s.state() {
                SessionState::Closed | SessionState::AuthFailed => true,
                SessionState::Expired => s.poll_timeout().is_none(),
                _ => false,
            };
            if over {
                break;
            }
        }
        for w in self.close_waiters.drain(..) {
            let _ = w.send(());
        }
        debug!("connection thread ends");
    }

    fn commands(&mut self, now: Instant) {
        loop {
            match self.commands.try_recv() {
                Ok(Cmd::Submit {
                    request,
                    watch,
                    reply,
                }) => match self.conn.submit(now, request) {
                    Ok(id) => {
                        self.waiters.insert(id, (reply, watch));
                    }
                    Err(e) => {
                        let _ = reply.send((RequestId(0), Err(e)));
                    }
                },
                Ok(Cmd::AddAuth {
                    scheme,
                    credentials,
                    reply,
                }) => match self.conn.add_auth(now, &scheme, credentials) {
                    Ok(id) => {
                        self.waiters.insert(id, (reply, None));
                    }
                    Err(e) => {
                        let _ = reply.send((RequestId(0), Err(e)));
                    }
                },
                Ok(Cmd::Release(id)) => {
                    if let Some((None, _)) = self.watchers.remove(&id) {
                        let _ = self.callbacks.send(CallbackJob::Forget(id));
                    }
                    self.conn.release_watch(now, id);
                }
                Ok(Cmd::Subscribe(tx)) => self.subscribers.push(tx),
                Ok(Cmd::UpdateHosts(hosts, tx)) => {
                    let _ = tx.send(self.conn.update_hosts(now, hosts));
                }
                Ok(Cmd::Metrics(tx)) => {
                    let _ = tx.send(self.conn.session().metrics());
                }
                Ok(Cmd::Diagnose(tx, waited)) => {
                    let _ = tx.send(Error::connect_timeout(waited, self.conn.session()));
                }
                Ok(Cmd::Listen(f)) => {
                    self.listening = true;
                    let _ = self.callbacks.send(CallbackJob::Listen(f));
                }
                Ok(Cmd::Close(done)) => {
                    self.close_waiters.push(done);
                    self.close(now);
                }
                Err(mpsc::TryRecvError::Empty) => return,
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.close(now);
                    return;
                }
            }
        }
    }

    fn close(&mut self, now: Instant) {
        if !self.closing {
            self.closing = true;
            self.conn.close(now);
        }
    }

    fn dispatch(&mut self, event: Event) {
        if let Some(state) = StateEvent::of(&event) {
            info!(?state, "session state");
            self.subscribers.retain(|s| s.send(state).is_ok());
            if self.listening {
                let _ = self.callbacks.send(CallbackJob::State(state));
            }
            return;
        }
        match event {
            Event::Complete { id, result } => {
                if let Some((reply, sink)) = self.waiters.remove(&id) {
                    let registered = self.conn.session().watches().get(id).map(|(_, k)| k);
                    if let (Some(sink), Some(kind)) = (sink, registered) {
                        let one_shot = kind.is_one_shot();
                        match sink {
                            Sink::Channel(tx) => {
                                self.watchers.insert(id, (Some(tx), one_shot));
                            }
                            Sink::Callback(cb) => {
                                let _ = self.callbacks.send(CallbackJob::Register(id, cb));
                                self.watchers.insert(id, (None, one_shot));
                            }
                        }
                    }
                    let _ = reply.send((id, result));
                }
            }
            Event::Watch(ev) => {
                let id = ev.watch;
                let Some((sink, one_shot)) = self.watchers.get(&id) else {
                    return;
                };
                // A one-shot watch fires once; any watch ends with a final or removal event.
                let last = *one_shot
                    || matches!(
                        ev.kind,
                        EventType::None
                            | EventType::DataWatchRemoved
                            | EventType::ChildWatchRemoved
                            | EventType::PersistentWatchRemoved
                    );
                let delivered = match sink {
                    Some(tx) => tx.send(ev).is_ok(),
                    None => self.callbacks.send(CallbackJob::Event(ev, last)).is_ok(),
                };
                if last || !delivered {
                    self.watchers.remove(&id);
                }
            }
            _ => {}
        }
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

/// The callback thread: runs watch callbacks one at a time, in the order events arrived.
/// A callback that panics is logged and dropped (it may be broken); the thread and every
/// other callback go on.
fn run_callbacks(jobs: Receiver<CallbackJob>) {
    let mut callbacks: HashMap<RequestId, Callback> = HashMap::new();
    let mut listeners: Vec<Listener> = Vec::new();
    for job in jobs {
        match job {
            CallbackJob::Listen(f) => listeners.push(f),
            CallbackJob::State(state) => {
                for (i, l) in listeners.iter_mut().enumerate() {
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l(state)));
                    if let Err(panic) = ran {
                        warn!(listener = i, ?state, panic = %panic_text(&*panic), "a state listener panicked");
                    }
                }
            }
            CallbackJob::Register(id, cb) => {
                callbacks.insert(id, cb);
            }
            CallbackJob::Event(ev, last) => {
                let id = ev.watch;
                let path = ev.path.clone();
                let mut drop_it = last;
                if let Some(cb) = callbacks.get_mut(&id) {
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
                    callbacks.remove(&id);
                }
            }
            CallbackJob::Forget(id) => {
                callbacks.remove(&id);
            }
        }
    }
}
