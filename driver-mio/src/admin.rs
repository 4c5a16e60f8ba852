//! Four-letter words, typed, as blocking calls: ask a server how it is (`ruok`, `srvr`,
//! `mntr`, ...).
//!
//! ```no_run
//! use std::time::Duration;
//! use zk_mio::admin::{self, Mntr, Srvr};
//!
//! let stats = admin::ask("127.0.0.1:2181", Srvr, Duration::from_secs(2))?;
//! println!("{:?}, zxid {:#x}, {} nodes", stats.mode, stats.zxid, stats.node_count);
//! let metrics = admin::ask("127.0.0.1:2181", Mntr, Duration::from_secs(2))?;
//! println!("{:?} watches", metrics.int("watch_count"));
//! for (host, answer) in admin::ask_each("10.0.0.1:2181,10.0.0.2:2181", Srvr, Duration::from_secs(2))? {
//!     println!("{host}: {:?}", answer.map(|s| s.mode));
//! }
//! # Ok::<(), zk_mio::admin::AdminError>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

pub use zk_proto::admin::*;
use zk_proto::session::HostList;

/// Sends `command` to one server (`host:port`; the port defaults to 2181) and reads its
/// typed answer, all within `timeout` (name resolution aside: it uses the system resolver).
pub fn ask<C: Command>(host: &str, command: C, timeout: Duration) -> Result<C::Output, AdminError> {
    let _ = command;
    let (name, port) = split_host(host)?;
    let deadline = Instant::now() + timeout;
    let io = |source| AdminError::Io {
        host: host.to_owned(),
        source,
    };
    let timed_out = || AdminError::Timeout {
        host: host.to_owned(),
        waited: timeout,
    };
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address");
    let mut stream = None;
    for addr in (name.as_str(), port).to_socket_addrs().map_err(io)? {
        match TcpStream::connect_timeout(&addr, left().ok_or_else(timed_out)?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut stream = stream.ok_or_else(|| io(last))?;
    stream.set_write_timeout(left()).map_err(io)?;
    stream.write_all(C::WORD.as_bytes()).map_err(io)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        stream
            .set_read_timeout(Some(left().ok_or_else(timed_out)?))
            .map_err(io)?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    C::parse(&String::from_utf8_lossy(&answer))
}

/// Sends `command` to every server of a connect string, one after another, and returns each
/// server's answer in the string's order. Fails only when the connect string is malformed.
pub fn ask_each<C: Command + Copy>(
    connect: &str,
    command: C,
    timeout: Duration,
) -> Result<Answers<C::Output>, AdminError> {
    let hosts = HostList::parse(connect)?;
    Ok(hosts
        .hosts()
        .iter()
        .map(|h| {
            let host = h.to_string();
            let answer = ask(&host, command, timeout);
            (host, answer)
        })
        .collect())
}
