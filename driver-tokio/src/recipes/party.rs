//! Party membership: [`zk_recipes::party::Party`] driven on the connection task, like the
//! lock.

use tokio::time::Instant;
use zk_recipes::party::{Party as Machine, Style};

use super::lock::{Guard, acquire_with};
use super::unique_id;
use crate::{Acl, Client, Error, ErrorCode, Result};

/// Being a member of a [`Party`]. Dropping it leaves (in the background, the node deleted
/// until the server confirms it); `release` leaves and waits for that; `state` says
/// whether the membership is held, suspended or gone with the session.
pub type Membership = Guard<Machine>;

/// A party, Kazoo's `Party` (identifiers in the members' data) or, with
/// [`Party::shallow`], `ShallowParty` (identifiers in the names): who is present, each
/// member an ephemeral node. Joining is cancel-safe and idempotent: a lost reply or a
/// dropped future never leaves a second node for the same member.
///
/// ```no_run
/// # async fn demo(client: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use zk_tokio::recipes::Party;
/// let party = Party::new(&client, "/workers", "worker-7");
/// let membership = party.join().await?;
/// println!("{} present", party.len().await?);
/// membership.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Party {
    client: Client,
    path: String,
    identifier: String,
    style: Style,
}

impl Party {
    /// A party at `path`, where this process is known as `identifier`.
    pub fn new(client: &Client, path: &str, identifier: impl Into<String>) -> Party {
        Party {
            client: client.clone(),
            path: path.to_string(),
            identifier: identifier.into(),
            style: Style::Party,
        }
    }

    /// Kazoo's `ShallowParty` layout: the identifier in the node name (it must then be a
    /// valid node name), one listing for every identifier.
    pub fn shallow(mut self) -> Party {
        self.style = Style::Shallow;
        self
    }

    /// Joins the party and waits until the server has the member's node.
    pub async fn join(&self) -> Result<Membership> {
        zk_proto::path::validate_path(&self.path)?;
        let machine = Machine::new(
            &self.path,
            &unique_id()?,
            &self.identifier,
            self.style,
            Acl::open_unsafe(),
        );
        acquire_with(&self.client, machine, None::<Instant>)
            .await?
            .ok_or(Error::UnexpectedResponse)
    }

    /// The identifiers of the members present.
    pub async fn members(&self) -> Result<Vec<String>> {
        let children = match self.client.get_children(&self.path).await {
            Ok(c) => c,
            Err(e) if e.server_code() == Some(ErrorCode::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for child in children {
            let Some(member) = self.style.member_of(&child) else {
                continue;
            };
            match self.style {
                Style::Shallow => out.push(member.to_string()),
                Style::Party => match self
                    .client
                    .get_data(&format!("{}/{child}", self.path))
                    .await
                {
                    Ok((data, _)) => out.push(String::from_utf8_lossy(&data).into_owned()),
                    Err(e) if e.server_code() == Some(ErrorCode::NoNode) => {}
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(out)
    }

    /// How many members are present.
    pub async fn len(&self) -> Result<usize> {
        let children = match self.client.get_children(&self.path).await {
            Ok(c) => c,
            Err(e) if e.server_code() == Some(ErrorCode::NoNode) => return Ok(0),
            Err(e) => return Err(e),
        };
        Ok(children
            .iter()
            .filter(|c| self.style.member_of(c).is_some())
            .count())
    }

    /// Whether no member is present.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }
}
