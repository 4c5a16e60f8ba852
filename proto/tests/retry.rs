//! Retry policy arithmetic.

use std::time::{Duration, Instant};

use zk_proto::ErrorCode;
use zk_proto::retry::RetryPolicy;
use zk_proto::session::Error;

#[test]
fn delays_grow_with_jitter_up_to_the_cap() {
    let policy = RetryPolicy::default()
        .with_max_tries(None)
        .with_max_delay(Duration::from_secs(1));
    let now = Instant::now();
    let mut r = policy.start(now, 9);
    let mut base: f64 = 100.0;
    for _ in 0..20 {
        let d = r
            .next_delay(now, &Error::ConnectionLoss)
            .unwrap()
            .as_secs_f64()
            * 1000.0;
        let b = base.min(1000.0);
        assert!(
            d >= b * 0.6 - 0.001 && d <= (b * 1.4).min(1000.0) + 0.001,
            "{d} vs {b}"
        );
        base *= 2.0;
    }
}

#[test]
fn only_connection_problems_are_retried_and_the_deadline_holds() {
    let now = Instant::now();
    let policy = RetryPolicy::default().with_deadline(Some(Duration::from_millis(250)));
    let mut r = policy.start(now, 1);
    assert_eq!(r.next_delay(now, &Error::Server(ErrorCode::NoNode)), None);
    assert_eq!(r.next_delay(now, &Error::SessionExpired), None);
    assert!(
        r.next_delay(now, &Error::Server(ErrorCode::OperationTimeout))
            .is_some()
    );
    assert_eq!(
        r.next_delay(now + Duration::from_millis(240), &Error::ConnectionLoss),
        None
    );
    let expiring = RetryPolicy::default().with_retry_expired(true);
    assert!(
        expiring
            .start(now, 1)
            .next_delay(now, &Error::SessionExpired)
            .is_some()
    );
    assert_eq!(
        RetryPolicy::none()
            .start(now, 1)
            .next_delay(now, &Error::ConnectionLoss),
        None
    );
}
