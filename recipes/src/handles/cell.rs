//! A value the host updates and callers wait on, in any calling convention.

use std::sync::{Arc, Mutex, MutexGuard};

use zk_client::Result;

use super::{Done, Job};

type Check<S> = Box<dyn FnMut(&mut S) -> bool + Send>;

struct Waiter<S> {
    check: Check<S>,
    wanted: Box<dyn Fn() -> bool + Send>,
}

struct Inner<S> {
    value: S,
    waiters: Vec<Waiter<S>>,
}

/// A value the host updates (a lock's standing, a watch's backlog) and callers wait on:
/// [`Watched::wait`] is a job, so an async caller awaits it and a blocking caller blocks on
/// it. A waiter whose call was dropped takes nothing from the value.
pub struct Watched<S> {
    inner: Arc<Mutex<Inner<S>>>,
}

impl<S> Clone for Watched<S> {
    fn clone(&self) -> Self {
        Watched {
            inner: self.inner.clone(),
        }
    }
}

impl<S: std::fmt::Debug + Send + 'static> std::fmt::Debug for Watched<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.read(|v| f.debug_tuple("Watched").field(v).finish())
    }
}

impl<S: Send + 'static> Watched<S> {
    /// A value to watch.
    pub fn new(value: S) -> Watched<S> {
        Watched {
            inner: Arc::new(Mutex::new(Inner {
                value,
                waiters: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        // A panic elsewhere leaves the value as it was last written, which is still the
        // best answer there is.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the value now.
    pub fn read<T>(&self, f: impl FnOnce(&S) -> T) -> T {
        f(&self.lock().value)
    }

    /// Changes the value, then lets every waiter look at it, in the order they came.
    pub fn update(&self, f: impl FnOnce(&mut S)) {
        let mut inner = self.lock();
        f(&mut inner.value);
        settle(&mut inner);
    }

    /// A job that completes with what `check` makes of the value, the first time (now or
    /// after an update) it returns `Some`. `check` may take from the value, but only once
    /// it decided: a waiter whose caller is gone is dropped first.
    pub fn wait<T: Send + 'static>(
        &self,
        check: impl FnMut(&mut S) -> Option<Result<T>> + Send + 'static,
    ) -> Job<T> {
        self.wait_or_restore(check, |_, _| {})
    }

    /// Like [`Watched::wait`], for a `check` that takes from the value (the next item of a
    /// backlog): when the caller went away between the take and the delivery, `restore`
    /// gets the result back to put it where it was.
    pub fn wait_or_restore<T: Send + 'static>(
        &self,
        check: impl FnMut(&mut S) -> Option<Result<T>> + Send + 'static,
        restore: impl FnOnce(&mut S, Result<T>) + Send + 'static,
    ) -> Job<T> {
        let cell = self.clone();
        Job::start(move |_hosting, done| {
            cell.add(check, restore, done);
            Box::new(())
        })
    }

    /// Calls `f` with the value now and after every update, until it returns true or
    /// `alive` says nobody listens any more.
    pub(crate) fn observe(
        &self,
        f: impl FnMut(&mut S) -> bool + Send + 'static,
        alive: impl Fn() -> bool + Send + 'static,
    ) {
        let mut inner = self.lock();
        inner.waiters.retain(|w| (w.wanted)());
        inner.waiters.push(Waiter {
            check: Box::new(f),
            wanted: Box::new(alive),
        });
        settle(&mut inner);
    }

    pub(crate) fn add<T: Send + 'static>(
        &self,
        mut check: impl FnMut(&mut S) -> Option<Result<T>> + Send + 'static,
        restore: impl FnOnce(&mut S, Result<T>) + Send + 'static,
        done: Done<T>,
    ) {
        let mut restore = Some(restore);
        let done = Arc::new(Mutex::new(Some(done)));
        let alive = done.clone();
        let waiter = Waiter {
            check: Box::new(move |value| {
                let mut slot = done.lock().unwrap_or_else(|e| e.into_inner());
                let Some(d) = slot.take() else {
                    return true;
                };
                if !d.wanted() {
                    return true;
                }
                match check(value) {
                    Some(r) => {
                        // The caller went between the check and the delivery: what the
                        // check took goes back.
                        if let Some(back) = d.send(r)
                            && let Some(restore) = restore.take()
                        {
                            restore(value, back);
                        }
                        true
                    }
                    None => {
                        *slot = Some(d);
                        false
                    }
                }
            }),
            wanted: Box::new(move || {
                alive
                    .lock()
                    .map(|s| s.as_ref().is_some_and(Done::wanted))
                    .unwrap_or(false)
            }),
        };
        let mut inner = self.lock();
        // Waiters whose callers left go now, so waits that time out do not pile up.
        inner.waiters.retain(|w| (w.wanted)());
        inner.waiters.push(waiter);
        settle(&mut inner);
    }
}

fn settle<S>(inner: &mut Inner<S>) {
    let Inner { value, waiters } = inner;
    waiters.retain_mut(|w| !(w.check)(value));
}
