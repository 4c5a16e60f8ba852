//! Guarded writes on a guard: writes the server applies only while the guard's node exists.

use bytes::Bytes;
use zk_client::{CreateOptions, Error, MultiBuilder, Op, Reply};
use zk_proto::records::{Acl, OpResult, Stat};

use super::lock::{Guard, state_of};
use super::{Driver, Job};
use crate::guarded;
use crate::lock::{Acquire, LockState, Progress};

/// A transaction tied to a [`Guard`]: the server applies it, atomically, only while the
/// guard's node still exists, so only while the lock, lease, leadership or membership is
/// held in the server's own order of events (see [`crate::guarded`]). Made by
/// [`Guard::transaction`]; add operations as on a client's transaction, then `commit`.
///
/// `commit` fails with [`Error::NotHeld`] once the guard's node is gone (nothing was
/// applied), and with [`Error::Transaction`] when one of the added operations failed (its
/// index counts only the operations added here). Like any write, a commit whose reply was
/// lost ([`Error::ConnectionLoss`]) may or may not have been applied, but if it was, it was
/// applied while the guard was held.
#[must_use = "a transaction does nothing until committed"]
pub struct GuardedTransaction<D> {
    client: D,
    status: super::Watched<(Progress, bool)>,
    default_acl: Vec<Acl>,
    ops: MultiBuilder,
}

impl<D> std::fmt::Debug for GuardedTransaction<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedTransaction")
            .field("ops", &self.ops)
            .finish()
    }
}

impl<D: Driver> GuardedTransaction<D> {
    zk_client::transaction_builder_methods!();

    /// Sends the transaction: applied whole while the guard's node exists, not at all
    /// otherwise. Each added operation's result, in order.
    ///
    /// A guard already known to be gone ([`LockState::Gone`]) fails at once, without a
    /// request. A suspended one still sends: the server, not this client's view of its
    /// connection, decides whether the node is there. Dropping the call (an async future
    /// at any await point) is correct; the request may still be applied, guarded all the
    /// same.
    pub fn commit(self) -> D::Call<Vec<OpResult>> {
        let job = commit_job(&self.status, self.ops);
        self.client.call(job)
    }
}

fn commit_job(status: &super::Watched<(Progress, bool)>, ops: MultiBuilder) -> Job<Vec<OpResult>> {
    if let Err(e) = ops.validate() {
        return Job::ready(Err(e));
    }
    let (state, nodes) = status.read(|s| (state_of(s), s.0.nodes.clone()));
    if state == LockState::Gone || nodes.is_empty() {
        let node = nodes.first().cloned().unwrap_or_default();
        return Job::ready(Err(Error::NotHeld { node }));
    }
    let request = guarded::request(&nodes, ops);
    let paths = guarded::paths(&request, nodes.len());
    Job::op(Op::<Reply>::new(request, Ok))
        .then(move |reply| guarded::decode(&nodes, &paths, reply?))
        .bounded()
}

impl<D: Driver, R: Acquire + Send + 'static> Guard<D, R> {
    /// A transaction the server applies only while this guard's node exists: see
    /// [`GuardedTransaction`]. Creates without an ACL get the client's default ACL.
    ///
    /// ```
    /// use zk_client::CreateOptions;
    /// use zk_proto::records::OpResult;
    /// use zk_recipes::handles::{Driver, LockGuard};
    ///
    /// // On either client: `.await?` the call on zk_tokio, `?` on zk_mio::blocking.
    /// fn record<D: Driver>(guard: &LockGuard<D>) -> D::Call<Vec<OpResult>> {
    ///     // Applied only while the lock is still held, in the server's order of events.
    ///     guard
    ///         .transaction()
    ///         .set_data("/ledger/head", "42", None)
    ///         .create("/ledger/entries/42", "payload", &CreateOptions::persistent())
    ///         .commit()
    /// }
    /// ```
    pub fn transaction(&self) -> GuardedTransaction<D> {
        GuardedTransaction {
            client: self.client.clone(),
            status: self.status.clone(),
            default_acl: self.client.default_acl(),
            ops: MultiBuilder::default(),
        }
    }

    /// Writes `path`'s data (at `version`, `None`: any) only while this guard's node
    /// exists; the new Stat. [`Error::NotHeld`] once it is gone. See
    /// [`Guard::transaction`].
    pub fn set_data(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        version: Option<i32>,
    ) -> D::Call<Stat> {
        let mut ops = MultiBuilder::default();
        ops.set_data(path, data.into(), version);
        let job = commit_job(&self.status, ops).and_then(|mut results| match results.pop() {
            Some(OpResult::SetData(stat)) => Ok(stat),
            _ => Err(Error::UnexpectedResponse),
        });
        self.client.call(job)
    }

    /// Creates `path` only while this guard's node exists; the path created (with its
    /// sequence number, for a sequential mode). [`Error::NotHeld`] once it is gone. See
    /// [`Guard::transaction`].
    pub fn create(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        options: &CreateOptions,
    ) -> D::Call<String> {
        let mut ops = MultiBuilder::default();
        ops.create(path, data.into(), options, &self.client.default_acl());
        let job = commit_job(&self.status, ops).and_then(|mut results| match results.pop() {
            Some(OpResult::Create(c)) => Ok(c.path),
            Some(OpResult::Create2(c)) => Ok(c.path),
            _ => Err(Error::UnexpectedResponse),
        });
        self.client.call(job)
    }

    /// Deletes `path` (at `version`, `None`: any) only while this guard's node exists.
    /// [`Error::NotHeld`] once it is gone. See [`Guard::transaction`].
    pub fn delete(&self, path: &str, version: Option<i32>) -> D::Call<()> {
        let mut ops = MultiBuilder::default();
        ops.delete(path, version);
        let job = commit_job(&self.status, ops).and_then(|_| Ok(()));
        self.client.call(job)
    }
}
