//! A randomised world around a Session, shared by the property tests and the fuzz targets:
//! a driver that performs the session's actions, a scripted server that answers every
//! request in order (or fails it, or sends garbage), connection events and time. It checks
//! the session's invariants as it goes: every request completes at most once, every transmit
//! is whole frames that decode, nothing grows past its limit.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::codec::{DEFAULT_MAX_REQUEST, FrameDecoder, Jute};
use zk_proto::consts::EventType;
use zk_proto::records::*;
use zk_proto::session::{Action, Config, Event, ProbeResult, RequestId, Session};

use super::{connect_response, notification, ok_body, reply};

/// The queue limit of the world's sessions.
pub const QUEUE_LIMIT: usize = 50;
/// The session timeout the world's sessions ask for and its server grants, in milliseconds.
pub const SESSION_TIMEOUT_MS: u64 = 6000;
/// The largest frame the world's sessions accept from a server. Every reply the scripted
/// server sends is far smaller; a small limit lets fuzzers reach it with short inputs.
pub const MAX_FRAME: usize = 1024;

/// One thing that happens to a session: a call, a server answer, a connection event, time.
#[derive(Debug, Clone, arbitrary::Arbitrary)]
pub enum Step {
    Submit(u8, bool),
    AddAuth(bool),
    Answer {
        count: u8,
        chunk: u8,
        fail: bool,
    },
    Notify(u8),
    ConnectOk {
        read_only: bool,
    },
    ConnectFail,
    ConnectExpired,
    Drop,
    Advance(u16),
    Close,
    Garbage(Vec<u8>),
    /// Drops one of the watch registrations (picked by index among them, in id order):
    /// `release_watch`, or `forget_watch` when the flag is set.
    Release(u8, bool),
    /// Replaces the host list with one of a few (servers leave, join, or both).
    UpdateHosts(u8),
}

/// The host lists [`Step::UpdateHosts`] picks from.
const HOST_LISTS: [&str; 4] = [
    "h1:1,h2:2,h3:3",
    "h2:2,h3:3",
    "h1:1,h4:4",
    "h1:1,h2:2,h3:3,h4:4,h5:5",
];

const PATHS: [&str; 4] = ["/a", "/a/b", "/c", "/"];

pub fn request(kind: u8, watch: bool) -> Request {
    let path = PATHS[kind as usize % PATHS.len()].to_string();
    match kind / 4 % 8 {
        0 => Request::GetData(GetDataRequest { path, watch }),
        1 => Request::Exists(ExistsRequest { path, watch }),
        2 => Request::GetChildren(GetChildrenRequest { path, watch }),
        3 => Request::AddWatch(AddWatchRequest {
            path,
            mode: (kind % 2) as i32,
        }),
        4 => Request::SetData(SetDataRequest {
            path,
            data: Bytes::from_static(b"d"),
            version: -1,
        }),
        5 => Request::RemoveWatches(RemoveWatchesRequest { path, kind: 3 }),
        6 => Request::Sync(SyncRequest { path }),
        _ => Request::Create(CreateRequest {
            path: "/new".into(),
            data: Bytes::new(),
            acl: Acl::open_unsafe(),
            flags: 0,
        }),
    }
}

/// A scripted server on the other end of whatever connection the session asked for.
/// A session, the driver around it, and a scripted server on the other end.
pub struct World {
    pub s: Session,
    pub now: Instant,
    pub log: Vec<String>,
    pub issued: Vec<RequestId>,
    pub done: BTreeMap<RequestId, usize>,
    pub want_connect: Option<usize>,
    pub tcp_up: bool,
    pub handshaken: bool,
    pub from_client: FrameDecoder,
    /// Frames the server received and has not answered: xid, request, when it arrived.
    pub unanswered: VecDeque<(i32, Request, Instant)>,
    /// Every frame the server received after a handshake, in order: when, and whether it
    /// was a ping (never cleared, so a model can replay the timeline of a step).
    pub sends: Vec<(Instant, bool)>,
    pub zxid: i64,
    /// Extra `handle_timeout(now)` calls after every step (time-invariance checks).
    pub extra_timeouts: bool,
    /// The order the driver drains the session's queues in: 0 actions, 1 transmits,
    /// 2 events.
    pub drain_order: [u8; 3],
    /// What the server answered in the last step: each request and the error code.
    pub answered: Vec<(Request, i32, Instant)>,
    /// Notifications delivered in the last step.
    pub notified: Vec<(EventType, String)>,
    /// Every event of the last step, in order.
    pub events: Vec<Event>,
    /// The server's side of the stream the session reads, split as the session splits it:
    /// it refuses a frame longer than the session's limit at the same byte the session must.
    shadow: FrameDecoder,
    shadow_refused: bool,
}

impl World {
    pub fn new(seed: u64) -> World {
        let config = Config::new("h1:1,h2:2,h3:3/root")
            .unwrap()
            .with_seed(seed)
            .with_read_only(true)
            .with_session_timeout(Duration::from_millis(SESSION_TIMEOUT_MS))
            .with_queue_limit(QUEUE_LIMIT)
            .with_max_frame(MAX_FRAME);
        let now = Instant::now();
        let mut w = World {
            s: Session::new(config, now),
            now,
            log: Vec::new(),
            issued: Vec::new(),
            done: BTreeMap::new(),
            want_connect: None,
            tcp_up: false,
            handshaken: false,
            from_client: FrameDecoder::new(DEFAULT_MAX_REQUEST),
            unanswered: VecDeque::new(),
            sends: Vec::new(),
            zxid: 1,
            extra_timeouts: false,
            drain_order: [0, 1, 2],
            answered: Vec::new(),
            notified: Vec::new(),
            events: Vec::new(),
            shadow: FrameDecoder::new(MAX_FRAME),
            shadow_refused: false,
        };
        w.drain();
        w
    }

    /// Collects everything the session produced, as a driver would: each of the three
    /// queues in `drain_order`, again until all are empty.
    fn drain(&mut self) {
        loop {
            let mut any = false;
            for kind in self.drain_order {
                any |= match kind {
                    0 => self.drain_actions(),
                    1 => self.drain_transmits(),
                    _ => self.drain_events(),
                };
            }
            if !any {
                break;
            }
        }
        self.check_and_serve();
    }

    fn drain_actions(&mut self) -> bool {
        let mut any = false;
        while let Some(a) = self.s.poll_action() {
            any = true;
            // Times relative to now: two worlds started at different instants log alike.
            match &a {
                Action::Probe {
                    host,
                    addr,
                    deadline,
                } => self.log.push(format!(
                    "action Probe {{ host: {host}, addr: {addr}, deadline: now + {:?} }}",
                    deadline.saturating_duration_since(self.now)
                )),
                _ => self.log.push(format!("action {a:?}")),
            }
            match a {
                Action::Connect { host, .. } => {
                    self.want_connect = Some(host);
                    self.tcp_up = false;
                    self.reset_server();
                }
                Action::Disconnect(_) => {
                    self.want_connect = None;
                    self.tcp_up = false;
                    self.reset_server();
                }
                Action::Probe { host, .. } => {
                    let result = if host == 2 {
                        ProbeResult::ReadWrite
                    } else {
                        ProbeResult::Unreachable
                    };
                    self.s.handle_probe_result(self.now, host, result);
                }
            }
        }
        any
    }

    fn drain_transmits(&mut self) -> bool {
        let mut any = false;
        while let Some(bytes) = self.s.poll_transmit() {
            any = true;
            self.log.push(format!("transmit {bytes:?}"));
            // Bytes to send exist only for a connection that is up: the session empties
            // them when it asks for a disconnect. (Drained before the actions, the
            // connection a pending disconnect is about to close is still up.)
            assert!(self.tcp_up, "bytes to transmit with no connection up");
            self.from_client.push(&bytes);
        }
        any
    }

    fn drain_events(&mut self) -> bool {
        let mut any = false;
        while let Some(e) = self.s.poll_event() {
            any = true;
            self.log.push(format!("event {e:?}"));
            if let Event::Complete { id, .. } = &e {
                assert!(
                    self.issued.contains(id),
                    "{id:?} completed but was never issued"
                );
                let n = self.done.entry(*id).or_default();
                *n += 1;
                assert_eq!(*n, 1, "request {id:?} completed twice");
            }
            self.events.push(e);
        }
        any
    }

    fn check_and_serve(&mut self) {
        // Nothing grows past its limit: the queue stays within the configured limit, and
        // everything the session holds for the application (waiting or in flight) is a
        // request it accepted and has not completed.
        assert!(self.s.queued() <= QUEUE_LIMIT, "{} queued", self.s.queued());
        assert!(
            self.s.in_flight() + self.s.queued() <= self.issued.len() - self.done.len(),
            "{} in flight and {} queued, {} outstanding",
            self.s.in_flight(),
            self.s.queued(),
            self.issued.len() - self.done.len()
        );
        // Bring the server's view of the stream up to date. Every frame must be within the
        // server's request limit (the decoder refuses a longer one, failing below) and
        // decode; every transmit ends on a frame boundary.
        loop {
            let frame = match self.from_client.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => panic!("the client sent an unframeable stream: {e}"),
            };
            if !self.handshaken {
                self.handshaken = true;
                assert!(ConnectRequest::decode(&frame).is_ok());
            } else {
                let (h, r) = Request::decode_frame(&frame).expect("the client sends valid frames");
                self.sends.push((self.now, matches!(r, Request::Ping)));
                self.unanswered.push_back((h.xid, r, self.now));
            }
        }
        assert_eq!(
            self.from_client.buffered(),
            0,
            "a transmit ended inside a frame"
        );
    }

    fn reset_server(&mut self) {
        self.from_client.clear();
        self.handshaken = false;
        self.unanswered.clear();
        self.shadow.clear();
        self.shadow_refused = false;
    }

    /// Feeds `bytes` in chunks while the connection is up; returns how many were fed.
    fn input_chunked(&mut self, bytes: &[u8], chunk: usize) -> usize {
        let mut fed = 0;
        for part in bytes.chunks(chunk.max(1)) {
            if !self.tcp_up {
                break;
            }
            self.s.handle_input(self.now, part);
            fed += part.len();
            self.shadow.push(part);
            while !self.shadow_refused {
                match self.shadow.next_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => self.shadow_refused = true,
                }
            }
            self.drain();
            // Bounded memory: once a length prefix above the limit has arrived, the session
            // must have dropped the connection rather than buffer toward it; while it keeps
            // the connection it holds less than one frame of what it read.
            if self.tcp_up {
                assert!(
                    !self.shadow_refused,
                    "the session kept reading after a frame above its limit"
                );
                assert!(self.shadow.buffered() <= MAX_FRAME);
            }
        }
        fed
    }

    pub fn run(&mut self, step: &Step) {
        self.answered.clear();
        self.notified.clear();
        self.events.clear();
        self.run_step(step);
        if self.extra_timeouts {
            // Early and repeated wake-ups: nothing is due, so nothing may change.
            self.s.handle_timeout(self.now);
            self.s.handle_timeout(self.now);
            self.drain();
        }
    }

    fn run_step(&mut self, step: &Step) {
        self.log.push(format!("step {step:?}"));
        match step {
            Step::Submit(kind, watch) => {
                if let Ok(id) = self.s.submit(self.now, request(*kind, *watch)) {
                    self.issued.push(id);
                }
            }
            Step::AddAuth(ok) => {
                let creds: &[u8] = if *ok { b"user:pass" } else { b"bad" };
                if let Ok(id) = self.s.add_auth(self.now, "digest", creds) {
                    self.issued.push(id);
                }
            }
            Step::Answer { count, chunk, fail } => {
                let mut bytes = Vec::new();
                let mut ends = Vec::new();
                for _ in 0..*count {
                    let Some((xid, req, sent_at)) = self.unanswered.pop_front() else {
                        break;
                    };
                    self.zxid += 1;
                    let frame = match &req {
                        Request::Auth(a) if &a.auth[..] == b"bad" => {
                            reply(xid, 0, zk_proto::ErrorCode::AuthFailed.as_i32(), None)
                        }
                        _ if *fail && xid > 0 => reply(xid, self.zxid, -101, None),
                        _ => reply(xid, self.zxid, 0, Some((req.opcode(), &ok_body(&req)))),
                    };
                    let err = i32::from_be_bytes([frame[16], frame[17], frame[18], frame[19]]);
                    self.answered.push((req, err, sent_at));
                    bytes.extend(frame);
                    ends.push(bytes.len());
                }
                let fed = self.input_chunked(&bytes, *chunk as usize);
                // Only what reached the session counts; it reads nothing after a refusal of
                // credentials (the connection is gone).
                let reached = ends.iter().take_while(|&&end| end <= fed).count();
                self.answered.truncate(reached);
                let refused = zk_proto::ErrorCode::AuthFailed.as_i32();
                if let Some(i) = self.answered.iter().position(|(_, e, _)| *e == refused) {
                    self.answered.truncate(i + 1);
                }
            }
            Step::Notify(k) => {
                let kind = [
                    EventType::NodeCreated,
                    EventType::NodeDeleted,
                    EventType::NodeDataChanged,
                    EventType::NodeChildrenChanged,
                ][*k as usize % 4];
                let path = format!("/root{}", PATHS[*k as usize / 4 % PATHS.len()]);
                if self.handshaken && self.tcp_up {
                    let path = path.trim_end_matches('/').to_string();
                    let bytes = notification(kind, &path);
                    self.notified.push((kind, path));
                    self.input_chunked(&bytes, 7);
                }
            }
            Step::ConnectOk { read_only } => {
                if self.want_connect.take().is_some() {
                    self.tcp_up = true;
                    self.s.handle_connected(self.now);
                    self.drain();
                    let sid = 0x77 + self.zxid;
                    self.input_chunked(&connect_response(sid, 6000, *read_only), 5);
                }
            }
            Step::ConnectFail => {
                if self.want_connect.take().is_some() {
                    self.s.handle_connect_failed(self.now, "refused".into());
                }
            }
            Step::ConnectExpired => {
                if self.want_connect.take().is_some() {
                    self.tcp_up = true;
                    self.s.handle_connected(self.now);
                    self.drain();
                    self.input_chunked(&connect_response(0, 0, false), 3);
                }
            }
            Step::Drop => {
                if self.tcp_up {
                    self.tcp_up = false;
                    self.want_connect = None;
                    self.s.handle_disconnected(self.now, "reset".into());
                }
            }
            Step::Advance(ms) => {
                let target = self.now + Duration::from_millis(*ms as u64);
                // Wake at every deadline on the way, as a driver's timer would.
                while let Some(t) = self.s.poll_timeout() {
                    if t > target {
                        break;
                    }
                    if self.extra_timeouts && t > self.now {
                        // An early wake-up, half way to the deadline: nothing is due yet.
                        self.s.handle_timeout(self.now + (t - self.now) / 2);
                        self.drain();
                    }
                    self.now = self.now.max(t);
                    self.s.handle_timeout(self.now);
                    self.drain();
                    if self.extra_timeouts {
                        // A repeated wake-up at the same instant.
                        self.s.handle_timeout(self.now);
                        self.drain();
                    }
                }
                self.now = target;
                self.s.handle_timeout(self.now);
            }
            Step::Close => self.s.close(self.now),
            Step::Garbage(bytes) => {
                if self.tcp_up && self.handshaken {
                    let b = bytes.clone();
                    self.input_chunked(&b, 4);
                }
            }
            Step::UpdateHosts(k) => {
                let list = HOST_LISTS[*k as usize % HOST_LISTS.len()];
                let hosts = zk_proto::session::HostList::parse(list).unwrap();
                let moves = self.s.update_hosts(self.now, hosts);
                self.log.push(format!("update_hosts {list} moves={moves}"));
                assert!(self.s.hosts().len() >= 2);
            }
            Step::Release(k, forget) => {
                let ids = self.registered();
                if !ids.is_empty() {
                    let id = ids[*k as usize % ids.len()];
                    if *forget {
                        assert!(self.s.forget_watch(id));
                    } else if let Some(removal) = self.s.release_watch(self.now, id) {
                        self.issued.push(removal);
                    }
                    assert!(self.s.watches().get(id).is_none());
                }
            }
        }
        self.drain();
    }

    /// Closes the session and lets the server answer until it is closed.
    pub fn finish(&mut self) {
        self.s.close(self.now);
        self.drain();
        for _ in 0..100 {
            if self.s.is_finished() {
                break;
            }
            self.run(&Step::Answer {
                count: 255,
                chunk: 64,
                fail: false,
            });
            self.run(&Step::Advance(5000));
        }
    }
}

impl World {
    /// The ids of the requests holding a watch registration, in id order.
    pub fn registered(&self) -> Vec<RequestId> {
        self.issued
            .iter()
            .copied()
            .filter(|id| self.s.watches().get(*id).is_some())
            .collect()
    }

    /// After [`World::finish`]: the session is over, every request completed exactly once,
    /// nothing completed that was never issued, and no watch is left.
    pub fn check_complete(&self) {
        assert!(self.s.state().is_terminal(), "state {:?}", self.s.state());
        for id in &self.issued {
            assert_eq!(self.done.get(id).copied(), Some(1), "request {id:?}");
        }
        assert_eq!(
            self.done.len(),
            self.issued.len(),
            "completions for ids never issued"
        );
        assert!(
            self.s.watches().is_empty(),
            "watches survive the end of the session"
        );
        assert_eq!(self.s.in_flight() + self.s.queued(), 0);
    }

    /// Feeds `bytes` as server input in the given chunk size, if connected.
    pub fn server_bytes(&mut self, bytes: &[u8], chunk: usize) {
        self.input_chunked(bytes, chunk);
    }
}

/// Runs `steps` on a fresh world, then closes the session and lets everything finish.
pub fn run_all(seed: u64, steps: &[Step]) -> World {
    let mut w = World::new(seed);
    for s in steps {
        w.run(s);
    }
    w.finish();
    w
}
