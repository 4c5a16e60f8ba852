//! DataWatch and ChildrenWatch beside Kazoo's, on one real server: a writer changes a node
//! and a parent's children slowly enough that every change is seen, and our watches must
//! report the same sequence of values as Kazoo's (data and version, absence, children).
//! Kazoo's `ChildrenWatch` ends when its node is deleted, so the children part keeps the
//! parent alive.
//!
//! Kazoo comes from `KAZOO_PYTHON` (or a `python3` that imports it); without it the test
//! says so and passes, unless `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::time::Duration;

use zk_tests::{client, interop, shared_server};
use zk_tokio::CreateOptions;
use zk_tokio::recipes::{ChildrenWatch, DataWatch};

const KAZOO_SIDE: &str = r#"
import os, sys, threading, time
from kazoo.client import KazooClient
threading.Timer(60, lambda: os._exit(3)).start()
hosts, node, parent = sys.argv[1], sys.argv[2], sys.argv[3]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
lines = []
lock = threading.Lock()
def data(d, stat):
    with lock:
        lines.append("D " + ("-" if stat is None else "%s@%d" % (d.decode() or "_", stat.version)))
def kids(children):
    with lock:
        lines.append("C " + (",".join(sorted(children)) or "_"))
zk.DataWatch(node, data)
zk.ChildrenWatch(parent, kids)
zk.create(node + "-ready", ephemeral=True)
while not zk.exists(node + "-done"):
    time.sleep(0.02)
time.sleep(0.5)
with lock:
    for l in lines:
        print(l)
print("END")
sys.stdout.flush()
zk.stop()
os._exit(0)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_watches_report_what_kazoos_report() {
    let Some(python) = interop::kazoo() else {
        return;
    };
    let (node, parent) = ("/interop-watch/node", "/interop-watch/parent");
    let hosts = shared_server().connect_string();
    let c = client(&hosts).await;
    c.create_all(parent, "").await.unwrap();
    let kazoo = interop::python(&python, KAZOO_SIDE, &[hosts.as_str(), node, parent])
        .spawn()
        .expect("start the Kazoo side");
    interop::wait_for(&c, &format!("{node}-ready")).await;
    // Our watches are read as they report (a reader that falls behind gets the latest
    // value, not every one).
    let mut ours_data = DataWatch::new(&c, node);
    let mut ours_kids = ChildrenWatch::new(&c, parent);
    let data_reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(value) = tokio::time::timeout(Duration::from_secs(2), ours_data.next()).await {
            seen.push(match value.unwrap().into_present() {
                None => "D -".to_string(),
                Some((d, stat)) => {
                    let d = String::from_utf8_lossy(&d).into_owned();
                    format!("D {}@{}", if d.is_empty() { "_" } else { &d }, stat.version)
                }
            });
        }
        seen
    });
    let kids_reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(value) = tokio::time::timeout(Duration::from_secs(2), ours_kids.next()).await {
            seen.push(match value.unwrap().into_present() {
                None => "C -".to_string(),
                Some((mut names, _)) => {
                    names.sort();
                    let joined = names.join(",");
                    format!("C {}", if joined.is_empty() { "_" } else { &joined })
                }
            });
        }
        seen
    });

    // Paced changes: every one is seen by both.
    let pace = || tokio::time::sleep(Duration::from_millis(300));
    pace().await;
    let p = CreateOptions::persistent();
    c.create(node, "a", &p).await.unwrap();
    pace().await;
    c.set_data(node, "b", None).await.unwrap();
    pace().await;
    c.create(&format!("{parent}/x"), "", &p).await.unwrap();
    pace().await;
    c.set_data(node, "", None).await.unwrap();
    pace().await;
    c.create(&format!("{parent}/y"), "", &p).await.unwrap();
    pace().await;
    c.delete(node, None).await.unwrap();
    pace().await;
    c.delete(&format!("{parent}/x"), None).await.unwrap();
    pace().await;
    c.create(node, "c", &p).await.unwrap();
    pace().await;
    c.create(&format!("{node}-done"), "", &CreateOptions::ephemeral())
        .await
        .unwrap();

    let output = tokio::task::spawn_blocking(move || kazoo.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && stdout.contains("END"),
        "the Kazoo side failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs_data: Vec<&str> = stdout.lines().filter(|l| l.starts_with("D ")).collect();
    let theirs_kids: Vec<&str> = stdout.lines().filter(|l| l.starts_with("C ")).collect();

    let mine_data = data_reader.await.unwrap();
    let mine_kids = kids_reader.await.unwrap();
    assert_eq!(
        theirs_data,
        ["D -", "D a@0", "D b@1", "D _@2", "D -", "D c@0"],
        "Kazoo's DataWatch"
    );
    assert_eq!(mine_data, theirs_data, "our DataWatch against Kazoo's");
    assert_eq!(
        theirs_kids,
        ["C _", "C x", "C x,y", "C y"],
        "Kazoo's ChildrenWatch"
    );
    assert_eq!(mine_kids, theirs_kids, "our ChildrenWatch against Kazoo's");
    c.close().await;
}
