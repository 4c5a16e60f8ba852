//! Recipes on the blocking client: [`zk_recipes`]' machines, run on the IO thread beside
//! their session.
//!
//! A recipe handle hands its machine to the IO thread, which feeds it the session's
//! events as they are read (no thread or channel per request) and submits what it asks
//! for. The IO thread, not the caller, owns what the machine created: a dropped handle
//! makes the machine release, and the IO thread drives it until the server confirmed
//! that nothing is left.
//!
//! In a `mio` loop of your own around a [`crate::Connection`], run the machine itself
//! ([`machines`], the `zk-recipes` crate) with [`machines::Driven`], which keeps its request
//! ids: hand it every session event first, then let it submit. The lock below is held
//! once `Outcome::Acquired` comes out, and released (the server confirmed) at
//! `Outcome::Released`:
//!
//! ```no_run
//! use std::time::Instant;
//! use mio::{Events, Poll, Token};
//! use zk_mio::recipes::machines::lock::{Lock, Outcome};
//! use zk_mio::recipes::machines::{Driven, Recipe};
//! use zk_mio::{Acl, Config, Connection};
//!
//! let mut poll = Poll::new()?;
//! let mut zk = Connection::new(Config::new("127.0.0.1:2181")?, poll.registry(), Token(0), Instant::now())?;
//! let id = zk_mio::unique_id()?; // unique per contender: finds our node after a lost reply
//! let mut lock = Driven::new(Lock::new("/locks/job", &id, Acl::open_unsafe()));
//! let mut started = false;
//! let mut events = Events::with_capacity(64);
//! loop {
//!     poll.poll(&mut events, zk.timeout(Instant::now()))?;
//!     let now = Instant::now();
//!     for event in &events {
//!         zk.handle_event(event, now);
//!     }
//!     zk.handle_timeout(now);
//!     lock.handle_timeout(now);
//!     if !started && zk.session().state().is_connected() {
//!         lock.machine_mut().acquire(now, zk.session().session_id(), None);
//!         started = true;
//!     }
//!     while let Some(event) = zk.poll_event() {
//!         let session_id = zk.session().session_id();
//!         if let Some(other) = lock.handle_event(now, event, session_id) {
//!             // not the lock's: your own calls' replies, state changes, ...
//!             let _ = other;
//!         }
//!     }
//!     let mut outcomes = Vec::new();
//!     lock.flush(now, |request| zk.submit(now, request), |o| outcomes.push(o));
//!     for outcome in outcomes {
//!         match outcome {
//!             Outcome::Acquired { fencing, .. } => {
//!                 println!("held, token {fencing}");
//!                 lock.machine_mut().release(now); // ... after the work
//!             }
//!             Outcome::Released => return Ok(()),
//!             other => println!("{other:?}"),
//!         }
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use zk_recipes::tree::{Outcome as TreeOutcome, TreeCache as TreeMachine, children_of};
use zk_recipes::watch::{NodeWatch, Outcome as WatchOutcome, Target};

pub use zk_recipes as machines;
pub use zk_recipes::counter::Encoding as CounterEncoding;
use zk_recipes::handles;
pub use zk_recipes::lock::{Flavor, Kind as LockKind, LockState};
pub use zk_recipes::tree::TreeEvent;

use crate::blocking::Client;
use crate::{Error, Result, Stat};
use zk_recipes::host::{Control, Host, Report};

/// An integer counter at one node: see [`handles::Counter`].
pub type Counter = handles::Counter<Client>;
/// An exclusive lock: see [`handles::Lock`].
pub type Lock = handles::Lock<Client>;
/// A read/write lock: see [`handles::ReadWriteLock`].
pub type ReadWriteLock = handles::ReadWriteLock<Client>;
/// Something held (a lock, a lease, a membership, a leadership): see [`handles::Guard`].
pub type Guard<R> = handles::Guard<Client, R>;
/// A held lock.
pub type LockGuard = Guard<zk_recipes::lock::Lock>;
/// Leader election: see [`handles::Election`].
pub type Election = handles::Election<Client>;
/// Being the leader: a [`LockGuard`] from [`handles::Election::lead`].
pub type Leadership = LockGuard;
/// A counting semaphore: see [`handles::Semaphore`].
pub type Semaphore = handles::Semaphore<Client>;
/// A held semaphore lease.
pub type SemaphoreLease = Guard<zk_recipes::semaphore::Semaphore>;
/// Group membership: see [`handles::Party`].
pub type Party = handles::Party<Client>;
/// Being a member of a [`Party`].
pub type Membership = Guard<zk_recipes::party::Party>;
/// A barrier: see [`handles::Barrier`].
pub type Barrier = handles::Barrier<Client>;
/// A double barrier: see [`handles::DoubleBarrier`].
pub type DoubleBarrier = handles::DoubleBarrier<Client>;
/// A queue: see [`handles::Queue`].
pub type Queue = handles::Queue<Client>;
/// A queue whose items are claimed before they are consumed: see [`handles::LockingQueue`].
pub type LockingQueue = handles::LockingQueue<Client>;
/// An item claimed from a [`LockingQueue`].
pub type QueueItem = handles::QueueItem<Client>;
/// A lease that never waits: see [`handles::Lease`].
pub type Lease = handles::Lease<Client>;

/// The latest outcome of a hosted watch machine, for the thread that runs its callback.
#[derive(Default)]
struct Latest {
    slot: Mutex<(Option<WatchOutcome>, bool)>,
    changed: Condvar,
}

/// Runs a watch machine on the IO thread and its callback on a thread of its own, in
/// order, latest value first: values overtaken while the callback runs are skipped.
struct Follower {
    client: Client,
    steps: Sender<Control<NodeWatch>>,
}

impl Follower {
    fn start(
        client: &Client,
        path: &str,
        target: Target,
        mut deliver: impl FnMut(WatchOutcome) + Send + 'static,
    ) -> Follower {
        let latest = Arc::new(Latest::default());
        let (steps, rx) = mpsc::channel::<Control<NodeWatch>>();
        let _ = steps.send(Box::new(|m: &mut NodeWatch, now| m.start(now)));
        let slot = latest.clone();
        let report: Report<NodeWatch> = Box::new(move |machine, outcomes| {
            if let Ok(mut s) = slot.slot.lock() {
                match machine {
                    Some(_) => {
                        if let Some(last) = outcomes.into_iter().last() {
                            s.0 = Some(last);
                        }
                    }
                    None => s.1 = true,
                }
            }
            slot.changed.notify_all();
        });
        let hosted = client.host(Box::new(Host::new(
            NodeWatch::new(path, target),
            rx,
            report,
        )));
        if !hosted {
            deliver(WatchOutcome::Failed(zk_proto::session::Error::Closed));
        } else {
            let spawned = std::thread::Builder::new()
                .name("zk-watch".into())
                .spawn(move || {
                    loop {
                        let next = {
                            let Ok(mut s) = latest.slot.lock() else {
                                return;
                            };
                            loop {
                                if let Some(o) = s.0.take() {
                                    break o;
                                }
                                if s.1 {
                                    return;
                                }
                                s = match latest.changed.wait(s) {
                                    Ok(s) => s,
                                    Err(_) => return,
                                };
                            }
                        };
                        let last = matches!(next, WatchOutcome::Failed(_));
                        deliver(next);
                        if last {
                            return;
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start a watch's callback thread");
            }
        }
        Follower {
            client: client.clone(),
            steps,
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let (dead, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.steps, dead));
        self.client.poke();
    }
}

/// The data of one node, Kazoo's `DataWatch` on the blocking client: calls `f` with
/// `Ok(Some((data, stat)))` while the node exists and `Ok(None)` while it does not, first
/// with the value now and then after every change, through reconnects and a new session.
/// A bad path, a node that may not be read or a closed client comes as one `Err`, and the
/// calls stop. `f` runs on a thread of this watch, calls in order; a slow `f` gets the
/// latest value (overtaken ones are skipped). Dropping the watch stops it.
///
/// ```no_run
/// use zk_mio::blocking::Client;
/// use zk_mio::recipes::DataWatch;
///
/// let client = Client::connect("127.0.0.1:2181")?;
/// let _watch = DataWatch::new(&client, "/app/config", |value| match value {
///     Ok(Some((data, stat))) => println!("config v{}: {} bytes", stat.version, data.len()),
///     Ok(None) => println!("no config yet"),
///     Err(e) => eprintln!("watch ended: {e}"),
/// });
/// # Ok::<(), zk_mio::Error>(())
/// ```
pub struct DataWatch {
    _follower: Follower,
}

impl std::fmt::Debug for DataWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataWatch").finish_non_exhaustive()
    }
}

impl DataWatch {
    /// Starts following `path`'s data, calling `f` with each value.
    pub fn new(
        client: &Client,
        path: &str,
        mut f: impl FnMut(Result<Option<(Bytes, Stat)>>) + Send + 'static,
    ) -> DataWatch {
        let follower = Follower::start(client, path, Target::Data, move |o| match o {
            WatchOutcome::Data(v) => f(Ok(v)),
            WatchOutcome::Failed(e) => f(Err(e.into())),
            WatchOutcome::Children(_) => {}
        });
        DataWatch {
            _follower: follower,
        }
    }
}

/// The children of one node, Kazoo's `ChildrenWatch` on the blocking client: calls `f`
/// with `Ok(Some((names, stat)))` (names sorted; `stat.cversion` moves with every child
/// created or deleted, so a child that left and came back shows as a call) and `Ok(None)`
/// while the node does not exist; otherwise as [`DataWatch`].
pub struct ChildrenWatch {
    _follower: Follower,
}

impl std::fmt::Debug for ChildrenWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildrenWatch").finish_non_exhaustive()
    }
}

impl ChildrenWatch {
    /// Starts following `path`'s children, calling `f` with each list.
    pub fn new(
        client: &Client,
        path: &str,
        mut f: impl FnMut(Result<Option<(Vec<String>, Stat)>>) + Send + 'static,
    ) -> ChildrenWatch {
        let follower = Follower::start(client, path, Target::Children, move |o| match o {
            WatchOutcome::Children(v) => f(Ok(v)),
            WatchOutcome::Failed(e) => f(Err(e.into())),
            WatchOutcome::Data(_) => {}
        });
        ChildrenWatch {
            _follower: follower,
        }
    }
}

/// How many changes a [`TreeCache`] keeps for a reader that does not keep up; past it the
/// reader hears [`TreeEvent::Lagged`] (the mirror itself stays current).
pub const TREE_EVENT_BACKLOG: usize = 1024;

type Mirror = Arc<Mutex<std::collections::BTreeMap<String, (Bytes, Stat)>>>;

/// A mirror of a subtree on the blocking client (Curator's `CuratorCache`): the same
/// machine as the async one ([`zk_recipes::tree`]), on the IO thread. One persistent
/// recursive watch on the root (ZooKeeper 3.6 and later); every event is followed by a
/// read of its node, and after every reconnection the subtree is read again and only the
/// differences are reported. Dropping the cache stops it.
///
/// ```no_run
/// use std::time::Duration;
/// use zk_mio::blocking::Client;
/// use zk_mio::recipes::TreeCache;
///
/// let client = Client::connect("127.0.0.1:2181")?;
/// let cache = TreeCache::start(&client, "/config")?;
/// println!("{} nodes", cache.len());
/// while let Some(change) = cache.next_event(Duration::from_secs(1)) {
///     println!("{change:?}: {:?}", cache.get("/config/flags"));
/// }
/// # Ok::<(), zk_mio::Error>(())
/// ```
pub struct TreeCache {
    client: Client,
    mirror: Mirror,
    events: Receiver<TreeEvent>,
    lagged: Arc<std::sync::atomic::AtomicBool>,
    steps: Option<Sender<Control<TreeMachine>>>,
}

impl std::fmt::Debug for TreeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeCache")
            .field("nodes", &self.len())
            .finish()
    }
}

impl TreeCache {
    /// Starts mirroring `root` and waits (at most the client's call timeout) for the first
    /// full read.
    pub fn start(client: &Client, root: &str) -> Result<TreeCache> {
        zk_proto::path::validate_path(root)?;
        let mirror: Mirror = Arc::default();
        let lagged = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, events) = mpsc::sync_channel(TREE_EVENT_BACKLOG);
        let (first_tx, first) =
            mpsc::channel::<std::result::Result<(), zk_proto::session::Error>>();
        let (steps, rx) = mpsc::channel::<Control<TreeMachine>>();
        let session = client.session_id();
        let _ = steps.send(Box::new(move |m: &mut TreeMachine, now| {
            m.start(now, session)
        }));
        let (m, l) = (mirror.clone(), lagged.clone());
        let mut first_tx = Some(first_tx);
        let report: Report<TreeMachine> = Box::new(move |_, found| {
            for o in found {
                let event = match o {
                    TreeOutcome::Added(path, data, stat) => {
                        lock_mirror(&m).insert(path.clone(), (data, stat));
                        TreeEvent::Added(path)
                    }
                    TreeOutcome::Updated(path, data, stat) => {
                        lock_mirror(&m).insert(path.clone(), (data, stat));
                        TreeEvent::Updated(path)
                    }
                    TreeOutcome::Removed(path) => {
                        lock_mirror(&m).remove(&path);
                        TreeEvent::Removed(path)
                    }
                    TreeOutcome::Initialized => TreeEvent::Initialized,
                    TreeOutcome::Resynced => TreeEvent::Resynced,
                    TreeOutcome::Failed(e) => {
                        if let Some(tx) = first_tx.take() {
                            let _ = tx.send(Err(e));
                        }
                        continue;
                    }
                };
                let first = event == TreeEvent::Initialized;
                if tx.try_send(event).is_err() {
                    l.store(true, std::sync::atomic::Ordering::Release);
                }
                // After the event is queued: the starter drains up to it.
                if first && let Some(tx) = first_tx.take() {
                    let _ = tx.send(Ok(()));
                }
            }
        });
        if !client.host(Box::new(Host::new(TreeMachine::new(root), rx, report))) {
            return Err(Error::Closed);
        }
        client.poke();
        let limit = client.call_timeout();
        match first.recv_timeout(limit) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(mpsc::RecvTimeoutError::Timeout) => return Err(Error::CallTimeout(limit)),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(Error::Closed),
        }
        // The first read's changes are the mirror's content: the stream starts after them.
        while let Ok(e) = events.try_recv() {
            if e == TreeEvent::Initialized {
                break;
            }
        }
        lagged.store(false, std::sync::atomic::Ordering::Release);
        Ok(TreeCache {
            client: client.clone(),
            mirror,
            events,
            lagged,
            steps: Some(steps),
        })
    }

    /// A node of the mirror: its data and Stat.
    pub fn get(&self, path: &str) -> Option<(Bytes, Stat)> {
        lock_mirror(&self.mirror).get(path).cloned()
    }

    /// The names of a node's children in the mirror.
    pub fn children(&self, path: &str) -> Vec<String> {
        children_of(&lock_mirror(&self.mirror), path)
    }

    /// Every node of the mirror, by path.
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, (Bytes, Stat)> {
        lock_mirror(&self.mirror).clone()
    }

    /// The number of nodes mirrored.
    pub fn len(&self) -> usize {
        lock_mirror(&self.mirror).len()
    }

    /// Whether the mirror is empty (the root does not exist).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next change, waiting at most `timeout`; `None` when none came (or the cache
    /// stopped). A reader more than [`TREE_EVENT_BACKLOG`] changes behind hears
    /// [`TreeEvent::Lagged`] instead of what was dropped.
    pub fn next_event(&self, timeout: Duration) -> Option<TreeEvent> {
        if self.lagged.swap(false, std::sync::atomic::Ordering::AcqRel) {
            while self.events.try_recv().is_ok() {}
            return Some(TreeEvent::Lagged);
        }
        self.events.recv_timeout(timeout).ok()
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        // Without its steering end the machine stops.
        drop(self.steps.take());
        self.client.poke();
    }
}

fn lock_mirror(
    m: &Mirror,
) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, (Bytes, Stat)>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
