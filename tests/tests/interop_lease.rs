//! Leases shared with Kazoo on one real server: Kazoo's `NonBlockingLease` and
//! `MultiNonBlockingLease` beside ours on the same paths. A lease held by one library is
//! refused to the other under another identifier and renewed under the same one, and a
//! multi-lease hands out each of its slots once across both.
//!
//! Kazoo comes from `KAZOO_PYTHON` (or a `python3` that imports it); without it the test
//! says so and passes, unless `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::time::Duration;

use zk_tests::{client, interop, shared_server};
use zk_tokio::CreateOptions;
use zk_tokio::recipes::Lease;

const KAZOO_SIDE: &str = r#"
import datetime, os, sys, threading, time
from kazoo.client import KazooClient
from kazoo.recipe.lease import NonBlockingLease, MultiNonBlockingLease
threading.Timer(60, lambda: os._exit(3)).start()
hosts, base = sys.argv[1], sys.argv[2]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
d = datetime.timedelta(seconds=60)
def wait_for(path):
    while not zk.exists(path):
        time.sleep(0.02)
held = NonBlockingLease(zk, base + "/theirs", d, identifier="kazoo")
zk.create(base + "/step1", makepath=True)
wait_for(base + "/step2")
other = NonBlockingLease(zk, base + "/ours", d, identifier="kazoo-2")
renew = NonBlockingLease(zk, base + "/ours", d, identifier="rust")
m1 = MultiNonBlockingLease(zk, 3, base + "/multi", d, identifier="k1")
zk.create(base + "/step3")
wait_for(base + "/step4")
m2 = MultiNonBlockingLease(zk, 3, base + "/multi", d, identifier="k2")
zk.create(base + "/step5")
wait_for(base + "/step6")
m3 = MultiNonBlockingLease(zk, 3, base + "/multi", d, identifier="k3")
print("DONE %d OTHER %d RENEW %d M1 %d M2 %d M3 %d" % (
    bool(held), bool(other), bool(renew), bool(m1), bool(m2), bool(m3)))
sys.stdout.flush()
zk.stop()
os._exit(0)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_leases_and_kazoos_respect_each_other() {
    let Some(python) = interop::kazoo() else {
        return;
    };
    let base = "/interop-lease";
    let hosts = shared_server().connect_string();
    let c = client(&hosts).await;
    let kazoo = interop::python(&python, KAZOO_SIDE, &[hosts.as_str(), base])
        .spawn()
        .expect("start the Kazoo side");
    let minute = Duration::from_secs(60);
    let step = |n: u32| format!("{base}/step{n}");

    // Kazoo's lease: refused to another identifier, renewed under Kazoo's own.
    interop::wait_for(&c, &step(1)).await;
    let theirs = format!("{base}/theirs");
    assert_eq!(
        Lease::new(&c, &theirs, "rust")
            .holder()
            .await
            .unwrap()
            .as_deref(),
        Some("kazoo"),
        "Kazoo's record reads back"
    );
    assert!(
        !Lease::new(&c, &theirs, "rust")
            .obtain(minute)
            .await
            .unwrap()
    );
    assert!(
        Lease::new(&c, &theirs, "kazoo")
            .obtain(minute)
            .await
            .unwrap()
    );

    // Ours, for Kazoo to try.
    assert!(
        Lease::new(&c, &format!("{base}/ours"), "rust")
            .obtain(minute)
            .await
            .unwrap()
    );
    c.create(&step(2), "", &CreateOptions::persistent())
        .await
        .unwrap();

    // A multi-lease of three, taken in turns: k1, ours, k2; then neither ours nor k3.
    let multi = format!("{base}/multi");
    interop::wait_for(&c, &step(3)).await;
    let r1 = Lease::multi(&c, &multi, 3, "r1")
        .obtain_path(minute)
        .await
        .unwrap();
    assert_eq!(r1, Some(format!("{multi}/1")), "k1 took the first slot");
    c.create(&step(4), "", &CreateOptions::persistent())
        .await
        .unwrap();
    interop::wait_for(&c, &step(5)).await;
    assert!(
        !Lease::multi(&c, &multi, 3, "r2")
            .obtain(minute)
            .await
            .unwrap()
    );
    c.create(&step(6), "", &CreateOptions::persistent())
        .await
        .unwrap();

    let output = tokio::task::spawn_blocking(move || kazoo.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let seen: Vec<u8> = interop::summary(&output);
    // Kazoo took its lease; was refused ours under another identifier and renewed it
    // under ours; took the first and third slots and was refused the fourth try.
    assert_eq!(seen, [1, 0, 1, 1, 1, 0]);
    let holders = Lease::multi(&c, &multi, 3, "x").holders().await.unwrap();
    assert_eq!(
        holders,
        [Some("k1".into()), Some("r1".into()), Some("k2".into())]
    );
    c.close().await;
}
