//! The README's example of testing code against zk-sim with the async client, as written.

use std::time::Duration;

#[tokio::test]
async fn my_code_against_a_model_server() {
    let zk = zk_sim::SimServer::bind("127.0.0.1:0").await.unwrap();
    let client = zk_tokio::Client::connect(&zk.connect_string())
        .await
        .unwrap();
    client
        .create("/jobs", "", &zk_tokio::CreateOptions::persistent())
        .await
        .unwrap();
    // ... the code under test ...
    // Faults go through the model: here the server expires every session now.
    let before = client.session_id();
    zk.with(|model, now| {
        for id in model.sessions() {
            model.expire_session(now, id)
        }
    });
    // The client learns it when it reconnects, starts a new session, and finds the node.
    tokio::time::timeout(Duration::from_secs(10), async {
        while client.session_id() == before || client.state() != zk_tokio::SessionState::Connected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a new session within 10 s");
    assert!(client.exists("/jobs").await.unwrap().is_some());
}

/// create_all and delete_all, written once as plans, through both clients.
#[tokio::test]
async fn create_all_and_delete_all_on_both_clients() {
    let zk = zk_sim::SimServer::bind("127.0.0.1:0").await.unwrap();
    let hosts = zk.connect_string();
    let c = zk_tokio::Client::connect(&hosts).await.unwrap();
    c.create_all("/plans/a/b/c", "leaf").await.unwrap();
    c.create_all("/plans/a/b/c", "again").await.unwrap(); // existing: fine
    c.create_all("/plans/a/x", "").await.unwrap();
    assert_eq!(&c.get_data("/plans/a/b/c").await.unwrap().0[..], b"leaf");
    assert_eq!(c.delete_all("/plans/a").await.unwrap(), 4);
    assert!(c.exists("/plans/a").await.unwrap().is_none());
    assert_eq!(c.delete_all("/plans/missing").await.unwrap(), 0);

    let blocking = tokio::task::spawn_blocking(move || {
        let b = zk_mio::blocking::Client::connect(&hosts).unwrap();
        b.create_all("/plans/m/n", "v").unwrap();
        let removed = b.delete_all("/plans").unwrap();
        b.close();
        removed
    })
    .await
    .unwrap();
    assert_eq!(blocking, 3);
    assert!(c.exists("/plans").await.unwrap().is_none());
    c.close().await;
}

/// The async client's call timeout: a frozen server makes a call fail with CallTimeout in
/// time, and the client works again once the server runs.
#[tokio::test]
async fn a_call_times_out_on_a_frozen_server() {
    let zk = zk_sim::SimServer::bind("127.0.0.1:0").await.unwrap();
    let c = zk_tokio::Client::builder(&zk.connect_string())
        .call_timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    zk.with(|model, now| model.pause(now, 0, None));
    let started = std::time::Instant::now();
    let e = c.get_data("/").await.unwrap_err();
    assert!(matches!(e, zk_tokio::Error::CallTimeout(_)), "{e}");
    assert!(started.elapsed() < Duration::from_secs(1));
    zk.with(|model, now| model.resume(now, 0));
    assert!(c.exists("/").await.unwrap().is_some());
    c.close().await;
}

/// A connect that gives up says why each host failed: one port refuses connections, the
/// other answers the handshake with a frame no server would send.
#[tokio::test]
async fn connect_timeout_names_each_host_and_its_cause() {
    use std::io::Write;
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_port = refused.local_addr().unwrap().port();
    drop(refused);
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_port = garbage.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in garbage.incoming().flatten() {
            // A frame length far above any reply's.
            let _ = stream.write_all(&[0x7f, 0xff, 0xff, 0xff]);
        }
    });
    let hosts = format!("127.0.0.1:{refused_port},127.0.0.1:{garbage_port}");
    let check = |error: String| {
        assert!(
            error.contains(&format!("127.0.0.1:{refused_port}: the connection failed")),
            "{error}"
        );
        assert!(
            error.contains(&format!("127.0.0.1:{garbage_port}: bad frame")),
            "{error}"
        );
    };

    let err = zk_tokio::Client::builder(&hosts)
        .connect_timeout(Duration::from_millis(1500))
        .connect()
        .await
        .expect_err("no host can give a session");
    let zk_tokio::Error::ConnectTimeout { failures, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(failures.len(), 2, "{failures:?}");
    check(err.to_string());

    let hosts2 = hosts.clone();
    let err = tokio::task::spawn_blocking(move || {
        zk_mio::blocking::Client::builder(&hosts2)
            .connect_timeout(Duration::from_millis(1500))
            .connect()
            .expect_err("no host can give a session")
    })
    .await
    .unwrap();
    assert!(
        matches!(err, zk_mio::Error::ConnectTimeout { .. }),
        "{err:?}"
    );
    check(err.to_string());
}

/// `update_hosts` on both clients, on a model ensemble: a session whose server leaves the
/// list moves to one that stays, keeping its session and its data.
#[tokio::test]
async fn update_hosts_moves_a_session_whose_server_left() {
    let addrs = ["127.0.0.1:0"; 3];
    let zk = zk_sim::SimServer::bind_with(zk_sim::Config::ensemble(3), &addrs)
        .await
        .unwrap();
    let [a, b, c] = [0, 1, 2].map(|i| zk.addrs()[i].to_string());
    let client = zk_tokio::Client::connect(&format!("{a},{b},{c}"))
        .await
        .unwrap();
    let id = client.session_id();
    client
        .create("/moved", "v", &zk_tokio::CreateOptions::ephemeral())
        .await
        .unwrap();
    let here = client.server().expect("connected").to_string();
    let others: Vec<&String> = [&a, &b, &c].into_iter().filter(|h| **h != here).collect();
    // A shorter list that keeps this server: no reason to move (only a longer list moves a
    // session whose server stays, with the probability that evens the load).
    assert!(
        !client
            .update_hosts(&format!("{here},{}", others[0]))
            .await
            .unwrap(),
        "the server stays: no move"
    );
    assert!(
        client
            .update_hosts(&format!("{},{}", others[0], others[1]))
            .await
            .unwrap()
    );
    tokio::time::timeout(Duration::from_secs(10), async {
        while client.server().is_none_or(|s| s.to_string() == here) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("moved within 10 s");
    assert_eq!(client.session_id(), id);
    assert_eq!(client.hosts().len(), 2);
    assert!(
        client.exists("/moved").await.unwrap().is_some(),
        "the ephemeral lives on"
    );
    let bad = client.update_hosts("").await.unwrap_err();
    assert!(bad.to_string().contains("connect string"), "{bad}");

    let blocking = tokio::task::spawn_blocking(move || {
        let b_client = zk_mio::blocking::Client::connect(&c).unwrap();
        let id = b_client.session_id();
        assert!(b_client.update_hosts(&a).unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while b_client
            .metrics()
            .unwrap()
            .host
            .is_none_or(|h| h.to_string() != a)
        {
            assert!(std::time::Instant::now() < deadline, "moved within 10 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(b_client.session_id(), id);
        b_client.get_data("/moved").unwrap();
        b_client.close();
    });
    blocking.await.unwrap();
    client.close().await;
}

/// Code written against `zk_tokio::Client`, tested on zk-sim with tokio's clock paused:
/// the runtime jumps over every wait (reconnect backoff, the session timeout), so a cut
/// and an expiry take no wall-clock time. The model reads the same clock as the client.
#[tokio::test(start_paused = true)]
async fn client_code_under_a_cut_and_an_expiry_on_paused_time() {
    use zk_tokio::{CreateOptions, SessionState};
    let zk = zk_sim::SimServer::bind("127.0.0.1:0").await.unwrap();
    let client = zk_tokio::Client::builder(&zk.connect_string())
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    // The code under test: a worker registers itself with an ephemeral node.
    let ephemeral = CreateOptions::ephemeral();
    let register = || client.create("/worker", "w1", &ephemeral);
    register().await.unwrap();
    let first = client.session_id();

    // A cut: the server drops the connection. The session resumes on a new one, and the
    // node stays.
    zk.with(|model, now| {
        for conn in model.connections(0) {
            model.close_connection(now, conn);
        }
    });
    client
        .wait_for(|s| s != SessionState::Connected)
        .await
        .unwrap();
    client
        .wait_for(|s| s == SessionState::Connected)
        .await
        .unwrap();
    assert_eq!(client.session_id(), first);
    assert!(client.exists("/worker").await.unwrap().is_some());

    // An expiry: the node goes with the session; the client starts a new one, where the
    // worker registers again.
    zk.with(|model, now| model.expire_session(now, first));
    tokio::time::timeout(Duration::from_secs(60), async {
        while client.session_id() == first || client.state() != SessionState::Connected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a new session within a minute of virtual time");
    assert!(client.exists("/worker").await.unwrap().is_none());
    register().await.unwrap();
    assert!(client.exists("/worker").await.unwrap().is_some());
    client.close().await;
}

/// Calls dropped after they were sent, and a call whose reply is lost: the client answers
/// the next calls as if nothing happened, and a dropped call that set a watch leaves none
/// on the server.
#[tokio::test]
async fn dropped_calls_and_a_lost_reply_leave_the_client_whole() {
    use futures_util::FutureExt;
    let zk = zk_sim::SimServer::bind("127.0.0.1:0").await.unwrap();
    let client = zk_tokio::Client::connect(&zk.connect_string())
        .await
        .unwrap();
    client
        .create("/d", "v", &zk_tokio::CreateOptions::persistent())
        .await
        .unwrap();

    // Polled once (the request is sent), then dropped before the reply.
    for _ in 0..20 {
        let mut read = Box::pin(client.get_data("/d"));
        assert!(
            (&mut read).now_or_never().is_none(),
            "no reply can be there yet"
        );
        drop(read);
        let mut watch = Box::pin(client.get_data_watch("/d"));
        assert!(
            (&mut watch).now_or_never().is_none(),
            "no reply can be there yet"
        );
        drop(watch);
    }
    assert_eq!(&client.get_data("/d").await.unwrap().0[..], b"v");
    // The watches the dropped calls set were released once their replies came.
    tokio::time::timeout(Duration::from_secs(10), async {
        while zk.with(|model, _| model.watch_count()) != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("no watch left on the server");

    // The next reply is lost: the write lands, the call says ConnectionLoss, and the
    // client goes on on a new connection of the same session.
    let session = client.session_id();
    zk.with(|model, _| {
        for conn in model.connections(0) {
            model.lose_next_reply(conn);
        }
    });
    let lost = client.set_data("/d", "w", None).await;
    assert!(
        matches!(lost, Err(zk_tokio::Error::ConnectionLoss)),
        "{lost:?}"
    );
    assert_eq!(&client.get_data("/d").await.unwrap().0[..], b"w");
    assert_eq!(client.session_id(), session);
    client.close().await;
}

/// The calls both clients gained for one vocabulary, dropped after they were sent or
/// with their reply lost: no watch and no callback is left behind, and the client goes on.
#[tokio::test]
async fn new_calls_dropped_or_with_a_lost_reply_leave_nothing() {
    use futures_util::FutureExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let zk = zk_sim::SimServer::bind("127.0.0.1:0").await.unwrap();
    let client = zk_tokio::Client::connect(&zk.connect_string())
        .await
        .unwrap();
    client
        .create("/n", "v", &zk_tokio::CreateOptions::persistent())
        .await
        .unwrap();
    let fired = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let f = fired.clone();
        let mut call =
            Box::pin(
                client.add_watch_fn("/n", zk_tokio::AddWatchMode::Persistent, move |_| {
                    f.fetch_add(1, Ordering::SeqCst);
                }),
            );
        assert!((&mut call).now_or_never().is_none(), "sent, not answered");
        drop(call);
        let f = fired.clone();
        let mut call = Box::pin(client.exists_watch_fn("/n", move |_| {
            f.fetch_add(1, Ordering::SeqCst);
        }));
        assert!((&mut call).now_or_never().is_none(), "sent, not answered");
        drop(call);
        // Waits and stream reads dropped half way lose nothing.
        let mut events = client.state_events();
        let mut wait = Box::pin(events.next_timeout(Duration::from_secs(5)));
        assert!((&mut wait).now_or_never().is_none());
        drop(wait);
        let mut wait = Box::pin(client.wait_for_timeout(
            |s| s == zk_tokio::SessionState::Expired,
            Duration::from_secs(5),
        ));
        assert!((&mut wait).now_or_never().is_none());
    }
    assert_eq!(&client.get_data("/n").await.unwrap().0[..], b"v");
    tokio::time::timeout(Duration::from_secs(10), async {
        while zk.with(|model, _| model.watch_count()) != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("no watch left on the server");
    client.set_data("/n", "w", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        fired.load(Ordering::SeqCst),
        0,
        "no callback of a dropped call ran"
    );

    // A lost reply: the call says ConnectionLoss, and no watch or callback stays set.
    zk.with(|model, _| {
        for conn in model.connections(0) {
            model.lose_next_reply(conn);
        }
    });
    let f = fired.clone();
    let lost = client
        .add_watch_fn("/n", zk_tokio::AddWatchMode::Persistent, move |_| {
            f.fetch_add(1, Ordering::SeqCst);
        })
        .await;
    assert!(
        matches!(lost, Err(zk_tokio::Error::ConnectionLoss)),
        "{lost:?}"
    );
    client.set_data("/n", "x", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fired.load(Ordering::SeqCst), 0, "the lost call set nothing");
    assert_eq!(zk.with(|model, _| model.watch_count()), 0);
    client.close().await;
}
