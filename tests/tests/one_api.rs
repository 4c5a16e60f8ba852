//! One vocabulary on both clients: each test does the same thing on the async client and on
//! the blocking one, in each one's calling convention. Creates with parents and the errors
//! that name their node run on a real server; the watchers, listeners and waits on zk-sim's
//! model server (they test the clients, not the server).

use std::sync::mpsc;
use std::time::Duration;

use zk_harness::Proxy;
use zk_proto::ErrorCode;
use zk_proto::consts::{AddWatchMode, EventType, WatcherType};
use zk_proto::session::{AppState, SessionState, StateEvent};
use zk_tests::{shared_server, shared_sim};

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(200);

fn blocking(hosts: &str) -> zk_mio::blocking::Client {
    zk_mio::blocking::Client::builder(hosts)
        .session_timeout(Duration::from_secs(6))
        .connect()
        .expect("connect the blocking client")
}

async fn async_client(hosts: &str) -> zk_tokio::Client {
    zk_tokio::Client::builder(hosts)
        .session_timeout(Duration::from_secs(6))
        .connect()
        .await
        .expect("connect the async client")
}

#[tokio::test]
async fn a_create_makes_its_parents_in_any_mode_on_both_clients() {
    let hosts = shared_server().connect_string();
    let a = async_client(&hosts).await;
    let b = blocking(&hosts);
    use zk_tokio::CreateOptions;
    let eph = CreateOptions::ephemeral().with_parents();

    // Async: an ephemeral node three levels down, its parents persistent.
    let path = a.create("/mkp-a/x/y/node", "e", &eph).await.unwrap();
    assert_eq!(path, "/mkp-a/x/y/node");
    let stat = a.exists("/mkp-a/x/y/node").await.unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, a.session_id());
    let parent = a.exists("/mkp-a/x/y").await.unwrap().unwrap();
    assert_eq!(parent.ephemeral_owner, 0, "parents are persistent");
    // Sequential, under parents that exist already (one round trip), and with create2.
    let (seq, stat) = a
        .create2(
            "/mkp-a/x/y/job-",
            "s",
            &CreateOptions::ephemeral_sequential().with_parents(),
        )
        .await
        .unwrap();
    assert!(seq.starts_with("/mkp-a/x/y/job-"), "{seq}");
    assert_eq!(stat.ephemeral_owner, a.session_id());
    // The node itself existing is still an error, naming it.
    let e = a.create("/mkp-a/x/y/node", "", &eph).await.unwrap_err();
    assert!(e.is(ErrorCode::NodeExists), "{e}");
    assert_eq!(e.path(), Some("/mkp-a/x/y/node"));
    // A parent that may not hold children fails with that, naming the parent.
    let e = a
        .create("/mkp-a/x/y/node/under", "", &eph)
        .await
        .unwrap_err();
    assert!(e.is(ErrorCode::NoChildrenForEphemerals), "{e}");
    // Without `with_parents`, a missing parent is NoNode, as ever.
    let e = a
        .create("/mkp-a/q/r", "", &CreateOptions::ephemeral())
        .await
        .unwrap_err();
    assert!(e.is(ErrorCode::NoNode), "{e}");
    assert_eq!(e.path(), Some("/mkp-a/q/r"));
    // A transaction cannot make parents: refused, nothing sent.
    let e = a
        .transaction()
        .create("/mkp-a/t/1", "", &eph)
        .commit()
        .await
        .unwrap_err();
    assert!(matches!(e, zk_tokio::Error::InvalidRequest(_)), "{e}");
    assert_eq!(a.exists("/mkp-a/t").await.unwrap(), None);

    // Blocking: the same.
    let path = b.create("/mkp-b/x/y/node", "e", &eph).unwrap();
    assert_eq!(path, "/mkp-b/x/y/node");
    let stat = b.exists("/mkp-b/x/y/node").unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, b.session_id());
    assert_eq!(b.exists("/mkp-b/x").unwrap().unwrap().ephemeral_owner, 0);
    let e = b
        .transaction()
        .create("/mkp-b/t/1", "", &eph)
        .commit()
        .unwrap_err();
    assert!(matches!(e, zk_mio::Error::InvalidRequest(_)), "{e}");

    // The ephemeral nodes go with their sessions; the parents stay.
    a.close().await;
    b.close();
    let c = async_client(&hosts).await;
    assert_eq!(c.exists("/mkp-a/x/y/node").await.unwrap(), None);
    assert!(c.exists("/mkp-a/x/y").await.unwrap().is_some());
    c.delete_all("/mkp-a").await.unwrap();
    c.delete_all("/mkp-b").await.unwrap();
    c.close().await;
}

#[tokio::test]
async fn errors_on_a_path_name_it_on_both_clients() {
    let hosts = shared_server().connect_string();
    let a = async_client(&hosts).await;
    let b = blocking(&hosts);
    let text = "/nopath/missing: the node does not exist (code -101)";

    let e = a.get_data("/nopath/missing").await.unwrap_err();
    assert_eq!(e.to_string(), text);
    let e = b.get_data("/nopath/missing").unwrap_err();
    assert_eq!(e.to_string(), text);
    // Watching calls, one-shot and persistent.
    let e = a.get_data_watch("/nopath/missing").await.unwrap_err();
    assert_eq!(e.path(), Some("/nopath/missing"));
    let e = b.get_children_watch("/nopath/missing").unwrap_err();
    assert_eq!(e.path(), Some("/nopath/missing"));
    let e = b.get_data_watch_fn("/nopath/missing", |_| {}).unwrap_err();
    assert_eq!(e.path(), Some("/nopath/missing"));
    // A version mismatch names the node written.
    a.create_all("/nopath/a", "x").await.unwrap();
    let e = b.set_data("/nopath/a", "y", Some(7)).unwrap_err();
    assert_eq!(e.path(), Some("/nopath/a"));
    assert!(e.is(ErrorCode::BadVersion));
    // A step of a multi-step call names the node of that step: the parent that is an
    // ephemeral node, not the path asked for.
    a.create("/nopath/eph", "", &zk_tokio::CreateOptions::ephemeral())
        .await
        .unwrap();
    let e = a.create_all("/nopath/eph/x/y", "").await.unwrap_err();
    assert!(e.is(ErrorCode::NoChildrenForEphemerals), "{e}");
    assert_eq!(e.path(), Some("/nopath/eph/x"));
    let e = b.create_all("/nopath/eph/x/y", "").unwrap_err();
    assert_eq!(e.path(), Some("/nopath/eph/x"));
    a.delete_all("/nopath").await.unwrap();
    a.close().await;
    b.close();
}

// Callbacks are awaited with blocking receives: the client's tasks run on other threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_watches_and_listeners_on_the_async_client() {
    let sim = shared_sim();
    let proxy = Proxy::start(sim.addr()).unwrap();
    let c = async_client(&proxy.connect_string()).await;
    c.create_all("/cb-a/node", "0").await.unwrap();
    let (tx, rx) = mpsc::channel();

    // One-shot callbacks: each fires once, on the callback task.
    let t = tx.clone();
    let stat = c
        .exists_watch_fn("/cb-a/node", move |e| t.send(("exists", e)).unwrap())
        .await
        .unwrap();
    assert!(stat.is_some());
    let t = tx.clone();
    let (data, _) = c
        .get_data_watch_fn("/cb-a/node", move |e| t.send(("data", e)).unwrap())
        .await
        .unwrap();
    assert_eq!(&data[..], b"0");
    let t = tx.clone();
    let (kids, _) = c
        .get_children_watch_fn("/cb-a", move |e| t.send(("children", e)).unwrap())
        .await
        .unwrap();
    assert_eq!(kids, ["node"]);
    // A persistent callback: every event until its handle is dropped.
    let t = tx.clone();
    let handle = c
        .add_watch_fn("/cb-a/node", AddWatchMode::Persistent, move |e| {
            t.send(("persistent", e)).unwrap()
        })
        .await
        .unwrap();
    assert_ne!(handle.id().0, 0);

    c.set_data("/cb-a/node", "1", None).await.unwrap();
    c.create("/cb-a/other", "", &zk_tokio::CreateOptions::persistent())
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let (who, e) = rx.recv_timeout(WAIT).expect("four callbacks");
        seen.push((who, e.kind));
    }
    seen.sort_by_key(|s| s.0);
    assert_eq!(
        seen,
        [
            ("children", EventType::NodeChildrenChanged),
            ("data", EventType::NodeDataChanged),
            ("exists", EventType::NodeDataChanged),
            ("persistent", EventType::NodeDataChanged),
        ]
    );
    // One-shots are spent; the persistent one goes on until dropped.
    c.set_data("/cb-a/node", "2", None).await.unwrap();
    let (who, e) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((who, e.kind), ("persistent", EventType::NodeDataChanged));
    drop(handle);
    c.check_watches("/cb-a/node", WatcherType::Any)
        .await
        .expect_err("the watch is released on the server");
    c.set_data("/cb-a/node", "3", None).await.unwrap();
    assert!(rx.recv_timeout(QUIET).is_err(), "nothing after the drop");

    // A listener hears the link cut and the session come back, in order.
    let (stx, srx) = mpsc::channel();
    c.add_listener(move |s| {
        let _ = stx.send(s);
    });
    proxy.drop_connections();
    let mut states = Vec::new();
    while !states.contains(&StateEvent::App(AppState::Connected)) {
        states.push(srx.recv_timeout(WAIT).expect("the session comes back"));
    }
    assert_eq!(states[0], StateEvent::Session(SessionState::Connecting));
    assert!(states.contains(&StateEvent::App(AppState::Suspended)));
    c.delete_all("/cb-a").await.unwrap();
    c.close().await;
}

#[test]
fn callback_watches_and_listeners_on_the_blocking_client() {
    let sim = shared_sim();
    let proxy = Proxy::start(sim.addr()).unwrap();
    let c = blocking(&proxy.connect_string());
    c.create_all("/cb-b/node", "0").unwrap();
    let (tx, rx) = mpsc::channel();

    let t = tx.clone();
    let stat = c
        .exists_watch_fn("/cb-b/node", move |e| t.send(("exists", e)).unwrap())
        .unwrap();
    assert!(stat.is_some());
    let t = tx.clone();
    let (data, _) = c
        .get_data_watch_fn("/cb-b/node", move |e| t.send(("data", e)).unwrap())
        .unwrap();
    assert_eq!(&data[..], b"0");
    let t = tx.clone();
    let (kids, _) = c
        .get_children_watch_fn("/cb-b", move |e| t.send(("children", e)).unwrap())
        .unwrap();
    assert_eq!(kids, ["node"]);
    let t = tx.clone();
    let handle = c
        .add_watch_fn("/cb-b/node", AddWatchMode::Persistent, move |e| {
            t.send(("persistent", e)).unwrap()
        })
        .unwrap();
    assert_ne!(handle.id().0, 0);

    c.set_data("/cb-b/node", "1", None).unwrap();
    c.create("/cb-b/other", "", &zk_mio::CreateOptions::persistent())
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let (who, e) = rx.recv_timeout(WAIT).expect("four callbacks");
        seen.push((who, e.kind));
    }
    seen.sort_by_key(|s| s.0);
    assert_eq!(
        seen,
        [
            ("children", EventType::NodeChildrenChanged),
            ("data", EventType::NodeDataChanged),
            ("exists", EventType::NodeDataChanged),
            ("persistent", EventType::NodeDataChanged),
        ]
    );
    c.set_data("/cb-b/node", "2", None).unwrap();
    let (who, e) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((who, e.kind), ("persistent", EventType::NodeDataChanged));
    drop(handle);
    c.check_watches("/cb-b/node", WatcherType::Any)
        .expect_err("the watch is released on the server");
    c.set_data("/cb-b/node", "3", None).unwrap();
    assert!(rx.recv_timeout(QUIET).is_err(), "nothing after the drop");

    let (stx, srx) = mpsc::channel();
    c.add_listener(move |s| {
        let _ = stx.send(s);
    });
    proxy.drop_connections();
    let mut states = Vec::new();
    while !states.contains(&StateEvent::App(AppState::Connected)) {
        states.push(srx.recv_timeout(WAIT).expect("the session comes back"));
    }
    assert_eq!(states[0], StateEvent::Session(SessionState::Connecting));
    assert!(states.contains(&StateEvent::App(AppState::Suspended)));
    c.delete_all("/cb-b").unwrap();
    c.close();
}

#[tokio::test]
async fn watchers_waits_and_state_streams_read_alike() {
    let sim = shared_sim();
    let proxy = Proxy::start(sim.addr()).unwrap();
    let a = async_client(&proxy.connect_string()).await;
    let b = blocking(&proxy.connect_string());
    a.create_all("/shape/n", "0").await.unwrap();

    // `wait_for` and its timeout form: `None` is the time running out, nothing else.
    let connected = |s: SessionState| s.is_connected();
    assert!(a.wait_for(connected).await.unwrap().is_connected());
    assert!(b.wait_for(connected).unwrap().is_connected());
    let never = |s: SessionState| s == SessionState::AuthFailed;
    assert_eq!(a.wait_for_timeout(never, QUIET).await.unwrap(), None);
    assert_eq!(b.wait_for_timeout(never, QUIET).unwrap(), None);

    // One-shot watchers: an id, `wait_timeout` giving `None` while nothing changed, and
    // the event after a change.
    let (_, _, mut wa) = a.get_data_watch("/shape/n").await.unwrap();
    let (_, _, mut wb) = b.get_data_watch("/shape/n").unwrap();
    assert_ne!(wa.id(), wb.id());
    assert_eq!(wa.wait_timeout(QUIET).await, None);
    assert_eq!(wb.wait_timeout(QUIET), None);
    a.set_data("/shape/n", "1", None).await.unwrap();
    let ea = wa.wait_timeout(WAIT).await.expect("the change");
    let eb = wb.wait_timeout(WAIT).expect("the change");
    assert_eq!(ea.kind, EventType::NodeDataChanged);
    assert_eq!((eb.kind, eb.watch), (EventType::NodeDataChanged, wb.id()));

    // Persistent watchers: `next_timeout` is `Ok(None)` while quiet, the events, the last
    // event when the watch is removed, then `Closed`.
    let mut pa = a
        .add_watch("/shape/n", AddWatchMode::Persistent)
        .await
        .unwrap();
    let mut pb = b.add_watch("/shape/n", AddWatchMode::Persistent).unwrap();
    assert_eq!(pa.next_timeout(QUIET).await.unwrap(), None);
    assert_eq!(pb.next_timeout(QUIET).unwrap(), None);
    a.set_data("/shape/n", "2", None).await.unwrap();
    let ea = pa.next_timeout(WAIT).await.unwrap().unwrap();
    let eb = pb.next_timeout(WAIT).unwrap().unwrap();
    assert_eq!(
        (ea.kind, eb.kind),
        (EventType::NodeDataChanged, EventType::NodeDataChanged)
    );
    assert_eq!((ea.watch, eb.watch), (pa.id(), pb.id()));
    a.remove_watches("/shape/n", WatcherType::Any)
        .await
        .unwrap();
    b.remove_watches("/shape/n", WatcherType::Any).unwrap();
    let last = pa.next_timeout(WAIT).await.unwrap().unwrap();
    assert_eq!(last.kind, EventType::PersistentWatchRemoved);
    assert!(matches!(
        pa.next_timeout(QUIET).await,
        Err(zk_tokio::Error::Closed)
    ));
    let last = pb.next_timeout(WAIT).unwrap().unwrap();
    assert_eq!(last.kind, EventType::PersistentWatchRemoved);
    assert!(matches!(pb.next_timeout(QUIET), Err(zk_mio::Error::Closed)));

    // State streams: quiet is `Ok(None)`; a cut shows; a closed client ends them.
    let mut sa = a.state_events();
    let mut sb = b.state_events();
    assert_eq!(sa.next_timeout(QUIET).await.unwrap(), None);
    assert_eq!(sb.next_timeout(QUIET).unwrap(), None);
    proxy.drop_connections();
    let first = StateEvent::Session(SessionState::Connecting);
    assert_eq!(sa.next_timeout(WAIT).await.unwrap(), Some(first));
    assert_eq!(sb.next_timeout(WAIT).unwrap(), Some(first));
    a.wait_for(connected).await.unwrap();
    b.wait_for(connected).unwrap();
    a.delete_all("/shape").await.unwrap();
    a.close().await;
    b.close();
    let ended = async {
        loop {
            match sa.next_timeout(WAIT).await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    };
    assert!(matches!(ended.await, Err(zk_tokio::Error::Closed)));
    let ended = loop {
        match sb.next_timeout(WAIT) {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert!(matches!(ended, Err(zk_mio::Error::Closed)), "{ended:?}");
    // Waiting on a closed client fails at once.
    assert!(matches!(
        b.wait_for(|s| s == SessionState::Connected),
        Err(zk_mio::Error::Closed)
    ));
}

#[tokio::test]
async fn recipe_waits_and_identifiers_read_alike() {
    let hosts = shared_sim().connect_string();
    let a = async_client(&hosts).await;
    let b = blocking(&hosts);
    // A borrowed identifier does for every recipe.
    let name = format!("worker-{}", std::process::id());
    let held = zk_tokio::recipes::Lock::new(&a, "/waits/lock")
        .acquire()
        .await
        .unwrap();
    // `changed_timeout` is `None` when nothing changed in time, on both clients.
    assert_eq!(
        held.changed_timeout(zk_tokio::recipes::LockState::Held, QUIET)
            .await
            .unwrap(),
        None
    );
    held.release().await.unwrap();
    let lead: zk_mio::recipes::Leadership =
        zk_mio::recipes::Election::new(&b, "/waits/election", name.as_str())
            .lead()
            .unwrap();
    assert!(lead.is_leader());
    assert_eq!(
        lead.changed_timeout(zk_mio::recipes::LockState::Held, QUIET)
            .unwrap(),
        None
    );
    let member: zk_tokio::recipes::Membership =
        zk_tokio::recipes::Party::new(&a, "/waits/party", name.as_str())
            .join()
            .await
            .unwrap();
    assert!(member.is_held());
    drop(lead);
    drop(member);
    a.close().await;
    b.close();
}

/// Every client, handle, guard and watcher can move between threads on both clients, and
/// every handle and guard can be shared.
#[test]
fn every_handle_crosses_threads_on_both_clients() {
    fn shared<T: Send + Sync>() {}
    fn sent<T: Send>() {}
    macro_rules! handles {
        ($($m:ident)::+) => {
            shared::<$($m)::+::Lock>();
            shared::<$($m)::+::LockGuard>();
            shared::<$($m)::+::ReadWriteLock>();
            shared::<$($m)::+::Election>();
            shared::<$($m)::+::Leadership>();
            shared::<$($m)::+::Semaphore>();
            shared::<$($m)::+::SemaphoreLease>();
            shared::<$($m)::+::Party>();
            shared::<$($m)::+::Membership>();
            shared::<$($m)::+::Counter>();
            shared::<$($m)::+::Barrier>();
            shared::<$($m)::+::DoubleBarrier>();
            shared::<$($m)::+::Queue>();
            shared::<$($m)::+::LockingQueue>();
            shared::<$($m)::+::QueueItem>();
            shared::<$($m)::+::Lease>();
            shared::<$($m)::+::DataWatch>();
            shared::<$($m)::+::ChildrenWatch>();
            shared::<$($m)::+::TreeCache>();
        };
    }
    handles!(zk_tokio::recipes);
    handles!(zk_mio::recipes);
    shared::<zk_tokio::Client>();
    shared::<zk_mio::blocking::Client>();
    sent::<zk_tokio::OneshotWatcher>();
    sent::<zk_mio::blocking::OneshotWatcher>();
    sent::<zk_tokio::PersistentWatcher>();
    sent::<zk_mio::blocking::PersistentWatcher>();
    sent::<zk_tokio::StateEvents>();
    sent::<zk_mio::blocking::StateEvents>();
    shared::<zk_tokio::WatchHandle>();
    shared::<zk_mio::blocking::WatchHandle>();
    sent::<zk_tokio::Transaction>();
    sent::<zk_mio::blocking::Transaction>();
}

#[tokio::test]
async fn null_data_reads_back_as_null_on_both_clients() {
    let hosts = shared_server().connect_string();
    let a = async_client(&hosts).await;
    let b = blocking(&hosts);
    a.create_all("/nulls", "").await.unwrap();
    a.create(
        "/nulls/a",
        zk_tokio::null_data(),
        &zk_tokio::CreateOptions::persistent(),
    )
    .await
    .unwrap();
    b.create("/nulls/b", "", &zk_mio::CreateOptions::persistent())
        .unwrap();
    let (data, stat) = b.get_data("/nulls/a").unwrap();
    assert!(zk_mio::is_null_data(&data) && stat.data_length == 0);
    let (data, _) = a.get_data("/nulls/b").await.unwrap();
    assert!(data.is_empty() && !zk_tokio::is_null_data(&data));
    b.set_data("/nulls/b", zk_mio::null_data(), None).unwrap();
    let (data, _) = a.get_data("/nulls/b").await.unwrap();
    assert!(zk_tokio::is_null_data(&data));
    a.delete_all("/nulls").await.unwrap();
    a.close().await;
    b.close();
}
