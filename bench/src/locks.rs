//! `zk-bench --locks`: lock acquire/release cycles per second, ours against Kazoo's `Lock`
//! and Curator's `InterProcessMutex` on the same real server, uncontended (one session)
//! and contended (four sessions on one path).
//!
//! - Each side counts from when its timed sessions are connected, so interpreter and JVM
//!   start-up are left out.
//! - Before the timed cycles, every side runs `--warm N` untimed cycles (default [`WARM`],
//!   split over its workers) in the same process, on sessions of its own straight to the
//!   server and a path of its own. The JVM's JIT has then compiled Curator's hot paths, as
//!   in a long-running service.
//! - A first round warms the server up and is not counted; sides change order every round.
//! - Two ways to let go: `release()` awaited (the server confirmed the delete; the only way
//!   Kazoo and Curator have), and the guard dropped (the delete leaves with the next
//!   acquisition's requests). The raw floor does each with pre-encoded frames on a plain
//!   socket and no client at all: no client can beat it on the same server.
//! - Kazoo comes from `KAZOO_PYTHON` (or `python3`), Curator from Debian's jars; a side
//!   that is missing is reported as missing.
//! - `--link-ms N` puts an N ms one-way delay between every side and the server (the
//!   warm-up skips it), so that round trips, not the server, set the pace.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CURATOR: &str = "/usr/share/java/curator-recipes.jar";
/// Total cycles per run, split over the workers, unless `--cycles N` says otherwise: enough
/// that one run of ours lasts about half a second on loopback, as a shorter run is at the
/// mercy of a single scheduling hiccup on a small machine.
pub const CYCLES: usize = 2000;
/// Untimed cycles each side runs first, split over its workers like the timed ones.
pub const WARM: usize = 4000;
const SIDES: [&str; 5] = ["ours-tokio", "ours-blocking", "raw", "kazoo", "curator"];
const SHAPES: [(&str, usize); 2] = [("uncontended", 1), ("contended-4", 4)];

/// `link`: a one-way delay every side's connections go through (the harness's proxy), as
/// a network between the clients and the server would add; `None` for plain loopback.
/// `only`: run that one side (`ours-tokio`, `ours-blocking`, `raw`, `kazoo`, `curator`).
/// `warm` and `total` are the untimed and timed cycles of one run, split over its workers.
pub fn run(
    rounds: usize,
    link: Option<Duration>,
    (warm, total): (usize, usize),
    only: Option<&str>,
) {
    let server = zk_harness::ZkServer::standalone().expect("start a ZooKeeper server");
    let proxy = link.map(|delay| {
        let proxy = zk_harness::Proxy::start(server.addr()).expect("start the proxy");
        proxy.set_fault(zk_harness::Fault::Delay(delay));
        proxy
    });
    let hosts = match &proxy {
        Some(p) => p.connect_string(),
        None => server.connect_string(),
    };
    // The warm-up goes to the server directly: it is there to compile code, not to wait.
    let direct = server.connect_string();
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers");
    let python = std::env::var("KAZOO_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_kazoo = Command::new(&python)
        .args(["-c", "import kazoo"])
        .output()
        .is_ok_and(|o| o.status.success());
    let classes = std::env::temp_dir().join(format!("zk-bench-curator-{}", std::process::id()));
    let has_curator = Path::new(CURATOR).exists()
        && std::fs::create_dir_all(&classes).is_ok()
        && Command::new("javac")
            .args(["-cp", CURATOR, "-d"])
            .arg(&classes)
            .arg(peers.join("CuratorLocks.java"))
            .status()
            .is_ok_and(|s| s.success());
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let mut rates: BTreeMap<(&str, Release, &str), Vec<f64>> = BTreeMap::new();
    // Round 0 warms the server's JIT up and is not counted.
    for round in 0..=rounds {
        for (shape, workers) in SHAPES {
            for release in [Release::Awaited, Release::Dropped] {
                let mut sides = SIDES.to_vec();
                sides.rotate_left(round % SIDES.len());
                sides.retain(|s| only.is_none_or(|o| o == *s));
                for side in sides {
                    let path = format!("/zk-bench-locks/{shape}-{release:?}-{side}-{round}");
                    let cycles = total / workers;
                    let warm = warm / workers;
                    let both = [direct.as_str(), hosts.as_str()];
                    let took = match (side, release) {
                        ("ours-tokio", _) => Some(rt.block_on(ours_tokio(
                            both,
                            &path,
                            workers,
                            (warm, cycles),
                            release,
                        ))),
                        ("ours-blocking", _) => {
                            Some(ours_blocking(both, &path, workers, (warm, cycles), release))
                        }
                        // The floor is one session's: no contention to wait on.
                        ("raw", _) if workers == 1 => Some(raw(&hosts, &path, cycles, release)),
                        // Their release always waits for the server.
                        ("kazoo", Release::Awaited) if has_kazoo => peer(
                            Command::new(&python).arg(peers.join("kazoo_locks.py")),
                            both,
                            &path,
                            workers,
                            (warm, cycles),
                        ),
                        ("curator", Release::Awaited) if has_curator => {
                            let cp = format!("{CURATOR}:{}", classes.display());
                            peer(
                                Command::new("java").args(["-cp", &cp, "CuratorLocks"]),
                                both,
                                &path,
                                workers,
                                (warm, cycles),
                            )
                        }
                        _ => None,
                    };
                    if let Some(took) = took.filter(|_| round > 0) {
                        let rate = (workers * cycles) as f64 / took.as_secs_f64();
                        rates.entry((shape, release, side)).or_default().push(rate);
                    }
                }
            }
        }
        eprintln!("round {round} of {rounds} done (0 warms up)");
    }
    let _ = std::fs::remove_dir_all(&classes);
    println!(
        "| workload ({total} cycles) | release | ours-tokio | ours-blocking | raw floor | Kazoo 2.11 | Curator 5.4 | tokio ÷ Kazoo | tokio ÷ Curator | tokio ÷ floor |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let median = |key: (&str, Release, &str)| {
        rates.get(&key).map(|v| {
            let mut v = v.clone();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
    };
    let cell = |r: Option<f64>| r.map_or("–".to_string(), |r| format!("{r:.0}/s"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}×", a / b),
        _ => "–".into(),
    };
    for (shape, _) in SHAPES {
        // Kazoo's and Curator's release waits: their one figure stands beside both of ours.
        let k = median((shape, Release::Awaited, "kazoo"));
        let c = median((shape, Release::Awaited, "curator"));
        for release in [Release::Awaited, Release::Dropped] {
            let t = median((shape, release, "ours-tokio"));
            let b = median((shape, release, "ours-blocking"));
            let f = median((shape, release, "raw"));
            println!(
                "| {shape} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                release.describe(),
                cell(t),
                cell(b),
                cell(f),
                cell(k),
                cell(c),
                ratio(t, k),
                ratio(t, c),
                ratio(t, f),
            );
        }
    }
    drop(proxy);
    drop(server);
}

/// How a cycle lets the lock go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Release {
    /// `guard.release()`, which returns once the server confirmed the node is gone (what
    /// Kazoo's `release` and Curator's `release` do too).
    Awaited,
    /// The guard dropped: the delete leaves at once, is retried until the server confirms
    /// it, and the next acquire goes out right behind it on the same session.
    Dropped,
}

impl Release {
    fn describe(self) -> &'static str {
        match self {
            Release::Awaited => "`release()` awaited",
            Release::Dropped => "guard dropped",
        }
    }
}

/// The floor for one session: pre-encoded frames on a plain blocking socket, no client
/// state. Awaited: the create and the listing written together, both replies read, then
/// the delete written and its reply read. Dropped: the delete of the last node written
/// together with the next create and listing, and all their replies read.
fn raw(hosts: &str, dir: &str, cycles: usize, release: Release) -> Duration {
    use bytes::BytesMut;
    use std::io::{Read, Write};
    use zk_proto::codec::FrameDecoder;
    use zk_proto::consts::CreateMode;
    use zk_proto::records::{Acl, CreateRequest, DeleteRequest, GetChildrenRequest, Request};
    let addr = hosts.split(',').next().expect("a host");
    let mut s = crate::raw::raw_session(addr);
    let mut frames = FrameDecoder::new(1 << 20);
    let mut chunk = vec![0u8; 1 << 16];
    let mut xid = 0;
    // Writes `requests`, reads as many replies, and returns the path a create2 reply gave.
    let mut exchange = |requests: &[Request]| -> Option<String> {
        let mut out = BytesMut::new();
        for r in requests {
            xid += 1;
            r.encode_frame(xid, "", &mut out);
        }
        s.write_all(&out).expect("write");
        let mut created = None;
        let mut got = 0;
        while got < requests.len() {
            if let Some(frame) = frames.next_frame().expect("a frame") {
                // Reply header: xid (4), zxid (8), error (4); a create2's body starts
                // with the path: a length (4), then the bytes.
                if matches!(requests[got], Request::Create2(_)) && frame.len() > 20 {
                    let len = i32::from_be_bytes(frame[16..20].try_into().expect("4 bytes"));
                    let end = 20 + usize::try_from(len).expect("a path");
                    created = Some(String::from_utf8_lossy(&frame[20..end]).into_owned());
                }
                got += 1;
                continue;
            }
            let n = s.read(&mut chunk).expect("read");
            assert!(n > 0, "the server closed the connection");
            frames.push(&chunk[..n]);
        }
        created
    };
    let persistent = |path: &str| {
        Request::Create(CreateRequest {
            path: path.into(),
            data: Default::default(),
            acl: Acl::open_unsafe(),
            flags: CreateMode::Persistent.as_i32(),
        })
    };
    let _ = exchange(&[persistent("/zk-bench-locks")]);
    let _ = exchange(&[persistent(dir)]);
    let create = Request::Create2(CreateRequest {
        path: format!("{dir}/lock-"),
        data: Default::default(),
        acl: Acl::open_unsafe(),
        flags: CreateMode::EphemeralSequential.as_i32(),
    });
    let list = Request::GetChildren(GetChildrenRequest {
        path: dir.into(),
        watch: false,
    });
    let delete = |path: String| Request::Delete(DeleteRequest { path, version: -1 });
    let start = Instant::now();
    let mut last: Option<String> = None;
    for _ in 0..cycles {
        let mut batch = Vec::with_capacity(3);
        if let Some(node) = last.take() {
            batch.push(delete(node));
        }
        batch.push(create.clone());
        batch.push(list.clone());
        let node = exchange(&batch).expect("the node's path");
        match release {
            Release::Awaited => {
                let _ = exchange(&[delete(node)]);
            }
            Release::Dropped => last = Some(node),
        }
    }
    let took = start.elapsed();
    if let Some(node) = last {
        let _ = exchange(&[delete(node)]);
    }
    took
}

/// A peer program's own timing of its cycles: `warm` untimed cycles per worker on sessions
/// to `warm_hosts`, then `cycles` timed ones on sessions to `hosts`.
fn peer(
    cmd: &mut Command,
    [warm_hosts, hosts]: [&str; 2],
    path: &str,
    workers: usize,
    (warm, cycles): (usize, usize),
) -> Option<Duration> {
    let out = cmd
        .args([hosts, path, &workers.to_string(), &cycles.to_string()])
        .args([&warm.to_string(), warm_hosts])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let secs: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("SECONDS "))?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs_f64(secs))
}

async fn ours_tokio(
    [warm_hosts, hosts]: [&str; 2],
    path: &str,
    workers: usize,
    (warm, cycles): (usize, usize),
    release: Release,
) -> Duration {
    let connect = |hosts: &str| {
        let hosts = hosts.to_string();
        async move {
            let mut clients = Vec::new();
            for _ in 0..workers {
                clients.push(zk_tokio::Client::connect(&hosts).await.expect("connect"));
            }
            clients
        }
    };
    let run = |clients: &[zk_tokio::Client], path: String, cycles: usize| {
        let tasks: Vec<_> = clients
            .iter()
            .map(|c| {
                let lock = zk_tokio::recipes::Lock::new(c, &path);
                tokio::spawn(async move {
                    for _ in 0..cycles {
                        let guard = lock.acquire().await.expect("the lock");
                        match release {
                            Release::Awaited => guard.release().await.expect("released"),
                            Release::Dropped => drop(guard),
                        }
                    }
                })
            })
            .collect();
        async move {
            for t in tasks {
                t.await.expect("a worker");
            }
        }
    };
    let warming = connect(warm_hosts).await;
    run(&warming, format!("{path}-warm"), warm).await;
    for c in warming {
        c.close().await;
    }
    let clients = connect(hosts).await;
    let start = Instant::now();
    run(&clients, path.to_string(), cycles).await;
    let took = start.elapsed();
    for c in clients {
        c.close().await;
    }
    took
}

fn ours_blocking(
    [warm_hosts, hosts]: [&str; 2],
    path: &str,
    workers: usize,
    (warm, cycles): (usize, usize),
    release: Release,
) -> Duration {
    let connect = |hosts: &str| -> Vec<_> {
        (0..workers)
            .map(|_| zk_mio::blocking::Client::connect(hosts).expect("connect"))
            .collect()
    };
    let run = |clients: &[zk_mio::blocking::Client], path: &str, cycles: usize| {
        std::thread::scope(|s| {
            for c in clients {
                s.spawn(move || {
                    let lock = zk_mio::recipes::Lock::new(c, path);
                    for _ in 0..cycles {
                        let guard = lock.acquire().expect("the lock");
                        match release {
                            Release::Awaited => guard.release().expect("released"),
                            Release::Dropped => drop(guard),
                        }
                    }
                });
            }
        });
    };
    let warming = connect(warm_hosts);
    run(&warming, &format!("{path}-warm"), warm);
    for c in warming {
        c.close();
    }
    let clients = connect(hosts);
    let start = Instant::now();
    run(&clients, path, cycles);
    let took = start.elapsed();
    for c in clients {
        c.close();
    }
    took
}
