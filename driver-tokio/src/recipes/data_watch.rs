//! DataWatch and ChildrenWatch: the current value at once and after every change, re-armed
//! across reconnects and session renewals, for nodes that may not exist yet.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::reconnected;
use crate::{Client, ErrorCode, Stat};

/// The data of one node as a stream: `Some((data, stat))` while it exists, `None` while it
/// does not, first the current value and then one item per change. Stops when dropped.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) {
/// use zk_tokio::recipes::DataWatch;
/// let mut config = DataWatch::new(&client, "/app/config");
/// while let Some(value) = config.next().await {
///     match value {
///         Some((data, stat)) => println!("config v{}: {} bytes", stat.version, data.len()),
///         None => println!("no config yet"),
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct DataWatch {
    rx: mpsc::UnboundedReceiver<Option<(Bytes, Stat)>>,
    task: JoinHandle<()>,
}

impl DataWatch {
    /// Starts watching `path`.
    pub fn new(client: &Client, path: &str) -> DataWatch {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(watch_data(client.clone(), path.to_string(), tx));
        DataWatch { rx, task }
    }

    /// The next value, or `None` when the watch stopped (the client closed).
    pub async fn next(&mut self) -> Option<Option<(Bytes, Stat)>> {
        self.rx.recv().await
    }
}

impl Stream for DataWatch {
    type Item = Option<(Bytes, Stat)>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for DataWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch_data(
    client: Client,
    path: String,
    tx: mpsc::UnboundedSender<Option<(Bytes, Stat)>>,
) {
    // The last value sent, by (czxid, mzxid): a change is anything that moves them.
    let mut last: Option<Option<(i64, i64)>> = None;
    loop {
        if tx.is_closed() {
            return;
        }
        let watcher = match client.get_data_watch(&path).await {
            Ok((data, stat, w)) => {
                let key = Some((stat.czxid, stat.mzxid));
                if last != Some(key) {
                    last = Some(key);
                    if tx.send(Some((data, stat))).is_err() {
                        return;
                    }
                }
                w
            }
            Err(e) if e.server_code() == Some(ErrorCode::NoNode) => {
                match client.exists_watch(&path).await {
                    // Created in between: read it.
                    Ok((Some(_), _)) => continue,
                    Ok((None, w)) => {
                        if last != Some(None) {
                            last = Some(None);
                            if tx.send(None).is_err() {
                                return;
                            }
                        }
                        w
                    }
                    Err(e) if e.is_retryable() => {
                        if reconnected(&client).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Err(_) => return,
                }
            }
            Err(e) if e.is_retryable() => {
                if reconnected(&client).await.is_err() {
                    return;
                }
                continue;
            }
            Err(e) if e.is(ErrorCode::SessionExpired) => {
                if reconnected(&client).await.is_err() {
                    return;
                }
                continue;
            }
            Err(_) => return,
        };
        // Any event, including the final one of an expired session, means: read again.
        let _ = watcher.await;
    }
}

/// The children of one node as a stream: `Some(names)` while it exists, `None` while it
/// does not, first the current list and then one item per change. Stops when dropped.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::ChildrenWatch;
/// let mut workers = ChildrenWatch::new(&client, "/workers");
/// while let Some(list) = workers.next().await {
///     println!("workers: {:?}", list.unwrap_or_default());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ChildrenWatch {
    rx: mpsc::UnboundedReceiver<Option<Vec<String>>>,
    task: JoinHandle<()>,
}

impl ChildrenWatch {
    /// Starts watching the children of `path`.
    pub fn new(client: &Client, path: &str) -> ChildrenWatch {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(watch_children(client.clone(), path.to_string(), tx));
        ChildrenWatch { rx, task }
    }

    /// The next list, or `None` when the watch stopped.
    pub async fn next(&mut self) -> Option<Option<Vec<String>>> {
        self.rx.recv().await
    }
}

impl Stream for ChildrenWatch {
    type Item = Option<Vec<String>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for ChildrenWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch_children(
    client: Client,
    path: String,
    tx: mpsc::UnboundedSender<Option<Vec<String>>>,
) {
    let mut last: Option<Option<Vec<String>>> = None;
    loop {
        if tx.is_closed() {
            return;
        }
        let watcher = match client.get_children_watch(&path).await {
            Ok((mut children, _, w)) => {
                children.sort();
                if last.as_ref() != Some(&Some(children.clone())) {
                    last = Some(Some(children.clone()));
                    if tx.send(Some(children)).is_err() {
                        return;
                    }
                }
                w
            }
            Err(e) if e.server_code() == Some(ErrorCode::NoNode) => {
                match client.exists_watch(&path).await {
                    Ok((Some(_), _)) => continue,
                    Ok((None, w)) => {
                        if last != Some(None) {
                            last = Some(None);
                            if tx.send(None).is_err() {
                                return;
                            }
                        }
                        w
                    }
                    Err(e) if e.is_retryable() || e.is(ErrorCode::SessionExpired) => {
                        if reconnected(&client).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Err(_) => return,
                }
            }
            Err(e) if e.is_retryable() || e.is(ErrorCode::SessionExpired) => {
                if reconnected(&client).await.is_err() {
                    return;
                }
                continue;
            }
            Err(_) => return,
        };
        let _ = watcher.await;
    }
}
