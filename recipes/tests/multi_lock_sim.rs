//! The multi-lock as users hold it, on zk-sim: `MultiLock` handles over a driver core per
//! client. Each seeded schedule has three contenders taking the locks on `/ma` and `/mb`
//! together (in that order), with deadlines, dropping calls at random await points, holding
//! and releasing, beside a fourth that takes `/mb` alone as a plain `Lock`, while the
//! simulation injects faults. Judged on the server's history:
//!
//! - while a multi-lock guard says it holds, each of its nodes exists and is the first in
//!   its directory, and so is the plain lock's node while its guard says it holds: no two
//!   holders of either lock at once in server time;
//! - every contender finishes (taking the locks in one order never deadlocks);
//! - once every task ended, no lock node is left and no machine is still hosted.
//!
//! Odd seeds name nodes as Curator does, even ones as Kazoo does.
//! `ZK_MULTI_LOCK_SIM_SEEDS` sets how many schedules run.

#[path = "sim_driver/mod.rs"]
mod sim_driver;
#[path = "sim_support/mod.rs"]
mod sim_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sim_driver::{Flavor, LockGuard, MultiLockGuard, SimDriver};
use zk_sim::harness::{ClientId, Simulation};

use sim_support::Belief;

const A: &str = "/ma";
const B: &str = "/mb";

/// What a contender holds now, where the checks can see it: the nodes, if held.
type Holding = Arc<Mutex<Option<Held>>>;

enum Held {
    Multi(MultiLockGuard),
    Single(LockGuard),
}

impl Held {
    fn nodes(&self) -> Option<Vec<String>> {
        match self {
            Held::Multi(g) => g.is_held().then(|| g.nodes()),
            Held::Single(g) => g.is_held().then(|| vec![g.node().to_string()]),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    acquired: AtomicUsize,
    timed_out: AtomicUsize,
    dropped: AtomicUsize,
}

fn contender(
    d: &mut SimDriver,
    seed: u64,
    i: usize,
    stop: Instant,
    holding: Holding,
    counts: Arc<Counts>,
) {
    let (_, client) = d.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let flavor = if seed % 2 == 1 {
        Flavor::Curator
    } else {
        Flavor::Kazoo
    };
    let multi = sim_driver::MultiLock::new(&client, &[A, B]).with_flavor(flavor);
    let single = sim_driver::Lock::new(&client, B).with_flavor(flavor);
    let mut rng = sim_support::Rng::new(seed, i);
    d.tasks.spawn(async move {
        while client.now() < stop {
            let wait = Duration::from_millis(100 + rng.next(2000));
            let attempt = if i == 3 {
                let call = single.acquire_timeout(wait);
                Box::pin(async move { call.await.map(|g| g.map(Held::Single)) })
                    as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
            } else {
                let call = multi.acquire_timeout(wait);
                Box::pin(async move { call.await.map(|g| g.map(Held::Multi)) })
            };
            let got = if rng.next(5) == 0 {
                let at = client.now() + Duration::from_millis(rng.next(wait.as_millis() as u64));
                match client.until(at, attempt).await {
                    Some(got) => got,
                    None => {
                        counts.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            } else {
                attempt.await
            };
            match got {
                Ok(Some(held)) => {
                    counts.acquired.fetch_add(1, Ordering::Relaxed);
                    *holding.lock().unwrap() = Some(held);
                    let hold = if rng.next(5) == 0 {
                        3000 + rng.next(4000)
                    } else {
                        rng.next(1000)
                    };
                    client
                        .sleep_until(client.now() + Duration::from_millis(hold))
                        .await;
                    let held = holding.lock().unwrap().take();
                    match held {
                        Some(Held::Multi(g)) if rng.next(2) == 0 => {
                            let _ = g.release().await;
                        }
                        Some(Held::Single(g)) if rng.next(2) == 0 => {
                            let _ = g.release().await;
                        }
                        other => drop(other),
                    }
                }
                Ok(None) => {
                    counts.timed_out.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {}
            }
            client
                .sleep_until(client.now() + Duration::from_millis(rng.next(200)))
                .await;
        }
    });
}

/// Opens and closes beliefs, one list per directory, from what each guard says now.
fn observe(
    now: Instant,
    holdings: &[Holding],
    open: &mut [Option<(Vec<String>, Instant)>],
    beliefs: &mut [Vec<Belief>; 2],
) {
    for (i, h) in holdings.iter().enumerate() {
        let held = h.lock().unwrap().as_ref().and_then(Held::nodes);
        match (&open[i], held) {
            (Some((nodes, _)), Some(n)) if *nodes == n => {}
            (current, held) => {
                if let Some((nodes, from)) = current.clone() {
                    for node in nodes {
                        let dir = usize::from(node.starts_with(&format!("{B}/")));
                        beliefs[dir].push((i, node, from, now));
                    }
                }
                open[i] = held.map(|n| (n, now));
            }
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    acquired: usize,
    timed_out: usize,
    dropped: usize,
    beliefs: usize,
    faults: usize,
}

sim_support::tally!(Stats: acquired, timed_out, dropped, beliefs, faults);

fn check(seed: u64) -> Stats {
    let start = Instant::now();
    let mut d = SimDriver::new(Simulation::new(sim_support::model(seed), start));
    let n = 4;
    let faults_until = start + Duration::from_secs(20);
    let stop = faults_until + Duration::from_secs(5);
    let counts = Arc::new(Counts::default());
    let holdings: Vec<Holding> = (0..n).map(|_| Arc::new(Mutex::new(None))).collect();
    for (i, h) in holdings.iter().enumerate() {
        contender(&mut d, seed, i, stop, h.clone(), counts.clone());
    }
    let mut rng = sim_support::Rng::new(seed, 99);
    let mut open: Vec<Option<(Vec<String>, Instant)>> = vec![None; n];
    let mut beliefs: [Vec<Belief>; 2] = [Vec::new(), Vec::new()];
    let mut next_fault = start + Duration::from_millis(200);
    let settle_by = stop + Duration::from_secs(60);
    loop {
        d.settle();
        let now = d.sim.now();
        observe(now, &holdings, &mut open, &mut beliefs);
        if d.tasks.all_done() && d.quiet() || now > settle_by {
            break;
        }
        if now < faults_until && now >= next_fault {
            let holders: Vec<ClientId> = (0..n)
                .filter(|i| open[*i].is_some())
                .map(ClientId)
                .collect();
            sim_support::lock_fault(&mut d.sim, &mut rng, &holders, n as u64, false);
            next_fault = now + Duration::from_millis(50 + rng.next(400));
        }
        for _ in 0..=rng.next(4) {
            d.advance();
        }
    }
    let now = d.sim.now();
    for (i, o) in open.iter_mut().enumerate() {
        if let Some((nodes, from)) = o.take() {
            for node in nodes {
                let dir = usize::from(node.starts_with(&format!("{B}/")));
                beliefs[dir].push((i, node, from, now));
            }
        }
    }
    assert!(
        d.tasks.all_done() && d.quiet(),
        "seed {seed}: the contenders never finished\n{}",
        d.sim.render_history()
    );
    sim_support::judge_lock(seed, &d.sim, A, &beliefs[0]);
    sim_support::judge_lock(seed, &d.sim, B, &beliefs[1]);
    let probe = d.sim.add_client(|c| c);
    for dir in [A, B] {
        let left = sim_support::children(&mut d.sim, probe, dir);
        assert!(
            left.is_empty(),
            "seed {seed}: left behind in {dir}: {left:?}\n{}",
            d.sim.render_history()
        );
    }
    Stats {
        acquired: counts.acquired.load(Ordering::Relaxed),
        timed_out: counts.timed_out.load(Ordering::Relaxed),
        dropped: counts.dropped.load(Ordering::Relaxed),
        beliefs: beliefs[0].len() + beliefs[1].len(),
        faults: sim_support::faults(&d.sim),
    }
}

#[test]
fn a_multi_lock_holds_all_or_nothing_under_faults_and_dropped_calls() {
    let (seeds, total) = sim_support::campaign("MULTI_LOCK", 1000, check);
    assert!(total.acquired >= seeds as usize * 5, "{total:?}");
    assert!(total.faults >= seeds as usize * 5, "{total:?}");
    assert!(total.dropped >= seeds as usize / 2, "{total:?}");
    assert!(total.timed_out > 0, "{total:?}");
}

/// The same on a 3-server ensemble whose followers lag.
#[test]
fn a_multi_lock_holds_all_or_nothing_with_lagging_followers() {
    sim_support::with_lagging_followers(
        a_multi_lock_holds_all_or_nothing_under_faults_and_dropped_calls,
    );
}
