//! The callback thread: watch callbacks, state listeners and recipe callbacks of every
//! blocking client, one at a time, in order.

use std::collections::HashMap;
use std::sync::mpsc::Receiver;

use tracing::warn;
use zk_proto::session::{RequestId, StateEvent, WatchedEvent};

/// A persistent-watch callback.
pub(crate) type Callback = Box<dyn FnMut(WatchedEvent) + Send>;
/// A session state listener.
pub(crate) type Listener = Box<dyn FnMut(StateEvent) + Send>;

/// Jobs for the callback thread, each for the session of a key.
pub(super) enum CallbackJob {
    Register(RequestId, Callback),
    Event(WatchedEvent, bool),
    Forget(RequestId),
    Listen(Listener),
    State(StateEvent),
    /// Runs a recipe's callback (a watch's value), in turn with the others.
    Run(Box<dyn FnOnce() + Send>),
    /// The session is over: drop its callbacks and listeners.
    End,
}

/// What a panic said, when it said it with a string.
pub(super) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// The callback thread: runs the watch callbacks and state listeners of every blocking
/// client one at a time, in the order their events arrived. A callback that panics is
/// logged and dropped (it may be broken); the thread and every other callback go on.
pub(super) fn run_callbacks(jobs: Receiver<(usize, CallbackJob)>) {
    let mut callbacks: HashMap<(usize, RequestId), Callback> = HashMap::new();
    let mut listeners: HashMap<usize, Vec<Listener>> = HashMap::new();
    for (key, job) in jobs {
        match job {
            CallbackJob::Listen(f) => listeners.entry(key).or_default().push(f),
            CallbackJob::State(state) => {
                for (i, l) in listeners.entry(key).or_default().iter_mut().enumerate() {
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l(state)));
                    if let Err(panic) = ran {
                        warn!(listener = i, ?state, panic = %panic_text(&*panic), "a state listener panicked");
                    }
                }
            }
            CallbackJob::Register(id, cb) => {
                callbacks.insert((key, id), cb);
            }
            CallbackJob::Event(ev, last) => {
                let id = ev.watch;
                let path = ev.path.clone();
                let mut drop_it = last;
                if let Some(cb) = callbacks.get_mut(&(key, id)) {
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(ev)));
                    if let Err(panic) = ran {
                        warn!(
                            watch = id.0,
                            %path,
                            panic = %panic_text(&*panic),
                            "a watch callback panicked; it is dropped, the others go on"
                        );
                        drop_it = true;
                    }
                }
                if drop_it {
                    callbacks.remove(&(key, id));
                }
            }
            CallbackJob::Forget(id) => {
                callbacks.remove(&(key, id));
            }
            CallbackJob::Run(f) => {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                if let Err(panic) = ran {
                    warn!(panic = %panic_text(&*panic), "a recipe callback panicked; the others go on");
                }
            }
            CallbackJob::End => {
                callbacks.retain(|(k, _), _| *k != key);
                listeners.remove(&key);
            }
        }
    }
}
