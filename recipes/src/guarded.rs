//! Guarded writes: writes the server applies only while a guard's node still exists.
//!
//! A lock, a semaphore lease, a leadership or a membership is held while its node exists.
//! A client's belief that it holds one can be stale: its session may have expired on the
//! server before the client heard of it, and the next contender may already hold the lock.
//! A write sent as a plain request then lands anyway. A guarded write is a `multi` whose
//! first operation checks the guard's node (Java's `Op.check`): the server applies the
//! whole transaction, atomically, only if the node is still there, and otherwise applies
//! nothing. So no guarded write lands while another client holds the lock, whatever the
//! writer believed; the server's history is the judge, not the client's clock.
//!
//! This module is the pure part: the request, and how its reply reads.
//! [`Guard::transaction`](crate::handles::Guard::transaction) runs it on a client.
//!
//! ```
//! use zk_client::MultiBuilder;
//! use zk_proto::records::Request;
//! use zk_recipes::guarded;
//!
//! let mut ops = MultiBuilder::default();
//! ops.set_data("/resource", "written by the holder".into(), None);
//! let request = guarded::request(&["/lock/_c_1-lock-0000000007".to_string()], ops);
//! let Request::Multi(multi) = request else { unreachable!() };
//! assert_eq!(multi.ops.len(), 2, "the check, then the write");
//! ```

use zk_client::{Error, MultiBuilder, Reply, Result};
use zk_proto::error::ErrorCode;
use zk_proto::records::{CheckVersionRequest, MultiOp, MultiRequest, OpResult, Request};

/// The transaction that applies `ops` only while every one of `nodes` exists: a check of
/// each (any version) first, then `ops` in order. A guard holds one node; a multi-lock one
/// per lock.
pub fn request(nodes: &[String], ops: MultiBuilder) -> Request {
    let mut all: Vec<MultiOp> = nodes
        .iter()
        .map(|node| {
            MultiOp::Check(CheckVersionRequest {
                path: node.clone(),
                version: -1,
            })
        })
        .collect();
    if let Request::Multi(rest) = ops.request() {
        all.extend(rest.ops);
    }
    Request::Multi(MultiRequest { ops: all })
}

/// The paths of the operations of a guarded transaction with `checks` checks, without them
/// (for naming a failing one).
pub fn paths(request: &Request, checks: usize) -> Vec<String> {
    match request {
        Request::Multi(m) => m
            .ops
            .iter()
            .skip(checks)
            .map(|op| op.path().to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// What a guarded transaction's reply means for the caller: each of `ops`' results (the
/// checks' left out); [`Error::NotHeld`] naming the node whose check failed because it is
/// gone; [`Error::Transaction`] with the index among `ops` when one of them failed.
pub fn decode(nodes: &[String], paths: &[String], reply: Reply) -> Result<Vec<OpResult>> {
    let checks = nodes.len();
    match zk_client::reply::transaction(reply) {
        Ok(results) if results.len() >= checks => Ok(results.into_iter().skip(checks).collect()),
        Ok(_) => Err(Error::UnexpectedResponse),
        Err(Error::Transaction { index, code, .. })
            if index < checks && (code == ErrorCode::NoNode || code == ErrorCode::BadVersion) =>
        {
            Err(Error::NotHeld {
                node: nodes[index].clone(),
            })
        }
        Err(Error::Transaction {
            index,
            code,
            outcomes,
            ..
        }) if index >= checks => Err(Error::Transaction {
            index: index - checks,
            code,
            path: None,
            outcomes: outcomes.into_iter().skip(checks).collect(),
        }
        .in_transaction(paths)),
        Err(e) => Err(e),
    }
}

/// Whether `request` is a guarded transaction on `nodes` (its first operations check them).
pub fn guards(request: &Request, nodes: &[String]) -> bool {
    matches!(request, Request::Multi(m)
        if m.ops.len() >= nodes.len()
            && m.ops.iter().zip(nodes).all(|(op, node)|
                matches!(op, MultiOp::Check(c) if c.path == *node && c.version == -1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::records::{CreateResponse, MultiResponse, Response};

    fn multi(results: Vec<OpResult>) -> Reply {
        Ok(Response::Multi(MultiResponse { results }))
    }

    #[test]
    fn the_check_comes_first_and_its_result_is_left_out() {
        let mut ops = MultiBuilder::default();
        ops.create(
            "/r/a",
            "x".into(),
            &zk_client::CreateOptions::persistent(),
            &[],
        );
        let node = vec!["/lock/n-0000000001".to_string()];
        let request = request(&node, ops);
        assert!(guards(&request, &node));
        assert_eq!(paths(&request, 1), vec!["/r/a".to_string()]);
        let created = OpResult::Create(CreateResponse {
            path: "/r/a".into(),
        });
        let reply = multi(vec![OpResult::Check, created.clone()]);
        assert_eq!(decode(&node, &paths(&request, 1), reply), Ok(vec![created]));
    }

    #[test]
    fn a_missing_guard_node_is_not_held_and_another_failure_names_its_own_op() {
        let gone = multi(vec![
            OpResult::Error(ErrorCode::NoNode),
            OpResult::Error(ErrorCode::RuntimeInconsistency),
        ]);
        let node = vec!["/lock/n".to_string()];
        let e = decode(&node, &["/r".to_string()], gone).unwrap_err();
        assert_eq!(
            e,
            Error::NotHeld {
                node: "/lock/n".into()
            }
        );
        assert!(e.to_string().contains("acquire it again"), "{e}");

        let exists = multi(vec![
            OpResult::Error(ErrorCode::Ok),
            OpResult::Error(ErrorCode::NodeExists),
        ]);
        match decode(&node, &["/r".to_string()], exists) {
            Err(Error::Transaction {
                index: 0,
                code: ErrorCode::NodeExists,
                path: Some(p),
                outcomes,
            }) => {
                assert_eq!(p, "/r");
                assert_eq!(outcomes.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        let lost = Err(zk_proto::session::Error::ConnectionLoss);
        assert_eq!(decode(&node, &[], lost), Err(Error::ConnectionLoss));

        // With two nodes, the one whose check failed is named.
        let two = vec!["/a/n-1".to_string(), "/b/n-2".to_string()];
        let second_gone = multi(vec![
            OpResult::Error(ErrorCode::Ok),
            OpResult::Error(ErrorCode::NoNode),
            OpResult::Error(ErrorCode::RuntimeInconsistency),
        ]);
        assert_eq!(
            decode(&two, &["/r".to_string()], second_gone),
            Err(Error::NotHeld {
                node: "/b/n-2".into()
            })
        );
    }
}
