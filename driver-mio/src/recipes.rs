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
use zk_recipes::queue::{
    DEFAULT_PRIORITY, ENTRIES, ENTRY_PREFIX, LockingQueue as LockingQueueMachine,
    Outcome as QueueOutcome, Queue as QueueMachine,
};
use zk_recipes::tree::{Outcome as TreeOutcome, TreeCache as TreeMachine, children_of};
use zk_recipes::watch::{NodeWatch, Outcome as WatchOutcome, Target};

pub use zk_recipes as machines;
pub use zk_recipes::counter::Encoding as CounterEncoding;
use zk_recipes::handles;
pub use zk_recipes::lock::{Flavor, Kind as LockKind, LockState};
pub use zk_recipes::tree::TreeEvent;

use crate::blocking::Client;
use crate::entropy::unique_id;
use crate::{Error, ErrorCode, Result, Stat};
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
