//! Fuzz target: the guest's settings parser (`Settings::parse`), natively.
//! Invariants and input encoding: tests/support/fuzz_checks.rs.
#![no_main]

#[path = "../../../tests/support/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::settings(data));
