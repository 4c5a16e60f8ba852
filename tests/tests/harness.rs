//! The harness itself: ensembles that lose and regain members, and the fault proxy.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use zk_harness::{Ensemble, Fault, Mode, Proxy, ZkServer};
use zk_tests::RawConn;

#[test]
fn an_ensemble_survives_losing_its_leader_and_goes_read_only_without_quorum() {
    let mut ensemble = Ensemble::start(3).expect("start a 3-node ensemble");
    assert_eq!(ensemble.connect_string().split(',').count(), 3);
    let leader = ensemble.leader().expect("a leader");
    for (i, s) in ensemble.servers().iter().enumerate() {
        let expected = if i == leader {
            Mode::Leader
        } else {
            Mode::Follower
        };
        assert_eq!(s.mode(), expected, "server {i}");
        let conn = RawConn::connect(s.addr(), 4000).expect("every member takes sessions");
        assert_ne!(conn.session.session_id, 0);
    }

    // A crash of the leader: the other two elect a new one.
    ensemble.server_mut(leader).kill().unwrap();
    assert!(!ensemble.server_mut(leader).is_running());
    ensemble
        .wait_quorum(Duration::from_secs(30))
        .expect("a new leader");
    let new_leader = ensemble.leader().expect("a leader");
    assert_ne!(new_leader, leader);

    // Losing a second member leaves no quorum: the last one serves read-only clients.
    let follower = (0..3).find(|&i| i != leader && i != new_leader).unwrap();
    ensemble.server_mut(new_leader).stop().unwrap();
    let survivor = ensemble.server(follower);
    let mode = survivor
        .wait_mode(Duration::from_secs(30), |m| m == Mode::ReadOnly)
        .expect("read-only mode");
    assert_eq!(mode, Mode::ReadOnly);
    assert_eq!(survivor.four_letter("isro").unwrap(), "ro");

    // Restarting both brings the quorum back, with its data.
    ensemble.server_mut(leader).start().unwrap();
    ensemble.server_mut(new_leader).start().unwrap();
    ensemble
        .wait_quorum(Duration::from_secs(60))
        .expect("quorum again");
    assert_eq!(ensemble.server(follower).four_letter("isro").unwrap(), "rw");
}

#[test]
fn a_paused_server_stops_answering_and_resumes() {
    let server = ZkServer::standalone().unwrap();
    server.pause().unwrap();
    assert!(
        server.four_letter("ruok").is_err(),
        "a frozen server answers nothing"
    );
    server.resume().unwrap();
    assert_eq!(server.four_letter("ruok").unwrap(), "imok");
}

#[test]
fn the_proxy_passes_delays_black_holes_cuts_drops_and_refuses() {
    let server = ZkServer::standalone().unwrap();
    let proxy = Proxy::start(server.addr()).unwrap();

    // Pass: a session through the proxy works.
    let conn = RawConn::connect(proxy.addr(), 4000).expect("handshake through the proxy");
    assert_ne!(conn.session.session_id, 0);
    assert_eq!(proxy.open_connections(), 1);
    drop(conn);

    // Delay: a four-letter round trip takes at least two delays.
    proxy.set_fault(Fault::Delay(Duration::from_millis(150)));
    let started = Instant::now();
    assert_eq!(
        zk_harness::four_letter(proxy.addr(), "ruok", Duration::from_secs(5)).unwrap(),
        "imok"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    // Black hole: the connection stays open but nothing comes back.
    proxy.set_fault(Fault::BlackHole);
    let mut stream = TcpStream::connect(proxy.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    stream.write_all(b"ruok").unwrap();
    let mut buf = [0u8; 16];
    let err = stream
        .read(&mut buf)
        .expect_err("no answer through a black hole");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );

    // Cut: the client sees a reset.
    proxy.cut();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let err = stream
        .read(&mut buf)
        .expect_err("a cut connection is reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err:?}");

    // Drop: an orderly close, read as end of stream.
    proxy.set_fault(Fault::Pass);
    let mut conn = RawConn::connect(proxy.addr(), 4000).unwrap();
    proxy.drop_connections();
    let err = conn.read_frame().expect_err("a dropped connection ends");
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err:?}");

    // Refuse: new connections are reset at once.
    proxy.set_fault(Fault::Refuse);
    let err = RawConn::connect(proxy.addr(), 4000).err().expect("refused");
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
        ),
        "{err:?}"
    );
    assert!(proxy.accepted() >= 5);
}

#[test]
fn the_proxy_gives_an_ipv6_front_to_an_ipv4_server() {
    let server = ZkServer::standalone().unwrap();
    let Ok(proxy) = Proxy::start_on("[::1]:0".parse().unwrap(), server.addr()) else {
        eprintln!("no IPv6 loopback on this machine; skipping");
        return;
    };
    assert!(proxy.connect_string().starts_with("[::1]:"));
    let conn = RawConn::connect(proxy.addr(), 4000).unwrap();
    assert_ne!(conn.session.session_id, 0);
}

#[test]
fn directories_of_dead_test_processes_are_swept() {
    let stale = std::env::temp_dir().join("zk-harness-stale-for-test");
    std::fs::create_dir_all(stale.join("data")).unwrap();
    // No process has this pid (above the kernel's pid_max).
    std::fs::write(stale.join("owner.pid"), "4194305").unwrap();
    let server = ZkServer::standalone().unwrap();
    assert!(!stale.exists(), "the stale directory is gone");
    assert!(server.dir().join("owner.pid").exists());
    let dir = server.dir().to_path_buf();
    drop(server);
    assert!(!dir.exists(), "a dropped server's directory is removed");
}
