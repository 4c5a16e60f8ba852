//! Connect strings: `"h1:2181,h2,[::1]:2182/chroot/path"` parsed into hosts and a chroot.

use std::fmt;

use crate::path::{PathError, validate_path};

/// The port a host without one gets.
pub const DEFAULT_PORT: u16 = 2181;

/// One server address as written in the connect string. Resolving the name is the driver's job.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostAddr {
    /// A host name, an IPv4 address, or an IPv6 address without brackets.
    pub host: String,
    /// The client port.
    pub port: u16,
}

impl HostAddr {
    /// A host and port.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        HostAddr {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for HostAddr {
    /// `host:port`, with IPv6 addresses in brackets, ready for `ToSocketAddrs`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a connect string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// No host at all.
    #[error("the connect string names no host; expected e.g. \"127.0.0.1:2181,host2:2181/chroot\"")]
    Empty,
    /// An empty entry between commas.
    #[error("the connect string has an empty host entry at position {0} (two commas in a row?)")]
    EmptyEntry(usize),
    /// A port that is not a number from 1 to 65535.
    #[error("invalid port {port:?} for host {host:?}: expected a number from 1 to 65535")]
    BadPort {
        /// The host the port belongs to.
        host: String,
        /// The port as written.
        port: String,
    },
    /// An IPv6 address written without brackets, or an unclosed bracket.
    #[error("invalid host {0:?}: write IPv6 addresses in brackets, e.g. \"[::1]:2181\"")]
    BadIpv6(String),
    /// A character that cannot appear in a host name.
    #[error("invalid host {0:?}: host names may not contain spaces, '/', '[' or ']'")]
    BadHost(String),
    /// The chroot is not a valid node path.
    #[error("invalid chroot: {0}")]
    BadChroot(#[from] PathError),
}

/// A parsed connect string: the servers, in the order written, and the chroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostList {
    hosts: Vec<HostAddr>,
    chroot: String,
}

impl HostList {
    /// Parses `host[:port][,host[:port]...][/chroot]`.
    ///
    /// ```
    /// # use zk_proto::session::{HostAddr, HostList};
    /// let list = HostList::parse("zk1:2181,zk2,[::1]:2182/apps/billing").unwrap();
    /// assert_eq!(list.hosts()[1], HostAddr::new("zk2", 2181));
    /// assert_eq!(list.hosts()[2], HostAddr::new("::1", 2182));
    /// assert_eq!(list.chroot(), "/apps/billing");
    /// assert!(HostList::parse("zk1:99999").is_err());
    /// ```
    pub fn parse(connect: &str) -> Result<HostList, HostError> {
        let connect = connect.trim();
        let (hosts_part, chroot) = match connect.find('/') {
            Some(at) => connect.split_at(at),
            None => (connect, ""),
        };
        let chroot = match chroot {
            "" | "/" => String::new(),
            c => {
                validate_path(c)?;
                c.to_string()
            }
        };
        if hosts_part.trim().is_empty() {
            return Err(HostError::Empty);
        }
        let hosts = hosts_part
            .split(',')
            .enumerate()
            .map(|(i, entry)| parse_host(i, entry.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HostList { hosts, chroot })
    }

    /// The servers in the order written.
    pub fn hosts(&self) -> &[HostAddr] {
        &self.hosts
    }

    /// The chroot, `""` when there is none (never `"/"`).
    pub fn chroot(&self) -> &str {
        &self.chroot
    }

    /// The number of servers.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Always false for a parsed list; present for completeness.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Shuffles the servers with a seeded Fisher-Yates, so every run with the same seed
    /// connects in the same order.
    pub fn shuffle(&mut self, seed: u64) {
        let mut rng = crate::session::rng::Rng::new(seed);
        for i in (1..self.hosts.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            self.hosts.swap(i, j);
        }
    }
}

fn parse_host(index: usize, entry: &str) -> Result<HostAddr, HostError> {
    if entry.is_empty() {
        return Err(HostError::EmptyEntry(index));
    }
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(HostError::BadIpv6(entry.into()));
        };
        if host.is_empty() || !host.contains(':') {
            return Err(HostError::BadIpv6(entry.into()));
        }
        match after {
            "" => (host, None),
            p => match p.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(HostError::BadIpv6(entry.into())),
            },
        }
    } else {
        match entry.matches(':').count() {
            0 => (entry, None),
            1 => {
                let (h, p) = entry.split_at(entry.find(':').unwrap_or(entry.len()));
                (h, Some(&p[1..]))
            }
            _ => return Err(HostError::BadIpv6(entry.into())),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "/[]".contains(c)) {
        return Err(HostError::BadHost(entry.into()));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(HostError::BadPort {
                    host: host.into(),
                    port: p.into(),
                });
            }
        },
    };
    Ok(HostAddr::new(host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ports_ipv6_and_chroot() {
        let l = HostList::parse(" a:1, b ,[::1],[fe80::1]:3/x/y").unwrap();
        assert_eq!(
            l.hosts(),
            &[
                HostAddr::new("a", 1),
                HostAddr::new("b", DEFAULT_PORT),
                HostAddr::new("::1", DEFAULT_PORT),
                HostAddr::new("fe80::1", 3),
            ]
        );
        assert_eq!(l.chroot(), "/x/y");
        assert_eq!(HostList::parse("a/").unwrap().chroot(), "");
        assert_eq!(HostAddr::new("::1", 5).to_string(), "[::1]:5");
    }

    #[test]
    fn refuses_bad_strings_with_a_reason() {
        assert_eq!(HostList::parse(""), Err(HostError::Empty));
        assert_eq!(HostList::parse("/chroot"), Err(HostError::Empty));
        assert_eq!(HostList::parse("a,,b"), Err(HostError::EmptyEntry(1)));
        assert!(matches!(
            HostList::parse("a:0"),
            Err(HostError::BadPort { .. })
        ));
        assert!(matches!(
            HostList::parse("a:x"),
            Err(HostError::BadPort { .. })
        ));
        assert!(matches!(
            HostList::parse("a:"),
            Err(HostError::BadPort { .. })
        ));
        assert!(matches!(HostList::parse("::1"), Err(HostError::BadIpv6(_))));
        assert!(matches!(
            HostList::parse("[::1"),
            Err(HostError::BadIpv6(_))
        ));
        assert!(matches!(
            HostList::parse("[::1]x"),
            Err(HostError::BadIpv6(_))
        ));
        assert!(matches!(
            HostList::parse("a b:1"),
            Err(HostError::BadHost(_))
        ));
        assert!(matches!(
            HostList::parse("a/x/"),
            Err(HostError::BadChroot(_))
        ));
        assert!(matches!(
            HostList::parse("a/x//y"),
            Err(HostError::BadChroot(_))
        ));
    }

    #[test]
    fn shuffling_is_seeded() {
        let base = HostList::parse("a,b,c,d,e,f,g,h").unwrap();
        let (mut x, mut y, mut z) = (base.clone(), base.clone(), base.clone());
        x.shuffle(7);
        y.shuffle(7);
        z.shuffle(8);
        assert_eq!(x, y);
        assert_ne!(x, z);
        let mut sorted = x.hosts().to_vec();
        sorted.sort_by(|a, b| a.host.cmp(&b.host));
        assert_eq!(sorted, base.hosts());
    }
}
