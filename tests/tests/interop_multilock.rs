//! Multi-locks shared with Curator on one real server: two workers of ours
//! (`zk_tokio::recipes::MultiLock` over two paths) beside two of Curator's
//! `InterProcessMultiLock` over the same paths, and one of ours holding only the second
//! path as a plain `Lock` (Curator's `InterProcessMutex` layout). Inside its locks each
//! worker adds an ephemeral sequential node under one directory and counts the directory's
//! children: more than one means two holders at once in server time.
//!
//! Curator comes from Debian's `libcurator-recipes-java`; without it the test says so and
//! passes, unless `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::time::Duration;

use zk_tests::{client, interop, shared_server};
use zk_tokio::recipes::{Flavor, Lock, MultiLock};
use zk_tokio::{Client, CreateOptions};

const TURNS: u32 = 30;

/// One turn inside: adds a node under `inside`, counts the directory; 1 if another worker
/// was inside too.
async fn inside_once(c: &Client, inside: &str) -> u32 {
    let me = c
        .create(
            &format!("{inside}/r-"),
            "",
            &CreateOptions::ephemeral_sequential(),
        )
        .await
        .unwrap();
    let n = c.get_children(inside).await.unwrap().len();
    tokio::time::sleep(Duration::from_millis(10)).await;
    c.delete(&me, None).await.unwrap();
    u32::from(n > 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_multi_lock_and_curators_exclude_each_other() {
    let Some(curator) = interop::Curator::compile("CuratorMultiLockSide") else {
        return;
    };
    let dir = "/interop-multilock-curator";
    let (a, b, inside) = (
        format!("{dir}/a"),
        format!("{dir}/b"),
        format!("{dir}/inside"),
    );
    let c = client(&shared_server().connect_string()).await;
    c.create_all(&inside, "").await.unwrap();
    let side = curator
        .java("CuratorMultiLockSide")
        .args([
            shared_server().connect_string(),
            TURNS.to_string(),
            format!("{a},{b}"),
            inside.clone(),
        ])
        .spawn()
        .expect("start the Curator side");
    interop::wait_for(&c, &format!("{inside}-ready")).await;

    let mut workers = Vec::new();
    for _ in 0..2 {
        let (c, lock, inside) = (c.clone(), MultiLock::new(&c, &[&a, &b]), inside.clone());
        workers.push(tokio::spawn(async move {
            let mut overlaps = 0;
            let mut sequences = Vec::new();
            for _ in 0..TURNS {
                let held = tokio::time::timeout(Duration::from_secs(60), lock.acquire())
                    .await
                    .expect("both locks within 60 s")
                    .unwrap();
                let nodes = held.nodes();
                assert_eq!(nodes.len(), 2);
                sequences.push(
                    nodes[0]
                        .rsplit_once("-lock-")
                        .and_then(|(_, s)| s.parse::<i64>().ok()),
                );
                overlaps += inside_once(&c, &inside).await;
                held.release().await.unwrap();
            }
            (overlaps, sequences)
        }));
    }
    // One of ours takes the second path alone, as a plain lock.
    let single = {
        let (c, lock, inside) = (
            c.clone(),
            Lock::new(&c, &b).with_flavor(Flavor::Curator),
            inside.clone(),
        );
        tokio::spawn(async move {
            let mut overlaps = 0;
            for _ in 0..TURNS {
                let held = lock.acquire().await.unwrap();
                overlaps += inside_once(&c, &inside).await;
                held.release().await.unwrap();
            }
            overlaps
        })
    };
    let mut overlaps = single.await.unwrap();
    let mut ours = std::collections::BTreeSet::new();
    for w in workers {
        let (o, s) = w.await.unwrap();
        overlaps += o;
        ours.extend(s.into_iter().flatten());
    }
    let output = tokio::task::spawn_blocking(move || side.wait_with_output())
        .await
        .unwrap()
        .expect("the Curator side ends");
    let theirs: Vec<u32> = interop::summary(&output);
    assert_eq!(
        (theirs[0], theirs[1], overlaps),
        (2 * TURNS, 0, 0),
        "turns done and overlaps (theirs), overlaps (ours): {theirs:?}"
    );
    // Curator's workers took the first lock between two of ours: the sides took turns.
    let (first, last) = (ours.first().copied(), ours.last().copied());
    let between = match (first, last) {
        (Some(f), Some(l)) => (f..=l).filter(|s| !ours.contains(s)).count(),
        _ => 0,
    };
    eprintln!(
        "{TURNS} turns per worker, 2 multi-lock workers a side and a plain lock of ours on \
         the second path: never two inside; {between} of Curator's turns between our first \
         and last"
    );
    assert!(between > 0, "the two sides never took turns");
    assert!(c.get_children(&a).await.unwrap().is_empty());
    assert!(c.get_children(&b).await.unwrap().is_empty());
    c.close().await;
}
