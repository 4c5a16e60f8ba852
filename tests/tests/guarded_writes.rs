//! Guarded writes against the real server: a write tied to a guard lands only while the
//! guard's lock node exists, and fails with `Error::NotHeld` (nothing applied) once it does
//! not, on both clients. The server's data is the judge.

use std::time::Duration;

use zk_harness::{Fault, Proxy};
use zk_tests::{client, shared_server};
use zk_tokio::recipes::{Lock, LockState};
use zk_tokio::{Client, CreateOptions, Error, ErrorCode, Undone};

async fn data(c: &Client, path: &str) -> String {
    let (data, _) = c.get_data(path).await.unwrap();
    String::from_utf8_lossy(&data).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guarded_write_lands_only_while_the_lock_node_exists() {
    let (dir, res) = ("/guarded/deleted/lock", "/guarded/deleted/res");
    let holder = client(&shared_server().connect_string()).await;
    let operator = client(&shared_server().connect_string()).await;
    operator.create_all(res, "").await.unwrap();

    let guard = Lock::new(&holder, dir).acquire().await.unwrap();
    let stat = guard.set_data(res, "first", None).await.unwrap();
    assert_eq!(stat.version, 1);
    let created = guard
        .create(
            &format!("{res}/entry-"),
            "e",
            &CreateOptions::persistent_sequential(),
        )
        .await
        .unwrap();
    assert!(created.starts_with(&format!("{res}/entry-")), "{created}");
    guard.delete(&created, None).await.unwrap();

    // A failing operation is named by its index among the caller's operations (the check
    // on the lock node is not counted), and nothing of the transaction is applied.
    let e = guard
        .transaction()
        .set_data(res, "never", None)
        .delete(&format!("{res}/missing"), None)
        .commit()
        .await
        .unwrap_err();
    match &e {
        Error::Transaction {
            index: 1,
            code: ErrorCode::NoNode,
            path: Some(path),
            outcomes,
        } => {
            assert_eq!(path, &format!("{res}/missing"));
            assert_eq!(
                outcomes,
                &[Undone::RolledBack, Undone::Failed(ErrorCode::NoNode)]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(data(&operator, res).await, "first");

    // Someone deletes the holder's lock node behind its back, and takes the lock. The
    // holder's guard has not heard of it: it still says it holds.
    operator.delete(guard.node(), None).await.unwrap();
    let other = Lock::new(&operator, dir).acquire().await.unwrap();
    assert_eq!(guard.state(), LockState::Held);
    // A plain write would land now, under the other holder's feet; the guarded one is
    // refused by the server, and nothing of it is applied.
    let e = guard.set_data(res, "stale", None).await.unwrap_err();
    assert_eq!(
        e,
        Error::NotHeld {
            node: guard.node().to_string()
        }
    );
    assert_eq!(e.path(), Some(guard.node()));
    let e = guard
        .transaction()
        .create(&format!("{res}/stale"), "", &CreateOptions::persistent())
        .set_data(res, "stale", None)
        .commit()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotHeld { .. }), "{e:?}");
    assert_eq!(data(&operator, res).await, "first");
    assert!(
        operator
            .exists(&format!("{res}/stale"))
            .await
            .unwrap()
            .is_none()
    );
    // The new holder's guarded writes land.
    other.set_data(res, "second", None).await.unwrap();
    assert_eq!(data(&operator, res).await, "second");

    other.release().await.unwrap();
    guard.release().await.unwrap();
    assert!(holder.get_children(dir).await.unwrap().is_empty());
    holder.close().await;
    operator.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_whose_session_expired_writes_nothing() {
    let (dir, res) = ("/guarded/expired/lock", "/guarded/expired/res");
    let server = shared_server();
    let proxy = Proxy::start(server.addr()).unwrap();
    let holder = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_millis(2000))
        .connect()
        .await
        .unwrap();
    let other = client(&server.connect_string()).await;
    other.create_all(res, "before").await.unwrap();
    let guard = Lock::new(&holder, dir).acquire().await.unwrap();

    // The holder's link goes silent; the server expires its session and the next contender
    // takes the lock while the holder is cut off.
    proxy.set_fault(Fault::BlackHole);
    let next = tokio::time::timeout(Duration::from_secs(20), Lock::new(&other, dir).acquire())
        .await
        .expect("the lock passes on once the holder's session expired")
        .unwrap();
    // A write the stale holder sends meanwhile is refused once the link is back, and
    // nothing of it lands.
    let stale = {
        let guard_write = guard.set_data(res, "stale", None);
        tokio::spawn(guard_write)
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set_fault(Fault::Pass);
    let e = stale.await.unwrap().unwrap_err();
    assert!(
        matches!(e, Error::NotHeld { .. } | Error::SessionExpired),
        "{e:?}"
    );
    assert_eq!(
        guard.changed(LockState::Held).await.unwrap(),
        LockState::Gone
    );
    // Once the guard knows, it refuses at once.
    let e = guard.set_data(res, "stale", None).await.unwrap_err();
    assert!(matches!(e, Error::NotHeld { .. }), "{e:?}");
    assert_eq!(data(&other, res).await, "before");
    next.set_data(res, "after", None).await.unwrap();
    assert_eq!(data(&other, res).await, "after");
    next.release().await.unwrap();
    drop(guard);
    holder.close().await;
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guarded_write_dropped_in_flight_is_applied_whole_under_the_lock_or_not_at_all() {
    let (dir, res) = ("/guarded/dropped/lock", "/guarded/dropped/res");
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let holder = client(&proxy.connect_string()).await;
    let observer = client(&shared_server().connect_string()).await;
    observer.create_all(res, "").await.unwrap();
    let guard = Lock::new(&holder, dir).acquire().await.unwrap();
    proxy.set_fault(Fault::Delay(Duration::from_millis(200)));
    // Dropped before it is sent, while the request travels, while the reply does.
    for (i, ms) in [0u64, 100, 300].into_iter().enumerate() {
        let write = guard
            .transaction()
            .create(&format!("{res}/a{i}"), "", &CreateOptions::persistent())
            .create(&format!("{res}/b{i}"), "", &CreateOptions::persistent())
            .commit();
        let _ = tokio::time::timeout(Duration::from_millis(ms), write).await;
    }
    proxy.set_fault(Fault::Pass);
    // The client goes on as before, and each dropped transaction landed whole or not at
    // all: never one node of a pair without the other.
    guard.set_data(res, "still held", None).await.unwrap();
    let children = observer.get_children(res).await.unwrap();
    for i in 0..3 {
        let a = children.contains(&format!("a{i}"));
        let b = children.contains(&format!("b{i}"));
        assert_eq!(a, b, "{children:?}");
    }
    guard.release().await.unwrap();
    assert!(observer.get_children(dir).await.unwrap().is_empty());
    holder.close().await;
    observer.close().await;
}

#[test]
fn the_blocking_client_has_the_same_guarded_writes() {
    use zk_mio::blocking::Client;
    use zk_mio::recipes::Lock;
    let (dir, res) = ("/guarded/blocking/lock", "/guarded/blocking/res");
    let hosts = shared_server().connect_string();
    let holder = Client::connect(&hosts).unwrap();
    let operator = Client::connect(&hosts).unwrap();
    operator.create_all(res, "").unwrap();
    let guard = Lock::new(&holder, dir).acquire().unwrap();
    guard.set_data(res, "held", None).unwrap();
    let results = guard
        .transaction()
        .create(
            &format!("{res}/x"),
            "",
            &zk_mio::CreateOptions::persistent(),
        )
        .set_data(res, "held twice", None)
        .commit()
        .unwrap();
    assert_eq!(results.len(), 2);

    operator.delete(guard.node(), None).unwrap();
    let e = guard.set_data(res, "stale", None).unwrap_err();
    assert!(matches!(e, zk_mio::Error::NotHeld { .. }), "{e:?}");
    let e = guard.delete(&format!("{res}/x"), None).unwrap_err();
    assert!(matches!(e, zk_mio::Error::NotHeld { .. }), "{e:?}");
    let (data, _) = operator.get_data(res).unwrap();
    assert_eq!(&data[..], b"held twice");
    assert!(operator.exists(&format!("{res}/x")).unwrap().is_some());
    guard.release().unwrap();
    holder.close();
    operator.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_lock_guards_writes_with_every_one_of_its_nodes() {
    use zk_tokio::recipes::MultiLock;
    let (a, b, res) = ("/guarded/multi/a", "/guarded/multi/b", "/guarded/multi/res");
    let holder = client(&shared_server().connect_string()).await;
    let operator = client(&shared_server().connect_string()).await;
    operator.create_all(res, "").await.unwrap();
    let guard = MultiLock::new(&holder, &[a, b]).acquire().await.unwrap();
    let nodes = guard.nodes();
    assert_eq!(nodes.len(), 2);
    assert!(nodes[0].starts_with(&format!("{a}/_c_")), "{nodes:?}");
    assert_eq!(guard.node(), nodes[1]);
    guard.set_data(res, "both held", None).await.unwrap();
    // The second lock's node goes: the write is refused, naming it.
    operator.delete(&nodes[1], None).await.unwrap();
    let e = guard.set_data(res, "stale", None).await.unwrap_err();
    assert_eq!(
        e,
        Error::NotHeld {
            node: nodes[1].clone()
        }
    );
    assert_eq!(data(&operator, res).await, "both held");
    guard.release().await.unwrap();
    assert!(operator.get_children(a).await.unwrap().is_empty());
    assert!(operator.get_children(b).await.unwrap().is_empty());
    holder.close().await;
    operator.close().await;
}
