//! [`Request`]: every operation a client sends, tied to its opcode.

use bytes::{Bytes, BytesMut};

use crate::codec::{DecodeError, Jute, Origin, PResult, Writer, jute, write_frame};
use crate::consts::{OpCode, xid};

use super::auth::{AuthPacket, SaslRequest};
use super::header::RequestHeader;
use super::multi::MultiRequest;
use super::ops::*;
use super::watch::*;

/// A request body, one variant per operation the protocol has.
///
/// Paths are the caller's paths: a chroot is added when the request is encoded with one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Create a node, answered with its path.
    Create(CreateRequest),
    /// Create a node, answered with its path and Stat.
    Create2(CreateRequest),
    /// Create a container node (answered like create2).
    CreateContainer(CreateRequest),
    /// Create a node with a time to live (answered like create2).
    CreateTtl(CreateTtlRequest),
    /// Delete a node.
    Delete(DeleteRequest),
    /// Stat a node.
    Exists(ExistsRequest),
    /// Read a node's data.
    GetData(GetDataRequest),
    /// Read the ensemble configuration: getData of `/zookeeper/config`, outside any chroot.
    GetConfig {
        /// Leave a data watch on the configuration node.
        watch: bool,
    },
    /// Write a node's data.
    SetData(SetDataRequest),
    /// Read a node's ACL.
    GetAcl(GetAclRequest),
    /// Replace a node's ACL.
    SetAcl(SetAclRequest),
    /// List children.
    GetChildren(GetChildrenRequest),
    /// List children with the parent's Stat.
    GetChildren2(GetChildrenRequest),
    /// Count all descendants.
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    /// List the session's ephemeral nodes.
    GetEphemerals(GetEphemeralsRequest),
    /// Sync the server with the leader.
    Sync(SyncRequest),
    /// Check a version (meaningful inside multi).
    Check(CheckVersionRequest),
    /// An atomic transaction.
    Multi(MultiRequest),
    /// Several reads in one round trip.
    MultiRead(MultiRequest),
    /// Change the ensemble membership.
    Reconfig(ReconfigRequest),
    /// Ask whether a watch is set.
    CheckWatches(CheckWatchesRequest),
    /// Remove watches.
    RemoveWatches(RemoveWatchesRequest),
    /// Set a persistent or persistent recursive watch.
    AddWatch(AddWatchRequest),
    /// Ask which identities the session has.
    WhoAmI,
    /// Add credentials (xid -4).
    Auth(AuthPacket),
    /// Re-register one-shot watches (xid -8).
    SetWatches(SetWatches),
    /// Re-register every kind of watch (xid -8).
    SetWatches2(SetWatches2),
    /// A SASL token.
    Sasl(SaslRequest),
    /// Keep the session alive (xid -2).
    Ping,
    /// End the session.
    CloseSession,
}

impl Request {
    /// The opcode in the request header.
    pub fn opcode(&self) -> OpCode {
        match self {
            Request::Create(_) => OpCode::Create,
            Request::Create2(_) => OpCode::Create2,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) | Request::GetConfig { .. } => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::Sync(_) => OpCode::Sync,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::Sasl(_) => OpCode::Sasl,
            Request::Ping => OpCode::Ping,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// The special xid this kind of request is sent with by this crate: pings and auth
    /// packets must use theirs (the server answers them out of band); setWatches uses -8 by
    /// convention (the reference client's socket layer gives it an ordinary xid instead, and
    /// the server echoes either).
    pub fn special_xid(&self) -> Option<i32> {
        match self {
            Request::Ping => Some(xid::PING),
            Request::Auth(_) => Some(xid::AUTH),
            Request::SetWatches(_) | Request::SetWatches2(_) => Some(xid::SET_WATCHES),
            _ => None,
        }
    }

    /// The node path the request addresses, if it addresses one (caller's path, no chroot).
    pub fn path(&self) -> Option<&str> {
        Some(match self {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => &r.path,
            Request::CreateTtl(r) => &r.path,
            Request::Delete(r) => &r.path,
            Request::Exists(r) => &r.path,
            Request::GetData(r) => &r.path,
            Request::SetData(r) => &r.path,
            Request::GetAcl(r) => &r.path,
            Request::SetAcl(r) => &r.path,
            Request::GetChildren(r) | Request::GetChildren2(r) => &r.path,
            Request::GetAllChildrenNumber(r) => &r.path,
            Request::GetEphemerals(r) => &r.prefix_path,
            Request::Sync(r) => &r.path,
            Request::Check(r) => &r.path,
            Request::CheckWatches(r) => &r.path,
            Request::RemoveWatches(r) => &r.path,
            Request::AddWatch(r) => &r.path,
            _ => return None,
        })
    }

    /// Writes the body (no header, no length prefix).
    pub fn write_body(&self, w: &mut Writer<'_>) {
        match self {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => r.write(w),
            Request::CreateTtl(r) => r.write(w),
            Request::Delete(r) => r.write(w),
            Request::Exists(r) => r.write(w),
            Request::GetData(r) => r.write(w),
            Request::GetConfig { watch } => {
                w.absolute_path(CONFIG_NODE);
                w.bool(*watch);
            }
            Request::SetData(r) => r.write(w),
            Request::GetAcl(r) => r.write(w),
            Request::SetAcl(r) => r.write(w),
            Request::GetChildren(r) | Request::GetChildren2(r) => r.write(w),
            Request::GetAllChildrenNumber(r) => r.write(w),
            Request::GetEphemerals(r) => r.write(w),
            Request::Sync(r) => r.write(w),
            Request::Check(r) => r.write(w),
            Request::Multi(r) | Request::MultiRead(r) => r.write(w),
            Request::Reconfig(r) => r.write(w),
            Request::CheckWatches(r) => r.write(w),
            Request::RemoveWatches(r) => r.write(w),
            Request::AddWatch(r) => r.write(w),
            Request::Auth(r) => r.write(w),
            Request::SetWatches(r) => r.write(w),
            Request::SetWatches2(r) => r.write(w),
            Request::Sasl(r) => r.write(w),
            Request::WhoAmI | Request::Ping | Request::CloseSession => {}
        }
    }

    /// Appends a whole frame: length prefix, header with `xid`, body with `chroot` in front of
    /// every path. Returns the frame length without the prefix.
    pub fn encode_frame(&self, xid: i32, chroot: &str, buf: &mut BytesMut) -> usize {
        write_frame(buf, |b| {
            let mut w = Writer::with_chroot(b, chroot);
            RequestHeader {
                xid,
                op: self.opcode().as_i32(),
            }
            .write(&mut w);
            self.write_body(&mut w);
        })
    }

    /// Parses a body for `op` from the front of `i`. `getData` of `/zookeeper/config` reads
    /// as [`Request::GetData`]: on the wire the two are the same.
    pub fn read_body<'a>(op: i32, origin: Origin<'_>, i: &'a [u8]) -> PResult<'a, Request> {
        fn map<'a, T, U>(r: PResult<'a, T>, f: impl FnOnce(T) -> U) -> PResult<'a, U> {
            r.map(|(i, v)| (i, f(v)))
        }
        let Some(code) = OpCode::from_i32(op) else {
            return jute::fail(DecodeError::UnknownOpcode(op));
        };
        match code {
            OpCode::Create => map(CreateRequest::read(origin, i), Request::Create),
            OpCode::Create2 => map(CreateRequest::read(origin, i), Request::Create2),
            OpCode::CreateContainer => {
                map(CreateRequest::read(origin, i), Request::CreateContainer)
            }
            OpCode::CreateTtl => map(CreateTtlRequest::read(origin, i), Request::CreateTtl),
            OpCode::Delete => map(DeleteRequest::read(origin, i), Request::Delete),
            OpCode::Exists => map(ExistsRequest::read(origin, i), Request::Exists),
            OpCode::GetData => map(GetDataRequest::read(origin, i), Request::GetData),
            OpCode::SetData => map(SetDataRequest::read(origin, i), Request::SetData),
            OpCode::GetAcl => map(GetAclRequest::read(origin, i), Request::GetAcl),
            OpCode::SetAcl => map(SetAclRequest::read(origin, i), Request::SetAcl),
            OpCode::GetChildren => map(GetChildrenRequest::read(origin, i), Request::GetChildren),
            OpCode::GetChildren2 => map(GetChildrenRequest::read(origin, i), Request::GetChildren2),
            OpCode::GetAllChildrenNumber => map(
                GetAllChildrenNumberRequest::read(origin, i),
                Request::GetAllChildrenNumber,
            ),
            OpCode::GetEphemerals => map(
                GetEphemeralsRequest::read(origin, i),
                Request::GetEphemerals,
            ),
            OpCode::Sync => map(SyncRequest::read(origin, i), Request::Sync),
            OpCode::Check => map(CheckVersionRequest::read(origin, i), Request::Check),
            OpCode::Multi => map(MultiRequest::read(origin, i), Request::Multi),
            OpCode::MultiRead => map(MultiRequest::read(origin, i), Request::MultiRead),
            OpCode::Reconfig => map(ReconfigRequest::read(origin, i), Request::Reconfig),
            OpCode::CheckWatches => {
                map(CheckWatchesRequest::read(origin, i), Request::CheckWatches)
            }
            OpCode::RemoveWatches => map(
                RemoveWatchesRequest::read(origin, i),
                Request::RemoveWatches,
            ),
            OpCode::AddWatch => map(AddWatchRequest::read(origin, i), Request::AddWatch),
            OpCode::WhoAmI => Ok((i, Request::WhoAmI)),
            OpCode::Auth => map(AuthPacket::read(origin, i), Request::Auth),
            OpCode::SetWatches => map(SetWatches::read(origin, i), Request::SetWatches),
            OpCode::SetWatches2 => map(SetWatches2::read(origin, i), Request::SetWatches2),
            OpCode::Sasl => map(SaslRequest::read(origin, i), Request::Sasl),
            OpCode::Ping => Ok((i, Request::Ping)),
            OpCode::CloseSession => Ok((i, Request::CloseSession)),
            OpCode::Notification
            | OpCode::DeleteContainer
            | OpCode::CreateSession
            | OpCode::Error => jute::fail(DecodeError::UnknownOpcode(op)),
        }
    }

    /// Decodes a whole request frame body (after the length prefix): header and body, as a
    /// server would. Node data is shared with `frame`, not copied.
    pub fn decode_frame(frame: &Bytes) -> Result<(RequestHeader, Request), DecodeError> {
        let origin = Origin::shared(frame);
        let parsed = RequestHeader::read(origin, frame)
            .and_then(|(i, h)| Request::read_body(h.op, origin, i).map(|(i, r)| (i, (h, r))));
        jute::finish(frame, parsed)
            .map(|(v, _)| v)
            .map_err(|e| e.in_frame("a request"))
    }
}
