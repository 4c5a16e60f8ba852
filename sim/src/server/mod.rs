//! The model ensemble: servers, their client connections, and the one tree they share.
//! Bytes and time go in, reply frames, notifications and closes come out.
//!
//! - `connect.rs`: the first bytes of a connection (four-letter words, the handshake).
//! - `request.rs`: every request after the handshake, reads and writes.
//! - `prep.rs`: writes turned into transactions with the server's checks.
//! - `quorum.rs`: timers, elections and faults.
//! - `lag.rs`: members that apply committed transactions late.
//! - `apply.rs`: what a committed transaction does to a tree; which requests are writes.

mod apply;
mod connect;
mod durable;
mod lag;
mod prep;
mod quorum;
mod request;
mod words;

pub use durable::SnapshotError;
pub use words::Whitelist;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zk_proto::codec::{FrameDecoder, Jute, write_frame};
use zk_proto::records::{Acl, ReplyHeader, Response, Stat};

use crate::acl::Identities;
use crate::config::Config;
use crate::history::Txn;
use crate::sessions::{Tracker, first_session_id};
use crate::tree::DataTree;

/// A client connection to one of the model's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// What the model asks of whoever carries its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes to the client of `conn`.
    Transmit {
        /// The connection.
        conn: ConnId,
        /// Whole frames (or a four-letter word's text).
        data: Bytes,
    },
    /// Close the connection. Every byte for it was handed out before this.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// Why a server refused a new connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No server with that index.
    #[error("there is no server {0} in the model ensemble")]
    NoSuchServer(usize),
    /// The server is down: nothing listens on its port.
    #[error("server {0} is down: the connection is refused")]
    Down(usize),
}

/// Where a server stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Running.
    Up,
    /// Stopped or killed: connections are refused.
    Down,
    /// Frozen (a long GC pause, SIGSTOP): connections stay open but nothing is read,
    /// answered or timed until it resumes, at `until` if given.
    Paused {
        /// When it resumes by itself.
        until: Option<Instant>,
    },
}

#[derive(Debug)]
struct Server {
    /// `myid`: 0 for a standalone server, 1 and up in an ensemble.
    myid: u64,
    state: ServerState,
    /// When it was paused, for the leader's sync limit.
    paused_at: Option<u64>,
    /// An election began while it was frozen: it drops its clients once it runs again,
    /// as a member that lost its leader does.
    missed_election: bool,
    next_session: i64,
    received: u64,
    sent: u64,
}

#[derive(Debug)]
struct Conn {
    server: usize,
    frames: FrameDecoder,
    /// The handshake was processed.
    initialized: bool,
    /// The first four bytes were looked at for a four-letter word.
    checked_first: bool,
    session: i64,
    timeout_ms: u64,
    old_client: bool,
    ids: Identities,
    out: BytesMut,
    dirty: bool,
    /// The server closed it: input is ignored, output drains, then `Close`.
    closed: bool,
    /// Input that arrived while the server was paused.
    held: BytesMut,
    lose_next_reply: bool,
    /// On a lagging member: what the connection waits for, in the order it goes out.
    waiting: VecDeque<lag::Deferred>,
    /// What `cons` and `stat` report of it.
    stats: words::ConnStats,
    /// Where its SASL login stands.
    sasl: Option<crate::sasl::DigestServer>,
}

/// One server or a quorum of them around one linearizable tree, as ZooKeeper 3.8.0 serves
/// clients. Pure: no IO, no clock; time is an argument.
///
/// A driver accepts connections, feeds their bytes, carries out what
/// [`Ensemble::poll_output`] asks, and wakes the model at [`Ensemble::poll_timeout`]:
///
/// ```
/// use std::time::Instant;
/// use zk_sim::{Config, Ensemble, Output};
///
/// let now = Instant::now();
/// let mut zk = Ensemble::new(Config::standalone(), now);
/// let conn = zk.accept(now, 0, "127.0.0.1").unwrap();
/// zk.handle_input(now, conn, b"ruok");
/// let mut text = Vec::new();
/// while let Some(out) = zk.poll_output() {
///     match out {
///         Output::Transmit { data, .. } => text.extend_from_slice(&data),
///         Output::Close { .. } => break,
///     }
/// }
/// assert_eq!(text, b"imok");
/// ```
#[derive(Debug)]
pub struct Ensemble {
    config: Config,
    start: Instant,
    tree: DataTree,
    sessions: Tracker,
    servers: Vec<Server>,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    /// The last zxid handed out.
    zxid: i64,
    leader: Option<usize>,
    /// While an election runs (elapsed ms it ends at), nobody is served.
    election_until: Option<u64>,
    next_reap: u64,
    history: Vec<Txn>,
    dirty: VecDeque<ConnId>,
    closing: VecDeque<ConnId>,
    /// Each member's own tree while it lags behind the leader (None for the leader, and
    /// for every member when the configuration has no lag).
    replicas: Vec<Option<lag::Replica>>,
    lag: Option<lag::Lag>,
    /// The connection whose held request is being handled now: its answer goes first.
    replaying: Option<ConnId>,
}

impl Ensemble {
    /// A model started at `now`: a standalone server, or an ensemble with its first leader
    /// elected (the highest id).
    pub fn new(config: Config, now: Instant) -> Ensemble {
        let origin = config.elapsed_origin_ms;
        let servers = (0..config.servers)
            .map(|i| {
                let myid = if config.standalone { 0 } else { i as u64 + 1 };
                Server {
                    myid,
                    state: ServerState::Up,
                    paused_at: None,
                    missed_election: false,
                    next_session: first_session_id(origin, session_prefix(&config, myid)),
                    received: 0,
                    sent: 0,
                }
            })
            .collect();
        let config_data = if config.standalone {
            Bytes::new()
        } else {
            let mut text = String::new();
            for i in 1..=config.servers {
                text.push_str(&format!(
                    "server.{i}=127.0.0.1:{}:{}:participant\n",
                    2888 + i,
                    3888 + i
                ));
            }
            text.push_str("version=0");
            Bytes::from(text)
        };
        let mut e = Ensemble {
            tree: DataTree::new(config_data, config.extended_types),
            sessions: Tracker::new(config.tick_ms),
            servers,
            conns: BTreeMap::new(),
            next_conn: 1,
            zxid: 0,
            leader: None,
            election_until: None,
            next_reap: origin + config.container_check_ms,
            history: Vec::new(),
            dirty: VecDeque::new(),
            closing: VecDeque::new(),
            replicas: (0..config.servers).map(|_| None).collect(),
            lag: match config.follower_lag {
                Some((max, seed)) if !config.standalone => Some(lag::Lag::new(max, seed)),
                _ => None,
            },
            replaying: None,
            start: now,
            config,
        };
        if e.config.standalone {
            e.leader = Some(0);
        } else {
            e.finish_election(origin);
        }
        e
    }

    /// A standalone server with default settings.
    pub fn standalone(now: Instant) -> Ensemble {
        Ensemble::new(Config::standalone(), now)
    }

    // ----- clocks -----

    /// The server's elapsed-time clock at `now`, in milliseconds.
    fn ms(&self, now: Instant) -> u64 {
        self.config.elapsed_origin_ms + now.saturating_duration_since(self.start).as_millis() as u64
    }

    fn instant(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms.saturating_sub(self.config.elapsed_origin_ms))
    }

    /// The wall clock at `now`, for node times.
    fn wall(&self, now: Instant) -> i64 {
        self.config.wall_clock_ms + now.saturating_duration_since(self.start).as_millis() as i64
    }

    // ----- connections -----

    /// A client opened a TCP connection to server `server` from address `ip` (it becomes
    /// the connection's `ip` identity).
    pub fn accept(&mut self, now: Instant, server: usize, ip: &str) -> Result<ConnId, Refused> {
        self.accept_from(now, server, ip, 0)
    }

    /// Like [`Ensemble::accept`], with the client's port too, as `cons`, `stat` and `dump`
    /// show the connection (`/ip:port`).
    pub fn accept_from(
        &mut self,
        _now: Instant,
        server: usize,
        ip: &str,
        port: u16,
    ) -> Result<ConnId, Refused> {
        let s = self
            .servers
            .get(server)
            .ok_or(Refused::NoSuchServer(server))?;
        if s.state == ServerState::Down {
            return Err(Refused::Down(server));
        }
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                server,
                // The server reads up to jute.maxbuffer per frame.
                frames: FrameDecoder::new(self.config.max_buffer),
                initialized: false,
                checked_first: false,
                session: 0,
                timeout_ms: 0,
                old_client: false,
                ids: Identities::new(ip).with_sasl(!self.config.sasl_users.is_empty()),
                out: BytesMut::new(),
                dirty: false,
                closed: false,
                held: BytesMut::new(),
                lose_next_reply: false,
                waiting: VecDeque::new(),
                stats: words::ConnStats::new(format!("/{ip}:{port}")),
                sasl: None,
            },
        );
        Ok(id)
    }

    /// Bytes from the client of `conn`, in any chunking.
    pub fn handle_input(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closed {
            return;
        }
        if matches!(self.servers[c.server].state, ServerState::Paused { .. }) {
            c.held.extend_from_slice(data);
            return;
        }
        c.frames.push(data);
        self.process_input(now, conn);
    }

    /// The client closed the connection, or it broke. Its watches go; its session stays
    /// until it expires or the client comes back.
    pub fn handle_close(&mut self, _now: Instant, conn: ConnId) {
        if self.conns.remove(&conn).is_some() {
            self.forget_watches(conn);
        }
    }

    /// The next thing to do for the clients: bytes to send, then closes.
    pub fn poll_output(&mut self) -> Option<Output> {
        while let Some(conn) = self.dirty.pop_front() {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            c.dirty = false;
            if !c.out.is_empty() {
                let data = c.out.split().freeze();
                return Some(Output::Transmit { conn, data });
            }
        }
        while let Some(conn) = self.closing.pop_front() {
            if self.conns.remove(&conn).is_some() {
                return Some(Output::Close { conn });
            }
        }
        None
    }

    /// Splits buffered input into frames and handles each, until more input is needed or
    /// the connection closes.
    fn process_input(&mut self, now: Instant, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.closed {
                return;
            }
            if !c.checked_first {
                if c.frames.buffered() < 4 {
                    return;
                }
                c.checked_first = true;
                let head = &c.frames.buffer_mut()[..4];
                let word = [head[0], head[1], head[2], head[3]];
                if self.four_letter_word(now, conn, word) {
                    return;
                }
                continue;
            }
            let frame = match c.frames.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return,
                // A negative or too long length: the server drops the connection.
                Err(_) => {
                    self.close(conn);
                    return;
                }
            };
            let server = c.server;
            c.stats.received += 1;
            self.servers[server].received += 1;
            if c.initialized {
                self.handle_request(now, conn, frame);
            } else {
                self.handle_connect(now, conn, frame);
            }
        }
    }

    /// The server closes `conn` once its pending bytes are out; its watches go now.
    fn close(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closed {
            return;
        }
        c.closed = true;
        c.waiting.clear();
        if !c.dirty {
            c.dirty = true;
            self.dirty.push_back(conn);
        }
        self.closing.push_back(conn);
        self.forget_watches(conn);
    }

    /// Appends a frame for `conn`.
    fn send(&mut self, conn: ConnId, write: impl FnOnce(&mut BytesMut)) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closed {
            return;
        }
        write_frame(&mut c.out, write);
        c.stats.sent += 1;
        let server = c.server;
        if !c.dirty {
            c.dirty = true;
            self.dirty.push_back(conn);
        }
        self.servers[server].sent += 1;
    }

    /// Sends a reply, unless a fault says to lose it (the request was applied; the
    /// connection then breaks, as it must for a reply to go missing on TCP).
    /// On a lagging member, the reply waits until the member applied `zxid` and
    /// everything the connection waited for before it went out.
    fn reply(&mut self, conn: ConnId, xid: i32, zxid: i64, err: i32, body: Option<&Response>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.last_zxid = zxid;
        }
        let write = |b: &mut BytesMut| {
            ReplyHeader { xid, zxid, err }.encode(b);
            if let Some(r) = body {
                r.write(&mut zk_proto::codec::Writer::new(b));
            }
        };
        if self.must_wait(conn, zxid) {
            let mut frame = BytesMut::new();
            write(&mut frame);
            let frame = frame.freeze();
            self.defer(conn, lag::Deferred::Frame { zxid, frame });
        } else {
            self.send_reply(conn, write);
        }
    }

    /// Sends a reply frame now, unless a fault says to lose it.
    fn send_reply(&mut self, conn: ConnId, write: impl FnOnce(&mut BytesMut)) {
        if let Some(c) = self.conns.get_mut(&conn)
            && c.lose_next_reply
        {
            c.lose_next_reply = false;
            self.close(conn);
            return;
        }
        self.send(conn, write);
    }

    /// Delivers watch notifications (xid -1, zxid -1) to the connections allowed to read
    /// the node they concern.
    fn notify(&mut self, notes: Vec<crate::tree::Notification>) {
        for (conn, event, acl) in notes {
            if let Some(acl) = acl {
                let Some(c) = self.conns.get(&conn) else {
                    continue;
                };
                if crate::acl::check(&c.ids, &acl, zk_proto::consts::perms::READ).is_err() {
                    continue;
                }
            }
            self.send(conn, |b| {
                ReplyHeader {
                    xid: -1,
                    zxid: -1,
                    err: 0,
                }
                .encode(b);
                event.encode(b);
            });
        }
    }

    fn record(&mut self, txn: Txn) {
        if self.config.record_history {
            self.history.push(txn);
        }
    }

    // ----- inspection -----

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The last zxid applied.
    pub fn last_zxid(&self) -> i64 {
        self.tree.last_zxid
    }

    /// Every transaction applied so far (when the configuration records them).
    pub fn history(&self) -> &[Txn] {
        &self.history
    }

    /// Takes the recorded transactions, leaving the record empty.
    pub fn drain_history(&mut self) -> Vec<Txn> {
        std::mem::take(&mut self.history)
    }

    /// A node: its data, the stat a client would see, its ACL and its children in the
    /// server's order.
    pub fn node(&self, path: &str) -> Option<NodeInfo> {
        let n = self.tree.get(path)?;
        Some(NodeInfo {
            data: n.data.clone(),
            stat: self.tree.stat(n),
            acl: n.acl.as_ref().clone(),
            children: self.tree.children(n),
        })
    }

    /// Every node path, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.tree.paths()
    }

    /// The live sessions' ids, in order.
    pub fn sessions(&self) -> Vec<i64> {
        self.sessions.sessions.keys().copied().collect()
    }

    /// The ephemeral nodes of a session, in the order the server lists them.
    pub fn ephemerals(&self, session: i64) -> Vec<String> {
        self.tree.ephemerals(session)
    }

    /// The session a connection carries (0 before its handshake), if it is open.
    pub fn session_of(&self, conn: ConnId) -> Option<i64> {
        self.conns.get(&conn).map(|c| c.session)
    }

    /// The open connections of a server.
    pub fn connections(&self, server: usize) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.server == server && !c.closed)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Watch registrations (data and child tables together), on every member.
    pub fn watch_count(&self) -> usize {
        std::iter::once(&self.tree)
            .chain(self.replicas.iter().flatten().map(|r| &r.tree))
            .map(|t| t.data_watches.count() + t.child_watches.count())
            .sum()
    }

    /// The last zxid server `server` applied: behind [`Ensemble::last_zxid`] while it
    /// lags ([`Config::follower_lag`]).
    pub fn applied_zxid(&self, server: usize) -> Option<i64> {
        (server < self.servers.len()).then(|| self.applied(server))
    }

    /// A node as server `server` serves it now, which may be older than
    /// [`Ensemble::node`] while the server lags.
    pub fn node_on(&self, server: usize, path: &str) -> Option<NodeInfo> {
        if server >= self.servers.len() {
            return None;
        }
        let tree = self.served(server);
        let n = tree.get(path)?;
        Some(NodeInfo {
            data: n.data.clone(),
            stat: tree.stat(n),
            acl: n.acl.as_ref().clone(),
            children: tree.children(n),
        })
    }

    /// The server whose connection carries a session now.
    pub fn server_of_session(&self, session: i64) -> Option<usize> {
        self.conns
            .values()
            .find(|c| c.session == session && !c.closed)
            .map(|c| c.server)
    }

    /// The server a connection belongs to.
    pub fn server_of(&self, conn: ConnId) -> Option<usize> {
        self.conns.get(&conn).map(|c| c.server)
    }

    /// True when the server serves read-write clients now.
    pub fn is_serving(&self, server: usize) -> bool {
        server < self.servers.len() && self.serving(server)
    }

    /// True when the server serves only read-only clients now (cut off from its quorum,
    /// with read-only mode on).
    pub fn is_read_only(&self, server: usize) -> bool {
        server < self.servers.len() && self.read_only(server)
    }

    /// The server's state.
    pub fn server_state(&self, server: usize) -> Option<ServerState> {
        self.servers.get(server).map(|s| s.state)
    }

    /// The leader's index, while there is one.
    pub fn leader(&self) -> Option<usize> {
        if self.election_until.is_some() {
            None
        } else {
            self.leader
        }
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Never true: there is at least one server.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Checks the model's own invariants (the tree's links and ephemeral sets, every open
    /// connection's session known to the ensemble); panics with what broke. For tests and
    /// fuzzing.
    pub fn check_invariants(&self) {
        self.tree.check();
        for r in self.replicas.iter().flatten() {
            r.tree.check();
        }
        for (id, c) in &self.conns {
            if c.initialized && !c.closed {
                assert!(
                    self.sessions.sessions.contains_key(&c.session),
                    "{id:?} is open for session {:#x}, which the ensemble does not know",
                    c.session
                );
            }
        }
    }
}

/// The server id in a server's session ids: a standalone server uses 1
/// (`createSessionTrackerServerId`), a member its own id.
fn session_prefix(config: &Config, myid: u64) -> u64 {
    if config.standalone { 1 } else { myid }
}

/// A node as [`Ensemble::node`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its data.
    pub data: Bytes,
    /// The stat a client would see.
    pub stat: Stat,
    /// Its ACL.
    pub acl: Vec<Acl>,
    /// Its children's names, in the order the server lists them.
    pub children: Vec<String>,
}
