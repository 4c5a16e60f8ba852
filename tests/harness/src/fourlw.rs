//! ZooKeeper's four-letter-word commands (`ruok`, `srvr`, `isro`, ...).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Sends a four-letter command to `addr` and returns the whole answer.
pub fn four_letter(addr: SocketAddr, cmd: &str, timeout: Duration) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(cmd.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// What a server says it is doing, from the `Mode:` line of `srvr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A server on its own.
    Standalone,
    /// The ensemble's leader.
    Leader,
    /// A follower in a quorum.
    Follower,
    /// An observer.
    Observer,
    /// Cut off from its quorum, serving read-only clients.
    ReadOnly,
    /// Up, but not serving clients (no quorum, or still starting).
    NotServing,
}

impl Mode {
    /// Reads the mode out of a `srvr` answer.
    pub fn parse(srvr: &str) -> Mode {
        let mode = srvr
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::trim);
        match mode {
            Some("standalone") => Mode::Standalone,
            Some("leader") => Mode::Leader,
            Some("follower") => Mode::Follower,
            Some("observer") => Mode::Observer,
            Some("read-only") => Mode::ReadOnly,
            _ => Mode::NotServing,
        }
    }

    /// The server answers ordinary (read-write) clients.
    pub fn is_read_write(self) -> bool {
        matches!(
            self,
            Mode::Standalone | Mode::Leader | Mode::Follower | Mode::Observer
        )
    }
}
