//! What one verdict costs, side by side on the same subjects (a passing one
//! and a rejected one, whose upper-case revision asks no question):
//!
//! - `native_rules`: the rules compiled natively, the floor;
//! - `provgate_fresh_cached`: provgate's production path for a cached
//!   commit: a fresh instance, its question answered at hand from the warm
//!   answer cache and handed back to the same instance (evaluate + resume);
//! - `provgate_fresh_awaited`: the restart path, when the answer had to be
//!   awaited: the instance is dropped, and a second one starts with the answer
//!   supplied (two instances). The rejected subject asks nothing, so there
//!   both provgate figures are one instance and one call;
//! - `regorus_warm`: the same rules in Rego under regorus, the peer
//!   (`--features regorus`).
//!
//! Then the sandbox floor (a hand-written WAT guest that does no work: one
//! fresh instance and an empty verdict, and one that asks one question and
//! is resumed), the cold start of the artifact (compiling it, loading
//! precompiled code), and the look-up path (a cache hit, a miss answered by
//! the Gitea stand-in on loopback). The async pipeline runs under
//! `now_or_never`: with every answer ready it completes without waiting, so
//! no runtime is timed. Figures: docs/benchmarks.md.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use provgate::judge::{Decision, judge};
use provgate::lookup::cache::{Cache, CachePolicy};
use provgate::lookup::gitea::{Gitea, GiteaClient};
use provgate::lookup::replay::Replay;
use provgate::lookup::{Answer, Answered, Answering, Answers, Question, Source, Stack};
use provgate::policy::{Artifact, Limits, Origin, Policy, Step, cache::CodeCache};
use provgate::subject::Subject;
use provgate::verdict::{Mode, Status};
use provgate_contract::slot;
use provgate_guest::model;
use provgate_testkit::{gitea, wat_guest};

const SHA: &str = "36b68ae653f75d2ed731081e35541b6f6a0e7c0b";
const DIGEST: &str = "sha256:8cbffb2fd0364dd51e206a3ed61d584d5a7668fb71df7469702d24b6d2536d09";
const NOW_SECS: u64 = 1_795_428_000;

fn subject(revision: &str) -> Subject {
    Subject {
        reference: format!("git.moleculesai.app/molecule-ai/app:staging-{SHA}"),
        digest: DIGEST.into(),
        labels: BTreeMap::from([
            (
                "org.opencontainers.image.source".into(),
                "https://git.moleculesai.app/molecule-ai/app".into(),
            ),
            ("org.opencontainers.image.revision".into(), revision.into()),
            ("org.opencontainers.image.created".into(), "2026-11-01T10:00:00Z".into()),
            ("molecule.workflow.run_id".into(), "4242".into()),
        ]),
        pin: None,
        platform: None,
    }
}

/// The passing subject and a rejected one (upper-case revision: malformed,
/// so nothing is asked), with the status and the questions each gets.
fn subjects() -> [(&'static str, Subject, Status, usize); 2] {
    [
        ("passing", subject(SHA), Status::Verified, 1),
        ("rejected", subject(&SHA.to_uppercase()), Status::Rejected, 0),
    ]
}

/// The one question the passing subject asks.
fn question() -> Question {
    Question::new("molecule-ai", "app", SHA)
}

/// "Found", at hand.
struct Found;

impl Answers for Found {
    fn at_hand(&self, _: &Question) -> Option<Answer> {
        Some(Answer::Found)
    }

    fn answer<'a>(&'a self, _: &'a Question) -> Answering<'a> {
        Box::pin(std::future::ready(Answer::Found))
    }
}

/// "Found", but never at hand: the pipeline must await it, so it frees the
/// instance and starts another with the answer (a ready future, so the
/// await itself costs nothing).
struct Awaited;

impl Answers for Awaited {
    fn at_hand(&self, _: &Question) -> Option<Answer> {
        None
    }

    fn answer<'a>(&'a self, _: &'a Question) -> Answering<'a> {
        Box::pin(std::future::ready(Answer::Found))
    }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

/// The pipeline to its decision, which must not have to wait.
fn judge_now(policy: &Policy, subject: &Subject, answers: &dyn Answers) -> Decision {
    judge(policy, subject, Mode::Enforce, now(), answers)
        .now_or_never()
        .expect("every answer was ready: the verdict completes without waiting")
        .expect("the policy judges")
}

fn native_subject(s: &Subject) -> model::Subject {
    model::Subject {
        reference: s.reference.clone(),
        digest: s.digest.clone(),
        labels: s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        pin: None,
        now: model::Instant {
            seconds: NOW_SECS as i64,
            nanoseconds: 0,
        },
    }
}

/// The same rules in Rego under regorus, the peer: built only with
/// `--features regorus`. The Rego is the twin the differential test holds
/// to the guest (`policies/provenance.rego`); it builds no messages, which
/// makes the comparison lean in regorus' favour.
#[cfg(feature = "regorus")]
mod rego {
    use super::{NOW_SECS, Subject};
    use criterion::BenchmarkGroup;
    use criterion::measurement::WallTime;
    use provgate::policy::Artifact;
    use provgate_contract::slot;

    pub struct Twin(regorus::Engine);

    impl Twin {
        pub fn new() -> Twin {
            let mut engine = regorus::Engine::new();
            engine
                .add_policy(
                    "policies/provenance.rego".into(),
                    include_str!("../policies/provenance.rego").into(),
                )
                .expect("the Rego twin parses");
            // The built-in artifact's own settings.
            let artifact = Artifact::builtin();
            let settings = slot::read(&artifact.bytes).expect("the settings slot");
            let settings = std::str::from_utf8(settings).expect("the settings are UTF-8");
            engine
                .add_data_json(&format!(r#"{{"settings": {settings}}}"#))
                .expect("settings");
            engine
                .add_extension(
                    "commit_exists".into(),
                    3,
                    Box::new(|_| regorus::Value::from_json_str(r#"{"kind": "found"}"#)),
                )
                .expect("extension");
            Twin(engine)
        }

        /// The event the Rego twin decides for `s`.
        pub fn event(&mut self, s: &Subject) -> String {
            self.0.set_input(input(s));
            let r = self.0.eval_rule("data.provgate.verdict".into()).expect("rego");
            r["event"].as_string().expect("event").to_string()
        }

        pub fn bench(&mut self, group: &mut BenchmarkGroup<'_, WallTime>, s: &Subject) {
            let input = input(s);
            group.bench_function("regorus_warm", |b| {
                b.iter(|| {
                    self.0.set_input(input.clone());
                    self.0.eval_rule("data.provgate.verdict".into())
                })
            });
        }
    }

    fn input(s: &Subject) -> regorus::Value {
        let json = serde_json::json!({
            "reference": s.reference, "digest": s.digest, "labels": s.labels, "pin": null,
            "now": {"seconds": NOW_SECS, "nanoseconds": 0}, "mode": "enforce",
        });
        regorus::Value::from_json_str(&json.to_string()).expect("input")
    }
}

fn verdicts(c: &mut Criterion) {
    let settings_json = slot::read(&Artifact::builtin().bytes).expect("slot").to_vec();
    let settings = provgate_guest::settings::Settings::parse(&settings_json).expect("settings");
    let policy = Policy::load(Artifact::builtin(), Limits::default(), None).expect("policy");
    // The production stack over a source that already answered: after the
    // first verdict, every question is a hit in the warm cache.
    let recorded = [Answered {
        question: question(),
        answer: Answer::Found,
    }];
    let stack = Stack::build(
        Source::Replay(Replay::new(&recorded)),
        &policy.description().settings.gitea_base_url,
        CachePolicy::server(),
    )
    .expect("the look-up stack");
    let cached = stack.answers();
    #[cfg(feature = "regorus")]
    let mut rego = rego::Twin::new();

    for (name, subject, expected, questions) in subjects() {
        // The implementations and both paths must agree before they are timed.
        let native = native_subject(&subject);
        let mut lookup = |_: &model::Question| model::CommitAnswer::Found;
        let n = provgate_guest::evaluate(&settings, &native, model::Mode::Enforce, &mut lookup);
        let fresh = judge_now(&policy, &subject, &*cached);
        let awaited = judge_now(&policy, &subject, &Awaited);
        assert_eq!(fresh.verdict.decided.status, expected);
        assert_eq!(fresh.answers.len(), questions);
        assert_eq!(fresh.instances, 1, "the cached answer was at hand");
        assert_eq!(
            awaited.instances,
            1 + questions as u32,
            "an awaited answer costs an instance"
        );
        assert_eq!(awaited.verdict, fresh.verdict);
        assert_eq!(n.event.as_str(), fresh.verdict.decided.event);
        #[cfg(feature = "regorus")]
        assert_eq!(
            rego.event(&subject),
            fresh.verdict.decided.event,
            "the Rego twin disagrees"
        );

        let mut group = c.benchmark_group(format!("verdict/{name}"));
        group.bench_function("native_rules", |b| {
            b.iter(|| provgate_guest::evaluate(&settings, black_box(&native), model::Mode::Enforce, &mut lookup))
        });
        group.bench_function("provgate_fresh_cached", |b| {
            b.iter(|| judge_now(&policy, black_box(&subject), &*cached))
        });
        group.bench_function("provgate_fresh_awaited", |b| {
            b.iter(|| judge_now(&policy, black_box(&subject), &Awaited))
        });
        #[cfg(feature = "regorus")]
        rego.bench(&mut group, &subject);
        group.finish();
    }
    // Every cached verdict was answered by the cache: the source once.
    assert_eq!(stack.stats().asked(), 1, "the cache asked its source again");
    assert!(stack.stats().hits.load(Ordering::Relaxed) > 1);
}

/// A guest that does no work (hand-written WAT), in one fresh instance:
/// what the sandbox and the component boundary cost by themselves, the
/// floor under the provgate figures above. `empty_guest_fresh_instance`
/// returns an empty verdict from `evaluate`; `empty_guest_one_round` asks
/// one question from `evaluate` and returns the empty verdict from `resume`
/// (the shape of a passing verdict from the cache).
fn sandbox_floor(c: &mut Criterion) {
    let load = |bytes: Vec<u8>, name: &str| {
        let artifact = Artifact::from_bytes(Cow::Owned(bytes), Origin::File(name.into()));
        Policy::load(artifact, Limits::default(), None).expect("the empty guest loads")
    };
    let empty = load(wat_guest::template_component(), "empty-guest.wasm");
    let asking = load(
        wat_guest::hostile(&wat_guest::returning(wat_guest::ASK_ONE), "", ""),
        "asking-guest.wasm",
    );
    let (_, subject, _, _) = subjects().into_iter().next().expect("the passing subject");

    let verdict_at_once = |policy: &Policy, subject: &Subject| {
        let mut run = policy.start(subject, Mode::Enforce, now(), &[]).expect("starts");
        run.take_step()
    };
    let verdict_after_one_round = |policy: &Policy, subject: &Subject| {
        let mut run = policy.start(subject, Mode::Enforce, now(), &[]).expect("starts");
        let Some(Step::Ask(questions)) = run.take_step() else {
            panic!("the asking guest asks");
        };
        run.resume(&[Answer::Found]).expect("resumes");
        (questions, run.take_step())
    };
    match verdict_at_once(&empty, &subject) {
        Some(Step::Verdict(decided)) => assert!(decided.findings.is_empty(), "the empty guest does no work"),
        other => panic!("the empty guest decides at once: {other:?}"),
    }
    match verdict_after_one_round(&asking, &subject) {
        (questions, Some(Step::Verdict(decided))) => {
            assert_eq!(questions, [question()]);
            assert!(decided.findings.is_empty(), "the asking guest does no other work");
        }
        other => panic!("the asking guest decides once answered: {other:?}"),
    }

    let mut group = c.benchmark_group("sandbox_floor");
    group.bench_function("empty_guest_fresh_instance", |b| {
        b.iter(|| verdict_at_once(&empty, black_box(&subject)))
    });
    group.bench_function("empty_guest_one_round", |b| {
        b.iter(|| verdict_after_one_round(&asking, black_box(&subject)))
    });
    group.finish();
}

fn cold_start(c: &mut Criterion) {
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = CodeCache::new(cache_dir.path().to_path_buf());
    Policy::load(Artifact::builtin(), Limits::default(), Some(&cache)).expect("fills the cache");
    let mut group = c.benchmark_group("cold_start");
    group.sample_size(20);
    group.bench_function("compile_component", |b| {
        b.iter(|| Policy::load(Artifact::builtin(), Limits::default(), None).expect("load"))
    });
    group.bench_function("load_precompiled", |b| {
        b.iter(|| Policy::load(Artifact::builtin(), Limits::default(), Some(&cache)).expect("load"))
    });
    group.finish();
}

fn lookups(c: &mut Criterion) {
    let question = question();
    let cache = Cache::new(Found, CachePolicy::server());
    assert_eq!(
        cache.answer(&question).now_or_never(),
        Some(Answer::Found),
        "the cache fills at once"
    );

    let standin = gitea::GiteaStandIn::start();
    standin.add_commit("molecule-ai", "app", SHA);
    let client = GiteaClient::new(&standin.base_url(), None, Duration::from_secs(5)).expect("client");
    let gitea = Gitea::new(client, 64);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    assert_eq!(runtime.block_on(gitea.answer(&question)), Answer::Found);

    let mut group = c.benchmark_group("lookup");
    group.bench_function("cache_hit", |b| b.iter(|| cache.at_hand(black_box(&question))));
    group.bench_function("miss_loopback_gitea_standin", |b| {
        b.iter(|| runtime.block_on(gitea.answer(black_box(&question))))
    });
    group.finish();
    assert_eq!(cache.stats.asked(), 1, "the cache asked its source again");
}

criterion_group!(benches, verdicts, sandbox_floor, cold_start, lookups);
criterion_main!(benches);
