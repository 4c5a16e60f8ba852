//! Multi (an atomic transaction) and multiRead: several operations in one request, each
//! behind a [`MultiHeader`], closed by [`MultiHeader::END`].

use crate::codec::{DecodeError, Jute, Origin, PResult, Writer};
use crate::consts::OpCode;
use crate::error::ErrorCode;

use super::data::Stat;
use super::header::MultiHeader;
use super::ops::*;

/// One operation inside a multi or multiRead request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// Create, answered with the path.
    Create(CreateRequest),
    /// Create, answered with the path and Stat.
    Create2(CreateRequest),
    /// Create a container node.
    CreateContainer(CreateRequest),
    /// Create a node with a time to live.
    CreateTtl(CreateTtlRequest),
    /// Delete a node.
    Delete(DeleteRequest),
    /// Write a node's data.
    SetData(SetDataRequest),
    /// Check a node's version.
    Check(CheckVersionRequest),
    /// Read a node's data (multiRead only).
    GetData(GetDataRequest),
    /// List a node's children (multiRead only).
    GetChildren(GetChildrenRequest),
}

impl MultiOp {
    /// The opcode written in the operation's header.
    pub fn opcode(&self) -> OpCode {
        match self {
            MultiOp::Create(_) => OpCode::Create,
            MultiOp::Create2(_) => OpCode::Create2,
            MultiOp::CreateContainer(_) => OpCode::CreateContainer,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetData(_) => OpCode::GetData,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
        }
    }

    /// The node path the operation addresses (without chroot).
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetData(r) => &r.path,
            MultiOp::GetChildren(r) => &r.path,
        }
    }

    /// True for the operations multiRead accepts.
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetData(_) | MultiOp::GetChildren(_))
    }

    fn write_body(&self, w: &mut Writer<'_>) {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => r.write(w),
            MultiOp::CreateTtl(r) => r.write(w),
            MultiOp::Delete(r) => r.write(w),
            MultiOp::SetData(r) => r.write(w),
            MultiOp::Check(r) => r.write(w),
            MultiOp::GetData(r) => r.write(w),
            MultiOp::GetChildren(r) => r.write(w),
        }
    }

    fn body_len(&self) -> usize {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => {
                r.encoded_len()
            }
            MultiOp::CreateTtl(r) => r.encoded_len(),
            MultiOp::Delete(r) => r.encoded_len(),
            MultiOp::SetData(r) => r.encoded_len(),
            MultiOp::Check(r) => r.encoded_len(),
            MultiOp::GetData(r) => r.encoded_len(),
            MultiOp::GetChildren(r) => r.encoded_len(),
        }
    }

    fn read_body<'a>(op: i32, origin: Origin<'_>, i: &'a [u8]) -> PResult<'a, Self> {
        fn map<'a, T, U>(r: PResult<'a, T>, f: impl FnOnce(T) -> U) -> PResult<'a, U> {
            r.map(|(i, v)| (i, f(v)))
        }
        match OpCode::from_i32(op) {
            Some(OpCode::Create) => map(CreateRequest::read(origin, i), MultiOp::Create),
            Some(OpCode::Create2) => map(CreateRequest::read(origin, i), MultiOp::Create2),
            Some(OpCode::CreateContainer) => {
                map(CreateRequest::read(origin, i), MultiOp::CreateContainer)
            }
            Some(OpCode::CreateTtl) => map(CreateTtlRequest::read(origin, i), MultiOp::CreateTtl),
            Some(OpCode::Delete) => map(DeleteRequest::read(origin, i), MultiOp::Delete),
            Some(OpCode::SetData) => map(SetDataRequest::read(origin, i), MultiOp::SetData),
            Some(OpCode::Check) => map(CheckVersionRequest::read(origin, i), MultiOp::Check),
            Some(OpCode::GetData) => map(GetDataRequest::read(origin, i), MultiOp::GetData),
            Some(OpCode::GetChildren) => {
                map(GetChildrenRequest::read(origin, i), MultiOp::GetChildren)
            }
            _ => crate::codec::jute::fail(DecodeError::InvalidMultiOp(op)),
        }
    }
}

/// The body of a multi or multiRead request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    /// The operations, applied in order (all or none for multi).
    pub ops: Vec<MultiOp>,
}

impl Jute for MultiRequest {
    fn write(&self, w: &mut Writer<'_>) {
        for op in &self.ops {
            MultiHeader {
                op: op.opcode().as_i32(),
                done: false,
                err: -1,
            }
            .write(w);
            op.write_body(w);
        }
        MultiHeader::END.write(w);
    }

    fn read<'a>(origin: Origin<'_>, mut i: &'a [u8]) -> PResult<'a, Self> {
        let mut ops = Vec::new();
        loop {
            let (rest, h) = MultiHeader::read(origin, i)?;
            if h.done {
                return Ok((rest, MultiRequest { ops }));
            }
            let (rest, op) = MultiOp::read_body(h.op, origin, rest)?;
            ops.push(op);
            i = rest;
        }
    }

    fn encoded_len(&self) -> usize {
        self.ops.iter().map(|op| 9 + op.body_len()).sum::<usize>() + 9
    }
}

/// The result of one operation of a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// A create answered with the path.
    Create(CreateResponse),
    /// A create answered with the path and Stat (create2, container and TTL creates).
    Create2(Create2Response),
    /// A delete.
    Delete,
    /// A setData, with the new Stat.
    SetData(Stat),
    /// A check.
    Check,
    /// A getData in a multiRead.
    GetData(GetDataResponse),
    /// A getChildren in a multiRead.
    GetChildren(GetChildrenResponse),
    /// An error. In a failed multi every result is an error: the failing operation's code,
    /// `Ok` for those before it (rolled back) and `RuntimeInconsistency` for those after it.
    Error(ErrorCode),
}

impl OpResult {
    fn opcode(&self) -> OpCode {
        match self {
            OpResult::Create(_) => OpCode::Create,
            OpResult::Create2(_) => OpCode::Create2,
            OpResult::Delete => OpCode::Delete,
            OpResult::SetData(_) => OpCode::SetData,
            OpResult::Check => OpCode::Check,
            OpResult::GetData(_) => OpCode::GetData,
            OpResult::GetChildren(_) => OpCode::GetChildren,
            OpResult::Error(_) => OpCode::Error,
        }
    }

    fn body_len(&self) -> usize {
        match self {
            OpResult::Create(r) => r.encoded_len(),
            OpResult::Create2(r) => r.encoded_len(),
            OpResult::Delete | OpResult::Check => 0,
            OpResult::SetData(s) => s.encoded_len(),
            OpResult::GetData(r) => r.encoded_len(),
            OpResult::GetChildren(r) => r.encoded_len(),
            OpResult::Error(_) => 4,
        }
    }
}

/// The body of a multi or multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    /// One result per operation, in order.
    pub results: Vec<OpResult>,
}

impl Jute for MultiResponse {
    fn write(&self, w: &mut Writer<'_>) {
        for r in &self.results {
            let err = match r {
                OpResult::Error(e) => e.as_i32(),
                _ => 0,
            };
            MultiHeader {
                op: r.opcode().as_i32(),
                done: false,
                err,
            }
            .write(w);
            match r {
                OpResult::Create(r) => r.write(w),
                OpResult::Create2(r) => r.write(w),
                OpResult::Delete | OpResult::Check => {}
                OpResult::SetData(s) => s.write(w),
                OpResult::GetData(r) => r.write(w),
                OpResult::GetChildren(r) => r.write(w),
                OpResult::Error(e) => w.int(e.as_i32()),
            }
        }
        MultiHeader::END.write(w);
    }

    fn read<'a>(origin: Origin<'_>, mut i: &'a [u8]) -> PResult<'a, Self> {
        let mut results = Vec::new();
        loop {
            let (rest, h) = MultiHeader::read(origin, i)?;
            if h.done {
                return Ok((rest, MultiResponse { results }));
            }
            let (rest, r) = match OpCode::from_i32(h.op) {
                Some(OpCode::Create) => {
                    let (i, r) = CreateResponse::read(origin, rest)?;
                    (i, OpResult::Create(r))
                }
                Some(OpCode::Create2) => {
                    let (i, r) = Create2Response::read(origin, rest)?;
                    (i, OpResult::Create2(r))
                }
                Some(OpCode::Delete) => (rest, OpResult::Delete),
                Some(OpCode::Check) => (rest, OpResult::Check),
                Some(OpCode::SetData) => {
                    let (i, s) = Stat::read(origin, rest)?;
                    (i, OpResult::SetData(s))
                }
                Some(OpCode::GetData) => {
                    let (i, r) = GetDataResponse::read(origin, rest)?;
                    (i, OpResult::GetData(r))
                }
                Some(OpCode::GetChildren) => {
                    let (i, r) = GetChildrenResponse::read(origin, rest)?;
                    (i, OpResult::GetChildren(r))
                }
                Some(OpCode::Error) => {
                    // The body repeats the header's code; the body is what the reference
                    // client reads.
                    let (i, e) = ErrorResponse::read(origin, rest)?;
                    (i, OpResult::Error(ErrorCode::from_i32(e.err)))
                }
                _ => return crate::codec::jute::fail(DecodeError::InvalidMultiOp(h.op)),
            };
            results.push(r);
            i = rest;
        }
    }

    fn encoded_len(&self) -> usize {
        self.results.iter().map(|r| 9 + r.body_len()).sum::<usize>() + 9
    }
}
