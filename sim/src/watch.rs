//! The server's watch tables (`WatchManager` of 3.8.0): which connection watches which path,
//! in which mode, and who a change notifies. A watch belongs to a connection, not to a
//! session: when the connection goes, its watches go, and the client sets them again.

use std::collections::{BTreeMap, BTreeSet};

use zk_proto::consts::EventType;

use crate::ConnId;

/// How a connection watches a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A one-shot watch (getData, exists, getChildren).
    Standard,
    /// `addWatch` persistent.
    Persistent,
    /// `addWatch` persistent recursive.
    Recursive,
}

/// One of the server's two watch managers (data and child).
///
/// The mode is kept per connection and path, and the last registration wins: a one-shot
/// getData watch on a path that already has a persistent watch turns it into a one-shot
/// watch (ZOOKEEPER-4466, fixed after 3.8).
#[derive(Debug, Default)]
pub(crate) struct WatchManager {
    table: BTreeMap<String, BTreeSet<ConnId>>,
    by_conn: BTreeMap<ConnId, BTreeSet<String>>,
    /// Only modes other than `Standard` are stored.
    modes: BTreeMap<(ConnId, String), Mode>,
    recursive: usize,
}

/// The paths a change to `path` concerns: the path itself, then its ancestors up to `/`.
fn path_and_parents(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.rfind('/') {
            _ if current == "/" => None,
            Some(0) => Some("/"),
            Some(i) => Some(&current[..i]),
            None => None,
        };
        Some(current)
    })
}

impl WatchManager {
    fn mode(&self, conn: ConnId, path: &str) -> Mode {
        self.modes
            .get(&(conn, path.to_owned()))
            .copied()
            .unwrap_or(Mode::Standard)
    }

    fn set_mode(&mut self, conn: ConnId, path: &str, mode: Mode) {
        let old = if mode == Mode::Standard {
            self.modes.remove(&(conn, path.to_owned()))
        } else {
            self.modes.insert((conn, path.to_owned()), mode)
        };
        let was = old == Some(Mode::Recursive);
        let is = mode == Mode::Recursive;
        if is && !was {
            self.recursive += 1;
        } else if was && !is {
            self.recursive -= 1;
        }
    }

    /// Each connection's watched paths.
    pub(crate) fn by_conn(&self) -> &BTreeMap<ConnId, BTreeSet<String>> {
        &self.by_conn
    }

    /// Registers a watch; true if the path is new for this connection.
    pub(crate) fn add(&mut self, path: &str, conn: ConnId, mode: Mode) -> bool {
        self.table.entry(path.to_owned()).or_default().insert(conn);
        self.set_mode(conn, path, mode);
        self.by_conn
            .entry(conn)
            .or_default()
            .insert(path.to_owned())
    }

    /// Forgets every watch of a connection (it closed).
    pub(crate) fn remove_conn(&mut self, conn: ConnId) {
        let Some(paths) = self.by_conn.remove(&conn) else {
            return;
        };
        for p in paths {
            if let Some(set) = self.table.get_mut(&p) {
                set.remove(&conn);
                if set.is_empty() {
                    self.table.remove(&p);
                }
            }
            self.set_mode(conn, &p, Mode::Standard);
        }
    }

    /// The connections a change of `kind` on `path` notifies, one-shot watches removed.
    /// Recursive watches on the path's ancestors see every change but child-list changes.
    pub(crate) fn trigger(&mut self, path: &str, kind: EventType) -> BTreeSet<ConnId> {
        let mut notified = BTreeSet::new();
        let walk: Vec<&str> = if self.recursive == 0 {
            vec![path]
        } else {
            path_and_parents(path).collect()
        };
        for (depth, local) in walk.into_iter().enumerate() {
            let at_parent = depth > 0;
            let Some(watchers) = self.table.get(local) else {
                continue;
            };
            let mut fired_once = Vec::new();
            for &conn in watchers {
                match self.mode(conn, local) {
                    Mode::Recursive if kind != EventType::NodeChildrenChanged => {
                        notified.insert(conn);
                    }
                    Mode::Recursive => {}
                    mode if !at_parent => {
                        notified.insert(conn);
                        if mode == Mode::Standard {
                            fired_once.push(conn);
                        }
                    }
                    _ => {}
                }
            }
            if !fired_once.is_empty() {
                let watchers = self.table.get_mut(local).expect("looked up above");
                for conn in fired_once {
                    watchers.remove(&conn);
                    if let Some(paths) = self.by_conn.get_mut(&conn) {
                        paths.remove(local);
                    }
                }
                if watchers.is_empty() {
                    self.table.remove(local);
                }
            }
        }
        notified
    }

    /// `containsWatcher` as 3.8.0 has it: true when *any* connection of the same server
    /// watches the path (the server does not check that the watch is the caller's; each
    /// server has its own tables, so `same_server` says which connections count).
    pub(crate) fn contains(
        &self,
        path: &str,
        conn: ConnId,
        same_server: impl Fn(ConnId) -> bool,
    ) -> bool {
        self.table
            .get(path)
            .is_some_and(|watchers| watchers.iter().any(|c| same_server(*c)))
            || self.mode(conn, path) == Mode::Recursive
    }

    /// `removeWatcher(path, conn)`: true if this connection had a watch here.
    pub(crate) fn remove(&mut self, path: &str, conn: ConnId) -> bool {
        let Some(paths) = self.by_conn.get_mut(&conn) else {
            return false;
        };
        if !paths.remove(path) {
            return false;
        }
        let Some(set) = self.table.get_mut(path) else {
            return false;
        };
        if !set.remove(&conn) {
            return false;
        }
        if set.is_empty() {
            self.table.remove(path);
        }
        self.set_mode(conn, path, Mode::Standard);
        true
    }

    /// Watch registrations (connection and path pairs).
    pub(crate) fn count(&self) -> usize {
        self.table.values().map(BTreeSet::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ConnId = ConnId(1);
    const B: ConnId = ConnId(2);

    #[test]
    fn parents_walk_up_to_the_root() {
        let all: Vec<_> = path_and_parents("/a/b/c").collect();
        assert_eq!(all, ["/a/b/c", "/a/b", "/a", "/"]);
        assert_eq!(path_and_parents("/").collect::<Vec<_>>(), ["/"]);
    }

    #[test]
    fn one_shot_watches_fire_once_and_persistent_ones_stay() {
        let mut w = WatchManager::default();
        w.add("/a", A, Mode::Standard);
        w.add("/a", B, Mode::Persistent);
        assert_eq!(w.trigger("/a", EventType::NodeDataChanged).len(), 2);
        let again = w.trigger("/a", EventType::NodeDataChanged);
        assert_eq!(again.into_iter().collect::<Vec<_>>(), [B]);
    }

    #[test]
    fn recursive_watches_skip_child_list_changes() {
        let mut w = WatchManager::default();
        w.add("/a", A, Mode::Recursive);
        assert!(w.trigger("/a/b/c", EventType::NodeCreated).contains(&A));
        assert!(w.trigger("/a", EventType::NodeChildrenChanged).is_empty());
        assert!(w.trigger("/a", EventType::NodeDataChanged).contains(&A));
    }

    #[test]
    fn the_last_registration_sets_the_mode() {
        let mut w = WatchManager::default();
        w.add("/a", A, Mode::Persistent);
        w.add("/a", A, Mode::Standard);
        assert_eq!(w.trigger("/a", EventType::NodeDataChanged).len(), 1);
        assert!(w.trigger("/a", EventType::NodeDataChanged).is_empty());
    }

    #[test]
    fn a_closed_connection_leaves_nothing() {
        let mut w = WatchManager::default();
        w.add("/a", A, Mode::Recursive);
        w.add("/b", A, Mode::Standard);
        w.remove_conn(A);
        assert_eq!(w.count(), 0);
        assert_eq!(w.recursive, 0);
        assert!(w.trigger("/a/x", EventType::NodeCreated).is_empty());
    }
}
