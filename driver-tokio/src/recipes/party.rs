//! A party: members announce themselves with ephemeral nodes and list each other.

use bytes::Bytes;

use super::{delete_quietly, no_node_is_none, unique_id};
use crate::{Client, CreateOptions, Result};

/// Group membership: [`Party::join`] adds this member (until [`Party::leave`] or the end of
/// the session), [`Party::members`] lists everyone's data.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::Party;
/// let mut party = Party::new(&client, "/parties/cache-nodes", "10.0.0.7:11211");
/// party.join().await?;
/// println!("members: {:?}", party.members().await?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Party {
    client: Client,
    path: String,
    data: Bytes,
    node: Option<String>,
}

impl Party {
    /// A party at `path`; `data` identifies this member.
    pub fn new(client: &Client, path: &str, data: impl Into<Bytes>) -> Party {
        Party {
            client: client.clone(),
            path: path.to_string(),
            data: data.into(),
            node: None,
        }
    }

    /// Joins (once; joining again is a no-op).
    pub async fn join(&mut self) -> Result<()> {
        if self.node.is_some() {
            return Ok(());
        }
        self.client.create_all(&self.path, Bytes::new()).await?;
        let node = self
            .client
            .create(
                &format!("{}/{}", self.path, unique_id()),
                self.data.clone(),
                &CreateOptions::ephemeral(),
            )
            .await?;
        self.node = Some(node);
        Ok(())
    }

    /// Leaves.
    pub async fn leave(&mut self) -> Result<()> {
        if let Some(node) = self.node.take() {
            delete_quietly(&self.client, &node).await?;
        }
        Ok(())
    }

    /// Every member's data.
    pub async fn members(&self) -> Result<Vec<Bytes>> {
        let children =
            no_node_is_none(self.client.get_children(&self.path).await)?.unwrap_or_default();
        let mut out = Vec::with_capacity(children.len());
        for c in children {
            if let Some((data, _)) =
                no_node_is_none(self.client.get_data(&format!("{}/{c}", self.path)).await)?
            {
                out.push(data);
            }
        }
        Ok(out)
    }

    /// The number of members.
    pub async fn len(&self) -> Result<usize> {
        Ok(no_node_is_none(self.client.get_children(&self.path).await)?.map_or(0, |c| c.len()))
    }

    /// Whether nobody is in the party.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }
}
