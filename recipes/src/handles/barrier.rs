//! The barriers' handles.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use zk_client::Error;
use zk_proto::records::Acl;

use super::{Driver, Held, Job, run_machine};
use crate::barrier::{Barrier as Machine, DoubleBarrier as DoubleMachine, Outcome};
use crate::lock::Flavor;

/// A barrier (Kazoo's `Barrier`, Curator's `DistributedBarrier`): while its node exists,
/// [`Barrier::wait`] waits. A wait holds across connection loss and session expiry, and
/// its timeout holds while no server answers.
#[derive(Debug, Clone)]
pub struct Barrier<D> {
    client: D,
    path: String,
}

impl<D: Driver> Barrier<D> {
    /// A barrier at `path`.
    pub fn new(client: &D, path: &str) -> Barrier<D> {
        Barrier {
            client: client.clone(),
            path: path.to_string(),
        }
    }

    fn run(
        &self,
        start: impl FnOnce(&mut Machine, std::time::Instant) + Send + 'static,
    ) -> Job<Outcome> {
        if let Err(e) = zk_proto::path::validate_path(&self.path) {
            return Job::ready(Err(e.into()));
        }
        let machine = Machine::new(&self.path, Acl::open_unsafe());
        run_machine(machine, Box::new(start), |o, _| {
            Some(match o {
                Outcome::Failed(e) => Err(e.into()),
                o => Ok(o),
            })
        })
    }

    /// Raises the barrier (creates its node and any missing ancestor; already raised is
    /// fine), retried across connection loss.
    pub fn create(&self) -> D::Call<()> {
        let job = self.run(|m, now| m.raise(now)).and_then(|_| Ok(()));
        self.client.call(job)
    }

    /// Lowers the barrier, releasing the waiters; the delete is retried across connection
    /// loss until the server confirms it. Already lowered is fine.
    pub fn remove(&self) -> D::Call<()> {
        let job = self.run(|m, now| m.remove(now)).and_then(|_| Ok(()));
        self.client.call(job)
    }

    /// Waits until the barrier is down; `false` if `timeout` passed first.
    pub fn wait(&self, timeout: Option<Duration>) -> D::Call<bool> {
        let job = self
            .run(move |m, now| m.wait(now, timeout.map(|t| now + t)))
            .and_then(|o| Ok(o == Outcome::Cleared));
        self.client.call(job)
    }
}

/// A double barrier (Kazoo's `DoubleBarrier`, Curator's `DistributedDoubleBarrier`):
/// [`DoubleBarrier::enter`] returns once `count` participants entered,
/// [`DoubleBarrier::leave`] once all of them left. The nodes are laid out as both
/// libraries lay them out (`<path>/<unique name>` per participant and `<path>/ready`), so
/// Python and JVM participants can share a barrier with this one; names are Kazoo's by
/// default, Curator's with [`DoubleBarrier::with_flavor`].
///
/// **Cancel safety.** The participant's node belongs to the session's host, not to the
/// call. Dropping an `enter` or `leave` call at any point, or the barrier while inside,
/// removes the participant's node (retried until the server confirms it); so does a
/// timed-out `enter` or `leave`.
#[derive(Debug)]
pub struct DoubleBarrier<D> {
    client: D,
    path: String,
    count: usize,
    flavor: Flavor,
    identifier: Bytes,
    inside: Arc<Mutex<Option<Held<DoubleMachine>>>>,
}

impl<D: Driver> DoubleBarrier<D> {
    /// A double barrier at `path` for `count` participants.
    pub fn new(client: &D, path: &str, count: usize) -> DoubleBarrier<D> {
        DoubleBarrier {
            client: client.clone(),
            path: path.to_string(),
            count: count.max(1),
            flavor: Flavor::Kazoo,
            identifier: Bytes::new(),
            inside: Arc::default(),
        }
    }

    /// Names the participant's node as Curator (a UUID) or Kazoo (32 hex digits, the
    /// default) does. Either library's participants count and wait for both.
    pub fn with_flavor(mut self, flavor: Flavor) -> DoubleBarrier<D> {
        self.flavor = flavor;
        self
    }

    /// What the participant's node holds (Kazoo stores `<host>-<pid>`; empty by default).
    pub fn with_identifier(mut self, identifier: impl AsRef<[u8]>) -> DoubleBarrier<D> {
        self.identifier = Bytes::copy_from_slice(identifier.as_ref());
        self
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Held<DoubleMachine>>> {
        self.inside.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this participant entered and has not left.
    pub fn is_inside(&self) -> bool {
        self.slot().is_some()
    }

    /// Enters and waits until `count` participants are in; `false` on timeout (then this
    /// participant's node is removed in the background; the timeout holds while no server
    /// is reachable). Only the ready node's creation lets a participant in, and after a
    /// session expiry its node is created again. Entering while inside is `true` at once.
    pub fn enter(&mut self, timeout: Option<Duration>) -> D::Call<bool> {
        if self.is_inside() {
            return self.client.call(Job::ready(Ok(true)));
        }
        let job = match zk_proto::path::validate_path(&self.path)
            .map_err(Error::from)
            .and_then(|()| self.client.unique_id())
        {
            Ok(id) => {
                let machine = DoubleMachine::new(
                    &self.path,
                    &id,
                    self.count,
                    self.flavor,
                    self.identifier.clone(),
                    Acl::open_unsafe(),
                );
                let session = self.client.session_id();
                let inside = self.inside.clone();
                run_machine(
                    machine,
                    Box::new(move |m: &mut DoubleMachine, now| {
                        m.enter(now, session, timeout.map(|t| now + t))
                    }),
                    move |o, running| match o {
                        Outcome::Entered => Some(match running.hold() {
                            Some(held) => {
                                *inside.lock().unwrap_or_else(|e| e.into_inner()) = Some(held);
                                Ok(true)
                            }
                            None => Err(Error::Closed),
                        }),
                        // The host removes the node, in the background.
                        Outcome::TimedOut => Some(Ok(false)),
                        Outcome::Failed(e) => Some(Err(e.into())),
                        _ => None,
                    },
                )
            }
            Err(e) => Job::ready(Err(e)),
        };
        self.client.call(job)
    }

    /// Leaves and waits until every participant left; `false` on timeout (then this
    /// participant's node is removed in the background, and others may still be inside).
    /// Leaving without having entered is `true` at once.
    pub fn leave(&mut self, timeout: Option<Duration>) -> D::Call<bool> {
        let Some(held) = self.slot().take() else {
            return self.client.call(Job::ready(Ok(true)));
        };
        let job = held.then(
            Box::new(move |m: &mut DoubleMachine, now| m.leave(now, timeout.map(|t| now + t))),
            |o| match o {
                Outcome::Left => Some(Ok(true)),
                // The host removes the node, in the background.
                Outcome::TimedOut => Some(Ok(false)),
                Outcome::Failed(e) => Some(Err(e.into())),
                // Lost while inside, before the leave: the others no longer wait for it.
                _ => None,
            },
        );
        self.client.call(job)
    }
}
