//! Watch records: notifications, re-registration after a reconnect, and the watch
//! management requests.

use crate::consts::{EventType, KeeperState};

record! {
    /// A watch notification (xid -1).
    pub struct WatcherEvent {
        /// The event type, see [`EventType`].
        kind: i32,
        /// The keeper state, see [`KeeperState`].
        state: i32,
        /// The node path (empty for session events).
        path: String,
    }
}

impl WatcherEvent {
    /// The typed event type, if known.
    pub fn event_type(&self) -> Option<EventType> {
        EventType::from_i32(self.kind)
    }

    /// The typed keeper state, if known.
    pub fn keeper_state(&self) -> Option<KeeperState> {
        KeeperState::from_i32(self.state)
    }
}

record! {
    /// Re-registers one-shot watches after a reconnect (opcode 101, xid -8).
    pub struct SetWatches {
        /// The last zxid the client saw: watches on nodes changed after it fire at once.
        relative_zxid: i64,
        /// Data watches (from getData and from exists on an existing node).
        data_watches: Vec<String> [paths],
        /// Exist watches (from exists on a missing node).
        exist_watches: Vec<String> [paths],
        /// Child watches.
        child_watches: Vec<String> [paths],
    }
}

record! {
    /// Re-registers every kind of watch after a reconnect (opcode 105, xid -8; 3.6+).
    pub struct SetWatches2 {
        /// The last zxid the client saw.
        relative_zxid: i64,
        /// Data watches.
        data_watches: Vec<String> [paths],
        /// Exist watches.
        exist_watches: Vec<String> [paths],
        /// Child watches.
        child_watches: Vec<String> [paths],
        /// Persistent watches.
        persistent_watches: Vec<String> [paths],
        /// Persistent recursive watches.
        persistent_recursive_watches: Vec<String> [paths],
    }
}

record! {
    /// Sets a persistent or persistent recursive watch (opcode 106).
    pub struct AddWatchRequest {
        /// The node path.
        path: String [path],
        /// See [`crate::consts::AddWatchMode`].
        mode: i32,
    }
}

record! {
    /// Asks whether a watch of a kind is set on a path (opcode 17).
    pub struct CheckWatchesRequest {
        /// The node path.
        path: String [path],
        /// See [`crate::consts::WatcherType`].
        kind: i32,
    }
}

record! {
    /// Removes the session's watches of a kind on a path (opcode 18).
    pub struct RemoveWatchesRequest {
        /// The node path.
        path: String [path],
        /// See [`crate::consts::WatcherType`].
        kind: i32,
    }
}
