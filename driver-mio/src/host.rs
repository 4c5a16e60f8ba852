//! A recipe machine as the blocking client's IO thread hosts it, whatever its type: the
//! handle's steps in, the machine's requests out through the connection, its outcomes to the
//! handle.

use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use zk_proto::session::Event;
use zk_recipes::{Driven, Recipe};

use crate::Connection;

/// A step a handle asks of its machine.
pub(crate) type Control<R> = Box<dyn FnOnce(&mut R, Instant) + Send>;

/// A machine hosted on the IO thread, whatever its type.
pub(crate) trait Hosted: Send {
    /// Offers a session event; the event comes back when it is not the machine's alone.
    fn handle_event(&mut self, now: Instant, event: Event, session_id: i64) -> Option<Event>;
    /// Time passed.
    fn handle_timeout(&mut self, now: Instant);
    /// When the machine next has work.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Takes the handle's steps, submits what the machine asks for and reports its
    /// outcomes. False once the machine can be forgotten: its handle is gone and nothing
    /// of it is left on the server.
    fn step(&mut self, now: Instant, conn: &mut Connection) -> bool;
}

/// Where a hosted machine's outcomes go: called after each step with the machine and what
/// it reported, and once with `None` when the IO thread lets the machine go.
pub(crate) type Report<R> = Box<dyn FnMut(Option<&R>, Vec<<R as Recipe>::Outcome>) + Send>;

/// A machine as the IO thread hosts it.
pub(crate) struct Host<R: Recipe> {
    driven: Driven<R>,
    steps: Receiver<Control<R>>,
    steering: bool,
    report: Report<R>,
}

impl<R: Recipe> Host<R> {
    pub(crate) fn new(machine: R, steps: Receiver<Control<R>>, report: Report<R>) -> Host<R> {
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

    fn step(&mut self, now: Instant, conn: &mut Connection) -> bool {
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
        self.driven.flush(
            now,
            |request| conn.submit(now, request),
            |o| outcomes.push(o),
        );
        (self.report)(Some(self.driven.machine()), outcomes);
        self.steering || !self.driven.machine().is_done()
    }
}
