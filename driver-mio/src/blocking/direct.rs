//! The direct path: on Linux, a caller on a connected session writes its request and
//! reads its reply itself, so the IO thread need not wake for a call.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use zk_client::{Error, Result};
use zk_proto::records::*;
use zk_proto::session::{self, RequestId};

use super::client::*;
use super::reactor::*;
use super::session_loop::*;

impl Client {
    /// Submits a request and waits for its outcome.
    ///
    /// While the session is connected over a healthy link, the caller does the IO itself:
    /// it writes its request and, if no other caller of the session is reading, reads the
    /// socket until its reply is in, acting on everything else that arrives (other
    /// callers' replies, watch events, pings) as the IO thread would. The IO thread then
    /// never wakes for the call, which is most of what a blocking call costs. Otherwise
    /// (connecting, TLS handshakes, read-only probes, hosted recipes, a closing session)
    /// the IO thread carries the request.
    pub(super) fn submit(
        &self,
        request: Request,
        watch: Option<Sink>,
    ) -> Result<(RequestId, Reply)> {
        let deadline = Instant::now() + self.call_timeout;
        #[cfg(target_os = "linux")]
        let (request, watch) = {
            let mut s = lock(&self.shared.cell);
            if s.direct() {
                let now = s.tick(Instant::now());
                let id = match s.conn.submit(now, request) {
                    Ok(id) => id,
                    Err(e) => return Ok((RequestId(0), Err(e))),
                };
                s.core
                    .router
                    .wait(id, Waiter::Parked(thread::current()), watch);
                s.conn.flush(now);
                // What the write itself decided (a failed link, a frame too large) is
                // answered now, not at the IO thread's next turn; a write that decided
                // nothing costs no turn.
                if s.conn.session().has_events() {
                    s.turn_here(now);
                }
                return self.await_parked(s, id, deadline);
            }
            (request, watch)
        };
        let (tx, rx) = mpsc::channel();
        if !self.shared.send(Cmd::Submit {
            request,
            watch,
            reply: Waiter::Channel(tx),
        }) {
            return Ok((RequestId(0), Err(session::Error::Closed)));
        }
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(r) => Ok(r),
            Err(RecvTimeoutError::Timeout) => Err(Error::CallTimeout(self.call_timeout)),
            Err(RecvTimeoutError::Disconnected) => Ok((RequestId(0), Err(session::Error::Closed))),
        }
    }

    /// Waits for the outcome of request `id`, submitted by this thread: reads the socket
    /// itself whenever it can (no one else reads and the link is healthy), and otherwise
    /// parks until whoever reads delivers it.
    #[cfg(target_os = "linux")]
    pub(super) fn await_parked<'a>(
        &'a self,
        mut s: std::sync::MutexGuard<'a, SessionLoop>,
        id: RequestId,
        deadline: Instant,
    ) -> Result<(RequestId, Reply)> {
        loop {
            if let Some(r) = s.core.out.arrived.remove(&id) {
                return Ok((id, r));
            }
            if s.ended || !s.core.router.waits_for(id) {
                return Ok((id, Err(session::Error::Closed)));
            }
            if Instant::now() >= deadline {
                s.core.router.abandon(id);
                return Err(Error::CallTimeout(self.call_timeout));
            }
            if !s.reading() && s.direct() {
                s = self.read_until(s, id, deadline);
                continue;
            }
            drop(s);
            thread::park_timeout(deadline.saturating_duration_since(Instant::now()));
            s = lock(&self.shared.cell);
        }
    }

    /// Reads the session's socket on this thread until the outcome of `id` is in, the
    /// link changes (the IO thread carries on then), or `deadline` passes. Timers due
    /// meanwhile run here too.
    #[cfg(target_os = "linux")]
    pub(super) fn read_until<'a>(
        &'a self,
        mut s: std::sync::MutexGuard<'a, SessionLoop>,
        id: RequestId,
        deadline: Instant,
    ) -> std::sync::MutexGuard<'a, SessionLoop> {
        /// The longest sleep between looks at the session, should a wake-up go astray.
        const SLICE: Duration = Duration::from_millis(200);
        let Some((_, generation)) = s.conn.direct_fd() else {
            return s;
        };
        s.reading = Some(generation);
        s.conn.set_read_events(false);
        loop {
            let now = s.tick(Instant::now());
            let fd = match s.conn.direct_fd() {
                Some((fd, g))
                    if g == generation
                        && !s.ended
                        && !s.core.is_closing()
                        && now < deadline
                        && !s.core.out.arrived.contains_key(&id) =>
                {
                    fd
                }
                // Done, out of time, or the link changed: the IO thread carries on.
                _ => return self.stop_reading(s, generation),
            };
            let timer = s.conn.poll_timeout();
            if timer.is_some_and(|t| t <= now) {
                s.conn.handle_timeout(now);
                s.turn_here(now);
                continue;
            }
            let until = timer.unwrap_or(deadline).min(deadline).min(now + SLICE);
            drop(s);
            wait_readable(fd, until.saturating_duration_since(now));
            s = lock(&self.shared.cell);
            if s.conn.generation() == generation && !s.ended {
                let now = s.tick(Instant::now());
                s.conn.read_direct(now);
                s.turn_here(now);
            }
        }
    }

    /// Hands reading back to the IO thread, and gives it a turn when it has to act on
    /// something sooner than it planned (or the link changed while this thread read).
    #[cfg(target_os = "linux")]
    pub(super) fn stop_reading<'a>(
        &'a self,
        mut s: std::sync::MutexGuard<'a, SessionLoop>,
        generation: u64,
    ) -> std::sync::MutexGuard<'a, SessionLoop> {
        // Another caller may read a newer socket already: only this one's mark goes.
        if s.reading == Some(generation) {
            s.reading = None;
        }
        let same_link = s.conn.generation() == generation;
        // With nothing that could arrive unasked (no watch, no reply owed, no one else
        // waiting), the socket stays out of the IO thread's sight until the next call or
        // the IO thread's next turn for the session; a server's close still wakes it.
        // Sequential calls then cost no `epoll_ctl` each.
        if same_link && !s.quiet() {
            s.conn.set_read_events(true);
        }
        let filed = s.deadline;
        let turn = !same_link
            || s.ended
            || s.conn.is_finished()
            || s.conn
                .poll_timeout()
                .is_some_and(|t| filed.is_none_or(|f| t < f));
        if turn {
            self.shared.send(Cmd::Poke);
        }
        s
    }
}

/// Sleeps until `fd` is readable (or hung up), at most `timeout`.
#[cfg(target_os = "linux")]
pub(super) fn wait_readable(fd: std::os::fd::RawFd, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd for the length given. An fd closed meanwhile by another
    // thread only makes this return early or late; the caller checks the session after.
    unsafe {
        libc::poll(&mut pfd, 1, ms);
    }
}
