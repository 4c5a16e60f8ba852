//! [`Response`]: the body of a successful reply, whose shape depends on the request's opcode.

use bytes::Bytes;

use crate::codec::{DecodeError, Jute, Origin, PResult, Writer, jute};
use crate::consts::OpCode;

use super::auth::SaslResponse;
use super::data::Stat;
use super::multi::MultiResponse;
use super::ops::*;

/// A reply body. Replies with a non-zero error code have no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// No body: delete, check, setWatches, auth, ping, closeSession, addWatch,
    /// checkWatches, removeWatches.
    Empty,
    /// create.
    Create(CreateResponse),
    /// create2, createContainer, createTTL.
    Create2(Create2Response),
    /// exists, setData, setACL.
    Stat(Stat),
    /// getData, getConfig, reconfig.
    GetData(GetDataResponse),
    /// getACL.
    GetAcl(GetAclResponse),
    /// getChildren.
    GetChildren(GetChildrenResponse),
    /// getChildren2.
    GetChildren2(GetChildren2Response),
    /// sync.
    Sync(SyncResponse),
    /// multi and multiRead.
    Multi(MultiResponse),
    /// getAllChildrenNumber.
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    /// getEphemerals.
    GetEphemerals(GetEphemeralsResponse),
    /// whoAmI.
    WhoAmI(WhoAmIResponse),
    /// sasl.
    Sasl(SaslResponse),
    /// A bare status code: addWatch replies with `ErrorResponse(0)`.
    Status(ErrorResponse),
}

impl Response {
    /// Parses the body of a successful reply to a request with opcode `op`.
    pub fn read_for<'a>(op: OpCode, origin: Origin<'_>, i: &'a [u8]) -> PResult<'a, Response> {
        fn map<'a, T, U>(r: PResult<'a, T>, f: impl FnOnce(T) -> U) -> PResult<'a, U> {
            r.map(|(i, v)| (i, f(v)))
        }
        match op {
            OpCode::Create => map(CreateResponse::read(origin, i), Response::Create),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                map(Create2Response::read(origin, i), Response::Create2)
            }
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => {
                map(Stat::read(origin, i), Response::Stat)
            }
            OpCode::GetData | OpCode::Reconfig => {
                map(GetDataResponse::read(origin, i), Response::GetData)
            }
            OpCode::GetAcl => map(GetAclResponse::read(origin, i), Response::GetAcl),
            OpCode::GetChildren => map(GetChildrenResponse::read(origin, i), Response::GetChildren),
            OpCode::GetChildren2 => map(
                GetChildren2Response::read(origin, i),
                Response::GetChildren2,
            ),
            OpCode::Sync => map(SyncResponse::read(origin, i), Response::Sync),
            OpCode::Multi | OpCode::MultiRead => {
                map(MultiResponse::read(origin, i), Response::Multi)
            }
            OpCode::GetAllChildrenNumber => map(
                GetAllChildrenNumberResponse::read(origin, i),
                Response::GetAllChildrenNumber,
            ),
            OpCode::GetEphemerals => map(
                GetEphemeralsResponse::read(origin, i),
                Response::GetEphemerals,
            ),
            OpCode::WhoAmI => map(WhoAmIResponse::read(origin, i), Response::WhoAmI),
            OpCode::AddWatch => map(ErrorResponse::read(origin, i), Response::Status),
            OpCode::Sasl => map(SaslResponse::read(origin, i), Response::Sasl),
            OpCode::Delete
            | OpCode::Check
            | OpCode::SetWatches
            | OpCode::SetWatches2
            | OpCode::Auth
            | OpCode::Ping
            | OpCode::CloseSession
            | OpCode::CheckWatches
            | OpCode::RemoveWatches
            | OpCode::DeleteContainer
            | OpCode::CreateSession => Ok((i, Response::Empty)),
            OpCode::Notification | OpCode::Error => {
                jute::fail(DecodeError::UnknownOpcode(op.as_i32()))
            }
        }
    }

    /// Decodes the body of a successful reply (the bytes after the reply header) to a request
    /// with opcode `op`. Node data is shared with `body`; trailing bytes are ignored, as the
    /// reference client ignores them.
    pub fn decode_for(op: OpCode, body: &Bytes) -> Result<Response, DecodeError> {
        jute::finish(body, Response::read_for(op, Origin::shared(body), body))
            .map(|(r, _)| r)
            .map_err(|e| e.in_frame("a reply"))
    }

    /// Writes the body, as a server would.
    pub fn write(&self, w: &mut Writer<'_>) {
        match self {
            Response::Empty => {}
            Response::Create(r) => r.write(w),
            Response::Create2(r) => r.write(w),
            Response::Stat(r) => r.write(w),
            Response::GetData(r) => r.write(w),
            Response::GetAcl(r) => r.write(w),
            Response::GetChildren(r) => r.write(w),
            Response::GetChildren2(r) => r.write(w),
            Response::Sync(r) => r.write(w),
            Response::Multi(r) => r.write(w),
            Response::GetAllChildrenNumber(r) => r.write(w),
            Response::GetEphemerals(r) => r.write(w),
            Response::WhoAmI(r) => r.write(w),
            Response::Sasl(r) => r.write(w),
            Response::Status(r) => r.write(w),
        }
    }
}
