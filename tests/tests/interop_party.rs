//! Parties shared with Kazoo on one real server: our `Party` beside Kazoo's `Party`, and
//! our shallow party beside Kazoo's `ShallowParty`. Each side must see the other's
//! member, by identifier, and no stray node.
//!
//! Kazoo comes from `KAZOO_PYTHON` (or a `python3` that imports it); without it the test
//! says so and passes, unless `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::time::{Duration, Instant};

use zk_tests::{client, interop, shared_server};
use zk_tokio::CreateOptions;
use zk_tokio::recipes::Party;

const KAZOO_SIDE: &str = r#"
import sys, time
from kazoo.client import KazooClient
hosts, deep, shallow, done = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
p = zk.Party(deep, "kazoo")
s = zk.ShallowParty(shallow, "kazoo")
p.join()
s.join()
deadline = time.time() + 30
while (len(p) < 2 or len(s) < 2) and time.time() < deadline:
    time.sleep(0.02)
print("PARTY " + ",".join(sorted(p)))
print("SHALLOW " + ",".join(sorted(s)))
sys.stdout.flush()
while not zk.exists(done) and time.time() < deadline:
    time.sleep(0.02)
p.leave()
s.leave()
zk.stop()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_parties_and_kazoos_see_each_other() {
    let Some(python) = interop::kazoo() else {
        return;
    };
    let (deep, shallow, done) = (
        "/interop-party/deep",
        "/interop-party/shallow",
        "/interop-party-done",
    );
    let c = client(&shared_server().connect_string()).await;
    let hosts = shared_server().connect_string();
    let kazoo = interop::python(&python, KAZOO_SIDE, &[hosts.as_str(), deep, shallow, done])
        .spawn()
        .expect("start the Kazoo side");
    let ours = Party::new(&c, deep, "rust");
    let ours_shallow = Party::new(&c, shallow, "rust").shallow();
    let m1 = ours.join().await.unwrap();
    let m2 = ours_shallow.join().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (mut a, mut b) = (
            ours.members().await.unwrap(),
            ours_shallow.members().await.unwrap(),
        );
        a.sort();
        b.sort();
        if a == ["kazoo", "rust"] && b == ["kazoo", "rust"] {
            break;
        }
        assert!(Instant::now() < deadline, "we see {a:?} and {b:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Kazoo has printed what it saw once both were there; let it go.
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.create(done, "", &CreateOptions::ephemeral())
        .await
        .unwrap();
    let output = tokio::task::spawn_blocking(move || kazoo.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success()
            && stdout.contains("PARTY kazoo,rust")
            && stdout.contains("SHALLOW kazoo,rust"),
        "Kazoo saw:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    m1.release().await.unwrap();
    m2.release().await.unwrap();
    assert!(ours.is_empty().await.unwrap() && ours_shallow.is_empty().await.unwrap());
    c.close().await;
}
