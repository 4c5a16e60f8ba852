//! A watch released by dropping its watcher, then set again at once on the same path by the
//! same thread, on the blocking client against a real server: the new watch must hear the
//! next change. The release's `removeWatches` removes every watch of its kind on the path,
//! so it must reach the server before the new watch's request, in the order the thread
//! asked, whichever thread writes to the socket.

use std::time::Duration;

use zk_mio::blocking::Client;
use zk_proto::consts::{AddWatchMode, EventType};
use zk_tests::shared_server;

/// Rounds per kind of watch: enough that a release reordered with the next request shows
/// (before the fix, most rounds lost their watch).
const ROUNDS: usize = 200;

fn connect() -> Client {
    Client::builder(&shared_server().connect_string())
        .session_timeout(Duration::from_secs(6))
        .connect()
        .expect("connect a blocking client")
}

#[test]
fn a_data_watch_set_right_after_a_release_on_the_same_path_still_fires() {
    let (c, writer) = (connect(), connect());
    let path = "/watch-release-data/node";
    writer.create_all(path, "0").unwrap();
    let (_, _, mut w) = c.get_data_watch(path).unwrap();
    let mut lost = Vec::new();
    for round in 0..ROUNDS {
        drop(w);
        let (_, _, next) = c.get_data_watch(path).unwrap();
        w = next;
        writer.set_data(path, round.to_string(), None).unwrap();
        match w.wait_timeout(Duration::from_secs(5)) {
            Some(e) if e.kind == EventType::NodeDataChanged => {
                let (_, _, next) = c.get_data_watch(path).unwrap();
                w = next;
            }
            other => {
                lost.push((round, other.map(|e| e.kind)));
                let (_, _, next) = c.get_data_watch(path).unwrap();
                w = next;
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {ROUNDS} rounds lost the new watch: {lost:?}",
        lost.len()
    );
    drop(w);
    let _ = writer.delete_all(path);
    c.close();
    writer.close();
}

#[test]
fn a_persistent_watch_added_right_after_a_release_on_the_same_path_still_fires() {
    let (c, writer) = (connect(), connect());
    let path = "/watch-release-persistent/node";
    writer.create_all(path, "0").unwrap();
    let mut lost = Vec::new();
    let mut w = c.add_watch(path, AddWatchMode::Persistent).unwrap();
    for round in 0..ROUNDS {
        drop(w);
        w = c.add_watch(path, AddWatchMode::Persistent).unwrap();
        writer.set_data(path, round.to_string(), None).unwrap();
        match w.next_timeout(Duration::from_secs(5)) {
            Ok(Some(e)) if e.kind == EventType::NodeDataChanged => {}
            other => lost.push((round, other.map(|e| e.map(|e| e.kind)))),
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {ROUNDS} rounds lost the new watch: {lost:?}",
        lost.len()
    );
    drop(w);
    let _ = writer.delete_all(path);
    c.close();
    writer.close();
}
