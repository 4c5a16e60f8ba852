//! A TCP proxy on loopback that injects faults: delay, black-hole, refuse, cut (RST), drop,
//! and a close right after the reply to a chosen request.
//!
//! Every accepted connection gets its own upstream connection to the target. Faults apply to
//! connections already open and to new ones. Threads are plain std threads so the proxy
//! works under any runtime or none.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use socket2::SockRef;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything at once.
    Pass,
    /// Forward everything after this delay, in both directions, keeping order.
    Delay(Duration),
    /// Accept and keep connections open but forward nothing, in either direction: a peer that
    /// went silent (a partition, a hung server).
    BlackHole,
    /// Reset new connections as soon as they are accepted; open ones are left alone.
    Refuse,
}

const POLL: Duration = Duration::from_millis(20);

const OPEN: u8 = 0;
const CUT: u8 = 1;
const DROPPED: u8 = 2;

#[derive(Debug)]
struct Conn {
    client: TcpStream,
    upstream: TcpStream,
    state: Arc<AtomicU8>,
    /// Directions whose writer has finished; at two the connection is closed.
    finished: AtomicU8,
}

impl Conn {
    fn cut(&self) {
        self.state.store(CUT, Ordering::SeqCst);
        // With a zero linger time the last close sends RST instead of FIN. Shutting down the
        // read side sends nothing but wakes the pump threads, which then close their handles.
        for s in [&self.client, &self.upstream] {
            let _ = SockRef::from(s).set_linger(Some(Duration::ZERO));
            let _ = s.shutdown(Shutdown::Read);
        }
    }

    fn drop_gracefully(&self) {
        self.state.store(DROPPED, Ordering::SeqCst);
        for s in [&self.client, &self.upstream] {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn is_open(&self) -> bool {
        self.state.load(Ordering::SeqCst) == OPEN
    }
}

/// A close armed for the reply to the next request of one opcode.
#[derive(Debug, Clone, Copy)]
struct Trip {
    opcode: i32,
    /// The xid of the request once it went by.
    xid: Option<i32>,
}

/// Splits one direction of a ZooKeeper connection into frames (4-byte length, then the
/// frame), keeping only what a trip needs: the first 8 bytes of each frame.
#[derive(Debug, Default)]
struct Frames {
    /// Bytes of the current frame's length and head seen so far.
    head: Vec<u8>,
    /// Bytes of the current frame's body still to come, once its length is known.
    left: Option<usize>,
    /// Frames completed in this direction (the first is the handshake, with no header).
    count: u64,
}

impl Frames {
    /// Feeds a chunk; calls `done(index, head)` for each frame it completes, `head` being up
    /// to 8 bytes of the frame after its length (xid and opcode, or xid and zxid).
    fn feed(&mut self, mut chunk: &[u8], mut done: impl FnMut(u64, &[u8])) {
        while !chunk.is_empty() {
            match self.left {
                None => {
                    let take = (4 - self.head.len()).min(chunk.len());
                    self.head.extend_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    if self.head.len() == 4 {
                        let len = i32::from_be_bytes([
                            self.head[0],
                            self.head[1],
                            self.head[2],
                            self.head[3],
                        ]);
                        self.left = Some(len.max(0) as usize);
                        self.head.clear();
                    }
                }
                Some(left) => {
                    let take = left.min(chunk.len());
                    let keep = (8 - self.head.len().min(8)).min(take);
                    self.head.extend_from_slice(&chunk[..keep]);
                    chunk = &chunk[take..];
                    self.left = Some(left - take);
                }
            }
            if self.left == Some(0) {
                done(self.count, &self.head);
                self.count += 1;
                self.head.clear();
                self.left = None;
            }
        }
    }
}

fn be_i32(b: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

#[derive(Debug)]
struct Shared {
    target: Mutex<SocketAddr>,
    fault: Mutex<Fault>,
    trip: Mutex<Option<Trip>>,
    conns: Mutex<Vec<Arc<Conn>>>,
    accepted: AtomicU64,
    bytes: AtomicU64,
    closed: AtomicBool,
}

impl Shared {
    fn fault(&self) -> Fault {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A fault-injecting TCP proxy. Stops, resetting every connection, when dropped.
///
/// ```no_run
/// use zk_harness::{Fault, Proxy, ZkServer};
/// let server = ZkServer::standalone().unwrap();
/// let proxy = Proxy::start(server.addr()).unwrap();
/// // connect a client to proxy.addr() ...
/// proxy.set_fault(Fault::BlackHole); // the client now hears nothing
/// proxy.cut(); // and now its connection is reset
/// ```
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `target`.
    pub fn start(target: SocketAddr) -> io::Result<Proxy> {
        Proxy::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), target)
    }

    /// Listens on `listen` (a loopback address, port 0 for any free one) and forwards to
    /// `target`. Listening on `[::1]:0` gives an IPv6 front for an IPv4 server.
    pub fn start_on(listen: SocketAddr, target: SocketAddr) -> io::Result<Proxy> {
        if !listen.ip().is_loopback() || !target.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the test proxy only listens on and connects to loopback addresses",
            ));
        }
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target: Mutex::new(target),
            fault: Mutex::new(Fault::Pass),
            trip: Mutex::new(None),
            conns: Mutex::new(Vec::new()),
            accepted: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        let s = shared.clone();
        thread::Builder::new()
            .name(format!("zk-proxy-{}", addr.port()))
            .spawn(move || accept_loop(listener, s))?;
        Ok(Proxy { addr, shared })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address as a connect-string entry (`127.0.0.1:port` or `[::1]:port`).
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// Changes what happens to traffic from now on, on open and new connections.
    pub fn set_fault(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }

    /// The fault in effect.
    pub fn fault(&self) -> Fault {
        self.shared.fault()
    }

    /// Sends new connections to another target; open ones stay where they are.
    pub fn set_target(&self, target: SocketAddr) {
        *self.shared.target.lock().unwrap_or_else(|p| p.into_inner()) = target;
    }

    /// Closes the connection that carries the next request with `opcode` (ZooKeeper's
    /// number: 8 for getChildren, 12 for getChildren2, ...) right after the server's reply to
    /// it has been forwarded, with an orderly FIN on both sides: the client reads that reply,
    /// then the end of the connection, in that order and nothing in between. New
    /// connections are not affected (set [`Fault::Refuse`] to keep the client out for a
    /// while). Armed once; a later call replaces an unfired one.
    pub fn close_after_reply(&self, opcode: i32) {
        *self.shared.trip.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Trip { opcode, xid: None });
    }

    /// Whether a close armed with [`Proxy::close_after_reply`] has fired.
    pub fn tripped(&self) -> bool {
        self.shared
            .trip
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// Resets (RST) every open connection on both sides.
    pub fn cut(&self) {
        for c in self.take_conns() {
            c.cut();
        }
    }

    /// Closes every open connection on both sides with an orderly FIN.
    pub fn drop_connections(&self) {
        for c in self.take_conns() {
            c.drop_gracefully();
        }
    }

    fn take_conns(&self) -> Vec<Arc<Conn>> {
        std::mem::take(&mut *self.shared.conns.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Connections currently open through the proxy.
    pub fn open_connections(&self) -> usize {
        let mut conns = self.shared.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|c| c.is_open());
        conns.len()
    }

    /// Connections accepted since the proxy started.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Bytes forwarded since the proxy started, both directions together.
    pub fn bytes_forwarded(&self) -> u64 {
        self.shared.bytes.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.cut();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.closed.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                if let Err(e) = open(client, &shared) {
                    // The client has been reset; nothing else to do.
                    let _ = e;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL / 4),
            Err(_) => thread::sleep(POLL),
        }
    }
}

fn reset(stream: &TcpStream) {
    let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

fn open(client: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    client.set_nonblocking(false)?;
    if shared.fault() == Fault::Refuse {
        reset(&client);
        return Ok(());
    }
    let target = *shared.target.lock().unwrap_or_else(|p| p.into_inner());
    let upstream = match TcpStream::connect_timeout(&target, Duration::from_secs(2)) {
        Ok(u) => u,
        Err(e) => {
            reset(&client);
            return Err(e);
        }
    };
    for s in [&client, &upstream] {
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(POLL))?;
    }
    let conn = Arc::new(Conn {
        client: client.try_clone()?,
        upstream: upstream.try_clone()?,
        state: Arc::new(AtomicU8::new(OPEN)),
        finished: AtomicU8::new(0),
    });
    shared
        .conns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(conn.clone());
    pump(
        client.try_clone()?,
        upstream.try_clone()?,
        &conn,
        shared,
        Dir::ToServer,
    )?;
    pump(upstream, client, &conn, shared, Dir::ToClient)?;
    Ok(())
}

/// Which way a pump forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToServer,
    ToClient,
}

/// Watches the frames of one direction for an armed trip: a request of its opcode going to
/// the server names the xid; the reply with that xid going to the client fires it. True when
/// the chunk ends the reply that fires it.
fn watch_trip(frames: &mut Frames, dir: Dir, chunk: &[u8], shared: &Shared) -> bool {
    let mut trip = shared.trip.lock().unwrap_or_else(|p| p.into_inner());
    let mut fire = false;
    frames.feed(chunk, |index, head| {
        // The handshake (the first frame each way) has no header.
        let (Some(t), true) = (trip.as_mut(), index > 0) else {
            return;
        };
        match (dir, t.xid) {
            (Dir::ToServer, None) if be_i32(&head[4.min(head.len())..]) == Some(t.opcode) => {
                t.xid = be_i32(head);
            }
            (Dir::ToClient, Some(xid)) if be_i32(head) == Some(xid) => fire = true,
            _ => {}
        }
    });
    if fire {
        *trip = None;
    }
    fire
}

/// Forwards `from` to `to` with two threads: a reader that stamps each chunk with the time it
/// may leave, and a writer that sends it then, so a delay adds latency without cutting
/// throughput.
fn pump(
    from: TcpStream,
    to: TcpStream,
    conn: &Arc<Conn>,
    shared: &Arc<Shared>,
    dir: Dir,
) -> io::Result<()> {
    let (tx, rx) = channel::<Chunk>();
    let (c, s) = (conn.clone(), shared.clone());
    thread::Builder::new()
        .name("zk-proxy-read".into())
        .spawn(move || read_side(from, tx, &c, &s, dir))?;
    let (c, s) = (conn.clone(), shared.clone());
    thread::Builder::new()
        .name("zk-proxy-write".into())
        .spawn(move || write_side(to, rx, &c, &s))?;
    Ok(())
}

/// Bytes to forward: when they may leave, and whether the connection closes after them.
type Chunk = (Instant, Vec<u8>, bool);

fn read_side(mut from: TcpStream, tx: Sender<Chunk>, conn: &Conn, shared: &Shared, dir: Dir) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut frames = Frames::default();
    while conn.is_open() {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let due = match shared.fault() {
                    Fault::BlackHole => continue,
                    Fault::Delay(d) => Instant::now() + d,
                    Fault::Pass | Fault::Refuse => Instant::now(),
                };
                let close = watch_trip(&mut frames, dir, &buf[..n], shared);
                if tx.send((due, buf[..n].to_vec(), close)).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    // Dropping `tx` tells the writer to pass the peer's FIN on once queued data is out.
}

fn write_side(mut to: TcpStream, rx: Receiver<Chunk>, conn: &Conn, shared: &Shared) {
    loop {
        match rx.recv_timeout(POLL) {
            Ok((due, data, close)) => {
                while conn.is_open() {
                    let now = Instant::now();
                    if now >= due {
                        break;
                    }
                    thread::sleep((due - now).min(POLL));
                }
                // Data still queued when the fault turns into a black hole is swallowed too.
                if !conn.is_open() || shared.fault() == Fault::BlackHole {
                    if !conn.is_open() {
                        return;
                    }
                    continue;
                }
                if to.write_all(&data).is_err() {
                    conn.cut();
                    return;
                }
                shared.bytes.fetch_add(data.len() as u64, Ordering::SeqCst);
                if close {
                    conn.drop_gracefully();
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if !conn.is_open() {
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                if conn.is_open() {
                    let _ = to.shutdown(Shutdown::Write);
                    if conn.finished.fetch_add(1, Ordering::SeqCst) == 1 {
                        conn.state.store(DROPPED, Ordering::SeqCst);
                    }
                }
                return;
            }
        }
    }
}
