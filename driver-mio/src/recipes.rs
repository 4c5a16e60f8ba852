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
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_recipes::Recipe;
use zk_recipes::barrier::{
    Barrier as BarrierMachine, DoubleBarrier as DoubleBarrierMachine, Outcome as BarrierOutcome,
};
use zk_recipes::lease::{
    Lease as LeaseMachine, Options as LeaseOptions, Outcome as LeaseOutcome, live_holder,
};
use zk_recipes::lock::{Acquire, Lock as Machine, Options, Progress, Standing, order_of};
use zk_recipes::party::{Party as PartyMachine, Style as PartyStyle};
use zk_recipes::queue::{
    DEFAULT_PRIORITY, ENTRIES, ENTRY_PREFIX, LockingQueue as LockingQueueMachine,
    Outcome as QueueOutcome, Queue as QueueMachine,
};
use zk_recipes::semaphore::Semaphore as SemaphoreMachine;
use zk_recipes::tree::{Outcome as TreeOutcome, TreeCache as TreeMachine, children_of};
use zk_recipes::watch::{NodeWatch, Outcome as WatchOutcome, Target};

pub use zk_recipes as machines;
pub use zk_recipes::counter::Encoding as CounterEncoding;
pub use zk_recipes::lock::{Flavor, Kind as LockKind, LockState};
pub use zk_recipes::tree::TreeEvent;

use crate::blocking::Client;
use crate::entropy::unique_id;
use crate::{Error, ErrorCode, Result, Stat};
use zk_recipes::host::{Control, Host, Report};

/// What a handle and the IO thread share: the acquisition's progress, and a wake-up for
/// the handle's thread.
#[derive(Debug, Default)]
struct Shared {
    progress: Mutex<(Progress, bool)>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Progress, &mut bool)) {
        if let Ok(mut guard) = self.progress.lock() {
            let (progress, ended) = &mut *guard;
            f(progress, ended);
        }
        self.changed.notify_all();
    }

    /// Waits until `ready` holds or `deadline` passes; `None` when the IO thread let the
    /// machine go first (the session ended).
    fn wait(
        &self,
        deadline: Option<Instant>,
        ready: impl Fn(&Progress) -> bool,
    ) -> std::result::Result<Progress, Option<Progress>> {
        let Ok(mut guard) = self.progress.lock() else {
            return Err(None);
        };
        loop {
            let (progress, ended) = &*guard;
            if ready(progress) {
                return Ok(progress.clone());
            }
            if *ended {
                return Err(None);
            }
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => left,
                    None => return Err(Some(progress.clone())),
                },
                None => Duration::from_secs(3600),
            };
            guard = match self.changed.wait_timeout(guard, wait) {
                Ok((g, _)) => g,
                Err(_) => return Err(None),
            };
        }
    }
}

/// An exclusive, non-reentrant lock on `path`, on the blocking client: the same machine
/// as `zk_tokio::recipes::Lock` ([`zk_recipes::lock::Lock`]), with Kazoo's node layout by
/// default or Curator's ([`Lock::with_flavor`]).
///
/// The machine runs on the client's IO thread, which owns every node it creates: a
/// timed-out acquisition, a dropped guard or a closed handle has its node deleted,
/// retried across lost replies and reconnects until the server confirms it.
///
/// ```no_run
/// use std::time::Duration;
/// use zk_mio::blocking::Client;
/// use zk_mio::recipes::{Lock, LockState};
///
/// let client = Client::connect("127.0.0.1:2181")?;
/// let lock = Lock::new(&client, "/locks/nightly-report");
/// if let Some(guard) = lock.acquire_timeout(Duration::from_secs(5))? {
///     if guard.state() == LockState::Held {
///         println!("holding {} (token {})", guard.node(), guard.fencing_token());
///     }
///     guard.release()?; // returns once the server confirmed the node is gone
/// }
/// # Ok::<(), zk_mio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Lock {
    client: Client,
    options: Options,
}

impl Lock {
    /// A lock at `path` (created when needed, open to everyone).
    pub fn new(client: &Client, path: &str) -> Lock {
        Lock {
            client: client.clone(),
            options: Options::new(path),
        }
    }

    zk_recipes::lock_option_setters!();

    /// Waits for the lock as long as it takes. Fails on an error no retry can fix (no
    /// permission, a closed client); connection loss and session expiry are retried.
    pub fn acquire(&self) -> Result<LockGuard> {
        self.acquire_until(None)?.ok_or(Error::UnexpectedResponse)
    }

    /// Waits for the lock at most `timeout`, connected or not; `None` when it was not
    /// acquired in time (the waiter's node is then removed in the background).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<LockGuard>> {
        self.acquire_until(Some(Instant::now() + timeout))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Result<Option<LockGuard>> {
        let machine = self.options.machine(&unique_id()?)?;
        acquire_with(&self.client, machine, deadline)
    }
}

/// Hands `machine` to the IO thread and waits until it acquires (a guard), times out
/// (`None`) or fails. The machine's own deadline decides; this wait only outlasts it.
fn acquire_with<R>(
    client: &Client,
    machine: R,
    deadline: Option<Instant>,
) -> Result<Option<Guard<R>>>
where
    R: Acquire + Send + 'static,
{
    let shared = Arc::new(Shared::default());
    let (steps, rx) = mpsc::channel::<Control<R>>();
    let session_id = client.session_id();
    let _ = steps.send(Box::new(move |m: &mut R, now| {
        m.acquire(now, session_id, deadline)
    }));
    let progress = shared.clone();
    let report: Report<R> = Box::new(move |machine, outcomes| {
        progress.update(|p, ended| match machine {
            Some(m) => {
                for o in outcomes {
                    p.apply(o);
                }
                p.observe(m);
            }
            None => *ended = true,
        })
    });
    if !client.host(Box::new(Host::new(machine, rx, report))) {
        return Err(Error::Closed);
    }
    let mut guard = Guard {
        client: client.clone(),
        steps,
        shared,
        node: String::new(),
        fencing: 0,
    };
    let progress = match guard.shared.wait(None, Progress::decided) {
        Ok(p) => p,
        Err(_) => return Err(Error::Closed),
    };
    match progress.standing {
        Standing::Held | Standing::Suspended => {
            guard.node = progress.node.unwrap_or_default();
            guard.fencing = progress.fencing;
            Ok(Some(guard))
        }
        Standing::TimedOut => Ok(None),
        Standing::Failed(e) => Err(e.into()),
        Standing::Acquiring | Standing::Lost | Standing::Released => Err(Error::UnexpectedResponse),
    }
}

/// A held lock ([`Lock`]).
pub type LockGuard = Guard<Machine>;

/// A held semaphore lease ([`Semaphore`]).
pub type SemaphoreLease = Guard<SemaphoreMachine>;

/// Something held: a lock ([`LockGuard`]) or a semaphore lease ([`SemaphoreLease`]).
/// Dropping it releases it in the background (the node is deleted, retried until the
/// server confirms it); [`Guard::release`] releases it and waits for that confirmation.
#[must_use = "dropping the guard releases what it holds"]
pub struct Guard<R: Acquire> {
    client: Client,
    steps: Sender<Control<R>>,
    shared: Arc<Shared>,
    node: String,
    fencing: i64,
}

impl<R: Acquire> std::fmt::Debug for Guard<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("node", &self.node)
            .field("fencing", &self.fencing)
            .field("state", &self.state())
            .finish()
    }
}

impl<R: Acquire> Drop for Guard<R> {
    fn drop(&mut self) {
        // The closed channel is the release; the IO thread hears of it at its next turn.
        let (dead, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.steps, dead));
        self.client.poke();
    }
}

impl<R: Acquire> Guard<R> {
    /// The node held: the lock node, or the lease node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// A number that grows with every later holder of this lock (the node's sequence
    /// number), for a resource that can refuse writes from a stale holder.
    pub fn fencing_token(&self) -> i64 {
        self.fencing
    }

    /// Where the lock stands now.
    pub fn state(&self) -> LockState {
        self.shared
            .progress
            .lock()
            .map(|p| if p.1 { LockState::Gone } else { p.0.state() })
            .unwrap_or(LockState::Gone)
    }

    /// Whether the lock is held now: not suspended, not lost.
    pub fn is_held(&self) -> bool {
        self.state() == LockState::Held
    }

    /// Waits at most `timeout` until the state differs from `seen`, and returns the state
    /// then (still `seen` if nothing changed in time).
    pub fn wait_change(&self, seen: LockState, timeout: Duration) -> LockState {
        match self
            .shared
            .wait(Some(Instant::now() + timeout), |p| p.state() != seen)
        {
            Ok(p) => p.state(),
            Err(Some(p)) => p.state(),
            Err(None) => LockState::Gone,
        }
    }

    /// Releases the lock and waits, at most the client's call timeout, until the server
    /// confirmed its node is gone. Past that the release goes on in the background and
    /// this returns [`Error::CallTimeout`].
    pub fn release(self) -> Result<()> {
        let _ = self.steps.send(Box::new(|m: &mut R, now| m.release(now)));
        self.client.poke();
        let limit = self.client.call_timeout();
        match self
            .shared
            .wait(Some(Instant::now() + limit), Progress::settled)
        {
            Ok(p) => match p.standing {
                Standing::Failed(e) => Err(e.into()),
                _ => Ok(()),
            },
            Err(Some(_)) => Err(Error::CallTimeout(limit)),
            // The session ended: the ephemeral node went with it.
            Err(None) => Ok(()),
        }
    }
}

/// A read/write lock: any number of readers, or one writer. A reader waits for every
/// writer that asked before it, so writers are not starved. Kazoo's `ReadLock` and
/// `WriteLock` layout by default, Curator's `InterProcessReadWriteLock` with
/// [`Flavor::Curator`]; both sides are a [`Lock`] of their kind, with the same cancel
/// safety and cleanup.
///
/// ```no_run
/// # fn demo(client: zk_mio::blocking::Client) -> zk_mio::Result<()> {
/// use zk_mio::recipes::ReadWriteLock;
/// let rw = ReadWriteLock::new(&client, "/locks/catalog");
/// let reading = rw.read_lock().acquire()?;
/// // ... read; writers wait, other readers do not ...
/// reading.release()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ReadWriteLock {
    read: Lock,
    write: Lock,
}

impl ReadWriteLock {
    /// A read/write lock at `path`, with Kazoo's names.
    pub fn new(client: &Client, path: &str) -> ReadWriteLock {
        ReadWriteLock::with_flavor(client, path, Flavor::Kazoo)
    }

    /// A read/write lock at `path`, with `flavor`'s names.
    pub fn with_flavor(client: &Client, path: &str, flavor: Flavor) -> ReadWriteLock {
        let side = |kind| Lock::new(client, path).with_flavor(flavor).with_kind(kind);
        ReadWriteLock {
            read: side(LockKind::Read),
            write: side(LockKind::Write),
        }
    }

    /// The read side: shared with other readers.
    pub fn read_lock(&self) -> &Lock {
        &self.read
    }

    /// The write side: alone.
    pub fn write_lock(&self) -> &Lock {
        &self.write
    }
}

impl Lock {
    /// The identifiers of the holder and the waiters, in order (Kazoo's `contenders()`).
    pub fn contenders(&self) -> Result<Vec<Bytes>> {
        let dir = self.options.dir();
        let mut children = match self.client.get_children(dir) {
            Ok(c) => c,
            Err(e) if e.server_code() == Some(ErrorCode::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        children.retain(|c| order_of(c).is_some());
        children.sort_by_key(|c| order_of(c));
        let mut out = Vec::with_capacity(children.len());
        for c in children {
            match self.client.get_data(&format!("{dir}/{c}")) {
                Ok((data, _)) => out.push(data),
                // Left meanwhile.
                Err(e) if e.server_code() == Some(ErrorCode::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// Leader election among contenders for one path: the holder of a [`Lock`] leads, with
/// the lock's cleanup. Kazoo's `Election` layout by default; with
/// [`Election::with_flavor`], Curator's `LeaderSelector` ([`Flavor::Curator`]) or
/// `LeaderLatch` ([`Flavor::CuratorLatch`]).
///
/// A leader whose connection is lost is suspended: the server may expire its session and
/// let the next contender lead before this client can know, so
/// [`Leadership::is_leader`] is false from that moment. Work done under
/// [`Election::run`] should check it before each step that must not happen twice.
///
/// ```no_run
/// use zk_mio::blocking::Client;
/// use zk_mio::recipes::Election;
///
/// let client = Client::connect("127.0.0.1:2181")?;
/// let election = Election::new(&client, "/election/scheduler", "node-a");
/// election.run(|leadership| {
///     while leadership.is_leader() {
///         // ... one step of the leader's work ...
/// #       break;
///     }
/// })?;
/// # Ok::<(), zk_mio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Election {
    lock: Lock,
}

/// Being the leader. It ends with [`Leadership::relinquish`], when dropped (in the
/// background), or with the session.
#[derive(Debug)]
#[must_use = "dropping leadership relinquishes it"]
pub struct Leadership {
    guard: LockGuard,
}

impl Leadership {
    /// Leading now: the session that won is connected and has not been lost.
    pub fn is_leader(&self) -> bool {
        self.guard.is_held()
    }

    /// Where leadership stands: held, suspended or gone.
    pub fn state(&self) -> LockState {
        self.guard.state()
    }

    /// Waits at most `timeout` until the state differs from `seen`, and returns it.
    pub fn wait_change(&self, seen: LockState, timeout: Duration) -> LockState {
        self.guard.wait_change(seen, timeout)
    }

    /// A number that grows with every later leader.
    pub fn fencing_token(&self) -> i64 {
        self.guard.fencing_token()
    }

    /// Steps down and waits (at most the call timeout) until the server confirmed it.
    pub fn relinquish(self) -> Result<()> {
        self.guard.release()
    }
}

impl Election {
    /// An election at `path`; `identifier` tells contenders apart in
    /// [`Election::contenders`].
    pub fn new(client: &Client, path: &str, identifier: impl Into<Bytes>) -> Election {
        Election {
            lock: Lock::new(client, path).with_identifier(identifier),
        }
    }

    /// Names the election's nodes as `flavor`'s library does.
    pub fn with_flavor(self, flavor: Flavor) -> Election {
        Election {
            lock: self.lock.with_flavor(flavor),
        }
    }

    /// Waits until this contender leads.
    pub fn lead(&self) -> Result<Leadership> {
        Ok(Leadership {
            guard: self.lock.acquire()?,
        })
    }

    /// Waits for leadership, runs `work` while leading and steps down after it, as Kazoo's
    /// `Election.run`; `None` if leadership was suspended or lost before `work` could
    /// start.
    pub fn run<T>(&self, work: impl FnOnce(&Leadership) -> T) -> Result<Option<T>> {
        let leadership = self.lead()?;
        let out = leadership.is_leader().then(|| work(&leadership));
        if leadership.is_leader() {
            leadership.relinquish()?;
        }
        // Otherwise the release finishes in the background once the server answers again:
        // waiting for it here would hold the caller for the outage.
        Ok(out)
    }

    /// The contenders' identifiers; the first one leads.
    pub fn contenders(&self) -> Result<Vec<Bytes>> {
        self.lock.contenders()
    }
}

/// A counting semaphore on the blocking client: at most `max_leases` holders at once, the
/// same machine as `zk_tokio::recipes::Semaphore` ([`zk_recipes::semaphore`]), in Kazoo's
/// `Semaphore` layout or Curator's `InterProcessSemaphoreV2` ([`Semaphore::with_flavor`]).
///
/// ```no_run
/// use std::time::Duration;
/// use zk_mio::blocking::Client;
/// use zk_mio::recipes::Semaphore;
///
/// let client = Client::connect("127.0.0.1:2181")?;
/// let slots = Semaphore::new(&client, "/semaphores/db", 4);
/// if let Some(lease) = slots.acquire_timeout(Duration::from_secs(10))? {
///     // ... at most four of these at once ...
///     lease.release()?;
/// }
/// # Ok::<(), zk_mio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    path: String,
    max_leases: u32,
    flavor: Flavor,
    identifier: Bytes,
}

impl Semaphore {
    /// A semaphore at `path` with `max_leases` leases (at least 1).
    pub fn new(client: &Client, path: &str, max_leases: u32) -> Semaphore {
        Semaphore {
            client: client.clone(),
            path: path.to_string(),
            max_leases: max_leases.max(1),
            flavor: Flavor::Kazoo,
            identifier: Bytes::new(),
        }
    }

    /// Lays the semaphore out as `flavor`'s library does.
    pub fn with_flavor(mut self, flavor: Flavor) -> Semaphore {
        self.flavor = flavor;
        self
    }

    /// Data stored in this contender's nodes (Kazoo's identifier).
    pub fn with_identifier(mut self, identifier: impl Into<Bytes>) -> Semaphore {
        self.identifier = identifier.into();
        self
    }

    /// Waits for a lease as long as it takes.
    pub fn acquire(&self) -> Result<SemaphoreLease> {
        self.acquire_until(None)?.ok_or(Error::UnexpectedResponse)
    }

    /// Waits for a lease at most `timeout`, connected or not; `None` when none came.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<SemaphoreLease>> {
        self.acquire_until(Some(Instant::now() + timeout))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Result<Option<SemaphoreLease>> {
        zk_proto::path::validate_path(&self.path)?;
        if self.path == "/" {
            return Err(Error::InvalidRequest(
                "a semaphore needs a path of its own, not /",
            ));
        }
        let machine = SemaphoreMachine::new(
            &self.path,
            &unique_id()?,
            self.max_leases,
            self.flavor,
            self.identifier.clone(),
            crate::Acl::open_unsafe(),
        );
        acquire_with(&self.client, machine, deadline)
    }
}

/// An integer counter at one node: see [`zk_recipes::handles::Counter`].
pub type Counter = zk_recipes::handles::Counter<Client>;

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

/// Being a member of a [`Party`]: dropping it leaves in the background, `release` leaves
/// and waits for the server's confirmation.
pub type Membership = Guard<PartyMachine>;

/// A party on the blocking client, Kazoo's `Party` or, with [`Party::shallow`],
/// `ShallowParty`: the same machine as `zk_tokio::recipes::Party`
/// ([`zk_recipes::party`]). A join whose reply was lost never leaves a second node.
///
/// ```no_run
/// use zk_mio::blocking::Client;
/// use zk_mio::recipes::Party;
///
/// let client = Client::connect("127.0.0.1:2181")?;
/// let party = Party::new(&client, "/workers", "worker-7");
/// let membership = party.join()?;
/// println!("present: {:?}", party.members()?);
/// membership.release()?;
/// # Ok::<(), zk_mio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Party {
    client: Client,
    path: String,
    identifier: String,
    style: PartyStyle,
}

impl Party {
    /// A party at `path`, where this process is known as `identifier`.
    pub fn new(client: &Client, path: &str, identifier: impl Into<String>) -> Party {
        Party {
            client: client.clone(),
            path: path.to_string(),
            identifier: identifier.into(),
            style: PartyStyle::Party,
        }
    }

    /// Kazoo's `ShallowParty` layout: the identifier in the node name.
    pub fn shallow(mut self) -> Party {
        self.style = PartyStyle::Shallow;
        self
    }

    /// Joins the party and waits until the server has the member's node.
    pub fn join(&self) -> Result<Membership> {
        zk_proto::path::validate_path(&self.path)?;
        let machine = PartyMachine::new(
            &self.path,
            &unique_id()?,
            &self.identifier,
            self.style,
            crate::Acl::open_unsafe(),
        );
        acquire_with(&self.client, machine, None)?.ok_or(Error::UnexpectedResponse)
    }

    /// The identifiers of the members present.
    pub fn members(&self) -> Result<Vec<String>> {
        let children = match self.client.get_children(&self.path) {
            Ok(c) => c,
            Err(e) if e.server_code() == Some(ErrorCode::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for child in children {
            let Some(member) = self.style.member_of(&child) else {
                continue;
            };
            match self.style {
                PartyStyle::Shallow => out.push(member.to_string()),
                PartyStyle::Party => {
                    match self.client.get_data(&format!("{}/{child}", self.path)) {
                        Ok((data, _)) => out.push(String::from_utf8_lossy(&data).into_owned()),
                        Err(e) if e.server_code() == Some(ErrorCode::NoNode) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The steering end of a hosted machine, and its outcomes.
type Steering<R> = (Sender<Control<R>>, Receiver<<R as Recipe>::Outcome>);

/// Hosts `machine` on the IO thread with `start` as its first step: the steering end (drop
/// it to make the machine release) and the machine's outcomes, in order.
fn host_outcomes<R>(client: &Client, machine: R, start: Control<R>) -> Result<Steering<R>>
where
    R: Recipe + Send + 'static,
    R::Outcome: Send + 'static,
{
    let (steps, rx) = mpsc::channel::<Control<R>>();
    let (outcomes, answers) = mpsc::channel();
    let _ = steps.send(start);
    let report: Report<R> = Box::new(move |_, found| {
        for o in found {
            let _ = outcomes.send(o);
        }
    });
    if !client.host(Box::new(Host::new(machine, rx, report))) {
        return Err(Error::Closed);
    }
    Ok((steps, answers))
}

/// Waits for the first outcome `pick` takes, until `deadline`: `Ok(None)` when it passed.
fn await_outcome<O, T>(
    answers: &Receiver<O>,
    deadline: Option<Instant>,
    mut pick: impl FnMut(O) -> Option<T>,
) -> Result<Option<T>> {
    loop {
        let next = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                match answers.recv_timeout(left) {
                    Ok(o) => o,
                    Err(mpsc::RecvTimeoutError::Timeout) => return Ok(None),
                    Err(mpsc::RecvTimeoutError::Disconnected) => return Err(Error::Closed),
                }
            }
            None => answers.recv().map_err(|_| Error::Closed)?,
        };
        if let Some(found) = pick(next) {
            return Ok(Some(found));
        }
    }
}

/// A barrier on the blocking client (Kazoo's `Barrier`, Curator's `DistributedBarrier`):
/// while its node exists, [`Barrier::wait`] blocks. The same machine as
/// `zk_tokio::recipes::Barrier` ([`zk_recipes::barrier::Barrier`]): a wait holds across
/// connection loss and session expiry, and its timeout holds while no server answers.
///
/// ```no_run
/// use zk_mio::blocking::Client;
/// use zk_mio::recipes::Barrier;
///
/// let client = Client::connect("127.0.0.1:2181")?;
/// let gate = Barrier::new(&client, "/gates/deploy");
/// gate.create()?;
/// // workers: gate.wait(None)? returns once it is removed
/// gate.remove()?;
/// # Ok::<(), zk_mio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    /// A barrier at `path`.
    pub fn new(client: &Client, path: &str) -> Barrier {
        Barrier {
            client: client.clone(),
            path: path.to_string(),
        }
    }

    fn run(
        &self,
        deadline: Option<Instant>,
        start: impl FnOnce(&mut BarrierMachine, Instant) + Send + 'static,
    ) -> Result<Option<BarrierOutcome>> {
        zk_proto::path::validate_path(&self.path)?;
        let machine = BarrierMachine::new(&self.path, crate::Acl::open_unsafe());
        let (steps, answers) = host_outcomes(&self.client, machine, Box::new(start))?;
        self.client.poke();
        let outcome = await_outcome(&answers, deadline, Some);
        drop(steps);
        self.client.poke();
        match outcome? {
            Some(BarrierOutcome::Failed(e)) => Err(e.into()),
            other => Ok(other),
        }
    }

    /// Raises the barrier (creates its node and any missing ancestor; already raised is
    /// fine), retried across connection loss for at most the client's call timeout.
    pub fn create(&self) -> Result<()> {
        let limit = self.client.call_timeout();
        match self.run(Some(Instant::now() + limit), |m, now| m.raise(now))? {
            Some(_) => Ok(()),
            None => Err(Error::CallTimeout(limit)),
        }
    }

    /// Lowers the barrier, releasing the waiters; the delete is retried across connection
    /// loss for at most the client's call timeout. Already lowered is fine.
    pub fn remove(&self) -> Result<()> {
        let limit = self.client.call_timeout();
        match self.run(Some(Instant::now() + limit), |m, now| m.remove(now))? {
            Some(_) => Ok(()),
            None => Err(Error::CallTimeout(limit)),
        }
    }

    /// Waits until the barrier is down; `false` if `timeout` passed first.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let outcome = self.run(deadline, move |m, now| m.wait(now, deadline))?;
        Ok(outcome == Some(BarrierOutcome::Cleared))
    }
}

/// A double barrier on the blocking client (Kazoo's `DoubleBarrier`, Curator's
/// `DistributedDoubleBarrier`): the same machine as `zk_tokio::recipes::DoubleBarrier`
/// ([`zk_recipes::barrier::DoubleBarrier`]), in the layout both libraries share.
///
/// The IO thread owns the participant's node: a timed-out `enter` or `leave`, or a
/// barrier dropped while inside, has it deleted, retried until the server confirms it.
///
/// ```no_run
/// use zk_mio::blocking::Client;
/// use zk_mio::recipes::DoubleBarrier;
///
/// let client = Client::connect("127.0.0.1:2181")?;
/// let mut round = DoubleBarrier::new(&client, "/rounds/7", 3);
/// round.enter(None)?; // all three are in
/// round.leave(None)?; // all three are out
/// # Ok::<(), zk_mio::Error>(())
/// ```
#[derive(Debug)]
pub struct DoubleBarrier {
    client: Client,
    path: String,
    count: usize,
    flavor: Flavor,
    identifier: Bytes,
    inside: Option<Steering<DoubleBarrierMachine>>,
}

impl DoubleBarrier {
    /// A double barrier at `path` for `count` participants.
    pub fn new(client: &Client, path: &str, count: usize) -> DoubleBarrier {
        DoubleBarrier {
            client: client.clone(),
            path: path.to_string(),
            count: count.max(1),
            flavor: Flavor::Kazoo,
            identifier: Bytes::new(),
            inside: None,
        }
    }

    /// Names the participant's node as Curator (a UUID) or Kazoo (32 hex digits, the
    /// default) does.
    pub fn with_flavor(mut self, flavor: Flavor) -> DoubleBarrier {
        self.flavor = flavor;
        self
    }

    /// What the participant's node holds (empty by default).
    pub fn with_identifier(mut self, identifier: impl Into<Bytes>) -> DoubleBarrier {
        self.identifier = identifier.into();
        self
    }

    /// Whether this participant entered and has not left.
    pub fn is_inside(&self) -> bool {
        self.inside.is_some()
    }

    /// Enters and waits until `count` participants are in; `false` on timeout (the node
    /// is then removed in the background). Entering while inside returns `true` at once.
    pub fn enter(&mut self, timeout: Option<Duration>) -> Result<bool> {
        if self.inside.is_some() {
            return Ok(true);
        }
        zk_proto::path::validate_path(&self.path)?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let machine = DoubleBarrierMachine::new(
            &self.path,
            &unique_id()?,
            self.count,
            self.flavor,
            self.identifier.clone(),
            crate::Acl::open_unsafe(),
        );
        let session = self.client.session_id();
        let start: Control<DoubleBarrierMachine> =
            Box::new(move |m, now| m.enter(now, session, deadline));
        let (steps, answers) = host_outcomes(&self.client, machine, start)?;
        self.client.poke();
        let outcome = await_outcome(&answers, None, |o| match o {
            BarrierOutcome::Entered => Some(Ok(true)),
            BarrierOutcome::TimedOut => Some(Ok(false)),
            BarrierOutcome::Failed(e) => Some(Err(e)),
            _ => None,
        });
        if let Ok(Some(Ok(true))) = outcome {
            self.inside = Some((steps, answers));
            return Ok(true);
        }
        // Timed out or failed: the machine removes the node once it sees its handle gone.
        drop(steps);
        self.client.poke();
        match outcome {
            Ok(Some(Ok(_))) => Ok(false),
            Ok(Some(Err(e))) => Err(e.into()),
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Leaves and waits until every participant left; `false` on timeout (the node is then
    /// removed in the background, and others may still be inside). Leaving without having
    /// entered returns `true` at once.
    pub fn leave(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let Some((steps, answers)) = self.inside.take() else {
            return Ok(true);
        };
        let deadline = timeout.map(|t| Instant::now() + t);
        let _ = steps.send(Box::new(move |m: &mut DoubleBarrierMachine, now| {
            m.leave(now, deadline)
        }));
        self.client.poke();
        let outcome = await_outcome(&answers, None, |o| match o {
            BarrierOutcome::Left => Some(Ok(true)),
            BarrierOutcome::TimedOut => Some(Ok(false)),
            BarrierOutcome::Failed(e) => Some(Err(e)),
            _ => None,
        });
        drop(steps);
        self.client.poke();
        match outcome? {
            Some(Ok(left)) => Ok(left),
            Some(Err(e)) => Err(e.into()),
            None => Ok(false),
        }
    }
}

impl Drop for DoubleBarrier {
    fn drop(&mut self) {
        if let Some(running) = self.inside.take() {
            // The machine releases: the IO thread deletes the node.
            drop(running);
            self.client.poke();
        }
    }
}

/// Maps the outcomes every queue call shares.
fn queue_failure(outcome: QueueOutcome) -> Error {
    match outcome {
        QueueOutcome::Failed(e) => e.into(),
        QueueOutcome::InDoubt => Error::ConnectionLoss,
        QueueOutcome::Lost => Error::SessionExpired,
        _ => Error::UnexpectedResponse,
    }
}

/// The items under `dir` (names starting `entry-`).
fn count_entries(client: &Client, dir: &str) -> Result<usize> {
    match client.get_children(dir) {
        Ok(c) => Ok(c.iter().filter(|n| n.starts_with(ENTRY_PREFIX)).count()),
        Err(e) if e.server_code() == Some(ErrorCode::NoNode) => Ok(0),
        Err(e) => Err(e),
    }
}

/// Kazoo's `Queue` on the blocking client: the same machine as
/// `zk_tokio::recipes::Queue` ([`zk_recipes::queue::Queue`]). Items go by priority (0 to
/// 999, lower first), then in order of arrival; taking one deletes it, so each item goes
/// to at most one taker. A put or take whose reply was lost fails with
/// [`Error::ConnectionLoss`] (it may have landed). Calls without a timeout wait at most
/// the client's call timeout.
///
/// ```no_run
/// use zk_mio::blocking::Client;
/// use zk_mio::recipes::Queue;
///
/// let client = Client::connect("127.0.0.1:2181")?;
/// let jobs = Queue::new(&client, "/queues/jobs");
/// jobs.put("resize image 42")?;
/// if let Some(job) = jobs.get()? {
///     println!("got {job:?}");
/// }
/// # Ok::<(), zk_mio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    path: String,
}

impl Queue {
    /// A queue at `path`.
    pub fn new(client: &Client, path: &str) -> Queue {
        Queue {
            client: client.clone(),
            path: path.to_string(),
        }
    }

    fn run(
        &self,
        limit: Duration,
        start: impl FnOnce(&mut QueueMachine, Instant) + Send + 'static,
    ) -> Result<QueueOutcome> {
        zk_proto::path::validate_path(&self.path)?;
        let machine = QueueMachine::new(&self.path, crate::Acl::open_unsafe());
        let (steps, answers) = host_outcomes(&self.client, machine, Box::new(start))?;
        self.client.poke();
        let outcome = await_outcome(&answers, Some(Instant::now() + limit), Some);
        drop(steps);
        self.client.poke();
        outcome?.ok_or(Error::CallTimeout(limit))
    }

    /// Appends an item with Kazoo's default priority (100).
    pub fn put(&self, data: impl Into<Bytes>) -> Result<()> {
        self.put_with_priority(data, DEFAULT_PRIORITY)
    }

    /// Appends an item with `priority` (0 to 999, lower first).
    pub fn put_with_priority(&self, data: impl Into<Bytes>, priority: u16) -> Result<()> {
        let data = data.into();
        let limit = self.client.call_timeout();
        match self.run(limit, move |m, now| m.put(now, data, priority))? {
            QueueOutcome::Put => Ok(()),
            other => Err(queue_failure(other)),
        }
    }

    /// Takes the first item, if any.
    pub fn get(&self) -> Result<Option<Bytes>> {
        let limit = self.client.call_timeout();
        match self.run(limit, |m, now| m.get(now, false, None))? {
            QueueOutcome::Taken(item) => Ok(Some(item)),
            QueueOutcome::Empty => Ok(None),
            other => Err(queue_failure(other)),
        }
    }

    /// Takes the first item, waiting for one at most `timeout` (connected or not).
    pub fn get_wait(&self, timeout: Duration) -> Result<Option<Bytes>> {
        let deadline = Instant::now() + timeout;
        // The machine's deadline decides; the extra second covers a take under way.
        let limit = timeout + Duration::from_secs(1);
        match self.run(limit, move |m, now| m.get(now, true, Some(deadline))) {
            Ok(QueueOutcome::Taken(item)) => Ok(Some(item)),
            Ok(QueueOutcome::TimedOut | QueueOutcome::Empty) | Err(Error::CallTimeout(_)) => {
                Ok(None)
            }
            Ok(other) => Err(queue_failure(other)),
            Err(e) => Err(e),
        }
    }

    /// The number of items.
    pub fn len(&self) -> Result<usize> {
        count_entries(&self.client, &self.path)
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// Kazoo's `LockingQueue` on the blocking client: the same machine as
/// `zk_tokio::recipes::LockingQueue` ([`zk_recipes::queue::LockingQueue`]). The IO thread
/// owns every claim: a timed-out `get` and a [`QueueItem`] dropped unconsumed have their
/// claim deleted, retried until the server confirms it, so no item is left stuck.
///
/// ```no_run
/// use std::time::Duration;
/// use zk_mio::blocking::Client;
/// use zk_mio::recipes::LockingQueue;
///
/// let client = Client::connect("127.0.0.1:2181")?;
/// let jobs = LockingQueue::new(&client, "/queues/reliable");
/// jobs.put("send invoice 9")?;
/// if let Some(item) = jobs.get(Duration::from_secs(5))? {
///     // ... process item.data; on failure item.release() puts it back ...
///     item.consume()?;
/// }
/// # Ok::<(), zk_mio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LockingQueue {
    client: Client,
    path: String,
}

/// An item claimed from a blocking [`LockingQueue`]. Dropping it puts it back.
#[derive(Debug)]
pub struct QueueItem {
    client: Client,
    running: Option<Steering<LockingQueueMachine>>,
    entry: String,
    /// The item's data.
    pub data: Bytes,
}

impl QueueItem {
    /// The item's node name under `<path>/entries`.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    fn finish(mut self, step: Control<LockingQueueMachine>, wanted: QueueOutcome) -> Result<()> {
        let Some((steps, answers)) = self.running.take() else {
            return Err(Error::Closed);
        };
        let _ = steps.send(step);
        self.client.poke();
        let limit = self.client.call_timeout();
        let outcome = await_outcome(&answers, Some(Instant::now() + limit), |o| {
            (o == wanted
                || matches!(
                    o,
                    QueueOutcome::Failed(_) | QueueOutcome::Lost | QueueOutcome::InDoubt
                ))
            .then_some(o)
        });
        drop(steps);
        self.client.poke();
        match outcome? {
            Some(o) if o == wanted => Ok(()),
            Some(o) => Err(queue_failure(o)),
            None => Err(Error::CallTimeout(limit)),
        }
    }

    /// Removes the item and its claim for good, in one transaction. Fails with
    /// [`Error::SessionExpired`] when the claim went with its session, and with
    /// [`Error::ConnectionLoss`] when the session ended just as the transaction was sent
    /// (it may have landed, or another worker may have taken the item since).
    pub fn consume(self) -> Result<()> {
        self.finish(Box::new(|m, now| m.consume(now)), QueueOutcome::Consumed)
    }

    /// Puts the item back for another worker; returns once the claim is gone.
    pub fn release(self) -> Result<()> {
        self.finish(Box::new(|m, now| m.put_back(now)), QueueOutcome::Released)
    }
}

impl Drop for QueueItem {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            // The machine puts the item back: the IO thread deletes the claim.
            drop(running);
            self.client.poke();
        }
    }
}

impl LockingQueue {
    /// A locking queue at `path`.
    pub fn new(client: &Client, path: &str) -> LockingQueue {
        LockingQueue {
            client: client.clone(),
            path: path.to_string(),
        }
    }

    fn machine(&self) -> Result<LockingQueueMachine> {
        zk_proto::path::validate_path(&self.path)?;
        Ok(LockingQueueMachine::new(
            &self.path,
            &unique_id()?,
            crate::Acl::open_unsafe(),
        ))
    }

    /// Appends an item with Kazoo's default priority (100).
    pub fn put(&self, data: impl Into<Bytes>) -> Result<()> {
        self.put_with_priority(data, DEFAULT_PRIORITY)
    }

    /// Appends an item with `priority` (0 to 999, lower first).
    pub fn put_with_priority(&self, data: impl Into<Bytes>, priority: u16) -> Result<()> {
        let data = data.into();
        let start: Control<LockingQueueMachine> =
            Box::new(move |m, now| m.put(now, data, priority));
        let (steps, answers) = host_outcomes(&self.client, self.machine()?, start)?;
        self.client.poke();
        let limit = self.client.call_timeout();
        let outcome = await_outcome(&answers, Some(Instant::now() + limit), Some);
        drop(steps);
        self.client.poke();
        match outcome? {
            Some(QueueOutcome::Put) => Ok(()),
            Some(other) => Err(queue_failure(other)),
            None => Err(Error::CallTimeout(limit)),
        }
    }

    /// Claims the first item nobody holds, waiting at most `timeout` (connected or not).
    pub fn get(&self, timeout: Duration) -> Result<Option<QueueItem>> {
        let deadline = Instant::now() + timeout;
        let session = self.client.session_id();
        let start: Control<LockingQueueMachine> =
            Box::new(move |m, now| m.get(now, session, Some(deadline)));
        let (steps, answers) = host_outcomes(&self.client, self.machine()?, start)?;
        self.client.poke();
        let outcome = await_outcome(&answers, None, |o| match o {
            QueueOutcome::Claimed { entry, data } => Some(Ok((entry, data))),
            QueueOutcome::TimedOut => Some(Err(None)),
            o @ (QueueOutcome::Failed(_) | QueueOutcome::Lost | QueueOutcome::InDoubt) => {
                Some(Err(Some(o)))
            }
            _ => None,
        });
        match outcome {
            Ok(Some(Ok((entry, data)))) => Ok(Some(QueueItem {
                client: self.client.clone(),
                running: Some((steps, answers)),
                entry,
                data,
            })),
            other => {
                // The machine removes a claim made meanwhile once it sees its handle gone.
                drop(steps);
                self.client.poke();
                match other {
                    Ok(Some(Err(Some(o)))) => Err(queue_failure(o)),
                    Err(e) => Err(e),
                    _ => Ok(None),
                }
            }
        }
    }

    /// Items not yet consumed (claimed or not).
    pub fn len(&self) -> Result<usize> {
        count_entries(&self.client, &format!("{}/{ENTRIES}", self.path))
    }

    /// Whether no item is left.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// Kazoo's `NonBlockingLease` (or, with [`Lease::multi`], `MultiNonBlockingLease`) on the
/// blocking client: the same machine as `zk_tokio::recipes::Lease`
/// ([`zk_recipes::lease`]), sharing the lease with Kazoo services. Obtaining never waits
/// for the lease; it waits at most the client's call timeout for the server.
///
/// ```no_run
/// use std::time::Duration;
/// use zk_mio::blocking::Client;
/// use zk_mio::recipes::Lease;
///
/// let client = Client::connect("127.0.0.1:2181")?;
/// if Lease::new(&client, "/leases/report", "host-a").obtain(Duration::from_secs(60))? {
///     // ... this host produces the report for the next minute ...
/// }
/// # Ok::<(), zk_mio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Lease {
    client: Client,
    options: LeaseOptions,
}

impl Lease {
    /// The lease at `path`, obtained as `identifier` (reuse it to renew).
    pub fn new(client: &Client, path: &str, identifier: &str) -> Lease {
        Lease {
            client: client.clone(),
            options: LeaseOptions::new(path, identifier),
        }
    }

    /// One of `count` leases at `<path>/0` to `<path>/<count - 1>`.
    pub fn multi(client: &Client, path: &str, count: u32, identifier: &str) -> Lease {
        Lease {
            client: client.clone(),
            options: LeaseOptions::multi(path, count, identifier),
        }
    }

    /// Takes or renews the lease for `duration`; `false` while another identifier holds
    /// it (every one of them, for a multi-lease).
    pub fn obtain(&self, duration: Duration) -> Result<bool> {
        Ok(self.obtain_path(duration)?.is_some())
    }

    /// Like [`Lease::obtain`], with the path of the lease taken.
    pub fn obtain_path(&self, duration: Duration) -> Result<Option<String>> {
        let machine = self
            .options
            .machine(&unique_id()?, crate::Acl::open_unsafe())?;
        let session = self.client.session_id();
        let wall = wall_clock();
        let start: Control<LeaseMachine> =
            Box::new(move |m, now| m.obtain(now, session, wall, duration));
        let (steps, answers) = host_outcomes(&self.client, machine, start)?;
        self.client.poke();
        let limit = self.client.call_timeout();
        let outcome = await_outcome(&answers, Some(Instant::now() + limit), Some);
        drop(steps);
        self.client.poke();
        match outcome? {
            Some(LeaseOutcome::Obtained { path }) => Ok(Some(path)),
            Some(LeaseOutcome::Refused) => Ok(None),
            Some(LeaseOutcome::Failed(e)) => Err(e.into()),
            None => Err(Error::CallTimeout(limit)),
        }
    }

    /// The holder of each lease whose end has not passed, by the local clock.
    pub fn holders(&self) -> Result<Vec<Option<String>>> {
        let mut out = Vec::new();
        for node in self.options.holder_paths() {
            out.push(match self.client.get_data(&node) {
                Ok((data, _)) => live_holder(&data, wall_clock()),
                Err(e) if e.server_code() == Some(ErrorCode::NoNode) => None,
                Err(e) => return Err(e),
            });
        }
        Ok(out)
    }
}

/// The wall clock, as the time since the Unix epoch (zero for a clock set before it).
fn wall_clock() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
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
