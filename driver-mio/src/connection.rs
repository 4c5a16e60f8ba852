//! A ZooKeeper connection that lives in the caller's own `mio::Poll`. It moves bytes between
//! non-blocking sockets and the `zk-proto` session; every protocol decision is the session's.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use tracing::{debug, info, trace, warn};
use zk_proto::records::Request;
use zk_proto::session::{Action, Config, Error, Event, HostAddr, ProbeResult, RequestId, Session};

/// Turns a host from the connect string into socket addresses. The default,
/// [`blocking_resolver`], uses the system resolver and blocks while it works.
pub type Resolver = Box<dyn FnMut(&HostAddr) -> io::Result<Vec<SocketAddr>> + Send>;

/// The default resolver: `ToSocketAddrs`, which blocks the calling thread while the system
/// resolves a name (not at all for IP addresses). Supply your own with
/// [`Connection::with_resolver`] if names must not block your loop.
pub fn blocking_resolver() -> Resolver {
    Box::new(|host: &HostAddr| Ok((host.host.as_str(), host.port).to_socket_addrs()?.collect()))
}

const READ_CHUNK: usize = 64 * 1024;

/// The TLS settings of a connection (with the `tls` feature).
#[cfg(feature = "tls")]
type Tls = Option<zk_client::tls::TlsOptions>;
/// Without the `tls` feature there is nothing to configure.
#[cfg(not(feature = "tls"))]
type Tls = NoTls;

/// Stands for TLS settings and state in a build without the `tls` feature.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Default, Clone, Copy)]
struct NoTls;

/// rustls' client state machine over one socket, when the client speaks TLS.
#[cfg(feature = "tls")]
type TlsConn = Option<Box<rustls::ClientConnection>>;
#[cfg(not(feature = "tls"))]
type TlsConn = NoTls;

struct Sock {
    stream: TcpStream,
    /// The TCP connection is established.
    connected: bool,
    /// The session was told the connection is up: at once over TCP, after the handshake over
    /// TLS. Frames are queued only from then on.
    ready: bool,
    tls: TlsConn,
    /// The host being connected to, and its addresses still to try if this one fails.
    host: HostAddr,
    candidates: Vec<SocketAddr>,
    out: VecDeque<Bytes>,
    /// Registered for writable events: while connecting, and while output waits for room.
    /// An established, drained socket listens for reads only, so writes cause no events.
    want_write: bool,
    /// Another thread reads this socket (see [`Connection::direct_fd`]): the `Poll` is not
    /// told when it is readable.
    reads_paused: bool,
}

struct Probe {
    host: usize,
    stream: TcpStream,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    tls: TlsConn,
    sent: bool,
    answer: Vec<u8>,
    deadline: Instant,
}

/// One ZooKeeper session over successive TCP connections, registered in your `Poll` under
/// your `Token`.
///
/// Call [`Connection::handle_event`] for every event with that token,
/// [`Connection::handle_timeout`] when [`Connection::poll_timeout`] passes, and drain
/// [`Connection::poll_event`] after each. Nothing here blocks, except name resolution with
/// the default resolver.
///
/// ```no_run
/// use std::time::Instant;
/// use mio::{Events, Poll, Token};
/// use zk_mio::records::{GetDataRequest, Request};
/// use zk_mio::{Config, Connection, Event};
///
/// let mut poll = Poll::new()?;
/// let mut zk = Connection::new(Config::new("127.0.0.1:2181")?, poll.registry(), Token(7), Instant::now())?;
/// let id = zk.submit(Instant::now(), Request::GetData(GetDataRequest { path: "/".into(), watch: false }))?;
/// let mut events = Events::with_capacity(64);
/// loop {
///     poll.poll(&mut events, zk.timeout(Instant::now()))?;
///     let now = Instant::now();
///     for event in events.iter() {
///         if event.token() == Token(7) {
///             zk.handle_event(event, now);
///         } // ... your other sources ...
///     }
///     zk.handle_timeout(now);
///     while let Some(event) = zk.poll_event() {
///         if let Event::Complete { id: done, result, .. } = event {
///             if done == id {
///                 println!("{result:?}");
///                 return Ok(());
///             }
///         }
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Connection {
    session: Session,
    registry: Registry,
    token: Token,
    resolver: Resolver,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    tls: Tls,
    sock: Option<Sock>,
    generation: u64,
    probes: Vec<Probe>,
    /// Slow requests already logged.
    slow_logged: u64,
    /// The span every event of this connection is logged in: hosts, then the session id.
    span: tracing::Span,
    span_session: i64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("token", &self.token)
            .field("state", &self.session.state())
            .field("session_id", &self.session.session_id())
            .finish()
    }
}

/// `config` with a seed from the operating system unless it was given one: loops built by
/// hand then spread over the hosts, as the clients do, instead of all taking seed 0.
fn seeded(config: Config) -> io::Result<Config> {
    if config.seed().is_some() {
        return Ok(config);
    }
    let seed = crate::os::OS
        .u64()
        .map_err(|e| io::Error::other(e.to_string()))?;
    Ok(config.with_seed(seed))
}

impl Connection {
    /// A session on `config`'s hosts; its sockets are registered in `registry` under
    /// `token`. The first connection attempt starts at once. Without
    /// [`Config::with_seed`], the session's random choices (host order, ping jitter,
    /// backoff) are seeded from the operating system.
    pub fn new(
        config: Config,
        registry: &Registry,
        token: Token,
        now: Instant,
    ) -> io::Result<Self> {
        Self::with_resolver(config, registry, token, now, blocking_resolver())
    }

    /// Like [`Connection::new`], resolving hosts with `resolver`.
    pub fn with_resolver(
        config: Config,
        registry: &Registry,
        token: Token,
        now: Instant,
        resolver: Resolver,
    ) -> io::Result<Self> {
        Self::from_parts(
            Session::new(seeded(config)?, now),
            registry,
            token,
            now,
            resolver,
            Default::default(),
        )
    }

    /// Like [`Connection::new`], speaking TLS to every server (their `secureClientPort`s)
    /// with `tls`: each connection and read-only probe does a handshake first, inside the
    /// same `Poll`, and the session hears of a connection only once it is done. A failed
    /// handshake counts as a failed connection attempt, its cause in words among the
    /// session's connect failures.
    #[cfg(feature = "tls")]
    pub fn with_tls(
        config: Config,
        registry: &Registry,
        token: Token,
        now: Instant,
        tls: zk_client::tls::TlsOptions,
    ) -> io::Result<Self> {
        Self::from_parts(
            Session::new(seeded(config)?, now),
            registry,
            token,
            now,
            blocking_resolver(),
            Some(tls),
        )
    }

    /// A connection driving an already configured `session` (for example one built from
    /// [`zk_client::ClientOptions`]), with the blocking resolver.
    pub fn from_session(session: Session, registry: &Registry, token: Token) -> io::Result<Self> {
        Self::from_parts(
            session,
            registry,
            token,
            Instant::now(),
            blocking_resolver(),
            Default::default(),
        )
    }

    /// Like [`Connection::from_session`], over TLS (see [`Connection::with_tls`]).
    #[cfg(feature = "tls")]
    pub fn from_session_with_tls(
        session: Session,
        registry: &Registry,
        token: Token,
        tls: zk_client::tls::TlsOptions,
    ) -> io::Result<Self> {
        Self::from_parts(
            session,
            registry,
            token,
            Instant::now(),
            blocking_resolver(),
            Some(tls),
        )
    }

    fn from_parts(
        session: Session,
        registry: &Registry,
        token: Token,
        now: Instant,
        resolver: Resolver,
        tls: Tls,
    ) -> io::Result<Self> {
        let mut c = Connection {
            session,
            registry: registry.try_clone()?,
            token,
            resolver,
            tls,
            sock: None,
            generation: 0,
            probes: Vec::new(),
            slow_logged: 0,
            span: tracing::Span::none(),
            span_session: 0,
        };
        let hosts: Vec<String> = c.session.hosts().iter().map(|h| h.to_string()).collect();
        c.span = tracing::info_span!(
            "zk_session",
            hosts = %hosts.join(","),
            session_id = tracing::field::Empty
        );
        c.drive(now);
        Ok(c)
    }

    /// The token this connection's sockets are registered under.
    pub fn token(&self) -> Token {
        self.token
    }

    /// The session, to read its state, id, timeouts and watches.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session is over for good (closed, refused the credentials, or expired without
    /// renewal), every event was taken with [`Connection::poll_event`] and nothing is left
    /// to write: the loop can deregister this connection and forget it.
    pub fn is_finished(&self) -> bool {
        self.session.is_finished() && self.sock.as_ref().is_none_or(|s| s.out.is_empty())
    }

    /// Queues an operation; its outcome comes back as one [`Event::Complete`]. Its bytes go
    /// out when the loop next asks [`Connection::timeout`] how long it may sleep (or at
    /// once with [`Connection::flush`]), so everything submitted in one turn of the loop
    /// leaves in one write, and no readiness registration changes per request.
    pub fn submit(&mut self, now: Instant, request: Request) -> Result<RequestId, Error> {
        self.session.submit(now, request)
    }

    /// Writes everything queued now, without waiting for the next event.
    pub fn flush(&mut self, now: Instant) {
        self.drive(now);
    }

    /// Adds credentials to the session, on this and every later connection.
    pub fn add_auth(
        &mut self,
        now: Instant,
        scheme: &str,
        credentials: Bytes,
    ) -> Result<RequestId, Error> {
        let id = self.session.add_auth(now, scheme, credentials)?;
        self.drive(now);
        Ok(id)
    }

    /// Forgets a watch, removing the server's copy when nothing else needs it.
    pub fn release_watch(&mut self, now: Instant, watch: RequestId) {
        self.session.release_watch(now, watch);
        self.drive(now);
    }

    /// Replaces the servers the session may use, as after a reconfiguration; returns whether
    /// the session moves (see [`Session::update_hosts`]).
    pub fn update_hosts(&mut self, now: Instant, hosts: zk_proto::session::HostList) -> bool {
        let moves = self.session.update_hosts(now, hosts);
        self.drive(now);
        moves
    }

    /// Closes the session; [`Event::State`] with `Closed` follows.
    pub fn close(&mut self, now: Instant) {
        self.session.close(now);
        self.drive(now);
    }

    /// The next event: completions, watch events, state changes.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.session.poll_event()
    }

    /// The earliest moment [`Connection::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // Every timer is the session's, the probes' deadlines included.
        self.session.poll_timeout()
    }

    /// Writes what this turn of the loop queued, then says how long the loop may sleep:
    /// [`Connection::poll_timeout`] as the timeout argument of `Poll::poll`. A loop that
    /// sleeps on [`Connection::poll_timeout`] instead calls [`Connection::flush`] first.
    pub fn timeout(&mut self, now: Instant) -> Option<Duration> {
        self.drive(now);
        self.poll_timeout()
            .map(|t| t.saturating_duration_since(now))
    }

    /// Handles an event of this connection's token.
    pub fn handle_event(&mut self, _event: &mio::event::Event, now: Instant) {
        // Several sockets share the token, and readiness is edge-triggered: give every one
        // of them a chance; whatever has nothing to do answers WouldBlock.
        self.kick(now);
    }

    /// The socket a thread outside the loop may wait on with `poll(2)` and then read with
    /// [`Connection::read_direct`], with the generation that names it: only while the
    /// session is connected read-write over an established link with no probes running.
    /// The loop must not read the socket meanwhile ([`Connection::set_read_events`]).
    #[cfg(target_os = "linux")]
    pub(crate) fn direct_fd(&self) -> Option<(std::os::fd::RawFd, u64)> {
        use std::os::fd::AsRawFd;
        if self.session.state() != zk_proto::session::SessionState::Connected
            || !self.probes.is_empty()
        {
            return None;
        }
        let sock = self.sock.as_ref().filter(|s| s.ready)?;
        Some((sock.stream.as_raw_fd(), self.generation))
    }

    /// The socket's generation: it changes whenever the socket is dropped or replaced.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Stops (`false`) or restarts (`true`) readable events of the current socket in the
    /// loop's `Poll`, keeping writable ones. Restarting reports data already waiting.
    #[cfg(target_os = "linux")]
    pub(crate) fn set_read_events(&mut self, on: bool) {
        if let Some(sock) = self.sock.as_mut()
            && sock.reads_paused == on
        {
            sock.reads_paused = !on;
            self.apply_interest();
        }
    }

    /// The loop is not told when the current socket is readable.
    #[cfg(target_os = "linux")]
    pub(crate) fn reads_paused(&self) -> bool {
        self.sock.as_ref().is_some_and(|s| s.reads_paused)
    }

    /// Reads what the established socket holds and acts on it, as an event of the loop
    /// would, on a thread outside the loop ([`Connection::direct_fd`]).
    #[cfg(target_os = "linux")]
    pub(crate) fn read_direct(&mut self, now: Instant) {
        let span = self.span.clone();
        let _entered = span.enter();
        match self.sock.as_ref() {
            Some(s) if s.connected && !tls_active(&s.tls) => {
                // A buffer on the stack, never initialised: the caller's thread keeps no
                // read buffer, and only the pages the kernel writes are touched.
                let mut buf = [MaybeUninit::<u8>::uninit(); 16 * 1024];
                self.read_plain(now, &mut buf);
            }
            Some(s) if s.connected => self.read_ready(now),
            _ => {}
        }
        self.drive(now);
    }

    /// Looks at every socket once, as if each had an event.
    pub(crate) fn kick(&mut self, now: Instant) {
        let span = self.span.clone();
        let _entered = span.enter();
        self.progress_sock(now);
        self.progress_probes(now);
        self.drive(now);
    }

    /// Lets time pass: pings, timeouts, reconnects, probes.
    pub fn handle_timeout(&mut self, now: Instant) {
        let span = self.span.clone();
        let _entered = span.enter();
        self.session.handle_timeout(now);
        self.progress_probes(now);
        self.drive(now);
    }

    // ----- the session's actions -----

    fn drive(&mut self, now: Instant) {
        let span = self.span.clone();
        let _entered = span.enter();
        loop {
            let generation = self.generation;
            let mut acted = false;
            while let Some(action) = self.session.poll_action() {
                acted = true;
                match action {
                    Action::Connect { host, addr } => self.start_connect(now, host, &addr),
                    Action::Disconnect(reason) => {
                        info!(%reason, "disconnecting");
                        self.drop_sock();
                    }
                    Action::Probe {
                        host,
                        addr,
                        deadline,
                    } => self.start_probe(now, host, &addr, deadline),
                }
            }
            while let Some(bytes) = self.session.poll_transmit() {
                if let Some(sock) = self.sock.as_mut().filter(|s| s.ready) {
                    trace!(bytes = bytes.len(), "queued for writing");
                    sock.out.push_back(bytes);
                }
            }
            self.write_out(now);
            // A failed write drops the socket and gives the session something new to decide.
            if !acted && generation == self.generation {
                break;
            }
        }
        if let (slow, Some((op, latency))) = self.session.slow_requests()
            && slow > self.slow_logged
        {
            warn!(?op, ?latency, slow_so_far = slow, "slow request");
            self.slow_logged = slow;
        }
        if self.session.session_id() != self.span_session {
            self.span_session = self.session.session_id();
            self.span
                .record("session_id", format!("{:#x}", self.span_session));
        }
    }

    fn drop_sock(&mut self) {
        if let Some(mut sock) = self.sock.take() {
            let _ = self.registry.deregister(&mut sock.stream);
            // Wakes any thread blocked in `poll(2)` on this socket (see
            // `Connection::direct_fd`); closing alone would leave it asleep.
            let _ = sock.stream.shutdown(std::net::Shutdown::Both);
        }
        self.generation += 1;
    }

    fn start_connect(&mut self, now: Instant, host: usize, addr: &HostAddr) {
        self.drop_sock();
        info!(host, %addr, "connecting");
        match (self.resolver)(addr) {
            Ok(addrs) if !addrs.is_empty() => self.try_addrs(now, addr, addrs),
            Ok(_) => self
                .session
                .handle_connect_failed(now, format!("{addr} resolves to no address")),
            Err(e) => self
                .session
                .handle_connect_failed(now, format!("cannot resolve {addr}: {e}")),
        }
    }

    fn try_addrs(&mut self, now: Instant, host: &HostAddr, mut addrs: Vec<SocketAddr>) {
        addrs.reverse();
        let mut last = String::from("no address");
        while let Some(a) = addrs.pop() {
            let tls = match self.start_tls(host) {
                Ok(tls) => tls,
                Err(e) => {
                    self.session.handle_connect_failed(now, e);
                    return;
                }
            };
            match TcpStream::connect(a) {
                Ok(mut stream) => {
                    match self.registry.register(
                        &mut stream,
                        self.token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        Ok(()) => {
                            self.sock = Some(Sock {
                                stream,
                                connected: false,
                                ready: false,
                                tls,
                                host: host.clone(),
                                candidates: addrs,
                                out: VecDeque::new(),
                                want_write: true,
                                reads_paused: false,
                            });
                            return;
                        }
                        Err(e) => last = e.to_string(),
                    }
                }
                Err(e) => last = format!("{a}: {e}"),
            }
        }
        self.session.handle_connect_failed(now, last);
    }

    // ----- the session socket -----

    fn progress_sock(&mut self, now: Instant) {
        let Some(sock) = self.sock.as_mut() else {
            return;
        };
        if !sock.connected {
            let failed = match sock.stream.take_error() {
                Ok(Some(e)) | Err(e) => Some(e),
                Ok(None) => match sock.stream.peer_addr() {
                    Ok(_) => None,
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                    Err(e) => Some(e),
                },
            };
            if let Some(e) = failed {
                debug!(error = %e, "connect failed");
                let candidates = std::mem::take(&mut sock.candidates);
                let host = sock.host.clone();
                self.drop_sock();
                if candidates.is_empty() {
                    self.session.handle_connect_failed(now, e.to_string());
                } else {
                    self.try_addrs(now, &host, candidates);
                }
                return;
            }
            sock.connected = true;
            let _ = sock.stream.set_nodelay(true);
            info!(peer = ?sock.stream.peer_addr().ok(), "connected");
            if !tls_active(&sock.tls) {
                sock.ready = true;
                self.session.handle_connected(now);
                self.drive(now);
            } else {
                // The ClientHello goes out now; the session waits for the handshake.
                self.write_out(now);
            }
        }
        self.read_ready(now);
    }

    /// A TLS client state for a connection to `host`, when the client speaks TLS.
    #[cfg(feature = "tls")]
    fn start_tls(&self, host: &HostAddr) -> Result<TlsConn, String> {
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        let name = tls.server_name(&host.host).map_err(|e| e.to_string())?;
        rustls::ClientConnection::new(tls.config().clone(), name)
            .map(|c| Some(Box::new(c)))
            .map_err(|e| zk_client::tls::describe_tls_error(&e))
    }

    #[cfg(not(feature = "tls"))]
    fn start_tls(&self, _host: &HostAddr) -> Result<TlsConn, String> {
        Ok(NoTls)
    }

    /// The connection failed before or during the TLS handshake, or broke after it.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    fn sock_failed(&mut self, now: Instant, ready: bool, why: String) {
        self.drop_sock();
        if ready {
            self.session.handle_disconnected(now, why);
        } else {
            self.session.handle_connect_failed(now, why);
        }
    }

    fn read_ready(&mut self, now: Instant) {
        // One read buffer per thread, shared by every connection the thread drives: the
        // bytes are copied into the session at once, so a loop with many sessions needs one.
        thread_local! {
            static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let mut buf = READ_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
        if buf.len() < READ_CHUNK {
            buf = vec![0; READ_CHUNK];
        }
        self.read_into(now, &mut buf);
        READ_BUF.with(|b| *b.borrow_mut() = buf);
    }

    fn read_into(&mut self, now: Instant, buf: &mut [u8]) {
        #[cfg(feature = "tls")]
        if self.sock.as_ref().is_some_and(|s| s.tls.is_some()) {
            self.read_tls(now, buf);
            return;
        }
        // SAFETY: only bytes are ever written through the view, so `buf` stays initialised.
        let view = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
        self.read_plain(now, view);
    }

    /// Reads a plain TCP socket into `buf` (which need not be initialised: only what the
    /// kernel wrote is looked at) until it is empty, handing the bytes to the session.
    fn read_plain(&mut self, now: Instant, buf: &mut [MaybeUninit<u8>]) {
        let generation = self.generation;
        loop {
            let Some(sock) = self.sock.as_mut().filter(|s| s.connected) else {
                return;
            };
            match recv(&mut sock.stream, buf) {
                Ok(0) => {
                    debug!("connection closed by the server");
                    self.drop_sock();
                    self.session
                        .handle_disconnected(now, "closed by the server".into());
                    return;
                }
                Ok(n) => {
                    trace!(bytes = n, "read");
                    // SAFETY: the kernel initialised the first `n` bytes.
                    let read = unsafe { &*(&buf[..n] as *const [MaybeUninit<u8>] as *const [u8]) };
                    self.session.handle_input(now, read);
                    self.drive(now);
                    // A short read emptied the socket: the next bytes bring a new readiness
                    // edge, so asking again would only return WouldBlock.
                    if self.generation != generation || n < buf.len() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!(error = %e, "read failed");
                    self.drop_sock();
                    self.session.handle_disconnected(now, e.to_string());
                    return;
                }
            }
        }
    }

    /// Reads TLS records until the socket would block, completing the handshake on the way
    /// and handing the plaintext to the session.
    #[cfg(feature = "tls")]
    fn read_tls(&mut self, now: Instant, buf: &mut [u8]) {
        let generation = self.generation;
        loop {
            let Some(sock) = self.sock.as_mut().filter(|s| s.connected) else {
                return;
            };
            let ready = sock.ready;
            let Some(tls) = sock.tls.as_mut() else {
                return;
            };
            match tls.read_tls(&mut sock.stream) {
                Ok(0) => {
                    debug!("connection closed by the server");
                    let why = if ready {
                        "closed by the server".to_string()
                    } else {
                        zk_client::tls::describe_handshake_error(&io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "closed during the handshake",
                        ))
                    };
                    self.sock_failed(now, ready, why);
                    return;
                }
                Ok(n) => trace!(bytes = n, "read TLS"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!(error = %e, "read failed");
                    self.sock_failed(now, ready, e.to_string());
                    return;
                }
            }
            if let Err(e) = tls.process_new_packets() {
                // rustls queued an alert for the server: send it on the way out.
                let _ = tls.write_tls(&mut sock.stream);
                let why = zk_client::tls::describe_tls_error(&e);
                debug!(%why, "TLS failed");
                self.sock_failed(now, ready, why);
                return;
            }
            if !ready && !tls.is_handshaking() {
                sock.ready = true;
                info!(version = ?tls.protocol_version(), "TLS handshake done");
                self.session.handle_connected(now);
                self.drive(now);
                if self.generation != generation {
                    return;
                }
            }
            // Hand over every plaintext byte the records carried.
            loop {
                let Some(tls) = self.sock.as_mut().and_then(|s| s.tls.as_mut()) else {
                    return;
                };
                match tls.reader().read(buf) {
                    Ok(0) => {
                        // The server's close_notify: a clean close.
                        self.sock_failed(now, true, "closed by the server".into());
                        return;
                    }
                    Ok(n) => {
                        self.session.handle_input(now, &buf[..n]);
                        self.drive(now);
                        if self.generation != generation {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        self.sock_failed(now, true, e.to_string());
                        return;
                    }
                }
            }
            // Handshake messages, alerts and key updates answer at once.
            self.write_out(now);
            if self.generation != generation {
                return;
            }
        }
    }

    /// Writes what is queued until the socket would block, and listens for room to write
    /// exactly while something is left.
    fn write_out(&mut self, now: Instant) {
        #[cfg(feature = "tls")]
        if self.sock.as_ref().is_some_and(|s| s.tls.is_some()) {
            self.write_tls(now);
        } else {
            self.write_plain(now);
        }
        #[cfg(not(feature = "tls"))]
        self.write_plain(now);
        let Some(sock) = self.sock.as_mut().filter(|s| s.connected) else {
            return;
        };
        let pending = !sock.out.is_empty() || tls_wants_write(&sock.tls);
        if pending != sock.want_write {
            sock.want_write = pending;
            self.apply_interest();
        }
    }

    /// Tells the `Poll` what the current socket waits for.
    fn apply_interest(&mut self) {
        let Some(sock) = self.sock.as_mut() else {
            return;
        };
        if sock.reads_paused {
            #[cfg(target_os = "linux")]
            {
                use std::os::fd::AsRawFd;
                // mio cannot register for nothing; the registration stays mio's (same
                // token, edge-triggered), only without readable events.
                // A server's close still wakes the loop, whoever reads.
                let mut flags = libc::EPOLLET | libc::EPOLLRDHUP;
                if sock.want_write {
                    flags |= libc::EPOLLOUT;
                }
                let mut ev = libc::epoll_event {
                    events: flags as u32,
                    u64: self.token.0 as u64,
                };
                // SAFETY: both descriptors are open (the registry's and the socket's, which
                // is registered in it), and `ev` is a valid event for the call.
                unsafe {
                    libc::epoll_ctl(
                        self.registry.as_raw_fd(),
                        libc::EPOLL_CTL_MOD,
                        sock.stream.as_raw_fd(),
                        &mut ev,
                    );
                }
            }
        } else {
            let interest = if sock.want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = self
                .registry
                .reregister(&mut sock.stream, self.token, interest);
        }
    }

    fn write_plain(&mut self, now: Instant) {
        let Some(sock) = self.sock.as_mut().filter(|s| s.connected) else {
            return;
        };
        while let Some(front) = sock.out.front_mut() {
            match sock.stream.write(front) {
                Ok(0) => break,
                Ok(n) => {
                    front.advance(n);
                    if front.is_empty() {
                        sock.out.pop_front();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!(error = %e, "write failed");
                    self.drop_sock();
                    self.session.handle_disconnected(now, e.to_string());
                    return;
                }
            }
        }
    }

    /// Moves queued frames into rustls and its records into the socket until either is
    /// done or the socket would block.
    #[cfg(feature = "tls")]
    fn write_tls(&mut self, now: Instant) {
        let Some(sock) = self.sock.as_mut().filter(|s| s.connected) else {
            return;
        };
        let ready = sock.ready;
        let Some(tls) = sock.tls.as_mut() else {
            return;
        };
        loop {
            while let Some(front) = sock.out.front_mut() {
                match tls.writer().write(front) {
                    Ok(0) => break,
                    Ok(n) => {
                        front.advance(n);
                        if front.is_empty() {
                            sock.out.pop_front();
                        }
                    }
                    Err(_) => break,
                }
            }
            if !tls.wants_write() {
                return;
            }
            match tls.write_tls(&mut sock.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!(error = %e, "write failed");
                    self.sock_failed(now, ready, e.to_string());
                    return;
                }
            }
        }
    }

    // ----- read-only probes -----

    fn start_probe(&mut self, now: Instant, host: usize, addr: &HostAddr, deadline: Instant) {
        let result = (self.resolver)(addr).and_then(|addrs| {
            let a = addrs
                .first()
                .copied()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
            let mut stream = TcpStream::connect(a)?;
            self.registry.register(
                &mut stream,
                self.token,
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(stream)
        });
        let tls = self.start_tls(addr);
        match (result, tls) {
            (Ok(stream), Ok(tls)) => self.probes.push(Probe {
                host,
                stream,
                tls,
                sent: false,
                answer: Vec::new(),
                deadline,
            }),
            _ => self
                .session
                .handle_probe_result(now, host, ProbeResult::Unreachable),
        }
    }

    fn progress_probes(&mut self, now: Instant) {
        let mut finished = Vec::new();
        for (i, p) in self.probes.iter_mut().enumerate() {
            if let Some(result) = probe_step(p, now) {
                finished.push((i, result));
            }
        }
        for (i, result) in finished.into_iter().rev() {
            let mut p = self.probes.swap_remove(i);
            let _ = self.registry.deregister(&mut p.stream);
            debug!(host = p.host, ?result, "read-only probe");
            self.session.handle_probe_result(now, p.host, result);
        }
    }
}

/// The connection speaks TLS.
#[cfg(feature = "tls")]
fn tls_active(tls: &TlsConn) -> bool {
    tls.is_some()
}

#[cfg(not(feature = "tls"))]
fn tls_active(_tls: &TlsConn) -> bool {
    false
}

/// `read(2)` into a buffer that need not be initialised; the count of bytes written.
#[cfg(target_os = "linux")]
fn recv(stream: &mut TcpStream, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: the pointer and length describe `buf`, which the call only writes to.
    let n = unsafe { libc::recv(stream.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `read(2)` into a buffer that need not be initialised; the count of bytes written.
#[cfg(not(target_os = "linux"))]
fn recv(stream: &mut TcpStream, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    buf.fill(MaybeUninit::new(0));
    // SAFETY: every byte was just initialised.
    let buf = unsafe { &mut *(buf as *mut [MaybeUninit<u8>] as *mut [u8]) };
    stream.read(buf)
}

#[cfg(feature = "tls")]
fn tls_wants_write(tls: &TlsConn) -> bool {
    tls.as_ref().is_some_and(|t| t.wants_write())
}

#[cfg(not(feature = "tls"))]
fn tls_wants_write(_tls: &TlsConn) -> bool {
    false
}

/// Advances one `isro` probe; `Some` once it has an answer or gave up.
fn probe_step(p: &mut Probe, now: Instant) -> Option<ProbeResult> {
    if now >= p.deadline {
        return Some(ProbeResult::Unreachable);
    }
    #[cfg(feature = "tls")]
    if let Some(tls) = p.tls.as_mut() {
        return probe_step_tls(tls, &mut p.stream, &mut p.sent, &mut p.answer);
    }
    if !p.sent {
        match p.stream.write(ProbeResult::QUESTION) {
            Ok(4) => p.sent = true,
            Ok(_) => return Some(ProbeResult::Unreachable),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return None,
            Err(_) => return Some(ProbeResult::Unreachable),
        }
    }
    let mut buf = [0u8; 16];
    loop {
        match p.stream.read(&mut buf) {
            Ok(0) => return Some(ProbeResult::from_answer(&p.answer)),
            Ok(n) => {
                p.answer.extend_from_slice(&buf[..n]);
                if p.answer.len() >= 2 {
                    return Some(ProbeResult::from_answer(&p.answer));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Some(ProbeResult::Unreachable),
        }
    }
}

/// Advances one `isro` probe over TLS: the question waits in rustls until the handshake is
/// done; a server that closes without `close_notify` after answering still answered.
#[cfg(feature = "tls")]
fn probe_step_tls(
    tls: &mut rustls::ClientConnection,
    stream: &mut TcpStream,
    sent: &mut bool,
    answer: &mut Vec<u8>,
) -> Option<ProbeResult> {
    if !*sent {
        if tls.writer().write_all(ProbeResult::QUESTION).is_err() {
            return Some(ProbeResult::Unreachable);
        }
        *sent = true;
    }
    loop {
        while tls.wants_write() {
            match tls.write_tls(stream) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected
                    ) =>
                {
                    break;
                }
                Err(_) => return Some(ProbeResult::Unreachable),
            }
        }
        match tls.read_tls(stream) {
            Ok(0) => return Some(ProbeResult::from_answer(answer)),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected
                ) =>
            {
                return None;
            }
            Err(_) => return Some(ProbeResult::from_answer(answer)),
        }
        if tls.process_new_packets().is_err() {
            return Some(ProbeResult::Unreachable);
        }
        let mut buf = [0u8; 16];
        loop {
            match tls.reader().read(&mut buf) {
                Ok(0) => return Some(ProbeResult::from_answer(answer)),
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.len() >= 2 {
                        return Some(ProbeResult::from_answer(answer));
                    }
                }
                Err(_) => break,
            }
        }
    }
}

impl zk_client::driver::Link for Connection {
    fn session(&self) -> &Session {
        Connection::session(self)
    }

    fn poll_event(&mut self) -> Option<Event> {
        Connection::poll_event(self)
    }

    fn submit(&mut self, now: Instant, request: Request) -> Result<RequestId, Error> {
        Connection::submit(self, now, request)
    }

    fn release_watch(&mut self, now: Instant, id: RequestId) {
        Connection::release_watch(self, now, id)
    }

    fn add_auth(
        &mut self,
        now: Instant,
        scheme: &str,
        credentials: Bytes,
    ) -> Result<RequestId, Error> {
        Connection::add_auth(self, now, scheme, credentials)
    }

    fn update_hosts(&mut self, now: Instant, hosts: zk_proto::session::HostList) -> bool {
        Connection::update_hosts(self, now, hosts)
    }

    fn close(&mut self, now: Instant) {
        Connection::close(self, now)
    }
}
