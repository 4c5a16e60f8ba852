//! The SASL login that runs first on every connection.

use std::time::Instant;

use bytes::Bytes;

use super::core::*;
use super::error::{Disconnect, Error};
use super::state::SessionState;
use crate::codec::Jute;
use crate::consts::{KeeperState, OpCode};
use crate::error::ErrorCode;
use crate::records::Request;

impl Session {
    /// Writes one SASL token of the login in progress.
    pub(super) fn send_sasl(&mut self, now: Instant, token: Vec<u8>) {
        let xid = self.take_xid();
        Request::Sasl(crate::records::SaslRequest {
            token: Bytes::from(token),
        })
        .encode_frame(xid, "", &mut self.link.out);
        self.link.pending.push_back(Pending {
            xid,
            op: OpCode::Sasl,
            sent: Sent::Sasl,
            at: now,
        });
        self.sent(now);
    }

    /// The server answered a SASL token: answer its challenge, or finish connecting once it
    /// proved itself, or end the session if it refused the login.
    pub(super) fn sasl_reply(
        &mut self,
        now: Instant,
        err: i32,
        body: &Bytes,
    ) -> Result<(), Disconnect> {
        let Some(mut run) = self.link.sasl.take() else {
            return Ok(());
        };
        let user = self
            .config
            .sasl
            .as_ref()
            .map(|l| format!("{} login of `{}`", l.mechanism(), l.user()))
            .unwrap_or_default();
        if err != 0 {
            let code = ErrorCode::from_i32(err);
            self.sasl_failed(
                now,
                format!("the server refused the {user} ({code}); check the user and password"),
            );
            return Ok(());
        }
        let (reply, _) = crate::records::SaslResponse::decode(body)?;
        match run.exchange.step(&reply.token) {
            Ok(crate::sasl::Step::Respond(token)) => {
                self.link.sasl = Some(run);
                self.send_sasl(now, token);
            }
            Ok(crate::sasl::Step::Done) => self.connection_ready(now, run.host, run.read_only),
            Err(e) => self.sasl_failed(now, format!("the {user} cannot go on: {e}")),
        }
        Ok(())
    }

    /// The SASL login failed: the session is over, as when credentials are refused.
    pub(super) fn sasl_failed(&mut self, now: Instant, why: String) {
        self.auth_failed(now, Disconnect::SaslFailed(why));
    }

    pub(super) fn auth_failed(&mut self, now: Instant, reason: Disconnect) {
        self.closing = None;
        self.drop_connection(reason.clone(), true, Error::AuthFailed);
        while let Some(q) = self.queued.pop_front() {
            self.complete(q.id, Err(Error::AuthFailed));
        }
        for a in std::mem::take(&mut self.auths) {
            if let Some(id) = a.waiter {
                self.complete(id, Err(Error::AuthFailed));
            }
        }
        self.end_session(
            now,
            SessionState::AuthFailed,
            KeeperState::AuthFailed,
            Error::AuthFailed,
            Some(reason),
        );
    }
}
