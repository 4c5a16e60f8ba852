//! The shared counter's handle.

use zk_client::{Error, op};
use zk_proto::error::ErrorCode;
use zk_proto::records::Acl;

use super::{Driver, hosted};
use crate::counter::{Counter as Machine, Encoding, Outcome};

/// An integer counter at one node, in Kazoo's `Counter` encoding (decimal text, the
/// default) or Curator's `SharedCount` ([`Encoding::Curator`], 4 bytes big-endian).
/// Each addition is a read and a write conditional on the version read, again until no
/// one wrote in between, so concurrent additions never lose one another.
///
/// A write whose reply was lost is checked, not repeated: when others wrote meanwhile and
/// it cannot be told whether it landed, [`Counter::add`] fails with
/// [`Error::ConnectionLoss`] rather than risk counting twice. Dropping an `add` call stops
/// waiting; a write already sent may still land.
#[derive(Debug, Clone)]
pub struct Counter<D> {
    client: D,
    path: String,
    encoding: Encoding,
    default: i64,
}

impl<D: Driver> Counter<D> {
    /// A counter at `path`; a missing or empty node reads as 0.
    pub fn new(client: &D, path: &str) -> Counter<D> {
        Counter {
            client: client.clone(),
            path: path.to_string(),
            encoding: Encoding::Text,
            default: 0,
        }
    }

    crate::counter_option_setters!();

    /// The current value.
    pub fn get(&self) -> D::Call<i64> {
        let (encoding, default) = (self.encoding, self.default);
        let read = op::get_data(&self.path, false);
        self.client
            .call(super::Job::op(read).then(move |r| match r {
                Ok((data, _)) => encoding.decode(&data, default).ok_or(Error::InvalidRequest(
                    "the counter node holds something that is not a number in its encoding",
                )),
                Err(e) if e.server_code() == Some(ErrorCode::NoNode) => Ok(default),
                Err(e) => Err(e),
            }))
    }

    /// Adds `delta` (negative to subtract) and returns the new value; waits at most the
    /// client's call timeout (the addition may still land after [`Error::CallTimeout`]).
    pub fn add(&self, delta: i64) -> D::Call<i64> {
        if let Err(e) = zk_proto::path::validate_path(&self.path) {
            return self.client.call(super::Job::ready(Err(e.into())));
        }
        let machine = Machine::new(&self.path, self.encoding, self.default, Acl::open_unsafe());
        let job = hosted(
            machine,
            Box::new(move |m: &mut Machine, now| m.add(now, delta)),
            |_, outcome, _| {
                Some(match outcome? {
                    Outcome::Added { after, .. } => Ok(after),
                    Outcome::InDoubt => Err(Error::ConnectionLoss),
                    Outcome::Failed(e) => Err(e.into()),
                })
            },
        );
        self.client.call(job.bounded())
    }
}
