//! The async lock handle under the faults a caller meets: futures dropped at every await
//! point, replies lost to a cut connection, and deadlines during an outage. What is left on
//! the real server is what counts, not what the client believes.

use std::time::{Duration, Instant};

use zk_harness::{Fault, Proxy};
use zk_tests::{client, settle, shared_server};
use zk_tokio::Client;
use zk_tokio::recipes::{
    DoubleBarrier, Election, Lock, LockGuard, LockState, LockingQueue, Party, Semaphore, TreeCache,
};

/// A client whose every request takes 300 ms each way through a proxy.
async fn slow_link() -> (Proxy, Client) {
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let c = client(&proxy.connect_string()).await;
    proxy.set_fault(Fault::Delay(Duration::from_millis(300)));
    (proxy, c)
}

/// A holder of the lock on `dir`, and a waiter's client whose every request takes
/// 300 ms each way through a proxy.
async fn contended(dir: &str) -> (Client, LockGuard, Proxy, Client) {
    let holder = client(&shared_server().connect_string()).await;
    let held = Lock::new(&holder, dir).acquire().await.unwrap();
    let (proxy, waiter) = slow_link().await;
    (holder, held, proxy, waiter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquisitions_dropped_at_any_await_point_leave_no_node() {
    let dir = "/locks/dropped";
    // The drops below land while the waiter's create is on its way, while the create's
    // reply is, while it lists, and while it waits behind the holder.
    let (holder, held, proxy, waiter) = contended(dir).await;
    let lock = Lock::new(&waiter, dir);
    let drops_ms = [50u64, 100, 250, 400, 650, 900, 1400];
    for ms in drops_ms {
        let attempt = tokio::time::timeout(Duration::from_millis(ms), lock.acquire()).await;
        assert!(attempt.is_err(), "the lock is held: nothing to acquire");
    }
    // The holder's node is all that stays, once the delayed deletes are through.
    let left = settle(&holder, dir, 1, Duration::from_secs(15)).await;
    assert_eq!(format!("{dir}/{}", left[0]), held.node());

    // And the lock passes on as usual.
    held.release().await.unwrap();
    proxy.set_fault(Fault::Pass);
    let next = tokio::time::timeout(Duration::from_secs(5), lock.acquire())
        .await
        .expect("a free lock is taken at once")
        .unwrap();
    assert!(next.is_held());
    next.release().await.unwrap();
    settle(&holder, dir, 0, Duration::from_secs(5)).await;
    waiter.close().await;
    holder.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_reply_was_lost_is_adopted_not_repeated() {
    let dir = "/locks/lost-reply";
    let (holder, held, proxy, waiter) = contended(dir).await;
    let lock = Lock::new(&waiter, dir);
    let acquiring = tokio::spawn(async move { lock.acquire().await });
    // The create reaches the server after 300 ms; its reply would be back after 600.
    settle(&holder, dir, 2, Duration::from_secs(5)).await;
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    // Reconnected on the same session, the waiter finds its node by its id: still two.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let children = settle(&holder, dir, 2, Duration::from_secs(5)).await;
    assert!(!acquiring.is_finished());

    held.release().await.unwrap();
    let guard = tokio::time::timeout(Duration::from_secs(10), acquiring)
        .await
        .expect("the waiter takes the lock once the holder leaves")
        .unwrap()
        .unwrap();
    assert!(
        children.iter().any(|c| guard.node().ends_with(c.as_str())),
        "the waiter holds the node it created before the cut: {} of {children:?}",
        guard.node()
    );
    settle(&holder, dir, 1, Duration::from_secs(5)).await;

    // A release whose delete reply is lost too: the delete is sent again until confirmed.
    proxy.set_fault(Fault::Delay(Duration::from_millis(300)));
    let releasing = tokio::spawn(guard.release());
    tokio::time::sleep(Duration::from_millis(450)).await;
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    tokio::time::timeout(Duration::from_secs(10), releasing)
        .await
        .expect("the release is confirmed after the reconnect")
        .unwrap()
        .unwrap();
    assert!(holder.get_children(dir).await.unwrap().is_empty());
    waiter.close().await;
    holder.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_holds_while_no_server_answers_and_a_holder_hears_suspension() {
    let dir = "/locks/outage";
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let c = zk_tokio::Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(6))
        .connect()
        .await
        .unwrap();
    let other = client(&shared_server().connect_string()).await;
    let held = Lock::new(&other, dir).acquire().await.unwrap();

    proxy.set_fault(Fault::BlackHole);
    proxy.cut();
    let started = Instant::now();
    let got = Lock::new(&c, dir)
        .acquire_timeout(Duration::from_secs(1))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(got.is_none());
    assert!(
        took < Duration::from_millis(1500),
        "acquire_timeout(1 s) returned after {took:?} with no server reachable"
    );
    proxy.set_fault(Fault::Pass);
    held.release().await.unwrap();
    // Whatever the timed-out waiter may have created goes once it is back.
    settle(&other, dir, 0, Duration::from_secs(15)).await;

    // A holder whose link goes silent hears Suspended long before its session could end.
    let guard = Lock::new(&c, dir).acquire().await.unwrap();
    assert_eq!(guard.state(), LockState::Held);
    proxy.set_fault(Fault::BlackHole);
    let started = Instant::now();
    let state = tokio::time::timeout(Duration::from_secs(6), guard.changed(LockState::Held))
        .await
        .expect("suspension is reported")
        .unwrap();
    assert_eq!(state, LockState::Suspended);
    assert!(!guard.is_held());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "suspended after {took:?}");
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    let state = tokio::time::timeout(Duration::from_secs(10), guard.changed(LockState::Suspended))
        .await
        .expect("the session comes back")
        .unwrap();
    assert_eq!(state, LockState::Held, "same session, node still there");
    guard.release().await.unwrap();
    settle(&other, dir, 0, Duration::from_secs(5)).await;
    c.close().await;
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_leader_stops_its_work_before_its_session_can_expire() {
    let path = "/elections/suspended";
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let leader_client = zk_tokio::Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(6))
        .connect()
        .await
        .unwrap();
    let other = client(&shared_server().connect_string()).await;
    let election = Election::new(&leader_client, path, "a");
    let rival = Election::new(&other, path, "b");

    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    // The leader's work runs until leadership leaves Held, as Curator stops a leader on
    // SUSPENDED.
    let running = tokio::spawn(async move {
        let leadership = election.lead().await?;
        let work = async move {
            let _ = started_tx.send(());
            std::future::pending::<()>().await
        };
        tokio::select! {
            () = work => Ok(Some(())),
            _ = leadership.changed(LockState::Held) => Ok::<_, zk_tokio::Error>(None),
        }
    });
    started_rx.await.expect("the work starts once leading");
    assert_eq!(
        rival.contenders().await.unwrap(),
        vec![bytes::Bytes::from("a")]
    );
    let waiting = tokio::spawn(async move { rival.lead().await });

    proxy.set_fault(Fault::BlackHole);
    let silent = Instant::now();
    let ran = tokio::time::timeout(Duration::from_secs(6), running)
        .await
        .expect("run returns once suspended")
        .unwrap();
    let stopped_after = silent.elapsed();
    assert!(matches!(ran, Ok(None)), "the work was stopped: {ran:?}");
    assert!(
        stopped_after < Duration::from_secs(3),
        "stopped {stopped_after:?} into the silence; the session lasts 6 s"
    );
    // The session expires on the server; only then does the rival lead.
    let next = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the rival leads once the old session is gone")
        .unwrap()
        .unwrap();
    assert!(next.is_leader());
    eprintln!(
        "suspended leader stopped {stopped_after:?} into the silence; the rival led {:?} in",
        silent.elapsed()
    );
    next.relinquish().await.unwrap();
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    leader_client.close().await;
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_acquisitions_dropped_at_any_await_point_leave_no_node() {
    let path = "/semaphores/dropped";
    let holder = client(&shared_server().connect_string()).await;
    let held = Semaphore::new(&holder, path, 1).acquire().await.unwrap();
    let (proxy, waiter) = slow_link().await;
    let sem = Semaphore::new(&waiter, path, 1);
    for ms in [50u64, 250, 650, 900, 1400, 2000] {
        let attempt = tokio::time::timeout(Duration::from_millis(ms), sem.acquire()).await;
        assert!(attempt.is_err(), "the only lease is held");
    }
    // The holder's lease is all that stays: no turn node, no second lease.
    let turn = format!("{path}-__lock__");
    settle(&holder, &turn, 0, Duration::from_secs(15)).await;
    let leases = settle(&holder, path, 1, Duration::from_secs(5)).await;
    assert!(held.node().ends_with(&leases[0]));
    held.release().await.unwrap();
    proxy.set_fault(Fault::Pass);
    let lease = tokio::time::timeout(Duration::from_secs(5), sem.acquire())
        .await
        .expect("a free lease is taken at once")
        .unwrap();
    lease.release().await.unwrap();
    settle(&holder, path, 0, Duration::from_secs(5)).await;
    waiter.close().await;
    holder.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_whose_reply_was_lost_leaves_one_member_and_leaving_is_confirmed() {
    let path = "/parties/lost-reply";
    let observer = client(&shared_server().connect_string()).await;
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let member = client(&proxy.connect_string()).await;
    let party = Party::new(&member, path, "m");
    // Make the party node first, so the create that matters is the member's own.
    observer.create_all(path, "").await.unwrap();
    proxy.set_fault(Fault::Delay(Duration::from_millis(300)));
    let joining = tokio::spawn(async move { party.join().await });
    settle(&observer, path, 1, Duration::from_secs(5)).await;
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    let membership = tokio::time::timeout(Duration::from_secs(10), joining)
        .await
        .expect("the join completes after the reconnect")
        .unwrap()
        .unwrap();
    assert_eq!(
        settle(&observer, path, 1, Duration::from_secs(2))
            .await
            .len(),
        1
    );
    assert_eq!(
        Party::new(&observer, path, "o").members().await.unwrap(),
        ["m"],
        "one member, not two"
    );
    proxy.set_fault(Fault::Delay(Duration::from_millis(300)));
    let leaving = tokio::spawn(membership.release());
    tokio::time::sleep(Duration::from_millis(450)).await;
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    tokio::time::timeout(Duration::from_secs(10), leaving)
        .await
        .expect("leaving is confirmed after the reconnect")
        .unwrap()
        .unwrap();
    settle(&observer, path, 0, Duration::from_secs(2)).await;
    member.close().await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_barrier_is_not_entered_by_a_session_expiring() {
    let path = "/barriers/expiry";
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let a = zk_tokio::Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let b = client(&shared_server().connect_string()).await;
    let mut first = DoubleBarrier::new(&a, path, 2);
    let entering = tokio::spawn(async move { (first.enter(None).await, first) });
    settle(&b, path, 1, Duration::from_secs(5)).await;
    // Silence until the server expires the first participant's session, then let it back.
    proxy.set_fault(Fault::BlackHole);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !b.get_children(path).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the session never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    // Back on a new session it is a participant again, and still waiting.
    settle(&b, path, 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !entering.is_finished(),
        "enter returned although only one participant is in"
    );
    let mut second = DoubleBarrier::new(&b, path, 2);
    assert!(second.enter(Some(Duration::from_secs(10))).await.unwrap());
    let (entered, mut first) = tokio::time::timeout(Duration::from_secs(10), entering)
        .await
        .expect("the first enters with the second")
        .unwrap();
    assert!(entered.unwrap());
    let (l1, l2) = tokio::join!(
        first.leave(Some(Duration::from_secs(10))),
        second.leave(Some(Duration::from_secs(10)))
    );
    assert!(l1.unwrap() && l2.unwrap());
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_barrier_enters_dropped_at_any_await_point_leave_no_node() {
    let path = "/barriers/dropped";
    let observer = client(&shared_server().connect_string()).await;
    let (proxy, c) = slow_link().await;
    // Two of three never arrive: every enter waits, and is dropped on the way (while
    // its create travels, while the reply does, while it counts, while it waits).
    for ms in [50u64, 100, 250, 400, 650, 900, 1400, 2000] {
        let mut barrier = DoubleBarrier::new(&c, path, 3);
        let attempt = tokio::time::timeout(Duration::from_millis(ms), barrier.enter(None)).await;
        assert!(attempt.is_err(), "one of three cannot enter");
    }
    // A timed-out enter and a participant dropped while inside go too.
    let mut late = DoubleBarrier::new(&c, path, 3);
    assert!(!late.enter(Some(Duration::from_millis(800))).await.unwrap());
    proxy.set_fault(Fault::Pass);
    let mut inside = DoubleBarrier::new(&c, path, 1);
    assert!(inside.enter(None).await.unwrap());
    drop(inside);
    // Once the delayed deletes are through, no participant is left.
    settle(&observer, path, 0, Duration::from_secs(15)).await;
    c.close().await;
    observer.close().await;
}

/// A locking queue at `path` holding `n` items `i0`, `i1`, ... (filled through an
/// observer's client), and a worker's client whose every request takes 300 ms each way.
async fn queue_behind_a_slow_link(path: &str, n: usize) -> (Client, LockingQueue, Proxy, Client) {
    let observer = client(&shared_server().connect_string()).await;
    let fill = LockingQueue::new(&observer, path);
    for i in 0..n {
        fill.put(format!("i{i}")).await.unwrap();
    }
    let (proxy, c) = slow_link().await;
    (observer, fill, proxy, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locking_queue_gets_dropped_at_any_await_point_leave_no_claim() {
    let path = "/queues/dropped";
    let (observer, fill, proxy, c) = queue_behind_a_slow_link(path, 3).await;
    let queue = LockingQueue::new(&c, path);
    // Dropped while listing, while claiming, while the claim's reply travels, while
    // reading the item.
    for ms in [50u64, 350, 650, 900, 1250, 1600] {
        let attempt = tokio::time::timeout(
            Duration::from_millis(ms),
            queue.get(Duration::from_secs(30)),
        )
        .await;
        if let Ok(item) = attempt {
            // Got it in time: dropping the item puts it back as well.
            drop(item.unwrap());
        }
    }
    // Claimed and dropped unconsumed: back in the queue too.
    proxy.set_fault(Fault::Pass);
    let item = queue.get(Duration::from_secs(5)).await.unwrap().unwrap();
    drop(item);
    settle(
        &observer,
        &format!("{path}/taken"),
        0,
        Duration::from_secs(15),
    )
    .await;
    // Every item is still there, and the first is taken at once by another worker.
    assert_eq!(fill.len().await.unwrap(), 3);
    let first = tokio::time::timeout(Duration::from_secs(5), fill.get(Duration::from_secs(5)))
        .await
        .expect("no item is stuck")
        .unwrap()
        .unwrap();
    assert_eq!(&first.data[..], b"i0");
    first.consume().await.unwrap();
    assert_eq!(fill.len().await.unwrap(), 2);
    c.close().await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_reply_was_lost_is_adopted_and_consumed() {
    let path = "/queues/lost-reply";
    let (observer, fill, proxy, c) = queue_behind_a_slow_link(path, 2).await;
    let queue = LockingQueue::new(&c, path);
    let getting = tokio::spawn(async move { queue.get(Duration::from_secs(30)).await });
    // The claim reached the server; its reply is on its way back: cut.
    settle(
        &observer,
        &format!("{path}/taken"),
        1,
        Duration::from_secs(10),
    )
    .await;
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    let item = tokio::time::timeout(Duration::from_secs(10), getting)
        .await
        .expect("the claim is adopted")
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&item.data[..], b"i0", "our own claim, not the next item");
    assert_eq!(
        observer
            .get_children(&format!("{path}/taken"))
            .await
            .unwrap()
            .len(),
        1
    );
    // A consume whose reply was lost is found to have landed.
    proxy.set_fault(Fault::Delay(Duration::from_millis(300)));
    let consuming = tokio::spawn(item.consume());
    settle(
        &observer,
        &format!("{path}/taken"),
        0,
        Duration::from_secs(10),
    )
    .await;
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    tokio::time::timeout(Duration::from_secs(10), consuming)
        .await
        .expect("the consume is confirmed")
        .unwrap()
        .unwrap();
    assert_eq!(fill.len().await.unwrap(), 1);
    c.close().await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_attempts_dropped_at_any_await_point_leave_no_lock_node() {
    let path = "/leases/dropped";
    let observer = client(&shared_server().connect_string()).await;
    let (proxy, c) = slow_link().await;
    let lease = zk_tokio::recipes::Lease::new(&c, path, "dropped");
    // Dropped while the lock's node is created, while it is held and the lease read,
    // and while the lease is written.
    for ms in [100u64, 400, 700, 1000, 1300, 1900, 2500] {
        let _ = tokio::time::timeout(
            Duration::from_millis(ms),
            lease.obtain(Duration::from_secs(60)),
        )
        .await;
    }
    proxy.set_fault(Fault::Pass);
    // No lock node is left: only the lease record, if a write landed.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let children = observer.get_children(path).await.unwrap_or_default();
        if children.iter().all(|c| c == "lease_holder") {
            break;
        }
        assert!(Instant::now() < deadline, "{path} still holds {children:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And another identifier is answered at once, its own way.
    let other = zk_tokio::recipes::Lease::new(&observer, path, "other");
    tokio::time::timeout(Duration::from_secs(5), other.obtain(Duration::from_secs(1)))
        .await
        .expect("the lease's lock is free")
        .unwrap();
    c.close().await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn party_joins_dropped_at_any_await_point_leave_no_member() {
    let path = "/parties/dropped";
    let observer = client(&shared_server().connect_string()).await;
    let (proxy, c) = slow_link().await;
    let party = Party::new(&c, path, "dropped");
    // Dropped while the directory or the member's node is created, and while the
    // create's reply travels back.
    for ms in [50u64, 250, 450, 700, 950, 1300] {
        let _ = tokio::time::timeout(Duration::from_millis(ms), party.join()).await;
    }
    proxy.set_fault(Fault::Pass);
    settle(&observer, path, 0, Duration::from_secs(15)).await;
    // A member dropped while in leaves too.
    let member = party.join().await.unwrap();
    settle(&observer, path, 1, Duration::from_secs(5)).await;
    drop(member);
    settle(&observer, path, 0, Duration::from_secs(5)).await;
    c.close().await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_additions_dropped_mid_way_count_at_most_once() {
    let path = "/counters/dropped";
    let observer = client(&shared_server().connect_string()).await;
    let (proxy, c) = slow_link().await;
    let counter = zk_tokio::recipes::Counter::new(&c, path);
    // Dropped while reading, while writing, and while the write's reply travels back.
    let drops = [100u64, 500, 700, 900, 1300, 1500];
    let mut finished = 0;
    for ms in drops {
        if let Ok(done) = tokio::time::timeout(Duration::from_millis(ms), counter.add(1)).await {
            done.unwrap();
            finished += 1;
        }
    }
    proxy.set_fault(Fault::Pass);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Each dropped addition counted at most once (a write already sent may land), each
    // finished one exactly once; the next one counts from there.
    let value = zk_tokio::recipes::Counter::new(&observer, path)
        .get()
        .await
        .unwrap();
    assert!(
        value >= finished && value <= drops.len() as i64,
        "{value} after {finished} finished of {} additions",
        drops.len()
    );
    assert_eq!(counter.add(1).await.unwrap(), value + 1);
    c.close().await;
    observer.close().await;
}

/// Waits until `path` exists (or not), as `want` says.
async fn until_exists(c: &Client, path: &str, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.exists(path).await.unwrap().is_some() != want {
        assert!(
            Instant::now() < deadline,
            "{path} never {}",
            if want { "appeared" } else { "went" }
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_calls_dropped_or_with_a_lost_reply() {
    let gate_path = "/gates/faults";
    let observer = client(&shared_server().connect_string()).await;
    let (proxy, c) = slow_link().await;
    let gate = zk_tokio::recipes::Barrier::new(&c, gate_path);
    // A raise whose reply is lost is sent again: NodeExists means it landed.
    let raising = tokio::spawn({
        let gate = gate.clone();
        async move { gate.create().await }
    });
    until_exists(&observer, gate_path, true).await;
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    raising.await.unwrap().unwrap();
    // Waits dropped at any point owe nothing; a later wait still sees the barrier.
    proxy.set_fault(Fault::Delay(Duration::from_millis(300)));
    for ms in [50u64, 350, 700] {
        let _ = tokio::time::timeout(Duration::from_millis(ms), gate.wait(None)).await;
    }
    assert!(!gate.wait(Some(Duration::from_millis(800))).await.unwrap());
    // A removal whose reply is lost is confirmed, not failed.
    let removing = tokio::spawn({
        let gate = gate.clone();
        async move { gate.remove().await }
    });
    until_exists(&observer, gate_path, false).await;
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    removing.await.unwrap().unwrap();
    assert!(gate.wait(Some(Duration::from_secs(5))).await.unwrap());
    c.close().await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_calls_dropped_or_with_a_lost_reply() {
    let path = "/queues/plain-faults";
    let observer = client(&shared_server().connect_string()).await;
    let fill = zk_tokio::recipes::Queue::new(&observer, path);
    for i in 0..4 {
        fill.put(format!("i{i}")).await.unwrap();
    }
    let (proxy, c) = slow_link().await;
    let queue = zk_tokio::recipes::Queue::new(&c, path);
    // Gets dropped mid-way: each takes at most the one item it was deleting.
    let drops = [100u64, 700, 1300];
    for ms in drops {
        let _ = tokio::time::timeout(Duration::from_millis(ms), queue.get()).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let left = fill.len().await.unwrap();
    assert!(
        left + drops.len() >= 4,
        "{left} of 4 left after {} drops",
        drops.len()
    );
    // A put whose reply is lost is reported, not repeated: exactly one more item.
    let putting = tokio::spawn({
        let queue = queue.clone();
        async move { queue.put("late").await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while fill.len().await.unwrap() == left {
        assert!(Instant::now() < deadline, "the put never landed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    let put = putting.await.unwrap();
    assert!(
        matches!(put, Err(zk_tokio::Error::ConnectionLoss)),
        "a put whose reply was lost is in doubt: {put:?}"
    );
    assert_eq!(fill.len().await.unwrap(), left + 1, "put once, not twice");
    c.close().await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_write_reply_was_lost_is_read_back() {
    let path = "/leases/lost-reply";
    let observer = client(&shared_server().connect_string()).await;
    let (proxy, c) = slow_link().await;
    let obtaining = tokio::spawn({
        let c = c.clone();
        async move {
            zk_tokio::recipes::Lease::new(&c, path, "writer")
                .obtain(Duration::from_secs(60))
                .await
        }
    });
    until_exists(&observer, &format!("{path}/lease_holder"), true).await;
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    assert!(
        obtaining.await.unwrap().unwrap(),
        "our own write, read back"
    );
    let other = zk_tokio::recipes::Lease::new(&observer, path, "other");
    assert_eq!(other.holder().await.unwrap().as_deref(), Some("writer"));
    assert!(!other.obtain(Duration::from_secs(60)).await.unwrap());
    c.close().await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_cache_starts_dropped_or_cut_mid_load() {
    let root = "/trees/faults";
    let observer = client(&shared_server().connect_string()).await;
    for i in 0..5 {
        observer
            .create_all(&format!("{root}/n{i}/leaf"), "x")
            .await
            .unwrap();
    }
    let (proxy, c) = slow_link().await;
    // Starts dropped while the watch is set and while the tree is read owe nothing.
    for ms in [100u64, 700, 1500] {
        let _ = tokio::time::timeout(Duration::from_millis(ms), TreeCache::start(&c, root)).await;
    }
    // A load cut mid-way is read again on the new connection.
    let starting = tokio::spawn({
        let c = c.clone();
        async move { TreeCache::start(&c, root).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.set_fault(Fault::Pass);
    proxy.cut();
    let cache = tokio::time::timeout(Duration::from_secs(10), starting)
        .await
        .expect("the load finishes after the cut")
        .unwrap()
        .unwrap();
    assert_eq!(cache.len(), 11, "the root, 5 nodes and their leaves");
    c.close().await;
    observer.close().await;
}

/// Each connection policy through the same blip: a 3 s silence on a 6 s session, after
/// which the same session comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_connection_policy_rides_a_blip_as_documented() {
    use zk_tokio::recipes::ConnectionPolicy;
    let other = client(&shared_server().connect_string()).await;
    for (i, policy) in [
        ConnectionPolicy::SuspendedIsLost,
        ConnectionPolicy::SuspendedEnds,
        ConnectionPolicy::LostOnly,
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/elections/policy-{i}");
        let proxy = Proxy::start(shared_server().addr()).unwrap();
        let c = zk_tokio::Client::builder(&proxy.connect_string())
            .session_timeout(Duration::from_secs(6))
            .connect()
            .await
            .unwrap();
        let session = c.session_id();
        let leader = Election::new(&c, &path, "a")
            .with_connection_policy(policy)
            .lead()
            .await
            .unwrap();
        assert!(leader.is_leader());
        proxy.set_fault(Fault::BlackHole);
        let during = leader
            .changed_timeout(LockState::Held, Duration::from_millis(3000))
            .await
            .unwrap();
        proxy.set_fault(Fault::Pass);
        proxy.cut();
        c.wait_for(|s| s.is_connected()).await.unwrap();
        assert_eq!(c.session_id(), session, "the same session came back");
        match policy {
            ConnectionPolicy::SuspendedIsLost => {
                assert_eq!(during, Some(LockState::Suspended));
                assert_eq!(
                    leader.changed(LockState::Suspended).await.unwrap(),
                    LockState::Held
                );
                assert!(leader.is_leader());
                assert_eq!(
                    settle(&other, &path, 1, Duration::from_secs(5)).await.len(),
                    1
                );
            }
            ConnectionPolicy::SuspendedEnds => {
                assert_eq!(during, Some(LockState::Gone));
                tokio::time::timeout(Duration::from_secs(5), leader.lost())
                    .await
                    .unwrap()
                    .unwrap();
                // The node is deleted once the connection is back, though the session lived.
                settle(&other, &path, 0, Duration::from_secs(10)).await;
                assert!(matches!(
                    leader.set_data(&path, "x", None).await,
                    Err(zk_tokio::Error::NotHeld { .. })
                ));
            }
            ConnectionPolicy::LostOnly => {
                assert_eq!(during, None, "no change while suspended");
                assert!(leader.is_leader());
                assert_eq!(
                    settle(&other, &path, 1, Duration::from_secs(5)).await.len(),
                    1
                );
            }
        }
        leader.relinquish().await.unwrap();
        settle(&other, &path, 0, Duration::from_secs(10)).await;
        c.close().await;
    }
    other.close().await;
}
