//! Session expiry, forced by stalling the connection through the fault proxy.

use std::time::Duration;

use zk_harness::{Fault, Proxy};
use zk_tests::{client, shared_server};
use zk_tokio::{AppState, Client, CreateOptions, ErrorCode, SessionState, StateEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_expires_the_session_and_a_fresh_one_follows() {
    let server = shared_server();
    let proxy = Proxy::start(server.addr()).unwrap();
    let c = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_millis(2000))
        .connect()
        .await
        .unwrap();
    let observer = client(&server.connect_string()).await;
    let old_session = c.session_id();
    let eph = c
        .create("/expiring-", "", &CreateOptions::ephemeral_sequential())
        .await
        .unwrap();
    let (_, _, watch) = c.get_data_watch(&eph).await.unwrap();
    let mut states = c.state_events();

    // The network goes silent: no byte passes either way.
    proxy.set_fault(Fault::BlackHole);
    let mut seen = Vec::new();
    while let Some(e) = states.next().await {
        seen.push(e);
        if e == StateEvent::App(AppState::Suspended) {
            break;
        }
    }
    // A request made while suspended waits for a connection and fails with the session.
    let waiting = {
        let c = c.clone();
        tokio::spawn(async move { c.get_data("/").await })
    };
    while let Some(e) = states.next().await {
        seen.push(e);
        if e == StateEvent::App(AppState::Lost) {
            break;
        }
    }
    assert!(
        seen.contains(&StateEvent::Session(SessionState::Expired)),
        "{seen:?}"
    );
    let e = waiting.await.unwrap().unwrap_err();
    assert!(e.is(ErrorCode::SessionExpired), "{e}");
    let final_event = watch.await;
    assert_eq!(final_event.state, zk_tokio::KeeperState::Expired);

    // The server expires it too: the ephemeral node goes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while observer.exists(&eph).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ephemeral outlived the session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The network heals: a fresh session starts by itself.
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    tokio::time::timeout(
        Duration::from_secs(30),
        c.wait_for(SessionState::is_connected),
    )
    .await
    .expect("a new session")
    .unwrap();
    assert_ne!(c.session_id(), old_session);
    assert_eq!(c.app_state(), AppState::Connected);
    c.create("/after-expiry", "", &CreateOptions::ephemeral())
        .await
        .unwrap();
    c.close().await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_resumes_the_same_session() {
    let server = shared_server();
    let proxy = Proxy::start(server.addr()).unwrap();
    let c = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(4))
        .connect()
        .await
        .unwrap();
    let session = c.session_id();
    let eph = c
        .create("/cut-", "", &CreateOptions::ephemeral_sequential())
        .await
        .unwrap();
    let mut states = c.state_events();
    for _ in 0..3 {
        proxy.cut();
        let mut seen = Vec::new();
        while let Some(e) = states.next().await {
            seen.push(e);
            if e == StateEvent::App(AppState::Connected) {
                break;
            }
        }
        assert_eq!(
            seen,
            [
                StateEvent::Session(SessionState::Connecting),
                StateEvent::App(AppState::Suspended),
                StateEvent::Session(SessionState::Connected),
                StateEvent::App(AppState::Connected),
            ]
        );
        assert_eq!(c.session_id(), session);
        assert!(c.exists(&eph).await.unwrap().is_some());
    }
    assert!(proxy.accepted() >= 4);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_carries_an_operation_over_an_outage() {
    let server = shared_server();
    let proxy = Proxy::start(server.addr()).unwrap();
    let c = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(6))
        .request_timeout(Duration::from_millis(300))
        .retry_policy(
            zk_tokio::RetryPolicy::default()
                .with_max_tries(Some(50))
                .with_delay(Duration::from_millis(50))
                .with_max_delay(Duration::from_millis(200)),
        )
        .connect()
        .await
        .unwrap();
    c.create("/retried", "ok", &CreateOptions::persistent())
        .await
        .unwrap();

    // The server becomes unreachable; a plain call fails, a retried one waits it out.
    proxy.set_fault(Fault::Refuse);
    proxy.cut();
    let e = c.get_data("/retried").await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    let retried = {
        let c = c.clone();
        tokio::spawn(async move { c.retry(|| c.get_data("/retried")).await })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    proxy.set_fault(Fault::Pass);
    let (data, _) = retried.await.unwrap().unwrap();
    assert_eq!(&data[..], b"ok");
    // Errors that are not about the connection are not retried.
    let e = c.retry(|| c.get_data("/no-such-node")).await.unwrap_err();
    assert!(e.is(ErrorCode::NoNode), "{e}");
    c.close().await;
}
