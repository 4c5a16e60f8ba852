//! Barriers: [`zk_recipes::barrier::Barrier`] and [`zk_recipes::barrier::DoubleBarrier`],
//! each driven on the connection task, in the layout Kazoo and Curator share.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use zk_recipes::barrier::{Barrier as BarrierMachine, DoubleBarrier as Machine, Outcome};
use zk_recipes::lock::Flavor;

use super::runner::{self, Control, Steer};
use super::unique_id;
use crate::{Acl, Client, Error, Result};

/// A barrier (Kazoo's `Barrier`, Curator's `DistributedBarrier`): while its node exists,
/// [`Barrier::wait`] blocks.
///
/// Every call is cancel-safe: the barrier owes the server nothing, so a dropped `wait`
/// just stops waiting. A wait holds across connection loss and session expiry (the watch
/// is set again) and its timeout holds while no server is reachable.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::Barrier;
/// let gate = Barrier::new(&client, "/gates/deploy");
/// gate.create().await?;        // the coordinator raises it
/// // workers: gate.wait(None).await? returns once it is removed
/// gate.remove().await?;
/// # Ok(()) }
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

    async fn run(
        &self,
        start: impl FnOnce(&mut BarrierMachine, std::time::Instant) + Send + 'static,
    ) -> Result<Outcome> {
        zk_proto::path::validate_path(&self.path)?;
        let machine = BarrierMachine::new(&self.path, Acl::open_unsafe());
        let (_control, mut outcomes) =
            runner::spawn_outcomes(&self.client, machine, Box::new(start));
        match outcomes.recv().await {
            Some(Outcome::Failed(e)) => Err(e.into()),
            Some(o) => Ok(o),
            None => Err(Error::Closed),
        }
    }

    /// Raises the barrier (creates its node and any missing ancestor; already raised is
    /// fine), retried across connection loss.
    pub async fn create(&self) -> Result<()> {
        self.run(|m, now| m.raise(now)).await.map(|_| ())
    }

    /// Lowers the barrier, releasing the waiters; the delete is retried across connection
    /// loss until the server confirms it. Already lowered is fine.
    pub async fn remove(&self) -> Result<()> {
        self.run(|m, now| m.remove(now)).await.map(|_| ())
    }

    /// Waits until the barrier is down; `false` if `timeout` passed first.
    pub async fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| (Instant::now() + t).into_std());
        let outcome = self.run(move |m, now| m.wait(now, deadline)).await?;
        Ok(outcome == Outcome::Cleared)
    }
}

/// The steering end of a participant's machine, and what it reports.
type Running = (Steer<Machine>, mpsc::UnboundedReceiver<Outcome>);

/// A double barrier (Kazoo's `DoubleBarrier`, Curator's `DistributedDoubleBarrier`):
/// [`DoubleBarrier::enter`] returns once `count` participants entered,
/// [`DoubleBarrier::leave`] once all of them left. The nodes are laid out as both
/// libraries lay them out (`<path>/<unique name>` per participant and `<path>/ready`), so
/// Python and JVM participants can share a barrier with this one; names are Kazoo's by
/// default, Curator's with [`DoubleBarrier::with_flavor`].
///
/// **Cancel safety.** The participant's node belongs to a task, not to the caller's
/// future. Dropping an `enter` or `leave` future at any await point, or the barrier
/// while inside, removes the participant's node (retried until the server confirms it);
/// so does a timed-out `enter` or `leave`.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::DoubleBarrier;
/// let mut round = DoubleBarrier::new(&client, "/rounds/7", 3);
/// round.enter(None).await?; // all three are in
/// // ... compute ...
/// round.leave(None).await?; // all three are out
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DoubleBarrier {
    client: Client,
    path: String,
    count: usize,
    flavor: Flavor,
    identifier: Bytes,
    inside: Option<Running>,
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
    /// default) does. Either library's participants count and wait for both.
    pub fn with_flavor(mut self, flavor: Flavor) -> DoubleBarrier {
        self.flavor = flavor;
        self
    }

    /// What the participant's node holds (Kazoo stores `<host>-<pid>`; empty by default).
    pub fn with_identifier(mut self, identifier: impl Into<Bytes>) -> DoubleBarrier {
        self.identifier = identifier.into();
        self
    }

    /// Whether this participant entered and has not left.
    pub fn is_inside(&self) -> bool {
        self.inside.is_some()
    }

    /// Enters and waits until `count` participants are in; `false` on timeout (then this
    /// participant's node is removed in the background; the timeout holds while no server
    /// is reachable). Only the ready node's creation lets a
    /// participant in, and after a session expiry its node is created again. Entering
    /// while inside returns `true` at once.
    pub async fn enter(&mut self, timeout: Option<Duration>) -> Result<bool> {
        if self.inside.is_some() {
            return Ok(true);
        }
        zk_proto::path::validate_path(&self.path)?;
        let deadline = timeout.map(|t| (Instant::now() + t).into_std());
        let machine = Machine::new(
            &self.path,
            &unique_id()?,
            self.count,
            self.flavor,
            self.identifier.clone(),
            Acl::open_unsafe(),
        );
        let session = self.client.session_id();
        let start: Control<Machine> = Box::new(move |m, now| m.enter(now, session, deadline));
        let (control, mut outcomes) = runner::spawn_outcomes(&self.client, machine, start);
        loop {
            match outcomes.recv().await {
                Some(Outcome::Entered) => {
                    self.inside = Some((control, outcomes));
                    return Ok(true);
                }
                // The task removes the node, in the background.
                Some(Outcome::TimedOut) => return Ok(false),
                Some(Outcome::Failed(e)) => return Err(e.into()),
                Some(_) => {}
                None => return Err(Error::Closed),
            }
        }
    }

    /// Leaves and waits until every participant left; `false` on timeout (then this
    /// participant's node is removed in the background, and others may still be inside). Leaving without having
    /// entered returns `true` at once.
    pub async fn leave(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let Some((control, mut outcomes)) = self.inside.take() else {
            return Ok(true);
        };
        let deadline = timeout.map(|t| (Instant::now() + t).into_std());
        let _ = control.send(Box::new(move |m: &mut Machine, now| m.leave(now, deadline)));
        loop {
            match outcomes.recv().await {
                Some(Outcome::Left) => return Ok(true),
                // The task removes the node, in the background.
                Some(Outcome::TimedOut) => return Ok(false),
                Some(Outcome::Failed(e)) => return Err(e.into()),
                // Lost while inside, before the leave: the others no longer wait for it.
                Some(_) => {}
                None => return Err(Error::Closed),
            }
        }
    }
}
