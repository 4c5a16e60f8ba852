//! The lock as users hold it, on zk-sim: the recipe handles (`Lock`, `Guard`) over a driver
//! core per client (`sim_driver`), the same core both clients run over their sockets. Each
//! seeded schedule has three contenders acquiring with timeouts, dropping acquisitions at
//! random await points, holding, releasing or dropping their guards, while the simulation
//! injects faults. Safety is judged on the server's history:
//!
//! - while a guard says it holds the lock, its node exists on the server and no lower node
//!   excludes it (any lower node excludes a writer; a lower writer excludes a reader);
//! - so no two conflicting guards hold at once in server time;
//! - a guard never says it holds while its session is not connected, though the host turns
//!   late at random, so that a reply and a disconnect after it reach the core together;
//! - once every task ended, no lock node is left and no machine is still hosted.
//!
//! Odd seeds name nodes as Curator does, even ones as Kazoo does; seeds 2, 3, 6, 7, ... run
//! two readers and a writer. `ZK_HANDLES_SIM_SEEDS=2000 cargo test -p zk-recipes --test
//! handles_sim` runs a long campaign.

#[path = "sim_driver/mod.rs"]
mod sim_driver;
#[path = "sim_support/mod.rs"]
mod sim_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sim_driver::{Flavor, LockGuard, LockKind, Node, SimDriver};
use zk_proto::ErrorCode;
use zk_proto::records::Acl;
use zk_proto::session::{AppState, Error as SessionError};
use zk_sim::TxnOp;
use zk_sim::harness::{ClientId, SimConfig, Simulation};

const DIR: &str = "/hlock";

/// The guard a contender holds now, where the checks can see it.
type Holding = Arc<Mutex<Option<LockGuard>>>;

use sim_support::Belief;

#[derive(Debug, Default)]
struct Counts {
    acquired: AtomicUsize,
    timed_out: AtomicUsize,
    dropped: AtomicUsize,
    errors: AtomicUsize,
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
    let kind = match (seed / 2 % 2, i) {
        (0, _) => LockKind::Exclusive,
        (_, 0) => LockKind::Write,
        _ => LockKind::Read,
    };
    let flavor = if seed % 2 == 1 {
        Flavor::Curator
    } else {
        Flavor::Kazoo
    };
    let lock = sim_driver::Lock::new(&client, DIR)
        .with_flavor(flavor)
        .with_kind(kind);
    let mut rng = sim_support::Rng::new(seed, i);
    d.tasks.spawn(async move {
        client
            .sleep_until(client.now() + Duration::from_millis(10 * i as u64))
            .await;
        while client.now() < stop {
            let wait = Duration::from_millis(100 + rng.next(1500));
            let acquiring = lock.acquire_timeout(wait);
            // Now and then the caller gives up at some await point of the acquisition, by
            // dropping the call.
            let got = if rng.next(5) == 0 {
                let at = client.now() + Duration::from_millis(rng.next(wait.as_millis() as u64));
                match client.until(at, acquiring).await {
                    Some(got) => got,
                    None => {
                        counts.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            } else {
                acquiring.await
            };
            match got {
                Ok(Some(guard)) => {
                    counts.acquired.fetch_add(1, Ordering::Relaxed);
                    *holding.lock().unwrap() = Some(guard);
                    // Mostly short holds; some outlast a session timeout.
                    let hold = if rng.next(5) == 0 {
                        3000 + rng.next(5000)
                    } else {
                        rng.next(1500)
                    };
                    client
                        .sleep_until(client.now() + Duration::from_millis(hold))
                        .await;
                    let guard = holding.lock().unwrap().take();
                    if let Some(guard) = guard {
                        if rng.next(2) == 0 {
                            let _ = guard.release().await;
                        } else {
                            drop(guard);
                        }
                    }
                }
                Ok(None) => {
                    counts.timed_out.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    counts.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            client
                .sleep_until(client.now() + Duration::from_millis(rng.next(200)))
                .await;
        }
    });
}

/// Opens and closes beliefs from what each guard says now.
fn observe(
    now: Instant,
    holdings: &[Holding],
    open: &mut [Option<(String, Instant)>],
    beliefs: &mut Vec<Belief>,
) {
    for (i, h) in holdings.iter().enumerate() {
        let held = h
            .lock()
            .unwrap()
            .as_ref()
            .filter(|g| g.is_held())
            .map(|g| g.node().to_string());
        match (&open[i], held) {
            (Some((node, _)), Some(n)) if *node == n => {}
            (current, held) => {
                if let Some((node, from)) = current.clone() {
                    beliefs.push((i, node, from, now));
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
    shared: usize,
}

fn check(seed: u64) -> Stats {
    let start = Instant::now();
    let mut d = SimDriver::new(Simulation::new(sim_support::model(seed), start));
    let n = 3;
    let faults_until = start + Duration::from_secs(20);
    let stop = faults_until + Duration::from_secs(5);
    let counts = Arc::new(Counts::default());
    let holdings: Vec<Holding> = (0..n).map(|_| Arc::new(Mutex::new(None))).collect();
    for (i, h) in holdings.iter().enumerate() {
        contender(&mut d, seed, i, stop, h.clone(), counts.clone());
    }
    let mut rng = sim_support::Rng::new(seed, 99);
    let mut open: Vec<Option<(String, Instant)>> = vec![None; n];
    let mut beliefs: Vec<Belief> = Vec::new();
    let mut next_fault = start + Duration::from_millis(200);
    let settle_by = stop + Duration::from_secs(60);
    loop {
        d.settle();
        let now = d.sim.now();
        observe(now, &holdings, &mut open, &mut beliefs);
        if d.tasks.all_done() && d.quiet() || now > settle_by {
            break;
        }
        // A guard that says it holds on a session that is not connected believes what it
        // cannot know (a reply handed over after the disconnect that followed it).
        for (i, o) in open.iter().enumerate() {
            let app = d.sim.session(ClientId(i)).app_state();
            assert!(
                o.is_none() || app == AppState::Connected,
                "seed {seed}: contender {i}'s guard holds {o:?} while its session is {app:?}\n{}",
                d.sim.render_history()
            );
        }
        if now < faults_until && now >= next_fault {
            let holders: Vec<ClientId> = (0..n)
                .filter(|i| open[*i].is_some())
                .map(ClientId)
                .collect();
            sim_support::lock_fault(&mut d.sim, &mut rng, &holders, n as u64, false);
            next_fault = now + Duration::from_millis(50 + rng.next(400));
        }
        // A busy host turns late: what the socket delivered meanwhile (a reply, then a
        // reset) reaches the core in one batch, which it must take in order.
        for _ in 0..=rng.next(4) {
            d.advance();
        }
    }
    let now = d.sim.now();
    for (i, o) in open.iter_mut().enumerate() {
        if let Some((node, from)) = o.take() {
            beliefs.push((i, node, from, now));
        }
    }
    let report = || d.sim.render_history();
    assert!(
        d.tasks.all_done() && d.quiet(),
        "seed {seed}: the contenders never finished\n{}",
        report()
    );

    let shared = sim_support::judge_lock(seed, &d.sim, DIR, &beliefs);

    // Everything the handles started was cleaned up, confirmed by the server.
    let probe = d.sim.add_client(|c| c);
    let left = sim_support::children(&mut d.sim, probe, DIR);
    assert!(
        left.is_empty(),
        "seed {seed}: left behind {left:?}\n{}",
        d.sim.render_history()
    );
    let c = &counts;
    Stats {
        acquired: c.acquired.load(Ordering::Relaxed),
        timed_out: c.timed_out.load(Ordering::Relaxed),
        dropped: c.dropped.load(Ordering::Relaxed),
        beliefs: beliefs.len(),
        faults: sim_support::faults(&d.sim),
        shared,
    }
}

#[test]
fn guards_hold_under_faults_and_dropped_calls_through_the_driver_core() {
    let seeds = sim_support::seeds("ZK_HANDLES_SIM_SEEDS", 300);
    let first = sim_support::seeds("ZK_HANDLES_SIM_FIRST", 1);
    let mut total = Stats::default();
    let mut per_seed = BTreeMap::new();
    for seed in first..first + seeds {
        let s = check(seed);
        per_seed.insert(seed, s.acquired);
        total.acquired += s.acquired;
        total.timed_out += s.timed_out;
        total.dropped += s.dropped;
        total.beliefs += s.beliefs;
        total.faults += s.faults;
        total.shared += s.shared;
    }
    eprintln!("{seeds} schedules: {total:?}");
    // The schedules must exercise the handles, not idle past them.
    assert!(
        total.acquired >= seeds as usize * 5,
        "{total:?} {per_seed:?}"
    );
    assert!(total.faults >= seeds as usize * 5, "{total:?}");
    assert!(total.dropped >= seeds as usize, "{total:?}");
    assert!(total.timed_out > 0, "{total:?}");
    if seeds >= 4 {
        assert!(total.shared > 0, "{total:?}");
    }
}

const WATCHED: &str = "/watched";

/// What one watcher saw: each value with the zxid and version of the write that made it.
type Seen = Arc<Mutex<Vec<Vec<(Bytes, i64, i32)>>>>;

fn writer(d: &mut SimDriver, seed: u64, stop: Instant) {
    let (_, client) = d.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let mut rng = sim_support::Rng::new(seed, 50);
    d.tasks.spawn(async move {
        let create = zk_client::op::create(
            WATCHED,
            Bytes::from_static(b"0"),
            &zk_client::CreateOptions::persistent(),
            &Acl::open_unsafe(),
        );
        while !matches!(
            client.call(create.request().clone()).await,
            Ok(Ok(_)) | Ok(Err(SessionError::Server(ErrorCode::NodeExists)))
        ) {
            client
                .sleep_until(client.now() + Duration::from_millis(50))
                .await;
        }
        let mut n = 0u64;
        while client.now() < stop {
            n += 1;
            let set = zk_client::op::set_data(WATCHED, Bytes::from(n.to_string()), None);
            // A lost reply leaves the write in doubt: the server's history says.
            let _ = client.call(set.request().clone()).await;
            client
                .sleep_until(client.now() + Duration::from_millis(rng.next(300)))
                .await;
        }
    });
}

/// A watcher: data watches opened, read and dropped at random; each watch's values go to
/// a list of their own.
fn watcher(d: &mut SimDriver, seed: u64, i: usize, stop: Instant, seen: Seen) {
    let (_, client) = d.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let mut rng = sim_support::Rng::new(seed, 60 + i);
    d.tasks.spawn(async move {
        loop {
            let mut watch = sim_driver::DataWatch::new(&client, WATCHED);
            let mine = {
                let mut s = seen.lock().unwrap();
                s.push(Vec::new());
                s.len() - 1
            };
            // Read for a while; the last watch reads until the writes are long over.
            let last = client.now() >= stop;
            let until = if last {
                stop + Duration::from_secs(15)
            } else {
                client.now() + Duration::from_millis(200 + rng.next(3000))
            };
            while client.now() < until {
                // Now and then the read itself is dropped half way.
                let wait = Duration::from_millis(100 + rng.next(1000));
                let read = if rng.next(4) == 0 {
                    let at =
                        client.now() + Duration::from_millis(rng.next(wait.as_millis() as u64));
                    client
                        .until(at, watch.next_timeout(wait))
                        .await
                        .unwrap_or(Ok(None))
                } else {
                    watch.next_timeout(wait).await
                };
                match read {
                    Ok(Some(Node::Present(value, stat))) => {
                        seen.lock().unwrap()[mine].push((value, stat.mzxid, stat.version));
                    }
                    Ok(_) => {}
                    // A watch that failed is done: open another.
                    Err(_) => break,
                }
            }
            drop(watch);
            if last {
                return;
            }
        }
    });
}

fn check_watches(seed: u64) -> (usize, usize) {
    let start = Instant::now();
    let config = if seed % 2 == 1 {
        SimConfig::new(seed).ensemble(zk_sim::Config::ensemble(3).tick(Duration::from_millis(200)))
    } else {
        sim_support::model(seed)
    };
    let mut d = SimDriver::new(Simulation::new(config, start));
    let faults_until = start + Duration::from_secs(20);
    let stop = faults_until + Duration::from_secs(2);
    let watchers = 3;
    let seen: Vec<Seen> = (0..watchers)
        .map(|_| Arc::new(Mutex::new(Vec::new())))
        .collect();
    for (i, s) in seen.iter().enumerate() {
        watcher(&mut d, seed, i, stop, s.clone());
    }
    writer(&mut d, seed, stop);
    let mut rng = sim_support::Rng::new(seed, 99);
    let mut next_fault = start + Duration::from_millis(200);
    let give_up = stop + Duration::from_secs(90);
    loop {
        d.settle();
        let now = d.sim.now();
        if d.tasks.all_done() && d.quiet() || now > give_up {
            break;
        }
        if now < faults_until && now >= next_fault {
            let f = d.sim.random_fault();
            d.sim.fault(f);
            next_fault = now + Duration::from_millis(100 + rng.next(600));
        }
        for _ in 0..=rng.next(4) {
            d.advance();
        }
    }
    assert!(
        d.tasks.all_done() && d.quiet(),
        "seed {seed}: the watchers never finished\n{}",
        d.sim.render_history()
    );
    // The removals of the last watches are on their way: let them land.
    let settled = d.sim.now() + Duration::from_secs(10);
    while d.sim.now() < settled {
        d.settle();
        d.advance();
    }
    let report = || d.sim.render_history();
    // The writes the server applied, by zxid: their versions.
    let writes: BTreeMap<i64, i32> = d
        .sim
        .server_history()
        .iter()
        .filter_map(|t| match &t.op {
            TxnOp::SetData { path, version } if path == WATCHED => Some((t.zxid, *version)),
            TxnOp::Create { path, .. } if path == WATCHED => Some((t.zxid, 0)),
            _ => None,
        })
        .collect();
    let (&final_zxid, _) = writes.last_key_value().expect("the node was written");
    let mut values = 0;
    for (i, s) in seen.iter().enumerate() {
        let s = s.lock().unwrap();
        for (w, watch) in s.iter().enumerate() {
            values += watch.len();
            for (value, zxid, version) in watch {
                assert_eq!(
                    writes.get(zxid),
                    Some(version),
                    "seed {seed}: watcher {i} saw {value:?} at zxid {zxid:#x}, version \
                     {version}, which no write made\n{}",
                    report()
                );
            }
            // Never an older state after a newer one.
            assert!(
                watch.windows(2).all(|p| p[0].1 <= p[1].1),
                "seed {seed}: watcher {i}'s watch {w} went back in time: {watch:?}\n{}",
                report()
            );
        }
        // The last watch, opened after the writes, ends on the last write.
        let last = s.last().and_then(|w| w.last());
        assert_eq!(
            last.map(|l| l.1),
            Some(final_zxid),
            "seed {seed}: watcher {i} ended on {last:?}, not the last write\n{}",
            report()
        );
    }
    // Every watch was dropped: the server holds none of them any more.
    assert_eq!(
        d.sim.ensemble().watch_count(),
        0,
        "seed {seed}: watches left on the server\n{}",
        report()
    );
    let faults = sim_support::faults(&d.sim);
    (values, faults)
}

#[test]
fn data_watches_follow_the_server_in_order_and_leave_no_watch_behind() {
    let seeds = sim_support::seeds("ZK_HANDLES_SIM_SEEDS", 100);
    let (mut values, mut faults) = (0, 0);
    for seed in 1..=seeds {
        let (v, f) = check_watches(seed);
        values += v;
        faults += f;
    }
    eprintln!("{seeds} schedules: {values} values seen, {faults} faults");
    assert!(values >= seeds as usize * 30, "{values}");
    assert!(faults >= seeds as usize * 10, "{faults}");
}

/// [`guards_hold_under_faults_and_dropped_calls_through_the_driver_core`] on a 3-server ensemble whose followers lag.
#[test]
fn guards_hold_under_faults_and_dropped_calls_through_the_driver_core_with_lagging_followers() {
    sim_support::with_lagging_followers(
        guards_hold_under_faults_and_dropped_calls_through_the_driver_core,
    );
}

/// [`data_watches_follow_the_server_in_order_and_leave_no_watch_behind`] on a 3-server ensemble whose followers lag.
#[test]
fn data_watches_follow_the_server_in_order_and_leave_no_watch_behind_with_lagging_followers() {
    sim_support::with_lagging_followers(
        data_watches_follow_the_server_in_order_and_leave_no_watch_behind,
    );
}
