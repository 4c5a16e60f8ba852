//! Property tests of the codec: every record round-trips, every strict prefix of an encoding
//! asks for more input, any chunking of a stream gives the same frames, and random bytes never
//! make a decoder panic.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use zk_proto::codec::{DecodeError, FrameDecoder, Jute, Origin, jute};
use zk_proto::consts::OpCode;
use zk_proto::error::ErrorCode;
use zk_proto::records::*;

fn s_string() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9/_.:é-]{0,12}"
}

fn s_path() -> impl Strategy<Value = String> {
    "(/[a-z0-9]{1,6}){0,3}".prop_map(|p| if p.is_empty() { "/".to_owned() } else { p })
}

fn s_bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

fn s_stat() -> impl Strategy<Value = Stat> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>()),
        (any::<i64>(), any::<i32>(), any::<i32>(), any::<i64>()),
    )
        .prop_map(
            |((czxid, mzxid, ctime, mtime), (version, cversion, aversion), (eo, dl, nc, pzxid))| {
                Stat {
                    czxid,
                    mzxid,
                    ctime,
                    mtime,
                    version,
                    cversion,
                    aversion,
                    ephemeral_owner: eo,
                    data_length: dl,
                    num_children: nc,
                    pzxid,
                }
            },
        )
}

fn s_id() -> impl Strategy<Value = Id> {
    (s_string(), s_string()).prop_map(|(scheme, id)| Id { scheme, id })
}

fn s_acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(
        (any::<i32>(), s_id()).prop_map(|(perms, id)| Acl { perms, id }),
        0..3,
    )
}

fn s_names() -> impl Strategy<Value = Vec<String>> {
    vec(s_string(), 0..4)
}

fn s_paths() -> impl Strategy<Value = Vec<String>> {
    vec(s_path(), 0..4)
}

fn s_create() -> impl Strategy<Value = CreateRequest> {
    (s_path(), s_bytes(), s_acls(), any::<i32>()).prop_map(|(path, data, acl, flags)| {
        CreateRequest {
            path,
            data,
            acl,
            flags,
        }
    })
}

fn s_create_ttl() -> impl Strategy<Value = CreateTtlRequest> {
    (s_path(), s_bytes(), s_acls(), any::<i32>(), any::<i64>()).prop_map(
        |(path, data, acl, flags, ttl)| CreateTtlRequest {
            path,
            data,
            acl,
            flags,
            ttl,
        },
    )
}

fn s_multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        s_create().prop_map(MultiOp::Create),
        s_create().prop_map(MultiOp::Create2),
        s_create().prop_map(MultiOp::CreateContainer),
        s_create_ttl().prop_map(MultiOp::CreateTtl),
        (s_path(), any::<i32>())
            .prop_map(|(path, version)| MultiOp::Delete(DeleteRequest { path, version })),
        (s_path(), s_bytes(), any::<i32>()).prop_map(|(path, data, version)| MultiOp::SetData(
            SetDataRequest {
                path,
                data,
                version
            }
        )),
        (s_path(), any::<i32>())
            .prop_map(|(path, version)| MultiOp::Check(CheckVersionRequest { path, version })),
        (s_path(), any::<bool>())
            .prop_map(|(path, watch)| MultiOp::GetData(GetDataRequest { path, watch })),
        (s_path(), any::<bool>())
            .prop_map(|(path, watch)| MultiOp::GetChildren(GetChildrenRequest { path, watch })),
    ]
}

fn s_opt_string() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(s_string())
}

/// Every request except GetConfig, which decodes as the GetData it is on the wire.
fn s_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        s_create().prop_map(Request::Create),
        s_create().prop_map(Request::Create2),
        s_create().prop_map(Request::CreateContainer),
        s_create_ttl().prop_map(Request::CreateTtl),
        (s_path(), any::<i32>())
            .prop_map(|(path, version)| Request::Delete(DeleteRequest { path, version })),
        (s_path(), any::<bool>())
            .prop_map(|(path, watch)| Request::Exists(ExistsRequest { path, watch })),
        (s_path(), any::<bool>())
            .prop_map(|(path, watch)| Request::GetData(GetDataRequest { path, watch })),
        (s_path(), s_bytes(), any::<i32>()).prop_map(|(path, data, version)| Request::SetData(
            SetDataRequest {
                path,
                data,
                version
            }
        )),
        s_path().prop_map(|path| Request::GetAcl(GetAclRequest { path })),
        (s_path(), s_acls(), any::<i32>())
            .prop_map(|(path, acl, version)| Request::SetAcl(SetAclRequest { path, acl, version })),
        (s_path(), any::<bool>())
            .prop_map(|(path, watch)| Request::GetChildren(GetChildrenRequest { path, watch })),
        (s_path(), any::<bool>())
            .prop_map(|(path, watch)| Request::GetChildren2(GetChildrenRequest { path, watch })),
        s_path()
            .prop_map(|path| Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path })),
        s_path()
            .prop_map(|prefix_path| Request::GetEphemerals(GetEphemeralsRequest { prefix_path })),
        s_path().prop_map(|path| Request::Sync(SyncRequest { path })),
        (s_path(), any::<i32>())
            .prop_map(|(path, version)| Request::Check(CheckVersionRequest { path, version })),
        vec(s_multi_op(), 0..4).prop_map(|ops| Request::Multi(MultiRequest { ops })),
        vec(s_multi_op(), 0..4).prop_map(|ops| Request::MultiRead(MultiRequest { ops })),
        (s_opt_string(), s_opt_string(), s_opt_string(), any::<i64>()).prop_map(|(j, l, n, c)| {
            Request::Reconfig(ReconfigRequest {
                joining_servers: j,
                leaving_servers: l,
                new_members: n,
                cur_config_id: c,
            })
        }),
        (s_path(), any::<i32>())
            .prop_map(|(path, kind)| Request::CheckWatches(CheckWatchesRequest { path, kind })),
        (s_path(), any::<i32>())
            .prop_map(|(path, kind)| Request::RemoveWatches(RemoveWatchesRequest { path, kind })),
        (s_path(), any::<i32>())
            .prop_map(|(path, mode)| Request::AddWatch(AddWatchRequest { path, mode })),
        Just(Request::WhoAmI),
        (any::<i32>(), s_string(), s_bytes())
            .prop_map(|(kind, scheme, auth)| Request::Auth(AuthPacket { kind, scheme, auth })),
        (any::<i64>(), s_paths(), s_paths(), s_paths()).prop_map(|(z, d, e, c)| {
            Request::SetWatches(SetWatches {
                relative_zxid: z,
                data_watches: d,
                exist_watches: e,
                child_watches: c,
            })
        }),
        (
            any::<i64>(),
            s_paths(),
            s_paths(),
            s_paths(),
            s_paths(),
            s_paths()
        )
            .prop_map(|(z, d, e, c, p, r)| {
                Request::SetWatches2(SetWatches2 {
                    relative_zxid: z,
                    data_watches: d,
                    exist_watches: e,
                    child_watches: c,
                    persistent_watches: p,
                    persistent_recursive_watches: r,
                })
            }),
        s_bytes().prop_map(|token| Request::Sasl(SaslRequest { token })),
        Just(Request::Ping),
        Just(Request::CloseSession),
    ]
}

fn s_error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        proptest::sample::select(ErrorCode::ALL.to_vec()),
        any::<i32>().prop_map(ErrorCode::from_i32),
    ]
}

fn s_op_result() -> impl Strategy<Value = OpResult> {
    prop_oneof![
        s_string().prop_map(|path| OpResult::Create(CreateResponse { path })),
        (s_string(), s_stat())
            .prop_map(|(path, stat)| OpResult::Create2(Create2Response { path, stat })),
        Just(OpResult::Delete),
        s_stat().prop_map(OpResult::SetData),
        Just(OpResult::Check),
        (s_bytes(), s_stat())
            .prop_map(|(data, stat)| OpResult::GetData(GetDataResponse { data, stat })),
        s_names().prop_map(|children| OpResult::GetChildren(GetChildrenResponse { children })),
        s_error_code().prop_map(OpResult::Error),
    ]
}

/// A response and an opcode whose replies have that shape.
fn s_response() -> impl Strategy<Value = (OpCode, Response)> {
    prop_oneof![
        Just((OpCode::Delete, Response::Empty)),
        s_string().prop_map(|path| (OpCode::Create, Response::Create(CreateResponse { path }))),
        (s_string(), s_stat()).prop_map(|(path, stat)| (
            OpCode::Create2,
            Response::Create2(Create2Response { path, stat })
        )),
        s_stat().prop_map(|s| (OpCode::Exists, Response::Stat(s))),
        (s_bytes(), s_stat()).prop_map(|(data, stat)| (
            OpCode::GetData,
            Response::GetData(GetDataResponse { data, stat })
        )),
        (s_acls(), s_stat()).prop_map(|(acl, stat)| (
            OpCode::GetAcl,
            Response::GetAcl(GetAclResponse { acl, stat })
        )),
        s_names().prop_map(|children| (
            OpCode::GetChildren,
            Response::GetChildren(GetChildrenResponse { children })
        )),
        (s_names(), s_stat()).prop_map(|(children, stat)| {
            (
                OpCode::GetChildren2,
                Response::GetChildren2(GetChildren2Response { children, stat }),
            )
        }),
        s_string().prop_map(|path| (OpCode::Sync, Response::Sync(SyncResponse { path }))),
        any::<i32>().prop_map(|err| (OpCode::AddWatch, Response::Status(ErrorResponse { err }))),
        vec(s_op_result(), 0..4)
            .prop_map(|results| (OpCode::Multi, Response::Multi(MultiResponse { results }))),
        any::<i32>().prop_map(|total_number| {
            (
                OpCode::GetAllChildrenNumber,
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number }),
            )
        }),
        s_names().prop_map(|ephemerals| (
            OpCode::GetEphemerals,
            Response::GetEphemerals(GetEphemeralsResponse { ephemerals })
        )),
        vec(
            (s_string(), s_string())
                .prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user }),
            0..3
        )
        .prop_map(|client_info| (
            OpCode::WhoAmI,
            Response::WhoAmI(WhoAmIResponse { client_info })
        )),
        s_bytes().prop_map(|token| (OpCode::Sasl, Response::Sasl(SaslResponse { token }))),
    ]
}

/// Encoding then decoding gives the value back and uses every byte; every strict prefix asks
/// for more input (`complete_at` lists prefix lengths that legitimately decode, such as a
/// connect record without its optional trailing flag).
fn check_record<T: Jute + PartialEq + std::fmt::Debug>(
    v: &T,
    complete_at: &[usize],
) -> Result<(), TestCaseError> {
    let bytes = v.to_bytes();
    prop_assert_eq!(bytes.len(), v.encoded_len());
    let (back, used) = T::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, v);
    prop_assert_eq!(used, bytes.len());
    let (copied, _) = T::from_slice(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&copied, v);
    for n in 0..bytes.len() {
        if complete_at.contains(&n) {
            continue;
        }
        let r = T::from_slice(&bytes[..n]);
        prop_assert!(
            matches!(r, Err(DecodeError::Incomplete { .. })),
            "prefix {} of {}: {:?}",
            n,
            bytes.len(),
            r
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn stat_acl_id_round_trip(s in s_stat(), a in s_acls()) {
        check_record(&s, &[])?;
        check_record(&a, &[])?;
    }

    #[test]
    fn headers_round_trip(xid in any::<i32>(), op in any::<i32>(), zxid in any::<i64>(), err in any::<i32>(), done in any::<bool>()) {
        check_record(&RequestHeader { xid, op }, &[])?;
        check_record(&ReplyHeader { xid, zxid, err }, &[])?;
        check_record(&MultiHeader { op, done, err }, &[])?;
    }

    #[test]
    fn connect_records_round_trip(
        v in any::<i32>(), z in any::<i64>(), t in any::<i32>(), s in any::<i64>(), p in s_bytes(), ro in any::<bool>()
    ) {
        let req = ConnectRequest { protocol_version: v, last_zxid_seen: z, timeout: t, session_id: s, passwd: p.clone(), read_only: ro };
        let len = req.encoded_len();
        check_record(&req, &[len - 1])?;
        let resp = ConnectResponse { protocol_version: v, timeout: t, session_id: s, passwd: p, read_only: ro };
        let len = resp.encoded_len();
        check_record(&resp, &[len - 1])?;
    }

    #[test]
    fn watcher_event_and_auth_round_trip(kind in any::<i32>(), state in any::<i32>(), path in s_path(), scheme in s_string(), auth in s_bytes()) {
        check_record(&WatcherEvent { kind, state, path }, &[])?;
        check_record(&AuthPacket { kind, scheme, auth }, &[])?;
    }

    #[test]
    fn every_request_round_trips_as_a_frame(req in s_request(), xid in any::<i32>()) {
        let mut buf = BytesMut::new();
        let len = req.encode_frame(xid, "", &mut buf);
        prop_assert_eq!(len + 4, buf.len());
        let frame = buf.freeze().slice(4..);
        let (h, back) = Request::decode_frame(&frame).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(h, RequestHeader { xid, op: req.opcode().as_i32() });
        prop_assert_eq!(&back, &req);
        for n in 0..frame.len() {
            let r = jute::finish(&frame[..n], RequestHeader::read(Origin::copied(), &frame[..n])
                .and_then(|(i, h)| Request::read_body(h.op, Origin::copied(), i)));
            prop_assert!(matches!(r, Err(DecodeError::Incomplete { .. })), "prefix {}: {:?}", n, r);
            let whole = Bytes::copy_from_slice(&frame[..n]);
            let r = Request::decode_frame(&whole);
            prop_assert!(matches!(r, Err(DecodeError::Truncated { .. })), "prefix {}: {:?}", n, r);
        }
    }

    #[test]
    fn every_response_round_trips((op, resp) in s_response()) {
        let mut buf = BytesMut::new();
        resp.write(&mut zk_proto::codec::Writer::new(&mut buf));
        let body = buf.freeze();
        let back = Response::decode_for(op, &body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &resp);
        for n in 0..body.len() {
            let r = jute::finish(&body[..n], Response::read_for(op, Origin::copied(), &body[..n]));
            prop_assert!(matches!(r, Err(DecodeError::Incomplete { .. })), "prefix {}: {:?}", n, r);
        }
    }

    #[test]
    fn chroot_is_added_to_every_path(req in s_request()) {
        let mut plain = BytesMut::new();
        req.encode_frame(1, "", &mut plain);
        let mut rooted = BytesMut::new();
        req.encode_frame(1, "/app", &mut rooted);
        let rooted = rooted.freeze().slice(4..);
        let (_, back) = Request::decode_frame(&rooted).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let (Some(p), Some(q)) = (req.path(), back.path()) {
            let expected = if p == "/" { "/app".to_owned() } else { format!("/app{p}") };
            prop_assert_eq!(q, expected.as_str());
        }
    }

    #[test]
    fn any_chunking_gives_the_same_frames(
        frames in vec(vec(any::<u8>(), 0..50), 0..8),
        cuts in vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut stream = Vec::new();
        for f in &frames {
            stream.extend_from_slice(&(f.len() as i32).to_be_bytes());
            stream.extend_from_slice(f);
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut d = FrameDecoder::new(100);
        let mut got = Vec::new();
        for w in points.windows(2) {
            d.push(&stream[w[0]..w[1]]);
            while let Some(f) = d.next_frame().map_err(|e| TestCaseError::fail(e.to_string()))? {
                got.push(f.to_vec());
            }
        }
        prop_assert_eq!(got, frames);
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_frames(frames in vec(vec(any::<u8>(), 0..30), 0..5)) {
        let mut d = FrameDecoder::new(100);
        let mut got = Vec::new();
        for f in &frames {
            for b in (f.len() as i32).to_be_bytes().iter().chain(f.iter()) {
                d.push(&[*b]);
                while let Some(f) = d.next_frame().map_err(|e| TestCaseError::fail(e.to_string()))? {
                    got.push(f.to_vec());
                }
            }
        }
        prop_assert_eq!(got, frames);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Random bytes, decoded as every kind of thing a client or server reads, give values or
    /// typed errors and never panic.
    #[test]
    fn random_bytes_never_panic(data in vec(any::<u8>(), 0..200), op in any::<i32>()) {
        let bytes = Bytes::from(data);
        let _ = ReplyHeader::decode(&bytes);
        let _ = ConnectResponse::decode(&bytes);
        let _ = ConnectRequest::decode(&bytes);
        let _ = WatcherEvent::decode(&bytes);
        let _ = Request::decode_frame(&bytes);
        let _ = MultiResponse::decode(&bytes);
        let _ = MultiRequest::decode(&bytes);
        if let Some(code) = OpCode::from_i32(op.rem_euclid(110)) {
            let _ = Response::decode_for(code, &bytes);
        }
        for code in OpCode::ALL {
            let _ = Response::decode_for(*code, &bytes);
        }
        let mut d = FrameDecoder::new(64);
        d.push(&bytes);
        for _ in 0..bytes.len() + 1 {
            match d.next_frame() {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        prop_assert!(d.buffered() <= bytes.len());
    }
}

#[test]
fn get_config_reads_the_config_node_outside_the_chroot() {
    let mut buf = BytesMut::new();
    Request::GetConfig { watch: true }.encode_frame(5, "/app", &mut buf);
    let frame = buf.freeze().slice(4..);
    let (h, r) = Request::decode_frame(&frame).unwrap();
    assert_eq!(h.op, OpCode::GetData.as_i32());
    assert_eq!(
        r,
        Request::GetData(GetDataRequest {
            path: "/zookeeper/config".into(),
            watch: true
        })
    );
}
