//! Interoperability with Curator 5.4 (Debian's `libcurator-recipes-java`): our lock with
//! Curator's node names and Curator's `InterProcessMutex` take turns on one path of a real
//! server, and so do our election with `LeaderLatch` names and Curator's `LeaderLatch`,
//! and our election with mutex names and Curator's `LeaderSelector` (requeued after each
//! leadership). Each side, while it holds the lock, creates an ephemeral marker node that
//! must not exist and bumps a counter with a versioned write: an overlap in server time fails
//! one of the two on the server, whatever the clients believe.
//!
//! Skipped, with a note, when Curator's jars are not installed, unless
//! `ZK_REQUIRE_INTEROP` is set (`.ci/run` installs them and sets it).

use std::time::Duration;

use zk_tests::{client, interop, shared_server};
use zk_tokio::recipes::{Election, Flavor, Leadership, Lock, LockGuard};
use zk_tokio::{CreateOptions, ErrorCode};

const TURNS: u32 = 60;

/// What our side holds in a turn.
enum Held {
    Lock(LockGuard),
    Lead(Leadership),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_lock_and_curators_interprocess_mutex_exclude_each_other() {
    take_turns("/interop-curator", "mutex").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_election_and_curators_leader_latch_never_lead_at_once() {
    take_turns("/interop-curator-latch", "latch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_election_and_curators_leader_selector_never_lead_at_once() {
    take_turns("/interop-curator-selector", "selector").await;
}

/// Our side and Curator's (`mode`: "mutex", "latch" or "selector") take `TURNS` turns each under
/// `dir`; overlaps are judged on the server.
async fn take_turns(dir: &str, mode: &str) {
    let Some(curator) = interop::Curator::compile("CuratorLockSide") else {
        return;
    };
    let hosts = shared_server().connect_string();
    let c = client(&hosts).await;
    let (lock_dir, counter, marker) = (
        format!("{dir}/lock"),
        format!("{dir}/counter"),
        format!("{dir}/inside"),
    );
    for (path, data) in [(dir, ""), (counter.as_str(), "0")] {
        match c.create(path, data, &CreateOptions::persistent()).await {
            Ok(_) => {}
            Err(e) if e.server_code() == Some(ErrorCode::NodeExists) => {}
            Err(e) => panic!("creating {path}: {e}"),
        }
    }
    c.set_data(&counter, "0", None).await.unwrap();

    let side = curator
        .java("CuratorLockSide")
        .args([&hosts, &TURNS.to_string()])
        .args([&lock_dir, &counter, &marker, mode])
        .spawn()
        .expect("start the Curator side");
    interop::wait_for(&c, &format!("{marker}-ready")).await;

    let lock = Lock::new(&c, &lock_dir).with_flavor(Flavor::Curator);
    let election = Election::new(&c, &lock_dir, "rust").with_flavor(match mode {
        "latch" => Flavor::CuratorLatch,
        _ => Flavor::Curator,
    });
    let (mut done, mut overlaps, mut contended) = (0u32, 0u32, 0u32);
    for _ in 0..TURNS {
        let take = async {
            match mode {
                "latch" | "selector" => Held::Lead(election.lead().await.expect("leadership")),
                _ => Held::Lock(lock.acquire().await.expect("the lock")),
            }
        };
        let held = tokio::time::timeout(Duration::from_secs(60), take)
            .await
            .expect("our turn within 60 s");
        if c.get_children(&lock_dir).await.unwrap().len() > 1 {
            contended += 1;
        }
        match c.create(&marker, "rust", &CreateOptions::ephemeral()).await {
            Ok(_) => {
                let (data, stat) = c.get_data(&counter).await.unwrap();
                let n: u64 = std::str::from_utf8(&data).unwrap().parse().unwrap();
                match c
                    .set_data(&counter, (n + 1).to_string(), Some(stat.version))
                    .await
                {
                    Ok(_) => done += 1,
                    Err(e) if e.server_code() == Some(ErrorCode::BadVersion) => overlaps += 1,
                    Err(e) => panic!("writing the counter: {e}"),
                }
                c.delete(&marker, None).await.unwrap();
            }
            Err(e) if e.server_code() == Some(ErrorCode::NodeExists) => overlaps += 1,
            Err(e) => panic!("creating the marker: {e}"),
        }
        match held {
            Held::Lock(guard) => guard.release().await.unwrap(),
            Held::Lead(leadership) => leadership.relinquish().await.unwrap(),
        }
    }

    let output = tokio::task::spawn_blocking(move || side.wait_with_output())
        .await
        .unwrap()
        .expect("the Curator side ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Curator side failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("DONE {TURNS} OVERLAPS 0")),
        "Curator saw overlaps: {stdout}"
    );
    assert_eq!((done, overlaps), (TURNS, 0), "we saw overlaps");
    let (data, _) = c.get_data(&counter).await.unwrap();
    assert_eq!(std::str::from_utf8(&data).unwrap(), (2 * TURNS).to_string());
    assert!(
        contended > 0,
        "the two sides never waited for each other: the test proved nothing"
    );
    eprintln!("{TURNS} turns each, {contended} of ours with a Curator contender waiting");
    assert!(c.get_children(&lock_dir).await.unwrap().is_empty());
    c.close().await;
}
