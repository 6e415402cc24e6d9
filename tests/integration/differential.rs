//! The wasm guest and the native build of the same rules never disagree.
//!
//! Every generated case is judged twice: by the shipped policy artifact,
//! through the host's pipeline (`provgate::judge`, a fresh sandbox per
//! verdict, the way `provgate verify` judges), and by
//! `provgate_guest::evaluate` compiled for the machine running the tests.
//! Status, allowed, event and every finding (rule, outcome, message, in
//! order) must be identical, and so must the questions each side asked and
//! the answers it was given. A fake forge answers as a pure function of the
//! case and the question, so both sides hear the same; it may say the
//! repository moved (Gitea's rename redirect), and then answers a question
//! asked at the new place as the case scripts.
//!
//! The generators lean on near misses: values one character, one digit, one
//! script or one second away from what a rule accepts, with fully random
//! strings mixed in as a minority. `PROPTEST_CASES=N` (default 1024) gives
//! each property N cases, the near-miss one 2N, the fully random one N/2,
//! the at-hand-or-awaited one N/4 and the megabyte one N/16.
//!
//! Native code is the guest's own source, so the two can only disagree on
//! what compiling, the sandbox or the boundary change, never on what a rule
//! means. Every case is therefore judged a third time, by the independent
//! twin: the rules of docs/reference.md §3–4 stated in Rego
//! (`policies/provenance.rego`) and run under regorus, with the artifact's
//! own settings as `data.settings` and the same fake forge behind its
//! `commit_exists` (moves included). Its per-rule outcomes (in order),
//! status, allowed and event, and the questions it asked with the answers it
//! heard, must equal the shipped component's, less what a known guest
//! departure from the reference leaves out (`Departure`, each one a reported
//! guest bug). The twin builds no messages.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence, TestCaseError, TestRunner};
use provgate::judge::Decision;
use provgate::lookup::{Answer, Answering, Answers, Question};
use provgate::policy::{Artifact, Limits, Origin, Policy, cache::CodeCache};
use provgate::subject::{Pin, Subject};
use provgate::verdict::Mode;
use provgate_contract::slot;
use provgate_guest::model::{self, CommitAnswer};
use provgate_guest::settings::Settings;
use provgate_guest::url::is_plain_name;
use provgate_testkit::{CREATED, DIGEST, REVISION, RUN_ID, SHA, SOURCE};

/// The clock of the rule tests (2026-11-23T10:00:00Z); most cases sit near it.
const NOW_SECS: i64 = 1_795_428_000;

// ---------------------------------------------------------------------------
// The two policies under test.

/// Where a source label must point for one set of settings.
struct Target {
    scheme: &'static str,
    host: &'static str,
    /// Spellings of the port that name the configured one.
    ports: &'static [&'static str],
    owners: &'static [&'static str],
}

/// The built-in artifact: `policies/molecule.json`.
static BUILTIN: Target = Target {
    scheme: "https",
    host: "git.moleculesai.app",
    ports: &["", ":443"],
    owners: &["molecule-ai"],
};

/// The same compiled rules with the other branch of every setting: plain
/// http on an explicit port, two owners, no skew, `on_unavailable: allow`.
const OTHER_SETTINGS: &str = r#"{"gitea_base_url": "http://gitea.internal.example:3000",
    "allowed_owners": ["molecule-ai", "Platform.Team"], "created_max_skew_seconds": 0, "on_unavailable": "allow"}"#;

/// Where a source label must point under [`OTHER_SETTINGS`].
static OTHER: Target = Target {
    scheme: "http",
    host: "gitea.internal.example",
    ports: &[":3000"],
    owners: &["molecule-ai", "Platform.Team"],
};

/// A loaded policy and the settings its slot holds, parsed natively and as
/// the JSON the Rego twin reads.
struct UnderTest {
    policy: &'static Policy,
    settings: Settings,
    settings_json: String,
}

fn settings_of(artifact: &Artifact) -> Settings {
    Settings::parse(slot::read(&artifact.bytes).expect("the artifact has a settings slot"))
        .expect("the artifact's settings parse natively")
}

fn settings_json_of(artifact: &Artifact) -> String {
    let json = slot::read(&artifact.bytes).expect("the artifact has a settings slot");
    String::from_utf8(json.to_vec()).expect("the settings slot holds UTF-8 JSON")
}

fn builtin() -> &'static UnderTest {
    static UT: OnceLock<UnderTest> = OnceLock::new();
    UT.get_or_init(|| {
        let policy = provgate_testkit::policy();
        UnderTest {
            settings: settings_of(policy.artifact()),
            settings_json: settings_json_of(policy.artifact()),
            policy,
        }
    })
}

fn other() -> &'static UnderTest {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    static UT: OnceLock<UnderTest> = OnceLock::new();
    UT.get_or_init(|| {
        let canonical = slot::canonical(OTHER_SETTINGS.as_bytes()).expect("OTHER_SETTINGS is JSON");
        let bytes = slot::write(&Artifact::builtin().bytes, &canonical).expect("the settings fit the slot");
        let artifact = Artifact::from_bytes(
            Cow::Owned(bytes),
            Origin::File(PathBuf::from("differential-other-settings.wasm")),
        );
        let policy = POLICY.get_or_init(|| {
            Policy::load(
                artifact,
                Limits::default(),
                Some(&CodeCache::new(provgate_testkit::cache_dir())),
            )
            .expect("the built-in rules load with OTHER's settings")
        });
        UnderTest {
            settings: settings_of(policy.artifact()),
            settings_json: settings_json_of(policy.artifact()),
            policy,
        }
    })
}

// ---------------------------------------------------------------------------
// One case, the fake forge, and the two evaluations.

/// What the fake forge answers; a pure function of this and the question.
#[derive(Clone, Debug)]
enum Forge {
    Found,
    NotFound(String),
    Unavailable(String),
    /// Found for repository `app` and SHAs ending in an even hex digit,
    /// not found for other SHAs, unavailable for other repositories.
    Picky,
    /// The repository moved to `owner/repo`: a question asked there is
    /// answered as `there` answers it, any other says it moved.
    Moved {
        owner: String,
        repo: String,
        there: Box<Forge>,
    },
}

impl Forge {
    fn answer(&self, q: &Question) -> Answer {
        match self {
            Forge::Found => Answer::Found,
            Forge::NotFound(why) => Answer::not_found(why.clone()),
            Forge::Unavailable(why) => Answer::unavailable(why.clone()),
            Forge::Picky if q.repo != "app" => Answer::unavailable(format!("HTTP 503 for {}", q.repo)),
            Forge::Picky if q.sha.ends_with(['0', '2', '4', '6', '8', 'a', 'c', 'e']) => Answer::Found,
            Forge::Picky => Answer::not_found(format!("Gitea: 404 commit {} not found", q.sha)),
            Forge::Moved { owner, repo, there } if q.owner == *owner && q.repo == *repo => there.answer(q),
            Forge::Moved { owner, repo, .. } => Answer::moved(owner, repo),
        }
    }
}

/// Whether the host has the forge's answers at hand (a cache hit: the
/// guest goes on in the same instance) or must await them (the instance is
/// dropped and a fresh one starts with the answers supplied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pace {
    AtHand,
    Awaited,
}

/// The host-side answers: from a [`Forge`], at the case's pace, and
/// remembering every question the pipeline asked.
struct FakeForge {
    forge: Forge,
    pace: Pace,
    asked: Mutex<Vec<Question>>,
}

impl FakeForge {
    fn give(&self, q: &Question) -> Answer {
        self.asked.lock().expect("question log lock").push(q.clone());
        self.forge.answer(q)
    }
}

impl Answers for FakeForge {
    fn at_hand(&self, q: &Question) -> Option<Answer> {
        (self.pace == Pace::AtHand).then(|| self.give(q))
    }

    fn answer<'a>(&'a self, q: &'a Question) -> Answering<'a> {
        Box::pin(std::future::ready(self.give(q)))
    }
}

#[derive(Clone, Debug)]
struct Case {
    subject: Subject,
    mode: Mode,
    now: SystemTime,
    forge: Forge,
}

/// Everything one side decided, in comparable form.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Judged {
    status: String,
    allowed: bool,
    event: String,
    /// (rule, outcome, message), in verdict order.
    findings: Vec<(String, String, String)>,
    /// The questions asked and the answers given, in the order asked.
    asked: Vec<(Question, Answer)>,
}

/// The host pipeline's whole decision on `case`, with the forge at `pace`.
/// Checks that the pipeline asked the forge each question the guest was
/// given an answer to, once, in order.
fn host_decision(ut: &UnderTest, case: &Case, pace: Pace) -> Result<Decision, String> {
    let forge = FakeForge {
        forge: case.forge.clone(),
        pace,
        asked: Mutex::new(Vec::new()),
    };
    let decision = provgate_testkit::block_on(provgate::judge::judge(
        ut.policy,
        &case.subject,
        case.mode,
        case.now,
        &forge,
    ))
    .map_err(|e| e.to_string())?;
    let heard = forge.asked.into_inner().expect("question log lock");
    let given: Vec<&Question> = decision.answers.iter().map(|a| &a.question).collect();
    if given != heard.iter().collect::<Vec<_>>() {
        return Err(format!(
            "the forge was asked {heard:?}, the guest was given answers to {given:?}"
        ));
    }
    Ok(decision)
}

fn guest_judged(ut: &UnderTest, case: &Case) -> Result<Judged, String> {
    let decision = host_decision(ut, case, Pace::AtHand)?;
    let decided = decision.verdict.decided;
    Ok(Judged {
        status: decided.status.as_str().into(),
        allowed: decided.allowed,
        event: decided.event.into_owned(),
        findings: decided
            .findings
            .into_iter()
            .map(|f| (f.rule.into_owned(), f.outcome.as_str().into(), f.message))
            .collect(),
        asked: decision.answers.into_iter().map(|a| (a.question, a.answer)).collect(),
    })
}

/// The same subject in the guest's own types, converted the way the host's
/// sandbox converts it (labels in map order, the clock split the same way).
fn native_subject(case: &Case) -> model::Subject {
    let s = &case.subject;
    let since_epoch = case.now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    model::Subject {
        reference: s.reference.clone(),
        digest: s.digest.clone(),
        labels: s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        pin: s.pin.as_ref().map(|p| model::Pin {
            runtime: p.runtime.clone(),
            digest: p.digest.clone(),
            source_sha: p.source_sha.clone(),
        }),
        now: model::Instant {
            seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
            nanoseconds: since_epoch.subsec_nanos(),
        },
    }
}

/// The host's answer as the guest's rules take it (what the sandbox lowers).
fn commit_answer(answer: &Answer) -> CommitAnswer {
    match answer {
        Answer::Found => CommitAnswer::Found,
        Answer::NotFound { reason } => CommitAnswer::NotFound(reason.clone()),
        Answer::Unavailable { reason } => CommitAnswer::Unavailable(reason.clone()),
        Answer::Moved { moved_to } => CommitAnswer::Moved {
            owner: moved_to.owner.clone(),
            repo: moved_to.repo.clone(),
        },
    }
}

fn native_judged(ut: &UnderTest, case: &Case) -> Judged {
    let mode = match case.mode {
        Mode::Enforce => model::Mode::Enforce,
        Mode::LogOnly => model::Mode::LogOnly,
    };
    let mut asked = Vec::new();
    let mut lookup = |q: &model::Question| {
        let question = Question::new(&q.owner, &q.repo, &q.sha);
        let answer = case.forge.answer(&question);
        let given = commit_answer(&answer);
        asked.push((question, answer));
        given
    };
    let v = provgate_guest::evaluate(&ut.settings, &native_subject(case), mode, &mut lookup);
    let status = match v.status {
        model::Status::Verified => "verified",
        model::Status::Rejected => "rejected",
        model::Status::Indeterminate => "indeterminate",
    };
    Judged {
        status: status.into(),
        allowed: v.allowed,
        event: v.event.as_str().into(),
        findings: v
            .findings
            .into_iter()
            .map(|f| (f.rule.as_str().into(), native_outcome(f.outcome).into(), f.message))
            .collect(),
        asked,
    }
}

fn native_outcome(o: model::Outcome) -> &'static str {
    match o {
        model::Outcome::Pass => "pass",
        model::Outcome::Fail => "fail",
        model::Outcome::Indeterminate => "indeterminate",
        model::Outcome::Skipped => "skipped",
    }
}

/// `Ok` when both sides decided the same; otherwise the first difference.
fn compare(guest: &Judged, native: &Judged) -> Result<(), String> {
    if guest.status != native.status {
        return Err(format!("status: guest {:?}, native {:?}", guest.status, native.status));
    }
    if guest.allowed != native.allowed {
        return Err(format!("allowed: guest {}, native {}", guest.allowed, native.allowed));
    }
    if guest.event != native.event {
        return Err(format!("event: guest {:?}, native {:?}", guest.event, native.event));
    }
    for (i, (g, n)) in guest.findings.iter().zip(&native.findings).enumerate() {
        if g != n {
            return Err(format!("finding {i}: guest {g:?}, native {n:?}"));
        }
    }
    if guest.findings.len() != native.findings.len() {
        return Err(format!(
            "number of findings: guest {}, native {}",
            guest.findings.len(),
            native.findings.len()
        ));
    }
    if guest.asked != native.asked {
        return Err(format!(
            "questions and answers: guest {:?}, native {:?}",
            guest.asked, native.asked
        ));
    }
    Ok(())
}

/// The property: both sides judge the case identically, and the Rego twin
/// decides what the guest decided.
fn agree(ut: &UnderTest, case: &Case) -> Result<(), TestCaseError> {
    let guest = guest_judged(ut, case)
        .map_err(|e| TestCaseError::fail(format!("the guest failed to judge a case native code judged: {e}")))?;
    let native = native_judged(ut, case);
    compare(&guest, &native).map_err(|diff| {
        TestCaseError::fail(format!(
            "guest and native disagree on {diff}\nguest:  {guest:#?}\nnative: {native:#?}"
        ))
    })?;
    twin_agrees(ut, case, &guest)
}

/// The property: the pipeline's verdict JSON and answers are byte for byte
/// the same whether the answers were at hand (one instance, resumed) or
/// awaited (a fresh instance per round, the answers supplied), and the
/// awaited path did start a fresh instance for every round of questions.
fn pace_does_not_matter(ut: &UnderTest, case: &Case) -> Result<(), TestCaseError> {
    let fail = |what: &str, e: String| TestCaseError::fail(format!("{what}: {e}"));
    let at_hand = host_decision(ut, case, Pace::AtHand).map_err(|e| fail("answers at hand", e))?;
    let awaited = host_decision(ut, case, Pace::Awaited).map_err(|e| fail("answers awaited", e))?;
    let json = |d: &Decision| {
        let verdict = serde_json::to_string(&d.verdict).expect("a verdict serialises");
        let answers = serde_json::to_string(&d.answers).expect("answers serialise");
        (verdict, answers)
    };
    let (at_hand_json, awaited_json) = (json(&at_hand), json(&awaited));
    prop_assert_eq!(&at_hand_json.0, &awaited_json.0, "verdict JSON, at hand vs awaited");
    prop_assert_eq!(&at_hand_json.1, &awaited_json.1, "answers JSON, at hand vs awaited");
    // One question per round in these rules: one more instance per answer.
    let rounds = u32::try_from(awaited.answers.len()).expect("a few answers");
    prop_assert_eq!(at_hand.instances, 1, "answers at hand took more than one instance");
    prop_assert_eq!(
        awaited.instances,
        1 + rounds,
        "awaited answers: one fresh instance per round"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// The independent twin: the rules in Rego, under regorus.

/// The Rego statement of docs/reference.md §3–4, shared with the peer bench.
const TWIN_POLICY: &str = include_str!("../../policies/provenance.rego");

/// What the twin's `commit_exists` answers from, and what it was asked.
#[derive(Default)]
struct TwinForge {
    forge: Option<Forge>,
    asked: Vec<(Question, Answer)>,
}

/// One regorus engine with the twin loaded under one set of settings.
struct Twin {
    engine: regorus::Engine,
    forge: Arc<Mutex<TwinForge>>,
}

/// An answer as `commit_exists` returns it.
fn answer_value(answer: &Answer) -> serde_json::Value {
    match answer {
        Answer::Moved { moved_to } => {
            serde_json::json!({"kind": "moved", "owner": moved_to.owner, "repo": moved_to.repo})
        }
        other => serde_json::json!({"kind": other.kind()}),
    }
}

fn rego_value(json: &serde_json::Value) -> regorus::Value {
    regorus::Value::from_json_str(&json.to_string()).expect("JSON converts to a Rego value")
}

impl Twin {
    fn new(settings_json: &str) -> Twin {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("policies/provenance.rego".into(), TWIN_POLICY.into())
            .expect("the Rego twin parses");
        let settings: serde_json::Value = serde_json::from_str(settings_json).expect("the settings are JSON");
        engine
            .add_data(rego_value(&serde_json::json!({ "settings": settings })))
            .expect("the settings load as data");
        let forge = Arc::new(Mutex::new(TwinForge::default()));
        let answering = Arc::clone(&forge);
        engine
            .add_extension(
                "commit_exists".into(),
                3,
                Box::new(move |args: Vec<regorus::Value>| {
                    let arg = |i: usize| args[i].as_string().map(|s| s.to_string());
                    let question = Question::new(&arg(0)?, &arg(1)?, &arg(2)?);
                    let mut f = answering.lock().expect("twin forge lock");
                    let answer = f.forge.as_ref().expect("a case's forge is set").answer(&question);
                    let value = rego_value(&answer_value(&answer));
                    f.asked.push((question, answer));
                    Ok(value)
                }),
            )
            .expect("commit_exists is new");
        Twin { engine, forge }
    }

    /// The twin's decision on `case`; messages are the guest's business.
    fn judge(&mut self, case: &Case) -> Result<Judged, String> {
        *self.forge.lock().expect("twin forge lock") = TwinForge {
            forge: Some(case.forge.clone()),
            asked: Vec::new(),
        };
        self.engine.set_input(rego_value(&twin_input(case)));
        let verdict = self
            .engine
            .eval_rule("data.provgate.verdict".into())
            .map_err(|e| format!("regorus: {e}"))?;
        let asked = std::mem::take(&mut self.forge.lock().expect("twin forge lock").asked);
        let json: serde_json::Value =
            serde_json::from_str(&verdict.to_json_str().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let text = |v: &serde_json::Value, key: &str| {
            v[key]
                .as_str()
                .map(String::from)
                .ok_or_else(|| format!("the twin's {key} is not a string: {json}"))
        };
        let findings = json["findings"]
            .as_array()
            .ok_or_else(|| format!("the twin has no findings: {json}"))?
            .iter()
            .map(|f| Ok((text(f, "rule")?, text(f, "outcome")?, String::new())))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Judged {
            status: text(&json, "status")?,
            allowed: json["allowed"]
                .as_bool()
                .ok_or_else(|| format!("the twin's allowed is not a boolean: {json}"))?,
            event: text(&json, "event")?,
            findings,
            asked,
        })
    }
}

/// The case as the twin's `input`: the subject, the clock split as the
/// sandbox splits it, the mode.
fn twin_input(case: &Case) -> serde_json::Value {
    let s = &case.subject;
    let native = native_subject(case);
    let pin = s.pin.as_ref().map(|p| {
        let mut pin = serde_json::Map::new();
        if let Some(d) = &p.digest {
            pin.insert("digest".into(), d.clone().into());
        }
        if let Some(sha) = &p.source_sha {
            pin.insert("source_sha".into(), sha.clone().into());
        }
        serde_json::Value::Object(pin)
    });
    serde_json::json!({
        "reference": s.reference,
        "digest": s.digest,
        "labels": s.labels,
        "pin": pin,
        "now": {"seconds": native.now.seconds, "nanoseconds": native.now.nanoseconds},
        "mode": match case.mode {
            Mode::Enforce => "enforce",
            Mode::LogOnly => "log-only",
        },
    })
}

/// The twin's decision on `case` under `ut`'s settings (one engine per
/// thread and settings: regorus values are not `Send`).
fn twin_judged(ut: &UnderTest, case: &Case) -> Result<Judged, String> {
    thread_local! {
        static TWINS: RefCell<Vec<(String, Twin)>> = const { RefCell::new(Vec::new()) };
    }
    TWINS.with_borrow_mut(|twins| {
        let at = match twins.iter().position(|(json, _)| *json == ut.settings_json) {
            Some(at) => at,
            None => {
                twins.push((ut.settings_json.clone(), Twin::new(&ut.settings_json)));
                twins.len() - 1
            }
        };
        twins[at].1.judge(case)
    })
}

/// Where the shipped guest departs from docs/reference.md, as this twin
/// found it: what the comparison leaves out for the cases concerned. Each
/// one is a guest bug that was reported, not fixed here (the guest is not
/// this file's); delete its entry once the guest is fixed, and the twin's
/// comparison covers those cases again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Departure {
    /// A pin whose `source_sha` is present but blank (`--pin-source-sha ""`,
    /// `"source_sha": ""` in a serve request). The guest treats it as no
    /// source_sha, so a pin naming only it passes pin.consistent without
    /// comparing anything; §7.2 says a pin value is judged and a malformed
    /// one fails a rule. pin.consistent's outcome, and with it status,
    /// allowed and event, are left out.
    BlankPinSourceSha,
    /// A pin whose non-blank `source_sha` meets no revision label (missing
    /// or blank): the guest says pin.consistent passes, though §3 wants the
    /// given source_sha to equal the revision. Only pin.consistent's outcome
    /// is left out: labels.present fails in these cases, so the decision is
    /// the same either way and still compared.
    PinShaWithoutRevision,
}

impl Departure {
    fn of(case: &Case) -> Option<Departure> {
        let sha = case.subject.pin.as_ref()?.source_sha.as_deref()?;
        let revision = case.subject.labels.get(REVISION).filter(|r| !r.trim().is_empty());
        if sha.trim().is_empty() {
            Some(Departure::BlankPinSourceSha)
        } else if revision.is_none() {
            Some(Departure::PinShaWithoutRevision)
        } else {
            None
        }
    }

    /// The one rule whose outcome is left out.
    fn rule(self) -> &'static str {
        "pin.consistent"
    }

    /// Whether status, allowed and event are left out too.
    fn decision_too(self) -> bool {
        self == Departure::BlankPinSourceSha
    }
}

/// `Ok` when the twin decided what the guest decided: status, allowed,
/// event, every rule's outcome in order, the questions and their answers,
/// less what a known [`Departure`] leaves out. Messages are not compared.
fn compare_twin(guest: &Judged, twin: &Judged, departure: Option<Departure>) -> Result<(), String> {
    let outcomes = |d: &Judged| -> Vec<(String, String)> {
        d.findings
            .iter()
            .map(|(rule, outcome, _)| (rule.clone(), outcome.clone()))
            .collect()
    };
    let (g, t) = (outcomes(guest), outcomes(twin));
    for (i, (g, t)) in g.iter().zip(&t).enumerate() {
        let left_out = departure.is_some_and(|d| g.0 == d.rule() && t.0 == d.rule());
        if g != t && !left_out {
            return Err(format!("finding {i}: guest {g:?}, twin {t:?}"));
        }
    }
    if g.len() != t.len() {
        return Err(format!("number of findings: guest {}, twin {}", g.len(), t.len()));
    }
    if guest.asked != twin.asked {
        return Err(format!(
            "questions and answers: guest {:?}, twin {:?}",
            guest.asked, twin.asked
        ));
    }
    if departure.is_some_and(Departure::decision_too) {
        return Ok(());
    }
    if guest.status != twin.status {
        return Err(format!("status: guest {:?}, twin {:?}", guest.status, twin.status));
    }
    if guest.allowed != twin.allowed {
        return Err(format!("allowed: guest {}, twin {}", guest.allowed, twin.allowed));
    }
    if guest.event != twin.event {
        return Err(format!("event: guest {:?}, twin {:?}", guest.event, twin.event));
    }
    Ok(())
}

/// The property's third leg: the Rego twin decides what the guest decided.
fn twin_agrees(ut: &UnderTest, case: &Case, guest: &Judged) -> Result<(), TestCaseError> {
    let twin = twin_judged(ut, case).map_err(|e| TestCaseError::fail(format!("the Rego twin failed: {e}")))?;
    compare_twin(guest, &twin, Departure::of(case)).map_err(|diff| {
        TestCaseError::fail(format!(
            "the guest and the Rego twin disagree on {diff}\nsubject: {:#?}\nnow: {:?}, mode: {:?}, forge: {:?}\nguest: {guest:#?}\ntwin:  {twin:#?}",
            case.subject, case.now, case.mode, case.forge
        ))
    })
}

// ---------------------------------------------------------------------------
// Near-miss material.

/// Characters that sit next to what the rules accept: white space and
/// controls (incl. NUL, Unicode spaces, bidi override), digits of other
/// scripts, look-alike letters, URL punctuation, and plain hex.
const TRICKY: &[char] = &[
    '\0', '\t', '\n', '\r', ' ', '\u{b}', '\u{c}', '\u{1b}', '\u{7f}', '\u{85}', '\u{a0}', '\u{2003}', '\u{2028}',
    '\u{200b}', '\u{200d}', '\u{feff}', '\u{202e}', '٣', '۳', '３', '३', '৩', '𝟑', 'Ａ', 'ａ', 'ᴀ', 'а', 'е', 'о', 'і',
    'ѕ', 'ı', 'ſ', 'K', 'é', 'ß', '/', '\\', '.', ':', '@', '%', '?', '#', '-', '_', '"', '\'', '+', 'Z', 'z', 'T',
    't', '0', '9', 'a', 'f', 'g', 'F', 'x',
];

/// Stand-ins for one hex digit: digits of other scripts and look-alikes.
const HEX_LOOKALIKES: &[char] = &[
    '٠', '٣', '۳', '０', '３', '३', '৩', '𝟑', 'ａ', 'ｆ', 'Ａ', 'а', 'е', 'с', 'ⓐ', 'A', 'F', 'g', 'x',
];

/// Blank and nearly blank values (the last three are not white space).
const BLANKS: &[&str] = &[
    "", " ", "\t", "\n", "\r\n", "\u{a0}", "\u{2003}", "\u{3000}", "\u{85}", " \t\n ", "\u{200b}", "\u{feff}", "\0",
];

/// `n` characters of `0-9a-f`.
fn hex(n: usize) -> BoxedStrategy<String> {
    prop::collection::vec(select(b"0123456789abcdef".to_vec()), n)
        .prop_map(|b| String::from_utf8(b).expect("hex is ASCII"))
        .boxed()
}

fn tricky_char() -> BoxedStrategy<char> {
    prop_oneof![4 => select(TRICKY), 1 => any::<char>()].boxed()
}

/// Any characters at all, control and unassigned-looking ones included.
fn random_string() -> BoxedStrategy<String> {
    prop::collection::vec(any::<char>(), 0..48)
        .prop_map(String::from_iter)
        .boxed()
}

/// Values that test the quoting of messages: around the 72 characters a
/// message echoes, multi-byte, or a few KiB of escape characters.
fn long_string() -> BoxedStrategy<String> {
    prop_oneof![
        (70..=74usize).prop_map(|n| "a".repeat(n)),
        (70..=74usize).prop_map(|n| "é".repeat(n)),
        (1000..4000usize).prop_map(|n| "\u{1b}".repeat(n)),
    ]
    .boxed()
}

/// A small edit that turns a good value into a near miss.
#[derive(Clone, Debug)]
enum Edit {
    Insert(Index, char),
    Replace(Index, char),
    Delete(Index),
    Truncate(Index),
    Upper(Index),
    Double,
}

fn edit() -> BoxedStrategy<Edit> {
    prop_oneof![
        3 => (any::<Index>(), tricky_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
        3 => (any::<Index>(), tricky_char()).prop_map(|(i, c)| Edit::Replace(i, c)),
        2 => any::<Index>().prop_map(Edit::Delete),
        1 => any::<Index>().prop_map(Edit::Truncate),
        2 => any::<Index>().prop_map(Edit::Upper),
        1 => Just(Edit::Double),
    ]
    .boxed()
}

fn apply(value: &str, edit: &Edit) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    let len = chars.len();
    match edit {
        Edit::Insert(i, c) => chars.insert(i.index(len + 1), *c),
        Edit::Replace(i, c) if len > 0 => chars[i.index(len)] = *c,
        Edit::Delete(i) if len > 0 => {
            chars.remove(i.index(len));
        }
        Edit::Truncate(i) => chars.truncate(i.index(len + 1)),
        Edit::Upper(i) if len > 0 => {
            let at = i.index(len);
            chars.splice(at..=at, chars[at].to_uppercase().collect::<Vec<_>>());
        }
        Edit::Double => return value.repeat(2),
        _ => {}
    }
    chars.into_iter().collect()
}

/// One or two edits of a value from `base`.
fn edited(base: BoxedStrategy<String>) -> BoxedStrategy<String> {
    (base, prop::collection::vec(edit(), 1..=2))
        .prop_map(|(v, edits)| edits.iter().fold(v, |v, e| apply(&v, e)))
        .boxed()
}

/// A value wrapped in white space or control characters.
fn padded(base: BoxedStrategy<String>) -> BoxedStrategy<String> {
    (select(BLANKS), base, select(BLANKS))
        .prop_map(|(a, v, b)| format!("{a}{v}{b}"))
        .boxed()
}

/// A value with one character swapped for a look-alike or foreign digit.
fn lookalike(base: BoxedStrategy<String>) -> BoxedStrategy<String> {
    (base, any::<Index>(), select(HEX_LOOKALIKES))
        .prop_map(|(v, i, c)| apply(&v, &Edit::Replace(i, c)))
        .boxed()
}

/// Mostly `good`, else `near` (3 : 1).
fn mostly(good: BoxedStrategy<String>, near: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop_oneof![3 => good, 1 => near].boxed()
}

/// One part of a composite value: usually the canonical spelling.
fn part(canonical: &'static str, others: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![5 => Just(canonical.to_string()), 1 => select(others).prop_map(String::from)].boxed()
}

// ---------------------------------------------------------------------------
// Field generators.

fn revision_good() -> BoxedStrategy<String> {
    prop_oneof![Just(SHA.to_string()), hex(40)].boxed()
}

fn revision_near() -> BoxedStrategy<String> {
    prop_oneof![
        3 => hex(39),
        3 => hex(41),
        2 => Just(SHA.to_uppercase()),
        2 => revision_good().prop_map(|s| s.to_uppercase()),
        2 => lookalike(revision_good()),
        2 => padded(revision_good()),
        3 => edited(revision_good()),
        1 => hex(7),
        1 => select(&["main", "HEAD", "refs/heads/main", "0x36b68ae6", "sha1:36b68ae6"][..]).prop_map(String::from),
        1 => select(BLANKS).prop_map(String::from),
        1 => long_string(),
        1 => random_string(),
    ]
    .boxed()
}

fn digest_good() -> BoxedStrategy<String> {
    prop_oneof![Just(DIGEST.to_string()), hex(64).prop_map(|h| format!("sha256:{h}"))].boxed()
}

fn digest_near() -> BoxedStrategy<String> {
    let hex64 = || hex(64);
    prop_oneof![
        2 => hex(63).prop_map(|h| format!("sha256:{h}")),
        2 => hex(65).prop_map(|h| format!("sha256:{h}")),
        2 => digest_good().prop_map(|d| d.to_uppercase()),
        2 => hex64().prop_map(|h| format!("sha256:{}", h.to_uppercase())),
        1 => hex64().prop_map(|h| format!("SHA256:{h}")),
        1 => hex(128).prop_map(|h| format!("sha512:{h}")),
        1 => hex(96).prop_map(|h| format!("sha384:{h}")),
        1 => hex64().prop_map(|h| format!("sha256-{h}")),
        1 => hex64().prop_map(|h| format!("sha256::{h}")),
        1 => hex64(),
        2 => lookalike(digest_good()),
        2 => padded(digest_good()),
        3 => edited(digest_good()),
        1 => select(&["", "sha256:", "sha256", ":", "@sha256:abc"][..]).prop_map(String::from),
        1 => random_string(),
    ]
    .boxed()
}

/// An RFC 3339 value relative to the case's clock, or a literal.
#[derive(Clone, Debug)]
enum Created {
    Literal(String),
    Relative {
        delta: i64,
        lower_t: bool,
        fraction: &'static str,
        zone: &'static str,
    },
}

impl Created {
    fn render(&self, now_seconds: i64) -> String {
        match self {
            Created::Literal(s) => s.clone(),
            Created::Relative {
                delta,
                lower_t,
                fraction,
                zone,
            } => {
                let utc = provgate_guest::rfc3339::format_utc(now_seconds.saturating_add(*delta));
                let mut s = utc.strip_suffix('Z').expect("format_utc ends in Z").to_string();
                if *lower_t {
                    s = s.replacen('T', "t", 1);
                }
                format!("{s}{fraction}{zone}")
            }
        }
    }
}

fn created_relative(fractions: &'static [&'static str], zones: &'static [&'static str]) -> BoxedStrategy<Created> {
    let delta = prop_oneof![
        4 => -400_000_000i64..=0,
        2 => -3i64..=3,
        3 => 295i64..=305,
        1 => 3_500i64..=3_700,
        1 => any::<i64>(),
    ];
    (delta, any::<bool>(), select(fractions), select(zones))
        .prop_map(|(delta, lower_t, fraction, zone)| Created::Relative {
            delta,
            lower_t,
            fraction,
            zone,
        })
        .boxed()
}

fn created_good() -> BoxedStrategy<Created> {
    prop_oneof![
        3 => created_relative(&["", ".5", ".000000001", ".999999999"], &["Z", "z", "+00:00", "-00:00", "+02:00"]),
        1 => Just(Created::Literal("2026-11-01T10:00:00Z".into())),
    ]
    .boxed()
}

fn created_literal_near() -> BoxedStrategy<String> {
    let date = (
        prop_oneof![
            5 => Just("2026".to_string()),
            2 => (0u32..=9999).prop_map(|y| format!("{y:04}")),
            2 => select(&["0000", "0001", "1969", "1970", "2024", "9999", "10000", "999", "２０２６", "+2026"][..])
                .prop_map(String::from),
        ],
        part("11", &["01", "02", "12", "00", "13", "1", "٠١"]),
        part("01", &["28", "29", "30", "31", "00", "32", "1"]),
    );
    let time = (
        part("T", &["t", " ", "_", "TT", ""]),
        part("10", &["00", "23", "24", "1"]),
        part("00", &["59", "60"]),
        part("00", &["59", "60", "61", "6"]),
        part(
            "",
            &[
                ".5",
                ".000000001",
                ".123456789123",
                ".",
                ".9999999999",
                ",5",
                ".５",
                ".-1",
            ],
        ),
        part(
            "Z",
            &[
                "z", "", "+00:00", "-00:00", "+02:00", "-02:00", "+23:59", "-23:59", "+24:00", "+00:60", "+0200",
                "+02", "Z ", "ZZ", " Z", "UTC", "+02:00Z", "Z\n", "Z\0",
            ],
        ),
    );
    prop_oneof![
        6 => (date, time).prop_map(|((y, mo, d), (t, h, mi, s, f, z))| format!("{y}-{mo}-{d}{t}{h}:{mi}:{s}{f}{z}")),
        2 => edited(Just("2026-11-01T10:00:00Z".to_string()).boxed()),
        1 => padded(Just("2026-11-01T10:00:00Z".to_string()).boxed()),
        1 => select(&["1795428000", "2026-11-01", "2026-11-01T10:00Z", "Sun, 01 Nov 2026 10:00:00 GMT"][..])
            .prop_map(String::from),
        1 => long_string(),
        1 => random_string(),
    ]
    .boxed()
}

fn created_near() -> BoxedStrategy<Created> {
    prop_oneof![
        3 => created_literal_near().prop_map(Created::Literal),
        // Right at the skew boundary, with zones that move it by a minute.
        2 => created_relative(&["", ".000000001", ".999999999"], &["Z", "+00:01", "-00:01", "+00:00"]),
    ]
    .boxed()
}

fn run_id_good() -> BoxedStrategy<String> {
    prop_oneof![
        Just("4242".to_string()),
        (1..=i64::MAX).prop_map(|n| n.to_string()),
        Just(i64::MAX.to_string()),
        Just("1".to_string()),
    ]
    .boxed()
}

fn run_id_near() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(&[
            "0", "00", "007", "0042", "-1", "+1", "-0", "9223372036854775808", "18446744073709551615",
            "18446744073709551616", "99999999999999999999999999", "1e3", "1.0", "4_242", "0x10", "٤٢", "４２", "4٢",
            "४२", "",
        ][..])
        .prop_map(String::from),
        2 => ((i64::MAX as u64 + 1)..=u64::MAX).prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => prop::collection::vec(select(b"0123456789".to_vec()), 1..26)
            .prop_map(|d| String::from_utf8(d).expect("digits are ASCII")),
        2 => padded(run_id_good()),
        2 => edited(run_id_good()),
        1 => random_string(),
    ]
    .boxed()
}

fn repo_name() -> BoxedStrategy<String> {
    prop_oneof![
        3 => Just("app".to_string()),
        1 => prop::collection::vec(
            select(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.".to_vec()),
            1..13,
        )
        .prop_map(|b| String::from_utf8(b).expect("name is ASCII")),
    ]
    .boxed()
}

/// Sources that name the target in one of its accepted spellings.
fn source_good(t: &'static Target) -> BoxedStrategy<String> {
    let host = prop_oneof![
        4 => Just(t.host.to_string()),
        1 => Just(t.host.to_uppercase()),
        1 => Just(t.host.replacen(|c: char| c.is_ascii_lowercase(), "G", 1)),
    ];
    (
        host,
        select(t.ports),
        select(t.owners),
        repo_name(),
        select(&["", ".git", "/"][..]),
    )
        .prop_map(move |(host, port, owner, repo, suffix)| {
            format!("{}://{host}{port}/{owner}/{repo}{suffix}", t.scheme)
        })
        .boxed()
}

/// Sources built from parts, each usually canonical and sometimes a near
/// miss: scheme, user-info, host (case, IDN, look-alikes, suffixes), port,
/// path shape, owner, repository and what follows it.
fn source_composed(t: &'static Target) -> BoxedStrategy<String> {
    let scheme = prop_oneof![
        5 => Just(t.scheme.to_string()),
        1 => select(&["https", "http", "HTTPS", "Https", "ssh", "git", "git+https", "", "https:"][..]).prop_map(String::from),
    ];
    let authority = (
        part("://", &[":/", ":///", ":\\\\", "//", ":", "://:"]),
        part(
            "",
            &["user@", "user:pass@", "@", "molecule-ai@", "git@", "user@evil.example@"],
        ),
        prop_oneof![
            5 => Just(t.host.to_string()),
            1 => Just(t.host.to_uppercase()),
            2 => select(&[
                "git.moleculesai.app", "gitea.internal.example", "git.moleculesai.app.", ".git.moleculesai.app",
                "git.moleculesai.app.evil.example", "evil.example", "git.moleculesai.ap", "git-moleculesai.app",
                "xn--git-moleculesai-9kb.app", "xn--gt-moleculesai-yub.app", "gіt.moleculesai.app",
                "git.moleculesaі.app", "ｇｉｔ.moleculesai.app", "git.moleculesai.app%2e", "127.0.0.1", "[::1]",
                "localhost", "", "-git.moleculesai.app", "git..moleculesai.app",
            ][..])
            .prop_map(String::from),
        ],
        prop_oneof![
            4 => select(t.ports).prop_map(String::from),
            2 => select(&[
                "", ":443", ":0", ":80", ":3000", ":8443", ":", ":0443", ":00443", ":443443", ":65535", ":65536",
                ":99999", ":-443", ": 443", ":４４３", ":03000",
            ][..])
            .prop_map(String::from),
        ],
    );
    let path = (
        part("/", &["//", "/./", "/../", "\\", "/%2F", ""]),
        prop_oneof![
            5 => select(t.owners).prop_map(String::from),
            1 => select(&[
                "Molecule-AI", "MOLECULE-AI", "molecule_ai", "molecule-ai.", "molecule-ai.git", "other-org", ".",
                "..", "", "molecule%2Dai", "molecule-aі", "molecule-ai ", "~molecule-ai", "platform.team",
            ][..])
            .prop_map(String::from),
        ],
        part("/", &["//", "\\", "/./", "%2F", "/../"]),
        prop_oneof![
            5 => repo_name(),
            1 => select(&[
                "app.git", "app.git.git", ".app", "app.", ".", "..", "", "%61pp", "app name", "ａpp", "app\0", "app.GIT",
            ][..])
            .prop_map(String::from),
        ],
        part(
            "",
            &[
                ".git",
                "/",
                ".git/",
                "//",
                "/.git",
                ".GIT",
                ".git.git",
                "/extra",
                "/tree/main",
                "/app",
                "?ref=main",
                "#readme",
                "?",
                "#",
                "/.",
                "/..",
                "/../app",
                "\\",
                "/\\",
                " ",
                "\n",
                ";",
                "/%2e%2e",
                "\u{0}",
            ],
        ),
    );
    (scheme, authority, path)
        .prop_map(|(scheme, (sep, user, host, port), (p0, owner, p1, repo, suffix))| {
            format!("{scheme}{sep}{user}{host}{port}{p0}{owner}{p1}{repo}{suffix}")
        })
        .boxed()
}

fn source_near(t: &'static Target) -> BoxedStrategy<String> {
    prop_oneof![
        6 => source_composed(t),
        2 => edited(source_good(t)),
        1 => padded(source_good(t)),
        1 => long_string(),
        1 => random_string(),
    ]
    .boxed()
}

/// How one of the four labels appears in the subject.
#[derive(Clone, Debug)]
enum Presence {
    Present,
    Absent,
    Blank(&'static str),
    /// Under a near-miss key: case, white space, `_` for `.`, a look-alike.
    Renamed(u8),
}

fn presence() -> BoxedStrategy<Presence> {
    prop_oneof![
        16 => Just(Presence::Present),
        1 => Just(Presence::Absent),
        1 => select(BLANKS).prop_map(Presence::Blank),
        1 => (0u8..5).prop_map(Presence::Renamed),
    ]
    .boxed()
}

fn renamed(key: &str, how: u8) -> String {
    match how {
        0 => {
            let mut c = key.chars();
            c.next()
                .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
        }
        1 => format!("{key} "),
        2 => format!(" {key}"),
        3 => key.replace('.', "_"),
        _ => key.replacen('o', "о", 1),
    }
}

/// The tag of the reference, which may embed (part of) a SHA.
#[derive(Clone, Debug)]
enum Tag {
    None,
    Plain(String),
    Embedded {
        prefix: &'static str,
        from: ShaFrom,
        len: usize,
        suffix: &'static str,
    },
}

#[derive(Clone, Debug)]
enum ShaFrom {
    Revision,
    UpperRevision,
    Other(String),
}

impl ShaFrom {
    fn sha(&self, revision: &str) -> String {
        match self {
            ShaFrom::Revision => revision.to_string(),
            ShaFrom::UpperRevision => revision.to_uppercase(),
            ShaFrom::Other(s) => s.clone(),
        }
    }
}

#[derive(Clone, Debug)]
struct Reference {
    name: &'static str,
    tag: Tag,
    digest: Option<String>,
}

impl Reference {
    fn render(&self, revision: &str) -> String {
        let tag = match &self.tag {
            Tag::None => String::new(),
            Tag::Plain(t) => format!(":{t}"),
            Tag::Embedded {
                prefix,
                from,
                len,
                suffix,
            } => {
                let sha: String = from.sha(revision).chars().take(*len).collect();
                format!(":{prefix}{sha}{suffix}")
            }
        };
        let digest = self.digest.as_deref().map(|d| format!("@{d}")).unwrap_or_default();
        format!("{}{tag}{digest}", self.name)
    }
}

fn reference_good() -> BoxedStrategy<Reference> {
    let tag = prop_oneof![
        4 => Just(Tag::Embedded {
            prefix: "staging-",
            from: ShaFrom::Revision,
            len: 40,
            suffix: "",
        }),
        2 => (7usize..=40).prop_map(|len| Tag::Embedded {
            prefix: "sha-",
            from: ShaFrom::Revision,
            len,
            suffix: "",
        }),
        1 => Just(Tag::None),
        1 => Just(Tag::Plain("latest".into())),
    ];
    (
        select(&["git.moleculesai.app/molecule-ai/app", "localhost:5000/molecule-ai/app"][..]),
        tag,
        prop::option::weighted(0.2, digest_good()),
    )
        .prop_map(|(name, tag, digest)| Reference { name, tag, digest })
        .boxed()
}

fn reference_near() -> BoxedStrategy<Reference> {
    let from = prop_oneof![
        4 => Just(ShaFrom::Revision),
        1 => Just(ShaFrom::UpperRevision),
        2 => hex(40).prop_map(ShaFrom::Other),
        1 => lookalike(Just(SHA.to_string()).boxed()).prop_map(ShaFrom::Other),
    ];
    let embedded = (
        select(
            &[
                "staging-",
                "sha-",
                "Staging-",
                "SHA-",
                "staging_",
                "sha",
                "staging--",
                "sha-sha-",
                "",
                "staging-sha-",
            ][..],
        ),
        from,
        prop_oneof![Just(40usize), Just(41), Just(39), Just(7), Just(6), 0usize..=42],
        select(&["", "", "", "x", "-dirty", " ", "\n", ":"][..]),
    )
        .prop_map(|(prefix, from, len, suffix)| Tag::Embedded {
            prefix,
            from,
            len,
            suffix,
        });
    let tag = prop_oneof![
        5 => embedded,
        1 => select(&["latest", "main", "v1.2.3", "staging", "sha-", "staging-", "@", ""][..])
            .prop_map(|t| Tag::Plain(t.into())),
        1 => random_string().prop_map(Tag::Plain),
    ];
    (
        select(
            &[
                "git.moleculesai.app/molecule-ai/app",
                "localhost:5000/molecule-ai/app",
                "localhost:5000",
                "app",
                "",
                "registry.example/a/b/c",
                "git.moleculesai.app/molecule-ai/app:staging-x/y",
            ][..],
        ),
        tag,
        prop::option::weighted(
            0.3,
            prop_oneof![digest_good(), Just("sha256:abc".to_string()), random_string()],
        ),
    )
        .prop_map(|(name, tag, digest)| Reference { name, tag, digest })
        .boxed()
}

#[derive(Clone, Debug)]
enum PinDigest {
    Same,
    Other(String),
}

#[derive(Clone, Debug)]
enum PinSha {
    Revision,
    UpperRevision,
    Prefix(usize),
    Literal(String),
}

/// A pin names a digest, a source_sha or both; never neither.
#[derive(Clone, Debug)]
enum PinNames {
    Both(PinDigest, PinSha),
    Digest(PinDigest),
    SourceSha(PinSha),
}

#[derive(Clone, Debug)]
struct PinSpec {
    runtime: Option<&'static str>,
    names: PinNames,
}

fn runtime() -> BoxedStrategy<Option<&'static str>> {
    prop::option::of(select(&["python", "node", "", "\u{1b}[2J"][..])).boxed()
}

/// Both, the digest alone or the source_sha alone (3 : 1 : 1).
fn pin_names(digest: BoxedStrategy<PinDigest>, source_sha: BoxedStrategy<PinSha>) -> BoxedStrategy<PinNames> {
    prop_oneof![
        3 => (digest.clone(), source_sha.clone()).prop_map(|(d, s)| PinNames::Both(d, s)),
        1 => digest.prop_map(PinNames::Digest),
        1 => source_sha.prop_map(PinNames::SourceSha),
    ]
    .boxed()
}

fn pin_good() -> BoxedStrategy<Option<PinSpec>> {
    let names = pin_names(Just(PinDigest::Same).boxed(), Just(PinSha::Revision).boxed());
    prop_oneof![
        1 => Just(None),
        2 => (runtime(), names).prop_map(|(runtime, names)| Some(PinSpec { runtime, names })),
    ]
    .boxed()
}

fn pin_near() -> BoxedStrategy<Option<PinSpec>> {
    let digest = prop_oneof![
        3 => Just(PinDigest::Same),
        2 => digest_good().prop_map(PinDigest::Other),
        2 => digest_near().prop_map(PinDigest::Other),
    ];
    let source_sha = prop_oneof![
        3 => Just(PinSha::Revision),
        1 => Just(PinSha::UpperRevision),
        1 => prop_oneof![Just(7usize), Just(39), Just(41), 0usize..=41].prop_map(PinSha::Prefix),
        2 => select(BLANKS).prop_map(|b| PinSha::Literal(b.into())),
        2 => hex(40).prop_map(PinSha::Literal),
        1 => revision_near().prop_map(PinSha::Literal),
    ];
    (runtime(), pin_names(digest.boxed(), source_sha.boxed()))
        .prop_map(|(runtime, names)| Some(PinSpec { runtime, names }))
        .boxed()
}

impl PinSpec {
    fn render(self, digest: &str, revision: &str) -> Pin {
        let digest_of = |d: PinDigest| match d {
            PinDigest::Same => digest.to_string(),
            PinDigest::Other(d) => d,
        };
        let sha_of = |s: PinSha| match s {
            PinSha::Revision => revision.to_string(),
            PinSha::UpperRevision => revision.to_uppercase(),
            PinSha::Prefix(n) => revision.chars().take(n).collect(),
            PinSha::Literal(s) => s,
        };
        let (digest, source_sha) = match self.names {
            PinNames::Both(d, s) => (Some(digest_of(d)), Some(sha_of(s))),
            PinNames::Digest(d) => (Some(digest_of(d)), None),
            PinNames::SourceSha(s) => (None, Some(sha_of(s))),
        };
        Pin::new(self.runtime.map(String::from), digest, source_sha).expect("a generated pin names something")
    }
}

fn now() -> BoxedStrategy<(u64, u32)> {
    let near = (NOW_SECS as u64 - 40 * 86_400)..=(NOW_SECS as u64 + 40 * 86_400);
    let far = select(
        &[
            0u64,
            1,
            59,
            86_399,
            951_782_400,
            4_102_444_800,
            253_402_300_799,
            253_402_300_800,
            i64::MAX as u64 - 300,
            i64::MAX as u64,
        ][..],
    );
    let nanos = || prop_oneof![Just(0u32), Just(999_999_999), 0u32..1_000_000_000];
    prop_oneof![
        4 => (near, nanos()),
        2 => (Just(NOW_SECS as u64), nanos()),
        1 => (far, nanos()),
        1 => (0..=i64::MAX as u64, nanos()),
    ]
    .boxed()
}

/// A forge that answers every question itself (no move).
fn settled_forge() -> BoxedStrategy<Forge> {
    let reason = || {
        prop_oneof![
            4 => select(&[
                "", "HTTP 404", "commit not found", "time-out after 5 s", "HTTP 503 Service Unavailable",
                "429 Too Many Requests (Retry-After: 60)", "\u{1b}[31mred\u{1b}[0m\n::error::forged",
                "naïve ünïcödé", "line one\r\nline two",
            ][..])
            .prop_map(String::from),
            1 => long_string(),
            1 => random_string(),
        ]
    };
    prop_oneof![
        4 => Just(Forge::Found),
        2 => reason().prop_map(Forge::NotFound),
        2 => reason().prop_map(Forge::Unavailable),
        1 => Just(Forge::Picky),
    ]
    .boxed()
}

/// Owners a repository may move to that no settings of this file allow:
/// other organisations and near misses of the allowed ones.
const OTHER_OWNERS: &[&str] = &[
    "evil-org",
    "Molecule-AI",
    "molecule_ai",
    "molecule-ai2",
    "platform.team",
    "Platform.Team",
];

/// Owner/repository names that are not plain: what a hostile or broken
/// redirect might name.
fn not_plain_name() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(&[
            "", ".", "..", "molecule-ai/app", "app name", "app\u{1b}[2J", "molecule-a\u{456}", "app%2F..", "app?x=1",
            "ａpp", "app\0", "app\n",
        ][..])
        .prop_map(String::from),
        1 => Just("a".repeat(101)),
        1 => long_string(),
        1 => random_string(),
    ]
    .boxed()
}

/// Repository names a move leads to: mostly a new name (never the `app`
/// most sources name), sometimes `app` again: a transfer to another owner
/// (to the source's own owner it is no move, and the first question is
/// answered as at the new place).
fn moved_repo() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(&["app-renamed", "app2", "renamed.app", "App_3"][..]).prop_map(String::from),
        1 => Just("app".to_string()),
    ]
    .boxed()
}

/// A forge that says the repository moved: to an allowed owner (answering
/// there as a settled forge does), to another owner, to names that are not
/// plain, or to an allowed owner and from there once more.
fn moved_forge(t: &'static Target) -> BoxedStrategy<Forge> {
    let to_allowed = || (select(t.owners).prop_map(String::from), moved_repo());
    let others: Vec<&'static str> = OTHER_OWNERS.iter().copied().filter(|o| !t.owners.contains(o)).collect();
    let to_other = (select(others).prop_map(String::from), moved_repo());
    let to_not_plain = prop_oneof![
        (select(t.owners).prop_map(String::from), not_plain_name()),
        (not_plain_name(), moved_repo()),
    ];
    let moved = |(owner, repo): (String, String), there: Forge| Forge::Moved {
        owner,
        repo,
        there: Box::new(there),
    };
    prop_oneof![
        4 => (to_allowed(), settled_forge()).prop_map(move |(to, there)| moved(to, there)),
        2 => (to_other, settled_forge()).prop_map(move |(to, there)| moved(to, there)),
        2 => (to_not_plain, settled_forge()).prop_map(move |(to, there)| moved(to, there)),
        2 => (to_allowed(), to_allowed(), settled_forge())
            .prop_map(move |(first, second, there)| moved(first, moved(second, there))),
    ]
    .boxed()
}

fn forge(t: &'static Target) -> BoxedStrategy<Forge> {
    prop_oneof![8 => settled_forge(), 3 => moved_forge(t)].boxed()
}

fn mode() -> BoxedStrategy<Mode> {
    prop_oneof![Just(Mode::Enforce), Just(Mode::LogOnly)].boxed()
}

/// Extra labels the rules must ignore, some with near-miss keys.
fn extra_labels() -> BoxedStrategy<Vec<(String, String)>> {
    let key = prop_oneof![
        2 => select(&[
            "org.opencontainers.image.title", "org.opencontainers.image.source ", "ORG.OPENCONTAINERS.IMAGE.REVISION",
            "molecule.workflow.run-id", "molecule.workflow.run_id\0", "org.opencontainers.image.created.",
        ][..])
        .prop_map(String::from),
        1 => random_string(),
    ];
    prop::collection::vec((key, random_string()), 0..3).boxed()
}

/// What a case generator concentrates on.
#[derive(Clone, Copy, Debug)]
enum Focus {
    /// Every field a near miss with probability ~1/4 (so ~10% of cases are
    /// entirely good and most have one or two near misses).
    NearMisses,
    /// Source and revision always good, so every case reaches the look-up;
    /// the forge's answer, pins, tags and modes vary.
    LookUp,
}

/// The label values and their presence, for the four provenance labels.
type Labels = (
    (Presence, String),
    (Presence, String),
    (Presence, Created),
    (Presence, String),
);

fn labels(t: &'static Target, focus: Focus) -> BoxedStrategy<Labels> {
    let created = (presence(), prop_oneof![3 => created_good(), 1 => created_near()]);
    let run_id = (presence(), mostly(run_id_good(), run_id_near()));
    match focus {
        Focus::NearMisses => (
            (presence(), mostly(source_good(t), source_near(t))),
            (presence(), mostly(revision_good(), revision_near())),
            created,
            run_id,
        )
            .boxed(),
        Focus::LookUp => (
            (Just(Presence::Present), source_good(t)),
            (Just(Presence::Present), revision_good()),
            created,
            run_id,
        )
            .boxed(),
    }
}

fn cases(t: &'static Target, focus: Focus) -> BoxedStrategy<Case> {
    let subject_parts = (
        prop_oneof![3 => reference_good(), 1 => reference_near()],
        prop_oneof![3 => digest_good(), 1 => digest_near()],
        prop_oneof![3 => pin_good(), 1 => pin_near()],
        labels(t, focus),
        extra_labels(),
    );
    (subject_parts, now(), mode(), forge(t))
        .prop_map(
            |((reference, digest, pin, (source, revision, created, run_id), extra), (secs, nanos), mode, forge)| {
                let now = SystemTime::UNIX_EPOCH
                    .checked_add(Duration::new(secs, nanos))
                    .expect("generated clocks fit in a SystemTime");
                let now_seconds = i64::try_from(secs).expect("generated clocks fit in an i64");
                let rev = revision.1.clone();
                let mut labels: BTreeMap<String, String> = extra.into_iter().collect();
                let created = (created.0, created.1.render(now_seconds));
                for (key, (presence, value)) in [
                    (SOURCE, source),
                    (REVISION, revision),
                    (CREATED, created),
                    (RUN_ID, run_id),
                ] {
                    match presence {
                        Presence::Present => {
                            labels.insert(key.into(), value);
                        }
                        Presence::Absent => {
                            labels.remove(key);
                        }
                        Presence::Blank(b) => {
                            labels.insert(key.into(), b.into());
                        }
                        Presence::Renamed(how) => {
                            labels.remove(key);
                            labels.insert(renamed(key, how), value);
                        }
                    }
                }
                let pin = pin.map(|p| p.render(&digest, &rev));
                Case {
                    subject: Subject {
                        reference: reference.render(&rev),
                        digest,
                        labels,
                        pin,
                        platform: None,
                    },
                    mode,
                    now,
                    forge,
                }
            },
        )
        .boxed()
}

/// Every field fully random: any keys, any values, any clock.
fn random_cases() -> BoxedStrategy<Case> {
    let key = prop_oneof![
        1 => select(&[SOURCE, REVISION, CREATED, RUN_ID][..]).prop_map(String::from),
        1 => random_string(),
    ];
    // A digest, a source_sha or both.
    let names = prop_oneof![
        3 => (random_string(), random_string()).prop_map(|(d, s)| (Some(d), Some(s))),
        1 => random_string().prop_map(|d| (Some(d), None)),
        1 => random_string().prop_map(|s| (None, Some(s))),
    ];
    let pin = prop::option::of((prop::option::of(random_string()), names));
    (
        (
            random_string(),
            random_string(),
            prop::collection::btree_map(key, random_string(), 0..6),
            pin,
        ),
        (0..=i64::MAX as u64, 0u32..1_000_000_000),
        mode(),
        forge(&BUILTIN),
    )
        .prop_map(|((reference, digest, labels, pin), (secs, nanos), mode, forge)| Case {
            subject: Subject {
                reference,
                digest,
                labels,
                pin: pin.map(|(runtime, (digest, source_sha))| {
                    Pin::new(runtime, digest, source_sha).expect("a generated pin names something")
                }),
                platform: None,
            },
            mode,
            now: SystemTime::UNIX_EPOCH
                .checked_add(Duration::new(secs, nanos))
                .expect("generated clocks fit in a SystemTime"),
            forge,
        })
        .boxed()
}

/// Values from 16 bytes to 1 MiB: blank, hex-like, multi-byte, escapes.
fn huge_value() -> BoxedStrategy<String> {
    (
        select(&["a", " ", "\u{3000}", "0", "é", "٣", "\u{1b}", "36b68ae6", "sha256:"][..]),
        16usize..=(1 << 20),
    )
        .prop_map(|(unit, bytes)| unit.repeat(bytes / unit.len()))
        .boxed()
}

/// Near-miss cases with up to four fields (labels, reference, digest, a
/// pin) replaced by huge values: where the sandbox's time budget and memory limits,
/// absent natively, would first show.
fn huge_cases() -> BoxedStrategy<Case> {
    (
        cases(&BUILTIN, Focus::NearMisses),
        prop::collection::vec((0usize..7, huge_value()), 1..=4),
    )
        .prop_map(|(mut case, huge)| {
            for (field, value) in huge {
                let s = &mut case.subject;
                match field {
                    0..=3 => {
                        s.labels
                            .insert([SOURCE, REVISION, CREATED, RUN_ID][field].into(), value);
                    }
                    4 => s.reference = value,
                    5 => s.digest = value,
                    _ => {
                        s.pin = Some(Pin {
                            runtime: Some(value.clone()),
                            digest: Some(value.clone()),
                            source_sha: Some(value),
                        })
                    }
                }
            }
            case
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// The properties.

/// Runs `property` on `per_1024` cases of `strategy` for every 1024 of
/// `PROPTEST_CASES` (default 1024), at least one. Not through `proptest!`:
/// that macro lets `PROPTEST_CASES=N` give every property N cases, the
/// megabyte one included. proptest's other variables still apply. A failure
/// is saved beside this file (`differential.proptest-regressions`) and
/// replayed first.
fn check<S: Strategy>(
    test_name: &'static str,
    per_1024: u64,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let base = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1024);
    let cases = (base.saturating_mul(per_1024) / 1024).clamp(1, u64::from(u32::MAX));
    let config = ProptestConfig {
        cases: u32::try_from(cases).expect("clamped to u32"),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        source_file: Some(file!()),
        test_name: Some(test_name),
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, property) {
        panic!("{test_name}: {e}\n{runner}");
    }
}

#[test]
fn guest_and_native_agree_on_near_miss_subjects() {
    check(
        "guest_and_native_agree_on_near_miss_subjects",
        2048,
        cases(&BUILTIN, Focus::NearMisses),
        |case| agree(builtin(), &case),
    );
}

#[test]
fn guest_and_native_agree_on_every_look_up_answer_pin_and_tag() {
    check(
        "guest_and_native_agree_on_every_look_up_answer_pin_and_tag",
        1024,
        cases(&BUILTIN, Focus::LookUp),
        |case| agree(builtin(), &case),
    );
}

#[test]
fn guest_and_native_agree_under_the_other_branch_of_every_setting() {
    check(
        "guest_and_native_agree_under_the_other_branch_of_every_setting",
        1024,
        cases(&OTHER, Focus::NearMisses),
        |case| agree(other(), &case),
    );
}

#[test]
fn guest_and_native_agree_on_fully_random_subjects() {
    check(
        "guest_and_native_agree_on_fully_random_subjects",
        512,
        random_cases(),
        |case| agree(builtin(), &case),
    );
}

#[test]
fn the_pipeline_gives_the_same_bytes_whether_answers_are_at_hand_or_awaited() {
    let either_settings = prop_oneof![
        cases(&BUILTIN, Focus::LookUp).prop_map(|c| (false, c)),
        cases(&OTHER, Focus::LookUp).prop_map(|c| (true, c)),
    ];
    check(
        "the_pipeline_gives_the_same_bytes_whether_answers_are_at_hand_or_awaited",
        256,
        either_settings,
        |(other_settings, case)| pace_does_not_matter(if other_settings { other() } else { builtin() }, &case),
    );
}

#[test]
fn guest_and_native_agree_on_labels_up_to_a_megabyte() {
    // Large inputs are slow to generate and shrink: fewer cases.
    check(
        "guest_and_native_agree_on_labels_up_to_a_megabyte",
        64,
        huge_cases(),
        |case| agree(builtin(), &case),
    );
}

// ---------------------------------------------------------------------------
// The harness itself.

fn good_case() -> Case {
    Case {
        subject: provgate_testkit::good_subject(),
        mode: Mode::Enforce,
        now: provgate_testkit::now(),
        forge: Forge::Found,
    }
}

/// The good subject, whose repository moved to `molecule-ai/app-renamed`,
/// where the forge answers as `there`.
fn moved_case(there: Forge) -> Case {
    Case {
        forge: Forge::Moved {
            owner: "molecule-ai".into(),
            repo: "app-renamed".into(),
            there: Box::new(there),
        },
        ..good_case()
    }
}

#[test]
fn the_comparison_catches_any_changed_part_of_a_verdict() {
    let ut = builtin();
    let case = moved_case(Forge::Found);
    let guest = guest_judged(ut, &case).expect("the good subject is judged");
    let native = native_judged(ut, &case);
    assert_eq!(compare(&guest, &native), Ok(()));
    assert_eq!(native.status, "verified");
    assert_eq!(native.asked.len(), 2, "{native:#?}");

    type Tamper = fn(&mut Judged);
    let tampers: [(&str, Tamper); 11] = [
        ("one character of a message", |d| d.findings[3].2.push('.')),
        ("an outcome", |d| d.findings[8].1 = "skipped".into()),
        ("a rule id", |d| d.findings[0].0 = "labels.presence".into()),
        ("the order of two findings", |d| d.findings.swap(1, 2)),
        ("a missing finding", |d| {
            d.findings.pop();
        }),
        ("the event", |d| d.event = "redeploy.verify.unavailable".into()),
        ("allowed", |d| d.allowed = false),
        ("the question asked", |d| d.asked[0].0.sha.make_ascii_uppercase()),
        ("the answer given", |d| d.asked[1].1 = Answer::not_found("")),
        ("where the repository moved", |d| {
            d.asked[0].1 = Answer::moved("molecule-ai", "app-renamed2")
        }),
        ("a missing question", |d| {
            d.asked.pop();
        }),
    ];
    for (what, tamper) in tampers {
        let mut changed = native.clone();
        tamper(&mut changed);
        assert!(compare(&guest, &changed).is_err(), "a change of {what} went unnoticed");
        assert!(compare(&changed, &guest).is_err(), "a change of {what} went unnoticed");
    }
    let mut status = native.clone();
    status.status = "rejected".into();
    let diff = compare(&guest, &status).expect_err("a changed status is noticed");
    assert!(diff.starts_with("status"), "{diff}");
}

#[test]
fn the_property_fails_when_native_hears_another_look_up_answer() {
    let ut = builtin();
    let mut case = good_case();
    let guest = guest_judged(ut, &case).expect("the good subject is judged");
    case.forge = Forge::NotFound("HTTP 404".into());
    let native = native_judged(ut, &case);
    let diff = compare(&guest, &native).expect_err("a different forge answer changes the verdict");
    assert!(diff.contains("status"), "{diff}");
}

#[test]
fn the_property_fails_when_native_hears_another_answer_where_the_repository_moved() {
    let ut = builtin();
    let guest = guest_judged(ut, &moved_case(Forge::Found)).expect("the good subject is judged");
    assert_eq!(guest.status, "verified", "{guest:#?}");
    let native = native_judged(ut, &moved_case(Forge::NotFound("HTTP 404".into())));
    let diff = compare(&guest, &native).expect_err("a different answer after the move changes the verdict");
    assert!(diff.contains("status"), "{diff}");
}

/// The fixed case behind the at-hand-or-awaited property: a followed move
/// takes one instance with answers at hand and three (one per round) with
/// answers awaited, and the verdicts are the same bytes.
#[test]
fn awaited_answers_start_a_fresh_instance_per_round_and_change_no_byte() {
    let ut = builtin();
    let case = moved_case(Forge::Found);
    let at_hand = host_decision(ut, &case, Pace::AtHand).expect("judged with answers at hand");
    let awaited = host_decision(ut, &case, Pace::Awaited).expect("judged with answers awaited");
    assert_eq!((at_hand.instances, awaited.instances), (1, 3));
    assert_eq!(
        awaited.answers.iter().map(|a| a.answer.kind()).collect::<Vec<_>>(),
        ["moved", "found"]
    );
    assert!(pace_does_not_matter(ut, &case).is_ok());
    let json = |d: &Decision| serde_json::to_string(&d.verdict).expect("a verdict serialises");
    assert_eq!(json(&at_hand), json(&awaited));
    assert!(
        json(&at_hand).contains("moved from molecule-ai/app"),
        "{}",
        json(&at_hand)
    );
}

#[test]
fn the_twin_comparison_catches_any_changed_outcome_status_event_or_question_but_not_a_message() {
    let ut = builtin();
    let case = moved_case(Forge::Found);
    let guest = guest_judged(ut, &case).expect("the good subject is judged");
    let twin = twin_judged(ut, &case).expect("the twin judges the good subject");
    assert_eq!(compare_twin(&guest, &twin, None), Ok(()));
    assert_eq!(
        (twin.status.as_str(), twin.event.as_str()),
        ("verified", "redeploy.verify.reachable")
    );
    assert_eq!(twin.asked.len(), 2, "the twin followed the move: {twin:#?}");
    assert!(
        twin.findings.iter().all(|f| f.2.is_empty()),
        "the twin builds no messages"
    );

    type Tamper = fn(&mut Judged);
    let tampers: [(&str, Tamper); 9] = [
        ("an outcome", |d| d.findings[8].1 = "skipped".into()),
        ("a rule id", |d| d.findings[0].0 = "labels.presence".into()),
        ("the order of two findings", |d| d.findings.swap(1, 2)),
        ("a missing finding", |d| {
            d.findings.pop();
        }),
        ("the status", |d| d.status = "indeterminate".into()),
        ("the event", |d| d.event = "redeploy.verify.unavailable".into()),
        ("allowed", |d| d.allowed = false),
        ("the question asked", |d| d.asked[0].0.sha.make_ascii_uppercase()),
        ("a missing question", |d| {
            d.asked.pop();
        }),
    ];
    for (what, tamper) in tampers {
        let mut changed = twin.clone();
        tamper(&mut changed);
        assert!(
            compare_twin(&guest, &changed, None).is_err(),
            "a change of {what} went unnoticed"
        );
    }
    let mut worded = twin.clone();
    worded.findings[3].2 = "any other words".into();
    assert_eq!(compare_twin(&guest, &worded, None), Ok(()), "messages are not compared");
}

#[test]
fn the_twin_hears_the_forge_the_guest_hears() {
    let ut = builtin();
    for (forge, status) in [
        (Forge::NotFound("HTTP 404".into()), "rejected"),
        (Forge::Unavailable("time-out".into()), "indeterminate"),
        (moved_case(Forge::Found).forge, "verified"),
        (moved_case(Forge::Unavailable("HTTP 503".into())).forge, "indeterminate"),
        (
            Forge::Moved {
                owner: "evil-org".into(),
                repo: "app".into(),
                there: Box::new(Forge::Found),
            },
            "rejected",
        ),
    ] {
        let case = Case { forge, ..good_case() };
        let guest = guest_judged(ut, &case).expect("the good subject is judged");
        let twin = twin_judged(ut, &case).expect("the twin judges the good subject");
        assert_eq!(compare_twin(&guest, &twin, None), Ok(()), "{:?}", case.forge);
        assert_eq!(twin.status, status, "{:?}", case.forge);
    }
}

/// Each [`Departure`] is still one: on a fixed case the guest and the twin
/// disagree on what it leaves out, and on nothing else. When this fails
/// because they agree, the guest was fixed: delete the departure.
#[test]
fn each_departure_left_out_of_the_twin_comparison_is_still_a_guest_departure() {
    let ut = builtin();
    let pinned = |source_sha: &str, revision: Option<&str>| {
        let mut case = good_case();
        case.subject.pin = Some(Pin::new(None, None, Some(source_sha.into())).expect("a pin with a source_sha"));
        match revision {
            Some(r) => case.subject.labels.insert(REVISION.into(), r.into()),
            None => case.subject.labels.remove(REVISION),
        };
        case
    };
    // `provgate verify --pin-source-sha ""` on a good image: the guest
    // allows it in enforce, having compared nothing.
    let blank = pinned("", Some(SHA));
    // A pin's SHA and an image without a revision label.
    let no_revision = pinned(SHA, None);
    for (case, departure, guest_decision, twin_decision) in [
        (
            blank,
            Departure::BlankPinSourceSha,
            ("verified", true),
            ("rejected", false),
        ),
        (
            no_revision,
            Departure::PinShaWithoutRevision,
            ("rejected", false),
            ("rejected", false),
        ),
    ] {
        assert_eq!(Departure::of(&case), Some(departure));
        let guest = guest_judged(ut, &case).expect("judged");
        let twin = twin_judged(ut, &case).expect("the twin judges");
        let outcome = |d: &Judged| {
            let (_, outcome, _) = d
                .findings
                .iter()
                .find(|f| f.0 == "pin.consistent")
                .expect("pin.consistent");
            outcome.clone()
        };
        assert_eq!(
            (outcome(&guest), outcome(&twin)),
            ("pass".to_string(), "fail".to_string()),
            "{departure:?} is no longer a departure: delete it"
        );
        assert_eq!((guest.status.as_str(), guest.allowed), guest_decision, "{departure:?}");
        assert_eq!((twin.status.as_str(), twin.allowed), twin_decision, "{departure:?}");
        assert!(compare_twin(&guest, &twin, None).is_err());
        assert_eq!(compare_twin(&guest, &twin, Some(departure)), Ok(()), "{departure:?}");
    }
}

/// How `revision.resolves` came about in a native verdict: its outcome and
/// the answers, a move named by where it led under `settings`.
fn resolution(d: &Judged, settings: &Settings) -> Option<String> {
    let (_, outcome, _) = d.findings.iter().find(|(rule, _, _)| rule == "revision.resolves")?;
    if d.asked.is_empty() {
        return None;
    }
    let path: Vec<&str> = d
        .asked
        .iter()
        .map(|(_, answer)| match answer {
            Answer::Moved { moved_to } if !is_plain_name(&moved_to.owner) || !is_plain_name(&moved_to.repo) => {
                "a move to names that are not plain"
            }
            Answer::Moved { moved_to } if settings.allowed_owners.contains(&moved_to.owner) => {
                "a move to an allowed owner"
            }
            Answer::Moved { .. } => "a move to another owner",
            other => other.kind(),
        })
        .collect();
    Some(format!("revision.resolves {outcome} after {}", path.join(" then ")))
}

/// The generators are not vacuous: the near-miss cases reach every event,
/// every status, every outcome each rule can have, and every way a look-up
/// can end, a followed or refused rename included.
#[test]
fn near_miss_generators_reach_every_event_status_rule_outcome_and_rename() {
    for (t, ut) in [(&BUILTIN, builtin()), (&OTHER, other())] {
        let mut runner = TestRunner::deterministic();
        let mut seen = BTreeSet::new();
        for focus in [Focus::NearMisses, Focus::LookUp] {
            let strategy = cases(t, focus);
            for _ in 0..1500 {
                let case = strategy
                    .new_tree(&mut runner)
                    .expect("the generator produces a case")
                    .current();
                let d = native_judged(ut, &case);
                seen.insert(format!("status {}", d.status));
                seen.insert(format!("allowed {}", d.allowed));
                seen.extend(resolution(&d, &ut.settings));
                seen.insert(d.event);
                for (rule, outcome, _) in d.findings {
                    seen.insert(format!("{rule} {outcome}"));
                }
            }
        }
        let mut expected: Vec<String> = [
            "status verified",
            "status rejected",
            "status indeterminate",
            "allowed true",
            "allowed false",
            "labels.present pass",
            "labels.present fail",
            "revision.resolves pass",
            "revision.resolves fail",
            "revision.resolves indeterminate",
            "revision.resolves skipped",
            "digest.format pass",
            "digest.format fail",
            "revision.resolves pass after found",
            "revision.resolves fail after not_found",
            "revision.resolves indeterminate after unavailable",
            "revision.resolves pass after a move to an allowed owner then found",
            "revision.resolves fail after a move to an allowed owner then not_found",
            "revision.resolves indeterminate after a move to an allowed owner then unavailable",
            "revision.resolves fail after a move to an allowed owner then a move to an allowed owner",
            "revision.resolves fail after a move to another owner",
            "revision.resolves fail after a move to names that are not plain",
        ]
        .map(String::from)
        .to_vec();
        for rule in [
            "revision.format",
            "created.format",
            "run_id.format",
            "source.trusted",
            "pin.consistent",
            "tag.consistent",
        ] {
            for outcome in ["pass", "fail", "skipped"] {
                expected.push(format!("{rule} {outcome}"));
            }
        }
        for event in [
            "unlabeled",
            "malformed",
            "untrusted_source",
            "pin_mismatch",
            "unresolved",
            "unavailable",
            "reachable",
        ] {
            expected.push(format!("redeploy.verify.{event}"));
        }
        let missing: Vec<&String> = expected.iter().filter(|e| !seen.contains(*e)).collect();
        assert!(missing.is_empty(), "{}: never generated {missing:?}", t.host);
    }
}
