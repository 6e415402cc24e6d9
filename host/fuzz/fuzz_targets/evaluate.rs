//! Fuzz target: the whole native rule set (`provgate_guest::evaluate`) on arbitrary
//! labels, digest, reference and pin, with scripted answers (renames included).
//! Invariants and input encoding: testkit/src/fuzz_checks.rs.
#![no_main]

#[path = "../../../testkit/src/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::evaluate(data));
