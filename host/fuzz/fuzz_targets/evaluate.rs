//! Fuzz target: the whole native rule set (`provgate_guest::evaluate`) on arbitrary
//! labels, digest, reference and pin, with scripted answers (renames included).
//! Invariants and input encoding: testkit/src/fuzz_checks.rs (shared with
//! the regression test that replays the seeds).
#![no_main]

use provgate_testkit::fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::evaluate(data));
