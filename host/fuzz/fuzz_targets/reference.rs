//! Fuzz target: the host's image reference parser (`registry::parse_reference`) and the
//! guest's `tag_of` and `tag.consistent` rule on the same reference.
//! Invariants and input encoding: testkit/src/fuzz_checks.rs.
#![no_main]

#[path = "../../../testkit/src/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::reference(data));
