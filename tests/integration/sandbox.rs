//! The sandbox holds: the shipped component imports nothing and exports only
//! the rules, and hostile components (built here from WAT) are stopped by the
//! time budget, the memory cap, the stack limit and the question limits, or
//! refused at load, without leaving the host unusable. The ask/answer
//! protocol holds too: a guest that asks too much, too often, again, or
//! answers with garbage gets no verdict, and the two paths an answer can take
//! (at hand, into the same instance; awaited, into a fresh one) decide alike.

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use provgate::judge::Decision;
use provgate::judge::judge;
use provgate::lookup::{Answer, Answering, Answers, NoAnswers, Question};
use provgate::policy::{Artifact, LimitKind, Limits, Origin, Policy, PolicyError, TrapKind};
use provgate::subject::Subject;
use provgate::verdict::{Mode, Status};
use provgate_contract::slot;
use provgate_testkit::wat_guest::{
    ASK_FIVE, ASK_ONE, FAILED, GARBAGE, MESSAGE, ONE_FINDING, SCRATCH, ZERO, encode, hostile, old_world_component,
    provgate_wit, returning, step_tag, template, template_component,
};
use provgate_testkit::{RUN_ID, SHA, Scripted, block_on, good_subject, now};
use wasmtime::component::{Component, types::ComponentItem};

/// Small budgets: hostile guests should hit them quickly.
const SMALL: Limits = Limits {
    time_budget: Duration::from_millis(100),
    memory_bytes: 16 << 20,
    max_questions: 4,
    max_rounds: 2,
};

/// "Terminates" means well inside this; never a performance assertion.
const TERMINATES_WITHIN: Duration = Duration::from_secs(20);

const RULES: &str = "provgate:policy/rules@0.2.0";
const OLD_WORLD: &str = "provgate:policy/provgate@0.1.0";

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

// ---------------------------------------------------------------------------
// Hostile guests: bodies for the WAT template of tests/testkit/src/wat_guest.rs.
// ---------------------------------------------------------------------------

/// Never finishes.
const ENDLESS_LOOP: &str = "(loop $forever (br $forever))";

/// Grows memory a MiB (16 pages) at a time until it holds 256 MiB (4096
/// pages), far past any cap used here, then falls through to a verdict: it
/// only gets that far if nothing capped it.
const MEMORY_BOMB: &str = r#"
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (memory.size) (i32.const 4096)))
        (br_if $done (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
        (br $more)))"#;

/// Recurses without end.
const DEEP_RECURSION: &str = "(drop (call $descend (i32.const 0)))";

/// The commit question's `sha` as the guests below build it in SCRATCH.
const SCRATCH_SHA: i32 = SCRATCH + 64;

/// Returns a verdict of a million findings (12 bytes each, all zero: rule
/// `labels-present`, pass, message ""), laid out from 1 MiB on in memory it
/// grows to 13 MiB: a valid verdict as far as the ABI goes. Its verdict area
/// is SCRATCH, zero but for the findings list.
fn million_findings() -> String {
    format!(
        "(if (i32.eq (memory.grow (i32.const 200)) (i32.const -1)) (then unreachable))
         (i32.store (i32.const {}) (i32.const 1048576))   ;; findings ptr
         (i32.store (i32.const {}) (i32.const 1000000))   ;; findings len
         (return (i32.const {SCRATCH}))",
        SCRATCH + 12,
        SCRATCH + 16,
    )
}

/// Returns one finding (at SCRATCH + 32) whose message is at `ptr`, `len`
/// bytes long, after growing memory by `grow` pages.
fn one_finding_with_message(grow: u32, ptr: u32, len: u32) -> String {
    let finding = SCRATCH + 32;
    format!(
        "(if (i32.eq (memory.grow (i32.const {grow})) (i32.const -1)) (then unreachable))
         (i32.store (i32.const {}) (i32.const {finding}))   ;; findings ptr
         (i32.store (i32.const {}) (i32.const 1))           ;; one finding
         (i32.store (i32.const {}) (i32.const {ptr}))       ;; its message ptr
         (i32.store (i32.const {}) (i32.const {len}))       ;; and length
         (return (i32.const {SCRATCH}))",
        SCRATCH + 12,
        SCRATCH + 16,
        finding + 4,
        finding + 8,
    )
}

/// One finding whose message claims 100 MB, far past the end of the
/// guest's memory.
fn huge_message() -> String {
    one_finding_with_message(0, 1 << 20, 100_000_000)
}

/// One finding with a 2 MiB message (of zero bytes) that really is in its
/// memory: within the memory cap, past the host's verdict text cap.
fn long_message() -> String {
    one_finding_with_message(48, 1 << 20, 2 << 20)
}

/// `evaluate` of a guest that asks in `rounds` rounds, then decides: it
/// builds, in SCRATCH, an `ask` area with one question about OWNER/REPO and
/// a copy of SHA at [`SCRATCH_SHA`], and asks the template's own question
/// (about SHA) first.
fn asks_in_rounds_evaluate() -> String {
    let question = SCRATCH + 32;
    format!(
        "(i32.store8 (i32.const {step_tag}) (i32.const 1))              ;; step::ask
         (i32.store (i32.const {questions}) (i32.const {question}))    ;; questions ptr
         (i32.store (i32.const {count}) (i32.const 1))                 ;; one question
         (i32.store (i32.const {question}) (i32.const 16))             ;; owner
         (i32.store (i32.const {}) (i32.const 11))
         (i32.store (i32.const {}) (i32.const 32))                     ;; repo
         (i32.store (i32.const {}) (i32.const 3))
         (i32.store (i32.const {}) (i32.const {SCRATCH_SHA}))          ;; sha
         (i32.store (i32.const {}) (i32.const 40))
         (memory.copy (i32.const {SCRATCH_SHA}) (i32.const 48) (i32.const 40))
         {}",
        question + 4,
        question + 8,
        question + 12,
        question + 16,
        question + 20,
        returning(ASK_ONE),
        step_tag = SCRATCH + 4,
        questions = SCRATCH + 8,
        count = SCRATCH + 12,
    )
}

/// `resume` of that guest: each call asks about the commit whose first hex
/// digit is one more than last time (`36b6…`, then `46b6…`, `56b6…`): never
/// what it was answered. After `rounds` rounds it decides ([`ZERO`]).
fn asks_in_rounds_resume(rounds: u8) -> String {
    let last = SHA.as_bytes()[0] + rounds - 1;
    format!(
        "(if (i32.eq (i32.load8_u (i32.const {SCRATCH_SHA})) (i32.const {last}))
           (then (return (i32.const {ZERO}))))
         (i32.store8 (i32.const {SCRATCH_SHA})
                     (i32.add (i32.load8_u (i32.const {SCRATCH_SHA})) (i32.const 1)))
         (return (i32.const {SCRATCH}))"
    )
}

/// A guest that asks in three rounds, one question each, all different.
fn asks_in_three_rounds() -> Vec<u8> {
    hostile(&asks_in_rounds_evaluate(), &asks_in_rounds_resume(3), "")
}

/// A guest that asks its question and, answered, asks it again.
fn asks_again() -> Vec<u8> {
    hostile(&returning(ASK_ONE), &returning(ASK_ONE), "")
}

/// The SHA with its first hex digit raised by `by`, as [`asks_in_rounds_resume`]
/// asks it.
fn sha_raised(by: u8) -> String {
    let mut sha = SHA.as_bytes().to_vec();
    sha[0] += by;
    String::from_utf8(sha).expect("hex")
}

// ---------------------------------------------------------------------------
// Loading and judging.
// ---------------------------------------------------------------------------

fn artifact(bytes: Vec<u8>, name: &str) -> Artifact {
    Artifact::from_bytes(Cow::Owned(bytes), Origin::File(PathBuf::from(name)))
}

fn load(bytes: Vec<u8>, name: &str) -> Result<Policy, PolicyError> {
    Policy::load(artifact(bytes, name), SMALL, None)
}

fn load_hostile(bytes: Vec<u8>, name: &str) -> Arc<Policy> {
    load_hostile_with(bytes, name, SMALL)
}

fn load_hostile_with(bytes: Vec<u8>, name: &str, limits: Limits) -> Arc<Policy> {
    let policy = Policy::load(artifact(bytes, name), limits, None)
        .unwrap_or_else(|e| panic!("{name} should load (its describe is benign): {e}"));
    Arc::new(policy)
}

/// Runs `f` on a thread of its own and fails the test when it has not
/// finished within [`TERMINATES_WITHIN`] (a runaway thread is left behind
/// until the test process exits), so a missing limit fails instead of hanging.
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(TERMINATES_WITHIN)
        .unwrap_or_else(|e| panic!("{what} did not finish within {TERMINATES_WITHIN:?}: {e}"))
}

/// Judges the good subject through the whole pipeline, under the deadline.
fn judge_good(policy: &Arc<Policy>, answers: Arc<Scripted>) -> Result<Decision, PolicyError> {
    let policy = policy.clone();
    within_deadline("judge", move || {
        block_on(judge(&policy, &good_subject(), Mode::Enforce, now(), &*answers))
    })
}

/// Judges the good subject; the error, failing on a verdict.
fn refusal(policy: &Arc<Policy>, answers: Arc<Scripted>) -> PolicyError {
    match judge_good(policy, answers) {
        Err(e) => e,
        Ok(decision) => panic!("expected no verdict, got {:?}", decision.verdict),
    }
}

/// Judges the good subject; the trap's kind and message, failing on any
/// other outcome.
fn trap(policy: &Arc<Policy>, answers: Arc<Scripted>) -> (TrapKind, String) {
    match refusal(policy, answers) {
        PolicyError::Trap { kind, message } => (kind, message),
        other => panic!("expected a trap, got another error: {other:?}"),
    }
}

/// The trap's message, failing on any other outcome.
fn trap_message(policy: &Arc<Policy>, answers: Arc<Scripted>) -> String {
    trap(policy, answers).1
}

// ---------------------------------------------------------------------------
// The harness itself.
// ---------------------------------------------------------------------------

#[test]
fn the_template_without_hostility_loads_and_decides_without_asking() {
    // The control: the harness's ABI is right, so every failure below comes
    // from the hostile body, not from a malformed guest.
    let policy = load_hostile(template_component(), "benign.wasm");
    assert_eq!(policy.description().name, "");
    let answers = Scripted::found();
    let decision = judge_good(&policy, answers.clone()).expect("benign guest judges");
    assert_eq!(decision.verdict.decided.status, Status::Verified);
    assert!(!decision.verdict.decided.allowed);
    assert_eq!(decision.verdict.decided.event, "redeploy.verify.unlabeled");
    assert!(decision.verdict.decided.findings.is_empty());
    assert!(decision.answers.is_empty());
    assert_eq!(decision.instances, 1);
    assert!(answers.asked().is_empty());
}

#[test]
fn the_template_asking_one_question_gets_its_answer_in_resume() {
    // The control for the protocol tests: a well-behaved asking guest. Its
    // resume checks that it got exactly one answer, `found`, and then
    // decides ONE_FINDING; anything else and it fails with MESSAGE.
    let checks_found = format!(
        "(if (i32.and (i32.eq (local.get $count) (i32.const 1))
                      (i32.eq (i32.load8_u (local.get $answers)) (i32.const 0)))
           (then {}))
         {}",
        returning(ONE_FINDING),
        returning(FAILED),
    );
    let policy = load_hostile(hostile(&returning(ASK_ONE), &checks_found, ""), "asks-one.wasm");

    let answers = Scripted::found();
    let decision = judge_good(&policy, answers.clone()).expect("an asking guest judges");
    assert_eq!(
        answers.asked(),
        [("molecule-ai".to_string(), "app".to_string(), SHA.to_string())],
        "the guest's question reaches the host intact"
    );
    let decided = &decision.verdict.decided;
    assert_eq!(decided.status, Status::Rejected);
    assert_eq!(decided.event, "redeploy.verify.malformed");
    assert_eq!(decided.findings.len(), 1);
    assert_eq!(decided.findings[0].rule, "revision.format");
    assert_eq!(decided.findings[0].message, MESSAGE);
    assert_eq!(decision.instances, 1);
    assert_eq!(decision.answers.len(), 1);
    assert_eq!(decision.answers[0].answer, Answer::Found);

    // The same guest given another answer says so: the answer reached it.
    match refusal(&policy, Scripted::new(Answer::not_found("404"))) {
        PolicyError::Protocol(message) => assert!(message.contains(MESSAGE), "{message}"),
        other => panic!("expected the guest's own refusal, got {other:?}"),
    }
}

#[test]
fn builtin_component_imports_nothing_and_exports_only_the_rules() {
    let engine = wasmtime::Engine::default();
    let component = Component::new(&engine, &Artifact::builtin().bytes).expect("built-in artifact compiles");
    let ty = component.component_type();

    let imports: Vec<&str> = ty.imports(&engine).map(|(name, _)| name).collect();
    assert!(imports.is_empty(), "the built-in component imports {imports:?}");

    let exports: Vec<(&str, ComponentItem)> = ty.exports(&engine).map(|(name, item)| (name, item.ty)).collect();
    let names: Vec<&str> = exports.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, [RULES], "exports");
    let ComponentItem::ComponentInstance(rules) = &exports[0].1 else {
        panic!("{RULES} is not an instance");
    };
    let functions: Vec<&str> = rules
        .exports(&engine)
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentFunc(_)))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(functions, ["describe", "evaluate", "resume"], "what the rules offer");
}

// ---------------------------------------------------------------------------
// Limits on the guest's work.
// ---------------------------------------------------------------------------

#[test]
fn endless_loop_is_stopped_by_the_time_budget() {
    let policy = load_hostile(hostile(ENDLESS_LOOP, "", ""), "endless-loop.wasm");
    let (kind, message) = trap(&policy, Scripted::found());
    assert_eq!(kind, TrapKind::TimeBudget, "{message}");
    assert!(message.contains("time budget (100 ms"), "{message}");
}

#[test]
fn endless_loop_in_resume_is_stopped_by_the_time_budget_of_that_call() {
    // The budget is per call into the guest: resume has one of its own.
    let policy = load_hostile(hostile(&returning(ASK_ONE), ENDLESS_LOOP, ""), "resume-loops.wasm");
    let answers = Scripted::found();
    let (kind, message) = trap(&policy, answers.clone());
    assert_eq!(kind, TrapKind::TimeBudget, "{message}");
    assert!(message.contains("time budget (100 ms"), "{message}");
    assert_eq!(answers.asked().len(), 1, "the loop came after the answer");
}

#[test]
fn unbounded_memory_growth_is_stopped_by_the_memory_cap() {
    let policy = load_hostile(hostile(MEMORY_BOMB, "", ""), "memory-bomb.wasm");
    let (kind, message) = trap(&policy, Scripted::found());
    assert_eq!(
        kind,
        TrapKind::Memory,
        "stopped by something other than the cap: {message}"
    );
    assert!(message.contains("memory"), "{message}");
    assert!(
        !message.contains("time budget"),
        "stopped by the time budget, not by the cap: {message}"
    );
}

#[test]
fn memory_bomb_finishes_when_the_cap_is_lifted() {
    // The other half of the memory tests: this guest really does grow
    // without end, so only the cap stops it there.
    let lifted = Limits {
        memory_bytes: 1 << 30,
        ..SMALL
    };
    let bomb = load_hostile_with(hostile(MEMORY_BOMB, "", ""), "memory-bomb.wasm", lifted);
    let decision = judge_good(&bomb, Scripted::found()).expect("with no memory cap the bomb runs to its end");
    assert_eq!(decision.verdict.decided.status, Status::Verified);
}

#[test]
fn deep_recursion_is_stopped_as_stack_overflow() {
    let policy = load_hostile(hostile(DEEP_RECURSION, "", ""), "deep-recursion.wasm");
    let (kind, message) = trap(&policy, Scripted::found());
    assert_eq!(kind, TrapKind::Stack, "{message}");
    assert!(message.contains("stack"), "{message}");
}

#[test]
fn a_verdict_with_a_million_findings_is_refused() {
    let policy = load_hostile(hostile(&million_findings(), "", ""), "million-findings.wasm");
    let (kind, message) = trap(&policy, Scripted::found());
    assert_eq!(kind, TrapKind::OversizedVerdict, "{message}");
    assert!(message.contains("1000000 findings"), "{message}");
}

#[test]
fn a_message_claiming_100_mb_is_refused() {
    let policy = load_hostile(hostile(&huge_message(), "", ""), "huge-message.wasm");
    let message = trap_message(&policy, Scripted::found());
    assert!(message.contains("out of bounds"), "{message}");
}

#[test]
fn a_message_past_the_verdict_text_cap_is_refused() {
    let policy = load_hostile(hostile(&long_message(), "", ""), "long-message.wasm");
    let (kind, message) = trap(&policy, Scripted::found());
    assert_eq!(kind, TrapKind::OversizedVerdict, "{message}");
    assert!(message.contains("bytes of text"), "{message}");
}

#[test]
fn host_stays_usable_after_a_trap() {
    let endless = load_hostile(hostile(ENDLESS_LOOP, "", ""), "endless-loop.wasm");
    let bomb = load_hostile(hostile(MEMORY_BOMB, "", ""), "memory-bomb.wasm");
    assert_eq!(trap(&endless, Scripted::found()).0, TrapKind::TimeBudget);
    assert_eq!(trap(&bomb, Scripted::found()).0, TrapKind::Memory);

    let builtin = Policy::load(Artifact::builtin(), Limits::default(), None).expect("built-in policy loads");
    let answers = Scripted::found();
    let decision = block_on(judge(&builtin, &good_subject(), Mode::Enforce, now(), &*answers))
        .expect("built-in policy judges after a trap");
    assert_eq!(decision.verdict.decided.status, Status::Verified, "{decision:#?}");
    assert!(decision.verdict.decided.allowed);
    assert_eq!(answers.asked().len(), 1);

    // No poisoned state: the same hostile policies trap the same way again.
    assert_eq!(trap(&endless, Scripted::found()).0, TrapKind::TimeBudget);
    assert_eq!(trap(&bomb, Scripted::found()).0, TrapKind::Memory);
}

#[test]
fn describe_that_loops_fails_to_load() {
    let bytes = hostile("", "", ENDLESS_LOOP);
    match within_deadline("load", move || load(bytes, "describe-loops.wasm")) {
        Err(PolicyError::Trap { kind, message }) => {
            assert_eq!(kind, TrapKind::TimeBudget, "{message}");
            assert!(message.contains("time budget"), "{message}");
        }
        Err(other) => panic!("expected a trap, got {other:?}"),
        Ok(_) => panic!("a policy whose describe never returns loaded"),
    }
}

// ---------------------------------------------------------------------------
// The ask/answer protocol.
// ---------------------------------------------------------------------------

#[test]
fn five_questions_in_one_round_are_refused_as_a_limit_before_any_is_asked() {
    let policy = load_hostile(hostile(&returning(ASK_FIVE), "", ""), "asks-five.wasm");
    let answers = Scripted::found();
    match refusal(&policy, answers.clone()) {
        PolicyError::Limit { kind, message } => {
            assert_eq!(kind, LimitKind::Questions, "{message}");
            assert!(message.contains("5 questions"), "{message}");
            assert!(message.contains("at most 4"), "{message}");
        }
        other => panic!("expected a limit, got {other:?}"),
    }
    assert!(answers.asked().is_empty(), "the host asked: {:?}", answers.asked());

    let run = verify_with_policy(hostile(&returning(ASK_FIVE), "", ""));
    assert_exits_3_naming(&run, "5 questions");
    assert!(run.stderr.contains("at most 4"), "{}", run.stderr);
}

#[test]
fn a_third_round_of_questions_is_refused_as_a_limit() {
    let policy = load_hostile(asks_in_three_rounds(), "three-rounds.wasm");
    // The rounds count per verdict: the next verdict of the same policy
    // starts from zero again, and is stopped at the same place.
    for verdict in ["first", "second"] {
        let answers = Scripted::found();
        match refusal(&policy, answers.clone()) {
            PolicyError::Limit { kind, message } => {
                assert_eq!(kind, LimitKind::Rounds, "{verdict}: {message}");
                assert!(message.contains("round"), "{verdict}: {message}");
            }
            other => panic!("{verdict}: expected a limit, got {other:?}"),
        }
        // Two rounds answered, in order; the third question never went out.
        let shas: Vec<String> = answers.asked().into_iter().map(|(_, _, sha)| sha).collect();
        assert_eq!(shas, [SHA.to_string(), sha_raised(1)], "{verdict}");
    }

    let run = verify_with_policy(asks_in_three_rounds());
    assert_exits_3_naming(&run, "round");
}

#[test]
fn the_question_limits_are_what_stop_those_guests() {
    // The other half of the two tests above: with the limits lifted, the
    // same guests run to a verdict, so their questions are well formed, all
    // asked and (for the rounds) all different.
    let lifted = Limits {
        max_questions: 5,
        max_rounds: 3,
        ..SMALL
    };
    // ASK_FIVE asks one question five times: within a limit of five it is
    // no longer the count that stops it but the repetition.
    let five = load_hostile_with(hostile(&returning(ASK_FIVE), "", ""), "asks-five.wasm", lifted);
    let answers = Scripted::found();
    match judge_good(&five, answers.clone()) {
        Err(PolicyError::Protocol(message)) => assert!(message.contains("twice in one round"), "{message}"),
        other => panic!("expected the repeated question to be refused, got {other:?}"),
    }
    assert!(answers.asked().is_empty(), "a refused round is not asked");

    let rounds = load_hostile_with(asks_in_three_rounds(), "three-rounds.wasm", lifted);
    let answers = Scripted::found();
    let decision = judge_good(&rounds, answers.clone()).expect("three rounds within a limit of three");
    let shas: Vec<String> = answers.asked().into_iter().map(|(_, _, sha)| sha).collect();
    assert_eq!(shas, [SHA.to_string(), sha_raised(1), sha_raised(2)]);
    assert_eq!(decision.instances, 1);
}

#[test]
fn asking_again_what_was_just_answered_is_a_protocol_error() {
    let policy = load_hostile(asks_again(), "asks-again.wasm");
    for (path, answers) in [
        ("resumed in the same instance", Scripted::found()),
        ("restarted with the answer supplied", Scripted::waited(Answer::Found)),
    ] {
        match refusal(&policy, answers.clone()) {
            PolicyError::Protocol(message) => {
                assert!(message.contains("asked again"), "{path}: {message}");
                assert!(message.contains(SHA), "{path}: {message}");
            }
            other => panic!("{path}: expected a protocol error, got {other:?}"),
        }
        assert_eq!(answers.asked().len(), 1, "{path}: the question went out once");
    }

    let run = verify_with_policy(asks_again());
    assert_exits_3_naming(&run, "asked again");
}

#[test]
fn an_empty_round_of_questions_is_a_protocol_error() {
    let policy = load_hostile(hostile(&step_tag(1), "", ""), "asks-nothing.wasm");
    match refusal(&policy, Scripted::found()) {
        PolicyError::Protocol(message) => assert!(message.contains("empty round"), "{message}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn garbage_from_evaluate_or_resume_is_refused_as_a_trap() {
    for (name, bytes) in [
        ("evaluate", hostile(&returning(GARBAGE), "", "")),
        ("resume", hostile(&returning(ASK_ONE), &returning(GARBAGE), "")),
    ] {
        let policy = load_hostile(bytes.clone(), &format!("garbage-from-{name}.wasm"));
        let message = trap_message(&policy, Scripted::found());
        assert!(message.contains("discriminant"), "{name}: {message}");

        let run = verify_with_policy(bytes);
        assert_exits_3_naming(&run, "discriminant");
    }
}

#[test]
fn a_guests_own_error_is_reported_in_its_words() {
    // From evaluate it can only mean the artifact's settings are unusable;
    // from resume, that the guest refused the answers it asked for.
    let policy = load_hostile(hostile(&returning(FAILED), "", ""), "evaluate-fails.wasm");
    match refusal(&policy, Scripted::found()) {
        PolicyError::Settings { reason, .. } => assert_eq!(reason, MESSAGE),
        other => panic!("expected a settings error, got {other:?}"),
    }
    let policy = load_hostile(
        hostile(&returning(ASK_ONE), &returning(FAILED), ""),
        "resume-fails.wasm",
    );
    match refusal(&policy, Scripted::found()) {
        PolicyError::Protocol(message) => assert!(message.contains(MESSAGE), "{message}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// Answers like Gitea for a repository that was renamed within its owner:
/// "moved" where the source label points, `then` at the new place. At hand
/// or awaited.
struct Renamed {
    then: Answer,
    at_hand: bool,
    asked: Mutex<Vec<Question>>,
}

impl Renamed {
    const TO: (&str, &str) = ("molecule-ai", "app-renamed");

    fn new(then: Answer, at_hand: bool) -> Renamed {
        Renamed {
            then,
            at_hand,
            asked: Mutex::new(Vec::new()),
        }
    }

    fn give(&self, q: &Question) -> Answer {
        self.asked.lock().unwrap().push(q.clone());
        if (q.owner.as_str(), q.repo.as_str()) == Renamed::TO {
            self.then.clone()
        } else {
            Answer::moved(Renamed::TO.0, Renamed::TO.1)
        }
    }
}

impl Answers for Renamed {
    fn at_hand(&self, q: &Question) -> Option<Answer> {
        self.at_hand.then(|| self.give(q))
    }

    fn answer<'a>(&'a self, q: &'a Question) -> Answering<'a> {
        Box::pin(std::future::ready(self.give(q)))
    }
}

/// A subject rejected by a rule that needs no answer (its run id is not a
/// number) and that still asks about its commit.
fn rejected_subject() -> Subject {
    let mut subject = good_subject();
    subject.labels.insert(RUN_ID.into(), "run-4242".into());
    subject
}

#[test]
fn the_restart_path_and_the_resume_path_give_the_same_verdict() {
    let policy = provgate_testkit::policy();
    let judge = |subject: &Subject, answers: &dyn Answers| {
        block_on(judge(policy, subject, Mode::Enforce, now(), answers)).expect("the built-in policy judges")
    };
    for answer in [
        Answer::Found,
        Answer::not_found("Gitea answered 404"),
        Answer::unavailable("Gitea answered 503"),
    ] {
        let kind = answer.kind();
        for (name, subject) in [("good", good_subject()), ("rejected", rejected_subject())] {
            let resumed = judge(&subject, &*Scripted::new(answer.clone()));
            let restarted = judge(&subject, &*Scripted::waited(answer.clone()));
            assert_eq!(resumed.instances, 1, "{name}, {kind}: the answer was at hand");
            assert_eq!(restarted.instances, 2, "{name}, {kind}: the answer was awaited");
            assert_eq!(resumed.verdict, restarted.verdict, "{name}, {kind}");
            assert_eq!(resumed.answers, restarted.answers, "{name}, {kind}");
            assert_eq!(resumed.answers.len(), 1, "{name}, {kind}");
            if name == "rejected" {
                assert_eq!(resumed.verdict.decided.status, Status::Rejected, "{name}, {kind}");
            }
        }

        // A renamed repository takes two rounds: two restarts when awaited.
        let at_hand = Renamed::new(answer.clone(), true);
        let awaited = Renamed::new(answer.clone(), false);
        let resumed = judge(&good_subject(), &at_hand);
        let restarted = judge(&good_subject(), &awaited);
        assert_eq!(resumed.instances, 1, "moved, {kind}");
        assert_eq!(restarted.instances, 3, "moved, {kind}");
        assert_eq!(resumed.verdict, restarted.verdict, "moved, {kind}");
        assert_eq!(resumed.answers, restarted.answers, "moved, {kind}");
        let asked: Vec<(String, String)> = awaited
            .asked
            .lock()
            .unwrap()
            .iter()
            .map(|q| (q.owner.clone(), q.repo.clone()))
            .collect();
        assert_eq!(
            asked,
            [
                ("molecule-ai".into(), "app".into()),
                ("molecule-ai".into(), "app-renamed".into())
            ],
            "moved, {kind}: asked where the label points, then where it moved"
        );
        let resolves = resumed
            .verdict
            .decided
            .findings
            .iter()
            .find(|f| f.rule == "revision.resolves")
            .expect("a revision.resolves finding");
        assert!(resolves.message.contains("moved from"), "moved, {kind}: {resolves:?}");
    }
    // The verdicts above are the rules' own, not one fixed answer.
    let found = judge(&good_subject(), &*Scripted::found());
    let missing = judge(&good_subject(), &*Scripted::new(Answer::not_found("404")));
    assert!(found.verdict.decided.allowed && !missing.verdict.decided.allowed);
}

// ---------------------------------------------------------------------------
// Refused at load.
// ---------------------------------------------------------------------------

#[test]
fn an_artifact_of_the_old_world_is_refused_naming_it() {
    match load(old_world_component(), "old-world.wasm") {
        Err(PolicyError::Invalid { reason, .. }) => assert!(reason.contains(OLD_WORLD), "{reason}"),
        Err(other) => panic!("expected the old world to be refused as invalid, got {other:?}"),
        Ok(_) => panic!("an artifact of the 0.1 world loaded"),
    }

    let run = verify_with_policy(old_world_component());
    assert_exits_3_naming(&run, OLD_WORLD);
}

#[test]
fn component_with_a_wasi_import_is_refused() {
    let (mut resolve, _) = provgate_wit();
    resolve
        .push_str(
            "wasi-cli.wit",
            "package wasi:cli@0.2.0;
             interface environment {
                 get-environment: func() -> list<tuple<string, string>>;
             }",
        )
        .expect("wasi:cli parses");
    let pkg = resolve
        .push_str(
            "sneaky.wit",
            "package hostile:guest;
             world sneaky {
                 include provgate:policy/provgate@0.2.0;
                 import wasi:cli/environment@0.2.0;
             }",
        )
        .expect("the sneaky world parses");
    let world = resolve.select_world(&[pkg], Some("sneaky")).expect("world sneaky");
    // A list result lowers to a pointer to an (address, count) area. Its
    // describe would call the import and then trap, so an `Invalid` (not a
    // `Trap`) shows none of it ran.
    let wat = template()
        .replacen(
            "(module",
            r#"(module
  (import "wasi:cli/environment@0.2.0" "get-environment" (func $get_environment (param i32)))"#,
            1,
        )
        .replace(
            "{describe}",
            &format!("(call $get_environment (i32.const {SCRATCH})) unreachable"),
        )
        .replace("{evaluate}", "")
        .replace("{resume}", "");
    let bytes = encode(&resolve, world, &wat);
    match load(bytes, "wasi-import.wasm") {
        Err(PolicyError::Invalid { reason, .. }) => assert!(reason.contains("wasi:cli/environment"), "{reason}"),
        Err(other) => panic!("expected the component to be refused at link time, got {other:?}"),
        Ok(_) => panic!("a component importing wasi:cli/environment loaded"),
    }
}

// ---------------------------------------------------------------------------
// Damaged artifacts.
// ---------------------------------------------------------------------------

fn leb_u32(bytes: &[u8], pos: &mut usize) -> u32 {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = bytes[*pos];
        *pos += 1;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
    }
    panic!("LEB128 too long at {pos}");
}

/// `(id, content)` of each section between `range.start` (just past an
/// 8-byte preamble) and `range.end`.
fn sections(bytes: &[u8], range: Range<usize>) -> Vec<(u8, Range<usize>)> {
    let mut out = Vec::new();
    let mut pos = range.start + 8;
    while pos < range.end {
        let id = bytes[pos];
        pos += 1;
        let size = leb_u32(bytes, &mut pos) as usize;
        out.push((id, pos..pos + size));
        pos += size;
    }
    out
}

/// The middle function body in the code section of the component's largest
/// core module (the rules): the position of its size field and its bytes.
fn middle_function_body(component: &[u8]) -> (usize, Range<usize>) {
    const CORE_MODULE: u8 = 1;
    const CODE: u8 = 10;
    let module = sections(component, 0..component.len())
        .into_iter()
        .filter(|(id, _)| *id == CORE_MODULE)
        .max_by_key(|(_, range)| range.len())
        .expect("a core module")
        .1;
    let code = sections(component, module)
        .into_iter()
        .find(|(id, _)| *id == CODE)
        .expect("a code section")
        .1;
    let mut pos = code.start;
    let count = leb_u32(component, &mut pos);
    let mut bodies = Vec::new();
    for _ in 0..count {
        let size_field = pos;
        let size = leb_u32(component, &mut pos) as usize;
        bodies.push((size_field, pos..pos + size));
        pos += size;
    }
    assert_eq!(pos, code.end, "the code section parses");
    bodies.swap_remove(bodies.len() / 2)
}

#[test]
fn truncated_and_bit_flipped_artifacts_are_refused() {
    let builtin = Artifact::builtin().bytes.into_owned();

    let truncated = builtin[..builtin.len() / 2].to_vec();
    let preamble_only = builtin[..8].to_vec();
    // Flipping the low bit of a function body's size moves its end by one
    // byte: the body no longer ends at its `end`, so it cannot validate.
    let (size_field, body) = middle_function_body(&builtin);
    let mut size_flipped = builtin.clone();
    size_flipped[size_field] ^= 1;
    // Flipping every bit of the body's final `end` (0x0b) leaves the module
    // well formed but the function unterminated.
    let mut end_flipped = builtin.clone();
    assert_eq!(end_flipped[body.end - 1], 0x0b, "a function body ends with `end`");
    end_flipped[body.end - 1] ^= 0xff;
    // Not wasm at all, and garbage behind a valid component preamble.
    let json = std::fs::read(repo_path("tests/data/inspect/buildx-single.json")).expect("fixture");
    let mut garbage = builtin[..8].to_vec();
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    garbage.extend((0..4096).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));

    for (name, bytes) in [
        ("truncated to half", truncated),
        ("only the preamble", preamble_only),
        ("a body size flipped in the middle of the code", size_flipped),
        ("the `end` of a body in the middle of the code flipped", end_flipped),
        ("a JSON file", json),
        ("random bytes behind a component preamble", garbage),
        ("an empty file", Vec::new()),
    ] {
        match load(bytes, name) {
            Err(PolicyError::Invalid { .. }) => {}
            Err(other) => panic!("{name}: refused, but not as an invalid component: {other:?}"),
            Ok(policy) => {
                let decision = block_on(judge(
                    &policy,
                    &good_subject(),
                    Mode::Enforce,
                    now(),
                    &NoAnswers("test"),
                ));
                panic!("{name}: loaded, and judged to {decision:?}");
            }
        }
    }
}

/// The shipped guest runs on a 16 KiB stack (policy-build/src/lib.rs), about
/// 45 levels of serde_json's recursion: settings nested deeper than the
/// guest's own cap of 8 levels, up to and past serde_json's 128, must end
/// in a settings error, not in a stack overflow.
#[test]
fn deeply_nested_settings_are_refused_by_name_within_the_guests_16_kib_stack() {
    for depth in [2, 7, 8, 9, 100, 127, 128, 500] {
        let owners = format!("{}\"a\"{}", "[".repeat(depth), "]".repeat(depth));
        let settings = format!(r#"{{"allowed_owners":{owners},"gitea_base_url":"https://g"}}"#);
        let bytes = slot::write(&Artifact::builtin().bytes, settings.as_bytes()).expect("fits the slot");
        let name = format!("settings nested {depth} deep");
        match load(bytes, &name) {
            Err(PolicyError::Settings { reason, .. }) => {
                assert!(reason.starts_with("settings"), "{name}: {reason}");
            }
            Err(other) => panic!("{name}: refused, but not for its settings: {other}"),
            Ok(_) => panic!("{name}: loaded"),
        }
    }
}

// ---------------------------------------------------------------------------
// The real binary with a hostile artifact.
// ---------------------------------------------------------------------------

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `provgate` with a fresh code cache; kills it if it outlives a minute
/// (a hang guard, not a performance assertion).
fn provgate(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let stderr_path = dir.path().join("stderr");
    let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
    let stdout_path = dir.path().join("stdout");
    let stdout = std::fs::File::create(&stdout_path).expect("stdout file");
    let started = Instant::now();
    let mut child = Command::new(provgate_testkit::provgate_bin())
        .args(args)
        .env("PROVGATE_CACHE_DIR", dir.path().join("cache"))
        .env_remove("GITEA_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("provgate starts");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for provgate") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().expect("kill provgate");
            child.wait().expect("reap provgate");
            panic!("provgate {args:?} still ran after a minute");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = std::fs::read_to_string(&stderr_path).expect("read stderr");
    let stdout = std::fs::read_to_string(&stdout_path).expect("read stdout");
    Run { status, stdout, stderr }
}

fn fixture() -> String {
    repo_path("tests/data/inspect/buildx-single.json").display().to_string()
}

fn replay() -> String {
    repo_path("docs/examples/lookups.replay.json").display().to_string()
}

/// `provgate verify` of the good fixture under a hostile policy file, its
/// answers replayed (at hand).
fn verify_with_policy(bytes: Vec<u8>) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hostile.wasm");
    std::fs::write(&path, bytes).expect("write the hostile artifact");
    let path = path.display().to_string();
    provgate(&[
        "verify",
        "--inspect",
        &fixture(),
        "--policy",
        &path,
        "--replay",
        &replay(),
    ])
}

/// Exit 3, `what` on stderr, and no verdict printed.
fn assert_exits_3_naming(run: &Run, what: &str) {
    assert_eq!(run.status.code(), Some(3), "stderr: {}", run.stderr);
    assert!(run.stderr.contains(what), "{what:?} not in: {}", run.stderr);
    assert!(run.stdout.is_empty(), "a verdict was printed: {}", run.stdout);
}

#[test]
fn cli_exits_3_when_the_policy_loops_forever() {
    let run = verify_with_policy(hostile(ENDLESS_LOOP, "", ""));
    assert_exits_3_naming(&run, "time budget");
}

#[test]
fn cli_exits_3_when_the_policy_grows_memory_past_the_cap() {
    let run = verify_with_policy(hostile(MEMORY_BOMB, "", ""));
    assert_exits_3_naming(&run, "memory");
}

#[test]
fn cli_exits_3_naming_the_limit_for_every_other_hostile_policy() {
    for (bytes, what) in [
        (hostile(DEEP_RECURSION, "", ""), "stack"),
        (hostile(&returning(ASK_ONE), ENDLESS_LOOP, ""), "time budget"),
        (hostile(&million_findings(), "", ""), "1000000 findings"),
        (hostile(&huge_message(), "", ""), "out of bounds"),
        (hostile(&long_message(), "", ""), "bytes of text"),
        (hostile(&step_tag(1), "", ""), "empty round"),
    ] {
        let run = verify_with_policy(bytes);
        assert_exits_3_naming(&run, what);
    }
}

#[test]
fn policy_digest_mismatch_exits_3() {
    let zeros = format!("sha256:{}", "0".repeat(64));
    let run = provgate(&[
        "verify",
        "--inspect",
        &fixture(),
        "--replay",
        &replay(),
        "--policy-digest",
        &zeros,
    ]);
    assert_eq!(run.status.code(), Some(3), "stderr: {}", run.stderr);
    assert!(run.stderr.contains(&zeros), "{}", run.stderr);
    assert!(run.stderr.contains(&Artifact::builtin().digest), "{}", run.stderr);
}

// ---------------------------------------------------------------------------
// The compiled-code cache: only this user's own entry for this very
// artifact is ever loaded (host/src/policy/cache.rs).
// ---------------------------------------------------------------------------

/// A cache directory and a key (`$XDG_STATE_HOME`) of a test's own.
struct CacheDirs {
    root: tempfile::TempDir,
}

impl CacheDirs {
    fn new() -> CacheDirs {
        CacheDirs {
            root: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn cache(&self) -> PathBuf {
        self.root.path().join("cache")
    }

    fn state(&self) -> PathBuf {
        self.root.path().join("state")
    }

    /// `provgate ARGS` with this cache and this key.
    fn provgate(&self, args: &[&str]) -> std::process::Output {
        let (cache, state) = (self.cache(), self.state());
        provgate_testkit::provgate_env(
            args,
            None,
            &[
                ("PROVGATE_CACHE_DIR", cache.to_str().unwrap()),
                ("XDG_STATE_HOME", state.to_str().unwrap()),
            ],
        )
    }

    /// `verify --format json` of the good fixture, answers replayed, under
    /// the artifact at `policy` (pinned to its digest) or the built-in one.
    fn verify(&self, policy: Option<(&str, &str)>) -> std::process::Output {
        let (fixture, replay) = (fixture(), replay());
        let mut args = vec!["verify", "--inspect", &fixture, "--replay", &replay, "--format", "json"];
        if let Some((path, digest)) = policy {
            args.extend(["--policy", path, "--policy-digest", digest]);
        }
        self.provgate(&args)
    }

    /// The code file of the entry for the artifact with `digest`.
    fn entry(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        std::fs::read_dir(self.cache())
            .expect("the cache directory")
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.extension().is_some_and(|x| x == "cwasm") && p.file_name().unwrap().to_str().unwrap().starts_with(hex)
            })
            .unwrap_or_else(|| panic!("no cache entry for {digest}"))
    }

    fn files_in_cache(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.cache()) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn verdict_json(o: &std::process::Output) -> serde_json::Value {
    let out = provgate_testkit::stdout(o);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not a verdict ({e}): {out}\n{}", provgate_testkit::stderr(o)))
}

#[test]
fn a_cache_entry_copied_over_another_artifacts_names_is_recompiled_and_never_run() {
    let dirs = CacheDirs::new();
    let built = tempfile::tempdir().expect("tempdir");
    // A trusts the fixture's Gitea and owner; B trusts neither.
    let a = provgate_testkit::policy_with_settings(
        built.path(),
        "a",
        &serde_json::json!({"gitea_base_url": "https://git.moleculesai.app", "allowed_owners": ["molecule-ai"]}),
    );
    let b = provgate_testkit::policy_with_settings(
        built.path(),
        "b",
        &serde_json::json!({"gitea_base_url": "https://gitea.elsewhere.example", "allowed_owners": ["someone-else"]}),
    );
    let digest = |path: &str| provgate::digest::sha256_digest(&std::fs::read(path).unwrap());
    let (a_digest, b_digest) = (digest(&a), digest(&b));

    let a_run = dirs.verify(Some((&a, &a_digest)));
    assert_eq!(
        provgate_testkit::code(&a_run),
        0,
        "{}",
        provgate_testkit::stderr(&a_run)
    );
    let b_run = dirs.verify(Some((&b, &b_digest)));
    let b_verdict = verdict_json(&b_run);
    assert_eq!(verdict_json(&a_run)["allowed"], true);
    assert_eq!(b_verdict["allowed"], false, "{b_verdict}");
    assert_eq!(b_verdict["policy"]["digest"], b_digest.as_str());

    // A's entry, code and .sum, under B's names: both are provgate's own
    // output, as a CI cache restored across branches would leave them.
    let (a_code, b_code) = (dirs.entry(&a_digest), dirs.entry(&b_digest));
    let b_own = std::fs::read(&b_code).unwrap();
    std::fs::copy(&a_code, &b_code).unwrap();
    std::fs::copy(a_code.with_extension("sum"), b_code.with_extension("sum")).unwrap();

    let again = dirs.verify(Some((&b, &b_digest)));
    let stderr = provgate_testkit::stderr(&again);
    assert_eq!(
        verdict_json(&again),
        b_verdict,
        "B's digest, but not B's rules: {stderr}"
    );
    assert_eq!(provgate_testkit::code(&again), provgate_testkit::code(&b_run));
    assert!(
        stderr.contains("tampered"),
        "the swapped entry was not reported: {stderr}"
    );
    let name = b_code.file_name().unwrap().to_str().unwrap();
    assert!(stderr.contains(name), "the warning does not name the entry: {stderr}");
    assert_eq!(
        std::fs::read(&b_code).unwrap(),
        b_own,
        "B's entry was not recompiled and rewritten"
    );

    // Rewritten, it is loaded again without a word.
    let third = dirs.verify(Some((&b, &b_digest)));
    assert_eq!(verdict_json(&third), b_verdict);
    assert!(
        !provgate_testkit::stderr(&third).contains("cache"),
        "{}",
        provgate_testkit::stderr(&third)
    );
}

#[test]
fn a_cache_directory_others_may_write_is_refused_with_one_warning_and_never_written() {
    use std::os::unix::fs::PermissionsExt;
    for mode in [0o770, 0o1777] {
        let dirs = CacheDirs::new();
        std::fs::create_dir(dirs.cache()).unwrap();
        std::fs::set_permissions(dirs.cache(), std::fs::Permissions::from_mode(mode)).unwrap();

        let o = dirs.verify(None);
        assert_eq!(provgate_testkit::code(&o), 0, "{}", provgate_testkit::stderr(&o));
        assert_eq!(verdict_json(&o)["status"], "verified");
        let stderr = provgate_testkit::stderr(&o);
        let quoted = format!("\"{}\"", dirs.cache().display());
        let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains(&quoted)).collect();
        assert_eq!(warnings.len(), 1, "{mode:o}: not one warning naming {quoted}: {stderr}");
        assert!(warnings[0].contains("writable by"), "{}", warnings[0]);
        assert_eq!(dirs.files_in_cache(), Vec::<PathBuf>::new(), "{mode:o}: written into");
    }
}

#[test]
fn without_a_place_for_its_key_the_cache_is_off_with_a_warning_and_the_verdict_stands() {
    let dirs = CacheDirs::new();
    // $XDG_STATE_HOME under a regular file: no directory can be made there.
    std::fs::write(dirs.root.path().join("file"), b"").unwrap();
    let state = dirs.root.path().join("file").join("state");
    let cache = dirs.cache();
    let fixture = fixture();
    let replay = replay();
    let o = provgate_testkit::provgate_env(
        &["verify", "--inspect", &fixture, "--replay", &replay, "--format", "json"],
        None,
        &[
            ("PROVGATE_CACHE_DIR", cache.to_str().unwrap()),
            ("XDG_STATE_HOME", state.to_str().unwrap()),
        ],
    );
    assert_eq!(provgate_testkit::code(&o), 0, "{}", provgate_testkit::stderr(&o));
    assert_eq!(verdict_json(&o)["status"], "verified");
    let stderr = provgate_testkit::stderr(&o);
    assert!(
        stderr.contains("not using the compiled-code cache") && stderr.contains("cache-key"),
        "{stderr}"
    );
    assert_eq!(dirs.files_in_cache(), Vec::<PathBuf>::new(), "an entry without a key");
}

#[test]
fn a_fifo_or_a_huge_file_in_a_cache_entrys_place_is_passed_over_not_waited_on_or_hashed() {
    let dirs = CacheDirs::new();
    let first = dirs.verify(None);
    let verdict = verdict_json(&first);
    let digest = verdict["policy"]["digest"]
        .as_str()
        .expect("the policy digest")
        .to_string();
    let code = dirs.entry(&digest);
    let sum = code.with_extension("sum");
    let mkfifo = |path: &std::path::Path| {
        let _ = std::fs::remove_file(path);
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo runs");
        assert!(status.success(), "mkfifo {}", path.display());
    };

    // A FIFO as the .sum (a restored CI cache keeps FIFOs): the open must
    // not wait for a writer that never comes.
    mkfifo(&sum);
    let o = dirs.verify(None);
    assert_eq!(verdict_json(&o), verdict, "{}", provgate_testkit::stderr(&o));

    // A FIFO as the code file, then a sparse 20 GiB one: passed over and
    // recompiled, never read to the end.
    mkfifo(&code);
    let o = dirs.verify(None);
    assert_eq!(verdict_json(&o), verdict, "{}", provgate_testkit::stderr(&o));
    let huge = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&code)
        .expect("the entry");
    huge.set_len(20 << 30).expect("a sparse file");
    drop(huge);
    let o = dirs.verify(None);
    let err = provgate_testkit::stderr(&o);
    assert_eq!(verdict_json(&o), verdict, "{err}");
    assert!(err.contains("larger than"), "{err}");
}
