//! The watches' handles: a node's data or children, at once and after every change.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use zk_client::{Error, Result};
use zk_proto::Stat;

use super::{Driver, Job, Steer, Watched, host};
use crate::watch::{NodeWatch, Outcome, Target};

/// What a watch sees of its node: the node with its value, or no node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node<T> {
    /// The node exists, with this value (its data, or its children's names, sorted).
    Present(T, Stat),
    /// The node does not exist.
    Absent,
}

impl<T> Node<T> {
    /// The value, if the node exists.
    pub fn value(&self) -> Option<&T> {
        match self {
            Node::Present(v, _) => Some(v),
            Node::Absent => None,
        }
    }

    /// The node's Stat, if it exists.
    pub fn stat(&self) -> Option<&Stat> {
        match self {
            Node::Present(_, s) => Some(s),
            Node::Absent => None,
        }
    }

    /// The value and Stat, if the node exists.
    pub fn into_present(self) -> Option<(T, Stat)> {
        match self {
            Node::Present(v, s) => Some((v, s)),
            Node::Absent => None,
        }
    }
}

impl<T> From<Option<(T, Stat)>> for Node<T> {
    fn from(v: Option<(T, Stat)>) -> Node<T> {
        match v {
            Some((v, s)) => Node::Present(v, s),
            None => Node::Absent,
        }
    }
}

/// The latest value the machine reported and nobody took yet, and whether it ended.
struct Latest<T> {
    value: Option<Result<Node<T>>>,
    ended: bool,
}

/// A followed node, whatever is followed of it.
struct Follower<D, T> {
    client: D,
    steer: Arc<Steer<NodeWatch>>,
    latest: Watched<Latest<T>>,
}

impl<D: Driver, T: Send + 'static> Follower<D, T> {
    fn start(
        client: &D,
        path: &str,
        target: Target,
        pick: fn(Outcome) -> Option<Result<Node<T>>>,
    ) -> Follower<D, T> {
        let latest = Watched::new(Latest {
            value: None,
            ended: false,
        });
        let report = latest.clone();
        let steer = host(
            &client.hosting(),
            NodeWatch::new(path, target),
            Box::new(|m: &mut NodeWatch, now| m.start(now)),
            move |m, outcomes: Vec<Outcome>| {
                report.update(|l| match m {
                    // Values overtaken before anybody took them are skipped: a slow
                    // reader gets the latest, and nothing piles up.
                    Some(_) => {
                        if let Some(last) = outcomes.into_iter().filter_map(pick).last() {
                            l.value = Some(last);
                        }
                    }
                    None => l.ended = true,
                })
            },
        );
        Follower {
            client: client.clone(),
            steer,
            latest,
        }
    }

    /// The next value as `wrap` makes it; `unwrap` gives it back when the caller left
    /// before it was delivered.
    fn next_job<U: Send + 'static>(
        &self,
        wrap: fn(Node<T>) -> U,
        unwrap: fn(U) -> Option<Node<T>>,
    ) -> Job<U> {
        self.latest.wait_or_restore(
            move |l| match l.value.take() {
                Some(r) => {
                    if r.is_err() {
                        // The failure is told once; later calls hear the watch ended.
                        l.ended = true;
                    }
                    Some(r.map(wrap))
                }
                None => l.ended.then_some(Err(Error::Closed)),
            },
            move |l, back| {
                // Taken for a caller that left: back where it was, unless newer came.
                if l.value.is_none()
                    && let Some(node) = back.ok().and_then(unwrap)
                {
                    l.value = Some(Ok(node));
                }
            },
        )
    }

    fn next(&self) -> D::Call<Node<T>> {
        self.client.call(self.next_job(|n| n, Some))
    }

    fn next_timeout(&self, timeout: Duration) -> D::Call<Option<Node<T>>> {
        let job = self.next_job(Some, |n| n).limit(timeout, || Ok(None));
        self.client.call(job)
    }

    /// Calls `f` where the client runs callbacks with every value, latest first, until
    /// the watch fails or ends.
    fn call_back(&self, f: impl FnMut(Result<Node<T>>) + Send + 'static) {
        let f = Arc::new(Mutex::new(f));
        let posted = Arc::new(AtomicBool::new(false));
        let alive = Arc::downgrade(&self.steer);
        let (client, latest) = (self.client.clone(), self.latest.clone());
        self.latest.observe(
            move |l| {
                if l.value.is_some() && !posted.swap(true, Ordering::AcqRel) {
                    let (latest, posted, f) = (latest.clone(), posted.clone(), f.clone());
                    client.callback(Box::new(move || {
                        posted.store(false, Ordering::Release);
                        let mut taken = None;
                        latest.update(|l| taken = l.value.take());
                        if let Some(r) = taken {
                            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                            f(r);
                        }
                    }));
                }
                l.ended && l.value.is_none()
            },
            move || alive.strong_count() > 0,
        );
    }
}

fn data(o: Outcome) -> Option<Result<Node<Bytes>>> {
    match o {
        Outcome::Data(v) => Some(Ok(v.into())),
        Outcome::Failed(e) => Some(Err(e.into())),
        Outcome::Children(_) => None,
    }
}

fn children(o: Outcome) -> Option<Result<Node<Vec<String>>>> {
    match o {
        Outcome::Children(v) => Some(Ok(v.into())),
        Outcome::Failed(e) => Some(Err(e.into())),
        Outcome::Data(_) => None,
    }
}

/// The data of one node, Kazoo's `DataWatch`: [`Node::Present`] with its data while it
/// exists, [`Node::Absent`] while it does not, first the value now and then once per
/// change, through absence, reconnects and a new session. A slow reader gets the latest
/// value: values overtaken meanwhile are skipped, so nothing piles up.
///
/// A bad path, a node that may not be read or a closed client fails the next call with
/// that error; every call after it fails with [`Error::Closed`]. Dropping the watch stops
/// it, and releases its watch on the server.
///
/// Read it with [`DataWatch::next`] (cancel safe: a call dropped before its value was
/// delivered leaves the value for the next one), or hand it a callback with
/// [`DataWatch::with_callback`].
pub struct DataWatch<D> {
    follower: Follower<D, Bytes>,
}

impl<D> std::fmt::Debug for DataWatch<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataWatch").finish_non_exhaustive()
    }
}

impl<D: Driver> DataWatch<D> {
    /// Starts watching `path`.
    pub fn new(client: &D, path: &str) -> DataWatch<D> {
        DataWatch {
            follower: Follower::start(client, path, Target::Data, data),
        }
    }

    /// Starts watching `path`, calling `f` with each value where the client runs
    /// callbacks (one at a time, in order, off the session's own thread or task: `f`
    /// must not block). After an error, `f` is not called again. Dropping the returned
    /// watch stops the calls.
    pub fn with_callback(
        client: &D,
        path: &str,
        f: impl FnMut(Result<Node<Bytes>>) + Send + 'static,
    ) -> DataWatch<D> {
        let watch = DataWatch::new(client, path);
        watch.follower.call_back(f);
        watch
    }

    /// The next value: the first call gets the value now, later ones wait for a change.
    // A call in the client's convention, not an iterator's `next`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> D::Call<Node<Bytes>> {
        self.follower.next()
    }

    /// Like [`DataWatch::next`], waiting at most `timeout`; `None` when nothing changed in
    /// time.
    pub fn next_timeout(&mut self, timeout: Duration) -> D::Call<Option<Node<Bytes>>> {
        self.follower.next_timeout(timeout)
    }
}

/// The children of one node, Kazoo's `ChildrenWatch`: [`Node::Present`] with the sorted
/// names while it exists (its Stat's `cversion` counts every child created or deleted, so
/// a child that left and came back shows as a change), [`Node::Absent`] while it does
/// not, first the list now and then once per change. Errors, slow readers and callbacks
/// as for [`DataWatch`].
pub struct ChildrenWatch<D> {
    follower: Follower<D, Vec<String>>,
}

impl<D> std::fmt::Debug for ChildrenWatch<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildrenWatch").finish_non_exhaustive()
    }
}

impl<D: Driver> ChildrenWatch<D> {
    /// Starts watching the children of `path`.
    pub fn new(client: &D, path: &str) -> ChildrenWatch<D> {
        ChildrenWatch {
            follower: Follower::start(client, path, Target::Children, children),
        }
    }

    /// Starts watching the children of `path`, calling `f` with each list as
    /// [`DataWatch::with_callback`] does.
    pub fn with_callback(
        client: &D,
        path: &str,
        f: impl FnMut(Result<Node<Vec<String>>>) + Send + 'static,
    ) -> ChildrenWatch<D> {
        let watch = ChildrenWatch::new(client, path);
        watch.follower.call_back(f);
        watch
    }

    /// The next list: the first call gets the list now, later ones wait for a change.
    // A call in the client's convention, not an iterator's `next`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> D::Call<Node<Vec<String>>> {
        self.follower.next()
    }

    /// Like [`ChildrenWatch::next`], waiting at most `timeout`; `None` when nothing
    /// changed in time.
    pub fn next_timeout(&mut self, timeout: Duration) -> D::Call<Option<Node<Vec<String>>>> {
        self.follower.next_timeout(timeout)
    }
}
