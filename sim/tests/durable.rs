//! Snapshots: what a restart from the data directory reads back, and what it refuses.

use std::time::Instant;

use zk_sim::{Config, Ensemble, SnapshotError};

#[test]
fn a_snapshot_restores_what_it_kept_and_refuses_what_it_did_not_write() {
    let now = Instant::now();
    let zk = Ensemble::new(Config::standalone(), now);
    let snapshot = zk.snapshot();
    let back = Ensemble::restore(Config::standalone(), &snapshot, now).unwrap();
    assert_eq!(back.paths(), zk.paths());
    assert_eq!(back.last_zxid(), zk.last_zxid());
    assert_eq!(
        back.snapshot(),
        snapshot,
        "a restored model snapshots the same"
    );
    assert_eq!(
        Ensemble::restore(Config::standalone(), b"not a snapshot", now).unwrap_err(),
        SnapshotError::NotASnapshot
    );
    let cut = &snapshot[..snapshot.len() - 3];
    assert!(matches!(
        Ensemble::restore(Config::standalone(), cut, now),
        Err(SnapshotError::Damaged(_))
    ));
}
