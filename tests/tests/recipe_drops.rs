//! The newer recipes' calls dropped at their await points, against the real server: a
//! kept node, a group membership, a service registration or a set partitioner whose start
//! is dropped while its requests travel leaves nothing behind once the server has answered;
//! the guards' owners dropped later leave nothing either.

use std::time::{Duration, Instant};

use zk_harness::{Fault, Proxy};
use zk_tests::{client, settle, shared_server};
use zk_tokio::CreateMode;
use zk_tokio::recipes::{
    GroupMember, PersistentNode, ServiceDiscovery, ServiceInstance, SetPartitioner,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_dropped_in_flight_leave_nothing() {
    let observer = client(&shared_server().connect_string()).await;
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let c = client(&proxy.connect_string()).await;
    for dir in ["/drops/kept", "/drops/group", "/drops/services/svc"] {
        observer.create_all(dir, "").await.unwrap();
    }
    proxy.set_fault(Fault::Delay(Duration::from_millis(200)));
    // Dropped before the create reaches the server, and after it did while the reply
    // travels.
    for ms in [50u64, 300] {
        let kept = PersistentNode::start(
            &c,
            &format!("/drops/kept/node{ms}"),
            CreateMode::Ephemeral,
            "x",
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(ms), kept)
                .await
                .is_err()
        );
        let member = GroupMember::join(&c, "/drops/group", &format!("m{ms}"), "p");
        assert!(
            tokio::time::timeout(Duration::from_millis(ms), member)
                .await
                .is_err()
        );
        let discovery = ServiceDiscovery::new(&c, "/drops/services");
        let register = discovery.register(&ServiceInstance::new("svc", &format!("i{ms}")));
        assert!(
            tokio::time::timeout(Duration::from_millis(ms), register)
                .await
                .is_err()
        );
    }
    proxy.set_fault(Fault::Pass);
    for dir in ["/drops/kept", "/drops/group", "/drops/services/svc"] {
        settle(&observer, dir, 0, Duration::from_secs(15)).await;
        // Both starts made their node (the second after the first was dropped), and both
        // nodes were deleted: four changes.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, stat) = observer.get_data(dir).await.unwrap();
            if stat.cversion == 4 && stat.num_children == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{dir}: {stat:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Started and then dropped, with the work done: the same.
    let kept = PersistentNode::start(&c, "/drops/kept/node", CreateMode::Persistent, "x")
        .await
        .unwrap();
    let member = GroupMember::join(&c, "/drops/group", "m", "p")
        .await
        .unwrap();
    let p = SetPartitioner::start(
        &c,
        "/drops/partition",
        &["a", "b"],
        "me",
        Duration::from_millis(200),
    )
    .unwrap();
    let items = tokio::time::timeout(Duration::from_secs(10), p.acquired())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(items, ["a", "b"]);
    drop((kept, member, p));
    for dir in [
        "/drops/kept",
        "/drops/group",
        "/drops/partition/party",
        "/drops/partition/locks/a",
        "/drops/partition/locks/b",
    ] {
        settle(&observer, dir, 0, Duration::from_secs(15)).await;
    }
    c.close().await;
    observer.close().await;
}
