//! Runs a script against one server over raw sockets and writes down, per step and per
//! session, everything the server sent, normalised so two servers can be compared: zxids
//! relative to the script's first, session ids by order of appearance, times masked.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zk_proto::ErrorCode;
use zk_proto::codec::{DEFAULT_MAX_FRAME, FrameDecoder, Jute, write_frame};
use zk_proto::consts::{OpCode, xid};
use zk_proto::records::*;

use super::script::{Resume, Step};

struct Sess {
    stream: Option<TcpStream>,
    frames: FrameDecoder,
    id: i64,
    passwd: Bytes,
    timeout: i32,
    last_zxid: i64,
    next_xid: i32,
    /// Ended on the server (closed or expired).
    ended: bool,
}

/// What one server said during one script.
pub struct Runner {
    addrs: Vec<SocketAddr>,
    /// The server each session slot talks to now.
    server_of: BTreeMap<usize, usize>,
    sessions: BTreeMap<usize, Sess>,
    /// Every session id seen, in order: its position is its normalised name.
    ids: Vec<i64>,
    base: Option<i64>,
    /// Per step, per session slot, the lines.
    pub trace: Vec<BTreeMap<usize, Vec<String>>>,
    read_timeout: Duration,
    /// Sessions whose slot was reused while they lived on the server (their connection
    /// was closed by the server): cleanup ends them.
    orphans: Vec<Sess>,
    /// The highest zxid any reply carried: in an ensemble, every server must reach it
    /// before a step ends.
    max_zxid: i64,
}

impl Runner {
    /// A runner over these servers: session slot `i` starts on server `i % n` and moves
    /// to the next server at each reconnect. With several servers, the barrier after each
    /// step also syncs every session's server with the leader.
    pub fn new(addrs: Vec<SocketAddr>, read_timeout: Duration) -> Runner {
        Runner {
            addrs,
            server_of: BTreeMap::new(),
            sessions: BTreeMap::new(),
            ids: Vec::new(),
            base: None,
            trace: Vec::new(),
            read_timeout,
            orphans: Vec::new(),
            max_zxid: 0,
        }
    }

    fn line(&mut self, slot: usize, text: String) {
        self.trace
            .last_mut()
            .expect("a step is open")
            .entry(slot)
            .or_default()
            .push(text);
    }

    fn sid(&mut self, id: i64) -> String {
        if id == 0 {
            return "0".into();
        }
        let n = match self.ids.iter().position(|x| *x == id) {
            Some(n) => n,
            None => {
                self.ids.push(id);
                self.ids.len() - 1
            }
        };
        format!("S{n}")
    }

    fn z(&self, z: i64) -> String {
        match (z, self.base) {
            (0 | -1, _) => z.to_string(),
            (_, Some(b)) => format!("z{:+}", z - b),
            (_, None) => "z?".into(),
        }
    }

    fn stat(&mut self, s: &Stat) -> String {
        let owner = self.sid(s.ephemeral_owner);
        format!(
            "stat(c{} m{} p{} v{} cv{} av{} own={} len={} n={} mtime>=ctime={})",
            self.z(s.czxid),
            self.z(s.mzxid),
            self.z(s.pzxid),
            s.version,
            s.cversion,
            s.aversion,
            owner,
            s.data_length,
            s.num_children,
            s.mtime >= s.ctime,
        )
    }

    fn result(&mut self, r: &OpResult) -> String {
        match r {
            OpResult::Create(c) => format!("create {}", c.path),
            OpResult::Create2(c) => {
                let st = self.stat(&c.stat);
                format!("create2 {} {st}", c.path)
            }
            OpResult::Delete => "delete".into(),
            OpResult::SetData(s) => format!("setData {}", self.stat(s)),
            OpResult::Check => "check".into(),
            OpResult::GetData(d) => format!("getData {:?} {}", d.data, self.stat(&d.stat)),
            OpResult::GetChildren(c) => format!("getChildren {:?}", c.children),
            OpResult::Error(e) => format!("error {}", e.as_i32()),
        }
    }

    fn body(&mut self, r: &Response) -> String {
        match r {
            Response::Empty => "empty".into(),
            Response::Create(c) => format!("path {}", c.path),
            Response::Create2(c) => {
                let st = self.stat(&c.stat);
                format!("path {} {st}", c.path)
            }
            Response::Stat(s) => self.stat(s),
            Response::GetData(d) => format!("data {:?} {}", d.data, self.stat(&d.stat)),
            Response::GetAcl(a) => format!("acl {:?} {}", a.acl, self.stat(&a.stat)),
            Response::GetChildren(c) => format!("children {:?}", c.children),
            Response::GetChildren2(c) => {
                format!("children {:?} {}", c.children, self.stat(&c.stat))
            }
            Response::Sync(s) => format!("sync {}", s.path),
            Response::Multi(m) => {
                let parts: Vec<String> = m.results.iter().map(|r| self.result(r)).collect();
                format!("multi [{}]", parts.join("; "))
            }
            Response::GetAllChildrenNumber(n) => format!("count {}", n.total_number),
            Response::GetEphemerals(e) => format!("ephemerals {:?}", e.ephemerals),
            Response::WhoAmI(w) => format!("whoami {:?}", w.client_info),
            Response::Sasl(_) => "sasl".into(),
            Response::Status(s) => format!("status {}", s.err),
        }
    }

    fn connect(&self, slot: usize) -> io::Result<TcpStream> {
        let server = self.server_of.get(&slot).copied().unwrap_or(slot) % self.addrs.len();
        let s = TcpStream::connect_timeout(&self.addrs[server], Duration::from_secs(5))?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    /// Reads one frame from a session's socket; None on EOF or timeout.
    fn read_frame(
        &mut self,
        slot: usize,
        timeout: Duration,
    ) -> Option<Result<Bytes, &'static str>> {
        let sess = self.sessions.get_mut(&slot)?;
        let deadline = Instant::now() + timeout;
        loop {
            match sess.frames.next_frame() {
                Ok(Some(f)) => return Some(Ok(f)),
                Ok(None) => {}
                Err(_) => return Some(Err("bad frame")),
            }
            let stream = sess.stream.as_mut()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Some(Err("timeout"));
            }
            let _ = stream.set_read_timeout(Some(left));
            let mut buf = [0u8; 8192];
            match stream.read(&mut buf) {
                Ok(0) => return Some(Err("closed")),
                Ok(n) => sess.frames.push(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Some(Err("timeout"));
                }
                Err(_) => return Some(Err("closed")),
            }
        }
    }

    fn send(&mut self, slot: usize, frame: &[u8]) -> bool {
        let Some(stream) = self.sessions.get_mut(&slot).and_then(|s| s.stream.as_mut()) else {
            return false;
        };
        stream.write_all(frame).is_ok()
    }

    /// Reads until the reply with `want` arrives, noting notifications; returns the reply
    /// header and body, or None when the connection ended or stayed silent.
    fn until_reply(
        &mut self,
        slot: usize,
        want: i32,
        timeout: Duration,
    ) -> Option<(ReplyHeader, Bytes)> {
        loop {
            match self.read_frame(slot, timeout)? {
                Err(why) => {
                    self.line(slot, format!("no reply: {why}"));
                    if why != "timeout" {
                        self.drop_socket(slot);
                    }
                    return None;
                }
                Ok(frame) => {
                    let Ok((h, used)) = ReplyHeader::decode(&frame) else {
                        self.line(slot, "undecodable header".into());
                        return None;
                    };
                    let body = frame.slice(used..);
                    if h.xid == xid::NOTIFICATION {
                        match WatcherEvent::decode(&body) {
                            Ok((e, _)) => self.line(
                                slot,
                                format!(
                                    "event type={} state={} {} zxid={}",
                                    e.kind, e.state, e.path, h.zxid
                                ),
                            ),
                            Err(_) => self.line(slot, "undecodable event".into()),
                        }
                        continue;
                    }
                    if h.zxid > 0 {
                        self.max_zxid = self.max_zxid.max(h.zxid);
                        if let Some(s) = self.sessions.get_mut(&slot) {
                            s.last_zxid = s.last_zxid.max(h.zxid);
                        }
                    }
                    if h.xid != want {
                        self.line(slot, format!("unexpected xid {} (wanted {want})", h.xid));
                        continue;
                    }
                    return Some((h, body));
                }
            }
        }
    }

    fn drop_socket(&mut self, slot: usize) {
        if let Some(s) = self.sessions.get_mut(&slot) {
            s.stream = None;
            s.frames.clear();
        }
    }

    fn handshake(
        &mut self,
        slot: usize,
        session: i64,
        passwd: Bytes,
        timeout: i32,
        last_zxid: i64,
    ) {
        let stream = match self.connect(slot) {
            Ok(s) => s,
            Err(e) => {
                self.line(slot, format!("connect failed: {e}"));
                return;
            }
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_zxid,
            timeout,
            session_id: session,
            passwd,
            read_only: false,
        };
        let mut buf = BytesMut::new();
        write_frame(&mut buf, |b| req.encode(b));
        let sess = self.sessions.entry(slot).or_insert_with(|| Sess {
            stream: None,
            frames: FrameDecoder::new(DEFAULT_MAX_FRAME),
            id: 0,
            passwd: Bytes::new(),
            timeout,
            last_zxid: 0,
            next_xid: 1,
            ended: false,
        });
        sess.stream = Some(stream);
        sess.frames.clear();
        sess.ended = false;
        if !self.send(slot, &buf) {
            self.line(slot, "handshake not sent".into());
            return;
        }
        // A loaded ensemble member can take seconds to create a session.
        let frame = match self.read_frame(slot, Duration::from_secs(20)) {
            Some(Ok(f)) => f,
            other => {
                self.line(
                    slot,
                    format!("no handshake reply: {:?}", other.map(|r| r.err())),
                );
                self.drop_socket(slot);
                return;
            }
        };
        let Ok((rsp, _)) = ConnectResponse::decode(&frame) else {
            self.line(slot, "undecodable handshake".into());
            return;
        };
        let name = self.sid(rsp.session_id);
        let passwd_ok =
            rsp.session_id == 0 || rsp.passwd.as_ref() == zk_sim::password(rsp.session_id);
        self.line(
            slot,
            format!(
                "session {name} of server {} timeout={} ro={} passwd_is_generatePasswd={passwd_ok}",
                rsp.session_id >> 56,
                rsp.timeout,
                rsp.read_only
            ),
        );
        if rsp.timeout <= 0 {
            self.drop_socket(slot);
            return;
        }
        let s = self.sessions.get_mut(&slot).expect("inserted above");
        s.id = rsp.session_id;
        s.passwd = rsp.passwd;
        s.timeout = rsp.timeout;
    }

    fn next_xid(&mut self, slot: usize) -> i32 {
        let s = self.sessions.get_mut(&slot).expect("open session");
        let x = s.next_xid;
        s.next_xid += 1;
        x
    }

    fn is_open(&self, slot: usize) -> bool {
        self.sessions.get(&slot).is_some_and(|s| s.stream.is_some())
    }

    /// Sends a request and notes its reply.
    /// Sends a request and records its reply; returns the reply's error code, if one came.
    fn call(&mut self, slot: usize, xid: i32, op: OpCode, frame: &[u8]) -> Option<i32> {
        if !self.send(slot, frame) {
            self.line(slot, "not sent".into());
            return None;
        }
        let timeout = self.read_timeout;
        let (h, body) = self.until_reply(slot, xid, timeout)?;
        if self.base.is_none() && h.zxid > 0 {
            self.base = Some(h.zxid);
        }
        let zxid = self.z(h.zxid);
        if h.err != 0 {
            let extra = if body.is_empty() {
                String::new()
            } else {
                format!(" body={}B", body.len())
            };
            self.line(
                slot,
                format!("reply {op:?} zxid={zxid} err={}{extra}", h.err),
            );
            return Some(h.err);
        }
        let text = match Response::decode_for(op, &body) {
            Ok(r) => self.body(&r),
            Err(e) => format!("undecodable body: {e}"),
        };
        self.line(slot, format!("reply {op:?} zxid={zxid} {text}"));
        Some(0)
    }

    /// After every step: a ping on each open session, so that every notification the step
    /// caused has arrived (a server answers a connection in order).
    fn ping(&mut self, slot: usize) -> Option<i64> {
        if !self.is_open(slot) {
            return None;
        }
        let mut buf = BytesMut::new();
        Request::Ping.encode_frame(xid::PING, "", &mut buf);
        if !self.send(slot, &buf) {
            return None;
        }
        self.until_reply(slot, xid::PING, Duration::from_secs(5))
            .map(|(h, _)| h.zxid)
    }

    fn barrier(&mut self, record_pings: bool) {
        // A ping reply carries the zxid its server has applied, and a server sends a
        // change's notifications before it moves past its zxid: once a ping shows the
        // highest zxid of the step, every notification of the step has arrived. A
        // standalone server is there at once; an ensemble member may lag a little (and
        // a new session's zxid shows only in pings, so every server is asked first).
        let slots: Vec<usize> = self.sessions.keys().copied().collect();
        let mut seen: BTreeMap<usize, i64> = BTreeMap::new();
        for &slot in &slots {
            if let Some(z) = self.ping(slot) {
                seen.insert(slot, z);
            }
        }
        // A loaded machine can hold a member back for seconds.
        let deadline = Instant::now() + Duration::from_secs(20);
        for (slot, mut z) in seen {
            while Instant::now() < deadline {
                if z >= self.max_zxid {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
                match self.ping(slot) {
                    Some(next) => z = next,
                    None => break,
                }
            }
            if record_pings {
                let text = self.z(z);
                self.line(slot, format!("ping zxid={text}"));
            }
        }
    }

    pub fn run(&mut self, steps: &[Step]) {
        for step in steps {
            self.trace.push(BTreeMap::new());
            self.step(step);
            self.barrier(true);
        }
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Open(slot, timeout) => {
                if let Some(old) = self.sessions.remove(slot)
                    && !old.ended
                    && old.id != 0
                {
                    self.orphans.push(old);
                }
                self.handshake(*slot, 0, Bytes::from_static(&[0; 16]), *timeout, 0);
            }
            Step::Op(slot, req) => {
                if !self.is_open(*slot) {
                    return;
                }
                let x = self.next_xid(*slot);
                let mut buf = BytesMut::new();
                req.encode_frame(x, "", &mut buf);
                self.call(*slot, x, req.opcode(), &buf);
            }
            Step::Raw(slot, body) => {
                if !self.is_open(*slot) {
                    return;
                }
                let x = self.next_xid(*slot);
                let mut frame = body.clone();
                if frame.len() >= 4 {
                    frame[..4].copy_from_slice(&x.to_be_bytes());
                }
                let op = if frame.len() >= 8 {
                    OpCode::from_i32(i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]))
                        .unwrap_or(OpCode::Error)
                } else {
                    OpCode::Error
                };
                let mut buf = BytesMut::new();
                write_frame(&mut buf, |b| b.extend_from_slice(&frame));
                if self.call(*slot, x, op, &buf) == Some(ErrorCode::Unimplemented.as_i32()) {
                    // The server closes the connection after this reply, on a thread of
                    // its own: a ping sent meanwhile may or may not be answered first.
                    // Wait for the close, so both servers show the same thing.
                    self.until_reply(*slot, i32::MIN, Duration::from_secs(5));
                }
            }
            Step::Auth(slot, scheme, creds) => {
                if !self.is_open(*slot) {
                    return;
                }
                let mut buf = BytesMut::new();
                Request::Auth(AuthPacket {
                    kind: 0,
                    scheme: scheme.to_string(),
                    auth: Bytes::from_static(creds.as_bytes()),
                })
                .encode_frame(xid::AUTH, "", &mut buf);
                self.call(*slot, xid::AUTH, OpCode::Auth, &buf);
            }
            Step::SetWatches(slot, w) => {
                if !self.is_open(*slot) {
                    return;
                }
                let mut w = w.clone();
                w.relative_zxid = self.sessions[slot].last_zxid;
                let mut buf = BytesMut::new();
                Request::SetWatches2(w).encode_frame(xid::SET_WATCHES, "", &mut buf);
                self.call(*slot, xid::SET_WATCHES, OpCode::SetWatches2, &buf);
            }
            Step::Close(slot) => {
                if !self.is_open(*slot) {
                    return;
                }
                let x = self.next_xid(*slot);
                let mut buf = BytesMut::new();
                Request::CloseSession.encode_frame(x, "", &mut buf);
                self.call(*slot, x, OpCode::CloseSession, &buf);
                let end = match self.read_frame(*slot, Duration::from_secs(5)) {
                    Some(Err(why)) => why.to_string(),
                    Some(Ok(_)) => "more frames".into(),
                    None => "gone".into(),
                };
                self.line(*slot, format!("after close: {end}"));
                self.drop_socket(*slot);
                if let Some(s) = self.sessions.get_mut(slot) {
                    s.ended = true;
                }
            }
            Step::Reconnect(slot, how) => {
                let Some(s) = self.sessions.get(slot) else {
                    return;
                };
                if s.ended || s.id == 0 {
                    return;
                }
                let (id, passwd, timeout, last) = (s.id, s.passwd.clone(), s.timeout, s.last_zxid);
                self.drop_socket(*slot);
                // In an ensemble the session moves to the next server.
                *self.server_of.entry(*slot).or_insert(*slot) += 1;
                match how {
                    Resume::Right => {}
                    Resume::WrongPassword => {
                        // With no last zxid, so that a lagging ensemble member judges the
                        // password and nothing else.
                        self.handshake(*slot, id, Bytes::from_static(&[7; 16]), timeout, 0);
                        self.drop_socket(*slot);
                    }
                    Resume::FutureZxid => {
                        self.handshake(*slot, id, passwd.clone(), timeout, last + (1 << 40));
                        self.drop_socket(*slot);
                    }
                }
                if let Some(s) = self.sessions.get_mut(slot) {
                    s.id = id;
                    s.passwd = passwd.clone();
                }
                // An ensemble member that has not yet applied the last zxid this session
                // saw refuses it (by closing), and a real client tries again: so do we,
                // quietly, until it has caught up.
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline {
                    let mark = self.trace.last().map(|t| t.get(slot).map_or(0, Vec::len));
                    self.handshake(*slot, id, passwd.clone(), timeout, last);
                    if self.is_open(*slot) || self.addrs.len() == 1 || Instant::now() >= deadline {
                        break;
                    }
                    if let (Some(step), Some(n)) = (self.trace.last_mut(), mark)
                        && let Some(lines) = step.get_mut(slot)
                    {
                        lines.truncate(n);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            Step::Wait(ms) => {
                let until = Instant::now() + Duration::from_millis(*ms);
                while Instant::now() < until {
                    self.barrier(false);
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Step::Expire(slot) => {
                self.drop_socket(*slot);
                if let Some(s) = self.sessions.get_mut(slot) {
                    s.ended = true;
                }
                // The server expires it within its timeout plus a tick; keep the others
                // alive meanwhile. Only notifications are noted: when exactly they arrive
                // differs between servers.
                let wait = if self.addrs.len() > 1 { 2000 } else { 1200 };
                let until = Instant::now() + Duration::from_millis(wait);
                while Instant::now() < until {
                    self.barrier(false);
                    std::thread::sleep(Duration::from_millis(80));
                }
            }
        }
    }

    /// Ends every session the script left behind (so none expires during a later script)
    /// and deletes the script's nodes, without noting anything.
    pub fn cleanup(&mut self, root: &str, superuser: (&str, &str)) {
        for (i, orphan) in std::mem::take(&mut self.orphans).into_iter().enumerate() {
            self.sessions.insert(1000 + i, orphan);
        }
        let slots: Vec<usize> = self.sessions.keys().copied().collect();
        for slot in slots {
            let s = &self.sessions[&slot];
            if s.ended || s.id == 0 {
                continue;
            }
            let (id, passwd, timeout) = (s.id, s.passwd.clone(), s.timeout);
            self.trace.push(BTreeMap::new());
            if !self.is_open(slot) {
                self.handshake(slot, id, passwd, timeout, 0);
            }
            if self.is_open(slot) {
                let x = self.next_xid(slot);
                let mut buf = BytesMut::new();
                Request::CloseSession.encode_frame(x, "", &mut buf);
                self.call(slot, x, OpCode::CloseSession, &buf);
            }
            self.trace.pop();
        }
        self.sessions.clear();
        if let Ok(mut c) = zk_tests::RawConn::connect(self.addrs[0], 10_000) {
            let _ = c.call(
                -4,
                &Request::Auth(AuthPacket {
                    kind: 0,
                    scheme: "digest".into(),
                    auth: Bytes::from(format!("{}:{}", superuser.0, superuser.1)),
                }),
            );
            delete_tree(&mut c, root);
            let _ = c.call(1_000_000, &Request::CloseSession);
        }
    }
}

fn delete_tree(c: &mut zk_tests::RawConn, path: &str) {
    if let Ok(Ok(Response::GetChildren(kids))) = c.request(
        2,
        &Request::GetChildren(GetChildrenRequest {
            path: path.into(),
            watch: false,
        }),
    ) {
        for k in kids.children {
            delete_tree(c, &format!("{path}/{k}"));
        }
    }
    let _ = c.request(
        3,
        &Request::Delete(DeleteRequest {
            path: path.into(),
            version: -1,
        }),
    );
}
