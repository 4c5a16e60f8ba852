//! ZooKeeper's four-letter words (`ruok`, `srvr`, `mntr`, ...) as typed commands.
//!
//! A four-letter word is sent instead of a session handshake on the client port; the server
//! writes a text answer and closes the connection. This module knows what to send and how to
//! read each answer; the drivers move the bytes (`zk_tokio::admin::ask`,
//! `zk_mio::admin::ask`):
//!
//! ```
//! use zk_proto::admin::{Command, Mode, Srvr};
//!
//! let answer = "Zookeeper version: 3.8.0-1, built on 2024-12-29 17:54 UTC\n\
//!               Latency min/avg/max: 1/5.5/12\nReceived: 9\nSent: 8\nConnections: 2\n\
//!               Outstanding: 0\nZxid: 0x2\nMode: standalone\nNode count: 6\n";
//! let stats = Srvr::parse(answer)?;
//! assert_eq!(stats.mode, Mode::Standalone);
//! assert_eq!((stats.zxid, stats.node_count, stats.latency_avg_ms), (2, 6, 5.5));
//! # Ok::<(), zk_proto::admin::AdminError>(())
//! ```
//!
//! The server answers only the words in its `4lw.commands.whitelist` (by default only
//! `srvr`); any other comes back as [`AdminError::NotAllowed`].

use std::time::Duration;

/// How a server that is up but not serving (no quorum, still loading) answers most words.
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// Why a four-letter word got no typed answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The host could not be reached or the connection failed.
    #[error("cannot ask {host}: {source}; check the address and that the server is up")]
    Io {
        /// The server asked.
        host: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The host is not a `host:port` the client can connect to.
    #[error("bad server address {0:?}: give one host:port")]
    BadHost(String),
    /// The connect string is malformed.
    #[error(transparent)]
    Hosts(#[from] crate::hosts::HostError),
    /// The server did not finish its answer in time.
    #[error("{host} did not answer within {waited:?}")]
    Timeout {
        /// The server asked.
        host: String,
        /// How long the caller waited.
        waited: Duration,
    },
    /// The word is not in the server's `4lw.commands.whitelist`.
    #[error("the server does not allow {0:?}; add it to 4lw.commands.whitelist")]
    NotAllowed(&'static str),
    /// The server is up but does not serve clients now (no quorum, or still starting).
    #[error("the server is not serving requests (no quorum, or still starting)")]
    NotServing,
    /// The answer is not what this word's answer looks like.
    #[error("unexpected answer to {word:?}: {detail}")]
    Unexpected {
        /// The word asked.
        word: &'static str,
        /// What did not fit.
        detail: String,
    },
}

/// Each server's answer, in the connect string's order (`host:port`, answer).
pub type Answers<T> = Vec<(String, Result<T, AdminError>)>;

/// A four-letter word and how its answer reads.
pub trait Command {
    /// The typed answer.
    type Output;
    /// The four bytes sent.
    const WORD: &'static str;
    /// Reads a whole answer.
    fn parse(answer: &str) -> Result<Self::Output, AdminError>;
}

/// What a server does in its ensemble (the `Mode:` of `srvr`, `server_state` of `mntr`).
///
/// ZooKeeper 3.8 prints one of the first five; a state a later server may print is kept as
/// [`Mode::Unknown`] rather than failing the whole answer (its text stays in
/// [`ServerStats::other`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// A server on its own.
    Standalone,
    /// The ensemble's leader.
    Leader,
    /// A follower.
    Follower,
    /// An observer.
    Observer,
    /// Cut off from its quorum, serving read-only clients.
    ReadOnly,
    /// A state this crate does not know.
    Unknown,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "standalone" => Mode::Standalone,
            "leader" => Mode::Leader,
            "follower" => Mode::Follower,
            "observer" => Mode::Observer,
            "read-only" => Mode::ReadOnly,
            _ => return None,
        })
    }
}

/// A server's statistics (`srvr`; `stat` adds its client connections).
///
/// The counters are signed because the server's are (Java `long` and `int`), and it does
/// print negative ones: `Outstanding` is a gauge that reads `-1` for a moment when a request
/// finishes as another is counted in.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServerStats {
    /// The server's version line (`3.8.0-..., built on ...`).
    pub version: String,
    /// Whether the server serves only read-only clients now.
    pub read_only: bool,
    /// Request latency in milliseconds: minimum, average, maximum (0 before any request).
    pub latency_min_ms: i64,
    /// See [`ServerStats::latency_min_ms`].
    pub latency_avg_ms: f64,
    /// See [`ServerStats::latency_min_ms`].
    pub latency_max_ms: i64,
    /// Packets received.
    pub received: i64,
    /// Packets sent.
    pub sent: i64,
    /// Client connections open.
    pub connections: i64,
    /// Requests being processed (a gauge; it can briefly read -1).
    pub outstanding: i64,
    /// The last transaction id the server applied.
    pub zxid: i64,
    /// What the server does in its ensemble.
    pub mode: Mode,
    /// Nodes in the tree.
    pub node_count: i64,
    /// The client connections (`stat` only; empty for `srvr`).
    pub clients: Vec<ClientConnection>,
    /// Every `key: value` line this crate does not read, in order: a leader's `Proposal
    /// sizes last/min/max`, an unknown `Mode`, lines a later server adds.
    pub other: Vec<(String, String)>,
}

/// One client connection as `cons` (or, briefly, `stat`) lists it.
///
/// The counters are the server's signed ones (`queued` is a gauge that can read below 0).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConnection {
    /// The client's address as the server prints it (`127.0.0.1:52116`,
    /// `[0:0:0:0:0:0:0:1]:52116`; `null` for a connection that is closing).
    pub address: String,
    /// Requests queued on the connection.
    pub queued: i64,
    /// Packets received from the client.
    pub received: i64,
    /// Packets sent to the client.
    pub sent: i64,
    /// The session on the connection (`cons`, once a session is established).
    pub session_id: Option<i64>,
    /// The last operation, as the server names it (`GETD`, `PING`, `NA` before any).
    pub last_operation: Option<String>,
    /// The negotiated session timeout (`cons`).
    pub timeout_ms: Option<i64>,
    /// Every `key=value` the server printed, in order, including the ones above.
    pub fields: Vec<(String, String)>,
}

/// A metric of `mntr`.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    /// A whole number.
    Int(i64),
    /// A number with a fraction (averages; Java's `NaN`, `Infinity` and `1.0E-4` included).
    Float(f64),
    /// Text (the version, the server state).
    Text(String),
    /// The server printed `null`: a gauge with no value yet.
    Null,
}

impl MetricValue {
    /// The value as a number, when it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            MetricValue::Int(i) => Some(*i as f64),
            MetricValue::Float(f) => Some(*f),
            MetricValue::Text(_) | MetricValue::Null => None,
        }
    }
}

/// The metrics of `mntr`, in the server's order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    /// Every metric, with its `zk_` prefix.
    pub entries: Vec<(String, MetricValue)>,
    /// Lines that are not `key<TAB>value`, kept rather than refused.
    pub other: Vec<String>,
}

impl Metrics {
    /// The metric named `name`, with or without its `zk_` prefix.
    pub fn get(&self, name: &str) -> Option<&MetricValue> {
        self.entries
            .iter()
            .find(|(k, _)| k == name || k.strip_prefix("zk_") == Some(name))
            .map(|(_, v)| v)
    }

    /// A whole-number metric (`znode_count`, `watch_count`, `num_alive_connections`, ...).
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name)? {
            MetricValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The server's state (`zk_server_state`).
    pub fn mode(&self) -> Option<Mode> {
        match self.get("server_state")? {
            MetricValue::Text(s) => Mode::parse(s),
            _ => None,
        }
    }
}

/// Watch totals (`wchs`). The server counts data watches only (`exists` and `getData`);
/// child watches are left out, so `mntr`'s `watch_count` can be higher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchSummary {
    /// Connections with at least one watch.
    pub connections: u64,
    /// Paths watched.
    pub paths: u64,
    /// Watches in all.
    pub watches: u64,
}

/// `ruok`: whether the server runs without an error state. Ok means it said `imok`.
#[derive(Debug, Clone, Copy)]
pub struct Ruok;
/// `isro`: whether the server is in read-only mode (`true`) or read-write.
#[derive(Debug, Clone, Copy)]
pub struct Isro;
/// `srvr`: the server's statistics.
#[derive(Debug, Clone, Copy)]
pub struct Srvr;
/// `stat`: the server's statistics and its client connections.
#[derive(Debug, Clone, Copy)]
pub struct Stat;
/// `mntr`: every metric, for monitoring.
#[derive(Debug, Clone, Copy)]
pub struct Mntr;
/// `conf`: the server's configuration, `key=value` in order.
#[derive(Debug, Clone, Copy)]
pub struct Conf;
/// `cons`: the client connections in full detail.
#[derive(Debug, Clone, Copy)]
pub struct Cons;
/// `wchs`: watch totals.
#[derive(Debug, Clone, Copy)]
pub struct Wchs;
/// `envi`: the server's environment (Java, OS, paths), `key=value` in order.
#[derive(Debug, Clone, Copy)]
pub struct Envi;

/// The server's refusals, common to every word.
fn refusal(word: &'static str, answer: &str) -> Result<(), AdminError> {
    let first = answer.lines().next().unwrap_or("").trim();
    if first.ends_with("is not executed because it is not in the whitelist.") {
        return Err(AdminError::NotAllowed(word));
    }
    if first == NOT_SERVING {
        return Err(AdminError::NotServing);
    }
    if answer.is_empty() {
        return Err(AdminError::Unexpected {
            word,
            detail: "the server closed without answering (an unknown word?)".into(),
        });
    }
    Ok(())
}

fn unexpected(word: &'static str, detail: impl Into<String>) -> AdminError {
    AdminError::Unexpected {
        word,
        detail: detail.into(),
    }
}

fn number<T: std::str::FromStr>(word: &'static str, what: &str, s: &str) -> Result<T, AdminError> {
    s.trim()
        .parse()
        .map_err(|_| unexpected(word, format!("{what} is not a number: {s:?}")))
}

fn hex(word: &'static str, what: &str, s: &str) -> Result<i64, AdminError> {
    let digits = s.trim().trim_start_matches("0x");
    u64::from_str_radix(digits, 16)
        .map(|v| v as i64)
        .map_err(|_| unexpected(word, format!("{what} is not hexadecimal: {s:?}")))
}

/// A number as Java's `Double.toString` prints it: `5.5`, `1.0E-4`, `NaN`, `-Infinity`.
fn java_double(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        // Only Java's digits, so that text such as `inf` or `nan` stays text.
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

fn key_values(lines: &str) -> Vec<(String, String)> {
    lines
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn connection(word: &'static str, line: &str) -> Result<ClientConnection, AdminError> {
    let line = line.trim();
    let bad = || unexpected(word, format!("not a connection line: {line:?}"));
    // ` /ip:port[ops](k=v,...)`. Java 14 and later print an IPv6 address in brackets
    // (`/[::1]:52116[1](...)`), so the interest ops are the last `[...]` before `](`.
    let (head, rest) = line.split_once("](").ok_or_else(bad)?;
    let (head, _ops) = head.rsplit_once('[').ok_or_else(bad)?;
    let inner = rest.strip_suffix(')').ok_or_else(bad)?;
    // `host/ip:port` or `/ip:port`: keep what follows the slash.
    let address = head.rsplit('/').next().unwrap_or(head).to_owned();
    let fields: Vec<(String, String)> = inner
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let count = |name: &str| -> Result<i64, AdminError> {
        field(name).map_or(Ok(0), |v| number(word, name, v))
    };
    Ok(ClientConnection {
        address,
        queued: count("queued")?,
        received: count("recved")?,
        sent: count("sent")?,
        session_id: field("sid").map(|v| hex(word, "sid", v)).transpose()?,
        last_operation: field("lop").cloned(),
        timeout_ms: field("to").map(|v| number(word, "to", v)).transpose()?,
        fields: fields.clone(),
    })
}

fn server_stats(word: &'static str, answer: &str) -> Result<ServerStats, AdminError> {
    refusal(word, answer)?;
    let mut version = None;
    let mut read_only = false;
    let mut latency = None;
    let (mut received, mut sent, mut connections, mut outstanding) = (0, 0, 0, 0);
    let (mut zxid, mut mode, mut node_count) = (0, None, 0);
    let mut clients = Vec::new();
    let mut other = Vec::new();
    let mut in_clients = false;
    for line in answer.lines() {
        if in_clients {
            if line.trim().is_empty() {
                in_clients = false;
            } else {
                clients.push(connection(word, line)?);
            }
            continue;
        }
        if line == "Clients:" {
            in_clients = true;
        } else if line.starts_with("READ-ONLY mode") {
            read_only = true;
        } else if let Some((key, value)) = line.split_once(": ") {
            match key {
                "Zookeeper version" => version = Some(value.to_owned()),
                "Latency min/avg/max" => {
                    let mut parts = value.split('/');
                    let mut next = |what| {
                        parts
                            .next()
                            .ok_or_else(|| unexpected(word, format!("no {what} latency")))
                    };
                    let min = number(word, "latency", next("minimum")?)?;
                    let avg = next("average")?;
                    let avg = java_double(avg.trim()).ok_or_else(|| {
                        unexpected(word, format!("latency is not a number: {avg:?}"))
                    })?;
                    let max = number(word, "latency", next("maximum")?)?;
                    latency = Some((min, avg, max));
                }
                "Received" => received = number(word, key, value)?,
                "Sent" => sent = number(word, key, value)?,
                "Connections" => connections = number(word, key, value)?,
                "Outstanding" => outstanding = number(word, key, value)?,
                "Zxid" => zxid = hex(word, key, value)?,
                "Mode" => {
                    let known = Mode::parse(value.trim());
                    if known.is_none() {
                        other.push((key.to_owned(), value.to_owned()));
                    }
                    mode = Some(known.unwrap_or(Mode::Unknown));
                }
                "Node count" => node_count = number(word, key, value)?,
                // A leader's proposal sizes, and lines later versions add: kept, not errors.
                _ => other.push((key.to_owned(), value.to_owned())),
            }
        }
    }
    let (latency_min_ms, latency_avg_ms, latency_max_ms) =
        latency.ok_or_else(|| unexpected(word, "no latency line"))?;
    Ok(ServerStats {
        version: version.ok_or_else(|| unexpected(word, "no version line"))?,
        read_only,
        latency_min_ms,
        latency_avg_ms,
        latency_max_ms,
        received,
        sent,
        connections,
        outstanding,
        zxid,
        mode: mode.ok_or_else(|| unexpected(word, "no mode line"))?,
        node_count,
        clients,
        other,
    })
}

impl Command for Ruok {
    type Output = ();
    const WORD: &'static str = "ruok";
    fn parse(answer: &str) -> Result<(), AdminError> {
        refusal(Self::WORD, answer)?;
        match answer.trim() {
            "imok" => Ok(()),
            other => Err(unexpected(Self::WORD, format!("{other:?} instead of imok"))),
        }
    }
}

impl Command for Isro {
    type Output = bool;
    const WORD: &'static str = "isro";
    fn parse(answer: &str) -> Result<bool, AdminError> {
        refusal(Self::WORD, answer)?;
        match answer.trim() {
            "ro" => Ok(true),
            "rw" => Ok(false),
            "null" => Err(AdminError::NotServing),
            other => Err(unexpected(Self::WORD, format!("{other:?}"))),
        }
    }
}

impl Command for Srvr {
    type Output = ServerStats;
    const WORD: &'static str = "srvr";
    fn parse(answer: &str) -> Result<ServerStats, AdminError> {
        server_stats(Self::WORD, answer)
    }
}

impl Command for Stat {
    type Output = ServerStats;
    const WORD: &'static str = "stat";
    fn parse(answer: &str) -> Result<ServerStats, AdminError> {
        server_stats(Self::WORD, answer)
    }
}

impl Command for Mntr {
    type Output = Metrics;
    const WORD: &'static str = "mntr";
    fn parse(answer: &str) -> Result<Metrics, AdminError> {
        refusal(Self::WORD, answer)?;
        let mut metrics = Metrics::default();
        for line in answer.lines().filter(|l| !l.trim().is_empty()) {
            let Some((key, value)) = line.split_once('\t') else {
                metrics.other.push(line.to_owned());
                continue;
            };
            let value = if value == "null" {
                MetricValue::Null
            } else if let Ok(i) = value.parse() {
                MetricValue::Int(i)
            } else if let Some(f) = java_double(value) {
                MetricValue::Float(f)
            } else {
                MetricValue::Text(value.to_owned())
            };
            metrics.entries.push((key.to_owned(), value));
        }
        if metrics.entries.is_empty() {
            return Err(unexpected(Self::WORD, "no metrics"));
        }
        Ok(metrics)
    }
}

impl Command for Conf {
    type Output = Vec<(String, String)>;
    const WORD: &'static str = "conf";
    fn parse(answer: &str) -> Result<Self::Output, AdminError> {
        refusal(Self::WORD, answer)?;
        Ok(key_values(answer))
    }
}

impl Command for Cons {
    type Output = Vec<ClientConnection>;
    const WORD: &'static str = "cons";
    fn parse(answer: &str) -> Result<Self::Output, AdminError> {
        if answer.trim().is_empty() {
            return Ok(Vec::new()); // an answer with no connection is blank lines
        }
        refusal(Self::WORD, answer)?;
        answer
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| connection(Self::WORD, l))
            .collect()
    }
}

impl Command for Wchs {
    type Output = WatchSummary;
    const WORD: &'static str = "wchs";
    fn parse(answer: &str) -> Result<WatchSummary, AdminError> {
        refusal(Self::WORD, answer)?;
        let word = Self::WORD;
        let bad = || unexpected(word, format!("{answer:?}"));
        let mut lines = answer.lines();
        // `N connections watching M paths` then `Total watches:W`.
        let first: Vec<&str> = lines.next().ok_or_else(bad)?.split_whitespace().collect();
        let [connections, "connections", "watching", paths, "paths"] = first[..] else {
            return Err(bad());
        };
        let total = lines
            .next()
            .and_then(|l| l.strip_prefix("Total watches:"))
            .ok_or_else(bad)?;
        Ok(WatchSummary {
            connections: number(word, "connections", connections)?,
            paths: number(word, "paths", paths)?,
            watches: number(word, "watches", total)?,
        })
    }
}

impl Command for Envi {
    type Output = Vec<(String, String)>;
    const WORD: &'static str = "envi";
    fn parse(answer: &str) -> Result<Self::Output, AdminError> {
        refusal(Self::WORD, answer)?;
        let body = answer
            .strip_prefix("Environment:")
            .ok_or_else(|| unexpected(Self::WORD, "no Environment: header"))?;
        Ok(key_values(body))
    }
}

/// Splits `host:port` (IPv6 in brackets) for a driver to connect to; the port defaults to
/// 2181.
pub fn split_host(host: &str) -> Result<(String, u16), AdminError> {
    let bad = || AdminError::BadHost(host.to_owned());
    let host = host.trim();
    if host.is_empty() || host.contains(',') || host.contains('/') {
        return Err(bad());
    }
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(port) => (name, Some(port)),
            None if after.is_empty() => (name, None),
            None => return Err(bad()),
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, _)) if name.contains(':') => return Err(bad()), // bare IPv6
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        None => crate::hosts::DEFAULT_PORT,
    };
    if name.is_empty() {
        return Err(bad());
    }
    Ok((name.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_typed() {
        let no = "mntr is not executed because it is not in the whitelist.\n";
        assert!(matches!(
            Mntr::parse(no),
            Err(AdminError::NotAllowed("mntr"))
        ));
        let down = "This ZooKeeper instance is not currently serving requests\n";
        assert!(matches!(Srvr::parse(down), Err(AdminError::NotServing)));
        assert!(matches!(Isro::parse("null"), Err(AdminError::NotServing)));
        assert!(matches!(
            Ruok::parse(""),
            Err(AdminError::Unexpected { .. })
        ));
    }

    #[test]
    fn a_full_connection_line() {
        let line = " /127.0.0.1:52116[1](queued=0,recved=6,sent=6,sid=0x1000097d3910000,\
                    lop=GETC,est=1795624349461,to=4000,lcxid=0x5,lzxid=0x2,lresp=9954118,\
                    llat=1,minlat=0,avglat=5,maxlat=12)";
        let c = connection("cons", line).unwrap();
        assert_eq!(c.address, "127.0.0.1:52116");
        assert_eq!((c.queued, c.received, c.sent), (0, 6, 6));
        assert_eq!(c.session_id, Some(0x1000097d3910000));
        assert_eq!(c.last_operation.as_deref(), Some("GETC"));
        assert_eq!(c.timeout_ms, Some(4000));
        assert_eq!(c.fields.len(), 14);
        assert!(connection("cons", "garbage").is_err());
    }

    #[test]
    fn hosts() {
        assert_eq!(split_host("a:1").unwrap(), ("a".into(), 1));
        assert_eq!(split_host("a").unwrap(), ("a".into(), 2181));
        assert_eq!(split_host("[::1]:5").unwrap(), ("::1".into(), 5));
        for bad in [
            "",
            "a:0",
            "a:x",
            "a:1,b:2",
            "::1",
            "[::1",
            "a:1/chroot",
            ":1",
        ] {
            assert!(split_host(bad).is_err(), "{bad}");
        }
    }
}
