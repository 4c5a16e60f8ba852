//! The client layer stays pure: it depends on zk-proto and bytes only (zk-proto's
//! own purity test covers what that brings), nothing under it is an async runtime or an IO
//! library, and its source touches no socket, clock, thread or async code. Every driver and
//! the recipes build on it, so nothing here may assume a calling convention.
//!
//! Two optional dependencies are allowed, behind the `tls` feature: rustls, for the TLS
//! settings both drivers share, and jiff (no time zone database) for the times in its
//! messages. rustls is itself a sans-IO state machine; the wall clock it
//! checks certificates against is read only when a driver runs a handshake. Nothing under it
//! may be a runtime or an IO library either.

use std::path::Path;

use purity_support::{
    IMPURE_SOURCE, RUNTIME_CRATES, assert_no_impure_source, closure, lock_graph,
    manifest_dependencies, rust_files,
};

#[path = "../../proto/tests/purity_support/mod.rs"]
mod purity_support;

const ALLOWED: &[&str] = &["zk-proto", "bytes", "md-5"];
/// Allowed only as optional dependencies behind a feature.
const OPTIONAL: &[&str] = &["rustls", "jiff"];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_client_layer_has_no_runtime_or_io_under_it() {
    let graph = lock_graph(manifest_dir());
    // The manifest's own [dependencies]: the lock file lists dev-dependencies too.
    let direct: Vec<String> = manifest_dependencies(manifest_dir())
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    for d in &direct {
        assert!(
            ALLOWED.contains(&d.as_str()) || OPTIONAL.contains(&d.as_str()),
            "zk-client depends on {d}; it may use only {ALLOWED:?} and, optionally, {OPTIONAL:?}"
        );
    }
    for a in ALLOWED {
        assert!(direct.iter().any(|d| d == a), "{direct:?}");
    }
    let manifest = std::fs::read_to_string(manifest_dir().join("Cargo.toml")).unwrap();
    for o in OPTIONAL {
        let line = manifest
            .lines()
            .find(|l| l.starts_with(&format!("{o} =")))
            .unwrap_or_else(|| panic!("{o} is not in zk-client's manifest"));
        assert!(
            line.contains("optional = true"),
            "{o} must stay optional: {line}"
        );
    }
    // zk-proto's own purity test holds it to bytes, nom and thiserror.
    let seen = closure(&graph, &["bytes", "nom", "thiserror"].map(String::from));
    for f in RUNTIME_CRATES {
        assert!(!seen.contains(*f), "{f} is under zk-client: {seen:?}");
    }
    // With `tls`: the feature-resolved tree of normal dependencies (Cargo.lock merges in
    // what other crates' features and build scripts bring) holds no runtime or IO library,
    // and libc only for the operating system's randomness every handshake needs.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let tree = std::process::Command::new(cargo)
        .args([
            "tree",
            "-p",
            "zk-client",
            "--features",
            "tls",
            "-e",
            "normal",
        ])
        .args(["--prefix", "depth", "--format", "{p}"])
        .current_dir(manifest_dir())
        .output()
        .expect("run cargo tree");
    assert!(
        tree.status.success(),
        "{}",
        String::from_utf8_lossy(&tree.stderr)
    );
    let lines: Vec<(usize, String)> = String::from_utf8_lossy(&tree.stdout)
        .lines()
        .map(|l| {
            let digits = l.chars().take_while(char::is_ascii_digit).count();
            let depth = l[..digits].parse().unwrap_or(0);
            let name = l[digits..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string();
            (depth, name)
        })
        .collect();
    assert!(lines.iter().any(|(_, n)| n == "rustls"), "{lines:?}");
    for (i, (depth, name)) in lines.iter().enumerate() {
        if !RUNTIME_CRATES.contains(&name.as_str()) {
            continue;
        }
        assert_eq!(name, "libc", "{name} is under zk-client with `tls`");
        // Its parent: the nearest line above at one level less.
        let parent = lines[..i]
            .iter()
            .rev()
            .find(|(d, _)| d + 1 == *depth)
            .map(|(_, n)| n.as_str());
        assert_eq!(
            parent,
            Some("getrandom"),
            "libc comes in through {parent:?}"
        );
    }
}

#[test]
fn the_client_layer_uses_no_socket_clock_thread_or_async() {
    let mut files = Vec::new();
    rust_files(&manifest_dir().join("src"), &mut files);
    assert!(files.len() >= 3, "{files:?}");
    assert_no_impure_source(&files, IMPURE_SOURCE);
}
