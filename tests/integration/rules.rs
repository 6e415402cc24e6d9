//! Every rule of SPEC §3 and the decision of SPEC §4, judged by the built-in
//! policy artifact (the wasm component that ships, not a native twin).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Mutex;

use provgate::lookup::{Answer, Answering, Answers, Question};
use provgate::policy::{Artifact, Limits, Origin, Policy};
use provgate::subject::{Pin, Subject};
use provgate::verdict::{Finding, Mode, Outcome, Status, Verdict};
use provgate_contract::slot;
use provgate_testkit::*;

fn judge_with(subject: &Subject, mode: Mode, answers: &dyn Answers) -> Verdict {
    verdict_of(subject, mode, answers)
}

fn judge(subject: &Subject) -> Verdict {
    judge_with(subject, Mode::Enforce, &*Scripted::found())
}

fn finding<'a>(v: &'a Verdict, rule: &str) -> &'a Finding {
    v.decided
        .findings
        .iter()
        .find(|f| f.rule == rule)
        .unwrap_or_else(|| panic!("no finding for {rule}: {v:#?}"))
}

fn outcome(v: &Verdict, rule: &str) -> Outcome {
    finding(v, rule).outcome
}

fn with_label(key: &str, value: &str) -> Subject {
    let mut s = good_subject();
    s.labels.insert(key.into(), value.into());
    s
}

fn without_label(key: &str) -> Subject {
    let mut s = good_subject();
    s.labels.remove(key);
    s
}

#[test]
fn good_subject_is_verified_with_nine_findings_in_rule_order() {
    let v = judge(&good_subject());
    assert_eq!(v.decided.status, Status::Verified);
    assert!(v.decided.allowed);
    assert_eq!(v.decided.event, "redeploy.verify.reachable");
    let rules: Vec<&str> = v.decided.findings.iter().map(|f| &*f.rule).collect();
    assert_eq!(
        rules,
        [
            "labels.present",
            "revision.format",
            "digest.format",
            "created.format",
            "run_id.format",
            "source.trusted",
            "revision.resolves",
            "pin.consistent",
            "tag.consistent"
        ]
    );
    assert_eq!(outcome(&v, "pin.consistent"), Outcome::Skipped);
    assert_eq!(v.policy.digest, Artifact::builtin().digest);
}

#[test]
fn a_passing_verdict_says_in_words_what_each_rule_checked() {
    let v = judge(&pinned(DIGEST, None));
    let messages: Vec<(&str, &str)> = v
        .decided
        .findings
        .iter()
        .map(|f| (&*f.rule, f.message.as_str()))
        .collect();
    let tag = format!("staging-{SHA}");
    assert_eq!(
        messages,
        [
            ("labels.present", "all 4 provenance labels are present"),
            ("revision.format", "revision is a full 40-character commit SHA"),
            ("digest.format", "subject and pin digests are sha256:<64 hex>"),
            ("created.format", "created is an RFC 3339 date-time, not in the future"),
            ("run_id.format", "run id is a positive integer"),
            (
                "source.trusted",
                "source is https://git.moleculesai.app/molecule-ai/app on the trusted Gitea"
            ),
            (
                "revision.resolves",
                &*format!("commit {SHA} exists in molecule-ai/app on https://git.moleculesai.app")
            ),
            (
                "pin.consistent",
                "pin agrees with the image; the pin has no source_sha to compare (backfill it)"
            ),
            ("tag.consistent", &*format!("tag \"{tag}\" agrees with the revision")),
        ]
    );
}

// labels.present

#[test]
fn missing_labels_are_all_named_and_the_event_is_unlabeled() {
    let mut s = without_label(REVISION);
    s.labels.remove(RUN_ID);
    let v = judge(&s);
    let f = finding(&v, "labels.present");
    assert_eq!(f.outcome, Outcome::Fail);
    assert!(
        f.message.contains(REVISION) && f.message.contains(RUN_ID),
        "{}",
        f.message
    );
    assert!(!f.message.contains(SOURCE), "{}", f.message);
    assert_eq!(v.decided.status, Status::Rejected);
    assert_eq!(v.decided.event, "redeploy.verify.unlabeled");
    assert_eq!(outcome(&v, "revision.format"), Outcome::Skipped);
    assert_eq!(outcome(&v, "run_id.format"), Outcome::Skipped);
    assert_eq!(outcome(&v, "revision.resolves"), Outcome::Skipped);
}

#[test]
fn white_space_only_label_counts_as_missing() {
    for blank in ["", " ", "\t\n", "\u{00a0}\u{2003}"] {
        let v = judge(&with_label(CREATED, blank));
        assert_eq!(outcome(&v, "labels.present"), Outcome::Fail, "{blank:?}");
        assert_eq!(outcome(&v, "created.format"), Outcome::Skipped, "{blank:?}");
    }
}

#[test]
fn label_keys_are_case_sensitive() {
    let mut s = without_label(SOURCE);
    s.labels.insert(
        "Org.Opencontainers.Image.Source".into(),
        format!("{GITEA}/molecule-ai/app"),
    );
    let v = judge(&s);
    assert_eq!(outcome(&v, "labels.present"), Outcome::Fail);
    assert_eq!(outcome(&v, "source.trusted"), Outcome::Skipped);
}

// revision.format

#[test]
fn revision_must_be_exactly_forty_lower_case_hex() {
    let upper = SHA.to_uppercase();
    let arabic = format!("{}٣", &SHA[..39]);
    let fullwidth = format!("{}１", &SHA[..39]);
    for bad in [
        upper.as_str(),
        &SHA[..39],
        &format!("{SHA}0"),
        &format!("{SHA}\n"),
        &format!(" {SHA}"),
        arabic.as_str(),
        fullwidth.as_str(),
        "g6b68ae653f75d2ed731081e35541b6f6a0e7c0b",
        "main",
    ] {
        let v = judge(&with_label(REVISION, bad));
        assert_eq!(outcome(&v, "revision.format"), Outcome::Fail, "{bad:?}");
        assert_eq!(v.decided.event, "redeploy.verify.malformed", "{bad:?}");
        assert_eq!(outcome(&v, "revision.resolves"), Outcome::Skipped, "{bad:?}");
    }
}

#[test]
fn megabyte_label_value_fails_with_a_short_message() {
    let huge = "a".repeat(1 << 20);
    let v = judge(&with_label(REVISION, &huge));
    let f = finding(&v, "revision.format");
    assert_eq!(f.outcome, Outcome::Fail);
    assert!(f.message.len() < 400, "message is {} bytes", f.message.len());
    assert!(f.message.contains("1048576"), "{}", f.message);
}

#[test]
fn hostile_control_characters_are_escaped_in_messages() {
    let v = judge(&with_label(REVISION, "\u{1b}[2J::error::forged\r\n"));
    let f = finding(&v, "revision.format");
    assert!(
        !f.message.contains('\u{1b}') && !f.message.contains('\n') && !f.message.contains('\r'),
        "{:?}",
        f.message
    );
    assert!(f.message.contains("\\u{1b}"), "{}", f.message);
}

// digest.format

#[test]
fn digest_must_be_sha256_and_64_lower_case_hex() {
    let hex = &DIGEST[7..];
    for bad in [
        format!("sha256:{}", hex.to_uppercase()),
        format!("sha256:{}", &hex[..63]),
        format!("sha512:{hex}"),
        format!("SHA256:{hex}"),
        hex.to_string(),
        format!("sha256:{hex}\n"),
        String::new(),
    ] {
        let mut s = good_subject();
        s.digest = bad.clone();
        let v = judge(&s);
        assert_eq!(outcome(&v, "digest.format"), Outcome::Fail, "{bad:?}");
        assert_eq!(v.decided.event, "redeploy.verify.malformed");
    }
}

#[test]
fn a_pins_malformed_digest_fails_digest_format() {
    let mut s = good_subject();
    s.pin = Some(Pin {
        runtime: None,
        digest: Some("sha256:abc".into()),
        source_sha: Some(SHA.into()),
    });
    let f = finding(&judge(&s), "digest.format").clone();
    assert_eq!(f.outcome, Outcome::Fail);
    assert!(f.message.contains("pin digest"), "{}", f.message);
}

// created.format

#[test]
fn created_accepts_rfc3339_with_offsets_and_fractions() {
    for ok in [
        "2026-11-01T10:00:00Z",
        "2026-11-01T10:00:00.123456789Z",
        "2026-11-01T12:00:00+02:00",
        "2026-11-23T10:04:59Z",
    ] {
        assert_eq!(
            outcome(&judge(&with_label(CREATED, ok)), "created.format"),
            Outcome::Pass,
            "{ok}"
        );
    }
}

#[test]
fn created_rejects_non_rfc3339_and_the_future_beyond_the_skew() {
    for bad in [
        "2026-11-01",
        "2026-11-01 10:00:00Z",
        "2026-11-01T10:00:00",
        "1761991200",
        "2026-11-01T10:00:00Z\n",
        "2026-02-30T10:00:00Z",
        "２026-11-01T10:00:00Z",
        "2026-11-23T10:05:01Z",
        "2027-01-01T00:00:00Z",
    ] {
        let v = judge(&with_label(CREATED, bad));
        assert_eq!(outcome(&v, "created.format"), Outcome::Fail, "{bad:?}");
        assert_eq!(v.decided.event, "redeploy.verify.malformed", "{bad:?}");
    }
    let f = finding(&judge(&with_label(CREATED, "2026-11-23T11:00:00Z")), "created.format").clone();
    assert!(
        f.message.contains("3600 s") && f.message.contains("300 s"),
        "{}",
        f.message
    );
}

#[test]
fn created_exactly_the_skew_ahead_of_now_passes_and_a_nanosecond_more_fails() {
    // now() is 2026-11-23T10:00:00Z; the default skew is 300 s.
    for (created, expected) in [
        ("2026-11-23T10:05:00Z", Outcome::Pass),
        ("2026-11-23T10:05:00.000000001Z", Outcome::Fail),
        ("2026-11-23T10:04:59.999999999Z", Outcome::Pass),
    ] {
        assert_eq!(
            outcome(&judge(&with_label(CREATED, created)), "created.format"),
            expected,
            "{created}"
        );
    }
}

#[test]
fn created_missing_is_skipped() {
    assert_eq!(
        outcome(&judge(&without_label(CREATED)), "created.format"),
        Outcome::Skipped
    );
}

// run_id.format

#[test]
fn run_id_must_be_a_positive_ascii_integer() {
    assert_eq!(
        outcome(&judge(&with_label(RUN_ID, "1")), "run_id.format"),
        Outcome::Pass
    );
    assert_eq!(
        outcome(&judge(&with_label(RUN_ID, "9223372036854775807")), "run_id.format"),
        Outcome::Pass
    );
    for bad in [
        "0",
        "-5",
        "12a",
        "+12",
        "1.5",
        " 12",
        "12\n",
        "٣",
        "007",
        "9223372036854775808",
        "1e3",
    ] {
        let v = judge(&with_label(RUN_ID, bad));
        assert_eq!(outcome(&v, "run_id.format"), Outcome::Fail, "{bad:?}");
        assert_eq!(v.decided.event, "redeploy.verify.malformed", "{bad:?}");
    }
    assert_eq!(
        outcome(&judge(&without_label(RUN_ID)), "run_id.format"),
        Outcome::Skipped
    );
}

// source.trusted

#[test]
fn source_on_the_trusted_gitea_passes_with_git_suffix_or_trailing_slash() {
    for ok in [
        format!("{GITEA}/molecule-ai/app"),
        format!("{GITEA}/molecule-ai/app.git"),
        format!("{GITEA}/molecule-ai/app/"),
        format!("{GITEA}:443/molecule-ai/app"),
        "https://GIT.moleculesai.app/molecule-ai/app".to_string(),
        format!("{GITEA}/molecule-ai/workspace-template_python.v2"),
    ] {
        let lookup = Scripted::found();
        let v = judge_with(&with_label(SOURCE, &ok), Mode::Enforce, &*lookup);
        assert_eq!(
            outcome(&v, "source.trusted"),
            Outcome::Pass,
            "{ok}: {:?}",
            finding(&v, "source.trusted")
        );
        assert_eq!(lookup.asked().len(), 1, "{ok}");
        assert_eq!(lookup.asked()[0].0, "molecule-ai");
    }
}

#[test]
fn hostile_sources_are_untrusted_and_never_looked_up() {
    for bad in [
        "https://git.moleculesai.app.evil.com/molecule-ai/app",
        "https://git-moleculesai.app/molecule-ai/app",
        "https://gіt.moleculesai.app/molecule-ai/app",
        "https://xn--gt-mjc.moleculesai.app/molecule-ai/app",
        "https://git.moleculesai.app./molecule-ai/app",
        "https://user@git.moleculesai.app/molecule-ai/app",
        "https://git.moleculesai.app@evil.com/molecule-ai/app",
        "https://user:pass@git.moleculesai.app/molecule-ai/app",
        "https://git.moleculesai.app/molecule-ai/../evil/app",
        "https://git.moleculesai.app/molecule-ai/./app",
        "https://git.moleculesai.app/molecule-ai/..",
        "https://git.moleculesai.app/molecule-ai/%61pp",
        "https://git.moleculesai.app/molecule-ai%2Fapp",
        "https://git.moleculesai.app/molecule-ai/app?ref=main",
        "https://git.moleculesai.app/molecule-ai/app#readme",
        "http://git.moleculesai.app/molecule-ai/app",
        "ssh://git.moleculesai.app/molecule-ai/app",
        "https://git.moleculesai.app:8443/molecule-ai/app",
        "https://git.moleculesai.app/molecule-ai/app/tree/main",
        "https://git.moleculesai.app/molecule-ai",
        "https://git.moleculesai.app//molecule-ai/app",
        "https://git.moleculesai.app/evil-org/app",
        "https://git.moleculesai.app/Molecule-AI/app",
        "https://git.moleculesai.app/molecule-ai/app.git/",
        "https://git.moleculesai.app/molecule-ai/app//",
        "https://git.moleculesai.app\\molecule-ai\\app",
        "https://github.com/molecule-ai/app",
        "git.moleculesai.app/molecule-ai/app",
        " https://git.moleculesai.app/molecule-ai/app",
        "https://git.moleculesai.app/molecule-ai/app\n",
    ] {
        let lookup = Scripted::found();
        let v = judge_with(&with_label(SOURCE, bad), Mode::Enforce, &*lookup);
        assert_eq!(outcome(&v, "source.trusted"), Outcome::Fail, "{bad:?} was trusted");
        assert_eq!(outcome(&v, "revision.resolves"), Outcome::Skipped, "{bad:?}");
        assert!(lookup.asked().is_empty(), "{bad:?} was looked up");
        assert_eq!(v.decided.event, "redeploy.verify.untrusted_source", "{bad:?}");
        assert!(!v.decided.allowed);
    }
}

#[test]
fn untrusted_source_message_says_what_was_expected() {
    let v = judge(&with_label(SOURCE, "https://git.moleculesai.app:8443/molecule-ai/app"));
    let msg = &finding(&v, "source.trusted").message;
    assert!(msg.contains("port 8443") && msg.contains(GITEA), "{msg}");
}

// revision.resolves

#[test]
fn revision_is_looked_up_once_in_the_sources_repository() {
    let lookup = Scripted::found();
    let v = judge_with(&good_subject(), Mode::Enforce, &*lookup);
    assert_eq!(outcome(&v, "revision.resolves"), Outcome::Pass);
    assert_eq!(
        lookup.asked(),
        [("molecule-ai".to_string(), "app".to_string(), SHA.to_string())]
    );
}

#[test]
fn commit_not_found_rejects_with_the_forges_reason() {
    let lookup = Scripted::new(Answer::not_found("Gitea answered 404"));
    let v = judge_with(&good_subject(), Mode::Enforce, &*lookup);
    let f = finding(&v, "revision.resolves");
    assert_eq!(f.outcome, Outcome::Fail);
    assert!(f.message.contains("Gitea answered 404"), "{}", f.message);
    assert_eq!(v.decided.status, Status::Rejected);
    assert_eq!(v.decided.event, "redeploy.verify.unresolved");
    assert!(!v.decided.allowed);
}

#[test]
fn gitea_unavailable_is_indeterminate_and_denied_in_enforce() {
    let lookup = Scripted::new(Answer::unavailable("time-out after 5 s"));
    let v = judge_with(&good_subject(), Mode::Enforce, &*lookup);
    assert_eq!(outcome(&v, "revision.resolves"), Outcome::Indeterminate);
    assert_eq!(v.decided.status, Status::Indeterminate);
    assert_eq!(v.decided.event, "redeploy.verify.unavailable");
    assert!(!v.decided.allowed);
}

#[test]
fn log_only_allows_whatever_the_status() {
    let rejected = judge_with(&without_label(RUN_ID), Mode::LogOnly, &*Scripted::found());
    assert_eq!(rejected.decided.status, Status::Rejected);
    assert!(rejected.decided.allowed);
    assert_eq!(rejected.mode, Mode::LogOnly);
    let unavailable = judge_with(
        &good_subject(),
        Mode::LogOnly,
        &*Scripted::new(Answer::unavailable("x")),
    );
    assert_eq!(unavailable.decided.status, Status::Indeterminate);
    assert!(unavailable.decided.allowed);
}

/// The built-in artifact with other settings in its slot.
fn with_settings(settings: &[u8]) -> Policy {
    let bytes = slot::write(&Artifact::builtin().bytes, &slot::canonical(settings).unwrap()).unwrap();
    Policy::load(
        Artifact::from_bytes(Cow::Owned(bytes), Origin::BuiltIn),
        Limits::default(),
        Some(&provgate::policy::cache::CodeCache::new(cache_dir())),
    )
    .unwrap()
}

const LENIENT: &[u8] =
    br#"{"gitea_base_url":"https://git.moleculesai.app","allowed_owners":["molecule-ai"],"on_unavailable":"allow"}"#;

#[test]
fn on_unavailable_allow_lets_indeterminate_through_in_enforce_but_never_rejected() {
    let lenient = with_settings(LENIENT);
    assert_eq!(lenient.description().settings.on_unavailable, "allow");
    let unavailable = Scripted::new(Answer::unavailable("down"));
    let v = block_on(provgate::judge::judge(
        &lenient,
        &good_subject(),
        Mode::Enforce,
        now(),
        &*unavailable,
    ))
    .unwrap()
    .verdict;
    assert_eq!((v.decided.status, v.decided.allowed), (Status::Indeterminate, true));
    let v = block_on(provgate::judge::judge(
        &lenient,
        &without_label(RUN_ID),
        Mode::Enforce,
        now(),
        &*unavailable,
    ))
    .unwrap()
    .verdict;
    assert_eq!((v.decided.status, v.decided.allowed), (Status::Rejected, false));
    assert_ne!(
        v.policy.digest,
        Artifact::builtin().digest,
        "settings are covered by the digest"
    );
}

// revision.resolves: a renamed or transferred repository

/// Answers by repository, remembering every question in the order asked;
/// a repository it was not told about is not found.
#[derive(Default)]
struct ByRepo {
    answers: BTreeMap<(String, String), Answer>,
    asked: Mutex<Vec<Question>>,
    /// Answers must be awaited: the pipeline restarts the instance.
    waited: bool,
}

impl ByRepo {
    fn new(answers: &[(&str, &str, Answer)]) -> ByRepo {
        ByRepo {
            answers: answers
                .iter()
                .map(|(owner, repo, answer)| ((owner.to_string(), repo.to_string()), answer.clone()))
                .collect(),
            ..ByRepo::default()
        }
    }

    fn waited(mut self) -> ByRepo {
        self.waited = true;
        self
    }

    fn asked(&self) -> Vec<Question> {
        self.asked.lock().unwrap().clone()
    }

    fn give(&self, q: &Question) -> Answer {
        self.asked.lock().unwrap().push(q.clone());
        self.answers
            .get(&(q.owner.clone(), q.repo.clone()))
            .cloned()
            .unwrap_or_else(|| Answer::not_found("no such repository"))
    }
}

impl Answers for ByRepo {
    fn at_hand(&self, q: &Question) -> Option<Answer> {
        (!self.waited).then(|| self.give(q))
    }

    fn answer<'a>(&'a self, q: &'a Question) -> Answering<'a> {
        Box::pin(std::future::ready(self.give(q)))
    }
}

fn question(owner: &str, repo: &str) -> Question {
    Question::new(owner, repo, SHA)
}

#[test]
fn a_rename_within_an_allowed_owner_is_asked_again_at_the_new_place_and_passes() {
    for waited in [false, true] {
        let answers = ByRepo::new(&[
            ("molecule-ai", "app", Answer::moved("molecule-ai", "app-renamed")),
            ("molecule-ai", "app-renamed", Answer::Found),
        ]);
        let answers = if waited { answers.waited() } else { answers };
        let decision = block_on(provgate::judge::judge(
            policy(),
            &good_subject(),
            Mode::Enforce,
            now(),
            &answers,
        ))
        .unwrap();
        let f = finding(&decision.verdict, "revision.resolves");
        assert_eq!(f.outcome, Outcome::Pass, "waited {waited}: {f:?}");
        assert!(
            f.message.contains("molecule-ai/app-renamed") && f.message.contains("moved from molecule-ai/app"),
            "{}",
            f.message
        );
        assert_eq!(decision.verdict.decided.status, Status::Verified);
        assert_eq!(
            answers.asked(),
            [question("molecule-ai", "app"), question("molecule-ai", "app-renamed")]
        );
        // Both answers are kept, in the order asked, for the record.
        let given: Vec<(&Question, &Answer)> = decision.answers.iter().map(|a| (&a.question, &a.answer)).collect();
        assert_eq!(
            given,
            [
                (
                    &question("molecule-ai", "app"),
                    &Answer::moved("molecule-ai", "app-renamed")
                ),
                (&question("molecule-ai", "app-renamed"), &Answer::Found),
            ]
        );
    }
}

#[test]
fn a_rename_to_an_allowed_owner_where_the_commit_is_missing_is_unresolved_and_says_it_moved() {
    let answers = ByRepo::new(&[("molecule-ai", "app", Answer::moved("molecule-ai", "app2"))]);
    let v = judge_with(&good_subject(), Mode::Enforce, &answers);
    let f = finding(&v, "revision.resolves");
    assert_eq!(f.outcome, Outcome::Fail);
    assert!(f.message.contains("moved from molecule-ai/app"), "{}", f.message);
    assert_eq!(v.decided.event, "redeploy.verify.unresolved");
}

#[test]
fn a_rename_to_an_owner_not_allowed_fails_without_looking_there() {
    let answers = ByRepo::new(&[
        ("molecule-ai", "app", Answer::moved("evil-org", "app")),
        ("evil-org", "app", Answer::Found),
    ]);
    let v = judge_with(&good_subject(), Mode::Enforce, &answers);
    let f = finding(&v, "revision.resolves");
    assert_eq!(f.outcome, Outcome::Fail);
    assert!(
        f.message.contains("evil-org") && f.message.contains("not an allowed owner"),
        "{}",
        f.message
    );
    assert_eq!((v.decided.status, v.decided.allowed), (Status::Rejected, false));
    assert_eq!(answers.asked(), [question("molecule-ai", "app")]);
}

#[test]
fn a_rename_to_a_foreign_owner_is_denied_even_when_unavailable_is_allowed() {
    let lenient = with_settings(LENIENT);
    let answers = ByRepo::new(&[("molecule-ai", "app", Answer::moved("evil-org", "app"))]);
    let v = block_on(provgate::judge::judge(
        &lenient,
        &good_subject(),
        Mode::Enforce,
        now(),
        &answers,
    ))
    .unwrap()
    .verdict;
    assert_eq!(outcome(&v, "revision.resolves"), Outcome::Fail);
    assert_eq!((v.decided.status, v.decided.allowed), (Status::Rejected, false));
}

#[test]
fn a_second_rename_in_one_verdict_fails() {
    // Every repository says it moved on: Gitea would have sent one hop.
    let answers = Scripted::new(Answer::moved("molecule-ai", "app-elsewhere"));
    let v = judge_with(&good_subject(), Mode::Enforce, &*answers);
    let f = finding(&v, "revision.resolves");
    assert_eq!(f.outcome, Outcome::Fail);
    assert!(f.message.contains("one rename only"), "{}", f.message);
    assert_eq!(answers.asked().len(), 2);
}

#[test]
fn a_rename_to_a_name_that_is_not_plain_fails_without_looking_there() {
    for (owner, repo) in [
        ("molecule-ai", "../evil"),
        ("molecule-ai", "app/x"),
        ("", "app"),
        ("molecule-ai", "a\u{1b}[2J"),
    ] {
        let answers = ByRepo::new(&[("molecule-ai", "app", Answer::moved(owner, repo))]);
        let v = judge_with(&good_subject(), Mode::Enforce, &answers);
        let f = finding(&v, "revision.resolves");
        assert_eq!(f.outcome, Outcome::Fail, "{owner}/{repo}: {f:?}");
        assert!(!f.message.contains('\u{1b}'), "{:?}", f.message);
        assert_eq!(answers.asked(), [question("molecule-ai", "app")], "{owner}/{repo}");
    }
}

#[test]
fn answers_that_must_be_awaited_give_the_same_verdict_as_answers_at_hand() {
    for answer in [
        Answer::Found,
        Answer::not_found("404"),
        Answer::unavailable("down"),
        Answer::moved("evil-org", "app"),
    ] {
        let at_hand = block_on(provgate::judge::judge(
            policy(),
            &good_subject(),
            Mode::Enforce,
            now(),
            &*Scripted::new(answer.clone()),
        ))
        .unwrap();
        let waited = block_on(provgate::judge::judge(
            policy(),
            &good_subject(),
            Mode::Enforce,
            now(),
            &*Scripted::waited(answer.clone()),
        ))
        .unwrap();
        assert_eq!(at_hand.verdict, waited.verdict, "{answer:?}");
        assert_eq!(at_hand.instances, 1, "{answer:?}");
        assert!(
            waited.instances > 1,
            "{answer:?}: the awaited answer did not restart the instance"
        );
    }
}

// pin.consistent

fn pinned(digest: &str, source_sha: Option<&str>) -> Subject {
    let mut s = good_subject();
    s.pin = Some(Pin {
        runtime: Some("python".into()),
        digest: Some(digest.into()),
        source_sha: source_sha.map(String::from),
    });
    s
}

#[test]
fn pin_matching_digest_and_source_sha_passes() {
    assert_eq!(
        outcome(&judge(&pinned(DIGEST, Some(SHA))), "pin.consistent"),
        Outcome::Pass
    );
}

#[test]
fn pin_with_another_digest_is_a_pin_mismatch() {
    let other = format!("sha256:{}", "0".repeat(64));
    let v = judge(&pinned(&other, Some(SHA)));
    assert_eq!(outcome(&v, "pin.consistent"), Outcome::Fail);
    assert_eq!(v.decided.event, "redeploy.verify.pin_mismatch");
}

#[test]
fn pin_with_another_source_sha_is_a_pin_mismatch() {
    let v = judge(&pinned(DIGEST, Some(&"1".repeat(40))));
    let f = finding(&v, "pin.consistent");
    assert_eq!(f.outcome, Outcome::Fail);
    assert!(f.message.contains("source_sha"), "{}", f.message);
    assert_eq!(v.decided.event, "redeploy.verify.pin_mismatch");
}

#[test]
fn a_pin_of_only_a_source_sha_is_compared_with_the_revision() {
    let only_sha = |sha: &str| {
        let mut s = good_subject();
        s.pin = Some(Pin::new(None, None, Some(sha.into())).unwrap());
        s
    };
    assert_eq!(outcome(&judge(&only_sha(SHA)), "pin.consistent"), Outcome::Pass);
    let v = judge(&only_sha(&"1".repeat(40)));
    assert_eq!(outcome(&v, "pin.consistent"), Outcome::Fail);
    assert_eq!(v.decided.event, "redeploy.verify.pin_mismatch");
}

#[test]
fn pin_without_source_sha_passes_and_asks_for_a_backfill() {
    let f = finding(&judge(&pinned(DIGEST, None)), "pin.consistent").clone();
    assert_eq!(f.outcome, Outcome::Pass);
    assert!(f.message.contains("backfill"), "{}", f.message);
}

// tag.consistent

fn tagged(reference: &str) -> Subject {
    let mut s = good_subject();
    s.reference = reference.into();
    s
}

#[test]
fn tag_embedding_the_revision_passes_in_full_or_short_form() {
    for ok in [
        format!("git.moleculesai.app/molecule-ai/app:staging-{SHA}"),
        format!("git.moleculesai.app/molecule-ai/app:sha-{}", &SHA[..7]),
        format!("localhost:5000/molecule-ai/app:staging-{SHA}@{DIGEST}"),
    ] {
        assert_eq!(outcome(&judge(&tagged(&ok)), "tag.consistent"), Outcome::Pass, "{ok}");
    }
}

#[test]
fn tag_naming_another_commit_is_a_pin_mismatch() {
    for bad in [
        format!("git.moleculesai.app/molecule-ai/app:staging-{}", "1".repeat(40)),
        "git.moleculesai.app/molecule-ai/app:sha-1234567".to_string(),
    ] {
        let v = judge(&tagged(&bad));
        assert_eq!(outcome(&v, "tag.consistent"), Outcome::Fail, "{bad}");
        assert_eq!(v.decided.event, "redeploy.verify.pin_mismatch", "{bad}");
    }
}

#[test]
fn tag_without_a_commit_is_skipped() {
    for skip in [
        "git.moleculesai.app/molecule-ai/app:latest".to_string(),
        format!("git.moleculesai.app/molecule-ai/app@{DIGEST}"),
        "localhost:5000/molecule-ai/app".to_string(),
        "git.moleculesai.app/molecule-ai/app:sha-abc".to_string(),
    ] {
        assert_eq!(
            outcome(&judge(&tagged(&skip)), "tag.consistent"),
            Outcome::Skipped,
            "{skip}"
        );
    }
}

// the event order of SPEC §4

#[test]
fn event_is_the_first_that_applies_in_spec_order() {
    // unlabeled beats malformed
    let mut s = without_label(RUN_ID);
    s.digest = "sha256:nope".into();
    assert_eq!(judge(&s).decided.event, "redeploy.verify.unlabeled");
    // malformed beats untrusted_source
    let mut s = with_label(SOURCE, "https://github.com/molecule-ai/app");
    s.digest = "sha256:nope".into();
    assert_eq!(judge(&s).decided.event, "redeploy.verify.malformed");
    // untrusted_source beats pin_mismatch
    let mut s = pinned(&format!("sha256:{}", "0".repeat(64)), None);
    s.labels
        .insert(SOURCE.into(), "https://github.com/molecule-ai/app".into());
    assert_eq!(judge(&s).decided.event, "redeploy.verify.untrusted_source");
    // pin_mismatch beats unresolved
    let s = pinned(&format!("sha256:{}", "0".repeat(64)), None);
    let v = judge_with(&s, Mode::Enforce, &*Scripted::new(Answer::not_found("no")));
    assert_eq!(v.decided.event, "redeploy.verify.pin_mismatch");
    // unresolved and unavailable cannot both happen: one revision.resolves finding per verdict
    let v = judge_with(&good_subject(), Mode::Enforce, &*Scripted::new(Answer::not_found("no")));
    assert_eq!(v.decided.event, "redeploy.verify.unresolved");
}

/// A guest that remembers being called: its `evaluate` sets a byte of its
/// memory, and refuses (`Err`) if the byte was already set, so an instance
/// used twice cannot pass for a fresh one. It asks one question when it is
/// not given an answer; `resume` decides `ONE_FINDING` if the byte is set
/// (it is in the instance `evaluate` ran in) and refuses otherwise. Fresh
/// instances give: the answer at hand, `ONE_FINDING` (`resume`, in the same
/// instance); the answer awaited, `ZERO` (a new instance's `evaluate`,
/// given the answer).
fn remembering_guest() -> Policy {
    use provgate_testkit::wat_guest::{ASK_ONE, FAILED, ONE_FINDING, SCRATCH, hostile, returning};
    // The last byte of the scratch area, which no prepared area uses.
    let mark = SCRATCH + 383;
    let evaluate = format!(
        "(if (i32.load8_u (i32.const {mark})) (then {failed}))
         (i32.store8 (i32.const {mark}) (i32.const 1))
         (if (i32.eqz (i32.load (i32.add (local.get $args) (i32.const 88)))) (then {ask}))",
        failed = returning(FAILED),
        ask = returning(ASK_ONE),
    );
    let resume = format!(
        "(if (i32.load8_u (i32.const {mark})) (then {decided})) {failed}",
        decided = returning(ONE_FINDING),
        failed = returning(FAILED),
    );
    let bytes = hostile(&evaluate, &resume, "");
    let artifact = Artifact::from_bytes(Cow::Owned(bytes), Origin::File("remembering.wasm".into()));
    Policy::load(artifact, Limits::default(), None).expect("the remembering guest loads")
}

#[test]
fn each_evaluation_is_a_fresh_instance_with_no_memory_of_the_last() {
    use provgate::judge::judge;
    let guest = remembering_guest();
    let run = |answers: &Scripted| {
        block_on(judge(&guest, &good_subject(), Mode::Enforce, now(), answers))
            .unwrap_or_else(|e| panic!("the guest found itself in a used instance: {e}"))
    };
    let at_hand = Scripted::found();
    let waited = Scripted::waited(Answer::Found);
    for round in 0..3 {
        // The control: within one instance the guest does remember, so a
        // reused instance would be caught.
        let decision = run(&at_hand);
        assert_eq!(decision.instances, 1, "round {round}");
        assert_eq!(
            decision.verdict.decided.event, "redeploy.verify.malformed",
            "round {round}"
        );
        // Awaited, the answer goes to a new instance, which has not seen
        // the first one's call.
        let decision = run(&waited);
        assert_eq!(decision.instances, 2, "round {round}");
        assert_eq!(
            decision.verdict.decided.event, "redeploy.verify.unlabeled",
            "round {round}"
        );
    }
    assert_eq!(at_hand.asked().len(), 3);
    assert_eq!(waited.asked().len(), 3);

    // And the built-in policy decides alike and asks again each time: no
    // answer is kept between verdicts.
    let found = Scripted::found();
    let first = judge_with(&good_subject(), Mode::Enforce, &*found);
    let _ = judge_with(
        &without_label(SOURCE),
        Mode::Enforce,
        &*Scripted::new(Answer::not_found("x")),
    );
    let again = judge_with(&good_subject(), Mode::Enforce, &*found);
    assert_eq!(first, again);
    assert_eq!(
        found.asked().len(),
        2,
        "the second verdict asked again instead of reusing state"
    );
}
