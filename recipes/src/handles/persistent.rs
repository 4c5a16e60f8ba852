//! Nodes kept in place, and group membership: Curator's `PersistentNode`,
//! `PersistentTtlNode` and `GroupMember`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use zk_client::Error;
use zk_proto::consts::CreateMode;

use super::reads::{Listing, list};
use super::{Driver, Job, Steer, Watched, host};
use crate::persistent::{Outcome, PersistentNode as Machine, Toucher};

/// What the host reported of a kept node.
#[derive(Debug, Default)]
struct Status {
    /// How many times the node was made (created, created again, adopted).
    made: u64,
    failed: Option<Error>,
    released: bool,
    ended: bool,
}

/// A node kept in place (Curator's `PersistentNode`): created with its data, and created
/// again with its latest data whenever it goes (its session expired, someone deleted it),
/// until it is closed. An existing node at the path is adopted and given our data, as
/// Curator does. Sequential modes are refused: a kept node needs a fixed path.
///
/// Dropping it deletes the node in the background (retried until the server confirms it);
/// [`PersistentNode::close`] deletes it and waits for that. [`PersistentNode::start`] is
/// cancel safe: a call dropped at any await point leaves nothing behind.
pub struct PersistentNode<D> {
    client: D,
    path: String,
    steer: Arc<Steer<Machine>>,
    status: Watched<Status>,
    /// For a TTL-kept node: the machine that touches its child.
    toucher: Option<Arc<Steer<Toucher>>>,
}

impl<D> std::fmt::Debug for PersistentNode<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentNode")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<D: Driver> PersistentNode<D> {
    /// Keeps a node at `path` in `mode` holding `data` (with the client's default ACL, and
    /// its missing parents made), and returns once it first exists.
    pub fn start(
        client: &D,
        path: &str,
        mode: CreateMode,
        data: impl Into<Bytes>,
    ) -> D::Call<PersistentNode<D>> {
        if matches!(
            mode,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        ) {
            return client.call(Job::ready(Err(Error::InvalidRequest(
                "a node with a time to live is kept with start_ttl",
            ))));
        }
        client.call(start_job(client, path, mode, 0, data.into()))
    }

    /// Curator's `PersistentTtlNode`: a container at `path` holding `data`, kept while this
    /// handle lives by touching its child `touch` (a node with a time to live of `ttl`)
    /// every half `ttl`. Once the handle is gone the touches stop, and the server deletes
    /// the child after `ttl` and then the empty container, so a process that died without
    /// cleaning up leaves nothing for long. Closing does not delete it (the TTL does), as
    /// in Curator. Needs a server with `extendedTypesEnabled`.
    pub fn start_ttl(
        client: &D,
        path: &str,
        ttl: Duration,
        data: impl Into<Bytes>,
    ) -> D::Call<PersistentNode<D>> {
        let (client2, path2) = (client.clone(), path.to_string());
        let job = start_job(client, path, CreateMode::Container, 0, data.into()).and_then(
            move |mut node| {
                let toucher = Toucher::new(&path2, ttl, client2.default_acl());
                let steer = host(
                    &client2.hosting(),
                    toucher,
                    Box::new(|m: &mut Toucher, now| m.start(now)),
                    |_, _| {},
                );
                node.toucher = Some(steer);
                Ok(node)
            },
        );
        client.call(job)
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// How many times the node was made so far: 1 after the first creation, one more each
    /// time it was created again.
    pub fn times_made(&self) -> u64 {
        self.status.read(|s| s.made)
    }

    /// Waits until the node was made more than `seen` times (it went and came back), and
    /// returns the new count; fails once the node can no longer be kept.
    pub fn remade(&self, seen: u64) -> D::Call<u64> {
        let job = self.status.wait(move |s| {
            if let Some(e) = &s.failed {
                return Some(Err(e.clone()));
            }
            if s.ended || s.released {
                return Some(Err(Error::Closed));
            }
            (s.made > seen).then_some(Ok(s.made))
        });
        self.client.call(job)
    }

    /// Sets the node's data, now and for every later creation (Curator's `setData`).
    pub fn set_data(&self, data: impl Into<Bytes>) {
        let data = data.into();
        let _ = self
            .steer
            .send(Box::new(move |m: &mut Machine, _| m.set_data(data)));
    }

    /// Deletes the node and waits until the server confirmed it (at most the client's
    /// call timeout; past that the delete goes on in the background).
    pub fn close(self) -> D::Call<()> {
        let _ = self.steer.send(Box::new(|m: &mut Machine, now| {
            crate::Recipe::release(m, now)
        }));
        let job = self
            .status
            .wait(|s| (s.released || s.ended).then_some(Ok(())))
            .keeping(self.steer.clone())
            .bounded();
        self.client.call(job)
    }
}

pub(crate) fn start_job<D: Driver>(
    client: &D,
    path: &str,
    mode: CreateMode,
    ttl: i64,
    data: Bytes,
) -> Job<PersistentNode<D>> {
    let machine = match Machine::new(path, mode, ttl, data, client.default_acl()) {
        // A container is reaped by the server once its TTL child expired.
        Ok(m) => m.delete_on_release(mode != CreateMode::Container),
        Err(e) => return Job::ready(Err(Error::from(e).at_path(path))),
    };
    let (client, path) = (client.clone(), path.to_string());
    Job::start(move |hosting, done| {
        let status = Watched::new(Status::default());
        let report = status.clone();
        let session = hosting.session_id();
        let steer = host(
            &hosting,
            machine,
            Box::new(move |m: &mut Machine, _| m.start(session)),
            move |m, outcomes| {
                report.update(|s| match m {
                    Some(_) => {
                        for o in outcomes {
                            match o {
                                Outcome::Created(_) => s.made += 1,
                                Outcome::Failed(e) => s.failed = Some(e.into()),
                                Outcome::Released => s.released = true,
                            }
                        }
                    }
                    None => s.ended = true,
                })
            },
        );
        let weak = Arc::downgrade(&steer);
        let (kept, at) = (status.clone(), path.clone());
        status.add(
            move |s| {
                if let Some(e) = &s.failed {
                    return Some(Err(e.clone().at_path(&at)));
                }
                if s.ended {
                    return Some(Err(Error::Closed));
                }
                if s.made == 0 {
                    return None;
                }
                Some(match weak.upgrade() {
                    Some(steer) => Ok(PersistentNode {
                        client: client.clone(),
                        path: at.clone(),
                        steer,
                        status: kept.clone(),
                        toucher: None,
                    }),
                    None => Err(Error::Closed),
                })
            },
            |_, _| {},
            done,
        );
        Box::new(steer)
    })
}

/// Membership of a group (Curator's `GroupMember`): this member's node,
/// `<membership path>/<id>`, is an ephemeral [`PersistentNode`] holding its payload, so it
/// comes back after a session expires or someone deletes it; [`GroupMember::members`]
/// lists every member with its payload, Curator's members and ours alike.
#[derive(Debug)]
pub struct GroupMember<D> {
    node: PersistentNode<D>,
    membership: String,
    id: String,
    payload: std::sync::Mutex<Bytes>,
}

impl<D: Driver> GroupMember<D> {
    /// Joins the group at `membership` as `id` with `payload`; returns once the member's
    /// node exists.
    pub fn join(
        client: &D,
        membership: &str,
        id: &str,
        payload: impl Into<Bytes>,
    ) -> D::Call<GroupMember<D>> {
        let path = format!("{}/{id}", membership.trim_end_matches('/'));
        let job = if id.is_empty() || id.contains('/') {
            Job::ready(Err(Error::InvalidRequest(
                "a member's id is a node name: not empty, no '/'",
            )))
        } else {
            let (membership, id, payload) =
                (membership.to_string(), id.to_string(), payload.into());
            start_job(client, &path, CreateMode::Ephemeral, 0, payload.clone()).and_then(
                move |node| {
                    Ok(GroupMember {
                        node,
                        membership,
                        id,
                        payload: std::sync::Mutex::new(payload),
                    })
                },
            )
        };
        client.call(job)
    }

    /// This member's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Every member now, by id, with its payload (this one included, as Curator's
    /// `getCurrentMembers` does, even while its node is being made again).
    pub fn members(&self) -> D::Call<BTreeMap<String, Bytes>> {
        let id = self.id.clone();
        let mine = self.payload.lock().map(|p| p.clone()).unwrap_or_default();
        let job = list(Listing::new(&self.membership)).and_then(move |found| {
            let mut members: BTreeMap<String, Bytes> = found.into_iter().collect();
            members.entry(id).or_insert(mine);
            Ok(members)
        });
        self.node.client.call(job)
    }

    /// Sets this member's payload, now and whenever its node is made again.
    pub fn set_payload(&self, payload: impl Into<Bytes>) {
        let payload = payload.into();
        if let Ok(mut p) = self.payload.lock() {
            *p = payload.clone();
        }
        self.node.set_data(payload);
    }

    /// The kept node under this membership.
    pub fn node(&self) -> &PersistentNode<D> {
        &self.node
    }

    /// Leaves the group: deletes this member's node and waits for the server's
    /// confirmation. Dropping the member leaves too, in the background.
    pub fn leave(self) -> D::Call<()> {
        self.node.close()
    }
}
