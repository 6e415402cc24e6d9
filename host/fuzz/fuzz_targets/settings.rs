//! Fuzz target: the guest's settings parser (`Settings::parse`), natively.
//! Invariants and input encoding: testkit/src/fuzz_checks.rs.
#![no_main]

#[path = "../../../testkit/src/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::settings(data));
