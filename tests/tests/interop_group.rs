//! Group membership and kept nodes with Curator, on one real server: our `GroupMember`
//! and Curator's `GroupMember` join one membership path, and each lists the other with its
//! payload; our member's node comes back after an operator deletes it and after its
//! session expires, as Curator's does.
//!
//! Curator comes from Debian's `libcurator-recipes-java`; without it the test says so and
//! passes, unless `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::time::Duration;

use zk_harness::{Fault, Proxy};
use zk_tests::{client, interop, shared_server};
use zk_tokio::recipes::GroupMember;
use zk_tokio::{Client, CreateOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_group_member_and_curators_see_each_other_and_ours_comes_back() {
    let Some(curator) = interop::Curator::compile("CuratorGroupSide") else {
        return;
    };
    let membership = "/interop-group/members";
    let observer = client(&shared_server().connect_string()).await;
    observer.create_all("/interop-group", "").await.unwrap();
    let side = curator
        .java("CuratorGroupSide")
        .args([
            shared_server().connect_string(),
            membership.into(),
            "curator".into(),
            "curator,rust".into(),
        ])
        .spawn()
        .expect("start the Curator side");
    interop::wait_for(&observer, &format!("{membership}-ready")).await;

    // Ours joins through a proxy, so its session can be made to expire.
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let c = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_millis(2000))
        .connect()
        .await
        .unwrap();
    let ours = GroupMember::join(&c, membership, "rust", "rust-payload")
        .await
        .unwrap();
    let members = ours.members().await.unwrap();
    assert_eq!(members.len(), 2, "{members:?}");
    assert_eq!(&members["curator"][..], b"curator-payload");
    assert_eq!(&members["rust"][..], b"rust-payload");

    // Curator lists ours, with its payload.
    let output = tokio::task::spawn_blocking(move || {
        let mut side = side;
        let mut line = String::new();
        let out = side.stdout.take().expect("the side's output");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        (side, line)
    })
    .await
    .unwrap();
    let (side, line) = output;
    assert_eq!(
        line.trim(),
        "MEMBERS curator=curator-payload,rust=rust-payload"
    );

    // Deleted behind its back: it comes back, with a new payload set meanwhile.
    let mine = format!("{membership}/rust");
    ours.set_payload("second");
    let made = ours.node().times_made();
    observer.delete(&mine, None).await.unwrap();
    let again = tokio::time::timeout(Duration::from_secs(10), ours.node().remade(made))
        .await
        .expect("made again")
        .unwrap();
    assert!(again > made);
    let (data, _) = observer.get_data(&mine).await.unwrap();
    assert_eq!(&data[..], b"second");

    // Its session expires: it comes back on the new one.
    let session = c.session_id();
    let made = ours.node().times_made();
    proxy.set_fault(Fault::BlackHole);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    tokio::time::timeout(Duration::from_secs(20), ours.node().remade(made))
        .await
        .expect("made again on the new session")
        .unwrap();
    assert_ne!(c.session_id(), session);
    let (data, stat) = observer.get_data(&mine).await.unwrap();
    assert_eq!(&data[..], b"second");
    assert_eq!(stat.ephemeral_owner, c.session_id());

    // Leaving deletes it, confirmed; Curator leaves too.
    ours.leave().await.unwrap();
    assert!(observer.exists(&mine).await.unwrap().is_none());
    observer
        .create(
            &format!("{membership}-done"),
            "",
            &CreateOptions::ephemeral(),
        )
        .await
        .unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let mut side = side;
        side.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success());
    c.close().await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_kept_node_lives_while_touched_and_is_reaped_after() {
    use zk_tokio::recipes::PersistentNode;
    // The harness's server reaps containers and TTL nodes on its own schedule
    // (znode.container.checkIntervalMs); give it time.
    let path = "/interop-group/ttl/kept";
    let c = client(&shared_server().connect_string()).await;
    let node = PersistentNode::start_ttl(&c, path, Duration::from_millis(1500), "kept")
        .await
        .unwrap();
    let (data, stat) = c.get_data(path).await.unwrap();
    assert_eq!(&data[..], b"kept");
    assert_eq!(
        stat.ephemeral_owner, 0,
        "a container, not an ephemeral node"
    );
    // Curator's layout: the touch child, with a TTL.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while c.exists(&format!("{path}/touch")).await.unwrap().is_none() {
        assert!(tokio::time::Instant::now() < deadline, "never touched");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Kept well past its TTL while the handle lives.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(c.exists(path).await.unwrap().is_some());
    // Dropped: the touches stop, the server reaps the child, then the container.
    drop(node);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while c.exists(path).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the container was never reaped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_ttl_kept_node_and_curators_keep_one_node_together() {
    use zk_tokio::recipes::PersistentNode;
    let Some(curator) = interop::Curator::compile("CuratorTtlSide") else {
        return;
    };
    let path = "/interop-group/ttl/shared";
    let c = client(&shared_server().connect_string()).await;
    c.create_all("/interop-group/ttl", "").await.unwrap();
    let side = curator
        .java("CuratorTtlSide")
        .args([
            shared_server().connect_string(),
            path.to_string(),
            "1500".to_string(),
        ])
        .spawn()
        .expect("start the Curator side");
    interop::wait_for(&c, &format!("{path}-curator")).await;
    // Curator's node, in the layout ours keeps: a container with a TTL child "touch".
    let (data, stat) = c.get_data(path).await.unwrap();
    assert_eq!(&data[..], b"curator");
    assert_eq!(stat.ephemeral_owner, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while c.exists(&format!("{path}/touch")).await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Curator never touched"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, touch) = c.get_data(&format!("{path}/touch")).await.unwrap();
    assert_eq!(touch.ephemeral_owner, 0, "a TTL node, not an ephemeral one");
    // Ours joins on the same path: it adopts the node and keeps it too.
    let ours = PersistentNode::start_ttl(&c, path, Duration::from_millis(1500), "ours")
        .await
        .unwrap();
    // Curator stops touching: ours alone keeps it, well past its TTL.
    c.create(&format!("{path}-stop"), "", &CreateOptions::ephemeral())
        .await
        .unwrap();
    let output = tokio::task::spawn_blocking(move || side.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("CLOSED"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        c.exists(path).await.unwrap().is_some(),
        "kept by ours alone"
    );
    // Ours stops too: the server reaps the child, then the container.
    drop(ours);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while c.exists(path).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the container was never reaped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.close().await;
}
