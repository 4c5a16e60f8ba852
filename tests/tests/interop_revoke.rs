//! Lock revocation with Curator, both ways, on one real server: our `Lock::revoke_holder`
//! asks a Curator holder (`InterProcessMutex.makeRevocable`) to let go, and Curator's
//! `Revoker.attemptRevoke` asks a revocable lock of ours. The lock passing on, as the server
//! shows it, is the judge.
//!
//! Curator comes from Debian's `libcurator-recipes-java`; without it the tests say so and
//! pass, unless `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::time::Duration;

use zk_tests::{client, interop, shared_server};
use zk_tokio::CreateOptions;
use zk_tokio::recipes::{Flavor, Lock};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_revoker_makes_a_curator_holder_let_go() {
    let Some(curator) = interop::Curator::compile("CuratorRevokeSide") else {
        return;
    };
    let path = "/interop-revoke/curator-holds";
    let c = client(&shared_server().connect_string()).await;
    c.create_all("/interop-revoke", "").await.unwrap();
    let side = curator
        .java("CuratorRevokeSide")
        .args([shared_server().connect_string(), "hold".into(), path.into()])
        .spawn()
        .expect("start the Curator side");
    interop::wait_for(&c, &format!("{path}-held")).await;
    let lock = Lock::new(&c, path).with_flavor(Flavor::Curator);
    // Curator holds it: not ours within a moment.
    assert!(
        lock.acquire_timeout(Duration::from_millis(300))
            .await
            .unwrap()
            .is_none()
    );
    let asked = lock
        .revoke_holder()
        .await
        .unwrap()
        .expect("Curator holds it");
    assert!(asked.contains("/_c_"), "{asked}");
    let guard = tokio::time::timeout(Duration::from_secs(30), lock.acquire())
        .await
        .expect("Curator lets go once asked")
        .unwrap();
    let output = tokio::task::spawn_blocking(move || side.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("REVOKED"), "Curator said {said:?}");
    guard.release().await.unwrap();
    // Nobody holds it now: there is nobody to ask.
    assert_eq!(lock.revoke_holder().await.unwrap(), None);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curators_revoker_reaches_a_revocable_lock_of_ours() {
    let Some(curator) = interop::Curator::compile("CuratorRevokeSide") else {
        return;
    };
    let path = "/interop-revoke/ours-holds";
    let c = client(&shared_server().connect_string()).await;
    c.create_all("/interop-revoke", "").await.unwrap();
    let guard = Lock::new(&c, path)
        .with_flavor(Flavor::Curator)
        .revocable()
        .acquire()
        .await
        .unwrap();
    assert!(!guard.revocation_requested());
    let side = curator
        .java("CuratorRevokeSide")
        .args([
            shared_server().connect_string(),
            "revoke".into(),
            path.into(),
        ])
        .spawn()
        .expect("start the Curator side");
    c.create(
        &format!("{path}-ours"),
        guard.node().to_string(),
        &CreateOptions::ephemeral(),
    )
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(30), guard.revoked())
        .await
        .expect("the request reaches our holder")
        .unwrap();
    assert!(guard.revocation_requested());
    let output = tokio::task::spawn_blocking(move || side.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("ASKED"));
    // Still held until the holder decides; then it goes.
    assert!(guard.is_held());
    let node = guard.node().to_string();
    guard.release().await.unwrap();
    assert!(c.exists(&node).await.unwrap().is_none());
    c.close().await;
}
