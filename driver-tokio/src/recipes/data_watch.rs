//! DataWatch and ChildrenWatch: the current value at once and after every change, re-armed
//! across reconnects and session renewals, for nodes that may not exist yet.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::reconnected;
use crate::{Client, ErrorCode, OneshotWatcher, Stat};

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
    follow(client, path, tx, |c, p| async move {
        c.get_data_watch(&p).await.map(|(d, s, w)| ((d, s), w))
    })
    .await
}

/// The loop both watches share: read with a watch (or wait for the node to exist), send the
/// value when it differs from the last one sent, wait for the watch, repeat; after a
/// connection problem or an expired session, wait for the next connection and read again.
async fn follow<T, F, Fut>(
    client: Client,
    path: String,
    tx: mpsc::UnboundedSender<Option<T>>,
    read: F,
) where
    T: PartialEq + Clone,
    F: Fn(Client, String) -> Fut,
    Fut: Future<Output = crate::Result<(T, OneshotWatcher)>>,
{
    let mut last: Option<Option<T>> = None;
    let send = |value: Option<T>, last: &mut Option<Option<T>>| {
        if last.as_ref() == Some(&value) {
            return true;
        }
        *last = Some(value.clone());
        tx.send(value).is_ok()
    };
    loop {
        let watcher = match read(client.clone(), path.clone()).await {
            Ok((value, w)) => {
                if !send(Some(value), &mut last) {
                    return;
                }
                w
            }
            Err(e) if e.server_code() == Some(ErrorCode::NoNode) => {
                match client.exists_watch(&path).await {
                    // Created in between: read it.
                    Ok((Some(_), _)) => continue,
                    Ok((None, w)) => {
                        if !send(None, &mut last) {
                            return;
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
    follow(client, path, tx, |c, p| async move {
        c.get_children_watch(&p).await.map(|(mut kids, _, w)| {
            kids.sort();
            (kids, w)
        })
    })
    .await
}
