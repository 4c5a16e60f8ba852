//! Runs a sans-IO recipe machine ([`zk_recipes::Recipe`]) on a task of its own, beside the
//! client's connection task.
//!
//! The task owns the machine. A handle steers it through a control channel; when every
//! sender of that channel is gone (the handle dropped, a future cancelled at any await
//! point) the task tells the machine to release and keeps driving it until the machine
//! says nothing of it is left on the server. That is what makes every recipe handle
//! cancel-safe: the cleanup never depended on the caller's future being polled.

use std::collections::HashMap;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use zk_proto::records::{Request, Response};
use zk_proto::session::{self, RequestId, StateEvent, WatchedEvent};
use zk_recipes::{Output, Recipe, Tag};

use crate::Client;
use crate::connection::WatchSink;

/// A step a handle asks of its machine.
pub(crate) type Control<R> = Box<dyn FnOnce(&mut R, Instant) + Send>;

/// What the task reports: each outcome, and (with `None`) the machine after every step.
pub(crate) trait Observer<R: Recipe>:
    FnMut(&R, Option<R::Outcome>) + Send + 'static
{
}
impl<R: Recipe, F: FnMut(&R, Option<R::Outcome>) + Send + 'static> Observer<R> for F {}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Starts driving `machine` on `client`'s session: `start` runs first, then every control
/// sent on the returned channel.
pub(crate) fn spawn<R>(
    client: &Client,
    machine: R,
    start: Control<R>,
    observe: impl Observer<R>,
) -> mpsc::UnboundedSender<Control<R>>
where
    R: Recipe + Send + 'static,
    R::Outcome: Send,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let _ = tx.send(start);
    tokio::spawn(run(client.clone(), machine, rx, observe));
    tx
}

/// A reply: its tag, the watch its request asked for (`Some(lasting)`), its id, the result.
type Completion = (
    Tag,
    Option<bool>,
    RequestId,
    Result<Response, session::Error>,
);

async fn run<R>(
    client: Client,
    mut machine: R,
    mut control: mpsc::UnboundedReceiver<Control<R>>,
    mut observe: impl Observer<R>,
) where
    R: Recipe + Send + 'static,
    R::Outcome: Send,
{
    let mut states = client.state_events();
    let (watch_tx, mut watch_rx) = mpsc::unbounded_channel::<WatchedEvent>();
    let mut replies: JoinSet<Completion> = JoinSet::new();
    // Watches by the id of the request that left them, and events that overtook their
    // request's reply (they travel on another channel).
    let mut watches: HashMap<RequestId, (Tag, bool)> = HashMap::new();
    let mut early: Vec<WatchedEvent> = Vec::new();
    let mut steering = true;
    loop {
        flush(&client, &mut machine, &mut replies, &watch_tx, &mut observe);
        observe(&machine, None);
        if !steering && machine.is_done() {
            break;
        }
        let deadline = machine.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            step = control.recv(), if steering => match step {
                Some(step) => step(&mut machine, now()),
                None => {
                    steering = false;
                    machine.release(now());
                }
            },
            Some(done) = replies.join_next(), if !replies.is_empty() => {
                let Ok((tag, watched, id, result)) = done else { continue };
                // A failed request left no watch: its entry stays unused until the end.
                if let Some(lasting) = watched {
                    watches.insert(id, (tag, lasting));
                }
                let now = now();
                machine.handle_reply(now, tag, result);
                for event in take_early(&mut early, id) {
                    deliver(&mut machine, &mut watches, now, event);
                }
            },
            Some(event) = watch_rx.recv() => {
                if watches.contains_key(&event.watch) {
                    deliver(&mut machine, &mut watches, now(), event);
                } else {
                    early.push(event);
                }
            },
            state = states.next() => match state {
                Some(StateEvent::App(app)) => machine.handle_state(now(), app, client.session_id()),
                Some(StateEvent::Session(_)) => {}
                // The client is closed: replies say so from now on.
                None => {}
            },
            _ = sleep_until(deadline) => machine.handle_timeout(now()),
        }
    }
}

fn deliver<R: Recipe>(
    machine: &mut R,
    watches: &mut HashMap<RequestId, (Tag, bool)>,
    now: Instant,
    event: WatchedEvent,
) {
    // A one-shot watch's first event is its last; a persistent one ends with the session.
    let Some(&(tag, lasting)) = watches.get(&event.watch) else {
        return;
    };
    if !lasting || event.kind == zk_proto::consts::EventType::None {
        watches.remove(&event.watch);
    }
    machine.handle_watch(now, tag, &event);
}

fn take_early(early: &mut Vec<WatchedEvent>, id: RequestId) -> Vec<WatchedEvent> {
    let (mine, rest) = early.drain(..).partition(|e| e.watch == id);
    *early = rest;
    mine
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Submits what the machine asks for, in order, and reports its outcomes.
fn flush<R: Recipe>(
    client: &Client,
    machine: &mut R,
    replies: &mut JoinSet<Completion>,
    watch_tx: &mpsc::UnboundedSender<WatchedEvent>,
    observe: &mut impl Observer<R>,
) where
    R::Outcome: Send,
{
    while let Some(out) = machine.poll_output() {
        match out {
            Output::Submit(tag, request) => {
                let watched = leaves_watch(&request);
                let sink = watched.map(|_| WatchSink::Stream(watch_tx.clone()));
                match client.send_request(request, sink) {
                    Some(rx) => {
                        replies.spawn(async move {
                            let (id, result) = rx
                                .await
                                .unwrap_or((RequestId(0), Err(session::Error::Closed)));
                            (tag, watched, id, result)
                        });
                    }
                    None => machine.handle_reply(now(), tag, Err(session::Error::Closed)),
                }
            }
            Output::Outcome(o) => observe(machine, Some(o)),
        }
    }
}

/// Whether a request asks the server for a watch: `Some(true)` for a persistent one.
fn leaves_watch(request: &Request) -> Option<bool> {
    match request {
        Request::Exists(r) => r.watch.then_some(false),
        Request::GetData(r) => r.watch.then_some(false),
        Request::GetChildren(r) | Request::GetChildren2(r) => r.watch.then_some(false),
        Request::AddWatch(_) => Some(true),
        _ => None,
    }
}

/// Starts driving `machine` like [`spawn`], with every outcome sent, in order, to the
/// returned receiver.
pub(crate) fn spawn_outcomes<R>(
    client: &Client,
    machine: R,
    start: Control<R>,
) -> (
    mpsc::UnboundedSender<Control<R>>,
    mpsc::UnboundedReceiver<R::Outcome>,
)
where
    R: Recipe + Send + 'static,
    R::Outcome: Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let control = spawn(client, machine, start, move |_m: &R, outcome| {
        if let Some(o) = outcome {
            let _ = tx.send(o);
        }
    });
    (control, rx)
}
