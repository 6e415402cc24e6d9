//! Running the policy component under wasmtime.
//!
//! Compiled once per process (or loaded from the code cache), linked once
//! into a pre-instantiated handle, then a fresh instance per verdict so no
//! state can leak between subjects. The component imports nothing: an
//! instance is a [`Run`] that either has its verdict or waits for answers
//! (`crate::judge` answers them). Every call into the guest runs with a
//! time budget (wall time in the guest) and a memory cap; hitting either
//! traps, and the trap is reported, never retried.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use wasmtime::component::{Component, ComponentExportIndex, Func, Linker, TypedFunc};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder,
    UpdateDeadline,
};

use crate::lookup::{Answer, Answered, Question};
use crate::policy::{Artifact, PolicyError, cache::CodeCache};
use crate::subject::Subject;
use crate::verdict::{Decided, Finding, Mode, Outcome, PolicyRef, Status};

wasmtime::component::bindgen!({
    world: "provgate",
    path: "../wit",
    // The subject is lowered straight from the host's own strings.
    ownership: Borrowing { duplicate_if_necessary: true },
});

use exports::provgate::policy::rules as wit;

/// The WIT world every artifact must implement.
pub const WORLD: &str = "provgate:policy/provgate@0.2.0";

/// The interfaces of worlds this host no longer runs, and what to say.
const OLD_WORLDS: [(&str, &str); 2] = [
    ("provgate:policy/rules@0.1.0", "provgate:policy/provgate@0.1.0"),
    ("provgate:policy/lookup@0.1.0", "provgate:policy/provgate@0.1.0"),
];

/// Per-evaluation bounds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wall time one call into the guest may take (the host answers
    /// questions between calls, outside the guest). A usual subject takes
    /// about 10 µs, four 1 MiB labels a few ms: a second leaves room for a
    /// thread descheduled on an overloaded machine and still stops an
    /// endless loop soon (Kubewarden's policy time-out, also epoch-based,
    /// defaults to two).
    pub time_budget: Duration,
    /// Linear memory one instance may grow to.
    pub memory_bytes: usize,
    /// Questions one verdict may ask in all (SPEC §3); the rules ask one,
    /// two when a repository moved.
    pub max_questions: usize,
    /// Rounds of questions one verdict may ask (SPEC §3).
    pub max_rounds: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time_budget: Duration::from_secs(1),
            memory_bytes: 64 << 20,
            max_questions: 4,
            max_rounds: 2,
        }
    }
}

/// The store's data: what one instance may touch.
struct Sandbox {
    limits: StoreLimits,
    clock: Clock,
}

/// The time the current call into the guest has taken.
struct Clock {
    started: Instant,
    budget: Duration,
}

impl Clock {
    fn start(budget: Duration) -> Clock {
        Clock {
            started: Instant::now(),
            budget,
        }
    }

    fn guest_time(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The trap raised when an evaluation overruns its time budget.
#[derive(Debug)]
struct OutOfTime(Duration);

impl fmt::Display for OutOfTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "it ran past its time budget ({} ms in the guest for one call)",
            self.0.as_millis()
        )
    }
}

impl std::error::Error for OutOfTime {}

/// How often the engine's epoch advances: the granularity of the time
/// budget. Only a guest running for a whole tick ever hears of it.
const TICK: Duration = Duration::from_millis(10);

/// Advances `engine`'s epoch every [`TICK`] until the engine is dropped.
/// Epoch checks are a load and a compare at function entries and loop
/// heads; fuel counted every basic block and cost 1.2–2 µs per verdict.
fn start_ticking(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("provgate-epoch".into())
        // It only sleeps and adds; the default 2 MiB stack is mapped for
        // nothing.
        .stack_size(64 << 10)
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .map(drop)
}

/// What `describe` says about an artifact, plus its digest and world.
#[derive(Clone, Debug, Serialize)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub digest: String,
    pub world: String,
    pub rules: Vec<&'static str>,
    pub settings: SettingsView,
}

#[derive(Clone, Debug, Serialize)]
pub struct SettingsView {
    pub gitea_base_url: String,
    pub allowed_owners: Vec<String>,
    pub created_max_skew_seconds: u32,
    pub on_unavailable: &'static str,
}

/// A loaded policy, ready to judge many subjects.
pub struct Policy {
    engine: Engine,
    pre: ProvgatePre<Sandbox>,
    /// `evaluate` and `resume`, found once: an instance's functions are
    /// fetched by index and called without a type check per instance
    /// (`ProvgatePre::new` checked the types; the bindings' per-instance
    /// `load` checked them again for every verdict).
    evaluate: ComponentExportIndex,
    resume: ComponentExportIndex,
    limits: Limits,
    artifact: Artifact,
    description: Description,
    /// What every verdict says about the policy that made it.
    reference: Arc<PolicyRef>,
}

/// Instances that may be alive at once. An instance lives only while the
/// guest computes (microseconds) and is never held while an answer is
/// awaited, so this bounds runtime threads evaluating at once, not requests.
const POOL_SLOTS: u32 = 128;

fn engine_config(limits: &Limits, pooling: bool) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.max_wasm_stack(512 << 10);
    // Traps are reported by their cause; a backtrace of an optimised,
    // stripped guest helps nobody and costs time on every trap.
    config.wasm_backtrace_max_frames(None);
    if pooling {
        // A fresh instance per verdict: with the pooling allocator and its
        // first MiB kept resident, instantiating reuses a slot instead of
        // mapping and unmapping memory each time (the kernel's page-table
        // work dominated a fresh verdict without it).
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_SLOTS)
            .total_core_instances(4 * POOL_SLOTS)
            .total_memories(POOL_SLOTS)
            .total_tables(4 * POOL_SLOTS)
            .max_memory_size(limits.memory_bytes)
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

impl Policy {
    /// Compiles (or loads cached code for) the artifact, links it and asks
    /// it to describe itself, which also proves its settings are valid.
    /// Sized for many verdicts, many at once (a server, an audit).
    pub fn load(artifact: Artifact, limits: Limits, cache: Option<&CodeCache>) -> Result<Policy, PolicyError> {
        Policy::load_with(artifact, limits, cache, true)
    }

    /// As [`Policy::load`], for a process that judges one subject: no
    /// instance pool (reserving and tearing down its address space costs
    /// more than the two instances such a process maps).
    pub fn load_for_one_verdict(
        artifact: Artifact,
        limits: Limits,
        cache: Option<&CodeCache>,
    ) -> Result<Policy, PolicyError> {
        Policy::load_with(artifact, limits, cache, false)
    }

    fn load_with(
        artifact: Artifact,
        limits: Limits,
        cache: Option<&CodeCache>,
        pooled: bool,
    ) -> Result<Policy, PolicyError> {
        let invalid = |reason: String| PolicyError::Invalid {
            origin: artifact.origin.to_string(),
            reason,
        };
        // The pool reserves address space up front; where that is refused
        // (a tight `ulimit -v`), instances are mapped on demand instead.
        let engine = Engine::new(&engine_config(&limits, pooled))
            .or_else(|e| {
                tracing::warn!("pooling allocator unavailable, mapping instances on demand: {e:#}");
                Engine::new(&engine_config(&limits, false))
            })
            .map_err(|e| invalid(format!("{e:#}")))?;
        start_ticking(&engine).map_err(|e| invalid(format!("starting its clock thread: {e}")))?;
        let component = match cache {
            Some(cache) => cache.load_or_compile(&engine, &artifact),
            None => Component::new(&engine, &artifact.bytes).map_err(|e| format!("{e:#}")),
        }
        .map_err(invalid)?;
        if let Some(old) = old_world(&engine, &component) {
            return Err(invalid(format!(
                "it implements the world {old}, and this provgate runs {WORLD} policies (the guest imports \
                 nothing and asks its questions instead); rebuild it from provgate 0.2's rules with \
                 `provgate policy build --settings <its settings> --out <file>`"
            )));
        }
        let linker = Linker::new(&engine);
        let pre = linker
            .instantiate_pre(&component)
            .and_then(ProvgatePre::new)
            .map_err(|e| {
                invalid(format!(
                    "it does not implement the world {WORLD}, which imports nothing: {e:#}"
                ))
            })?;

        let export = |name: &str| {
            let rules = component.get_export_index(None, RULES);
            component
                .get_export_index(rules.as_ref(), name)
                .ok_or_else(|| invalid(format!("it does not export {RULES}#{name}")))
        };
        let (evaluate, resume) = (export("evaluate")?, export("resume")?);

        let (name, version, rules, settings) = {
            let mut store = new_store(&engine, &limits);
            let bindings = pre.instantiate(&mut store).map_err(|e| trap(&e))?;
            let described = bindings
                .provgate_policy_rules()
                .call_describe(&mut store)
                .map_err(|e| trap(&e))?;
            let d = described.map_err(|reason| PolicyError::Settings {
                origin: artifact.origin.to_string(),
                reason,
            })?;
            let settings = SettingsView {
                gitea_base_url: d.settings.gitea_base_url,
                allowed_owners: d.settings.allowed_owners,
                created_max_skew_seconds: d.settings.created_max_skew_seconds,
                on_unavailable: match d.settings.on_unavailable {
                    wit::OnUnavailable::Deny => "deny",
                    wit::OnUnavailable::Allow => "allow",
                },
            };
            (
                d.name,
                d.version,
                d.rules.into_iter().map(rule_name).collect(),
                settings,
            )
        };
        let reference = Arc::new(PolicyRef {
            name: name.clone(),
            version: version.clone(),
            digest: artifact.digest.clone(),
        });
        Ok(Policy {
            description: Description {
                name,
                version,
                digest: artifact.digest.clone(),
                world: WORLD.into(),
                rules,
                settings,
            },
            engine,
            pre,
            evaluate,
            resume,
            limits,
            artifact,
            reference,
        })
    }

    pub fn artifact(&self) -> &Artifact {
        &self.artifact
    }

    pub fn description(&self) -> &Description {
        &self.description
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Name, version and digest, as every verdict of this policy carries them.
    pub fn reference(&self) -> &Arc<PolicyRef> {
        &self.reference
    }

    /// Starts judging `subject` in a fresh instance, with the answers an
    /// earlier instance was given for it (none at first).
    pub fn start(
        &self,
        subject: &Subject,
        mode: Mode,
        now: SystemTime,
        answers: &[Answered],
    ) -> Result<Run<'_>, PolicyError> {
        let mut store = new_store(&self.engine, &self.limits);
        let instance = self.pre.instance_pre().instantiate(&mut store).map_err(|e| trap(&e))?;
        let func = |store: &mut Store<Sandbox>, index: &ComponentExportIndex| {
            instance
                .get_func(store, index)
                .ok_or_else(|| PolicyError::Protocol("an instance lacks a function its component exports".into()))
        };
        let (evaluate, resume) = (func(&mut store, &self.evaluate)?, func(&mut store, &self.resume)?);
        // SAFETY: `ProvgatePre::new` checked at load that the component's
        // `evaluate` has exactly this type, and these are that export of an
        // instance of that component.
        let evaluate =
            unsafe { TypedFunc::<EvaluateParams<'_>, (Result<wit::Step, String>,)>::new_unchecked(evaluate) };
        let since_epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let labels: Vec<(&str, &str)> = subject.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let answers: Vec<wit::Answered<'_>> = answers
            .iter()
            .map(|a| wit::Answered {
                question: wit::QuestionParam {
                    owner: &a.question.owner,
                    repo: &a.question.repo,
                    sha: &a.question.sha,
                },
                answer: lower_answer(&a.answer),
            })
            .collect();
        let input = wit::Subject {
            reference: &subject.reference,
            digest: &subject.digest,
            labels: &labels,
            pin: subject.pin.as_ref().map(|p| wit::Pin {
                runtime: p.runtime.as_deref(),
                digest: p.digest.as_deref(),
                source_sha: p.source_sha.as_deref(),
            }),
            now: wit::Instant {
                seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
                nanoseconds: since_epoch.subsec_nanos(),
            },
        };
        let wit_mode = match mode {
            Mode::Enforce => wit::Mode::Enforce,
            Mode::LogOnly => wit::Mode::LogOnly,
        };
        let (step,) = evaluate
            .call(&mut store, (input, wit_mode, &answers))
            .map_err(|e| during("evaluate", trap(&e)))?;
        let step = step.map_err(|reason| self.settings_error(reason))?;
        let step = self.lift(step, &store)?;
        Ok(Run {
            policy: self,
            store,
            resume,
            step: Some(step),
        })
    }

    fn settings_error(&self, reason: String) -> PolicyError {
        PolicyError::Settings {
            origin: self.artifact.origin.to_string(),
            reason,
        }
    }

    fn lift(&self, step: wit::Step, store: &Store<Sandbox>) -> Result<Step, PolicyError> {
        tracing::trace!(
            guest_time_us = store.data().clock.guest_time().as_micros() as u64,
            "guest call"
        );
        Ok(match step {
            // The limits on questions are checked in one place, `crate::judge`.
            wit::Step::Ask(questions) => Step::Ask(
                questions
                    .into_iter()
                    .map(|q| Question {
                        owner: q.owner,
                        repo: q.repo,
                        sha: q.sha,
                    })
                    .collect(),
            ),
            wit::Step::Verdict(out) => {
                check_size(&out)?;
                Step::Verdict(Decided {
                    status: match out.status {
                        wit::Status::Verified => Status::Verified,
                        wit::Status::Rejected => Status::Rejected,
                        wit::Status::Indeterminate => Status::Indeterminate,
                    },
                    allowed: out.allowed,
                    event: event_name(out.event).into(),
                    findings: out
                        .findings
                        .into_iter()
                        .map(|f| Finding {
                            rule: rule_name(f.rule).into(),
                            outcome: match f.outcome {
                                wit::Outcome::Pass => Outcome::Pass,
                                wit::Outcome::Fail => Outcome::Fail,
                                wit::Outcome::Indeterminate => Outcome::Indeterminate,
                                wit::Outcome::Skipped => Outcome::Skipped,
                            },
                            message: f.message,
                        })
                        .collect(),
                })
            }
        })
    }
}

/// Where one instance's evaluation stands.
#[derive(Debug)]
pub enum Step {
    /// The guest's decision: status, allowed, event and findings.
    Verdict(Decided),
    /// The guest needs these answered, in this order.
    Ask(Vec<Question>),
}

/// One fresh instance judging one subject. Dropping it frees the instance:
/// the pipeline drops it rather than hold it while an answer is awaited.
pub struct Run<'p> {
    policy: &'p Policy,
    store: Store<Sandbox>,
    /// This instance's `resume`.
    resume: Func,
    step: Option<Step>,
}

impl Run<'_> {
    /// The latest step; taken once.
    pub fn take_step(&mut self) -> Option<Step> {
        self.step.take()
    }

    /// Goes on in the same instance with the answers to the questions just
    /// asked, in the order asked.
    pub fn resume(&mut self, answers: &[Answer]) -> Result<(), PolicyError> {
        let lowered: Vec<wit::Answer<'_>> = answers.iter().map(lower_answer).collect();
        self.store.data_mut().clock = Clock::start(self.policy.limits.time_budget);
        self.store.set_epoch_deadline(1);
        // SAFETY: as for `evaluate` in `Policy::start`.
        let resume =
            unsafe { TypedFunc::<(&[wit::Answer<'_>],), (Result<wit::Step, String>,)>::new_unchecked(self.resume) };
        let (step,) = resume
            .call(&mut self.store, (&lowered,))
            .map_err(|e| during("resume", trap(&e)))?;
        let step =
            step.map_err(|reason| PolicyError::Protocol(format!("it could not go on with its answers: {reason}")))?;
        self.step = Some(self.policy.lift(step, &self.store)?);
        Ok(())
    }
}

fn lower_answer(answer: &Answer) -> wit::Answer<'_> {
    match answer {
        Answer::Found => wit::Answer::Found,
        Answer::NotFound { reason } => wit::Answer::NotFound(reason),
        Answer::Unavailable { reason } => wit::Answer::Unavailable(reason),
        Answer::Moved { moved_to } => wit::Answer::Moved(wit::MovedTo {
            owner: &moved_to.owner,
            repo: &moved_to.repo,
        }),
    }
}

/// A fresh store with the limits of one verdict.
fn new_store(engine: &Engine, limits: &Limits) -> Store<Sandbox> {
    let sandbox = Sandbox {
        limits: StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .trap_on_grow_failure(true)
            .instances(4)
            .memories(4)
            .tables(4)
            .table_elements(100_000)
            .build(),
        clock: Clock::start(limits.time_budget),
    };
    let mut store = Store::new(engine, sandbox);
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|store| {
        let clock = &store.data().clock;
        if clock.guest_time() > clock.budget {
            return Err(OutOfTime(clock.budget).into());
        }
        Ok(UpdateDeadline::Continue(1))
    });
    store
}

/// `evaluate`'s parameters, lowered from the host's own strings.
type EvaluateParams<'a> = (wit::Subject<'a>, wit::Mode, &'a [wit::Answered<'a>]);

/// The interface every artifact exports.
const RULES: &str = "provgate:policy/rules@0.2.0";

/// The rule id as the verdict JSON spells it (SPEC §3).
fn rule_name(rule: wit::RuleId) -> &'static str {
    match rule {
        wit::RuleId::LabelsPresent => "labels.present",
        wit::RuleId::RevisionFormat => "revision.format",
        wit::RuleId::DigestFormat => "digest.format",
        wit::RuleId::CreatedFormat => "created.format",
        wit::RuleId::RunIdFormat => "run_id.format",
        wit::RuleId::SourceTrusted => "source.trusted",
        wit::RuleId::RevisionResolves => "revision.resolves",
        wit::RuleId::PinConsistent => "pin.consistent",
        wit::RuleId::TagConsistent => "tag.consistent",
    }
}

/// The event as the verdict JSON spells it (SPEC §4).
fn event_name(event: wit::Event) -> &'static str {
    match event {
        wit::Event::Unlabeled => "redeploy.verify.unlabeled",
        wit::Event::Malformed => "redeploy.verify.malformed",
        wit::Event::UntrustedSource => "redeploy.verify.untrusted_source",
        wit::Event::PinMismatch => "redeploy.verify.pin_mismatch",
        wit::Event::Unresolved => "redeploy.verify.unresolved",
        wit::Event::Unavailable => "redeploy.verify.unavailable",
        wit::Event::Reachable => "redeploy.verify.reachable",
    }
}

/// The world of an artifact built for an older provgate, named by the
/// interfaces it imports or exports.
fn old_world(engine: &Engine, component: &Component) -> Option<&'static str> {
    let ty = component.component_type();
    let names: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .chain(ty.exports(engine).map(|(name, _)| name.to_string()))
        .collect();
    OLD_WORLDS
        .iter()
        .find(|(interface, _)| names.iter().any(|n| n == interface))
        .map(|(_, world)| *world)
}

/// Findings one verdict may carry: the rules give one each.
pub const MAX_FINDINGS: usize = 1024;
/// Text one verdict may carry (event, rule ids and messages together):
/// messages quote values cut to a few dozen characters.
pub const MAX_VERDICT_TEXT: usize = 1 << 20;

/// A verdict that big is a broken or hostile policy, not a decision: refuse
/// it as a trap rather than print or serve it. (Lifting it was already
/// bounded by the guest's memory cap.)
fn check_size(out: &wit::Verdict) -> Result<(), PolicyError> {
    if out.findings.len() > MAX_FINDINGS {
        return Err(PolicyError::Trap(format!(
            "it returned a verdict with {} findings (at most {MAX_FINDINGS})",
            out.findings.len()
        )));
    }
    let text = out.findings.iter().map(|f| f.message.len()).sum::<usize>();
    if text > MAX_VERDICT_TEXT {
        return Err(PolicyError::Trap(format!(
            "it returned a verdict with {text} bytes of text (at most {MAX_VERDICT_TEXT})"
        )));
    }
    Ok(())
}

/// Names the export a trap happened in.
fn during(call: &str, error: PolicyError) -> PolicyError {
    match error {
        PolicyError::Trap(what) => PolicyError::Trap(format!("{what} (in its `{call}` call)")),
        other => other,
    }
}

/// A trap or limit hit, in words an operator can act on.
fn trap(err: &wasmtime::Error) -> PolicyError {
    if let Some(out_of_time) = err.downcast_ref::<OutOfTime>() {
        return PolicyError::Trap(out_of_time.to_string());
    }
    let what = match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::StackOverflow) => "it exhausted its stack".to_string(),
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            "it trapped on `unreachable` (a panic inside the guest)".to_string()
        }
        Some(trap) => format!("it trapped: {trap}"),
        None => format!("{err:#}"),
    };
    PolicyError::Trap(what)
}
