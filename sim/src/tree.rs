//! The data tree (`DataTree` of 3.8.0): nodes with their persisted stat, children sets in
//! Java's order, ephemeral, container and TTL bookkeeping, and the watch triggers each
//! change fires.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasherDefault;
use std::hash::DefaultHasher;
use std::sync::Arc;

use bytes::Bytes;
use zk_proto::consts::{EventType, KeeperState};
use zk_proto::records::{Acl, Stat, WatcherEvent};

use crate::ConnId;
use crate::java::JavaHashSet;
use crate::watch::{Mode, WatchManager};

/// A map with a fixed hasher, so runs are reproducible.
pub(crate) type Map<K, V> = HashMap<K, V, BuildHasherDefault<DefaultHasher>>;

/// The owner of every container node.
pub(crate) const CONTAINER_OWNER: i64 = i64::MIN;
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
const RESERVED_BITS: i64 = 0x00ff_ff00_0000_0000;
/// The largest TTL (`EphemeralType.TTL.maxValue()`), in milliseconds.
pub(crate) const MAX_TTL: i64 = 0x00ff_ffff_ffff;

/// What a node's ephemeral owner says it is (`EphemeralType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A persistent node.
    Void,
    /// An ephemeral node of a session.
    Normal,
    /// A container node.
    Container,
    /// A node with a time to live, in milliseconds.
    Ttl(i64),
}

pub(crate) fn kind_of(owner: i64, extended_types: bool) -> Kind {
    if extended_types && owner & EXTENDED_MASK == EXTENDED_MASK && owner & RESERVED_BITS == 0 {
        return Kind::Ttl(owner & MAX_TTL);
    }
    match owner {
        CONTAINER_OWNER => Kind::Container,
        0 => Kind::Void,
        _ => Kind::Normal,
    }
}

/// The owner value a TTL node stores.
pub(crate) fn ttl_owner(ttl: i64) -> i64 {
    EXTENDED_MASK | ttl
}

/// The stat as the server stores it: `cversion` counts child creations only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Persisted {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

impl Persisted {
    fn created(zxid: i64, time: i64, owner: i64) -> Self {
        Persisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            pzxid: zxid,
            ephemeral_owner: owner,
            ..Persisted::default()
        }
    }
}

/// One node.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub data: Bytes,
    pub acl: Arc<Vec<Acl>>,
    pub stat: Persisted,
    pub children: JavaHashSet,
}

impl Node {
    fn new(data: Bytes, acl: Arc<Vec<Acl>>, stat: Persisted) -> Node {
        Node {
            data,
            acl,
            stat,
            // DataNode creates its set with room for 8 on the first child.
            children: JavaHashSet::with_capacity(8),
        }
    }
}

/// A notification for one connection, with the ACL the connection must be able to read
/// for it to be delivered (None: always delivered).
///
/// Debian's 3.8.0 carries the fix for CVE-2024-23944 (ZOOKEEPER-4799): a connection hears
/// of a change only if the changed node's ACL (the parent's, for a child-list change)
/// lets it read.
pub(crate) type Notification = (ConnId, WatcherEvent, Option<Arc<Vec<Acl>>>);

fn event(kind: EventType, path: &str) -> WatcherEvent {
    WatcherEvent {
        kind: kind.as_i32(),
        state: KeeperState::SyncConnected.as_i32(),
        path: path.to_owned(),
    }
}

fn parent_of(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// The key of a path in the node map: the root is stored under "/" (the server keeps it
/// under both "" and "/").
fn key(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}

/// The tree, its watches and the last zxid applied.
#[derive(Debug)]
pub struct DataTree {
    nodes: Map<String, Node>,
    ephemerals: BTreeMap<i64, JavaHashSet>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    pub(crate) data_watches: WatchManager,
    pub(crate) child_watches: WatchManager,
    pub(crate) last_zxid: i64,
    extended_types: bool,
    /// The top-level namespaces read and written (`mntr`'s per-namespace statistics).
    pub(crate) namespaces: Namespaces,
}

/// The top-level namespaces (`/app` of `/app/x`) read and written, as `mntr` lists
/// them (`DataTree.updateReadStat` and `updateWriteStat`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Namespaces {
    pub(crate) read: BTreeSet<String>,
    pub(crate) written: BTreeSet<String>,
}

/// The first name of `path` (`a` of `/a/b`); none for the root.
fn top_namespace(path: &str) -> Option<&str> {
    path.split('/').nth(1).filter(|n| !n.is_empty())
}

impl Namespaces {
    pub(crate) fn read(&mut self, path: &str) {
        if let Some(ns) = top_namespace(path)
            && !self.read.contains(ns)
        {
            self.read.insert(ns.to_owned());
        }
    }

    pub(crate) fn wrote(&mut self, path: &str) {
        if let Some(ns) = top_namespace(path)
            && !self.written.contains(ns)
        {
            self.written.insert(ns.to_owned());
        }
    }
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config` (readable
    /// by anyone, with the aversion -1 the server's constructor leaves on it).
    pub(crate) fn new(config: Bytes, extended_types: bool) -> DataTree {
        let open = Arc::new(Acl::open_unsafe());
        let mut tree = DataTree {
            nodes: Map::default(),
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            data_watches: WatchManager::default(),
            child_watches: WatchManager::default(),
            last_zxid: 0,
            extended_types,
            namespaces: Namespaces::default(),
        };
        let mut root = Node::new(Bytes::new(), open.clone(), Persisted::default());
        root.children.insert("zookeeper");
        let mut proc_node = Node::new(Bytes::new(), open.clone(), Persisted::default());
        proc_node.children.insert("quota");
        proc_node.children.insert("config");
        let mut config_node = Node::new(config, Arc::new(Acl::read_unsafe()), Persisted::default());
        config_node.stat.aversion = -1;
        tree.nodes.insert("/".into(), root);
        tree.nodes.insert("/zookeeper".into(), proc_node);
        tree.nodes.insert(
            "/zookeeper/quota".into(),
            Node::new(Bytes::new(), open, Persisted::default()),
        );
        tree.nodes.insert("/zookeeper/config".into(), config_node);
        tree
    }

    /// The node at `path`.
    /// A copy of the nodes, sessions and last zxid, without any watch: what another member
    /// holds once it has caught up.
    pub(crate) fn replica(&self) -> DataTree {
        DataTree {
            nodes: self.nodes.clone(),
            ephemerals: self.ephemerals.clone(),
            containers: self.containers.clone(),
            ttls: self.ttls.clone(),
            data_watches: WatchManager::default(),
            child_watches: WatchManager::default(),
            last_zxid: self.last_zxid,
            extended_types: self.extended_types,
            namespaces: Namespaces::default(),
        }
    }

    pub(crate) fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(key(path))
    }

    pub(crate) fn extended_types(&self) -> bool {
        self.extended_types
    }

    pub(crate) fn kind(&self, node: &Node) -> Kind {
        kind_of(node.stat.ephemeral_owner, self.extended_types)
    }

    /// `DataNode.copyStat`: the stat clients see. The visible cversion counts creations and
    /// deletions of children; the ephemeral owner shows only for ephemeral nodes.
    pub(crate) fn stat(&self, node: &Node) -> Stat {
        let s = node.stat;
        let n = node.children.len() as i32;
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(n),
            aversion: s.aversion,
            ephemeral_owner: if self.kind(node) == Kind::Normal {
                s.ephemeral_owner
            } else {
                0
            },
            data_length: node.data.len() as i32,
            num_children: n,
            pzxid: s.pzxid,
        }
    }

    /// The node count as `getNodeCount` gives it (the root counted once).
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// `createNode`: the parent's creation count and pzxid move, the node is added, and
    /// watches fire: NodeCreated on the path, NodeChildrenChanged on the parent.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create(
        &mut self,
        path: &str,
        data: Bytes,
        acl: Vec<Acl>,
        owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
        out: &mut Vec<Notification>,
    ) -> Stat {
        self.namespaces.wrote(path);
        let (parent_name, child) = parent_of(path);
        let parent = self
            .nodes
            .get_mut(key(parent_name))
            .expect("prepared creates have a parent");
        if parent_cversion > parent.stat.cversion {
            parent.stat.cversion = parent_cversion;
            parent.stat.pzxid = zxid;
        }
        parent.children.insert(child);
        let parent_acl = parent.acl.clone();
        let acl = Arc::new(acl);
        let node = Node::new(data, acl.clone(), Persisted::created(zxid, time, owner));
        let stat = self.stat(&node);
        self.nodes.insert(path.to_owned(), node);
        self.track_kind(path, owner);
        self.fire_data(path, EventType::NodeCreated, &acl, out);
        self.fire_child(
            key(parent_name),
            EventType::NodeChildrenChanged,
            &parent_acl,
            None,
            out,
        );
        stat
    }

    /// `deleteNode`: the parent's pzxid moves (not its creation count), the node goes,
    /// NodeDeleted fires on the path (once per connection, data and child watches
    /// together), then NodeChildrenChanged on the parent. False if there was no node.
    pub(crate) fn delete(&mut self, path: &str, zxid: i64, out: &mut Vec<Notification>) -> bool {
        self.namespaces.wrote(path);
        let (parent_name, child) = parent_of(path);
        let Some(parent) = self.nodes.get_mut(key(parent_name)) else {
            return false;
        };
        parent.children.remove(child);
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        let parent_acl = parent.acl.clone();
        let Some(node) = self.nodes.remove(path) else {
            return false;
        };
        match kind_of(node.stat.ephemeral_owner, self.extended_types) {
            Kind::Container => {
                self.containers.remove(path);
            }
            Kind::Ttl(_) => {
                self.ttls.remove(path);
            }
            Kind::Normal => {
                if let Some(set) = self.ephemerals.get_mut(&node.stat.ephemeral_owner) {
                    set.remove(path);
                }
            }
            Kind::Void => {}
        }
        let done = self.fire_data(path, EventType::NodeDeleted, &node.acl, out);
        self.fire_child(path, EventType::NodeDeleted, &node.acl, Some(&done), out);
        self.fire_child(
            key(parent_name),
            EventType::NodeChildrenChanged,
            &parent_acl,
            None,
            out,
        );
        true
    }

    /// `setData` with the new version; NodeDataChanged fires.
    pub(crate) fn set_data(
        &mut self,
        path: &str,
        data: Bytes,
        version: i32,
        zxid: i64,
        time: i64,
        out: &mut Vec<Notification>,
    ) -> Stat {
        self.namespaces.wrote(path);
        let node = self
            .nodes
            .get_mut(path)
            .expect("prepared setData has a node");
        node.data = data;
        node.stat.mtime = time;
        node.stat.mzxid = zxid;
        node.stat.version = version;
        let node = &self.nodes[path];
        let (stat, acl) = (self.stat(node), node.acl.clone());
        self.fire_data(path, EventType::NodeDataChanged, &acl, out);
        stat
    }

    /// `setACL` with the new aversion; no watch fires.
    pub(crate) fn set_acl(&mut self, path: &str, acl: Vec<Acl>, version: i32) -> Stat {
        let node = self
            .nodes
            .get_mut(path)
            .expect("prepared setACL has a node");
        node.stat.aversion = version;
        node.acl = Arc::new(acl);
        self.stat(&self.nodes[path])
    }

    fn fire_data(
        &mut self,
        path: &str,
        kind: EventType,
        acl: &Arc<Vec<Acl>>,
        out: &mut Vec<Notification>,
    ) -> BTreeSet<ConnId> {
        let conns = self.data_watches.trigger(path, kind);
        out.extend(
            conns
                .iter()
                .map(|c| (*c, event(kind, path), Some(acl.clone()))),
        );
        conns
    }

    fn fire_child(
        &mut self,
        path: &str,
        kind: EventType,
        acl: &Arc<Vec<Acl>>,
        suppress: Option<&BTreeSet<ConnId>>,
        out: &mut Vec<Notification>,
    ) {
        let conns = self.child_watches.trigger(path, kind);
        out.extend(
            conns
                .iter()
                .filter(|c| suppress.is_none_or(|s| !s.contains(c)))
                .map(|c| (*c, event(kind, path), Some(acl.clone()))),
        );
    }

    /// A node's children in the order the server lists them.
    pub(crate) fn children(&self, node: &Node) -> Vec<String> {
        node.children.iter().map(str::to_owned).collect()
    }

    /// `getEphemerals(session)`: a clone of the session's set, in the clone's order.
    pub(crate) fn ephemerals(&self, session: i64) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|s| s.java_clone().iter().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// How many ephemeral nodes there are.
    pub(crate) fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(JavaHashSet::len).sum()
    }

    /// Forgets the session's ephemeral set once its nodes are deleted.
    pub(crate) fn drop_session(&mut self, session: i64) {
        self.ephemerals.remove(&session);
    }

    /// `getAllChildrenNumber`: every descendant.
    pub(crate) fn descendants(&self, path: &str) -> i32 {
        if path == "/" {
            // The server's map holds the root twice ("" and "/") and subtracts both.
            return self.nodes.len() as i32 - 1;
        }
        let prefix = format!("{path}/");
        self.nodes.keys().filter(|k| k.starts_with(&prefix)).count() as i32
    }

    /// Containers and TTL nodes due for deletion at wall time `time`, in the order the
    /// container manager deletes them (its candidates are a `HashSet`).
    pub(crate) fn reapable(&self, time: i64) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.containers {
            if let Some(n) = self.nodes.get(p)
                && n.children.is_empty()
                && n.stat.cversion > 0
            {
                out.push(p.clone());
            }
        }
        for p in &self.ttls {
            if let Some(n) = self.nodes.get(p)
                && n.children.is_empty()
                && let Kind::Ttl(ttl) = self.kind(n)
                && ttl != 0
                && time - n.stat.mtime > ttl
            {
                out.push(p.clone());
            }
        }
        let mut candidates = JavaHashSet::new();
        for p in &out {
            candidates.insert(p);
        }
        candidates.iter().map(str::to_owned).collect()
    }

    /// `setWatches`: watches whose node changed after `relative_zxid` fire now (into
    /// `out`), the others are registered for `conn`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn set_watches(
        &mut self,
        relative_zxid: i64,
        data: &[String],
        exist: &[String],
        child: &[String],
        persistent: &[String],
        recursive: &[String],
        conn: ConnId,
        out: &mut Vec<Notification>,
    ) {
        for path in data {
            match self.get(path).map(|n| n.stat.mzxid) {
                None => out.push((conn, event(EventType::NodeDeleted, path), None)),
                Some(m) if m > relative_zxid => {
                    out.push((conn, event(EventType::NodeDataChanged, path), None))
                }
                Some(_) => {
                    self.data_watches.add(path, conn, Mode::Standard);
                }
            }
        }
        for path in exist {
            if self.get(path).is_some() {
                out.push((conn, event(EventType::NodeCreated, path), None));
            } else {
                self.data_watches.add(path, conn, Mode::Standard);
            }
        }
        for path in child {
            match self.get(path).map(|n| n.stat.pzxid) {
                None => out.push((conn, event(EventType::NodeDeleted, path), None)),
                Some(p) if p > relative_zxid => {
                    out.push((conn, event(EventType::NodeChildrenChanged, path), None))
                }
                Some(_) => {
                    self.child_watches.add(path, conn, Mode::Standard);
                }
            }
        }
        for path in persistent {
            self.child_watches.add(path, conn, Mode::Persistent);
            self.data_watches.add(path, conn, Mode::Persistent);
        }
        for path in recursive {
            self.child_watches.add(path, conn, Mode::Recursive);
            self.data_watches.add(path, conn, Mode::Recursive);
        }
    }

    /// Every node with what a snapshot keeps of it, parents before children, children
    /// in the order the server lists them.
    pub(crate) fn nodes_for_snapshot(&self) -> Vec<(String, &Node)> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec!["/".to_owned()];
        while let Some(path) = stack.pop() {
            let Some(node) = self.nodes.get(key(&path)) else {
                continue;
            };
            let base = if path == "/" { "" } else { path.as_str() };
            let children: Vec<String> = node
                .children
                .iter()
                .map(|c| format!("{base}/{c}"))
                .collect();
            out.push((path, node));
            stack.extend(children.into_iter().rev());
        }
        out
    }

    /// Files a new node under what its owner makes it: a container, a TTL node, or an
    /// ephemeral node of its session.
    fn track_kind(&mut self, path: &str, owner: i64) {
        match kind_of(owner, self.extended_types) {
            Kind::Container => {
                self.containers.insert(path.to_owned());
            }
            Kind::Ttl(_) => {
                self.ttls.insert(path.to_owned());
            }
            Kind::Normal => {
                self.ephemerals.entry(owner).or_default().insert(path);
            }
            Kind::Void => {}
        }
    }

    /// Puts a node back as a snapshot kept it: its parent is already back. Ephemeral,
    /// container and TTL bookkeeping follow from its owner.
    pub(crate) fn restore_node(&mut self, path: &str, data: Bytes, acl: Vec<Acl>, stat: Persisted) {
        let owner = stat.ephemeral_owner;
        let mut node = Node::new(data, Arc::new(acl), stat);
        if let Some(old) = self.nodes.remove(key(path)) {
            // The fixed nodes (/, /zookeeper, ...) keep their children.
            node.children = old.children;
        }
        if path != "/" {
            let (parent_name, child) = parent_of(path);
            if let Some(parent) = self.nodes.get_mut(key(parent_name)) {
                parent.children.insert(child);
            }
            self.track_kind(path, owner);
        }
        self.nodes.insert(key(path).to_owned(), node);
    }

    /// Every path in the tree, sorted (for inspection and invariants).
    pub(crate) fn paths(&self) -> Vec<String> {
        let mut all: Vec<String> = self.nodes.keys().cloned().collect();
        all.sort();
        all
    }

    /// Checks the tree's own invariants: every node but the root has its parent, which
    /// lists it; every ephemeral is in its session's set. Panics with what broke.
    pub(crate) fn check(&self) {
        for (path, node) in &self.nodes {
            if path != "/" {
                let (parent, child) = parent_of(path);
                let p = self
                    .nodes
                    .get(key(parent))
                    .unwrap_or_else(|| panic!("{path} has no parent"));
                assert!(p.children.contains(child), "{parent} does not list {child}");
            }
            for child in node.children.iter() {
                let full = if path == "/" {
                    format!("/{child}")
                } else {
                    format!("{path}/{child}")
                };
                assert!(
                    self.nodes.contains_key(&full),
                    "{full} is listed but missing"
                );
            }
            if self.kind(node) == Kind::Normal {
                assert!(
                    self.ephemerals
                        .get(&node.stat.ephemeral_owner)
                        .is_some_and(|s| s.contains(path)),
                    "{path} is missing from its session's ephemerals"
                );
            }
        }
    }
}
