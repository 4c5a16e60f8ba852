//! Watches nobody can hear any more are released, on the client and on a real server:
//! those of recipe machines that ended (a dropped TreeCache's persistent recursive watch, a
//! dropped DataWatch's pending one) and that of a call whose caller gave up before the
//! reply came (an `add_watch` that timed out). Judged on the server's own account (`wchc`,
//! every watch of every session) as well as the client's.

use std::time::{Duration, Instant};

use zk_harness::{Fault, Proxy};
use zk_proto::consts::AddWatchMode;
use zk_tests::shared_server;

const MACHINES: usize = 100;

/// The paths the server holds watches on for `session_id`, from `wchc`.
fn server_watches(session_id: i64) -> Vec<String> {
    let answer = shared_server().four_letter("wchc").unwrap_or_default();
    let mut mine = Vec::new();
    let mut ours = false;
    for line in answer.lines() {
        if let Some(path) = line.strip_prefix('\t') {
            if ours {
                mine.push(path.trim().to_string());
            }
        } else if let Some(id) = line.trim().strip_prefix("0x") {
            ours = i64::from_str_radix(id, 16).ok() == Some(session_id);
        }
    }
    mine
}

/// Waits until neither the client (`watches()`) nor the server holds a watch of the
/// session.
fn settle(what: &str, session_id: i64, watches: impl Fn() -> usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (client, server) = (watches(), server_watches(session_id));
        if client == 0 && server.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {client} watches left in the client, {} on the server: {server:?}",
            server.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn paths(root: &str) -> Vec<String> {
    (0..MACHINES).map(|i| format!("{root}/n{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_recipes_and_abandoned_calls_leave_no_watch_on_the_async_client() {
    use zk_tokio::recipes::{DataWatch, TreeCache};
    let hosts = shared_server().connect_string();
    let writer = zk_tests::client(&hosts).await;
    let c = zk_tests::client(&hosts).await;
    let root = "/watch-leaks-async";
    for p in paths(root) {
        writer.create_all(&p, "v").await.unwrap();
    }
    let id = c.session_id();
    let count = || {
        let c = c.clone();
        move || {
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current()
                    .block_on(async { c.metrics().await.unwrap().watches })
            })
        }
    };

    for p in paths(root) {
        let cache = TreeCache::start(&c, &p).await.unwrap();
        assert_eq!(cache.len(), 1);
    }
    tokio::task::block_in_place(|| settle("dropped tree caches", id, count()));

    for p in paths(root) {
        let mut watch = DataWatch::new(&c, &p);
        assert!(watch.next().await.unwrap().value().is_some());
    }
    tokio::task::block_in_place(|| settle("dropped data watches", id, count()));

    // A call that gave up before its reply: the watch the server set with it goes again.
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let slow = zk_tokio::Client::builder(&proxy.connect_string())
        .call_timeout(Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    proxy.set_fault(Fault::Delay(Duration::from_millis(400)));
    let gave_up = slow
        .add_watch(root, AddWatchMode::PersistentRecursive)
        .await;
    assert!(
        matches!(gave_up, Err(zk_tokio::Error::CallTimeout(_))),
        "{gave_up:?}"
    );
    let slow_id = slow.session_id();
    let slow_count = || {
        let c = slow.clone();
        move || {
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current()
                    .block_on(async { c.metrics().await.unwrap().watches })
            })
        }
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    tokio::task::block_in_place(|| settle("a timed-out add_watch", slow_id, slow_count()));
    slow.close().await;
    writer.delete_all(root).await.unwrap();
    c.close().await;
    writer.close().await;
}

#[test]
fn ended_recipes_and_abandoned_calls_leave_no_watch_on_the_blocking_client() {
    use zk_mio::blocking::Client;
    use zk_mio::recipes::{DataWatch, TreeCache};
    let hosts = shared_server().connect_string();
    let writer = Client::connect(&hosts).unwrap();
    let c = Client::connect(&hosts).unwrap();
    let root = "/watch-leaks-blocking";
    for p in paths(root) {
        writer.create_all(&p, "v").unwrap();
    }
    let count = |c: &Client| {
        let c = c.clone();
        move || c.metrics().unwrap().watches
    };

    for p in paths(root) {
        let cache = TreeCache::start(&c, &p).unwrap();
        assert_eq!(cache.len(), 1);
    }
    settle("dropped tree caches", c.session_id(), count(&c));

    for p in paths(root) {
        let mut watch = DataWatch::new(&c, &p);
        assert!(watch.next().unwrap().value().is_some());
    }
    settle("dropped data watches", c.session_id(), count(&c));

    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let slow = Client::builder(&proxy.connect_string())
        .call_timeout(Duration::from_millis(100))
        .connect()
        .unwrap();
    proxy.set_fault(Fault::Delay(Duration::from_millis(400)));
    let gave_up = slow.add_watch(root, AddWatchMode::PersistentRecursive);
    assert!(
        matches!(gave_up, Err(zk_mio::Error::CallTimeout(_))),
        "{gave_up:?}"
    );
    std::thread::sleep(Duration::from_millis(600));
    settle("a timed-out add_watch", slow.session_id(), count(&slow));
    slow.close();
    writer.delete_all(root).unwrap();
    c.close();
    writer.close();
}
