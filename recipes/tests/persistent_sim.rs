//! Group members on zk-sim, as the clients ship them (`GroupMember` handles over a driver
//! core per client): three members keep ephemeral nodes under one membership path and
//! change their payloads now and then, while the simulation loses replies, cuts,
//! black-holes and isolates links, expires sessions, stalls servers, and an operator deletes
//! members' nodes behind their backs. Judged on the server:
//!
//! - once the faults stop, every member's node is back, owned by its member's session of
//!   now, holding its latest payload, and every member lists all three;
//! - after they leave (some waiting for the confirmation, some dropping the handle), no
//!   node is left and no machine is still hosted.
//!
//! `ZK_PERSISTENT_SIM_SEEDS` sets how many schedules run.

#[path = "sim_driver/mod.rs"]
mod sim_driver;
#[path = "sim_support/mod.rs"]
mod sim_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::records::{DeleteRequest, GetDataRequest, Request, Response};
use zk_sim::harness::{ClientId, Happened, Simulation};

use sim_driver::{GroupMember, SimDriver};

const GROUP: &str = "/group/members";

/// What each member last set, and whether it is done.
#[derive(Debug, Default)]
struct Member {
    payload: Option<Bytes>,
    remade: u64,
    listed: usize,
}

fn member(
    d: &mut SimDriver,
    seed: u64,
    i: usize,
    faults_until: Instant,
    check_at: Instant,
    state: Arc<Mutex<Member>>,
) {
    let (_, client) = d.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let mut rng = sim_support::Rng::new(seed, i);
    d.tasks.spawn(async move {
        let joined = loop {
            let payload = format!("m{i}-0");
            match GroupMember::join(&client, GROUP, &format!("m{i}"), payload.clone()).await {
                Ok(m) => {
                    state.lock().unwrap().payload = Some(Bytes::from(payload));
                    break m;
                }
                Err(_) => {
                    client
                        .sleep_until(client.now() + Duration::from_millis(100))
                        .await
                }
            }
        };
        let mut k = 0;
        while client.now() < faults_until {
            client
                .sleep_until(client.now() + Duration::from_millis(200 + rng.next(1500)))
                .await;
            k += 1;
            let payload = Bytes::from(format!("m{i}-{k}"));
            joined.set_payload(payload.clone());
            state.lock().unwrap().payload = Some(payload);
        }
        // Wait out the faults, then the members must all be there.
        client.sleep_until(check_at).await;
        let deadline = client.now() + Duration::from_secs(15);
        while client.now() < deadline {
            if let Some(Ok(members)) = client.until(deadline, joined.members()).await {
                state.lock().unwrap().listed = members.len();
                if members.len() == 3 {
                    break;
                }
            }
            client
                .sleep_until(client.now() + Duration::from_millis(200))
                .await;
        }
        state.lock().unwrap().remade = joined.node().times_made();
        // Hold on until the checks ran, then leave.
        client.sleep_until(check_at + Duration::from_secs(25)).await;
        if rng.next(2) == 0 {
            let _ = joined.leave().await;
        } else {
            drop(joined);
        }
    });
}

#[derive(Debug, Default)]
struct Stats {
    remade: u64,
    operator_deletes: usize,
    expiries: usize,
    faults: usize,
}

sim_support::tally!(Stats: remade, operator_deletes, expiries, faults);

fn check(seed: u64) -> Stats {
    let start = Instant::now();
    let mut d = SimDriver::new(Simulation::new(sim_support::model(seed), start));
    let faults_until = start + Duration::from_secs(20);
    // An isolation ends up to 6 s after the last fault; a session then expires and the
    // member comes back on a new one.
    let check_at = faults_until + Duration::from_secs(15);
    let states: Vec<Arc<Mutex<Member>>> = (0..3).map(|_| Arc::default()).collect();
    for (i, s) in states.iter().enumerate() {
        member(&mut d, seed, i, faults_until, check_at, s.clone());
    }
    let operator = d.sim.add_client(|c| c);
    let mut rng = sim_support::Rng::new(seed, 99);
    let operator_deletes = std::cell::Cell::new(0);
    let mut checked = false;
    let give_up = check_at + Duration::from_secs(120);
    let fault = |d: &mut SimDriver, rng: &mut sim_support::Rng| match rng.next(8) {
        0 => d.sim.fault(zk_sim::harness::Fault::ExpireSession(ClientId(
            rng.next(3) as usize
        ))),
        // The operator deletes a member's node.
        1..=2 => {
            let delete = Request::Delete(DeleteRequest {
                path: format!("{GROUP}/m{}", rng.next(3)),
                version: -1,
            });
            if d.sim.submit(operator, delete).is_ok() {
                operator_deletes.set(operator_deletes.get() + 1);
            }
        }
        _ => SimDriver::random_fault(d, rng),
    };
    d.drive(
        seed,
        &mut rng,
        sim_driver::Span {
            faults_until,
            give_up,
            spread: 500,
        },
        fault,
        |d, now| {
            while d.sim.poll_event(operator).is_some() {}
            if !checked && now >= check_at + Duration::from_secs(16) {
                checked = true;
                check_members(seed, d, &states);
            }
        },
    );
    let operator_deletes = operator_deletes.get();
    assert!(checked, "seed {seed}: never reached the check");
    let probe = d.sim.add_client(|c| c);
    let left = sim_support::children(&mut d.sim, probe, GROUP);
    assert!(
        left.is_empty(),
        "seed {seed}: left behind {left:?}\n{}",
        d.sim.render_history()
    );
    Stats {
        remade: states.iter().map(|s| s.lock().unwrap().remade).sum(),
        operator_deletes,
        expiries: d
            .sim
            .history()
            .iter()
            .filter(|r| {
                matches!(
                    r.what,
                    Happened::Fault(zk_sim::harness::Fault::ExpireSession(_))
                )
            })
            .count(),
        faults: sim_support::faults(&d.sim),
    }
}

/// Each member's node is there, its session's, with its latest payload; each lists three.
fn check_members(seed: u64, d: &mut SimDriver, states: &[Arc<Mutex<Member>>]) {
    let probe = d.sim.add_client(|c| c);
    sim_support::sync(&mut d.sim, probe, GROUP);
    for (i, s) in states.iter().enumerate() {
        let read = Request::GetData(GetDataRequest {
            path: format!("{GROUP}/m{i}"),
            watch: false,
        });
        let got = d.sim.call(probe, read, Duration::from_secs(30));
        let Some(Ok(Response::GetData(r))) = got else {
            panic!(
                "seed {seed}: member {i}'s node is not back: {got:?}\n{}",
                d.sim.render_history()
            );
        };
        let s = s.lock().unwrap();
        assert_eq!(
            Some(&r.data),
            s.payload.as_ref(),
            "seed {seed}: member {i}'s node holds an old payload\n{}",
            d.sim.render_history()
        );
        let owner = d.sim.session(ClientId(i)).session_id();
        assert_eq!(
            r.stat.ephemeral_owner,
            owner,
            "seed {seed}: member {i}'s node is not its session's\n{}",
            d.sim.render_history()
        );
        assert_eq!(s.listed, 3, "seed {seed}: member {i} listed {}", s.listed);
    }
}

#[test]
fn group_members_come_back_with_their_latest_payload_and_leave_nothing() {
    let (seeds, total) = sim_support::campaign("PERSISTENT", 1000, check);
    // Nodes came back: the schedules took them away.
    assert!(total.remade >= seeds * 3 * 2, "{total:?}");
    assert!(total.operator_deletes >= seeds as usize, "{total:?}");
    assert!(total.expiries > 0, "{total:?}");
}

/// The same on a 3-server ensemble whose followers lag.
#[test]
fn group_members_come_back_with_their_latest_payload_with_lagging_followers() {
    sim_support::with_lagging_followers(
        group_members_come_back_with_their_latest_payload_and_leave_nothing,
    );
}
