//! Requests after the handshake, in the order the server's pipeline handles them: auth
//! packets, the session touch, unknown opcodes, read-only refusals, then each operation
//! with the error codes and replies of `FinalRequestProcessor`.

use std::time::Instant;

use bytes::Bytes;
use zk_proto::codec::{Jute, Origin};
use zk_proto::consts::{AddWatchMode, CreateMode, WatcherType, perms};
use zk_proto::records::*;
use zk_proto::{ErrorCode, OpCode};

use super::apply::{apply_op, is_write};
use super::lag::{Deferred, Effect};
use super::prep::{TxnOp as Prepared, View};
use super::{ConnId, Ensemble};
use crate::acl;
use crate::history::{Txn, TxnOp};
use crate::tree::{DataTree, Notification};
use crate::watch::Mode;

/// Opcodes the server accepts (`Request.isValid`); others get Unimplemented and a close.
fn is_valid(op: i32) -> bool {
    OpCode::from_i32(op).is_some_and(|op| {
        !matches!(
            op,
            OpCode::Notification | OpCode::Error | OpCode::Auth | OpCode::Sasl
        )
    })
}

/// The tree `server` serves, taken from the ensemble's fields so that its connections can
/// be read beside it.
fn served_mut<'a>(
    tree: &'a mut DataTree,
    replicas: &'a mut [Option<super::lag::Replica>],
    server: usize,
) -> &'a mut DataTree {
    match replicas.get_mut(server) {
        Some(Some(r)) => &mut r.tree,
        _ => tree,
    }
}

/// Writes take a zxid before their body is even read, so a malformed one still uses one.
fn takes_zxid(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Create
            | OpCode::Create2
            | OpCode::CreateTtl
            | OpCode::CreateContainer
            | OpCode::Delete
            | OpCode::SetData
            | OpCode::SetAcl
            | OpCode::Check
            | OpCode::Multi
    )
}

/// The result of one read: a body, or an error code.
type ReadResult = Result<Response, ErrorCode>;

impl Ensemble {
    pub(crate) fn handle_request(&mut self, now: Instant, conn: ConnId, frame: Bytes) {
        let Ok((header, used)) = RequestHeader::decode(&frame) else {
            // A frame too short for a header: the server's read fails and it closes.
            self.close(conn);
            return;
        };
        let body = frame.slice(used..);
        let (xid, op) = (header.xid, header.op);
        let ms = self.ms(now);
        if let Some(c) = self.conns.get_mut(&conn) {
            if let Some(name) = super::words::op_name(op) {
                c.stats.last_op = name;
            }
            c.stats.last_cxid = i64::from(xid);
            c.stats.last_response = ms;
        }
        if op == OpCode::Auth.as_i32() {
            self.handle_auth(conn, xid, &body);
            return;
        }
        if op == OpCode::Sasl.as_i32() {
            self.handle_sasl(conn, xid, &body);
            return;
        }
        let (session, timeout) = {
            let c = &self.conns[&conn];
            (c.session, c.timeout_ms)
        };
        if !self.sessions.touch(session, timeout, ms) {
            // The session is gone or closing: the server drops the request unanswered.
            return;
        }
        if !is_valid(op) {
            self.reply(conn, xid, -1, ErrorCode::Unimplemented.as_i32(), None);
            self.close(conn);
            return;
        }
        let code = OpCode::from_i32(op).expect("checked by is_valid");
        let server = self.conns[&conn].server;
        if self.holds(conn, code) {
            self.defer(conn, Deferred::Request(frame));
            return;
        }
        if self.read_only(server) && is_write(code) {
            let zxid = self.applied(server);
            self.reply(conn, xid, zxid, ErrorCode::NotReadOnly.as_i32(), None);
            return;
        }
        let request = Request::read_body(op, Origin::shared(&body), &body);
        let request = match request {
            Ok((_, r)) => r,
            Err(_) => {
                if takes_zxid(code) {
                    self.write_failed(now, conn, xid, session, ErrorCode::MarshallingError);
                } else {
                    let zxid = self.applied(server);
                    self.reply(conn, xid, zxid, ErrorCode::MarshallingError.as_i32(), None);
                }
                return;
            }
        };
        match request {
            Request::Ping => {
                let zxid = self.applied(server);
                // The reply always carries the ping xid, whatever the request said.
                self.reply(conn, -2, zxid, 0, None);
            }
            Request::CloseSession => self.client_close(now, conn, xid, session),
            Request::Create(r) => {
                self.write(now, conn, xid, session, |v| v.prepare(&MultiOp::Create(r)))
            }
            Request::Create2(r) => {
                self.write(now, conn, xid, session, |v| v.prepare(&MultiOp::Create2(r)))
            }
            Request::CreateContainer(r) => self.write(now, conn, xid, session, |v| {
                v.prepare(&MultiOp::CreateContainer(r))
            }),
            Request::CreateTtl(r) => self.write(now, conn, xid, session, |v| {
                v.prepare(&MultiOp::CreateTtl(r))
            }),
            Request::Delete(r) => {
                self.write(now, conn, xid, session, |v| v.prepare(&MultiOp::Delete(r)))
            }
            Request::SetData(r) => {
                self.write(now, conn, xid, session, |v| v.prepare(&MultiOp::SetData(r)))
            }
            Request::Check(r) => {
                self.write(now, conn, xid, session, |v| v.prepare(&MultiOp::Check(r)))
            }
            Request::SetAcl(r) => self.write(now, conn, xid, session, |v| {
                v.set_acl(&r.path, &r.acl, r.version)
            }),
            Request::Multi(m) => self.multi(now, conn, xid, session, &m.ops),
            Request::Reconfig(_) => {
                // reconfigEnabled is off: the refusal still takes a zxid.
                self.write_failed(now, conn, xid, session, ErrorCode::ReconfigDisabled)
            }
            other => {
                let mut notes = Vec::new();
                let result = self.read(conn, session, &other, &mut notes);
                self.notify(notes);
                // A sync is answered once this member applied everything committed when
                // it arrived; a read with what the member has applied.
                let zxid = match other {
                    Request::Sync(_) => self.tree.last_zxid,
                    _ => self.applied(server),
                };
                match result {
                    Ok(body) => self.reply(conn, xid, zxid, 0, Some(&body)),
                    Err((code, partial)) => {
                        self.reply(conn, xid, zxid, code.as_i32(), partial.as_ref())
                    }
                }
            }
        }
    }

    /// `AuthPacket`: digest and ip add an identity; any other scheme fails and closes.
    /// The reply's zxid is 0.
    fn handle_auth(&mut self, conn: ConnId, xid: i32, body: &Bytes) {
        let Ok((packet, _)) = AuthPacket::decode(body) else {
            self.close(conn);
            return;
        };
        let super_digest = self.config.super_digest.clone();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let ok = match packet.scheme.as_str() {
            "digest" => {
                let credentials = String::from_utf8_lossy(&packet.auth);
                let digest = acl::digest_of(&credentials);
                if super_digest.as_deref() == Some(digest.as_str()) {
                    c.ids.add(Id::new("super", ""));
                }
                c.ids.add(Id::new("digest", digest));
                true
            }
            "ip" => {
                let ip = c.ids.iter().find(|i| i.scheme == "ip").cloned();
                if let Some(ip) = ip {
                    c.ids.add(ip);
                }
                true
            }
            _ => false,
        };
        if ok {
            self.reply(conn, xid, 0, 0, None);
        } else {
            self.reply(conn, xid, 0, ErrorCode::AuthFailed.as_i32(), None);
            self.close(conn);
        }
    }

    /// A SASL token: DIGEST-MD5 against the configured users, as `DigestLoginModule`
    /// serves it. Without users (no SASL configured) the client is told and dropped.
    fn handle_sasl(&mut self, conn: ConnId, xid: i32, body: &Bytes) {
        let refuse = |e: &mut Ensemble| {
            e.reply(conn, xid, 0, ErrorCode::AuthFailed.as_i32(), None);
            e.close(conn);
        };
        if self.config.sasl_users.is_empty() {
            refuse(self);
            return;
        }
        let Ok((request, _)) = SaslRequest::decode(body) else {
            self.close(conn);
            return;
        };
        let seed = (self.config.wall_clock_ms as u64) ^ (conn.0 << 24) ^ self.zxid as u64;
        let users = self.config.sasl_users.clone();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let token = match c.sasl.take() {
            None => {
                let (token, state) = crate::sasl::DigestServer::challenge(seed);
                c.sasl = Some(state);
                token
            }
            Some(crate::sasl::DigestServer::Done) => {
                c.sasl = Some(crate::sasl::DigestServer::Done);
                Vec::new()
            }
            Some(state) => {
                let password_of = |user: &str| {
                    users
                        .iter()
                        .find(|(u, _)| u == user)
                        .map(|(_, p)| p.clone())
                };
                match state.respond(&request.token, password_of) {
                    crate::sasl::Answer::LoggedIn { user, token } => {
                        c.ids.add(Id::new("sasl", user));
                        c.sasl = Some(crate::sasl::DigestServer::Done);
                        token
                    }
                    crate::sasl::Answer::Refused => {
                        refuse(self);
                        return;
                    }
                }
            }
        };
        let response = Response::Sasl(SaslResponse {
            token: Bytes::from(token),
        });
        self.reply(conn, xid, 0, 0, Some(&response));
    }

    fn next_zxid(&mut self) -> i64 {
        self.zxid += 1;
        self.zxid
    }

    /// A write refused before it was prepared: an error transaction with its zxid.
    fn write_failed(&mut self, now: Instant, conn: ConnId, xid: i32, session: i64, err: ErrorCode) {
        let zxid = self.next_zxid();
        self.tree.last_zxid = zxid;
        self.record(Txn {
            zxid,
            time: now,
            session,
            op: TxnOp::Error(err),
        });
        self.replicate(now, zxid, Effect::Nothing);
        self.reply(conn, xid, zxid, err.as_i32(), None);
    }

    /// A single write: prepared, then applied (or an error transaction), then answered.
    fn write(
        &mut self,
        now: Instant,
        conn: ConnId,
        xid: i32,
        session: i64,
        prepare: impl FnOnce(&mut View<'_>) -> Result<Prepared, ErrorCode>,
    ) {
        let zxid = self.next_zxid();
        let time = self.wall(now);
        let prepared = {
            let ids = &self.conns[&conn].ids;
            let mut view = View::new(&self.tree, session, ids, zxid, time);
            prepare(&mut view)
        };
        match prepared {
            Err(ErrorCode::SystemError) => {
                // The transaction cannot be applied: the server (every server, since each
                // applies it) stops with a fatal error, as ZooKeeper 3.8 does.
                for s in 0..self.servers.len() {
                    self.kill(now, s);
                }
            }
            Err(err) => {
                self.tree.last_zxid = zxid;
                self.record(Txn {
                    zxid,
                    time: now,
                    session,
                    op: TxnOp::Error(err),
                });
                self.replicate(now, zxid, Effect::Nothing);
                self.reply(conn, xid, zxid, err.as_i32(), None);
            }
            Ok(txn) => {
                let mut notes = Vec::new();
                let (result, record) = apply_op(&mut self.tree, &txn, zxid, time, &mut notes);
                self.tree.last_zxid = zxid;
                self.record(Txn {
                    zxid,
                    time: now,
                    session,
                    op: record,
                });
                self.replicate(
                    now,
                    zxid,
                    Effect::Ops {
                        time,
                        ops: vec![txn],
                    },
                );
                self.notify(notes);
                let body = match result {
                    OpResult::Create(r) => Some(Response::Create(r)),
                    OpResult::Create2(r) => Some(Response::Create2(r)),
                    OpResult::SetData(s) => Some(Response::Stat(s)),
                    // A check outside a multi that passes has no stat for its reply: the
                    // server fails to serialize it and sends nothing (3.8.0 logs a
                    // NullPointerException). The client never hears back. In an ensemble
                    // the followers cannot read the check transaction from the leader
                    // ("Unsupported Txn with type=13") and stop following: they go down.
                    OpResult::Check => {
                        if !self.config.standalone {
                            let leader = self.leader;
                            for s in 0..self.servers.len() {
                                if Some(s) != leader {
                                    self.kill(now, s);
                                }
                            }
                        }
                        return;
                    }
                    _ => None,
                };
                self.reply(conn, xid, zxid, 0, body.as_ref());
            }
        }
    }

    /// A multi: every operation prepared in order against the changes of the ones before;
    /// the first failure fails them all (earlier ones report Ok, later ones
    /// RuntimeInconsistency), otherwise all are applied under one zxid.
    fn multi(&mut self, now: Instant, conn: ConnId, xid: i32, session: i64, ops: &[MultiOp]) {
        let zxid = self.next_zxid();
        let time = self.wall(now);
        // The server rebuilds each operation from its record (Op.create picks the opcode
        // from the flags) and refuses reads in a multi; both fail the whole request.
        let ops: Option<Vec<MultiOp>> = ops.iter().map(as_server_sees_it).collect();
        let Some(ops) = ops else {
            self.tree.last_zxid = zxid;
            self.record(Txn {
                zxid,
                time: now,
                session,
                op: TxnOp::Error(ErrorCode::MarshallingError),
            });
            self.replicate(now, zxid, Effect::Nothing);
            self.reply(conn, xid, zxid, ErrorCode::MarshallingError.as_i32(), None);
            return;
        };
        let mut prepared = Vec::with_capacity(ops.len());
        let mut failed = None;
        {
            let ids = &self.conns[&conn].ids;
            let mut view = View::new(&self.tree, session, ids, zxid, time);
            for (i, op) in ops.iter().enumerate() {
                match view.prepare(op) {
                    Ok(t) => prepared.push(t),
                    Err(e) => {
                        failed = Some((i, e));
                        break;
                    }
                }
            }
        }
        let mut results = Vec::with_capacity(ops.len());
        let mut records = Vec::with_capacity(ops.len());
        let mut notes = Vec::new();
        match failed {
            Some((at, err)) => {
                for i in 0..ops.len() {
                    let code = match i.cmp(&at) {
                        std::cmp::Ordering::Less => ErrorCode::Ok,
                        std::cmp::Ordering::Equal => err,
                        std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                    };
                    results.push(OpResult::Error(code));
                    records.push(TxnOp::Error(code));
                }
            }
            None => {
                for txn in &prepared {
                    let (r, rec) = apply_op(&mut self.tree, txn, zxid, time, &mut notes);
                    results.push(r);
                    records.push(rec);
                }
            }
        }
        self.tree.last_zxid = zxid;
        self.record(Txn {
            zxid,
            time: now,
            session,
            op: TxnOp::Multi(records),
        });
        let effect = match failed {
            Some(_) => Effect::Nothing,
            None => Effect::Ops {
                time,
                ops: prepared,
            },
        };
        self.replicate(now, zxid, effect);
        self.notify(notes);
        let body = Response::Multi(MultiResponse { results });
        self.reply(conn, xid, zxid, 0, Some(&body));
    }

    /// The client ends its session: its ephemeral nodes go, the reply is sent, the
    /// connection closes.
    fn client_close(&mut self, now: Instant, conn: ConnId, xid: i32, session: i64) {
        let zxid = self.kill_session(now, session, false);
        self.reply(conn, xid, zxid, 0, None);
        self.close_after_replies(conn);
    }

    /// Ends a session on the server: its ephemeral nodes are deleted (in the order of the
    /// server's copy of its set), watchers are told, it is forgotten. Returns the zxid of
    /// its closeSession transaction (a read-only server's local session takes none).
    pub(crate) fn kill_session(&mut self, now: Instant, session: i64, expired: bool) -> i64 {
        let local = self
            .sessions
            .sessions
            .get(&session)
            .is_some_and(|s| s.local);
        let zxid = if local {
            self.tree.last_zxid
        } else {
            self.next_zxid()
        };
        let paths = self.tree.ephemerals(session);
        let mut notes = Vec::new();
        for p in &paths {
            self.tree.delete(p, zxid, &mut notes);
        }
        self.tree.drop_session(session);
        self.sessions.remove(session);
        if !local {
            self.tree.last_zxid = self.tree.last_zxid.max(zxid);
            self.record(Txn {
                zxid,
                time: now,
                session,
                op: TxnOp::CloseSession {
                    expired,
                    deleted: paths.clone(),
                },
            });
            self.replicate(
                now,
                zxid,
                Effect::CloseSession {
                    session,
                    deleted: paths,
                },
            );
        }
        self.notify(notes);
        zxid
    }

    /// A read (or watch management) request: the reply body, or an error code and, for a
    /// multiRead cut short by a write, the results so far (the server sends them along).
    fn read(
        &mut self,
        conn: ConnId,
        session: i64,
        request: &Request,
        notes: &mut Vec<Notification>,
    ) -> Result<Response, (ErrorCode, Option<Response>)> {
        let plain = |r: ReadResult| r.map_err(|e| (e, None));
        let server = self.conns[&conn].server;
        match request {
            Request::Exists(r) => plain(self.exists(conn, &r.path, r.watch)),
            Request::GetData(r) => {
                plain(self.get_data(conn, &r.path, r.watch).map(Response::GetData))
            }
            Request::GetConfig { watch } => plain(
                self.get_data(conn, CONFIG_NODE, *watch)
                    .map(Response::GetData),
            ),
            Request::GetChildren(r) => plain(
                self.get_children(conn, &r.path, r.watch)
                    .map(|(children, _)| Response::GetChildren(GetChildrenResponse { children })),
            ),
            Request::GetChildren2(r) => plain(self.get_children(conn, &r.path, r.watch).map(
                |(children, stat)| Response::GetChildren2(GetChildren2Response { children, stat }),
            )),
            Request::GetAcl(r) => plain(self.get_acl(conn, &r.path)),
            Request::GetAllChildrenNumber(r) => plain(self.count_children(conn, &r.path)),
            Request::GetEphemerals(r) => {
                let prefix = r.prefix_path.trim();
                let all =
                    served_mut(&mut self.tree, &mut self.replicas, server).ephemerals(session);
                let ephemerals = if prefix.is_empty() || prefix == "/" {
                    all
                } else {
                    all.into_iter()
                        .filter(|p| p.starts_with(&r.prefix_path))
                        .collect()
                };
                Ok(Response::GetEphemerals(GetEphemeralsResponse {
                    ephemerals,
                }))
            }
            Request::Sync(r) => Ok(Response::Sync(SyncResponse {
                path: r.path.clone(),
            })),
            Request::SetWatches(w) => {
                served_mut(&mut self.tree, &mut self.replicas, server).set_watches(
                    w.relative_zxid,
                    &w.data_watches,
                    &w.exist_watches,
                    &w.child_watches,
                    &[],
                    &[],
                    conn,
                    notes,
                );
                Ok(Response::Empty)
            }
            Request::SetWatches2(w) => {
                served_mut(&mut self.tree, &mut self.replicas, server).set_watches(
                    w.relative_zxid,
                    &w.data_watches,
                    &w.exist_watches,
                    &w.child_watches,
                    &w.persistent_watches,
                    &w.persistent_recursive_watches,
                    conn,
                    notes,
                );
                Ok(Response::Empty)
            }
            Request::AddWatch(r) => {
                let mode = match AddWatchMode::from_i32(r.mode) {
                    Some(AddWatchMode::Persistent) => Mode::Persistent,
                    Some(AddWatchMode::PersistentRecursive) => Mode::Recursive,
                    None => return Err((ErrorCode::MarshallingError, None)),
                };
                let tree = served_mut(&mut self.tree, &mut self.replicas, server);
                tree.data_watches.add(&r.path, conn, mode);
                tree.child_watches.add(&r.path, conn, mode);
                Ok(Response::Status(ErrorResponse { err: 0 }))
            }
            Request::CheckWatches(r) => {
                let conns = &self.conns;
                let same = |c: ConnId| conns.get(&c).is_some_and(|x| x.server == server);
                let tree = served_mut(&mut self.tree, &mut self.replicas, server);
                let (data, child) = (&tree.data_watches, &tree.child_watches);
                let found = match WatcherType::from_i32(r.kind) {
                    Some(WatcherType::Children) => child.contains(&r.path, conn, same),
                    Some(WatcherType::Data) => data.contains(&r.path, conn, same),
                    Some(WatcherType::Any) => {
                        child.contains(&r.path, conn, same) || data.contains(&r.path, conn, same)
                    }
                    // 3.8 knows no persistent watcher types here.
                    _ => return Err((ErrorCode::MarshallingError, None)),
                };
                if found {
                    Ok(Response::Empty)
                } else {
                    Err((ErrorCode::NoWatcher, None))
                }
            }
            Request::RemoveWatches(r) => {
                let tree = served_mut(&mut self.tree, &mut self.replicas, server);
                let removed = match WatcherType::from_i32(r.kind) {
                    Some(WatcherType::Children) => tree.child_watches.remove(&r.path, conn),
                    Some(WatcherType::Data) => tree.data_watches.remove(&r.path, conn),
                    Some(WatcherType::Any) => {
                        let c = tree.child_watches.remove(&r.path, conn);
                        let d = tree.data_watches.remove(&r.path, conn);
                        c || d
                    }
                    _ => return Err((ErrorCode::MarshallingError, None)),
                };
                if removed {
                    Ok(Response::Empty)
                } else {
                    Err((ErrorCode::NoWatcher, None))
                }
            }
            Request::WhoAmI => {
                let client_info = self.conns[&conn]
                    .ids
                    .iter()
                    .map(|id| ClientInfo {
                        auth_scheme: id.scheme.clone(),
                        user: acl::user_name(id),
                    })
                    .collect();
                Ok(Response::WhoAmI(WhoAmIResponse { client_info }))
            }
            Request::MultiRead(m) => {
                // All operations of a multi record must be of one kind: mixing reads and
                // writes fails while the record is read, before any result exists.
                let reads = m.ops.iter().filter(|op| op.is_read()).count();
                if reads != 0 && reads != m.ops.len() {
                    return Err((ErrorCode::MarshallingError, None));
                }
                let mut results = Vec::with_capacity(m.ops.len());
                // The server rebuilds each read without its watch flag (Op.getData), so a
                // multiRead never leaves a watch.
                for op in &m.ops {
                    let r = match op {
                        MultiOp::GetData(g) => match self.get_data(conn, &g.path, false) {
                            Ok(d) => OpResult::GetData(d),
                            Err(e) => OpResult::Error(e),
                        },
                        MultiOp::GetChildren(g) => match self.get_children(conn, &g.path, false) {
                            Ok((children, _)) => {
                                OpResult::GetChildren(GetChildrenResponse { children })
                            }
                            Err(e) => OpResult::Error(e),
                        },
                        // Writes only: the first one ends it with MarshallingError, and the
                        // (empty) response already made goes out with the error.
                        _ => {
                            return Err((
                                ErrorCode::MarshallingError,
                                Some(Response::Multi(MultiResponse { results })),
                            ));
                        }
                    };
                    results.push(r);
                }
                Ok(Response::Multi(MultiResponse { results }))
            }
            // Everything else was handled before reads.
            _ => Err((ErrorCode::MarshallingError, None)),
        }
    }

    fn exists(&mut self, conn: ConnId, path: &str, watch: bool) -> ReadResult {
        let server = self.conns[&conn].server;
        let tree = served_mut(&mut self.tree, &mut self.replicas, server);
        if path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        // The watch is left even when the node is missing: it then waits for a creation.
        if watch {
            tree.data_watches.add(path, conn, Mode::Standard);
        }
        let node = tree.get(path).ok_or(ErrorCode::NoNode)?;
        let stat = tree.stat(node);
        tree.namespaces.read(path);
        Ok(Response::Stat(stat))
    }

    fn get_data(
        &mut self,
        conn: ConnId,
        path: &str,
        watch: bool,
    ) -> Result<GetDataResponse, ErrorCode> {
        let server = self.conns[&conn].server;
        let tree = served_mut(&mut self.tree, &mut self.replicas, server);
        let node = tree.get(path).ok_or(ErrorCode::NoNode)?;
        acl::check(&self.conns[&conn].ids, &node.acl, perms::READ)?;
        let response = GetDataResponse {
            data: node.data.clone(),
            stat: tree.stat(node),
        };
        tree.namespaces.read(path);
        if watch {
            tree.data_watches.add(path, conn, Mode::Standard);
        }
        Ok(response)
    }

    fn get_children(
        &mut self,
        conn: ConnId,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<String>, Stat), ErrorCode> {
        let server = self.conns[&conn].server;
        let tree = served_mut(&mut self.tree, &mut self.replicas, server);
        let node = tree.get(path).ok_or(ErrorCode::NoNode)?;
        acl::check(&self.conns[&conn].ids, &node.acl, perms::READ)?;
        let out = (tree.children(node), tree.stat(node));
        tree.namespaces.read(path);
        if watch {
            tree.child_watches.add(path, conn, Mode::Standard);
        }
        Ok(out)
    }

    fn get_acl(&mut self, conn: ConnId, path: &str) -> ReadResult {
        let server = self.conns[&conn].server;
        let tree = served_mut(&mut self.tree, &mut self.replicas, server);
        let node = tree.get(path).ok_or(ErrorCode::NoNode)?;
        let ids = &self.conns[&conn].ids;
        acl::check(ids, &node.acl, perms::READ | perms::ADMIN)?;
        let stat = tree.stat(node);
        let acl = if acl::check(ids, &node.acl, perms::ADMIN).is_ok() {
            node.acl.as_ref().clone()
        } else {
            acl::masked_digests(&node.acl)
        };
        Ok(Response::GetAcl(GetAclResponse { acl, stat }))
    }

    fn count_children(&mut self, conn: ConnId, path: &str) -> ReadResult {
        let server = self.conns[&conn].server;
        let tree = served_mut(&mut self.tree, &mut self.replicas, server);
        let node = tree.get(path).ok_or(ErrorCode::NoNode)?;
        acl::check(&self.conns[&conn].ids, &node.acl, perms::READ)?;
        Ok(Response::GetAllChildrenNumber(
            GetAllChildrenNumberResponse {
                total_number: tree.descendants(path),
            },
        ))
    }
}

/// A multi's operation as the server rebuilds it (`MultiOperationRecord`, `Op.create`):
/// a create's opcode comes from its flags (so create2 becomes create, a container mode
/// becomes createContainer), a createTTL without a TTL mode loses its TTL. None when the
/// server fails the whole request: a read among the writes, or a TTL mode sent as a plain
/// create (its record is the wrong type for the TTL path).
fn as_server_sees_it(op: &MultiOp) -> Option<MultiOp> {
    let mode = |flags: i32| CreateMode::from_i32(flags).unwrap_or(CreateMode::Persistent);
    Some(match op {
        MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => {
            let m = mode(r.flags);
            if m.is_ttl() {
                return None;
            }
            if m.is_container() {
                MultiOp::CreateContainer(r.clone())
            } else {
                MultiOp::Create(r.clone())
            }
        }
        MultiOp::CreateTtl(r) => {
            let m = mode(r.flags);
            if m.is_ttl() {
                MultiOp::CreateTtl(r.clone())
            } else {
                let plain = CreateRequest {
                    path: r.path.clone(),
                    data: r.data.clone(),
                    acl: r.acl.clone(),
                    flags: r.flags,
                };
                if m.is_container() {
                    MultiOp::CreateContainer(plain)
                } else {
                    MultiOp::Create(plain)
                }
            }
        }
        MultiOp::GetData(_) | MultiOp::GetChildren(_) => return None,
        other => other.clone(),
    })
}

/// The node `getConfig` reads.
const CONFIG_NODE: &str = "/zookeeper/config";
