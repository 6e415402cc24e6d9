//! Running the policy component under wasmtime.
//!
//! Compiled once per process (or loaded from the code cache), linked once
//! into a pre-instantiated handle, then a fresh instance per verdict so no
//! state can leak between subjects. The component imports nothing: an
//! instance is a [`Run`] that either has its verdict or waits for answers
//! (`crate::judge` answers them). Every call into the guest runs within
//! the bounds `super::engine` sets.

use std::sync::Arc;
use std::time::SystemTime;

use wasmtime::component::{Component, ComponentExportIndex, Func, Linker, TypedFunc};
use wasmtime::{Engine, Store};

use crate::lookup::{Answer, Answered};
use crate::policy::engine::{self, Sandbox, during, new_store, restart_clock, trap};
use crate::policy::glue::{self, EvaluateParams, ProvgatePre, RULES, StepResults, WORLD, wit};
use crate::policy::{Artifact, Description, Limits, PolicyError, Step, cache::CodeCache};
use crate::subject::Subject;
use crate::verdict::{Mode, PolicyRef};

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
        let engine = engine::engine(&limits, pooled).map_err(invalid)?;
        let component = match cache {
            Some(cache) => cache.load_or_compile(&engine, &artifact),
            None => Component::new(&engine, &artifact.bytes).map_err(|e| format!("{e:#}")),
        }
        .map_err(invalid)?;
        if let Some(old) = glue::old_world(&engine, &component) {
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

        let description = describe(&engine, &pre, &limits, &artifact)?;
        let reference = Arc::new(PolicyRef {
            name: description.name.clone(),
            version: description.version.clone(),
            digest: artifact.digest.clone(),
        });
        Ok(Policy {
            engine,
            pre,
            evaluate,
            resume,
            limits,
            artifact,
            description,
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
        let instance = self
            .pre
            .instance_pre()
            .instantiate(&mut store)
            .map_err(|e| trap(&e, &store))?;
        let func = |store: &mut Store<Sandbox>, index: &ComponentExportIndex| {
            instance
                .get_func(store, index)
                .ok_or_else(|| PolicyError::Protocol("an instance lacks a function its component exports".into()))
        };
        let (evaluate, resume) = (func(&mut store, &self.evaluate)?, func(&mut store, &self.resume)?);
        // SAFETY: `ProvgatePre::new` checked at load that the component's
        // `evaluate` has exactly this type, and these are that export of an
        // instance of that component.
        let evaluate = unsafe { TypedFunc::<EvaluateParams<'_>, StepResults>::new_unchecked(evaluate) };
        let labels = glue::label_pairs(subject);
        let answers = glue::lower_answered(answers);
        let input = glue::lower_subject(subject, &labels, now);
        let (step,) = evaluate
            .call(&mut store, (input, glue::lower_mode(mode), &answers))
            .map_err(|e| during("evaluate", trap(&e, &store)))?;
        let step = step.map_err(|reason| self.settings_error(reason))?;
        let step = lift(step, &store)?;
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
}

/// What the artifact says about itself, from an instance of its own.
fn describe(
    engine: &Engine,
    pre: &ProvgatePre<Sandbox>,
    limits: &Limits,
    artifact: &Artifact,
) -> Result<Description, PolicyError> {
    let mut store = new_store(engine, limits);
    let bindings = pre.instantiate(&mut store).map_err(|e| trap(&e, &store))?;
    let described = bindings
        .provgate_policy_rules()
        .call_describe(&mut store)
        .map_err(|e| trap(&e, &store))?;
    let described = described.map_err(|reason| PolicyError::Settings {
        origin: artifact.origin.to_string(),
        reason,
    })?;
    Ok(glue::lift_description(described, artifact.digest.clone()))
}

/// The guest's step, logged with the time its call took.
fn lift(step: wit::Step, store: &Store<Sandbox>) -> Result<Step, PolicyError> {
    tracing::trace!(
        guest_time_us = store.data().guest_time().as_micros() as u64,
        "guest call"
    );
    glue::lift_step(step)
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
        let lowered: Vec<wit::Answer<'_>> = answers.iter().map(glue::lower_answer).collect();
        restart_clock(&mut self.store, self.policy.limits.time_budget);
        // SAFETY: as for `evaluate` in `Policy::start`.
        let resume = unsafe { TypedFunc::<(&[wit::Answer<'_>],), StepResults>::new_unchecked(self.resume) };
        let (step,) = resume
            .call(&mut self.store, (&lowered,))
            .map_err(|e| during("resume", trap(&e, &self.store)))?;
        let step =
            step.map_err(|reason| PolicyError::Protocol(format!("it could not go on with its answers: {reason}")))?;
        self.step = Some(lift(step, &self.store)?);
        Ok(())
    }
}
