//! Real ZooKeeper servers and a fault-injecting proxy for tests, examples and benchmarks.
//!
//! Servers come from Debian's `zookeeper` package (`/usr/share/java/zookeeper.jar`, whose
//! manifest names its dependency jars) or from the class path in `ZK_CLASSPATH`. Each one runs
//! on free loopback ports with its own temporary data directory, and is killed and cleaned up
//! when its handle drops. When the jars are missing and the process runs as root with
//! `apt-get`, the package is installed first, with a note on stderr; otherwise starting a
//! server fails with the command to run.
//!
//! This crate depends on no client crate of the workspace, so anything can use it.
//!
//! ```no_run
//! use zk_harness::{Ensemble, ZkServer};
//!
//! let standalone = ZkServer::standalone().unwrap();
//! assert_eq!(standalone.four_letter("ruok").unwrap(), "imok");
//!
//! let ensemble = Ensemble::start(3).unwrap();
//! println!("connect to {}", ensemble.connect_string());
//! ```

#![deny(missing_docs)]

mod fourlw;
mod install;
mod kdc;
mod pki;
mod ports;
mod proxy;
mod server;
mod spawn;

use std::time::Duration;

pub use fourlw::{Mode, four_letter};
pub use install::{DEBIAN_JAR, INSTALL_COMMAND, classpath, ensure_tool};
pub use kdc::{KDC_INSTALL_COMMAND, Kdc};
pub use pki::{CertKey, Pki, Validity};
pub use ports::free_port;
pub use proxy::{Fault, Proxy};
pub use server::{ClientAuth, Ensemble, ServerKerberos, ServerOptions, ServerTls, ZkServer};

/// Why a server could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The server jars are missing and could not be installed here.
    #[error(
        "ZooKeeper is not installed ({DEBIAN_JAR} is missing) and {reason}; run \
         `{INSTALL_COMMAND}` or set ZK_CLASSPATH to a class path with the server jars"
    )]
    NotInstalled {
        /// Why the harness did not install it itself.
        reason: &'static str,
    },
    /// Installing Debian's package failed.
    #[error("installing ZooKeeper failed: {0}; run `{INSTALL_COMMAND}` by hand")]
    Install(String),
    /// Java could not be started.
    #[error("cannot start `{java}`: {source}; install a JRE or set JAVA to the java binary")]
    Spawn {
        /// The java command used.
        java: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The server process exited during start-up.
    #[error("the ZooKeeper server exited during start-up ({status}); its log ends with:\n{log}")]
    Exited {
        /// How it exited.
        status: String,
        /// The end of its log.
        log: String,
    },
    /// The server did not answer `ruok` in time.
    #[error(
        "the ZooKeeper server did not answer `ruok` within {after:?}; its log ends with:\n{log}"
    )]
    StartTimeout {
        /// How long the harness waited.
        after: Duration,
        /// The end of its log.
        log: String,
    },
    /// A server did not reach the wanted mode in time.
    #[error("the server on port {port} is still {mode:?} after {after:?}")]
    ModeTimeout {
        /// Its client port.
        port: u16,
        /// The last mode it reported.
        mode: Mode,
        /// How long the harness waited.
        after: Duration,
    },
    /// The ensemble elected no leader in time.
    #[error("the ensemble elected no leader within {after:?}")]
    NoLeader {
        /// How long the harness waited.
        after: Duration,
    },
    /// The server is not running.
    #[error("the server is not running; start it first")]
    NotRunning,
    /// No free loopback port could be found.
    #[error("no free loopback port could be found")]
    NoFreePort,
    /// A file or socket operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// The crate's README, compiled as a doc test so its example stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
