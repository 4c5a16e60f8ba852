//! A mirror of a subtree (Curator's `CuratorCache`, Kazoo's `TreeCache`), as a sans-IO
//! state machine.
//!
//! The machine sets one persistent recursive watch on the root (ZooKeeper 3.6 and later,
//! as `CuratorCache` does), reads the whole subtree, and from then on reads a node again
//! for every event about it: the read, not the event, says what the node is now (a node
//! deleted and created again between an event and its read is simply current). Replies
//! come in order, so the last read of a path wins.
//!
//! Events can be missed while the connection is down, and a session's watches end with
//! it, so after every reconnection the machine reads the subtree again and reports only
//! the differences ([`Outcome::Resynced`] closes such a reload). Read errors other than
//! a missing node end the mirror with [`Outcome::Failed`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bytes::Bytes;
use zk_proto::ErrorCode;
use zk_proto::consts::{AddWatchMode, EventType, KeeperState};
use zk_proto::records::*;
use zk_proto::session::{AppState, Error as SessionError, WatchedEvent};

use crate::io::{Io, again, list, read, sync};
use crate::{Recipe, Tag};

/// A change of the mirror, or of its standing.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A node appeared in the mirror.
    Added(String, Bytes, Stat),
    /// A node's data or Stat changed.
    Updated(String, Bytes, Stat),
    /// A node left the mirror.
    Removed(String),
    /// The first full read is done: the mirror is complete.
    Initialized,
    /// A full read after a reconnection is done (its differences were reported before).
    Resynced,
    /// The mirror stopped: an error no retry can fix (no permission, a bad path, a
    /// closed session).
    Failed(SessionError),
}

/// Something the mirror has for its driver.
pub type Output = crate::Output<Outcome>;

/// A change of a driver's mirror, as its reader hears it.
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
    /// The reader fell behind and some changes were dropped: read the mirror again; it is
    /// current.
    Lagged,
}

/// The names of the children of `path` among the paths of a mirror.
pub fn children_of<V>(mirror: &BTreeMap<String, V>, path: &str) -> Vec<String> {
    let prefix = if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    };
    mirror
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .filter(|(p, _)| p.len() > prefix.len() && !p[prefix.len()..].contains('/'))
        .map(|(p, _)| p[prefix.len()..].to_string())
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    /// Orders the loads after every write committed before the cache started.
    Sync,
    Watch,
    /// A read of the full load of generation `.0`.
    LoadData(u64, String),
    LoadChildren(u64, String),
    /// A read after an event.
    Refresh(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Loading,
    Following,
    Done,
}

/// A mirror of the subtree at one root.
#[derive(Debug)]
pub struct TreeCache {
    root: String,
    phase: Phase,
    mirror: BTreeMap<String, (Bytes, Stat)>,
    /// The load under way: its generation, what it read, and its reads in flight.
    generation: u64,
    fresh: BTreeMap<String, (Bytes, Stat)>,
    loading: usize,
    /// Paths events named during a load, read again after it.
    dirty: BTreeSet<String>,
    initialized: bool,
    /// A sync was answered: loads see what was written before the cache started, even
    /// from a follower that lags (the session never moves to a server further behind).
    synced: bool,
    /// The session the watch was set on, and whether the connection dropped since.
    watch_session: i64,
    session: i64,
    suspended: bool,
    io: Io<Purpose, Outcome>,
}

fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

impl TreeCache {
    /// A mirror of `root` (and everything under it).
    pub fn new(root: &str) -> TreeCache {
        let root = match root.trim_end_matches('/') {
            "" => "/".to_string(),
            r => r.to_string(),
        };
        TreeCache {
            root,
            phase: Phase::Idle,
            mirror: BTreeMap::new(),
            generation: 0,
            fresh: BTreeMap::new(),
            loading: 0,
            dirty: BTreeSet::new(),
            initialized: false,
            synced: false,
            watch_session: 0,
            session: 0,
            suspended: false,
            io: Io::new(),
        }
    }

    /// The mirrored root.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The mirror: every node under the root (itself included) by path.
    pub fn mirror(&self) -> &BTreeMap<String, (Bytes, Stat)> {
        &self.mirror
    }

    /// Whether the first full read is done.
    pub fn is_initialized(&self) -> bool {
        self.initialized
    }

    /// Starts mirroring on the session `session_id`. Ignored unless idle.
    pub fn start(&mut self, _now: Instant, session_id: i64) {
        if self.phase != Phase::Idle {
            return;
        }
        self.session = session_id;
        self.reload();
    }

    fn under_root(&self, path: &str) -> bool {
        self.root == "/"
            || path == self.root
            || path
                .strip_prefix(&self.root)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// Sets the watch (again, when the session changed or it ended) and reads everything.
    fn reload(&mut self) {
        self.phase = Phase::Loading;
        let syncing = self.io.in_flight.values().any(|p| *p == Purpose::Sync);
        if !self.synced && !syncing {
            self.io.submit(Purpose::Sync, sync(&self.root));
        }
        if self.watch_session != self.session || self.watch_session == 0 {
            self.watch_session = self.session;
            let request = Request::AddWatch(AddWatchRequest {
                path: self.root.clone(),
                mode: AddWatchMode::PersistentRecursive.as_i32(),
            });
            self.io.submit(Purpose::Watch, request);
        }
        self.generation += 1;
        self.fresh.clear();
        self.dirty.clear();
        self.loading = 0;
        let root = self.root.clone();
        self.load(root);
    }

    fn load(&mut self, path: String) {
        self.loading += 1;
        let request = read(&path);
        self.io
            .submit(Purpose::LoadData(self.generation, path), request);
    }

    fn fail(&mut self, e: SessionError) {
        self.phase = Phase::Done;
        self.io.emit(Outcome::Failed(e));
    }

    /// Puts what was read into the mirror, reporting the change.
    fn put(&mut self, path: String, data: Bytes, stat: Stat) {
        let outcome = match self.mirror.get(&path) {
            None => Outcome::Added(path.clone(), data.clone(), stat),
            Some((d, s)) if *d != data || *s != stat => {
                Outcome::Updated(path.clone(), data.clone(), stat)
            }
            Some(_) => return,
        };
        self.mirror.insert(path, (data, stat));
        self.io.emit(outcome);
    }

    /// Takes `path` and everything under it out of the mirror.
    fn remove(&mut self, path: &str) {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let gone: Vec<String> = self
            .mirror
            .keys()
            .filter(|p| *p == path || p.starts_with(&prefix))
            .cloned()
            .collect();
        for p in gone.into_iter().rev() {
            self.mirror.remove(&p);
            self.io.emit(Outcome::Removed(p));
        }
    }

    fn load_done(&mut self) {
        let fresh = std::mem::take(&mut self.fresh);
        let gone: Vec<String> = self
            .mirror
            .keys()
            .filter(|p| !fresh.contains_key(*p))
            .cloned()
            .collect();
        for p in gone.into_iter().rev() {
            self.mirror.remove(&p);
            self.io.emit(Outcome::Removed(p));
        }
        for (path, (data, stat)) in fresh {
            self.put(path, data, stat);
        }
        self.phase = Phase::Following;
        self.io.emit(if self.initialized {
            Outcome::Resynced
        } else {
            Outcome::Initialized
        });
        self.initialized = true;
        for path in std::mem::take(&mut self.dirty) {
            self.refresh(path);
        }
    }

    fn refresh(&mut self, path: String) {
        let request = read(&path);
        self.io.submit(Purpose::Refresh(path), request);
    }

    fn on_load_data(&mut self, path: String, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetData(r)) => {
                let has_children = r.stat.num_children > 0;
                self.fresh.insert(path.clone(), (r.data, r.stat));
                if has_children {
                    self.loading += 1;
                    let request = list(&path, false);
                    self.io
                        .submit(Purpose::LoadChildren(self.generation, path), request);
                }
            }
            Ok(_) => return self.fail(SessionError::InvalidRequest("unexpected reply to a read")),
            // Gone meanwhile (or no root yet): an event will tell if it comes back.
            Err(SessionError::Server(ErrorCode::NoNode)) => {}
            Err(e) if again(&e) => return self.reload(),
            Err(e) => return self.fail(e),
        }
        self.loaded_one();
    }

    fn on_load_children(&mut self, path: String, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetChildren(r)) => {
                for child in r.children {
                    self.load(join(&path, &child));
                }
            }
            Ok(_) => {
                return self.fail(SessionError::InvalidRequest(
                    "unexpected reply to a listing",
                ));
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => {}
            Err(e) if again(&e) => return self.reload(),
            Err(e) => return self.fail(e),
        }
        self.loaded_one();
    }

    fn loaded_one(&mut self) {
        self.loading = self.loading.saturating_sub(1);
        if self.loading == 0 && self.phase == Phase::Loading {
            self.load_done();
        }
    }

    fn on_refresh(&mut self, path: String, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetData(r)) => self.put(path, r.data, r.stat),
            Ok(_) => self.fail(SessionError::InvalidRequest("unexpected reply to a read")),
            Err(SessionError::Server(ErrorCode::NoNode)) => self.remove(&path),
            // The reload after reconnecting reads it again.
            Err(e) if again(&e) => {}
            Err(e) => self.fail(e),
        }
    }
}

impl Recipe for TreeCache {
    type Outcome = Outcome;

    fn poll_output(&mut self) -> Option<Output> {
        self.io.out.pop_front()
    }

    fn handle_state(&mut self, _now: Instant, state: AppState, session_id: i64) {
        if matches!(self.phase, Phase::Idle | Phase::Done) {
            return;
        }
        match state {
            AppState::Suspended | AppState::Lost => self.suspended = true,
            AppState::Connected => {
                self.session = session_id;
                if std::mem::take(&mut self.suspended) {
                    // Events may have been missed: read everything again.
                    self.reload();
                }
            }
        }
    }

    fn handle_reply(&mut self, _now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        let Some(purpose) = self.io.in_flight.remove(&tag) else {
            return;
        };
        if matches!(self.phase, Phase::Idle | Phase::Done) {
            return;
        }
        match purpose {
            Purpose::Sync => self.synced |= reply.is_ok(),
            Purpose::Watch => match reply {
                Ok(_) => {}
                Err(e) if again(&e) => {
                    // Set it again with the next reload.
                    self.watch_session = 0;
                }
                Err(e) => self.fail(e),
            },
            Purpose::LoadData(g, path) if g == self.generation => self.on_load_data(path, reply),
            Purpose::LoadChildren(g, path) if g == self.generation => {
                self.on_load_children(path, reply)
            }
            Purpose::LoadData(..) | Purpose::LoadChildren(..) => {}
            Purpose::Refresh(path) => self.on_refresh(path, reply),
        }
    }

    fn handle_watch(&mut self, _now: Instant, _tag: Tag, event: &WatchedEvent) {
        if matches!(self.phase, Phase::Idle | Phase::Done) {
            return;
        }
        if event.kind == EventType::None {
            if event.state == KeeperState::Closed {
                return self.fail(SessionError::Closed);
            }
            // The session's watches ended: set it again on the next session.
            self.watch_session = 0;
            self.suspended = true;
            return;
        }
        if !self.under_root(&event.path) {
            return;
        }
        match self.phase {
            Phase::Loading => {
                self.dirty.insert(event.path.clone());
            }
            _ => self.refresh(event.path.clone()),
        }
    }

    fn release(&mut self, _now: Instant) {
        // Its watch is released by the host once the machine is done.
        self.phase = Phase::Done;
    }

    fn is_done(&self) -> bool {
        self.phase == Phase::Done && self.io.in_flight.is_empty()
    }
}
