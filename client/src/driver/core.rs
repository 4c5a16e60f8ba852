//! What a client's handles ask of its session, and the one place every driver carries it
//! out.

use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::consts::OpCode;
use zk_proto::records::Request;
use zk_proto::session::{HostList, RequestId, SessionMetrics};

use super::{Deliver, Hosted, Link, Router, Snapshot};

/// What a client's handles ask of its session, in every driver: the driver only carries a
/// command from the caller to the loop that owns the session, and hands it to
/// [`Core::command`].
pub enum Command<D: Deliver> {
    /// A request: its outcome goes to `reply`, and the events of the watch it leaves (if
    /// any) to `watch`.
    Submit {
        /// The request.
        request: Request,
        /// Where the watch's events go.
        watch: Option<D::Watch>,
        /// Where the outcome goes.
        reply: D::Reply,
    },
    /// Credentials for this and every later connection; answered once the server took
    /// them.
    AddAuth {
        /// The scheme (`digest`, `sasl`...).
        scheme: String,
        /// The credentials, as the scheme wants them.
        credentials: Bytes,
        /// Where the outcome goes.
        reply: D::Reply,
    },
    /// Lets a watch go: its sink here, and on the server once no other watch needs it.
    ReleaseWatch(RequestId),
    /// One more listener for state changes.
    Subscribe(D::Subscriber),
    /// A new host list; answers whether the session moves.
    UpdateHosts(HostList, D::Answer<bool>),
    /// A snapshot of the session's counters.
    Metrics(D::Answer<SessionMetrics>),
    /// Why each host failed, for a connect that gave up after the time given.
    Diagnose(D::Answer<crate::Error>, Duration),
    /// Close the session now; answered once it is closed.
    Close(D::Answer<()>),
    /// Every handle is gone: close the session once the hosted machines have done what they
    /// owe the server (deleted their nodes, released their watches); answered, if asked,
    /// once it is closed.
    Leave(Option<D::Answer<()>>),
    /// Run a recipe machine beside the session.
    Host(Box<dyn Hosted>),
    /// Nothing but a turn: a hosted machine has steps waiting.
    Poke,
}

impl<D: Deliver> std::fmt::Debug for Command<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Command::Submit { request, .. } => return write!(f, "Submit({:?})", request.opcode()),
            Command::AddAuth { scheme, .. } => return write!(f, "AddAuth({scheme})"),
            Command::ReleaseWatch(id) => return write!(f, "ReleaseWatch({id:?})"),
            Command::Subscribe(_) => "Subscribe",
            Command::UpdateHosts(..) => "UpdateHosts",
            Command::Metrics(_) => "Metrics",
            Command::Diagnose(..) => "Diagnose",
            Command::Close(_) => "Close",
            Command::Leave(_) => "Leave",
            Command::Host(_) => "Host",
            Command::Poke => "Poke",
        };
        f.write_str(name)
    }
}

/// One session's driver core: the [`Router`], where results go, and the session's close.
/// A driver feeds it [`Command`]s and turns, and keeps only its socket, clock and wake-ups.
pub struct Core<D: Deliver> {
    /// Waiters, watch sinks and hosted machines.
    pub router: Router<D>,
    /// Where results go.
    pub out: D,
    close_waiters: Vec<D::Answer<()>>,
    closing: bool,
    left: bool,
    published: Option<Snapshot>,
}

impl<D: Deliver> std::fmt::Debug for Core<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("router", &self.router)
            .field("closing", &self.closing)
            .field("left", &self.left)
            .finish()
    }
}

impl<D: Deliver> Core<D> {
    /// A core that hands results to `out`.
    pub fn new(out: D) -> Core<D> {
        Core {
            router: Router::default(),
            out,
            close_waiters: Vec::new(),
            closing: false,
            left: false,
            published: None,
        }
    }

    /// The session's new [`Snapshot`] for the handles, when it moved since the last one
    /// this returned; `None` while it stands still, which costs a few comparisons and no
    /// lock, so a driver may ask after every turn.
    pub fn snapshot(&mut self, session: &zk_proto::session::Session) -> Option<Snapshot> {
        if self.published.as_ref().is_some_and(|s| s.is_of(session)) {
            return None;
        }
        let snap = Snapshot::of(session, self.published.as_ref());
        self.published = Some(snap.clone());
        Some(snap)
    }

    /// Carries out a command.
    pub fn command<L: Link>(&mut self, link: &mut L, now: Instant, command: Command<D>) {
        match command {
            Command::Submit {
                request,
                watch,
                reply,
            } => {
                let out = &mut self.out;
                self.router.submit(link, now, request, reply, watch, out);
            }
            Command::AddAuth {
                scheme,
                credentials,
                reply,
            } => match link.add_auth(now, &scheme, credentials) {
                Ok(id) => self.router.wait(id, reply, None),
                Err(e) => {
                    self.out.reply(reply, RequestId(0), Err(e));
                }
            },
            Command::ReleaseWatch(id) => self.release(link, now, id),
            Command::Subscribe(s) => self.out.subscribe(s),
            Command::UpdateHosts(hosts, to) => D::answer(to, link.update_hosts(now, hosts)),
            Command::Metrics(to) => D::answer(to, link.session().metrics()),
            Command::Diagnose(to, waited) => {
                D::answer(to, crate::Error::connect_timeout(waited, link.session()))
            }
            Command::Close(done) => {
                self.close_waiters.push(done);
                self.close(link, now);
            }
            Command::Leave(done) => {
                self.close_waiters.extend(done);
                self.left = true;
            }
            Command::Host(machine) => self.router.host(machine),
            Command::Poke => {}
        }
    }

    /// Lets watch `id` go: its sink, and the watch on the server once no other watch on its
    /// path needs it.
    pub fn release<L: Link>(&mut self, link: &mut L, now: Instant, id: RequestId) {
        if let Some(sink) = self.router.release(id) {
            self.out.watch_released(id, sink);
        }
        link.release_watch(now, id);
    }

    fn close<L: Link>(&mut self, link: &mut L, now: Instant) {
        if !self.closing {
            self.closing = true;
            link.close(now);
        }
    }

    /// The session was asked to close.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Hands the session's events on in socket order and lets the hosted machines act (see
    /// [`Router::turn`]); closes the session once every handle is gone and no machine owes
    /// the server anything. True when anything happened.
    pub fn turn<L: Link>(&mut self, link: &mut L, now: Instant) -> bool {
        let mut any = self.router.turn(link, now, &mut self.out);
        if self.left && !self.closing && self.router.hosts_nothing() {
            self.close(link, now);
            any = true;
        }
        any
    }

    /// When a hosted machine next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.router.poll_timeout()
    }

    /// Time passed for the hosted machines.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.router.handle_timeout(now);
    }

    /// The newest slow request, once per new one (see [`Router::slow`]).
    pub fn slow(
        &mut self,
        session: &zk_proto::session::Session,
    ) -> Option<(u64, OpCode, Duration)> {
        self.router.slow(session)
    }

    /// The session is over: whoever waited for the close hears it, every listener goes,
    /// and each caller still waiting for a reply comes back for the driver to wake (a
    /// dropped channel reads as a closed session).
    pub fn end(&mut self) -> impl Iterator<Item = D::Reply> + '_ {
        for w in self.close_waiters.drain(..) {
            D::answer(w, ());
        }
        self.out.end();
        self.router.end()
    }
}
