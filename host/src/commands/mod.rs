//! One module per subcommand.

pub mod audit;
pub mod policy;
pub mod serve;
pub mod verify;

use std::path::Path;
use std::time::SystemTime;

use anyhow::anyhow;

use crate::cli::PolicyArgs;
use crate::exit::Failure;
use crate::lookup::replay::Recording;
use crate::policy::{Artifact, Limits, Policy, cache::CodeCache};

/// `--replay FILE`, read, and the clock of the run: the recording's `now`
/// when it has one (so a replayed run decides as the recorded one did),
/// else the present.
pub fn replay_and_clock(path: Option<&Path>) -> Result<(Option<Recording>, SystemTime), Failure> {
    let Some(path) = path else {
        return Ok((None, SystemTime::now()));
    };
    let recording = Recording::read(path).map_err(Failure::usage)?;
    let now = match recording.now.as_deref() {
        Some(now) => humantime::parse_rfc3339(now)
            .map_err(|e| Failure::usage(anyhow!("replay file: \"now\" {now:?} is not an RFC 3339 time: {e}")))?,
        None => SystemTime::now(),
    };
    Ok((Some(recording), now))
}

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
