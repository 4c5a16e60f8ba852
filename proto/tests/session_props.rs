//! Property tests of the session: for random sequences of calls, server behaviour, chunkings,
//! disconnects and timeouts, every request completes exactly once, nothing panics, and the
//! same inputs give the same outputs.

mod sim;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use sim::{connect_response, notification, ok_body, reply};
use zk_proto::codec::{FrameDecoder, Jute};
use zk_proto::consts::{EventType, OpCode};
use zk_proto::records::*;
use zk_proto::session::{Action, Config, Event, ProbeResult, RequestId, Session, SessionState};

#[derive(Debug, Clone)]
enum Step {
    Submit(u8, bool),
    AddAuth(bool),
    Answer { count: u8, chunk: u8, fail: bool },
    Notify(u8),
    ConnectOk { read_only: bool },
    ConnectFail,
    ConnectExpired,
    Drop,
    Advance(u16),
    Close,
    Garbage(Vec<u8>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => (any::<u8>(), any::<bool>()).prop_map(|(k, w)| Step::Submit(k, w)),
        1 => prop::bool::weighted(0.8).prop_map(Step::AddAuth),
        8 => (any::<u8>(), 1u8..40, prop::bool::weighted(0.2))
            .prop_map(|(count, chunk, fail)| Step::Answer { count, chunk, fail }),
        1 => any::<u8>().prop_map(Step::Notify),
        4 => prop::bool::weighted(0.2).prop_map(|read_only| Step::ConnectOk { read_only }),
        1 => Just(Step::ConnectFail),
        1 => Just(Step::ConnectExpired),
        1 => Just(Step::Drop),
        3 => (0u16..5000).prop_map(Step::Advance),
        1 => Just(Step::Close),
        1 => prop::collection::vec(any::<u8>(), 0..12).prop_map(Step::Garbage),
    ]
}

const PATHS: [&str; 4] = ["/a", "/a/b", "/c", "/"];

fn request(kind: u8, watch: bool) -> Request {
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
struct World {
    s: Session,
    now: Instant,
    log: Vec<String>,
    issued: Vec<RequestId>,
    done: BTreeMap<RequestId, usize>,
    want_connect: Option<usize>,
    tcp_up: bool,
    handshaken: bool,
    from_client: FrameDecoder,
    unanswered: VecDeque<(i32, Request)>,
    zxid: i64,
}

impl World {
    fn new(seed: u64) -> World {
        let config = Config::new("h1:1,h2:2,h3:3/root")
            .unwrap()
            .with_seed(seed)
            .with_read_only(true)
            .with_session_timeout(Duration::from_secs(6))
            .with_queue_limit(50);
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
            from_client: FrameDecoder::new(1 << 24),
            unanswered: VecDeque::new(),
            zxid: 1,
        };
        w.drain();
        w
    }

    /// Collects everything the session produced, as a driver would.
    fn drain(&mut self) {
        while let Some(a) = self.s.poll_action() {
            self.log.push(format!("action {a:?}"));
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
        while let Some(bytes) = self.s.poll_transmit() {
            self.log.push(format!("transmit {bytes:?}"));
            if self.tcp_up {
                self.from_client.push(&bytes);
            }
        }
        while let Some(e) = self.s.poll_event() {
            self.log.push(format!("event {e:?}"));
            if let Event::Complete { id, .. } = e {
                *self.done.entry(id).or_default() += 1;
            }
        }
        // Bring the server's view of the stream up to date.
        while let Ok(Some(frame)) = self.from_client.next_frame() {
            if !self.handshaken {
                self.handshaken = true;
                assert!(ConnectRequest::decode(&frame).is_ok());
            } else {
                let (h, r) = Request::decode_frame(&frame).expect("the client sends valid frames");
                self.unanswered.push_back((h.xid, r));
            }
        }
    }

    fn reset_server(&mut self) {
        self.from_client.clear();
        self.handshaken = false;
        self.unanswered.clear();
    }

    fn input_chunked(&mut self, bytes: &[u8], chunk: usize) {
        for part in bytes.chunks(chunk.max(1)) {
            if !self.tcp_up {
                return;
            }
            self.s.handle_input(self.now, part);
            self.drain();
        }
    }

    fn run(&mut self, step: &Step) {
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
                for _ in 0..*count {
                    let Some((xid, req)) = self.unanswered.pop_front() else {
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
                    bytes.extend(frame);
                }
                self.input_chunked(&bytes, *chunk as usize);
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
                    let bytes = notification(kind, path.trim_end_matches('/'));
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
                    self.now = self.now.max(t);
                    self.s.handle_timeout(self.now);
                    self.drain();
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
        }
        self.drain();
    }

    /// Closes the session and lets the server answer until it is closed.
    fn finish(&mut self) {
        self.s.close(self.now);
        self.drain();
        for _ in 0..100 {
            if self.s.state().is_terminal() && self.s.state() != SessionState::Expired {
                break;
            }
            if self.s.state() == SessionState::Expired && self.s.poll_timeout().is_none() {
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

fn run_all(seed: u64, steps: &[Step]) -> World {
    let mut w = World::new(seed);
    for s in steps {
        w.run(s);
    }
    w.finish();
    w
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_request_completes_exactly_once(seed in any::<u64>(), steps in prop::collection::vec(step(), 0..150)) {
        let w = run_all(seed, &steps);
        prop_assert!(w.s.state().is_terminal(), "state {:?}", w.s.state());
        for id in &w.issued {
            prop_assert_eq!(w.done.get(id).copied(), Some(1), "request {:?}", id);
        }
        prop_assert_eq!(w.done.len(), w.issued.len(), "completions for ids never issued");
        prop_assert!(w.s.watches().is_empty(), "watches survive the end of the session");
    }

    #[test]
    fn the_same_inputs_give_the_same_outputs(seed in any::<u64>(), steps in prop::collection::vec(step(), 0..60)) {
        let a = run_all(seed, &steps);
        let b = run_all(seed, &steps);
        prop_assert_eq!(a.log, b.log);
    }
}

#[test]
fn a_long_random_run_keeps_the_pending_queue_bounded() {
    // Not a proptest: one long fixed run, checking nothing accumulates while healthy.
    let mut w = World::new(3);
    for i in 0..2000u32 {
        if w.want_connect.is_some() {
            w.run(&Step::ConnectOk { read_only: false });
        }
        w.run(&Step::Submit((i % 64) as u8, i % 3 == 0));
        w.run(&Step::Answer {
            count: 255,
            chunk: (i % 37 + 1) as u8,
            fail: i % 5 == 0,
        });
        if i % 100 == 0 {
            w.run(&Step::Drop);
        }
        assert!(w.s.in_flight() < 10, "in flight: {}", w.s.in_flight());
        let _ = OpCode::Ping;
    }
    w.finish();
    assert_eq!(w.done.len(), w.issued.len());
    assert!(w.done.values().all(|&n| n == 1));
}
