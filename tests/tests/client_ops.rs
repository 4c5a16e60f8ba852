//! Every operation of the tokio client against a real server, error paths included.

use std::time::Duration;

use bytes::Bytes;
use zk_proto::digest::digest_acl;
use zk_tests::{client, shared_server};
use zk_tokio::{
    Acl, AddWatchMode, AppState, CreateOptions, ErrorCode, EventType, Id, OpResult, ReadOp,
    ReadResult, SessionState, StateEvent, WatcherType, perms,
};

fn hosts() -> String {
    shared_server().connect_string()
}

#[tokio::test]
async fn create_read_update_delete_and_their_errors() {
    let c = client(&hosts()).await;
    let root = "/crud";
    assert_eq!(
        c.create(root, "r", &CreateOptions::persistent())
            .await
            .unwrap(),
        root
    );
    let (path, stat) = c
        .create2("/crud/a", "hello", &CreateOptions::persistent())
        .await
        .unwrap();
    assert_eq!(path, "/crud/a");
    assert_eq!(stat.data_length, 5);

    let e = c
        .create("/crud/a", "", &CreateOptions::persistent())
        .await
        .unwrap_err();
    assert!(e.is(ErrorCode::NodeExists), "{e}");
    let e = c
        .create("/crud/missing/x", "", &CreateOptions::persistent())
        .await
        .unwrap_err();
    assert!(e.is(ErrorCode::NoNode), "{e}");

    let (data, stat) = c.get_data("/crud/a").await.unwrap();
    assert_eq!(&data[..], b"hello");
    let e = c
        .set_data("/crud/a", "x", Some(stat.version + 1))
        .await
        .unwrap_err();
    assert!(e.is(ErrorCode::BadVersion), "{e}");
    let stat2 = c
        .set_data("/crud/a", "world", Some(stat.version))
        .await
        .unwrap();
    assert_eq!(stat2.version, stat.version + 1);
    assert_eq!(c.exists("/crud/a").await.unwrap(), Some(stat2));
    assert_eq!(c.exists("/crud/nope").await.unwrap(), None);
    let e = c.get_data("/crud/nope").await.unwrap_err();
    assert!(e.is(ErrorCode::NoNode), "{e}");
    // The error names the node, as the caller named it.
    assert_eq!(e.path(), Some("/crud/nope"));
    assert_eq!(
        e.to_string(),
        "/crud/nope: the node does not exist (code -101)"
    );
    assert!(matches!(
        e,
        zk_tokio::Error::Server {
            code: ErrorCode::NoNode,
            ..
        }
    ));

    let e = c.delete(root, None).await.unwrap_err();
    assert!(e.is(ErrorCode::NotEmpty), "{e}");
    let e = c.delete("/crud/a", Some(99)).await.unwrap_err();
    assert!(e.is(ErrorCode::BadVersion), "{e}");
    c.delete("/crud/a", Some(stat2.version)).await.unwrap();
    c.delete(root, None).await.unwrap();
    assert_eq!(c.exists(root).await.unwrap(), None);

    // Bad paths never reach the server.
    let e = c.get_data("no-slash").await.unwrap_err();
    assert!(e.is(ErrorCode::BadArguments), "{e}");
    c.close().await;
}

#[tokio::test]
async fn children_counts_acls_sync_whoami_and_config() {
    let c = client(&hosts()).await;
    c.create_all("/kids/x/y", "").await.unwrap();
    c.create("/kids/z", "", &CreateOptions::persistent())
        .await
        .unwrap();
    let mut kids = c.get_children("/kids").await.unwrap();
    kids.sort();
    assert_eq!(kids, ["x", "z"]);
    let (kids2, stat) = c.get_children2("/kids").await.unwrap();
    assert_eq!(kids2.len(), 2);
    assert_eq!(stat.num_children, 2);
    assert_eq!(c.get_all_children_number("/kids").await.unwrap(), 3);

    let (acl, _) = c.get_acl("/kids").await.unwrap();
    assert_eq!(acl, Acl::open_unsafe());
    let stat = c
        .set_acl("/kids/z", Acl::read_unsafe(), Some(0))
        .await
        .unwrap();
    assert_eq!(stat.aversion, 1);
    let e = c.set_data("/kids/z", "no", None).await.unwrap_err();
    assert!(e.is(ErrorCode::NoAuth), "{e}");
    let e = c.set_acl("/kids/x", vec![], None).await.unwrap_err();
    assert!(e.is(ErrorCode::InvalidAcl), "{e}");

    assert_eq!(c.sync("/kids").await.unwrap(), "/kids");
    let me = c.whoami().await.unwrap();
    assert_eq!(me[0].auth_scheme, "ip");
    // A standalone server has no dynamic configuration, but the node is readable.
    let (_config, _) = c.get_config().await.unwrap();
    c.close().await;
}

#[tokio::test]
async fn ephemeral_and_sequential_nodes() {
    let c = client(&hosts()).await;
    c.create("/eph", "", &CreateOptions::persistent())
        .await
        .unwrap();
    let a = c
        .create("/eph/n-", "", &CreateOptions::ephemeral_sequential())
        .await
        .unwrap();
    let b = c
        .create("/eph/n-", "", &CreateOptions::ephemeral_sequential())
        .await
        .unwrap();
    assert_eq!(a, "/eph/n-0000000000");
    assert_eq!(b, "/eph/n-0000000001");
    let p = c
        .create("/eph/p-", "", &CreateOptions::persistent_sequential())
        .await
        .unwrap();
    assert_eq!(p, "/eph/p-0000000002");
    let e = c
        .create(&format!("{a}/child"), "", &CreateOptions::persistent())
        .await
        .unwrap_err();
    assert!(e.is(ErrorCode::NoChildrenForEphemerals), "{e}");
    let mut mine = c.get_ephemerals("/eph").await.unwrap();
    mine.sort();
    assert_eq!(mine, [a.clone(), b.clone()]);
    let (_, stat) = c.get_data(&a).await.unwrap();
    assert_eq!(stat.ephemeral_owner, c.session_id());

    let observer = client(&hosts()).await;
    c.close().await;
    // Closing the session removes its ephemeral nodes at once.
    assert_eq!(observer.exists(&a).await.unwrap(), None);
    assert_eq!(observer.exists(&b).await.unwrap(), None);
    assert!(observer.exists(&p).await.unwrap().is_some());
    observer.close().await;
}

#[tokio::test]
async fn ttl_and_container_nodes() {
    let c = client(&hosts()).await;
    let (path, _) = c
        .create2(
            "/ttl-node",
            "",
            &CreateOptions::ttl(Duration::from_millis(500)),
        )
        .await
        .unwrap();
    assert_eq!(path, "/ttl-node");
    let seq = c
        .create(
            "/ttl-seq-",
            "",
            &CreateOptions::sequential_ttl(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert!(seq.starts_with("/ttl-seq-"));
    c.create("/box", "", &CreateOptions::container())
        .await
        .unwrap();
    c.create("/box/item", "", &CreateOptions::persistent())
        .await
        .unwrap();
    c.delete("/box/item", None).await.unwrap();
    // The server reaps both in its container/TTL sweep (every few seconds by default).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ttl_gone = c.exists("/ttl-node").await.unwrap().is_none();
        let box_gone = c.exists("/box").await.unwrap().is_none();
        if ttl_gone && box_gone {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ttl {ttl_gone} container {box_gone}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.close().await;
}

#[tokio::test]
async fn large_data_and_many_children() {
    let c = client(&hosts()).await;
    let big = Bytes::from(vec![7u8; 1_000_000]);
    c.create("/big", big.clone(), &CreateOptions::persistent())
        .await
        .unwrap();
    let (data, stat) = c.get_data("/big").await.unwrap();
    assert_eq!(data, big);
    assert_eq!(stat.data_length, 1_000_000);
    let e = c
        .set_data("/big", vec![0u8; 1_048_576], None)
        .await
        .unwrap_err();
    assert!(matches!(e, zk_tokio::Error::TooLarge { .. }), "{e}");
    // The connection survived the refusal.
    assert_eq!(c.state(), SessionState::Connected);

    c.create("/many", "", &CreateOptions::persistent())
        .await
        .unwrap();
    let creates: Vec<_> = (0..10_000)
        .map(|i| {
            let c = c.clone();
            async move {
                c.create(
                    &format!("/many/child-{i:05}"),
                    "",
                    &CreateOptions::persistent(),
                )
                .await
            }
        })
        .collect();
    for r in futures_join(creates).await {
        r.unwrap();
    }
    let kids = c.get_children("/many").await.unwrap();
    assert_eq!(kids.len(), 10_000);
    assert_eq!(c.get_all_children_number("/many").await.unwrap(), 10_000);
    c.close().await;
}

/// Runs futures concurrently on the current task, keeping their order.
async fn futures_join<F>(futs: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn ten_thousand_pipelined_reads_complete_in_order() {
    let c = client(&hosts()).await;
    c.create("/pipe", "p", &CreateOptions::persistent())
        .await
        .unwrap();
    let reads: Vec<_> = (0..10_000)
        .map(|_| {
            let c = c.clone();
            async move { c.get_data("/pipe").await }
        })
        .collect();
    let results = futures_join(reads).await;
    assert_eq!(results.len(), 10_000);
    for r in results {
        assert_eq!(&r.unwrap().0[..], b"p");
    }
    // One caller's reads, all in flight at once while another client writes, come back in
    // the order they were sent: the versions they see never go backwards.
    let writer = client(&hosts()).await;
    let writes = tokio::spawn(async move {
        for i in 0..200 {
            writer
                .set_data("/pipe", format!("{i}"), None)
                .await
                .unwrap();
        }
        writer.close().await;
    });
    let reads = (0..10_000).map(|_| c.get_data("/pipe"));
    let results = futures_util::future::join_all(reads).await;
    writes.await.unwrap();
    let versions: Vec<i32> = results.into_iter().map(|r| r.unwrap().1.version).collect();
    assert!(
        versions.windows(2).all(|w| w[0] <= w[1]),
        "a later read saw an older version"
    );
    c.close().await;
}

#[tokio::test]
async fn transactions_apply_all_or_nothing_and_multi_read_reads_each() {
    let c = client(&hosts()).await;
    let results = c
        .transaction()
        .create("/tx", "", &CreateOptions::persistent())
        .create("/tx/a", "1", &CreateOptions::persistent())
        .set_data("/tx/a", "2", Some(0))
        .check("/tx/a", 1)
        .commit()
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    assert!(matches!(&results[0], OpResult::Create(r) if r.path == "/tx"));
    assert!(matches!(results[3], OpResult::Check));

    let e = c
        .transaction()
        .create("/tx/b", "", &CreateOptions::persistent())
        .delete("/tx/missing", None)
        .set_data("/tx/a", "3", None)
        .commit()
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the transaction failed at operation 1 (/tx/missing): the node does not exist \
         (code -101); nothing was applied"
    );
    match e {
        zk_tokio::Error::Transaction {
            index,
            code,
            path,
            outcomes,
        } => {
            assert_eq!(index, 1);
            assert_eq!(code, ErrorCode::NoNode);
            assert_eq!(path.as_deref(), Some("/tx/missing"));
            use zk_tokio::Undone;
            assert_eq!(
                outcomes,
                [
                    Undone::RolledBack,
                    Undone::Failed(ErrorCode::NoNode),
                    Undone::Skipped
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.exists("/tx/b").await.unwrap(), None, "rolled back");

    let reads = c
        .multi_read(&[
            ReadOp::GetData("/tx/a".into()),
            ReadOp::GetChildren("/tx".into()),
            ReadOp::GetData("/tx/none".into()),
        ])
        .await
        .unwrap();
    assert!(matches!(&reads[0], ReadResult::Data(d, _) if &d[..] == b"2"));
    assert_eq!(reads[1], ReadResult::Children(vec!["a".into()]));
    assert_eq!(reads[2], ReadResult::Error(ErrorCode::NoNode));
    c.close().await;
}

#[tokio::test]
async fn chroot_confines_paths_and_strips_them_from_results() {
    let setup = client(&hosts()).await;
    setup.create_all("/jail/app", "").await.unwrap();
    let c = client(&format!("{}/jail/app", hosts())).await;
    assert_eq!(
        c.create("/x", "in", &CreateOptions::persistent())
            .await
            .unwrap(),
        "/x"
    );
    let (path, _) = c
        .create2("/s-", "", &CreateOptions::persistent_sequential())
        .await
        .unwrap();
    assert_eq!(path, "/s-0000000001");
    assert_eq!(&setup.get_data("/jail/app/x").await.unwrap().0[..], b"in");
    let mut kids = c.get_children("/").await.unwrap();
    kids.sort();
    assert_eq!(kids, ["s-0000000001", "x"]);
    let (_, _, w) = c.get_data_watch("/x").await.unwrap();
    setup
        .set_data("/jail/app/x", "changed", None)
        .await
        .unwrap();
    assert_eq!(w.await.path, "/x");
    let results = c
        .transaction()
        .create("/t", "", &CreateOptions::persistent())
        .commit()
        .await
        .unwrap();
    assert!(matches!(&results[0], OpResult::Create(r) if r.path == "/t"));
    c.close().await;
    setup.close().await;
}

#[tokio::test]
async fn digest_acls_admit_the_owner_and_deny_others() {
    let alice = zk_tokio::Client::builder(&hosts())
        .auth("digest", "alice:secret")
        .connect()
        .await
        .unwrap();
    alice
        .create(
            "/vault",
            "gold",
            &CreateOptions::persistent().with_acl(Acl::creator_all()),
        )
        .await
        .unwrap();
    alice
        .create(
            "/vault2",
            "silver",
            &CreateOptions::persistent().with_acl(vec![digest_acl(perms::ALL, "alice", "secret")]),
        )
        .await
        .unwrap();
    assert_eq!(&alice.get_data("/vault").await.unwrap().0[..], b"gold");

    let bob = client(&hosts()).await;
    for path in ["/vault", "/vault2"] {
        let e = bob.get_data(path).await.unwrap_err();
        assert!(e.is(ErrorCode::NoAuth), "{e}");
    }
    bob.add_auth("digest", "bob:other").await.unwrap();
    assert!(
        bob.get_data("/vault")
            .await
            .unwrap_err()
            .is(ErrorCode::NoAuth)
    );
    // Creating with CREATOR_ALL_ACL without credentials is an invalid ACL.
    let anon = client(&hosts()).await;
    let e = anon
        .create(
            "/nope",
            "",
            &CreateOptions::persistent().with_acl(Acl::creator_all()),
        )
        .await
        .unwrap_err();
    assert!(e.is(ErrorCode::InvalidAcl), "{e}");
    let (acl, _) = alice.get_acl("/vault").await.unwrap();
    assert_eq!(acl[0].id.scheme, "digest");
    assert!(acl[0].id.id.starts_with("alice:"));
    let _ = Id::anyone();
    for c in [alice, bob, anon] {
        c.close().await;
    }
}

#[tokio::test]
async fn one_shot_watches_fire_once_with_the_right_event() {
    let c = client(&hosts()).await;
    let other = client(&hosts()).await;
    c.create("/w1", "", &CreateOptions::persistent())
        .await
        .unwrap();

    let (_, _, data_w) = c.get_data_watch("/w1").await.unwrap();
    let (_, _, child_w) = c.get_children_watch("/w1").await.unwrap();
    let (none, exist_w) = c.exists_watch("/w1/new").await.unwrap();
    assert_eq!(none, None);

    other.set_data("/w1", "1", None).await.unwrap();
    let e = data_w.await;
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventType::NodeDataChanged, "/w1")
    );
    other
        .create("/w1/new", "", &CreateOptions::persistent())
        .await
        .unwrap();
    let e = exist_w.await;
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventType::NodeCreated, "/w1/new")
    );
    let e = child_w.await;
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventType::NodeChildrenChanged, "/w1")
    );

    // Fired watches are gone: the server holds none for this session on /w1.
    let e = c.check_watches("/w1", WatcherType::Data).await.unwrap_err();
    assert!(e.is(ErrorCode::NoWatcher), "{e}");
    // A deletion reaches a data watch.
    let (_, _, data_w) = c.get_data_watch("/w1/new").await.unwrap();
    other.delete("/w1/new", None).await.unwrap();
    assert_eq!(data_w.await.kind, EventType::NodeDeleted);
    c.close().await;
    other.close().await;
}

#[tokio::test]
async fn persistent_and_recursive_watches_deliver_every_change() {
    let c = client(&hosts()).await;
    // Servers before 3.9 keep one watch mode per path and session (ZOOKEEPER-4466), so the
    // recursive watch on the same path lives in a session of its own.
    let c2 = client(&hosts()).await;
    let other = client(&hosts()).await;
    c.create("/pw", "", &CreateOptions::persistent())
        .await
        .unwrap();
    let mut node = c.add_watch("/pw", AddWatchMode::Persistent).await.unwrap();
    let mut tree = c2
        .add_watch("/pw", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();

    for i in 0..3 {
        other.set_data("/pw", format!("{i}"), None).await.unwrap();
    }
    other
        .create("/pw/kid", "", &CreateOptions::persistent())
        .await
        .unwrap();
    other.set_data("/pw/kid", "x", None).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..4 {
        let e = node.next().await.unwrap();

        seen.push((e.kind, e.path));
    }
    assert_eq!(
        seen,
        [
            (EventType::NodeDataChanged, "/pw".to_string()),
            (EventType::NodeDataChanged, "/pw".into()),
            (EventType::NodeDataChanged, "/pw".into()),
            (EventType::NodeChildrenChanged, "/pw".into()),
        ]
    );
    let mut seen = Vec::new();
    for _ in 0..5 {
        let e = tree.next().await.unwrap();

        seen.push((e.kind, e.path));
    }
    assert_eq!(seen[3], (EventType::NodeCreated, "/pw/kid".into()));
    assert_eq!(seen[4], (EventType::NodeDataChanged, "/pw/kid".into()));

    // Removing ends the stream with a final event. (Servers before 3.9 know no Persistent
    // watcher type for removal; Any works everywhere.)
    c.remove_watches("/pw", WatcherType::Any).await.unwrap();
    let last = node.next().await.unwrap();
    assert_eq!(last.kind, EventType::PersistentWatchRemoved);
    assert!(node.next().await.is_none());

    // Dropping a watcher removes the server's watch too.
    c2.check_watches("/pw", WatcherType::Any).await.unwrap();
    drop(tree);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match c2.check_watches("/pw", WatcherType::Any).await {
            Err(e) if e.is(ErrorCode::NoWatcher) => break,
            other => assert!(tokio::time::Instant::now() < deadline, "{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.close().await;
    c2.close().await;
    other.close().await;
}

#[tokio::test]
async fn dropping_a_one_shot_watcher_removes_the_server_watch() {
    let c = client(&hosts()).await;
    c.create("/dw", "", &CreateOptions::persistent())
        .await
        .unwrap();
    let (_, _, w) = c.get_data_watch("/dw").await.unwrap();
    c.check_watches("/dw", WatcherType::Data).await.unwrap();
    drop(w);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match c.check_watches("/dw", WatcherType::Data).await {
            Err(e) if e.is(ErrorCode::NoWatcher) => break,
            other => assert!(tokio::time::Instant::now() < deadline, "{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.close().await;
}

#[tokio::test]
async fn the_state_stream_reports_close_and_calls_after_close_fail() {
    let c = client(&hosts()).await;
    assert_eq!(c.state(), SessionState::Connected);
    assert_eq!(c.app_state(), AppState::Connected);
    let mut states = c.state_events();
    c.close().await;
    let mut seen = Vec::new();
    while let Some(e) = states.next().await {
        seen.push(e);
    }
    assert_eq!(
        seen,
        [
            StateEvent::Session(SessionState::Closed),
            StateEvent::App(AppState::Lost)
        ]
    );
    let e = c.get_data("/").await.unwrap_err();
    assert_eq!(e, zk_tokio::Error::Closed);
    // Bad host strings are typed errors.
    let e = zk_tokio::Client::connect("host:notaport")
        .await
        .unwrap_err();
    assert!(matches!(e, zk_tokio::Error::Hosts(_)), "{e}");
}
