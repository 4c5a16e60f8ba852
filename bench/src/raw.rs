//! A ZooKeeper session on a plain blocking socket, for the benchmarks' raw floors: no
//! client, only pre-encoded frames. Shared by `zk-bench` and the `lock_cycles` example.

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Bytes, BytesMut};
use zk_proto::codec::{FrameDecoder, Jute, write_frame};
use zk_proto::records::ConnectRequest;

/// A session on a blocking socket to `addr`, handshake done.
pub fn raw_session(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut buf = BytesMut::new();
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 10_000,
        session_id: 0,
        passwd: Bytes::from_static(&[0; 16]),
        read_only: false,
    };
    write_frame(&mut buf, |b| req.encode(b));
    s.write_all(&buf).expect("handshake");
    let mut frames = FrameDecoder::new(1 << 20);
    let mut chunk = vec![0u8; 4096];
    while frames.next_frame().expect("a frame").is_none() {
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "the server closed the handshake");
        frames.push(&chunk[..n]);
    }
    s
}
