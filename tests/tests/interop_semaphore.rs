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

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zk_tests::{client, shared_server};
use zk_tokio::recipes::{Flavor, Semaphore};
use zk_tokio::{Client, CreateOptions, ErrorCode};

const TURNS: u32 = 30;
const CURATOR: &str = "/usr/share/java/curator-recipes.jar";
const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";

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

/// One worker of ours: `TURNS` leases, each with the counted node inside. Returns the
/// overlaps seen, the turns with both leases in use, and the turns that saw the other
/// library's worker inside too.
async fn worker(c: Client, sem: Semaphore, inside: String) -> (u32, u32, u32) {
    let (mut overlaps, mut full, mut mixed) = (0, 0, 0);
    for _ in 0..TURNS {
        let lease = tokio::time::timeout(Duration::from_secs(60), sem.acquire())
            .await
            .expect("a lease within 60 s")
            .expect("a lease");
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
        overlaps += u32::from(n > 2);
        full += u32::from(n == 2);
        mixed += u32::from(there.iter().any(|c| !c.starts_with("r-")));
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.delete(&me, None).await.unwrap();
        lease.release().await.unwrap();
    }
    (overlaps, full, mixed)
}

async fn take_turns(dir: &str, flavor: Flavor, other: Child) {
    let c = client(&shared_server().connect_string()).await;
    let (path, inside) = (format!("{dir}/sem"), format!("{dir}/inside"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while c
        .exists(&format!("{inside}-ready"))
        .await
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "the other side never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let sem = Semaphore::new(&c, &path, 2)
                .with_flavor(flavor)
                .with_identifier(format!("rust{i}"));
            tokio::spawn(worker(c.clone(), sem, inside.clone()))
        })
        .collect();
    let (mut overlaps, mut full, mut mixed) = (0, 0, 0);
    for w in workers {
        let (o, f, m) = w.await.unwrap();
        overlaps += o;
        full += f;
        mixed += m;
    }
    let output = tokio::task::spawn_blocking(move || other.wait_with_output())
        .await
        .unwrap()
        .expect("the other side ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the other side failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("DONE "))
        .expect("the other side's summary");
    let f: Vec<u32> = line
        .split_whitespace()
        .skip(1)
        .step_by(2)
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(
        (f[0], f[1], overlaps),
        (2 * TURNS, 0, 0),
        "turns done and overlaps (theirs), overlaps (ours): {line}"
    );
    eprintln!(
        "{TURNS} leases per worker, 2 workers a side: never more than 2 inside; both leases \
         in use in {full} of our turns and {} of theirs; {mixed} of ours shared with theirs",
        f[2]
    );
    assert!(
        mixed > 0,
        "our workers never held a lease beside theirs: the test proved little"
    );
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

fn skip(what: &str) -> bool {
    assert!(
        std::env::var("ZK_REQUIRE_INTEROP").is_err(),
        "{what} is required (ZK_REQUIRE_INTEROP) but missing"
    );
    eprintln!("skipped: no {what} (run .ci/run, or see the README)");
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_semaphore_and_kazoos_never_hand_out_more_than_the_leases() {
    let python = std::env::var("KAZOO_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_kazoo = Command::new(&python)
        .args(["-c", "import kazoo"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_kazoo && skip("Kazoo") {
        return;
    }
    let dir = "/interop-sem-kazoo";
    prepare(dir).await;
    let kazoo = Command::new(&python)
        .args(["-c", KAZOO_SIDE, &shared_server().connect_string()])
        .args([
            &TURNS.to_string(),
            &format!("{dir}/sem"),
            &format!("{dir}/inside"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Kazoo side");
    take_turns(dir, Flavor::Kazoo, kazoo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_semaphore_and_curators_never_hand_out_more_than_the_leases() {
    if !Path::new(CURATOR).exists() && skip("Curator") {
        return;
    }
    let mut classpath = CURATOR.to_string();
    if Path::new(SLF4J_SIMPLE).exists() {
        classpath = format!("{classpath}:{SLF4J_SIMPLE}");
    }
    let work = tempfile::tempdir().expect("a temporary directory");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("java/CuratorSemaphoreSide.java");
    let javac = Command::new("javac")
        .args(["-cp", &classpath, "-d"])
        .arg(work.path())
        .arg(&source)
        .output()
        .expect("javac runs");
    assert!(
        javac.status.success(),
        "javac failed: {}",
        String::from_utf8_lossy(&javac.stderr)
    );
    let dir = "/interop-sem-curator";
    prepare(dir).await;
    let cp = format!("{classpath}:{}", work.path().display());
    let curator = Command::new("java")
        .args([
            "-cp",
            &cp,
            "CuratorSemaphoreSide",
            &shared_server().connect_string(),
        ])
        .args([
            &TURNS.to_string(),
            &format!("{dir}/sem"),
            &format!("{dir}/inside"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Curator side");
    take_turns(dir, Flavor::Curator, curator).await;
}
