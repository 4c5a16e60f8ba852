//! Service discovery on zk-sim, as the clients ship it (`ServiceDiscovery` handles over a
//! driver core per client): three instances of one service register, update their ports
//! now and then and keep a cache of the service, while the simulation loses replies, cuts,
//! black-holes and isolates links, expires sessions, stalls servers, and an operator deletes
//! registrations behind their backs. Judged on the server and the caches:
//!
//! - once the faults stop, every instance's node is back, its session's, holding its latest
//!   JSON, and every cache lists the three instances as registered last;
//! - after they unregister (some waiting for the confirmation, some dropping the
//!   registration), no instance node is left and no machine is still hosted.
//!
//! `ZK_DISCOVERY_SIM_SEEDS` sets how many schedules run.

#[path = "sim_driver/mod.rs"]
mod sim_driver;
#[path = "sim_support/mod.rs"]
mod sim_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zk_proto::records::{DeleteRequest, GetDataRequest, Request, Response};
use zk_recipes::discovery::ServiceInstance;
use zk_sim::harness::{ClientId, Fault, Simulation};

use sim_driver::{ServiceDiscovery, SimDriver};

const BASE: &str = "/services";
const NAME: &str = "svc";

#[derive(Debug, Default)]
struct Seen {
    /// The instance as last registered or updated.
    latest: Option<ServiceInstance>,
    /// What the cache listed at the check: (id, port) pairs.
    cached: Vec<(String, Option<i32>)>,
    remade: u64,
}

fn instance(
    d: &mut SimDriver,
    seed: u64,
    i: usize,
    faults_until: Instant,
    check_at: Instant,
    seen: Arc<Mutex<Seen>>,
) {
    let (_, client) = d.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let mut rng = sim_support::Rng::new(seed, i);
    d.tasks.spawn(async move {
        let discovery = ServiceDiscovery::new(&client, BASE);
        let mut me = ServiceInstance::new(NAME, &format!("i{i}"));
        me.address = Some(format!("10.0.0.{i}"));
        me.port = Some(8000);
        let registration = loop {
            match discovery.register(&me).await {
                Ok(r) => break r,
                Err(_) => {
                    client
                        .sleep_until(client.now() + Duration::from_millis(100))
                        .await
                }
            }
        };
        seen.lock().unwrap().latest = Some(registration.instance());
        let cache = loop {
            match discovery.cache(NAME).await {
                Ok(c) => break c,
                Err(_) => {
                    client
                        .sleep_until(client.now() + Duration::from_millis(100))
                        .await
                }
            }
        };
        let mut port = 8000;
        while client.now() < faults_until {
            client
                .sleep_until(client.now() + Duration::from_millis(300 + rng.next(2000)))
                .await;
            port += 1;
            me.port = Some(port);
            registration.update(&me).expect("same name and id");
            seen.lock().unwrap().latest = Some(registration.instance());
        }
        client.sleep_until(check_at).await;
        {
            let mut s = seen.lock().unwrap();
            s.cached = cache
                .instances()
                .into_iter()
                .map(|i| (i.id, i.port))
                .collect();
            s.remade = registration.node().times_made();
        }
        client.sleep_until(check_at + Duration::from_secs(10)).await;
        drop(cache);
        if rng.next(2) == 0 {
            let _ = registration.unregister().await;
        } else {
            drop(registration);
        }
    });
}

#[derive(Debug, Default)]
struct Stats {
    remade: u64,
    operator_deletes: usize,
    faults: usize,
}

sim_support::tally!(Stats: remade, operator_deletes, faults);

fn check(seed: u64) -> Stats {
    let start = Instant::now();
    let mut d = SimDriver::new(Simulation::new(sim_support::model(seed), start));
    let faults_until = start + Duration::from_secs(20);
    // An isolation ends up to 6 s after the last fault; then the session may expire and
    // the registration come back on a new one, and the caches catch up.
    let check_at = faults_until + Duration::from_secs(20);
    let seen: Vec<Arc<Mutex<Seen>>> = (0..3).map(|_| Arc::default()).collect();
    for (i, s) in seen.iter().enumerate() {
        instance(&mut d, seed, i, faults_until, check_at, s.clone());
    }
    let operator = d.sim.add_client(|c| c);
    let mut rng = sim_support::Rng::new(seed, 99);
    let operator_deletes = std::cell::Cell::new(0);
    let mut checked = false;
    let give_up = check_at + Duration::from_secs(120);
    let fault = |d: &mut SimDriver, rng: &mut sim_support::Rng| match rng.next(8) {
        0 => d
            .sim
            .fault(Fault::ExpireSession(ClientId(rng.next(3) as usize))),
        // The operator deletes a registration.
        1..=2 => {
            let delete = Request::Delete(DeleteRequest {
                path: format!("{BASE}/{NAME}/i{}", rng.next(3)),
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
            if !checked && now >= check_at + Duration::from_secs(1) {
                checked = true;
                check_registrations(seed, d, &seen);
            }
        },
    );
    let operator_deletes = operator_deletes.get();
    assert!(checked, "seed {seed}: never reached the check");
    let probe = d.sim.add_client(|c| c);
    let left = sim_support::children(&mut d.sim, probe, &format!("{BASE}/{NAME}"));
    assert!(
        left.is_empty(),
        "seed {seed}: left behind {left:?}\n{}",
        d.sim.render_history()
    );
    Stats {
        remade: seen.iter().map(|s| s.lock().unwrap().remade).sum(),
        operator_deletes,
        faults: sim_support::faults(&d.sim),
    }
}

fn check_registrations(seed: u64, d: &mut SimDriver, seen: &[Arc<Mutex<Seen>>]) {
    let probe = d.sim.add_client(|c| c);
    sim_support::sync(&mut d.sim, probe, BASE);
    let latest: Vec<ServiceInstance> = seen
        .iter()
        .map(|s| s.lock().unwrap().latest.clone().expect("registered"))
        .collect();
    for (i, want) in latest.iter().enumerate() {
        let read = Request::GetData(GetDataRequest {
            path: format!("{BASE}/{NAME}/i{i}"),
            watch: false,
        });
        let got = d.sim.call(probe, read, Duration::from_secs(30));
        let Some(Ok(Response::GetData(r))) = got else {
            panic!(
                "seed {seed}: instance {i} is not registered: {got:?}\n{}",
                d.sim.render_history()
            );
        };
        assert_eq!(
            ServiceInstance::from_json(&r.data).as_ref(),
            Ok(want),
            "seed {seed}: instance {i}'s node holds an old registration\n{}",
            d.sim.render_history()
        );
        assert_eq!(
            r.stat.ephemeral_owner,
            d.sim.session(ClientId(i)).session_id(),
            "seed {seed}: instance {i}'s node is not its session's"
        );
    }
    let want: Vec<(String, Option<i32>)> = latest.iter().map(|i| (i.id.clone(), i.port)).collect();
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(
            s.lock().unwrap().cached,
            want,
            "seed {seed}: instance {i}'s cache did not catch up\n{}",
            d.sim.render_history()
        );
    }
}

#[test]
fn registrations_come_back_and_caches_catch_up_under_faults() {
    let (seeds, total) = sim_support::campaign("DISCOVERY", 1000, check);
    assert!(total.remade >= seeds * 3 * 2, "{total:?}");
    assert!(total.operator_deletes >= seeds as usize, "{total:?}");
}

/// The same on a 3-server ensemble whose followers lag.
#[test]
fn registrations_come_back_and_caches_catch_up_with_lagging_followers() {
    sim_support::with_lagging_followers(registrations_come_back_and_caches_catch_up_under_faults);
}
