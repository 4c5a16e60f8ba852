//! Where a lock cycle's time goes, for one session of ours: cycles per second with the
//! guard dropped (the delete leaves with the next acquisition's requests), on tokio's
//! multi-thread and current-thread runtimes alternately, and the requests each cycle
//! sent (from the client's own count of completed requests).
//!
//! ```sh
//! cargo run --release -p zk-bench --example lock_cycles            # a throwaway server
//! ZK_HOSTS=127.0.0.1:2181 cargo run --release -p zk-bench --example lock_cycles
//! # the system calls of the client alone (the server runs apart), one runtime at a time
//! ZK_HOSTS=127.0.0.1:2181 strace -f -c target/release/examples/lock_cycles multi
//! ZK_HOSTS=127.0.0.1:2181 strace -f -c target/release/examples/lock_cycles current
//! ```

use std::time::Instant;

/// Cycles per run.
const CYCLES: u64 = 2000;
/// Runs on each runtime.
const RUNS: usize = 5;

/// One session's `CYCLES` cycles on `path`: the rate, and the requests per cycle.
async fn cycles(hosts: &str, path: &str) -> (f64, f64) {
    let c = zk_tokio::Client::connect(hosts).await.expect("connect");
    let lock = zk_tokio::recipes::Lock::new(&c, path);
    // The first cycle makes the lock's directory: not counted.
    drop(lock.acquire().await.expect("the lock"));
    let before = c.metrics().await.expect("metrics").completed;
    let start = Instant::now();
    for _ in 0..CYCLES {
        drop(lock.acquire().await.expect("the lock"));
    }
    let rate = CYCLES as f64 / start.elapsed().as_secs_f64();
    // The last delete's reply, then the metrics call itself, which counts once.
    c.sync(path).await.expect("sync");
    let after = c.metrics().await.expect("metrics").completed;
    c.close().await;
    (rate, (after - before - 2) as f64 / CYCLES as f64)
}

fn main() {
    let server;
    let hosts = match std::env::var("ZK_HOSTS") {
        Ok(h) => h,
        Err(_) => {
            server = zk_harness::ZkServer::standalone().expect("start a ZooKeeper server");
            server.connect_string()
        }
    };
    // `multi` or `current` runs that runtime only; nothing runs both.
    let only = std::env::args().nth(1);
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let mut multi = Vec::new();
    let mut current = Vec::new();
    for run in 0..RUNS {
        if wanted("multi") {
            let rt = tokio::runtime::Runtime::new().expect("a runtime");
            multi.push(rt.block_on(cycles(&hosts, &format!("/lock-cycles/multi-{run}"))));
        }
        if wanted("current") {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let path = format!("/lock-cycles/current-{run}");
            current.push(rt.block_on(cycles(&hosts, &path)));
        }
    }
    for (name, runs) in [("multi-thread", multi), ("current-thread", current)] {
        if runs.is_empty() {
            continue;
        }
        let rates: Vec<String> = runs.iter().map(|(r, _)| format!("{r:.0}")).collect();
        let per: Vec<String> = runs.iter().map(|(_, p)| format!("{p:.2}")).collect();
        println!(
            "{name}: cycles/s {}; requests per cycle {}",
            rates.join(", "),
            per.join(", ")
        );
    }
}
