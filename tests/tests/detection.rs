//! How fast the client notices a dead server on a real 3-server ensemble, and that it does
//! not take a live one for dead: a black-holed link (fault proxy), a server frozen for
//! half a second (SIGSTOP, like a GC pause), and a client with 10,000 requests in flight.

use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::join_all;
use tokio::task::spawn_blocking;
use zk_harness::{Ensemble, Fault, Proxy};
use zk_tokio::{AppState, Client, CreateOptions, SessionState, StateEvent};

const TIMEOUT: Duration = Duration::from_secs(6);

async fn ensemble() -> Ensemble {
    spawn_blocking(|| Ensemble::start(3))
        .await
        .unwrap()
        .expect("start a 3-server ensemble")
}

/// Whether the state stream showed a disconnection since it was opened.
fn suspended(events: &mut zk_tokio::StateEvents) -> bool {
    let mut seen = false;
    while let Some(Some(e)) = events.next().now_or_never() {
        seen |= e == StateEvent::App(AppState::Suspended);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_server_is_left_within_35_percent_of_the_timeout() {
    let ensemble = ensemble().await;
    let proxies: Vec<Proxy> = (0..3)
        .map(|i| Proxy::start(ensemble.server(i).addr()).unwrap())
        .collect();
    let hosts: Vec<String> = proxies.iter().map(Proxy::connect_string).collect();
    let c = Client::builder(&hosts.join(","))
        .session_timeout(TIMEOUT)
        .connect()
        .await
        .unwrap();
    assert_eq!(c.session_timeout(), Some(TIMEOUT));
    let session = c.session_id();
    let mut took = Vec::new();
    for round in 0..4u64 {
        // Idle first, so the silence starts at some point of the ping cycle.
        tokio::time::sleep(Duration::from_millis(200 + 250 * round)).await;
        let port = c.server().expect("connected").port;
        let proxy = proxies.iter().find(|p| p.addr().port() == port).unwrap();
        proxy.set_fault(Fault::BlackHole);
        let start = Instant::now();
        tokio::time::timeout(TIMEOUT, async {
            while c.state() != SessionState::Connected || c.server().is_none_or(|s| s.port == port)
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("resumed elsewhere within the session timeout");
        took.push(start.elapsed());
        assert_eq!(c.session_id(), session, "the same session, resumed");
        c.get_data("/").await.expect("serving again");
        proxy.set_fault(Fault::Pass);
        proxy.cut();
    }
    took.sort();
    let worst = took[took.len() - 1];
    println!("idle session resumed elsewhere after {took:?}");
    assert!(
        worst <= TIMEOUT * 35 / 100,
        "the slowest resume took {worst:?} of a {TIMEOUT:?} session timeout"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_frozen_for_half_a_second_or_a_loaded_client_keeps_the_connection() {
    let ensemble = ensemble().await;
    let c = Client::builder(&ensemble.connect_string())
        .session_timeout(TIMEOUT)
        .connect()
        .await
        .unwrap();
    c.create("/detection", "x", &CreateOptions::persistent())
        .await
        .unwrap();
    let mut events = c.state_events();
    let port = c.server().unwrap().port;
    let server = (0..3)
        .find(|&i| ensemble.server(i).port() == port)
        .expect("connected to a member");
    for _ in 0..3 {
        // Reads wait while the server is frozen, then get their answers.
        let reads: Vec<_> = (0..20).map(|_| c.get_data("/detection")).collect();
        let frozen = ensemble.server(server);
        frozen.pause().unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        frozen.resume().unwrap();
        for r in join_all(reads).await {
            r.expect("answered after the pause");
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(
        !suspended(&mut events),
        "a 500 ms pause cost the connection"
    );

    // 10,000 reads in flight at once.
    let started = Instant::now();
    let reads: Vec<_> = (0..10_000).map(|_| c.get_data("/detection")).collect();
    let results = join_all(reads).await;
    assert!(results.iter().all(Result::is_ok));
    println!("10,000 reads in flight answered in {:?}", started.elapsed());
    assert!(
        !suspended(&mut events),
        "a loaded client lost its connection"
    );
    c.close().await;
}
