//! Microbenchmarks of the protocol core, no network: encoding and decoding, a full request
//! round trip through the Session, watch routing and re-registration at scale.
//!
//! `cargo bench -p zk-proto`

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use zk_proto::codec::{Jute, Writer, write_frame};
use zk_proto::consts::{CreateMode, EventType, OpCode};
use zk_proto::records::*;
use zk_proto::session::{Config, Event, RequestId, Session};
use zk_proto::watch::{SET_WATCHES_MAX_PATH_BYTES, WatchKind, WatchRegistry};

fn connect_response() -> Vec<u8> {
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout: 10_000,
        session_id: 42,
        passwd: Bytes::from_static(&[1; 16]),
        read_only: false,
    };
    let mut b = BytesMut::new();
    write_frame(&mut b, |b| resp.encode(b));
    b.to_vec()
}

fn reply_frame(xid: i32, body: &Response) -> Vec<u8> {
    let mut b = BytesMut::new();
    write_frame(&mut b, |b| {
        ReplyHeader {
            xid,
            zxid: 7,
            err: 0,
        }
        .encode(b);
        body.write(&mut Writer::new(b));
    });
    b.to_vec()
}

/// A session connected to a scripted server at `now`.
fn connected(now: Instant) -> Session {
    let mut s = Session::new(Config::new("127.0.0.1:2181").unwrap().with_seed(1), now);
    while s.poll_action().is_some() {}
    s.handle_connected(now);
    let _ = s.poll_transmit();
    s.handle_input(now, &connect_response());
    while s.poll_event().is_some() {}
    let _ = s.poll_transmit();
    s
}

fn get_data() -> Request {
    Request::GetData(GetDataRequest {
        path: "/bench/node".into(),
        watch: false,
    })
}

fn codec(c: &mut Criterion) {
    let req = get_data();
    let mut buf = BytesMut::with_capacity(1 << 20);
    c.bench_function("encode getData request", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&req).encode_frame(black_box(1), "", &mut buf);
        })
    });
    let body = Response::GetData(GetDataResponse {
        data: Bytes::from(vec![7u8; 100]),
        stat: Stat::default(),
    });
    let frame = Bytes::from(reply_frame(1, &body));
    let payload = frame.slice(4 + 16..);
    c.bench_function("decode 100-byte getData reply", |b| {
        b.iter(|| {
            let (h, _) = ReplyHeader::decode(&frame.slice(4..)).unwrap();
            black_box(h);
            black_box(Response::decode_for(OpCode::GetData, black_box(&payload)).unwrap());
        })
    });
}

/// One operation through the Session: submit, transmit, the reply in, the completion out.
fn round_trip(c: &mut Criterion, name: &str, req: Request, reply: Response) {
    let now = Instant::now();
    let mut s = connected(now);
    // Replies for a run of xids, built in advance: xids go 1, 2, 3 ...
    let replies: Vec<Vec<u8>> = (1..=100_000).map(|x| reply_frame(x, &reply)).collect();
    let mut i = 0usize;
    c.bench_function(name, |b| {
        b.iter(|| {
            let id = s.submit(now, req.clone()).unwrap();
            let out = s.poll_transmit().unwrap();
            black_box(out);
            if i == replies.len() {
                // Start over on a fresh session so xids match the prepared replies.
                s = connected(now);
                i = 0;
                let id = s.submit(now, req.clone()).unwrap();
                let _ = s.poll_transmit();
                s.handle_input(now, &replies[i]);
                i += 1;
                let _ = (id, s.poll_event());
                return;
            }
            s.handle_input(now, &replies[i]);
            i += 1;
            match s.poll_event() {
                Some(Event::Complete {
                    id: done, result, ..
                }) => {
                    debug_assert_eq!(done, id);
                    black_box(result.ok());
                }
                other => panic!("{other:?}"),
            }
        })
    });
}

fn session(c: &mut Criterion) {
    round_trip(
        c,
        "session round trip: getData (100 bytes)",
        get_data(),
        Response::GetData(GetDataResponse {
            data: Bytes::from(vec![7u8; 100]),
            stat: Stat::default(),
        }),
    );
    round_trip(
        c,
        "session round trip: setData (100 bytes)",
        Request::SetData(SetDataRequest {
            path: "/bench/node".into(),
            data: Bytes::from(vec![7u8; 100]),
            version: -1,
        }),
        Response::Stat(Stat::default()),
    );
    round_trip(
        c,
        "session round trip: create",
        Request::Create(CreateRequest {
            path: "/bench/node".into(),
            data: Bytes::new(),
            acl: Acl::open_unsafe(),
            flags: CreateMode::Persistent.as_i32(),
        }),
        Response::Create(CreateResponse {
            path: "/bench/node".into(),
        }),
    );
}

fn watches(c: &mut Criterion) {
    let mut reg = WatchRegistry::new();
    for i in 0..100_000u64 {
        let kind = match i % 3 {
            0 => WatchKind::Data,
            1 => WatchKind::Child,
            _ => WatchKind::Persistent,
        };
        reg.add(RequestId(i), &format!("/app/node-{:06}", i / 3), kind);
    }
    c.bench_function("route one event among 100,000 watches", |b| {
        b.iter(|| {
            // A persistent watch is hit and stays; nothing is removed.
            black_box(
                reg.fire(EventType::NodeDataChanged, black_box("/app/node-000002"))
                    .len(),
            )
        })
    });
    c.bench_function("build SetWatches for 100,000 watches", |b| {
        b.iter(|| black_box(reg.set_watches(99, SET_WATCHES_MAX_PATH_BYTES).len()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = codec, session, watches
}
criterion_main!(benches);
