//! A seeded world for testing code that uses a [`Session`]: the model ensemble, any number
//! of sessions, a virtual network between them and a virtual clock, stepped one event at
//! a time. Everything random comes from the seed, so a failing seed replays exactly, and
//! everything that happens is recorded with its virtual time.

mod history;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::records::{Request, Response};
use zk_proto::session::{
    Action, Config as SessionConfig, Error, Event, ProbeResult, RequestId, Session,
};

pub use history::{Happened, Record};

use crate::{Config, ConnId, Ensemble, Output, ServerState, Txn};
use zk_proto::session::rng::Rng;

/// A client (one [`Session`]) of a [`Simulation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub usize);

/// Something that goes wrong, on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Kill a server: its connections break, new ones are refused.
    Kill(usize),
    /// Start a killed server again.
    Restart(usize),
    /// Freeze a server until resumed.
    Pause(usize),
    /// Unfreeze a server.
    Resume(usize),
    /// Freeze a server for a while.
    Stall(usize, Duration),
    /// Make a server unreachable: its links go silent, connection attempts hang.
    Partition(usize),
    /// Make a partitioned server reachable again.
    Heal(usize),
    /// The server expires this client's session now.
    ExpireSession(ClientId),
    /// The next reply to this client is lost: the request is applied, then its connection
    /// breaks.
    LoseNextReply(ClientId),
    /// This client's connection goes silent in both directions without closing.
    BlackHole(ClientId),
    /// This client's connection breaks after `after` more bytes from the server.
    Cut {
        /// The client.
        client: ClientId,
        /// Bytes still delivered before the break.
        after: usize,
    },
    /// This client's connection is reset now.
    Reset(ClientId),
    /// This client's connection gets this much extra latency each way.
    Delay(ClientId, Duration),
    /// Cuts this client off the network: its connection goes silent and its connection
    /// attempts hang, until [`Fault::Rejoin`].
    Isolate(ClientId),
    /// Ends a client's isolation.
    Rejoin(ClientId),
}

/// How a simulation is set up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed every random choice comes from.
    pub seed: u64,
    /// The model ensemble's settings.
    pub ensemble: Config,
    /// One-way latency, drawn per message between these bounds.
    pub latency: (Duration, Duration),
}

impl SimConfig {
    /// A standalone server with a 200 ms tick, 100 µs to 2 ms of latency, and `seed`.
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            ensemble: Config::standalone()
                .tick(Duration::from_millis(200))
                .extended_types(true),
            latency: (Duration::from_micros(100), Duration::from_millis(2)),
        }
    }

    /// Uses this ensemble configuration.
    pub fn ensemble(mut self, config: Config) -> Self {
        self.ensemble = config;
        self
    }

    /// One-way latency bounds.
    pub fn latency(mut self, min: Duration, max: Duration) -> Self {
        self.latency = (min, max.max(min));
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkFault {
    None,
    BlackHole,
    Cut(usize),
}

#[derive(Debug)]
struct Link {
    client: ClientId,
    conn: ConnId,
    last_to_server: Instant,
    last_to_client: Instant,
    fault: LinkFault,
    extra: Duration,
}

#[derive(Debug)]
struct Client {
    session: Session,
    link: Option<u64>,
    /// The connection attempt in progress, by number.
    attempt: Option<u64>,
    events: VecDeque<Event>,
}

#[derive(Debug)]
enum Net {
    ConnectDone {
        client: ClientId,
        attempt: u64,
        server: usize,
    },
    ConnectRefused {
        client: ClientId,
        attempt: u64,
    },
    ProbeDone {
        client: ClientId,
        host: usize,
        result: ProbeResult,
    },
    ToServer {
        link: u64,
        data: Bytes,
    },
    ToClient {
        link: u64,
        data: Bytes,
    },
    /// The server side closed: the client learns it.
    ServerClosed {
        link: u64,
        why: &'static str,
    },
    /// The client side closed: the server learns it.
    ClientClosed {
        conn: ConnId,
    },
}

/// Sessions, the model ensemble, a network and a clock, all virtual.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use zk_proto::records::{Acl, CreateRequest, Request, Response};
/// use zk_sim::harness::{SimConfig, Simulation};
///
/// let mut sim = Simulation::new(SimConfig::new(7), std::time::Instant::now());
/// let a = sim.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
/// let id = sim
///     .submit(a, Request::Create(CreateRequest {
///         path: "/hello".into(),
///         data: Bytes::from_static(b"world"),
///         acl: Acl::open_unsafe(),
///         flags: 0,
///     }))
///     .unwrap();
/// let done = sim.wait(a, id, Duration::from_secs(5)).expect("completes");
/// assert!(matches!(done, Ok(Response::Create(_))));
/// assert_eq!(&sim.ensemble().node("/hello").unwrap().data[..], b"world");
/// ```
#[derive(Debug)]
pub struct Simulation {
    start: Instant,
    now: Instant,
    rng: Rng,
    latency: (Duration, Duration),
    ensemble: Ensemble,
    clients: Vec<Client>,
    links: BTreeMap<u64, Link>,
    by_conn: BTreeMap<ConnId, u64>,
    next_link: u64,
    next_attempt: u64,
    net: BTreeMap<(Instant, u64), Net>,
    next_seq: u64,
    scheduled: BTreeMap<(Instant, u64), Fault>,
    partitioned: BTreeSet<usize>,
    isolated: BTreeSet<ClientId>,
    history: Vec<Record>,
    steps: u64,
    /// Steps taken without the clock moving, to catch a livelock.
    still: u64,
}

/// The host name of model server `i` in session connect strings.
fn host_name(i: usize) -> String {
    format!("zk{i}")
}

fn server_of(host: &str) -> Option<usize> {
    host.strip_prefix("zk")?.parse().ok()
}

impl Simulation {
    /// A world with the model ensemble up and no clients yet, its virtual clock starting at
    /// `start` (any instant: only differences from it are used, so runs replay exactly).
    pub fn new(config: SimConfig, start: Instant) -> Simulation {
        Simulation {
            start,
            now: start,
            rng: Rng::new(config.seed),
            latency: config.latency,
            ensemble: Ensemble::new(config.ensemble, start),
            clients: Vec::new(),
            links: BTreeMap::new(),
            by_conn: BTreeMap::new(),
            next_link: 1,
            next_attempt: 1,
            net: BTreeMap::new(),
            next_seq: 0,
            scheduled: BTreeMap::new(),
            partitioned: BTreeSet::new(),
            isolated: BTreeSet::new(),
            history: Vec::new(),
            steps: 0,
            still: 0,
        }
    }

    /// The connect string that names every model server (`zk0:2181,zk1:2181,...`).
    pub fn connect_string(&self) -> String {
        (0..self.ensemble.len())
            .map(|i| format!("{}:2181", host_name(i)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Adds a session over every server, configured by `configure` (timeouts, chroot via
    /// [`Simulation::add_client_with`], ...). Its seed comes from the simulation's.
    pub fn add_client(
        &mut self,
        configure: impl FnOnce(SessionConfig) -> SessionConfig,
    ) -> ClientId {
        self.add_client_with("", configure)
    }

    /// Adds a session with a chroot (`"/app"`, or `""` for none).
    pub fn add_client_with(
        &mut self,
        chroot: &str,
        configure: impl FnOnce(SessionConfig) -> SessionConfig,
    ) -> ClientId {
        let hosts = format!("{}{chroot}", self.connect_string());
        let base = SessionConfig::new(&hosts)
            .expect("the model's connect string parses")
            .with_seed(self.rng.next_u64());
        let session = Session::new(configure(base), self.now);
        let id = ClientId(self.clients.len());
        self.clients.push(Client {
            session,
            link: None,
            attempt: None,
            events: VecDeque::new(),
        });
        self.pump(id);
        id
    }

    // ----- time -----

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn at(&self) -> Duration {
        self.now - self.start
    }

    fn push_record(&mut self, what: Happened) {
        self.history.push(Record {
            at: self.at(),
            what,
        });
    }

    // ----- clients -----

    /// The session of a client, to read its state.
    pub fn session(&self, client: ClientId) -> &Session {
        &self.clients[client.0].session
    }

    /// Runs `f` on a client's session at the current virtual time (for `close`,
    /// `add_auth`, `release_watch`...), then carries out what it asked for.
    pub fn with_session<T>(
        &mut self,
        client: ClientId,
        f: impl FnOnce(&mut Session, Instant) -> T,
    ) -> T {
        let now = self.now;
        let out = f(&mut self.clients[client.0].session, now);
        self.pump(client);
        out
    }

    /// Submits a request on a client's session.
    pub fn submit(&mut self, client: ClientId, request: Request) -> Result<RequestId, Error> {
        let now = self.now;
        let id = self.clients[client.0]
            .session
            .submit(now, request.clone())?;
        self.push_record(Happened::Submit {
            client,
            id,
            request,
        });
        self.pump(client);
        Ok(id)
    }

    /// The next event delivered to a client's application, if any.
    pub fn poll_event(&mut self, client: ClientId) -> Option<Event> {
        self.clients[client.0].events.pop_front()
    }

    /// Runs the world until request `id` of `client` completes or `timeout` of virtual
    /// time passes. The completion is taken from the client's events; other events stay.
    pub fn wait(
        &mut self,
        client: ClientId,
        id: RequestId,
        timeout: Duration,
    ) -> Option<Result<Response, Error>> {
        let found = |sim: &Simulation| {
            sim.clients[client.0]
                .events
                .iter()
                .position(|e| matches!(e, Event::Complete { id: done, .. } if *done == id))
        };
        self.run_until(timeout, |sim| found(sim).is_some());
        let at = found(self)?;
        match self.clients[client.0].events.remove(at) {
            Some(Event::Complete { result, .. }) => Some(result),
            _ => None,
        }
    }

    /// Submits a request and waits for its outcome.
    pub fn call(
        &mut self,
        client: ClientId,
        request: Request,
        timeout: Duration,
    ) -> Option<Result<Response, Error>> {
        match self.submit(client, request) {
            Ok(id) => self.wait(client, id, timeout),
            Err(e) => Some(Err(e)),
        }
    }

    // ----- the world -----

    /// The model ensemble.
    pub fn ensemble(&self) -> &Ensemble {
        &self.ensemble
    }

    /// The transactions the model applied (the server's history).
    pub fn server_history(&self) -> &[Txn] {
        self.ensemble.history()
    }

    /// Everything that happened on the client side, and every fault.
    pub fn history(&self) -> &[Record] {
        &self.history
    }

    /// The history as text, one line per record, for printing a failing schedule.
    pub fn render_history(&self) -> String {
        self.history.iter().map(|r| format!("{r}\n")).collect()
    }

    /// Injects a fault now.
    pub fn fault(&mut self, fault: Fault) {
        self.push_record(Happened::Fault(fault.clone()));
        let now = self.now;
        match fault {
            Fault::Kill(s) => self.ensemble.kill(now, s),
            Fault::Restart(s) => self.ensemble.restart(now, s),
            Fault::Pause(s) => self.ensemble.pause(now, s, None),
            Fault::Resume(s) => self.ensemble.resume(now, s),
            Fault::Stall(s, d) => self.ensemble.stall(now, s, d),
            Fault::Partition(s) => {
                self.partitioned.insert(s);
                let links: Vec<u64> = self
                    .links
                    .iter()
                    .filter(|(_, l)| self.link_server(l) == Some(s))
                    .map(|(id, _)| *id)
                    .collect();
                for l in links {
                    if let Some(link) = self.links.get_mut(&l) {
                        link.fault = LinkFault::BlackHole;
                    }
                }
            }
            Fault::Heal(s) => {
                self.partitioned.remove(&s);
            }
            Fault::ExpireSession(c) => {
                let id = self.clients[c.0].session.session_id();
                self.ensemble.expire_session(now, id);
            }
            Fault::LoseNextReply(c) => {
                if let Some(l) = self.clients[c.0].link.and_then(|l| self.links.get(&l)) {
                    self.ensemble.lose_next_reply(l.conn);
                }
            }
            Fault::BlackHole(c) => self.set_link_fault(c, LinkFault::BlackHole),
            Fault::Cut { client, after } => self.set_link_fault(client, LinkFault::Cut(after)),
            Fault::Reset(c) => {
                if let Some(l) = self.clients[c.0].link {
                    self.break_link(l, "reset");
                }
            }
            Fault::Isolate(c) => {
                self.isolated.insert(c);
                self.set_link_fault(c, LinkFault::BlackHole);
            }
            Fault::Rejoin(c) => {
                self.isolated.remove(&c);
            }
            Fault::Delay(c, d) => {
                if let Some(l) = self.clients[c.0].link.and_then(|l| self.links.get_mut(&l)) {
                    l.extra = d;
                }
            }
        }
        self.drain_server();
    }

    /// Injects a fault once `after` of virtual time has passed from now.
    pub fn fault_after(&mut self, after: Duration, fault: Fault) {
        let seq = self.seq();
        self.scheduled.insert((self.now + after, seq), fault);
    }

    /// A fault picked at random (from the simulation's seed) among those that keep the
    /// ensemble able to recover: a stall, a reset, a lost reply, a cut, a black hole, or
    /// killing a server that is restarted shortly after.
    pub fn random_fault(&mut self) -> Fault {
        let servers = self.ensemble.len();
        let clients = self.clients.len().max(1);
        let server = self.rng.between(0, servers as u64 - 1) as usize;
        let client = ClientId(self.rng.between(0, clients as u64 - 1) as usize);
        match self.rng.between(0, 5) {
            0 => Fault::Stall(server, Duration::from_millis(self.rng.between(50, 1500))),
            1 => Fault::Reset(client),
            2 => Fault::LoseNextReply(client),
            3 => Fault::Cut {
                client,
                after: self.rng.between(0, 200) as usize,
            },
            4 => Fault::BlackHole(client),
            _ => {
                let back = Duration::from_millis(self.rng.between(100, 3000));
                self.fault_after(back, Fault::Restart(server));
                Fault::Kill(server)
            }
        }
    }

    fn set_link_fault(&mut self, client: ClientId, fault: LinkFault) {
        if let Some(l) = self.clients[client.0]
            .link
            .and_then(|l| self.links.get_mut(&l))
        {
            l.fault = fault;
        }
    }

    fn link_server(&self, link: &Link) -> Option<usize> {
        self.ensemble.server_of(link.conn)
    }

    // ----- running -----

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn latency(&mut self) -> Duration {
        let (lo, hi) = self.latency;
        Duration::from_nanos(self.rng.between(lo.as_nanos() as u64, hi.as_nanos() as u64))
    }

    fn schedule(&mut self, at: Instant, event: Net) {
        let seq = self.seq();
        self.net.insert((at, seq), event);
    }

    /// When the next thing happens (a fault, a message, a server's or a session's timer);
    /// `None` when nothing is left to happen. A driver that hosts work of its own on
    /// virtual time steps the simulation only as far as its own next deadline.
    pub fn next_time(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut consider = |x: Instant| t = Some(t.map_or(x, |y| y.min(x)));
        if let Some(((at, _), _)) = self.scheduled.first_key_value() {
            consider(*at);
        }
        if let Some(((at, _), _)) = self.net.first_key_value() {
            consider(*at);
        }
        if let Some(at) = self.ensemble.poll_timeout() {
            consider(at);
        }
        for c in &self.clients {
            if let Some(at) = c.session.poll_timeout() {
                consider(at);
            }
        }
        t
    }

    /// Moves to the next event and handles it. False when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        let Some(t) = self.next_time() else {
            return false;
        };
        self.steps += 1;
        if t > self.now {
            self.now = t;
            self.still = 0;
        } else {
            self.still += 1;
            assert!(
                self.still < 1_000_000,
                "the simulation is stuck at {:?} (a timer that never clears); history:\n{}",
                self.at(),
                self.render_history()
            );
        }
        let now = self.now;
        if let Some(entry) = self.scheduled.first_entry()
            && entry.key().0 <= now
        {
            let fault = entry.remove();
            self.fault(fault);
            return true;
        }
        if let Some(entry) = self.net.first_entry()
            && entry.key().0 <= now
        {
            let event = entry.remove();
            self.deliver(event);
            return true;
        }
        if self.ensemble.poll_timeout().is_some_and(|at| at <= now) {
            self.ensemble.handle_timeout(now);
            self.drain_server();
            return true;
        }
        for i in 0..self.clients.len() {
            if self.clients[i]
                .session
                .poll_timeout()
                .is_some_and(|at| at <= now)
            {
                self.clients[i].session.handle_timeout(now);
                self.pump(ClientId(i));
                return true;
            }
        }
        true
    }

    /// Runs until `done` holds or `timeout` of virtual time passes (the clock then stands
    /// at the deadline). Returns whether `done` held.
    pub fn run_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Simulation) -> bool,
    ) -> bool {
        let deadline = self.now + timeout;
        loop {
            if done(self) {
                return true;
            }
            match self.next_time() {
                Some(t) if t <= deadline => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return done(self);
                }
            }
        }
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(duration, |_| false);
    }

    /// How many steps ran so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    // ----- plumbing -----

    /// Carries out everything a client's session asks for after an input.
    fn pump(&mut self, client: ClientId) {
        loop {
            let mut busy = false;
            while let Some(action) = self.clients[client.0].session.poll_action() {
                busy = true;
                self.act(client, action);
            }
            if let Some(data) = self.clients[client.0].session.poll_transmit() {
                busy = true;
                self.send_to_server(client, data);
            }
            while let Some(event) = self.clients[client.0].session.poll_event() {
                self.record_event(client, &event);
                self.clients[client.0].events.push_back(event);
            }
            if !busy {
                return;
            }
        }
    }

    fn record_event(&mut self, client: ClientId, event: &Event) {
        let what = match event {
            Event::Complete { id, result, .. } => Happened::Complete {
                client,
                id: *id,
                result: result.clone(),
            },
            Event::Watch(w) => Happened::Watch {
                client,
                event: w.clone(),
            },
            Event::State { state, .. } => Happened::State {
                client,
                state: *state,
            },
            Event::App(a) => Happened::App { client, state: *a },
        };
        self.push_record(what);
    }

    fn act(&mut self, client: ClientId, action: Action) {
        match action {
            Action::Connect { addr, .. } => {
                if let Some(l) = self.clients[client.0].link.take() {
                    self.close_from_client(l);
                }
                let attempt = self.next_attempt;
                self.next_attempt += 1;
                self.clients[client.0].attempt = Some(attempt);
                let Some(server) = server_of(&addr.host) else {
                    let at = self.now;
                    self.schedule(at, Net::ConnectRefused { client, attempt });
                    return;
                };
                if self.partitioned.contains(&server) || self.isolated.contains(&client) {
                    // The SYN goes nowhere: the session's connect timeout ends the attempt.
                    return;
                }
                let rtt = self.latency() + self.latency();
                let at = self.now + rtt;
                if self.ensemble.server_state(server) == Some(ServerState::Down)
                    || server >= self.ensemble.len()
                {
                    self.schedule(at, Net::ConnectRefused { client, attempt });
                } else {
                    self.schedule(
                        at,
                        Net::ConnectDone {
                            client,
                            attempt,
                            server,
                        },
                    );
                }
            }
            Action::Disconnect(_) => {
                if let Some(l) = self.clients[client.0].link.take() {
                    self.close_from_client(l);
                }
                self.clients[client.0].attempt = None;
            }
            Action::Probe { host, addr, .. } => {
                let result = match server_of(&addr.host) {
                    Some(s)
                        if !self.partitioned.contains(&s) && !self.isolated.contains(&client) =>
                    {
                        match self.ensemble.server_state(s) {
                            Some(ServerState::Up) if self.ensemble.is_read_only(s) => {
                                ProbeResult::ReadOnly
                            }
                            Some(ServerState::Up) if self.ensemble.is_serving(s) => {
                                ProbeResult::ReadWrite
                            }
                            _ => ProbeResult::Unreachable,
                        }
                    }
                    _ => ProbeResult::Unreachable,
                };
                let at = self.now + self.latency() + self.latency();
                self.schedule(
                    at,
                    Net::ProbeDone {
                        client,
                        host,
                        result,
                    },
                );
            }
        }
    }

    fn send_to_server(&mut self, client: ClientId, data: Bytes) {
        let Some(l) = self.clients[client.0].link else {
            return;
        };
        let delay = self.latency();
        let Some(link) = self.links.get_mut(&l) else {
            return;
        };
        if link.fault == LinkFault::BlackHole {
            return;
        }
        let at = (self.now + delay + link.extra).max(link.last_to_server);
        link.last_to_server = at;
        self.schedule(at, Net::ToServer { link: l, data });
    }

    /// The client closes its end: the server hears of it after a latency.
    fn close_from_client(&mut self, l: u64) {
        if let Some(link) = self.links.remove(&l) {
            self.by_conn.remove(&link.conn);
            let at = (self.now + self.latency()).max(link.last_to_server);
            self.schedule(at, Net::ClientClosed { conn: link.conn });
            self.push_record(Happened::Disconnected {
                client: link.client,
                why: "closed by the client".into(),
            });
        }
    }

    /// Both ends learn at once that the link broke.
    fn break_link(&mut self, l: u64, why: &'static str) {
        let Some(link) = self.links.remove(&l) else {
            return;
        };
        self.by_conn.remove(&link.conn);
        let now = self.now;
        self.ensemble.handle_close(now, link.conn);
        let client = link.client;
        if self.clients[client.0].link == Some(l) {
            self.clients[client.0].link = None;
            self.push_record(Happened::Disconnected {
                client,
                why: why.into(),
            });
            self.clients[client.0]
                .session
                .handle_disconnected(now, why.to_string());
            self.pump(client);
        }
    }

    /// Routes what the model ensemble produced to the clients.
    fn drain_server(&mut self) {
        while let Some(out) = self.ensemble.poll_output() {
            match out {
                Output::Transmit { conn, data } => {
                    let Some(&l) = self.by_conn.get(&conn) else {
                        continue;
                    };
                    let delay = self.latency();
                    let Some(link) = self.links.get_mut(&l) else {
                        continue;
                    };
                    match link.fault {
                        LinkFault::BlackHole => continue,
                        LinkFault::Cut(left) if data.len() >= left => {
                            let part = data.slice(..left);
                            link.fault = LinkFault::Cut(0);
                            let at = (self.now + delay + link.extra).max(link.last_to_client);
                            link.last_to_client = at;
                            if !part.is_empty() {
                                self.schedule(
                                    at,
                                    Net::ToClient {
                                        link: l,
                                        data: part,
                                    },
                                );
                            }
                            self.schedule(
                                at,
                                Net::ServerClosed {
                                    link: l,
                                    why: "cut",
                                },
                            );
                            continue;
                        }
                        LinkFault::Cut(left) => link.fault = LinkFault::Cut(left - data.len()),
                        LinkFault::None => {}
                    }
                    let at = (self.now + delay + link.extra).max(link.last_to_client);
                    link.last_to_client = at;
                    self.schedule(at, Net::ToClient { link: l, data });
                }
                Output::Close { conn } => {
                    let Some(l) = self.by_conn.remove(&conn) else {
                        continue;
                    };
                    let delay = self.latency();
                    if let Some(link) = self.links.get_mut(&l) {
                        if link.fault == LinkFault::BlackHole {
                            continue;
                        }
                        let at = (self.now + delay).max(link.last_to_client);
                        link.last_to_client = at;
                        self.schedule(
                            at,
                            Net::ServerClosed {
                                link: l,
                                why: "closed by the server",
                            },
                        );
                    }
                }
            }
        }
    }

    fn deliver(&mut self, event: Net) {
        let now = self.now;
        match event {
            Net::ConnectDone {
                client,
                attempt,
                server,
            } => {
                if self.clients[client.0].attempt != Some(attempt) {
                    return;
                }
                self.clients[client.0].attempt = None;
                let Ok(conn) = self.ensemble.accept(now, server, "127.0.0.1") else {
                    self.clients[client.0]
                        .session
                        .handle_connect_failed(now, "connection refused".into());
                    self.pump(client);
                    return;
                };
                let l = self.next_link;
                self.next_link += 1;
                self.links.insert(
                    l,
                    Link {
                        client,
                        conn,
                        last_to_server: now,
                        last_to_client: now,
                        fault: LinkFault::None,
                        extra: Duration::ZERO,
                    },
                );
                self.by_conn.insert(conn, l);
                self.clients[client.0].link = Some(l);
                self.push_record(Happened::Connected { client, server });
                self.clients[client.0].session.handle_connected(now);
                self.pump(client);
            }
            Net::ConnectRefused { client, attempt } => {
                if self.clients[client.0].attempt != Some(attempt) {
                    return;
                }
                self.clients[client.0].attempt = None;
                self.clients[client.0]
                    .session
                    .handle_connect_failed(now, "connection refused".into());
                self.pump(client);
            }
            Net::ProbeDone {
                client,
                host,
                result,
            } => {
                self.clients[client.0]
                    .session
                    .handle_probe_result(now, host, result);
                self.pump(client);
            }
            Net::ToServer { link, data } => {
                let Some(conn) = self.links.get(&link).map(|l| l.conn) else {
                    return;
                };
                self.ensemble.handle_input(now, conn, &data);
                self.drain_server();
            }
            Net::ToClient { link, data } => {
                let Some(client) = self.links.get(&link).map(|l| l.client) else {
                    return;
                };
                if self.clients[client.0].link != Some(link) {
                    return;
                }
                self.clients[client.0].session.handle_input(now, &data);
                self.pump(client);
            }
            Net::ServerClosed { link, why } => {
                if self.links.contains_key(&link) {
                    self.break_link(link, why);
                }
            }
            Net::ClientClosed { conn } => {
                self.ensemble.handle_close(now, conn);
                self.drain_server();
            }
        }
    }
}
