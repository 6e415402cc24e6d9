//! Fuzz target: the host's image reference parser (`registry::parse_reference`) and the
//! guest's `tag_of` and `tag.consistent` rule on the same reference.
//! Invariants and input encoding: testkit/src/fuzz_checks.rs (shared with
//! the regression test that replays the seeds).
#![no_main]

use provgate_testkit::fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::reference(data));
