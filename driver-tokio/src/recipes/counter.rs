//! The shared counter: [`zk_recipes::counter::Counter`] driven on the connection task.

use tokio::sync::oneshot;
use zk_recipes::counter::{Counter as Machine, Outcome};

pub use zk_recipes::counter::Encoding as CounterEncoding;

use super::runner::{self, Control};
use crate::{Acl, Client, Error, Result};

/// An integer counter at one node, in Kazoo's `Counter` encoding (decimal text, the
/// default) or Curator's `SharedCount` ([`CounterEncoding::Curator`], 4 bytes big-endian).
/// Each addition is a read and a write conditional on the version read, again until no
/// one wrote in between, so concurrent additions never lose one another.
///
/// A write whose reply was lost is checked, not repeated: when others wrote meanwhile and
/// it cannot be told whether it landed, [`Counter::add`] fails with
/// [`Error::ConnectionLoss`] rather than risk counting twice. Dropping an `add` future
/// stops waiting; a write already sent may still land.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// let hits = zk_tokio::recipes::Counter::new(&client, "/stats/hits");
/// let now = hits.add(1).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Counter {
    client: Client,
    path: String,
    encoding: CounterEncoding,
    default: i64,
}

impl Counter {
    /// A counter at `path`; a missing or empty node reads as 0.
    pub fn new(client: &Client, path: &str) -> Counter {
        Counter {
            client: client.clone(),
            path: path.to_string(),
            encoding: CounterEncoding::Text,
            default: 0,
        }
    }

    zk_recipes::counter_option_setters!();

    /// The current value.
    pub async fn get(&self) -> Result<i64> {
        match self.client.get_data(&self.path).await {
            Ok((data, _)) => {
                self.encoding
                    .decode(&data, self.default)
                    .ok_or(Error::InvalidRequest(
                        "the counter node holds something that is not a number in its encoding",
                    ))
            }
            Err(e) if e.server_code() == Some(crate::ErrorCode::NoNode) => Ok(self.default),
            Err(e) => Err(e),
        }
    }

    /// Adds `delta` (negative to subtract) and returns the new value.
    pub async fn add(&self, delta: i64) -> Result<i64> {
        zk_proto::path::validate_path(&self.path)?;
        let machine = Machine::new(&self.path, self.encoding, self.default, Acl::open_unsafe());
        let (tx, rx) = oneshot::channel();
        let mut tx = Some(tx);
        let start: Control<Machine> = Box::new(move |m: &mut Machine, now| m.add(now, delta));
        let _control = runner::spawn(&self.client, machine, start, move |_m: &Machine, o| {
            if let Some(o) = o
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(o);
            }
        });
        match rx.await.map_err(|_| Error::Closed)? {
            Outcome::Added { after, .. } => Ok(after),
            Outcome::InDoubt => Err(Error::ConnectionLoss),
            Outcome::Failed(e) => Err(e.into()),
        }
    }
}
