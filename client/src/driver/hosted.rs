//! Recipe machines as a driver hosts them beside a session.

use std::time::Instant;

use zk_proto::records::Request;
use zk_proto::session::{Error as SessionError, Event, RequestId};

/// How a host submits a hosted machine's request on its session.
pub type Submit<'a> = dyn FnMut(Request) -> Result<RequestId, SessionError> + 'a;

/// A recipe machine as a driver hosts it, whatever its type (`zk_recipes::host::Host`).
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
    /// The watches the machine's requests left that are still set: when the machine is
    /// forgotten, nobody can hear them any more, and the host releases them.
    fn take_watches(&mut self) -> Vec<RequestId>;
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
    #[inline]
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
        if self.hosted.is_empty() {
            return Some(event);
        }
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
    #[inline]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.hosted.is_empty() {
            return None;
        }
        self.hosted.iter().filter_map(|h| h.poll_timeout()).min()
    }

    /// Lets every machine take its steps, submit and report; forgets the ones that are
    /// done, and `release`s the watches they leave.
    pub fn step(
        &mut self,
        now: Instant,
        submit: &mut Submit<'_>,
        release: &mut dyn FnMut(RequestId),
    ) {
        if self.hosted.is_empty() {
            return;
        }
        self.hosted.retain_mut(|h| {
            let keep = h.step(now, submit);
            if !keep {
                h.take_watches().into_iter().for_each(&mut *release);
            }
            keep
        });
    }
}
