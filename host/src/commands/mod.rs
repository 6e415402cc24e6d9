//! One module per subcommand.

pub mod audit;
pub mod policy;
pub mod serve;
pub mod verify;

use crate::cli::PolicyArgs;
use crate::exit::Failure;
use crate::policy::{Artifact, Limits, Policy, cache::CodeCache};

/// Loads the artifact `--policy`/`--policy-digest` select, compiled and described.
pub fn load_policy(args: &PolicyArgs) -> Result<Policy, Failure> {
    let artifact = Artifact::load(args.policy.as_deref())?;
    if let Some(expected) = &args.policy_digest {
        artifact.require_digest(expected)?;
    }
    tracing::info!(policy = %artifact.origin, digest = %artifact.digest, "loading policy");
    Ok(Policy::load(
        artifact,
        Limits::default(),
        CodeCache::from_env().as_ref(),
    )?)
}
