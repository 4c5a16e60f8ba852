//! TLS against plain TCP: the same workloads on one server's `clientPort` and its
//! `secureClientPort`, ours and zookeeper-client side by side (`--tls`, which needs the
//! `tls-peer` feature for zookeeper-client's TLS). A child speaks TLS when `ZK_BENCH_CA`
//! names the CA file; both clients then use rustls with the ring provider.

use std::collections::BTreeMap;
use std::process::Command;

use crate::{CLIENTS, Run, median, setup};

/// The CA file of a TLS run, for the child processes.
const CA_ENV: &str = "ZK_BENCH_CA";
const WORKLOADS: [&str; 2] = ["sequential-get", "pipelined-get"];

#[cfg_attr(not(feature = "tls-peer"), allow(dead_code))]
fn ca_pem() -> Option<String> {
    let path = std::env::var(CA_ENV).ok()?;
    Some(std::fs::read_to_string(path).expect("read the CA file"))
}

/// Our async client, over TLS when the run asks for it.
pub async fn ours_tokio(hosts: &str) -> zk_tokio::Result<zk_tokio::Client> {
    let builder = zk_tokio::Client::builder(hosts);
    #[cfg(feature = "tls-peer")]
    let builder = match ca_pem() {
        Some(ca) => builder.tls(zk_tokio::TlsOptions::builder().ca_pem(ca)?.build()?),
        None => builder,
    };
    builder.connect().await
}

/// Our blocking client, over TLS when the run asks for it.
pub fn ours_mio(hosts: &str) -> zk_mio::Result<zk_mio::blocking::Client> {
    let builder = zk_mio::blocking::Client::builder(hosts);
    #[cfg(feature = "tls-peer")]
    let builder = match ca_pem() {
        Some(ca) => builder.tls(zk_mio::TlsOptions::builder().ca_pem(ca)?.build()?),
        None => builder,
    };
    builder.connect()
}

/// A connection for our own mio loop, over TLS when the run asks for it.
pub fn mio_connection(
    config: zk_proto::session::Config,
    registry: &mio::Registry,
    token: mio::Token,
) -> std::io::Result<zk_mio::Connection> {
    let now = std::time::Instant::now();
    #[cfg(feature = "tls-peer")]
    if let Some(ca) = ca_pem() {
        let tls = zk_mio::TlsOptions::builder()
            .ca_pem(ca)
            .and_then(|b| b.build())
            .map_err(std::io::Error::other)?;
        return zk_mio::Connection::with_tls(config, registry, token, now, tls);
    }
    zk_mio::Connection::new(config, registry, token, now)
}

/// zookeeper-client, over TLS when the run asks for it.
pub async fn theirs(hosts: &str) -> Result<zookeeper_client::Client, zookeeper_client::Error> {
    // With its TLS built in, zookeeper-client asks rustls for the process's provider even
    // over plain TCP: ring for both clients, so the cipher work is the same.
    #[cfg(feature = "tls-peer")]
    let _ = rustls::crypto::ring::default_provider().install_default();
    #[cfg(feature = "tls-peer")]
    if let Some(ca) = ca_pem() {
        let tls = zookeeper_client::TlsOptions::no_ca().with_pem_ca_certs(&ca)?;
        return zookeeper_client::Client::connector()
            .tls(tls)
            .secure_connect(hosts)
            .await;
    }
    zookeeper_client::Client::connect(hosts).await
}

/// Runs the TLS comparison and prints its table.
pub fn run(rounds: usize) {
    if !cfg!(feature = "tls-peer") {
        eprintln!(
            "--tls needs zookeeper-client's TLS: cargo run --release -p zk-bench --features \
             tls-peer -- --tls"
        );
        std::process::exit(2);
    }
    let pki = zk_harness::Pki::new("zk-bench CA").expect("a CA");
    let server = zk_harness::ZkServer::standalone_with(
        zk_harness::ServerOptions::default()
            .tls(zk_harness::ServerTls::new(&pki).expect("a server certificate")),
    )
    .expect("start a TLS server");
    let ca_file = server.dir().join("bench-ca.pem");
    std::fs::write(&ca_file, pki.ca_pem()).expect("write the CA");
    let plain = server.connect_string();
    let secure = server.secure_connect_string().expect("a secure port");
    setup(&plain);
    let exe = std::env::current_exe().expect("the bench binary");
    let mut results: BTreeMap<(String, String, bool), Vec<Run>> = BTreeMap::new();
    for round in 0..rounds {
        for workload in WORKLOADS {
            let mut clients = CLIENTS.to_vec();
            clients.rotate_left(round % CLIENTS.len());
            for client in clients {
                // Plain and TLS back to back, alternating which goes first.
                let modes = if round % 2 == 0 {
                    [false, true]
                } else {
                    [true, false]
                };
                for secured in modes {
                    let mut cmd = Command::new(&exe);
                    if secured {
                        cmd.env(CA_ENV, &ca_file)
                            .args(["--child", client, workload, &secure]);
                    } else {
                        cmd.env_remove(CA_ENV)
                            .args(["--child", client, workload, &plain]);
                    }
                    let out = cmd.output().expect("run a child");
                    match Run::parse(&String::from_utf8_lossy(&out.stdout)) {
                        Some(r) => results
                            .entry((workload.to_string(), client.to_string(), secured))
                            .or_default()
                            .push(r),
                        None => eprintln!(
                            "{client} {workload} (TLS {secured}) failed: {}",
                            String::from_utf8_lossy(&out.stderr)
                        ),
                    }
                }
            }
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    println!(
        "| workload | client | TCP ops/s | TLS ops/s | TLS / TCP throughput | CPU µs/op TCP, TLS | TLS / TCP CPU | p50 µs TCP, TLS | TLS vs zookeeper-client (ops/s, CPU) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for workload in WORKLOADS {
        let get = |client: &str, secured: bool| {
            results
                .get(&(workload.to_string(), client.to_string(), secured))
                .map(|r| median(r))
        };
        let theirs_tls = get("zookeeper-client", true);
        for client in CLIENTS {
            let (Some(tcp), Some(tls)) = (get(client, false), get(client, true)) else {
                continue;
            };
            let vs = match (&theirs_tls, client) {
                (Some(t), c) if c != "zookeeper-client" => format!(
                    "{:.2}x, {:.2}x",
                    tls.ops_per_sec() / t.ops_per_sec(),
                    tls.cpu_us_per_op / t.cpu_us_per_op
                ),
                _ => "-".into(),
            };
            println!(
                "| {workload} | {client} | {:.0} | {:.0} | {:.2}x | {:.2}, {:.2} | {:.2}x | {:.0}, {:.0} | {vs} |",
                tcp.ops_per_sec(),
                tls.ops_per_sec(),
                tls.ops_per_sec() / tcp.ops_per_sec(),
                tcp.cpu_us_per_op,
                tls.cpu_us_per_op,
                tls.cpu_us_per_op / tcp.cpu_us_per_op,
                tcp.p50_us,
                tls.p50_us,
            );
        }
    }
}
