//! A counter kept in a node's data, changed by versioned compare-and-set.

use bytes::Bytes;

use super::no_node_is_none;
use crate::{Client, CreateOptions, Error, ErrorCode, Result};

/// An integer counter at one node (its data is the decimal value).
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
}

impl Counter {
    /// A counter at `path`; a missing node reads as 0.
    pub fn new(client: &Client, path: &str) -> Counter {
        Counter {
            client: client.clone(),
            path: path.to_string(),
        }
    }

    /// The current value.
    pub async fn get(&self) -> Result<i64> {
        match no_node_is_none(self.client.get_data(&self.path).await)? {
            Some((data, _)) => parse(&data),
            None => Ok(0),
        }
    }

    /// Adds `delta` (may be negative) and returns the new value. Concurrent adds never lose
    /// an update: each write is conditional on the version it read.
    pub async fn add(&self, delta: i64) -> Result<i64> {
        loop {
            match no_node_is_none(self.client.get_data(&self.path).await)? {
                None => {
                    let value = delta;
                    if let Some(parent) = self.path.rfind('/').filter(|&i| i > 0) {
                        self.client
                            .create_all(&self.path[..parent], Bytes::new())
                            .await?;
                    }
                    match self
                        .client
                        .create(&self.path, value.to_string(), &CreateOptions::persistent())
                        .await
                    {
                        Ok(_) => return Ok(value),
                        Err(e) if e.server_code() == Some(ErrorCode::NodeExists) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Some((data, stat)) => {
                    let value = parse(&data)? + delta;
                    match self
                        .client
                        .set_data(&self.path, value.to_string(), Some(stat.version))
                        .await
                    {
                        Ok(_) => return Ok(value),
                        Err(e) if e.server_code() == Some(ErrorCode::BadVersion) => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}

fn parse(data: &[u8]) -> Result<i64> {
    if data.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(Error::UnexpectedResponse)
}
