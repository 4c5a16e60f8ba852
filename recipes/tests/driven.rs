//! A recipe machine's requests as its host submits them: a session that refuses every
//! request must not make a machine that asks again at once spin its host.

use std::time::Instant;

use zk_proto::records::SyncRequest;
use zk_proto::records::{Request, Response, SyncResponse};
use zk_proto::session::AppState;
use zk_proto::session::{Error as SessionError, Event, RequestId};
use zk_recipes::{Driven, Output, Recipe, Tag};

/// A machine that asks again at once whenever a request is refused: the shape of every
/// machine that retries a failed read or cleanup.
#[derive(Default)]
struct Stubborn {
    want: bool,
    in_flight: usize,
    refusals: usize,
}

impl Recipe for Stubborn {
    type Outcome = usize;
    fn poll_output(&mut self) -> Option<Output<usize>> {
        if std::mem::take(&mut self.want) {
            self.in_flight += 1;
            Some(Output::Submit(
                Tag(0),
                Request::Sync(SyncRequest { path: "/".into() }),
            ))
        } else {
            None
        }
    }
    fn handle_reply(&mut self, _: Instant, _: Tag, reply: Result<Response, SessionError>) {
        self.in_flight -= 1;
        if reply.is_err() {
            self.refusals += 1;
            self.want = true;
        }
    }
    fn handle_state(&mut self, _: Instant, _: AppState, _: i64) {}
    fn release(&mut self, _: Instant) {}
    fn is_done(&self) -> bool {
        self.in_flight == 0 && !self.want
    }
}

#[test]
fn a_session_that_refuses_everything_gets_one_submit_a_turn_not_a_spin() {
    let now = Instant::now();
    let mut driven = Driven::new(Stubborn {
        want: true,
        ..Stubborn::default()
    });
    let mut submits = 0;
    for turn in 1..=3 {
        driven.flush(
            now,
            |_| {
                submits += 1;
                assert!(
                    submits <= 10,
                    "the machine spins: {submits} submits in turn {turn}"
                );
                Err(SessionError::SessionExpired)
            },
            |_| {},
        );
        assert_eq!(submits, turn, "one submit per turn");
        assert_eq!(
            driven.machine().refusals,
            turn,
            "each refusal reached the machine"
        );
    }
    // A session that takes the request again: the one held back goes out, and nothing
    // is held once its reply is in.
    let mut sent = Vec::new();
    driven.flush(
        now,
        |r| {
            sent.push(r);
            Ok(RequestId(9))
        },
        |_| {},
    );
    assert_eq!(sent.len(), 1);
    assert!(!driven.machine().is_done());
    let reply = Event::Complete {
        id: RequestId(9),
        result: Ok(Response::Sync(SyncResponse { path: "/".into() })),
        watch: None,
    };
    assert!(driven.handle_event(now, reply, 1).is_none());
    assert!(driven.machine().is_done());
}
