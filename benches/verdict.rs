//! What one verdict costs, side by side on the same subjects (a passing and
//! a rejected one): the rules compiled natively (the floor), provgate's
//! production path (a fresh sandbox per verdict), one warm instance (for
//! calibration), the same rules in Rego under regorus (the peer), the cold
//! start of the artifact, and the look-up path. Figures: docs/benchmarks.md.

#[path = "../tests/support/gitea.rs"]
#[allow(dead_code)]
mod gitea;
#[path = "../tests/support/wat_guest.rs"]
#[allow(dead_code)]
mod wat_guest;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use provgate::lookup::cache::{Cache, CachePolicy};
use provgate::lookup::gitea::{BlockingGitea, GiteaClient};
use provgate::lookup::{Answer, CommitLookup};
use provgate::policy::{Artifact, Limits, Origin, Policy, cache::CodeCache, slot};
use provgate::subject::Subject;
use provgate::verdict::{Mode, Status};
use provgate_guest::model;

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
    }
}

/// The passing subject and a rejected one (upper-case revision: malformed).
fn subjects() -> [(&'static str, Subject, Status); 2] {
    [
        ("passing", subject(SHA), Status::Verified),
        ("rejected", subject(&SHA.to_uppercase()), Status::Rejected),
    ]
}

struct Found;

impl CommitLookup for Found {
    fn commit(&self, _: &str, _: &str, _: &str) -> Answer {
        Answer::Found
    }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS)
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

fn regorus_engine() -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    engine
        .add_policy("provenance.rego".into(), include_str!("provenance.rego").into())
        .expect("the Rego twin parses");
    engine
        .add_data_json(
            r#"{"settings": {"created_max_skew_seconds": 300, "allowed_owners": ["molecule-ai"],
                "source_pattern": "^https://git\\.moleculesai\\.app/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\\.git|/)?$"}}"#,
        )
        .expect("settings");
    engine
        .add_extension(
            "commit_exists".into(),
            3,
            Box::new(|_| Ok(regorus::Value::from("found"))),
        )
        .expect("extension");
    engine
}

fn regorus_input(s: &Subject) -> regorus::Value {
    let json = serde_json::json!({
        "reference": s.reference, "digest": s.digest, "labels": s.labels,
        "now_ns": NOW_SECS * 1_000_000_000, "mode": "enforce",
    });
    regorus::Value::from_json_str(&json.to_string()).expect("input")
}

fn verdicts(c: &mut Criterion) {
    let settings_json = slot::read(&Artifact::builtin().bytes).expect("slot").to_vec();
    let settings = provgate_guest::settings::Settings::parse(&settings_json).expect("settings");
    let policy = Policy::load(Artifact::builtin(), Limits::default(), None).expect("policy");
    let found: Arc<dyn CommitLookup> = Arc::new(Found);
    let mut warm = policy.warm_instance(found.clone()).expect("warm instance");
    let mut rego = regorus_engine();

    for (name, subject, expected) in subjects() {
        // The four implementations must agree before they are timed.
        let native = native_subject(&subject);
        let mut lookup = |_: &str, _: &str, _: &str| model::CommitAnswer::Found;
        let n = provgate_guest::evaluate(&settings, &native, model::Mode::Enforce, &mut lookup);
        let fresh = policy
            .evaluate(&subject, Mode::Enforce, now(), found.clone())
            .expect("fresh");
        let w = warm.evaluate(&subject, Mode::Enforce, now()).expect("warm");
        rego.set_input(regorus_input(&subject));
        let r = rego.eval_rule("data.provgate.verdict".into()).expect("rego");
        assert_eq!(fresh.status, expected);
        assert_eq!(w, fresh);
        assert_eq!(n.event, fresh.event);
        assert_eq!(
            r["event"].as_string().expect("event").as_ref(),
            fresh.event,
            "the Rego twin disagrees"
        );

        let mut group = c.benchmark_group(format!("verdict/{name}"));
        group.bench_function("native_rules", |b| {
            b.iter(|| provgate_guest::evaluate(&settings, black_box(&native), model::Mode::Enforce, &mut lookup))
        });
        group.bench_function("provgate_fresh_sandbox", |b| {
            b.iter(|| policy.evaluate(black_box(&subject), Mode::Enforce, now(), found.clone()))
        });
        group.bench_function("provgate_warm_instance", |b| {
            b.iter(|| warm.evaluate(black_box(&subject), Mode::Enforce, now()))
        });
        let input = regorus_input(&subject);
        group.bench_function("regorus_warm", |b| {
            b.iter(|| {
                rego.set_input(input.clone());
                rego.eval_rule("data.provgate.verdict".into())
            })
        });
        group.finish();
    }
}

/// The same calls into a guest that does no work (hand-written WAT that
/// returns an empty verdict): what the sandbox and the component boundary
/// cost by themselves, the floor under the two provgate figures above.
fn sandbox_floor(c: &mut Criterion) {
    let empty = Artifact::from_bytes(
        Cow::Owned(wat_guest::hostile("", "")),
        Origin::File("empty-guest.wasm".into()),
    );
    let policy = Policy::load(empty, Limits::default(), None).expect("the empty guest loads");
    let found: Arc<dyn CommitLookup> = Arc::new(Found);
    let mut warm = policy.warm_instance(found.clone()).expect("warm instance");
    let (_, subject, _) = subjects().into_iter().next().expect("the passing subject");
    let verdict = policy
        .evaluate(&subject, Mode::Enforce, now(), found.clone())
        .expect("the empty guest evaluates");
    assert!(verdict.findings.is_empty(), "the empty guest does no work");

    let mut group = c.benchmark_group("sandbox_floor");
    group.bench_function("empty_guest_fresh_sandbox", |b| {
        b.iter(|| policy.evaluate(black_box(&subject), Mode::Enforce, now(), found.clone()))
    });
    group.bench_function("empty_guest_warm_instance", |b| {
        b.iter(|| warm.evaluate(black_box(&subject), Mode::Enforce, now()))
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
    let standin = gitea::GiteaStandIn::start();
    standin.add_commit("molecule-ai", "app", SHA);
    let client = GiteaClient::new(&standin.base_url(), None, Duration::from_secs(5)).expect("client");
    let gitea = BlockingGitea::new(client).expect("runtime");
    assert_eq!(gitea.commit("molecule-ai", "app", SHA), Answer::Found);
    let cache = Cache::new(Found, CachePolicy::server());
    cache.commit("molecule-ai", "app", SHA);

    let mut group = c.benchmark_group("lookup");
    group.bench_function("cache_hit", |b| {
        b.iter(|| cache.commit("molecule-ai", black_box("app"), SHA))
    });
    group.bench_function("miss_loopback_gitea_standin", |b| {
        b.iter(|| gitea.commit("molecule-ai", black_box("app"), SHA))
    });
    group.finish();
}

criterion_group!(benches, verdicts, sandbox_floor, cold_start, lookups);
criterion_main!(benches);
