//! Scripts for the differential tests: what several sessions do, one step at a time, as
//! raw protocol requests (no client state machine in between), generated from a seed.

use bytes::Bytes;
use zk_proto::consts::{CreateMode, perms};
use zk_proto::digest::digest_acl;
use zk_proto::records::*;

/// One step of a script.
#[derive(Debug, Clone)]
pub enum Step {
    /// Opens session slot `.0` with a new session of timeout `.1` ms.
    Open(usize, i32),
    /// Sends a request on a session and reads its reply.
    Op(usize, Request),
    /// Sends raw bytes as one request frame body (header included).
    Raw(usize, Vec<u8>),
    /// Adds credentials (scheme, credentials).
    Auth(usize, &'static str, &'static str),
    /// Re-registers watches on a session, relative to the last zxid it saw.
    SetWatches(usize, SetWatches2),
    /// Ends a session with closeSession.
    Close(usize),
    /// Drops a session's connection and resumes the session on a new one. First tries
    /// `.1`: a wrong password, or a last zxid the server has not reached, both refused.
    Reconnect(usize, Resume),
    /// Drops a session's connection and waits until the server expires it.
    Expire(usize),
    /// Lets this many milliseconds pass (keeping sessions alive, noting notifications).
    Wait(u64),
}

/// How a reconnect first tries to resume its session.
#[derive(Debug, Clone, Copy)]
pub enum Resume {
    /// With the right password and last zxid.
    Right,
    /// With a wrong password (then again rightly).
    WrongPassword,
    /// Claiming a zxid from the future (then again rightly).
    FutureZxid,
}

/// The session's own seeded generator, so a script is a function of its seed.
pub struct Rng(zk_proto::session::rng::Rng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(zk_proto::session::rng::Rng::new(seed ^ 0x5eed_d1ff))
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.0.below(n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const SLOTS: usize = 4;
/// Sessions that may be expired get the shortest timeout the harness's servers grant.
pub const SHORT_TIMEOUT: i32 = 400;
const LONG_TIMEOUT: i32 = 30_000;

struct Gen {
    rng: Rng,
    root: String,
    /// Open slots, and whether each has the short timeout.
    open: [Option<bool>; SLOTS],
    /// Expiry steps allowed (they cost a second each).
    expiries: usize,
    /// For an ensemble: no reads of `/zookeeper/config`, whose contents name real ports.
    ensemble: bool,
}

impl Gen {
    fn path(&mut self) -> String {
        let rel = *self.rng.pick(&[
            "/a",
            "/a",
            "/b",
            "/b",
            "/c",
            "/a/x",
            "/a/x",
            "/a/y",
            "/b/x",
            "/a/x/deep",
            "/e",
            "/e/k",
        ]);
        format!("{}{rel}", self.root)
    }

    /// A path the server must refuse, now and then.
    fn any_path(&mut self) -> String {
        if self.rng.chance(4) {
            let r = self.root.clone();
            return self
                .rng
                .pick(&[
                    format!("{r}/"),
                    format!("{r}/a/../b"),
                    format!("{r}//x"),
                    "noslash".to_string(),
                    format!("{r}/a\u{1}"),
                ])
                .clone();
        }
        self.path()
    }

    fn data(&mut self) -> Bytes {
        Bytes::from(*self.rng.pick(&["", "d1", "data-two", "\u{e9}t\u{e9}"]))
    }

    fn acl(&mut self) -> Vec<Acl> {
        match self.rng.below(20) {
            0 => Acl::read_unsafe(),
            1 => vec![digest_acl(perms::ALL, "u1", "p1")],
            2 => Acl::creator_all(),
            3 => vec![
                digest_acl(perms::ALL, "u1", "p1"),
                Acl::new(perms::READ, Id::anyone()),
            ],
            4 => vec![Acl::new(perms::ALL, Id::new("ip", "127.0.0.1"))],
            5 => vec![Acl::new(perms::ALL, Id::new("ip", "10.0.0.0/8"))],
            6 => vec![Acl::new(perms::ALL, Id::new("world", "someone"))],
            7 => Vec::new(),
            8 => vec![
                Acl::new(perms::READ | perms::CREATE, Id::anyone()),
                Acl::new(perms::READ | perms::CREATE, Id::anyone()),
            ],
            9 => vec![Acl::new(perms::DELETE | perms::READ, Id::anyone())],
            _ => Acl::open_unsafe(),
        }
    }

    fn version(&mut self) -> i32 {
        if self.rng.chance(60) {
            -1
        } else {
            *self.rng.pick(&[0, 1, 2, 7])
        }
    }

    fn create_request(&mut self) -> CreateRequest {
        let mode = *self.rng.pick(&[
            CreateMode::Persistent,
            CreateMode::Persistent,
            CreateMode::Persistent,
            CreateMode::Ephemeral,
            CreateMode::Ephemeral,
            CreateMode::PersistentSequential,
            CreateMode::EphemeralSequential,
            CreateMode::Container,
        ]);
        let mut path = self.any_path();
        if mode.is_sequential() && self.rng.chance(50) {
            path.push_str("/s-");
        }
        CreateRequest {
            path,
            data: self.data(),
            acl: self.acl(),
            flags: if self.rng.chance(2) { 9 } else { mode.as_i32() },
        }
    }

    fn multi_op(&mut self) -> MultiOp {
        match self.rng.below(7) {
            0 | 1 => MultiOp::Create(self.create_request()),
            2 => MultiOp::Delete(DeleteRequest {
                path: self.any_path(),
                version: self.version(),
            }),
            3 => MultiOp::SetData(SetDataRequest {
                path: self.path(),
                data: self.data(),
                version: self.version(),
            }),
            4 => MultiOp::Check(CheckVersionRequest {
                path: self.path(),
                version: self.version(),
            }),
            5 => MultiOp::CreateTtl(CreateTtlRequest {
                path: self.path(),
                data: self.data(),
                acl: Acl::open_unsafe(),
                flags: CreateMode::PersistentWithTtl.as_i32(),
                ttl: 600_000,
            }),
            _ => {
                let mut r = self.create_request();
                r.flags = CreateMode::Container.as_i32();
                MultiOp::CreateContainer(r)
            }
        }
    }

    fn watch_paths(&mut self) -> Vec<String> {
        (0..self.rng.below(3)).map(|_| self.path()).collect()
    }

    fn request(&mut self) -> Request {
        let w = self.rng.chance(50);
        match self.rng.below(100) {
            0..=21 => Request::Create(self.create_request()),
            22..=24 => Request::Create2(self.create_request()),
            25 => {
                let mut r = self.create_request();
                r.flags = CreateMode::Container.as_i32();
                Request::CreateContainer(r)
            }
            26 => {
                let flags = *self.rng.pick(&[5, 6, 0]);
                // A createTTL with a plain mode and a negative TTL passes the server's
                // checks and then kills it (an IllegalArgumentException where the
                // transaction is applied); the model does the same, tested on its own.
                let ttl = if flags == 0 {
                    *self.rng.pick(&[600_000, 0])
                } else {
                    *self.rng.pick(&[600_000, 0, -1])
                };
                Request::CreateTtl(CreateTtlRequest {
                    path: self.path(),
                    data: self.data(),
                    acl: Acl::open_unsafe(),
                    flags,
                    ttl,
                })
            }
            27..=34 => Request::Delete(DeleteRequest {
                path: self.any_path(),
                version: self.version(),
            }),
            35..=43 => Request::SetData(SetDataRequest {
                path: self.any_path(),
                data: self.data(),
                version: self.version(),
            }),
            44..=50 => Request::Exists(ExistsRequest {
                path: self.path(),
                watch: w,
            }),
            51..=57 => Request::GetData(GetDataRequest {
                path: self.path(),
                watch: w,
            }),
            58..=61 => Request::GetChildren(GetChildrenRequest {
                path: self.path(),
                watch: w,
            }),
            62..=64 => Request::GetChildren2(GetChildrenRequest {
                path: self.path(),
                watch: w,
            }),
            65..=67 => Request::GetAcl(GetAclRequest { path: self.path() }),
            68..=70 => Request::SetAcl(SetAclRequest {
                path: self.any_path(),
                acl: self.acl(),
                version: self.version(),
            }),
            71..=78 => Request::Multi(MultiRequest {
                ops: (0..self.rng.below(4) + 1)
                    .map(|_| self.multi_op())
                    .collect(),
            }),
            79..=80 => Request::MultiRead(MultiRequest {
                ops: (0..self.rng.below(3) + 1)
                    .map(|_| match self.rng.below(5) {
                        0 | 1 => MultiOp::GetData(GetDataRequest {
                            path: self.path(),
                            watch: self.rng.chance(30),
                        }),
                        2 | 3 => MultiOp::GetChildren(GetChildrenRequest {
                            path: self.path(),
                            watch: self.rng.chance(30),
                        }),
                        _ => MultiOp::Delete(DeleteRequest {
                            path: self.path(),
                            version: -1,
                        }),
                    })
                    .collect(),
            }),
            81..=83 => Request::AddWatch(AddWatchRequest {
                path: self.path(),
                mode: *self.rng.pick(&[0, 1, 1, 7]),
            }),
            84..=85 => Request::CheckWatches(CheckWatchesRequest {
                path: self.path(),
                kind: *self.rng.pick(&[1, 2, 3, 4]),
            }),
            86..=88 => Request::RemoveWatches(RemoveWatchesRequest {
                path: self.path(),
                kind: *self.rng.pick(&[1, 2, 3, 3, 5]),
            }),
            89..=90 => {
                Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: self.path() })
            }
            91..=92 => Request::GetEphemerals(GetEphemeralsRequest {
                prefix_path: if self.rng.chance(50) {
                    self.root.clone()
                } else {
                    self.path()
                },
            }),
            93 => Request::Sync(SyncRequest { path: self.path() }),
            94 => Request::WhoAmI,
            95 | 96 if self.ensemble => Request::WhoAmI,
            95 => Request::GetConfig { watch: w },
            96 => Request::GetAcl(GetAclRequest {
                path: "/zookeeper/config".into(),
            }),
            97 => Request::GetData(GetDataRequest {
                path: "/zookeeper".into(),
                watch: false,
            }),
            // A version check on its own: the server answers a failing one and swallows a
            // passing one (a NullPointerException in 3.8.0), so it passes rarely here. In
            // an ensemble a passing one stops the followers: only failing ones there.
            98 | 99 if self.ensemble => Request::Check(CheckVersionRequest {
                path: self.path(),
                version: 99,
            }),
            98 => Request::Check(CheckVersionRequest {
                path: self.path(),
                version: 99,
            }),
            _ => Request::Check(CheckVersionRequest {
                path: self.path(),
                version: if self.rng.chance(10) { 0 } else { 42 },
            }),
        }
    }

    fn raw(&mut self) -> Vec<u8> {
        let mut frame = Vec::new();
        match self.rng.below(4) {
            // An opcode the server does not know: Unimplemented, then a close.
            0 => {
                frame.extend_from_slice(&7i32.to_be_bytes());
                frame.extend_from_slice(&50i32.to_be_bytes());
            }
            // A create cut short: MarshallingError, and a zxid is used.
            1 => {
                frame.extend_from_slice(&7i32.to_be_bytes());
                frame.extend_from_slice(&1i32.to_be_bytes());
                frame.extend_from_slice(&100i32.to_be_bytes());
                frame.extend_from_slice(b"/short");
            }
            // A getData without a body: MarshallingError, no zxid.
            2 => {
                frame.extend_from_slice(&7i32.to_be_bytes());
                frame.extend_from_slice(&4i32.to_be_bytes());
            }
            // A header cut short: the server closes the connection.
            _ => frame.extend_from_slice(&[0, 0, 0]),
        }
        frame
    }

    fn open_slots(&self) -> Vec<usize> {
        (0..SLOTS).filter(|i| self.open[*i].is_some()).collect()
    }

    fn step(&mut self) -> Step {
        let open = self.open_slots();
        let closed: Vec<usize> = (0..SLOTS).filter(|i| self.open[*i].is_none()).collect();
        let roll = self.rng.below(1000);
        if open.is_empty() || (roll < 30 && !closed.is_empty()) {
            let slot = *self.rng.pick(&closed);
            let short = self.expiries > 0 && self.rng.chance(40);
            self.open[slot] = Some(short);
            // Timeouts outside the server's bounds are clamped to them.
            let timeout = match (short, self.rng.below(4)) {
                (true, 0) => 100,
                (true, _) => SHORT_TIMEOUT,
                (false, 0) => 90_000,
                (false, _) => LONG_TIMEOUT,
            };
            return Step::Open(slot, timeout);
        }
        let s = *self.rng.pick(&open);
        match roll {
            30..=44 => {
                self.open[s] = None;
                Step::Close(s)
            }
            45..=69 => Step::Reconnect(
                s,
                *self.rng.pick(&[
                    Resume::Right,
                    Resume::Right,
                    Resume::WrongPassword,
                    Resume::FutureZxid,
                ]),
            ),
            70..=94 => {
                let (scheme, creds) = *self.rng.pick(&[
                    ("digest", "u1:p1"),
                    ("digest", "u1:p1"),
                    ("digest", "u2:p2"),
                    ("ip", "ignored"),
                    ("nosuch", "x"),
                ]);
                if scheme == "nosuch" {
                    if self.open[s] == Some(true) {
                        // A short session whose connection the server closes would expire
                        // at a moment that differs between servers.
                        return Step::Op(s, self.request());
                    }
                    // The server closes the connection; the session lives on unseen.
                    self.open[s] = None;
                }
                Step::Auth(s, scheme, creds)
            }
            95..=119 => Step::SetWatches(
                s,
                SetWatches2 {
                    relative_zxid: 0,
                    data_watches: self.watch_paths(),
                    exist_watches: self.watch_paths(),
                    child_watches: self.watch_paths(),
                    persistent_watches: self.watch_paths(),
                    persistent_recursive_watches: self.watch_paths(),
                },
            ),
            120..=129 => {
                let raw = self.raw();
                if raw.len() < 8 || raw[4..8] == 50i32.to_be_bytes() {
                    if self.open[s] == Some(true) {
                        return Step::Op(s, self.request());
                    }
                    self.open[s] = None;
                }
                Step::Raw(s, raw)
            }
            130..=139 if self.expiries > 0 && self.open[s] == Some(true) => {
                self.expiries -= 1;
                self.open[s] = None;
                Step::Expire(s)
            }
            _ => Step::Op(s, self.request()),
        }
    }
}

/// A script of `len` steps under `root`, from `seed`; `expiries` bounds the (slow)
/// expiry steps.
pub fn generate(seed: u64, len: usize, root: &str, expiries: usize, ensemble: bool) -> Vec<Step> {
    let mut g = Gen {
        rng: Rng::new(seed),
        root: root.to_string(),
        open: [None; SLOTS],
        expiries,
        ensemble,
    };
    let mut steps = vec![
        Step::Open(0, LONG_TIMEOUT),
        Step::Op(
            0,
            Request::Create(CreateRequest {
                path: root.to_string(),
                data: Bytes::new(),
                acl: Acl::open_unsafe(),
                flags: 0,
            }),
        ),
    ];
    g.open[0] = Some(false);
    // Most steps should meet existing nodes: start from a small tree.
    for rel in ["/a", "/b", "/c", "/a/x", "/a/y", "/b/x"] {
        steps.push(Step::Op(
            0,
            Request::Create(CreateRequest {
                path: format!("{root}{rel}"),
                data: Bytes::from_static(b"init"),
                acl: Acl::open_unsafe(),
                flags: 0,
            }),
        ));
    }
    for _ in 0..len {
        steps.push(g.step());
    }
    steps
}
