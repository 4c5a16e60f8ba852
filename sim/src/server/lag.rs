//! Followers that lag ([`Config::follower_lag`](crate::Config::follower_lag)).
//!
//! The leader applies a transaction when it commits it, to the tree every other part of the
//! model works on. Each other member keeps a replica of that tree and applies the same
//! transactions later, after a delay drawn from the configuration's seed, in zxid order, as
//! a follower's `CommitProcessor` does:
//!
//! - reads on a member are served from its replica, so they can miss writes another member
//!   already answered;
//! - a write sent to a member is answered once that member applied it, and the reads its
//!   session sent after the write wait behind it (a session sees its own writes);
//! - `sync` is answered once the member applied everything committed when it arrived;
//! - watches live in the replica of the member their connection is on, and fire when it
//!   applies the change;
//! - a client that has seen a later zxid than a member applied is refused by it;
//! - an election, or a member's restart, brings every member up to the leader.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::OpCode;

use super::prep::TxnOp as Prepared;
use super::{ConnId, Ensemble, ServerState};
use crate::tree::{DataTree, Notification};

/// What a committed transaction does to a member's tree.
#[derive(Debug)]
pub(crate) enum Effect {
    /// The operations of one write, or of a multi, applied together.
    Ops {
        /// The wall-clock time the leader gave them.
        time: i64,
        /// The operations.
        ops: Vec<Prepared>,
    },
    /// A session ended: these ephemeral nodes of it go.
    CloseSession { session: i64, deleted: Vec<String> },
    /// A transaction that changes no node: a refused write, a session's creation.
    Nothing,
}

#[derive(Debug)]
struct Pending {
    /// When the member applies it, on the model's elapsed-millisecond clock.
    due: u64,
    zxid: i64,
    effect: Arc<Effect>,
}

/// A member's own copy of the tree, and the committed transactions it has yet to apply.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) tree: DataTree,
    backlog: VecDeque<Pending>,
    /// The latest moment anything in the backlog is due: transactions apply in order.
    last_due: u64,
}

impl Replica {
    /// A member that has applied everything `leader` has.
    pub(crate) fn of(leader: &DataTree) -> Replica {
        Replica {
            tree: leader.replica(),
            backlog: VecDeque::new(),
            last_due: 0,
        }
    }
}

/// What a connection to a lagging member waits for before it hears more.
#[derive(Debug)]
pub(crate) enum Deferred {
    /// A frame (without its length) that goes out once the member applied `zxid`.
    Frame { zxid: i64, frame: Bytes },
    /// A request held behind the session's earlier writes; handled once they are answered.
    Request(Bytes),
    /// The connection closes once everything before it went out.
    Close,
}

/// The lag's bound and its generator.
#[derive(Debug, Clone)]
pub(crate) struct Lag {
    max_ms: u64,
    state: u64,
}

impl Lag {
    pub(crate) fn new(max: Duration, seed: u64) -> Lag {
        Lag {
            max_ms: max.as_millis() as u64,
            state: seed ^ 0x1a66_ed5e_ed00_0001,
        }
    }

    /// A delay from 0 to the bound, inclusive (SplitMix64).
    fn draw(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        z % (self.max_ms + 1)
    }
}

/// Applies one committed transaction to a member's tree.
fn apply(tree: &mut DataTree, zxid: i64, effect: &Effect, notes: &mut Vec<Notification>) {
    match effect {
        Effect::Ops { time, ops } => {
            for op in ops {
                super::apply::apply_op(tree, op, zxid, *time, notes);
            }
        }
        Effect::CloseSession { session, deleted } => {
            for path in deleted {
                tree.delete(path, zxid, notes);
            }
            tree.drop_session(*session);
        }
        Effect::Nothing => {}
    }
    tree.last_zxid = tree.last_zxid.max(zxid);
}

impl Ensemble {
    /// The tree `server` serves: its replica while it lags behind a leader, else the
    /// leader's.
    pub(super) fn served(&self, server: usize) -> &DataTree {
        match self.replicas.get(server) {
            Some(Some(r)) => &r.tree,
            _ => &self.tree,
        }
    }

    /// The last zxid `server` applied.
    pub(super) fn applied(&self, server: usize) -> i64 {
        self.served(server).last_zxid
    }

    /// Forgets every watch of `conn`, on every member.
    pub(super) fn forget_watches(&mut self, conn: ConnId) {
        self.tree.data_watches.remove_conn(conn);
        self.tree.child_watches.remove_conn(conn);
        for r in self.replicas.iter_mut().flatten() {
            r.tree.data_watches.remove_conn(conn);
            r.tree.child_watches.remove_conn(conn);
        }
    }

    /// Every member that lags hears of a transaction the leader committed at `zxid`, to
    /// apply after a delay of its own.
    pub(super) fn replicate(&mut self, now: Instant, zxid: i64, effect: Effect) {
        let Some(lag) = self.lag.as_mut() else {
            return;
        };
        let ms = self.config.elapsed_origin_ms
            + now.saturating_duration_since(self.start).as_millis() as u64;
        let effect = Arc::new(effect);
        for r in self.replicas.iter_mut().flatten() {
            let due = (ms + lag.draw()).max(r.last_due);
            r.last_due = due;
            r.backlog.push_back(Pending {
                due,
                zxid,
                effect: effect.clone(),
            });
        }
    }

    /// When a running member next applies a transaction, in elapsed milliseconds.
    pub(super) fn next_apply(&self) -> Option<u64> {
        self.replicas
            .iter()
            .enumerate()
            .filter(|(i, _)| self.servers[*i].state == ServerState::Up)
            .filter_map(|(_, r)| r.as_ref()?.backlog.front().map(|p| p.due))
            .min()
    }

    /// A running member applies what is due by `now` (everything, with `all`), tells its
    /// watchers, and answers what waited for it.
    pub(super) fn apply_due(&mut self, now: Instant, server: usize, all: bool) {
        let ms = self.ms(now);
        loop {
            if self.servers[server].state != ServerState::Up {
                return;
            }
            let Some(Some(r)) = self.replicas.get_mut(server) else {
                return;
            };
            match r.backlog.front() {
                Some(p) if all || p.due <= ms => {}
                _ => return,
            }
            let Some(p) = r.backlog.pop_front() else {
                return;
            };
            let mut notes = Vec::new();
            apply(&mut r.tree, p.zxid, &p.effect, &mut notes);
            self.notify(notes);
            self.release(now, server);
        }
    }

    /// After an election: every member that runs catches up with the leader, which serves
    /// its own tree; each other member keeps a replica from now on. A frozen member
    /// catches up once it runs again; a stopped one when it starts.
    pub(super) fn resync(&mut self, now: Instant) {
        if self.lag.is_none() {
            return;
        }
        for i in 0..self.servers.len() {
            self.apply_due(now, i, true);
        }
        let leader_tree = &self.tree;
        for (i, slot) in self.replicas.iter_mut().enumerate() {
            if Some(i) == self.leader {
                *slot = None;
                continue;
            }
            match self.servers[i].state {
                ServerState::Up => {
                    let r = slot.get_or_insert_with(|| Replica::of(leader_tree));
                    r.tree.last_zxid = leader_tree.last_zxid;
                }
                ServerState::Down => *slot = Some(Replica::of(leader_tree)),
                ServerState::Paused { .. } => {
                    slot.get_or_insert_with(|| Replica::of(leader_tree));
                }
            }
        }
    }

    /// A member that starts again has caught up with the leader before it serves.
    pub(super) fn restarted(&mut self, server: usize) {
        if self.lag.is_some() && self.leader != Some(server) {
            self.replicas[server] = Some(Replica::of(&self.tree));
        }
    }

    /// Whether a request on `conn` waits behind the session's earlier writes on a lagging
    /// member: reads do; writes, `sync` and the session's close go to the leader at once,
    /// and their answers queue up in order.
    pub(super) fn holds(&self, conn: ConnId, op: OpCode) -> bool {
        if self.replaying == Some(conn) || super::apply::goes_to_leader(op) {
            return false;
        }
        self.conns.get(&conn).is_some_and(|c| {
            !c.waiting.is_empty() && matches!(self.replicas.get(c.server), Some(Some(_)))
        })
    }

    /// Whether a frame for `conn` that needs zxid `zxid` applied must wait.
    pub(super) fn must_wait(&self, conn: ConnId, zxid: i64) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        if !matches!(self.replicas.get(c.server), Some(Some(_))) {
            return false;
        }
        (self.replaying != Some(conn) && !c.waiting.is_empty()) || zxid > self.applied(c.server)
    }

    /// Queues what `conn` waits for.
    pub(super) fn defer(&mut self, conn: ConnId, what: Deferred) {
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.closed
        {
            c.waiting.push_back(what);
        }
    }

    /// The connection closes after what it waits for, or now.
    pub(super) fn close_after_replies(&mut self, conn: ConnId) {
        if self.conns.get(&conn).is_some_and(|c| !c.waiting.is_empty()) {
            self.defer(conn, Deferred::Close);
        } else {
            self.close(conn);
        }
    }

    /// Sends what the connections of `server` waited for, now that it applied more.
    fn release(&mut self, now: Instant, server: usize) {
        let waiting: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.server == server && !c.waiting.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for conn in waiting {
            self.release_conn(now, conn);
        }
    }

    fn release_conn(&mut self, now: Instant, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.closed {
                c.waiting.clear();
                return;
            }
            let applied = match self.replicas.get(c.server) {
                Some(Some(r)) => r.tree.last_zxid,
                _ => self.tree.last_zxid,
            };
            match c.waiting.front() {
                None => return,
                Some(Deferred::Frame { zxid, .. }) if *zxid > applied => return,
                _ => {}
            }
            match c.waiting.pop_front() {
                Some(Deferred::Frame { frame, .. }) => {
                    self.send_reply(conn, |b| b.extend_from_slice(&frame))
                }
                Some(Deferred::Request(frame)) => {
                    self.replaying = Some(conn);
                    self.handle_request(now, conn, frame);
                    self.replaying = None;
                }
                Some(Deferred::Close) => {
                    self.close(conn);
                    return;
                }
                None => return,
            }
        }
    }
}
