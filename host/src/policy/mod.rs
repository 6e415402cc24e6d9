//! The policy: the artifact file, its compiled code, and the sandbox that
//! runs one verdict per fresh instance.

pub mod artifact;
pub mod cache;
pub mod sandbox;
pub mod slot;

pub use artifact::{Artifact, Origin};
pub use sandbox::{Description, Limits, Policy, Run, Step};

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
    #[error("the policy was stopped: {0}")]
    Trap(String),
    /// It asked more questions, or in more rounds, than a verdict may.
    #[error("the policy was stopped: {0}")]
    Limit(String),
    /// It broke the ask/answer protocol (asked nothing, asked again what it
    /// was told, refused its own answers).
    #[error("the policy misbehaved: {0}")]
    Protocol(String),
}
