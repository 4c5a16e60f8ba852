//! The pure model's throughput: requests in, replies out, no sockets and no clock.
//!
//! ```sh
//! cargo bench -p zk-sim
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zk_proto::codec::{Jute, write_frame};
use zk_proto::records::*;
use zk_sim::{Config, ConnId, Ensemble, Output};

/// A model with one connected session and a 100-byte node.
fn connected() -> (Ensemble, ConnId, Instant) {
    let now = Instant::now();
    let mut zk = Ensemble::new(Config::standalone().record_history(false), now);
    let conn = zk.accept(now, 0, "127.0.0.1").expect("accept");
    let mut hs = BytesMut::new();
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 30_000,
        session_id: 0,
        passwd: Bytes::from_static(&[0; 16]),
        read_only: false,
    };
    write_frame(&mut hs, |b| req.encode(b));
    zk.handle_input(now, conn, &hs);
    let mut buf = BytesMut::new();
    Request::Create(CreateRequest {
        path: "/bench".into(),
        data: Bytes::from_static(&[7; 100]),
        acl: Acl::open_unsafe(),
        flags: 0,
    })
    .encode_frame(1, "", &mut buf);
    zk.handle_input(now, conn, &buf);
    while zk.poll_output().is_some() {}
    (zk, conn, now)
}

fn frames(request: &Request, n: usize) -> Bytes {
    let mut buf = BytesMut::new();
    for i in 0..n {
        request.encode_frame(i as i32 + 2, "", &mut buf);
    }
    buf.freeze()
}

fn run(zk: &mut Ensemble, conn: ConnId, now: Instant, input: &[u8]) -> usize {
    zk.handle_input(now, conn, input);
    let mut out = 0;
    while let Some(o) = zk.poll_output() {
        if let Output::Transmit { data, .. } = o {
            out += data.len();
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let get = Request::GetData(GetDataRequest {
        path: "/bench".into(),
        watch: false,
    });
    let set = Request::SetData(SetDataRequest {
        path: "/bench".into(),
        data: Bytes::from_static(&[9; 100]),
        version: -1,
    });
    let exists = Request::Exists(ExistsRequest {
        path: "/bench".into(),
        watch: false,
    });
    let mut group = c.benchmark_group("model");
    group.measurement_time(Duration::from_secs(4));
    for (name, request) in [("getData", &get), ("exists", &exists), ("setData", &set)] {
        for batch in [1usize, 100] {
            let (mut zk, conn, now) = connected();
            let input = frames(request, batch);
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("{name} x{batch}"), |b| {
                b.iter(|| black_box(run(&mut zk, conn, now, &input)))
            });
        }
    }
    let (mut zk, conn, now) = connected();
    let mut pair = BytesMut::new();
    Request::Create(CreateRequest {
        path: "/bench/child".into(),
        data: Bytes::new(),
        acl: Acl::open_unsafe(),
        flags: 0,
    })
    .encode_frame(2, "", &mut pair);
    Request::Delete(DeleteRequest {
        path: "/bench/child".into(),
        version: -1,
    })
    .encode_frame(3, "", &mut pair);
    group.throughput(Throughput::Elements(2));
    group.bench_function("create+delete", |b| {
        b.iter(|| black_box(run(&mut zk, conn, now, &pair)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
