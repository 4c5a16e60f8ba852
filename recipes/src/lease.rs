//! Kazoo's `NonBlockingLease` and `MultiNonBlockingLease`, as a sans-IO state machine.
//!
//! A lease at `<path>` is the node `<path>/lease_holder`, holding Kazoo's JSON
//! `{"version": 1, "holder": "<identifier>", "end": "<UTC, %Y-%m-%dT%H:%M:%S>"}`. It is
//! read and written only under Kazoo's `Lock` on `<path>` (this crate's
//! [`crate::lock::Lock`] in Kazoo's layout, the identifier in its node), so a Kazoo client
//! and this machine never both think they took it. Obtaining never waits for the lease:
//! it is taken when it is free, ended, or already held by the same identifier (a renewal),
//! and refused otherwise. The ends are wall-clock times, so the holders' clocks must
//! roughly agree, as Kazoo says.
//!
//! A multi-lease of `count` tries `<path>/0`, `<path>/1`, ... in order and takes the first
//! it can. The holder node is rewritten in one transaction (delete with the version read,
//! create), and a write whose reply was lost is checked by reading the node back. The
//! lock is released after each path, retried until the server confirms it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::ErrorCode;
use zk_proto::consts::CreateMode;
use zk_proto::records::*;
use zk_proto::session::{AppState, Error as SessionError, WatchedEvent};

use crate::io::{Io, again, create, read};
use crate::lock::{self, Flavor};
use crate::{Output as RecipeOutput, Recipe, Tag};

/// The lease's node under its path.
pub const HOLDER: &str = "lease_holder";
/// The storage format Kazoo writes (and the only one it accepts).
pub const FORMAT_VERSION: i64 = 1;

/// What the lease machine tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The lease at this path is ours until the end written there.
    Obtained {
        /// The lease's path (for a multi-lease, the one taken).
        path: String,
    },
    /// Every path is held by another identifier (or written in a format Kazoo's version
    /// does not accept).
    Refused,
    /// An error no retry can fix (no permission, a bad path, a closed session).
    Failed(SessionError),
}

/// Something the lease machine has for its driver.
pub type Output = RecipeOutput<Outcome>;

/// What a lease node says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Kazoo's storage format version.
    pub version: i64,
    /// Who holds the lease.
    pub holder: String,
    /// When it ends, in seconds since the Unix epoch (UTC).
    pub end: i64,
}

impl Holder {
    /// Kazoo's JSON for this holder.
    pub fn encode(&self) -> Bytes {
        let json = serde_json::json!({
            "version": self.version,
            "holder": self.holder,
            "end": format_utc(self.end),
        });
        Bytes::from(json.to_string())
    }

    /// Reads Kazoo's JSON; `None` for anything else.
    pub fn decode(raw: &[u8]) -> Option<Holder> {
        let json: serde_json::Value = serde_json::from_slice(raw).ok()?;
        Some(Holder {
            version: json.get("version")?.as_i64()?,
            holder: json.get("holder")?.as_str()?.to_string(),
            end: parse_utc(json.get("end")?.as_str()?)?,
        })
    }
}

/// Whole seconds of a time since the Unix epoch.
fn unix_seconds(since_epoch: Duration) -> i64 {
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

/// Kazoo's time format for the lease's end (UTC).
const UTC_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// `%Y-%m-%dT%H:%M:%S` in UTC for `secs` since the epoch (proleptic Gregorian); the
/// latest time there is for a `secs` past it.
pub fn format_utc(secs: i64) -> String {
    let at = jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::MAX);
    at.strftime(UTC_FORMAT).to_string()
}

/// The inverse of [`format_utc`]; `None` for anything else.
pub fn parse_utc(s: &str) -> Option<i64> {
    let at = jiff::civil::DateTime::strptime(UTC_FORMAT, s).ok()?;
    let at = at.to_zoned(jiff::tz::TimeZone::UTC).ok()?;
    Some(at.timestamp().as_second())
}

/// What a lease is, before any machine runs it: where, for whom, how many. Driver
/// handles keep one and make a machine of it per attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    path: String,
    identifier: String,
    count: Option<u32>,
}

impl Options {
    /// Kazoo's `NonBlockingLease` at `path` for `identifier`.
    pub fn new(path: &str, identifier: &str) -> Options {
        Options {
            path: path.to_string(),
            identifier: identifier.to_string(),
            count: None,
        }
    }

    /// Kazoo's `MultiNonBlockingLease`: `count` leases under `path`.
    pub fn multi(path: &str, count: u32, identifier: &str) -> Options {
        Options {
            count: Some(count.max(1)),
            ..Options::new(path, identifier)
        }
    }

    /// A machine for one attempt, its lock node named after the unique `id`; a bad path
    /// is refused here.
    pub fn machine(&self, id: &str, acl: Vec<Acl>) -> Result<Lease, SessionError> {
        zk_proto::path::validate_path(&self.path)?;
        Ok(match self.count {
            Some(n) => Lease::multi(&self.path, n, id, &self.identifier, acl),
            None => Lease::new(&self.path, id, &self.identifier, acl),
        })
    }

    /// The lease nodes, in the order they are tried.
    pub fn holder_paths(&self) -> Vec<String> {
        let path = self.path.trim_end_matches('/');
        match self.count {
            Some(n) => (0..n).map(|i| format!("{path}/{i}/{HOLDER}")).collect(),
            None => vec![format!("{path}/{HOLDER}")],
        }
    }
}

/// The live holder in a lease node's data at `wall_now` (the wall clock, as the time
/// since the Unix epoch): `None` when the lease ended or the data is not Kazoo's.
pub fn live_holder(raw: &[u8], wall_now: Duration) -> Option<String> {
    Holder::decode(raw)
        .filter(|h| h.end > unix_seconds(wall_now))
        .map(|h| h.holder)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Taking the lock on the current path.
    Locking,
    /// Holding it: reading and writing the holder node.
    Deciding,
    /// Letting the lock go, then doing what was decided.
    Unlocking(After),
}

/// What follows once the lock of the current path is let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Report the lease obtained.
    Obtained,
    /// Try the next path, or report the lease refused after the last.
    Next,
    /// Decide this path again, under a new lock.
    Again,
    /// Nothing: the attempt failed or was given up.
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Read,
    Write,
}

/// One attempt at a lease (or at the first free one of several).
#[derive(Debug)]
pub struct Lease {
    paths: Vec<String>,
    at: usize,
    id: String,
    identifier: String,
    acl: Vec<Acl>,
    phase: Phase,
    session: i64,
    /// The end we write, in seconds since the epoch (set when obtaining starts).
    end: i64,
    /// The wall-clock now of the attempt, in seconds since the epoch.
    wall: i64,
    lock: Option<lock::Lock>,
    attempt: u64,
    current: Option<Tag>,
    io: Io<Step, Outcome>,
}

/// Lock tags are even, the lease's own odd: one tag space for the driver.
fn lock_tag(t: Tag) -> Tag {
    Tag(t.0 * 2)
}

impl Lease {
    /// Kazoo's `NonBlockingLease` at `path` for `identifier` (reuse it to renew), the lock
    /// node named after the unique `id` (as for [`lock::Lock::new`]).
    pub fn new(path: &str, id: &str, identifier: &str, acl: Vec<Acl>) -> Lease {
        Lease::multi(path, 1, id, identifier, acl).with_paths(vec![path.to_string()])
    }

    /// Kazoo's `MultiNonBlockingLease`: `count` leases at `<path>/0` ... `<path>/<count-1>`.
    pub fn multi(path: &str, count: u32, id: &str, identifier: &str, acl: Vec<Acl>) -> Lease {
        let path = path.trim_end_matches('/');
        Lease {
            paths: (0..count.max(1)).map(|n| format!("{path}/{n}")).collect(),
            at: 0,
            id: id.to_string(),
            identifier: identifier.to_string(),
            acl,
            phase: Phase::Idle,
            session: 0,
            end: 0,
            wall: 0,
            lock: None,
            attempt: 0,
            current: None,
            io: Io::new(),
        }
    }

    fn with_paths(mut self, paths: Vec<String>) -> Lease {
        self.paths = paths
            .into_iter()
            .map(|p| p.trim_end_matches('/').to_string())
            .collect();
        self
    }

    /// The paths tried, in order.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Tries to obtain the lease for `duration` from `wall_now` (the wall clock, as the
    /// time since the Unix epoch: the end written is `wall_now + duration`), on the
    /// session `session_id`. Ignored while an attempt is under way.
    pub fn obtain(
        &mut self,
        now: Instant,
        session_id: i64,
        wall_now: Duration,
        duration: Duration,
    ) {
        if self.phase != Phase::Idle || self.lock.is_some() {
            return;
        }
        self.session = session_id;
        self.wall = unix_seconds(wall_now);
        self.end = unix_seconds(wall_now.saturating_add(duration));
        self.at = 0;
        self.lock_path(now);
    }

    fn holder_path(&self) -> String {
        format!("{}/{HOLDER}", self.paths[self.at])
    }

    fn lock_path(&mut self, now: Instant) {
        self.attempt += 1;
        let id = format!("{}-{}", self.id, self.attempt);
        let mut machine = lock::Lock::new(&self.paths[self.at], &id, self.acl.clone())
            .with_flavor(Flavor::Kazoo)
            .with_data(Bytes::from(self.identifier.clone()));
        machine.acquire(now, self.session, None);
        self.lock = Some(machine);
        self.phase = Phase::Locking;
        self.pump(now);
    }

    /// Moves the lock's outputs to ours, and reacts to its outcomes.
    fn pump(&mut self, now: Instant) {
        while let Some(out) = self.lock.as_mut().and_then(|l| l.poll_output()) {
            match out {
                RecipeOutput::Submit(tag, request) => {
                    self.io
                        .out
                        .push_back(RecipeOutput::Submit(lock_tag(tag), request));
                }
                RecipeOutput::Outcome(o) => self.on_lock(now, o),
            }
        }
        if self.lock.as_ref().is_some_and(|l| l.is_done())
            && matches!(self.phase, Phase::Unlocking { .. } | Phase::Idle)
        {
            self.lock = None;
            if let Phase::Unlocking(after) = self.phase {
                self.unlocked(now, after);
            }
        }
    }

    fn on_lock(&mut self, now: Instant, outcome: lock::Outcome) {
        match (self.phase, outcome) {
            (Phase::Locking, lock::Outcome::Acquired { .. }) => {
                self.phase = Phase::Deciding;
                self.send_read();
            }
            (Phase::Locking | Phase::Deciding, lock::Outcome::Failed(e)) => {
                self.io.emit(Outcome::Failed(e));
                self.phase = Phase::Idle;
                self.current = None;
                if let Some(l) = self.lock.as_mut() {
                    l.release(now);
                }
            }
            // The lock's session ended while deciding: decide again under a new lock.
            (Phase::Deciding, lock::Outcome::Lost) => {
                self.current = None;
                self.phase = Phase::Unlocking(After::Again);
                if let Some(l) = self.lock.as_mut() {
                    l.release(now);
                }
            }
            _ => {}
        }
    }

    fn unlocked(&mut self, now: Instant, after: After) {
        self.phase = Phase::Idle;
        match after {
            After::Obtained => {
                let path = self.paths[self.at].clone();
                self.io.emit(Outcome::Obtained { path });
            }
            After::Next if self.at + 1 < self.paths.len() => {
                self.at += 1;
                self.lock_path(now);
            }
            After::Next => self.io.emit(Outcome::Refused),
            After::Again => self.lock_path(now),
            After::Stop => {}
        }
    }

    fn send_read(&mut self) {
        let request = read(&self.holder_path());
        self.current = Some(self.io.submit_as(Step::Read, request, own_tag));
    }

    fn ours(&self) -> Holder {
        Holder {
            version: FORMAT_VERSION,
            holder: self.identifier.clone(),
            end: self.end,
        }
    }

    fn decide(&mut self, now: Instant, done: Option<bool>) {
        if let Some(obtained) = done {
            self.current = None;
            self.phase = Phase::Unlocking(if obtained {
                After::Obtained
            } else {
                After::Next
            });
            if let Some(l) = self.lock.as_mut() {
                l.release(now);
            }
            self.pump(now);
        }
    }

    fn on_read(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        let ours = self.ours();
        let write = match reply {
            Ok(Response::GetData(r)) => {
                let found = Holder::decode(&r.data);
                match found {
                    // Our own write, read back after a lost reply.
                    Some(h) if h == ours => return self.decide(now, Some(true)),
                    Some(h) if h.version != FORMAT_VERSION => return self.decide(now, Some(false)),
                    Some(h) if h.holder != self.identifier && self.wall < h.end => {
                        return self.decide(now, Some(false));
                    }
                    // Ended, ours to renew, or unreadable (Kazoo would fail on it; the
                    // lock is ours, so it is replaced).
                    _ => Request::Multi(MultiRequest {
                        ops: vec![
                            MultiOp::Delete(DeleteRequest {
                                path: self.holder_path(),
                                version: r.stat.version,
                            }),
                            MultiOp::Create(CreateRequest {
                                path: self.holder_path(),
                                data: ours.encode(),
                                acl: self.acl.clone(),
                                flags: CreateMode::Persistent.as_i32(),
                            }),
                        ],
                    }),
                }
            }
            Ok(_) => {
                return self.fail(
                    now,
                    SessionError::InvalidRequest("unexpected reply to a read"),
                );
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => create(
                &self.holder_path(),
                ours.encode(),
                &self.acl,
                CreateMode::Persistent,
            ),
            Err(e) if again(&e) => return self.send_read(),
            Err(e) => return self.fail(now, e),
        };
        self.current = Some(self.io.submit_as(Step::Write, write, own_tag));
    }

    fn on_write(&mut self, now: Instant, reply: Result<Response, SessionError>) {
        // The code that failed the write: a plain one, or the failing op of the multi (the
        // others report Ok, or RuntimeInconsistency for not having run).
        let code = match &reply {
            Ok(Response::Multi(r)) => r.results.iter().find_map(|x| match x {
                OpResult::Error(c)
                    if !matches!(c, ErrorCode::Ok | ErrorCode::RuntimeInconsistency) =>
                {
                    Some(*c)
                }
                _ => None,
            }),
            Ok(_) => None,
            Err(SessionError::Server(c)) => Some(*c),
            Err(_) => None,
        };
        match (reply, code) {
            (Ok(_), None) => self.decide(now, Some(true)),
            // Changed under us (a writer that does not take the lock): read what is there.
            (_, Some(ErrorCode::BadVersion | ErrorCode::NoNode | ErrorCode::NodeExists)) => {
                self.send_read()
            }
            // Lost: read back whether it landed.
            (Err(e), _) if again(&e) => self.send_read(),
            // Anything else (no permission, a quota) fails the same way every time: give up
            // and let the lock go, rather than write again for ever while holding it.
            (_, Some(c)) => self.fail(now, SessionError::Server(c)),
            (Err(e), None) => self.fail(now, e),
        }
    }

    fn fail(&mut self, now: Instant, e: SessionError) {
        self.io.emit(Outcome::Failed(e));
        self.current = None;
        // Let the lock go; nothing more is tried.
        self.phase = Phase::Unlocking(After::Stop);
        if let Some(l) = self.lock.as_mut() {
            l.release(now);
        }
        self.pump(now);
    }
}

fn own_tag(t: Tag) -> Tag {
    Tag(t.0 * 2 + 1)
}

impl Recipe for Lease {
    type Outcome = Outcome;

    fn poll_output(&mut self) -> Option<Output> {
        self.io.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.lock.as_ref().and_then(|l| l.poll_timeout())
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some(l) = self.lock.as_mut() {
            l.handle_timeout(now);
        }
        self.pump(now);
    }

    fn handle_state(&mut self, now: Instant, state: AppState, session_id: i64) {
        self.session = session_id;
        if let Some(l) = self.lock.as_mut() {
            l.handle_state(now, state, session_id);
        }
        self.pump(now);
    }

    fn handle_reply(&mut self, now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        if tag.0.is_multiple_of(2) {
            if let Some(l) = self.lock.as_mut() {
                l.handle_reply(now, Tag(tag.0 / 2), reply);
            }
            return self.pump(now);
        }
        let Some(step) = self.io.in_flight.remove(&Tag(tag.0 / 2)) else {
            return;
        };
        if self.current != Some(tag) || self.phase != Phase::Deciding {
            return;
        }
        match step {
            Step::Read => self.on_read(now, reply),
            Step::Write => self.on_write(now, reply),
        }
    }

    fn handle_watch(&mut self, now: Instant, tag: Tag, event: &WatchedEvent) {
        if tag.0.is_multiple_of(2) {
            if let Some(l) = self.lock.as_mut() {
                l.handle_watch(now, Tag(tag.0 / 2), event);
            }
            self.pump(now);
        }
    }

    fn release(&mut self, now: Instant) {
        // Stop trying; a write under way lands or not on its own, the lock goes.
        if self.phase != Phase::Idle {
            self.current = None;
            self.phase = Phase::Unlocking(After::Stop);
        }
        if let Some(l) = self.lock.as_mut() {
            l.release(now);
        }
        self.pump(now);
    }

    fn is_done(&self) -> bool {
        self.lock.is_none() && self.io.in_flight.is_empty() && self.phase == Phase::Idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_as_kazoo_writes_them() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(format_utc(1_795_999_999), "2026-11-30T00:53:19");
        for secs in [0, 59, 86_399, 951_782_400, 1_795_999_999, 4_102_444_800] {
            assert_eq!(parse_utc(&format_utc(secs)), Some(secs));
        }
        assert_eq!(parse_utc("2026-13-01T00:00:00"), None);
        assert_eq!(parse_utc("garbage"), None);
    }

    #[test]
    fn holders_are_read_and_written_in_kazoos_json() {
        let raw = br#"{"version": 1, "holder": "host \"a\" \u00e9", "end": "2026-11-26T00:40:02"}"#;
        let h = Holder::decode(raw).unwrap();
        assert_eq!(h.holder, "host \"a\" é");
        assert_eq!(h.version, 1);
        assert_eq!(format_utc(h.end), "2026-11-26T00:40:02");
        assert_eq!(Holder::decode(&h.encode()), Some(h.clone()));
        // Kazoo reads it with json.loads: the same three fields, whatever their order.
        let written: serde_json::Value = serde_json::from_slice(&h.encode()).unwrap();
        assert_eq!(
            written,
            serde_json::json!({"version": 1, "holder": "host \"a\" é", "end": "2026-11-26T00:40:02"})
        );
        assert_eq!(Holder::decode(b"{\"version\": 1}"), None);
        assert_eq!(Holder::decode(b"not json"), None);
    }
}
