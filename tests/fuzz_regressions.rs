//! Inputs the fuzzers found (or seeded), replayed on every test run.
//!
//! Every file under `host/fuzz/seeds/<target>/` (hand-written seeds) and
//! `tests/data/fuzz/<target>/` (inputs a fuzz run found) goes through the
//! same check, with the same invariants, as the cargo-fuzz target of that
//! name (host/fuzz/fuzz_targets/<target>.rs): `support/fuzz_checks.rs` is
//! shared by both. This is the CI smoke of the fuzzers; it runs in well
//! under a second. How to fuzz for real: docs/fuzzing.md.

#[path = "support/fuzz_checks.rs"]
mod fuzz_checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use provgate_guest::rules::source::trusted_repo;
use provgate_guest::settings::Settings;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `check` on every input of `target`; fails naming each input that
/// breaks an invariant. Returns how many inputs were replayed.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dirs = [
        root().join("host/fuzz/seeds").join(target),
        root().join("tests/data/fuzz").join(target),
    ];
    let mut files = Vec::new();
    for dir in &dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    let failed: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            catch_unwind(AssertUnwindSafe(|| check(&data)))
                .err()
                .map(|_| path.display().to_string())
        })
        .collect();
    assert!(failed.is_empty(), "invariants broken by: {failed:#?}");
    files.len()
}

#[test]
fn inspect_inputs_give_a_faithful_subject_or_a_short_clean_error() {
    assert!(replay("inspect", fuzz_checks::inspect) >= 10);
}

#[test]
fn settings_inputs_give_valid_settings_or_an_error_naming_the_field() {
    assert!(replay("settings", fuzz_checks::settings) >= 5);
}

#[test]
fn reference_inputs_give_the_same_tag_to_host_and_guest() {
    assert!(replay("reference", fuzz_checks::reference) >= 5);
}

#[test]
fn source_url_inputs_are_trusted_only_in_the_canonical_spelling() {
    assert!(replay("source_url", fuzz_checks::source_url) >= 5);
}

#[test]
fn evaluate_inputs_give_one_finding_per_rule_and_a_consistent_verdict() {
    assert!(replay("evaluate", fuzz_checks::evaluate) >= 5);
}

// What the fuzzers found, pinned by name as well as replayed above.

/// source_url, first minute: a non-ASCII character in a source label was
/// named with `{:?}`, which prints a look-alike (Cyrillic і) or a stray byte
/// as itself: the finding said "contains the non-ASCII character 'і'".
#[test]
fn non_ascii_character_in_a_source_label_is_named_escaped() {
    let settings =
        Settings::parse(br#"{"gitea_base_url":"https://git.moleculesai.app","allowed_owners":["molecule-ai"]}"#)
            .expect("settings");
    let why = trusted_repo("https://g\u{456}t.moleculesai.app/molecule-ai/app", &settings).expect_err("look-alike");
    assert_eq!(
        why,
        r#"contains the non-ASCII character "\u{456}" (look-alike host or path?)"#
    );
}

/// settings, first second: an unknown key was echoed raw after `settings.`,
/// so a key such as `crcep://git.ated_max_skew_seconds` or one holding a
/// terminal escape became the "field" of the message.
#[test]
fn unknown_settings_key_that_is_not_a_plain_name_is_quoted() {
    let err = Settings::parse(br#"{"gitea_base_url":"https://g","allowed_owners":["a"],"x://y\u001b[2J":1}"#)
        .expect_err("unknown key");
    assert!(err.starts_with(r#"settings["x://y\u{1b}[2J"]: unknown key"#), "{err}");
    let err = Settings::parse(br#"{"gitea_base_url":"https://g","allowed_owners":["a"],"colour":1}"#)
        .expect_err("unknown key");
    assert!(err.starts_with("settings.colour: unknown key"), "{err}");
}
