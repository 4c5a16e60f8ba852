//! Fuzz target `sim_server`: see `sim/tests/fuzz_checks/mod.rs` for what it checks.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../sim/tests/fuzz_checks/mod.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::server_bytes(data));
