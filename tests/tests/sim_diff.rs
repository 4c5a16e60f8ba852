//! Differential tests: the same scripts of raw requests over several sessions run against
//! a real ZooKeeper 3.8 server and against zk-sim's model served on a socket, and every
//! reply and notification must agree, field by field, once zxids are made relative to the
//! script's first, session ids named by order of appearance and times masked.
//!
//! `ZK_SIM_DIFF_CASES=5000 cargo test -p zk-tests --test sim_diff -- --nocapture` runs a
//! long campaign; a mismatch is shrunk to the shortest script that still shows it and
//! printed, to be added to `regressions()` once the model is fixed.

mod sim_diff {
    pub mod runner;
    pub mod script;
}

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use sim_diff::runner::Runner;
use sim_diff::script::{Step, generate};
use zk_harness::{ServerOptions, ZkServer};
use zk_proto::consts::CreateMode;
use zk_proto::digest::digest_id;
use zk_proto::records::*;
use zk_sim::{Config, SimServer};

/// The super user both servers know, so cleanup can delete whatever a script made.
const SUPER: (&str, &str) = ("super", "diff-secret");

struct Pair {
    real: Vec<std::net::SocketAddr>,
    sim: Vec<std::net::SocketAddr>,
    /// A second model of the same ensemble whose followers lag, when there is one.
    lagging: Vec<std::net::SocketAddr>,
    _real: Box<dyn std::any::Any + Send>,
    _sim: SimServer,
    _rt: tokio::runtime::Runtime,
    _lagging: Option<(SimServer, tokio::runtime::Runtime)>,
    /// The real servers' logs, for when they stop answering.
    log: Box<dyn Fn() -> String + Send>,
}

fn options() -> ServerOptions {
    ServerOptions::default()
        // No container reaping during the scripts: it would take zxids at moments that
        // differ between the two servers. Reaping has its own test.
        .jvm_flag("-Dznode.container.checkIntervalMs=3600000")
        .jvm_flag(&format!(
            "-Dzookeeper.DigestAuthenticationProvider.superDigest={}",
            digest_id(SUPER.0, SUPER.1)
        ))
}

/// The model with the harness's settings.
fn model(config: Config) -> Config {
    config
        .tick(Duration::from_millis(200))
        .session_timeouts(Duration::from_millis(400), Duration::from_millis(60_000))
        .extended_types(true)
        .container_check(Duration::from_secs(3600))
        .super_digest(&digest_id(SUPER.0, SUPER.1))
}

fn serve(config: Config) -> (SimServer, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime for the model's socket front");
    let addrs = vec!["127.0.0.1:0"; config.servers()];
    let sim = rt
        .block_on(SimServer::bind_with(config, &addrs))
        .expect("serve the model");
    (sim, rt)
}

/// One real server and one model for the whole test binary; scripts take turns.
fn pair() -> &'static Mutex<Pair> {
    static PAIR: OnceLock<Mutex<Pair>> = OnceLock::new();
    PAIR.get_or_init(|| {
        let real = ZkServer::standalone_with(options()).expect("start a real server");
        let (sim, rt) = serve(model(Config::standalone()));
        let log_dir = real.log_path();
        Mutex::new(Pair {
            real: vec![real.addr()],
            sim: sim.addrs().to_vec(),
            lagging: Vec::new(),
            _real: Box::new(real),
            _sim: sim,
            _rt: rt,
            _lagging: None,
            log: Box::new(move || std::fs::read_to_string(&log_dir).unwrap_or_default()),
        })
    })
}

/// How far the lagging model's followers may fall behind: well past a script step's
/// round trip, so that replies, reads and notifications really wait for it.
const LAG: Duration = Duration::from_millis(40);

/// A real 3-server ensemble, a model one, and a model one whose followers lag.
fn ensemble_pair() -> &'static Mutex<Pair> {
    static PAIR: OnceLock<Mutex<Pair>> = OnceLock::new();
    PAIR.get_or_init(|| {
        let real = zk_harness::Ensemble::start_with(3, options()).expect("start an ensemble");
        let (sim, rt) = serve(model(Config::ensemble(3)));
        let (lagging, lag_rt) = serve(model(Config::ensemble(3).follower_lag(LAG, 7)));
        let addrs = real.servers().iter().map(ZkServer::addr).collect();
        let logs: Vec<_> = real.servers().iter().map(ZkServer::log_path).collect();
        Mutex::new(Pair {
            real: addrs,
            sim: sim.addrs().to_vec(),
            lagging: lagging.addrs().to_vec(),
            _real: Box::new(real),
            _sim: sim,
            _rt: rt,
            _lagging: Some((lagging, lag_rt)),
            log: Box::new(move || {
                logs.iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let text = std::fs::read_to_string(l).unwrap_or_default();
                        let tail: Vec<&str> = text.lines().rev().take(25).collect();
                        let tail: Vec<&str> = tail.into_iter().rev().collect();
                        format!("== server {i}\n{}\n", tail.join("\n"))
                    })
                    .collect()
            }),
        })
    })
}

fn run_one(addrs: &[std::net::SocketAddr], steps: &[Step], root: &str) -> Vec<String> {
    // A passing check outside a multi is never answered: a standalone run waits 1.5 s
    // for it. Ensemble scripts send none, and an ensemble's first write after a session
    // moved can take a while.
    let patience = if addrs.len() > 1 { 10_000 } else { 1500 };
    let mut r = Runner::new(addrs.to_vec(), Duration::from_millis(patience));
    r.run(steps);
    r.cleanup(root, SUPER);
    r.trace
        .iter()
        .enumerate()
        .flat_map(|(i, per)| {
            per.iter().flat_map(move |(slot, lines)| {
                lines.iter().map(move |l| format!("#{i} s{slot} {l}"))
            })
        })
        .collect()
}

/// How two traces differed.
struct Mismatch {
    /// The first differing lines, with context.
    report: String,
    /// The real server left a request unanswered past the runner's patience where the model
    /// answered: a loaded machine can do that to a healthy server.
    real_timed_out: bool,
}

/// The first line where the two traces differ, with context, or None.
fn compare(pair: &Mutex<Pair>, steps: &[Step], root: &str) -> Option<Mismatch> {
    compare_on(pair, steps, root, false)
}

/// [`compare`], against the lagging model when `lag` is set.
fn compare_on(pair: &Mutex<Pair>, steps: &[Step], root: &str, lag: bool) -> Option<Mismatch> {
    let pair = pair.lock().unwrap_or_else(|e| e.into_inner());
    let real = run_one(&pair.real, steps, root);
    let model = if lag { &pair.lagging } else { &pair.sim };
    assert!(!model.is_empty(), "this pair has no lagging model");
    let sim = run_one(model, steps, root);
    if std::env::var_os("ZK_SIM_DIFF_SHOW").is_some() {
        println!("{}", real.join("\n"));
    }
    if real == sim {
        return None;
    }
    if real.iter().any(|l| l.contains("connect failed")) {
        let log = (pair.log)();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        panic!(
            "the real server stopped answering; its log ends with:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    // A request, or a new session's handshake, the real server left unanswered for the
    // runner's whole patience.
    let timed_out = |trace: &[String]| {
        trace.iter().any(|l| {
            l.ends_with("no reply: timeout")
                || (l.contains("no handshake reply") && l.contains("timeout"))
        })
    };
    let real_timed_out = timed_out(&real) && !timed_out(&sim);
    let at = real
        .iter()
        .zip(&sim)
        .position(|(a, b)| a != b)
        .unwrap_or(real.len().min(sim.len()));
    let from = at.saturating_sub(6);
    let mut out = String::new();
    out.push_str("--- real ZooKeeper\n");
    for l in real.iter().skip(from).take(12) {
        out.push_str(&format!("  {l}\n"));
    }
    out.push_str("--- zk-sim\n");
    for l in sim.iter().skip(from).take(12) {
        out.push_str(&format!("  {l}\n"));
    }
    Some(Mismatch {
        report: out,
        real_timed_out,
    })
}

/// Drops steps while the mismatch stays, so the report is as short as it can be.
fn shrink(
    pair: &Mutex<Pair>,
    mut steps: Vec<Step>,
    root: &str,
    mut report: String,
    lag: bool,
) -> (Vec<Step>, String) {
    if compare_on(pair, &steps, root, lag).is_none() {
        report.push_str("\n(the mismatch did not show again when the script was run again)\n");
        return (steps, report);
    }
    let mut i = steps.len();
    while i > 2 {
        i -= 1;
        let mut candidate = steps.clone();
        candidate.remove(i);
        if let Some(r) = compare_on(pair, &candidate, root, lag) {
            steps = candidate;
            report = r.report;
        }
    }
    (steps, report)
}

fn check(pair: &Mutex<Pair>, seed: u64, len: usize, expiries: usize, ensemble: bool, lag: bool) {
    let root = format!("/d{seed}");
    let steps = generate(seed, len, &root, expiries, ensemble);
    if let Some(first) = compare_on(pair, &steps, &root, lag) {
        // A real server that only answered late, once, is a slow machine, not a
        // disagreement; every other mismatch fails, whether it shows again or not.
        if first.real_timed_out && compare_on(pair, &steps, &root, lag).is_none() {
            eprintln!(
                "seed {seed}: the real server left a request unanswered for the runner's whole \
                 patience once and agreed with zk-sim when the script ran again:\n{}",
                first.report
            );
            return;
        }
        let (steps, report) = shrink(pair, steps, &root, first.report, lag);
        panic!(
            "seed {seed}: zk-sim and ZooKeeper disagree.\n{report}\nshortest script ({} steps):\n{steps:#?}",
            steps.len()
        );
    }
}

/// Random scripts: 40 steps over up to four sessions each; one in ten may expire a session.
#[test]
fn random_scripts_agree_with_the_real_server() {
    let cases: u64 = std::env::var("ZK_SIM_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let first: u64 = std::env::var("ZK_SIM_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for seed in first..first + cases {
        check(pair(), seed, 40, usize::from(seed % 10 == 0), false, false);
    }
}

/// The same on a 3-server ensemble: each session on its own server, moving to the next
/// one at every reconnect; every server syncs with the leader after each step.
#[test]
fn random_scripts_agree_with_a_real_ensemble() {
    ensemble_scripts(10_000, false);
}

/// `ZK_SIM_DIFF_ENSEMBLE_CASES` scripts (40 by default) from seed `first` on, against the
/// plain or the lagging model.
fn ensemble_scripts(first: u64, lag: bool) {
    let cases: u64 = std::env::var("ZK_SIM_DIFF_ENSEMBLE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    for seed in first..first + cases {
        let expiries = usize::from(seed % 10 == 0);
        check(ensemble_pair(), seed, 40, expiries, true, lag);
    }
}

/// The same scripts against a model whose followers lag up to 40 ms behind the leader:
/// a member answers writes once it applied them, holds a session's reads behind its
/// writes, answers `sync` once caught up, fires watches as it applies, and its pings
/// carry the zxid it applied. The runner waits after each step until every server shows
/// the step's zxid, as it must on the real ensemble, so every reply and notification
/// must still agree with the real servers.
#[test]
fn random_scripts_agree_with_a_real_ensemble_when_the_models_followers_lag() {
    ensemble_scripts(20_000, true);
}

/// A real server and a model that both reap empty containers and expired TTL nodes every
/// 500 ms (the harness's setting).
fn reaping_pair() -> Mutex<Pair> {
    let real = ZkServer::standalone_with(ServerOptions::default()).expect("start a real server");
    let config = Config::standalone()
        .tick(Duration::from_millis(200))
        .session_timeouts(Duration::from_millis(400), Duration::from_millis(60_000))
        .extended_types(true)
        .container_check(Duration::from_millis(500));
    let (sim, rt) = serve(config);
    Mutex::new(Pair {
        real: vec![real.addr()],
        sim: sim.addrs().to_vec(),
        lagging: Vec::new(),
        _real: Box::new(real),
        _sim: sim,
        _rt: rt,
        _lagging: None,
        log: Box::new(String::new),
    })
}

/// Containers are deleted once emptied (not before their first child), TTL nodes once
/// their TTL passed without a change (not while they have children), with the watchers
/// told, the same on both servers.
#[test]
fn containers_and_ttl_nodes_are_reaped_like_the_real_server() {
    let pair = reaping_pair();
    let r = "/reap";
    let ttl = |path: &str, ttl: i64| {
        Request::CreateTtl(CreateTtlRequest {
            path: path.into(),
            data: Bytes::new(),
            acl: Acl::open_unsafe(),
            flags: CreateMode::PersistentWithTtl.as_i32(),
            ttl,
        })
    };
    let container = |path: &str| {
        Request::CreateContainer(CreateRequest {
            path: path.into(),
            data: Bytes::new(),
            acl: Acl::open_unsafe(),
            flags: CreateMode::Container.as_i32(),
        })
    };
    let watch = |path: &str| {
        Request::Exists(ExistsRequest {
            path: path.into(),
            watch: true,
        })
    };
    let steps = vec![
        Step::Open(0, 30_000),
        Step::Op(0, create(r, CreateMode::Persistent)),
        Step::Op(0, container(&format!("{r}/used"))),
        Step::Op(0, container(&format!("{r}/unused"))),
        Step::Op(
            0,
            create(&format!("{r}/used/child"), CreateMode::Persistent),
        ),
        Step::Op(0, ttl(&format!("{r}/short"), 300)),
        Step::Op(0, ttl(&format!("{r}/parent"), 300)),
        Step::Op(
            0,
            create(&format!("{r}/parent/child"), CreateMode::Persistent),
        ),
        Step::Op(0, watch(&format!("{r}/used"))),
        Step::Op(0, watch(&format!("{r}/short"))),
        // One deletion per wait: within one check, the order depends on when each node
        // became due, which differs between the servers.
        Step::Wait(1500),
        Step::Op(
            0,
            Request::Delete(DeleteRequest {
                path: format!("{r}/used/child"),
                version: -1,
            }),
        ),
        Step::Wait(1500),
        Step::Op(
            0,
            Request::GetChildren(GetChildrenRequest {
                path: r.into(),
                watch: false,
            }),
        ),
    ];
    if let Some(report) = compare(&pair, &steps, r) {
        panic!("reaping differs:\n{}", report.report);
    }
}

/// A node created or set with null data (length -1, the Java client's `null`) reads back
/// as null, not as empty, on both servers; empty data reads back as empty.
#[test]
fn null_data_reads_back_as_null() {
    let pair = pair().lock().unwrap_or_else(|e| e.into_inner());
    let null = zk_proto::codec::jute::null;
    for addr in [pair.real[0], pair.sim[0]] {
        let mut c = zk_tests::RawConn::connect(addr, 10_000).expect("a session");
        let mut xid = 0;
        let mut call = |c: &mut zk_tests::RawConn, req: Request| {
            xid += 1;
            c.call(xid, &req).expect("an answer")
        };
        let data_length = |body: &Bytes| i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        for (path, data) in [("/null-data", null()), ("/empty-data", Bytes::new())] {
            let (h, _) = call(
                &mut c,
                Request::Create(CreateRequest {
                    path: path.into(),
                    data,
                    acl: Acl::open_unsafe(),
                    flags: 0,
                }),
            );
            assert_eq!(h.err, 0, "create {path} on {addr}");
        }
        let get = |path: &str| {
            Request::GetData(GetDataRequest {
                path: path.into(),
                watch: false,
            })
        };
        let (_, body) = call(&mut c, get("/null-data"));
        assert_eq!(data_length(&body), -1, "null stays null on {addr}");
        let (_, body) = call(&mut c, get("/empty-data"));
        assert_eq!(data_length(&body), 0, "empty stays empty on {addr}");
        // setData with null data makes a node's data null; the decoder says so too.
        call(
            &mut c,
            Request::SetData(SetDataRequest {
                path: "/empty-data".into(),
                data: null(),
                version: -1,
            }),
        );
        let (_, body) = call(&mut c, get("/empty-data"));
        let Response::GetData(reply) =
            Response::decode_for(zk_proto::OpCode::GetData, &body).unwrap()
        else {
            panic!("not a getData reply");
        };
        assert!(zk_proto::codec::jute::is_null(&reply.data), "on {addr}");
        assert_eq!(reply.stat.data_length, 0);
        for path in ["/null-data", "/empty-data"] {
            call(
                &mut c,
                Request::Delete(DeleteRequest {
                    path: path.into(),
                    version: -1,
                }),
            );
        }
    }
}

/// Every four-letter word answers alike, in the same format, once numbers, addresses,
/// dates and versions are masked and the lines of unordered listings sorted: both servers
/// are asked with the same two sessions watching the same nodes.
#[test]
fn four_letter_words_answer_alike() {
    let pair = pair().lock().unwrap_or_else(|e| e.into_inner());
    let ask = |addr, cmd: &str| {
        zk_harness::four_letter(addr, cmd, Duration::from_secs(5)).expect("an answer")
    };
    let mut answers = Vec::new();
    for addr in [pair.real[0], pair.sim[0]] {
        assert_eq!(ask(addr, "ruok"), "imok");
        assert_eq!(ask(addr, "isro"), "rw");
        let srvr = ask(addr, "srvr");
        assert_eq!(zk_harness::Mode::parse(&srvr), zk_harness::Mode::Standalone);
        // Two sessions with an ephemeral node, data watches (one path watched by both),
        // an exists watch on a missing node and a child watch.
        let hosts = addr.to_string();
        let a = zk_mio::blocking::Client::connect(&hosts).expect("a session");
        let b = zk_mio::blocking::Client::connect(&hosts).expect("a session");
        a.create_all("/fourlw/b", "x").unwrap();
        a.create("/fourlw/e", "", &zk_mio::CreateOptions::ephemeral())
            .unwrap();
        let (_, _, _wa) = a.get_data_watch("/fourlw/b").unwrap();
        let (_, _wn) = a.exists_watch("/fourlw/nope").unwrap();
        let (_, _, _wc) = a.get_children_watch("/fourlw").unwrap();
        let (_, _, _wb) = b.get_data_watch("/fourlw/b").unwrap();
        let words = [
            "srvr", "stat", "cons", "wchs", "wchc", "wchp", "dump", "dirs", "conf", "envi", "mntr",
            "gtmk", "hash", "crst", "srst",
        ];
        let side: Vec<(&str, String)> = words
            .iter()
            .map(|w| (*w, shape(w, &ask(addr, w))))
            .collect();
        // A word the server does not know is read as a length: the connection closes
        // without an answer.
        assert_eq!(ask(addr, "kill"), "", "unknown word on {addr}");
        answers.push(side);
        a.delete_all("/fourlw").unwrap();
        a.close();
        b.close();
    }
    let (real, sim) = (&answers[0], &answers[1]);
    for ((word, r), (_, m)) in real.iter().zip(sim) {
        let only_real: Vec<&str> = r.lines().filter(|l| !m.lines().any(|x| x == *l)).collect();
        let only_model: Vec<&str> = m.lines().filter(|l| !r.lines().any(|x| x == *l)).collect();
        assert_eq!(
            r, m,
            "`{word}` differs; only real: {only_real:?}; only model: {only_model:?}\n\
             --- real:\n{r}\n--- model:\n{m}"
        );
    }
}

/// An ensemble's members answer the words whose format depends on the role alike: the
/// leader and a follower, on a real 3-server ensemble and on the model's, with the same
/// masking as a standalone server's (`mntr`'s role keys, `conf`'s `server.N` lines and
/// `srvr`'s mode). `mntr`'s keys are compared as a set: their order is the real server's
/// metric table's, which the model keeps for a standalone server only.
#[test]
fn an_ensembles_four_letter_words_answer_alike_by_role() {
    let pair = ensemble_pair().lock().unwrap_or_else(|e| e.into_inner());
    let ask = |addr, cmd: &str| {
        zk_harness::four_letter(addr, cmd, Duration::from_secs(5)).expect("an answer")
    };
    let words = ["srvr", "stat", "conf", "mntr", "envi", "wchs", "dirs"];
    let mut sides = Vec::new();
    for addrs in [&pair.real, &pair.sim] {
        let role = |want: zk_harness::Mode| {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let found = addrs
                    .iter()
                    .find(|a| zk_harness::Mode::parse(&ask(**a, "srvr")) == want);
                match found {
                    Some(a) => return *a,
                    None if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    None => panic!("no {want:?} among {addrs:?}"),
                }
            }
        };
        let leader = role(zk_harness::Mode::Leader);
        settle(leader, &ask);
        let mut side = Vec::new();
        for (name, addr) in [
            ("leader", leader),
            ("follower", role(zk_harness::Mode::Follower)),
        ] {
            for w in words {
                side.push((format!("{name} {w}"), shape(w, &ask(addr, w))));
            }
        }
        sides.push(side);
    }
    let mut differences = Vec::new();
    for ((what, r), (_, m)) in sides[0].iter().zip(&sides[1]) {
        // The order of `mntr`'s lines is the real server's metric table's; the model keeps
        // it for a standalone server, and for an ensemble keeps the keys.
        let (r, m) = match what.ends_with("mntr") {
            true => (sorted(r), sorted(m)),
            false => (r.clone(), m.clone()),
        };
        if r != m {
            let only_real: Vec<&str> = r.lines().filter(|l| !m.lines().any(|x| x == *l)).collect();
            let only_model: Vec<&str> = m.lines().filter(|l| !r.lines().any(|x| x == *l)).collect();
            differences.push(format!(
                "the {what} differs; only real: {only_real:?}; only model: {only_model:?}\n\
                 --- real:\n{r}\n--- model:\n{m}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Waits (at most 30 s) until the leader at `addr` has sent each synced follower a packet
/// through its queue. A real leader lists a follower's queue time in `mntr` only from the
/// first such packet (a ping comes every half tick), so right after an election it may
/// list it for some followers only; the model's leader is in that steady state at once.
fn settle(addr: std::net::SocketAddr, ask: &dyn Fn(std::net::SocketAddr, &str) -> String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mntr = ask(addr, "mntr");
        let value = |key: &str| {
            mntr.lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<usize>().ok())
        };
        let timed = mntr
            .lines()
            .filter(|l| l.starts_with("zk_cnt_") && l.contains("_learner_handler_qp_time_ms"))
            .count();
        let synced = value("zk_synced_followers");
        if synced.is_some_and(|n| n > 0 && n == timed) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the leader at {addr} did not settle: {synced:?} synced followers, {timed} with a queue time"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `text`'s lines, sorted.
fn sorted(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    lines.join("\n")
}

/// A four-letter word's answer with what legitimately differs between two servers
/// masked: numbers, addresses, dates, versions, operation names, the values of `envi`,
/// `conf` and `mntr` (their keys stay), and the order of unordered listings.
fn shape(word: &str, text: &str) -> String {
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| {
            let line = if line.starts_with("Zookeeper version: ") {
                "Zookeeper version: V".to_owned()
            } else if matches!(word, "envi" | "conf") {
                match line.split_once('=') {
                    Some((k, _)) => format!("{k}="),
                    None => line.to_owned(),
                }
            } else if word == "mntr" {
                line.split('\t').next().unwrap_or(line).to_owned()
            } else if let Some((head, _)) = line.split_once(" expire at ") {
                format!("{head} expire at DATE:")
            } else {
                line.to_owned()
            };
            mask_numbers(&mask_op(&line))
        })
        .collect();
    if matches!(word, "stat" | "cons" | "wchc" | "wchp" | "dump") {
        lines.sort();
    }
    if word == "dump" {
        // How many expiry buckets sessions and connections fall in is timing (when each
        // was last touched): each bucket line is kept once.
        lines.dedup();
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// `lop=GETD` and the like read `lop=OP`: which operation came last is timing.
fn mask_op(line: &str) -> String {
    match line.find("lop=") {
        Some(i) => {
            let rest = &line[i + 4..];
            let end = rest.find(',').unwrap_or(rest.len());
            format!("{}lop=OP{}", &line[..i], &rest[end..])
        }
        None => line.to_owned(),
    }
}

/// Every run of digits reads `N`, and every `0x` number `0xN`.
fn mask_numbers(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '0' && chars.peek() == Some(&'x') {
            chars.next();
            out.push_str("0xN");
            while chars.peek().is_some_and(char::is_ascii_hexdigit) {
                chars.next();
            }
        } else if c.is_ascii_digit() {
            out.push('N');
            while chars
                .peek()
                .is_some_and(|c| c.is_ascii_digit() || *c == '.')
            {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn create(path: &str, mode: CreateMode) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Bytes::new(),
        acl: Acl::open_unsafe(),
        flags: mode.as_i32(),
    })
}

/// Mismatches the random scripts found, kept as the scripts that showed them.
#[test]
fn regressions() {
    let root = "/regress";
    let at = |rel: &str| format!("{root}{rel}");
    let cases: Vec<(&str, Vec<Step>)> = vec![
        (
            "a passing check outside a multi gets no reply at all",
            vec![
                Step::Open(0, 30_000),
                Step::Op(0, create(root, CreateMode::Persistent)),
                Step::Op(
                    0,
                    Request::Check(CheckVersionRequest {
                        path: root.into(),
                        version: 0,
                    }),
                ),
                Step::Op(0, create(&at("/after"), CreateMode::Persistent)),
            ],
        ),
        (
            "a multi's create takes its opcode from its flags: a container, answered as create2",
            vec![
                Step::Open(0, 30_000),
                Step::Op(0, create(root, CreateMode::Persistent)),
                Step::Op(
                    0,
                    Request::Multi(MultiRequest {
                        ops: vec![MultiOp::Create(CreateRequest {
                            path: at("/c"),
                            data: Bytes::from_static(b"d1"),
                            acl: Acl::read_unsafe(),
                            flags: CreateMode::Container.as_i32(),
                        })],
                    }),
                ),
            ],
        ),
        (
            "no notification for a node the connection may not read",
            vec![
                Step::Open(0, 30_000),
                Step::Op(0, create(root, CreateMode::Persistent)),
                Step::Op(
                    0,
                    Request::Create(CreateRequest {
                        path: at("/b"),
                        data: Bytes::new(),
                        acl: vec![zk_proto::digest::digest_acl(31, "u1", "p1")],
                        flags: 0,
                    }),
                ),
                Step::SetWatches(
                    0,
                    SetWatches2 {
                        relative_zxid: 0,
                        data_watches: vec![],
                        exist_watches: vec![],
                        child_watches: vec![],
                        persistent_watches: vec![],
                        persistent_recursive_watches: vec![at("/b")],
                    },
                ),
                Step::Op(
                    0,
                    Request::Delete(DeleteRequest {
                        path: at("/b"),
                        version: -1,
                    }),
                ),
            ],
        ),
    ];
    for (what, steps) in &cases {
        if let Some(report) = compare(pair(), steps, root) {
            panic!("regression '{what}' disagrees:\n{}", report.report);
        }
    }
}

/// On an ensemble, checkWatches sees the watches of its own server's connections only.
#[test]
fn ensemble_regressions() {
    let root = "/regress";
    let steps = vec![
        Step::Open(0, 30_000),
        Step::Op(0, create(root, CreateMode::Persistent)),
        Step::Open(1, 30_000),
        Step::Op(
            1,
            Request::GetData(GetDataRequest {
                path: root.into(),
                watch: true,
            }),
        ),
        Step::Op(
            0,
            Request::CheckWatches(CheckWatchesRequest {
                path: root.into(),
                kind: 2,
            }),
        ),
    ];
    if let Some(report) = compare(ensemble_pair(), &steps, root) {
        panic!("checkWatches across servers disagrees:\n{}", report.report);
    }
}
