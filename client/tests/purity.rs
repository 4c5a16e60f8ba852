//! The client layer stays pure: it depends on zk-proto and bytes only (zk-proto's
//! own purity test covers what that brings), nothing under it is an async runtime or an IO
//! library, and its source touches no socket, clock, thread or async code. Every driver and
//! the recipes build on it, so nothing here may assume a calling convention.

use std::path::Path;

use purity_support::{
    IMPURE_SOURCE, RUNTIME_CRATES, assert_no_impure_source, closure, lock_graph, rust_files,
};

#[path = "../../proto/tests/purity_support/mod.rs"]
mod purity_support;

const ALLOWED: &[&str] = &["zk-proto", "bytes"];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_client_layer_has_no_runtime_or_io_under_it() {
    let graph = lock_graph(manifest_dir());
    let direct = graph.get("zk-client").cloned().unwrap_or_default();
    for d in &direct {
        assert!(
            ALLOWED.contains(&d.as_str()),
            "zk-client depends on {d}; it may use only {ALLOWED:?}"
        );
    }
    assert_eq!(direct.len(), ALLOWED.len(), "{direct:?}");
    // zk-proto's own purity test holds it to bytes, nom and thiserror.
    let seen = closure(&graph, &["bytes", "nom", "thiserror"].map(String::from));
    for f in RUNTIME_CRATES {
        assert!(!seen.contains(*f), "{f} is under zk-client: {seen:?}");
    }
}

#[test]
fn the_client_layer_uses_no_socket_clock_thread_or_async() {
    let mut files = Vec::new();
    rust_files(&manifest_dir().join("src"), &mut files);
    assert!(files.len() >= 3, "{files:?}");
    assert_no_impure_source(&files, IMPURE_SOURCE);
}
