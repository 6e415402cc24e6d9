//! One module per subcommand.

pub mod audit;
pub mod policy;
pub mod serve;
pub mod verify;

use crate::cli::PolicyArgs;
use crate::exit::Failure;
use crate::policy::{Artifact, Limits, Policy, cache::CodeCache};

/// How many verdicts the loaded policy will give: the sandbox is sized for it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verdicts {
    One,
    Many,
}

/// Loads the artifact `--policy`/`--policy-digest` select, compiled and described.
pub fn load_policy(args: &PolicyArgs, verdicts: Verdicts) -> Result<Policy, Failure> {
    let artifact = Artifact::load(args.policy.as_deref())?;
    if let Some(expected) = &args.policy_digest {
        artifact.require_digest(expected)?;
    }
    tracing::info!(policy = %artifact.origin, digest = %artifact.digest, "loading policy");
    let cache = CodeCache::from_env();
    Ok(match verdicts {
        Verdicts::One => Policy::load_for_one_verdict(artifact, Limits::default(), cache.as_ref())?,
        Verdicts::Many => Policy::load(artifact, Limits::default(), cache.as_ref())?,
    })
}
