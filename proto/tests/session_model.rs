//! Model-based property tests: a small reference model of what a client sees (requests
//! outstanding, watch registrations, whether a session is up) is driven by the same inputs
//! as the Session and must agree with it after every step. Plus chunking and time
//! invariance.

mod sim;

use std::time::Duration;

use proptest::prelude::*;
use sim::world::{Step, World, run_all};
use sim::{Sim, notification, ok_body, reply};
use zk_proto::consts::{EventType, OpCode};
use zk_proto::records::*;
use zk_proto::session::{Event, SessionState};

/// What a client should see, computed only from inputs: the calls made and what the
/// scripted server did.
#[derive(Debug, Default)]
struct Model {
    /// Requests written to the current connection and not answered.
    sent: usize,
    /// Requests waiting for a connection, by the time they give up.
    queued: Vec<std::time::Instant>,
    /// Watch registrations: path (server's) and kind.
    watches: Vec<(String, Kind)>,
    /// The session is established on a connection.
    up: bool,
    /// The session is over (closed or auth failed).
    over: bool,
    closing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Data,
    Exist,
    Child,
    Persistent,
    Recursive,
}

impl Model {
    fn lose_connection(&mut self) {
        self.sent = 0;
        self.up = false;
    }

    fn end_session(&mut self) {
        self.sent = 0;
        self.queued.clear();
        self.watches.clear();
        self.up = false;
    }

    /// Applies the server's answer to one request.
    fn answered(&mut self, req: &Request, err: i32) {
        // Requests are decoded from the wire: their paths already carry the chroot.
        let path = |p: &str| p.to_string();
        match req {
            Request::Ping | Request::SetWatches(_) | Request::SetWatches2(_) => return,
            Request::Auth(_) => {
                if err == zk_proto::ErrorCode::AuthFailed.as_i32() {
                    self.end_session();
                    self.over = true;
                }
                return;
            }
            Request::CloseSession => {
                self.end_session();
                self.over = true;
                return;
            }
            _ => {}
        }
        self.sent -= 1;
        let no_node = err == zk_proto::ErrorCode::NoNode.as_i32();
        match req {
            Request::GetData(r) if r.watch && err == 0 => {
                self.watches.push((path(&r.path), Kind::Data))
            }
            Request::Exists(r) if r.watch && err == 0 => {
                self.watches.push((path(&r.path), Kind::Data))
            }
            Request::Exists(r) if r.watch && no_node => {
                self.watches.push((path(&r.path), Kind::Exist))
            }
            Request::GetChildren(r) if r.watch && err == 0 => {
                self.watches.push((path(&r.path), Kind::Child))
            }
            Request::AddWatch(r) if err == 0 => self.watches.push((
                path(&r.path),
                if r.mode == 1 {
                    Kind::Recursive
                } else {
                    Kind::Persistent
                },
            )),
            Request::RemoveWatches(r)
                if err == 0 || err == zk_proto::ErrorCode::NoWatcher.as_i32() =>
            {
                // Type Any in the world: everything on the path goes.
                let p = path(&r.path);
                self.watches.retain(|(w, _)| *w != p);
            }
            _ => {}
        }
    }

    /// A node event removes the one-shot registrations it reaches.
    fn notified(&mut self, kind: EventType, path: &str) {
        self.watches.retain(|(p, k)| {
            if p != path {
                return true;
            }
            match kind {
                EventType::NodeCreated | EventType::NodeDataChanged => {
                    !matches!(k, Kind::Data | Kind::Exist)
                }
                EventType::NodeDeleted => !matches!(k, Kind::Data | Kind::Exist | Kind::Child),
                EventType::NodeChildrenChanged => *k != Kind::Child,
                _ => true,
            }
        });
    }
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => (any::<u8>(), any::<bool>()).prop_map(|(k, w)| Step::Submit(k, w)),
        1 => prop::bool::weighted(0.9).prop_map(Step::AddAuth),
        8 => (any::<u8>(), 1u8..40, prop::bool::weighted(0.2))
            .prop_map(|(count, chunk, fail)| Step::Answer { count, chunk, fail }),
        2 => any::<u8>().prop_map(Step::Notify),
        4 => Just(Step::ConnectOk { read_only: false }),
        1 => Just(Step::ConnectFail),
        1 => Just(Step::ConnectExpired),
        1 => Just(Step::Drop),
        2 => (0u16..3000).prop_map(Step::Advance),
        1 => Just(Step::Close),
    ]
}

/// Runs `steps`, checking the session against the model after each one.
fn check_against_model(seed: u64, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut w = World::new(seed);
    let mut m = Model::default();
    for st in steps {
        let connected_before = w.s.state().is_connected();
        let submitted = w.issued.len();
        let want = w.want_connect.is_some();
        w.run(st);
        let state = w.s.state();
        // Calls and connection events.
        match st {
            Step::Submit(..) if w.issued.len() > submitted => {
                if connected_before {
                    m.sent += 1;
                } else {
                    // Waiting requests give up after the session timeout (6 s here).
                    m.queued.push(w.now + Duration::from_secs(6));
                }
            }
            Step::ConnectOk { .. } if want && state.is_connected() => {
                m.up = true;
                m.sent += m.queued.len();
                m.queued.clear();
            }
            Step::ConnectExpired if want => m.end_session(),
            Step::Drop if connected_before => m.lose_connection(),
            Step::Close if !m.over => {
                if connected_before {
                    m.closing = true;
                    m.queued.clear();
                } else {
                    m.end_session();
                    m.over = true;
                }
            }
            _ => {}
        }
        for (req, err) in w.answered.clone() {
            m.answered(&req, err);
        }
        for (kind, path) in w.notified.clone() {
            m.notified(kind, &path);
        }
        // What the session did by itself: timeouts and failed frames drop the connection,
        // an expiry (client-side) ends the session, a close completes.
        if !state.is_connected() && m.up {
            m.lose_connection();
        }
        let expired = w
            .log
            .iter()
            .rev()
            .take_while(|l| !l.starts_with("step "))
            .any(|l| l.contains("state: Expired"));
        if expired {
            m.end_session();
        }
        if state.is_terminal() && state != SessionState::Expired {
            m.end_session();
            m.over = true;
        }
        let now = w.now;
        m.queued.retain(|deadline| *deadline > now);
        if m.closing && state == SessionState::Closed {
            m.closing = false;
        }
        prop_assert_eq!(w.s.in_flight(), m.sent, "in flight after {:?}", st);
        prop_assert_eq!(w.s.queued(), m.queued.len(), "queued after {:?}", st);
        prop_assert_eq!(
            w.s.watches().len(),
            m.watches.len(),
            "watches after {:?}: model {:?}, session {:?}",
            st,
            m.watches,
            w.s.watches()
        );
        prop_assert_eq!(
            state.is_connected(),
            m.up && !m.over,
            "state {:?} after {:?}",
            state,
            st
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_session_agrees_with_the_model(seed in any::<u64>(), steps in prop::collection::vec(step(), 0..120)) {
        check_against_model(seed, &steps)?;
    }

    #[test]
    fn early_and_repeated_wake_ups_change_nothing(seed in any::<u64>(), steps in prop::collection::vec(step(), 0..80)) {
        let plain = run_all(seed, &steps);
        let mut w = World::new(seed);
        w.extra_timeouts = true;
        for s in &steps {
            w.run(s);
        }
        w.finish();
        prop_assert_eq!(plain.log, w.log);
    }

    #[test]
    fn any_chunking_of_the_server_stream_gives_the_same_events(
        kinds in prop::collection::vec(0u8..6, 1..40),
        cuts in prop::collection::vec(1usize..50, 1..200),
    ) {
        let run = |chunks: Option<&[usize]>| {
            let mut sim = Sim::new(Sim::config("a:1/root"));
            sim.take_actions();
            sim.establish(77, 6000, false);
            let mut stream = Vec::new();
            for (i, k) in kinds.iter().enumerate() {
                let req = match k {
                    0 => Request::GetData(GetDataRequest { path: "/a".into(), watch: true }),
                    1 => Request::GetChildren2(GetChildrenRequest { path: "/".into(), watch: true }),
                    2 => Request::Exists(ExistsRequest { path: format!("/n{i}"), watch: true }),
                    3 => Request::Sync(SyncRequest { path: "/a".into() }),
                    _ => Request::SetData(SetDataRequest { path: "/a".into(), data: bytes::Bytes::new(), version: -1 }),
                };
                sim.submit(req);
            }
            for s in sim.sent() {
                let xid = s.xid();
                let req = s.request().clone();
                if xid % 3 == 0 {
                    stream.extend(reply(xid, 10 + xid as i64, -101, None));
                } else {
                    stream.extend(reply(xid, 10 + xid as i64, 0, Some((req.opcode(), &ok_body(&req)))));
                }
                if xid % 4 == 0 {
                    stream.extend(notification(EventType::NodeDataChanged, "/root/a"));
                }
            }
            match chunks {
                None => sim.input(&stream),
                Some(cuts) => {
                    let mut at = 0;
                    let mut i = 0;
                    while at < stream.len() {
                        let n = cuts[i % cuts.len()].min(stream.len() - at);
                        sim.input(&stream[at..at + n]);
                        at += n;
                        i += 1;
                    }
                }
            }
            let events: Vec<Event> = sim.take_events();
            let _ = OpCode::Ping;
            (events, sim.s.watches().len(), sim.s.in_flight())
        };
        prop_assert_eq!(run(None), run(Some(&cuts)));
    }
}

#[test]
fn the_model_agrees_on_a_long_fixed_run() {
    let steps: Vec<Step> = (0..3000u32)
        .map(|i| match i % 9 {
            0 => Step::ConnectOk { read_only: false },
            1..=3 => Step::Submit((i % 251) as u8, i % 2 == 0),
            4 => Step::Answer {
                count: 5,
                chunk: (i % 31 + 1) as u8,
                fail: i % 7 == 0,
            },
            5 => Step::Notify((i % 17) as u8),
            6 if i % 200 == 6 => Step::Drop,
            7 => Step::Advance((i % 700) as u16),
            _ => Step::Answer {
                count: 255,
                chunk: 64,
                fail: false,
            },
        })
        .collect();
    check_against_model(5, &steps).unwrap();
    let _ = Duration::ZERO;
}
