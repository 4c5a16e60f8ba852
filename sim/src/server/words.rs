//! Four-letter words (`FourLetterCommands` of 3.8.0): every word the server knows, answered
//! in the real server's format, and refused as the real one refuses a word its
//! `4lw.commands.whitelist` leaves out.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::{ConnId, Ensemble};

/// The words the server knows (`FourLetterCommands`).
const KNOWN: [&str; 18] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srvr", "srst", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

/// The server's version as the model gives it (`Version.getFullVersion()`).
pub(crate) const VERSION: &str = "3.8.0-zk-sim, built on a model";

/// What a server answers when it does not serve clients.
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// The trace mask a server starts with (`ZooTrace`'s default), which `gtmk` reads.
const TRACE_MASK: i64 = 306;

/// The keys `mntr` gives on a standalone server, in the order ZooKeeper 3.8.0 gives them.
const MNTR_KEYS: &str = include_str!("mntr_keys.txt");

/// The keys a leader's `mntr` adds (`Leader`'s own metrics).
const LEADER_KEYS: [&str; 8] = [
    "zk_learners",
    "zk_synced_followers",
    "zk_synced_non_voting_followers",
    "zk_synced_observers",
    "zk_pending_syncs",
    "zk_last_proposal_size",
    "zk_max_proposal_size",
    "zk_min_proposal_size",
];

/// Which four-letter words a server answers (`4lw.commands.whitelist`); a word left out is
/// answered "`<word>` is not executed because it is not in the whitelist.".
///
/// ```
/// use zk_sim::Whitelist;
/// let list = Whitelist::parse("stat, ruok, conf, isro");
/// assert!(list.allows("ruok") && !list.allows("mntr"));
/// assert!(Whitelist::parse("*").allows("mntr"));
/// // The real server's default: `srvr` only.
/// assert!(Whitelist::default_server().allows("srvr"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whitelist {
    /// Every word (`*`).
    All,
    /// Only these words.
    Only(BTreeSet<String>),
}

impl Whitelist {
    /// Reads a whitelist as the server does: `*`, or words separated by commas, spaces
    /// around them ignored; a word the server does not know is left out.
    pub fn parse(list: &str) -> Whitelist {
        let words: BTreeSet<String> = list.split(',').map(|w| w.trim().to_owned()).collect();
        if words.contains("*") {
            return Whitelist::All;
        }
        Whitelist::Only(
            words
                .into_iter()
                .filter(|w| KNOWN.contains(&w.as_str()))
                .collect(),
        )
    }

    /// The list a real server has when its configuration names none: `srvr` only.
    pub fn default_server() -> Whitelist {
        Whitelist::parse("srvr")
    }

    /// Whether `word` is answered.
    pub fn allows(&self, word: &str) -> bool {
        match self {
            Whitelist::All => true,
            Whitelist::Only(words) => words.contains(word),
        }
    }
}

/// What a connection did, as `cons` and `stat` report it (`ServerCnxn`'s statistics).
#[derive(Debug, Clone)]
pub(crate) struct ConnStats {
    /// `/ip:port` of the client.
    pub(crate) remote: String,
    pub(crate) received: u64,
    pub(crate) sent: u64,
    /// The last operation answered, as `FinalRequestProcessor` names it (`NA` before any).
    pub(crate) last_op: &'static str,
    pub(crate) last_cxid: i64,
    pub(crate) last_zxid: i64,
    /// Elapsed ms of the last response.
    pub(crate) last_response: u64,
    /// Wall-clock ms when the session was established on the connection.
    pub(crate) established: i64,
}

impl ConnStats {
    pub(crate) fn new(remote: String) -> ConnStats {
        ConnStats {
            remote,
            received: 0,
            sent: 0,
            last_op: "NA",
            last_cxid: -1,
            last_zxid: -1,
            last_response: 0,
            established: 0,
        }
    }

    fn reset(&mut self) {
        self.received = 0;
        self.sent = 0;
        self.last_op = "NA";
        self.last_cxid = -1;
        self.last_zxid = -1;
        self.last_response = 0;
    }
}

/// The name `cons` gives the last operation of type `op` (`FinalRequestProcessor`).
pub(crate) fn op_name(op: i32) -> Option<&'static str> {
    Some(match op {
        -11 => "CLOS",
        -10 => "SESS",
        1 | 15 | 19 | 21 => "CREA",
        2 | 20 => "DELE",
        3 => "EXIS",
        4 => "GETD",
        5 => "SETD",
        6 => "GETA",
        7 => "SETA",
        8 | 12 => "GETC",
        9 => "SYNC",
        11 => "PING",
        13 => "CHEC",
        14 => "MULT",
        16 => "RECO",
        17 => "CHKW",
        18 => "REMW",
        22 => "MLTR",
        101 => "SETW",
        103 => "GETE",
        104 => "GETACN",
        105 => "STW2",
        106 => "ADDW",
        107 => "HOMI",
        _ => return None,
    })
}

/// `ms` since the Unix epoch as Java's `Date.toString()` writes it in UTC
/// (`Mon Dec 07 03:08:37 UTC 2026`).
fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {day:02} {h:02}:{m:02}:{s:02} UTC {year}",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
    )
}

impl Ensemble {
    /// Answers a four-letter word and closes; false if the first bytes are a length.
    pub(crate) fn four_letter_word(&mut self, now: Instant, conn: ConnId, word: [u8; 4]) -> bool {
        let Ok(word) = std::str::from_utf8(&word) else {
            return false;
        };
        if !KNOWN.contains(&word) {
            return false;
        }
        let word = word.to_owned();
        let server = self.conns[&conn].server;
        if let Some(c) = self.conns.get_mut(&conn) {
            // The word is a packet received, as `cons` shows for the asking connection.
            c.stats.received += 1;
        }
        self.servers[server].received += 1;
        let text = if !self.config.four_letter_words.allows(&word) {
            format!("{word} is not executed because it is not in the whitelist.\n")
        } else {
            self.answer(now, conn, server, &word)
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.out.extend_from_slice(text.as_bytes());
            if !c.dirty {
                c.dirty = true;
                self.dirty.push_back(conn);
            }
        }
        self.close(conn);
        true
    }

    fn answer(&mut self, now: Instant, conn: ConnId, server: usize, word: &str) -> String {
        let up = self.serving(server) || self.read_only(server);
        match word {
            "ruok" => "imok".to_owned(),
            "isro" => if self.read_only(server) { "ro" } else { "rw" }.to_owned(),
            "envi" => self.envi(),
            "conf" => self.conf(server),
            "gtmk" => TRACE_MASK.to_string(),
            "stmk" => self.set_trace_mask(conn),
            "hash" => String::new(),
            _ if !up => NOT_SERVING.to_owned(),
            "srvr" => format!(
                "Zookeeper version: {VERSION}\n{}",
                self.server_stats(server)
            ),
            "stat" => format!(
                "Zookeeper version: {VERSION}\nClients:\n{}\n{}",
                self.connection_lines(server, false),
                self.server_stats(server)
            ),
            "cons" => format!("{}\n", self.connection_lines(server, true)),
            "crst" => {
                for c in self.conns.values_mut().filter(|c| c.server == server) {
                    c.stats.reset();
                }
                "Connection stats reset.\n".to_owned()
            }
            "srst" => {
                let s = &mut self.servers[server];
                (s.received, s.sent) = (0, 0);
                "Server stats reset.\n".to_owned()
            }
            "dirs" => "datadir_size: 0\nlogdir_size: 0\n".to_owned(),
            "wchs" => self.wchs(server),
            "wchc" => self.wchc(server),
            "wchp" => self.wchp(server),
            "dump" => self.dump(now, server),
            "mntr" => self.mntr(server),
            _ => String::new(),
        }
    }

    /// `stmk` reads a trace mask of 8 bytes after the word and answers it back; without
    /// them the server answers nothing.
    fn set_trace_mask(&mut self, conn: ConnId) -> String {
        let Some(c) = self.conns.get_mut(&conn) else {
            return String::new();
        };
        let buf = c.frames.buffer_mut();
        if buf.len() < 12 {
            return String::new();
        }
        let mut mask = [0u8; 8];
        mask.copy_from_slice(&buf[4..12]);
        i64::from_be_bytes(mask).to_string()
    }

    pub(crate) fn mode_name(&self, server: usize) -> &'static str {
        if self.config.standalone {
            "standalone"
        } else if self.read_only(server) {
            "read-only"
        } else if !self.serving(server) {
            "looking"
        } else if self.leader == Some(server) {
            "leader"
        } else {
            "follower"
        }
    }

    /// `srvr` after its version line (also the end of `stat`).
    fn server_stats(&self, server: usize) -> String {
        let s = &self.servers[server];
        let mut out = String::new();
        if self.read_only(server) {
            out.push_str("READ-ONLY mode; serving only read-only clients\n");
        }
        out.push_str(&format!(
            "Latency min/avg/max: 0/0.0/0\nReceived: {}\nSent: {}\nConnections: {}\n\
             Outstanding: 0\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
            s.received,
            s.sent,
            self.connections(server).len(),
            self.applied(server),
            self.mode_name(server),
            self.served(server).node_count() + 1,
        ));
        if self.leader == Some(server) && !self.config.standalone {
            out.push_str("Proposal sizes last/min/max: -1/-1/-1\n");
        }
        out
    }

    /// Each connection of `server` on a line (`ServerCnxn.dumpConnectionInfo`): briefly
    /// for `stat`, with its session's details for `cons`.
    fn connection_lines(&self, server: usize, full: bool) -> String {
        let mut out = String::new();
        for c in self
            .conns
            .values()
            .filter(|c| c.server == server && !c.closed)
        {
            let st = &c.stats;
            let interest = u8::from(c.initialized);
            out.push_str(&format!(
                " {}[{interest}](queued=0,recved={},sent={}",
                st.remote, st.received, st.sent
            ));
            if full && c.session != 0 {
                out.push_str(&format!(
                    ",sid=0x{:x},lop={},est={},to={},lcxid=0x{:x},lzxid=0x{:x},lresp={},\
                     llat=0,minlat=0,avglat=0,maxlat=0",
                    c.session,
                    st.last_op,
                    st.established,
                    c.timeout_ms,
                    st.last_cxid,
                    st.last_zxid,
                    st.last_response,
                ));
            }
            out.push_str(")\n");
        }
        out
    }

    /// Data watches of `server`'s connections: session to paths.
    fn watches_by_session(&self, server: usize) -> BTreeMap<i64, BTreeSet<String>> {
        let mut out: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        for (conn, paths) in self.served(server).data_watches.by_conn() {
            let Some(c) = self.conns.get(conn) else {
                continue;
            };
            if c.server == server && !paths.is_empty() {
                out.entry(c.session)
                    .or_default()
                    .extend(paths.iter().cloned());
            }
        }
        out
    }

    fn wchs(&self, server: usize) -> String {
        let by_session = self.watches_by_session(server);
        let paths: BTreeSet<&String> = by_session.values().flatten().collect();
        let total: usize = by_session.values().map(BTreeSet::len).sum();
        format!(
            "{} connections watching {} paths\nTotal watches:{total}\n",
            by_session.len(),
            paths.len()
        )
    }

    fn wchc(&self, server: usize) -> String {
        let mut out = String::new();
        for (session, paths) in self.watches_by_session(server) {
            out.push_str(&format!("0x{session:x}\n"));
            for p in paths {
                out.push_str(&format!("\t{p}\n"));
            }
        }
        out.push('\n');
        out
    }

    fn wchp(&self, server: usize) -> String {
        let mut by_path: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        for (session, paths) in self.watches_by_session(server) {
            for p in paths {
                by_path.entry(p).or_default().insert(session);
            }
        }
        let mut out = String::new();
        for (path, sessions) in by_path {
            out.push_str(&format!("{path}\n"));
            for s in sessions {
                out.push_str(&format!("\t0x{s:x}\n"));
            }
        }
        out.push('\n');
        out
    }

    /// `dump`: sessions by expiry bucket, ephemeral nodes by session, connections.
    fn dump(&self, now: Instant, server: usize) -> String {
        let mut buckets: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
        for (id, s) in &self.sessions.sessions {
            buckets.entry(s.expires_at).or_default().push(*id);
        }
        let mut out = format!(
            "SessionTracker dump:\nSession Sets ({})/({}):\n",
            buckets.len(),
            self.sessions.sessions.len()
        );
        for (at, ids) in &buckets {
            let wall = self.wall(self.instant(*at));
            out.push_str(&format!("{} expire at {}:\n", ids.len(), java_date(wall)));
            for id in ids {
                out.push_str(&format!("\t0x{id:x}\n"));
            }
        }
        let tree = self.served(server);
        let with_ephemerals: Vec<(i64, Vec<String>)> = self
            .sessions
            .sessions
            .keys()
            .map(|id| (*id, tree.ephemerals(*id)))
            .filter(|(_, e)| !e.is_empty())
            .collect();
        out.push_str(&format!(
            "ephemeral nodes dump:\nSessions with Ephemerals ({}):\n",
            with_ephemerals.len()
        ));
        for (id, paths) in with_ephemerals {
            out.push_str(&format!("0x{id:x}:\n"));
            for p in paths {
                out.push_str(&format!("\t{p}\n"));
            }
        }
        let conns: Vec<_> = self
            .conns
            .values()
            .filter(|c| c.server == server && !c.closed)
            .collect();
        out.push_str(&format!(
            "Connections dump:\nConnections Sets ({})/({}):\n",
            u8::from(!conns.is_empty()),
            conns.len()
        ));
        if !conns.is_empty() {
            // The server's idle-connection check runs every session tick.
            let at = self.wall(now) + self.config.tick_ms as i64;
            out.push_str(&format!("{} expire at {}:\n", conns.len(), java_date(at)));
            for c in conns {
                out.push_str(&format!(
                    "\tip: {} sessionId: 0x{:x}\n",
                    c.stats.remote, c.session
                ));
            }
        }
        out
    }

    fn envi(&self) -> String {
        let os = match std::env::consts::OS {
            "linux" => "Linux",
            "macos" => "Mac OS X",
            "windows" => "Windows",
            other => other,
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            other => other,
        };
        let mut lines: Vec<(String, String)> = [
            ("zookeeper.version", VERSION),
            ("host.name", "localhost"),
            ("java.version", "17"),
            ("java.vendor", "zk-sim"),
            ("java.home", "<NA>"),
            ("java.class.path", "<NA>"),
            ("java.library.path", "<NA>"),
            ("java.io.tmpdir", "/tmp"),
            ("java.compiler", "<NA>"),
            ("os.name", os),
            ("os.arch", arch),
            ("os.version", "<NA>"),
            ("user.name", "<NA>"),
            ("user.home", "<NA>"),
            ("user.dir", "<NA>"),
            ("os.memory.free", "0MB"),
            ("os.memory.max", "0MB"),
            ("os.memory.total", "0MB"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in &self.config.environment {
            match lines.iter_mut().find(|(key, _)| key == k) {
                Some(line) => line.1 = v.clone(),
                None => lines.push((k.clone(), v.clone())),
            }
        }
        let mut out = String::from("Environment:\n");
        for (k, v) in lines {
            out.push_str(&format!("{k}={v}\n"));
        }
        out
    }

    fn conf(&self, server: usize) -> String {
        let c = &self.config;
        let data = match &c.data_dir {
            Some(dir) => format!("{dir}/version-2"),
            None => "/zk-sim/memory/version-2".to_owned(),
        };
        let mut out = format!(
            "clientPort={}\nsecureClientPort={}\ndataDir={data}\ndataDirSize=0\n\
             dataLogDir={data}\ndataLogSize=0\ntickTime={}\nmaxClientCnxns={}\n\
             minSessionTimeout={}\nmaxSessionTimeout={}\nclientPortListenBacklog=-1\n\
             serverId={}\n",
            c.client_ports.get(server).map_or(-1, |p| i32::from(*p)),
            c.secure_client_ports
                .get(server)
                .map_or(-1, |p| i32::from(*p)),
            c.tick_ms,
            c.max_client_cnxns,
            c.min_session_timeout().as_millis(),
            c.max_session_timeout().as_millis(),
            self.servers[server].myid,
        );
        if !c.standalone {
            out.push_str(&format!(
                "initLimit=10\nsyncLimit={}\nelectionAlg=3\nelectionPort={}\nquorumPort={}\n\
                 peerType=0\nmembership: \n{}",
                c.sync_limit,
                3888 + server + 1,
                2888 + server + 1,
                self.node("/zookeeper/config")
                    .map(|n| String::from_utf8_lossy(&n.data).into_owned())
                    .unwrap_or_default(),
            ));
        }
        out
    }

    fn mntr(&self, server: usize) -> String {
        let s = &self.servers[server];
        let tree = self.served(server);
        let watches = tree.data_watches.count() + tree.child_watches.count();
        let known: BTreeMap<&str, String> = [
            ("zk_version", VERSION.to_owned()),
            ("zk_server_state", self.mode_name(server).to_owned()),
            ("zk_ephemerals_count", tree.ephemeral_count().to_string()),
            (
                "zk_num_alive_connections",
                self.connections(server).len().to_string(),
            ),
            ("zk_znode_count", (tree.node_count() + 1).to_string()),
            (
                "zk_global_sessions",
                self.sessions.sessions.len().to_string(),
            ),
            ("zk_packets_sent", s.sent.to_string()),
            ("zk_packets_received", s.received.to_string()),
            ("zk_watch_count", watches.to_string()),
            ("zk_max_file_descriptor_count", "20000".to_owned()),
            ("zk_last_client_response_size", "-1".to_owned()),
            ("zk_max_client_response_size", "-1".to_owned()),
            ("zk_min_client_response_size", "-1".to_owned()),
            ("zk_last_proposal_size", "-1".to_owned()),
            ("zk_max_proposal_size", "-1".to_owned()),
            ("zk_min_proposal_size", "-1".to_owned()),
            (
                "zk_learners",
                self.servers.len().saturating_sub(1).to_string(),
            ),
            (
                "zk_synced_followers",
                self.servers.len().saturating_sub(1).to_string(),
            ),
            (
                "zk_peer_state",
                match self.leader == Some(server) {
                    true => "leading - broadcast",
                    false => "following - broadcast",
                }
                .to_owned(),
            ),
            ("zk_quorum_size", self.servers.len().to_string()),
        ]
        .into_iter()
        .collect();
        if !self.serving(server) && !self.read_only(server) {
            return NOT_SERVING.to_owned();
        }
        let ensemble = !self.config.standalone;
        let leader = self.leader == Some(server) && ensemble;
        // A quorum member says how it takes part; a leader also how long it has led and,
        // for each learner, the queue of its handler.
        let mut keys: Vec<String> = Vec::new();
        for key in MNTR_KEYS.lines().filter(|k| !k.is_empty()) {
            if key == "zk_uptime" && leader {
                keys.push("zk_leader_uptime".to_owned());
            }
            keys.push(key.to_owned());
            if key == "zk_server_state" && ensemble {
                keys.push("zk_peer_state".to_owned());
            }
            if key == "zk_uptime" && ensemble {
                keys.push("zk_quorum_size".to_owned());
            }
        }
        keys.extend(LEADER_KEYS.iter().filter(|_| leader).map(|k| k.to_string()));
        let learners: Vec<u64> = match leader {
            true => (0..self.servers.len())
                .filter(|&i| i != server)
                .map(|i| self.servers[i].myid)
                .collect(),
            false => Vec::new(),
        };
        let learner_keys = |stats: &'static [&'static str], what: &'static str| {
            learners.iter().flat_map(move |sid| {
                stats
                    .iter()
                    .map(move |s| format!("zk_{s}_{sid}_learner_handler_{what}"))
            })
        };
        keys.extend(learner_keys(
            &["avg", "min", "max", "cnt", "sum"],
            "qp_size",
        ));
        // Per-namespace statistics: every namespace read, then every one written. A
        // quorum member writes `/zookeeper/config` as it joins: `zookeeper` is written.
        let ns = &tree.namespaces;
        let mut written = ns.written.clone();
        if ensemble {
            written.insert("zookeeper".to_owned());
        }
        for (what, set) in [("read", &ns.read), ("write", &written)] {
            for n in set {
                for s in ["avg", "min", "max", "cnt", "sum"] {
                    keys.push(format!("zk_{s}_{n}_{what}_per_namespace"));
                }
            }
        }
        const DETAILED: [&str; 9] = [
            "avg", "min", "max", "cnt", "sum", "p50", "p95", "p99", "p999",
        ];
        keys.extend(learner_keys(&DETAILED, "qp_time_ms"));
        let mut out = String::new();
        for key in &keys {
            let key = key.as_str();
            let value = match known.get(key) {
                Some(v) => v.clone(),
                // Averages read 0.0, the rest 0, as on an idle server.
                None if key.starts_with("zk_avg_") || key == "zk_connection_drop_probability" => {
                    "0.0".to_owned()
                }
                None => "0".to_owned(),
            };
            out.push_str(&format!("{key}\t{value}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_dates_read_as_javas() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_796_612_917_000), "Mon Dec 07 03:08:37 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn whitelists_read_as_the_servers() {
        assert_eq!(Whitelist::parse(" * "), Whitelist::All);
        let l = Whitelist::parse("ruok,  stat ,bogus");
        assert!(l.allows("ruok") && l.allows("stat") && !l.allows("bogus"));
        assert!(!Whitelist::default_server().allows("ruok"));
    }
}
