//! The lock's handles, and what else acquires the same way: the semaphore, the party and
//! the election.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use zk_client::Error;
use zk_proto::records::Acl;

use super::reads::{Listing, list};
use super::{Driver, Job, Steer, Watched, host};
use crate::lock::{
    Acquire, ConnectionPolicy, Flavor, Kind, Lock as Machine, LockState, Options, Progress,
    REVOKE_MESSAGE, Standing,
};
use crate::multi_lock::MultiLock as MultiMachine;
use crate::party::{Party as PartyMachine, Style};
use crate::semaphore::Semaphore as SemaphoreMachine;

/// An exclusive, non-reentrant lock on `path`, with the node layout of Kazoo's `Lock`
/// (the default) or of Curator's `InterProcessMutex` ([`Lock::with_flavor`]), so it can
/// share a path with services that use either library.
///
/// The machine ([`crate::lock::Lock`]) runs beside the session, which owns the lock node:
/// every node it creates is deleted again (retried across lost replies and reconnects
/// until the server confirms it) unless it is handed to the caller in a [`Guard`].
///
/// **Cancel safety.** Dropping an `acquire` call at any point (an async future at any
/// await point, a blocking call that timed out) is correct: a create in flight, or a
/// wait behind other contenders, leaves nothing behind once the server has answered. The
/// deadline of [`Lock::acquire_timeout`] holds even while no server is reachable.
#[derive(Debug, Clone)]
pub struct Lock<D> {
    client: D,
    options: Options,
}

impl<D: Driver> Lock<D> {
    /// A lock at `path` (created when needed, open to everyone).
    pub fn new(client: &D, path: &str) -> Lock<D> {
        Lock {
            client: client.clone(),
            options: Options::new(path),
        }
    }

    crate::lock_option_setters!();

    /// Waits for the lock as long as it takes. Fails on an error no retry can fix (no
    /// permission, a closed client); connection loss and session expiry are retried.
    pub fn acquire(&self) -> D::Call<LockGuard<D>> {
        self.client.call(
            self.acquire_job(None)
                .and_then(|g| g.ok_or(Error::UnexpectedResponse)),
        )
    }

    /// Waits for the lock at most `timeout`, connected or not; `None` when it was not
    /// acquired in time (the waiter's node is then removed in the background).
    pub fn acquire_timeout(&self, timeout: Duration) -> D::Call<Option<LockGuard<D>>> {
        self.client.call(self.acquire_job(Some(timeout)))
    }

    fn acquire_job(&self, timeout: Option<Duration>) -> Job<Option<LockGuard<D>>> {
        match self
            .client
            .unique_id()
            .and_then(|id| self.options.machine(&id).map_err(Error::from))
        {
            Ok(machine) => acquire(&self.client, machine, timeout),
            Err(e) => Job::ready(Err(e)),
        }
    }

    /// Asks the contender whose lock node is `node` to let go (Curator's
    /// `Revoker.attemptRevoke`): writes [`REVOKE_MESSAGE`] into it. A revocable holder
    /// (ours made with [`Lock::revocable`], or Curator's after `makeRevocable`) hears it;
    /// whether it lets go is its own choice. `false` when the node no longer exists.
    pub fn revoke(&self, node: &str) -> D::Call<bool> {
        self.client.call(revoke_job(node))
    }

    /// Asks the holder of the lock now to let go ([`Lock::revoke`] on the first
    /// contender's node); the node asked, `None` when nobody holds the lock.
    pub fn revoke_holder(&self) -> D::Call<Option<String>> {
        self.client.call(Job::plan(RevokeHolder {
            dir: self.options.dir().to_string(),
            holder: None,
            listed: false,
            written: false,
        }))
    }

    /// The identifiers of the holder and the waiters, in order (Kazoo's `contenders()`).
    pub fn contenders(&self) -> D::Call<Vec<Bytes>> {
        let listing = Listing::new(self.options.dir())
            .only(|c| crate::lock::order_of(c).is_some())
            .ordered_by(crate::lock::order_of);
        self.client.call(
            list(listing).and_then(|found| Ok(found.into_iter().map(|(_, data)| data).collect())),
        )
    }
}

/// Writes the revoke message into `node`: `false` when it no longer exists.
fn revoke_job(node: &str) -> Job<bool> {
    let op = zk_client::op::set_data(node, Bytes::from_static(REVOKE_MESSAGE), None);
    Job::op(op)
        .then(|r| match r {
            Ok(_) => Ok(true),
            Err(e) if e.is(zk_proto::ErrorCode::NoNode) => Ok(false),
            Err(e) => Err(e),
        })
        .bounded()
}

/// `revoke_holder`: list the lock's directory, then write the revoke message into the
/// first contender's node.
struct RevokeHolder {
    dir: String,
    holder: Option<String>,
    listed: bool,
    written: bool,
}

impl zk_client::plan::Plan for RevokeHolder {
    type Output = Option<String>;

    fn next_request(&mut self) -> Option<zk_proto::records::Request> {
        if !self.listed {
            return Some(zk_client::op::get_children(&self.dir).into_parts().0);
        }
        let holder = self.holder.as_ref().filter(|_| !self.written)?;
        let op = zk_client::op::set_data(holder, Bytes::from_static(REVOKE_MESSAGE), None);
        Some(op.into_parts().0)
    }

    fn complete(&mut self, reply: zk_client::Reply) -> zk_client::Result<()> {
        if !self.listed {
            self.listed = true;
            let children = match zk_client::reply::children(reply) {
                Err(e) if e.is(zk_proto::ErrorCode::NoNode) => Vec::new(),
                other => other?,
            };
            self.holder = children
                .iter()
                .filter_map(|c| Some((crate::lock::order_of(c)?, c)))
                .min()
                .map(|(_, c)| format!("{}/{c}", self.dir));
            return Ok(());
        }
        self.written = true;
        match zk_client::reply::stat(reply) {
            Ok(_) => Ok(()),
            // Released meanwhile: nobody was asked.
            Err(e) if e.is(zk_proto::ErrorCode::NoNode) => {
                self.holder = None;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn finish(self) -> zk_client::Result<Option<String>> {
        Ok(self.holder)
    }
}

/// Hosts `machine` and completes once it acquired (a guard), timed out (`None`) or failed.
/// Dropping the call before that drops the guard-to-be's [`Steer`]: the host then releases
/// whatever the machine created.
fn acquire<D, R>(client: &D, machine: R, timeout: Option<Duration>) -> Job<Option<Guard<D, R>>>
where
    D: Driver,
    R: Acquire + Send + 'static,
{
    let client = client.clone();
    Job::start(move |hosting, done| {
        let cell = Watched::new((Progress::default(), false));
        let session_id = hosting.session_id();
        let status = cell.clone();
        let steer = host(
            &hosting,
            machine,
            Box::new(move |m: &mut R, now| m.acquire(now, session_id, timeout.map(|t| now + t))),
            move |m, outcomes| {
                status.update(|(progress, ended)| match m {
                    Some(m) => {
                        for o in outcomes {
                            progress.apply(o);
                        }
                        progress.observe(m);
                    }
                    None => *ended = true,
                })
            },
        );
        let weak: Weak<Steer<R>> = Arc::downgrade(&steer);
        let status = cell.clone();
        cell.add(
            move |(progress, ended)| {
                if *ended {
                    return Some(Err(Error::Closed));
                }
                if !progress.decided() {
                    return None;
                }
                Some(match &progress.standing {
                    Standing::Held | Standing::Suspended => match weak.upgrade() {
                        Some(steer) => Ok(Some(Guard {
                            client: client.clone(),
                            steer,
                            status: status.clone(),
                            node: progress.node.clone().unwrap_or_default(),
                            fencing: progress.fencing,
                        })),
                        // The call was dropped as it was decided.
                        None => Err(Error::Closed),
                    },
                    Standing::TimedOut => Ok(None),
                    Standing::Failed(e) => Err(e.clone().into()),
                    Standing::Acquiring | Standing::Lost | Standing::Released => {
                        Err(Error::UnexpectedResponse)
                    }
                })
            },
            |_, _| {},
            done,
        );
        Box::new(steer)
    })
}

/// A held lock: what [`Lock::acquire`] gives (and [`ReadWriteLock`]'s locks).
pub type LockGuard<D> = Guard<D, Machine>;

/// Being the leader: what [`Election::lead`] gives, a held lock with
/// [`Guard::is_leader`] and [`Guard::relinquish`].
pub type Leadership<D> = Guard<D, Machine>;

/// A held semaphore lease: what [`Semaphore::acquire`] gives.
pub type SemaphoreLease<D> = Guard<D, SemaphoreMachine>;

/// Being a member of a party: what [`Party::join`] gives.
pub type Membership<D> = Guard<D, PartyMachine>;

/// Something held: a lock ([`LockGuard`]), a semaphore lease ([`SemaphoreLease`]), a
/// party membership ([`Membership`]), a leadership ([`Leadership`]). Dropping it releases
/// it in the background (the node is deleted, retried until the server confirms it);
/// [`Guard::release`] releases it and waits for that confirmation.
///
/// Dropping is the faster way to let go when nothing waits on the confirmation: a loop
/// that drops its guard and acquires again sends the delete and the next acquisition's
/// requests together, and the server applies one session's requests in order, so a cycle
/// costs one round trip where an awaited release makes it two.
///
/// It reports its standing: [`LockState::Held`], [`LockState::Suspended`] while the
/// connection is lost (the server may expire the session meanwhile), and
/// [`LockState::Gone`] once the session ended or the node was lost; a guard that is gone
/// never comes back: acquire, lead or join again.
///
/// Its writes can be tied to it: [`Guard::set_data`], [`Guard::create`], [`Guard::delete`]
/// and [`Guard::transaction`] are applied by the server only while the guard's node exists
/// (a `multi` that checks it first), and fail with [`Error::NotHeld`] once it does not. A
/// state seen here can be stale (the server may expire the session before the client
/// hears of it); a guarded write cannot.
#[must_use = "dropping the guard releases what it holds"]
pub struct Guard<D, R> {
    pub(super) client: D,
    steer: Arc<Steer<R>>,
    pub(super) status: Watched<(Progress, bool)>,
    pub(super) node: String,
    fencing: i64,
}

impl<D, R> std::fmt::Debug for Guard<D, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("node", &self.node)
            .field("fencing", &self.fencing)
            .finish()
    }
}

pub(super) fn state_of((progress, ended): &(Progress, bool)) -> LockState {
    if *ended {
        LockState::Gone
    } else {
        progress.state()
    }
}

impl<D: Driver, R: Acquire + Send + 'static> Guard<D, R> {
    /// The node held: the lock node, the lease node, the member's node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether another process asked this holder to let go (for a lock made with
    /// [`Lock::revocable`]): Curator's `Revoker`, or [`Lock::revoke`]. Letting go is up to
    /// the holder ([`Guard::release`]).
    pub fn revocation_requested(&self) -> bool {
        self.status.read(|(p, _)| p.revocation_requested)
    }

    /// Completes once another process asked this holder to let go (see
    /// [`Guard::revocation_requested`]); fails with [`Error::NotHeld`] once the guard is
    /// gone without such a request. Dropping the call is correct at any point.
    pub fn revoked(&self) -> D::Call<()> {
        let job = self.status.wait(|s| {
            if s.0.revocation_requested {
                Some(Ok(()))
            } else {
                (state_of(s) == LockState::Gone).then(|| {
                    Err(Error::NotHeld {
                        node: s.0.node.clone().unwrap_or_default(),
                    })
                })
            }
        });
        self.client.call(job)
    }

    /// Every node held: the one of [`Guard::node`], or one per lock of a multi-lock.
    pub fn nodes(&self) -> Vec<String> {
        self.status.read(|(p, _)| p.nodes.clone())
    }

    /// A number that grows with every later holder of this lock (the node's sequence
    /// number), for a resource that can refuse writes from a stale holder.
    pub fn fencing_token(&self) -> i64 {
        self.fencing
    }

    /// Where the lock stands now.
    pub fn state(&self) -> LockState {
        self.status.read(state_of)
    }

    /// Whether the lock is held now: not suspended, not lost.
    pub fn is_held(&self) -> bool {
        self.state() == LockState::Held
    }

    /// Waits until the state differs from `seen`, and returns the new one.
    pub fn changed(&self, seen: LockState) -> D::Call<LockState> {
        self.client.call(self.change_job(seen))
    }

    /// Waits at most `timeout` until the state differs from `seen`, and returns the new
    /// one; `None` when nothing changed in time.
    pub fn changed_timeout(
        &self,
        seen: LockState,
        timeout: Duration,
    ) -> D::Call<Option<LockState>> {
        let job = self
            .change_job(seen)
            .and_then(|s| Ok(Some(s)))
            .limit(timeout, || Ok(None));
        self.client.call(job)
    }

    fn change_job(&self, seen: LockState) -> Job<LockState> {
        self.status.wait(move |s| {
            let now = state_of(s);
            (now != seen).then_some(Ok(now))
        })
    }

    /// Completes when the lock is gone (lost with its session, or ended by an error).
    pub fn lost(&self) -> D::Call<()> {
        let job = self
            .status
            .wait(|s| (state_of(s) == LockState::Gone).then_some(Ok(())));
        self.client.call(job)
    }

    /// Releases what is held and waits until the server confirmed its node is gone (at
    /// most the client's call timeout: past that the release goes on in the background and
    /// the call fails with [`Error::CallTimeout`]). A call dropped first leaves the release
    /// to finish in the background.
    pub fn release(self) -> D::Call<()> {
        let _ = self.steer.send(Box::new(|m: &mut R, now| m.release(now)));
        let job = self
            .status
            .wait(|(progress, ended)| {
                if *ended {
                    // The session ended: the ephemeral node went with it.
                    return Some(Ok(()));
                }
                progress.settled().then(|| match &progress.standing {
                    Standing::Failed(e) => Err(e.clone().into()),
                    _ => Ok(()),
                })
            })
            .keeping(self.steer.clone())
            .bounded();
        self.client.call(job)
    }
}

/// A read/write lock: any number of readers, or one writer. A reader waits for every
/// writer that asked before it, so writers are not starved. Kazoo's `ReadLock` and
/// `WriteLock` layout by default, Curator's `InterProcessReadWriteLock` with
/// [`Flavor::Curator`]; both sides are a [`Lock`] of their kind, with the same cancel
/// safety and cleanup.
#[derive(Debug, Clone)]
pub struct ReadWriteLock<D> {
    read: Lock<D>,
    write: Lock<D>,
}

impl<D: Driver> ReadWriteLock<D> {
    /// A read/write lock at `path`, with Kazoo's names.
    pub fn new(client: &D, path: &str) -> ReadWriteLock<D> {
        ReadWriteLock::with_flavor(client, path, Flavor::Kazoo)
    }

    /// A read/write lock at `path`, with `flavor`'s names.
    pub fn with_flavor(client: &D, path: &str, flavor: Flavor) -> ReadWriteLock<D> {
        let side = |kind| Lock::new(client, path).with_flavor(flavor).with_kind(kind);
        ReadWriteLock {
            read: side(Kind::Read),
            write: side(Kind::Write),
        }
    }

    /// What a lost connection does to either side once held ([`ConnectionPolicy`]).
    pub fn with_connection_policy(self, policy: ConnectionPolicy) -> ReadWriteLock<D> {
        ReadWriteLock {
            read: self.read.with_connection_policy(policy),
            write: self.write.with_connection_policy(policy),
        }
    }

    /// The read side: shared with other readers.
    pub fn read_lock(&self) -> &Lock<D> {
        &self.read
    }

    /// The write side: alone.
    pub fn write_lock(&self) -> &Lock<D> {
        &self.write
    }
}

/// Leader election among contenders for one path: the holder of a [`Lock`] leads, so it
/// has the lock's cancel safety and cleanup. Kazoo's `Election` layout by default; with
/// [`Election::with_flavor`], Curator's `LeaderSelector` ([`Flavor::Curator`]) or
/// `LeaderLatch` ([`Flavor::CuratorLatch`]).
///
/// A leader whose connection is lost is **suspended**: the server may expire its session
/// and let the next contender lead before this client can know. [`Guard::is_leader`] is
/// false from that moment, as Curator treats SUSPENDED: two leaders in server time are
/// worse than a pause. Work done as leader checks it before each step that must not
/// happen twice, or stops when [`Guard::changed`] leaves [`LockState::Held`]. That is the
/// default [`ConnectionPolicy`]; [`Election::with_connection_policy`] chooses another, and
/// the leader's writes to ZooKeeper can be tied to its leadership whatever the policy
/// ([`Guard::transaction`]).
#[derive(Debug, Clone)]
pub struct Election<D> {
    lock: Lock<D>,
}

impl<D: Driver> Election<D> {
    /// An election at `path`; `identifier` tells contenders apart in
    /// [`Election::contenders`].
    pub fn new(client: &D, path: &str, identifier: impl AsRef<[u8]>) -> Election<D> {
        Election {
            lock: Lock::new(client, path).with_identifier(identifier),
        }
    }

    /// Names the election's nodes as `flavor`'s library does.
    pub fn with_flavor(self, flavor: Flavor) -> Election<D> {
        Election {
            lock: self.lock.with_flavor(flavor),
        }
    }

    /// What a lost connection does to a leadership: see [`ConnectionPolicy`] for what
    /// each policy risks. By default a suspended leader is not leading
    /// ([`Guard::is_leader`] is false) until the same session is back.
    pub fn with_connection_policy(self, policy: ConnectionPolicy) -> Election<D> {
        Election {
            lock: self.lock.with_connection_policy(policy),
        }
    }

    /// Waits until this contender leads, as long as it takes.
    pub fn lead(&self) -> D::Call<Leadership<D>> {
        self.lock.acquire()
    }

    /// Waits at most `timeout` to lead; `None` when another still leads then (this
    /// contender's node is removed in the background).
    pub fn lead_timeout(&self, timeout: Duration) -> D::Call<Option<Leadership<D>>> {
        self.lock.acquire_timeout(timeout)
    }

    /// The contenders' identifiers; the first one leads.
    pub fn contenders(&self) -> D::Call<Vec<Bytes>> {
        self.lock.contenders()
    }

    /// The leader's identifier now (Curator's `getLeader`), `None` with no contender.
    pub fn leader(&self) -> D::Call<Option<Bytes>> {
        let listing = Listing::new(self.lock.options.dir())
            .only(|c| crate::lock::order_of(c).is_some())
            .ordered_by(crate::lock::order_of)
            .first(1);
        let job = list(listing).and_then(|found| Ok(found.into_iter().next().map(|(_, d)| d)));
        self.lock.client.call(job)
    }
}

impl<D: Driver> Guard<D, Machine> {
    /// Leading now (for a guard from [`Election::lead`]): the session that won is connected
    /// and has not been lost. The same as [`Guard::is_held`].
    pub fn is_leader(&self) -> bool {
        self.is_held()
    }

    /// Steps down and lets the next contender lead: [`Guard::release`].
    pub fn relinquish(self) -> D::Call<()> {
        self.release()
    }
}

/// A counting semaphore: at most `max_leases` holders at once, in Kazoo's `Semaphore`
/// layout (the default: `max_leases` is stored at `path`, and a semaphore that stores
/// another number is refused) or Curator's `InterProcessSemaphoreV2`
/// ([`Semaphore::with_flavor`]). Waiters take turns on a lock, so they are served in order
/// and only one at a time counts the leases.
///
/// It has the lock's guarantees: dropping an `acquire` call at any point leaves no node
/// behind, a lease is deleted until the server confirms it, the deadline of
/// [`Semaphore::acquire_timeout`] holds during outages, and a lease reports suspension.
#[derive(Debug, Clone)]
pub struct Semaphore<D> {
    client: D,
    path: String,
    max_leases: u32,
    flavor: Flavor,
    identifier: Bytes,
    acl: Vec<Acl>,
}

impl<D: Driver> Semaphore<D> {
    /// A semaphore at `path` with `max_leases` leases (at least 1).
    pub fn new(client: &D, path: &str, max_leases: u32) -> Semaphore<D> {
        Semaphore {
            client: client.clone(),
            path: path.to_string(),
            max_leases: max_leases.max(1),
            flavor: Flavor::Kazoo,
            identifier: Bytes::new(),
            acl: Acl::open_unsafe(),
        }
    }

    /// Lays the semaphore out as `flavor`'s library does.
    pub fn with_flavor(mut self, flavor: Flavor) -> Semaphore<D> {
        self.flavor = flavor;
        self
    }

    /// Data stored in this contender's nodes (Kazoo's identifier, listed by
    /// [`Semaphore::holders`]).
    pub fn with_identifier(mut self, identifier: impl AsRef<[u8]>) -> Semaphore<D> {
        self.identifier = Bytes::copy_from_slice(identifier.as_ref());
        self
    }

    /// The ACL of the semaphore's nodes (open to everyone by default).
    pub fn with_acl(mut self, acl: Vec<Acl>) -> Semaphore<D> {
        self.acl = acl;
        self
    }

    /// Waits for a lease as long as it takes.
    pub fn acquire(&self) -> D::Call<SemaphoreLease<D>> {
        self.client.call(
            self.acquire_job(None)
                .and_then(|g| g.ok_or(Error::UnexpectedResponse)),
        )
    }

    /// Waits for a lease at most `timeout`, connected or not; `None` when none came.
    pub fn acquire_timeout(&self, timeout: Duration) -> D::Call<Option<SemaphoreLease<D>>> {
        self.client.call(self.acquire_job(Some(timeout)))
    }

    fn acquire_job(&self, timeout: Option<Duration>) -> Job<Option<SemaphoreLease<D>>> {
        if let Err(e) = zk_proto::path::validate_path(&self.path) {
            return Job::ready(Err(e.into()));
        }
        if self.path == "/" {
            return Job::ready(Err(Error::InvalidRequest(
                "a semaphore needs a path of its own, not /",
            )));
        }
        let id = match self.client.unique_id() {
            Ok(id) => id,
            Err(e) => return Job::ready(Err(e)),
        };
        let machine = SemaphoreMachine::new(
            &self.path,
            &id,
            self.max_leases,
            self.flavor,
            self.identifier.clone(),
            self.acl.clone(),
        );
        acquire(&self.client, machine, timeout)
    }

    /// The data (identifiers) of the leases held now.
    pub fn holders(&self) -> D::Call<Vec<Bytes>> {
        let dir = match self.flavor {
            Flavor::Kazoo => self.path.clone(),
            _ => format!("{}/leases", self.path),
        };
        self.client.call(
            list(Listing::new(&dir))
                .and_then(|found| Ok(found.into_iter().map(|(_, data)| data).collect())),
        )
    }
}

/// Several locks held as one, all or nothing: Curator's `InterProcessMultiLock`. Each path
/// is a [`Lock`] (Curator's `InterProcessMutex` layout by default, so a Curator service with
/// an `InterProcessMultiLock` or `InterProcessMutex` on the same paths excludes ours); they
/// are taken in the order given, under one deadline, and if one cannot be had the ones
/// taken are released, newest first. Ask for the same locks in the same order everywhere,
/// or a deadline, to avoid deadlocks.
///
/// The guard ([`MultiLockGuard`]) is suspended while any lock is, and gone once any is
/// lost (the others are then released). Its guarded writes ([`Guard::transaction`]) check
/// every lock's node. Dropping an `acquire` call at any await point is correct: whatever
/// was taken is released in the background, retried until the server confirms it.
#[derive(Debug, Clone)]
pub struct MultiLock<D> {
    client: D,
    locks: Vec<Options>,
}

/// Several locks held as one: what [`MultiLock::acquire`] gives. [`Guard::node`] is the
/// last lock's node, [`Guard::nodes`] all of them, and [`Guard::fencing_token`] the first
/// lock's.
pub type MultiLockGuard<D> = Guard<D, MultiMachine>;

impl<D: Driver> MultiLock<D> {
    /// Locks on `paths`, in Curator's layout, taken in this order.
    pub fn new(client: &D, paths: &[&str]) -> MultiLock<D> {
        MultiLock {
            client: client.clone(),
            locks: paths
                .iter()
                .map(|p| Options::new(p).with_flavor(Flavor::Curator))
                .collect(),
        }
    }

    /// Names every lock's nodes as `flavor`'s library does.
    pub fn with_flavor(self, flavor: Flavor) -> MultiLock<D> {
        self.map(|o| o.with_flavor(flavor))
    }

    /// What a lost connection does once held ([`ConnectionPolicy`]).
    pub fn with_connection_policy(self, policy: ConnectionPolicy) -> MultiLock<D> {
        self.map(|o| o.with_connection_policy(policy))
    }

    /// The ACL of every lock's directory and nodes.
    pub fn with_acl(self, acl: Vec<Acl>) -> MultiLock<D> {
        self.map(|o| o.with_acl(acl.clone()))
    }

    fn map(mut self, f: impl Fn(Options) -> Options) -> MultiLock<D> {
        self.locks = self.locks.into_iter().map(f).collect();
        self
    }

    /// Waits for every lock as long as it takes.
    pub fn acquire(&self) -> D::Call<MultiLockGuard<D>> {
        self.client.call(
            self.acquire_job(None)
                .and_then(|g| g.ok_or(Error::UnexpectedResponse)),
        )
    }

    /// Waits for every lock at most `timeout` in all, connected or not; `None` when they
    /// were not all had in time (those taken are released in the background).
    pub fn acquire_timeout(&self, timeout: Duration) -> D::Call<Option<MultiLockGuard<D>>> {
        self.client.call(self.acquire_job(Some(timeout)))
    }

    fn acquire_job(&self, timeout: Option<Duration>) -> Job<Option<MultiLockGuard<D>>> {
        match self
            .client
            .unique_id()
            .and_then(|id| MultiMachine::new(&self.locks, &id).map_err(Error::from))
        {
            Ok(machine) => acquire(&self.client, machine, timeout),
            Err(e) => Job::ready(Err(e)),
        }
    }
}

/// A mutex on a semaphore of one lease: Curator's `InterProcessSemaphoreMutex` (its
/// `<path>/locks` and `<path>/leases` layout, the default) or a Kazoo `Semaphore` with one
/// lease ([`SemaphoreMutex::with_flavor`]). Unlike a [`Lock`], its holder is a lease node
/// that any process can see in [`SemaphoreMutex::holders`], and Curator's services that
/// use the same path exclude ours and are excluded by them. It has the semaphore's
/// guarantees (cancel safety, cleanup, deadlines during outages, suspension), and its
/// guard has guarded writes ([`Guard::transaction`]).
#[derive(Debug, Clone)]
pub struct SemaphoreMutex<D> {
    semaphore: Semaphore<D>,
}

impl<D: Driver> SemaphoreMutex<D> {
    /// A mutex at `path`, in Curator's layout.
    pub fn new(client: &D, path: &str) -> SemaphoreMutex<D> {
        SemaphoreMutex {
            semaphore: Semaphore::new(client, path, 1).with_flavor(Flavor::Curator),
        }
    }

    /// Lays the mutex out as `flavor`'s library lays out a one-lease semaphore.
    pub fn with_flavor(self, flavor: Flavor) -> SemaphoreMutex<D> {
        SemaphoreMutex {
            semaphore: self.semaphore.with_flavor(flavor),
        }
    }

    /// Data stored in the holder's lease node (listed by [`SemaphoreMutex::holders`]).
    pub fn with_identifier(self, identifier: impl AsRef<[u8]>) -> SemaphoreMutex<D> {
        SemaphoreMutex {
            semaphore: self.semaphore.with_identifier(identifier),
        }
    }

    /// The ACL of the mutex's nodes (open to everyone by default).
    pub fn with_acl(self, acl: Vec<Acl>) -> SemaphoreMutex<D> {
        SemaphoreMutex {
            semaphore: self.semaphore.with_acl(acl),
        }
    }

    /// Waits for the mutex as long as it takes.
    pub fn acquire(&self) -> D::Call<SemaphoreLease<D>> {
        self.semaphore.acquire()
    }

    /// Waits for the mutex at most `timeout`, connected or not; `None` when it was not
    /// acquired in time.
    pub fn acquire_timeout(&self, timeout: Duration) -> D::Call<Option<SemaphoreLease<D>>> {
        self.semaphore.acquire_timeout(timeout)
    }

    /// The identifier of the holder's lease, if it is held (a list of at most one).
    pub fn holders(&self) -> D::Call<Vec<Bytes>> {
        self.semaphore.holders()
    }
}

/// Group membership (Kazoo's `Party`, or `ShallowParty` with [`Party::shallow`]): each
/// member is an ephemeral node under `path`, there while its [`Membership`] (from
/// [`Party::join`]) is held and its session lives.
///
/// A membership ends with its session: its state turns [`LockState::Gone`] and
/// [`Guard::lost`] completes. The party does not join again by itself (nor does
/// Kazoo's): call [`Party::join`] again on the new session. While the connection is
/// lost the state is [`LockState::Suspended`], and the node is still there unless the
/// session expires.
#[derive(Debug, Clone)]
pub struct Party<D> {
    client: D,
    path: String,
    identifier: String,
    style: Style,
}

impl<D: Driver> Party<D> {
    /// A party at `path`, where this process is known as `identifier`.
    pub fn new(client: &D, path: &str, identifier: impl Into<String>) -> Party<D> {
        Party {
            client: client.clone(),
            path: path.to_string(),
            identifier: identifier.into(),
            style: Style::Party,
        }
    }

    /// Kazoo's `ShallowParty` layout: the identifier in the node name (it must then be a
    /// valid node name), one listing for every identifier.
    pub fn shallow(mut self) -> Party<D> {
        self.style = Style::Shallow;
        self
    }

    /// Joins the party and waits until the server has the member's node.
    pub fn join(&self) -> D::Call<Membership<D>> {
        let job = match zk_proto::path::validate_path(&self.path)
            .map_err(Error::from)
            .and_then(|()| self.client.unique_id())
        {
            Ok(id) => {
                let machine = PartyMachine::new(
                    &self.path,
                    &id,
                    &self.identifier,
                    self.style,
                    Acl::open_unsafe(),
                );
                acquire(&self.client, machine, None)
                    .and_then(|g| g.ok_or(Error::UnexpectedResponse))
            }
            Err(e) => Job::ready(Err(e)),
        };
        self.client.call(job)
    }

    /// The identifiers of the members present.
    pub fn members(&self) -> D::Call<Vec<String>> {
        let style = self.style;
        let listing = Listing::new(&self.path).only(move |c| style.member_of(c).is_some());
        let job = match style {
            Style::Shallow => list(listing.names_only()).and_then(move |found| {
                Ok(found
                    .iter()
                    .filter_map(|(c, _)| style.member_of(c).map(str::to_string))
                    .collect())
            }),
            Style::Party => list(listing).and_then(|found| {
                Ok(found
                    .into_iter()
                    .map(|(_, data)| String::from_utf8_lossy(&data).into_owned())
                    .collect())
            }),
        };
        self.client.call(job)
    }

    /// How many members are present.
    pub fn len(&self) -> D::Call<usize> {
        let style = self.style;
        let listing = Listing::new(&self.path)
            .only(move |c| style.member_of(c).is_some())
            .names_only();
        self.client
            .call(list(listing).and_then(|found| Ok(found.len())))
    }

    /// Whether no member is present.
    pub fn is_empty(&self) -> D::Call<bool> {
        let style = self.style;
        let listing = Listing::new(&self.path)
            .only(move |c| style.member_of(c).is_some())
            .names_only();
        self.client
            .call(list(listing).and_then(|found| Ok(found.is_empty())))
    }
}
