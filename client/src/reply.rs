//! Turns replies into typed results. Each function takes what the session completed a
//! request with.

use bytes::Bytes;

use zk_proto::error::ErrorCode;
use zk_proto::records::*;
use zk_proto::session;

use crate::{Error, ReadResult, Reply, Result, Undone};

fn ok(r: Reply) -> Result<Response> {
    r.map_err(Error::from)
}

/// Any successful reply, body ignored.
pub fn done(r: Reply) -> Result<()> {
    ok(r).map(|_| ())
}

/// The created path (create, createContainer, createTTL).
pub fn created(r: Reply) -> Result<String> {
    match ok(r)? {
        Response::Create(c) => Ok(c.path),
        Response::Create2(c) => Ok(c.path),
        _ => Err(Error::UnexpectedResponse),
    }
}

/// The created path and Stat (create2).
pub fn created2(r: Reply) -> Result<(String, Stat)> {
    match ok(r)? {
        Response::Create2(c) => Ok((c.path, c.stat)),
        _ => Err(Error::UnexpectedResponse),
    }
}

/// A Stat (setData, setACL).
pub fn stat(r: Reply) -> Result<Stat> {
    match ok(r)? {
        Response::Stat(s) => Ok(s),
        _ => Err(Error::UnexpectedResponse),
    }
}

/// A Stat, or `None` for a node that does not exist (exists).
pub fn stat_or_none(r: Reply) -> Result<Option<Stat>> {
    match r {
        Err(session::Error::Server(ErrorCode::NoNode)) => Ok(None),
        r => stat(r).map(Some),
    }
}

/// Data and Stat (getData, getConfig).
pub fn data(r: Reply) -> Result<(Bytes, Stat)> {
    match ok(r)? {
        Response::GetData(d) => Ok((d.data, d.stat)),
        _ => Err(Error::UnexpectedResponse),
    }
}

/// Children names (getChildren).
pub fn children(r: Reply) -> Result<Vec<String>> {
    match ok(r)? {
        Response::GetChildren(c) => Ok(c.children),
        _ => Err(Error::UnexpectedResponse),
    }
}

/// Children names and Stat (getChildren2).
pub fn children2(r: Reply) -> Result<(Vec<String>, Stat)> {
    match ok(r)? {
        Response::GetChildren2(c) => Ok((c.children, c.stat)),
        _ => Err(Error::UnexpectedResponse),
    }
}

/// A descendant count (getAllChildrenNumber).
pub fn count(r: Reply) -> Result<i32> {
    match ok(r)? {
        Response::GetAllChildrenNumber(c) => Ok(c.total_number),
        _ => Err(Error::UnexpectedResponse),
    }
}

/// Ephemeral node paths (getEphemerals).
pub fn ephemerals(r: Reply) -> Result<Vec<String>> {
    match ok(r)? {
        Response::GetEphemerals(e) => Ok(e.ephemerals),
        _ => Err(Error::UnexpectedResponse),
    }
}

/// ACL and Stat (getACL).
pub fn acl(r: Reply) -> Result<(Vec<Acl>, Stat)> {
    match ok(r)? {
        Response::GetAcl(a) => Ok((a.acl, a.stat)),
        _ => Err(Error::UnexpectedResponse),
    }
}

/// The synced path (sync).
pub fn synced(r: Reply) -> Result<String> {
    match ok(r)? {
        Response::Sync(s) => Ok(s.path),
        _ => Err(Error::UnexpectedResponse),
    }
}

/// The session's identities (whoAmI).
pub fn who(r: Reply) -> Result<Vec<ClientInfo>> {
    match ok(r)? {
        Response::WhoAmI(w) => Ok(w.client_info),
        _ => Err(Error::UnexpectedResponse),
    }
}

/// A transaction's results, or the failing operation as [`Error::Transaction`]: the
/// first error that is neither `Ok` nor the `RuntimeInconsistency` the server gives the
/// operations it skipped.
pub fn transaction(r: Reply) -> Result<Vec<OpResult>> {
    let Response::Multi(m) = ok(r)? else {
        return Err(Error::UnexpectedResponse);
    };
    let is_error = |r: &OpResult, skip_inconsistent: bool| {
        matches!(r, OpResult::Error(c) if *c != ErrorCode::Ok
            && !(skip_inconsistent && *c == ErrorCode::RuntimeInconsistency))
    };
    let failed = m
        .results
        .iter()
        .position(|r| is_error(r, true))
        .or_else(|| m.results.iter().position(|r| is_error(r, false)));
    match failed {
        Some(index) => {
            let OpResult::Error(code) = m.results[index] else {
                return Err(Error::UnexpectedResponse);
            };
            let outcomes = m
                .results
                .iter()
                .enumerate()
                .map(|(i, r)| match r {
                    _ if i == index => Undone::Failed(code),
                    OpResult::Error(ErrorCode::Ok) => Undone::RolledBack,
                    OpResult::Error(ErrorCode::RuntimeInconsistency) => Undone::Skipped,
                    OpResult::Error(c) => Undone::Failed(*c),
                    _ if i < index => Undone::RolledBack,
                    _ => Undone::Skipped,
                })
                .collect();
            Err(Error::Transaction {
                index,
                code,
                path: None,
                outcomes,
            })
        }
        None => Ok(m.results),
    }
}

/// Each read's result (multiRead).
pub fn reads(r: Reply) -> Result<Vec<ReadResult>> {
    let Response::Multi(m) = ok(r)? else {
        return Err(Error::UnexpectedResponse);
    };
    m.results
        .into_iter()
        .map(|r| match r {
            OpResult::GetData(d) => Ok(ReadResult::Data(d.data, d.stat)),
            OpResult::GetChildren(c) => Ok(ReadResult::Children(c.children)),
            OpResult::Error(code) => Ok(ReadResult::Error(code)),
            _ => Err(Error::UnexpectedResponse),
        })
        .collect()
}
