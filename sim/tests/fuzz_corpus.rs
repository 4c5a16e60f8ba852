//! Replays the `sim_server` fuzz corpus (`fuzz/corpus/sim_server/`) through the target's
//! checks on stable Rust, and feeds the model random inputs of the same shape.

mod fuzz_checks;

use std::path::Path;

use proptest::prelude::*;

#[test]
fn the_sim_server_corpus_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sim_server");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the sim_server corpus is empty");
    for f in &files {
        let data = std::fs::read(f).expect("a corpus file");
        let result = std::panic::catch_unwind(|| fuzz_checks::server_bytes(&data));
        assert!(result.is_ok(), "{} fails its checks", f.display());
    }
    println!("sim_server: replayed {} corpus files", files.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn hostile_input_never_breaks_the_model(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzz_checks::server_bytes(&data);
    }
}
