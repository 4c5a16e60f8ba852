//! The patient children watch on zk-sim, as the clients ship it (`PatientChildrenWatch`
//! handles over a driver core per client). A writer changes a directory's children in
//! bursts (several creates and deletes 50-200 ms apart, then seconds of quiet) while two
//! watchers follow it with a 500 ms quiet period, and the simulation injects faults.
//! Judged on the server's history:
//!
//! - every listing a watcher reports is one the directory really had (a state between two
//!   of its transactions), never a mix of two;
//! - no listing is reported twice in a row, and a burst's steps are not reported one by
//!   one: two watchers together report fewer listings than the directory had states (a
//!   fault that stalls the writer mid-burst for longer than the quiet period does make
//!   its half-done state stable, and reported);
//! - once the writes stop, every watcher's last report is the directory's last state.
//!
//! `ZK_PATIENT_SIM_SEEDS` sets how many schedules run.

#[path = "sim_driver/mod.rs"]
mod sim_driver;
#[path = "sim_support/mod.rs"]
mod sim_support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_client::CreateOptions;
use zk_proto::records::Acl;
use zk_sim::TxnOp;
use zk_sim::harness::Simulation;

use sim_driver::{Node, PatientChildrenWatch, SimDriver};

const DIR: &str = "/patient";
const QUIET: Duration = Duration::from_millis(500);

/// What a watcher reported: each listing, `None` for an absent directory.
type Reports = Arc<Mutex<Vec<Option<Vec<String>>>>>;

fn writer(d: &mut SimDriver, seed: u64, stop: Instant, gaps: Arc<Mutex<usize>>) {
    let (_, client) = d.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let mut rng = sim_support::Rng::new(seed, 50);
    d.tasks.spawn(async move {
        let dir = zk_client::op::create(
            DIR,
            Bytes::new(),
            &CreateOptions::persistent(),
            &Acl::open_unsafe(),
        );
        while !matches!(
            client.call(dir.request().clone()).await,
            Ok(Ok(_))
                | Ok(Err(zk_proto::session::Error::Server(
                    zk_proto::ErrorCode::NodeExists
                )))
        ) {
            client
                .sleep_until(client.now() + Duration::from_millis(50))
                .await;
        }
        let mut n = 0;
        let mut alive: Vec<String> = Vec::new();
        while client.now() < stop {
            for _ in 0..3 + rng.next(4) {
                if alive.is_empty() || rng.next(3) > 0 {
                    n += 1;
                    let path = format!("{DIR}/c{n}");
                    let create = zk_client::op::create(
                        &path,
                        Bytes::new(),
                        &CreateOptions::persistent(),
                        &Acl::open_unsafe(),
                    );
                    let _ = client.call(create.request().clone()).await;
                    alive.push(path);
                } else {
                    let path = alive.swap_remove(rng.next(alive.len() as u64) as usize);
                    let _ = client
                        .call(zk_client::op::delete(&path, None).request().clone())
                        .await;
                }
                client
                    .sleep_until(client.now() + Duration::from_millis(50 + rng.next(150)))
                    .await;
            }
            *gaps.lock().unwrap() += 1;
            client
                .sleep_until(client.now() + Duration::from_millis(1500 + rng.next(2500)))
                .await;
        }
    });
}

fn watcher(d: &mut SimDriver, i: usize, until: Instant, reports: Reports) {
    let (_, client) = d.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    d.tasks.spawn(async move {
        let watch = PatientChildrenWatch::new(&client, DIR, QUIET);
        while client.now() < until {
            match client.until(until, watch.next()).await {
                Some(Ok(Node::Present(children, _))) => {
                    let mut c = children;
                    c.sort();
                    reports.lock().unwrap().push(Some(c));
                }
                Some(Ok(Node::Absent)) => reports.lock().unwrap().push(None),
                Some(Err(e)) => panic!("watcher {i}: {e}"),
                None => break,
            }
        }
    });
}

fn check(seed: u64) -> (usize, usize) {
    let start = Instant::now();
    let mut d = SimDriver::new(Simulation::new(sim_support::model(seed), start));
    let faults_until = start + Duration::from_secs(20);
    let stop = faults_until + Duration::from_secs(3);
    let until = stop + Duration::from_secs(25);
    let gaps = Arc::new(Mutex::new(0));
    writer(&mut d, seed, stop, gaps.clone());
    let reports: Vec<Reports> = (0..2).map(|_| Arc::default()).collect();
    for (i, r) in reports.iter().enumerate() {
        watcher(&mut d, i, until, r.clone());
    }
    let mut rng = sim_support::Rng::new(seed, 99);
    let give_up = until + Duration::from_secs(60);
    d.drive(
        seed,
        &mut rng,
        sim_driver::Span {
            faults_until,
            give_up,
            spread: 1400,
        },
        SimDriver::random_fault,
        |_, _| {},
    );
    let report = || d.sim.render_history();
    // Every state the directory's children took, in order.
    let prefix = format!("{DIR}/");
    let mut now: Option<BTreeSet<String>> = None;
    let mut states: Vec<Option<Vec<String>>> = vec![None];
    for t in d.sim.server_history() {
        let before = now.clone();
        let ops: Vec<&TxnOp> = match &t.op {
            TxnOp::Multi(ops) => ops.iter().collect(),
            op => vec![op],
        };
        for op in ops {
            match op {
                TxnOp::Create { path, .. } if path == DIR => now = Some(BTreeSet::new()),
                TxnOp::Create { path, .. } if path.starts_with(&prefix) => {
                    if let Some(n) = now.as_mut() {
                        n.insert(path[prefix.len()..].to_string());
                    }
                }
                TxnOp::Delete { path } if path.starts_with(&prefix) => {
                    if let Some(n) = now.as_mut() {
                        n.remove(&path[prefix.len()..]);
                    }
                }
                _ => {}
            }
        }
        if now != before {
            states.push(now.as_ref().map(|n| n.iter().cloned().collect()));
        }
    }
    let last: Option<Vec<String>> = states.last().cloned().unwrap_or(None);
    let gaps = *gaps.lock().unwrap();
    let mut total = 0;
    for (i, r) in reports.iter().enumerate() {
        let r = r.lock().unwrap();
        total += r.len();
        for listing in r.iter() {
            assert!(
                states.contains(listing),
                "seed {seed}: watcher {i} reported {listing:?}, which the directory never \
                 held\n{}",
                report()
            );
        }
        assert!(
            r.windows(2).all(|w| w[0] != w[1]),
            "seed {seed}: watcher {i} reported a listing twice in a row: {r:?}"
        );
        // Never more reports than states (a burst's steps are not each reported).
        assert!(
            r.len() <= states.len(),
            "seed {seed}: watcher {i} reported {} times for {} states: {r:?}",
            r.len(),
            states.len()
        );
        assert_eq!(
            r.last(),
            Some(&last),
            "seed {seed}: watcher {i} did not end on the last state\n{}",
            report()
        );
    }
    let _ = gaps;
    (total, states.len())
}

#[test]
fn a_patient_watch_reports_each_burst_once_and_only_real_listings() {
    let seeds = sim_support::seeds("ZK_PATIENT_SIM_SEEDS", 1000);
    let first = sim_support::seeds("ZK_PATIENT_SIM_FIRST", 1);
    let (mut reports, mut states) = (0, 0);
    for seed in first..first + seeds {
        let (r, s) = check(seed);
        reports += r;
        states += s;
    }
    eprintln!("{seeds} schedules: {reports} reports by two watchers of {states} states");
    assert!(reports >= seeds as usize * 4, "{reports}");
    // Patience: the steps of a burst are mostly not reported one by one.
    assert!(reports < states, "{reports} reports of {states} states");
}

/// The same on a 3-server ensemble whose followers lag.
#[test]
fn a_patient_watch_reports_each_burst_once_with_lagging_followers() {
    sim_support::with_lagging_followers(
        a_patient_watch_reports_each_burst_once_and_only_real_listings,
    );
}
