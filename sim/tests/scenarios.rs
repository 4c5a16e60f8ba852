//! Scenarios on the simulation harness: real `Session`s against the model, on a virtual
//! clock and network.

use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::ErrorCode;
use zk_proto::consts::{CreateMode, EventType};
use zk_proto::records::*;
use zk_proto::session::{AppState, Error, Event, SessionState};
use zk_sim::harness::{ClientId, Fault, Happened, SimConfig, Simulation};
use zk_sim::{Config, TxnOp};

const SECOND: Duration = Duration::from_secs(1);

fn create(path: &str, data: &str, mode: CreateMode) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Bytes::copy_from_slice(data.as_bytes()),
        acl: Acl::open_unsafe(),
        flags: mode.as_i32(),
    })
}

fn client(sim: &mut Simulation, timeout_ms: u64) -> ClientId {
    let c = sim.add_client(|c| c.with_session_timeout(Duration::from_millis(timeout_ms)));
    assert!(
        sim.run_until(5 * SECOND, |s| s.session(c).state()
            == SessionState::Connected),
        "client connects"
    );
    c
}

fn ok(r: Option<Result<Response, Error>>) -> Response {
    match r {
        Some(Ok(r)) => r,
        other => panic!("expected success, got {other:?}"),
    }
}

fn err(r: Option<Result<Response, Error>>) -> Error {
    match r {
        Some(Err(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn create_read_write_and_delete_with_the_servers_stat() {
    let mut sim = Simulation::new(SimConfig::new(1), Instant::now());
    let a = client(&mut sim, 4000);
    ok(sim.call(a, create("/app", "v0", CreateMode::Persistent), SECOND));
    let Response::GetData(d) = ok(sim.call(
        a,
        Request::GetData(GetDataRequest {
            path: "/app".into(),
            watch: false,
        }),
        SECOND,
    )) else {
        panic!()
    };
    assert_eq!(&d.data[..], b"v0");
    assert_eq!(d.stat.version, 0);
    assert_eq!(d.stat.czxid, d.stat.mzxid);
    let Response::Stat(s) = ok(sim.call(
        a,
        Request::SetData(SetDataRequest {
            path: "/app".into(),
            data: Bytes::from_static(b"v1"),
            version: 0,
        }),
        SECOND,
    )) else {
        panic!()
    };
    assert_eq!(s.version, 1);
    assert!(s.mzxid > s.czxid);
    assert_eq!(
        err(sim.call(
            a,
            Request::SetData(SetDataRequest {
                path: "/app".into(),
                data: Bytes::new(),
                version: 0,
            }),
            SECOND
        )),
        Error::Server(ErrorCode::BadVersion)
    );
    ok(sim.call(a, create("/app/x", "", CreateMode::Persistent), SECOND));
    assert_eq!(
        err(sim.call(
            a,
            Request::Delete(DeleteRequest {
                path: "/app".into(),
                version: -1
            }),
            SECOND
        )),
        Error::Server(ErrorCode::NotEmpty)
    );
    let parent = sim.ensemble().node("/app").unwrap();
    assert_eq!(parent.stat.num_children, 1);
    assert_eq!(parent.stat.cversion, 1);
    ok(sim.call(
        a,
        Request::Delete(DeleteRequest {
            path: "/app/x".into(),
            version: -1,
        }),
        SECOND,
    ));
    // A deletion counts in the visible cversion but not in the sequence counter.
    let parent = sim.ensemble().node("/app").unwrap();
    assert_eq!(parent.stat.cversion, 2);
    let Response::Create(c) = ok(sim.call(
        a,
        create("/app/s-", "", CreateMode::PersistentSequential),
        SECOND,
    )) else {
        panic!()
    };
    assert_eq!(c.path, "/app/s-0000000001");
    sim.ensemble().check_invariants();
}

#[test]
fn a_watch_fires_before_the_reply_that_caused_it() {
    let mut sim = Simulation::new(SimConfig::new(2), Instant::now());
    let a = client(&mut sim, 4000);
    let b = client(&mut sim, 4000);
    ok(sim.call(a, create("/w", "", CreateMode::Persistent), SECOND));
    ok(sim.call(
        b,
        Request::GetData(GetDataRequest {
            path: "/w".into(),
            watch: true,
        }),
        SECOND,
    ));
    ok(sim.call(
        a,
        Request::Exists(ExistsRequest {
            path: "/w".into(),
            watch: true,
        }),
        SECOND,
    ));
    ok(sim.call(
        a,
        Request::SetData(SetDataRequest {
            path: "/w".into(),
            data: Bytes::from_static(b"x"),
            version: -1,
        }),
        SECOND,
    ));
    sim.run_for(SECOND);
    // a's own notification arrived before a's reply.
    let mine: Vec<&Happened> = sim
        .history()
        .iter()
        .map(|r| &r.what)
        .filter(|w| matches!(w, Happened::Watch { client, .. } | Happened::Complete { client, .. } if *client == a))
        .collect();
    let watch_at = mine
        .iter()
        .position(|w| matches!(w, Happened::Watch { .. }))
        .unwrap();
    assert!(matches!(mine[watch_at + 1], Happened::Complete { .. }));
    let got = std::iter::from_fn(|| sim.poll_event(b)).find_map(|e| match e {
        Event::Watch(w) => Some(w),
        _ => None,
    });
    assert_eq!(got.unwrap().kind, EventType::NodeDataChanged);
}

#[test]
fn an_ephemeral_node_goes_when_its_silent_session_expires() {
    let mut sim = Simulation::new(SimConfig::new(3), Instant::now());
    let a = client(&mut sim, 1000);
    let b = client(&mut sim, 4000);
    ok(sim.call(a, create("/e", "", CreateMode::Ephemeral), SECOND));
    ok(sim.call(
        b,
        Request::Exists(ExistsRequest {
            path: "/e".into(),
            watch: true,
        }),
        SECOND,
    ));
    sim.fault(Fault::Isolate(a));
    assert!(sim.run_until(5 * SECOND, |s| s.ensemble().node("/e").is_none()));
    sim.fault(Fault::Rejoin(a));
    // The server expired it once its timeout passed, on a tick boundary.
    let close = sim
        .server_history()
        .iter()
        .find(|t| matches!(&t.op, TxnOp::CloseSession { expired: true, .. }))
        .expect("the session expired");
    assert!(
        matches!(&close.op, TxnOp::CloseSession { deleted, .. } if deleted == &["/e".to_string()])
    );
    assert!(sim.run_until(10 * SECOND, |s| s.session(a).app_state()
        == AppState::Connected
        && s.session(a).session_id() != 0));
    let events: Vec<Event> = std::iter::from_fn(|| sim.poll_event(b)).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Watch(w) if w.kind == EventType::NodeDeleted))
    );
}

#[test]
fn a_session_survives_its_server_dying_in_an_ensemble() {
    let config = SimConfig::new(4).ensemble(
        Config::ensemble(3)
            .tick(Duration::from_millis(200))
            .election_time(Duration::from_millis(300)),
    );
    let mut sim = Simulation::new(config, Instant::now());
    let a = client(&mut sim, 4000);
    ok(sim.call(a, create("/eph", "", CreateMode::Ephemeral), SECOND));
    let id = sim.session(a).session_id();
    let server = sim.ensemble().server_of_session(id).unwrap();
    sim.fault(Fault::Kill(server));
    assert!(sim.run_until(10 * SECOND, |s| {
        s.session(a).state() == SessionState::Connected
            && s.ensemble()
                .server_of_session(id)
                .is_some_and(|s| s != server)
    }));
    assert_eq!(sim.session(a).session_id(), id);
    assert!(sim.ensemble().node("/eph").is_some());
    ok(sim.call(a, create("/after", "", CreateMode::Persistent), 5 * SECOND));
}

#[test]
fn a_lost_reply_is_applied_but_reported_as_connection_loss() {
    let mut sim = Simulation::new(SimConfig::new(5), Instant::now());
    let a = client(&mut sim, 4000);
    sim.fault(Fault::LoseNextReply(a));
    let r = sim.call(a, create("/lost", "", CreateMode::Persistent), SECOND);
    assert_eq!(err(r), Error::ConnectionLoss);
    assert!(sim.ensemble().node("/lost").is_some());
    assert!(sim.run_until(5 * SECOND, |s| s.session(a).state()
        == SessionState::Connected));
}

/// Runs a small chaotic workload and returns its rendered history.
fn chaos(seed: u64) -> (String, usize) {
    let mut sim = Simulation::new(SimConfig::new(seed), Instant::now());
    let clients: Vec<ClientId> = (0..3).map(|_| client(&mut sim, 2000)).collect();
    let mut submitted = 0;
    for round in 0..40u32 {
        let c = clients[round as usize % clients.len()];
        let path = format!("/n{}", round % 5);
        let req = match round % 4 {
            0 => create(&path, "x", CreateMode::Ephemeral),
            1 => Request::SetData(SetDataRequest {
                path,
                data: Bytes::from_static(b"y"),
                version: -1,
            }),
            2 => Request::Delete(DeleteRequest { path, version: -1 }),
            _ => Request::GetData(GetDataRequest { path, watch: true }),
        };
        if sim.submit(c, req).is_ok() {
            submitted += 1;
        }
        if round % 7 == 3 {
            let f = sim.random_fault();
            sim.fault(f);
        }
        sim.run_for(Duration::from_millis(150));
    }
    sim.run_for(10 * SECOND);
    sim.ensemble().check_invariants();
    (sim.render_history(), submitted)
}

#[test]
fn a_seed_replays_exactly() {
    let (first, n) = chaos(42);
    let (second, _) = chaos(42);
    assert!(n > 0);
    assert_eq!(first, second);
    let (other, _) = chaos(43);
    assert_ne!(first, other);
}

#[test]
fn every_request_completes_exactly_once_under_faults() {
    for seed in 0..20 {
        let (history, _) = chaos(seed);
        let mut submitted = std::collections::BTreeSet::new();
        let mut done = std::collections::BTreeSet::new();
        for line in history.lines() {
            let mut words = line.split_whitespace();
            let (_, c, kind, id) = (words.next(), words.next(), words.next(), words.next());
            match kind {
                Some("submit") => assert!(submitted.insert((c, id))),
                Some("done") => assert!(done.insert((c, id)), "twice: {line}"),
                _ => {}
            }
        }
        assert_eq!(submitted, done, "seed {seed}:\n{history}");
    }
}

#[test]
fn a_paused_leader_is_replaced_and_drops_its_clients_when_it_wakes() {
    let config = SimConfig::new(6).ensemble(
        Config::ensemble(3)
            .tick(Duration::from_millis(200))
            .sync_limit(5)
            .election_time(Duration::from_millis(300)),
    );
    let mut sim = Simulation::new(config, Instant::now());
    let a = client(&mut sim, 6000);
    ok(sim.call(a, create("/before", "", CreateMode::Ephemeral), SECOND));
    let id = sim.session(a).session_id();
    let leader = sim.ensemble().leader().expect("a leader");
    sim.fault(Fault::Pause(leader));
    // After syncLimit (1 s) the others elect a new leader; the session carries on there.
    assert!(sim.run_until(10 * SECOND, |s| {
        s.ensemble().leader().is_some_and(|l| l != leader)
    }));
    assert!(sim.run_until(10 * SECOND, |s| {
        s.session(a).state() == SessionState::Connected
            && s.ensemble()
                .server_of_session(id)
                .is_some_and(|s| s != leader)
    }));
    assert_eq!(sim.session(a).session_id(), id);
    ok(sim.call(a, create("/after", "", CreateMode::Persistent), 5 * SECOND));
    sim.fault(Fault::Resume(leader));
    sim.run_for(SECOND);
    assert!(sim.ensemble().connections(leader).is_empty());
    assert!(
        sim.ensemble().node("/before").is_some(),
        "the session never expired"
    );
}

#[test]
fn a_session_expired_by_the_server_is_renewed_by_the_client() {
    let mut sim = Simulation::new(SimConfig::new(7), Instant::now());
    let a = client(&mut sim, 4000);
    ok(sim.call(a, create("/mine", "", CreateMode::Ephemeral), SECOND));
    let old = sim.session(a).session_id();
    sim.fault(Fault::ExpireSession(a));
    assert!(sim.ensemble().node("/mine").is_none());
    assert!(sim.run_until(10 * SECOND, |s| s.session(a).state()
        == SessionState::Connected
        && s.session(a).session_id() != old));
    let states: Vec<SessionState> = sim
        .history()
        .iter()
        .filter_map(|r| match &r.what {
            Happened::State { client, state } if *client == a => Some(*state),
            _ => None,
        })
        .collect();
    assert!(states.contains(&SessionState::Expired), "{states:?}");
}

/// Time from a fault to the session being connected again on another server.
fn resume_time(sim: &mut Simulation, c: ClientId, fault: Fault) -> Duration {
    let from = sim.session(c).current_host();
    let start = sim.elapsed();
    sim.fault(fault);
    assert!(sim.run_until(10 * SECOND, |s| s.session(c).state()
        == SessionState::Connected
        && s.session(c).current_host() != from));
    sim.elapsed() - start
}

#[test]
fn a_black_holed_link_is_left_for_another_server_within_a_third_of_the_timeout() {
    // Session timeout 6 s, a 3-server ensemble, the link to the current server silent.
    let mut times = Vec::new();
    for seed in 0..20 {
        let config = SimConfig::new(100 + seed).ensemble(
            Config::ensemble(3)
                .tick(Duration::from_millis(200))
                .session_timeouts(Duration::from_millis(400), Duration::from_secs(40)),
        );
        let mut sim = Simulation::new(config, Instant::now());
        let a = client(&mut sim, 6000);
        let id = sim.session(a).session_id();
        // Idle for a while, so the fault lands at a random point of the ping cycle.
        sim.run_for(Duration::from_millis(300 + 97 * seed));
        let took = resume_time(&mut sim, a, Fault::BlackHole(a));
        assert_eq!(sim.session(a).session_id(), id, "the same session resumed");
        times.push(took);
    }
    times.sort();
    let (median, worst) = (times[times.len() / 2], times[times.len() - 1]);
    println!("resumed elsewhere after a black hole: median {median:?}, worst {worst:?}");
    // 35 % of 6 s is 2.1 s; the reference client's rule (read timeout) takes 4 s or more.
    assert!(worst <= Duration::from_millis(2100), "worst {worst:?}");
}

#[test]
fn a_stalled_server_keeps_its_clients() {
    let config = SimConfig::new(9).ensemble(
        Config::ensemble(3)
            .tick(Duration::from_millis(200))
            .session_timeouts(Duration::from_millis(400), Duration::from_secs(40)),
    );
    let mut sim = Simulation::new(config, Instant::now());
    let a = client(&mut sim, 6000);
    let server = sim
        .ensemble()
        .server_of_session(sim.session(a).session_id())
        .unwrap();
    for _ in 0..5 {
        // Requests wait while their server stalls for half a second (a GC pause).
        let id = sim
            .submit(a, create("/gc-", "", CreateMode::PersistentSequential))
            .unwrap();
        sim.fault(Fault::Stall(server, Duration::from_millis(500)));
        assert!(matches!(sim.wait(a, id, 5 * SECOND), Some(Ok(_))));
        sim.run_for(Duration::from_millis(700));
    }
    assert!(
        !sim.history()
            .iter()
            .any(|r| matches!(&r.what, Happened::Disconnected { client, .. } if *client == a))
    );
}
