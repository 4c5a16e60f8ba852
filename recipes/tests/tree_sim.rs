//! The tree cache machine on zk-sim: a writer creates, changes and deletes nodes of a
//! subtree while the mirror's client loses replies, is reset, silenced and expired, and
//! servers stall. Judged on the server:
//!
//! - every version of a node the mirror ever showed existed on the server (it was created
//!   or written with that version);
//! - once faults and writes stop, the mirror converges to the server's tree, node for
//!   node (data and version).
//!
//! `ZK_TREE_SIM_SEEDS=400 cargo test -p zk-recipes --test tree_sim` runs more.

#[path = "sim_support/mod.rs"]
mod sim_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::consts::CreateMode;
use zk_proto::records::*;
use zk_recipes::Driven;
use zk_recipes::tree::{Outcome, TreeCache};
use zk_sim::TxnOp;
use zk_sim::harness::{ClientId, Fault, Simulation};

const ROOT: &str = "/t";

/// The subtree on the server: path to (data, version).
fn server_tree(sim: &mut Simulation, probe: ClientId) -> BTreeMap<String, (Bytes, i32)> {
    sim_support::sync(sim, probe, ROOT);
    let mut out = BTreeMap::new();
    let mut todo = vec![ROOT.to_string()];
    while let Some(path) = todo.pop() {
        let read = call(
            sim,
            probe,
            Request::GetData(GetDataRequest {
                path: path.clone(),
                watch: false,
            }),
        );
        let Some(Response::GetData(r)) = read else {
            continue;
        };
        out.insert(path.clone(), (r.data, r.stat.version));
        let listed = call(
            sim,
            probe,
            Request::GetChildren(GetChildrenRequest {
                path: path.clone(),
                watch: false,
            }),
        );
        if let Some(Response::GetChildren(r)) = listed {
            todo.extend(r.children.iter().map(|c| format!("{path}/{c}")));
        }
    }
    out
}

/// A probe's call, asked again after connection trouble; `None` for NoNode.
fn call(sim: &mut Simulation, probe: ClientId, request: Request) -> Option<Response> {
    for _ in 0..10 {
        match sim.call(probe, request.clone(), Duration::from_secs(30)) {
            Some(Ok(r)) => return Some(r),
            Some(Err(zk_proto::session::Error::Server(zk_proto::ErrorCode::NoNode))) => {
                return None;
            }
            _ => {}
        }
    }
    panic!("the probe's {request:?} never succeeded")
}

fn check(seed: u64) -> (usize, usize) {
    let start = Instant::now();
    let mut sim = Simulation::new(sim_support::model(seed), start);
    let probe = sim.add_client(|c| c);
    let made = call(
        &mut sim,
        probe,
        Request::Create(CreateRequest {
            path: ROOT.into(),
            data: Bytes::from_static(b"root"),
            acl: Acl::open_unsafe(),
            flags: CreateMode::Persistent.as_i32(),
        }),
    );
    assert!(made.is_some());
    let writer = sim.add_client(|c| c);
    let reader = sim.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let mut cache = Driven::new(TreeCache::new(ROOT));
    let mut started = false;
    let mut rng = sim_support::Rng::new(seed, 0);
    let mut fault_rng = sim_support::Rng::new(seed, 99);
    // The writer's idea of the tree (it may be wrong after failed writes: harmless).
    let mut known: Vec<String> = vec![ROOT.to_string()];
    let mut shown: BTreeSet<(String, i32)> = BTreeSet::new();
    let faults_until = start + Duration::from_secs(8);
    let writes_until = start + Duration::from_secs(9);
    let deadline = start + Duration::from_secs(90);
    let mut next_fault = start + Duration::from_millis(50);
    let mut next_write = start + Duration::from_millis(20);
    let mut next_compare = writes_until + Duration::from_secs(2);
    let mut updates = 0;
    loop {
        let now = sim.now();
        assert!(
            now < deadline,
            "seed {seed}: the mirror never converged:\nmirror {:?}\n",
            cache.machine().mirror().keys().collect::<Vec<_>>()
        );
        if now >= next_fault && now < faults_until {
            let fault = match fault_rng.next(8) {
                0..=2 => Fault::LoseNextReply(reader),
                3 => Fault::Reset(reader),
                4 => Fault::ExpireSession(reader),
                _ => sim.random_fault(),
            };
            sim.fault(fault);
            next_fault = now + Duration::from_millis(30 + fault_rng.next(150));
        }
        if now >= next_write && now < writes_until {
            next_write = now + Duration::from_millis(5 + rng.next(30));
            let pick = known[rng.next(known.len() as u64) as usize].clone();
            let request = match rng.next(4) {
                0 | 1 if known.len() < 40 => {
                    let path = format!("{pick}/n{}", rng.next(1000));
                    known.push(path.clone());
                    Request::Create(CreateRequest {
                        path,
                        data: Bytes::from(format!("c{}", rng.next(100))),
                        acl: Acl::open_unsafe(),
                        flags: CreateMode::Persistent.as_i32(),
                    })
                }
                2 => Request::SetData(SetDataRequest {
                    path: pick,
                    data: Bytes::from(format!("s{}", rng.next(100))),
                    version: -1,
                }),
                _ if pick != ROOT => {
                    known.retain(|p| *p != pick);
                    Request::Delete(DeleteRequest {
                        path: pick,
                        version: -1,
                    })
                }
                _ => Request::Sync(SyncRequest { path: ROOT.into() }),
            };
            let _ = sim.submit(writer, request);
        }
        while sim.poll_event(writer).is_some() {}
        let session = sim.session(reader).session_id();
        if !started && sim.session(reader).state().is_connected() {
            cache.machine_mut().start(now, session);
            started = true;
        }
        while let Some(event) = sim.poll_event(reader) {
            let _ = cache.handle_event(now, event, session);
        }
        let mut outcomes = Vec::new();
        cache.flush(now, |r| sim.submit(reader, r), |o| outcomes.push(o));
        for o in outcomes {
            match o {
                Outcome::Added(path, _, stat) | Outcome::Updated(path, _, stat) => {
                    updates += 1;
                    shown.insert((path, stat.version));
                }
                Outcome::Failed(e) => panic!("seed {seed}: the mirror failed: {e}"),
                _ => {}
            }
        }
        if now >= next_compare {
            next_compare = now + Duration::from_secs(1);
            let on_server = server_tree(&mut sim, probe);
            let mirror: BTreeMap<String, (Bytes, i32)> = cache
                .machine()
                .mirror()
                .iter()
                .map(|(p, (d, s))| (p.clone(), (d.clone(), s.version)))
                .collect();
            if mirror == on_server {
                break;
            }
        }
        if !sim.step() {
            sim.run_for(Duration::from_millis(1));
        }
    }
    // Every version shown existed on the server.
    let mut existed: BTreeSet<(String, i32)> = BTreeSet::new();
    let mut note = |op: &TxnOp| match op {
        TxnOp::Create { path, .. } => {
            existed.insert((path.clone(), 0));
        }
        TxnOp::SetData { path, version } => {
            existed.insert((path.clone(), *version));
        }
        _ => {}
    };
    for txn in sim.server_history() {
        match &txn.op {
            TxnOp::Multi(ops) => ops.iter().for_each(&mut note),
            op => note(op),
        }
    }
    for (path, version) in &shown {
        assert!(
            existed.contains(&(path.clone(), *version)),
            "seed {seed}: the mirror showed {path} at version {version}, which never existed"
        );
    }
    let lost = sim_support::lost_replies(&sim);
    (updates, lost)
}

#[test]
fn the_mirror_shows_only_real_versions_and_converges_after_faults() {
    let seeds: u64 = sim_support::seeds("ZK_TREE_SIM_SEEDS", 12);
    let (mut updates, mut lost) = (0, 0);
    for seed in 1..=seeds {
        let (u, l) = check(seed);
        updates += u;
        lost += l;
    }
    eprintln!("{seeds} schedules: {updates} changes mirrored, {lost} lost replies");
    assert!(lost >= seeds as usize * 5, "too few lost replies");
}

/// [`the_mirror_shows_only_real_versions_and_converges_after_faults`] on a 3-server ensemble whose followers lag.
#[test]
fn the_mirror_shows_only_real_versions_and_converges_after_faults_with_lagging_followers() {
    sim_support::with_lagging_followers(
        the_mirror_shows_only_real_versions_and_converges_after_faults,
    );
}
