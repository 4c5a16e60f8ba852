//! The clients' protected creates and guaranteed deletes, run as hosted machines
//! ([`crate::protected`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use zk_client::{CreateOptions, Error};

use super::{Driver, Job, host, hosted};
use crate::protected::{CreateOutcome, DeleteOutcome, GuaranteedDelete, ProtectedCreate};

/// `create_protected`: the create as [`ProtectedCreate`] runs it; the path created.
pub fn create_protected<D: Driver>(
    client: &D,
    path: &str,
    data: Bytes,
    options: &CreateOptions,
) -> Job<String> {
    let id = match client.unique_id() {
        Ok(id) => id,
        Err(e) => return Job::ready(Err(e)),
    };
    let op = zk_client::op::create(path, data, options, &client.default_acl());
    let parents = op.makes_parents();
    let (request, _) = op.into_parts();
    let handed = Arc::new(AtomicBool::new(false));
    let uuid = crate::lock::uuid_of(&id, 0);
    let machine = match ProtectedCreate::new(request, &uuid, parents, handed.clone()) {
        Ok(m) => m,
        Err(e) => return Job::ready(Err(Error::from(e).at_path(path))),
    };
    let path = path.to_string();
    Job::start(move |hosting, done| {
        let mut done = Some(done);
        let steer = host(
            &hosting,
            machine,
            Box::new(|m: &mut ProtectedCreate, _| m.start()),
            move |m, outcomes| {
                if m.is_none() {
                    if let Some(d) = done.take() {
                        d.send(Err(Error::Closed));
                    }
                    return;
                }
                for o in outcomes {
                    let (result, made) = match o {
                        CreateOutcome::Created(node) => (Ok(node), true),
                        CreateOutcome::Failed(e) => (Err(Error::from(e).at_path(&path)), false),
                        CreateOutcome::Released => continue,
                    };
                    // The node is the caller's once the result reached a caller still
                    // waiting; otherwise the release that follows deletes it.
                    if let Some(d) = done.take().filter(|d| d.wanted())
                        && d.send(result).is_none()
                        && made
                    {
                        handed.store(true, Ordering::Release);
                    }
                }
            },
        );
        Box::new(steer)
    })
    .bounded()
}

/// `delete_guaranteed`: the delete as [`GuaranteedDelete`] runs it. The machine goes on
/// when the call is dropped, until the server confirms the delete.
pub fn delete_guaranteed(path: &str, version: Option<i32>) -> Job<()> {
    let machine = match GuaranteedDelete::new(path, version.unwrap_or(-1)) {
        Ok(m) => m,
        Err(e) => return Job::ready(Err(Error::from(e).at_path(path))),
    };
    let path = path.to_string();
    hosted(
        machine,
        Box::new(|m: &mut GuaranteedDelete, _| m.start()),
        move |_, outcome, _| match outcome? {
            DeleteOutcome::Deleted => Some(Ok(())),
            DeleteOutcome::Failed(e) => Some(Err(Error::from(e).at_path(&path))),
        },
    )
    .bounded()
}
