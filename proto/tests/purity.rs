//! The core stays pure: its only dependencies are bytes, nom and thiserror (and what they pull
//! in), none of which is an async runtime or an IO library, and its source touches no socket,
//! clock, thread or async code.

use std::path::Path;

use purity_support::{
    IMPURE_SOURCE, RUNTIME_CRATES, assert_no_impure_source, closure, lock_graph,
    manifest_dependencies, rust_files,
};

mod purity_support;

const ALLOWED_DIRECT: &[&str] = &["bytes", "nom", "thiserror"];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The names listed under `[dependencies]` in proto's Cargo.toml.
fn direct_dependencies() -> Vec<String> {
    manifest_dependencies(manifest_dir())
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

#[test]
fn direct_dependencies_are_bytes_nom_and_thiserror() {
    let deps = direct_dependencies();
    for d in &deps {
        assert!(
            ALLOWED_DIRECT.contains(&d.as_str()),
            "zk-proto depends on {d}; only {ALLOWED_DIRECT:?} are allowed"
        );
    }
    assert_eq!(deps.len(), ALLOWED_DIRECT.len(), "{deps:?}");
}

#[test]
fn no_runtime_or_io_crate_in_the_dependency_tree() {
    let graph = lock_graph(manifest_dir());
    let seen = closure(&graph, &direct_dependencies());
    for f in RUNTIME_CRATES {
        assert!(
            !seen.contains(*f),
            "{f} is in zk-proto's dependency tree: {seen:?}"
        );
    }
    assert!(seen.contains("nom") && seen.contains("bytes"), "{seen:?}");
}

#[test]
fn source_uses_no_socket_clock_thread_or_async() {
    let mut files = Vec::new();
    rust_files(&manifest_dir().join("src"), &mut files);
    assert!(!files.is_empty());
    assert_no_impure_source(&files, IMPURE_SOURCE);
}
