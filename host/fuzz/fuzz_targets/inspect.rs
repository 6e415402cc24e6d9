//! Fuzz target: `--inspect` JSON (all four shapes) with the `--platform`, `--digest` and
//! `--reference` flags taken from an optional first line.
//! Invariants and input encoding: testkit/src/fuzz_checks.rs (shared with
//! the regression test that replays the seeds).
#![no_main]

use provgate_testkit::fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::inspect(data));
