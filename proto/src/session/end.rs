//! How a session ends: a close, an expiry, a refused login.

use std::time::Instant;

use bytes::Bytes;

use super::core::*;
use super::error::{Disconnect, Error};
use super::event::{Event, WatchedEvent};
use super::state::SessionState;
use crate::consts::{EventType, KeeperState, OpCode};
use crate::records::Request;

impl Session {
    /// Closes the session: a closeSession request after everything already submitted, then
    /// [`SessionState::Closed`]. Requests still waiting for a connection fail with
    /// [`Error::Closed`]. Without a connection, or if the server does not answer within the
    /// read timeout, the session is closed locally.
    pub fn close(&mut self, now: Instant) {
        if self.closing.is_some() || self.is_over() {
            return;
        }
        while let Some(q) = self.queued.pop_front() {
            self.complete(q.id, Err(Error::Closed));
        }
        if self.carrying() {
            self.send_close(now);
        } else if matches!(self.conn, Conn::Open { .. }) {
            // The SASL login is under way: the close follows it (or the read timeout ends
            // the session here if it never finishes).
            self.closing = Some(now + self.read_timeout());
        } else {
            self.finish_close(now);
        }
    }

    pub(super) fn send_close(&mut self, now: Instant) {
        let xid = self.take_xid();
        Request::CloseSession.encode_frame(xid, "", &mut self.link.out);
        self.link.pending.push_back(Pending {
            xid,
            op: OpCode::CloseSession,
            sent: Sent::Close,
            at: now,
        });
        self.sent(now);
        self.closing = Some(now + self.read_timeout());
    }

    /// A connection carries the session and may take requests: open, and past its SASL
    /// login if there is one.
    pub(super) fn carrying(&self) -> bool {
        matches!(self.conn, Conn::Open { .. }) && self.link.sasl.is_none()
    }

    pub(super) fn finish_close(&mut self, now: Instant) {
        self.closing = None;
        self.drop_connection(Disconnect::Closed, true, Error::Closed);
        self.end_session(
            now,
            SessionState::Closed,
            KeeperState::Closed,
            Error::Closed,
            None,
        );
    }

    // ----- connections -----

    /// The session is gone (the server said so, or it cannot have survived this long).
    pub(super) fn expire(&mut self, now: Instant, reason: Option<Disconnect>) {
        self.closing = None;
        self.drop_connection(Disconnect::SessionExpired, true, Error::SessionExpired);
        self.end_session(
            now,
            SessionState::Expired,
            KeeperState::Expired,
            Error::SessionExpired,
            reason,
        );
        if self.config.renew_expired {
            // A fresh session; credentials carry over, watches and requests did not.
            self.session_id = 0;
            self.passwd = Bytes::from_static(&[0; 16]);
            self.set_negotiated(None);
            self.seen_rw = false;
            self.last_heard = None;
            self.failures = 0;
            self.set_state(SessionState::Connecting, None);
            self.connect_next(now);
        }
    }

    /// Moves to a final state: queued requests fail, every watch gets one final event and is
    /// removed.
    pub(super) fn end_session(
        &mut self,
        _now: Instant,
        state: SessionState,
        keeper: KeeperState,
        error: Error,
        reason: Option<Disconnect>,
    ) {
        while let Some(q) = self.queued.pop_front() {
            self.complete(q.id, Err(error.clone()));
        }
        for a in &mut self.auths {
            if let Some(id) = a.waiter.take() {
                self.events.push_back(Event::Complete {
                    id,
                    result: Err(error.clone()),
                    watch: None,
                });
            }
        }
        for (id, path) in self.watches.drain() {
            let path = self.client_path(&path).unwrap_or(path);
            self.events.push_back(Event::Watch(WatchedEvent {
                watch: id,
                kind: EventType::None,
                state: keeper,
                path,
            }));
        }
        self.probing = None;
        self.set_state(state, reason);
    }

    // ----- read-only mode -----
}
