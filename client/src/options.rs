//! What a client is built from ([`ClientOptions`]) and the builder setters both drivers
//! write from one macro.

use std::time::Duration;

use bytes::Bytes;

use zk_proto::records::*;
use zk_proto::retry::RetryPolicy;
use zk_proto::session::{Config, Session};

use crate::Result;

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
    /// How long a call waits for its answer before failing with [`Error::CallTimeout`](crate::Error::CallTimeout);
    /// `None` for the driver's default.
    pub call_timeout: Option<Duration>,
    /// The slow-request threshold, if not the default.
    pub slow_request: Option<Duration>,
    /// Follow the ensemble's membership in `/zookeeper/config`.
    pub follow_config: bool,
    /// The SASL login every connection runs, if any.
    pub sasl: Option<zk_proto::sasl::SaslLogin>,
    /// DIGEST-MD5 credentials (user, password, digest URI), made into a login when the
    /// session is built, with the secret its nonces come from.
    pub sasl_digest: Option<(String, String, String)>,
    /// Speak TLS to every server; `None` for plain TCP.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::TlsOptions>,
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
            let uri = $crate::sasl::ZOOKEEPER_DIGEST_URI.to_string();
            self.options.sasl_digest = Some((user.to_string(), password.to_string(), uri));
            self.options.sasl = None;
            self
        }

        /// The digest URI of the `sasl_digest` login (`<protocol>/<server name>`, for a
        /// server started with other `zookeeper.sasl.server.*` names).
        pub fn sasl_digest_uri(mut self, uri: &str) -> Self {
            if let Some((_, _, u)) = &mut self.options.sasl_digest {
                *u = uri.to_string();
            }
            self
        }

        /// Logs in by SASL with `login` on every connection (see `sasl_digest`).
        pub fn sasl(mut self, login: $crate::__proto::sasl::SaslLogin) -> Self {
            self.options.sasl = Some(login);
            self.options.sasl_digest = None;
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
            sasl_digest: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// How long to wait for the first connection.
    pub fn connect_wait(&self) -> Duration {
        self.connect_timeout.unwrap_or(self.session_timeout)
    }

    /// The session configuration, with `random_seed` when no seed was set, and `secret`
    /// (from the operating system, never a seed) for login nonces.
    pub fn config(&self, random_seed: u64, secret: u128) -> Result<Config> {
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
        if let Some((user, password, uri)) = &self.sasl_digest {
            let login = crate::sasl::DigestMd5Login::new(user, password, uri, secret);
            config = config.with_sasl(login.login());
        }
        Ok(config)
    }

    /// A new session with the credentials already added.
    pub fn session(
        &self,
        now: std::time::Instant,
        random_seed: u64,
        secret: u128,
    ) -> Result<Session> {
        let mut session = Session::new(self.config(random_seed, secret)?, now);
        for (scheme, creds) in &self.auth {
            session.add_auth(now, scheme, creds.clone())?;
        }
        Ok(session)
    }
}
