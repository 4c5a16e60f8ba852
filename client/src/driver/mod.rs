//! The driver core: what every driver does with a session's events, written once.
//!
//! A driver owns the socket, the clock and its calling convention (a future, a parked
//! thread, a callback). Everything between the session and the caller is here: the
//! [`Command`]s a client's handles send, the reply waiters, the watch sinks and their
//! release, the recipe machines hosted beside the session ([`Hosted`]), the routing of each
//! event in the order the socket delivered it, the session's close, and slow-request
//! accounting. A driver carries commands to its loop, hands them to a [`Core`] with the
//! session (or its connection, as a [`Link`]), and writes only [`Deliver`]: how results
//! reach its callers.
//!
//! ```
//! use std::time::Instant;
//! use zk_client::driver::{Command, Core, Deliver};
//! use zk_proto::session::{Event, RequestId, Session, WatchedEvent};
//!
//! /// A driver that collects what it is handed.
//! #[derive(Default)]
//! struct Collect(Vec<String>);
//!
//! impl Deliver for Collect {
//!     type Reply = &'static str;
//!     type Watch = ();
//!     type Answer<T> = ();
//!     type Subscriber = ();
//!     fn reply(&mut self, to: &'static str, _: RequestId, result: zk_client::Reply) -> bool {
//!         self.0.push(format!("{to}: {}", result.is_ok()));
//!         true
//!     }
//!     fn answer<T>(_: (), _: T) {}
//!     fn watch_event(&mut self, _: &mut (), _: WatchedEvent, _: bool) -> bool {
//!         true
//!     }
//!     fn subscribe(&mut self, _: ()) {}
//!     fn state(&mut self, _: Event, _: &Session) {}
//! }
//!
//! let now = Instant::now();
//! let mut session = Session::new(zk_proto::session::Config::new("127.0.0.1:2181")?, now);
//! let mut core = Core::new(Collect::default());
//! // Closed before it connected: the request is refused at once, and told.
//! core.command(&mut session, now, Command::Close(()));
//! let request = zk_client::op::sync("/").into_parts().0;
//! core.command(&mut session, now, Command::Submit { request, watch: None, reply: "sync" });
//! core.turn(&mut session, now);
//! assert_eq!(core.out.0, ["sync: false"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod core;
mod hosted;
mod link;
mod router;
mod snapshot;

pub use self::core::{Command, Core};
pub use hosted::{Hosted, Machines, Submit};
pub use link::{Deliver, Link};
pub use router::Router;
pub use snapshot::Snapshot;
