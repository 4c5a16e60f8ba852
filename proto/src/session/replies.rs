//! Replies and notifications: routing them to their requests and watches.

use std::time::Instant;

use bytes::Bytes;

use super::core::*;
use super::error::{Disconnect, Error};
use super::event::{Event, WatchedEvent};
use crate::codec::Jute;
use crate::consts::{EventType, KeeperState, OpCode, WatcherType, xid};
use crate::error::ErrorCode;
use crate::records::{GetDataResponse, OpResult, ReplyHeader, Response, WatcherEvent};
use crate::request_id::RequestId;

impl Session {
    pub(super) fn handle_reply(&mut self, now: Instant, frame: Bytes) -> Result<(), Disconnect> {
        let (header, used) = ReplyHeader::decode(&frame)?;
        let body = frame.slice(used..);
        match header.xid {
            xid::NOTIFICATION => {
                let (event, _) = WatcherEvent::decode(&body)?;
                let config_changed = self.config.follow_config
                    && event.path == CONFIG_NODE
                    && event.event_type() == Some(EventType::NodeDataChanged);
                self.deliver_watch(event);
                if config_changed {
                    self.request_config(now);
                }
                Ok(())
            }
            xid::PING => {
                if let Conn::Open { ping_sent, .. } = &mut self.conn
                    && let Some(at) = ping_sent.take()
                {
                    let sample = now.saturating_duration_since(at);
                    self.counters.last_rtt = Some(sample);
                    // The usual smoothing: seven parts history, one part news.
                    self.srtt = Some(match self.srtt {
                        Some(s) => (s * 7 + sample) / 8,
                        None => sample,
                    });
                }
                Ok(())
            }
            xid::AUTH => {
                let index = self.link.auth_in_flight.pop_front();
                let waiter = index.and_then(|i| self.auths.get_mut(i)?.waiter.take());
                if header.err == ErrorCode::AuthFailed.as_i32() {
                    if let Some(id) = waiter {
                        self.complete(id, Err(Error::AuthFailed));
                    }
                    self.auth_failed(now, Disconnect::AuthFailed);
                } else if let Some(id) = waiter {
                    let result = match header.err {
                        0 => Ok(Response::Empty),
                        e => Err(Error::Server(ErrorCode::from_i32(e))),
                    };
                    self.complete(id, result);
                }
                Ok(())
            }
            got => {
                let Some(p) = self.link.pending.pop_front() else {
                    return Err(Disconnect::UnexpectedXid {
                        expected: None,
                        got,
                    });
                };
                if p.xid != got {
                    let expected = Some(p.xid);
                    self.link.pending.push_front(p);
                    return Err(Disconnect::UnexpectedXid { expected, got });
                }
                if header.zxid > 0 {
                    self.last_zxid = self.last_zxid.max(header.zxid);
                }
                match p.sent {
                    Sent::SetWatches => Ok(()),
                    Sent::Sasl => self.sasl_reply(now, header.err, &body),
                    Sent::Config => {
                        if header.err == 0 {
                            let (reply, _) = GetDataResponse::decode(&body)?;
                            self.apply_config(now, &reply.data);
                        }
                        Ok(())
                    }
                    Sent::Close => {
                        self.finish_close(now);
                        Ok(())
                    }
                    Sent::User { id, watch } => {
                        self.count_reply(now, p.op, p.at);
                        self.finish_request(id, p.op, watch, header.err, &body)
                            .inspect_err(|_| {
                                // The request is lost with the connection, like the others.
                                self.complete(id, Err(Error::ConnectionLoss));
                            })?;
                        if self.moving.is_some() && self.in_flight() == 0 {
                            self.move_now(now);
                        }
                        Ok(())
                    }
                }
            }
        }
    }

    pub(super) fn finish_request(
        &mut self,
        id: RequestId,
        op: OpCode,
        watch: Option<WatchIntent>,
        err: i32,
        body: &Bytes,
    ) -> Result<(), Disconnect> {
        if err != 0 {
            let code = ErrorCode::from_i32(err);
            match watch {
                Some(WatchIntent::Register {
                    path,
                    on_no_node: Some(kind),
                    ..
                }) if code == ErrorCode::NoNode => {
                    self.watches.add(id, &path, kind);
                    self.events.push_back(Event::Complete {
                        id,
                        result: Err(Error::Server(code)),
                        watch: Some(kind),
                    });
                    return Ok(());
                }
                // The server had nothing to remove; neither should we keep anything.
                Some(WatchIntent::Remove { path, kind }) if code == ErrorCode::NoWatcher => {
                    self.removed_watches(&path, kind)
                }
                _ => {}
            }
            self.complete(id, Err(Error::Server(code)));
            return Ok(());
        }
        let response = Response::decode_for(op, body)?;
        let mut registered = None;
        match watch {
            Some(WatchIntent::Register { path, on_ok, .. }) => {
                self.watches.add(id, &path, on_ok);
                registered = Some(on_ok);
            }
            Some(WatchIntent::Remove { path, kind }) => self.removed_watches(&path, kind),
            None => {}
        }
        let response = self.strip_chroot(response);
        self.events.push_back(Event::Complete {
            id,
            result: Ok(response),
            watch: registered,
        });
        Ok(())
    }

    pub(super) fn removed_watches(&mut self, path: &str, kind: WatcherType) {
        let client = self.client_path(path).unwrap_or_else(|| path.to_string());
        for (id, wk) in self.watches.remove_matching(path, kind) {
            self.events.push_back(Event::Watch(WatchedEvent {
                watch: id,
                kind: wk.removed_event(),
                state: KeeperState::SyncConnected,
                path: client.clone(),
            }));
        }
    }

    /// Paths in replies are the server's; callers see them relative to the chroot.
    pub(super) fn strip_chroot(&self, response: Response) -> Response {
        if self.chroot.is_empty() {
            return response;
        }
        let strip = |p: &mut String| {
            if let Some(c) = self.client_path(p) {
                *p = c;
            }
        };
        match response {
            Response::Create(mut r) => {
                strip(&mut r.path);
                Response::Create(r)
            }
            Response::Create2(mut r) => {
                strip(&mut r.path);
                Response::Create2(r)
            }
            Response::Sync(mut r) => {
                strip(&mut r.path);
                Response::Sync(r)
            }
            Response::GetEphemerals(mut r) => {
                // The server matches the prefix as a string, so "/app" also finds "/apple":
                // keep only what lies under the chroot.
                r.ephemerals = r
                    .ephemerals
                    .iter()
                    .filter_map(|p| self.client_path(p))
                    .collect();
                Response::GetEphemerals(r)
            }
            Response::Multi(mut r) => {
                for res in &mut r.results {
                    match res {
                        OpResult::Create(c) => strip(&mut c.path),
                        OpResult::Create2(c) => strip(&mut c.path),
                        _ => {}
                    }
                }
                Response::Multi(r)
            }
            other => other,
        }
    }

    pub(super) fn deliver_watch(&mut self, event: WatcherEvent) {
        let Some(kind) = event.event_type() else {
            return;
        };
        let path = self.client_path(&event.path).unwrap_or(event.path.clone());
        let state = event.keeper_state().unwrap_or(KeeperState::SyncConnected);
        for id in self.watches.fire(kind, &event.path) {
            self.events.push_back(Event::Watch(WatchedEvent {
                watch: id,
                kind,
                state,
                path: path.clone(),
            }));
        }
    }

    // ----- the end of a session -----

    pub(super) fn complete(&mut self, id: RequestId, result: Result<Response, Error>) {
        self.events.push_back(Event::Complete {
            id,
            result,
            watch: None,
        });
    }
}
