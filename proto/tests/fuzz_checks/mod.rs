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

use sim::world::{Step, World, run_all};

/// Target `decode`: the frame splitter and every decoder on arbitrary bytes. Nothing panics,
/// the splitter never buffers more than a frame plus one chunk, and whatever decodes encodes
/// to something that decodes to the same value.
pub fn decode(data: &[u8]) {
    let (chunk, data) = match data.split_first() {
        Some((c, rest)) => ((*c as usize % 64) + 1, rest),
        None => return,
    };
    let mut frames = FrameDecoder::new(DEFAULT_MAX_FRAME);
    for part in data.chunks(chunk) {
        frames.push(part);
        loop {
            match frames.next_frame() {
                Ok(Some(frame)) => decode_frame(&frame),
                Ok(None) => break,
                Err(_) => {
                    frames.clear();
                    break;
                }
            }
        }
        assert!(frames.buffered() <= DEFAULT_MAX_FRAME + 4 + chunk);
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

/// Target `session_ops`: arbitrary sequences of calls, server answers, connection events and
/// time, decoded with `arbitrary`; checked as the property tests check them.
pub fn session_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let seed = u.arbitrary::<u64>().unwrap_or(0);
    let steps: Vec<Step> = u.arbitrary().unwrap_or_default();
    let w = run_all(seed, &steps);
    w.check_complete();
}

/// A record built from arbitrary parts, for the round-trip target.
#[derive(Debug, Arbitrary)]
enum Record {
    Stat([i64; 6], [i32; 5]),
    Connect(i64, i32, i64, Vec<u8>, bool),
    Create(String, Vec<u8>, Vec<(i32, String, String)>, i32),
    SetWatches2(i64, [Vec<String>; 5]),
    Event(i32, i32, String),
    Auth(String, Vec<u8>),
    Multi(Vec<(u8, String, Vec<u8>, i32)>),
    Results(Vec<(u8, String, i32)>),
    Children(Vec<String>),
}

/// Target `roundtrip`: structured records built with `arbitrary` encode and decode back to
/// themselves, alone and inside request frames.
pub fn roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(records) = u.arbitrary::<Vec<Record>>() else {
        return;
    };
    for r in records {
        match r {
            Record::Stat(l, i) => again(&Stat {
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
            }),
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
            Record::Create(path, data, acl, flags) => {
                let req = CreateRequest {
                    path,
                    data: Bytes::from(data),
                    acl: acl
                        .into_iter()
                        .map(|(p, s, i)| Acl::new(p, Id::new(s, i)))
                        .collect(),
                    flags,
                };
                again(&req);
                frame_again(Request::Create2(req));
            }
            Record::SetWatches2(zxid, [d, e, c, p, r]) => {
                frame_again(Request::SetWatches2(SetWatches2 {
                    relative_zxid: zxid,
                    data_watches: d,
                    exist_watches: e,
                    child_watches: c,
                    persistent_watches: p,
                    persistent_recursive_watches: r,
                }))
            }
            Record::Event(kind, state, path) => again(&WatcherEvent { kind, state, path }),
            Record::Auth(scheme, auth) => frame_again(Request::Auth(AuthPacket {
                kind: 0,
                scheme,
                auth: Bytes::from(auth),
            })),
            Record::Multi(ops) => {
                let ops = ops
                    .into_iter()
                    .map(|(k, path, data, v)| match k % 4 {
                        0 => MultiOp::Delete(DeleteRequest { path, version: v }),
                        1 => MultiOp::SetData(SetDataRequest {
                            path,
                            data: Bytes::from(data),
                            version: v,
                        }),
                        2 => MultiOp::Check(CheckVersionRequest { path, version: v }),
                        _ => MultiOp::GetData(GetDataRequest { path, watch: false }),
                    })
                    .collect();
                frame_again(Request::Multi(MultiRequest { ops }));
            }
            Record::Results(results) => {
                let results = results
                    .into_iter()
                    .map(|(k, path, code)| match k % 4 {
                        0 => OpResult::Create(CreateResponse { path }),
                        1 => OpResult::Delete,
                        2 => OpResult::Error(zk_proto::ErrorCode::from_i32(code)),
                        _ => OpResult::GetChildren(GetChildrenResponse {
                            children: vec![path],
                        }),
                    })
                    .collect();
                again(&MultiResponse { results });
            }
            Record::Children(children) => again(&GetChildrenResponse { children }),
        }
    }
}

fn frame_again(req: Request) {
    let mut buf = BytesMut::new();
    req.encode_frame(7, "", &mut buf);
    let (h, back) = Request::decode_frame(&buf.freeze().slice(4..)).expect("decodes");
    assert_eq!(h.xid, 7);
    assert_eq!(back, req);
}
