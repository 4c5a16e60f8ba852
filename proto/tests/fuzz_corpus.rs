//! Replays every file of the fuzz corpora (`fuzz/corpus/<target>/`) through the same checks
//! the fuzz targets run, so `cargo test` exercises them on stable Rust.

mod fuzz_checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).expect("a corpus file");
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "{target}: {} fails its checks", f.display());
    }
    assert!(!files.is_empty(), "the {target} corpus is empty");
    println!("{target}: replayed {} corpus files", files.len());
    files.len()
}

#[test]
fn the_decode_corpus_passes() {
    replay("decode", fuzz_checks::decode);
}

#[test]
fn the_session_bytes_corpus_passes() {
    replay("session_bytes", fuzz_checks::session_bytes);
}

#[test]
fn the_session_ops_corpus_passes() {
    replay("session_ops", fuzz_checks::session_ops);
}

#[test]
fn the_roundtrip_corpus_passes() {
    replay("roundtrip", fuzz_checks::roundtrip);
}
