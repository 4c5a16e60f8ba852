//! The mio driver: the blocking client's operations and watches and the custom event-loop
//! example on zk-sim's model server (they test the driver, not the server); failover with
//! no request lost and session expiry against real servers.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_client::{CreateOptions, ReadOp, ReadResult};
use zk_harness::{Ensemble, Fault, Proxy};
use zk_mio::blocking::Client;
use zk_proto::ErrorCode;
use zk_proto::consts::{AddWatchMode, EventType};
use zk_proto::session::{AppState, SessionState, StateEvent};
use zk_tests::{shared_server, shared_sim};

#[path = "../../driver-mio/examples/event_loop.rs"]
#[allow(dead_code)]
mod event_loop;

fn connect(hosts: &str) -> Client {
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(20))
        .connect()
        .expect("connect the blocking client")
}

#[test]
fn the_blocking_client_runs_the_core_operations() {
    let c = connect(&shared_sim().connect_string());
    assert_eq!(c.state(), SessionState::Connected);
    assert_ne!(c.session_id(), 0);
    c.create("/mio", "root", &CreateOptions::persistent())
        .unwrap();
    let (path, stat) = c
        .create2("/mio/a", "1", &CreateOptions::persistent())
        .unwrap();
    assert_eq!((path.as_str(), stat.version), ("/mio/a", 0));
    assert!(
        c.create("/mio/a", "", &CreateOptions::persistent())
            .unwrap_err()
            .is(ErrorCode::NodeExists)
    );
    assert_eq!(&c.get_data("/mio/a").unwrap().0[..], b"1");
    let stat = c.set_data("/mio/a", "2", Some(0)).unwrap();
    assert!(
        c.set_data("/mio/a", "3", Some(0))
            .unwrap_err()
            .is(ErrorCode::BadVersion)
    );
    assert_eq!(c.exists("/mio/a").unwrap(), Some(stat));
    assert_eq!(c.exists("/mio/none").unwrap(), None);
    let eph = c
        .create("/mio/e-", "", &CreateOptions::ephemeral_sequential())
        .unwrap();
    let mut kids = c.get_children("/mio").unwrap();
    kids.sort();
    assert_eq!(kids, ["a", &eph["/mio/".len()..]]);
    assert_eq!(
        c.get_ephemerals("/mio").unwrap(),
        std::slice::from_ref(&eph)
    );
    assert_eq!(c.get_all_children_number("/mio").unwrap(), 2);

    let done = c
        .transaction()
        .create("/mio/t", Bytes::new(), &CreateOptions::persistent())
        .check("/mio/a", 1)
        .commit()
        .unwrap();
    assert_eq!(done.len(), 2);
    let e = c
        .transaction()
        .delete("/mio/t", None)
        .check("/mio/a", 7)
        .commit()
        .unwrap_err();
    assert!(e.is(ErrorCode::BadVersion), "{e}");
    let reads = c
        .multi_read(&[
            ReadOp::GetData("/mio/a".into()),
            ReadOp::GetData("/mio/zz".into()),
        ])
        .unwrap();
    assert!(matches!(&reads[0], ReadResult::Data(d, _) if &d[..] == b"2"));
    assert_eq!(reads[1], ReadResult::Error(ErrorCode::NoNode));
    assert_eq!(c.sync("/mio").unwrap(), "/mio");
    assert_eq!(c.whoami().unwrap()[0].auth_scheme, "ip");

    let observer = connect(&shared_sim().connect_string());
    c.close();
    assert_eq!(c.state(), SessionState::Closed);
    assert_eq!(
        observer.exists(&eph).unwrap(),
        None,
        "the ephemeral went with the session"
    );
    assert!(c.get_data("/mio").is_err(), "calls after close fail");
    observer.close();
}

#[test]
fn watches_arrive_through_channels_iterators_and_callbacks_in_order() {
    let c = connect(&shared_sim().connect_string());
    let other = connect(&shared_sim().connect_string());
    c.create("/mw", "", &CreateOptions::persistent()).unwrap();

    let (_, _, w) = c.get_data_watch("/mw").unwrap();
    let (none, exist) = c.exists_watch("/mw/kid").unwrap();
    assert_eq!(none, None);
    other.set_data("/mw", "1", None).unwrap();
    let e = w.wait();
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventType::NodeDataChanged, "/mw")
    );

    // A persistent watch as an iterator, and a slow callback watch in another session:
    // the callback's slowness must not hold up that session's calls.
    let mut stream = c
        .add_watch("/mw", AddWatchMode::PersistentRecursive)
        .unwrap();
    let slow = connect(&shared_sim().connect_string());
    let (tx, rx) = mpsc::channel();
    let _handle = slow
        .add_watch_fn("/mw", AddWatchMode::PersistentRecursive, move |e| {
            thread::sleep(Duration::from_millis(200));
            let _ = tx.send((e.kind, e.path));
        })
        .unwrap();
    other
        .create("/mw/kid", "", &CreateOptions::persistent())
        .unwrap();
    for i in 0..3 {
        other.set_data("/mw/kid", format!("{i}"), None).unwrap();
    }
    let started = Instant::now();
    for _ in 0..20 {
        slow.get_data("/mw").unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "calls waited for callbacks"
    );
    let mut got = Vec::new();
    for _ in 0..4 {
        let e = stream
            .next_timeout(Duration::from_secs(5))
            .unwrap()
            .unwrap();
        got.push((e.kind, e.path));
    }
    let mut from_callbacks = Vec::new();
    for _ in 0..4 {
        from_callbacks.push(rx.recv_timeout(Duration::from_secs(5)).unwrap());
    }
    assert_eq!(got, from_callbacks, "callbacks run in order");
    assert_eq!(got[0], (EventType::NodeCreated, "/mw/kid".to_string()));
    assert_eq!(exist.wait().kind, EventType::NodeCreated);
    drop(stream);
    for c in [c, other, slow] {
        c.close();
    }
}

#[test]
fn a_panicking_callback_does_not_stop_the_others() {
    let c = connect(&shared_sim().connect_string());
    c.create("/panicky", "", &CreateOptions::persistent())
        .unwrap();
    // A persistent watch whose callback panics on its first event...
    let _bad = c
        .add_watch_fn("/panicky", AddWatchMode::Persistent, |_| {
            panic!("a bug in user code")
        })
        .unwrap();
    let (tx, rx) = mpsc::channel();
    // ...and another one that must go on hearing events, before and after.
    let _good = c
        .add_watch_fn("/panicky", AddWatchMode::PersistentRecursive, move |e| {
            let _ = tx.send(e.kind);
        })
        .unwrap();
    for i in 0..3 {
        c.set_data("/panicky", format!("{i}"), None).unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            EventType::NodeDataChanged
        );
    }
    // One-shot callbacks registered after the panic still run.
    let (tx2, rx2) = mpsc::channel();
    c.get_data_watch_fn("/panicky", move |e| {
        let _ = tx2.send(e.kind);
    })
    .unwrap();
    c.set_data("/panicky", "after", None).unwrap();
    assert_eq!(
        rx2.recv_timeout(Duration::from_secs(5)).unwrap(),
        EventType::NodeDataChanged
    );
    c.close();
}

#[test]
fn state_listeners_run_in_order_and_survive_a_panicking_one() {
    let c = Client::builder(&shared_sim().connect_string())
        .session_timeout(Duration::from_secs(4))
        .connect()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    c.add_listener(|_| panic!("a bug in a listener"));
    let first = tx.clone();
    c.add_listener(move |s| {
        let _ = first.send((1, s));
    });
    c.add_listener(move |s| {
        let _ = tx.send((2, s));
    });
    thread::sleep(Duration::from_millis(50));
    c.close();
    let mut got = Vec::new();
    while let Ok(e) = rx.recv_timeout(Duration::from_secs(2)) {
        got.push(e);
    }
    // Both working listeners saw Closed then Lost, each event to listener 1 before 2.
    let closed = StateEvent::Session(SessionState::Closed);
    let lost = StateEvent::App(AppState::Lost);
    assert_eq!(
        got,
        [(1, closed), (2, closed), (1, lost), (2, lost)],
        "{got:?}"
    );
}

#[test]
fn the_blocking_client_survives_failover_without_losing_a_request() {
    let mut ensemble = Ensemble::start(3).expect("start a 3-node ensemble");
    let proxies: Vec<Proxy> = ensemble
        .servers()
        .iter()
        .map(|s| Proxy::start(s.addr()).unwrap())
        .collect();
    let hosts: Vec<String> = proxies.iter().map(|p| p.connect_string()).collect();
    let c = Client::builder(&hosts.join(","))
        .session_timeout(Duration::from_secs(8))
        .shuffle_hosts(false)
        .connect_timeout(Duration::from_secs(30))
        .connect()
        .unwrap();
    let session = c.session_id();
    // Where the session is, as the async client tells it: the first host (no shuffling).
    assert_eq!(c.server().map(|h| h.to_string()), Some(hosts[0].clone()));
    let listed: Vec<String> = c.hosts().iter().map(|h| h.to_string()).collect();
    assert_eq!(listed, hosts);
    let timeout = c.session_timeout().expect("negotiated");
    assert!(timeout <= Duration::from_secs(8), "{timeout:?}");
    c.create("/mf", "x", &CreateOptions::persistent()).unwrap();
    let eph = c
        .create("/mf-eph-", "", &CreateOptions::ephemeral_sequential())
        .unwrap();
    let mut states = c.state_events();

    // Readers run throughout; the server the client is on (the first host) dies.
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            thread::spawn(move || {
                let (mut ok, mut lost) = (0, 0);
                for _ in 0..300 {
                    match c.get_data("/mf") {
                        Ok(_) => ok += 1,
                        Err(e) if e.is(ErrorCode::ConnectionLoss) => lost += 1,
                        Err(e) => panic!("neither a result nor ConnectionLoss: {e}"),
                    }
                }
                (ok, lost)
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(50));
    ensemble.server_mut(0).kill().unwrap();
    let mut total = 0;
    for r in readers {
        let (ok, lost) = r.join().unwrap();
        total += ok + lost;
    }
    assert_eq!(total, 1200, "every request completed");
    let seen: Vec<StateEvent> =
        std::iter::from_fn(|| states.next_timeout(Duration::ZERO).ok().flatten()).collect();
    assert!(
        seen.contains(&StateEvent::App(AppState::Suspended)),
        "{seen:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !c.state().is_connected() {
        assert!(Instant::now() < deadline, "no reconnect");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.session_id(), session);
    let now_on = c.server().map(|h| h.to_string()).expect("connected");
    assert_ne!(now_on, hosts[0], "moved off the dead server");
    assert!(c.exists(&eph).unwrap().is_some(), "ephemeral survives");
    c.close();
    assert_eq!(c.server(), None);
}

#[test]
fn a_black_holed_connection_expires_the_blocking_session() {
    let server = shared_server();
    let proxy = Proxy::start(server.addr()).unwrap();
    let c = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_millis(2000))
        .connect()
        .unwrap();
    let observer = connect(&server.connect_string());
    let eph = c
        .create("/mx-", "", &CreateOptions::ephemeral_sequential())
        .unwrap();
    let mut states = c.state_events();
    proxy.set_fault(Fault::BlackHole);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while !seen.contains(&StateEvent::App(AppState::Lost)) {
        let left = deadline.saturating_duration_since(Instant::now());
        seen.push(
            states
                .next_timeout(left)
                .unwrap()
                .expect("Lost within 20 s"),
        );
    }
    assert!(
        seen.contains(&StateEvent::Session(SessionState::Expired)),
        "{seen:?}"
    );
    while observer.exists(&eph).unwrap().is_some() {
        assert!(Instant::now() < deadline, "ephemeral outlived the session");
        thread::sleep(Duration::from_millis(100));
    }
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    c.close();
    observer.close();
}

#[test]
fn the_event_loop_example_serves_echoes_while_talking_to_zookeeper() {
    let report = event_loop::run(&shared_sim().connect_string(), 300).unwrap();
    assert_eq!(report.zk_ops, 600);
    // 299 writes each fire the watch the read before left; the last read's watch ends with
    // the session's final Closed event.
    assert_eq!(report.watch_events, 300);
    assert!(report.echoes > 0);
    assert!(
        report.slowest_echo < Duration::from_millis(500),
        "{:?}",
        report.slowest_echo
    );
}

/// Typed calls with tokens on a `Connection` in a loop of our own: every call routes back
/// once with its token and decodes to its operation's type; raw submits and watch events
/// pass through; calls after close fail at once and keep nothing.
#[test]
fn typed_calls_with_tokens_on_a_connection() {
    use mio::{Events, Poll, Token};
    use zk_mio::calls::{Calls, Pending, Routed};
    use zk_mio::{Acl, Config, Connection, Event, Request, Stat, op};

    #[derive(Debug)]
    enum Job {
        Create(Pending<String>),
        Read(Pending<(Bytes, Stat)>),
        Write(u32, Pending<Stat>),
        Missing(Pending<Option<Stat>>),
        Children(Pending<Vec<String>>),
    }

    let mut poll = Poll::new().unwrap();
    let config = Config::new(&shared_server().connect_string())
        .unwrap()
        .with_session_timeout(Duration::from_secs(4));
    let mut zk = Connection::new(config, poll.registry(), Token(7), Instant::now()).unwrap();
    let mut calls: Calls<Job> = Calls::new();
    let mut events = Events::with_capacity(64);
    let root = format!("/typed-calls-{}", std::process::id());
    let (mut created, mut read, mut writes, mut bad_version, mut missing) = (None, None, 0, 0, 0);
    let (mut children, mut raw, mut watched, mut closed) = (None, 0, 0, false);
    let deadline = Instant::now() + Duration::from_secs(20);

    while !closed {
        assert!(Instant::now() < deadline, "the loop did not finish");
        poll.poll(&mut events, zk.timeout(Instant::now())).unwrap();
        let now = Instant::now();
        for event in events.iter() {
            assert_eq!(event.token(), Token(7));
            zk.handle_event(event, now);
        }
        zk.handle_timeout(now);
        while let Some(event) = zk.poll_event() {
            match calls.route(event) {
                Routed::Event(Event::State {
                    state: SessionState::Connected,
                    ..
                }) if created.is_none() && calls.is_empty() => {
                    let options = CreateOptions::persistent();
                    calls
                        .start(
                            &mut zk,
                            now,
                            op::create(&root, Bytes::from("v0"), &options, &Acl::open_unsafe()),
                            Job::Create,
                        )
                        .unwrap();
                }
                Routed::Done(Job::Create(call), reply) => {
                    created = Some(call.finish(reply).unwrap());
                    calls
                        .start(&mut zk, now, op::get_data(&root, true), Job::Read)
                        .unwrap();
                    for n in 0..3 {
                        let version = if n == 2 { Some(99) } else { None };
                        calls
                            .start(
                                &mut zk,
                                now,
                                op::set_data(&root, Bytes::from("v1"), version),
                                |p| Job::Write(n, p),
                            )
                            .unwrap();
                    }
                    calls
                        .start(
                            &mut zk,
                            now,
                            op::exists(&format!("{root}/none"), false),
                            Job::Missing,
                        )
                        .unwrap();
                    zk.submit(
                        now,
                        Request::Sync(zk_proto::records::SyncRequest { path: root.clone() }),
                    )
                    .unwrap();
                    calls
                        .start(&mut zk, now, op::get_children("/"), Job::Children)
                        .unwrap();
                }
                Routed::Done(Job::Read(call), reply) => read = Some(call.finish(reply).unwrap()),
                Routed::Done(Job::Write(n, call), reply) => match call.finish(reply) {
                    Ok(stat) => {
                        assert!(n < 2 && stat.version >= 1, "{n} {stat:?}");
                        writes += 1;
                    }
                    Err(e) => {
                        assert_eq!((n, e.code()), (2, Some(ErrorCode::BadVersion)), "{e}");
                        bad_version += 1;
                    }
                },
                Routed::Done(Job::Missing(call), reply) => {
                    assert_eq!(call.finish(reply).unwrap(), None);
                    missing += 1;
                }
                Routed::Done(Job::Children(call), reply) => {
                    children = Some(call.finish(reply).unwrap());
                    // Everything routed back; clean up and close.
                    assert!(calls.is_empty(), "{calls:?}");
                    let delete = zk.start(now, op::delete(&root, None)).unwrap();
                    assert!(format!("{delete:?}").contains("Pending"));
                    zk.close(now);
                    let after = calls.start(&mut zk, now, op::get_data(&root, false), Job::Read);
                    assert!(after.is_err(), "a call after close must fail at once");
                    assert!(calls.is_empty());
                }
                Routed::Event(Event::Complete { result, .. }) => {
                    result.unwrap();
                    raw += 1;
                }
                Routed::Event(Event::Watch(w)) => {
                    assert_eq!(w.path, root);
                    watched += 1;
                }
                Routed::Event(Event::State {
                    state: SessionState::Closed,
                    ..
                }) => closed = true,
                Routed::Event(_) => {}
            }
        }
    }
    assert_eq!(created.as_deref(), Some(root.as_str()));
    assert_eq!(&read.unwrap().0[..], b"v0");
    assert_eq!((writes, bad_version, missing), (2, 1, 1));
    assert!(children.unwrap().contains(&root[1..].to_string()));
    // The sync passed through raw, and so did the delete started without Calls.
    assert_eq!(raw, 2);
    assert!(watched >= 1);
}

/// A hundred blocking sessions share the process's one IO thread and one callback thread,
/// each with its own session, and all of them close when their clients go.
#[test]
fn a_hundred_blocking_sessions_share_one_io_thread() {
    fn threads_named(name: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name)
            })
            .count()
    }
    let hosts = shared_sim().connect_string();
    let clients: Vec<Client> = (0..100).map(|_| connect(&hosts)).collect();
    assert_eq!(threads_named("zk-io"), 1);
    assert_eq!(threads_named("zk-callbacks"), 1);
    let ids: std::collections::HashSet<i64> = clients.iter().map(Client::session_id).collect();
    assert_eq!(ids.len(), 100, "a session each");
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for (i, c) in clients.iter().enumerate() {
            let tx = tx.clone();
            s.spawn(move || {
                let path = format!("/shared-io-{i}");
                c.create(&path, "x", &CreateOptions::ephemeral()).unwrap();
                let (data, _) = c.get_data(&path).unwrap();
                tx.send(data.len()).unwrap();
            });
        }
    });
    drop(tx);
    assert_eq!(rx.iter().sum::<usize>(), 100);
    drop(clients);
    // Dropping the last handle of each closed its session: the ephemerals are gone.
    let observer = connect(&hosts);
    let left: Vec<String> = observer
        .get_children("/")
        .unwrap()
        .into_iter()
        .filter(|c| c.starts_with("shared-io-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    observer.close();
}

/// A call whose caller reads its own reply, on a link that stops answering: the caller
/// runs the session's timers itself, so the call fails with ConnectionLoss as soon as the
/// session gives up on the link (within 35 % of the timeout), and the next call resumes
/// the session through the other host.
#[test]
fn a_call_on_a_black_holed_link_fails_fast_and_the_session_moves() {
    let server = shared_server();
    let a = Proxy::start(server.addr()).unwrap();
    let b = Proxy::start(server.addr()).unwrap();
    let c = Client::builder(&format!("{},{}", a.connect_string(), b.connect_string()))
        .session_timeout(Duration::from_secs(6))
        .shuffle_hosts(false)
        .connect()
        .unwrap();
    let session = c.session_id();
    let timeout = c.session_timeout().expect("negotiated");
    let mut states = c.state_events();
    c.create_all("/mio-bh", "x").unwrap();
    for _ in 0..20 {
        c.get_data("/mio-bh").unwrap();
    }
    a.set_fault(Fault::BlackHole);
    let started = Instant::now();
    let err = c.get_data("/mio-bh").expect_err("the link answers nothing");
    let took = started.elapsed();
    assert!(err.is(ErrorCode::ConnectionLoss), "{err}");
    assert!(
        took < timeout.mul_f64(0.35) + Duration::from_millis(300),
        "the call ended after {took:?} of a {timeout:?} session"
    );
    let (data, _) = c.retry(|| c.get_data("/mio-bh")).unwrap();
    assert_eq!(&data[..], b"x");
    let seen: Vec<StateEvent> =
        std::iter::from_fn(|| states.next_timeout(Duration::ZERO).ok().flatten()).collect();
    assert_eq!(c.session_id(), session, "the same session; {seen:?}");
    assert_eq!(
        c.server().map(|h| h.to_string()),
        Some(b.connect_string()),
        "moved to the other host"
    );
    a.set_fault(Fault::Pass);
    c.close();
}

/// Between calls a quiet session's socket is out of the IO thread's sight (so sequential
/// calls cost no readiness changes); a server's close must still be heard at once, not at
/// the next ping.
#[test]
fn a_resting_session_hears_the_server_close_at_once() {
    let server = shared_server();
    let proxy = Proxy::start(server.addr()).unwrap();
    let c = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(20))
        .connect()
        .unwrap();
    let mut states = c.state_events();
    c.create_all("/mio-rest", "x").unwrap();
    for _ in 0..20 {
        c.get_data("/mio-rest").unwrap();
    }
    // Let the IO thread's first timer pass (it watches the socket again at every turn),
    // then rest after a few more calls, with the next ping seconds away.
    thread::sleep(Duration::from_secs(2));
    for _ in 0..5 {
        c.get_data("/mio-rest").unwrap();
    }
    let before: Vec<StateEvent> =
        std::iter::from_fn(|| states.next_timeout(Duration::ZERO).ok().flatten()).collect();
    assert!(before.is_empty(), "{before:?}");
    // An orderly close (FIN), which only the readable side reports; a reset would also
    // raise an error event.
    let cut = Instant::now();
    proxy.drop_connections();
    let seen = states
        .next_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("a state change");
    let took = cut.elapsed();
    assert_ne!(
        seen,
        StateEvent::Session(SessionState::Connected),
        "{seen:?}"
    );
    // The next ping of a 20 s session is due only seconds later.
    assert!(took < Duration::from_secs(1), "heard after {took:?}");
    c.close();
}

/// Many threads on one session: one of them reads the socket at a time, the others park
/// until it hands them their replies or leaves; nobody waits for a slice or a timeout.
#[test]
fn threads_sharing_a_session_all_get_their_own_replies() {
    let hosts = shared_server().connect_string();
    let c = Client::builder(&hosts)
        .session_timeout(Duration::from_secs(10))
        .call_timeout(Duration::from_secs(30))
        .connect()
        .unwrap();
    for i in 0..8 {
        c.create_all(&format!("/mio-share/{i}"), format!("v{i}"))
            .unwrap();
    }
    let started = Instant::now();
    thread::scope(|s| {
        for i in 0..8 {
            let c = c.clone();
            s.spawn(move || {
                let path = format!("/mio-share/{i}");
                for _ in 0..300 {
                    let (data, _) = c.get_data(&path).unwrap();
                    assert_eq!(&data[..], format!("v{i}").as_bytes());
                }
            });
        }
    });
    // 2,400 loopback round trips take well under a second; a lost hand-off would stall a
    // thread for the 200 ms a reader sleeps at most between looks, many times over.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(c.metrics().unwrap().in_flight, 0);
    c.close();
}
