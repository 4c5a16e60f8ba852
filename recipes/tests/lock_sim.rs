//! The lock machine on zk-sim: seeded schedules of several contenders acquiring with
//! deadlines, holding, releasing and giving up at random moments, while the simulation
//! injects faults (lost replies, cut and black-holed connections, stalled servers, expired
//! sessions). Safety is judged on the server's history, not on what the clients believed:
//!
//! - while a client believes it holds the lock (from `Acquired` until it releases, or hears
//!   `Suspended` or `Lost`), its node exists on the server and no lower node excludes it
//!   (any lower node excludes a writer; a lower writer excludes a reader);
//! - so no writer holds it at once with anyone else in server time;
//! - once faults stop and every contender has released, no lock node is left.
//!
//! Odd seeds use Curator's node names, even ones Kazoo's; seeds 2, 3, 6, 7, ... run two
//! readers and a writer instead of three exclusive contenders; every third seed runs the
//! `SuspendedEnds` connection policy, the others the default; in every fifth seed the locks
//! are revocable and a fourth client asks the holder to let go every 700 ms, which it does
//! at once.
//!
//! `ZK_LOCK_SIM_SEEDS=5000 cargo test -p zk-recipes --test lock_sim` runs a long campaign.

#[path = "sim_support/mod.rs"]
mod sim_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use zk_proto::records::{Acl, GetChildrenRequest, Request, Response, SetDataRequest};
use zk_proto::session::{Event, RequestId};
use zk_recipes::lock::{ConnectionPolicy, Flavor, Kind, Lock, Outcome, Output};
use zk_recipes::{Recipe, Tag};
use zk_sim::harness::{ClientId, Fault, Happened, Simulation};

const DIR: &str = "/lock";

struct Contender {
    client: ClientId,
    lock: Lock,
    tags: HashMap<RequestId, Tag>,
    watches: HashMap<RequestId, Tag>,
    /// When the current belief of holding began, and the node.
    holding: Option<(Instant, String)>,
    /// When to release a held lock.
    release_at: Option<Instant>,
    /// When to start the next acquisition.
    next_try: Option<Instant>,
    acquired: u32,
    suspended: u32,
    lost: u32,
    /// Acquisitions given up before they ended.
    cancelled: u32,
    /// Holds given up because another process asked.
    revoked: u32,
    rng: sim_support::Rng,
}

impl Contender {
    fn next(&mut self, below: u64) -> u64 {
        self.rng.next(below)
    }
}

use sim_support::Belief;

struct World {
    sim: Simulation,
    contenders: Vec<Contender>,
    beliefs: Vec<Belief>,
    faults_until: Instant,
    /// In every fifth schedule, a client that now and then asks the holder to let go.
    revoker: Option<Revoker>,
}

struct Revoker {
    client: ClientId,
    next: Instant,
    listing: Option<RequestId>,
    asked: u32,
}

impl World {
    fn new(seed: u64, n: usize, lag: bool) -> World {
        let start = Instant::now();
        let mut sim = Simulation::new(sim_support::sim_config(seed, lag), start);
        let contenders = (0..n)
            .map(|i| {
                let client = sim.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
                Contender {
                    client,
                    // Odd seeds name nodes as Curator does, even ones as Kazoo does; every
                    // other pair of seeds has two readers and a writer.
                    lock: Lock::new(DIR, &format!("c{i}s{seed}"), Acl::open_unsafe())
                        .revocable(seed % 5 == 1)
                        .with_flavor(if seed % 2 == 1 {
                            Flavor::Curator
                        } else {
                            Flavor::Kazoo
                        })
                        .with_kind(match (seed / 2 % 2, i) {
                            (0, _) => Kind::Exclusive,
                            (_, 0) => Kind::Write,
                            _ => Kind::Read,
                        })
                        // Every third schedule gives the lock up at the first suspension.
                        .with_connection_policy(if seed.is_multiple_of(3) {
                            ConnectionPolicy::SuspendedEnds
                        } else {
                            ConnectionPolicy::SuspendedIsLost
                        }),
                    tags: HashMap::new(),
                    watches: HashMap::new(),
                    holding: None,
                    release_at: None,
                    next_try: Some(start + Duration::from_millis(10 * i as u64)),
                    acquired: 0,
                    suspended: 0,
                    lost: 0,
                    cancelled: 0,
                    revoked: 0,
                    rng: sim_support::Rng::new(seed, i),
                }
            })
            .collect();
        // Added after the contenders, so their client ids stay their indices.
        let revoker = (seed % 5 == 1).then(|| Revoker {
            client: sim.add_client(|c| c),
            next: start + Duration::from_millis(500),
            listing: None,
            asked: 0,
        });
        World {
            sim,
            contenders,
            beliefs: Vec::new(),
            faults_until: start + Duration::from_secs(20),
            revoker,
        }
    }

    /// Hands the lock machine's requests to the session and its outcomes to the checks.
    fn pump(&mut self, i: usize) {
        let now = self.sim.now();
        loop {
            let c = &mut self.contenders[i];
            let Some(out) = c.lock.poll_output() else {
                break;
            };
            match out {
                Output::Submit(tag, request) => {
                    let watch = matches!(&request, Request::Exists(r) if r.watch)
                        || matches!(&request, Request::GetData(r) if r.watch);
                    match self.sim.submit(c.client, request) {
                        Ok(id) => {
                            c.tags.insert(id, tag);
                            if watch {
                                c.watches.insert(id, tag);
                            }
                        }
                        Err(e) => c.lock.handle_reply(now, tag, Err(e)),
                    }
                }
                Output::Outcome(outcome) => self.outcome(i, now, outcome),
            }
        }
    }

    fn outcome(&mut self, i: usize, now: Instant, outcome: Outcome) {
        let c = &mut self.contenders[i];
        match outcome {
            Outcome::Acquired { node, .. } => {
                c.acquired += 1;
                c.holding = Some((now, node));
                // Mostly short holds; some outlast a session timeout, so that a holder cut
                // off meanwhile must stop relying on the lock before its session expires.
                let hold = if c.next(5) == 0 {
                    3000 + c.next(5000)
                } else {
                    c.next(1500)
                };
                c.release_at = Some(now + Duration::from_millis(hold));
            }
            Outcome::Suspended | Outcome::Lost => {
                if outcome == Outcome::Lost {
                    c.lost += 1;
                } else {
                    c.suspended += 1;
                }
                if let Some((from, node)) = c.holding.take() {
                    self.beliefs.push((i, node, from, now));
                }
                if c.lock.is_done() {
                    let pause = c.next(200);
                    c.next_try = Some(now + Duration::from_millis(pause));
                }
            }
            Outcome::Resumed => {
                // Back on the same session: the node is still ours. A new belief begins.
                if let Some(node) = c.lock.node() {
                    c.holding = Some((now, node.to_string()));
                }
            }
            Outcome::Released | Outcome::Failed(_) => {
                let pause = c.next(200);
                c.next_try = Some(now + Duration::from_millis(pause));
            }
            Outcome::TimedOut => {}
            // Asked to let go: the holder does, at once.
            Outcome::RevocationRequested => {
                if c.holding.is_some() {
                    c.revoked += 1;
                    c.release_at = Some(now);
                }
            }
        }
    }

    /// The revoker's side: list the lock, ask the first contender to let go.
    fn revoke(&mut self) {
        let Some(r) = self.revoker.as_mut() else {
            return;
        };
        let now = self.sim.now();
        if now < self.faults_until && now >= r.next && r.listing.is_none() {
            r.next = now + Duration::from_millis(700);
            let list = Request::GetChildren(GetChildrenRequest {
                path: DIR.into(),
                watch: false,
            });
            r.listing = self.sim.submit(r.client, list).ok();
        }
        while let Some(event) = self.sim.poll_event(r.client) {
            let Event::Complete { id, result, .. } = event else {
                continue;
            };
            if r.listing != Some(id) {
                continue;
            }
            r.listing = None;
            let Ok(Response::GetChildren(list)) = result else {
                continue;
            };
            let first = list
                .children
                .iter()
                .filter_map(|c| Some((zk_recipes::lock::order_of(c)?, c)))
                .min();
            if let Some((_, name)) = first {
                let ask = Request::SetData(SetDataRequest {
                    path: format!("{DIR}/{name}"),
                    data: bytes::Bytes::from_static(zk_recipes::lock::REVOKE_MESSAGE),
                    version: -1,
                });
                if self.sim.submit(r.client, ask).is_ok() {
                    r.asked += 1;
                }
            }
        }
    }

    /// Delivers the session's events to the machine.
    fn feed(&mut self, i: usize) {
        let now = self.sim.now();
        loop {
            let client = self.contenders[i].client;
            let Some(event) = self.sim.poll_event(client) else {
                break;
            };
            let session_id = self.sim.session(client).session_id();
            let c = &mut self.contenders[i];
            match event {
                Event::Complete { id, result, .. } => {
                    if let Some(tag) = c.tags.remove(&id) {
                        c.lock.handle_reply(now, tag, result);
                    }
                }
                Event::Watch(w) => {
                    if let Some(tag) = c.watches.get(&w.watch).copied() {
                        c.lock.handle_watch(now, tag, &w);
                    }
                }
                Event::App(state) => c.lock.handle_state(now, state, session_id),
                Event::State { .. } => {}
            }
            self.pump(i);
        }
    }

    /// The application's side: start acquisitions, cancel some, release held locks.
    fn act(&mut self, i: usize, acquiring: bool) {
        let now = self.sim.now();
        let client = self.contenders[i].client;
        let session_id = self.sim.session(client).session_id();
        let c = &mut self.contenders[i];
        if acquiring && c.lock.is_done() && c.next_try.is_some_and(|t| now >= t) {
            c.next_try = None;
            let wait = 100 + c.next(1500);
            c.lock
                .acquire(now, session_id, Some(now + Duration::from_millis(wait)));
        } else if c.release_at.is_some_and(|t| now >= t) {
            c.release_at = None;
            if let Some((from, node)) = c.holding.take() {
                self.beliefs.push((i, node, from, now));
            }
            c.lock.release(now);
        } else if c.holding.is_none() && !c.lock.is_done() && c.next(400) == 0 {
            // Give up mid-acquisition, at whatever step it is.
            c.cancelled += 1;
            c.lock.release(now);
        }
        c.lock.handle_timeout(now);
        self.pump(i);
    }

    fn run(&mut self, steps: usize) {
        let mut next_fault = self.sim.now() + Duration::from_millis(200);
        for _ in 0..steps {
            let now = self.sim.now();
            let acquiring = now < self.faults_until + Duration::from_secs(5);
            if now < self.faults_until && now >= next_fault {
                let n = self.contenders.len() as u64;
                // Half the time, hit whoever holds the lock: that is where safety is at stake.
                let holders: Vec<ClientId> = self
                    .contenders
                    .iter()
                    .filter(|c| c.holding.is_some())
                    .map(|c| c.client)
                    .collect();
                let holder = holders.first().copied();
                let pick = self.contenders[0].next(12);
                let fault = match (holder, pick) {
                    // The holder's link fails: lost replies, resets, a silent link, or a
                    // client cut off for longer than its session (the server expires it
                    // while the client, suspended, no longer relies on the lock).
                    (Some(h), 0..=1) => Fault::LoseNextReply(h),
                    (Some(h), 2) => Fault::Reset(h),
                    (Some(h), 3) => Fault::BlackHole(h),
                    (Some(h), 4) => {
                        let back = 1000 + self.contenders[0].next(5000);
                        self.sim
                            .fault_after(Duration::from_millis(back), Fault::Rejoin(h));
                        Fault::Isolate(h)
                    }
                    // Anyone else: lost replies (to creates, deletes, listings) and
                    // expiries by the server, whatever step they are at. (A holder's
                    // session expired by force, with no silence first, is left out: no
                    // client can hear of it before the server acts on it, which is what
                    // the fencing token is for.)
                    (_, 5..=7) => {
                        let other = ClientId(self.contenders[0].next(n) as usize);
                        Fault::LoseNextReply(other)
                    }
                    (_, 8) => {
                        let other = ClientId(self.contenders[0].next(n) as usize);
                        // Readers hold it together: spare every holder.
                        if holders.contains(&other) {
                            Fault::Reset(other)
                        } else {
                            Fault::ExpireSession(other)
                        }
                    }
                    _ => self.sim.random_fault(),
                };
                self.sim.fault(fault);
                let gap = 50 + self.contenders[0].next(400);
                next_fault = now + Duration::from_millis(gap);
            }
            for i in 0..self.contenders.len() {
                self.act(i, acquiring);
                self.feed(i);
            }
            self.revoke();
            if !self.sim.step() {
                // Nothing scheduled: let a millisecond pass.
                self.sim.run_for(Duration::from_millis(1));
            }
        }
    }

    fn quiet(&self) -> bool {
        self.contenders.iter().all(|c| c.lock.is_done())
    }
}

fn check(seed: u64, lag: bool) -> Stats {
    let mut w = World::new(seed, 3, lag);
    w.run(60_000);
    // Faults are over: let everything settle, then release whatever is still held.
    let deadline = w.sim.now() + Duration::from_secs(60);
    while !w.quiet() && w.sim.now() < deadline {
        for i in 0..w.contenders.len() {
            let now = w.sim.now();
            let c = &mut w.contenders[i];
            if let Some((from, node)) = c.holding.take() {
                w.beliefs.push((i, node, from, now));
            }
            c.lock.release(now);
            c.lock.handle_timeout(now);
            w.pump(i);
            w.feed(i);
        }
        if !w.sim.step() {
            w.sim.run_for(Duration::from_millis(1));
        }
    }
    let report = || w.sim.render_history();
    assert!(
        w.quiet(),
        "seed {seed}: the machines never settled\n{}",
        report()
    );

    // Safety on the server's history.
    let shared = sim_support::judge_lock(seed, &w.sim, DIR, &w.beliefs);

    // Nothing left behind once every contender released.
    let probe = w.sim.add_client(|c| c);
    sim_support::sync(&mut w.sim, probe, DIR);
    let left = w.sim.call(
        probe,
        Request::GetChildren(GetChildrenRequest {
            path: DIR.into(),
            watch: false,
        }),
        Duration::from_secs(30),
    );
    match left {
        Some(Ok(Response::GetChildren(r))) => {
            assert!(
                r.children.is_empty(),
                "seed {seed}: left behind {:?}\n{}",
                r.children,
                w.sim.render_history()
            )
        }
        Some(Err(zk_proto::session::Error::Server(zk_proto::ErrorCode::NoNode))) => {}
        other => panic!("seed {seed}: listing the lock failed: {other:?}"),
    }
    assert!(
        w.contenders.iter().any(|c| c.acquired > 0),
        "seed {seed}: nobody ever got the lock"
    );
    Stats {
        acquired: w.contenders.iter().map(|c| c.acquired as usize).sum(),
        suspended: w.contenders.iter().map(|c| c.suspended as usize).sum(),
        lost: w.contenders.iter().map(|c| c.lost as usize).sum(),
        cancelled: w.contenders.iter().map(|c| c.cancelled as usize).sum(),
        revoked: w.contenders.iter().map(|c| c.revoked as usize).sum(),
        asked: w.revoker.as_ref().map_or(0, |r| r.asked as usize),
        lost_replies: w
            .sim
            .history()
            .iter()
            .filter(|r| matches!(r.what, Happened::Fault(Fault::LoseNextReply(_))))
            .count(),
        beliefs: w.beliefs.len(),
        faults: w
            .sim
            .history()
            .iter()
            .filter(|r| format!("{:?}", r.what).starts_with("Fault"))
            .count(),
        nodes: sim_support::lifetimes(&w.sim, &format!("{DIR}/")).len(),
        shared,
    }
}

#[derive(Debug, Default)]
struct Stats {
    acquired: usize,
    suspended: usize,
    lost: usize,
    cancelled: usize,
    /// Holds given up on a revocation request, and requests sent.
    revoked: usize,
    asked: usize,
    lost_replies: usize,
    beliefs: usize,
    faults: usize,
    nodes: usize,
    /// Times two readers held the lock at once.
    shared: usize,
}

sim_support::tally!(
    Stats: acquired, suspended, lost, cancelled, revoked, asked, lost_replies, beliefs, faults,
    nodes, shared,
);

#[test]
fn the_lock_holds_under_faults_and_cancellation() {
    campaign(false);
}

/// The same on a 3-server ensemble whose followers lag: a create whose reply was lost can
/// land after the contender read the children on a member that had not applied it.
#[test]
fn the_lock_holds_with_lagging_followers() {
    campaign(true);
}

fn campaign(lag: bool) {
    let (seeds, total) = sim_support::campaign("LOCK", 200, |seed| check(seed, lag));
    // The schedules must exercise the lock, not idle past it.
    assert!(total.acquired >= seeds as usize * 5, "{total:?}");
    assert!(total.faults >= seeds as usize * 5, "{total:?}");
    // Cancellations and lost replies are what the machine is for: they must happen.
    assert!(total.cancelled >= seeds as usize / 4, "{total:?}");
    // Revocable holders hear the requests and let go.
    if seeds >= 5 {
        assert!(total.revoked > 0 && total.asked > 0, "{total:?}");
    }
    assert!(total.lost_replies >= seeds as usize * 5, "{total:?}");
    // Readers share: a read/write schedule where they never did would prove little.
    if seeds >= 4 {
        assert!(total.shared > 0, "{total:?}");
    }
}
