//! Requests from the caller: validation, xids, chroot paths, watch intents, credentials.

use std::time::Instant;

use bytes::Bytes;

use super::core::*;
use super::error::Error;
use super::state::SessionState;
use crate::consts::{AddWatchMode, WatcherType, xid};
use crate::records::{AuthPacket, Request};
use crate::request_id::RequestId;
use crate::watch::WatchKind;

impl Session {
    /// Queues an operation. Its outcome arrives as exactly one
    /// [`Event::Complete`](crate::session::Event::Complete) with the returned id. Sent at
    /// once when connected, otherwise when the next connection is up.
    pub fn submit(&mut self, now: Instant, request: Request) -> Result<RequestId, Error> {
        self.check_open()?;
        validate(&request)?;
        if matches!(
            request,
            Request::Ping
                | Request::CloseSession
                | Request::Auth(_)
                | Request::SetWatches(_)
                | Request::SetWatches2(_)
                | Request::Sasl(_)
        ) {
            return Err(Error::InvalidRequest(
                "pings, closeSession, auth, SASL and setWatches are sent by the session itself; \
                 use close(), add_auth() and Config::with_sasl()",
            ));
        }
        let id = self.new_id();
        if self.carrying() && self.moving.is_none() {
            self.write_request(now, id, request);
        } else {
            if self.queued.len() >= self.config.queue_limit {
                return Err(Error::QueueFull(self.queued.len()));
            }
            let deadline = now + self.request_timeout();
            self.queued.push_back(Queued {
                id,
                request,
                deadline,
            });
        }
        Ok(id)
    }

    pub(super) fn check_open(&self) -> Result<(), Error> {
        if self.closing.is_some() {
            return Err(Error::Closed);
        }
        match self.state {
            SessionState::Closed => Err(Error::Closed),
            SessionState::AuthFailed => Err(Error::AuthFailed),
            SessionState::Expired if !self.config.renew_expired => Err(Error::SessionExpired),
            _ => Ok(()),
        }
    }

    /// Sets the xid the next request gets (1 to `i32::MAX`), so tests can reach the wrap-around
    /// without sending two billion requests.
    #[doc(hidden)]
    pub fn set_next_xid(&mut self, xid: i32) {
        self.next_xid = xid.max(1);
    }

    pub(super) fn new_id(&mut self) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Xids count up from 1 and wrap to 1 after `i32::MAX`, never reaching the special
    /// negative xids, as the reference client does.
    pub(super) fn take_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if x == i32::MAX { 1 } else { x + 1 };
        x
    }

    pub(super) fn write_request(&mut self, now: Instant, id: RequestId, request: Request) {
        let xid = self.take_xid();
        let start = self.link.out.len();
        let size = request.encode_frame(xid, &self.chroot, &mut self.link.out);
        if size > self.config.max_request {
            self.link.out.truncate(start);
            let max = self.config.max_request;
            self.complete(id, Err(Error::TooLarge { size, max }));
            return;
        }
        let watch = self.watch_intent(&request);
        self.link.pending.push_back(Pending {
            xid,
            op: request.opcode(),
            sent: Sent::User { id, watch },
            at: now,
        });
        self.sent(now);
    }

    pub(super) fn server_path(&self, path: &str) -> String {
        if self.chroot.is_empty() {
            path.to_string()
        } else if path == "/" {
            self.chroot.clone()
        } else {
            format!("{}{}", self.chroot, path)
        }
    }

    pub(super) fn client_path(&self, path: &str) -> Option<String> {
        if self.chroot.is_empty() {
            return Some(path.to_string());
        }
        match path.strip_prefix(self.chroot.as_str()) {
            Some("") => Some("/".into()),
            Some(rest) if rest.starts_with('/') => Some(rest.into()),
            _ => None,
        }
    }

    pub(super) fn watch_intent(&self, request: &Request) -> Option<WatchIntent> {
        let register = |path: &str, on_ok, on_no_node| {
            Some(WatchIntent::Register {
                path: self.server_path(path),
                on_ok,
                on_no_node,
            })
        };
        match request {
            Request::GetData(r) if r.watch => register(&r.path, WatchKind::Data, None),
            Request::Exists(r) if r.watch => {
                register(&r.path, WatchKind::Data, Some(WatchKind::Exist))
            }
            Request::GetChildren(r) | Request::GetChildren2(r) if r.watch => {
                register(&r.path, WatchKind::Child, None)
            }
            Request::GetConfig { watch: true } => Some(WatchIntent::Register {
                path: CONFIG_NODE.into(),
                on_ok: WatchKind::Data,
                on_no_node: None,
            }),
            Request::AddWatch(r) => {
                let kind = match AddWatchMode::from_i32(r.mode) {
                    Some(AddWatchMode::PersistentRecursive) => WatchKind::PersistentRecursive,
                    _ => WatchKind::Persistent,
                };
                register(&r.path, kind, None)
            }
            Request::RemoveWatches(r) => {
                WatcherType::from_i32(r.kind).map(|kind| WatchIntent::Remove {
                    path: self.server_path(&r.path),
                    kind,
                })
            }
            _ => None,
        }
    }

    /// Forgets a watch registration without telling the server, for a caller that is no
    /// longer interested. The server may still send events for it; they go nowhere.
    /// Returns whether it was registered.
    pub fn forget_watch(&mut self, watch: RequestId) -> bool {
        self.watches.remove(watch).is_some()
    }

    /// Forgets a registration and, when it was the last one on its node, asks the server to
    /// drop its watches there too (`removeWatches` of type Any), so a caller that lost
    /// interest leaves nothing behind. Type Any is used because servers before 3.9 know no
    /// persistent watch types and keep one watch mode per node and session
    /// (ZOOKEEPER-4466), so a narrower removal can miss or take too much. Returns the id of
    /// that request, if one was sent or queued; its completion (`NoWatcher` is normal when a
    /// one-shot watch fired meanwhile) needs no handling.
    pub fn release_watch(&mut self, now: Instant, watch: RequestId) -> Option<RequestId> {
        let (path, _) = self.watches.remove(watch)?;
        if self.watches.any_on(&path) || self.check_open().is_err() {
            return None;
        }
        // Outside the chroot (the config node) there is nothing a chrooted request can name.
        let client = self.client_path(&path)?;
        let request = Request::RemoveWatches(crate::records::RemoveWatchesRequest {
            path: client,
            kind: WatcherType::Any.as_i32(),
        });
        self.submit(now, request).ok()
    }

    /// Adds credentials to the session (`addauth`). Sent at once when connected and again
    /// after every reconnect, before any queued request. The returned id completes when the
    /// server first answers; a refusal ends the session in [`SessionState::AuthFailed`].
    pub fn add_auth(
        &mut self,
        now: Instant,
        scheme: &str,
        credentials: impl Into<Bytes>,
    ) -> Result<RequestId, Error> {
        self.check_open()?;
        let id = self.new_id();
        self.auths.push(Auth {
            scheme: scheme.to_string(),
            credentials: credentials.into(),
            waiter: Some(id),
        });
        if self.carrying() {
            self.send_auth(self.auths.len() - 1);
            self.sent(now);
        }
        Ok(id)
    }

    pub(super) fn send_auth(&mut self, index: usize) {
        let a = &self.auths[index];
        Request::Auth(AuthPacket {
            kind: 0,
            scheme: a.scheme.clone(),
            auth: a.credentials.clone(),
        })
        .encode_frame(xid::AUTH, "", &mut self.link.out);
        self.link.auth_in_flight.push_back(index);
    }
}
