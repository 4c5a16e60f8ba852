//! The data watch machine on zk-sim: a writer creates, rewrites and deletes one node while
//! the watcher's client loses replies, is reset, silenced and expired, and servers stall.
//! Judged on the server:
//!
//! - every version the watch reports existed: the node was created or written with it;
//! - versions reported for one life of the node never go back;
//! - once faults and writes stop, the last value reported is the server's.
//!
//! And the children watch: children come and go under the same faults, the children
//! version reported never goes back, and the last list reported is the server's.
//!
//! `ZK_WATCH_SIM_SEEDS=400 cargo test -p zk-recipes --test watch_sim` runs more.

#[path = "sim_support/mod.rs"]
mod sim_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::consts::CreateMode;
use zk_proto::records::*;
use zk_recipes::Driven;
use zk_recipes::watch::{NodeWatch, Outcome, Target};
use zk_sim::TxnOp;
use zk_sim::harness::{Fault, Simulation};

const PATH: &str = "/w";

fn check(seed: u64) -> (usize, usize) {
    let start = Instant::now();
    let mut sim = Simulation::new(sim_support::model(seed), start);
    let writer = sim.add_client(|c| c);
    let reader = sim.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let mut watch = Driven::new(NodeWatch::new(PATH, Target::Data));
    let mut started = false;
    let mut rng = sim_support::Rng::new(seed, 0);
    let mut fault_rng = sim_support::Rng::new(seed, 99);
    // (version, czxid, data) of each value reported, or None for an absent node.
    let mut reported: Vec<Option<(i32, i64, Bytes)>> = Vec::new();
    let faults_until = start + Duration::from_secs(8);
    let writes_until = start + Duration::from_secs(9);
    let deadline = start + Duration::from_secs(90);
    let mut next_fault = start + Duration::from_millis(50);
    let mut next_write = start + Duration::from_millis(20);
    let mut next_compare = writes_until + Duration::from_secs(2);
    loop {
        let now = sim.now();
        assert!(now < deadline, "seed {seed}: the watch never caught up");
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
            next_write = now + Duration::from_millis(5 + rng.next(40));
            let data = Bytes::from("x".repeat(rng.next(8) as usize));
            let request = match rng.next(6) {
                0 => Request::Delete(DeleteRequest {
                    path: PATH.into(),
                    version: -1,
                }),
                1 => Request::Create(CreateRequest {
                    path: PATH.into(),
                    data,
                    acl: Acl::open_unsafe(),
                    flags: CreateMode::Persistent.as_i32(),
                }),
                _ => Request::SetData(SetDataRequest {
                    path: PATH.into(),
                    data,
                    version: -1,
                }),
            };
            let _ = sim.submit(writer, request);
        }
        while sim.poll_event(writer).is_some() {}
        let session = sim.session(reader).session_id();
        if !started && sim.session(reader).state().is_connected() {
            watch.machine_mut().start(now);
            started = true;
        }
        while let Some(event) = sim.poll_event(reader) {
            let _ = watch.handle_event(now, event, session);
        }
        let mut outcomes = Vec::new();
        watch.flush(now, |r| sim.submit(reader, r), |o| outcomes.push(o));
        for o in outcomes {
            match o {
                Outcome::Data(Some((data, stat))) => {
                    reported.push(Some((stat.version, stat.czxid, data)))
                }
                Outcome::Data(None) => reported.push(None),
                other => panic!("seed {seed}: the watch reported {other:?}"),
            }
        }
        if now >= next_compare {
            next_compare = now + Duration::from_secs(1);
            let read = sim.call(
                writer,
                Request::GetData(GetDataRequest {
                    path: PATH.into(),
                    watch: false,
                }),
                Duration::from_secs(30),
            );
            let on_server = match read {
                Some(Ok(Response::GetData(r))) => Some((r.stat.version, r.stat.czxid, r.data)),
                Some(Err(zk_proto::session::Error::Server(zk_proto::ErrorCode::NoNode))) => None,
                _ => continue,
            };
            if reported.last() == Some(&on_server) {
                break;
            }
        }
        if !sim.step() {
            sim.run_for(Duration::from_millis(1));
        }
    }
    // Every version reported existed (created at 0, or written).
    let mut existed: BTreeSet<i32> = BTreeSet::new();
    for txn in sim.server_history() {
        match &txn.op {
            TxnOp::Create { path, .. } if path == PATH => {
                existed.insert(0);
            }
            TxnOp::SetData { path, version } if path == PATH => {
                existed.insert(*version);
            }
            _ => {}
        }
    }
    let mut last: Option<(i64, i32)> = None;
    for r in reported.iter().flatten() {
        let (version, czxid, _) = r;
        assert!(
            existed.contains(version),
            "seed {seed}: version {version} never existed"
        );
        if let Some((c, v)) = last
            && c == *czxid
        {
            assert!(
                *version >= v,
                "seed {seed}: the watch went back from {v} to {version}"
            );
        }
        last = Some((*czxid, *version));
    }
    let lost = sim_support::lost_replies(&sim);
    (reported.len(), lost)
}

#[test]
fn a_data_watch_reports_real_values_in_order_and_the_last_one_after_faults() {
    let seeds: u64 = sim_support::seeds("ZK_WATCH_SIM_SEEDS", 12);
    let (mut values, mut lost) = (0, 0);
    for seed in 1..=seeds {
        let (v, l) = check(seed);
        values += v;
        lost += l;
    }
    eprintln!("{seeds} schedules: {values} values reported, {lost} lost replies");
    assert!(lost >= seeds as usize * 5, "too few lost replies");
}

/// The children watch under the same faults: children of `/w` come and go; the children
/// version reported never goes back, and once faults stop the last list reported is the
/// server's.
fn check_children(seed: u64) -> usize {
    let start = Instant::now();
    let mut sim = Simulation::new(sim_support::model(seed), start);
    let writer = sim.add_client(|c| c);
    let reader = sim.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let made = sim.call(
        writer,
        Request::Create(CreateRequest {
            path: PATH.into(),
            data: Bytes::new(),
            acl: Acl::open_unsafe(),
            flags: CreateMode::Persistent.as_i32(),
        }),
        Duration::from_secs(30),
    );
    assert!(matches!(made, Some(Ok(_))), "seed {seed}: {made:?}");
    let mut watch = Driven::new(NodeWatch::new(PATH, Target::Children));
    let mut started = false;
    let mut rng = sim_support::Rng::new(seed, 1);
    let mut fault_rng = sim_support::Rng::new(seed, 98);
    let mut reported: Vec<(Vec<String>, i32)> = Vec::new();
    let faults_until = start + Duration::from_secs(8);
    let writes_until = start + Duration::from_secs(9);
    let deadline = start + Duration::from_secs(90);
    let mut next_fault = start + Duration::from_millis(50);
    let mut next_write = start + Duration::from_millis(20);
    let mut next_compare = writes_until + Duration::from_secs(2);
    loop {
        let now = sim.now();
        assert!(
            now < deadline,
            "seed {seed}: the children watch never caught up\n{}",
            sim.render_history()
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
            next_write = now + Duration::from_millis(5 + rng.next(40));
            let child = format!("{PATH}/c{}", rng.next(6));
            let request = if rng.next(2) == 0 {
                Request::Create(CreateRequest {
                    path: child,
                    data: Bytes::new(),
                    acl: Acl::open_unsafe(),
                    flags: CreateMode::Persistent.as_i32(),
                })
            } else {
                Request::Delete(DeleteRequest {
                    path: child,
                    version: -1,
                })
            };
            let _ = sim.submit(writer, request);
        }
        while sim.poll_event(writer).is_some() {}
        let session = sim.session(reader).session_id();
        if !started && sim.session(reader).state().is_connected() {
            watch.machine_mut().start(now);
            started = true;
        }
        while let Some(event) = sim.poll_event(reader) {
            let _ = watch.handle_event(now, event, session);
        }
        let mut outcomes = Vec::new();
        watch.flush(now, |r| sim.submit(reader, r), |o| outcomes.push(o));
        for o in outcomes {
            match o {
                Outcome::Children(Some((names, stat))) => reported.push((names, stat.cversion)),
                other => panic!("seed {seed}: the children watch reported {other:?}"),
            }
        }
        if now >= next_compare {
            next_compare = now + Duration::from_secs(1);
            let read = sim.call(
                writer,
                Request::GetChildren(GetChildrenRequest {
                    path: PATH.into(),
                    watch: false,
                }),
                Duration::from_secs(30),
            );
            let Some(Ok(Response::GetChildren(r))) = read else {
                continue;
            };
            let mut on_server = r.children;
            on_server.sort();
            if reported.last().map(|(n, _)| n) == Some(&on_server) {
                break;
            }
        }
        if !sim.step() {
            sim.run_for(Duration::from_millis(1));
        }
    }
    for pair in reported.windows(2) {
        assert!(
            pair[1].1 >= pair[0].1,
            "seed {seed}: the children version went back from {} to {}",
            pair[0].1,
            pair[1].1
        );
    }
    reported.len()
}

#[test]
fn a_children_watch_reports_in_order_and_the_last_list_after_faults() {
    let seeds: u64 = sim_support::seeds("ZK_WATCH_SIM_SEEDS", 12);
    let lists: usize = (1..=seeds).map(check_children).sum();
    eprintln!("{seeds} schedules: {lists} children lists reported");
    assert!(lists > seeds as usize);
}

/// [`a_data_watch_reports_real_values_in_order_and_the_last_one_after_faults`] on a 3-server ensemble whose followers lag.
#[test]
fn a_data_watch_reports_real_values_in_order_and_the_last_one_after_faults_with_lagging_followers()
{
    sim_support::with_lagging_followers(
        a_data_watch_reports_real_values_in_order_and_the_last_one_after_faults,
    );
}

/// [`a_children_watch_reports_in_order_and_the_last_list_after_faults`] on a 3-server ensemble whose followers lag.
#[test]
fn a_children_watch_reports_in_order_and_the_last_list_after_faults_with_lagging_followers() {
    sim_support::with_lagging_followers(
        a_children_watch_reports_in_order_and_the_last_list_after_faults,
    );
}
