//! Real ZooKeeper servers: one on its own, or a quorum ensemble.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::fourlw::{Mode, four_letter};
use crate::kdc::Kdc;
use crate::pki::{CertKey, Pki};
use crate::ports::free_port;
use crate::spawn::{signal, spawn_tied};
use crate::{HarnessError, install};

/// How servers are configured. The defaults suit tests: a 200 ms tick so sessions can be short
/// (400 ms minimum) and expire promptly, no fsync, every four-letter word allowed, read-only
/// mode enabled, TTL nodes enabled and reaped (with empty containers) every 500 ms, no admin
/// HTTP server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `tickTime` in milliseconds.
    pub tick_time_ms: u32,
    /// `minSessionTimeout` in milliseconds.
    pub min_session_timeout_ms: u32,
    /// `maxSessionTimeout` in milliseconds.
    pub max_session_timeout_ms: u32,
    /// Extra `zoo.cfg` lines as key and value (for example `("reconfigEnabled", "true")`).
    pub properties: Vec<(String, String)>,
    /// Extra JVM flags (for example a `-Dzookeeper.DigestAuthenticationProvider.superDigest=`).
    pub jvm_flags: Vec<String>,
    /// How long a server may take to answer `ruok` after it is started.
    pub start_timeout: Duration,
    /// Write each member's client address into its `server.N` line, so that
    /// `/zookeeper/config` names it (needed by clients that follow reconfigurations).
    pub client_addresses_in_config: bool,
    /// Also serve TLS on a `secureClientPort` (see [`ServerTls`]).
    pub tls: Option<ServerTls>,
    /// SASL DIGEST-MD5 users and passwords (see [`ServerOptions::sasl_users`]).
    pub sasl_users: Vec<(String, String)>,
    /// SASL GSSAPI against a test KDC (see [`ServerOptions::kerberos`]).
    pub kerberos: Option<ServerKerberos>,
}

/// How a server logs in to a KDC for SASL GSSAPI.
#[derive(Debug, Clone)]
pub struct ServerKerberos {
    /// The realm's `krb5.conf`.
    pub krb5_conf: PathBuf,
    /// The keytab of the server's principal.
    pub keytab: PathBuf,
    /// The server's principal, with its realm.
    pub principal: String,
}

/// Whether a TLS server asks clients for a certificate (`ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Never asks.
    None,
    /// Asks, and accepts clients without one.
    Want,
    /// Refuses clients without a certificate its trust store vouches for.
    Need,
}

impl ClientAuth {
    fn word(self) -> &'static str {
        match self {
            ClientAuth::None => "none",
            ClientAuth::Want => "want",
            ClientAuth::Need => "need",
        }
    }
}

/// TLS for a server: a `secureClientPort` on loopback beside the plain client port (which
/// four-letter words and plain tests keep using), served by Netty from PEM files.
///
/// The x509 authentication provider is always registered, with the same key and trust
/// stores, so a client certificate gives its session the identity `x509:<subject DN>`.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The server's certificate and key.
    pub server: CertKey,
    /// The CA certificates client certificates must chain to.
    pub trust_pem: String,
    /// Whether clients must present a certificate.
    pub client_auth: ClientAuth,
}

impl ServerTls {
    /// TLS with `pki`'s server certificate, trusting `pki`'s CA, asking for no client
    /// certificate.
    pub fn new(pki: &Pki) -> Result<ServerTls, HarnessError> {
        Ok(ServerTls {
            server: pki.server_cert()?,
            trust_pem: pki.ca_pem(),
            client_auth: ClientAuth::None,
        })
    }

    /// Sets `ssl.clientAuth`.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            tick_time_ms: 200,
            min_session_timeout_ms: 400,
            max_session_timeout_ms: 60_000,
            properties: Vec::new(),
            jvm_flags: Vec::new(),
            start_timeout: Duration::from_secs(60),
            client_addresses_in_config: false,
            tls: None,
            sasl_users: Vec::new(),
            kerberos: None,
        }
    }
}

impl ServerOptions {
    /// Adds a `zoo.cfg` line.
    pub fn property(mut self, key: &str, value: &str) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// Lets a member cut off from its quorum serve read-only clients. Read-only mode itself is
    /// always on (`readonlymode.enabled`), but a read-only server refuses to create global
    /// sessions (it answers the handshake with `NotReadOnly`), so it also needs local
    /// sessions, upgraded to global ones when they create ephemeral nodes. Local sessions
    /// change failover: one that was never upgraded dies with its server.
    pub fn read_only_sessions(self) -> Self {
        self.property("localSessionsEnabled", "true")
            .property("localSessionsUpgradingEnabled", "true")
    }

    /// Dynamic reconfiguration on (`reconfigEnabled=true`), ACL checks off so any session
    /// may call `reconfig` (`zookeeper.skipACL`), and each member's client address in
    /// `/zookeeper/config`.
    pub fn reconfig(mut self) -> Self {
        self.client_addresses_in_config = true;
        self.property("reconfigEnabled", "true")
            .jvm_flag("-Dzookeeper.skipACL=yes")
    }

    /// Accepts SASL DIGEST-MD5 logins of these users: a JAAS `Server` section with
    /// `DigestLoginModule` naming each user and password, and the SASL authentication
    /// provider, so a logged-in session's identity is `sasl:<user>`. SASL stays optional for
    /// clients, as it is by default.
    pub fn sasl_users(mut self, users: &[(&str, &str)]) -> Self {
        self.sasl_users = users
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect();
        self
    }

    /// Accepts SASL GSSAPI logins: the server's principal is `zookeeper/localhost` in
    /// `kdc`'s realm (clients connect by `localhost`), with its keytab written by the KDC.
    /// Takes the place of [`ServerOptions::sasl_users`] (one JAAS `Server` section serves
    /// one kind of login).
    pub fn kerberos(mut self, kdc: &Kdc) -> Result<Self, HarnessError> {
        let keytab = kdc.keytab("zookeeper/localhost")?;
        self.kerberos = Some(ServerKerberos {
            krb5_conf: kdc.krb5_conf(),
            keytab,
            principal: format!("zookeeper/localhost@{}", Kdc::REALM),
        });
        Ok(self)
    }

    /// Serves TLS as well, on a second port ([`ZkServer::secure_port`]).
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Adds a JVM flag.
    pub fn jvm_flag(mut self, flag: &str) -> Self {
        self.jvm_flags.push(flag.into());
        self
    }
}

const DIR_PREFIX: &str = "zk-harness-";
const OWNER_FILE: &str = "owner.pid";

/// Removes the directories of servers whose test process is gone. A server's directory is
/// removed when its handle drops, but a handle kept in a `static` (a server shared by all
/// tests of a binary) never drops: its process is killed with the test process, and its
/// directory is swept here by the next run.
fn sweep_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let alive = match fs::read_to_string(entry.path().join(OWNER_FILE)) {
            Ok(pid) => pid
                .trim()
                .parse::<u32>()
                .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists()),
            // Just created, owner not written yet: leave young directories alone.
            Err(_) => entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_none_or(|age| age < Duration::from_secs(600)),
        };
        if !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Writes the key and trust stores and the `zoo.cfg` lines and JVM flags that serve TLS on
/// `port`.
fn configure_tls(
    cfg: &mut String,
    options: &mut ServerOptions,
    dir: &Path,
    tls: &ServerTls,
    port: u16,
) -> Result<(), HarnessError> {
    let keys = dir.join("server-keys.pem");
    let trust = dir.join("trust.pem");
    fs::write(&keys, tls.server.key_store_pem())?;
    fs::write(&trust, &tls.trust_pem)?;
    let _ = writeln!(
        cfg,
        "secureClientPort={port}\nsecureClientPortAddress=127.0.0.1"
    );
    let _ = writeln!(
        cfg,
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory"
    );
    let _ = writeln!(cfg, "ssl.clientAuth={}", tls.client_auth.word());
    // The server's own TLS context reads zoo.cfg; the x509 provider, which Netty consults
    // whenever a client presents a certificate, reads the same settings from system
    // properties.
    for (key, value) in [
        ("ssl.keyStore.location", keys.display().to_string()),
        ("ssl.keyStore.type", "PEM".to_string()),
        ("ssl.trustStore.location", trust.display().to_string()),
        ("ssl.trustStore.type", "PEM".to_string()),
    ] {
        let _ = writeln!(cfg, "{key}={value}");
        options.jvm_flags.push(format!("-Dzookeeper.{key}={value}"));
    }
    options.jvm_flags.push(
        "-Dzookeeper.authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider"
            .to_string(),
    );
    Ok(())
}

/// Quorum and leader-election ports of one ensemble member.
#[derive(Debug, Clone, Copy)]
struct PeerPorts {
    quorum: u16,
    election: u16,
}

/// One ZooKeeper server process on a loopback port, with its own temporary data directory.
///
/// The process is killed and the directory removed when this is dropped, also while a test
/// unwinds from a panic; if the test process dies outright, the kernel kills the server.
///
/// ```no_run
/// let server = zk_harness::ZkServer::standalone().unwrap();
/// println!("ZooKeeper listens on {}", server.connect_string());
/// ```
#[derive(Debug)]
pub struct ZkServer {
    id: u32,
    port: u16,
    secure_port: Option<u16>,
    dir: TempDir,
    java: String,
    classpath: String,
    options: ServerOptions,
    child: Option<Child>,
}

impl ZkServer {
    /// Starts a standalone server with default options and waits until it answers `ruok`.
    pub fn standalone() -> Result<ZkServer, HarnessError> {
        ZkServer::standalone_with(ServerOptions::default())
    }

    /// Starts a standalone server with `options`.
    pub fn standalone_with(options: ServerOptions) -> Result<ZkServer, HarnessError> {
        let mut last = None;
        // A port can be taken by another process between choosing and binding it.
        for _ in 0..3 {
            let mut server = ZkServer::prepare(0, options.clone(), None)?;
            let timeout = options.start_timeout;
            match server.start().and_then(|()| server.wait_serving(timeout)) {
                Ok(_) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(HarnessError::NoFreePort))
    }

    fn prepare(
        id: u32,
        options: ServerOptions,
        peers: Option<(&[PeerPorts], &[u16])>,
    ) -> Result<ZkServer, HarnessError> {
        let classpath = install::classpath()?;
        sweep_stale_dirs();
        let dir = tempfile::Builder::new().prefix(DIR_PREFIX).tempdir()?;
        // Marks the directory as ours while this process lives (see `sweep_stale_dirs`).
        fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())?;
        let port = match peers {
            Some((_, clients)) => clients[(id - 1) as usize],
            None => free_port()?,
        };
        let data = dir.path().join("data");
        fs::create_dir_all(&data)?;
        let mut cfg = String::new();
        let o = &options;
        // `write!` to a String cannot fail.
        let _ = writeln!(cfg, "tickTime={}", o.tick_time_ms);
        let _ = writeln!(cfg, "initLimit=25\nsyncLimit=10");
        let _ = writeln!(cfg, "minSessionTimeout={}", o.min_session_timeout_ms);
        let _ = writeln!(cfg, "maxSessionTimeout={}", o.max_session_timeout_ms);
        let _ = writeln!(cfg, "dataDir={}", data.display());
        let _ = writeln!(cfg, "clientPort={port}\nclientPortAddress=127.0.0.1");
        let _ = writeln!(cfg, "admin.enableServer=false\n4lw.commands.whitelist=*");
        let _ = writeln!(cfg, "forceSync=no\nextendedTypesEnabled=true");
        let _ = writeln!(cfg, "autopurge.purgeInterval=0");
        // Tests and benchmarks open many sessions from one address (the default allows 60).
        let _ = writeln!(cfg, "maxClientCnxns=0");
        if let Some((peers, clients)) = peers {
            fs::write(data.join("myid"), format!("{id}\n"))?;
            let _ = writeln!(cfg, "standaloneEnabled=false");
            for (i, p) in peers.iter().enumerate() {
                let _ = write!(
                    cfg,
                    "server.{}=127.0.0.1:{}:{}",
                    i + 1,
                    p.quorum,
                    p.election
                );
                match clients.get(i) {
                    Some(client) if o.client_addresses_in_config => {
                        let _ = writeln!(cfg, ":participant;127.0.0.1:{client}");
                    }
                    _ => cfg.push('\n'),
                }
            }
        }
        let mut options = options;
        let mut classpath = classpath;
        let secure_port = match options.tls.clone() {
            Some(tls) => {
                let secure = free_port()?;
                configure_tls(&mut cfg, &mut options, dir.path(), &tls, secure)?;
                classpath.push_str(&install::netty_classpath()?);
                Some(secure)
            }
            None => None,
        };
        if !options.sasl_users.is_empty() || options.kerberos.is_some() {
            let jaas = dir.path().join("jaas.conf");
            let mut text = String::from("Server {\n");
            if let Some(k) = options.kerberos.clone() {
                let _ = write!(
                    text,
                    "    com.sun.security.auth.module.Krb5LoginModule required\n    \
                     useKeyTab=true\n    keyTab=\"{}\"\n    storeKey=true\n    \
                     useTicketCache=false\n    principal=\"{}\"",
                    k.keytab.display(),
                    k.principal
                );
                options.jvm_flags.push(format!(
                    "-Djava.security.krb5.conf={}",
                    k.krb5_conf.display()
                ));
            } else {
                text.push_str("    org.apache.zookeeper.server.auth.DigestLoginModule required");
                for (user, password) in &options.sasl_users {
                    let _ = write!(text, "\n    user_{user}=\"{password}\"");
                }
            }
            text.push_str(";\n};\n");
            fs::write(&jaas, text)?;
            options.jvm_flags.push(format!(
                "-Djava.security.auth.login.config={}",
                jaas.display()
            ));
            let _ = writeln!(
                cfg,
                "authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
            );
        }
        for (k, v) in &options.properties {
            let _ = writeln!(cfg, "{k}={v}");
        }
        fs::write(dir.path().join("zoo.cfg"), cfg)?;
        Ok(ZkServer {
            id,
            port,
            secure_port,
            dir,
            java: std::env::var("JAVA").unwrap_or_else(|_| "java".into()),
            classpath,
            options,
            child: None,
        })
    }

    /// Starts the process if it is not running and waits until it answers `ruok` with
    /// `imok`. That only says the process listens: call [`ZkServer::wait_serving`] to wait
    /// until it serves clients. Data survives a stop: a restarted server keeps its nodes and
    /// sessions.
    pub fn start(&mut self) -> Result<(), HarnessError> {
        self.spawn()?;
        self.wait_ready()
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        if self.is_running() {
            return Ok(());
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut cmd = Command::new(&self.java);
        cmd.args([
            "-Xms32m",
            "-Xmx512m",
            "-XX:+UseSerialGC",
            "-Dreadonlymode.enabled=true",
            "-Dzookeeper.admin.enableServer=false",
            "-Dzookeeper.4lw.commands.whitelist=*",
            // Reap empty containers and expired TTL nodes every 500 ms instead of every minute.
            "-Dznode.container.checkIntervalMs=500",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
        ])
        .args(&self.options.jvm_flags)
        .arg("-cp")
        .arg(&self.classpath)
        .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
        .arg(self.dir.path().join("zoo.cfg"))
        .current_dir(self.dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
        let child = spawn_tied(cmd).map_err(|e| HarnessError::Spawn {
            java: self.java.clone(),
            source: e,
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the server answers `ruok` with `imok`, which it does as soon as it listens,
    /// before it serves clients; see [`ZkServer::wait_serving`].
    pub fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + self.options.start_timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(HarnessError::Exited {
                        status: status.to_string(),
                        log: self.log_tail(20),
                    });
                }
            } else {
                return Err(HarnessError::NotRunning);
            }
            if self.four_letter("ruok").is_ok_and(|a| a == "imok") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.kill();
                return Err(HarnessError::StartTimeout {
                    after: self.options.start_timeout,
                    log: self.log_tail(20),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `srvr` reports a mode that serves read-write clients.
    pub fn wait_serving(&self, timeout: Duration) -> Result<Mode, HarnessError> {
        self.wait_mode(timeout, Mode::is_read_write)
    }

    /// Waits until `srvr` reports a mode for which `pred` holds.
    pub fn wait_mode(
        &self,
        timeout: Duration,
        pred: impl Fn(Mode) -> bool,
    ) -> Result<Mode, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mode = self.mode();
            if pred(mode) {
                return Ok(mode);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::ModeTimeout {
                    port: self.port,
                    mode,
                    after: timeout,
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server with SIGTERM, falling back to SIGKILL after ten seconds.
    pub fn stop(&mut self) -> Result<(), HarnessError> {
        self.terminate(libc::SIGTERM, Duration::from_secs(10))
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) -> Result<(), HarnessError> {
        self.terminate(libc::SIGKILL, Duration::from_secs(10))
    }

    fn terminate(&mut self, sig: libc::c_int, grace: Duration) -> Result<(), HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        // A paused process does not act on SIGTERM until it runs again.
        let _ = signal(&child, libc::SIGCONT);
        signal(&child, sig)?;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// Freezes the process (SIGSTOP): its sockets stay open but nothing answers, like a server
    /// stuck in a long GC pause.
    pub fn pause(&self) -> Result<(), HarnessError> {
        let child = self.child.as_ref().ok_or(HarnessError::NotRunning)?;
        signal(child, libc::SIGSTOP)?;
        // The signal is delivered asynchronously; return once the process is stopped.
        let stat = format!("/proc/{}/stat", child.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let state = fs::read_to_string(&stat).unwrap_or_default();
            // The state follows the parenthesised command name: "pid (java) T ...".
            if let Some((_, rest)) = state.rsplit_once(')')
                && rest.trim_start().starts_with('T')
            {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(5));
        }
        Err(HarnessError::Io(std::io::Error::other(
            "the server did not stop after SIGSTOP",
        )))
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) -> Result<(), HarnessError> {
        let child = self.child.as_ref().ok_or(HarnessError::NotRunning)?;
        Ok(signal(child, libc::SIGCONT)?)
    }

    /// The process is alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// The server's `myid` in an ensemble, 0 for a standalone server.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS client port, when the server was started with [`ServerOptions::tls`].
    pub fn secure_port(&self) -> Option<u16> {
        self.secure_port
    }

    /// `127.0.0.1:<secure port>`, when the server serves TLS.
    pub fn secure_connect_string(&self) -> Option<String> {
        self.secure_port.map(|p| format!("127.0.0.1:{p}"))
    }

    /// The client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `127.0.0.1:<port>`, ready for a client's connect string.
    pub fn connect_string(&self) -> String {
        self.addr().to_string()
    }

    /// Sends a four-letter command and returns the answer.
    pub fn four_letter(&self, cmd: &str) -> std::io::Result<String> {
        four_letter(self.addr(), cmd, Duration::from_secs(2))
    }

    /// The mode from `srvr`; [`Mode::NotServing`] when the server does not answer.
    pub fn mode(&self) -> Mode {
        self.four_letter("srvr")
            .map(|s| Mode::parse(&s))
            .unwrap_or(Mode::NotServing)
    }

    /// The server's directory: `zoo.cfg`, `data/` and `server.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the server's output goes.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        let _ = self.terminate(libc::SIGKILL, Duration::from_secs(5));
    }
}

/// A quorum of real servers on loopback, each with its own client, quorum and election
/// port and data directory. Members can be stopped, killed, paused and restarted one by one.
///
/// ```no_run
/// let mut ensemble = zk_harness::Ensemble::start(3).unwrap();
/// let leader = ensemble.leader().unwrap();
/// ensemble.server_mut(leader).kill().unwrap();
/// ensemble.wait_quorum(std::time::Duration::from_secs(30)).unwrap();
/// ```
#[derive(Debug)]
pub struct Ensemble {
    servers: Vec<ZkServer>,
}

impl Ensemble {
    /// Starts `n` servers with default options and waits until they form a quorum.
    pub fn start(n: usize) -> Result<Ensemble, HarnessError> {
        Ensemble::start_with(n, ServerOptions::default())
    }

    /// Starts `n` servers with `options` and waits until they form a quorum.
    pub fn start_with(n: usize, options: ServerOptions) -> Result<Ensemble, HarnessError> {
        let mut last = None;
        for _ in 0..3 {
            match Ensemble::try_start(n, &options) {
                Ok(e) => return Ok(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(HarnessError::NoFreePort))
    }

    fn try_start(n: usize, options: &ServerOptions) -> Result<Ensemble, HarnessError> {
        let mut peers = Vec::with_capacity(n);
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            peers.push(PeerPorts {
                quorum: free_port()?,
                election: free_port()?,
            });
            clients.push(free_port()?);
        }
        let mut servers = Vec::with_capacity(n);
        for id in 1..=n as u32 {
            servers.push(ZkServer::prepare(
                id,
                options.clone(),
                Some((&peers, &clients)),
            )?);
        }
        for s in &mut servers {
            s.spawn()?;
        }
        for s in &mut servers {
            s.wait_ready()?;
        }
        let mut ensemble = Ensemble { servers };
        ensemble.wait_quorum(options.start_timeout)?;
        Ok(ensemble)
    }

    /// Waits until every running member serves read-write clients and one of them leads.
    pub fn wait_quorum(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        for s in &mut self.servers {
            if s.is_running() {
                s.wait_serving(deadline.saturating_duration_since(Instant::now()))?;
            }
        }
        loop {
            if self.leader().is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::NoLeader { after: timeout });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The index of the current leader, if one answers.
    pub fn leader(&self) -> Option<usize> {
        self.servers.iter().position(|s| s.mode() == Mode::Leader)
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// The ensemble has no members.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Member `i` (0-based; its `myid` is `i + 1`).
    pub fn server(&self, i: usize) -> &ZkServer {
        &self.servers[i]
    }

    /// Member `i`, to stop, kill or restart it.
    pub fn server_mut(&mut self, i: usize) -> &mut ZkServer {
        &mut self.servers[i]
    }

    /// All members.
    pub fn servers(&self) -> &[ZkServer] {
        &self.servers
    }

    /// Every member's client address, comma-separated, for a client's connect string.
    pub fn connect_string(&self) -> String {
        let addrs: Vec<String> = self.servers.iter().map(|s| s.connect_string()).collect();
        addrs.join(",")
    }

    /// Every member's TLS client address, comma-separated, when they serve TLS.
    pub fn secure_connect_string(&self) -> Option<String> {
        let addrs: Option<Vec<String>> = self
            .servers
            .iter()
            .map(|s| s.secure_connect_string())
            .collect();
        addrs.map(|a| a.join(","))
    }
}
