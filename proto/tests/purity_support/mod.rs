//! What the purity tests of the pure crates share (zk-proto's, and zk-sim's through a
//! `#[path]`): the workspace lock file as a dependency graph, and the Rust files of a tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// package name -> names of its dependencies, from the workspace's Cargo.lock (next to
/// the crate at `manifest_dir`). A workspace member's dev-dependencies are listed too.
pub fn lock_graph(manifest_dir: &Path) -> BTreeMap<String, Vec<String>> {
    let lock = std::fs::read_to_string(manifest_dir.join("../Cargo.lock")).unwrap();
    let mut graph = BTreeMap::new();
    for pkg in lock.split("[[package]]").skip(1) {
        let mut name = None;
        let mut deps = Vec::new();
        let mut in_deps = false;
        for line in pkg.lines().map(str::trim) {
            if let Some(n) = line.strip_prefix("name = ") {
                name = Some(n.trim_matches('"').to_owned());
            } else if line.starts_with("dependencies = [") {
                in_deps = true;
            } else if in_deps && line == "]" {
                in_deps = false;
            } else if in_deps {
                let dep = line.trim_matches(|c| c == '"' || c == ',');
                deps.push(dep.split(' ').next().unwrap().to_owned());
            }
        }
        graph
            .entry(name.unwrap())
            .or_insert_with(Vec::new)
            .extend(deps);
    }
    graph
}

/// Every `.rs` file below `dir`.
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
