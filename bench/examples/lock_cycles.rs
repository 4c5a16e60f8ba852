//! Where a lock cycle's time goes, for one session: cycles per second with the guard
//! dropped (the delete leaves with the next acquisition's requests), taken five ways in
//! turn, and the requests each cycle of ours sent (the client's own count of completed
//! requests):
//!
//! - `multi`: ours on tokio's multi-thread runtime, the loop in `block_on` on the main
//!   thread (outside the runtime's workers);
//! - `spawned`: ours on the same runtime, the loop in a spawned task, as a service runs it;
//! - `current`: ours on the current-thread runtime;
//! - `floor`: the same three requests as pre-encoded frames on a blocking socket, no client;
//! - `floor-tokio`: those frames on a tokio socket (current-thread), to tell what the
//!   runtime costs from what the client does.
//!
//! ```sh
//! cargo run --release -p zk-bench --example lock_cycles            # a throwaway server
//! ZK_HOSTS=127.0.0.1:2181 cargo run --release -p zk-bench --example lock_cycles
//! # one way only, e.g. to count the client's system calls (the server runs apart)
//! ZK_HOSTS=127.0.0.1:2181 strace -f -c target/release/examples/lock_cycles spawned
//! ```

use std::io::{Read, Write};
use std::time::Instant;

#[path = "../src/raw.rs"]
mod raw;
use raw::raw_session;

use bytes::{Bytes, BytesMut};
use zk_proto::codec::FrameDecoder;
use zk_proto::consts::CreateMode;
use zk_proto::records::{Acl, CreateRequest, DeleteRequest, GetChildrenRequest, Request};

/// Cycles per run.
const CYCLES: u64 = 2000;
/// Runs of each way.
const RUNS: usize = 5;
const WAYS: [&str; 5] = ["multi", "spawned", "current", "floor", "floor-tokio"];

/// One session's `CYCLES` cycles on `path`: the rate, and the requests per cycle.
async fn cycles(hosts: &str, path: &str) -> (f64, f64) {
    let c = zk_tokio::Client::connect(hosts).await.expect("connect");
    let lock = zk_tokio::recipes::Lock::new(&c, path);
    // The first cycle makes the lock's directory: not counted.
    drop(lock.acquire().await.expect("the lock"));
    let before = c.metrics().await.expect("metrics").completed;
    let start = Instant::now();
    for _ in 0..CYCLES {
        drop(lock.acquire().await.expect("the lock"));
    }
    let rate = CYCLES as f64 / start.elapsed().as_secs_f64();
    // The last delete's reply, then the metrics call itself, which counts once.
    c.sync(path).await.expect("sync");
    let after = c.metrics().await.expect("metrics").completed;
    c.close().await;
    (rate, (after - before - 2) as f64 / CYCLES as f64)
}

/// A socket the floor writes its frames to and reads its replies from.
trait Socket {
    async fn send(&mut self, bytes: &[u8]);
    async fn receive(&mut self, into: &mut [u8]) -> usize;
}

impl Socket for std::net::TcpStream {
    async fn send(&mut self, bytes: &[u8]) {
        self.write_all(bytes).expect("write");
    }
    async fn receive(&mut self, into: &mut [u8]) -> usize {
        self.read(into).expect("read")
    }
}

impl Socket for tokio::net::TcpStream {
    async fn send(&mut self, bytes: &[u8]) {
        tokio::io::AsyncWriteExt::write_all(self, bytes)
            .await
            .expect("write");
    }
    async fn receive(&mut self, into: &mut [u8]) -> usize {
        tokio::io::AsyncReadExt::read(self, into)
            .await
            .expect("read")
    }
}

/// The floor's `CYCLES` cycles in `dir` (which exists) on `s`: each writes the last node's
/// delete with the next create and listing, then reads their three replies.
async fn floor(mut s: impl Socket, dir: &str) -> f64 {
    let create = Request::Create2(CreateRequest {
        path: format!("{dir}/lock-"),
        data: Bytes::new(),
        acl: Acl::open_unsafe(),
        flags: CreateMode::EphemeralSequential.as_i32(),
    });
    let list = Request::GetChildren(GetChildrenRequest {
        path: dir.into(),
        watch: false,
    });
    let mut frames = FrameDecoder::new(1 << 20);
    let mut chunk = vec![0u8; 1 << 16];
    let mut xid = 0;
    let mut last: Option<String> = None;
    let start = Instant::now();
    for _ in 0..CYCLES {
        let mut out = BytesMut::new();
        let mut expected = 2;
        if let Some(path) = last.take() {
            xid += 1;
            Request::Delete(DeleteRequest { path, version: -1 }).encode_frame(xid, "", &mut out);
            expected += 1;
        }
        let created_at = expected - 2;
        for r in [&create, &list] {
            xid += 1;
            r.encode_frame(xid, "", &mut out);
        }
        s.send(&out).await;
        let mut got = 0;
        while got < expected {
            let Some(frame) = frames.next_frame().expect("a frame") else {
                let n = s.receive(&mut chunk).await;
                assert!(n > 0, "the server closed the connection");
                frames.push(&chunk[..n]);
                continue;
            };
            // A create2 reply: xid (4), zxid (8), error (4), then the path's length (4)
            // and bytes.
            if got == created_at && frame.len() > 20 {
                let len = i32::from_be_bytes(frame[16..20].try_into().expect("4 bytes"));
                let end = 20 + usize::try_from(len).expect("a path");
                last = Some(String::from_utf8_lossy(&frame[20..end]).into_owned());
            }
            got += 1;
        }
    }
    CYCLES as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let server;
    let hosts = match std::env::var("ZK_HOSTS") {
        Ok(h) => h,
        Err(_) => {
            server = zk_harness::ZkServer::standalone().expect("start a ZooKeeper server");
            server.connect_string()
        }
    };
    let addr = hosts.split(',').next().expect("a host").to_string();
    let admin = zk_mio::blocking::Client::connect(&hosts).expect("connect");
    let persistent = zk_client::CreateOptions::persistent();
    let dir = |name: String| {
        // Already there from an earlier run: fine.
        let _ = admin.create("/lock-cycles", &b""[..], &persistent);
        let _ = admin.create(&name, &b""[..], &persistent);
        name
    };
    // One way (see the list above), or all of them in turn.
    let only = std::env::args().nth(1);
    let ways: Vec<&str> = WAYS
        .into_iter()
        .filter(|w| only.as_deref().is_none_or(|o| o == *w))
        .collect();
    let current = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    };
    let mut results: Vec<Vec<(f64, Option<f64>)>> = vec![Vec::new(); ways.len()];
    for run in 0..RUNS {
        for (way, results) in ways.iter().zip(&mut results) {
            let path = format!("/lock-cycles/{way}-{run}-{}", std::process::id());
            let ours = |(rate, per)| (rate, Some(per));
            results.push(match *way {
                "multi" => ours(
                    tokio::runtime::Runtime::new()
                        .expect("a runtime")
                        .block_on(cycles(&hosts, &path)),
                ),
                "spawned" => {
                    let rt = tokio::runtime::Runtime::new().expect("a runtime");
                    let hosts = hosts.clone();
                    let task = rt.spawn(async move { cycles(&hosts, &path).await });
                    ours(rt.block_on(task).expect("the cycles"))
                }
                "current" => ours(current().block_on(cycles(&hosts, &path))),
                "floor" => {
                    let dir = dir(path);
                    let rate = current().block_on(floor(raw_session(&addr), &dir));
                    (rate, None)
                }
                _ => {
                    let dir = dir(path);
                    let rate = current().block_on(async {
                        let s = raw_session(&addr);
                        s.set_nonblocking(true).expect("non-blocking");
                        floor(tokio::net::TcpStream::from_std(s).expect("a socket"), &dir).await
                    });
                    (rate, None)
                }
            });
        }
    }
    for (way, runs) in ways.iter().zip(results) {
        let rates: Vec<String> = runs.iter().map(|(r, _)| format!("{r:.0}")).collect();
        let mut line = format!("{way}: cycles/s {}", rates.join(", "));
        let per: Vec<String> = runs
            .iter()
            .filter_map(|(_, p)| p.map(|p| format!("{p:.2}")))
            .collect();
        if !per.is_empty() {
            line += &format!("; requests per cycle {}", per.join(", "));
        }
        println!("{line}");
    }
}
