//! Counters shared with the real other libraries on one real server: two tasks of ours
//! adding 1 at a time beside Kazoo's `Counter` (decimal text) and beside Curator's
//! `SharedCount` (4 bytes big-endian). No addition may be lost or doubled: the final value
//! is the number of additions of both sides, read in the other library's encoding.
//!
//! Kazoo comes from `KAZOO_PYTHON` (or a `python3` that imports it), Curator from Debian's
//! `libcurator-recipes-java`; without them the tests say so and pass, unless
//! `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::process::Child;

use zk_tests::{client, interop, shared_server};
use zk_tokio::recipes::{Counter, CounterEncoding};

const TURNS: i64 = 100;

const KAZOO_SIDE: &str = r#"
import sys
from kazoo.client import KazooClient
hosts, turns, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
counter = zk.Counter(path)
counter.value  # creates the node
zk.create(path + "-ready", ephemeral=True)
for _ in range(turns):
    counter += 1
print("DONE %d VALUE %d" % (turns, counter.value))
zk.stop()
"#;

async fn add_beside(path: &str, encoding: CounterEncoding, other: Child) {
    let c = client(&shared_server().connect_string()).await;
    interop::wait_for(&c, &format!("{path}-ready")).await;
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let counter = Counter::new(&c, path).with_encoding(encoding);
            tokio::spawn(async move {
                for _ in 0..TURNS {
                    counter.add(1).await.expect("an addition");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let output = tokio::task::spawn_blocking(move || other.wait_with_output())
        .await
        .unwrap()
        .expect("the other side ends");
    assert_eq!(
        interop::summary::<i64>(&output)[0],
        TURNS,
        "the other side's additions"
    );
    let value = Counter::new(&c, path)
        .with_encoding(encoding)
        .get()
        .await
        .unwrap();
    assert_eq!(value, 3 * TURNS, "every addition of both sides, once");
    eprintln!("{TURNS} additions by the other library and 2 x {TURNS} by ours: {value}");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_counter_and_kazoos_lose_no_addition() {
    let Some(python) = interop::kazoo() else {
        return;
    };
    let path = "/interop-counter-kazoo";
    let hosts = shared_server().connect_string();
    let kazoo = interop::python(&python, KAZOO_SIDE, &[&hosts, &TURNS.to_string(), path])
        .spawn()
        .expect("start the Kazoo side");
    add_beside(path, CounterEncoding::Text, kazoo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_counter_and_curators_shared_count_lose_no_addition() {
    let Some(curator) = interop::Curator::compile("CuratorCounterSide") else {
        return;
    };
    let path = "/interop-counter-curator";
    let side = curator
        .java("CuratorCounterSide")
        .args([&shared_server().connect_string(), &TURNS.to_string(), path])
        .spawn()
        .expect("start the Curator side");
    add_beside(path, CounterEncoding::Curator, side).await;
}
