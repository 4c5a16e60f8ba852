//! Set partitioning shared with Kazoo on one real server: one Kazoo `SetPartitioner` and
//! two of ours over the same path and items settle on Kazoo's partition of the items
//! among the three identifiers, each item's lock held by exactly one member, as the server
//! shows it.
//!
//! Kazoo comes from `KAZOO_PYTHON` (or a `python3` that imports it); without it the test
//! says so and passes, unless `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::io::BufRead;
use std::time::Duration;

use zk_tests::{client, interop, shared_server};
use zk_tokio::CreateOptions;
use zk_tokio::recipes::{PartitionState, SetPartitioner};

const KAZOO_SIDE: &str = r#"
import sys, time
from kazoo.client import KazooClient
hosts, path = sys.argv[1], sys.argv[2]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
p = zk.SetPartitioner(path, set=("a", "b", "c", "d", "e", "f"), identifier="kazoo",
                      time_boundary=0.5)
deadline = time.time() + 60
while time.time() < deadline and not zk.exists(path + "-done"):
    if p.failed:
        print("FAILED", flush=True)
        sys.exit(2)
    elif p.release:
        p.release_set()
    elif p.acquired:
        print("ACQUIRED " + ",".join(sorted(p)), flush=True)
        while p.acquired and not zk.exists(path + "-done"):
            time.sleep(0.05)
    elif p.allocating:
        p.wait_for_acquire(timeout=1)
p.finish()
print("FINISHED", flush=True)
zk.stop()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_partitioners_and_kazoos_split_the_items_as_kazoo_does() {
    let Some(python) = interop::kazoo() else {
        return;
    };
    let path = "/interop-partitioner/work";
    let c = client(&shared_server().connect_string()).await;
    let items = ["a", "b", "c", "d", "e", "f"];
    let mut side = interop::python(
        &python,
        KAZOO_SIDE,
        &[&shared_server().connect_string(), path],
    )
    .spawn()
    .expect("start the Kazoo side");
    let ours: Vec<SetPartitioner> = ["r1", "r2"]
        .iter()
        .map(|id| SetPartitioner::start(&c, path, &items, id, Duration::from_millis(500)).unwrap())
        .collect();
    // Each of ours follows its states until it holds its share of the three-way split.
    let expected = [vec!["b", "e"], vec!["c", "f"]];
    for (p, want) in ours.iter().zip(&expected) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let state = p.state();
            match &state {
                PartitionState::Acquired(got) if got == want => break,
                PartitionState::Release => p.release_set(),
                PartitionState::Failure => panic!("a partitioner of ours failed"),
                _ => {}
            }
            assert!(tokio::time::Instant::now() < deadline, "stuck at {state:?}");
            let _ = tokio::time::timeout(Duration::from_millis(200), p.changed(&state)).await;
        }
    }
    // Kazoo settles on the rest. Its output is read to the end, so it never writes into
    // a closed pipe.
    let out = side.stdout.take().expect("the side's output");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let got = tokio::task::spawn_blocking(move || {
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
            if line == "ACQUIRED a,d" || line == "FAILED" {
                return Some(line);
            }
        }
        None
    })
    .await
    .unwrap();
    assert_eq!(got.as_deref(), Some("ACQUIRED a,d"));
    // On the server: every item's lock is held, and ours still hold theirs.
    for item in items {
        let children = c
            .get_children(&format!("{path}/locks/{item}"))
            .await
            .unwrap();
        assert!(!children.is_empty(), "{item} is held by nobody");
    }
    for p in &ours {
        assert!(matches!(p.state(), PartitionState::Acquired(_)));
    }
    c.create(&format!("{path}-done"), "", &CreateOptions::ephemeral())
        .await
        .unwrap();
    for p in ours {
        p.finish().await.unwrap();
    }
    assert!(side.wait().unwrap().success());
    reader.join().unwrap();
    c.close().await;
}
