//! Fuzz target: the guest's URL handling: `Base::parse` (the Gitea base URL setting) and
//! `trusted_repo` / `source.trusted` (the source label).
//! Invariants and input encoding: testkit/src/fuzz_checks.rs (shared with
//! the regression test that replays the seeds).
#![no_main]

use provgate_testkit::fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::source_url(data));
