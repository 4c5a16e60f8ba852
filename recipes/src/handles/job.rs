//! One call of a recipe handle, described once for every driver.

use std::sync::Arc;
use std::time::Duration;

use zk_client::plan::Plan;
use zk_client::{Op, Reply, Result};
use zk_proto::records::Request;

use super::Hosting;

/// Where a job's result goes: the driver's end of a one-shot channel, or a slot its caller
/// waits on. Called at most once, on whatever thread completes the job.
pub struct Done<T> {
    send: Box<dyn FnOnce(Result<T>) -> Option<Result<T>> + Send>,
    wanted: Box<dyn Fn() -> bool + Send + Sync>,
}

impl<T> std::fmt::Debug for Done<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Done")
            .field("wanted", &self.wanted())
            .finish()
    }
}

impl<T> Done<T> {
    /// A sink: `send` delivers the result, or gives it back when nobody takes it any more
    /// (the call was dropped); `wanted` says whether somebody still waits.
    pub fn new(
        send: impl FnOnce(Result<T>) -> Option<Result<T>> + Send + 'static,
        wanted: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Done<T> {
        Done {
            send: Box::new(send),
            wanted: Box::new(wanted),
        }
    }

    /// Delivers `result`; it comes back when the caller is gone, so a taken item can be put
    /// back rather than lost.
    pub fn send(self, result: Result<T>) -> Option<Result<T>> {
        (self.send)(result)
    }

    /// Whether a caller still waits for the result.
    pub fn wanted(&self) -> bool {
        (self.wanted)()
    }
}

/// Whatever keeps a running job's work alive: dropping it (a cancelled call) releases the
/// machine the job hosted.
pub type Keep = Box<dyn std::any::Any + Send>;

/// How a hosted job starts: given the session's host and the sink for its result, it
/// returns what keeps it running.
pub type Start<T> = Box<dyn FnOnce(Arc<dyn Hosting>, Done<T>) -> Keep + Send>;

/// A deadline on a call, and what the call yields when it passes.
pub struct Limit<T> {
    /// How long the call may take.
    pub after: Duration,
    /// The result once it is over.
    pub then: Box<dyn FnOnce() -> Result<T> + Send>,
}

/// What a job does; a driver runs each kind its own way.
pub enum JobKind<T> {
    /// Already decided (a refused argument).
    Ready(Result<T>),
    /// One request, and how its reply becomes the result.
    Op(Request, Box<dyn FnOnce(Reply) -> Result<T> + Send>),
    /// Several requests, one after another.
    Plan(Box<dyn DynPlan<T>>),
    /// Work hosted beside the session, or a wait on a [`super::Watched`] value.
    Start(Start<T>),
}

/// A [`Plan`] behind a pointer.
pub trait DynPlan<T>: Send {
    /// The next request, or `None` when done.
    fn next_request(&mut self) -> Option<Request>;
    /// The reply to the last request.
    fn complete(&mut self, reply: Reply) -> Result<()>;
    /// The result.
    fn finish(self: Box<Self>) -> Result<T>;
}

impl<P: Plan + Send> DynPlan<P::Output> for P {
    fn next_request(&mut self) -> Option<Request> {
        Plan::next_request(self)
    }
    fn complete(&mut self, reply: Reply) -> Result<()> {
        Plan::complete(self, reply)
    }
    fn finish(self: Box<Self>) -> Result<P::Output> {
        Plan::finish(*self)
    }
}

/// A plan whose result goes through `then`, failures included: a step that fails ends
/// the plan, and its error is what `then` gets.
struct Mapped<T, U> {
    plan: Box<dyn DynPlan<T>>,
    then: Box<dyn FnOnce(Result<T>) -> Result<U> + Send>,
    failed: Option<zk_client::Error>,
}

impl<T, U> DynPlan<U> for Mapped<T, U> {
    fn next_request(&mut self) -> Option<Request> {
        if self.failed.is_some() {
            return None;
        }
        self.plan.next_request()
    }
    fn complete(&mut self, reply: Reply) -> Result<()> {
        if let Err(e) = self.plan.complete(reply) {
            self.failed = Some(e);
        }
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<U> {
        match self.failed {
            Some(e) => (self.then)(Err(e)),
            None => (self.then)(self.plan.finish()),
        }
    }
}

/// One call of a recipe handle: what it does, and when it gives up waiting.
#[must_use = "a job does nothing until a driver runs it"]
pub struct Job<T> {
    kind: JobKind<T>,
    limit: Option<Limit<T>>,
    bounded: bool,
}

impl<T> std::fmt::Debug for Job<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            JobKind::Ready(_) => "ready",
            JobKind::Op(..) => "op",
            JobKind::Plan(_) => "plan",
            JobKind::Start(_) => "start",
        };
        f.debug_struct("Job")
            .field("kind", &kind)
            .field("limit", &self.limit.as_ref().map(|l| l.after))
            .finish()
    }
}

impl<T: Send + 'static> Job<T> {
    /// A call already decided.
    pub fn ready(result: Result<T>) -> Job<T> {
        Job {
            kind: JobKind::Ready(result),
            limit: None,
            bounded: false,
        }
    }

    /// One operation.
    pub fn op(op: Op<T>) -> Job<T> {
        let (request, decode) = op.into_parts();
        Job {
            kind: JobKind::Op(request, Box::new(decode)),
            limit: None,
            bounded: false,
        }
    }

    /// A multi-step operation.
    pub fn plan<P: Plan<Output = T> + Send + 'static>(plan: P) -> Job<T> {
        Job {
            kind: JobKind::Plan(Box::new(plan)),
            limit: None,
            bounded: false,
        }
    }

    /// Work started beside the session: see [`Start`].
    pub fn start(start: impl FnOnce(Arc<dyn Hosting>, Done<T>) -> Keep + Send + 'static) -> Job<T> {
        Job {
            kind: JobKind::Start(Box::new(start)),
            limit: None,
            bounded: false,
        }
    }

    /// Gives up after `after`, yielding what `then` makes. A driver enforces it with its
    /// own clock; dropping the call then releases what it started.
    pub fn limit(
        mut self,
        after: Duration,
        then: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Job<T> {
        self.limit = Some(Limit {
            after,
            then: Box::new(then),
        });
        self
    }

    /// A short call: unless it has a [`Job::limit`] of its own, the driver bounds it with
    /// its call timeout, as it bounds an operation ([`zk_client::Error::CallTimeout`]).
    pub fn bounded(mut self) -> Job<T> {
        self.bounded = true;
        self
    }

    /// Whether the driver's call timeout applies ([`Job::bounded`]).
    pub fn is_bounded(&self) -> bool {
        self.bounded
    }

    /// Keeps `keep` alive while the job runs (a machine's [`super::Steer`] the job waits
    /// on); for a job already decided it is dropped at once.
    pub fn keeping(self, keep: impl Send + 'static) -> Job<T> {
        let Job {
            kind,
            limit,
            bounded,
        } = self;
        let kind = match kind {
            JobKind::Start(start) => JobKind::Start(Box::new(move |hosting, done| {
                let inner = start(hosting, done);
                Box::new((inner, keep)) as Keep
            })),
            // Operations and plans wait on the session, not on a machine.
            other => other,
        };
        Job {
            kind,
            limit,
            bounded,
        }
    }

    /// What the job does, and its deadline, for a driver to run: its own limit, or for a
    /// [`Job::bounded`] one, the driver's `call_timeout` (failing with
    /// [`zk_client::Error::CallTimeout`]).
    pub fn into_parts(self, call_timeout: Option<Duration>) -> (JobKind<T>, Option<Limit<T>>) {
        let limit = match (self.limit, self.bounded, call_timeout) {
            (None, true, Some(after)) => Some(Limit {
                after,
                then: Box::new(move || Err(zk_client::Error::CallTimeout(after))),
            }),
            (limit, _, _) => limit,
        };
        (self.kind, limit)
    }

    /// The same call, its result (success or failure) turned into another.
    pub fn then<U: Send + 'static>(
        self,
        f: impl FnOnce(Result<T>) -> Result<U> + Send + 'static,
    ) -> Job<U> {
        let f: Box<dyn FnOnce(Result<T>) -> Result<U> + Send> = Box::new(f);
        let (kind, limit, bounded) = (self.kind, self.limit, self.bounded);
        let (kind, limit) = match limit {
            // The fallback goes through `f` too; the two never both run.
            Some(l) => {
                let shared = Arc::new(std::sync::Mutex::new(Some(f)));
                let other = shared.clone();
                let take = move |r: Result<T>| match other.lock().ok().and_then(|mut g| g.take()) {
                    Some(f) => f(r),
                    None => Err(zk_client::Error::Closed),
                };
                let then = l.then;
                let limit = Limit {
                    after: l.after,
                    then: Box::new({
                        let take = take.clone();
                        move || take(then())
                    }),
                };
                (map_kind(kind, Box::new(take)), Some(limit))
            }
            None => (map_kind(kind, f), None),
        };
        Job {
            kind,
            limit,
            bounded,
        }
    }

    /// The same call, its success turned into another result.
    pub fn and_then<U: Send + 'static>(
        self,
        f: impl FnOnce(T) -> Result<U> + Send + 'static,
    ) -> Job<U> {
        self.then(|r| r.and_then(f))
    }
}

fn map_kind<T: Send + 'static, U: Send + 'static>(
    kind: JobKind<T>,
    f: Box<dyn FnOnce(Result<T>) -> Result<U> + Send>,
) -> JobKind<U> {
    match kind {
        JobKind::Ready(r) => JobKind::Ready(f(r)),
        JobKind::Op(request, decode) => {
            JobKind::Op(request, Box::new(move |reply| f(decode(reply))))
        }
        JobKind::Plan(plan) => JobKind::Plan(Box::new(Mapped {
            plan,
            then: f,
            failed: None,
        })),
        JobKind::Start(start) => JobKind::Start(Box::new(move |hosting, done: Done<U>| {
            let Done { send, wanted } = done;
            let inner = Done {
                // A mapped result cannot be given back once made.
                send: Box::new(move |r| {
                    let _ = send(f(r));
                    None
                }),
                wanted,
            };
            start(hosting, inner)
        })),
    }
}
