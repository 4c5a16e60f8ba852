//! What the machines share: tagging requests and queueing outputs, and building the
//! requests they send most.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use zk_proto::consts::CreateMode;
use zk_proto::records::*;
use zk_proto::session::Error as SessionError;

use crate::{Output, Tag};

/// A machine's requests in flight, by tag, with what each was for, and its outputs.
#[derive(Debug)]
pub(crate) struct Io<P, O> {
    next_tag: u64,
    pub(crate) in_flight: HashMap<Tag, P>,
    pub(crate) out: VecDeque<Output<O>>,
}

impl<P, O> Io<P, O> {
    pub(crate) fn new() -> Self {
        Io {
            next_tag: 1,
            in_flight: HashMap::new(),
            out: VecDeque::new(),
        }
    }

    /// Asks the driver to submit `request`, remembering `purpose` under its tag.
    pub(crate) fn submit(&mut self, purpose: P, request: Request) -> Tag {
        let tag = Tag(self.next_tag);
        self.next_tag += 1;
        self.in_flight.insert(tag, purpose);
        self.out.push_back(Output::Submit(tag, request));
        tag
    }

    /// Like [`Io::submit`], with the tag the driver sees made by `map` (for a machine
    /// that shares its tag space with another); returns that tag.
    pub(crate) fn submit_as(&mut self, purpose: P, request: Request, map: fn(Tag) -> Tag) -> Tag {
        let tag = Tag(self.next_tag);
        self.next_tag += 1;
        self.in_flight.insert(tag, purpose);
        self.out.push_back(Output::Submit(map(tag), request));
        map(tag)
    }

    /// Tells the application.
    pub(crate) fn emit(&mut self, outcome: O) {
        self.out.push_back(Output::Outcome(outcome));
    }
}

/// Errors after which the request is simply sent again, on whatever session there is.
pub(crate) fn again(e: &SessionError) -> bool {
    e.is_retryable() || *e == SessionError::SessionExpired
}

/// The parent of an absolute path, `None` for a child of the root.
pub(crate) fn parent_of(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(i) if i > 0 => Some(&path[..i]),
        _ => None,
    }
}

pub(crate) fn create(path: &str, data: Bytes, acl: &[Acl], mode: CreateMode) -> Request {
    Request::Create(CreateRequest {
        path: path.to_string(),
        data,
        acl: acl.to_vec(),
        flags: mode.as_i32(),
    })
}

pub(crate) fn delete(path: &str, version: i32) -> Request {
    Request::Delete(DeleteRequest {
        path: path.to_string(),
        version,
    })
}

pub(crate) fn exists(path: &str, watch: bool) -> Request {
    Request::Exists(ExistsRequest {
        path: path.to_string(),
        watch,
    })
}

/// A `sync` of `path`: what is read after it on the same session reflects every write
/// committed before it reached the leader, even on a follower that lags.
pub(crate) fn sync(path: &str) -> Request {
    Request::Sync(SyncRequest {
        path: path.to_string(),
    })
}

pub(crate) fn list(path: &str, watch: bool) -> Request {
    Request::GetChildren(GetChildrenRequest {
        path: path.to_string(),
        watch,
    })
}

pub(crate) fn read(path: &str) -> Request {
    Request::GetData(GetDataRequest {
        path: path.to_string(),
        watch: false,
    })
}
