//! Runs a sans-IO recipe machine ([`zk_recipes::Recipe`]) on the client's connection task,
//! beside the session, with the hosting code every driver shares ([`zk_recipes::host`]):
//! replies, watch events and state changes reach the machine in the order the socket
//! delivered them.
//!
//! A handle steers its machine through a [`Steer`]; when the last one is dropped (the handle
//! dropped, a future cancelled at any await point) the task tells the machine to release and
//! keeps driving it until the machine says nothing of it is left on the server. That is what
//! makes every recipe handle cancel-safe: the cleanup never depended on the caller's future
//! being polled.

use std::sync::mpsc;

use zk_recipes::Recipe;
use zk_recipes::host::{Host, Report};

use crate::Client;

pub(crate) use zk_recipes::host::Control;

/// What the task reports: each outcome, and (with `None`) the machine after every step.
pub(crate) trait Observer<R: Recipe>:
    FnMut(&R, Option<R::Outcome>) + Send + 'static
{
}
impl<R: Recipe, F: FnMut(&R, Option<R::Outcome>) + Send + 'static> Observer<R> for F {}

/// A handle's way to its hosted machine: each step sent wakes the connection task, and so
/// does dropping the handle, which lets the machine release what it holds.
pub(crate) struct Steer<R> {
    steps: Option<mpsc::Sender<Control<R>>>,
    client: Client,
}

impl<R> std::fmt::Debug for Steer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steer")
            .field("open", &self.steps.is_some())
            .finish()
    }
}

impl<R> Steer<R> {}

impl<R> Drop for Steer<R> {
    fn drop(&mut self) {
        // The channel closes first, so the turn this asks for sees the handle gone.
        self.steps = None;
        self.client.poke();
    }
}

/// Starts driving `machine` on `client`'s session: `start` runs first, then every step sent
/// through the returned [`Steer`].
pub(crate) fn spawn<R>(
    client: &Client,
    machine: R,
    start: Control<R>,
    mut observe: impl Observer<R>,
) -> Steer<R>
where
    R: Recipe + Send + 'static,
    R::Outcome: Send,
{
    let (tx, rx) = mpsc::channel();
    let _ = tx.send(start);
    let report: Report<R> = Box::new(move |machine, outcomes| {
        if let Some(m) = machine {
            for o in outcomes {
                observe(m, Some(o));
            }
            observe(m, None);
        }
    });
    // A closed client drops the machine with its report: its handle hears the channels
    // close, as it does when the session ends.
    client.host(Box::new(Host::new(machine, rx, report)));
    Steer {
        steps: Some(tx),
        client: client.clone(),
    }
}
