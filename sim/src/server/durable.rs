//! What a server keeps in its data directory, so a restart finds its tree and sessions
//! again: the model writes it as one snapshot (the TCP front writes it before the replies
//! of a write go out) and starts from it.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use zk_proto::codec::jute;
use zk_proto::codec::{Jute, Origin, Writer};
use zk_proto::records::Acl;

use super::Ensemble;
use crate::config::Config;
use crate::tree::Persisted;

/// The first bytes of a snapshot, with its format's version.
const MAGIC: &[u8] = b"zk-sim snapshot 1\n";

/// Why a snapshot cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Not a zk-sim snapshot (or one of another format version).
    #[error("not a zk-sim snapshot of this version; move the data directory aside")]
    NotASnapshot,
    /// Cut short or damaged.
    #[error("the snapshot is damaged ({0}); move the data directory aside")]
    Damaged(&'static str),
}

fn damaged<E>(what: &'static str) -> impl Fn(E) -> SnapshotError {
    move |_| SnapshotError::Damaged(what)
}

impl Ensemble {
    /// The tree, the sessions and the last zxid as a snapshot: what a server restarted
    /// from its data directory finds again ([`Ensemble::restore`]).
    pub fn snapshot(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(MAGIC);
        let mut w = Writer::new(&mut buf);
        w.long(self.zxid);
        let sessions = &self.sessions.sessions;
        w.int(sessions.len() as i32);
        for (id, s) in sessions {
            w.long(*id);
            w.long(s.timeout_ms as i64);
        }
        let nodes = self.tree.nodes_for_snapshot();
        w.int(nodes.len() as i32);
        for (path, node) in nodes {
            w.string(&path);
            w.buffer(&node.data);
            w.int(node.acl.len() as i32);
            for acl in node.acl.iter() {
                acl.write(&mut w);
            }
            let st = &node.stat;
            for v in [
                st.czxid,
                st.mzxid,
                st.ctime,
                st.mtime,
                st.ephemeral_owner,
                st.pzxid,
            ] {
                w.long(v);
            }
            for v in [st.version, st.cversion, st.aversion] {
                w.int(v);
            }
        }
        buf.freeze()
    }

    /// A model started at `now` from `snapshot` ([`Ensemble::snapshot`]), as a server
    /// restarted from its data directory: the tree and last zxid as they were, every
    /// session alive again with its whole timeout to reconnect in.
    pub fn restore(
        config: Config,
        snapshot: &[u8],
        now: Instant,
    ) -> Result<Ensemble, SnapshotError> {
        let body = snapshot
            .strip_prefix(MAGIC)
            .ok_or(SnapshotError::NotASnapshot)?;
        let mut e = Ensemble::new(config, now);
        let (i, zxid) = jute::long(body).map_err(damaged("zxid"))?;
        let (mut i, count) = jute::int(i).map_err(damaged("session count"))?;
        let ms = e.ms(now);
        for _ in 0..count.max(0) {
            let (rest, id) = jute::long(i).map_err(damaged("session"))?;
            let (rest, timeout) = jute::long(rest).map_err(damaged("session"))?;
            e.sessions.add(id, timeout.max(0) as u64, 0, false, ms);
            i = rest;
        }
        let (mut i, count) = jute::int(i).map_err(damaged("node count"))?;
        for _ in 0..count.max(0) {
            let (rest, path) = jute::string(i).map_err(damaged("path"))?;
            let (rest, data) = jute::raw_buffer("data", rest).map_err(damaged("data"))?;
            let data = match data {
                None => jute::null(),
                Some(d) => Bytes::copy_from_slice(d),
            };
            let (mut rest, acls) = jute::int(rest).map_err(damaged("acl count"))?;
            let mut acl = Vec::new();
            for _ in 0..acls.max(0) {
                let (r, a) = Acl::read(Origin::copied(), rest).map_err(damaged("acl"))?;
                acl.push(a);
                rest = r;
            }
            let mut longs = [0i64; 6];
            for v in &mut longs {
                let (r, x) = jute::long(rest).map_err(damaged("stat"))?;
                *v = x;
                rest = r;
            }
            let mut ints = [0i32; 3];
            for v in &mut ints {
                let (r, x) = jute::int(rest).map_err(damaged("stat"))?;
                *v = x;
                rest = r;
            }
            let stat = Persisted {
                czxid: longs[0],
                mzxid: longs[1],
                ctime: longs[2],
                mtime: longs[3],
                ephemeral_owner: longs[4],
                pzxid: longs[5],
                version: ints[0],
                cversion: ints[1],
                aversion: ints[2],
            };
            e.tree.restore_node(&path, data, acl, stat);
            i = rest;
        }
        e.zxid = zxid;
        e.tree.last_zxid = zxid;
        Ok(e)
    }
}
