//! Guarded writes on zk-sim, judged on the server's history: the lock handles and their
//! guards' writes ([`Guard::create`](zk_recipes::handles::Guard::create) and
//! [`Guard::transaction`](zk_recipes::handles::Guard::transaction)) over a driver core per
//! client, as both clients ship them. Each seeded schedule has three contenders that take
//! the lock and write under it, and keep writing whatever their guard says (suspended,
//! lost, or still "held" after the server let the lock go), while the simulation injects
//! faults: lost replies, resets, black holes, isolation past the session timeout, sessions
//! expired by force while they hold the lock (the case no client can hear of in time), and
//! an operator that deletes the holder's lock node behind its back.
//!
//! On the server's history:
//!
//! - every guarded write the server applied was applied while the writer's lock node
//!   existed, belonged to the writer's session and was the lowest node in the lock's
//!   directory: no guarded write landed while another client held the lock;
//! - a write the client was told succeeded is in the history, and one refused with
//!   `NotHeld` is not;
//! - once every task ended, no lock node is left and no machine is still hosted.
//!
//! Odd seeds name nodes as Curator does, even ones as Kazoo does; each connection policy
//! runs a third of the schedules. `ZK_GUARDED_SIM_SEEDS`
//! sets how many schedules run (2,000 by default, and a quarter as many again on a
//! 3-server ensemble whose followers lag).

#[path = "sim_driver/mod.rs"]
mod sim_driver;
#[path = "sim_support/mod.rs"]
mod sim_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sim_driver::{ConnectionPolicy, Flavor, LockState, SimClient, SimDriver};
use zk_client::{CreateOptions, Error};
use zk_proto::ErrorCode;
use zk_proto::records::{Acl, DeleteRequest, GetChildrenRequest, Request, Response};
use zk_proto::session::Error as SessionError;
use zk_sim::TxnOp;
use zk_sim::harness::{ClientId, Simulation};

const DIR: &str = "/glock";
const RES: &str = "/guarded";

/// What became of one guarded write, as its caller heard it.
#[derive(Debug, Clone, PartialEq)]
enum Heard {
    /// Applied: the node created.
    Applied,
    /// Refused: the guard's node was gone. `believed_held` tells whether the guard said
    /// it held the lock when the write was sent (the server caught a stale belief).
    NotHeld { believed_held: bool },
    /// Anything else (connection loss, a dropped call): in doubt.
    InDoubt,
}

type Journal = Arc<Mutex<Vec<(String, Heard)>>>;

/// A guarded write under way.
type Write = std::pin::Pin<Box<dyn std::future::Future<Output = zk_client::Result<()>> + Send>>;

/// The connection policy of a schedule's contenders: every one in turn. Guarded writes
/// must hold under each, `LostOnly` included, whose guards go on saying "held" through
/// a suspension in which the server may hand the lock on.
fn policy_of(seed: u64) -> ConnectionPolicy {
    match seed / 2 % 3 {
        0 => ConnectionPolicy::SuspendedIsLost,
        1 => ConnectionPolicy::SuspendedEnds,
        _ => ConnectionPolicy::LostOnly,
    }
}

/// Creates `path` if it is missing, through whatever faults.
async fn ensure(client: &SimClient, path: &str) {
    let create = zk_client::op::create(
        path,
        Bytes::new(),
        &CreateOptions::persistent(),
        &Acl::open_unsafe(),
    );
    while !matches!(
        client.call(create.request().clone()).await,
        Ok(Ok(_)) | Ok(Err(SessionError::Server(ErrorCode::NodeExists)))
    ) {
        client
            .sleep_until(client.now() + Duration::from_millis(50))
            .await;
    }
}

fn contender(d: &mut SimDriver, seed: u64, i: usize, stop: Instant, journal: Journal) {
    let (_, client) = d.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let flavor = if seed % 2 == 1 {
        Flavor::Curator
    } else {
        Flavor::Kazoo
    };
    let lock = sim_driver::Lock::new(&client, DIR)
        .with_flavor(flavor)
        .with_connection_policy(policy_of(seed));
    let mut rng = sim_support::Rng::new(seed, i);
    d.tasks.spawn(async move {
        ensure(&client, RES).await;
        let mut n = 0;
        while client.now() < stop {
            let wait = Duration::from_millis(100 + rng.next(1500));
            let Ok(Some(guard)) = lock.acquire_timeout(wait).await else {
                client
                    .sleep_until(client.now() + Duration::from_millis(rng.next(200)))
                    .await;
                continue;
            };
            // Write under the lock several times, some of them long after the guard
            // stopped holding: the server's check, not the guard's view, must decide.
            for _ in 0..1 + rng.next(6) {
                let pause = if rng.next(6) == 0 {
                    2000 + rng.next(4000)
                } else {
                    rng.next(400)
                };
                client
                    .sleep_until(client.now() + Duration::from_millis(pause))
                    .await;
                n += 1;
                let name = format!("{RES}/c{i}-{n}");
                let believed_held = guard.state() == LockState::Held;
                let write: Write = if rng.next(3) == 0 {
                    let call = guard
                        .transaction()
                        .create(&name, "", &CreateOptions::persistent())
                        .set_data(RES, name.clone(), None)
                        .commit();
                    Box::pin(async move { call.await.map(drop) })
                } else {
                    let call = guard.create(&name, "", &CreateOptions::persistent());
                    Box::pin(async move { call.await.map(drop) })
                };
                // Now and then the caller drops the write half way.
                let result = if rng.next(8) == 0 {
                    let at = client.now() + Duration::from_millis(rng.next(300));
                    client.until(at, write).await
                } else {
                    Some(write.await)
                };
                let heard = match result {
                    Some(Ok(())) => Heard::Applied,
                    Some(Err(Error::NotHeld { .. })) => Heard::NotHeld { believed_held },
                    _ => Heard::InDoubt,
                };
                journal.lock().unwrap().push((name, heard));
            }
            if rng.next(2) == 0 {
                let _ = guard.release().await;
            } else {
                drop(guard);
            }
            client
                .sleep_until(client.now() + Duration::from_millis(rng.next(200)))
                .await;
        }
    });
}

/// An operator who, now and then, deletes the lock's lowest node: the holder's guard
/// still says it holds until it hears otherwise, and the next contender takes the lock.
fn operator(d: &mut SimDriver, seed: u64, until: Instant) {
    let (_, client) = d.add_client(|c| c.with_session_timeout(Duration::from_secs(4)));
    let mut rng = sim_support::Rng::new(seed, 77);
    d.tasks.spawn(async move {
        while client.now() < until {
            client
                .sleep_until(client.now() + Duration::from_millis(500 + rng.next(2500)))
                .await;
            let list = Request::GetChildren(GetChildrenRequest {
                path: DIR.into(),
                watch: false,
            });
            let Ok(Ok(Response::GetChildren(r))) = client.call(list).await else {
                continue;
            };
            let lowest = r
                .children
                .iter()
                .filter_map(|c| Some((zk_recipes::lock::order_of(c)?, c)))
                .min();
            if let Some((_, name)) = lowest {
                let delete = Request::Delete(DeleteRequest {
                    path: format!("{DIR}/{name}"),
                    version: -1,
                });
                let _ = client.call(delete).await;
            }
        }
    });
}

#[derive(Debug, Default)]
struct Stats {
    applied: usize,
    refused: usize,
    /// Refused by the server's check while the guard still said it held the lock.
    stale_caught: usize,
    /// The same, by connection policy (`SuspendedIsLost`, `SuspendedEnds`, `LostOnly`).
    stale_by_policy: [usize; 3],
    in_doubt: usize,
    faults: usize,
    forced_expiries: usize,
}

/// Replays the server's history: every write under the lock was applied while the lowest
/// lock node was the writer's session's, and was guarded by that node. Returns the nodes
/// the writes created.
fn judge(seed: u64, sim: &Simulation) -> BTreeSet<String> {
    let report = || sim.render_history();
    let prefix = format!("{DIR}/");
    // Lock nodes alive, by path: their owning session.
    let mut alive: BTreeMap<String, i64> = BTreeMap::new();
    let mut written = BTreeSet::new();
    for txn in sim.server_history() {
        let ops: Vec<&TxnOp> = match &txn.op {
            TxnOp::Multi(ops) => ops.iter().collect(),
            op => vec![op],
        };
        let writes = ops.iter().any(
            |op| matches!(op, TxnOp::Create { path, .. } if path.starts_with(&format!("{RES}/"))),
        );
        if writes {
            // Who holds the lock in the server's order: the owner of the lowest node.
            let lowest = alive
                .iter()
                .min_by_key(|(p, _)| zk_recipes::lock::order_of(p))
                .map(|(p, owner)| (p.clone(), *owner));
            assert!(
                lowest
                    .as_ref()
                    .is_some_and(|(_, owner)| *owner == txn.session),
                "seed {seed}: a write under the lock landed at zxid {:#x} for session {:#x} \
                 while the lock was {lowest:?}\n{}",
                txn.zxid,
                txn.session,
                report()
            );
            // And it was guarded by that very node.
            assert!(
                matches!(ops.first(), Some(TxnOp::Check { path })
                    if lowest.as_ref().is_some_and(|(p, _)| p == path)),
                "seed {seed}: the write at zxid {:#x} was not guarded by its lock node\n{}",
                txn.zxid,
                report()
            );
        }
        for op in ops {
            match op {
                TxnOp::Create {
                    path,
                    ephemeral_owner,
                } if path.starts_with(&prefix) => {
                    alive.insert(path.clone(), *ephemeral_owner);
                }
                TxnOp::Create { path, .. } if path.starts_with(&format!("{RES}/")) => {
                    written.insert(path.clone());
                }
                TxnOp::Delete { path } => {
                    alive.remove(path);
                }
                TxnOp::CloseSession { deleted, .. } => {
                    for path in deleted {
                        alive.remove(path);
                    }
                }
                _ => {}
            }
        }
    }
    written
}

fn check(seed: u64) -> Stats {
    let start = Instant::now();
    let mut d = SimDriver::new(Simulation::new(sim_support::model(seed), start));
    let n = 3;
    let faults_until = start + Duration::from_secs(20);
    let stop = faults_until + Duration::from_secs(5);
    let journal: Journal = Arc::new(Mutex::new(Vec::new()));
    for i in 0..n {
        contender(&mut d, seed, i, stop, journal.clone());
    }
    operator(&mut d, seed, faults_until);
    let mut rng = sim_support::Rng::new(seed, 99);
    let settle_by = stop + Duration::from_secs(90);
    let fault = |d: &mut SimDriver, rng: &mut sim_support::Rng| {
        // Who holds the lock in the server's eyes now: the owner of the lowest node.
        let holders: Vec<ClientId> = lowest_owner(&d.sim)
            .and_then(|s| (0..n).find(|i| d.sim.session(ClientId(*i)).session_id() == s))
            .map(ClientId)
            .into_iter()
            .collect();
        sim_support::lock_fault(&mut d.sim, rng, &holders, n as u64, true);
    };
    d.drive(
        seed,
        &mut rng,
        sim_driver::Span {
            faults_until,
            give_up: settle_by,
            spread: 350,
        },
        fault,
        |_, _| {},
    );
    let report = || d.sim.render_history();

    let written = judge(seed, &d.sim);
    let mut stats = Stats::default();
    for (name, heard) in journal.lock().unwrap().iter() {
        match heard {
            Heard::Applied => {
                stats.applied += 1;
                assert!(
                    written.contains(name),
                    "seed {seed}: {name} was reported written but the server never applied it\n{}",
                    report()
                );
            }
            Heard::NotHeld { believed_held } => {
                stats.refused += 1;
                stats.stale_caught += usize::from(*believed_held);
                assert!(
                    !written.contains(name),
                    "seed {seed}: {name} was refused as NotHeld but the server applied it\n{}",
                    report()
                );
            }
            Heard::InDoubt => stats.in_doubt += 1,
        }
    }

    let probe = d.sim.add_client(|c| c);
    let left = sim_support::children(&mut d.sim, probe, DIR);
    assert!(
        left.is_empty(),
        "seed {seed}: left behind {left:?}\n{}",
        d.sim.render_history()
    );
    stats.faults = sim_support::faults(&d.sim);
    stats.forced_expiries = sim_support::forced_expiries(&d.sim).len();
    stats
}

/// The session owning the lowest lock node now, from the server's history.
fn lowest_owner(sim: &Simulation) -> Option<i64> {
    let lives = sim_support::lifetimes(sim, &format!("{DIR}/"));
    let lowest = lives
        .iter()
        .filter(|(_, (_, died))| died.is_none())
        .map(|(p, _)| p)
        .min_by_key(|p| zk_recipes::lock::order_of(p))?
        .clone();
    sim.server_history().iter().find_map(|t| match &t.op {
        TxnOp::Create {
            path,
            ephemeral_owner,
        } if *path == lowest => Some(*ephemeral_owner),
        _ => None,
    })
}

fn campaign(default: u64) {
    let seeds = sim_support::seeds("ZK_GUARDED_SIM_SEEDS", default);
    let first = sim_support::seeds("ZK_GUARDED_SIM_FIRST", 1);
    let mut total = Stats::default();
    for seed in first..first + seeds {
        let s = check(seed);
        total.applied += s.applied;
        total.refused += s.refused;
        total.stale_caught += s.stale_caught;
        total.stale_by_policy[(seed / 2 % 3) as usize] += s.stale_caught;
        total.in_doubt += s.in_doubt;
        total.faults += s.faults;
        total.forced_expiries += s.forced_expiries;
    }
    eprintln!("{seeds} schedules: {total:?}");
    // The schedules must write under the lock, and lose it under the writers' feet.
    assert!(total.applied >= seeds as usize * 5, "{total:?}");
    assert!(total.faults >= seeds as usize * 5, "{total:?}");
    assert!(total.refused >= seeds as usize / 4, "{total:?}");
    if seeds >= 20 {
        // Writers the server stopped though their guard still said "held".
        assert!(total.stale_caught > 0, "{total:?}");
        // LostOnly's guards say "held" through suspensions: the server catches more of
        // their writes than under the default.
        assert!(
            total.stale_by_policy[2] > total.stale_by_policy[0],
            "{total:?}"
        );
        assert!(total.forced_expiries > 0, "{total:?}");
    }
}

#[test]
fn no_guarded_write_lands_while_another_client_holds_the_lock() {
    campaign(2000);
}

/// The same on a 3-server ensemble whose followers lag.
#[test]
fn no_guarded_write_lands_while_another_holds_it_with_lagging_followers() {
    sim_support::with_lagging_followers(|| campaign(500));
}
