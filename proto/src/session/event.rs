//! What the session hands to its driver: actions to perform and events to deliver.

use std::time::Instant;

use super::error::{Disconnect, Error};
use super::state::{AppState, SessionState};
use crate::consts::{EventType, KeeperState};
use crate::hosts::HostAddr;
use crate::records::Response;
use crate::request_id::RequestId;
use crate::watch::WatchKind;

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to `addr` (server number `host` in the shuffled list), closing
    /// any other one, then call `handle_connected` or `handle_connect_failed`.
    Connect {
        /// Index of the host in [`super::Session::hosts`].
        host: usize,
        /// Where to connect.
        addr: HostAddr,
    },
    /// Close the connection. The session already counts it as gone: do not report it back
    /// with `handle_disconnected`.
    Disconnect(Disconnect),
    /// On a separate, short-lived connection to `addr`, send the four bytes `isro` and read
    /// the answer (`rw` or `ro`), then call `handle_probe_result`. Give up at `deadline`:
    /// the session then counts the host unreachable by itself and ignores a later answer.
    Probe {
        /// Index of the host.
        host: usize,
        /// Where to connect.
        addr: HostAddr,
        /// When the session stops waiting for the answer; drop the probe's connection then.
        deadline: Instant,
    },
}

/// What a read-only probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    /// The server answered `rw`.
    ReadWrite,
    /// The server answered `ro` or anything else.
    ReadOnly,
    /// The server could not be reached.
    Unreachable,
}

impl ProbeResult {
    /// The server's answer to `isro`: `rw` means read-write; anything else (`ro`, or a
    /// server closing without a word) is taken for read-only.
    pub fn from_answer(answer: &[u8]) -> ProbeResult {
        if answer.starts_with(b"rw") {
            ProbeResult::ReadWrite
        } else {
            ProbeResult::ReadOnly
        }
    }

    /// The word a driver sends to ask.
    pub const QUESTION: &'static [u8; 4] = b"isro";
}

/// A watch fired, or ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// The request that registered the watch.
    pub watch: RequestId,
    /// What happened. [`EventType::None`] for the final event of a watch ended by the
    /// session (expired, closed, auth failed).
    pub kind: EventType,
    /// The session state the event was sent in: `SyncConnected` for node events, `Expired`,
    /// `Closed` or `AuthFailed` for final events.
    pub state: KeeperState,
    /// The node path, without the chroot.
    pub path: String,
}

impl WatchedEvent {
    /// The final event of watch `watch` when its session is gone and nothing more can come:
    /// [`EventType::None`] in [`KeeperState::Closed`], on no path. A driver hands it to a
    /// waiter whose watch ended without one.
    pub fn ended(watch: RequestId) -> WatchedEvent {
        WatchedEvent {
            watch,
            kind: EventType::None,
            state: KeeperState::Closed,
            path: String::new(),
        }
    }

    /// Whether the watch ends with this event whatever its kind: the session ended it
    /// ([`EventType::None`]) or the server removed it. A one-shot watch
    /// ([`crate::watch::WatchKind::is_one_shot`]) also ends with its first event.
    pub fn is_final(&self) -> bool {
        matches!(
            self.kind,
            EventType::None
                | EventType::DataWatchRemoved
                | EventType::ChildWatchRemoved
                | EventType::PersistentWatchRemoved
        )
    }
}

/// Something that happened, for the driver to deliver.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The session moved to another state.
    State {
        /// The new state.
        state: SessionState,
        /// Why a connection was dropped, when that caused the change.
        reason: Option<Disconnect>,
    },
    /// The application view changed (follows `State`).
    App(AppState),
    /// A request completed. Each [`RequestId`] completes exactly once.
    Complete {
        /// The request.
        id: RequestId,
        /// Its outcome. Paths in it are relative to the chroot.
        result: Result<Response, Error>,
        /// The watch this request left on the server, if it left one: its events will
        /// carry this request's id (as [`WatchedEvent::watch`]) until its final one. A
        /// driver routes them from here; by the time it reads the registry the watch may
        /// already have fired.
        watch: Option<WatchKind>,
    },
    /// A watch fired or ended.
    Watch(WatchedEvent),
}

/// A session transition as state listeners see it: the detailed state, or the application
/// view (Kazoo's Connected / Suspended / Lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateEvent {
    /// The detailed state changed.
    Session(SessionState),
    /// The application view changed.
    App(AppState),
}

impl StateEvent {
    /// The state event an [`Event`] carries, if it is one.
    pub fn of(event: &Event) -> Option<StateEvent> {
        match event {
            Event::State { state, .. } => Some(StateEvent::Session(*state)),
            Event::App(app) => Some(StateEvent::App(*app)),
            _ => None,
        }
    }

    /// The application view, if this is an application-view transition.
    pub fn app(self) -> Option<AppState> {
        match self {
            StateEvent::App(a) => Some(a),
            StateEvent::Session(_) => None,
        }
    }
}
