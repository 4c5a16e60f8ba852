//! Shared counts on zk-sim, as the clients ship them (`SharedCount` handles over a driver
//! core per client). Each seeded schedule has three clients adding 1 with `try_set` on the
//! version they read (waiting for the watch after a conflict), dropping some calls at
//! random await points, while the simulation loses replies, cuts and black-holes links,
//! expires sessions and stalls servers. Judged on the server's history and what the
//! watches saw:
//!
//! - the count never loses or doubles an addition: every value any watch reported equals
//!   its version (the seed is 0 at version 0, and each write adds 1 over the version it
//!   read), and the final value is the number of writes the server applied;
//! - each watch's versions only grow;
//! - the writes applied are at least those reported written, and at most those plus the
//!   ones left in doubt.
//!
//! `ZK_SHARED_SIM_SEEDS` sets how many schedules run.

#[path = "sim_driver/mod.rs"]
mod sim_driver;
#[path = "sim_support/mod.rs"]
mod sim_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zk_sim::TxnOp;
use zk_sim::harness::{Happened, Simulation};

use sim_driver::{SharedCount, SimDriver};

const PATH: &str = "/shared/count";

#[derive(Debug, Default)]
struct Ledger {
    written: usize,
    in_doubt: usize,
    conflicts: usize,
    /// Every (value, version) a client saw, per client, in order.
    seen: Vec<Vec<(i32, i32)>>,
}

fn writer(d: &mut SimDriver, seed: u64, i: usize, stop: Instant, ledger: Arc<Mutex<Ledger>>) {
    let (_, client) = d.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let mut rng = sim_support::Rng::new(seed, i);
    d.tasks.spawn(async move {
        let count = loop {
            match SharedCount::start(&client, PATH, 0).await {
                Ok(c) => break c,
                Err(_) => {
                    client
                        .sleep_until(client.now() + Duration::from_millis(100))
                        .await
                }
            }
        };
        let record = |v: &zk_recipes::handles::Versioned<i32>| {
            ledger.lock().unwrap().seen[i].push((v.value, v.version));
        };
        while client.now() < stop {
            let Ok(mut seen) = count.get().await else {
                client
                    .sleep_until(client.now() + Duration::from_millis(100))
                    .await;
                continue;
            };
            record(&seen);
            loop {
                let attempt = count.try_set(&seen, seen.value + 1);
                let result = if rng.next(6) == 0 {
                    let at = client.now() + Duration::from_millis(rng.next(300));
                    client.until(at, attempt).await
                } else {
                    Some(attempt.await)
                };
                match result {
                    Some(Ok(true)) => {
                        ledger.lock().unwrap().written += 1;
                        break;
                    }
                    Some(Ok(false)) => {
                        ledger.lock().unwrap().conflicts += 1;
                        let wait = client.now() + Duration::from_secs(5);
                        match client.until(wait, count.changed(&seen)).await {
                            Some(Ok(v)) => {
                                record(&v);
                                seen = v;
                            }
                            _ => break,
                        }
                    }
                    // A lost reply or a dropped call: the write may have landed.
                    _ => {
                        ledger.lock().unwrap().in_doubt += 1;
                        break;
                    }
                }
            }
            client
                .sleep_until(client.now() + Duration::from_millis(rng.next(200)))
                .await;
        }
        // Once the writes are over, the watch reaches the last value.
        let end = client.now() + Duration::from_secs(15);
        while client.now() < end {
            match client.until(end, count.get()).await {
                Some(Ok(v)) => {
                    record(&v);
                    client
                        .sleep_until(client.now() + Duration::from_millis(500))
                        .await;
                }
                _ => break,
            }
        }
    });
}

#[derive(Debug, Default)]
struct Stats {
    written: usize,
    in_doubt: usize,
    conflicts: usize,
    seen: usize,
    lost_replies: usize,
}

sim_support::tally!(Stats: written, in_doubt, conflicts, seen, lost_replies);

fn check(seed: u64) -> Stats {
    let start = Instant::now();
    let mut d = SimDriver::new(Simulation::new(sim_support::model(seed), start));
    let faults_until = start + Duration::from_secs(15);
    let stop = faults_until + Duration::from_secs(2);
    let ledger = Arc::new(Mutex::new(Ledger {
        seen: vec![Vec::new(); 3],
        ..Ledger::default()
    }));
    for i in 0..3 {
        writer(&mut d, seed, i, stop, ledger.clone());
    }
    let mut rng = sim_support::Rng::new(seed, 99);
    let give_up = stop + Duration::from_secs(90);
    d.drive(
        seed,
        &mut rng,
        sim_driver::Span {
            faults_until,
            give_up,
            spread: 400,
        },
        SimDriver::random_fault,
        |_, _| {},
    );
    let report = || d.sim.render_history();
    let applied = d
        .sim
        .server_history()
        .iter()
        .filter(|t| matches!(&t.op, TxnOp::SetData { path, .. } if path == PATH))
        .count();
    let ledger = ledger.lock().unwrap();
    for (i, seen) in ledger.seen.iter().enumerate() {
        for (value, version) in seen {
            assert_eq!(
                value,
                version,
                "seed {seed}: client {i} saw {value} at version {version}: an addition was \
                 lost or doubled\n{}",
                report()
            );
        }
        assert!(
            seen.windows(2).all(|w| w[0].1 <= w[1].1),
            "seed {seed}: client {i}'s watch went back: {seen:?}"
        );
        let last = seen.last().map(|s| s.0 as usize);
        assert_eq!(
            last,
            Some(applied),
            "seed {seed}: client {i} ended on {last:?}, not the {applied} writes applied\n{}",
            report()
        );
    }
    assert!(
        ledger.written <= applied && applied <= ledger.written + ledger.in_doubt,
        "seed {seed}: {applied} writes applied, {} reported and {} in doubt",
        ledger.written,
        ledger.in_doubt
    );
    Stats {
        written: ledger.written,
        in_doubt: ledger.in_doubt,
        conflicts: ledger.conflicts,
        seen: ledger.seen.iter().map(Vec::len).sum(),
        lost_replies: d
            .sim
            .history()
            .iter()
            .filter(|r| {
                matches!(
                    r.what,
                    Happened::Fault(zk_sim::harness::Fault::LoseNextReply(_))
                )
            })
            .count(),
    }
}

#[test]
fn a_shared_count_never_loses_or_doubles_an_addition() {
    let (seeds, total) = sim_support::campaign("SHARED", 1000, check);
    assert!(total.written >= seeds as usize * 20, "{total:?}");
    assert!(total.conflicts >= seeds as usize, "{total:?}");
    assert!(total.in_doubt > 0, "{total:?}");
}

/// The same on a 3-server ensemble whose followers lag.
#[test]
fn a_shared_count_never_loses_or_doubles_an_addition_with_lagging_followers() {
    sim_support::with_lagging_followers(a_shared_count_never_loses_or_doubles_an_addition);
}
