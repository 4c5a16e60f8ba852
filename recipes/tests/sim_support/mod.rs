//! What the recipe simulations share: a small seeded generator per contender, node
//! lifetimes from the server's history, and the sessions the server expired by force.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use zk_proto::records::{GetChildrenRequest, Request, Response};
use zk_sim::harness::{ClientId, Fault, Happened, SimConfig, Simulation};
use zk_sim::{Config, TxnOp};

/// A xorshift generator: each contender's own, so schedules replay from the seed.
#[derive(Debug, Clone, Copy)]
pub struct Rng(pub u64);

impl Rng {
    /// A generator for contender `i` of `seed`.
    pub fn new(seed: u64, i: usize) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64 + 1))
    }

    /// A number below `below` (0 when `below` is 0).
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }
}

/// Every node under `prefix` the server created, with when it was created and deleted
/// (by a delete or with its session), from the server's history.
pub fn lifetimes(sim: &Simulation, prefix: &str) -> BTreeMap<String, (Instant, Option<Instant>)> {
    let mut alive: BTreeMap<String, (Instant, Option<Instant>)> = BTreeMap::new();
    for txn in sim.server_history() {
        match &txn.op {
            TxnOp::Create { path, .. } if path.starts_with(prefix) => {
                alive.insert(path.clone(), (txn.time, None));
            }
            TxnOp::Delete { path } => {
                if let Some(life) = alive.get_mut(path) {
                    life.1.get_or_insert(txn.time);
                }
            }
            TxnOp::CloseSession { deleted, .. } => {
                for path in deleted {
                    if let Some(life) = alive.get_mut(path) {
                        life.1.get_or_insert(txn.time);
                    }
                }
            }
            _ => {}
        }
    }
    alive
}

/// The clients whose sessions the server expired by force (not after silence), and when:
/// the one case where a client cannot stop relying on its node before the server deletes
/// it. It hears of it one message later.
pub fn forced_expiries(sim: &Simulation) -> Vec<(usize, Instant)> {
    let start = sim.now() - sim.elapsed();
    sim.history()
        .iter()
        .filter_map(|r| match &r.what {
            Happened::Fault(Fault::ExpireSession(c)) => Some((c.0, start + r.at)),
            _ => None,
        })
        .collect()
}

/// A fault aimed at a lock, injected into `sim`: half the time at its first holder in
/// `holders` (a lost reply, a reset, a silent link, isolation past the session timeout),
/// otherwise lost replies and expiries among the `n` contenders, or any fault. A holder's
/// session expired by force, with no silence first, is the one case no client can hear of
/// before the server acts on it: with `expire_holders` it happens (guarded writes must
/// hold even then); without, a holder picked for it is reset instead (the fencing token's
/// case, which beliefs cannot cover).
pub fn lock_fault(
    sim: &mut Simulation,
    rng: &mut Rng,
    holders: &[ClientId],
    n: u64,
    expire_holders: bool,
) {
    let holder = holders.first().copied();
    let spare = |c: ClientId| {
        if holders.contains(&c) && !expire_holders {
            Fault::Reset(c)
        } else {
            Fault::ExpireSession(c)
        }
    };
    let f = match (holder, rng.next(13)) {
        (Some(h), 0..=1) => Fault::LoseNextReply(h),
        (Some(h), 2) => Fault::Reset(h),
        (Some(h), 3) => Fault::BlackHole(h),
        (Some(h), 4) => {
            let back = 1000 + rng.next(5000);
            sim.fault_after(Duration::from_millis(back), Fault::Rejoin(h));
            Fault::Isolate(h)
        }
        (Some(h), 5) => spare(h),
        (_, 6..=8) => Fault::LoseNextReply(ClientId(rng.next(n) as usize)),
        (_, 9) => spare(ClientId(rng.next(n) as usize)),
        _ => sim.random_fault(),
    };
    sim.fault(f);
}

/// How late a lagging follower may apply a transaction, at most.
pub const LAG: Duration = Duration::from_millis(300);

/// The model a schedule runs on: a standalone server, or with `lag` a 3-server ensemble
/// whose followers each apply every transaction up to [`LAG`] after the leader (from the
/// seed), so that a client that reconnects can land on a member that has not seen its
/// last write, or reads there what another member already changed.
pub fn sim_config(seed: u64, lag: bool) -> SimConfig {
    if !lag {
        return SimConfig::new(seed);
    }
    SimConfig::new(seed).ensemble(
        Config::ensemble(3)
            .tick(Duration::from_millis(200))
            .extended_types(true)
            .election_time(Duration::from_millis(300))
            .follower_lag(LAG, seed),
    )
}

thread_local! {
    static LAGGING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The model for a schedule of the test running on this thread: [`sim_config`] with lag
/// inside [`with_lagging_followers`], standalone otherwise.
pub fn model(seed: u64) -> SimConfig {
    sim_config(seed, LAGGING.with(|l| l.get()))
}

/// Runs a simulation test with every schedule on a 3-server ensemble whose followers lag
/// (see [`sim_config`]), wherever it asks for [`model`].
pub fn with_lagging_followers(test: impl FnOnce()) {
    LAGGING.with(|l| l.set(true));
    test();
    LAGGING.with(|l| l.set(false));
}

/// How many schedules to run: `var` from the environment, else `default`.
pub fn seeds(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How many faults the schedule injected.
pub fn faults(sim: &Simulation) -> usize {
    sim.history()
        .iter()
        .filter(|r| matches!(r.what, Happened::Fault(_)))
        .count()
}

/// A simulation's figures for one schedule, summed over a campaign.
pub trait Tally: Default + std::fmt::Debug {
    /// Adds one schedule's figures.
    fn add(&mut self, other: Self);
}

/// Makes a figures struct a [`Tally`] that sums the named fields.
#[allow(unused_macros)]
macro_rules! tally {
    ($name:ident: $($field:ident),+ $(,)?) => {
        impl sim_support::Tally for $name {
            fn add(&mut self, other: Self) {
                $(self.$field += other.$field;)+
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use tally;

/// Runs `check` on each schedule of a campaign: `ZK_<name>_SIM_SEEDS` of them (else
/// `default`), from seed `ZK_<name>_SIM_FIRST` (else 1). Prints the sum and returns how
/// many schedules ran, with the sum.
pub fn campaign<T: Tally>(name: &str, default: u64, mut check: impl FnMut(u64) -> T) -> (u64, T) {
    let count = seeds(&format!("ZK_{name}_SIM_SEEDS"), default);
    let first = seeds(&format!("ZK_{name}_SIM_FIRST"), 1);
    let mut total = T::default();
    for seed in first..first + count {
        total.add(check(seed));
    }
    eprintln!("{count} schedules: {total:?}");
    (count, total)
}

/// How many replies the simulation lost on purpose.
pub fn lost_replies(sim: &Simulation) -> usize {
    sim.history()
        .iter()
        .filter(|r| matches!(r.what, Happened::Fault(Fault::LoseNextReply(_))))
        .count()
}

/// Brings the probe's server up to the leader, so what the probe reads next is the
/// server's truth and not a lagging member's view; asked again after a fault left over
/// from the schedule.
pub fn sync(sim: &mut Simulation, probe: ClientId, path: &str) {
    for _ in 0..10 {
        let sync = Request::Sync(zk_proto::records::SyncRequest {
            path: path.to_string(),
        });
        if matches!(sim.call(probe, sync, Duration::from_secs(30)), Some(Ok(_))) {
            return;
        }
    }
    panic!("the probe could not sync {path}")
}

/// The children of `path` as a probe client sees them after a [`sync`], asked again after
/// a fault left over from the schedule; empty for a missing node.
pub fn children(sim: &mut Simulation, probe: ClientId, path: &str) -> Vec<String> {
    let mut last = None;
    sync(sim, probe, path);
    for _ in 0..10 {
        let request = Request::GetChildren(GetChildrenRequest {
            path: path.to_string(),
            watch: false,
        });
        match sim.call(probe, request, Duration::from_secs(30)) {
            Some(Ok(Response::GetChildren(r))) => return r.children,
            Some(Err(zk_proto::session::Error::Server(zk_proto::ErrorCode::NoNode))) => {
                return Vec::new();
            }
            other => last = Some(other),
        }
    }
    panic!("listing {path}: {last:?}")
}

/// A belief of holding a lock: contender (its client's index), node, from, until.
pub type Belief = (usize, String, Instant, Instant);

/// Whether two lock nodes exclude each other: unless both are readers'.
fn conflict(a: &str, b: &str) -> bool {
    !(zk_recipes::lock::is_reader(a) && zk_recipes::lock::is_reader(b))
}

fn sequence(path: &str) -> i64 {
    zk_recipes::lock::order_of(path).expect("a lock node")
}

/// Judges lock beliefs on the server's history of the nodes under `dir`: while a contender
/// believed it held a node, the node existed and no lower conflicting node did, so no two
/// conflicting beliefs overlap in server time. A node whose session the server expired by
/// force counts as held only until the deletion the client could not hear of first.
/// Returns how often two readers held at once.
pub fn judge_lock(seed: u64, sim: &Simulation, dir: &str, beliefs: &[Belief]) -> usize {
    let lives = lifetimes(sim, &format!("{dir}/"));
    // Which client asked for each node: the create's path is the node's without its
    // ten-digit sequence number.
    let askers: BTreeMap<String, usize> = sim
        .history()
        .iter()
        .filter_map(|r| match &r.what {
            Happened::Submit {
                client,
                request: Request::Create(c) | Request::Create2(c),
                ..
            } => Some((c.path.clone(), client.0)),
            _ => None,
        })
        .collect();
    let asker = |node: &str| askers.get(&node[..node.len().saturating_sub(10)]).copied();
    let forced = forced_expiries(sim);
    let report = || sim.render_history();
    let news = Duration::from_millis(10);
    let in_server_time = |(who, node, from, until): &Belief| -> (Instant, bool) {
        match lives.get(node).and_then(|l| l.1) {
            Some(d) if forced.contains(&(*who, d)) && *until <= d + news && *from <= d + news => {
                ((*until).min(d), true)
            }
            _ => (*until, false),
        }
    };
    for belief in beliefs {
        let (who, node, from, until) = belief;
        let Some((born, died)) = lives.get(node) else {
            panic!(
                "seed {seed}: client {who} held {node}, never created\n{}",
                report()
            );
        };
        if in_server_time(belief).1 {
            continue;
        }
        assert!(born <= from, "seed {seed}: {node} held before it existed");
        assert!(
            died.is_none_or(|d| d >= *until),
            "seed {seed}: client {who} believed it held {node} until {until:?} but the \
             server deleted it at {died:?}\n{}",
            report()
        );
        // No conflicting lower node of another client at the start of the belief, hence
        // for all of it (later nodes sort after). A lower node of the holder's own (made on
        // a session it gave up on, which the server has not expired yet, and being
        // deleted) keeps every other client out for it.
        for (other, (b, d)) in &lives {
            if other != node
                && asker(other) != Some(*who)
                && conflict(other, node)
                && sequence(other) < sequence(node)
                && *b <= *from
                && d.is_none_or(|d| d > *from)
            {
                panic!(
                    "seed {seed}: client {who} believed it held {node} from {from:?} while \
                     {other} (lower) was alive\n{}",
                    report()
                );
            }
        }
    }
    let mut shared = 0;
    for a in beliefs {
        for b in beliefs {
            if a.0 < b.0 && !conflict(&a.1, &b.1) && a.2 < b.3 && b.2 < a.3 {
                shared += 1;
            }
            if a.0 != b.0 && conflict(&a.1, &b.1) {
                let (a_until, b_until) = (in_server_time(a).0, in_server_time(b).0);
                assert!(
                    a_until <= b.2 || b_until <= a.2,
                    "seed {seed}: two holders at once: {a:?} and {b:?}\n{}",
                    report()
                );
            }
        }
    }
    shared
}
