//! The policy: the artifact file, its compiled code, and the sandbox that
//! runs one verdict per fresh instance.
//!
//! This module holds what a policy says and how it fails, in the host's
//! own types; `engine` holds the wasmtime engine and the bounds of every
//! call, `glue` the WIT bindings and the conversions both ways, and
//! `sandbox` the loaded [`Policy`] and its [`Run`]s.

pub mod artifact;
pub mod cache;
pub mod engine;
pub mod glue;
pub mod oci;
pub mod sandbox;
pub mod signature;

use serde::Serialize;

use crate::lookup::Question;
use crate::verdict::Decided;

pub use artifact::{Artifact, Origin};
pub use engine::Limits;
pub use sandbox::{Policy, Run};

/// A loader's error as one short line, for a log line that says what was
/// refused: every run of white space (wasmtime's parse errors go on over
/// many lines, a dump of the bytes around the fault) made one space, cut
/// to `max` characters (`…` says it was), and made safe by
/// [`crate::text::one_line`].
pub fn short_reason(text: &str, max: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ");
    let line = if joined.chars().count() > max {
        let mut cut: String = joined.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        joined
    };
    crate::text::one_line(&line)
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

/// Where one instance's evaluation stands.
#[derive(Debug)]
pub enum Step {
    /// The guest's decision: status, allowed, event and findings.
    Verdict(Decided),
    /// The guest needs these answered, in this order.
    Ask(Vec<Question>),
}

/// Everything that makes the policy unusable. All of it is exit code 3.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{0}")]
    Load(String),
    #[error("policy digest mismatch: {origin} is {actual}, but --policy-digest requires {expected}")]
    DigestMismatch {
        origin: String,
        expected: String,
        actual: String,
    },
    #[error("{origin} is not a usable provgate policy component: {reason}")]
    Invalid { origin: String, reason: String },
    #[error("{origin} has unusable settings: {reason}")]
    Settings { origin: String, reason: String },
    /// The guest was stopped: a trap, or a bound of the sandbox hit.
    /// `message` says it for an operator, and names the call it was in.
    #[error("the policy was stopped: {message}")]
    Trap { kind: TrapKind, message: String },
    /// It asked more questions, or in more rounds, than a verdict may.
    #[error("the policy was stopped: {message}")]
    Limit { kind: LimitKind, message: String },
    /// It broke the ask/answer protocol (asked nothing, asked again what it
    /// was told, refused its own answers).
    #[error("the policy misbehaved: {0}")]
    Protocol(String),
}

/// What stopped the guest, for callers that act on it (and tests that
/// check it) without reading the message.
/// Which limit of the ask/answer protocol a policy went past.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    /// More questions in all than a verdict may ask.
    Questions,
    /// More rounds of questions than a verdict may ask in.
    Rounds,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapKind {
    /// One call ran past [`Limits::time_budget`].
    TimeBudget,
    /// It tried to grow its memory (or start with more) past
    /// [`Limits::memory_bytes`].
    Memory,
    /// It exhausted its stack.
    Stack,
    /// It reached `unreachable`: a panic inside the guest.
    Unreachable,
    /// It returned a verdict with more findings or text than a verdict may
    /// carry.
    OversizedVerdict,
    /// Any other trap, or wasmtime refusing to run it at all.
    Other,
}

#[cfg(test)]
mod tests {
    use super::short_reason;

    #[test]
    fn a_short_reason_is_one_line_cut() {
        assert_eq!(short_reason("not a component", 80), "not a component");
        let dump = format!("bad magic - expected=[\n{}]", "    0,\n".repeat(20));
        assert_eq!(
            short_reason(&dump, 200),
            format!("bad magic - expected=[ {}]", "0, ".repeat(20))
        );
        let long = "x".repeat(1000);
        assert_eq!(short_reason(&long, 120).chars().count(), 120);
        assert!(short_reason(&long, 120).ends_with('…'));
        assert!(!short_reason("a\u{1b}[31mb", 80).contains('\u{1b}'));
    }
}
