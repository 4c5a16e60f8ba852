//! Queues shared with Kazoo on one real server, item for item:
//!
//! - priorities: items Kazoo put with priorities come out of our `Queue` in Kazoo's order,
//!   and ours come out of Kazoo's in the same order;
//! - a plain queue taken from by both at once: every item is taken exactly once;
//! - a `LockingQueue` worked by both at once, ours putting every fourth item back once:
//!   every item is consumed exactly once, and no item or claim is left.
//!
//! Kazoo comes from `KAZOO_PYTHON` (or a `python3` that imports it); without it the test
//! says so and passes, unless `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use zk_tests::{client, interop, shared_server};
use zk_tokio::CreateOptions;
use zk_tokio::recipes::{LockingQueue, Queue};

const KAZOO_SIDE: &str = r#"
import os, sys, threading, time
from kazoo.client import KazooClient
threading.Timer(90, lambda: os._exit(3)).start()
hosts, base = sys.argv[1], sys.argv[2]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
def wait_for(path):
    while not zk.exists(path):
        time.sleep(0.02)
q = zk.Queue(base + "/prio-k")
for v, p in [("a", 200), ("b", 5), ("c", 100), ("d", 5), ("e", 999), ("f", 0)]:
    q.put(v.encode(), priority=p)
zk.create(base + "/prio-k-ready", makepath=True)
wait_for(base + "/prio-r-ready")
q2 = zk.Queue(base + "/prio-r")
order = []
while True:
    x = q2.get()
    if x is None:
        break
    order.append(x.decode())
print("ORDER " + ",".join(order))
sys.stdout.flush()
wait_for(base + "/go")
shared = zk.Queue(base + "/shared")
zk.create(base + "/kazoo-taking", ephemeral=True)
took = []
idle = time.time()
while time.time() - idle < 1.0:
    x = shared.get()
    if x is None:
        time.sleep(0.01)
        continue
    took.append(x.decode())
    idle = time.time()
print("TOOK " + ",".join(took))
sys.stdout.flush()
lq = zk.LockingQueue(base + "/locking")
zk.create(base + "/kazoo-consuming", ephemeral=True)
consumed = []
idle = time.time()
while time.time() - idle < 2.0:
    x = lq.get(0.2)
    if x is None:
        continue
    if lq.consume():
        consumed.append(x.decode())
    idle = time.time()
print("CONSUMED " + ",".join(consumed))
sys.stdout.flush()
zk.stop()
os._exit(0)
"#;

/// The items of the other side's `<tag> a,b,c` line.
fn items(stdout: &str, tag: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{tag} "))
                .or((l == tag).then_some(""))
        })
        .unwrap_or_else(|| panic!("no {tag} line in:\n{stdout}"));
    line.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_queues_and_kazoos_agree_item_for_item() {
    let Some(python) = interop::kazoo() else {
        return;
    };
    let base = "/interop-queue";
    let hosts = shared_server().connect_string();
    let c = client(&hosts).await;
    let kazoo = interop::python(&python, KAZOO_SIDE, &[hosts.as_str(), base])
        .spawn()
        .expect("start the Kazoo side");

    // Kazoo's priorities, taken by us: lower first, then in order of arrival.
    interop::wait_for(&c, &format!("{base}/prio-k-ready")).await;
    let theirs = Queue::new(&c, &format!("{base}/prio-k"));
    let mut order = Vec::new();
    while let Some(item) = theirs.get().await.unwrap() {
        order.push(String::from_utf8(item.to_vec()).unwrap());
    }
    assert_eq!(order, ["f", "b", "d", "c", "a", "e"]);

    // Ours, taken by Kazoo.
    let ours = Queue::new(&c, &format!("{base}/prio-r"));
    for (v, p) in [
        ("a", 200),
        ("b", 5),
        ("c", 100),
        ("d", 5),
        ("e", 999),
        ("f", 0),
    ] {
        ours.put_with_priority(v, p).await.unwrap();
    }
    c.create(
        &format!("{base}/prio-r-ready"),
        "",
        &CreateOptions::persistent(),
    )
    .await
    .unwrap();

    // A plain queue and a locking queue, each filled, then worked by both at once.
    let shared = Queue::new(&c, &format!("{base}/shared"));
    let locking = LockingQueue::new(&c, &format!("{base}/locking"));
    let mut all = BTreeSet::new();
    for i in 0..60u16 {
        shared
            .put_with_priority(format!("s{i}"), (i % 3) * 100)
            .await
            .unwrap();
    }
    for i in 0..40 {
        let item = format!("l{i}");
        locking.put(item.clone()).await.unwrap();
        all.insert(item);
    }
    c.create(&format!("{base}/go"), "", &CreateOptions::persistent())
        .await
        .unwrap();

    interop::wait_for(&c, &format!("{base}/kazoo-taking")).await;
    let mut took = Vec::new();
    while let Some(item) = shared.get().await.unwrap() {
        took.push(String::from_utf8(item.to_vec()).unwrap());
        // Paced, so that Kazoo takes its share.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    interop::wait_for(&c, &format!("{base}/kazoo-consuming")).await;
    let mut consumed = Vec::new();
    let mut put_back = BTreeSet::new();
    let mut idle = Instant::now();
    let mut gets = 0usize;
    while idle.elapsed() < Duration::from_secs(2) {
        let Some(item) = locking.get(Duration::from_millis(200)).await.unwrap() else {
            continue;
        };
        idle = Instant::now();
        let name = String::from_utf8(item.data.to_vec()).unwrap();
        // Our first item and every fourth after it go back, whichever items Kazoo leaves us:
        // which ones we get depends on how the two interleave.
        let nth = gets;
        gets += 1;
        if nth.is_multiple_of(4) && put_back.insert(name.clone()) {
            item.release().await.unwrap();
            continue;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        item.consume().await.unwrap();
        consumed.push(name);
    }

    let output = tokio::task::spawn_blocking(move || kazoo.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the Kazoo side failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(items(&stdout, "ORDER"), ["f", "b", "d", "c", "a", "e"]);

    // Every item exactly once, whoever took it.
    let mut every: Vec<String> = took.clone();
    every.extend(items(&stdout, "TOOK"));
    every.sort();
    let mut expected: Vec<String> = (0..60).map(|i| format!("s{i}")).collect();
    expected.sort();
    assert_eq!(every, expected, "we took {} of the 60", took.len());
    assert!(
        !took.is_empty() && took.len() < 60,
        "both took from the queue at once: we took {} of the 60",
        took.len()
    );

    let theirs_consumed = items(&stdout, "CONSUMED");
    let mut every: Vec<String> = consumed.clone();
    every.extend(theirs_consumed.iter().cloned());
    every.sort();
    assert_eq!(
        every,
        all.iter().cloned().collect::<Vec<_>>(),
        "we consumed {}, Kazoo {}",
        consumed.len(),
        theirs_consumed.len()
    );
    assert!(
        !consumed.is_empty() && !theirs_consumed.is_empty(),
        "both consumed: we {}, Kazoo {}",
        consumed.len(),
        theirs_consumed.len()
    );
    eprintln!(
        "plain queue: we took {} of 60; locking queue: we consumed {}, Kazoo {}, {} put back",
        took.len(),
        consumed.len(),
        theirs_consumed.len(),
        put_back.len()
    );
    assert!(
        !put_back.is_empty(),
        "some items were put back and taken again"
    );
    assert_eq!(locking.len().await.unwrap(), 0);
    let claims = c
        .get_children(&format!("{base}/locking/taken"))
        .await
        .unwrap();
    assert!(claims.is_empty(), "claims left: {claims:?}");
    c.close().await;
}
