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

/// How many times a create that makes its parents starts over when its parent vanishes
/// between making it and the create (another client deleting it meanwhile).
const PARENT_ROUNDS: u32 = 5;

/// A create with [`CreateOptions::with_parents`] (Kazoo's `makepath`): the create is tried
/// at once; when its parent is missing, the missing ancestors are made, nearest first
/// while they are missing and then back down (persistent, with the node's ACL; one that
/// exists meanwhile is fine), and the create is tried again. Without `parents` it is the
/// one create.
#[derive(Debug)]
pub struct CreateParents<T> {
    create: Request,
    decode: fn(Reply) -> Result<T>,
    parents: bool,
    /// Ancestors still to make; the last is made next.
    missing: Vec<String>,
    /// The create has been sent this many times.
    rounds: u32,
    /// The request given out last was the create (not a parent).
    creating: bool,
    out: Option<Result<T>>,
}

impl<T> CreateParents<T> {
    /// A plan for `create` (a create request), its reply decoded by `decode`; with
    /// `parents`, missing parents are made.
    pub fn new(create: Request, decode: fn(Reply) -> Result<T>, parents: bool) -> Self {
        CreateParents {
            create,
            decode,
            parents,
            missing: Vec::new(),
            rounds: 0,
            creating: false,
            out: None,
        }
    }

    fn acl(&self) -> Vec<Acl> {
        match &self.create {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => r.acl.clone(),
            Request::CreateTtl(r) => r.acl.clone(),
            _ => Vec::new(),
        }
    }
}

impl<T> CreateParents<T> {
    /// Ends the plan with `e`: no request follows.
    fn fail(&mut self, e: crate::Error) -> Result<()> {
        self.out = Some(Err(e.clone()));
        Err(e)
    }
}

/// The parent of `path`, unless that is the root (which always exists).
fn parent_of(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

impl<T> Plan for CreateParents<T> {
    type Output = T;

    fn next_request(&mut self) -> Option<Request> {
        if self.out.is_some() {
            return None;
        }
        if let Some(parent) = self.missing.last() {
            self.creating = false;
            let options = CreateOptions::persistent().with_acl(self.acl());
            return Some(options.request(parent, Bytes::new(), &[], false));
        }
        self.creating = true;
        self.rounds += 1;
        Some(self.create.clone())
    }

    fn complete(&mut self, reply: Reply) -> Result<()> {
        if self.creating {
            let missing_parent = matches!(
                reply,
                Err(zk_proto::session::Error::Server(ErrorCode::NoNode))
            );
            if self.parents && missing_parent && self.rounds < PARENT_ROUNDS {
                let path = self.create.path().unwrap_or("/");
                if let Some(parent) = parent_of(path) {
                    self.missing.push(parent.to_owned());
                    return Ok(());
                }
            }
            // A failed create ends the plan with its error, which names the node.
            return match (self.decode)(reply) {
                Ok(v) => {
                    self.out = Some(Ok(v));
                    Ok(())
                }
                Err(e) => self.fail(e),
            };
        }
        match reply::created(reply) {
            Ok(_) => {
                self.missing.pop();
            }
            Err(e) if e.server_code() == Some(ErrorCode::NodeExists) => {
                self.missing.pop();
            }
            // Its own parent is missing too: make that first.
            Err(e) if e.server_code() == Some(ErrorCode::NoNode) => {
                let grand = self
                    .missing
                    .last()
                    .and_then(|p| parent_of(p))
                    .map(str::to_owned);
                match grand {
                    Some(grand) if self.missing.len() < 1024 => self.missing.push(grand),
                    _ => return self.fail(e),
                }
            }
            Err(e) => return self.fail(e),
        }
        Ok(())
    }

    fn finish(self) -> Result<T> {
        self.out.unwrap_or(Err(crate::Error::UnexpectedResponse))
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

    /// Runs a create that makes its parents against an in-memory tree; `meddle` runs
    /// before each request is answered (another client at work). Returns the plan's
    /// outcome and the paths it sent, in order.
    fn make(
        tree: &mut BTreeSet<String>,
        path: &str,
        mut meddle: impl FnMut(&mut BTreeSet<String>, &Request),
    ) -> (crate::Result<String>, Vec<String>) {
        let options = CreateOptions::ephemeral().with_parents();
        let op = crate::op::create(path, Bytes::new(), &options, &Acl::open_unsafe());
        assert!(op.makes_parents());
        let mut plan = op.into_plan();
        let mut sent = Vec::new();
        while let Some(req) = plan.next_request() {
            meddle(tree, &req);
            let Request::Create(r) = &req else {
                panic!("unexpected {req:?}");
            };
            sent.push(r.path.clone());
            let parent = r.path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            let reply = if !parent.is_empty() && !tree.contains(parent) {
                Err(Error::Server(ErrorCode::NoNode))
            } else if !tree.insert(r.path.clone()) {
                Err(Error::Server(ErrorCode::NodeExists))
            } else {
                Ok(Response::Create(zk_proto::records::CreateResponse {
                    path: r.path.clone(),
                }))
            };
            if let Err(e) = plan.complete(reply) {
                return (Err(e), sent);
            }
        }
        (plan.finish(), sent)
    }

    #[test]
    fn a_create_with_its_parents_in_place_takes_one_request() {
        let mut tree: BTreeSet<String> = ["/a", "/a/b"].into_iter().map(String::from).collect();
        let (out, sent) = make(&mut tree, "/a/b/c", |_, _| {});
        assert_eq!(out.unwrap(), "/a/b/c");
        assert_eq!(sent, ["/a/b/c"]);
    }

    #[test]
    fn missing_parents_are_made_nearest_first_then_back_down() {
        let mut tree: BTreeSet<String> = ["/a"].into_iter().map(String::from).collect();
        let (out, sent) = make(&mut tree, "/a/b/c/d", |_, _| {});
        assert_eq!(out.unwrap(), "/a/b/c/d");
        assert_eq!(
            sent,
            ["/a/b/c/d", "/a/b/c", "/a/b", "/a/b/c", "/a/b/c/d"],
            "the node, its missing parents upward, then back down"
        );
        assert!(tree.contains("/a/b/c/d"));
    }

    #[test]
    fn a_parent_made_or_deleted_meanwhile_is_survived() {
        // Another client makes the parent between our NoNode and our make: fine.
        let mut tree = BTreeSet::new();
        let (out, _) = make(&mut tree, "/x/y", |t, r| {
            if r.path() == Some("/x") {
                t.insert("/x".into());
            }
        });
        assert_eq!(out.unwrap(), "/x/y");
        // Another client deletes the parent each time we made it: we start over, a
        // bounded number of times, then report the NoNode.
        let mut tree = BTreeSet::new();
        let (out, sent) = make(&mut tree, "/p/q", |t, r| {
            if r.path() == Some("/p/q") {
                t.remove("/p");
            }
        });
        assert!(out.unwrap_err().is(ErrorCode::NoNode));
        let tries = sent.iter().filter(|p| *p == "/p/q").count();
        assert_eq!(tries as u32, PARENT_ROUNDS);
    }

    #[test]
    fn without_parents_the_plan_is_the_one_create() {
        let op = crate::op::create(
            "/m/n",
            Bytes::new(),
            &CreateOptions::persistent(),
            &Acl::open_unsafe(),
        );
        assert!(!op.makes_parents());
        let mut plan = op.into_plan();
        assert!(plan.next_request().is_some());
        assert!(
            plan.complete(Err(Error::Server(ErrorCode::NoNode)))
                .is_err()
        );
        assert!(plan.next_request().is_none());
    }
}
