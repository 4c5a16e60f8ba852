//! A blocking client: every operation is a blocking call, bounded by the call timeout
//! (`ClientBuilder::call_timeout`, twice the session timeout by default). Recipe waits
//! that last as long as it takes (`Lock::acquire`, `Election::lead`) are unbounded, like
//! their async twins; their `_timeout` forms bound them.
//!
//! One IO thread (a `mio::Poll`) carries the [`Connection`](crate::Connection) of every blocking client of the
//! process, and one more thread runs the watch callbacks and state listeners of all of them,
//! in order; both start with the first client and stay for the life of the process. A slow
//! callback never holds up a connection (pings, reconnects and replies go on), but it does
//! delay the callbacks after it, of every client: callbacks must not block.
//!
//! On Linux, a call on a connected session does its own IO: the calling thread writes its
//! request and, unless another thread of the same client is already doing so, waits on the
//! session's socket and reads until its reply is in, handling whatever else arrives (other
//! threads' replies, watch events, pings) and any timer that falls due, as the IO thread
//! would. The IO thread is not woken for such a call, so a call costs about what a bare
//! blocking socket costs. The IO thread keeps everything else: connecting, handshakes,
//! reconnects, probes, pings of idle sessions, watch events between calls, and calls made
//! while the session is not connected.

mod callbacks;
mod client;
mod direct;
mod reactor;
mod session_loop;
mod watchers;

pub use client::{Client, ClientBuilder, Transaction, retry_with};
pub use watchers::{OneshotWatcher, PersistentWatcher, StateEvents, WatchHandle};
