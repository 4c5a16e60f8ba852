//! Session states: the server's view and the coarse view applications act on.

/// Where the session stands, in the server's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Looking for a server: connecting, or waiting before the next attempt.
    Connecting,
    /// Connected to a server that serves reads and writes.
    Connected,
    /// Connected to a server cut off from its quorum: reads work, writes fail with
    /// `NotReadOnly`.
    ConnectedReadOnly,
    /// The server refused the credentials; the session is over.
    AuthFailed,
    /// Closed by the application; the session is over.
    Closed,
    /// The server expired the session (or no server was reachable for longer than the
    /// session timeout). Ephemeral nodes and watches are gone.
    Expired,
}

impl SessionState {
    /// A state the session does not leave by itself (Expired is left when the session is
    /// renewed).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionState::AuthFailed | SessionState::Closed | SessionState::Expired
        )
    }

    /// Connected, read-write or read-only.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }
}

/// The view applications act on, with Kazoo's rules.
///
/// - `Connected`: connected, read-write or read-only.
/// - `Suspended`: the connection dropped and the client is looking for a server. The session
///   (ephemeral nodes, watches) may still be alive; do not assume you hold a lock.
/// - `Lost`: the session is gone (expired, auth failed, closed). Ephemeral nodes are gone.
///
/// A fresh session starts `Lost`; going from `Lost` to connecting is not reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppState {
    /// See the type docs.
    Connected,
    /// See the type docs.
    Suspended,
    /// See the type docs.
    Lost,
}

impl AppState {
    /// The application view after the session moved to `state`, coming from `self`.
    pub fn after(self, state: SessionState) -> AppState {
        match state {
            SessionState::Connected | SessionState::ConnectedReadOnly => AppState::Connected,
            SessionState::Connecting => match self {
                AppState::Lost => AppState::Lost,
                AppState::Connected | AppState::Suspended => AppState::Suspended,
            },
            SessionState::AuthFailed | SessionState::Closed | SessionState::Expired => {
                AppState::Lost
            }
        }
    }
}
