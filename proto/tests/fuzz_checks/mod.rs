//! The invariant checks behind the fuzz targets (`fuzz/fuzz_targets/*.rs` include this file)
//! and behind `tests/fuzz_corpus.rs`, which replays every corpus file on stable Rust.
//! Each function takes the raw fuzz input and panics when an invariant breaks.

#![allow(dead_code)]

#[path = "../sim/mod.rs"]
pub mod sim;

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use zk_proto::codec::{DEFAULT_MAX_FRAME, FrameDecoder, Jute};
use zk_proto::consts::OpCode;
use zk_proto::records::*;

use sim::model::{models, run_checked};
use sim::world::{Step, World};

/// A frame limit small enough for fuzz inputs to cross.
const SMALL_FRAME: usize = 64;

/// Target `decode`: the frame splitter and every decoder on arbitrary bytes. Nothing panics,
/// the splitter never returns a frame above its limit nor keeps more than one frame's worth
/// of input, and whatever decodes encodes to something that decodes to the same value.
pub fn decode(data: &[u8]) {
    let (chunk, data) = match data.split_first() {
        Some((c, rest)) => ((*c as usize % 64) + 1, rest),
        None => return,
    };
    // The default limit, and a small one that inputs of a fuzzer's size reach.
    for max in [DEFAULT_MAX_FRAME, SMALL_FRAME] {
        let mut frames = FrameDecoder::new(max);
        for part in data.chunks(chunk) {
            frames.push(part);
            loop {
                match frames.next_frame() {
                    Ok(Some(frame)) => {
                        assert!(frame.len() <= max);
                        // The small limit checks framing only; the default's frames are decoded.
                        if max == DEFAULT_MAX_FRAME {
                            decode_frame(&frame);
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        frames.clear();
                        break;
                    }
                }
            }
            // What is left is less than one frame.
            assert!(frames.buffered() <= max.max(4));
        }
    }
    // The same bytes as one frame body each way.
    decode_frame(&Bytes::copy_from_slice(data));
}

fn again<T: Jute + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = value.to_bytes();
    let (back, used) = T::decode(&bytes).expect("an encoding decodes");
    assert_eq!(used, bytes.len());
    assert_eq!(&back, value);
}

fn decode_frame(frame: &Bytes) {
    if let Ok((v, _)) = ConnectRequest::decode(frame) {
        again(&v);
    }
    if let Ok((v, _)) = ConnectResponse::decode(frame) {
        // The trailing read-only byte is optional: compare what the encoding carries.
        let (back, _) = ConnectResponse::decode(&v.to_bytes()).expect("decodes");
        assert_eq!(back, v);
    }
    if let Ok((h, req)) = Request::decode_frame(frame) {
        let mut buf = BytesMut::new();
        req.encode_frame(h.xid, "", &mut buf);
        let (h2, req2) = Request::decode_frame(&buf.freeze().slice(4..)).expect("re-decodes");
        assert_eq!((h2, req2), (h, req));
    }
    if let Ok((h, used)) = ReplyHeader::decode(frame) {
        again(&h);
        let body = frame.slice(used..);
        if let Ok((e, _)) = WatcherEvent::decode(&body) {
            again(&e);
        }
        for &op in OpCode::ALL {
            if let Ok(resp) = Response::decode_for(op, &body) {
                let mut buf = BytesMut::new();
                resp.write(&mut zk_proto::codec::Writer::new(&mut buf));
                let back = Response::decode_for(op, &buf.freeze()).expect("re-decodes");
                assert_eq!(back, resp, "{op:?}");
            }
        }
    }
}

/// Values decoded one after the other until the input is used up (at most `max`). Every
/// byte counts, so any input, a captured frame included, makes a non-trivial sequence;
/// `arbitrary`'s own collections stop at the first even byte.
fn all_of<'a, T: Arbitrary<'a>>(mut u: Unstructured<'a>, max: usize) -> Vec<T> {
    let mut out = Vec::new();
    while !u.is_empty() && out.len() < max {
        match T::arbitrary(&mut u) {
            Ok(v) => out.push(v),
            Err(_) => break,
        }
    }
    out
}

/// Target `session_bytes`: a connected session with requests and watches in flight fed
/// arbitrary server bytes in arbitrary chunks with arbitrary time steps. Afterwards it is
/// closed, and every request must have completed exactly once.
pub fn session_bytes(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let seed = u.arbitrary::<u64>().unwrap_or(0);
    let mut w = World::new(seed);
    w.run(&Step::ConnectOk { read_only: false });
    for k in 0..6u8 {
        w.run(&Step::Submit(k * 5, k % 2 == 0));
    }
    w.run(&Step::Answer {
        count: 3,
        chunk: 9,
        fail: false,
    });
    while !u.is_empty() {
        let chunk = u.int_in_range(1..=64u8).unwrap_or(1) as usize;
        let wait = u.int_in_range(0..=3000u16).unwrap_or(0);
        let len = u.int_in_range(0..=96u8).unwrap_or(0) as usize;
        let bytes = u.bytes(len.min(u.len())).unwrap_or(&[]).to_vec();
        w.server_bytes(&bytes, chunk);
        w.run(&Step::Advance(wait));
        if !w.tcp_up && w.want_connect.is_some() {
            w.run(&Step::ConnectOk { read_only: false });
        }
    }
    w.finish();
    w.check_complete();
}

/// Target `session_ops`: arbitrary sequences of calls (submit, add_auth, releasing watches,
/// close), server answers, failures, garbage, disconnects, expiry and time, decoded with
/// `arbitrary`. The session must agree with the reference model (`sim/model.rs`) after every
/// step up to the first one the model does not cover (for half the inputs, every step),
/// keep the world's invariants throughout, and after close have completed every request
/// exactly once.
pub fn session_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let seed = u.arbitrary::<u64>().unwrap_or(0);
    let mut steps: Vec<Step> = all_of(u, 400);
    // Half the inputs (by the seed's low bit) keep only the steps the model covers, so that
    // it is compared all the way through; the others keep garbage and read-only servers.
    if seed & 1 == 0 {
        steps.retain(models);
    }
    let mut w = run_checked(seed, &steps).unwrap_or_else(|e| panic!("{e}"));
    w.finish();
    w.check_complete();
}

/// The parts most records are made of, for the round-trip target.
#[derive(Debug, Arbitrary)]
struct Node {
    path: String,
    data: Vec<u8>,
    version: i32,
    flags: i32,
    watch: bool,
    acl: Vec<(i32, String, String)>,
    ttl: i64,
}

impl Node {
    fn acl(&self) -> Vec<Acl> {
        self.acl
            .iter()
            .map(|(perms, scheme, id)| Acl::new(*perms, Id::new(scheme.clone(), id.clone())))
            .collect()
    }

    fn data(&self) -> Bytes {
        Bytes::from(self.data.clone())
    }

    fn create(&self) -> CreateRequest {
        CreateRequest {
            path: self.path.clone(),
            data: self.data(),
            acl: self.acl(),
            flags: self.flags,
        }
    }

    /// Any of the operations a multi can carry.
    fn multi_op(&self, kind: u8) -> MultiOp {
        let path = self.path.clone();
        match kind % 9 {
            0 => MultiOp::Create(self.create()),
            1 => MultiOp::Create2(self.create()),
            2 => MultiOp::CreateContainer(self.create()),
            3 => MultiOp::CreateTtl(CreateTtlRequest {
                path,
                data: self.data(),
                acl: self.acl(),
                flags: self.flags,
                ttl: self.ttl,
            }),
            4 => MultiOp::Delete(DeleteRequest {
                path,
                version: self.version,
            }),
            5 => MultiOp::SetData(SetDataRequest {
                path,
                data: self.data(),
                version: self.version,
            }),
            6 => MultiOp::Check(CheckVersionRequest {
                path,
                version: self.version,
            }),
            7 => MultiOp::GetData(GetDataRequest {
                path,
                watch: self.watch,
            }),
            _ => MultiOp::GetChildren(GetChildrenRequest {
                path,
                watch: self.watch,
            }),
        }
    }

    /// Any of the results a multi can answer with.
    fn op_result(&self, kind: u8, stat: Stat) -> OpResult {
        let path = self.path.clone();
        match kind % 8 {
            0 => OpResult::Create(CreateResponse { path }),
            1 => OpResult::Create2(Create2Response { path, stat }),
            2 => OpResult::Delete,
            3 => OpResult::SetData(stat),
            4 => OpResult::Check,
            5 => OpResult::GetData(GetDataResponse {
                data: self.data(),
                stat,
            }),
            6 => OpResult::GetChildren(GetChildrenResponse {
                children: vec![path],
            }),
            _ => OpResult::Error(zk_proto::ErrorCode::from_i32(self.flags)),
        }
    }
}

fn stat(l: [i64; 6], i: [i32; 5]) -> Stat {
    Stat {
        czxid: l[0],
        mzxid: l[1],
        ctime: l[2],
        mtime: l[3],
        version: i[0],
        cversion: i[1],
        aversion: i[2],
        ephemeral_owner: l[4],
        data_length: i[3],
        num_children: i[4],
        pzxid: l[5],
    }
}

/// A record built from arbitrary parts, for the round-trip target.
#[derive(Debug, Arbitrary)]
enum Record {
    Stat([i64; 6], [i32; 5]),
    Connect(i64, i32, i64, Vec<u8>, bool),
    Event(i32, i32, String),
    /// Any request of the protocol.
    Request(
        u8,
        Node,
        Vec<(u8, Node)>,
        [Vec<String>; 5],
        [Option<String>; 3],
    ),
    /// Any reply body of the protocol.
    Response(u8, Node, [i64; 6], [i32; 5], Vec<String>, Vec<(u8, Node)>),
}

fn build_request(
    kind: u8,
    n: &Node,
    ops: &[(u8, Node)],
    w: &[Vec<String>; 5],
    servers: &[Option<String>; 3],
) -> Request {
    let path = n.path.clone();
    let multi = || MultiRequest {
        ops: ops.iter().map(|(k, n)| n.multi_op(*k)).collect(),
    };
    match kind % 30 {
        0 => Request::Create(n.create()),
        1 => Request::Create2(n.create()),
        2 => Request::CreateContainer(n.create()),
        3 => match n.multi_op(3) {
            MultiOp::CreateTtl(r) => Request::CreateTtl(r),
            _ => unreachable!(),
        },
        4 => Request::Delete(DeleteRequest {
            path,
            version: n.version,
        }),
        5 => Request::Exists(ExistsRequest {
            path,
            watch: n.watch,
        }),
        6 => Request::GetData(GetDataRequest {
            path,
            watch: n.watch,
        }),
        7 => Request::GetConfig { watch: n.watch },
        8 => Request::SetData(SetDataRequest {
            path,
            data: n.data(),
            version: n.version,
        }),
        9 => Request::GetAcl(GetAclRequest { path }),
        10 => Request::SetAcl(SetAclRequest {
            path,
            acl: n.acl(),
            version: n.version,
        }),
        11 => Request::GetChildren(GetChildrenRequest {
            path,
            watch: n.watch,
        }),
        12 => Request::GetChildren2(GetChildrenRequest {
            path,
            watch: n.watch,
        }),
        13 => Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path }),
        14 => Request::GetEphemerals(GetEphemeralsRequest { prefix_path: path }),
        15 => Request::Sync(SyncRequest { path }),
        16 => Request::Check(CheckVersionRequest {
            path,
            version: n.version,
        }),
        17 => Request::Multi(multi()),
        18 => Request::MultiRead(multi()),
        19 => Request::Reconfig(ReconfigRequest {
            joining_servers: servers[0].clone(),
            leaving_servers: servers[1].clone(),
            new_members: servers[2].clone(),
            cur_config_id: n.ttl,
        }),
        20 => Request::CheckWatches(CheckWatchesRequest {
            path,
            kind: n.flags,
        }),
        21 => Request::RemoveWatches(RemoveWatchesRequest {
            path,
            kind: n.flags,
        }),
        22 => Request::AddWatch(AddWatchRequest {
            path,
            mode: n.flags,
        }),
        23 => Request::WhoAmI,
        24 => Request::Auth(AuthPacket {
            kind: n.flags,
            scheme: path,
            auth: n.data(),
        }),
        25 => Request::SetWatches(SetWatches {
            relative_zxid: n.ttl,
            data_watches: w[0].clone(),
            exist_watches: w[1].clone(),
            child_watches: w[2].clone(),
        }),
        26 => Request::SetWatches2(SetWatches2 {
            relative_zxid: n.ttl,
            data_watches: w[0].clone(),
            exist_watches: w[1].clone(),
            child_watches: w[2].clone(),
            persistent_watches: w[3].clone(),
            persistent_recursive_watches: w[4].clone(),
        }),
        27 => Request::Sasl(SaslRequest { token: n.data() }),
        28 => Request::Ping,
        _ => Request::CloseSession,
    }
}

/// A reply body and the opcode of the request it answers.
fn build_response(
    kind: u8,
    n: &Node,
    stat: Stat,
    children: &[String],
    results: &[(u8, Node)],
) -> (OpCode, Response) {
    let path = n.path.clone();
    match kind % 15 {
        0 => (OpCode::Delete, Response::Empty),
        1 => (OpCode::Create, Response::Create(CreateResponse { path })),
        2 => (
            OpCode::Create2,
            Response::Create2(Create2Response { path, stat }),
        ),
        3 => (OpCode::Exists, Response::Stat(stat)),
        4 => (
            OpCode::GetData,
            Response::GetData(GetDataResponse {
                data: n.data(),
                stat,
            }),
        ),
        5 => (
            OpCode::GetAcl,
            Response::GetAcl(GetAclResponse { acl: n.acl(), stat }),
        ),
        6 => (
            OpCode::GetChildren,
            Response::GetChildren(GetChildrenResponse {
                children: children.to_vec(),
            }),
        ),
        7 => (
            OpCode::GetChildren2,
            Response::GetChildren2(GetChildren2Response {
                children: children.to_vec(),
                stat,
            }),
        ),
        8 => (OpCode::Sync, Response::Sync(SyncResponse { path })),
        9 => (
            OpCode::Multi,
            Response::Multi(MultiResponse {
                results: results.iter().map(|(k, r)| r.op_result(*k, stat)).collect(),
            }),
        ),
        10 => (
            OpCode::GetAllChildrenNumber,
            Response::GetAllChildrenNumber(GetAllChildrenNumberResponse {
                total_number: n.version,
            }),
        ),
        11 => (
            OpCode::GetEphemerals,
            Response::GetEphemerals(GetEphemeralsResponse {
                ephemerals: children.to_vec(),
            }),
        ),
        12 => (
            OpCode::WhoAmI,
            Response::WhoAmI(WhoAmIResponse {
                client_info: n
                    .acl
                    .iter()
                    .map(|(_, scheme, user)| ClientInfo {
                        auth_scheme: scheme.clone(),
                        user: user.clone(),
                    })
                    .collect(),
            }),
        ),
        13 => (
            OpCode::Sasl,
            Response::Sasl(SaslResponse { token: n.data() }),
        ),
        _ => (
            OpCode::AddWatch,
            Response::Status(ErrorResponse { err: n.flags }),
        ),
    }
}

/// Target `roundtrip`: structured records built with `arbitrary` (every request and every
/// reply body of the protocol, stats, handshakes, notifications) encode and decode back to
/// themselves; request frames also under a chroot.
pub fn roundtrip(data: &[u8]) {
    for r in all_of::<Record>(Unstructured::new(data), 200) {
        match r {
            Record::Stat(l, i) => again(&stat(l, i)),
            Record::Connect(zxid, timeout, session, passwd, ro) => {
                again(&ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: zxid,
                    timeout,
                    session_id: session,
                    passwd: Bytes::from(passwd.clone()),
                    read_only: ro,
                });
                again(&ConnectResponse {
                    protocol_version: 0,
                    timeout,
                    session_id: session,
                    passwd: Bytes::from(passwd),
                    read_only: ro,
                });
            }
            Record::Event(kind, state, path) => again(&WatcherEvent { kind, state, path }),
            Record::Request(kind, n, ops, watches, servers) => {
                frame_again(build_request(kind, &n, &ops, &watches, &servers));
            }
            Record::Response(kind, n, l, i, children, results) => {
                let (op, resp) = build_response(kind, &n, stat(l, i), &children, &results);
                let mut buf = BytesMut::new();
                resp.write(&mut zk_proto::codec::Writer::new(&mut buf));
                let back = Response::decode_for(op, &buf.freeze()).expect("a reply body decodes");
                assert_eq!(back, resp, "{op:?}");
            }
        }
    }
}

/// A request frame decodes to the request and its header, and encodes again to the same
/// bytes; under a chroot, it is the frame of the request with the chroot in its paths.
fn frame_again(req: Request) {
    let mut plain = BytesMut::new();
    let size = req.encode_frame(7, "", &mut plain);
    let plain = plain.freeze();
    assert_eq!(size, plain.len() - 4);
    assert_eq!(
        u32::from_be_bytes(plain[..4].try_into().unwrap()) as usize,
        size
    );
    let (h, back) = Request::decode_frame(&plain.slice(4..)).expect("a request frame decodes");
    assert_eq!((h.xid, h.op), (7, req.opcode().as_i32()));
    if !matches!(req, Request::GetConfig { .. }) {
        // (getConfig travels as a getData of the configuration node.)
        assert_eq!(back, req);
    }
    let mut again = BytesMut::new();
    back.encode_frame(7, "", &mut again);
    assert_eq!(again.freeze(), plain);

    let mut rooted = BytesMut::new();
    req.encode_frame(7, "/chroot", &mut rooted);
    let rooted = rooted.freeze();
    let (_, back) = Request::decode_frame(&rooted.slice(4..)).expect("decodes under a chroot");
    let mut again = BytesMut::new();
    back.encode_frame(7, "", &mut again);
    assert_eq!(again.freeze(), rooted);
}
