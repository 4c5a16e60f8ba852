//! Which servers: read-only probing, the ensemble config, moving after a host-list change.

use std::time::Instant;

use super::core::*;
use super::error::{Disconnect, Error};
use super::event::{Action, ProbeResult};
use super::rng::Rng;
use super::state::SessionState;
use crate::consts::OpCode;
use crate::hosts::{HostAddr, HostList};
use crate::records::Request;

impl Session {
    pub(super) fn start_probe(&mut self, now: Instant) {
        let Some(p) = self.probing.as_mut() else {
            return;
        };
        let current = match self.conn {
            Conn::Open { host, .. } => host,
            _ => return,
        };
        let n = self.hosts.len();
        if n < 2 {
            self.probing = None;
            return;
        }
        let mut host = p.next_host % n;
        if host == current {
            host = (host + 1) % n;
        }
        p.next_host = (host + 1) % n;
        let deadline = now + PROBE_TIMEOUT;
        p.in_flight = Some((host, deadline));
        self.actions.push_back(Action::Probe {
            host,
            addr: self.hosts[host].clone(),
            deadline,
        });
    }

    /// Reads the ensemble configuration with a watch, for a session that follows it.
    pub(super) fn request_config(&mut self, now: Instant) {
        if !self.carrying() || self.closing.is_some() {
            return;
        }
        let xid = self.take_xid();
        Request::GetConfig { watch: true }.encode_frame(xid, "", &mut self.link.out);
        self.link.pending.push_back(Pending {
            xid,
            op: OpCode::GetData,
            sent: Sent::Config,
            at: now,
        });
        self.sent(now);
    }

    /// Applies a new ensemble configuration to the host list, once per version. Data that
    /// names no client address (servers with a static `clientPort`) changes nothing.
    pub(super) fn apply_config(&mut self, now: Instant, data: &[u8]) {
        let Ok(config) = crate::ensemble::EnsembleConfig::parse(data) else {
            return;
        };
        if self.config_version == Some(config.version) {
            return;
        }
        self.config_version = Some(config.version);
        if let Some(hosts) = config
            .connect_string()
            .and_then(|c| HostList::parse(&c).ok())
        {
            self.update_hosts(now, hosts);
        }
    }

    /// Replaces the host list, as after a reconfiguration (the Java client's
    /// `updateServerList`), and spreads clients over the new list: a session whose server
    /// left moves to another one; when servers were added, a session moves to one of the
    /// new servers with the probability that evens the load (1 - old/new); otherwise it
    /// stays. Returns whether the session will move.
    ///
    /// A move is gentle: requests already sent get their replies first (new ones wait, for
    /// at most the read timeout), then the connection is closed and the session resumes on
    /// the chosen server with [`Disconnect::Rebalance`]. The application view stays
    /// Connected through a move that succeeds. The chroot stays as it was; a chroot in
    /// `hosts` is ignored.
    pub fn update_hosts(&mut self, now: Instant, hosts: HostList) -> bool {
        let mut list = hosts;
        if self.config.shuffle {
            list.shuffle(self.rng.next_u64());
        }
        let new: Vec<HostAddr> = list.hosts().to_vec();
        if new.is_empty() || new == self.hosts {
            return false;
        }
        let old_len = self.hosts.len();
        // Attached: connected or connecting, possibly to a host that already left the list.
        let attached = !matches!(self.conn, Conn::Idle { .. });
        let current = self.current_host().and_then(|h| self.hosts.get(h).cloned());
        let index_of = |addr: &HostAddr| new.iter().position(|h| h == addr);
        let (kept, added): (Vec<usize>, Vec<usize>) =
            (0..new.len()).partition(|&i| self.hosts.contains(&new[i]));
        let here = current.as_ref().and_then(index_of);
        let pick = |rng: &mut Rng, from: &[usize]| from[rng.below(from.len() as u64) as usize];
        // Where this session should be: stay (None) or move to a host of the new list.
        let target = match here {
            Some(_) if new.len() <= old_len => None,
            Some(_) => {
                // Servers were added: move with the probability that evens the load.
                let stay_below = old_len as u64 * 1_000_000 / new.len() as u64;
                (self.rng.below(1_000_000) >= stay_below && !added.is_empty())
                    .then(|| pick(&mut self.rng, &added))
            }
            None if !attached => None,
            None if added.is_empty() => Some(pick(&mut self.rng, &kept)),
            None if kept.is_empty() || new.len() > old_len => Some(pick(&mut self.rng, &added)),
            None => {
                // Servers left, this one among them: of the clients that must move, send
                // to the remaining old servers the share that evens the load.
                let (o, m, n) = (kept.len() as u64, new.len() as u64, old_len as u64);
                let p_old = (o * (n - m)) * 1_000_000 / (m * (n - o)).max(1);
                let to_old = self.rng.below(1_000_000) < p_old;
                Some(pick(&mut self.rng, if to_old { &kept } else { &added }))
            }
        };
        self.hosts = new;
        self.hosts_version += 1;
        self.host_failures.clear();
        self.probing = None;
        self.moving = None;
        // The current connection's index in the new list; a host that left has none (an
        // index past the list, which every lookup treats as absent).
        match &mut self.conn {
            Conn::Opening { host, .. } | Conn::Handshake { host, .. } | Conn::Open { host, .. } => {
                *host = here.unwrap_or(usize::MAX);
            }
            Conn::Idle { .. } => {}
        }
        self.next_host = here.map_or(0, |i| (i + 1) % self.hosts.len());
        let Some(target) = target else {
            return false;
        };
        match self.conn {
            Conn::Open { .. } => {
                self.moving = Some((target, now + self.read_timeout()));
                if self.in_flight() == 0 {
                    self.move_now(now);
                }
            }
            Conn::Opening { .. } | Conn::Handshake { .. } => {
                // Not connected yet: give up this attempt and try the chosen host.
                self.drop_connection(Disconnect::Rebalance, true, Error::ConnectionLoss);
                self.connect_to(now, target);
                self.next_host = (target + 1) % self.hosts.len();
            }
            Conn::Idle { .. } => {}
        }
        true
    }

    /// Leaves the open connection for the host chosen by [`Session::update_hosts`].
    pub(super) fn move_now(&mut self, now: Instant) {
        let Some((target, _)) = self.moving.take() else {
            return;
        };
        let closing = self.closing.is_some();
        if closing || !matches!(self.conn, Conn::Open { .. }) || target >= self.hosts.len() {
            return;
        }
        self.drop_connection(Disconnect::Rebalance, true, Error::ConnectionLoss);
        self.planned_move = true;
        self.set_state(SessionState::Connecting, Some(Disconnect::Rebalance));
        self.failures = 0;
        self.connect_to(now, target);
        self.next_host = (target + 1) % self.hosts.len();
    }

    /// The answer to an [`Action::Probe`]. A read-write server ends the read-only connection
    /// and the session moves to that server.
    pub fn handle_probe_result(&mut self, now: Instant, host: usize, result: ProbeResult) {
        let Some(p) = self.probing.as_mut() else {
            return;
        };
        if p.in_flight.map(|(h, _)| h) != Some(host) {
            return;
        }
        p.in_flight = None;
        if result == ProbeResult::ReadWrite && host < self.hosts.len() {
            self.drop_connection(
                Disconnect::ReadWriteServerFound,
                true,
                Error::ConnectionLoss,
            );
            self.set_state(
                SessionState::Connecting,
                Some(Disconnect::ReadWriteServerFound),
            );
            self.connect_to(now, host);
            self.next_host = (host + 1) % self.hosts.len();
        } else {
            p.next_at = now + p.interval;
            p.interval = (p.interval * 2).min(PROBE_MAX);
        }
    }
}
