//! What a session is configured with.

use std::time::Duration;

use crate::codec::{DEFAULT_MAX_FRAME, DEFAULT_MAX_REQUEST};
use crate::hosts::{HostError, HostList};

/// Session settings. Build one from a connect string and adjust with the `with_*` methods.
///
/// ```
/// use std::time::Duration;
/// # use zk_proto::session::Config;
///
/// let config = Config::new("zk1:2181,zk2:2181/app")
///     .unwrap()
///     .with_session_timeout(Duration::from_secs(10))
///     .with_read_only(true)
///     .with_seed(42);
/// assert_eq!(config.hosts().chroot(), "/app");
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) hosts: HostList,
    pub(crate) session_timeout: Duration,
    pub(crate) read_only: bool,
    pub(crate) seed: Option<u64>,
    pub(crate) shuffle: bool,
    pub(crate) max_frame: usize,
    pub(crate) max_request: usize,
    pub(crate) queue_limit: usize,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) renew_expired: bool,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) slow_request: Duration,
    pub(crate) follow_config: bool,
    pub(crate) sasl: Option<crate::sasl::SaslLogin>,
}

impl Config {
    /// A configuration for the servers and chroot of `connect`
    /// (`"h1:2181,h2,[::1]:2182/chroot"`), with the defaults listed on each `with_*` method.
    pub fn new(connect: &str) -> Result<Config, HostError> {
        Ok(Config::from_hosts(HostList::parse(connect)?))
    }

    /// A configuration for an already parsed host list.
    pub fn from_hosts(hosts: HostList) -> Config {
        Config {
            hosts,
            session_timeout: Duration::from_secs(10),
            read_only: false,
            seed: None,
            shuffle: true,
            max_frame: DEFAULT_MAX_FRAME,
            max_request: DEFAULT_MAX_REQUEST,
            queue_limit: 10_000,
            request_timeout: None,
            renew_expired: true,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            slow_request: Duration::from_secs(1),
            follow_config: false,
            sasl: None,
        }
    }

    /// Logs in by SASL on every connection (default: no SASL): right after the handshake,
    /// before credentials, watches or any queued request are sent, the session runs the
    /// exchange and reports itself connected only once the server accepted it. A refused
    /// login ends the session in `AuthFailed`, with the reason, and fails what waited with
    /// [`Error::AuthFailed`](super::Error::AuthFailed); it is never retried on another
    /// connection.
    pub fn with_sasl(mut self, login: crate::sasl::SaslLogin) -> Self {
        self.sasl = Some(login);
        self
    }

    /// The requested session timeout (default 10 s). The server clamps it to its own bounds
    /// (by default 2 to 20 ticks) and the negotiated value drives every timer.
    pub fn with_session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// Accept read-only servers cut off from their quorum (default false). While connected
    /// to one, the session looks for a read-write server and moves when it finds one.
    pub fn with_read_only(mut self, allowed: bool) -> Self {
        self.read_only = allowed;
        self
    }

    /// The seed of every random choice: host order, ping jitter, backoff. Tests pass a fixed
    /// one to replay runs exactly. Without one, the drivers draw a seed from the operating
    /// system; a bare [`Session`](super::Session) takes 0.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The seed given with [`Config::with_seed`], if any.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// Shuffle the hosts (with the seed) before the first connection (default true), so
    /// clients spread over the ensemble as the reference client does.
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// The largest frame accepted from a server (default [`DEFAULT_MAX_FRAME`], the server's
    /// default `jute.maxbuffer` plus room for reply overhead).
    pub fn with_max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// The largest request frame sent (default [`DEFAULT_MAX_REQUEST`], the server's default
    /// `jute.maxbuffer`); larger requests fail with [`super::Error::TooLarge`] unsent. Raise
    /// both limits together with the servers' `jute.maxbuffer`.
    pub fn with_max_request(mut self, bytes: usize) -> Self {
        self.max_request = bytes;
        self
    }

    /// How many requests may wait for a connection (default 10 000). Beyond it `submit`
    /// fails with [`super::Error::QueueFull`] instead of growing memory without bound.
    pub fn with_queue_limit(mut self, limit: usize) -> Self {
        self.queue_limit = limit;
        self
    }

    /// How long a request may wait for a connection before it fails with
    /// [`super::Error::Timeout`]. The default, `None`, is the session timeout: once no server
    /// could be reached for that long, the session is as good as expired. Requests already
    /// sent are not timed out here; they complete when the reply arrives or the connection
    /// drops.
    pub fn with_request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long a reply may take before the request counts as slow in
    /// [`SessionMetrics`](super::SessionMetrics) (default 1 s; drivers log each slow request
    /// as a warning).
    pub fn with_slow_request(mut self, threshold: Duration) -> Self {
        self.slow_request = threshold;
        self
    }

    /// Follow the ensemble's membership (default false): after every connect the session
    /// reads `/zookeeper/config` with a watch, and each new version replaces the host list
    /// with the members' client addresses, spreading sessions over the new list
    /// ([`Session::update_hosts`](super::Session::update_hosts)). The members must name
    /// their client address in the configuration (`server.N=host:2888:3888;2181`) and the
    /// addresses must be reachable from the client as written; leave this off when clients
    /// reach the servers through other names (NAT, proxies, containers).
    pub fn with_follow_config(mut self, follow: bool) -> Self {
        self.follow_config = follow;
        self
    }

    /// Start a new session by itself after the old one expired (default true, as Kazoo
    /// does). When false, an expired session stays expired and every call fails.
    pub fn with_renew_expired(mut self, renew: bool) -> Self {
        self.renew_expired = renew;
        self
    }

    /// The pause after every host in the list failed once: it starts at `min` and doubles
    /// with each failed round up to `max`, each pause drawn between half and all of it
    /// (defaults 50 ms and 1 s; the reference client waits up to 1 s).
    pub fn with_reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// The servers and chroot.
    pub fn hosts(&self) -> &HostList {
        &self.hosts
    }

    /// The requested session timeout.
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }
}
