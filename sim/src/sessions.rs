//! Sessions as the leader tracks them (`SessionTrackerImpl`): ids, passwords, timeouts and
//! expiry on tick boundaries (`ExpiryQueue`).

use std::collections::{BTreeMap, BTreeSet};

use crate::java::JavaRandom;

/// `ZooKeeperServer.superSecret`, mixed into every session password.
const SUPER_SECRET: i64 = 0xB341_5C00;

/// The password the server gives session `id` (`generatePasswd`).
pub fn password(id: i64) -> [u8; 16] {
    let mut p = [0u8; 16];
    JavaRandom::new(id ^ SUPER_SECRET).next_bytes(&mut p);
    p
}

/// The first session id a server hands out (`initializeNextSessionId`).
pub(crate) fn first_session_id(elapsed_ms: u64, server_id: u64) -> i64 {
    let next = (((elapsed_ms as i64) << 24) as u64 >> 8) as i64 | ((server_id as i64) << 56);
    if next == i64::MIN { next + 1 } else { next }
}

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub timeout_ms: u64,
    /// The expiry bucket (elapsed ms) the session is in.
    pub expires_at: u64,
    pub closing: bool,
    /// The server whose connection carries the session last.
    pub server: usize,
    /// A read-only server's local session: it lives and dies with that server.
    pub local: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Tracker {
    pub sessions: BTreeMap<i64, Session>,
    buckets: BTreeMap<u64, BTreeSet<i64>>,
    tick_ms: u64,
}

impl Tracker {
    pub(crate) fn new(tick_ms: u64) -> Tracker {
        Tracker {
            tick_ms,
            ..Tracker::default()
        }
    }

    fn round(&self, t: u64) -> u64 {
        (t / self.tick_ms + 1) * self.tick_ms
    }

    pub(crate) fn add(&mut self, id: i64, timeout_ms: u64, server: usize, local: bool, now: u64) {
        let expires_at = self.round(now + timeout_ms);
        self.buckets.entry(expires_at).or_default().insert(id);
        self.sessions.insert(
            id,
            Session {
                timeout_ms,
                expires_at,
                closing: false,
                server,
                local,
            },
        );
    }

    /// `touchSession`: moves the session to a later bucket. False if unknown or closing.
    pub(crate) fn touch(&mut self, id: i64, timeout_ms: u64, now: u64) -> bool {
        let at = self.round(now + timeout_ms);
        let Some(s) = self.sessions.get_mut(&id) else {
            return false;
        };
        if s.closing {
            return false;
        }
        s.timeout_ms = timeout_ms;
        if s.expires_at != at {
            if let Some(b) = self.buckets.get_mut(&s.expires_at) {
                b.remove(&id);
            }
            s.expires_at = at;
            self.buckets.entry(at).or_default().insert(id);
        }
        true
    }

    pub(crate) fn remove(&mut self, id: i64) -> Option<Session> {
        let s = self.sessions.remove(&id)?;
        if let Some(b) = self.buckets.get_mut(&s.expires_at) {
            b.remove(&id);
        }
        Some(s)
    }

    /// The next bucket with a session in it.
    pub(crate) fn next_expiry(&self) -> Option<u64> {
        self.buckets
            .iter()
            .find(|(_, ids)| !ids.is_empty())
            .map(|(t, _)| *t)
    }

    /// Sessions whose bucket is due at `now`, marked closing, in id order.
    pub(crate) fn expire_due(&mut self, now: u64) -> Vec<i64> {
        let mut due = Vec::new();
        while let Some((&t, _)) = self.buckets.iter().next() {
            if t > now {
                break;
            }
            let ids = self.buckets.remove(&t).unwrap_or_default();
            for id in ids {
                if let Some(s) = self.sessions.get_mut(&id)
                    && !s.closing
                {
                    s.closing = true;
                    due.push(id);
                }
            }
        }
        due
    }

    /// A new leader tracks every session afresh: a full timeout from `now`.
    pub(crate) fn restart_all(&mut self, now: u64) {
        self.buckets.clear();
        let ids: Vec<(i64, u64)> = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.closing)
            .map(|(id, s)| (*id, s.timeout_ms))
            .collect();
        for (id, timeout) in ids {
            let at = self.round(now + timeout);
            if let Some(s) = self.sessions.get_mut(&id) {
                s.expires_at = at;
            }
            self.buckets.entry(at).or_default().insert(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_the_servers() {
        // A session id and password from the capture in proto/tests/golden/frames.txt.
        assert_eq!(
            password(0x0100_005c_d604_0000),
            *b"\x3e\xc7\x12\x99\xf3\xba\xbd\x49\x4c\xb7\xc3\x95\xf4\x9b\xb5\x12"
        );
    }

    #[test]
    fn expiry_runs_on_tick_boundaries() {
        let mut t = Tracker::new(200);
        t.add(1, 400, 0, false, 1_050);
        // 1050 + 400 = 1450, rounded up to the next tick: 1600.
        assert_eq!(t.next_expiry(), Some(1_600));
        assert!(t.expire_due(1_599).is_empty());
        assert_eq!(t.expire_due(1_600), vec![1]);
        assert!(!t.touch(1, 400, 1_600));
    }

    #[test]
    fn session_ids_carry_the_server_id() {
        let id = first_session_id(1_000_000, 3);
        assert_eq!(id >> 56, 3);
        assert_eq!(first_session_id(1_000_000, 0) >> 56, 0);
    }
}
