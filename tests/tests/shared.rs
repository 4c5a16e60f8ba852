//! Shared values against the real server, on both clients: the seed is written once, a
//! `try_set` over a stale version writes nothing, every reader follows the latest value,
//! and a node that is not a count says so.

use std::time::Duration;

use zk_tests::{client, shared_server};
use zk_tokio::ErrorCode;
use zk_tokio::recipes::{SharedCount, SharedValue};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_value_is_seeded_once_and_written_only_over_what_was_read() {
    let path = "/shared/value/config";
    let (a, b) = (
        client(&shared_server().connect_string()).await,
        client(&shared_server().connect_string()).await,
    );
    let first = SharedValue::start(&a, path, "seed").await.unwrap();
    let v = first.get().await.unwrap();
    assert_eq!((&v.value[..], v.version), (&b"seed"[..], 0));
    // A second start keeps what is there.
    let second = SharedValue::start(&b, path, "other seed").await.unwrap();
    assert_eq!(&second.get().await.unwrap().value[..], b"seed");

    assert!(second.try_set(&v, "from b").await.unwrap());
    // The first reader's version is stale now: its write is refused, nothing changes.
    assert!(!first.try_set(&v, "from a").await.unwrap());
    let seen = tokio::time::timeout(Duration::from_secs(5), first.changed(&v))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((&seen.value[..], seen.version), (&b"from b"[..], 1));
    assert!(first.try_set(&seen, "from a").await.unwrap());
    assert_eq!(first.set("forced").await.unwrap(), 3);

    // Deleted: NoNode until it is back.
    a.delete(path, None).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match first.get().await {
            Err(e) if e.is(ErrorCode::NoNode) => break,
            _ if tokio::time::Instant::now() > deadline => panic!("never NoNode"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    a.close().await;
    b.close().await;
}

#[test]
fn the_blocking_client_has_the_same_shared_count() {
    use zk_mio::blocking::Client;
    use zk_mio::recipes::SharedCount;
    let path = "/shared/count/blocking";
    let c = Client::connect(&shared_server().connect_string()).unwrap();
    let count = SharedCount::start(&c, path, 5).unwrap();
    let v = count.get().unwrap();
    assert_eq!((v.value, v.version), (5, 0));
    assert!(count.try_set(&v, 6).unwrap());
    assert!(!count.try_set(&v, 7).unwrap());
    let (data, _) = c.get_data(path).unwrap();
    assert_eq!(&data[..], &6i32.to_be_bytes(), "Curator's encoding");
    // A node that is not a count is reported, not misread.
    c.set_data(path, &b"xy"[..], None).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match count.get() {
            Err(zk_mio::Error::BadData { path: at, why }) => {
                assert_eq!(at, path);
                assert!(why.contains("2 bytes"), "{why}");
                break;
            }
            _ if std::time::Instant::now() > deadline => panic!("never refused"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    c.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_count_start_on_a_bad_path_fails_clearly() {
    let c = client(&shared_server().connect_string()).await;
    let e = SharedCount::start(&c, "no-slash", 0).await.unwrap_err();
    assert!(matches!(e, zk_tokio::Error::InvalidPath(_)), "{e:?}");
    c.close().await;
}

#[test]
fn the_blocking_client_keeps_group_members() {
    use zk_mio::blocking::Client;
    use zk_mio::recipes::GroupMember;
    let membership = "/shared/group/blocking";
    let (a, b) = (
        Client::connect(&shared_server().connect_string()).unwrap(),
        Client::connect(&shared_server().connect_string()).unwrap(),
    );
    let first = GroupMember::join(&a, membership, "a", "pa").unwrap();
    let second = GroupMember::join(&b, membership, "b", "pb").unwrap();
    let members = first.members().unwrap();
    assert_eq!(members.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(&members["b"][..], b"pb");
    assert!(GroupMember::join(&a, membership, "bad/id", "").is_err());
    second.leave().unwrap();
    assert_eq!(first.members().unwrap().len(), 1);
    first.leave().unwrap();
    assert!(a.get_children(membership).unwrap().is_empty());
    a.close();
    b.close();
}
