//! The checks of the fuzz target `sim_server`, shared with `sim/tests/fuzz_corpus.rs` so
//! the corpus replays on stable Rust.
//!
//! The input drives a model ensemble as hostile clients would: connections opened and
//! closed, arbitrary bytes in any chunking (after a valid handshake or without one), time
//! passing, and faults. The model must never panic, must keep its tree consistent, must
//! send only whole frames that a client can decode (or a four-letter word's text), and must
//! close a connection at most once and send nothing after.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zk_proto::codec::{FrameDecoder, Jute, write_frame};
use zk_proto::records::{ConnectRequest, ConnectResponse, ReplyHeader, WatcherEvent};
use zk_sim::{Config, ConnId, Ensemble, Output};

/// A client's view of one connection.
#[derive(Default)]
struct Seen {
    frames: Option<FrameDecoder>,
    /// What the client sent, split into frames, to know the xids it used.
    sent: Option<FrameDecoder>,
    sent_frames: usize,
    /// The client sent a request with the notification xid: its replies look like
    /// notifications (the server echoes xids), so notifications are not checked.
    used_xid_minus_one: bool,
    /// The first bytes were a four-letter word: the answer is text.
    text: bool,
    handshaken: bool,
    closed: bool,
}

impl Seen {
    fn client_sent(&mut self, data: &[u8]) {
        let sent = self
            .sent
            .get_or_insert_with(|| FrameDecoder::new(usize::MAX >> 2));
        sent.push(data);
        while let Ok(Some(frame)) = sent.next_frame() {
            self.sent_frames += 1;
            if self.sent_frames > 1 && frame.len() >= 4 && frame[..4] == [0xff; 4] {
                self.used_xid_minus_one = true;
            }
        }
    }
}

fn handshake(session: i64) -> Bytes {
    let mut b = BytesMut::new();
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 4000,
        session_id: session,
        passwd: Bytes::copy_from_slice(&zk_sim::password(session)),
        read_only: false,
    };
    write_frame(&mut b, |b| req.encode(b));
    b.freeze()
}

fn drain(zk: &mut Ensemble, seen: &mut BTreeMap<ConnId, Seen>) {
    while let Some(out) = zk.poll_output() {
        match out {
            Output::Transmit { conn, data } => {
                let s = seen.entry(conn).or_default();
                assert!(!s.closed, "{conn:?}: bytes after the close");
                if s.text {
                    continue;
                }
                let frames = s.frames.get_or_insert_with(|| FrameDecoder::new(2 << 20));
                frames.push(&data);
                while let Some(frame) = frames.next_frame().expect("the model frames its output") {
                    if !s.handshaken {
                        ConnectResponse::decode(&frame).expect("a handshake response");
                        s.handshaken = true;
                        continue;
                    }
                    let (h, used) = ReplyHeader::decode(&frame).expect("a reply header");
                    if h.xid == -1 && !s.used_xid_minus_one {
                        WatcherEvent::decode(&frame.slice(used..)).expect("a notification");
                    }
                }
            }
            Output::Close { conn } => {
                let s = seen.entry(conn).or_default();
                assert!(!s.closed, "{conn:?} closed twice");
                s.closed = true;
            }
        }
    }
}

/// Target `sim_server`.
pub fn server_bytes(data: &[u8]) {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let config = if first & 1 == 0 {
        Config::standalone()
    } else {
        Config::ensemble(3)
    }
    .tick(Duration::from_millis(100))
    .extended_types(first & 2 != 0)
    .read_only_mode(first & 4 != 0)
    .container_check(Duration::from_millis(300));
    let servers = config.servers();
    let mut now = Instant::now();
    let mut zk = Ensemble::new(config, now);
    let mut conns: Vec<ConnId> = Vec::new();
    let mut seen: BTreeMap<ConnId, Seen> = BTreeMap::new();
    while let [op, len, tail @ ..] = rest {
        let take = (*len as usize).min(tail.len());
        let (bytes, next) = tail.split_at(take);
        rest = next;
        let pick = |n: usize| (*op as usize >> 3) % n.max(1);
        match op & 7 {
            0 => {
                if let Ok(c) = zk.accept(now, *len as usize % servers, "127.0.0.1") {
                    conns.push(c);
                }
            }
            1..=3 if !conns.is_empty() => {
                let c = conns[pick(conns.len())];
                if seen
                    .get(&c)
                    .is_none_or(|s| s.frames.is_none() && !s.handshaken)
                    && bytes.len() >= 4
                    && bytes[..4].iter().all(u8::is_ascii_lowercase)
                {
                    seen.entry(c).or_default().text = true;
                }
                seen.entry(c).or_default().client_sent(bytes);
                // Any chunking: the first byte of the group says how.
                let chunk = (*op as usize % 5) + 1;
                for part in bytes.chunks(chunk.max(1) * 7) {
                    zk.handle_input(now, c, part);
                }
            }
            4 if !conns.is_empty() => {
                let c = conns.remove(pick(conns.len()));
                zk.handle_close(now, c);
            }
            5 => {
                now += Duration::from_millis(u64::from(*len) * 10);
                zk.handle_timeout(now);
            }
            6 => {
                let s = pick(servers);
                match len % 8 {
                    0 => zk.kill(now, s),
                    1 => zk.restart(now, s),
                    2 => zk.pause(now, s, None),
                    3 => zk.resume(now, s),
                    4 => zk.stall(now, s, Duration::from_millis(u64::from(*len))),
                    5 => {
                        if let Some(&id) = zk.sessions().get(pick(zk.sessions().len().max(1))) {
                            zk.expire_session(now, id);
                        }
                    }
                    6 => {
                        if let Some(&c) = conns.get(pick(conns.len())) {
                            zk.lose_next_reply(c);
                        }
                    }
                    _ => {
                        if let Some(&c) = conns.get(pick(conns.len())) {
                            zk.close_connection(now, c);
                        }
                    }
                }
            }
            7 if !conns.is_empty() => {
                let c = conns[pick(conns.len())];
                let session = zk.sessions().get(*len as usize).copied().unwrap_or(0);
                let hs = handshake(session);
                seen.entry(c).or_default().client_sent(&hs);
                zk.handle_input(now, c, &hs);
            }
            _ => {}
        }
        drain(&mut zk, &mut seen);
        zk.check_invariants();
        if let Some(t) = zk.poll_timeout() {
            assert!(
                t >= now - Duration::from_secs(3600),
                "a deadline far in the past"
            );
        }
    }
    // Everything pending comes out once time passes.
    now += Duration::from_secs(30);
    zk.handle_timeout(now);
    drain(&mut zk, &mut seen);
    zk.check_invariants();
}
