//! Kazoo's `SetPartitioner`.

use std::sync::Arc;
use std::time::Duration;

use zk_client::Error;

use super::{Driver, Job, Steer, Watched, host};
use crate::partitioner::{Partitioner as Machine, State};

/// What the host reported of a partitioner.
struct Status {
    state: State,
    done: bool,
    ended: bool,
}

/// A set of items split among the members of a party, in Kazoo's `SetPartitioner` layout
/// (see [`crate::partitioner`]): Python services using Kazoo's partitioner and ours share
/// the work, each item held by one member at a time.
///
/// Follow [`SetPartitioner::state`] / [`SetPartitioner::changed`]: work on the items of
/// [`State::Acquired`]; on [`State::Release`], finish the work in hand and call
/// [`SetPartitioner::release_set`]; on [`State::Failure`], start a new one. Dropping it (or
/// [`SetPartitioner::finish`]) leaves the party and releases every lock, retried until the
/// server confirms.
pub struct SetPartitioner<D> {
    client: D,
    steer: Arc<Steer<Machine>>,
    status: Watched<Status>,
}

impl<D> std::fmt::Debug for SetPartitioner<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetPartitioner").finish_non_exhaustive()
    }
}

impl<D: Driver> SetPartitioner<D> {
    /// Joins the partitioner at `path` over `items` as `identifier` (unique among its
    /// members), the party settling after `quiet` without change (Kazoo's
    /// `time_boundary`). A bad path, identifier or item fails at once.
    pub fn start(
        client: &D,
        path: &str,
        items: &[&str],
        identifier: &str,
        quiet: Duration,
    ) -> zk_client::Result<SetPartitioner<D>> {
        let id = client.unique_id()?;
        let items: Vec<String> = items.iter().map(|i| i.to_string()).collect();
        let machine = Machine::new(path, &id, identifier, &items, quiet)?;
        let status = Watched::new(Status {
            state: State::Allocating,
            done: false,
            ended: false,
        });
        let report = status.clone();
        let session = client.session_id();
        let steer = host(
            &client.hosting(),
            machine,
            Box::new(move |m: &mut Machine, now| m.start(now, session)),
            move |m, states: Vec<State>| {
                report.update(|s| match m {
                    Some(m) => {
                        if let Some(last) = states.into_iter().last() {
                            s.state = last;
                        }
                        s.done = crate::Recipe::is_done(m);
                    }
                    None => {
                        s.ended = true;
                        s.state = State::Failure;
                    }
                })
            },
        );
        Ok(SetPartitioner {
            client: client.clone(),
            steer,
            status,
        })
    }

    /// Where it stands now.
    pub fn state(&self) -> State {
        self.status.read(|s| s.state.clone())
    }

    /// Waits until the state differs from `seen`, and returns it.
    pub fn changed(&self, seen: &State) -> D::Call<State> {
        let seen = seen.clone();
        let job = self
            .status
            .wait(move |s| (s.state != seen).then(|| Ok(s.state.clone())));
        self.client.call(job)
    }

    /// Waits until it holds its items ([`State::Acquired`]) and returns them; fails with
    /// [`Error::Closed`] on [`State::Failure`].
    pub fn acquired(&self) -> D::Call<Vec<String>> {
        let job = self.status.wait(|s| match &s.state {
            State::Acquired(items) => Some(Ok(items.clone())),
            State::Failure => Some(Err(Error::Closed)),
            _ => None,
        });
        self.client.call(job)
    }

    /// Like [`SetPartitioner::acquired`], waiting at most `timeout`: `None` when not
    /// acquired in time.
    pub fn acquired_timeout(&self, timeout: Duration) -> D::Call<Option<Vec<String>>> {
        let job: Job<Option<Vec<String>>> = self
            .status
            .wait(|s| match &s.state {
                State::Acquired(items) => Some(Ok(Some(items.clone()))),
                State::Failure => Some(Err(Error::Closed)),
                _ => None,
            })
            .limit(timeout, || Ok(None));
        self.client.call(job)
    }

    /// After [`State::Release`]: lets go of the items and allocates again (Kazoo's
    /// `release_set`).
    pub fn release_set(&self) {
        let _ = self
            .steer
            .send(Box::new(|m: &mut Machine, now| m.release_set(now)));
    }

    /// Leaves the party and releases every lock, and waits until the server confirmed
    /// it (at most the client's call timeout; past that it goes on in the background).
    pub fn finish(self) -> D::Call<()> {
        let _ = self.steer.send(Box::new(|m: &mut Machine, now| {
            crate::Recipe::release(m, now)
        }));
        let job = self
            .status
            .wait(|s| (s.done || s.ended).then_some(Ok(())))
            .keeping(self.steer.clone())
            .bounded();
        self.client.call(job)
    }
}
