//! The two traits a driver implements: how the core reaches the session ([`Link`]) and how
//! it hands results to the driver's callers ([`Deliver`]).

use std::time::Instant;

use bytes::Bytes;
use zk_proto::records::Request;
use zk_proto::session::{Error as SessionError, Event, HostList, RequestId, Session, WatchedEvent};

use crate::Reply;

/// The session as the core uses it: a bare [`Session`], or a driver's connection around
/// one that also moves bytes when asked to submit.
pub trait Link {
    /// The session.
    fn session(&self) -> &Session;
    /// The next event of the session.
    fn poll_event(&mut self) -> Option<Event>;
    /// Submits a request.
    fn submit(&mut self, now: Instant, request: Request) -> Result<RequestId, SessionError>;
    /// Lets watch `id` go (on the server too, when it was the last on its path).
    fn release_watch(&mut self, now: Instant, id: RequestId);
    /// Adds credentials to the session, on this and every later connection.
    fn add_auth(
        &mut self,
        now: Instant,
        scheme: &str,
        credentials: Bytes,
    ) -> Result<RequestId, SessionError>;
    /// Replaces the host list; true when the session moves to another server.
    fn update_hosts(&mut self, now: Instant, hosts: HostList) -> bool;
    /// Closes the session.
    fn close(&mut self, now: Instant);
}

impl Link for Session {
    fn session(&self) -> &Session {
        self
    }
    fn poll_event(&mut self) -> Option<Event> {
        Session::poll_event(self)
    }
    fn submit(&mut self, now: Instant, request: Request) -> Result<RequestId, SessionError> {
        Session::submit(self, now, request)
    }
    fn release_watch(&mut self, now: Instant, id: RequestId) {
        Session::release_watch(self, now, id);
    }
    fn add_auth(
        &mut self,
        now: Instant,
        scheme: &str,
        credentials: Bytes,
    ) -> Result<RequestId, SessionError> {
        Session::add_auth(self, now, scheme, credentials)
    }
    fn update_hosts(&mut self, now: Instant, hosts: HostList) -> bool {
        Session::update_hosts(self, now, hosts)
    }
    fn close(&mut self, now: Instant) {
        Session::close(self, now);
    }
}

/// How a driver hands results to its callers, in its calling convention.
pub trait Deliver {
    /// Where a request's outcome goes: a one-shot channel, a parked thread.
    type Reply;
    /// Where a watch's events go: a channel, a callback.
    type Watch;
    /// Where the answer to a command goes (a one-shot channel, a blocking channel).
    type Answer<T>;
    /// Who hears the session's state changes: a channel, a listener.
    type Subscriber;

    /// A request's outcome (`RequestId(0)` for one the session refused at once); false
    /// when its caller is gone (a call that timed out or was dropped).
    fn reply(&mut self, to: Self::Reply, id: RequestId, result: Reply) -> bool;

    /// Answers a command; a caller that left is no error.
    fn answer<T>(to: Self::Answer<T>, value: T);

    /// The server set the watch request `id` asked for: where its events go from now on
    /// (a driver may move a callback elsewhere). The sink itself by default.
    fn watch_set(&mut self, id: RequestId, sink: Self::Watch) -> Self::Watch {
        let _ = id;
        sink
    }

    /// One event of a watch (`last`: the watch ends with it); false when nobody listens
    /// any more, and the watch is forgotten.
    fn watch_event(&mut self, sink: &mut Self::Watch, event: WatchedEvent, last: bool) -> bool;

    /// Watch `id`'s holder let it go: its sink is done with. Dropped by default.
    fn watch_released(&mut self, id: RequestId, sink: Self::Watch) {
        let _ = (id, sink);
    }

    /// One more listener for state changes.
    fn subscribe(&mut self, subscriber: Self::Subscriber);

    /// A change of state ([`Event::State`] or [`Event::App`]), for whoever listens.
    fn state(&mut self, event: Event, session: &Session);

    /// The session is over: let every listener go.
    fn end(&mut self) {}
}
