//! The blocking client's lock (`zk_mio::recipes::Lock`, the same machine as the async
//! one, run on the IO thread) on a real server: exclusion judged on the server, a lost
//! create reply adopted, cleanup after a dropped guard and a timed-out acquisition, and a
//! deadline that holds while no server answers.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use zk_client::CreateOptions;
use zk_harness::{Fault, Proxy};
use zk_mio::blocking::Client;
use zk_mio::recipes::{
    Barrier, ChildrenWatch, Counter, CounterEncoding, DataWatch, DoubleBarrier, Election, Lease,
    Lock, LockState, LockingQueue, Party, Queue, ReadWriteLock, Semaphore, TreeCache, TreeEvent,
};
use zk_proto::ErrorCode;
use zk_tests::shared_server;

fn connect(hosts: &str) -> Client {
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .connect()
        .expect("connect a blocking client")
}

/// Waits until `dir` holds exactly `n` children, and returns them.
fn settle(c: &Client, dir: &str, n: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let children = c.get_children(dir).unwrap_or_default();
        if children.len() == n {
            return children;
        }
        assert!(
            Instant::now() < deadline,
            "{dir} still holds {children:?} after {within:?}, {n} expected"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn threads_of_three_clients_take_turns_judged_on_the_server() {
    let dir = "/blocking-locks/turns";
    let marker = "/blocking-locks/inside";
    let hosts = shared_server().connect_string();
    let clients: Vec<Client> = (0..3).map(|_| connect(&hosts)).collect();
    let turns = 15;
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let c = clients[i % 3].clone();
            thread::spawn(move || {
                let lock = Lock::new(&c, dir);
                for _ in 0..turns {
                    let guard = lock.acquire().expect("the lock");
                    assert!(guard.is_held());
                    // Two holders at once in server time fail here, on the server.
                    match c.create(marker, "x", &CreateOptions::ephemeral()) {
                        Ok(_) => {}
                        Err(e) if e.server_code() == Some(ErrorCode::NodeExists) => {
                            panic!("two holders at once")
                        }
                        Err(e) => panic!("creating the marker: {e}"),
                    }
                    c.delete(marker, None).expect("deleting the marker");
                    guard.release().expect("released");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a contender thread");
    }
    settle(&clients[0], dir, 0, Duration::from_secs(5));
    for c in clients {
        c.close();
    }
}

#[test]
fn dropped_guards_lost_replies_and_outages_leave_nothing_behind() {
    let dir = "/blocking-locks/faults";
    let other = connect(&shared_server().connect_string());
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let c = connect(&proxy.connect_string());
    let lock = Lock::new(&c, dir);

    // A dropped guard: the node goes in the background.
    let guard = lock.acquire().unwrap();
    assert_eq!(guard.state(), LockState::Held);
    drop(guard);
    settle(&other, dir, 0, Duration::from_secs(5));

    // A create whose reply is lost while another client holds the lock: adopted by its id
    // after the reconnect, not repeated.
    let held = Lock::new(&other, dir).acquire().unwrap();
    proxy.set_fault(Fault::Delay(Duration::from_millis(300)));
    let waiting = {
        let lock = lock.clone();
        thread::spawn(move || lock.acquire())
    };
    settle(&other, dir, 2, Duration::from_secs(5));
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    thread::sleep(Duration::from_millis(800));
    settle(&other, dir, 2, Duration::from_secs(5));
    held.release().unwrap();
    let guard = waiting.join().unwrap().expect("the waiter takes the lock");
    assert!(guard.is_held());
    settle(&other, dir, 1, Duration::from_secs(5));
    guard.release().unwrap();
    settle(&other, dir, 0, Duration::from_secs(5));

    // A deadline during an outage: kept, and the waiter's node (if any) goes once back.
    let held = Lock::new(&other, dir).acquire().unwrap();
    proxy.set_fault(Fault::BlackHole);
    proxy.cut();
    let started = Instant::now();
    let got = lock.acquire_timeout(Duration::from_secs(1)).unwrap();
    let took = started.elapsed();
    assert!(got.is_none());
    assert!(
        took < Duration::from_millis(1500),
        "returned after {took:?}"
    );
    proxy.set_fault(Fault::Pass);
    held.release().unwrap();
    settle(&other, dir, 0, Duration::from_secs(15));

    // A holder whose link goes silent hears Suspended, then Held again on the same session.
    let guard = lock.acquire().unwrap();
    proxy.set_fault(Fault::BlackHole);
    let state = guard
        .changed_timeout(LockState::Held, Duration::from_secs(4))
        .unwrap();
    assert_eq!(state, Some(LockState::Suspended));
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    let state = guard
        .changed_timeout(LockState::Suspended, Duration::from_secs(10))
        .unwrap();
    assert_eq!(state, Some(LockState::Held));
    guard.release().unwrap();
    settle(&other, dir, 0, Duration::from_secs(5));

    let shared = Arc::new(c);
    shared.close();
    other.close();
}

#[test]
fn readers_share_and_a_writer_waits_for_them() {
    let dir = "/blocking-locks/rw";
    let hosts = shared_server().connect_string();
    let (a, b) = (connect(&hosts), connect(&hosts));
    let (rw_a, rw_b) = (ReadWriteLock::new(&a, dir), ReadWriteLock::new(&b, dir));
    let r1 = rw_a.read_lock().acquire().unwrap();
    let r2 = rw_b
        .read_lock()
        .acquire_timeout(Duration::from_secs(2))
        .unwrap()
        .expect("readers share");
    let waited = rw_b
        .write_lock()
        .acquire_timeout(Duration::from_millis(200))
        .unwrap();
    assert!(waited.is_none(), "the writer waits for the readers");
    r1.release().unwrap();
    r2.release().unwrap();
    let w = rw_b
        .write_lock()
        .acquire_timeout(Duration::from_secs(2))
        .unwrap()
        .expect("the writer once the readers left");
    assert!(w.is_held());
    w.release().unwrap();
    settle(&a, dir, 0, Duration::from_secs(5));
    a.close();
    b.close();
}

#[test]
fn a_blocking_leader_sees_suspension_and_the_rival_leads_after_expiry() {
    let path = "/blocking-elections/suspended";
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let a = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(6))
        .connect()
        .unwrap();
    let b = connect(&shared_server().connect_string());
    let rival = Election::new(&b, path, "b");
    let (steps_tx, steps_rx) = std::sync::mpsc::channel();
    let leading = {
        let election = Election::new(&a, path, "a");
        thread::spawn(move || {
            let leadership = election.lead()?;
            let mut steps = 0u32;
            while leadership.is_leader() {
                steps += 1;
                let _ = steps_tx.send(steps);
                thread::sleep(Duration::from_millis(20));
            }
            Ok::<_, zk_mio::Error>(Some(steps))
        })
    };
    steps_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the leader works");
    assert_eq!(rival.contenders().unwrap(), vec![bytes::Bytes::from("a")]);
    assert_eq!(rival.leader().unwrap(), Some(bytes::Bytes::from("a")));
    let waiting = thread::spawn(move || rival.lead());

    proxy.set_fault(Fault::BlackHole);
    let silent = Instant::now();
    let steps = leading.join().unwrap().unwrap().expect("it led");
    let stopped_after = silent.elapsed();
    assert!(steps > 0);
    assert!(
        stopped_after < Duration::from_secs(3),
        "stopped {stopped_after:?} into the silence; the session lasts 6 s"
    );
    let next = waiting.join().unwrap().expect("the rival leads");
    let led_after = silent.elapsed();
    assert!(next.is_leader());
    assert!(
        led_after > stopped_after,
        "the rival led {led_after:?} in, before the old leader stopped ({stopped_after:?})"
    );
    next.relinquish().unwrap();
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    a.close();
    b.close();
}

#[test]
fn a_blocking_semaphore_hands_out_its_leases_and_no_more() {
    let path = "/blocking-semaphores/two";
    let hosts = shared_server().connect_string();
    let c = connect(&hosts);
    let sem = Semaphore::new(&c, path, 2);
    let first = sem.acquire().unwrap();
    let second = sem.acquire().unwrap();
    assert!(
        sem.acquire_timeout(Duration::from_millis(300))
            .unwrap()
            .is_none(),
        "a third waits"
    );
    let third = {
        let sem = sem.clone();
        thread::spawn(move || sem.acquire())
    };
    thread::sleep(Duration::from_millis(100));
    drop(first); // released in the background
    let third = third
        .join()
        .unwrap()
        .expect("the third once a lease is back");
    assert!(third.is_held());
    second.release().unwrap();
    third.release().unwrap();
    // Kazoo's layout: max stored at the path, leases under it, the turn lock beside it.
    let (max, _) = c.get_data(path).unwrap();
    assert_eq!(&max[..], b"2");
    settle(&c, path, 0, Duration::from_secs(5));
    settle(&c, &format!("{path}-__lock__"), 0, Duration::from_secs(5));
    let other = Semaphore::new(&c, path, 3);
    assert!(
        other.acquire_timeout(Duration::from_secs(2)).is_err(),
        "a semaphore storing another maximum is refused, as Kazoo refuses it"
    );
    c.close();
}

#[test]
fn blocking_counters_lose_no_addition_in_either_encoding() {
    let hosts = shared_server().connect_string();
    let clients: Vec<Client> = (0..3).map(|_| connect(&hosts)).collect();
    for (path, encoding) in [
        ("/blocking-counters/text", CounterEncoding::Text),
        ("/blocking-counters/curator", CounterEncoding::Curator),
    ] {
        let threads: Vec<_> = clients
            .iter()
            .map(|c| {
                let counter = Counter::new(c, path).with_encoding(encoding);
                thread::spawn(move || {
                    for _ in 0..50 {
                        counter.add(1).expect("an addition");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let counter = Counter::new(&clients[0], path).with_encoding(encoding);
        assert_eq!(counter.get().unwrap(), 150, "{path}");
        let (raw, _) = clients[0].get_data(path).unwrap();
        match encoding {
            CounterEncoding::Text => assert_eq!(&raw[..], b"150"),
            CounterEncoding::Curator => assert_eq!(&raw[..], &150i32.to_be_bytes()),
        }
        assert_eq!(counter.add(-50).unwrap(), 100);
    }
    for c in clients {
        c.close();
    }
}

#[test]
fn blocking_watches_call_back_with_every_value_and_report_errors() {
    let hosts = shared_server().connect_string();
    let (c, w) = (connect(&hosts), connect(&hosts));
    let path = "/blocking-watches/config";
    let _ = w.delete(path, None);
    let (tx, rx) = std::sync::mpsc::channel();
    let watch = DataWatch::with_callback(&c, path, move |v| {
        let _ = tx.send(v.map(|v| v.into_present().map(|(data, _)| data)));
    });
    let next = || rx.recv_timeout(Duration::from_secs(10)).expect("a call");
    assert_eq!(next().unwrap(), None, "first the value now: absent");
    w.create_all(path, "1").unwrap();
    assert_eq!(next().unwrap().as_deref(), Some(&b"1"[..]));
    w.set_data(path, "2", None).unwrap();
    assert_eq!(next().unwrap().as_deref(), Some(&b"2"[..]));
    w.delete(path, None).unwrap();
    assert_eq!(next().unwrap(), None);
    drop(watch);

    let (tx, rx) = std::sync::mpsc::channel();
    let _kids = ChildrenWatch::with_callback(&c, "/blocking-watches", move |v| {
        let _ = tx.send(v.map(|v| v.into_present().map(|(names, _)| names)));
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!(first, Some(vec![]));
    w.create("/blocking-watches/a", "", &CreateOptions::ephemeral())
        .unwrap();
    let then = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!(then, Some(vec!["a".to_string()]));

    let (tx, rx) = std::sync::mpsc::channel();
    let _bad = DataWatch::with_callback(&c, "no/leading/slash", move |v| {
        let _ = tx.send(v.is_err());
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        "a bad path is an error"
    );
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "and the last call"
    );
    c.close();
    w.close();
}

#[test]
fn a_blocking_party_lists_its_members_by_identifier() {
    let hosts = shared_server().connect_string();
    let (a, b) = (connect(&hosts), connect(&hosts));
    let path = "/blocking-parties/p";
    let alice = Party::new(&a, path, "alice").join().unwrap();
    let bob = Party::new(&b, path, "bob").join().unwrap();
    let mut members = Party::new(&a, path, "x").members().unwrap();
    members.sort();
    assert_eq!(members, ["alice", "bob"]);
    bob.release().unwrap();
    drop(alice);
    settle(&a, path, 0, Duration::from_secs(5));
    a.close();
    b.close();
}

#[test]
fn blocking_barriers_hold_until_lowered_and_until_all_arrive() {
    let hosts = shared_server().connect_string();
    let (a, b) = (connect(&hosts), connect(&hosts));
    let gate = Barrier::new(&a, "/blocking/barrier/gate");
    gate.create().unwrap();
    assert!(!gate.wait(Some(Duration::from_millis(200))).unwrap());
    let waiter = {
        let b = b.clone();
        thread::spawn(move || {
            let cleared = Barrier::new(&b, "/blocking/barrier/gate")
                .wait(None)
                .unwrap();
            cleared && b.exists("/blocking/barrier/gate").unwrap().is_none()
        })
    };
    thread::sleep(Duration::from_millis(200));
    assert!(!waiter.is_finished(), "the gate is still up");
    gate.remove().unwrap();
    assert!(
        waiter.join().unwrap(),
        "the wait ends once the gate is gone"
    );

    // Alone, a participant of two times out and leaves nothing; with a second one, both
    // get in and out.
    let path = "/blocking/barrier/double";
    let mut first = DoubleBarrier::new(&a, path, 2);
    assert!(!first.enter(Some(Duration::from_millis(300))).unwrap());
    settle(&a, path, 0, Duration::from_secs(5));
    let other = {
        let b = b.clone();
        thread::spawn(move || {
            let mut second = DoubleBarrier::new(&b, path, 2);
            second.enter(Some(Duration::from_secs(10))).unwrap()
                && second.leave(Some(Duration::from_secs(10))).unwrap()
        })
    };
    assert!(first.enter(Some(Duration::from_secs(10))).unwrap());
    assert!(first.is_inside());
    assert!(first.leave(Some(Duration::from_secs(10))).unwrap());
    assert!(other.join().unwrap());
    settle(&a, path, 0, Duration::from_secs(5));
    a.close();
    b.close();
}

#[test]
fn blocking_queues_order_by_priority_and_put_back_dropped_items() {
    let hosts = shared_server().connect_string();
    let (a, b) = (connect(&hosts), connect(&hosts));
    let q = Queue::new(&a, "/blocking/queue/plain");
    for (v, p) in [("a", 200u16), ("b", 5), ("c", 100), ("d", 5)] {
        q.put_with_priority(v, p).unwrap();
    }
    assert_eq!(q.len().unwrap(), 4);
    let other = Queue::new(&b, "/blocking/queue/plain");
    let mut order = Vec::new();
    while let Some(item) = other.get().unwrap() {
        order.push(String::from_utf8(item.to_vec()).unwrap());
    }
    assert_eq!(order, ["b", "d", "c", "a"]);
    assert_eq!(q.get_wait(Duration::from_millis(200)).unwrap(), None);

    let lq = LockingQueue::new(&a, "/blocking/queue/locking");
    lq.put("job1").unwrap();
    lq.put("job2").unwrap();
    let first = lq.get(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(&first.data[..], b"job1");
    let worker = LockingQueue::new(&b, "/blocking/queue/locking");
    let second = worker.get(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(&second.data[..], b"job2", "job1 is claimed");
    // Dropped unconsumed: back in the queue for the other worker.
    drop(first);
    let again = worker.get(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(&again.data[..], b"job1");
    again.consume().unwrap();
    second.release().unwrap();
    let last = lq.get(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(&last.data[..], b"job2");
    last.consume().unwrap();
    assert_eq!(lq.len().unwrap(), 0);
    assert!(lq.get(Duration::from_millis(200)).unwrap().is_none());
    settle(
        &a,
        "/blocking/queue/locking/taken",
        0,
        Duration::from_secs(5),
    );
    a.close();
    b.close();
}

#[test]
fn blocking_leases_refuse_others_and_renew_their_own() {
    let hosts = shared_server().connect_string();
    let (a, b) = (connect(&hosts), connect(&hosts));
    let minute = Duration::from_secs(60);
    assert!(
        Lease::new(&a, "/blocking/lease", "a")
            .obtain(minute)
            .unwrap()
    );
    assert!(
        !Lease::new(&b, "/blocking/lease", "b")
            .obtain(minute)
            .unwrap()
    );
    assert!(
        Lease::new(&b, "/blocking/lease", "a")
            .obtain(minute)
            .unwrap(),
        "renewal"
    );
    let m = |c: &Client, who: &str| Lease::multi(c, "/blocking/leases", 2, who);
    assert_eq!(
        m(&a, "a").obtain_path(minute).unwrap().as_deref(),
        Some("/blocking/leases/0")
    );
    assert!(m(&b, "b").obtain(minute).unwrap());
    assert!(!m(&b, "c").obtain(minute).unwrap());
    assert_eq!(
        m(&a, "x").holders().unwrap(),
        [Some("a".to_string()), Some("b".to_string())]
    );
    settle(&a, "/blocking/lease", 1, Duration::from_secs(5));
    a.close();
    b.close();
}

/// Every node under `root` (itself included) read from the server: path to (version, data).
fn server_tree(c: &Client, root: &str) -> std::collections::BTreeMap<String, (i32, Vec<u8>)> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![root.to_string()];
    while let Some(path) = todo.pop() {
        let (data, stat) = c.get_data(&path).unwrap();
        out.insert(path.clone(), (stat.version, data.to_vec()));
        for child in c.get_children(&path).unwrap() {
            todo.push(format!("{path}/{child}"));
        }
    }
    out
}

#[test]
fn a_blocking_tree_cache_follows_changes_and_catches_up_after_an_outage() {
    let root = "/blocking/tree";
    let writer = connect(&shared_server().connect_string());
    writer.create_all(&format!("{root}/a/b"), "ab").unwrap();
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let c = connect(&proxy.connect_string());
    let mut cache = TreeCache::start(&c, root).unwrap();
    assert_eq!(
        cache.get(&format!("{root}/a/b")).unwrap().data.as_ref(),
        b"ab"
    );
    assert_eq!(cache.children(root), ["a"]);

    writer
        .create(&format!("{root}/c"), "c", &CreateOptions::persistent())
        .unwrap();
    writer
        .set_data(&format!("{root}/a/b"), "ab2", None)
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = cache
            .next_event_timeout(Duration::from_secs(5))
            .unwrap()
            .expect("a change");
        seen.push(event);
    }
    assert!(
        seen.contains(&TreeEvent::Added(format!("{root}/c"))),
        "{seen:?}"
    );
    assert!(
        seen.contains(&TreeEvent::Updated(format!("{root}/a/b"))),
        "{seen:?}"
    );

    // Changes made while the cache's link is silent are caught up after it.
    proxy.set_fault(Fault::BlackHole);
    thread::sleep(Duration::from_millis(300));
    writer.delete(&format!("{root}/c"), None).unwrap();
    writer
        .create(&format!("{root}/d"), "d", &CreateOptions::persistent())
        .unwrap();
    writer.set_data(&format!("{root}/a"), "a2", None).unwrap();
    thread::sleep(Duration::from_millis(2500));
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ours: std::collections::BTreeMap<String, (i32, Vec<u8>)> = cache
            .snapshot()
            .into_iter()
            .map(|(p, n)| (p, (n.stat.version, n.data.to_vec())))
            .collect();
        if ours == server_tree(&writer, root) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the mirror never caught up: {ours:?}"
        );
        let _ = cache.next_event_timeout(Duration::from_millis(50));
    }
    drop(cache);
    c.close();
    writer.close();
}
