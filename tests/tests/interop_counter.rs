//! Counters shared with the real other libraries on one real server: two tasks of ours
//! adding 1 at a time beside Kazoo's `Counter` (decimal text) and beside Curator's
//! `SharedCount` (4 bytes big-endian). No addition may be lost or doubled: the final value
//! is the number of additions of both sides, read in the other library's encoding.
//!
//! Kazoo comes from `KAZOO_PYTHON` (or a `python3` that imports it), Curator from Debian's
//! `libcurator-recipes-java`; without them the tests say so and pass, unless
//! `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zk_tests::{client, shared_server};
use zk_tokio::recipes::{Counter, CounterEncoding};

const TURNS: i64 = 100;
const CURATOR: &str = "/usr/share/java/curator-recipes.jar";
const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";

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

async fn add_beside(path: &str, encoding: CounterEncoding, mut other: Child) {
    let c = client(&shared_server().connect_string()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.exists(&format!("{path}-ready")).await.unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the other side never connected: {:?}",
            other.try_wait()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(&format!("DONE {TURNS}")),
        "the other side failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
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

fn skip(what: &str) -> bool {
    assert!(
        std::env::var("ZK_REQUIRE_INTEROP").is_err(),
        "{what} is required (ZK_REQUIRE_INTEROP) but missing"
    );
    eprintln!("skipped: no {what} (run .ci/run, or see the README)");
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_counter_and_kazoos_lose_no_addition() {
    let python = std::env::var("KAZOO_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_kazoo = Command::new(&python)
        .args(["-c", "import kazoo"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_kazoo && skip("Kazoo") {
        return;
    }
    let path = "/interop-counter-kazoo";
    let kazoo = Command::new(&python)
        .args(["-c", KAZOO_SIDE, &shared_server().connect_string()])
        .args([&TURNS.to_string(), path])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Kazoo side");
    add_beside(path, CounterEncoding::Text, kazoo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_counter_and_curators_shared_count_lose_no_addition() {
    if !Path::new(CURATOR).exists() && skip("Curator") {
        return;
    }
    let mut classpath = CURATOR.to_string();
    if Path::new(SLF4J_SIMPLE).exists() {
        classpath = format!("{classpath}:{SLF4J_SIMPLE}");
    }
    let work = tempfile::tempdir().expect("a temporary directory");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("java/CuratorCounterSide.java");
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
    let path = "/interop-counter-curator";
    let cp = format!("{classpath}:{}", work.path().display());
    let curator = Command::new("java")
        .args([
            "-cp",
            &cp,
            "CuratorCounterSide",
            &shared_server().connect_string(),
        ])
        .args([&TURNS.to_string(), path])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Curator side");
    add_beside(path, CounterEncoding::Curator, curator).await;
}
