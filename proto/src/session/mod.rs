//! The session state machine: everything between "open a TCP connection" and "hand a result
//! to the caller", with no IO and no clock. Time is always an argument.
//!
//! [`Session`] shows the whole driver loop.

mod config;
mod core;
mod end;
mod error;
mod event;
mod link;
mod login;
mod membership;
mod metrics;
mod replies;
mod requests;
pub mod rng;
mod state;

pub use crate::hosts::{DEFAULT_PORT, HostAddr, HostError, HostList};
pub use crate::request_id::RequestId;
pub use config::Config;
pub use core::Session;
pub use error::{Disconnect, Error};
pub use event::{Action, Event, ProbeResult, StateEvent, WatchedEvent};
pub use metrics::SessionMetrics;
pub use state::{AppState, SessionState};
