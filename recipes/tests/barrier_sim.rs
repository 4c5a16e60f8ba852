//! The double barrier machine on zk-sim: three participants go through rounds of a
//! barrier for three (each round at its own path), under lost replies, resets, silent
//! links, expired sessions, stalled and restarted servers. Judged on the server's history:
//!
//! - a participant hears `Entered` only after three participant nodes existed at once
//!   and the `ready` node was created;
//! - a participant hears `Left` only after a moment when no participant node of the round
//!   was left;
//! - once every participant is done, no participant node is left in any round.
//!
//! And the plain barrier: three waiters under the same faults pass only after the
//! barrier node's deletion on the server (passing on the end of a session's watches
//! fails seed 1), and all pass once it is down.
//!
//! An enter gives up after 20 s: a participant whose session ended while the others
//! went through the round cannot get in any more (as with Kazoo's and Curator's
//! barriers), and that must end in a timeout with its node removed, not in a hang.
//! `ZK_BARRIER_SIM_SEEDS=400 cargo test -p zk-recipes --test barrier_sim` runs more.

#[path = "sim_support/mod.rs"]
mod sim_support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::records::{Acl, GetChildrenRequest, Request, Response};
use zk_recipes::barrier::{DoubleBarrier, Outcome, READY};
use zk_recipes::lock::Flavor;
use zk_recipes::{Driven, Recipe};
use zk_sim::harness::{ClientId, Fault, Simulation};

const ROUNDS: usize = 8;
const COUNT: usize = 3;

fn round_path(r: usize) -> String {
    format!("/b/round-{r}")
}

#[derive(Default)]
struct Tally {
    entered: u32,
    left: u32,
    timed_out: u32,
    lost: u32,
    lost_replies: usize,
}

struct Participant {
    client: ClientId,
    round: usize,
    machine: Option<Driven<DoubleBarrier>>,
    leave_at: Option<Instant>,
    rng: sim_support::Rng,
}

/// Participant nodes of `round` alive at `t`.
fn alive_at(lives: &[(Instant, Option<Instant>)], t: Instant) -> usize {
    lives
        .iter()
        .filter(|(born, died)| *born <= t && died.is_none_or(|d| d > t))
        .count()
}

/// Every life of every node under `prefix` but `except` (a node deleted and created again
/// has two), from the server's history.
fn every_life(sim: &Simulation, prefix: &str, except: &str) -> Vec<(Instant, Option<Instant>)> {
    let mut lives: Vec<(String, Instant, Option<Instant>)> = Vec::new();
    let end = |lives: &mut Vec<(String, Instant, Option<Instant>)>, path: &str, t| {
        if let Some(life) = lives
            .iter_mut()
            .rev()
            .find(|l| l.0 == path && l.2.is_none())
        {
            life.2 = Some(t);
        }
    };
    for txn in sim.server_history() {
        match &txn.op {
            zk_sim::TxnOp::Create { path, .. } if path.starts_with(prefix) && path != except => {
                lives.push((path.clone(), txn.time, None));
            }
            zk_sim::TxnOp::Delete { path } => end(&mut lives, path, txn.time),
            zk_sim::TxnOp::CloseSession { deleted, .. } => {
                for path in deleted {
                    end(&mut lives, path, txn.time);
                }
            }
            _ => {}
        }
    }
    lives
        .into_iter()
        .map(|(_, born, died)| (born, died))
        .collect()
}

fn check(seed: u64, tally: &mut Tally) {
    let start = Instant::now();
    let mut sim = Simulation::new(sim_support::model(seed), start);
    let flavor = if seed.is_multiple_of(2) {
        Flavor::Kazoo
    } else {
        Flavor::Curator
    };
    let mut people: Vec<Participant> = (0..COUNT)
        .map(|i| Participant {
            client: sim.add_client(|c| c.with_session_timeout(Duration::from_secs(4))),
            round: 0,
            machine: None,
            leave_at: None,
            rng: sim_support::Rng::new(seed, i),
        })
        .collect();
    // (participant, round, what, when)
    let mut heard: Vec<(usize, usize, Outcome, Instant)> = Vec::new();
    let faults_until = start + Duration::from_secs(8);
    let deadline = start + Duration::from_secs(300);
    let mut next_fault = start + Duration::from_millis(30);
    let mut fault_rng = sim_support::Rng::new(seed, 99);
    while people
        .iter()
        .any(|p| p.round < ROUNDS || p.machine.is_some())
    {
        let now = sim.now();
        assert!(now < deadline, "seed {seed}: the rounds never ended");
        if now >= next_fault && now < faults_until {
            let who = people[fault_rng.next(COUNT as u64) as usize].client;
            let fault = match fault_rng.next(10) {
                0..=4 => Fault::LoseNextReply(who),
                5 => Fault::Reset(who),
                6 => Fault::ExpireSession(who),
                _ => sim.random_fault(),
            };
            sim.fault(fault);
            next_fault = now + Duration::from_millis(10 + fault_rng.next(60));
        }
        for (i, p) in people.iter_mut().enumerate() {
            let session = sim.session(p.client).session_id();
            while let Some(event) = sim.poll_event(p.client) {
                if let Some(m) = p.machine.as_mut() {
                    let _ = m.handle_event(now, event, session);
                }
            }
            if p.machine.is_none() && p.round < ROUNDS {
                let id = format!("{seed}-{i}-{}", p.round);
                let mut m = Driven::new(DoubleBarrier::new(
                    &round_path(p.round),
                    &id,
                    COUNT,
                    flavor,
                    Bytes::new(),
                    Acl::open_unsafe(),
                ));
                m.machine_mut()
                    .enter(now, session, Some(now + Duration::from_secs(20)));
                p.machine = Some(m);
            }
            let Some(m) = p.machine.as_mut() else {
                continue;
            };
            m.handle_timeout(now);
            if p.leave_at.is_some_and(|t| now >= t) {
                p.leave_at = None;
                m.machine_mut().leave(now, None);
            }
            let client = p.client;
            let mut outcomes = Vec::new();
            m.flush(now, |r| sim.submit(client, r), |o| outcomes.push(o));
            for o in outcomes {
                match &o {
                    Outcome::Entered => {
                        tally.entered += 1;
                        p.leave_at = Some(now + Duration::from_millis(p.rng.next(300)));
                    }
                    Outcome::Left => tally.left += 1,
                    Outcome::TimedOut => tally.timed_out += 1,
                    Outcome::Lost => tally.lost += 1,
                    Outcome::Released => {}
                    other => panic!("seed {seed}: participant {i} heard {other:?}"),
                }
                heard.push((i, p.round, o, now));
            }
            if m.machine().is_done() {
                p.machine = None;
                p.round += 1;
            }
        }
        if !sim.step() {
            sim.run_for(Duration::from_millis(1));
        }
    }

    for r in 0..ROUNDS {
        let prefix = format!("{}/", round_path(r));
        let ready = format!("{prefix}{READY}");
        let members = every_life(&sim, &prefix, &ready);
        let readies: Vec<Instant> = sim
            .server_history()
            .iter()
            .filter_map(|t| match &t.op {
                zk_sim::TxnOp::Create { path, .. } if *path == ready => Some(t.time),
                _ => None,
            })
            .collect();
        for (who, _, what, at) in heard.iter().filter(|h| h.1 == r) {
            match what {
                // Everyone had arrived (three nodes at once) and `ready` was up before.
                // Not necessarily both at once: a session can end between the count and
                // the creation of `ready`, in any library's barrier.
                Outcome::Entered => assert!(
                    readies.iter().any(|t| t <= at)
                        && members
                            .iter()
                            .any(|(born, _)| born <= at && alive_at(&members, *born) >= COUNT),
                    "seed {seed}: participant {who} entered round {r} before {COUNT} arrived"
                ),
                // Everyone had gone (no participant node at some moment) before.
                Outcome::Left => assert!(
                    members.iter().any(|(_, died)| {
                        died.is_some_and(|d| d <= *at && alive_at(&members, d) == 0)
                    }),
                    "seed {seed}: participant {who} left round {r} before all others"
                ),
                _ => {}
            }
        }
        let left_over = members.iter().filter(|(_, died)| died.is_none()).count();
        assert_eq!(
            left_over, 0,
            "seed {seed}: round {r} kept {left_over} participant nodes"
        );
    }
    let probe = sim.add_client(|c| c);
    let reply = sim.call(
        probe,
        Request::GetChildren(GetChildrenRequest {
            path: "/b".into(),
            watch: false,
        }),
        Duration::from_secs(30),
    );
    assert!(
        matches!(reply, Some(Ok(Response::GetChildren(_)))),
        "seed {seed}: {reply:?}"
    );
    tally.lost_replies += sim_support::lost_replies(&sim);
}

#[test]
fn participants_enter_with_all_and_leave_after_all_under_faults() {
    let seeds: u64 = sim_support::seeds("ZK_BARRIER_SIM_SEEDS", 12);
    let mut tally = Tally::default();
    for seed in 1..=seeds {
        check(seed, &mut tally);
    }
    eprintln!(
        "{seeds} schedules: {} entries, {} departures, {} enters timed out, {} nodes lost \
         with their session, {} lost replies",
        tally.entered, tally.left, tally.timed_out, tally.lost, tally.lost_replies
    );
    assert!(
        tally.lost_replies >= seeds as usize * 5,
        "too few lost replies"
    );
    assert!(
        tally.entered as u64 >= seeds * (ROUNDS * COUNT) as u64 * 3 / 4,
        "most entries must get through once faults stop"
    );
}

/// The plain barrier: a coordinator raises it, three waiters wait on it under the same
/// faults, the coordinator lowers it. Every `Cleared` must come after the node's deletion
/// on the server, and every waiter must hear it once faults stop.
fn check_gate(seed: u64) -> usize {
    use zk_recipes::barrier::Barrier;
    const GATE: &str = "/gates/g";
    let start = Instant::now();
    let mut sim = Simulation::new(sim_support::model(seed), start);
    let coordinator = sim.add_client(|c| c);
    let waiters: Vec<ClientId> = (0..3)
        .map(|_| sim.add_client(|c| c.with_session_timeout(Duration::from_secs(4))))
        .collect();
    let mut gate = Driven::new(Barrier::new(GATE, Acl::open_unsafe()));
    let mut waits: Vec<Driven<Barrier>> = (0..3)
        .map(|_| Driven::new(Barrier::new(GATE, Acl::open_unsafe())))
        .collect();
    let mut cleared: Vec<Option<Instant>> = vec![None; 3];
    let mut raised = false;
    let mut started = [false; 3];
    let lower_at = start + Duration::from_secs(3);
    let mut lowered = false;
    let faults_until = start + Duration::from_secs(6);
    let deadline = start + Duration::from_secs(90);
    let mut next_fault = start + Duration::from_millis(20);
    let mut fault_rng = sim_support::Rng::new(seed, 97);
    let mut lost = 0;
    while cleared.iter().any(Option::is_none) {
        let now = sim.now();
        assert!(
            now < deadline,
            "seed {seed}: waiters never cleared: {cleared:?}\n{}",
            sim.render_history()
        );
        if now >= next_fault && now < faults_until {
            let who = waiters[fault_rng.next(3) as usize];
            let fault = match fault_rng.next(8) {
                0..=3 => {
                    lost += 1;
                    Fault::LoseNextReply(who)
                }
                4 => Fault::Reset(who),
                5 => Fault::ExpireSession(who),
                _ => sim.random_fault(),
            };
            sim.fault(fault);
            next_fault = now + Duration::from_millis(10 + fault_rng.next(60));
        }
        let session = sim.session(coordinator).session_id();
        while let Some(event) = sim.poll_event(coordinator) {
            let _ = gate.handle_event(now, event, session);
        }
        if !raised && sim.session(coordinator).state().is_connected() {
            gate.machine_mut().raise(now);
            raised = true;
        }
        // Lowered once every waiter waits on it: on an ensemble that lost its quorum for
        // a while, the coordinator may raise it late.
        if !lowered
            && raised
            && started.iter().all(|s| *s)
            && now >= lower_at
            && gate.machine().is_done()
        {
            gate.machine_mut().remove(now);
            lowered = true;
        }
        let mut outcomes = Vec::new();
        gate.flush(now, |r| sim.submit(coordinator, r), |o| outcomes.push(o));
        for o in outcomes {
            assert!(
                matches!(o, Outcome::Raised | Outcome::Removed { .. }),
                "seed {seed}: the coordinator heard {o:?}"
            );
        }
        for (i, w) in waits.iter_mut().enumerate() {
            let session = sim.session(waiters[i]).session_id();
            while let Some(event) = sim.poll_event(waiters[i]) {
                let _ = w.handle_event(now, event, session);
            }
            // Wait once the gate is up (a wait on a gate not raised yet returns at once).
            if !started[i] && raised && gate.machine().is_done() && !lowered {
                w.machine_mut().wait(now, None);
                started[i] = true;
            }
            let mut outcomes = Vec::new();
            w.flush(now, |r| sim.submit(waiters[i], r), |o| outcomes.push(o));
            for o in outcomes {
                match o {
                    Outcome::Cleared => cleared[i] = Some(now),
                    other => panic!("seed {seed}: waiter {i} heard {other:?}"),
                }
            }
        }
        if !sim.step() {
            sim.run_for(Duration::from_millis(1));
        }
    }
    let removed = sim
        .server_history()
        .iter()
        .find_map(|t| match &t.op {
            zk_sim::TxnOp::Delete { path } if path == GATE => Some(t.time),
            _ => None,
        })
        .expect("the gate was removed");
    for (i, at) in cleared.iter().enumerate() {
        let at = at.unwrap_or(start);
        assert!(
            at >= removed,
            "seed {seed}: waiter {i} passed before the gate came down"
        );
    }
    lost
}

#[test]
fn waiters_pass_a_barrier_only_once_it_is_down() {
    let seeds: u64 = sim_support::seeds("ZK_BARRIER_SIM_SEEDS", 12);
    let lost: usize = (1..=seeds).map(check_gate).sum();
    eprintln!("{seeds} schedules of a barrier and three waiters, {lost} lost replies");
    assert!(lost >= seeds as usize * 5, "too few lost replies");
}

/// [`participants_enter_with_all_and_leave_after_all_under_faults`] on a 3-server ensemble whose followers lag.
#[test]
fn participants_enter_with_all_and_leave_after_all_under_faults_with_lagging_followers() {
    sim_support::with_lagging_followers(
        participants_enter_with_all_and_leave_after_all_under_faults,
    );
}

/// [`waiters_pass_a_barrier_only_once_it_is_down`] on a 3-server ensemble whose followers lag.
#[test]
fn waiters_pass_a_barrier_only_once_it_is_down_with_lagging_followers() {
    sim_support::with_lagging_followers(waiters_pass_a_barrier_only_once_it_is_down);
}
