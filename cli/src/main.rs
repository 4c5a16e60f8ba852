//! `zk`: ZooKeeper from the command line, on zk-tokio.
//!
//! ```text
//! zk -H 127.0.0.1:2181 ls -l /
//! zk get /config --json
//! zk create -p /app/locks
//! zk lock /app/locks/deploy -- ./deploy.sh
//! zk                      # the interactive shell
//! ```
//!
//! Exit codes: 0 on success, 1 for a ZooKeeper error (its name is printed, such as
//! `NoNode`) or a failed connection, 2 for a usage error; `lock` and `elect` pass on their
//! command's code.

mod commands;
mod connect;
mod dump;
mod output;
mod shell;
mod walk;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

/// ZooKeeper from the command line: read, change, watch, dump and restore trees, run
/// commands under a lock, ask servers how they are. Without a command, an interactive shell.
#[derive(Debug, Parser)]
#[command(name = "zk", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How to reach the ensemble.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection and output (every command)")]
pub struct Global {
    /// The connect string (`host:port,...[/chroot]`).
    #[arg(
        short = 'H',
        long,
        env = "ZK_HOSTS",
        default_value = "127.0.0.1:2181",
        global = true
    )]
    pub server: String,
    /// A chroot every path is under.
    #[arg(long, global = true)]
    pub chroot: Option<String>,
    /// The session timeout, in seconds.
    #[arg(long, default_value_t = 10.0, global = true)]
    pub session_timeout: f64,
    /// How long to wait for a server (a session, or a four-letter answer), in seconds.
    #[arg(long, env = "ZK_CONNECT_TIMEOUT", default_value_t = 5.0, global = true)]
    pub connect_timeout: f64,
    /// Digest credentials, `user:password` (`addauth digest`).
    #[arg(long, global = true, value_name = "USER:PASSWORD")]
    pub auth: Option<String>,
    /// Speak TLS, trusting the CA certificates in this PEM file.
    #[arg(long, global = true, value_name = "PEM")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// A client certificate (PEM) for mutual TLS; needs --tls-key.
    #[arg(long, global = true, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, global = true, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Check the servers' certificates against this name instead of the host's.
    #[arg(long, global = true)]
    pub tls_server_name: Option<String>,
    /// Log in by SASL DIGEST-MD5 as this user (the password from ZK_SASL_PASSWORD).
    #[arg(long, global = true, requires = "sasl_password")]
    pub sasl_user: Option<String>,
    /// The SASL password.
    #[arg(long, global = true, env = "ZK_SASL_PASSWORD", hide_env_values = true)]
    pub sasl_password: Option<String>,
    /// Print machine-readable JSON (every command; a write prints what it made).
    #[arg(long, global = true)]
    pub json: bool,
}

impl Global {
    fn session_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.session_timeout.max(0.1))
    }

    fn connect_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout.max(0.1))
    }
}

/// The commands, in the shell as on the command line.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List a node's children.
    Ls {
        /// The node.
        #[arg(default_value = "/")]
        path: String,
        /// With each child's stat: version, data size, children, modified, owner.
        #[arg(short, long)]
        long: bool,
        /// The whole subtree, one path per line.
        #[arg(short = 'R', long)]
        recursive: bool,
    },
    /// Print a node's data, ended by a newline unless it ends with one.
    Get {
        /// The node.
        path: String,
        /// With the node's stat.
        #[arg(long)]
        stat: bool,
        /// The data's bytes exactly, with no newline added.
        #[arg(long, conflicts_with = "stat")]
        raw: bool,
    },
    /// Replace a node's data.
    Set {
        /// The node.
        path: String,
        /// The data (`-` reads standard input).
        data: String,
        /// Only if the node is at this version.
        #[arg(short, long)]
        version: Option<i32>,
    },
    /// Create a node and print its path.
    Create {
        /// The node.
        path: String,
        /// Its data (`-` reads standard input).
        #[arg(default_value = "")]
        data: String,
        /// Ephemeral: gone with this session (so, for `zk create`, at once).
        #[arg(short, long, conflicts_with_all = ["container", "ttl"])]
        ephemeral: bool,
        /// Sequential: the server appends a counter to the name.
        #[arg(short, long, conflicts_with = "container")]
        sequential: bool,
        /// A container, removed by the server once its last child goes.
        #[arg(long)]
        container: bool,
        /// A TTL node, removed after this many milliseconds without children or changes.
        #[arg(long, value_name = "MS")]
        ttl: Option<u64>,
        /// Create missing parents (as persistent nodes).
        #[arg(short, long)]
        parents: bool,
    },
    /// Delete a node without children.
    Delete {
        /// The node.
        path: String,
        /// Only if the node is at this version.
        #[arg(short, long)]
        version: Option<i32>,
    },
    /// Delete a node and everything under it.
    Rmr {
        /// The node.
        path: String,
        /// List what would be deleted and delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
    /// Print a node's stat.
    Stat {
        /// The node.
        path: String,
    },
    /// Print a node's ACL.
    Getacl {
        /// The node.
        path: String,
    },
    /// Replace a node's ACL: entries `scheme:id:perms`, perms from `cdrwa`
    /// (`world:anyone:cdrwa`, `digest:bob:<hash>:r`).
    Setacl {
        /// The node.
        path: String,
        /// The entries.
        #[arg(required = true)]
        acl: Vec<String>,
        /// Only if the ACL is at this version.
        #[arg(short, long)]
        version: Option<i32>,
    },
    /// Print the identities the server gives this session (`ip`, `digest`, `sasl`, `x509`).
    Whoami,
    /// Wait until the server this session uses has seen every change made before.
    Sync {
        /// The node.
        #[arg(default_value = "/")]
        path: String,
    },
    /// Draw a subtree with each node's data size and child count.
    Tree {
        /// The root of the subtree.
        #[arg(default_value = "/")]
        path: String,
        /// At most this many levels below the root.
        #[arg(short, long)]
        depth: Option<usize>,
    },
    /// Print the paths under a node whose names match a pattern (`*` and `?`).
    Find {
        /// Where to look.
        path: String,
        /// The name pattern.
        pattern: String,
    },
    /// Sum the data and count the nodes of a subtree.
    Du {
        /// The root of the subtree.
        #[arg(default_value = "/")]
        path: String,
    },
    /// Print a node's changes as they happen, until interrupted: the event, the path, and
    /// for a creation or a data change the node's data as read just after (a later change
    /// may already show).
    Watch {
        /// The node.
        path: String,
        /// Changes anywhere under the node too.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
        /// Events only: do not read the data of created and changed nodes.
        #[arg(long)]
        no_data: bool,
    },
    /// Write a subtree as JSON lines: path, data, ACL and mode of each node (ephemeral
    /// nodes are skipped, with a note).
    Dump {
        /// The root of the subtree.
        #[arg(default_value = "/")]
        path: String,
        /// The file to write (default: standard output).
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
    },
    /// Create the nodes of a dump, parents first; existing nodes are left as they are.
    Restore {
        /// The dump (default: standard input).
        input: Option<std::path::PathBuf>,
        /// Put the dump's root here instead of where it came from.
        #[arg(long, value_name = "PATH")]
        into: Option<String>,
    },
    /// Run a command while holding a lock; its exit code is passed on. The lock is
    /// released when the command ends, and on Ctrl-C.
    Lock {
        /// The lock's node.
        path: String,
        /// Give up if the lock is not ours within this many seconds.
        #[arg(long)]
        timeout: Option<f64>,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Stand for leadership; once elected, run a command (or wait for Ctrl-C).
    Elect {
        /// The election's node.
        path: String,
        /// This candidate's name.
        #[arg(long, default_value = "zk-cli")]
        id: String,
        /// The command to run while leader.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Ask each server a four-letter word: ruok, isro, srvr, stat, mntr, conf, cons, wchs,
    /// envi.
    Admin {
        /// The word.
        word: String,
    },
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// What the process ends with.
pub enum Outcome {
    /// Done: exit 0.
    Ok,
    /// Exit with this code (a child's, under `lock` and `elect`).
    Code(u8),
}

fn main() -> ExitCode {
    // Output piped into `head` ends quietly, as for other Unix tools, instead of a panic on
    // the next write.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are not errors; usage errors exit with 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zk: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match cli.command {
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "zk", &mut std::io::stdout());
            Ok(Outcome::Ok)
        }
        Some(command) => runtime.block_on(commands::run_once(&cli.global, command)),
        None => shell::run(&runtime, &cli.global),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Code(code)) => ExitCode::from(code),
        Err(e) => {
            eprintln!("zk: {}", output::describe_error(&e));
            ExitCode::from(output::exit_code(&e))
        }
    }
}
