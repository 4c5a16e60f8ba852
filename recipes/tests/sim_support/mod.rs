//! What the recipe simulations share: a small seeded generator per contender, node
//! lifetimes from the server's history, and the sessions the server expired by force.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Instant;

use zk_sim::TxnOp;
use zk_sim::harness::{Fault, Happened, Simulation};

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
