//! The model on real sockets (feature `tcp`): any client, ours, Kazoo or the Java one, can
//! talk to it. The bytes of every connection go to one [`Ensemble`] behind a lock; a timer
//! task wakes it at its deadlines. Time is the machine's clock.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

#[cfg(feature = "tls")]
use crate::{StoreType, TlsProtocol};

#[cfg(feature = "tls")]
mod java_tls;

use crate::{Config, ConnId, Ensemble, Output};

/// The model's clock is the runtime's: under `#[tokio::test(start_paused = true)]` the
/// server's timers (session expiry, container reaping) move with the clients' in virtual
/// time, instead of waiting for the wall clock while the runtime jumps ahead.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

enum ToClient {
    Data(Bytes),
    Close,
}

struct Shared {
    ensemble: Ensemble,
    /// Where the model's snapshot goes, when it has a data directory.
    store: Option<Store>,
    writers: BTreeMap<ConnId, mpsc::UnboundedSender<ToClient>>,
    /// Connections whose bytes are lost both ways ([`SimServer::black_hole`]).
    silent: std::collections::BTreeSet<ConnId>,
}

/// The data directory's snapshot file, and the zxid and sessions it holds.
struct Store {
    path: std::path::PathBuf,
    saved: (i64, Vec<i64>),
}

impl Store {
    /// The snapshot file under `dir` (`version-2/`, as the real server lays it out).
    fn new(dir: &str) -> Store {
        Store {
            path: std::path::Path::new(dir)
                .join("version-2")
                .join("zk-sim.snapshot"),
            saved: (-1, Vec::new()),
        }
    }

    /// Writes the snapshot if the model moved since the last one (written to a new
    /// file, then renamed over the old, so a crash leaves one whole snapshot).
    fn save(&mut self, ensemble: &Ensemble) {
        let now = (ensemble.last_zxid(), ensemble.sessions());
        if now == self.saved {
            return;
        }
        let tmp = self.path.with_extension("tmp");
        let written = self
            .path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&tmp, ensemble.snapshot()))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        match written {
            Ok(()) => self.saved = now,
            Err(e) => eprintln!(
                "zk-sim: cannot write the snapshot {}: {e}",
                self.path.display()
            ),
        }
    }
}

impl Shared {
    /// Hands every output of the model to the connections' writers, after the snapshot
    /// (with a data directory): a reply goes out only once what it reports is kept.
    fn flush(&mut self) {
        if let Some(store) = &mut self.store {
            store.save(&self.ensemble);
        }
        while let Some(out) = self.ensemble.poll_output() {
            match out {
                Output::Transmit { conn, data } => {
                    if self.silent.contains(&conn) {
                        continue;
                    }
                    if let Some(w) = self.writers.get(&conn) {
                        let _ = w.send(ToClient::Data(data));
                    }
                }
                Output::Close { conn } => {
                    self.silent.remove(&conn);
                    if let Some(w) = self.writers.remove(&conn) {
                        let _ = w.send(ToClient::Close);
                    }
                }
            }
        }
    }
}

struct Inner {
    shared: Mutex<Shared>,
    /// Wakes the timer task when a deadline may have moved.
    tick: Notify,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock is a bug in the model; keep serving the others.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The model ensemble served on TCP, one listening address per server.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let server = zk_sim::SimServer::bind("127.0.0.1:0").await?;
/// println!("point any ZooKeeper client at {}", server.connect_string());
/// // Faults and inspection go through the model itself:
/// let sessions = server.with(|zk, _now| zk.sessions());
/// # let _ = sessions;
/// # Ok(())
/// # }
/// ```
///
/// Dropping it stops every task and closes every socket. A killed server's address still
/// accepts TCP connections but closes them at once (the port stays bound so it can be
/// restarted).
pub struct SimServer {
    inner: Arc<Inner>,
    addrs: Vec<SocketAddr>,
    /// Each server's TLS address, when it serves TLS.
    secure_addrs: Vec<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer")
            .field("addrs", &self.addrs)
            .finish()
    }
}

impl SimServer {
    /// A standalone model server (with the real server's defaults, except that TTL nodes
    /// are enabled) listening on `addr` (`"127.0.0.1:0"` for any free port). Node times
    /// follow the machine's wall clock.
    pub async fn bind(addr: &str) -> io::Result<SimServer> {
        let config = Config::standalone().extended_types(true);
        SimServer::bind_with(config.wall_clock(wall_clock_now()), &[addr]).await
    }

    /// A model with `config`, server `i` listening on `addrs[i]`. There must be one
    /// address per server. Node times follow `config`'s wall clock
    /// ([`Config::wall_clock`]: a fixed instant unless set).
    ///
    /// With a data directory ([`Config::data_dir`]) the model keeps its tree, its sessions
    /// and its last zxid there, written before the replies of each change go out, and a
    /// server bound again on the same directory starts from them: clients whose session
    /// is younger than its timeout resume it, as after a real server's restart.
    pub async fn bind_with(config: Config, addrs: &[&str]) -> io::Result<SimServer> {
        SimServer::bind_inner(config, addrs, None).await
    }

    /// Like [`SimServer::bind_with`], each server also serving TLS on `secure_addrs[i]`
    /// (its `secureClientPort`) with `tls`: the same model behind both ports, as a real
    /// server serves one tree on its client and secure client ports.
    #[cfg(feature = "tls")]
    pub async fn bind_tls(
        config: Config,
        addrs: &[&str],
        secure_addrs: &[&str],
        tls: ServerTls,
    ) -> io::Result<SimServer> {
        SimServer::bind_inner(config, addrs, Some((secure_addrs, tls))).await
    }

    async fn bind_inner(
        config: Config,
        addrs: &[&str],
        #[cfg_attr(not(feature = "tls"), allow(unused_variables))] secure: Option<(
            &[&str],
            ServerTls,
        )>,
    ) -> io::Result<SimServer> {
        if addrs.len() != config.servers() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} addresses for {} servers: give one address per server",
                    addrs.len(),
                    config.servers()
                ),
            ));
        }
        let mut listeners = Vec::with_capacity(addrs.len());
        for a in addrs {
            listeners.push(TcpListener::bind(a).await?);
        }
        let bound = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        let mut secure_listeners = Vec::new();
        if let Some((secure_addrs, _)) = &secure {
            if secure_addrs.len() != addrs.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "give one secure address per server",
                ));
            }
            for a in *secure_addrs {
                secure_listeners.push(TcpListener::bind(a).await?);
            }
        }
        let secure_bound = secure_listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        let config = if config.secure_client_ports.is_empty() {
            let ports: Vec<u16> = secure_bound.iter().map(SocketAddr::port).collect();
            config.secure_client_ports(&ports)
        } else {
            config
        };
        // `conf` reports the ports really listened on, unless the configuration names them.
        let config = if config.client_ports.is_empty() {
            let ports: Vec<u16> = bound.iter().map(SocketAddr::port).collect();
            config.client_ports(&ports)
        } else {
            config
        };
        // With a data directory, the model starts from what it kept there.
        let store = config.data_dir.as_deref().map(Store::new);
        let ensemble = match &store {
            Some(store) if store.path.exists() => {
                let snapshot = std::fs::read(&store.path)?;
                Ensemble::restore(config, &snapshot, now()).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", store.path.display()),
                    )
                })?
            }
            _ => Ensemble::new(config, now()),
        };
        let inner = Arc::new(Inner {
            shared: Mutex::new(Shared {
                ensemble,
                store,
                writers: BTreeMap::new(),
                silent: std::collections::BTreeSet::new(),
            }),
            tick: Notify::new(),
        });
        let mut tasks = Vec::new();
        for (server, listener) in listeners.into_iter().enumerate() {
            tasks.push(tokio::spawn(accept_loop(inner.clone(), server, listener)));
        }
        #[cfg(feature = "tls")]
        if let Some((_, tls)) = secure {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config()?);
            for (server, listener) in secure_listeners.into_iter().enumerate() {
                tasks.push(tokio::spawn(tls_accept_loop(
                    inner.clone(),
                    server,
                    listener,
                    acceptor.clone(),
                )));
            }
        }
        tasks.push(tokio::spawn(timer_loop(inner.clone())));
        Ok(SimServer {
            inner,
            addrs: bound,
            secure_addrs: secure_bound,
            tasks,
        })
    }

    /// The address of the first server.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Every server's address, in server order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Every server's TLS address, in server order (empty without TLS).
    pub fn secure_addrs(&self) -> &[SocketAddr] {
        &self.secure_addrs
    }

    /// The connect string naming every server's TLS address, when they serve TLS.
    pub fn secure_connect_string(&self) -> Option<String> {
        (!self.secure_addrs.is_empty()).then(|| {
            self.secure_addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    /// The connect string naming every server (`127.0.0.1:port,...`).
    pub fn connect_string(&self) -> String {
        self.addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A standalone model server on a free loopback port, with the real server's defaults
    /// (and TTL nodes enabled): [`SimServer::bind`] on `127.0.0.1:0`.
    pub async fn start() -> io::Result<SimServer> {
        SimServer::bind("127.0.0.1:0").await
    }

    /// An ensemble of `servers` members, each on a free loopback port, TTL nodes enabled,
    /// node times on the machine's wall clock; the highest id leads.
    pub async fn start_ensemble(servers: usize) -> io::Result<SimServer> {
        let addrs = vec!["127.0.0.1:0"; servers.max(1)];
        let config = Config::ensemble(servers)
            .extended_types(true)
            .wall_clock(wall_clock_now());
        SimServer::bind_with(config, &addrs).await
    }

    /// Kills server `server` (0-based): its connections break and new ones are closed at
    /// once; an ensemble elects a new leader if it was the leader.
    pub fn kill(&self, server: usize) {
        self.with(|zk, now| zk.kill(now, server));
    }

    /// Starts a killed server again. A standalone server keeps its tree and sessions, so
    /// clients that come back within their session timeout resume; a member rejoins.
    pub fn restart(&self, server: usize) {
        self.with(|zk, now| zk.restart(now, server));
    }

    /// Freezes a server until [`SimServer::resume`]: connections stay open, nothing moves
    /// (a long garbage-collection pause).
    pub fn pause(&self, server: usize) {
        self.with(|zk, now| zk.pause(now, server, None));
    }

    /// Unfreezes a paused server.
    pub fn resume(&self, server: usize) {
        self.with(|zk, now| zk.resume(now, server));
    }

    /// Expires `session` now, as the leader does once its timeout passed (Curator's
    /// `KillSession`, Kazoo's `expire_session`): its ephemeral nodes go, its watches fire,
    /// its client hears `Expired`.
    pub fn expire_session(&self, session: i64) {
        self.with(|zk, now| zk.expire_session(now, session));
    }

    /// Closes every connection of `session` from the server's side (Kazoo's
    /// `lose_connection`); the session lives on, and its client reconnects to it. Returns
    /// how many connections closed.
    pub fn drop_connections(&self, session: i64) -> usize {
        self.with(|zk, now| {
            let conns = session_conns(zk, session);
            for c in &conns {
                zk.close_connection(now, *c);
            }
            conns.len()
        })
    }

    /// Makes every connection `session` has now a black hole: bytes either way are lost,
    /// and nothing closes, until the client gives the connection up and reconnects (a
    /// connection opened later carries bytes again). Returns how many connections went
    /// silent.
    pub fn black_hole(&self, session: i64) -> usize {
        let mut shared = self.inner.lock();
        let conns = session_conns(&shared.ensemble, session);
        shared.silent.extend(conns.iter().copied());
        conns.len()
    }

    /// Every transaction the ensemble applied so far, in zxid order: what safety is judged
    /// on.
    pub fn history(&self) -> Vec<crate::Txn> {
        self.with(|zk, _| zk.history().to_vec())
    }

    /// The live sessions' ids.
    pub fn sessions(&self) -> Vec<i64> {
        self.with(|zk, _| zk.sessions())
    }

    /// The node at `path`, as the leader holds it.
    pub fn node(&self, path: &str) -> Option<crate::NodeInfo> {
        self.with(|zk, _| zk.node(path))
    }

    /// The leader's index, while one leads (0 for a standalone server).
    pub fn leader(&self) -> Option<usize> {
        self.with(|zk, _| zk.leader())
    }

    /// Runs `f` on the model at the current time (to inspect it or inject a fault), then
    /// sends out whatever that produced.
    pub fn with<R>(&self, f: impl FnOnce(&mut Ensemble, Instant) -> R) -> R {
        let mut shared = self.inner.lock();
        let out = f(&mut shared.ensemble, now());
        shared.flush();
        drop(shared);
        self.inner.tick.notify_one();
        out
    }
}

impl SimServer {
    /// Stops serving and waits until the listening sockets are closed, so the same
    /// addresses can be bound again at once (a restart on the same data directory).
    /// Dropping the server stops it too, without waiting.
    pub async fn stop(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        self.inner.lock().writers.clear();
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Closing the writers ends every connection task.
        self.inner.lock().writers.clear();
    }
}

async fn accept_loop(inner: Arc<Inner>, server: usize, listener: TcpListener) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        serve_connection(&inner, server, peer, stream);
    }
}

/// Hands a connection to the model and starts moving its bytes.
fn serve_connection<S>(inner: &Arc<Inner>, server: usize, peer: SocketAddr, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (ip, port) = (peer.ip().to_string(), peer.port());
    let (tx, rx) = mpsc::unbounded_channel();
    let conn = {
        let mut shared = inner.lock();
        match shared.ensemble.accept_from(now(), server, &ip, port) {
            Ok(conn) => {
                shared.writers.insert(conn, tx);
                conn
            }
            // A down server: the connection is dropped at once.
            Err(_) => return,
        }
    };
    tokio::spawn(connection(inner.clone(), conn, stream, rx));
}

/// Accepts TLS connections: each handshake runs on its own task, and a connection that
/// completes it is served as any other.
#[cfg(feature = "tls")]
async fn tls_accept_loop(
    inner: Arc<Inner>,
    server: usize,
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (inner, acceptor) = (inner.clone(), acceptor.clone());
        tokio::spawn(async move {
            // A client that fails the handshake is closed, as the real server does.
            if let Ok(Ok(tls)) =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream))
                    .await
            {
                serve_connection(&inner, server, peer, tls);
            }
        });
    }
}

/// Moves one connection's bytes: reads go into the model, the model's output comes back
/// through `rx`.
async fn connection<S>(
    inner: Arc<Inner>,
    conn: ConnId,
    stream: S,
    mut rx: mpsc::UnboundedReceiver<ToClient>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut buf = vec![0u8; 64 * 1024];
    let closed_by_server = loop {
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break false,
                    Ok(n) => n,
                };
                let mut shared = inner.lock();
                if shared.silent.contains(&conn) {
                    continue;
                }
                shared.ensemble.handle_input(now(), conn, &buf[..n]);
                shared.flush();
                drop(shared);
                inner.tick.notify_one();
            }
            msg = rx.recv() => match msg {
                Some(ToClient::Data(data)) => {
                    if writer.write_all(&data).await.is_err() {
                        break false;
                    }
                }
                Some(ToClient::Close) | None => break true,
            },
        }
    };
    if closed_by_server {
        // Whatever was queued before the close goes out first.
        while let Ok(ToClient::Data(data)) = rx.try_recv() {
            let _ = writer.write_all(&data).await;
        }
        let _ = writer.shutdown().await;
    } else {
        let mut shared = inner.lock();
        shared.writers.remove(&conn);
        shared.silent.remove(&conn);
        shared.ensemble.handle_close(now(), conn);
        shared.flush();
    }
}

/// The machine's wall clock, in ms since the Unix epoch, for node times.
pub(crate) fn wall_clock_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The connections carrying `session` now.
fn session_conns(zk: &Ensemble, session: i64) -> Vec<ConnId> {
    (0..zk.len())
        .flat_map(|server| zk.connections(server))
        .filter(|c| zk.session_of(*c) == Some(session))
        .collect()
}

async fn timer_loop(inner: Arc<Inner>) {
    loop {
        let deadline = inner.lock().ensemble.poll_timeout();
        match deadline {
            Some(at) => {
                let at = tokio::time::Instant::from_std(at);
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {
                        let mut shared = inner.lock();
                        shared.ensemble.handle_timeout(now());
                        shared.flush();
                    }
                    () = inner.tick.notified() => {}
                }
            }
            None => inner.tick.notified().await,
        }
    }
}

/// A [`SimServer`] for blocking tests: it serves from a thread of its own, so no runtime
/// is needed around it. Every method of [`SimServer`] is there (through `Deref`).
///
/// ```
/// use zk_sim::BlockingSimServer;
/// let server = BlockingSimServer::start().unwrap();
/// println!("point any client at {}", server.connect_string());
/// assert_eq!(server.leader(), Some(0));
/// ```
pub struct BlockingSimServer {
    server: Option<SimServer>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for BlockingSimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingSimServer")
            .field("server", &self.server)
            .finish()
    }
}

impl BlockingSimServer {
    /// A standalone model server on a free loopback port ([`SimServer::start`]).
    pub fn start() -> io::Result<BlockingSimServer> {
        BlockingSimServer::spawn(|| Box::pin(SimServer::start()))
    }

    /// An ensemble of `servers` members on free loopback ports
    /// ([`SimServer::start_ensemble`]).
    pub fn start_ensemble(servers: usize) -> io::Result<BlockingSimServer> {
        BlockingSimServer::spawn(move || Box::pin(SimServer::start_ensemble(servers)))
    }

    /// A model with `config`, server `i` on `addrs[i]` ([`SimServer::bind_with`]).
    pub fn bind_with(config: Config, addrs: &[&str]) -> io::Result<BlockingSimServer> {
        let addrs: Vec<String> = addrs.iter().map(|a| (*a).to_owned()).collect();
        BlockingSimServer::spawn(move || {
            Box::pin(async move {
                let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
                SimServer::bind_with(config, &refs).await
            })
        })
    }

    fn spawn<F>(make: F) -> io::Result<BlockingSimServer>
    where
        F: FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<SimServer>>>>
            + Send
            + 'static,
    {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("zk-sim".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let server = make().await;
                    let ok = server.is_ok();
                    let _ = ready_tx.send(server);
                    if ok {
                        // Serves until the handle is dropped.
                        let _ = stop_rx.await;
                    }
                });
            })?;
        let server = ready_rx
            .recv()
            .map_err(|_| io::Error::other("the zk-sim thread ended before serving"))??;
        Ok(BlockingSimServer {
            server: Some(server),
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl std::ops::Deref for BlockingSimServer {
    type Target = SimServer;

    fn deref(&self) -> &SimServer {
        self.server.as_ref().expect("present until dropped")
    }
}

impl Drop for BlockingSimServer {
    fn drop(&mut self) {
        // The server's tasks stop first, then its thread.
        self.server = None;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Who must show a certificate to a TLS port (`ssl.clientAuth`).
#[cfg(feature = "tls")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// A certificate is asked for; a client without one still connects.
    Want,
    /// A client without a certificate the trust store signs is refused.
    Need,
}

/// The TLS settings of a secure client port: the server's certificate and key, and the
/// CA certificates client certificates are checked against.
///
/// It speaks TLS 1.2 only unless [`ServerTls::protocols`] says otherwise, as ZooKeeper 3.8
/// does by default (`ssl.protocol=TLSv1.2`).
#[cfg(feature = "tls")]
#[derive(Clone)]
pub struct ServerTls {
    key: Arc<tokio_rustls::rustls::sign::CertifiedKey>,
    verifier: Option<Arc<dyn tokio_rustls::rustls::server::danger::ClientCertVerifier>>,
    provider: Arc<tokio_rustls::rustls::crypto::CryptoProvider>,
    protocols: Vec<TlsProtocol>,
}

#[cfg(feature = "tls")]
impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

#[cfg(feature = "tls")]
impl ServerTls {
    /// From PEM, as ZooKeeper's `ssl.keyStore.type=PEM` and `ssl.trustStore.type=PEM`
    /// read them: `key_store` holds the private key and the certificate chain, the
    /// server's own first; `trust_store` the CA certificates client certificates must
    /// chain to (needed unless `client_auth` is [`ClientAuth::None`]).
    pub fn from_pem(
        key_store: &[u8],
        trust_store: Option<&[u8]>,
        client_auth: ClientAuth,
    ) -> io::Result<ServerTls> {
        let pem = |bytes| TlsStore::new(StoreType::Pem, bytes, "");
        ServerTls::from_stores(pem(key_store), trust_store.map(pem), client_auth)
    }

    /// From Java keystores (JKS, `ssl.keyStore.type=JKS` or a `.jks` file), as ZooKeeper
    /// reads them: `key_store`'s private key entry (its key and certificate chain),
    /// opened with `key_password` (`ssl.keyStore.password`), and `trust_store`'s trusted
    /// certificates.
    pub fn from_jks(
        key_store: &[u8],
        key_password: &str,
        trust_store: Option<&[u8]>,
        client_auth: ClientAuth,
    ) -> io::Result<ServerTls> {
        let key = TlsStore::new(StoreType::Jks, key_store, key_password);
        let trust = trust_store.map(|t| TlsStore::new(StoreType::Jks, t, ""));
        ServerTls::from_stores(key, trust, client_auth)
    }

    /// From a key store and a trust store of any type, as ZooKeeper reads its
    /// `ssl.keyStore.*` and `ssl.trustStore.*` settings: the key store's private key and
    /// certificate chain, and the trust store's trusted certificates (every certificate of
    /// a PEM store; a JKS store's trusted entries; a PKCS#12 store's certificates marked
    /// trusted, as Java's `keytool` writes them).
    pub fn from_stores(
        key_store: TlsStore<'_>,
        trust_store: Option<TlsStore<'_>>,
        client_auth: ClientAuth,
    ) -> io::Result<ServerTls> {
        let (certs, key) = key_store.private_key()?;
        let roots = match trust_store {
            Some(trust) => Some(trust.trusted()?),
            None => None,
        };
        ServerTls::build(certs, key, roots, client_auth)
    }

    /// The TLS versions served (`ssl.enabledProtocols`, else `ssl.protocol`), in place of
    /// TLS 1.2 alone. Fails when `protocols` is empty.
    pub fn protocols(mut self, protocols: &[TlsProtocol]) -> io::Result<ServerTls> {
        if protocols.is_empty() {
            return Err(bad_tls("no TLS version to serve".into()));
        }
        self.protocols = protocols.to_vec();
        Ok(self)
    }

    /// The rustls configuration of these settings.
    fn server_config(&self) -> io::Result<Arc<tokio_rustls::rustls::ServerConfig>> {
        use tokio_rustls::rustls;
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = self
            .protocols
            .iter()
            .map(|p| match p {
                TlsProtocol::Tls12 => &rustls::version::TLS12,
                TlsProtocol::Tls13 => &rustls::version::TLS13,
            })
            .collect();
        let builder = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| bad_tls(e.to_string()))?;
        let builder = match &self.verifier {
            Some(verifier) => builder.with_client_cert_verifier(verifier.clone()),
            None => builder.with_no_client_auth(),
        };
        let key = rustls::sign::SingleCertAndKey::from(self.key.clone());
        Ok(Arc::new(builder.with_cert_resolver(Arc::new(key))))
    }

    fn build(
        certs: Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>,
        key: tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>,
        roots: Option<Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>>,
        client_auth: ClientAuth,
    ) -> io::Result<ServerTls> {
        use tokio_rustls::rustls;
        if certs.is_empty() {
            return Err(bad_tls("the key store holds no certificate".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>> =
            match (client_auth, roots) {
                (ClientAuth::None, _) => None,
                (_, None) => {
                    return Err(bad_tls(
                        "asking clients for certificates needs a trust store".into(),
                    ));
                }
                (auth, Some(certs)) => {
                    let mut roots = rustls::RootCertStore::empty();
                    for cert in &certs {
                        roots
                            .add(cert.clone())
                            .map_err(|e| bad_tls(format!("the trust store: {e}")))?;
                    }
                    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider.clone(),
                    );
                    let verifier = if auth == ClientAuth::Want {
                        verifier.allow_unauthenticated()
                    } else {
                        verifier
                    };
                    let webpki = verifier.build().map_err(|e| bad_tls(e.to_string()))?;
                    // Java takes version-1 client certificates; so does the model.
                    let algs = provider.signature_verification_algorithms;
                    Some(Arc::new(java_tls::V1Tolerant::new(webpki, certs, algs)))
                }
            };
        let key = java_tls::certified_key(certs, key, &provider)
            .map_err(|e| bad_tls(format!("the key does not fit the certificate: {e}")))?;
        let tls = ServerTls {
            key: Arc::new(key),
            verifier,
            provider,
            protocols: vec![TlsProtocol::Tls12],
        };
        // Settings that cannot make a configuration fail now, not at the first bind.
        tls.server_config()?;
        Ok(tls)
    }
}

/// A TLS store file and how to open it: ZooKeeper's `ssl.keyStore.*` or
/// `ssl.trustStore.*` settings, read.
#[cfg(feature = "tls")]
#[derive(Clone, Copy)]
pub struct TlsStore<'a> {
    kind: StoreType,
    bytes: &'a [u8],
    password: &'a str,
}

#[cfg(feature = "tls")]
impl std::fmt::Debug for TlsStore<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStore")
            .field("kind", &self.kind)
            .field("bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "tls")]
type Cert = tokio_rustls::rustls::pki_types::CertificateDer<'static>;

#[cfg(feature = "tls")]
impl<'a> TlsStore<'a> {
    /// The store in `bytes`, of type `kind`, opened with `password`
    /// (`ssl.keyStore.password`, `ssl.trustStore.password`; a PEM store has none).
    pub fn new(kind: StoreType, bytes: &'a [u8], password: &'a str) -> TlsStore<'a> {
        TlsStore {
            kind,
            bytes,
            password,
        }
    }

    /// The private key and its certificate chain, the server's own first.
    fn private_key(
        &self,
    ) -> io::Result<(
        Vec<Cert>,
        tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>,
    )> {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let (key, certs) = match self.kind {
            StoreType::Pem => {
                let certs = Cert::pem_slice_iter(self.bytes)
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad_tls(format!("the key store's certificates: {e}")))?;
                let key = PrivateKeyDer::from_pem_slice(self.bytes)
                    .map_err(|e| bad_tls(format!("the key store's private key: {e}")))?;
                return Ok((certs, key));
            }
            StoreType::Jks => crate::jks::read(self.bytes, self.password)
                .map_err(bad_tls)?
                .private_key
                .ok_or_else(|| bad_tls("the key store holds no private key entry".into()))?,
            StoreType::Pkcs12 => {
                let store = self.pkcs12("the key store")?;
                let (_, chain) = store.private_key_chain().ok_or_else(|| {
                    bad_tls("the key store holds no private key with its certificate".into())
                })?;
                let certs = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
                (chain.key().as_der().to_vec(), certs)
            }
        };
        let certs = certs.into_iter().map(Cert::from).collect();
        Ok((certs, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key))))
    }

    /// The certificates the store trusts.
    fn trusted(&self) -> io::Result<Vec<Cert>> {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        match self.kind {
            StoreType::Pem => Cert::pem_slice_iter(self.bytes)
                .collect::<Result<_, _>>()
                .map_err(|e| bad_tls(format!("the trust store: {e}"))),
            StoreType::Jks => Ok(crate::jks::read(self.bytes, "")
                .map_err(bad_tls)?
                .trusted
                .into_iter()
                .map(Cert::from)
                .collect()),
            StoreType::Pkcs12 => Ok(self
                .pkcs12("the trust store")?
                .entries()
                .filter_map(|(_, entry)| match entry {
                    p12_keystore::KeyStoreEntry::Certificate(c) => {
                        Some(Cert::from(c.as_der().to_vec()))
                    }
                    _ => None,
                })
                .collect()),
        }
    }

    /// The store as PKCS#12, its entries linked as Java links them.
    fn pkcs12(&self, what: &str) -> io::Result<p12_keystore::KeyStore> {
        let policy = p12_keystore::Pkcs12ImportPolicy::Strict;
        p12_keystore::KeyStore::from_pkcs12(self.bytes, self.password, policy).map_err(|e| {
            bad_tls(match e {
                p12_keystore::error::Error::MacError(_) => {
                    format!("{what}'s password is wrong: its integrity check fails")
                }
                e => format!("{what} is not a PKCS#12 store this model reads: {e}"),
            })
        })
    }
}

/// A TLS setting that cannot be used, saying why.
#[cfg(feature = "tls")]
fn bad_tls(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

#[cfg(not(feature = "tls"))]
/// Stands for TLS settings in a build without the `tls` feature.
type ServerTls = std::convert::Infallible;
