//! Operations that take several requests, as small state machines every driver runs the
//! same way: ask for the next request, hand back its reply, until the plan is done.
//!
//! ```
//! use zk_client::plan::{CreateAll, Plan};
//! use zk_proto::records::{CreateResponse, Response};
//!
//! let mut plan = CreateAll::new("/a/b", bytes::Bytes::new(), &zk_proto::records::Acl::open_unsafe());
//! let mut created = Vec::new();
//! while let Some(request) = plan.next_request() {
//!     // A driver submits `request` to its session; here every create succeeds.
//!     created.push(request.path().unwrap().to_string());
//!     let path = created.last().unwrap().clone();
//!     plan.complete(Ok(Response::Create(CreateResponse { path }))).unwrap();
//! }
//! assert_eq!(created, ["/a", "/a/b"]);
//! assert!(plan.finish().is_ok());
//! ```

use bytes::Bytes;

use super::{CreateOptions, Reply, Result, op, reply};
use zk_proto::error::ErrorCode;
use zk_proto::records::{Acl, Request};

/// A multi-step operation: requests one at a time, each decided by the replies before it.
pub trait Plan {
    /// What the plan yields once done.
    type Output;

    /// The next request to submit, or `None` when the plan is done.
    fn next_request(&mut self) -> Option<Request>;

    /// The reply to the request last given out. An error ends the plan with it.
    fn complete(&mut self, reply: Reply) -> Result<()>;

    /// The outcome, once [`Plan::next_request`] returned `None`.
    fn finish(self) -> Result<Self::Output>;
}

/// `create_all`: every missing parent as a persistent node, then the node itself with
/// `data`; nodes that exist already are fine.
#[derive(Debug)]
pub struct CreateAll {
    steps: Vec<String>,
    data: Bytes,
    acl: Vec<Acl>,
    next: usize,
}

impl CreateAll {
    /// A plan for `path`, creating with `acl`.
    pub fn new(path: &str, data: Bytes, acl: &[Acl]) -> Self {
        CreateAll {
            steps: op::create_all_steps(path).map(str::to_owned).collect(),
            data,
            acl: acl.to_vec(),
            next: 0,
        }
    }
}

impl Plan for CreateAll {
    type Output = ();

    fn next_request(&mut self) -> Option<Request> {
        let path = self.steps.get(self.next)?;
        let last = self.next + 1 == self.steps.len();
        // The data goes to the last node only.
        let data = if last {
            self.data.clone()
        } else {
            Bytes::new()
        };
        self.next += 1;
        let persistent = CreateOptions::persistent();
        Some(
            op::create(path, data, &persistent, &self.acl)
                .into_parts()
                .0,
        )
    }

    fn complete(&mut self, reply: Reply) -> Result<()> {
        match reply::created(reply) {
            Err(e) if e.server_code() != Some(ErrorCode::NodeExists) => Err(e),
            _ => Ok(()),
        }
    }

    fn finish(self) -> Result<()> {
        Ok(())
    }
}

/// `delete_all`: the node and everything under it, deepest first. Nodes that vanish
/// meanwhile are fine; a node that gains a child meanwhile is listed again.
#[derive(Debug)]
pub struct DeleteAll {
    /// Paths still to handle, and whether their children were listed since they were
    /// pushed.
    stack: Vec<(String, bool)>,
    /// The request given out last: a listing of, or a deletion of, this path.
    pending: Option<(String, bool)>,
    deleted: usize,
}

impl DeleteAll {
    /// A plan for `path` and its subtree.
    pub fn new(path: &str) -> Self {
        DeleteAll {
            stack: vec![(path.to_owned(), false)],
            pending: None,
            deleted: 0,
        }
    }
}

impl Plan for DeleteAll {
    /// How many nodes the plan deleted.
    type Output = usize;

    fn next_request(&mut self) -> Option<Request> {
        let (path, listed) = self.stack.last()?.clone();
        let request = if listed {
            op::delete(&path, None).into_parts().0
        } else {
            op::get_children(&path).into_parts().0
        };
        self.pending = Some((path, listed));
        Some(request)
    }

    fn complete(&mut self, reply: Reply) -> Result<()> {
        let Some((path, listed)) = self.pending.take() else {
            return Ok(());
        };
        if listed {
            match reply::done(reply) {
                Ok(()) => {
                    self.deleted += 1;
                    self.stack.pop();
                }
                Err(e) if e.server_code() == Some(ErrorCode::NoNode) => {
                    self.stack.pop();
                }
                // A child appeared since the listing: list again.
                Err(e) if e.server_code() == Some(ErrorCode::NotEmpty) => {
                    if let Some(top) = self.stack.last_mut() {
                        top.1 = false;
                    }
                }
                Err(e) => return Err(e),
            }
            return Ok(());
        }
        match reply::children(reply) {
            Ok(children) => {
                if let Some(top) = self.stack.last_mut() {
                    top.1 = true;
                }
                let base = if path == "/" { "" } else { path.as_str() };
                for child in children {
                    self.stack.push((format!("{base}/{child}"), false));
                }
                Ok(())
            }
            Err(e) if e.server_code() == Some(ErrorCode::NoNode) => {
                self.stack.pop();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn finish(self) -> Result<usize> {
        Ok(self.deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use zk_proto::records::{GetChildrenResponse, Response};
    use zk_proto::session::Error;

    /// Runs a plan against an in-memory tree of paths.
    fn delete_all(tree: &mut BTreeSet<String>, root: &str) -> usize {
        let mut plan = DeleteAll::new(root);
        while let Some(req) = plan.next_request() {
            let reply = match req {
                Request::GetChildren(r) => {
                    if !tree.contains(&r.path) {
                        Err(Error::Server(ErrorCode::NoNode))
                    } else {
                        let prefix = format!("{}/", r.path);
                        let children = tree
                            .iter()
                            .filter_map(|p| p.strip_prefix(&prefix))
                            .filter(|rest| !rest.contains('/'))
                            .map(str::to_owned)
                            .collect();
                        Ok(Response::GetChildren(GetChildrenResponse { children }))
                    }
                }
                Request::Delete(r) => {
                    let prefix = format!("{}/", r.path);
                    if tree.iter().any(|p| p.starts_with(&prefix)) {
                        Err(Error::Server(ErrorCode::NotEmpty))
                    } else if tree.remove(&r.path) {
                        Ok(Response::Empty)
                    } else {
                        Err(Error::Server(ErrorCode::NoNode))
                    }
                }
                other => panic!("unexpected {other:?}"),
            };
            plan.complete(reply).unwrap();
        }
        plan.finish().unwrap()
    }

    #[test]
    fn a_subtree_goes_deepest_first() {
        let mut tree: BTreeSet<String> = ["/a", "/a/b", "/a/b/c", "/a/d", "/e"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(delete_all(&mut tree, "/a"), 4);
        assert_eq!(tree.into_iter().collect::<Vec<_>>(), ["/e"]);
        let mut empty = BTreeSet::new();
        assert_eq!(delete_all(&mut empty, "/missing"), 0);
    }

    #[test]
    fn create_all_stops_at_a_real_error() {
        let mut plan = CreateAll::new("/a/b", Bytes::new(), &Acl::open_unsafe());
        assert!(plan.next_request().is_some());
        assert!(
            plan.complete(Err(Error::Server(ErrorCode::NodeExists)))
                .is_ok()
        );
        assert!(plan.next_request().is_some());
        assert!(
            plan.complete(Err(Error::Server(ErrorCode::NoAuth)))
                .is_err()
        );
    }
}
