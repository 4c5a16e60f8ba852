//! Recipes under failure: a lock contended while a server dies, a lock holder whose session
//! expires, a tree cache through a burst of changes and a reconnect.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::spawn_blocking;
use zk_harness::{Ensemble, Fault, Proxy};
use zk_tests::{client, shared_server};
use zk_tokio::recipes::{Lock, TreeCache};
use zk_tokio::{Client, CreateOptions, ErrorCode};

/// Adds one to the counter node under the lock, making sure the write happened exactly once
/// even when its reply is lost: under the lock nobody else writes, so the version tells.
async fn increment(c: &Client, path: &str) {
    loop {
        let (data, stat) = match c.get_data(path).await {
            Ok(v) => v,
            Err(e) if e.is_retryable() => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Err(e) => panic!("read: {e}"),
        };
        let value: u64 = std::str::from_utf8(&data).unwrap().parse().unwrap();
        match c
            .set_data(path, (value + 1).to_string(), Some(stat.version))
            .await
        {
            Ok(_) => return,
            Err(e) if e.is_retryable() => loop {
                // Did it land? Only our write can have moved the version.
                tokio::time::sleep(Duration::from_millis(20)).await;
                match c.get_data(path).await {
                    Ok((_, now)) if now.version == stat.version + 1 => return,
                    Ok(_) => break,
                    Err(_) => continue,
                }
            },
            Err(e) => panic!("write: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_stays_exclusive_while_the_server_of_a_contender_dies() {
    let mut ensemble = spawn_blocking(|| Ensemble::start(3))
        .await
        .unwrap()
        .unwrap();
    let first = ensemble.server(0).connect_string();
    let rest = format!(
        "{},{}",
        ensemble.server(1).connect_string(),
        ensemble.server(2).connect_string()
    );
    // Client a starts on server 0 (which will die), client b on the others.
    let a = Client::builder(&format!("{first},{rest}"))
        .shuffle_hosts(false)
        .session_timeout(Duration::from_secs(8))
        .connect()
        .await
        .unwrap();
    let b = Client::builder(&rest)
        .session_timeout(Duration::from_secs(8))
        .connect()
        .await
        .unwrap();
    a.create("/count", "0", &CreateOptions::persistent())
        .await
        .unwrap();

    let inside = Arc::new(AtomicUsize::new(0));
    let per_task = 60;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        let inside = inside.clone();
        tasks.push(tokio::spawn(async move {
            let lock = Lock::new(&c, "/locks/failover");
            let mut done = 0;
            while done < per_task {
                let guard = match lock.acquire().await {
                    Ok(g) => g,
                    Err(e) if e.is_retryable() => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    Err(e) => panic!("acquire: {e}"),
                };
                assert_eq!(
                    inside.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two holders at once"
                );
                increment(&c, "/count").await;
                assert!(guard.is_held(), "the session survives failover");
                inside.fetch_sub(1, Ordering::SeqCst);
                done += 1;
                // Release, retrying over the failover.
                let node = guard.node().to_string();
                loop {
                    match c.delete(&node, None).await {
                        Ok(()) => break,
                        Err(e) if e.server_code() == Some(ErrorCode::NoNode) => break,
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
                drop(guard);
            }
        }));
    }
    // Kill the server once the contenders are well under way, however fast this machine is.
    let before = loop {
        let (count, _) = b.get_data("/count").await.unwrap();
        let count: u64 = std::str::from_utf8(&count).unwrap().parse().unwrap();
        if count >= 10 {
            break count;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(
        before < 8 * per_task,
        "the failover happens while contenders still work"
    );
    let ensemble_back = spawn_blocking(move || {
        ensemble.server_mut(0).kill().unwrap();
        ensemble
    })
    .await
    .unwrap();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("contenders finish")
            .unwrap();
    }
    let (data, _) = b.get_data("/count").await.unwrap();
    assert_eq!(
        &data[..],
        format!("{}", 8 * per_task).as_bytes(),
        "no increment lost or doubled"
    );
    eprintln!(
        "{before} of {} increments were done when the server died",
        8 * per_task
    );
    a.close().await;
    b.close().await;
    drop(ensemble_back);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_holder_loses_the_lock_to_the_next_waiter() {
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let holder_client = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_millis(2000))
        .connect()
        .await
        .unwrap();
    let waiter_client = client(&shared_server().connect_string()).await;
    let guard = Lock::new(&holder_client, "/locks/expiry")
        .acquire()
        .await
        .unwrap();
    assert!(guard.is_held());
    let waiter = tokio::spawn(async move {
        let g = Lock::new(&waiter_client, "/locks/expiry")
            .acquire()
            .await
            .unwrap();
        (g, waiter_client)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished());

    proxy.set_fault(Fault::BlackHole);
    tokio::time::timeout(Duration::from_secs(20), guard.lost())
        .await
        .expect("the guard reports the loss")
        .unwrap();
    assert!(!guard.is_held());
    let (next, waiter_client) = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("the waiter gets the lock once the holder's session is gone")
        .unwrap();
    assert!(next.is_held());
    next.release().await.unwrap();
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    drop(guard);
    holder_client.close().await;
    waiter_client.close().await;
}

async fn actual_tree(c: &Client, root: &str) -> BTreeMap<String, Bytes> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_string()];
    while let Some(p) = todo.pop() {
        let Ok((data, _)) = c.get_data(&p).await else {
            continue;
        };
        for child in c.get_children(&p).await.unwrap_or_default() {
            todo.push(format!("{p}/{child}"));
        }
        out.insert(p, data);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_cache_converges_after_a_burst_of_changes_and_a_reconnect() {
    let writer = client(&shared_server().connect_string()).await;
    writer.create_all("/tree/a/b", "").await.unwrap();
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let reader = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(6))
        .connect()
        .await
        .unwrap();
    let mut cache = TreeCache::start(&reader, "/tree").await.unwrap();
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.children("/tree"), ["a"]);

    // 1,000 changes: creates, updates and deletes; the reader's connection is cut in the
    // middle and stays down for a while.
    for i in 0..1000u32 {
        let node = format!("/tree/a/n{}", i % 150);
        match i % 4 {
            0 | 1 => {
                let _ = writer
                    .create(&node, format!("{i}"), &CreateOptions::persistent())
                    .await;
                let _ = writer.set_data(&node, format!("{i}"), None).await;
            }
            2 => {
                let _ = writer.set_data(&node, format!("v{i}"), None).await;
            }
            _ => {
                let _ = writer.delete(&node, None).await;
            }
        }
        if i == 400 {
            proxy.set_fault(Fault::Refuse);
            proxy.cut();
        }
        if i == 700 {
            proxy.set_fault(Fault::Pass);
        }
    }
    let expected = actual_tree(&writer, "/tree").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mirror: BTreeMap<String, Bytes> = cache
            .snapshot()
            .into_iter()
            .map(|(p, n)| (p, n.data))
            .collect();
        if mirror == expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "mirror {} nodes, tree {} nodes",
            mirror.len(),
            expected.len()
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), cache.next_event()).await;
    }
    reader.close().await;
    writer.close().await;
}
