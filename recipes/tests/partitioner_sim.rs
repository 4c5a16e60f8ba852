//! The set partitioner on zk-sim, as the clients ship it (`SetPartitioner` handles over a
//! driver core per client): three members split eight items, working on their share,
//! letting go when asked (after finishing the work in hand) and starting over after a
//! failure, while the simulation loses replies, cuts, black-holes and isolates links and
//! stalls and restarts servers. Judged on the server's history:
//!
//! - while a member works on an item (from `Acquired` until it calls `release_set` or
//!   hears `Failure`), the item's lock is held by that member's node: the first node in
//!   the item's lock directory is one that member asked for, at the start and at every
//!   change meanwhile, so no item is worked on by two members at once in server time;
//! - once the faults stop, the three settle on Kazoo's split of the items among them (what
//!   each holds last, 30 s after the last fault);
//! - after they finish, no party or lock node is left and no machine is still hosted.
//!
//! `ZK_PARTITIONER_SIM_SEEDS` sets how many schedules run.

#[path = "sim_driver/mod.rs"]
mod sim_driver;
#[path = "sim_support/mod.rs"]
mod sim_support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zk_proto::records::Request;
use zk_recipes::partitioner::{State, partition_of};
use zk_sim::TxnOp;
use zk_sim::harness::{ClientId, Fault, Happened, Simulation};

use sim_driver::{SetPartitioner, SimDriver};

const PATH: &str = "/partition";
const ITEMS: [&str; 8] = ["i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7"];

/// A member working on items: member, items, from, until.
type Work = (usize, Vec<String>, Instant, Instant);

#[derive(Debug, Default)]
struct Member {
    work: Vec<Work>,
    /// What it held last, before finishing (`None` unless it held its items then).
    settled: Option<Vec<String>>,
    restarts: usize,
}

fn member(d: &mut SimDriver, seed: u64, i: usize, stop: Instant, me: Arc<Mutex<Member>>) {
    let (_, client) = d.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let mut rng = sim_support::Rng::new(seed, i);
    // Members stay (and come back after a failure) until well after the check.
    let end = stop + Duration::from_secs(25);
    d.tasks.spawn(async move {
        while client.now() < end {
            let Ok(p) = SetPartitioner::start(
                &client,
                PATH,
                &ITEMS,
                &format!("m{i}"),
                Duration::from_millis(500),
            ) else {
                client
                    .sleep_until(client.now() + Duration::from_millis(100))
                    .await;
                continue;
            };
            let mut working: Option<(Vec<String>, Instant)> = None;
            loop {
                let state = p.state();
                let now = client.now();
                // What it holds last, before it finishes.
                me.lock().unwrap().settled = match &state {
                    State::Acquired(items) => Some(items.clone()),
                    _ => None,
                };
                match &state {
                    State::Acquired(items) if working.is_none() => {
                        working = Some((items.clone(), now));
                    }
                    State::Release => {
                        // Finish the work in hand, then let go.
                        client
                            .sleep_until(now + Duration::from_millis(rng.next(300)))
                            .await;
                        if let Some((items, from)) = working.take() {
                            me.lock().unwrap().work.push((i, items, from, client.now()));
                        }
                        p.release_set();
                    }
                    State::Failure => break,
                    _ => {}
                }
                if client.now() >= end {
                    break;
                }
                let wait = client.now() + Duration::from_millis(500);
                let _ = client.until(wait, p.changed(&state)).await;
            }
            if let Some((items, from)) = working.take() {
                me.lock().unwrap().work.push((i, items, from, client.now()));
            }
            let failed = p.state() == State::Failure;
            let _ = p.finish().await;
            if failed {
                me.lock().unwrap().restarts += 1;
                continue;
            }
            break;
        }
    });
}

#[derive(Debug, Default)]
struct Stats {
    work: usize,
    restarts: usize,
    faults: usize,
}

sim_support::tally!(Stats: work, restarts, faults);

fn check(seed: u64) -> Stats {
    let start = Instant::now();
    let mut d = SimDriver::new(Simulation::new(sim_support::model(seed), start));
    let faults_until = start + Duration::from_secs(20);
    let stop = faults_until + Duration::from_secs(5);
    let members: Vec<Arc<Mutex<Member>>> = (0..3).map(|_| Arc::default()).collect();
    for (i, m) in members.iter().enumerate() {
        member(&mut d, seed, i, stop, m.clone());
    }
    let mut rng = sim_support::Rng::new(seed, 99);
    let fault = |d: &mut SimDriver, rng: &mut sim_support::Rng| {
        if rng.next(5) == 0 {
            let c = ClientId(rng.next(3) as usize);
            let back = Duration::from_millis(1000 + rng.next(5000));
            d.sim.fault_after(back, Fault::Rejoin(c));
            d.sim.fault(Fault::Isolate(c));
        } else {
            SimDriver::random_fault(d, rng);
        }
    };
    let span = sim_driver::Span {
        faults_until,
        give_up: stop + Duration::from_secs(120),
        spread: 500,
    };
    d.drive(seed, &mut rng, span, fault, |_, _| {});

    // Who asked for each lock node (its create's path, without the sequence number).
    let askers: BTreeMap<String, usize> = d
        .sim
        .history()
        .iter()
        .filter_map(|r| match &r.what {
            Happened::Submit {
                client,
                request: Request::Create(c) | Request::Create2(c),
                ..
            } => Some((c.path.clone(), client.0)),
            _ => None,
        })
        .collect();
    let asker = |node: &str| askers.get(&node[..node.len().saturating_sub(10)]).copied();
    // Each item's lock directory through time: (time, first node) after every change.
    let mut firsts: BTreeMap<&str, Vec<(Instant, Option<String>)>> = BTreeMap::new();
    for item in ITEMS {
        let dir = format!("{PATH}/locks/{item}/");
        let mut alive: Vec<String> = Vec::new();
        let mut line = vec![(start, None)];
        for t in d.sim.server_history() {
            let ops: Vec<&TxnOp> = match &t.op {
                TxnOp::Multi(ops) => ops.iter().collect(),
                op => vec![op],
            };
            let mut changed = false;
            for op in ops {
                match op {
                    TxnOp::Create { path, .. } if path.starts_with(&dir) => {
                        alive.push(path.clone());
                        changed = true;
                    }
                    TxnOp::Delete { path } => {
                        let before = alive.len();
                        alive.retain(|p| p != path);
                        changed |= alive.len() != before;
                    }
                    TxnOp::CloseSession { deleted, .. } => {
                        let before = alive.len();
                        alive.retain(|p| !deleted.contains(p));
                        changed |= alive.len() != before;
                    }
                    _ => {}
                }
            }
            if changed {
                let first = alive
                    .iter()
                    .min_by_key(|p| zk_recipes::lock::order_of(p))
                    .cloned();
                line.push((t.time, first));
            }
        }
        firsts.insert(item, line);
    }
    let report = || d.sim.render_history();
    let mut work = 0;
    for m in &members {
        for (who, items, from, until) in &m.lock().unwrap().work {
            work += 1;
            for item in items {
                let line = &firsts[item.as_str()];
                // The holder at `from`, and at every change until `until`.
                let at_from = line.iter().rev().find(|(t, _)| t <= from);
                let during = line.iter().filter(|(t, _)| t > from && t < until);
                for (t, first) in at_from.into_iter().chain(during) {
                    let holder = first.as_deref().and_then(asker);
                    assert_eq!(
                        holder,
                        Some(*who),
                        "seed {seed}: member {who} worked on {item} from {from:?} until \
                         {until:?}, but at {t:?} its lock's first node was {first:?}\n{}",
                        report()
                    );
                }
            }
        }
    }
    // Settled on Kazoo's split among the three.
    let ids: Vec<String> = (0..3).map(|i| format!("m{i}")).collect();
    let items: Vec<String> = ITEMS.iter().map(|s| s.to_string()).collect();
    for (i, m) in members.iter().enumerate() {
        let want = partition_of(&ids[i], &ids, &items);
        assert_eq!(
            m.lock().unwrap().settled.as_ref(),
            Some(&want),
            "seed {seed}: member {i} did not settle on its share\n{}",
            report()
        );
    }
    let probe = d.sim.add_client(|c| c);
    let left = sim_support::children(&mut d.sim, probe, &format!("{PATH}/party"));
    assert!(left.is_empty(), "seed {seed}: party nodes left: {left:?}");
    for item in ITEMS {
        let left = sim_support::children(&mut d.sim, probe, &format!("{PATH}/locks/{item}"));
        assert!(
            left.is_empty(),
            "seed {seed}: lock nodes of {item} left: {left:?}"
        );
    }
    Stats {
        work,
        restarts: members.iter().map(|m| m.lock().unwrap().restarts).sum(),
        faults: sim_support::faults(&d.sim),
    }
}

#[test]
fn no_item_is_worked_on_twice_and_the_members_settle_on_kazoos_split() {
    let (seeds, total) = sim_support::campaign("PARTITIONER", 1000, check);
    assert!(total.work >= seeds as usize * 3, "{total:?}");
}

/// The same on a 3-server ensemble whose followers lag.
#[test]
fn no_item_is_worked_on_twice_with_lagging_followers() {
    sim_support::with_lagging_followers(
        no_item_is_worked_on_twice_and_the_members_settle_on_kazoos_split,
    );
}
