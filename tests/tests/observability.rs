//! What an operator sees of a client: the metrics snapshot of both clients, and the
//! `tracing` span and slow-request warnings every driver emits. One test in its own binary,
//! since it installs the process's subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zk_tests::shared_sim;

/// Log lines written by the subscriber, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_spans_and_slow_request_warnings() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();

    let hosts = shared_sim().connect_string();
    // Every reply counts as slow with a zero threshold.
    let c = zk_tokio::Client::builder(&hosts)
        .slow_request(Duration::ZERO)
        .connect()
        .await
        .unwrap();
    let before = c.metrics().await.unwrap();
    assert_eq!((before.connections, before.disconnects), (1, 0));
    assert_eq!(before.state, zk_tokio::SessionState::Connected);
    assert_eq!(before.session_id, c.session_id());
    assert_eq!(before.host, c.server());
    c.create("/observed", "", &zk_tokio::CreateOptions::persistent())
        .await
        .unwrap();
    let (_, _, _watch) = c.get_data_watch("/observed").await.unwrap();
    let after = c.metrics().await.unwrap();
    assert_eq!(after.completed - before.completed, 2);
    assert_eq!(after.slow_requests - before.slow_requests, 2);
    assert!(after.last_slow.is_some());
    assert_eq!((after.in_flight, after.queued, after.watches), (0, 0, 1));
    let session = format!("{:#x}", c.session_id());
    c.close().await;
    assert!(c.metrics().await.is_err(), "metrics after close fail");

    // The blocking client: the same snapshot.
    let hosts2 = hosts.clone();
    let blocking_session = tokio::task::spawn_blocking(move || {
        let b = zk_mio::blocking::Client::builder(&hosts2)
            .slow_request(Duration::ZERO)
            .connect()
            .unwrap();
        b.get_data("/observed").unwrap();
        let m = b.metrics().unwrap();
        assert_eq!((m.connections, m.completed, m.slow_requests), (1, 1, 1));
        assert_eq!(m.session_id, b.session_id());
        let id = format!("{:#x}", b.session_id());
        b.delete("/observed", None).unwrap();
        b.close();
        assert!(b.metrics().is_err(), "metrics after close fail");
        id
    })
    .await
    .unwrap();

    let text = logs.text();
    for id in [&session, &blocking_session] {
        let line = text
            .lines()
            .find(|l| l.contains("slow request") && l.contains(id.as_str()))
            .unwrap_or_else(|| panic!("a slow-request warning in session {id}:\n{text}"));
        assert!(
            line.contains("WARN") && line.contains("zk_session{"),
            "{line}"
        );
        assert!(line.contains(&format!("hosts={hosts}")), "{line}");
    }
    assert!(
        text.lines()
            .any(|l| l.contains(&session) && l.contains("session state")),
        "{text}"
    );
}
