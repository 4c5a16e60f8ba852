//! Four-letter-word answers as ZooKeeper 3.8 really prints them, odd values included.
//!
//! Each sample follows the server's printing code (`ServerStats.toString`,
//! `ServerCnxn.dumpConnectionInfo`, `MonitorCommand`, `WatchManager.toString`,
//! `QuorumZooKeeperServer.dumpConf`, `EnvCommand`): signed counters that read below zero,
//! IPv6 addresses in brackets (Java 14 and later), `null` where Java prints a null, doubles in
//! Java's notation, and lines a leader or a later server adds.

use zk_proto::admin::{
    AdminError, Command, Conf, Cons, Envi, Isro, MetricValue, Mntr, Mode, Ruok, Srvr, Stat, Wchs,
};

const VERSION: &str = "Zookeeper version: 3.8.0-5a02a05eddb59aee6ac762f7ea82e92a68eb9c0f, built on 2022-02-25 08:49 UTC";

#[test]
fn srvr_with_an_outstanding_gauge_below_zero_is_read() {
    // The failure seen on a healthy server: requestsInProcess read -1 for a moment.
    let answer = format!(
        "{VERSION}\nLatency min/avg/max: 0/0.6173/26\nReceived: 5208\nSent: 5207\n\
         Connections: 3\nOutstanding: -1\nZxid: 0x1b4\nMode: standalone\nNode count: 1032\n"
    );
    let s = Srvr::parse(&answer).unwrap();
    assert_eq!(s.outstanding, -1);
    assert_eq!((s.received, s.sent, s.connections), (5208, 5207, 3));
    assert_eq!(
        (s.latency_min_ms, s.latency_avg_ms, s.latency_max_ms),
        (0, 0.6173, 26)
    );
    assert_eq!(
        (s.zxid, s.mode, s.node_count),
        (0x1b4, Mode::Standalone, 1032)
    );
    assert!(s.version.starts_with("3.8.0-"));
    assert!(s.other.is_empty(), "{:?}", s.other);
}

#[test]
fn srvr_keeps_every_counter_the_server_can_print() {
    // Every counter at the edge of Java's long or int, a zxid of -1 (printed as 16 hex
    // digits), an average in scientific notation, and a fresh server's zeros.
    let answer = format!(
        "{VERSION}\nLatency min/avg/max: -3/1.0E-4/9223372036854775807\n\
         Received: 9223372036854775807\nSent: -9223372036854775808\nConnections: -2147483648\n\
         Outstanding: 2147483647\nZxid: 0xffffffffffffffff\nMode: follower\nNode count: -1\n"
    );
    let s = Srvr::parse(&answer).unwrap();
    assert_eq!((s.latency_min_ms, s.latency_max_ms), (-3, i64::MAX));
    assert_eq!(s.latency_avg_ms, 1.0e-4);
    assert_eq!((s.received, s.sent), (i64::MAX, i64::MIN));
    assert_eq!(
        (s.connections, s.outstanding),
        (i32::MIN as i64, i32::MAX as i64)
    );
    assert_eq!((s.zxid, s.mode, s.node_count), (-1, Mode::Follower, -1));

    let fresh = format!(
        "{VERSION}\nLatency min/avg/max: 0/0.0/0\nReceived: 0\nSent: 0\nConnections: 0\n\
         Outstanding: 0\nZxid: 0x0\nMode: observer\nNode count: 5\n"
    );
    let s = Srvr::parse(&fresh).unwrap();
    assert_eq!((s.latency_avg_ms, s.zxid, s.mode), (0.0, 0, Mode::Observer));
}

#[test]
fn a_leader_read_only_or_unknown_mode_answer_is_kept_whole() {
    // A leader adds its proposal sizes (-1 before any proposal); a read-only server says
    // so before the statistics; a server without a provider leaves out Outstanding and Zxid.
    let leader = format!(
        "{VERSION}\nLatency min/avg/max: 0/0.0/0\nReceived: 1\nSent: 1\nConnections: 1\n\
         Outstanding: 0\nZxid: 0x100000002\nMode: leader\nNode count: 5\n\
         Proposal sizes last/min/max: -1/-1/-1\n"
    );
    let s = Srvr::parse(&leader).unwrap();
    assert_eq!(s.mode, Mode::Leader);
    assert_eq!(
        s.other,
        vec![("Proposal sizes last/min/max".into(), "-1/-1/-1".into())]
    );

    let read_only = format!(
        "{VERSION}\nREAD-ONLY mode; serving only read-only clients\n\
         Latency min/avg/max: 0/0.0/0\nReceived: 1\nSent: 1\nConnections: 1\n\
         Mode: read-only\nNode count: 5\n"
    );
    let s = Srvr::parse(&read_only).unwrap();
    assert_eq!(
        (s.mode, s.read_only, s.outstanding),
        (Mode::ReadOnly, true, 0)
    );

    let later = format!(
        "{VERSION}\nLatency min/avg/max: 0/0.0/0\nReceived: 1\nSent: 1\nConnections: 1\n\
         Outstanding: 0\nZxid: 0x2\nMode: participant-in-waiting\nNode count: 5\nFrobs: 3\n"
    );
    let s = Srvr::parse(&later).unwrap();
    assert_eq!(s.mode, Mode::Unknown);
    assert_eq!(
        s.other,
        vec![
            ("Mode".into(), "participant-in-waiting".into()),
            ("Frobs".into(), "3".into())
        ]
    );
}

#[test]
fn stat_lists_ipv4_ipv6_and_closing_connections() {
    // `stat` prints brief connection lines, one a line, then a blank line.
    let answer = format!(
        "{VERSION}\nClients:\n /127.0.0.1:52116[1](queued=0,recved=6,sent=6)\n\
         /[0:0:0:0:0:0:0:1]:40312[0](queued=-1,recved=2,sent=1)\n\
         localhost/127.0.0.1:40313[1](queued=1,recved=1,sent=0)\n null[0](queued=0,recved=0,sent=0)\n\
         \nLatency min/avg/max: 0/0.0/0\nReceived: 9\nSent: 7\nConnections: 4\n\
         Outstanding: -1\nZxid: 0x2\nMode: standalone\nNode count: 5\n"
    );
    let s = Stat::parse(&answer).unwrap();
    let addresses: Vec<&str> = s.clients.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(
        addresses,
        [
            "127.0.0.1:52116",
            "[0:0:0:0:0:0:0:1]:40312",
            "127.0.0.1:40313",
            "null"
        ]
    );
    assert_eq!(s.clients[1].queued, -1);
    assert_eq!((s.connections, s.outstanding), (4, -1));
}

#[test]
fn cons_reads_full_lines_with_the_optional_and_signed_fields() {
    // A session with no request yet (lop=NA, no lcxid, lzxid 0xffffffffffffffff), a busy
    // IPv6 session with a negative queue, and a connection with no session yet.
    let answer = " /127.0.0.1:52116[1](queued=0,recved=1,sent=1,sid=0x1000097d3910000,lop=NA,\
                  est=1795624349461,to=4000,lzxid=0xffffffffffffffff,lresp=9954118,llat=0,\
                  minlat=0,avglat=0,maxlat=0)\n\
                  /[0:0:0:0:0:0:0:1]:40312[1](queued=-1,recved=60,sent=60,sid=0x1000097d3910001,\
                  lop=GETD,est=1795624349462,to=30000,lcxid=0x3a,lzxid=0x1b4,lresp=9954120,\
                  llat=1,minlat=0,avglat=0,maxlat=12)\n\
                  /127.0.0.1:52117[0](queued=0,recved=1,sent=0)\n\n";
    let c = Cons::parse(answer).unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].session_id, Some(0x1000097d3910000));
    assert_eq!(c[0].last_operation.as_deref(), Some("NA"));
    assert!(!c[0].fields.iter().any(|(k, _)| k == "lcxid"));
    assert_eq!(c[1].address, "[0:0:0:0:0:0:0:1]:40312");
    assert_eq!((c[1].queued, c[1].timeout_ms), (-1, Some(30000)));
    assert_eq!((c[2].session_id, c[2].timeout_ms), (None, None));
    // A server with no connection but ours answers with blank lines only.
    assert!(Cons::parse("\n").unwrap().is_empty());
}

#[test]
fn mntr_takes_nulls_java_doubles_and_stray_lines() {
    let answer = "zk_version\t3.8.0-5a02a05e, built on 2022-02-25 08:49 UTC\n\
                  zk_server_state\tleader\nzk_znode_count\t5\nzk_avg_latency\t0.6173\n\
                  zk_max_file_descriptor_count\t-1\nzk_auth_failed_count\t0\n\
                  zk_fsync_threshold_exceed_count\t0\nzk_last_proposal_size\t-1\n\
                  zk_avg_commit_propagation_latency\tNaN\nzk_quorum_size\tnull\n\
                  zk_p99_read_latency\t1.0E-4\nzk_max_inf\tInfinity\nzk_min_inf\t-Infinity\n\
                  zk_text\tinf\nsomething without a tab\n";
    let m = Mntr::parse(answer).unwrap();
    assert_eq!(m.mode(), Some(Mode::Leader));
    assert_eq!(m.int("znode_count"), Some(5));
    assert_eq!(m.int("max_file_descriptor_count"), Some(-1));
    assert_eq!(m.get("quorum_size"), Some(&MetricValue::Null));
    assert_eq!(m.get("p99_read_latency"), Some(&MetricValue::Float(1.0e-4)));
    assert!(
        m.get("avg_commit_propagation_latency")
            .unwrap()
            .as_f64()
            .unwrap()
            .is_nan()
    );
    assert_eq!(m.get("max_inf").unwrap().as_f64(), Some(f64::INFINITY));
    assert_eq!(m.get("min_inf").unwrap().as_f64(), Some(f64::NEG_INFINITY));
    assert_eq!(m.get("text"), Some(&MetricValue::Text("inf".into())));
    assert_eq!(m.other, vec!["something without a tab".to_owned()]);
}

#[test]
fn conf_of_an_ensemble_member_keeps_its_membership() {
    let answer = "clientPort=2181\nsecureClientPort=-1\ndataDir=/tmp/zk/version-2\n\
                  dataDirSize=67108880\ndataLogDir=/tmp/zk/version-2\ndataLogSize=0\n\
                  tickTime=200\nmaxClientCnxns=60\nminSessionTimeout=400\n\
                  maxSessionTimeout=4000\nclientPortListenBacklog=-1\nserverId=1\n\
                  initLimit=10\nsyncLimit=5\nelectionAlg=3\nelectionPort=3888\n\
                  quorumPort=2888|2889\npeerType=0\nmembership: \n\
                  server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                  server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\nversion=100000000";
    let c = Conf::parse(answer).unwrap();
    let get = |k: &str| c.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(get("secureClientPort"), Some("-1"));
    assert_eq!(get("quorumPort"), Some("2888|2889"));
    assert_eq!(
        get("server.1"),
        Some("127.0.0.1:2888:3888:participant;0.0.0.0:2181")
    );
    assert_eq!(get("version"), Some("100000000"));
}

#[test]
fn envi_keeps_values_with_equals_signs() {
    let answer = "Environment:\nzookeeper.version=3.8.0-5a02a05e, built on 2022-02-25 08:49 UTC\n\
                  host.name=localhost\njava.version=17.0.13\n\
                  java.class.path=/usr/share/java/zookeeper.jar:/a=b.jar\n\
                  os.memory.free=112MB\n";
    let e = Envi::parse(answer).unwrap();
    assert_eq!(e.len(), 5);
    assert_eq!(
        e[3],
        (
            "java.class.path".into(),
            "/usr/share/java/zookeeper.jar:/a=b.jar".into()
        )
    );
}

#[test]
fn wchs_ruok_and_isro_read_every_answer_the_server_gives() {
    let w = Wchs::parse("0 connections watching 0 paths\nTotal watches:0\n").unwrap();
    assert_eq!((w.connections, w.paths, w.watches), (0, 0, 0));
    let w = Wchs::parse("3 connections watching 1024 paths\nTotal watches:2000\n").unwrap();
    assert_eq!((w.connections, w.paths, w.watches), (3, 1024, 2000));
    Ruok::parse("imok").unwrap();
    assert!(Isro::parse("ro").unwrap());
    assert!(!Isro::parse("rw").unwrap());
    assert!(matches!(Isro::parse("null"), Err(AdminError::NotServing)));
}

#[test]
fn refusals_and_unusable_answers_are_typed_errors() {
    for word_answer in [
        Srvr::parse("srvr is not executed because it is not in the whitelist.\n"),
        Stat::parse("stat is not executed because it is not in the whitelist.\n"),
    ] {
        assert!(matches!(word_answer, Err(AdminError::NotAllowed(_))));
    }
    let down = "This ZooKeeper instance is not currently serving requests\n";
    assert!(matches!(Srvr::parse(down), Err(AdminError::NotServing)));
    assert!(matches!(Cons::parse(down), Err(AdminError::NotServing)));
    assert!(matches!(Wchs::parse(down), Err(AdminError::NotServing)));
    // What makes an answer unusable still fails, and says what.
    let no_mode = format!("{VERSION}\nLatency min/avg/max: 0/0.0/0\n");
    let e = Srvr::parse(&no_mode).unwrap_err().to_string();
    assert!(e.contains("no mode line"), "{e}");
    let garbled =
        format!("{VERSION}\nLatency min/avg/max: 0/0.0/0\nReceived: many\nMode: leader\n");
    let e = Srvr::parse(&garbled).unwrap_err().to_string();
    assert!(e.contains("Received is not a number: \"many\""), "{e}");
}
