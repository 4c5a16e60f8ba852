//! The blocking client: its builder, its calls and its transactions.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::Token;
use zk_client::{ClientOptions, Error, MultiBuilder, Result, reply};
use zk_proto::ErrorCode;
use zk_proto::records::*;
use zk_proto::retry::RetryPolicy;
use zk_proto::session::{self, SessionMetrics, SessionState, StateEvent, WatchedEvent};

use super::callbacks::*;
use super::reactor::*;
use super::session_loop::*;
use super::watchers::*;
use crate::Connection;
use zk_client::driver::Snapshot;

/// Configures and starts a blocking [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    pub(super) options: ClientOptions,
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
            None => crate::os::OS.u64()?,
        };
        let secret = crate::os::OS.u128()?;
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

/// A blocking ZooKeeper client. Cheap to clone; the session closes when the last clone is
/// dropped or at [`Client::close`].
///
/// ```no_run
/// use zk_mio::blocking::Client;
/// use zk_mio::CreateOptions;
///
/// let client = Client::connect("127.0.0.1:2181")?;
/// client.create("/hello", "world", &CreateOptions::ephemeral())?;
/// let (data, _stat) = client.get_data("/hello")?;
/// assert_eq!(&data[..], b"world");
/// client.close();
/// # Ok::<(), zk_mio::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    pub(super) shared: Arc<Shared>,
    pub(super) default_acl: Arc<[Acl]>,
    pub(super) call_timeout: Duration,
    pub(super) retry: RetryPolicy,
    pub(super) seed: u64,
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
    pub(super) fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
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
    /// Fails on a malformed list, after the client is closed, or with
    /// [`Error::CallTimeout`] if the IO thread does not answer within the call timeout.
    pub fn update_hosts(&self, hosts: &str) -> Result<bool> {
        let list = zk_proto::session::HostList::parse(hosts)?;
        self.ask(|tx| Cmd::UpdateHosts(list, tx))
    }

    /// A snapshot of the session's counters: requests in flight and queued, connections and
    /// their losses, round trips, the slowest reply, slow requests, watches held.
    ///
    /// Fails after the client is closed, or with [`Error::CallTimeout`] if the IO thread
    /// does not answer within the call timeout.
    pub fn metrics(&self) -> Result<SessionMetrics> {
        self.ask(Cmd::Metrics)
    }

    /// Sends the command `make` builds around a reply channel and waits at most the call
    /// timeout for the answer.
    fn ask<T>(&self, make: impl FnOnce(mpsc::Sender<T>) -> Cmd) -> Result<T> {
        let wait = self.call_timeout;
        let (tx, rx) = mpsc::channel();
        if !self.shared.send(make(tx)) {
            return Err(Error::Closed);
        }
        rx.recv_timeout(wait).map_err(|e| match e {
            RecvTimeoutError::Timeout => Error::CallTimeout(wait),
            RecvTimeoutError::Disconnected => Error::Closed,
        })
    }

    /// Calls `f` with every state transition from now on (detailed states and the
    /// application view: Connected / Suspended / Lost), in order, on the callback thread
    /// that also runs watch callbacks, as Kazoo's `add_listener` does. `f` must not block:
    /// every callback waits for it. A listener that panics is logged and keeps listening.
    pub fn add_listener(&self, f: impl FnMut(StateEvent) + Send + 'static) {
        self.shared
            .send(Cmd::Subscribe(Subscriber::Listener(Box::new(f))));
    }

    /// Every state transition from now on: detailed states and the application view
    /// (Connected / Suspended / Lost), in order.
    pub fn state_events(&self) -> StateEvents {
        let (tx, rx) = mpsc::channel();
        let open = self.shared.send(Cmd::Subscribe(Subscriber::Channel(tx)));
        StateEvents {
            rx: open.then_some(rx),
        }
    }

    /// Waits until the session state satisfies `pred` (at once if it already does) and
    /// returns that state; fails with [`Error::Closed`] once the client is closed. Every
    /// state the session passes through after the call began is tried, also one it leaves
    /// at once (an `Expired` followed by a renewed session's `Connecting`). To catch a
    /// transition that a step of yours may cause at once, listen first
    /// ([`Client::state_events`]), then take the step.
    ///
    /// ```no_run
    /// # fn run(client: zk_mio::blocking::Client) -> zk_mio::Result<()> {
    /// use zk_mio::SessionState;
    /// client.wait_for(|s| s == SessionState::Connected)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_for(&self, pred: impl Fn(SessionState) -> bool) -> Result<SessionState> {
        self.wait_for_until(pred, None)
            .and_then(|s| s.ok_or(Error::Closed))
    }

    /// Like [`Client::wait_for`], waiting at most `timeout`: `Ok(None)` when the time ran
    /// out first.
    pub fn wait_for_timeout(
        &self,
        pred: impl Fn(SessionState) -> bool,
        timeout: Duration,
    ) -> Result<Option<SessionState>> {
        self.wait_for_until(pred, Some(Instant::now() + timeout))
    }

    fn wait_for_until(
        &self,
        pred: impl Fn(SessionState) -> bool,
        deadline: Option<Instant>,
    ) -> Result<Option<SessionState>> {
        // Subscribed before the first look, so no transition falls between the two.
        let mut events = self.state_events();
        let state = self.state();
        if pred(state) {
            return Ok(Some(state));
        }
        if state == SessionState::Closed {
            return Err(Error::Closed);
        }
        loop {
            let event = match deadline {
                None => events.next().ok_or(Error::Closed)?,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    match events.next_timeout(left)? {
                        Some(event) => event,
                        None => return Ok(None),
                    }
                }
            };
            if let StateEvent::Session(state) = event
                && pred(state)
            {
                return Ok(Some(state));
            }
        }
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
        let _ = self.ask(Cmd::Close);
    }

    pub(crate) fn call(&self, request: Request) -> Result<Reply> {
        Ok(self.submit(request, None)?.1)
    }

    pub(super) fn call_watch(&self, request: Request) -> Result<(Reply, OneshotWatcher)> {
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
        let (scheme, credentials) = (scheme.into(), credentials.into());
        let reply = |tx| Cmd::AddAuth {
            scheme,
            credentials,
            reply: Waiter::Channel(tx),
        };
        reply::done(self.ask(reply)?.1)
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

    /// Submits a read that leaves a one-shot watch calling `f` (once) on the callback
    /// thread.
    fn call_watch_fn(
        &self,
        request: Request,
        f: impl FnOnce(WatchedEvent) + Send + 'static,
    ) -> Result<Reply> {
        let mut f = Some(f);
        let cb: Callback = Box::new(move |e| {
            if let Some(f) = f.take() {
                f(e)
            }
        });
        Ok(self.submit(request, Some(Sink::Callback(cb)))?.1)
    }

    /// Submits an `addWatch` whose events go to the returned watcher, which releases the
    /// watch from here on, also when the reply is an error.
    fn call_add_watch(&self, request: Request) -> Result<(Reply, PersistentWatcher)> {
        let (tx, rx) = mpsc::channel();
        let (id, r) = self.submit(request, Some(Sink::Channel(tx)))?;
        let shared = self.shared.clone();
        Ok((
            r,
            PersistentWatcher {
                rx: Some(rx),
                id,
                shared,
            },
        ))
    }

    /// Submits an `addWatch` calling `f` on the callback thread; the handle releases the
    /// watch from here on, also when the reply is an error.
    fn call_add_watch_fn(
        &self,
        request: Request,
        f: impl FnMut(WatchedEvent) + Send + 'static,
    ) -> Result<(Reply, WatchHandle)> {
        let (id, r) = self.submit(request, Some(Sink::Callback(Box::new(f))))?;
        Ok((
            r,
            WatchHandle {
                id,
                shared: self.shared.clone(),
            },
        ))
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
    pub fn transaction(&self) -> Transaction {
        Transaction {
            client: self.clone(),
            default_acl: self.default_acl.clone(),
            ops: MultiBuilder::default(),
        }
    }
}

zk_client::client_calls!(callbacks on "the callback thread", [], []);

/// A transaction: operations applied all together or not at all (`multi`).
#[derive(Debug, Clone)]
#[must_use = "a transaction does nothing until committed"]
pub struct Transaction {
    pub(super) client: Client,
    pub(super) default_acl: Arc<[Acl]>,
    pub(super) ops: MultiBuilder,
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
