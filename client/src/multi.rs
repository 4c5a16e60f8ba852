//! Transactions (`multi`) and batched reads (`multiRead`): their operations, results and
//! requests, and the builder methods both drivers write from one macro.

use bytes::Bytes;

use zk_proto::error::ErrorCode;
use zk_proto::records::*;

use crate::CreateOptions;

/// One operation of a multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// Read a node's data.
    GetData(String),
    /// List a node's children.
    GetChildren(String),
}

/// The result of one [`ReadOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// Data and Stat.
    Data(Bytes, Stat),
    /// Children names.
    Children(Vec<String>),
    /// The operation failed (the others still ran).
    Error(ErrorCode),
}

/// The operations of a transaction (`multi`), in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiBuilder {
    ops: Vec<MultiOp>,
    /// A create asked to make its parents, which a transaction cannot.
    parents: bool,
}

impl MultiBuilder {
    /// Adds a create.
    pub fn create(
        &mut self,
        path: &str,
        data: Bytes,
        options: &CreateOptions,
        default_acl: &[Acl],
    ) {
        self.parents |= options.makes_parents();
        self.ops.push(options.multi_op(path, data, default_acl));
    }

    /// Whether the transaction can be sent: not when a create asks to make its parents
    /// ([`CreateOptions::with_parents`]), which a transaction cannot do atomically.
    pub fn validate(&self) -> crate::Result<()> {
        if self.parents {
            return Err(crate::Error::InvalidRequest(
                "a transaction cannot make parents: create them first (create_all), \
                 then commit without with_parents",
            ));
        }
        Ok(())
    }

    /// Adds a delete of `path` at `version` (`None`: any).
    pub fn delete(&mut self, path: &str, version: Option<i32>) {
        self.ops.push(MultiOp::Delete(DeleteRequest {
            path: path.into(),
            version: version.unwrap_or(-1),
        }));
    }

    /// Adds a write of `path` at `version` (`None`: any).
    pub fn set_data(&mut self, path: &str, data: Bytes, version: Option<i32>) {
        self.ops.push(MultiOp::SetData(SetDataRequest {
            path: path.into(),
            data,
            version: version.unwrap_or(-1),
        }));
    }

    /// Adds a version check.
    pub fn check(&mut self, path: &str, version: i32) {
        self.ops.push(MultiOp::Check(CheckVersionRequest {
            path: path.into(),
            version,
        }));
    }

    /// No operations yet.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Each operation's path, in order (for naming a failing one: [`Error::in_transaction`]).
    ///
    /// [`Error::in_transaction`]: crate::Error::in_transaction
    pub fn paths(&self) -> Vec<String> {
        self.ops.iter().map(|op| op.path().to_owned()).collect()
    }

    /// The multi request.
    pub fn request(self) -> Request {
        Request::Multi(MultiRequest { ops: self.ops })
    }
}

/// The multiRead request for `ops`.
pub fn multi_read_request(ops: &[ReadOp]) -> Request {
    let ops = ops
        .iter()
        .map(|op| match op {
            ReadOp::GetData(p) => MultiOp::GetData(GetDataRequest {
                path: p.clone(),
                watch: false,
            }),
            ReadOp::GetChildren(p) => MultiOp::GetChildren(GetChildrenRequest {
                path: p.clone(),
                watch: false,
            }),
        })
        .collect();
    Request::MultiRead(MultiRequest { ops })
}

/// Writes the builder methods of a driver's transaction type, for a struct with fields
/// `ops: MultiBuilder` and `default_acl` (a slice of the client's default ACL), so both
/// clients' transactions read alike.
#[doc(hidden)]
#[macro_export]
macro_rules! transaction_builder_methods {
    () => {
        /// Creates a node.
        pub fn create(
            mut self,
            path: &str,
            data: impl Into<$crate::__bytes::Bytes>,
            options: &$crate::CreateOptions,
        ) -> Self {
            self.ops
                .create(path, data.into(), options, &self.default_acl);
            self
        }

        /// Deletes a node, if its version matches (`None`: any version).
        pub fn delete(mut self, path: &str, version: Option<i32>) -> Self {
            self.ops.delete(path, version);
            self
        }

        /// Writes a node's data, if its version matches (`None`: any version).
        pub fn set_data(
            mut self,
            path: &str,
            data: impl Into<$crate::__bytes::Bytes>,
            version: Option<i32>,
        ) -> Self {
            self.ops.set_data(path, data.into(), version);
            self
        }

        /// Requires a node to be at `version`.
        pub fn check(mut self, path: &str, version: i32) -> Self {
            self.ops.check(path, version);
            self
        }
    };
}
