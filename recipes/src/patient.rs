//! A node's children reported once they stop changing (Kazoo's `PatientChildrenWatch`), as
//! a sans-IO state machine over the children watch ([`crate::watch::NodeWatch`]).
//!
//! The children are followed as the watch follows them (reads after a `sync`, through
//! reconnects and new sessions); a listing is reported only once no change came for a whole
//! quiet period (`time_boundary` in Kazoo), measured on the time the driver passes in. A
//! burst of joins and leaves is reported once, at its end; each later burst once more. The
//! first report comes a quiet period after the first listing at the earliest, as in Kazoo.

use std::time::{Duration, Instant};

use zk_proto::Stat;
use zk_proto::records::Response;
use zk_proto::session::{AppState, Error as SessionError, WatchedEvent};

use crate::watch::{NodeWatch, Outcome as WatchOutcome, Target};
use crate::{Output, Recipe, Tag};

/// What the patient watch reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The children, unchanged for a whole quiet period (`None` while the node does not
    /// exist), with the node's Stat.
    Stable(Option<(Vec<String>, Stat)>),
    /// Following stopped (an invalid path, no permission, a closed session).
    Failed(SessionError),
}

/// A listing: the children with the node's Stat, `None` while the node does not exist.
type Listing = Option<(Vec<String>, Stat)>;

/// Children reported once they stop changing: see the [module](crate::patient).
#[derive(Debug)]
pub struct PatientWatch {
    watch: NodeWatch,
    quiet: Duration,
    /// The latest listing not reported yet, and when it is stable.
    pending: Option<(Listing, Instant)>,
    /// The names last reported (`Some(None)`: reported absent).
    reported: Option<Option<Vec<String>>>,
    out: std::collections::VecDeque<Output<Outcome>>,
}

impl PatientWatch {
    /// Follows `path`'s children, reporting them after `quiet` without change.
    pub fn new(path: &str, quiet: Duration) -> PatientWatch {
        PatientWatch {
            watch: NodeWatch::new(path, Target::Children),
            quiet,
            pending: None,
            reported: None,
            out: std::collections::VecDeque::new(),
        }
    }

    /// Starts following.
    pub fn start(&mut self, now: Instant) {
        self.watch.start(now);
        self.pump(now);
    }

    /// Takes the watch's outputs: requests go out as they are, listings start a quiet
    /// period.
    fn pump(&mut self, now: Instant) {
        while let Some(o) = self.watch.poll_output() {
            match o {
                Output::Submit(tag, request) => self.out.push_back(Output::Submit(tag, request)),
                Output::Outcome(WatchOutcome::Children(listing)) => {
                    // A listing the same as the one waiting (a re-read after a reconnect)
                    // does not restart the quiet period.
                    let same = self
                        .pending
                        .as_ref()
                        .is_some_and(|(l, _)| names(l) == names(&listing));
                    if !same {
                        self.pending = Some((listing, now + self.quiet));
                    }
                }
                Output::Outcome(WatchOutcome::Failed(e)) => {
                    self.pending = None;
                    self.out.push_back(Output::Outcome(Outcome::Failed(e)));
                }
                Output::Outcome(WatchOutcome::Data(_)) => {}
            }
        }
    }
}

fn names(listing: &Listing) -> Option<&Vec<String>> {
    listing.as_ref().map(|(c, _)| c)
}

impl Recipe for PatientWatch {
    type Outcome = Outcome;

    fn poll_output(&mut self) -> Option<Output<Outcome>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let mine = self.pending.as_ref().map(|(_, at)| *at);
        [mine, self.watch.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.watch.poll_timeout().is_some_and(|t| t <= now) {
            self.watch.handle_timeout(now);
            self.pump(now);
        }
        if self.pending.as_ref().is_some_and(|(_, at)| *at <= now)
            && let Some((listing, _)) = self.pending.take()
        {
            // A change undone within the quiet period leaves nothing new to report.
            let now_names = names(&listing).cloned();
            if self.reported.as_ref() != Some(&now_names) {
                self.reported = Some(now_names);
                self.out
                    .push_back(Output::Outcome(Outcome::Stable(listing)));
            }
        }
    }

    fn handle_state(&mut self, now: Instant, state: AppState, session_id: i64) {
        self.watch.handle_state(now, state, session_id);
        self.pump(now);
    }

    fn handle_reply(&mut self, now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        self.watch.handle_reply(now, tag, reply);
        self.pump(now);
    }

    fn handle_watch(&mut self, now: Instant, tag: Tag, event: &WatchedEvent) {
        self.watch.handle_watch(now, tag, event);
        self.pump(now);
    }

    fn release(&mut self, now: Instant) {
        self.pending = None;
        self.watch.release(now);
        self.pump(now);
    }

    fn is_done(&self) -> bool {
        self.watch.is_done()
    }
}
