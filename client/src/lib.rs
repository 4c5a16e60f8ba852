//! The client layer every ZooKeeper driver shares: each operation defined once (request
//! construction, reply decoding, error mapping), the options a client is built from, and
//! the one error type a client's calls return. Pure data over [`zk_proto`]'s session: no IO,
//! no clock, no runtime, so the async client, the blocking client, a custom `mio` loop and
//! the recipes all use the same definitions.
//!
//! Errors are flat: a caller matches `Error::SessionExpired` or `Error::Server(NoNode)`
//! directly, whatever layer noticed it.

use std::time::Duration;

use bytes::Bytes;

use zk_proto::consts::CreateMode;
use zk_proto::error::ErrorCode;
use zk_proto::path::PathError;
use zk_proto::records::*;
use zk_proto::retry::RetryPolicy;
use zk_proto::session::{self, Config, HostError, Session};

pub mod op;
pub mod plan;
#[cfg(feature = "tls")]
pub mod tls;

pub use op::{Op, Reply};

/// A random number, from the standard library's randomly keyed hasher (its keys are drawn
/// once per thread and stepped for every hasher): a client's seed.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// A fresh 128-bit id in 32 hex digits, for a recipe to find its own nodes again after a
/// lost reply.
pub fn unique_id() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

#[doc(hidden)]
pub use bytes as __bytes;
#[doc(hidden)]
pub use zk_proto as __proto;

/// Why a client call failed: one flat list, whichever layer noticed it.
///
/// The variants the session reports read exactly as [`session::Error`] words them (and
/// [`Error::to_session`] gives that error back); the rest are the client's own.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An error code from the server: `NoNode`, `NodeExists`, `BadVersion`, `NoAuth`, ...
    Server(ErrorCode),
    /// Lost with the connection; applied or not, nobody knows. Retry if idempotent.
    ConnectionLoss,
    /// The session is gone, with its ephemeral nodes and watches.
    SessionExpired,
    /// The application closed the client.
    Closed,
    /// The credentials were refused; the session is over.
    AuthFailed,
    /// Never sent: no connection came within the request timeout.
    Timeout(Duration),
    /// Refused: this many requests already wait for a connection.
    QueueFull(usize),
    /// A path the server would refuse (the reason inside).
    InvalidPath(PathError),
    /// Encodes to more bytes than `jute.maxbuffer` lets a server take.
    TooLarge {
        /// The frame size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A request only the session itself may send (pings, auth, watch re-registration).
    InvalidRequest(&'static str),
    /// A transaction was rolled back because one of its operations failed.
    Transaction {
        /// The failing operation (0-based).
        index: usize,
        /// Its error.
        code: ErrorCode,
        /// Every operation's result (the others read `Ok` or `RuntimeInconsistency`).
        results: Vec<OpResult>,
    },
    /// The connect string could not be parsed.
    Hosts(HostError),
    /// No session could be established in time.
    ConnectTimeout {
        /// How long the caller waited.
        waited: Duration,
        /// Why the last attempt on each host failed (host, cause), where one did.
        failures: Vec<(String, String)>,
    },
    /// A call got no answer within its call timeout. The request may still complete later.
    CallTimeout(Duration),
    /// The server's reply does not fit the request (a server bug or a protocol mismatch).
    UnexpectedResponse,
    /// The client could not start (a thread or poller could not be created).
    Start(String),
    /// TLS settings that cannot be used (the reason inside): a PEM without certificates, a
    /// key that does not fit its certificate, a name no certificate can carry.
    Tls(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(e) = self.to_session() {
            return e.fmt(f);
        }
        match self {
            Error::Transaction { index, code, .. } => write!(
                f,
                "the transaction failed at operation {index}: {code}; nothing was applied"
            ),
            Error::Hosts(e) => e.fmt(f),
            Error::ConnectTimeout { waited, failures } => write!(
                f,
                "no ZooKeeper server gave a session within {waited:?}{}; check the connect \
                 string and that the servers are up",
                describe_failures(failures)
            ),
            Error::CallTimeout(d) => {
                write!(
                    f,
                    "no answer within {d:?}; the request may still be applied"
                )
            }
            Error::UnexpectedResponse => {
                f.write_str("the server's reply does not match the request")
            }
            Error::Start(why) => write!(f, "the client could not start: {why}"),
            Error::Tls(why) => write!(f, "unusable TLS settings: {why}"),
            // Every other variant has a session form, written above.
            _ => f.write_str("unknown client error"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::InvalidPath(e) => e.source(),
            Error::Hosts(e) => e.source(),
            _ => None,
        }
    }
}

impl From<PathError> for Error {
    fn from(e: PathError) -> Error {
        Error::InvalidPath(e)
    }
}

impl From<HostError> for Error {
    fn from(e: HostError) -> Error {
        Error::Hosts(e)
    }
}

impl From<session::Error> for Error {
    fn from(e: session::Error) -> Error {
        match e {
            session::Error::Server(code) => Error::Server(code),
            session::Error::ConnectionLoss => Error::ConnectionLoss,
            session::Error::SessionExpired => Error::SessionExpired,
            session::Error::Closed => Error::Closed,
            session::Error::AuthFailed => Error::AuthFailed,
            session::Error::Timeout(d) => Error::Timeout(d),
            session::Error::QueueFull(n) => Error::QueueFull(n),
            session::Error::InvalidPath(p) => Error::InvalidPath(p),
            session::Error::TooLarge { size, max } => Error::TooLarge { size, max },
            session::Error::InvalidRequest(why) => Error::InvalidRequest(why),
            // The session's error is non-exhaustive: a kind added there reads as its code.
            other => Error::Server(other.code()),
        }
    }
}

impl Error {
    /// The ZooKeeper error code, as other clients would report it.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server(code) => Some(*code),
            Error::ConnectionLoss | Error::ConnectTimeout { .. } => Some(ErrorCode::ConnectionLoss),
            Error::SessionExpired | Error::Closed => Some(ErrorCode::SessionExpired),
            Error::AuthFailed => Some(ErrorCode::AuthFailed),
            Error::Timeout(_) | Error::CallTimeout(_) => Some(ErrorCode::OperationTimeout),
            Error::QueueFull(_)
            | Error::InvalidPath(_)
            | Error::TooLarge { .. }
            | Error::InvalidRequest(_) => Some(ErrorCode::BadArguments),
            Error::Transaction { code, .. } => Some(*code),
            Error::Hosts(_) | Error::UnexpectedResponse | Error::Start(_) | Error::Tls(_) => None,
        }
    }

    /// Worth retrying: the connection dropped or no server was reachable in time.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLoss
                | Error::Timeout(_)
                | Error::ConnectTimeout { .. }
                | Error::CallTimeout(_)
                | Error::Server(ErrorCode::ConnectionLoss | ErrorCode::OperationTimeout)
        )
    }

    /// Shorthand for `code() == Some(code)`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code() == Some(code)
    }

    /// The session-layer error this one is, for the errors a request can get from the
    /// session (what [`zk_proto::retry::RetryPolicy`] judges); `None` for the client's own
    /// (transactions, connect and call timeouts, bad hosts, start failures).
    pub fn to_session(&self) -> Option<session::Error> {
        Some(match self {
            Error::Server(code) => session::Error::Server(*code),
            Error::ConnectionLoss => session::Error::ConnectionLoss,
            Error::SessionExpired => session::Error::SessionExpired,
            Error::Closed => session::Error::Closed,
            Error::AuthFailed => session::Error::AuthFailed,
            Error::Timeout(d) => session::Error::Timeout(*d),
            Error::QueueFull(n) => session::Error::QueueFull(*n),
            Error::InvalidPath(p) => session::Error::InvalidPath(p.clone()),
            Error::TooLarge { size, max } => session::Error::TooLarge {
                size: *size,
                max: *max,
            },
            Error::InvalidRequest(why) => session::Error::InvalidRequest(why),
            Error::Transaction { .. }
            | Error::Hosts(_)
            | Error::ConnectTimeout { .. }
            | Error::CallTimeout(_)
            | Error::UnexpectedResponse
            | Error::Start(_)
            | Error::Tls(_) => return None,
        })
    }

    /// The server's error code, when the server answered with one.
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server(code) => Some(*code),
            _ => None,
        }
    }
}

fn describe_failures(failures: &[(String, String)]) -> String {
    failures
        .iter()
        .map(|(host, why)| format!("; {host}: {why}"))
        .collect()
}

impl Error {
    /// A connect timeout after `waited`, with the last failure on each host the session
    /// tried.
    pub fn connect_timeout(waited: Duration, session: &Session) -> Error {
        Error::ConnectTimeout {
            waited,
            failures: session
                .host_failures()
                .into_iter()
                .map(|(h, why)| (h.to_string(), why.to_string()))
                .collect(),
        }
    }
}

/// The result type of client operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a client is configured with; drivers' builders fill it in and start a session from
/// it.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The connect string.
    pub hosts: String,
    /// A chroot appended to the connect string's (if any).
    pub chroot: Option<String>,
    /// The session timeout to ask for.
    pub session_timeout: Duration,
    /// How long connecting may take before the caller gives up (default: the session
    /// timeout).
    pub connect_timeout: Option<Duration>,
    /// Accept read-only servers.
    pub read_only: bool,
    /// The ACL of nodes created without one.
    pub default_acl: Vec<Acl>,
    /// Credentials added before any request.
    pub auth: Vec<(String, Bytes)>,
    /// The reconnect pause range, if not the default.
    pub backoff: Option<(Duration, Duration)>,
    /// The seed of every random choice; `None` lets the driver pick a random one.
    pub seed: Option<u64>,
    /// Shuffle the hosts.
    pub shuffle: bool,
    /// How many requests may wait for a connection.
    pub queue_limit: Option<usize>,
    /// How long a request may wait for a connection.
    pub request_timeout: Option<Duration>,
    /// Start a new session after expiry.
    pub renew_expired: bool,
    /// The policy of the client's `retry`.
    pub retry: RetryPolicy,
    /// How long a call waits for its answer before failing with [`Error::CallTimeout`];
    /// `None` for the driver's default.
    pub call_timeout: Option<Duration>,
    /// The slow-request threshold, if not the default.
    pub slow_request: Option<Duration>,
    /// Follow the ensemble's membership in `/zookeeper/config`.
    pub follow_config: bool,
    /// The SASL login every connection runs, if any.
    pub sasl: Option<zk_proto::sasl::SaslLogin>,
    /// Speak TLS to every server; `None` for plain TCP.
    #[cfg(feature = "tls")]
    pub tls: Option<tls::TlsOptions>,
}

/// Writes the setters a driver's client builder shares, for a builder struct with a field
/// `options: ClientOptions`. Used by the drivers so their builders cannot drift apart.
#[doc(hidden)]
#[macro_export]
macro_rules! client_option_setters {
    () => {
        /// The session timeout to ask for (default 10 s; the server clamps it to its bounds).
        pub fn session_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.options.session_timeout = timeout;
            self
        }

        /// How long connecting waits for the first session (default: the session timeout).
        pub fn connect_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.options.connect_timeout = Some(timeout);
            self
        }

        /// Accept read-only servers (default false).
        pub fn read_only(mut self, allowed: bool) -> Self {
            self.options.read_only = allowed;
            self
        }

        /// A chroot for every path, nested under the connect string's chroot if it has one.
        pub fn chroot(mut self, chroot: &str) -> Self {
            self.options.chroot = Some(chroot.to_string());
            self
        }

        /// The ACL of nodes created without one (default: open to everyone).
        pub fn default_acl(mut self, acl: Vec<$crate::__proto::records::Acl>) -> Self {
            self.options.default_acl = acl;
            self
        }

        /// Credentials sent on every connection before any request (`digest`,
        /// `user:password`).
        pub fn auth(
            mut self,
            scheme: &str,
            credentials: impl Into<$crate::__bytes::Bytes>,
        ) -> Self {
            self.options
                .auth
                .push((scheme.to_string(), credentials.into()));
            self
        }

        /// The pause between rounds of failed connection attempts: from `min`, doubling, up
        /// to `max` (defaults 50 ms and 1 s).
        pub fn reconnect_backoff(
            mut self,
            min: ::std::time::Duration,
            max: ::std::time::Duration,
        ) -> Self {
            self.options.backoff = Some((min, max));
            self
        }

        /// The seed of host shuffling and jitter (default: random per client).
        pub fn seed(mut self, seed: u64) -> Self {
            self.options.seed = Some(seed);
            self
        }

        /// Shuffle the hosts before connecting (default true, to spread clients over the
        /// ensemble); false tries them in the order written.
        pub fn shuffle_hosts(mut self, shuffle: bool) -> Self {
            self.options.shuffle = shuffle;
            self
        }

        /// How many requests may wait for a connection (default 10 000).
        pub fn queue_limit(mut self, limit: usize) -> Self {
            self.options.queue_limit = Some(limit);
            self
        }

        /// How long a request may wait for a connection (default: the session timeout).
        pub fn request_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.options.request_timeout = Some(timeout);
            self
        }

        /// How long a reply may take before the request is logged as slow (a `tracing`
        /// warning) and counted in the metrics (default 1 s).
        pub fn slow_request(mut self, threshold: ::std::time::Duration) -> Self {
            self.options.slow_request = Some(threshold);
            self
        }

        /// Follow the ensemble's membership (default false): after a reconfiguration the
        /// host list becomes the members' client addresses and sessions spread over them
        /// (see `zk_proto::session::Config::with_follow_config` for when to leave it off).
        pub fn follow_config(mut self, follow: bool) -> Self {
            self.options.follow_config = follow;
            self
        }

        /// Start a new session by itself when the old one expired (default true).
        pub fn renew_expired(mut self, renew: bool) -> Self {
            self.options.renew_expired = renew;
            self
        }

        /// How long each call waits for its answer before it fails with a call timeout (the
        /// request may still be applied; the async client waits as long as it takes by
        /// default, the blocking client twice the session timeout).
        pub fn call_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.options.call_timeout = Some(timeout);
            self
        }

        /// The policy of the client's `retry` (default [`RetryPolicy::default`]).
        ///
        /// [`RetryPolicy::default`]: $crate::__proto::retry::RetryPolicy::default
        pub fn retry_policy(mut self, policy: $crate::__proto::retry::RetryPolicy) -> Self {
            self.options.retry = policy;
            self
        }

        /// Logs in by SASL DIGEST-MD5 as `user` on every connection, right after the handshake
        /// and before anything else is sent (the server's JAAS `Server` section must use
        /// `DigestLoginModule` and name the user). The client is connected only once the
        /// server accepted the login; a refused login ends the session with an auth failure,
        /// never retried. The session's identity becomes `sasl:<user>`.
        pub fn sasl_digest(mut self, user: &str, password: &str) -> Self {
            self.options.sasl = Some($crate::__proto::sasl::SaslLogin::digest_md5(user, password));
            self
        }

        /// Logs in by SASL with `login` on every connection (see `sasl_digest`).
        pub fn sasl(mut self, login: $crate::__proto::sasl::SaslLogin) -> Self {
            self.options.sasl = Some(login);
            self
        }

        /// Speaks TLS to every server of the connect string, which must name their
        /// `secureClientPort`s: each connection and read-only probe does a handshake first,
        /// checking the server's certificate against the given roots and the host's name.
        /// A failed handshake counts as a failed connection attempt, with its cause in words
        /// in the connect timeout's error. Needs the driver's `tls` feature.
        #[cfg(feature = "tls")]
        pub fn tls(mut self, tls: $crate::tls::TlsOptions) -> Self {
            self.options.tls = Some(tls);
            self
        }
    };
}

/// Writes the builder methods of a driver's transaction type, for a struct with fields
/// `ops: MultiBuilder` and `default_acl` (a slice of the client's default ACL), so both
/// clients' transactions read alike.
#[doc(hidden)]
#[macro_export]
macro_rules! transaction_builder_methods {
    () => {
        /// Creates a node.
        pub fn create(
            mut self,
            path: &str,
            data: impl Into<$crate::__bytes::Bytes>,
            options: &$crate::CreateOptions,
        ) -> Self {
            self.ops
                .create(path, data.into(), options, &self.default_acl);
            self
        }

        /// Deletes a node, if its version matches (`None`: any version).
        pub fn delete(mut self, path: &str, version: Option<i32>) -> Self {
            self.ops.delete(path, version);
            self
        }

        /// Writes a node's data, if its version matches (`None`: any version).
        pub fn set_data(
            mut self,
            path: &str,
            data: impl Into<$crate::__bytes::Bytes>,
            version: Option<i32>,
        ) -> Self {
            self.ops.set_data(path, data.into(), version);
            self
        }

        /// Requires a node to be at `version`.
        pub fn check(mut self, path: &str, version: i32) -> Self {
            self.ops.check(path, version);
            self
        }
    };
}

impl ClientOptions {
    /// Defaults for `hosts`: 10 s sessions, open ACL, shuffled hosts, renewal after expiry.
    pub fn new(hosts: &str) -> Self {
        ClientOptions {
            hosts: hosts.to_string(),
            chroot: None,
            session_timeout: Duration::from_secs(10),
            connect_timeout: None,
            read_only: false,
            default_acl: Acl::open_unsafe(),
            auth: Vec::new(),
            backoff: None,
            seed: None,
            shuffle: true,
            queue_limit: None,
            request_timeout: None,
            renew_expired: true,
            retry: RetryPolicy::default(),
            call_timeout: None,
            slow_request: None,
            follow_config: false,
            sasl: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// How long to wait for the first connection.
    pub fn connect_wait(&self) -> Duration {
        self.connect_timeout.unwrap_or(self.session_timeout)
    }

    /// The session configuration, with `random_seed` when no seed was set.
    pub fn config(&self, random_seed: u64) -> Result<Config> {
        let mut connect = self.hosts.clone();
        if let Some(chroot) = &self.chroot {
            // Nested under a chroot already in the connect string, if any.
            connect.push_str(chroot.trim_end_matches('/'));
        }
        let mut config = Config::new(&connect)?
            .with_session_timeout(self.session_timeout)
            .with_read_only(self.read_only)
            .with_seed(self.seed.unwrap_or(random_seed))
            .with_shuffle(self.shuffle)
            .with_renew_expired(self.renew_expired)
            .with_request_timeout(self.request_timeout)
            .with_follow_config(self.follow_config);
        if let Some((min, max)) = self.backoff {
            config = config.with_reconnect_backoff(min, max);
        }
        if let Some(limit) = self.queue_limit {
            config = config.with_queue_limit(limit);
        }
        if let Some(threshold) = self.slow_request {
            config = config.with_slow_request(threshold);
        }
        if let Some(login) = &self.sasl {
            config = config.with_sasl(login.clone());
        }
        Ok(config)
    }

    /// A new session with the credentials already added.
    pub fn session(&self, now: std::time::Instant, random_seed: u64) -> Result<Session> {
        let mut session = Session::new(self.config(random_seed)?, now);
        for (scheme, creds) in &self.auth {
            session.add_auth(now, scheme, creds.clone())?;
        }
        Ok(session)
    }
}

/// A change of the ensemble's membership, for `reconfig`: incremental (servers join and
/// leave) or a whole new membership.
///
/// ```
/// use zk_client::Reconfig;
/// // Server 3 leaves, server 4 joins (quorum port, election port, role; client port).
/// let change = Reconfig::incremental()
///     .leave(3)
///     .join("server.4=10.0.0.4:2888:3888:participant;2181")
///     .if_version(0x1_0000_0000);
/// let whole = Reconfig::members([
///     "server.1=10.0.0.1:2888:3888;2181",
///     "server.2=10.0.0.2:2888:3888;2181",
/// ]);
/// let r = change.request();
/// assert_eq!(r.leaving_servers.as_deref(), Some("3"));
/// assert_eq!(r.new_members, None);
/// assert_eq!(r.cur_config_id, 0x1_0000_0000);
/// let r = whole.request();
/// assert_eq!((r.joining_servers, r.leaving_servers, r.cur_config_id), (None, None, -1));
/// assert_eq!(r.new_members.unwrap().split(',').count(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reconfig {
    joining: Vec<String>,
    leaving: Vec<u64>,
    members: Option<Vec<String>>,
    from_version: Option<i64>,
}

impl Reconfig {
    /// An incremental change; servers join with [`Reconfig::join`] and leave with
    /// [`Reconfig::leave`].
    pub fn incremental() -> Self {
        Self::default()
    }

    /// A whole new membership: one `server.N=...` line per member.
    pub fn members(lines: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Reconfig {
            members: Some(lines.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }

    /// A server joins (`server.N=host:quorumPort:electionPort[:role];[clientHost:]clientPort`).
    pub fn join(mut self, server: impl Into<String>) -> Self {
        self.joining.push(server.into());
        self
    }

    /// The server with this id leaves.
    pub fn leave(mut self, id: u64) -> Self {
        self.leaving.push(id);
        self
    }

    /// Apply only if the current configuration has this version (from
    /// `EnsembleConfig::version`); otherwise the server answers `BadVersion`.
    pub fn if_version(mut self, version: i64) -> Self {
        self.from_version = Some(version);
        self
    }

    /// The request this change sends.
    pub fn request(&self) -> zk_proto::records::ReconfigRequest {
        let list = |items: Vec<String>| (!items.is_empty()).then(|| items.join(","));
        zk_proto::records::ReconfigRequest {
            joining_servers: list(self.joining.clone()),
            leaving_servers: list(self.leaving.iter().map(u64::to_string).collect()),
            new_members: self.members.as_ref().map(|m| m.join(",")),
            cur_config_id: self.from_version.unwrap_or(-1),
        }
    }
}

/// How to create a node: its mode, ACL and time to live.
///
/// ```
/// use std::time::Duration;
/// use zk_client::CreateOptions;
/// let lock = CreateOptions::ephemeral_sequential();
/// let cache = CreateOptions::ttl(Duration::from_secs(60));
/// # let _ = (lock, cache);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    mode: CreateMode,
    acl: Option<Vec<Acl>>,
    ttl: Option<Duration>,
}

impl CreateOptions {
    /// A node of `mode`, with the client's default ACL.
    pub fn new(mode: CreateMode) -> Self {
        CreateOptions {
            mode,
            acl: None,
            ttl: None,
        }
    }

    /// A persistent node.
    pub fn persistent() -> Self {
        Self::new(CreateMode::Persistent)
    }

    /// A node that goes away with the session.
    pub fn ephemeral() -> Self {
        Self::new(CreateMode::Ephemeral)
    }

    /// A persistent node with a sequence number appended to its name.
    pub fn persistent_sequential() -> Self {
        Self::new(CreateMode::PersistentSequential)
    }

    /// An ephemeral node with a sequence number appended to its name.
    pub fn ephemeral_sequential() -> Self {
        Self::new(CreateMode::EphemeralSequential)
    }

    /// A container: the server deletes it once its last child is gone.
    pub fn container() -> Self {
        Self::new(CreateMode::Container)
    }

    /// A persistent node the server deletes when it has not changed for `ttl` and has no
    /// children (needs `extendedTypesEnabled=true` on the server).
    pub fn ttl(ttl: Duration) -> Self {
        CreateOptions {
            mode: CreateMode::PersistentWithTtl,
            acl: None,
            ttl: Some(ttl),
        }
    }

    /// A sequential node with a time to live.
    pub fn sequential_ttl(ttl: Duration) -> Self {
        CreateOptions {
            mode: CreateMode::PersistentSequentialWithTtl,
            acl: None,
            ttl: Some(ttl),
        }
    }

    /// Uses `acl` instead of the client's default ACL.
    pub fn with_acl(mut self, acl: Vec<Acl>) -> Self {
        self.acl = Some(acl);
        self
    }

    /// The create request for `path`: createTTL or createContainer when the mode says so,
    /// otherwise create (or create2 when `create2` is set). `default_acl` applies when no
    /// ACL was given.
    pub fn request(&self, path: &str, data: Bytes, default_acl: &[Acl], create2: bool) -> Request {
        let acl = self.acl.clone().unwrap_or_else(|| default_acl.to_vec());
        let flags = self.mode.as_i32();
        if self.mode.is_ttl() {
            let ttl = self
                .ttl
                .unwrap_or_default()
                .as_millis()
                .min(i64::MAX as u128) as i64;
            return Request::CreateTtl(CreateTtlRequest {
                path: path.into(),
                data,
                acl,
                flags,
                ttl,
            });
        }
        let r = CreateRequest {
            path: path.into(),
            data,
            acl,
            flags,
        };
        if self.mode.is_container() {
            Request::CreateContainer(r)
        } else if create2 {
            Request::Create2(r)
        } else {
            Request::Create(r)
        }
    }

    /// The same create as an operation of a transaction.
    pub fn multi_op(&self, path: &str, data: Bytes, default_acl: &[Acl]) -> MultiOp {
        match self.request(path, data, default_acl, false) {
            Request::CreateTtl(r) => MultiOp::CreateTtl(r),
            Request::CreateContainer(r) => MultiOp::CreateContainer(r),
            Request::Create(r) | Request::Create2(r) => MultiOp::Create(r),
            other => unreachable!("request() only builds create requests, not {other:?}"),
        }
    }
}

/// One operation of a multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// Read a node's data.
    GetData(String),
    /// List a node's children.
    GetChildren(String),
}

/// The result of one [`ReadOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// Data and Stat.
    Data(Bytes, Stat),
    /// Children names.
    Children(Vec<String>),
    /// The operation failed (the others still ran).
    Error(ErrorCode),
}

/// The operations of a transaction (`multi`), in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiBuilder {
    ops: Vec<MultiOp>,
}

impl MultiBuilder {
    /// Adds a create.
    pub fn create(
        &mut self,
        path: &str,
        data: Bytes,
        options: &CreateOptions,
        default_acl: &[Acl],
    ) {
        self.ops.push(options.multi_op(path, data, default_acl));
    }

    /// Adds a delete of `path` at `version` (`None`: any).
    pub fn delete(&mut self, path: &str, version: Option<i32>) {
        self.ops.push(MultiOp::Delete(DeleteRequest {
            path: path.into(),
            version: version.unwrap_or(-1),
        }));
    }

    /// Adds a write of `path` at `version` (`None`: any).
    pub fn set_data(&mut self, path: &str, data: Bytes, version: Option<i32>) {
        self.ops.push(MultiOp::SetData(SetDataRequest {
            path: path.into(),
            data,
            version: version.unwrap_or(-1),
        }));
    }

    /// Adds a version check.
    pub fn check(&mut self, path: &str, version: i32) {
        self.ops.push(MultiOp::Check(CheckVersionRequest {
            path: path.into(),
            version,
        }));
    }

    /// No operations yet.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The multi request.
    pub fn request(self) -> Request {
        Request::Multi(MultiRequest { ops: self.ops })
    }
}

/// The multiRead request for `ops`.
pub fn multi_read_request(ops: &[ReadOp]) -> Request {
    let ops = ops
        .iter()
        .map(|op| match op {
            ReadOp::GetData(p) => MultiOp::GetData(GetDataRequest {
                path: p.clone(),
                watch: false,
            }),
            ReadOp::GetChildren(p) => MultiOp::GetChildren(GetChildrenRequest {
                path: p.clone(),
                watch: false,
            }),
        })
        .collect();
    Request::MultiRead(MultiRequest { ops })
}

/// Turns replies into typed results. Each function takes what the session completed a
/// request with.
pub mod reply {
    use super::*;

    fn ok(r: Reply) -> Result<Response> {
        r.map_err(Error::from)
    }

    /// Any successful reply, body ignored.
    pub fn done(r: Reply) -> Result<()> {
        ok(r).map(|_| ())
    }

    /// The created path (create, createContainer, createTTL).
    pub fn created(r: Reply) -> Result<String> {
        match ok(r)? {
            Response::Create(c) => Ok(c.path),
            Response::Create2(c) => Ok(c.path),
            _ => Err(Error::UnexpectedResponse),
        }
    }

    /// The created path and Stat (create2).
    pub fn created2(r: Reply) -> Result<(String, Stat)> {
        match ok(r)? {
            Response::Create2(c) => Ok((c.path, c.stat)),
            _ => Err(Error::UnexpectedResponse),
        }
    }

    /// A Stat (setData, setACL).
    pub fn stat(r: Reply) -> Result<Stat> {
        match ok(r)? {
            Response::Stat(s) => Ok(s),
            _ => Err(Error::UnexpectedResponse),
        }
    }

    /// A Stat, or `None` for a node that does not exist (exists).
    pub fn stat_or_none(r: Reply) -> Result<Option<Stat>> {
        match r {
            Err(session::Error::Server(ErrorCode::NoNode)) => Ok(None),
            r => stat(r).map(Some),
        }
    }

    /// Data and Stat (getData, getConfig).
    pub fn data(r: Reply) -> Result<(Bytes, Stat)> {
        match ok(r)? {
            Response::GetData(d) => Ok((d.data, d.stat)),
            _ => Err(Error::UnexpectedResponse),
        }
    }

    /// Children names (getChildren).
    pub fn children(r: Reply) -> Result<Vec<String>> {
        match ok(r)? {
            Response::GetChildren(c) => Ok(c.children),
            _ => Err(Error::UnexpectedResponse),
        }
    }

    /// Children names and Stat (getChildren2).
    pub fn children2(r: Reply) -> Result<(Vec<String>, Stat)> {
        match ok(r)? {
            Response::GetChildren2(c) => Ok((c.children, c.stat)),
            _ => Err(Error::UnexpectedResponse),
        }
    }

    /// A descendant count (getAllChildrenNumber).
    pub fn count(r: Reply) -> Result<i32> {
        match ok(r)? {
            Response::GetAllChildrenNumber(c) => Ok(c.total_number),
            _ => Err(Error::UnexpectedResponse),
        }
    }

    /// Ephemeral node paths (getEphemerals).
    pub fn ephemerals(r: Reply) -> Result<Vec<String>> {
        match ok(r)? {
            Response::GetEphemerals(e) => Ok(e.ephemerals),
            _ => Err(Error::UnexpectedResponse),
        }
    }

    /// ACL and Stat (getACL).
    pub fn acl(r: Reply) -> Result<(Vec<Acl>, Stat)> {
        match ok(r)? {
            Response::GetAcl(a) => Ok((a.acl, a.stat)),
            _ => Err(Error::UnexpectedResponse),
        }
    }

    /// The synced path (sync).
    pub fn synced(r: Reply) -> Result<String> {
        match ok(r)? {
            Response::Sync(s) => Ok(s.path),
            _ => Err(Error::UnexpectedResponse),
        }
    }

    /// The session's identities (whoAmI).
    pub fn who(r: Reply) -> Result<Vec<ClientInfo>> {
        match ok(r)? {
            Response::WhoAmI(w) => Ok(w.client_info),
            _ => Err(Error::UnexpectedResponse),
        }
    }

    /// A transaction's results, or the failing operation as [`Error::Transaction`]: the
    /// first error that is neither `Ok` nor the `RuntimeInconsistency` the server gives the
    /// operations it skipped.
    pub fn transaction(r: Reply) -> Result<Vec<OpResult>> {
        let Response::Multi(m) = ok(r)? else {
            return Err(Error::UnexpectedResponse);
        };
        let is_error = |r: &OpResult, skip_inconsistent: bool| {
            matches!(r, OpResult::Error(c) if *c != ErrorCode::Ok
                && !(skip_inconsistent && *c == ErrorCode::RuntimeInconsistency))
        };
        let failed = m
            .results
            .iter()
            .position(|r| is_error(r, true))
            .or_else(|| m.results.iter().position(|r| is_error(r, false)));
        match failed {
            Some(index) => {
                let OpResult::Error(code) = m.results[index] else {
                    return Err(Error::UnexpectedResponse);
                };
                Err(Error::Transaction {
                    index,
                    code,
                    results: m.results,
                })
            }
            None => Ok(m.results),
        }
    }

    /// Each read's result (multiRead).
    pub fn reads(r: Reply) -> Result<Vec<ReadResult>> {
        let Response::Multi(m) = ok(r)? else {
            return Err(Error::UnexpectedResponse);
        };
        m.results
            .into_iter()
            .map(|r| match r {
                OpResult::GetData(d) => Ok(ReadResult::Data(d.data, d.stat)),
                OpResult::GetChildren(c) => Ok(ReadResult::Children(c.children)),
                OpResult::Error(code) => Ok(ReadResult::Error(code)),
                _ => Err(Error::UnexpectedResponse),
            })
            .collect()
    }
}

/// The crate's README, compiled and run as a doc test so its example stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
