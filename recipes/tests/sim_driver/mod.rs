//! A driver on the simulation: the recipe handles of [`zk_recipes::handles`] on simulated
//! clients, each with a driver core ([`zk_client::driver::Core`]) over its simulated
//! session, as the async and blocking clients have over a socket. A handle's call is a
//! future, polled on virtual time; its commands go to the core, which hosts the machines,
//! routes replies, watch events and state changes in the order the session delivered them,
//! and releases watches nobody hears. So a seeded schedule covers what ships between a
//! handle and the session, not only the machines.
//!
//! Everything is deterministic: a schedule's "random" ids come from a counter, its wall
//! clock is virtual, and the futures are polled in a fixed order.

#![allow(dead_code)]

use std::cell::Cell;
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_client::driver::{Command, Core, Deliver, Link};
use zk_client::{Reply, Result};
use zk_proto::records::Request;
use zk_proto::session::{
    Config as SessionConfig, Error as SessionError, Event, HostList, RequestId, Session,
    StateEvent, WatchedEvent,
};
use zk_recipes::handles::{Done, Driver, Job, JobKind};
use zk_sim::harness::{ClientId, Simulation};

thread_local! {
    static DRAWS: Cell<u64> = const { Cell::new(0) };
    static WALL: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// The schedule's "randomness": a counter, scrambled (SplitMix64).
fn draw(bytes: &mut [u8]) -> std::result::Result<(), String> {
    for chunk in bytes.chunks_mut(8) {
        let n = DRAWS.with(|d| {
            let n = d.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            d.set(n);
            n
        });
        let mut z = n;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let z = (z ^ (z >> 31)).to_be_bytes();
        chunk.copy_from_slice(&z[..chunk.len()]);
    }
    Ok(())
}

fn wall() -> Duration {
    WALL.with(|w| w.get())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// When a schedule's faults stop, when it gives up waiting for its tasks, and how far
/// apart its faults are (100 ms plus up to `spread` ms).
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// No fault after this.
    pub faults_until: Instant,
    /// The tasks must be done by this.
    pub give_up: Instant,
    /// The random part of the gap between faults, in milliseconds.
    pub spread: u64,
}

/// A value a future waits for.
pub type Slot<T> = Arc<Mutex<Option<T>>>;

/// A future of what lands in a slot.
struct Wait<T>(Slot<T>);

impl<T> Future for Wait<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<T> {
        match lock(&self.0).take() {
            Some(v) => Poll::Ready(v),
            None => Poll::Pending,
        }
    }
}

/// A simulated session as the core's link.
struct SimLink<'a> {
    sim: &'a mut Simulation,
    client: ClientId,
}

impl Link for SimLink<'_> {
    fn session(&self) -> &Session {
        self.sim.session(self.client)
    }
    fn poll_event(&mut self) -> Option<Event> {
        self.sim.poll_event(self.client)
    }
    fn submit(
        &mut self,
        _: Instant,
        request: Request,
    ) -> std::result::Result<RequestId, SessionError> {
        self.sim.submit(self.client, request)
    }
    fn release_watch(&mut self, _: Instant, id: RequestId) {
        self.sim
            .with_session(self.client, |s, now| s.release_watch(now, id));
    }
    fn add_auth(
        &mut self,
        _: Instant,
        scheme: &str,
        credentials: Bytes,
    ) -> std::result::Result<RequestId, SessionError> {
        self.sim
            .with_session(self.client, |s, now| s.add_auth(now, scheme, credentials))
    }
    fn update_hosts(&mut self, _: Instant, hosts: HostList) -> bool {
        self.sim
            .with_session(self.client, |s, now| s.update_hosts(now, hosts))
    }
    fn close(&mut self, _: Instant) {
        self.sim.with_session(self.client, |s, now| s.close(now));
    }
}

/// Where the core hands results: slots and queues the futures look at. A slot nobody else
/// holds any more belongs to a call that was dropped.
#[derive(Default)]
pub struct Out {
    subscribers: Vec<Arc<Mutex<VecDeque<StateEvent>>>>,
}

impl Deliver for Out {
    type Reply = Slot<(RequestId, Reply)>;
    type Watch = Arc<Mutex<VecDeque<WatchedEvent>>>;
    type Answer<T> = Slot<T>;
    type Subscriber = Arc<Mutex<VecDeque<StateEvent>>>;

    fn reply(&mut self, to: Self::Reply, id: RequestId, result: Reply) -> bool {
        let heard = Arc::strong_count(&to) > 1;
        *lock(&to) = Some((id, result));
        heard
    }

    fn answer<T>(to: Slot<T>, value: T) {
        *lock(&to) = Some(value);
    }

    fn watch_event(&mut self, sink: &mut Self::Watch, event: WatchedEvent, _: bool) -> bool {
        if Arc::strong_count(sink) < 2 {
            return false;
        }
        lock(sink).push_back(event);
        true
    }

    fn subscribe(&mut self, subscriber: Self::Subscriber) {
        self.subscribers.push(subscriber);
    }

    fn state(&mut self, event: Event, _: &Session) {
        if let Some(state) = StateEvent::of(&event) {
            self.subscribers.retain(|s| Arc::strong_count(s) > 1);
            for s in &self.subscribers {
                lock(s).push_back(state);
            }
        }
    }
}

struct Shared {
    commands: Mutex<VecDeque<Command<Out>>>,
    callbacks: Mutex<VecDeque<Box<dyn FnOnce() + Send>>>,
    session_id: AtomicI64,
    now: Mutex<Instant>,
    /// When the futures want a look: their timers.
    wakes: Mutex<BTreeSet<Instant>>,
    call_timeout: Duration,
}

/// A simulated client, as recipe handles see it: the [`Driver`] of this driver.
#[derive(Clone)]
pub struct SimClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimClient").finish_non_exhaustive()
    }
}

/// A call of a recipe handle on the simulation: a future, polled by [`Tasks`].
pub type SimCall<T> = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

impl SimClient {
    pub(crate) fn command(&self, command: Command<Out>) -> bool {
        lock(&self.shared.commands).push_back(command);
        true
    }

    /// The session id the handles see.
    pub fn session_id(&self) -> i64 {
        self.shared.session_id.load(Ordering::Acquire)
    }

    /// The ACL for nodes created without one: open, as the clients' default.
    pub fn default_acl(&self) -> Vec<zk_proto::records::Acl> {
        zk_proto::records::Acl::open_unsafe()
    }

    /// Virtual time, as of the last turn.
    pub fn now(&self) -> Instant {
        *lock(&self.shared.now)
    }

    /// A request and its reply.
    pub async fn call(&self, request: Request) -> Result<Reply> {
        let slot = Arc::new(Mutex::new(None));
        let reply = slot.clone();
        self.command(Command::Submit {
            request,
            watch: None,
            reply,
        });
        Ok(Wait(slot).await.1)
    }

    /// Waits until virtual time `at`.
    pub fn sleep_until(&self, at: Instant) -> impl Future<Output = ()> + Send + 'static {
        lock(&self.shared.wakes).insert(at);
        let client = self.clone();
        std::future::poll_fn(move |_| {
            if client.now() >= at {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// Runs `work` until virtual time `at`: its output, or `None` when the time came first
    /// (the work is dropped at whatever await point it stood).
    pub fn until<F: Future + Send + 'static>(
        &self,
        at: Instant,
        work: F,
    ) -> impl Future<Output = Option<F::Output>> + Send + 'static {
        lock(&self.shared.wakes).insert(at);
        let client = self.clone();
        let mut work = Some(Box::pin(work));
        std::future::poll_fn(move |cx| {
            if let Some(w) = work.as_mut()
                && let Poll::Ready(v) = w.as_mut().poll(cx)
            {
                work = None;
                return Poll::Ready(Some(v));
            }
            if client.now() >= at {
                work = None;
                return Poll::Ready(None);
            }
            Poll::Pending
        })
    }
}

zk_recipes::handles_for!(SimClient);

impl Driver for SimClient {
    type Call<T: Send + 'static> = SimCall<T>;
    const OS: zk_client::Os = zk_client::Os {
        random: draw,
        wall_clock: wall,
    };

    fn call<T: Send + 'static>(&self, job: Job<T>) -> SimCall<T> {
        Box::pin(run(self.clone(), job))
    }

    fn callback(&self, run: Box<dyn FnOnce() + Send>) {
        lock(&self.shared.callbacks).push_back(run);
    }
}

async fn run<T: Send + 'static>(client: SimClient, job: Job<T>) -> Result<T> {
    let (kind, limit) = job.into_parts(Some(client.shared.call_timeout));
    let work = work(client.clone(), kind);
    match limit {
        None => work.await,
        Some(limit) => {
            let r = client.until(client.now() + limit.after, work).await;
            // The work is dropped first: what it started is being released.
            r.unwrap_or_else(|| (limit.then)())
        }
    }
}

async fn work<T: Send + 'static>(client: SimClient, kind: JobKind<T>) -> Result<T> {
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
            let slot: Slot<Result<T>> = Arc::new(Mutex::new(None));
            let (to, open) = (Arc::downgrade(&slot), Arc::downgrade(&slot));
            let done = Done::new(
                move |r| match to.upgrade() {
                    Some(slot) => {
                        *lock(&slot) = Some(r);
                        None
                    }
                    None => Some(r),
                },
                move || open.strong_count() > 0,
            );
            let keep = start(client.hosting(), done);
            let r = Wait(slot).await;
            drop(keep);
            r
        }
    }
}

/// Futures polled on virtual time, in the order they were spawned.
#[derive(Default)]
pub struct Tasks {
    running: Vec<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>,
}

impl Tasks {
    /// Adds a task.
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.running.push(Some(Box::pin(task)));
    }

    /// Polls every task once.
    fn poll(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        for t in &mut self.running {
            if let Some(f) = t
                && f.as_mut().poll(&mut cx).is_ready()
            {
                *t = None;
            }
        }
    }

    /// Every task has finished.
    pub fn all_done(&self) -> bool {
        self.running.iter().all(Option::is_none)
    }
}

struct Member {
    client: ClientId,
    core: Core<Out>,
    handle: SimClient,
}

/// The simulation with a driver core per client, and the tasks that use their handles.
pub struct SimDriver {
    /// The simulated ensemble and network.
    pub sim: Simulation,
    nodes: Vec<Member>,
    /// The tasks.
    pub tasks: Tasks,
}

impl SimDriver {
    /// A driver on `sim`; the schedule's ids start afresh.
    pub fn new(sim: Simulation) -> SimDriver {
        DRAWS.with(|d| d.set(0));
        SimDriver {
            sim,
            nodes: Vec::new(),
            tasks: Tasks::default(),
        }
    }

    /// A client on a new simulated session.
    pub fn add_client(
        &mut self,
        configure: impl FnOnce(SessionConfig) -> SessionConfig,
    ) -> (ClientId, SimClient) {
        let client = self.sim.add_client(configure);
        let handle = SimClient {
            shared: Arc::new(Shared {
                commands: Mutex::new(VecDeque::new()),
                callbacks: Mutex::new(VecDeque::new()),
                session_id: AtomicI64::new(0),
                now: Mutex::new(self.sim.now()),
                wakes: Mutex::new(BTreeSet::new()),
                call_timeout: Duration::from_secs(10),
            }),
        };
        self.nodes.push(Member {
            client,
            core: Core::new(Out::default()),
            handle: handle.clone(),
        });
        (client, handle)
    }

    /// Polls the tasks and gives every core its turn (commands, timers, events, machine
    /// steps, callbacks), again until nothing more is asked.
    pub fn settle(&mut self) {
        let now = self.sim.now();
        WALL.with(|w| w.set(Duration::from_secs(1_700_000_000) + self.sim.elapsed()));
        for n in &self.nodes {
            *lock(&n.handle.shared.now) = now;
            lock(&n.handle.shared.wakes).retain(|t| *t > now);
        }
        for n in &mut self.nodes {
            if n.core.poll_timeout().is_some_and(|t| t <= now) {
                n.core.handle_timeout(now);
            }
        }
        for _ in 0..1000 {
            self.tasks.poll();
            let mut any = false;
            for n in &mut self.nodes {
                let mut link = SimLink {
                    sim: &mut self.sim,
                    client: n.client,
                };
                let commands: Vec<_> = lock(&n.handle.shared.commands).drain(..).collect();
                any |= !commands.is_empty();
                for c in commands {
                    n.core.command(&mut link, now, c);
                }
                any |= n.core.turn(&mut link, now);
                let id = link.session().session_id();
                n.handle.shared.session_id.store(id, Ordering::Release);
                let callbacks: Vec<_> = lock(&n.handle.shared.callbacks).drain(..).collect();
                any |= !callbacks.is_empty();
                callbacks.into_iter().for_each(|f| f());
            }
            if !any {
                return;
            }
        }
        panic!("the tasks and cores kept asking for more at {now:?}: a spin");
    }

    /// Runs a schedule to its end: settles, lets `each_turn` look, injects a fault from
    /// `fault` every 100 ms plus up to `spread` ms until `faults_until`, and moves on (a
    /// busy host turns late: up to five steps at once, so what the socket delivered
    /// meanwhile reaches the core in one batch). Ends once every task is done and nothing
    /// is hosted, or at `give_up`; asserts the former, naming `seed`.
    pub fn drive(
        &mut self,
        seed: u64,
        rng: &mut crate::sim_support::Rng,
        span: Span,
        mut fault: impl FnMut(&mut SimDriver, &mut crate::sim_support::Rng),
        mut each_turn: impl FnMut(&mut SimDriver, Instant),
    ) {
        let Span {
            faults_until,
            give_up,
            spread,
        } = span;
        let mut next_fault = self.sim.now() + Duration::from_millis(200);
        loop {
            self.settle();
            let now = self.sim.now();
            each_turn(self, now);
            if self.tasks.all_done() && self.quiet() || now > give_up {
                break;
            }
            if now < faults_until && now >= next_fault {
                fault(self, rng);
                next_fault = now + Duration::from_millis(100 + rng.next(spread));
            }
            for _ in 0..=rng.next(4) {
                self.advance();
            }
        }
        assert!(
            self.tasks.all_done() && self.quiet(),
            "seed {seed}: the tasks never finished\n{}",
            self.sim.render_history()
        );
    }

    /// A random fault of the simulation's.
    pub fn random_fault(d: &mut SimDriver, _rng: &mut crate::sim_support::Rng) {
        let f = d.sim.random_fault();
        d.sim.fault(f);
    }

    /// No core hosts a machine and no command waits: nothing is owed to the server.
    pub fn quiet(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| n.core.router.hosts_nothing() && lock(&n.handle.shared.commands).is_empty())
    }

    /// Moves to the next thing that happens: the simulation's next event, a machine's
    /// deadline or a task's timer, whichever is first. Settle first.
    pub fn advance(&mut self) {
        let now = self.sim.now();
        let mine = self
            .nodes
            .iter()
            .filter_map(|n| {
                let wake = lock(&n.handle.shared.wakes).first().copied();
                [n.core.poll_timeout(), wake].into_iter().flatten().min()
            })
            .min();
        let mine = mine.filter(|m| *m > now);
        match (self.sim.next_time(), mine) {
            (Some(sim), Some(m)) if m < sim => self.sim.run_for(m - now),
            (Some(_), _) => {
                self.sim.step();
            }
            (None, Some(m)) => self.sim.run_for(m - now),
            (None, None) => self.sim.run_for(Duration::from_millis(1)),
        }
    }
}
