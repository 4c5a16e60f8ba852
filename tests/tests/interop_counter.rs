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

/// Kazoo's `Counter` in Curator's encoding (`support_curator=True`), adding 1 at a time.
const KAZOO_CURATOR_SIDE: &str = r#"
import sys
from kazoo.client import KazooClient
hosts, turns, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
counter = zk.Counter(path, support_curator=True)
counter.value  # creates the node
zk.create(path + "-ready", ephemeral=True)
for _ in range(turns):
    counter += 1
print("DONE %d VALUE %d" % (turns, counter.value))
zk.stop()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_shared_count_and_curators_lose_no_addition() {
    let Some(curator) = interop::Curator::compile("CuratorCounterSide") else {
        return;
    };
    let path = "/interop-sharedcount-curator";
    let side = curator
        .java("CuratorCounterSide")
        .args([&shared_server().connect_string(), &TURNS.to_string(), path])
        .spawn()
        .expect("start the Curator side");
    shared_count_beside(path, "Curator's SharedCount", side).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_shared_count_and_kazoos_curator_counter_lose_no_addition() {
    let Some(python) = interop::kazoo() else {
        return;
    };
    let path = "/interop-sharedcount-kazoo";
    let hosts = shared_server().connect_string();
    let kazoo = interop::python(
        &python,
        KAZOO_CURATOR_SIDE,
        &[&hosts, &TURNS.to_string(), path],
    )
    .spawn()
    .expect("start the Kazoo side");
    shared_count_beside(path, "Kazoo's Counter(support_curator=True)", kazoo).await;
}

/// Two `SharedCount` workers of ours adding 1 `TURNS` times each beside `other`'s `TURNS`.
async fn shared_count_beside(path: &str, other_name: &str, side: Child) {
    use zk_tokio::recipes::SharedCount;
    let c = client(&shared_server().connect_string()).await;
    interop::wait_for(&c, &format!("{path}-ready")).await;
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (c, path) = (c.clone(), path.to_string());
            tokio::spawn(async move {
                let count = SharedCount::start(&c, &path, 0).await.unwrap();
                let mut conflicts = 0;
                for _ in 0..TURNS {
                    let mut seen = count.get().await.unwrap();
                    while !count.try_set(&seen, seen.value + 1).await.unwrap() {
                        conflicts += 1;
                        // Another write came first: wait until the watch has it.
                        seen = count.changed(&seen).await.unwrap();
                    }
                }
                conflicts
            })
        })
        .collect();
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let output = tokio::task::spawn_blocking(move || side.wait_with_output())
        .await
        .unwrap()
        .expect("the other side ends");
    assert_eq!(interop::summary::<i64>(&output)[0], TURNS);
    let count = SharedCount::start(&c, path, 0).await.unwrap();
    let last = count.get().await.unwrap();
    assert_eq!(
        i64::from(last.value),
        3 * TURNS,
        "every addition of both sides, once"
    );
    eprintln!(
        "{TURNS} additions by {other_name} and 2 x {TURNS} by ours: {}, {conflicts} of ours \
         written over first",
        last.value
    );
    assert!(
        conflicts > 0,
        "the sides never raced: the test proved little"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_atomic_long_and_curators_lose_no_increment() {
    use zk_tokio::recipes::AtomicLong;
    let Some(curator) = interop::Curator::compile("CuratorAtomicSide") else {
        return;
    };
    let (path, lock) = ("/interop-atomic/value", "/interop-atomic/lock");
    let c = client(&shared_server().connect_string()).await;
    c.create_all("/interop-atomic", "").await.unwrap();
    let side = curator
        .java("CuratorAtomicSide")
        .args([
            shared_server().connect_string(),
            TURNS.to_string(),
            path.to_string(),
            lock.to_string(),
        ])
        .spawn()
        .expect("start the Curator side");
    interop::wait_for(&c, &format!("{path}-ready")).await;
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let value = AtomicLong::new(&c, path)
                .with_optimistic_tries(3)
                .promoted_to_lock(lock, 3);
            tokio::spawn(async move {
                let mut promoted = 0;
                for _ in 0..TURNS {
                    loop {
                        let r = value.increment().await.expect("an increment");
                        if r.succeeded {
                            assert_eq!(r.post, r.pre + 1);
                            promoted += u32::from(r.promoted_tries > 0);
                            break;
                        }
                    }
                }
                promoted
            })
        })
        .collect();
    let mut promoted = 0;
    for t in tasks {
        promoted += t.await.unwrap();
    }
    let output = tokio::task::spawn_blocking(move || side.wait_with_output())
        .await
        .unwrap()
        .expect("the Curator side ends");
    let theirs: Vec<i64> = interop::summary(&output);
    assert_eq!(theirs[0], 2 * TURNS, "Curator's increments");
    let value = AtomicLong::new(&c, path).get().await.unwrap();
    assert_eq!(value.pre, 4 * TURNS, "every increment of both sides, once");
    let (data, _) = c.get_data(path).await.unwrap();
    assert_eq!(data.len(), 8, "Curator's 8-byte encoding");
    eprintln!(
        "2 x {TURNS} increments by Curator's DistributedAtomicLong ({} under its lock) and \
         2 x {TURNS} by ours ({promoted} under the lock): {}",
        theirs[1], value.pre
    );
    assert!(c.get_children(lock).await.unwrap_or_default().is_empty());
    c.close().await;
}
