//! A shared integer counter at one node, as a sans-IO state machine: each addition reads
//! the value and writes the sum conditionally on the version it read, again until no one
//! wrote in between.
//!
//! Two encodings, one per library: Kazoo's `Counter` writes the decimal text
//! ([`Encoding::Text`]); Curator's `SharedCount` (and Kazoo's `Counter` with
//! `support_curator=True`) writes a 4-byte big-endian integer ([`Encoding::Curator`]).
//! An empty or missing node reads as the default.
//!
//! **A write whose reply was lost** is looked into, not repeated blindly: the node is read
//! again, and if its version has not moved the write is tried again. If it moved, the write
//! may be this machine's or another client's that read the same version (and, when
//! everyone adds 1, wrote the same sum): nothing in the node tells them apart, so the
//! machine says so ([`Outcome::InDoubt`]) instead of adding twice or not at all. (Kazoo and
//! Curator retry such a write, which can count it twice.)

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use zk_proto::ErrorCode;
use zk_proto::consts::CreateMode;
use zk_proto::records::*;
use zk_proto::session::Error as SessionError;

use crate::{Recipe, Tag};

/// How the value is written in the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// Decimal text, as Kazoo's `Counter` writes it.
    #[default]
    Text,
    /// A 4-byte big-endian signed integer, as Curator's `SharedCount` writes it.
    Curator,
}

/// [`Encoding`] under the name the clients export it by (`zk_tokio::recipes::CounterEncoding`),
/// so that the handles' signatures read as a client's user names it.
pub type CounterEncoding = Encoding;

impl Encoding {
    /// The bytes of `value`; `None` when it does not fit (Curator's 32 bits).
    pub fn encode(self, value: i64) -> Option<Bytes> {
        match self {
            Encoding::Text => Some(Bytes::from(value.to_string())),
            Encoding::Curator => i32::try_from(value)
                .ok()
                .map(|v| Bytes::copy_from_slice(&v.to_be_bytes())),
        }
    }

    /// The value in `data`; empty data is `default`, anything else unreadable is `None`.
    pub fn decode(self, data: &[u8], default: i64) -> Option<i64> {
        if data.is_empty() {
            return Some(default);
        }
        match self {
            Encoding::Text => std::str::from_utf8(data).ok()?.trim().parse().ok(),
            Encoding::Curator => Some(i64::from(i32::from_be_bytes(data.try_into().ok()?))),
        }
    }
}

/// Writes a driver's counter handle's builder methods (`with_encoding`, `with_default`)
/// over its `encoding` and `default` fields, so every driver offers the same ones.
#[macro_export]
macro_rules! counter_option_setters {
    () => {
        /// Writes the value as `encoding`'s library does.
        pub fn with_encoding(mut self, encoding: $crate::counter::CounterEncoding) -> Self {
            self.encoding = encoding;
            self
        }

        /// What a missing or empty node reads as.
        pub fn with_default(mut self, default: i64) -> Self {
            self.default = default;
            self
        }
    };
}

/// What became of an addition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Added: the value went from `before` to `after` in one write of this machine.
    Added {
        /// The value the write replaced.
        before: i64,
        /// The value written.
        after: i64,
    },
    /// A write whose reply was lost may or may not have landed: others wrote since.
    InDoubt,
    /// An error no retry fixes (no permission, a value that is not a number, a sum that
    /// does not fit the encoding, a closed session).
    Failed(SessionError),
}

/// Something the counter machine has for its driver.
pub type Output = crate::Output<Outcome>;

/// `Creating(n)` creates the path's first `n` bytes: the node or an ancestor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Idle,
    /// Reading before a write.
    Reading,
    /// Creating the missing node, or one of its missing ancestors.
    Creating(usize),
    /// A conditional write of `after` over `version`, from `before`.
    Writing {
        before: i64,
        after: i64,
        version: i32,
    },
    /// Reading after a write over `version` whose reply was lost.
    Checking {
        version: i32,
    },
}

/// A counter at `path`, one addition at a time.
#[derive(Debug)]
pub struct Counter {
    path: String,
    encoding: Encoding,
    default: i64,
    acl: Vec<Acl>,
    delta: i64,
    step: Step,
    next_tag: u64,
    in_flight: Option<Tag>,
    /// A write of this addition whose reply was lost was judged not landed: it may still
    /// land late, so a later write that meets a change cannot tell whose it was.
    in_doubt: bool,
    out: VecDeque<Output>,
}

impl Counter {
    /// A counter at `path`, written with `encoding`; a missing or empty node reads as
    /// `default`, and a missing node is created with `acl`.
    pub fn new(path: &str, encoding: Encoding, default: i64, acl: Vec<Acl>) -> Counter {
        Counter {
            path: path.to_string(),
            encoding,
            default,
            acl,
            delta: 0,
            step: Step::Idle,
            next_tag: 1,
            in_flight: None,
            in_doubt: false,
            out: VecDeque::new(),
        }
    }

    /// Adds `delta` (negative to subtract). Ignored while an addition is under way.
    pub fn add(&mut self, _now: Instant, delta: i64) {
        if self.step != Step::Idle {
            return;
        }
        self.delta = delta;
        self.in_doubt = false;
        self.read(Step::Reading);
    }

    fn submit(&mut self, request: Request) {
        let tag = Tag(self.next_tag);
        self.next_tag += 1;
        self.in_flight = Some(tag);
        self.out.push_back(Output::Submit(tag, request));
    }

    fn read(&mut self, step: Step) {
        if let Step::Checking { .. } = step {
            // The server we read from now may lag the one that took the write: a sync
            // first, whose reply is not waited for (it only orders the read after it).
            let tag = Tag(self.next_tag);
            self.next_tag += 1;
            let sync = Request::Sync(SyncRequest {
                path: self.path.clone(),
            });
            self.out.push_back(Output::Submit(tag, sync));
        }
        self.step = step;
        let request = Request::GetData(GetDataRequest {
            path: self.path.clone(),
            watch: false,
        });
        self.submit(request);
    }

    fn finish(&mut self, outcome: Outcome) {
        self.step = Step::Idle;
        self.out.push_back(Output::Outcome(outcome));
    }

    fn write(&mut self, before: i64, version: i32) {
        let Some(after) = before.checked_add(self.delta) else {
            return self.finish(Outcome::Failed(SessionError::InvalidRequest(
                "the sum overflows",
            )));
        };
        let Some(data) = self.encoding.encode(after) else {
            return self.finish(Outcome::Failed(SessionError::InvalidRequest(
                "the sum does not fit the counter's encoding",
            )));
        };
        self.step = Step::Writing {
            before,
            after,
            version,
        };
        let request = Request::SetData(SetDataRequest {
            path: self.path.clone(),
            data,
            version,
        });
        self.submit(request);
    }

    /// Creates the path's first `len` bytes (the node, or an ancestor), empty.
    fn create(&mut self, len: usize) {
        self.step = Step::Creating(len);
        let request = Request::Create(CreateRequest {
            path: self.path[..len].to_string(),
            data: Bytes::new(),
            acl: self.acl.clone(),
            flags: CreateMode::Persistent.as_i32(),
        });
        self.submit(request);
    }

    fn created(&mut self, len: usize, reply: Result<Response, SessionError>) {
        match reply {
            Ok(_) | Err(SessionError::Server(ErrorCode::NodeExists)) if len == self.path.len() => {
                self.read(Step::Reading)
            }
            // An ancestor is there: on to the next level down.
            Ok(_) | Err(SessionError::Server(ErrorCode::NodeExists)) => {
                let next = self.path[len + 1..]
                    .find('/')
                    .map_or(self.path.len(), |i| len + 1 + i);
                self.create(next);
            }
            // A parent is missing: make it first.
            Err(SessionError::Server(ErrorCode::NoNode)) => match self.path[..len].rfind('/') {
                Some(i) if i > 0 => self.create(i),
                _ => self.finish(Outcome::Failed(SessionError::Server(ErrorCode::NoNode))),
            },
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => self.create(len),
            Err(e) => self.finish(Outcome::Failed(e)),
        }
    }

    fn value_of(&self, data: &[u8]) -> Option<i64> {
        self.encoding.decode(data, self.default)
    }

    fn read_reply(&mut self, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetData(r)) => match self.value_of(&r.data) {
                Some(v) => self.write(v, r.stat.version),
                None => self.finish(Outcome::Failed(SessionError::InvalidRequest(
                    "the counter node holds something that is not a number in its encoding",
                ))),
            },
            Ok(_) => self.finish(Outcome::Failed(SessionError::InvalidRequest(
                "unexpected reply to getData",
            ))),
            Err(SessionError::Server(ErrorCode::NoNode)) => self.create(self.path.len()),
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => {
                self.read(Step::Reading)
            }
            Err(e) => self.finish(Outcome::Failed(e)),
        }
    }

    fn write_reply(
        &mut self,
        before: i64,
        after: i64,
        version: i32,
        reply: Result<Response, SessionError>,
    ) {
        match reply {
            Ok(_) => self.finish(Outcome::Added { before, after }),
            // A write of ours judged not landed may have landed since, and made this change:
            // adding again could count twice.
            Err(SessionError::Server(ErrorCode::BadVersion | ErrorCode::NoNode))
                if self.in_doubt =>
            {
                self.finish(Outcome::InDoubt)
            }
            // Someone wrote in between: read again.
            Err(SessionError::Server(ErrorCode::BadVersion | ErrorCode::NoNode)) => {
                self.read(Step::Reading)
            }
            // Maybe written: look.
            Err(SessionError::ConnectionLoss) => self.read(Step::Checking { version }),
            // Never sent.
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => {
                self.read(Step::Reading)
            }
            Err(e) => self.finish(Outcome::Failed(e)),
        }
    }

    fn check_reply(&mut self, version: i32, reply: Result<Response, SessionError>) {
        match reply {
            Ok(Response::GetData(r)) => {
                if r.stat.version == version {
                    // Not written, as far as the server (caught up by the sync) shows:
                    // try again from what is there, conditional on the same version, so
                    // at most one of the two writes lands.
                    self.in_doubt = true;
                    self.read_reply(Ok(Response::GetData(r)));
                } else {
                    // Written, by us or by another client that read the same version (with
                    // the same sum, when everyone adds 1): nothing in the node tells.
                    self.finish(Outcome::InDoubt);
                }
            }
            Err(e) if e.is_retryable() || e == SessionError::SessionExpired => {
                self.read(Step::Checking { version })
            }
            Err(SessionError::Server(ErrorCode::NoNode)) => self.finish(Outcome::InDoubt),
            Ok(_) => self.finish(Outcome::Failed(SessionError::InvalidRequest(
                "unexpected reply to getData",
            ))),
            Err(e) => self.finish(Outcome::Failed(e)),
        }
    }
}

impl Recipe for Counter {
    type Outcome = Outcome;

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn handle_reply(&mut self, _now: Instant, tag: Tag, reply: Result<Response, SessionError>) {
        if self.in_flight != Some(tag) {
            return;
        }
        self.in_flight = None;
        match self.step {
            Step::Idle => {}
            Step::Reading => self.read_reply(reply),
            Step::Creating(len) => self.created(len, reply),
            Step::Writing {
                before,
                after,
                version,
            } => self.write_reply(before, after, version, reply),
            Step::Checking { version } => self.check_reply(version, reply),
        }
    }

    /// A counter leaves nothing to clean up: a release only stops waiting for the answer
    /// of the addition under way (which may still land).
    fn release(&mut self, _now: Instant) {
        self.step = Step::Idle;
        self.in_flight = None;
    }

    fn is_done(&self) -> bool {
        self.step == Step::Idle
    }
}
