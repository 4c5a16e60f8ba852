//! Semaphores shared with the real other libraries on one real server: two workers of
//! ours (`zk_tokio::recipes::Semaphore`, 2 leases) beside two of Kazoo's `Semaphore`
//! (Kazoo's layout), and beside two of Curator's `InterProcessSemaphoreV2` (Curator's
//! layout). Inside its lease each worker adds an ephemeral sequential node under one
//! directory and counts the directory's children: more than 2 means more holders than
//! leases in server time.
//!
//! Kazoo comes from `KAZOO_PYTHON` (or a `python3` that imports it), Curator from Debian's
//! `libcurator-recipes-java`; without them the tests say so and pass, unless
//! `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::process::Child;
use std::time::Duration;

use zk_tests::{client, interop, shared_server};
use zk_tokio::recipes::{Flavor, Semaphore, SemaphoreLease, SemaphoreMutex};
use zk_tokio::{Client, CreateOptions, ErrorCode};

const TURNS: u32 = 30;

const KAZOO_SIDE: &str = r#"
import sys, time, threading
from kazoo.client import KazooClient
hosts, turns, path, inside = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
zk.create(inside + "-ready", ephemeral=True)
counts = {"done": 0, "overlaps": 0, "full": 0}
guard = threading.Lock()
def worker(name):
    sem = zk.Semaphore(path, name, max_leases=2)
    for _ in range(turns):
        with sem:
            me = zk.create(inside + "/k-", ephemeral=True, sequence=True)
            n = len(zk.get_children(inside))
            time.sleep(0.02)
            zk.delete(me)
            with guard:
                counts["done"] += 1
                counts["overlaps"] += n > 2
                counts["full"] += n == 2
threads = [threading.Thread(target=worker, args=("kazoo%d" % i,)) for i in range(2)]
for t in threads: t.start()
for t in threads: t.join()
zk.stop()
print("DONE %d OVERLAPS %d FULL %d" % (counts["done"], counts["overlaps"], counts["full"]))
"#;

/// A lease of ours: from a two-lease semaphore, or from a semaphore mutex.
#[derive(Clone)]
enum Ours {
    Semaphore(Semaphore),
    Mutex(SemaphoreMutex),
}

impl Ours {
    fn leases(&self) -> usize {
        match self {
            Ours::Semaphore(_) => 2,
            Ours::Mutex(_) => 1,
        }
    }

    async fn acquire(&self) -> zk_tokio::Result<SemaphoreLease> {
        match self {
            Ours::Semaphore(s) => s.acquire().await,
            Ours::Mutex(m) => m.acquire().await,
        }
    }
}

/// One worker of ours: `TURNS` leases, each with the counted node inside. Returns the
/// overlaps seen, the turns with every lease in use, and the turns that saw the other
/// library's worker inside too.
async fn worker(c: Client, sem: Ours, inside: String) -> (u32, u32, u32, Vec<u64>) {
    let (mut overlaps, mut full, mut mixed) = (0, 0, 0);
    let mut sequences = Vec::new();
    let leases = sem.leases();
    for _ in 0..TURNS {
        let lease = tokio::time::timeout(Duration::from_secs(60), sem.acquire())
            .await
            .expect("a lease within 60 s")
            .expect("a lease");
        // Curator's lease nodes are sequential (`..-lease-<sequence>`); Kazoo's are not.
        if let Some((_, seq)) = lease.node().rsplit_once("-lease-") {
            sequences.extend(seq.parse::<u64>().ok());
        }
        let me = c
            .create(
                &format!("{inside}/r-"),
                "",
                &CreateOptions::ephemeral_sequential(),
            )
            .await
            .unwrap();
        let there = c.get_children(&inside).await.unwrap();
        let n = there.len();
        overlaps += u32::from(n > leases);
        full += u32::from(n == leases);
        mixed += u32::from(there.iter().any(|c| !c.starts_with("r-")));
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.delete(&me, None).await.unwrap();
        lease.release().await.unwrap();
    }
    (overlaps, full, mixed, sequences)
}

async fn take_turns(dir: &str, flavor: Flavor, mutex: bool, other: Child) {
    let c = client(&shared_server().connect_string()).await;
    let (path, inside) = (format!("{dir}/sem"), format!("{dir}/inside"));
    interop::wait_for(&c, &format!("{inside}-ready")).await;
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let sem = if mutex {
                Ours::Mutex(SemaphoreMutex::new(&c, &path).with_identifier(format!("rust{i}")))
            } else {
                Ours::Semaphore(
                    Semaphore::new(&c, &path, 2)
                        .with_flavor(flavor)
                        .with_identifier(format!("rust{i}")),
                )
            };
            tokio::spawn(worker(c.clone(), sem, inside.clone()))
        })
        .collect();
    let (mut overlaps, mut full, mut mixed) = (0, 0, 0);
    let mut ours = std::collections::BTreeSet::new();
    for w in workers {
        let (o, f, m, s) = w.await.unwrap();
        overlaps += o;
        full += f;
        mixed += m;
        ours.extend(s);
    }
    // Leases taken by their workers between two of ours: the two sides took turns.
    let (first, last) = (ours.first().copied(), ours.last().copied());
    let theirs_between = match (first, last) {
        (Some(a), Some(b)) => (a..=b).filter(|s| !ours.contains(s)).count(),
        _ => 0,
    };
    let output = tokio::task::spawn_blocking(move || other.wait_with_output())
        .await
        .unwrap()
        .expect("the other side ends");
    let f: Vec<u32> = interop::summary(&output);
    assert_eq!(
        (f[0], f[1], overlaps),
        (2 * TURNS, 0, 0),
        "turns done and overlaps (theirs), overlaps (ours): {f:?}"
    );
    let leases = if mutex { 1 } else { 2 };
    eprintln!(
        "{TURNS} leases per worker, 2 workers a side: never more than {leases} inside; every \
         lease in use in {full} of our turns and {} of theirs; {mixed} of ours shared with \
         theirs; {theirs_between} of their leases between our first and last",
        f[2]
    );
    if mutex {
        assert!(
            theirs_between > 0,
            "the two sides never took turns on the mutex: the test proved little"
        );
    } else {
        assert!(
            mixed > 0,
            "our workers never held a lease beside theirs: the test proved little"
        );
    }
    assert!(c.get_children(&inside).await.unwrap().is_empty());
    c.close().await;
}

async fn prepare(dir: &str) {
    let c = client(&shared_server().connect_string()).await;
    for path in [dir.to_string(), format!("{dir}/inside")] {
        match c.create(&path, "", &CreateOptions::persistent()).await {
            Ok(_) => {}
            Err(e) if e.server_code() == Some(ErrorCode::NodeExists) => {}
            Err(e) => panic!("creating {path}: {e}"),
        }
    }
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_semaphore_and_kazoos_never_hand_out_more_than_the_leases() {
    let Some(python) = interop::kazoo() else {
        return;
    };
    let dir = "/interop-sem-kazoo";
    prepare(dir).await;
    let kazoo = interop::python(&python, KAZOO_SIDE, &side_args(dir))
        .spawn()
        .expect("start the Kazoo side");
    take_turns(dir, Flavor::Kazoo, false, kazoo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_semaphore_and_curators_never_hand_out_more_than_the_leases() {
    let Some(curator) = interop::Curator::compile("CuratorSemaphoreSide") else {
        return;
    };
    let dir = "/interop-sem-curator";
    prepare(dir).await;
    let side = curator
        .java("CuratorSemaphoreSide")
        .args(side_args(dir))
        .spawn()
        .expect("start the Curator side");
    take_turns(dir, Flavor::Curator, false, side).await;
}

/// The other side's arguments: hosts, turns, the semaphore, the counted directory.
fn side_args(dir: &str) -> [String; 4] {
    [
        shared_server().connect_string(),
        TURNS.to_string(),
        format!("{dir}/sem"),
        format!("{dir}/inside"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_semaphore_mutex_and_curators_exclude_each_other() {
    let Some(curator) = interop::Curator::compile("CuratorSemaphoreSide") else {
        return;
    };
    let dir = "/interop-semmutex-curator";
    prepare(dir).await;
    let mut args = side_args(dir).to_vec();
    args.push("mutex".to_string());
    let side = curator
        .java("CuratorSemaphoreSide")
        .args(args)
        .spawn()
        .expect("start the Curator side");
    take_turns(dir, Flavor::Curator, true, side).await;
}
