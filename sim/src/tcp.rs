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
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

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
    writers: BTreeMap<ConnId, mpsc::UnboundedSender<ToClient>>,
}

impl Shared {
    /// Hands every output of the model to the connections' writers.
    fn flush(&mut self) {
        while let Some(out) = self.ensemble.poll_output() {
            match out {
                Output::Transmit { conn, data } => {
                    if let Some(w) = self.writers.get(&conn) {
                        let _ = w.send(ToClient::Data(data));
                    }
                }
                Output::Close { conn } => {
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
    /// are enabled) listening on `addr` (`"127.0.0.1:0"` for any free port).
    pub async fn bind(addr: &str) -> io::Result<SimServer> {
        SimServer::bind_with(Config::standalone().extended_types(true), &[addr]).await
    }

    /// A model with `config`, server `i` listening on `addrs[i]`. There must be one
    /// address per server.
    pub async fn bind_with(config: Config, addrs: &[&str]) -> io::Result<SimServer> {
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
        // `conf` reports the ports really listened on, unless the configuration names them.
        let config = if config.client_ports.is_empty() {
            let ports: Vec<u16> = bound.iter().map(SocketAddr::port).collect();
            config.client_ports(&ports)
        } else {
            config
        };
        let inner = Arc::new(Inner {
            shared: Mutex::new(Shared {
                ensemble: Ensemble::new(config, now()),
                writers: BTreeMap::new(),
            }),
            tick: Notify::new(),
        });
        let mut tasks = Vec::new();
        for (server, listener) in listeners.into_iter().enumerate() {
            tasks.push(tokio::spawn(accept_loop(inner.clone(), server, listener)));
        }
        tasks.push(tokio::spawn(timer_loop(inner.clone())));
        Ok(SimServer {
            inner,
            addrs: bound,
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

    /// The connect string naming every server (`127.0.0.1:port,...`).
    pub fn connect_string(&self) -> String {
        self.addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
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
                Err(_) => continue,
            }
        };
        tokio::spawn(connection(inner.clone(), conn, stream, rx));
    }
}

/// Moves one connection's bytes: reads go into the model, the model's output comes back
/// through `rx`.
async fn connection(
    inner: Arc<Inner>,
    conn: ConnId,
    stream: TcpStream,
    mut rx: mpsc::UnboundedReceiver<ToClient>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = vec![0u8; 64 * 1024];
    let closed_by_server = loop {
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break false,
                    Ok(n) => n,
                };
                let mut shared = inner.lock();
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
        shared.ensemble.handle_close(now(), conn);
        shared.flush();
    }
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
