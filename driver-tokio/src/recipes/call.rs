//! How the async client runs the recipe handles' calls ([`zk_recipes::handles`]): each is a
//! future, which starts its work when first polled.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::oneshot;
use zk_recipes::handles::{Done, Driver, Job, JobKind};

use crate::{Client, Error, Result};

/// A call of a recipe handle: a future of its result.
///
/// **Cancel safety.** Nothing happens until it is first polled, and dropping it at any
/// await point is correct: what the call started on the server (a lock node, a barrier
/// node) is released by the connection task, retried until the server confirms it.
#[must_use = "a recipe call does nothing until it is awaited"]
pub struct Call<T> {
    state: State<T>,
}

enum State<T> {
    Idle(Option<Box<(Client, Job<T>)>>),
    Running(Pin<Box<dyn Future<Output = Result<T>> + Send>>),
}

impl<T> std::fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let started = matches!(self.state, State::Running(_));
        f.debug_struct("Call").field("started", &started).finish()
    }
}

// The running work is pinned in its own box; nothing of a `Call` is pinned in place.
impl<T> Unpin for Call<T> {}

impl<T: Send + 'static> Future for Call<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        if let State::Idle(idle) = &mut self.state {
            match idle.take() {
                Some(idle) => {
                    let (client, job) = *idle;
                    self.state = State::Running(Box::pin(run(client, job)))
                }
                None => return Poll::Ready(Err(Error::Closed)),
            }
        }
        match &mut self.state {
            State::Running(f) => f.as_mut().poll(cx),
            State::Idle(_) => Poll::Ready(Err(Error::Closed)),
        }
    }
}

async fn run<T: Send + 'static>(client: Client, job: Job<T>) -> Result<T> {
    let (kind, limit) = job.into_parts(client.call_timeout());
    let work = work(client, kind);
    match limit {
        None => work.await,
        Some(limit) => match tokio::time::timeout(limit.after, work).await {
            Ok(r) => r,
            // The work is dropped first: what it started is being released.
            Err(_) => (limit.then)(),
        },
    }
}

async fn work<T: Send + 'static>(client: Client, kind: JobKind<T>) -> Result<T> {
    match kind {
        JobKind::Ready(r) => r,
        JobKind::Op(request, decode) => decode(client.call(request).await?),
        JobKind::Plan(mut plan) => {
            while let Some(request) = plan.next_request() {
                plan.complete(client.call(request).await?)?;
            }
            plan.finish()
        }
        JobKind::Start(start) => {
            let (tx, rx) = oneshot::channel();
            let tx = Arc::new(Mutex::new(Some(tx)));
            let open = tx.clone();
            let done = Done::new(
                move |r| match tx.lock().ok().and_then(|mut t| t.take()) {
                    Some(tx) => tx.send(r).err(),
                    None => Some(r),
                },
                move || {
                    open.lock()
                        .ok()
                        .is_some_and(|t| t.as_ref().is_some_and(|t| !t.is_closed()))
                },
            );
            let keep = start(client.hosting(), done);
            let r = rx.await;
            drop(keep);
            r.unwrap_or(Err(Error::Closed))
        }
    }
}

impl Driver for Client {
    type Call<T: Send + 'static> = Call<T>;

    fn call<T: Send + 'static>(&self, job: Job<T>) -> Call<T> {
        Call {
            state: State::Idle(Some(Box::new((self.clone(), job)))),
        }
    }

    const OS: zk_client::Os = crate::os::OS;

    fn callback(&self, run: Box<dyn FnOnce() + Send>) {
        self.post_callback(run)
    }
}
