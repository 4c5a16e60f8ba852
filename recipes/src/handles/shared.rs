//! Shared values: Curator's `SharedValue` and `SharedCount`.

use std::sync::Arc;

use bytes::Bytes;
use zk_client::{CreateOptions, Error, Result};
use zk_proto::ErrorCode;

use super::watch::Node;
use super::{Driver, Job, Steer, Watched, host};
use crate::watch::{NodeWatch, Outcome, Target};

/// A value with the version of the node it was read from (Curator's `VersionedValue`):
/// what [`SharedValue::try_set`] compares against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// The node's data version it was read at.
    pub version: i32,
}

/// What the watch last saw, kept for every reader (not taken by one).
struct Seen {
    node: Option<Result<Node<Bytes>>>,
    ended: bool,
}

/// A value shared through one node, watched and versioned (Curator's `SharedValue`): every
/// process sees the latest value, and [`SharedValue::try_set`] writes only over the value
/// the caller read, so concurrent writers never lose each other's updates. The node holds
/// the raw bytes, so Curator's `SharedValue` and Kazoo readers share it.
///
/// Made by [`SharedValue::start`], which creates the node with a seed value when it is
/// missing. The value follows the node through reconnects and new sessions (the watch of
/// [`DataWatch`](super::DataWatch), which reads after a `sync`); a deleted node reads as
/// `NoNode` until it is back. Dropping the handle stops the watch.
pub struct SharedValue<D> {
    client: D,
    path: String,
    seen: Watched<Seen>,
    _watch: Arc<Steer<NodeWatch>>,
}

impl<D> std::fmt::Debug for SharedValue<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedValue")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<D: Driver> SharedValue<D> {
    /// The shared value at `path`, created (with its missing parents) holding `seed` when
    /// it does not exist yet; an existing value is kept.
    pub fn start(client: &D, path: &str, seed: impl Into<Bytes>) -> D::Call<SharedValue<D>> {
        self::start(client, path, seed.into())
    }

    /// The latest value and its version; waits for the first read after
    /// [`SharedValue::start`]. `NoNode` while the node is deleted.
    pub fn get(&self) -> D::Call<Versioned<Bytes>> {
        let path = self.path.clone();
        self.client.call(self.seen.wait(move |s| present(s, &path)))
    }

    /// The latest value known now, without waiting (`None` before the first read, or while
    /// the node is deleted).
    pub fn current(&self) -> Option<Versioned<Bytes>> {
        self.seen
            .read(|s| present(s, &self.path))
            .and_then(|r| r.ok())
    }

    /// Waits until the value is newer than `seen` (a later version), and returns it.
    pub fn changed(&self, seen: &Versioned<Bytes>) -> D::Call<Versioned<Bytes>> {
        let (path, after) = (self.path.clone(), seen.version);
        let job = self.seen.wait(move |s| match present(s, &path)? {
            Ok(v) if v.version <= after => None,
            Err(e) if e.is(ErrorCode::NoNode) => None,
            other => Some(other),
        });
        self.client.call(job)
    }

    /// Writes `value` whatever the node holds (Curator's `setValue`); the new version.
    pub fn set(&self, value: impl Into<Bytes>) -> D::Call<i32> {
        let op = zk_client::op::set_data(&self.path, value.into(), None);
        self.client
            .call(Job::op(op).and_then(|stat| Ok(stat.version)).bounded())
    }

    /// Writes `value` only if the node still holds the version `previous` was read at
    /// (Curator's `trySetValue`): `true` when written, `false` when another write came
    /// first (read again and retry). A call whose reply was lost fails with
    /// `ConnectionLoss`: the write may have landed; [`SharedValue::get`] tells.
    pub fn try_set(&self, previous: &Versioned<Bytes>, value: impl Into<Bytes>) -> D::Call<bool> {
        let op = zk_client::op::set_data(&self.path, value.into(), Some(previous.version));
        let job = Job::op(op)
            .then(|r| match r {
                Ok(_) => Ok(true),
                Err(e) if e.is(ErrorCode::BadVersion) => Ok(false),
                Err(e) => Err(e),
            })
            .bounded();
        self.client.call(job)
    }
}

fn present(s: &Seen, path: &str) -> Option<Result<Versioned<Bytes>>> {
    match &s.node {
        Some(Ok(Node::Present(value, stat))) => Some(Ok(Versioned {
            value: value.clone(),
            version: stat.version,
        })),
        Some(Ok(Node::Absent)) => Some(Err(Error::Server {
            code: ErrorCode::NoNode,
            path: Some(path.to_string()),
        })),
        Some(Err(e)) => Some(Err(e.clone())),
        None => s.ended.then_some(Err(Error::Closed)),
    }
}

fn start<D: Driver>(client: &D, path: &str, seed: Bytes) -> D::Call<SharedValue<D>> {
    let create = zk_client::op::create(
        path,
        seed,
        &CreateOptions::persistent().with_parents(),
        &client.default_acl(),
    );
    let (client2, path2) = (client.clone(), path.to_string());
    let job = Job::plan(create.into_plan())
        .then(move |r| match r {
            Ok(_) => Ok(()),
            Err(e) if e.is(ErrorCode::NodeExists) => Ok(()),
            Err(e) => Err(e),
        })
        .and_then(move |()| Ok(watching(&client2, &path2)))
        .bounded();
    client.call(job)
}

/// Hosts the watch of `path` and keeps what it sees.
fn watching<D: Driver>(client: &D, path: &str) -> SharedValue<D> {
    let seen = Watched::new(Seen {
        node: None,
        ended: false,
    });
    let report = seen.clone();
    let watch = host(
        &client.hosting(),
        NodeWatch::new(path, Target::Data),
        Box::new(|m: &mut NodeWatch, now| m.start(now)),
        move |m, outcomes: Vec<Outcome>| {
            report.update(|s| match m {
                Some(_) => {
                    for o in outcomes {
                        match o {
                            Outcome::Data(v) => s.node = Some(Ok(v.into())),
                            Outcome::Failed(e) => s.node = Some(Err(e.into())),
                            Outcome::Children(_) => {}
                        }
                    }
                }
                None => s.ended = true,
            })
        },
    );
    SharedValue {
        client: client.clone(),
        path: path.to_string(),
        seen,
        _watch: watch,
    }
}

/// A shared integer (Curator's `SharedCount`): a [`SharedValue`] holding a 4-byte
/// big-endian `i32`, as Curator writes it, so Curator's services and ours count on one
/// node. A node holding anything shorter than 4 bytes fails the read with
/// `Error::BadData`, naming what it found.
#[derive(Debug)]
pub struct SharedCount<D> {
    value: SharedValue<D>,
}

impl<D: Driver> SharedCount<D> {
    /// The shared count at `path`, created holding `seed` when missing.
    pub fn start(client: &D, path: &str, seed: i32) -> D::Call<SharedCount<D>> {
        let create = zk_client::op::create(
            path,
            Bytes::copy_from_slice(&seed.to_be_bytes()),
            &CreateOptions::persistent().with_parents(),
            &client.default_acl(),
        );
        let (client2, path2) = (client.clone(), path.to_string());
        let job = Job::plan(create.into_plan())
            .then(move |r| match r {
                Ok(_) => Ok(()),
                Err(e) if e.is(ErrorCode::NodeExists) => Ok(()),
                Err(e) => Err(e),
            })
            .and_then(move |()| {
                Ok(SharedCount {
                    value: watching(&client2, &path2),
                })
            })
            .bounded();
        client.call(job)
    }

    /// The latest count and its version; waits for the first read.
    pub fn get(&self) -> D::Call<Versioned<i32>> {
        let path = self.value.path.clone();
        let job = self
            .value
            .seen
            .wait(move |s| present(s, &path).map(|r| r.and_then(|v| count(v, &path))));
        self.value.client.call(job)
    }

    /// The latest count known now, without waiting.
    pub fn current(&self) -> Option<Versioned<i32>> {
        self.value
            .current()
            .and_then(|v| count(v, &self.value.path).ok())
    }

    /// Waits until the count is newer than `seen` (a later version), and returns it.
    pub fn changed(&self, seen: &Versioned<i32>) -> D::Call<Versioned<i32>> {
        let (path, after) = (self.value.path.clone(), seen.version);
        let job = self.value.seen.wait(move |s| match present(s, &path)? {
            Ok(v) if v.version <= after => None,
            Err(e) if e.is(ErrorCode::NoNode) => None,
            other => Some(other.and_then(|v| count(v, &path))),
        });
        self.value.client.call(job)
    }

    /// Writes `count` whatever the node holds (Curator's `setCount`); the new version.
    pub fn set(&self, count: i32) -> D::Call<i32> {
        self.value.set(Bytes::copy_from_slice(&count.to_be_bytes()))
    }

    /// Writes `count` only over the version `previous` was read at (Curator's
    /// `trySetCount`): `false` when another write came first.
    pub fn try_set(&self, previous: &Versioned<i32>, count: i32) -> D::Call<bool> {
        let previous = Versioned {
            value: Bytes::new(),
            version: previous.version,
        };
        self.value
            .try_set(&previous, Bytes::copy_from_slice(&count.to_be_bytes()))
    }
}

/// A count from Curator's encoding: the first 4 bytes, big-endian (more are ignored, as
/// Curator reads it).
fn count(v: Versioned<Bytes>, path: &str) -> Result<Versioned<i32>> {
    match v.value.get(..4) {
        Some(b) => Ok(Versioned {
            value: i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            version: v.version,
        }),
        None => Err(Error::BadData {
            path: path.to_string(),
            why: format!(
                "{} bytes, where a shared count is 4 (a big-endian i32)",
                v.value.len()
            ),
        }),
    }
}
