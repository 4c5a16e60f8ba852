//! A snapshot of what a session has done: cheap to take, for dashboards and logs.

use std::time::Duration;

use super::state::SessionState;
use crate::consts::OpCode;
use crate::hosts::HostAddr;

/// What a session has done so far and holds now: a client's `metrics()`, or a bare
/// session's [`Session::metrics`](super::Session::metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionMetrics {
    /// The detailed state.
    pub state: SessionState,
    /// The session id, 0 before the first handshake.
    pub session_id: i64,
    /// The server of the open connection, if one is open.
    pub host: Option<HostAddr>,
    /// Requests sent and waiting for their replies.
    pub in_flight: usize,
    /// Requests waiting for a connection.
    pub queued: usize,
    /// Watch registrations held (each one-shot or persistent watch a caller holds).
    pub watches: usize,
    /// Connections that completed a handshake (the first one and every reconnect).
    pub connections: u64,
    /// Established connections that were lost (each one a reconnect cause).
    pub disconnects: u64,
    /// Connection attempts that failed before a handshake completed.
    pub failed_attempts: u64,
    /// Requests the server answered, with success or an error code.
    pub completed: u64,
    /// The last ping's round trip.
    pub last_rtt: Option<Duration>,
    /// The smoothed ping round trip (7/8 history, 1/8 news).
    pub smoothed_rtt: Option<Duration>,
    /// The longest a request waited for its reply from the moment it was written.
    pub max_latency: Duration,
    /// Requests whose reply took at least the slow-request threshold
    /// ([`Config::with_slow_request`](super::Config::with_slow_request)).
    pub slow_requests: u64,
    /// The last slow request: its operation and how long its reply took.
    pub last_slow: Option<(OpCode, Duration)>,
}

/// The counters a session keeps for [`SessionMetrics`].
#[derive(Debug, Default, Clone)]
pub(crate) struct Counters {
    pub connections: u64,
    pub disconnects: u64,
    pub failed_attempts: u64,
    pub completed: u64,
    pub last_rtt: Option<Duration>,
    pub max_latency: Duration,
    pub slow_requests: u64,
    pub last_slow: Option<(OpCode, Duration)>,
}
