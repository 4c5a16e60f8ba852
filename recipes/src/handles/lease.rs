//! The lease's handle.

use std::time::Duration;

use zk_client::Error;
use zk_proto::records::Acl;

use super::reads::read_each;
use super::{Driver, Job, run_machine};
use crate::lease::{Lease as Machine, Options, Outcome, live_holder};

/// A time-limited lease that never waits (Kazoo's `NonBlockingLease`, or with
/// [`Lease::multi`] its `MultiNonBlockingLease`): obtaining succeeds when the lease is
/// free, ended, or already held by the same identifier (a renewal), and returns `false`
/// otherwise. The lease lives at `<path>/lease_holder` in Kazoo's JSON and is only read
/// and written under Kazoo's lock on `<path>`, so Python services using Kazoo's lease and
/// this one share it safely. Ends are wall-clock times (UTC, to the second): the holders'
/// clocks must roughly agree.
///
/// **Cancel safety.** Dropping an `obtain` call is correct at any point: the lock it took
/// is released in the background (retried until the server confirms it). A write of the
/// lease node already sent may still land, as the lease's own data.
#[derive(Debug, Clone)]
pub struct Lease<D> {
    client: D,
    options: Options,
}

impl<D: Driver> Lease<D> {
    /// The lease at `path`, obtained as `identifier` (unique among the contenders; reuse
    /// it to renew).
    pub fn new(client: &D, path: &str, identifier: &str) -> Lease<D> {
        Lease {
            client: client.clone(),
            options: Options::new(path, identifier),
        }
    }

    /// Kazoo's `MultiNonBlockingLease`: one of `count` leases at `<path>/0` to
    /// `<path>/<count - 1>`, the first free one taken.
    pub fn multi(client: &D, path: &str, count: u32, identifier: &str) -> Lease<D> {
        Lease {
            client: client.clone(),
            options: Options::multi(path, count, identifier),
        }
    }

    /// Takes or renews the lease for `duration`; `false` while another identifier holds
    /// it (every one of them, for a multi-lease).
    pub fn obtain(&self, duration: Duration) -> D::Call<bool> {
        self.client
            .call(self.obtain_job(duration).and_then(|p| Ok(p.is_some())))
    }

    /// Like [`Lease::obtain`], with the path of the lease taken.
    pub fn obtain_path(&self, duration: Duration) -> D::Call<Option<String>> {
        self.client.call(self.obtain_job(duration))
    }

    fn obtain_job(&self, duration: Duration) -> Job<Option<String>> {
        let machine = self.client.unique_id().and_then(|id| {
            self.options
                .machine(&id, Acl::open_unsafe())
                .map_err(Error::from)
        });
        let machine = match machine {
            Ok(m) => m,
            Err(e) => return Job::ready(Err(e)),
        };
        let session = self.client.session_id();
        let wall = self.client.wall_clock();
        let start = Box::new(move |m: &mut Machine, now| m.obtain(now, session, wall, duration));
        run_machine(machine, start, |o, _| {
            Some(match o {
                Outcome::Obtained { path } => Ok(Some(path)),
                Outcome::Refused => Ok(None),
                Outcome::Failed(e) => Err(e.into()),
            })
        })
        .bounded()
    }

    /// The holder of each lease whose end has not passed, by the local clock: one entry
    /// for a lease, `count` for a multi-lease.
    pub fn holders(&self) -> D::Call<Vec<Option<String>>> {
        let client = self.client.clone();
        let job = read_each(self.options.holder_paths()).and_then(move |found| {
            let wall = client.wall_clock();
            Ok(found
                .into_iter()
                .map(|data| data.and_then(|d| live_holder(&d, wall)))
                .collect())
        });
        self.client.call(job)
    }

    /// The holder of the lease (the first one, for a multi-lease), if its end has not
    /// passed.
    pub fn holder(&self) -> D::Call<Option<String>> {
        let client = self.client.clone();
        let first = self.options.holder_paths().into_iter().take(1).collect();
        let job = read_each(first).and_then(move |found| {
            let wall = client.wall_clock();
            Ok(found
                .into_iter()
                .next()
                .flatten()
                .and_then(|d| live_holder(&d, wall)))
        });
        self.client.call(job)
    }
}
