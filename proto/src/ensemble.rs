//! The ensemble's membership as `/zookeeper/config` holds it (dynamic reconfiguration), and
//! the client connect string it implies.
//!
//! ```
//! use zk_proto::ensemble::{EnsembleConfig, Role};
//!
//! let data = b"server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
//!              server.2=10.0.0.2:2888:3888:participant;2181\n\
//!              server.3=10.0.0.3:2888:3888:observer;zk3.example:2182\n\
//!              version=100000002";
//! let config = EnsembleConfig::parse(data)?;
//! assert_eq!(config.version, 0x1_0000_0002);
//! assert_eq!(config.members[2].role, Role::Observer);
//! // A wildcard or missing client host means the member's quorum host.
//! assert_eq!(
//!     config.connect_string().as_deref(),
//!     Some("10.0.0.1:2181,10.0.0.2:2181,zk3.example:2182")
//! );
//! # Ok::<(), zk_proto::ensemble::ConfigError>(())
//! ```

use crate::hosts::HostAddr;

/// What a member does in the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Votes (the default when the line names no role).
    Participant,
    /// Follows without voting.
    Observer,
}

/// One `server.N=...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Member {
    /// The server id `N`.
    pub id: u64,
    /// The quorum address (`host:port`) of the first address group.
    pub quorum: HostAddr,
    /// The leader-election port.
    pub election_port: u16,
    /// Participant or observer.
    pub role: Role,
    /// Where clients connect, when the line says (`;[host:]port`). A wildcard or missing host
    /// is replaced by the quorum host.
    pub client: Option<HostAddr>,
}

/// The membership of `/zookeeper/config`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EnsembleConfig {
    /// Every member, in the order of the data.
    pub members: Vec<Member>,
    /// The configuration version (`version=`, hexadecimal), 0 when absent.
    pub version: i64,
}

/// Why `/zookeeper/config` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable ensemble configuration line {line:?}: {why}")]
pub struct ConfigError {
    /// The offending line.
    pub line: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl EnsembleConfig {
    /// Reads the data of `/zookeeper/config`. Lines other than `server.N=` and `version=`
    /// are ignored, as the server's own parser does for dynamic keys it does not know.
    pub fn parse(data: &[u8]) -> Result<EnsembleConfig, ConfigError> {
        let text = String::from_utf8_lossy(data);
        let mut config = EnsembleConfig::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let bad = |why| ConfigError {
                line: line.to_owned(),
                why,
            };
            let (key, value) = line.split_once('=').ok_or_else(|| bad("no '='"))?;
            if key == "version" {
                config.version = i64::from_str_radix(value.trim(), 16)
                    .map_err(|_| bad("the version is not hexadecimal"))?;
            } else if let Some(id) = key.strip_prefix("server.") {
                let id = id
                    .parse()
                    .map_err(|_| bad("the server id is not a number"))?;
                config.members.push(member(id, value).map_err(bad)?);
            }
        }
        Ok(config)
    }

    /// Every member's client address, comma separated, for
    /// [`Session::update_hosts`](crate::session::Session::update_hosts); `None` when no
    /// line names one (servers configured with a static `clientPort` only).
    pub fn connect_string(&self) -> Option<String> {
        let hosts: Vec<String> = self
            .members
            .iter()
            .filter_map(|m| m.client.as_ref())
            .map(HostAddr::to_string)
            .collect();
        (!hosts.is_empty()).then(|| hosts.join(","))
    }
}

/// Splits `host:port`, `[v6]:port` or `port` into its host (if any) and port parts.
fn split(s: &str) -> Result<(Option<&str>, &str), &'static str> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("an unclosed '['")?;
        let port = after.strip_prefix(':').ok_or("no port after the address")?;
        return Ok((Some(host), port));
    }
    Ok(match s.rsplit_once(':') {
        Some((host, port)) => (Some(host), port),
        None => (None, s),
    })
}

fn port(s: &str) -> Result<u16, &'static str> {
    s.trim().parse().map_err(|_| "a port is not a number")
}

fn member(id: u64, value: &str) -> Result<Member, &'static str> {
    let (server, client) = match value.split_once(';') {
        Some((s, c)) => (s, Some(c)),
        None => (value, None),
    };
    // Several address groups may be given (`a|b`); the first is enough for a client.
    let first = server.split('|').next().unwrap_or(server);
    let (host, rest) = if let Some(rest) = first.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("an unclosed '['")?;
        (
            host,
            after.strip_prefix(':').ok_or("no port after the address")?,
        )
    } else {
        first.split_once(':').ok_or("no quorum port")?
    };
    let mut parts = rest.split(':');
    let quorum_port = port(parts.next().ok_or("no quorum port")?)?;
    let election_port = port(parts.next().ok_or("no election port")?)?;
    let role = match parts.next() {
        None | Some("participant") => Role::Participant,
        Some("observer") => Role::Observer,
        Some(_) => return Err("an unknown role"),
    };
    let client = match client {
        None => None,
        Some(c) => {
            let (client_host, client_port) = split(c.trim())?;
            let client_host = match client_host {
                None | Some("0.0.0.0") | Some("::") | Some("0:0:0:0:0:0:0:0") => host,
                Some(h) => h,
            };
            Some(HostAddr::new(client_host, port(client_port)?))
        }
    };
    Ok(Member {
        id,
        quorum: HostAddr::new(host, quorum_port),
        election_port,
        role,
        client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_a_member_line() {
        let c = EnsembleConfig::parse(
            b"server.1=[::1]:2888:3888;[::1]:2181\nserver.2=h:1:2\nversion=a\nother=1",
        )
        .unwrap();
        assert_eq!(c.version, 10);
        assert_eq!(c.members[0].quorum, HostAddr::new("::1", 2888));
        assert_eq!(c.members[0].client, Some(HostAddr::new("::1", 2181)));
        assert_eq!(c.members[1].client, None);
        assert_eq!(c.members[1].role, Role::Participant);
        assert_eq!(c.connect_string().as_deref(), Some("[::1]:2181"));
        for bad in [
            &b"server.x=h:1:2"[..],
            b"server.1=h:1",
            b"server.1=h:1:2:boss",
            b"server.1=h:1:2;h:port",
            b"version=zz",
            b"server.1",
        ] {
            assert!(EnsembleConfig::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(EnsembleConfig::parse(b"").unwrap().connect_string(), None);
    }
}
