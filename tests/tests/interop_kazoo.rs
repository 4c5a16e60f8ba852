//! Our lock machine (`zk_recipes::lock::Lock`, driven here by a `zk_mio::Connection` in a
//! plain mio loop) and Kazoo's `Lock` (and, in a second test, Kazoo's `Election`), taking
//! turns on the same lock path of a real ZooKeeper 3.8 server. Inside the lock each side creates an exclusive ephemeral marker
//! node and increments a shared counter with a versioned write: a marker that already
//! exists, or a version that moved, means two holders at once. At the end the counter
//! must equal the number of turns taken, and no lock node may be left.
//!
//! Kazoo comes from the Python named by `KAZOO_PYTHON` (`.ci/run` makes a venv and sets it),
//! or `python3` if it can import kazoo. Without Kazoo the test says so and passes, unless
//! `ZK_REQUIRE_INTEROP` is set, as `.ci/run` does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Poll, Token};
use zk_client::op::{self, Op, Reply};
use zk_client::{CreateOptions, Error as ClientError};
use zk_harness::ZkServer;
use zk_mio::{Config, Connection, Event};
use zk_proto::ErrorCode;
use zk_proto::records::Acl;
use zk_proto::session::RequestId;
use zk_recipes::lock::{Lock, Outcome};
use zk_recipes::{Driven, Recipe};
use zk_tests::interop;

const LOCK: &str = "/interop/lock";
const MARKER: &str = "/interop/marker";
const COUNTER: &str = "/interop/counter";
const TURNS: u32 = 60;

const KAZOO_SIDE: &str = r#"
import sys
from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, BadVersionError
hosts, turns, name, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
lock = zk.Lock("/interop/lock", name)
seen = {"done": 0, "overlaps": 0}
def turn():
    try:
        zk.create("/interop/marker", name.encode(), ephemeral=True)
    except NodeExistsError:
        seen["overlaps"] += 1
        return
    data, stat = zk.get("/interop/counter")
    try:
        zk.set("/interop/counter", str(int(data) + 1).encode(), version=stat.version)
        seen["done"] += 1
    except BadVersionError:
        seen["overlaps"] += 1
    zk.delete("/interop/marker")
for _ in range(turns):
    if mode == "election":
        zk.Election("/interop/lock", name).run(turn)
    else:
        with lock:
            turn()
zk.stop()
print("KAZOO", seen["done"], seen["overlaps"])
"#;

/// One session in a mio loop, running the lock machine (through `Driven`, which keeps its
/// request ids) and plain calls.
struct Ours {
    poll: Poll,
    conn: Connection,
    lock: Driven<Lock>,
    replies: HashMap<RequestId, Reply>,
    outcomes: Vec<Outcome>,
}

impl Ours {
    fn new(hosts: &str) -> Ours {
        let poll = Poll::new().unwrap();
        let config = Config::new(hosts)
            .unwrap()
            .with_session_timeout(Duration::from_secs(10));
        let conn = Connection::new(config, poll.registry(), Token(0), Instant::now()).unwrap();
        Ours {
            poll,
            conn,
            lock: Driven::new(Lock::new(LOCK, "rust0123456789abcdef", Acl::open_unsafe())),
            replies: HashMap::new(),
            outcomes: Vec::new(),
        }
    }

    /// One turn of the loop: IO, time, the session's events, the machine's outputs.
    fn turn(&mut self) {
        let mut events = Events::with_capacity(16);
        let now = Instant::now();
        let timeout = self
            .conn
            .timeout(now)
            .map(|t| t.min(Duration::from_millis(50)));
        self.poll
            .poll(&mut events, timeout.or(Some(Duration::from_millis(50))))
            .unwrap();
        let now = Instant::now();
        for event in events.iter() {
            self.conn.handle_event(event, now);
        }
        self.conn.handle_timeout(now);
        self.lock.handle_timeout(now);
        while let Some(event) = self.conn.poll_event() {
            let id = self.conn.session().session_id();
            // The machine's own completions and watch events stop here.
            if let Some(Event::Complete { id, result, .. }) = self.lock.handle_event(now, event, id)
            {
                self.replies.insert(id, result);
            }
        }
        let (conn, outcomes) = (&mut self.conn, &mut self.outcomes);
        self.lock.flush(
            now,
            |request| conn.submit(now, request),
            |o| outcomes.push(o),
        );
    }

    /// Runs one of the client layer's typed operations to its result.
    fn call<T>(&mut self, op: Op<T>) -> zk_client::Result<T> {
        let (request, decode) = op.into_parts();
        let id = self.conn.submit(Instant::now(), request)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(r) = self.replies.remove(&id) {
                return decode(r);
            }
            assert!(Instant::now() < deadline, "no reply in 30 s");
            self.turn();
        }
    }

    fn until(&mut self, what: &str, done: impl Fn(&Outcome) -> bool) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(at) = self.outcomes.iter().position(&done) {
                return self.outcomes.remove(at);
            }
            assert!(
                Instant::now() < deadline,
                "no {what} in 60 s: {:?}",
                self.outcomes
            );
            self.turn();
        }
    }
}

fn create(path: &str, data: &'static str, options: &CreateOptions) -> Op<String> {
    op::create(path, Bytes::from(data), options, &Acl::open_unsafe())
}

#[test]
fn our_lock_and_kazoos_exclude_each_other() {
    take_turns("lock");
}

#[test]
fn our_lock_and_kazoos_election_never_lead_at_once() {
    take_turns("election");
}

/// Our lock and Kazoo's (`mode`: its `Lock`, or its `Election`, which leads while it holds
/// a `Lock` on the path) take `TURNS` turns each on one path of a fresh server.
fn take_turns(mode: &str) {
    let Some(python) = interop::kazoo() else {
        return;
    };
    let server = ZkServer::standalone().expect("a real server");
    let hosts = server.connect_string();
    let mut ours = Ours::new(&hosts);
    for (path, data) in [("/interop", ""), (LOCK, ""), (COUNTER, "0")] {
        match ours.call(create(path, data, &CreateOptions::persistent())) {
            Ok(_)
            | Err(ClientError::Server {
                code: ErrorCode::NodeExists,
                ..
            }) => {}
            Err(e) => panic!("creating {path}: {e}"),
        }
    }

    let turns = TURNS.to_string();
    let kazoo = interop::python(&python, KAZOO_SIDE, &[&hosts, &turns, "kazoo", mode])
        .spawn()
        .expect("start the Kazoo side");

    let (mut done, mut overlaps, mut fencing) = (0u32, 0u32, Vec::new());
    for _ in 0..TURNS {
        let session = ours.conn.session().session_id();
        ours.lock
            .machine_mut()
            .acquire(Instant::now(), session, None);
        match ours.until("Acquired", |o| matches!(o, Outcome::Acquired { .. })) {
            Outcome::Acquired { fencing: f, .. } => fencing.push(f),
            other => panic!("{other:?}"),
        }
        match ours.call(create(MARKER, "rust", &CreateOptions::ephemeral())) {
            Ok(_) => {
                let (data, stat) = ours
                    .call(op::get_data(COUNTER, false))
                    .expect("reading the counter");
                let n: u64 = std::str::from_utf8(&data).unwrap().parse().unwrap();
                let next = Bytes::from((n + 1).to_string());
                match ours.call(op::set_data(COUNTER, next, Some(stat.version))) {
                    Ok(_) => done += 1,
                    Err(ClientError::Server {
                        code: ErrorCode::BadVersion,
                        ..
                    }) => overlaps += 1,
                    Err(e) => panic!("writing the counter: {e}"),
                }
                ours.call(op::delete(MARKER, None))
                    .expect("deleting the marker");
            }
            Err(ClientError::Server {
                code: ErrorCode::NodeExists,
                ..
            }) => overlaps += 1,
            Err(e) => panic!("creating the marker: {e}"),
        }
        ours.lock.machine_mut().release(Instant::now());
        ours.until("Released", |o| matches!(o, Outcome::Released));
    }

    let output = kazoo.wait_with_output().expect("the Kazoo side ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Kazoo side failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("KAZOO "))
        .expect("the Kazoo side's summary");
    let f: Vec<u32> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    let (kazoo_done, kazoo_overlaps) = (f[0], f[1]);

    assert_eq!(
        (overlaps, kazoo_overlaps),
        (0, 0),
        "two holders at once (ours, Kazoo's)"
    );
    assert_eq!((done, kazoo_done), (TURNS, TURNS));
    let (counter, _) = ours
        .call(op::get_data(COUNTER, false))
        .expect("reading the counter");
    assert_eq!(
        std::str::from_utf8(&counter).unwrap(),
        (2 * TURNS).to_string(),
        "every increment of both sides is there"
    );
    assert!(
        fencing.windows(2).all(|w| w[0] < w[1]),
        "fencing tokens grow: {fencing:?}"
    );
    let left = ours.call(op::get_children(LOCK)).expect("listing the lock");
    assert!(left.is_empty(), "left behind: {left:?}");
    eprintln!(
        "{TURNS} turns each, ours and Kazoo's, on one lock: no overlap, counter {}",
        2 * TURNS
    );
}
