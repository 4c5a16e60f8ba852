//! The connection task: where the bytes move. It owns the socket, DNS and the timers, and
//! shuttles bytes and time between tokio and the `zk-proto` session. Every protocol decision
//! is the session's.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, trace, warn};
use zk_client::driver::{Core, Deliver, Snapshot};
use zk_proto::records::Response;
use zk_proto::session::{
    self, Action, AppState, Event, HostAddr, ProbeResult, RequestId, Session, SessionState,
    StateEvent, WatchedEvent,
};

/// Reads go into a buffer of this size, reused for the life of the task.
const READ_BUFFER: usize = 64 * 1024;

pub(crate) type Reply = oneshot::Sender<(RequestId, Result<Response, session::Error>)>;

/// Something the client's callback task runs, one at a time, in the order handed over.
pub(crate) type Callback = Box<dyn FnOnce() + Send>;

/// A watch callback, called with each of its events on the callback task.
pub(crate) type WatchFn = std::sync::Arc<std::sync::Mutex<dyn FnMut(WatchedEvent) + Send>>;

/// A state listener, called with each transition on the callback task.
pub(crate) type ListenFn = std::sync::Arc<std::sync::Mutex<dyn FnMut(StateEvent) + Send>>;

/// Where a watch's events go.
pub(crate) enum WatchSink {
    /// A one-shot watch: its one event, or nothing if the sink is already spent.
    Once(Option<oneshot::Sender<WatchedEvent>>),
    Stream(mpsc::UnboundedSender<WatchedEvent>),
    /// A callback: each event goes to the callback task, in socket order with the state
    /// listeners and every other callback.
    Callback(WatchFn),
}

impl std::fmt::Debug for WatchSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WatchSink::Once(_) => "Once",
            WatchSink::Stream(_) => "Stream",
            WatchSink::Callback(_) => "Callback",
        })
    }
}

/// Who hears the session's state transitions.
pub(crate) enum Subscriber {
    Channel(mpsc::UnboundedSender<StateEvent>),
    /// A listener, run on the callback task.
    Listener(ListenFn),
}

/// Runs `f` with `value` on the callback task; a callback that panics is logged, and the
/// callback stays (a state listener keeps listening, a watch callback keeps its watch).
fn post<T: Send + 'static>(
    callbacks: &mpsc::UnboundedSender<Callback>,
    f: &std::sync::Arc<std::sync::Mutex<dyn FnMut(T) + Send>>,
    value: T,
) -> bool {
    let f = f.clone();
    callbacks
        .send(Box::new(move || {
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            (*f)(value)
        }))
        .is_ok()
}

/// What the handles ask of the task.
pub(crate) type Command = zk_client::driver::Command<Out>;

type Connecting = Pin<Box<dyn Future<Output = io::Result<Stream>> + Send>>;

/// The TLS settings of a client, shared by its connections and probes.
#[cfg(feature = "tls")]
pub(crate) type Tls = Option<std::sync::Arc<zk_client::tls::TlsOptions>>;
/// Without the `tls` feature there is nothing to configure.
#[cfg(not(feature = "tls"))]
pub(crate) type Tls = NoTls;

/// Stands for TLS settings in a build without the `tls` feature.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Default, Clone)]
pub(crate) struct NoTls;

#[cfg(feature = "tls")]
type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// The bytes to and from one server: plain TCP, or TLS over it.
enum Stream {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

enum Reader {
    Tcp(OwnedReadHalf),
    #[cfg(feature = "tls")]
    Tls(tokio::io::ReadHalf<TlsStream>),
}

enum Writer {
    Tcp(OwnedWriteHalf),
    #[cfg(feature = "tls")]
    Tls(tokio::io::WriteHalf<TlsStream>),
}

impl Stream {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_ref().0.peer_addr(),
        }
    }

    fn split(self) -> (Reader, Writer) {
        match self {
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (Reader::Tcp(r), Writer::Tcp(w))
            }
            #[cfg(feature = "tls")]
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (Reader::Tls(r), Writer::Tls(w))
            }
        }
    }
}

pub(crate) struct Task {
    session: Session,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_open: bool,
    snapshot: watch::Sender<Snapshot>,
    /// Waiters, watch sinks and recipe machines, fed the session's events in socket order.
    core: Core<Out>,
    reader: Option<Reader>,
    writer: Option<Writer>,
    /// TLS records may wait inside rustls after their plaintext was taken: flush them.
    unflushed: bool,
    tls: Tls,
    connecting: Option<Connecting>,
    probes: JoinSet<(usize, ProbeResult)>,
    out: VecDeque<Bytes>,
    read_buf: BytesMut,
    /// When the task last read the clock: the moment of whatever woke it, which the turn
    /// after it uses too.
    clock: std::time::Instant,
}

/// Where the task hands results: the handles' channels, the state subscribers and the
/// callback task.
pub(crate) struct Out {
    subscribers: Vec<Subscriber>,
    callbacks: mpsc::UnboundedSender<Callback>,
    /// The session id the tracing span shows.
    span_session_id: i64,
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl Task {
    pub(crate) fn new(
        session: Session,
        commands: mpsc::UnboundedReceiver<Command>,
        snapshot: watch::Sender<Snapshot>,
        tls: Tls,
        callbacks: mpsc::UnboundedSender<Callback>,
    ) -> Task {
        Task {
            session,
            commands,
            commands_open: true,
            snapshot,
            core: Core::new(Out {
                subscribers: Vec::new(),
                callbacks,
                span_session_id: 0,
            }),
            reader: None,
            writer: None,
            unflushed: false,
            tls,
            connecting: None,
            probes: JoinSet::new(),
            out: VecDeque::new(),
            read_buf: BytesMut::with_capacity(READ_BUFFER),
            clock: now(),
        }
    }

    pub(crate) async fn run(mut self) {
        // One timer for the life of the task, moved when the session's deadline moves.
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        let timer = tokio::time::sleep_until(far);
        tokio::pin!(timer);
        let mut armed: Option<tokio::time::Instant> = None;
        loop {
            self.flush();
            if self.finished() {
                break;
            }
            let deadline = match (self.session.poll_timeout(), self.core.poll_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
            .map(tokio::time::Instant::from_std);
            if deadline != armed {
                timer.as_mut().reset(deadline.unwrap_or(far));
                armed = deadline;
            }
            // Biased: bytes that arrived are read before a deadline is acted on, so a busy
            // runtime that polls this task late does not mistake a live server for a dead
            // one.
            tokio::select! {
                biased;
                cmd = self.commands.recv(), if self.commands_open => match cmd {
                    Some(cmd) => {
                        self.command(cmd);
                        // Take every command already waiting, so their frames leave in one
                        // write when the loop comes round.
                        while let Ok(cmd) = self.commands.try_recv() {
                            self.command(cmd);
                        }
                    }
                    None => {
                        // Every handle is gone: close the session cleanly, once the hosted
                        // machines have cleaned up what they owe the server.
                        self.commands_open = false;
                        self.command(Command::Leave(None));
                    }
                },
                read = read_some(self.reader.as_mut(), &mut self.read_buf) => match read {
                    Ok(0) => {
                        debug!("connection closed by the server");
                        self.drop_socket();
                        let now = self.tick();
                        self.session.handle_disconnected(now, "closed by the server".into());
                    }
                    Ok(n) => {
                        trace!(bytes = n, "read");
                        let now = self.tick();
                        self.session.handle_input(now, &self.read_buf);
                        self.read_buf.clear();
                        if self.read_buf.capacity() < READ_BUFFER / 4 {
                            self.read_buf.reserve(READ_BUFFER);
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "read failed");
                        self.drop_socket();
                        let now = self.tick();
                        self.session.handle_disconnected(now, e.to_string());
                    }
                },
                written = write_some(self.writer.as_mut(), &mut self.out, &mut self.unflushed) => {
                    let now = self.tick();
                    if let Err(e) = written {
                        debug!(error = %e, "write failed");
                        self.drop_socket();
                        self.session.handle_disconnected(now, e.to_string());
                    }
                },
                connected = wait_connect(self.connecting.as_mut()) => {
                    self.connecting = None;
                    match connected {
                        Ok(stream) => {
                            info!(peer = ?stream.peer_addr().ok(), "connected");
                            let (r, w) = stream.split();
                            self.reader = Some(r);
                            self.writer = Some(w);
                            let now = self.tick();
                            self.session.handle_connected(now);
                        }
                        Err(e) => {
                            info!(error = %e, "connect failed");
                            let now = self.tick();
                            self.session.handle_connect_failed(now, e.to_string());
                        }
                    }
                },
                Some(probe) = self.probes.join_next(), if !self.probes.is_empty() => {
                    if let Ok((host, result)) = probe {
                        debug!(host, ?result, "read-only probe");
                        let now = self.tick();
                        self.session.handle_probe_result(now, host, result);
                    }
                },
                _ = &mut timer, if armed.is_some() => {
                    armed = None;
                    let now = self.tick();
                    self.session.handle_timeout(now);
                    self.core.handle_timeout(now);
                }
            }
        }
        self.core.end().for_each(drop);
        self.probes.abort_all();
        debug!("connection task ends");
    }

    /// Reads the clock, for what woke the task and the turn after it.
    fn tick(&mut self) -> std::time::Instant {
        self.clock = now();
        self.clock
    }

    /// The session is over and nothing more can happen.
    fn finished(&self) -> bool {
        self.session.is_finished() && self.out.is_empty()
    }

    fn drop_socket(&mut self) {
        self.reader = None;
        self.writer = None;
        self.unflushed = false;
        self.out.clear();
    }

    fn command(&mut self, cmd: Command) {
        if let Command::UpdateHosts(..) = cmd {
            info!("the host list changed");
        }
        let now = self.tick();
        self.core.command(&mut self.session, now, cmd);
    }

    /// Performs the session's actions, delivers its events (to the hosted machines first, in
    /// the order the socket gave them), lets the machines submit, and queues the frames,
    /// until nothing more happens.
    fn flush(&mut self) {
        let now = self.clock;
        loop {
            self.act();
            self.publish_snapshot();
            // Events go out after the snapshot moved: whoever hears of a state change and
            // then asks the handle sees that state or a later one, never an older session id.
            self.core.turn(&mut self.session, now);
            while let Some(bytes) = self.session.poll_transmit() {
                if self.writer.is_some() {
                    trace!(bytes = bytes.len(), "queued for writing");
                    self.out.push_back(bytes);
                }
            }
            // Once more only if the turn itself moved the session (a machine's request
            // refused at once, a close): delivering events changes nothing here.
            if !self.session.has_actions() && !self.session.has_events() {
                break;
            }
        }
        if let Some((slow, op, latency)) = self.core.slow(&self.session) {
            warn!(?op, ?latency, slow_so_far = slow, "slow request");
        }
    }

    /// Performs what the session asks of the connection.
    fn act(&mut self) {
        while let Some(action) = self.session.poll_action() {
            match action {
                Action::Connect { host, addr } => {
                    info!(host, %addr, "connecting");
                    self.drop_socket();
                    self.connecting = Some(Box::pin(open(addr, self.tls.clone())));
                }
                Action::Disconnect(reason) => {
                    info!(%reason, "disconnecting");
                    self.drop_socket();
                    self.connecting = None;
                }
                Action::Probe {
                    host,
                    addr,
                    deadline,
                } => {
                    let deadline = tokio::time::Instant::from_std(deadline);
                    let tls = self.tls.clone();
                    self.probes
                        .spawn(async move { (host, probe(addr, deadline, tls).await) });
                }
            }
        }
    }

    /// Moves the handle's view of the session.
    fn publish_snapshot(&mut self) {
        if let Some(snap) = self.core.snapshot(&self.session) {
            self.snapshot.send_replace(snap);
        }
    }
}

impl Deliver for Out {
    type Reply = Reply;
    type Watch = WatchSink;
    type Answer<T> = oneshot::Sender<T>;
    type Subscriber = Subscriber;

    fn answer<T>(to: oneshot::Sender<T>, value: T) {
        let _ = to.send(value);
    }

    fn subscribe(&mut self, subscriber: Self::Subscriber) {
        self.subscribers.push(subscriber);
    }

    fn reply(
        &mut self,
        to: Reply,
        id: RequestId,
        result: Result<Response, session::Error>,
    ) -> bool {
        to.send((id, result)).is_ok()
    }

    fn watch_event(&mut self, sink: &mut WatchSink, event: WatchedEvent, _last: bool) -> bool {
        match sink {
            WatchSink::Stream(tx) => tx.send(event).is_ok(),
            WatchSink::Once(tx) => tx.take().is_some_and(|tx| tx.send(event).is_ok()),
            WatchSink::Callback(f) => post(&self.callbacks, f, event),
        }
    }

    fn state(&mut self, event: Event, session: &Session) {
        let event = match event {
            Event::State { state, reason } => {
                let id = session.session_id();
                if id != self.span_session_id {
                    self.span_session_id = id;
                    tracing::Span::current().record("session_id", format!("{id:#x}"));
                }
                match &reason {
                    Some(r) => info!(?state, reason = %r, "session state"),
                    None => info!(?state, "session state"),
                }
                StateEvent::Session(state)
            }
            Event::App(app) => {
                if app == AppState::Lost && session.state() != SessionState::Closed {
                    warn!(state = ?session.state(), "session lost");
                }
                StateEvent::App(app)
            }
            _ => return,
        };
        let callbacks = &self.callbacks;
        self.subscribers.retain(|s| match s {
            Subscriber::Channel(tx) => tx.send(event).is_ok(),
            Subscriber::Listener(f) => post(callbacks, f, event),
        });
    }
}

async fn read_some(reader: Option<&mut Reader>, buf: &mut BytesMut) -> io::Result<usize> {
    match reader {
        Some(Reader::Tcp(r)) => r.read_buf(buf).await,
        #[cfg(feature = "tls")]
        Some(Reader::Tls(r)) => r.read_buf(buf).await,
        None => std::future::pending().await,
    }
}

/// Writes from the oldest queued buffer; `write_buf` is cancel-safe, so progress is never
/// lost when another branch wins. Over TLS, rustls may keep records that did not fit in the
/// socket: once the queue is empty they are flushed (also cancel-safe).
async fn write_some(
    writer: Option<&mut Writer>,
    out: &mut VecDeque<Bytes>,
    unflushed: &mut bool,
) -> io::Result<()> {
    let Some(w) = writer else {
        return std::future::pending().await;
    };
    let Some(front) = out.front_mut() else {
        if *unflushed {
            #[cfg(feature = "tls")]
            if let Writer::Tls(w) = w {
                w.flush().await?;
            }
            *unflushed = false;
            return Ok(());
        }
        return std::future::pending().await;
    };
    let n = match w {
        Writer::Tcp(w) => w.write_buf(front).await?,
        #[cfg(feature = "tls")]
        Writer::Tls(w) => {
            *unflushed = true;
            w.write_buf(front).await?
        }
    };
    if n == 0 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    if front.is_empty() {
        out.pop_front();
    }
    Ok(())
}

async fn wait_connect(connecting: Option<&mut Connecting>) -> io::Result<Stream> {
    match connecting {
        Some(c) => c.await,
        None => std::future::pending().await,
    }
}

/// Connects to `addr` and, with TLS settings, completes a handshake: the session hears of
/// the connection only once bytes can flow. A failed handshake reads as a failed connect,
/// with its cause in words.
async fn open(addr: HostAddr, tls: Tls) -> io::Result<Stream> {
    let tcp = connect(&addr).await?;
    #[cfg(feature = "tls")]
    if let Some(tls) = tls {
        let name = tls
            .server_name(&addr.host)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let connector = tokio_rustls::TlsConnector::from(tls.config().clone());
        return match connector.connect(name, tcp).await {
            Ok(stream) => Ok(Stream::Tls(Box::new(stream))),
            Err(e) => Err(io::Error::new(
                e.kind(),
                zk_client::tls::describe_handshake_error(&e),
            )),
        };
    }
    #[cfg(not(feature = "tls"))]
    let NoTls = tls;
    Ok(Stream::Tcp(tcp))
}

/// Resolves the host now (addresses may change between attempts) and connects to the first
/// address that answers.
async fn connect(addr: &HostAddr) -> io::Result<TcpStream> {
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{addr} resolves to no address"),
    );
    for a in tokio::net::lookup_host(addr.to_string()).await? {
        match TcpStream::connect(a).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Asks `addr` whether it serves read-write (`isro` answers `rw` or `ro`), over TLS when the
/// client uses it, giving up at the session's deadline.
async fn probe(addr: HostAddr, deadline: tokio::time::Instant, tls: Tls) -> ProbeResult {
    let ask = async {
        match open(addr, tls).await? {
            Stream::Tcp(mut s) => ask_isro(&mut s).await,
            #[cfg(feature = "tls")]
            Stream::Tls(mut s) => ask_isro(&mut *s).await,
        }
    };
    match tokio::time::timeout_at(deadline, ask).await {
        Ok(Ok(answer)) => ProbeResult::from_answer(&answer),
        _ => ProbeResult::Unreachable,
    }
}

/// Sends `isro` and reads the answer up to the server's close. A TLS server may close
/// without a `close_notify`, which ends the answer as well as a clean close does.
async fn ask_isro<S>(stream: &mut S) -> io::Result<Vec<u8>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(ProbeResult::QUESTION).await?;
    stream.flush().await?;
    let mut answer = Vec::with_capacity(4);
    let mut buf = [0u8; 16];
    while answer.len() < 16 {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) if !answer.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(answer)
}
