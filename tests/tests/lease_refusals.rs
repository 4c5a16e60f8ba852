//! A lease whose write the server refuses for good (no permission to replace the ended
//! holder) fails at once with that refusal, on both clients against a real server, and
//! stops: it does not read and write again for ever while holding Kazoo's lock on the
//! lease path.

use std::time::{Duration, Instant};

use zk_client::CreateOptions;
use zk_proto::ErrorCode;
use zk_proto::consts::perms;
use zk_proto::digest::digest_acl;
use zk_proto::records::{Acl, Id};
use zk_recipes::lease::Holder;
use zk_tests::shared_server;

/// A lease path anyone may read and create under, but only `admin` may delete under, with
/// an ended holder in it.
fn refusing_lease_path(path: &str) {
    let admin = zk_mio::blocking::Client::builder(&shared_server().connect_string())
        .auth("digest", "admin:secret")
        .connect()
        .unwrap();
    let acl = vec![
        digest_acl(perms::ALL, "admin", "secret"),
        Acl::new(perms::READ | perms::CREATE, Id::anyone()),
    ];
    let _ = admin.delete_all(path);
    admin
        .create(path, "", &CreateOptions::persistent().with_acl(acl))
        .unwrap();
    let ended = Holder {
        version: 1,
        holder: "a host that is gone".into(),
        end: 1_000_000_000,
    };
    admin
        .create(
            &format!("{path}/lease_holder"),
            ended.encode(),
            &CreateOptions::persistent(),
        )
        .unwrap();
    admin.close();
}

#[tokio::test]
async fn an_async_lease_refused_for_good_fails_at_once_and_stops() {
    let path = "/lease-refusals-async";
    refusing_lease_path(path);
    let c = zk_tests::client(&shared_server().connect_string()).await;
    let lease = zk_tokio::recipes::Lease::new(&c, path, "us");
    let started = Instant::now();
    let got = tokio::time::timeout(
        Duration::from_secs(5),
        lease.obtain(Duration::from_secs(60)),
    )
    .await
    .expect("an answer within 5 s, not writes for ever");
    assert!(
        matches!(&got, Err(e) if e.server_code() == Some(ErrorCode::NoAuth)),
        "{got:?} after {:?}",
        started.elapsed()
    );
    // Nothing goes on behind the answer.
    let before = c.metrics().await.unwrap().completed;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = c.metrics().await.unwrap().completed;
    assert!(
        after - before < 10,
        "{} requests in 0.5 s after the answer",
        after - before
    );
    c.close().await;
}

#[test]
fn a_blocking_lease_refused_for_good_fails_at_once_and_stops() {
    let path = "/lease-refusals-blocking";
    refusing_lease_path(path);
    let c = zk_mio::blocking::Client::connect(&shared_server().connect_string()).unwrap();
    let lease = zk_mio::recipes::Lease::new(&c, path, "us");
    let started = Instant::now();
    let got = lease.obtain(Duration::from_secs(60));
    let took = started.elapsed();
    assert!(
        matches!(&got, Err(e) if e.server_code() == Some(ErrorCode::NoAuth)),
        "{got:?} after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    let before = c.metrics().unwrap().completed;
    std::thread::sleep(Duration::from_millis(500));
    let after = c.metrics().unwrap().completed;
    assert!(
        after - before < 10,
        "{} requests in 0.5 s after the answer",
        after - before
    );
    c.close();
}
