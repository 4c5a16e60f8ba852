//! Recipe machines hosted beside a session by a driver's loop: every driver (the async
//! client's connection task, the blocking client's IO thread) runs them with this code, so
//! replies, watch events and state changes reach each machine in the order the socket
//! delivered them, as they do in the simulations.
//!
//! A handle steers its machine with [`Control`] steps sent on a channel and hears it through
//! a [`Report`]; when every sender of that channel is gone (the handle dropped, a future
//! cancelled), the host releases the machine and keeps driving it until nothing of it is left
//! on the server. The driver only wakes its loop when a step was sent.

use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use zk_proto::session::Event;

pub use zk_client::driver::{Hosted, Machines, Submit};

use crate::{Driven, Recipe};

/// A step a handle asks of its machine.
pub type Control<R> = Box<dyn FnOnce(&mut R, Instant) + Send>;

/// Where a hosted machine's outcomes go: called after each turn with the machine and what it
/// reported, and once with `None` when the host lets the machine go.
pub type Report<R> = Box<dyn FnMut(Option<&R>, Vec<<R as Recipe>::Outcome>) + Send>;

/// A machine with its handle's steps and its report.
pub struct Host<R: Recipe> {
    driven: Driven<R>,
    steps: Receiver<Control<R>>,
    steering: bool,
    report: Report<R>,
}

impl<R: Recipe> Host<R> {
    /// Hosts `machine`, steered by `steps` and heard through `report`.
    pub fn new(machine: R, steps: Receiver<Control<R>>, report: Report<R>) -> Host<R> {
        Host {
            driven: Driven::new(machine),
            steps,
            steering: true,
            report,
        }
    }
}

impl<R: Recipe> Drop for Host<R> {
    fn drop(&mut self) {
        (self.report)(None, Vec::new());
    }
}

impl<R: Recipe + Send> Hosted for Host<R> {
    fn handle_event(&mut self, now: Instant, event: Event, session_id: i64) -> Option<Event> {
        self.driven.handle_event(now, event, session_id)
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.driven.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.driven.machine().poll_timeout()
    }

    fn take_watches(&mut self) -> Vec<zk_proto::session::RequestId> {
        self.driven.take_watches()
    }

    fn step(&mut self, now: Instant, submit: &mut Submit<'_>) -> bool {
        while self.steering {
            match self.steps.try_recv() {
                Ok(step) => step(self.driven.machine_mut(), now),
                Err(TryRecvError::Empty) => break,
                // The handle is gone: whatever the machine holds goes too.
                Err(TryRecvError::Disconnected) => {
                    self.steering = false;
                    self.driven.machine_mut().release(now);
                }
            }
        }
        let mut outcomes = Vec::new();
        self.driven.flush(now, &mut *submit, |o| outcomes.push(o));
        (self.report)(Some(self.driven.machine()), outcomes);
        self.steering || !self.driven.machine().is_done()
    }
}
