//! Recipe handles, defined once for every driver.
//!
//! A handle ([`Lock`], [`Counter`], ...) is what an application holds: it starts machines of
//! this crate on its client's session and hands back what they report. Each of its calls is
//! written here once, as a [`Job`]; a driver runs jobs in its own calling convention
//! through [`Driver::call`]. On the async client a call is a future (`.await` it); on the
//! blocking client it is the [`Result`] itself. So both clients have the same handles, with
//! the same methods, names and semantics, and a new call is added here alone.
//!
//! The driver hosts every machine beside its session ([`crate::host`]), so replies, watch
//! events and state changes reach it in socket order, as in the simulations. The host, not
//! the caller, owns what a machine created on the server: a handle, guard or call dropped at
//! any point makes its machine release, and the host drives it until the server confirmed
//! that nothing is left.

mod atomic;
mod barrier;
mod cell;
mod counter;
mod discovery;
mod guarded;
mod job;
mod lease;
mod lock;
mod partitioner;
mod patient;
mod persistent;
mod protected;
mod queue;
mod reads;
mod shared;
mod tree;
mod watch;

use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::time::Duration;

pub use atomic::{AtomicLong, OPTIMISTIC_TRIES};
pub use barrier::{Barrier, DoubleBarrier};
pub use cell::Watched;
pub use counter::Counter;
pub use discovery::{
    DOWN_THRESHOLD, DOWN_TIMEOUT, Registration, ServiceCache, ServiceDiscovery, ServiceProvider,
};
pub use guarded::GuardedTransaction;
pub use job::{Done, DynPlan, Job, JobKind, Keep, Limit, Start};
pub use lease::Lease;
pub use lock::{
    Election, Guard, Leadership, Lock, LockGuard, Membership, MultiLock, MultiLockGuard, Party,
    ReadWriteLock, Semaphore, SemaphoreLease, SemaphoreMutex,
};
pub use partitioner::SetPartitioner;
pub use patient::PatientChildrenWatch;
pub use persistent::{GroupMember, PersistentNode};
pub use protected::{create_protected, delete_guaranteed};
pub use queue::{LockingQueue, Queue, QueueItem};
pub use shared::{SharedCount, SharedValue, Versioned};
pub use tree::{EVENT_BACKLOG, TreeCache, TreeNode};
pub use watch::{ChildrenWatch, DataWatch, Node};

use crate::Recipe;
use crate::host::{Control, Host, Hosted, Report};
use zk_client::Result;

/// What a recipe handle needs of its client's session: somewhere to host machines.
/// Object safe, so a running job can hold it.
pub trait Hosting: Send + Sync {
    /// Hands `machine` to the session's host (its connection task or IO thread); false
    /// when the session is over (the machine is dropped, and its report hears `None`).
    fn host(&self, machine: Box<dyn Hosted>) -> bool;
    /// Gives the host a turn: a hosted machine has steps waiting, or lost its handle.
    fn poke(&self);
    /// The session's id now (0 before the first connection).
    fn session_id(&self) -> i64;
    /// The ACL the client gives nodes created without one.
    fn default_acl(&self) -> Vec<zk_proto::records::Acl>;
}

/// A client that recipe handles run on: the async client, the blocking client.
pub trait Driver: Hosting + Clone + std::fmt::Debug + 'static {
    /// What a call returns: on `zk_tokio::Client`, `zk_tokio::recipes::Call<T>`, a future
    /// of `Result<T>` (`.await` it; dropping it at any await point is correct); on
    /// `zk_mio::blocking::Client`, the `Result<T>` itself. So `lock.acquire()` is
    /// `lock.acquire().await?` on the one and `lock.acquire()?` on the other.
    type Call<T: Send + 'static>;

    /// Runs `job` in this client's calling convention.
    fn call<T: Send + 'static>(&self, job: Job<T>) -> Self::Call<T>;

    /// What the client takes from the operating system: random bits and the wall clock.
    const OS: zk_client::Os;

    /// A fresh id, unique across processes (from the operating system's entropy), for the
    /// nodes a machine names.
    fn unique_id(&self) -> Result<String> {
        Self::OS.unique_id()
    }

    /// The wall clock, as time since the Unix epoch (the lease compares it with what other
    /// processes wrote).
    fn wall_clock(&self) -> Duration {
        (Self::OS.wall_clock)()
    }

    /// Runs `run` where this client runs callbacks (watch callbacks, state listeners): one
    /// at a time, in the order handed over, never on the thread or task that drives the
    /// session, so a slow callback delays other callbacks but never the session.
    fn callback(&self, run: Box<dyn FnOnce() + Send>);

    /// This client as [`Hosting`], for a job's start.
    fn hosting(&self) -> Arc<dyn Hosting>
    where
        Self: Sized,
    {
        Arc::new(self.clone())
    }
}

/// A handle's way to its hosted machine. Each step sent gives the host a turn, and so does
/// dropping the last `Steer`, which makes the machine release what it holds.
pub struct Steer<R> {
    steps: Option<mpsc::Sender<Control<R>>>,
    hosting: Arc<dyn Hosting>,
}

impl<R> std::fmt::Debug for Steer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steer")
            .field("open", &self.steps.is_some())
            .finish()
    }
}

impl<R> Steer<R> {
    /// Asks the machine for a step; false when the machine is gone.
    pub fn send(&self, step: Control<R>) -> bool {
        let sent = self.steps.as_ref().is_some_and(|s| s.send(step).is_ok());
        self.hosting.poke();
        sent
    }
}

impl<R> Drop for Steer<R> {
    fn drop(&mut self) {
        // The channel closes first, so the turn this asks for sees the handle gone.
        self.steps = None;
        self.hosting.poke();
    }
}

/// Hosts `machine` on `hosting`'s session: `start` runs first, then every step sent through
/// the returned [`Steer`]. `observe` hears each turn's outcomes with the machine, and
/// `None` once the host let the machine go.
pub fn host<R>(
    hosting: &Arc<dyn Hosting>,
    machine: R,
    start: Control<R>,
    observe: impl FnMut(Option<&R>, Vec<R::Outcome>) + Send + 'static,
) -> Arc<Steer<R>>
where
    R: Recipe + Send + 'static,
{
    host_with(hosting, machine, start, |_| Box::new(observe))
}

/// Like [`host`], with the report made knowing (weakly) the machine's [`Steer`], so what
/// it reports can hold the machine (a guard) without keeping it alive on its own.
fn host_with<R>(
    hosting: &Arc<dyn Hosting>,
    machine: R,
    start: Control<R>,
    report: impl FnOnce(Weak<Steer<R>>) -> Report<R>,
) -> Arc<Steer<R>>
where
    R: Recipe + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let _ = tx.send(start);
    let steer = Arc::new(Steer {
        steps: Some(tx),
        hosting: hosting.clone(),
    });
    let report = report(Arc::downgrade(&steer));
    // A closed session drops the machine with its report, which hears `None`.
    hosting.host(Box::new(Host::new(machine, rx, report)));
    steer
}

/// A job that hosts `machine` and completes with what `finish` makes of its outcomes: it is
/// called with each outcome, and with `None` after each turn; the first `Some` it returns
/// completes the job. The machine is released when the call is dropped or completes,
/// unless `finish` kept its [`Steer`] (it gets a weak one) in what it returned.
pub fn hosted<R, T>(
    machine: R,
    start: Control<R>,
    mut finish: impl FnMut(&R, Option<R::Outcome>, &Weak<Steer<R>>) -> Option<Result<T>>
    + Send
    + 'static,
) -> Job<T>
where
    R: Recipe + Send + 'static,
    T: Send + 'static,
{
    Job::start(move |hosting, done| {
        let mut done = Some(done);
        let steer = host_with(&hosting, machine, start, move |weak| {
            Box::new(move |m: Option<&R>, outcomes: Vec<R::Outcome>| {
                let Some(m) = m else {
                    if let Some(d) = done.take() {
                        d.send(Err(zk_client::Error::Closed));
                    }
                    return;
                };
                for o in outcomes.into_iter().map(Some).chain([None]) {
                    if done.as_ref().is_none_or(|d| !d.wanted()) {
                        done = None;
                        return;
                    }
                    if let Some(r) = finish(m, o, &weak)
                        && let Some(d) = done.take()
                    {
                        d.send(r);
                    }
                }
            })
        });
        Box::new(steer)
    })
}

/// A hosted machine's outcomes not yet taken, in order, and whether the host let the
/// machine go.
pub(crate) struct Backlog<O> {
    items: std::collections::VecDeque<O>,
    ended: bool,
}

/// A machine hosted for a call: its steering (weak: the call or what it made holds it) and
/// its backlog of outcomes.
pub(crate) struct Running<R: Recipe> {
    steer: Weak<Steer<R>>,
    backlog: Watched<Backlog<R::Outcome>>,
}

impl<R: Recipe + Send + 'static> Running<R>
where
    R::Outcome: Send,
{
    /// The machine, to hold on in what the call returns; `None` when the call is gone.
    pub(crate) fn hold(&self) -> Option<Held<R>> {
        Some(Held {
            steer: self.steer.upgrade()?,
            backlog: self.backlog.clone(),
        })
    }
}

/// A hosted machine kept beyond the call that started it (a queue item, a barrier
/// participant inside): dropping it makes the machine release.
pub(crate) struct Held<R: Recipe> {
    steer: Arc<Steer<R>>,
    backlog: Watched<Backlog<R::Outcome>>,
}

impl<R: Recipe> std::fmt::Debug for Held<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held").field("steer", &self.steer).finish()
    }
}

impl<R: Recipe + Send + 'static> Held<R>
where
    R::Outcome: Send + 'static,
{
    /// Sends `step`, then completes with the first outcome `pick` decides on.
    pub(crate) fn then<T: Send + 'static>(
        self,
        step: Control<R>,
        pick: impl FnMut(R::Outcome) -> Option<Result<T>> + Send + 'static,
    ) -> Job<T> {
        let _ = self.steer.send(step);
        next_outcome(&self.backlog, pick).keeping(self.steer)
    }
}

fn next_outcome<O: Send + 'static, T: Send + 'static>(
    backlog: &Watched<Backlog<O>>,
    mut pick: impl FnMut(O) -> Option<Result<T>> + Send + 'static,
) -> Job<T> {
    backlog.wait(move |b| {
        while let Some(o) = b.items.pop_front() {
            if let Some(r) = pick(o) {
                return Some(r);
            }
        }
        b.ended.then_some(Err(zk_client::Error::Closed))
    })
}

/// A job that hosts `machine` (`start` first) and completes with the first outcome `pick`
/// decides on; `pick` sees the [`Running`] machine, to hold it in what it returns.
pub(crate) fn run_machine<R, T>(
    machine: R,
    start: Control<R>,
    mut pick: impl FnMut(R::Outcome, &Running<R>) -> Option<Result<T>> + Send + 'static,
) -> Job<T>
where
    R: Recipe + Send + 'static,
    R::Outcome: Send + 'static,
    T: Send + 'static,
{
    Job::start(move |hosting, done| {
        let backlog = Watched::new(Backlog {
            items: std::collections::VecDeque::new(),
            ended: false,
        });
        let report = backlog.clone();
        let steer = host(&hosting, machine, start, move |m, outcomes| {
            report.update(|b| match m {
                Some(_) => b.items.extend(outcomes),
                None => b.ended = true,
            })
        });
        let running = Running {
            steer: Arc::downgrade(&steer),
            backlog: backlog.clone(),
        };
        backlog.add(
            move |b| {
                while let Some(o) = b.items.pop_front() {
                    if let Some(r) = pick(o, &running) {
                        return Some(r);
                    }
                }
                b.ended.then_some(Err(zk_client::Error::Closed))
            },
            |_, _| {},
            done,
        );
        Box::new(steer)
    })
}

/// Names every recipe handle for one client type, in the module where it is invoked: the
/// one list a driver keeps (`zk_recipes::handles_for!(Client);`). A handle added here is
/// on every client at once.
///
/// It also gives the client its [`Hosting`], from two methods the client has: `command`,
/// which carries a [`zk_client::driver::Command`] to the session's loop and says whether
/// the session is still there, and `session_id`.
#[macro_export]
macro_rules! handles_for {
    ($client:ty) => {
        impl $crate::handles::Hosting for $client {
            fn host(&self, machine: Box<dyn $crate::host::Hosted>) -> bool {
                self.command($crate::__client::driver::Command::Host(machine))
            }
            fn poke(&self) {
                self.command($crate::__client::driver::Command::Poke);
            }
            fn session_id(&self) -> i64 {
                <$client>::session_id(self)
            }
            fn default_acl(&self) -> Vec<$crate::__proto::records::Acl> {
                <$client>::default_acl(self).to_vec()
            }
        }

        impl $client {
            /// Creates a node in Curator's protected mode (`withProtection()`): its name
            /// carries a unique id (`<parent>/_c_<uuid>-<name>`, a sequence number after
            /// it for a sequential mode), so a create whose reply was lost is found again
            /// by that id, after a `sync`, instead of being made twice. Returns the path
            /// created. `CreateOptions::with_parents` makes missing parents.
            ///
            /// Dropping the call before its result is ready (an async future at any await
            /// point, a blocking call past its call timeout) deletes the node it made,
            /// retried until the server confirms it; once the result is ready, the node is
            /// the caller's.
            pub fn create_protected(
                &self,
                path: &str,
                data: impl Into<$crate::__bytes::Bytes>,
                options: &$crate::__client::CreateOptions,
            ) -> <$client as $crate::handles::Driver>::Call<String> {
                let job = $crate::handles::create_protected(self, path, data.into(), options);
                <$client as $crate::handles::Driver>::call(self, job)
            }

            /// Deletes a node at `version` (`None`: any) as Curator's `guaranteed()` does:
            /// sent again after every lost reply, connection loss and expired session until
            /// the server answers it. A node already gone when a retry arrives counts as
            /// deleted; `NoNode` on the first attempt, `BadVersion` or `NotEmpty` fail the
            /// call. Dropping the call, or a call timeout, leaves the delete going on in the
            /// background while the client is open.
            pub fn delete_guaranteed(
                &self,
                path: &str,
                version: Option<i32>,
            ) -> <$client as $crate::handles::Driver>::Call<()> {
                let job = $crate::handles::delete_guaranteed(path, version);
                <$client as $crate::handles::Driver>::call(self, job)
            }
        }

        pub use $crate::counter::CounterEncoding;
        pub use $crate::handles::{EVENT_BACKLOG, Node, TreeNode};
        pub use $crate::lock::{Acquire, ConnectionPolicy, Flavor, LockKind, LockState};
        pub use $crate::tree::TreeEvent;

        pub use $crate::handles::Versioned;
        /// A watched, versioned value at one node (Curator's `SharedValue`): see
        /// [`zk_recipes::handles::SharedValue`].
        pub type SharedValue = $crate::handles::SharedValue<$client>;
        /// A watched, versioned count at one node (Curator's `SharedCount`): see
        /// [`zk_recipes::handles::SharedCount`].
        pub type SharedCount = $crate::handles::SharedCount<$client>;
        pub use $crate::discovery::{
            ServiceInstance, ServiceType, Strategy, UriPart, Value as JsonValue,
        };
        /// Service discovery (Curator's `ServiceDiscovery`): see
        /// [`zk_recipes::handles::ServiceDiscovery`].
        pub type ServiceDiscovery = $crate::handles::ServiceDiscovery<$client>;
        /// A registered service instance: see [`zk_recipes::handles::Registration`].
        pub type Registration = $crate::handles::Registration<$client>;
        /// A service's instances mirrored locally: see [`zk_recipes::handles::ServiceCache`].
        pub type ServiceCache = $crate::handles::ServiceCache<$client>;
        /// Picks a service's instance: see [`zk_recipes::handles::ServiceProvider`].
        pub type ServiceProvider = $crate::handles::ServiceProvider<$client>;
        pub use $crate::partitioner::State as PartitionState;
        /// A set of items split among a party's members (Kazoo's `SetPartitioner`): see
        /// [`zk_recipes::handles::SetPartitioner`].
        pub type SetPartitioner = $crate::handles::SetPartitioner<$client>;
        /// A node's children once they stop changing (Kazoo's `PatientChildrenWatch`): see
        /// [`zk_recipes::handles::PatientChildrenWatch`].
        pub type PatientChildrenWatch = $crate::handles::PatientChildrenWatch<$client>;
        pub use $crate::atomic::AtomicValue;
        /// A shared 64-bit integer (Curator's `DistributedAtomicLong`): see
        /// [`zk_recipes::handles::AtomicLong`].
        pub type AtomicLong = $crate::handles::AtomicLong<$client>;
        /// A node kept in place (Curator's `PersistentNode`): see
        /// [`zk_recipes::handles::PersistentNode`].
        pub type PersistentNode = $crate::handles::PersistentNode<$client>;
        /// Group membership (Curator's `GroupMember`): see
        /// [`zk_recipes::handles::GroupMember`].
        pub type GroupMember = $crate::handles::GroupMember<$client>;
        /// An integer counter at one node: see [`zk_recipes::handles::Counter`].
        pub type Counter = $crate::handles::Counter<$client>;
        /// An exclusive lock: see [`zk_recipes::handles::Lock`].
        pub type Lock = $crate::handles::Lock<$client>;
        /// A read/write lock: see [`zk_recipes::handles::ReadWriteLock`].
        pub type ReadWriteLock = $crate::handles::ReadWriteLock<$client>;
        /// Something held (a lock, a semaphore lease, a membership, a leadership): see
        /// [`zk_recipes::handles::Guard`].
        pub type Guard<R> = $crate::handles::Guard<$client, R>;
        /// A transaction applied only while a guard is held: see
        /// [`zk_recipes::handles::GuardedTransaction`].
        pub type GuardedTransaction = $crate::handles::GuardedTransaction<$client>;
        /// A held lock: see [`zk_recipes::handles::LockGuard`].
        pub type LockGuard = $crate::handles::LockGuard<$client>;
        /// Leader election: see [`zk_recipes::handles::Election`].
        pub type Election = $crate::handles::Election<$client>;
        /// Being the leader: see [`zk_recipes::handles::Leadership`].
        pub type Leadership = $crate::handles::Leadership<$client>;
        /// A counting semaphore: see [`zk_recipes::handles::Semaphore`].
        pub type Semaphore = $crate::handles::Semaphore<$client>;
        /// Several locks held as one (Curator's `InterProcessMultiLock`): see
        /// [`zk_recipes::handles::MultiLock`].
        pub type MultiLock = $crate::handles::MultiLock<$client>;
        /// Held locks of a multi-lock: see [`zk_recipes::handles::MultiLockGuard`].
        pub type MultiLockGuard = $crate::handles::MultiLockGuard<$client>;
        /// A mutex on a one-lease semaphore (Curator's `InterProcessSemaphoreMutex`): see
        /// [`zk_recipes::handles::SemaphoreMutex`].
        pub type SemaphoreMutex = $crate::handles::SemaphoreMutex<$client>;
        /// A held semaphore lease: see [`zk_recipes::handles::SemaphoreLease`].
        pub type SemaphoreLease = $crate::handles::SemaphoreLease<$client>;
        /// Group membership: see [`zk_recipes::handles::Party`].
        pub type Party = $crate::handles::Party<$client>;
        /// Being a member of a party: see [`zk_recipes::handles::Membership`].
        pub type Membership = $crate::handles::Membership<$client>;
        /// A barrier: see [`zk_recipes::handles::Barrier`].
        pub type Barrier = $crate::handles::Barrier<$client>;
        /// A double barrier: see [`zk_recipes::handles::DoubleBarrier`].
        pub type DoubleBarrier = $crate::handles::DoubleBarrier<$client>;
        /// A queue: see [`zk_recipes::handles::Queue`].
        pub type Queue = $crate::handles::Queue<$client>;
        /// A queue whose items are claimed before they are consumed: see
        /// [`zk_recipes::handles::LockingQueue`].
        pub type LockingQueue = $crate::handles::LockingQueue<$client>;
        /// An item claimed from a locking queue.
        pub type QueueItem = $crate::handles::QueueItem<$client>;
        /// A lease that never waits: see [`zk_recipes::handles::Lease`].
        pub type Lease = $crate::handles::Lease<$client>;
        /// A node's data, at once and after every change: see
        /// [`zk_recipes::handles::DataWatch`].
        pub type DataWatch = $crate::handles::DataWatch<$client>;
        /// A node's children, at once and after every change: see
        /// [`zk_recipes::handles::ChildrenWatch`].
        pub type ChildrenWatch = $crate::handles::ChildrenWatch<$client>;
        /// A local mirror of a subtree: see [`zk_recipes::handles::TreeCache`].
        pub type TreeCache = $crate::handles::TreeCache<$client>;
    };
}
