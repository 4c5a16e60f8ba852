//! The first bytes of a connection: a four-letter word instead of a length, or the
//! handshake (`processConnectRequest`).

use std::time::Instant;

use bytes::Bytes;
use zk_proto::codec::{Jute, Origin, write_frame};
use zk_proto::records::{ConnectRequest, ConnectResponse};

use super::{ConnId, Ensemble, ServerState};
use crate::history::{Txn, TxnOp};
use crate::sessions::password;

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
        let wall = self.wall(now);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.old_client = old_client;
            c.timeout_ms = timeout;
            c.stats.last_op = "SESS";
            c.stats.established = wall;
            c.stats.last_response = ms;
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
