//! provgate's policy: every rule and the whole decision.
//!
//! Compiled to `wasm32-unknown-unknown` and wrapped into a component, this
//! crate is the policy artifact; `component` is the only part that knows
//! about WIT. Compiled natively it serves differential tests and the
//! native-limit bench, never real decisions.
//!
//! Each module imports only from those listed before it:
//! - `model`, `show`, `url`, `rfc3339`: facts every layer shares (the
//!   policy's types, quoting of untrusted values, the spelling of Gitea
//!   URLs and names, RFC 3339 date-times);
//! - `settings`: what the artifact is configured with;
//! - `decide`: docs/reference.md §4, from findings to a verdict;
//! - `rules`: each rule of docs/reference.md §3, and the evaluation that runs them in
//!   order and hands the findings to `decide`;
//! - `component` and [`evaluate`]: the two drivers of an evaluation.
//!
//! `arena` is the guest's allocator and imports nothing.

pub mod arena;
pub mod decide;
pub mod model;
pub mod rfc3339;
pub mod rules;
pub mod settings;
pub mod show;
pub mod url;

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

use model::{CommitAnswer, Mode, Question, Step, Subject, Verdict};
use settings::Settings;

pub const NAME: &str = "provgate-provenance";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Judges one subject, answering each question the rules ask with
/// `lookup`: the native driver of [`rules::Evaluation`], for differential
/// tests and benches. The component drives the same evaluation, with the
/// host answering from outside the sandbox.
pub fn evaluate(
    settings: &Settings,
    subject: &Subject,
    mode: Mode,
    lookup: &mut dyn FnMut(&Question) -> CommitAnswer,
) -> Verdict {
    let (mut evaluation, mut step) = rules::Evaluation::start(subject, settings, mode);
    loop {
        match step {
            Step::Verdict(verdict) => return verdict,
            Step::Ask(questions) => {
                let answers = questions.iter().map(&mut *lookup).collect();
                step = match evaluation.resume(settings, answers) {
                    Ok(step) => step,
                    // Unreachable: one answer per question asked.
                    Err(_) => unreachable!("the evaluation got one answer per question"),
                };
            }
        }
    }
}
