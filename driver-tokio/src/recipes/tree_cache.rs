//! TreeCache: a local mirror of a subtree ([`zk_recipes::tree::TreeCache`], driven on the
//! connection task), kept current by one persistent recursive watch, resynchronised after
//! every reconnect (the server replays no missed events to persistent watches), with a
//! stream of changes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use zk_recipes::tree::{Outcome, TreeCache as Machine, children_of};

pub use zk_recipes::tree::TreeEvent;

use super::runner::{self, Control, Steer};
use crate::{Client, Result, Stat};

/// One node of the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode {
    /// Its data.
    pub data: Bytes,
    /// Its Stat.
    pub stat: Stat,
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
    /// Dropping it stops the machine.
    _control: Steer<Machine>,
}

impl TreeCache {
    /// Starts mirroring `root` and waits for the first full load. Cancel-safe: a start
    /// dropped before it returns stops the mirror.
    pub async fn start(client: &Client, root: &str) -> Result<TreeCache> {
        zk_proto::path::validate_path(root)?;
        let nodes: Nodes = Arc::new(Mutex::new(BTreeMap::new()));
        let (tx, mut rx) = mpsc::channel(EVENT_BACKLOG);
        let lagged = Arc::new(AtomicBool::new(false));
        let events = Events {
            tx,
            lagged: lagged.clone(),
        };
        let (ready_tx, ready_rx) = oneshot::channel::<Result<()>>();
        let mut ready_tx = Some(ready_tx);
        let mirror = nodes.clone();
        let session = client.session_id();
        let start: Control<Machine> = Box::new(move |m, now| m.start(now, session));
        let control = runner::spawn(client, Machine::new(root), start, move |_m: &Machine, o| {
            let event = match o {
                Some(Outcome::Added(path, data, stat)) => {
                    lock(&mirror).insert(path.clone(), TreeNode { data, stat });
                    TreeEvent::Added(path)
                }
                Some(Outcome::Updated(path, data, stat)) => {
                    lock(&mirror).insert(path.clone(), TreeNode { data, stat });
                    TreeEvent::Updated(path)
                }
                Some(Outcome::Removed(path)) => {
                    lock(&mirror).remove(&path);
                    TreeEvent::Removed(path)
                }
                Some(Outcome::Initialized) => TreeEvent::Initialized,
                Some(Outcome::Resynced) => TreeEvent::Resynced,
                Some(Outcome::Failed(e)) => {
                    if let Some(r) = ready_tx.take() {
                        let _ = r.send(Err(e.into()));
                    }
                    return;
                }
                None => return,
            };
            let first = event == TreeEvent::Initialized;
            events.send(event);
            // After the event is queued: the starter drains up to it.
            if first && let Some(r) = ready_tx.take() {
                let _ = r.send(Ok(()));
            }
        });
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
            _control: control,
        })
    }

    /// A node of the mirror.
    pub fn get(&self, path: &str) -> Option<TreeNode> {
        lock(&self.nodes).get(path).cloned()
    }

    /// The names of a node's children in the mirror.
    pub fn children(&self, path: &str) -> Vec<String> {
        children_of(&lock(&self.nodes), path)
    }

    /// Every node of the mirror, by path.
    pub fn snapshot(&self) -> BTreeMap<String, TreeNode> {
        lock(&self.nodes).clone()
    }

    /// The number of nodes mirrored.
    pub fn len(&self) -> usize {
        lock(&self.nodes).len()
    }

    /// Whether the mirror is empty (the root does not exist).
    pub fn is_empty(&self) -> bool {
        lock(&self.nodes).is_empty()
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
}

fn lock(nodes: &Nodes) -> std::sync::MutexGuard<'_, BTreeMap<String, TreeNode>> {
    nodes.lock().unwrap_or_else(|p| p.into_inner())
}
