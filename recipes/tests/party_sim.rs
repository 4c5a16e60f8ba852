//! The party machine on zk-sim: three members join and leave at random moments, and give
//! up on joins, while the simulation loses replies, resets, silences and isolates
//! connections, expires sessions and stalls servers. Judged on the server's history:
//!
//! - while a member believes it is in (from `Acquired` until it leaves or hears
//!   `Suspended` or `Lost`), its node exists on the server, also when it is cut off past
//!   its session timeout (expiries by force spare members inside, as no client could hear
//!   of one first; one that lands as a join completes is excused for the news's way);
//! - once everyone has left, no member node is left.
//!
//! `ZK_PARTY_SIM_SEEDS=400 cargo test -p zk-recipes --test party_sim` runs more.

#[path = "sim_support/mod.rs"]
mod sim_support;

use std::time::{Duration, Instant};

use zk_proto::records::Acl;
use zk_recipes::lock::Outcome;
use zk_recipes::party::{Party, Style};
use zk_recipes::{Driven, Recipe};
use zk_sim::TxnOp;
use zk_sim::harness::{ClientId, Fault, Simulation};

const PATH: &str = "/party";

struct Member {
    client: ClientId,
    machine: Option<Driven<Party>>,
    retired: Vec<Driven<Party>>,
    /// Believed in since, and when to leave.
    inside: Option<(Instant, Instant)>,
    next_join: Instant,
    give_up_at: Option<Instant>,
    rng: sim_support::Rng,
    joins: u64,
}

/// (member, node, from, until)
type Belief = (usize, String, Instant, Instant);

/// Every life of every node under `prefix`: path, born, died.
fn lives(sim: &Simulation, prefix: &str) -> Vec<(String, Instant, Option<Instant>)> {
    let mut out: Vec<(String, Instant, Option<Instant>)> = Vec::new();
    let end = |out: &mut Vec<(String, Instant, Option<Instant>)>, path: &str, t| {
        if let Some(l) = out.iter_mut().rev().find(|l| l.0 == path && l.2.is_none()) {
            l.2 = Some(t);
        }
    };
    for txn in sim.server_history() {
        match &txn.op {
            TxnOp::Create { path, .. } if path.starts_with(prefix) => {
                out.push((path.clone(), txn.time, None))
            }
            TxnOp::Delete { path } => end(&mut out, path, txn.time),
            TxnOp::CloseSession { deleted, .. } => {
                for path in deleted {
                    end(&mut out, path, txn.time);
                }
            }
            _ => {}
        }
    }
    out
}

fn check(seed: u64) -> (usize, usize) {
    let start = Instant::now();
    let mut sim = Simulation::new(sim_support::model(seed), start);
    let style = if seed.is_multiple_of(2) {
        Style::Party
    } else {
        Style::Shallow
    };
    let mut members: Vec<Member> = (0..3)
        .map(|i| Member {
            client: sim.add_client(|c| c.with_session_timeout(Duration::from_secs(4))),
            machine: None,
            retired: Vec::new(),
            inside: None,
            next_join: start + Duration::from_millis(10 * i as u64),
            give_up_at: None,
            rng: sim_support::Rng::new(seed, i),
            joins: 0,
        })
        .collect();
    let mut beliefs: Vec<Belief> = Vec::new();
    let faults_until = start + Duration::from_secs(10);
    let stop_joining = start + Duration::from_secs(12);
    let deadline = start + Duration::from_secs(120);
    let mut next_fault = start + Duration::from_millis(30);
    let mut fault_rng = sim_support::Rng::new(seed, 99);
    loop {
        let now = sim.now();
        let busy = members
            .iter()
            .any(|m| m.machine.is_some() || !m.retired.is_empty());
        if now >= stop_joining && !busy {
            break;
        }
        assert!(now < deadline, "seed {seed}: the members never settled");
        if now >= next_fault && now < faults_until {
            let who = members[fault_rng.next(3) as usize].client;
            let insiders: Vec<ClientId> = members
                .iter()
                .filter(|m| m.inside.is_some())
                .map(|m| m.client)
                .collect();
            let fault = match fault_rng.next(10) {
                0..=3 => Fault::LoseNextReply(who),
                4 => Fault::Reset(who),
                // A member inside cut off past its session timeout: it must suspend before
                // the server expires it.
                5 if !insiders.is_empty() => {
                    let back = Duration::from_millis(1000 + fault_rng.next(5000));
                    sim.fault_after(back, Fault::Rejoin(insiders[0]));
                    Fault::Isolate(insiders[0])
                }
                // Expiries by force spare members inside: no client could hear of one first.
                6 if insiders.contains(&who) => Fault::Reset(who),
                6 => Fault::ExpireSession(who),
                _ => sim.random_fault(),
            };
            sim.fault(fault);
            next_fault = now + Duration::from_millis(10 + fault_rng.next(80));
        }
        for (i, m) in members.iter_mut().enumerate() {
            let session = sim.session(m.client).session_id();
            while let Some(event) = sim.poll_event(m.client) {
                let mut event = Some(event);
                for d in m.machine.iter_mut().chain(m.retired.iter_mut()) {
                    let Some(e) = event.take() else { break };
                    event = d.handle_event(now, e, session);
                }
            }
            if m.machine.is_none() && now >= m.next_join && now < stop_joining {
                m.joins += 1;
                let id = format!("{seed}-{i}-{}", m.joins);
                let mut d = Driven::new(Party::new(
                    PATH,
                    &id,
                    &format!("m{i}"),
                    style,
                    Acl::open_unsafe(),
                ));
                d.machine_mut()
                    .join(now, session, Some(now + Duration::from_secs(3)));
                m.give_up_at =
                    (m.rng.next(4) == 0).then(|| now + Duration::from_millis(m.rng.next(200)));
                m.machine = Some(d);
            }
            let leave = m.inside.is_some_and(|(_, until)| now >= until)
                || m.give_up_at.is_some_and(|t| now >= t && m.inside.is_none());
            if leave && let Some(mut d) = m.machine.take() {
                if let Some((from, _)) = m.inside.take() {
                    let node = d.machine().node().to_string();
                    beliefs.push((i, node, from, now));
                }
                m.give_up_at = None;
                d.machine_mut().release(now);
                m.retired.push(d);
                m.next_join = now + Duration::from_millis(m.rng.next(400));
            }
            let client = m.client;
            for d in m.machine.iter_mut().chain(m.retired.iter_mut()) {
                d.handle_timeout(now);
            }
            let mut outcomes = Vec::new();
            if let Some(d) = m.machine.as_mut() {
                d.flush(now, |r| sim.submit(client, r), |o| outcomes.push(o));
            }
            for d in &mut m.retired {
                d.flush(now, |r| sim.submit(client, r), |_| {});
            }
            m.retired.retain(|d| !d.machine().is_done());
            for o in outcomes {
                match o {
                    Outcome::Acquired { .. } => {
                        m.give_up_at = None;
                        // Mostly short stays; some outlast a session timeout.
                        let stay = match m.rng.next(4) {
                            0 => 3000 + m.rng.next(5000),
                            _ => m.rng.next(600),
                        };
                        m.inside = Some((now, now + Duration::from_millis(stay)));
                    }
                    Outcome::Suspended | Outcome::Lost => {
                        if let Some((from, _)) = m.inside.take() {
                            let node = m.machine.as_ref().map(|d| d.machine().node().to_string());
                            beliefs.push((i, node.unwrap_or_default(), from, now));
                        }
                        // Leave now: the membership is in doubt or gone.
                        if let Some(mut d) = m.machine.take() {
                            d.machine_mut().release(now);
                            m.retired.push(d);
                            m.next_join = now + Duration::from_millis(m.rng.next(400));
                        }
                    }
                    Outcome::TimedOut | Outcome::Released | Outcome::Resumed => {
                        if matches!(o, Outcome::TimedOut)
                            && let Some(d) = m.machine.take()
                        {
                            m.retired.push(d);
                            m.next_join = now + Duration::from_millis(m.rng.next(400));
                        }
                    }
                    Outcome::Failed(e) => panic!("seed {seed}: member {i} failed: {e}"),
                    Outcome::RevocationRequested => {}
                }
            }
        }
        if !sim.step() {
            sim.run_for(Duration::from_millis(1));
        }
    }

    let lives = lives(&sim, &format!("{PATH}/"));
    let forced = sim_support::forced_expiries(&sim);
    let news = Duration::from_millis(10);
    for (who, node, from, until) in &beliefs {
        // The latest life begun by then; a node the server expired by force may be gone
        // before the member hears of it.
        let forced_death = |d: Instant| forced.contains(&(*who, d)) && *from <= d + news;
        let life = lives.iter().rev().find(|(p, born, died)| {
            p == node && born <= from && died.is_none_or(|d| d > *from || forced_death(d))
        });
        let Some((_, _, died)) = life else {
            panic!("seed {seed}: member {who} believed in {node} at {from:?}, which did not exist");
        };
        let excused = died.is_some_and(|d| forced.contains(&(*who, d)) && *until <= d + news);
        assert!(
            excused || died.is_none_or(|d| d >= *until),
            "seed {seed}: member {who} believed in {node} until {until:?}; it died at {died:?}"
        );
    }
    let probe = sim.add_client(|c| c);
    let left = sim_support::children(&mut sim, probe, PATH);
    assert!(
        left.is_empty(),
        "seed {seed}: members left behind: {left:?}"
    );
    let lost = sim_support::lost_replies(&sim);
    (beliefs.len(), lost)
}

#[test]
fn a_member_is_on_the_server_while_it_believes_so_and_leaves_nothing() {
    let seeds: u64 = sim_support::seeds("ZK_PARTY_SIM_SEEDS", 12);
    let (mut beliefs, mut lost) = (0, 0);
    for seed in 1..=seeds {
        let (b, l) = check(seed);
        beliefs += b;
        lost += l;
    }
    eprintln!("{seeds} schedules: {beliefs} memberships checked, {lost} lost replies");
    assert!(beliefs > 0 && lost >= seeds as usize * 5);
}

/// [`a_member_is_on_the_server_while_it_believes_so_and_leaves_nothing`] on a 3-server ensemble whose followers lag.
#[test]
fn a_member_is_on_the_server_while_it_believes_so_and_leaves_nothing_with_lagging_followers() {
    sim_support::with_lagging_followers(
        a_member_is_on_the_server_while_it_believes_so_and_leaves_nothing,
    );
}
