//! How the model ensemble is configured: the `zoo.cfg` settings its behaviour depends on.

use std::time::Duration;

/// Settings of a model server or ensemble. The defaults are the real server's, except the
/// ones named otherwise on each field.
///
/// ```
/// use std::time::Duration;
/// use zk_sim::Config;
///
/// // Three servers with the test harness's 200 ms tick.
/// let config = Config::ensemble(3).tick(Duration::from_millis(200));
/// assert_eq!(config.min_session_timeout(), Duration::from_millis(400));
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) servers: usize,
    pub(crate) standalone: bool,
    pub(crate) tick_ms: u64,
    pub(crate) min_session_timeout_ms: Option<u64>,
    pub(crate) max_session_timeout_ms: Option<u64>,
    pub(crate) extended_types: bool,
    pub(crate) read_only_mode: bool,
    pub(crate) container_check_ms: u64,
    pub(crate) max_buffer: usize,
    pub(crate) wall_clock_ms: i64,
    pub(crate) elapsed_origin_ms: u64,
    pub(crate) election_ms: u64,
    pub(crate) sync_limit: u64,
    pub(crate) record_history: bool,
    pub(crate) four_letter_words: crate::Whitelist,
    pub(crate) client_ports: Vec<u16>,
    pub(crate) secure_client_ports: Vec<u16>,
    pub(crate) data_dir: Option<String>,
    pub(crate) max_client_cnxns: u32,
    pub(crate) environment: Vec<(String, String)>,
    pub(crate) sasl_users: Vec<(String, String)>,
    pub(crate) super_digest: Option<String>,
    pub(crate) follower_lag: Option<(std::time::Duration, u64)>,
}

impl Default for Config {
    fn default() -> Self {
        Config::standalone()
    }
}

impl Config {
    /// One standalone server (`ZooKeeperServerMain`): server id 0, zxid epoch 0.
    pub fn standalone() -> Self {
        Config {
            servers: 1,
            standalone: true,
            tick_ms: 2000,
            min_session_timeout_ms: None,
            max_session_timeout_ms: None,
            extended_types: false,
            read_only_mode: false,
            container_check_ms: 60_000,
            max_buffer: 0xfffff,
            wall_clock_ms: 1_700_000_000_000,
            elapsed_origin_ms: 1_000_000,
            election_ms: 400,
            sync_limit: 5,
            record_history: true,
            four_letter_words: crate::Whitelist::All,
            client_ports: Vec::new(),
            secure_client_ports: Vec::new(),
            data_dir: None,
            max_client_cnxns: 60,
            environment: Vec::new(),
            sasl_users: Vec::new(),
            super_digest: None,
            follower_lag: None,
        }
    }

    /// A quorum of `servers` members (`QuorumPeerMain`), ids 1 to `servers`; the highest
    /// id leads after an election, as with equal zxids in the real election.
    pub fn ensemble(servers: usize) -> Self {
        Config {
            servers: servers.max(1),
            standalone: false,
            ..Config::standalone()
        }
    }

    /// `tickTime` (default 2 s): session expiry runs on tick boundaries, and the session
    /// timeout bounds are 2 and 20 ticks unless set.
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick_ms = (tick.as_millis() as u64).max(1);
        self
    }

    /// `minSessionTimeout` and `maxSessionTimeout`.
    pub fn session_timeouts(mut self, min: Duration, max: Duration) -> Self {
        self.min_session_timeout_ms = Some(min.as_millis() as u64);
        self.max_session_timeout_ms = Some(max.as_millis() as u64);
        self
    }

    /// `zookeeper.extendedTypesEnabled` (default off): TTL nodes are refused with
    /// `Unimplemented` without it.
    pub fn extended_types(mut self, enabled: bool) -> Self {
        self.extended_types = enabled;
        self
    }

    /// `readonlymode.enabled` (default off): a member cut off from its quorum serves
    /// read-only clients instead of refusing everyone.
    pub fn read_only_mode(mut self, enabled: bool) -> Self {
        self.read_only_mode = enabled;
        self
    }

    /// `znode.container.checkIntervalMs` (default 60 s): how often empty containers and
    /// expired TTL nodes are deleted.
    pub fn container_check(mut self, every: Duration) -> Self {
        self.container_check_ms = (every.as_millis() as u64).max(1);
        self
    }

    /// `jute.maxbuffer` (default 0xfffff): a longer frame closes the connection.
    pub fn max_buffer(mut self, bytes: usize) -> Self {
        self.max_buffer = bytes;
        self
    }

    /// The wall clock at the model's start, in milliseconds since the epoch (node times
    /// are taken from it). Default: a fixed instant, so runs replay exactly.
    pub fn wall_clock(mut self, ms_since_epoch: i64) -> Self {
        self.wall_clock_ms = ms_since_epoch;
        self
    }

    /// The server's elapsed-time clock at the start, in milliseconds. Session ids and the
    /// alignment of expiry ticks derive from it, as they derive from `nanoTime` on a real
    /// server.
    pub fn elapsed_origin(mut self, ms: u64) -> Self {
        self.elapsed_origin_ms = ms;
        self
    }

    /// How long an election takes (default 400 ms): members serve nobody meanwhile.
    pub fn election_time(mut self, time: Duration) -> Self {
        self.election_ms = time.as_millis() as u64;
        self
    }

    /// `syncLimit` in ticks (default 5): how long a silent (paused) leader is waited for
    /// before the others elect a new one.
    pub fn sync_limit(mut self, ticks: u64) -> Self {
        self.sync_limit = ticks.max(1);
        self
    }

    /// `zookeeper.DigestAuthenticationProvider.superDigest`: a digest id
    /// (`user:base64(sha1(user:password))`) whose owner passes every ACL check.
    pub fn super_digest(mut self, digest: &str) -> Self {
        self.super_digest = Some(digest.to_owned());
        self
    }

    /// Members other than the leader apply each committed transaction after a delay of
    /// their own, from 0 to `max`, drawn from `seed` (default: no lag; ignored by a
    /// standalone server). A member serves reads from what it has applied, answers a write
    /// sent to it once it applied it (its session's later reads wait behind), answers
    /// `sync` once it applied what was committed before, fires watches as it applies, and
    /// refuses a client that has seen a later zxid, as ZooKeeper's followers do.
    pub fn follower_lag(mut self, max: Duration, seed: u64) -> Self {
        self.follower_lag = Some((max, seed));
        self
    }

    /// `4lw.commands.whitelist`: the four-letter words answered (default every word, as
    /// test harnesses configure it; a real server's own default is `srvr` only, see
    /// [`crate::Whitelist::default_server`]).
    pub fn four_letter_words(mut self, whitelist: crate::Whitelist) -> Self {
        self.four_letter_words = whitelist;
        self
    }

    /// Each server's `clientPort`, as `conf` reports it; the TCP front sets them to the
    /// ports it listens on.
    pub fn client_ports(mut self, ports: &[u16]) -> Self {
        self.client_ports = ports.to_vec();
        self
    }

    /// Each server's `secureClientPort`, as `conf` reports it; the TCP front sets them to
    /// the TLS ports it listens on.
    pub fn secure_client_ports(mut self, ports: &[u16]) -> Self {
        self.secure_client_ports = ports.to_vec();
        self
    }

    /// `dataDir`: where the TCP front ([`crate::SimServer`]) keeps the model's snapshot, so
    /// a server bound again on it finds its tree and sessions, as a restarted real server
    /// does; `conf` reports it. The model itself reads and writes no file.
    pub fn data_dir(mut self, dir: &str) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// `maxClientCnxns` (default 60), as `conf` reports it. The model does not limit
    /// connections.
    pub fn max_client_cnxns(mut self, max: u32) -> Self {
        self.max_client_cnxns = max;
        self
    }

    /// An entry `envi` reports, replacing the model's own for the same key (`host.name`,
    /// `user.dir`, ...). The model reads no environment itself.
    pub fn environment(mut self, key: &str, value: &str) -> Self {
        self.environment.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A user SASL DIGEST-MD5 logins may log in as, with its password, as a `user_<name>`
    /// option of a JAAS file's `DigestLoginModule` gives it ([`crate::jaas_digest_users`]
    /// reads them from one); a login makes the session `sasl:<user>` for ACLs. Without any,
    /// a SASL login is refused (no SASL configured).
    pub fn sasl_digest_user(mut self, user: &str, password: &str) -> Self {
        self.sasl_users.push((user.to_owned(), password.to_owned()));
        self
    }

    /// Keep every applied transaction for [`crate::Ensemble::history`] (default on).
    pub fn record_history(mut self, on: bool) -> Self {
        self.record_history = on;
        self
    }

    /// The smallest session timeout granted.
    pub fn min_session_timeout(&self) -> std::time::Duration {
        Duration::from_millis(self.min_session_timeout_ms.unwrap_or(2 * self.tick_ms))
    }

    /// The largest session timeout granted.
    pub fn max_session_timeout(&self) -> std::time::Duration {
        Duration::from_millis(self.max_session_timeout_ms.unwrap_or(20 * self.tick_ms))
    }

    /// How many servers.
    pub fn servers(&self) -> usize {
        self.servers
    }

    /// True for a standalone server.
    pub fn is_standalone(&self) -> bool {
        self.standalone
    }
}
