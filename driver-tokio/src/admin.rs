//! Four-letter words, typed: ask a server how it is (`ruok`, `srvr`, `mntr`, ...).
//!
//! ```no_run
//! use std::time::Duration;
//! use zk_tokio::admin::{self, Mntr, Srvr};
//!
//! # async fn demo() -> Result<(), zk_tokio::admin::AdminError> {
//! let stats = admin::ask("127.0.0.1:2181", Srvr, Duration::from_secs(2)).await?;
//! println!("{:?}, zxid {:#x}, {} nodes", stats.mode, stats.zxid, stats.node_count);
//! let metrics = admin::ask("127.0.0.1:2181", Mntr, Duration::from_secs(2)).await?;
//! println!("{:?} watches", metrics.int("watch_count"));
//! // Every server of a connect string, in order:
//! for (host, answer) in admin::ask_each("10.0.0.1:2181,10.0.0.2:2181", Srvr, Duration::from_secs(2)).await? {
//!     println!("{host}: {:?}", answer.map(|s| s.mode));
//! }
//! # Ok(()) }
//! ```
//!
//! Dropping a returned future at any await point is correct: it only closes its own
//! connection.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use zk_proto::admin::*;
use zk_proto::session::HostList;

/// Sends `command` to one server (`host:port`; the port defaults to 2181) and reads its
/// typed answer, all within `timeout`.
pub async fn ask<C: Command>(
    host: &str,
    command: C,
    timeout: Duration,
) -> Result<C::Output, AdminError> {
    let _ = command;
    let (name, port) = split_host(host)?;
    let exchange = async {
        let mut stream = TcpStream::connect((name.as_str(), port)).await?;
        stream.write_all(C::WORD.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(source)) => {
            return Err(AdminError::Io {
                host: host.to_owned(),
                source,
            });
        }
        Err(_) => {
            return Err(AdminError::Timeout {
                host: host.to_owned(),
                waited: timeout,
            });
        }
    };
    C::parse(&String::from_utf8_lossy(&answer))
}

/// Sends `command` to every server of a connect string, one after another, and returns each
/// server's answer in the string's order. Fails only when the connect string is malformed.
pub async fn ask_each<C: Command + Copy>(
    connect: &str,
    command: C,
    timeout: Duration,
) -> Result<Answers<C::Output>, AdminError> {
    let hosts = HostList::parse(connect)?;
    let mut answers = Vec::new();
    for host in hosts.hosts() {
        let host = host.to_string();
        let answer = ask(&host, command, timeout).await;
        answers.push((host, answer));
    }
    Ok(answers)
}
