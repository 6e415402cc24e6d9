//! Fuzz target: `--inspect` JSON (all four shapes) with the `--platform`, `--digest` and
//! `--reference` flags taken from an optional first line.
//! Invariants and input encoding: testkit/src/fuzz_checks.rs.
#![no_main]

#[path = "../../../testkit/src/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::inspect(data));
