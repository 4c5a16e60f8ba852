//! Patient children watches with Kazoo, both ways, on one real server: Kazoo's
//! `PatientChildrenWatch` reports a burst of children ours created only once it is over,
//! and ours reports a burst Kazoo created only once it is over.
//!
//! Kazoo comes from `KAZOO_PYTHON` (or a `python3` that imports it); without it the test
//! says so and passes, unless `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::io::BufRead;
use std::time::Duration;

use zk_tests::{client, interop, shared_server};
use zk_tokio::CreateOptions;
use zk_tokio::recipes::{Node, PatientChildrenWatch};

const KAZOO_SIDE: &str = r#"
import sys, time
from kazoo.client import KazooClient
from kazoo.recipe.watchers import PatientChildrenWatch
hosts, ours, theirs = sys.argv[1], sys.argv[2], sys.argv[3]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
zk.ensure_path(ours)
zk.ensure_path(theirs)
# Watch ours: their burst is reported once it is over.
result = PatientChildrenWatch(zk, ours, time_boundary=0.5).start()
zk.create(ours + "-ready", ephemeral=True)
children, _ = result.get(timeout=30)
print("STABLE " + ",".join(sorted(children)), flush=True)
# Then a burst of ours for them to watch, once they say they are watching.
while not zk.exists(theirs + "-watching"):
    time.sleep(0.02)
for i in range(5):
    zk.create(theirs + "/k%d" % i)
    time.sleep(0.1)
print("DONE", flush=True)
zk.stop()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_patient_watch_and_kazoos_each_report_the_others_burst_once_over() {
    let Some(python) = interop::kazoo() else {
        return;
    };
    let (ours, theirs) = ("/interop-patient/ours", "/interop-patient/theirs");
    let c = client(&shared_server().connect_string()).await;
    c.create_all(ours, "").await.unwrap();
    c.create_all(theirs, "").await.unwrap();
    let mut side = interop::python(
        &python,
        KAZOO_SIDE,
        &[&shared_server().connect_string(), ours, theirs],
    )
    .spawn()
    .expect("start the Kazoo side");
    interop::wait_for(&c, &format!("{ours}-ready")).await;
    // A burst of ours, 100 ms apart: Kazoo's 500 ms boundary outlasts every gap.
    for i in 0..5 {
        c.create(&format!("{ours}/r{i}"), "", &CreateOptions::persistent())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = side.stdout.take().expect("the side's output");
    let mut lines = std::io::BufReader::new(out).lines();
    let stable = tokio::task::spawn_blocking(move || {
        let line = lines.next().unwrap().unwrap();
        (line, lines)
    });
    let (line, mut lines) = tokio::time::timeout(Duration::from_secs(30), stable)
        .await
        .expect("Kazoo reports")
        .unwrap();
    assert_eq!(line, "STABLE r0,r1,r2,r3,r4", "Kazoo saw the burst as one");

    // Ours watches theirs: the empty directory first, then their whole burst, once.
    let watch = PatientChildrenWatch::new(&c, theirs, Duration::from_millis(500));
    let first = watch.next().await.unwrap();
    assert_eq!(first.value().map(Vec::len), Some(0));
    c.create(
        &format!("{theirs}-watching"),
        "",
        &CreateOptions::ephemeral(),
    )
    .await
    .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(30), watch.next())
        .await
        .expect("ours reports their burst")
        .unwrap();
    let Node::Present(mut children, _) = next else {
        panic!("{next:?}")
    };
    children.sort();
    assert_eq!(children, ["k0", "k1", "k2", "k3", "k4"]);
    // Nothing more: the burst was reported once.
    assert!(
        watch
            .next_timeout(Duration::from_millis(800))
            .await
            .unwrap()
            .is_none()
    );
    let done = tokio::task::spawn_blocking(move || lines.next().map(|l| l.unwrap()))
        .await
        .unwrap();
    assert_eq!(done.as_deref(), Some("DONE"));
    assert!(side.wait().unwrap().success());
    c.close().await;
}
