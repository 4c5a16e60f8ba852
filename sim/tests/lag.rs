//! Followers that lag (`Config::follower_lag`), driven with raw frames so every reply and
//! notification is seen in the order the model sends it.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zk_proto::codec::{Jute, write_frame};
use zk_proto::consts::{CreateMode, OpCode};
use zk_proto::records::*;
use zk_sim::{Config, ConnId, Ensemble, Output};

const MS: Duration = Duration::from_millis(1);
const LAG: Duration = Duration::from_millis(200);

/// What came out of the model for one connection, in order.
#[derive(Debug, Clone, PartialEq)]
enum Heard {
    Connected {
        session: i64,
    },
    Reply {
        xid: i32,
        zxid: i64,
        err: i32,
        body: Bytes,
    },
    Notification {
        kind: i32,
        path: String,
    },
    Closed,
}

struct Net {
    zk: Ensemble,
    now: Instant,
    heard: Vec<(ConnId, Heard)>,
    /// Connections whose handshake reply is still to come.
    opening: Vec<ConnId>,
}

impl Net {
    fn new(seed: u64) -> Net {
        let now = Instant::now();
        let config = Config::ensemble(3)
            .tick(Duration::from_millis(200))
            .follower_lag(LAG, seed);
        Net {
            zk: Ensemble::new(config, now),
            now,
            heard: Vec::new(),
            opening: Vec::new(),
        }
    }

    fn leader(&self) -> usize {
        self.zk.leader().expect("a leader")
    }

    fn follower(&self, nth: usize) -> usize {
        (0..3)
            .filter(|&s| s != self.leader())
            .nth(nth)
            .expect("two followers")
    }

    fn drain(&mut self) {
        while let Some(out) = self.zk.poll_output() {
            match out {
                Output::Transmit { conn, data } => {
                    let mut rest = data;
                    while rest.len() >= 4 {
                        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                        let frame = rest.slice(4..4 + len);
                        rest = rest.slice(4 + len..);
                        self.frame(conn, frame);
                    }
                }
                Output::Close { conn } => self.heard.push((conn, Heard::Closed)),
            }
        }
    }

    fn frame(&mut self, conn: ConnId, frame: Bytes) {
        if let Some(i) = self.opening.iter().position(|c| *c == conn) {
            self.opening.remove(i);
            let (rsp, _) = ConnectResponse::decode(&frame).expect("a handshake reply");
            self.heard.push((
                conn,
                Heard::Connected {
                    session: rsp.session_id,
                },
            ));
            return;
        }
        let (h, used) = ReplyHeader::decode(&frame).expect("a reply header");
        let body = frame.slice(used..);
        if h.xid == -1 {
            let (ev, _) = WatcherEvent::decode(&body).expect("a notification");
            self.heard.push((
                conn,
                Heard::Notification {
                    kind: ev.kind,
                    path: ev.path,
                },
            ));
        } else {
            self.heard.push((
                conn,
                Heard::Reply {
                    xid: h.xid,
                    zxid: h.zxid,
                    err: h.err,
                    body,
                },
            ));
        }
    }

    /// Lets `d` pass, waking the model at each of its deadlines.
    fn pass(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.zk.poll_timeout().filter(|t| *t <= end) {
            self.now = t.max(self.now);
            self.zk.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
        self.zk.handle_timeout(self.now);
        self.drain();
    }

    fn open(&mut self, server: usize, last_zxid_seen: i64) -> ConnId {
        let conn = self
            .zk
            .accept(self.now, server, "127.0.0.1")
            .expect("accepted");
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen,
            timeout: 30_000,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: false,
        };
        let mut buf = BytesMut::new();
        write_frame(&mut buf, |b| req.encode(b));
        self.opening.push(conn);
        self.zk.handle_input(self.now, conn, &buf);
        self.drain();
        conn
    }

    /// Opens a session on `server` and waits for its handshake reply.
    fn session(&mut self, server: usize) -> ConnId {
        let conn = self.open(server, 0);
        self.pass(LAG + MS);
        assert!(
            self.heard
                .iter()
                .any(|(c, h)| *c == conn && matches!(h, Heard::Connected { .. })),
            "the handshake was answered: {:?}",
            self.heard
        );
        self.heard.retain(|(c, _)| *c != conn);
        conn
    }

    fn send(&mut self, conn: ConnId, xid: i32, request: Request) {
        let mut buf = BytesMut::new();
        request.encode_frame(xid, "", &mut buf);
        self.zk.handle_input(self.now, conn, &buf);
        self.drain();
    }

    /// What `conn` heard so far, taken.
    fn take(&mut self, conn: ConnId) -> Vec<Heard> {
        let (mine, rest) = std::mem::take(&mut self.heard)
            .into_iter()
            .partition(|(c, _)| *c == conn);
        self.heard = rest;
        mine.into_iter().map(|(_, h)| h).collect()
    }

    fn reply(&mut self, conn: ConnId, xid: i32) -> Option<(i64, i32, Bytes)> {
        let mine = self.take(conn);
        mine.into_iter().find_map(|h| match h {
            Heard::Reply {
                xid: x,
                zxid,
                err,
                body,
            } if x == xid => Some((zxid, err, body)),
            _ => None,
        })
    }
}

fn create(path: &str, data: &str) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Bytes::copy_from_slice(data.as_bytes()),
        acl: Acl::open_unsafe(),
        flags: CreateMode::Persistent.as_i32(),
    })
}

fn set(path: &str, data: &str) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Bytes::copy_from_slice(data.as_bytes()),
        version: -1,
    })
}

fn get(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch,
    })
}

fn data_of(body: &Bytes) -> Bytes {
    match Response::decode_for(OpCode::GetData, body).expect("a getData reply") {
        Response::GetData(d) => d.data,
        other => panic!("not a getData reply: {other:?}"),
    }
}

/// Finds a seed whose first draws make the second follower slow enough to see: the lag is
/// random per transaction, so the tests look for what they need rather than assume it.
fn lagging<T>(mut attempt: impl FnMut(u64) -> Option<T>) -> T {
    (1..200)
        .find_map(&mut attempt)
        .expect("some seed among 200 lags enough")
}

#[test]
fn a_follower_serves_what_it_applied_until_it_catches_up() {
    lagging(|seed| {
        let mut n = Net::new(seed);
        let (leader, follower) = (n.leader(), n.follower(0));
        let w = n.session(leader);
        let r = n.session(follower);
        n.send(w, 1, create("/cfg", "v1"));
        let (zxid, err, _) = n.reply(w, 1).expect("the leader answers its write at once");
        assert_eq!(err, 0);
        n.send(r, 1, get("/cfg", false));
        let (_, err, _) = n
            .reply(r, 1)
            .expect("a read on a follower is answered at once");
        if err == 0 {
            return None; // this follower applied it already: try another seed
        }
        assert_eq!(err, zk_proto::ErrorCode::NoNode.as_i32());
        assert!(n.zk.applied_zxid(follower).expect("a server") < zxid);
        assert!(n.zk.node_on(follower, "/cfg").is_none());
        n.pass(LAG + MS);
        assert_eq!(n.zk.applied_zxid(follower), Some(zxid));
        n.send(r, 2, get("/cfg", false));
        let (rz, err, body) = n.reply(r, 2).expect("answered");
        assert_eq!((err, &data_of(&body)[..]), (0, &b"v1"[..]));
        assert_eq!(rz, zxid);
        Some(())
    })
}

#[test]
fn sync_waits_until_the_follower_has_what_was_committed() {
    lagging(|seed| {
        let mut n = Net::new(seed);
        let (leader, follower) = (n.leader(), n.follower(0));
        let w = n.session(leader);
        let r = n.session(follower);
        n.send(w, 1, create("/s", "x"));
        let (zxid, _, _) = n.reply(w, 1).expect("answered");
        if n.zk.applied_zxid(follower) >= Some(zxid) {
            return None;
        }
        n.send(r, 1, Request::Sync(SyncRequest { path: "/s".into() }));
        n.send(r, 2, get("/s", false));
        assert!(
            n.take(r).is_empty(),
            "neither the sync nor the read behind it is answered before the follower caught up"
        );
        n.pass(LAG + MS);
        let heard = n.take(r);
        let xids: Vec<i32> = heard
            .iter()
            .filter_map(|h| match h {
                Heard::Reply { xid, .. } => Some(*xid),
                _ => None,
            })
            .collect();
        assert_eq!(xids, [1, 2], "in order: {heard:?}");
        match &heard[1] {
            Heard::Reply { err, body, .. } => {
                assert_eq!((*err, &data_of(body)[..]), (0, &b"x"[..]));
            }
            other => panic!("{other:?}"),
        }
        Some(())
    })
}

#[test]
fn a_session_reads_its_own_writes_on_a_lagging_follower() {
    for seed in 1..50 {
        let mut n = Net::new(seed);
        let follower = n.follower(1);
        let c = n.session(follower);
        n.send(c, 1, create("/own", "a"));
        n.send(c, 2, set("/own", "b"));
        n.send(c, 3, get("/own", false));
        n.send(c, 4, Request::Ping);
        n.pass(3 * LAG);
        let heard = n.take(c);
        let replies: Vec<(i32, i64, i32)> = heard
            .iter()
            .filter_map(|h| match h {
                Heard::Reply { xid, zxid, err, .. } => Some((*xid, *zxid, *err)),
                _ => None,
            })
            .collect();
        assert_eq!(
            replies.iter().map(|r| r.0).collect::<Vec<_>>(),
            [1, 2, 3, -2],
            "seed {seed}: every reply, in the order sent: {heard:?}"
        );
        assert!(replies.iter().all(|r| r.2 == 0), "seed {seed}: {heard:?}");
        let read = heard.iter().find_map(|h| match h {
            Heard::Reply { xid: 3, body, .. } => Some(data_of(body)),
            _ => None,
        });
        assert_eq!(read.as_deref(), Some(&b"b"[..]), "seed {seed}");
        // Zxids never run back on one connection.
        assert!(
            replies.windows(2).all(|w| w[0].1 <= w[1].1),
            "seed {seed}: {replies:?}"
        );
    }
}

#[test]
fn a_watch_on_a_follower_fires_when_it_applies_the_change() {
    lagging(|seed| {
        let mut n = Net::new(seed);
        let (leader, follower) = (n.leader(), n.follower(0));
        let w = n.session(leader);
        let r = n.session(follower);
        n.send(w, 1, create("/w", "1"));
        n.reply(w, 1).expect("answered");
        n.pass(LAG + MS);
        n.send(r, 1, get("/w", true));
        n.reply(r, 1).expect("watch set");
        n.send(w, 2, set("/w", "2"));
        let (zxid, _, _) = n.reply(w, 2).expect("answered");
        if n.zk.applied_zxid(follower) >= Some(zxid) {
            return None;
        }
        assert!(
            n.take(r).is_empty(),
            "no notification before the follower applied it"
        );
        n.pass(LAG + MS);
        assert_eq!(
            n.take(r),
            [Heard::Notification {
                kind: zk_proto::consts::EventType::NodeDataChanged.as_i32(),
                path: "/w".into(),
            }]
        );
        Some(())
    })
}

/// A write on the leader that the first follower has not applied yet, for `seed`: the
/// network, the leader, that follower and the write's zxid; `None` if it applied it.
fn behind(seed: u64, path: &str) -> Option<(Net, usize, usize, i64)> {
    let mut n = Net::new(seed);
    let (leader, follower) = (n.leader(), n.follower(0));
    let w = n.session(leader);
    n.send(w, 1, create(path, "1"));
    let (zxid, _, _) = n.reply(w, 1).expect("answered");
    (n.zk.applied_zxid(follower) < Some(zxid)).then_some((n, leader, follower, zxid))
}

#[test]
fn a_follower_behind_a_clients_zxid_refuses_it() {
    lagging(|seed| {
        let (mut n, _, follower, zxid) = behind(seed, "/z")?;
        // A client that saw the write moves to the follower before it applied it.
        let c = n.open(follower, zxid);
        assert_eq!(n.take(c), [Heard::Closed], "refused without an answer");
        n.pass(LAG + MS);
        let c = n.open(follower, zxid);
        // Its new session is answered once the follower applied the session's creation.
        n.pass(LAG + MS);
        assert!(matches!(n.take(c)[..], [Heard::Connected { .. }]));
        Some(())
    })
}

#[test]
fn an_election_brings_every_member_up_to_the_leader() {
    lagging(|seed| {
        let (mut n, leader, _, _) = behind(seed, "/e")?;
        n.zk.kill(n.now, leader);
        n.pass(Duration::from_secs(1));
        let new_leader = n.zk.leader().expect("a new leader");
        for s in (0..3).filter(|&s| s != leader) {
            let node = n.zk.node_on(s, "/e").expect("caught up");
            assert_eq!(&node.data[..], b"1", "server {s} (leader {new_leader})");
            assert_eq!(n.zk.applied_zxid(s), Some(n.zk.last_zxid()));
        }
        Some(())
    })
}

#[test]
fn without_lag_every_member_is_current() {
    let now = Instant::now();
    let mut zk = Ensemble::new(Config::ensemble(3), now);
    let leader = zk.leader().expect("a leader");
    let conn = zk.accept(now, leader, "127.0.0.1").expect("accepted");
    let req = ConnectRequest {
        timeout: 30_000,
        passwd: Bytes::from_static(&[0; 16]),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    write_frame(&mut buf, |b| req.encode(b));
    create("/n", "").encode_frame(1, "", &mut buf);
    zk.handle_input(now, conn, &buf);
    for s in 0..3 {
        assert_eq!(zk.applied_zxid(s), Some(zk.last_zxid()));
        assert!(zk.node_on(s, "/n").is_some());
    }
}

#[test]
fn a_member_frozen_through_an_election_drops_its_clients_when_it_runs_again() {
    let mut n = Net::new(1);
    let leader = n.leader();
    // The follower with the highest id: it leads after the election.
    let frozen = (0..3).filter(|&s| s != leader).max().expect("a follower");
    let c = n.session(frozen);
    n.zk.pause(n.now, frozen, Some(Duration::from_millis(300)));
    n.zk.kill(n.now, leader);
    n.pass(Duration::from_secs(1));
    assert_eq!(n.zk.leader(), Some(frozen));
    // Its watches lived in its follower's copy of the tree: a client kept across the
    // election would wait on them forever. It must reconnect and set them again.
    assert_eq!(n.take(c), [Heard::Closed]);
}
