//! Events reach a recipe machine in the order the socket delivered them, on the async
//! client's multi-threaded runtime, against a real server.
//!
//! The scenario: an uncontended lock's `getChildren` reply (the listing sent with its
//! create) arrives, and the connection ends right after it (the proxy forwards the reply, then closes; new connections are
//! refused for a while). The machine must hear the reply (held) and then the disconnection
//! (suspended), so the guard says `Suspended` throughout the outage. A driver that lets the
//! `Suspended` overtake the reply has the machine ignore it (it was still acquiring) and
//! then take the reply as `Held`: a guard that says held while the client is disconnected.

use std::time::{Duration, Instant};

use zk_harness::{Fault, Proxy};
use zk_tests::{client, shared_server};
use zk_tokio::AppState;
use zk_tokio::recipes::{Lock, LockState};

/// getChildren's opcode, the lock's listing.
const GET_CHILDREN: i32 = 8;
const TRIALS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_never_says_held_while_its_client_is_suspended() {
    let dir = "/locks/order";
    // The directory is there first: the listing that goes out with the create is then the
    // one that decides, and the connection ends right behind its reply.
    let setup = client(&shared_server().connect_string()).await;
    setup.create_all(dir, "").await.unwrap();
    setup.close().await;
    let proxy = Proxy::start(shared_server().addr()).unwrap();
    let mut raced = 0;
    for trial in 0..TRIALS {
        proxy.set_fault(Fault::Pass);
        let c = client(&proxy.connect_string()).await;
        // Keep the client out once its connection ends, so the outage lasts.
        proxy.set_fault(Fault::Refuse);
        proxy.close_after_reply(GET_CHILDREN);
        let guard = Lock::new(&c, dir)
            .acquire()
            .await
            .unwrap_or_else(|e| panic!("trial {trial}: {e}"));
        assert!(proxy.tripped(), "trial {trial}: the listing went by");

        // The client hears the end of its connection...
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.app_state() != AppState::Suspended {
            assert!(Instant::now() < deadline, "trial {trial}: never suspended");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // ...and from then on, for as long as it is out, the guard must not say held. The
        // guard's state moves on the same task right after the client's, so a short wait
        // covers the step between them; a guard that heard the events swapped stays held.
        let settle = Instant::now() + Duration::from_millis(300);
        while guard.state() == LockState::Held && Instant::now() < settle {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let state = guard.state();
        if c.app_state() == AppState::Suspended {
            assert_ne!(
                state,
                LockState::Held,
                "trial {trial}: the guard says held while its client is suspended"
            );
            raced += 1;
        }

        // The client comes back within its session, the lock with it, and lets go.
        proxy.set_fault(Fault::Pass);
        let back = Instant::now() + Duration::from_secs(10);
        while guard.state() != LockState::Held {
            assert!(
                Instant::now() < back,
                "trial {trial}: the lock never came back"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        guard.release().await.unwrap();
        c.close().await;
    }
    assert!(
        raced >= TRIALS / 2,
        "only {raced} of {TRIALS} trials checked the guard during an outage"
    );
}
