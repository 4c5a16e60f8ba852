//! How the blocking client runs the recipe handles' calls ([`zk_recipes::handles`]): the
//! caller's thread waits for the result, while the IO thread drives the machines.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use zk_recipes::handles::{Done, Driver, Job, JobKind, Limit};

use crate::blocking::Client;
use crate::{Error, Result};

/// Where a waiting caller's result lands.
struct Slot<T> {
    result: Mutex<Option<Result<T>>>,
    filled: Condvar,
    waiting: AtomicBool,
}

impl<T: Send + 'static> Slot<T> {
    fn done(self: &Arc<Self>) -> Done<T> {
        let slot = self.clone();
        let open = self.clone();
        Done::new(
            move |r| {
                if !slot.waiting.load(Ordering::Acquire) {
                    return Some(r);
                }
                let mut result = slot.result.lock().unwrap_or_else(|e| e.into_inner());
                *result = Some(r);
                slot.filled.notify_all();
                None
            },
            move || open.waiting.load(Ordering::Acquire),
        )
    }

    /// Waits for the result until `deadline`; `None` when it passed first, and then nothing
    /// will be delivered any more.
    fn wait(&self, deadline: Option<Instant>) -> Option<Result<T>> {
        let mut result = self.result.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = result.take() {
                return Some(r);
            }
            let left = match deadline {
                None => Duration::from_secs(3600),
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => {
                        // Under the lock, so a delivery either landed above or is refused.
                        self.waiting.store(false, Ordering::Release);
                        return None;
                    }
                },
            };
            result = match self.filled.wait_timeout(result, left) {
                Ok((r, _)) => r,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

impl Client {
    fn run_job<T: Send + 'static>(&self, job: Job<T>) -> Result<T> {
        let (kind, limit) = job.into_parts(Some(self.call_timeout()));
        let deadline = limit.as_ref().map(|l| Instant::now() + l.after);
        match kind {
            JobKind::Ready(r) => r,
            JobKind::Op(request, decode) => decode(self.call(request)?),
            JobKind::Plan(mut plan) => {
                while let Some(request) = plan.next_request() {
                    plan.complete(self.call(request)?)?;
                }
                plan.finish()
            }
            JobKind::Start(start) => {
                let slot = Arc::new(Slot {
                    result: Mutex::new(None),
                    filled: Condvar::new(),
                    waiting: AtomicBool::new(true),
                });
                let keep = start(self.hosting(), slot.done());
                let r = slot.wait(deadline);
                // Dropped only now: what the job started is released once it is over.
                drop(keep);
                match (r, limit) {
                    (Some(r), _) => r,
                    (None, Some(Limit { then, .. })) => then(),
                    (None, None) => Err(Error::Closed),
                }
            }
        }
    }
}

impl Driver for Client {
    type Call<T: Send + 'static> = Result<T>;

    fn call<T: Send + 'static>(&self, job: Job<T>) -> Result<T> {
        self.run_job(job)
    }

    const OS: zk_client::Os = crate::os::OS;

    fn callback(&self, run: Box<dyn FnOnce() + Send>) {
        self.post_callback(run)
    }
}
