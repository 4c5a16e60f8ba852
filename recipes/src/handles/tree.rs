//! The tree cache's handle: a local mirror of a subtree, with the changes that made it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use zk_client::Error;
use zk_proto::Stat;

use super::{Driver, Job, Steer, Watched, host};
use crate::tree::{Outcome, TreeCache as Machine, TreeEvent, children_of};

/// How many changes wait for the reader at most. Past that, changes are dropped and the
/// reader hears [`TreeEvent::Lagged`]: the mirror itself is always current, so nothing of
/// the tree is lost, only the account of how it got there.
pub const EVENT_BACKLOG: usize = 1024;

/// One node of the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode {
    /// Its data.
    pub data: Bytes,
    /// Its Stat.
    pub stat: Stat,
}

/// The mirror and the changes not yet read, as the host keeps them.
#[derive(Default)]
struct Mirror {
    nodes: BTreeMap<String, TreeNode>,
    events: VecDeque<TreeEvent>,
    lagged: bool,
    initialized: bool,
    failed: Option<zk_proto::session::Error>,
    ended: bool,
}

impl Mirror {
    fn apply(&mut self, outcome: Outcome) {
        let event = match outcome {
            Outcome::Added(path, data, stat) => {
                self.nodes.insert(path.clone(), TreeNode { data, stat });
                TreeEvent::Added(path)
            }
            Outcome::Updated(path, data, stat) => {
                self.nodes.insert(path.clone(), TreeNode { data, stat });
                TreeEvent::Updated(path)
            }
            Outcome::Removed(path) => {
                self.nodes.remove(&path);
                TreeEvent::Removed(path)
            }
            Outcome::Initialized => {
                self.initialized = true;
                TreeEvent::Initialized
            }
            Outcome::Resynced => TreeEvent::Resynced,
            Outcome::Failed(e) => {
                self.failed = Some(e);
                return;
            }
        };
        if self.events.len() < EVENT_BACKLOG {
            self.events.push_back(event);
        } else {
            self.lagged = true;
        }
    }
}

/// A local mirror of the subtree at a path (Curator's `TreeCache`, Kazoo's `TreeCache`),
/// kept current by one persistent recursive watch and read again after every reconnect
/// (the server replays no missed events to persistent watches), with the changes as
/// [`TreeEvent`]s. Dropping it stops the mirror and removes its watch from the server.
pub struct TreeCache<D> {
    client: D,
    mirror: Watched<Mirror>,
    _steer: Arc<Steer<Machine>>,
}

impl<D> std::fmt::Debug for TreeCache<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeCache").finish_non_exhaustive()
    }
}

impl<D: Driver> TreeCache<D> {
    /// Starts mirroring `root` and waits for the first full load. Cancel safe: a start
    /// dropped before it returns stops the mirror.
    pub fn start(client: &D, root: &str) -> D::Call<TreeCache<D>> {
        client.call(Self::start_job(client, root))
    }

    /// [`TreeCache::start`] as a job, for handles built on the mirror.
    pub(crate) fn start_job(client: &D, root: &str) -> Job<TreeCache<D>> {
        if let Err(e) = zk_proto::path::validate_path(root) {
            return Job::ready(Err(e.into()));
        }
        let (driver, root) = (client.clone(), root.to_string());
        Job::start(move |hosting, done| {
            let mirror = Watched::new(Mirror::default());
            let report = mirror.clone();
            let session = hosting.session_id();
            let steer = host(
                &hosting,
                Machine::new(&root),
                Box::new(move |m: &mut Machine, now| m.start(now, session)),
                move |m, outcomes| {
                    report.update(|r| match m {
                        Some(_) => outcomes.into_iter().for_each(|o| r.apply(o)),
                        None => r.ended = true,
                    })
                },
            );
            let weak: Weak<Steer<Machine>> = Arc::downgrade(&steer);
            let cell = mirror.clone();
            mirror.add(
                move |r| {
                    if !r.initialized {
                        if let Some(e) = r.failed.take() {
                            return Some(Err(e.into()));
                        }
                        return r.ended.then_some(Err(Error::Closed));
                    }
                    // The load's own changes are the mirror's content: the stream starts
                    // after them, and so does the count of what overflowed.
                    while let Some(e) = r.events.pop_front() {
                        if e == TreeEvent::Initialized {
                            break;
                        }
                    }
                    r.lagged = false;
                    Some(match weak.upgrade() {
                        Some(steer) => Ok(TreeCache {
                            client: driver.clone(),
                            mirror: cell.clone(),
                            _steer: steer,
                        }),
                        None => Err(Error::Closed),
                    })
                },
                |_, _| {},
                done,
            );
            Box::new(steer)
        })
    }

    /// A node of the mirror.
    pub fn get(&self, path: &str) -> Option<TreeNode> {
        self.mirror.read(|r| r.nodes.get(path).cloned())
    }

    /// The names of a node's children in the mirror.
    pub fn children(&self, path: &str) -> Vec<String> {
        self.mirror.read(|r| children_of(&r.nodes, path))
    }

    /// Every node of the mirror, by path.
    pub fn snapshot(&self) -> BTreeMap<String, TreeNode> {
        self.mirror.read(|r| r.nodes.clone())
    }

    /// The number of nodes mirrored.
    pub fn len(&self) -> usize {
        self.mirror.read(|r| r.nodes.len())
    }

    /// Whether the mirror is empty (the root does not exist).
    pub fn is_empty(&self) -> bool {
        self.mirror.read(|r| r.nodes.is_empty())
    }

    /// The next change as `wrap` makes it; `unwrap` gives it back when the caller left
    /// before it was delivered.
    fn next_job<U: Send + 'static>(
        &self,
        wrap: fn(TreeEvent) -> U,
        unwrap: fn(U) -> Option<TreeEvent>,
    ) -> Job<U> {
        self.mirror.wait_or_restore(
            move |r| {
                if r.lagged {
                    // What is queued predates the mirror the reader is about to read.
                    r.lagged = false;
                    r.events.clear();
                    return Some(Ok(wrap(TreeEvent::Lagged)));
                }
                match r.events.pop_front() {
                    Some(e) => Some(Ok(wrap(e))),
                    None => (r.ended || r.failed.is_some()).then_some(Err(Error::Closed)),
                }
            },
            move |r, back| {
                if let Some(e) = back.ok().and_then(unwrap)
                    && e != TreeEvent::Lagged
                {
                    r.events.push_front(e);
                }
            },
        )
    }

    /// The next change. A reader that fell behind by more than [`EVENT_BACKLOG`] changes
    /// gets [`TreeEvent::Lagged`] instead of what was dropped. Fails with
    /// [`Error::Closed`] once the cache stopped (the client closed). Cancel safe: a call
    /// dropped before its change was delivered leaves it for the next.
    pub fn next_event(&mut self) -> D::Call<TreeEvent> {
        self.client.call(self.next_job(|e| e, Some))
    }

    /// Like [`TreeCache::next_event`], waiting at most `timeout`; `None` when nothing
    /// changed in time.
    pub fn next_event_timeout(&mut self, timeout: Duration) -> D::Call<Option<TreeEvent>> {
        let job = self.next_job(Some, |e| e).limit(timeout, || Ok(None));
        self.client.call(job)
    }
}
