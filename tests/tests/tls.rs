//! TLS against real ZooKeeper 3.8 servers serving a `secureClientPort` through Netty, with
//! certificates made by each run: every kind of operation, x509 identities in ACLs,
//! failover and session resumption across a TLS ensemble through the fault proxy, and the
//! words a user reads when a handshake fails. Both clients: async (tokio) and blocking (mio).

use std::io::Write as _;
use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::Duration;

use zk_harness::{ClientAuth, Ensemble, Pki, Proxy, ServerOptions, ServerTls, Validity, ZkServer};
use zk_tokio::{
    Acl, AddWatchMode, CreateOptions, ErrorCode, EventType, Id, ReadOp, ReadResult, SessionState,
    TlsOptions, perms,
};

/// One TLS server for the tests that need no special one. It asks for a client certificate
/// (`want`), so sessions with one get an x509 identity and sessions without one still
/// connect, and it accepts the SASL login of `erin`.
struct Secured {
    pki: Pki,
    server: ZkServer,
}

fn secured() -> &'static Secured {
    static SECURED: OnceLock<Secured> = OnceLock::new();
    SECURED.get_or_init(|| {
        let pki = Pki::new("zk tls test CA").expect("make a CA");
        let tls = ServerTls::new(&pki)
            .expect("make the server certificate")
            .client_auth(ClientAuth::Want);
        let server = ZkServer::standalone_with(
            ServerOptions::default()
                .tls(tls)
                .sasl_users(&[("erin", "over-tls")]),
        )
        .expect("start a TLS server");
        Secured { pki, server }
    })
}

fn secure_hosts() -> String {
    secured()
        .server
        .secure_connect_string()
        .expect("the server serves TLS")
}

/// Trusts `pki`'s CA.
fn trusting(pki: &Pki) -> TlsOptions {
    TlsOptions::builder()
        .ca_pem(pki.ca_pem())
        .unwrap()
        .build()
        .unwrap()
}

/// Trusts `pki`'s CA and presents a certificate for `CN=<name>`.
fn as_client(pki: &Pki, name: &str) -> TlsOptions {
    let cert = pki.client_cert(name).unwrap();
    TlsOptions::builder()
        .ca_pem(pki.ca_pem())
        .unwrap()
        .client_cert_pem(&cert.cert_pem, &cert.key_pem)
        .unwrap()
        .build()
        .unwrap()
}

async fn connect(hosts: &str, tls: TlsOptions) -> zk_tokio::Client {
    zk_tokio::Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(20))
        .tls(tls)
        .connect()
        .await
        .expect("connect over TLS")
}

/// Connects with `tls` for at most two seconds and returns the error a user would read.
async fn refused(hosts: &str, tls: TlsOptions) -> String {
    let result = zk_tokio::Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(2))
        .tls(tls)
        .connect()
        .await;
    match result {
        Ok(_) => panic!("connecting to {hosts} should fail"),
        Err(e) => {
            eprintln!("connecting to {hosts}: {e}");
            e.to_string()
        }
    }
}

#[tokio::test]
async fn the_async_client_runs_every_kind_of_operation_over_tls() {
    let s = secured();
    let c = connect(&secure_hosts(), trusting(&s.pki)).await;
    let root = "/tls-async";
    let _ = c.delete_all(root).await;
    c.create(root, "r", &CreateOptions::persistent())
        .await
        .unwrap();
    let (path, stat) = c
        .create2(&format!("{root}/a"), "hello", &CreateOptions::persistent())
        .await
        .unwrap();
    assert_eq!(path, "/tls-async/a");
    assert_eq!(stat.version, 0);
    let seq = c
        .create(
            &format!("{root}/e-"),
            "",
            &CreateOptions::ephemeral_sequential(),
        )
        .await
        .unwrap();
    assert!(seq.starts_with("/tls-async/e-"), "{seq}");
    assert_eq!(c.get_ephemerals(root).await.unwrap(), vec![seq.clone()]);

    // Data, versions, a one-shot watch and its event.
    let (data, stat, changed) = c.get_data_watch("/tls-async/a").await.unwrap();
    assert_eq!(&data[..], b"hello");
    c.set_data("/tls-async/a", "world", Some(stat.version))
        .await
        .unwrap();
    assert_eq!(changed.await.kind, EventType::NodeDataChanged);
    assert_eq!(
        c.set_data("/tls-async/a", "x", Some(0)).await.unwrap_err(),
        zk_tokio::Error::Server {
            code: ErrorCode::BadVersion,
            path: Some("/tls-async/a".into())
        }
    );

    // Children, counts, ACLs, sync, a read transaction, whoami, the config.
    let mut kids = c.get_children(root).await.unwrap();
    kids.sort();
    assert_eq!(kids.len(), 2);
    assert_eq!(c.get_children2(root).await.unwrap().1.num_children, 2);
    assert_eq!(c.get_all_children_number(root).await.unwrap(), 2);
    let (acl, astat) = c.get_acl("/tls-async/a").await.unwrap();
    assert_eq!(acl, Acl::open_unsafe());
    c.set_acl("/tls-async/a", Acl::read_unsafe(), Some(astat.aversion))
        .await
        .unwrap();
    assert_eq!(
        c.set_data("/tls-async/a", "no", None).await.unwrap_err(),
        zk_tokio::Error::Server {
            code: ErrorCode::NoAuth,
            path: Some("/tls-async/a".into())
        }
    );
    assert_eq!(c.sync(root).await.unwrap(), root);
    let reads = c
        .multi_read(&[
            ReadOp::GetData("/tls-async/a".into()),
            ReadOp::GetChildren("/tls-async/missing".into()),
        ])
        .await
        .unwrap();
    assert!(matches!(&reads[0], ReadResult::Data(d, _) if &d[..] == b"world"));
    assert!(matches!(reads[1], ReadResult::Error(ErrorCode::NoNode)));
    assert!(!c.whoami().await.unwrap().is_empty());
    c.get_config().await.unwrap();

    // A write transaction and a persistent recursive watch.
    let mut watch = c
        .add_watch(root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    c.transaction()
        .create(&format!("{root}/t1"), "1", &CreateOptions::persistent())
        .create(&format!("{root}/t2"), "2", &CreateOptions::persistent())
        .commit()
        .await
        .unwrap();
    for expected in ["/tls-async/t1", "/tls-async/t2"] {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("a watch event in time")
            .expect("the watch is open");
        assert_eq!(event.kind, EventType::NodeCreated);
        assert_eq!(event.path, expected);
    }
    assert!(c.exists("/tls-async/t2").await.unwrap().is_some());
    c.delete(&format!("{root}/t2"), Some(0)).await.unwrap();
    assert!(c.delete_all(root).await.unwrap() >= 4);
    c.close().await;
}

#[tokio::test]
async fn a_client_certificate_is_an_x509_identity_for_acls() {
    let s = secured();
    let hosts = secure_hosts();
    let alice = connect(&hosts, as_client(&s.pki, "alice")).await;
    let bob = connect(&hosts, as_client(&s.pki, "bob")).await;
    let anonymous = connect(&hosts, trusting(&s.pki)).await;

    let ids = alice.whoami().await.unwrap();
    assert!(
        ids.iter()
            .any(|i| i.auth_scheme == "x509" && i.user == "CN=alice"),
        "alice's identities: {ids:?}"
    );
    let path = "/tls-x509-alice";
    let _ = alice.delete(path, None).await;
    let only_alice = vec![Acl::new(perms::ALL, Id::new("x509", "CN=alice"))];
    alice
        .create(
            path,
            "secret",
            &CreateOptions::persistent().with_acl(only_alice),
        )
        .await
        .unwrap();
    assert_eq!(&alice.get_data(path).await.unwrap().0[..], b"secret");
    for other in [&bob, &anonymous] {
        assert_eq!(
            other.get_data(path).await.unwrap_err(),
            zk_tokio::Error::Server {
                code: ErrorCode::NoAuth,
                path: Some(path.into())
            }
        );
    }
    alice.delete(path, None).await.unwrap();
    for c in [alice, bob, anonymous] {
        c.close().await;
    }
}

#[tokio::test]
async fn sasl_and_a_client_certificate_together_give_both_identities() {
    let s = secured();
    let c = zk_tokio::Client::builder(&secure_hosts())
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(20))
        .tls(as_client(&s.pki, "erin"))
        .sasl_digest("erin", "over-tls")
        .connect()
        .await
        .unwrap();
    let ids = c.whoami().await.unwrap();
    for (scheme, user) in [("x509", "CN=erin"), ("sasl", "erin")] {
        assert!(
            ids.iter()
                .any(|i| i.auth_scheme == scheme && i.user == user),
            "{scheme}:{user} missing from {ids:?}"
        );
    }
    c.close().await;
    let e = zk_tokio::Client::builder(&secure_hosts())
        .session_timeout(Duration::from_secs(4))
        .tls(trusting(&s.pki))
        .sasl_digest("erin", "wrong")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(e, zk_tokio::Error::AuthFailed);
}

#[tokio::test]
async fn failed_handshakes_say_why() {
    let s = secured();
    let hosts = secure_hosts();

    let stranger = Pki::new("another CA").unwrap();
    let e = refused(&hosts, trusting(&stranger)).await;
    assert!(e.contains("not signed by a trusted CA"), "{e}");

    let renamed = TlsOptions::builder()
        .ca_pem(s.pki.ca_pem())
        .unwrap()
        .server_name("zk.example.com")
        .unwrap()
        .build()
        .unwrap();
    let e = refused(&hosts, renamed).await;
    assert!(e.contains("does not name the host"), "{e}");

    // A TLS client on the plain client port: the server drops the ClientHello.
    let e = refused(&s.server.connect_string(), trusting(&s.pki)).await;
    assert!(e.contains("plain client port"), "{e}");

    // Something that is not a TLS server at all answers the ClientHello with text.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let e = refused(&addr.to_string(), trusting(&s.pki)).await;
    assert!(e.contains("does not speak TLS"), "{e}");

    // Every message names the host it is about.
    assert!(e.contains(&addr.to_string()), "{e}");
}

#[tokio::test]
async fn expired_certificates_are_refused_on_both_sides() {
    let pki = Pki::new("expiry CA").unwrap();
    // A server whose own certificate expired, and one that needs client certificates.
    let expired_server = ServerTls {
        server: pki
            .leaf("zookeeper", &["localhost", "127.0.0.1"], Validity::Expired)
            .unwrap(),
        trust_pem: pki.ca_pem(),
        client_auth: ClientAuth::None,
    };
    let stale = ZkServer::standalone_with(ServerOptions::default().tls(expired_server)).unwrap();
    let e = refused(&stale.secure_connect_string().unwrap(), trusting(&pki)).await;
    assert!(e.contains("expired"), "{e}");

    let strict = ZkServer::standalone_with(
        ServerOptions::default().tls(ServerTls::new(&pki).unwrap().client_auth(ClientAuth::Need)),
    )
    .unwrap();
    let hosts = strict.secure_connect_string().unwrap();
    let old = pki.leaf("old", &[], Validity::Expired).unwrap();
    let expired_client = TlsOptions::builder()
        .ca_pem(pki.ca_pem())
        .unwrap()
        .client_cert_pem(&old.cert_pem, &old.key_pem)
        .unwrap()
        .build()
        .unwrap();
    let e = refused(&hosts, expired_client).await;
    assert!(e.contains("client certificate"), "{e}");
    let e = refused(&hosts, trusting(&pki)).await;
    assert!(e.contains("client certificate"), "{e}");
    // With a current certificate the same server lets the client in.
    let c = connect(&hosts, as_client(&pki, "carol")).await;
    c.exists("/").await.unwrap();
    c.close().await;
}

#[tokio::test]
async fn bad_tls_settings_are_typed_errors() {
    let e = TlsOptions::builder().build().unwrap_err();
    assert!(matches!(e, zk_tokio::Error::Tls(_)), "{e:?}");
    assert!(e.to_string().contains("ca_pem"), "{e}");
    let e = TlsOptions::builder().ca_pem("not a pem").unwrap_err();
    assert!(e.to_string().contains("no `BEGIN CERTIFICATE`"), "{e}");
    let pki = Pki::new("settings CA").unwrap();
    let a = pki.client_cert("a").unwrap();
    let b = pki.client_cert("b").unwrap();
    let e = TlsOptions::builder()
        .ca_pem(pki.ca_pem())
        .unwrap()
        .client_cert_pem(&a.cert_pem, "garbage")
        .unwrap_err();
    assert!(e.to_string().contains("no usable private key"), "{e}");
    let e = TlsOptions::builder()
        .ca_pem(pki.ca_pem())
        .unwrap()
        .client_cert_pem(&a.cert_pem, &b.key_pem)
        .unwrap()
        .build();
    // rustls checks that a key fits its certificate only where the provider can; either
    // way nothing panics, and a mismatch never connects.
    if let Err(e) = e {
        assert!(e.to_string().contains("cannot be used together"), "{e}");
    }
    let e = TlsOptions::builder().server_name("bad name!").unwrap_err();
    assert!(e.to_string().contains("neither a DNS name"), "{e}");
}

#[tokio::test]
async fn a_tls_session_fails_over_and_resumes_through_the_fault_proxy() {
    let pki = Pki::new("ensemble CA").unwrap();
    let ensemble = Ensemble::start_with(
        3,
        ServerOptions::default()
            .tls(ServerTls::new(&pki).unwrap())
            .sasl_users(&[("frank", "failover")]),
    )
    .unwrap();
    // One proxy in front of each member's TLS port: the proxy moves TLS bytes as it moves
    // any others, and the certificates name 127.0.0.1, which the proxies also listen on.
    let proxies: Vec<Proxy> = ensemble
        .servers()
        .iter()
        .map(|s| {
            let port = s.secure_port().unwrap();
            Proxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], port))).unwrap()
        })
        .collect();
    let hosts: Vec<String> = proxies.iter().map(|p| p.connect_string()).collect();
    // The async client also logs in by SASL: each new connection must log in again before
    // the node only `sasl:frank` may read can be read.
    let c = zk_tokio::Client::builder(&hosts.join(","))
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(20))
        .tls(trusting(&pki))
        .sasl_digest("frank", "failover")
        .connect()
        .await
        .unwrap();
    let id = c.session_id();
    let joined = hosts.join(",");
    let tls = trusting(&pki);
    let b = tokio::task::spawn_blocking(move || blocking(&joined, tls))
        .await
        .unwrap();
    let blocking_id = b.session_id();
    b.create("/tls-failover-blocking", "b", &CreateOptions::ephemeral())
        .unwrap();
    let path = "/tls-failover";
    let _ = c.delete(path, None).await;
    c.create(
        path,
        "mine",
        &CreateOptions::ephemeral().with_acl(vec![Acl::new(perms::ALL, Id::new("sasl", "frank"))]),
    )
    .await
    .unwrap();
    let mut states = c.state_events();
    for round in 0..2 {
        let current = c.server().expect("connected");
        let index = hosts
            .iter()
            .position(|h| *h == current.to_string())
            .expect("a proxy's address");
        proxies[index].set_fault(zk_harness::Fault::BlackHole);
        // The session notices, moves to another member and resumes.
        let resumed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(server) = c.server()
                    && server.to_string() != hosts[index]
                    && c.state() == SessionState::Connected
                {
                    return server;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("round {round}: no resumption within 10 s"));
        assert_ne!(resumed.to_string(), hosts[index]);
        assert_eq!(c.session_id(), id, "the same session, resumed");
        assert_eq!(&c.get_data(path).await.unwrap().0[..], b"mine");
        proxies[index].set_fault(zk_harness::Fault::Pass);
    }
    // Disconnected and connected again, never expired.
    let mut seen = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(100), states.next()).await
    {
        seen.push(event);
    }
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, zk_tokio::StateEvent::Session(SessionState::Expired))),
        "{seen:?}"
    );
    c.close().await;
    // The blocking client, alone on the proxies now: black-hole the proxy it uses; it
    // resumes elsewhere with the same session.
    let b = tokio::task::spawn_blocking(move || {
        for round in 0..2 {
            let before: Vec<u64> = proxies_accepted(&proxies);
            let current = b.server().expect("connected").to_string();
            let used = hosts
                .iter()
                .position(|h| *h == current)
                .expect("a proxy carries the blocking session");
            proxies[used].set_fault(zk_harness::Fault::BlackHole);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let moved = proxies_accepted(&proxies)
                    .iter()
                    .zip(&before)
                    .enumerate()
                    .any(|(i, (now, then))| i != used && now > then);
                if moved && b.state() == SessionState::Connected {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "round {round}: the blocking client did not resume within 10 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(b.session_id(), blocking_id, "the same session, resumed");
            assert_eq!(&b.get_data("/tls-failover-blocking").unwrap().0[..], b"b");
            proxies[used].set_fault(zk_harness::Fault::Pass);
            proxies[used].drop_connections();
        }
        b
    })
    .await
    .unwrap();
    b.close();
    drop(ensemble);
}

// ----- the blocking client (the mio `Connection` inside) -----

fn blocking(hosts: &str, tls: TlsOptions) -> zk_mio::blocking::Client {
    zk_mio::blocking::Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(20))
        .tls(tls)
        .connect()
        .expect("connect the blocking client over TLS")
}

#[test]
fn the_blocking_client_runs_operations_and_watches_over_tls() {
    let s = secured();
    let c = blocking(&secure_hosts(), as_client(&s.pki, "dave"));
    let ids = c.whoami().unwrap();
    assert!(
        ids.iter()
            .any(|i| i.auth_scheme == "x509" && i.user == "CN=dave"),
        "{ids:?}"
    );
    let root = "/tls-blocking";
    let _ = c.delete_all(root);
    c.create(root, "r", &CreateOptions::persistent()).unwrap();
    let (data, stat, changed) = c.get_data_watch(root).unwrap();
    assert_eq!(&data[..], b"r");
    c.set_data(root, "s", Some(stat.version)).unwrap();
    assert_eq!(changed.wait().kind, EventType::NodeDataChanged);
    // Enough data to take several TLS records each way.
    let big = vec![7u8; 200_000];
    c.create(
        &format!("{root}/big"),
        big.clone(),
        &CreateOptions::persistent(),
    )
    .unwrap();
    assert_eq!(
        c.get_data(&format!("{root}/big")).unwrap().0.len(),
        big.len()
    );
    c.transaction()
        .create(&format!("{root}/t"), "t", &CreateOptions::persistent())
        .check(root, 1)
        .commit()
        .unwrap();
    assert_eq!(c.get_all_children_number(root).unwrap(), 2);
    assert_eq!(c.sync(root).unwrap(), root);
    assert_eq!(c.delete_all(root).unwrap(), 3);
    c.close();
}

#[test]
fn the_blocking_client_says_why_a_handshake_failed() {
    let s = secured();
    let refuse = |hosts: &str, tls: TlsOptions| -> String {
        match zk_mio::blocking::Client::builder(hosts)
            .session_timeout(Duration::from_secs(4))
            .connect_timeout(Duration::from_secs(2))
            .tls(tls)
            .connect()
        {
            Ok(_) => panic!("connecting to {hosts} should fail"),
            Err(e) => {
                eprintln!("blocking, connecting to {hosts}: {e}");
                e.to_string()
            }
        }
    };
    let stranger = Pki::new("another CA").unwrap();
    let e = refuse(&secure_hosts(), trusting(&stranger));
    assert!(e.contains("not signed by a trusted CA"), "{e}");
    let e = refuse(&s.server.connect_string(), trusting(&s.pki));
    assert!(e.contains("plain client port"), "{e}");
    let renamed = TlsOptions::builder()
        .ca_pem(s.pki.ca_pem())
        .unwrap()
        .server_name("zk.example.com")
        .unwrap()
        .build()
        .unwrap();
    let e = refuse(&secure_hosts(), renamed);
    assert!(e.contains("does not name the host"), "{e}");
}

fn proxies_accepted(proxies: &[Proxy]) -> Vec<u64> {
    proxies.iter().map(|p| p.accepted()).collect()
}

#[test]
fn a_plain_client_on_a_tls_port_keeps_trying_and_says_what_it_met() {
    let s = secured();
    let proxy = Proxy::start(std::net::SocketAddr::from((
        [127, 0, 0, 1],
        s.server.secure_port().unwrap(),
    )))
    .unwrap();
    let e = zk_mio::blocking::Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(3))
        .connect()
        .unwrap_err();
    eprintln!("plain on a TLS port: {e}");
    assert!(proxy.accepted() >= 2, "{} attempts", proxy.accepted());
}

/// Read-only probes speak TLS too. Both clients sit on a read-only server (the last member
/// of a TLS ensemble that lost its quorum), with a read-write TLS server beside it in their
/// host list, refused by a proxy at first. Once the proxy lets connections through, only a
/// probe that completes a TLS handshake hears `rw`: the clients move there by themselves
/// (it belongs to another ensemble, so the move ends in a fresh session there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_probes_over_tls_find_a_read_write_server() {
    let pki = Pki::new("read-only CA").unwrap();
    let options = ServerOptions::default()
        .tls(ServerTls::new(&pki).unwrap())
        .read_only_sessions();
    let mut ensemble = Ensemble::start_with(3, options.clone()).unwrap();
    let writable = ZkServer::standalone_with(options).unwrap();
    ensemble = tokio::task::spawn_blocking(move || {
        ensemble.server_mut(1).stop().unwrap();
        ensemble.server_mut(2).stop().unwrap();
        ensemble
            .server(0)
            .wait_mode(Duration::from_secs(60), |m| m == zk_harness::Mode::ReadOnly)
            .unwrap();
        ensemble
    })
    .await
    .unwrap();
    let secure =
        |s: &ZkServer| std::net::SocketAddr::from(([127, 0, 0, 1], s.secure_port().unwrap()));
    let read_only = Proxy::start(secure(ensemble.server(0))).unwrap();
    let read_write = Proxy::start(secure(&writable)).unwrap();
    read_write.set_fault(zk_harness::Fault::Refuse);
    let hosts = format!(
        "{},{}",
        read_only.connect_string(),
        read_write.connect_string()
    );
    let c = zk_tokio::Client::builder(&hosts)
        .session_timeout(Duration::from_secs(6))
        .connect_timeout(Duration::from_secs(30))
        .read_only(true)
        .tls(trusting(&pki))
        .connect()
        .await
        .unwrap();
    assert_eq!(c.state(), SessionState::ConnectedReadOnly);
    let (joined, tls) = (hosts.clone(), trusting(&pki));
    let b = tokio::task::spawn_blocking(move || {
        zk_mio::blocking::Client::builder(&joined)
            .session_timeout(Duration::from_secs(6))
            .connect_timeout(Duration::from_secs(30))
            .read_only(true)
            .tls(tls)
            .connect()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(b.state(), SessionState::ConnectedReadOnly);

    read_write.set_fault(zk_harness::Fault::Pass);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while c.state() != SessionState::Connected || b.state() != SessionState::Connected {
        assert!(
            std::time::Instant::now() < deadline,
            "still {:?} and {:?} a minute after a read-write server appeared",
            c.state(),
            b.state()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        c.server().map(|h| h.to_string()),
        Some(read_write.connect_string())
    );
    c.create("/tls-rw-found", "", &CreateOptions::ephemeral())
        .await
        .unwrap();
    c.close().await;
    b.close();
    drop(ensemble);
}

/// The TLS handshake is an await point of `connect()`: a server whose answers are lost
/// (a black-holed link) makes connect fail within its connect timeout, saying so, and a
/// connect future dropped in the middle of the handshake leaves nothing behind: its
/// connection closes and a later connect through the same link works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_or_abandoned_tls_handshake_leaves_nothing_behind() {
    let s = secured();
    let port = s.server.secure_port().expect("the server serves TLS");
    let proxy = Proxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    proxy.set_fault(zk_harness::Fault::BlackHole);
    let hosts = proxy.connect_string();

    // Lost replies: the ClientHello goes out, nothing comes back.
    let started = std::time::Instant::now();
    let err = zk_tokio::Client::builder(&hosts)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(1))
        .tls(trusting(&s.pki))
        .connect()
        .await
        .expect_err("nothing answers");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(err.is(ErrorCode::ConnectionLoss), "{err}");
    eprintln!("a black-holed TLS server: {err}");

    // Dropped mid-handshake: the future goes away while the handshake waits.
    let before = proxy.accepted();
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        zk_tokio::Client::builder(&hosts)
            .connect_timeout(Duration::from_secs(20))
            .tls(trusting(&s.pki))
            .connect(),
    )
    .await;
    assert!(
        dropped.is_err(),
        "the handshake cannot finish through a black hole"
    );
    assert!(proxy.accepted() > before, "the connection was made");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while proxy.open_connections() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a dropped connect left its connection open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The same link, answering again: a whole session.
    proxy.set_fault(zk_harness::Fault::Pass);
    let c = connect(&hosts, trusting(&s.pki)).await;
    assert!(c.exists("/").await.unwrap().is_some());
    c.close().await;
}
