//! Protected creates and guaranteed deletes on zk-sim, as the clients ship them (the calls
//! over a driver core per client), judged on the server's history. Each seeded schedule has
//! three clients that create sequential nodes in protected mode, drop some of those calls
//! at random await points, and delete what they made with guaranteed deletes, some of which
//! they stop waiting for, while the simulation loses replies, cuts and black-holes links,
//! isolates clients, expires sessions and stalls servers.
//!
//! - No call ever creates two nodes: every create the server applied for one call's
//!   protected name is the only one.
//! - A create that returned a path returned the node the server made for that call.
//! - Once everything settled, the nodes left are exactly those handed to callers and not
//!   deleted: a dropped create leaves nothing, and every guaranteed delete, waited for or
//!   not, was carried out.
//!
//! `ZK_PROTECTED_SIM_SEEDS` sets how many schedules run.

#[path = "sim_driver/mod.rs"]
mod sim_driver;
#[path = "sim_support/mod.rs"]
mod sim_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zk_client::CreateOptions;
use zk_proto::records::Request;
use zk_sim::TxnOp;
use zk_sim::harness::{Happened, Simulation};

use sim_driver::SimDriver;

const DIR: &str = "/protected";

#[derive(Debug, Default)]
struct Ledger {
    /// Paths the creates returned.
    returned: BTreeSet<String>,
    /// Paths handed to guaranteed deletes.
    deleted: BTreeSet<String>,
    dropped_creates: usize,
    dropped_deletes: usize,
}

fn worker(d: &mut SimDriver, seed: u64, i: usize, stop: Instant, ledger: Arc<Mutex<Ledger>>) {
    let (_, client) = d.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let mut rng = sim_support::Rng::new(seed, i);
    d.tasks.spawn(async move {
        let mut mine: Vec<String> = Vec::new();
        while client.now() < stop {
            let options = if rng.next(2) == 0 {
                CreateOptions::persistent_sequential()
            } else {
                CreateOptions::persistent_sequential().with_parents()
            };
            let create = client.create_protected(&format!("{DIR}/w{i}-"), "", &options);
            if rng.next(4) == 0 {
                let at = client.now() + Duration::from_millis(rng.next(600));
                match client.until(at, create).await {
                    Some(Ok(path)) => mine.push(path),
                    Some(Err(_)) => {}
                    None => ledger.lock().unwrap().dropped_creates += 1,
                }
            } else if let Ok(path) = create.await {
                mine.push(path);
            }
            if let Some(path) = mine.last() {
                ledger.lock().unwrap().returned.insert(path.clone());
            }
            // Now and then, delete one of ours, guaranteed, waiting for it or not.
            if !mine.is_empty() && rng.next(3) == 0 {
                let path = mine.swap_remove(rng.next(mine.len() as u64) as usize);
                ledger.lock().unwrap().deleted.insert(path.clone());
                let delete = client.delete_guaranteed(&path, None);
                if rng.next(3) == 0 {
                    let at = client.now() + Duration::from_millis(rng.next(300));
                    if client.until(at, delete).await.is_none() {
                        ledger.lock().unwrap().dropped_deletes += 1;
                    }
                } else {
                    let _ = delete.await;
                }
            }
            client
                .sleep_until(client.now() + Duration::from_millis(rng.next(300)))
                .await;
        }
    });
}

#[derive(Debug, Default)]
struct Stats {
    returned: usize,
    deleted: usize,
    dropped_creates: usize,
    dropped_deletes: usize,
    lost_replies: usize,
    faults: usize,
}

sim_support::tally!(Stats: returned, deleted, dropped_creates, dropped_deletes, lost_replies, faults);

fn check(seed: u64) -> Stats {
    let start = Instant::now();
    let mut d = SimDriver::new(Simulation::new(sim_support::model(seed), start));
    let faults_until = start + Duration::from_secs(20);
    let stop = faults_until + Duration::from_secs(3);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for i in 0..3 {
        worker(&mut d, seed, i, stop, ledger.clone());
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

    // Each call's protected name, as submitted, and the nodes the server made for it.
    let asked: BTreeSet<String> = d
        .sim
        .history()
        .iter()
        .filter_map(|r| match &r.what {
            Happened::Submit {
                request: Request::Create(c) | Request::Create2(c),
                ..
            } if c.path.starts_with(&format!("{DIR}/_c_")) => Some(c.path.clone()),
            _ => None,
        })
        .collect();
    let mut made: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut alive = BTreeSet::new();
    for t in d.sim.server_history() {
        let ops: Vec<&TxnOp> = match &t.op {
            TxnOp::Multi(ops) => ops.iter().collect(),
            op => vec![op],
        };
        for op in ops {
            match op {
                TxnOp::Create { path, .. } if path.starts_with(&format!("{DIR}/")) => {
                    let call = asked
                        .iter()
                        .find(|a| path.len() == a.len() + 10 && path.starts_with(a.as_str()));
                    let Some(call) = call else {
                        panic!(
                            "seed {seed}: {path} made by no protected create\n{}",
                            report()
                        );
                    };
                    made.entry(call).or_default().push(path.clone());
                    alive.insert(path.clone());
                }
                TxnOp::Delete { path } => {
                    alive.remove(path);
                }
                _ => {}
            }
        }
    }
    for (call, nodes) in &made {
        assert_eq!(
            nodes.len(),
            1,
            "seed {seed}: the create of {call} made {nodes:?}\n{}",
            report()
        );
    }
    let ledger = ledger.lock().unwrap();
    for path in &ledger.returned {
        assert!(
            made.values().any(|n| n.contains(path)),
            "seed {seed}: {path} was returned but never made\n{}",
            report()
        );
    }
    let kept: BTreeSet<String> = ledger
        .returned
        .difference(&ledger.deleted)
        .cloned()
        .collect();
    assert_eq!(
        alive,
        kept,
        "seed {seed}: the nodes left are not those the callers kept\n{}",
        report()
    );
    Stats {
        returned: ledger.returned.len(),
        deleted: ledger.deleted.len(),
        dropped_creates: ledger.dropped_creates,
        dropped_deletes: ledger.dropped_deletes,
        lost_replies: sim_support::lost_replies(&d.sim),
        faults: sim_support::faults(&d.sim),
    }
}

#[test]
fn protected_creates_make_one_node_and_guaranteed_deletes_leave_none() {
    let (seeds, total) = sim_support::campaign("PROTECTED", 1000, check);
    assert!(total.returned >= seeds as usize * 10, "{total:?}");
    assert!(total.dropped_creates >= seeds as usize, "{total:?}");
    assert!(total.dropped_deletes > 0, "{total:?}");
    assert!(total.lost_replies >= seeds as usize, "{total:?}");
}

/// The same on a 3-server ensemble whose followers lag.
#[test]
fn protected_creates_make_one_node_and_guaranteed_deletes_leave_none_with_lagging_followers() {
    sim_support::with_lagging_followers(
        protected_creates_make_one_node_and_guaranteed_deletes_leave_none,
    );
}
