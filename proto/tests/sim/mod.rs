//! A scripted server and a simulated clock for driving a `Session` in tests.

#![allow(dead_code)]

pub mod model;
pub mod world;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zk_proto::codec::{FrameDecoder, Jute, Writer, write_frame};
use zk_proto::consts::{EventType, KeeperState, OpCode};
use zk_proto::records::*;
use zk_proto::session::{Action, Config, Event, RequestId, Session};

/// What the client sent, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    Connect(ConnectRequest),
    Request(i32, Request),
}

impl Sent {
    pub fn xid(&self) -> i32 {
        match self {
            Sent::Connect(_) => panic!("a ConnectRequest has no xid"),
            Sent::Request(x, _) => *x,
        }
    }
    pub fn request(&self) -> &Request {
        match self {
            Sent::Connect(c) => panic!("not a request: {c:?}"),
            Sent::Request(_, r) => r,
        }
    }
}

pub struct Sim {
    pub s: Session,
    pub now: Instant,
    pub actions: Vec<Action>,
    pub events: Vec<Event>,
    /// Raw bytes of every transmit on the current connection.
    pub wire: Vec<u8>,
    frames: FrameDecoder,
    handshaken: bool,
    pub zxid: i64,
}

impl Sim {
    pub fn new(config: Config) -> Sim {
        let now = Instant::now();
        let s = Session::new(config, now);
        let mut sim = Sim {
            s,
            now,
            actions: Vec::new(),
            events: Vec::new(),
            wire: Vec::new(),
            frames: FrameDecoder::new(usize::MAX >> 1),
            handshaken: false,
            zxid: 100,
        };
        sim.pump();
        sim
    }

    pub fn config(hosts: &str) -> Config {
        Config::new(hosts)
            .unwrap()
            .with_seed(1)
            .with_shuffle(false)
            .with_session_timeout(Duration::from_secs(6))
    }

    /// Collects actions and events (not transmits).
    pub fn pump(&mut self) {
        while let Some(a) = self.s.poll_action() {
            if matches!(a, Action::Connect { .. } | Action::Disconnect(_)) {
                self.frames.clear();
                self.handshaken = false;
            }
            self.actions.push(a);
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
    }

    pub fn take_actions(&mut self) -> Vec<Action> {
        self.pump();
        std::mem::take(&mut self.actions)
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        self.pump();
        std::mem::take(&mut self.events)
    }

    /// Decodes everything the client queued for sending.
    pub fn sent(&mut self) -> Vec<Sent> {
        self.pump();
        let mut out = Vec::new();
        while let Some(bytes) = self.s.poll_transmit() {
            self.wire.extend_from_slice(&bytes);
            self.frames.push(&bytes);
        }
        while let Some(frame) = self.frames.next_frame().unwrap() {
            if !self.handshaken {
                self.handshaken = true;
                out.push(Sent::Connect(ConnectRequest::decode(&frame).unwrap().0));
            } else {
                let (h, r) = Request::decode_frame(&frame).unwrap();
                out.push(Sent::Request(h.xid, r));
            }
        }
        out
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.s.handle_timeout(self.now);
        self.pump();
    }

    /// Runs the clock to the session's next deadline.
    pub fn run_to_deadline(&mut self) -> Duration {
        let t = self.s.poll_timeout().expect("a deadline");
        let d = t.saturating_duration_since(self.now);
        self.now = self.now.max(t);
        self.s.handle_timeout(self.now);
        self.pump();
        d
    }

    pub fn input(&mut self, bytes: &[u8]) {
        self.s.handle_input(self.now, bytes);
        self.pump();
    }

    pub fn connected(&mut self) {
        self.s.handle_connected(self.now);
        self.pump();
    }

    /// Connects the TCP side and answers the handshake.
    pub fn establish(
        &mut self,
        session_id: i64,
        timeout_ms: i32,
        read_only: bool,
    ) -> ConnectRequest {
        self.connected();
        let sent = self.sent();
        let Some(Sent::Connect(req)) = sent.first().cloned() else {
            panic!("expected a ConnectRequest, got {sent:?}");
        };
        self.input(&connect_response(session_id, timeout_ms, read_only));
        req
    }

    pub fn submit(&mut self, r: Request) -> RequestId {
        let id = self.s.submit(self.now, r).unwrap();
        self.pump();
        id
    }

    /// Replies to `xid` with a success body.
    pub fn reply_ok(&mut self, xid: i32, op: OpCode, body: &Response) {
        self.zxid += 1;
        let bytes = reply(xid, self.zxid, 0, Some((op, body)));
        self.input(&bytes);
    }

    pub fn reply_err(&mut self, xid: i32, err: i32) {
        let bytes = reply(xid, self.zxid, err, None);
        self.input(&bytes);
    }

    pub fn completions(&mut self) -> Vec<(RequestId, Result<Response, zk_proto::session::Error>)> {
        self.take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Complete { id, result, .. } => Some((id, result)),
                _ => None,
            })
            .collect()
    }
}

pub fn connect_response(session_id: i64, timeout: i32, read_only: bool) -> Vec<u8> {
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout,
        session_id,
        passwd: Bytes::from_static(b"0123456789abcdef"),
        read_only,
    };
    let mut b = BytesMut::new();
    write_frame(&mut b, |b| resp.encode(b));
    b.to_vec()
}

pub fn reply(xid: i32, zxid: i64, err: i32, body: Option<(OpCode, &Response)>) -> Vec<u8> {
    let mut b = BytesMut::new();
    write_frame(&mut b, |b| {
        ReplyHeader { xid, zxid, err }.encode(b);
        if let Some((_, r)) = body {
            r.write(&mut Writer::new(b));
        }
    });
    b.to_vec()
}

pub fn notification(kind: EventType, path: &str) -> Vec<u8> {
    let mut b = BytesMut::new();
    write_frame(&mut b, |b| {
        ReplyHeader {
            xid: -1,
            zxid: -1,
            err: 0,
        }
        .encode(b);
        WatcherEvent {
            kind: kind.as_i32(),
            state: KeeperState::SyncConnected.as_i32(),
            path: path.into(),
        }
        .encode(b);
    });
    b.to_vec()
}

/// A plausible success body for any opcode.
pub fn ok_body(req: &Request) -> Response {
    let stat = Stat::default();
    match req {
        Request::Create(r) => Response::Create(CreateResponse {
            path: r.path.clone(),
        }),
        Request::Create2(r) | Request::CreateContainer(r) => Response::Create2(Create2Response {
            path: r.path.clone(),
            stat,
        }),
        Request::CreateTtl(r) => Response::Create2(Create2Response {
            path: r.path.clone(),
            stat,
        }),
        Request::Exists(_) | Request::SetData(_) | Request::SetAcl(_) => Response::Stat(stat),
        Request::GetData(_) | Request::GetConfig { .. } => Response::GetData(GetDataResponse {
            data: Bytes::from_static(b"v"),
            stat,
        }),
        Request::GetAcl(_) => Response::GetAcl(GetAclResponse {
            acl: Acl::open_unsafe(),
            stat,
        }),
        Request::GetChildren(_) => Response::GetChildren(GetChildrenResponse {
            children: vec!["a".into()],
        }),
        Request::GetChildren2(_) => Response::GetChildren2(GetChildren2Response {
            children: vec!["a".into()],
            stat,
        }),
        Request::Sync(r) => Response::Sync(SyncResponse {
            path: r.path.clone(),
        }),
        Request::GetAllChildrenNumber(_) => {
            Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number: 3 })
        }
        Request::GetEphemerals(_) => {
            Response::GetEphemerals(GetEphemeralsResponse { ephemerals: vec![] })
        }
        Request::AddWatch(_) => Response::Status(ErrorResponse { err: 0 }),
        Request::WhoAmI => Response::WhoAmI(WhoAmIResponse {
            client_info: vec![],
        }),
        Request::Multi(m) | Request::MultiRead(m) => Response::Multi(MultiResponse {
            results: m.ops.iter().map(|_| OpResult::Check).collect(),
        }),
        _ => Response::Empty,
    }
}
