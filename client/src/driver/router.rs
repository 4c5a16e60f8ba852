//! The routing of a session's events between reply waiters, watch sinks and hosted
//! machines.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use zk_proto::consts::OpCode;
use zk_proto::records::Request;
use zk_proto::session::{Event, RequestId, Session};

use super::{Deliver, Hosted, Link, Machines};

/// The waiters, watch sinks and hosted machines of one session, and the routing of its
/// events between them.
pub struct Router<D: Deliver> {
    waiters: HashMap<RequestId, (D::Reply, Option<D::Watch>)>,
    watchers: HashMap<RequestId, (D::Watch, bool)>,
    hosted: Machines,
    slow_told: u64,
}

impl<D: Deliver> Default for Router<D> {
    fn default() -> Self {
        Router {
            waiters: HashMap::new(),
            watchers: HashMap::new(),
            hosted: Machines::default(),
            slow_told: 0,
        }
    }
}

impl<D: Deliver> std::fmt::Debug for Router<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("waiters", &self.waiters.len())
            .field("watchers", &self.watchers.len())
            .field("hosted", &self.hosted)
            .finish()
    }
}

impl<D: Deliver> Router<D> {
    /// Submits `request` for a caller: its outcome goes to `reply`, its watch's events (if
    /// it leaves one) to `watch`. A request the session refuses is answered at once.
    pub fn submit<L: Link>(
        &mut self,
        link: &mut L,
        now: Instant,
        request: Request,
        reply: D::Reply,
        watch: Option<D::Watch>,
        out: &mut D,
    ) -> Option<RequestId> {
        match link.submit(now, request) {
            Ok(id) => {
                self.wait(id, reply, watch);
                Some(id)
            }
            Err(e) => {
                out.reply(reply, RequestId(0), Err(e));
                None
            }
        }
    }

    /// Files a caller for request `id`, submitted by other means (a login, a caller that
    /// wrote its own request).
    pub fn wait(&mut self, id: RequestId, reply: D::Reply, watch: Option<D::Watch>) {
        self.waiters.insert(id, (reply, watch));
    }

    /// Whether a caller still waits for request `id`.
    pub fn waits_for(&self, id: RequestId) -> bool {
        self.waiters.contains_key(&id)
    }

    /// Stops waiting for request `id` (its caller gave up); its reply, should it come, is
    /// dropped.
    pub fn abandon(&mut self, id: RequestId) -> Option<D::Reply> {
        self.waiters.remove(&id).map(|(reply, _)| reply)
    }

    /// Forgets watch `id`'s sink (its holder let it go); the driver then asks the session
    /// to release the watch on the server. The sink comes back, if there was one.
    pub fn release(&mut self, id: RequestId) -> Option<D::Watch> {
        self.watchers.remove(&id).map(|(sink, _)| sink)
    }

    /// Hosts a recipe machine beside the session.
    pub fn host(&mut self, machine: Box<dyn Hosted>) {
        self.hosted.add(machine);
    }

    /// No machine is hosted.
    pub fn hosts_nothing(&self) -> bool {
        self.hosted.is_empty()
    }

    /// No caller waits and no watch has a sink: nothing the server sends unasked has
    /// anywhere to go.
    pub fn is_quiet(&self) -> bool {
        self.waiters.is_empty() && self.watchers.is_empty()
    }

    /// When a hosted machine next has work.
    #[inline]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.hosted.poll_timeout()
    }

    /// Time passed for the hosted machines.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.hosted.handle_timeout(now);
    }

    /// Hands every event the session has to the hosted machines first, in order, and the
    /// rest to the callers through `out`; then lets the machines submit, and again, until
    /// nothing more happens. True when anything happened.
    pub fn turn<L: Link>(&mut self, link: &mut L, now: Instant, out: &mut D) -> bool {
        if !self.hosted.is_empty() {
            return self.turn_hosting(link, now, out);
        }
        // Nothing hosted: every event is the callers'.
        let mut any = false;
        while let Some(event) = link.poll_event() {
            any = true;
            self.dispatch(now, event, link, out);
        }
        any
    }

    /// [`Router::turn`] with machines to offer events to and to step.
    #[inline(never)]
    fn turn_hosting<L: Link>(&mut self, link: &mut L, now: Instant, out: &mut D) -> bool {
        let mut any = false;
        loop {
            let session_id = link.session().session_id();
            let mut more = false;
            while let Some(event) = link.poll_event() {
                more = true;
                if let Some(event) = self.hosted.offer(now, event, session_id) {
                    self.dispatch(now, event, link, out);
                }
            }
            let mut released = Vec::new();
            self.hosted
                .step(now, &mut |request| link.submit(now, request), &mut |id| {
                    released.push(id)
                });
            for id in released {
                link.release_watch(now, id);
            }
            if !more {
                return any;
            }
            any = true;
        }
    }

    fn dispatch<L: Link>(&mut self, now: Instant, event: Event, link: &mut L, out: &mut D) {
        match event {
            Event::Complete { id, result, watch } => match self.waiters.remove(&id) {
                Some((reply, sink)) => {
                    let heard = out.reply(reply, id, result);
                    match (sink, watch) {
                        (Some(sink), Some(kind)) if heard => {
                            let sink = out.watch_set(id, sink);
                            self.watchers.insert(id, (sink, kind.is_one_shot()));
                        }
                        // The caller gave up before the reply (a call that timed out or
                        // was dropped): nobody will hear the watch it set, or release it.
                        (_, Some(_)) => link.release_watch(now, id),
                        _ => {}
                    }
                }
                None if watch.is_some() => link.release_watch(now, id),
                None => {}
            },
            Event::Watch(ev) => {
                let id = ev.watch;
                let Some((sink, one_shot)) = self.watchers.get_mut(&id) else {
                    return;
                };
                let last = *one_shot || ev.is_final();
                let heard = out.watch_event(sink, ev, last);
                if heard && !last {
                    return;
                }
                self.watchers.remove(&id);
                if !heard && !last {
                    // Its listener is gone without releasing it: release it for them.
                    link.release_watch(now, id);
                }
            }
            state @ (Event::State { .. } | Event::App(_)) => out.state(state, link.session()),
        }
    }

    /// Lets everything go (the session is over): each waiting caller's reply comes back
    /// for the driver to wake, and every hosted machine's report hears `None`.
    pub fn end(&mut self) -> impl Iterator<Item = D::Reply> + '_ {
        self.watchers.clear();
        self.hosted.clear();
        self.waiters.drain().map(|(_, (reply, _))| reply)
    }

    /// The newest slow request (its operation and round trip) and how many there were so
    /// far, once per new one.
    pub fn slow(&mut self, session: &Session) -> Option<(u64, OpCode, Duration)> {
        match session.slow_requests() {
            (count, Some((op, latency))) if count > self.slow_told => {
                self.slow_told = count;
                Some((count, op, latency))
            }
            _ => None,
        }
    }
}
