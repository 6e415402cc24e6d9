//! Running the policy component under wasmtime.
//!
//! Compiled once per process (or loaded from the code cache), linked once
//! into a pre-instantiated handle, then one fresh instance per verdict so no
//! state can leak between subjects. Every evaluation runs with a time budget
//! (wall time in the guest), a memory cap and a cap on look-ups; hitting any
//! of them traps, and the trap is reported, never retried.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder,
    UpdateDeadline,
};

use crate::lookup::{Answer, CommitLookup};
use crate::policy::{Artifact, PolicyError, cache::CodeCache};
use crate::subject::Subject;
use crate::verdict::{Finding, Mode, Outcome, PolicyRef, Status, Verdict, VerdictSubject};

wasmtime::component::bindgen!({
    world: "provgate",
    path: "../wit",
    imports: { "provgate:policy/lookup.commit-exists": trappable },
    // The subject is lowered straight from the host's own strings.
    ownership: Borrowing { duplicate_if_necessary: true },
});

use self::provgate::policy::lookup as wit_lookup;
use exports::provgate::policy::rules as wit;

/// The WIT world every artifact must implement.
pub const WORLD: &str = "provgate:policy/provgate@0.1.0";

/// Per-evaluation bounds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wall time one evaluation may spend in the guest, not counting the time
    /// the host spends answering its look-ups (a slow Gitea is bounded by its
    /// own time-out). A usual subject takes about 10 µs, four 1 MiB labels a
    /// few ms: a second leaves room for a thread descheduled on an overloaded
    /// machine and still stops an endless loop soon (Kubewarden's policy
    /// time-out, also epoch-based, defaults to two).
    pub time_budget: Duration,
    /// Linear memory one instance may grow to.
    pub memory_bytes: usize,
    /// Commit look-ups one evaluation may ask for; the rules need one.
    pub max_lookups: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time_budget: Duration::from_secs(1),
            memory_bytes: 64 << 20,
            max_lookups: 4,
        }
    }
}

/// The store's data: what one evaluation may touch.
struct Sandbox {
    lookup: Arc<dyn CommitLookup>,
    lookups: u32,
    max_lookups: u32,
    limits: StoreLimits,
    clock: Clock,
}

/// The guest's time so far in one evaluation: wall time since it started,
/// less the time spent in the host's look-ups.
struct Clock {
    started: Instant,
    in_lookups: Duration,
    budget: Duration,
}

impl Clock {
    fn start(budget: Duration) -> Clock {
        Clock {
            started: Instant::now(),
            in_lookups: Duration::ZERO,
            budget,
        }
    }

    fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.in_lookups)
    }
}

/// The trap raised when an evaluation overruns its time budget.
#[derive(Debug)]
struct OutOfTime(Duration);

impl fmt::Display for OutOfTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "it ran past its time budget ({} ms in the guest for one evaluation)",
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

impl wit_lookup::Host for Sandbox {
    fn commit_exists(
        &mut self,
        owner: String,
        repo: String,
        sha: String,
    ) -> wasmtime::Result<wit_lookup::CommitAnswer> {
        self.lookups += 1;
        if self.lookups > self.max_lookups {
            wasmtime::bail!(
                "the policy asked for more than {} commit look-ups in one evaluation",
                self.max_lookups
            );
        }
        let asked = Instant::now();
        let answer = self.lookup.commit(&owner, &repo, &sha);
        self.clock.in_lookups += asked.elapsed();
        Ok(match answer {
            Answer::Found => wit_lookup::CommitAnswer::Found,
            Answer::NotFound(why) => wit_lookup::CommitAnswer::NotFound(why),
            Answer::Unavailable(why) => wit_lookup::CommitAnswer::Unavailable(why),
        })
    }
}

/// What `describe` says about an artifact, plus its digest and world.
#[derive(Clone, Debug, Serialize)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub digest: String,
    pub world: String,
    pub rules: Vec<String>,
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
    limits: Limits,
    artifact: Artifact,
    description: Description,
    /// What every verdict says about the policy that made it.
    reference: Arc<PolicyRef>,
}

/// Instances that may be alive at once (a server evaluates on up to 512
/// blocking threads; each may wait on a slow Gitea).
const POOL_SLOTS: u32 = 512;

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
        let mut linker = Linker::new(&engine);
        wit_lookup::add_to_linker::<Sandbox, HasSelf<Sandbox>>(&mut linker, |s| s)
            .map_err(|e| invalid(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(ProvgatePre::new)
            .map_err(|e| {
                invalid(format!(
                    "it does not implement the world {WORLD} with only its look-up import: {e:#}"
                ))
            })?;

        let mut policy = Policy {
            engine,
            pre,
            limits,
            description: Description {
                name: String::new(),
                version: String::new(),
                digest: artifact.digest.clone(),
                world: WORLD.into(),
                rules: Vec::new(),
                settings: SettingsView {
                    gitea_base_url: String::new(),
                    allowed_owners: Vec::new(),
                    created_max_skew_seconds: 0,
                    on_unavailable: "deny",
                },
            },
            artifact,
            reference: Arc::default(),
        };
        let lookup: Arc<dyn CommitLookup> = Arc::new(crate::lookup::NoLookup("describe asks nothing"));
        let (mut store, bindings) = policy.instantiate(lookup)?;
        let described = bindings
            .provgate_policy_rules()
            .call_describe(&mut store)
            .map_err(|e| trap(&e))?;
        let d = described.map_err(|reason| PolicyError::Settings {
            origin: policy.artifact.origin.to_string(),
            reason,
        })?;
        policy.description.name = d.name;
        policy.description.version = d.version;
        policy.description.rules = d.rules;
        policy.description.settings = SettingsView {
            gitea_base_url: d.settings.gitea_base_url,
            allowed_owners: d.settings.allowed_owners,
            created_max_skew_seconds: d.settings.created_max_skew_seconds,
            on_unavailable: match d.settings.on_unavailable {
                wit::OnUnavailable::Deny => "deny",
                wit::OnUnavailable::Allow => "allow",
            },
        };
        policy.reference = Arc::new(PolicyRef {
            name: policy.description.name.clone(),
            version: policy.description.version.clone(),
            digest: policy.artifact.digest.clone(),
        });
        Ok(policy)
    }

    pub fn artifact(&self) -> &Artifact {
        &self.artifact
    }

    pub fn description(&self) -> &Description {
        &self.description
    }

    /// Name, version and digest, as every verdict of this policy carries them.
    pub fn reference(&self) -> &Arc<PolicyRef> {
        &self.reference
    }

    fn instantiate(&self, lookup: Arc<dyn CommitLookup>) -> Result<(Store<Sandbox>, Provgate), PolicyError> {
        let sandbox = Sandbox {
            lookup,
            lookups: 0,
            max_lookups: self.limits.max_lookups,
            limits: StoreLimitsBuilder::new()
                .memory_size(self.limits.memory_bytes)
                .trap_on_grow_failure(true)
                .instances(4)
                .memories(4)
                .tables(4)
                .table_elements(100_000)
                .build(),
            clock: Clock::start(self.limits.time_budget),
        };
        let mut store = Store::new(&self.engine, sandbox);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|store| {
            let clock = &store.data().clock;
            let used = clock.guest_time();
            if used > clock.budget {
                return Err(OutOfTime(clock.budget).into());
            }
            Ok(UpdateDeadline::Continue(1))
        });
        let bindings = self.pre.instantiate(&mut store).map_err(|e| trap(&e))?;
        Ok((store, bindings))
    }

    /// Judges one subject in a fresh instance. The verdict's decision is the
    /// guest's; the host only adds the subject and policy it already knows.
    pub fn evaluate(
        &self,
        subject: &Subject,
        mode: Mode,
        now: SystemTime,
        lookup: Arc<dyn CommitLookup>,
    ) -> Result<Verdict, PolicyError> {
        let (mut store, bindings) = self.instantiate(lookup)?;
        self.call(&mut store, &bindings, subject, mode, now)
    }

    /// One instance kept across evaluations, for calibration only: state
    /// could leak between subjects, so real decisions never use it.
    #[doc(hidden)]
    pub fn warm_instance(&self, lookup: Arc<dyn CommitLookup>) -> Result<WarmInstance<'_>, PolicyError> {
        let (store, bindings) = self.instantiate(lookup)?;
        Ok(WarmInstance {
            policy: self,
            store,
            bindings,
        })
    }

    fn call(
        &self,
        store: &mut Store<Sandbox>,
        bindings: &Provgate,
        subject: &Subject,
        mode: Mode,
        now: SystemTime,
    ) -> Result<Verdict, PolicyError> {
        let since_epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let labels: Vec<(&str, &str)> = subject.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let input = wit::Subject {
            reference: &subject.reference,
            digest: &subject.digest,
            labels: &labels,
            pin: subject.pin.as_ref().map(|p| wit::Pin {
                runtime: p.runtime.as_deref(),
                digest: &p.digest,
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
        let out = bindings
            .provgate_policy_rules()
            .call_evaluate(&mut *store, input, wit_mode)
            .map_err(|e| trap(&e))?
            .map_err(|reason| PolicyError::Settings {
                origin: self.artifact.origin.to_string(),
                reason,
            })?;
        check_size(&out)?;
        let data = store.data();
        tracing::debug!(
            guest_time_us = data.clock.guest_time().as_micros() as u64,
            lookups = data.lookups,
            "evaluated"
        );
        Ok(Verdict {
            subject: VerdictSubject {
                reference: subject.reference.clone(),
                digest: subject.digest.clone(),
                platform: None,
                platform_digest: None,
            },
            policy: self.reference.clone(),
            mode,
            status: match out.status {
                wit::Status::Verified => Status::Verified,
                wit::Status::Rejected => Status::Rejected,
                wit::Status::Indeterminate => Status::Indeterminate,
            },
            allowed: out.allowed,
            event: out.event,
            findings: out
                .findings
                .into_iter()
                .map(|f| Finding {
                    rule: f.rule,
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
}

#[doc(hidden)]
pub struct WarmInstance<'p> {
    policy: &'p Policy,
    store: Store<Sandbox>,
    bindings: Provgate,
}

impl WarmInstance<'_> {
    pub fn evaluate(&mut self, subject: &Subject, mode: Mode, now: SystemTime) -> Result<Verdict, PolicyError> {
        let data = self.store.data_mut();
        data.lookups = 0;
        data.clock = Clock::start(self.policy.limits.time_budget);
        self.store.set_epoch_deadline(1);
        self.policy.call(&mut self.store, &self.bindings, subject, mode, now)
    }
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
    let text = out.event.len()
        + out
            .findings
            .iter()
            .map(|f| f.rule.len() + f.message.len())
            .sum::<usize>();
    if text > MAX_VERDICT_TEXT {
        return Err(PolicyError::Trap(format!(
            "it returned a verdict with {text} bytes of text (at most {MAX_VERDICT_TEXT})"
        )));
    }
    Ok(())
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
