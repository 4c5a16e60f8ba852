//! Read/write locks shared with the real other libraries on one real server: our
//! `ReadWriteLock` beside Kazoo's `ReadLock`/`WriteLock` (Kazoo's names), and beside
//! Curator's `InterProcessReadWriteLock` (Curator's names). Every third turn of each side
//! takes the write lock, the others the read lock. Inside, each side moves a shared state
//! node with versioned writes: `w` while a writer is in, `r<n>` with n readers in. A writer
//! that finds anything but `r0`, or a reader that finds `w`, overlapped in server time.
//!
//! Kazoo comes from `KAZOO_PYTHON` (or a `python3` that imports it), Curator from Debian's
//! `libcurator-recipes-java`; without them the tests say so and pass, unless
//! `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::process::Child;
use std::time::Duration;

use zk_tests::{client, interop, shared_server};
use zk_tokio::recipes::{Flavor, ReadWriteLock};
use zk_tokio::{Client, CreateOptions, ErrorCode};

const TURNS: u32 = 45;

const KAZOO_SIDE: &str = r#"
import sys, time
from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError
hosts, turns, lock_path, state = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
zk.create(state + "-ready", ephemeral=True)
overlaps = 0
shared = 0
def move(writer, enter):
    global overlaps, shared
    while True:
        data, stat = zk.get(state)
        now = data.decode()
        if writer:
            if now != ("r0" if enter else "w"):
                overlaps += 1
                return
            nxt = "w" if enter else "r0"
        else:
            if now == "w":
                overlaps += 1
                return
            n = int(now[1:])
            if enter and n > 0:
                shared += 1
            nxt = "r%d" % (n + 1 if enter else n - 1)
        try:
            zk.set(state, nxt.encode(), version=stat.version)
            return
        except BadVersionError:
            if writer:
                overlaps += 1
                return
done = 0
for i in range(turns):
    writer = i % 3 == 0
    lock = zk.WriteLock(lock_path, "kazoo") if writer else zk.ReadLock(lock_path, "kazoo")
    with lock:
        move(writer, True)
        time.sleep(0.003)
        move(writer, False)
        done += 1
zk.stop()
print("DONE %d OVERLAPS %d SHARED %d" % (done, overlaps, shared))
"#;

/// Overlaps and shared reads seen by one side.
#[derive(Debug, Default)]
struct Seen {
    overlaps: u32,
    shared: u32,
}

/// Moves the state node as a reader or writer entering or leaving (see the module docs).
async fn step(c: &Client, state: &str, writer: bool, enter: bool, seen: &mut Seen) {
    loop {
        let (data, stat) = c.get_data(state).await.expect("reading the state");
        let now = String::from_utf8_lossy(&data).to_string();
        let next = if writer {
            if now != if enter { "r0" } else { "w" } {
                seen.overlaps += 1;
                return;
            }
            if enter {
                "w".to_string()
            } else {
                "r0".to_string()
            }
        } else {
            // A writer inside, or a count a writer's reset drove below zero.
            let Some(n) = now.strip_prefix('r').and_then(|n| n.parse::<u32>().ok()) else {
                seen.overlaps += 1;
                return;
            };
            // A reader leaving finds itself counted, unless a writer reset the count.
            if !enter && n == 0 {
                seen.overlaps += 1;
                return;
            }
            if enter && n > 0 {
                seen.shared += 1;
            }
            format!("r{}", if enter { n + 1 } else { n - 1 })
        };
        match c.set_data(state, next, Some(stat.version)).await {
            Ok(_) => return,
            Err(e) if e.server_code() == Some(ErrorCode::BadVersion) && !writer => continue,
            Err(e) if e.server_code() == Some(ErrorCode::BadVersion) => {
                seen.overlaps += 1;
                return;
            }
            Err(e) => panic!("writing the state: {e}"),
        }
    }
}

/// Runs our side against the other library's process, and checks both sides' findings.
async fn take_turns(dir: &str, flavor: Flavor, other: Child) {
    let c = client(&shared_server().connect_string()).await;
    let (lock_dir, state) = (format!("{dir}/lock"), format!("{dir}/state"));
    interop::wait_for(&c, &format!("{state}-ready")).await;
    let rw = ReadWriteLock::with_flavor(&c, &lock_dir, flavor);
    let mut seen = Seen::default();
    for i in 0..TURNS {
        let writer = i % 3 == 1;
        let lock = if writer {
            rw.write_lock()
        } else {
            rw.read_lock()
        };
        let guard = tokio::time::timeout(Duration::from_secs(60), lock.acquire())
            .await
            .expect("the lock within 60 s")
            .expect("the lock");
        step(&c, &state, writer, true, &mut seen).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
        step(&c, &state, writer, false, &mut seen).await;
        guard.release().await.unwrap();
    }
    let output = tokio::task::spawn_blocking(move || other.wait_with_output())
        .await
        .unwrap()
        .expect("the other side ends");
    let f: Vec<u32> = interop::summary(&output);
    assert_eq!(
        (f[0], f[1], seen.overlaps),
        (TURNS, 0, 0),
        "turns done and overlaps (theirs), overlaps (ours): {f:?}"
    );
    eprintln!(
        "{TURNS} turns each: no overlap; reads that found another reader inside: ours {}, theirs {}",
        seen.shared, f[2]
    );
    assert!(
        seen.shared + f[2] > 0,
        "no two readers were ever inside at once: the test proved little"
    );
    let (data, _) = c.get_data(&state).await.unwrap();
    assert_eq!(&data[..], b"r0");
    assert!(c.get_children(&lock_dir).await.unwrap().is_empty());
    c.close().await;
}

async fn prepare(dir: &str) {
    let c = client(&shared_server().connect_string()).await;
    for (path, data) in [(dir.to_string(), ""), (format!("{dir}/state"), "r0")] {
        match c.create(&path, data, &CreateOptions::persistent()).await {
            Ok(_) => {}
            Err(e) if e.server_code() == Some(ErrorCode::NodeExists) => {}
            Err(e) => panic!("creating {path}: {e}"),
        }
    }
    c.set_data(&format!("{dir}/state"), "r0", None)
        .await
        .unwrap();
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_read_write_lock_and_kazoos_share_reads_and_exclude_writes() {
    let Some(python) = interop::kazoo() else {
        return;
    };
    let dir = "/interop-rw-kazoo";
    prepare(dir).await;
    let kazoo = interop::python(&python, KAZOO_SIDE, &side_args(dir))
        .spawn()
        .expect("start the Kazoo side");
    take_turns(dir, Flavor::Kazoo, kazoo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_read_write_lock_and_curators_share_reads_and_exclude_writes() {
    let Some(curator) = interop::Curator::compile("CuratorRwSide") else {
        return;
    };
    let dir = "/interop-rw-curator";
    prepare(dir).await;
    let side = curator
        .java("CuratorRwSide")
        .args(side_args(dir))
        .spawn()
        .expect("start the Curator side");
    take_turns(dir, Flavor::Curator, side).await;
}

/// The other side's arguments: hosts, turns, the lock, the state node.
fn side_args(dir: &str) -> [String; 4] {
    [
        shared_server().connect_string(),
        TURNS.to_string(),
        format!("{dir}/lock"),
        format!("{dir}/state"),
    ]
}
