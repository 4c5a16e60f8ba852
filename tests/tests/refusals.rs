//! A session that refuses every request must not stop anything else. Every blocking client of
//! a process shares one IO thread; when one client's session has expired with renewal off,
//! its recipe machines (a held lock being released, a DataWatch) are refused everything they
//! ask, and the other clients must go on being served: state from the IO thread, new
//! connections, pings that keep their sessions alive.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use zk_harness::{Fault, Proxy};
use zk_mio::blocking::Client;
use zk_mio::recipes::{DataWatch, Lock};
use zk_mio::{AppState, CreateOptions, SessionState};
use zk_tests::shared_server;

/// Runs `f` on a thread of its own and gives up on it after `within`: a call stuck behind
/// a spinning IO thread fails the test instead of hanging it.
fn within<T: Send + 'static>(
    what: &str,
    within: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(within)
        .unwrap_or_else(|_| panic!("{what}: no answer within {within:?}"))
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_expired_sessions_refused_machines_leave_the_other_clients_served() {
    let server = shared_server();
    let dir = "/refusals/lock";
    let proxy = Proxy::start(server.addr()).unwrap();
    let doomed = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(2))
        .renew_expired(false)
        .connect()
        .unwrap();
    let other = Client::builder(&server.connect_string())
        .session_timeout(Duration::from_secs(4))
        .connect()
        .unwrap();
    other.create_all("/refusals/config", "v1").unwrap();

    let guard = Lock::new(&doomed, dir).acquire().unwrap();
    let watch = DataWatch::with_callback(&doomed, "/refusals/config", |_| {});
    assert_eq!(other.get_children(dir).unwrap().len(), 1);

    // The doomed client's link goes silent until the server has expired its session (its
    // ephemeral lock node goes with it); then it may reach the server again and hear so.
    proxy.set_fault(Fault::BlackHole);
    wait_for(
        "the session expired on the server",
        Duration::from_secs(20),
        || {
            other
                .get_children(dir)
                .map(|c| c.is_empty())
                .unwrap_or(false)
        },
    );
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    wait_for(
        "the client heard of the expiry",
        Duration::from_secs(15),
        || doomed.app_state() == AppState::Lost,
    );
    // Everything the machines ask from now on is refused: the release's delete, the watch's
    // reads.
    drop(guard);
    other.set_data("/refusals/config", "v2", None).unwrap();

    // The other client is still served through the IO thread...
    let o = other.clone();
    let metrics = within(
        "metrics of the other client",
        Duration::from_secs(3),
        move || o.metrics(),
    );
    assert!(metrics.is_ok(), "{metrics:?}");
    // ...a new client connects...
    let hosts = server.connect_string();
    let fresh = within("a new client", Duration::from_secs(10), move || {
        Client::builder(&hosts)
            .session_timeout(Duration::from_secs(4))
            .connect()
    })
    .expect("a new client connects");
    fresh
        .create("/refusals/fresh", "", &CreateOptions::ephemeral())
        .unwrap();
    // ...and an idle session stays alive past its own timeout, on the IO thread's pings.
    let idle_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < idle_until {
        assert_eq!(
            other.state(),
            SessionState::Connected,
            "the other client lost its connection"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let o = other.clone();
    let v = within(
        "a read of the other client",
        Duration::from_secs(3),
        move || o.get_data("/refusals/config"),
    )
    .unwrap();
    assert_eq!(&v.0[..], b"v2");

    drop(watch);
    fresh.close();
    doomed.close();
    other.close();
}
