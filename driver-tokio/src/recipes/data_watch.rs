//! DataWatch and ChildrenWatch: [`zk_recipes::watch::NodeWatch`] on the connection task, the
//! node's value at once and after every change, through absence, reconnects and session
//! renewals.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::watch;
use zk_recipes::watch::{NodeWatch, Outcome, Target};

use super::runner::{self, Control, Steer};
use crate::{Client, Error, Result, Stat};

type Changed = Pin<Box<dyn Future<Output = (watch::Receiver<Option<Outcome>>, bool)> + Send>>;

/// What both watches share: the machine's task, and the latest outcome it reported.
struct Follower {
    rx: watch::Receiver<Option<Outcome>>,
    _control: Steer<NodeWatch>,
    pending: Option<Changed>,
    ended: bool,
}

impl Follower {
    fn start(client: &Client, path: &str, target: Target) -> Follower {
        let (tx, rx) = watch::channel(None);
        let start: Control<NodeWatch> = Box::new(|m: &mut NodeWatch, now| m.start(now));
        let control = runner::spawn(client, NodeWatch::new(path, target), start, move |_, o| {
            if let Some(o) = o {
                tx.send_replace(Some(o));
            }
        });
        Follower {
            rx,
            _control: control,
            pending: None,
            ended: false,
        }
    }

    /// The latest outcome not yet taken, waiting for one; `None` once ended.
    fn poll_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outcome>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let rx = self.rx.clone();
        let pending = self.pending.get_or_insert_with(move || {
            let mut rx = rx;
            Box::pin(async move {
                let alive = rx.changed().await.is_ok();
                (rx, alive)
            })
        });
        let (rx, alive) = std::task::ready!(pending.as_mut().poll(cx));
        self.pending = None;
        self.rx = rx;
        let outcome = alive.then(|| self.rx.borrow_and_update().clone()).flatten();
        if matches!(outcome, None | Some(Outcome::Failed(_))) {
            self.ended = true;
        }
        Poll::Ready(outcome)
    }
}

fn failed(e: zk_proto::session::Error) -> Error {
    e.into()
}

/// The data of one node, Kazoo's `DataWatch`: `Ok(Some((data, stat)))` while it exists,
/// `Ok(None)` while it does not, first the value now and then one item per change. A bad
/// path, a node that may not be read or a closed client comes as an `Err`, after which the
/// watch ends. A slow reader gets the latest value: values overtaken meanwhile are skipped,
/// so nothing piles up. Dropping the watch stops it.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::DataWatch;
/// let mut config = DataWatch::new(&client, "/app/config");
/// while let Some(value) = config.next().await {
///     match value? {
///         Some((data, stat)) => println!("config v{}: {} bytes", stat.version, data.len()),
///         None => println!("no config yet"),
///     }
/// }
/// # Ok(()) }
/// ```
pub struct DataWatch {
    follower: Follower,
}

impl std::fmt::Debug for DataWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataWatch").finish_non_exhaustive()
    }
}

impl DataWatch {
    /// Starts watching `path`.
    pub fn new(client: &Client, path: &str) -> DataWatch {
        DataWatch {
            follower: Follower::start(client, path, Target::Data),
        }
    }

    /// The next value; `None` once the watch ended. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<Option<(Bytes, Stat)>>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for DataWatch {
    type Item = Result<Option<(Bytes, Stat)>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.follower.poll_outcome(cx).map(|o| match o? {
            Outcome::Data(value) => Some(Ok(value)),
            Outcome::Failed(e) => Some(Err(failed(e))),
            Outcome::Children(_) => None,
        })
    }
}

/// The children of one node, Kazoo's `ChildrenWatch`: `Ok(Some((names, stat)))` while it
/// exists (names sorted; `stat.cversion` counts every child created or deleted, so a
/// child that left and came back shows as a change), `Ok(None)` while it does not, first
/// the list now and then one item per change. Errors and slow readers as for
/// [`DataWatch`].
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::ChildrenWatch;
/// let mut workers = ChildrenWatch::new(&client, "/workers");
/// while let Some(list) = workers.next().await {
///     let names = list?.map(|(names, _)| names).unwrap_or_default();
///     println!("workers: {names:?}");
/// }
/// # Ok(()) }
/// ```
pub struct ChildrenWatch {
    follower: Follower,
}

impl std::fmt::Debug for ChildrenWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildrenWatch").finish_non_exhaustive()
    }
}

impl ChildrenWatch {
    /// Starts watching the children of `path`.
    pub fn new(client: &Client, path: &str) -> ChildrenWatch {
        ChildrenWatch {
            follower: Follower::start(client, path, Target::Children),
        }
    }

    /// The next list; `None` once the watch ended. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<Option<(Vec<String>, Stat)>>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for ChildrenWatch {
    type Item = Result<Option<(Vec<String>, Stat)>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.follower.poll_outcome(cx).map(|o| match o? {
            Outcome::Children(value) => Some(Ok(value)),
            Outcome::Failed(e) => Some(Err(failed(e))),
            Outcome::Data(_) => None,
        })
    }
}
