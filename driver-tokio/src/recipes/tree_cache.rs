//! TreeCache: a local mirror of a subtree, kept current by one persistent recursive watch,
//! resynchronised after every reconnect (the server replays no missed events to persistent
//! watches), with a stream of changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{no_node_is_none, reconnected};
use crate::{AddWatchMode, AppState, Client, EventType, Result, SessionState, Stat, StateEvent};

/// One node of the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode {
    /// Its data.
    pub data: Bytes,
    /// Its Stat.
    pub stat: Stat,
}

/// A change of the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEvent {
    /// The first full load is done; the mirror is complete.
    Initialized,
    /// A node appeared.
    Added(String),
    /// A node's data or Stat changed.
    Updated(String),
    /// A node went away.
    Removed(String),
    /// The mirror was reloaded after a reconnect; the events before it cover what changed.
    Resynced,
    /// The reader fell more than [`EVENT_BACKLOG`] changes behind and some were dropped:
    /// read the mirror ([`TreeCache::snapshot`]) again; it is current.
    Lagged,
}

type Nodes = Arc<Mutex<BTreeMap<String, TreeNode>>>;

/// How many changes wait for the reader at most. Past that, changes are dropped and the
/// reader hears [`TreeEvent::Lagged`]: the mirror itself is always current, so nothing of
/// the tree is lost, only the account of how it got there.
pub const EVENT_BACKLOG: usize = 1024;

/// The task's end of the event queue: bounded, never blocking the mirror.
#[derive(Debug, Clone)]
struct Events {
    tx: mpsc::Sender<TreeEvent>,
    lagged: Arc<AtomicBool>,
}

impl Events {
    fn send(&self, event: TreeEvent) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(event) {
            self.lagged.store(true, Ordering::Release);
        }
    }

    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A local mirror of the subtree at a path.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::{TreeCache, TreeEvent};
/// let mut cache = TreeCache::start(&client, "/services").await?;
/// println!("{} nodes", cache.len());
/// while let Some(event) = cache.next_event().await {
///     if let TreeEvent::Added(path) = event {
///         println!("new: {path} = {:?}", cache.get(&path).map(|n| n.data));
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TreeCache {
    nodes: Nodes,
    events: mpsc::Receiver<TreeEvent>,
    lagged: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl TreeCache {
    /// Starts mirroring `root` and waits for the first full load.
    pub async fn start(client: &Client, root: &str) -> Result<TreeCache> {
        let nodes: Nodes = Arc::new(Mutex::new(BTreeMap::new()));
        let (tx, mut rx) = mpsc::channel(EVENT_BACKLOG);
        let lagged = Arc::new(AtomicBool::new(false));
        let tx = Events {
            tx,
            lagged: lagged.clone(),
        };
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(run(
            client.clone(),
            root.to_string(),
            nodes.clone(),
            tx,
            ready_tx,
        ));
        ready_rx.await.map_err(|_| crate::Error::Closed)??;
        // The load's own Added events are the mirror's content; start the stream after them.
        while let Ok(e) = rx.try_recv() {
            if e == TreeEvent::Initialized {
                break;
            }
        }
        // The first load's events may have overflowed the queue: they are the mirror.
        lagged.store(false, Ordering::Release);
        Ok(TreeCache {
            nodes,
            events: rx,
            lagged,
            task,
        })
    }

    /// A node of the mirror.
    pub fn get(&self, path: &str) -> Option<TreeNode> {
        self.lock().get(path).cloned()
    }

    /// The names of a node's children in the mirror.
    pub fn children(&self, path: &str) -> Vec<String> {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        self.lock()
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(p, _)| !p[prefix.len()..].contains('/') && p.len() > prefix.len())
            .map(|(p, _)| p[prefix.len()..].to_string())
            .collect()
    }

    /// Every node of the mirror, by path.
    pub fn snapshot(&self) -> BTreeMap<String, TreeNode> {
        self.lock().clone()
    }

    /// The number of nodes mirrored.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the mirror is empty (the root does not exist).
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The next change, or `None` once the cache stopped (the client closed). A reader
    /// that fell behind by more than [`EVENT_BACKLOG`] changes gets [`TreeEvent::Lagged`]
    /// instead of what was dropped. Cancel-safe.
    pub async fn next_event(&mut self) -> Option<TreeEvent> {
        if self.lagged.swap(false, Ordering::AcqRel) {
            // What is queued predates the mirror the reader is about to read.
            while self.events.try_recv().is_ok() {}
            return Some(TreeEvent::Lagged);
        }
        self.events.recv().await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, TreeNode>> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Reads the whole subtree.
async fn load(client: &Client, root: &str) -> Result<BTreeMap<String, TreeNode>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_string()];
    while let Some(path) = todo.pop() {
        let Some((data, stat)) = no_node_is_none(client.get_data(&path).await)? else {
            continue;
        };
        if stat.num_children > 0
            && let Some(children) = no_node_is_none(client.get_children(&path).await)?
        {
            todo.extend(children.iter().map(|c| join(&path, c)));
        }
        out.insert(path, TreeNode { data, stat });
    }
    Ok(out)
}

/// Replaces the mirror with `fresh`, reporting the differences.
fn apply(nodes: &Nodes, fresh: BTreeMap<String, TreeNode>, tx: &Events) {
    let mut map = nodes.lock().unwrap_or_else(|p| p.into_inner());
    let old: BTreeSet<String> = map.keys().cloned().collect();
    for (path, node) in &fresh {
        match map.get(path) {
            None => {
                tx.send(TreeEvent::Added(path.clone()));
            }
            Some(n) if n != node => {
                tx.send(TreeEvent::Updated(path.clone()));
            }
            _ => {}
        }
    }
    for path in old.iter().filter(|p| !fresh.contains_key(*p)) {
        tx.send(TreeEvent::Removed(path.clone()));
    }
    *map = fresh;
}

async fn run(
    client: Client,
    root: String,
    nodes: Nodes,
    tx: Events,
    ready: tokio::sync::oneshot::Sender<Result<()>>,
) {
    let mut ready = Some(ready);
    loop {
        let mut states = client.state_events();
        let setup = async {
            let watcher = client
                .add_watch(&root, AddWatchMode::PersistentRecursive)
                .await?;
            let fresh = load(&client, &root).await?;
            Ok::<_, crate::Error>((watcher, fresh))
        };
        let (mut watcher, fresh) = match setup.await {
            Ok(v) => v,
            Err(e) if e.is_retryable() || e.is(crate::ErrorCode::SessionExpired) => {
                if reconnected(&client).await.is_err() {
                    return;
                }
                continue;
            }
            Err(e) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(e));
                }
                return;
            }
        };
        apply(&nodes, fresh, &tx);
        match ready.take() {
            Some(r) => {
                tx.send(TreeEvent::Initialized);
                let _ = r.send(Ok(()));
            }
            None => {
                tx.send(TreeEvent::Resynced);
            }
        }
        // Follow events until the connection is re-established (missed events must be
        // recovered by a reload) or the watch ends with the session.
        let mut suspended = false;
        loop {
            tokio::select! {
                event = watcher.next() => {
                    let Some(event) = event else { break };
                    match event.kind {
                        EventType::NodeCreated | EventType::NodeDataChanged => {
                            match client.get_data(&event.path).await {
                                Ok((data, stat)) => {
                                    let node = TreeNode { data, stat };
                                    let mut map = nodes.lock().unwrap_or_else(|p| p.into_inner());
                                    let change = match map.insert(event.path.clone(), node.clone()) {
                                        None => Some(TreeEvent::Added(event.path)),
                                        Some(old) if old != node => Some(TreeEvent::Updated(event.path)),
                                        Some(_) => None,
                                    };
                                    drop(map);
                                    if let Some(c) = change {
                                        tx.send(c);
                                    }
                                }
                                Err(e) if e.server_code() == Some(crate::ErrorCode::NoNode) => {}
                                // A connection problem: the reload after reconnecting catches up.
                                Err(_) => {}
                            }
                        }
                        EventType::NodeDeleted => {
                            let prefix = format!("{}/", event.path);
                            let mut map = nodes.lock().unwrap_or_else(|p| p.into_inner());
                            let gone: Vec<String> = map
                                .keys()
                                .filter(|p| **p == event.path || p.starts_with(&prefix))
                                .cloned()
                                .collect();
                            for p in &gone {
                                map.remove(p);
                            }
                            drop(map);
                            for p in gone {
                                tx.send(TreeEvent::Removed(p));
                            }
                        }
                        // The session ended: start over on the next one.
                        EventType::None => break,
                        _ => {}
                    }
                }
                state = states.next() => match state {
                    Some(StateEvent::App(AppState::Suspended)) => suspended = true,
                    Some(StateEvent::Session(s)) if suspended && s.is_connected() => break,
                    Some(StateEvent::App(AppState::Lost)) => break,
                    None => return,
                    _ => {}
                },
            }
        }
        if tx.is_closed() || client.state() == SessionState::Closed {
            return;
        }
        drop(watcher);
        if reconnected(&client).await.is_err() {
            return;
        }
    }
}
