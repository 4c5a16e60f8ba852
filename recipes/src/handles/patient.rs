//! Kazoo's `PatientChildrenWatch`: a node's children once they stop changing.

use std::sync::Arc;
use std::time::Duration;

use zk_client::{Error, Result};

use super::watch::Node;
use super::{Driver, Steer, Watched, host};
use crate::patient::{Outcome, PatientWatch};

/// The latest stable listing not taken yet, and whether the watch ended.
struct Latest {
    value: Option<Result<Node<Vec<String>>>>,
    ended: bool,
}

/// A node's children, reported once they have not changed for a quiet period (Kazoo's
/// `PatientChildrenWatch` and its `time_boundary`): a burst of members joining or leaving
/// is reported once, at its end. The first report comes a quiet period after the watch
/// starts at the earliest. Read it with [`PatientChildrenWatch::next`] (cancel safe: a call
/// dropped before its value was delivered leaves it for the next one). Dropping the watch
/// stops it and releases its watch on the server.
pub struct PatientChildrenWatch<D> {
    client: D,
    latest: Watched<Latest>,
    _steer: Arc<Steer<PatientWatch>>,
}

impl<D> std::fmt::Debug for PatientChildrenWatch<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientChildrenWatch")
            .finish_non_exhaustive()
    }
}

impl<D: Driver> PatientChildrenWatch<D> {
    /// Follows `path`'s children, reporting them after `quiet` without change.
    pub fn new(client: &D, path: &str, quiet: Duration) -> PatientChildrenWatch<D> {
        let latest = Watched::new(Latest {
            value: None,
            ended: false,
        });
        let report = latest.clone();
        let steer = host(
            &client.hosting(),
            PatientWatch::new(path, quiet),
            Box::new(|m: &mut PatientWatch, now| m.start(now)),
            move |m, outcomes: Vec<Outcome>| {
                report.update(|l| match m {
                    Some(_) => {
                        for o in outcomes {
                            l.value = Some(match o {
                                Outcome::Stable(listing) => Ok(listing.into()),
                                Outcome::Failed(e) => Err(e.into()),
                            });
                        }
                    }
                    None => l.ended = true,
                })
            },
        );
        PatientChildrenWatch {
            client: client.clone(),
            latest,
            _steer: steer,
        }
    }

    fn next_job(&self) -> super::Job<Node<Vec<String>>> {
        self.latest.wait_or_restore(
            |l| match l.value.take() {
                Some(r) => {
                    if r.is_err() {
                        l.ended = true;
                    }
                    Some(r)
                }
                None => l.ended.then_some(Err(Error::Closed)),
            },
            |l, back| {
                if l.value.is_none()
                    && let Ok(node) = back
                {
                    l.value = Some(Ok(node));
                }
            },
        )
    }

    /// The next stable listing (the latest, if several came since the last call).
    pub fn next(&self) -> D::Call<Node<Vec<String>>> {
        self.client.call(self.next_job())
    }

    /// Like [`PatientChildrenWatch::next`], waiting at most `timeout`: `None` when no
    /// stable listing came in time.
    pub fn next_timeout(&self, timeout: Duration) -> D::Call<Option<Node<Vec<String>>>> {
        let job = self
            .next_job()
            .and_then(|n| Ok(Some(n)))
            .limit(timeout, || Ok(None));
        self.client.call(job)
    }
}
