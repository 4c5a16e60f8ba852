//! Session scenarios against a scripted server and a simulated clock.

mod sim;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use sim::{Sent, Sim, connect_response, notification, ok_body, reply};
use zk_proto::consts::{AddWatchMode, CreateMode, EventType, KeeperState, OpCode, WatcherType};
use zk_proto::records::*;
use zk_proto::session::{
    Action, AppState, Disconnect, Error, Event, HostAddr, HostList, ProbeResult, RequestId,
    SessionState,
};
use zk_proto::{ErrorCode, Stat};

const SID: i64 = 0x1234_5678;

fn get_data(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch,
    })
}

fn create(path: &str) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Bytes::from_static(b"x"),
        acl: Acl::open_unsafe(),
        flags: CreateMode::Persistent.as_i32(),
    })
}

fn states(events: &[Event]) -> Vec<SessionState> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::State { state, .. } => Some(*state),
            _ => None,
        })
        .collect()
}

fn apps(events: &[Event]) -> Vec<AppState> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::App(a) => Some(*a),
            _ => None,
        })
        .collect()
}

fn connect_host(a: &Action) -> usize {
    match a {
        Action::Connect { host, .. } => *host,
        other => panic!("expected Connect, got {other:?}"),
    }
}

/// A session connected to the first of three hosts.
fn connected() -> Sim {
    let mut sim = Sim::new(Sim::config("a:1,b:2,c:3"));
    assert_eq!(connect_host(&sim.take_actions()[0]), 0);
    sim.establish(SID, 6000, false);
    sim.take_events();
    sim
}

#[test]
fn handshake_sends_a_connect_request_and_reports_connected() {
    let mut sim = Sim::new(Sim::config("a:1,b:2").with_read_only(true));
    let actions = sim.take_actions();
    assert_eq!(
        actions,
        [Action::Connect {
            host: 0,
            addr: HostAddr::new("a", 1)
        }]
    );
    sim.connected();
    let sent = sim.sent();
    assert_eq!(
        sent,
        [Sent::Connect(ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 6000,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: true,
        })]
    );
    // The response arrives one byte at a time.
    for b in connect_response(SID, 4000, false) {
        sim.input(&[b]);
    }
    let events = sim.take_events();
    assert_eq!(states(&events), [SessionState::Connected]);
    assert_eq!(apps(&events), [AppState::Connected]);
    assert_eq!(sim.s.session_id(), SID);
    assert_eq!(sim.s.password(), b"0123456789abcdef");
    assert_eq!(
        sim.s.negotiated_timeout(),
        Some(Duration::from_millis(4000))
    );
    assert_eq!(sim.s.read_timeout(), Duration::from_millis(2666));
    assert_eq!(sim.s.connect_timeout(), Duration::from_millis(2000));
}

#[test]
fn pings_when_idle_and_stays_up_while_the_server_answers() {
    let mut sim = connected();
    // Session timeout 6 s: a ping is due after a tenth of it (600 ms) of quiet, less a
    // jitter of at most a fifth of that.
    for _ in 0..20 {
        let waited = sim.run_to_deadline();
        assert!(
            waited <= Duration::from_millis(600) && waited >= Duration::from_millis(480),
            "{waited:?}"
        );
        let sent = sim.sent();
        assert_eq!(sent, [Sent::Request(-2, Request::Ping)]);
        sim.input(&reply(-2, -1, 0, None));
    }
    assert_eq!(sim.s.state(), SessionState::Connected);
    assert!(sim.take_actions().is_empty());
}

#[test]
fn a_silent_server_is_left_after_a_fifth_of_the_timeout_for_the_next_host_with_the_same_session() {
    let mut sim = connected();
    let id = sim.submit(create("/n"));
    let sent = sim.sent();
    sim.reply_ok(sent[0].xid(), OpCode::Create, &ok_body(sent[0].request()));
    let zxid = sim.zxid;
    let pending = sim.submit(get_data("/n", false));
    sim.take_events();

    // The server goes silent while the read waits: a fifth of the 6 s timeout later the
    // connection is taken for dead, long before the 4 s read timeout.
    let mut elapsed = Duration::ZERO;
    while sim.s.state() == SessionState::Connected {
        elapsed += sim.run_to_deadline();
        sim.sent();
    }
    assert_eq!(
        elapsed,
        Duration::from_millis(1200),
        "dropped a fifth of the timeout after the request"
    );
    let actions = sim.take_actions();
    assert_eq!(
        actions[0],
        Action::Disconnect(Disconnect::Unresponsive(Duration::from_millis(1200)))
    );
    assert_eq!(connect_host(&actions[1]), 1);
    let events = sim.take_events();
    assert!(events.contains(&Event::Complete {
        id: pending,
        result: Err(Error::ConnectionLoss),
        watch: None
    }));
    assert_eq!(apps(&events), [AppState::Suspended]);
    assert_ne!(id, pending);

    let req = sim.establish(SID, 6000, false);
    assert_eq!(req.session_id, SID);
    assert_eq!(&req.passwd[..], b"0123456789abcdef");
    assert_eq!(req.last_zxid_seen, zxid);
    assert_eq!(apps(&sim.take_events()), [AppState::Connected]);
}

#[test]
fn a_half_second_stall_with_requests_waiting_keeps_the_connection() {
    let mut sim = connected();
    for _ in 0..10 {
        let id = sim.submit(get_data("/n", false));
        let sent = sim.sent();
        // A healthy server pauses for 500 ms (a GC), then answers.
        sim.advance(Duration::from_millis(500));
        assert!(
            sim.take_actions().is_empty(),
            "no disconnect during the stall"
        );
        for req in &sent {
            if req.xid() == -2 {
                sim.input(&reply(-2, -1, 0, None));
            } else {
                sim.reply_ok(req.xid(), OpCode::GetData, &ok_body(req.request()));
            }
        }
        let events = sim.take_events();
        assert!(
            events.iter().any(
                |e| matches!(e, Event::Complete { id: done, result: Ok(_), .. } if *done == id)
            ),
            "{sent:?} {events:?}"
        );
    }
    assert_eq!(sim.s.state(), SessionState::Connected);
}

#[test]
fn a_busy_connection_is_alive_while_answers_keep_coming() {
    let mut sim = connected();
    // 10,000 requests in flight, answered 100 at a time every 100 ms: 10 s of waiting, far
    // beyond the patience, but never silent for long.
    let ids: Vec<_> = (0..10_000)
        .map(|_| sim.submit(get_data("/n", false)))
        .collect();
    let sent = sim.sent();
    assert_eq!(sent.len(), 10_000);
    for chunk in sent.chunks(100) {
        sim.advance(Duration::from_millis(100));
        for req in chunk {
            sim.reply_ok(req.xid(), OpCode::GetData, &ok_body(req.request()));
        }
    }
    assert!(sim.take_actions().is_empty(), "no disconnect under load");
    let done = sim
        .take_events()
        .iter()
        .filter(|e| matches!(e, Event::Complete { result: Ok(_), .. }))
        .count();
    assert_eq!(done, ids.len());
}

#[test]
fn a_slow_link_measured_by_pings_stretches_the_patience() {
    let mut sim = connected();
    assert_eq!(sim.s.unresponsive_after(), Duration::from_millis(1200));
    // Pings answered after 400 ms each: the smoothed round trip climbs towards 400 ms.
    for _ in 0..30 {
        sim.run_to_deadline();
        let sent = sim.sent();
        assert_eq!(sent, [Sent::Request(-2, Request::Ping)]);
        sim.advance(Duration::from_millis(400));
        sim.input(&reply(-2, -1, 0, None));
    }
    let patience = sim.s.unresponsive_after();
    assert!(
        patience > Duration::from_millis(2000) && patience <= Duration::from_millis(2200),
        "600 ms plus four round trips of about 400 ms: {patience:?}"
    );
    // Never beyond the read timeout.
    assert!(patience <= sim.s.read_timeout());
}

#[test]
fn every_host_failing_leads_to_a_growing_pause_then_another_round() {
    let mut sim = Sim::new(
        Sim::config("a:1,b:2")
            .with_reconnect_backoff(Duration::from_millis(100), Duration::from_millis(400)),
    );
    let mut pauses = Vec::new();
    for _round in 0..4 {
        for host in 0..2 {
            let actions = sim.take_actions();
            assert_eq!(connect_host(&actions[0]), host);
            sim.s.handle_connect_failed(sim.now, "refused".into());
        }
        pauses.push(sim.run_to_deadline());
    }
    // Each pause lies between half and all of 100, 200, 400, 400 ms.
    for (p, cap) in pauses.iter().zip([100, 200, 400, 400]) {
        assert!(
            *p >= Duration::from_millis(cap / 2) && *p <= Duration::from_millis(cap),
            "{p:?}"
        );
    }
    assert_eq!(sim.s.state(), SessionState::Connecting);
    assert!(
        sim.take_events().is_empty(),
        "no state change while never connected"
    );
}

#[test]
fn a_connect_that_hangs_times_out_after_the_session_timeout_over_the_host_count() {
    let mut sim = Sim::new(Sim::config("a:1,b:2,c:3"));
    sim.take_actions();
    sim.connected();
    sim.sent();
    let waited = sim.run_to_deadline();
    assert_eq!(waited, Duration::from_secs(2));
    let actions = sim.take_actions();
    assert_eq!(
        actions[0],
        Action::Disconnect(Disconnect::ConnectTimeout(Duration::from_secs(2)))
    );
    assert_eq!(connect_host(&actions[1]), 1);
}

#[test]
fn an_expired_session_fails_everything_ends_watches_and_starts_afresh() {
    let mut sim = connected();
    let w = sim.submit(get_data("/w", true));
    let sent = sim.sent();
    sim.reply_ok(sent[0].xid(), OpCode::GetData, &ok_body(sent[0].request()));
    sim.take_events();
    sim.s.handle_disconnected(sim.now, "reset".into());
    let queued = sim.submit(get_data("/q", false));
    sim.take_actions();
    sim.take_events();

    sim.connected();
    sim.sent();
    sim.input(&connect_response(0, 0, false));
    let events = sim.take_events();
    assert!(events.contains(&Event::Complete {
        id: queued,
        result: Err(Error::SessionExpired),
        watch: None
    }));
    assert!(
        events.contains(&Event::Watch(zk_proto::session::WatchedEvent {
            watch: w,
            kind: EventType::None,
            state: KeeperState::Expired,
            path: "/w".into()
        }))
    );
    assert_eq!(
        states(&events),
        [SessionState::Expired, SessionState::Connecting]
    );
    assert_eq!(apps(&events), [AppState::Lost]);
    assert!(sim.s.watches().is_empty());
    assert!(!sim.s.is_finished(), "a renewed session goes on");
    let actions = sim.take_actions();
    assert_eq!(actions[0], Action::Disconnect(Disconnect::SessionExpired));
    let req = sim.establish(SID + 1, 6000, false);
    assert_eq!(req.session_id, 0, "a fresh session");
    assert_eq!(sim.s.session_id(), SID + 1);
    assert_eq!(apps(&sim.take_events()), [AppState::Connected]);
}

#[test]
fn without_renewal_an_expired_session_refuses_new_requests() {
    let mut sim = Sim::new(Sim::config("a:1").with_renew_expired(false));
    sim.take_actions();
    sim.connected();
    sim.sent();
    sim.input(&connect_response(0, 0, false));
    assert_eq!(sim.s.state(), SessionState::Expired);
    assert_eq!(
        sim.s.submit(sim.now, get_data("/a", false)),
        Err(Error::SessionExpired)
    );
    assert_eq!(sim.s.poll_timeout(), None, "nothing left to do");
    assert!(sim.s.is_finished());
}

#[test]
fn no_server_for_four_thirds_of_the_session_timeout_expires_the_session_locally() {
    let mut sim = connected();
    sim.s.handle_disconnected(sim.now, "reset".into());
    let mut t = Duration::ZERO;
    let mut seen = Vec::new();
    while !states(&seen).contains(&SessionState::Expired) && t < Duration::from_secs(60) {
        // Every connection attempt is refused at once.
        while let Some(a) = sim.take_actions().into_iter().next() {
            if let Action::Connect { .. } = a {
                sim.s.handle_connect_failed(sim.now, "refused".into());
            }
        }
        seen.extend(sim.take_events());
        if !states(&seen).contains(&SessionState::Expired) {
            t += sim.run_to_deadline();
            seen.extend(sim.take_events());
        }
    }
    assert_eq!(t, Duration::from_secs(8), "6 s × 4/3");
    assert_eq!(
        states(&seen),
        [
            SessionState::Connecting,
            SessionState::Expired,
            SessionState::Connecting
        ]
    );
    assert_eq!(apps(&seen), [AppState::Suspended, AppState::Lost]);
    assert_eq!(sim.s.session_id(), 0, "a new session is being opened");
}

#[test]
fn auth_is_sent_first_after_every_connect_and_a_refusal_ends_the_session() {
    let mut sim = Sim::new(Sim::config("a:1,b:2"));
    sim.take_actions();
    let auth = sim.s.add_auth(sim.now, "digest", &b"u:p"[..]).unwrap();
    let queued = sim.submit(get_data("/a", false));
    sim.establish(SID, 6000, false);
    let sent = sim.sent();
    assert_eq!(
        sent,
        [
            Sent::Request(
                -4,
                Request::Auth(AuthPacket {
                    kind: 0,
                    scheme: "digest".into(),
                    auth: Bytes::from_static(b"u:p")
                })
            ),
            Sent::Request(1, get_data("/a", false)),
        ]
    );
    sim.input(&reply(-4, 0, 0, None));
    assert!(sim.take_events().contains(&Event::Complete {
        id: auth,
        result: Ok(Response::Empty),
        watch: None
    }));

    // After a reconnect the credentials go out again, before anything else.
    sim.s.handle_disconnected(sim.now, "reset".into());
    sim.take_actions();
    assert!(sim.take_events().contains(&Event::Complete {
        id: queued,
        result: Err(Error::ConnectionLoss),
        watch: None
    }));
    let later = sim.submit(get_data("/b", false));
    sim.establish(SID, 6000, false);
    sim.take_events();
    let sent = sim.sent();
    assert!(matches!(sent[0], Sent::Request(-4, Request::Auth(_))));
    assert_eq!(sent[1], Sent::Request(2, get_data("/b", false)));

    // This time the server refuses: the session is over.
    sim.input(&reply(-4, 0, ErrorCode::AuthFailed.as_i32(), None));
    let events = sim.take_events();
    assert!(events.contains(&Event::Complete {
        id: later,
        result: Err(Error::AuthFailed),
        watch: None
    }));
    assert_eq!(states(&events), [SessionState::AuthFailed]);
    assert_eq!(apps(&events), [AppState::Lost]);
    assert_eq!(
        sim.take_actions(),
        [Action::Disconnect(Disconnect::AuthFailed)]
    );
    assert_eq!(
        sim.s.submit(sim.now, get_data("/c", false)),
        Err(Error::AuthFailed)
    );
}

#[test]
fn the_chroot_is_added_to_requests_and_stripped_from_every_reply() {
    let mut sim = Sim::new(Sim::config("a:1/app"));
    sim.take_actions();
    sim.establish(SID, 6000, false);
    let ids = [
        sim.submit(create("/c")),
        sim.submit(Request::Create2(CreateRequest {
            path: "/c2".into(),
            data: Bytes::new(),
            acl: Acl::open_unsafe(),
            flags: 0,
        })),
        sim.submit(Request::Sync(SyncRequest { path: "/".into() })),
        sim.submit(Request::GetEphemerals(GetEphemeralsRequest {
            prefix_path: "/".into(),
        })),
        sim.submit(Request::Multi(MultiRequest {
            ops: vec![MultiOp::Create(CreateRequest {
                path: "/m".into(),
                data: Bytes::new(),
                acl: Acl::open_unsafe(),
                flags: 0,
            })],
        })),
        sim.submit(get_data("/w", true)),
    ];
    // Decoding shows what the server sees.
    let sent = sim.sent();
    let paths: Vec<_> = [0, 1, 2, 3, 5]
        .map(|i| sent[i].request().path().unwrap().to_string())
        .to_vec();
    assert_eq!(paths, ["/app/c", "/app/c2", "/app", "/app", "/app/w"]);
    let Request::Multi(m) = sent[4].request() else {
        panic!()
    };
    let MultiOp::Create(c) = &m.ops[0] else {
        panic!()
    };
    assert_eq!(c.path, "/app/m");

    let stat = Stat::default();
    let replies = [
        Response::Create(CreateResponse {
            path: "/app/c".into(),
        }),
        Response::Create2(Create2Response {
            path: "/app/c2".into(),
            stat,
        }),
        Response::Sync(SyncResponse {
            path: "/app".into(),
        }),
        Response::GetEphemerals(GetEphemeralsResponse {
            ephemerals: vec![
                "/app/e1".into(),
                "/apple/not-ours".into(),
                "/app/x/e2".into(),
            ],
        }),
        Response::Multi(MultiResponse {
            results: vec![OpResult::Create(CreateResponse {
                path: "/app/m".into(),
            })],
        }),
        Response::GetData(GetDataResponse {
            data: Bytes::new(),
            stat,
        }),
    ];
    for (s, r) in sent.iter().zip(&replies) {
        sim.reply_ok(s.xid(), s.request().opcode(), r);
    }
    let done: Vec<_> = sim
        .completions()
        .into_iter()
        .map(|(_, r)| r.unwrap())
        .collect();
    assert_eq!(
        done[0],
        Response::Create(CreateResponse { path: "/c".into() })
    );
    assert_eq!(
        done[1],
        Response::Create2(Create2Response {
            path: "/c2".into(),
            stat
        })
    );
    assert_eq!(done[2], Response::Sync(SyncResponse { path: "/".into() }));
    assert_eq!(
        done[3],
        Response::GetEphemerals(GetEphemeralsResponse {
            ephemerals: vec!["/e1".into(), "/x/e2".into()]
        })
    );
    assert_eq!(
        done[4],
        Response::Multi(MultiResponse {
            results: vec![OpResult::Create(CreateResponse { path: "/m".into() })]
        })
    );
    sim.input(&notification(EventType::NodeDataChanged, "/app/w"));
    let events = sim.take_events();
    assert_eq!(
        events,
        [Event::Watch(zk_proto::session::WatchedEvent {
            watch: ids[5],
            kind: EventType::NodeDataChanged,
            state: KeeperState::SyncConnected,
            path: "/w".into()
        })]
    );
}

/// Writes a jute string vector by hand, independent of the codec under test.
fn put_strings(b: &mut BytesMut, items: &[&str]) {
    b.put_i32(items.len() as i32);
    for s in items {
        b.put_i32(s.len() as i32);
        b.put_slice(s.as_bytes());
    }
}

#[test]
fn watches_fire_once_and_are_re_registered_after_a_reconnect_with_exact_bytes() {
    let mut sim = connected();
    let data = sim.submit(get_data("/d", true));
    let exist = sim.submit(Request::Exists(ExistsRequest {
        path: "/e".into(),
        watch: true,
    }));
    let child = sim.submit(Request::GetChildren(GetChildrenRequest {
        path: "/c".into(),
        watch: true,
    }));
    let rec = sim.submit(Request::AddWatch(AddWatchRequest {
        path: "/r".into(),
        mode: AddWatchMode::PersistentRecursive.as_i32(),
    }));
    let sent = sim.sent();
    sim.reply_ok(sent[0].xid(), OpCode::GetData, &ok_body(sent[0].request()));
    sim.reply_err(sent[1].xid(), ErrorCode::NoNode.as_i32());
    sim.reply_ok(
        sent[2].xid(),
        OpCode::GetChildren,
        &ok_body(sent[2].request()),
    );
    sim.reply_ok(
        sent[3].xid(),
        OpCode::AddWatch,
        &Response::Status(ErrorResponse { err: 0 }),
    );
    let zxid = sim.zxid;
    let done = sim.completions();
    assert_eq!(done[1], (exist, Err(Error::Server(ErrorCode::NoNode))));
    assert_eq!(sim.s.watches().len(), 4);

    // A one-shot watch fires once.
    sim.input(&notification(EventType::NodeDataChanged, "/d"));
    sim.input(&notification(EventType::NodeDataChanged, "/d"));
    let fired: Vec<_> = sim.take_events();
    assert_eq!(fired.len(), 1);
    assert!(matches!(&fired[0], Event::Watch(w) if w.watch == data));

    // Reconnect: the remaining watches go out in one SetWatches2 (a persistent watch is among
    // them) with the last zxid, byte for byte as the server expects.
    sim.s.handle_disconnected(sim.now, "reset".into());
    sim.take_actions();
    sim.wire.clear();
    sim.establish(SID, 6000, false);
    sim.take_events();
    let sent = sim.sent();
    assert_eq!(sent.len(), 1);
    let mut body = BytesMut::new();
    body.put_i32(-8); // xid
    body.put_i32(105); // setWatches2
    body.put_i64(zxid);
    put_strings(&mut body, &[]); // data watches: the one-shot data watch fired
    put_strings(&mut body, &["/e"]); // exist
    put_strings(&mut body, &["/c"]); // child
    put_strings(&mut body, &[]); // persistent
    put_strings(&mut body, &["/r"]); // persistent recursive
    let mut framed = BytesMut::new();
    framed.put_i32(body.len() as i32);
    framed.put_slice(&body);
    // Only the SetWatches2 frame follows the ConnectRequest on the wire.
    assert_eq!(&sim.wire[sim.wire.len() - framed.len()..], &framed[..]);
    assert_eq!(
        sim.wire.len(),
        4 + 45 + framed.len(),
        "ConnectRequest then SetWatches2"
    );
    sim.input(&reply(-8, zxid, 0, None));

    // The server fires what changed meanwhile; a recursive watch hears about descendants.
    sim.input(&notification(EventType::NodeCreated, "/e"));
    sim.input(&notification(EventType::NodeCreated, "/r/x/y"));
    sim.input(&notification(EventType::NodeChildrenChanged, "/c"));
    let fired: Vec<_> = sim
        .take_events()
        .into_iter()
        .map(|e| match e {
            Event::Watch(w) => (w.watch, w.kind),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        fired,
        [
            (exist, EventType::NodeCreated),
            (rec, EventType::NodeCreated),
            (child, EventType::NodeChildrenChanged)
        ]
    );
    assert_eq!(
        sim.s.watches().len(),
        1,
        "only the persistent watch remains"
    );
}

#[test]
fn thousands_of_watches_are_re_registered_in_several_frames() {
    let mut sim = connected();
    let n = 5000;
    for i in 0..n {
        sim.submit(get_data(
            &format!("/a/rather/long/path/to/make/frames/fill/up/node-{i:05}"),
            true,
        ));
    }
    let sent = sim.sent();
    for s in &sent {
        sim.reply_ok(s.xid(), OpCode::GetData, &ok_body(s.request()));
    }
    sim.take_events();
    assert_eq!(sim.s.watches().len(), n);

    sim.s.handle_disconnected(sim.now, "reset".into());
    sim.take_actions();
    sim.establish(SID, 6000, false);
    let sent = sim.sent();
    assert!(sent.len() >= 3, "{} frames", sent.len());
    let mut all = Vec::new();
    for s in &sent {
        assert_eq!(s.xid(), -8);
        let Request::SetWatches(sw) = s.request() else {
            panic!("{:?}", s.request())
        };
        let bytes: usize = sw.data_watches.iter().map(String::len).sum();
        assert!(
            bytes < 128 * 1024 + 100,
            "{bytes} bytes of paths in one frame"
        );
        all.extend(sw.data_watches.iter().cloned());
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "every watch exactly once");
    // Each frame is answered in order; nothing is left pending.
    for _ in &sent {
        sim.input(&reply(-8, sim.zxid, 0, None));
    }
    assert_eq!(sim.s.in_flight(), 0);
    assert_eq!(sim.s.state(), SessionState::Connected);
}

#[test]
fn read_only_connect_probes_for_a_read_write_server_and_moves_there() {
    let mut sim = Sim::new(Sim::config("a:1,b:2,c:3").with_read_only(true));
    sim.take_actions();
    let req = sim.establish(SID, 6000, true);
    assert!(req.read_only);
    let events = sim.take_events();
    assert_eq!(states(&events), [SessionState::ConnectedReadOnly]);
    assert_eq!(apps(&events), [AppState::Connected]);

    // Probes start after 100 ms and back off while the others are read-only too.
    let mut waits = Vec::new();
    let mut probed = Vec::new();
    for _ in 0..3 {
        loop {
            let w = sim.run_to_deadline();
            let actions = sim.take_actions();
            sim.sent(); // pings
            if let Some(Action::Probe { host, .. }) = actions.first() {
                waits.push(w);
                probed.push(*host);
                break;
            }
            sim.input(&reply(-2, -1, 0, None));
        }
        let host = *probed.last().unwrap();
        sim.s
            .handle_probe_result(sim.now, host, ProbeResult::ReadOnly);
    }
    assert_eq!(waits[0], Duration::from_millis(100));
    assert_eq!(probed, [1, 2, 1]);

    let id = sim.submit(get_data("/x", false));
    sim.sent();
    loop {
        sim.run_to_deadline();
        sim.sent();
        if let Some(Action::Probe { host, .. }) = sim.take_actions().first() {
            sim.s
                .handle_probe_result(sim.now, *host, ProbeResult::ReadWrite);
            break;
        }
        sim.input(&reply(-2, -1, 0, None));
    }
    let actions = sim.take_actions();
    assert_eq!(
        actions[0],
        Action::Disconnect(Disconnect::ReadWriteServerFound)
    );
    assert_eq!(connect_host(&actions[1]), 2);
    assert!(sim.take_events().contains(&Event::Complete {
        id,
        result: Err(Error::ConnectionLoss),
        watch: None
    }));
    let req = sim.establish(SID + 7, 6000, false);
    assert_eq!(
        req.session_id, 0,
        "a read-only session is not resumed on a read-write server"
    );
    assert_eq!(states(&sim.take_events()), [SessionState::Connected]);
}

#[test]
fn close_lets_pending_requests_finish_then_closes() {
    let mut sim = connected();
    let a = sim.submit(get_data("/a", false));
    let b = sim.submit(get_data("/b", false));
    sim.s.close(sim.now);
    assert_eq!(
        sim.s.submit(sim.now, get_data("/c", false)),
        Err(Error::Closed)
    );
    let sent = sim.sent();
    assert_eq!(sent[2], Sent::Request(3, Request::CloseSession));
    assert!(!sim.s.is_finished(), "closing, not closed");
    sim.reply_ok(1, OpCode::GetData, &ok_body(sent[0].request()));
    sim.reply_ok(2, OpCode::GetData, &ok_body(sent[1].request()));
    sim.reply_ok(3, OpCode::CloseSession, &Response::Empty);
    let events = sim.take_events();
    let done: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Complete { id, result, .. } => Some((*id, result.is_ok())),
            _ => None,
        })
        .collect();
    assert_eq!(done, [(a, true), (b, true)]);
    assert_eq!(states(&events), [SessionState::Closed]);
    assert_eq!(sim.take_actions(), [Action::Disconnect(Disconnect::Closed)]);
    assert_eq!(sim.s.poll_timeout(), None);
    assert!(sim.s.is_finished());
}

#[test]
fn close_without_an_answer_closes_once_the_server_is_taken_for_dead() {
    let mut sim = connected();
    let a = sim.submit(get_data("/a", false));
    sim.s.close(sim.now);
    sim.sent();
    let mut waited = Duration::ZERO;
    while sim.s.state() != SessionState::Closed {
        waited += sim.run_to_deadline();
        sim.sent(); // pings go on meanwhile
    }
    assert_eq!(waited, sim.s.unresponsive_after());
    assert_eq!(waited, Duration::from_millis(1200));
    let events = sim.take_events();
    // The read was in flight when the server went silent: it may have been applied.
    assert!(events.contains(&Event::Complete {
        id: a,
        result: Err(Error::ConnectionLoss),
        watch: None
    }));
    assert_eq!(sim.s.state(), SessionState::Closed);
}

#[test]
fn requests_wait_for_a_connection_within_a_limit_and_a_deadline() {
    let mut sim = Sim::new(
        Sim::config("a:1")
            .with_queue_limit(2)
            .with_request_timeout(Some(Duration::from_secs(3))),
    );
    sim.take_actions();
    let first = sim.submit(get_data("/1", false));
    sim.advance(Duration::from_secs(1));
    let second = sim.submit(get_data("/2", false));
    assert_eq!(
        sim.s.submit(sim.now, get_data("/3", false)),
        Err(Error::QueueFull(2))
    );

    // The connect attempt hangs; the first request gives up after 3 s, the second waits on.
    sim.connected();
    sim.advance(Duration::from_secs(2));
    assert_eq!(
        sim.completions(),
        [(first, Err(Error::Timeout(Duration::from_secs(3))))]
    );
    sim.s.handle_disconnected(sim.now, "reset".into());
    assert!(
        sim.take_actions().is_empty(),
        "the only host failed: pause first"
    );
    sim.run_to_deadline();
    assert!(matches!(sim.take_actions()[0], Action::Connect { .. }));
    sim.establish(SID, 6000, false);
    let sent = sim.sent();
    assert_eq!(sent, [Sent::Request(1, get_data("/2", false))]);
    sim.reply_ok(1, OpCode::GetData, &ok_body(sent[0].request()));
    assert_eq!(sim.completions()[0].0, second);
}

#[test]
fn an_unexpected_xid_drops_the_connection_and_loses_nothing() {
    let mut sim = connected();
    let a = sim.submit(get_data("/a", false));
    sim.sent();
    sim.input(&reply(99, 1, 0, None));
    let actions = sim.take_actions();
    assert_eq!(
        actions[0],
        Action::Disconnect(Disconnect::UnexpectedXid {
            expected: Some(1),
            got: 99
        })
    );
    assert!(matches!(actions[1], Action::Connect { .. }));
    assert!(sim.take_events().contains(&Event::Complete {
        id: a,
        result: Err(Error::ConnectionLoss),
        watch: None
    }));
    // A reply nobody waits for is just as wrong.
    sim.establish(SID, 6000, false);
    sim.input(&reply(5, 1, 0, None));
    assert_eq!(
        sim.take_actions()[0],
        Action::Disconnect(Disconnect::UnexpectedXid {
            expected: None,
            got: 5
        })
    );
}

#[test]
fn malformed_and_oversized_frames_drop_the_connection_with_a_typed_reason() {
    let mut sim = connected();
    let a = sim.submit(get_data("/a", false));
    sim.sent();
    // A getData reply whose body is cut short.
    let mut bad = BytesMut::new();
    bad.put_i32(16 + 3);
    bad.put_i32(1);
    bad.put_i64(5);
    bad.put_i32(0);
    bad.put_slice(&[0, 0, 0]);
    sim.input(&bad);
    let actions = sim.take_actions();
    assert!(
        matches!(actions[0], Action::Disconnect(Disconnect::Decode(_))),
        "{actions:?}"
    );
    assert!(sim.take_events().contains(&Event::Complete {
        id: a,
        result: Err(Error::ConnectionLoss),
        watch: None
    }));

    sim.establish(SID, 6000, false);
    sim.input(&(1_i32 << 30).to_be_bytes());
    assert!(matches!(
        sim.take_actions()[0],
        Action::Disconnect(Disconnect::Frame(zk_proto::FrameError::TooLarge { .. }))
    ));
    sim.establish(SID, 6000, false);
    sim.input(&(-5_i32).to_be_bytes());
    assert!(matches!(
        sim.take_actions()[0],
        Action::Disconnect(Disconnect::Frame(zk_proto::FrameError::NegativeLength(_)))
    ));
}

#[test]
fn bad_paths_and_reserved_requests_are_refused_at_submit() {
    let mut sim = connected();
    assert!(matches!(
        sim.s.submit(sim.now, get_data("relative", false)),
        Err(Error::InvalidPath(_))
    ));
    assert!(matches!(
        sim.s.submit(sim.now, get_data("/a/", false)),
        Err(Error::InvalidPath(_))
    ));
    assert!(matches!(
        sim.s.submit(sim.now, Request::Ping),
        Err(Error::InvalidRequest(_))
    ));
    // A sequential create may end in a slash: the server appends the number.
    assert!(
        sim.s
            .submit(
                sim.now,
                Request::Create(CreateRequest {
                    path: "/q/".into(),
                    data: Bytes::new(),
                    acl: Acl::open_unsafe(),
                    flags: CreateMode::PersistentSequential.as_i32(),
                })
            )
            .is_ok()
    );
}

#[test]
fn a_request_larger_than_the_frame_limit_fails_without_being_sent() {
    let mut sim = Sim::new(Sim::config("a:1").with_max_request(1024));
    sim.take_actions();
    sim.establish(SID, 6000, false);
    let big = sim.submit(Request::SetData(SetDataRequest {
        path: "/a".into(),
        data: Bytes::from(vec![0u8; 2000]),
        version: -1,
    }));
    let small = sim.submit(get_data("/a", false));
    let sent = sim.sent();
    assert_eq!(sent, [Sent::Request(2, get_data("/a", false))]);
    let done = sim.completions();
    assert!(matches!(done[0], (id, Err(Error::TooLarge { max: 1024, .. })) if id == big));
    sim.reply_ok(2, OpCode::GetData, &ok_body(&get_data("/a", false)));
    assert_eq!(sim.completions()[0].0, small);
}

#[test]
fn remove_watches_removes_locally_and_reports_it() {
    let mut sim = connected();
    let w = sim.submit(get_data("/n", true));
    let p = sim.submit(Request::AddWatch(AddWatchRequest {
        path: "/n".into(),
        mode: 0,
    }));
    let sent = sim.sent();
    sim.reply_ok(sent[0].xid(), OpCode::GetData, &ok_body(sent[0].request()));
    sim.reply_ok(
        sent[1].xid(),
        OpCode::AddWatch,
        &Response::Status(ErrorResponse { err: 0 }),
    );
    sim.take_events();
    let r = sim.submit(Request::RemoveWatches(RemoveWatchesRequest {
        path: "/n".into(),
        kind: WatcherType::Any.as_i32(),
    }));
    let sent = sim.sent();
    sim.reply_ok(sent[0].xid(), OpCode::RemoveWatches, &Response::Empty);
    let events = sim.take_events();
    let kinds: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Watch(ev) => Some((ev.watch, ev.kind)),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (w, EventType::DataWatchRemoved),
            (p, EventType::PersistentWatchRemoved)
        ]
    );
    assert!(events.contains(&Event::Complete {
        id: r,
        result: Ok(Response::Empty),
        watch: None
    }));
    assert!(sim.s.watches().is_empty());
}

#[test]
fn xids_wrap_to_one_after_the_largest() {
    let mut sim = connected();
    sim.s.set_next_xid(i32::MAX - 1);
    let ids = [(); 3].map(|_| sim.submit(get_data("/a", false)));
    let sent = sim.sent();
    let xids: Vec<i32> = sent.iter().map(Sent::xid).collect();
    assert_eq!(xids, [i32::MAX - 1, i32::MAX, 1]);
    for s in &sent {
        sim.reply_ok(s.xid(), OpCode::GetData, &ok_body(s.request()));
    }
    let done: Vec<_> = sim
        .completions()
        .into_iter()
        .map(|(id, r)| (id, r.is_ok()))
        .collect();
    assert_eq!(done, ids.map(|id| (id, true)));
}

#[test]
fn ping_and_reply_bytes_are_exact() {
    let mut sim = connected();
    sim.wire.clear();
    sim.run_to_deadline();
    sim.sent();
    assert_eq!(sim.wire, [0, 0, 0, 8, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 11]);
}

#[test]
fn releasing_the_last_watch_on_a_node_removes_it_on_the_server() {
    let mut sim = connected();
    let a = sim.submit(get_data("/n", true));
    let b = sim.submit(Request::Exists(ExistsRequest {
        path: "/n".into(),
        watch: true,
    }));
    let p = sim.submit(Request::AddWatch(AddWatchRequest {
        path: "/n".into(),
        mode: AddWatchMode::Persistent.as_i32(),
    }));
    let sent = sim.sent();
    sim.reply_ok(sent[0].xid(), OpCode::GetData, &ok_body(sent[0].request()));
    sim.reply_ok(sent[1].xid(), OpCode::Exists, &ok_body(sent[1].request()));
    sim.reply_ok(
        sent[2].xid(),
        OpCode::AddWatch,
        &Response::Status(ErrorResponse { err: 0 }),
    );
    sim.take_events();

    // Other registrations remain on the node: nothing is sent.
    assert_eq!(sim.s.release_watch(sim.now, a), None);
    assert_eq!(sim.s.release_watch(sim.now, p), None);
    assert!(sim.sent().is_empty());
    // The last one goes: the server is asked to drop every watch of the session there.
    let removal = sim
        .s
        .release_watch(sim.now, b)
        .expect("a removeWatches request");
    assert_eq!(
        sim.sent(),
        [Sent::Request(
            4,
            Request::RemoveWatches(RemoveWatchesRequest {
                path: "/n".into(),
                kind: WatcherType::Any.as_i32()
            })
        )]
    );
    assert!(sim.s.watches().is_empty());
    // The watch had fired meanwhile: NoWatcher is a normal answer.
    sim.reply_err(4, ErrorCode::NoWatcher.as_i32());
    assert_eq!(
        sim.completions(),
        [(removal, Err(Error::Server(ErrorCode::NoWatcher)))]
    );
    assert_eq!(sim.s.release_watch(sim.now, a), None, "already released");
}

#[test]
fn a_handshake_answered_with_an_error_header_is_a_typed_refusal() {
    let mut sim = Sim::new(Sim::config("a:1,b:2"));
    sim.take_actions();
    sim.connected();
    sim.sent();
    // What a read-only server without local sessions sends.
    sim.input(&reply(0, 0, ErrorCode::NotReadOnly.as_i32(), None));
    let actions = sim.take_actions();
    assert_eq!(
        actions[0],
        Action::Disconnect(Disconnect::Refused(ErrorCode::NotReadOnly))
    );
    assert_eq!(connect_host(&actions[1]), 1);
}

#[test]
fn metrics_count_connections_replies_round_trips_and_slow_requests() {
    let mut sim = Sim::new(Sim::config("a:1,b:2").with_slow_request(Duration::from_millis(300)));
    let m = sim.s.metrics();
    assert_eq!((m.connections, m.disconnects, m.failed_attempts), (0, 0, 0));
    assert_eq!((m.session_id, m.host.clone(), m.last_rtt), (0, None, None));

    // The first host refuses; the second gives a session.
    sim.take_actions();
    sim.s.handle_connect_failed(sim.now, "refused".into());
    sim.pump();
    sim.take_actions();
    sim.establish(SID, 6000, false);
    let m = sim.s.metrics();
    assert_eq!((m.connections, m.failed_attempts), (1, 1));
    assert_eq!(m.host, Some(HostAddr::new("b", 2)));
    assert_eq!((m.session_id, m.state), (SID, SessionState::Connected));

    // Two requests: one answered after 100 ms, the other after 400 ms (slow).
    sim.submit(get_data("/fast", true));
    sim.submit(create("/slow"));
    let _queued_later = sim.submit(get_data("/x", false));
    let sent = sim.sent();
    assert_eq!(sim.s.metrics().in_flight, 3);
    sim.advance(Duration::from_millis(100));
    sim.reply_ok(sent[0].xid(), OpCode::GetData, &ok_body(sent[0].request()));
    sim.advance(Duration::from_millis(300));
    sim.reply_ok(sent[1].xid(), OpCode::Create, &ok_body(sent[1].request()));
    let m = sim.s.metrics();
    assert_eq!((m.completed, m.in_flight, m.watches), (2, 1, 1));
    assert_eq!(m.max_latency, Duration::from_millis(400));
    assert_eq!(m.slow_requests, 1);
    assert_eq!(
        m.last_slow,
        Some((OpCode::Create, Duration::from_millis(400)))
    );

    // A ping answered after 30 ms.
    sim.reply_err(sent[2].xid(), ErrorCode::NoNode.as_i32());
    loop {
        sim.run_to_deadline();
        if sim.sent().iter().any(|s| s.xid() == -2) {
            break;
        }
    }
    sim.advance(Duration::from_millis(30));
    sim.input(&reply(-2, -1, 0, None));
    let m = sim.s.metrics();
    assert_eq!(m.completed, 3, "an error reply is a reply");
    assert_eq!(m.last_rtt, Some(Duration::from_millis(30)));
    assert_eq!(m.smoothed_rtt, Some(Duration::from_millis(30)));

    // The connection drops and comes back: one disconnect, two connections.
    sim.s.handle_disconnected(sim.now, "reset".into());
    sim.pump();
    let m = sim.s.metrics();
    assert_eq!((m.disconnects, m.host), (1, None));
    sim.take_actions();
    sim.establish(SID, 6000, false);
    let m = sim.s.metrics();
    assert_eq!((m.connections, m.disconnects, m.failed_attempts), (2, 1, 1));
    assert_eq!(m.queued, 0);
}

fn hosts(s: &str) -> HostList {
    HostList::parse(s).unwrap()
}

#[test]
fn a_session_whose_server_leaves_moves_after_its_replies_without_a_suspension() {
    let mut sim = connected(); // on a:1 of a, b, c
    let first = sim.submit(get_data("/n", false));
    let sent = sim.sent();
    assert!(sim.s.update_hosts(sim.now, hosts("b:2,c:3,d:4")));
    // Nothing moves while a reply is due; a new request waits for the new server.
    assert!(sim.take_actions().is_empty());
    let second = sim.submit(get_data("/m", false));
    assert!(sim.sent().is_empty(), "held back during the move");
    sim.reply_ok(sent[0].xid(), OpCode::GetData, &ok_body(sent[0].request()));
    let actions = sim.take_actions();
    assert_eq!(actions[0], Action::Disconnect(Disconnect::Rebalance));
    let Action::Connect { addr, .. } = &actions[1] else {
        panic!("{actions:?}")
    };
    // The two old servers that remain already carry their share: the newcomer gets it.
    assert_eq!(addr, &HostAddr::new("d", 4));
    let events = sim.take_events();
    assert!(events.contains(&Event::Complete {
        id: first,
        result: Ok(ok_body(sent[0].request())),
        watch: None
    }));
    assert_eq!(states(&events), [SessionState::Connecting]);
    assert!(apps(&events).is_empty(), "a planned move is no suspension");

    let req = sim.establish(SID, 6000, false);
    assert_eq!(req.session_id, SID);
    let sent = sim.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    sim.reply_ok(sent[0].xid(), OpCode::GetData, &ok_body(sent[0].request()));
    let events = sim.take_events();
    assert_eq!(states(&events), [SessionState::Connected]);
    assert!(apps(&events).is_empty());
    assert!(
        matches!(&events[..], [.., Event::Complete { id, result: Ok(_), .. }] if *id == second)
    );
    assert_eq!(sim.s.hosts().len(), 3);
    assert_eq!(sim.s.metrics().host, Some(HostAddr::new("d", 4)));
}

#[test]
fn a_planned_move_that_fails_is_an_ordinary_suspension() {
    let mut sim = connected();
    assert!(sim.s.update_hosts(sim.now, hosts("b:2")));
    let actions = sim.take_actions();
    assert_eq!(actions[0], Action::Disconnect(Disconnect::Rebalance));
    assert!(apps(&sim.take_events()).is_empty());
    sim.s.handle_connect_failed(sim.now, "refused".into());
    sim.pump();
    assert_eq!(apps(&sim.take_events()), [AppState::Suspended]);
    sim.take_actions();
    // Backoff, then b again (the only host): it answers and the app is connected again.
    while sim.take_actions().is_empty() {
        sim.run_to_deadline();
    }
    sim.establish(SID, 6000, false);
    assert_eq!(apps(&sim.take_events()), [AppState::Connected]);
}

#[test]
fn added_servers_draw_their_share_of_sessions_and_removed_ones_send_theirs_away() {
    // 2,000 sessions on one of three servers; three more servers join: about half of the
    // sessions should move (1 - 3/6), all of them to the newcomers.
    let mut moved = 0;
    let mut to_new = 0;
    for seed in 0..2_000u64 {
        let mut sim = Sim::new(Sim::config("a:1,b:2,c:3").with_seed(seed));
        sim.take_actions();
        sim.establish(SID, 6000, false);
        sim.take_actions();
        if sim
            .s
            .update_hosts(sim.now, hosts("a:1,b:2,c:3,d:4,e:5,f:6"))
        {
            moved += 1;
            let actions = sim.take_actions();
            if let [
                Action::Disconnect(Disconnect::Rebalance),
                Action::Connect { addr, .. },
            ] = &actions[..]
                && ["d", "e", "f"].contains(&addr.host.as_str())
            {
                to_new += 1;
            }
        }
    }
    assert!((900..=1100).contains(&moved), "{moved} of 2000 moved");
    assert_eq!(to_new, moved);

    // A session whose server stays and nothing was added stays.
    let mut sim = connected();
    assert!(!sim.s.update_hosts(sim.now, hosts("a:1,b:2")));
    assert!(
        !sim.s.update_hosts(sim.now, hosts("a:1,b:2")),
        "no change, no move"
    );
    assert!(sim.take_actions().is_empty());
    assert_eq!(sim.s.metrics().host, Some(HostAddr::new("a", 1)));
}

#[test]
fn a_host_list_change_while_connecting_redirects_the_attempt() {
    let mut sim = Sim::new(Sim::config("a:1,b:2"));
    assert_eq!(connect_host(&sim.take_actions()[0]), 0);
    // The host being tried leaves: the attempt goes to the new list at once.
    assert!(sim.s.update_hosts(sim.now, hosts("c:3")));
    let actions = sim.take_actions();
    assert_eq!(actions[0], Action::Disconnect(Disconnect::Rebalance));
    assert!(matches!(&actions[1], Action::Connect { addr, .. } if *addr == HostAddr::new("c", 3)));
    sim.establish(SID, 6000, false);
    assert_eq!(sim.s.state(), SessionState::Connected);
}

fn config_reply(xid: i32, data: &str) -> Vec<u8> {
    let body = Response::GetData(GetDataResponse {
        data: Bytes::copy_from_slice(data.as_bytes()),
        stat: Stat::default(),
    });
    reply(xid, -1, 0, Some((OpCode::GetData, &body)))
}

/// The session's own getConfig with a watch, and nothing else.
fn assert_reads_config_with_a_watch(sent: &[Sent]) {
    assert!(
        matches!(
            sent,
            [Sent::Request(_, Request::GetData(r))] if r.path == "/zookeeper/config" && r.watch
        ),
        "{sent:?}"
    );
}

#[test]
fn a_session_that_follows_the_configuration_moves_when_its_server_leaves() {
    let mut sim = Sim::new(Sim::config("a:1,b:2,c:3").with_follow_config(true));
    sim.take_actions();
    sim.establish(SID, 6000, false);
    // After the handshake: the session's own getConfig with a watch.
    let sent = sim.sent();
    assert_reads_config_with_a_watch(&sent);
    let same = "server.1=a:2888:3888:participant;a:1\nserver.2=b:2888:3888:participant;b:2\n\
                server.3=c:2888:3888:participant;c:3\nversion=100000000";
    sim.input(&config_reply(sent[0].xid(), same));
    assert!(
        sim.take_actions().is_empty(),
        "the same members: nothing moves"
    );
    assert!(
        sim.take_events()
            .iter()
            .all(|e| !matches!(e, Event::Complete { .. })),
        "internal"
    );

    // Server a leaves (reconfig): the watch fires, the session reads the new membership and
    // moves at once (nothing of the application is in flight).
    sim.input(&notification(
        EventType::NodeDataChanged,
        "/zookeeper/config",
    ));
    let sent = sim.sent();
    assert_reads_config_with_a_watch(&sent);
    let without_a = "server.2=b:2888:3888:participant;0.0.0.0:2\n\
                     server.3=c:2888:3888:participant;3\nversion=100000004";
    sim.input(&config_reply(sent[0].xid(), without_a));
    let actions = sim.take_actions();
    assert_eq!(actions[0], Action::Disconnect(Disconnect::Rebalance));
    assert!(matches!(&actions[1], Action::Connect { addr, .. } if addr.host != "a"));
    assert_eq!(
        sim.s.hosts(),
        if sim.s.hosts()[0].host == "b" {
            [HostAddr::new("b", 2), HostAddr::new("c", 3)]
        } else {
            [HostAddr::new("c", 3), HostAddr::new("b", 2)]
        }
    );
    assert!(apps(&sim.take_events()).is_empty(), "no suspension");
    sim.establish(SID, 6000, false);
    let sent = sim.sent();
    assert!(matches!(
        &sent[..],
        [Sent::Request(_, Request::GetData(r))] if r.path == "/zookeeper/config" && r.watch
    ));
    // A configuration without client addresses changes nothing.
    sim.input(&config_reply(
        sent[0].xid(),
        "server.1=a:2888:3888\nversion=100000009",
    ));
    assert!(sim.take_actions().is_empty());
    assert_eq!(sim.s.hosts().len(), 2);
}

/// The driver contract behind the independent output queues: whatever ends a connection
/// (the driver's report, a bad frame, an expired session, a rebalance, a read-write server
/// found), bytes queued for it and not yet taken are dropped with it, so a driver that
/// drains transmits before actions never writes a stale frame, and nothing is left for
/// the next connection.
#[test]
fn an_ended_connection_leaves_nothing_to_transmit() {
    for case in 0..5 {
        let mut sim = Sim::new(Sim::config("a:1,b:2,c:3").with_read_only(true));
        sim.take_actions();
        sim.establish(SID, 6000, case == 4);
        sim.sent();
        sim.take_actions();
        // Written to the session's buffer, not taken by the driver.
        sim.s.submit(sim.now, get_data("/a", false)).unwrap();
        let now = sim.now;
        match case {
            0 => sim.s.handle_disconnected(now, "reset by peer".into()),
            1 => sim.s.handle_input(now, &[0xff, 0xff, 0xff, 0xff]),
            2 => {
                // The server ends the session: an expired handshake on the next connection
                // is the ordinary way; here the read timeout runs out instead.
                sim.s.handle_timeout(now + Duration::from_secs(60));
            }
            3 => {
                let moved = sim.s.update_hosts(now, HostList::parse("d:4,e:5").unwrap());
                assert!(moved);
                // The gentle move waits for the request in flight; its deadline passes.
                sim.s.handle_timeout(now + Duration::from_secs(5));
            }
            _ => {
                // Connected read-only: a probe finds a read-write server.
                let probe = (0..50).find_map(|_| {
                    sim.now += Duration::from_millis(200);
                    sim.s.handle_timeout(sim.now);
                    std::iter::from_fn(|| sim.s.poll_action()).find_map(|a| match a {
                        Action::Probe { host, .. } => Some(host),
                        _ => None,
                    })
                });
                let host = probe.expect("a probe within 10 s");
                sim.s.submit(sim.now, get_data("/b", false)).unwrap();
                sim.s
                    .handle_probe_result(sim.now, host, ProbeResult::ReadWrite);
            }
        }
        let actions: Vec<Action> = std::iter::from_fn(|| sim.s.poll_action()).collect();
        // The driver reported case 0 itself; the session asks for the others.
        assert_eq!(
            actions.iter().any(|a| matches!(a, Action::Disconnect(_))),
            case != 0,
            "case {case}: {actions:?}"
        );
        assert!(
            actions.iter().any(|a| matches!(a, Action::Connect { .. })),
            "case {case}: {actions:?}"
        );
        assert_eq!(sim.s.poll_transmit(), None, "case {case}");
        assert_eq!(sim.s.in_flight(), 0, "case {case}");
    }
}

/// A completion says which watch its request left, even when the watch has already fired
/// by the time a driver reads the completion (reply and notification in one read), so a
/// driver routes watch events from the completion, not from the registry.
#[test]
fn a_completion_names_the_watch_it_left() {
    use zk_proto::watch::WatchKind;
    let mut sim = connected();
    let data = sim.submit(get_data("/a", true));
    let plain = sim.submit(get_data("/b", false));
    let missing = sim.submit(Request::Exists(ExistsRequest {
        path: "/c".into(),
        watch: true,
    }));
    let failed = sim.submit(get_data("/d", true));
    let sent = sim.sent();
    let mut input = Vec::new();
    for (i, s) in sent.iter().take(2).enumerate() {
        input.extend(reply(
            i as i32 + 1,
            200,
            0,
            Some((OpCode::GetData, &ok_body(s.request()))),
        ));
    }
    input.extend(reply(3, 200, ErrorCode::NoNode.as_i32(), None));
    input.extend(reply(4, 200, ErrorCode::NoNode.as_i32(), None));
    // The watch of the first read fires in the same read as the replies.
    input.extend(notification(EventType::NodeDataChanged, "/a"));
    sim.input(&input);
    let events = sim.take_events();
    let watch_of = |want: RequestId| {
        events.iter().find_map(|e| match e {
            Event::Complete { id, watch, .. } if *id == want => Some(*watch),
            _ => None,
        })
    };
    assert_eq!(watch_of(data), Some(Some(WatchKind::Data)));
    assert_eq!(watch_of(plain), Some(None));
    assert_eq!(watch_of(missing), Some(Some(WatchKind::Exist)));
    assert_eq!(
        watch_of(failed),
        Some(None),
        "a failed read leaves no watch"
    );
    assert!(
        sim.s.watches().get(data).is_none(),
        "the one-shot watch is already gone from the registry"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Watch(w) if w.watch == data && w.kind == EventType::NodeDataChanged
    )));
}

/// The probe timer is the session's: a probe that gets no answer counts its host as
/// unreachable at the deadline the action carried, a late answer changes nothing, and the
/// next host is probed after the backoff, without the driver keeping any timer.
#[test]
fn an_unanswered_probe_times_out_in_the_session() {
    let mut sim = Sim::new(Sim::config("a:1,b:2,c:3").with_read_only(true));
    sim.take_actions();
    sim.establish(SID, 6000, true);
    sim.take_events();
    let next_probe = |sim: &mut Sim| loop {
        sim.run_to_deadline();
        sim.sent();
        if let Some(Action::Probe { host, deadline, .. }) = sim.take_actions().first() {
            return (*host, *deadline, sim.now);
        }
        sim.input(&reply(-2, -1, 0, None));
    };
    let (first, deadline, asked) = next_probe(&mut sim);
    assert_eq!(first, 1);
    assert_eq!(deadline - asked, Duration::from_secs(2));
    assert_eq!(sim.s.poll_timeout().map(|t| t <= deadline), Some(true));
    let (second, _, asked_again) = next_probe(&mut sim);
    assert_eq!(
        second, 2,
        "the next host, after the first counted unreachable"
    );
    assert_eq!(
        asked_again - deadline,
        Duration::from_millis(100),
        "the probe interval after the timeout, as after an answer"
    );
    // The first probe's answer arrives late: ignored, the session stays read-only.
    sim.s
        .handle_probe_result(sim.now, first, ProbeResult::ReadWrite);
    assert!(sim.take_actions().is_empty());
    assert_eq!(sim.s.state(), SessionState::ConnectedReadOnly);
}
