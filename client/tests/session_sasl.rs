//! The SASL login the session runs on every connection, against a scripted DIGEST-MD5
//! server: nothing else is sent before it is done, it runs again after a reconnect, and a
//! refused login or a server that cannot prove the password ends the session for good.

#[path = "../../proto/tests/sim/mod.rs"]
mod sim;

use bytes::Bytes;
use md5::{Digest, Md5};
use sim::{Sent, Sim};
use zk_client::sasl::DigestMd5Login;
use zk_proto::ErrorCode;
use zk_proto::consts::OpCode;
use zk_proto::records::*;
use zk_proto::sasl::SaslLogin;
use zk_proto::session::{Action, AppState, Disconnect, Error, Event, SessionState};

const SID: i64 = 0x5a5a;
const NONCE: &str = "OA6MG9tEQGm2hh";

fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// DIGEST-MD5 as `user` with `password`, nonces from a fixed secret.
fn digest_login(user: &str, password: &str) -> SaslLogin {
    DigestMd5Login::new(user, password, zk_client::sasl::ZOOKEEPER_DIGEST_URI, 7).login()
}

fn hex(d: [u8; 16]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of `key` in a DIGEST-MD5 field list (quotes removed).
fn field(text: &str, key: &str) -> String {
    for part in text.split(',') {
        if let Some((k, v)) = part.split_once('=')
            && k.trim() == key
        {
            return v.trim().trim_matches('"').to_string();
        }
    }
    panic!("no {key} in {text}")
}

/// What a DIGEST-MD5 server that knows `password` answers to the client's `response`:
/// `rspauth` (RFC 2831, 2.1.3), after checking the client's own digest.
fn server_proof(response: &str, password: &str) -> String {
    let user = field(response, "username");
    let realm = field(response, "realm");
    let cnonce = field(response, "cnonce");
    let nc = field(response, "nc");
    let uri = field(response, "digest-uri");
    let mut a1 = md5(format!("{user}:{realm}:{password}").as_bytes()).to_vec();
    a1.extend_from_slice(format!(":{NONCE}:{cnonce}").as_bytes());
    let ha1 = hex(md5(&a1));
    let digest = |a2: &str| {
        let ha2 = hex(md5(a2.as_bytes()));
        hex(md5(
            format!("{ha1}:{NONCE}:{nc}:{cnonce}:auth:{ha2}").as_bytes()
        ))
    };
    assert_eq!(
        field(response, "response"),
        digest(&format!("AUTHENTICATE:{uri}")),
        "the client's digest"
    );
    format!("rspauth={}", digest(&format!(":{uri}")))
}

fn challenge() -> Bytes {
    Bytes::from(format!(
        r#"realm="zk-sasl-md5",nonce="{NONCE}",qop="auth",charset=utf-8,algorithm=md5-sess"#
    ))
}

fn sasl_reply(sim: &mut Sim, xid: i32, token: Bytes) {
    sim.reply_ok(xid, OpCode::Sasl, &Response::Sasl(SaslResponse { token }));
}

/// The one SASL token sent, and its xid; fails if anything else went out.
fn only_sasl(sent: &[Sent]) -> (i32, Bytes) {
    match sent {
        [Sent::Request(xid, Request::Sasl(r))] => (*xid, r.token.clone()),
        other => panic!("expected one SASL token and nothing else, got {other:?}"),
    }
}

fn states(events: &[Event]) -> Vec<SessionState> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::State { state, .. } => Some(*state),
            _ => None,
        })
        .collect()
}

fn get(path: &str) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch: false,
    })
}

/// Runs the whole exchange on a fresh connection; returns the xid of the last token.
fn log_in(sim: &mut Sim, password: &str) {
    sim.establish(SID, 6000, false);
    let (xid, token) = only_sasl(&sim.sent());
    assert!(token.is_empty(), "DIGEST-MD5 starts with an empty token");
    assert_eq!(
        states(&sim.take_events()),
        [],
        "not connected before the login"
    );
    sasl_reply(sim, xid, challenge());
    let (xid, response) = only_sasl(&sim.sent());
    let response = String::from_utf8(response.to_vec()).unwrap();
    assert_eq!(field(&response, "username"), "alice");
    assert_eq!(field(&response, "digest-uri"), "zookeeper/zk-sasl-md5");
    sasl_reply(sim, xid, Bytes::from(server_proof(&response, password)));
}

#[test]
fn the_login_runs_first_on_every_connection_and_holds_everything_else() {
    let config = Sim::config("a:1,b:2").with_sasl(digest_login("alice", "secret"));
    let mut sim = Sim::new(config);
    sim.take_actions();
    let auth = sim.s.add_auth(sim.now, "digest", &b"u:p"[..]).unwrap();
    let early = sim.submit(get("/early"));
    log_in(&mut sim, "secret");
    let events = sim.take_events();
    assert_eq!(states(&events), [SessionState::Connected]);
    // Then, and only then, the credentials and the request that waited.
    let sent = sim.sent();
    assert!(
        matches!(sent[0], Sent::Request(-4, Request::Auth(_))),
        "{sent:?}"
    );
    assert_eq!(sent[1].request(), &get("/early"));
    let xid = sent[1].xid();
    sim.reply_ok(-4, OpCode::Auth, &Response::Empty);
    sim.reply_ok(
        xid,
        OpCode::GetData,
        &Response::GetData(GetDataResponse {
            data: Bytes::from_static(b"v"),
            stat: Default::default(),
        }),
    );
    let done = sim.completions();
    assert!(done.iter().any(|(id, r)| *id == auth && r.is_ok()));
    assert!(done.iter().any(|(id, r)| *id == early && r.is_ok()));

    // A reconnect logs in again (with a new client nonce) before anything is sent.
    sim.s.handle_disconnected(sim.now, "reset".into());
    sim.take_actions();
    sim.take_events();
    let later = sim.submit(get("/later"));
    log_in(&mut sim, "secret");
    assert_eq!(states(&sim.take_events()), [SessionState::Connected]);
    let sent = sim.sent();
    assert!(matches!(sent[0], Sent::Request(-4, Request::Auth(_))));
    assert_eq!(sent[1].request(), &get("/later"));
    let _ = later;
}

#[test]
fn a_refused_login_ends_the_session_with_the_reason_and_is_never_retried() {
    let config = Sim::config("a:1,b:2").with_sasl(digest_login("alice", "wrong"));
    let mut sim = Sim::new(config);
    sim.take_actions();
    let waiting = sim.submit(get("/x"));
    sim.establish(SID, 6000, false);
    let (xid, _) = only_sasl(&sim.sent());
    sasl_reply(&mut sim, xid, challenge());
    let (xid, _) = only_sasl(&sim.sent());
    // The server's answer to a wrong password: AUTHFAILED, then it closes.
    sim.reply_err(xid, ErrorCode::AuthFailed.as_i32());
    let events = sim.take_events();
    assert!(events.contains(&Event::Complete {
        id: waiting,
        result: Err(Error::AuthFailed),
        watch: None
    }));
    let reason = events.iter().find_map(|e| match e {
        Event::State {
            state: SessionState::AuthFailed,
            reason: Some(Disconnect::SaslFailed(why)),
        } => Some(why.clone()),
        _ => None,
    });
    let reason = reason.expect("AuthFailed with the SASL reason");
    assert!(reason.contains("DIGEST-MD5 login of `alice`"), "{reason}");
    assert!(reason.contains("check the user and password"), "{reason}");
    assert_eq!(sim.s.app_state(), AppState::Lost);
    let actions = sim.take_actions();
    assert!(matches!(
        actions[..],
        [Action::Disconnect(Disconnect::SaslFailed(_))]
    ));
    // No new connection, ever, and calls say why.
    for _ in 0..5 {
        sim.advance(std::time::Duration::from_secs(10));
        assert!(
            !sim.take_actions()
                .iter()
                .any(|a| matches!(a, Action::Connect { .. }))
        );
    }
    assert_eq!(sim.s.submit(sim.now, get("/y")), Err(Error::AuthFailed));
}

#[test]
fn a_server_that_cannot_prove_the_password_is_not_trusted() {
    let config = Sim::config("a:1").with_sasl(digest_login("alice", "secret"));
    let mut sim = Sim::new(config);
    sim.take_actions();
    sim.establish(SID, 6000, false);
    let (xid, _) = only_sasl(&sim.sent());
    sasl_reply(&mut sim, xid, challenge());
    let (xid, _) = only_sasl(&sim.sent());
    sasl_reply(
        &mut sim,
        xid,
        Bytes::from_static(b"rspauth=00000000000000000000000000000000"),
    );
    let events = sim.take_events();
    let why = events.iter().find_map(|e| match e {
        Event::State {
            reason: Some(Disconnect::SaslFailed(why)),
            ..
        } => Some(why.clone()),
        _ => None,
    });
    assert!(
        why.as_deref().is_some_and(|w| w.contains("do not trust")),
        "{events:?}"
    );
    assert_eq!(sim.s.state(), SessionState::AuthFailed);
}

#[test]
fn close_during_the_login_waits_for_it_then_closes_the_session() {
    let config = Sim::config("a:1").with_sasl(digest_login("alice", "secret"));
    let mut sim = Sim::new(config);
    sim.take_actions();
    sim.establish(SID, 6000, false);
    let (xid, _) = only_sasl(&sim.sent());
    sim.s.close(sim.now);
    assert!(sim.sent().is_empty(), "nothing but the login goes out yet");
    sasl_reply(&mut sim, xid, challenge());
    let (xid, response) = only_sasl(&sim.sent());
    let response = String::from_utf8(response.to_vec()).unwrap();
    sasl_reply(
        &mut sim,
        xid,
        Bytes::from(server_proof(&response, "secret")),
    );
    let sent = sim.sent();
    assert!(
        matches!(sent[..], [Sent::Request(_, Request::CloseSession)]),
        "{sent:?}"
    );
    sim.reply_ok(sent[0].xid(), OpCode::CloseSession, &Response::Empty);
    assert_eq!(sim.s.state(), SessionState::Closed);
}

#[test]
fn the_session_refuses_sasl_tokens_from_the_application() {
    let mut sim = Sim::new(Sim::config("a:1"));
    let r = sim.s.submit(
        sim.now,
        Request::Sasl(SaslRequest {
            token: Bytes::new(),
        }),
    );
    assert!(matches!(r, Err(Error::InvalidRequest(_))), "{r:?}");
}

/// The server takes the SASL token and never answers (a lost reply, a stalled link): the
/// session does not wait forever. It gives up on the link within the read timeout, moves
/// to the next server, and logs in there from the start; the request that waited goes out
/// only after that login.
#[test]
fn a_lost_login_reply_moves_to_the_next_server_and_logs_in_again() {
    let config = Sim::config("a:1,b:2").with_sasl(digest_login("alice", "secret"));
    let mut sim = Sim::new(config);
    assert!(matches!(
        sim.take_actions()[..],
        [Action::Connect { host: 0, .. }]
    ));
    let early = sim.submit(get("/early"));
    sim.establish(SID, 6000, false);
    let (_, token) = only_sasl(&sim.sent());
    assert!(token.is_empty());
    // No answer. Run the clock until the session acts.
    let started = sim.now;
    let mut actions = Vec::new();
    while actions.is_empty() {
        sim.run_to_deadline();
        let sent = sim.sent();
        assert!(
            sent.is_empty(),
            "nothing else while the login is open: {sent:?} after {:?}",
            sim.now - started
        );
        actions = sim.take_actions();
    }
    let waited = sim.now - started;
    assert!(
        waited <= std::time::Duration::from_millis(4000),
        "gave up after {waited:?}, past the read timeout of 2/3 of 6 s"
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Connect { host: 1, .. })),
        "{actions:?}"
    );
    assert!(
        !states(&sim.take_events()).contains(&SessionState::Connected),
        "never connected without a login"
    );
    // The next server: the whole login again, then the request that waited.
    log_in(&mut sim, "secret");
    assert_eq!(states(&sim.take_events()), [SessionState::Connected]);
    let sent = sim.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].request(), &get("/early"));
    sim.reply_ok(
        sent[0].xid(),
        OpCode::GetData,
        &Response::GetData(GetDataResponse {
            data: Bytes::from_static(b"v"),
            stat: Default::default(),
        }),
    );
    assert!(
        sim.completions()
            .iter()
            .any(|(id, r)| *id == early && r.is_ok())
    );
}

/// The client nonce of the response a fresh session with `seed` and `login` sends.
fn first_cnonce(seed: u64, login: SaslLogin) -> String {
    let mut sim = Sim::new(Sim::config("a:1").with_seed(seed).with_sasl(login));
    sim.take_actions();
    sim.establish(SID, 6000, false);
    let (xid, _) = only_sasl(&sim.sent());
    sasl_reply(&mut sim, xid, challenge());
    let (_, response) = only_sasl(&sim.sent());
    field(std::str::from_utf8(&response).unwrap(), "cnonce")
}

#[test]
fn client_nonces_come_from_the_secret_not_from_the_sessions_seed() {
    let login = |secret| DigestMd5Login::new("alice", "secret", "zookeeper/zk-sasl-md5", secret);
    // The same seed, as a user who sets one for reproducible host shuffling would have.
    let a = first_cnonce(42, login(1).login());
    let b = first_cnonce(42, login(2).login());
    assert_ne!(a, b, "the seed alone decides nothing");
    // And each connection of one login gets a fresh one.
    let shared = login(3).login();
    assert_ne!(first_cnonce(42, shared.clone()), first_cnonce(42, shared));
}

#[test]
fn a_login_in_progress_never_prints_its_password() {
    let password = "hunter2-do-not-print";
    let mut sim = Sim::new(Sim::config("a:1").with_sasl(digest_login("alice", password)));
    sim.take_actions();
    sim.establish(SID, 6000, false);
    let (xid, _) = only_sasl(&sim.sent());
    sasl_reply(&mut sim, xid, challenge());
    // Mid-exchange: the session holds the running exchange and the login.
    let printed = format!("{:?} {:?}", sim.s, digest_login("alice", password));
    assert!(printed.contains("alice"), "{printed}");
    assert!(!printed.contains(password), "{printed}");
    let exchange = zk_client::sasl::DigestMd5::new("alice", password, "x/y", "n");
    assert!(!format!("{exchange:?}").contains(password));
}
