//! End-to-end benchmarks against one real ZooKeeper server, our clients and the
//! `zookeeper-client` crate side by side.
//!
//! ```sh
//! cargo run --release -p zk-bench            # starts a throwaway server
//! ZK_HOSTS=127.0.0.1:2181 cargo run --release -p zk-bench -- --rounds 5
//! cargo run --release -p zk-bench -- --only sequential-get
//! cargo run --release -p zk-bench -- --vs-sim --rounds 5   # the real server against zk-sim
//! cargo run --release -p zk-bench -- --detection --rounds 10  # a black-holed server
//! cargo run --release -p zk-bench -- --locks --rounds 5   # locks: ours, Kazoo, Curator
//! cargo run --release -p zk-bench -- --locks --link-ms 1 --rounds 3   # the same, 1 ms each way
//! cargo run --release -p zk-bench -- --locks --warm 0 --rounds 5   # no warm-up in the process
//! cargo run --release -p zk-bench -- --locks --cycles 400 --rounds 5   # shorter timed runs
//! cargo run --release -p zk-bench -- --locks --only curator   # one side (ours-tokio, ours-blocking, raw, kazoo, curator)
//! cargo run --release -p zk-bench --features tls-peer -- --tls --rounds 5  # TLS against TCP
//! cargo build --release -p zk-cli && cargo run --release -p zk-bench -- --cli  # zk vs zkCli.sh
//! ```
//!
//! Every (client, workload) run happens in a child process of its own, so its CPU time and
//! peak memory are its own; clients alternate within each round so machine noise hits them
//! alike, and the median of the rounds is reported.

mod cli;
mod locks;
mod raw;
mod tls;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use raw::raw_session;
use zk_proto::codec::FrameDecoder;
use zk_proto::records::{GetDataRequest, Request};

const NODE: &str = "/zk-bench/node";
const DATA: [u8; 100] = [7; 100];
const CLIENTS: [&str; 3] = ["ours-tokio", "ours-mio", "zookeeper-client"];
const WORKLOADS: [&str; 6] = [
    "sequential-get",
    "pipelined-get",
    "pipelined-set",
    "create-delete",
    "watches-1000",
    "sessions-100",
];
const PIPELINE: usize = 256;

/// One child run's figures.
#[derive(Debug, Clone, Default)]
struct Run {
    ops: u64,
    secs: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us_per_op: f64,
    /// The share of that CPU time spent in the kernel.
    sys_share: f64,
    max_rss_kb: u64,
    /// Context switches (voluntary and not) of the whole process per operation: the
    /// wake-ups an operation costs.
    switches_per_op: f64,
}

impl Run {
    fn line(&self) -> String {
        format!(
            "RESULT {} {} {} {} {} {} {} {}",
            self.ops,
            self.secs,
            self.p50_us,
            self.p99_us,
            self.cpu_us_per_op,
            self.max_rss_kb,
            self.sys_share,
            self.switches_per_op
        )
    }

    fn parse(out: &str) -> Option<Run> {
        let line = out.lines().find(|l| l.starts_with("RESULT "))?;
        let f: Vec<&str> = line.split_whitespace().skip(1).collect();
        Some(Run {
            ops: f.first()?.parse().ok()?,
            secs: f.get(1)?.parse().ok()?,
            p50_us: f.get(2)?.parse().ok()?,
            p99_us: f.get(3)?.parse().ok()?,
            cpu_us_per_op: f.get(4)?.parse().ok()?,
            max_rss_kb: f.get(5)?.parse().ok()?,
            sys_share: f.get(6)?.parse().ok()?,
            switches_per_op: f.get(7)?.parse().ok()?,
        })
    }

    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

/// CPU time used so far: user + system, system alone, and context switches.
type Cpu = (Duration, Duration, u64);

fn cpu_and_rss() -> (Cpu, u64) {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let sys = tv(u.ru_stime);
    let switches = (u.ru_nvcsw + u.ru_nivcsw) as u64;
    ((tv(u.ru_utime) + sys, sys, switches), u.ru_maxrss as u64)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Measures `ops` operations: `body` returns per-operation latencies.
fn measure(ops: u64, body: impl FnOnce() -> Vec<Duration>) -> Run {
    let (cpu0, _) = cpu_and_rss();
    let start = Instant::now();
    let lat = body();
    finish(ops, start, cpu0, lat)
}

/// The value after `flag` on the command line, if it is there and reads as a `T`.
fn flag_value<T: std::str::FromStr>(args: &[String], flag: &str) -> Option<T> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1)?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let run = child(&args[2], &args[3], &args[4]);
        println!("{}", run.line());
        return;
    }
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(3usize);
    let only: Option<String> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    let mut _local = None;
    if args.iter().any(|a| a == "--vs-sim") {
        vs_sim(rounds, only.as_deref());
        return;
    }
    if args.iter().any(|a| a == "--locks") {
        let link = flag_value(&args, "--link-ms").map(Duration::from_millis);
        let warm = flag_value(&args, "--warm").unwrap_or(locks::WARM);
        let cycles = flag_value(&args, "--cycles").unwrap_or(locks::CYCLES);
        locks::run(rounds, link, (warm, cycles), only.as_deref());
        return;
    }
    if args.iter().any(|a| a == "--detection") {
        detection(rounds);
        return;
    }
    if args.iter().any(|a| a == "--cli") {
        cli::run(rounds);
        return;
    }
    if args.iter().any(|a| a == "--tls") {
        tls::run(rounds);
        return;
    }
    let hosts = match std::env::var("ZK_HOSTS") {
        Ok(h) if !h.trim().is_empty() => h,
        _ => {
            eprintln!("ZK_HOSTS is not set: starting a throwaway ZooKeeper on loopback");
            let server = zk_harness::ZkServer::standalone().expect("start a ZooKeeper server");
            let h = server.connect_string();
            _local = Some(server);
            h
        }
    };
    setup(&hosts);
    let exe = std::env::current_exe().expect("the bench binary");
    let mut results: BTreeMap<(String, String), Vec<Run>> = BTreeMap::new();
    for round in 0..rounds {
        for workload in WORKLOADS.iter().chain(["raw-limit"].iter()) {
            if only.as_deref().is_some_and(|o| o != *workload) {
                continue;
            }
            let clients: Vec<&str> = if *workload == "raw-limit" {
                vec!["raw"]
            } else {
                // Alternate the order from round to round.
                let mut c = CLIENTS.to_vec();
                if *workload == "sessions-100" {
                    c.push("raw-blocking");
                }
                let n = c.len();
                c.rotate_left(round % n);
                c
            };
            for client in clients {
                let out = Command::new(&exe)
                    .args(["--child", client, workload, &hosts])
                    .output()
                    .expect("run a child");
                let text = String::from_utf8_lossy(&out.stdout);
                match Run::parse(&text) {
                    Some(run) => results
                        .entry((workload.to_string(), client.to_string()))
                        .or_default()
                        .push(run),
                    None => eprintln!(
                        "{client} {workload} failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ),
                }
            }
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    report(&results);
}

/// The workloads of `--vs-sim`: the same client against a real server and against zk-sim's
/// model on its TCP front (serving from this process), alternating.
const VS_SIM: [&str; 5] = [
    "sequential-get",
    "pipelined-get",
    "pipelined-set",
    "create-delete",
    "raw-limit",
];

fn vs_sim(rounds: usize, only: Option<&str>) {
    eprintln!("starting a throwaway ZooKeeper and zk-sim's model on loopback");
    let real = zk_harness::ZkServer::standalone().expect("start a ZooKeeper server");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let sim = zk_sim::SimServer::bind("127.0.0.1:0")
                .await
                .expect("serve the model");
            let _ = tx.send(sim.connect_string());
            // Serve until the process ends.
            std::future::pending::<()>().await;
        });
    });
    let servers = [
        ("zookeeper-3.8", real.connect_string()),
        ("zk-sim", rx.recv().expect("the model's address")),
    ];
    for (_, hosts) in &servers {
        setup(hosts);
    }
    let exe = std::env::current_exe().expect("the bench binary");
    let mut results: BTreeMap<(String, String), Vec<Run>> = BTreeMap::new();
    for round in 0..rounds {
        for workload in VS_SIM {
            if only.is_some_and(|o| o != workload) {
                continue;
            }
            let client = if workload == "raw-limit" {
                "raw"
            } else {
                "ours-tokio"
            };
            let mut order = servers.to_vec();
            order.rotate_left(round % 2);
            for (server, hosts) in order {
                let out = Command::new(&exe)
                    .args(["--child", client, workload, &hosts])
                    .output()
                    .expect("run a child");
                match Run::parse(&String::from_utf8_lossy(&out.stdout)) {
                    Some(run) => results
                        .entry((workload.to_string(), server.to_string()))
                        .or_default()
                        .push(run),
                    None => eprintln!(
                        "{workload} on {server} failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ),
                }
            }
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    println!(
        "| workload (client) | ZooKeeper 3.8 ops/s | zk-sim ops/s | zk-sim / ZooKeeper | p50 µs ZooKeeper, zk-sim |"
    );
    println!("|---|---|---|---|---|");
    for workload in VS_SIM {
        let get = |s: &str| {
            results
                .get(&(workload.to_string(), s.to_string()))
                .map(|r| median(r))
        };
        let (Some(r), Some(m)) = (get("zookeeper-3.8"), get("zk-sim")) else {
            continue;
        };
        let client = if workload == "raw-limit" {
            "raw frames"
        } else {
            "ours-tokio"
        };
        println!(
            "| {workload} ({client}) | {:.0} | {:.0} | {:.2}x | {:.0}, {:.0} |",
            r.ops_per_sec(),
            m.ops_per_sec(),
            m.ops_per_sec() / r.ops_per_sec(),
            r.p50_us,
            m.p50_us
        );
    }
}

/// The session timeout of the detection trials.
const DETECTION_TIMEOUT: Duration = Duration::from_secs(6);

/// How long after its server is black-holed a client serves a read again, through a fault
/// proxy in front of each member of a 3-server ensemble: ours and zookeeper-client,
/// alternating, each trial with a fresh session and the fault at a random point of the
/// ping cycle.
fn detection(rounds: usize) {
    eprintln!("starting a 3-server ZooKeeper ensemble on loopback");
    let ensemble = zk_harness::Ensemble::start(3).expect("start an ensemble");
    let proxies: Vec<zk_harness::Proxy> = ensemble
        .servers()
        .iter()
        .map(|s| zk_harness::Proxy::start(s.addr()).expect("a proxy"))
        .collect();
    let hosts = proxies
        .iter()
        .map(zk_harness::Proxy::connect_string)
        .collect::<Vec<_>>()
        .join(",");
    setup(&ensemble.servers()[0].connect_string());
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let mut times: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for round in 0..rounds {
        let clients = if round % 2 == 0 {
            ["ours-tokio", "zookeeper-client"]
        } else {
            ["zookeeper-client", "ours-tokio"]
        };
        for client in clients {
            for p in &proxies {
                p.set_fault(zk_harness::Fault::Pass);
                p.drop_connections();
            }
            let wait = Duration::from_millis(150 + (round as u64 * 137) % 900);
            let took = rt.block_on(detection_trial(client, &hosts, &proxies, wait));
            eprintln!("{client}: read again {took:?} after its server went silent");
            times.entry(client).or_default().push(took);
        }
    }
    println!(
        "| client | median ms | worst ms | median, share of the {} s session timeout |",
        DETECTION_TIMEOUT.as_secs()
    );
    println!("|---|---|---|---|");
    for (client, mut t) in times {
        t.sort();
        let median = t[t.len() / 2];
        println!(
            "| {client} | {} | {} | {:.0}% |",
            median.as_millis(),
            t[t.len() - 1].as_millis(),
            100.0 * median.as_secs_f64() / DETECTION_TIMEOUT.as_secs_f64()
        );
    }
}

async fn detection_trial(
    client: &str,
    hosts: &str,
    proxies: &[zk_harness::Proxy],
    idle: Duration,
) -> Duration {
    // The proxy that carries the session's connection goes silent; reads are retried
    // until one succeeds, through whatever the client does meanwhile.
    let silence = || {
        let p = proxies
            .iter()
            .find(|p| p.open_connections() > 0)
            .expect("the client's connection goes through a proxy");
        p.set_fault(zk_harness::Fault::BlackHole);
        Instant::now()
    };
    match client {
        "ours-tokio" => {
            let c = zk_tokio::Client::builder(hosts)
                .session_timeout(DETECTION_TIMEOUT)
                .connect()
                .await
                .expect("connect");
            c.get_data(NODE).await.expect("read");
            tokio::time::sleep(idle).await;
            let t0 = silence();
            while c.get_data(NODE).await.is_err() {}
            let took = t0.elapsed();
            c.close().await;
            took
        }
        _ => {
            let c = zookeeper_client::Client::connector()
                .session_timeout(DETECTION_TIMEOUT)
                .connect(hosts)
                .await
                .expect("connect");
            c.get_data(NODE).await.expect("read");
            tokio::time::sleep(idle).await;
            let t0 = silence();
            loop {
                if c.get_data(NODE).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            t0.elapsed()
        }
    }
}

/// The median run by throughput.
fn median(runs: &[Run]) -> Run {
    let mut r = runs.to_vec();
    r.sort_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()));
    r[r.len() / 2].clone()
}

fn report(results: &BTreeMap<(String, String), Vec<Run>>) {
    let raw = results
        .get(&("raw-limit".to_string(), "raw".to_string()))
        .map(|r| median(r).ops_per_sec());
    println!(
        "| workload | client | ops/s | p50 µs | p99 µs | CPU µs/op | kernel share | switches/op | max RSS MiB | vs zookeeper-client (ops/s, CPU) | of raw limit |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for workload in WORKLOADS {
        let theirs = results
            .get(&(workload.to_string(), "zookeeper-client".to_string()))
            .map(|r| median(r));
        for client in CLIENTS.iter().chain(["raw-blocking"].iter()) {
            let client = *client;
            let Some(runs) = results.get(&(workload.to_string(), client.to_string())) else {
                continue;
            };
            let m = median(runs);
            let vs = match (&theirs, client) {
                (Some(t), c) if c != "zookeeper-client" => format!(
                    "{:.2}x, {:.2}x",
                    m.ops_per_sec() / t.ops_per_sec(),
                    m.cpu_us_per_op / t.cpu_us_per_op
                ),
                _ => "-".into(),
            };
            let of_raw = match (raw, workload) {
                (Some(r), "pipelined-get") => format!("{:.0}%", 100.0 * m.ops_per_sec() / r),
                _ => "-".into(),
            };
            println!(
                "| {workload} | {client} | {:.0} | {:.0} | {:.0} | {:.2} | {:.0}% | {:.2} | {:.1} | {vs} | {of_raw} |",
                m.ops_per_sec(),
                m.p50_us,
                m.p99_us,
                m.cpu_us_per_op,
                m.sys_share * 100.0,
                m.switches_per_op,
                m.max_rss_kb as f64 / 1024.0
            );
        }
    }
    if let Some(r) = raw {
        println!(
            "\nraw limit (pre-encoded getData, batched writes, replies only counted): {r:.0} ops/s"
        );
    }
}

fn setup(hosts: &str) {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async {
        let c = zk_tokio::Client::connect(hosts).await.expect("connect");
        c.create_all(NODE, Bytes::from_static(&DATA))
            .await
            .expect("create the bench node");
        c.set_data(NODE, Bytes::from_static(&DATA), None)
            .await
            .expect("set");
        c.create_all("/zk-bench/watch", Bytes::new())
            .await
            .expect("create");
        for i in 0..1000 {
            c.create_all(&format!("/zk-bench/watch/n{i}"), Bytes::new())
                .await
                .expect("create");
        }
        c.close().await;
    });
}

fn child(client: &str, workload: &str, hosts: &str) -> Run {
    match client {
        "ours-tokio" => tokio_runtime().block_on(ours_tokio(workload, hosts)),
        "zookeeper-client" => tokio_runtime().block_on(theirs(workload, hosts)),
        "ours-mio" => ours_mio(workload, hosts),
        "raw" => raw_limit(hosts),
        "raw-blocking" => raw_blocking_sessions(hosts),
        other => panic!("unknown client {other}"),
    }
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Sizes of each workload.
const SEQ: u64 = 5_000;
const PIPE: u64 = 100_000;
const SETS: u64 = 50_000;
const PAIRS: u64 = 2_000;
const SESSIONS: u64 = 100;
const PER_SESSION: u64 = 200;

// ----- ours, tokio -----

async fn ours_tokio(workload: &str, hosts: &str) -> Run {
    use zk_tokio::{Client, CreateOptions};
    let c = tls::ours_tokio(hosts).await.expect("connect");
    let data = Bytes::from_static(&DATA);
    let run = match workload {
        "sequential-get" => {
            let mut lat = Vec::with_capacity(SEQ as usize);
            let start = Instant::now();
            let (cpu0, _) = cpu_and_rss();
            for _ in 0..SEQ {
                let t = Instant::now();
                c.get_data(NODE).await.expect("get");
                lat.push(t.elapsed());
            }
            finish(SEQ, start, cpu0, lat)
        }
        "pipelined-get" | "pipelined-set" => {
            let total = if workload == "pipelined-get" {
                PIPE
            } else {
                SETS
            };
            let set = workload == "pipelined-set";
            let (cpu0, _) = cpu_and_rss();
            let start = Instant::now();
            let mut lat = Vec::with_capacity(total as usize);
            // All in flight on this one task: no per-operation task in the measurement.
            let mut inflight = FuturesUnordered::new();
            let mut sent = 0;
            while sent < total || !inflight.is_empty() {
                while sent < total && inflight.len() < PIPELINE {
                    let t = Instant::now();
                    let (c, data) = (&c, &data);
                    inflight.push(async move {
                        if set {
                            c.set_data(NODE, data.clone(), None).await.map(|_| ())
                        } else {
                            c.get_data(NODE).await.map(|_| ())
                        }
                        .expect("op");
                        t.elapsed()
                    });
                    sent += 1;
                }
                if let Some(l) = inflight.next().await {
                    lat.push(l);
                }
            }
            finish(total, start, cpu0, lat)
        }
        "create-delete" => {
            let (cpu0, _) = cpu_and_rss();
            let start = Instant::now();
            let mut lat = Vec::new();
            for i in 0..PAIRS {
                let t = Instant::now();
                let p = format!("/zk-bench/cd-{i}");
                c.create(&p, data.clone(), &CreateOptions::persistent())
                    .await
                    .expect("create");
                c.delete(&p, None).await.expect("delete");
                lat.push(t.elapsed());
            }
            finish(PAIRS * 2, start, cpu0, lat)
        }
        "watches-1000" => {
            let other = Client::connect(hosts).await.expect("connect");
            let (cpu0, _) = cpu_and_rss();
            let start = Instant::now();
            let mut watchers = Vec::new();
            for i in 0..1000 {
                let (_, _, w) = c
                    .get_data_watch(&format!("/zk-bench/watch/n{i}"))
                    .await
                    .expect("watch");
                watchers.push(w);
            }
            let fire = Instant::now();
            for i in 0..1000 {
                other
                    .set_data(&format!("/zk-bench/watch/n{i}"), Bytes::new(), None)
                    .await
                    .expect("set");
            }
            let mut lat = Vec::new();
            for w in watchers {
                w.await;
                lat.push(fire.elapsed());
            }
            other.close().await;
            finish(1000, start, cpu0, lat)
        }
        "sessions-100" => {
            let mut clients = Vec::new();
            for _ in 0..SESSIONS {
                clients.push(Client::connect(hosts).await.expect("connect"));
            }
            let (cpu0, _) = cpu_and_rss();
            let start = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for s in clients.clone() {
                tasks.spawn(async move {
                    let mut lat = Vec::new();
                    for _ in 0..PER_SESSION {
                        let t = Instant::now();
                        s.get_data(NODE).await.expect("get");
                        lat.push(t.elapsed());
                    }
                    lat
                });
            }
            let mut lat = Vec::new();
            while let Some(r) = tasks.join_next().await {
                lat.extend(r.expect("task"));
            }
            let run = finish(SESSIONS * PER_SESSION, start, cpu0, lat);
            for s in clients {
                s.close().await;
            }
            run
        }
        other => panic!("unknown workload {other}"),
    };
    c.close().await;
    run
}

fn finish(ops: u64, start: Instant, cpu0: Cpu, mut lat: Vec<Duration>) -> Run {
    let secs = start.elapsed().as_secs_f64();
    let (cpu1, rss) = cpu_and_rss();
    lat.sort();
    Run {
        ops,
        secs,
        p50_us: percentile(&lat, 0.5),
        p99_us: percentile(&lat, 0.99),
        cpu_us_per_op: (cpu1.0 - cpu0.0).as_secs_f64() * 1e6 / ops as f64,
        sys_share: (cpu1.1 - cpu0.1).as_secs_f64() / (cpu1.0 - cpu0.0).as_secs_f64().max(1e-9),
        max_rss_kb: rss,
        switches_per_op: (cpu1.2 - cpu0.2) as f64 / ops as f64,
    }
}

// ----- zookeeper-client -----

async fn theirs(workload: &str, hosts: &str) -> Run {
    use zookeeper_client::{Acls, Client, CreateMode};
    let c = tls::theirs(hosts).await.expect("connect");
    let data: &[u8] = &DATA;
    match workload {
        "sequential-get" => {
            let (cpu0, _) = cpu_and_rss();
            let start = Instant::now();
            let mut lat = Vec::new();
            for _ in 0..SEQ {
                let t = Instant::now();
                c.get_data(NODE).await.expect("get");
                lat.push(t.elapsed());
            }
            finish(SEQ, start, cpu0, lat)
        }
        "pipelined-get" | "pipelined-set" => {
            let total = if workload == "pipelined-get" {
                PIPE
            } else {
                SETS
            };
            let set = workload == "pipelined-set";
            let (cpu0, _) = cpu_and_rss();
            let start = Instant::now();
            let mut lat = Vec::with_capacity(total as usize);
            // All in flight on this one task: no per-operation task in the measurement.
            let mut inflight = FuturesUnordered::new();
            let mut sent = 0;
            while sent < total || !inflight.is_empty() {
                while sent < total && inflight.len() < PIPELINE {
                    let t = Instant::now();
                    let (c, data) = (&c, &data);
                    inflight.push(async move {
                        if set {
                            c.set_data(NODE, data, None).await.map(|_| ())
                        } else {
                            c.get_data(NODE).await.map(|_| ())
                        }
                        .expect("op");
                        t.elapsed()
                    });
                    sent += 1;
                }
                if let Some(l) = inflight.next().await {
                    lat.push(l);
                }
            }
            finish(total, start, cpu0, lat)
        }
        "create-delete" => {
            let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
            let (cpu0, _) = cpu_and_rss();
            let start = Instant::now();
            let mut lat = Vec::new();
            for i in 0..PAIRS {
                let t = Instant::now();
                let p = format!("/zk-bench/cd-{i}");
                c.create(&p, &DATA, &opts).await.expect("create");
                c.delete(&p, None).await.expect("delete");
                lat.push(t.elapsed());
            }
            finish(PAIRS * 2, start, cpu0, lat)
        }
        "watches-1000" => {
            let other = Client::connect(hosts).await.expect("connect");
            let (cpu0, _) = cpu_and_rss();
            let start = Instant::now();
            let mut watchers = Vec::new();
            for i in 0..1000 {
                let (_, _, w) = c
                    .get_and_watch_data(&format!("/zk-bench/watch/n{i}"))
                    .await
                    .expect("watch");
                watchers.push(w);
            }
            let fire = Instant::now();
            for i in 0..1000 {
                other
                    .set_data(&format!("/zk-bench/watch/n{i}"), &[], None)
                    .await
                    .expect("set");
            }
            let mut lat = Vec::new();
            for w in watchers {
                w.changed().await;
                lat.push(fire.elapsed());
            }
            finish(1000, start, cpu0, lat)
        }
        "sessions-100" => {
            let mut clients = Vec::new();
            for _ in 0..SESSIONS {
                clients.push(Client::connect(hosts).await.expect("connect"));
            }
            let (cpu0, _) = cpu_and_rss();
            let start = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for s in clients.clone() {
                tasks.spawn(async move {
                    let mut lat = Vec::new();
                    for _ in 0..PER_SESSION {
                        let t = Instant::now();
                        s.get_data(NODE).await.expect("get");
                        lat.push(t.elapsed());
                    }
                    lat
                });
            }
            let mut lat = Vec::new();
            while let Some(r) = tasks.join_next().await {
                lat.extend(r.expect("task"));
            }
            finish(SESSIONS * PER_SESSION, start, cpu0, lat)
        }
        other => panic!("unknown workload {other}"),
    }
}

// ----- ours, mio -----

/// Our mio Connection driven by a minimal loop; the blocking client for sequential work.
fn ours_mio(workload: &str, hosts: &str) -> Run {
    use zk_client::CreateOptions;
    use zk_mio::blocking::Client;
    match workload {
        "sequential-get" | "create-delete" => {
            let c = tls::ours_mio(hosts).expect("connect");
            let run = if workload == "sequential-get" {
                measure(SEQ, || {
                    (0..SEQ)
                        .map(|_| {
                            let t = Instant::now();
                            c.get_data(NODE).expect("get");
                            t.elapsed()
                        })
                        .collect()
                })
            } else {
                measure(PAIRS * 2, || {
                    (0..PAIRS)
                        .map(|i| {
                            let t = Instant::now();
                            let p = format!("/zk-bench/cd-{i}");
                            c.create(&p, Bytes::from_static(&DATA), &CreateOptions::persistent())
                                .expect("create");
                            c.delete(&p, None).expect("delete");
                            t.elapsed()
                        })
                        .collect()
                })
            };
            c.close();
            run
        }
        "pipelined-get" | "pipelined-set" => {
            let total = if workload == "pipelined-get" {
                PIPE
            } else {
                SETS
            };
            let set = workload == "pipelined-set";
            measure(total, || mio_pipeline(hosts, total, set))
        }
        "watches-1000" => {
            let c = Client::connect(hosts).expect("connect");
            let other = Client::connect(hosts).expect("connect");
            let run = measure(1000, || {
                let mut watchers = Vec::new();
                for i in 0..1000 {
                    let (_, _, w) = c
                        .get_data_watch(&format!("/zk-bench/watch/n{i}"))
                        .expect("watch");
                    watchers.push(w);
                }
                let fire = Instant::now();
                for i in 0..1000 {
                    other
                        .set_data(&format!("/zk-bench/watch/n{i}"), Bytes::new(), None)
                        .expect("set");
                }
                watchers
                    .into_iter()
                    .map(|w| {
                        w.wait();
                        fire.elapsed()
                    })
                    .collect()
            });
            c.close();
            other.close();
            run
        }
        "sessions-100" => {
            let clients: Vec<Client> = (0..SESSIONS)
                .map(|_| Client::connect(hosts).expect("connect"))
                .collect();
            let run = measure(SESSIONS * PER_SESSION, || {
                let handles: Vec<_> = clients
                    .iter()
                    .cloned()
                    .map(|c| {
                        std::thread::spawn(move || {
                            (0..PER_SESSION)
                                .map(|_| {
                                    let t = Instant::now();
                                    c.get_data(NODE).expect("get");
                                    t.elapsed()
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().expect("thread"))
                    .collect()
            });
            for c in clients {
                c.close();
            }
            run
        }
        other => panic!("unknown workload {other}"),
    }
}

/// Keeps `PIPELINE` requests in flight on one mio Connection.
fn mio_pipeline(hosts: &str, total: u64, set: bool) -> Vec<Duration> {
    use mio::{Events, Poll, Token};
    use zk_proto::records::SetDataRequest;
    use zk_proto::session::{Config, Event, SessionState};
    let mut poll = Poll::new().expect("poll");
    let config = Config::new(hosts).expect("hosts").with_seed(3);
    let mut zk = tls::mio_connection(config, poll.registry(), Token(0)).expect("connection");
    let mut events = Events::with_capacity(1024);
    let mut started: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut lat = Vec::with_capacity(total as usize);
    let (mut sent, mut done, mut ready) = (0u64, 0u64, false);
    let request = || {
        if set {
            Request::SetData(SetDataRequest {
                path: NODE.into(),
                data: Bytes::from_static(&DATA),
                version: -1,
            })
        } else {
            Request::GetData(GetDataRequest {
                path: NODE.into(),
                watch: false,
            })
        }
    };
    while done < total {
        poll.poll(&mut events, zk.timeout(Instant::now()))
            .expect("poll");
        let now = Instant::now();
        for e in events.iter() {
            zk.handle_event(e, now);
        }
        zk.handle_timeout(now);
        while let Some(ev) = zk.poll_event() {
            match ev {
                Event::State {
                    state: SessionState::Connected,
                    ..
                } => ready = true,
                Event::Complete { id, result, .. } => {
                    result.expect("op");
                    if let Some(t) = started.remove(&id.0) {
                        lat.push(t.elapsed());
                    }
                    done += 1;
                }
                _ => {}
            }
        }
        if ready {
            while sent < total && sent - done < PIPELINE as u64 {
                let id = zk.submit(now, request()).expect("submit");
                started.insert(id.0, now);
                sent += 1;
            }
        }
    }
    zk.close(Instant::now());
    lat
}

// ----- the raw limit -----

/// Pre-encoded getData requests written in batches of 256 on a plain socket, replies only
/// counted: what the server and the loopback allow at this pipeline depth, with no client
/// work at all.
/// The floor of any blocking client for `sessions-100`: 100 threads, each with its own
/// session on a plain blocking socket, writing a pre-encoded getData and blocking in `read`
/// until its reply is whole. No client state, no IO thread, no queue: only the system calls
/// and wake-ups a caller that waits for its answer cannot avoid.
fn raw_blocking_sessions(hosts: &str) -> Run {
    let addr = hosts.split(',').next().expect("a host").to_string();
    let sockets: Vec<TcpStream> = (0..SESSIONS).map(|_| raw_session(&addr)).collect();
    let mut frame = BytesMut::new();
    Request::GetData(GetDataRequest {
        path: NODE.into(),
        watch: false,
    })
    .encode_frame(1, "", &mut frame);
    let frame = frame.freeze();
    measure(SESSIONS * PER_SESSION, move || {
        let handles: Vec<_> = sockets
            .into_iter()
            .map(|mut s| {
                let frame = frame.clone();
                std::thread::spawn(move || {
                    let mut frames = FrameDecoder::new(1 << 20);
                    let mut chunk = vec![0u8; 4096];
                    (0..PER_SESSION)
                        .map(|_| {
                            let t = Instant::now();
                            s.write_all(&frame).expect("write");
                            loop {
                                let n = s.read(&mut chunk).expect("read");
                                frames.push(&chunk[..n]);
                                if frames.next_frame().expect("frame").is_some() {
                                    break;
                                }
                            }
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect()
    })
}

fn raw_limit(hosts: &str) -> Run {
    let addr = hosts.split(',').next().expect("a host");
    let mut s = raw_session(addr);
    let mut frames = FrameDecoder::new(1 << 22);
    let mut chunk = vec![0u8; 1 << 16];
    let total = PIPE;
    let mut batch = BytesMut::new();
    let get = Request::GetData(GetDataRequest {
        path: NODE.into(),
        watch: false,
    });
    for xid in 1..=PIPELINE as i32 {
        get.encode_frame(xid, "", &mut batch);
    }
    let batch = batch.freeze();
    // Keep one to two batches in flight, as a client pipelining 256 requests would: a new
    // batch leaves each time a full batch of replies is back.
    measure(total, move || {
        let batches = total / PIPELINE as u64;
        s.write_all(&batch).expect("write");
        let mut written = 1;
        let mut got = 0u64;
        while got < batches * PIPELINE as u64 {
            if written < batches && got + PIPELINE as u64 >= written * PIPELINE as u64 {
                s.write_all(&batch).expect("write");
                written += 1;
                continue;
            }
            let n = s.read(&mut chunk).expect("read");
            frames.push(&chunk[..n]);
            while let Some(_f) = frames.next_frame().expect("frame") {
                got += 1;
            }
        }
        Vec::new()
    })
}
