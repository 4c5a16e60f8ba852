//! The client error is flat: every session error becomes the variant of the same name, keeps
//! its code and retryability, and maps back unchanged for the retry policy.

use std::time::Duration;

use zk_client::Error;
use zk_proto::ErrorCode;
use zk_proto::path::validate_path;
use zk_proto::session;

#[test]
fn every_session_error_is_a_flat_variant_and_back() {
    let path_error = validate_path("no/slash").unwrap_err();
    let all = [
        session::Error::Server(ErrorCode::NoNode),
        session::Error::ConnectionLoss,
        session::Error::SessionExpired,
        session::Error::Closed,
        session::Error::AuthFailed,
        session::Error::Timeout(Duration::from_secs(3)),
        session::Error::QueueFull(10),
        session::Error::InvalidPath(path_error.clone()),
        session::Error::TooLarge { size: 2, max: 1 },
        session::Error::InvalidRequest("pings are the session's"),
    ];
    for e in all {
        let flat = Error::from(e.clone());
        assert_eq!(flat.code(), Some(e.code()), "{e:?}");
        assert_eq!(flat.is_retryable(), e.is_retryable(), "{e:?}");
        assert_eq!(flat.to_string(), e.to_string(), "{e:?}");
        assert_eq!(flat.to_session(), Some(e));
    }
    // Matched directly, without a layer in between.
    assert!(matches!(
        Error::from(session::Error::SessionExpired),
        Error::SessionExpired
    ));
    assert!(matches!(
        Error::from(session::Error::Server(ErrorCode::NodeExists)),
        Error::Server {
            code: ErrorCode::NodeExists,
            path: None
        }
    ));
    assert_eq!(
        Error::from(session::Error::InvalidPath(path_error.clone())),
        Error::InvalidPath(path_error)
    );
}

#[test]
fn a_server_error_names_the_node_of_its_call() {
    let e = Error::from(session::Error::Server(ErrorCode::BadVersion)).at_path("/app/a");
    assert_eq!(e.path(), Some("/app/a"));
    assert!(e.is(ErrorCode::BadVersion));
    assert_eq!(
        e.to_string(),
        "/app/a: version mismatch: the node changed since the version given was read \
         (code -103)"
    );
    // The first path named stays: a plan's step names its own node.
    assert_eq!(e.clone().at_path("/other").path(), Some("/app/a"));
    // Its session form is the same code, without the path.
    assert_eq!(
        e.to_session(),
        Some(session::Error::Server(ErrorCode::BadVersion))
    );
    // Only server errors take a path.
    assert_eq!(Error::ConnectionLoss.at_path("/x").path(), None);
    // An operation's own decoder names its request's path.
    let get = zk_client::op::get_data("/cfg", false);
    let e = get
        .decode(Err(session::Error::Server(ErrorCode::NoNode)))
        .unwrap_err();
    assert_eq!(e.path(), Some("/cfg"));
}

#[test]
fn the_clients_own_errors_have_no_session_form() {
    let own = [
        Error::CallTimeout(Duration::from_secs(1)),
        Error::ConnectTimeout {
            waited: Duration::from_secs(1),
            failures: vec![("127.0.0.1:1".into(), "refused".into())],
        },
        Error::UnexpectedResponse,
        Error::Start("no threads".into()),
    ];
    for e in own {
        assert_eq!(e.to_session(), None, "{e:?}");
    }
    assert!(Error::CallTimeout(Duration::from_secs(1)).is_retryable());
    assert_eq!(
        Error::CallTimeout(Duration::from_secs(1)).code(),
        Some(ErrorCode::OperationTimeout)
    );
}
