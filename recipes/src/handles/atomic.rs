//! Curator's `DistributedAtomicLong`.

use zk_client::Error;

use super::{Driver, Job, run_machine};
use crate::atomic::{AtomicLong as Machine, AtomicValue, Change, Outcome};
use crate::lock::{Flavor, Options as LockOptions};

/// How many optimistic writes a change tries before it gives up or is promoted, unless set.
pub const OPTIMISTIC_TRIES: u32 = 10;

/// A shared 64-bit integer (Curator's `DistributedAtomicLong`): 8 bytes, big-endian, at
/// one node, changed with versioned writes, and, with
/// [`AtomicLong::promoted_to_lock`], under Curator's `InterProcessMutex` once the
/// optimistic writes keep losing to other writers. Curator's services and ours change the
/// same value without losing each other's changes.
///
/// Each change reports what it did ([`AtomicValue`]: succeeded, the value before and
/// after, the tries). A write whose reply was lost is checked, not repeated: when nothing
/// can tell whether it landed (another writer may have written the same value at the same
/// version), the call fails with [`Error::ConnectionLoss`] rather than change the value
/// twice. A node holding anything but 8 bytes fails with [`Error::BadData`], unchanged.
/// Dropping a call at any await point is correct: a lock taken for it is released.
#[derive(Debug, Clone)]
pub struct AtomicLong<D> {
    client: D,
    path: String,
    tries: u32,
    promotion: Option<(LockOptions, u32)>,
}

impl<D: Driver> AtomicLong<D> {
    /// The value at `path` (created when missing, with its parents).
    pub fn new(client: &D, path: &str) -> AtomicLong<D> {
        AtomicLong {
            client: client.clone(),
            path: path.to_string(),
            tries: OPTIMISTIC_TRIES,
            promotion: None,
        }
    }

    /// How many optimistic writes a change tries (at least one).
    pub fn with_optimistic_tries(mut self, tries: u32) -> AtomicLong<D> {
        self.tries = tries.max(1);
        self
    }

    /// Once the optimistic writes ran out, takes Curator's `InterProcessMutex` at
    /// `lock_path` and tries up to `tries` writes under it (Curator's `PromotedToLock`).
    pub fn promoted_to_lock(mut self, lock_path: &str, tries: u32) -> AtomicLong<D> {
        let options = LockOptions::new(lock_path).with_flavor(Flavor::Curator);
        self.promotion = Some((options, tries.max(1)));
        self
    }

    /// The value now (0 for a missing node).
    pub fn get(&self) -> D::Call<AtomicValue> {
        self.run(Change::Get)
    }

    /// Adds 1.
    pub fn increment(&self) -> D::Call<AtomicValue> {
        self.run(Change::Add(1))
    }

    /// Subtracts 1.
    pub fn decrement(&self) -> D::Call<AtomicValue> {
        self.run(Change::Add(-1))
    }

    /// Adds `delta` (wrapping, as Java's `long`).
    pub fn add(&self, delta: i64) -> D::Call<AtomicValue> {
        self.run(Change::Add(delta))
    }

    /// Subtracts `delta`.
    pub fn subtract(&self, delta: i64) -> D::Call<AtomicValue> {
        self.run(Change::Add(delta.wrapping_neg()))
    }

    /// Sets it to `value` if no other write came between the read and the write
    /// (Curator's `trySet`).
    pub fn try_set(&self, value: i64) -> D::Call<AtomicValue> {
        self.run(Change::Set(value))
    }

    /// Sets it to `new` if it holds `expected` (Curator's `compareAndSet`).
    pub fn compare_and_set(&self, expected: i64, new: i64) -> D::Call<AtomicValue> {
        self.run(Change::CompareAndSet { expected, new })
    }

    fn run(&self, change: Change) -> D::Call<AtomicValue> {
        self.client.call(self.job(change))
    }

    fn job(&self, change: Change) -> Job<AtomicValue> {
        let machine = Machine::new(&self.path, change, self.tries, self.client.default_acl());
        let machine = match (machine, &self.promotion) {
            (Ok(m), Some((lock, tries))) => match self.client.unique_id() {
                Ok(id) => m.promoted(lock, &id, *tries),
                Err(e) => return Job::ready(Err(e)),
            },
            (m, None) => m,
            (Err(e), _) => Err(e),
        };
        let machine = match machine {
            Ok(m) => m,
            Err(e) => return Job::ready(Err(Error::from(e).at_path(&self.path))),
        };
        let path = self.path.clone();
        let session = self.client.session_id();
        let job = run_machine(
            machine,
            Box::new(move |m: &mut Machine, _| m.start(session)),
            move |o, _| {
                Some(match o {
                    Outcome::Done(v) => Ok(v),
                    Outcome::InDoubt { .. } => Err(Error::ConnectionLoss),
                    Outcome::Unreadable(len) => Err(Error::BadData {
                        path: path.clone(),
                        why: format!("{len} bytes, where a value is 8 (a big-endian i64)"),
                    }),
                    Outcome::Failed(e) => Err(Error::from(e).at_path(&path)),
                })
            },
        );
        if self.promotion.is_some() {
            job
        } else {
            job.bounded()
        }
    }
}
