//! ZooKeeper recipes as sans-IO state machines.
//!
//! A recipe here never touches a socket, a clock or a thread. It is fed what its session
//! reports (replies to the requests it asked for, the watch events of those requests,
//! session state changes) and the time, and it answers with requests to submit and
//! outcomes for the application, from [`lock::Lock::poll_output`] and the like. Every driver
//! (the async client, the blocking client, a custom `mio` loop, a simulation) runs the same
//! machine, so the fault handling is written and tested once:
//!
//! - every node a recipe creates carries a unique id in its name, chosen before the create
//!   is sent, so a create whose reply was lost is found again instead of repeated;
//! - every cleanup (deleting a lock node) is a request the machine owns and sends again
//!   until the server confirms it (deleted, already gone, or the session that owned the
//!   ephemeral node is gone), across lost replies and reconnects;
//! - deadlines are checked against the time the driver passes in, connected or not;
//! - node names follow Kazoo's layout (`<id>__lock__<sequence>`) and contenders are ordered
//!   by their sequence number alone, as Kazoo and Curator both do, so all three can share a
//!   lock path. Sequence numbers past 2^31, which the server writes as negative numbers,
//!   order after the positive ones.

#![deny(missing_docs)]

pub mod lock;
mod sequence;

pub use sequence::sequence_of;

/// Tags a request a recipe asked for, so the driver can hand its reply (and its watch's
/// events) back. Tags are unique per machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(pub u64);
