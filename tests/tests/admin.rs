//! The four-letter words as typed calls, through both drivers, against a real server; the
//! errors an operator meets; and zk-sim's answers read by the same parsers.

use std::time::Duration;

use zk_tests::{client, shared_server, shared_sim};
use zk_tokio::CreateOptions;
use zk_tokio::admin::{self, AdminError, Mode};

const T: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_word_typed_through_both_drivers() {
    let server = shared_server();
    let host = server.connect_string();
    let c = client(&host).await;
    c.create("/admin", "x", &CreateOptions::persistent())
        .await
        .unwrap();
    let (_, _, _data_watch) = c.get_data_watch("/admin").await.unwrap();
    let (_, _, _child_watch) = c.get_children_watch("/").await.unwrap();

    admin::ask(&host, admin::Ruok, T).await.unwrap();
    assert!(!admin::ask(&host, admin::Isro, T).await.unwrap());

    let srvr = admin::ask(&host, admin::Srvr, T).await.unwrap();
    assert_eq!((srvr.mode, srvr.read_only), (Mode::Standalone, false));
    assert!(srvr.version.starts_with("3.8"), "{}", srvr.version);
    assert!(
        srvr.node_count >= 5 && srvr.zxid > 0 && srvr.connections >= 1,
        "{srvr:?}"
    );
    assert!(srvr.clients.is_empty());

    let stat = admin::ask(&host, admin::Stat, T).await.unwrap();
    assert_eq!(stat.mode, Mode::Standalone);
    assert!(!stat.clients.is_empty(), "{stat:?}");
    assert_eq!(stat.node_count, srvr.node_count);

    let mntr = admin::ask(&host, admin::Mntr, T).await.unwrap();
    assert_eq!(mntr.mode(), Some(Mode::Standalone));
    assert_eq!(mntr.int("znode_count"), Some(srvr.node_count as i64));
    assert_eq!(mntr.int("watch_count"), Some(2));
    assert!(
        mntr.get("zk_avg_latency")
            .and_then(|v| v.as_f64())
            .is_some()
    );
    assert!(mntr.entries.len() > 50, "{}", mntr.entries.len());

    let conf = admin::ask(&host, admin::Conf, T).await.unwrap();
    let port = host.rsplit(':').next().unwrap();
    assert!(
        conf.contains(&("clientPort".into(), port.into())),
        "{conf:?}"
    );

    let cons = admin::ask(&host, admin::Cons, T).await.unwrap();
    let ours = cons
        .iter()
        .find(|k| k.session_id == Some(c.session_id()))
        .unwrap_or_else(|| panic!("our session in {cons:?}"));
    let negotiated = c.session_timeout().unwrap().as_millis() as i64;
    assert_eq!(ours.timeout_ms, Some(negotiated));
    assert!(
        ours.received >= 4 && ours.last_operation.is_some(),
        "{ours:?}"
    );

    let wchs = admin::ask(&host, admin::Wchs, T).await.unwrap();
    // The server counts data watches only: the child watch on / is not in wchs.
    assert_eq!((wchs.connections, wchs.paths, wchs.watches), (1, 1, 1));

    let envi = admin::ask(&host, admin::Envi, T).await.unwrap();
    assert!(
        envi.iter()
            .any(|(k, v)| k == "zookeeper.version" && v.starts_with("3.8"))
    );

    // The blocking driver reads the same answers.
    let blocking_host = host.clone();
    let (b_srvr, b_cons, b_wchs) = tokio::task::spawn_blocking(move || {
        let h = blocking_host.as_str();
        zk_mio::admin::ask(h, zk_mio::admin::Ruok, T).unwrap();
        (
            zk_mio::admin::ask(h, zk_mio::admin::Srvr, T).unwrap(),
            zk_mio::admin::ask(h, zk_mio::admin::Cons, T).unwrap(),
            zk_mio::admin::ask(h, zk_mio::admin::Wchs, T).unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(b_srvr.mode, Mode::Standalone);
    assert!(b_cons.iter().any(|k| k.session_id == Some(c.session_id())));
    assert_eq!(b_wchs, wchs);

    c.delete("/admin", None).await.unwrap();
    c.close().await;
}

#[tokio::test]
async fn an_operator_gets_typed_errors() {
    // Nothing listens: the cause names the host.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("127.0.0.1:{}", free.local_addr().unwrap().port());
    drop(free);
    let e = admin::ask(&closed, admin::Ruok, T).await.unwrap_err();
    assert!(matches!(e, AdminError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains(&closed), "{e}");
    let e = zk_mio::admin::ask(&closed, admin::Ruok, T).unwrap_err();
    assert!(matches!(e, AdminError::Io { .. }), "{e:?}");

    // A listener that never answers: a timeout, on time.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_host = silent.local_addr().unwrap().to_string();
    let short = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let e = admin::ask(&silent_host, admin::Srvr, short)
        .await
        .unwrap_err();
    assert!(matches!(e, AdminError::Timeout { .. }), "{e:?}");
    let e = zk_mio::admin::ask(&silent_host, admin::Srvr, short).unwrap_err();
    assert!(matches!(e, AdminError::Timeout { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(silent);

    // Bad addresses, before any connection.
    for bad in ["", "a:1,b:2", "host:99999", "::1"] {
        let e = admin::ask(bad, admin::Ruok, T).await.unwrap_err();
        assert!(matches!(e, AdminError::BadHost(_)), "{bad}: {e:?}");
    }
    assert!(matches!(
        admin::ask_each("a:1,,b", admin::Ruok, T).await,
        Err(AdminError::Hosts(_))
    ));
}

/// zk-sim answers every word the parsers read, as the real server prints it, and refuses
/// a word outside its whitelist as the real server does.
#[tokio::test]
async fn the_model_answers_the_same_parsers() {
    let host = shared_sim().connect_string();
    admin::ask(&host, admin::Ruok, T).await.unwrap();
    assert!(!admin::ask(&host, admin::Isro, T).await.unwrap());
    let srvr = admin::ask(&host, admin::Srvr, T).await.unwrap();
    assert_eq!(srvr.mode, Mode::Standalone);
    let mntr = admin::ask(&host, admin::Mntr, T).await.unwrap();
    assert_eq!(mntr.mode(), Some(Mode::Standalone));
    // A session, so `cons` and `wchs` have something to tell.
    let c = zk_tokio::Client::connect(&host).await.unwrap();
    c.create_all("/admin-model", "").await.unwrap();
    let (_, _, _watch) = c.get_data_watch("/admin-model").await.unwrap();
    let conf = admin::ask(&host, admin::Conf, T).await.unwrap();
    let port = shared_sim().addr().port().to_string();
    assert!(conf.contains(&("clientPort".into(), port)), "{conf:?}");
    let cons = admin::ask(&host, admin::Cons, T).await.unwrap();
    let ours = cons
        .iter()
        .find(|c2| c2.session_id == Some(c.session_id()))
        .expect("our session's connection");
    assert_eq!(ours.last_operation.as_deref(), Some("GETD"));
    let stat = admin::ask(&host, admin::Stat, T).await.unwrap();
    assert!(stat.clients.len() >= 2, "{stat:?}");
    let wchs = admin::ask(&host, admin::Wchs, T).await.unwrap();
    assert!(wchs.watches >= 1, "{wchs:?}");
    let envi = admin::ask(&host, admin::Envi, T).await.unwrap();
    assert!(
        envi.iter()
            .any(|(k, v)| k == "zookeeper.version" && v.starts_with("3.8.0"))
    );
    c.delete_all("/admin-model").await.unwrap();
    c.close().await;

    // A real server's default whitelist (srvr only).
    let strict = zk_sim::SimServer::bind_with(
        zk_sim::Config::standalone().four_letter_words(zk_sim::Whitelist::default_server()),
        &["127.0.0.1:0"],
    )
    .await
    .unwrap();
    let e = admin::ask(&strict.connect_string(), admin::Conf, T)
        .await
        .unwrap_err();
    assert!(matches!(e, AdminError::NotAllowed("conf")), "{e:?}");
    assert!(e.to_string().contains("4lw.commands.whitelist"), "{e}");
}
