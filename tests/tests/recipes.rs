//! The recipes on zk-sim's model server: they test our recipes, not the server, so they
//! need no Java (the failover tests in `recipes_failover.rs` use real servers).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use zk_harness::{Fault, Proxy};
use zk_tests::{client, shared_sim};
use zk_tokio::recipes::*;
use zk_tokio::{Client, CreateOptions};

fn hosts() -> String {
    shared_sim().connect_string()
}

async fn next<T>(
    f: impl std::future::Future<Output = zk_tokio::Result<Node<T>>>,
) -> Option<(T, zk_tokio::Stat)> {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("an item within 10 s")
        .expect("no error")
        .into_present()
}

#[tokio::test]
async fn data_watch_follows_a_node_through_absence_changes_and_recreation() {
    let c = client(&hosts()).await;
    let w = client(&hosts()).await;
    let mut watch = DataWatch::new(&c, "/dw-node");
    assert_eq!(next(watch.next()).await, None, "missing at first");
    w.create("/dw-node", "1", &CreateOptions::persistent())
        .await
        .unwrap();
    assert_eq!(&next(watch.next()).await.unwrap().0[..], b"1");
    w.set_data("/dw-node", "2", None).await.unwrap();
    assert_eq!(&next(watch.next()).await.unwrap().0[..], b"2");
    w.delete("/dw-node", None).await.unwrap();
    assert_eq!(next(watch.next()).await, None);
    w.create("/dw-node", "3", &CreateOptions::persistent())
        .await
        .unwrap();
    assert_eq!(&next(watch.next()).await.unwrap().0[..], b"3");
    drop(watch);

    let names = |v: Option<(Vec<String>, zk_tokio::Stat)>| v.map(|(n, _)| n);
    let mut kids = ChildrenWatch::new(&c, "/cw-node");
    assert_eq!(names(next(kids.next()).await), None);
    w.create("/cw-node", "", &CreateOptions::persistent())
        .await
        .unwrap();
    assert_eq!(names(next(kids.next()).await), Some(vec![]));
    w.create("/cw-node/a", "", &CreateOptions::persistent())
        .await
        .unwrap();
    assert_eq!(names(next(kids.next()).await), Some(vec!["a".to_string()]));
    w.create("/cw-node/b", "", &CreateOptions::persistent())
        .await
        .unwrap();
    let (list, before) = next(kids.next()).await.unwrap();
    assert_eq!(list, vec!["a".to_string(), "b".into()]);
    // A child that leaves and comes back shows as a change: the list is the same, the
    // parent's child version is not.
    w.delete("/cw-node/b", None).await.unwrap();
    w.create("/cw-node/b", "", &CreateOptions::persistent())
        .await
        .unwrap();
    loop {
        let (list, stat) = next(kids.next()).await.unwrap();
        if list == vec!["a".to_string(), "b".into()] {
            assert!(stat.cversion >= before.cversion + 2, "{stat:?}");
            break;
        }
    }
    drop(kids);

    // A bad path is an error, not a silent end.
    let mut bad = DataWatch::new(&c, "no/leading/slash");
    let first = tokio::time::timeout(Duration::from_secs(10), bad.next())
        .await
        .expect("an answer within 10 s");
    assert!(
        matches!(first, Err(zk_tokio::Error::InvalidPath(_))),
        "{first:?}"
    );
    assert!(
        matches!(bad.next().await, Err(zk_tokio::Error::Closed)),
        "the watch ended"
    );
    c.close().await;
    w.close().await;
}

#[tokio::test]
async fn data_watch_re_arms_across_a_reconnect() {
    let proxy = Proxy::start(shared_sim().addr()).unwrap();
    let c = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(6))
        .connect()
        .await
        .unwrap();
    let w = client(&hosts()).await;
    w.create("/dw-re", "a", &CreateOptions::persistent())
        .await
        .unwrap();
    let mut watch = DataWatch::new(&c, "/dw-re");
    assert_eq!(&next(watch.next()).await.unwrap().0[..], b"a");
    // The connection drops and the node changes while the client is away.
    proxy.set_fault(Fault::Refuse);
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    w.set_data("/dw-re", "b", None).await.unwrap();
    proxy.set_fault(Fault::Pass);
    assert_eq!(&next(watch.next()).await.unwrap().0[..], b"b");
    c.close().await;
    w.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_admits_one_holder_at_a_time_in_arrival_order() {
    let clients = [
        client(&hosts()).await,
        client(&hosts()).await,
        client(&hosts()).await,
    ];
    let inside = Arc::new(AtomicUsize::new(0));
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let holder = Lock::new(&clients[0], "/locks/order")
        .acquire()
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let lock = Lock::new(&clients[i % 3], "/locks/order").with_identifier(format!("w{i}"));
        let (inside, order) = (inside.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let guard = lock.acquire().await.unwrap();
            assert_eq!(
                inside.fetch_add(1, Ordering::SeqCst),
                0,
                "two holders at once"
            );
            order.lock().unwrap().push(i);
            tokio::time::sleep(Duration::from_millis(20)).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            guard.release().await.unwrap();
        }));
        // Queue up one after another so arrival order is known.
        let lock = Lock::new(&clients[0], "/locks/order");
        while lock.contenders().await.unwrap().len() < i + 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let waiting = Lock::new(&clients[0], "/locks/order")
        .contenders()
        .await
        .unwrap();
    assert_eq!(waiting.len(), 7);
    assert_eq!(&waiting[1][..], b"w0");
    holder.release().await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        *order.lock().unwrap(),
        [0, 1, 2, 3, 4, 5],
        "waiters woke in order"
    );

    // A waiter that times out leaves no node behind.
    let held = Lock::new(&clients[0], "/locks/t").acquire().await.unwrap();
    let lock = Lock::new(&clients[1], "/locks/t");
    assert!(
        lock.acquire_timeout(Duration::from_millis(200))
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(lock.contenders().await.unwrap().len(), 1);
    assert!(held.is_held());
    held.release().await.unwrap();
    for c in clients {
        c.close().await;
    }
}

#[tokio::test]
async fn read_write_locks_share_reads_and_exclude_writes() {
    let a = client(&hosts()).await;
    let b = client(&hosts()).await;
    let rw_a = ReadWriteLock::new(&a, "/locks/rw");
    let rw_b = ReadWriteLock::new(&b, "/locks/rw");
    let r1 = rw_a.read_lock().acquire().await.unwrap();
    let r2 = rw_b
        .read_lock()
        .acquire_timeout(Duration::from_secs(2))
        .await
        .unwrap()
        .expect("readers share");
    assert!(
        rw_b.write_lock()
            .acquire_timeout(Duration::from_millis(200))
            .await
            .unwrap()
            .is_none(),
        "writer waits"
    );
    let writer = tokio::spawn(async move { rw_b.write_lock().acquire().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A reader arriving after a waiting writer waits for it.
    assert!(
        rw_a.read_lock()
            .acquire_timeout(Duration::from_millis(200))
            .await
            .unwrap()
            .is_none()
    );
    r1.release().await.unwrap();
    r2.release().await.unwrap();
    let w = tokio::time::timeout(Duration::from_secs(5), writer)
        .await
        .unwrap()
        .unwrap();
    w.release().await.unwrap();
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_semaphore_hands_out_at_most_its_leases() {
    let a = client(&hosts()).await;
    let sem = Semaphore::new(&a, "/sem", 2);
    let l1 = sem.acquire().await.unwrap();
    let l2 = sem.acquire().await.unwrap();
    assert!(
        sem.acquire_timeout(Duration::from_millis(200))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(sem.holders().await.unwrap().len(), 2);
    let third = {
        let sem = sem.clone();
        tokio::spawn(async move { sem.acquire().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    l1.release().await.unwrap();
    let l3 = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sem.holders().await.unwrap().len(), 2);
    l2.release().await.unwrap();
    l3.release().await.unwrap();
    a.close().await;
}

#[tokio::test]
async fn election_hands_leadership_on_when_the_leader_steps_down() {
    let a = client(&hosts()).await;
    let b = client(&hosts()).await;
    let ea = Election::new(&a, "/election", "a");
    let eb = Election::new(&b, "/election", "b");
    let lead_a = ea.lead().await.unwrap();
    assert!(lead_a.is_leader());
    let b_task = tokio::spawn(async move {
        let leadership = eb.lead().await.unwrap();
        let out = leadership.is_leader().then_some("b led");
        leadership.relinquish().await.unwrap();
        out
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let names: Vec<Bytes> = ea.contenders().await.unwrap();
    assert_eq!(names, [Bytes::from("a"), Bytes::from("b")]);
    assert_eq!(ea.leader().await.unwrap(), Some(Bytes::from("a")));
    lead_a.relinquish().await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(5), b_task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out, Some("b led"));
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn barriers_counters_queues_parties_and_leases() {
    let a = client(&hosts()).await;
    let b = client(&hosts()).await;

    // Barrier.
    let barrier = Barrier::new(&a, "/barrier");
    barrier.create().await.unwrap();
    assert!(
        !barrier
            .wait(Some(Duration::from_millis(100)))
            .await
            .unwrap()
    );
    let waiter = {
        let barrier = Barrier::new(&b, "/barrier");
        tokio::spawn(async move { barrier.wait(None).await.unwrap() })
    };
    barrier.remove().await.unwrap();
    assert!(waiter.await.unwrap());

    // Double barrier for two.
    let mut d1 = DoubleBarrier::new(&a, "/double", 2);
    let mut d2 = DoubleBarrier::new(&b, "/double", 2);
    assert!(
        !d1.enter(Some(Duration::from_millis(100))).await.unwrap(),
        "alone: times out"
    );
    let t =
        tokio::spawn(async move { d1.enter(None).await.unwrap() && d1.leave(None).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(d2.enter(None).await.unwrap());
    assert!(d2.leave(None).await.unwrap());
    assert!(
        tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .unwrap()
            .unwrap()
    );

    // Counter: concurrent adds lose nothing.
    let counter = Counter::new(&a, "/counters/c");
    let mut adds = Vec::new();
    for i in 0..20 {
        let c = Counter::new(if i % 2 == 0 { &a } else { &b }, "/counters/c");
        adds.push(tokio::spawn(async move { c.add(1).await.unwrap() }));
    }
    for t in adds {
        t.await.unwrap();
    }
    assert_eq!(counter.get().await.unwrap(), 20);
    assert_eq!(counter.add(-5).await.unwrap(), 15);

    // Queue: FIFO, each item once.
    let q = Queue::new(&a, "/queue");
    for i in 0..5 {
        q.put(format!("{i}")).await.unwrap();
    }
    assert_eq!(q.len().await.unwrap(), 5);
    let q2 = Queue::new(&b, "/queue");
    let mut got = Vec::new();
    while let Some(item) = q2.get().await.unwrap() {
        got.push(String::from_utf8(item.to_vec()).unwrap());
    }
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
    assert!(
        q.get_wait(Duration::from_millis(100))
            .await
            .unwrap()
            .is_none()
    );

    // Locking queue: a taken item is invisible until released; consumed items are gone.
    let lq = LockingQueue::new(&a, "/lqueue");
    lq.put("job1").await.unwrap();
    lq.put("job2").await.unwrap();
    let item = lq.get(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(&item.data[..], b"job1");
    let other = LockingQueue::new(&b, "/lqueue");
    let item2 = other.get(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(&item2.data[..], b"job2", "job1 is taken");
    item.release().await.unwrap();
    let again = other.get(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(&again.data[..], b"job1");
    again.consume().await.unwrap();
    item2.consume().await.unwrap();
    assert_eq!(lq.len().await.unwrap(), 0);
    assert!(lq.get(Duration::from_millis(100)).await.unwrap().is_none());

    // Party.
    let pa = Party::new(&a, "/party", "alice");
    let pb = Party::new(&b, "/party", "bob");
    let alice = pa.join().await.unwrap();
    let bob = pb.join().await.unwrap();
    let mut members = pa.members().await.unwrap();
    members.sort();
    assert_eq!(members, ["alice", "bob"]);
    bob.release().await.unwrap();
    assert_eq!(pa.len().await.unwrap(), 1);
    drop(alice);
    let shallow = Party::new(&a, "/shallow-party", "carol").shallow();
    let carol = shallow.join().await.unwrap();
    assert_eq!(shallow.members().await.unwrap(), ["carol"]);
    carol.release().await.unwrap();
    assert!(shallow.is_empty().await.unwrap());

    // Lease (Kazoo's format: ends to the second).
    let la = Lease::new(&a, "/leases/l", "a");
    let lb = Lease::new(&b, "/leases/l", "b");
    assert!(la.obtain(Duration::from_secs(5)).await.unwrap());
    assert!(!lb.obtain(Duration::from_secs(1)).await.unwrap());
    assert!(la.obtain(Duration::from_secs(1)).await.unwrap(), "renewal");
    assert_eq!(lb.holder().await.unwrap().as_deref(), Some("a"));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(
        lb.obtain(Duration::from_secs(1)).await.unwrap(),
        "expired lease"
    );
    // A multi-lease of two: a and b take one each, c none.
    let m = |c: &zk_tokio::Client, who: &str| Lease::multi(c, "/leases/m", 2, who);
    assert_eq!(
        m(&a, "a")
            .obtain_path(Duration::from_secs(30))
            .await
            .unwrap()
            .as_deref(),
        Some("/leases/m/0")
    );
    assert_eq!(
        m(&b, "b")
            .obtain_path(Duration::from_secs(30))
            .await
            .unwrap()
            .as_deref(),
        Some("/leases/m/1")
    );
    assert!(!m(&b, "c").obtain(Duration::from_secs(30)).await.unwrap());
    assert_eq!(
        m(&a, "x").holders().await.unwrap(),
        [Some("a".to_string()), Some("b".to_string())]
    );
    let lock_nodes = a.get_children("/leases/m/0").await.unwrap();
    assert_eq!(lock_nodes, ["lease_holder"], "every lock node is gone");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_cache_reader_that_falls_behind_hears_lagged_and_memory_stays_bounded() {
    let c = client(&hosts()).await;
    let w = client(&hosts()).await;
    w.create_all("/tc-lag", "").await.unwrap();
    let mut cache = TreeCache::start(&c, "/tc-lag").await.unwrap();
    let n = EVENT_BACKLOG + 100;
    let creates: Vec<_> = (0..n)
        .map(|i| {
            let w = w.clone();
            tokio::spawn(async move {
                w.create(&format!("/tc-lag/n{i}"), "", &CreateOptions::persistent())
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in creates {
        t.await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while cache.len() < n + 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "mirror at {}",
            cache.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nobody read the events meanwhile: more than the backlog were dropped, not kept.
    assert_eq!(
        next_event(&mut cache).await,
        TreeEvent::Lagged,
        "the reader hears it fell behind"
    );
    assert_eq!(
        cache.snapshot().len(),
        n + 1,
        "the mirror itself lost nothing"
    );
    w.create("/tc-lag/after", "", &CreateOptions::persistent())
        .await
        .unwrap();
    loop {
        if next_event(&mut cache).await == TreeEvent::Added("/tc-lag/after".into()) {
            break;
        }
    }
    c.close().await;
    w.close().await;
}

async fn next_event(cache: &mut TreeCache) -> TreeEvent {
    tokio::time::timeout(Duration::from_secs(10), cache.next_event())
        .await
        .expect("an event within 10 s")
        .expect("the cache goes on")
}
