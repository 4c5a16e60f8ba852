//! The lock's create whose reply was lost, on a server that lags: server A took the create
//! C1 and died before answering; the client's search on follower B, which has not applied
//! C1 yet, finds nothing, so a second create C2 goes out; then C1 commits, with the lower
//! sequence number. The lock must not wait behind its own C1, and its release must leave
//! neither node. Scripted replies, as a lagging follower would give them.

use std::time::Instant;

use zk_proto::records::*;
use zk_proto::session::Error as SessionError;
use zk_recipes::lock::{Lock, Outcome};
use zk_recipes::{Output, Recipe, Tag};

const DIR: &str = "/locks/lag";
const SESSION: i64 = 7;

/// What the machine has: requests to submit, and (kept aside) its outcomes.
fn submits(lock: &mut Lock, outcomes: &mut Vec<Outcome>) -> Vec<(Tag, Request)> {
    let mut out = Vec::new();
    while let Some(o) = lock.poll_output() {
        match o {
            Output::Submit(tag, request) => out.push((tag, request)),
            Output::Outcome(o) => outcomes.push(o),
        }
    }
    out
}

fn children(names: &[&str]) -> Result<Response, SessionError> {
    Ok(Response::GetChildren(GetChildrenResponse {
        children: names.iter().map(|n| n.to_string()).collect(),
    }))
}

/// Exactly two requests.
fn pair(sent: Vec<(Tag, Request)>) -> [(Tag, Request); 2] {
    let n = sent.len();
    sent.try_into()
        .unwrap_or_else(|_| panic!("two requests, not {n}"))
}

/// The name the `create`th create of the machine asked for, with a sequence number.
fn named(request: &Request, seq: u32) -> String {
    let Request::Create2(c) = request else {
        panic!("a create, not {request:?}")
    };
    let prefix = c.path.rsplit('/').next().unwrap().to_string();
    format!("{prefix}{seq:010}")
}

#[test]
fn a_create_that_lands_late_is_ours_and_goes_with_the_release() {
    let now = Instant::now();
    let mut lock = Lock::new(DIR, "me", Acl::open_unsafe());
    let mut told = Vec::new();
    lock.acquire(now, SESSION, None);
    // The create goes out with the listing that follows it.
    let [(c1_tag, c1_req), (l1_tag, l1_req)] = pair(submits(&mut lock, &mut told));
    assert!(matches!(l1_req, Request::GetChildren(_)), "{l1_req:?}");
    let c1 = named(&c1_req, 1);
    // A's connection dropped with C1 and its listing in flight.
    lock.handle_reply(now, c1_tag, Err(SessionError::ConnectionLoss));
    lock.handle_reply(now, l1_tag, Err(SessionError::ConnectionLoss));
    // The search: a sync first, then the listing, on lagging B: no C1 yet.
    let search = submits(&mut lock, &mut told);
    assert!(
        matches!(search.first(), Some((_, Request::Sync(_)))),
        "a sync goes before the search: {search:?}"
    );
    for (tag, request) in search {
        match request {
            Request::Sync(_) => lock.handle_reply(
                now,
                tag,
                Ok(Response::Sync(SyncResponse { path: DIR.into() })),
            ),
            Request::GetChildren(_) => lock.handle_reply(now, tag, children(&[])),
            other => panic!("{other:?}"),
        }
    }
    // So a second create, C2, answered.
    let [(c2_tag, c2_req), (list_tag, _)] = pair(submits(&mut lock, &mut told));
    let c2 = named(&c2_req, 2);
    assert_ne!(c1, c2);
    lock.handle_reply(
        now,
        c2_tag,
        Ok(Response::Create2(Create2Response {
            path: format!("{DIR}/{c2}"),
            stat: Default::default(),
        })),
    );
    assert!(
        submits(&mut lock, &mut told).is_empty(),
        "its listing answers next"
    );
    // Meanwhile C1 committed, ahead of C2: the listing shows both.
    lock.handle_reply(now, list_tag, children(&[&c1, &c2]));
    let next = submits(&mut lock, &mut told);
    let deletes: Vec<&str> = next
        .iter()
        .filter_map(|(_, r)| match r {
            Request::Delete(d) => Some(d.path.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        deletes,
        [format!("{DIR}/{c1}")],
        "C1 is ours: it goes ({next:?})"
    );
    assert!(
        told.iter().any(|o| matches!(o, Outcome::Acquired { .. })),
        "held: nothing but our own C1 was ahead"
    );
    for (tag, _) in next {
        lock.handle_reply(now, tag, Ok(Response::Empty));
    }

    // The release deletes C2, and looks once more (after a sync) for late nodes of ours.
    lock.release(now);
    let mut left = vec![c2.clone()];
    for _ in 0..4 {
        for (tag, request) in submits(&mut lock, &mut told) {
            let reply = match &request {
                Request::Delete(d) => {
                    left.retain(|n| !d.path.ends_with(n.as_str()));
                    Ok(Response::Empty)
                }
                Request::Sync(_) => Ok(Response::Sync(SyncResponse { path: DIR.into() })),
                Request::GetChildren(_) => {
                    let names: Vec<&str> = left.iter().map(String::as_str).collect();
                    children(&names)
                }
                other => panic!("{other:?}"),
            };
            lock.handle_reply(now, tag, reply);
        }
    }
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(told.contains(&Outcome::Released), "{told:?}");
    assert!(lock.is_done());
}
