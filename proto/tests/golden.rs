//! Golden bytes: every frame of a session between the reference Java client and a real
//! ZooKeeper 3.8 server (recorded by `golden/capture.sh`, see `golden/README.md`) decodes
//! with our codec and encodes back to exactly the same bytes.

use std::collections::{BTreeSet, HashMap};

use bytes::{Bytes, BytesMut};
use zk_proto::codec::{Jute, Writer, write_frame};
use zk_proto::consts::{CreateMode, EventType, OpCode};
use zk_proto::records::*;

const SESSION: &str = include_str!("golden/session.txt");

fn frames() -> Vec<(&'static str, Bytes)> {
    SESSION
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (dir, hex) = l.split_once(' ').expect("`<dir> <hex>`");
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect::<Vec<u8>>();
            (dir, Bytes::from(bytes))
        })
        .collect()
}

/// The frame without its length prefix, checking the prefix on the way.
fn body(frame: &Bytes) -> Bytes {
    let len = i32::from_be_bytes(frame[..4].try_into().unwrap());
    assert_eq!(len as usize, frame.len() - 4, "length prefix");
    frame.slice(4..)
}

#[test]
fn every_recorded_frame_round_trips_byte_for_byte() {
    let frames = frames();
    assert!(frames.len() >= 40, "{} frames", frames.len());
    let mut kinds = BTreeSet::new();
    let mut ops: HashMap<i32, OpCode> = HashMap::new();
    let mut requests: HashMap<i32, Request> = HashMap::new();
    let (mut first_c2s, mut first_s2c) = (true, true);
    let mut notifications = Vec::new();
    let mut replies = Vec::new();

    for (dir, frame) in &frames {
        let body = body(frame);
        match *dir {
            "c2s" if first_c2s => {
                first_c2s = false;
                let (req, used) = ConnectRequest::decode(&body).unwrap();
                assert_eq!(used, body.len());
                assert!(req.read_only, "the client allows read-only servers");
                assert_eq!(req.session_id, 0);
                let mut again = BytesMut::new();
                write_frame(&mut again, |b| req.encode(b));
                assert_eq!(&again[..], &frame[..], "ConnectRequest");
                kinds.insert("ConnectRequest".to_string());
            }
            "s2c" if first_s2c => {
                first_s2c = false;
                let (resp, used) = ConnectResponse::decode(&body).unwrap();
                assert_eq!(used, body.len());
                assert_ne!(resp.session_id, 0);
                assert_eq!(resp.timeout, 4000);
                assert!(!resp.read_only);
                let mut again = BytesMut::new();
                write_frame(&mut again, |b| resp.encode(b));
                assert_eq!(&again[..], &frame[..], "ConnectResponse");
                kinds.insert("ConnectResponse".to_string());
            }
            "c2s" => {
                let (header, req) = Request::decode_frame(&body)
                    .unwrap_or_else(|e| panic!("request {}: {e}", hex(frame)));
                let mut again = BytesMut::new();
                req.encode_frame(header.xid, "", &mut again);
                assert_eq!(hex(&again), hex(frame), "{req:?}");
                kinds.insert(format!("request {:?}", req.opcode()));
                ops.insert(header.xid, req.opcode());
                requests.insert(header.xid, req);
            }
            "s2c" => {
                let (header, used) = ReplyHeader::decode(&body).unwrap();
                let rest = body.slice(used..);
                let mut again = BytesMut::new();
                write_frame(&mut again, |b| {
                    header.encode(b);
                    match header.xid {
                        -1 => {
                            let (event, n) = WatcherEvent::decode(&rest).unwrap();
                            assert_eq!(n, rest.len());
                            event.encode(b);
                            notifications.push(event);
                            kinds.insert("WatcherEvent".to_string());
                        }
                        -2 | -4 => assert!(rest.is_empty(), "ping and auth replies have no body"),
                        xid if header.err != 0 => {
                            assert!(rest.is_empty(), "an error reply has no body (xid {xid})");
                        }
                        xid => {
                            let op = ops[&xid];
                            let resp = Response::decode_for(op, &rest)
                                .unwrap_or_else(|e| panic!("reply to {op:?}: {e}"));
                            resp.write(&mut Writer::new(b));
                            kinds.insert(format!("response {op:?}"));
                            replies.push((xid, resp));
                        }
                    }
                });
                assert_eq!(hex(&again), hex(frame), "reply {header:?}");
                kinds.insert("ReplyHeader".to_string());
            }
            other => panic!("unknown direction {other}"),
        }
    }

    // What the session did, as the server answered it.
    assert!(kinds.contains("request Auth"));
    assert_eq!(
        notifications[0].event_type(),
        Some(EventType::NodeDataChanged)
    );
    assert_eq!(notifications[0].path, "/golden");
    let created: Vec<&str> = replies
        .iter()
        .filter_map(|(_, r)| match r {
            Response::Create(c) => Some(c.path.as_str()),
            Response::Create2(c) => Some(c.path.as_str()),
            _ => None,
        })
        .collect();
    assert!(created.contains(&"/golden"));
    assert!(created.contains(&"/golden/c2"));
    assert!(created.iter().any(|p| p.starts_with("/golden/eph-")));
    let ttl = requests.values().find_map(|r| match r {
        Request::CreateTtl(t) => Some(t),
        _ => None,
    });
    assert_eq!(
        ttl.map(|t| (t.flags, t.ttl)),
        Some((CreateMode::PersistentWithTtl.as_i32(), 60_000))
    );
    // The failed multi: header err 0, results Ok then NoNode (the failing op).
    let failed = replies.iter().find_map(|(_, r)| match r {
        Response::Multi(m)
            if m.results
                .iter()
                .any(|x| matches!(x, OpResult::Error(c) if *c != zk_proto::ErrorCode::Ok)) =>
        {
            Some(m)
        }
        _ => None,
    });
    let failed = failed.expect("a failed multi");
    assert!(
        failed
            .results
            .contains(&OpResult::Error(zk_proto::ErrorCode::NoNode))
    );

    eprintln!("record kinds checked: {kinds:?}");
    assert!(kinds.len() >= 30, "{} kinds: {kinds:?}", kinds.len());
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
