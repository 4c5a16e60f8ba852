//! Barriers shared with Kazoo and with Curator on one real server.
//!
//! - A `Barrier` raised by one library is waited on by the other, and the wait returns only
//!   once the node is gone, both ways.
//! - Double barriers for three: our async client, our blocking client and the other
//!   library, over several rounds. Each participant marks its arrival on the server before
//!   it enters and its departure before it leaves; when `enter` returns every participant
//!   must have arrived, when `leave` returns every one must be leaving. That is checked on
//!   the server's record by every participant, theirs included. The other library arrives
//!   last in every other round, so our participants must wait for it.
//!
//! Kazoo comes from `KAZOO_PYTHON` (or a `python3` that imports it), Curator from Debian's
//! jars; without them the tests say so and pass, unless `ZK_REQUIRE_INTEROP` is set, as
//! `.ci/run` does.

use std::process::Command;
use std::time::Duration;

use zk_tests::{client, interop, shared_server};
use zk_tokio::recipes::{Barrier, DoubleBarrier, Flavor};

const ROUNDS: usize = 3;
const TOTAL: usize = 3;
/// How long a participant waits to enter or leave before it counts as a failure.
const WAIT: Duration = Duration::from_secs(20);

const KAZOO_SIDE: &str = r#"
import os, sys, threading, time
from kazoo.client import KazooClient
threading.Timer(60, lambda: os._exit(3)).start()  # a stuck barrier fails, not hangs
hosts, base, rounds, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
gate2 = zk.Barrier(base + "-gate2")
gate2.create()
gate = zk.Barrier(base + "-gate")
zk.create(base + "-waiting", ephemeral=True)
cleared = gate.wait(30)
gone = zk.exists(base + "-gate") is None
print("GATE ok" if cleared and gone else "GATE bad")
sys.stdout.flush()
gate2.remove()
bad = 0
for r in range(rounds):
    marks = "%s-marks/%d" % (base, r)
    barrier = zk.DoubleBarrier("%s/round-%d" % (base, r), total)
    if r % 2 == 0:
        time.sleep(0.3)  # last to arrive: ours must wait for us
    zk.create(marks + "/arrived/kazoo", makepath=True)
    barrier.enter()
    if not barrier.participating:
        print("FAILED entering round %d" % r)
        sys.exit(2)
    if len(zk.get_children(marks + "/arrived")) != total:
        bad += 1
    time.sleep(0.1)
    zk.create(marks + "/leaving/kazoo", makepath=True)
    barrier.leave()
    if len(zk.get_children(marks + "/leaving")) != total:
        bad += 1
print("DONE %d VIOLATIONS %d" % (rounds, bad))
sys.stdout.flush()
zk.stop()
os._exit(0)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_barriers_and_kazoos_work_together() {
    let Some(python) = interop::kazoo() else {
        return;
    };
    let base = "/interop-barrier/kazoo";
    let hosts = shared_server().connect_string();
    let args = [
        hosts.clone(),
        base.into(),
        ROUNDS.to_string(),
        TOTAL.to_string(),
    ];
    let side = interop::python(&python, KAZOO_SIDE, &args);
    beside(side, base, Flavor::Kazoo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_barriers_and_curators_work_together() {
    let Some(curator) = interop::Curator::compile("CuratorBarrierSide") else {
        return;
    };
    let base = "/interop-barrier/curator";
    let hosts = shared_server().connect_string();
    let mut side = curator.java("CuratorBarrierSide");
    side.args([
        hosts.as_str(),
        base,
        &ROUNDS.to_string(),
        &TOTAL.to_string(),
    ]);
    beside(side, base, Flavor::Curator).await;
}

/// Runs the other side (`side`) against ours under `base`.
async fn beside(mut side: Command, base: &str, flavor: Flavor) {
    let hosts = shared_server().connect_string();
    let c = client(&hosts).await;
    let gate = Barrier::new(&c, &format!("{base}-gate"));
    gate.create().await.unwrap();
    let other = side.spawn().expect("start the other side");

    // Their barrier holds ours until they lower it; ours holds theirs until we do.
    interop::wait_for(&c, &format!("{base}-waiting")).await;
    let gate2 = format!("{base}-gate2");
    let theirs = Barrier::new(&c, &gate2);
    assert!(
        !theirs.wait(Some(Duration::from_millis(200))).await.unwrap(),
        "their barrier is up"
    );
    let waiting = {
        let (c, gate2) = (c.clone(), gate2.clone());
        tokio::spawn(async move {
            let cleared = Barrier::new(&c, &gate2)
                .wait(Some(Duration::from_secs(30)))
                .await
                .unwrap();
            cleared && c.exists(&gate2).await.unwrap().is_none()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "our wait returned while theirs was up"
    );
    gate.remove().await.unwrap();
    assert!(
        waiting.await.unwrap(),
        "our wait returned only once their barrier was gone"
    );

    // Three participants a round: ours async, ours blocking, theirs.
    let blocking = {
        let (hosts, base) = (hosts.clone(), base.to_string());
        tokio::task::spawn_blocking(move || blocking_rounds(&hosts, &base, flavor))
    };
    let ours = async_rounds(&c, base, flavor).await;
    let blocking = blocking.await.unwrap();
    if (ours, blocking) != (0, 0) {
        let mut other = other;
        let _ = other.kill();
        panic!("violations or timeouts on our side: {ours} async, {blocking} blocking");
    }
    let output = tokio::task::spawn_blocking(move || other.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("GATE ok"),
        "their wait on our barrier:\n{stdout}"
    );
    let theirs: Vec<usize> = interop::summary(&output);
    assert_eq!(theirs, [ROUNDS, 0], "rounds and violations on their side");

    // Nothing of any participant is left.
    for r in 0..ROUNDS {
        let left = c
            .get_children(&format!("{base}/round-{r}"))
            .await
            .unwrap_or_default();
        assert!(left.is_empty(), "round {r} left {left:?}");
    }
    c.close().await;
}

/// The marks of round `r`: who arrived and who is leaving.
fn marks(base: &str, r: usize) -> (String, String) {
    let m = format!("{base}-marks/{r}");
    (format!("{m}/arrived"), format!("{m}/leaving"))
}

async fn async_rounds(c: &zk_tokio::Client, base: &str, flavor: Flavor) -> usize {
    let mut bad = 0;
    for r in 0..ROUNDS {
        let (arrived, leaving) = marks(base, r);
        let mut barrier =
            DoubleBarrier::new(c, &format!("{base}/round-{r}"), TOTAL).with_flavor(flavor);
        c.create_all(&format!("{arrived}/async"), "").await.unwrap();
        if !barrier.enter(Some(WAIT)).await.unwrap() {
            return bad + 1;
        }
        if c.get_children(&arrived).await.unwrap().len() != TOTAL {
            bad += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.create_all(&format!("{leaving}/async"), "").await.unwrap();
        if !barrier.leave(Some(WAIT)).await.unwrap() {
            return bad + 1;
        }
        if c.get_children(&leaving).await.unwrap().len() != TOTAL {
            bad += 1;
        }
    }
    bad
}

fn blocking_rounds(hosts: &str, base: &str, flavor: Flavor) -> usize {
    use zk_mio::recipes::DoubleBarrier;
    let c = zk_mio::blocking::Client::connect(hosts).expect("a blocking client");
    let mut bad = 0;
    for r in 0..ROUNDS {
        let (arrived, leaving) = marks(base, r);
        let mut barrier =
            DoubleBarrier::new(&c, &format!("{base}/round-{r}"), TOTAL).with_flavor(flavor);
        c.create_all(&format!("{arrived}/blocking"), "").unwrap();
        if !barrier.enter(Some(WAIT)).unwrap() {
            return bad + 1;
        }
        if c.get_children(&arrived).unwrap().len() != TOTAL {
            bad += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
        c.create_all(&format!("{leaving}/blocking"), "").unwrap();
        if !barrier.leave(Some(WAIT)).unwrap() {
            return bad + 1;
        }
        if c.get_children(&leaving).unwrap().len() != TOTAL {
            bad += 1;
        }
    }
    c.close();
    bad
}
