//! provgate's policy: every rule and the whole decision.
//!
//! Compiled to `wasm32-unknown-unknown` and wrapped into a component, this
//! crate is the policy artifact; `component` is the only part that knows
//! about WIT. Compiled natively it serves differential tests and the
//! native-limit bench, never real decisions.

pub mod arena;
pub mod decide;
pub mod model;
pub mod rules;
pub mod settings;
pub mod show;

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

use model::{CommitAnswer, Mode, Subject, Verdict};
use settings::Settings;

pub const NAME: &str = "provgate-provenance";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Judges one subject: the rules, then the decision of SPEC §4.
pub fn evaluate(
    settings: &Settings,
    subject: &Subject,
    mode: Mode,
    lookup: &mut dyn FnMut(&str, &str, &str) -> CommitAnswer,
) -> Verdict {
    let findings = rules::run(subject, settings, lookup);
    let status = decide::status(&findings);
    Verdict {
        status,
        allowed: decide::allowed(status, mode, settings.on_unavailable),
        event: decide::event(&findings),
        findings,
    }
}
