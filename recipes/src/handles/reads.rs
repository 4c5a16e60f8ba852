//! Reads the handles share: a directory's children, and each one's data.

use bytes::Bytes;
use zk_client::plan::Plan;
use zk_client::{Reply, Result, op};
use zk_proto::error::ErrorCode;
use zk_proto::records::Request;

use super::Job;

type Filter = Box<dyn Fn(&str) -> bool + Send>;
type Order = Box<dyn Fn(&str) -> Option<i64> + Send>;

/// What to list: the children of `dir` that pass a filter, in an order, with or without
/// their data. A missing directory lists nothing, and a child gone before its data was
/// read is left out.
pub(crate) struct Listing {
    dir: String,
    only: Option<Filter>,
    order: Option<Order>,
    data: bool,
    limit: Option<usize>,
}

impl Listing {
    pub(crate) fn new(dir: &str) -> Listing {
        Listing {
            dir: dir.to_string(),
            only: None,
            order: None,
            data: true,
            limit: None,
        }
    }

    pub(crate) fn only(mut self, f: impl Fn(&str) -> bool + Send + 'static) -> Listing {
        self.only = Some(Box::new(f));
        self
    }

    pub(crate) fn ordered_by(
        mut self,
        f: impl Fn(&str) -> Option<i64> + Send + 'static,
    ) -> Listing {
        self.order = Some(Box::new(f));
        self
    }

    /// Only the first `n` children (in order) are read.
    pub(crate) fn first(mut self, n: usize) -> Listing {
        self.limit = Some(n);
        self
    }

    pub(crate) fn names_only(mut self) -> Listing {
        self.data = false;
        self
    }
}

/// Lists `listing`: each child's name with its data (empty with
/// [`Listing::names_only`]).
pub(crate) fn list(listing: Listing) -> Job<Vec<(String, Bytes)>> {
    Job::plan(ListPlan {
        listing,
        children: None,
        next: 0,
        found: Vec::new(),
    })
}

struct ListPlan {
    listing: Listing,
    children: Option<Vec<String>>,
    next: usize,
    found: Vec<(String, Bytes)>,
}

fn no_node(reply: &Reply) -> bool {
    matches!(
        reply,
        Err(zk_proto::session::Error::Server(ErrorCode::NoNode))
    )
}

impl Plan for ListPlan {
    type Output = Vec<(String, Bytes)>;

    fn next_request(&mut self) -> Option<Request> {
        let Some(children) = &self.children else {
            return Some(op::get_children(&self.listing.dir).into_parts().0);
        };
        if !self.listing.data {
            return None;
        }
        let child = children.get(self.next)?;
        let path = match self.listing.dir.as_str() {
            "/" => format!("/{child}"),
            dir => format!("{dir}/{child}"),
        };
        Some(op::get_data(&path, false).into_parts().0)
    }

    fn complete(&mut self, reply: Reply) -> Result<()> {
        match &mut self.children {
            None => {
                let mut children = if no_node(&reply) {
                    Vec::new()
                } else {
                    op::get_children("/").decode(reply)?
                };
                if let Some(only) = &self.listing.only {
                    children.retain(|c| only(c));
                }
                if let Some(order) = &self.listing.order {
                    children.sort_by_key(|c| order(c));
                }
                if let Some(n) = self.listing.limit {
                    children.truncate(n);
                }
                if !self.listing.data {
                    self.found = children.iter().map(|c| (c.clone(), Bytes::new())).collect();
                }
                self.children = Some(children);
            }
            Some(children) => {
                let child = children.get(self.next).cloned().unwrap_or_default();
                self.next += 1;
                if !no_node(&reply) {
                    let (data, _) = op::get_data("/", false).decode(reply)?;
                    self.found.push((child, data));
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<(String, Bytes)>> {
        Ok(self.found)
    }
}

/// Reads each of `paths`: its data, or `None` for a missing node.
pub(crate) fn read_each(paths: Vec<String>) -> Job<Vec<Option<Bytes>>> {
    Job::plan(ReadEach {
        paths,
        found: Vec::new(),
    })
}

struct ReadEach {
    paths: Vec<String>,
    found: Vec<Option<Bytes>>,
}

impl Plan for ReadEach {
    type Output = Vec<Option<Bytes>>;

    fn next_request(&mut self) -> Option<Request> {
        let path = self.paths.get(self.found.len())?;
        Some(op::get_data(path, false).into_parts().0)
    }

    fn complete(&mut self, reply: Reply) -> Result<()> {
        let data = if no_node(&reply) {
            None
        } else {
            Some(op::get_data("/", false).decode(reply)?.0)
        };
        self.found.push(data);
        Ok(())
    }

    fn finish(self) -> Result<Vec<Option<Bytes>>> {
        Ok(self.found)
    }
}
