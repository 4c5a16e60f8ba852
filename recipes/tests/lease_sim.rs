//! The lease machine on zk-sim: three contenders with their own identifiers try for a
//! two-second lease at random moments, and sometimes give up on an attempt, while the
//! simulation loses replies, resets connections, expires sessions and stalls servers.
//! The wall clock every contender passes in is the simulation's. Judged:
//!
//! - never two identifiers hold the lease at once: the periods from an obtaining
//!   attempt's start to the end it wrote (to the second, as Kazoo writes it) never
//!   overlap between identifiers;
//! - every obtained lease is backed by the server: the holder node was written during
//!   the attempt (or already held this identifier and end);
//! - once everyone is done, no lock node is left (only the holder node).
//!
//! `ZK_LEASE_SIM_SEEDS=400 cargo test -p zk-recipes --test lease_sim` runs more.

#[path = "sim_support/mod.rs"]
mod sim_support;

use std::time::{Duration, Instant};

use zk_proto::records::Acl;
use zk_recipes::lease::{HOLDER, Lease, Outcome};
use zk_recipes::{Driven, Recipe};
use zk_sim::TxnOp;
use zk_sim::harness::{ClientId, Fault, Simulation};

const PATH: &str = "/l";
const LEASE: Duration = Duration::from_secs(2);
/// The simulation's start on the wall clock.
const EPOCH: Duration = Duration::from_secs(1_800_000_000);

struct Contender {
    client: ClientId,
    machine: Option<(Driven<Lease>, Instant)>,
    retired: Vec<Driven<Lease>>,
    next_try: Instant,
    give_up_at: Option<Instant>,
    rng: sim_support::Rng,
    tries: u64,
}

#[derive(Default)]
struct Tally {
    obtained: u32,
    refused: u32,
    given_up: u32,
    lost_replies: usize,
}

fn check(seed: u64, tally: &mut Tally) {
    let start = Instant::now();
    let wall = |t: Instant| EPOCH + t.duration_since(start);
    let mut sim = Simulation::new(sim_support::model(seed), start);
    let mut people: Vec<Contender> = (0..3)
        .map(|i| Contender {
            client: sim.add_client(|c| c.with_session_timeout(Duration::from_secs(4))),
            machine: None,
            retired: Vec::new(),
            next_try: start + Duration::from_millis(10 * i as u64),
            give_up_at: None,
            rng: sim_support::Rng::new(seed, i),
            tries: 0,
        })
        .collect();
    // (who, attempt start, end written in whole seconds since the epoch, when obtained)
    let mut held: Vec<(usize, Instant, u64, Instant)> = Vec::new();
    // Every attempt's start, obtained or not: a given-up attempt's write may still land.
    let mut attempts: Vec<(usize, Instant)> = Vec::new();
    let faults_until = start + Duration::from_secs(10);
    let stop_trying = start + Duration::from_secs(12);
    let deadline = start + Duration::from_secs(120);
    let mut next_fault = start + Duration::from_millis(30);
    let mut fault_rng = sim_support::Rng::new(seed, 99);
    loop {
        let now = sim.now();
        let busy = people
            .iter()
            .any(|p| p.machine.is_some() || !p.retired.is_empty());
        if now >= stop_trying && !busy {
            break;
        }
        assert!(now < deadline, "seed {seed}: the attempts never ended");
        if now >= next_fault && now < faults_until {
            let who = people[fault_rng.next(3) as usize].client;
            let fault = match fault_rng.next(10) {
                0..=4 => Fault::LoseNextReply(who),
                5 => Fault::Reset(who),
                6 => Fault::ExpireSession(who),
                _ => sim.random_fault(),
            };
            sim.fault(fault);
            next_fault = now + Duration::from_millis(10 + fault_rng.next(80));
        }
        for (i, p) in people.iter_mut().enumerate() {
            let session = sim.session(p.client).session_id();
            while let Some(event) = sim.poll_event(p.client) {
                let mut event = Some(event);
                let running = p.machine.iter_mut().map(|(m, _)| m);
                for m in running.chain(p.retired.iter_mut()) {
                    let Some(e) = event.take() else { break };
                    event = m.handle_event(now, e, session);
                }
            }
            if p.machine.is_none() && now >= p.next_try && now < stop_trying {
                p.tries += 1;
                let id = format!("{seed}-{i}-{}", p.tries);
                let mut m =
                    Driven::new(Lease::new(PATH, &id, &format!("c{i}"), Acl::open_unsafe()));
                m.machine_mut().obtain(now, session, wall(now), LEASE);
                attempts.push((i, now));
                p.give_up_at =
                    (p.rng.next(5) == 0).then(|| now + Duration::from_millis(p.rng.next(200)));
                p.machine = Some((m, now));
            }
            if p.give_up_at.is_some_and(|t| now >= t) {
                p.give_up_at = None;
                if let Some((mut m, _)) = p.machine.take() {
                    m.machine_mut().release(now);
                    p.retired.push(m);
                    tally.given_up += 1;
                    p.next_try = now + Duration::from_millis(p.rng.next(300));
                }
            }
            let client = p.client;
            for m in p
                .machine
                .iter_mut()
                .map(|(m, _)| m)
                .chain(p.retired.iter_mut())
            {
                m.handle_timeout(now);
            }
            let mut outcomes = Vec::new();
            if let Some((m, _)) = p.machine.as_mut() {
                m.flush(now, |r| sim.submit(client, r), |o| outcomes.push(o));
            }
            for m in &mut p.retired {
                m.flush(now, |r| sim.submit(client, r), |_| {});
            }
            p.retired.retain(|m| !m.machine().is_done());
            for o in outcomes {
                let Some((m, began)) = p.machine.take() else {
                    continue;
                };
                match o {
                    Outcome::Obtained { .. } => {
                        tally.obtained += 1;
                        let end = (wall(began) + LEASE).as_secs();
                        held.push((i, began, end, now));
                    }
                    Outcome::Refused => tally.refused += 1,
                    Outcome::Failed(e) => panic!("seed {seed}: contender {i} failed: {e}"),
                }
                if !m.machine().is_done() {
                    p.retired.push(m);
                }
                p.next_try = now + Duration::from_millis(p.rng.next(700));
            }
        }
        if !sim.step() {
            sim.run_for(Duration::from_millis(1));
        }
    }

    // Never two identifiers at once: [attempt start, end written) do not overlap.
    for (a, (who_a, began_a, end_a, _)) in held.iter().enumerate() {
        for (who_b, began_b, end_b, _) in held.iter().skip(a + 1) {
            if who_a == who_b {
                continue;
            }
            let from_a = wall(*began_a).as_secs_f64();
            let from_b = wall(*began_b).as_secs_f64();
            let overlap = from_a < *end_b as f64 && from_b < *end_a as f64;
            assert!(
                !overlap,
                "seed {seed}: c{who_a} from {from_a:.3} to {end_a} and c{who_b} from {from_b:.3} to {end_b}"
            );
        }
    }
    // Every obtained lease was written on the server during its attempt.
    let holder = format!("{PATH}/{HOLDER}");
    let creates = |op: &TxnOp| matches!(op, TxnOp::Create { path, .. } if *path == holder);
    let writes: Vec<Instant> = sim
        .server_history()
        .iter()
        .filter(|t| match &t.op {
            TxnOp::Multi(ops) => ops.iter().any(creates),
            op => creates(op),
        })
        .map(|t| t.time)
        .collect();
    // (An attempt that finds its own identifier and end already written, by an earlier
    // attempt within the same second, needs no write.)
    for (who, began, end, at) in &held {
        let renewed = attempts
            .iter()
            .any(|(w, b)| w == who && b < began && (wall(*b) + LEASE).as_secs() == *end);
        assert!(
            renewed || writes.iter().any(|w| w >= began && w <= at),
            "seed {seed}: c{who} obtained the lease without writing it: {:?}-{:?} end {end}; writes {:?}",
            began.duration_since(start),
            at.duration_since(start),
            writes
                .iter()
                .map(|w| w.duration_since(start))
                .collect::<Vec<_>>()
        );
    }
    // No lock node is left.
    let probe = sim.add_client(|c| c);
    let left = sim_support::children(&mut sim, probe, PATH);
    assert!(
        left.iter().all(|c| c == HOLDER),
        "seed {seed}: left {left:?}"
    );
    tally.lost_replies += sim_support::lost_replies(&sim);
}

#[test]
fn never_two_holders_of_a_lease_under_faults() {
    let seeds: u64 = sim_support::seeds("ZK_LEASE_SIM_SEEDS", 12);
    let mut tally = Tally::default();
    for seed in 1..=seeds {
        check(seed, &mut tally);
    }
    eprintln!(
        "{seeds} schedules: {} leases obtained, {} refused, {} attempts given up, {} lost replies",
        tally.obtained, tally.refused, tally.given_up, tally.lost_replies
    );
    assert!(tally.obtained > 0 && tally.refused > 0 && tally.given_up > 0);
    assert!(
        tally.lost_replies >= seeds as usize * 5,
        "too few lost replies"
    );
}

/// [`never_two_holders_of_a_lease_under_faults`] on a 3-server ensemble whose followers lag.
#[test]
fn never_two_holders_of_a_lease_under_faults_with_lagging_followers() {
    sim_support::with_lagging_followers(never_two_holders_of_a_lease_under_faults);
}
