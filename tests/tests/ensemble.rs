//! The tokio client against a 3-node ensemble: failover, watches across reconnects, read-only
//! mode.

use std::time::Duration;

use tokio::task::spawn_blocking;
use zk_harness::{Ensemble, Fault, Mode, Proxy, ServerOptions};
use zk_tests::client;
use zk_tokio::admin;
use zk_tokio::{AppState, Client, CreateOptions, ErrorCode, EventType, SessionState, StateEvent};

async fn start_ensemble(options: ServerOptions) -> Ensemble {
    spawn_blocking(|| Ensemble::start_with(3, options))
        .await
        .unwrap()
        .expect("start a 3-node ensemble")
}

async fn wait_app(events: &mut zk_tokio::StateEvents, want: AppState) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(e) = events.next().await {
            if e == StateEvent::App(want) {
                return;
            }
        }
        panic!("state stream ended before {want:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {want:?} within 60 s"));
}

/// Fires `n` reads in the background; each must finish (value or ConnectionLoss), none may
/// hang.
fn background_reads(c: &Client, n: usize) -> tokio::task::JoinHandle<(usize, usize)> {
    let c = c.clone();
    tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..n {
            let c = c.clone();
            tasks.push(tokio::spawn(async move { c.get_data("/failover").await }));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let (mut ok, mut lost) = (0, 0);
        for t in tasks {
            match tokio::time::timeout(Duration::from_secs(30), t).await {
                Ok(Ok(Ok(_))) => ok += 1,
                Ok(Ok(Err(e))) if e.is(ErrorCode::ConnectionLoss) => lost += 1,
                other => panic!("a request neither succeeded nor failed cleanly: {other:?}"),
            }
        }
        (ok, lost)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_survives_losing_a_follower_then_the_leader() {
    let mut ensemble = start_ensemble(ServerOptions::default()).await;
    let leader = ensemble.leader().expect("a leader");
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let (a, b) = (followers[0], followers[1]);

    // The client goes through proxies, in the order follower A, leader, follower B, so the
    // test decides when it may reconnect.
    let proxies: Vec<Proxy> = [a, leader, b]
        .iter()
        .map(|&i| Proxy::start(ensemble.server(i).addr()).unwrap())
        .collect();
    let hosts: Vec<String> = proxies.iter().map(|p| p.connect_string()).collect();
    let c = Client::builder(&hosts.join(","))
        .session_timeout(Duration::from_secs(8))
        .shuffle_hosts(false)
        .connect_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    assert_eq!(c.server().unwrap().port, proxies[0].addr().port());
    let session = c.session_id();
    let other = client(&ensemble.server(b).connect_string()).await;

    c.create("/failover", "0", &CreateOptions::persistent())
        .await
        .unwrap();
    let eph = c
        .create("/eph-", "", &CreateOptions::ephemeral_sequential())
        .await
        .unwrap();
    let (_, _, watch) = c.get_data_watch("/failover").await.unwrap();
    let mut states = c.state_events();

    // 1. Follower A dies while requests are in flight; the client may not reconnect yet.
    proxies[1].set_fault(Fault::Refuse);
    proxies[2].set_fault(Fault::Refuse);
    let reads = background_reads(&c, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ensemble = spawn_blocking(move || {
        ensemble.server_mut(a).kill().unwrap();
        ensemble
    })
    .await
    .unwrap();
    wait_app(&mut states, AppState::Suspended).await;

    // Meanwhile the node changes: the watch must still fire once the client is back.
    other.set_data("/failover", "1", None).await.unwrap();
    proxies[1].set_fault(Fault::Pass);
    wait_app(&mut states, AppState::Connected).await;
    let (ok, lost) = reads.await.unwrap();
    assert_eq!(ok + lost, 200);
    let event = tokio::time::timeout(Duration::from_secs(10), watch)
        .await
        .expect("the watch fires after the reconnect");
    assert_eq!(event.kind, EventType::NodeDataChanged);
    assert_eq!(c.session_id(), session, "same session");
    assert_eq!(
        c.server().unwrap().port,
        proxies[1].addr().port(),
        "now on the leader"
    );
    assert!(
        other.exists(&eph).await.unwrap().is_some(),
        "ephemeral survives"
    );

    // 2. Bring A back, then the leader dies.
    ensemble = spawn_blocking(move || {
        ensemble.server_mut(a).start().unwrap();
        ensemble.wait_quorum(Duration::from_secs(60)).unwrap();
        ensemble
    })
    .await
    .unwrap();
    proxies[0].set_fault(Fault::Pass);
    proxies[2].set_fault(Fault::Pass);
    let (_, _, watch) = c.get_data_watch("/failover").await.unwrap();
    let reads = background_reads(&c, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ensemble = spawn_blocking(move || {
        ensemble.server_mut(leader).kill().unwrap();
        ensemble
    })
    .await
    .unwrap();
    wait_app(&mut states, AppState::Suspended).await;
    wait_app(&mut states, AppState::Connected).await;
    let (ok, lost) = reads.await.unwrap();
    assert_eq!(ok + lost, 200);
    assert_eq!(
        c.session_id(),
        session,
        "same session after losing the leader"
    );
    other.set_data("/failover", "2", None).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), watch)
        .await
        .unwrap();
    assert_eq!(event.kind, EventType::NodeDataChanged);
    assert!(
        other.exists(&eph).await.unwrap().is_some(),
        "ephemeral survives"
    );
    assert_eq!(&c.get_data("/failover").await.unwrap().0[..], b"2");

    c.close().await;
    assert_eq!(
        other.exists(&eph).await.unwrap(),
        None,
        "ephemeral goes with the session"
    );
    other.close().await;
    drop(ensemble);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_mode_without_quorum_then_back_to_read_write() {
    let mut ensemble = start_ensemble(ServerOptions::default().read_only_sessions()).await;
    let setup = client(&ensemble.connect_string()).await;
    setup
        .create("/ro", "before", &CreateOptions::persistent())
        .await
        .unwrap();
    setup.close().await;

    // Two of three servers go: the last one serves read-only clients.
    let survivor = 0;
    ensemble = spawn_blocking(move || {
        ensemble.server_mut(1).stop().unwrap();
        ensemble.server_mut(2).stop().unwrap();
        ensemble
            .server(survivor)
            .wait_mode(Duration::from_secs(60), |m| m == Mode::ReadOnly)
            .unwrap();
        ensemble
    })
    .await
    .unwrap();

    let c = Client::builder(&ensemble.connect_string())
        .session_timeout(Duration::from_secs(6))
        .read_only(true)
        .connect_timeout(Duration::from_secs(60))
        .connect()
        .await
        .unwrap();
    assert_eq!(c.state(), SessionState::ConnectedReadOnly);
    assert_eq!(c.app_state(), AppState::Connected);
    // The operator's view: the survivor says read-only, the stopped servers cannot be asked.
    let t = Duration::from_secs(5);
    let answers = admin::ask_each(&ensemble.connect_string(), admin::Srvr, t)
        .await
        .unwrap();
    for (i, (host, answer)) in answers.iter().enumerate() {
        match answer {
            Ok(stats) => {
                assert_eq!(i, survivor, "{host}");
                assert_eq!((stats.mode, stats.read_only), (admin::Mode::ReadOnly, true));
            }
            Err(e) => assert!(matches!(e, admin::AdminError::Io { .. }), "{host}: {e}"),
        }
    }
    let survivor_host = ensemble.server(survivor).connect_string();
    assert!(admin::ask(&survivor_host, admin::Isro, t).await.unwrap());
    assert_eq!(&c.get_data("/ro").await.unwrap().0[..], b"before");
    let e = c.set_data("/ro", "after", None).await.unwrap_err();
    assert!(e.is(ErrorCode::NotReadOnly), "{e}");

    // A client that does not accept read-only servers finds none.
    let strict = Client::builder(&ensemble.connect_string())
        .connect_timeout(Duration::from_secs(3))
        .connect()
        .await;
    assert!(
        matches!(strict, Err(zk_tokio::Error::ConnectTimeout { .. })),
        "{strict:?}"
    );

    // Quorum returns: the client moves to a read-write server by itself.
    let ensemble = spawn_blocking(move || {
        ensemble.server_mut(1).start().unwrap();
        ensemble.server_mut(2).start().unwrap();
        ensemble.wait_quorum(Duration::from_secs(60)).unwrap();
        ensemble
    })
    .await
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(90),
        c.wait_for(|s| s == SessionState::Connected),
    )
    .await
    .expect("read-write again")
    .unwrap();
    c.set_data("/ro", "after", None).await.unwrap();
    assert_eq!(&c.get_data("/ro").await.unwrap().0[..], b"after");
    // One leader, two followers, every one read-write.
    let mut modes: Vec<_> = admin::ask_each(&ensemble.connect_string(), admin::Srvr, t)
        .await
        .unwrap()
        .into_iter()
        .map(|(host, answer)| answer.unwrap_or_else(|e| panic!("{host}: {e}")).mode)
        .collect();
    modes.sort_by_key(|m| *m == admin::Mode::Leader);
    assert_eq!(
        modes,
        [
            admin::Mode::Follower,
            admin::Mode::Follower,
            admin::Mode::Leader
        ]
    );
    assert!(!admin::ask(&survivor_host, admin::Isro, t).await.unwrap());
    c.close().await;
    drop(ensemble);
}
