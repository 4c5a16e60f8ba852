//! Dynamic reconfiguration on a real 3-node ensemble: `reconfig` (incremental and whole),
//! and clients that follow `/zookeeper/config` moving off a removed server and spreading
//! onto one that joins, without losing their sessions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::task::spawn_blocking;
use zk_harness::{Ensemble, ServerOptions};
use zk_proto::ensemble::EnsembleConfig;
use zk_tokio::{Client, CreateOptions, HostAddr, Reconfig, SessionState};

const FOLLOWERS: usize = 30;

async fn eventually(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_clients_leave_a_removed_server_and_spread_onto_a_returning_one() {
    let ensemble = spawn_blocking(|| Ensemble::start_with(3, ServerOptions::default().reconfig()))
        .await
        .unwrap()
        .expect("a reconfigurable ensemble");
    let hosts = ensemble.connect_string();
    let admin = zk_tests::client(&hosts).await;

    // The configuration names every member's client address.
    let (data, _) = admin.get_config().await.unwrap();
    let config = EnsembleConfig::parse(&data).unwrap();
    assert_eq!(config.members.len(), 3, "{config:?}");
    for (i, m) in config.members.iter().enumerate() {
        let client = m.client.as_ref().expect("a client address");
        assert_eq!(client.to_string(), ensemble.server(i).connect_string());
    }
    let lines: Vec<String> = String::from_utf8_lossy(&data)
        .lines()
        .filter(|l| l.starts_with("server."))
        .map(str::to_owned)
        .collect();

    let mut followers = Vec::new();
    for _ in 0..FOLLOWERS {
        let c = Client::builder(&hosts)
            .session_timeout(Duration::from_secs(8))
            .follow_config(true)
            .connect()
            .await
            .unwrap();
        followers.push(c);
    }
    let sessions: Vec<i64> = followers.iter().map(Client::session_id).collect();

    // A follower leaves (incremental reconfig): every session ends up on the two others.
    let leader = ensemble.leader().expect("a leader");
    let leaving = (0..3).find(|&i| i != leader).unwrap();
    let leaving_addr: HostAddr = config.members[leaving].client.clone().unwrap();
    let on_leaving = followers
        .iter()
        .filter(|c| c.server().as_ref() == Some(&leaving_addr))
        .count();
    let (new_data, _) = admin
        .reconfig(&Reconfig::incremental().leave(config.members[leaving].id))
        .await
        .unwrap();
    let after_removal = EnsembleConfig::parse(&new_data).unwrap();
    assert_eq!(after_removal.members.len(), 2);
    assert!(after_removal.version > config.version);
    eventually(
        "every follower off the removed server",
        Duration::from_secs(30),
        || {
            followers.iter().all(|c| {
                c.state() == SessionState::Connected
                    && c.hosts().len() == 2
                    && c.server().is_some_and(|s| s != leaving_addr)
            })
        },
    )
    .await;
    let now: Vec<i64> = followers.iter().map(Client::session_id).collect();
    assert_eq!(now, sessions, "every session survived the move");
    let mut after_leaving: HashMap<HostAddr, usize> = HashMap::new();
    for c in &followers {
        *after_leaving.entry(c.server().unwrap()).or_default() += 1;
    }
    eprintln!("after the removal: {after_leaving:?}");

    // The member returns (a whole new membership): about a third of the sessions move to
    // it (1 - 2/3), the rest stay.
    admin
        .reconfig(&Reconfig::members(lines.clone()))
        .await
        .unwrap();
    eventually(
        "every follower knows three servers",
        Duration::from_secs(30),
        || {
            followers
                .iter()
                .all(|c| c.state() == SessionState::Connected && c.hosts().len() == 3)
        },
    )
    .await;
    // A move is scheduled, not immediate: wait until one has landed on the returning
    // server and everyone is connected, rather than counting before any move began.
    eventually("the moves settle", Duration::from_secs(30), || {
        followers
            .iter()
            .all(|c| c.state() == SessionState::Connected && c.server().is_some())
            && followers
                .iter()
                .any(|c| c.server().as_ref() == Some(&leaving_addr))
    })
    .await;
    let mut spread: HashMap<HostAddr, usize> = HashMap::new();
    for c in &followers {
        *spread.entry(c.server().unwrap()).or_default() += 1;
    }
    let on_returned = spread.get(&leaving_addr).copied().unwrap_or(0);
    eprintln!(
        "{on_leaving} of {FOLLOWERS} sessions were on the removed server {leaving_addr}; after \
         it returned: {spread:?}"
    );
    assert!(
        (1..=25).contains(&on_returned),
        "{on_returned} of {FOLLOWERS} moved to the returning server"
    );
    let now: Vec<i64> = followers.iter().map(Client::session_id).collect();
    assert_eq!(now, sessions, "every session survived");

    // Every session still works, and the metrics counted the planned moves.
    let mut moved = 0;
    for (i, c) in followers.iter().enumerate() {
        c.create(&format!("/reconfig-{i}"), "", &CreateOptions::ephemeral())
            .await
            .unwrap();
        let m = c.metrics().await.unwrap();
        moved += (m.connections > 1) as usize;
    }
    assert!(
        moved >= on_returned,
        "{moved} sessions reconnected at least once"
    );
    for c in followers {
        c.close().await;
    }
    admin.close().await;
    drop(ensemble);
}
