//! The protected-create and guaranteed-delete machines step by step, replies written by
//! hand: what each sends after a lost reply, a release and a refusal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use zk_proto::ErrorCode;
use zk_proto::records::{Request, Response};
use zk_proto::session::Error as SessionError;
use zk_recipes::protected::{
    BACKOFF, CreateOutcome, DeleteOutcome, GuaranteedDelete, ProtectedCreate, protected_path,
};
use zk_recipes::{Output, Recipe, Tag};

use zk_proto::records::{CreateRequest, CreateResponse, GetChildrenResponse};

fn create(path: &str) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Default::default(),
        acl: zk_proto::records::Acl::open_unsafe(),
        flags: 2,
    })
}

fn submitted<R: Recipe>(m: &mut R) -> Vec<(Tag, Request)> {
    let mut out = Vec::new();
    while let Some(o) = m.poll_output() {
        if let Output::Submit(t, r) = o {
            out.push((t, r));
        }
    }
    out
}

#[test]
fn protected_names_follow_curators_layout() {
    assert_eq!(protected_path("/a/b", "u-1"), "/a/_c_u-1-b");
    assert_eq!(protected_path("/b", "u-1"), "/_c_u-1-b");
}

#[test]
fn a_lost_create_reply_is_found_by_its_id_not_repeated() {
    let now = Instant::now();
    let handed = Arc::new(AtomicBool::new(false));
    let mut m = ProtectedCreate::new(create("/q/item-"), "u1", false, handed).unwrap();
    m.start();
    let sent = submitted(&mut m);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.path(), Some("/q/_c_u1-item-"));
    m.handle_reply(now, sent[0].0, Err(SessionError::ConnectionLoss));
    let sent = submitted(&mut m);
    assert!(matches!(sent[0].1, Request::Sync(_)));
    assert!(matches!(sent[1].1, Request::GetChildren(_)));
    m.handle_reply(now, sent[0].0, Ok(Response::Sync(Default::default())));
    let children = vec!["other".to_string(), "_c_u1-item-0000000007".to_string()];
    m.handle_reply(
        now,
        sent[1].0,
        Ok(Response::GetChildren(GetChildrenResponse { children })),
    );
    assert_eq!(
        m.poll_output(),
        Some(Output::Outcome(CreateOutcome::Created(
            "/q/_c_u1-item-0000000007".into()
        )))
    );
    assert!(!m.is_done(), "not handed over yet");
}

#[test]
fn a_create_given_up_before_it_was_handed_over_is_deleted() {
    let now = Instant::now();
    let handed = Arc::new(AtomicBool::new(false));
    let mut m = ProtectedCreate::new(create("/q/item-"), "u1", false, handed).unwrap();
    m.start();
    let sent = submitted(&mut m);
    m.release(now);
    assert!(!m.is_done(), "the create is in flight");
    let made = CreateResponse {
        path: "/q/_c_u1-item-0000000001".into(),
    };
    m.handle_reply(now, sent[0].0, Ok(Response::Create(made)));
    let sent = submitted(&mut m);
    assert_eq!(sent.len(), 1);
    assert!(matches!(&sent[0].1, Request::Delete(d) if d.path == "/q/_c_u1-item-0000000001"));
    // A lost reply to the delete: sent again until the server answers.
    m.handle_reply(now, sent[0].0, Err(SessionError::ConnectionLoss));
    let sent = submitted(&mut m);
    assert!(matches!(&sent[0].1, Request::Delete(_)));
    m.handle_reply(now, sent[0].0, Err(SessionError::Server(ErrorCode::NoNode)));
    assert!(m.is_done());
}

#[test]
fn a_handed_over_node_is_left_to_the_caller() {
    let now = Instant::now();
    let handed = Arc::new(AtomicBool::new(false));
    let mut m = ProtectedCreate::new(create("/q/item-"), "u1", false, handed.clone()).unwrap();
    m.start();
    let sent = submitted(&mut m);
    let made = CreateResponse {
        path: "/q/_c_u1-item-0000000001".into(),
    };
    m.handle_reply(now, sent[0].0, Ok(Response::Create(made)));
    handed.store(true, Ordering::Release);
    m.release(now);
    assert!(submitted(&mut m).is_empty());
    assert!(m.is_done());
}

#[test]
fn a_refusal_waits_for_time_or_a_connection_not_the_same_turn() {
    let now = Instant::now();
    let mut m = GuaranteedDelete::new("/x", -1).unwrap();
    m.start();
    let sent = submitted(&mut m);
    m.handle_reply(now, sent[0].0, Err(SessionError::QueueFull(10)));
    assert!(submitted(&mut m).is_empty(), "not again in the same turn");
    assert_eq!(m.poll_timeout(), Some(now + BACKOFF));
    m.handle_timeout(now + BACKOFF);
    let sent = submitted(&mut m);
    assert_eq!(sent.len(), 1);
    // A NoNode after a doubt is this delete's own doing.
    m.handle_reply(now, sent[0].0, Err(SessionError::Server(ErrorCode::NoNode)));
    assert_eq!(
        m.poll_output(),
        Some(Output::Outcome(DeleteOutcome::Deleted))
    );
    assert!(m.is_done());

    let mut first = GuaranteedDelete::new("/x", -1).unwrap();
    first.start();
    let sent = submitted(&mut first);
    first.handle_reply(now, sent[0].0, Err(SessionError::Server(ErrorCode::NoNode)));
    assert_eq!(
        first.poll_output(),
        Some(Output::Outcome(DeleteOutcome::Failed(
            SessionError::Server(ErrorCode::NoNode)
        )))
    );
}
