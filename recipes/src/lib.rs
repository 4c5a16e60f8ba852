//! ZooKeeper recipes as sans-IO state machines.
//!
//! A recipe here never touches a socket, a clock or a thread. It is fed what its session
//! reports (replies to the requests it asked for, the watch events of those requests,
//! session state changes) and the time, and it answers with requests to submit and
//! outcomes for the application, through the [`Recipe`] trait. Every driver (the async
//! client, the blocking client, a custom `mio` loop, a simulation) runs the same machine,
//! so the fault handling is written and tested once:
//!
//! - every node a recipe creates carries a unique id in its name, chosen before the create
//!   is sent, so a create whose reply was lost is found again instead of repeated;
//! - every cleanup (deleting a lock node) is a request the machine owns and sends again
//!   until the server confirms it (deleted, already gone, or the session that owned the
//!   ephemeral node is gone), across lost replies and reconnects;
//! - deadlines are checked against the time the driver passes in, connected or not;
//! - node names follow Kazoo's layout (`<id>__lock__<sequence>`) or Curator's
//!   (`_c_<uuid>-lock-<sequence>`), and contenders are ordered by their sequence number
//!   alone, as both libraries order them, so a recipe can share a path with either. Sequence
//!   numbers past 2^31, which the server writes as negative numbers, order after the
//!   positive ones.
//!
//! A driver that has a session's [`Event`]s (a `mio` loop around a `Connection`, a
//! simulation) runs any recipe with a [`Driven`], which keeps the request ids.

#![deny(missing_docs)]

pub mod atomic;
pub mod barrier;
pub mod counter;
pub mod discovery;
mod driven;
pub mod guarded;
pub mod handles;
pub mod host;
mod io;
pub mod lease;
pub mod lock;
pub mod multi_lock;
pub mod partitioner;
pub mod party;
pub mod patient;
pub mod persistent;
pub mod protected;
pub mod queue;
pub mod semaphore;
mod sequence;
pub mod tree;
pub mod watch;

use std::time::Instant;

use zk_proto::records::{Request, Response};
use zk_proto::session::{AppState, Error as SessionError, WatchedEvent};

#[doc(hidden)]
pub use bytes as __bytes;
pub use driven::Driven;
pub use sequence::sequence_of;
#[doc(hidden)]
pub use zk_client as __client;
#[doc(hidden)]
pub use zk_proto as __proto;
#[doc(no_inline)]
pub use zk_proto::session::Event;

/// Tags a request a recipe asked for, so the driver can hand its reply (and its watch's
/// events) back. Tags are unique per machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(pub u64);

/// Something a recipe machine has for its driver.
#[derive(Debug, Clone, PartialEq)]
pub enum Output<O> {
    /// Submit this request on the session and hand its reply back with
    /// [`Recipe::handle_reply`] (and the events of the watch it leaves, if any, with
    /// [`Recipe::handle_watch`]) under this tag.
    Submit(Tag, Request),
    /// Tell the application.
    Outcome(O),
}

/// A recipe machine, as every driver runs it.
///
/// The contract: submit every [`Output::Submit`] on the session the machine was started
/// on, in the order given, and hand back each request's reply exactly once (a request the
/// session refused gets its refusal as the reply); hand back every event of a watch a
/// request left; report every application-view change with the session id it came with;
/// call [`Recipe::handle_timeout`] once [`Recipe::poll_timeout`] has passed; drain
/// [`Recipe::poll_output`] after each of these. A driver whose user went away calls
/// [`Recipe::release`] and keeps driving until [`Recipe::is_done`]: that is how the
/// cleanup the machine owes the server gets done.
pub trait Recipe {
    /// What the application hears.
    type Outcome;

    /// The next output for the driver.
    #[must_use = "a request must be submitted, an outcome delivered"]
    fn poll_output(&mut self) -> Option<Output<Self::Outcome>>;

    /// When [`Recipe::handle_timeout`] has work (never, for a machine without deadlines).
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Time passed.
    fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
    }

    /// The session's application view changed; `session_id` is the session's id now.
    fn handle_state(&mut self, now: Instant, state: AppState, session_id: i64) {
        let _ = (now, state, session_id);
    }

    /// The reply to the request submitted under `tag`.
    fn handle_reply(&mut self, now: Instant, tag: Tag, reply: Result<Response, SessionError>);

    /// An event of the watch the request under `tag` left.
    fn handle_watch(&mut self, now: Instant, tag: Tag, event: &WatchedEvent) {
        let _ = (now, tag, event);
    }

    /// The application gave up on whatever the machine is doing: remove everything it
    /// has on the server, in any phase.
    fn release(&mut self, now: Instant);

    /// Nothing of this machine is on the server or under way.
    fn is_done(&self) -> bool;
}

/// The crate's README, compiled and run as a doc test so its example stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
