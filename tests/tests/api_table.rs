//! The README's table of async items and their blocking twins has no gaps: every public
//! item of `zk_tokio` is named in it, and every client, watcher and builder method of the
//! async client has a blocking twin of the same name.

use std::collections::BTreeSet;
use std::path::Path;

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The names after `pub fn` / `pub async fn` in `text` (not `pub(crate)`).
fn pub_fns(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_start();
        let rest = line
            .strip_prefix("pub async fn ")
            .or_else(|| line.strip_prefix("pub fn "));
        if let Some(rest) = rest {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// The body of `macro_rules! name { ... }` in `text`, braces matched.
fn macro_body<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .find(&format!("macro_rules! {name}"))
        .unwrap_or_else(|| panic!("macro {name}"));
    let open = start + text[start..].find('{').expect("the macro's body");
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("macro {name} never closes")
}

/// Every word in backticks in the README's section on the one API.
fn table_words() -> BTreeSet<String> {
    let readme = read("README.md");
    let start = readme
        .find("## One API, two calling conventions")
        .expect("the README's section on the one API");
    let section = &readme[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let mut words = BTreeSet::new();
    for (i, quoted) in section[..end].split('`').enumerate() {
        if i % 2 == 1 {
            for word in quoted.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if !word.is_empty() {
                    words.insert(word.to_string());
                }
            }
        }
    }
    words
}

/// The names `zk_tokio`'s lib.rs re-exports or declares.
fn crate_items() -> BTreeSet<String> {
    let lib = read("driver-tokio/src/lib.rs");
    let mut items = BTreeSet::new();
    let mut in_use = false;
    for line in lib.lines() {
        let line = line.trim();
        if line.starts_with("//") || line.starts_with("#") {
            continue;
        }
        if line.starts_with("pub use ") || line.starts_with("pub mod ") || in_use {
            in_use = !line.ends_with(';');
            let names = line.rsplit("::").next().unwrap_or(line);
            let names = names
                .trim_start_matches("pub use ")
                .trim_start_matches("pub mod ");
            for name in names.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if !name.is_empty() && name != "pub" && name != "use" && name != "self" {
                    items.insert(name.to_string());
                }
            }
        }
    }
    items.extend(pub_fns(&lib));
    items
}

/// The public calls `zk_client::client_calls!` writes for both clients.
fn client_calls() -> BTreeSet<String> {
    let calls = read("client/src/calls.rs");
    let body = macro_body(&calls, "client_calls");
    let mut names = BTreeSet::new();
    for line in body.lines() {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("pub $($async)* fn ") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    // The operation methods are named `$name`; their names are the operation list's.
    names.remove("");
    assert!(
        names.contains("add_watch") && names.contains("commit"),
        "client_calls! writes the watch calls and the transaction's commit: {names:?}"
    );
    names
}

#[test]
fn every_async_item_is_in_the_readme_table() {
    let words = table_words();
    let ops = read("client/src/op.rs");
    let mut wanted = crate_items();
    for file in [
        "driver-tokio/src/client.rs",
        "driver-tokio/src/watch.rs",
        "driver-tokio/src/admin.rs",
    ] {
        wanted.extend(pub_fns(&read(file)));
    }
    // The operations every client has, and the accessors, setters and transaction
    // methods the drivers write from one macro each.
    for line in macro_body(&ops, "for_each_operation").lines() {
        let line = line.trim_start();
        if let Some((name, _)) = line.split_once('(')
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            wanted.insert(name.to_string());
        }
    }
    let snapshot = read("client/src/driver/snapshot.rs");
    wanted.extend(pub_fns(macro_body(&snapshot, "snapshot_accessors")));
    let options = read("client/src/options.rs");
    wanted.extend(pub_fns(macro_body(&options, "client_option_setters")));
    let multi = read("client/src/multi.rs");
    wanted.extend(pub_fns(macro_body(&multi, "transaction_builder_methods")));
    wanted.extend(client_calls());
    // Plumbing no user names: the crate's README test.
    wanted.remove("ReadmeDoctests");
    let missing: Vec<_> = wanted.difference(&words).collect();
    assert!(
        missing.is_empty(),
        "zk_tokio items missing from the README's table: {missing:?}"
    );
}

#[test]
fn every_async_method_has_a_blocking_twin() {
    let mut async_fns = pub_fns(&read("driver-tokio/src/client.rs"));
    async_fns.extend(pub_fns(&read("driver-tokio/src/watch.rs")));
    let mut blocking = pub_fns(&read("driver-mio/src/blocking/client.rs"));
    blocking.extend(pub_fns(&read("driver-mio/src/blocking/watchers.rs")));
    // The blocking streams' `next` is their `Iterator::next`.
    blocking.insert("next".to_string());
    let missing: Vec<_> = async_fns.difference(&blocking).collect();
    assert!(missing.is_empty(), "no blocking twin for {missing:?}");
    let extra: Vec<_> = blocking.difference(&async_fns).collect();
    assert!(extra.is_empty(), "no async twin for {extra:?}");
    let async_admin = pub_fns(&read("driver-tokio/src/admin.rs"));
    let blocking_admin = pub_fns(&read("driver-mio/src/admin.rs"));
    assert_eq!(async_admin, blocking_admin);
}

/// Every file under `dir` ending in `.rs`.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code lines of the examples in `text`'s docs (or, for a README, its code blocks).
fn example_lines(text: &str, readme: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        let line = line.trim_start();
        let doc = if readme {
            Some(line)
        } else {
            line.strip_prefix("///")
                .or_else(|| line.strip_prefix("//!"))
                .map(str::trim_start)
        };
        let Some(doc) = doc else {
            in_code = false;
            continue;
        };
        if doc.starts_with("```") {
            in_code = !in_code && !doc.starts_with("```sh") && !doc.starts_with("```text");
            continue;
        }
        if in_code {
            lines.push(doc.to_string());
        }
    }
    lines
}

#[test]
fn each_driver_crates_examples_need_only_that_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (krate, others) in [
        (
            "driver-tokio",
            ["zk_client", "zk_proto", "zk_recipes", "zk_mio"],
        ),
        (
            "driver-mio",
            ["zk_client", "zk_proto", "zk_recipes", "zk_tokio"],
        ),
    ] {
        let mut files = Vec::new();
        rust_files(&root.join(krate).join("src"), &mut files);
        let mut offending = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).expect("a source file");
            for line in example_lines(&text, false) {
                if others.iter().any(|o| line.contains(&format!("{o}::"))) {
                    offending.push(format!("{}: {line}", file.display()));
                }
            }
        }
        let readme = read(&format!("{krate}/README.md"));
        for line in example_lines(&readme, true) {
            if others.iter().any(|o| line.contains(&format!("{o}::"))) {
                offending.push(format!("{krate}/README.md: {line}"));
            }
        }
        assert!(
            offending.is_empty(),
            "examples reaching past their crate:\n{}",
            offending.join("\n")
        );
    }
}
