//! The connection: connecting, the handshake, reading frames, losing and re-making it.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::core::*;
use super::error::{Disconnect, Error};
use super::event::{Action, Event};
use super::state::{AppState, SessionState};
use crate::codec::{Jute, write_frame};
use crate::consts::xid;
use crate::error::ErrorCode;
use crate::records::{ConnectRequest, ConnectResponse, ReplyHeader};
use crate::watch::SET_WATCHES_MAX_PATH_BYTES;

impl Session {
    /// The TCP connection asked for with [`Action::Connect`] is open.
    pub fn handle_connected(&mut self, _now: Instant) {
        let Conn::Opening { host, deadline } = self.conn else {
            return;
        };
        let resume = self.seen_rw;
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout: duration_ms(self.config.session_timeout),
            session_id: if resume { self.session_id } else { 0 },
            passwd: if resume {
                self.passwd.clone()
            } else {
                Bytes::from_static(&[0; 16])
            },
            read_only: self.config.read_only,
        };
        self.link.frames.clear();
        self.link.out.clear();
        write_frame(&mut self.link.out, |b| req.encode(b));
        self.conn = Conn::Handshake { host, deadline };
    }

    /// The TCP connection asked for with [`Action::Connect`] could not be opened.
    pub fn handle_connect_failed(&mut self, now: Instant, reason: String) {
        if matches!(self.conn, Conn::Opening { .. }) {
            self.lose_connection(now, Disconnect::Io(reason), false);
        }
    }

    /// The connection closed or failed.
    pub fn handle_disconnected(&mut self, now: Instant, reason: String) {
        if !matches!(self.conn, Conn::Idle { .. }) {
            self.lose_connection(now, Disconnect::Io(reason), false);
        }
    }

    /// Bytes arrived on the connection, in any chunking. Every complete frame is processed
    /// before this returns.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if !matches!(self.conn, Conn::Handshake { .. } | Conn::Open { .. }) {
            return;
        }
        self.heard(now);
        self.link.frames.push(data);
        loop {
            match self.link.frames.next_frame() {
                Ok(Some(frame)) => {
                    if let Err(reason) = self.handle_frame(now, frame) {
                        self.lose_connection(now, reason, true);
                        return;
                    }
                    if !matches!(self.conn, Conn::Handshake { .. } | Conn::Open { .. }) {
                        return;
                    }
                }
                Ok(None) => {
                    self.settle_waiting();
                    return;
                }
                Err(e) => {
                    self.lose_connection(now, Disconnect::Frame(e), true);
                    return;
                }
            }
        }
    }

    pub(super) fn heard(&mut self, now: Instant) {
        if let Conn::Open { last_recv, .. } = &mut self.conn {
            *last_recv = now;
            self.last_heard = Some(now);
        }
    }

    /// Once every answer is in, nothing is awaited any more.
    pub(super) fn settle_waiting(&mut self) {
        let outstanding = !self.link.pending.is_empty() || !self.link.auth_in_flight.is_empty();
        if let Conn::Open {
            ping_sent,
            waiting_since,
            ..
        } = &mut self.conn
            && !outstanding
            && ping_sent.is_none()
        {
            *waiting_since = None;
        }
    }

    pub(super) fn connect_next(&mut self, now: Instant) {
        if self.is_over() || self.hosts.is_empty() {
            self.conn = Conn::Idle { retry_at: None };
            return;
        }
        let host = self.next_host % self.hosts.len();
        self.next_host = (host + 1) % self.hosts.len();
        self.connect_to(now, host);
    }

    pub(super) fn connect_to(&mut self, now: Instant, host: usize) {
        self.conn = Conn::Opening {
            host,
            deadline: now + self.connect_timeout(),
        };
        self.actions.push_back(Action::Connect {
            host,
            addr: self.hosts[host].clone(),
        });
    }

    /// Drops the current connection: requests in flight fail with ConnectionLoss, queued ones
    /// wait for the next connection, and the next host is tried (after a pause once every
    /// host failed in a row).
    pub(super) fn lose_connection(&mut self, now: Instant, reason: Disconnect, tell_driver: bool) {
        let was_open = matches!(self.conn, Conn::Open { .. });
        if !was_open && !matches!(self.conn, Conn::Idle { .. }) {
            self.counters.failed_attempts += 1;
        }
        if let Some(host) = self.current_host() {
            if self.host_failures.len() < self.hosts.len() {
                self.host_failures.resize(self.hosts.len(), None);
            }
            // A host that left the list (see update_hosts) has no slot.
            if let Some(slot) = self.host_failures.get_mut(host) {
                *slot = Some(reason.clone());
            }
        }
        self.drop_connection(reason.clone(), tell_driver, Error::ConnectionLoss);
        if self.closing.is_some() {
            self.finish_close(now);
            return;
        }
        if was_open {
            self.failures = 0;
            self.set_state(SessionState::Connecting, Some(reason));
        } else {
            self.failures += 1;
            if std::mem::take(&mut self.planned_move) {
                // The planned move did not reach its server: an ordinary suspension now.
                self.app = AppState::Suspended;
                self.events.push_back(Event::App(AppState::Suspended));
            }
        }
        self.schedule_reconnect(now);
    }

    pub(super) fn schedule_reconnect(&mut self, now: Instant) {
        if self.failures < self.hosts.len() {
            self.connect_next(now);
            return;
        }
        // Every host failed once in a row: pause, longer after each round.
        self.failures = 0;
        let cap = self.config.backoff_max;
        let base = self
            .config
            .backoff_min
            .saturating_mul(1u32 << self.backoff_round.min(16))
            .min(cap);
        self.backoff_round = self.backoff_round.saturating_add(1);
        let half = base / 2;
        let extra = self.rng.below(half.as_micros() as u64 + 1);
        let pause = half + Duration::from_micros(extra);
        self.conn = Conn::Idle {
            retry_at: Some(now + pause),
        };
    }

    /// Ends the current connection, whatever ends it: the driver is told to close it
    /// (unless it reported the loss itself), its buffers are emptied, every request written
    /// to it fails with `error`, and the probe and move that belonged to it are dropped.
    /// What happens next (reconnect, a final state) is the caller's. Nothing to do when no
    /// connection is there.
    pub(super) fn drop_connection(&mut self, reason: Disconnect, tell_driver: bool, error: Error) {
        match self.conn {
            Conn::Idle { .. } => {}
            Conn::Open { .. } => self.counters.disconnects += 1,
            Conn::Opening { .. } | Conn::Handshake { .. } => {}
        }
        if tell_driver && !matches!(self.conn, Conn::Idle { .. }) {
            self.actions.push_back(Action::Disconnect(reason));
        }
        self.conn = Conn::Idle { retry_at: None };
        self.link.frames.clear();
        self.link.out.clear();
        self.link.sasl = None;
        self.probing = None;
        self.moving = None;
        self.fail_in_flight(error);
    }

    /// Fails every request in flight on a dropped connection.
    pub(super) fn fail_in_flight(&mut self, error: Error) {
        self.link.auth_in_flight.clear();
        while let Some(p) = self.link.pending.pop_front() {
            if let Sent::User { id, .. } = p.sent {
                self.complete(id, Err(error.clone()));
            }
        }
    }

    pub(super) fn handle_frame(&mut self, now: Instant, frame: Bytes) -> Result<(), Disconnect> {
        match self.conn {
            Conn::Handshake { host, .. } => {
                // A bare reply header where the ConnectResponse belongs is a refusal.
                if frame.len() == REPLY_HEADER_LEN
                    && let Ok((h, _)) = ReplyHeader::decode(&frame)
                    && h.err != 0
                {
                    return Err(Disconnect::Refused(ErrorCode::from_i32(h.err)));
                }
                let (resp, _) = ConnectResponse::decode(&frame)?;
                self.handshake_done(now, host, resp);
                Ok(())
            }
            Conn::Open { .. } => self.handle_reply(now, frame),
            _ => Ok(()),
        }
    }

    pub(super) fn handshake_done(&mut self, now: Instant, host: usize, resp: ConnectResponse) {
        if resp.timeout <= 0 {
            self.expire(now, Some(Disconnect::SessionExpired));
            return;
        }
        self.session_id = resp.session_id;
        self.passwd = resp.passwd;
        self.set_negotiated(Some(Duration::from_millis(resp.timeout as u64)));
        self.read_only = resp.read_only;
        self.seen_rw |= !resp.read_only;
        self.last_heard = Some(now);
        self.failures = 0;
        self.backoff_round = 0;
        self.host_failures.clear();
        self.counters.connections += 1;
        self.planned_move = false;
        self.conn = Conn::Open {
            host,
            last_recv: now,
            last_send: now,
            ping_jitter: Duration::ZERO,
            ping_sent: None,
            waiting_since: None,
        };
        if let Some(login) = self.config.sasl.clone() {
            let random = self.rng.next_u64();
            let name = self.hosts[host].host.clone();
            let started = login.start(&name, random).and_then(|mut exchange| {
                let token = exchange.initial_response()?;
                Ok((exchange, token))
            });
            match started {
                Ok((exchange, token)) => {
                    self.link.sasl = Some(SaslRun {
                        exchange,
                        host,
                        read_only: resp.read_only,
                    });
                    self.send_sasl(now, token);
                }
                Err(why) => self.sasl_failed(
                    now,
                    format!(
                        "the {} login of `{}` cannot start: {why}",
                        login.mechanism(),
                        login.user()
                    ),
                ),
            }
            return;
        }
        self.connection_ready(now, host, resp.read_only);
    }

    /// The connection carries the session (after the SASL login, if any): report it and send
    /// what waited for it.
    pub(super) fn connection_ready(&mut self, now: Instant, host: usize, read_only: bool) {
        if self.closing.is_some() {
            // Closed while the login ran: only the close goes out.
            self.send_close(now);
            return;
        }
        self.set_state(
            if read_only {
                SessionState::ConnectedReadOnly
            } else {
                SessionState::Connected
            },
            None,
        );
        // Credentials first, then watches, then whatever waited for the connection.
        for i in 0..self.auths.len() {
            self.send_auth(i);
        }
        for req in self
            .watches
            .set_watches(self.last_zxid, SET_WATCHES_MAX_PATH_BYTES)
        {
            req.encode_frame(xid::SET_WATCHES, "", &mut self.link.out);
            self.link.pending.push_back(Pending {
                xid: xid::SET_WATCHES,
                op: req.opcode(),
                sent: Sent::SetWatches,
                at: now,
            });
        }
        if self.config.follow_config {
            self.request_config(now);
        }
        while let Some(q) = self.queued.pop_front() {
            self.write_request(now, q.id, q.request);
        }
        self.sent(now);
        self.probing = read_only.then_some(Probing {
            next_at: now + PROBE_MIN,
            interval: PROBE_MIN,
            in_flight: None,
            next_host: (host + 1) % self.hosts.len(),
        });
    }

    pub(super) fn set_state(&mut self, state: SessionState, reason: Option<Disconnect>) {
        if self.state == state {
            return;
        }
        self.state = state;
        self.events.push_back(Event::State { state, reason });
        if self.planned_move && state == SessionState::Connecting {
            return;
        }
        let app = self.app.after(state);
        if app != self.app {
            self.app = app;
            self.events.push_back(Event::App(app));
        }
    }

    // ----- frames -----
}
