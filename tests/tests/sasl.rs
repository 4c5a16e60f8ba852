//! SASL DIGEST-MD5 against a real ZooKeeper 3.8 server with `DigestLoginModule` users:
//! the login gives the session a `sasl:<user>` identity for ACLs, runs again on every
//! connection, and a wrong password ends the session at once, for good, in both clients.
//! (SASL over TLS and across a failover is in `tls.rs`.)

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use zk_harness::{Proxy, ServerOptions, ZkServer};
use zk_tokio::{Acl, CreateOptions, ErrorCode, Id, SessionState, perms};

fn server() -> &'static ZkServer {
    static SERVER: OnceLock<ZkServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        ZkServer::standalone_with(
            ServerOptions::default().sasl_users(&[("alice", "wonderland"), ("bob", "builder")]),
        )
        .expect("start a server with SASL users")
    })
}

fn builder(hosts: &str) -> zk_tokio::ClientBuilder {
    zk_tokio::Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(20))
}

#[tokio::test]
async fn a_digest_login_is_a_sasl_identity_for_acls() {
    let hosts = server().connect_string();
    let alice = builder(&hosts)
        .sasl_digest("alice", "wonderland")
        .connect()
        .await
        .unwrap();
    let bob = builder(&hosts)
        .sasl_digest("bob", "builder")
        .connect()
        .await
        .unwrap();
    let anonymous = builder(&hosts).connect().await.unwrap();
    let ids = alice.whoami().await.unwrap();
    assert!(
        ids.iter()
            .any(|i| i.auth_scheme == "sasl" && i.user == "alice"),
        "{ids:?}"
    );
    let path = "/sasl-alice";
    let _ = alice.delete(path, None).await;
    alice
        .create(
            path,
            "hers",
            &CreateOptions::persistent()
                .with_acl(vec![Acl::new(perms::ALL, Id::new("sasl", "alice"))]),
        )
        .await
        .unwrap();
    assert_eq!(&alice.get_data(path).await.unwrap().0[..], b"hers");
    for other in [&bob, &anonymous] {
        assert_eq!(
            other.get_data(path).await.unwrap_err(),
            zk_tokio::Error::server(ErrorCode::NoAuth).at_path(path)
        );
    }
    alice.delete(path, None).await.unwrap();
    for c in [alice, bob, anonymous] {
        c.close().await;
    }
}

#[tokio::test]
async fn the_login_runs_again_on_every_connection() {
    let proxy = Proxy::start(server().addr()).unwrap();
    let c = builder(&proxy.connect_string())
        .sasl_digest("bob", "builder")
        .connect()
        .await
        .unwrap();
    let path = "/sasl-bob";
    let _ = c.delete(path, None).await;
    c.create(
        path,
        "his",
        &CreateOptions::ephemeral().with_acl(vec![Acl::new(perms::ALL, Id::new("sasl", "bob"))]),
    )
    .await
    .unwrap();
    for round in 0..3 {
        let id = c.session_id();
        proxy.drop_connections();
        // The read (retried if it went out on the cut connection) waits for the
        // reconnection and its login: without the login it would meet the ACL and fail
        // with NoAuth.
        let (data, _) = c
            .retry(|| c.get_data(path))
            .await
            .unwrap_or_else(|e| panic!("round {round}: the read after a reconnection failed: {e}"));
        assert_eq!(&data[..], b"his");
        assert_eq!(c.session_id(), id, "the same session");
    }
    assert!(proxy.accepted() >= 4, "{} connections", proxy.accepted());
    c.close().await;
}

#[tokio::test]
async fn a_wrong_password_fails_at_once_and_is_never_retried() {
    let proxy = Proxy::start(server().addr()).unwrap();
    let started = Instant::now();
    let e = builder(&proxy.connect_string())
        .sasl_digest("alice", "looking-glass")
        .connect()
        .await
        .unwrap_err();
    eprintln!("a wrong password: {e}");
    assert_eq!(e, zk_tokio::Error::AuthFailed);
    assert!(e.to_string().contains("fix the credentials"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed after {:?}, not at once",
        started.elapsed()
    );
    // An unknown user the same way.
    let e = builder(&proxy.connect_string())
        .sasl_digest("mallory", "x")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(e, zk_tokio::Error::AuthFailed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(proxy.accepted(), 2, "one connection each, no retry loop");

    // A session kept after the refusal reports it on every call.
    let c = builder(&proxy.connect_string())
        .sasl_digest("bob", "wrong")
        .spawn()
        .unwrap();
    let e = c.get_data("/").await.unwrap_err();
    assert_eq!(e, zk_tokio::Error::AuthFailed);
    assert_eq!(c.state(), SessionState::AuthFailed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(proxy.accepted(), 3);
}

#[test]
fn the_blocking_client_logs_in_and_is_refused_the_same_way() {
    let hosts = server().connect_string();
    let c = zk_mio::blocking::Client::builder(&hosts)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(20))
        .sasl_digest("alice", "wonderland")
        .connect()
        .unwrap();
    let ids = c.whoami().unwrap();
    assert!(
        ids.iter()
            .any(|i| i.auth_scheme == "sasl" && i.user == "alice"),
        "{ids:?}"
    );
    c.close();
    let started = Instant::now();
    let e = zk_mio::blocking::Client::builder(&hosts)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(20))
        .sasl_digest("alice", "queen-of-hearts")
        .connect()
        .unwrap_err();
    assert_eq!(e, zk_mio::Error::AuthFailed);
    assert!(started.elapsed() < Duration::from_secs(5));
}
