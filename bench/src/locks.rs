//! `zk-bench --locks`: lock acquire/release cycles per second, ours against Kazoo's `Lock`
//! and Curator's `InterProcessMutex` on the same real server, uncontended (one session)
//! and contended (four sessions on one path). Each side counts from when its sessions are
//! connected, so interpreter and JVM start-up are left out; a first round warms the
//! server up and is not counted; sides alternate their order from round to round. Kazoo comes from
//! `KAZOO_PYTHON` (or `python3`), Curator from Debian's jars; a side that is missing is
//! reported as missing. `--link-ms N` puts an N ms one-way delay between every side and the
//! server, so that round trips, not the server, set the pace.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CURATOR: &str = "/usr/share/java/curator-recipes.jar";
/// Total cycles per run, split over the workers.
const CYCLES: usize = 400;
const SIDES: [&str; 4] = ["ours-tokio", "ours-blocking", "kazoo", "curator"];
const SHAPES: [(&str, usize); 2] = [("uncontended", 1), ("contended-4", 4)];

/// `link`: a one-way delay every side's connections go through (the harness's proxy), as
/// a network between the clients and the server would add; `None` for plain loopback.
pub fn run(rounds: usize, link: Option<Duration>) {
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
    let mut rates: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    // Round 0 warms the server's JIT up and is not counted.
    for round in 0..=rounds {
        for (shape, workers) in SHAPES {
            let mut sides = SIDES.to_vec();
            sides.rotate_left(round % SIDES.len());
            for side in sides {
                let path = format!("/zk-bench-locks/{shape}-{side}-{round}");
                let cycles = CYCLES / workers;
                let took = match side {
                    "ours-tokio" => Some(rt.block_on(ours_tokio(&hosts, &path, workers, cycles))),
                    "ours-blocking" => Some(ours_blocking(&hosts, &path, workers, cycles)),
                    "kazoo" if has_kazoo => peer(
                        Command::new(&python).arg(peers.join("kazoo_locks.py")),
                        &hosts,
                        &path,
                        workers,
                        cycles,
                    ),
                    "curator" if has_curator => {
                        let cp = format!("{CURATOR}:{}", classes.display());
                        peer(
                            Command::new("java").args(["-cp", &cp, "CuratorLocks"]),
                            &hosts,
                            &path,
                            workers,
                            cycles,
                        )
                    }
                    _ => None,
                };
                if let Some(took) = took.filter(|_| round > 0) {
                    let rate = (workers * cycles) as f64 / took.as_secs_f64();
                    rates.entry((shape, side)).or_default().push(rate);
                }
            }
        }
        eprintln!("round {round} of {rounds} done (0 warms up)");
    }
    let _ = std::fs::remove_dir_all(&classes);
    println!(
        "| workload | ours-tokio | ours-blocking | Kazoo 2.11 | Curator 5.4 | tokio ÷ Kazoo | tokio ÷ Curator |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (shape, _) in SHAPES {
        let median = |side: &str| {
            rates.get(&(shape, side)).map(|v| {
                let mut v = v.clone();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            })
        };
        let cell = |r: Option<f64>| r.map_or("missing".to_string(), |r| format!("{r:.0}/s"));
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2}×", a / b),
            _ => "–".into(),
        };
        let (t, b, k, c) = (
            median("ours-tokio"),
            median("ours-blocking"),
            median("kazoo"),
            median("curator"),
        );
        println!(
            "| {shape} ({CYCLES} cycles) | {} | {} | {} | {} | {} | {} |",
            cell(t),
            cell(b),
            cell(k),
            cell(c),
            ratio(t, k),
            ratio(t, c)
        );
    }
    drop(proxy);
    drop(server);
}

/// A peer program's own timing of its cycles.
fn peer(
    cmd: &mut Command,
    hosts: &str,
    path: &str,
    workers: usize,
    cycles: usize,
) -> Option<Duration> {
    let out = cmd
        .args([hosts, path, &workers.to_string(), &cycles.to_string()])
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

async fn ours_tokio(hosts: &str, path: &str, workers: usize, cycles: usize) -> Duration {
    let mut clients = Vec::new();
    for _ in 0..workers {
        clients.push(zk_tokio::Client::connect(hosts).await.expect("connect"));
    }
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .map(|c| {
            let lock = zk_tokio::recipes::Lock::new(c, path);
            tokio::spawn(async move {
                for _ in 0..cycles {
                    let guard = lock.acquire().await.expect("the lock");
                    guard.release().await.expect("released");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a worker");
    }
    let took = start.elapsed();
    for c in clients {
        c.close().await;
    }
    took
}

fn ours_blocking(hosts: &str, path: &str, workers: usize, cycles: usize) -> Duration {
    let clients: Vec<_> = (0..workers)
        .map(|_| zk_mio::blocking::Client::connect(hosts).expect("connect"))
        .collect();
    let start = Instant::now();
    std::thread::scope(|s| {
        for c in &clients {
            s.spawn(move || {
                let lock = zk_mio::recipes::Lock::new(c, path);
                for _ in 0..cycles {
                    let guard = lock.acquire().expect("the lock");
                    guard.release().expect("released");
                }
            });
        }
    });
    let took = start.elapsed();
    for c in clients {
        c.close();
    }
    took
}
