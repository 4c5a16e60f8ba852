//! What the purity tests of the pure crates share (zk-proto's, and zk-client's and zk-sim's
//! through a `#[path]`): what purity forbids, the workspace lock file as a dependency graph,
//! everything a set of crates pulls in, and a scan of source files.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
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

/// Async runtimes and IO libraries: none may be under a pure crate.
pub const RUNTIME_CRATES: &[&str] = &[
    "tokio",
    "mio",
    "async-std",
    "smol",
    "futures",
    "socket2",
    "libc",
];

/// What pure source never names: sockets, clocks, threads, async, files, processes.
pub const IMPURE_SOURCE: &[&str] = &[
    "std::net",
    "Instant::now",
    "SystemTime",
    "std::thread",
    "thread::spawn",
    "async fn",
    ".await",
    "std::fs",
    "std::process",
    // Ambient randomness: seeds and ids come in from the driver, from the OS.
    "RandomState",
    "getrandom",
];

/// Every package `roots` pull in, themselves included, following `graph`.
pub fn closure(graph: &BTreeMap<String, Vec<String>>, roots: &[String]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = roots.to_vec();
    while let Some(p) = stack.pop() {
        if seen.insert(p.clone()) {
            stack.extend(graph.get(&p).cloned().unwrap_or_default());
        }
    }
    seen
}

/// Fails on the first line of code (comments aside) in `files` that contains one of
/// `forbidden`, naming the file and line.
pub fn assert_no_impure_source(files: &[PathBuf], forbidden: &[&str]) {
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            // Doc examples may start a clock; the code may not.
            if line.trim_start().starts_with("//") {
                continue;
            }
            let code = line.split("//").next().unwrap();
            for f in forbidden {
                assert!(
                    !code.contains(f),
                    "{}:{}: uses {f}: {line}",
                    file.display(),
                    n + 1
                );
            }
        }
    }
}

/// The `[dependencies]` of the crate at `manifest_dir`: name, and whether optional.
pub fn manifest_dependencies(manifest_dir: &Path) -> Vec<(String, bool)> {
    let toml = std::fs::read_to_string(manifest_dir.join("Cargo.toml")).unwrap();
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            let name = line
                .split(['=', '.', ' '])
                .next()
                .unwrap()
                .trim()
                .to_owned();
            deps.push((name, line.contains("optional = true")));
        }
    }
    deps
}

/// Every package `package` builds with on this machine (normal dependencies, this
/// platform, the features the workspace turns on), from `cargo tree`: unlike the lock
/// file, it leaves out what only another platform (wasm) or an unused feature would bring.
pub fn built_with(manifest_dir: &Path, package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(manifest_dir)
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').next())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}
