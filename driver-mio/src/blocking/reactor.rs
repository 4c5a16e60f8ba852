//! The IO thread every blocking client of the process shares: one `mio::Poll` for all
//! their sessions, and the link from a client to its session on it.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use tracing::warn;
use zk_client::{Error, Result};
use zk_proto::session::RequestId;

use super::callbacks::*;
use super::session_loop::*;
use zk_client::driver::Snapshot;

/// The IO thread's waker; every other token is a session's key.
pub(super) const WAKE: Token = Token(usize::MAX);

/// A session's loop state, shared by the IO thread and the client's callers.
pub(super) type Cell = Mutex<SessionLoop>;

/// Locks a session; a panic that poisoned the lock left the state usable (every change
/// to it is a whole step of the session).
pub(super) fn lock(cell: &Cell) -> std::sync::MutexGuard<'_, SessionLoop> {
    cell.lock().unwrap_or_else(|e| e.into_inner())
}

/// A client's link to its session on the IO thread.
pub(super) struct Shared {
    pub(super) key: usize,
    pub(super) reactor: &'static Reactor,
    /// The session itself: a caller submits and reads its own reply through it while the
    /// link is healthy (see [`Client::submit`]; Linux only).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(super) cell: Arc<Cell>,
    pub(super) snapshot: Arc<Mutex<Snapshot>>,
    /// How long dropping the last handle waits for the session to close.
    pub(super) close_wait: Duration,
}

impl Shared {
    pub(super) fn send(&self, cmd: Cmd) -> bool {
        self.reactor.send(self.key, IoOp::Cmd(cmd))
    }

    /// Releases watch `id` now, on the caller's thread, under the session's lock: the
    /// release is then ahead of whatever this thread asks next. Sent to the IO thread it
    /// could reach the session after a later request of this thread (written directly),
    /// and its `removeWatches` would remove that request's new watch on the same path.
    pub(super) fn release(&self, id: RequestId) {
        let mut s = lock(&self.cell);
        if s.ended {
            return;
        }
        let now = s.tick(Instant::now());
        s.release(now, id);
        drop(s);
        // The IO thread writes the removal, unless a caller's direct write takes it first.
        self.send(Cmd::Poke);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle is gone: close the session and wait (bounded) until it is closed.
        let (done, closed) = mpsc::channel();
        if self.send(Cmd::Leave(Some(done))) {
            let _ = closed.recv_timeout(self.close_wait);
        }
    }
}

/// What the IO thread is asked to do for a session.
pub(super) enum IoOp {
    /// Start driving a new session.
    Open(Box<NewSession>),
    Cmd(Cmd),
}

/// A session as a new client hands it to the IO thread.
pub(super) struct NewSession {
    pub(super) cell: Arc<Cell>,
}

/// The process's IO thread for blocking clients: one `mio::Poll` for every session.
pub(super) struct Reactor {
    pub(super) ops: Sender<(usize, IoOp)>,
    /// The IO thread's `Poll`, where a new client registers its connection.
    pub(super) registry: mio::Registry,
    /// The callback thread, for new sessions.
    pub(super) callbacks: Sender<(usize, CallbackJob)>,
    pub(super) waker: Waker,
    /// A wake-up is on its way: later senders need not write the waker again.
    pub(super) wake_pending: Arc<AtomicBool>,
    pub(super) next_key: AtomicUsize,
}

impl Reactor {
    /// The IO thread and the callback thread, started on first use.
    pub(super) fn get() -> Result<&'static Reactor> {
        pub(super) static REACTOR: OnceLock<std::result::Result<Reactor, String>> = OnceLock::new();
        REACTOR
            .get_or_init(|| Reactor::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Error::Start(e.clone()))
    }

    pub(super) fn start() -> std::io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let registry = poll.registry().try_clone()?;
        let (tx, rx) = mpsc::channel();
        let (cb_tx, cb_rx) = mpsc::channel();
        let wake_pending = Arc::new(AtomicBool::new(false));
        thread::Builder::new()
            .name("zk-callbacks".into())
            .spawn(move || run_callbacks(cb_rx))?;
        let io = IoThread::new(poll, rx, wake_pending.clone());
        thread::Builder::new()
            .name("zk-io".into())
            .spawn(move || io.run())?;
        Ok(Reactor {
            ops: tx,
            registry,
            callbacks: cb_tx,
            waker,
            wake_pending,
            next_key: AtomicUsize::new(0),
        })
    }

    pub(super) fn send(&self, key: usize, op: IoOp) -> bool {
        if self.ops.send((key, op)).is_err() {
            return false;
        }
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            return self.waker.wake().is_ok();
        }
        true
    }
}

/// The IO thread: every blocking session of the process, on one `Poll`.
pub(super) struct IoThread {
    pub(super) poll: Poll,
    pub(super) ops: Receiver<(usize, IoOp)>,
    pub(super) sessions: HashMap<usize, Arc<Cell>>,
    /// Each session's next deadline, earliest first.
    pub(super) deadlines: BTreeSet<(Instant, usize)>,
    /// Sessions that had something happen this turn.
    pub(super) touched: Vec<usize>,
    /// Shared with [`Reactor::send`]: cleared before the operations are read.
    pub(super) wake_pending: Arc<AtomicBool>,
}

impl IoThread {
    pub(super) fn new(
        poll: Poll,
        ops: Receiver<(usize, IoOp)>,
        wake_pending: Arc<AtomicBool>,
    ) -> Self {
        IoThread {
            poll,
            ops,
            sessions: HashMap::new(),
            deadlines: BTreeSet::new(),
            touched: Vec::new(),
            wake_pending,
        }
    }

    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let timeout = self
                .deadlines
                .first()
                .map(|(t, _)| t.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                warn!(error = %e, "poll failed; the IO thread of the blocking clients ends");
                return;
            }
            let now = Instant::now();
            for event in events.iter() {
                let key = event.token().0;
                if event.token() == WAKE {
                    continue;
                }
                if let Some(cell) = self.sessions.get(&key) {
                    let mut s = lock(cell);
                    let now = s.tick(now);
                    if s.reading() {
                        // A caller reads this socket itself; only writing is left here.
                        s.conn.flush(now);
                    } else {
                        s.conn.handle_event(event, now);
                    }
                    touch(&mut self.touched, &mut s, key);
                }
            }
            // New requests first: what they queue leaves in this turn's write.
            // A read-modify-write, so every send that saw a wake-up pending is visible below.
            self.wake_pending.swap(false, Ordering::AcqRel);
            loop {
                match self.ops.try_recv() {
                    Ok((key, op)) => self.op(now, key, op),
                    Err(mpsc::TryRecvError::Empty) => break,
                    // The reactor lives as long as the process.
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            }
            while let Some(&(t, key)) = self.deadlines.first() {
                if t > now {
                    break;
                }
                self.deadlines.pop_first();
                if let Some(cell) = self.sessions.get(&key) {
                    let mut s = lock(cell);
                    let now = s.tick(now);
                    s.deadline = None;
                    s.conn.handle_timeout(now);
                    s.core.handle_timeout(now);
                    touch(&mut self.touched, &mut s, key);
                }
            }
            for key in std::mem::take(&mut self.touched) {
                self.settle(now, key);
            }
        }
    }

    pub(super) fn op(&mut self, now: Instant, key: usize, op: IoOp) {
        match op {
            IoOp::Open(new) => {
                {
                    let mut s = lock(&new.cell);
                    let now = s.tick(now);
                    // Readiness that came before the session was known here was dropped:
                    // look at the socket once now.
                    s.conn.kick(now);
                    touch(&mut self.touched, &mut s, key);
                }
                self.sessions.insert(key, new.cell);
            }
            IoOp::Cmd(cmd) => match self.sessions.get(&key) {
                Some(cell) => {
                    let mut s = lock(cell);
                    let now = s.tick(now);
                    s.command(now, cmd);
                    touch(&mut self.touched, &mut s, key);
                }
                // The session is over: dropping the command answers its caller (a closed
                // channel reads as a closed session), and a close is already done.
                None => {
                    if let Cmd::Close(done) | Cmd::Leave(Some(done)) = cmd {
                        let _ = done.send(());
                    }
                }
            },
        }
    }

    /// After a turn: deliver the session's events, publish its state, write what it queued
    /// and file its next deadline; or let it go if it is over.
    pub(super) fn settle(&mut self, now: Instant, key: usize) {
        let Some(cell) = self.sessions.get(&key).cloned() else {
            return;
        };
        let mut s = lock(&cell);
        let now = s.tick(now);
        s.touched = false;
        // A socket that a finished call left out of sight is watched again: this turn may
        // have sent something whose answer nobody reads otherwise.
        #[cfg(target_os = "linux")]
        if !s.reading() && s.conn.reads_paused() {
            s.conn.set_read_events(true);
        }
        s.publish();
        s.deliver(now);
        let over = s.conn.is_finished();
        if let Some(d) = s.deadline.take() {
            self.deadlines.remove(&(d, key));
        }
        if over {
            s.end();
            drop(s);
            self.sessions.remove(&key);
            return;
        }
        let next = s.next_deadline(now);
        s.deadline = next;
        if let Some(d) = next {
            self.deadlines.insert((d, key));
        }
    }
}

pub(super) fn touch(touched: &mut Vec<usize>, s: &mut SessionLoop, key: usize) {
    if !s.touched {
        s.touched = true;
        touched.push(key);
    }
}
