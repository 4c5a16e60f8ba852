//! The shared 64-bit integer on zk-sim, as the clients ship it (`AtomicLong` handles over a
//! driver core per client): three clients increment it, two optimistic tries then
//! promoted to Curator's lock, dropping some calls at random await points, while the
//! simulation loses replies, cuts and black-holes links, expires sessions and stalls
//! servers. Judged on the server's history:
//!
//! - no increment is lost or doubled: the final value is the number of writes the server
//!   applied to the node, each of which added 1 to the value it replaced;
//! - the writes applied are at least the increments reported made, and at most those plus
//!   the ones left in doubt or dropped;
//! - once every task ended, no lock node is left and no machine is still hosted.
//!
//! `ZK_ATOMIC_SIM_SEEDS` sets how many schedules run.

#[path = "sim_driver/mod.rs"]
mod sim_driver;
#[path = "sim_support/mod.rs"]
mod sim_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zk_proto::records::{GetDataRequest, Request, Response};
use zk_sim::TxnOp;
use zk_sim::harness::{Fault, Simulation};

use sim_driver::{AtomicLong, SimDriver};

const PATH: &str = "/atomic/value";
const LOCK: &str = "/atomic/lock";

#[derive(Debug, Default)]
struct Tally {
    made: usize,
    unsure: usize,
    promoted: usize,
}

sim_support::tally!(Tally: made, unsure, promoted);

fn worker(d: &mut SimDriver, seed: u64, i: usize, stop: Instant, tally: Arc<Mutex<Tally>>) {
    let (_, client) = d.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let mut rng = sim_support::Rng::new(seed, i);
    d.tasks.spawn(async move {
        let value = AtomicLong::new(&client, PATH)
            .with_optimistic_tries(2)
            .promoted_to_lock(LOCK, 2);
        while client.now() < stop {
            let call = value.increment();
            let result = if rng.next(6) == 0 {
                let at = client.now() + Duration::from_millis(rng.next(400));
                client.until(at, call).await
            } else {
                Some(call.await)
            };
            match result {
                Some(Ok(v)) if v.succeeded => {
                    assert_eq!(v.post, v.pre + 1, "seed {seed}: {v:?}");
                    let mut t = tally.lock().unwrap();
                    t.made += 1;
                    t.promoted += usize::from(v.promoted_tries > 0);
                }
                Some(Ok(_)) => {}
                // A lost reply left in doubt, a dropped call, a failure mid-write.
                _ => tally.lock().unwrap().unsure += 1,
            }
            client
                .sleep_until(client.now() + Duration::from_millis(rng.next(100)))
                .await;
        }
    });
}

fn check(seed: u64) -> Tally {
    let start = Instant::now();
    let mut d = SimDriver::new(Simulation::new(sim_support::model(seed), start));
    let faults_until = start + Duration::from_secs(15);
    let stop = faults_until + Duration::from_secs(2);
    let tally = Arc::new(Mutex::new(Tally::default()));
    for i in 0..3 {
        worker(&mut d, seed, i, stop, tally.clone());
    }
    let mut rng = sim_support::Rng::new(seed, 99);
    let give_up = stop + Duration::from_secs(90);
    let fault = |d: &mut SimDriver, rng: &mut sim_support::Rng| {
        let f = if rng.next(6) == 0 {
            Fault::LoseNextReply(zk_sim::harness::ClientId(rng.next(3) as usize))
        } else {
            d.sim.random_fault()
        };
        d.sim.fault(f);
    };
    d.drive(
        seed,
        &mut rng,
        sim_driver::Span {
            faults_until,
            give_up,
            spread: 400,
        },
        fault,
        |_, _| {},
    );
    let applied = d
        .sim
        .server_history()
        .iter()
        .flat_map(|t| match &t.op {
            TxnOp::Multi(ops) => ops.clone(),
            op => vec![op.clone()],
        })
        .filter(|op| {
            matches!(op, TxnOp::SetData { path, .. } | TxnOp::Create { path, .. } if path == PATH)
        })
        .count();
    let probe = d.sim.add_client(|c| c);
    sim_support::sync(&mut d.sim, probe, PATH);
    let read = Request::GetData(GetDataRequest {
        path: PATH.into(),
        watch: false,
    });
    let value = match d.sim.call(probe, read, Duration::from_secs(30)) {
        Some(Ok(Response::GetData(r))) => zk_recipes::atomic::decode(&r.data).unwrap(),
        Some(Err(zk_proto::session::Error::Server(zk_proto::ErrorCode::NoNode))) => 0,
        other => panic!("seed {seed}: reading the value: {other:?}"),
    };
    assert_eq!(
        value as usize,
        applied,
        "seed {seed}: the value is {value} after {applied} writes: an increment was lost or \
         doubled\n{}",
        d.sim.render_history()
    );
    let t = tally.lock().unwrap();
    assert!(
        t.made <= applied && applied <= t.made + t.unsure,
        "seed {seed}: {applied} writes applied, {} reported made and {} unsure",
        t.made,
        t.unsure
    );
    let left = sim_support::children(&mut d.sim, probe, LOCK);
    assert!(left.is_empty(), "seed {seed}: lock nodes left: {left:?}");
    Tally {
        made: t.made,
        unsure: t.unsure,
        promoted: t.promoted,
    }
}

#[test]
fn an_atomic_long_never_loses_or_doubles_an_increment() {
    let (seeds, total) = sim_support::campaign("ATOMIC", 1000, check);
    assert!(total.made >= seeds as usize * 20, "{total:?}");
    assert!(total.promoted > 0, "{total:?}");
    assert!(total.unsure > 0, "{total:?}");
}

/// The same on a 3-server ensemble whose followers lag.
#[test]
fn an_atomic_long_never_loses_or_doubles_an_increment_with_lagging_followers() {
    sim_support::with_lagging_followers(an_atomic_long_never_loses_or_doubles_an_increment);
}
