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

use zk_proto::records::Request;
use zk_proto::session::{Error as SessionError, Event, RequestId};

use crate::{Driven, Recipe};

/// A step a handle asks of its machine.
pub type Control<R> = Box<dyn FnOnce(&mut R, Instant) + Send>;

/// Where a hosted machine's outcomes go: called after each turn with the machine and what it
/// reported, and once with `None` when the host lets the machine go.
pub type Report<R> = Box<dyn FnMut(Option<&R>, Vec<<R as Recipe>::Outcome>) + Send>;

/// How a host submits a machine's request on its session.
pub type Submit<'a> = dyn FnMut(Request) -> Result<RequestId, SessionError> + 'a;

/// A machine as a driver's loop hosts it, whatever its type.
pub trait Hosted: Send {
    /// Offers a session event; the event comes back when it is not the machine's alone.
    fn handle_event(&mut self, now: Instant, event: Event, session_id: i64) -> Option<Event>;
    /// Time passed.
    fn handle_timeout(&mut self, now: Instant);
    /// When the machine next has work.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Takes the handle's steps, submits what the machine asks for and reports its
    /// outcomes. False once the machine can be forgotten: its handle is gone and nothing of
    /// it is left on the server.
    fn step(&mut self, now: Instant, submit: &mut Submit<'_>) -> bool;
}

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

/// Every machine a session hosts, in the order they came.
#[derive(Default)]
pub struct Machines {
    hosted: Vec<Box<dyn Hosted>>,
}

impl std::fmt::Debug for Machines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machines")
            .field("hosted", &self.hosted.len())
            .finish()
    }
}

impl Machines {
    /// Hosts one more machine.
    pub fn add(&mut self, machine: Box<dyn Hosted>) {
        self.hosted.push(machine);
    }

    /// No machine is hosted.
    pub fn is_empty(&self) -> bool {
        self.hosted.is_empty()
    }

    /// Lets every machine go (the session is over): each report hears `None`.
    pub fn clear(&mut self) {
        self.hosted.clear();
    }

    /// Offers a session event to each machine in turn; what none took comes back, for the
    /// driver's own callers (state changes always come back).
    pub fn offer(&mut self, now: Instant, event: Event, session_id: i64) -> Option<Event> {
        let mut event = Some(event);
        for h in &mut self.hosted {
            event = event.and_then(|e| h.handle_event(now, e, session_id));
        }
        event
    }

    /// Time passed for every machine.
    pub fn handle_timeout(&mut self, now: Instant) {
        for h in &mut self.hosted {
            h.handle_timeout(now);
        }
    }

    /// The earliest deadline of any machine.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.hosted.iter().filter_map(|h| h.poll_timeout()).min()
    }

    /// Lets every machine take its steps, submit and report; forgets the ones that are done.
    pub fn step(&mut self, now: Instant, submit: &mut Submit<'_>) {
        self.hosted.retain_mut(|h| h.step(now, submit));
    }
}
