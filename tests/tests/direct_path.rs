//! The blocking client's direct path (a caller writes its request and reads its reply
//! itself) against a real server: what it leaves behind is not left waiting for the IO
//! thread. A ping's answer is read when it arrives, so the round trip the session measures
//! (which sets how soon a dead server is noticed) stays the network's; and a call the
//! write itself decides (a frame too large) is answered at once.

use std::time::{Duration, Instant};

use zk_mio::blocking::Client;
use zk_tests::shared_server;

#[test]
fn a_ping_answer_is_read_when_it_arrives_between_calls() {
    // Pings every ~200 ms.
    let c = Client::builder(&shared_server().connect_string())
        .session_timeout(Duration::from_secs(2))
        .connect()
        .unwrap();
    let mut worst = Duration::ZERO;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        // Calls back to back, so that pings fall due while a caller reads the socket,
        // then a pause in which nobody calls.
        for _ in 0..200 {
            c.exists("/").unwrap();
        }
        std::thread::sleep(Duration::from_millis(400));
        let rtt = c.metrics().unwrap().last_rtt.unwrap_or_default();
        worst = worst.max(rtt);
    }
    // Loopback answers in well under a millisecond; a ping answer left unread until the
    // next turn reads as a round trip of a ping interval or more.
    assert!(
        worst < Duration::from_millis(60),
        "the session measured a round trip of {worst:?} on loopback"
    );
    c.close();
}

#[test]
fn a_call_the_write_refuses_is_answered_at_once() {
    let c = Client::builder(&shared_server().connect_string())
        .session_timeout(Duration::from_secs(20))
        .connect()
        .unwrap();
    c.exists("/").unwrap();
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let r = c.set_data("/", vec![0u8; 2 << 20], None);
        slowest = slowest.max(started.elapsed());
        assert!(matches!(r, Err(zk_mio::Error::TooLarge { .. })), "{r:?}");
    }
    assert!(
        slowest < Duration::from_millis(50),
        "a refused write took {slowest:?} to be answered"
    );
    c.close();
}
