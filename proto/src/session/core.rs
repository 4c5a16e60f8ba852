//! The session itself: its state, its accessors, and its clock (the timer table that
//! serves both `poll_timeout` and `handle_timeout`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::config::Config;
use super::error::{Disconnect, Error};
use super::event::{Action, Event, ProbeResult};
use super::metrics::SessionMetrics;
use super::rng::Rng;
use super::state::{AppState, SessionState};
use crate::codec::FrameDecoder;
use crate::consts::{CreateMode, OpCode, WatcherType, xid};
use crate::hosts::HostAddr;
use crate::path::{validate_create_path, validate_path};
use crate::records::{CreateRequest, MultiOp, Request};
use crate::request_id::RequestId;
use crate::watch::{WatchKind, WatchRegistry};

/// The path `getConfig` reads, outside any chroot.
pub(super) const CONFIG_NODE: &str = "/zookeeper/config";
/// Read-only probing starts this soon after connecting to a read-only server and backs off
/// by doubling up to [`PROBE_MAX`], as the reference client does.
pub(super) const PROBE_MIN: Duration = Duration::from_millis(100);
pub(super) const PROBE_MAX: Duration = Duration::from_secs(60);
/// How long a read-only probe may take before its host counts as unreachable.
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// xid, zxid and err.
pub(super) const REPLY_HEADER_LEN: usize = 16;
/// The reference client never lets more than 10 s pass without a ping.
pub(super) const MAX_PING_INTERVAL: Duration = Duration::from_secs(10);
/// The shortest silence taken for a dead server while an answer is awaited: a healthy
/// server's GC pause or disk stall (half a second is common) must not cost the connection.
pub(super) const STALL_ALLOWANCE: Duration = Duration::from_millis(600);

/// What a successful (or NoNode) reply does to the watch registry.
#[derive(Debug, Clone)]
pub(super) enum WatchIntent {
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
pub(super) enum Sent {
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
pub(super) struct Pending {
    pub(super) xid: i32,
    pub(super) op: OpCode,
    pub(super) sent: Sent,
    /// When the request was written, for its latency.
    pub(super) at: Instant,
}

#[derive(Debug)]
pub(super) struct Queued {
    pub(super) id: RequestId,
    pub(super) request: Request,
    pub(super) deadline: Instant,
}

#[derive(Debug)]
pub(super) struct Auth {
    pub(super) scheme: String,
    pub(super) credentials: Bytes,
    /// The caller of `add_auth`, until the first answer arrives.
    pub(super) waiter: Option<RequestId>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Conn {
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
pub(super) struct Link {
    pub(super) frames: FrameDecoder,
    pub(super) out: BytesMut,
    /// Requests written and not yet answered, oldest first.
    pub(super) pending: VecDeque<Pending>,
    /// Index into `auths` of every auth packet sent on this connection and not yet answered.
    pub(super) auth_in_flight: VecDeque<usize>,
    /// The SASL login in progress on this connection: until it is done nothing but its
    /// tokens and pings is sent.
    pub(super) sasl: Option<SaslRun>,
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
pub(super) struct SaslRun {
    pub(super) exchange: Box<dyn crate::sasl::SaslExchange>,
    pub(super) host: usize,
    pub(super) read_only: bool,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Probing {
    pub(super) next_at: Instant,
    pub(super) interval: Duration,
    /// The host asked, and when the session stops waiting for its answer.
    pub(super) in_flight: Option<(usize, Instant)>,
    pub(super) next_host: usize,
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
    pub(super) config: Config,
    pub(super) hosts: Vec<HostAddr>,
    pub(super) chroot: String,
    pub(super) rng: Rng,

    pub(super) session_id: i64,
    pub(super) passwd: Bytes,
    pub(super) negotiated: Option<Duration>,
    /// The intervals that follow from the session timeout now.
    pub(super) pace: Pace,
    pub(super) last_zxid: i64,
    pub(super) seen_rw: bool,
    pub(super) state: SessionState,
    pub(super) app: AppState,
    pub(super) read_only: bool,
    pub(super) closing: Option<Instant>,
    /// When a server was last heard from in the current session, for client-side expiry.
    pub(super) last_heard: Option<Instant>,
    /// The smoothed round trip of pings, once one was measured.
    pub(super) srtt: Option<Duration>,
    /// Why the last attempt on each host failed, since the last established connection.
    pub(super) host_failures: Vec<Option<Disconnect>>,
    pub(super) counters: super::metrics::Counters,
    /// A move to another host after the host list changed: the host, and until when the
    /// requests in flight may drain first.
    pub(super) moving: Option<(usize, Instant)>,
    /// The connection was dropped for a planned move: the application view stays
    /// Connected unless reaching the new host fails.
    pub(super) planned_move: bool,
    /// The version of the ensemble configuration last applied to the host list.
    pub(super) config_version: Option<i64>,
    /// How many times the host list was replaced.
    pub(super) hosts_version: u64,

    /// The current connection's lifecycle; its buffers and requests are in `link`.
    pub(super) conn: Conn,
    pub(super) link: Link,
    pub(super) next_host: usize,
    pub(super) failures: usize,
    pub(super) backoff_round: u32,
    pub(super) probing: Option<Probing>,

    pub(super) next_id: u64,
    pub(super) next_xid: i32,
    pub(super) queued: VecDeque<Queued>,
    pub(super) auths: Vec<Auth>,
    pub(super) watches: WatchRegistry,

    pub(super) actions: VecDeque<Action>,
    pub(super) events: VecDeque<Event>,
}

impl Session {
    /// A new session; the first [`Action::Connect`] is ready at once.
    pub fn new(config: Config, now: Instant) -> Session {
        let mut list = config.hosts.clone();
        if config.shuffle {
            list.shuffle(config.seed.unwrap_or(0));
        }
        let mut session = Session {
            hosts: list.hosts().to_vec(),
            chroot: list.chroot().to_string(),
            // A different stream from the one that shuffled the hosts.
            rng: Rng::new(config.seed.unwrap_or(0) ^ 0x5eed_0fca_11ed),
            link: Link::new(config.max_frame),
            pace: Pace::of(config.session_timeout),
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
            counters: super::metrics::Counters::default(),
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
    #[inline]
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The application view (Kazoo's Connected / Suspended / Lost).
    #[inline]
    pub fn app_state(&self) -> AppState {
        self.app
    }

    /// The session id, 0 before the first handshake.
    #[inline]
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The session password.
    pub fn password(&self) -> &[u8] {
        &self.passwd
    }

    /// The session timeout the server agreed to, once connected.
    #[inline]
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
    #[inline]
    pub fn hosts_version(&self) -> u64 {
        self.hosts_version
    }

    /// The host of the current connection or connection attempt, as an index into
    /// [`Session::hosts`].
    #[inline]
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

    pub(super) fn count_reply(&mut self, now: Instant, op: OpCode, written: Instant) {
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

    pub(super) fn timeout(&self) -> Duration {
        self.pace.timeout
    }

    /// Takes the timeout the server granted (`None`: ask for the configured one again),
    /// and works out the intervals that follow from it.
    pub(super) fn set_negotiated(&mut self, granted: Option<Duration>) {
        self.negotiated = granted;
        self.pace = Pace::of(granted.unwrap_or(self.config.session_timeout));
    }

    /// 2/3 of the session timeout in whole milliseconds, as the reference client computes it.
    pub fn read_timeout(&self) -> Duration {
        self.pace.read
    }

    /// The session timeout divided by the number of hosts, in whole milliseconds, as the
    /// reference client computes it.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms() / self.hosts.len().max(1) as u64)
    }

    pub(super) fn timeout_ms(&self) -> u64 {
        self.timeout().as_millis().min(i32::MAX as u128) as u64
    }

    pub(super) fn request_timeout(&self) -> Duration {
        self.config.request_timeout.unwrap_or(self.timeout())
    }

    pub(super) fn is_over(&self) -> bool {
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

    /// Whether an action waits for [`Session::poll_action`].
    #[inline]
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

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

    /// Whether an event waits for [`Session::poll_event`]: a driver that turns on demand
    /// can skip a turn with nothing to hand out.
    #[inline]
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next event to deliver.
    #[must_use = "an event taken from the session must be delivered"]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest moment [`Session::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers().earliest()
    }

    /// Every deadline of the session, by what it is for: the one place that knows them,
    /// for [`Session::poll_timeout`] and [`Session::handle_timeout`] alike.
    pub(super) fn timers(&self) -> Timers {
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
        Timers(t)
    }

    /// A tenth of the session timeout (at most 10 s): an idle connection keeps a ping in
    /// flight often enough that a dead server shows within [`Session::unresponsive_after`]
    /// of it, less the jitter drawn for this ping.
    pub(super) fn ping_interval(&self, jitter: Duration) -> Duration {
        self.base_ping_interval().saturating_sub(jitter)
    }

    pub(super) fn base_ping_interval(&self) -> Duration {
        self.pace.ping
    }

    /// How long the server may stay silent while a request or ping awaits its answer before
    /// the connection is taken for dead and the next server is tried: a fifth of the session
    /// timeout, or 600 ms plus four round trips if that is longer, and never more than the
    /// read timeout. With pings every tenth of the timeout, a black-holed server is left
    /// within about 30 % of the timeout, with most of the session's time still ahead to
    /// resume elsewhere (the reference client waits for the read timeout, 67 %).
    pub fn unresponsive_after(&self) -> Duration {
        let rtt = self.srtt.unwrap_or_default();
        self.pace
            .fifth
            .max(STALL_ALLOWANCE + rtt * 4)
            .min(self.pace.read)
    }

    /// While no connection carries the session, it is given up 4/3 of the session timeout
    /// after the last word from a server, as the reference client does: by then the server
    /// has expired it.
    pub(super) fn expiry_deadline(&self) -> Option<Instant> {
        if self.session_id == 0
            || self.state.is_terminal()
            || matches!(self.conn, Conn::Open { .. })
        {
            return None;
        }
        let heard = self.last_heard?;
        Some(heard + self.pace.expiry)
    }

    // ----- inputs from the driver -----

    /// Time passed: pings, read and connect timeouts, reconnect backoff, request deadlines,
    /// client-side expiry, read-only probing.
    pub fn handle_timeout(&mut self, now: Instant) {
        // In this order: each step may change what the later ones see, so the deadlines
        // are looked at again after a step that did something.
        let mut t = self.timers();
        if t.due(Timer::Close, now) {
            self.finish_close(now);
            return;
        }
        if t.due(Timer::Expiry, now) {
            self.expire(now, None);
            return;
        }
        if t.due(Timer::Move, now) {
            self.move_now(now);
            t = self.timers();
        }
        while t.due(Timer::Queued, now) {
            if let Some(q) = self.queued.pop_front() {
                let waited = self.request_timeout();
                self.complete(q.id, Err(Error::Timeout(waited)));
            }
            t = self.timers();
        }
        let mut fired = true;
        if t.due(Timer::Reconnect, now) {
            self.connect_next(now);
        } else if t.due(Timer::Connect, now) {
            let patience = self.connect_timeout();
            self.lose_connection(now, Disconnect::ConnectTimeout(patience), true);
        } else if t.due(Timer::Read, now) {
            let patience = self.read_timeout();
            self.lose_connection(now, Disconnect::ReadTimeout(patience), true);
        } else if t.due(Timer::Unresponsive, now) {
            let patience = self.unresponsive_after();
            self.lose_connection(now, Disconnect::Unresponsive(patience), true);
        } else if t.due(Timer::Ping, now) {
            Request::Ping.encode_frame(xid::PING, "", &mut self.link.out);
            if let Conn::Open { ping_sent, .. } = &mut self.conn {
                ping_sent.get_or_insert(now);
            }
            self.sent(now);
        } else {
            fired = false;
        }
        if fired {
            t = self.timers();
        }
        if t.due(Timer::Probe, now)
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
    pub(super) fn sent(&mut self, now: Instant) {
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
}

/// The intervals that follow from a session timeout, worked out once per timeout rather
/// than on every look at the deadlines.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pace {
    /// The session timeout.
    pub(super) timeout: Duration,
    /// The read timeout: 2/3 of it in whole milliseconds.
    pub(super) read: Duration,
    /// A tenth of it, at most [`MAX_PING_INTERVAL`]: the ping interval before its jitter.
    pub(super) ping: Duration,
    /// A fifth of it: the least patience with an unanswered request.
    pub(super) fifth: Duration,
    /// 4/3 of it in whole milliseconds: when a session no server carries has expired.
    pub(super) expiry: Duration,
}

impl Pace {
    pub(super) fn of(timeout: Duration) -> Pace {
        let ms = timeout.as_millis().min(i32::MAX as u128) as u64;
        Pace {
            timeout,
            read: Duration::from_millis(ms * 2 / 3),
            ping: (timeout / 10).min(MAX_PING_INTERVAL),
            fifth: timeout / 5,
            expiry: Duration::from_millis(ms * 4 / 3),
        }
    }
}

pub(super) fn duration_ms(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

/// Checks every path of a request with the server's rules.
pub(super) fn validate(request: &Request) -> Result<(), Error> {
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
pub(super) enum Timer {
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

/// Every deadline of a session at one moment, by what it is for (see [`Session::timers`]).
pub(super) struct Timers([Option<Instant>; Timer::COUNT]);

impl Timers {
    /// Whether `timer` is set and due at `now`.
    pub(super) fn due(&self, timer: Timer, now: Instant) -> bool {
        self.0[timer as usize].is_some_and(|t| now >= t)
    }

    /// The earliest deadline, if any is set.
    pub(super) fn earliest(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
}
