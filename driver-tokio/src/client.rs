//! What the user calls: the client handle, its builder and the typed operations.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use zk_client::{ClientOptions, MultiBuilder, Reply};
use zk_proto::records::*;
use zk_proto::retry::RetryPolicy;
use zk_proto::session::{self, RequestId, SessionState, StateEvent, WatchedEvent};

use crate::connection::{Callback, Command, ListenFn, Subscriber, Task, WatchFn, WatchSink};
use crate::watch::{OneshotWatcher, PersistentWatcher, StateEvents, WatchHandle};
use crate::{Error, Result};
use zk_client::driver::Snapshot;

/// Configures and starts a [`Client`].
///
/// ```no_run
/// # async fn demo() -> zk_tokio::Result<()> {
/// use std::time::Duration;
/// let client = zk_tokio::Client::builder("zk1:2181,zk2:2181/app")
///     .session_timeout(Duration::from_secs(10))
///     .read_only(true)
///     .auth("digest", "user:secret")
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    options: ClientOptions,
}

impl ClientBuilder {
    fn new(hosts: &str) -> Self {
        ClientBuilder {
            options: ClientOptions::new(hosts),
        }
    }

    zk_client::client_option_setters!();

    /// Starts the session without waiting for it; requests wait for the connection.
    /// Must be called inside a tokio runtime.
    pub fn spawn(self) -> Result<Client> {
        let seed = match self.options.seed {
            Some(seed) => seed,
            None => crate::os::OS.u64()?,
        };
        let now = tokio::time::Instant::now().into_std();
        let session = self.options.session(now, seed, crate::os::OS.u128()?)?;
        #[cfg(feature = "tls")]
        let tls = self.options.tls.clone().map(std::sync::Arc::new);
        #[cfg(not(feature = "tls"))]
        let tls = crate::connection::NoTls;
        let (tx, rx) = mpsc::unbounded_channel();
        let (snap_tx, snap_rx) = watch::channel(Snapshot::of(&session, None));
        // Callbacks (watch callbacks, state listeners, recipe callbacks) run on their own
        // task, one at a time and in order, off the session's task; it ends with the
        // session's task and the last handle.
        let (callbacks, mut jobs) = mpsc::unbounded_channel::<Callback>();
        tokio::spawn(async move {
            while let Some(job) = jobs.recv().await {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                    tracing::warn!("a callback panicked; the others go on");
                }
            }
        });
        // Every event of the session's task carries its hosts and, once known, its id.
        let span = tracing::info_span!(
            "zk_session",
            hosts = %self.options.hosts,
            session_id = tracing::field::Empty
        );
        tokio::spawn(tracing::Instrument::instrument(
            Task::new(session, rx, snap_tx, tls, callbacks.clone()).run(),
            span,
        ));
        Ok(Client {
            commands: tx,
            callbacks,
            snapshot: snap_rx,
            default_acl: self.options.default_acl.into(),
            retry: self.options.retry,
            call_timeout: self.options.call_timeout,
            seed,
        })
    }

    /// Starts the session and waits until it is connected (read-write, or read-only when
    /// allowed).
    pub async fn connect(self) -> Result<Client> {
        let wait = self.options.connect_wait();
        let client = self.spawn()?;
        let mut snap = client.snapshot.clone();
        let connected = tokio::time::timeout(wait, async {
            loop {
                let state = snap.borrow_and_update().state;
                if state.is_connected() {
                    return Ok(());
                }
                if state == SessionState::AuthFailed {
                    return Err(Error::AuthFailed);
                }
                if snap.changed().await.is_err() {
                    return Err(Error::Closed);
                }
            }
        })
        .await;
        match connected {
            Ok(Ok(())) => Ok(client),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                // Say why each host failed, not only that none answered.
                let (tx, rx) = oneshot::channel();
                let _ = client.commands.send(Command::Diagnose(tx, wait));
                let error = rx.await.unwrap_or(Error::ConnectTimeout {
                    waited: wait,
                    failures: Vec::new(),
                });
                client.close().await;
                Err(error)
            }
        }
    }
}

/// A transaction: operations applied all together or not at all (`multi`).
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::CreateOptions;
/// let results = client
///     .transaction()
///     .check("/config", 3)
///     .create("/config/new", "v", &CreateOptions::persistent())
///     .set_data("/config", "updated", Some(3))
///     .commit()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a transaction does nothing until committed"]
pub struct Transaction {
    client: Client,
    default_acl: std::sync::Arc<[Acl]>,
    ops: MultiBuilder,
}

/// A handle on one ZooKeeper session. Cheap to clone; the session closes when the last
/// handle is dropped (or at [`Client::close`]).
///
/// ```no_run
/// # async fn demo() -> zk_tokio::Result<()> {
/// use zk_tokio::{Client, CreateOptions};
/// let client = Client::connect("127.0.0.1:2181").await?;
/// client.create("/hello", "world", &CreateOptions::ephemeral()).await?;
/// let (data, stat) = client.get_data("/hello").await?;
/// assert_eq!(&data[..], b"world");
/// client.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    callbacks: mpsc::UnboundedSender<Callback>,
    snapshot: watch::Receiver<Snapshot>,
    default_acl: std::sync::Arc<[Acl]>,
    retry: RetryPolicy,
    call_timeout: Option<Duration>,
    seed: u64,
}

impl Client {
    /// Connects with default settings and waits for the session.
    pub async fn connect(hosts: &str) -> Result<Client> {
        ClientBuilder::new(hosts).connect().await
    }

    /// A builder for other settings.
    pub fn builder(hosts: &str) -> ClientBuilder {
        ClientBuilder::new(hosts)
    }

    // ----- plumbing -----

    /// Hands a request to the connection task now (so requests sent one after another are
    /// submitted in that order); the receiver yields its id and outcome.
    pub(crate) fn send_request(
        &self,
        request: Request,
        watch: Option<WatchSink>,
    ) -> Option<oneshot::Receiver<(RequestId, std::result::Result<Response, session::Error>)>> {
        let (tx, rx) = oneshot::channel();
        let cmd = Command::Submit {
            request,
            watch,
            reply: tx,
        };
        self.commands.send(cmd).ok().map(|_| rx)
    }

    /// How long a call waits for its reply, if it is bounded at all.
    pub(crate) fn call_timeout(&self) -> Option<Duration> {
        self.call_timeout
    }

    /// Hands the connection task a command; false when the task is gone.
    pub(crate) fn command(&self, cmd: Command) -> bool {
        self.commands.send(cmd).is_ok()
    }

    /// Runs `f` on the client's callback task, after the callbacks handed over before it.
    pub(crate) fn post_callback(&self, f: Callback) {
        let _ = self.callbacks.send(f);
    }

    /// Hands `request` to the connection task now; the future is its outcome. The request
    /// is not carried inside the future, so awaiting it copies nothing large.
    fn submit(&self, request: Request, watch: Option<WatchSink>) -> Answer {
        Answer(self.send_request(request, watch))
    }

    /// Submits a request and waits for its outcome, at most the call timeout if one is set.
    pub(crate) async fn call(&self, request: Request) -> Result<Reply> {
        Ok(self.bounded(self.submit(request, None)).await?.1)
    }

    /// Waits for `answer` at most the call timeout, if one is set. A call that gives up
    /// leaves nothing set: the watch a late reply brings is released.
    async fn bounded<T>(&self, answer: impl Future<Output = T>) -> Result<T> {
        match self.call_timeout {
            None => Ok(answer.await),
            Some(t) => tokio::time::timeout(t, answer)
                .await
                .map_err(|_| Error::CallTimeout(t)),
        }
    }

    /// Submits a request leaving a watch with `sink`; the watch is released from the reply
    /// on unless `keep` takes it.
    async fn call_with<W>(
        &self,
        request: Request,
        sink: WatchSink,
        keep: impl FnOnce(RequestId, mpsc::UnboundedSender<Command>) -> W,
    ) -> Result<(Reply, W)> {
        let (id, reply) = self.bounded(self.submit(request, Some(sink))).await?;
        Ok((reply, keep(id, self.commands.clone())))
    }

    async fn call_watch(&self, request: Request) -> Result<(Reply, OneshotWatcher)> {
        let (tx, rx) = oneshot::channel();
        let sink = WatchSink::Once(Some(tx));
        self.call_with(request, sink, |id, c| OneshotWatcher::new(rx, id, c))
            .await
    }

    async fn call_watch_fn(
        &self,
        request: Request,
        f: impl FnOnce(WatchedEvent) + Send + 'static,
    ) -> Result<Reply> {
        let mut f = Some(f);
        let f: WatchFn = std::sync::Arc::new(std::sync::Mutex::new(move |e| {
            if let Some(f) = f.take() {
                f(e)
            }
        }));
        Ok(self
            .bounded(self.submit(request, Some(WatchSink::Callback(f))))
            .await?
            .1)
    }

    async fn call_add_watch(&self, request: Request) -> Result<(Reply, PersistentWatcher)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = WatchSink::Stream(tx);
        self.call_with(request, sink, |id, c| PersistentWatcher::new(rx, id, c))
            .await
    }

    async fn call_add_watch_fn(
        &self,
        request: Request,
        f: impl FnMut(WatchedEvent) + Send + 'static,
    ) -> Result<(Reply, WatchHandle)> {
        let sink = WatchSink::Callback(std::sync::Arc::new(std::sync::Mutex::new(f)));
        self.call_with(request, sink, WatchHandle::new).await
    }

    // ----- session -----

    /// Reads the session's snapshot.
    fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        f(&self.snapshot.borrow())
    }

    zk_client::snapshot_accessors!();

    /// Replaces the servers the session may use (`host:port,...`; a chroot in the string is
    /// ignored), as after a reconfiguration (the Java client's `updateServerList`).
    /// Sessions spread over the new list: this one moves when its server left, or, when
    /// servers were added, with the probability that evens the load. A move lets the
    /// requests in flight finish first and does not suspend the session. Returns whether
    /// it moves.
    ///
    /// Fails on a malformed list, or after the client is closed. Dropping the future after
    /// it was first polled may still apply the change.
    pub async fn update_hosts(&self, hosts: &str) -> Result<bool> {
        let list = zk_proto::session::HostList::parse(hosts)?;
        self.ask(|tx| Command::UpdateHosts(list, tx)).await
    }

    /// A snapshot of the session's counters: requests in flight and queued, connections and
    /// their losses, round trips, the slowest reply, slow requests, watches held.
    ///
    /// Fails only after the client is closed. Dropping the future is harmless.
    pub async fn metrics(&self) -> Result<crate::SessionMetrics> {
        self.ask(Command::Metrics).await
    }

    /// Sends the command `make` builds around a reply channel and waits for the answer.
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Every state transition from now on: detailed states and the application view
    /// (Connected / Suspended / Lost), in order.
    pub fn state_events(&self) -> StateEvents {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self
            .commands
            .send(Command::Subscribe(Subscriber::Channel(tx)));
        StateEvents { rx }
    }

    /// Calls `f` with every state transition from now on (detailed states and the
    /// application view: Connected / Suspended / Lost), in order, on the client's callback
    /// task, which also runs its watch callbacks, as Kazoo's `add_listener` does. `f` must
    /// not block: every callback waits for it. A listener that panics is logged and keeps
    /// listening.
    pub fn add_listener(&self, f: impl FnMut(StateEvent) + Send + 'static) {
        let f: ListenFn = std::sync::Arc::new(std::sync::Mutex::new(f));
        let _ = self
            .commands
            .send(Command::Subscribe(Subscriber::Listener(f)));
    }

    /// Waits until the session state satisfies `pred` (at once if it already does) and
    /// returns that state; fails with [`Error::Closed`] once the client is closed. Every
    /// state the session passes through after the call began is tried, also one it leaves
    /// at once (an `Expired` followed by a renewed session's `Connecting`). To catch a
    /// transition that a step of yours may cause at once, listen first
    /// ([`Client::state_events`]), then take the step.
    ///
    /// ```no_run
    /// # async fn run(client: zk_tokio::Client) -> zk_tokio::Result<()> {
    /// use zk_tokio::SessionState;
    /// client.wait_for(|s| s == SessionState::Connected).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_for(&self, pred: impl Fn(SessionState) -> bool) -> Result<SessionState> {
        // Subscribed before the first look, so no transition falls between the two.
        let mut events = self.state_events();
        let state = self.state();
        if pred(state) {
            return Ok(state);
        }
        loop {
            match events.next().await {
                Some(StateEvent::Session(state)) if pred(state) => return Ok(state),
                Some(_) => {}
                None => return Err(Error::Closed),
            }
        }
    }

    /// Like [`Client::wait_for`], waiting at most `timeout`: `Ok(None)` when the time ran
    /// out first.
    pub async fn wait_for_timeout(
        &self,
        pred: impl Fn(SessionState) -> bool,
        timeout: Duration,
    ) -> Result<Option<SessionState>> {
        match tokio::time::timeout(timeout, self.wait_for(pred)).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Closes the session (ephemeral nodes go at once) and waits until it is closed.
    /// Requests already submitted finish first.
    pub async fn close(&self) {
        let _ = self.ask(Command::Close).await;
    }

    /// Adds credentials to the session (and to every later connection).
    pub async fn add_auth(&self, scheme: &str, credentials: impl Into<Bytes>) -> Result<()> {
        let (scheme, credentials) = (scheme.to_string(), credentials.into());
        let (_, r) = self
            .ask(|reply| Command::AddAuth {
                scheme,
                credentials,
                reply,
            })
            .await?;
        r.map(|_| ()).map_err(Error::from)
    }

    /// Retries `op` with the client's retry policy while it fails with a connection problem.
    ///
    /// ```no_run
    /// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
    /// let (data, _) = client.retry(|| client.get_data("/config")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn retry<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        retry_with(&self.retry, self.seed, op).await
    }

    // ----- operations (the rest are written by `zk_client::client_calls!`) -----

    /// Starts a transaction.
    pub fn transaction(&self) -> Transaction {
        Transaction {
            client: self.clone(),
            default_acl: self.default_acl.clone(),
            ops: MultiBuilder::default(),
        }
    }
}

zk_client::client_calls!(callbacks on "the callback task", [async], [.await]);

/// A request's outcome, once the connection task answers; a task that is gone answers
/// `Closed`. Dropping it drops the receiver: a late reply is then let go by the task.
pub(crate) struct Answer(
    Option<oneshot::Receiver<(RequestId, std::result::Result<Response, session::Error>)>>,
);

impl Future for Answer {
    type Output = (RequestId, std::result::Result<Response, session::Error>);

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let closed = || (RequestId(0), Err(session::Error::Closed));
        match self.0.as_mut() {
            Some(rx) => std::pin::Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or_else(|_| closed())),
            None => std::task::Poll::Ready(closed()),
        }
    }
}

/// Retries `op` under `policy` while it fails with a connection problem, sleeping between
/// attempts as the policy says.
pub async fn retry_with<T, F, Fut>(policy: &RetryPolicy, seed: u64, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut retrying = policy.start(tokio::time::Instant::now().into_std(), seed);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let now = tokio::time::Instant::now().into_std();
                match e.to_session().and_then(|e| retrying.next_delay(now, &e)) {
                    Some(delay) => {
                        tracing::debug!(error = %e, ?delay, "retrying");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(e),
                }
            }
        }
    }
}
