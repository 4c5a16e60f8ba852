//! Integration tests against real ZooKeeper servers, and what they share.
//!
//! The tests live in `tests/tests/`. [`RawConn`] talks to a server with nothing but proto's
//! codec and a blocking socket, so codec facts can be checked against a real server without
//! any client state machine in the way.

pub mod interop;

/// The workspace's README, compiled (and, where it needs no server, run) as a doc test so
/// its examples stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct WorkspaceReadme;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use zk_proto::codec::{DEFAULT_MAX_FRAME, FrameDecoder, write_frame};
use zk_proto::records::{ConnectRequest, ConnectResponse, ReplyHeader, Request, Response};
use zk_proto::{ErrorCode, Jute, OpCode};

/// A connection that speaks the protocol one frame at a time, with proto's codec only.
pub struct RawConn {
    stream: TcpStream,
    frames: FrameDecoder,
    /// The server's answer to the handshake.
    pub session: ConnectResponse,
}

impl RawConn {
    /// Connects and opens a new session with the given timeout.
    pub fn connect(addr: SocketAddr, timeout_ms: i32) -> io::Result<RawConn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        let mut conn = RawConn {
            stream,
            frames: FrameDecoder::new(DEFAULT_MAX_FRAME),
            session: ConnectResponse::default(),
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: timeout_ms,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: false,
        };
        let mut buf = BytesMut::new();
        write_frame(&mut buf, |b| req.encode(b));
        conn.stream.write_all(&buf)?;
        let frame = conn.read_frame()?;
        let (session, _) = ConnectResponse::decode(&frame).map_err(io::Error::other)?;
        conn.session = session;
        Ok(conn)
    }

    /// Reads the next whole frame (without its length prefix).
    pub fn read_frame(&mut self) -> io::Result<Bytes> {
        loop {
            if let Some(frame) = self.frames.next_frame().map_err(io::Error::other)? {
                return Ok(frame);
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.frames.push(&chunk[..n]);
        }
    }

    /// Sends `req` with `xid` and returns the reply header and body, skipping watch
    /// notifications (xid -1) that arrive first.
    pub fn call(&mut self, xid: i32, req: &Request) -> io::Result<(ReplyHeader, Bytes)> {
        let mut buf = BytesMut::new();
        req.encode_frame(xid, "", &mut buf);
        self.stream.write_all(&buf)?;
        loop {
            let frame = self.read_frame()?;
            let (header, used) = ReplyHeader::decode(&frame).map_err(io::Error::other)?;
            if header.xid == -1 {
                continue;
            }
            if header.xid != xid {
                return Err(io::Error::other(format!(
                    "reply xid {} does not match request xid {xid}",
                    header.xid
                )));
            }
            return Ok((header, frame.slice(used..)));
        }
    }

    /// Sends `req` and decodes a successful reply, or returns the server's error code.
    pub fn request(&mut self, xid: i32, req: &Request) -> io::Result<Result<Response, ErrorCode>> {
        let op: OpCode = req.opcode();
        let (header, body) = self.call(xid, req)?;
        if header.err != 0 {
            return Ok(Err(ErrorCode::from_i32(header.err)));
        }
        Response::decode_for(op, &body)
            .map(Ok)
            .map_err(io::Error::other)
    }
}

/// One standalone server shared by every test of a test binary; it lives until the binary
/// exits (the harness kills it then). Tests keep apart by working under their own paths.
pub fn shared_server() -> &'static zk_harness::ZkServer {
    static SERVER: OnceLock<zk_harness::ZkServer> = OnceLock::new();
    SERVER.get_or_init(|| zk_harness::ZkServer::standalone().expect("start a standalone server"))
}

/// Waits until `dir` holds exactly `n` children (a missing `dir` holds none), at most
/// `within`, and returns them; fails the test with what it holds otherwise.
pub async fn settle(c: &zk_tokio::Client, dir: &str, n: usize, within: Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let children = c.get_children(dir).await.unwrap_or_default();
        if children.len() == n {
            return children;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{dir} still holds {children:?} after {within:?}, {n} expected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A tokio client on `hosts` with a short session, for tests.
pub async fn client(hosts: &str) -> zk_tokio::Client {
    zk_tokio::Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("connect a client")
}

/// zk-sim's model server on a socket, shared by every test of a test binary: for tests of
/// our clients and recipes that need ZooKeeper's behaviour but not a conformance check
/// against the real server (those use [`shared_server`]). It serves from a thread of its
/// own until the binary exits.
pub fn shared_sim() -> &'static SimHandle {
    static SIM: OnceLock<SimHandle> = OnceLock::new();
    SIM.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the model server");
            rt.block_on(async {
                let config = zk_sim::Config::standalone()
                    .tick(Duration::from_millis(200))
                    .session_timeouts(Duration::from_millis(400), Duration::from_secs(60))
                    .extended_types(true)
                    .container_check(Duration::from_millis(500));
                let server = zk_sim::SimServer::bind_with(config, &["127.0.0.1:0"])
                    .await
                    .expect("serve the model");
                let _ = tx.send(server.addr());
                std::future::pending::<()>().await;
            });
        });
        SimHandle {
            addr: rx.recv().expect("the model server's address"),
        }
    })
}

/// Where [`shared_sim`] listens.
pub struct SimHandle {
    addr: SocketAddr,
}

impl SimHandle {
    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its connect string.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }
}
