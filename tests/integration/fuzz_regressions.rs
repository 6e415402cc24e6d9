//! Inputs the fuzzers found (or seeded), replayed on every test run.
//!
//! Every file under `host/fuzz/seeds/<target>/` (hand-written seeds),
//! `tests/data/fuzz/<target>/` (inputs a fuzz run found) and, for
//! `inspect`, `tests/data/inspect/` (the samples) goes through the
//! same check, with the same invariants, as the cargo-fuzz target of that
//! name (host/fuzz/fuzz_targets/<target>.rs): `testkit/src/fuzz_checks.rs` is
//! shared by both. This is the CI smoke of the fuzzers; it runs in well
//! under a second. How to fuzz for real: docs/fuzzing.md.

use provgate_testkit::fuzz_checks;

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use provgate_guest::model::{CommitAnswer, Mode, RuleId};
use provgate_guest::rules::source::trusted_repo;
use provgate_guest::settings::{OnUnavailable, Settings};
use provgate_guest::url::is_plain_name;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `check` on every input of `target`; fails naming each input that
/// breaks an invariant. Returns how many inputs were replayed.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let mut dirs = vec![
        root().join("host/fuzz/seeds").join(target),
        root().join("tests/data/fuzz").join(target),
    ];
    // The inspect samples the CLI tests read are seeds too, read in place.
    if target == "inspect" {
        dirs.push(root().join("tests/data/inspect"));
    }
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
    assert!(replay("evaluate", fuzz_checks::evaluate) >= 13);
}

/// The control line of an `evaluate` input: one without `|` fields (every
/// stored 0.1 input) means what it meant, and the `moved=` and `then=`
/// fields script the answers a rename gets (the n-th `3` moves to the n-th
/// `moved=` place).
#[test]
fn evaluate_control_line_scripts_one_answer_per_question_and_where_moves_go() {
    let old = fuzz_checks::decode_control("2ea");
    assert_eq!(old.answers, [CommitAnswer::Unavailable("timed out".into())]);
    assert_eq!(
        (old.mode, old.on_unavailable, old.skew, old.pin_digest),
        (Mode::Enforce, OnUnavailable::Allow, 300, true)
    );
    assert_eq!(old.answer(1), CommitAnswer::Found, "past the script: found");

    let moved = fuzz_checks::decode_control("3ld60|moved=a/b|then=31|no-pin-digest|moved=c");
    let to = |owner: &str, repo: &str| CommitAnswer::Moved {
        owner: owner.into(),
        repo: repo.into(),
    };
    assert_eq!(
        moved.answers,
        [
            to("a", "b"),
            to("c", ""),
            CommitAnswer::NotFound("no such commit".into())
        ]
    );
    assert_eq!(
        (moved.mode, moved.on_unavailable, moved.skew, moved.pin_digest),
        (Mode::LogOnly, OnUnavailable::Deny, 60, false)
    );
}

/// The stored `evaluate` inputs are not vacuous about renames: replayed,
/// they reach every way a move can end.
#[test]
fn evaluate_inputs_reach_every_way_a_moved_repository_ends() {
    let dir = root().join("host/fuzz/seeds/evaluate");
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("the evaluate seeds") {
        let data = std::fs::read(entry.expect("directory entry").path()).expect("a seed");
        let case = fuzz_checks::decode_evaluate(&data);
        let (verdict, asked) = fuzz_checks::judge_natively(&case.control, &case.settings, &case.subject);
        let CommitAnswer::Moved { owner, repo } = case.control.answer(0) else {
            continue;
        };
        let resolves = verdict
            .findings
            .iter()
            .find(|f| f.rule == RuleId::RevisionResolves)
            .expect("a revision.resolves finding")
            .outcome;
        let how = match (&asked[..], fuzz_checks::followable(&case.control.answer(0))) {
            ([_, _], Some(_)) => match case.control.answer(1) {
                CommitAnswer::Moved { .. } => "followed, then moved again",
                CommitAnswer::Found => "followed, then found",
                CommitAnswer::NotFound(_) => "followed, then not found",
                CommitAnswer::Unavailable(_) => "followed, then unavailable",
            },
            ([_], None) if is_plain_name(&owner) && is_plain_name(&repo) => "not followed: another owner",
            ([_], None) => "not followed: not plain names",
            _ => panic!("asked {asked:?} after a move to {owner}/{repo}"),
        };
        seen.insert(format!("{how}: {resolves:?}"));
    }
    let expected = [
        "followed, then found: Pass",
        "followed, then not found: Fail",
        "followed, then unavailable: Indeterminate",
        "followed, then moved again: Fail",
        "not followed: another owner: Fail",
        "not followed: not plain names: Fail",
    ];
    let missing: Vec<&str> = expected.into_iter().filter(|e| !seen.contains(*e)).collect();
    assert!(missing.is_empty(), "no seed reaches {missing:?}; seen {seen:?}");
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
