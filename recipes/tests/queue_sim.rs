//! The locking queue machine on zk-sim: three workers claim, consume, put back and drop
//! items, and give up on gets at random moments, while the simulation loses replies,
//! resets and black-holes connections, stalls and restarts servers and expires sessions.
//! Judged on what the server holds:
//!
//! - no item is reported consumed twice, and every item is reported consumed or covered
//!   by a consume reported in doubt (one sent as its claim's session ended: it may have
//!   landed, or another worker may have taken the item since), and is gone from the
//!   server: no item is lost;
//! - once faults stop, every item is consumed (no item stays stuck behind a claim), and
//!   no claim is left.
//!
//! And Kazoo's plain `Queue`, which promises at most once: three takers under the same
//! faults never take an item twice, a take whose reply was lost is reported in doubt
//! (reporting it taken instead makes seed 1 deliver an item twice), and no item is left.
//!
//! `ZK_QUEUE_SIM_SEEDS=400 cargo test -p zk-recipes --test queue_sim` runs more.

#[path = "sim_support/mod.rs"]
mod sim_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::consts::CreateMode;
use zk_proto::records::{Acl, CreateRequest, Request};
use zk_proto::session::Error as SessionError;
use zk_recipes::queue::{LockingQueue, Outcome};
use zk_recipes::{Driven, Recipe};
use zk_sim::harness::{ClientId, Fault, Simulation};

const PATH: &str = "/q";
const ITEMS: usize = 24;

#[derive(Default)]
struct Tally {
    consumed: BTreeMap<String, u32>,
    put_back: u32,
    dropped: u32,
    cancelled: u32,
    lost: u32,
    in_doubt: u32,
}

struct Worker {
    client: ClientId,
    /// The machine of the current get (and what it claimed), if any.
    active: Option<Driven<LockingQueue>>,
    claimed: Option<(String, Instant)>,
    cancel_at: Option<Instant>,
    /// Machines let go of, driven until they are done.
    retired: Vec<Driven<LockingQueue>>,
    rng: sim_support::Rng,
    made: u64,
}

fn create(path: &str, data: &str, mode: CreateMode) -> Request {
    Request::Create(CreateRequest {
        path: path.to_string(),
        data: Bytes::from(data.to_string()),
        acl: Acl::open_unsafe(),
        flags: mode.as_i32(),
    })
}

fn check(seed: u64, tally: &mut Tally) -> usize {
    let start = Instant::now();
    let mut sim = Simulation::new(sim_support::model(seed), start);
    let probe = sim.add_client(|c| c);
    for dir in [PATH, "/q/entries", "/q/taken"] {
        let made = sim.call(
            probe,
            create(dir, "", CreateMode::Persistent),
            Duration::from_secs(30),
        );
        assert!(matches!(made, Some(Ok(_))), "seed {seed}: {made:?}");
    }
    for i in 0..ITEMS {
        let put = sim.call(
            probe,
            create(
                "/q/entries/entry-100-",
                &format!("item-{i}"),
                CreateMode::PersistentSequential,
            ),
            Duration::from_secs(30),
        );
        assert!(matches!(put, Some(Ok(_))), "seed {seed}: {put:?}");
    }
    let mut workers: Vec<Worker> = (0..3)
        .map(|i| Worker {
            client: sim.add_client(|c| c.with_session_timeout(Duration::from_secs(4))),
            active: None,
            claimed: None,
            cancel_at: None,
            retired: Vec::new(),
            rng: sim_support::Rng::new(seed, i),
            made: 0,
        })
        .collect();
    let mut consumed: BTreeMap<String, u32> = BTreeMap::new();
    // Items whose consume was in doubt: the claim's session ended as it was sent.
    let mut doubted: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let accounted = |c: &BTreeMap<String, u32>, d: &std::collections::BTreeSet<String>| {
        c.keys()
            .chain(d.iter())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let faults_until = start + Duration::from_secs(10);
    let deadline = start + Duration::from_secs(180);
    let mut next_fault = start + Duration::from_millis(50);
    let mut fault_rng = sim_support::Rng::new(seed, 99);
    loop {
        let now = sim.now();
        let all_done = accounted(&consumed, &doubted) == ITEMS
            && workers
                .iter()
                .all(|w| w.active.is_none() && w.retired.is_empty());
        if all_done {
            break;
        }
        assert!(
            now < deadline,
            "seed {seed}: {} of {ITEMS} items consumed after three minutes; machines: {:#?}\n{}",
            consumed.len(),
            workers
                .iter()
                .map(|w| (
                    w.active.as_ref().map(|m| format!("{:?}", m.machine())),
                    w.retired
                        .iter()
                        .map(|m| format!("{:?}", m.machine()))
                        .collect::<Vec<_>>()
                ))
                .collect::<Vec<_>>(),
            sim.render_history()
        );
        if now >= next_fault && now < faults_until {
            let who = workers[fault_rng.next(3) as usize].client;
            let fault = match fault_rng.next(8) {
                0..=2 => Fault::LoseNextReply(who),
                3 => Fault::Reset(who),
                4 => Fault::ExpireSession(who),
                _ => sim.random_fault(),
            };
            sim.fault(fault);
            next_fault = now + Duration::from_millis(20 + fault_rng.next(120));
        }
        for (i, w) in workers.iter_mut().enumerate() {
            let session = sim.session(w.client).session_id();
            let mut events = Vec::new();
            while let Some(event) = sim.poll_event(w.client) {
                events.push(event);
            }
            for event in events {
                let mut event = Some(event);
                for m in w.active.iter_mut().chain(w.retired.iter_mut()) {
                    let Some(e) = event.take() else { break };
                    event = m.handle_event(now, e, session);
                }
            }
            if let Some(m) = w.active.as_mut() {
                m.handle_timeout(now);
            }
            for m in &mut w.retired {
                m.handle_timeout(now);
            }
            // Start a get, sometimes to be given up on.
            if w.active.is_none() && accounted(&consumed, &doubted) < ITEMS {
                w.made += 1;
                let id = format!("{seed}-{i}-{}", w.made);
                let mut m = Driven::new(LockingQueue::new(PATH, &id, Acl::open_unsafe()));
                let wait = Duration::from_millis(500 + w.rng.next(2000));
                m.machine_mut().get(now, session, Some(now + wait));
                w.cancel_at =
                    (w.rng.next(4) == 0).then(|| now + Duration::from_millis(w.rng.next(300)));
                w.active = Some(m);
            }
            // Act on a claimed item, or give up on a get.
            if let Some(m) = w.active.as_mut() {
                if let Some((_, at)) = &w.claimed
                    && now >= *at
                    && m.machine().claimed().is_some()
                {
                    match w.rng.next(8) {
                        0 => {
                            m.machine_mut().put_back(now);
                            tally.put_back += 1;
                        }
                        1 => {
                            // Dropped unconsumed.
                            m.machine_mut().release(now);
                            tally.dropped += 1;
                            if let Some(m) = w.active.take() {
                                w.retired.push(m);
                            }
                            w.claimed = None;
                        }
                        _ => m.machine_mut().consume(now),
                    }
                    // Acted on: wait for the outcome.
                    if let Some(c) = w.claimed.as_mut() {
                        c.1 = deadline;
                    }
                } else if w.claimed.is_none() && w.cancel_at.is_some_and(|t| now >= t) {
                    m.machine_mut().release(now);
                    tally.cancelled += 1;
                    w.cancel_at = None;
                    if let Some(m) = w.active.take() {
                        w.retired.push(m);
                    }
                }
            }
            let client = w.client;
            let mut outcomes = Vec::new();
            if let Some(m) = w.active.as_mut() {
                m.flush(now, |r| sim.submit(client, r), |o| outcomes.push(o));
            }
            for m in &mut w.retired {
                // Whatever a let-go machine reports, nobody hears it.
                m.flush(now, |r| sim.submit(client, r), |_| {});
            }
            w.retired.retain(|m| !m.machine().is_done());
            for o in outcomes {
                match o {
                    Outcome::Claimed { entry, .. } => {
                        w.cancel_at = None;
                        w.claimed = Some((entry, now + Duration::from_millis(w.rng.next(200))));
                    }
                    Outcome::Consumed => {
                        let (entry, _) = w.claimed.take().expect("consumed what was claimed");
                        *consumed.entry(entry).or_default() += 1;
                        w.active = None;
                    }
                    Outcome::Lost => {
                        tally.lost += 1;
                        w.claimed = None;
                        w.active = None;
                    }
                    Outcome::InDoubt => {
                        tally.in_doubt += 1;
                        if let Some((entry, _)) = w.claimed.take() {
                            doubted.insert(entry);
                        }
                        w.active = None;
                    }
                    Outcome::Released | Outcome::TimedOut => {
                        w.claimed = None;
                        if w.active.as_ref().is_some_and(|m| m.machine().is_done()) {
                            w.active = None;
                        } else if let Some(m) = w.active.take() {
                            w.retired.push(m);
                        }
                    }
                    Outcome::Failed(SessionError::Closed) => {}
                    other => panic!("seed {seed}: worker {i} heard {other:?}"),
                }
            }
        }
        if !sim.step() {
            sim.run_for(Duration::from_millis(1));
        }
    }
    // Exactly once each, and nothing left on the server.
    let twice: Vec<_> = consumed.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "seed {seed}: consumed more than once: {twice:?}"
    );
    assert_eq!(accounted(&consumed, &doubted), ITEMS, "seed {seed}");
    let entries = sim_support::children(&mut sim, probe, "/q/entries");
    let taken = sim_support::children(&mut sim, probe, "/q/taken");
    assert!(
        entries.is_empty() && taken.is_empty(),
        "seed {seed}: left {entries:?} and claims {taken:?}\n{}",
        sim.render_history()
    );
    for (entry, n) in consumed {
        *tally.consumed.entry(format!("{seed}/{entry}")).or_default() += n;
    }
    sim_support::lost_replies(&sim)
}

#[test]
fn every_item_is_consumed_exactly_once_under_faults() {
    let seeds: u64 = sim_support::seeds("ZK_QUEUE_SIM_SEEDS", 12);
    let mut tally = Tally::default();
    let mut lost_replies = 0;
    for seed in 1..=seeds {
        lost_replies += check(seed, &mut tally);
    }
    eprintln!(
        "{seeds} schedules: {} items consumed once each; {} put back, {} dropped, {} gets \
         given up, {} claims lost with their session, {} consumes in doubt, {lost_replies} \
         lost replies",
        tally.consumed.len(),
        tally.put_back,
        tally.dropped,
        tally.cancelled,
        tally.lost,
        tally.in_doubt
    );
    assert!(
        lost_replies >= seeds as usize * 5,
        "too few lost replies to prove anything"
    );
    assert!(tally.put_back > 0 && tally.dropped > 0 && tally.cancelled > 0);
}

/// Kazoo's plain `Queue` promises each item to at most one taker: three takers under the
/// same faults take every item at most once, report each lost take reply as in doubt,
/// and leave no item behind.
fn check_plain(seed: u64) -> (usize, usize) {
    use zk_recipes::queue::Queue;
    let start = Instant::now();
    let mut sim = Simulation::new(sim_support::model(seed), start);
    let probe = sim.add_client(|c| c);
    let made = sim.call(
        probe,
        create(PATH, "", CreateMode::Persistent),
        Duration::from_secs(30),
    );
    assert!(matches!(made, Some(Ok(_))), "seed {seed}: {made:?}");
    for i in 0..ITEMS {
        let put = sim.call(
            probe,
            create(
                &format!("{PATH}/entry-{:03}-", i % 3),
                &format!("item-{i}"),
                CreateMode::PersistentSequential,
            ),
            Duration::from_secs(30),
        );
        assert!(matches!(put, Some(Ok(_))), "seed {seed}: {put:?}");
    }
    let takers: Vec<ClientId> = (0..3)
        .map(|_| sim.add_client(|c| c.with_session_timeout(Duration::from_secs(4))))
        .collect();
    let mut machines: Vec<Driven<Queue>> = (0..3)
        .map(|_| Driven::new(Queue::new(PATH, Acl::open_unsafe())))
        .collect();
    let mut taken: BTreeMap<Bytes, u32> = BTreeMap::new();
    let mut in_doubt = 0;
    let mut empty = [false; 3];
    let faults_until = start + Duration::from_secs(6);
    let deadline = start + Duration::from_secs(120);
    let mut next_fault = start + Duration::from_millis(20);
    let mut fault_rng = sim_support::Rng::new(seed, 98);
    while !(sim.now() >= faults_until && empty.iter().all(|e| *e))
        || machines.iter().any(|m| !m.machine().is_done())
    {
        let now = sim.now();
        assert!(now < deadline, "seed {seed}: the takers never finished");
        if now >= next_fault && now < faults_until {
            let who = takers[fault_rng.next(3) as usize];
            let fault = match fault_rng.next(8) {
                0..=3 => Fault::LoseNextReply(who),
                4 => Fault::Reset(who),
                5 => Fault::ExpireSession(who),
                _ => sim.random_fault(),
            };
            sim.fault(fault);
            next_fault = now + Duration::from_millis(10 + fault_rng.next(60));
        }
        for (i, m) in machines.iter_mut().enumerate() {
            let session = sim.session(takers[i]).session_id();
            while let Some(event) = sim.poll_event(takers[i]) {
                let _ = m.handle_event(now, event, session);
            }
            if m.machine().is_done() && !(empty[i] && now >= faults_until) {
                m.machine_mut().get(now, false, None);
            }
            let mut outcomes = Vec::new();
            m.flush(now, |r| sim.submit(takers[i], r), |o| outcomes.push(o));
            for o in outcomes {
                match o {
                    Outcome::Taken(item) => {
                        empty[i] = false;
                        *taken.entry(item).or_default() += 1;
                    }
                    Outcome::Empty => empty[i] = true,
                    Outcome::InDoubt => in_doubt += 1,
                    other => panic!("seed {seed}: taker {i} heard {other:?}"),
                }
            }
        }
        if !sim.step() {
            sim.run_for(Duration::from_millis(1));
        }
    }
    let twice: Vec<_> = taken.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "seed {seed}: taken more than once: {twice:?}"
    );
    assert!(
        taken.len() + in_doubt >= ITEMS,
        "seed {seed}: {} taken and {in_doubt} in doubt of {ITEMS}",
        taken.len()
    );
    let left = sim_support::children(&mut sim, probe, PATH);
    assert!(
        left.is_empty(),
        "seed {seed}: left {left:?}\n{}",
        sim.render_history()
    );
    (taken.len(), in_doubt)
}

#[test]
fn plain_queue_items_are_taken_at_most_once_and_none_is_left() {
    let seeds: u64 = sim_support::seeds("ZK_QUEUE_SIM_SEEDS", 12);
    let (mut taken, mut in_doubt) = (0, 0);
    for seed in 1..=seeds {
        let (t, d) = check_plain(seed);
        taken += t;
        in_doubt += d;
    }
    eprintln!("{seeds} schedules: {taken} items taken once each, {in_doubt} takes in doubt");
    assert!(
        in_doubt > 0,
        "no lost take reply: the schedules proved little"
    );
}

/// [`every_item_is_consumed_exactly_once_under_faults`] on a 3-server ensemble whose followers lag.
#[test]
fn every_item_is_consumed_exactly_once_under_faults_with_lagging_followers() {
    sim_support::with_lagging_followers(every_item_is_consumed_exactly_once_under_faults);
}

/// [`plain_queue_items_are_taken_at_most_once_and_none_is_left`] on a 3-server ensemble whose followers lag.
#[test]
fn plain_queue_items_are_taken_at_most_once_and_none_is_left_with_lagging_followers() {
    sim_support::with_lagging_followers(plain_queue_items_are_taken_at_most_once_and_none_is_left);
}
