//! The counter's write whose reply was lost, checked on a server that lags: it shows the
//! version unchanged, so the write is sent again (conditional on the same version); the
//! first write then lands late, and the second meets the change. Adding again would count
//! twice: the machine must say it cannot tell. Scripted replies, as a lagging follower
//! would give them.

use std::time::Instant;

use bytes::Bytes;
use zk_proto::ErrorCode;
use zk_proto::records::*;
use zk_proto::session::Error as SessionError;
use zk_recipes::counter::{Counter, Encoding, Outcome};
use zk_recipes::{Output, Recipe, Tag};

fn drain(c: &mut Counter, told: &mut Vec<Outcome>) -> Vec<(Tag, Request)> {
    let mut out = Vec::new();
    while let Some(o) = c.poll_output() {
        match o {
            Output::Submit(tag, request) => out.push((tag, request)),
            Output::Outcome(o) => told.push(o),
        }
    }
    out
}

fn value(v: &str, version: i32) -> Result<Response, SessionError> {
    Ok(Response::GetData(GetDataResponse {
        data: Bytes::from(v.to_string()),
        stat: Stat {
            version,
            ..Default::default()
        },
    }))
}

/// The one request of `sent` that is not a sync, answered with `reply`.
fn answer(c: &mut Counter, sent: Vec<(Tag, Request)>, reply: Result<Response, SessionError>) {
    let now = Instant::now();
    let mut reply = Some(reply);
    for (tag, request) in sent {
        match request {
            Request::Sync(s) => {
                c.handle_reply(now, tag, Ok(Response::Sync(SyncResponse { path: s.path })))
            }
            _ => c.handle_reply(now, tag, reply.take().expect("one request besides syncs")),
        }
    }
}

#[test]
fn a_lost_write_that_lands_late_is_not_counted_twice() {
    let now = Instant::now();
    let mut c = Counter::new("/hits", Encoding::Text, 0, Acl::open_unsafe());
    let mut told = Vec::new();
    c.add(now, 1);
    let read = drain(&mut c, &mut told);
    answer(&mut c, read, value("5", 0));
    let write = drain(&mut c, &mut told);
    assert!(matches!(&write[..], [(_, Request::SetData(s))] if s.version == 0));
    // Server A took it and died before answering.
    answer(&mut c, write, Err(SessionError::ConnectionLoss));
    // The check, on lagging B: a sync goes first; B still shows version 0.
    let check = drain(&mut c, &mut told);
    assert!(
        matches!(check.first(), Some((_, Request::Sync(_)))),
        "{check:?}"
    );
    answer(&mut c, check, value("5", 0));
    // So the write goes again, on the same version; meanwhile the first one landed.
    let again = drain(&mut c, &mut told);
    assert!(
        matches!(&again[..], [(_, Request::SetData(s))] if s.version == 0),
        "{again:?}"
    );
    answer(
        &mut c,
        again,
        Err(SessionError::Server(ErrorCode::BadVersion)),
    );
    let after = drain(&mut c, &mut told);
    assert!(after.is_empty(), "no third write: {after:?}");
    assert_eq!(told, [Outcome::InDoubt]);
}
