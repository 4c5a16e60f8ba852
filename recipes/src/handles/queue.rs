//! The queues' handles.

use std::time::Duration;

use bytes::Bytes;
use zk_client::{Error, Result};
use zk_proto::records::Acl;

use super::reads::{Listing, list};
use super::{Driver, Held, Job, run_machine};
use crate::queue::{
    DEFAULT_PRIORITY, ENTRIES, ENTRY_PREFIX, LockingQueue as LockingMachine, Outcome,
    Queue as Machine,
};

fn failure(outcome: Outcome) -> Error {
    match outcome {
        Outcome::Failed(e) => e.into(),
        // The reply was lost and the layout cannot tell whether it landed.
        Outcome::InDoubt => Error::ConnectionLoss,
        // The claim went with its session.
        Outcome::Lost => Error::SessionExpired,
        _ => Error::UnexpectedResponse,
    }
}

fn count_entries(dir: &str) -> Job<usize> {
    let listing = Listing::new(dir)
        .only(|n| n.starts_with(ENTRY_PREFIX))
        .names_only();
    list(listing).and_then(|found| Ok(found.len()))
}

/// Kazoo's `Queue`: items are persistent sequential nodes `<path>/entry-PPP-<sequence>`,
/// taken by priority (0 to 999, lower first; Kazoo's default 100) and then in order of
/// arrival. Taking an item deletes it, conditional on the version read: each item goes to
/// at most one taker, in this process or in a Kazoo one.
///
/// **Delivery.** An item is gone from the server before it is processed, as with Kazoo:
/// use [`LockingQueue`] for work that must survive a crashed worker. A `put` or a take
/// whose reply was lost fails with [`Error::ConnectionLoss`] rather than risk a duplicate
/// or report an item that another taker may have: Kazoo's names carry no id to check.
///
/// **Cancel safety.** Dropping a call stops waiting; a take whose delete was already
/// sent may still remove its item (which is then lost to the caller).
#[derive(Debug, Clone)]
pub struct Queue<D> {
    client: D,
    path: String,
}

impl<D: Driver> Queue<D> {
    /// A queue at `path` (created when the first item is put).
    pub fn new(client: &D, path: &str) -> Queue<D> {
        Queue {
            client: client.clone(),
            path: path.to_string(),
        }
    }

    fn run<T: Send + 'static>(
        &self,
        start: impl FnOnce(&mut Machine, std::time::Instant) + Send + 'static,
        decide: impl FnOnce(Outcome) -> Result<T> + Send + 'static,
    ) -> D::Call<T> {
        let job = match zk_proto::path::validate_path(&self.path) {
            Ok(()) => {
                let machine = Machine::new(&self.path, Acl::open_unsafe());
                let mut decide = Some(decide);
                run_machine(machine, Box::new(start), move |o, _| {
                    decide.take().map(|d| d(o))
                })
            }
            Err(e) => Job::ready(Err(e.into())),
        };
        self.client.call(job)
    }

    /// Puts an item with the default priority (100).
    pub fn put(&self, data: impl Into<Bytes>) -> D::Call<()> {
        self.put_with_priority(data, DEFAULT_PRIORITY)
    }

    /// Puts an item; lower priority numbers (0 to 999) are taken first.
    pub fn put_with_priority(&self, data: impl Into<Bytes>, priority: u16) -> D::Call<()> {
        let data = data.into();
        self.run(
            move |m, now| m.put(now, data, priority),
            |o| match o {
                Outcome::Put => Ok(()),
                other => Err(failure(other)),
            },
        )
    }

    /// How many items are waiting.
    pub fn len(&self) -> D::Call<usize> {
        self.client.call(count_entries(&self.path))
    }

    /// Whether no item is waiting.
    pub fn is_empty(&self) -> D::Call<bool> {
        self.client
            .call(count_entries(&self.path).and_then(|n| Ok(n == 0)))
    }

    /// Takes the next item, or `None` when the queue is empty.
    pub fn get(&self) -> D::Call<Option<Bytes>> {
        self.run(
            |m, now| m.get(now, false, None),
            |o| match o {
                Outcome::Taken(item) => Ok(Some(item)),
                Outcome::Empty => Ok(None),
                other => Err(failure(other)),
            },
        )
    }

    /// Takes the next item, waiting at most `timeout` for one to come; `None` when none
    /// came in time (the timeout holds while no server is reachable).
    pub fn get_wait(&self, timeout: Duration) -> D::Call<Option<Bytes>> {
        self.run(
            move |m, now| m.get(now, true, Some(now + timeout)),
            |o| match o {
                Outcome::Taken(item) => Ok(Some(item)),
                Outcome::TimedOut | Outcome::Empty => Ok(None),
                other => Err(failure(other)),
            },
        )
    }
}

/// Kazoo's `LockingQueue`: items are `<path>/entries/entry-PPP-<sequence>`; a worker
/// claims one with an ephemeral `<path>/taken/<item>` and removes both in one transaction
/// once it processed the item ([`QueueItem::consume`]). An item whose worker puts it back,
/// drops it, or loses its session goes back to the queue. Kazoo workers share the queue.
///
/// **Cancel safety.** The claim belongs to the session's host, not to the call: a `get`
/// dropped at any point (or timed out) and a [`QueueItem`] dropped unconsumed have their
/// claim deleted, retried until the server confirms it, so no item is left stuck. A claim
/// whose create reply was lost is recognised by the worker's id in its data, and a claim
/// is only deleted or consumed after reading it back as this worker's: a worker whose
/// session expired never removes another worker's claim.
#[derive(Debug, Clone)]
pub struct LockingQueue<D> {
    client: D,
    path: String,
}

/// An item claimed from a [`LockingQueue`]: [`QueueItem::consume`] removes it for good,
/// [`QueueItem::release`] (or dropping it) puts it back for others.
#[derive(Debug)]
#[must_use = "dropping the item puts it back in the queue"]
pub struct QueueItem<D> {
    client: D,
    held: Held<LockingMachine>,
    entry: String,
    /// The item.
    pub data: Bytes,
}

impl<D: Driver> QueueItem<D> {
    /// The entry's node name under `<path>/entries`.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    fn finish(
        self,
        step: impl FnOnce(&mut LockingMachine, std::time::Instant) + Send + 'static,
        wanted: Outcome,
    ) -> D::Call<()> {
        let job = self.held.then(Box::new(step), move |o| match o {
            o if o == wanted => Some(Ok(())),
            o @ (Outcome::Failed(_) | Outcome::Lost | Outcome::InDoubt) => Some(Err(failure(o))),
            _ => None,
        });
        self.client.call(job)
    }

    /// Removes the item for good and waits for the server's confirmation.
    pub fn consume(self) -> D::Call<()> {
        self.finish(|m, now| m.consume(now), Outcome::Consumed)
    }

    /// Puts the item back for others and waits for the server's confirmation.
    pub fn release(self) -> D::Call<()> {
        self.finish(|m, now| m.put_back(now), Outcome::Released)
    }
}

impl<D: Driver> LockingQueue<D> {
    /// A locking queue at `path`.
    pub fn new(client: &D, path: &str) -> LockingQueue<D> {
        LockingQueue {
            client: client.clone(),
            path: path.to_string(),
        }
    }

    fn machine(&self) -> Result<LockingMachine> {
        zk_proto::path::validate_path(&self.path)?;
        Ok(LockingMachine::new(
            &self.path,
            &self.client.unique_id()?,
            Acl::open_unsafe(),
        ))
    }

    /// Puts an item with the default priority (100).
    pub fn put(&self, data: impl Into<Bytes>) -> D::Call<()> {
        self.put_with_priority(data, DEFAULT_PRIORITY)
    }

    /// Puts an item; lower priority numbers (0 to 999) are taken first.
    pub fn put_with_priority(&self, data: impl Into<Bytes>, priority: u16) -> D::Call<()> {
        let data = data.into();
        let job = match self.machine() {
            Ok(machine) => {
                let start = Box::new(move |m: &mut LockingMachine, now| m.put(now, data, priority));
                run_machine(machine, start, |o, _| {
                    Some(match o {
                        Outcome::Put => Ok(()),
                        other => Err(failure(other)),
                    })
                })
            }
            Err(e) => Job::ready(Err(e)),
        };
        self.client.call(job)
    }

    /// How many items are in the queue, claimed or not.
    pub fn len(&self) -> D::Call<usize> {
        self.client
            .call(count_entries(&format!("{}/{ENTRIES}", self.path)))
    }

    /// Whether the queue holds no item.
    pub fn is_empty(&self) -> D::Call<bool> {
        let job = count_entries(&format!("{}/{ENTRIES}", self.path)).and_then(|n| Ok(n == 0));
        self.client.call(job)
    }

    /// Claims the next unclaimed item, waiting at most `timeout` for one; `None` when none
    /// came (a claim made meanwhile is removed in the background).
    pub fn get(&self, timeout: Duration) -> D::Call<Option<QueueItem<D>>> {
        let job = match self.machine() {
            Ok(machine) => {
                let session = self.client.session_id();
                let client = self.client.clone();
                let start = Box::new(move |m: &mut LockingMachine, now| {
                    m.get(now, session, Some(now + timeout))
                });
                run_machine(machine, start, move |o, running| match o {
                    Outcome::Claimed { entry, data } => Some(match running.hold() {
                        Some(held) => Ok(Some(QueueItem {
                            client: client.clone(),
                            held,
                            entry,
                            data,
                        })),
                        None => Err(Error::Closed),
                    }),
                    Outcome::TimedOut => Some(Ok(None)),
                    other @ (Outcome::Failed(_) | Outcome::Lost | Outcome::InDoubt) => {
                        Some(Err(failure(other)))
                    }
                    _ => None,
                })
            }
            Err(e) => Job::ready(Err(e)),
        };
        self.client.call(job)
    }
}
