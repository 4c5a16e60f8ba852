//! zk-sim's testing API, as a user's test suite meets it: a server or an ensemble on free
//! ports, faults on a member, a session or a connection, and the server's history. The
//! first test is the README's example.

use std::time::Duration;

use zk_proto::session::{SessionState, StateEvent};
use zk_sim::{BlockingSimServer, SimServer, TxnOp};
use zk_tokio::{Client, CreateOptions};

// Generous: several real servers may start at once beside these tests.
const WAIT: Duration = Duration::from_secs(60);

async fn client(hosts: &str) -> Client {
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .connect()
        .await
        .expect("a session on the model")
}

/// Waits for the first state event `pred` accepts.
async fn wait_state(events: &mut zk_tokio::StateEvents, pred: impl Fn(StateEvent) -> bool) {
    tokio::time::timeout(WAIT, async {
        while let Some(e) = events.next().await {
            if pred(e) {
                return;
            }
        }
        panic!("the client ended first");
    })
    .await
    .expect("the state in time");
}

#[tokio::test]
async fn the_readme_example() {
    let zk = SimServer::start().await.unwrap();
    let client = Client::connect(&zk.connect_string()).await.unwrap();
    client
        .create("/worker", "", &CreateOptions::ephemeral())
        .await
        .unwrap();
    // The server expires the session, as after a long partition (Curator's KillSession);
    // the client hears it (listening from before the fault, so nothing is missed).
    let mut states = client.state_events();
    zk.expire_session(client.session_id());
    while states.next().await != Some(StateEvent::Session(SessionState::Expired)) {}
    assert!(zk.node("/worker").is_none());
    // Safety is judged on what the server applied.
    assert!(zk.history().iter().any(|t| matches!(
        &t.op,
        TxnOp::CloseSession { expired: true, deleted } if deleted == &["/worker"]
    )));
}

#[tokio::test]
async fn a_dropped_or_silent_connection_comes_back_to_the_same_session() {
    let zk = SimServer::start().await.unwrap();
    let c = client(&zk.connect_string()).await;
    let session = c.session_id();
    let mut events = c.state_events();
    assert_eq!(zk.drop_connections(session), 1);
    wait_state(&mut events, |e| {
        e == StateEvent::Session(SessionState::Connecting)
    })
    .await;
    wait_state(&mut events, |e| {
        e == StateEvent::Session(SessionState::Connected)
    })
    .await;
    assert_eq!(c.session_id(), session);
    // A black hole closes nothing: the client notices the silence itself.
    assert_eq!(zk.black_hole(session), 1);
    wait_state(&mut events, |e| {
        e == StateEvent::Session(SessionState::Connecting)
    })
    .await;
    wait_state(&mut events, |e| {
        e == StateEvent::Session(SessionState::Connected)
    })
    .await;
    assert_eq!(c.session_id(), session, "resumed within its timeout");
    c.create("/after", "", &CreateOptions::persistent())
        .await
        .unwrap();
    assert!(zk.node("/after").is_some());
    assert_eq!(zk.sessions(), [session]);
}

#[tokio::test]
async fn an_ensemble_loses_its_leader_and_elects_another() {
    let zk = SimServer::start_ensemble(3).await.unwrap();
    assert_eq!(zk.addrs().len(), 3);
    let first = zk.leader().expect("a leader");
    let c = client(&zk.connect_string()).await;
    c.create("/e", "1", &CreateOptions::persistent())
        .await
        .unwrap();
    zk.kill(first);
    let second = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(l) = zk.leader()
                && l != first
            {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a new leader");
    assert_ne!(second, first);
    // The client carries on through the election.
    c.set_data("/e", "2", None).await.unwrap();
    zk.restart(first);
    // A frozen member keeps its connections; the others serve.
    zk.pause(second);
    zk.resume(second);
    assert_eq!(&c.get_data("/e").await.unwrap().0[..], b"2");
}

#[test]
fn a_blocking_test_needs_no_runtime() {
    let zk = BlockingSimServer::start().unwrap();
    let c = zk_mio::blocking::Client::connect(&zk.connect_string()).unwrap();
    c.create("/b", "x", &zk_mio::CreateOptions::ephemeral())
        .unwrap();
    let mut states = c.state_events();
    zk.expire_session(c.session_id());
    let expired = StateEvent::Session(SessionState::Expired);
    while states.next_timeout(WAIT).unwrap() != Some(expired) {}
    assert!(zk.node("/b").is_none());
    let ensemble = BlockingSimServer::start_ensemble(3).unwrap();
    assert_eq!(ensemble.leader(), Some(2), "the highest id leads");
}

/// What a restart from the data directory keeps, on a real server and on zk-sim alike:
/// the tree (null data included), the ephemeral nodes of a session that comes back in
/// time, and the zxid counting on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_from_the_data_directory_keeps_tree_and_sessions() {
    // The real server: stopped and started on its own data directory.
    let mut real = zk_harness::ZkServer::standalone().unwrap();
    let real_hosts = real.connect_string();
    // Long enough for a real server's restart on a loaded machine.
    let long = |hosts: &str| {
        Client::builder(hosts)
            .session_timeout(Duration::from_secs(30))
            .connect()
    };
    let c = long(&real_hosts).await.unwrap();
    let before = script_before_restart(&c).await;
    let mut events = c.state_events();
    real.stop().unwrap();
    real.start().unwrap();
    script_after_restart(&c, &mut events, before).await;
    c.close().await;

    // The model: dropped and bound again on the same port and data directory.
    let dir = std::env::temp_dir().join(format!("zk-sim-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = || {
        zk_sim::Config::standalone()
            .extended_types(true)
            .data_dir(dir.to_str().unwrap())
    };
    let zk = SimServer::bind_with(config(), &["127.0.0.1:0"])
        .await
        .unwrap();
    let addr = zk.addr().to_string();
    let c = long(&zk.connect_string()).await.unwrap();
    let before = script_before_restart(&c).await;
    let mut events = c.state_events();
    zk.stop().await;
    let zk = SimServer::bind_with(config(), &[&addr]).await.unwrap();
    script_after_restart(&c, &mut events, before).await;
    assert_eq!(zk.sessions(), [c.session_id()]);
    c.close().await;
    drop(zk);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes what a restart must keep; returns the session and the last zxid seen.
async fn script_before_restart(c: &Client) -> (i64, i64) {
    c.create_all("/kept/a", "data").await.unwrap();
    c.create(
        "/kept/null",
        zk_tokio::null_data(),
        &CreateOptions::persistent(),
    )
    .await
    .unwrap();
    c.create("/kept/eph", "e", &CreateOptions::ephemeral())
        .await
        .unwrap();
    let (_, stat) = c
        .create2("/kept/seq-", "", &CreateOptions::persistent_sequential())
        .await
        .unwrap();
    (c.session_id(), stat.czxid)
}

async fn script_after_restart(
    c: &Client,
    events: &mut zk_tokio::StateEvents,
    (session, zxid): (i64, i64),
) {
    // The client notices the server went, and comes back.
    wait_state(events, |e| {
        e == StateEvent::Session(SessionState::Connecting)
    })
    .await;
    wait_state(events, |e| {
        e == StateEvent::Session(SessionState::Connected)
    })
    .await;
    // The same session: the server kept it, and its ephemeral node.
    assert_eq!(c.session_id(), session, "the session resumed");
    let (data, stat) = c.get_data("/kept/eph").await.unwrap();
    assert_eq!((&data[..], stat.ephemeral_owner), (&b"e"[..], session));
    assert_eq!(&c.get_data("/kept/a").await.unwrap().0[..], b"data");
    assert!(zk_tokio::is_null_data(
        &c.get_data("/kept/null").await.unwrap().0
    ));
    // The sequence and the zxid count on from where they were.
    let (path, stat) = c
        .create2("/kept/seq-", "", &CreateOptions::persistent_sequential())
        .await
        .unwrap();
    assert!(path.ends_with("0000000004"), "{path}");
    assert!(stat.czxid > zxid);
    c.delete_all("/kept").await.unwrap();
}

/// The same certificates served by a real server's secure client port and by zk-sim's:
/// a client trusting the CA and showing its certificate runs the same script on both, a
/// client without a certificate is refused by both, and `conf` names the secure port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_served_alike_by_a_real_server_and_zk_sim() {
    use zk_harness::{ClientAuth, Pki, ServerOptions, ServerTls, ZkServer};
    let pki = Pki::new("zk-sim tls diff CA").unwrap();
    let tls = ServerTls::new(&pki).unwrap().client_auth(ClientAuth::Need);
    let key_store = tls.server.key_store_pem();
    let trust = tls.trust_pem.clone();
    let real = ZkServer::standalone_with(ServerOptions::default().tls(tls)).unwrap();
    let model = SimServer::bind_tls(
        zk_sim::Config::standalone(),
        &["127.0.0.1:0"],
        &["127.0.0.1:0"],
        zk_sim::ServerTls::from_pem(
            key_store.as_bytes(),
            Some(trust.as_bytes()),
            zk_sim::ClientAuth::Need,
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let cert = pki.client_cert("alice").unwrap();
    let with_cert = zk_tokio::TlsOptions::builder()
        .ca_pem(pki.ca_pem())
        .unwrap()
        .client_cert_pem(cert.cert_pem.clone(), cert.key_pem.clone())
        .unwrap()
        .build()
        .unwrap();
    let without_cert = zk_tokio::TlsOptions::builder()
        .ca_pem(pki.ca_pem())
        .unwrap()
        .build()
        .unwrap();
    let servers = [
        ("real", real.secure_connect_string().unwrap(), real.addr()),
        (
            "zk-sim",
            model.secure_connect_string().unwrap(),
            model.addr(),
        ),
    ];
    for (name, secure, plain) in servers {
        let c = Client::builder(&secure)
            .tls(with_cert.clone())
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        c.create("/over-tls", "secret", &CreateOptions::ephemeral())
            .await
            .unwrap();
        let (data, _) = c.get_data("/over-tls").await.unwrap();
        assert_eq!(&data[..], b"secret", "{name}");
        c.close().await;
        let refused = Client::builder(&secure)
            .tls(without_cert.clone())
            .connect_timeout(Duration::from_secs(3))
            .connect()
            .await;
        assert!(
            refused.is_err(),
            "{name} let a client without a certificate in"
        );
        let port = secure.rsplit(':').next().unwrap();
        let conf = zk_harness::four_letter(plain, "conf", Duration::from_secs(5)).unwrap();
        assert!(
            conf.contains(&format!("\nsecureClientPort={port}\n")),
            "{name}: {conf}"
        );
    }
}

/// SASL DIGEST-MD5 logins against a real server's JAAS users and zk-sim's: the user's
/// session is `sasl:<user>` for ACLs, a session without the login is refused by such an
/// ACL, and a wrong password ends the session, on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_logins_are_served_alike_by_a_real_server_and_zk_sim() {
    use zk_tokio::{Acl, ErrorCode, Id, perms};
    let real = zk_harness::ZkServer::standalone_with(
        zk_harness::ServerOptions::default().sasl_users(&[("alice", "wonderland")]),
    )
    .unwrap();
    let model = SimServer::bind_with(
        zk_sim::Config::standalone().sasl_digest_user("alice", "wonderland"),
        &["127.0.0.1:0"],
    )
    .await
    .unwrap();
    for (name, hosts) in [
        ("real", real.connect_string()),
        ("zk-sim", model.connect_string()),
    ] {
        let alice = Client::builder(&hosts)
            .sasl_digest("alice", "wonderland")
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let who = alice.whoami().await.unwrap();
        assert!(
            who.iter()
                .any(|i| i.auth_scheme == "sasl" && i.user == "alice"),
            "{name}: {who:?}"
        );
        let path = "/sasl-only";
        alice
            .create(
                path,
                "hers",
                &CreateOptions::ephemeral()
                    .with_acl(vec![Acl::new(perms::ALL, Id::new("sasl", "alice"))]),
            )
            .await
            .unwrap();
        let anonymous = Client::connect(&hosts).await.unwrap();
        let e = anonymous.get_data(path).await.unwrap_err();
        assert!(e.is(ErrorCode::NoAuth), "{name}: {e}");
        anonymous.close().await;
        let wrong = Client::builder(&hosts)
            .sasl_digest("alice", "looking-glass")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await;
        assert!(
            matches!(wrong, Err(zk_tokio::Error::AuthFailed)),
            "{name}: {wrong:?}"
        );
        alice.close().await;
    }
}
