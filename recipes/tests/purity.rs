//! The recipes stay pure: they depend on zk-proto, zk-client, bytes and three pure crates
//! (serde_json, jiff without its time zone database, uuid) only (zk-sim is a
//! dev-dependency, for the simulated schedules),
//! nothing under them is an async runtime or an IO library, and their source touches no
//! socket, clock, thread or async code. Every driver runs the same machines.

use std::path::Path;

use purity_support::{
    IMPURE_SOURCE, RUNTIME_CRATES, assert_no_impure_source, built_with, manifest_dependencies,
    rust_files,
};

#[path = "../../proto/tests/purity_support/mod.rs"]
mod purity_support;

/// The other crates of the workspace, and pure, well-kept crates for what they do well:
/// JSON, calendar times, name-based UUIDs.
const ALLOWED: &[&str] = &[
    "zk-proto",
    "zk-client",
    "bytes",
    "serde_json",
    "jiff",
    "uuid",
];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_recipes_have_no_runtime_or_io_under_them() {
    let direct = manifest_dependencies(manifest_dir());
    for (d, _) in &direct {
        assert!(
            ALLOWED.contains(&d.as_str()),
            "zk-recipes depends on {d}; it may use only {ALLOWED:?}"
        );
    }
    assert_eq!(direct.len(), ALLOWED.len(), "{direct:?}");
    // What it really builds with here: the lock file also lists what uuid and jiff would
    // bring on wasm.
    let seen = built_with(manifest_dir(), "zk-recipes");
    for f in RUNTIME_CRATES {
        assert!(!seen.contains(*f), "{f} is under zk-recipes: {seen:?}");
    }
}

#[test]
fn the_recipes_use_no_socket_clock_thread_or_async() {
    let mut files = Vec::new();
    rust_files(&manifest_dir().join("src"), &mut files);
    assert!(files.len() >= 3, "{files:?}");
    assert_no_impure_source(&files, IMPURE_SOURCE);
}
