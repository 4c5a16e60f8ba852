//! Retry policies, shaped like Kazoo's `KazooRetry`, as pure arithmetic: they say how long to
//! wait before the next attempt, or that it is time to give up. Sleeping is the caller's job.

use std::time::{Duration, Instant};

use crate::session::Error;
use crate::session::rng::Rng;

/// When and how often to retry an operation that failed with a connection problem.
///
/// The n-th retry waits `delay × backoff^(n-1)`, capped at `max_delay`, scaled by a random
/// factor in `[1 - max_jitter, 1 + max_jitter]` (and capped again), as Kazoo does. Retries
/// stop after `max_tries` retries or when the next attempt would start after `deadline`.
///
/// ```
/// use std::time::{Duration, Instant};
/// # use zk_proto::retry::RetryPolicy;
/// # use zk_proto::session::Error;
///
/// let policy = RetryPolicy::default().with_max_tries(Some(3)).with_max_jitter(0.0);
/// let now = Instant::now();
/// let mut retry = policy.start(now, 42);
/// assert_eq!(retry.next_delay(now, &Error::ConnectionLoss), Some(Duration::from_millis(100)));
/// assert_eq!(retry.next_delay(now, &Error::ConnectionLoss), Some(Duration::from_millis(200)));
/// assert_eq!(retry.next_delay(now, &Error::ConnectionLoss), Some(Duration::from_millis(400)));
/// assert_eq!(retry.next_delay(now, &Error::ConnectionLoss), None); // three retries used
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_tries: Option<u32>,
    delay: Duration,
    backoff: f64,
    max_jitter: f64,
    max_delay: Duration,
    deadline: Option<Duration>,
    retry_expired: bool,
}

impl Default for RetryPolicy {
    /// Kazoo's defaults for connection retries, with unlimited tries replaced by a bounded
    /// number: 10 retries, 100 ms first delay, doubling, ±40 % jitter, at most 60 s apart.
    fn default() -> Self {
        RetryPolicy {
            max_tries: Some(10),
            delay: Duration::from_millis(100),
            backoff: 2.0,
            max_jitter: 0.4,
            max_delay: Duration::from_secs(60),
            deadline: None,
            retry_expired: false,
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy::default().with_max_tries(Some(0))
    }

    /// How many retries after the first attempt; `None` retries until the deadline (or
    /// forever without one).
    pub fn with_max_tries(mut self, tries: Option<u32>) -> Self {
        self.max_tries = tries;
        self
    }

    /// The first delay.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The factor each delay grows by (at least 1).
    pub fn with_backoff(mut self, backoff: f64) -> Self {
        self.backoff = if backoff.is_finite() {
            backoff.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// The random spread of each delay, as a fraction from 0 to 1.
    pub fn with_max_jitter(mut self, jitter: f64) -> Self {
        self.max_jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The longest delay.
    pub fn with_max_delay(mut self, max: Duration) -> Self {
        self.max_delay = max;
        self
    }

    /// Give up once this much time has passed since the first attempt.
    pub fn with_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Also retry when the session expired (Kazoo's `ignore_expire=False` turned around):
    /// only for operations that make sense on a fresh session.
    pub fn with_retry_expired(mut self, retry: bool) -> Self {
        self.retry_expired = retry;
        self
    }

    /// Whether `error` is worth another attempt under this policy: a lost connection, a server
    /// timeout, a request that found no connection in time, and session expiry when asked.
    pub fn retries(&self, error: &Error) -> bool {
        error.is_retryable() || (self.retry_expired && *error == Error::SessionExpired)
    }

    /// Starts counting attempts of one operation that begins at `now`.
    pub fn start(&self, now: Instant, seed: u64) -> Retrying {
        Retrying {
            policy: self.clone(),
            started: now,
            retries: 0,
            current: self.delay,
            rng: Rng::new(seed),
        }
    }
}

/// The retry state of one operation.
#[derive(Debug, Clone)]
pub struct Retrying {
    policy: RetryPolicy,
    started: Instant,
    retries: u32,
    current: Duration,
    rng: Rng,
}

impl Retrying {
    /// After a failed attempt with `error` at `now`: how long to wait before the next one,
    /// or `None` to give up and report the error.
    pub fn next_delay(&mut self, now: Instant, error: &Error) -> Option<Duration> {
        let p = &self.policy;
        if !p.retries(error) || p.max_tries.is_some_and(|max| self.retries >= max) {
            return None;
        }
        let base = self.current.min(p.max_delay);
        // A uniform factor in [1 - j, 1 + j], from 53 random bits.
        let unit = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let factor = 1.0 - p.max_jitter + 2.0 * p.max_jitter * unit;
        let wait = base.mul_f64(factor).min(p.max_delay);
        if let Some(deadline) = p.deadline
            && now + wait >= self.started + deadline
        {
            return None;
        }
        self.retries += 1;
        self.current = base.mul_f64(p.backoff).min(p.max_delay);
        Some(wait)
    }

    /// Retries so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }
}
