//! Fuzz target: the guest's settings parser (`Settings::parse`), natively.
//! Invariants and input encoding: testkit/src/fuzz_checks.rs (shared with
//! the regression test that replays the seeds).
#![no_main]

use provgate_testkit::fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::settings(data));
