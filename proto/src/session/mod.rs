//! The session state machine: everything between "open a TCP connection" and "hand a result
//! to the caller", with no IO and no clock. Time is always an argument.
//!
//! [`Session`] shows the whole driver loop.

mod config;
mod error;
mod event;
mod metrics;
pub mod rng;
mod state;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

pub use crate::hosts::{DEFAULT_PORT, HostAddr, HostError, HostList};
pub use crate::request_id::RequestId;
pub use config::Config;
pub use error::{Disconnect, Error};
pub use event::{Action, Event, ProbeResult, StateEvent, WatchedEvent};
pub use metrics::SessionMetrics;
pub use state::{AppState, SessionState};

use crate::codec::{FrameDecoder, Jute, write_frame};
use crate::consts::{AddWatchMode, CreateMode, EventType, KeeperState, OpCode, WatcherType, xid};
use crate::error::ErrorCode;
use crate::path::{validate_create_path, validate_path};
use crate::records::{
    AuthPacket, ConnectRequest, ConnectResponse, CreateRequest, GetDataResponse, MultiOp, OpResult,
    ReplyHeader, Request, Response, WatcherEvent,
};
use crate::watch::{SET_WATCHES_MAX_PATH_BYTES, WatchKind, WatchRegistry};
use rng::Rng;

/// The path `getConfig` reads, outside any chroot.
const CONFIG_NODE: &str = "/zookeeper/config";
/// Read-only probing starts this soon after connecting to a read-only server and backs off
/// by doubling up to [`PROBE_MAX`], as the reference client does.
const PROBE_MIN: Duration = Duration::from_millis(100);
const PROBE_MAX: Duration = Duration::from_secs(60);
/// How long a read-only probe may take before its host counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// xid, zxid and err.
const REPLY_HEADER_LEN: usize = 16;
/// The reference client never lets more than 10 s pass without a ping.
const MAX_PING_INTERVAL: Duration = Duration::from_secs(10);
/// The shortest silence taken for a dead server while an answer is awaited: a healthy
/// server's GC pause or disk stall (half a second is common) must not cost the connection.
const STALL_ALLOWANCE: Duration = Duration::from_millis(600);

/// What a successful (or NoNode) reply does to the watch registry.
#[derive(Debug, Clone)]
enum WatchIntent {
    /// Register `on_ok` when the request succeeds, `on_no_node` when it fails with NoNode.
    Register {
        path: String,
        on_ok: WatchKind,
        on_no_node: Option<WatchKind>,
    },
    /// Remove the registrations a `removeWatches` of this type removes on the server.
    Remove { path: String, kind: WatcherType },
}

#[derive(Debug)]
enum Sent {
    User {
        id: RequestId,
        watch: Option<WatchIntent>,
    },
    SetWatches,
    /// A SASL token of the login that opens the connection.
    Sasl,
    /// The session's own getConfig, when it follows the ensemble's membership.
    Config,
    Close,
}

#[derive(Debug)]
struct Pending {
    xid: i32,
    op: OpCode,
    sent: Sent,
    /// When the request was written, for its latency.
    at: Instant,
}

#[derive(Debug)]
struct Queued {
    id: RequestId,
    request: Request,
    deadline: Instant,
}

#[derive(Debug)]
struct Auth {
    scheme: String,
    credentials: Bytes,
    /// The caller of `add_auth`, until the first answer arrives.
    waiter: Option<RequestId>,
}

#[derive(Debug, Clone, Copy)]
enum Conn {
    /// No connection; the next attempt at `retry_at` (none while the session is over).
    Idle { retry_at: Option<Instant> },
    /// The driver is opening a TCP connection.
    Opening { host: usize, deadline: Instant },
    /// ConnectRequest sent, waiting for the ConnectResponse.
    Handshake { host: usize, deadline: Instant },
    /// Session established on this connection.
    Open {
        host: usize,
        last_recv: Instant,
        last_send: Instant,
        ping_jitter: Duration,
        /// When the ping in flight was sent, to measure the round trip.
        ping_sent: Option<Instant>,
        /// Since when an answer (to a request or a ping) has been awaited; None while
        /// nothing is outstanding.
        waiting_since: Option<Instant>,
    },
}

/// What lives and dies with one connection: the bytes each way and the requests written
/// to it. [`Session::drop_connection`] is the one place a connection ends.
#[derive(Debug)]
struct Link {
    frames: FrameDecoder,
    out: BytesMut,
    /// Requests written and not yet answered, oldest first.
    pending: VecDeque<Pending>,
    /// Index into `auths` of every auth packet sent on this connection and not yet answered.
    auth_in_flight: VecDeque<usize>,
    /// The SASL login in progress on this connection: until it is done nothing but its
    /// tokens and pings is sent.
    sasl: Option<SaslRun>,
}

impl Link {
    fn new(max_frame: usize) -> Link {
        Link {
            frames: FrameDecoder::new(max_frame),
            out: BytesMut::new(),
            pending: VecDeque::new(),
            auth_in_flight: VecDeque::new(),
            sasl: None,
        }
    }
}

/// A SASL exchange under way, and what the handshake said, to finish connecting with.
#[derive(Debug)]
struct SaslRun {
    exchange: Box<dyn crate::sasl::SaslExchange>,
    host: usize,
    read_only: bool,
}

#[derive(Debug, Clone, Copy)]
struct Probing {
    next_at: Instant,
    interval: Duration,
    /// The host asked, and when the session stops waiting for its answer.
    in_flight: Option<(usize, Instant)>,
    next_host: usize,
}

/// The sans-IO session: one ZooKeeper session over any number of successive connections.
///
/// A driver owns one socket at a time and runs this loop:
///
/// ```
/// use std::time::{Duration, Instant};
/// use zk_proto::records::{GetDataRequest, Request};
/// use zk_proto::session::{Action, Config, Event, Session};
///
/// let config = Config::new("127.0.0.1:2181/app").unwrap().with_seed(7);
/// let now = Instant::now();
/// let mut session = Session::new(config, now);
/// let id = session
///     .submit(now, Request::GetData(GetDataRequest { path: "/config".into(), watch: true }))
///     .unwrap();
///
/// // One turn of the loop. A real driver repeats it until the session is closed.
/// while let Some(action) = session.poll_action() {
///     match action {
///         Action::Connect { addr, .. } => {
///             // Open a TCP connection to `addr`; then, from the socket's events:
///             session.handle_connected(now);
///             // or session.handle_connect_failed(now, "refused".into());
///         }
///         Action::Disconnect(_reason) => { /* close the socket */ }
///         Action::Probe { .. } => { /* ask the host `isro`, then handle_probe_result */ }
///     }
/// }
/// if let Some(bytes) = session.poll_transmit() {
///     // Write every queued frame with one write; here the ConnectRequest.
///     assert!(bytes.len() > 4);
/// }
/// // When bytes arrive:    session.handle_input(now, &buf[..n]);
/// // When the socket ends: session.handle_disconnected(now, "reset by peer".into());
/// // Wake up at the deadline and tell the session the time:
/// if let Some(deadline) = session.poll_timeout() {
///     session.handle_timeout(deadline);
/// }
/// while let Some(event) = session.poll_event() {
///     match event {
///         Event::Complete { id: done, result, .. } => { let _ = (done == id, result); }
///         Event::Watch(w) => println!("{:?} on {}", w.kind, w.path),
///         Event::State { state, .. } => println!("session is {state:?}"),
///         Event::App(app) => println!("application view: {app:?}"),
///     }
/// }
/// # let _ = Duration::ZERO;
/// ```
///
/// The contract with the driver: after every `handle_*` call or `submit`, drain
/// `poll_action` (and perform the actions in order), `poll_transmit` and `poll_event`, then
/// sleep until `poll_timeout` or the next IO. Calls that concern a connection always concern
/// the one most recently asked for with [`Action::Connect`].
///
/// The three queues are independent, so they may be drained in any order and events may
/// wait for the application: bytes from `poll_transmit` are always for the connection
/// that is up, because the session drops whatever it had queued for a connection when it
/// asks for that connection's [`Action::Disconnect`], and queues nothing until the next one
/// is reported with [`Session::handle_connected`]. (`proto/tests/session_model.rs` checks
/// every drain order against the usual one.) The polls are `#[must_use]`: an output taken
/// and dropped is lost.
#[derive(Debug)]
pub struct Session {
    config: Config,
    hosts: Vec<HostAddr>,
    chroot: String,
    rng: Rng,

    session_id: i64,
    passwd: Bytes,
    negotiated: Option<Duration>,
    last_zxid: i64,
    seen_rw: bool,
    state: SessionState,
    app: AppState,
    read_only: bool,
    closing: Option<Instant>,
    /// When a server was last heard from in the current session, for client-side expiry.
    last_heard: Option<Instant>,
    /// The smoothed round trip of pings, once one was measured.
    srtt: Option<Duration>,
    /// Why the last attempt on each host failed, since the last established connection.
    host_failures: Vec<Option<Disconnect>>,
    counters: metrics::Counters,
    /// A move to another host after the host list changed: the host, and until when the
    /// requests in flight may drain first.
    moving: Option<(usize, Instant)>,
    /// The connection was dropped for a planned move: the application view stays
    /// Connected unless reaching the new host fails.
    planned_move: bool,
    /// The version of the ensemble configuration last applied to the host list.
    config_version: Option<i64>,
    /// How many times the host list was replaced.
    hosts_version: u64,

    /// The current connection's lifecycle; its buffers and requests are in `link`.
    conn: Conn,
    link: Link,
    next_host: usize,
    failures: usize,
    backoff_round: u32,
    probing: Option<Probing>,

    next_id: u64,
    next_xid: i32,
    queued: VecDeque<Queued>,
    auths: Vec<Auth>,
    watches: WatchRegistry,

    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

impl Session {
    /// A new session; the first [`Action::Connect`] is ready at once.
    pub fn new(config: Config, now: Instant) -> Session {
        let mut list = config.hosts.clone();
        if config.shuffle {
            list.shuffle(config.seed);
        }
        let mut session = Session {
            hosts: list.hosts().to_vec(),
            chroot: list.chroot().to_string(),
            // A different stream from the one that shuffled the hosts.
            rng: Rng::new(config.seed ^ 0x5eed_0fca_11ed),
            link: Link::new(config.max_frame),
            config,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            negotiated: None,
            last_zxid: 0,
            seen_rw: false,
            state: SessionState::Connecting,
            app: AppState::Lost,
            read_only: false,
            closing: None,
            last_heard: None,
            srtt: None,
            host_failures: Vec::new(),
            counters: metrics::Counters::default(),
            moving: None,
            planned_move: false,
            config_version: None,
            hosts_version: 0,
            conn: Conn::Idle { retry_at: None },
            next_host: 0,
            failures: 0,
            backoff_round: 0,
            probing: None,
            next_id: 1,
            next_xid: 1,
            queued: VecDeque::new(),
            auths: Vec::new(),
            watches: WatchRegistry::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        session.connect_next(now);
        session
    }

    // ----- accessors -----

    /// The session state.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The application view (Kazoo's Connected / Suspended / Lost).
    pub fn app_state(&self) -> AppState {
        self.app
    }

    /// The session id, 0 before the first handshake.
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The session password.
    pub fn password(&self) -> &[u8] {
        &self.passwd
    }

    /// The session timeout the server agreed to, once connected.
    pub fn negotiated_timeout(&self) -> Option<Duration> {
        self.negotiated
    }

    /// The last zxid seen in a reply.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The servers, in the (shuffled) order they are tried.
    pub fn hosts(&self) -> &[HostAddr] {
        &self.hosts
    }

    /// The chroot, `""` when none.
    pub fn chroot(&self) -> &str {
        &self.chroot
    }

    /// How many times the host list was replaced ([`Session::update_hosts`], or the
    /// ensemble configuration when followed): a driver that caches [`Session::hosts`]
    /// refreshes its copy when this changes. Host indices refer to the current list.
    pub fn hosts_version(&self) -> u64 {
        self.hosts_version
    }

    /// The host of the current connection or connection attempt, as an index into
    /// [`Session::hosts`].
    pub fn current_host(&self) -> Option<usize> {
        match self.conn {
            Conn::Idle { .. } => None,
            Conn::Opening { host, .. } | Conn::Handshake { host, .. } | Conn::Open { host, .. } => {
                Some(host).filter(|&h| h < self.hosts.len())
            }
        }
    }

    /// Why the last attempt on each host failed, for the hosts that failed since the last
    /// established connection: what to tell a user whose connect gave up.
    pub fn host_failures(&self) -> Vec<(HostAddr, Disconnect)> {
        self.host_failures
            .iter()
            .enumerate()
            .filter_map(|(i, f)| Some((self.hosts.get(i)?.clone(), f.clone()?)))
            .collect()
    }

    /// A snapshot of what the session has done and holds now: counters, round trips, the
    /// slowest reply. Costs one pass over the requests in flight.
    pub fn metrics(&self) -> SessionMetrics {
        let c = &self.counters;
        SessionMetrics {
            state: self.state,
            session_id: self.session_id,
            host: match self.conn {
                Conn::Open { host, .. } => self.hosts.get(host).cloned(),
                _ => None,
            },
            in_flight: self.in_flight(),
            queued: self.queued(),
            watches: self.watches.len(),
            connections: c.connections,
            disconnects: c.disconnects,
            failed_attempts: c.failed_attempts,
            completed: c.completed,
            last_rtt: c.last_rtt,
            smoothed_rtt: self.srtt,
            max_latency: c.max_latency,
            slow_requests: c.slow_requests,
            last_slow: c.last_slow,
        }
    }

    /// How many requests were slow so far, and the last one (its operation and latency):
    /// cheap enough for a driver to check after every turn and log each new one.
    pub fn slow_requests(&self) -> (u64, Option<(OpCode, Duration)>) {
        (self.counters.slow_requests, self.counters.last_slow)
    }

    fn count_reply(&mut self, now: Instant, op: OpCode, written: Instant) {
        let latency = now.saturating_duration_since(written);
        let c = &mut self.counters;
        c.completed += 1;
        c.max_latency = c.max_latency.max(latency);
        if latency >= self.config.slow_request {
            c.slow_requests += 1;
            c.last_slow = Some((op, latency));
        }
    }

    /// Requests of the application sent and waiting for their replies (the session's own
    /// setWatches and closeSession frames are not counted).
    pub fn in_flight(&self) -> usize {
        self.link
            .pending
            .iter()
            .filter(|p| matches!(p.sent, Sent::User { .. }))
            .count()
    }

    /// Something sent on this connection still waits for its reply: a request, a ping, or
    /// one of the session's own frames.
    pub fn awaiting_replies(&self) -> bool {
        !self.link.pending.is_empty()
    }

    /// Whether the server may send something on the open connection that the session
    /// wants read soon: a reply or a ping's answer it is owed, or an event of a watch (the
    /// application's, or the session's own on the ensemble's config). A driver that reads
    /// only on demand keeps the socket in sight while this holds.
    pub fn may_hear(&self) -> bool {
        let ping_out = matches!(
            self.conn,
            Conn::Open {
                ping_sent: Some(_),
                ..
            }
        );
        !self.link.pending.is_empty()
            || ping_out
            || !self.watches.is_empty()
            || self.config.follow_config
    }

    /// Requests waiting for a connection.
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// The watch registrations.
    pub fn watches(&self) -> &WatchRegistry {
        &self.watches
    }

    fn timeout(&self) -> Duration {
        self.negotiated.unwrap_or(self.config.session_timeout)
    }

    /// 2/3 of the session timeout in whole milliseconds, as the reference client computes it.
    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms() * 2 / 3)
    }

    /// The session timeout divided by the number of hosts, in whole milliseconds, as the
    /// reference client computes it.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms() / self.hosts.len().max(1) as u64)
    }

    fn timeout_ms(&self) -> u64 {
        self.timeout().as_millis().min(i32::MAX as u128) as u64
    }

    fn request_timeout(&self) -> Duration {
        self.config.request_timeout.unwrap_or(self.timeout())
    }

    fn is_over(&self) -> bool {
        match self.state {
            SessionState::Closed | SessionState::AuthFailed => true,
            SessionState::Expired => !self.config.renew_expired,
            _ => false,
        }
    }

    /// The session is over for good (closed, refused the credentials, or expired without
    /// [`Config::with_renew_expired`]) and every output has been taken: nothing will ever
    /// come out of it again, and a driver's loop can end.
    pub fn is_finished(&self) -> bool {
        self.is_over()
            && self.closing.is_none()
            && self.actions.is_empty()
            && self.link.out.is_empty()
            && self.events.is_empty()
    }

    // ----- outputs -----

    /// The next thing the driver must do.
    #[must_use = "an action taken from the session must be performed"]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Every frame queued since the last call, in one buffer for one write.
    #[must_use = "bytes taken from the session must be written to the connection"]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.link.out.is_empty() {
            None
        } else {
            Some(self.link.out.split().freeze())
        }
    }

    /// The next event to deliver.
    #[must_use = "an event taken from the session must be delivered"]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest moment [`Session::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers().into_iter().flatten().min()
    }

    /// Every deadline of the session, by what it is for: the one place that knows them,
    /// for [`Session::poll_timeout`] and [`Session::handle_timeout`] alike.
    fn timers(&self) -> [Option<Instant>; Timer::COUNT] {
        let mut t = [None; Timer::COUNT];
        match self.conn {
            Conn::Idle { retry_at } => t[Timer::Reconnect as usize] = retry_at,
            Conn::Opening { deadline, .. } | Conn::Handshake { deadline, .. } => {
                t[Timer::Connect as usize] = Some(deadline);
            }
            Conn::Open {
                last_recv,
                last_send,
                ping_jitter,
                waiting_since,
                ..
            } => {
                t[Timer::Read as usize] = Some(last_recv + self.read_timeout());
                t[Timer::Unresponsive as usize] =
                    waiting_since.map(|w| last_recv.max(w) + self.unresponsive_after());
                // No ping while a SASL login runs: a server that requires the login
                // (`zookeeper.sessionRequireClientSASLAuth`) answers anything else before
                // it with SESSIONCLOSEDREQUIRESASLAUTH and closes the session, and the
                // reference client holds its pings too. The unanswered token is watched
                // like a request.
                if self.link.sasl.is_none() {
                    t[Timer::Ping as usize] = Some(last_send + self.ping_interval(ping_jitter));
                }
            }
        }
        t[Timer::Queued as usize] = self.queued.front().map(|q| q.deadline);
        t[Timer::Expiry as usize] = self.expiry_deadline();
        t[Timer::Close as usize] = self.closing;
        t[Timer::Move as usize] = self.moving.map(|(_, at)| at);
        t[Timer::Probe as usize] = self.probing.map(|p| match p.in_flight {
            Some((_, deadline)) => deadline,
            None => p.next_at,
        });
        t
    }

    /// Whether `timer` is due at `now`.
    fn due(&self, timer: Timer, now: Instant) -> bool {
        self.timers()[timer as usize].is_some_and(|t| now >= t)
    }

    /// A tenth of the session timeout (at most 10 s): an idle connection keeps a ping in
    /// flight often enough that a dead server shows within [`Session::unresponsive_after`]
    /// of it, less the jitter drawn for this ping.
    fn ping_interval(&self, jitter: Duration) -> Duration {
        self.base_ping_interval().saturating_sub(jitter)
    }

    fn base_ping_interval(&self) -> Duration {
        (self.timeout() / 10).min(MAX_PING_INTERVAL)
    }

    /// How long the server may stay silent while a request or ping awaits its answer before
    /// the connection is taken for dead and the next server is tried: a fifth of the session
    /// timeout, or 600 ms plus four round trips if that is longer, and never more than the
    /// read timeout. With pings every tenth of the timeout, a black-holed server is left
    /// within about 30 % of the timeout, with most of the session's time still ahead to
    /// resume elsewhere (the reference client waits for the read timeout, 67 %).
    pub fn unresponsive_after(&self) -> Duration {
        let rtt = self.srtt.unwrap_or_default();
        (self.timeout() / 5)
            .max(STALL_ALLOWANCE + rtt * 4)
            .min(self.read_timeout())
    }

    /// While no connection carries the session, it is given up 4/3 of the session timeout
    /// after the last word from a server, as the reference client does: by then the server
    /// has expired it.
    fn expiry_deadline(&self) -> Option<Instant> {
        if self.session_id == 0
            || self.state.is_terminal()
            || matches!(self.conn, Conn::Open { .. })
        {
            return None;
        }
        let heard = self.last_heard?;
        Some(heard + Duration::from_millis(self.timeout_ms() * 4 / 3))
    }

    // ----- inputs from the driver -----

    /// The TCP connection asked for with [`Action::Connect`] is open.
    pub fn handle_connected(&mut self, _now: Instant) {
        let Conn::Opening { host, deadline } = self.conn else {
            return;
        };
        let resume = self.seen_rw;
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout: duration_ms(self.config.session_timeout),
            session_id: if resume { self.session_id } else { 0 },
            passwd: if resume {
                self.passwd.clone()
            } else {
                Bytes::from_static(&[0; 16])
            },
            read_only: self.config.read_only,
        };
        self.link.frames.clear();
        self.link.out.clear();
        write_frame(&mut self.link.out, |b| req.encode(b));
        self.conn = Conn::Handshake { host, deadline };
    }

    /// The TCP connection asked for with [`Action::Connect`] could not be opened.
    pub fn handle_connect_failed(&mut self, now: Instant, reason: String) {
        if matches!(self.conn, Conn::Opening { .. }) {
            self.lose_connection(now, Disconnect::Io(reason), false);
        }
    }

    /// The connection closed or failed.
    pub fn handle_disconnected(&mut self, now: Instant, reason: String) {
        if !matches!(self.conn, Conn::Idle { .. }) {
            self.lose_connection(now, Disconnect::Io(reason), false);
        }
    }

    /// Bytes arrived on the connection, in any chunking. Every complete frame is processed
    /// before this returns.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if !matches!(self.conn, Conn::Handshake { .. } | Conn::Open { .. }) {
            return;
        }
        self.heard(now);
        self.link.frames.push(data);
        loop {
            match self.link.frames.next_frame() {
                Ok(Some(frame)) => {
                    if let Err(reason) = self.handle_frame(now, frame) {
                        self.lose_connection(now, reason, true);
                        return;
                    }
                    if !matches!(self.conn, Conn::Handshake { .. } | Conn::Open { .. }) {
                        return;
                    }
                }
                Ok(None) => {
                    self.settle_waiting();
                    return;
                }
                Err(e) => {
                    self.lose_connection(now, Disconnect::Frame(e), true);
                    return;
                }
            }
        }
    }

    fn heard(&mut self, now: Instant) {
        if let Conn::Open { last_recv, .. } = &mut self.conn {
            *last_recv = now;
            self.last_heard = Some(now);
        }
    }

    /// Once every answer is in, nothing is awaited any more.
    fn settle_waiting(&mut self) {
        let outstanding = !self.link.pending.is_empty() || !self.link.auth_in_flight.is_empty();
        if let Conn::Open {
            ping_sent,
            waiting_since,
            ..
        } = &mut self.conn
            && !outstanding
            && ping_sent.is_none()
        {
            *waiting_since = None;
        }
    }

    /// Time passed: pings, read and connect timeouts, reconnect backoff, request deadlines,
    /// client-side expiry, read-only probing.
    pub fn handle_timeout(&mut self, now: Instant) {
        // In this order: each step may change what the later ones see.
        if self.due(Timer::Close, now) {
            self.finish_close(now);
            return;
        }
        if self.due(Timer::Expiry, now) {
            self.expire(now, None);
            return;
        }
        if self.due(Timer::Move, now) {
            self.move_now(now);
        }
        while self.due(Timer::Queued, now) {
            if let Some(q) = self.queued.pop_front() {
                let waited = self.request_timeout();
                self.complete(q.id, Err(Error::Timeout(waited)));
            }
        }
        if self.due(Timer::Reconnect, now) {
            self.connect_next(now);
        } else if self.due(Timer::Connect, now) {
            let t = self.connect_timeout();
            self.lose_connection(now, Disconnect::ConnectTimeout(t), true);
        } else if self.due(Timer::Read, now) {
            let t = self.read_timeout();
            self.lose_connection(now, Disconnect::ReadTimeout(t), true);
        } else if self.due(Timer::Unresponsive, now) {
            let patience = self.unresponsive_after();
            self.lose_connection(now, Disconnect::Unresponsive(patience), true);
        } else if self.due(Timer::Ping, now) {
            Request::Ping.encode_frame(xid::PING, "", &mut self.link.out);
            if let Conn::Open { ping_sent, .. } = &mut self.conn {
                ping_sent.get_or_insert(now);
            }
            self.sent(now);
        }
        if self.due(Timer::Probe, now)
            && let Some(p) = self.probing
        {
            match p.in_flight {
                Some((host, _)) => self.handle_probe_result(now, host, ProbeResult::Unreachable),
                None => self.start_probe(now),
            }
        }
    }

    /// Marks that bytes were queued on the open connection now, and draws the jitter of the
    /// next ping.
    /// Marks that bytes were queued on the open connection now (each of them awaits an
    /// answer), and draws the jitter of the next ping.
    fn sent(&mut self, now: Instant) {
        let max_jitter = (self.base_ping_interval() / 5).min(Duration::from_millis(400));
        let jitter = Duration::from_micros(self.rng.below(max_jitter.as_micros() as u64 + 1));
        if let Conn::Open {
            last_send,
            ping_jitter,
            waiting_since,
            ..
        } = &mut self.conn
        {
            *last_send = now;
            *ping_jitter = jitter;
            waiting_since.get_or_insert(now);
        }
    }

    // ----- requests -----

    /// Queues an operation. Its outcome arrives as exactly one [`Event::Complete`] with the
    /// returned id. Sent at once when connected, otherwise when the next connection is up.
    pub fn submit(&mut self, now: Instant, request: Request) -> Result<RequestId, Error> {
        self.check_open()?;
        validate(&request)?;
        if matches!(
            request,
            Request::Ping
                | Request::CloseSession
                | Request::Auth(_)
                | Request::SetWatches(_)
                | Request::SetWatches2(_)
                | Request::Sasl(_)
        ) {
            return Err(Error::InvalidRequest(
                "pings, closeSession, auth, SASL and setWatches are sent by the session itself; \
                 use close(), add_auth() and Config::with_sasl()",
            ));
        }
        let id = self.new_id();
        if self.carrying() && self.moving.is_none() {
            self.write_request(now, id, request);
        } else {
            if self.queued.len() >= self.config.queue_limit {
                return Err(Error::QueueFull(self.queued.len()));
            }
            let deadline = now + self.request_timeout();
            self.queued.push_back(Queued {
                id,
                request,
                deadline,
            });
        }
        Ok(id)
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.closing.is_some() {
            return Err(Error::Closed);
        }
        match self.state {
            SessionState::Closed => Err(Error::Closed),
            SessionState::AuthFailed => Err(Error::AuthFailed),
            SessionState::Expired if !self.config.renew_expired => Err(Error::SessionExpired),
            _ => Ok(()),
        }
    }

    /// Sets the xid the next request gets (1 to `i32::MAX`), so tests can reach the wrap-around
    /// without sending two billion requests.
    #[doc(hidden)]
    pub fn set_next_xid(&mut self, xid: i32) {
        self.next_xid = xid.max(1);
    }

    fn new_id(&mut self) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Xids count up from 1 and wrap to 1 after `i32::MAX`, never reaching the special
    /// negative xids, as the reference client does.
    fn take_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if x == i32::MAX { 1 } else { x + 1 };
        x
    }

    fn write_request(&mut self, now: Instant, id: RequestId, request: Request) {
        let xid = self.take_xid();
        let start = self.link.out.len();
        let size = request.encode_frame(xid, &self.chroot, &mut self.link.out);
        if size > self.config.max_request {
            self.link.out.truncate(start);
            let max = self.config.max_request;
            self.complete(id, Err(Error::TooLarge { size, max }));
            return;
        }
        let watch = self.watch_intent(&request);
        self.link.pending.push_back(Pending {
            xid,
            op: request.opcode(),
            sent: Sent::User { id, watch },
            at: now,
        });
        self.sent(now);
    }

    fn server_path(&self, path: &str) -> String {
        if self.chroot.is_empty() {
            path.to_string()
        } else if path == "/" {
            self.chroot.clone()
        } else {
            format!("{}{}", self.chroot, path)
        }
    }

    fn client_path(&self, path: &str) -> Option<String> {
        if self.chroot.is_empty() {
            return Some(path.to_string());
        }
        match path.strip_prefix(self.chroot.as_str()) {
            Some("") => Some("/".into()),
            Some(rest) if rest.starts_with('/') => Some(rest.into()),
            _ => None,
        }
    }

    fn watch_intent(&self, request: &Request) -> Option<WatchIntent> {
        let register = |path: &str, on_ok, on_no_node| {
            Some(WatchIntent::Register {
                path: self.server_path(path),
                on_ok,
                on_no_node,
            })
        };
        match request {
            Request::GetData(r) if r.watch => register(&r.path, WatchKind::Data, None),
            Request::Exists(r) if r.watch => {
                register(&r.path, WatchKind::Data, Some(WatchKind::Exist))
            }
            Request::GetChildren(r) | Request::GetChildren2(r) if r.watch => {
                register(&r.path, WatchKind::Child, None)
            }
            Request::GetConfig { watch: true } => Some(WatchIntent::Register {
                path: CONFIG_NODE.into(),
                on_ok: WatchKind::Data,
                on_no_node: None,
            }),
            Request::AddWatch(r) => {
                let kind = match AddWatchMode::from_i32(r.mode) {
                    Some(AddWatchMode::PersistentRecursive) => WatchKind::PersistentRecursive,
                    _ => WatchKind::Persistent,
                };
                register(&r.path, kind, None)
            }
            Request::RemoveWatches(r) => {
                WatcherType::from_i32(r.kind).map(|kind| WatchIntent::Remove {
                    path: self.server_path(&r.path),
                    kind,
                })
            }
            _ => None,
        }
    }

    /// Forgets a watch registration without telling the server, for a caller that is no
    /// longer interested. The server may still send events for it; they go nowhere.
    /// Returns whether it was registered.
    pub fn forget_watch(&mut self, watch: RequestId) -> bool {
        self.watches.remove(watch).is_some()
    }

    /// Forgets a registration and, when it was the last one on its node, asks the server to
    /// drop its watches there too (`removeWatches` of type Any), so a caller that lost
    /// interest leaves nothing behind. Type Any is used because servers before 3.9 know no
    /// persistent watch types and keep one watch mode per node and session
    /// (ZOOKEEPER-4466), so a narrower removal can miss or take too much. Returns the id of
    /// that request, if one was sent or queued; its completion (`NoWatcher` is normal when a
    /// one-shot watch fired meanwhile) needs no handling.
    pub fn release_watch(&mut self, now: Instant, watch: RequestId) -> Option<RequestId> {
        let (path, _) = self.watches.remove(watch)?;
        if self.watches.any_on(&path) || self.check_open().is_err() {
            return None;
        }
        // Outside the chroot (the config node) there is nothing a chrooted request can name.
        let client = self.client_path(&path)?;
        let request = Request::RemoveWatches(crate::records::RemoveWatchesRequest {
            path: client,
            kind: WatcherType::Any.as_i32(),
        });
        self.submit(now, request).ok()
    }

    /// Adds credentials to the session (`addauth`). Sent at once when connected and again
    /// after every reconnect, before any queued request. The returned id completes when the
    /// server first answers; a refusal ends the session in [`SessionState::AuthFailed`].
    pub fn add_auth(
        &mut self,
        now: Instant,
        scheme: &str,
        credentials: impl Into<Bytes>,
    ) -> Result<RequestId, Error> {
        self.check_open()?;
        let id = self.new_id();
        self.auths.push(Auth {
            scheme: scheme.to_string(),
            credentials: credentials.into(),
            waiter: Some(id),
        });
        if self.carrying() {
            self.send_auth(self.auths.len() - 1);
            self.sent(now);
        }
        Ok(id)
    }

    fn send_auth(&mut self, index: usize) {
        let a = &self.auths[index];
        Request::Auth(AuthPacket {
            kind: 0,
            scheme: a.scheme.clone(),
            auth: a.credentials.clone(),
        })
        .encode_frame(xid::AUTH, "", &mut self.link.out);
        self.link.auth_in_flight.push_back(index);
    }

    /// Closes the session: a closeSession request after everything already submitted, then
    /// [`SessionState::Closed`]. Requests still waiting for a connection fail with
    /// [`Error::Closed`]. Without a connection, or if the server does not answer within the
    /// read timeout, the session is closed locally.
    pub fn close(&mut self, now: Instant) {
        if self.closing.is_some() || self.is_over() {
            return;
        }
        while let Some(q) = self.queued.pop_front() {
            self.complete(q.id, Err(Error::Closed));
        }
        if self.carrying() {
            self.send_close(now);
        } else if matches!(self.conn, Conn::Open { .. }) {
            // The SASL login is under way: the close follows it (or the read timeout ends
            // the session here if it never finishes).
            self.closing = Some(now + self.read_timeout());
        } else {
            self.finish_close(now);
        }
    }

    fn send_close(&mut self, now: Instant) {
        let xid = self.take_xid();
        Request::CloseSession.encode_frame(xid, "", &mut self.link.out);
        self.link.pending.push_back(Pending {
            xid,
            op: OpCode::CloseSession,
            sent: Sent::Close,
            at: now,
        });
        self.sent(now);
        self.closing = Some(now + self.read_timeout());
    }

    /// A connection carries the session and may take requests: open, and past its SASL
    /// login if there is one.
    fn carrying(&self) -> bool {
        matches!(self.conn, Conn::Open { .. }) && self.link.sasl.is_none()
    }

    fn finish_close(&mut self, now: Instant) {
        self.closing = None;
        self.drop_connection(Disconnect::Closed, true, Error::Closed);
        self.end_session(
            now,
            SessionState::Closed,
            KeeperState::Closed,
            Error::Closed,
            None,
        );
    }

    // ----- connections -----

    fn connect_next(&mut self, now: Instant) {
        if self.is_over() || self.hosts.is_empty() {
            self.conn = Conn::Idle { retry_at: None };
            return;
        }
        let host = self.next_host % self.hosts.len();
        self.next_host = (host + 1) % self.hosts.len();
        self.connect_to(now, host);
    }

    fn connect_to(&mut self, now: Instant, host: usize) {
        self.conn = Conn::Opening {
            host,
            deadline: now + self.connect_timeout(),
        };
        self.actions.push_back(Action::Connect {
            host,
            addr: self.hosts[host].clone(),
        });
    }

    /// Drops the current connection: requests in flight fail with ConnectionLoss, queued ones
    /// wait for the next connection, and the next host is tried (after a pause once every
    /// host failed in a row).
    fn lose_connection(&mut self, now: Instant, reason: Disconnect, tell_driver: bool) {
        let was_open = matches!(self.conn, Conn::Open { .. });
        if !was_open && !matches!(self.conn, Conn::Idle { .. }) {
            self.counters.failed_attempts += 1;
        }
        if let Some(host) = self.current_host() {
            if self.host_failures.len() < self.hosts.len() {
                self.host_failures.resize(self.hosts.len(), None);
            }
            // A host that left the list (see update_hosts) has no slot.
            if let Some(slot) = self.host_failures.get_mut(host) {
                *slot = Some(reason.clone());
            }
        }
        self.drop_connection(reason.clone(), tell_driver, Error::ConnectionLoss);
        if self.closing.is_some() {
            self.finish_close(now);
            return;
        }
        if was_open {
            self.failures = 0;
            self.set_state(SessionState::Connecting, Some(reason));
        } else {
            self.failures += 1;
            if std::mem::take(&mut self.planned_move) {
                // The planned move did not reach its server: an ordinary suspension now.
                self.app = AppState::Suspended;
                self.events.push_back(Event::App(AppState::Suspended));
            }
        }
        self.schedule_reconnect(now);
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        if self.failures < self.hosts.len() {
            self.connect_next(now);
            return;
        }
        // Every host failed once in a row: pause, longer after each round.
        self.failures = 0;
        let cap = self.config.backoff_max;
        let base = self
            .config
            .backoff_min
            .saturating_mul(1u32 << self.backoff_round.min(16))
            .min(cap);
        self.backoff_round = self.backoff_round.saturating_add(1);
        let half = base / 2;
        let extra = self.rng.below(half.as_micros() as u64 + 1);
        let pause = half + Duration::from_micros(extra);
        self.conn = Conn::Idle {
            retry_at: Some(now + pause),
        };
    }

    /// Ends the current connection, whatever ends it: the driver is told to close it
    /// (unless it reported the loss itself), its buffers are emptied, every request written
    /// to it fails with `error`, and the probe and move that belonged to it are dropped.
    /// What happens next (reconnect, a final state) is the caller's. Nothing to do when no
    /// connection is there.
    fn drop_connection(&mut self, reason: Disconnect, tell_driver: bool, error: Error) {
        match self.conn {
            Conn::Idle { .. } => {}
            Conn::Open { .. } => self.counters.disconnects += 1,
            Conn::Opening { .. } | Conn::Handshake { .. } => {}
        }
        if tell_driver && !matches!(self.conn, Conn::Idle { .. }) {
            self.actions.push_back(Action::Disconnect(reason));
        }
        self.conn = Conn::Idle { retry_at: None };
        self.link.frames.clear();
        self.link.out.clear();
        self.link.sasl = None;
        self.probing = None;
        self.moving = None;
        self.fail_in_flight(error);
    }

    /// Fails every request in flight on a dropped connection.
    fn fail_in_flight(&mut self, error: Error) {
        self.link.auth_in_flight.clear();
        while let Some(p) = self.link.pending.pop_front() {
            if let Sent::User { id, .. } = p.sent {
                self.complete(id, Err(error.clone()));
            }
        }
    }

    fn complete(&mut self, id: RequestId, result: Result<Response, Error>) {
        self.events.push_back(Event::Complete {
            id,
            result,
            watch: None,
        });
    }

    fn set_state(&mut self, state: SessionState, reason: Option<Disconnect>) {
        if self.state == state {
            return;
        }
        self.state = state;
        self.events.push_back(Event::State { state, reason });
        if self.planned_move && state == SessionState::Connecting {
            return;
        }
        let app = self.app.after(state);
        if app != self.app {
            self.app = app;
            self.events.push_back(Event::App(app));
        }
    }

    // ----- frames -----

    fn handle_frame(&mut self, now: Instant, frame: Bytes) -> Result<(), Disconnect> {
        match self.conn {
            Conn::Handshake { host, .. } => {
                // A bare reply header where the ConnectResponse belongs is a refusal.
                if frame.len() == REPLY_HEADER_LEN
                    && let Ok((h, _)) = ReplyHeader::decode(&frame)
                    && h.err != 0
                {
                    return Err(Disconnect::Refused(ErrorCode::from_i32(h.err)));
                }
                let (resp, _) = ConnectResponse::decode(&frame)?;
                self.handshake_done(now, host, resp);
                Ok(())
            }
            Conn::Open { .. } => self.handle_reply(now, frame),
            _ => Ok(()),
        }
    }

    fn handshake_done(&mut self, now: Instant, host: usize, resp: ConnectResponse) {
        if resp.timeout <= 0 {
            self.expire(now, Some(Disconnect::SessionExpired));
            return;
        }
        self.session_id = resp.session_id;
        self.passwd = resp.passwd;
        self.negotiated = Some(Duration::from_millis(resp.timeout as u64));
        self.read_only = resp.read_only;
        self.seen_rw |= !resp.read_only;
        self.last_heard = Some(now);
        self.failures = 0;
        self.backoff_round = 0;
        self.host_failures.clear();
        self.counters.connections += 1;
        self.planned_move = false;
        self.conn = Conn::Open {
            host,
            last_recv: now,
            last_send: now,
            ping_jitter: Duration::ZERO,
            ping_sent: None,
            waiting_since: None,
        };
        if let Some(login) = self.config.sasl.clone() {
            let random = self.rng.next_u64();
            let name = self.hosts[host].host.clone();
            let started = login.start(&name, random).and_then(|mut exchange| {
                let token = exchange.initial_response()?;
                Ok((exchange, token))
            });
            match started {
                Ok((exchange, token)) => {
                    self.link.sasl = Some(SaslRun {
                        exchange,
                        host,
                        read_only: resp.read_only,
                    });
                    self.send_sasl(now, token);
                }
                Err(why) => self.sasl_failed(
                    now,
                    format!(
                        "the {} login of `{}` cannot start: {why}",
                        login.mechanism(),
                        login.user()
                    ),
                ),
            }
            return;
        }
        self.connection_ready(now, host, resp.read_only);
    }

    /// Writes one SASL token of the login in progress.
    fn send_sasl(&mut self, now: Instant, token: Vec<u8>) {
        let xid = self.take_xid();
        Request::Sasl(crate::records::SaslRequest {
            token: Bytes::from(token),
        })
        .encode_frame(xid, "", &mut self.link.out);
        self.link.pending.push_back(Pending {
            xid,
            op: OpCode::Sasl,
            sent: Sent::Sasl,
            at: now,
        });
        self.sent(now);
    }

    /// The server answered a SASL token: answer its challenge, or finish connecting once it
    /// proved itself, or end the session if it refused the login.
    fn sasl_reply(&mut self, now: Instant, err: i32, body: &Bytes) -> Result<(), Disconnect> {
        let Some(mut run) = self.link.sasl.take() else {
            return Ok(());
        };
        let user = self
            .config
            .sasl
            .as_ref()
            .map(|l| format!("{} login of `{}`", l.mechanism(), l.user()))
            .unwrap_or_default();
        if err != 0 {
            let code = ErrorCode::from_i32(err);
            self.sasl_failed(
                now,
                format!("the server refused the {user} ({code}); check the user and password"),
            );
            return Ok(());
        }
        let (reply, _) = crate::records::SaslResponse::decode(body)?;
        match run.exchange.step(&reply.token) {
            Ok(crate::sasl::Step::Respond(token)) => {
                self.link.sasl = Some(run);
                self.send_sasl(now, token);
            }
            Ok(crate::sasl::Step::Done) => self.connection_ready(now, run.host, run.read_only),
            Err(e) => self.sasl_failed(now, format!("the {user} cannot go on: {e}")),
        }
        Ok(())
    }

    /// The connection carries the session (after the SASL login, if any): report it and send
    /// what waited for it.
    fn connection_ready(&mut self, now: Instant, host: usize, read_only: bool) {
        if self.closing.is_some() {
            // Closed while the login ran: only the close goes out.
            self.send_close(now);
            return;
        }
        self.set_state(
            if read_only {
                SessionState::ConnectedReadOnly
            } else {
                SessionState::Connected
            },
            None,
        );
        // Credentials first, then watches, then whatever waited for the connection.
        for i in 0..self.auths.len() {
            self.send_auth(i);
        }
        for req in self
            .watches
            .set_watches(self.last_zxid, SET_WATCHES_MAX_PATH_BYTES)
        {
            req.encode_frame(xid::SET_WATCHES, "", &mut self.link.out);
            self.link.pending.push_back(Pending {
                xid: xid::SET_WATCHES,
                op: req.opcode(),
                sent: Sent::SetWatches,
                at: now,
            });
        }
        if self.config.follow_config {
            self.request_config(now);
        }
        while let Some(q) = self.queued.pop_front() {
            self.write_request(now, q.id, q.request);
        }
        self.sent(now);
        self.probing = read_only.then_some(Probing {
            next_at: now + PROBE_MIN,
            interval: PROBE_MIN,
            in_flight: None,
            next_host: (host + 1) % self.hosts.len(),
        });
    }

    fn handle_reply(&mut self, now: Instant, frame: Bytes) -> Result<(), Disconnect> {
        let (header, used) = ReplyHeader::decode(&frame)?;
        let body = frame.slice(used..);
        match header.xid {
            xid::NOTIFICATION => {
                let (event, _) = WatcherEvent::decode(&body)?;
                let config_changed = self.config.follow_config
                    && event.path == CONFIG_NODE
                    && event.event_type() == Some(EventType::NodeDataChanged);
                self.deliver_watch(event);
                if config_changed {
                    self.request_config(now);
                }
                Ok(())
            }
            xid::PING => {
                if let Conn::Open { ping_sent, .. } = &mut self.conn
                    && let Some(at) = ping_sent.take()
                {
                    let sample = now.saturating_duration_since(at);
                    self.counters.last_rtt = Some(sample);
                    // The usual smoothing: seven parts history, one part news.
                    self.srtt = Some(match self.srtt {
                        Some(s) => (s * 7 + sample) / 8,
                        None => sample,
                    });
                }
                Ok(())
            }
            xid::AUTH => {
                let index = self.link.auth_in_flight.pop_front();
                let waiter = index.and_then(|i| self.auths.get_mut(i)?.waiter.take());
                if header.err == ErrorCode::AuthFailed.as_i32() {
                    if let Some(id) = waiter {
                        self.complete(id, Err(Error::AuthFailed));
                    }
                    self.auth_failed(now, Disconnect::AuthFailed);
                } else if let Some(id) = waiter {
                    let result = match header.err {
                        0 => Ok(Response::Empty),
                        e => Err(Error::Server(ErrorCode::from_i32(e))),
                    };
                    self.complete(id, result);
                }
                Ok(())
            }
            got => {
                let Some(p) = self.link.pending.pop_front() else {
                    return Err(Disconnect::UnexpectedXid {
                        expected: None,
                        got,
                    });
                };
                if p.xid != got {
                    let expected = Some(p.xid);
                    self.link.pending.push_front(p);
                    return Err(Disconnect::UnexpectedXid { expected, got });
                }
                if header.zxid > 0 {
                    self.last_zxid = self.last_zxid.max(header.zxid);
                }
                match p.sent {
                    Sent::SetWatches => Ok(()),
                    Sent::Sasl => self.sasl_reply(now, header.err, &body),
                    Sent::Config => {
                        if header.err == 0 {
                            let (reply, _) = GetDataResponse::decode(&body)?;
                            self.apply_config(now, &reply.data);
                        }
                        Ok(())
                    }
                    Sent::Close => {
                        self.finish_close(now);
                        Ok(())
                    }
                    Sent::User { id, watch } => {
                        self.count_reply(now, p.op, p.at);
                        self.finish_request(id, p.op, watch, header.err, &body)
                            .inspect_err(|_| {
                                // The request is lost with the connection, like the others.
                                self.complete(id, Err(Error::ConnectionLoss));
                            })?;
                        if self.moving.is_some() && self.in_flight() == 0 {
                            self.move_now(now);
                        }
                        Ok(())
                    }
                }
            }
        }
    }

    fn finish_request(
        &mut self,
        id: RequestId,
        op: OpCode,
        watch: Option<WatchIntent>,
        err: i32,
        body: &Bytes,
    ) -> Result<(), Disconnect> {
        if err != 0 {
            let code = ErrorCode::from_i32(err);
            match watch {
                Some(WatchIntent::Register {
                    path,
                    on_no_node: Some(kind),
                    ..
                }) if code == ErrorCode::NoNode => {
                    self.watches.add(id, &path, kind);
                    self.events.push_back(Event::Complete {
                        id,
                        result: Err(Error::Server(code)),
                        watch: Some(kind),
                    });
                    return Ok(());
                }
                // The server had nothing to remove; neither should we keep anything.
                Some(WatchIntent::Remove { path, kind }) if code == ErrorCode::NoWatcher => {
                    self.removed_watches(&path, kind)
                }
                _ => {}
            }
            self.complete(id, Err(Error::Server(code)));
            return Ok(());
        }
        let response = Response::decode_for(op, body)?;
        let mut registered = None;
        match watch {
            Some(WatchIntent::Register { path, on_ok, .. }) => {
                self.watches.add(id, &path, on_ok);
                registered = Some(on_ok);
            }
            Some(WatchIntent::Remove { path, kind }) => self.removed_watches(&path, kind),
            None => {}
        }
        let response = self.strip_chroot(response);
        self.events.push_back(Event::Complete {
            id,
            result: Ok(response),
            watch: registered,
        });
        Ok(())
    }

    fn removed_watches(&mut self, path: &str, kind: WatcherType) {
        let client = self.client_path(path).unwrap_or_else(|| path.to_string());
        for (id, wk) in self.watches.remove_matching(path, kind) {
            self.events.push_back(Event::Watch(WatchedEvent {
                watch: id,
                kind: wk.removed_event(),
                state: KeeperState::SyncConnected,
                path: client.clone(),
            }));
        }
    }

    /// Paths in replies are the server's; callers see them relative to the chroot.
    fn strip_chroot(&self, response: Response) -> Response {
        if self.chroot.is_empty() {
            return response;
        }
        let strip = |p: &mut String| {
            if let Some(c) = self.client_path(p) {
                *p = c;
            }
        };
        match response {
            Response::Create(mut r) => {
                strip(&mut r.path);
                Response::Create(r)
            }
            Response::Create2(mut r) => {
                strip(&mut r.path);
                Response::Create2(r)
            }
            Response::Sync(mut r) => {
                strip(&mut r.path);
                Response::Sync(r)
            }
            Response::GetEphemerals(mut r) => {
                // The server matches the prefix as a string, so "/app" also finds "/apple":
                // keep only what lies under the chroot.
                r.ephemerals = r
                    .ephemerals
                    .iter()
                    .filter_map(|p| self.client_path(p))
                    .collect();
                Response::GetEphemerals(r)
            }
            Response::Multi(mut r) => {
                for res in &mut r.results {
                    match res {
                        OpResult::Create(c) => strip(&mut c.path),
                        OpResult::Create2(c) => strip(&mut c.path),
                        _ => {}
                    }
                }
                Response::Multi(r)
            }
            other => other,
        }
    }

    fn deliver_watch(&mut self, event: WatcherEvent) {
        let Some(kind) = event.event_type() else {
            return;
        };
        let path = self.client_path(&event.path).unwrap_or(event.path.clone());
        let state = event.keeper_state().unwrap_or(KeeperState::SyncConnected);
        for id in self.watches.fire(kind, &event.path) {
            self.events.push_back(Event::Watch(WatchedEvent {
                watch: id,
                kind,
                state,
                path: path.clone(),
            }));
        }
    }

    // ----- the end of a session -----

    /// The SASL login failed: the session is over, as when credentials are refused.
    fn sasl_failed(&mut self, now: Instant, why: String) {
        self.auth_failed(now, Disconnect::SaslFailed(why));
    }

    fn auth_failed(&mut self, now: Instant, reason: Disconnect) {
        self.closing = None;
        self.drop_connection(reason.clone(), true, Error::AuthFailed);
        while let Some(q) = self.queued.pop_front() {
            self.complete(q.id, Err(Error::AuthFailed));
        }
        for a in std::mem::take(&mut self.auths) {
            if let Some(id) = a.waiter {
                self.complete(id, Err(Error::AuthFailed));
            }
        }
        self.end_session(
            now,
            SessionState::AuthFailed,
            KeeperState::AuthFailed,
            Error::AuthFailed,
            Some(reason),
        );
    }

    /// The session is gone (the server said so, or it cannot have survived this long).
    fn expire(&mut self, now: Instant, reason: Option<Disconnect>) {
        self.closing = None;
        self.drop_connection(Disconnect::SessionExpired, true, Error::SessionExpired);
        self.end_session(
            now,
            SessionState::Expired,
            KeeperState::Expired,
            Error::SessionExpired,
            reason,
        );
        if self.config.renew_expired {
            // A fresh session; credentials carry over, watches and requests did not.
            self.session_id = 0;
            self.passwd = Bytes::from_static(&[0; 16]);
            self.negotiated = None;
            self.seen_rw = false;
            self.last_heard = None;
            self.failures = 0;
            self.set_state(SessionState::Connecting, None);
            self.connect_next(now);
        }
    }

    /// Moves to a final state: queued requests fail, every watch gets one final event and is
    /// removed.
    fn end_session(
        &mut self,
        _now: Instant,
        state: SessionState,
        keeper: KeeperState,
        error: Error,
        reason: Option<Disconnect>,
    ) {
        while let Some(q) = self.queued.pop_front() {
            self.complete(q.id, Err(error.clone()));
        }
        for a in &mut self.auths {
            if let Some(id) = a.waiter.take() {
                self.events.push_back(Event::Complete {
                    id,
                    result: Err(error.clone()),
                    watch: None,
                });
            }
        }
        for (id, path) in self.watches.drain() {
            let path = self.client_path(&path).unwrap_or(path);
            self.events.push_back(Event::Watch(WatchedEvent {
                watch: id,
                kind: EventType::None,
                state: keeper,
                path,
            }));
        }
        self.probing = None;
        self.set_state(state, reason);
    }

    // ----- read-only mode -----

    fn start_probe(&mut self, now: Instant) {
        let Some(p) = self.probing.as_mut() else {
            return;
        };
        let current = match self.conn {
            Conn::Open { host, .. } => host,
            _ => return,
        };
        let n = self.hosts.len();
        if n < 2 {
            self.probing = None;
            return;
        }
        let mut host = p.next_host % n;
        if host == current {
            host = (host + 1) % n;
        }
        p.next_host = (host + 1) % n;
        let deadline = now + PROBE_TIMEOUT;
        p.in_flight = Some((host, deadline));
        self.actions.push_back(Action::Probe {
            host,
            addr: self.hosts[host].clone(),
            deadline,
        });
    }

    /// Reads the ensemble configuration with a watch, for a session that follows it.
    fn request_config(&mut self, now: Instant) {
        if !self.carrying() || self.closing.is_some() {
            return;
        }
        let xid = self.take_xid();
        Request::GetConfig { watch: true }.encode_frame(xid, "", &mut self.link.out);
        self.link.pending.push_back(Pending {
            xid,
            op: OpCode::GetData,
            sent: Sent::Config,
            at: now,
        });
        self.sent(now);
    }

    /// Applies a new ensemble configuration to the host list, once per version. Data that
    /// names no client address (servers with a static `clientPort`) changes nothing.
    fn apply_config(&mut self, now: Instant, data: &[u8]) {
        let Ok(config) = crate::ensemble::EnsembleConfig::parse(data) else {
            return;
        };
        if self.config_version == Some(config.version) {
            return;
        }
        self.config_version = Some(config.version);
        if let Some(hosts) = config
            .connect_string()
            .and_then(|c| HostList::parse(&c).ok())
        {
            self.update_hosts(now, hosts);
        }
    }

    /// Replaces the host list, as after a reconfiguration (the Java client's
    /// `updateServerList`), and spreads clients over the new list: a session whose server
    /// left moves to another one; when servers were added, a session moves to one of the
    /// new servers with the probability that evens the load (1 - old/new); otherwise it
    /// stays. Returns whether the session will move.
    ///
    /// A move is gentle: requests already sent get their replies first (new ones wait, for
    /// at most the read timeout), then the connection is closed and the session resumes on
    /// the chosen server with [`Disconnect::Rebalance`]. The application view stays
    /// Connected through a move that succeeds. The chroot stays as it was; a chroot in
    /// `hosts` is ignored.
    pub fn update_hosts(&mut self, now: Instant, hosts: HostList) -> bool {
        let mut list = hosts;
        if self.config.shuffle {
            list.shuffle(self.rng.next_u64());
        }
        let new: Vec<HostAddr> = list.hosts().to_vec();
        if new.is_empty() || new == self.hosts {
            return false;
        }
        let old_len = self.hosts.len();
        // Attached: connected or connecting, possibly to a host that already left the list.
        let attached = !matches!(self.conn, Conn::Idle { .. });
        let current = self.current_host().and_then(|h| self.hosts.get(h).cloned());
        let index_of = |addr: &HostAddr| new.iter().position(|h| h == addr);
        let (kept, added): (Vec<usize>, Vec<usize>) =
            (0..new.len()).partition(|&i| self.hosts.contains(&new[i]));
        let here = current.as_ref().and_then(index_of);
        let pick = |rng: &mut Rng, from: &[usize]| from[rng.below(from.len() as u64) as usize];
        // Where this session should be: stay (None) or move to a host of the new list.
        let target = match here {
            Some(_) if new.len() <= old_len => None,
            Some(_) => {
                // Servers were added: move with the probability that evens the load.
                let stay_below = old_len as u64 * 1_000_000 / new.len() as u64;
                (self.rng.below(1_000_000) >= stay_below && !added.is_empty())
                    .then(|| pick(&mut self.rng, &added))
            }
            None if !attached => None,
            None if added.is_empty() => Some(pick(&mut self.rng, &kept)),
            None if kept.is_empty() || new.len() > old_len => Some(pick(&mut self.rng, &added)),
            None => {
                // Servers left, this one among them: of the clients that must move, send
                // to the remaining old servers the share that evens the load.
                let (o, m, n) = (kept.len() as u64, new.len() as u64, old_len as u64);
                let p_old = (o * (n - m)) * 1_000_000 / (m * (n - o)).max(1);
                let to_old = self.rng.below(1_000_000) < p_old;
                Some(pick(&mut self.rng, if to_old { &kept } else { &added }))
            }
        };
        self.hosts = new;
        self.hosts_version += 1;
        self.host_failures.clear();
        self.probing = None;
        self.moving = None;
        // The current connection's index in the new list; a host that left has none (an
        // index past the list, which every lookup treats as absent).
        match &mut self.conn {
            Conn::Opening { host, .. } | Conn::Handshake { host, .. } | Conn::Open { host, .. } => {
                *host = here.unwrap_or(usize::MAX);
            }
            Conn::Idle { .. } => {}
        }
        self.next_host = here.map_or(0, |i| (i + 1) % self.hosts.len());
        let Some(target) = target else {
            return false;
        };
        match self.conn {
            Conn::Open { .. } => {
                self.moving = Some((target, now + self.read_timeout()));
                if self.in_flight() == 0 {
                    self.move_now(now);
                }
            }
            Conn::Opening { .. } | Conn::Handshake { .. } => {
                // Not connected yet: give up this attempt and try the chosen host.
                self.drop_connection(Disconnect::Rebalance, true, Error::ConnectionLoss);
                self.connect_to(now, target);
                self.next_host = (target + 1) % self.hosts.len();
            }
            Conn::Idle { .. } => {}
        }
        true
    }

    /// Leaves the open connection for the host chosen by [`Session::update_hosts`].
    fn move_now(&mut self, now: Instant) {
        let Some((target, _)) = self.moving.take() else {
            return;
        };
        let closing = self.closing.is_some();
        if closing || !matches!(self.conn, Conn::Open { .. }) || target >= self.hosts.len() {
            return;
        }
        self.drop_connection(Disconnect::Rebalance, true, Error::ConnectionLoss);
        self.planned_move = true;
        self.set_state(SessionState::Connecting, Some(Disconnect::Rebalance));
        self.failures = 0;
        self.connect_to(now, target);
        self.next_host = (target + 1) % self.hosts.len();
    }

    /// The answer to an [`Action::Probe`]. A read-write server ends the read-only connection
    /// and the session moves to that server.
    pub fn handle_probe_result(&mut self, now: Instant, host: usize, result: ProbeResult) {
        let Some(p) = self.probing.as_mut() else {
            return;
        };
        if p.in_flight.map(|(h, _)| h) != Some(host) {
            return;
        }
        p.in_flight = None;
        if result == ProbeResult::ReadWrite && host < self.hosts.len() {
            self.drop_connection(
                Disconnect::ReadWriteServerFound,
                true,
                Error::ConnectionLoss,
            );
            self.set_state(
                SessionState::Connecting,
                Some(Disconnect::ReadWriteServerFound),
            );
            self.connect_to(now, host);
            self.next_host = (host + 1) % self.hosts.len();
        } else {
            p.next_at = now + p.interval;
            p.interval = (p.interval * 2).min(PROBE_MAX);
        }
    }
}

fn duration_ms(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

/// Checks every path of a request with the server's rules.
fn validate(request: &Request) -> Result<(), Error> {
    fn create(r: &CreateRequest) -> Result<(), Error> {
        let sequential = CreateMode::from_i32(r.flags).is_some_and(|m| m.is_sequential());
        Ok(validate_create_path(&r.path, sequential)?)
    }
    match request {
        Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => create(r),
        Request::CreateTtl(r) => {
            let sequential = CreateMode::from_i32(r.flags).is_some_and(|m| m.is_sequential());
            Ok(validate_create_path(&r.path, sequential)?)
        }
        Request::Multi(m) | Request::MultiRead(m) => {
            for op in &m.ops {
                match op {
                    MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => {
                        create(r)?
                    }
                    MultiOp::CreateTtl(r) => {
                        let seq = CreateMode::from_i32(r.flags).is_some_and(|m| m.is_sequential());
                        validate_create_path(&r.path, seq)?
                    }
                    other => validate_path(other.path())?,
                }
            }
            Ok(())
        }
        other => match other.path() {
            Some(p) => Ok(validate_path(p)?),
            None => Ok(()),
        },
    }
}

/// What a deadline of the session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// A close gives up waiting for the server's answer.
    Close,
    /// The session would have expired on the server by now.
    Expiry,
    /// A planned move to another server (after the host list changed).
    Move,
    /// The oldest request waiting for a connection gives up.
    Queued,
    /// The next connection attempt.
    Reconnect,
    /// A connection or handshake in progress gives up.
    Connect,
    /// The open connection has been silent too long.
    Read,
    /// A request or ping went unanswered too long.
    Unresponsive,
    /// The idle connection sends a ping.
    Ping,
    /// The read-only probe's next step.
    Probe,
}

impl Timer {
    const COUNT: usize = 10;
}
