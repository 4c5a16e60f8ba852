//! The harness starts a real server, and proto's codec speaks to it.

use bytes::Bytes;
use zk_harness::ZkServer;
use zk_proto::ErrorCode;
use zk_proto::consts::{CreateMode, perms};
use zk_proto::digest::{digest_acl, digest_credentials, digest_id};
use zk_proto::records::{
    Acl, AuthPacket, CreateRequest, GetAclRequest, GetDataRequest, Id, Request, Response,
};
use zk_tests::RawConn;

#[test]
fn a_raw_connect_request_opens_a_session() {
    let server = ZkServer::standalone().expect("start a standalone server");
    assert_eq!(server.four_letter("ruok").unwrap(), "imok");
    let conn = RawConn::connect(server.addr(), 4000).expect("handshake");
    assert_ne!(
        conn.session.session_id, 0,
        "the server assigns a session id"
    );
    assert_eq!(
        conn.session.timeout, 4000,
        "the server accepts a timeout inside its bounds"
    );
    assert_eq!(
        conn.session.passwd.len(),
        16,
        "the session password is 16 bytes"
    );
    assert!(!conn.session.read_only);
}

fn auth(conn: &mut RawConn, user: &str, password: &str) {
    let packet = Request::Auth(AuthPacket {
        kind: 0,
        scheme: "digest".into(),
        auth: Bytes::from(digest_credentials(user, password)),
    });
    let (header, _) = conn.call(-4, &packet).expect("auth reply");
    assert_eq!(header.err, 0, "digest credentials are accepted");
}

fn create(path: &str, acl: Vec<Acl>) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Bytes::from_static(b"secret"),
        acl,
        flags: CreateMode::Persistent.as_i32(),
    })
}

#[test]
fn the_digest_helper_matches_the_servers_digest() {
    let server = ZkServer::standalone().expect("start a standalone server");
    let mut alice = RawConn::connect(server.addr(), 4000).unwrap();
    auth(&mut alice, "alice", "wonderland");

    // With the `auth` scheme the server writes the digest it computed itself into the ACL.
    let created = alice
        .request(1, &create("/by-auth", Acl::creator_all()))
        .unwrap();
    assert!(created.is_ok(), "create with CREATOR_ALL_ACL: {created:?}");
    let get_acl = Request::GetAcl(GetAclRequest {
        path: "/by-auth".into(),
    });
    let Response::GetAcl(acl) = alice.request(2, &get_acl).unwrap().expect("getACL") else {
        panic!("not a getACL reply");
    };
    let expected = Id::new("digest", digest_id("alice", "wonderland"));
    assert_eq!(acl.acl, vec![Acl::new(perms::ALL, expected)]);

    // An ACL built by the helper grants access to exactly that user.
    let acl = vec![digest_acl(perms::READ, "alice", "wonderland")];
    assert!(
        alice
            .request(3, &create("/by-digest", acl))
            .unwrap()
            .is_ok()
    );
    let read = Request::GetData(GetDataRequest {
        path: "/by-digest".into(),
        watch: false,
    });
    let Response::GetData(data) = alice.request(4, &read).unwrap().expect("alice may read") else {
        panic!("not a getData reply");
    };
    assert_eq!(&data.data[..], b"secret");

    let mut mallory = RawConn::connect(server.addr(), 4000).unwrap();
    assert_eq!(
        mallory.request(1, &read).unwrap().unwrap_err(),
        ErrorCode::NoAuth
    );
    auth(&mut mallory, "alice", "wrong password");
    assert_eq!(
        mallory.request(2, &read).unwrap().unwrap_err(),
        ErrorCode::NoAuth
    );
}
