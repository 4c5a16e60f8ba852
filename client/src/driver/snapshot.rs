//! The session as the handles see it.

use std::time::Duration;

use zk_proto::session::Session;

/// The session as a client's handles see it, published by the driver after every turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The session state.
    pub state: zk_proto::session::SessionState,
    /// The application view (Connected / Suspended / Lost).
    pub app: zk_proto::session::AppState,
    /// The session id (0 before the first connection).
    pub session_id: i64,
    /// The index into `hosts` of the server carrying the session, while connected.
    pub server: Option<usize>,
    /// The negotiated session timeout, once connected.
    pub timeout: Option<Duration>,
    /// The session's host list, replaced only when its version changes.
    pub hosts: std::sync::Arc<[zk_proto::session::HostAddr]>,
    /// The version of `hosts`.
    pub hosts_version: u64,
}

impl Snapshot {
    /// `session` now, sharing `previous`'s host list when it did not change.
    pub fn of(session: &Session, previous: Option<&Snapshot>) -> Snapshot {
        let hosts = match previous {
            Some(p) if p.hosts_version == session.hosts_version() => p.hosts.clone(),
            _ => session.hosts().to_vec().into(),
        };
        Snapshot {
            state: session.state(),
            app: session.app_state(),
            session_id: session.session_id(),
            server: session
                .current_host()
                .filter(|_| session.state().is_connected()),
            timeout: session.negotiated_timeout(),
            hosts,
            hosts_version: session.hosts_version(),
        }
    }

    /// Whether this is still what `session` looks like: compares the fields one by one,
    /// and the host list by its version, without building a snapshot.
    #[inline]
    pub fn is_of(&self, session: &Session) -> bool {
        let state = session.state();
        self.state == state
            && self.app == session.app_state()
            && self.session_id == session.session_id()
            && self.server == session.current_host().filter(|_| state.is_connected())
            && self.timeout == session.negotiated_timeout()
            && self.hosts_version == session.hosts_version()
    }

    /// A session that is over, for a handle whose driver is gone.
    pub fn closed() -> Snapshot {
        Snapshot {
            state: zk_proto::session::SessionState::Closed,
            app: zk_proto::session::AppState::Lost,
            session_id: 0,
            server: None,
            timeout: None,
            hosts: std::sync::Arc::new([]),
            hosts_version: 0,
        }
    }

    /// The server carrying the session now, as written in the connect string.
    pub fn server_addr(&self) -> Option<zk_proto::session::HostAddr> {
        self.hosts.get(self.server?).cloned()
    }
}

/// Writes a client's accessors of the session's [`Snapshot`]: the driver's client type
/// has `fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T`.
#[doc(hidden)]
#[macro_export]
macro_rules! snapshot_accessors {
    () => {
        /// The session state now.
        pub fn state(&self) -> $crate::__proto::session::SessionState {
            self.read(|s| s.state)
        }

        /// The application view now (Connected / Suspended / Lost).
        pub fn app_state(&self) -> $crate::__proto::session::AppState {
            self.read(|s| s.app)
        }

        /// The session id (0 before the first connection).
        pub fn session_id(&self) -> i64 {
            self.read(|s| s.session_id)
        }

        /// The server the session is connected to now, as written in the connect string.
        pub fn server(&self) -> Option<$crate::__proto::session::HostAddr> {
            self.read(|s| s.server_addr())
        }

        /// The servers the session may use now: the connect string's, shuffled, or the
        /// list a reconfiguration or `update_hosts` left.
        pub fn hosts(&self) -> Vec<$crate::__proto::session::HostAddr> {
            self.read(|s| s.hosts.to_vec())
        }

        /// The negotiated session timeout, once connected.
        pub fn session_timeout(&self) -> Option<std::time::Duration> {
            self.read(|s| s.timeout)
        }
    };
}
