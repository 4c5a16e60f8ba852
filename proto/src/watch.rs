//! The watch registry: which requests asked to hear about which nodes, and what to send
//! after a reconnect so the server knows again.
//!
//! Paths here are the server's (chroot included), so events match them directly and
//! re-registration writes them as they are.

use std::collections::BTreeMap;

use crate::consts::{EventType, WatcherType};
use crate::records::{Request, SetWatches, SetWatches2};
use crate::request_id::RequestId;

/// The reference client splits re-registration into frames of at most this many bytes of
/// paths (`SET_WATCHES_MAX_LENGTH`), keeping each well under the server's frame limit.
pub const SET_WATCHES_MAX_PATH_BYTES: usize = 128 * 1024;

/// What a registration listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchKind {
    /// One-shot: the node's data changes or it is deleted (`getData`, or `exists` on a node
    /// that exists).
    Data,
    /// One-shot: the node is created (`exists` on a missing node).
    Exist,
    /// One-shot: the node's children change or it is deleted (`getChildren`).
    Child,
    /// Until removed: data and children events of the node (`addWatch` persistent).
    Persistent,
    /// Until removed: data events of the node and every descendant (`addWatch` recursive).
    PersistentRecursive,
}

impl WatchKind {
    /// Fires once and is then removed.
    pub fn is_one_shot(self) -> bool {
        matches!(self, WatchKind::Data | WatchKind::Exist | WatchKind::Child)
    }

    /// Removed by a `removeWatches` of type `kind`, as the server decides it.
    pub fn removed_by(self, kind: WatcherType) -> bool {
        match kind {
            WatcherType::Children => self == WatchKind::Child,
            WatcherType::Data => matches!(self, WatchKind::Data | WatchKind::Exist),
            WatcherType::Persistent => self == WatchKind::Persistent,
            WatcherType::PersistentRecursive => self == WatchKind::PersistentRecursive,
            WatcherType::Any => true,
        }
    }

    /// The event a registration of this kind gets when it is removed on request.
    pub fn removed_event(self) -> EventType {
        match self {
            WatchKind::Data | WatchKind::Exist => EventType::DataWatchRemoved,
            WatchKind::Child => EventType::ChildWatchRemoved,
            WatchKind::Persistent | WatchKind::PersistentRecursive => {
                EventType::PersistentWatchRemoved
            }
        }
    }
}

/// Registrations by server path and kind, in registration order.
#[derive(Debug, Default, Clone)]
pub struct WatchRegistry {
    by_key: BTreeMap<(String, WatchKind), Vec<RequestId>>,
    by_id: BTreeMap<RequestId, (String, WatchKind)>,
    recursive: usize,
}

impl WatchRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `id` for events of `kind` on `path`.
    pub fn add(&mut self, id: RequestId, path: &str, kind: WatchKind) {
        if self.by_id.insert(id, (path.to_string(), kind)).is_some() {
            debug_assert!(false, "a request registers at most one watch");
            return;
        }
        if kind == WatchKind::PersistentRecursive {
            self.recursive += 1;
        }
        self.by_key
            .entry((path.to_string(), kind))
            .or_default()
            .push(id);
    }

    /// Forgets one registration; returns its path and kind if it existed.
    pub fn remove(&mut self, id: RequestId) -> Option<(String, WatchKind)> {
        let (path, kind) = self.by_id.remove(&id)?;
        let key = (path, kind);
        if let Some(ids) = self.by_key.get_mut(&key) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_key.remove(&key);
            }
        }
        if kind == WatchKind::PersistentRecursive {
            self.recursive -= 1;
        }
        Some(key)
    }

    /// The number of registrations.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// No registrations.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The path and kind of a registration.
    pub fn get(&self, id: RequestId) -> Option<(&str, WatchKind)> {
        self.by_id.get(&id).map(|(p, k)| (p.as_str(), *k))
    }

    /// Any registration of any kind on `path`.
    pub fn any_on(&self, path: &str) -> bool {
        self.by_key
            .range(
                (path.to_string(), WatchKind::Data)
                    ..=(path.to_string(), WatchKind::PersistentRecursive),
            )
            .next()
            .is_some()
    }

    /// Any registration of `kind` on `path`.
    pub fn contains(&self, path: &str, kind: WatchKind) -> bool {
        self.by_key.contains_key(&(path.to_string(), kind))
    }

    fn take(&mut self, path: &str, kind: WatchKind, out: &mut Vec<RequestId>) {
        if let Some(ids) = self.by_key.remove(&(path.to_string(), kind)) {
            for id in &ids {
                self.by_id.remove(id);
            }
            out.extend(ids);
        }
    }

    fn copy(&self, path: &str, kind: WatchKind, out: &mut Vec<RequestId>) {
        if let Some(ids) = self.by_key.get(&(path.to_string(), kind)) {
            out.extend(ids);
        }
    }

    /// The registrations a node event on `path` reaches, in the order the reference client
    /// delivers them; one-shot registrations among them are removed.
    pub fn fire(&mut self, kind: EventType, path: &str) -> Vec<RequestId> {
        let mut out = Vec::new();
        match kind {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                self.take(path, WatchKind::Data, &mut out);
                self.take(path, WatchKind::Exist, &mut out);
                self.persistent(path, true, &mut out);
            }
            EventType::NodeDeleted => {
                self.take(path, WatchKind::Data, &mut out);
                self.take(path, WatchKind::Exist, &mut out);
                self.take(path, WatchKind::Child, &mut out);
                self.persistent(path, true, &mut out);
            }
            // Recursive watches do not hear about children: the server does not send them
            // child events (their creations and deletions arrive as node events instead).
            EventType::NodeChildrenChanged => {
                self.take(path, WatchKind::Child, &mut out);
                self.persistent(path, false, &mut out);
            }
            _ => {}
        }
        out
    }

    fn persistent(&self, path: &str, recursive: bool, out: &mut Vec<RequestId>) {
        self.copy(path, WatchKind::Persistent, out);
        if !recursive || self.recursive == 0 {
            return;
        }
        let mut p = path;
        loop {
            self.copy(p, WatchKind::PersistentRecursive, out);
            if p == "/" || p.is_empty() {
                break;
            }
            p = match p.rfind('/') {
                Some(0) => "/",
                Some(at) => &p[..at],
                None => break,
            };
        }
    }

    /// Removes the registrations on `path` that a `removeWatches` of type `kind` removes on
    /// the server, returning them with their kinds.
    pub fn remove_matching(
        &mut self,
        path: &str,
        kind: WatcherType,
    ) -> Vec<(RequestId, WatchKind)> {
        let mut out = Vec::new();
        for wk in [
            WatchKind::Data,
            WatchKind::Exist,
            WatchKind::Child,
            WatchKind::Persistent,
            WatchKind::PersistentRecursive,
        ] {
            if wk.removed_by(kind) {
                let mut ids = Vec::new();
                self.take(path, wk, &mut ids);
                if wk == WatchKind::PersistentRecursive {
                    self.recursive -= ids.len();
                }
                out.extend(ids.into_iter().map(|id| (id, wk)));
            }
        }
        out
    }

    /// Removes every registration, returning each with its path (for final events).
    pub fn drain(&mut self) -> Vec<(RequestId, String)> {
        self.by_key.clear();
        self.recursive = 0;
        std::mem::take(&mut self.by_id)
            .into_iter()
            .map(|(id, (path, _))| (id, path))
            .collect()
    }

    /// The requests that re-register every watch after a reconnect, telling the server the
    /// last zxid seen so it fires at once for nodes that changed meanwhile.
    ///
    /// As in the reference client, paths go into batches of about
    /// [`SET_WATCHES_MAX_PATH_BYTES`] (a batch closes once it reaches that many bytes), in the
    /// order data, exist, child, persistent, persistent-recursive; a batch with no persistent
    /// watches is sent as the older `SetWatches`, so servers before 3.6 understand it.
    pub fn set_watches(&self, relative_zxid: i64, max_path_bytes: usize) -> Vec<Request> {
        let mut lists: [Vec<&str>; 5] = Default::default();
        for (path, kind) in self.by_key.keys() {
            lists[*kind as usize].push(path);
        }
        let mut out = Vec::new();
        let mut batch = SetWatches2 {
            relative_zxid,
            ..SetWatches2::default()
        };
        let mut bytes = 0;
        for (k, list) in lists.iter().enumerate() {
            for path in list {
                let target = match k {
                    0 => &mut batch.data_watches,
                    1 => &mut batch.exist_watches,
                    2 => &mut batch.child_watches,
                    3 => &mut batch.persistent_watches,
                    _ => &mut batch.persistent_recursive_watches,
                };
                target.push(path.to_string());
                bytes += path.len();
                if bytes >= max_path_bytes {
                    out.push(finish(std::mem::replace(
                        &mut batch,
                        SetWatches2 {
                            relative_zxid,
                            ..SetWatches2::default()
                        },
                    )));
                    bytes = 0;
                }
            }
        }
        if bytes > 0 {
            out.push(finish(batch));
        }
        out
    }
}

fn finish(b: SetWatches2) -> Request {
    if b.persistent_watches.is_empty() && b.persistent_recursive_watches.is_empty() {
        Request::SetWatches(SetWatches {
            relative_zxid: b.relative_zxid,
            data_watches: b.data_watches,
            exist_watches: b.exist_watches,
            child_watches: b.child_watches,
        })
    } else {
        Request::SetWatches2(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> RequestId {
        RequestId(n)
    }

    #[test]
    fn one_shot_watches_fire_once_persistent_ones_stay() {
        let mut r = WatchRegistry::new();
        r.add(id(1), "/a", WatchKind::Data);
        r.add(id(2), "/a", WatchKind::Data);
        r.add(id(3), "/a", WatchKind::Persistent);
        r.add(id(4), "/", WatchKind::PersistentRecursive);
        r.add(id(5), "/a", WatchKind::Child);
        assert_eq!(
            r.fire(EventType::NodeDataChanged, "/a"),
            [id(1), id(2), id(3), id(4)]
        );
        assert_eq!(r.fire(EventType::NodeDataChanged, "/a"), [id(3), id(4)]);
        assert_eq!(r.fire(EventType::NodeChildrenChanged, "/a"), [id(5), id(3)]);
        assert_eq!(r.fire(EventType::NodeCreated, "/a/b/c"), [id(4)]);
        assert_eq!(r.fire(EventType::NodeChildrenChanged, "/a/b"), []);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn deletion_reaches_data_exist_and_child_watches() {
        let mut r = WatchRegistry::new();
        r.add(id(1), "/n", WatchKind::Exist);
        r.add(id(2), "/n", WatchKind::Child);
        r.add(id(3), "/n", WatchKind::Data);
        r.add(id(4), "/n/x", WatchKind::Data);
        r.add(id(5), "/n", WatchKind::PersistentRecursive);
        assert_eq!(
            r.fire(EventType::NodeDeleted, "/n"),
            [id(3), id(1), id(2), id(5)]
        );
        assert_eq!(r.fire(EventType::NodeDeleted, "/n/x"), [id(4), id(5)]);
    }

    #[test]
    fn remove_matching_follows_the_server() {
        let mut r = WatchRegistry::new();
        r.add(id(1), "/n", WatchKind::Exist);
        r.add(id(2), "/n", WatchKind::Child);
        r.add(id(3), "/n", WatchKind::PersistentRecursive);
        r.add(id(4), "/m", WatchKind::Data);
        assert_eq!(
            r.remove_matching("/n", WatcherType::Data),
            [(id(1), WatchKind::Exist)]
        );
        assert_eq!(
            r.remove_matching("/n", WatcherType::Any),
            [
                (id(2), WatchKind::Child),
                (id(3), WatchKind::PersistentRecursive)
            ]
        );
        assert_eq!(r.fire(EventType::NodeDataChanged, "/n/q"), []);
        assert_eq!(r.len(), 1);
        assert_eq!(r.remove(id(4)), Some(("/m".into(), WatchKind::Data)));
        assert!(r.is_empty());
    }

    #[test]
    fn set_watches_batches_by_path_bytes_and_picks_the_record() {
        let mut r = WatchRegistry::new();
        for i in 0..10 {
            r.add(id(i), &format!("/d{i}"), WatchKind::Data);
        }
        r.add(id(100), "/p", WatchKind::Persistent);
        // 3 bytes per data path: batches close at 9 bytes.
        let reqs = r.set_watches(77, 9);
        assert_eq!(reqs.len(), 4);
        let Request::SetWatches(first) = &reqs[0] else {
            panic!("{:?}", reqs[0])
        };
        assert_eq!(first.relative_zxid, 77);
        assert_eq!(first.data_watches, ["/d0", "/d1", "/d2"]);
        let Request::SetWatches2(last) = &reqs[3] else {
            panic!("{:?}", reqs[3])
        };
        assert_eq!(last.data_watches, ["/d9"]);
        assert_eq!(last.persistent_watches, ["/p"]);
        assert!(WatchRegistry::new().set_watches(1, 9).is_empty());
    }
}
