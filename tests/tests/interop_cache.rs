//! Our `TreeCache` beside Curator's `CuratorCache` on one real server: both mirror the
//! same tree while each side changes its own part of it, and once both are done the two
//! mirrors (every path, data and data version) must be the same, and match the server.
//!
//! Curator comes from Debian's jars; without them the test says so and passes, unless
//! `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use zk_tests::{client, interop, shared_server};
use zk_tokio::CreateOptions;
use zk_tokio::recipes::TreeCache;

fn hex(data: &[u8]) -> String {
    if data.is_empty() {
        return "-".into();
    }
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every node under `root` (itself included) read from the server: path to (version, data).
async fn server_tree(c: &zk_tokio::Client, root: &str) -> BTreeMap<String, (i32, String)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_string()];
    while let Some(path) = todo.pop() {
        let (data, stat) = c.get_data(&path).await.unwrap();
        out.insert(path.clone(), (stat.version, hex(&data)));
        for child in c.get_children(&path).await.unwrap() {
            todo.push(format!("{path}/{child}"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_tree_cache_and_curators_mirror_the_same_tree() {
    let Some(curator) = interop::Curator::compile("CuratorCacheSide") else {
        return;
    };
    let root = "/interop-cache";
    let hosts = shared_server().connect_string();
    let c = client(&hosts).await;
    c.create_all(&format!("{root}/rust"), "").await.unwrap();
    let mut cache = TreeCache::start(&c, root).await.unwrap();
    let side = curator
        .java("CuratorCacheSide")
        .args([hosts.as_str(), root])
        .spawn()
        .expect("start the Curator side");
    interop::wait_for(&c, &format!("{root}-ready")).await;

    // Our part of the tree, changed while Curator changes its own.
    let mine = format!("{root}/rust");
    for i in 0..20 {
        c.create(
            &format!("{mine}/n{i}"),
            format!("v{i}"),
            &CreateOptions::persistent(),
        )
        .await
        .unwrap();
    }
    for i in (1..20).step_by(3) {
        c.set_data(&format!("{mine}/n{i}"), format!("w{i}"), None)
            .await
            .unwrap();
    }
    for i in (0..20).step_by(4) {
        c.delete(&format!("{mine}/n{i}"), None).await.unwrap();
    }
    c.create_all(&format!("{mine}/x/y/z"), "deep")
        .await
        .unwrap();
    interop::wait_for(&c, &format!("{root}-curator-done")).await;
    c.create(&format!("{root}/zz-last"), "", &CreateOptions::persistent())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while cache.get(&format!("{root}/zz-last")).is_none() {
        assert!(Instant::now() < deadline, "our mirror never saw zz-last");
        let _ = tokio::time::timeout(Duration::from_millis(50), cache.next_event()).await;
    }
    let ours: BTreeMap<String, (i32, String)> = cache
        .snapshot()
        .into_iter()
        .map(|(path, node)| (path, (node.stat.version, hex(&node.data))))
        .collect();

    let output = tokio::task::spawn_blocking(move || side.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("END"),
        "the Curator side failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: BTreeMap<String, (i32, String)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("NODE "))
        .map(|l| {
            let mut f = l.split(' ');
            let path = f.next().unwrap_or_default().to_string();
            let version = f.next().and_then(|v| v.parse().ok()).unwrap_or(-1);
            (path, (version, f.next().unwrap_or_default().to_string()))
        })
        .collect();
    let on_server = server_tree(&c, root).await;
    assert!(
        on_server.len() >= 40,
        "both sides' changes are there: {on_server:?}"
    );
    assert_eq!(ours, on_server, "our mirror against the server");
    assert_eq!(theirs, on_server, "Curator's mirror against the server");
    c.close().await;
}
