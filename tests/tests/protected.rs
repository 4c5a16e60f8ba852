//! Protected creates and guaranteed deletes on both clients, against the real server: the
//! link is cut after the server applied the request and before its reply arrived, and the
//! server's tree is the judge.

use std::time::{Duration, Instant};

use zk_harness::{Fault, Proxy};
use zk_tests::{client, settle, shared_server};
use zk_tokio::{Client, CreateOptions, Error, ErrorCode};

/// A client whose link runs through a proxy, and one straight to the server.
async fn linked() -> (Proxy, Client, Client) {
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let c = client(&proxy.connect_string()).await;
    let observer = client(&shared_server().connect_string()).await;
    (proxy, c, observer)
}

/// Curator's protected name: `_c_`, a 36-character UUID, `-`, then the name asked for.
fn is_protected(name: &str, asked: &str) -> bool {
    let Some(rest) = name.strip_prefix("_c_") else {
        return false;
    };
    rest.len() > 37
        && rest.as_bytes()[36] == b'-'
        && rest[..36].chars().filter(|c| *c == '-').count() == 4
        && rest[37..].starts_with(asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_create_whose_reply_was_lost_leaves_exactly_one_node() {
    let dir = "/protected/lost-reply";
    let (proxy, c, observer) = linked().await;
    observer.create_all(dir, "").await.unwrap();
    proxy.set_fault(Fault::Delay(Duration::from_millis(300)));
    let creating = {
        let c = c.clone();
        tokio::spawn(async move {
            c.create_protected(
                &format!("{dir}/job-"),
                "payload",
                &CreateOptions::ephemeral_sequential(),
            )
            .await
        })
    };
    // The server applied it; the reply is still on its way back: cut the link now.
    let made = settle(&observer, dir, 1, Duration::from_secs(15)).await;
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    let path = tokio::time::timeout(Duration::from_secs(10), creating)
        .await
        .expect("the create ends after the reconnect")
        .unwrap()
        .unwrap();
    assert_eq!(
        path,
        format!("{dir}/{}", made[0]),
        "the node the server made"
    );
    assert!(is_protected(&made[0], "job-"), "{}", made[0]);
    // Still one node: found again by its id, not created twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        settle(&observer, dir, 1, Duration::from_secs(15)).await,
        made
    );
    let (data, _) = observer.get_data(&path).await.unwrap();
    assert_eq!(&data[..], b"payload");

    // The same cut after a plain create: the caller hears ConnectionLoss with the node
    // there, and a retry would make a second one.
    proxy.set_fault(Fault::Delay(Duration::from_millis(300)));
    let plain = {
        let c = c.clone();
        tokio::spawn(async move {
            c.create(
                &format!("{dir}/plain-"),
                "",
                &CreateOptions::ephemeral_sequential(),
            )
            .await
        })
    };
    settle(&observer, dir, 2, Duration::from_secs(15)).await;
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    let e = plain.await.unwrap().unwrap_err();
    assert_eq!(e, Error::ConnectionLoss);
    c.close().await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_create_dropped_before_its_result_leaves_no_node() {
    let dir = "/protected/dropped";
    let (proxy, c, observer) = linked().await;
    observer.create_all(dir, "").await.unwrap();
    proxy.set_fault(Fault::Delay(Duration::from_millis(300)));
    // Dropped while the request travels, and after the server applied it while the reply
    // travels; persistent nodes, which nothing else would remove.
    for ms in [100u64, 450] {
        let create = c.create_protected(
            &format!("{dir}/item-"),
            "",
            &CreateOptions::persistent_sequential(),
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(ms), create)
                .await
                .is_err()
        );
    }
    proxy.set_fault(Fault::Pass);
    // The nodes made are deleted by the connection task, confirmed by the server.
    settle(&observer, dir, 0, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(observer.get_children(dir).await.unwrap().is_empty());
    // Both were made, and both deleted: four changes to the directory's children.
    let (_, stat) = observer.get_data(dir).await.unwrap();
    assert_eq!(stat.cversion, 4);
    c.close().await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guaranteed_delete_is_confirmed_across_a_lost_reply_and_a_dropped_call() {
    let dir = "/protected/deletes";
    let (proxy, c, observer) = linked().await;
    for n in ["a", "b"] {
        observer
            .create(
                &format!("{dir}/{n}"),
                "",
                &CreateOptions::persistent().with_parents(),
            )
            .await
            .unwrap();
    }
    // The reply to the delete is lost: the retry finds the node gone, which counts.
    proxy.set_fault(Fault::Delay(Duration::from_millis(300)));
    let deleting = {
        let c = c.clone();
        tokio::spawn(async move { c.delete_guaranteed(&format!("{dir}/a"), None).await })
    };
    settle(&observer, dir, 1, Duration::from_secs(15)).await;
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    tokio::time::timeout(Duration::from_secs(10), deleting)
        .await
        .expect("confirmed after the reconnect")
        .unwrap()
        .unwrap();

    // The caller stops waiting at once, while no byte passes: the delete goes on.
    proxy.set_fault(Fault::BlackHole);
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        c.delete_guaranteed(&format!("{dir}/b"), None),
    )
    .await;
    assert!(gave_up.is_err());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        settle(&observer, dir, 1, Duration::from_secs(15)).await,
        vec!["b".to_string()]
    );
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    settle(&observer, dir, 0, Duration::from_secs(15)).await;

    // What the server answers the first time stands: no such node, a wrong version.
    let e = c
        .delete_guaranteed(&format!("{dir}/never"), None)
        .await
        .unwrap_err();
    assert!(e.is(ErrorCode::NoNode), "{e:?}");
    assert_eq!(e.path(), Some(format!("{dir}/never").as_str()));
    observer
        .create(&format!("{dir}/v"), "", &CreateOptions::persistent())
        .await
        .unwrap();
    let e = c
        .delete_guaranteed(&format!("{dir}/v"), Some(7))
        .await
        .unwrap_err();
    assert!(e.is(ErrorCode::BadVersion), "{e:?}");
    c.delete_guaranteed(&format!("{dir}/v"), Some(0))
        .await
        .unwrap();
    c.close().await;
    observer.close().await;
}

#[test]
fn the_blocking_client_has_the_same_protected_create_and_guaranteed_delete() {
    use zk_mio::blocking::Client;
    let dir = "/protected/blocking/deep/er";
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let c = Client::connect(&proxy.connect_string()).unwrap();
    let observer = Client::connect(&shared_server().connect_string()).unwrap();
    // Missing parents are made; the reply is lost after the server applied the create.
    proxy.set_fault(Fault::Delay(Duration::from_millis(300)));
    let creating = {
        let c = c.clone();
        std::thread::spawn(move || {
            c.create_protected(
                &format!("{dir}/member"),
                "m",
                &zk_mio::CreateOptions::ephemeral().with_parents(),
            )
        })
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while observer
        .get_children(dir)
        .map(|c| c.is_empty())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "the create never landed");
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    let path = creating.join().unwrap().unwrap();
    let children = observer.get_children(dir).unwrap();
    assert_eq!(children.len(), 1, "{children:?}");
    assert_eq!(path, format!("{dir}/{}", children[0]));
    assert!(is_protected(&children[0], "member"), "{}", children[0]);

    c.delete_guaranteed(&path, None).unwrap();
    assert!(observer.exists(&path).unwrap().is_none());
    let e = c.create_protected("/", "", &zk_mio::CreateOptions::persistent());
    assert!(e.is_err());
    c.close();
    observer.close();
}
