//! The first bytes of a connection: a four-letter word instead of a length, or the
//! handshake (`processConnectRequest`).

use std::time::Instant;

use bytes::Bytes;
use zk_proto::codec::{Jute, Origin, write_frame};
use zk_proto::records::{ConnectRequest, ConnectResponse};

use super::{ConnId, Ensemble, ServerState};
use crate::history::{Txn, TxnOp};
use crate::sessions::password;

/// The words the server knows (`FourLetterCommands`).
const KNOWN: [&[u8; 4]; 18] = [
    b"conf", b"cons", b"crst", b"dirs", b"dump", b"envi", b"gtmk", b"ruok", b"stmk", b"srvr",
    b"srst", b"stat", b"wchc", b"wchp", b"wchs", b"mntr", b"isro", b"hash",
];

impl Ensemble {
    /// Whether `server` serves clients now (a standalone server always does while up; an
    /// ensemble member needs a leader and no election running).
    pub(crate) fn serving(&self, server: usize) -> bool {
        let up = self.servers[server].state == ServerState::Up;
        if self.config.standalone {
            return up;
        }
        up && self.election_until.is_none() && self.leader.is_some() && self.has_quorum()
    }

    /// A member that could serve read-only clients: up, cut off from any quorum, with
    /// read-only mode on.
    pub(crate) fn read_only(&self, server: usize) -> bool {
        !self.config.standalone
            && self.config.read_only_mode
            && self.servers[server].state == ServerState::Up
            && (!self.has_quorum() || self.leader.is_none())
            && self.election_until.is_none()
    }

    /// Answers a four-letter word and closes; false if the first bytes are a length.
    pub(crate) fn four_letter_word(&mut self, _now: Instant, conn: ConnId, word: [u8; 4]) -> bool {
        if !self.config.four_letter_words || !KNOWN.contains(&&word) {
            return false;
        }
        let server = self.conns[&conn].server;
        let text = match &word {
            b"ruok" => "imok".to_owned(),
            b"isro" => if self.read_only(server) { "ro" } else { "rw" }.to_owned(),
            b"srvr" | b"stat" => self.srvr(server),
            b"mntr" => self.mntr(server),
            _ => format!(
                "{} is not executed because it is not in the whitelist.\n",
                String::from_utf8_lossy(&word)
            ),
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.out.extend_from_slice(text.as_bytes());
            if !c.dirty {
                c.dirty = true;
                self.dirty.push_back(conn);
            }
        }
        self.close(conn);
        true
    }

    fn mode_name(&self, server: usize) -> &'static str {
        if self.config.standalone {
            "standalone"
        } else if self.read_only(server) {
            "read-only"
        } else if !self.serving(server) {
            "looking"
        } else if self.leader == Some(server) {
            "leader"
        } else {
            "follower"
        }
    }

    fn srvr(&self, server: usize) -> String {
        if !self.serving(server) && !self.read_only(server) {
            return "This ZooKeeper instance is not currently serving requests\n".to_owned();
        }
        let s = &self.servers[server];
        let mut out = String::from("Zookeeper version: 3.8.0-zk-sim, built on a model\n");
        if self.read_only(server) {
            out.push_str("READ-ONLY mode; serving only read-only clients\n");
        }
        out.push_str(&format!(
            "Latency min/avg/max: 0/0.0/0\nReceived: {}\nSent: {}\nConnections: {}\n\
             Outstanding: 0\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
            s.received,
            s.sent,
            self.connections(server).len(),
            self.applied(server),
            self.mode_name(server),
            self.served(server).node_count() + 1,
        ));
        out
    }

    fn mntr(&self, server: usize) -> String {
        if !self.serving(server) && !self.read_only(server) {
            return "This ZooKeeper instance is not currently serving requests\n".to_owned();
        }
        let s = &self.servers[server];
        let lines = [
            ("version", "3.8.0-zk-sim".to_owned()),
            ("server_state", self.mode_name(server).to_owned()),
            ("avg_latency", "0.0".to_owned()),
            ("max_latency", "0".to_owned()),
            ("min_latency", "0".to_owned()),
            ("packets_received", s.received.to_string()),
            ("packets_sent", s.sent.to_string()),
            (
                "num_alive_connections",
                self.connections(server).len().to_string(),
            ),
            ("outstanding_requests", "0".to_owned()),
            (
                "znode_count",
                (self.served(server).node_count() + 1).to_string(),
            ),
            ("watch_count", self.watch_count().to_string()),
            (
                "ephemerals_count",
                self.served(server).ephemeral_count().to_string(),
            ),
            ("global_sessions", self.sessions.sessions.len().to_string()),
            ("last_proposal_size", "-1".to_owned()),
        ];
        lines
            .iter()
            .map(|(k, v)| format!("zk_{k}\t{v}\n"))
            .collect()
    }

    /// The handshake. A refused or unreadable one closes the connection; a session that
    /// cannot be resumed gets a response with timeout 0, then the close.
    pub(crate) fn handle_connect(&mut self, now: Instant, conn: ConnId, frame: Bytes) {
        let server = self.conns[&conn].server;
        let ro = self.read_only(server);
        if !self.serving(server) && !ro {
            // "ZooKeeperServer not running": the connection is dropped.
            self.close(conn);
            return;
        }
        let Ok((req, used)) = ConnectRequest::read(Origin::shared(&frame), &frame)
            .map_err(zk_proto::codec::jute::flatten)
            .map(|(rest, r)| (r, frame.len() - rest.len()))
        else {
            self.close(conn);
            return;
        };
        // Clients before 3.4 send no read-only byte; they get none back either.
        let old_client = used < 4 + 8 + 4 + 8 + 4 + req.passwd.len() + 1;
        if ro && !req.read_only {
            self.close(conn);
            return;
        }
        if req.last_zxid_seen > self.applied(server) {
            // The client has seen more than this server: it must try another one.
            self.close(conn);
            return;
        }
        let min = self.config.min_session_timeout().as_millis() as i64;
        let max = self.config.max_session_timeout().as_millis() as i64;
        let timeout = i64::from(req.timeout).clamp(min, max) as u64;
        let ms = self.ms(now);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.old_client = old_client;
            c.timeout_ms = timeout;
        }
        if req.session_id == 0 {
            let id = self.servers[server].next_session;
            self.servers[server].next_session += 1;
            if !ro {
                self.zxid += 1;
                let zxid = self.zxid;
                self.tree.last_zxid = zxid;
                self.record(Txn {
                    zxid,
                    time: now,
                    session: id,
                    op: TxnOp::CreateSession {
                        timeout: timeout as i32,
                    },
                });
                self.replicate(now, zxid, super::lag::Effect::Nothing);
            }
            self.sessions.add(id, timeout, server, ro, ms);
            // A member answers once it applied the session's creation.
            let zxid = if ro { 0 } else { self.zxid };
            self.finish_session_init(conn, id, true, zxid);
            return;
        }
        let id = req.session_id;
        // The server closes this session's other connections on the same server, and the
        // model the ones on other servers as well (see the crate's differences).
        let others: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(cid, c)| **cid != conn && c.session == id)
            .map(|(cid, _)| *cid)
            .collect();
        for other in others {
            self.close(other);
        }
        let valid = req.passwd.as_ref() == password(id) && self.sessions.touch(id, timeout, ms);
        if valid && let Some(s) = self.sessions.sessions.get_mut(&id) {
            s.server = server;
        }
        self.finish_session_init(conn, id, valid, 0);
    }

    /// `finishSessionInit`: the ConnectResponse, and for an invalid session the close. On a
    /// lagging member it goes out once the member applied `zxid`.
    fn finish_session_init(&mut self, conn: ConnId, id: i64, valid: bool, zxid: i64) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let (server, old_client, timeout) = (c.server, c.old_client, c.timeout_ms);
        let rsp = ConnectResponse {
            protocol_version: 0,
            timeout: if valid { timeout as i32 } else { 0 },
            session_id: if valid { id } else { 0 },
            passwd: Bytes::copy_from_slice(&if valid { password(id) } else { [0; 16] }),
            read_only: self.read_only(server),
        };
        let mut frame = rsp.to_bytes();
        if old_client {
            // A client without the read-only byte gets none back.
            frame.truncate(frame.len() - 1);
        }
        if let Some(c) = self.conns.get_mut(&conn)
            && valid
        {
            c.initialized = true;
            c.session = id;
        }
        if self.must_wait(conn, zxid) {
            self.defer(conn, super::lag::Deferred::Frame { zxid, frame });
            return;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            write_frame(&mut c.out, |b| b.extend_from_slice(&frame));
            if !c.dirty {
                c.dirty = true;
                self.dirty.push_back(conn);
            }
        }
        self.servers[server].sent += 1;
        if !valid {
            self.close(conn);
        }
    }
}
