//! A lease: one holder at a time for a duration, without waiting (Kazoo's NonBlockingLease).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::no_node_is_none;
use crate::{Client, CreateOptions, ErrorCode, Result};

/// A time-limited lease on one node. The node's data names the holder and when the lease
/// ends (milliseconds since the Unix epoch, by the holders' clocks, which must roughly agree).
/// Obtaining never waits: it succeeds when the lease is free, expired, or already ours.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use std::time::Duration;
/// use zk_tokio::recipes::Lease;
/// let lease = Lease::new(&client, "/leases/report", "host-a");
/// if lease.obtain(Duration::from_secs(60)).await? {
///     // ... this host produces the report for the next minute ...
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Lease {
    client: Client,
    path: String,
    holder: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Lease {
    /// A lease at `path` for `holder` (a name unique among the contenders).
    pub fn new(client: &Client, path: &str, holder: &str) -> Lease {
        Lease {
            client: client.clone(),
            path: path.to_string(),
            holder: holder.to_string(),
        }
    }

    fn data(&self, until: u64) -> Bytes {
        Bytes::from(format!("{}\n{until}", self.holder))
    }

    /// Takes or renews the lease for `duration`; `false` while somebody else holds it.
    pub async fn obtain(&self, duration: Duration) -> Result<bool> {
        let until = now_ms() + duration.as_millis() as u64;
        loop {
            match no_node_is_none(self.client.get_data(&self.path).await)? {
                None => {
                    if let Some(i) = self.path.rfind('/').filter(|&i| i > 0) {
                        self.client
                            .create_all(&self.path[..i], Bytes::new())
                            .await?;
                    }
                    match self
                        .client
                        .create(&self.path, self.data(until), &CreateOptions::persistent())
                        .await
                    {
                        Ok(_) => return Ok(true),
                        Err(e) if e.server_code() == Some(ErrorCode::NodeExists) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Some((data, stat)) => {
                    let text = String::from_utf8_lossy(&data);
                    let (holder, ends) = text.split_once('\n').unwrap_or(("", "0"));
                    let ends: u64 = ends.trim().parse().unwrap_or(0);
                    if holder != self.holder && ends > now_ms() {
                        return Ok(false);
                    }
                    return match self
                        .client
                        .set_data(&self.path, self.data(until), Some(stat.version))
                        .await
                    {
                        Ok(_) => Ok(true),
                        Err(e) if e.server_code() == Some(ErrorCode::BadVersion) => Ok(false),
                        Err(e) => Err(e),
                    };
                }
            }
        }
    }

    /// The current holder, if the lease has not expired.
    pub async fn holder(&self) -> Result<Option<String>> {
        let Some((data, _)) = no_node_is_none(self.client.get_data(&self.path).await)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&data);
        let (holder, ends) = text.split_once('\n').unwrap_or(("", "0"));
        Ok((ends.trim().parse::<u64>().unwrap_or(0) > now_ms()).then(|| holder.to_string()))
    }
}
