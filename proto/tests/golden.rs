//! Golden bytes: frames recorded between the reference Java client and a real ZooKeeper 3.8
//! server (`golden/capture.sh`, see `golden/README.md`). Every frame must decode with this
//! crate's codec and encode back to exactly the recorded bytes; the decoded values must then
//! tell the story `golden/Capture.java` scripted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::{Bytes, BytesMut};
use zk_proto::ErrorCode;
use zk_proto::codec::{FrameDecoder, Jute, Writer, write_frame};
use zk_proto::consts::{AddWatchMode, CreateMode, EventType, KeeperState, OpCode};
use zk_proto::records::*;

const FIXTURE: &str = include_str!("golden/frames.txt");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    C2s,
    S2c,
}

/// One line of the fixture.
#[derive(Debug)]
struct Line {
    conn: u32,
    dir: Dir,
    label: String,
    frame: Bytes,
}

fn unhex(s: &str) -> Bytes {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect::<Vec<u8>>()
        .into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn fixture() -> Vec<Line> {
    FIXTURE
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(n, l)| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 4, "line {}: `<conn> <dir> <label> <hex>`", n + 1);
            let dir = match f[1] {
                "c2s" => Dir::C2s,
                "s2c" => Dir::S2c,
                d => panic!("line {}: direction {d}", n + 1),
            };
            Line {
                conn: f[0].parse().expect("connection number"),
                dir,
                label: f[2].to_string(),
                frame: unhex(f[3]),
            }
        })
        .collect()
}

/// The opcode's name in `ZooDefs.OpCode`, as record.py writes it in labels.
fn op_name(op: OpCode) -> &'static str {
    match op {
        OpCode::Notification => "notification",
        OpCode::Create => "create",
        OpCode::Delete => "delete",
        OpCode::Exists => "exists",
        OpCode::GetData => "getData",
        OpCode::SetData => "setData",
        OpCode::GetAcl => "getACL",
        OpCode::SetAcl => "setACL",
        OpCode::GetChildren => "getChildren",
        OpCode::Sync => "sync",
        OpCode::Ping => "ping",
        OpCode::GetChildren2 => "getChildren2",
        OpCode::Check => "check",
        OpCode::Multi => "multi",
        OpCode::Create2 => "create2",
        OpCode::Reconfig => "reconfig",
        OpCode::CheckWatches => "checkWatches",
        OpCode::RemoveWatches => "removeWatches",
        OpCode::CreateContainer => "createContainer",
        OpCode::DeleteContainer => "deleteContainer",
        OpCode::CreateTtl => "createTTL",
        OpCode::MultiRead => "multiRead",
        OpCode::Auth => "auth",
        OpCode::SetWatches => "setWatches",
        OpCode::Sasl => "sasl",
        OpCode::GetEphemerals => "getEphemerals",
        OpCode::GetAllChildrenNumber => "getAllChildrenNumber",
        OpCode::SetWatches2 => "setWatches2",
        OpCode::AddWatch => "addWatch",
        OpCode::WhoAmI => "whoAmI",
        OpCode::CreateSession => "createSession",
        OpCode::CloseSession => "closeSession",
        OpCode::Error => "error",
    }
}

/// The jute records (zookeeper.jute class names) a request body is made of.
fn request_records(req: &Request) -> Vec<&'static str> {
    let one: &[&str] = match req {
        Request::Create(_) | Request::Create2(_) | Request::CreateContainer(_) => {
            &["CreateRequest", "ACL", "Id"]
        }
        Request::CreateTtl(_) => &["CreateTTLRequest", "ACL", "Id"],
        Request::Delete(_) => &["DeleteRequest"],
        Request::Exists(_) => &["ExistsRequest"],
        Request::GetData(_) | Request::GetConfig { .. } => &["GetDataRequest"],
        Request::SetData(_) => &["SetDataRequest"],
        Request::GetAcl(_) => &["GetACLRequest"],
        Request::SetAcl(_) => &["SetACLRequest", "ACL", "Id"],
        Request::GetChildren(_) => &["GetChildrenRequest"],
        // Same fields as GetChildrenRequest, another name in zookeeper.jute.
        Request::GetChildren2(_) => &["GetChildren2Request"],
        Request::GetAllChildrenNumber(_) => &["GetAllChildrenNumberRequest"],
        Request::GetEphemerals(_) => &["GetEphemeralsRequest"],
        Request::Sync(_) => &["SyncRequest"],
        Request::Check(_) => &["CheckVersionRequest"],
        Request::Reconfig(_) => &["ReconfigRequest"],
        Request::CheckWatches(_) => &["CheckWatchesRequest"],
        Request::RemoveWatches(_) => &["RemoveWatchesRequest"],
        Request::AddWatch(_) => &["AddWatchRequest"],
        Request::Auth(_) => &["AuthPacket"],
        Request::SetWatches(_) => &["SetWatches"],
        Request::SetWatches2(_) => &["SetWatches2"],
        Request::Sasl(_) => &["GetSASLRequest"],
        Request::WhoAmI | Request::Ping | Request::CloseSession => &[],
        Request::Multi(m) | Request::MultiRead(m) => {
            let mut all = vec!["MultiHeader"];
            for op in &m.ops {
                all.extend_from_slice(match op {
                    MultiOp::Create(_) | MultiOp::Create2(_) | MultiOp::CreateContainer(_) => {
                        &["CreateRequest", "ACL", "Id"]
                    }
                    MultiOp::CreateTtl(_) => &["CreateTTLRequest", "ACL", "Id"],
                    MultiOp::Delete(_) => &["DeleteRequest"],
                    MultiOp::SetData(_) => &["SetDataRequest"],
                    MultiOp::Check(_) => &["CheckVersionRequest"],
                    MultiOp::GetData(_) => &["GetDataRequest"],
                    MultiOp::GetChildren(_) => &["GetChildrenRequest"],
                });
            }
            return all;
        }
    };
    one.to_vec()
}

/// The jute records the body of a successful reply to `op` is made of.
fn response_records(op: OpCode, resp: &Response) -> Vec<&'static str> {
    let one: &[&str] = match resp {
        Response::Empty => &[],
        Response::Create(_) => &["CreateResponse"],
        Response::Create2(_) => &["Create2Response", "Stat"],
        Response::Stat(_) => match op {
            OpCode::Exists => &["ExistsResponse", "Stat"],
            OpCode::SetData => &["SetDataResponse", "Stat"],
            OpCode::SetAcl => &["SetACLResponse", "Stat"],
            _ => panic!("a bare Stat answering {op:?}"),
        },
        Response::GetData(_) => &["GetDataResponse", "Stat"],
        Response::GetAcl(_) => &["GetACLResponse", "ACL", "Id", "Stat"],
        Response::GetChildren(_) => &["GetChildrenResponse"],
        Response::GetChildren2(_) => &["GetChildren2Response", "Stat"],
        Response::Sync(_) => &["SyncResponse"],
        Response::GetAllChildrenNumber(_) => &["GetAllChildrenNumberResponse"],
        Response::GetEphemerals(_) => &["GetEphemeralsResponse"],
        Response::WhoAmI(_) => &["WhoAmIResponse", "ClientInfo"],
        Response::Sasl(_) => &["SetSASLResponse"],
        // addWatch.
        Response::Status(_) => &["ErrorResponse"],
        Response::Multi(m) => {
            let mut all = vec!["MultiHeader"];
            for r in &m.results {
                all.extend_from_slice(match r {
                    OpResult::Create(_) => &["CreateResponse"],
                    OpResult::Create2(_) => &["Create2Response", "Stat"],
                    OpResult::SetData(_) => &["SetDataResponse", "Stat"],
                    OpResult::GetData(_) => &["GetDataResponse", "Stat"],
                    OpResult::GetChildren(_) => &["GetChildrenResponse"],
                    OpResult::Error(_) => &["ErrorResponse"],
                    OpResult::Delete | OpResult::Check => &[],
                });
            }
            return all;
        }
    };
    one.to_vec()
}

/// A request and what the server answered.
#[derive(Debug)]
struct Exchange {
    xid: i32,
    request: Request,
    reply: Option<ReplyHeader>,
    /// The decoded body of a successful reply.
    response: Option<Response>,
}

impl Exchange {
    fn op(&self) -> OpCode {
        self.request.opcode()
    }

    fn error(&self) -> ErrorCode {
        ErrorCode::from_i32(self.reply.expect("answered").err)
    }

    fn response(&self) -> &Response {
        self.response
            .as_ref()
            .unwrap_or_else(|| panic!("no reply body: {self:?}"))
    }
}

/// One connection, decoded.
#[derive(Debug, Default)]
struct Conn {
    connect: ConnectRequest,
    connected: ConnectResponse,
    exchanges: Vec<Exchange>,
    notifications: Vec<(ReplyHeader, WatcherEvent)>,
    /// Reply zxids in order (notifications excluded).
    zxids: Vec<i64>,
}

impl Conn {
    fn of(&self, op: OpCode) -> Vec<&Exchange> {
        self.exchanges.iter().filter(|e| e.op() == op).collect()
    }

    fn ops(&self) -> Vec<OpCode> {
        self.exchanges.iter().map(Exchange::op).collect()
    }
}

/// Splits one direction of a connection again with [`FrameDecoder`], fed in awkward chunks,
/// and checks it finds the frames the proxy found.
fn check_framing(lines: &[&Line], dir: Dir) {
    let frames: Vec<&Bytes> = lines
        .iter()
        .filter(|l| l.dir == dir)
        .map(|l| &l.frame)
        .collect();
    let stream: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
    let mut decoder = FrameDecoder::new(zk_proto::codec::DEFAULT_MAX_FRAME);
    let mut found = Vec::new();
    for chunk in stream.chunks(7) {
        decoder.push(chunk);
        while let Some(body) = decoder.next_frame().expect("frame") {
            found.push(body);
        }
    }
    assert_eq!(found.len(), frames.len(), "{dir:?} frame count");
    for (body, frame) in found.iter().zip(&frames) {
        assert_eq!(&body[..], &frame[4..]);
    }
}

/// The frame without its length prefix, checking the prefix on the way.
fn body(frame: &Bytes) -> Bytes {
    let len = i32::from_be_bytes(frame[..4].try_into().unwrap());
    assert_eq!(
        len as usize,
        frame.len() - 4,
        "length prefix of {}",
        hex(frame)
    );
    frame.slice(4..)
}

/// Decodes, re-encodes and compares every frame of one connection.
fn decode_connection(lines: &[&Line], kinds: &mut BTreeSet<&'static str>) -> Conn {
    check_framing(lines, Dir::C2s);
    check_framing(lines, Dir::S2c);

    let mut conn = Conn::default();
    let mut pending: VecDeque<usize> = VecDeque::new();
    let (mut handshake_sent, mut handshake_received) = (false, false);
    for line in lines {
        let body = body(&line.frame);
        let mut again = BytesMut::new();
        let label: String;
        match line.dir {
            Dir::C2s if !handshake_sent => {
                handshake_sent = true;
                let (req, used) = ConnectRequest::decode(&body).expect("ConnectRequest");
                assert_eq!(used, body.len(), "ConnectRequest length");
                write_frame(&mut again, |b| req.encode(b));
                conn.connect = req;
                kinds.insert("ConnectRequest");
                label = "connect".into();
            }
            Dir::S2c if !handshake_received => {
                handshake_received = true;
                let (resp, used) = ConnectResponse::decode(&body).expect("ConnectResponse");
                assert_eq!(used, body.len(), "ConnectResponse length");
                write_frame(&mut again, |b| resp.encode(b));
                conn.connected = resp;
                kinds.insert("ConnectResponse");
                label = "connect".into();
            }
            Dir::C2s => {
                let (header, req) = Request::decode_frame(&body)
                    .unwrap_or_else(|e| panic!("request {}: {e}", hex(&line.frame)));
                req.encode_frame(header.xid, "", &mut again);
                match &req {
                    Request::Ping | Request::Auth(_) => {
                        assert_eq!(Some(header.xid), req.special_xid(), "{req:?}")
                    }
                    // Everything else has an ordinary xid, SetWatches and SetWatches2
                    // included: the Java client builds them with xid -8, but its socket
                    // layer gives every packet other than ping and auth a fresh xid when it
                    // sends it. The server echoes whichever xid it gets.
                    _ => assert!(header.xid > 0, "{req:?}"),
                }
                kinds.insert("RequestHeader");
                kinds.extend(request_records(&req));
                label = op_name(req.opcode()).into();
                pending.push_back(conn.exchanges.len());
                conn.exchanges.push(Exchange {
                    xid: header.xid,
                    request: req,
                    reply: None,
                    response: None,
                });
            }
            Dir::S2c => {
                let (header, used) = ReplyHeader::decode(&body).expect("ReplyHeader");
                kinds.insert("ReplyHeader");
                let rest = body.slice(used..);
                let w_header = |b: &mut BytesMut| header.encode(b);
                if header.xid == -1 {
                    let (event, n) = WatcherEvent::decode(&rest).expect("WatcherEvent");
                    assert_eq!(n, rest.len(), "WatcherEvent length");
                    assert_eq!(header.err, 0);
                    write_frame(&mut again, |b| {
                        w_header(b);
                        event.encode(b);
                    });
                    kinds.insert("WatcherEvent");
                    conn.notifications.push((header, event));
                    label = "notification".into();
                } else {
                    // The server answers a connection's requests in the order they came.
                    let at = pending
                        .pop_front()
                        .expect("a reply with no request pending");
                    let exchange = &mut conn.exchanges[at];
                    assert_eq!(header.xid, exchange.xid, "reply out of order");
                    let op = exchange.op();
                    conn.zxids.push(header.zxid);
                    if header.err != 0 {
                        // An error reply is the header alone.
                        write_frame(&mut again, |b| w_header(b));
                        label = format!("{}!{}", op_name(op), header.err);
                    } else {
                        let resp = Response::decode_for(op, &rest)
                            .unwrap_or_else(|e| panic!("reply to {op:?}: {e}"));
                        write_frame(&mut again, |b| {
                            w_header(b);
                            resp.write(&mut Writer::new(b));
                        });
                        kinds.extend(response_records(op, &resp));
                        exchange.response = Some(resp);
                        label = op_name(op).into();
                    }
                    exchange.reply = Some(header);
                }
            }
        }
        assert_eq!(
            hex(&again),
            hex(&line.frame),
            "connection {} {:?} {}: re-encoded bytes differ",
            line.conn,
            line.dir,
            line.label
        );
        assert_eq!(label, line.label, "connection {}: label", line.conn);
    }
    assert!(pending.is_empty(), "unanswered requests: {pending:?}");
    conn
}

fn created_path(resp: &Response) -> &str {
    match resp {
        Response::Create(c) => &c.path,
        Response::Create2(c) => &c.path,
        other => panic!("not a create reply: {other:?}"),
    }
}

fn event(kind: EventType, path: &str) -> (EventType, String) {
    (kind, path.to_string())
}

fn events(conn: &Conn) -> Vec<(EventType, String)> {
    conn.notifications
        .iter()
        .map(|(h, e)| {
            assert_eq!(h.zxid, -1, "notifications carry zxid -1");
            assert_eq!(e.keeper_state(), Some(KeeperState::SyncConnected));
            (e.event_type().expect("event type"), e.path.clone())
        })
        .collect()
}

fn check_handshake(conn: &Conn, read_only: bool) {
    let (req, resp) = (&conn.connect, &conn.connected);
    assert_eq!(req.protocol_version, 0);
    assert_eq!(req.timeout, 4000);
    assert_eq!(req.read_only, read_only);
    assert_eq!(resp.protocol_version, 0);
    assert_eq!(resp.timeout, 4000, "tickTime 200 allows up to 4 s");
    assert_ne!(resp.session_id, 0);
    assert_eq!(resp.passwd.len(), 16);
    assert!(!resp.read_only, "a standalone server is read-write");
}

fn check_new_session(conn: &Conn, read_only: bool) {
    check_handshake(conn, read_only);
    assert_eq!(conn.connect.session_id, 0);
    assert_eq!(conn.connect.last_zxid_seen, 0);
    assert_eq!(&conn.connect.passwd[..], &[0u8; 16]);
}

fn check_resumed_session(conn: &Conn, of: &Conn) {
    check_handshake(conn, false);
    assert_eq!(conn.connect.session_id, of.connected.session_id);
    assert_eq!(conn.connect.passwd, of.connected.passwd);
    assert!(conn.connect.last_zxid_seen >= *of.zxids.iter().max().unwrap());
    assert_eq!(conn.connected.session_id, of.connected.session_id);
    assert_eq!(conn.connected.passwd, of.connected.passwd);
    // The credentials are sent again, then the watches.
    let Request::Auth(auth) = &conn.exchanges[0].request else {
        panic!("auth first after a resume: {:?}", conn.ops());
    };
    assert_eq!(
        (auth.scheme.as_str(), &auth.auth[..]),
        ("digest", &b"golden:secret"[..])
    );
}

/// Connection 1: the "main" client, most operations.
fn check_main(c: &Conn) {
    check_new_session(c, true);
    let ops = c.ops();
    assert_eq!(ops[0], OpCode::Auth);
    assert_eq!(ops.last(), Some(&OpCode::CloseSession));
    assert!(ops.contains(&OpCode::Ping), "an idle client pings");
    assert!(c.exchanges.iter().all(|e| e.reply.is_some()));
    let Request::Auth(auth) = &c.exchanges[0].request else {
        unreachable!()
    };
    assert_eq!((auth.kind, auth.scheme.as_str()), (0, "digest"));
    assert_eq!(&auth.auth[..], b"golden:secret");

    // Creates: the reply names the requested node, or a sequential name after it.
    let creates: Vec<&Exchange> = c
        .exchanges
        .iter()
        .filter(|e| {
            matches!(
                e.op(),
                OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl
            ) && e.error() == ErrorCode::Ok
        })
        .collect();
    assert_eq!(creates.len(), 7, "{creates:?}");
    for e in &creates {
        let asked = e.request.path().unwrap();
        let got = created_path(e.response());
        let sequential = match &e.request {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => {
                CreateMode::from_i32(r.flags).unwrap().is_sequential()
            }
            _ => false,
        };
        if sequential {
            let suffix = got.strip_prefix(asked).expect("sequential name");
            assert!(suffix.len() == 10 && suffix.bytes().all(|b| b.is_ascii_digit()));
        } else {
            assert_eq!(got, asked);
        }
    }
    let Request::Create(first) = &creates[0].request else {
        panic!("{:?}", creates[0])
    };
    assert_eq!(
        (first.path.as_str(), &first.data[..], &first.acl),
        ("/golden", &b"data"[..], &Acl::open_unsafe())
    );
    assert_eq!(first.flags, CreateMode::Persistent.as_i32());
    match (&creates[1].request, creates[1].response()) {
        (Request::Create2(r), Response::Create2(resp)) => {
            assert_eq!(resp.stat.data_length as usize, r.data.len());
            assert_eq!(resp.stat.ephemeral_owner, 0);
        }
        other => panic!("create2: {other:?}"),
    }
    match &creates[2].request {
        Request::CreateContainer(r) => assert_eq!(r.flags, CreateMode::Container.as_i32()),
        other => panic!("createContainer: {other:?}"),
    }
    match &creates[3].request {
        Request::CreateTtl(r) => {
            assert_eq!(r.flags, CreateMode::PersistentWithTtl.as_i32());
            assert_eq!(r.ttl, 60_000);
        }
        other => panic!("createTTL: {other:?}"),
    }
    match &creates[4].request {
        Request::Create(r) => {
            assert_eq!(r.flags, CreateMode::EphemeralSequential.as_i32());
            assert_eq!(r.acl, Acl::creator_all());
        }
        other => panic!("ephemeral sequential create: {other:?}"),
    }
    // The sequence number is the parent's cversion: three children were created before.
    let ephemeral = created_path(creates[4].response());
    assert_eq!(ephemeral, "/golden/eph-0000000003");

    // Error replies: a header with the code and no body.
    let errors: Vec<(OpCode, ErrorCode)> = c
        .exchanges
        .iter()
        .filter(|e| e.error() != ErrorCode::Ok)
        .map(|e| (e.op(), e.error()))
        .collect();
    assert_eq!(
        errors,
        [
            (OpCode::Create, ErrorCode::NodeExists),
            (OpCode::Exists, ErrorCode::NoNode),
            (OpCode::SetData, ErrorCode::BadVersion),
            (OpCode::Reconfig, ErrorCode::ReconfigDisabled),
        ]
    );

    // exists (hit, with a watch), getData with a watch, setData firing the watch.
    let exists = c.of(OpCode::Exists);
    match (&exists[0].request, exists[0].response()) {
        (Request::Exists(r), Response::Stat(stat)) => {
            assert!(r.watch);
            assert_eq!(stat.data_length, 4);
        }
        other => panic!("exists: {other:?}"),
    }
    let get = c.of(OpCode::GetData);
    match (&get[0].request, get[0].response()) {
        (Request::GetData(r), Response::GetData(d)) => {
            assert_eq!((r.path.as_str(), r.watch), ("/golden", true));
            assert_eq!(&d.data[..], b"data");
            assert_eq!(d.stat.version, 0);
        }
        other => panic!("getData: {other:?}"),
    }
    match get[1].request.path() {
        Some("/zookeeper/config") => {}
        other => panic!("getConfig reads /zookeeper/config, not {other:?}"),
    }
    match c.of(OpCode::SetData)[0].response() {
        Response::Stat(stat) => assert_eq!(stat.version, 1),
        other => panic!("setData: {other:?}"),
    }
    assert_eq!(
        events(c),
        [
            event(EventType::NodeDataChanged, "/golden"),
            event(EventType::NodeCreated, "/golden/box/in"),
            // checkWatches only asked the server: its persistent watch was still there.
            event(EventType::NodeDeleted, "/golden/c2"),
        ]
    );

    // ACLs.
    match c.of(OpCode::GetAcl)[0].response() {
        Response::GetAcl(r) => assert_eq!(r.acl, Acl::open_unsafe()),
        other => panic!("getACL: {other:?}"),
    }
    match (
        &c.of(OpCode::SetAcl)[0].request,
        c.of(OpCode::SetAcl)[0].response(),
    ) {
        (Request::SetAcl(r), Response::Stat(stat)) => {
            assert_eq!(r.acl, Acl::read_unsafe());
            assert_eq!(stat.aversion, 1);
        }
        other => panic!("setACL: {other:?}"),
    }

    // Children, counts, ephemerals, sync.
    let mut children = match c.of(OpCode::GetChildren)[0].response() {
        Response::GetChildren(r) => r.children.clone(),
        other => panic!("getChildren: {other:?}"),
    };
    children.sort();
    assert_eq!(children, ["box", "c2", "eph-0000000003", "ttl"]);
    match c.of(OpCode::GetChildren2)[0].response() {
        Response::GetChildren2(r) => {
            assert_eq!(r.children.len(), 4);
            assert_eq!(r.stat.num_children, 4);
        }
        other => panic!("getChildren2: {other:?}"),
    }
    match c.of(OpCode::GetAllChildrenNumber)[0].response() {
        Response::GetAllChildrenNumber(r) => assert_eq!(r.total_number, 4),
        other => panic!("getAllChildrenNumber: {other:?}"),
    }
    match c.of(OpCode::GetEphemerals)[0].response() {
        Response::GetEphemerals(r) => assert_eq!(r.ephemerals, [ephemeral]),
        other => panic!("getEphemerals: {other:?}"),
    }
    match c.of(OpCode::Sync)[0].response() {
        Response::Sync(r) => assert_eq!(r.path, "/golden"),
        other => panic!("sync: {other:?}"),
    }

    // multi that succeeds, multi that fails, multiRead with a failing read.
    let multi = c.of(OpCode::Multi);
    let results = |e: &Exchange| match e.response() {
        Response::Multi(m) => m.results.clone(),
        other => panic!("multi: {other:?}"),
    };
    let ok = results(multi[0]);
    assert!(
        matches!(
            &ok[..],
            [
                OpResult::Create(m),
                OpResult::SetData(set),
                OpResult::Check,
                OpResult::Delete,
                OpResult::Create2(container),
                OpResult::Create2(ttl),
            ] if m.path == "/golden/m"
                && set.version == 1
                && container.path == "/golden/mbox"
                && ttl.path == "/golden/mttl"
        ),
        "{ok:?}"
    );
    match &multi[0].request {
        Request::Multi(m) => {
            let kinds: Vec<OpCode> = m.ops.iter().map(MultiOp::opcode).collect();
            assert_eq!(
                kinds,
                [
                    OpCode::Create,
                    OpCode::SetData,
                    OpCode::Check,
                    OpCode::Delete,
                    OpCode::CreateContainer,
                    OpCode::CreateTtl,
                ]
            );
        }
        other => panic!("multi: {other:?}"),
    }
    // Rolled back: Ok before the failing op, RuntimeInconsistency after it.
    assert_eq!(
        results(multi[1]),
        [
            OpResult::Error(ErrorCode::Ok),
            OpResult::Error(ErrorCode::NoNode),
            OpResult::Error(ErrorCode::RuntimeInconsistency),
        ]
    );
    let read = results(c.of(OpCode::MultiRead)[0]);
    assert!(
        matches!(
            &read[..],
            [OpResult::GetData(d), OpResult::GetChildren(_), OpResult::Error(ErrorCode::NoNode)]
                if &d.data[..] == b"v2"
        ),
        "{read:?}"
    );

    // Watch management: addWatch answers ErrorResponse(0).
    let add = c.of(OpCode::AddWatch);
    let modes: Vec<i32> = add
        .iter()
        .map(|e| match &e.request {
            Request::AddWatch(r) => r.mode,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        modes,
        [
            AddWatchMode::Persistent.as_i32(),
            AddWatchMode::PersistentRecursive.as_i32()
        ]
    );
    for e in add {
        assert_eq!(e.response(), &Response::Status(ErrorResponse { err: 0 }));
    }
    assert_eq!(c.of(OpCode::CheckWatches).len(), 1);
    assert_eq!(c.of(OpCode::RemoveWatches).len(), 1);

    match c.of(OpCode::WhoAmI)[0].response() {
        Response::WhoAmI(r) => assert!(
            r.client_info
                .iter()
                .any(|i| i.auth_scheme == "digest" && i.user == "golden"),
            "{r:?}"
        ),
        other => panic!("whoAmI: {other:?}"),
    }
    match &c.of(OpCode::Reconfig)[0].request {
        Request::Reconfig(r) => {
            assert_eq!(
                r.joining_servers.as_deref(),
                Some("server.2=127.0.0.1:2888:3888;2181")
            );
            assert_eq!((&r.leaving_servers, &r.new_members), (&None, &None));
            assert_eq!(r.cur_config_id, -1);
        }
        other => panic!("reconfig: {other:?}"),
    }
}

#[test]
fn every_recorded_frame_round_trips_byte_for_byte() {
    let lines = fixture();
    let mut by_conn: BTreeMap<u32, Vec<&Line>> = BTreeMap::new();
    for line in &lines {
        by_conn.entry(line.conn).or_default().push(line);
    }
    assert_eq!(by_conn.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4, 5]);

    let mut kinds = BTreeSet::new();
    let conns: Vec<Conn> = by_conn
        .values()
        .map(|lines| decode_connection(lines, &mut kinds))
        .collect();
    for c in &conns {
        assert!(c.zxids.windows(2).all(|w| w[0] <= w[1]), "zxids go forward");
    }
    let [main, watcher, resumed, resumed2, sasl] = &conns[..] else {
        unreachable!()
    };

    check_main(main);

    // 2: a second client, not accepting read-only servers, whose one-shot watches fire.
    check_new_session(watcher, false);
    assert_ne!(watcher.connected.session_id, main.connected.session_id);
    let mut seen = events(watcher);
    seen.sort_by_key(|(kind, _)| kind.as_i32());
    assert_eq!(
        seen,
        [
            event(EventType::NodeCreated, "/golden/new"),
            event(EventType::NodeDataChanged, "/golden"),
            event(EventType::NodeChildrenChanged, "/golden"),
        ]
    );

    // 3: the same session after a dropped connection: one-shot watches set again.
    check_resumed_session(resumed, watcher);
    match &resumed.exchanges[1].request {
        Request::SetWatches(w) => {
            assert_eq!(w.relative_zxid, resumed.connect.last_zxid_seen);
            assert_eq!(w.data_watches, ["/golden"]);
            assert_eq!(w.exist_watches, ["/golden/later"]);
            assert_eq!(w.child_watches, ["/golden/new"]);
        }
        other => panic!("setWatches: {other:?}"),
    }

    // 4: and again, now with a persistent recursive watch: SetWatches2.
    check_resumed_session(resumed2, watcher);
    match &resumed2.exchanges[1].request {
        Request::SetWatches2(w) => {
            assert_eq!(w.relative_zxid, resumed2.connect.last_zxid_seen);
            assert_eq!(w.data_watches, ["/golden"]);
            assert_eq!(w.exist_watches, ["/golden/later"]);
            assert_eq!(w.child_watches, ["/golden/new"]);
            assert!(w.persistent_watches.is_empty());
            assert_eq!(w.persistent_recursive_watches, ["/golden/new"]);
        }
        other => panic!("setWatches2: {other:?}"),
    }
    assert_eq!(resumed2.ops().last(), Some(&OpCode::CloseSession));

    // 5: a SASL (DIGEST-MD5) login: token requests answered with tokens.
    check_new_session(sasl, false);
    let tokens = sasl.of(OpCode::Sasl);
    assert!(tokens.len() >= 2, "{:?}", sasl.ops());
    for e in &tokens {
        assert!(matches!(e.response(), Response::Sasl(_)));
    }
    match sasl.of(OpCode::WhoAmI)[0].response() {
        Response::WhoAmI(r) => assert!(
            r.client_info
                .iter()
                .any(|i| i.auth_scheme == "sasl" && i.user == "golden"),
            "{r:?}"
        ),
        other => panic!("whoAmI: {other:?}"),
    }

    eprintln!(
        "{} frames on {} connections; {} record kinds checked: {kinds:?}",
        lines.len(),
        conns.len(),
        kinds.len()
    );
    assert!(kinds.len() >= 40, "{} record kinds: {kinds:?}", kinds.len());
}
