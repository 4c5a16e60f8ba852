//! Fuzz target `roundtrip`: see `proto/tests/fuzz_checks/mod.rs` for what it checks.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../proto/tests/fuzz_checks/mod.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::roundtrip(data));
