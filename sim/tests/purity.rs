//! The model core stays pure: without the `tcp` and `tls` features zk-sim depends on zk-proto, bytes
//! and thiserror only, none of which is an async runtime or an IO library, and outside
//! the TCP front (`src/tcp.rs`, `src/tcp/`, `src/bin/`) its source touches no socket, clock, thread or
//! async code. The simulation harness takes its start instant as an argument.

use std::path::{Path, PathBuf};

use purity_support::{
    IMPURE_SOURCE, RUNTIME_CRATES, assert_no_impure_source, closure, lock_graph,
    manifest_dependencies, rust_files,
};

#[path = "../../proto/tests/purity_support/mod.rs"]
mod purity_support;

const ALLOWED: &[&str] = &["zk-proto", "bytes", "thiserror"];
const OPTIONAL_FOR_TCP: &[&str] = &["tokio", "clap", "tokio-rustls", "p12-keystore"];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `[dependencies]` of sim/Cargo.toml: name and whether it is optional.
fn dependencies() -> Vec<(String, bool)> {
    manifest_dependencies(manifest_dir())
}

#[test]
fn only_the_tcp_front_brings_a_runtime() {
    for (name, optional) in dependencies() {
        if OPTIONAL_FOR_TCP.contains(&name.as_str()) {
            assert!(optional, "{name} must be optional, behind the tcp feature");
        } else {
            assert!(
                ALLOWED.contains(&name.as_str()),
                "zk-sim depends on {name}; the core may use only {ALLOWED:?}"
            );
        }
    }
}

#[test]
fn no_runtime_or_io_crate_under_the_core() {
    let graph = lock_graph(manifest_dir());
    // Cargo.lock lists a workspace member's dev-dependencies with its dependencies, so
    // zk-proto is walked through its own dependencies (its purity test checks they are
    // bytes, nom and thiserror).
    let roots: Vec<String> = dependencies()
        .into_iter()
        .filter(|(_, optional)| !optional)
        .map(|(n, _)| n)
        .flat_map(|n| {
            if n == "zk-proto" {
                vec!["bytes".to_owned(), "nom".to_owned(), "thiserror".to_owned()]
            } else {
                vec![n]
            }
        })
        .collect();
    let seen = closure(&graph, &roots);
    for f in RUNTIME_CRATES.iter().chain(&["clap"]) {
        assert!(!seen.contains(*f), "{f} is under zk-sim's core: {seen:?}");
    }
    assert!(seen.contains("bytes") && seen.contains("nom"), "{seen:?}");
}

#[test]
fn core_source_uses_no_socket_clock_thread_or_async() {
    let src = manifest_dir().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let core: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| {
            !f.ends_with("tcp.rs")
                && !f.starts_with(src.join("tcp"))
                && !f.starts_with(src.join("bin"))
        })
        .collect();
    assert!(core.len() > 10, "{core:?}");
    let forbidden: Vec<&str> = IMPURE_SOURCE.iter().copied().chain(["tokio"]).collect();
    assert_no_impure_source(&core, &forbidden);
}
