//! Typed calls on a [`Connection`], each carrying a token of yours.
//!
//! [`Connection::submit`] takes a raw [`Request`](crate::Request) and completes
//! it with a raw [`Response`](crate::Response). The operations in [`op`] are the
//! same ones both clients are written from: [`Connection::start`] submits one and returns a
//! [`Pending`] that turns the completion into the operation's typed result.
//!
//! [`Calls`] keeps a token of yours per call, so a loop with many calls in flight needs no
//! map of its own: [`Calls::route`] hands back the token with the completion, and passes
//! every other event through.
//!
//! ```no_run
//! # use std::time::Instant;
//! # use mio::{Poll, Token};
//! use zk_mio::calls::{Calls, Pending, Routed};
//! use zk_mio::{Bytes, Config, Connection, Event, Stat, op};
//!
//! // Your token: what each call was for, holding its typed completion.
//! enum Job {
//!     LoadConfig(Pending<(Bytes, Stat)>),
//!     Touch(Pending<Stat>),
//! }
//!
//! # let poll = Poll::new()?;
//! # let now = Instant::now();
//! let mut zk = Connection::new(Config::new("127.0.0.1:2181")?, poll.registry(), Token(0), now)?;
//! let mut calls = Calls::new();
//! calls.start(&mut zk, now, op::get_data("/config", true), Job::LoadConfig)?;
//! calls.start(&mut zk, now, op::set_data("/alive", Bytes::new(), None), Job::Touch)?;
//! // ... in the loop, after handle_event / handle_timeout:
//! while let Some(event) = zk.poll_event() {
//!     match calls.route(event) {
//!         Routed::Done(Job::LoadConfig(call), reply) => match call.finish(reply) {
//!             Ok((data, stat)) => println!("config v{}: {} bytes", stat.version, data.len()),
//!             Err(e) => eprintln!("cannot read /config: {e}"),
//!         },
//!         Routed::Done(Job::Touch(call), reply) => {
//!             let _ = call.finish(reply);
//!         }
//!         Routed::Event(Event::Watch(w)) => println!("{:?} on {}", w.kind, w.path),
//!         Routed::Event(other) => println!("{other:?}"),
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::time::Instant;

use zk_client::op::{Op, Reply};
use zk_client::{Error, Result};
use zk_proto::session::{Event, RequestId};

use crate::Connection;
#[cfg(doc)]
use crate::op;

/// A submitted operation whose completion becomes a `T`.
///
/// Its completion is the [`Event::Complete`] with the same [`Pending::id`]; pass that
/// event's `result` to [`Pending::finish`].
#[must_use = "the completion can only be decoded through the Pending"]
pub struct Pending<T> {
    id: RequestId,
    decode: fn(Reply) -> Result<T>,
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("id", &self.id).finish()
    }
}

impl<T> Pending<T> {
    /// The request's id, as its [`Event::Complete`] carries it.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The typed result of the request's completion (the `result` of its
    /// [`Event::Complete`]).
    ///
    /// A server's error names no path here (keeping it would cost every call an
    /// allocation): the token you gave [`Calls::start`] says which call it was, and
    /// [`Error::at_path`](crate::Error::at_path) adds it when you want it.
    pub fn finish(self, reply: Reply) -> Result<T> {
        (self.decode)(reply)
    }
}

impl Connection {
    /// Submits one operation of [`op`]; its completion comes back as one
    /// [`Event::Complete`], which [`Pending::finish`] turns into the typed result.
    ///
    /// Fails at once, submitting nothing, when the session cannot take the request (closed,
    /// too many queued, a bad path): the error says which.
    ///
    /// A create with [`CreateOptions::with_parents`](crate::CreateOptions::with_parents)
    /// takes several requests, one after another, which one call cannot: it fails with
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest). Run it as the plan
    /// [`Op::into_plan`] gives, a request at a time.
    pub fn start<T>(&mut self, now: Instant, op: Op<T>) -> Result<Pending<T>> {
        if op.makes_parents() {
            return Err(crate::Error::InvalidRequest(
                "a create that makes its parents takes several requests: run Op::into_plan \
                 a request at a time",
            ));
        }
        let (request, decode) = op.into_parts();
        let id = self.submit(now, request)?;
        Ok(Pending { id, decode })
    }
}

/// What [`Calls::route`] made of an event.
#[derive(Debug)]
pub enum Routed<K> {
    /// One of the calls completed: its token, and the reply to finish it with.
    Done(K, Reply),
    /// Any other event: a state change, a watch event, or a completion of a request not
    /// started through these calls.
    Event(Event),
}

/// Calls in flight on a connection, each with a token of yours (see the [module](self)
/// docs).
///
/// Every call completes exactly once, also when the session closes or expires (with an
/// error then), so a token is never left behind as long as every event of the connection
/// goes through [`Calls::route`].
#[derive(Debug)]
pub struct Calls<K> {
    waiting: HashMap<RequestId, K>,
}

impl<K> Default for Calls<K> {
    fn default() -> Self {
        Calls {
            waiting: HashMap::new(),
        }
    }
}

impl<K> Calls<K> {
    /// No calls yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Submits `op` on `zk` and keeps `token(pending)` until it completes. `token` is
    /// usually a variant of your own enum (`Job::LoadConfig`), or `|p| (my_id, p)`.
    ///
    /// Fails at once, keeping nothing, when the session cannot take the request.
    pub fn start<T>(
        &mut self,
        zk: &mut Connection,
        now: Instant,
        op: Op<T>,
        token: impl FnOnce(Pending<T>) -> K,
    ) -> Result<RequestId, Error> {
        let pending = zk.start(now, op)?;
        let id = pending.id();
        self.waiting.insert(id, token(pending));
        Ok(id)
    }

    /// The token of a completed call with its reply, or the event as it was.
    pub fn route(&mut self, event: Event) -> Routed<K> {
        match event {
            Event::Complete { id, result, watch } => match self.waiting.remove(&id) {
                Some(token) => Routed::Done(token, result),
                None => Routed::Event(Event::Complete { id, result, watch }),
            },
            other => Routed::Event(other),
        }
    }

    /// Calls started and not yet routed back.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether no call is in flight.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}
