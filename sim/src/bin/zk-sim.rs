//! `zk-sim`: the model ZooKeeper on real ports, for trying a client without Java.
//!
//! ```text
//! cargo run -p zk-sim                        # one server on 127.0.0.1:2181
//! cargo run -p zk-sim -- --port 0            # any free port (printed)
//! cargo run -p zk-sim -- --servers 3         # an ensemble on 2181, 2182, 2183
//! cargo run -p zk-sim -- --config zoo.cfg     # as a real server would read zoo.cfg
//! ```

use std::time::Duration;

use clap::Parser;
use zk_sim::{Config, SimServer, ZooCfg};

/// Serves a model of a ZooKeeper 3.8 server (or ensemble) on loopback ports.
#[derive(Debug, Parser)]
#[command(name = "zk-sim", version)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The first client port (0 for any free port); an ensemble's servers use the ports
    /// after it.
    #[arg(long, default_value_t = 2181)]
    port: u16,
    /// How many servers: 1 for a standalone server, more for an ensemble.
    #[arg(long, default_value_t = 1)]
    servers: usize,
    /// tickTime in milliseconds (session timeouts are bounded to 2 and 20 ticks).
    #[arg(long, default_value_t = 2000)]
    tick_ms: u64,
    /// Keep the tree and the sessions here, so a restart finds them again (as a real
    /// server's dataDir); without it the model forgets everything when it stops.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// Read the real server's configuration file instead (clientPort, tickTime, session
    /// timeouts, server.N lines, 4lw.commands.whitelist, ...); the other options are
    /// then ignored.
    #[arg(long, value_name = "ZOO_CFG")]
    config: Option<std::path::PathBuf>,
    /// A server system property (`zookeeper.DigestAuthenticationProvider.superDigest=...`,
    /// as `-D` gives it to the real server), read after --config's file; repeatable.
    #[arg(long = "property", value_name = "KEY=VALUE", requires = "config")]
    properties: Vec<String>,
}

/// The configuration and addresses `--config` names, with what the model leaves aside
/// said on standard error.
fn from_file(
    path: &std::path::Path,
    properties: &[String],
) -> (Config, Vec<String>, Option<zk_sim::CfgTls>) {
    let text = match std::fs::read_to_string(path) {
        // A system property reads as the file's key of the same name, after the file.
        Ok(t) => format!("{t}\n{}\n", properties.join("\n")),
        Err(e) => {
            eprintln!("zk-sim: cannot read {}: {e}", path.display());
            std::process::exit(2);
        }
    };
    let cfg = match ZooCfg::parse(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zk-sim: {}: {e}", path.display());
            std::process::exit(2);
        }
    };
    for (key, why) in &cfg.unsupported {
        eprintln!("zk-sim: {key}: {why}; served without it");
    }
    if !cfg.ignored.is_empty() {
        eprintln!(
            "zk-sim: keys the model reads but does not act on: {}",
            cfg.ignored.join(", ")
        );
    }
    let mut config = cfg.config;
    if let Some(jaas) = &cfg.jaas {
        match std::fs::read_to_string(jaas) {
            Ok(text) => {
                for (user, password) in zk_sim::jaas_digest_users(&text) {
                    config = config.sasl_digest_user(&user, &password);
                }
            }
            Err(e) => eprintln!("zk-sim: cannot read the JAAS file {jaas}: {e}; no SASL user"),
        }
    }
    (config, cfg.addrs, cfg.tls)
}

/// The TLS settings `--config`'s file names, read from their files.
fn server_tls(tls: &zk_sim::CfgTls) -> zk_sim::ServerTls {
    let read = |path: &str| match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("zk-sim: cannot read {path}: {e}");
            std::process::exit(2);
        }
    };
    let key_store = read(&tls.key_store);
    let trust = tls.trust_store.as_deref().map(read);
    let auth = match tls.client_auth.to_ascii_lowercase().as_str() {
        "none" => zk_sim::ClientAuth::None,
        "want" => zk_sim::ClientAuth::Want,
        _ => zk_sim::ClientAuth::Need,
    };
    let key = zk_sim::TlsStore::new(tls.key_store_type, &key_store, &tls.key_store_password);
    let trust = trust
        .as_deref()
        .map(|t| zk_sim::TlsStore::new(tls.trust_store_type, t, &tls.trust_store_password));
    let built = zk_sim::ServerTls::from_stores(key, trust, auth);
    match built.and_then(|t| t.protocols(&tls.protocols)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("zk-sim: {}: {e}", tls.key_store);
            std::process::exit(2);
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    if let Some(path) = &args.config {
        let (config, addrs, tls) = from_file(path, &args.properties);
        let servers = config.servers();
        let tls = tls.map(|t| {
            let server = server_tls(&t);
            (t.secure_addrs, server)
        });
        serve(config.wall_clock(now), addrs, servers, tls).await;
        return;
    }
    if args.servers == 0 {
        eprintln!("zk-sim: --servers must be at least 1");
        std::process::exit(2);
    }
    let base = if args.servers == 1 {
        Config::standalone()
    } else {
        Config::ensemble(args.servers)
    };
    let mut config = base
        .tick(Duration::from_millis(args.tick_ms))
        .extended_types(true)
        .wall_clock(now);
    if let Some(dir) = &args.data_dir {
        config = config.data_dir(dir);
    }
    let addrs: Vec<String> = (0..args.servers)
        .map(|i| {
            let port = if args.port == 0 {
                0
            } else {
                args.port.saturating_add(i as u16)
            };
            format!("{}:{port}", args.host)
        })
        .collect();
    serve(config, addrs, args.servers, None).await;
}

async fn serve(
    config: Config,
    addrs: Vec<String>,
    servers: usize,
    tls: Option<(Vec<String>, zk_sim::ServerTls)>,
) {
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let bound = match tls {
        Some((secure, tls)) => {
            let secure: Vec<&str> = secure.iter().map(String::as_str).collect();
            SimServer::bind_tls(config, &refs, &secure, tls).await
        }
        None => SimServer::bind_with(config, &refs).await,
    };
    let server = match bound {
        Ok(s) => s,
        Err(e) => {
            eprintln!("zk-sim: cannot listen on {}: {e}", addrs.join(", "));
            std::process::exit(1);
        }
    };
    let what = if servers == 1 {
        "a standalone server".to_string()
    } else {
        format!("an ensemble of {servers}")
    };
    println!(
        "zk-sim: a model of ZooKeeper 3.8 ({what}) serving {}",
        server.connect_string()
    );
    if let Some(secure) = server.secure_connect_string() {
        println!("zk-sim: TLS on {secure}");
    }
    println!(
        "zk-sim: ZK_HOSTS={} ; Ctrl-C stops it",
        server.connect_string()
    );
    let _ = tokio::signal::ctrl_c().await;
}
