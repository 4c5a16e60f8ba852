//! What a committed transaction does to a tree, and which requests are writes: shared by
//! the leader, which applies a write when it commits it, and by a lagging member, which
//! applies it later.

use zk_proto::OpCode;
use zk_proto::records::*;

use super::prep::TxnOp as Prepared;
use crate::history::TxnOp;
use crate::tree::{DataTree, Notification};

/// Writes refuse on a read-only server (`ReadOnlyRequestProcessor`); so does sync.
pub(super) fn is_write(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Sync
            | OpCode::Create
            | OpCode::Create2
            | OpCode::CreateTtl
            | OpCode::CreateContainer
            | OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::SetData
            | OpCode::Reconfig
            | OpCode::SetAcl
            | OpCode::Multi
            | OpCode::Check
    )
}

/// Requests a member sends on to the leader at once, rather than hold behind the session's
/// earlier writes: the writes, `sync`, and the session's close.
pub(super) fn goes_to_leader(op: OpCode) -> bool {
    is_write(op) || op == OpCode::CloseSession
}

/// Applies one prepared operation to a tree (`processTxn`): the leader's when it commits,
/// a lagging member's when it catches up.
pub(super) fn apply_op(
    tree: &mut DataTree,
    txn: &Prepared,
    zxid: i64,
    time: i64,
    notes: &mut Vec<Notification>,
) -> (OpResult, TxnOp) {
    match txn {
        Prepared::Create {
            op,
            path,
            data,
            acl,
            owner,
            parent_cversion,
        } => {
            let stat = tree.create(
                path,
                data.clone(),
                acl.clone(),
                *owner,
                *parent_cversion,
                zxid,
                time,
                notes,
            );
            let result = if *op == OpCode::Create {
                OpResult::Create(CreateResponse { path: path.clone() })
            } else {
                OpResult::Create2(Create2Response {
                    path: path.clone(),
                    stat,
                })
            };
            let owner = if stat.ephemeral_owner != 0 { *owner } else { 0 };
            (
                result,
                TxnOp::Create {
                    path: path.clone(),
                    ephemeral_owner: owner,
                },
            )
        }
        Prepared::Delete { path } => {
            tree.delete(path, zxid, notes);
            (OpResult::Delete, TxnOp::Delete { path: path.clone() })
        }
        Prepared::SetData {
            path,
            data,
            version,
        } => {
            let stat = tree.set_data(path, data.clone(), *version, zxid, time, notes);
            (
                OpResult::SetData(stat),
                TxnOp::SetData {
                    path: path.clone(),
                    version: *version,
                },
            )
        }
        Prepared::SetAcl { path, acl, version } => {
            let stat = tree.set_acl(path, acl.clone(), *version);
            (
                OpResult::SetData(stat),
                TxnOp::SetAcl { path: path.clone() },
            )
        }
        Prepared::Check { path } => (OpResult::Check, TxnOp::Check { path: path.clone() }),
    }
}
