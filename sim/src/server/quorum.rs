//! Time and faults: session expiry, container reaping, paused servers, and how a quorum
//! reacts when members stop, come back or go silent.

use std::time::{Duration, Instant};

use super::lag::Effect;
use super::prep::{TxnOp as Prepared, View};
use super::{ConnId, Ensemble, ServerState};
use crate::acl::Identities;
use crate::history::{Txn, TxnOp};

impl Ensemble {
    /// The earliest moment [`Ensemble::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut ms: Vec<u64> = Vec::new();
        if let Some(t) = self.election_until {
            ms.push(t);
        }
        if self.leader_available() {
            ms.extend(self.sessions.next_expiry());
            ms.push(self.next_reap);
        }
        ms.extend(self.leader_timeout());
        ms.extend(self.next_apply());
        let from_ms = ms.into_iter().min().map(|t| self.instant(t));
        let resumes = self.servers.iter().filter_map(|s| match s.state {
            ServerState::Paused { until } => until,
            _ => None,
        });
        from_ms.into_iter().chain(resumes).min()
    }

    /// Time passed: paused servers resume, elections end, sessions expire, empty containers
    /// and expired TTL nodes are deleted.
    pub fn handle_timeout(&mut self, now: Instant) {
        let ms = self.ms(now);
        for i in 0..self.servers.len() {
            if let ServerState::Paused { until: Some(u) } = self.servers[i].state
                && u <= now
            {
                self.resume(now, i);
            }
        }
        for i in 0..self.servers.len() {
            self.apply_due(now, i, false);
        }
        if let Some(t) = self.leader_timeout()
            && t <= ms
        {
            // The followers give up on a silent leader.
            self.start_election(ms);
        }
        if let Some(t) = self.election_until
            && t <= ms
        {
            self.finish_election(ms);
        }
        if !self.leader_available() {
            return;
        }
        for session in self.sessions.expire_due(ms) {
            self.expire(now, session);
        }
        if self.next_reap <= ms {
            let wall = self.wall(now);
            for path in self.tree.reapable(wall) {
                self.delete_container(now, &path);
            }
            let every = self.config.container_check_ms;
            self.next_reap = (ms / every + 1) * every;
        }
    }

    /// The leader can apply transactions: there is one, no election runs and it is not
    /// frozen.
    fn leader_available(&self) -> bool {
        self.election_until.is_none()
            && self
                .leader
                .is_some_and(|l| self.servers[l].state == ServerState::Up)
    }

    /// When the followers stop waiting for a paused leader (syncLimit ticks).
    fn leader_timeout(&self) -> Option<u64> {
        if self.config.standalone || self.election_until.is_some() {
            return None;
        }
        let l = self.leader?;
        let paused = self.servers[l].paused_at?;
        Some(paused + self.config.sync_limit * self.config.tick_ms)
    }

    fn expire(&mut self, now: Instant, session: i64) {
        self.kill_session(now, session, true);
        let conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.session == session)
            .map(|(id, _)| *id)
            .collect();
        for c in conns {
            self.close(c);
        }
    }

    /// The container manager's `deleteContainer`, a transaction of the server's own.
    fn delete_container(&mut self, now: Instant, path: &str) {
        self.zxid += 1;
        let zxid = self.zxid;
        let time = self.wall(now);
        let ids = Identities::default();
        let prepared = View::new(&self.tree, 0, &ids, zxid, time).delete_container(path);
        let mut notes = Vec::new();
        let (op, effect) = match prepared {
            Ok(Prepared::Delete { path }) => {
                self.tree.delete(&path, zxid, &mut notes);
                let effect = Effect::Ops {
                    time,
                    ops: vec![Prepared::Delete { path: path.clone() }],
                };
                (TxnOp::Delete { path }, effect)
            }
            Ok(_) => unreachable!("delete_container prepares deletes only"),
            Err(e) => (TxnOp::Error(e), Effect::Nothing),
        };
        self.tree.last_zxid = zxid;
        self.record(Txn {
            zxid,
            time: now,
            session: 0,
            op,
        });
        self.replicate(now, zxid, effect);
        self.notify(notes);
    }

    /// A majority of the members is up and not frozen (a standalone server always is).
    pub(crate) fn has_quorum(&self) -> bool {
        if self.config.standalone {
            return true;
        }
        let live = self
            .servers
            .iter()
            .filter(|s| s.state == ServerState::Up)
            .count();
        live * 2 > self.servers.len()
    }

    /// Every member drops its clients and an election starts (nobody is served until it
    /// ends).
    fn start_election(&mut self, ms: u64) {
        self.leader = None;
        self.election_until = Some(ms + self.config.election_ms);
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for c in conns {
            let server = self.conns[&c].server;
            // A frozen member notices only once it runs again.
            if self.servers[server].state == ServerState::Up {
                self.close(c);
            }
        }
        for s in self.servers.iter_mut() {
            if matches!(s.state, ServerState::Paused { .. }) {
                s.missed_election = true;
            }
        }
    }

    /// The election ends: with a quorum, the highest live id leads a new epoch and tracks
    /// every session afresh; without one, nobody leads.
    pub(crate) fn finish_election(&mut self, ms: u64) {
        self.election_until = None;
        if !self.has_quorum() {
            self.leader = None;
            return;
        }
        let leader = (0..self.servers.len())
            .rev()
            .find(|&i| self.servers[i].state == ServerState::Up);
        self.leader = leader;
        let epoch = (self.zxid >> 32) + 1;
        self.zxid = epoch << 32;
        self.tree.last_zxid = self.zxid;
        // Local sessions die with the read-only servers that held them.
        let locals: Vec<i64> = self
            .sessions
            .sessions
            .iter()
            .filter(|(_, s)| s.local)
            .map(|(id, _)| *id)
            .collect();
        for id in locals {
            self.sessions.remove(id);
        }
        self.sessions.restart_all(ms);
        for s in self.servers.iter_mut() {
            if s.state == ServerState::Up {
                let prefix = super::session_prefix(&self.config, s.myid);
                s.next_session = crate::sessions::first_session_id(ms, prefix).max(s.next_session);
            }
        }
        self.resync(self.instant(ms));
    }

    // ----- faults -----

    /// Kills a server: its connections break at once and new ones are refused. In an
    /// ensemble, losing the leader (or the quorum) starts an election.
    pub fn kill(&mut self, now: Instant, server: usize) {
        let Some(s) = self.servers.get_mut(server) else {
            return;
        };
        if s.state == ServerState::Down {
            return;
        }
        let was_leader = self.leader == Some(server);
        s.state = ServerState::Down;
        s.paused_at = None;
        for c in self.connections(server) {
            self.close(c);
        }
        let ms = self.ms(now);
        if self.config.standalone {
            return;
        }
        if was_leader || !self.has_quorum() {
            self.start_election(ms);
        }
    }

    /// Starts a killed server again. A standalone server keeps its sessions (they resume
    /// if clients come back within their timeout); an ensemble member rejoins, and a
    /// quorum regained elects a leader.
    pub fn restart(&mut self, now: Instant, server: usize) {
        let ms = self.ms(now);
        let Some(s) = self.servers.get_mut(server) else {
            return;
        };
        if s.state != ServerState::Down {
            return;
        }
        s.state = ServerState::Up;
        s.next_session =
            crate::sessions::first_session_id(ms, super::session_prefix(&self.config, s.myid));
        self.restarted(server);
        if self.config.standalone {
            // A restarted standalone server tracks its sessions from the start again.
            self.sessions.restart_all(ms);
            return;
        }
        if self.leader.is_none() && self.election_until.is_none() {
            self.start_election(ms);
        }
    }

    /// Freezes a server until [`Ensemble::resume`] (or until `now + for_`, when given):
    /// its connections stay open and nothing on it moves.
    pub fn pause(&mut self, now: Instant, server: usize, for_: Option<Duration>) {
        let ms = self.ms(now);
        let Some(s) = self.servers.get_mut(server) else {
            return;
        };
        if s.state != ServerState::Up {
            return;
        }
        s.state = ServerState::Paused {
            until: for_.map(|d| now + d),
        };
        s.paused_at = Some(ms);
    }

    /// A stall: the server freezes for `duration`, then catches up.
    pub fn stall(&mut self, now: Instant, server: usize, duration: Duration) {
        self.pause(now, server, Some(duration));
    }

    /// Unfreezes a server: input that arrived meanwhile is handled now. A member that was
    /// replaced as leader, or that was frozen past the sync limit, drops its clients.
    pub fn resume(&mut self, now: Instant, server: usize) {
        let ms = self.ms(now);
        let Some(s) = self.servers.get_mut(server) else {
            return;
        };
        if !matches!(s.state, ServerState::Paused { .. }) {
            return;
        }
        s.state = ServerState::Up;
        let paused_at = s.paused_at.take().unwrap_or(ms);
        let missed_election = std::mem::take(&mut s.missed_election);
        let limit = self.config.sync_limit * self.config.tick_ms;
        if !self.config.standalone
            && (missed_election || (self.leader != Some(server) && ms - paused_at >= limit))
        {
            for c in self.connections(server) {
                self.close(c);
            }
        }
        if !self.config.standalone && self.leader.is_none() && self.election_until.is_none() {
            self.start_election(ms);
        }
        // It applies what was committed while it was frozen before it reads on.
        self.apply_due(now, server, false);
        for conn in self.connections(server) {
            let held = match self.conns.get_mut(&conn) {
                Some(c) => std::mem::take(&mut c.held),
                None => continue,
            };
            if let Some(c) = self.conns.get_mut(&conn) {
                c.frames.push(&held);
            }
            self.process_input(now, conn);
        }
    }

    /// Expires a session now, as the leader would once its timeout passed: its ephemeral
    /// nodes go and its connections close.
    pub fn expire_session(&mut self, now: Instant, session: i64) {
        if let Some(s) = self.sessions.sessions.get_mut(&session)
            && !s.closing
        {
            s.closing = true;
            self.expire(now, session);
        }
    }

    /// The server closes this connection now (a reset, or a network cut seen from the
    /// server's side).
    pub fn close_connection(&mut self, _now: Instant, conn: ConnId) {
        self.close(conn);
    }

    /// The next reply on this connection is lost: its request is applied (and its
    /// notifications sent), then the connection breaks instead of answering.
    pub fn lose_next_reply(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.lose_next_reply = true;
        }
    }
}
